/* Load generator cores (issue 7, `hudong bench load`), sans-IO: the synthetic
 * media pattern a publisher sends, the payload every packet carries, and the
 * receive-side accounting of loss and added latency.
 *
 * Nothing here decodes media: a payload is a 28-byte header (magic, publisher
 * id, kind, flags, per-stream sequence, send timestamp) followed by padding up
 * to the packet size of the pattern. Publishers and subscribers run in one
 * process on one monotonic clock, so arrival - send is the one-way delay added
 * by the path (server + loopback + the generator's own scheduling).
 *
 * Media pattern: audio = 20 ms packets (50/s) of ~100 bytes (an Opus frame at
 * ~32 kbps plus header); video = fps frames per second at video_kbps on
 * average, split into packets of at most HD_LOAD_MAX_PAYLOAD bytes, with a
 * keyframe 5x a delta frame every key_interval (or when asked: PLI). */
#ifndef HD_CLIENT_LOAD_H
#define HD_CLIENT_LOAD_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

#define HD_LOAD_MAGIC 0x48444c44u /* "HDLD" */
#define HD_LOAD_HDR_LEN 28
#define HD_LOAD_MAX_PAYLOAD 1100 /* = HD_PC_MAX_PAYLOAD */
#define HD_LOAD_AUDIO_BYTES 100
#define HD_LOAD_KEY_FACTOR 5      /* keyframe size / delta frame size */
#define HD_LOAD_MAX_FRAME_PKTS 64 /* packets one frame may take (a keyframe at 10 Mbps / 15 fps fits) */

enum { HD_LOAD_AUDIO = 1, HD_LOAD_VIDEO = 2 }; /* = HD_PC_AUDIO / HD_PC_VIDEO */
enum { HD_LOAD_F_KEY = 1, HD_LOAD_F_MARKER = 2 };

/* The header every synthetic payload starts with (big-endian on the wire). */
typedef struct {
  uint32_t pub_id; /* publisher (unique in the run) */
  uint8_t kind;    /* HD_LOAD_AUDIO / HD_LOAD_VIDEO */
  uint8_t flags;   /* HD_LOAD_F_* */
  uint32_t seq;    /* per (publisher, kind) stream, from 0 */
  hd_time_t sent;  /* sender's clock, µs */
} hd_load_hdr_t;

/* Writes h and padding into buf[0..len) (len >= HD_LOAD_HDR_LEN, <= cap).
 * Returns len, or HD_EINVAL / HD_ENOSPC. */
int hd_load_payload_write(uint8_t *buf, size_t cap, size_t len, const hd_load_hdr_t *h);
/* Parses the header of a received payload. 0, HD_ETRUNC (short), HD_EPROTO (no magic). */
int hd_load_payload_parse(const uint8_t *buf, size_t len, hd_load_hdr_t *out);

/* ---- the media pattern of one publisher ---- */

typedef struct {
  int audio, video;       /* which streams */
  int video_kbps;         /* average video rate; 0 = 1000 */
  int fps;                /* 0 = 30 */
  hd_time_t key_interval; /* 0 = 2 s */
} hd_load_source_cfg_t;

typedef struct {
  hd_load_source_cfg_t cfg;
  uint32_t pub_id;
  hd_time_t next_audio, next_video, next_key;
  uint32_t seq[3];          /* per kind */
  uint32_t frames, audio_n; /* RTP clocks: 90 kHz frames, 48 kHz audio */
  int key_pending;
  size_t delta_bytes; /* bytes of a delta frame */
  uint64_t sent[3];   /* packets produced per kind */
  uint64_t sent_in_window[3];
  hd_time_t w0, w1; /* measurement window [w0, w1) on send time */
} hd_load_source_t;

/* One packet to send: kind, RTP timestamp, marker, payload length (the
 * payload itself is written into the caller's buffer). */
typedef struct {
  int kind;
  uint32_t rtp_ts;
  int marker, key;
  size_t len;
} hd_load_pkt_t;

/* Starts the pattern at `now`. HD_EINVAL for a config with no stream or rates
 * out of range (video_kbps 1..100000, fps 1..120). */
int hd_load_source_init(hd_load_source_t *s, const hd_load_source_cfg_t *cfg, uint32_t pub_id, hd_time_t now);
/* Sets the window in which produced packets are counted as "expected". */
void hd_load_source_window(hd_load_source_t *s, hd_time_t w0, hd_time_t w1);
/* The next keyframe comes at the next frame (PLI/FIR). */
void hd_load_source_request_key(hd_load_source_t *s);
/* Next time a packet is due. */
hd_time_t hd_load_source_next(const hd_load_source_t *s);
/* Produces the packets due at `now` (at most cap): writes payload i into
 * bufs + i * stride (stride >= HD_LOAD_MAX_PAYLOAD) and its description into
 * pkts[i]. A frame is never split across calls: when it does not fit in cap,
 * it waits for the next call. Returns the count. */
int hd_load_source_poll(hd_load_source_t *s, hd_time_t now, uint8_t *bufs, size_t stride, hd_load_pkt_t *pkts,
                        int cap);

/* ---- latency histogram: 10 µs buckets to 10 ms, 1 ms buckets to 1 s ---- */

#define HD_LOAD_HIST_FINE 1000
#define HD_LOAD_HIST_COARSE 990
typedef struct {
  uint64_t n, overflow, negative;
  uint64_t fine[HD_LOAD_HIST_FINE];
  uint64_t coarse[HD_LOAD_HIST_COARSE];
  hd_time_t max;
  double sum;
} hd_load_hist_t;

void hd_load_hist_add(hd_load_hist_t *h, hd_time_t v);
void hd_load_hist_merge(hd_load_hist_t *into, const hd_load_hist_t *from);
/* Upper edge of the bucket holding quantile q (0..1); 0 when empty; the max
 * seen when the quantile is in the overflow. */
hd_time_t hd_load_hist_quantile(const hd_load_hist_t *h, double q);

/* ---- receiver accounting, one per (receiver, publisher stream) ---- */

#define HD_LOAD_DEDUP_BITS 1024
typedef struct {
  uint32_t pub_id;
  uint8_t kind;
  uint64_t received;  /* unique packets, any time */
  uint64_t in_window; /* unique packets whose send time is in [w0, w1) */
  uint64_t duplicates;
  uint32_t max_seq;
  int any;
  uint8_t seen[HD_LOAD_DEDUP_BITS / 8]; /* seq % 1024 of the last 1024 seqs */
} hd_load_rx_t;

void hd_load_rx_init(hd_load_rx_t *r, uint32_t pub_id, int kind);
/* Accounts one received payload header at `arrival`: a duplicate (the same seq
 * within the last 1024) is counted and ignored (returns 0); otherwise returns 1,
 * and if h->sent is in [w0, w1) counts it in_window and adds arrival - sent to
 * hist (may be NULL). HD_EINVAL if h is for another stream. */
int hd_load_rx_feed(hd_load_rx_t *r, const hd_load_hdr_t *h, hd_time_t arrival, hd_time_t w0, hd_time_t w1,
                    hd_load_hist_t *hist);

/* Loss over a run: expected = sum of the senders' sent_in_window over every
 * (receiver, stream) pair that should receive it, received = sum of in_window.
 * Returns (expected - received) / expected, 0 when expected is 0, clamped at 0. */
double hd_load_loss(uint64_t expected, uint64_t received);

/* ---- count-only receive (`bench load --count-only`) ----
 *
 * A subscriber that does not decrypt media: it reads the clear RTP header
 * (RFC 3550 §5.1; SRTP leaves it in the clear, RFC 3711 §3.1) and accounts,
 * per SSRC, the packets it gets against the sequence numbers the server used.
 * The SFU rewrites seq per viewer stream contiguously, so a gap is a loss.
 * Sequence numbers are extended across the 16-bit wrap as in RFC 3550 A.1
 * (a jump of up to 32767 ahead is new, anything else is behind); packets up
 * to HD_LOAD_SEQ_WINDOW behind the highest are late (reordered) and still
 * count once, older ones are ignored (too_old).
 *
 * The measurement window is marked on arrival: the highest extended seq at the
 * start (s0) and at the end (s1); expected = s1 - s0 and received = unique
 * packets with s0 < seq <= s1, including late ones that arrive after the end
 * (a grace period). A stream whose first packet comes after the start mark
 * starts at that packet (its earlier loss is invisible here: the caller
 * compares arrivals with what the senders sent to catch a stream that never
 * came or stalled). */

#define HD_LOAD_SEQ_WINDOW 1024
typedef struct {
  uint32_t ssrc;
  int pt;          /* payload type of the first packet */
  int any;         /* a packet was seen */
  int64_t max_ext; /* highest extended seq */
  uint64_t received, duplicates, too_old;
  int started, ended;                   /* window marks */
  int64_t s0, s1;                       /* window (s0, s1] in extended seq */
  uint64_t in_window;                   /* unique packets with s0 < ext <= s1 */
  uint64_t arrived;                     /* unique packets that arrived between the marks */
  uint8_t seen[HD_LOAD_SEQ_WINDOW / 8]; /* ext % window of the last window seqs */
} hd_load_seq_t;

void hd_load_seq_init(hd_load_seq_t *s, uint32_t ssrc, int pt);
/* Accounts one packet: returns 1 if new, 0 for a duplicate or a packet older
 * than the dedup window. */
int hd_load_seq_feed(hd_load_seq_t *s, uint16_t seq);
/* Window marks (call once each, start before end). */
void hd_load_seq_window_start(hd_load_seq_t *s);
void hd_load_seq_window_end(hd_load_seq_t *s);
/* s1 - s0: 0 when no packet came (or the end was not marked). */
uint64_t hd_load_seq_expected(const hd_load_seq_t *s);

/* Reads the clear header of an SRTP packet in buf (RFC 7983 demux: first byte
 * 128..191; RTCP when the second byte's payload type is 192..223, RFC 5761 §4).
 * Returns 1 for RTP with *ssrc, *seq, *pt set, 0 for RTCP or anything else
 * (give it to the PeerConnection). */
int hd_load_rtp_peek(const uint8_t *buf, size_t len, uint32_t *ssrc, uint16_t *seq, int *pt);

/* The media worker `hudong serve` pins room `room` of app `app` to when it runs
 * n workers (hd_media_room_worker, io/media_workers.h), so that the load
 * generator picks room names that split evenly over the workers; the bench
 * cross-checks the split with /metrics. */
int hd_load_room_worker(const char *app, const char *room, int n);
/* Writes into out the name of the i-th room (0-based) when names are
 * balanced over n workers: the i-th room goes to worker i % n, and is the
 * first "<prefix>-<j>" (j = 0, 1, ...) not taken by an earlier room that maps
 * there. Returns 0, or HD_ENOSPC / HD_EINVAL. */
int hd_load_balanced_room(const char *app, const char *prefix, int i, int n, char *out, size_t cap);

#endif
