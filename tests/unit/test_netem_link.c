/* Unit tests for src/netem/link: the emulated link's accuracy in virtual time.
 * Loss (Bernoulli rate, Gilbert-Elliott burst length and stationary loss),
 * capacity under saturation, drop-tail queue bound, RFC 8867 §5.1 capacity
 * schedule, exact serialisation across a step, Mahimahi traces (byte-granular
 * opportunities, parse errors with line numbers), jitter distributions and
 * keep_order, duplication, reordering, blackouts, caps, determinism per seed,
 * and mid-run parameter changes. Every packet carries its sequence number and
 * send time, and the driver advances virtual time to exactly the next event. */
#include "hd_test.h"

#include <math.h>

#include "base/err.h"
#include "netem/link.h"

/* ---- helpers */

static hd_netem_link_t *mk(const hd_netem_params_t *p, uint64_t seed) {
  hd_netem_link_t *l = NULL;
  assert_int_equal(hd_netem_link_new(&l, p, seed, 0), 0);
  assert_non_null(l);
  return l;
}

static void put_u32(uint8_t *b, uint32_t v) {
  for (int i = 0; i < 4; i++)
    b[i] = (uint8_t)(v >> (24 - 8 * i));
}
static uint32_t get_u32(const uint8_t *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}
static void put_i64(uint8_t *b, int64_t v) {
  put_u32(b, (uint32_t)((uint64_t)v >> 32));
  put_u32(b + 4, (uint32_t)v);
}
static int64_t get_i64(const uint8_t *b) { return (int64_t)((uint64_t)get_u32(b) << 32 | get_u32(b + 4)); }

typedef void (*deliver_fn)(void *ctx, uint32_t seq, hd_time_t sent, hd_time_t at, size_t len);

/* Offers `size`-byte packets every `interval` from 0 until `send_end`
 * (exclusive) and delivers everything due up to `run_end` (inclusive), each at
 * exactly its due time. Returns the number of packets offered. */
static uint32_t sim(hd_netem_link_t *l, hd_time_t interval, hd_time_t send_end, hd_time_t run_end,
                    size_t size, deliver_fn fn, void *ctx) {
  uint8_t pkt[HD_NETEM_MAX_PKT];
  memset(pkt, 0xab, sizeof pkt);
  hd_time_t next_send = 0;
  uint32_t seq = 0;
  for (;;) {
    hd_time_t now = next_send < send_end ? next_send : HD_TIME_NEVER;
    hd_time_t nt = hd_netem_link_next_timeout(l);
    if (nt < now) now = nt;
    if (now == HD_TIME_NEVER || now > run_end) break;
    const uint8_t *out;
    int n;
    while ((n = hd_netem_link_poll(l, now, &out)) > 0) {
      assert_true(n >= 12);
      fn(ctx, get_u32(out), get_i64(out + 4), now, (size_t)n);
    }
    assert_int_equal(n, 0);
    if (now == next_send && next_send < send_end) {
      put_u32(pkt, seq++);
      put_i64(pkt + 4, now);
      assert_true(hd_netem_link_send(l, pkt, size, now) >= 0);
      next_send += interval;
    }
  }
  return seq;
}

/* A generic recorder: per-packet delivery times and counts. */
#define REC_MAX 200000
typedef struct {
  hd_time_t *at;     /* first delivery time per seq, -1 if none */
  uint32_t *copies;  /* deliveries per seq */
  uint64_t n, bytes; /* deliveries */
  uint64_t inversions;
  uint32_t last_seq;
  int any;
  hd_time_t max_lat, min_lat;
  double sum, sum2;      /* of latency (us) */
  hd_time_t win[8];      /* window edges for byte counting */
  uint64_t win_bytes[8]; /* bytes delivered in [win[i], win[i+1]) */
  size_t n_win;
} rec_t;

static void rec_init(rec_t *r) {
  memset(r, 0, sizeof *r);
  r->at = malloc(REC_MAX * sizeof *r->at);
  r->copies = calloc(REC_MAX, sizeof *r->copies);
  assert_non_null(r->at);
  assert_non_null(r->copies);
  for (size_t i = 0; i < REC_MAX; i++)
    r->at[i] = -1;
  r->min_lat = HD_TIME_NEVER;
  r->max_lat = -1;
}

static void rec_free(rec_t *r) {
  free(r->at);
  free(r->copies);
}

static void rec_cb(void *ctx, uint32_t seq, hd_time_t sent, hd_time_t at, size_t len) {
  rec_t *r = ctx;
  assert_true(seq < REC_MAX);
  assert_true(at >= sent);
  if (r->copies[seq]++ == 0) r->at[seq] = at;
  r->n++;
  r->bytes += len;
  if (r->any && seq < r->last_seq) r->inversions++;
  r->any = 1;
  r->last_seq = seq;
  hd_time_t lat = at - sent;
  if (lat > r->max_lat) r->max_lat = lat;
  if (lat < r->min_lat) r->min_lat = lat;
  r->sum += (double)lat;
  r->sum2 += (double)lat * (double)lat;
  for (size_t i = 0; i + 1 < r->n_win; i++)
    if (at >= r->win[i] && at < r->win[i + 1]) r->win_bytes[i] += len;
}

static double rec_mean(const rec_t *r) { return r->sum / (double)r->n; }
static double rec_sd(const rec_t *r) {
  double m = rec_mean(r);
  return sqrt(r->sum2 / (double)r->n - m * m);
}

static void check_conservation(hd_netem_link_t *l) {
  hd_netem_stats_t s;
  hd_netem_link_stats(l, &s);
  assert_int_equal(s.pkts_in + s.duplicated, s.pkts_out + s.drop_loss + s.drop_queue + s.drop_blackout +
                                                 s.drop_cap + hd_netem_link_held(l));
}

/* ---- loss */

static void test_bernoulli_loss(void **st) {
  (void)st;
  hd_netem_params_t p;
  hd_netem_params_init(&p);
  p.loss = 0.20;
  hd_netem_link_t *l = mk(&p, 1);
  uint8_t pkt[100] = {0};
  int dropped = 0;
  for (int i = 0; i < 100000; i++) {
    int rc = hd_netem_link_send(l, pkt, sizeof pkt, HD_MS(i));
    assert_true(rc == 0 || rc == 1);
    dropped += rc == 0;
    const uint8_t *o;
    while (hd_netem_link_poll(l, HD_MS(i), &o) > 0) {
    }
  }
  double rate = dropped / 100000.0;
  assert_true(fabs(rate - 0.20) <= 0.01);
  hd_netem_stats_t s;
  hd_netem_link_stats(l, &s);
  assert_int_equal(s.drop_loss, (uint64_t)dropped);
  assert_int_equal(s.pkts_out, 100000u - (uint64_t)dropped);
  assert_int_equal(s.bytes_in, 100000u * sizeof pkt);
  check_conservation(l);
  hd_netem_link_free(l);
}

/* Runs n packets through GE loss; returns the loss rate and the mean loss-run length. */
static void ge_run(const hd_netem_ge_t *ge, uint64_t seed, int n, double *loss, double *mean_run) {
  hd_netem_params_t p;
  hd_netem_params_init(&p);
  p.ge = *ge;
  p.loss = 0.9; /* ignored while GE is enabled */
  hd_netem_link_t *l = mk(&p, seed);
  uint8_t pkt[20] = {0};
  uint64_t drops = 0, runs = 0;
  int prev = 0;
  for (int i = 0; i < n; i++) {
    int d = hd_netem_link_send(l, pkt, sizeof pkt, i) == 0;
    drops += d;
    if (d && !prev) runs++;
    prev = d;
    const uint8_t *o;
    while (hd_netem_link_poll(l, i, &o) > 0) {
    }
  }
  *loss = (double)drops / n;
  *mean_run = runs ? (double)drops / (double)runs : 0;
  hd_netem_link_free(l);
}

static void test_gilbert_elliott(void **st) {
  (void)st;
  /* Pure burst model (k = 1, h = 0): every bad-state packet is lost, so loss
   * runs are bad sojourns: geometric with mean 1/r; loss = p/(p+r). */
  /* 1M packets: ~10k bursts, so the mean's sd is ~0.035 (5 sd margin) */
  hd_netem_ge_t ge = {.enabled = 1, .p = 0.01, .r = 0.25, .k = 1.0, .h = 0.0};
  double loss, run;
  ge_run(&ge, 7, 1000000, &loss, &run);
  assert_true(fabs(run - 4.0) <= 0.2);
  assert_true(fabs(loss - 0.01 / 0.26) <= 0.05 * (0.01 / 0.26));
  ge.r = 0.5; /* the burst length follows r */
  ge_run(&ge, 7, 1000000, &loss, &run);
  assert_true(fabs(run - 2.0) <= 0.1);
  assert_true(fabs(loss - 0.01 / 0.51) <= 0.05 * (0.01 / 0.51));

  /* All four parameters: stationary loss = p/(p+r)(1-h) + r/(p+r)(1-k). */
  hd_netem_ge_t g4 = {.enabled = 1, .p = 0.02, .r = 0.2, .k = 0.98, .h = 0.4};
  double want = g4.p / (g4.p + g4.r) * (1 - g4.h) + g4.r / (g4.p + g4.r) * (1 - g4.k);
  for (uint64_t seed = 1; seed <= 3; seed++) {
    ge_run(&g4, seed, 200000, &loss, &run);
    assert_true(fabs(loss - want) <= 0.07 * want);
  }
  /* and it is bursty: runs are longer than Bernoulli's 1/(1-loss) */
  assert_true(run > 1.0 / (1.0 - want) + 0.1);
}

static void test_same_seed_same_drops(void **st) {
  (void)st;
  hd_netem_params_t p;
  hd_netem_params_init(&p);
  p.loss = 0.3;
  uint8_t pat[3][4000];
  uint64_t seeds[3] = {42, 42, 43};
  for (int k = 0; k < 3; k++) {
    /* the third run also changes the jitter: it must not matter for losses */
    p.jitter = k == 1 ? HD_MS(5) : 0;
    p.jitter_dist = k == 1 ? HD_JITTER_NORMAL : HD_JITTER_NONE;
    hd_netem_link_t *l = mk(&p, seeds[k]);
    uint8_t pkt[50] = {0};
    for (int i = 0; i < 4000; i++)
      pat[k][i] = (uint8_t)hd_netem_link_send(l, pkt, sizeof pkt, HD_MS(i));
    hd_netem_link_free(l);
  }
  assert_memory_equal(pat[0], pat[1], sizeof pat[0]);
  assert_memory_not_equal(pat[0], pat[2], sizeof pat[0]);
}

/* ---- capacity and queue */

static void test_capacity_and_queue_bound(void **st) {
  (void)st;
  hd_netem_params_t p;
  hd_netem_params_init(&p);
  p.rate_bps = 1000000;
  p.queue_time = HD_MS(100);
  hd_netem_link_t *l = mk(&p, 3);
  assert_int_equal(hd_netem_link_rate(l, HD_SEC(5)), 1000000);
  rec_t r;
  rec_init(&r);
  r.n_win = 2;
  r.win[0] = 0;
  r.win[1] = HD_SEC(60);
  /* 1200-byte packets at 2 Mbps for 60 s: saturated */
  sim(l, 4800, HD_SEC(60), HD_SEC(60), 1200, rec_cb, &r);
  double bps = (double)r.win_bytes[0] * 8 / 60.0;
  assert_true(fabs(bps - 1e6) <= 0.02e6);
  hd_netem_stats_t s;
  hd_netem_link_stats(l, &s);
  assert_true(s.drop_queue > 5000); /* about half the offered load */
  /* 100 ms of queue at 1 Mbps = 12500 bytes. The issue allows 100 ms plus one
   * packet's serialisation (9.6 ms); the model is tighter: the limit counts the
   * packet in service and the new packet itself, so 100 ms is the bound. */
  hd_time_t bound = HD_MS(100);
  assert_true(r.max_lat <= bound);
  assert_true(r.max_lat >= HD_MS(90)); /* and the queue really fills */
  assert_true(s.qdelay_max <= bound && s.qdelay_max == r.max_lat);
  assert_true(s.qdelay_p50 >= HD_MS(85) && s.qdelay_p50 <= s.qdelay_p99 && s.qdelay_p99 <= s.qdelay_max);
  check_conservation(l);
  rec_free(&r);
  hd_netem_link_free(l);
}

static void test_queue_bytes_drop_tail(void **st) {
  (void)st;
  hd_netem_params_t p;
  hd_netem_params_init(&p);
  p.rate_bps = 1000000;
  p.queue_bytes = 3000;
  hd_netem_link_t *l = mk(&p, 1);
  uint8_t pkt[1000] = {0};
  int acc = 0;
  for (int i = 0; i < 10; i++)
    acc += hd_netem_link_send(l, pkt, sizeof pkt, 0);
  assert_int_equal(acc, 3); /* the packet in service counts */
  assert_int_equal(hd_netem_link_next_timeout(l), 8000);
  /* at 8 ms the first has left: room for exactly one more */
  assert_int_equal(hd_netem_link_send(l, pkt, sizeof pkt, 8000), 1);
  assert_int_equal(hd_netem_link_send(l, pkt, sizeof pkt, 8000), 0);
  hd_netem_stats_t s;
  hd_netem_link_stats(l, &s);
  assert_int_equal(s.drop_queue, 8);
  hd_netem_link_free(l);

  /* an empty queue takes a packet bigger than the limit; a second one waits its turn */
  p.queue_bytes = 500;
  l = mk(&p, 1);
  assert_int_equal(hd_netem_link_send(l, pkt, sizeof pkt, 0), 1);
  assert_int_equal(hd_netem_link_send(l, pkt, 100, 0), 0);
  assert_int_equal(hd_netem_link_send(l, pkt, 100, 8000), 1);
  hd_netem_link_free(l);
}

static void test_serialisation_across_step(void **st) {
  (void)st;
  hd_netem_params_t p;
  hd_netem_params_init(&p);
  p.n_schedule = 2;
  p.schedule[0] = (hd_netem_step_t){0, 1000000};
  p.schedule[1] = (hd_netem_step_t){HD_MS(10), 2000000};
  hd_netem_link_t *l = mk(&p, 1);
  uint8_t pkt[1250] = {0}; /* 10000 bits */
  /* 5 ms at 1 Mbps (5000 bits) then 5000 bits at 2 Mbps (2.5 ms) */
  assert_int_equal(hd_netem_link_send(l, pkt, sizeof pkt, HD_MS(5)), 1);
  assert_int_equal(hd_netem_link_next_timeout(l), 12500);
  /* queued behind it, entirely at 2 Mbps: +5 ms */
  assert_int_equal(hd_netem_link_send(l, pkt, sizeof pkt, HD_MS(6)), 1);
  const uint8_t *o;
  assert_int_equal(hd_netem_link_poll(l, 12499, &o), 0);
  assert_int_equal(hd_netem_link_poll(l, 12500, &o), 1250);
  assert_int_equal(hd_netem_link_next_timeout(l), 17500);
  hd_netem_stats_t s;
  hd_netem_link_stats(l, &s);
  assert_int_equal(s.qdelay_max, 17500 - 6000);
  hd_netem_link_free(l);

  /* sub-microsecond serialisation does not accumulate rounding: 1001 x 100
   * bytes at 1 Gbit/s = 0.8 us each, 800.8 us in all */
  hd_netem_params_init(&p);
  p.rate_bps = 1000000000;
  l = mk(&p, 1);
  for (int i = 0; i < 1001; i++)
    assert_int_equal(hd_netem_link_send(l, pkt, 100, 0), 1);
  hd_netem_link_stats(l, &s);
  assert_int_equal(s.qdelay_max, 801); /* 800.8 us rounded up */
  hd_netem_link_free(l);
}

static void test_rfc8867_schedule(void **st) {
  (void)st;
  hd_netem_params_t p;
  hd_netem_params_init(&p);
  p.queue_time = HD_MS(300);
  p.n_schedule = 4;
  p.schedule[0] = (hd_netem_step_t){0, 1000000};
  p.schedule[1] = (hd_netem_step_t){HD_SEC(40), 2500000};
  p.schedule[2] = (hd_netem_step_t){HD_SEC(60), 600000};
  p.schedule[3] = (hd_netem_step_t){HD_SEC(80), 1000000};
  hd_netem_link_t *l = mk(&p, 5);
  assert_int_equal(hd_netem_link_rate(l, HD_SEC(40) - 1), 1000000);
  assert_int_equal(hd_netem_link_rate(l, HD_SEC(40)), 2500000);
  assert_int_equal(hd_netem_link_rate(l, HD_SEC(65)), 600000);
  assert_int_equal(hd_netem_link_rate(l, HD_SEC(95)), 1000000);
  rec_t r;
  rec_init(&r);
  r.n_win = 5;
  hd_time_t edges[5] = {0, HD_SEC(40), HD_SEC(60), HD_SEC(80), HD_SEC(100)};
  double want[4] = {1e6, 2.5e6, 0.6e6, 1e6};
  memcpy(r.win, edges, sizeof edges);
  /* 1200 bytes every 2.4 ms = 4 Mbps: saturated all along */
  sim(l, 2400, HD_SEC(100), HD_SEC(100), 1200, rec_cb, &r);
  for (int i = 0; i < 4; i++) {
    double secs = (double)(edges[i + 1] - edges[i]) / 1e6;
    double bps = (double)r.win_bytes[i] * 8 / secs;
    assert_true(fabs(bps - want[i]) <= 0.02 * want[i]);
  }
  /* the steps happen at the right time: the last 100 ms before 40 s still run
   * at 1 Mbps, the first 100 ms after at 2.5 Mbps (±1 packet) */
  rec_free(&r);
  hd_netem_link_free(l);

  l = mk(&p, 5);
  rec_init(&r);
  r.n_win = 5;
  hd_time_t e2[5] = {HD_SEC(40) - HD_MS(100), HD_SEC(40), HD_SEC(40) + HD_MS(100), HD_SEC(60),
                     HD_SEC(60) + HD_MS(100)};
  memcpy(r.win, e2, sizeof e2);
  sim(l, 2400, HD_SEC(61), HD_SEC(61), 1200, rec_cb, &r);
  assert_true(llabs((long long)r.win_bytes[0] * 8 - 100000) <= 9600);
  assert_true(llabs((long long)r.win_bytes[1] * 8 - 250000) <= 9600);
  assert_true(llabs((long long)r.win_bytes[3] * 8 - 60000) <= 9600);
  rec_free(&r);
  hd_netem_link_free(l);
}

/* ---- Mahimahi traces */

static void test_trace_constant_12mbps(void **st) {
  (void)st;
  hd_netem_params_t p;
  hd_netem_params_init(&p);
  p.queue_time = HD_MS(100);
  p.rate_bps = 5000; /* replaced by the trace */
  hd_netem_link_t *l = mk(&p, 1);
  const char *tr = "1\n"; /* one opportunity per ms, repeating */
  assert_int_equal(hd_netem_link_set_trace(l, tr, strlen(tr), NULL, 0), 0);
  assert_int_equal(hd_netem_link_rate(l, 0), 12000000);
  rec_t r;
  rec_init(&r);
  r.n_win = 2;
  r.win[0] = 0;
  r.win[1] = HD_SEC(10);
  /* 1500-byte packets at 24 Mbps */
  sim(l, 500, HD_SEC(10), HD_SEC(10), 1500, rec_cb, &r);
  double bps = (double)r.win_bytes[0] * 8 / 10.0;
  assert_true(fabs(bps - 12e6) <= 0.01 * 12e6);
  hd_netem_stats_t s;
  hd_netem_link_stats(l, &s);
  /* queue of 100 ms at 12 Mbps = 100 packets */
  assert_true(s.qdelay_max <= HD_MS(101));
  assert_true(s.qdelay_max >= HD_MS(95));
  rec_free(&r);
  hd_netem_link_free(l);
}

static void test_trace_bytes(void **st) {
  (void)st;
  hd_netem_params_t p;
  hd_netem_params_init(&p);
  hd_netem_link_t *l = mk(&p, 1);
  /* opportunities at 5, 10, 15, 20 ... ms: 2 x 1500 bytes per 10 ms */
  const char *tr = "# comment\n\n 5 \r\n10\n";
  char err[80];
  assert_int_equal(hd_netem_link_set_trace(l, tr, strlen(tr), err, sizeof err), 0);
  assert_int_equal(hd_netem_link_rate(l, 0), 2400000);
  uint8_t pkt[2000] = {0};
  const uint8_t *o;
  /* three 500-byte packets share the 5 ms opportunity; the fourth waits */
  for (int i = 0; i < 4; i++)
    assert_int_equal(hd_netem_link_send(l, pkt, 500, HD_MS(1)), 1);
  assert_int_equal(hd_netem_link_next_timeout(l), HD_MS(5));
  for (int i = 0; i < 3; i++)
    assert_int_equal(hd_netem_link_poll(l, HD_MS(5), &o), 500);
  assert_int_equal(hd_netem_link_poll(l, HD_MS(5), &o), 0);
  assert_int_equal(hd_netem_link_next_timeout(l), HD_MS(10));
  assert_int_equal(hd_netem_link_poll(l, HD_MS(10), &o), 500);
  /* the 10 ms opportunity had 1000 bytes left, but they are gone by 12 ms */
  assert_int_equal(hd_netem_link_send(l, pkt, 500, HD_MS(12)), 1);
  assert_int_equal(hd_netem_link_next_timeout(l), HD_MS(15));
  assert_int_equal(hd_netem_link_poll(l, HD_MS(15), &o), 500);
  /* a packet offered exactly at an opportunity (20 ms = the end of a period)
   * takes it; a 2000-byte one behind it spans the next two (25 and 30 ms) */
  assert_int_equal(hd_netem_link_send(l, pkt, 1500, HD_MS(20)), 1);
  assert_int_equal(hd_netem_link_send(l, pkt, 2000, HD_MS(20)), 1);
  assert_int_equal(hd_netem_link_next_timeout(l), HD_MS(20));
  assert_int_equal(hd_netem_link_poll(l, HD_MS(20), &o), 1500);
  assert_int_equal(hd_netem_link_next_timeout(l), HD_MS(30));
  assert_int_equal(hd_netem_link_poll(l, HD_MS(30), &o), 2000);
  /* period wraps: far in the future, 3 packets at 1000 s + 1 ms take 1000 s + 5, +10, +15 */
  for (int i = 0; i < 3; i++)
    assert_int_equal(hd_netem_link_send(l, pkt, 1500, HD_SEC(1000) + HD_MS(1)), 1);
  hd_time_t want[3] = {HD_SEC(1000) + HD_MS(5), HD_SEC(1000) + HD_MS(10), HD_SEC(1000) + HD_MS(15)};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(hd_netem_link_next_timeout(l), want[i]);
    assert_int_equal(hd_netem_link_poll(l, want[i], &o), 1500);
  }
  /* clearing the trace brings back the params' (unlimited) capacity */
  hd_netem_link_clear_trace(l);
  assert_int_equal(hd_netem_link_rate(l, 0), 0);
  assert_int_equal(hd_netem_link_send(l, pkt, 1500, HD_SEC(1001)), 1);
  assert_int_equal(hd_netem_link_next_timeout(l), HD_SEC(1001));
  hd_netem_link_free(l);
}

static void expect_trace_err(const char *text, const char *needle) {
  hd_netem_params_t p;
  hd_netem_params_init(&p);
  p.rate_bps = 1000000;
  hd_netem_link_t *l = mk(&p, 1);
  char err[80];
  assert_int_equal(hd_netem_link_set_trace(l, text, strlen(text), err, sizeof err), HD_EPROTO);
  if (!strstr(err, needle)) fail_msg("error '%s' lacks '%s'", err, needle);
  /* the old capacity is still in effect */
  assert_int_equal(hd_netem_link_rate(l, 0), 1000000);
  /* a NULL err buffer is fine */
  assert_int_equal(hd_netem_link_set_trace(l, text, strlen(text), NULL, 0), HD_EPROTO);
  hd_netem_link_free(l);
}

static void test_trace_errors(void **st) {
  (void)st;
  expect_trace_err("1\n2\nabc\n", "line 3: not a millisecond timestamp");
  expect_trace_err("1\n2\n3x\n", "line 3");
  expect_trace_err("1\n-2\n", "line 2");
  expect_trace_err("5\n3\n", "line 2: timestamp goes backwards");
  expect_trace_err("1\n99999999999\n", "line 2: timestamp too large");
  expect_trace_err("", "no delivery opportunities");
  expect_trace_err("# only a comment\n\n", "no delivery opportunities");
  expect_trace_err("0\n0\n", "lasts 0 ms");
  hd_netem_params_t p;
  hd_netem_params_init(&p);
  hd_netem_link_t *l = mk(&p, 1);
  char err[80];
  assert_int_equal(hd_netem_link_set_trace(l, "1\n2\0003\n", 6, err, sizeof err), HD_EPROTO);
  assert_non_null(strstr(err, "line 2"));
  assert_int_equal(hd_netem_link_set_trace(l, NULL, 5, err, sizeof err), HD_EINVAL);
  /* a tiny err buffer is truncated, still NUL-terminated */
  char tiny[5];
  assert_int_equal(hd_netem_link_set_trace(l, "x", 1, tiny, sizeof tiny), HD_EPROTO);
  assert_int_equal(strlen(tiny), 4);
  hd_netem_link_free(l);
}

/* ---- delay, jitter, reorder, duplication */

static void run_jitter(int dist, int keep_order, hd_time_t delay, hd_time_t jitter, uint32_t n, rec_t *r) {
  hd_netem_params_t p;
  hd_netem_params_init(&p);
  p.delay = delay;
  p.jitter = jitter;
  p.jitter_dist = dist;
  p.keep_order = keep_order;
  hd_netem_link_t *l = mk(&p, 11);
  rec_init(r);
  sim(l, HD_MS(1), HD_MS(n), HD_TIME_NEVER - 1, 100, rec_cb, r);
  assert_int_equal(r->n, n);
  check_conservation(l);
  hd_netem_link_free(l);
}

static void test_jitter_uniform_and_order(void **st) {
  (void)st;
  rec_t r;
  run_jitter(HD_JITTER_UNIFORM, 0, HD_MS(50), HD_MS(10), 20000, &r);
  assert_true(r.min_lat >= HD_MS(40) && r.max_lat <= HD_MS(60));
  assert_true(r.min_lat < HD_MS(40) + 500 && r.max_lat > HD_MS(60) - 500); /* it does spread */
  assert_true(fabs(rec_mean(&r) - 50000) <= 300);
  assert_true(fabs(rec_sd(&r) - 10000 / sqrt(3.0)) <= 200); /* uniform: sd = a/sqrt(3) */
  assert_true(r.inversions > 1000);                         /* 1 ms spacing, 20 ms spread */
  rec_free(&r);

  run_jitter(HD_JITTER_UNIFORM, 1, HD_MS(50), HD_MS(10), 20000, &r);
  assert_int_equal(r.inversions, 0);
  assert_true(r.min_lat >= HD_MS(40) && r.max_lat <= HD_MS(60));
  rec_free(&r);
}

static void test_jitter_normal_and_pareto(void **st) {
  (void)st;
  rec_t r;
  run_jitter(HD_JITTER_NORMAL, 0, HD_MS(100), HD_MS(10), 50000, &r);
  assert_true(fabs(rec_mean(&r) - 100000) <= 300);
  assert_true(fabs(rec_sd(&r) - 10000) <= 300);
  /* count the tail beyond delay + 5 jitter */
  uint64_t tail_normal = 0;
  for (uint32_t i = 0; i < 50000; i++)
    tail_normal += r.at[i] - HD_MS(i) > HD_MS(150);
  rec_free(&r);

  run_jitter(HD_JITTER_PARETO, 0, HD_MS(100), HD_MS(10), 50000, &r);
  assert_true(r.min_lat >= HD_MS(100)); /* one-sided */
  uint64_t tail_pareto = 0, below_median = 0;
  for (uint32_t i = 0; i < 50000; i++) {
    hd_time_t extra = r.at[i] - HD_MS(i) - HD_MS(100);
    tail_pareto += extra > HD_MS(50);
    below_median += extra <= 2599; /* Lomax(3) median = (2^(1/3) - 1) * 10 ms */
  }
  rec_free(&r);
  /* P(X > 5 scale) = 6^-3 = 0.46%, vs ~3e-7 for the normal */
  assert_true(tail_normal == 0);
  assert_true(fabs((double)tail_pareto / 50000 - 1.0 / 216) <= 0.2 / 216);
  assert_true(fabs((double)below_median / 50000 - 0.5) <= 0.01);
}

static void test_duplicate(void **st) {
  (void)st;
  hd_netem_params_t p;
  hd_netem_params_init(&p);
  p.duplicate = 0.10;
  p.delay = HD_MS(5);
  hd_netem_link_t *l = mk(&p, 9);
  rec_t r;
  rec_init(&r);
  sim(l, 100, 100000 * 100, HD_TIME_NEVER - 1, 64, rec_cb, &r);
  hd_netem_stats_t s;
  hd_netem_link_stats(l, &s);
  assert_true(fabs((double)s.duplicated / 100000 - 0.10) <= 0.01);
  assert_int_equal(s.pkts_out, 100000 + s.duplicated);
  uint64_t twice = 0;
  for (uint32_t i = 0; i < 100000; i++) {
    assert_true(r.copies[i] == 1 || r.copies[i] == 2);
    twice += r.copies[i] == 2;
  }
  assert_int_equal(twice, s.duplicated);
  check_conservation(l);
  rec_free(&r);
  hd_netem_link_free(l);
}

static void test_reorder(void **st) {
  (void)st;
  hd_netem_params_t p;
  hd_netem_params_init(&p);
  p.reorder = 0.10;
  p.delay = HD_MS(20);
  p.keep_order = 1; /* reordered packets still overtake */
  hd_netem_link_t *l = mk(&p, 4);
  rec_t r;
  rec_init(&r);
  sim(l, HD_MS(1), HD_MS(50000), HD_TIME_NEVER - 1, 64, rec_cb, &r);
  hd_netem_stats_t s;
  hd_netem_link_stats(l, &s);
  assert_true(fabs((double)s.reordered / 50000 - 0.10) <= 0.01);
  uint64_t early = 0;
  for (uint32_t i = 0; i < 50000; i++) {
    hd_time_t lat = r.at[i] - HD_MS(i);
    assert_true(lat == 0 || lat == HD_MS(20));
    early += lat == 0;
  }
  assert_int_equal(early, s.reordered);
  assert_true(r.inversions >= s.reordered * 9 / 10);
  rec_free(&r);
  hd_netem_link_free(l);
}

/* ---- blackout, caps, ordering, set */

static void test_blackout(void **st) {
  (void)st;
  hd_netem_params_t p;
  hd_netem_params_init(&p);
  p.delay = HD_MS(100);
  p.n_blackouts = 1;
  p.blackouts[0] = (hd_netem_blackout_t){HD_SEC(1), HD_MS(500)};
  hd_netem_link_t *l = mk(&p, 2);
  rec_t r;
  rec_init(&r);
  sim(l, HD_MS(1), HD_SEC(3), HD_TIME_NEVER - 1, 64, rec_cb, &r);
  hd_netem_stats_t s;
  hd_netem_link_stats(l, &s);
  assert_int_equal(s.drop_blackout, 500);
  for (uint32_t i = 0; i < 3000; i++) {
    int in = i >= 1000 && i < 1500;
    assert_int_equal(r.copies[i], in ? 0 : 1);
  }
  /* in flight when the link went down: still delivered, during the blackout */
  assert_int_equal(r.at[999], HD_MS(1099));
  assert_int_equal(r.at[1500], HD_MS(1600));
  rec_free(&r);
  hd_netem_link_free(l);
}

static void test_cap_and_lending(void **st) {
  (void)st;
  hd_netem_params_t p;
  hd_netem_params_init(&p);
  p.delay = HD_MS(10);
  p.max_packets = 10;
  hd_netem_link_t *l = mk(&p, 1);
  uint8_t pkt[HD_NETEM_MAX_PKT + 1];
  int acc = 0;
  for (int i = 0; i < 15; i++) {
    pkt[0] = (uint8_t)i;
    acc += hd_netem_link_send(l, pkt, 10, 0);
  }
  assert_int_equal(acc, 10);
  assert_int_equal(hd_netem_link_held(l), 10);
  hd_netem_stats_t s;
  hd_netem_link_stats(l, &s);
  assert_int_equal(s.drop_cap, 5);
  /* equal times come out in offer order */
  const uint8_t *o;
  assert_int_equal(hd_netem_link_poll(l, HD_MS(10), &o), 10);
  assert_int_equal(o[0], 0);
  assert_int_equal(hd_netem_link_held(l), 9);
  pkt[0] = 99;
  assert_int_equal(hd_netem_link_send(l, pkt, 10, HD_MS(10)), 1);
  assert_int_equal(hd_netem_link_send(l, pkt, 10, HD_MS(10)), 0);
  for (int i = 1; i < 10; i++) {
    assert_int_equal(hd_netem_link_poll(l, HD_MS(10), &o), 10);
    assert_int_equal(o[0], i);
  }
  assert_int_equal(hd_netem_link_poll(l, HD_MS(10), &o), 0);
  assert_int_equal(hd_netem_link_next_timeout(l), HD_MS(20));
  assert_int_equal(hd_netem_link_poll(l, HD_MS(20), &o), 10);
  assert_int_equal(o[0], 99);
  assert_int_equal(hd_netem_link_poll(l, HD_MS(20), &o), 0);
  assert_int_equal(hd_netem_link_next_timeout(l), HD_TIME_NEVER);
  assert_int_equal(hd_netem_link_held(l), 0);
  /* errors are not counted */
  assert_int_equal(hd_netem_link_send(l, pkt, 0, 0), HD_EINVAL);
  assert_int_equal(hd_netem_link_send(l, pkt, HD_NETEM_MAX_PKT + 1, 0), HD_EINVAL);
  assert_int_equal(hd_netem_link_send(l, pkt, HD_NETEM_MAX_PKT, HD_MS(30)), 1);
  assert_int_equal(hd_netem_link_poll(l, HD_MS(40), &o), HD_NETEM_MAX_PKT);
  check_conservation(l);
  /* raising the cap mid-run grows the pool */
  p.max_packets = 200;
  assert_int_equal(hd_netem_link_set(l, &p, HD_MS(40)), 0);
  for (int i = 0; i < 250; i++)
    hd_netem_link_send(l, pkt, 1000, HD_MS(41));
  assert_int_equal(hd_netem_link_held(l), 200);
  check_conservation(l);
  hd_netem_link_free(l);
  hd_netem_link_free(NULL);
}

static void test_set_midrun(void **st) {
  (void)st;
  hd_netem_params_t p;
  hd_netem_params_init(&p);
  p.delay = HD_MS(10);
  hd_netem_link_t *l = mk(&p, 1);
  uint8_t a[1] = {'A'}, b[1] = {'B'};
  assert_int_equal(hd_netem_link_send(l, a, 1, 0), 1);
  p.delay = HD_MS(50);
  assert_int_equal(hd_netem_link_set(l, &p, HD_MS(1)), 0);
  assert_int_equal(hd_netem_link_send(l, b, 1, HD_MS(2)), 1);
  const uint8_t *o;
  assert_int_equal(hd_netem_link_next_timeout(l), HD_MS(10));
  assert_int_equal(hd_netem_link_poll(l, HD_MS(10), &o), 1);
  assert_int_equal(o[0], 'A');
  assert_int_equal(hd_netem_link_next_timeout(l), HD_MS(52));
  assert_int_equal(hd_netem_link_poll(l, HD_MS(52), &o), 1);
  assert_int_equal(o[0], 'B');
  /* switching to 100% loss drops new packets only */
  assert_int_equal(hd_netem_link_send(l, a, 1, HD_MS(60)), 1);
  p.loss = 1.0;
  assert_int_equal(hd_netem_link_set(l, &p, HD_MS(61)), 0);
  assert_int_equal(hd_netem_link_send(l, b, 1, HD_MS(62)), 0);
  assert_int_equal(hd_netem_link_poll(l, HD_MS(110), &o), 1);
  assert_int_equal(o[0], 'A');
  /* invalid params are refused and change nothing */
  p.loss = 1.5;
  assert_int_equal(hd_netem_link_set(l, &p, HD_MS(120)), HD_EINVAL);
  assert_int_equal(hd_netem_link_send(l, b, 1, HD_MS(120)), 0); /* still 100% */
  hd_netem_link_free(l);
}

static void test_start_offset(void **st) {
  (void)st;
  /* schedule and blackouts are relative to the link's start */
  hd_netem_params_t p;
  hd_netem_params_init(&p);
  p.n_schedule = 2;
  p.schedule[0] = (hd_netem_step_t){0, 1000000};
  p.schedule[1] = (hd_netem_step_t){HD_SEC(2), 2000000};
  p.n_blackouts = 1;
  p.blackouts[0] = (hd_netem_blackout_t){HD_SEC(1), HD_MS(100)};
  hd_netem_link_t *l = NULL;
  hd_time_t t0 = HD_SEC(5000);
  assert_int_equal(hd_netem_link_new(&l, &p, 1, t0), 0);
  uint8_t pkt[1250] = {0};
  const uint8_t *o;
  /* offered before the start: served from the start */
  assert_int_equal(hd_netem_link_send(l, pkt, sizeof pkt, t0 - HD_SEC(1)), 1);
  assert_int_equal(hd_netem_link_next_timeout(l), t0 + HD_MS(10));
  assert_int_equal(hd_netem_link_poll(l, t0 + HD_MS(10), &o), 1250);
  assert_int_equal(hd_netem_link_send(l, pkt, sizeof pkt, t0 + HD_MS(1050)), 0);
  assert_int_equal(hd_netem_link_send(l, pkt, sizeof pkt, t0 + HD_MS(1100)), 1);
  assert_int_equal(hd_netem_link_next_timeout(l), t0 + HD_MS(1110));
  assert_int_equal(hd_netem_link_rate(l, t0 + HD_SEC(2)), 2000000);
  assert_int_equal(hd_netem_link_rate(l, HD_SEC(2)), 1000000); /* before the start */
  assert_int_equal(hd_netem_link_send(l, pkt, sizeof pkt, t0 + HD_SEC(3)), 1);
  assert_int_equal(hd_netem_link_poll(l, t0 + HD_SEC(3) + HD_MS(5), &o), 1250);
  /* absurd clocks do not overflow */
  assert_true(hd_netem_link_send(l, pkt, sizeof pkt, INT64_MIN) >= 0);
  assert_true(hd_netem_link_send(l, pkt, sizeof pkt, INT64_MAX - 1) >= 0);
  hd_netem_stats_t s;
  hd_netem_link_stats(l, &s);
  assert_int_equal(s.drop_blackout, 1);
  hd_netem_link_free(l);
}

static void test_params_check(void **st) {
  (void)st;
  hd_netem_params_t p;
  hd_netem_params_init(&p);
  assert_int_equal(hd_netem_params_check(&p), 0);
  assert_int_equal(hd_netem_params_check(NULL), HD_EINVAL);
  hd_netem_link_t *l = NULL;
#define BAD(stmt)                                                                                            \
  do {                                                                                                       \
    hd_netem_params_init(&p);                                                                                \
    stmt;                                                                                                    \
    assert_int_equal(hd_netem_params_check(&p), HD_EINVAL);                                                  \
    assert_int_equal(hd_netem_link_new(&l, &p, 1, 0), HD_EINVAL);                                            \
  } while (0)
  BAD(p.loss = -0.1);
  BAD(p.loss = NAN);
  BAD(p.duplicate = 2);
  BAD(p.reorder = -1);
  BAD((p.ge.enabled = 1, p.ge.r = 1.1));
  BAD(p.delay = -1);
  BAD(p.jitter = HD_NETEM_MAX_DELAY + 1);
  BAD(p.jitter_dist = 4);
  BAD(p.rate_bps = HD_NETEM_MAX_RATE + 1);
  BAD(p.queue_time = -5);
  BAD(p.n_schedule = HD_NETEM_MAX_SCHEDULE + 1);
  BAD((p.n_schedule = 2, p.schedule[0].at = 5, p.schedule[1].at = 5));
  BAD((p.n_schedule = 1, p.schedule[0].at = -1));
  BAD(p.n_blackouts = HD_NETEM_MAX_BLACKOUTS + 1);
  BAD((p.n_blackouts = 1, p.blackouts[0].duration = -1));
  BAD(p.max_packets = HD_NETEM_MAX_QUEUE_PKTS + 1);
#undef BAD
  assert_null(l);
  /* GE parameters are only checked when enabled */
  hd_netem_params_init(&p);
  p.ge.r = 7;
  assert_int_equal(hd_netem_params_check(&p), 0);
}

static void test_qdelay_percentiles(void **st) {
  (void)st;
  hd_netem_params_t p;
  hd_netem_params_init(&p);
  p.rate_bps = 1000000;
  hd_netem_link_t *l = mk(&p, 1);
  uint8_t pkt[1250] = {0};
  /* a burst of 100: queueing delays 10, 20, ... 1000 ms */
  for (int i = 0; i < 100; i++)
    assert_int_equal(hd_netem_link_send(l, pkt, sizeof pkt, 0), 1);
  hd_netem_stats_t s;
  hd_netem_link_stats(l, &s);
  assert_int_equal(s.qdelay_max, HD_MS(1000));
  assert_true(s.qdelay_p50 >= HD_MS(500) && s.qdelay_p50 <= HD_MS(500) * 65 / 64);
  assert_true(s.qdelay_p95 >= HD_MS(950) && s.qdelay_p95 <= HD_MS(950) * 65 / 64);
  assert_true(s.qdelay_p99 >= HD_MS(990) && s.qdelay_p99 <= HD_MS(1000));
  hd_netem_link_free(l);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bernoulli_loss),
      cmocka_unit_test(test_gilbert_elliott),
      cmocka_unit_test(test_same_seed_same_drops),
      cmocka_unit_test(test_capacity_and_queue_bound),
      cmocka_unit_test(test_queue_bytes_drop_tail),
      cmocka_unit_test(test_serialisation_across_step),
      cmocka_unit_test(test_rfc8867_schedule),
      cmocka_unit_test(test_trace_constant_12mbps),
      cmocka_unit_test(test_trace_bytes),
      cmocka_unit_test(test_trace_errors),
      cmocka_unit_test(test_jitter_uniform_and_order),
      cmocka_unit_test(test_jitter_normal_and_pareto),
      cmocka_unit_test(test_duplicate),
      cmocka_unit_test(test_reorder),
      cmocka_unit_test(test_blackout),
      cmocka_unit_test(test_cap_and_lending),
      cmocka_unit_test(test_set_midrun),
      cmocka_unit_test(test_start_offset),
      cmocka_unit_test(test_params_check),
      cmocka_unit_test(test_qdelay_percentiles),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
