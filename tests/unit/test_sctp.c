/* Data channels (proto/sctp.h over usrsctp, proto/dcep.h): DCEP codec vectors
 * built by hand from the RFC 8832 §5 layout, and two hd_sctp endpoints wired
 * through the in-process link model on a virtual clock (association setup,
 * DCEP open/ack, reliable ordered delivery under loss, unreliable unordered
 * channels without retransmission, message size cap, close by stream reset). */
#include "hd_test.h"

#include <sys/time.h>

#include "base/err.h"
#include "proto/dcep.h"
#include "proto/sctp.h"
#include "support/link.h"

/* ---------------- DCEP codec ---------------- */

static void test_dcep_open_vector(void **st) {
  (void)st;
  /* DATA_CHANNEL_OPEN, partial reliable rexmit unordered, priority 256,
   * maxRetransmits 3, label "chat", protocol "x" */
  static const uint8_t v[] = {0x03, 0x81, 0x01, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00,
                              0x04, 0x00, 0x01, 'c',  'h',  'a',  't',  'x'};
  hd_dcep_open_t o;
  assert_int_equal(hd_dcep_parse(v, sizeof v, &o), HD_DCEP_OPEN);
  assert_int_equal(o.channel_type, HD_DCEP_PARTIAL_RELIABLE_REXMIT_UNORDERED);
  assert_int_equal(o.priority, 256);
  assert_int_equal(o.reliability, 3);
  assert_string_equal(o.label, "chat");
  assert_string_equal(o.protocol, "x");
  assert_false(hd_dcep_ordered(o.channel_type));
  assert_false(hd_dcep_reliable(o.channel_type));
  uint8_t out[64];
  assert_int_equal(hd_dcep_build_open(&o, out, sizeof out), sizeof v);
  assert_memory_equal(out, v, sizeof v);
  /* too small an output buffer */
  assert_int_equal(hd_dcep_build_open(&o, out, sizeof v - 1), HD_ENOSPC);
}

static void test_dcep_reliable_and_ack(void **st) {
  (void)st;
  /* reliable ordered, empty label and protocol; the reliability field is
   * ignored for reliable channels (RFC 8832 §5.1) */
  static const uint8_t v[] = {0x03, 0x00, 0x00, 0x00, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00};
  hd_dcep_open_t o;
  assert_int_equal(hd_dcep_parse(v, sizeof v, &o), HD_DCEP_OPEN);
  assert_int_equal(o.channel_type, HD_DCEP_RELIABLE);
  assert_int_equal(o.reliability, 0);
  assert_string_equal(o.label, "");
  assert_true(hd_dcep_ordered(o.channel_type));
  assert_true(hd_dcep_reliable(o.channel_type));
  /* timed */
  static const uint8_t t[] = {0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0xf4, 0x00, 0x01, 0x00, 0x00, 'a'};
  assert_int_equal(hd_dcep_parse(t, sizeof t, &o), HD_DCEP_OPEN);
  assert_int_equal(o.channel_type, HD_DCEP_PARTIAL_RELIABLE_TIMED);
  assert_int_equal(o.reliability, 500);
  /* ACK */
  uint8_t ack[4];
  assert_int_equal(hd_dcep_build_ack(ack, sizeof ack), 1);
  assert_int_equal(ack[0], 0x02);
  assert_int_equal(hd_dcep_parse(ack, 1, NULL), HD_DCEP_ACK);
  assert_int_equal(hd_dcep_build_ack(ack, 0), HD_ENOSPC);
}

static void test_dcep_errors(void **st) {
  (void)st;
  hd_dcep_open_t o;
  static const uint8_t ack2[] = {0x02, 0x00};
  assert_int_equal(hd_dcep_parse(ack2, sizeof ack2, &o), HD_EPROTO);
  static const uint8_t unknown[] = {0x04};
  assert_int_equal(hd_dcep_parse(unknown, 1, &o), HD_EPROTO);
  assert_int_equal(hd_dcep_parse(unknown, 0, &o), HD_ETRUNC);
  static const uint8_t shorthdr[] = {0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  assert_int_equal(hd_dcep_parse(shorthdr, sizeof shorthdr, &o), HD_ETRUNC);
  /* label length says 5, only 4 bytes follow */
  static const uint8_t shortlabel[] = {0x03, 0x00, 0,    0,    0,   0,   0,   0,
                                       0x00, 0x05, 0x00, 0x00, 'a', 'b', 'c', 'd'};
  assert_int_equal(hd_dcep_parse(shortlabel, sizeof shortlabel, &o), HD_ETRUNC);
  /* trailing byte */
  static const uint8_t trailing[] = {0x03, 0x00, 0, 0, 0, 0, 0, 0, 0x00, 0x01, 0x00, 0x00, 'a', 'b'};
  assert_int_equal(hd_dcep_parse(trailing, sizeof trailing, &o), HD_EPROTO);
  /* bad channel type 0x03 */
  static const uint8_t badtype[] = {0x03, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  assert_int_equal(hd_dcep_parse(badtype, sizeof badtype, &o), HD_EPROTO);
  /* NUL inside the label */
  static const uint8_t nul[] = {0x03, 0x00, 0, 0, 0, 0, 0, 0, 0x00, 0x02, 0x00, 0x00, 'a', 0};
  assert_int_equal(hd_dcep_parse(nul, sizeof nul, &o), HD_EPROTO);
  /* label over our cap */
  uint8_t big[HD_DCEP_OPEN_HEADER + 300];
  memset(big, 'x', sizeof big);
  memcpy(big, (const uint8_t[]){0x03, 0x00, 0, 0, 0, 0, 0, 0, 0x01, 0x2c, 0x00, 0x00}, HD_DCEP_OPEN_HEADER);
  assert_int_equal(hd_dcep_parse(big, sizeof big, &o), HD_ENOSPC);
  /* building with an invalid type */
  memset(&o, 0, sizeof o);
  o.channel_type = 0x05;
  uint8_t out[64];
  assert_int_equal(hd_dcep_build_open(&o, out, sizeof out), HD_EINVAL);
}

/* ---------------- two endpoints over a simulated link ---------------- */

/* usrsctp drives every timer from our clock (usrsctp_handle_timers), but it
 * also reads the wall clock with gettimeofday: RTT samples, and the check in
 * its T3-rtx handler that a chunk has been outstanding for an RTO. With a
 * virtual clock racing ahead of the wall clock that check never passes and
 * nothing is retransmitted. So this test program defines gettimeofday itself
 * (the executable's symbol wins over libc's for libusrsctp.so) and makes it
 * follow the virtual clock: the runs are deterministic and the retransmission
 * logic sees the same time as its timers. In a real node both clocks advance
 * together. */
static hd_time_t g_virtual_now = HD_SEC(1);

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
  (void)tz;
  hd_time_t t = HD_SEC(1700000000) + g_virtual_now;
  tv->tv_sec = (time_t)(t / 1000000);
  tv->tv_usec = (suseconds_t)(t % 1000000);
  return 0;
}

typedef struct {
  hd_sctp_t *s;
  hd_link_t link; /* towards the other endpoint */
  int connected, closed;
  int opened[HD_SCTP_MAX_STREAMS];
  int closed_ch[HD_SCTP_MAX_STREAMS];
  char label[8][HD_DCEP_MAX_LABEL + 1];
  /* received messages */
  int n_msgs[4];
  int last_seq[4];
  int order_errors[4];
  size_t last_len;
  int last_binary;
} ep_t;

typedef struct {
  ep_t e[2];
  hd_wire_t wire;
  hd_time_t now;
  struct sockaddr_storage dummy; /* the wire wants a source address */
} net_t;

static void net_init(net_t *n, double loss_ab, double loss_ba, uint64_t seed) {
  memset(n, 0, sizeof *n);
  n->now =
      g_virtual_now; /* the virtual clock keeps running across tests: usrsctp's wall clock must not go back */
  assert_int_equal(hd_wire_init(&n->wire, 1 << 14), 0);
  hd_link_params_t pa = {.delay = HD_MS(20), .loss = loss_ab};
  hd_link_params_t pb = {.delay = HD_MS(20), .loss = loss_ba};
  hd_link_init(&n->e[0].link, &pa, seed);
  hd_link_init(&n->e[1].link, &pb, seed + 1);
  /* e[0] plays the browser (DTLS client), e[1] the node (DTLS server) */
  assert_int_equal(hd_sctp_new(&n->e[0].s, 1, 0, 0, n->now), 0);
  assert_int_equal(hd_sctp_new(&n->e[1].s, 0, 0, 0, n->now), 0);
}

static void net_free(net_t *n) {
  hd_sctp_free(n->e[0].s);
  hd_sctp_free(n->e[1].s);
  hd_wire_free(&n->wire);
}

static void drain(net_t *n, int i) {
  ep_t *e = &n->e[i];
  uint8_t buf[1500];
  int len;
  while ((len = hd_sctp_poll(e->s, buf, sizeof buf)) > 0) {
    hd_time_t at;
    if (hd_link_send(&e->link, n->now, &at))
      assert_int_equal(hd_wire_push(&n->wire, at, 1 - i, (const struct sockaddr *)&n->dummy, sizeof n->dummy,
                                    buf, (size_t)len),
                       0);
  }
  assert_int_equal(len, 0);
  hd_sctp_event_t ev;
  while (hd_sctp_next_event(e->s, &ev)) {
    switch (ev.type) {
    case HD_SCTP_EV_CONNECTED: e->connected = 1; break;
    case HD_SCTP_EV_CLOSED: e->closed = 1; break;
    case HD_SCTP_EV_CHANNEL_OPEN:
      e->opened[ev.stream]++;
      if (ev.stream < 8) memcpy(e->label[ev.stream], ev.channel.label, sizeof e->label[0]);
      break;
    case HD_SCTP_EV_CHANNEL_CLOSED: e->closed_ch[ev.stream]++; break;
    case HD_SCTP_EV_MESSAGE: {
      /* messages carry "k:seq" where k is the test channel */
      int k = -1, seq = -1;
      e->last_len = ev.len;
      e->last_binary = ev.binary;
      if (ev.len && ev.len < 64) {
        char tmp[64];
        memcpy(tmp, ev.data, ev.len);
        tmp[ev.len] = 0;
        if (sscanf(tmp, "%d:%d", &k, &seq) != 2) k = -1;
      } else if (ev.len) {
        k = 3;
        seq = e->n_msgs[3];
      } else {
        k = 3;
        seq = e->n_msgs[3];
      }
      if (k >= 0 && k < 4) {
        if (seq <= e->last_seq[k] && e->n_msgs[k]) e->order_errors[k]++;
        e->last_seq[k] = seq;
        e->n_msgs[k]++;
      }
      break;
    }
    default: fail();
    }
  }
}

/* Runs the network until `until` (virtual time). */
static void run(net_t *n, hd_time_t until) {
  hd_wire_pkt_t *pkt = malloc(sizeof *pkt);
  assert_non_null(pkt);
  for (;;) {
    drain(n, 0);
    drain(n, 1);
    hd_time_t t = hd_wire_next(&n->wire);
    for (int i = 0; i < 2; i++)
      t = hd_time_min(t, hd_sctp_next_timeout(n->e[i].s));
    if (t > until) break;
    if (t > n->now) n->now = t;
    g_virtual_now = n->now;
    while (hd_wire_pop(&n->wire, n->now, pkt))
      hd_sctp_feed(n->e[pkt->dst].s, pkt->data, pkt->len, n->now);
    for (int i = 0; i < 2; i++)
      if (hd_sctp_next_timeout(n->e[i].s) <= n->now) hd_sctp_handle_timeout(n->e[i].s, n->now);
  }
  n->now = until;
  g_virtual_now = n->now;
  free(pkt);
}

static void connect_pair(net_t *n) {
  run(n, n->now + HD_SEC(2));
  assert_true(n->e[0].connected);
  assert_true(n->e[1].connected);
  assert_int_equal(hd_sctp_state(n->e[0].s), HD_SCTP_CONNECTED);
  assert_int_equal(hd_sctp_state(n->e[1].s), HD_SCTP_CONNECTED);
}

static int open_ch(net_t *n, const char *label, uint8_t type, uint32_t rel) {
  hd_dcep_open_t o;
  memset(&o, 0, sizeof o);
  snprintf(o.label, sizeof o.label, "%s", label);
  o.channel_type = type;
  o.reliability = rel;
  int st = hd_sctp_open_channel(n->e[0].s, &o);
  assert_true(st >= 0);
  assert_int_equal(st % 2, 0); /* DTLS client: even ids (RFC 8832 §6) */
  int before0 = n->e[0].opened[st], before1 = n->e[1].opened[st];
  run(n, n->now + HD_SEC(5));
  assert_int_equal(n->e[1].opened[st], before1 + 1); /* peer saw the OPEN */
  assert_int_equal(n->e[0].opened[st], before0 + 1); /* we saw the ACK */
  assert_string_equal(n->e[1].label[st], label);
  assert_string_equal(hd_sctp_channel_label(n->e[1].s, (uint16_t)st), label);
  assert_int_equal(hd_sctp_channel_type(n->e[1].s, (uint16_t)st), type);
  return st;
}

static void test_sctp_connect_open_send(void **st) {
  (void)st;
  net_t *n = malloc(sizeof *n);
  assert_non_null(n);
  net_init(n, 0, 0, 1);
  /* before the association: nothing may be opened or sent */
  hd_dcep_open_t o;
  memset(&o, 0, sizeof o);
  assert_int_equal(hd_sctp_open_channel(n->e[0].s, &o), HD_ESTATE);
  assert_int_equal(hd_sctp_send(n->e[0].s, 0, "x", 1, 0), HD_ESTATE);
  connect_pair(n);
  int s0 = open_ch(n, "hd-reliable", HD_DCEP_RELIABLE, 0);
  /* a message each way, string and binary, and an empty one */
  char msg[16];
  snprintf(msg, sizeof msg, "0:%d", 1);
  assert_int_equal(hd_sctp_send(n->e[0].s, (uint16_t)s0, msg, strlen(msg), 0), (int)strlen(msg));
  run(n, n->now + HD_MS(200));
  assert_int_equal(n->e[1].n_msgs[0], 1);
  assert_int_equal(n->e[1].last_binary, 0);
  assert_int_equal(hd_sctp_send(n->e[1].s, (uint16_t)s0, "1:1", 3, 1), 3);
  run(n, n->now + HD_MS(200));
  assert_int_equal(n->e[0].n_msgs[1], 1);
  assert_int_equal(n->e[0].last_binary, 1);
  assert_int_equal(hd_sctp_send(n->e[1].s, (uint16_t)s0, NULL, 0, 1), 0);
  run(n, n->now + HD_MS(200));
  assert_int_equal(n->e[0].n_msgs[3], 1);
  assert_int_equal(n->e[0].last_len, 0);
  assert_int_equal(n->e[0].last_binary, 1);
  /* the node (DTLS server) opens one too: odd id */
  memset(&o, 0, sizeof o);
  snprintf(o.label, sizeof o.label, "from-node");
  int s1 = hd_sctp_open_channel(n->e[1].s, &o);
  assert_int_equal(s1 % 2, 1);
  run(n, n->now + HD_MS(500));
  assert_int_equal(n->e[0].opened[s1], 1);
  assert_string_equal(n->e[0].label[s1], "from-node");
  /* unknown stream */
  assert_int_equal(hd_sctp_send(n->e[0].s, 200, "x", 1, 0), HD_ENOTFOUND);
  assert_int_equal(hd_sctp_close_channel(n->e[0].s, 200), HD_ENOTFOUND);
  net_free(n);
  free(n);
  assert_int_equal(hd_sctp_live_count(), 0);
}

static void test_sctp_reliable_under_loss(void **st) {
  (void)st;
  net_t *n = malloc(sizeof *n);
  assert_non_null(n);
  net_init(n, 0.10, 0.10, 42);
  connect_pair(n);
  int s0 = open_ch(n, "hd-reliable", HD_DCEP_RELIABLE, 0);
  /* 200 messages, 10 per 20 ms, all accepted by the send buffer */
  for (int i = 0; i < 200; i++) {
    char msg[32];
    snprintf(msg, sizeof msg, "0:%d", i);
    assert_int_equal(hd_sctp_send(n->e[0].s, (uint16_t)s0, msg, strlen(msg), 0), (int)strlen(msg));
    if (i % 10 == 9) run(n, n->now + HD_MS(20));
  }
  run(n, n->now + HD_SEC(30));
  assert_int_equal(n->e[1].n_msgs[0], 200);
  assert_int_equal(n->e[1].order_errors[0], 0);
  assert_int_equal(n->e[1].last_seq[0], 199);
  assert_true(n->e[0].link.dropped > 0); /* the loss really happened */
  net_free(n);
  free(n);
}

static void test_sctp_unreliable_unordered(void **st) {
  (void)st;
  net_t *n = malloc(sizeof *n);
  assert_non_null(n);
  net_init(n, 0, 0, 7);
  connect_pair(n);
  int s0 = open_ch(n, "hd-lossy", HD_DCEP_PARTIAL_RELIABLE_REXMIT_UNORDERED, 0);
  int s1 = open_ch(n, "hd-reliable", HD_DCEP_RELIABLE, 0);
  /* loss from now on, in both directions (SACKs too) */
  hd_link_params_t p = {.delay = HD_MS(20), .loss = 0.10};
  hd_link_set(&n->e[0].link, &p);
  hd_link_set(&n->e[1].link, &p);
  uint64_t dropped_before = n->e[0].link.dropped;
  for (int i = 0; i < 200; i++) {
    char msg[32];
    snprintf(msg, sizeof msg, "1:%d", i);
    assert_true(hd_sctp_send(n->e[0].s, (uint16_t)s0, msg, strlen(msg), 0) > 0);
    if (i % 10 == 9) run(n, n->now + HD_MS(20));
  }
  run(n, n->now + HD_SEC(5));
  int got = n->e[1].n_msgs[1];
  assert_true(n->e[0].link.dropped > dropped_before);
  assert_true(got < 200); /* lost ones were not retransmitted */
  assert_true(got > 100); /* the rest arrived */
  /* no stall: the reliable channel on the same association still works */
  for (int i = 0; i < 20; i++) {
    char msg[32];
    snprintf(msg, sizeof msg, "0:%d", i);
    assert_true(hd_sctp_send(n->e[0].s, (uint16_t)s1, msg, strlen(msg), 0) > 0);
  }
  run(n, n->now + HD_SEC(20));
  assert_int_equal(n->e[1].n_msgs[0], 20);
  assert_int_equal(n->e[1].order_errors[0], 0);
  net_free(n);
  free(n);
}

static void test_sctp_size_cap_and_close(void **st) {
  (void)st;
  net_t *n = malloc(sizeof *n);
  assert_non_null(n);
  net_init(n, 0, 0, 3);
  connect_pair(n);
  int s0 = open_ch(n, "big", HD_DCEP_RELIABLE, 0);
  uint8_t *big = calloc(1, HD_SCTP_MAX_MESSAGE + 1);
  assert_non_null(big);
  /* default remote max (64 KB, RFC 8841 §6.1) */
  assert_int_equal(hd_sctp_send(n->e[0].s, (uint16_t)s0, big, 65537, 1), HD_EINVAL);
  hd_sctp_set_remote_max_message(n->e[0].s, HD_SCTP_MAX_MESSAGE);
  assert_int_equal(hd_sctp_send(n->e[0].s, (uint16_t)s0, big, HD_SCTP_MAX_MESSAGE + 1, 1), HD_EINVAL);
  /* a max-size message goes through, whole */
  assert_int_equal(hd_sctp_send(n->e[0].s, (uint16_t)s0, big, HD_SCTP_MAX_MESSAGE, 1), HD_SCTP_MAX_MESSAGE);
  run(n, n->now + HD_SEC(3));
  assert_int_equal(n->e[1].n_msgs[3], 1);
  assert_int_equal(n->e[1].last_len, HD_SCTP_MAX_MESSAGE);
  free(big);
  /* close from the browser side: both ends report it */
  assert_int_equal(hd_sctp_close_channel(n->e[0].s, (uint16_t)s0), 0);
  assert_int_equal(hd_sctp_send(n->e[0].s, (uint16_t)s0, "x", 1, 0), HD_ENOTFOUND);
  run(n, n->now + HD_SEC(2));
  assert_int_equal(n->e[1].closed_ch[s0], 1);
  assert_int_equal(n->e[0].closed_ch[s0], 1);
  assert_null(hd_sctp_channel_label(n->e[1].s, (uint16_t)s0));
  assert_int_equal(hd_sctp_send(n->e[1].s, (uint16_t)s0, "x", 1, 0), HD_ENOTFOUND);
  /* the stream id is free again: the next open reuses it */
  int again = open_ch(n, "again", HD_DCEP_RELIABLE, 0);
  assert_int_equal(again, s0);
  /* close from the node side */
  assert_int_equal(hd_sctp_close_channel(n->e[1].s, (uint16_t)again), 0);
  run(n, n->now + HD_SEC(2));
  assert_int_equal(n->e[0].closed_ch[again], 2);
  assert_int_equal(n->e[1].closed_ch[again], 2);
  /* freeing one end: the other sees the ABORT only if it was taken; here it is
   * not (hd_sctp_free drops it), so the association stays up on the other end */
  net_free(n);
  free(n);
  assert_int_equal(hd_sctp_live_count(), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dcep_open_vector),
      cmocka_unit_test(test_dcep_reliable_and_ack),
      cmocka_unit_test(test_dcep_errors),
      cmocka_unit_test(test_sctp_connect_open_send),
      cmocka_unit_test(test_sctp_reliable_under_loss),
      cmocka_unit_test(test_sctp_unreliable_unordered),
      cmocka_unit_test(test_sctp_size_cap_and_close),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
