/* `hudong serve`'s cluster side (see serve_cluster.h). */
#include "cmd/serve_cluster.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "base/rand.h"
#include "cluster/redis_url.h"
#include "cluster/route.h"
#include "io/cluster_redis.h"
#include "io/rtc_udp.h"
#include "cluster/peer_addrs.h"
#include "overlay/link.h"
#include "overlay/overlay_params.h"
#include "overlay/path_select.h"
#include "sfu/node.h"

#define ROOM_NAME_MAX 200 /* "app/room": 63 + 1 + 64 and room for growth */

struct hd_serve_cluster {
  uv_loop_t *loop;
  const hd_config_t *cfg;
  hd_media_workers_t *workers;
  hd_cluster_redis_t *link;     /* NULL without --redis */
  int link_on;                  /* the media workers run the node link (room_remote.c) */
  hd_cluster_node_t *self;      /* the last gathered entry */
  char (*names)[ROOM_NAME_MAX]; /* the entry's list: the first HD_CLUSTER_MAX_ROOMS */
  int n_names;
  char (*held)[ROOM_NAME_MAX]; /* every room held, for their Redis keys' TTLs (grows) */
  int n_held, cap_held;
  int held_warned;
  int prune_warned;         /* a reconcile skipped its prune (too many rooms): logged once */
  hd_cluster_node_t *cands; /* self + peers, for a route */
  hd_route_cand_t *views;
  /* for the rates of the entry */
  uint64_t last_bytes_out;
  double last_cpu_s;
  hd_time_t last_at;
  /* link measurement and routes (issue 16; docs/overlay.md "Link measurement", "Routes") */
  hd_node_link_t links[HD_CLUSTER_MAX_LINKS]; /* the measuring worker's, at the last heartbeat */
  int n_links;
  char ovl_ids[HD_OVL_MAX_NODES][HD_CLUSTER_ID_MAX]; /* graph index -> node id; 0 is this node */
  int ovl_n;
  hd_ovl_graph_t graph;
  hd_ovl_router_t router;
  hd_peer_addrs_t peer_addrs; /* --peer-addr / "peer_addrs": per-pair overrides (issue 16 item 5) */
  /* relaying (issue 16 item 3): the routes the workers were given */
  hd_node_route_t routes[HD_OVL_MAX_NODES];
  int n_routes;
  struct room_events *rev; /* room_started / room_finished once per cluster */
  struct fast_check *fast; /* the fast reroute check between heartbeats (issue 16 item 1) */
  uint64_t fast_reroutes;  /* route evaluations it triggered */
  uint64_t suspect_mask;   /* c->links[i] suspect at the last fast check */
  /* this node's links as the last fast check saw them (not c->self->links,
   * which the admin answer and the heartbeat refresh too: a change they saw
   * first would be missed) */
  hd_cluster_link_t fast_seen[HD_CLUSTER_MAX_LINKS];
  int n_fast_seen, fast_primed;
  uint64_t suspect_pushes; /* routes handed to the workers because a link became or stopped being suspect */
  int beat_soon;           /* a room started here: publish the entry at the next fast check */
  hd_serve_event_fn emit;  /* events of the cluster side itself (room_gone) */
  void *emit_ud;
};

static void rev_stop(hd_serve_cluster_t *c);
typedef struct {
  const char *app, *room, *was, *sid;
} sid_job_t;
static void sid_job(hd_node_t *node, void *arg, hd_time_t now);

/* ---- this node's entry, from its media workers ---- */

typedef struct {
  hd_node_metrics_t m;
  hd_serve_cluster_t *c;
  size_t rooms;
} gather_job_t;

/* Rooms a node refreshes in Redis at most (13 MB of names); beyond, a room's
 * keys expire the room TTL (cluster.room_ttl_ms) after its start (logged once). */
#define HELD_MAX 65536

static void add_held(hd_serve_cluster_t *c, const char *app, const char *room) {
  if (c->n_held == c->cap_held) {
    int cap = c->cap_held ? c->cap_held * 2 : 256;
    void *p = cap <= HELD_MAX ? realloc(c->held, (size_t)cap * sizeof *c->held) : NULL;
    if (!p) {
      if (!c->held_warned++)
        HD_LOGW("cluster",
                "more than %d rooms on this node: the Redis keys of the rest are not refreshed "
                "and expire %d s after their start",
                c->n_held, (int)(c->cfg->cluster_room_ttl_ms / 1000));
      return;
    }
    c->held = p;
    c->cap_held = cap;
  }
  snprintf(c->held[c->n_held++], ROOM_NAME_MAX, "%s/%s", app, room);
}

static void add_room(void *ud, const char *app, const char *room) {
  hd_serve_cluster_t *c = ud;
  add_held(c, app, room);
  if (c->n_names == HD_CLUSTER_MAX_ROOMS) return;
  snprintf(c->names[c->n_names], ROOM_NAME_MAX, "%s/%s", app, room);
  c->self->room_hashes[c->n_names++] = hd_cluster_room_hash(app, room);
}

static void gather_job(hd_node_t *node, void *arg, hd_time_t now) {
  gather_job_t *j = arg;
  (void)now;
  hd_node_metrics(node, &j->m);
  j->rooms = hd_node_room_names(node, add_room, j->c);
}

static double cpu_seconds(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) < 0) return -1;
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

/* Refreshes c->self: loads from every media worker (each in turn, on its own
 * thread), the rates since the last call when `rates` is set. */
static void gather(hd_serve_cluster_t *c, int rates) {
  hd_cluster_node_t *n = c->self;
  c->n_names = c->n_held = 0;
  n->sessions = n->participants = n->rooms = 0;
  uint64_t bytes_out = 0;
  for (int i = 0; i < hd_media_workers_count(c->workers); i++) {
    gather_job_t j = {.c = c};
    hd_media_workers_call(c->workers, i, gather_job, &j);
    n->sessions += (int64_t)(j.m.n_publish + j.m.n_play + j.m.n_subscribe);
    n->participants += (int64_t)j.m.n_participants;
    n->rooms += (int64_t)j.rooms;
    bytes_out += j.m.stats.bytes_out;
  }
  n->n_room_hashes = c->n_names;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  n->ts_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  if (!rates) return;
  hd_time_t now = hd_io_now(c->loop);
  double cpu = cpu_seconds();
  if (c->last_at && now > c->last_at) {
    double dt = (double)(now - c->last_at) / 1e6;
    n->bitrate_bps = (int64_t)((double)(bytes_out - c->last_bytes_out) * 8 / dt);
    n->cpu_pct = cpu >= 0 && c->last_cpu_s >= 0 ? (int)((cpu - c->last_cpu_s) * 100 / dt + 0.5) : -1;
  }
  c->last_bytes_out = bytes_out;
  c->last_cpu_s = cpu;
  c->last_at = now;
}

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the node link's peers (docs/overlay.md "A room across nodes") ---- */

typedef struct {
  const hd_cluster_peers_t *peers;
  const char *id;
  const uint8_t *secret;
  size_t secret_len;
  uint64_t epoch;
  int measure; /* the first worker measures the links */
  int worker;  /* the worker's index: its link lane */
  const hd_peer_addrs_t *over;
} link_job_t;

static void link_init_job(hd_node_t *node, void *arg, hd_time_t now) {
  link_job_t *j = arg;
  (void)now;
  if (hd_node_cluster_init(node, j->id, j->secret, j->secret_len, j->epoch, j->worker) < 0)
    HD_LOGW("cluster", "node link not started on a media worker");
  else if (j->measure)
    hd_node_cluster_measure(node);
}

/* The workers' copy of the peer table: run on each worker while this thread
 * waits, so the table can be lent. */
static void link_peers_job(hd_node_t *node, void *arg, hd_time_t now) {
  link_job_t *j = arg;
  hd_node_cluster_set_peers(node, j->peers->nodes, j->peers->n, now);
  for (int k = 0; j->over && k < j->peers->n; k++) {
    const char *a[HD_CLUSTER_MAX_MEDIA];
    int na = hd_peer_addrs_get(j->over, j->peers->nodes[k].id, a, HD_CLUSTER_MAX_MEDIA);
    if (na) hd_node_cluster_peer_addr(node, j->peers->nodes[k].id, a, na);
  }
}

/* The link keys derive from the cluster secret: SHA-256 over every app's key
 * and secret, which every node of a cluster shares already (a token is valid
 * cluster-wide). */
static int cluster_secret(const hd_config_t *cfg, uint8_t out[32]) {
  if (!cfg->n_apps) return HD_EINVAL;
  EVP_MD_CTX *m = EVP_MD_CTX_new();
  if (!m) return HD_ENOMEM;
  int ok = EVP_DigestInit_ex(m, EVP_sha256(), NULL) && EVP_DigestUpdate(m, "hudong-cluster-1", 17);
  for (int i = 0; i < cfg->n_apps && ok; i++)
    ok = EVP_DigestUpdate(m, cfg->apps[i].key, strlen(cfg->apps[i].key) + 1) &&
         EVP_DigestUpdate(m, cfg->apps[i].secret, strlen(cfg->apps[i].secret) + 1);
  unsigned len = 0;
  ok = ok && EVP_DigestFinal_ex(m, out, &len) && len == 32;
  EVP_MD_CTX_free(m);
  return ok ? 0 : HD_ECRYPTO;
}

static void push_peers(hd_serve_cluster_t *c);

/* A fresh registry read goes to the workers at once, not at the next
 * heartbeat (docs/overlay.md "A room across nodes": a room that another node
 * started is found within one read). */
static void peers_read_cb(void *ud) { push_peers(ud); }

static void push_peers(hd_serve_cluster_t *c) {
  if (!c->link || !c->link_on) return;
  link_job_t j = {.peers = hd_cluster_redis_peers(c->link), .over = c->peer_addrs.n ? &c->peer_addrs : NULL};
  /* an empty table (Redis unreachable past the TTL) tells nothing: the links keep what they know */
  if (!j.peers || !j.peers->n) return;
  for (int i = 0; i < hd_media_workers_count(c->workers); i++)
    hd_media_workers_call(c->workers, i, link_peers_job, &j);
}

/* ---- link measurement and routes (issue 16 items 1-2) ---- */

static void links_job(hd_node_t *node, void *arg, hd_time_t now) {
  hd_serve_cluster_t *c = arg;
  c->n_links = hd_node_cluster_links(node, c->links, HD_CLUSTER_MAX_LINKS, now);
}

/* Copies the measuring worker's link stats (it runs the job while this
 * thread waits, as gather() does: no lock on the packet path) into c->links
 * and this node's entry. */
static void gather_links(hd_serve_cluster_t *c) {
  c->n_links = 0;
  if (c->link_on && hd_media_workers_count(c->workers) > 0)
    hd_media_workers_call(c->workers, 0, links_job, c);
  hd_cluster_node_t *n = c->self;
  n->n_links = 0;
  for (int i = 0; i < c->n_links; i++) {
    const hd_node_link_t *l = &c->links[i];
    if (!l->listed) continue; /* a node gone from the registry: not offered to routes */
    hd_cluster_link_t *o = &n->links[n->n_links++];
    snprintf(o->peer, sizeof o->peer, "%s", l->peer);
    o->up = l->st.up;
    o->rtt_ms = l->st.srtt_ms;
    o->loss = l->st.loss_fwd;
    o->jitter_ms = l->st.jitter_ms;
  }
}

/* ---- relaying (issue 16 item 3; docs/overlay.md "Relaying") ---- */

static void to_relay_path(const hd_serve_cluster_t *c, const hd_ovl_path_t *o, hd_relay_path_t *p) {
  p->n = 0;
  for (int h = 1; h <= o->n_hops && h <= HD_RELAY_MAX_HOPS; h++)
    p->hop[p->n++] = hd_link_id_hash(c->ovl_ids[o->node[h]]);
}

/* The loss of a path before repair: what duplicate audio is for. */
static double path_loss(const hd_ovl_graph_t *g, const hd_ovl_path_t *p) {
  double ok = 1;
  for (int h = 0; h < p->n_hops; h++)
    ok *= 1 - g->link[p->node[h]][p->node[h + 1]].loss;
  return 1 - ok;
}

/* Whether this node's link to `peer` is suspect (link_meter.h: silent past
 * the fast rule, not yet down): media to a route starting on it also takes
 * the second path. */
static int link_suspect(const hd_serve_cluster_t *c, const char *peer) {
  for (int i = 0; i < c->n_links; i++)
    if (!strcmp(c->links[i].peer, peer)) return c->links[i].st.up && c->links[i].st.suspect;
  return 0;
}

/* This node's link to `peer` is suspect or down after having answered
 * (relays detour round it on every worker; what went into it shortly before
 * is sent again round it: relay.h "rescue"), and since when sends into it
 * may be lost. */
static int link_bad(const hd_serve_cluster_t *c, const char *peer, hd_time_t *since) {
  for (int i = 0; i < c->n_links; i++)
    if (!strcmp(c->links[i].peer, peer)) {
      const hd_link_meter_stats_t *st = &c->links[i].st;
      if (!st->last_echo || (st->up && !st->suspect)) return 0;
      *since = hd_relay_rescue_since(st->last_echo, st->srtt_ms, st->rttvar_ms);
      return 1;
    }
  return 0;
}

static void routes_job(hd_node_t *node, void *arg, hd_time_t now) {
  hd_serve_cluster_t *c = arg;
  hd_node_cluster_set_routes(node, c->routes, c->n_routes, now);
}

/* Hands every media worker the route to each destination, with a disjoint
 * second path; audio goes on both while the best path loses at least
 * overlay.dup_audio_loss (HD_RELAY_DUP_LOSS; 0: always). A destination without a route (no measurement yet)
 * stays direct. */
static void push_routes(hd_serve_cluster_t *c) {
  if (!c->link_on) return;
  c->n_routes = 0;
  for (int d = 1; d < c->ovl_n; d++) {
    const hd_ovl_path_t *r = &c->router.cur[d];
    hd_node_route_t *x = &c->routes[c->n_routes++];
    memset(x, 0, sizeof *x);
    x->dst = hd_link_id_hash(c->ovl_ids[d]);
    x->path.n = 1;
    x->path.hop[0] = x->dst;
    x->link_bad = link_bad(c, c->ovl_ids[d], &x->rescue_since);
    if (!r->n_hops) continue;
    to_relay_path(c, r, &x->path);
    hd_ovl_path_t alt;
    if (hd_ovl_best_path(&c->graph, 0, d, HD_OVL_MAX_RELAYS, r, &alt) == 0) {
      to_relay_path(c, &alt, &x->alt);
      x->dup_audio = hd_relay_dup_audio_on(path_loss(&c->graph, r), hd_overlay_params()->dup_audio_loss);
      x->dup_all = link_suspect(c, c->ovl_ids[r->node[1]]);
    }
  }
  for (int i = 0; i < hd_media_workers_count(c->workers); i++)
    hd_media_workers_call(c->workers, i, routes_job, c);
}

static int ovl_index(const hd_serve_cluster_t *c, const char *id) {
  for (int i = 0; i < c->ovl_n; i++)
    if (!strcmp(c->ovl_ids[i], id)) return i;
  return -1;
}

/* "direct", "via B", "via B,D" or "none", for the log. */
static void path_text(const hd_serve_cluster_t *c, const hd_ovl_path_t *p, char *out, size_t cap) {
  if (!p->n_hops) {
    snprintf(out, cap, "none");
    return;
  }
  size_t k = (size_t)snprintf(out, cap, "%s", p->n_hops == 1 ? "direct" : "via ");
  for (int h = 1; h < p->n_hops && k < cap; h++)
    k += (size_t)snprintf(out + k, cap - k, "%s%s", h > 1 ? "," : "", c->ovl_ids[p->node[h]]);
}

static void ovl_set_link(hd_ovl_graph_t *g, int from, int to, const hd_cluster_link_t *l) {
  if (from < 0 || to < 0 || from == to) return;
  hd_ovl_link_t *x = &g->link[from][to];
  x->up = l->up;
  x->rtt_ms = l->rtt_ms;
  x->owd_ms = l->rtt_ms / 2;
  x->loss = l->loss;
  x->jitter_ms = l->jitter_ms;
}

/* Builds the overlay graph from this node's links and every live peer's
 * published table and loads, and re-runs the router (docs/overlay.md
 * "Routes"). Index 0 is this node; peers follow in the registry's order.
 * When the set of nodes changes the router starts over (indexes move). */
static void update_routes(hd_serve_cluster_t *c) {
  const hd_cluster_peers_t *p = c->link ? hd_cluster_redis_peers(c->link) : NULL;
  char ids[HD_OVL_MAX_NODES][HD_CLUSTER_ID_MAX];
  int n = 0;
  snprintf(ids[n++], HD_CLUSTER_ID_MAX, "%s", c->self->id);
  for (int i = 0; p && i < p->n && n < HD_OVL_MAX_NODES; i++)
    snprintf(ids[n++], HD_CLUSTER_ID_MAX, "%s", p->nodes[i].id);
  int same = n == c->ovl_n;
  for (int i = 0; i < n && same; i++)
    same = !strcmp(ids[i], c->ovl_ids[i]);
  if (!same) {
    memcpy(c->ovl_ids, ids, sizeof ids[0] * (size_t)n);
    c->ovl_n = n;
    hd_ovl_router_init(&c->router, 0);
  }
  hd_ovl_graph_init(&c->graph, n);
  c->graph.load[0] = hd_cluster_node_load(c->self);
  for (int k = 0; k < c->self->n_links; k++)
    ovl_set_link(&c->graph, 0, ovl_index(c, c->self->links[k].peer), &c->self->links[k]);
  for (int i = 1; i < n; i++) {
    const hd_cluster_node_t *e = &p->nodes[i - 1];
    c->graph.load[i] = e->draining ? 1.0 : hd_cluster_node_load(e);
    for (int k = 0; k < e->n_links; k++)
      ovl_set_link(&c->graph, i, ovl_index(c, e->links[k].peer), &e->links[k]);
  }
  hd_ovl_path_t was[HD_OVL_MAX_NODES];
  memcpy(was, c->router.cur, sizeof was);
  int changed = hd_ovl_router_update(&c->router, &c->graph, hd_io_now(c->loop));
  for (int d = 1; changed > 0 && d < n; d++) {
    const hd_ovl_path_t *r = &c->router.cur[d];
    if (hd_ovl_path_same(r, &was[d]) && r->n_hops) continue;
    if (!r->n_hops && !was[d].n_hops) continue;
    char from[64], to[64], why[192] = "";
    path_text(c, &was[d], from, sizeof from);
    path_text(c, r, to, sizeof to);
    /* which link of the old path is down: what an operator looks at first */
    for (int h = 0; h < was[d].n_hops && c->router.last_why[d] == HD_OVL_WHY_BROKEN; h++)
      if (!c->graph.link[was[d].node[h]][was[d].node[h + 1]].up) {
        snprintf(why, sizeof why, ", link %s>%s down", ids[was[d].node[h]], ids[was[d].node[h + 1]]);
        break;
      }
    HD_LOGI("overlay", "route to %s: %s -> %s (%s%s; cost %.1f -> %.1f ms)", ids[d], from, to,
            hd_ovl_why_name(c->router.last_why[d]), why, was[d].cost, r->cost);
  }
  push_routes(c);
}

/* ---- fast reroute (issue 16 item 1; docs/overlay.md "Fast reroute") ----
 *
 * The heartbeat re-runs the router once a second; a link that dies between
 * two would cost up to a second more of lost media. So every
 * overlay.check_interval_ms (25 ms) the control thread reads the measuring
 * worker's link states (a worker job, as the heartbeat's: no lock on the
 * packet path) and, when one of this node's links went up or down, re-runs
 * the router and hands the workers the new routes at once. The router
 * replaces a route with a down link without its hold, and takes a recovered
 * link back only after the hold (no flapping); the link meter's own
 * hysteresis (up_echoes) keeps a flaky link down. A link that went down
 * also publishes this node's entry at once, so the other nodes' routes
 * through it move at their next read of the registry. */

struct fast_check {
  uv_timer_t timer;
  hd_serve_cluster_t *c; /* NULL once the cluster side stopped */
};

static void fast_closed(uv_handle_t *h) { free(h->data); }

static void fast_cb(uv_timer_t *t) {
  struct fast_check *f = t->data;
  hd_serve_cluster_t *c = f->c;
  if (!c || !c->link || !c->link_on) return;
  if (c->beat_soon) { /* here, not in the event's call: the beat calls into the workers */
    c->beat_soon = 0;
    hd_cluster_redis_beat_now(c->link);
  }
  if (c->ovl_n < 2) return;
  if (!c->fast_primed) { /* the first check compares with the heartbeat's reading */
    memcpy(c->fast_seen, c->self->links, sizeof c->fast_seen[0] * (size_t)c->self->n_links);
    c->n_fast_seen = c->self->n_links;
    c->fast_primed = 1;
  }
  const hd_cluster_link_t *before = c->fast_seen;
  int n_before = c->n_fast_seen;
  gather_links(c);
  int changed = n_before != c->self->n_links, went_down = 0;
  /* suspect links (link_meter.h): the routes stay, the media also takes
   * the second path while one lasts (push_routes' dup_all) */
  uint64_t suspect = 0;
  for (int i = 0; i < c->n_links && i < 64; i++)
    if (c->links[i].listed && c->links[i].st.up && c->links[i].st.suspect) suspect |= 1ull << i;
  if (suspect != c->suspect_mask) {
    for (int i = 0; i < c->n_links && i < 64; i++)
      if ((suspect >> i & 1) && !(c->suspect_mask >> i & 1))
        HD_LOGI("overlay", "link to %s suspect: no echo for %.0f ms; media also takes the second path",
                c->links[i].peer, (double)(hd_io_now(c->loop) - c->links[i].st.last_echo) / 1000.0);
    c->suspect_mask = suspect;
    c->suspect_pushes++;
    push_routes(c);
  }
  for (int i = 0; i < c->self->n_links; i++) {
    const hd_cluster_link_t *l = &c->self->links[i];
    int was = -1;
    for (int k = 0; k < n_before && was < 0; k++)
      if (!strcmp(before[k].peer, l->peer)) was = before[k].up;
    if (was != l->up) changed = 1;
    if (was == 1 && !l->up) {
      went_down = 1;
      for (int k = 0; k < c->n_links; k++)
        if (!strcmp(c->links[k].peer, l->peer)) {
          const hd_link_meter_stats_t *st = &c->links[k].st;
          HD_LOGI("overlay", "link to %s down: no echo for %.0f ms (srtt %.1f ms, rttvar %.1f ms)", l->peer,
                  (double)(hd_io_now(c->loop) - st->last_echo) / 1000.0, st->srtt_ms, st->rttvar_ms);
        }
    }
    if (was == 0 && l->up) HD_LOGI("overlay", "link to %s up again", l->peer);
  }
  memcpy(c->fast_seen, c->self->links, sizeof c->fast_seen[0] * (size_t)c->self->n_links);
  c->n_fast_seen = c->self->n_links;
  if (!changed) return;
  c->fast_reroutes++;
  update_routes(c);
  if (went_down) hd_cluster_redis_beat_now(c->link);
}

static void fast_start(hd_serve_cluster_t *c) {
  struct fast_check *f = calloc(1, sizeof *f);
  if (!f) return; /* routes move at the heartbeat only */
  f->c = c;
  uv_timer_init(c->loop, &f->timer);
  f->timer.data = f;
  uint64_t ms = (uint64_t)(hd_overlay_params()->check_interval / 1000);
  uv_timer_start(&f->timer, fast_cb, ms, ms ? ms : 1);
  c->fast = f;
}

static void fast_stop(hd_serve_cluster_t *c) {
  if (!c->fast) return;
  c->fast->c = NULL;
  uv_timer_stop(&c->fast->timer);
  uv_close((uv_handle_t *)&c->fast->timer, fast_closed);
  c->fast = NULL;
}

static int entry_cb(void *ud, char *out, size_t cap) {
  hd_serve_cluster_t *c = ud;
  push_peers(c);
  gather(c, 1);
  gather_links(c);
  update_routes(c);
  const char *names[HD_CLUSTER_MAX_ROOMS];
  for (int i = 0; i < c->n_names; i++)
    names[i] = c->names[i];
  /* more rooms than listed happens only with the list full (add_room): the
   * entry lists HD_CLUSTER_MAX_ROOMS and says "rooms_truncated" */
  int total = c->self->rooms > c->n_names ? (int)c->self->rooms : c->n_names;
  hd_cluster_redis_rooms_alive(c->link, (const char *)c->held, ROOM_NAME_MAX,
                               c->n_held); /* their keys live on */
  return hd_cluster_node_encode(c->self, names, total, out, cap);
}

void hd_serve_cluster_set_emit(hd_serve_cluster_t *c, hd_serve_event_fn emit, void *ud) {
  if (!c) return;
  c->emit = emit;
  c->emit_ud = ud;
}

/* A room finished with the killed node that last held it (io/cluster_redis.h):
 * this node, the one that noticed, fires its room_finished. */
static void room_gone(void *ud, const char *room, const char *sid) {
  hd_serve_cluster_t *c = ud;
  const char *slash = strchr(room, '/');
  if (!c->emit || !slash || slash == room) return;
  char app[HD_WEBHOOK_FIELD_MAX];
  snprintf(app, sizeof app, "%.*s", (int)(slash - room), room);
  hd_webhook_event_t ev = {
      .type = HD_WEBHOOK_ROOM_FINISHED, .app = app, .room_name = slash + 1, .room_sid = sid};
  c->emit(c->emit_ud, &ev);
}

/* ---- coming back after an outage (io/cluster_redis.h hd_cluster_redis_reconcile) ---- */

typedef struct {
  hd_cluster_held_t *rooms;
  int n, cap;
  int truncated; /* a room was left out (past HELD_MAX, or no memory) */
} held_list_t;

static void add_held_sid(void *ud, const char *app, const char *room, const char *sid) {
  held_list_t *l = ud;
  if (l->n == l->cap) {
    int cap = l->cap ? l->cap * 2 : 64;
    void *p = cap <= HELD_MAX ? realloc(l->rooms, (size_t)cap * sizeof *l->rooms) : NULL;
    if (!p) { /* past HELD_MAX: as add_held, the rest is not re-announced */
      l->truncated = 1;
      return;
    }
    l->rooms = p;
    l->cap = cap;
  }
  hd_cluster_held_t *h = &l->rooms[l->n];
  int len = snprintf(h->room, sizeof h->room, "%s/%s", app, room);
  if (len < 0 || (size_t)len >= sizeof h->room) return;
  snprintf(h->sid, sizeof h->sid, "%s", sid);
  l->n++;
}

static void held_sids_job(hd_node_t *node, void *arg, hd_time_t now) {
  (void)now;
  hd_node_room_sids(node, add_held_sid, arg);
}

/* This node (re-)registered in Redis: it re-announces every room it holds,
 * gathered from its media workers as the heartbeat gathers its entry. */
static void registered(void *ud, int first) {
  hd_serve_cluster_t *c = ud;
  held_list_t l = {0};
  for (int i = 0; i < hd_media_workers_count(c->workers); i++)
    hd_media_workers_call(c->workers, i, held_sids_job, &l);
  (void)first;
  /* A list missing rooms must not drive the prune: it would take every room
   * left out for one this node let go (out of its rooms' node sets, their
   * sid keys deleted) while the room is live here. */
  if (l.truncated && !c->prune_warned++)
    HD_LOGW("cluster",
            "more than %d rooms on this node: after a Redis outage only the first %d are "
            "re-announced, and the rooms it let go meanwhile stay listed for it in Redis "
            "until their keys expire (cluster.room_ttl_ms)",
            HELD_MAX, l.n);
  int rc = hd_cluster_redis_reconcile(c->link, l.rooms, l.n, !l.truncated);
  if (rc < 0) HD_LOGW("cluster", "cannot re-announce this node's rooms in Redis: %s", hd_strerror(rc));
  free(l.rooms);
}

/* What the re-announce found for a room: it takes the cluster's sid, or
 * the room's start or end goes out (docs/overlay.md "Coming back after an
 * outage"). */
static void room_back(void *ud, const char *room, const char *local, const char *sid, int status) {
  hd_serve_cluster_t *c = ud;
  const char *slash = strchr(room, '/');
  if (!slash || slash == room) return;
  char app[HD_WEBHOOK_FIELD_MAX];
  snprintf(app, sizeof app, "%.*s", (int)(slash - room), room);
  const char *name = slash + 1;
  if (status == HD_CLUSTER_BACK_READDED && strcmp(local, sid)) {
    sid_job_t j = {.app = app, .room = name, .was = local, .sid = sid};
    hd_media_workers_call(c->workers, hd_media_room_worker(app, name, hd_media_workers_count(c->workers)),
                          sid_job, &j);
    return;
  }
  if (!c->emit || status != HD_CLUSTER_BACK_RESTARTED) return;
  hd_webhook_event_t ev = {.type = HD_WEBHOOK_ROOM_STARTED, .app = app, .room_name = name, .room_sid = sid};
  c->emit(c->emit_ud, &ev);
}

void hd_serve_cluster_defaults(hd_config_t *cfg, const char *scheme) {
  if (!cfg->node_id[0]) {
    char host[64] = "";
    if (gethostname(host, sizeof host - 1) < 0 || !host[0]) snprintf(host, sizeof host, "node");
    host[sizeof host - 1] = 0;
    for (char *p = host; *p; p++) /* the node_id alphabet */
      if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
            *p == '.' || *p == '_'))
        *p = '-';
    snprintf(cfg->node_id, sizeof cfg->node_id, "%.50s:%d", host, cfg->listen_port);
  }
  if (!cfg->announce_url[0]) {
    const char *h = strcmp(cfg->listen_host, "0.0.0.0") && strcmp(cfg->listen_host, "::") ? cfg->listen_host
                                                                                          : cfg->rtc_ip;
    int v6 = strchr(h, ':') != NULL;
    char u[400];
    snprintf(u, sizeof u, "%s://%s%s%s:%d", scheme, v6 ? "[" : "", h, v6 ? "]" : "", cfg->listen_port);
    snprintf(cfg->announce_url, sizeof cfg->announce_url, "%.255s", u);
  }
}

int hd_serve_cluster_start(hd_serve_cluster_t **out, uv_loop_t *loop, const hd_config_t *cfg,
                           hd_media_workers_t *workers, char *err, size_t errcap) {
  *out = NULL;
  hd_serve_cluster_t *c = calloc(1, sizeof *c);
  if (!c) goto oom;
  c->loop = loop;
  c->cfg = cfg;
  c->workers = workers;
  c->self = calloc(1, sizeof *c->self);
  c->names = calloc(HD_CLUSTER_MAX_ROOMS, sizeof *c->names);
  c->cands = calloc(HD_CLUSTER_MAX_NODES + 1, sizeof *c->cands);
  c->views = calloc(HD_CLUSTER_MAX_NODES + 1, sizeof *c->views);
  if (!c->self || !c->names || !c->cands || !c->views) goto oom;
  hd_cluster_node_t *n = c->self;
  snprintf(n->id, sizeof n->id, "%s", cfg->node_id);
  snprintf(n->region, sizeof n->region, "%s", cfg->region);
  snprintf(n->labels, sizeof n->labels, "%s", cfg->labels);
  snprintf(n->url, sizeof n->url, "%s", cfg->announce_url);
  n->capacity = (int64_t)cfg->max_sessions;
  n->cpu_pct = -1;
  n->link_ver = HD_LINK_VERSION; /* peers address our workers in the link header (overlay/link.h) */
  for (int i = 0; i < hd_media_workers_count(workers) && i < HD_CLUSTER_MAX_MEDIA; i++) {
    int port = cfg->rtc_announce_port ? cfg->rtc_announce_port + i : hd_media_workers_port(workers, i);
    snprintf(n->media[n->n_media++], HD_CLUSTER_ADDR_MAX, "%.46s:%d", cfg->rtc_ip, port & 0xffff);
  }
  c->last_cpu_s = -1;
  /* before any link exists: every overlay object copies its values when it is set up */
  if (hd_overlay_params_set(&cfg->overlay, err, errcap) < 0) goto fail;
  if (hd_peer_addrs_parse(&c->peer_addrs, cfg->peer_addrs, err, errcap) < 0) goto fail;
  for (int i = 0; i < c->peer_addrs.n; i++)
    HD_LOGI("cluster", "node link to %s goes to %s (peer_addrs override, not its announced address)",
            c->peer_addrs.e[i].id, c->peer_addrs.e[i].addr);
  if (cfg->redis[0]) {
    hd_cluster_redis_config_t rc = {.node_id = cfg->node_id,
                                    .entry = entry_cb,
                                    .room_gone = room_gone,
                                    .registered = registered,
                                    .room_back = room_back,
                                    .room_ttl_ms = (int)cfg->cluster_room_ttl_ms,
                                    .reap_grace_ms = (int)cfg->cluster_reap_grace_ms,
                                    .peers_read = peers_read_cb,
                                    .ud = c};
    if (hd_redis_url_parse(cfg->redis, &rc.url, err, errcap) < 0) goto fail;
    int r = hd_cluster_redis_start(&c->link, loop, &rc);
    if (r < 0) {
      snprintf(err, errcap, "cluster: cannot start the Redis link: %s", hd_strerror(r));
      goto fail;
    }
    HD_LOGI("cluster", "node %s (region '%s', %s) joining the cluster through Redis at %s:%d", cfg->node_id,
            cfg->region, cfg->announce_url, rc.url.host, rc.url.port);
    uint8_t secret[32];
    if (cluster_secret(cfg, secret) < 0) {
      HD_LOGW("cluster", "no apps configured: rooms cannot span nodes (the node link's keys derive from "
                         "the apps' secrets); add the same \"apps\" to every node's config");
    } else {
      link_job_t j = {.id = cfg->node_id,
                      .secret = secret,
                      .secret_len = sizeof secret,
                      .epoch = ((uint64_t)wall_ms() << 16) | (hd_random_u32() & 0xffff)};
      for (int i = 0; i < hd_media_workers_count(workers); i++) {
        j.measure = i == 0;
        j.worker = i;
        hd_media_workers_call(workers, i, link_init_job, &j);
      }
      c->link_on = 1;
      fast_start(c);
    }
  }
  *out = c;
  return 0;
oom:
  snprintf(err, errcap, "cluster: out of memory");
fail:
  hd_serve_cluster_stop(c);
  return HD_EINVAL;
}

void hd_serve_cluster_stop(hd_serve_cluster_t *c) {
  if (!c) return;
  fast_stop(c);
  rev_stop(c);
  hd_cluster_redis_stop(c->link);
  free(c->self);
  free(c->names);
  free(c->held);
  free(c->cands);
  free(c->views);
  free(c);
}

/* ---- room events once per cluster (docs/overlay.md "Room events") ----
 *
 * room_started / room_finished of a room go through Redis
 * (hd_cluster_redis_room_event): only the first node to hold a room fires
 * room_started, only the last to let it go fires room_finished, and every
 * node learns the sid the first one gave the room (the node's own room then
 * takes it, so joins, the admin API and webhooks name the room alike). While
 * that answer is awaited the room's later events wait behind it, so a
 * webhook receiver still sees room_started before participant_joined; they
 * carry the cluster's sid. Redis down: the node decides alone (once per node,
 * as without a cluster). */

#define REV_MAX_QUEUED 4096 /* events waiting for Redis answers, all rooms; beyond, sent at once */

typedef struct rev_item {
  struct rev_item *next;
  int gate;     /* room_started / room_finished: waits for its answer */
  int resolved; /* its answer came (fire, sid) */
  int fire;
  char sid[24];
  struct rev_room *room;
  struct room_events *ctx;
  hd_webhook_event_type_t type;
  char f[6][HD_WEBHOOK_FIELD_MAX]; /* participant_sid, identity, track sid/kind/source, room_sid */
  unsigned has;
} rev_item_t;

typedef struct rev_room {
  struct rev_room *next;
  char app[HD_WEBHOOK_FIELD_MAX], name[HD_WEBHOOK_FIELD_MAX];
  char sid[HD_WEBHOOK_FIELD_MAX]; /* the cluster's sid of the current instance */
  rev_item_t *head, *tail;
  int pumping; /* rev_pump is running for this room (see there) */
} rev_room_t;

typedef struct room_events {
  hd_serve_cluster_t *c; /* NULL once the cluster side stopped */
  hd_serve_event_fn emit;
  void *ud;
  rev_room_t *rooms;
  int queued;
  int refs; /* Redis answers outstanding + the cluster side itself */
} room_events_t;

static void rev_unref(room_events_t *e) {
  if (--e->refs > 0) return;
  while (e->rooms) {
    rev_room_t *r = e->rooms;
    e->rooms = r->next;
    while (r->head) {
      rev_item_t *it = r->head;
      r->head = it->next;
      free(it);
    }
    free(r);
  }
  free(e);
}

static const char *fld(const rev_item_t *it, int i) { return it->has & (1u << i) ? it->f[i] : NULL; }

static void rev_emit(room_events_t *e, const rev_room_t *r, const rev_item_t *it, const char *sid) {
  hd_webhook_event_t ev = {.type = it->type,
                           .app = r->app,
                           .room_name = r->name,
                           .room_sid = sid[0] ? sid : fld(it, 5),
                           .participant_sid = fld(it, 0),
                           .participant_identity = fld(it, 1),
                           .track_sid = fld(it, 2),
                           .track_kind = fld(it, 3),
                           .track_source = fld(it, 4)};
  e->emit(e->ud, &ev);
}

static void sid_job(hd_node_t *node, void *arg, hd_time_t now) {
  sid_job_t *j = arg;
  hd_node_room_set_sid(node, j->app, j->room, j->was, j->sid, now);
}

/* Emits what can go now: the head's answered gates and the events after them.
 * The sid job below waits for a media worker and then delivers the workers'
 * outboxes, whose events (a participant joining this room, say) come back
 * into hd_serve_cluster_event and append to this room's queue: such a nested
 * call only appends (pumping), this loop takes the new items, and each item
 * leaves the queue before the job runs, so nothing is emitted or freed twice. */
static void rev_pump(room_events_t *e, rev_room_t *r) {
  if (r->pumping) return;
  r->pumping = 1;
  while (r->head && (!r->head->gate || r->head->resolved)) {
    rev_item_t *it = r->head;
    r->head = it->next;
    if (!r->head) r->tail = NULL;
    e->queued--;
    if (it->gate && it->type == HD_WEBHOOK_ROOM_STARTED) {
      const char *local = fld(it, 5) ? fld(it, 5) : "";
      snprintf(r->sid, sizeof r->sid, "%s", it->sid[0] ? it->sid : local);
      /* the room here takes the cluster's sid (or keeps its own): the joins
       * waiting for it go on either way (rooms_sid_settled) */
      if (e->c) {
        sid_job_t j = {.app = r->app, .room = r->name, .was = local, .sid = r->sid};
        hd_media_workers_call(e->c->workers,
                              hd_media_room_worker(r->app, r->name, hd_media_workers_count(e->c->workers)),
                              sid_job, &j);
      }
    }
    if (!it->gate || it->fire) rev_emit(e, r, it, r->sid);
    free(it);
  }
  r->pumping = 0;
  if (!r->head) { /* nothing waits: the room's entry goes (its sid is in the room itself) */
    for (rev_room_t **pp = &e->rooms; *pp; pp = &(*pp)->next)
      if (*pp == r) {
        *pp = r->next;
        break;
      }
    free(r);
  }
}

static void rev_answer(void *ud, int fire, const char *sid) {
  rev_item_t *it = ud;
  room_events_t *e = it->ctx;
  it->resolved = 1;
  it->fire = fire < 0 ? 1 : fire; /* no answer: decided here alone */
  if (sid) snprintf(it->sid, sizeof it->sid, "%s", sid);
  if (e->c) rev_pump(e, it->room);
  rev_unref(e);
}

static void copy_fld(rev_item_t *it, int i, const char *v) {
  if (!v) return;
  snprintf(it->f[i], sizeof it->f[i], "%s", v);
  it->has |= 1u << i;
}

/* A room_started that goes out at once, without asking Redis (the queue is
 * full, out of memory): the joins waiting for the room's sid go on with the
 * node's own (rooms_sid_settled), not after HD_ROOM_SID_WAIT with an error. */
static int rev_release(hd_serve_cluster_t *c, const hd_webhook_event_t *ev) {
  if (ev->type != HD_WEBHOOK_ROOM_STARTED || !ev->room_sid) return 0;
  sid_job_t j = {.app = ev->app, .room = ev->room_name, .was = ev->room_sid, .sid = ev->room_sid};
  hd_media_workers_call(c->workers,
                        hd_media_room_worker(ev->app, ev->room_name, hd_media_workers_count(c->workers)),
                        sid_job, &j);
  return 0;
}

int hd_serve_cluster_event(hd_serve_cluster_t *c, const hd_webhook_event_t *ev, hd_serve_event_fn emit,
                           void *ud) {
  if (!c || !c->link || !ev->app || !ev->room_name) return 0;
  /* a room started here (a client moved from a killed node, say): the other
   * nodes that hold it find it in the registry within one read, and this
   * node finds theirs with the same beat's read, instead of up to a
   * heartbeat each later */
  if (ev->type == HD_WEBHOOK_ROOM_STARTED) c->beat_soon = 1;
  room_events_t *e = c->rev;
  if (!e) {
    if (!(e = c->rev = calloc(1, sizeof *e))) return rev_release(c, ev);
    e->c = c;
    e->refs = 1;
  }
  e->emit = emit;
  e->ud = ud;
  int gate = ev->type == HD_WEBHOOK_ROOM_STARTED || ev->type == HD_WEBHOOK_ROOM_FINISHED;
  rev_room_t *r = e->rooms;
  while (r && (strcmp(r->app, ev->app) || strcmp(r->name, ev->room_name)))
    r = r->next;
  if (!r && !gate) return 0; /* nothing waits: as it is (the room here has the cluster's sid) */
  if (e->queued >= REV_MAX_QUEUED) {
    HD_LOGW("cluster", "%d room events wait for Redis answers: this one goes out at once", e->queued);
    return rev_release(c, ev);
  }
  rev_item_t *it = calloc(1, sizeof *it);
  if (!r) {
    r = calloc(1, sizeof *r);
    if (r) {
      snprintf(r->app, sizeof r->app, "%s", ev->app);
      snprintf(r->name, sizeof r->name, "%s", ev->room_name);
      r->next = e->rooms;
      e->rooms = r;
    }
  }
  if (!it || !r) {
    free(it);
    if (r && !r->head) rev_pump(e, r); /* frees the empty entry */
    return rev_release(c, ev);
  }
  it->type = ev->type;
  it->gate = gate;
  it->room = r;
  it->ctx = e;
  copy_fld(it, 0, ev->participant_sid);
  copy_fld(it, 1, ev->participant_identity);
  copy_fld(it, 2, ev->track_sid);
  copy_fld(it, 3, ev->track_kind);
  copy_fld(it, 4, ev->track_source);
  copy_fld(it, 5, ev->room_sid);
  if (r->tail)
    r->tail->next = it;
  else
    r->head = it;
  r->tail = it;
  e->queued++;
  if (gate) {
    e->refs++;
    int rc = hd_cluster_redis_room_event(c->link, ev->app, ev->room_name, ev->room_sid ? ev->room_sid : "",
                                         ev->type == HD_WEBHOOK_ROOM_STARTED, rev_answer, it);
    if (rc < 0) rev_answer(it, -1, NULL); /* Redis away: this node decides alone */
    return 1;
  }
  rev_pump(e, r);
  return 1;
}

/* The cluster side stops (node shutdown): what still waits goes out as it is
 * (each node for itself), later answers are only freed. */
static void rev_stop(hd_serve_cluster_t *c) {
  room_events_t *e = c->rev;
  if (!e) return;
  for (rev_room_t *r = e->rooms; r; r = r->next)
    for (rev_item_t *it = r->head; it; it = it->next)
      if (!it->gate || !it->resolved || it->fire)
        rev_emit(e, r, it, it->gate && it->sid[0] ? it->sid : r->sid);
  for (rev_room_t *r = e->rooms; r; r = r->next) /* emitted: only freed from now on */
    while (r->head) {
      rev_item_t *it = r->head;
      if (it->gate && !it->resolved) break; /* its answer's callback still holds it */
      r->head = it->next;
      free(it);
    }
  e->c = NULL;
  c->rev = NULL;
  rev_unref(e);
}

/* ---- GET /api/route ---- */

/* Percent-decodes a query value (RFC 3986 §2.1; '+' as space, as forms send
 * it) into dst; -1 if it does not fit or a %XX is malformed. */
static int pct_decode(const char *s, size_t n, char *dst, size_t cap) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (ch == '%') {
      if (i + 2 >= n) return -1;
      char hex[3] = {s[i + 1], s[i + 2], 0};
      char *end;
      long v = strtol(hex, &end, 16);
      if (*end || !hex[0] || !hex[1]) return -1;
      ch = (char)v;
      i += 2;
    } else if (ch == '+') {
      ch = ' ';
    }
    if (k + 1 >= cap) return -1;
    dst[k++] = ch;
  }
  dst[k] = 0;
  return 0;
}

/* The value of `name` in query, decoded; 0 found, 1 absent, -1 bad. */
static int query_get(const char *query, const char *name, char *dst, size_t cap) {
  size_t nl = strlen(name);
  for (const char *p = query; *p;) {
    const char *e = strchr(p, '&');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    if (l > nl && !strncmp(p, name, nl) && p[nl] == '=') return pct_decode(p + nl + 1, l - nl - 1, dst, cap);
    p += l + (e ? 1 : 0);
  }
  dst[0] = 0;
  return 1;
}

static json_t *node_json(const hd_cluster_node_t *n) {
  json_t *media = json_array();
  for (int i = 0; i < n->n_media; i++)
    json_array_append_new(media, json_string(n->media[i]));
  return json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", n->id, "url", n->url, "region", n->region, "labels",
                   n->labels, "media", media);
}

/* c->cands = this node then its live peers; returns how many. */
static int collect(hd_serve_cluster_t *c) {
  gather(c, 0);
  int n = 0;
  c->cands[n++] = *c->self;
  if (c->link) {
    const hd_cluster_peers_t *p = hd_cluster_redis_peers(c->link);
    for (int i = 0; i < p->n && n < HD_CLUSTER_MAX_NODES + 1; i++)
      c->cands[n++] = p->nodes[i];
  }
  return n;
}

void hd_serve_cluster_route(hd_serve_cluster_t *c, const char *app, const char *room, const char *query,
                            hd_http_resp_t *resp) {
  char region[HD_CLUSTER_REGION_MAX], labels[HD_CLUSTER_LABELS_MAX], rtt[1024], why[200];
  hd_route_req_t req = {.app = app, .room = room, .region = region, .labels = labels};
  if (query_get(query, "region", region, sizeof region) < 0 ||
      query_get(query, "labels", labels, sizeof labels) < 0 || query_get(query, "rtt", rtt, sizeof rtt) < 0) {
    hd_http_resp_text(resp, 400,
                      "bad query: region (< %d bytes), labels (k=v,k=v) and rtt (node:ms,...) "
                      "must be percent-encoded values\n",
                      HD_CLUSTER_REGION_MAX);
    return;
  }
  if (hd_route_parse_rtt(rtt, &req, why, sizeof why) < 0) {
    hd_http_resp_text(resp, 400, "%s\n", why);
    return;
  }
  int n = collect(c);
  const char *reason = "load";
  int best = hd_route_choose(c->cands, n, &req, c->views, &reason);
  json_t *cands = json_array();
  for (int i = 0; i < n; i++) {
    const hd_cluster_node_t *x = &c->cands[i];
    const hd_route_cand_t *v = &c->views[i];
    json_t *o = node_json(x);
    json_object_set_new(o, "capacity", json_integer(x->capacity));
    json_object_set_new(o, "sessions", json_integer(x->sessions));
    json_object_set_new(o, "participants", json_integer(x->participants));
    json_object_set_new(o, "load", json_real(v->load));
    json_object_set_new(o, "bitrate_bps", json_integer(x->bitrate_bps));
    json_object_set_new(o, "cpu_pct", json_integer(x->cpu_pct));
    json_object_set_new(o, "draining", json_boolean(x->draining));
    json_object_set_new(o, "eligible", json_boolean(v->eligible));
    json_object_set_new(o, "has_room", json_boolean(v->has_room));
    if (v->rtt_ms >= 0) json_object_set_new(o, "rtt_ms", json_integer(v->rtt_ms));
    json_array_append_new(cands, o);
  }
  json_t *body =
      json_pack("{s:s, s:b, s:o}", "self", c->self->id, "cluster", c->link != NULL, "candidates", cands);
  if (best < 0) {
    json_object_set_new(body, "error", json_string("every node is full or draining; retry later"));
    char *t = json_dumps(body, JSON_COMPACT);
    hd_http_resp_body(resp, 503, "application/json", t ? t : "{}", t ? strlen(t) : 2);
    hd_http_resp_header(resp, "Retry-After", "5");
    free(t);
    json_decref(body);
    return;
  }
  json_object_set_new(body, "node", node_json(&c->cands[best]));
  json_object_set_new(body, "reason", json_string(reason));
  char *t = json_dumps(body, JSON_COMPACT);
  if (t)
    hd_http_resp_body(resp, 200, "application/json", t, strlen(t));
  else
    hd_http_resp_text(resp, 500, "out of memory\n");
  free(t);
  json_decref(body);
}

/* ---- draining ---- */

void hd_serve_cluster_set_draining(hd_serve_cluster_t *c) {
  c->self->draining = 1;
  hd_cluster_redis_beat_now(c->link); /* the others stop routing here within one read (<= 1 s) */
}

void hd_serve_cluster_redirect(hd_serve_cluster_t *c, const char *app, const char *room, char *url,
                               size_t cap) {
  url[0] = 0;
  int n = collect(c);
  /* the rule of /api/route without client RTTs; this node is draining, so
   * never eligible itself (route.h rule 1) */
  hd_route_req_t req = {.app = app ? app : "", .room = room ? room : "", .region = "", .labels = ""};
  const char *reason = "load";
  int best = hd_route_choose(c->cands, n, &req, c->views, &reason);
  if (best > 0) snprintf(url, cap, "%s", c->cands[best].url);
}

int hd_serve_cluster_holder(hd_serve_cluster_t *c, const char *app, const char *room, char *url, size_t cap,
                            int *n_nodes) {
  url[0] = 0;
  *n_nodes = 0;
  if (!c || !c->link) return HD_EUNSUPPORTED;
  int n = collect(c);
  *n_nodes = n;
  uint64_t rh = hd_cluster_room_hash(app, room);
  if (hd_cluster_node_has_room(&c->cands[0], rh)) return 1;
  int best = -1;
  for (int i = 1; i < n; i++)
    if (hd_cluster_node_has_room(&c->cands[i], rh) &&
        (best < 0 || hd_cluster_node_load(&c->cands[i]) < hd_cluster_node_load(&c->cands[best])))
      best = i;
  if (best < 0) return HD_ENOTFOUND;
  snprintf(url, cap, "%s", c->cands[best].url);
  return 0;
}

static int dump(json_t *o, char *out, size_t cap) {
  char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (!t) return -1;
  size_t l = strlen(t);
  int rc = l < cap ? (int)l : -1;
  if (rc >= 0) memcpy(out, t, l + 1);
  free(t);
  return rc;
}

int hd_serve_cluster_drain_error(hd_serve_cluster_t *c, const char *id, const char *app, const char *room,
                                 char *out, size_t cap) {
  char url[HD_CLUSTER_URL_MAX + 8], msg[HD_CLUSTER_URL_MAX + 128];
  hd_serve_cluster_redirect(c, app, room, url, sizeof url);
  if (url[0])
    snprintf(msg, sizeof msg, "node %.63s is draining; join through %s (its /api/route)", c->self->id, url);
  else
    snprintf(msg, sizeof msg, "node %.63s is draining and knows no other node; retry later", c->self->id);
  json_t *o = json_pack("{s:s, s:i, s:s, s:s, s:i}", "type", "error", "code", 503, "reason", "node_draining",
                        "message", msg, "retry_after", url[0] ? 1 : 5);
  if (o && id) json_object_set_new(o, "id", json_string(id));
  if (o && url[0]) json_object_set_new(o, "redirect", json_string(url));
  return dump(o, out, cap);
}

int hd_serve_cluster_drain_left(hd_serve_cluster_t *c, char *out, size_t cap) {
  char url[HD_CLUSTER_URL_MAX + 8], msg[HD_CLUSTER_URL_MAX + 128];
  hd_serve_cluster_redirect(c, "", "", url, sizeof url);
  if (url[0])
    snprintf(msg, sizeof msg, "node %.63s is draining; rejoin through %s (its /api/route)", c->self->id, url);
  else
    snprintf(msg, sizeof msg, "node %.63s is draining; rejoin through your cluster URL", c->self->id);
  json_t *o = json_pack("{s:s, s:s, s:s}", "type", "left", "reason", "node_draining", "message", msg);
  if (o && url[0]) json_object_set_new(o, "redirect", json_string(url));
  return dump(o, out, cap);
}

int hd_serve_cluster_metrics_text(hd_serve_cluster_t *c, char *out, size_t cap) {
  return c && c->link ? hd_cluster_redis_metrics_text(c->link, out, cap) : 0;
}

/* ---- GET /admin/cluster/links (issue 16 item 3) ---- */

static json_t *path_json(const hd_serve_cluster_t *c, const hd_ovl_path_t *r) {
  json_t *via = json_array();
  for (int h = 1; h < r->n_hops; h++)
    json_array_append_new(via, json_string(c->ovl_ids[r->node[h]]));
  return json_pack("{s:o, s:i, s:f, s:f, s:f}", "via", via, "hops", r->n_hops, "cost_ms", r->cost, "delay_ms",
                   r->delay_ms, "residual_loss", r->residual_loss);
}

/* The other workers' refused-datagram and relay counts (admin only: not on the fast check's path). */
static void links_add_job(hd_node_t *node, void *arg, hd_time_t now) {
  hd_serve_cluster_t *c = arg;
  (void)now;
  hd_node_cluster_links_add(node, c->links, c->n_links);
}

/* The measuring worker's links plus the other workers' counts and flows. */
static void gather_all_links(hd_serve_cluster_t *c) {
  gather_links(c);
  for (int i = 1; c->link_on && i < hd_media_workers_count(c->workers); i++)
    hd_media_workers_call(c->workers, i, links_add_job, c);
}

/* Bandwidth of a link (docs/overlay.md "Bandwidth per link"). */
static json_t *bw_json(const hd_link_bwe_stats_t *b) {
  return json_pack("{s:o, s:f, s:f, s:f, s:b, s:f, s:i, s:I, s:I, s:I, s:I, s:I, s:I}", "estimate_kbps",
                   b->flows ? json_real((double)b->estimate_bps / 1000) : json_null(), "target_kbps",
                   (double)b->target_bps / 1000, "acked_kbps", (double)b->acked_bps / 1000, "sent_kbps",
                   (double)b->sent_bps / 1000, "congested", b->congested, "loss", b->loss, "flows", b->flows,
                   "feedbacks", (json_int_t)b->feedbacks, "lost", (json_int_t)b->lost, "late",
                   (json_int_t)b->late, "reports_sent", (json_int_t)b->fb_sent, "unnoted",
                   (json_int_t)b->rx_unnoted, "bad", (json_int_t)b->bad);
}

void hd_serve_cluster_links(hd_serve_cluster_t *c, hd_http_resp_t *resp) {
  if (!c->link) {
    hd_http_resp_text(resp, 404, "this node runs alone (no --redis): it has no node links\n");
    return;
  }
  gather_all_links(c); /* the links as of now; the routes are the last heartbeat's */
  json_t *links = json_array(), *routes = json_array();
  for (int i = 0; i < c->n_links; i++) {
    const hd_node_link_t *l = &c->links[i];
    json_t *samples = json_array();
    for (int k = 0; k < l->n_samples; k++)
      json_array_append_new(samples,
                            l->samples[k].rtt_ms < 0 ? json_null() : json_real(l->samples[k].rtt_ms));
    json_array_append_new(
        links, json_pack("{s:s, s:b, s:b, s:f, s:f, s:f, s:f, s:f, s:f, s:i, s:I, s:I, s:o}", "peer", l->peer,
                         "listed", l->listed, "up", l->st.up, "rtt_ms", l->st.srtt_ms, "rttvar_ms",
                         l->st.rttvar_ms, "min_rtt_ms", l->st.min_rtt_ms, "loss_fwd", l->st.loss_fwd,
                         "loss_rtt", l->st.loss_rtt, "jitter_ms", l->st.jitter_ms, "downs", l->st.downs,
                         "probes_sent", (json_int_t)l->st.probes_sent, "echoes_received",
                         (json_int_t)l->st.echoes_received, "samples_rtt_ms", samples));
    /* this node's own lateness as the prober (not counted as the link's silence) */
    json_t *lo = json_array_get(links, json_array_size(links) - 1);
    json_object_set_new(lo, "late_max_ms", json_real((double)l->st.late_max / 1000.0));
    json_object_set_new(lo, "suspect", json_boolean(l->st.up && l->st.suspect));
    json_object_set_new(lo, "suspects", json_integer(l->st.suspects));
    json_object_set_new(
        json_array_get(links, json_array_size(links) - 1), "relay",
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "sent", (json_int_t)l->relay_sent,
                  "forwarded", (json_int_t)l->relay_forwarded, "detoured", (json_int_t)l->relay_detoured,
                  "received", (json_int_t)l->relay_received, "hop_repaired", (json_int_t)l->hop_repaired,
                  "hop_lost", (json_int_t)l->hop_lost, "hop_resent", (json_int_t)l->hop_resent,
                  "dedup_dropped", (json_int_t)l->dedup_dropped, "dedup_video", (json_int_t)l->dedup_video));
    /* every worker's share (relaying spreads over the workers: docs/overlay.md "Relaying on every worker") */
    json_t *rel = json_object_get(json_array_get(links, json_array_size(links) - 1), "relay");
    json_t *bw = json_array();
    for (int w = 0; w < l->n_workers; w++)
      json_array_append_new(bw, json_pack("{s:i, s:I, s:I, s:I}", "worker", w, "sent",
                                          (json_int_t)l->by_worker[w].sent, "forwarded",
                                          (json_int_t)l->by_worker[w].forwarded, "received",
                                          (json_int_t)l->by_worker[w].received));
    json_object_set_new(rel, "by_worker", bw);
    json_object_set_new(rel, "rescued", json_integer((json_int_t)l->relay_rescued));
    json_object_set_new(json_array_get(links, json_array_size(links) - 1), "rx_replay",
                        json_integer((json_int_t)l->rx_replay));
    json_object_set_new(json_array_get(links, json_array_size(links) - 1), "rx_auth_fail",
                        json_integer((json_int_t)l->rx_auth_fail));
    json_object_set_new(lo, "rx_misaddressed", json_integer((json_int_t)l->rx_misaddressed));
    /* null: no flow to the peer had arrival reports in the last 5 s (nothing sent, or an older peer) */
    json_object_set_new(lo, "bw_estimate_kbps",
                        l->bw.flows ? json_real((double)l->bw.estimate_bps / 1000) : json_null());
    json_object_set_new(lo, "bw", bw_json(&l->bw));
  }
  for (int d = 1; d < c->ovl_n; d++) {
    const hd_ovl_path_t *r = &c->router.cur[d];
    json_t *o = r->n_hops ? path_json(c, r) : json_pack("{s:n}", "via");
    json_object_set_new(o, "to", json_string(c->ovl_ids[d]));
    json_object_set_new(o, "up", json_boolean(r->n_hops > 0));
    for (int k = 0; k < c->n_routes; k++) /* what the workers were given for media */
      if (c->routes[k].dst == hd_link_id_hash(c->ovl_ids[d])) {
        json_t *alt = json_array();
        for (int h = 0; h + 1 < c->routes[k].alt.n; h++)
          for (int m = 1; m < c->ovl_n; m++)
            if (hd_link_id_hash(c->ovl_ids[m]) == c->routes[k].alt.hop[h])
              json_array_append_new(alt, json_string(c->ovl_ids[m]));
        json_object_set_new(o, "alt", c->routes[k].alt.n ? alt : (json_decref(alt), json_null()));
        json_object_set_new(o, "dup_audio", json_boolean(c->routes[k].dup_audio));
        json_object_set_new(o, "dup_all", json_boolean(c->routes[k].dup_all));
      }
    json_array_append_new(routes, o);
  }
  json_t *body = json_pack("{s:s, s:b, s:o, s:o, s:I}", "self", c->self->id, "measuring", c->link_on, "links",
                           links, "routes", routes, "route_changes", (json_int_t)c->router.changes);
  if (body) json_object_set_new(body, "fast_reroutes", json_integer((json_int_t)c->fast_reroutes));
  if (body) json_object_set_new(body, "suspect_pushes", json_integer((json_int_t)c->suspect_pushes));
  if (body)
    json_object_set_new(body, "route_changes_by",
                        json_pack("{s:I, s:I, s:I, s:I}", "broken", (json_int_t)c->router.changes_broken,
                                  "cost", (json_int_t)c->router.changes_cost, "new",
                                  (json_int_t)c->router.changes_new, "gone",
                                  (json_int_t)c->router.changes_gone));
  char *t = body ? json_dumps(body, JSON_COMPACT) : NULL;
  if (t)
    hd_http_resp_body(resp, 200, "application/json", t, strlen(t));
  else
    hd_http_resp_text(resp, 500, "out of memory\n");
  free(t);
  json_decref(body);
}

/* The relay counts of every worker, into a copy (c->links is the fast
 * check's: left alone). */
typedef struct {
  hd_node_link_t *l;
  int n;
} relay_counts_t;

static void relay_counts_job(hd_node_t *node, void *arg, hd_time_t now) {
  relay_counts_t *r = arg;
  if (!r->n)
    r->n = hd_node_cluster_links(node, r->l, HD_CLUSTER_MAX_LINKS, now);
  else
    hd_node_cluster_links_add(node, r->l, r->n);
}

static int relay_metrics(hd_serve_cluster_t *c, char *out, size_t cap) {
  relay_counts_t r = {.l = calloc(HD_CLUSTER_MAX_LINKS, sizeof *r.l)};
  if (!r.l) return HD_ENOMEM;
  for (int i = 0; c->link_on && i < hd_media_workers_count(c->workers); i++)
    hd_media_workers_call(c->workers, i, relay_counts_job, &r);
  int w = snprintf(
      out, cap, "%s",
      "# HELP hudong_link_relay_forwarded_total Relayed datagrams this node forwarded to a peer node "
      "for another, per media worker (docs/overlay.md \"Relaying on every worker\").\n"
      "# TYPE hudong_link_relay_forwarded_total counter\n"
      "# HELP hudong_link_relay_received_total Relayed datagrams received from a peer node, per "
      "media worker.\n"
      "# TYPE hudong_link_relay_received_total counter\n"
      "# HELP hudong_link_relay_rescued_total Datagrams sent into the link to a peer node shortly "
      "before it went suspect or down, sent again round it.\n"
      "# TYPE hudong_link_relay_rescued_total counter\n");
  size_t k = w < 0 ? cap : (size_t)w;
  for (int i = 0; i < r.n && k < cap; i++) {
    const hd_node_link_t *l = &r.l[i];
    for (int j = 0; j < l->n_workers && k < cap; j++) {
      w = snprintf(out + k, cap - k,
                   "hudong_link_relay_forwarded_total{peer=\"%s\",worker=\"%d\"} %llu\n"
                   "hudong_link_relay_received_total{peer=\"%s\",worker=\"%d\"} %llu\n",
                   l->peer, j, (unsigned long long)l->by_worker[j].forwarded, l->peer, j,
                   (unsigned long long)l->by_worker[j].received);
      k = w < 0 ? cap : k + (size_t)w;
    }
    if (k < cap) {
      w = snprintf(out + k, cap - k, "hudong_link_relay_rescued_total{peer=\"%s\"} %llu\n", l->peer,
                   (unsigned long long)l->relay_rescued);
      k = w < 0 ? cap : k + (size_t)w;
    }
  }
  free(r.l);
  return k >= cap ? HD_ENOSPC : (int)k;
}

typedef struct {
  hd_node_link_t *l;
  int n;
} links_tmp_t;

static void links_tmp_job(hd_node_t *node, void *arg, hd_time_t now) {
  links_tmp_t *t = arg;
  (void)now;
  hd_node_cluster_links_add(node, t->l, t->n);
}

/* The measuring worker's links, read afresh into the copy: c->links may
 * already hold the other workers' flows (an admin request adds them), and
 * adding them again would count them twice. */
static void links_tmp_base_job(hd_node_t *node, void *arg, hd_time_t now) {
  links_tmp_t *t = arg;
  t->n = hd_node_cluster_links(node, t->l, HD_CLUSTER_MAX_LINKS, now);
}

static int links_metrics(const links_tmp_t *lt, char *out, size_t cap);

int hd_serve_cluster_links_metrics(hd_serve_cluster_t *c, char *out, size_t cap) {
  if (!c || !c->n_links) return 0;
  /* the links read afresh into a copy, with every worker's bandwidth flows
   * added (a gather into c->links would move the fast check's "before") */
  links_tmp_t lt = {.n = 0, .l = malloc(sizeof(hd_node_link_t) * HD_CLUSTER_MAX_LINKS)};
  if (!lt.l) return HD_ENOMEM;
  if (c->link_on && hd_media_workers_count(c->workers) > 0)
    hd_media_workers_call(c->workers, 0, links_tmp_base_job, &lt);
  for (int i = 1; c->link_on && i < hd_media_workers_count(c->workers); i++)
    hd_media_workers_call(c->workers, i, links_tmp_job, &lt);
  int rc = links_metrics(&lt, out, cap);
  free(lt.l);
  if (rc < 0) return rc;
  int w = relay_metrics(c, out + rc, cap - (size_t)rc);
  return w < 0 ? w : rc + w;
}

static int links_metrics(const links_tmp_t *lt, char *out, size_t cap) {
  size_t k = 0;
  static const char *const head =
      "# HELP hudong_link_rtt_seconds Smoothed RTT of the node link to a peer node (probes every "
      "overlay.probe_interval_ms, 50 ms by default).\n"
      "# TYPE hudong_link_rtt_seconds gauge\n"
      "# HELP hudong_link_loss_ratio Forward loss of the node link's probes to a peer node, 0..1.\n"
      "# TYPE hudong_link_loss_ratio gauge\n"
      "# HELP hudong_link_up 1 while a peer node answers the link's probes.\n"
      "# TYPE hudong_link_up gauge\n"
      "# HELP hudong_link_bw_estimate_bps Available bandwidth to a peer node estimated from the link's "
      "traffic (absent while the link carries nothing).\n"
      "# TYPE hudong_link_bw_estimate_bps gauge\n";
  int w = snprintf(out, cap, "%s", head);
  if (w < 0 || (size_t)w >= cap) return HD_ENOSPC;
  k = (size_t)w;
  for (int i = 0; i < lt->n; i++) {
    const hd_node_link_t *l = &lt->l[i];
    w = snprintf(out + k, cap - k,
                 "hudong_link_rtt_seconds{peer=\"%s\"} %.6f\nhudong_link_loss_ratio{peer=\"%s\"} %.4f\n"
                 "hudong_link_up{peer=\"%s\"} %d\n",
                 l->peer, l->st.srtt_ms / 1000, l->peer, l->st.loss_fwd, l->peer, l->st.up);
    if (w < 0 || (size_t)w >= cap - k) return HD_ENOSPC;
    k += (size_t)w;
    if (!l->bw.flows) continue;
    w = snprintf(out + k, cap - k, "hudong_link_bw_estimate_bps{peer=\"%s\"} %llu\n", l->peer,
                 (unsigned long long)l->bw.estimate_bps);
    if (w < 0 || (size_t)w >= cap - k) return HD_ENOSPC;
    k += (size_t)w;
  }
  return (int)k;
}
