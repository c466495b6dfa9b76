/* SDK quality report (see quality_report.h). */
#include "client/quality_report.h"

#include <jansson.h>
#include <string.h>

#include "base/err.h"

static void set_num(json_t *o, const char *k, double v) { json_object_set_new(o, k, json_real(v)); }
static void set_int(json_t *o, const char *k, long long v) { json_object_set_new(o, k, json_integer(v)); }

int hd_quality_report_json(const hd_client_stats_t *st, char *out, size_t cap) {
  json_t *m = json_object(), *tracks = json_array();
  if (!m || !tracks) {
    json_decref(m);
    json_decref(tracks);
    return HD_ENOMEM;
  }
  double rtt = -1;
  size_t n = 0;
  for (int i = 0; i < st->n_tracks && n < HD_QUALITY_REPORT_MAX_TRACKS; i++) {
    const hd_client_track_stats_t *t = &st->tracks[i];
    if (t->local || !t->track_sid[0]) continue;
    json_t *o = json_object();
    if (!o) continue;
    json_object_set_new(o, "sid", json_string(t->track_sid));
    json_object_set_new(o, "kind", json_string(t->kind == HD_CLIENT_VIDEO ? "video" : "audio"));
    set_int(o, "packets", (long long)t->packets);
    set_int(o, "lost", (long long)(t->packets_lost > 0 ? t->packets_lost : 0));
    if (t->kind == HD_CLIENT_VIDEO) {
      set_int(o, "freezes", (long long)t->freeze_count);
      set_int(o, "freeze_ms", (long long)(t->total_freezes_duration * 1000));
      set_int(o, "watched_ms", (long long)(t->total_watched * 1000));
      set_int(o, "frames_decoded", (long long)t->frames_decoded);
      set_int(o, "frames_dropped", (long long)t->frames_dropped);
      set_num(o, "jb_delay_s", t->jitter_buffer_delay);
      set_int(o, "jb_emitted", (long long)t->jitter_buffer_emitted_count);
    } else {
      set_int(o, "concealed", (long long)t->audio.concealed_samples);
      set_int(o, "samples", (long long)t->audio.total_samples_received);
      set_num(o, "jb_delay_s", t->audio.jitter_buffer_delay);
      set_int(o, "jb_emitted", (long long)t->audio.jitter_buffer_emitted_count);
    }
    if (t->round_trip_time > 0 && (rtt < 0 || t->round_trip_time * 1000 < rtt))
      rtt = t->round_trip_time * 1000;
    json_array_append_new(tracks, o);
    n++;
  }
  if (!n) {
    json_decref(m);
    json_decref(tracks);
    return 0;
  }
  json_object_set_new(m, "type", json_string("quality_report"));
  json_object_set_new(m, "candidate", json_string("host")); /* the SDK gathers host candidates only */
  json_object_set_new(m, "rtt_ms", rtt >= 0 ? json_integer((json_int_t)(rtt + 0.5)) : json_null());
  json_object_set_new(m, "tracks", tracks);
  size_t len = json_dumpb(m, out, cap, JSON_COMPACT);
  json_decref(m);
  if (len == 0 || len >= cap) return HD_ENOSPC;
  out[len] = 0;
  return (int)len;
}
