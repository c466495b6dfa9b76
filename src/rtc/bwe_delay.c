/* Delay-based over-use detection (draft-ietf-rmcat-gcc-02 §5.2-5.4). See
 * bwe_delay.h for the model. */
#include "rtc/bwe_delay.h"

#include <math.h>
#include <string.h>

#define SMOOTHING 0.9  /* exponential smoothing of the accumulated delay */
#define TREND_GAIN 4.0 /* slope scaling before comparing with gamma */
#define MAX_DELTAS 60  /* slope is scaled by min(groups, this) */
#define K_UP 0.0087    /* §5.4 k_u: gamma rises slowly ... */
#define K_DOWN 0.039   /* ... and falls fast (k_d) */
#define THR_INIT 12.5  /* §5.4 initial gamma */
#define THR_MIN 6.0    /* §5.4 clamp of gamma */
#define THR_MAX 600.0
#define THR_SKIP 15.0   /* |m| - gamma above this: a spike, do not adapt */
#define OVERUSE_MS 10.0 /* §5.4 overuse_time_th */
#define RESET_GAP HD_SEC(3)

void hd_bwe_delay_init(hd_bwe_delay_t *d) {
  memset(d, 0, sizeof *d);
  d->threshold = THR_INIT;
  d->thr_last = -1;
  d->over_ms = -1;
  d->usage = HD_BWE_NORMAL;
}

static void reset_filter(hd_bwe_delay_t *d) {
  double thr = d->threshold;
  uint64_t groups = d->groups;
  hd_bwe_delay_init(d);
  d->threshold = thr;
  d->groups = groups;
}

/* §5.4: gamma(i) = gamma(i-1) + dt * k(i) * (|m(i)| - gamma(i-1)). */
static void update_threshold(hd_bwe_delay_t *d, double m, hd_time_t now) {
  if (d->thr_last < 0) d->thr_last = now;
  double am = fabs(m);
  if (am > d->threshold + THR_SKIP) { /* sudden spike (e.g. a route change): ignore */
    d->thr_last = now;
    return;
  }
  double k = am < d->threshold ? K_DOWN : K_UP;
  double dt_ms = (double)(now - d->thr_last) / 1000.0;
  if (dt_ms > 100) dt_ms = 100;
  d->threshold += k * (am - d->threshold) * dt_ms;
  if (d->threshold < THR_MIN) d->threshold = THR_MIN;
  if (d->threshold > THR_MAX) d->threshold = THR_MAX;
  d->thr_last = now;
}

/* §5.4 over-use detector on the modified trend. */
static void detect(hd_bwe_delay_t *d, double send_delta_ms, hd_time_t now) {
  double m = (double)(d->n_deltas < MAX_DELTAS ? d->n_deltas : MAX_DELTAS) * d->trend * TREND_GAIN;
  if (m > d->threshold) {
    d->over_ms = d->over_ms < 0 ? send_delta_ms / 2 : d->over_ms + send_delta_ms;
    d->over_count++;
    /* over-use needs both some duration and a trend still growing */
    if (d->over_ms > OVERUSE_MS && d->over_count > 1 && d->trend >= d->prev_trend) {
      d->over_ms = 0;
      d->over_count = 0;
      d->usage = HD_BWE_OVERUSE;
    }
  } else if (m < -d->threshold) {
    d->over_ms = -1;
    d->over_count = 0;
    d->usage = HD_BWE_UNDERUSE;
  } else {
    d->over_ms = -1;
    d->over_count = 0;
    d->usage = HD_BWE_NORMAL;
  }
  d->prev_trend = d->trend;
  update_threshold(d, m, now);
}

/* Adds one inter-group delay variation to the trendline and re-runs the detector. */
static void trend_update(hd_bwe_delay_t *d, double delta_ms, double send_delta_ms, hd_time_t arr) {
  if (d->n_deltas == 0) d->first_arr = arr;
  if (d->n_deltas < 1000) d->n_deltas++;
  d->acc_ms += delta_ms;
  if (d->st_n < HD_BWE_START_GROUPS) {
    double x = (double)(arr - d->first_arr) / 1000.0, y = d->acc_ms;
    d->st_n++;
    d->st_sx += x, d->st_sy += y, d->st_sxx += x * x, d->st_sxy += x * y, d->st_syy += y * y;
    d->st_last_x = x;
    if (y > d->st_max) d->st_max = y;
  }
  d->smoothed_ms = SMOOTHING * d->smoothed_ms + (1 - SMOOTHING) * d->acc_ms;
  d->xs[d->head] = (double)(arr - d->first_arr) / 1000.0;
  d->ys[d->head] = d->smoothed_ms;
  d->head = (d->head + 1) % HD_BWE_TREND_WINDOW;
  if (d->n_pts < HD_BWE_TREND_WINDOW) d->n_pts++;
  if (d->n_pts == HD_BWE_TREND_WINDOW) {
    /* least-squares slope of smoothed delay over arrival time (ms per ms) */
    double mx = 0, my = 0;
    for (size_t i = 0; i < d->n_pts; i++) {
      mx += d->xs[i];
      my += d->ys[i];
    }
    mx /= (double)d->n_pts;
    my /= (double)d->n_pts;
    double num = 0, den = 0;
    for (size_t i = 0; i < d->n_pts; i++) {
      num += (d->xs[i] - mx) * (d->ys[i] - my);
      den += (d->xs[i] - mx) * (d->xs[i] - mx);
    }
    if (den > 0) d->trend = num / den;
  }
  detect(d, send_delta_ms, arr);
}

uint32_t hd_bwe_delay_start_fit(const hd_bwe_delay_t *d, double *level, double *noise) {
  *level = *noise = 0;
  uint32_t n = d->st_n;
  if (n < 3) return n;
  double mx = d->st_sx / n, my = d->st_sy / n;
  double sxx = d->st_sxx - n * mx * mx, sxy = d->st_sxy - n * mx * my, syy = d->st_syy - n * my * my;
  double b = sxx > 1e-9 ? sxy / sxx : 0;
  double sse = syy - b * sxy;
  *level = my + b * (d->st_last_x - mx);
  *noise = sse > 0 ? sqrt(sse / (n - 2)) : 0;
  return n;
}

hd_bwe_usage_t hd_bwe_delay_on_packet(hd_bwe_delay_t *d, hd_time_t send, hd_time_t arrival) {
  if (!d->have_cur) {
    d->have_cur = 1;
    d->cur_first_send = d->cur_last_send = send;
    d->cur_first_arr = d->cur_last_arr = arrival;
    return d->usage;
  }
  if (send < d->cur_first_send) return d->usage; /* reordered report of an older group */
  if (arrival < d->cur_last_arr - RESET_GAP || arrival > d->cur_last_arr + RESET_GAP) {
    reset_filter(d); /* receiver clock jump or a long pause: start over */
    return hd_bwe_delay_on_packet(d, send, arrival);
  }
  int same = send - d->cur_first_send <= HD_BWE_BURST_US;
  if (!same && d->have_prev) {
    /* §5.2 burst: arrives right after the previous packet and earlier than
     * its send spacing predicts -> queued together upstream */
    hd_time_t arr_gap = arrival - d->cur_last_arr;
    hd_time_t var = (arrival - d->prev_last_arr) - (send - d->prev_last_send);
    if (arr_gap >= 0 && arr_gap < HD_BWE_BURST_US && var < 0) same = 1;
  }
  if (same) {
    if (send > d->cur_last_send) d->cur_last_send = send;
    if (arrival > d->cur_last_arr) d->cur_last_arr = arrival;
    return d->usage;
  }
  /* the current group is complete */
  if (d->have_prev) {
    hd_time_t send_delta = d->cur_last_send - d->prev_last_send;
    hd_time_t arr_delta = d->cur_last_arr - d->prev_last_arr;
    d->groups++;
    trend_update(d, (double)(arr_delta - send_delta) / 1000.0, (double)send_delta / 1000.0, d->cur_last_arr);
  }
  d->have_prev = 1;
  d->prev_last_send = d->cur_last_send;
  d->prev_last_arr = d->cur_last_arr;
  d->cur_first_send = d->cur_last_send = send;
  d->cur_first_arr = d->cur_last_arr = arrival;
  return d->usage;
}
