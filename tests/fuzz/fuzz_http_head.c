/* Fuzz target for io/http_head (the first-request check in front of
 * libwebsockets): any bytes must give a head length within the input, and a
 * check that returns a status from the documented set or 0 with a rewritten
 * head that is still a complete head inside the buffer, never a crash or an
 * out-of-bounds access. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/http_head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > HD_HTTP_HEAD_MAX) size = HD_HTTP_HEAD_MAX;
  char *buf = malloc(size + 1);
  if (!buf) return 0;
  memcpy(buf, data, size);
  buf[size] = 0;
  size_t head = hd_http_head_length(buf, size);
  if (head > size) abort();
  if (head) {
    size_t total = size, h = head;
    char why[256];
    hd_http_head_info_t info;
    int st = hd_http_head_check(buf, &h, &total, why, sizeof why, &info);
    if (st != 0 && st != 400 && st != 405 && st != 501 && st != 505) abort();
    if (st == 0) {
      /* lines were only removed: the head shrank by what the total shrank by */
      if (h > head || total > size || head - h != size - total) abort();
      if (hd_http_head_length(buf, total) != h) abort();
    } else if (!memchr(why, 0, sizeof why) || !why[0]) {
      abort();
    }
  }
  free(buf);
  return 0;
}
