/* Join attempts as a client reports them (issue 14, docs/quality.md
 * "Collection", message `quality_join`): what the C clients send so that the
 * node's quality data counts their joins like the browser's (web/rtc.js), and
 * the same tally the node's API makes of them, so a client-side figure (e.g.
 * `hudong bench load`) and /admin/quality/summary agree by construction of
 * one definition (DESIGN §6 "join success"):
 *   succeeded within 5 s = outcome ok and first media ≤ 5000 ms after start;
 *   within 1 s the same with 1000 ms; failed = outcome failed.
 * Sans-IO: builds text, never sends it. */
#ifndef HD_CLIENT_JOIN_REPORT_H
#define HD_CLIENT_JOIN_REPORT_H
#include <stddef.h>
#include <stdint.h>

#define HD_JOIN_REPORT_MAX 20 /* attempts per quality_join (the node refuses more) */

typedef struct {
  char id[40];            /* unique per attempt, e.g. "ja_<run>_<leg>" */
  char room[128];         /* room name */
  int64_t started_at_ms;  /* unix ms, the client's clock */
  int ok;                 /* 1 = reached the room (outcome "ok"), 0 = "failed" */
  char reason[128];       /* why it failed ("" for ok) */
  int64_t join_ms;        /* start -> "joined", -1 = never */
  int64_t first_media_ms; /* start -> first remote media, -1 = none */
} hd_join_attempt_t;

typedef struct {
  int attempts, succeeded_5s, succeeded_1s, failed;
} hd_join_tally_t;

/* Writes {"type":"quality_join","attempts":[...]} for a[0..n) (1..20) into
 * out, with "id": msg_id if not NULL (the node names it in a refusal, so the
 * sender can tell that error from others). Returns its length, HD_EINVAL (n
 * out of range, empty attempt id, started_at not positive) or HD_ENOSPC. */
int hd_join_report_json(const hd_join_attempt_t *a, int n, const char *msg_id, char *out, size_t cap);

/* Counts one attempt the way the node's API does. */
void hd_join_tally_add(hd_join_tally_t *t, const hd_join_attempt_t *a);

#endif
