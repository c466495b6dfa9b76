/* Edge scheduling, sans-IO (issue 15 item 4; docs/overlay.md "Routing"):
 * which node a client should use for a room, among the live nodes of the
 * registry (cluster/registry.h). GET /api/route answers with it.
 *
 * The rule, in order:
 *  1. A node that is draining or at its capacity is never chosen.
 *  2. Region, then labels: if any eligible node is in the client's region,
 *     only those are considered; likewise for nodes carrying every wanted label.
 *  3. Client-measured RTT: when the client gives RTTs, only measured nodes are
 *     considered (an unmeasured one may be unreachable), scored rtt_ms +
 *     HD_ROUTE_LOAD_MS * load; the lowest score wins. A room spans nodes
 *     (docs/overlay.md "A room across nodes"), so the nearest node wins.
 *  4. Without RTTs, a node (left by 2) that holds the room already: it saves
 *     a node link (the least loaded if several do; reason "room").
 *  5. Otherwise by load: the nodes within HD_ROUTE_LOAD_BAND of the lowest
 *     load are equal, and the room's rendezvous hash picks one of them, so
 *     new rooms spread over equally loaded nodes instead of all going to the
 *     first one until the next heartbeat shows its load. */
#ifndef HD_CLUSTER_ROUTE_H
#define HD_CLUSTER_ROUTE_H
#include <stddef.h>
#include <stdint.h>

#include "cluster/registry.h"

#define HD_ROUTE_MAX_RTT 16     /* rtt=node:ms pairs per request */
#define HD_ROUTE_LOAD_MS 100.0  /* a fully loaded node weighs as 100 ms of extra RTT */
#define HD_ROUTE_LOAD_BAND 0.05 /* loads within 5 points of the lowest are equal */

typedef struct {
  char id[HD_CLUSTER_ID_MAX];
  int ms;
} hd_route_rtt_t;

typedef struct {
  const char *app, *room;
  const char *region; /* "" = any */
  const char *labels; /* "k=v,k=v"; "" = any */
  hd_route_rtt_t rtt[HD_ROUTE_MAX_RTT];
  int n_rtt;
} hd_route_req_t;

/* Per candidate, what the rule saw. */
typedef struct {
  int eligible; /* not full, not draining */
  int in_pool;  /* survived the region/labels/RTT filters */
  int has_room; /* holds the room */
  int rtt_ms;   /* -1: not measured */
  double load;  /* hd_cluster_node_load */
  double score; /* lower is better (pool members only) */
} hd_route_cand_t;

/* Parses "nodeA:23,nodeB:80" into req->rtt (the last ':' of a pair splits:
 * "host:7880:23" is node "host:7880"). HD_EINVAL (why says what) for
 * a malformed list, more than HD_ROUTE_MAX_RTT pairs or an ms outside 0..60000. */
int hd_route_parse_rtt(const char *s, hd_route_req_t *req, char *why, size_t whycap);

/* Chooses among nodes[0..n). cands[0..n) gets the per-node view; *reason a
 * static word: "room", "rtt", "load". Returns the chosen index, or
 * HD_ENOTFOUND when every node is full or draining. */
int hd_route_choose(const hd_cluster_node_t *nodes, int n, const hd_route_req_t *req, hd_route_cand_t *cands,
                    const char **reason);

#endif
