/* Route selection over the node overlay (path_select.h). */
#include "overlay/path_select.h"

#include <math.h>
#include <string.h>

#include "base/err.h"
#include "overlay/overlay_params.h"

void hd_ovl_graph_init(hd_ovl_graph_t *g, int n) {
  memset(g, 0, sizeof *g);
  g->n = n < 0 ? 0 : n > HD_OVL_MAX_NODES ? HD_OVL_MAX_NODES : n;
}

static double relay_penalty(double load) {
  if (load <= HD_OVL_LOAD_KNEE) return 0;
  return (load - HD_OVL_LOAD_KNEE) / (1.0 - HD_OVL_LOAD_KNEE) * HD_OVL_LOAD_MS;
}

int hd_ovl_path_price(const hd_ovl_graph_t *g, hd_ovl_path_t *p) {
  if (p->n_hops < 1 || p->n_hops > HD_OVL_MAX_RELAYS + 1) return HD_EINVAL;
  double delay = 0, deliver = 1, extra = 0;
  for (int h = 0; h < p->n_hops; h++) {
    int a = p->node[h], b = p->node[h + 1];
    if (a < 0 || b < 0 || a >= g->n || b >= g->n || a == b) return HD_EINVAL;
    const hd_ovl_link_t *l = &g->link[a][b];
    if (!l->up) return HD_ENOTFOUND;
    double loss = l->loss < 0 ? 0 : l->loss > 1 ? 1 : l->loss;
    delay += l->owd_ms + loss * l->rtt_ms + 2.0 * l->jitter_ms;
    deliver *= 1.0 - pow(loss, HD_OVL_REPAIR_TRIES + 1);
    if (h > 0) { /* a is a relay */
      if (g->load[a] >= HD_OVL_LOAD_MAX) return HD_ENOTFOUND;
      extra += HD_OVL_RELAY_MS + relay_penalty(g->load[a]);
    }
  }
  p->delay_ms = delay;
  p->residual_loss = 1.0 - deliver;
  p->cost = delay + extra + p->residual_loss * 100.0 * HD_OVL_MS_PER_LOSS_PCT;
  return 0;
}

int hd_ovl_path_same(const hd_ovl_path_t *a, const hd_ovl_path_t *b) {
  if (a->n_hops != b->n_hops) return 0;
  for (int i = 0; i <= a->n_hops; i++)
    if (a->node[i] != b->node[i]) return 0;
  return 1;
}

/* 1 when p shares a relay or a link with avoid. */
static int shares(const hd_ovl_path_t *p, const hd_ovl_path_t *avoid) {
  for (int i = 1; i < p->n_hops; i++)
    for (int j = 1; j < avoid->n_hops; j++)
      if (p->node[i] == avoid->node[j]) return 1;
  for (int i = 0; i < p->n_hops; i++)
    for (int j = 0; j < avoid->n_hops; j++)
      if (p->node[i] == avoid->node[j] && p->node[i + 1] == avoid->node[j + 1]) return 1;
  return 0;
}

static void consider(const hd_ovl_graph_t *g, hd_ovl_path_t *p, const hd_ovl_path_t *avoid,
                     hd_ovl_path_t *best) {
  if (avoid && avoid->n_hops && shares(p, avoid)) return;
  if (hd_ovl_path_price(g, p) != 0) return;
  if (!best->n_hops || p->cost < best->cost) *best = *p;
}

int hd_ovl_best_path(const hd_ovl_graph_t *g, int src, int dst, int max_relays, const hd_ovl_path_t *avoid,
                     hd_ovl_path_t *out) {
  memset(out, 0, sizeof *out);
  if (src < 0 || dst < 0 || src >= g->n || dst >= g->n || src == dst) return HD_EINVAL;
  if (max_relays > HD_OVL_MAX_RELAYS) max_relays = HD_OVL_MAX_RELAYS;
  hd_ovl_path_t p = {.n_hops = 1, .node = {src, dst}};
  consider(g, &p, avoid, out);
  for (int r1 = 0; max_relays >= 1 && r1 < g->n; r1++) {
    if (r1 == src || r1 == dst) continue;
    p = (hd_ovl_path_t){.n_hops = 2, .node = {src, r1, dst}};
    consider(g, &p, avoid, out);
    for (int r2 = 0; max_relays >= 2 && r2 < g->n; r2++) {
      if (r2 == src || r2 == dst || r2 == r1) continue;
      p = (hd_ovl_path_t){.n_hops = 3, .node = {src, r1, r2, dst}};
      consider(g, &p, avoid, out);
    }
  }
  return out->n_hops ? 0 : HD_ENOTFOUND;
}

void hd_ovl_router_init(hd_ovl_router_t *r, int self) {
  memset(r, 0, sizeof *r);
  r->self = self;
  const hd_overlay_params_t *op = hd_overlay_params();
  r->hyst_frac = op->hyst_frac;
  r->hyst_ms = op->hyst_ms;
  r->hold = op->hold;
}

const char *hd_ovl_why_name(int why) {
  switch (why) {
  case HD_OVL_WHY_BROKEN: return "broken";
  case HD_OVL_WHY_COST: return "cost";
  case HD_OVL_WHY_NEW: return "new";
  case HD_OVL_WHY_GONE: return "gone";
  default: return "";
  }
}

static void count(hd_ovl_router_t *r, int dst, int why) {
  r->last_why[dst] = why;
  r->changes_broken += why == HD_OVL_WHY_BROKEN;
  r->changes_cost += why == HD_OVL_WHY_COST;
  r->changes_new += why == HD_OVL_WHY_NEW;
  r->changes_gone += why == HD_OVL_WHY_GONE;
}

static int route_one(hd_ovl_router_t *r, const hd_ovl_graph_t *g, int dst, hd_time_t now) {
  hd_ovl_path_t best;
  hd_ovl_path_t *cur = &r->cur[dst];
  if (hd_ovl_best_path(g, r->self, dst, HD_OVL_MAX_RELAYS, NULL, &best) != 0) {
    int had = cur->n_hops != 0;
    memset(cur, 0, sizeof *cur);
    r->cand[dst].n_hops = 0;
    if (had) count(r, dst, HD_OVL_WHY_GONE);
    return had;
  }
  /* no route, or the current one is broken: take the best at once */
  if (!cur->n_hops || hd_ovl_path_price(g, cur) != 0) {
    count(r, dst, cur->n_hops ? HD_OVL_WHY_BROKEN : HD_OVL_WHY_NEW);
    *cur = best;
    r->cand[dst].n_hops = 0;
    return 1;
  }
  if (hd_ovl_path_same(&best, cur) ||
      !(best.cost < cur->cost * (1.0 - r->hyst_frac) && best.cost < cur->cost - r->hyst_ms)) {
    r->cand[dst].n_hops = 0; /* nothing clearly better: the watch restarts */
    return 0;
  }
  if (!r->cand[dst].n_hops || !hd_ovl_path_same(&r->cand[dst], &best)) {
    r->cand[dst] = best;
    r->cand_since[dst] = now;
    return 0;
  }
  if (now - r->cand_since[dst] < r->hold) return 0;
  count(r, dst, HD_OVL_WHY_COST);
  *cur = best;
  r->cand[dst].n_hops = 0;
  return 1;
}

int hd_ovl_router_update(hd_ovl_router_t *r, const hd_ovl_graph_t *g, hd_time_t now) {
  int changed = 0;
  for (int d = 0; d < g->n; d++)
    if (d != r->self) changed += route_one(r, g, d, now);
  r->changes += (uint64_t)changed;
  return changed;
}
