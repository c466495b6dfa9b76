/* Fuzz target for src/rtc/bwe: the input is a script of operations on one
 * estimator -- packets sent, raw RTCP bytes taken as TWCC feedback, feedback
 * built from fuzzed (seq, arrival) lists with the real builder, REMB, probe
 * requests -- with the clock moving forward. Checks the target always stays
 * within [min_bps, max_bps] and the pacing rate is at least the target. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "proto/rtcp.h"
#include "rtc/bwe.h"

static hd_bwe_t g_bwe;
static hd_rtcp_twcc_pkt_t g_pkts[65536];
static hd_rtcp_twcc_recv_t g_recv[256];

static void feed_rtcp(const uint8_t *p, size_t len, hd_time_t now) {
  hd_rtcp_iter_t it;
  hd_rtcp_pkt_t pkt;
  hd_rtcp_iter_init(&it, p, len);
  while (hd_rtcp_next(&it, &pkt) == 1) {
    hd_rtcp_fb_t fb;
    hd_rtcp_twcc_t tw;
    if (pkt.pt != HD_RTCP_RTPFB || hd_rtcp_parse_fb(&pkt, &fb) != 0 || fb.fmt != HD_RTCP_FMT_TWCC) continue;
    int n = hd_rtcp_twcc_parse(&fb, &tw, g_pkts, 65536);
    if (n >= 0 && hd_bwe_on_twcc(&g_bwe, &tw, g_pkts, (size_t)n, now) < 0) abort();
  }
}

static void check(void) {
  uint64_t t = hd_bwe_target(&g_bwe);
  if (t < g_bwe.cfg.min_bps || t > g_bwe.cfg.max_bps) abort();
  if (hd_bwe_pacing_rate(&g_bwe) < t) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  hd_bwe_config_t c;
  hd_bwe_config_init(&c);
  if (hd_bwe_init(&g_bwe, &c, 0) != 0) abort();
  hd_time_t now = 0;
  uint16_t seq = 0;
  uint8_t fb_count = 0;
  size_t i = 0;
  while (i < n) {
    uint8_t op = d[i++];
    now += (hd_time_t)(op >> 3) * 1000; /* 0..31 ms per step */
    switch (op & 7) {
    case 0: /* a packet */
    case 1: {
      if (i + 2 > n) return 0;
      size_t size = (size_t)d[i] * 8 + 1;
      int cluster = d[i + 1] % 4;
      i += 2;
      hd_bwe_on_packet_sent(&g_bwe, seq++, size, now, cluster);
      break;
    }
    case 2: { /* raw RTCP bytes */
      if (i + 1 > n) return 0;
      size_t len = d[i++];
      if (len > n - i) len = n - i;
      feed_rtcp(d + i, len, now);
      i += len;
      break;
    }
    case 3: { /* well-formed feedback from fuzzed gaps and arrival deltas */
      if (i + 1 > n) return 0;
      size_t k = d[i++] % 64 + 1, m = 0;
      uint16_t s = (uint16_t)(seq - 64);
      hd_time_t arr = now;
      for (size_t j = 0; j < k && i + 2 <= n; j++, i += 2) {
        s = (uint16_t)(s + 1 + (d[i] & 3));
        arr += (hd_time_t)d[i + 1] * 250;
        g_recv[m].seq = s;
        g_recv[m].arrival = arr;
        m++;
      }
      if (m) {
        uint8_t out[2048];
        int len = hd_rtcp_build_twcc(1, 2, fb_count++, g_recv, m, NULL, out, sizeof out);
        if (len > 0) feed_rtcp(out, (size_t)len, now);
      }
      break;
    }
    case 4: /* REMB */
      if (i + 3 > n) return 0;
      hd_bwe_on_remb(&g_bwe, ((uint64_t)d[i] << 16 | (uint64_t)d[i + 1] << 8 | d[i + 2]) * 16, now);
      i += 3;
      break;
    case 5: {
      hd_bwe_probe_t p;
      if (hd_bwe_next_probe(&g_bwe, now, &p) == 1 && (p.id <= 0 || p.bitrate_bps == 0)) abort();
      break;
    }
    case 6: hd_bwe_set_desired(&g_bwe, (uint64_t)(op >> 3) * 100000); break;
    default: now += HD_SEC(1); break;
    }
    check();
  }
  return 0;
}
