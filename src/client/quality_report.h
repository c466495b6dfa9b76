/* The C SDK's quality report (issue 14 item 1; docs/quality.md "Collection",
 * message `quality_report`): what the client alone sees — freezes, frames,
 * concealment, jitter-buffer delay — sent to the node every few seconds the
 * same way web/rtc.js sends its getStats summary, so SDK participants show on
 * the quality API and dashboard like browsers. Sans-IO: stats in, text out. */
#ifndef HD_CLIENT_QUALITY_REPORT_H
#define HD_CLIENT_QUALITY_REPORT_H
#include <stddef.h>

#include "hudong/client.h"

#define HD_QUALITY_REPORT_INTERVAL_MS 5000 /* as web/rtc.js */
#define HD_QUALITY_REPORT_MAX_TRACKS 16    /* the node refuses more */

/* Writes {"type":"quality_report",...} for the remote tracks of st that the
 * node named (counters cumulative, as the node expects) into out. Returns the
 * length, 0 when there is no remote track to report, HD_ENOSPC or HD_ENOMEM. */
int hd_quality_report_json(const hd_client_stats_t *st, char *out, size_t cap);

#endif
