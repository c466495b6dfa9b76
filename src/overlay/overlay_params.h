/* The overlay's tunables (issue 16; docs/overlay.md "Tuning the overlay"):
 * probe period and link-down rule of the link meter, the control thread's
 * check for a fast reroute, make-before-break overlap, duplicate audio,
 * per-hop repair timers and cache, and the router's hysteresis. Each has a
 * default (the constants below) and a config key under "overlay" in
 * `hudong serve`'s config file (src/cmd/config.c).
 *
 * One set per process: `hudong serve` validates and sets it once at start,
 * before any link exists (hd_overlay_params_set); every overlay object copies
 * what it needs when it is set up (hd_link_meter_init, hd_hop_rx_init,
 * hd_hop_tx_*, hd_relay_route_init, hd_ovl_router_init), so the packet path
 * reads its own copy and nothing is shared between threads after start. */
#ifndef HD_OVERLAY_OVERLAY_PARAMS_H
#define HD_OVERLAY_OVERLAY_PARAMS_H
#include <stddef.h>

#include "base/time.h"

typedef struct {
  /* link measurement (link_meter.h) */
  hd_time_t probe_interval; /* probe period per link: probe_interval_ms, default 50 */
  int down_probes;        /* probes in a row without an echo (plus RTT + 4 RTTVAR) before a link is down: 3 */
  int up_echoes;          /* echoes of probes in a row before a down link is up again: 3 */
  hd_time_t down_confirm; /* a suspect link is down after this much more silence: 500 ms */
  hd_time_t check_interval; /* the control thread reads the links this often for a fast reroute: 25 ms */
  /* relaying (relay.h) */
  hd_time_t relay_overlap; /* make-before-break: the old path keeps carrying media this long: 1000 ms */
  double dup_audio_loss;   /* duplicate audio on a second path above this path loss (0..1): 0.02 */
  int hop_cache;           /* relay datagrams kept per next hop and worker for hop repair: 512 */
  hd_time_t hop_cache_age; /* older kept datagrams are not resent: 1000 ms */
  hd_time_t hop_reorder;   /* wait before the first HOP_NACK: 5 ms */
  hd_time_t hop_min_retry; /* at least this long between two HOP_NACKs of one hole: 20 ms */
  hd_time_t hop_give_up;   /* a hole older than this is lost for the hop: 1000 ms */
  int hop_max_tries;       /* HOP_NACKs per missing datagram: 3 */
  int rescue_max; /* datagrams re-sent round a link that went suspect, per link and worker (0: off): 256 */
  /* routes (path_select.h) */
  double hyst_frac; /* a challenger path must be this much cheaper (fraction): 0.10 ... */
  double hyst_ms;   /* ... and this many ms cheaper: 5 ... */
  hd_time_t hold;   /* ... for this long: 1000 ms */
} hd_overlay_params_t;

/* Caps of the tunables (also what hd_overlay_params_check enforces). */
#define HD_OVL_HOP_CACHE_MAX 8192 /* ~12 MB per next hop and worker at 1472 bytes a datagram */

void hd_overlay_params_default(hd_overlay_params_t *p);
/* 0, or HD_EINVAL with err saying which key is out of which range. */
int hd_overlay_params_check(const hd_overlay_params_t *p, char *err, size_t cap);
/* The process's set: the defaults until hd_overlay_params_set. */
const hd_overlay_params_t *hd_overlay_params(void);
/* Checks p and makes it the process's set. Call once at start, before any
 * overlay object is set up and before other threads read it. HD_EINVAL. */
int hd_overlay_params_set(const hd_overlay_params_t *p, char *err, size_t cap);

#endif
