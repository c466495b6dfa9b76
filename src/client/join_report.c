/* Join attempt reports (join_report.h). */
#include "client/join_report.h"

#include <jansson.h>
#include <string.h>

#include "base/err.h"

static json_t *ms_or_null(int64_t v) { return v >= 0 ? json_integer((json_int_t)v) : json_null(); }

int hd_join_report_json(const hd_join_attempt_t *a, int n, const char *msg_id, char *out, size_t cap) {
  if (n < 1 || n > HD_JOIN_REPORT_MAX) return HD_EINVAL;
  for (int i = 0; i < n; i++)
    if (!a[i].id[0] || a[i].started_at_ms <= 0) return HD_EINVAL;
  json_t *arr = json_array();
  for (int i = 0; arr && i < n; i++) {
    json_t *x = json_pack("{s:s, s:s, s:I, s:s, s:s, s:o, s:o}", "id", a[i].id, "room", a[i].room,
                          "started_at", (json_int_t)a[i].started_at_ms, "outcome", a[i].ok ? "ok" : "failed",
                          "reason", a[i].ok ? "" : a[i].reason, "join_ms", ms_or_null(a[i].join_ms),
                          "first_media_ms", ms_or_null(a[i].first_media_ms));
    if (!x || json_array_append_new(arr, x) < 0) {
      json_decref(arr);
      return HD_ENOMEM;
    }
  }
  json_t *o = arr ? json_pack("{s:s, s:o}", "type", "quality_join", "attempts", arr) : NULL;
  if (!o) return HD_ENOMEM;
  if (msg_id) json_object_set_new(o, "id", json_string(msg_id));
  size_t len = json_dumpb(o, out, cap, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(o);
  if (len == 0) return HD_ENOMEM;
  if (len >= cap) return HD_ENOSPC;
  out[len] = '\0';
  return (int)len;
}

void hd_join_tally_add(hd_join_tally_t *t, const hd_join_attempt_t *a) {
  t->attempts++;
  if (!a->ok) {
    t->failed++;
    return;
  }
  if (a->first_media_ms >= 0 && a->first_media_ms <= 5000) t->succeeded_5s++;
  if (a->first_media_ms >= 0 && a->first_media_ms <= 1000) t->succeeded_1s++;
}
