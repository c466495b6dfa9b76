/* Fuzz target for reliable messages over the node link (src/overlay/link_rel):
 * a run of DATA and DATA_ACK bodies from a peer (which holds the link key but
 * may be buggy), fed to one stream end that also sends, in virtual time.
 * Input: records of [kind byte][len byte][body]. Checks: a delivered message
 * is never longer than HD_LINK_REL_MSG_MAX, the send window never holds more
 * than HD_LINK_REL_WINDOW segments, and what poll writes fits its buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "overlay/link_rel.h"

static void on_msg(void *ud, const uint8_t *m, size_t len) {
  (void)ud;
  (void)m;
  if (len > HD_LINK_REL_MSG_MAX) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hd_link_rel_t r;
  hd_link_rel_init(&r, 7, 1000);
  hd_time_t now = HD_SEC(1);
  uint8_t out[HD_LINK_REL_DATA_HDR + HD_LINK_REL_SEG];
  size_t off = 0;
  while (off + 2 <= size) {
    uint8_t kind = data[off], l = data[off + 1];
    off += 2;
    size_t len = l <= size - off ? l : size - off;
    uint8_t body[HD_LINK_REL_DATA_HDR + HD_LINK_REL_SEG];
    memset(body, 0, sizeof body);
    memcpy(body, data + off, len);
    off += len;
    switch (kind % 4) {
    case 0: /* a DATA body (short ones stretched so full segments are reachable) */
      hd_link_rel_on_data(&r, body, (kind & 4) ? sizeof body : len, on_msg, NULL);
      break;
    case 1: hd_link_rel_on_ack(&r, body, (kind & 4) ? HD_LINK_REL_ACK_LEN : len, now); break;
    case 2: /* our side sends a message of len * 37 bytes */
      hd_link_rel_send(&r, body, len * 37 > sizeof body ? sizeof body : len * 37 + 1);
      break;
    default: { /* time passes, what is due goes out */
      now += (hd_time_t)l * HD_MS(10);
      int is_ack, n;
      while ((n = hd_link_rel_poll(&r, now, out, sizeof out, &is_ack)) > 0)
        if ((size_t)n > sizeof out) abort();
      break;
    }
    }
    if (r.next_seq - r.una > HD_LINK_REL_WINDOW) abort();
  }
  hd_link_rel_free(&r);
  return 0;
}
