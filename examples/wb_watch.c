/* wb_watch: a device on a room's whiteboard (docs/whiteboard.md "C SDK").
 * Joins the board, prints every operation as it arrives and, with --draw,
 * draws a spiral and a frame; after the given seconds prints the board's
 * pages, elements and state hash (the same hash as every browser's
 * wb.stateHash() on that board) and exits.
 *   usage: wb_watch ws://127.0.0.1:7880/rtm http://127.0.0.1:7880 TOKEN ROOM [SECONDS] [--draw] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "client/wb_client.h"

static hd_wbc_t *wb;
static int draw;

static void on_ready(void *ud, int err, const char *why) {
  if (err) {
    fprintf(stderr, "cannot join the board: %d %s\n", err, why);
    uv_stop(ud);
    return;
  }
  int pages, els;
  hd_board_count(hd_wbc_board(wb), &pages, &els);
  printf("joined at seq %lld: %d page(s), %d element(s)\n", (long long)hd_board_seq(hd_wbc_board(wb)), pages,
         els);
  if (!draw) return;
  int32_t pts[120][4];
  for (int i = 0; i < 120; i++) { /* a spiral, pressure rising, 8 ms apart */
    double a = i * 0.2, r = 5 + i * 1.5;
    pts[i][0] = (int32_t)(400 + r * cos(a));
    pts[i][1] = (int32_t)(300 + r * sin(a));
    pts[i][2] = 30 + i / 2;
    pts[i][3] = i * 8;
  }
  hd_wbc_stroke(wb, "p1", (const int32_t(*)[4])pts, 120, "#1971c2", 4);
  hd_wbc_shape(wb, "p1", "rect", 200, 100, 600, 500, "#e03131", 3);
}

static void on_entry(void *ud, int64_t seq, const char *entry, size_t len) {
  printf("#%lld %.*s\n", (long long)seq, len > 160 ? 160 : (int)len, entry);
}

static void on_refused(void *ud, int code, const char *reason, const char *message) {
  fprintf(stderr, "refused: %d %s: %s\n", code, reason, message);
}

static void done(uv_timer_t *t) { uv_stop(t->loop); }

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s RTM_URL API_URL TOKEN ROOM [SECONDS] [--draw]\n", argv[0]);
    return 2;
  }
  int seconds = argc > 5 && argv[5][0] != '-' ? atoi(argv[5]) : 5;
  for (int i = 5; i < argc; i++)
    draw |= !strcmp(argv[i], "--draw");
  uv_loop_t *loop = uv_default_loop();
  hd_wbc_config_t cfg = {.rtm_url = argv[1],
                         .api_url = argv[2],
                         .token = argv[3],
                         .room = argv[4],
                         .on_ready = on_ready,
                         .on_entry = on_entry,
                         .on_refused = on_refused,
                         .ud = loop};
  if (hd_wbc_join(&wb, loop, &cfg) < 0) {
    fprintf(stderr, "bad arguments\n");
    return 2;
  }
  uv_timer_t t;
  uv_timer_init(loop, &t);
  uv_timer_start(&t, done, (uint64_t)seconds * 1000, 0);
  uv_run(loop, UV_RUN_DEFAULT);
  int ok = hd_wbc_ready(wb), pages, els;
  hd_board_count(hd_wbc_board(wb), &pages, &els);
  printf("board: seq %lld, %d page(s), %d element(s), hash %016llx\n",
         (long long)hd_board_seq(hd_wbc_board(wb)), pages, els,
         (unsigned long long)hd_board_hash(hd_wbc_board(wb)));
  hd_wbc_free(wb);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return ok ? 0 : 1;
}
