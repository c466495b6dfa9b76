/* The overlay's tunables (overlay_params.h). */
#include "overlay/overlay_params.h"

#include <stdio.h>

#include "base/err.h"
#include "overlay/link_meter.h"
#include "overlay/path_select.h"
#include "overlay/relay.h"

#define DEFAULTS                                                                                             \
  {                                                                                                          \
    .probe_interval = HD_LINK_METER_DEFAULT_INTERVAL, .down_probes = HD_LINK_METER_DOWN_PROBES,              \
    .up_echoes = HD_LINK_METER_UP_ECHOES, .down_confirm = HD_LINK_METER_DOWN_CONFIRM,                        \
    .check_interval = HD_OVL_CHECK_INTERVAL, .relay_overlap = HD_RELAY_OVERLAP,                              \
    .dup_audio_loss = HD_RELAY_DUP_LOSS, .hop_cache = HD_HOP_CACHE, .hop_cache_age = HD_HOP_CACHE_AGE,       \
    .hop_reorder = HD_HOP_REORDER, .hop_min_retry = HD_HOP_MIN_RETRY, .hop_give_up = HD_HOP_GIVE_UP,         \
    .hop_max_tries = HD_HOP_MAX_TRIES, .rescue_max = HD_RELAY_RESCUE_MAX, .hyst_frac = HD_OVL_HYST_FRAC,     \
    .hyst_ms = HD_OVL_HYST_MS, .hold = HD_OVL_HOLD                                                           \
  }

void hd_overlay_params_default(hd_overlay_params_t *p) { *p = (hd_overlay_params_t)DEFAULTS; }

static int range_ms(const char *key, hd_time_t v, long lo, long hi, char *err, size_t cap) {
  if (v >= HD_MS(lo) && v <= HD_MS(hi)) return 0;
  snprintf(err, cap, "overlay.%s must be in [%ld, %ld] ms (got %lld)", key, lo, hi, (long long)(v / 1000));
  return HD_EINVAL;
}

static int range_int(const char *key, long v, long lo, long hi, char *err, size_t cap) {
  if (v >= lo && v <= hi) return 0;
  snprintf(err, cap, "overlay.%s must be an integer in [%ld, %ld] (got %ld)", key, lo, hi, v);
  return HD_EINVAL;
}

static int range_f(const char *key, double v, double lo, double hi, char *err, size_t cap) {
  if (v >= lo && v <= hi) return 0;
  snprintf(err, cap, "overlay.%s must be in [%g, %g] (got %g)", key, lo, hi, v);
  return HD_EINVAL;
}

int hd_overlay_params_check(const hd_overlay_params_t *p, char *err, size_t cap) {
  /* the probe period: fast enough to see a dead link in well under a second,
   * slow enough that the meter's outstanding-probe ring covers its 1 s timeout */
  if (range_ms("probe_interval_ms", p->probe_interval, 20, 1000, err, cap) ||
      range_int("down_probes", p->down_probes, 2, 20, err, cap) ||
      range_int("up_echoes", p->up_echoes, 1, 20, err, cap) ||
      range_ms("down_confirm_ms", p->down_confirm, 0, 10000, err, cap) ||
      range_ms("check_interval_ms", p->check_interval, 5, 1000, err, cap) ||
      range_ms("relay_overlap_ms", p->relay_overlap, 0, 10000, err, cap) ||
      range_f("dup_audio_loss", p->dup_audio_loss, 0, 1, err, cap) ||
      range_int("hop_cache", p->hop_cache, 16, HD_OVL_HOP_CACHE_MAX, err, cap) ||
      range_ms("hop_cache_age_ms", p->hop_cache_age, 50, 10000, err, cap) ||
      range_ms("hop_reorder_ms", p->hop_reorder, 0, 500, err, cap) ||
      range_ms("hop_min_retry_ms", p->hop_min_retry, 1, 1000, err, cap) ||
      range_ms("hop_give_up_ms", p->hop_give_up, 50, 10000, err, cap) ||
      range_int("hop_max_tries", p->hop_max_tries, 1, 10, err, cap) ||
      range_int("rescue_max", p->rescue_max, 0, HD_OVL_HOP_CACHE_MAX, err, cap) ||
      range_f("hysteresis_fraction", p->hyst_frac, 0, 0.9, err, cap) ||
      range_f("hysteresis_ms", p->hyst_ms, 0, 1000, err, cap) ||
      range_ms("hold_ms", p->hold, 0, 60000, err, cap))
    return HD_EINVAL;
  if (p->probe_interval * HD_LINK_METER_OUTSTANDING < HD_LINK_METER_PROBE_TIMEOUT) {
    snprintf(err, cap,
             "overlay.probe_interval_ms: %lld ms is too short for the meter's %d outstanding probes",
             (long long)(p->probe_interval / 1000), HD_LINK_METER_OUTSTANDING);
    return HD_EINVAL;
  }
  return 0;
}

/* Written only by hd_overlay_params_set, at start, before other threads read it. */
static hd_overlay_params_t g_params = DEFAULTS;

const hd_overlay_params_t *hd_overlay_params(void) { return &g_params; }

int hd_overlay_params_set(const hd_overlay_params_t *p, char *err, size_t cap) {
  int rc = hd_overlay_params_check(p, err, cap);
  if (rc < 0) return rc;
  g_params = *p;
  return 0;
}
