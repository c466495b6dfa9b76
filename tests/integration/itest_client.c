/* Integration test: two native clients built from the SDK cores — client
 * PeerConnections (client/pc.h), the /rtc signaling client
 * (client/rtc_signal.h), the WebSocket client (io/ws_client.h) and UDP sockets
 * on one libuv loop — join one room of a real `hudong serve --dev` (started by
 * run_with_server.sh; ports in HUDONG_HTTP / HUDONG_RTC). Alice publishes
 * synthetic audio + video RTP; Bob, auto-subscribed, must receive ≥ 300 video
 * and ≥ 150 audio packets with no gap left after NACK/RTX repair; then both
 * leave and get "left" + close 1000. A connect to a closed port must fail with
 * a clear error, not hang. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "base/err.h"
#include "client/pc.h"
#include "client/rtc_signal.h"
#include "io/ws_client.h"
#include "proto/token.h"

#define WANT_VIDEO 300
#define WANT_AUDIO 150
#define MAXSEQ 16384

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "itest_client: FAIL: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static uv_loop_t *g_loop;
static int g_http_port;
static hd_time_t now_us(void) { return (hd_time_t)(uv_hrtime() / 1000); }

typedef struct client {
  const char *name;
  int publish;
  hd_pc_t *pc[2]; /* 0 publisher, 1 subscriber */
  uv_udp_t udp[2];
  hd_rtc_signal_t *sig;
  hd_ws_client_t *ws;
  int joined, left, ws_closed, close_code;
  /* publisher media */
  int atrack, vtrack, force_key;
  uint32_t frame, audio_n;
  hd_time_t next_audio, next_video;
  /* subscriber reception */
  uint64_t rx[3], rtx;
  int64_t first[3], max[3];
  uint8_t *got[3];
} client_t;

static client_t g_cl[2];

static void flush(client_t *c) {
  hd_time_t now = now_us();
  for (int i = 0; i < 2; i++) {
    uint8_t buf[1500];
    struct sockaddr_storage to;
    socklen_t tl;
    int n;
    while ((n = hd_pc_poll(c->pc[i], buf, sizeof buf, &to, &tl, now)) > 0) {
      uv_buf_t b = uv_buf_init((char *)buf, (unsigned)n);
      uv_udp_try_send(&c->udp[i], &b, 1,
                      (const struct sockaddr *)&to); /* a full socket buffer = loss: NACK repairs */
    }
  }
  size_t l;
  while (c->ws && hd_ws_client_is_open(c->ws) && (l = hd_rtc_signal_peek_len(c->sig)) > 0) {
    char *t = malloc(l + 1);
    hd_rtc_signal_poll(c->sig, t, l + 1);
    if (hd_ws_client_send(c->ws, t, l) < 0) die("%s: ws send failed", c->name);
    free(t);
  }
}

static void handle_sig_events(client_t *c) {
  hd_rtc_signal_event_t ev;
  while (hd_rtc_signal_poll_event(c->sig, &ev)) {
    switch (ev.type) {
    case HD_RTC_SIGNAL_EV_JOINED:
      c->joined = 1;
      if (c->publish) {
        c->atrack = hd_pc_add_transceiver(c->pc[0], HD_PC_AUDIO, HD_PC_SENDONLY);
        c->vtrack = hd_pc_add_transceiver(c->pc[0], HD_PC_VIDEO, HD_PC_SENDONLY);
        hd_rtc_signal_pub_t t[2] = {{.cid = "mic", .track = c->atrack, .source = "microphone"},
                                    {.cid = "cam", .track = c->vtrack, .source = "camera"}};
        if (hd_rtc_signal_publish(c->sig, t, 2, now_us()) < 0) die("%s: publish failed", c->name);
      }
      break;
    case HD_RTC_SIGNAL_EV_PUBLISH_ANSWER:
      if (ev.code < 0) die("%s: publish answer refused by the pc: %s", c->name, hd_strerror(ev.code));
      break;
    case HD_RTC_SIGNAL_EV_SUBSCRIBER_OFFER:
      if (ev.code < 0) die("%s: subscriber offer: %s", c->name, hd_strerror(ev.code));
      break;
    case HD_RTC_SIGNAL_EV_ERROR:
      die("%s: signaling error %d %s: %s", c->name, ev.code, ev.reason, ev.message);
    case HD_RTC_SIGNAL_EV_LEFT:
      c->left = 1;
      if (strcmp(ev.reason, "client_request")) die("%s: left: %s", c->name, ev.reason);
      break;
    case HD_RTC_SIGNAL_EV_TIMEOUT: die("%s: signaling timeout", c->name);
    default: break;
    }
  }
}

static void on_pc_event(void *ud, const hd_pc_event_t *ev) {
  client_t *c = ud;
  if (ev->type == HD_PC_EV_STATE && ev->state == HD_PC_FAILED) die("%s: pc failed: %s", c->name, ev->reason);
  if (ev->type == HD_PC_EV_KEYFRAME) c->force_key = 1;
  if (ev->type == HD_PC_EV_RTP) {
    int k = ev->rtp.kind;
    c->rx[k]++;
    c->rtx += ev->rtp.rtx;
    if (!c->first[k]) c->first[k] = ev->rtp.ext_seq;
    int64_t i = ev->rtp.ext_seq - c->first[k];
    if (i >= 0 && i < MAXSEQ) c->got[k][i] = 1;
    if (ev->rtp.ext_seq > c->max[k]) c->max[k] = ev->rtp.ext_seq;
    if (ev->rtp.payload_len < 4 || ev->rtp.payload[3] != 0x5A) die("%s: corrupt payload", c->name);
  }
}

/* ---- WebSocket ---- */

static void ws_open(void *ud, hd_ws_client_t *ws) {
  client_t *c = ud;
  hd_rtc_signal_join(c->sig, now_us());
  flush(c);
}
static void ws_message(void *ud, hd_ws_client_t *ws, const char *text, size_t len) {
  client_t *c = ud;
  hd_rtc_signal_feed(c->sig, text, len, now_us());
  handle_sig_events(c);
  flush(c);
}
static void ws_close(void *ud, hd_ws_client_t *ws, int code, const char *reason) {
  client_t *c = ud;
  c->ws_closed = 1;
  c->close_code = code;
  if (!c->left) die("%s: websocket closed early: %d %s", c->name, code, reason);
}

/* ---- UDP ---- */

static void udp_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  static char buf[65536];
  *b = uv_buf_init(buf, sizeof buf);
}
static void udp_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *b, const struct sockaddr *from, unsigned flags) {
  client_t *c = u->data;
  if (n <= 0 || !from) return;
  int i = u == &c->udp[1];
  hd_pc_feed(c->pc[i], (const uint8_t *)b->base, (size_t)n, from,
             from->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6), now_us());
  flush(c);
}

/* ---- media and timers ---- */

static void media(client_t *c, hd_time_t now) {
  if (!c->publish || hd_pc_state(c->pc[0]) != HD_PC_CONNECTED) return;
  uint8_t pl[800];
  memset(pl, 0x5A, sizeof pl);
  if (!c->next_video) c->next_audio = c->next_video = now;
  while (c->next_audio <= now) {
    hd_pc_rtp_send_t p = {
        .track = c->atrack, .ts = c->audio_n++ * 960, .payload = pl, .len = 80, .audio_level = 40};
    hd_pc_send_rtp(c->pc[0], &p, now);
    c->next_audio += 20000;
  }
  while (c->next_video <= now) {
    int key = c->force_key || c->frame == 0, n = key ? 6 : 3;
    c->force_key = 0;
    pl[0] = (uint8_t)key;
    for (int i = 0; i < n; i++) {
      hd_pc_rtp_send_t p = {.track = c->vtrack,
                            .ts = c->frame * 3000,
                            .marker = i == n - 1,
                            .payload = pl,
                            .len = sizeof pl,
                            .audio_level = -1};
      hd_pc_send_rtp(c->pc[0], &p, now);
    }
    c->frame++;
    c->next_video += 33333;
  }
}

static void on_tick(uv_timer_t *t) {
  hd_time_t now = now_us();
  for (int i = 0; i < 2; i++) {
    client_t *c = &g_cl[i];
    if (hd_rtc_signal_next_timeout(c->sig) <= now) hd_rtc_signal_handle_timeout(c->sig, now);
    handle_sig_events(c);
    for (int k = 0; k < 2; k++)
      if (hd_pc_next_timeout(c->pc[k]) <= now) hd_pc_handle_timeout(c->pc[k], now);
    media(c, now);
    flush(c);
  }
}

static void run_until(int (*done)(void), int timeout_ms, const char *what) {
  uint64_t end = uv_hrtime() + (uint64_t)timeout_ms * 1000000;
  while (!done()) {
    if (uv_hrtime() > end) die("timeout waiting for %s", what);
    uv_run(g_loop, UV_RUN_ONCE);
  }
}

static int bob_received(void) {
  return g_cl[1].rx[HD_PC_VIDEO] >= WANT_VIDEO && g_cl[1].rx[HD_PC_AUDIO] >= WANT_AUDIO;
}
static int both_joined(void) { return g_cl[0].joined && g_cl[1].joined; }
static int both_closed(void) { return g_cl[0].ws_closed && g_cl[1].ws_closed; }
static int g_fail_closed;
static int fail_closed(void) { return g_fail_closed; }

static void client_init(client_t *c, const char *name, int publish, const char *url) {
  c->name = name;
  c->publish = publish;
  for (int k = 0; k < 3; k++)
    if (!(c->got[k] = calloc(MAXSEQ, 1))) die("oom");
  for (int i = 0; i < 2; i++) {
    hd_pc_config_t cfg = {
        .on_event = on_pc_event, .ud = c, .wall_offset = (hd_time_t)time(NULL) * 1000000 - now_us()};
    if (hd_pc_new(&c->pc[i], &cfg) < 0) die("pc_new");
    uv_udp_init(g_loop, &c->udp[i]);
    c->udp[i].data = c;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    if (uv_udp_bind(&c->udp[i], (struct sockaddr *)&a, 0) < 0) die("udp bind");
    uv_udp_recv_start(&c->udp[i], udp_alloc, udp_recv);
  }
  hd_token_claims_t cl;
  memset(&cl, 0, sizeof cl);
  snprintf(cl.key, sizeof cl.key, "devkey");
  snprintf(cl.identity, sizeof cl.identity, "%s", name);
  snprintf(cl.room, sizeof cl.room, "itest-client");
  cl.room_join = cl.can_publish = cl.can_subscribe = cl.can_publish_data = 1;
  cl.iat = cl.nbf = (int64_t)time(NULL) - 5;
  cl.exp = cl.iat + 3600;
  char tok[HD_TOKEN_MAX];
  if (hd_token_mint(&cl, "devsecret", tok, sizeof tok) < 0) die("token mint failed");
  hd_rtc_signal_config_t sc = {.token = tok, .pub_pc = c->pc[0], .sub_pc = c->pc[1]};
  if (hd_rtc_signal_new(&c->sig, &sc) < 0) die("rtc_signal_new");
  hd_ws_client_config_t wc = {.on_open = ws_open, .on_message = ws_message, .on_close = ws_close, .ud = c};
  int rc = hd_ws_client_connect(&c->ws, g_loop, url, &wc);
  if (rc < 0) die("%s: ws connect: %s", name, hd_strerror(rc));
}

static void client_free(client_t *c) {
  hd_ws_client_free(c->ws);
  for (int i = 0; i < 2; i++) {
    uv_close((uv_handle_t *)&c->udp[i], NULL);
    hd_pc_free(c->pc[i]);
  }
  hd_rtc_signal_free(c->sig);
  for (int k = 0; k < 3; k++)
    free(c->got[k]);
}

static void fail_close(void *ud, hd_ws_client_t *ws, int code, const char *reason) {
  if (code != HD_WS_CLIENT_ABNORMAL || !strstr(reason, "refused"))
    die("unexpected close for a dead port: %d %s", code, reason);
  g_fail_closed = 1;
}

int main(void) {
  const char *hp = getenv("HUDONG_HTTP");
  if (!hp) die("HUDONG_HTTP not set (run via run_with_server.sh)");
  g_http_port = atoi(hp);
  g_loop = uv_default_loop();
  char url[128];

  /* a port nobody listens on (not the media port: its number also has the
   * ICE-TCP listener, io/ice_tcp.h) */
  snprintf(url, sizeof url, "ws://127.0.0.1:1/rtc");
  hd_ws_client_t *bad;
  hd_ws_client_config_t bc = {.on_close = fail_close};
  if (hd_ws_client_connect(&bad, g_loop, url, &bc) < 0) die("connect call failed");
  run_until(fail_closed, 10000, "connect failure");
  hd_ws_client_free(bad);
  /* wss:// is supported (issue 12 item 14; tests/integration/test_tls.py): to a
   * closed port it fails like ws:// does */
  g_fail_closed = 0;
  if (hd_ws_client_connect(&bad, g_loop, "wss://127.0.0.1:1/rtc", &bc) < 0) die("wss connect call failed");
  run_until(fail_closed, 10000, "wss connect failure");
  hd_ws_client_free(bad);

  snprintf(url, sizeof url, "ws://127.0.0.1:%d/rtc", g_http_port);
  uv_timer_t tick;
  uv_timer_init(g_loop, &tick);
  uv_timer_start(&tick, on_tick, 5, 5);
  client_init(&g_cl[0], "alice", 1, url);
  client_init(&g_cl[1], "bob", 0, url);
  run_until(both_joined, 10000, "joined");
  run_until(bob_received, 30000, "bob's media");

  /* let repairs of the last packets land, then check for holes */
  uint64_t settle = uv_hrtime() + 500000000ull;
  while (uv_hrtime() < settle)
    uv_run(g_loop, UV_RUN_ONCE);
  client_t *b = &g_cl[1];
  for (int k = HD_PC_AUDIO; k <= HD_PC_VIDEO; k++) {
    int64_t holes = 0;
    for (int64_t i = 0; i <= b->max[k] - b->first[k] - 50 && i < MAXSEQ; i++)
      holes += !b->got[k][i];
    if (holes)
      die("bob: %lld %s packets missing after repair", (long long)holes,
          k == HD_PC_VIDEO ? "video" : "audio");
  }
  hd_pc_stats_t ps, ss;
  hd_pc_stats(g_cl[0].pc[0], &ps);
  hd_pc_stats(b->pc[1], &ss);
  printf("itest_client: bob got %llu video, %llu audio (%llu via RTX); alice sent %llu video, rtt %lld us\n",
         (unsigned long long)b->rx[HD_PC_VIDEO], (unsigned long long)b->rx[HD_PC_AUDIO],
         (unsigned long long)b->rtx, (unsigned long long)ps.tracks[1].packets_sent, (long long)ps.rtt);
  if (ss.tracks[0].kind == 0 || hd_pc_state(b->pc[1]) != HD_PC_CONNECTED)
    die("bob's subscriber pc not connected");

  /* both leave cleanly: left + close 1000 */
  for (int i = 0; i < 2; i++) {
    if (hd_rtc_signal_leave(g_cl[i].sig) < 0) die("leave");
    flush(&g_cl[i]);
  }
  run_until(both_closed, 10000, "left + close");
  for (int i = 0; i < 2; i++) {
    if (!g_cl[i].left) die("%s: no left", g_cl[i].name);
    if (g_cl[i].close_code != 1000) die("%s: close code %d", g_cl[i].name, g_cl[i].close_code);
    hd_pc_close(g_cl[i].pc[0]);
    hd_pc_close(g_cl[i].pc[1]);
    flush(&g_cl[i]);
  }
  uv_timer_stop(&tick);
  uv_close((uv_handle_t *)&tick, NULL);
  for (int i = 0; i < 2; i++)
    client_free(&g_cl[i]);
  uv_run(g_loop, UV_RUN_DEFAULT);
  if (uv_loop_close(g_loop) != 0) die("loop not empty at exit");
  printf("itest_client: ok\n");
  return 0;
}
