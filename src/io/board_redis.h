/* Whiteboard snapshots shared through the cluster's Redis (docs/whiteboard.md
 * "Multi-node"): the node that owns a board (io/rtm_redis.c claims it) keeps
 * its newest state under hudong:board:<app>/<channel> (a hash {seq, snap},
 * with a TTL), so that the node that takes the board over when the owner
 * dies starts from it instead of from its own, stale store.
 *
 * A blocking hiredis connection on the control loop, as RTM's owner claim:
 * the board's publish hook must know the state before it applies an
 * operation. Each call is bounded by HD_BOARD_REDIS_TIMEOUT_MS; after a
 * failure no connect is tried for HD_BOARD_REDIS_RETRY_MS, so a Redis away
 * costs a board operation nothing (the board goes on from what the node has). */
#ifndef HD_IO_BOARD_REDIS_H
#define HD_IO_BOARD_REDIS_H
#include <stddef.h>
#include <stdint.h>

#include "cluster/redis_url.h"

#define HD_BOARD_REDIS_KEY "hudong:board:"
#define HD_BOARD_REDIS_TIMEOUT_MS 300
#define HD_BOARD_REDIS_RETRY_MS 1000

typedef struct hd_board_redis hd_board_redis_t;

/* ttl_ms: how long a shared snapshot outlives its last write (board.share_ttl_s
 * reaches 2592000 s, past INT_MAX ms). HD_ENOMEM. */
int hd_board_redis_new(hd_board_redis_t **out, const hd_redis_url_t *url, int64_t ttl_ms);
void hd_board_redis_free(hd_board_redis_t *r);
/* The shared snapshot of (app, ch) if its seq is above `have`: its text
 * (malloc'd, the caller frees) and seq. 0, HD_ENOTFOUND (none newer: only
 * the seq crossed), HD_EIO (Redis unreachable or refused). */
int hd_board_redis_get(void *r, const char *app, const char *ch, int64_t have, int64_t *seq, char **text);
/* Shares the snapshot text of (app, ch) at seq, unless Redis holds a newer
 * one (a node that lost the board must not overwrite its new owner's): 1
 * written, 0 not (newer there), HD_EIO. */
int hd_board_redis_put(void *r, const char *app, const char *ch, int64_t seq, const char *text, size_t len);

#endif
