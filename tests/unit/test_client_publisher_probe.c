/* The SDK publisher's bandwidth probes (client/pc_media.c pc_probe_run,
 * rtc/bwe.h hd_bwe_next_probe), in virtual time with the client world
 * (tests/support/client_world.h): an SDK publisher (the SDK's media policy,
 * one 640x360 stream capped at 1.5 Mbit/s) -> node -> SDK subscriber, the
 * publisher's uplink a `hudong netem` link.
 *
 * Without probes (the default, and the old SDK) the publisher's estimate
 * starts at 300 kbit/s and climbs with its own media alone (AIMD, ~8 %/s):
 * more than 12 s to the encoder's cap on a wide uplink. With probes
 * (hd_pc_config_t.probe: start-up clusters at 3x, then 6x the start rate,
 * the second only after the first's result, HD_BWE_PROBES_GATED), sent as
 * RTX copies of recent video packets on the RTX stream, it is there in
 * about half a second. On a 300 kbit/s uplink the 3x cluster still goes
 * and costs delay (seconds of it: the standing queue it leaves, then the
 * viewer's jitter buffer): why probing is off by default (docs/bwe.md "The
 * SDK publisher's probes"). At 20 % loss the higher rate used to cost stalls
 * (a repair storm in the pacer, fixed: test_lossy_uplink_no_stall).
 *
 * HD_PROBE_EVAL=<seeds> adds the many-seed paired evaluation (probes off =
 * the old SDK vs on) of docs/bwe.md; it prints a table and asserts nothing.
 * With HD_PROBE_TRACE=1 it also prints every run's state every 50 ms (one
 * seed, one world: HD_PROBE_EVAL=1 HD_PROBE_EVAL_WORLD=300). */
#include "hd_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "client/client_internal.h"
#include "client/pc_internal.h" /* the publisher's estimator (its probe counters) */
#include "netem/link.h"
#include "rtc/bwe.h"
#include "sfu/node.h"
#include "sfu/session.h"
#include "support/client_world.h"

#define CAP_BPS 1500000 /* the world's max_video_bps */

typedef struct {
  hd_time_t reach;           /* video target >= 95 % of its cap, from the start; -1 not within the run */
  uint64_t target_2s;        /* the video target 2 s in */
  hd_time_t d_p50, d_p95;    /* capture -> render delay of the frames rendered in seconds 1-3 */
  hd_time_t jb_p50;          /* the jitter buffer's part of d_p50's frames, median */
  hd_time_t all_p95;         /* ... from 1 s to the end */
  double stall_pct;          /* from 1 s to the end */
  hd_pc_stats_t ps;          /* the publisher's pc */
  hd_bwe_stats_t bs;         /* its estimator */
  uint64_t node_rtx_dups;    /* the node: RTX that repaired nothing (probe copies) */
  uint64_t node_rtx_repairs; /* ... that repaired a loss */
  uint64_t send_full;        /* video packets the publisher's pc refused (its queue full) */
  uint64_t rtx_sent;         /* the publisher's repairs (RTX answering NACKs; probes not counted) */
  uint64_t up_lost;          /* packets the uplink lost (its random loss, not its queue) */
  size_t pq_max;             /* the most datagrams in the publisher's pacer queue (sampled every 50 ms) */
} pr_t;

static size_t pub_q_cap; /* its cap (pc.c PC_TXQ_CAP) */

/* The publisher's probe settings of a run: the default, or the eval's
 * HD_PROBE_INTERVAL_MS / HD_PROBE_APP_LIMIT (< 0 ms: periodic probes off). */
static int64_t g_interval;
static double g_app_limit;
static int g_trace; /* HD_PROBE_TRACE */

static void run(const char *const *up, size_t nup, uint64_t seed, int no_probe, int secs, pr_t *o) {
  cw_cfg_t rc = {.up = up,
                 .nup = nup,
                 .n_layers = 1,
                 .adapt = 1,
                 .sdk = 1,
                 .seed = seed,
                 .pub_probe = !no_probe,
                 .pub_probe_interval = no_probe ? 0 : g_interval,
                 .pub_app_limit = no_probe ? 0 : g_app_limit};
  cw_t *w = cw_new(&rc);
  cw_ep_t *pub = &w->ep[0], *sub = &w->ep[1];
  hd_time_t t0 = w->now;
  sub->watch_from = t0 + HD_SEC(1);
  memset(o, 0, sizeof *o);
  o->reach = -1;
  for (int i = 1; i <= secs * 20; i++) {
    cw_run_until(w, t0 + HD_MS(50) * i);
    uint64_t vt = pub->sdk->local[1].target_bps;
    if (o->reach < 0 && vt * 100 >= (uint64_t)CAP_BPS * 95) o->reach = w->now - t0;
    if (i == 40) o->target_2s = vt;
    if (pub->pc->pq_count > o->pq_max) o->pq_max = pub->pc->pq_count;
    pub_q_cap = pub->pc->q_cap;
    if (g_trace) {
      /* HD_PROBE_TRACE=1: every 50 ms, the publisher's uplink (packets held,
       * dropped at its queue, bytes out), its pc (pacing rate, pacer queue,
       * video refused, probe clusters), its estimate and video target, and
       * the viewer's latest frame (jitter-buffer part, capture -> render) */
      hd_netem_link_t *ul = w->nl[0][2];
      hd_netem_stats_t ls;
      hd_netem_link_stats(ul, &ls);
      size_t n = sub->n_delays;
      printf("TR seed %llu t %5lld ms | link held %zu qdrop %llu out %llu B | pace %llu kbit/s pq %zu/%zu B "
             "refused %llu probes %llu | est %llu target %llu kbit/s | jb %lld d %lld ms\n",
             (unsigned long long)seed, (long long)((w->now - t0) / 1000), hd_netem_link_held(ul),
             (unsigned long long)ls.drop_queue, (unsigned long long)ls.bytes_out,
             (unsigned long long)(pc_pace_rate(pub->pc) / 1000), pub->pc->pq_count, pub->pc->pq_bytes,
             (unsigned long long)pub->send_full, (unsigned long long)pub->pc->st.probe_clusters,
             pub->pc->bwe ? (unsigned long long)(hd_bwe_target(pub->pc->bwe) / 1000) : 0ull,
             (unsigned long long)(vt / 1000), n ? (long long)(sub->jb_delays[n - 1] / 1000) : -1LL,
             n ? (long long)(sub->delays[n - 1] / 1000) : -1LL);
    }
    if (i == 60) {
      size_t n = sub->n_delays;
      o->d_p50 = cw_pctl(sub->delays, n, 50);
      o->d_p95 = cw_pctl(sub->delays, n, 95);
      o->jb_p50 = cw_pctl(sub->jb_delays, n, 50);
    }
  }
  o->stall_pct = cw_stall_pct(w);
  o->send_full = pub->send_full;
  o->all_p95 = cw_pctl(sub->delays, sub->n_delays, 95);
  hd_pc_stats(pub->pc, &o->ps);
  for (int i = 0; i < o->ps.n_tracks; i++)
    o->rtx_sent += o->ps.tracks[i].rtx_sent;
  hd_netem_stats_t ls;
  hd_netem_link_stats(w->nl[0][2], &ls);
  o->up_lost = ls.drop_loss;
  hd_session_t *ps = w->part[0] ? w->part[0]->pub_sess : NULL;
  for (int i = 0; ps && i < ps->n_in; i++) {
    o->node_rtx_dups += ps->in[i].rtx_duplicates;
    o->node_rtx_repairs += ps->in[i].rtx_packets;
  }
  if (pub->pc->bwe) hd_bwe_stats(pub->pc->bwe, &o->bs);
  cw_free(w);
}

static void print_run(const char *label, const pr_t *o) {
  printf("  %-26s reach %6.2f s, video target at 2 s %4llu kbit/s, delay s1-3 p50 %3lld p95 %3lld ms (jitter "
         "buffer p50 %3lld), stall "
         "%.2f %%, probe clusters %llu (%llu B), node RTX duplicates %llu, repairs %llu\n",
         label, o->reach >= 0 ? (double)o->reach / 1e6 : -1.0, (unsigned long long)(o->target_2s / 1000),
         (long long)(o->d_p50 / 1000), (long long)(o->d_p95 / 1000), (long long)(o->jb_p50 / 1000),
         o->stall_pct, (unsigned long long)o->ps.probe_clusters, (unsigned long long)o->ps.probe_bytes,
         (unsigned long long)o->node_rtx_dups, (unsigned long long)o->node_rtx_repairs);
}

/* A 5 Mbit/s uplink (and a 2.5 Mbit/s one), 50 ms queue: the start-up
 * clusters go, their result is taken, and the encoder is at its cap by 3 s
 * (0.65 s here; the old SDK, probes off: 237 kbit/s at 2 s, not at the cap
 * within the 6 s run). */
static void test_wide_uplink_reaches_cap(void **st) {
  (void)st;
  static const char *const rates[] = {"5000", "2500"};
  for (size_t k = 0; k < 2; k++) {
    const char *up[] = {"--delay", "25", "--rate", rates[k], "--queue", "50"};
    pr_t on, off;
    run(up, 6, 1, 0, 6, &on);
    run(up, 6, 1, 1, 6, &off);
    printf("%s kbit/s uplink:\n", rates[k]);
    print_run("probes", &on);
    print_run("no probes (default, old SDK)", &off);
    assert_true(on.ps.probe_clusters >= 2); /* 3x, then 6x */
    assert_true(on.ps.probe_bytes > 0);
    assert_true(on.bs.probes_succeeded >= 1); /* a result taken */
    assert_true(on.reach > 0 && on.reach <= HD_SEC(3));
    assert_true(on.target_2s > 2 * off.target_2s);
    assert_int_equal(off.ps.probe_clusters, 0);
    /* the copies repaired nothing at the node and went nowhere else */
    assert_true(on.node_rtx_dups > 0);
  }
}

/* A 300 kbit/s uplink with a 200 ms queue (bench/weak_network --rates 300):
 * the first feedback shows no queue (the media, sized to the 300 kbit/s
 * start rate, just fits), so the 3x cluster goes; it saturates and its
 * result (< a quarter of 6x) keeps the 6x one back. That one cluster
 * still overflows the queue: a few packets lost and repaired, the viewer's
 * jitter buffer grows to ~400 ms and stays there for seconds (printed; 611
 * against 101 ms in seconds 1-3 here). This is why probing is off by
 * default (hd_pc_config_t.probe). */
static void test_narrow_uplink_gated(void **st) {
  (void)st;
  const char *up[] = {"--delay", "25", "--rate", "300", "--queue", "200"};
  pr_t on, off;
  run(up, 6, 1, 0, 6, &on);
  run(up, 6, 1, 1, 6, &off);
  printf("300 kbit/s uplink:\n");
  print_run("probes", &on);
  print_run("no probes (default, old SDK)", &off);
  assert_int_equal(on.ps.probe_clusters, 1); /* the 3x one; never the 6x one */
  assert_int_equal(on.bs.probes_started, 1);
  assert_true(on.stall_pct <= off.stall_pct + 1.0);
}

/* 20 % random loss on the uplink: the probes' copies of lost packets are
 * repairs too; the video goes at its cap within 1-2 s instead of ~180 kbit/s.
 * At that rate repairs wait in the pc's pacer, and the node's NACK retries
 * (every 1.25 x its rtt, which does not count that queue) came while the
 * copies still waited: each queued more copies (two per NACK on a lossy
 * leg), the queue grew to the pacer's bound (250 ms then), the repairs to
 * ~4 per packet lost, the queue (256 datagrams) filled, video was refused
 * and the viewer stalled (12.5 % over 64 seeds, docs/bwe.md). With the bound
 * at 100 ms (pc_media.c PACE_MAX_QUEUE_US) fewer retries find their copy
 * still queued and the queue cannot grow to the cap: ~1.3 repairs per
 * packet lost in most seeds, ~3.4 in seed 4, none refused. The seeds
 * and one-way delays are the evaluation's (seed 4 refused 423 video packets
 * before, with 3599 repairs for 861 losses). */
static void test_lossy_uplink_no_stall(void **st) {
  (void)st;
  double stall_on = 0, stall_off = 0;
  for (uint64_t seed = 1; seed <= 8; seed++) {
    char dl[8];
    snprintf(dl, sizeof dl, "%d", 20 + (int)(seed * 7) % 21);
    const char *up[] = {"--delay", dl, "--loss", "20"};
    pr_t on, off;
    run(up, 4, seed, 0, 8, &on);
    run(up, 4, seed, 1, 8, &off);
    printf("20 %% loss uplink, seed %llu:\n", (unsigned long long)seed);
    print_run("probes", &on);
    print_run("no probes (default, old SDK)", &off);
    printf("  repairs sent %llu for %llu packets lost on the uplink (probes), %llu for %llu (none); video "
           "refused %llu, pacer queue at most %zu of %zu datagrams\n",
           (unsigned long long)on.rtx_sent, (unsigned long long)on.up_lost, (unsigned long long)off.rtx_sent,
           (unsigned long long)off.up_lost, (unsigned long long)on.send_full, on.pq_max, pub_q_cap);
    assert_true(on.ps.probe_clusters >= 1);
    /* the queue stays well under its cap: no video refused */
    assert_true(on.pq_max * 4 <= pub_q_cap * 3);
    assert_int_equal(on.send_full, 0);
    stall_on += on.stall_pct / 8, stall_off += off.stall_pct / 8;
  }
  printf("stall over the seeds: %.2f %% with probes, %.2f %% without\n", stall_on, stall_off);
  assert_true(stall_on <= stall_off + 1.0);
}

/* ---- many-seed evaluation (HD_PROBE_EVAL=<seeds>) ---- */

typedef struct {
  double sum, sq;
  int n;
} acc_t;

static void acc(acc_t *a, double v) {
  a->sum += v;
  a->sq += v * v;
  a->n++;
}
static double mean(const acc_t *a) { return a->n ? a->sum / a->n : 0; }
static double se(const acc_t *a) {
  if (a->n < 2) return 0;
  double m = mean(a), var = (a->sq - a->n * m * m) / (a->n - 1);
  return var > 0 ? sqrt(var / a->n) : 0;
}

static void test_eval(void **st) {
  (void)st;
  const char *env = getenv("HD_PROBE_EVAL");
  int seeds = env ? atoi(env) : 0;
  if (seeds <= 0) {
    printf("HD_PROBE_EVAL not set: the many-seed evaluation is skipped\n");
    return;
  }
  const char *only = getenv("HD_PROBE_EVAL_WORLD");
  g_trace = getenv("HD_PROBE_TRACE") != NULL;
  const char *iv = getenv("HD_PROBE_INTERVAL_MS"), *al = getenv("HD_PROBE_APP_LIMIT");
  g_interval = iv ? (int64_t)atoi(iv) * 1000 : 0;
  g_app_limit = al ? atof(al) : 0;
  printf("new: probe_interval %s ms, app_limit_factor %s\n", iv ? iv : "default", al ? al : "default");
  enum { SECS = 12 };
  static const struct {
    const char *name;
    const char *a[12];
    size_t n;
  } worlds[] = {
      {"5 Mbit/s", {"--delay", "25", "--rate", "5000", "--queue", "50"}, 6},
      {"1 Mbit/s", {"--delay", "25", "--rate", "1000", "--queue", "200"}, 6},
      {"300 kbit/s", {"--delay", "25", "--rate", "300", "--queue", "200"}, 6},
      {"20 % loss", {"--delay", "25", "--loss", "20"}, 4},
      {"10 ms jitter",
       {"--delay", "25", "--rate", "5000", "--queue", "50", "--jitter", "10", "--jitter-dist", "normal",
        "--keep-order"},
       11},
  };
  printf("%d seeds per world, %d s each, paired (same seed) old = probes off, new = on; mean +- s.e.\n",
         seeds, SECS);
  printf("%-13s %-4s %-17s %-11s %-17s %-15s %-13s %-15s %s\n", "uplink", "", "reach cap (s)", "reached",
         "target@2s kbit/s", "delay s1-3 p50", "p95 (ms)", "stall %",
         "delay p95 1 s-end (ms)  queue-full drops");
  for (size_t k = 0; k < sizeof worlds / sizeof worlds[0]; k++) {
    if (only && !strstr(worlds[k].name, only)) continue;
    acc_t reach[2] = {{0}}, t2[2] = {{0}}, p50[2] = {{0}}, p95[2] = {{0}}, stall[2] = {{0}},
          allp95[2] = {{0}}, full[2] = {{0}}, dreach = {0};
    int reached[2] = {0, 0};
    for (int s = 1; s <= seeds; s++) {
      pr_t r[2];
      for (int m = 0; m < 2; m++) {
        /* the one-way delay 20..40 ms by seed: the clean legs have no
         * randomness of their own, the seeds would all run alike */
        const char *a[12];
        char dl[8];
        memcpy(a, worlds[k].a, sizeof a);
        snprintf(dl, sizeof dl, "%d", 20 + (s * 7) % 21);
        a[1] = dl;
        run(a, worlds[k].n, (uint64_t)s, m == 0, SECS, &r[m]);
        /* not reached within the run: counted as the run's length (censored) */
        double rs = r[m].reach >= 0 ? (double)r[m].reach / 1e6 : SECS;
        reached[m] += r[m].reach >= 0;
        acc(&reach[m], rs);
        acc(&t2[m], (double)r[m].target_2s / 1000);
        acc(&p50[m], (double)r[m].d_p50 / 1000);
        acc(&p95[m], (double)r[m].d_p95 / 1000);
        acc(&stall[m], r[m].stall_pct);
        acc(&allp95[m], (double)r[m].all_p95 / 1000);
        acc(&full[m], (double)r[m].send_full);
      }
      acc(&dreach, (r[1].reach >= 0 ? (double)r[1].reach / 1e6 : SECS) -
                       (r[0].reach >= 0 ? (double)r[0].reach / 1e6 : SECS));
    }
    for (int m = 0; m < 2; m++)
      printf("%-13s %-4s %5.2f +- %4.2f   %3d/%-3d    %6.0f +- %4.0f   %5.1f +- %4.1f   %5.1f +- %4.1f   "
             "%5.2f +- "
             "%4.2f   %5.1f +- %4.1f   %6.1f\n",
             m ? "" : worlds[k].name, m ? "new" : "old", mean(&reach[m]), se(&reach[m]), reached[m], seeds,
             mean(&t2[m]), se(&t2[m]), mean(&p50[m]), se(&p50[m]), mean(&p95[m]), se(&p95[m]),
             mean(&stall[m]), se(&stall[m]), mean(&allp95[m]), se(&allp95[m]), mean(&full[m]));
    printf("%-13s %-4s paired reach difference new - old %.2f +- %.2f s\n", "", "", mean(&dreach),
           se(&dreach));
    fflush(stdout);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_wide_uplink_reaches_cap),
      cmocka_unit_test(test_narrow_uplink_gated),
      cmocka_unit_test(test_lossy_uplink_no_stall),
      cmocka_unit_test(test_eval),
  };
  return cmocka_run_group_tests(tests, cw_setup_all, cw_teardown_all);
}
