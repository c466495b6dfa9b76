/* Quality alert rules (alerts.h). */
#include "quality/alerts.h"

#include <stdio.h>
#include <string.h>

#include "base/err.h"

static const char *const NAMES[HD_QM_COUNT] = {"video_stall_rate", "audio_stall_rate", "join_success_rate",
                                               "rtt_ms", "loss_rate"};

const char *hd_qmetric_name(hd_qmetric_t m) { return (int)m >= 0 && m < HD_QM_COUNT ? NAMES[m] : "?"; }

int hd_qmetric_parse(const char *name) {
  for (int i = 0; i < HD_QM_COUNT; i++)
    if (!strcmp(name, NAMES[i])) return i;
  return -1;
}

int hd_qalerts_init(hd_qalerts_t *a, const hd_qrule_t *rules, int n, hd_time_t now) {
  memset(a, 0, sizeof *a);
  if (n < 0 || n > HD_QALERT_MAX_RULES) return HD_EINVAL;
  for (int i = 0; i < n; i++)
    if ((int)rules[i].metric < 0 || rules[i].metric >= HD_QM_COUNT || rules[i].window <= 0 ||
        rules[i].windows < 1 || rules[i].silence < 0)
      return HD_EINVAL;
  if (n) memcpy(a->rules, rules, (size_t)n * sizeof *rules);
  a->n_rules = n;
  a->start = now;
  for (int i = 0; i < n; i++)
    a->window_end[i] = now + rules[i].window;
  return 0;
}

static int app_index(hd_qalerts_t *a, const char *app) {
  for (int i = 0; i < a->n_apps; i++)
    if (!strcmp(a->apps[i], app)) return i;
  if (a->n_apps >= HD_QALERT_MAX_APPS) return -1;
  snprintf(a->apps[a->n_apps], sizeof a->apps[0], "%s", app);
  return a->n_apps++;
}

void hd_qalerts_feed(hd_qalerts_t *a, const char *app, hd_qmetric_t m, double num, double den) {
  if (!a->n_rules) return;
  int ai = app_index(a, app);
  if (ai < 0) return;
  for (int r = 0; r < a->n_rules; r++)
    if (a->rules[r].metric == m) {
      a->acc[r][ai].num += num;
      a->acc[r][ai].den += den;
    }
}

int hd_qalerts_poll(hd_qalerts_t *a, hd_time_t now, hd_qfired_t *out, int cap) {
  int n = 0;
  for (int r = 0; r < a->n_rules; r++) {
    const hd_qrule_t *rule = &a->rules[r];
    while (now >= a->window_end[r]) {
      for (int ai = 0; ai < a->n_apps; ai++) {
        hd_qacc_t *x = &a->acc[r][ai];
        /* a window without enough data is neither a breach nor a recovery */
        if (x->den > 0 && x->den >= rule->min_den) {
          double v = x->num / x->den;
          int breach = rule->below ? v < rule->threshold : v > rule->threshold;
          a->streak[r][ai] = breach ? a->streak[r][ai] + 1 : 0;
          if (breach && a->streak[r][ai] >= rule->windows && now >= a->quiet_until[r][ai]) {
            if (n < cap) {
              out[n].rule = rule;
              snprintf(out[n].app, sizeof out[n].app, "%s", a->apps[ai]);
              out[n].value = v;
              n++;
            }
            a->fired++;
            a->quiet_until[r][ai] = now + rule->silence;
            a->streak[r][ai] = 0;
          }
        }
        x->num = x->den = 0;
      }
      a->window_end[r] += rule->window;
    }
  }
  return n;
}

hd_time_t hd_qalerts_next_timeout(const hd_qalerts_t *a) {
  hd_time_t t = HD_TIME_NEVER;
  for (int r = 0; r < a->n_rules; r++)
    t = hd_time_min(t, a->window_end[r]);
  return t;
}
