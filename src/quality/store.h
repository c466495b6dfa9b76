/* Quality store (issue 14 item 2, docs/quality.md "Storage"): the rows the
 * quality pipeline keeps — node samples per session leg and track, client
 * getStats summaries, join attempts, participant events and fired alerts —
 * and the queries behind the quality API, in a real database.
 *
 * Two backends with the same schema and the very same SQL text: SQLite (the
 * default, a file next to the RTM database, WAL) and PostgreSQL through libpq
 * (quality_db = "postgres://..."). Placeholders are written $1, $2, ...,
 * which both engines accept (the SQLite backend binds them by name, as SQLite
 * numbers "$NNN" parameters by first appearance). Ratios are never computed in SQL (integer
 * division differs between the two): queries return sums, C divides.
 *
 * A store is one connection, used by one thread at a time: the writer thread
 * (quality/writer.h) and the control thread's queries take the store's mutex. */
#ifndef HD_QUALITY_STORE_H
#define HD_QUALITY_STORE_H
#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define HD_QSTORE_ROWS_MAX 20000 /* rows one time-series query returns at most */

enum {
  HD_QROW_NODE = 0,
  HD_QROW_CLIENT,
  HD_QROW_JOIN,
  HD_QROW_EVENT,
  HD_QROW_ALERT,
  HD_QROW_DELIVERY,
  HD_QROW_KINDS
};

/* Who and where, common to every row. Strings are NUL-terminated. */
typedef struct {
  int64_t ts; /* unix milliseconds (end of the sampled interval) */
  char app[64], room[128], room_sid[24], identity[128], participant_sid[24];
} hd_qkey_t;

/* One node sample of one session leg and track over interval_ms. dir "up" =
 * the participant's publisher leg (the node receives), "down" = its subscriber
 * leg (the node sends). Counts are deltas over the interval. */
typedef struct {
  char dir[8], track_sid[24], kind[8], layer[16];
  int64_t interval_ms, bitrate_bps, packets, lost, lost_after_repair, nack, rtx, pli, downlink_bps;
  double rtt_ms, jitter_ms; /* < 0 = unknown */
} hd_qnode_t;

/* One client report of one received track over interval_ms (deltas of the
 * browser's cumulative getStats counters, quality/report.h). */
typedef struct {
  char track_sid[24], kind[8], candidate[16];
  int64_t interval_ms, bitrate_bps, packets, lost, freezes, freeze_ms, watched_ms, frames_decoded,
      frames_dropped, concealed_samples, total_samples;
  double jb_delay_ms, rtt_ms; /* < 0 = unknown */
} hd_qclient_t;

/* One join attempt as the client reports it. outcome "ok" or "failed";
 * first_media_ms = attempt start to first decoded remote media (-1 = none). */
typedef struct {
  char attempt_id[40], outcome[12], reason[128];
  int64_t join_ms, first_media_ms;
} hd_qjoin_t;

typedef struct {
  char type[24];    /* "joined", "left", "reconnect", "mute", "unmute", "layer" ... */
  char detail[128]; /* free text for the timeline */
} hd_qevent_t;

typedef struct {
  char rule[64], metric[32];
  double value, threshold;
  int64_t window_s;
} hd_qalert_t;

/* RTM delivery of one app over interval_ms (the broker's per-app counters,
 * rtm/broker.h hd_rtm_delivery_t, as deltas; docs/quality.md "Delivery
 * rate"). Latency buckets: acked deliveries with publish -> ack latency up to
 * hd_qdlat_le_ms[i] (and above the previous bound); the last one is over 10 s. */
#define HD_QDLAT_BUCKETS 11
extern const int64_t hd_qdlat_le_ms[HD_QDLAT_BUCKETS - 1];
typedef struct {
  int64_t interval_ms, sent, owed, acked, overflow, gone, expired, lat_sum_us;
  int64_t lat[HD_QDLAT_BUCKETS];
} hd_qdelivery_t;

typedef struct {
  int kind; /* HD_QROW_* */
  hd_qkey_t k;
  union {
    hd_qnode_t node;
    hd_qclient_t client;
    hd_qjoin_t join;
    hd_qevent_t event;
    hd_qalert_t alert;
    hd_qdelivery_t delivery;
  } u;
} hd_qrow_t;

/* A query parameter: 'i' integer, 'd' double, 's' string. */
typedef struct {
  char t;
  int64_t i;
  double d;
  const char *s;
} hd_qparam_t;

/* Called per result row; vals[c] is the column as text, NULL for SQL NULL. */
typedef void (*hd_qrow_fn)(void *ud, int ncols, const char *const *vals);

typedef struct hd_qstore hd_qstore_t;

/* Opens `url`: "postgres://..." / "postgresql://..." = PostgreSQL, anything
 * else = a SQLite file path (":memory:" allowed). Creates the schema. On
 * failure err says why (a PostgreSQL server that does not answer, a file that
 * cannot be opened) and the result is HD_EIO / HD_EINVAL / HD_ENOMEM. */
int hd_qstore_open(hd_qstore_t **out, const char *url, char *err, size_t errcap);
void hd_qstore_close(hd_qstore_t *s);
/* "sqlite" or "postgres". */
const char *hd_qstore_backend(const hd_qstore_t *s);

/* Writes rows in one transaction. Returns the count written or HD_EIO. */
int hd_qstore_write(hd_qstore_t *s, const hd_qrow_t *rows, size_t n);
/* Deletes rows older than before_ms (unix ms) from every table. Rows deleted or HD_EIO. */
int hd_qstore_prune(hd_qstore_t *s, int64_t before_ms);

/* ---- queries (docs/quality.md "API"); each returns a new JSON object, NULL on a store error ---- */
/* The four numbers for app over [from_ms, to_ms), plus a series in buckets of bucket_ms. */
json_t *hd_qstore_summary(hd_qstore_t *s, const char *app, int64_t from_ms, int64_t to_ms, int64_t bucket_ms);
/* Calls (room sessions) seen in the range, newest first, with their quality. */
json_t *hd_qstore_calls(hd_qstore_t *s, const char *app, int64_t from_ms, int64_t to_ms, int limit);
/* One call: participants, their joins and events, and the time series per participant and track. */
json_t *hd_qstore_call(hd_qstore_t *s, const char *app, const char *room_sid);
/* One user's calls in the range with their quality. */
json_t *hd_qstore_user(hd_qstore_t *s, const char *app, const char *identity, int64_t from_ms, int64_t to_ms);
/* The n sessions (participant in a call) with the worst stall rate in the range. */
json_t *hd_qstore_worst(hd_qstore_t *s, const char *app, int64_t from_ms, int64_t to_ms, int n);
/* Alerts fired in the range, newest first. */
json_t *hd_qstore_alerts(hd_qstore_t *s, const char *app, int64_t from_ms, int64_t to_ms);

/* Raw access for tests and the benchmark: runs sql with params, row_fn per row. */
int hd_qstore_exec(hd_qstore_t *s, const char *sql, const hd_qparam_t *p, int np, hd_qrow_fn row_fn,
                   void *ud);

/* ---- backends (store_sqlite.c, store_pg.c) ---- */
typedef struct {
  const char *name;
  int (*exec)(void *db, const char *sql, const hd_qparam_t *p, int np, hd_qrow_fn fn, void *ud, char *err,
              size_t errcap);
  void (*close)(void *db);
} hd_qbackend_t;
int hd_qstore_sqlite_open(const char *path, void **db, const hd_qbackend_t **ops, char *err, size_t errcap);
int hd_qstore_pg_open(const char *url, void **db, const hd_qbackend_t **ops, char *err, size_t errcap);

#endif
