/* The node's whiteboards (docs/whiteboard.md): boards in memory keyed by
 * (app, channel), fed by the RTM broker's publish hook (every operation on a
 * board channel "wb:<room>:<board>" passes here in channel order), logged and
 * snapshotted into the board store, and read back for late joiners (snapshot
 * + tail) and replay (the timed log). Single-threaded: the control loop. */
#ifndef HD_BOARD_SERVER_H
#define HD_BOARD_SERVER_H
#include <stddef.h>
#include <stdint.h>

#include "board/board.h"
#include "board/board_store.h"
#include "rtm/broker.h"

#define HD_BOARD_PREFIX "wb:"               /* board channels: wb:<room>:<board> */
#define HD_BOARD_DEFAULT_SNAPSHOT_EVERY 200 /* entries between snapshots */
#define HD_BOARD_DEFAULT_MAX_BOARDS 1000    /* boards held in memory per node (least recently used evicted) */
#define HD_BOARD_DEFAULT_MAX_IMAGE (1 << 20) /* uploaded image bytes */
#define HD_BOARD_LOG_MAX 1000                /* entries per replay page */

/* In a cluster (docs/whiteboard.md "Multi-node"), a board's state shared
 * with the other nodes (io/board_redis.h), so that the node taking a board
 * over from a dead owner starts from it. get: 0 with the shared snapshot
 * (text malloc'd) and its seq when it is newer than `have`, HD_ENOTFOUND
 * when there is none newer, or < 0; put: shares text at seq (>= 0 done or
 * refused as older, < 0 failed). */
typedef struct {
  int (*get)(void *ud, const char *app, const char *ch, int64_t have, int64_t *seq, char **text);
  int (*put)(void *ud, const char *app, const char *ch, int64_t seq, const char *text, size_t len);
  void *ud;
  int every_ms;     /* a changed board is shared at most this often (board.share_every_ms) */
  size_t max_bytes; /* a bigger snapshot is not shared (board.share_max_kb) */
} hd_board_share_t;
/* The owner checks the shared snapshot at most this often per board, before
 * an operation: a node that takes a board over (the owner's registry entry
 * gone, >= 3 s without its heartbeat) so sees the newest state first. */
#define HD_BOARD_SHARE_CHECK_MS 1000

typedef struct {
  hd_board_store_t *store; /* required; not owned */
  hd_board_limits_t lim;
  int snapshot_every, max_boards; /* 0 = default */
  hd_board_share_t share;         /* .get NULL: a node alone */
} hd_board_server_config_t;

typedef struct hd_board_server hd_board_server_t;

typedef struct {
  uint64_t ops, ephemeral, refused, store_errors, loads, evictions, snapshots;
  uint64_t shared, adopted; /* snapshots shared with the cluster; boards taken over from one */
  uint64_t boards;          /* gauge */
} hd_board_stats_t;

int hd_board_server_new(hd_board_server_t **out, const hd_board_server_config_t *cfg);
void hd_board_server_free(hd_board_server_t *s);

/* The broker's publish hook (hd_rtm_pub_hook_fn; ud = the server). */
int hd_board_server_pub_hook(void *ud, const hd_rtm_hook_pub_t *p, char **out, char *msg, size_t msgcap);

/* A board for a late joiner, as JSON (malloc'd into *json):
 *   after < 0:  {"ch","seq","snapshot":{...},"ops":[entries after the snapshot]}
 *   after >= 0: {"ch","seq","ops":[entries with seq > after]} (a gap refill)
 * Returns 0, HD_ENOSPC (too many boards), HD_EIO, HD_ENOMEM. */
int hd_board_server_load(hd_board_server_t *s, const char *app, const char *ch, int64_t after, char **json);
/* Replay: {"ch","ops":[entries with seq > after and ts >= since_ms],"more","next"} from
 * the log, at most limit (1..HD_BOARD_LOG_MAX) entries. */
int hd_board_server_log(hd_board_server_t *s, const char *app, const char *ch, int64_t after,
                        int64_t since_ms, int limit, char **json);
/* The board channel of (room, board), "wb:<room>:<board>". Returns 0 or
 * HD_EINVAL (board not 1..16 of A-Z a-z 0-9 _ -, or the channel over 64). */
int hd_board_channel(char *out, size_t cap, const char *room, const char *board);

void hd_board_server_stats(const hd_board_server_t *s, hd_board_stats_t *out);
/* Shares the boards changed since their last share and due (share.every_ms)
 * at wall_ms; call it about every share.every_ms. */
void hd_board_server_share_flush(hd_board_server_t *s, int64_t wall_ms);
/* Turns sharing on (once, before the first operation). */
void hd_board_server_set_share(hd_board_server_t *s, const hd_board_share_t *share);
int hd_board_server_metrics_text(const hd_board_server_t *s, char *buf, size_t cap);

#endif
