/* Fuzz target for the room signaling codec (hd_signal_parse / hd_signal_write).
 * Each input is parsed as a client->node and as a node->client message. Any
 * input must yield 0 or a negative HD_E* code, never a crash, leak or
 * out-of-bounds access. Beyond that, two invariants:
 *  - a message that parses can be written again, and writing is a fixed
 *    point: write(parse(write(m))) == write(m);
 *  - a message that fails gets an error reply that itself parses (so the node
 *    can always answer bad input with a valid "error"). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "sfu/signal.h"

static char w1[HD_SIGNAL_MAX_NODE_MSG + 1], w2[HD_SIGNAL_MAX_NODE_MSG + 1];

static void one(const char *text, size_t size, hd_signal_dir_t dir) {
  hd_signal_msg_t m, m2;
  hd_signal_error_t e;
  int r = hd_signal_parse(text, size, dir, &m, &e);
  if (r > 0 || r <= HD_E_LAST) abort();
  if (r != 0) {
    if (r != HD_EPROTO && r != HD_ENOMEM) abort();
    if (m.priv_ || m.type != HD_SIGNAL_NONE) abort();
    if (!memchr(e.message, 0, sizeof e.message) || !memchr(e.id, 0, sizeof e.id)) abort();
    int n = hd_signal_write_parse_error(&e, w1, sizeof w1);
    if (n <= 0) abort();
    if (hd_signal_parse(w1, (size_t)n, HD_SIGNAL_FROM_NODE, &m2, NULL) != 0) abort();
    if (m2.type != HD_SIGNAL_ERROR) abort();
    hd_signal_msg_free(&m2);
    return;
  }
  int n = hd_signal_write(&m, w1, sizeof w1);
  if (n < 0) {
    /* Defaults the writer spells out (e.g. "muted":false) can push a message
     * that was just under its cap over it; nothing else may fail. */
    size_t cap = dir == HD_SIGNAL_FROM_CLIENT ? HD_SIGNAL_MAX_MSG : HD_SIGNAL_MAX_NODE_MSG;
    if (n != HD_EINVAL || size + 2048 < cap) abort();
    hd_signal_msg_free(&m);
    return;
  }
  if (hd_signal_parse(w1, (size_t)n, dir, &m2, NULL) != 0) abort();
  if (m2.type != m.type) abort();
  int n2 = hd_signal_write(&m2, w2, sizeof w2);
  if (n2 != n || memcmp(w1, w2, (size_t)n) != 0) abort();
  hd_signal_msg_free(&m2);
  hd_signal_msg_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  one((const char *)data, size, HD_SIGNAL_FROM_CLIENT);
  one((const char *)data, size, HD_SIGNAL_FROM_NODE);
  return 0;
}
