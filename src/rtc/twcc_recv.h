/* Receiver side of transport-wide congestion control
 * (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1): records the
 * transport-wide sequence number and arrival time of every packet that carries
 * one, and turns them into RTCP feedback messages for the sender's estimator.
 * Shared by the node (feedback to publishers) and the SDK (feedback to the
 * node as a subscriber). Sans-IO: arrivals in, feedback bytes out. */
#ifndef HD_RTC_TWCC_RECV_H
#define HD_RTC_TWCC_RECV_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"
#include "proto/rtcp.h"
#include "proto/rtp.h"

#define HD_TWCC_RECV_MAX 1024 /* arrivals held between two feedbacks (the oldest half goes beyond) */
#define HD_TWCC_RECV_INTERVAL HD_MS(100) /* how often a receiver sends feedback (Chrome: 50-100 ms) */

typedef struct {
  hd_rtcp_twcc_recv_t pkts[HD_TWCC_RECV_MAX]; /* ascending in extended seq */
  size_t n;
  int64_t last_ext; /* highest extended seq recorded, -1 none */
  hd_seq_unwrapper_t unwrap;
  uint8_t fb_count; /* feedback packet count (wraps) */
  uint64_t dropped; /* arrivals dropped: too old, or the buffer was full */
} hd_twcc_recv_t;

void hd_twcc_recv_init(hd_twcc_recv_t *r);
/* Records one arrival; duplicates are ignored, a late one is inserted in order
 * while it is inside the pending window. */
void hd_twcc_recv_add(hd_twcc_recv_t *r, uint16_t seq, hd_time_t arrival);
/* Builds the next feedback message for what is pending into out and removes
 * what it covers. Returns its length, 0 when nothing is pending, or a negative
 * error (HD_ENOSPC: cap too small). Call until it returns 0. */
int hd_twcc_recv_build(hd_twcc_recv_t *r, uint32_t sender_ssrc, uint32_t media_ssrc, uint8_t *out,
                       size_t cap);

#endif
