/* Probe clusters of a send-side bandwidth estimator: bookkeeping of the
 * packets sent in a short burst at a chosen rate (padding or RTX of recent
 * packets, paced at that rate) and the rate they measured once their
 * transport-wide feedback is in. The estimate may jump to the result instead
 * of climbing there at AIMD's pace (draft-ietf-rmcat-gcc-02 §5.5 grows by at
 * most 8%/s; probing is the libwebrtc practice of sending a cluster at 2-6x
 * the estimate and reading the delivery rate off the receiver's timestamps).
 *
 * Result of a cluster: send rate = bytes sent without the last packet over
 * the send span, receive rate = bytes received without the first arrival
 * over the arrival span (a rate is bytes between two instants); the probe
 * measured min(send, receive), and when receive < 90% of send the path was
 * saturated and 95% of the receive rate is what fits. A cluster with less
 * than 80% of its packets received, or spans under 1 ms, has no result.
 * At most HD_BWE_MAX_CLUSTERS are tracked; an unfinished one is dropped
 * after HD_BWE_CLUSTER_TIMEOUT. Sans-IO, no allocation. */
#ifndef HD_RTC_BWE_PROBE_H
#define HD_RTC_BWE_PROBE_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

#define HD_BWE_MAX_CLUSTERS 4
#define HD_BWE_CLUSTER_TIMEOUT HD_SEC(2)
#define HD_BWE_PROBE_MIN_PKTS 5
#define HD_BWE_PROBE_DURATION HD_MS(40)

typedef struct {
  int id; /* 0 = free slot */
  double target_bps;
  size_t min_bytes;
  hd_time_t created;
  uint32_t sent, recv, lost;
  uint64_t sent_bytes, recv_bytes, lost_bytes;
  hd_time_t first_send, last_send, first_arr, last_arr;
  size_t first_send_size, last_send_size, first_arr_size, last_arr_size;
} hd_bwe_cluster_t;

typedef struct {
  hd_bwe_cluster_t c[HD_BWE_MAX_CLUSTERS];
  int next_id;
  uint64_t started, succeeded, failed;
} hd_bwe_probes_t;

void hd_bwe_probes_init(hd_bwe_probes_t *p);
/* Opens a cluster at target_bps; returns its id (> 0). The oldest cluster
 * is dropped when all slots are taken. *min_bytes gets how much the caller
 * should send in it (HD_BWE_PROBE_DURATION at the target, at least
 * HD_BWE_PROBE_MIN_PKTS packets is the caller's other bound). */
int hd_bwe_probes_start(hd_bwe_probes_t *p, double target_bps, hd_time_t now, size_t *min_bytes);
/* A packet of cluster id left at `now` (unknown ids are ignored). */
void hd_bwe_probes_on_sent(hd_bwe_probes_t *p, int id, size_t size, hd_time_t now);
/* Feedback for a packet of cluster id: arrival on the receiver's clock, or
 * received = 0 for lost. */
void hd_bwe_probes_on_feedback(hd_bwe_probes_t *p, int id, size_t size, hd_time_t send, int received,
                               hd_time_t arrival);
/* Takes one finished cluster: returns 1 with its result and target (bit/s)
 * and whether the path was saturated (receive rate < 90% of send rate), 0
 * when none is finished. Clusters past their timeout or without a result
 * are freed on the way (counted as failed). */
int hd_bwe_probes_poll(hd_bwe_probes_t *p, hd_time_t now, double *result_bps, double *target_bps,
                       int *saturated);

#endif
