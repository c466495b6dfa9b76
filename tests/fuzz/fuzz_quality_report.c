/* Fuzz target for the client quality messages (src/quality/report.h): any
 * input, parsed as JSON, then as a quality_report and a quality_join, must
 * give 0 or HD_EPROTO with a NUL-terminated reason, never a crash, leak or
 * out-of-bounds access; a report that parses has at most
 * HD_QREPORT_MAX_TRACKS tracks, NUL-terminated strings, and deltas against
 * itself that are all zero. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "quality/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *o = json_loadb((const char *)data, size, 0, NULL);
  if (!o) return 0;
  char err[256];
  hd_qreport_t r;
  int rc = hd_qreport_parse(o, &r, err, sizeof err);
  if (rc != 0 && rc != HD_EPROTO) abort();
  if (rc == HD_EPROTO && !memchr(err, 0, sizeof err)) abort();
  if (rc == 0) {
    if (r.n_tracks < 0 || r.n_tracks > HD_QREPORT_MAX_TRACKS || !memchr(r.candidate, 0, sizeof r.candidate))
      abort();
    for (int i = 0; i < r.n_tracks; i++) {
      if (!memchr(r.tracks[i].sid, 0, sizeof r.tracks[i].sid)) abort();
      hd_qdelta_t d;
      hd_qtrack_delta(&r.tracks[i], &r.tracks[i], &d);
      if (d.packets || d.freezes || d.freeze_ms || d.watched_ms || d.samples || d.concealed) abort();
    }
  }
  hd_qjoins_t j;
  rc = hd_qjoins_parse(o, &j, err, sizeof err);
  if (rc != 0 && rc != HD_EPROTO) abort();
  if (rc == 0 && (j.n < 0 || j.n > HD_QREPORT_MAX_ATTEMPTS)) abort();
  json_decref(o);
  return 0;
}
