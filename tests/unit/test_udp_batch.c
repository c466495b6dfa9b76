/* Unit tests for the sendmmsg/GSO batch planner (src/io/udp_batch.h): which
 * datagrams of the tx queue share a UDP_SEGMENT message, per-destination
 * order, the limits, and the bookkeeping of partial sends. No sockets. */
#include "hd_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>

#include "io/udp_batch.h"

static void push(hd_txq_t *q, int dest, size_t len, uint8_t tag) {
  hd_datagram_t *d = hd_txq_reserve(q);
  assert_non_null(d);
  memset(d->data, tag, len);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(5000 + dest))};
  a.sin_addr.s_addr = htonl(0x0a000001u + (uint32_t)dest);
  hd_txq_commit(q, len, (struct sockaddr *)&a, sizeof a);
}

static int dest_of(const struct msghdr *h) {
  const struct sockaddr_in *a = h->msg_name;
  return (int)(ntohl(a->sin_addr.s_addr) - 0x0a000001u);
}

static int gso_size(const struct msghdr *h) {
  if (!h->msg_control) return 0;
  const struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)h);
  assert_int_equal(c->cmsg_level, SOL_UDP);
  assert_int_equal(c->cmsg_type, UDP_SEGMENT);
  uint16_t v;
  memcpy(&v, CMSG_DATA(c), sizeof v);
  return v;
}

/* Tags of message m's datagrams, in order, as a string ("abc"). */
static void tags(const hd_udp_batch_t *b, unsigned m, char *out) {
  const struct msghdr *h = &b->msgs[m].msg_hdr;
  size_t i = 0;
  for (; i < h->msg_iovlen; i++)
    out[i] = (char)((const uint8_t *)h->msg_iov[i].iov_base)[0];
  out[i] = 0;
}

static void test_fanout_groups_by_destination(void **st) {
  (void)st;
  hd_txq_t q;
  assert_int_equal(hd_txq_init(&q, 512), 0);
  hd_udp_batch_t *b = calloc(1, sizeof *b);
  /* three input packets fanned out to viewers 0,1,2 (the node's order) */
  push(&q, 0, 1000, 'a'), push(&q, 1, 1000, 'b'), push(&q, 2, 1000, 'c');
  push(&q, 0, 1000, 'd'), push(&q, 1, 1000, 'e'), push(&q, 2, 1000, 'f');
  push(&q, 0, 700, 'g'), push(&q, 1, 700, 'h'), push(&q, 2, 700, 'i');
  push(&q, 0, 1000, 'j'); /* after a shorter last segment: a new message */
  assert_int_equal(hd_udp_batch_plan(b, &q, 1), 4);
  char t[64];
  tags(b, 0, t);
  assert_string_equal(t, "adg");
  assert_int_equal(dest_of(&b->msgs[0].msg_hdr), 0);
  assert_int_equal(gso_size(&b->msgs[0].msg_hdr), 1000);
  tags(b, 1, t);
  assert_string_equal(t, "beh");
  tags(b, 2, t);
  assert_string_equal(t, "cfi");
  assert_int_equal(dest_of(&b->msgs[2].msg_hdr), 2);
  tags(b, 3, t);
  assert_string_equal(t, "j");
  assert_int_equal(gso_size(&b->msgs[3].msg_hdr), 0); /* one datagram: no cmsg */
  assert_int_equal(hd_udp_batch_segs(b, 0), 3);
  /* without GSO: one message per datagram, queue order */
  assert_int_equal(hd_udp_batch_plan(b, &q, 0), 10);
  for (unsigned m = 0; m < 10; m++) {
    tags(b, m, t);
    assert_int_equal(t[0], "abcdefghij"[m]);
    assert_null(b->msgs[m].msg_hdr.msg_control);
  }
  hd_txq_free(&q);
  free(b);
}

static void test_order_within_destination(void **st) {
  (void)st;
  hd_txq_t q;
  assert_int_equal(hd_txq_init(&q, 64), 0);
  hd_udp_batch_t *b = calloc(1, sizeof *b);
  /* a longer datagram cannot join (only the last segment may differ, and
   * shorter); the next one of the first size must not jump ahead of it */
  push(&q, 0, 500, 'a'), push(&q, 0, 900, 'b'), push(&q, 0, 500, 'c'), push(&q, 0, 900, 'd');
  assert_int_equal(hd_udp_batch_plan(b, &q, 1), 3);
  char t[64];
  tags(b, 0, t);
  assert_string_equal(t, "a");
  tags(b, 1, t);
  assert_string_equal(t, "bc"); /* 900 then a shorter 500 as last */
  tags(b, 2, t);
  assert_string_equal(t, "d");
  hd_txq_free(&q);
  free(b);
}

static void test_full_batch_keeps_order(void **st) {
  (void)st;
  hd_txq_t q;
  assert_int_equal(hd_txq_init(&q, 512), 0);
  hd_udp_batch_t *b = calloc(1, sizeof *b);
  /* 64 destinations take every message; destination 0 then sends a longer
   * datagram (cannot join, no message left) and one of its first size,
   * which must not overtake it */
  for (int i = 0; i < HD_UDP_BATCH_MSGS; i++)
    push(&q, i, 500, 'a');
  push(&q, 0, 900, 'b');
  push(&q, 0, 500, 'c');
  push(&q, 1, 500, 'd');  /* joins destination 1's message */
  push(&q, 70, 500, 'e'); /* no message: waits */
  assert_int_equal(hd_udp_batch_plan(b, &q, 1), HD_UDP_BATCH_MSGS);
  char t[64];
  tags(b, 0, t);
  assert_string_equal(t, "a");
  tags(b, 1, t);
  assert_string_equal(t, "ad");
  for (unsigned m = 0; m < HD_UDP_BATCH_MSGS; m++)
    hd_udp_batch_mark_sent(b, &q, m);
  hd_udp_batch_pop_sent(&q);
  assert_int_equal(q.count, 4); /* b, c, (d sent), e */
  assert_int_equal(hd_udp_batch_plan(b, &q, 1), 2);
  tags(b, 0, t);
  assert_string_equal(t, "bc");
  tags(b, 1, t);
  assert_string_equal(t, "e");
  hd_txq_free(&q);
  free(b);
}

static void test_limits(void **st) {
  (void)st;
  hd_txq_t q;
  assert_int_equal(hd_txq_init(&q, 1024), 0);
  hd_udp_batch_t *b = calloc(1, sizeof *b);
  for (int i = 0; i < HD_UDP_GSO_MAX_SEGS + 5; i++) /* segment count cap */
    push(&q, 0, 100, 'x');
  assert_int_equal(hd_udp_batch_plan(b, &q, 1), 2);
  assert_int_equal(hd_udp_batch_segs(b, 0), HD_UDP_GSO_MAX_SEGS);
  assert_int_equal(hd_udp_batch_segs(b, 1), 5);
  while (q.count)
    hd_txq_pop(&q);
  for (int i = 0; i < 60; i++) /* byte cap: 60000 / 1400 = 42 segments */
    push(&q, 1, 1400, 'y');
  assert_int_equal(hd_udp_batch_plan(b, &q, 1), 2);
  assert_int_equal(hd_udp_batch_segs(b, 0), HD_UDP_GSO_MAX_BYTES / 1400);
  while (q.count)
    hd_txq_pop(&q);
  for (int i = 0; i < 300; i++) /* message and datagram caps per sendmmsg */
    push(&q, i % 100, 200, 'z');
  unsigned n = hd_udp_batch_plan(b, &q, 0);
  assert_int_equal(n, HD_UDP_BATCH_MSGS);
  n = hd_udp_batch_plan(b, &q, 1);
  unsigned total = 0;
  for (unsigned m = 0; m < n; m++)
    total += hd_udp_batch_segs(b, m);
  assert_int_equal(n, HD_UDP_BATCH_MSGS);         /* 64 of the 100 destinations... */
  assert_int_equal(total, 3 * HD_UDP_BATCH_MSGS); /* ...with all 3 of their datagrams */
  for (unsigned m = 0; m < n; m++)
    assert_true(dest_of(&b->msgs[m].msg_hdr) < HD_UDP_BATCH_MSGS);
  while (q.count)
    hd_txq_pop(&q);
  for (int i = 0; i < 1000; i++) /* datagram cap per sendmmsg */
    push(&q, i % 2, 100, 'w');
  n = hd_udp_batch_plan(b, &q, 1);
  total = 0;
  for (unsigned m = 0; m < n; m++)
    total += hd_udp_batch_segs(b, m);
  assert_int_equal(total, HD_UDP_BATCH_DGRAMS);
  hd_txq_free(&q);
  free(b);
}

static void test_partial_send(void **st) {
  (void)st;
  hd_txq_t q;
  assert_int_equal(hd_txq_init(&q, 16), 0);
  hd_udp_batch_t *b = calloc(1, sizeof *b);
  push(&q, 0, 300, 'a'), push(&q, 1, 300, 'b'), push(&q, 0, 300, 'c'), push(&q, 2, 300, 'd');
  assert_int_equal(hd_udp_batch_plan(b, &q, 1), 3); /* ac, b, d */
  /* the kernel took the first message only: a and c are sent, b heads the queue */
  assert_int_equal(hd_udp_batch_mark_sent(b, &q, 0), 600);
  hd_udp_batch_pop_sent(&q);
  assert_int_equal(q.count, 3); /* b, (c sent), d */
  assert_int_equal(hd_udp_batch_plan(b, &q, 1), 2);
  char t[64];
  tags(b, 0, t);
  assert_string_equal(t, "b");
  tags(b, 1, t);
  assert_string_equal(t, "d");
  hd_udp_batch_mark_sent(b, &q, 0);
  hd_udp_batch_mark_sent(b, &q, 1);
  hd_udp_batch_pop_sent(&q);
  assert_int_equal(q.count, 0);
  assert_int_equal(hd_udp_batch_plan(b, &q, 1), 0);
  /* the ring wraps: offsets stay relative to the head */
  for (int r = 0; r < 5; r++) {
    for (int i = 0; i < 10; i++)
      push(&q, i % 2, 100, (uint8_t)('a' + i));
    assert_int_equal(hd_udp_batch_plan(b, &q, 1), 2);
    tags(b, 0, t);
    assert_string_equal(t, "acegi");
    tags(b, 1, t);
    assert_string_equal(t, "bdfhj");
    hd_udp_batch_mark_sent(b, &q, 0);
    hd_udp_batch_mark_sent(b, &q, 1);
    hd_udp_batch_pop_sent(&q);
    assert_int_equal(q.count, 0);
  }
  hd_txq_free(&q);
  free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fanout_groups_by_destination),
      cmocka_unit_test(test_order_within_destination),
      cmocka_unit_test(test_full_batch_keeps_order),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_partial_send),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
