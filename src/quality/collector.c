/* Quality collector (collector.h). */
#include "quality/collector.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/map.h"
#include "quality/report.h"

/* Histogram buckets (upper bounds) for /metrics. */
static const double JOIN_BUCKETS_S[] = {0.25, 0.5, 1, 2, 3, 5, 10};
static const double RTT_BUCKETS_S[] = {0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8};
static const double FREEZE_BUCKETS_S[] = {0.2, 0.5, 1, 2, 5, 10};
#define NB 8

typedef struct {
  uint64_t b[NB]; /* cumulative per bucket is computed when printed */
  uint64_t count;
  double sum;
} hist_t;

static void observe(hist_t *h, const double *bounds, int nb, double v, uint64_t times) {
  int i = 0;
  while (i < nb && v > bounds[i])
    i++;
  h->b[i] += times; /* i == nb: only +Inf */
  h->count += times;
  h->sum += v * (double)times;
}

typedef struct {
  hd_qkey_t key;
  hd_time_t last_report, last_join; /* 0 = none yet */
  int n;
  hd_qtrack_counters_t prev[HD_QREPORT_MAX_TRACKS];
  int64_t prev_unix_ms;
} conn_t;

typedef struct {
  hd_node_qsample_t prev;
  int64_t prev_unix_ms;
  uint32_t seen_round;
} leg_t;

struct hd_qcollector {
  hd_qcollector_config_t cfg;
  hd_map_t conns, legs;
  uint32_t round;
  double tokens;
  hd_time_t tokens_at;
  hd_qalerts_t alerts;
  hd_qcollector_stats_t st;
  /* the four numbers, node lifetime */
  uint64_t join_attempts, join_ok_5s, join_ok_1s, join_failed;
  uint64_t video_frozen_ms, video_watched_ms, freezes, audio_concealed, audio_samples;
  uint64_t packets, lost;
  hist_t h_join, h_rtt_client, h_rtt_node, h_freeze;
};

int hd_qcollector_new(hd_qcollector_t **out, const hd_qcollector_config_t *cfg, hd_time_t now) {
  hd_qcollector_t *c = calloc(1, sizeof *c);
  if (!c) return HD_ENOMEM;
  c->cfg = *cfg;
  if (!c->cfg.min_report_interval) c->cfg.min_report_interval = HD_QCOLLECTOR_MIN_INTERVAL;
  if (!c->cfg.max_conns) c->cfg.max_conns = HD_QCOLLECTOR_MAX_CONNS;
  if (c->cfg.max_rows_per_s <= 0) c->cfg.max_rows_per_s = HD_QCOLLECTOR_MAX_ROWS_PER_S;
  c->tokens = 2 * c->cfg.max_rows_per_s;
  c->tokens_at = now;
  if (hd_map_init(&c->conns, c->cfg.max_conns) < 0 || hd_map_init(&c->legs, HD_QCOLLECTOR_MAX_LEGS) < 0) {
    hd_qcollector_free(c);
    return HD_ENOMEM;
  }
  hd_qalerts_init(&c->alerts, NULL, 0, now);
  *out = c;
  return 0;
}

static void free_values(hd_map_t *m) {
  for (size_t i = 0; m->slots && i < m->n_slots; i++)
    if (m->slots[i].klen) free(m->slots[i].value);
}

void hd_qcollector_free(hd_qcollector_t *c) {
  if (!c) return;
  free_values(&c->conns);
  free_values(&c->legs);
  hd_map_free(&c->conns);
  hd_map_free(&c->legs);
  free(c);
}

hd_qalerts_t *hd_qcollector_alerts(hd_qcollector_t *c) { return &c->alerts; }

void hd_qcollector_stats(const hd_qcollector_t *c, hd_qcollector_stats_t *out) { *out = c->st; }

int hd_qcollector_joined(hd_qcollector_t *c, uint64_t conn, const hd_qkey_t *key) {
  conn_t *x = hd_map_get(&c->conns, &conn, sizeof conn);
  if (!x) {
    x = calloc(1, sizeof *x);
    if (!x) return HD_ENOMEM;
    if (hd_map_put(&c->conns, &conn, sizeof conn, x) < 0) {
      free(x);
      return HD_ENOSPC;
    }
  }
  memset(x, 0, sizeof *x);
  x->key = *key;
  return 0;
}

void hd_qcollector_closed(hd_qcollector_t *c, uint64_t conn) {
  conn_t *x = hd_map_get(&c->conns, &conn, sizeof conn);
  if (!x) return;
  hd_map_del(&c->conns, &conn, sizeof conn);
  free(x);
}

static int take_budget(hd_qcollector_t *c, double rows, hd_time_t now) {
  double cap = 2 * c->cfg.max_rows_per_s;
  c->tokens += (double)(now - c->tokens_at) / 1e6 * c->cfg.max_rows_per_s;
  if (c->tokens > cap) c->tokens = cap;
  c->tokens_at = now;
  if (c->tokens < rows) return 0;
  c->tokens -= rows;
  return 1;
}

static int push(hd_qcollector_t *c, const hd_qrow_t *rows, size_t n) {
  if (!n) return 0;
  int rc = c->cfg.push ? c->cfg.push(c->cfg.ud, rows, n) : 0;
  if (rc < 0) c->st.rows_lost += n;
  return rc;
}

static int on_report(hd_qcollector_t *c, conn_t *x, json_t *o, int64_t unix_ms, char *err, size_t errcap) {
  hd_qreport_t r;
  if (hd_qreport_parse(o, &r, err, errcap) < 0) return HD_EPROTO;
  hd_qrow_t rows[HD_QREPORT_MAX_TRACKS];
  size_t nr = 0;
  /* the first report covers the time since the join (key.ts) */
  int64_t since = x->prev_unix_ms ? x->prev_unix_ms : x->key.ts;
  int64_t interval = since > 0 && unix_ms > since ? unix_ms - since : 0;
  for (int i = 0; i < r.n_tracks; i++) {
    const hd_qtrack_counters_t *cur = &r.tracks[i];
    const hd_qtrack_counters_t *prev = NULL;
    for (int k = 0; k < x->n; k++)
      if (!strcmp(x->prev[k].sid, cur->sid)) prev = &x->prev[k];
    hd_qdelta_t d;
    hd_qtrack_delta(prev, cur, &d);
    hd_qrow_t *row = &rows[nr++];
    memset(row, 0, sizeof *row);
    row->kind = HD_QROW_CLIENT;
    row->k = x->key;
    row->k.ts = unix_ms;
    hd_qclient_t *q = &row->u.client;
    snprintf(q->track_sid, sizeof q->track_sid, "%s", cur->sid);
    snprintf(q->kind, sizeof q->kind, "%s", cur->video ? "video" : "audio");
    snprintf(q->candidate, sizeof q->candidate, "%s", r.candidate);
    q->interval_ms = interval;
    q->bitrate_bps = interval > 0 ? (int64_t)(d.bytes * 8000 / (uint64_t)interval) : 0;
    q->packets = (int64_t)d.packets, q->lost = (int64_t)d.lost, q->freezes = (int64_t)d.freezes;
    q->freeze_ms = (int64_t)d.freeze_ms, q->watched_ms = (int64_t)d.watched_ms;
    q->frames_decoded = (int64_t)d.frames_decoded, q->frames_dropped = (int64_t)d.frames_dropped;
    q->concealed_samples = (int64_t)d.concealed, q->total_samples = (int64_t)d.samples;
    q->jb_delay_ms = d.jb_delay_ms;
    q->rtt_ms = r.rtt_ms;
    /* the four numbers and the alerts */
    const char *app = x->key.app;
    if (cur->video) {
      c->video_frozen_ms += d.freeze_ms, c->video_watched_ms += d.watched_ms, c->freezes += d.freezes;
      if (d.freezes)
        observe(&c->h_freeze, FREEZE_BUCKETS_S, 6, (double)d.freeze_ms / 1000.0 / (double)d.freezes,
                d.freezes);
      hd_qalerts_feed(&c->alerts, app, HD_QM_VIDEO_STALL, (double)d.freeze_ms, (double)d.watched_ms);
    } else {
      c->audio_concealed += d.concealed, c->audio_samples += d.samples;
      hd_qalerts_feed(&c->alerts, app, HD_QM_AUDIO_STALL, (double)d.concealed, (double)d.samples);
    }
    c->packets += d.packets, c->lost += d.lost;
    hd_qalerts_feed(&c->alerts, app, HD_QM_LOSS, (double)d.lost, (double)(d.packets + d.lost));
  }
  if (r.rtt_ms >= 0) {
    observe(&c->h_rtt_client, RTT_BUCKETS_S, 7, r.rtt_ms / 1000.0, 1);
    hd_qalerts_feed(&c->alerts, x->key.app, HD_QM_RTT_MS, r.rtt_ms, 1);
  }
  x->n = r.n_tracks;
  memcpy(x->prev, r.tracks, sizeof r.tracks[0] * (size_t)r.n_tracks);
  x->prev_unix_ms = unix_ms;
  if (push(c, rows, nr) < 0) {
    snprintf(err, errcap, "quality store queue is full: report dropped (the node is behind on writes)");
    return HD_ENOSPC;
  }
  c->st.reports++;
  return 0;
}

static int valid_name(const char *s) {
  if (!s[0]) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
          *s == '_' || *s == '.'))
      return 0;
  return 1;
}

static int on_joins(hd_qcollector_t *c, conn_t *x, json_t *o, int64_t unix_ms, char *err, size_t errcap) {
  hd_qjoins_t j;
  if (hd_qjoins_parse(o, &j, err, errcap) < 0) return HD_EPROTO;
  hd_qrow_t rows[HD_QREPORT_MAX_ATTEMPTS];
  for (int i = 0; i < j.n; i++) {
    const hd_qattempt_t *a = &j.a[i];
    hd_qrow_t *row = &rows[i];
    memset(row, 0, sizeof *row);
    row->kind = HD_QROW_JOIN;
    row->k = x->key;
    /* an attempt in another room of the same app (kept from an earlier page) keeps its room name;
     * the call id and participant are only known for this connection's room */
    int same = !a->room[0] || !strcmp(a->room, x->key.room);
    if (!same) {
      snprintf(row->k.room, sizeof row->k.room, "%s", valid_name(a->room) ? a->room : "?");
      row->k.room_sid[0] = row->k.participant_sid[0] = 0;
    }
    /* the client's clock: trusted within a week back, never in the future */
    row->k.ts = a->started_at > unix_ms                    ? unix_ms
                : a->started_at < unix_ms - 7LL * 86400000 ? unix_ms
                                                           : a->started_at;
    hd_qjoin_t *q = &row->u.join;
    snprintf(q->attempt_id, sizeof q->attempt_id, "%s", a->id);
    snprintf(q->outcome, sizeof q->outcome, "%s", a->outcome);
    snprintf(q->reason, sizeof q->reason, "%s", a->reason);
    q->join_ms = a->join_ms;
    q->first_media_ms = a->first_media_ms;
    int ok = !strcmp(a->outcome, "ok");
    int ok5 = ok && a->first_media_ms >= 0 && a->first_media_ms <= 5000;
    c->join_attempts++;
    c->join_ok_5s += ok5;
    c->join_ok_1s += ok && a->first_media_ms >= 0 && a->first_media_ms <= 1000;
    c->join_failed += !ok;
    if (a->first_media_ms >= 0) observe(&c->h_join, JOIN_BUCKETS_S, 7, (double)a->first_media_ms / 1000.0, 1);
    hd_qalerts_feed(&c->alerts, x->key.app, HD_QM_JOIN_SUCCESS, ok5, 1);
  }
  if (push(c, rows, (size_t)j.n) < 0) {
    snprintf(err, errcap, "quality store queue is full: join attempts dropped (send them again later)");
    return HD_ENOSPC;
  }
  c->st.joins++;
  return 0;
}

int hd_qcollector_message(hd_qcollector_t *c, uint64_t conn, const char *type, const void *json,
                          hd_time_t now, int64_t unix_ms, char *err, size_t errcap) {
  conn_t *x = hd_map_get(&c->conns, &conn, sizeof conn);
  if (!x) {
    c->st.refused_state++;
    snprintf(err, errcap, "%s before join: send it after \"joined\"", type);
    return HD_ESTATE;
  }
  int report = !strcmp(type, "quality_report");
  /* one message of each type per interval and connection */
  hd_time_t last = report ? x->last_report : x->last_join;
  if (last && now - last < c->cfg.min_report_interval) {
    c->st.refused_rate++;
    snprintf(err, errcap, "%s too frequent: at most one every %lld ms per connection (%s)", type,
             (long long)(c->cfg.min_report_interval / 1000),
             report ? "send every 5 s" : "send the attempts kept together, up to 20 per message");
    return HD_EAGAIN;
  }
  json_t *tr = json_object_get((json_t *)json, report ? "tracks" : "attempts");
  double rows = json_is_array(tr) ? (double)json_array_size(tr) : 0;
  if (!take_budget(c, rows, now)) {
    c->st.refused_budget++;
    snprintf(err, errcap,
             "the node takes at most %.0f quality rows per second (all connections): report dropped, send "
             "the next "
             "one as usual",
             c->cfg.max_rows_per_s);
    return HD_ENOSPC;
  }
  int rc = report ? on_report(c, x, (json_t *)json, unix_ms, err, errcap)
                  : on_joins(c, x, (json_t *)json, unix_ms, err, errcap);
  if (rc == HD_EPROTO) c->st.refused_bad++;
  if (rc == 0) *(report ? &x->last_report : &x->last_join) = now;
  return rc;
}

static size_t leg_key(const hd_node_qsample_t *s, char *k, size_t cap) {
  /* participant sids are unique on the node; the key stays within HD_MAP_KEY_MAX */
  int n = snprintf(k, cap, "%.22s%d%.22s", s->psid, s->down, s->track_sid);
  return n > 0 && (size_t)n < cap ? (size_t)n : cap - 1;
}

static uint64_t dif(uint64_t prev, uint64_t cur) { return cur >= prev ? cur - prev : cur; }

void hd_qcollector_node(hd_qcollector_t *c, const hd_node_qsample_t *s, size_t n, hd_time_t now,
                        int64_t unix_ms) {
  (void)now;
  enum { BATCH = 64 };
  hd_qrow_t rows[BATCH];
  size_t nr = 0;
  for (size_t i = 0; i < n; i++) {
    char key[HD_MAP_KEY_MAX];
    size_t kl = leg_key(&s[i], key, sizeof key);
    leg_t *l = hd_map_get(&c->legs, key, kl);
    if (!l) {
      l = calloc(1, sizeof *l);
      if (!l) continue;
      if (hd_map_put(&c->legs, key, kl, l) < 0) {
        free(l);
        continue;
      }
    }
    const hd_node_qsample_t *p = l->prev_unix_ms ? &l->prev : NULL, *q = &s[i];
    l->seen_round = c->round;
    if (p) {
      hd_qrow_t *row = &rows[nr++];
      memset(row, 0, sizeof *row);
      row->kind = HD_QROW_NODE;
      row->k.ts = unix_ms;
      snprintf(row->k.app, sizeof row->k.app, "%s", q->app);
      snprintf(row->k.room, sizeof row->k.room, "%s", q->room);
      snprintf(row->k.room_sid, sizeof row->k.room_sid, "%s", q->room_sid);
      snprintf(row->k.identity, sizeof row->k.identity, "%s", q->identity);
      snprintf(row->k.participant_sid, sizeof row->k.participant_sid, "%s", q->psid);
      hd_qnode_t *x = &row->u.node;
      snprintf(x->dir, sizeof x->dir, "%s", q->down ? "down" : "up");
      snprintf(x->track_sid, sizeof x->track_sid, "%s", q->track_sid);
      snprintf(x->kind, sizeof x->kind, "%s", q->video ? "video" : "audio");
      snprintf(x->layer, sizeof x->layer, "%s", q->layer);
      int64_t iv = unix_ms - l->prev_unix_ms;
      x->interval_ms = iv;
      uint64_t bytes = dif(p->bytes, q->bytes);
      x->bitrate_bps = iv > 0 ? (int64_t)(bytes * 8000 / (uint64_t)iv) : 0;
      x->packets = (int64_t)dif(p->packets, q->packets);
      x->lost = q->down ? (int64_t)((double)x->packets * q->loss_frac + 0.5) : (int64_t)dif(p->lost, q->lost);
      x->lost_after_repair = q->down ? -1 : (int64_t)dif(p->lost_after, q->lost_after);
      x->nack = (int64_t)dif(p->nack, q->nack), x->rtx = (int64_t)dif(p->rtx, q->rtx);
      x->pli = (int64_t)dif(p->pli, q->pli);
      x->downlink_bps = (int64_t)q->downlink_bps;
      x->rtt_ms = q->rtt_ms, x->jitter_ms = q->jitter_ms;
      if (q->down && q->rtt_ms >= 0) observe(&c->h_rtt_node, RTT_BUCKETS_S, 7, q->rtt_ms / 1000.0, 1);
      if (nr == BATCH) push(c, rows, nr), nr = 0;
    }
    l->prev = *q;
    l->prev_unix_ms = unix_ms;
  }
  push(c, rows, nr);
}

void hd_qcollector_node_round_end(hd_qcollector_t *c) {
  /* forget legs not seen this round (participant left, track unpublished):
   * keys first, deletions after (a deletion may move entries in the table) */
  size_t n = 0;
  typedef struct {
    uint8_t key[HD_MAP_KEY_MAX];
    uint8_t klen;
    leg_t *leg;
  } gone_t;
  gone_t *gone = NULL;
  for (size_t i = 0; c->legs.slots && i < c->legs.n_slots; i++) {
    hd_map_slot_t *sl = &c->legs.slots[i];
    if (!sl->klen || ((leg_t *)sl->value)->seen_round == c->round) continue;
    if (!gone && !(gone = malloc(c->legs.count * sizeof *gone))) break; /* next round tries again */
    memcpy(gone[n].key, sl->key, sl->klen);
    gone[n].klen = sl->klen;
    gone[n].leg = sl->value;
    n++;
  }
  for (size_t i = 0; i < n; i++) {
    hd_map_del(&c->legs, gone[i].key, gone[i].klen);
    free(gone[i].leg);
  }
  free(gone);
  c->round++;
}

void hd_qcollector_event(hd_qcollector_t *c, const hd_qkey_t *k, const char *type, const char *detail) {
  hd_qrow_t row;
  memset(&row, 0, sizeof row);
  row.kind = HD_QROW_EVENT;
  row.k = *k;
  snprintf(row.u.event.type, sizeof row.u.event.type, "%s", type);
  snprintf(row.u.event.detail, sizeof row.u.event.detail, "%s", detail ? detail : "");
  push(c, &row, 1);
}

static int hist_text(char *out, size_t cap, const char *name, const char *labels, const hist_t *h,
                     const double *bounds, int nb) {
  size_t n = 0;
  uint64_t cum = 0;
  for (int i = 0; i <= nb; i++) {
    cum += h->b[i];
    char le[32];
    if (i < nb)
      snprintf(le, sizeof le, "%g", bounds[i]);
    else
      snprintf(le, sizeof le, "+Inf");
    int w = snprintf(out + n, cap - n, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, labels[0] ? "," : "",
                     le, (unsigned long long)cum);
    if (w < 0 || (size_t)w >= cap - n) return HD_ENOSPC;
    n += (size_t)w;
  }
  const char *lb = labels[0] ? "{" : "", *le = labels[0] ? "}" : "";
  int w = snprintf(out + n, cap - n, "%s_sum%s%s%s %.6f\n%s_count%s%s%s %llu\n", name, lb, labels, le, h->sum,
                   name, lb, labels, le, (unsigned long long)h->count);
  if (w < 0 || (size_t)w >= cap - n) return HD_ENOSPC;
  return (int)(n + (size_t)w);
}

int hd_qcollector_metrics_text(hd_qcollector_t *c, char *out, size_t cap) {
  int n = snprintf(
      out, cap,
      "# HELP hudong_quality_join_attempts_total Join attempts clients reported (docs/quality.md).\n"
      "# TYPE hudong_quality_join_attempts_total counter\nhudong_quality_join_attempts_total %llu\n"
      "# HELP hudong_quality_join_success_total Join attempts that decoded remote media within the limit.\n"
      "# TYPE hudong_quality_join_success_total counter\n"
      "hudong_quality_join_success_total{within=\"5s\"} "
      "%llu\nhudong_quality_join_success_total{within=\"1s\"} "
      "%llu\n"
      "# HELP hudong_quality_join_failed_total Join attempts reported failed.\n"
      "# TYPE hudong_quality_join_failed_total counter\nhudong_quality_join_failed_total %llu\n"
      "# HELP hudong_quality_video_frozen_seconds_total Video frozen time clients reported (stall rate "
      "numerator).\n"
      "# TYPE hudong_quality_video_frozen_seconds_total counter\nhudong_quality_video_frozen_seconds_total "
      "%.3f\n"
      "# HELP hudong_quality_video_watched_seconds_total Video watched time (stall rate denominator).\n"
      "# TYPE hudong_quality_video_watched_seconds_total counter\nhudong_quality_video_watched_seconds_total "
      "%.3f\n"
      "# HELP hudong_quality_video_freezes_total Video freezes (W3C freezeCount rule).\n"
      "# TYPE hudong_quality_video_freezes_total counter\nhudong_quality_video_freezes_total %llu\n"
      "# HELP hudong_quality_audio_concealed_samples_total Audio samples concealed (audio stall numerator).\n"
      "# TYPE hudong_quality_audio_concealed_samples_total "
      "counter\nhudong_quality_audio_concealed_samples_total "
      "%llu\n"
      "# HELP hudong_quality_audio_samples_total Audio samples received (audio stall denominator).\n"
      "# TYPE hudong_quality_audio_samples_total counter\nhudong_quality_audio_samples_total %llu\n"
      "# HELP hudong_quality_packets_total Packets clients received.\n"
      "# TYPE hudong_quality_packets_total counter\nhudong_quality_packets_total %llu\n"
      "# HELP hudong_quality_packets_lost_total Packets clients lost (after the node's repair).\n"
      "# TYPE hudong_quality_packets_lost_total counter\nhudong_quality_packets_lost_total %llu\n"
      "# HELP hudong_quality_reports_total Client quality messages taken.\n"
      "# TYPE hudong_quality_reports_total counter\nhudong_quality_reports_total{type=\"report\"} %llu\n"
      "hudong_quality_reports_total{type=\"join\"} %llu\n"
      "# HELP hudong_quality_refused_total Client quality messages refused, by reason.\n"
      "# TYPE hudong_quality_refused_total counter\nhudong_quality_refused_total{reason=\"rate\"} %llu\n"
      "hudong_quality_refused_total{reason=\"budget\"} "
      "%llu\nhudong_quality_refused_total{reason=\"malformed\"} "
      "%llu\nhudong_quality_refused_total{reason=\"not_joined\"} %llu\n"
      "# HELP hudong_quality_alerts_fired_total Quality alert rules that fired.\n"
      "# TYPE hudong_quality_alerts_fired_total counter\nhudong_quality_alerts_fired_total %llu\n"
      "# HELP hudong_quality_join_seconds Join attempt start to first decoded remote media.\n"
      "# TYPE hudong_quality_join_seconds histogram\n",
      (unsigned long long)c->join_attempts, (unsigned long long)c->join_ok_5s,
      (unsigned long long)c->join_ok_1s, (unsigned long long)c->join_failed,
      (double)c->video_frozen_ms / 1000.0, (double)c->video_watched_ms / 1000.0,
      (unsigned long long)c->freezes, (unsigned long long)c->audio_concealed,
      (unsigned long long)c->audio_samples, (unsigned long long)c->packets, (unsigned long long)c->lost,
      (unsigned long long)c->st.reports, (unsigned long long)c->st.joins,
      (unsigned long long)c->st.refused_rate, (unsigned long long)c->st.refused_budget,
      (unsigned long long)c->st.refused_bad, (unsigned long long)c->st.refused_state,
      (unsigned long long)c->alerts.fired);
  if (n < 0 || (size_t)n >= cap) return HD_ENOSPC;
  size_t used = (size_t)n;
  int w = hist_text(out + used, cap - used, "hudong_quality_join_seconds", "", &c->h_join, JOIN_BUCKETS_S, 7);
  if (w < 0) return w;
  used += (size_t)w;
  w = snprintf(out + used, cap - used,
               "# HELP hudong_quality_rtt_seconds Round-trip time: client (selected candidate pair) and node "
               "(subscriber leg, RTCP RR).\n# TYPE hudong_quality_rtt_seconds histogram\n");
  if (w < 0 || (size_t)w >= cap - used) return HD_ENOSPC;
  used += (size_t)w;
  w = hist_text(out + used, cap - used, "hudong_quality_rtt_seconds", "source=\"client\"", &c->h_rtt_client,
                RTT_BUCKETS_S, 7);
  if (w < 0) return w;
  used += (size_t)w;
  w = hist_text(out + used, cap - used, "hudong_quality_rtt_seconds", "source=\"node\"", &c->h_rtt_node,
                RTT_BUCKETS_S, 7);
  if (w < 0) return w;
  used += (size_t)w;
  w = snprintf(
      out + used, cap - used,
      "# HELP hudong_quality_freeze_seconds Video freeze durations (each interval's freezes at their mean "
      "duration).\n# TYPE hudong_quality_freeze_seconds histogram\n");
  if (w < 0 || (size_t)w >= cap - used) return HD_ENOSPC;
  used += (size_t)w;
  w = hist_text(out + used, cap - used, "hudong_quality_freeze_seconds", "", &c->h_freeze, FREEZE_BUCKETS_S,
                6);
  if (w < 0) return w;
  return (int)(used + (size_t)w);
}
