/* `hudong serve`'s quality pipeline (serve_quality.h). */
#include "cmd/serve_quality.h"

#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/log.h"
#include "base/map.h"
#include "io/rtc_udp.h"
#include "quality/collector.h"
#include "quality/store.h"
#include "quality/writer.h"
#include "sfu/qsample.h"

#define MAX_CONNS 65536
#define SAMPLES_PER_WORKER 8192
#define DELIVERY_APPS 256 /* apps whose RTM delivery is sampled (the configured tenants; docs/quality.md) */

_Static_assert(HD_QDLAT_BUCKETS == HD_RTM_DLAT_BUCKETS, "delivery latency buckets: broker and store agree");

typedef struct {
  char app[64];
} pending_t;

struct hd_serve_quality {
  hd_serve_quality_config_t cfg;
  hd_qstore_t *store;
  hd_qwriter_t *writer;
  hd_qcollector_t *col;
  hd_map_t apps; /* conn -> pending_t: the app of a connection whose join was seen */
  uv_timer_t sample_timer, alert_timer;
  hd_node_qsample_t *buf;
  char db[600];
  /* the broker's cumulative delivery counters at the previous sample, per app */
  char (*dl_apps)[64], (*dl_prev_apps)[64];
  hd_rtm_delivery_t *dl_now, *dl_prev;
  int n_dl_prev;
  int64_t dl_prev_ms;
  int closing; /* timers whose close callback has not run yet */
};

static int64_t unix_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int push_rows(void *ud, const hd_qrow_t *rows, size_t n) {
  hd_serve_quality_t *q = ud;
  return hd_qwriter_push(q->writer, rows, n);
}

typedef struct {
  hd_node_qsample_t *buf;
  size_t cap;
  int n;
} sample_job_t;

static void sample_job(hd_node_t *node, void *arg, hd_time_t now) {
  sample_job_t *j = arg;
  j->n = hd_node_quality_samples(node, j->buf, j->cap, now);
}

/* RTM delivery per app since the previous sample (docs/quality.md
 * "Delivery rate"): one q_delivery row per app with anything new. The
 * broker runs on this (control) thread: reading its counters is a copy. */
static void sample_delivery(hd_serve_quality_t *q, int64_t ms) {
  if (!q->cfg.rtm) return;
  int n = hd_rtm_delivery(q->cfg.rtm, q->dl_apps, q->dl_now, DELIVERY_APPS);
  hd_qrow_t row;
  for (int i = 0; i < n; i++) {
    const hd_rtm_delivery_t *c = &q->dl_now[i];
    hd_rtm_delivery_t z = {0};
    const hd_rtm_delivery_t *p = &z; /* an app new since the previous sample starts from zero */
    for (int k = 0; k < q->n_dl_prev; k++)
      if (!strcmp(q->dl_prev_apps[k], q->dl_apps[i])) {
        p = &q->dl_prev[k];
        break;
      }
    if (c->sent == p->sent && c->owed == p->owed && c->acked == p->acked && c->overflow == p->overflow &&
        c->gone == p->gone && c->expired == p->expired)
      continue;
    memset(&row, 0, sizeof row);
    row.kind = HD_QROW_DELIVERY;
    row.k.ts = ms;
    snprintf(row.k.app, sizeof row.k.app, "%s", q->dl_apps[i]);
    hd_qdelivery_t *d = &row.u.delivery;
    d->interval_ms = q->dl_prev_ms ? ms - q->dl_prev_ms : 0;
    d->sent = (int64_t)(c->sent - p->sent), d->owed = (int64_t)(c->owed - p->owed);
    d->acked = (int64_t)(c->acked - p->acked), d->overflow = (int64_t)(c->overflow - p->overflow);
    d->gone = (int64_t)(c->gone - p->gone), d->expired = (int64_t)(c->expired - p->expired);
    d->lat_sum_us = (int64_t)(c->lat_sum_us - p->lat_sum_us);
    for (int k = 0; k < HD_QDLAT_BUCKETS; k++)
      d->lat[k] = (int64_t)(c->lat_hist[k] - p->lat_hist[k]);
    hd_qwriter_push(q->writer, &row, 1);
  }
  memcpy(q->dl_prev, q->dl_now, (size_t)n * sizeof *q->dl_now);
  memcpy(q->dl_prev_apps, q->dl_apps, (size_t)n * sizeof *q->dl_apps);
  q->n_dl_prev = n;
  q->dl_prev_ms = ms;
}

/* Every sample interval: a copy of each worker's counters (a job on the
 * worker, like the admin participants list), deltas and rows here. */
static void on_sample(uv_timer_t *t) {
  hd_serve_quality_t *q = t->data;
  int nw = hd_media_workers_count(q->cfg.workers);
  int64_t ms = unix_ms();
  hd_time_t now = hd_io_now(q->cfg.loop);
  for (int i = 0; i < nw; i++) {
    sample_job_t j = {.buf = q->buf, .cap = SAMPLES_PER_WORKER};
    hd_media_workers_call(q->cfg.workers, i, sample_job, &j);
    if (j.n > 0) hd_qcollector_node(q->col, q->buf, (size_t)j.n, now, ms);
  }
  hd_qcollector_node_round_end(q->col);
  sample_delivery(q, ms);
}

static void on_alert_timer(uv_timer_t *t) {
  hd_serve_quality_t *q = t->data;
  hd_qfired_t fired[16];
  int n = hd_qalerts_poll(hd_qcollector_alerts(q->col), hd_io_now(q->cfg.loop), fired, 16);
  for (int i = 0; i < n; i++) {
    const hd_qrule_t *r = fired[i].rule;
    HD_LOGW("quality", "alert %s fired for app %s: %s = %.4f (threshold %.4f)", r->name, fired[i].app,
            hd_qmetric_name(r->metric), fired[i].value, r->threshold);
    hd_qrow_t row;
    memset(&row, 0, sizeof row);
    row.kind = HD_QROW_ALERT;
    row.k.ts = unix_ms();
    snprintf(row.k.app, sizeof row.k.app, "%s", fired[i].app);
    snprintf(row.k.room, sizeof row.k.room, "*");
    snprintf(row.u.alert.rule, sizeof row.u.alert.rule, "%s", r->name);
    snprintf(row.u.alert.metric, sizeof row.u.alert.metric, "%s", hd_qmetric_name(r->metric));
    row.u.alert.value = fired[i].value;
    row.u.alert.threshold = r->threshold;
    row.u.alert.window_s = r->window / HD_SEC(1);
    hd_qwriter_push(q->writer, &row, 1);
    if (!q->cfg.webhooks) continue;
    json_t *a =
        json_pack("{s:s, s:s, s:f, s:f, s:s, s:I, s:i, s:I}", "rule", r->name, "metric",
                  hd_qmetric_name(r->metric), "value", fired[i].value, "threshold", r->threshold, "direction",
                  r->below ? "below" : "above", "window_s", (json_int_t)(r->window / HD_SEC(1)), "windows",
                  r->windows, "silence_s", (json_int_t)(r->silence / HD_SEC(1)));
    char *text = a ? json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(a);
    hd_webhook_event_t ev = {
        .type = HD_WEBHOOK_QUALITY_ALERT, .app = fired[i].app, .room_name = "*", .alert_json = text};
    if (text && hd_webhook_sender_push(q->cfg.webhooks, &ev) < 0)
      HD_LOGW("quality", "alert webhook for app %s not queued", fired[i].app);
    free(text);
  }
}

int hd_serve_quality_start(hd_serve_quality_t **out, const hd_serve_quality_config_t *cfg, char *err,
                           size_t errcap) {
  hd_serve_quality_t *q = calloc(1, sizeof *q);
  if (!q) return HD_ENOMEM;
  q->cfg = *cfg;
  const hd_config_t *c = cfg->cfg;
  if (c->quality_db[0])
    snprintf(q->db, sizeof q->db, "%s", c->quality_db);
  else if (!strcmp(c->rtm_db, ":memory:"))
    snprintf(q->db, sizeof q->db, ":memory:");
  else { /* next to the RTM database */
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", c->rtm_db);
    snprintf(q->db, sizeof q->db, "%s/hudong-quality.db", dirname(tmp));
  }
  int rc = hd_qstore_open(&q->store, q->db, err, errcap);
  if (rc < 0) goto fail;
  hd_qwriter_config_t wc = {.max_queue = (size_t)c->quality_max_queue,
                            .retention_ms = (int64_t)c->quality_retention_days * 86400000};
  if ((rc = hd_qwriter_start(&q->writer, q->store, &wc)) < 0) goto fail;
  hd_time_t now = hd_io_now(cfg->loop);
  hd_qcollector_config_t cc = {.min_report_interval = HD_MS(c->quality_min_report_interval_ms),
                               .max_rows_per_s = (double)c->quality_max_rows_per_s,
                               .push = push_rows,
                               .ud = q};
  if ((rc = hd_qcollector_new(&q->col, &cc, now)) < 0) goto fail;
  if ((rc = hd_qalerts_init(hd_qcollector_alerts(q->col), c->quality_rules, c->n_quality_rules, now)) < 0) {
    snprintf(err, errcap, "quality alert rules are invalid (docs/quality.md \"Alerts\")");
    goto fail;
  }
  q->buf = calloc(SAMPLES_PER_WORKER, sizeof *q->buf);
  q->dl_apps = calloc(DELIVERY_APPS, sizeof *q->dl_apps);
  q->dl_prev_apps = calloc(DELIVERY_APPS, sizeof *q->dl_prev_apps);
  q->dl_now = calloc(DELIVERY_APPS, sizeof *q->dl_now);
  q->dl_prev = calloc(DELIVERY_APPS, sizeof *q->dl_prev);
  if (!q->buf || !q->dl_apps || !q->dl_prev_apps || !q->dl_now || !q->dl_prev ||
      (rc = hd_map_init(&q->apps, MAX_CONNS)) < 0) {
    rc = HD_ENOMEM;
    goto fail;
  }
  q->dl_prev_ms = unix_ms();
  uv_timer_init(cfg->loop, &q->sample_timer);
  uv_timer_init(cfg->loop, &q->alert_timer);
  q->sample_timer.data = q->alert_timer.data = q;
  uint64_t iv = (uint64_t)c->quality_sample_interval_s * 1000;
  uv_timer_start(&q->sample_timer, on_sample, iv, iv);
  if (c->n_quality_rules) uv_timer_start(&q->alert_timer, on_alert_timer, 1000, 1000);
  HD_LOGI("quality", "quality data in %s (%s), samples every %ld s, %d alert rules",
          strncmp(q->db, "postgres", 8) ? q->db : "PostgreSQL", hd_qstore_backend(q->store),
          c->quality_sample_interval_s, c->n_quality_rules);
  *out = q;
  return 0;
fail:
  hd_qcollector_free(q->col);
  hd_qwriter_stop(q->writer);
  hd_qstore_close(q->store);
  free(q->buf);
  free(q->dl_apps), free(q->dl_prev_apps), free(q->dl_now), free(q->dl_prev);
  free(q);
  return rc < 0 ? rc : HD_EIO;
}

static void free_apps(hd_map_t *m) {
  for (size_t i = 0; m->slots && i < m->n_slots; i++)
    if (m->slots[i].klen) free(m->slots[i].value);
  hd_map_free(m);
}

static void timer_closed(uv_handle_t *h) {
  hd_serve_quality_t *q = h->data;
  if (--q->closing == 0) free(q);
}

void hd_serve_quality_stop(hd_serve_quality_t *q) {
  if (!q) return;
  q->closing = 2;
  uv_close((uv_handle_t *)&q->sample_timer, timer_closed);
  uv_close((uv_handle_t *)&q->alert_timer, timer_closed);
  hd_qwriter_stop(q->writer);
  hd_qstore_close(q->store);
  hd_qcollector_free(q->col);
  free_apps(&q->apps);
  free(q->buf);
  free(q->dl_apps), free(q->dl_prev_apps), free(q->dl_now), free(q->dl_prev);
  /* q itself is freed by the timers' close callbacks: the caller runs the loop once more */
}

static int error_reply(char *reply, size_t cap, size_t *len, int code, const char *reason, const char *msg,
                       json_t *id) {
  json_t *o =
      json_pack("{s:s, s:i, s:s, s:s}", "type", "error", "code", code, "reason", reason, "message", msg);
  if (o && json_is_string(id)) json_object_set(o, "id", id);
  char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (!t) return 1;
  int n = snprintf(reply, cap, "%s", t);
  free(t);
  *len = n > 0 && (size_t)n < cap ? (size_t)n : 0;
  return 1;
}

int hd_serve_quality_rtc_message(hd_serve_quality_t *q, uint64_t conn, const char *text, size_t len,
                                 char *reply, size_t cap, size_t *reply_len) {
  *reply_len = 0;
  int first = !hd_map_get(&q->apps, &conn, sizeof conn);
  if (!first && !memmem(text, len, "quality_", 8)) return 0;
  json_t *o = json_loadb(text, len, 0, NULL);
  const char *type = json_string_value(json_object_get(o, "type"));
  if (!type) {
    json_decref(o);
    return 0;
  }
  if (first && !strcmp(type, "join")) {
    /* the connection's tenant, from its join token (the node verifies it again) */
    const char *tok = json_string_value(json_object_get(o, "token"));
    hd_token_claims_t c;
    char why[128];
    pending_t *p = calloc(1, sizeof *p);
    if (p && tok &&
        hd_token_verify(tok, strlen(tok), q->cfg.lookup, q->cfg.lookup_ud, (int64_t)time(NULL),
                        q->cfg.cfg->token_leeway, &c, why, sizeof why) == 0) {
      snprintf(p->app, sizeof p->app, "%s", c.key);
      if (hd_map_put(&q->apps, &conn, sizeof conn, p) == 0) p = NULL;
    }
    free(p);
    json_decref(o);
    return 0;
  }
  if (strcmp(type, "quality_report") && strcmp(type, "quality_join")) {
    json_decref(o);
    return 0;
  }
  char err[256] = "";
  int rc = hd_qcollector_message(q->col, conn, type, o, hd_io_now(q->cfg.loop), unix_ms(), err, sizeof err);
  if (rc < 0) {
    int code = rc == HD_EAGAIN ? 429 : rc == HD_ENOSPC ? 503 : rc == HD_ESTATE ? 409 : 400;
    const char *reason = rc == HD_EAGAIN   ? "rate_limited"
                         : rc == HD_ENOSPC ? "quality_full"
                         : rc == HD_ESTATE ? "not_joined"
                                           : "bad_request";
    error_reply(reply, cap, reply_len, code, reason, err, json_object_get(o, "id"));
  }
  json_decref(o);
  return 1;
}

void hd_serve_quality_rtc_sent(hd_serve_quality_t *q, uint64_t conn, const char *text, size_t len) {
  if (len < 16 || strncmp(text, "{\"type\":\"joined\"", 16)) return;
  pending_t *p = hd_map_get(&q->apps, &conn, sizeof conn);
  if (!p) return;
  json_t *o = json_loadb(text, len, 0, NULL);
  json_t *room = json_object_get(o, "room"), *me = json_object_get(o, "participant");
  hd_qkey_t k;
  memset(&k, 0, sizeof k);
  k.ts = unix_ms();
  snprintf(k.app, sizeof k.app, "%s", p->app);
  snprintf(k.room, sizeof k.room, "%s", json_string_value(json_object_get(room, "name")) ?: "");
  snprintf(k.room_sid, sizeof k.room_sid, "%s", json_string_value(json_object_get(room, "sid")) ?: "");
  snprintf(k.identity, sizeof k.identity, "%s", json_string_value(json_object_get(me, "identity")) ?: "");
  snprintf(k.participant_sid, sizeof k.participant_sid, "%s",
           json_string_value(json_object_get(me, "sid")) ?: "");
  if (k.room_sid[0] && hd_qcollector_joined(q->col, conn, &k) < 0)
    HD_LOGW("quality", "too many reporting connections: %s's reports will be refused", k.identity);
  json_decref(o);
}

void hd_serve_quality_rtc_closed(hd_serve_quality_t *q, uint64_t conn) {
  pending_t *p = hd_map_get(&q->apps, &conn, sizeof conn);
  if (p) {
    hd_map_del(&q->apps, &conn, sizeof conn);
    free(p);
  }
  hd_qcollector_closed(q->col, conn);
}

void hd_serve_quality_event(hd_serve_quality_t *q, const hd_webhook_event_t *ev) {
  const char *type = NULL;
  char detail[128] = "";
  switch (ev->type) {
  case HD_WEBHOOK_PARTICIPANT_JOINED: type = "joined"; break;
  case HD_WEBHOOK_PARTICIPANT_LEFT: type = "left"; break;
  case HD_WEBHOOK_TRACK_PUBLISHED:
    type = "published";
    snprintf(detail, sizeof detail, "%s %s %s", ev->track_kind ?: "", ev->track_source ?: "", ev->track_sid);
    break;
  case HD_WEBHOOK_TRACK_UNPUBLISHED:
    type = "unpublished";
    snprintf(detail, sizeof detail, "%s %s %s", ev->track_kind ?: "", ev->track_source ?: "", ev->track_sid);
    break;
  default: return;
  }
  hd_qkey_t k;
  memset(&k, 0, sizeof k);
  k.ts = unix_ms();
  snprintf(k.app, sizeof k.app, "%s", ev->app);
  snprintf(k.room, sizeof k.room, "%s", ev->room_name);
  snprintf(k.room_sid, sizeof k.room_sid, "%s", ev->room_sid ?: "");
  snprintf(k.identity, sizeof k.identity, "%s", ev->participant_identity ?: "");
  snprintf(k.participant_sid, sizeof k.participant_sid, "%s", ev->participant_sid ?: "");
  hd_qcollector_event(q->col, &k, type, detail);
}

/* A query parameter as an integer (def when absent). */
static int64_t qint(const char *query, const char *name, int64_t def) {
  size_t nl = strlen(name);
  for (const char *p = query; p && *p;) {
    if (!strncmp(p, name, nl) && p[nl] == '=') return strtoll(p + nl + 1, NULL, 10);
    p = strchr(p, '&');
    if (p) p++;
  }
  return def;
}

static int valid_seg(const char *s) {
  if (!*s || strlen(s) > 127) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
          *s == '_' || *s == '.' || *s == '@'))
      return 0;
  return 1;
}

void hd_serve_quality_http(hd_serve_quality_t *q, const char *app, const hd_http_req_t *req,
                           hd_http_resp_t *resp) {
  if (strcmp(req->method, "GET")) {
    hd_http_resp_text(resp, 405, "%s is not allowed on %s (the quality API is read-only: GET)\n", req->method,
                      req->path);
    return;
  }
  const char *p = req->path + strlen("/admin/quality/");
  int64_t to = qint(req->query, "to", unix_ms() + 1), from = qint(req->query, "from", to - 3600 * 1000);
  if (from >= to || from < 0) {
    hd_http_resp_text(resp, 400, "bad range: want from < to, unix milliseconds (default: the last hour)\n");
    return;
  }
  /* everything reported before the request is visible (unless the store is too slow to wait for) */
  if (hd_qwriter_flush(q->writer, 2000) < 0)
    HD_LOGW("quality", "store behind: query answered without the last rows");
  json_t *j = NULL;
  if (!strcmp(p, "summary")) {
    int64_t bucket = qint(req->query, "bucket", 60000);
    if (bucket < 1000 || (to - from) / bucket > 10000) {
      hd_http_resp_text(resp, 400, "bad bucket: at least 1000 ms and at most 10000 buckets in the range\n");
      return;
    }
    j = hd_qstore_summary(q->store, app, from, to, bucket);
  } else if (!strcmp(p, "calls")) {
    j = hd_qstore_calls(q->store, app, from, to, (int)qint(req->query, "limit", 100));
  } else if (!strncmp(p, "calls/", 6) && valid_seg(p + 6)) {
    j = hd_qstore_call(q->store, app, p + 6);
    if (!j) {
      hd_http_resp_text(resp, 404, "no quality data for call %s (a room sid from GET /admin/quality/calls)\n",
                        p + 6);
      return;
    }
  } else if (!strncmp(p, "users/", 6) && valid_seg(p + 6)) {
    j = hd_qstore_user(q->store, app, p + 6, from, to);
  } else if (!strcmp(p, "worst")) {
    j = hd_qstore_worst(q->store, app, from, to, (int)qint(req->query, "n", 10));
  } else if (!strcmp(p, "alerts")) {
    j = hd_qstore_alerts(q->store, app, from, to);
  } else {
    hd_http_resp_text(
        resp, 404,
        "not found: %s (quality endpoints: summary, calls, calls/{room_sid}, users/{identity}, worst, "
        "alerts; docs/quality.md)\n",
        req->path);
    return;
  }
  char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  if (!text) {
    hd_http_resp_text(resp, 500, "quality store error (see the node log)\n");
    return;
  }
  hd_http_resp_body(resp, 200, "application/json", text, strlen(text));
  free(text);
}

int hd_serve_quality_metrics(hd_serve_quality_t *q, char *out, size_t cap) {
  int n = hd_qcollector_metrics_text(q->col, out, cap);
  if (n < 0) return 0;
  hd_qwriter_stats_t st;
  hd_qwriter_stats(q->writer, &st);
  int w =
      snprintf(out + n, cap - (size_t)n,
               "# HELP hudong_quality_rows_written_total Quality rows committed to the store.\n"
               "# TYPE hudong_quality_rows_written_total counter\nhudong_quality_rows_written_total %llu\n"
               "# HELP hudong_quality_rows_dropped_total Quality rows refused: the write queue was full.\n"
               "# TYPE hudong_quality_rows_dropped_total counter\nhudong_quality_rows_dropped_total %llu\n"
               "# HELP hudong_quality_rows_failed_total Quality rows lost to a store error.\n"
               "# TYPE hudong_quality_rows_failed_total counter\nhudong_quality_rows_failed_total %llu\n"
               "# HELP hudong_quality_rows_queued Quality rows waiting to be written.\n"
               "# TYPE hudong_quality_rows_queued gauge\nhudong_quality_rows_queued %llu\n",
               (unsigned long long)st.written, (unsigned long long)st.dropped, (unsigned long long)st.failed,
               (unsigned long long)st.queued);
  if (w < 0 || (size_t)w >= cap - (size_t)n) return n;
  return n + w;
}
