/* Virtual-time harness for the send-side bandwidth estimator (rtc/bwe.h) on
 * the `hudong netem` link model: per flow a media source (30 fps frames at
 * min(target, source max)), a pacer (drains at hd_bwe_pacing_rate, sends
 * probe clusters as padding at the cluster's rate), a netem link each way,
 * and a receiver that sends transport-wide feedback every fb_interval built
 * with hd_rtcp_build_twcc and read back with hd_rtcp_twcc_parse (the real
 * wire format). Deterministic: no randomness besides the links' seeds.
 * Shared by tests/unit/test_bwe.c and bench/bwe_bench.c. */
#ifndef HD_TEST_BWE_SIM_H
#define HD_TEST_BWE_SIM_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "netem/link.h"
#include "rtc/bwe.h"

#define HD_BWE_SIM_MAX_FLOWS 2
#define HD_BWE_SIM_MAX_STEPS 8

typedef struct {
  const char *name;
  hd_time_t duration;
  hd_netem_params_t link[2]; /* link[0] forward, link[1] backward */
  int n_flows;
  int media_link[HD_BWE_SIM_MAX_FLOWS]; /* 0 or 1; feedback goes the other way */
  hd_time_t start[HD_BWE_SIM_MAX_FLOWS];
  hd_time_t frame_phase[HD_BWE_SIM_MAX_FLOWS];
  uint64_t src_max_bps;  /* media source ceiling per flow (2.5 Mbit/s) */
  hd_time_t fb_interval; /* TWCC feedback period (50 ms) */
  uint64_t seed;
  int desired_max;      /* 1: leave the estimator's desired rate at max_bps
                           (default: the source max, via hd_bwe_set_desired) */
  uint64_t desired_bps; /* > 0: hd_bwe_set_desired(desired_bps) and hd_bwe_set_held_back(1) instead */
  /* > 0: an SFU subscriber in miniature: the source is src_max_bps of audio
   * plus one video layer of layer_bps, sent only while it fits the target the
   * way the node's allocator decides (on when target x 0.9 x 0.85 carries
   * both, off when target x 0.9 no longer does); while off the sender is held
   * back (hd_bwe_set_held_back) and wants what would turn it on */
  uint64_t layer_bps;
  hd_bwe_config_t cfg;
} hd_bwe_scn_t;

typedef struct {
  hd_time_t at;       /* step time */
  uint64_t from, to;  /* capacity, bit/s */
  hd_time_t reaction; /* down: time until the flows' send rate is <= the new capacity;
                         up: until it is >= 90% of min(capacity, sources); -1 = never */
} hd_bwe_sim_step_t;

typedef struct {
  /* per link */
  int used[2];          /* carries media */
  double util[2];       /* bytes delivered (media + probe padding) / capacity integral */
  double media_util[2]; /* media bytes delivered / integral of min(capacity, sources) */
  hd_time_t qdelay_p95[2], qdelay_max[2];
  uint64_t drops[2];
  hd_bwe_sim_step_t steps[2][HD_BWE_SIM_MAX_STEPS];
  size_t n_steps[2];
  /* per flow */
  double flow_bps[HD_BWE_SIM_MAX_FLOWS];   /* mean delivered rate (media + padding) */
  double flow_share[HD_BWE_SIM_MAX_FLOWS]; /* flow_bps / fair share of its link */
  hd_bwe_stats_t bwe[HD_BWE_SIM_MAX_FLOWS];
  uint64_t max_target[HD_BWE_SIM_MAX_FLOWS];
  /* layer_bps scenarios: when the layer last came on (-1: off at the end) and
   * how many times it went off */
  hd_time_t layer_on_since[HD_BWE_SIM_MAX_FLOWS];
  int layer_offs[HD_BWE_SIM_MAX_FLOWS];
} hd_bwe_sim_result_t;

/* Runs the scenario. trace (may be NULL) gets one line per second per flow.
 * 0, HD_EINVAL or HD_ENOMEM. */
int hd_bwe_sim_run(const hd_bwe_scn_t *s, hd_bwe_sim_result_t *r, FILE *trace);
/* Fills the RFC 8867 test cases (5.1, 5.2, 5.3) with the defaults of the
 * harness (2.5 Mbit/s sources, 50 ms feedback). 0 or HD_ENOTFOUND. */
int hd_bwe_sim_rfc8867(const char *which, hd_bwe_scn_t *s);
/* Prints the result as text. */
void hd_bwe_sim_print(const hd_bwe_scn_t *s, const hd_bwe_sim_result_t *r, FILE *out);

#endif
