/* Quality alerts (issue 14 item 5, docs/quality.md "Alerts"): rules of the
 * shape Agora and Twilio use — a metric, a threshold, a window, how many
 * windows in a row must breach, and a silence period after firing — evaluated
 * per app over fixed windows. Sans-IO: the collector feeds numerators and
 * denominators as rows arrive, the control thread's timer polls. */
#ifndef HD_QUALITY_ALERTS_H
#define HD_QUALITY_ALERTS_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

#define HD_QALERT_MAX_RULES 16
#define HD_QALERT_MAX_APPS 32

typedef enum {
  HD_QM_VIDEO_STALL = 0, /* frozen ms / watched ms (client reports) */
  HD_QM_AUDIO_STALL,     /* concealed / received samples (client reports) */
  HD_QM_JOIN_SUCCESS,    /* attempts with first media within 5 s / attempts */
  HD_QM_RTT_MS,          /* mean client-reported RTT */
  HD_QM_LOSS,            /* packets lost / (received + lost), client reports */
  HD_QM_COUNT
} hd_qmetric_t;

typedef struct {
  char name[64];
  hd_qmetric_t metric;
  int below; /* 1 = breach when the value is below the threshold (join success) */
  double threshold;
  hd_time_t window;  /* window length */
  int windows;       /* breaching windows in a row to fire */
  hd_time_t silence; /* after firing, the rule stays quiet this long */
  double min_den;    /* a window with less data than this (e.g. watched ms) is not judged */
} hd_qrule_t;

typedef struct {
  const hd_qrule_t *rule;
  char app[64];
  double value;
} hd_qfired_t;

typedef struct {
  double num, den;
} hd_qacc_t;

typedef struct {
  hd_qrule_t rules[HD_QALERT_MAX_RULES];
  int n_rules;
  char apps[HD_QALERT_MAX_APPS][64];
  int n_apps;
  hd_time_t start;
  /* per rule and app: this window's sums, breaches in a row, quiet until */
  hd_qacc_t acc[HD_QALERT_MAX_RULES][HD_QALERT_MAX_APPS];
  int streak[HD_QALERT_MAX_RULES][HD_QALERT_MAX_APPS];
  hd_time_t quiet_until[HD_QALERT_MAX_RULES][HD_QALERT_MAX_APPS];
  hd_time_t window_end[HD_QALERT_MAX_RULES];
  uint64_t fired;
} hd_qalerts_t;

/* "video_stall_rate", ...; and back (-1 for an unknown name). */
const char *hd_qmetric_name(hd_qmetric_t m);
int hd_qmetric_parse(const char *name);

/* HD_EINVAL for more than HD_QALERT_MAX_RULES rules or a rule with a window,
 * windows count or metric out of range. */
int hd_qalerts_init(hd_qalerts_t *a, const hd_qrule_t *rules, int n, hd_time_t now);
/* Adds to the current window of every rule on metric m for app. */
void hd_qalerts_feed(hd_qalerts_t *a, const char *app, hd_qmetric_t m, double num, double den);
/* Closes the windows that ended by now; writes the rules that fire (at most
 * cap) and returns how many. */
int hd_qalerts_poll(hd_qalerts_t *a, hd_time_t now, hd_qfired_t *out, int cap);
hd_time_t hd_qalerts_next_timeout(const hd_qalerts_t *a);

#endif
