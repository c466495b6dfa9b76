/* Node-side quality samples (issue 14 item 1): cumulative counters of every
 * participant's publisher leg (per published track, simulcast layers added
 * up) and subscriber leg (per subscribed track), copied out of a node so that
 * the control thread's quality collector (quality/collector.h) can turn them
 * into per-interval rows. The copy runs on the node's thread (a media worker
 * job, like the admin participants list); everything else runs on the control
 * thread. */
#ifndef HD_SFU_QSAMPLE_H
#define HD_SFU_QSAMPLE_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

typedef struct {
  char app[64], room[128], room_sid[24], identity[128], psid[24], track_sid[24];
  int down;       /* 0 = publisher leg (the node receives), 1 = subscriber leg (the node sends) */
  int video;      /* 1 video, 0 audio */
  char layer[16]; /* down, simulcast: rid of the layer forwarded now ("" none / no simulcast) */
  uint64_t bytes, packets;
  uint64_t lost;       /* up: packets missing on arrival (repaired + given up; RFC 3550 A.3 without NACK) */
  uint64_t lost_after; /* up: packets never repaired (NACK gave up) */
  uint64_t nack, rtx, pli; /* up: NACK requests sent (retries count), repairs received, PLIs sent; down:
                            * NACKed by the viewer (answered + unanswered), retransmitted, 0 */
  double loss_frac;        /* down: loss the viewer's RRs report (smoothed), 0..1 */
  double rtt_ms;           /* down: RTT from the viewer's RR; -1 unknown */
  double jitter_ms;        /* up: interarrival jitter (RFC 3550 A.8); -1 unknown */
  uint64_t downlink_bps;   /* down: the node's estimate of the viewer's downlink (0 none) */
} hd_node_qsample_t;

struct hd_node;
/* Writes up to cap samples for every /rtc participant of every room; returns
 * the number written (more participants than cap: the rest are left out). */
int hd_node_quality_samples(struct hd_node *n, hd_node_qsample_t *out, size_t cap, hd_time_t now);

#endif
