/* Fuzz target for the link's arrival reports (src/overlay/link_bwe): any
 * BWE_FB body is parsed or refused without reading outside it; a parsed one
 * writes back to the same bytes; feeding it to a sender that has a flow
 * never breaks the estimate (no crash, no estimate from nothing). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "overlay/link.h"
#include "overlay/link_bwe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static hd_link_bwe_t b;
  static int init;
  static hd_time_t now = HD_SEC(1);
  static uint64_t seq = 1;
  if (!init) {
    hd_link_bwe_init(&b, 0);
    init = 1;
  }
  now += HD_MS(3);
  /* a few datagrams out on flows 0 and 1 (lane 0) */
  for (int i = 0; i < 4; i++)
    if (hd_link_bwe_on_sent(&b, i & 1, seq++, 1200, now) < 0) abort();
  hd_link_bwe_fb_t f;
  int rc = hd_link_bwe_fb_parse(data, size, &f);
  if (rc != 0 && rc != HD_EPROTO) abort();
  if (rc == 0) {
    uint8_t out[HD_LINK_BWE_FB_HDR + HD_LINK_BWE_FB_MAX * HD_LINK_BWE_FB_ENTRY];
    int n = hd_link_bwe_fb_write(&f, out, sizeof out);
    if (n != (int)size || memcmp(out, data, size)) abort();
  }
  int m = hd_link_bwe_on_feedback(&b, data, size, now);
  if (m < 0 && m != HD_EPROTO) abort();
  if (m > HD_LINK_BWE_FB_MAX) abort();
  /* the receiving side: the input's first bytes as a sequence number */
  uint64_t s = 0;
  for (size_t i = 0; i < size && i < 8; i++)
    s = s << 8 | data[i];
  hd_link_bwe_on_received(&b, s, now, "ab", 2);
  uint8_t out[HD_LINK_BWE_FB_HDR + HD_LINK_BWE_FB_MAX * HD_LINK_BWE_FB_ENTRY];
  const void *ret;
  size_t rl;
  int n;
  while ((n = hd_link_bwe_poll(&b, now + HD_MS(60), out, sizeof out, &ret, &rl)) > 0) {
    hd_link_bwe_fb_t g;
    if (hd_link_bwe_fb_parse(out, (size_t)n, &g) != 0 || rl != 2) abort();
  }
  if (n < 0) abort();
  hd_link_bwe_stats_t st;
  hd_link_bwe_stats(&b, now, &st);
  if (st.loss < 0 || st.loss > 1 || st.flows > HD_LINK_BWE_FLOWS) abort();
  return 0;
}
