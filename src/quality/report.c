/* Client quality reports (report.h). */
#include "quality/report.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"

static int bad(char *err, size_t cap, const char *fmt, const char *what) {
  snprintf(err, cap, fmt, what);
  return HD_EPROTO;
}

/* A non-negative integer counter below 2^53 (JSON numbers are doubles in browsers). */
static int counter(json_t *o, const char *k, uint64_t *dst, char *err, size_t cap) {
  json_t *v = json_object_get(o, k);
  if (!v) {
    *dst = 0;
    return 0;
  }
  double d = json_number_value(v);
  if (!json_is_number(v) || !isfinite(d) || d < 0 || d > 9007199254740991.0)
    return bad(err, cap, "quality_report: '%s' must be a non-negative number", k);
  *dst = (uint64_t)d;
  return 0;
}

static int str(json_t *o, const char *k, char *dst, size_t cap, char *err, size_t errcap) {
  json_t *v = json_object_get(o, k);
  dst[0] = 0;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_string(v) || json_string_length(v) >= cap)
    return bad(err, errcap, "quality message: '%s' must be a short string", k);
  snprintf(dst, cap, "%s", json_string_value(v));
  return 0;
}

int hd_qreport_parse(const void *obj, hd_qreport_t *out, char *err, size_t errcap) {
  json_t *o = (json_t *)obj;
  memset(out, 0, sizeof *out);
  if (str(o, "candidate", out->candidate, sizeof out->candidate, err, errcap)) return HD_EPROTO;
  json_t *rtt = json_object_get(o, "rtt_ms");
  out->rtt_ms = -1;
  if (rtt && !json_is_null(rtt)) {
    if (!json_is_number(rtt) || !isfinite(json_number_value(rtt)) || json_number_value(rtt) < 0)
      return bad(err, errcap, "quality_report: '%s' must be a non-negative number or null", "rtt_ms");
    out->rtt_ms = json_number_value(rtt);
  }
  json_t *tr = json_object_get(o, "tracks");
  if (!json_is_array(tr)) return bad(err, errcap, "quality_report: '%s' must be an array", "tracks");
  if (json_array_size(tr) > HD_QREPORT_MAX_TRACKS) {
    snprintf(err, errcap, "quality_report: at most %d tracks per report (send the rest in the next one)",
             HD_QREPORT_MAX_TRACKS);
    return HD_EPROTO;
  }
  size_t i;
  json_t *t;
  json_array_foreach(tr, i, t) {
    hd_qtrack_counters_t *c = &out->tracks[i];
    if (!json_is_object(t)) return bad(err, errcap, "quality_report: %s must be objects", "tracks[]");
    if (str(t, "sid", c->sid, sizeof c->sid, err, errcap)) return HD_EPROTO;
    const char *kind = json_string_value(json_object_get(t, "kind"));
    if (!c->sid[0] || !kind || (strcmp(kind, "audio") && strcmp(kind, "video")))
      return bad(err, errcap, "quality_report: %s need a 'sid' and a 'kind' of audio or video", "tracks[]");
    c->video = !strcmp(kind, "video");
    if (counter(t, "bytes", &c->bytes, err, errcap) || counter(t, "packets", &c->packets, err, errcap) ||
        counter(t, "lost", &c->lost, err, errcap) || counter(t, "freezes", &c->freezes, err, errcap) ||
        counter(t, "freeze_ms", &c->freeze_ms, err, errcap) ||
        counter(t, "watched_ms", &c->watched_ms, err, errcap) ||
        counter(t, "frames_decoded", &c->frames_decoded, err, errcap) ||
        counter(t, "frames_dropped", &c->frames_dropped, err, errcap) ||
        counter(t, "concealed", &c->concealed, err, errcap) ||
        counter(t, "samples", &c->samples, err, errcap) ||
        counter(t, "jb_emitted", &c->jb_emitted, err, errcap))
      return HD_EPROTO;
    json_t *jb = json_object_get(t, "jb_delay_s");
    if (jb && (!json_is_number(jb) || !isfinite(json_number_value(jb)) || json_number_value(jb) < 0))
      return bad(err, errcap, "quality_report: '%s' must be a non-negative number", "jb_delay_s");
    c->jb_delay_s = jb ? json_number_value(jb) : 0;
    out->n_tracks++;
  }
  return 0;
}

int hd_qjoins_parse(const void *obj, hd_qjoins_t *out, char *err, size_t errcap) {
  json_t *o = (json_t *)obj;
  memset(out, 0, sizeof *out);
  json_t *a = json_object_get(o, "attempts");
  if (!json_is_array(a) || json_array_size(a) > HD_QREPORT_MAX_ATTEMPTS) {
    snprintf(err, errcap, "quality_join: 'attempts' must be an array of at most %d attempts",
             HD_QREPORT_MAX_ATTEMPTS);
    return HD_EPROTO;
  }
  size_t i;
  json_t *t;
  json_array_foreach(a, i, t) {
    hd_qattempt_t *x = &out->a[i];
    if (!json_is_object(t)) return bad(err, errcap, "quality_join: %s must be objects", "attempts[]");
    if (str(t, "id", x->id, sizeof x->id, err, errcap) ||
        str(t, "room", x->room, sizeof x->room, err, errcap) ||
        str(t, "outcome", x->outcome, sizeof x->outcome, err, errcap) ||
        str(t, "reason", x->reason, sizeof x->reason, err, errcap))
      return HD_EPROTO;
    if (!x->id[0] || (strcmp(x->outcome, "ok") && strcmp(x->outcome, "failed")))
      return bad(err, errcap, "quality_join: %s need an 'id' and an 'outcome' of ok or failed", "attempts[]");
    json_t *st = json_object_get(t, "started_at");
    if (!json_is_number(st) || json_number_value(st) <= 0)
      return bad(err, errcap, "quality_join: '%s' must be unix milliseconds", "started_at");
    x->started_at = (int64_t)json_number_value(st);
    const char *ms[2] = {"join_ms", "first_media_ms"};
    int64_t *dst[2] = {&x->join_ms, &x->first_media_ms};
    for (int k = 0; k < 2; k++) {
      json_t *v = json_object_get(t, ms[k]);
      *dst[k] = -1;
      if (!v || json_is_null(v)) continue;
      if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 86400000)
        return bad(err, errcap, "quality_join: '%s' must be milliseconds or null", ms[k]);
      *dst[k] = (int64_t)json_number_value(v);
    }
    out->n++;
  }
  return 0;
}

static uint64_t dif(uint64_t prev, uint64_t cur) { return cur >= prev ? cur - prev : cur; }

void hd_qtrack_delta(const hd_qtrack_counters_t *p, const hd_qtrack_counters_t *c, hd_qdelta_t *d) {
  static const hd_qtrack_counters_t zero;
  if (!p) p = &zero;
  /* one reset counter means a new receiver: every counter restarts together */
  int reset = c->packets < p->packets || c->frames_decoded < p->frames_decoded || c->samples < p->samples ||
              c->watched_ms < p->watched_ms;
  if (reset) p = &zero;
  d->bytes = dif(p->bytes, c->bytes);
  d->packets = dif(p->packets, c->packets);
  d->lost = dif(p->lost, c->lost);
  d->freezes = dif(p->freezes, c->freezes);
  d->freeze_ms = dif(p->freeze_ms, c->freeze_ms);
  d->watched_ms = dif(p->watched_ms, c->watched_ms);
  d->frames_decoded = dif(p->frames_decoded, c->frames_decoded);
  d->frames_dropped = dif(p->frames_dropped, c->frames_dropped);
  d->concealed = dif(p->concealed, c->concealed);
  d->samples = dif(p->samples, c->samples);
  uint64_t em = dif(p->jb_emitted, c->jb_emitted);
  double dl = c->jb_delay_s >= p->jb_delay_s ? c->jb_delay_s - p->jb_delay_s : c->jb_delay_s;
  d->jb_delay_ms = em ? dl * 1000.0 / (double)em : -1;
}

int hd_qfreeze_frame(hd_qfreeze_t *f, int64_t t) {
  int froze = 0;
  if (f->last_at) {
    double gap = (double)(t - f->last_at);
    f->watched_us += t - f->last_at;
    if (f->intervals >= HD_QFREEZE_MIN_INTERVALS) {
      double thr = 3 * f->avg_us > f->avg_us + 150000 ? 3 * f->avg_us : f->avg_us + 150000;
      if (gap >= thr) {
        froze = 1;
        f->freezes++;
        f->freeze_us += (int64_t)gap;
      }
    }
    /* a running mean over ~30 intervals; a freeze does not inflate the average it is judged by */
    if (!froze) {
      uint64_t n = f->intervals < 30 ? f->intervals + 1 : 30;
      f->avg_us += (gap - f->avg_us) / (double)n;
      f->intervals++;
    }
  }
  f->last_at = t;
  return froze;
}
