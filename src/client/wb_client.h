/* Native whiteboard client (docs/whiteboard.md "C SDK", docs/sdk.md
 * "Whiteboard"): joins a room's board for a device or a smart screen — its
 * own RTM session (client/rtm_client.h) on the board's channel
 * wb:<room>:<board>, the state from GET /api/board (snapshot + tail), then
 * every entry as the node sends it, applied to a local hd_board_t with the
 * node's rules (board/board.h) so the device holds exactly the others'
 * board; operations go out as RTM publishes. A gap in the board's sequence
 * (a lost RTM session) is refilled from /api/board?after=N.
 *
 * Threading: like hd_rtmc, everything runs on the caller's uv_loop_t; call
 * every function on that loop's thread; callbacks run there; strings given to
 * callbacks are lent for the call. */
#ifndef HD_CLIENT_WB_CLIENT_H
#define HD_CLIENT_WB_CLIENT_H
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "board/board.h"

#define HD_WBC_MAX_BODY (64u << 20) /* /api/board answer (a board of ~100 000 elements) */
#define HD_WBC_MAX_HELD 4096        /* live entries held while loading or refilling */

typedef struct hd_wbc hd_wbc_t;

typedef struct {
  const char *rtm_url;      /* "ws://127.0.0.1:7880/rtm" */
  const char *api_url;      /* "http://127.0.0.1:7880" (an IPv4 literal host; no TLS) */
  const char *token;        /* room token with the rtm grant (canPublishData to draw) */
  const char *room, *board; /* board NULL = "main" */
  /* The board is loaded (err 0) or could not be (a negative HD_E* or an HTTP
   * status > 0, with a reason). */
  void (*on_ready)(void *ud, int err, const char *why);
  /* An entry applied (entry: the node's JSON text; the state is updated). */
  void (*on_entry)(void *ud, int64_t seq, const char *entry, size_t len);
  /* Cursor / live stroke messages of others (JSON text of the operation). */
  void (*on_ephemeral)(void *ud, const char *from, const char *op, size_t len);
  /* An operation of ours was refused (code 400.., reason, message). */
  void (*on_refused)(void *ud, int code, const char *reason, const char *message);
  void *ud;
} hd_wbc_config_t;

/* Creates the client and starts joining (login, subscribe, load).
 * Returns 0, HD_EINVAL (missing url/token/room, bad board name), HD_ENOMEM. */
int hd_wbc_join(hd_wbc_t **out, uv_loop_t *loop, const hd_wbc_config_t *cfg);
/* Logs out and frees; no callback after. */
void hd_wbc_free(hd_wbc_t *w);

/* The local board (valid after on_ready): hd_board_each, hd_board_hash, ... */
const hd_board_t *hd_wbc_board(const hd_wbc_t *w);
int hd_wbc_ready(const hd_wbc_t *w);

/* Sends an operation (docs/whiteboard.md "Operations"), JSON text. Refusals
 * come to on_refused. Returns 0 or a negative HD_E* (not ready, queue full). */
int hd_wbc_send(hd_wbc_t *w, const char *op_json);
/* Draws a stroke on page: n points (x, y absolute board units, pressure
 * 0..100, t ms from the start); id is made up. color "#rrggbb". */
int hd_wbc_stroke(hd_wbc_t *w, const char *page, const int32_t (*pts)[4], int n, const char *color,
                  int width);
/* A rectangle / ellipse / line / arrow from (x0, y0) to (x1, y1). */
int hd_wbc_shape(hd_wbc_t *w, const char *page, const char *kind, int x0, int y0, int x1, int y1,
                 const char *color, int width);
/* Cursor (and laser with laser = 1): ephemeral. */
int hd_wbc_cursor(hd_wbc_t *w, const char *page, int x, int y, int laser);

#endif
