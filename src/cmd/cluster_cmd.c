/* `hudong cluster links`: prints a node's measured node links and its route
 * per destination node (GET /admin/cluster/links; docs/overlay.md "Link
 * measurement", issue 16 item 3). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "io/http_sync.h"

static void usage(FILE *f) {
  fprintf(f, "usage: hudong cluster links --url http://HOST:PORT --token ADMIN_TOKEN [--json]\n"
             "  prints the node's links to the other nodes (RTT, loss, jitter, up, downs; measured\n"
             "  with probes every 100 ms) and its route per destination node.\n"
             "  ADMIN_TOKEN: an app-wide roomAdmin token (hudong token ... --admin, without --room).\n"
             "  --json: the node's answer as is.\n");
}

static double num(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

/* A counter of object x (0 when absent: an older node). */
static long long cnt(json_t *x, const char *k) {
  return (long long)json_integer_value(json_object_get(x, k));
}

/* A path's relays as text: "direct" for [], "-" for null (no such path). */
static void path_text(json_t *a, char *out, size_t cap) {
  out[0] = 0;
  if (!json_is_array(a)) {
    snprintf(out, cap, "-");
    return;
  }
  size_t k;
  json_t *v;
  json_array_foreach(a, k, v) {
    size_t u = strlen(out);
    snprintf(out + u, cap - u, "%s%s", u ? "," : "", json_string_value(v) ? json_string_value(v) : "?");
  }
  if (!out[0]) snprintf(out, cap, "direct");
}

int hd_cmd_cluster(int argc, char **argv) {
  const char *url = NULL, *token = NULL;
  int as_json = 0;
  if (argc < 2 || strcmp(argv[1], "links")) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
      usage(stdout);
      return 0;
    }
    fprintf(stderr, "hudong cluster: the only subcommand is 'links'\n");
    usage(stderr);
    return 2;
  }
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--json")) {
      as_json = 1;
    } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else if (!v) {
      fprintf(stderr, "hudong cluster links: %s needs a value\n", a);
      return 2;
    } else if (!strcmp(a, "--url")) {
      url = v;
      i++;
    } else if (!strcmp(a, "--token")) {
      token = v;
      i++;
    } else {
      fprintf(stderr, "hudong cluster links: unknown option %s\n", a);
      usage(stderr);
      return 2;
    }
  }
  if (!url || !token) {
    fprintf(stderr, "hudong cluster links: --url and --token are required\n");
    usage(stderr);
    return 2;
  }
  char err[512];
  size_t cap = 1 << 20;
  char *body = malloc(cap);
  if (!body) return 1;
  int st = hd_http_sync("GET", url, "/admin/cluster/links", token, body, cap, 3000, err, sizeof err);
  if (st < 0) {
    fprintf(stderr, "hudong cluster links: %s\n", err);
    free(body);
    return 1;
  }
  if (st != 200) {
    fprintf(stderr, "hudong cluster links: the node answered %d: %s", st, body);
    free(body);
    return 1;
  }
  if (as_json) {
    printf("%s\n", body);
    free(body);
    return 0;
  }
  json_error_t je;
  json_t *o = json_loads(body, 0, &je);
  free(body);
  if (!json_is_object(o)) {
    fprintf(stderr, "hudong cluster links: the answer is not JSON (%s)\n", je.text);
    json_decref(o);
    return 1;
  }
  printf("node %s\n", json_string_value(json_object_get(o, "self")));
  printf("%-24s %-4s %9s %9s %9s %8s %8s %9s %5s %10s\n", "peer", "up", "rtt_ms", "min_ms", "jit_ms",
         "loss_fw", "loss_rt", "probes", "downs", "bw_kbps");
  size_t i;
  json_t *l;
  json_array_foreach(json_object_get(o, "links"), i, l) {
    /* bandwidth (docs/overlay.md "Bandwidth per link"): "-" while the link carries nothing;
     * "!" after it: congested (its queue grows, or more leaves than arrives) */
    char bw[32] = "-";
    json_t *b = json_object_get(l, "bw_estimate_kbps");
    if (json_is_number(b))
      snprintf(bw, sizeof bw, "%.0f%s", json_number_value(b),
               json_is_true(json_object_get(json_object_get(l, "bw"), "congested")) ? "!" : "");
    printf("%-24s %-4s %9.2f %9.2f %9.2f %7.1f%% %7.1f%% %9lld %5lld %10s\n",
           json_string_value(json_object_get(l, "peer")),
           json_is_true(json_object_get(l, "up")) ? "up" : "DOWN", num(l, "rtt_ms"), num(l, "min_rtt_ms"),
           num(l, "jitter_ms"), num(l, "loss_fwd") * 100, num(l, "loss_rtt") * 100,
           (long long)json_integer_value(json_object_get(l, "probes_sent")),
           (long long)json_integer_value(json_object_get(l, "downs")), bw);
  }
  /* the relay counters of each link (this node's measuring worker's; docs/overlay.md "Relaying") */
  printf("\n%-24s %9s %9s %9s %9s %9s %9s %9s %9s\n", "relay with", "sent", "forwarded", "received",
         "hop_rep", "hop_lost", "hop_resnt", "dup_drop", "dup_video");
  json_array_foreach(json_object_get(o, "links"), i, l) {
    json_t *x = json_object_get(l, "relay");
    printf("%-24s %9lld %9lld %9lld %9lld %9lld %9lld %9lld %9lld\n",
           json_string_value(json_object_get(l, "peer")), cnt(x, "sent"), cnt(x, "forwarded"),
           cnt(x, "received"), cnt(x, "hop_repaired"), cnt(x, "hop_lost"), cnt(x, "hop_resent"),
           cnt(x, "dedup_dropped"), cnt(x, "dedup_video"));
  }
  printf("\n%-24s %-30s %9s %9s %-30s %-9s\n", "route to", "via", "delay_ms", "cost_ms", "alt (2nd path)",
         "dup_audio");
  json_t *r;
  json_array_foreach(json_object_get(o, "routes"), i, r) {
    char via[256], alt[256];
    path_text(json_object_get(r, "via"), via, sizeof via);
    path_text(json_object_get(r, "alt"), alt, sizeof alt);
    json_t *dup = json_object_get(r, "dup_audio");
    const char *dups = json_is_boolean(dup) ? (json_is_true(dup) ? "yes" : "no") : "-";
    if (!json_is_true(json_object_get(r, "up")))
      printf("%-24s %-30s %9s %9s %-30s %-9s\n", json_string_value(json_object_get(r, "to")), "(no path up)",
             "-", "-", alt, dups);
    else
      printf("%-24s %-30s %9.2f %9.2f %-30s %-9s\n", json_string_value(json_object_get(r, "to")), via,
             num(r, "delay_ms"), num(r, "cost_ms"), alt, dups);
  }
  printf("\nroute changes %lld, route evaluations between heartbeats (a link went up or down) %lld\n",
         (long long)json_integer_value(json_object_get(o, "route_changes")),
         (long long)json_integer_value(json_object_get(o, "fast_reroutes")));
  json_t *by = json_object_get(o, "route_changes_by");
  if (json_is_object(by))
    printf("route changes by why: broken (a link down) %lld, cost (a cheaper path, after the hold) %lld, new "
           "%lld, gone %lld\n",
           (long long)json_integer_value(json_object_get(by, "broken")),
           (long long)json_integer_value(json_object_get(by, "cost")),
           (long long)json_integer_value(json_object_get(by, "new")),
           (long long)json_integer_value(json_object_get(by, "gone")));
  json_decref(o);
  return 0;
}
