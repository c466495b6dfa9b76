/* Unit tests for the cross-worker hand-off (src/io/worker_shards.h): placement
 * (small rooms stay, large ones go to the least-loaded worker, ties away from
 * the room's worker), packets handed in clear and sealed by the shard with the
 * viewer's own outbound session (a receiver keyed like the viewer decrypts
 * every one, in order), a full ring dropping and counting (after its bounded
 * wait, once per flush), a stream retired
 * only after its packets (and after room came free in a full ring), and a
 * producer and a consumer thread at once (run under TSan by tools/test.sh).
 * The shard sends on a real UDP socket to a receiver, both on 127.0.0.1 with
 * ports the kernel picks; no uv loop: the tests call hd_shards_run themselves. */
#include "hd_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/err.h"
#include "io/media_workers.h"
#include "io/worker_shards.h"
#include "proto/srtp.h"

static const uint8_t kLocal[28] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14,
                                   15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28};
static const uint8_t kRemote[28] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
                                    9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};

/* two sockets on 127.0.0.1: `tx` is the room worker's media socket, `rx` the viewer */
typedef struct {
  int tx, rx;
  struct sockaddr_in rx_addr;
  hd_srtp_t *viewer; /* the viewer's inbound session (keys swapped) */
} net_t;

static void net_open(net_t *n) {
  memset(n, 0, sizeof *n);
  n->tx = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  n->rx = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  assert_true(n->tx >= 0 && n->rx >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  assert_int_equal(bind(n->tx, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(bind(n->rx, (struct sockaddr *)&a, sizeof a), 0);
  int sz = 4 << 20;
  setsockopt(n->rx, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  socklen_t al = sizeof n->rx_addr;
  getsockname(n->rx, (struct sockaddr *)&n->rx_addr, &al);
  assert_int_equal(hd_srtp_new(&n->viewer, HD_SRTP_AEAD_AES_128_GCM, kRemote, kLocal, 28), 0);
}

static void net_close(net_t *n) {
  close(n->tx);
  close(n->rx);
  hd_srtp_free(n->viewer);
}

/* the viewer transport's second outbound session, as hd_peer_clone_rtp_tx makes it */
static hd_srtp_t *rtp_tx(void) {
  hd_srtp_t *s;
  assert_int_equal(hd_srtp_new(&s, HD_SRTP_AEAD_AES_128_GCM, kLocal, kRemote, 28), 0);
  return s;
}

static size_t make_rtp(uint8_t *p, uint16_t seq, size_t payload) {
  memset(p, 0, 12 + payload);
  p[0] = 0x80;
  p[1] = 96;
  p[2] = (uint8_t)(seq >> 8);
  p[3] = (uint8_t)seq;
  p[11] = 7; /* SSRC 7 */
  for (size_t i = 0; i < payload; i++)
    p[12 + i] = (uint8_t)(seq + i);
  return 12 + payload;
}

static int send_seq(hd_shard_stream_t *st, net_t *n, uint16_t seq) {
  uint8_t p[1500];
  size_t len = make_rtp(p, seq, 200);
  return hd_shards_send(st, p, len, (struct sockaddr *)&n->rx_addr, sizeof n->rx_addr);
}

/* Reads what the viewer got (waiting up to ms for the first), decrypting each;
 * checks the payload; returns the count and the seqs in order. */
static int receive(net_t *n, uint16_t *seqs, int cap, int ms) {
  int got = 0;
  for (;;) {
    struct pollfd pfd = {.fd = n->rx, .events = POLLIN};
    if (poll(&pfd, 1, got ? 50 : ms) <= 0) return got;
    uint8_t b[1600];
    ssize_t r;
    while ((r = recv(n->rx, b, sizeof b, 0)) > 0) {
      int len = hd_srtp_unprotect(n->viewer, b, (size_t)r);
      assert_int_equal(len, 12 + 200);
      uint16_t seq = (uint16_t)(b[2] << 8 | b[3]);
      for (int i = 0; i < 200; i++)
        assert_int_equal(b[12 + i], (uint8_t)(seq + i));
      if (got < cap) seqs[got] = seq;
      got++;
    }
  }
}

static void test_placement(void **st) {
  (void)st;
  hd_shards_t *s;
  assert_int_equal(hd_shards_new(&s, 3, 10, 16), 0);
  hd_shards_stats_t t;
  /* a small room: its worker seals for the viewer, the session stays the caller's */
  hd_srtp_t *tx = rtp_tx();
  hd_shard_stream_t *small;
  assert_int_equal(hd_shards_attach(s, 1, 9, tx, &small), 0);
  hd_srtp_free(tx);
  hd_shards_stats(s, 1, &t);
  assert_int_equal(t.streams, 1);
  /* a large room on worker 1: each viewer goes to the least-loaded worker,
   * a tie away from worker 1 (it builds every viewer's packets) */
  static const int want[6] = {0, 2, 0, 2, 1, 0}; /* loads 010 110 111 211 212 222 */
  hd_shard_stream_t *big[6];
  for (int i = 0; i < 6; i++) {
    hd_srtp_t *x = rtp_tx();
    int rc = hd_shards_attach(s, 1, 10 + (size_t)i, x, &big[i]);
    assert_int_equal(rc, want[i] != 1);
    if (rc == 0) hd_srtp_free(x); /* sealing stays on worker 1: the session stays ours */
  }
  int load[3] = {0, 0, 0};
  for (int w = 0; w < 3; w++) {
    hd_shards_stats(s, w, &t);
    load[w] = (int)t.streams;
  }
  assert_int_equal(load[0], 3);
  assert_int_equal(load[1], 2);
  assert_int_equal(load[2], 2);
  hd_shards_detach(small);
  for (int i = 0; i < 6; i++)
    hd_shards_detach(big[i]);
  hd_shards_flush(s, 1);
  hd_shards_stats(s, 1, &t);
  assert_int_equal(t.streams, 0); /* its own left at once; 0 and 2 retire theirs when they run */
  hd_shards_stats(s, 0, &t);
  assert_int_equal(t.streams, 3);
  assert_int_equal(hd_shards_run(s, 0), 3);
  assert_int_equal(hd_shards_run(s, 2), 2);
  for (int w = 0; w < 3; w++) {
    hd_shards_stats(s, w, &t);
    assert_int_equal(t.streams, 0);
  }
  hd_shards_free(s); /* frees what is left; ASan checks nothing leaks */
}

static void test_handoff_sealed_in_order(void **st) {
  (void)st;
  net_t n;
  net_open(&n);
  hd_shards_t *s;
  assert_int_equal(hd_shards_new(&s, 2, 1, 1024), 0);
  hd_shards_set_worker(s, 0, n.tx, 0, NULL);
  hd_shards_set_worker(s, 1, -1, 0, NULL);
  hd_shard_stream_t *v;
  assert_int_equal(hd_shards_attach(s, 0, 50, rtp_tx(), &v), 1);
  for (uint16_t i = 0; i < 300; i++)
    assert_int_equal(send_seq(v, &n, (uint16_t)(65400 + i)), 0); /* across the seq wrap */
  hd_shards_flush(s, 0);
  assert_int_equal(hd_shards_run(s, 1), 300);
  uint16_t seqs[400];
  assert_int_equal(receive(&n, seqs, 400, 2000), 300);
  for (int i = 0; i < 300; i++)
    assert_int_equal(seqs[i], (uint16_t)(65400 + i));
  hd_shards_stats_t a, b;
  hd_shards_stats(s, 0, &a);
  hd_shards_stats(s, 1, &b);
  assert_int_equal(a.handed, 300);
  assert_int_equal(a.dropped_full, 0);
  assert_int_equal(b.sent, 300);
  assert_int_equal(b.bytes, 300 * (12 + 200 + 16));
  assert_int_equal(b.seal_errors, 0);
  assert_int_equal(a.sent, 0); /* worker 0 sealed none of them */
  hd_shards_detach(v);
  hd_shards_run(s, 1);
  hd_shards_stats(s, 1, &b);
  assert_int_equal(b.streams, 0);
  hd_shards_free(s);
  net_close(&n);
}

static void test_full_ring_drops_and_retire_waits(void **st) {
  (void)st;
  net_t n;
  net_open(&n);
  hd_shards_t *s;
  assert_int_equal(hd_shards_new(&s, 2, 1, 8), 0);
  hd_shards_set_worker(s, 1, n.tx, 0, NULL);
  hd_shard_stream_t *v;
  assert_int_equal(hd_shards_attach(s, 1, 2, rtp_tx(), &v), 1); /* room on worker 1, viewer sealed by 0 */
  for (uint16_t i = 0; i < 10; i++)
    assert_int_equal(send_seq(v, &n, i), i < 8 ? 0 : HD_ENOSPC);
  hd_shards_stats_t t;
  hd_shards_stats(s, 1, &t);
  assert_int_equal(t.handed, 8);
  assert_int_equal(t.dropped_full, 2);
  /* retired while the ring is full: waits, and is not freed before its packets */
  hd_shards_detach(v);
  assert_int_equal(hd_shards_flush(s, 1), 1); /* still waiting */
  hd_shards_stats(s, 0, &t);
  assert_int_equal(t.streams, 1);
  assert_int_equal(hd_shards_run(s, 0), 8); /* its packets, sealed with its session */
  hd_shards_stats(s, 0, &t);
  assert_int_equal(t.streams, 1);
  assert_int_equal(hd_shards_flush(s, 1), 0); /* room now: the retirement goes in */
  assert_int_equal(hd_shards_run(s, 0), 1);
  hd_shards_stats(s, 0, &t);
  assert_int_equal(t.streams, 0);
  assert_int_equal(t.sent, 8);
  uint16_t seqs[16];
  assert_int_equal(receive(&n, seqs, 16, 2000), 8);
  for (int i = 0; i < 8; i++)
    assert_int_equal(seqs[i], i);
  /* too long for a datagram with its tag */
  assert_int_equal(hd_shards_attach(s, 1, 2, rtp_tx(), &v), 1);
  uint8_t big[1500];
  memset(big, 0, sizeof big);
  big[0] = 0x80;
  assert_int_equal(hd_shards_send(v, big, sizeof big, (struct sockaddr *)&n.rx_addr, sizeof n.rx_addr),
                   HD_EINVAL);
  hd_shards_detach(v);
  hd_shards_free(s); /* the retirement still in the ring is freed here */
  net_close(&n);
}

/* ---- two threads: the room worker hands, the shard seals and sends ---- */

#define T_PACKETS 20000
static hd_shards_t *g_s;
static net_t g_n;
static atomic_int g_done;

static void *room_worker(void *arg) {
  hd_shard_stream_t *v = arg;
  for (int i = 0; i < T_PACKETS; i++) {
    send_seq(v, &g_n, (uint16_t)i); /* a full ring drops (counted) */
    if (i % 64 == 63) hd_shards_flush(g_s, 0);
  }
  hd_shards_detach(v);
  while (hd_shards_flush(g_s, 0) > 0) /* the ring may be full: as the worker's next drains would */
    sched_yield();
  atomic_store(&g_done, 1);
  return NULL;
}

static void *shard_worker(void *arg) {
  (void)arg;
  hd_shards_stats_t t;
  for (;;) {
    hd_shards_run(g_s, 1);
    hd_shards_stats(g_s, 1, &t);
    if (atomic_load(&g_done) && t.streams == 0) return NULL;
  }
}

static void test_threads(void **st) {
  (void)st;
  net_open(&g_n);
  atomic_init(&g_done, 0);
  assert_int_equal(hd_shards_new(&g_s, 2, 1, 256), 0);
  hd_shards_set_worker(g_s, 0, g_n.tx, 0, NULL);
  hd_shard_stream_t *v;
  assert_int_equal(hd_shards_attach(g_s, 0, 100, rtp_tx(), &v), 1);
  pthread_t a, b;
  assert_int_equal(pthread_create(&b, NULL, shard_worker, NULL), 0);
  assert_int_equal(pthread_create(&a, NULL, room_worker, v), 0);
  /* the viewer reads while they run: in order, each sealed right */
  static uint16_t seqs[T_PACKETS];
  int got = 0;
  while (!atomic_load(&g_done))
    got += receive(&g_n, seqs + got, T_PACKETS - got, 10);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  got += receive(&g_n, seqs + got, T_PACKETS - got, 200);
  hd_shards_stats_t t0, t1;
  hd_shards_stats(g_s, 0, &t0);
  hd_shards_stats(g_s, 1, &t1);
  assert_int_equal(t0.handed + t0.dropped_full, T_PACKETS);
  assert_int_equal(t1.sent + t1.send_errors, t0.handed);
  assert_int_equal(t1.streams, 0);
  assert_true(got > 0 && (uint64_t)got <= t1.sent); /* the viewer's socket buffer may overflow */
  for (int i = 1; i < got; i++)
    assert_true(seqs[i] > seqs[i - 1]); /* never reordered */
  hd_shards_free(g_s);
  net_close(&g_n);
}

/* Shutdown (review finding): once hd_shards_stop is called no shard drains
 * its rings, so a producer that met a full ring waited the whole
 * HD_SHARDS_FULL_WAIT_US at every flush of the shutdown. Now it drops at once. */
static void test_stop_drops_without_waiting(void **st) {
  (void)st;
  net_t n;
  net_open(&n);
  hd_shards_t *s;
  assert_int_equal(hd_shards_new(&s, 2, 1, 8), 0);
  hd_shards_set_worker(s, 1, n.tx, 0, NULL);
  hd_shard_stream_t *v;
  assert_int_equal(hd_shards_attach(s, 1, 2, rtp_tx(), &v), 1);
  for (uint16_t i = 0; i < 8; i++)
    assert_int_equal(send_seq(v, &n, i), 0);
  hd_shards_stats_t t;
  assert_int_equal(send_seq(v, &n, 8), HD_ENOSPC); /* running: one bounded wait, then the drop */
  hd_shards_stats(s, 1, &t);
  assert_int_equal(t.full_waits, 1);
  hd_shards_flush(s, 1);
  hd_shards_stop(s);
  for (int flush = 0; flush < 3; flush++) { /* every flush of a shutdown */
    assert_int_equal(send_seq(v, &n, (uint16_t)(9 + flush)), HD_ENOSPC);
    hd_shards_flush(s, 1);
  }
  hd_shards_stats(s, 1, &t);
  assert_int_equal(t.full_waits, 1); /* no wait after the stop */
  assert_int_equal(t.dropped_full, 4);
  assert_int_equal(hd_shards_run(s, 0), 0); /* stopped: the shard takes nothing */
  hd_shards_detach(v);
  hd_shards_free(s);
  net_close(&n);
}

/* media_shard_ring is rounded up to a power of two (docs/operations.md). */
static void test_ring_rounds_to_power_of_two(void **st) {
  (void)st;
  assert_int_equal(hd_shards_ring_slots(5), 8);
  assert_int_equal(hd_shards_ring_slots(8), 8);
  assert_int_equal(hd_shards_ring_slots(10000), 16384);
  assert_int_equal(hd_shards_ring_slots(HD_SHARDS_RING_MAX), HD_SHARDS_RING_MAX);
  assert_int_equal(hd_shards_ring_slots(0), 0);
  assert_int_equal(hd_shards_ring_slots(HD_SHARDS_RING_MAX + 1), 0);
  net_t n;
  net_open(&n);
  hd_shards_t *s;
  assert_int_equal(hd_shards_new(&s, 2, 1, 5), 0);
  hd_shards_set_worker(s, 1, n.tx, 0, NULL);
  hd_shard_stream_t *v;
  assert_int_equal(hd_shards_attach(s, 1, 2, rtp_tx(), &v), 1);
  for (uint16_t i = 0; i < 9; i++) /* a ring of 5 holds 8 */
    assert_int_equal(send_seq(v, &n, i), i < 8 ? 0 : HD_ENOSPC);
  hd_shards_detach(v);
  hd_shards_free(s);
  net_close(&n);
}

/* A ring size the shards refuse: the start-up error names the config key,
 * the value given and the range (it said "ring of 0 slots" for the default
 * and never the error). */
static void test_start_error_names_ring(void **st) {
  (void)st;
  hd_media_workers_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.n = 2;
  cfg.bind_host = "127.0.0.1";
  cfg.shard_min_room = 1;
  cfg.shard_ring = HD_SHARDS_RING_MAX + 1;
  hd_media_workers_t *w = NULL;
  char err[256] = "";
  assert_int_equal(hd_media_workers_start(&w, &cfg, err, sizeof err), HD_EINVAL);
  assert_null(w);
  assert_non_null(strstr(err, "media_shard_ring 65537"));
  assert_non_null(strstr(err, "1..65536"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_placement),
      cmocka_unit_test(test_handoff_sealed_in_order),
      cmocka_unit_test(test_full_ring_drops_and_retire_waits),
      cmocka_unit_test(test_threads),
      cmocka_unit_test(test_stop_drops_without_waiting),
      cmocka_unit_test(test_ring_rounds_to_power_of_two),
      cmocka_unit_test(test_start_error_names_ring),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
