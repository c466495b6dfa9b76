/* Quality store: schema, batched writes and the queries of the quality API
 * (store.h). The SQL is shared by both backends; see store.h for the rules
 * that keep it portable. */
#include "quality/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"

struct hd_qstore {
  void *db;
  const hd_qbackend_t *ops;
  pthread_mutex_t mu;
  char err[512];
};

static const char *const SCHEMA[] = {
    "CREATE TABLE IF NOT EXISTS q_node (ts BIGINT NOT NULL, app TEXT NOT NULL, room TEXT NOT NULL, "
    "room_sid TEXT NOT NULL, identity TEXT NOT NULL, psid TEXT NOT NULL, dir TEXT NOT NULL, track_sid TEXT "
    "NOT "
    "NULL, kind TEXT NOT NULL, layer TEXT NOT NULL, interval_ms BIGINT, bitrate_bps BIGINT, packets BIGINT, "
    "lost BIGINT, lost_after BIGINT, nack BIGINT, rtx BIGINT, pli BIGINT, downlink_bps BIGINT, rtt_ms DOUBLE "
    "PRECISION, jitter_ms DOUBLE PRECISION)",
    "CREATE INDEX IF NOT EXISTS q_node_app_ts ON q_node(app, ts)",
    "CREATE INDEX IF NOT EXISTS q_node_call ON q_node(app, room_sid, ts)",
    "CREATE TABLE IF NOT EXISTS q_client (ts BIGINT NOT NULL, app TEXT NOT NULL, room TEXT NOT NULL, "
    "room_sid TEXT NOT NULL, identity TEXT NOT NULL, psid TEXT NOT NULL, track_sid TEXT NOT NULL, kind TEXT "
    "NOT "
    "NULL, candidate TEXT NOT NULL, interval_ms BIGINT, bitrate_bps BIGINT, packets BIGINT, lost BIGINT, "
    "freezes BIGINT, freeze_ms BIGINT, watched_ms BIGINT, frames_decoded BIGINT, frames_dropped BIGINT, "
    "concealed BIGINT, samples BIGINT, jb_delay_ms DOUBLE PRECISION, rtt_ms DOUBLE PRECISION)",
    "CREATE INDEX IF NOT EXISTS q_client_app_ts ON q_client(app, ts)",
    "CREATE INDEX IF NOT EXISTS q_client_call ON q_client(app, room_sid, ts)",
    "CREATE INDEX IF NOT EXISTS q_client_user ON q_client(app, identity, ts)",
    "CREATE TABLE IF NOT EXISTS q_join (ts BIGINT NOT NULL, app TEXT NOT NULL, room TEXT NOT NULL, room_sid "
    "TEXT NOT NULL, identity TEXT NOT NULL, psid TEXT NOT NULL, attempt_id TEXT NOT NULL, outcome TEXT NOT "
    "NULL, "
    "reason TEXT NOT NULL, join_ms BIGINT, first_media_ms BIGINT)",
    "CREATE INDEX IF NOT EXISTS q_join_app_ts ON q_join(app, ts)",
    "CREATE TABLE IF NOT EXISTS q_event (ts BIGINT NOT NULL, app TEXT NOT NULL, room TEXT NOT NULL, room_sid "
    "TEXT NOT NULL, identity TEXT NOT NULL, psid TEXT NOT NULL, type TEXT NOT NULL, detail TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS q_event_app_ts ON q_event(app, ts)",
    "CREATE INDEX IF NOT EXISTS q_event_call ON q_event(app, room_sid, ts)",
    "CREATE TABLE IF NOT EXISTS q_alert (ts BIGINT NOT NULL, app TEXT NOT NULL, room TEXT NOT NULL, room_sid "
    "TEXT NOT NULL, identity TEXT NOT NULL, psid TEXT NOT NULL, rule TEXT NOT NULL, metric TEXT NOT NULL, "
    "value DOUBLE PRECISION, threshold DOUBLE PRECISION, window_s BIGINT)",
    "CREATE INDEX IF NOT EXISTS q_alert_app_ts ON q_alert(app, ts)",
    /* RTM delivery per app and sample interval (no room: messaging is per app) */
    "CREATE TABLE IF NOT EXISTS q_delivery (ts BIGINT NOT NULL, app TEXT NOT NULL, room TEXT NOT NULL, "
    "room_sid "
    "TEXT NOT NULL, identity TEXT NOT NULL, psid TEXT NOT NULL, interval_ms BIGINT, sent BIGINT, owed "
    "BIGINT, "
    "acked BIGINT, overflow BIGINT, gone BIGINT, expired BIGINT, lat_sum_us BIGINT, l10 BIGINT, l25 BIGINT, "
    "l50 BIGINT, l100 BIGINT, l250 BIGINT, l500 BIGINT, l1000 BIGINT, l2500 BIGINT, l5000 BIGINT, l10000 "
    "BIGINT, linf BIGINT)",
    "CREATE INDEX IF NOT EXISTS q_delivery_app_ts ON q_delivery(app, ts)",
};

const int64_t hd_qdlat_le_ms[HD_QDLAT_BUCKETS - 1] = {10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};

static const char INS_NODE[] =
    "INSERT INTO q_node (ts, app, room, room_sid, identity, psid, dir, track_sid, kind, layer, interval_ms, "
    "bitrate_bps, packets, lost, lost_after, nack, rtx, pli, downlink_bps, rtt_ms, jitter_ms) VALUES ($1, "
    "$2, "
    "$3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)";
static const char INS_CLIENT[] =
    "INSERT INTO q_client (ts, app, room, room_sid, identity, psid, track_sid, kind, candidate, interval_ms, "
    "bitrate_bps, packets, lost, freezes, freeze_ms, watched_ms, frames_decoded, frames_dropped, concealed, "
    "samples, jb_delay_ms, rtt_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, "
    "$16, $17, $18, $19, $20, $21, $22)";
static const char INS_JOIN[] =
    "INSERT INTO q_join (ts, app, room, room_sid, identity, psid, attempt_id, "
    "outcome, reason, join_ms, first_media_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, "
    "$8, $9, $10, $11)";
static const char INS_EVENT[] = "INSERT INTO q_event (ts, app, room, room_sid, identity, psid, type, detail) "
                                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
static const char INS_ALERT[] =
    "INSERT INTO q_alert (ts, app, room, room_sid, identity, psid, rule, metric, "
    "value, threshold, window_s) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
    "$11)";
static const char INS_DELIVERY[] =
    "INSERT INTO q_delivery (ts, app, room, room_sid, identity, psid, interval_ms, sent, owed, acked, "
    "overflow, gone, expired, lat_sum_us, l10, l25, l50, l100, l250, l500, l1000, l2500, l5000, l10000, "
    "linf) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, "
    "$22, $23, $24, $25)";
static const char BEGIN_SQL[] = "BEGIN";
static const char COMMIT_SQL[] = "COMMIT";
static const char ROLLBACK_SQL[] = "ROLLBACK";
static const char *const PRUNE[] = {
    "DELETE FROM q_node WHERE ts < $1",  "DELETE FROM q_client WHERE ts < $1",
    "DELETE FROM q_join WHERE ts < $1",  "DELETE FROM q_event WHERE ts < $1",
    "DELETE FROM q_alert WHERE ts < $1", "DELETE FROM q_delivery WHERE ts < $1",
};

static int run(hd_qstore_t *s, const char *sql, const hd_qparam_t *p, int np, hd_qrow_fn fn, void *ud) {
  int rc = s->ops->exec(s->db, sql, p, np, fn, ud, s->err, sizeof s->err);
  if (rc < 0) HD_LOGW("quality", "%s", s->err);
  return rc;
}

int hd_qstore_open(hd_qstore_t **out, const char *url, char *err, size_t errcap) {
  hd_qstore_t *s = calloc(1, sizeof *s);
  if (!s) return HD_ENOMEM;
  int rc = !strncmp(url, "postgres://", 11) || !strncmp(url, "postgresql://", 13)
               ? hd_qstore_pg_open(url, &s->db, &s->ops, err, errcap)
               : hd_qstore_sqlite_open(url, &s->db, &s->ops, err, errcap);
  if (rc < 0) {
    free(s);
    return rc;
  }
  pthread_mutex_init(&s->mu, NULL);
  for (size_t i = 0; i < sizeof SCHEMA / sizeof SCHEMA[0]; i++)
    if (s->ops->exec(s->db, SCHEMA[i], NULL, 0, NULL, NULL, err, errcap) < 0) {
      hd_qstore_close(s);
      return HD_EIO;
    }
  *out = s;
  return 0;
}

void hd_qstore_close(hd_qstore_t *s) {
  if (!s) return;
  s->ops->close(s->db);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

const char *hd_qstore_backend(const hd_qstore_t *s) { return s->ops->name; }

int hd_qstore_exec(hd_qstore_t *s, const char *sql, const hd_qparam_t *p, int np, hd_qrow_fn fn, void *ud) {
  pthread_mutex_lock(&s->mu);
  int rc = run(s, sql, p, np, fn, ud);
  pthread_mutex_unlock(&s->mu);
  return rc;
}

#define PI(v) ((hd_qparam_t){.t = 'i', .i = (v)})
#define PS(v) ((hd_qparam_t){.t = 's', .s = (v)})
#define PD(v) ((hd_qparam_t){.t = (v) < 0 ? 'n' : 'd', .d = (v)})

static int write_row(hd_qstore_t *s, const hd_qrow_t *r) {
  hd_qparam_t p[32];
  int n = 0;
  p[n++] = PI(r->k.ts);
  p[n++] = PS(r->k.app);
  p[n++] = PS(r->k.room);
  p[n++] = PS(r->k.room_sid);
  p[n++] = PS(r->k.identity);
  p[n++] = PS(r->k.participant_sid);
  const char *sql;
  switch (r->kind) {
  case HD_QROW_NODE: {
    const hd_qnode_t *x = &r->u.node;
    sql = INS_NODE;
    p[n++] = PS(x->dir), p[n++] = PS(x->track_sid), p[n++] = PS(x->kind), p[n++] = PS(x->layer);
    p[n++] = PI(x->interval_ms), p[n++] = PI(x->bitrate_bps), p[n++] = PI(x->packets), p[n++] = PI(x->lost);
    p[n++] = PI(x->lost_after_repair), p[n++] = PI(x->nack), p[n++] = PI(x->rtx), p[n++] = PI(x->pli);
    p[n++] = PI(x->downlink_bps), p[n++] = PD(x->rtt_ms), p[n++] = PD(x->jitter_ms);
    break;
  }
  case HD_QROW_CLIENT: {
    const hd_qclient_t *x = &r->u.client;
    sql = INS_CLIENT;
    p[n++] = PS(x->track_sid), p[n++] = PS(x->kind), p[n++] = PS(x->candidate);
    p[n++] = PI(x->interval_ms), p[n++] = PI(x->bitrate_bps), p[n++] = PI(x->packets), p[n++] = PI(x->lost);
    p[n++] = PI(x->freezes), p[n++] = PI(x->freeze_ms), p[n++] = PI(x->watched_ms);
    p[n++] = PI(x->frames_decoded), p[n++] = PI(x->frames_dropped), p[n++] = PI(x->concealed_samples);
    p[n++] = PI(x->total_samples), p[n++] = PD(x->jb_delay_ms), p[n++] = PD(x->rtt_ms);
    break;
  }
  case HD_QROW_JOIN: {
    const hd_qjoin_t *x = &r->u.join;
    sql = INS_JOIN;
    p[n++] = PS(x->attempt_id), p[n++] = PS(x->outcome), p[n++] = PS(x->reason), p[n++] = PI(x->join_ms);
    p[n++] = PI(x->first_media_ms);
    break;
  }
  case HD_QROW_EVENT:
    sql = INS_EVENT;
    p[n++] = PS(r->u.event.type), p[n++] = PS(r->u.event.detail);
    break;
  case HD_QROW_ALERT: {
    const hd_qalert_t *x = &r->u.alert;
    sql = INS_ALERT;
    p[n++] = PS(x->rule), p[n++] = PS(x->metric), p[n++] = (hd_qparam_t){.t = 'd', .d = x->value};
    p[n++] = (hd_qparam_t){.t = 'd', .d = x->threshold}, p[n++] = PI(x->window_s);
    break;
  }
  case HD_QROW_DELIVERY: {
    const hd_qdelivery_t *x = &r->u.delivery;
    sql = INS_DELIVERY;
    p[n++] = PI(x->interval_ms), p[n++] = PI(x->sent), p[n++] = PI(x->owed), p[n++] = PI(x->acked);
    p[n++] = PI(x->overflow), p[n++] = PI(x->gone), p[n++] = PI(x->expired), p[n++] = PI(x->lat_sum_us);
    for (int i = 0; i < HD_QDLAT_BUCKETS; i++)
      p[n++] = PI(x->lat[i]);
    break;
  }
  default: return HD_EINVAL;
  }
  return run(s, sql, p, n, NULL, NULL);
}

int hd_qstore_write(hd_qstore_t *s, const hd_qrow_t *rows, size_t n) {
  pthread_mutex_lock(&s->mu);
  int rc = run(s, BEGIN_SQL, NULL, 0, NULL, NULL);
  for (size_t i = 0; rc >= 0 && i < n; i++)
    rc = write_row(s, &rows[i]);
  if (rc >= 0) rc = run(s, COMMIT_SQL, NULL, 0, NULL, NULL);
  if (rc < 0) run(s, ROLLBACK_SQL, NULL, 0, NULL, NULL);
  pthread_mutex_unlock(&s->mu);
  return rc < 0 ? HD_EIO : (int)n;
}

int hd_qstore_prune(hd_qstore_t *s, int64_t before_ms) {
  hd_qparam_t p = PI(before_ms);
  int total = 0;
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < sizeof PRUNE / sizeof PRUNE[0]; i++) {
    int rc = run(s, PRUNE[i], &p, 1, NULL, NULL);
    if (rc < 0) {
      total = HD_EIO;
      break;
    }
    total += rc;
  }
  pthread_mutex_unlock(&s->mu);
  return total;
}

/* ---- queries ---- */

/* Result rows collected as a JSON array of arrays: a column that parses fully
 * as a number becomes a number (PostgreSQL sends sums as text), NULL null, else
 * a string. */
static json_t *cell(const char *v) {
  if (!v) return json_null();
  char *end;
  double d = strtod(v, &end);
  if (*v && !*end) {
    if (d == (double)(json_int_t)d && d < 9e15 && d > -9e15) return json_integer((json_int_t)d);
    return json_real(d);
  }
  return json_string(v);
}

static void collect(void *ud, int nc, const char *const *vals) {
  json_t *row = json_array();
  for (int c = 0; c < nc; c++)
    json_array_append_new(row, cell(vals[c]));
  json_array_append_new(ud, row);
}

static json_t *rows(hd_qstore_t *s, const char *sql, const hd_qparam_t *p, int np) {
  json_t *a = json_array();
  if (run(s, sql, p, np, collect, a) < 0) {
    json_decref(a);
    return NULL;
  }
  return a;
}

static double num(json_t *row, size_t i) {
  json_t *v = json_array_get(row, i);
  return json_is_number(v) ? json_number_value(v) : 0;
}
static json_t *ratio(double a, double b) { return b > 0 ? json_real(a / b) : json_null(); }
static json_t *avg_or_null(json_t *row, size_t i) {
  json_t *v = json_array_get(row, i);
  return json_is_number(v) ? json_real(json_number_value(v)) : json_null();
}

/* The aggregate columns shared by every "quality of a set of client rows" query. */
#define CLIENT_AGG                                                                                           \
  "SUM(CASE WHEN kind = 'video' THEN freeze_ms ELSE 0 END), SUM(CASE WHEN kind = 'video' THEN watched_ms "   \
  "ELSE 0 END), SUM(CASE WHEN kind = 'video' THEN freezes ELSE 0 END), SUM(CASE WHEN kind = 'audio' THEN "   \
  "concealed ELSE 0 END), SUM(CASE WHEN kind = 'audio' THEN samples ELSE 0 END), AVG(rtt_ms), "              \
  "AVG(jb_delay_ms), SUM(packets), SUM(lost)"
#define CLIENT_AGG_N 9

/* Fills o from the CLIENT_AGG columns of row starting at column c. */
static void client_agg(json_t *o, json_t *row, size_t c) {
  json_object_set_new(o, "video_frozen_ms", json_integer((json_int_t)num(row, c)));
  json_object_set_new(o, "video_watched_ms", json_integer((json_int_t)num(row, c + 1)));
  json_object_set_new(o, "video_stall_rate", ratio(num(row, c), num(row, c + 1)));
  json_object_set_new(o, "freezes", json_integer((json_int_t)num(row, c + 2)));
  json_object_set_new(o, "audio_concealed_samples", json_integer((json_int_t)num(row, c + 3)));
  json_object_set_new(o, "audio_samples", json_integer((json_int_t)num(row, c + 4)));
  json_object_set_new(o, "audio_stall_rate", ratio(num(row, c + 3), num(row, c + 4)));
  json_object_set_new(o, "rtt_ms", avg_or_null(row, c + 5));
  json_object_set_new(o, "jitter_buffer_ms", avg_or_null(row, c + 6));
  json_object_set_new(o, "packets", json_integer((json_int_t)num(row, c + 7)));
  json_object_set_new(o, "lost", json_integer((json_int_t)num(row, c + 8)));
  json_object_set_new(o, "loss_rate", ratio(num(row, c + 8), num(row, c + 7) + num(row, c + 8)));
}

#define JOIN_AGG                                                                                             \
  "COUNT(*), SUM(CASE WHEN outcome = 'ok' AND first_media_ms >= 0 AND first_media_ms <= 5000 THEN 1 ELSE 0 " \
  "END), SUM(CASE WHEN outcome = 'ok' AND first_media_ms >= 0 AND first_media_ms <= 1000 THEN 1 ELSE 0 "     \
  "END), "                                                                                                   \
  "SUM(CASE WHEN outcome = 'failed' THEN 1 ELSE 0 END)"

static void join_agg(json_t *o, json_t *row, size_t c) {
  json_object_set_new(o, "attempts", json_integer((json_int_t)num(row, c)));
  json_object_set_new(o, "succeeded_5s", json_integer((json_int_t)num(row, c + 1)));
  json_object_set_new(o, "succeeded_1s", json_integer((json_int_t)num(row, c + 2)));
  json_object_set_new(o, "failed", json_integer((json_int_t)num(row, c + 3)));
  json_object_set_new(o, "success_rate_5s", ratio(num(row, c + 1), num(row, c)));
  json_object_set_new(o, "success_rate_1s", ratio(num(row, c + 2), num(row, c)));
}

#define NODE_AGG                                                                                             \
  "SUM(CASE WHEN dir = 'up' THEN packets ELSE 0 END), SUM(CASE WHEN dir = 'up' THEN lost ELSE 0 END), "      \
  "SUM(CASE WHEN dir = 'up' THEN lost_after ELSE 0 END), AVG(CASE WHEN dir = 'down' THEN rtt_ms END), "      \
  "SUM(nack), SUM(rtx), SUM(pli)"

static void node_agg(json_t *o, json_t *row, size_t c) {
  json_object_set_new(o, "uplink_packets", json_integer((json_int_t)num(row, c)));
  json_object_set_new(o, "uplink_lost", json_integer((json_int_t)num(row, c + 1)));
  json_object_set_new(o, "uplink_lost_after_repair", json_integer((json_int_t)num(row, c + 2)));
  json_object_set_new(o, "uplink_loss_rate", ratio(num(row, c + 1), num(row, c)));
  json_object_set_new(o, "uplink_residual_loss_rate", ratio(num(row, c + 2), num(row, c)));
  json_object_set_new(o, "downlink_rtt_ms", avg_or_null(row, c + 3));
  json_object_set_new(o, "nack", json_integer((json_int_t)num(row, c + 4)));
  json_object_set_new(o, "rtx", json_integer((json_int_t)num(row, c + 5)));
  json_object_set_new(o, "pli", json_integer((json_int_t)num(row, c + 6)));
}

#define DELIVERY_AGG                                                                                         \
  "SUM(sent), SUM(owed), SUM(acked), SUM(overflow), SUM(gone), SUM(expired), SUM(lat_sum_us), SUM(l10), "    \
  "SUM(l25), SUM(l50), SUM(l100), SUM(l250), SUM(l500), SUM(l1000), SUM(l2500), SUM(l5000), SUM(l10000), "   \
  "SUM(linf)"

/* The q-quantile (0..1) of a latency histogram, in ms: linear within the
 * bucket it falls in (the open last bucket answers its lower bound, 10 s). */
static double dlat_quantile(const double *h, double total, double q) {
  double rank = q * total, cum = 0;
  for (int i = 0; i < HD_QDLAT_BUCKETS; i++) {
    double lo = i ? (double)hd_qdlat_le_ms[i - 1] : 0;
    if (h[i] > 0 && cum + h[i] >= rank) {
      if (i == HD_QDLAT_BUCKETS - 1) return lo;
      return lo + ((double)hd_qdlat_le_ms[i] - lo) * (rank - cum) / h[i];
    }
    cum += h[i];
  }
  return (double)hd_qdlat_le_ms[HD_QDLAT_BUCKETS - 2];
}

/* delivery rate = acked / (acked + given up): over the deliveries settled
 * in the range (docs/quality.md "Delivery rate"). */
static void delivery_agg(json_t *o, json_t *row, size_t c) {
  double acked = num(row, c + 2), gu = num(row, c + 3) + num(row, c + 4) + num(row, c + 5);
  json_object_set_new(o, "sent", json_integer((json_int_t)num(row, c)));
  json_object_set_new(o, "owed", json_integer((json_int_t)num(row, c + 1)));
  json_object_set_new(o, "delivered", json_integer((json_int_t)acked));
  json_object_set_new(o, "given_up", json_integer((json_int_t)gu));
  json_object_set_new(o, "given_up_overflow", json_integer((json_int_t)num(row, c + 3)));
  json_object_set_new(o, "given_up_gone", json_integer((json_int_t)num(row, c + 4)));
  json_object_set_new(o, "given_up_expired", json_integer((json_int_t)num(row, c + 5)));
  json_object_set_new(o, "delivery_rate", ratio(acked, acked + gu));
  double h[HD_QDLAT_BUCKETS];
  for (int i = 0; i < HD_QDLAT_BUCKETS; i++)
    h[i] = num(row, c + 7 + (size_t)i);
  if (acked > 0) {
    json_object_set_new(o, "latency_ms",
                        json_pack("{s:f, s:f, s:f, s:f}", "mean", num(row, c + 6) / 1000.0 / acked, "p50",
                                  dlat_quantile(h, acked, 0.5), "p95", dlat_quantile(h, acked, 0.95), "p99",
                                  dlat_quantile(h, acked, 0.99)));
  } else {
    json_object_set_new(o, "latency_ms", json_null());
  }
}

/* The same members, prefixed for a series bucket (which mixes the four numbers). */
static void delivery_series(json_t *o, json_t *row, size_t c) {
  json_t *d = json_object();
  delivery_agg(d, row, c);
  json_object_set(o, "delivery_sent", json_object_get(d, "sent"));
  json_object_set(o, "delivered", json_object_get(d, "delivered"));
  json_object_set(o, "delivery_given_up", json_object_get(d, "given_up"));
  json_object_set(o, "delivery_rate", json_object_get(d, "delivery_rate"));
  json_t *l = json_object_get(d, "latency_ms");
  json_object_set_new(o, "delivery_latency_ms",
                      json_is_object(l) ? json_real(json_number_value(json_object_get(l, "mean")))
                                        : json_null());
  json_decref(d);
}

static const char Q_SUM_DELIVERY[] =
    "SELECT " DELIVERY_AGG " FROM q_delivery WHERE app = $1 AND ts >= $2 AND ts < $3";
static const char Q_SER_DELIVERY[] =
    "SELECT ts - ts % $4, " DELIVERY_AGG
    " FROM q_delivery WHERE app = $1 AND ts >= $2 AND ts < $3 GROUP BY 1 ORDER BY 1";

static const char Q_SUM_JOIN[] = "SELECT " JOIN_AGG " FROM q_join WHERE app = $1 AND ts >= $2 AND ts < $3";
static const char Q_SUM_CLIENT[] =
    "SELECT " CLIENT_AGG " FROM q_client WHERE app = $1 AND ts >= $2 AND ts < $3";
static const char Q_SUM_NODE[] = "SELECT " NODE_AGG " FROM q_node WHERE app = $1 AND ts >= $2 AND ts < $3";
static const char Q_SER_JOIN[] = "SELECT ts - ts % $4, " JOIN_AGG
                                 " FROM q_join WHERE app = $1 AND ts >= $2 AND ts < $3 GROUP BY 1 ORDER BY 1";
static const char Q_SER_CLIENT[] =
    "SELECT ts - ts % $4, " CLIENT_AGG
    " FROM q_client WHERE app = $1 AND ts >= $2 AND ts < $3 GROUP BY 1 ORDER BY 1";
static const char Q_SER_NODE[] = "SELECT ts - ts % $4, " NODE_AGG
                                 " FROM q_node WHERE app = $1 AND ts >= $2 AND ts < $3 GROUP BY 1 ORDER BY 1";

/* Merges grouped rows (bucket in column 0) into buckets[bucket] via fill. */
static void merge_series(json_t *buckets, json_t *rs, void (*fill)(json_t *, json_t *, size_t)) {
  size_t i;
  json_t *r;
  json_array_foreach(rs, i, r) {
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)num(r, 0));
    json_t *b = json_object_get(buckets, key);
    if (!b) {
      b = json_pack("{s:I}", "t", (json_int_t)num(r, 0));
      json_object_set_new(buckets, key, b);
    }
    fill(b, r, 1);
  }
}

static int cmp_t(const void *a, const void *b) {
  double x = json_number_value(json_object_get(*(json_t *const *)a, "t"));
  double y = json_number_value(json_object_get(*(json_t *const *)b, "t"));
  return x < y ? -1 : x > y;
}

json_t *hd_qstore_summary(hd_qstore_t *s, const char *app, int64_t from_ms, int64_t to_ms,
                          int64_t bucket_ms) {
  if (bucket_ms <= 0) bucket_ms = 60000;
  hd_qparam_t p[4] = {PS(app), PI(from_ms), PI(to_ms), PI(bucket_ms)};
  pthread_mutex_lock(&s->mu);
  json_t *j = rows(s, Q_SUM_JOIN, p, 3), *c = rows(s, Q_SUM_CLIENT, p, 3), *n = rows(s, Q_SUM_NODE, p, 3);
  json_t *sj = rows(s, Q_SER_JOIN, p, 4), *sc = rows(s, Q_SER_CLIENT, p, 4), *sn = rows(s, Q_SER_NODE, p, 4);
  json_t *d = rows(s, Q_SUM_DELIVERY, p, 3), *sd = rows(s, Q_SER_DELIVERY, p, 4);
  pthread_mutex_unlock(&s->mu);
  json_t *out = NULL;
  if (!j || !c || !n || !sj || !sc || !sn || !d || !sd) goto done;
  json_t *dl = json_object();
  delivery_agg(dl, json_array_get(d, 0), 0);
  json_t *join = json_object(), *stall = json_object(), *node = json_object();
  join_agg(join, json_array_get(j, 0), 0);
  client_agg(stall, json_array_get(c, 0), 0);
  node_agg(node, json_array_get(n, 0), 0);
  json_t *lat = json_pack("{s:O, s:O, s:O, s:n}", "client_rtt_ms", json_object_get(stall, "rtt_ms"),
                          "node_downlink_rtt_ms", json_object_get(node, "downlink_rtt_ms"),
                          "jitter_buffer_ms", json_object_get(stall, "jitter_buffer_ms"), "end_to_end_ms");
  json_t *buckets = json_object();
  merge_series(buckets, sj, join_agg);
  merge_series(buckets, sc, client_agg);
  merge_series(buckets, sn, node_agg);
  merge_series(buckets, sd, delivery_series);
  size_t nb = json_object_size(buckets), k = 0;
  json_t **arr = calloc(nb ? nb : 1, sizeof *arr);
  const char *key;
  json_t *v;
  json_object_foreach(buckets, key, v) arr[k++] = v;
  qsort(arr, nb, sizeof *arr, cmp_t);
  json_t *series = json_array();
  for (k = 0; k < nb; k++)
    json_array_append(series, arr[k]);
  free(arr);
  json_decref(buckets);
  out = json_pack("{s:s, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "app", app, "from",
                  (json_int_t)from_ms, "to", (json_int_t)to_ms, "bucket_ms", (json_int_t)bucket_ms, "join",
                  join, "latency", lat, "stall", stall, "network", node, "delivery", dl, "series", series);
done:
  json_decref(j), json_decref(c), json_decref(n), json_decref(sj), json_decref(sc), json_decref(sn);
  json_decref(d), json_decref(sd);
  return out;
}

static const char Q_CALLS[] =
    "SELECT room, room_sid, MIN(ts), MAX(ts), COUNT(DISTINCT identity) FROM (SELECT room, room_sid, ts, "
    "identity "
    "FROM q_event WHERE app = $1 AND ts >= $2 AND ts < $3 UNION ALL SELECT room, room_sid, ts, identity FROM "
    "q_node WHERE app = $1 AND ts >= $2 AND ts < $3) x WHERE room_sid <> '' GROUP BY room, room_sid ORDER BY "
    "MIN(ts) DESC LIMIT $4";
static const char Q_CALLS_Q[] =
    "SELECT room_sid, " CLIENT_AGG " FROM q_client WHERE app = $1 AND ts >= $2 AND ts "
    "< $3 GROUP BY room_sid";
static const char Q_CALLS_N[] =
    "SELECT room_sid, " NODE_AGG " FROM q_node WHERE app = $1 AND ts >= $2 AND ts < $3 "
    "GROUP BY room_sid";

static json_t *index_by_first(json_t *rs) {
  json_t *o = json_object();
  size_t i;
  json_t *r;
  json_array_foreach(rs, i, r) {
    const char *k = json_string_value(json_array_get(r, 0));
    if (k) json_object_set(o, k, r);
  }
  return o;
}

json_t *hd_qstore_calls(hd_qstore_t *s, const char *app, int64_t from_ms, int64_t to_ms, int limit) {
  if (limit <= 0 || limit > 1000) limit = 100;
  hd_qparam_t p[4] = {PS(app), PI(from_ms), PI(to_ms), PI(limit)};
  pthread_mutex_lock(&s->mu);
  json_t *calls = rows(s, Q_CALLS, p, 4), *q = rows(s, Q_CALLS_Q, p, 3), *nq = rows(s, Q_CALLS_N, p, 3);
  pthread_mutex_unlock(&s->mu);
  json_t *out = NULL;
  if (!calls || !q || !nq) goto done;
  json_t *qi = index_by_first(q), *ni = index_by_first(nq);
  json_t *list = json_array();
  size_t i;
  json_t *r;
  json_array_foreach(calls, i, r) {
    const char *sid = json_string_value(json_array_get(r, 1));
    json_t *c = json_pack("{s:O, s:O, s:O, s:O, s:O}", "room", json_array_get(r, 0), "room_sid",
                          json_array_get(r, 1), "start", json_array_get(r, 2), "end", json_array_get(r, 3),
                          "participants", json_array_get(r, 4));
    json_t *qs = json_object(), *ns = json_object();
    json_t *qr = sid ? json_object_get(qi, sid) : NULL, *nr = sid ? json_object_get(ni, sid) : NULL;
    if (qr) client_agg(qs, qr, 1);
    if (nr) node_agg(ns, nr, 1);
    json_object_set_new(c, "stall", qs);
    json_object_set_new(c, "network", ns);
    json_array_append_new(list, c);
  }
  json_decref(qi), json_decref(ni);
  out = json_pack("{s:s, s:I, s:I, s:o}", "app", app, "from", (json_int_t)from_ms, "to", (json_int_t)to_ms,
                  "calls", list);
done:
  json_decref(calls), json_decref(q), json_decref(nq);
  return out;
}

static const char Q_CALL_PEOPLE[] =
    "SELECT identity, psid, MIN(ts), MAX(ts), MIN(room) FROM (SELECT identity, psid, ts, room FROM q_event "
    "WHERE "
    "app = $1 AND room_sid = $2 UNION ALL SELECT identity, psid, ts, room FROM q_node WHERE app = $1 AND "
    "room_sid = $2 UNION ALL SELECT identity, psid, ts, room FROM q_client WHERE app = $1 AND room_sid = $2) "
    "x "
    "GROUP BY identity, psid ORDER BY MIN(ts)";
static const char Q_CALL_PQ[] =
    "SELECT psid, " CLIENT_AGG " FROM q_client WHERE app = $1 AND room_sid = $2 GROUP "
    "BY psid";
static const char Q_CALL_NODE[] = "SELECT psid, dir, track_sid, kind, ts, interval_ms, bitrate_bps, packets, "
                                  "lost, lost_after, nack, rtx, pli, "
                                  "rtt_ms, jitter_ms, layer, downlink_bps FROM q_node WHERE app = $1 AND "
                                  "room_sid = $2 ORDER BY ts LIMIT $3";
static const char Q_CALL_CLIENT[] =
    "SELECT psid, 'recv', track_sid, kind, ts, interval_ms, bitrate_bps, packets, lost, freezes, freeze_ms, "
    "watched_ms, frames_decoded, frames_dropped, concealed, samples, jb_delay_ms, rtt_ms, candidate FROM "
    "q_client WHERE app = $1 AND room_sid = $2 ORDER BY ts LIMIT $3";
static const char Q_CALL_EVENTS[] =
    "SELECT psid, ts, type, detail FROM q_event WHERE app = $1 AND room_sid = $2 "
    "ORDER BY ts LIMIT $3";
static const char Q_CALL_JOINS[] =
    "SELECT identity, ts, attempt_id, outcome, reason, CASE WHEN join_ms < 0 THEN "
    "NULL ELSE join_ms END, CASE WHEN first_media_ms < 0 THEN NULL ELSE "
    "first_media_ms END, psid FROM q_join WHERE app = $1 "
    "AND room = $2 AND ts >= $3 AND ts <= $4 ORDER BY ts LIMIT 1000";

static const char *const NODE_COLS[] = {
    "ts",  "interval_ms", "bitrate_bps", "packets",   "lost",  "lost_after_repair", "nack",
    "rtx", "pli",         "rtt_ms",      "jitter_ms", "layer", "downlink_bps"};
static const char *const CLIENT_COLS[] = {"ts",
                                          "interval_ms",
                                          "bitrate_bps",
                                          "packets",
                                          "lost",
                                          "freezes",
                                          "freeze_ms",
                                          "watched_ms",
                                          "frames_decoded",
                                          "frames_dropped",
                                          "concealed_samples",
                                          "total_samples",
                                          "jitter_buffer_ms",
                                          "rtt_ms",
                                          "candidate"};

static json_t *names(const char *const *n, size_t k) {
  json_t *a = json_array();
  for (size_t i = 0; i < k; i++)
    json_array_append_new(a, json_string(n[i]));
  return a;
}

/* Appends the rows of rs (psid, dir, track, kind, then the point columns) to
 * the track series of the participant they belong to. */
static void add_series(json_t *people, json_t *rs, const char *source, const char *const *cols,
                       size_t ncols) {
  size_t i;
  json_t *r;
  json_array_foreach(rs, i, r) {
    const char *psid = json_string_value(json_array_get(r, 0));
    json_t *pp = psid ? json_object_get(people, psid) : NULL;
    if (!pp) continue;
    json_t *tracks = json_object_get(pp, "tracks");
    char key[96];
    snprintf(key, sizeof key, "%s/%s/%s", source, json_string_value(json_array_get(r, 1)),
             json_string_value(json_array_get(r, 2)));
    json_t *t = json_object_get(tracks, key);
    if (!t) {
      t = json_pack("{s:s, s:O, s:O, s:O, s:o, s:[]}", "source", source, "dir", json_array_get(r, 1),
                    "track_sid", json_array_get(r, 2), "kind", json_array_get(r, 3), "columns",
                    names(cols, ncols), "points");
      json_object_set_new(tracks, key, t);
    }
    json_t *pt = json_array();
    for (size_t c = 0; c < ncols; c++)
      json_array_append(pt, json_array_get(r, 4 + c));
    json_array_append_new(json_object_get(t, "points"), pt);
  }
}

json_t *hd_qstore_call(hd_qstore_t *s, const char *app, const char *room_sid) {
  hd_qparam_t p[3] = {PS(app), PS(room_sid), PI(HD_QSTORE_ROWS_MAX)};
  pthread_mutex_lock(&s->mu);
  json_t *ppl = rows(s, Q_CALL_PEOPLE, p, 2), *pq = rows(s, Q_CALL_PQ, p, 2),
         *nd = rows(s, Q_CALL_NODE, p, 3);
  json_t *cl = rows(s, Q_CALL_CLIENT, p, 3), *ev = rows(s, Q_CALL_EVENTS, p, 3), *jn = NULL;
  int64_t start = INT64_MAX, end = 0;
  const char *room = NULL;
  size_t i;
  json_t *r;
  json_array_foreach(ppl, i, r) {
    if (num(r, 2) < start) start = (int64_t)num(r, 2);
    if (num(r, 3) > end) end = (int64_t)num(r, 3);
    if (!room) room = json_string_value(json_array_get(r, 4));
  }
  if (room) {
    hd_qparam_t pj[4] = {PS(app), PS(room), PI(start - 60000), PI(end + 60000)};
    jn = rows(s, Q_CALL_JOINS, pj, 4);
  }
  pthread_mutex_unlock(&s->mu);
  json_t *out = NULL;
  if (!ppl || !pq || !nd || !cl || !ev) goto done;
  if (!room) goto done; /* no such call: NULL with no store error */
  json_t *people = json_object(), *order = json_array();
  json_array_foreach(ppl, i, r) {
    const char *psid = json_string_value(json_array_get(r, 1));
    if (!psid || json_object_get(people, psid)) continue;
    json_t *o = json_pack("{s:O, s:O, s:O, s:O, s:{}, s:[], s:[], s:{}}", "identity", json_array_get(r, 0),
                          "sid", json_array_get(r, 1), "first_seen", json_array_get(r, 2), "last_seen",
                          json_array_get(r, 3), "stall", "joins", "events", "tracks");
    json_object_set_new(people, psid, o);
    json_array_append_new(order, json_string(psid));
  }
  json_array_foreach(pq, i, r) {
    json_t *o = json_object_get(people, json_string_value(json_array_get(r, 0)) ?: "");
    if (o) client_agg(json_object_get(o, "stall"), r, 1);
  }
  add_series(people, nd, "node", NODE_COLS, sizeof NODE_COLS / sizeof NODE_COLS[0]);
  add_series(people, cl, "client", CLIENT_COLS, sizeof CLIENT_COLS / sizeof CLIENT_COLS[0]);
  json_array_foreach(ev, i, r) {
    json_t *o = json_object_get(people, json_string_value(json_array_get(r, 0)) ?: "");
    if (o)
      json_array_append_new(json_object_get(o, "events"),
                            json_pack("{s:O, s:O, s:O}", "ts", json_array_get(r, 1), "type",
                                      json_array_get(r, 2), "detail", json_array_get(r, 3)));
  }
  /* joins are attributed by identity (a failed attempt has no participant sid) */
  json_array_foreach(jn, i, r) {
    const char *id = json_string_value(json_array_get(r, 0));
    const char *k;
    json_t *o;
    json_object_foreach(people, k, o) {
      if (!id || strcmp(json_string_value(json_object_get(o, "identity")) ?: "", id)) continue;
      json_array_append_new(json_object_get(o, "joins"),
                            json_pack("{s:O, s:O, s:O, s:O, s:O, s:O}", "ts", json_array_get(r, 1),
                                      "attempt_id", json_array_get(r, 2), "outcome", json_array_get(r, 3),
                                      "reason", json_array_get(r, 4), "join_ms", json_array_get(r, 5),
                                      "first_media_ms", json_array_get(r, 6)));
      break;
    }
  }
  json_t *list = json_array();
  json_t *ps;
  json_array_foreach(order, i, ps) {
    json_t *o = json_object_get(people, json_string_value(ps));
    json_t *tracks = json_object_get(o, "tracks"), *ta = json_array();
    const char *k;
    json_t *t;
    json_object_foreach(tracks, k, t) json_array_append(ta, t);
    json_object_set_new(o, "tracks", ta);
    json_array_append(list, o);
  }
  json_decref(people), json_decref(order);
  out = json_pack("{s:s, s:s, s:s, s:I, s:I, s:o}", "app", app, "room", room, "room_sid", room_sid, "start",
                  (json_int_t)start, "end", (json_int_t)end, "participants", list);
done:
  json_decref(ppl), json_decref(pq), json_decref(nd), json_decref(cl), json_decref(ev), json_decref(jn);
  return out;
}

static const char Q_USER[] =
    "SELECT room_sid, MIN(room), MIN(ts), MAX(ts), " CLIENT_AGG
    " FROM q_client WHERE app = $1 AND identity = $2 AND ts >= $3 AND ts < $4 GROUP BY "
    "room_sid ORDER BY MIN(ts) DESC LIMIT 500";
static const char Q_USER_N[] =
    "SELECT room_sid, MIN(room), MIN(ts), MAX(ts), " NODE_AGG
    " FROM q_node WHERE app = $1 AND identity = $2 AND ts >= $3 AND ts < $4 GROUP BY "
    "room_sid ORDER BY MIN(ts) DESC LIMIT 500";
static const char Q_USER_J[] =
    "SELECT " JOIN_AGG " FROM q_join WHERE app = $1 AND identity = $2 AND ts >= $3 AND "
    "ts < $4";

json_t *hd_qstore_user(hd_qstore_t *s, const char *app, const char *identity, int64_t from_ms,
                       int64_t to_ms) {
  hd_qparam_t p[4] = {PS(app), PS(identity), PI(from_ms), PI(to_ms)};
  pthread_mutex_lock(&s->mu);
  json_t *c = rows(s, Q_USER, p, 4), *n = rows(s, Q_USER_N, p, 4), *j = rows(s, Q_USER_J, p, 4);
  pthread_mutex_unlock(&s->mu);
  json_t *out = NULL;
  if (!c || !n || !j) goto done;
  json_t *calls = json_object(), *order = json_array();
  json_t *both[2] = {n, c};
  for (int w = 0; w < 2; w++) {
    size_t i;
    json_t *r;
    json_array_foreach(both[w], i, r) {
      const char *sid = json_string_value(json_array_get(r, 0));
      if (!sid) continue;
      json_t *o = json_object_get(calls, sid);
      if (!o) {
        o = json_pack("{s:O, s:O, s:O, s:O, s:{}, s:{}}", "room_sid", json_array_get(r, 0), "room",
                      json_array_get(r, 1), "start", json_array_get(r, 2), "end", json_array_get(r, 3),
                      "stall", "network");
        json_object_set_new(calls, sid, o);
        json_array_append_new(order, json_string(sid));
      }
      if (w == 0)
        node_agg(json_object_get(o, "network"), r, 4);
      else
        client_agg(json_object_get(o, "stall"), r, 4);
    }
  }
  json_t *list = json_array(), *sid;
  size_t i;
  json_array_foreach(order, i, sid) json_array_append(list, json_object_get(calls, json_string_value(sid)));
  json_decref(calls), json_decref(order);
  json_t *joins = json_object();
  join_agg(joins, json_array_get(j, 0), 0);
  out = json_pack("{s:s, s:s, s:I, s:I, s:o, s:o}", "app", app, "identity", identity, "from",
                  (json_int_t)from_ms, "to", (json_int_t)to_ms, "join", joins, "calls", list);
done:
  json_decref(c), json_decref(n), json_decref(j);
  return out;
}

/* Worst first: the stall rate (frozen over watched video time, a watched time
 * of 0 counting as no stall), then audio concealment. */
static const char Q_WORST[] =
    "SELECT room_sid, MIN(room), identity, psid, " CLIENT_AGG
    " FROM q_client WHERE app = $1 AND ts >= $2 AND ts < $3 GROUP BY room_sid, identity, psid ORDER BY "
    "SUM(CASE WHEN kind = 'video' THEN freeze_ms ELSE 0 END) * 1.0 / (SUM(CASE WHEN kind = 'video' THEN "
    "watched_ms ELSE 0 END) + 1) DESC, SUM(CASE WHEN kind = 'audio' THEN concealed ELSE 0 END) * 1.0 / "
    "(SUM(CASE WHEN kind = 'audio' THEN samples ELSE 0 END) + 1) DESC LIMIT $4";

json_t *hd_qstore_worst(hd_qstore_t *s, const char *app, int64_t from_ms, int64_t to_ms, int n) {
  if (n <= 0 || n > 1000) n = 10;
  hd_qparam_t p[4] = {PS(app), PI(from_ms), PI(to_ms), PI(n)};
  pthread_mutex_lock(&s->mu);
  json_t *w = rows(s, Q_WORST, p, 4);
  pthread_mutex_unlock(&s->mu);
  if (!w) return NULL;
  json_t *list = json_array();
  size_t i;
  json_t *r;
  json_array_foreach(w, i, r) {
    json_t *o =
        json_pack("{s:O, s:O, s:O, s:O}", "room_sid", json_array_get(r, 0), "room", json_array_get(r, 1),
                  "identity", json_array_get(r, 2), "participant_sid", json_array_get(r, 3));
    client_agg(o, r, 4);
    json_array_append_new(list, o);
  }
  json_decref(w);
  return json_pack("{s:s, s:I, s:I, s:o}", "app", app, "from", (json_int_t)from_ms, "to", (json_int_t)to_ms,
                   "sessions", list);
}

static const char Q_ALERTS[] =
    "SELECT ts, rule, metric, value, threshold, window_s, room, room_sid, identity FROM "
    "q_alert WHERE app = $1 AND ts >= $2 AND ts < $3 ORDER BY ts DESC LIMIT 500";

json_t *hd_qstore_alerts(hd_qstore_t *s, const char *app, int64_t from_ms, int64_t to_ms) {
  hd_qparam_t p[3] = {PS(app), PI(from_ms), PI(to_ms)};
  pthread_mutex_lock(&s->mu);
  json_t *a = rows(s, Q_ALERTS, p, 3);
  pthread_mutex_unlock(&s->mu);
  if (!a) return NULL;
  json_t *list = json_array();
  size_t i;
  json_t *r;
  json_array_foreach(a, i, r) {
    json_array_append_new(list, json_pack("{s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O}", "ts",
                                          json_array_get(r, 0), "rule", json_array_get(r, 1), "metric",
                                          json_array_get(r, 2), "value", json_array_get(r, 3), "threshold",
                                          json_array_get(r, 4), "window_s", json_array_get(r, 5), "room",
                                          json_array_get(r, 6), "room_sid", json_array_get(r, 7), "identity",
                                          json_array_get(r, 8)));
  }
  json_decref(a);
  return json_pack("{s:s, s:o}", "app", app, "alerts", list);
}
