/* Edge scheduling (see route.h for the rule and why). */
#include "cluster/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

int hd_route_parse_rtt(const char *s, hd_route_req_t *req, char *why, size_t whycap) {
  req->n_rtt = 0;
  while (*s) {
    const char *e = strchr(s, ',');
    size_t l = e ? (size_t)(e - s) : strlen(s);
    /* the last ':' separates: node ids may contain ':' (the default id is
     * hostname:port), the ms never does */
    const char *colon = memrchr(s, ':', l);
    if (!colon || colon == s || (size_t)(colon - s) >= HD_CLUSTER_ID_MAX || colon + 1 == s + l) {
      snprintf(why, whycap, "rtt must be node:ms pairs separated by commas, e.g. rtt=nodeA:23,nodeB:80");
      return HD_EINVAL;
    }
    if (req->n_rtt == HD_ROUTE_MAX_RTT) {
      snprintf(why, whycap, "rtt lists at most %d nodes", HD_ROUTE_MAX_RTT);
      return HD_EINVAL;
    }
    long ms = 0;
    for (const char *p = colon + 1; p < s + l; p++) {
      if (*p < '0' || *p > '9' || ms > 60000) {
        snprintf(why, whycap, "rtt: the ms of each node must be an integer in 0..60000");
        return HD_EINVAL;
      }
      ms = ms * 10 + (*p - '0');
    }
    if (ms > 60000) {
      snprintf(why, whycap, "rtt: the ms of each node must be an integer in 0..60000");
      return HD_EINVAL;
    }
    hd_route_rtt_t *r = &req->rtt[req->n_rtt++];
    memcpy(r->id, s, (size_t)(colon - s));
    r->id[colon - s] = 0;
    r->ms = (int)ms;
    s += l + (e ? 1 : 0);
    if (e && !*s) {
      snprintf(why, whycap, "rtt: trailing comma");
      return HD_EINVAL;
    }
  }
  return 0;
}

/* Rendezvous (highest random weight) hash of (room, node): every node ranks
 * the candidates the same way for a room, and different rooms rank them
 * differently. */
static uint64_t hrw(const char *app, const char *room, const char *id) {
  uint64_t h = hd_cluster_room_hash(app, room);
  for (const char *p = id; *p; p++)
    h = (h ^ (uint8_t)*p) * 1099511628211ull;
  h ^= h >> 33; /* finalizer: FNV's low bits mix poorly */
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

int hd_route_choose(const hd_cluster_node_t *nodes, int n, const hd_route_req_t *req, hd_route_cand_t *cands,
                    const char **reason) {
  uint64_t rh = hd_cluster_room_hash(req->app, req->room);
  int any = 0;
  for (int i = 0; i < n; i++) {
    hd_route_cand_t *c = &cands[i];
    memset(c, 0, sizeof *c);
    c->eligible = !hd_cluster_node_full(&nodes[i]);
    c->has_room = hd_cluster_node_has_room(&nodes[i], rh);
    c->load = hd_cluster_node_load(&nodes[i]);
    c->rtt_ms = -1;
    for (int k = 0; k < req->n_rtt; k++)
      if (!strcmp(req->rtt[k].id, nodes[i].id)) c->rtt_ms = req->rtt[k].ms;
    c->in_pool = c->eligible;
    any |= c->eligible;
  }
  if (!any) return HD_ENOTFOUND;
  /* narrowing filters: each applies only if it leaves someone */
  for (int f = 0; f < 3; f++) {
    int keep = 0;
    for (int i = 0; i < n; i++) {
      int ok = f == 0   ? !req->region || !req->region[0] || !strcmp(nodes[i].region, req->region)
               : f == 1 ? !req->labels || hd_cluster_labels_match(nodes[i].labels, req->labels)
                        : cands[i].rtt_ms >= 0;
      keep += cands[i].in_pool && ok;
    }
    if (!keep) continue;
    for (int i = 0; i < n; i++) {
      int ok = f == 0   ? !req->region || !req->region[0] || !strcmp(nodes[i].region, req->region)
               : f == 1 ? !req->labels || hd_cluster_labels_match(nodes[i].labels, req->labels)
                        : cands[i].rtt_ms >= 0;
      cands[i].in_pool &= ok;
    }
  }
  int best = -1, measured = 0;
  double min_load = 1e9;
  for (int i = 0; i < n; i++)
    if (cands[i].in_pool) {
      measured |= cands[i].rtt_ms >= 0;
      if (cands[i].load < min_load) min_load = cands[i].load;
    }
  /* A room spans nodes (docs/overlay.md "A room across nodes"): the client's
   * RTTs win; without them, a node that holds the room already (among those
   * the hints left) saves a node link, the least loaded if several do. */
  if (!measured) {
    int held = -1;
    for (int i = 0; i < n; i++)
      if (cands[i].in_pool && cands[i].has_room && (held < 0 || cands[i].load < cands[held].load)) held = i;
    if (held >= 0) {
      for (int i = 0; i < n; i++)
        cands[i].in_pool = i == held;
      cands[held].score = 0;
      *reason = "room";
      return held;
    }
  }
  for (int i = 0; i < n; i++) {
    hd_route_cand_t *c = &cands[i];
    if (!c->in_pool) continue;
    if (measured) {
      c->score = c->rtt_ms + HD_ROUTE_LOAD_MS * c->load;
      if (best < 0 || c->score < cands[best].score ||
          (c->score == cands[best].score && strcmp(nodes[i].id, nodes[best].id) < 0))
        best = i;
    } else {
      c->score = c->load;
      if (c->load > min_load + HD_ROUTE_LOAD_BAND) continue;
      if (best < 0 || hrw(req->app, req->room, nodes[i].id) > hrw(req->app, req->room, nodes[best].id))
        best = i;
    }
  }
  *reason = measured ? "rtt" : "load";
  return best;
}
