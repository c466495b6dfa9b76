/* Room data over WebRTC data channels (src/sfu/rooms.c, peer.c, proto/sctp.c;
 * docs/protocol.md "Data channels") on a virtual clock: room participants
 * join over signaling (hd_node_rtc_message), publish a data-channel-only
 * publisher PC from our own client endpoint (tests/support/rtc_client.h with
 * an SCTP association), and exchange messages through the node:
 *  - "hd-reliable" messages arrive at the other participant's channel of the
 *    same kind, all of them and in order, over a link with 10% loss;
 *  - a participant without data channels gets them over its WebSocket,
 *    marked with the channel;
 *  - a participant without canPublishData is refused with a 403 error;
 *  - "hd-lossy" is forwarded on the lossy channel. */
#include "hd_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/time.h>

#include "base/err.h"
#include "proto/token.h"
#include "sfu/node.h"
#include "sfu/signal.h"
#include "support/link.h"
#include "support/rtc_client.h"

/* usrsctp reads the wall clock (see proto/sctp.h): make it follow ours. */
static hd_time_t g_virtual_now = HD_SEC(1000);
int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
  (void)tz;
  hd_time_t t = HD_SEC(1700000000) + g_virtual_now;
  tv->tv_sec = (time_t)(t / 1000000);
  tv->tv_usec = (suseconds_t)(t % 1000000);
  return 0;
}

#define NP 4
#define NODE_DST (-1)
#define MAX_WS 1024
static const int64_t UNIX_NOW = 1800000000;

typedef struct {
  /* signaling */
  hd_participant_t *p;
  char *ws[MAX_WS];
  int n_ws;
  /* transport */
  hd_rtc_client_t *c;
  struct sockaddr_in addr;
  hd_link_t up, down;
  int connected;
  int ch_rel, ch_lossy;    /* our channels (stream ids), -1 until acked */
  int rel_seq[200], n_rel; /* sequence numbers received on our hd-reliable */
  int lossy_seq[200], n_lossy;
  int wrong_from; /* messages whose envelope did not name the expected sender */
} part_t;

typedef struct {
  hd_node_t *node;
  hd_dtls_cert_t *cert;
  struct sockaddr_in node_addr;
  hd_wire_t wire;
  part_t p[NP];
  hd_time_t now;
} world_t;

static world_t *W;

static void on_send(void *ud, void *conn, const char *text, size_t len) {
  part_t *k = conn;
  if (k->n_ws < MAX_WS) k->ws[k->n_ws++] = strndup(text, len);
}
static void on_close(void *ud, void *conn, int code, const char *reason) { ((part_t *)conn)->p = NULL; }
static const char *lookup(void *ud, const char *key) { return !strcmp(key, "app") ? "secret" : NULL; }

static void mkaddr(struct sockaddr_in *a, const char *ip, uint16_t port) {
  memset(a, 0, sizeof *a);
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  inet_pton(AF_INET, ip, &a->sin_addr);
}

static int setup(void **st) {
  W = calloc(1, sizeof *W);
  if (!W || hd_dtls_cert_generate(&W->cert) < 0) return -1;
  hd_node_config_t cfg = {.rtc_ip = "10.0.0.1",
                          .rtc_port = 7881,
                          .signal_send = on_send,
                          .signal_close = on_close,
                          .wall_offset = HD_SEC(1700000000)};
  if (hd_node_new(&W->node, &cfg, W->cert) < 0) return -1;
  mkaddr(&W->node_addr, "10.0.0.1", 7881);
  if (hd_wire_init(&W->wire, 1 << 16) < 0) return -1;
  W->now = g_virtual_now;
  *st = W;
  return 0;
}

static int teardown(void **st) {
  hd_node_free(W->node);
  for (int i = 0; i < NP; i++) {
    hd_rtc_client_free(W->p[i].c);
    for (int m = 0; m < W->p[i].n_ws; m++)
      free(W->p[i].ws[m]);
  }
  hd_wire_free(&W->wire);
  hd_dtls_cert_free(W->cert);
  free(W);
  assert_int_equal(hd_sctp_live_count(), 0); /* every association freed: usrsctp finished */
  return 0;
}

static int addr_eq(const struct sockaddr_storage *ss, const struct sockaddr_in *a) {
  const struct sockaddr_in *b = (const struct sockaddr_in *)ss;
  return b->sin_family == AF_INET && b->sin_port == a->sin_port && b->sin_addr.s_addr == a->sin_addr.s_addr;
}

/* Parses a node envelope {"type":"data","from":..,"payload":"<k>:<seq>",..}. */
static int envelope_seq(const char *json, const char *want_from, const char *want_channel, int *bad) {
  hd_signal_msg_t m;
  hd_signal_error_t e;
  if (hd_signal_parse(json, strlen(json), HD_SIGNAL_FROM_NODE, &m, &e) < 0) {
    (*bad)++;
    return -1;
  }
  int seq = -1;
  if (m.type == HD_SIGNAL_DATA_RECV && !strcmp(m.data_recv.from, want_from) && m.data_recv.channel &&
      !strcmp(m.data_recv.channel, want_channel))
    seq = atoi(m.data_recv.payload);
  else
    (*bad)++;
  hd_signal_msg_free(&m);
  return seq;
}

static const char *g_from = "alice"; /* expected sender of what the clients receive */

/* Drains a client's SCTP events: opens our two channels once connected,
 * records what arrives on them. */
static void client_events(part_t *k) {
  hd_sctp_t *s = k->c ? hd_rtc_client_sctp(k->c) : NULL;
  if (!s) return;
  hd_sctp_event_t ev;
  while (hd_sctp_next_event(s, &ev)) {
    if (ev.type == HD_SCTP_EV_CONNECTED) {
      k->connected = 1;
      hd_dcep_open_t o;
      memset(&o, 0, sizeof o);
      snprintf(o.label, sizeof o.label, "hd-reliable");
      assert_true(hd_sctp_open_channel(s, &o) >= 0);
      snprintf(o.label, sizeof o.label, "hd-lossy");
      o.channel_type = HD_DCEP_PARTIAL_RELIABLE_REXMIT_UNORDERED;
      assert_true(hd_sctp_open_channel(s, &o) >= 0);
      hd_rtc_client_sctp_flush(k->c);
    } else if (ev.type == HD_SCTP_EV_CHANNEL_OPEN) {
      if (!strcmp(ev.channel.label, "hd-reliable")) k->ch_rel = ev.stream;
      if (!strcmp(ev.channel.label, "hd-lossy")) k->ch_lossy = ev.stream;
    } else if (ev.type == HD_SCTP_EV_MESSAGE) {
      char tmp[1024];
      assert_true(ev.len < sizeof tmp);
      memcpy(tmp, ev.data, ev.len);
      tmp[ev.len] = 0;
      if (ev.stream == k->ch_rel && k->n_rel < 200)
        k->rel_seq[k->n_rel++] = envelope_seq(tmp, g_from, "reliable", &k->wrong_from);
      else if (ev.stream == k->ch_lossy && k->n_lossy < 200)
        k->lossy_seq[k->n_lossy++] = envelope_seq(tmp, g_from, "lossy", &k->wrong_from);
    }
  }
}

static void drain(void) {
  hd_txq_t *q = hd_node_txq(W->node);
  hd_datagram_t *d;
  while ((d = hd_txq_peek(q)) != NULL) {
    for (int i = 0; i < NP; i++) {
      hd_time_t at;
      if (W->p[i].c && addr_eq(&d->to, &W->p[i].addr) && hd_link_send(&W->p[i].down, W->now, &at))
        assert_int_equal(hd_wire_push(&W->wire, at, i, (struct sockaddr *)&W->node_addr, sizeof W->node_addr,
                                      d->data, d->len),
                         0);
    }
    hd_txq_pop(q);
  }
  for (int i = 0; i < NP; i++) {
    part_t *k = &W->p[i];
    if (!k->c) continue;
    client_events(k);
    uint8_t buf[HD_WIRE_MTU];
    struct sockaddr_storage to;
    socklen_t tolen;
    int n;
    while ((n = hd_rtc_client_poll(k->c, buf, sizeof buf, &to, &tolen)) > 0) {
      hd_time_t at;
      if (hd_link_send(&k->up, W->now, &at))
        assert_int_equal(
            hd_wire_push(&W->wire, at, NODE_DST, (struct sockaddr *)&k->addr, sizeof k->addr, buf, (size_t)n),
            0);
    }
  }
}

static void run_until(hd_time_t end) {
  hd_wire_pkt_t *pkt = malloc(sizeof *pkt);
  assert_non_null(pkt);
  for (long guard = 0;; guard++) {
    assert_true(guard < 5000000);
    drain();
    hd_time_t t = hd_time_min(hd_wire_next(&W->wire), hd_node_next_timeout(W->node));
    for (int i = 0; i < NP; i++)
      if (W->p[i].c) t = hd_time_min(t, hd_rtc_client_next_timeout(W->p[i].c));
    if (t > end) break;
    if (t > W->now) W->now = t;
    g_virtual_now = W->now;
    while (hd_wire_pop(&W->wire, W->now, pkt)) {
      if (pkt->dst == NODE_DST)
        hd_node_feed(W->node, pkt->data, pkt->len, (struct sockaddr *)&pkt->from, pkt->fromlen, W->now);
      else if (W->p[pkt->dst].c)
        hd_rtc_client_feed(W->p[pkt->dst].c, pkt->data, pkt->len, (struct sockaddr *)&pkt->from, pkt->fromlen,
                           W->now);
      drain();
    }
    if (hd_node_next_timeout(W->node) <= W->now) hd_node_handle_timeout(W->node, W->now);
    for (int i = 0; i < NP; i++)
      if (W->p[i].c && hd_rtc_client_next_timeout(W->p[i].c) <= W->now)
        hd_rtc_client_handle_timeout(W->p[i].c, W->now);
  }
  W->now = end;
  g_virtual_now = end;
  free(pkt);
}

static int sig(int i, const char *text) {
  part_t *k = &W->p[i];
  return hd_node_rtc_message(W->node, k, &k->p, text, strlen(text), lookup, NULL, UNIX_NOW, W->now);
}

static void json_str(const char *text, char *out, size_t cap) {
  size_t o = 0;
  out[o++] = '"';
  for (const char *p = text; *p && o + 8 < cap; p++) {
    if (*p == '\r')
      o += (size_t)snprintf(out + o, cap - o, "\\r");
    else if (*p == '\n')
      o += (size_t)snprintf(out + o, cap - o, "\\n");
    else if (*p == '"' || *p == '\\')
      o += (size_t)snprintf(out + o, cap - o, "\\%c", *p);
    else
      out[o++] = *p;
  }
  out[o++] = '"';
  out[o] = 0;
}

/* Joins participant i; with dc, publishes a data-channel-only PC. */
static void join(int i, const char *identity, int data_grant, int dc, double loss) {
  part_t *k = &W->p[i];
  k->ch_rel = k->ch_lossy = -1;
  hd_token_claims_t c;
  memset(&c, 0, sizeof c);
  snprintf(c.key, sizeof c.key, "app");
  snprintf(c.room, sizeof c.room, "r");
  snprintf(c.identity, sizeof c.identity, "%s", identity);
  c.room_join = c.can_subscribe = c.can_publish = 1;
  c.can_publish_data = data_grant;
  c.iat = UNIX_NOW - 10;
  c.exp = UNIX_NOW + 3600;
  char tok[HD_TOKEN_MAX], msg[HD_TOKEN_MAX + 128];
  assert_true(hd_token_mint(&c, "secret", tok, sizeof tok) > 0);
  snprintf(msg, sizeof msg, "{\"type\":\"join\",\"id\":\"j\",\"token\":\"%s\"}", tok);
  assert_int_equal(sig(i, msg), 0);
  assert_non_null(k->p);
  if (!dc) return;
  char ip[32];
  snprintf(ip, sizeof ip, "10.0.1.%d", i + 1);
  mkaddr(&k->addr, ip, (uint16_t)(40000 + i));
  hd_link_params_t lp = {.delay = HD_MS(15), .loss = loss};
  hd_link_init(&k->up, &lp, 100 + (uint64_t)i);
  hd_link_init(&k->down, &lp, 200 + (uint64_t)i);
  hd_rtc_client_config_t cc = {.kind = HD_RTC_CLIENT_PUBLISH, .no_audio = 1, .no_video = 1, .datachannel = 1};
  assert_int_equal(hd_rtc_client_new(&k->c, &cc), 0);
  static char offer[8192], sdpj[16384], pub[20000];
  assert_true(hd_rtc_client_offer(k->c, offer, sizeof offer) > 0);
  json_str(offer, sdpj, sizeof sdpj);
  snprintf(pub, sizeof pub, "{\"type\":\"publish_offer\",\"id\":\"p\",\"sdp\":%s,\"tracks\":[]}", sdpj);
  int before = k->n_ws;
  assert_int_equal(sig(i, pub), 0);
  assert_true(k->n_ws > before);
  hd_signal_msg_t m;
  hd_signal_error_t e;
  const char *ans = k->ws[k->n_ws - 1];
  assert_int_equal(hd_signal_parse(ans, strlen(ans), HD_SIGNAL_FROM_NODE, &m, &e), 0);
  assert_int_equal(m.type, HD_SIGNAL_PUBLISH_ANSWER);
  assert_int_equal(
      hd_rtc_client_apply_answer(k->c, m.publish_answer.sdp, strlen(m.publish_answer.sdp), W->now), 0);
  hd_signal_msg_free(&m);
}

/* WebSocket data messages of participant i carrying channel `ch` from `from`, in order. */
static int ws_data(int i, const char *from, const char *ch, int *seqs, int max) {
  int n = 0, bad = 0;
  char pat[64];
  snprintf(pat, sizeof pat, "\"channel\":\"%s\"", ch);
  for (int m = 0; m < W->p[i].n_ws && n < max; m++)
    if (strstr(W->p[i].ws[m], "\"type\":\"data\"") && strstr(W->p[i].ws[m], pat))
      seqs[n++] = envelope_seq(W->p[i].ws[m], from, ch, &bad);
  assert_int_equal(bad, 0);
  return n;
}

static int count_errors(int i, int code) {
  char pat[32];
  snprintf(pat, sizeof pat, "\"code\":%d", code);
  int n = 0;
  for (int m = 0; m < W->p[i].n_ws; m++)
    if (strstr(W->p[i].ws[m], "\"type\":\"error\"") && strstr(W->p[i].ws[m], pat)) n++;
  return n;
}

static void send_dc(int i, int reliable, const char *text) {
  part_t *k = &W->p[i];
  hd_sctp_t *s = hd_rtc_client_sctp(k->c);
  assert_non_null(s);
  int st = reliable ? k->ch_rel : k->ch_lossy;
  assert_true(st >= 0);
  assert_int_equal(hd_sctp_send(s, (uint16_t)st, text, strlen(text), 0), (int)strlen(text));
  hd_rtc_client_sctp_flush(k->c);
}

static void test_room_datachannels(void **st) {
  (void)st;
  join(0, "alice", 1, 1, 0.10); /* lossy links both ways */
  join(1, "bob", 1, 1, 0.10);
  join(2, "carol", 1, 0, 0); /* no data channels: WebSocket fallback */
  join(3, "dave", 0, 1, 0);  /* no canPublishData */
  run_until(W->now + HD_SEC(5));
  for (int i = 0; i < NP; i++) {
    if (!W->p[i].c) continue;
    assert_true(hd_rtc_client_connected(W->p[i].c));
    assert_true(W->p[i].connected);
    assert_true(W->p[i].ch_rel >= 0);
    assert_true(W->p[i].ch_lossy >= 0);
  }
  /* alice: 100 reliable, 40 per second (under the 50/s limit) */
  for (int i = 0; i < 100; i++) {
    char txt[32];
    snprintf(txt, sizeof txt, "%d", i);
    send_dc(0, 1, txt);
    run_until(W->now + HD_MS(25));
  }
  run_until(W->now + HD_SEC(10));
  part_t *bob = &W->p[1], *dave = &W->p[3];
  assert_int_equal(bob->wrong_from, 0);
  assert_int_equal(bob->n_rel, 100);
  for (int i = 0; i < 100; i++)
    assert_int_equal(bob->rel_seq[i], i);
  assert_int_equal(dave->n_rel, 100); /* no data grant: still receives */
  /* carol: over the WebSocket, marked reliable, in order */
  int seqs[200];
  assert_int_equal(ws_data(2, "alice", "reliable", seqs, 200), 100);
  for (int i = 0; i < 100; i++)
    assert_int_equal(seqs[i], i);
  /* lossy: forwarded on the lossy channel (some may be lost on the 10% links) */
  for (int i = 0; i < 50; i++) {
    char txt[32];
    snprintf(txt, sizeof txt, "%d", i);
    send_dc(0, 0, txt);
    run_until(W->now + HD_MS(25));
  }
  run_until(W->now + HD_SEC(5));
  /* what reached the node (alice's uplink loses some, never repaired) reaches
   * carol over the WebSocket and dave over clean links; bob loses more */
  int at_node = ws_data(2, "alice", "lossy", seqs, 200);
  assert_true(at_node > 30 && at_node < 50);
  assert_int_equal(dave->n_lossy, at_node);
  assert_true(bob->n_lossy > 20 && bob->n_lossy <= at_node);
  /* dave has no canPublishData: dropped, with one 403 over its WebSocket */
  g_from = "dave";
  int bob_before = bob->n_rel, carol_before = W->p[2].n_ws;
  for (int i = 0; i < 3; i++)
    send_dc(3, 1, "x");
  run_until(W->now + HD_SEC(2));
  assert_int_equal(bob->n_rel, bob_before);
  assert_int_equal(W->p[2].n_ws, carol_before);
  assert_int_equal(count_errors(3, 403), 1); /* at most one a second */
  /* a message over the text cap: 413 */
  g_from = "alice";
  static char big[HD_SIGNAL_MAX_PAYLOAD + 2];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = 0;
  hd_sctp_set_remote_max_message(hd_rtc_client_sctp(W->p[0].c), HD_SCTP_MAX_MESSAGE);
  send_dc(0, 1, big);
  run_until(W->now + HD_SEC(2));
  assert_int_equal(count_errors(0, 413), 1);
  assert_int_equal(bob->n_rel, bob_before);
  /* the node's counters (/metrics) */
  const hd_node_stats_t *ns = hd_node_stats(W->node);
  assert_int_equal(ns->dc_msgs_in, 100 + 50 - (50 - (uint64_t)at_node) + 3 + 1);
  assert_int_equal(ns->dc_msgs_refused, 4);
  assert_int_equal(ns->dc_msgs_ws, 100 + (uint64_t)at_node);
  assert_int_equal(ns->dc_msgs_out, 2 * (100 + (uint64_t)at_node));
  assert_int_equal(ns->dc_msgs_dropped, 0);
  char *text = malloc(16384);
  assert_non_null(text);
  assert_true(hd_node_metrics_text(W->node, text, 16384) > 0);
  assert_non_null(strstr(text, "hudong_datachannel_messages_total{event=\"refused\"} 4\n"));
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_room_datachannels, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
