/* Send-side bandwidth estimation for one receiver's downlink: the estimate
 * a sender (the node, towards one subscriber PeerConnection) may send at.
 * draft-ietf-rmcat-gcc-02 with transport-wide feedback
 * (draft-holmer-rmcat-transport-wide-cc-extensions-01):
 *  - delay-based (§5): bwe_delay.h detects over-use from the receiver's
 *    arrival times; the AIMD rate controller here (§5.5) decreases to
 *    beta = 0.85 of the rate the receiver actually got, holds on under-use,
 *    and increases by 8%/s -- or, once the link capacity is known (the
 *    average of the rates seen at decreases, §5.5), by about one packet per
 *    response time (rtt + 100 ms) so it creeps up to where it fell before;
 *  - loss-based (§6): bwe_loss.h; the target is the minimum of the two;
 *  - application-limited: an increase never goes past app_limit_factor
 *    (1.5 by default, 1.25 on the node's viewer legs) x the acknowledged
 *    media rate (packets outside probe clusters, the larger of its rate over
 *    300 ms and over 1 s) + 10 kbit/s, and a periodic probe's result past 2x
 *    it, so a sender that sends little
 *    does not earn an estimate it never used (the start-up probes are
 *    exempt: they measure the path before any media rate exists). Headroom
 *    above that is shown by a probe, not assumed: the estimate is at most
 *    max(bound, the last probe's result);
 *  - probing (bwe_probe.h): at the start two clusters at 3x and 6x the start
 *    rate (HD_BWE_PROBES_GATED: the 6x one only once the 3x one came back,
 *    and not when that measured a path under a quarter of 6x: on a
 *    300 kbit/s viewer leg with a 200 ms queue the 6x cluster alone
 *    overflowed the queue, the losses and their repairs kept it full for
 *    seconds and the viewer's jitter buffer grew to ~500 ms); then, while the target is under what the sender
 * wants (hd_bwe_set_desired) and the path looks clear, one cluster at 1.5x the target every probe_interval
 * (again at once while clusters come back unsaturated); the target jumps to the result of an unsaturated
 * cluster (a saturated one measured its share of a queue it built itself, more than a fair share when other
 * flows are there). A cluster sent above the capacity builds a short queue of its own: over-use reported
 *    until its feedback is in and the queue drained (cluster + rtt + 150 ms)
 *    holds the rate instead of cutting it;
 *  - no feedback for 1 s after a packet went out (once feedback was seen):
 *    the estimate backs off by 20% every 500 ms until feedback returns;
 *  - REMB (draft-alvestrand-rmcat-remb) where transport-wide feedback is not
 *    negotiated: the receiver's estimate is taken as is (clamped), and caps
 *    the send-side estimate where both exist.
 *
 * Use: the caller stamps a transport-wide seq on every packet it sends to
 * this receiver and reports it (hd_bwe_on_packet_sent, with the probe
 * cluster id when the packet was sent for a probe), feeds each feedback
 * parsed by hd_rtcp_twcc_parse (hd_bwe_on_twcc) or REMB (hd_bwe_on_remb),
 * reads hd_bwe_target / hd_bwe_pacing_rate after each, and asks
 * hd_bwe_next_probe when hd_bwe_next_timeout comes. Sans-IO, virtual time,
 * fixed size (the sent-packet history is a ring of HD_BWE_HISTORY). */
#ifndef HD_RTC_BWE_H
#define HD_RTC_BWE_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"
#include "proto/rtcp.h"
#include "rtc/bwe_delay.h"
#include "rtc/bwe_loss.h"
#include "rtc/bwe_probe.h"

#define HD_BWE_HISTORY 2048    /* sent packets remembered for feedback (power of two) */
#define HD_BWE_RATE_BUCKETS 50 /* acked/sent rate windows: 50 x 20 ms */
#define HD_BWE_RATE_BUCKET_US 20000
#define HD_BWE_PROBES_GATED 2         /* hd_bwe_config_t.initial_probes */
#define HD_BWE_APP_LIMIT_PROBING 1.25 /* hd_bwe_config_t.app_limit_factor of a sender that probes */

typedef struct {
  uint64_t min_bps;         /* floor of the target; default 30 kbit/s */
  uint64_t start_bps;       /* target before any feedback; default 300 kbit/s */
  uint64_t max_bps;         /* ceiling; default 20 Mbit/s */
  double pacing_factor;     /* pacing rate = target * this; default 1.5, 1..10 */
  hd_time_t probe_interval; /* periodic probing; default 2 s, 0 = off */
  int initial_probes;       /* 3x / 6x start probes; default 1; HD_BWE_PROBES_GATED: the 6x one
                               only after the 3x one's result, and not into a path under a quarter
                               of 6x (the node's viewer legs, session_pace.c) */
  double app_limit_factor;  /* increase bound: this x the acknowledged media rate + 10 kbit/s;
                               default 1.5 (libwebrtc's), 1.05..4. A sender that cannot probe (the
                               SDK) needs that room above what its encoder undershoots. The node's
                               viewer legs use HD_BWE_APP_LIMIT_PROBING: at 1.5 the estimate for a
                               viewer sat at ~1.5x what the node sent it, enough for the allocator
                               to take a wider layer no probe had shown to fit; it probes (held
                               back) for headroom instead */
} hd_bwe_config_t;

/* A probe cluster the caller should send now: padding (or RTX of recent
 * packets) paced at bitrate_bps, at least min_bytes and min_packets, every
 * packet reported with cluster id `id`. */
typedef struct {
  int id;
  uint64_t bitrate_bps;
  size_t min_bytes;
  int min_packets;
} hd_bwe_probe_t;

typedef struct {
  uint64_t target_bps, delay_bps, loss_bps, acked_bps, sent_bps, remb_bps;
  double loss;   /* fraction lost in the last loss interval */
  hd_time_t rtt; /* smoothed, from feedback (includes the receiver's feedback delay) */
  hd_bwe_usage_t usage;
  double threshold; /* current adaptive over-use threshold */
  uint64_t feedbacks, acked, lost, unknown_seq, overuses, decreases;
  uint64_t feedback_timeouts; /* back-offs for lack of feedback */
  uint64_t probes_started, probes_succeeded, probes_failed;
  uint64_t probes_skipped; /* start-up clusters not sent: the first feedback showed the leg full (bwe.c) */
} hd_bwe_stats_t;

typedef struct {
  hd_time_t send;
  uint16_t seq;
  uint16_t size;
  int16_t cluster; /* probe cluster id, 0 = none */
  uint8_t state;   /* 0 empty, 1 sent, 2 reported */
} hd_bwe_sent_t;

typedef struct {
  hd_time_t start[HD_BWE_RATE_BUCKETS];
  uint64_t bytes[HD_BWE_RATE_BUCKETS];
  hd_time_t first, latest; /* -1 = nothing yet */
} hd_bwe_rate_t;

typedef enum { HD_BWE_RC_HOLD = 0, HD_BWE_RC_INCREASE = 1, HD_BWE_RC_DECREASE = 2 } hd_bwe_rc_t;

typedef struct {
  hd_bwe_config_t cfg;
  hd_bwe_sent_t hist[HD_BWE_HISTORY];
  int have_reported, have_fb_count;
  uint16_t highest_reported;
  uint8_t last_fb_count;
  hd_bwe_delay_t delay;
  hd_bwe_loss_t loss;
  hd_bwe_probes_t probes;
  hd_bwe_rate_t acked_rate; /* by arrival time on the receiver's clock */
  hd_bwe_rate_t media_rate; /* the same without probe-cluster packets */
  hd_bwe_rate_t sent_rate;  /* by local send time */
  double avg_pkt_bytes;
  /* AIMD (§5.5) */
  hd_bwe_rc_t rc;
  double delay_bps, loss_bps, target_bps;
  hd_time_t rc_last, last_decrease;
  hd_time_t first_unanswered;  /* first packet sent since the last feedback; -1 none */
  hd_time_t last_feedback_at;  /* local time of the last TWCC feedback, 0 none */
  hd_time_t first_feedback_at; /* ... and of the first one */
  hd_time_t reported_send;     /* send time of the latest packet feedback reported (received or lost) */
  hd_time_t last_timeout_cut;
  double link_avg_kbps; /* < 0: unknown */
  double link_var;
  hd_time_t rtt;
  int rtt_external; /* set by hd_bwe_set_rtt: feedback no longer updates it */
  /* REMB */
  uint64_t remb_bps;
  int twcc_seen;
  /* probing */
  uint64_t desired_bps;
  int held_back; /* hd_bwe_set_held_back */
  double pending[2];
  size_t n_pending;
  int pending_initial;
  hd_time_t next_probe_at, last_probe;
  hd_time_t probe_guard_until; /* over-use until then is the probe's own queue */
  int last_probe_initial;
  int initial_wait;      /* the 6x start-up cluster waits for the 3x one's result */
  uint64_t initial_mark; /* probes succeeded + failed when the 3x cluster left */
  hd_bwe_stats_t st;
} hd_bwe_t;

/* Defaults as documented on hd_bwe_config_t. */
void hd_bwe_config_init(hd_bwe_config_t *c);
/* 0, or HD_EINVAL (min > start, start > max, min == 0, pacing factor outside
 * 1..10, negative probe interval, app_limit_factor outside 1.05..4). */
int hd_bwe_init(hd_bwe_t *b, const hd_bwe_config_t *cfg, hd_time_t now);
/* The bitrate the sender would use if it could (sum of the layers it wants
 * to send); probing stops once the target reaches it. Default: max_bps. */
void hd_bwe_set_desired(hd_bwe_t *b, uint64_t bps);
/* 1: the sender holds media back until the estimate reaches the desired rate
 * (an SFU keeping a subscriber on a lower layer, or its video paused): a
 * periodic probe's result may then lift the estimate up to that rate, past the
 * app-limited bound of 2x what is sent, which it could never reach otherwise.
 * 0 (default): the bound holds. */
void hd_bwe_set_held_back(hd_bwe_t *b, int on);
/* An RTT measured elsewhere (RTCP RR/DLSR, RFC 3550 §6.4.1) replaces the
 * feedback-based one from then on (call it again with each new measure);
 * values <= 0 are ignored. */
void hd_bwe_set_rtt(hd_bwe_t *b, hd_time_t rtt);
/* A packet left for this receiver at `now` with transport-wide seq twcc_seq
 * and `size` bytes on the wire (RTP header + payload; 1..65535);
 * cluster_id > 0 when it was sent for that probe cluster. */
void hd_bwe_on_packet_sent(hd_bwe_t *b, uint16_t twcc_seq, size_t size, hd_time_t now, int cluster_id);
/* Transport-wide feedback parsed by hd_rtcp_twcc_parse (n entries in pkts).
 * Packets missing between two consecutive feedback messages (fb_count + 1)
 * count as lost. Returns the number of entries that matched a sent packet,
 * or HD_EINVAL (NULL fb, or pkts NULL with n > 0). */
int hd_bwe_on_twcc(hd_bwe_t *b, const hd_rtcp_twcc_t *fb, const hd_rtcp_twcc_pkt_t *pkts, size_t n,
                   hd_time_t now);
/* The receiver's own estimate (REMB). */
void hd_bwe_on_remb(hd_bwe_t *b, uint64_t bitrate_bps, hd_time_t now);
/* The rate to send media at, bit/s. */
uint64_t hd_bwe_target(const hd_bwe_t *b);
/* The rate a pacer should drain its queue at (target * pacing_factor). */
uint64_t hd_bwe_pacing_rate(const hd_bwe_t *b);
/* 1 with *out set when a probe cluster should be sent now, else 0. */
int hd_bwe_next_probe(hd_bwe_t *b, hd_time_t now, hd_bwe_probe_t *out);
/* When to call hd_bwe_next_probe next; HD_TIME_NEVER when no probe is
 * planned in the current state. The state changes with feedback and REMB:
 * ask again after each. A time in the past means "now" (a probe is due). */
hd_time_t hd_bwe_next_timeout(const hd_bwe_t *b);
void hd_bwe_stats(const hd_bwe_t *b, hd_bwe_stats_t *out);
/* 1 when what this receiver loses now is more likely congestion than random
 * loss: the delay-based detector sees the bottleneck queue growing
 * (over-use), or more has left for it over the last 300 ms than
 * HD_BWE_OVERSEND x the estimate (its queue can only fill and drop). A sender
 * that protects repairs against random loss (a second copy) must not do so
 * then: on a full queue the copy is one more packet lost, and the losses it
 * causes ask for more repairs (an SDK viewer behind 300 kbit/s drowned in
 * doubled RTX: test_client_downlink). 0 before any feedback. */
#define HD_BWE_OVERSEND 1.2
int hd_bwe_congested(const hd_bwe_t *b);

#endif
