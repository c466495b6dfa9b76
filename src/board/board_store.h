/* Whiteboard storage (docs/whiteboard.md "Storage"): each board's operation
 * log (every committed entry, with its sequence number and time: the replay
 * source), periodic snapshots (what a board is reloaded from: the newest
 * snapshot plus the entries after it) and uploaded images, in SQLite tables
 * next to the RTM store's (the same database file by default; WAL lets the
 * two connections share it). Synchronous, on the caller's thread, like the
 * RTM store. Keys are scoped by app (the tenant) and board channel. */
#ifndef HD_BOARD_STORE_H
#define HD_BOARD_STORE_H
#include <stddef.h>
#include <stdint.h>

typedef struct hd_board_store hd_board_store_t;

/* Opens (creates the tables). path ":memory:" keeps nothing. Returns 0, HD_EIO
 * (reason in err), HD_ENOMEM. */
int hd_board_store_open(hd_board_store_t **out, const char *path, char *err, size_t errcap);
void hd_board_store_free(hd_board_store_t *s);

int hd_board_store_append(hd_board_store_t *s, const char *app, const char *ch, int64_t seq, int64_t ts_ms,
                          const char *entry);
/* Stores a snapshot taken at seq; older snapshots of the board but the
 * previous one are removed. */
int hd_board_store_snap_put(hd_board_store_t *s, const char *app, const char *ch, int64_t seq,
                            const char *snap);
/* The newest snapshot: *snap malloc'd. Returns 0 or HD_ENOTFOUND, HD_EIO. */
int hd_board_store_snap_get(hd_board_store_t *s, const char *app, const char *ch, int64_t *seq, char **snap);
/* Entries with seq > after (and ts >= since_ms when since_ms >= 0), ascending,
 * at most limit: fn(ud, seq, ts, entry) for each; fn < 0 stops. Returns the
 * count or HD_EIO. */
typedef int (*hd_board_entry_fn)(void *ud, int64_t seq, int64_t ts_ms, const char *entry);
int hd_board_store_entries(hd_board_store_t *s, const char *app, const char *ch, int64_t after,
                           int64_t since_ms, int limit, hd_board_entry_fn fn, void *ud);
/* Highest seq logged for the board (0 = none). */
int hd_board_store_last_seq(hd_board_store_t *s, const char *app, const char *ch, int64_t *seq);

/* Images by content hash (hex SHA-256): put is idempotent; get mallocs *data. */
int hd_board_store_image_put(hd_board_store_t *s, const char *hash, const char *type, const void *data,
                             size_t len);
int hd_board_store_image_get(hd_board_store_t *s, const char *hash, char type[64], void **data, size_t *len);

#endif
