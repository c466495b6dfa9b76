/* Fuzz target for the cluster parsers (src/cluster): a registry entry read
 * from Redis (written by another node, or by anything else that can write
 * there), the rtt list of /api/route (client input) and the --redis URL. The
 * first byte picks the parser. Checks: a decoded entry stays within its caps,
 * and re-encoding it decodes to the same scalar fields; the route rule on a
 * decoded entry never picks a full node. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "cluster/redis_url.h"
#include "cluster/registry.h"
#include "cluster/route.h"

static hd_cluster_node_t g_a, g_b;
static char g_buf[HD_CLUSTER_ENTRY_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 65536) return 0;
  char *s = malloc(size);
  memcpy(s, data + 1, size - 1);
  s[size - 1] = 0;
  char why[256];
  switch (data[0] % 3) {
  case 0:
    if (hd_cluster_node_decode(s, size - 1, &g_a, why, sizeof why) == 0) {
      if (g_a.n_media > HD_CLUSTER_MAX_MEDIA || g_a.n_room_hashes > HD_CLUSTER_MAX_ROOMS || !g_a.id[0] ||
          g_a.capacity < 1)
        abort();
      int len = hd_cluster_node_encode(&g_a, NULL, 0, g_buf, sizeof g_buf);
      if (len < 0 || hd_cluster_node_decode(g_buf, (size_t)len, &g_b, why, sizeof why) < 0) abort();
      if (strcmp(g_a.id, g_b.id) || strcmp(g_a.url, g_b.url) || g_a.capacity != g_b.capacity ||
          g_a.sessions != g_b.sessions || g_a.draining != g_b.draining || g_a.n_media != g_b.n_media)
        abort();
      hd_route_req_t req = {.app = "a", .room = "r", .region = "", .labels = ""};
      hd_route_cand_t c;
      const char *reason;
      int k = hd_route_choose(&g_a, 1, &req, &c, &reason);
      if ((k == 0) == hd_cluster_node_full(&g_a)) abort();
    }
    break;
  case 1: {
    hd_route_req_t req;
    if (hd_route_parse_rtt(s, &req, why, sizeof why) == 0) {
      if (req.n_rtt > HD_ROUTE_MAX_RTT) abort();
      for (int i = 0; i < req.n_rtt; i++)
        if (req.rtt[i].ms < 0 || req.rtt[i].ms > 60000 || !req.rtt[i].id[0]) abort();
    }
    break;
  }
  default: {
    hd_redis_url_t u;
    if (hd_redis_url_parse(s, &u, why, sizeof why) == 0 && (!u.host[0] || u.port < 1 || u.port > 65535))
      abort();
    break;
  }
  }
  free(s);
  return 0;
}
