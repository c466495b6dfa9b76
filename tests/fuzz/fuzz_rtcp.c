/* Fuzz target for src/proto/rtcp: walk a compound packet and run every parser
 * on every packet; re-build what parsed and check it parses again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "proto/rtcp.h"

static hd_rtcp_twcc_pkt_t g_twcc[65536];
static uint16_t g_seqs[4096];
static uint8_t g_out[1 << 18];

static void check_sr_rr(const hd_rtcp_pkt_t *p) {
  hd_rtcp_sr_t sr;
  hd_rtcp_rr_t rr;
  if (hd_rtcp_parse_sr(p, &sr) == 0) {
    if (hd_rtcp_build_sr(&sr, g_out, sizeof g_out) < 0) abort();
  }
  if (hd_rtcp_parse_rr(p, &rr) == 0) {
    if (hd_rtcp_build_rr(&rr, g_out, sizeof g_out) < 0) abort();
  }
}

static void check_fb(const hd_rtcp_pkt_t *p) {
  hd_rtcp_fb_t fb;
  if (hd_rtcp_parse_fb(p, &fb) != 0) return;
  int n = hd_rtcp_nack_expand(&fb, g_seqs, 4096);
  if (n > 0) {
    int m = hd_rtcp_build_nack(fb.sender_ssrc, fb.media_ssrc, g_seqs, (size_t)n, g_out, sizeof g_out);
    if (m < 0) abort();
  }
  hd_rtcp_fir_entry_t fir[64];
  (void)hd_rtcp_fir_parse(&fb, fir, 64);
  hd_rtcp_remb_t remb;
  if (hd_rtcp_remb_parse(&fb, &remb) == 0) {
    if (hd_rtcp_build_remb(1, remb.bitrate_bps, remb.ssrcs, remb.ssrc_count, g_out, sizeof g_out) < 0)
      abort();
  }
  hd_rtcp_twcc_t tw;
  int c = hd_rtcp_twcc_parse(&fb, &tw, g_twcc, 65536);
  if (c > 0) {
    /* Rebuild from the received entries (clamped to non-negative arrivals). */
    static hd_rtcp_twcc_recv_t r[65536];
    size_t k = 0;
    int64_t shift = 0;
    for (int i = 0; i < c; i++)
      if (g_twcc[i].status && g_twcc[i].recv_us < shift) shift = g_twcc[i].recv_us;
    int64_t last = -1;
    for (int i = 0; i < c; i++) {
      if (!g_twcc[i].status) continue;
      int64_t a = g_twcc[i].recv_us - shift;
      if (a < last) a = last; /* keep the builder's rounding path simple */
      last = a;
      r[k].seq = g_twcc[i].seq;
      r[k].arrival = a;
      k++;
    }
    if (k > 0) {
      size_t used;
      (void)hd_rtcp_build_twcc(fb.sender_ssrc, fb.media_ssrc, tw.fb_count, r, k, &used, g_out, sizeof g_out);
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  (void)hd_rtcp_validate(data, size, 0);
  (void)hd_rtcp_validate(data, size, 1);
  hd_rtcp_iter_t it;
  hd_rtcp_pkt_t p;
  hd_rtcp_iter_init(&it, data, size);
  int guard = 0;
  while (hd_rtcp_next(&it, &p) == 1) {
    if (p.pkt < data || p.pkt + p.pkt_len > data + size) abort();
    if (p.body + p.body_len > p.pkt + p.pkt_len) abort();
    check_sr_rr(&p);
    hd_rtcp_sdes_t sd;
    if (hd_rtcp_parse_sdes(&p, &sd) == 0) {
      if (hd_rtcp_build_sdes(&sd, g_out, sizeof g_out) < 0) abort();
    }
    hd_rtcp_bye_t bye;
    (void)hd_rtcp_parse_bye(&p, &bye);
    check_fb(&p);
    if (++guard > 100000) abort();
  }
  return 0;
}
