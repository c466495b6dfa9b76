/* Quality collector (issue 14 items 1, 4, 5): the control thread's side of
 * the quality pipeline. It keeps, per /rtc connection, who is reporting (app,
 * room, call, identity) and the last cumulative counters of each track, and
 * per node leg the last node sample; turns both into per-interval rows for
 * the writer (quality/writer.h); counts the four numbers for /metrics; and
 * feeds the alert rules (quality/alerts.h).
 *
 * Caps (docs/quality.md "Limits"): one quality_report and one quality_join
 * per connection per min_report_interval (faster ones are refused with an error that says how
 * often to send), at most max_conns connections tracked, and a node-wide
 * budget of max_rows_per_s client rows (a token bucket, burst 2 s); past any
 * of them the message is refused, nothing is stored and the refusal is
 * counted. Sans-IO: time is passed in. */
#ifndef HD_QUALITY_COLLECTOR_H
#define HD_QUALITY_COLLECTOR_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"
#include "quality/alerts.h"
#include "quality/store.h"
#include "sfu/qsample.h"

#define HD_QCOLLECTOR_MIN_INTERVAL HD_SEC(1)
#define HD_QCOLLECTOR_MAX_CONNS 10000
#define HD_QCOLLECTOR_MAX_ROWS_PER_S 5000.0
#define HD_QCOLLECTOR_MAX_LEGS 50000 /* node legs (participant x direction x track) remembered */

typedef struct {
  hd_time_t min_report_interval; /* 0 = HD_QCOLLECTOR_MIN_INTERVAL */
  size_t max_conns;              /* 0 = HD_QCOLLECTOR_MAX_CONNS */
  double max_rows_per_s;         /* 0 = HD_QCOLLECTOR_MAX_ROWS_PER_S */
  /* Rows out (the writer); returns < 0 when they were not taken (queue full). */
  int (*push)(void *ud, const hd_qrow_t *rows, size_t n);
  void *ud;
} hd_qcollector_config_t;

typedef struct hd_qcollector hd_qcollector_t;

int hd_qcollector_new(hd_qcollector_t **out, const hd_qcollector_config_t *cfg, hd_time_t now);
void hd_qcollector_free(hd_qcollector_t *c);
/* The alert rules evaluated on the collected rows (set them with hd_qalerts_init). */
hd_qalerts_t *hd_qcollector_alerts(hd_qcollector_t *c);

/* Connection conn joined as key (ts: when, unix ms; the first report's
 * interval starts there, 0 = unknown). HD_ENOSPC past max_conns. */
int hd_qcollector_joined(hd_qcollector_t *c, uint64_t conn, const hd_qkey_t *key);
void hd_qcollector_closed(hd_qcollector_t *c, uint64_t conn);
/* A "quality_report" or "quality_join" message (its parsed JSON object) from
 * conn. 0 when taken; HD_ESTATE before join, HD_EPROTO malformed, HD_EAGAIN
 * too soon after the previous one, HD_ENOSPC node budget or store queue full;
 * err says which and what to do. */
int hd_qcollector_message(hd_qcollector_t *c, uint64_t conn, const char *type, const void *json,
                          hd_time_t now, int64_t unix_ms, char *err, size_t errcap);
/* One round of node samples (every leg of every participant of one worker):
 * rows for the changes since the previous round; legs absent from `round`
 * consecutive rounds are forgotten (done by hd_qcollector_node_round_end). */
void hd_qcollector_node(hd_qcollector_t *c, const hd_node_qsample_t *s, size_t n, hd_time_t now,
                        int64_t unix_ms);
/* Called once after every worker's samples of a round were given. */
void hd_qcollector_node_round_end(hd_qcollector_t *c);
/* A participant event for the call timeline (joined, left, ...). */
void hd_qcollector_event(hd_qcollector_t *c, const hd_qkey_t *k, const char *type, const char *detail);
/* Prometheus text of the four numbers (counters and histograms). Length or HD_ENOSPC. */
int hd_qcollector_metrics_text(hd_qcollector_t *c, char *out, size_t cap);

typedef struct {
  uint64_t reports, joins, refused_rate, refused_budget, refused_bad, refused_state, rows_lost;
} hd_qcollector_stats_t;
void hd_qcollector_stats(const hd_qcollector_t *c, hd_qcollector_stats_t *out);

#endif
