/* Fuzz target for the overlay's link probes (src/overlay/link_meter): any
 * input is answered, taken as an echo or refused without reading outside it;
 * an answer is exactly an echo; the stats stay in range whatever arrives. */
#include <stdint.h>
#include <stdlib.h>

#include "base/err.h"
#include "overlay/link_meter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static hd_link_meter_t m;
  static int init;
  static hd_time_t now = HD_SEC(1);
  if (!init) {
    hd_link_meter_init(&m, 0, now);
    init = 1;
  }
  uint8_t out[64], reply[64];
  now += HD_MS(7);
  int n = hd_link_meter_poll(&m, now, out, sizeof out);
  if (n != 0 && n != HD_LINK_METER_PROBE_LEN) abort();
  int r = hd_link_meter_feed(&m, data, size, now, reply, sizeof reply);
  if (r != 0 && r != HD_LINK_METER_ECHO_LEN && r != HD_EINVAL) abort();
  if (r == HD_LINK_METER_ECHO_LEN && (reply[0] != HD_LINK_METER_ECHO || size != HD_LINK_METER_PROBE_LEN))
    abort();
  /* our own probe, echoed back, is always taken */
  if (n > 0) {
    hd_link_meter_t peer;
    hd_link_meter_init(&peer, 0, now);
    if (hd_link_meter_feed(&peer, out, (size_t)n, now, reply, sizeof reply) != HD_LINK_METER_ECHO_LEN)
      abort();
    if (hd_link_meter_feed(&m, reply, HD_LINK_METER_ECHO_LEN, now + HD_MS(3), NULL, 0) != 0) abort();
  }
  hd_link_meter_stats_t s;
  hd_link_meter_stats(&m, now, &s);
  if (s.loss_fwd < 0 || s.loss_fwd > 1 || s.loss_rtt < 0 || s.loss_rtt > 1 || s.srtt_ms < 0) abort();
  hd_link_meter_sample_t smp[HD_LINK_METER_SAMPLES];
  if (hd_link_meter_samples(&m, smp, HD_LINK_METER_SAMPLES) > HD_LINK_METER_SAMPLES) abort();
  return 0;
}
