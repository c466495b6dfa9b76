/* RTM across nodes (issue 15 item 5; docs/overlay.md "RTM across nodes"):
 * the shared per-channel log and state of the RTM broker (rtm/broker.h
 * hd_rtm_cluster_t) in the cluster's Redis.
 *
 * - Each channel has a log, a Redis stream: a Lua script sequences a publish
 *   (INCR of the channel's cseq) and appends it in one atomic step, so the
 *   stream's order is the channel's one order, whichever node published.
 *   Presence, attribute and lock changes are appended by the scripts that
 *   make them, in the same order.
 * - Every node reads the logs of the channels it has subscribers for with
 *   one blocking XREAD on its own connection and fans each entry out
 *   locally (hd_rtm_cluster_entry): no node-to-node link, one copy per node.
 * - Members, attributes (compare-and-set) and locks are hashes changed by
 *   Lua scripts (atomic; lock times by Redis's clock).
 * - Between nodes (resume requests, moved sessions, peer messages and their
 *   outcomes, user events): control streams (one to every node, one inbox
 *   per node) read in the same XREAD from kept positions, so a reader that
 *   reconnects loses nothing; peer messages are de-duplicated on (sender's
 *   session, id) (rtm/seen.h), publishes on (session, id) in Redis.
 *   A client resuming on another node: that node asks the others; the
 *   holder exports the session (hd_rtm_cluster_export) and the asker
 *   imports it.
 *
 * The broker's calls (append, CAS, locks, who, history) are synchronous on a
 * hiredis connection with short timeouts (like the SQLite store they stand in
 * for); reading the logs and the pub/sub are asynchronous on the loop. Redis
 * away: the calls fail at once (503 unavailable to the client, no retry
 * storm: one reconnect attempt per 500 ms), the readers reconnect with backoff
 * and continue from their positions; nothing crashes. */
#ifndef HD_IO_RTM_REDIS_H
#define HD_IO_RTM_REDIS_H
#include <stddef.h>

#include "cluster/redis_url.h"
#include "rtm/broker.h"

struct uv_loop_s;
typedef struct hd_rtm_redis hd_rtm_redis_t;

#define HD_RTM_REDIS_DEFAULT_LOG 10000 /* entries kept per channel log (approximately: MAXLEN ~) */

typedef struct {
  hd_redis_url_t url;
  const char *node_id;
  int log_max;    /* 0 = HD_RTM_REDIS_DEFAULT_LOG */
  int dedupe_max; /* peer messages remembered for de-duplication; 0 = HD_RTM_SEEN_DEFAULT (rtm/seen.h) */
} hd_rtm_redis_config_t;

/* Creates the link (connects lazily). HD_EINVAL, HD_ENOMEM. */
int hd_rtm_redis_new(hd_rtm_redis_t **out, struct uv_loop_s *loop, const hd_rtm_redis_config_t *cfg);
/* The broker's cluster interface (valid while r lives). */
const hd_rtm_cluster_t *hd_rtm_redis_ops(hd_rtm_redis_t *r);
/* The broker to feed (log entries, session moves); starts the readers. */
void hd_rtm_redis_start(hd_rtm_redis_t *r, hd_rtm_broker_t *b);
/* Closes the connections and frees (run the loop afterwards so that handles
 * close). NULL is fine. */
void hd_rtm_redis_free(hd_rtm_redis_t *r);
/* Prometheus lines (hudong_rtm_cluster_*); returns the length written or HD_ENOSPC. */
int hd_rtm_redis_metrics_text(hd_rtm_redis_t *r, char *out, size_t cap);

#endif
