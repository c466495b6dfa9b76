/* libFuzzer target for the whiteboard operation parser (src/board/board.h):
 * each input is split at '\n' into client operations fed to a node board
 * (small caps, three users, one of them a reader); every committed entry is
 * applied to a replica, which must end with the node's state (an abort
 * otherwise: a divergence is a bug like a crash). Each line is also fed as
 * an entry and as a snapshot to a third board (the participant's parsers). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "board/board.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hd_board_limits_t lim = {
      .max_pages = 3, .max_elements = 8, .max_points = 16, .max_undo = 4, .max_entry = 4096};
  hd_board_t *n, *r, *x;
  if (hd_board_new(&n, &lim) < 0) return 0;
  if (hd_board_new(&r, NULL) < 0) {
    hd_board_free(n);
    return 0;
  }
  if (hd_board_new(&x, &lim) < 0) {
    hd_board_free(n);
    hd_board_free(r);
    return 0;
  }
  static const char *const users[] = {"a", "b", "reader"};
  const char *p = (const char *)data, *end = p + size;
  for (int i = 0; p < end; i++) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
    char *entry = NULL;
    hd_board_err_t e;
    int rc = hd_board_op(n, users[i % 3], i % 3 != 2, p, len, i, &entry, &e);
    if (rc == HD_BOARD_COMMITTED) {
      if (hd_board_apply_entry(r, entry, strlen(entry)) != 0) abort();
      free(entry);
    } else if (entry)
      abort();
    hd_board_apply_entry(x, p, len);
    hd_board_load_snapshot(x, p, len);
    p += len + (nl ? 1 : 0);
  }
  if (hd_board_hash(n) != hd_board_hash(r) || hd_board_seq(n) != hd_board_seq(r)) abort();
  hd_board_free(n);
  hd_board_free(r);
  hd_board_free(x);
  return 0;
}
