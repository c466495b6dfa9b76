/* Whiteboard operation model (docs/whiteboard.md "Model", "Operations").
 *
 * A board is an ordered list of pages, each an ordered (z-order, back to
 * front) list of elements: freehand strokes, lines, arrows, rectangles,
 * ellipses, text and images. Every coordinate is an integer (board units), so
 * that the state's canonical JSON is the same text in C and in JavaScript.
 *
 * Sans-IO (DESIGN §3 rule 1) and deterministic: the node turns a client's
 * operation (JSON text, hd_board_op) into a list of *primitive* steps (add,
 * set, del, z, clear, padd, pdel, pmove), applies them in the order the node
 * accepts operations (one sequence number per board), and sends the applied
 * steps to every participant inside an *entry* {"seq","ts","by","cid","op",
 * "do":[steps]}. Participants (web/whiteboard.js, the C SDK) apply entries
 * with the same rules (hd_board_apply_entry), so every participant that has
 * applied the same entries holds the same state, whatever the interleaving of
 * the writers. Concurrent edits of one element: the node's order decides;
 * "set" steps merge field by field, the later one wins each field it names;
 * an update of an element deleted before it is refused (404); an update
 * carrying "if" (the element version it was based on) is refused with 409
 * when the element changed since (compare-and-set for clients that want it).
 *
 * Undo/redo is per user and done by the node: each committed operation keeps
 * its inverse steps; "undo" applies the inverse of the user's last operation
 * (steps that no longer apply, e.g. an element someone else deleted, are
 * skipped) and "redo" the inverse of that.
 *
 * Ephemeral operations ("cur": cursor / laser pointer, "live": the points of
 * a stroke being drawn) are validated but change nothing: the node passes
 * them on unstored (hd_board_op returns HD_BOARD_EPHEMERAL). */
#ifndef HD_BOARD_BOARD_H
#define HD_BOARD_BOARD_H
#include <stddef.h>
#include <stdint.h>

/* Defaults of the caps (docs/whiteboard.md "Limits"; config keys board.*). */
#define HD_BOARD_DEFAULT_MAX_PAGES 100
#define HD_BOARD_DEFAULT_MAX_ELEMENTS 20000     /* per page */
#define HD_BOARD_DEFAULT_MAX_POINTS 1000        /* per stroke (x, y, pressure, time each) */
#define HD_BOARD_DEFAULT_MAX_UNDO 50            /* undo (and redo) depth per user */
#define HD_BOARD_DEFAULT_MAX_ENTRY (512 * 1024) /* an applied entry's JSON text (undo of a big clear) */
#define HD_BOARD_DEFAULT_MAX_BYTES (32u << 20)  /* all elements' JSON text on one board */
#define HD_BOARD_MAX_TEXT 4096                  /* a text element's bytes */
#define HD_BOARD_MAX_ID 40                      /* element / page id: 1..40 of A-Z a-z 0-9 _ - */
#define HD_BOARD_MAX_NAME 64                    /* page name bytes */
#define HD_BOARD_MAX_ITEMS 500                  /* elements one upd / del names */
#define HD_BOARD_MAX_COORD 10000000             /* |x|, |y|, w, h, point coordinates */
#define HD_BOARD_MAX_USERS 1024                 /* users with an undo history per board */
#define HD_BOARD_MAX_LIVE_POINTS 256            /* points in one "live" message */

typedef struct {
  int max_pages, max_elements, max_points, max_undo; /* 0 = default */
  size_t max_entry;                                  /* 0 = default */
  size_t max_bytes; /* the elements' JSON text, the whole board (memory); 0 = default */
} hd_board_limits_t;

typedef struct hd_board hd_board_t;

/* Why an operation was refused: status (400 bad_request, 403 forbidden, 404
 * not_found, 409 conflict, 413 too_large, 503 full), reason and a message
 * that says what to do. */
typedef struct {
  int status;
  const char *reason;
  char msg[240];
} hd_board_err_t;

enum { HD_BOARD_COMMITTED = 1, HD_BOARD_EPHEMERAL = 2 };

/* A new board: one page, id "p1", name "Page 1", seq 0. lim may be NULL.
 * Returns 0 or HD_ENOMEM. */
int hd_board_new(hd_board_t **out, const hd_board_limits_t *lim);
void hd_board_free(hd_board_t *b);

/* A client's operation text[0..len) from user (writer: may change the board;
 * a reader may only send "cur"), accepted at wall time ts_ms. Committed: the
 * board is changed, its seq incremented, *entry = the applied entry (malloc'd
 * NUL-terminated compact JSON; free()) and HD_BOARD_COMMITTED is returned.
 * Ephemeral: HD_BOARD_EPHEMERAL, *entry = NULL, nothing changed. Refused: a
 * negative HD_E* with *err filled, nothing changed. */
int hd_board_op(hd_board_t *b, const char *user, int writer, const char *text, size_t len, int64_t ts_ms,
                char **entry, hd_board_err_t *err);

/* Applies an entry made by hd_board_op (from the log at load, or received by
 * a participant). Its seq must be the board's seq + 1 (HD_ESTATE otherwise:
 * a gap or a duplicate, nothing applied). Steps that do not apply are skipped
 * (as the node did). Returns 0, HD_EPROTO (malformed: nothing applied),
 * HD_ESTATE. */
int hd_board_apply_entry(hd_board_t *b, const char *text, size_t len);

/* The board's state {"seq":N,"pages":[{"id","name","els":[...]}]} (malloc'd
 * compact JSON, keys sorted; NULL on out of memory). */
char *hd_board_snapshot(const hd_board_t *b);
/* Replaces the state with a snapshot's (undo histories are cleared). Returns 0,
 * HD_EPROTO (malformed: the board is unchanged) or HD_ENOMEM. */
int hd_board_load_snapshot(hd_board_t *b, const char *text, size_t len);

int64_t hd_board_seq(const hd_board_t *b);
/* Pages and elements (all pages). */
void hd_board_count(const hd_board_t *b, int *pages, int *elements);
/* The elements' JSON text in bytes (what board.max_board_mb caps). */
size_t hd_board_bytes(const hd_board_t *b);
/* FNV-1a 64 of the canonical state (the snapshot's pages, keys sorted, without
 * seq): equal for every participant holding the same state. */
uint64_t hd_board_hash(const hd_board_t *b);

/* Element access for renderers (the C SDK): calls fn for every element of
 * page i (back to front) with its compact JSON text; stops when fn returns
 * < 0. Returns the number visited, HD_ENOTFOUND for no page i. */
typedef int (*hd_board_el_fn)(void *ud, const char *page_id, const char *el_json);
int hd_board_each(const hd_board_t *b, int page, hd_board_el_fn fn, void *ud);

#endif
