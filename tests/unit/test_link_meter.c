/* Link measurement between two nodes (src/overlay/link_meter), in virtual
 * time over the `hudong netem` link model (src/netem/link): each end probes
 * every 100 ms and echoes the other's probes. The RTT, per-direction loss and
 * forward jitter come out as configured on the two emulated directions; a
 * blackout marks the link down within ~400 ms and up again at the first echo;
 * mild loss never marks it down. Deterministic (fixed seeds). */
#include "hd_test.h"

#include <string.h>

#include "base/err.h"
#include "netem/link.h"
#include "overlay/link_meter.h"

typedef struct {
  hd_link_meter_t m[2];    /* 0 = A, 1 = B */
  hd_netem_link_t *dir[2]; /* dir[0]: A -> B, dir[1]: B -> A */
  hd_time_t now;
} pair_t;

static void pair_init(pair_t *p, const hd_netem_params_t *ab, const hd_netem_params_t *ba) {
  memset(p, 0, sizeof *p);
  p->now = HD_SEC(1000);
  hd_link_meter_init(&p->m[0], HD_MS(100), p->now);
  hd_link_meter_init(&p->m[1], HD_MS(100), p->now + HD_MS(37));
  assert_int_equal(hd_netem_link_new(&p->dir[0], ab, 11, p->now), 0);
  assert_int_equal(hd_netem_link_new(&p->dir[1], ba, 22, p->now), 0);
}

static void pair_free(pair_t *p) {
  hd_netem_link_free(p->dir[0]);
  hd_netem_link_free(p->dir[1]);
}

/* Runs both meters and both directions until `end`, on 1 ms steps. */
static void run_until(pair_t *p, hd_time_t end) {
  uint8_t buf[64], reply[64];
  for (; p->now < end; p->now += HD_MS(1)) {
    for (int i = 0; i < 2; i++) {
      int n = hd_link_meter_poll(&p->m[i], p->now, buf, sizeof buf);
      assert_true(n >= 0);
      if (n > 0) hd_netem_link_send(p->dir[i], buf, (size_t)n, p->now);
    }
    for (int d = 0; d < 2; d++) {
      const uint8_t *pkt;
      int n;
      while ((n = hd_netem_link_poll(p->dir[d], p->now, &pkt)) > 0) {
        int to = d == 0 ? 1 : 0; /* A -> B lands at B */
        int r = hd_link_meter_feed(&p->m[to], pkt, (size_t)n, p->now, reply, sizeof reply);
        assert_true(r >= 0);
        if (r > 0) hd_netem_link_send(p->dir[to], reply, (size_t)r, p->now);
      }
    }
  }
}

static void params(hd_netem_params_t *x, int delay_ms, double loss, int jitter_ms) {
  hd_netem_params_init(x);
  x->delay = HD_MS(delay_ms);
  x->loss = loss;
  x->jitter = HD_MS(jitter_ms);
  x->jitter_dist = jitter_ms ? HD_JITTER_UNIFORM : HD_JITTER_NONE;
}

/* 20 ms each way, clean: RTT 40 ms, no loss, no jitter, up. */
static void test_clean_link(void **st) {
  (void)st;
  hd_netem_params_t ab, ba;
  params(&ab, 20, 0, 0);
  params(&ba, 20, 0, 0);
  pair_t p;
  pair_init(&p, &ab, &ba);
  run_until(&p, p.now + HD_SEC(10));
  hd_link_meter_stats_t s;
  hd_link_meter_stats(&p.m[0], p.now, &s);
  assert_true(s.up);
  assert_true(s.srtt_ms > 39.0 && s.srtt_ms < 41.5);
  assert_true(s.min_rtt_ms >= 39.0 && s.min_rtt_ms <= 41.0);
  assert_true(s.loss_fwd == 0 && s.loss_rtt == 0);
  assert_true(s.jitter_ms < 0.5);
  assert_true(s.probes_sent >= 99 && s.probes_sent <= 101);
  assert_int_equal(s.downs, 0);
  hd_link_meter_sample_t smp[HD_LINK_METER_SAMPLES];
  size_t n = hd_link_meter_samples(&p.m[0], smp, HD_LINK_METER_SAMPLES);
  assert_int_equal(n, HD_LINK_METER_SAMPLES);
  for (size_t i = 1; i < n; i++)
    assert_true(smp[i].at > smp[i - 1].at);
  assert_true(smp[n - 1].rtt_ms > 39.0f && smp[n - 1].rtt_ms < 41.5f);
  pair_free(&p);
}

/* 10% loss A -> B only, 75 ms one way with 10 ms jitter A -> B: A reads ~10%
 * forward loss and the jitter, B reads no forward loss; both read the
 * round-trip loss (~10%) and RTT ~ 75 + 75. */
static void test_lossy_direction(void **st) {
  (void)st;
  hd_netem_params_t ab, ba;
  params(&ab, 75, 0.10, 10);
  params(&ba, 75, 0, 0);
  pair_t p;
  pair_init(&p, &ab, &ba);
  run_until(&p, p.now + HD_SEC(60));
  hd_link_meter_stats_t a, b;
  hd_link_meter_stats(&p.m[0], p.now, &a);
  hd_link_meter_stats(&p.m[1], p.now, &b);
  print_message("A: srtt %.1f ms, fwd loss %.3f, rtt loss %.3f, jitter %.2f ms\n", a.srtt_ms, a.loss_fwd,
                a.loss_rtt, a.jitter_ms);
  print_message("B: srtt %.1f ms, fwd loss %.3f, rtt loss %.3f, jitter %.2f ms\n", b.srtt_ms, b.loss_fwd,
                b.loss_rtt, b.jitter_ms);
  assert_true(a.up && b.up);
  assert_true(a.srtt_ms > 140 && a.srtt_ms < 162);
  assert_true(a.loss_fwd > 0.05 && a.loss_fwd < 0.16);
  assert_true(a.loss_rtt > 0.05 && a.loss_rtt < 0.16);
  assert_true(b.loss_fwd < 0.01);
  assert_true(b.loss_rtt > 0.05 && b.loss_rtt < 0.16); /* B's echoes come back over the lossy direction */
  /* uniform +-10 ms: mean |D| between two arrivals is 20/3 ms */
  assert_true(a.jitter_ms > 3.0 && a.jitter_ms < 10.0);
  assert_true(b.jitter_ms < 0.5);
  assert_int_equal(a.downs, 0);
  pair_free(&p);
}

/* A blackout of both directions for 2 s (100 ms probes): suspect within
 * HD_LINK_METER_DOWN_PROBES intervals + RTT + one interval of its start,
 * down HD_LINK_METER_DOWN_CONFIRM later, up within RTT +
 * HD_LINK_METER_UP_ECHOES intervals of its end. */
static void test_blackout_down_up(void **st) {
  (void)st;
  hd_netem_params_t ab, ba;
  params(&ab, 20, 0, 0);
  params(&ba, 20, 0, 0);
  ab.blackouts[0] = (hd_netem_blackout_t){.start = HD_SEC(5), .duration = HD_SEC(2)};
  ab.n_blackouts = 1;
  ba.blackouts[0] = ab.blackouts[0];
  ba.n_blackouts = 1;
  pair_t p;
  pair_init(&p, &ab, &ba);
  hd_time_t t0 = p.now, down_at = 0, up_at = 0, suspect_at = 0;
  hd_link_meter_stats_t s;
  while (p.now < t0 + HD_SEC(10)) {
    run_until(&p, p.now + HD_MS(5));
    hd_link_meter_stats(&p.m[0], p.now, &s);
    if (s.suspect && !suspect_at && p.now > t0 + HD_SEC(1)) suspect_at = p.now;
    if (!s.up && !down_at && p.now > t0 + HD_SEC(1)) down_at = p.now;
    if (s.up && down_at && !up_at) up_at = p.now;
  }
  assert_true(suspect_at && down_at && up_at);
  hd_time_t suspect_after = suspect_at - (t0 + HD_SEC(5)), down_after = down_at - (t0 + HD_SEC(5)),
            up_after = up_at - (t0 + HD_SEC(7));
  print_message("suspect %.0f ms and down %.0f ms after the blackout began, up %.0f ms after it ended\n",
                suspect_after / 1000.0, down_after / 1000.0, up_after / 1000.0);
  assert_true(suspect_after > 0 &&
              suspect_after <= HD_LINK_METER_DOWN_PROBES * HD_MS(100) + HD_MS(40) + HD_MS(100) + HD_MS(10));
  assert_true(down_after >= suspect_after + HD_LINK_METER_DOWN_CONFIRM - HD_MS(5) &&
              down_after <= suspect_after + HD_LINK_METER_DOWN_CONFIRM + HD_MS(10));
  assert_int_equal(s.suspects, 1);
  assert_true(up_after >= 0 && up_after <= HD_MS(40) + HD_LINK_METER_UP_ECHOES * HD_MS(100) + HD_MS(10));
  assert_int_equal(s.downs, 1);
  /* the probes lost in the dark count as round-trip loss */
  assert_true(s.loss_rtt > 0.05);
  pair_free(&p);
}

/* 1% random loss each way over 5 minutes: never marked down. */
static void test_no_false_down(void **st) {
  (void)st;
  hd_netem_params_t ab, ba;
  params(&ab, 30, 0.01, 2);
  params(&ba, 30, 0.01, 2);
  pair_t p;
  pair_init(&p, &ab, &ba);
  run_until(&p, p.now + HD_SEC(300));
  hd_link_meter_stats_t s;
  hd_link_meter_stats(&p.m[0], p.now, &s);
  assert_true(s.up);
  assert_int_equal(s.downs, 0);
  assert_true(s.loss_fwd < 0.04);
  pair_free(&p);
}

/* Issue 16 item 1: with the default probes (50 ms, suspect after 3
 * unanswered) a dead 20 ms link (+-5 ms jitter) is suspect within 250 ms of
 * the blackout's start (media takes a second path then), where the
 * 100 ms / 300 ms rule before took ~340-440 ms, and down
 * HD_LINK_METER_DOWN_CONFIRM later (routes move); a link
 * answering one probe in two while down does not come back (hysteresis);
 * 2% loss each way with +-10 ms jitter for 10 minutes never marks it down. */
static void test_fast_down_default_probes(void **st) {
  (void)st;
  hd_netem_params_t ab, ba;
  params(&ab, 20, 0, 5);
  params(&ba, 20, 0, 5);
  ab.blackouts[0] = (hd_netem_blackout_t){.start = HD_SEC(5), .duration = HD_SEC(2)};
  ab.n_blackouts = 1;
  ba.blackouts[0] = ab.blackouts[0];
  ba.n_blackouts = 1;
  pair_t p;
  memset(&p, 0, sizeof p);
  p.now = HD_SEC(1000);
  hd_link_meter_init(&p.m[0], 0, p.now); /* 0: the default probe interval */
  hd_link_meter_init(&p.m[1], 0, p.now + HD_MS(17));
  assert_int_equal(p.m[0].interval, HD_LINK_METER_DEFAULT_INTERVAL);
  assert_int_equal(hd_netem_link_new(&p.dir[0], &ab, 11, p.now), 0);
  assert_int_equal(hd_netem_link_new(&p.dir[1], &ba, 22, p.now), 0);
  hd_time_t t0 = p.now, down_at = 0, up_at = 0, suspect_at = 0;
  hd_link_meter_stats_t s;
  while (p.now < t0 + HD_SEC(9)) {
    run_until(&p, p.now + HD_MS(1));
    hd_link_meter_stats(&p.m[0], p.now, &s);
    if (s.suspect && !suspect_at && p.now > t0 + HD_SEC(1)) suspect_at = p.now;
    if (!s.up && !down_at && p.now > t0 + HD_SEC(1)) down_at = p.now;
    if (s.up && down_at && !up_at) up_at = p.now;
  }
  assert_true(suspect_at && down_at && up_at);
  hd_time_t suspect_after = suspect_at - (t0 + HD_SEC(5)), down_after = down_at - (t0 + HD_SEC(5)),
            up_after = up_at - (t0 + HD_SEC(7));
  print_message("50 ms probes: suspect %.0f ms, down %.0f ms after the blackout began, up %.0f ms after it "
                "ended\n",
                suspect_after / 1000.0, down_after / 1000.0, up_after / 1000.0);
  assert_true(suspect_after > 0 && suspect_after <= HD_MS(250));
  assert_true(down_after > 0 && down_after <= HD_MS(250) + HD_LINK_METER_DOWN_CONFIRM);
  assert_true(up_after >= HD_MS(40) + (HD_LINK_METER_UP_ECHOES - 1) * HD_MS(50) - HD_MS(15));
  assert_true(up_after <= HD_MS(40) + HD_LINK_METER_UP_ECHOES * HD_MS(50) + HD_MS(20));
  assert_int_equal(s.downs, 1);
  /* down, then every other probe answered: it stays down */
  hd_link_meter_t m;
  hd_link_meter_init(&m, 0, HD_SEC(1));
  uint8_t out[64], echo[64];
  hd_link_meter_t far;
  hd_link_meter_init(&far, 0, HD_SEC(1));
  hd_time_t t = HD_SEC(1);
  int ups_while_flaky = 0;
  for (int i = 0; i < 200; i++, t += HD_MS(50)) {
    int n = hd_link_meter_poll(&m, t, out, sizeof out);
    assert_true(n > 0);
    int answered = i < 20 || (i >= 40 && i % 2 == 0); /* clean, then dead for 1 s, then every other one */
    if (answered) {
      int e = hd_link_meter_feed(&far, out, (size_t)n, t + HD_MS(10), echo, sizeof echo);
      assert_true(e > 0);
      assert_int_equal(hd_link_meter_feed(&m, echo, (size_t)e, t + HD_MS(20), NULL, 0), 0);
    }
    hd_link_meter_stats(&m, t + HD_MS(20), &s);
    if (i >= 40) ups_while_flaky += s.up;
  }
  assert_int_equal(s.downs, 1);
  assert_int_equal(ups_while_flaky, 0);
  pair_free(&p);
  /* 2% loss each way, +-10 ms jitter, 10 minutes: no down */
  params(&ab, 20, 0.02, 10);
  params(&ba, 20, 0.02, 10);
  memset(&p, 0, sizeof p);
  p.now = HD_SEC(1000);
  hd_link_meter_init(&p.m[0], 0, p.now);
  hd_link_meter_init(&p.m[1], 0, p.now + HD_MS(17));
  assert_int_equal(hd_netem_link_new(&p.dir[0], &ab, 33, p.now), 0);
  assert_int_equal(hd_netem_link_new(&p.dir[1], &ba, 44, p.now), 0);
  run_until(&p, p.now + HD_SEC(600));
  hd_link_meter_stats(&p.m[0], p.now, &s);
  print_message("2%% loss each way, +-10 ms, 10 min of 50 ms probes: %d down(s), %d suspect\n", s.downs,
                s.suspects);
  assert_true(s.up);
  assert_int_equal(s.downs, 0);
  pair_free(&p);
}

/* Runs the pair until `end` as run_until does, but the ends in `stalled`
 * (bit 0 = A, bit 1 = B; 3 with the links too: the whole machine) do not
 * run from `from` to `to`: their meter is not polled and nothing is read
 * for them (it waits in the link, as in a socket). At the end of the stall
 * the meter is polled before the waiting packets are read: a libuv loop
 * runs its due timers before it polls for I/O. */
static void run_stalled(pair_t *p, hd_time_t end, hd_time_t from, hd_time_t to, int stalled) {
  uint8_t buf[64], reply[64];
  for (; p->now < end; p->now += HD_MS(1)) {
    int in_stall = p->now >= from && p->now < to;
    for (int i = 0; i < 2; i++) {
      if (in_stall && (stalled >> i) & 1) continue;
      int n = hd_link_meter_poll(&p->m[i], p->now, buf, sizeof buf);
      assert_true(n >= 0);
      if (n > 0) hd_netem_link_send(p->dir[i], buf, (size_t)n, p->now);
    }
    for (int d = 0; d < 2; d++) {
      int to_end = d == 0 ? 1 : 0; /* A -> B lands at B */
      if (in_stall && ((stalled >> to_end) & 1)) continue;
      const uint8_t *pkt;
      int n;
      while ((n = hd_netem_link_poll(p->dir[d], p->now, &pkt)) > 0) {
        int r = hd_link_meter_feed(&p->m[to_end], pkt, (size_t)n, p->now, reply, sizeof reply);
        assert_true(r >= 0);
        if (r > 0) hd_netem_link_send(p->dir[to_end], reply, (size_t)r, p->now);
      }
    }
  }
}

/* Issue 16 (flaps on the test bed: 119 route changes in 10 minutes of
 * stable links). Scheduling stalls on a busy machine, not the links: with
 * SIGSTOP for 200 ms, a stalled node called its links down when it ran
 * again (its probe timer fires before it reads the echoes waiting in its
 * socket), and its peers called their links to it down (200 ms of real
 * silence). 20 stalls of 150-245 ms of A alone, then 20 of the whole
 * machine (A, B and the link), on a 20 ms link with +-5 ms jitter:
 *  - A never even suspects its link: the time it was late itself (its probe
 *    went out after its due time) is not counted as silence;
 *  - B suspects its link while A is stalled (media would take a second
 *    path) but it is never down: down needs HD_LINK_METER_DOWN_CONFIRM more
 *    silence, and A answers long before (no route change, no flap);
 *  - a real blackout afterwards is still suspect within 250 ms and down
 *    HD_LINK_METER_DOWN_CONFIRM later. */
static void test_stalls_are_not_downs(void **st) {
  (void)st;
  hd_netem_params_t ab, ba;
  params(&ab, 20, 0.005, 5);
  params(&ba, 20, 0.005, 5);
  pair_t p;
  memset(&p, 0, sizeof p);
  p.now = HD_SEC(1000);
  hd_link_meter_init(&p.m[0], 0, p.now);
  hd_link_meter_init(&p.m[1], 0, p.now + HD_MS(17));
  assert_int_equal(hd_netem_link_new(&p.dir[0], &ab, 55, p.now), 0);
  assert_int_equal(hd_netem_link_new(&p.dir[1], &ba, 66, p.now), 0);
  run_until(&p, p.now + HD_SEC(2));
  hd_link_meter_stats_t s[2];
  int b_suspects_a_stalled = 0;
  for (int k = 0; k < 40; k++) {
    hd_time_t from = p.now + HD_MS(500) + HD_MS(7 * k); /* at every phase of the probe cycle */
    hd_time_t len = HD_MS(150) + HD_MS(5 * (k % 20));   /* 150-245 ms */
    run_stalled(&p, from + len + HD_MS(1000), from, from + len, k < 20 ? 1 : 3);
    hd_link_meter_stats(&p.m[0], p.now, &s[0]);
    hd_link_meter_stats(&p.m[1], p.now, &s[1]);
    assert_true(s[0].up && s[1].up);
    assert_int_equal(s[0].suspects, 0);
    assert_int_equal(s[0].downs + s[1].downs, 0);
    if (k == 19) b_suspects_a_stalled = s[1].suspects;
    if (k >= 20) assert_int_equal(s[1].suspects, b_suspects_a_stalled); /* all stalled: all excused */
  }
  print_message("40 stalls of 150-245 ms (A alone, then A, B and the link): downs A %d, B %d; B suspected "
                "%d times while A alone stalled; A late at most %.0f ms\n",
                s[0].downs, s[1].downs, b_suspects_a_stalled, s[0].late_max / 1000.0);
  assert_true(b_suspects_a_stalled > 0);
  assert_true(s[0].late_max >= HD_MS(150));
  /* a real blackout of A -> B is still seen fast */
  hd_time_t t0 = p.now;
  hd_netem_params_t dead = ab;
  dead.blackouts[0] =
      (hd_netem_blackout_t){.start = t0 - HD_SEC(1000), .duration = HD_SEC(5)}; /* from the link's start */
  dead.n_blackouts = 1;
  assert_int_equal(hd_netem_link_set(p.dir[0], &dead, t0), 0);
  hd_time_t down_at = 0, suspect_at = 0;
  while (!down_at && p.now < t0 + HD_SEC(2)) {
    run_until(&p, p.now + HD_MS(1));
    hd_link_meter_stats(&p.m[0], p.now, &s[0]);
    if (s[0].suspect && !suspect_at) suspect_at = p.now;
    if (!s[0].up) down_at = p.now;
  }
  print_message("then a blackout: suspect %.0f ms, down %.0f ms after it began\n", (suspect_at - t0) / 1000.0,
                (down_at - t0) / 1000.0);
  assert_true(suspect_at && suspect_at - t0 <= HD_MS(250));
  assert_true(down_at && down_at - t0 <= HD_MS(250) + HD_LINK_METER_DOWN_CONFIRM);
  pair_free(&p);
}

/* A's meter (default 50 ms probes) on a 20 ms-each-way link to B, A's owner
 * handling every event (a due probe, an echo in its socket) `late_ms` after
 * it happens, B answering at once. At t0 the link dies (nothing sent from
 * then on arrives). Returns the real silence (from when the last echo landed
 * in A's socket) at which A's stats first said suspect and down. */
static void run_dead_link_late(int late_ms, hd_time_t *suspect_at, hd_time_t *down_at) {
  hd_time_t now = HD_SEC(1000), L = HD_MS(late_ms), owd = HD_MS(20);
  hd_link_meter_t a, b;
  hd_link_meter_init(&a, 0, now);
  hd_link_meter_init(&b, 0, now);
  struct {
    hd_time_t at;
    uint8_t buf[HD_LINK_METER_ECHO_LEN];
    int n;
  } q[2][32]; /* q[0]: probes on their way to B, q[1]: echoes on their way to A (FIFO, fixed delay) */
  int head[2] = {0, 0}, tail[2] = {0, 0};
  hd_time_t t0 = now + HD_SEC(2), last_landed = 0;
  *suspect_at = *down_at = 0;
  for (; now < t0 + HD_SEC(10) && !*down_at; now += HD_MS(1)) {
    while (head[0] != tail[0] && q[0][head[0] % 32].at <= now) { /* B answers at once */
      uint8_t reply[64];
      int r = hd_link_meter_feed(&b, q[0][head[0] % 32].buf, (size_t)q[0][head[0] % 32].n, now, reply,
                                 sizeof reply);
      head[0]++;
      assert_int_equal(r, HD_LINK_METER_ECHO_LEN);
      if (now >= t0) continue; /* the echo is lost */
      assert_true(tail[1] - head[1] < 32);
      q[1][tail[1] % 32].at = last_landed = now + owd;
      memcpy(q[1][tail[1] % 32].buf, reply, (size_t)r);
      q[1][tail[1] % 32].n = r;
      tail[1]++;
    }
    /* A runs only L after something happened for it */
    int wake =
        hd_link_meter_next_timeout(&a) + L <= now || (head[1] != tail[1] && q[1][head[1] % 32].at + L <= now);
    if (!wake) continue;
    while (head[1] != tail[1] && q[1][head[1] % 32].at <= now) { /* the socket holds all that arrived */
      assert_int_equal(
          hd_link_meter_feed(&a, q[1][head[1] % 32].buf, (size_t)q[1][head[1] % 32].n, now, NULL, 0), 0);
      head[1]++;
    }
    uint8_t out[64];
    int n = hd_link_meter_poll(&a, now, out, sizeof out);
    assert_true(n >= 0);
    if (n > 0 && now < t0) {
      assert_true(tail[0] - head[0] < 32);
      q[0][tail[0] % 32].at = now + owd;
      memcpy(q[0][tail[0] % 32].buf, out, (size_t)n);
      q[0][tail[0] % 32].n = n;
      tail[0]++;
    }
    hd_link_meter_stats_t s;
    hd_link_meter_stats(&a, now, &s);
    if (now < t0) {
      if (now >= t0 - HD_SEC(1)) assert_true(s.up && !s.suspect); /* up after the first echo */
      continue;
    }
    if (s.suspect && !*suspect_at) *suspect_at = now;
    if (!s.up) *down_at = now;
  }
  if (*suspect_at) *suspect_at -= last_landed;
  if (*down_at) *down_at -= last_landed;
}

/* Review finding: every late probe added its lateness to the excused time
 * and all of it was taken off the silence until the next echo, though a
 * steady lateness L only holds echoes unread for about L, once. On a dead
 * link the silence then grew by only interval - L per probe: with L = 20,
 * 35, 45 ms A suspected after 320, 635, 1800 ms and went down after 1.2,
 * 2.3, 6.8 s (150 and 650 ms at L = 0). Now at most the longest single
 * lateness is excused: suspect within about 2 L of the L = 0 time (L
 * excused, L for reading the last echo late), down HD_LINK_METER_DOWN_CONFIRM
 * after the suspect. */
static void test_steady_lateness_still_sees_dead_link(void **st) {
  (void)st;
  hd_time_t s0, d0;
  run_dead_link_late(0, &s0, &d0);
  assert_true(s0 && d0);
  print_message("late 0 ms: suspect %.0f ms, down %.0f ms after the last echo\n", s0 / 1000.0, d0 / 1000.0);
  const hd_time_t step = HD_LINK_METER_DEFAULT_INTERVAL / 2; /* A only looks at its probe times */
  int lates[] = {20, 35, 45};
  for (size_t i = 0; i < sizeof lates / sizeof lates[0]; i++) {
    hd_time_t s, d;
    run_dead_link_late(lates[i], &s, &d);
    print_message("late %d ms: suspect %.0f ms, down %.0f ms after the last echo\n", lates[i], s / 1000.0,
                  d / 1000.0);
    /* L reading the last echo late (A stamps it when it reads it), L excused */
    assert_true(s && s <= s0 + 2 * HD_MS(lates[i]) + step);
    assert_true(d && d - s <= HD_LINK_METER_DOWN_CONFIRM + step);
  }
}

/* Malformed input is refused; a forged or late echo changes no RTT. */
static void test_bad_input(void **st) {
  (void)st;
  hd_link_meter_t m;
  hd_link_meter_init(&m, 0, HD_SEC(1));
  uint8_t out[64], reply[64];
  assert_int_equal(hd_link_meter_poll(&m, HD_SEC(1), out, 4), HD_ENOSPC);
  assert_int_equal(hd_link_meter_poll(&m, HD_SEC(1), out, sizeof out), HD_LINK_METER_PROBE_LEN);
  assert_int_equal(hd_link_meter_feed(&m, out, 0, HD_SEC(1), reply, sizeof reply), HD_EINVAL);
  assert_int_equal(hd_link_meter_feed(&m, out, HD_LINK_METER_PROBE_LEN - 1, HD_SEC(1), reply, sizeof reply),
                   HD_EINVAL);
  uint8_t junk[HD_LINK_METER_PROBE_LEN + 1] = {HD_LINK_METER_PROBE};
  assert_int_equal(hd_link_meter_feed(&m, junk, sizeof junk, HD_SEC(1), reply, sizeof reply), HD_EINVAL);
  junk[0] = 9;
  assert_int_equal(hd_link_meter_feed(&m, junk, HD_LINK_METER_PROBE_LEN, HD_SEC(1), reply, sizeof reply),
                   HD_EINVAL);
  /* our own probe echoed by a peer meter: RTT 30 ms */
  hd_link_meter_t peer;
  hd_link_meter_init(&peer, 0, HD_SEC(1));
  int n = hd_link_meter_feed(&peer, out, HD_LINK_METER_PROBE_LEN, HD_SEC(1) + HD_MS(15), reply, sizeof reply);
  assert_int_equal(n, HD_LINK_METER_ECHO_LEN);
  assert_int_equal(hd_link_meter_feed(&peer, out, HD_LINK_METER_PROBE_LEN, HD_SEC(1), reply, 8), HD_ENOSPC);
  uint8_t forged[HD_LINK_METER_ECHO_LEN];
  memcpy(forged, reply, sizeof forged);
  forged[8] ^= 1; /* t_send differs from what we sent */
  assert_int_equal(hd_link_meter_feed(&m, forged, sizeof forged, HD_SEC(1) + HD_MS(30), NULL, 0), 0);
  hd_link_meter_stats_t s;
  hd_link_meter_stats(&m, HD_SEC(1) + HD_MS(30), &s);
  assert_int_equal(s.probes_answered, 0);
  assert_int_equal(hd_link_meter_feed(&m, reply, n, HD_SEC(1) + HD_MS(30), NULL, 0), 0);
  hd_link_meter_stats(&m, HD_SEC(1) + HD_MS(30), &s);
  assert_int_equal(s.probes_answered, 1);
  assert_true(s.srtt_ms > 29.9 && s.srtt_ms < 30.1);
  /* the same echo again: already answered, no second sample */
  assert_int_equal(hd_link_meter_feed(&m, reply, n, HD_SEC(1) + HD_MS(90), NULL, 0), 0);
  hd_link_meter_stats(&m, HD_SEC(1) + HD_MS(90), &s);
  assert_int_equal(s.probes_answered, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_clean_link),
      cmocka_unit_test(test_lossy_direction),
      cmocka_unit_test(test_blackout_down_up),
      cmocka_unit_test(test_no_false_down),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_fast_down_default_probes),
      cmocka_unit_test(test_stalls_are_not_downs),
      cmocka_unit_test(test_steady_lateness_still_sees_dead_link),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
