/* Measures one node-to-node link continuously (issue 16 item 1;
 * docs/overlay.md "Link measurement"), sans-IO: probes out, probes and
 * echoes in, the link's RTT, loss and jitter out.
 *
 * Each end of a link runs one meter. Every `interval` the meter emits a
 * probe; the other end's meter answers it with an echo at once. From the
 * echoes the prober learns:
 *  - RTT: now - the probe's send time - the time the echo was held at the far
 *    end; smoothed as TCP does (RFC 6298 section 2: SRTT, RTTVAR), min kept.
 *  - loss, per direction: the far end counts the probes it received, the
 *    echo carries that count, so forward loss = 1 - received/sent between two
 *    echoes; round-trip loss = probes never answered within the probe
 *    timeout. Both are averaged over HD_LINK_METER_LOSS_WINDOW of probes.
 *  - jitter, forward: the far end keeps the RFC 3550 section 6.4.1
 *    interarrival jitter of our probes (no clock sync needed: it uses
 *    differences of differences) and puts it in every echo.
 *  - suspect/down: suspect when no echo came for down_probes probe
 *    intervals plus SRTT + 4 RTTVAR (RFC 6298's margin: a jittery link is
 *    not a dead one), i.e. when about down_probes probes in a row went
 *    unanswered: at 50 ms probes and 3, ~200 ms on a 40 ms link. Media then
 *    also takes a second path at once (serve_cluster.c's fast check, the
 *    relay route's dup_all), so a dead link costs the subscriber well under
 *    half a second, but the route itself does not change yet. Down, and
 *    routes move, only when the silence lasts `confirm` (overlay.
 *    down_confirm_ms) longer: a link whose far end or relay was not
 *    scheduled for a few hundred ms on a busy machine is back before that,
 *    and a route change and its return (a flap) are saved. The time this end
 *    was late itself (a probe sent after its due time means the owner's loop
 *    did not run: echoes may be waiting unread in its socket) is not counted
 *    as silence (the longest single lateness since the last echo, not the
 *    sum: a steady lateness holds echoes unread only once). Up at the first
 *    echo ever; after a down, only after up_echoes echoes of consecutive
 *    probes (hysteresis: a link that answers one probe in three is not
 *    back); a suspect link is cleared by any echo.
 * Raw RTT/loss samples are kept in a small ring for the dashboard.
 *
 * Wire format (big-endian; carried inside the authenticated node link):
 *   probe: u8 type=1 | u32 seq | u64 t_send_us (sender's clock)
 *   echo:  u8 type=2 | u32 seq | u64 t_send_us (copied) | u32 hold_us |
 *          u32 probes_received (from this peer, since start, mod 2^32) |
 *          u32 jitter_us (forward jitter the echoer measured) */
#ifndef HD_OVERLAY_LINK_METER_H
#define HD_OVERLAY_LINK_METER_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

#define HD_LINK_METER_PROBE 1
#define HD_LINK_METER_ECHO 2
#define HD_LINK_METER_PROBE_LEN 13
#define HD_LINK_METER_ECHO_LEN 25
#define HD_LINK_METER_DEFAULT_INTERVAL HD_MS(50) /* overlay.probe_interval_ms */
#define HD_LINK_METER_DOWN_PROBES 3              /* overlay.down_probes */
#define HD_LINK_METER_UP_ECHOES 3                /* overlay.up_echoes */
#define HD_LINK_METER_DOWN_CONFIRM HD_MS(500)    /* suspect -> down: overlay.down_confirm_ms */
#define HD_LINK_METER_PROBE_TIMEOUT HD_SEC(1)    /* an echo later than this counts as lost */
#define HD_LINK_METER_LOSS_WINDOW 100            /* probes the loss averages cover (~5 s at 50 ms) */
#define HD_LINK_METER_SAMPLES 64                 /* raw samples kept */
#define HD_LINK_METER_OUTSTANDING 64             /* probes tracked at once (>= timeout / interval) */

typedef struct {
  hd_time_t at; /* when the sample was taken */
  float rtt_ms; /* < 0: the probe was lost */
} hd_link_meter_sample_t;

typedef struct {
  int up;      /* 1 when echoes arrive (0 until the first) */
  int suspect; /* up, but silent past the fast rule: media also takes a second path */
  double srtt_ms, rttvar_ms, min_rtt_ms;
  double loss_fwd;  /* probes we sent that the far end did not get, 0..1 */
  double loss_rtt;  /* probes with no echo (either direction), 0..1 */
  double jitter_ms; /* forward interarrival jitter at the far end */
  uint64_t probes_sent, echoes_received, probes_answered;
  hd_time_t last_echo; /* 0: none yet */
  int downs;           /* up -> down transitions */
  int suspects;        /* times it became suspect (a down was one first, unless confirm is 0) */
  /* this end's own lateness: how long after its due time a probe went out
   * (the owner's loop did not run: not the link's fault, not counted as
   * silence), the largest and the sum */
  hd_time_t late_max, late_total;
} hd_link_meter_stats_t;

typedef struct {
  hd_time_t interval, next_probe;
  hd_time_t late;                  /* longest lateness since the last echo (excused from the silence) */
  int down_probes, up_echoes;      /* the link-down rule and its hysteresis (overlay_params.h) */
  hd_time_t confirm;               /* suspect this much longer before down */
  uint32_t up_streak, up_last_seq; /* while down: echoes of consecutive probes so far */
  uint32_t seq;                    /* next probe's */
  /* outstanding probes by seq % HD_LINK_METER_OUTSTANDING */
  struct {
    uint32_t seq;
    hd_time_t sent;
    int live;
  } out[HD_LINK_METER_OUTSTANDING];
  /* the far end's counts at the last echo, for forward loss between echoes */
  uint32_t last_echo_seq, last_echo_rx;
  int have_echo_ref;
  uint64_t rtt_outcomes, fwd_outcomes; /* probes the two loss averages have seen */
  /* as the echoer: probes received from the peer and their jitter */
  uint32_t rx_count;
  int have_transit;
  int64_t last_transit_us;
  double rx_jitter_us;
  hd_link_meter_stats_t st;
  hd_link_meter_sample_t samples[HD_LINK_METER_SAMPLES];
  uint32_t n_samples; /* total ever taken; the ring holds the last HD_LINK_METER_SAMPLES */
} hd_link_meter_t;

/* interval 0 = the process's overlay.probe_interval_ms (overlay_params.h,
 * default HD_LINK_METER_DEFAULT_INTERVAL); down_probes and up_echoes come
 * from there too. The first probe goes out at `now`. */
void hd_link_meter_init(hd_link_meter_t *m, hd_time_t interval, hd_time_t now);

/* When a probe is due: writes it to out (cap >= HD_LINK_METER_PROBE_LEN) and
 * returns its length; 0 when none is due; HD_ENOSPC for a short buffer. Also
 * ages outstanding probes into losses and marks the link down. */
int hd_link_meter_poll(hd_link_meter_t *m, hd_time_t now, uint8_t *out, size_t cap);

/* The next time poll has something to do. */
hd_time_t hd_link_meter_next_timeout(const hd_link_meter_t *m);

/* A probe or echo from the far end. A probe is answered: the echo goes to
 * reply (cap >= HD_LINK_METER_ECHO_LEN) and its length is returned; an echo
 * updates the stats and returns 0 (one for a probe we no longer track — too
 * late, already counted lost — only proves the link is up). HD_EINVAL for a
 * malformed message (wrong length, unknown type). */
int hd_link_meter_feed(hd_link_meter_t *m, const uint8_t *buf, size_t len, hd_time_t now, uint8_t *reply,
                       size_t replycap);

/* The stats as of `now` (up/down re-evaluated). */
void hd_link_meter_stats(hd_link_meter_t *m, hd_time_t now, hd_link_meter_stats_t *out);

/* Raw samples, oldest first, at most cap; returns how many were copied. */
size_t hd_link_meter_samples(const hd_link_meter_t *m, hd_link_meter_sample_t *out, size_t cap);

#endif
