/* `hudong cluster links`: prints a node's measured node links and its route
 * per destination node (GET /admin/cluster/links; docs/overlay.md "Link
 * measurement", issue 16 item 3). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"

static void usage(FILE *f) {
  fprintf(f, "usage: hudong cluster links --url http://HOST:PORT --token ADMIN_TOKEN [--json]\n"
             "  prints the node's links to the other nodes (RTT, loss, jitter, up, downs; measured\n"
             "  with probes every 100 ms) and its route per destination node.\n"
             "  ADMIN_TOKEN: an app-wide roomAdmin token (hudong token ... --admin, without --room).\n"
             "  --json: the node's answer as is.\n");
}

static double num(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

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
  int st = hd_cli_http("GET", url, "/admin/cluster/links", token, body, cap, err, sizeof err);
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
  printf("%-24s %-4s %9s %9s %9s %8s %8s %9s %5s\n", "peer", "up", "rtt_ms", "min_ms", "jit_ms", "loss_fw",
         "loss_rt", "probes", "downs");
  size_t i;
  json_t *l;
  json_array_foreach(json_object_get(o, "links"), i, l) {
    printf("%-24s %-4s %9.2f %9.2f %9.2f %7.1f%% %7.1f%% %9lld %5lld\n",
           json_string_value(json_object_get(l, "peer")),
           json_is_true(json_object_get(l, "up")) ? "up" : "DOWN", num(l, "rtt_ms"), num(l, "min_rtt_ms"),
           num(l, "jitter_ms"), num(l, "loss_fwd") * 100, num(l, "loss_rtt") * 100,
           (long long)json_integer_value(json_object_get(l, "probes_sent")),
           (long long)json_integer_value(json_object_get(l, "downs")));
  }
  printf("\n%-24s %-30s %9s %9s\n", "route to", "via", "delay_ms", "cost_ms");
  json_t *r;
  json_array_foreach(json_object_get(o, "routes"), i, r) {
    char via[256] = "";
    size_t k;
    json_t *v;
    json_array_foreach(json_object_get(r, "via"), k, v) {
      size_t u = strlen(via);
      snprintf(via + u, sizeof via - u, "%s%s", u ? "," : "", json_string_value(v));
    }
    if (!json_is_true(json_object_get(r, "up")))
      printf("%-24s %-30s\n", json_string_value(json_object_get(r, "to")), "(no path up)");
    else
      printf("%-24s %-30s %9.2f %9.2f\n", json_string_value(json_object_get(r, "to")),
             via[0] ? via : "direct", num(r, "delay_ms"), num(r, "cost_ms"));
  }
  json_decref(o);
  return 0;
}
