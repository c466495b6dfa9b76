/* Audio jitter buffer for 20 ms Opus packets (receiver side), NetEQ-class.
 *
 * Packets go in with their arrival time; the playout clock pulls one 20 ms
 * frame at a time. The buffer tracks each packet's relative delay (arrival
 * minus media time) over a sliding window and sets the target delay to the
 * `quantile` (default 95th percentile) of the spread above the fastest packet,
 * plus one frame of pull granularity, clamped to [min_delay, max_delay]. While
 * losses are being seen, the target is at least one frame more than the
 * distance of the redundancy the stream carries (RED depth, or one frame for
 * Opus in-band FEC), so the packet that carries a lost frame's copy is there
 * when the frame is due.
 *
 * The delay is steered toward the target in one of two ways:
 * - hd_audio_jitter_pull_pcm (decoding here): by time-stretching the decoded
 *   audio a pitch period at a time (media/time_stretch: accelerate above
 *   target + HD_AUDIO_JITTER_ACCEL_MARGIN, preemptive expand below target),
 *   so no frame is dropped or invented and nothing is concealed for it;
 * - hd_audio_jitter_pull alone (the caller does not decode): a frame at a
 *   time: below target it inserts a concealed frame (expand), more than two
 *   frames above it skips one (accelerate).
 *
 * RED (RFC 2198): hd_audio_jitter_push_red takes the whole RED payload; its
 * redundant blocks fill holes (they do not teach the delay estimate: they
 * arrive late by design).
 *
 * For each pull it tells the caller what to do with the decoder:
 *   PLAY — decode this packet;
 *   FEC  — the packet is missing but the next one is here: decode its in-band
 *          FEC (hd_opus_decode_fec), the recovered frame counts as played;
 *   PLC  — missing with no FEC source, or an expand: conceal (hd_opus_decode_plc);
 *   CNG  — a DTX pause (no sequence gap), comfort noise, not a loss;
 *   EMPTY — not started yet (buffering): output silence, not counted.
 * Concealed time over played time is DESIGN §6's audio stall rate. Sans-IO:
 * packets and time in, actions out. */
#ifndef HD_MEDIA_AUDIO_JITTER_H
#define HD_MEDIA_AUDIO_JITTER_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"
#include "media/opus_codec.h"

#define HD_AUDIO_JITTER_MAX_PAYLOAD 1500
#define HD_AUDIO_JITTER_MAX_PACKETS 256        /* hard cap on max_packets */
#define HD_AUDIO_JITTER_WINDOW 250             /* relative-delay samples kept (5 s of 20 ms packets) */
#define HD_AUDIO_JITTER_ACCEL_MARGIN HD_MS(20) /* PCM mode: accelerate above target + this */
#define HD_AUDIO_JITTER_LOSS_HOLD HD_SEC(10)   /* redundancy floor kept this long after a loss */
#define HD_AUDIO_JITTER_NACK_MAX HD_MS(200)    /* NACK floor (RTT + 2 frames + 10 ms) applied up to this */
/* decoded PCM held between pulls (per channel): a frame, a stretch, a frame */
#define HD_AUDIO_JITTER_PCM_CAP (2 * HD_OPUS_FRAME_SAMPLES + 2 * 480)

typedef struct {
  hd_time_t min_delay; /* default 20 ms */
  hd_time_t max_delay; /* default 400 ms */
  double quantile;     /* of the delay spread, 0.5..1.0, default 0.95 */
  size_t max_packets;  /* buffered packets, <= HD_AUDIO_JITTER_MAX_PACKETS (default 64) */
  int frame_samples;   /* samples per pull at 48 kHz, default HD_OPUS_FRAME_SAMPLES */
} hd_audio_jitter_config_t;

enum {
  HD_AUDIO_JITTER_EMPTY = 0,
  HD_AUDIO_JITTER_PLAY = 1,
  HD_AUDIO_JITTER_FEC = 2,
  HD_AUDIO_JITTER_PLC = 3,
  HD_AUDIO_JITTER_CNG = 4
};

typedef struct {
  int kind;            /* HD_AUDIO_JITTER_* */
  const uint8_t *data; /* PLAY: the packet; FEC: the NEXT packet; lent until the next push/pull */
  size_t len;
  uint16_t seq;
  uint32_t ts; /* RTP timestamp of the frame being played out */
  int stretch; /* PCM mode, PLAY/FEC: +1 grow the delay (expand), -1 shrink it (accelerate) */
} hd_audio_jitter_out_t;

typedef struct {
  uint64_t packets, duplicates, late, overflow, malformed;
  uint64_t played_ms;    /* every pull after start (incl. concealed) */
  uint64_t concealed_ms; /* PLC: loss without FEC, and expands */
  uint64_t fec_ms;       /* frames recovered from FEC */
  uint64_t cng_ms;       /* DTX pauses */
  uint64_t expands, accelerates;
  uint64_t resets;               /* timestamp jumps treated as a new stream */
  uint64_t red_blocks;           /* redundant RED blocks that filled a hole */
  uint64_t red_ms;               /* frames played from a RED block */
  uint64_t repairs;              /* NACK repairs stored (hd_audio_jitter_push_repair) */
  uint64_t max_concealed_run_ms; /* longest run of consecutive PLC frames (a speech gap) */
  hd_time_t target_delay;        /* current target */
  hd_time_t delay;               /* actual playout delay at the last pull */
  /* PCM mode (hd_audio_jitter_pull_pcm), in the terms of W3C getStats
   * RTCInboundRtpStreamStats (samples per channel at 48 kHz): */
  uint64_t total_samples_received;            /* totalSamplesReceived: samples played out */
  uint64_t concealed_samples;                 /* concealedSamples: from PLC (loss, late) */
  uint64_t silent_concealed_samples;          /* silentConcealedSamples: PLC over a DTX pause (CNG) */
  uint64_t concealment_events;                /* concealmentEvents: runs of concealment */
  uint64_t inserted_samples_for_deceleration; /* insertedSamplesForDeceleration */
  uint64_t removed_samples_for_acceleration;  /* removedSamplesForAcceleration */
  double jitter_buffer_delay_s;               /* jitterBufferDelay: sum of each emitted sample's delay */
  uint64_t jitter_buffer_emitted_count;       /* jitterBufferEmittedCount */
} hd_audio_jitter_stats_t;

typedef struct hd_audio_jitter_slot hd_audio_jitter_slot_t;

typedef struct {
  hd_audio_jitter_config_t cfg;
  hd_audio_jitter_slot_t *slots; /* max_packets */
  size_t n;
  int have_first, started, have_last_seq;
  int64_t first_ext;        /* extended ts of the first packet (media time origin) */
  hd_time_t pending_gap_ms; /* concealed on an empty buffer since the last packet played */
  uint32_t first_ts;
  int64_t play_ts;     /* extended ts of the next frame to play */
  int64_t last_ext_ts; /* reference for unwrapping */
  uint16_t last_seq;   /* seq of the last frame played from a packet */
  hd_time_t first_arrival;
  hd_time_t rel[HD_AUDIO_JITTER_WINDOW]; /* arrival - media time, per packet */
  size_t rel_n, rel_pos;
  int red_depth;           /* redundant blocks per RED packet seen lately */
  hd_time_t last_loss;     /* when a frame was last missing at play time (0 = never) */
  int fec_seen;            /* a frame was recovered with FEC or RED: redundancy pays */
  hd_time_t run_ms;        /* current run of PLC frames */
  uint64_t max_run_before; /* max_concealed_run_ms before the current run (undone if it was DTX) */
  int concealing;          /* PCM mode: the last frame out was concealed */
  int pcm_mode;            /* hd_audio_jitter_pull_pcm is in use: stretch instead of skip/insert */
  int16_t *pcm;            /* decoded audio not played yet (interleaved, up to 2 channels) */
  int pcm_n;               /* samples per channel in pcm */
  hd_time_t sync_extra;    /* added to the target for lip sync (hd_audio_jitter_set_sync_delay) */
  hd_time_t repair_rtt;    /* NACK round trip (hd_audio_jitter_set_repair_rtt), 0 = no NACK */
  int pushing_repair;      /* inside hd_audio_jitter_push_repair */
  hd_audio_jitter_stats_t stats;
} hd_audio_jitter_t;

/* Defaults as listed in hd_audio_jitter_config_t. */
void hd_audio_jitter_config_default(hd_audio_jitter_config_t *c);

/* c may be NULL for defaults. HD_EINVAL / HD_ENOMEM. */
int hd_audio_jitter_init(hd_audio_jitter_t *j, const hd_audio_jitter_config_t *c);
void hd_audio_jitter_free(hd_audio_jitter_t *j);

/* Feeds one packet (RTP seq/ts and its payload) that arrived at `now`.
 * Returns 0 (stored), 1 (ignored: duplicate, too late to be played, or older
 * than everything in a full buffer);
 * HD_EINVAL on len 0 or > HD_AUDIO_JITTER_MAX_PAYLOAD. When the buffer is full
 * the oldest packet is dropped (counted as overflow). */
int hd_audio_jitter_push(hd_audio_jitter_t *j, uint16_t seq, uint32_t ts, const uint8_t *payload, size_t len,
                         hd_time_t now);

/* Feeds one RED payload (RFC 2198) whose blocks are Opus with payload type
 * opus_pt (blocks of other types and empty ones are skipped). The primary is
 * pushed like hd_audio_jitter_push; each redundant block (timestamp ts minus
 * its offset, seq counted back one per frame) only fills a hole. Returns what
 * the primary's push returned, HD_EPROTO for a malformed RED payload. */
int hd_audio_jitter_push_red(hd_audio_jitter_t *j, uint16_t seq, uint32_t ts, const uint8_t *red, size_t len,
                             uint8_t opus_pt, hd_time_t now);

/* Feeds a packet that answers our NACK (client/pc.h: hd_pc_rtp_t.rtx), as
 * hd_audio_jitter_push (red = 0) or hd_audio_jitter_push_red (red = 1), but
 * its arrival does not teach the delay estimate: it is late by the repair
 * round trip, which hd_audio_jitter_set_repair_rtt accounts for. */
int hd_audio_jitter_push_repair(hd_audio_jitter_t *j, uint16_t seq, uint32_t ts, const uint8_t *payload,
                                size_t len, int red, uint8_t opus_pt, hd_time_t now);

/* One playout step at `now` (call every frame_samples / 48 ms). Fills *out
 * and returns its kind (>= 0). */
int hd_audio_jitter_pull(hd_audio_jitter_t *j, hd_time_t now, hd_audio_jitter_out_t *out);

/* Called for each packet decoded by hd_audio_jitter_pull_pcm (PLAY), e.g. to
 * hand the encoded frame to the app. */
typedef void (*hd_audio_jitter_packet_fn)(void *ud, const hd_audio_jitter_out_t *o);

/* Pull + decode with an Opus decoder (1 or 2 channels) into pcm (capacity
 * cap_samples per channel, >= frame_samples), with the delay steered by time
 * stretching (above). Decodes 0, 1 or 2 packets per call. EMPTY gives
 * silence. Returns samples per channel written (frame_samples), or a negative
 * error. *kind (may be NULL) gets the action of the newest frame decoded
 * (PLC if any frame in this output was concealed). on_packet may be NULL. */
int hd_audio_jitter_pull_pcm(hd_audio_jitter_t *j, hd_time_t now, hd_opus_dec_t *dec, int16_t *pcm,
                             size_t cap_samples, int *kind);
int hd_audio_jitter_pull_pcm_cb(hd_audio_jitter_t *j, hd_time_t now, hd_opus_dec_t *dec, int16_t *pcm,
                                size_t cap_samples, int *kind, hd_audio_jitter_packet_fn on_packet, void *ud);

/* Current target playout delay. */
hd_time_t hd_audio_jitter_target(const hd_audio_jitter_t *j);
/* Extra delay added to the target (still capped at max_delay), so that audio
 * waits for the same sender's video (media/av_sync.h). 0 = none. */
void hd_audio_jitter_set_sync_delay(hd_audio_jitter_t *j, hd_time_t extra);

/* The stream is repaired by NACK with this round trip (0 = it is not, or
 * unknown). While losses are being seen the target is then at least
 * rtt + 2 frames + 10 ms (a hole is noticed a frame after its slot, pulls
 * come a frame apart), so a repair asked for at once is played: NetEQ's
 * reason to keep NACK and jitter buffer together. Only while that floor is
 * <= HD_AUDIO_JITTER_NACK_MAX (and max_delay): on a longer round trip the
 * delay is not raised for repairs that would cost more than they bring. */
void hd_audio_jitter_set_repair_rtt(hd_audio_jitter_t *j, hd_time_t rtt);
/* How long after a hole is noticed a repair is still played: the current
 * playout delay minus one frame (the target before playout starts). This is
 * the window client/pc.h hd_pc_set_nack_window takes. */
hd_time_t hd_audio_jitter_repair_window(const hd_audio_jitter_t *j);

/* Audio stall rate (DESIGN §6): concealed_ms / played_ms, 0 when nothing played. */
double hd_audio_jitter_stall_rate(const hd_audio_jitter_t *j);

#endif
