/* Reliable data messages over the node link (src/overlay/link_rel), in virtual
 * time over the `hudong netem` link model (src/netem/link): a sender and a
 * receiver with an emulated link each way. Every message arrives once, whole
 * and in order through 20% loss and reordering each way; nothing is resent on
 * a clean link; a blackout longer than the retry cap resets the stream (the
 * messages queued then are dropped and counted) and what is sent after it
 * arrives; the window cap refuses a message it cannot hold; an older stream's
 * segments are ignored. Deterministic (fixed seeds). */
#include "hd_test.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "netem/link.h"
#include "overlay/link_rel.h"

#define MAX_MSGS 512

typedef struct {
  hd_link_rel_t end[2];    /* 0 = sender A, 1 = receiver B */
  hd_netem_link_t *dir[2]; /* dir[0]: A -> B, dir[1]: B -> A */
  hd_time_t now;
  uint32_t got[MAX_MSGS]; /* indexes of the messages B received, in order */
  int n_got;
  int bad; /* a message whose bytes were not what was sent */
} pair_t;

static size_t msg_size(uint32_t i) { return 4 + (i * 7919u) % 3000; } /* 4 .. 3003 bytes: 1 to 3 segments */

static void fill(uint32_t i, uint8_t *b, size_t len) {
  b[0] = (uint8_t)(i >> 24);
  b[1] = (uint8_t)(i >> 16);
  b[2] = (uint8_t)(i >> 8);
  b[3] = (uint8_t)i;
  for (size_t k = 4; k < len; k++)
    b[k] = (uint8_t)(i * 31 + k);
}

static void on_msg(void *ud, const uint8_t *m, size_t len) {
  pair_t *p = ud;
  uint32_t i = (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 | (uint32_t)m[2] << 8 | m[3];
  uint8_t want[HD_LINK_REL_MSG_MAX];
  if (len != msg_size(i)) {
    p->bad++;
    return;
  }
  fill(i, want, len);
  if (memcmp(want, m, len)) p->bad++;
  if (p->n_got < MAX_MSGS) p->got[p->n_got++] = i;
}

static void pair_init(pair_t *p, const hd_netem_params_t *ab, const hd_netem_params_t *ba) {
  memset(p, 0, sizeof *p);
  p->now = HD_SEC(1000);
  hd_link_rel_init(&p->end[0], 42, 1000);
  hd_link_rel_init(&p->end[1], 42, 5000);
  assert_int_equal(hd_netem_link_new(&p->dir[0], ab, 11, p->now), 0);
  assert_int_equal(hd_netem_link_new(&p->dir[1], ba, 22, p->now), 0);
}

static void pair_free(pair_t *p) {
  hd_link_rel_free(&p->end[0]);
  hd_link_rel_free(&p->end[1]);
  hd_netem_link_free(p->dir[0]);
  hd_netem_link_free(p->dir[1]);
}

/* Sends what each end has due into its direction (first byte: 1 = ACK). */
static void flush(pair_t *p) {
  for (int e = 0; e < 2; e++) {
    uint8_t out[1 + HD_LINK_REL_DATA_HDR + HD_LINK_REL_SEG];
    int is_ack, n;
    while ((n = hd_link_rel_poll(&p->end[e], p->now, out + 1, sizeof out - 1, &is_ack)) > 0) {
      out[0] = (uint8_t)is_ack;
      hd_netem_link_send(p->dir[e], out, (size_t)n + 1, p->now);
    }
    assert_true(n >= 0);
  }
}

/* Delivers what the links have due now. */
static void deliver(pair_t *p) {
  for (int d = 0; d < 2; d++) {
    const uint8_t *pkt;
    int n;
    while ((n = hd_netem_link_poll(p->dir[d], p->now, &pkt)) > 0) {
      hd_link_rel_t *to = &p->end[1 - d];
      if (pkt[0])
        assert_int_equal(hd_link_rel_on_ack(to, pkt + 1, (size_t)n - 1, p->now), 0);
      else
        assert_int_equal(hd_link_rel_on_data(to, pkt + 1, (size_t)n - 1, on_msg, p), 0);
    }
  }
}

/* Runs until `until`, A offering message i (i < n_msgs) every `every`; a
 * message the window refuses is offered again at the next turn. Returns how
 * many were accepted. */
static uint32_t run(pair_t *p, uint32_t first, uint32_t n_msgs, hd_time_t every, hd_time_t until) {
  uint32_t i = first;
  hd_time_t next_send = p->now;
  while (p->now < until) {
    if (i < first + n_msgs && p->now >= next_send) {
      uint8_t m[HD_LINK_REL_MSG_MAX];
      size_t len = msg_size(i);
      fill(i, m, len);
      int rc = hd_link_rel_send(&p->end[0], m, len);
      assert_true(rc == 0 || rc == HD_ENOSPC);
      if (rc == 0) i++;
      next_send = p->now + every;
    }
    flush(p);
    deliver(p);
    flush(p); /* acks for what just arrived */
    hd_time_t t = until;
    t = hd_time_min(t, hd_link_rel_next_timeout(&p->end[0]));
    t = hd_time_min(t, hd_link_rel_next_timeout(&p->end[1]));
    t = hd_time_min(t, hd_netem_link_next_timeout(p->dir[0]));
    t = hd_time_min(t, hd_netem_link_next_timeout(p->dir[1]));
    if (i < first + n_msgs) t = hd_time_min(t, next_send);
    p->now = t > p->now ? t : p->now + 1;
  }
  return i - first;
}

static void test_lossy_reordering(void **state) {
  (void)state;
  hd_netem_params_t lp;
  hd_netem_params_init(&lp);
  lp.delay = HD_MS(30);
  lp.jitter = HD_MS(10); /* uniform ±10 ms without keep_order: segments overtake each other */
  lp.jitter_dist = HD_JITTER_UNIFORM;
  lp.loss = 0.20;
  pair_t *p = calloc(1, sizeof *p);
  pair_init(p, &lp, &lp);
  uint32_t sent = run(p, 0, 300, HD_MS(20), p->now + HD_SEC(30));
  hd_link_rel_t *a = &p->end[0];
  printf("# 20%% loss each way, 30+-10 ms: %u messages (%llu segments sent, %llu retransmits, %llu fast), "
         "%d delivered, srtt %.1f ms, rto %.1f ms\n",
         sent, (unsigned long long)a->segs_sent, (unsigned long long)a->retransmits,
         (unsigned long long)a->fast_retransmits, p->n_got, a->srtt / 1000.0, a->rto / 1000.0);
  assert_int_equal(sent, 300);
  assert_int_equal(p->bad, 0);
  assert_int_equal(p->n_got, 300); /* every one, once */
  for (int k = 0; k < p->n_got; k++)
    assert_int_equal(p->got[k], (uint32_t)k); /* in order */
  assert_true(a->retransmits > 0);
  assert_true(a->fast_retransmits > 0);
  assert_int_equal(a->resets, 0);
  assert_int_equal(a->next_seq, a->una); /* all acknowledged */
  pair_free(p);
  free(p);
}

static void test_clean_link_no_resend(void **state) {
  (void)state;
  hd_netem_params_t lp;
  hd_netem_params_init(&lp);
  lp.delay = HD_MS(10);
  pair_t *p = calloc(1, sizeof *p);
  pair_init(p, &lp, &lp);
  uint32_t sent = run(p, 0, 100, HD_MS(5), p->now + HD_SEC(5));
  assert_int_equal(sent, 100);
  assert_int_equal(p->n_got, 100);
  assert_int_equal(p->end[0].retransmits, 0);
  /* RFC 6298 from 20 ms round trips: srtt 20 ms, rto at its 40 ms floor */
  assert_true(p->end[0].srtt >= HD_MS(19) && p->end[0].srtt <= HD_MS(21));
  assert_int_equal(p->end[0].rto, HD_LINK_REL_RTO_MIN);
  pair_free(p);
  free(p);
}

static void test_blackout_resets_stream(void **state) {
  (void)state;
  hd_netem_params_t lp;
  hd_netem_params_init(&lp);
  lp.delay = HD_MS(20);
  hd_netem_params_t down = lp; /* A -> B down for 15 s from t+2 s: longer than the retry cap */
  down.blackouts[0].start = HD_SEC(2);
  down.blackouts[0].duration = HD_SEC(15);
  down.n_blackouts = 1;
  pair_t *p = calloc(1, sizeof *p);
  pair_init(p, &down, &lp);
  uint32_t stream0 = p->end[0].tx_stream;
  /* 0..39 before the blackout, 40..59 during it */
  run(p, 0, 60, HD_MS(50), p->now + HD_SEC(17));
  assert_true(p->end[0].resets >= 1);
  assert_true(p->end[0].dropped_reset > 0);
  assert_true(p->end[0].tx_stream != stream0);
  /* after it: a new stream, and what is sent arrives in order */
  uint32_t sent = run(p, 100, 50, HD_MS(20), p->now + HD_SEC(5));
  assert_int_equal(sent, 50);
  assert_int_equal(p->bad, 0);
  /* delivered: strictly increasing (no duplicate, no reordering), ends with 100..149 */
  for (int k = 1; k < p->n_got; k++)
    assert_true(p->got[k] > p->got[k - 1]);
  assert_true(p->n_got >= 50);
  for (int k = 0; k < 50; k++)
    assert_int_equal(p->got[p->n_got - 50 + k], 100u + (uint32_t)k);
  printf("# 15 s blackout: %llu reset(s), %llu messages dropped, %d delivered\n",
         (unsigned long long)p->end[0].resets, (unsigned long long)p->end[0].dropped_reset, p->n_got);
  pair_free(p);
  free(p);
}

/* The receiving end is set up again mid-stream (the room emptied on its node
 * and filled again): what the sender still holds, and everything after, reaches
 * the new receiver in order, at once (not after the retry cap's reset). */
static void test_receiver_restart(void **state) {
  (void)state;
  hd_netem_params_t lp;
  hd_netem_params_init(&lp);
  lp.delay = HD_MS(20);
  lp.loss = 0.10;
  pair_t *p = calloc(1, sizeof *p);
  pair_init(p, &lp, &lp);
  run(p, 0, 30, HD_MS(20), p->now + HD_MS(600)); /* 0..29 offered, some still unacknowledged */
  int before = p->n_got;
  uint32_t last = before ? p->got[before - 1] : 0;
  hd_link_rel_free(&p->end[1]);
  hd_link_rel_init(&p->end[1], 42, 9000);
  hd_time_t t_restart = p->now;
  uint32_t sent = run(p, 30, 40, HD_MS(20), p->now + HD_SEC(3));
  assert_int_equal(sent, 40);
  assert_int_equal(p->bad, 0);
  assert_int_equal(p->end[0].resets, 0);
  assert_true(p->end[0].peer_restarts >= 1);
  /* after the restart: strictly increasing, and every message after the last
   * one the old receiver got is there */
  for (int k = before + 1; k < p->n_got; k++)
    assert_true(p->got[k] > p->got[k - 1]);
  uint32_t want = last + 1;
  for (int k = before; k < p->n_got; k++)
    if (p->got[k] == want) want++;
  assert_int_equal(want, 70u);
  printf("# receiver set up again at %.1f s: %d delivered before, %d after, all from %u to 69\n",
         (double)(t_restart % HD_SEC(1000)) / 1e6, before, p->n_got - before, last + 1);
  pair_free(p);
  free(p);
}

static void test_window_cap(void **state) {
  (void)state;
  hd_link_rel_t r;
  hd_link_rel_init(&r, 1, 7);
  uint8_t m[HD_LINK_REL_SEG] = {0};
  for (int i = 0; i < HD_LINK_REL_WINDOW; i++)
    assert_int_equal(hd_link_rel_send(&r, m, sizeof m), 0);
  assert_int_equal(hd_link_rel_send(&r, m, 1), HD_ENOSPC);
  assert_int_equal(r.dropped_full, 1);
  assert_int_equal(hd_link_rel_send(&r, m, 0), HD_EINVAL);
  static uint8_t big[HD_LINK_REL_MSG_MAX + 1];
  assert_int_equal(hd_link_rel_send(&r, big, sizeof big), HD_EINVAL);
  hd_link_rel_free(&r);
}

static void test_streams_and_bad_input(void **state) {
  (void)state;
  hd_link_rel_t tx, rx;
  hd_link_rel_init(&tx, 9, 0x12345600);
  uint32_t st = tx.tx_stream; /* a tag, stream count 1 */
  assert_int_equal(st & 0xff, 1);
  hd_link_rel_init(&rx, 9, 1);
  uint8_t m[3] = {'a', 'b', 'c'}, out[HD_LINK_REL_DATA_HDR + HD_LINK_REL_SEG];
  int is_ack;
  assert_int_equal(hd_link_rel_send(&tx, m, 3), 0);
  int n = hd_link_rel_poll(&tx, HD_SEC(1), out, sizeof out, &is_ack);
  assert_int_equal(n, HD_LINK_REL_DATA_HDR + 3);
  assert_int_equal(is_ack, 0);
  uint64_t room = 0;
  assert_int_equal(hd_link_rel_room(out, (size_t)n, &room), 0);
  assert_int_equal(room, 9);
  assert_int_equal(hd_link_rel_on_data(&rx, out, (size_t)n, NULL, NULL), 0);
  assert_int_equal(rx.msgs_delivered, 1);
  assert_int_equal(rx.rx_stream, st);
  /* a newer stream of that sender (count 2, after a reset): a fresh start, delivered */
  out[11] = 2;
  assert_int_equal(hd_link_rel_on_data(&rx, out, (size_t)n, NULL, NULL), 0);
  assert_int_equal(rx.msgs_delivered, 2);
  /* the same segment under the stream it left (count 1): late, ignored */
  out[11] = 1;
  assert_int_equal(hd_link_rel_on_data(&rx, out, (size_t)n, NULL, NULL), 0);
  assert_int_equal(rx.msgs_delivered, 2);
  assert_int_equal(rx.rx_stream & 0xff, 2);
  /* malformed */
  assert_int_equal(hd_link_rel_on_data(&rx, out, 5, NULL, NULL), HD_EPROTO);
  assert_int_equal(hd_link_rel_on_ack(&tx, out, 7, HD_SEC(1)), HD_EPROTO);
  assert_int_equal(hd_link_rel_poll(&tx, HD_SEC(1), out, 10, &is_ack), HD_ENOSPC);
  hd_link_rel_free(&tx);
  hd_link_rel_free(&rx);
}

/* Sends what r has due to `to` (DATA) or back into `back` (ACK): a direct
 * wire without loss, for the hand-driven cases below. */
static int pump(hd_link_rel_t *from, hd_link_rel_t *to, hd_time_t now, void *ud) {
  uint8_t out[HD_LINK_REL_DATA_HDR + HD_LINK_REL_SEG];
  int is_ack, n, k = 0;
  while ((n = hd_link_rel_poll(from, now, out, sizeof out, &is_ack)) > 0) {
    if (is_ack)
      hd_link_rel_on_ack(to, out, (size_t)n, now);
    else
      hd_link_rel_on_data(to, out, (size_t)n, on_msg, ud);
    k++;
  }
  return k;
}

/* Review finding (a): the receiver is set up again after it acknowledged the
 * first segment of a 3-segment message. The sender renumbers what is
 * unacknowledged for the new receiver: the message's tail alone must not
 * arrive there as a message; the message after it arrives whole. */
static void test_restart_drops_headless_tail(void **state) {
  (void)state;
  pair_t *p = calloc(1, sizeof *p); /* only for on_msg's bookkeeping */
  hd_link_rel_t tx, rx1, rx2;
  hd_link_rel_init(&tx, 5, 0x11111100);
  hd_link_rel_init(&rx1, 5, 0x22222200);
  hd_link_rel_init(&rx2, 5, 0x33333300);
  uint8_t m[HD_LINK_REL_MSG_MAX];
  uint32_t big = 0;
  while (msg_size(big) <= 2 * HD_LINK_REL_SEG) /* a message of 3 segments */
    big++;
  fill(big, m, msg_size(big));
  assert_int_equal(hd_link_rel_send(&tx, m, msg_size(big)), 0);
  fill(7, m, msg_size(7));
  assert_int_equal(hd_link_rel_send(&tx, m, msg_size(7)), 0);
  hd_time_t now = HD_SEC(1);
  uint8_t seg[4][HD_LINK_REL_DATA_HDR + HD_LINK_REL_SEG];
  int len[4], is_ack;
  for (int i = 0; i < 4; i++)
    assert_true((len[i] = hd_link_rel_poll(&tx, now, seg[i], sizeof seg[i], &is_ack)) > 0);
  /* the old receiver gets the head only, and acknowledges it */
  assert_int_equal(hd_link_rel_on_data(&rx1, seg[0], (size_t)len[0], on_msg, p), 0);
  pump(&rx1, &tx, now, p);
  assert_int_equal(tx.una, 2);
  /* the new receiver hears the second segment and acknowledges under its instance */
  assert_int_equal(hd_link_rel_on_data(&rx2, seg[1], (size_t)len[1], on_msg, p), 0);
  pump(&rx2, &tx, now, p);
  assert_int_equal(tx.peer_restarts, 1);
  /* what the sender sends now reaches the new receiver */
  for (int round = 0; round < 5; round++) {
    now += HD_MS(10);
    pump(&tx, &rx2, now, p);
    pump(&rx2, &tx, now, p);
  }
  assert_int_equal(p->bad, 0);     /* no message was delivered cut (the tail alone) */
  assert_int_equal(p->n_got, 1);   /* only the message after it */
  assert_int_equal(p->got[0], 7u); /* whole */
  assert_int_equal(tx.dropped_reset, 1);
  assert_int_equal(tx.una, tx.next_seq);
  hd_link_rel_free(&tx);
  hd_link_rel_free(&rx1);
  hd_link_rel_free(&rx2);
  free(p);
}

/* Review finding (b): a peer that sends a message longer than
 * HD_LINK_REL_MSG_MAX (our sender refuses one) gets it dropped whole with an
 * error, not delivered cut to the maximum; the stream goes on. */
static void test_too_long_message_rejected(void **state) {
  (void)state;
  pair_t *p = calloc(1, sizeof *p);
  hd_link_rel_t rx;
  hd_link_rel_init(&rx, 3, 0x44444400);
  uint8_t b[HD_LINK_REL_DATA_HDR + HD_LINK_REL_SEG];
  memset(b, 0, sizeof b);
  b[7] = 3;                                          /* room */
  b[8] = 0x55, b[9] = 0x55, b[10] = 0x55, b[11] = 1; /* stream */
  uint32_t seq = 1;
  int errors = 0;
  for (int i = 0; i <= HD_LINK_REL_WINDOW; i++, seq++) { /* WINDOW + 1 full segments, the last ends it */
    b[12] = (uint8_t)(seq >> 24), b[13] = (uint8_t)(seq >> 16), b[14] = (uint8_t)(seq >> 8),
    b[15] = (uint8_t)seq;
    b[16] = i < HD_LINK_REL_WINDOW ? HD_LINK_REL_MORE : 0;
    int rc = hd_link_rel_on_data(&rx, b, sizeof b, on_msg, p);
    assert_true(rc == 0 || rc == HD_EPROTO);
    errors += rc == HD_EPROTO;
  }
  assert_int_equal(errors, 1);
  assert_int_equal(rx.rx_too_long, 1);
  assert_int_equal(rx.msgs_delivered, 0);
  assert_int_equal(p->n_got + p->bad, 0); /* nothing delivered, cut or not */
  /* a good message after it arrives */
  size_t ml = msg_size(11);
  b[12] = (uint8_t)(seq >> 24), b[13] = (uint8_t)(seq >> 16), b[14] = (uint8_t)(seq >> 8),
  b[15] = (uint8_t)seq;
  b[16] = 0;
  fill(11, b + HD_LINK_REL_DATA_HDR, ml > HD_LINK_REL_SEG ? HD_LINK_REL_SEG : ml);
  assert_true(ml <= HD_LINK_REL_SEG);
  assert_int_equal(hd_link_rel_on_data(&rx, b, HD_LINK_REL_DATA_HDR + ml, on_msg, p), 0);
  assert_int_equal(p->n_got, 1);
  assert_int_equal(p->got[0], 11u);
  assert_int_equal(p->bad, 0);
  hd_link_rel_free(&rx);
  free(p);
}

/* Review finding: stream counts wrap (8 bits): a receiver cut off while the
 * sender reset its stream 130 times still takes the next stream (it used to
 * take every later one for older and drop it); a late segment of the stream
 * it left is still ignored. */
static void test_many_missed_resets(void **state) {
  (void)state;
  pair_t *p = calloc(1, sizeof *p);
  hd_link_rel_t tx, rx;
  hd_link_rel_init(&tx, 9, 0x11111111);
  hd_link_rel_init(&rx, 9, 0x22222222);
  uint8_t m[HD_LINK_REL_SEG], late[HD_LINK_REL_DATA_HDR + HD_LINK_REL_SEG];
  int is_ack;
  hd_time_t now = HD_SEC(1);
  fill(5, m, msg_size(5));
  assert_int_equal(hd_link_rel_send(&tx, m, msg_size(5)), 0);
  assert_true(msg_size(5) <= HD_LINK_REL_SEG && msg_size(8) <= HD_LINK_REL_SEG &&
              msg_size(11) <= HD_LINK_REL_SEG);
  pump(&tx, &rx, now, p);
  assert_int_equal(p->n_got, 1);
  uint32_t first = rx.rx_stream;
  fill(8, m, msg_size(8));
  assert_int_equal(hd_link_rel_send(&tx, m, msg_size(8)), 0);
  int n_late = hd_link_rel_poll(&tx, now, late, sizeof late, &is_ack); /* of the first stream, late */
  assert_true(n_late > 0);
  /* the link is cut: every segment times out, 130 resets */
  for (int resets = 0; tx.resets < 130 && resets < 100000; resets++) {
    now += HD_SEC(1);
    uint8_t out[HD_LINK_REL_DATA_HDR + HD_LINK_REL_SEG];
    while (hd_link_rel_poll(&tx, now, out, sizeof out, &is_ack) > 0) {
    }
    if (tx.una == tx.next_seq) { /* the reset dropped it: another message to lose */
      fill(11, m, msg_size(11));
      hd_link_rel_send(&tx, m, msg_size(11));
    }
  }
  assert_true(tx.resets >= 130);
  /* healed: the next message arrives */
  now += HD_SEC(1);
  uint8_t out[HD_LINK_REL_DATA_HDR + HD_LINK_REL_SEG];
  while (hd_link_rel_poll(&tx, now, out, sizeof out, &is_ack) > 0) { /* what is queued now goes */
  }
  fill(11, m, msg_size(11));
  assert_int_equal(hd_link_rel_send(&tx, m, msg_size(11)), 0);
  int got = p->n_got;
  for (int k = 0; k < 20 && p->n_got == got; k++) {
    now += HD_MS(50);
    pump(&tx, &rx, now, p);
    pump(&rx, &tx, now, p);
  }
  assert_true(p->n_got > got);
  assert_int_not_equal(rx.rx_stream, first);
  /* a late segment of the stream it left is ignored */
  got = p->n_got;
  assert_int_equal(hd_link_rel_on_data(&rx, late, (size_t)n_late, on_msg, p), 0);
  assert_int_equal(p->n_got, got);
  hd_link_rel_free(&tx);
  hd_link_rel_free(&rx);
  free(p);
}

/* Review finding (c): a sender set up again (its node restarted) whose id is
 * lower than the previous one (the wall clock stepped back, or a random id)
 * is a new stream to the receiver, not an old one; a late segment of the
 * replaced sender is then ignored. */
static void test_restarted_sender_with_lower_id(void **state) {
  (void)state;
  pair_t *p = calloc(1, sizeof *p);
  hd_link_rel_t tx1, tx2, rx;
  hd_link_rel_init(&tx1, 8, 0x5F000000);
  hd_link_rel_init(&tx2, 8, 0x4F000000); /* the same end after a restart, a lower id */
  hd_link_rel_init(&rx, 8, 0x01020300);
  uint8_t m[HD_LINK_REL_SEG];
  hd_time_t now = HD_SEC(1);
  fill(2, m, msg_size(2));
  assert_int_equal(hd_link_rel_send(&tx1, m, msg_size(2)), 0);
  fill(5, m, msg_size(5));
  assert_int_equal(hd_link_rel_send(&tx1, m, msg_size(5)), 0);
  uint8_t late[HD_LINK_REL_DATA_HDR + HD_LINK_REL_SEG];
  int is_ack;
  assert_true(msg_size(2) <= HD_LINK_REL_SEG && msg_size(5) <= HD_LINK_REL_SEG &&
              msg_size(8) <= HD_LINK_REL_SEG);
  int n = hd_link_rel_poll(&tx1, now, late, sizeof late, &is_ack);
  assert_true(n > 0);
  assert_int_equal(hd_link_rel_on_data(&rx, late, (size_t)n, on_msg, p), 0);
  assert_int_equal(p->n_got, 1);
  n = hd_link_rel_poll(&tx1, now, late, sizeof late, &is_ack); /* message 5: held back, arrives late */
  assert_true(n > 0);
  fill(8, m, msg_size(8));
  assert_int_equal(hd_link_rel_send(&tx2, m, msg_size(8)), 0);
  pump(&tx2, &rx, now, p);
  assert_int_equal(p->n_got, 2); /* the restarted sender's message was taken */
  assert_int_equal(p->got[1], 8u);
  assert_int_equal(hd_link_rel_on_data(&rx, late, (size_t)n, on_msg, p), 0);
  assert_int_equal(p->n_got, 2); /* the replaced sender's late segment: ignored */
  assert_int_equal(rx.rx_stream, tx2.tx_stream);
  assert_int_equal(p->bad, 0);
  /* ids a caller's ms clock gives 100 ms apart: streams tagged apart */
  hd_link_rel_t c1, c2;
  hd_link_rel_init(&c1, 1, 1000000000u);
  hd_link_rel_init(&c2, 1, 1000000100u);
  assert_true(c1.tx_stream >> 8 != c2.tx_stream >> 8);
  hd_link_rel_free(&c1);
  hd_link_rel_free(&c2);
  /* 0 draws a random id; two draws differ */
  hd_link_rel_t a, b;
  hd_link_rel_init(&a, 1, 0);
  hd_link_rel_init(&b, 1, 0);
  assert_true(a.instance != 0 && b.instance != 0 && a.instance != b.instance);
  hd_link_rel_free(&a);
  hd_link_rel_free(&b);
  hd_link_rel_free(&tx1);
  hd_link_rel_free(&tx2);
  hd_link_rel_free(&rx);
  free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lossy_reordering),
      cmocka_unit_test(test_clean_link_no_resend),
      cmocka_unit_test(test_blackout_resets_stream),
      cmocka_unit_test(test_receiver_restart),
      cmocka_unit_test(test_window_cap),
      cmocka_unit_test(test_streams_and_bad_input),
      cmocka_unit_test(test_restart_drops_headless_tail),
      cmocka_unit_test(test_too_long_message_rejected),
      cmocka_unit_test(test_restarted_sender_with_lower_id),
      cmocka_unit_test(test_many_missed_resets),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
