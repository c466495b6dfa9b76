/* --cluster of `hudong pub` and `sub` (issue 15 item 4; docs/overlay.md
 * "Routing: the client side"): the SDK's hd_client_route
 * (src/client/client_route.c) before the client starts, and its choice and
 * RTTs printed for the user. */
#include <stdio.h>

#include "cmd/cmd.h"

static void print_rtt(const hd_client_route_node_t *n, int *first) {
  if (n->rtt_ms < 0) return;
  fprintf(stderr, "%s %s %.1f ms", *first ? "" : ",", n->id, n->rtt_ms);
  *first = 0;
}

int hd_cli_route(const char *cluster, const char *token, hd_client_route_result_t *out, char *err,
                 size_t errcap, int verbose) {
  char why[600];
  int rc = hd_client_route(cluster, token, out, why, sizeof why);
  if (rc < 0) {
    snprintf(err, errcap, "--cluster: %s", why);
    return -1;
  }
  if (verbose) {
    fprintf(stderr, "hudong: route: room %s -> node %s (%s), reason %s; RTT", out->room, out->node.id,
            out->node.url, out->reason);
    int first = 1;
    print_rtt(&out->node, &first);
    for (int i = 0; i < out->n_others; i++)
      print_rtt(&out->others[i], &first);
    fprintf(stderr, "%s\n", first ? " not measured" : "");
  }
  return 0;
}
