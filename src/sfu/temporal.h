/* VP8 temporal layer selection for one subscriber track (issue 11 items 1
 * and 3): drops the frames of temporal layers above the one the allocator
 * chose, to lower the frame rate without a keyframe (RFC 7741 §4.2: TID, the
 * layer-sync bit Y, TL0PICIDX).
 *
 * Frames of a temporal layer reference only frames of the same or lower
 * layers, so dropping every frame with TID > max leaves a decodable stream.
 * Going down applies at the next frame start. Going up waits for a frame of
 * a higher layer with Y set (it depends only on the base layer, RFC 7741
 * §4.2) or a keyframe: frames before it reference frames of that layer the
 * subscriber never got.
 *
 * The subscriber must not see the dropped frames as loss: its jitter buffer
 * would wait for the missing sequence numbers and its VP8 reference finder
 * for the missing PictureIDs (both stall until a keyframe). So the output is
 * compacted: out seq = src seq - packets dropped before it, out PictureID =
 * src PictureID - pictures dropped before it (TL0PICIDX is untouched: TL0
 * frames are never dropped). The "out" numbers here are the input of the
 * track's seq rewriter (sfu/rewriter.h), which adds source-switch continuity.
 *
 * A packet missing when a later one arrives has its out seq reserved as if
 * it were forwarded; when it comes late and belongs to a dropped layer, the
 * reserved seq goes out as a padding-only packet (HD_TL_PAD) so that the
 * subscriber's sequence has no hole. A history of HD_TL_HIST packets maps out
 * seqs back to source seqs for the subscriber's NACKs (and forward for
 * probes); older ones are unmappable. Until a layer is first dropped the
 * filter is the identity and keeps no history (the common case costs a
 * branch). Sans-IO, no allocation. */
#ifndef HD_SFU_TEMPORAL_H
#define HD_SFU_TEMPORAL_H
#include <stddef.h>
#include <stdint.h>

#define HD_TL_ALL 3    /* TID is 2 bits: max 3 = every layer */
#define HD_TL_HIST 256 /* packets of seq history (power of 2) */
#define HD_TL_PICS 32  /* pictures whose verdict and out PictureID are kept */

enum { HD_TL_FORWARD = 0, HD_TL_DROP = 1, HD_TL_PAD = 2 };

typedef struct {
  uint16_t src;  /* source seq of this slot (out seq history: its out seq) */
  uint16_t out;  /* out seq (out history: the source seq) */
  uint8_t state; /* 0 empty, 1 forwarded, 2 dropped, 3 reserved (missing), 4 padded */
} hd_tl_slot_t;

typedef struct {
  int started, engaged;
  uint32_t src_ssrc;
  int target;                      /* highest TID wanted (HD_TL_ALL = all) */
  int cur;                         /* highest TID forwarded now */
  int64_t max_ext;                 /* newest extended source seq seen */
  int64_t engage_ext;              /* first extended seq under the history (identity before) */
  uint16_t drops;                  /* packets dropped so far: out = src - drops for new packets */
  uint16_t pid_drops;              /* pictures dropped so far */
  hd_tl_slot_t by_src[HD_TL_HIST]; /* indexed by src seq */
  hd_tl_slot_t by_out[HD_TL_HIST]; /* indexed by out seq: .src = the source seq */
  int pic_pid[HD_TL_PICS];         /* source PictureID, -1 empty */
  uint16_t pic_out[HD_TL_PICS];
  uint8_t pic_drop[HD_TL_PICS];
  int pic_next;
  uint64_t dropped, padded, up_switches, down_switches;
} hd_tl_filter_t;

void hd_tl_filter_init(hd_tl_filter_t *f);
/* Sets the highest temporal layer to forward (0..HD_TL_ALL); it takes effect
 * as described above. */
void hd_tl_filter_set_target(hd_tl_filter_t *f, int max_tid);

/* The verdict for one source packet: tid/layer_sync/picture_id/frame_start/
 * keyframe from its VP8 descriptor (tid < 0: no temporal layers, always
 * forwarded; picture_id < 0: none). HD_TL_FORWARD or HD_TL_PAD with *out_seq
 * set, or HD_TL_DROP. A packet of a new src_ssrc restarts the filter. */
typedef struct {
  int tid, layer_sync, picture_id, frame_start, keyframe;
} hd_tl_pkt_t;
int hd_tl_filter_feed(hd_tl_filter_t *f, uint32_t src_ssrc, uint16_t src_seq, const hd_tl_pkt_t *p,
                      uint16_t *out_seq);

/* out seq -> source seq (a NACK). Returns HD_TL_FORWARD (*src_seq set),
 * HD_TL_PAD (that seq went out as padding: answer with padding), or a
 * negative HD_ENOTFOUND when out of the history. */
int hd_tl_filter_unmap(const hd_tl_filter_t *f, uint16_t out_seq, uint16_t *src_seq);
/* source seq -> out seq of a forwarded packet (probes). 0 or HD_ENOTFOUND. */
int hd_tl_filter_map(const hd_tl_filter_t *f, uint16_t src_seq, uint16_t *out_seq);

/* Rewrites the PictureID of a VP8 payload of the current source in place to
 * its compacted value (a no-op until pictures were dropped). Returns 0 or a
 * negative error for a payload that does not parse (left unchanged). */
int hd_tl_filter_rewrite_pid(const hd_tl_filter_t *f, uint8_t *payload, size_t len);

/* Fills p from a VP8 payload (0, or a negative error when it does not parse). */
int hd_tl_pkt_from_vp8(const uint8_t *payload, size_t len, hd_tl_pkt_t *p);

#endif
