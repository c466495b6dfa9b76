/* `hudong bench load`: a load generator (issue 7). M publishers and N
 * subscribers per room that speak real ICE/DTLS/SRTP (client/pc.h) but never
 * decode: publishers send the synthetic pattern of client/load.h (audio 50
 * packets/s, video ~1 Mbps with keyframe bursts), each payload carrying its
 * publisher, sequence and send time; subscribers account loss and one-way
 * added latency per stream. Publishers do not pace (their rate is fixed, not
 * the estimate's): the latency is socket to socket, the node's alone. One process; one UDP socket per
 * PeerConnection; the subscriber legs split over --threads threads, each with its own libuv loop and counts
 * (bench_load.h "Threads"), the publishers on the main one.
 *
 * Targets: Hudong rooms (/rtc signaling, client/rtc_signal.h, tokens minted
 * here) and the Janus VideoRoom plugin over its HTTP API (bench_janus.c).
 *
 * Phases: publishers join and connect; subscriber legs join `ramp` at a time
 * or at --join-rate legs/s (each thread its share); a warm-up; the measurement window [w0, w1) on send time;
 * a grace second for late packets. Loss = 1 - received / expected over the window, where expected counts, for
 * every subscriber leg, the packets its publishers sent in the window (a subscriber that never connected
 * counts as total loss). With
 * --server-pid, the server's CPU time (utime + stime, /proc/PID/stat) over the
 * window and its RSS before the subscribers and at the end are reported too.
 *
 * --count-only (for capacity runs, where decrypting every packet would make the
 * generator the bottleneck): subscribers still run ICE/DTLS/SRTP and RTCP, but
 * read media in recvmmsg batches and account it from the clear RTP header per
 * SSRC (client/load.h hd_load_seq_t) without decrypting it; no latency. Loss is
 * the larger of the sequence-gap loss and the shortfall of packets arriving in
 * the window against what the senders sent in it (a stalled or missing stream
 * leaves no gap). --balance-workers W names the rooms so that they split evenly
 * over `hudong serve --media-workers W`. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "base/err.h"
#include "client/rtc_signal.h"
#include "cmd/bench_load.h"
#include "cmd/bench_proc.h"
#include "cmd/cmd.h"
#include "io/ws_client.h"
#include "proto/token.h"

#define PKT_BATCH 64

hd_time_t bl_now(void) { return (hd_time_t)(uv_hrtime() / 1000); }

static void att_report(bl_leg_t *l);
static void run_for(bl_part_t *p, hd_time_t until, int (*cond)(bl_part_t *));

void bl_leg_fail(bl_leg_t *l, const char *fmt, ...) {
  if (l->failed) return;
  l->failed = 1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(l->why, sizeof l->why, fmt, ap);
  va_end(ap);
  if (!l->run->o.quiet) fprintf(stderr, "bench load: %s: %s\n", l->identity, l->why);
  if (!l->att_done && l->started && !l->part->stopping) { /* failed before its first media */
    l->att_done = 1;
    l->att.ok = 0;
    snprintf(l->att.reason, sizeof l->att.reason, "%.127s", l->why);
    att_report(l);
  }
}

/* The leg reached its first remote media (a subscriber: its first media
 * packet; a publisher, which subscribes to nothing: "joined", as web/rtc.js
 * counts a join into a room where nobody else publishes). */
static void leg_media(bl_leg_t *l) {
  if (l->att_done || l->failed) return;
  l->t_media = bl_now();
  l->att_done = 1;
  l->att.ok = 1;
  l->att.first_media_ms = (l->t_media - l->t_start) / 1000;
  att_report(l);
}

void bl_leg_flush(bl_leg_t *l) {
  if (!l->pc) return;
  hd_time_t now = bl_now();
  uint8_t buf[1500];
  struct sockaddr_storage to;
  socklen_t tl;
  int n;
  while ((n = hd_pc_poll(l->pc, buf, sizeof buf, &to, &tl, now)) > 0) {
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)n);
    uv_udp_try_send(&l->udp, &b, 1, (const struct sockaddr *)&to); /* a full buffer = loss, measured */
  }
}

int bl_leg_wants(const bl_leg_t *l, int p) { return p % l->run->sub_legs == l->sub_leg; }

/* ---- PeerConnection events ---- */

/* The last packet of a keyframe reached one more subscriber. */
static void key_arrival(bl_part_t *r, const hd_load_hdr_t *h, hd_time_t arrival) {
  int i = 0;
  while (i < r->n_keys && (r->keys[i].pub_id != h->pub_id || r->keys[i].seq != h->seq))
    i++;
  if (i == r->n_keys) {
    if (r->n_keys == BL_MAX_KEYS) return;
    r->n_keys++;
    r->keys[i].pub_id = h->pub_id;
    r->keys[i].seq = h->seq;
    r->keys[i].sent = h->sent;
    r->keys[i].first = r->keys[i].last = arrival;
    r->keys[i].n = 0;
  }
  if (arrival < r->keys[i].first) r->keys[i].first = arrival;
  if (arrival > r->keys[i].last) r->keys[i].last = arrival;
  r->keys[i].n++;
}

static int cmp_time(const void *a, const void *b) {
  hd_time_t x = *(const hd_time_t *)a, y = *(const hd_time_t *)b;
  return x < y ? -1 : x > y;
}

/* Median and max of the first-to-last spread and of the last subscriber's
 * delay over keyframes that reached `want` subscribers; returns how many. */
static int key_stats(const bl_run_t *r, int want, hd_time_t *spread_p50, hd_time_t *spread_max,
                     hd_time_t *last_p50, hd_time_t *last_max) {
  hd_time_t sp[BL_MAX_KEYS], la[BL_MAX_KEYS];
  int n = 0;
  for (int i = 0; i < r->n_keys; i++)
    if (r->keys[i].n >= want) {
      sp[n] = r->keys[i].last - r->keys[i].first;
      la[n++] = r->keys[i].last - r->keys[i].sent;
    }
  *spread_p50 = *spread_max = *last_p50 = *last_max = 0;
  if (!n) return 0;
  qsort(sp, (size_t)n, sizeof sp[0], cmp_time);
  qsort(la, (size_t)n, sizeof la[0], cmp_time);
  *spread_p50 = sp[n / 2];
  *spread_max = sp[n - 1];
  *last_p50 = la[n / 2];
  *last_max = la[n - 1];
  return n;
}

static void on_pc_event(void *ud, const hd_pc_event_t *ev) {
  bl_leg_t *l = ud;
  bl_run_t *r = l->run;
  switch (ev->type) {
  case HD_PC_EV_STATE:
    if (ev->state == HD_PC_CONNECTED && !l->connected) {
      l->connected = 1;
      l->t_connected = bl_now();
      if (l->is_pub) {
        hd_load_source_cfg_t sc = {
            .audio = 1, .video = !r->o.audio_only, .video_kbps = r->o.video_kbps, .key_interval = HD_SEC(2)};
        hd_load_source_init(&l->src, &sc, l->pub_id, l->t_connected);
        hd_load_source_window(&l->src, r->w0, r->w1);
      }
    }
    if (ev->state == HD_PC_FAILED) bl_leg_fail(l, "pc failed: %s", ev->reason);
    break;
  case HD_PC_EV_KEYFRAME:
    if (l->is_pub) hd_load_source_request_key(&l->src);
    break;
  case HD_PC_EV_RTP: {
    hd_load_hdr_t h;
    if (hd_load_payload_parse(ev->rtp.payload, ev->rtp.payload_len, &h) < 0) {
      l->rx_bad++;
      break;
    }
    hd_time_t arrival = bl_now();
    if (h.kind == HD_LOAD_VIDEO && (h.flags & HD_LOAD_F_KEY) && (h.flags & HD_LOAD_F_MARKER) &&
        h.sent >= l->part->w0 && h.sent < l->part->w1)
      key_arrival(l->part, &h, arrival);
    for (int i = 0; i < l->n_rx; i++)
      if (l->rx[i].pub_id == h.pub_id && l->rx[i].kind == h.kind) {
        hd_load_rx_feed(&l->rx[i], &h, arrival, l->part->w0, l->part->w1, l->part->hist);
        if (!l->ready) l->ready = 1;
        if (!l->att_done) leg_media(l);
        return;
      }
    l->rx_unknown++;
    break;
  }
  default: break;
  }
}

/* The name of room rm: <room> alone, <room>-<rm>, or with --balance-workers the
 * names that split the rooms evenly over the server's media workers. */
static int room_name(const bl_opts_t *o, int rm, char *out, size_t cap) {
  if (o->balance_workers > 0) return hd_load_balanced_room(o->key, o->room, rm, o->balance_workers, out, cap);
  int w = o->rooms > 1 ? snprintf(out, cap, "%s-%d", o->room, rm) : snprintf(out, cap, "%s", o->room);
  return w < 0 || (size_t)w >= cap ? HD_ENOSPC : 0;
}

/* ---- UDP ---- */

/* libuv hands recvmmsg a buffer cut in 64 KiB slots, one datagram each */
#define RX_SLOT (64 * 1024)
#define RX_BATCH 16

/* The receive buffers belong to the leg's thread (its part): a datagram is
 * handled before the next read on that loop, so one buffer per part serves
 * all its legs. */
static void udp_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  bl_part_t *p = ((bl_leg_t *)h->data)->part;
  *b = uv_buf_init(p->rx_one, sizeof p->rx_one);
}

static void udp_alloc_batch(uv_handle_t *h, size_t s, uv_buf_t *b) {
  bl_part_t *p = ((bl_leg_t *)h->data)->part;
  if (!p->rx_batch) p->rx_batch = malloc(RX_BATCH * RX_SLOT);
  *b = uv_buf_init((char *)p->rx_batch, p->rx_batch ? RX_BATCH * RX_SLOT : 0);
}

/* Count-only: an SRTP packet of a connected subscriber is accounted from its
 * clear header and never decrypted. Returns 1 when it was (RTCP, STUN, DTLS go
 * to the pc as usual: receiver reports, consent, keepalive all still run). */
static int count_rtp(bl_leg_t *l, const uint8_t *p, size_t n) {
  uint32_t ssrc;
  uint16_t seq;
  int pt;
  if (!hd_load_rtp_peek(p, n, &ssrc, &seq, &pt)) return 0;
  hd_load_seq_t *s = NULL;
  for (int i = 0; i < l->n_seq; i++)
    if (l->seq[i].ssrc == ssrc) {
      s = &l->seq[i];
      break;
    }
  if (!s) {
    if (l->n_seq >= l->n_rx + 2) { /* more streams than asked for: not ours to count */
      l->rx_unknown++;
      return 1;
    }
    s = &l->seq[l->n_seq++];
    hd_load_seq_init(s, ssrc, pt);
    if (l->part->window >= 1) hd_load_seq_window_start(s);
    if (l->part->window >= 2) hd_load_seq_window_end(s);
  }
  hd_load_seq_feed(s, seq);
  l->ready = 1;
  if (!l->att_done) leg_media(l);
  return 1;
}

static void udp_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *b, const struct sockaddr *from, unsigned flags) {
  bl_leg_t *l = u->data;
  if (n <= 0 || !from || !l->pc) return;
  if (l->seq && l->connected && count_rtp(l, (const uint8_t *)b->base, (size_t)n)) return;
  hd_pc_feed(l->pc, (const uint8_t *)b->base, (size_t)n, from,
             from->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6), bl_now());
  bl_leg_flush(l);
}

/* Creates the leg's pc and socket. */
static int leg_open(bl_leg_t *l) {
  bl_run_t *r = l->run;
  struct sockaddr_in a;
  uv_ip4_addr(r->o.local_ip, 0, &a);
  int batch = l->seq != NULL; /* count-only subscribers read in recvmmsg batches */
  uv_loop_t *loop = l->part->loop;
  if ((batch ? uv_udp_init_ex(loop, &l->udp, AF_INET | UV_UDP_RECVMMSG) : uv_udp_init(loop, &l->udp)) < 0)
    return HD_EIO;
  l->udp.data = l;
  if (uv_udp_bind(&l->udp, (struct sockaddr *)&a, 0) < 0) return HD_EIO;
  int sz = 1 << 20;
  uv_recv_buffer_size((uv_handle_t *)&l->udp, &sz);
  sz = 1 << 20;
  uv_send_buffer_size((uv_handle_t *)&l->udp, &sz);
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  uv_udp_getsockname(&l->udp, (struct sockaddr *)&ss, &sl);
  hd_pc_config_t cfg = {.on_event = on_pc_event,
                        .ud = l,
                        .local_ip = r->o.local_ip,
                        .local_port = ntohs(((struct sockaddr_in *)&ss)->sin_port),
                        .wall_offset = (hd_time_t)time(NULL) * 1000000 - bl_now(),
                        .cname = l->identity,
                        /* the synthetic source sends its fixed rate whatever the estimate
                         * (it ignores HD_PC_EV_SEND_RATE): paced at an estimate that starts
                         * at 300 kbit/s and grows 8 %/s, its video waited in the publisher's
                         * own pacer up to that pacer's 250 ms bound for the first ~13 s,
                         * and that wait read as ~232 ms of "added latency" (docs/overlay.md) */
                        .no_pacing = l->is_pub};
  int rc = hd_pc_new(&l->pc, &cfg);
  if (rc < 0) return rc;
  uv_udp_recv_start(&l->udp, batch ? udp_alloc_batch : udp_alloc, udp_recv);
  l->t_start = bl_now();
  l->started = 1;
  memset(&l->att, 0, sizeof l->att);
  snprintf(l->att.id, sizeof l->att.id, "ja_%d_%.24s", (int)getpid() % 100000, l->identity);
  room_name(&r->o, l->room, l->att.room, sizeof l->att.room);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  l->att.started_at_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  l->att.join_ms = l->att.first_media_ms = -1;
  return 0;
}

/* ---- publisher media ---- */

static uint8_t g_pkt_bufs[PKT_BATCH * HD_LOAD_MAX_PAYLOAD]; /* publishers run on the main thread only */

static void pub_media(bl_leg_t *l, hd_time_t now) {
  if (!l->connected || l->failed || !l->ready || hd_pc_state(l->pc) != HD_PC_CONNECTED) return;
  hd_load_pkt_t pk[PKT_BATCH];
  int n;
  while (hd_load_source_next(&l->src) <= now &&
         (n = hd_load_source_poll(&l->src, now, g_pkt_bufs, HD_LOAD_MAX_PAYLOAD, pk, PKT_BATCH)) > 0) {
    for (int i = 0; i < n; i++) {
      hd_pc_rtp_send_t p = {.track = pk[i].kind == HD_LOAD_AUDIO ? l->atrack : l->vtrack,
                            .marker = pk[i].marker,
                            .ts = pk[i].rtp_ts,
                            .payload = g_pkt_bufs + (size_t)i * HD_LOAD_MAX_PAYLOAD,
                            .len = pk[i].len,
                            .audio_level = pk[i].kind == HD_LOAD_AUDIO ? 30 : -1,
                            .voice = 1};
      hd_pc_send_rtp(l->pc, &p, now);
      if (i % 8 == 7) bl_leg_flush(l);
    }
    bl_leg_flush(l);
  }
}

/* ---- the Hudong target: /rtc over a WebSocket ---- */

typedef struct {
  hd_rtc_signal_t *sig;
  hd_ws_client_t *ws;
  int closed;
} hd_sess_t;

static void hd_flush_sig(bl_leg_t *l) {
  hd_sess_t *s = l->t;
  size_t n;
  while (s->ws && hd_ws_client_is_open(s->ws) && (n = hd_rtc_signal_peek_len(s->sig)) > 0) {
    char *t = malloc(n + 1);
    if (!t) return;
    hd_rtc_signal_poll(s->sig, t, n + 1);
    if (hd_ws_client_send(s->ws, t, n) < 0) bl_leg_fail(l, "ws send failed");
    free(t);
  }
}

/* Sends the leg's join attempt as quality_join on its own /rtc connection
 * (the node takes it only from a joined connection, one per second: a leg
 * sends one; attempts of legs that never joined go out at the end of the
 * run through other legs, report_pending()). */
static void att_report(bl_leg_t *l) {
  hd_sess_t *s = l->t;
  if (l->run->o.target != BL_HUDONG || l->att_sent || !l->joined || !s || !s->ws ||
      !hd_ws_client_is_open(s->ws))
    return;
  char buf[1024];
  int n = hd_join_report_json(&l->att, 1, "qj", buf, sizeof buf);
  if (n > 0 && hd_ws_client_send(s->ws, buf, (size_t)n) == 0) l->att_sent = 1;
}

static void hd_sub_select(bl_leg_t *l) {
  hd_sess_t *s = l->t;
  const char *sids[HD_PC_MAX_TRANSCEIVERS];
  size_t n = 0;
  for (int i = 0; i < hd_rtc_signal_participant_count(s->sig); i++) {
    const hd_rtc_signal_participant_t *p = hd_rtc_signal_participant(s->sig, i);
    int room, idx;
    char c;
    if (sscanf(p->identity, "r%d-p%d%c", &room, &idx, &c) != 2 || !bl_leg_wants(l, idx)) continue;
    for (int k = 0; k < p->n_tracks && n < HD_PC_MAX_TRANSCEIVERS; k++)
      sids[n++] = p->tracks[k].sid;
  }
  if (n && hd_rtc_signal_subscribe(s->sig, 1, sids, n) < 0) bl_leg_fail(l, "subscribe failed");
}

static void hd_events(bl_leg_t *l) {
  hd_sess_t *s = l->t;
  hd_rtc_signal_event_t ev;
  while (hd_rtc_signal_poll_event(s->sig, &ev)) {
    switch (ev.type) {
    case HD_RTC_SIGNAL_EV_JOINED:
      l->joined = 1;
      l->att.join_ms = (bl_now() - l->t_start) / 1000;
      if (l->is_pub) leg_media(l);
      if (l->att_done) att_report(l); /* failed in between: say so now */
      if (l->is_pub) {
        l->atrack = hd_pc_add_transceiver(l->pc, HD_PC_AUDIO, HD_PC_SENDONLY);
        hd_rtc_signal_pub_t t[2] = {{.cid = "mic", .track = l->atrack, .source = "microphone"},
                                    {.cid = "cam", .source = "camera"}};
        if (!l->run->o.audio_only)
          t[1].track = l->vtrack = hd_pc_add_transceiver(l->pc, HD_PC_VIDEO, HD_PC_SENDONLY);
        if (hd_rtc_signal_publish(s->sig, t, l->run->o.audio_only ? 1 : 2, bl_now()) < 0)
          bl_leg_fail(l, "publish failed");
      } else if (l->run->sub_legs > 1) {
        hd_sub_select(l);
      }
      break;
    case HD_RTC_SIGNAL_EV_PUBLISH_ANSWER:
      if (ev.code < 0)
        bl_leg_fail(l, "publish answer: %s", hd_strerror(ev.code));
      else
        l->ready = 1;
      break;
    case HD_RTC_SIGNAL_EV_SUBSCRIBER_OFFER:
      if (ev.code < 0) bl_leg_fail(l, "subscriber offer: %s", hd_strerror(ev.code));
      break;
    case HD_RTC_SIGNAL_EV_ERROR:
      if (ev.id &&
          !strcmp(ev.id, "qj")) { /* our quality_join refused (rate, node budget): not the leg's failure */
        l->part->joins_refused++;
        if (!l->run->o.quiet)
          fprintf(stderr, "bench load: %s: quality_join refused: %s\n", l->identity, ev.message);
        break;
      }
      bl_leg_fail(l, "signaling error %d %s: %s", ev.code, ev.reason, ev.message);
      break;
    case HD_RTC_SIGNAL_EV_LEFT:
      if (!l->part->stopping) bl_leg_fail(l, "left: %s", ev.reason);
      break;
    case HD_RTC_SIGNAL_EV_TIMEOUT: bl_leg_fail(l, "signaling timeout"); break;
    default: break;
    }
  }
  hd_flush_sig(l);
  bl_leg_flush(l);
}

static void hd_ws_open(void *ud, hd_ws_client_t *ws) {
  bl_leg_t *l = ud;
  hd_rtc_signal_join(((hd_sess_t *)l->t)->sig, bl_now());
  hd_flush_sig(l);
}
static void hd_ws_message(void *ud, hd_ws_client_t *ws, const char *text, size_t len) {
  bl_leg_t *l = ud;
  hd_rtc_signal_feed(((hd_sess_t *)l->t)->sig, text, len, bl_now());
  hd_events(l);
}
static void hd_ws_close(void *ud, hd_ws_client_t *ws, int code, const char *reason) {
  bl_leg_t *l = ud;
  hd_sess_t *s = l->t;
  s->closed = 1;
  if (!l->part->stopping) bl_leg_fail(l, "websocket closed: %d %s", code, reason);
}

static int hd_start(bl_leg_t *l) {
  bl_run_t *r = l->run;
  hd_sess_t *s = calloc(1, sizeof *s);
  if (!s) return HD_ENOMEM;
  l->t = s;
  hd_token_claims_t cl;
  int rc;
  memset(&cl, 0, sizeof cl);
  snprintf(cl.key, sizeof cl.key, "%s", r->o.key);
  snprintf(cl.identity, sizeof cl.identity, "%s", l->identity);
  if ((rc = room_name(&r->o, l->room, cl.room, sizeof cl.room)) < 0) return rc;
  cl.room_join = 1;
  cl.can_publish = l->is_pub;
  cl.can_subscribe = !l->is_pub;
  cl.iat = cl.nbf = (int64_t)time(NULL) - 5;
  cl.exp = cl.iat + 86400;
  char tok[HD_TOKEN_MAX];
  rc = hd_token_mint(&cl, r->o.secret, tok, sizeof tok);
  if (rc < 0) return rc;
  hd_rtc_signal_config_t sc = {.token = tok,
                               .no_auto_subscribe = l->is_pub || r->sub_legs > 1,
                               .pub_pc = l->is_pub ? l->pc : NULL,
                               .sub_pc = l->is_pub ? NULL : l->pc};
  if ((rc = hd_rtc_signal_new(&s->sig, &sc)) < 0) return rc;
  hd_ws_client_config_t wc = {.on_open = hd_ws_open,
                              .on_message = hd_ws_message,
                              .on_close = hd_ws_close,
                              .ud = l,
                              .connect_timeout_ms = 15000};
  const char *url = !l->is_pub && r->o.n_sub_urls ? r->o.sub_urls[l->index % r->o.n_sub_urls] : r->o.url;
  return hd_ws_client_connect(&s->ws, l->part->loop, url, &wc);
}

static void hd_tick(bl_leg_t *l, hd_time_t now) {
  hd_sess_t *s = l->t;
  if (!s || !s->sig) return;
  if (hd_rtc_signal_next_timeout(s->sig) <= now) hd_rtc_signal_handle_timeout(s->sig, now);
  hd_events(l);
}

static void hd_stop(bl_leg_t *l) {
  hd_sess_t *s = l->t;
  if (!s) return;
  if (s->sig && s->ws && hd_ws_client_is_open(s->ws)) {
    hd_rtc_signal_leave(s->sig);
    hd_flush_sig(l);
  }
}

static void hd_free(bl_leg_t *l) {
  hd_sess_t *s = l->t;
  if (!s) return;
  hd_ws_client_free(s->ws);
  hd_rtc_signal_free(s->sig);
  free(s);
  l->t = NULL;
}

/* ---- run ---- */

/* Every 2 ms a part's timer runs the publishers' media (part 0) and the
 * timers of a fifth of its subscriber legs (ICE consent, DTLS retransmits,
 * RTCP reports, signaling pings), so each subscriber leg is visited every
 * 10 ms: those timers have far more slack than that, and visiting 800 legs
 * every 2 ms was a cost of its own. Packets and signaling messages are
 * handled when they arrive, not here. */
#define SUB_TICK_SPREAD 5

static void tick_leg(bl_leg_t *l, hd_time_t now) {
  if (!l->started) return;
  if (l->run->o.target == BL_HUDONG) hd_tick(l, now);
  if (hd_pc_next_timeout(l->pc) <= now) hd_pc_handle_timeout(l->pc, now);
  if (l->is_pub) pub_media(l, now);
  bl_leg_flush(l);
}

static void tick_cb(uv_timer_t *t) {
  bl_part_t *p = t->data;
  bl_run_t *r = p->run;
  hd_time_t now = bl_now();
  int k = (int)(p->ticks++ % SUB_TICK_SPREAD);
  if (p->id == 0)
    for (int i = 0; i < r->n_pubs; i++)
      tick_leg(&r->pubs[i], now);
  for (int i = p->lo + k; i < p->hi; i += SUB_TICK_SPREAD)
    tick_leg(&r->subs[i], now);
  if (p->id == 0 && r->o.target == BL_JANUS) bl_janus_tick(r, now);
}

static int start_leg(bl_leg_t *l) {
  int rc = leg_open(l);
  if (rc < 0) {
    bl_leg_fail(l, "cannot open its socket or PeerConnection: %s", hd_strerror(rc));
    return rc;
  }
  rc = l->run->o.target == BL_HUDONG ? hd_start(l) : bl_janus_start(l);
  if (rc < 0) bl_leg_fail(l, "start: %s", hd_strerror(rc));
  return rc;
}

/* The legs of part p: publishers first (part 0 only), then its subscriber legs. */
static int part_legs(const bl_part_t *p) { return (p->id == 0 ? p->run->n_pubs : 0) + p->hi - p->lo; }
static bl_leg_t *part_leg(bl_part_t *p, int i) {
  bl_run_t *r = p->run;
  int np = p->id == 0 ? r->n_pubs : 0;
  return i < np ? &r->pubs[i] : &r->subs[p->lo + i - np];
}

/* Sends a batch of attempts through the next leg of part p (from *cursor on)
 * still joined and connected. Returns 1 if sent. */
static int send_through_other(bl_part_t *p, int *cursor, const hd_join_attempt_t *b, int n) {
  while (*cursor < part_legs(p)) {
    bl_leg_t *x = part_leg(p, (*cursor)++);
    hd_sess_t *s = x->t;
    if (!x->joined || x->failed || !s || !s->ws || !hd_ws_client_is_open(s->ws)) continue;
    char buf[HD_JOIN_REPORT_MAX * 600];
    int len = hd_join_report_json(b, n, "qj", buf, sizeof buf);
    if (len > 0 && hd_ws_client_send(s->ws, buf, (size_t)len) == 0) return 1;
  }
  return 0;
}

/* Runs the part's loop until cond (or the deadline). */
static void run_for(bl_part_t *p, hd_time_t until, int (*cond)(bl_part_t *)) {
  while (bl_now() < until && !(cond && cond(p)))
    uv_run(p->loop, UV_RUN_ONCE);
}

/* End of the run, on part p's thread: every started leg's attempt gets its
 * outcome (no media by now = failed), and those not yet sent go to the node:
 * a joined leg's on its own connection; the others (never joined: the node
 * takes quality_join only from a joined connection, as a browser reports a
 * failed attempt on its next connection) in batches of up to 20 through the
 * part's legs still joined, one batch per leg (the node takes one
 * quality_join per connection per second; the caller waits a second before
 * if any leg reported recently). Attempts no leg of the part could carry are
 * left in p->orphans for the main thread to send through part 0's legs. */
static void report_pending(bl_part_t *p) {
  int total = part_legs(p);
  for (int i = 0; i < total; i++) {
    bl_leg_t *l = part_leg(p, i);
    if (!l->started || l->att_done) continue;
    l->att_done = 1;
    l->att.ok = 0;
    snprintf(l->att.reason, sizeof l->att.reason, "%.127s", l->failed ? l->why : "no media");
  }
  if (p->run->o.target != BL_HUDONG) return;
  for (int i = 0; i < total; i++) {
    bl_leg_t *l = part_leg(p, i);
    if (l->started && !l->att_sent) att_report(l);
  }
  int pending = 0;
  for (int i = 0; i < total; i++)
    pending += part_leg(p, i)->started && !part_leg(p, i)->att_sent;
  if (pending) run_for(p, bl_now() + HD_MS(1100), NULL); /* the reporters' last quality_join is > 1 s old */
  hd_join_attempt_t batch[HD_JOIN_REPORT_MAX];
  int nb = 0, cursor = 0;
  for (int i = 0; i < total; i++) {
    bl_leg_t *l = part_leg(p, i);
    if (l->started && !l->att_sent) {
      batch[nb++] = l->att;
      l->att_sent = 1;
    }
    if (nb && (nb == HD_JOIN_REPORT_MAX || i == total - 1)) {
      if (!send_through_other(p, &cursor, batch, nb)) {
        hd_join_attempt_t *o = realloc(p->orphans, (size_t)(p->n_orphans + nb) * sizeof *o);
        if (o) {
          memcpy(o + p->n_orphans, batch, (size_t)nb * sizeof *o);
          p->orphans = o;
          p->n_orphans += nb;
        } else {
          p->tally.unreported += nb;
        }
      }
      nb = 0;
    }
  }
  p->report_cursor = cursor;
}

static int pubs_ready(bl_part_t *p) {
  bl_run_t *r = p->run;
  for (int i = 0; i < r->n_pubs; i++)
    if (!r->pubs[i].failed && !(r->pubs[i].connected && r->pubs[i].ready)) return 0;
  return 1;
}

static int subs_settled(bl_part_t *p) {
  for (int i = p->lo; i < p->hi; i++) {
    bl_leg_t *l = &p->run->subs[i];
    if (!l->failed && !(l->connected && l->ready)) return 0;
  }
  return 1;
}

/* How far a leg that is not receiving got: joined the room (signaling), its
 * PeerConnection's state (ICE/DTLS), connected (DTLS done). */
static const char *leg_stage(const bl_leg_t *l) {
  static __thread char b[160];
  hd_pc_stats_t st = {0};
  if (l->pc) hd_pc_stats(l->pc, &st);
  snprintf(b, sizeof b, "%s, pc %s, ice checks %llu, responses %llu, datagrams in %llu",
           l->joined ? "joined" : "not joined", l->pc ? hd_pc_state_name(st.state) : "none",
           (unsigned long long)st.stun_checks_sent, (unsigned long long)st.stun_responses,
           (unsigned long long)st.datagrams_in);
  return b;
}

/* Starts the part's pending subscriber legs while fewer than its ramp are in
 * progress and, with a join rate, no faster than that rate (the first at
 * once). Checked at most once a millisecond (it walks the part's legs). */
static int ramp_subs(bl_part_t *p) {
  bl_run_t *r = p->run;
  hd_time_t now = bl_now();
  if (now - p->ramp_checked < 1000) return 0;
  p->ramp_checked = now;
  int inflight = 0;
  for (int i = p->lo; i < p->next_start; i++) {
    bl_leg_t *l = &r->subs[i];
    if (l->started && !l->failed && !(l->connected && l->ready)) {
      inflight++;
      if (now - l->t_start > HD_SEC(r->o.join_timeout_s))
        bl_leg_fail(l, "not receiving after %d s (%s)", r->o.join_timeout_s, leg_stage(l));
    }
    if (l->failed && r->o.fail_fast) atomic_store_explicit(&r->sub_failed, 1, memory_order_relaxed);
  }
  /* the run has failed: no point joining the rest */
  if (r->o.fail_fast && atomic_load_explicit(&r->sub_failed, memory_order_relaxed)) return 1;
  int allowed = p->hi - p->lo;
  if (p->join_rate > 0) allowed = 1 + (int)((double)(now - p->join_t0) * p->join_rate / 1e6);
  while (p->next_start < p->hi && inflight < p->ramp && p->n_started < allowed) {
    bl_leg_t *l = &r->subs[p->next_start++];
    if (!p->n_started++) p->tally.first_start = now;
    p->tally.last_start = now;
    start_leg(l);
    inflight += !l->failed;
  }
  return p->next_start == p->hi && subs_settled(p);
}

/* Count-only: marks the window start (1) or end (2) on every stream of the part. */
static void mark_window(bl_part_t *p, int w) {
  p->window = w;
  for (int i = p->lo; i < p->hi; i++)
    for (int k = 0; k < p->run->subs[i].n_seq; k++)
      (w == 1 ? hd_load_seq_window_start : hd_load_seq_window_end)(&p->run->subs[i].seq[k]);
}

/* Phase 2, on the part's thread: its subscriber legs join; then it tells
 * the main thread (phase 1). */
static void part_join(bl_part_t *p) {
  bl_run_t *r = p->run;
  int n = p->hi - p->lo;
  p->join_t0 = bl_now();
  /* the old window (3 s per ramp's worth of legs) or, paced, the time to start
   * them all; plus the join timeout of the last one */
  double span_s = 3.0 * (n / p->ramp + 1);
  if (p->join_rate > 0 && n / p->join_rate * 1.5 > span_s) span_s = n / p->join_rate * 1.5;
  p->join_deadline = p->join_t0 + (hd_time_t)(span_s * 1e6) + HD_SEC(r->o.join_timeout_s) + HD_SEC(1);
  if (n) run_for(p, p->join_deadline, ramp_subs);
  int ok = 0, started = 0;
  for (int i = p->lo; i < p->hi; i++) {
    bl_leg_t *l = &r->subs[i];
    if (!l->failed && !(l->connected && l->ready))
      bl_leg_fail(l, l->started ? "not receiving (%s)" : "never started%s", l->started ? leg_stage(l) : "");
    ok += !l->failed;
    started += l->started;
  }
  p->tally.subs_ok = ok;
  p->tally.subs_started = started;
  p->tally.join_done = bl_now();
  atomic_store_explicit(&p->phase, 1, memory_order_release);
}

static int window_announced(bl_part_t *p) {
  return atomic_load_explicit(&p->run->go, memory_order_acquire) >= 1;
}
static int stop_announced(bl_part_t *p) {
  return atomic_load_explicit(&p->run->go, memory_order_acquire) >= 2;
}

/* What the part counted (on its thread, after the window and the grace). */
static void part_tally(bl_part_t *p) {
  bl_run_t *r = p->run;
  bl_tally_t *t = &p->tally;
  for (int i = p->lo; i < p->hi; i++) {
    bl_leg_t *l = &r->subs[i];
    for (int k = 0; k < l->n_rx; k++) {
      t->received += l->rx[k].in_window;
      t->dups += l->rx[k].duplicates;
    }
    t->unknown += l->rx_unknown;
    t->bad += l->rx_bad;
    for (int k = 0; k < l->n_seq; k++) {
      const hd_load_seq_t *q = &l->seq[k];
      t->seq_expected += hd_load_seq_expected(q);
      t->seq_received += q->in_window;
      t->arrived += q->arrived;
      t->dups += q->duplicates;
      t->too_old += q->too_old;
    }
  }
  for (int i = 0; i < part_legs(p); i++)
    if (part_leg(p, i)->started) hd_join_tally_add(&t->jt, &part_leg(p, i)->att);
  t->joins_refused = p->joins_refused;
}

/* Phase 3, on the part's thread: waits for the window, marks it, then counts
 * (phase 2). at(ud, w) runs on part 0 right after each mark (the main
 * thread's server CPU readings). */
static void part_measure(bl_part_t *p, void (*at)(void *ud, int w), void *ud) {
  run_for(p, HD_TIME_NEVER, window_announced);
  p->w0 = p->run->w0;
  p->w1 = p->run->w1;
  run_for(p, p->w0, NULL);
  mark_window(p, 1);
  if (at) at(ud, 1);
  double c0 = bl_thread_cpu_us();
  run_for(p, p->w1, NULL);
  mark_window(p, 2);
  if (at) at(ud, 2);
  p->tally.cpu_us = bl_thread_cpu_us() - c0;
  run_for(p, p->w1 + HD_SEC(1), NULL);
  report_pending(p);
  /* nothing counted from here on: the hist and keyframes are the main thread's to merge */
  p->w0 = p->w1 = HD_TIME_NEVER;
  part_tally(p);
  atomic_store_explicit(&p->phase, 2, memory_order_release);
}

/* Phase 4: leave, close, free the part's legs (part 0 also the publishers). */
static void part_stop(bl_part_t *p) {
  bl_run_t *r = p->run;
  p->stopping = 1;
  if (r->o.target == BL_HUDONG) {
    for (int i = 0; i < part_legs(p); i++)
      hd_stop(part_leg(p, i));
    run_for(p, bl_now() + HD_MS(500), NULL);
  } else if (p->id == 0) {
    bl_janus_stop(r);
  }
  for (int i = 0; i < part_legs(p); i++) {
    bl_leg_t *l = part_leg(p, i);
    if (l->pc) {
      hd_pc_close(l->pc);
      bl_leg_flush(l);
    }
    if (r->o.target == BL_HUDONG) hd_free(l);
    if (l->started) uv_close((uv_handle_t *)&l->udp, NULL);
    hd_pc_free(l->pc);
    l->pc = NULL;
  }
  uv_timer_stop(&p->tick);
  uv_close((uv_handle_t *)&p->tick, NULL);
  uv_run(p->loop, UV_RUN_DEFAULT);
}

static void part_start_timer(bl_part_t *p) {
  uv_timer_init(p->loop, &p->tick);
  p->tick.data = p;
  uv_timer_start(&p->tick, tick_cb, 2, 2);
}

/* A part other than 0: its own loop on its own thread, start to finish. */
static void part_thread(void *arg) {
  bl_part_t *p = arg;
  part_start_timer(p);
  part_join(p);
  part_measure(p, NULL, NULL);
  run_for(p, HD_TIME_NEVER, stop_announced);
  part_stop(p);
}

/* The main thread's readings at the window's marks: the server's CPU (whole
 * and per thread) and RSS, and this process's CPU over all its threads. */
typedef struct {
  int pid, have_cpu, n_threads;
  double cpu0, cpu1, self0, self1;
  long rss_end;
  bl_thread_t threads[BL_MAX_THREADS];
  /* datagrams the kernel dropped at full receive buffers over the window:
   * this process's sockets (the generator's own loss) and the server's */
  unsigned long long gen_drops[2], srv_drops[2];
  int have_drops;
  double wall[2]; /* the window's marks in Unix time (s): to match the server's /metrics scraped meanwhile */
} srv_probe_t;

static void srv_probe(void *ud, int w) {
  srv_probe_t *sp = ud;
  int ns;
  int ok = bl_proc_udp_drops((int)getpid(), &sp->gen_drops[w - 1], &ns) == 0 &&
           (!sp->pid || bl_proc_udp_drops(sp->pid, &sp->srv_drops[w - 1], &ns) == 0);
  sp->have_drops = w == 1 ? ok : sp->have_drops && ok;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  sp->wall[w - 1] = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
  if (w == 1) {
    sp->self0 = bl_self_cpu_us();
    sp->have_cpu = sp->pid && bl_proc_cpu_us(sp->pid, &sp->cpu0) == 0;
    sp->n_threads = sp->pid ? bl_proc_threads(sp->pid, sp->threads, 0, 0) : 0;
    return;
  }
  sp->have_cpu = sp->have_cpu && bl_proc_cpu_us(sp->pid, &sp->cpu1) == 0;
  if (sp->n_threads) bl_proc_threads(sp->pid, sp->threads, sp->n_threads, 1);
  sp->self1 = bl_self_cpu_us();
  sp->rss_end = sp->pid ? bl_proc_rss_kb(sp->pid) : -1;
}

static int all_phase(bl_run_t *r, int want) {
  for (int k = 1; k < r->n_parts; k++)
    if (atomic_load_explicit(&r->parts[k].phase, memory_order_acquire) < want) return 0;
  return 1;
}
static int all_joined(bl_part_t *p0) { return all_phase(p0->run, 1); }
static int all_tallied(bl_part_t *p0) { return all_phase(p0->run, 2); }

/* Attempts a part could not report (none of its legs left joined) go through
 * part 0's legs, after those that part 0 used itself, a second later (one
 * quality_join per connection per second). Counts what no leg could carry
 * as unreported. */
static void send_orphans(bl_run_t *r) {
  bl_part_t *p0 = &r->parts[0];
  int any = 0;
  for (int k = 0; k < r->n_parts; k++)
    any += r->parts[k].n_orphans;
  if (!any) return;
  if (r->o.target == BL_HUDONG) run_for(p0, bl_now() + HD_MS(1100), NULL);
  int cursor = p0->report_cursor;
  for (int k = 0; k < r->n_parts; k++) {
    bl_part_t *p = &r->parts[k];
    for (int i = 0; i < p->n_orphans; i += HD_JOIN_REPORT_MAX) {
      int nb = p->n_orphans - i < HD_JOIN_REPORT_MAX ? p->n_orphans - i : HD_JOIN_REPORT_MAX;
      if (!send_through_other(p0, &cursor, p->orphans + i, nb)) p->tally.unreported += nb;
    }
    free(p->orphans);
    p->orphans = NULL;
    p->n_orphans = 0;
  }
}

/* Adds part p's keyframe arrivals into the run's (same keyframe: earliest
 * first, latest last, subscribers summed). */
static void merge_keys(bl_run_t *r, const bl_part_t *p) {
  for (int i = 0; i < p->n_keys; i++) {
    const bl_key_t *k = &p->keys[i];
    int j = 0;
    while (j < r->n_keys && (r->keys[j].pub_id != k->pub_id || r->keys[j].seq != k->seq))
      j++;
    if (j == r->n_keys) {
      if (r->n_keys == BL_MAX_KEYS) continue;
      r->keys[r->n_keys++] = *k;
      continue;
    }
    if (k->first < r->keys[j].first) r->keys[j].first = k->first;
    if (k->last > r->keys[j].last) r->keys[j].last = k->last;
    r->keys[j].n += k->n;
  }
}

static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static int cmd_load(int argc, char **argv) {
  bl_run_t r;
  memset(&r, 0, sizeof r);
  int prc = bl_parse_opts(argc, argv, &r.o);
  if (prc) return prc > 0 ? 0 : 2;
  if (r.o.list_rooms) {
    char name[128];
    for (int rm = 0; rm < r.o.rooms; rm++) {
      if (room_name(&r.o, rm, name, sizeof name) < 0) return 2;
      printf("%s\n", name);
    }
    return 0;
  }
  raise_fd_limit();
  bl_opts_t *o = &r.o;
  r.loop = uv_default_loop();
  int tracks_per_pub = o->audio_only ? 1 : 2;
  r.sub_legs = (o->publishers * tracks_per_pub + HD_PC_MAX_TRANSCEIVERS - 1) / HD_PC_MAX_TRANSCEIVERS;
  r.n_pubs = o->rooms * o->publishers;
  r.n_subs = o->rooms * o->subscribers * r.sub_legs;
  r.pubs = calloc((size_t)r.n_pubs, sizeof *r.pubs);
  r.subs = calloc((size_t)r.n_subs + 1, sizeof *r.subs);
  r.hist = calloc(1, sizeof *r.hist);
  if (!r.pubs || !r.subs || !r.hist) return 1;
  r.w0 = r.w1 = HD_TIME_NEVER;
  for (int rm = 0, k = 0; rm < o->rooms; rm++)
    for (int p = 0; p < o->publishers; p++, k++) {
      bl_leg_t *l = &r.pubs[k];
      l->run = &r;
      l->is_pub = 1;
      l->room = rm;
      l->index = p;
      l->pub_id = (uint32_t)(rm * 1000 + p + 1);
      snprintf(l->identity, sizeof l->identity, "r%d-p%d", rm, p);
    }
  for (int rm = 0, k = 0; rm < o->rooms; rm++)
    for (int s = 0; s < o->subscribers; s++)
      for (int g = 0; g < r.sub_legs; g++, k++) {
        bl_leg_t *l = &r.subs[k];
        l->run = &r;
        l->room = rm;
        l->index = s;
        l->sub_leg = g;
        snprintf(l->identity, sizeof l->identity, "r%d-s%d-%d", rm, s, g);
        l->rx = calloc((size_t)o->publishers * 2, sizeof *l->rx);
        if (!l->rx) return 1;
        for (int p = 0; p < o->publishers; p++) {
          if (!bl_leg_wants(l, p)) continue;
          uint32_t id = (uint32_t)(rm * 1000 + p + 1);
          hd_load_rx_init(&l->rx[l->n_rx++], id, HD_LOAD_AUDIO);
          if (!o->audio_only) hd_load_rx_init(&l->rx[l->n_rx++], id, HD_LOAD_VIDEO);
        }
        if (o->count_only && !(l->seq = calloc((size_t)l->n_rx + 2, sizeof *l->seq))) return 1;
      }

  /* the parts: contiguous ranges of subscriber legs, one thread each */
  int nt = o->threads;
  if (!nt) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    nt = o->target == BL_JANUS       ? 1
         : cpus < 1                  ? 1
         : cpus > BL_DEFAULT_THREADS ? BL_DEFAULT_THREADS
                                     : (int)cpus;
  }
  if (nt > r.n_subs) nt = r.n_subs > 0 ? r.n_subs : 1; /* no thread without a leg */
  r.n_parts = nt;
  r.parts = calloc((size_t)nt, sizeof *r.parts);
  if (!r.parts) return 1;
  for (int k = 0; k < nt; k++) {
    bl_part_t *p = &r.parts[k];
    p->run = &r;
    p->id = k;
    p->lo = (int)((long)r.n_subs * k / nt);
    p->hi = (int)((long)r.n_subs * (k + 1) / nt);
    p->next_start = p->lo;
    p->ramp = o->ramp / nt > 0 ? o->ramp / nt : 1;
    p->join_rate = o->join_rate / nt;
    p->w0 = p->w1 = HD_TIME_NEVER;
    p->hist = calloc(1, sizeof *p->hist);
    if (!p->hist) return 1;
    if (k == 0) {
      p->loop = r.loop;
    } else if (uv_loop_init(&p->own_loop) < 0) {
      fprintf(stderr, "hudong bench load: cannot create an event loop for thread %d\n", k);
      return 1;
    } else {
      p->loop = &p->own_loop;
    }
    for (int i = p->lo; i < p->hi; i++)
      r.subs[i].part = p;
  }
  for (int i = 0; i < r.n_pubs; i++)
    r.pubs[i].part = &r.parts[0];
  bl_part_t *p0 = &r.parts[0];
  part_start_timer(p0);
  int rc = 0;
  if (o->target == BL_JANUS && (rc = bl_janus_init(&r)) < 0) {
    fprintf(stderr, "hudong bench load: janus setup failed: %s\n", hd_strerror(rc));
    return 1;
  }

  /* 1. publishers (main thread) */
  hd_time_t t0 = bl_now();
  for (int i = 0; i < r.n_pubs; i++)
    start_leg(&r.pubs[i]);
  run_for(p0, t0 + HD_SEC(o->join_timeout_s), pubs_ready);
  int pubs_ok = 0;
  for (int i = 0; i < r.n_pubs; i++) {
    if (!r.pubs[i].failed && !(r.pubs[i].connected && r.pubs[i].ready)) {
      hd_pc_stats_t st;
      hd_pc_stats(r.pubs[i].pc, &st);
      bl_leg_fail(&r.pubs[i],
                  "not connected after %d s (pc %s, checks %llu, responses %llu, in %llu, answered %llu)",
                  o->join_timeout_s, hd_pc_state_name(st.state), (unsigned long long)st.stun_checks_sent,
                  (unsigned long long)st.stun_responses, (unsigned long long)st.datagrams_in,
                  (unsigned long long)st.stun_requests_answered);
    }
    pubs_ok += !r.pubs[i].failed;
  }
  hd_time_t t_pubs = bl_now();
  long rss_base = o->server_pid ? bl_proc_rss_kb(o->server_pid) : -1;

  /* 2. subscribers: every part joins its legs on its own thread */
  for (int k = 1; k < nt; k++)
    if (uv_thread_create(&r.parts[k].thread, part_thread, &r.parts[k]) < 0) {
      fprintf(stderr, "hudong bench load: cannot start generator thread %d\n", k);
      return 1;
    }
  part_join(p0);
  run_for(p0, HD_TIME_NEVER, all_joined);
  int subs_ok = 0;
  for (int k = 0; k < nt; k++)
    subs_ok += r.parts[k].tally.subs_ok;
  hd_time_t t_subs = bl_now();

  /* 3. warm-up, window, grace: announced to the parts, measured by each */
  r.w0 = t_subs + (hd_time_t)(o->warmup * 1e6);
  r.w1 = r.w0 + (hd_time_t)(o->duration * 1e6);
  for (int i = 0; i < r.n_pubs; i++)
    hd_load_source_window(&r.pubs[i].src, r.w0, r.w1);
  atomic_store_explicit(&r.go, 1, memory_order_release);
  srv_probe_t sp = {.pid = o->server_pid};
  part_measure(p0, srv_probe, &sp);
  run_for(p0, HD_TIME_NEVER, all_tallied);
  send_orphans(&r);

  /* 4. accounting, merged over the parts; join success as the node's API
   * counts it (DESIGN §6) */
  int unreported = 0, joins_refused = 0;
  hd_join_tally_t jt = {0};
  uint64_t expected = 0, received = 0, dups = 0, unknown = 0, bad = 0;
  uint64_t seq_expected = 0, seq_received = 0, arrived = 0, too_old = 0;
  uint64_t part_expected[BL_MAX_PARTS] = {0};
  hd_time_t first_start = HD_TIME_NEVER, last_done = 0;
  for (int k = 0; k < nt; k++) {
    bl_part_t *p = &r.parts[k];
    const bl_tally_t *t = &p->tally;
    jt.attempts += t->jt.attempts;
    jt.succeeded_5s += t->jt.succeeded_5s;
    jt.succeeded_1s += t->jt.succeeded_1s;
    jt.failed += t->jt.failed;
    unreported += t->unreported;
    joins_refused += t->joins_refused;
    received += t->received;
    dups += t->dups;
    unknown += t->unknown;
    bad += t->bad;
    seq_expected += t->seq_expected;
    seq_received += t->seq_received;
    arrived += t->arrived;
    too_old += t->too_old;
    if (t->first_start && t->first_start < first_start) first_start = t->first_start;
    if (t->join_done > last_done) last_done = t->join_done;
    hd_load_hist_merge(r.hist, p->hist);
    merge_keys(&r, p);
    /* expected: what the publishers sent in the window to each of the part's
     * streams (the streams a leg expects are fixed at set-up) */
    for (int i = p->lo; i < p->hi; i++) {
      bl_leg_t *l = &r.subs[i];
      for (int q = 0; q < l->n_rx; q++) {
        bl_leg_t *pb =
            &r.pubs[l->room * o->publishers + (int)(l->rx[q].pub_id - (uint32_t)l->room * 1000 - 1)];
        part_expected[k] += pb->src.sent_in_window[l->rx[q].kind];
      }
    }
    expected += part_expected[k];
  }
  double sub_join_s =
      first_start < HD_TIME_NEVER && last_done > first_start ? (double)(last_done - first_start) / 1e6 : 0;
  double cpu0 = sp.cpu0, cpu1 = sp.cpu1, self0 = sp.self0, self1 = sp.self1;
  int have_cpu = sp.have_cpu, n_threads = sp.n_threads;
  bl_thread_t *threads = sp.threads;
  long rss_end = sp.rss_end;
  double seq_loss = hd_load_loss(seq_expected, seq_received), shortfall = hd_load_loss(expected, arrived);
  uint64_t sent_w = 0, pub_waits = 0;
  for (int i = 0; i < r.n_pubs; i++) {
    sent_w += r.pubs[i].src.sent_in_window[1] + r.pubs[i].src.sent_in_window[2];
    if (r.pubs[i].pc) { /* packets the publishers' own pacers held: 0, or the latency includes them */
      hd_pc_stats_t st;
      hd_pc_stats(r.pubs[i].pc, &st);
      pub_waits += st.paced_waits;
    }
  }
  double win_s = (double)(r.w1 - r.w0) / 1e6;
  double loss = expected ? hd_load_loss(expected, received) : 1.0; /* nothing sent: a failed run */
  if (o->count_only) {
    /* a gap in a stream's seqs is a loss; a stream that stalled or never came
     * shows only as fewer arrivals than the senders sent in the window */
    loss = !expected ? 1.0 : seq_loss > shortfall ? seq_loss : shortfall;
    received = arrived;
  }
  double server_cpu_us = have_cpu ? cpu1 - cpu0 : -1;
  double us_per_fwd = have_cpu && received ? server_cpu_us / (double)received : -1;
  double gen_cpu = (self1 - self0) / ((double)(r.w1 - r.w0)) * 100.0;
  /* per generator thread: its CPU over the window, its legs, what it counted */
  double part_cpu[BL_MAX_PARTS], part_cpu_max = 0;
  uint64_t part_received[BL_MAX_PARTS];
  for (int k = 0; k < nt; k++) {
    part_cpu[k] = r.parts[k].tally.cpu_us / (double)(r.w1 - r.w0) * 100.0;
    if (part_cpu[k] > part_cpu_max) part_cpu_max = part_cpu[k];
    part_received[k] = o->count_only ? r.parts[k].tally.arrived : r.parts[k].tally.received;
  }
  hd_time_t p50 = hd_load_hist_quantile(r.hist, 0.5), p99 = hd_load_hist_quantile(r.hist, 0.99);
  long rss_per_sub = rss_base >= 0 && rss_end >= 0 && o->subscribers
                         ? (rss_end - rss_base) / (o->subscribers * o->rooms)
                         : -1;
  hd_time_t key_spread_p50, key_spread_max, key_last_p50, key_last_max;
  int keys_want = o->subscribers; /* each publisher goes to one leg of every subscriber in its room */
  int keys_n = key_stats(&r, keys_want, &key_spread_p50, &key_spread_max, &key_last_p50, &key_last_max);
  const char *tname = o->target == BL_HUDONG ? "hudong" : "janus";
  printf("bench load %s: rooms %d, publishers %d/%d up, subscriber legs %d/%d up (%d per subscriber), joins "
         "%.1f s\n",
         tname, o->rooms, pubs_ok, r.n_pubs, subs_ok, r.n_subs, r.sub_legs, (double)(t_subs - t0) / 1e6);
  printf("  joins: attempted %d, first media within 5 s %d (%.1f%%), within 1 s %d (%.1f%%), failed %d%s\n",
         jt.attempts, jt.succeeded_5s, jt.attempts ? 100.0 * jt.succeeded_5s / jt.attempts : 0.0,
         jt.succeeded_1s, jt.attempts ? 100.0 * jt.succeeded_1s / jt.attempts : 0.0, jt.failed,
         o->target != BL_HUDONG        ? ""
         : unreported || joins_refused ? "; some not reported to the node (no leg left connected, or refused)"
                                       : "; reported to the node (quality_join)");
  char pace[48] = "unpaced";
  if (o->join_rate > 0) snprintf(pace, sizeof pace, "paced at %g legs/s", o->join_rate);
  char cap[48] = "no cap on legs connecting at once";
  if (o->ramp < 1000000) snprintf(cap, sizeof cap, "%d connecting at once", o->ramp);
  printf("  join ramp: %d subscriber legs over %d thread%s, %s, %s; first start -> last leg up or failed "
         "%.1f s (%.1f legs/s)\n",
         r.n_subs, nt, nt == 1 ? "" : "s", cap, pace, sub_join_s,
         sub_join_s > 0 ? r.n_subs / sub_join_s : 0.0);
  printf("  window %.1f s: sent %llu, expected %llu, received %llu, loss %.3f%%, forwarded %.0f pkt/s\n",
         win_s, (unsigned long long)sent_w, (unsigned long long)expected, (unsigned long long)received,
         loss * 100, (double)received / win_s);
  if (o->count_only) {
    printf("  count-only: sequence gaps %.3f%% (%llu of %llu), arrivals %.3f%% short of sent (%llu of %llu); "
           "too old %llu\n",
           seq_loss * 100,
           (unsigned long long)(seq_expected - (seq_received < seq_expected ? seq_received : seq_expected)),
           (unsigned long long)seq_expected, shortfall * 100, (unsigned long long)arrived,
           (unsigned long long)expected, (unsigned long long)too_old);
    printf("  added latency: not measured (--count-only: media is not decrypted)\n");
  } else {
    printf(
        "  added latency p50 %lld us, p99 %lld us, max %lld us (%llu samples); publisher pacer waits %llu\n",
        (long long)p50, (long long)p99, (long long)r.hist->max, (unsigned long long)r.hist->n,
        (unsigned long long)pub_waits);
    if (keys_n)
      printf(
          "  keyframes (%d, each to all %d subscribers of its room): last packet at the first and last "
          "subscriber %lld us apart (p50; max %lld us); the last subscriber had it %lld us after it was sent "
          "(p50; max %lld us)\n",
          keys_n, keys_want, (long long)key_spread_p50, (long long)key_spread_max, (long long)key_last_p50,
          (long long)key_last_max);
  }
  if (have_cpu)
    printf("  server cpu %.1f%% of a core, %.2f us per forwarded packet; rss %ld -> %ld kB (%ld kB per "
           "subscriber)\n",
           server_cpu_us / (double)(r.w1 - r.w0) * 100, us_per_fwd, rss_base, rss_end, rss_per_sub);
  if (have_cpu && n_threads) {
    printf("  server threads (%% of a core):");
    for (int i = 0; i < n_threads; i++)
      if (threads[i].cpu1 >= 0 && threads[i].cpu1 - threads[i].cpu0 > 0)
        printf(" %s %.1f", threads[i].name,
               (threads[i].cpu1 - threads[i].cpu0) / (double)(r.w1 - r.w0) * 100);
    printf("\n");
  }
  if (sp.have_drops)
    printf(
        "  kernel drops at full receive buffers in the window: generator sockets %llu, server sockets %llu\n",
        sp.gen_drops[1] - sp.gen_drops[0], sp.srv_drops[1] - sp.srv_drops[0]);
  printf("  generator cpu %.1f%% of a core over %d thread%s%s; duplicates %llu, unknown %llu, bad payloads "
         "%llu\n",
         gen_cpu, nt, nt == 1 ? "" : "s",
         part_cpu_max > 90 ? " (SATURATED: figures are bounded by the generator)" : "",
         (unsigned long long)dups, (unsigned long long)unknown, (unsigned long long)bad);
  printf("  generator threads (%% of a core; sub legs up/total; expected -> received):");
  for (int k = 0; k < nt; k++)
    printf("%s #%d %.1f%% %d/%d %llu->%llu", k ? "," : "", k, part_cpu[k], r.parts[k].tally.subs_ok,
           r.parts[k].hi - r.parts[k].lo, (unsigned long long)part_expected[k],
           (unsigned long long)part_received[k]);
  printf("\n");
  if (o->json) {
    json_t *j =
        json_pack("{s:s, s:i, s:i, s:i, s:i, s:b, s:i, s:f, s:i, s:i, s:i, s:i, s:f}", "target", tname,
                  "rooms", o->rooms, "publishers", o->publishers, "subscribers", o->subscribers, "sub_legs",
                  r.sub_legs, "audio_only", o->audio_only, "video_kbps", o->video_kbps, "window_s", win_s,
                  "publishers_up", pubs_ok, "sub_legs_up", subs_ok, "sub_legs_total", r.n_subs,
                  "sub_legs_per_subscriber", r.sub_legs, "join_s", (double)(t_subs - t0) / 1e6);
    json_object_set_new(j, "sent", json_integer((json_int_t)sent_w));
    json_object_set_new(j, "expected", json_integer((json_int_t)expected));
    json_object_set_new(j, "received", json_integer((json_int_t)received));
    json_object_set_new(j, "loss", json_real(loss));
    json_object_set_new(j, "publisher_paced_waits", json_integer((json_int_t)pub_waits));
    json_object_set_new(j, "forwarded_pps", json_real((double)received / win_s));
    json_object_set_new(j, "threads", json_integer(nt));
    json_object_set_new(j, "ramp",
                        o->ramp < 1000000 ? json_integer(o->ramp) : json_null()); /* null: no cap */
    json_object_set_new(j, "join_rate", json_real(o->join_rate));
    json_object_set_new(j, "sub_join_s", json_real(sub_join_s));
    json_t *gt = json_array();
    for (int k = 0; k < nt; k++)
      json_array_append_new(
          gt, json_pack("{s:i, s:i, s:i, s:I, s:I, s:f, s:f}", "thread", k, "sub_legs",
                        r.parts[k].hi - r.parts[k].lo, "sub_legs_up", r.parts[k].tally.subs_ok, "expected",
                        (json_int_t)part_expected[k], "received", (json_int_t)part_received[k], "cpu_pct",
                        part_cpu[k], "join_done_s", (double)(r.parts[k].tally.join_done - t_pubs) / 1e6));
    json_object_set_new(j, "generator_threads", gt);
    json_object_set_new(j, "mode", json_string(o->count_only ? "count_only" : "decrypt"));
    json_object_set_new(j, "latency_measured", json_boolean(!o->count_only));
    if (o->count_only) {
      /* no latency without the payload: null, never a misleading 0 */
      json_object_set_new(j, "latency_p50_us", json_null());
      json_object_set_new(j, "latency_p99_us", json_null());
      json_object_set_new(j, "latency_max_us", json_null());
      json_object_set_new(j, "latency_mean_us", json_null());
      json_object_set_new(j, "seq_expected", json_integer((json_int_t)seq_expected));
      json_object_set_new(j, "seq_received", json_integer((json_int_t)seq_received));
      json_object_set_new(j, "seq_loss", json_real(seq_loss));
      json_object_set_new(j, "arrived", json_integer((json_int_t)arrived));
      json_object_set_new(j, "arrival_shortfall", json_real(shortfall));
      json_object_set_new(j, "too_old", json_integer((json_int_t)too_old));
    } else {
      json_object_set_new(j, "latency_p50_us", json_integer(p50));
      json_object_set_new(j, "latency_p99_us", json_integer(p99));
      json_object_set_new(j, "latency_max_us", json_integer(r.hist->max));
      json_object_set_new(j, "latency_mean_us", json_real(r.hist->n ? r.hist->sum / (double)r.hist->n : 0));
      json_object_set_new(j, "keyframes_measured", json_integer(keys_n));
      json_object_set_new(j, "keyframe_spread_p50_us", json_integer(key_spread_p50));
      json_object_set_new(j, "keyframe_spread_max_us", json_integer(key_spread_max));
      json_object_set_new(j, "keyframe_last_p50_us", json_integer(key_last_p50));
      json_object_set_new(j, "keyframe_last_max_us", json_integer(key_last_max));
    }
    json_t *names = json_array();
    char name[128];
    for (int rm = 0; rm < o->rooms; rm++)
      if (o->target == BL_HUDONG && room_name(o, rm, name, sizeof name) == 0)
        json_array_append_new(names, json_string(name));
    json_object_set_new(j, "room_names", names);
    json_object_set_new(j, "balance_workers", json_integer(o->balance_workers));
    json_object_set_new(j, "server_cpu_us", json_real(server_cpu_us));
    json_object_set_new(j, "server_cpu_pct",
                        json_real(have_cpu ? server_cpu_us / (double)(r.w1 - r.w0) * 100 : -1));
    json_object_set_new(j, "cpu_us_per_fwd", json_real(us_per_fwd));
    json_object_set_new(j, "rss_base_kb", json_integer(rss_base));
    json_object_set_new(j, "rss_end_kb", json_integer(rss_end));
    json_object_set_new(j, "rss_per_sub_kb", json_integer(rss_per_sub));
    json_object_set_new(j, "generator_cpu_pct", json_real(gen_cpu));
    json_t *th = json_array();
    for (int i = 0; have_cpu && i < n_threads; i++)
      if (threads[i].cpu1 >= 0)
        json_array_append_new(
            th, json_pack("{s:s, s:i, s:f}", "name", threads[i].name, "tid", threads[i].tid, "cpu_pct",
                          (threads[i].cpu1 - threads[i].cpu0) / (double)(r.w1 - r.w0) * 100));
    json_object_set_new(j, "server_threads", th);
    json_object_set_new(j, "duplicates", json_integer((json_int_t)dups));
    json_object_set_new(j, "window_unix_s", json_pack("[f, f]", sp.wall[0], sp.wall[1]));
    /* null: /proc unreadable */
    json_object_set_new(j, "gen_sock_drops",
                        sp.have_drops ? json_integer((json_int_t)(sp.gen_drops[1] - sp.gen_drops[0]))
                                      : json_null());
    json_object_set_new(j, "server_sock_drops",
                        sp.have_drops && o->server_pid
                            ? json_integer((json_int_t)(sp.srv_drops[1] - sp.srv_drops[0]))
                            : json_null());
    json_object_set_new(
        j, "joins",
        json_pack("{s:i, s:i, s:i, s:i, s:o, s:o, s:i}", "attempts", jt.attempts, "succeeded_5s",
                  jt.succeeded_5s, "succeeded_1s", jt.succeeded_1s, "failed", jt.failed, "success_rate_5s",
                  jt.attempts ? json_real((double)jt.succeeded_5s / jt.attempts) : json_null(),
                  "success_rate_1s",
                  jt.attempts ? json_real((double)jt.succeeded_1s / jt.attempts) : json_null(), "unreported",
                  unreported + joins_refused));
    if (json_dump_file(j, o->json, JSON_INDENT(2)) < 0)
      fprintf(stderr, "hudong bench load: cannot write %s\n", o->json);
    json_decref(j);
  }

  /* 5. leave, close, free: every part its own legs, on its own thread */
  r.stopping = 1;
  atomic_store_explicit(&r.go, 2, memory_order_release);
  part_stop(p0);
  for (int k = 1; k < nt; k++)
    uv_thread_join(&r.parts[k].thread);
  for (int k = 0; k < nt; k++) {
    bl_part_t *p = &r.parts[k];
    if (k > 0) uv_loop_close(&p->own_loop);
    free(p->hist);
    free(p->rx_batch);
  }
  for (int i = 0; i < r.n_subs; i++) {
    free(r.subs[i].rx);
    free(r.subs[i].seq);
  }
  free(r.parts);
  free(r.pubs);
  free(r.subs);
  free(r.hist);
  return loss < 0.005 && pubs_ok == r.n_pubs && subs_ok == r.n_subs ? 0 : 3;
}

int hd_cmd_bench(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "load")) return cmd_load(argc, argv);
  int help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
  fprintf(help ? stdout : stderr, "usage: hudong bench load [options]   (see hudong bench load --help)\n");
  return help ? 0 : 2;
}
