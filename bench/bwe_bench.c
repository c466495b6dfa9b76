/* bwe_bench: the send-side bandwidth estimator (rtc/bwe.h) on the RFC 8867
 * test cases in virtual time (tests/support/bwe_sim.h: 30 fps source up to
 * 2.5 Mbit/s, pacer, `hudong netem` links, TWCC feedback in the real wire
 * format). Prints one table and writes JSON. Variations of the path
 * (feedback interval, jitter, random loss) show how far the numbers of the
 * unit test carry. Deterministic: the same arguments give the same numbers.
 *
 *   ./build/bwe_bench [--cases 5.1,5.2,5.3] [--fb-ms 50] [--jitter-ms 0]
 *                     [--loss 0] [--seed 8867] [--trace] [--json FILE] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/bwe_sim.h"

static void usage(void) {
  fprintf(
      stderr,
      "usage: bwe_bench [--cases 5.1,5.2,5.3] [--fb-ms N] [--jitter-ms N] [--loss P] [--seed N] [--trace] "
      "[--json FILE]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *cases = "5.1,5.2,5.3", *json = "bench/results/bwe.json";
  int fb_ms = 50, trace = 0;
  double jitter_ms = 0, loss = 0;
  unsigned long long seed = 8867;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--cases") && i + 1 < argc)
      cases = argv[++i];
    else if (!strcmp(argv[i], "--fb-ms") && i + 1 < argc)
      fb_ms = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--jitter-ms") && i + 1 < argc)
      jitter_ms = atof(argv[++i]);
    else if (!strcmp(argv[i], "--loss") && i + 1 < argc)
      loss = atof(argv[++i]);
    else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
      seed = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--json") && i + 1 < argc)
      json = argv[++i];
    else if (!strcmp(argv[i], "--trace"))
      trace = 1;
    else
      usage();
  }
  if (fb_ms < 10 || fb_ms > 1000 || jitter_ms < 0 || jitter_ms > 100 || loss < 0 || loss > 0.5) {
    fprintf(stderr, "bwe_bench: --fb-ms 10..1000, --jitter-ms 0..100, --loss 0..0.5\n");
    return 2;
  }
  FILE *js = fopen(json, "w");
  if (!js) {
    fprintf(stderr, "bwe_bench: cannot write %s (give another path with --json)\n", json);
    return 1;
  }
  fprintf(js, "{\"bench\":\"bwe\",\"fb_ms\":%d,\"jitter_ms\":%.1f,\"loss\":%.3f,\"seed\":%llu,\"cases\":[",
          fb_ms, jitter_ms, loss, seed);
  printf("RFC 8867 cases, feedback every %d ms, jitter %.1f ms, random loss %.1f%%, seed %llu\n\n", fb_ms,
         jitter_ms, 100 * loss, seed);
  printf(
      "| case | link | utilisation | media util. | p95 queue ms | max queue ms | steps (reaction s) | flows "
      "(share of fair) |\n|---|---|---|---|---|---|---|---|\n");
  char list[64];
  snprintf(list, sizeof list, "%s", cases);
  int first = 1, rc = 0;
  for (char *c = strtok(list, ","); c; c = strtok(NULL, ",")) {
    static hd_bwe_scn_t s;
    static hd_bwe_sim_result_t r;
    if (hd_bwe_sim_rfc8867(c, &s) != 0) {
      fprintf(stderr, "bwe_bench: unknown case %s (known: 5.1, 5.2, 5.3)\n", c);
      rc = 2;
      break;
    }
    s.fb_interval = HD_MS(fb_ms);
    s.seed = seed;
    for (int i = 0; i < 2; i++) {
      s.link[i].jitter = (hd_time_t)(jitter_ms * 1000);
      s.link[i].jitter_dist = jitter_ms > 0 ? HD_JITTER_NORMAL : HD_JITTER_NONE;
      s.link[i].keep_order = 1;
      s.link[i].loss = loss;
    }
    if (hd_bwe_sim_run(&s, &r, trace ? stdout : NULL) != 0) {
      fprintf(stderr, "bwe_bench: case %s failed to run\n", c);
      rc = 1;
      break;
    }
    fprintf(js, "%s{\"case\":\"%s\",\"links\":[", first ? "" : ",", s.name);
    first = 0;
    int lf = 1;
    for (int i = 0; i < 2; i++) {
      if (!r.used[i]) continue;
      char steps[256] = "", flows[128] = "";
      size_t o = 0;
      for (size_t k = 0; k < r.n_steps[i]; k++)
        o += (size_t)snprintf(steps + o, sizeof steps - o, "%s%.1f->%.1f: %.2f", k ? ", " : "",
                              (double)r.steps[i][k].from / 1e6, (double)r.steps[i][k].to / 1e6,
                              (double)r.steps[i][k].reaction / 1e6);
      o = 0;
      for (int f = 0; f < s.n_flows; f++)
        if (s.media_link[f] == i)
          o += (size_t)snprintf(flows + o, sizeof flows - o, "%s%d: %.2f", o ? ", " : "", f, r.flow_share[f]);
      printf("| %s | %d | %.1f%% | %.1f%% | %.1f | %.1f | %s | %s |\n", s.name, i, 100 * r.util[i],
             100 * r.media_util[i], (double)r.qdelay_p95[i] / 1000, (double)r.qdelay_max[i] / 1000, steps,
             flows);
      fprintf(js,
              "%s{\"link\":%d,\"utilisation\":%.4f,\"media_utilisation\":%.4f,\"qdelay_p95_ms\":%.2f,"
              "\"qdelay_max_ms\":%.2f,\"steps\":[",
              lf ? "" : ",", i, r.util[i], r.media_util[i], (double)r.qdelay_p95[i] / 1000,
              (double)r.qdelay_max[i] / 1000);
      lf = 0;
      for (size_t k = 0; k < r.n_steps[i]; k++)
        fprintf(js, "%s{\"at_s\":%.1f,\"from_bps\":%llu,\"to_bps\":%llu,\"reaction_s\":%.2f}", k ? "," : "",
                (double)r.steps[i][k].at / 1e6, (unsigned long long)r.steps[i][k].from,
                (unsigned long long)r.steps[i][k].to, (double)r.steps[i][k].reaction / 1e6);
      fprintf(js, "]}");
    }
    fprintf(js, "],\"flows\":[");
    for (int f = 0; f < s.n_flows; f++)
      fprintf(js, "%s{\"flow\":%d,\"delivered_bps\":%.0f,\"fair_share\":%.3f,\"max_target_bps\":%llu}",
              f ? "," : "", f, r.flow_bps[f], r.flow_share[f], (unsigned long long)r.max_target[f]);
    fprintf(js, "]}");
  }
  fprintf(js, "]}\n");
  fclose(js);
  printf("\n(reaction: down-steps = time until the send rate is <= the new capacity; up-steps = until >= "
         "90%% of "
         "min(capacity, sources); -1 = never)\nJSON: %s\n",
         json);
  return rc;
}
