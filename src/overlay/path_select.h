/* Route selection over the node overlay (issue 16 item 2; docs/overlay.md
 * "Routes"), sans-IO: the measured links of every node pair in, for each
 * destination the best path with at most two relay nodes out, with
 * hysteresis so that noise does not flap routes.
 *
 * The cost of a path is a one-way delay in milliseconds with loss and load
 * priced in:
 *   per hop:   owd + loss * rtt_hop + 2 * jitter
 *              (each hop repairs its own losses with NACK/RTX: a lost packet
 *              costs about one RTT *of that hop*, which is why two short hops
 *              can beat one long lossy one; jitter twice because a receiver
 *              buffers about that much)
 *   residual:  a hop's loss left after HD_OVL_REPAIR_TRIES retransmissions is
 *              loss^(tries+1); the path's residual compounds over hops and
 *              costs HD_OVL_MS_PER_LOSS_PCT per percent
 *   relays:    HD_OVL_RELAY_MS each (the forward itself, and a tie-breaker
 *              toward fewer hops), plus a load penalty above
 *              HD_OVL_LOAD_KNEE; a relay at HD_OVL_LOAD_MAX or above is never
 *              used, nor is a link that is down.
 *
 * Hysteresis (hd_ovl_router_update): a route whose path has a down link is
 * replaced at once; otherwise a different path replaces it only when it is
 * cheaper by HD_OVL_HYST_FRAC and HD_OVL_HYST_MS and stays so for
 * HD_OVL_HOLD. */
#ifndef HD_OVERLAY_PATH_SELECT_H
#define HD_OVERLAY_PATH_SELECT_H
#include <stdint.h>

#include "base/time.h"

#define HD_OVL_MAX_NODES 32
#define HD_OVL_MAX_RELAYS 2
#define HD_OVL_REPAIR_TRIES 2
#define HD_OVL_MS_PER_LOSS_PCT 50.0 /* 1% residual loss weighs as 50 ms of delay */
#define HD_OVL_RELAY_MS 1.0
#define HD_OVL_LOAD_KNEE 0.7 /* relay load (0..1) above which a relay costs more ... */
#define HD_OVL_LOAD_MS 100.0 /* ... up to this many ms at full load */
#define HD_OVL_LOAD_MAX 0.95 /* never relay through a node this loaded */
/* Defaults; the process's values are overlay_params.h's (config "overlay"). */
#define HD_OVL_HYST_FRAC 0.10 /* a challenger must be 10% cheaper (overlay.hysteresis_fraction) ... */
#define HD_OVL_HYST_MS 5.0    /* ... and 5 ms cheaper (overlay.hysteresis_ms) ... */
#define HD_OVL_HOLD HD_SEC(1) /* ... for this long (overlay.hold_ms) */
/* How often the control thread reads the measuring worker's link states
 * between heartbeats, to move routes off a link that went down at once
 * (overlay.check_interval_ms; cmd/serve_cluster.c). */
#define HD_OVL_CHECK_INTERVAL HD_MS(25)

typedef struct {
  int up;           /* measured and answering */
  double owd_ms;    /* one-way delay (srtt / 2) */
  double rtt_ms;    /* of this hop, for the repair cost */
  double loss;      /* forward loss 0..1 */
  double jitter_ms; /* forward jitter */
} hd_ovl_link_t;

typedef struct {
  int n;                                                  /* nodes 0..n-1 */
  hd_ovl_link_t link[HD_OVL_MAX_NODES][HD_OVL_MAX_NODES]; /* [from][to] */
  double load[HD_OVL_MAX_NODES];                          /* 0..1, as a relay */
} hd_ovl_graph_t;

typedef struct {
  int n_hops;                      /* links: 1 = direct; 0 = no path */
  int node[HD_OVL_MAX_RELAYS + 2]; /* src, relays..., dst */
  double cost;                     /* ms-equivalent, lower is better */
  double delay_ms;                 /* expected one-way delay incl. repair */
  double residual_loss;            /* after per-hop repair, 0..1 */
} hd_ovl_path_t;

/* The graph with n nodes and no link up. */
void hd_ovl_graph_init(hd_ovl_graph_t *g, int n);

/* Prices a given path (node[0..n_hops]) on g into p->cost/delay/residual.
 * Returns 0, or HD_ENOTFOUND when a link is down or a relay is too loaded. */
int hd_ovl_path_price(const hd_ovl_graph_t *g, hd_ovl_path_t *p);

/* The cheapest path src -> dst with at most max_relays relays (0..2).
 * avoid (may be NULL): a path whose relays and links it must not share (for
 * a second, disjoint path). Returns 0, or HD_ENOTFOUND when no path is up. */
int hd_ovl_best_path(const hd_ovl_graph_t *g, int src, int dst, int max_relays, const hd_ovl_path_t *avoid,
                     hd_ovl_path_t *out);

/* 1 when a and b go through the same nodes. */
int hd_ovl_path_same(const hd_ovl_path_t *a, const hd_ovl_path_t *b);

typedef struct {
  int self;
  double hyst_frac, hyst_ms; /* overlay_params.h, taken at init */
  hd_time_t hold;
  hd_ovl_path_t cur[HD_OVL_MAX_NODES];  /* the route in use per destination (n_hops 0: none) */
  hd_ovl_path_t cand[HD_OVL_MAX_NODES]; /* a cheaper path being watched */
  hd_time_t cand_since[HD_OVL_MAX_NODES];
  uint64_t changes; /* routes replaced, all destinations */
  /* the same changes by why (they add up to changes): */
  uint64_t changes_broken;        /* the route's path lost a link (down) or its relay got too loaded */
  uint64_t changes_cost;          /* a cheaper path held its lead for the hold (hysteresis) */
  uint64_t changes_new;           /* a route appeared where there was none */
  uint64_t changes_gone;          /* no path left at all */
  int last_why[HD_OVL_MAX_NODES]; /* HD_OVL_WHY_* of each destination's last change */
} hd_ovl_router_t;

enum { HD_OVL_WHY_NONE, HD_OVL_WHY_BROKEN, HD_OVL_WHY_COST, HD_OVL_WHY_NEW, HD_OVL_WHY_GONE };
/* "broken", "cost", "new", "gone" ("" for none). */
const char *hd_ovl_why_name(int why);

void hd_ovl_router_init(hd_ovl_router_t *r, int self);

/* Re-evaluates every destination on the current measurements. Returns how
 * many routes changed (a route appearing or vanishing counts). */
int hd_ovl_router_update(hd_ovl_router_t *r, const hd_ovl_graph_t *g, hd_time_t now);

#endif
