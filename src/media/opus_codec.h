/* Opus encoder/decoder wrapper (RFC 6716) over libopus, fixed to what WebRTC
 * uses: 48 kHz, 20 ms frames (960 samples per channel), mono or stereo,
 * interleaved int16 PCM.
 *
 * The encoder exposes what the transport engine steers at runtime: target
 * bitrate (from bandwidth estimation), in-band FEC with the expected loss
 * percentage (RFC 6716 §2.1.7: LBRR copies of the previous frame inside the next
 * packet), and DTX (packets of <= 2 bytes during silence, which need not be
 * sent; RFC 7587 §3.3). The decoder conceals a missing packet either from the
 * FEC data in the packet after it or by PLC. Pure transforms: no I/O, no clock. */
#ifndef HD_MEDIA_OPUS_CODEC_H
#define HD_MEDIA_OPUS_CODEC_H
#include <stddef.h>
#include <stdint.h>

#define HD_OPUS_RATE 48000
#define HD_OPUS_FRAME_MS 20
#define HD_OPUS_FRAME_SAMPLES 960 /* per channel, one 20 ms frame */
/* Longest PCM one decode call can yield per channel: 120 ms (RFC 6716 §3.2.5). */
#define HD_OPUS_MAX_FRAME_SAMPLES 5760
/* Largest encoded packet we produce or accept (RFC 6716 §3.2.1 caps a frame at
 * 1275 bytes; a multi-frame packet can be a little longer). */
#define HD_OPUS_MAX_PACKET 1500
/* Encoder output of at most this many bytes is a DTX frame: nothing to send. */
#define HD_OPUS_DTX_MAX_BYTES 2

typedef struct {
  int channels;      /* 1 or 2 */
  int bitrate;       /* bits/s, 6000..510000 */
  int fec;           /* 1: in-band FEC (LBRR) on */
  int expected_loss; /* percent 0..100, tunes how much FEC the encoder spends */
  int dtx;           /* 1: discontinuous transmission during silence */
  int complexity;    /* 0..10 */
  int music;         /* 0: OPUS_APPLICATION_VOIP (speech), 1: AUDIO */
} hd_opus_enc_config_t;

typedef struct {
  struct OpusEncoder *enc;
  int channels;
} hd_opus_enc_t;

typedef struct {
  struct OpusDecoder *dec;
  int channels;
} hd_opus_dec_t;

/* Defaults: mono, 32 kb/s, FEC on with 10 % expected loss, DTX off,
 * complexity 9, VOIP. */
void hd_opus_enc_config_default(hd_opus_enc_config_t *c);

/* Creates an encoder. HD_EINVAL on a bad config value, HD_ENOMEM, or
 * HD_EUNSUPPORTED if libopus refuses a setting. */
int hd_opus_enc_init(hd_opus_enc_t *e, const hd_opus_enc_config_t *c);
/* Releases the encoder (NULL-safe, idempotent). */
void hd_opus_enc_free(hd_opus_enc_t *e);

/* Runtime controls; each returns 0 or HD_EINVAL (out of range / not initialised). */
int hd_opus_enc_set_bitrate(hd_opus_enc_t *e, int bps); /* 6000..510000 */
int hd_opus_enc_set_fec(hd_opus_enc_t *e, int on, int expected_loss_pct);
int hd_opus_enc_set_dtx(hd_opus_enc_t *e, int on);
/* Current target bitrate in bits/s (as libopus reports it), or HD_EINVAL. */
int hd_opus_enc_get_bitrate(const hd_opus_enc_t *e);

/* Encodes one 20 ms frame: pcm holds HD_OPUS_FRAME_SAMPLES * channels
 * interleaved samples. Returns the packet length (1..cap); a length
 * <= HD_OPUS_DTX_MAX_BYTES means DTX (need not be sent). HD_ENOSPC if cap is
 * too small, HD_EINVAL on bad arguments. */
int hd_opus_encode(hd_opus_enc_t *e, const int16_t *pcm, uint8_t *out, size_t cap);

/* Creates a 48 kHz decoder for 1 or 2 output channels (any encoded channel
 * count is accepted; libopus up/down-mixes). HD_EINVAL, HD_ENOMEM. */
int hd_opus_dec_init(hd_opus_dec_t *d, int channels);
void hd_opus_dec_free(hd_opus_dec_t *d);

/* Decodes one packet into pcm (capacity cap_samples per channel, interleaved).
 * Returns the samples per channel produced; HD_EPROTO on a corrupt packet,
 * HD_ENOSPC when the packet is longer than cap_samples. */
int hd_opus_decode(hd_opus_dec_t *d, const uint8_t *pkt, size_t len, int16_t *pcm, size_t cap_samples);

/* Packet loss concealment: synthesises `samples` per channel (a multiple of
 * 120 = 2.5 ms, typically HD_OPUS_FRAME_SAMPLES) for a packet that never
 * arrived. Returns samples or HD_EINVAL. */
int hd_opus_decode_plc(hd_opus_dec_t *d, int16_t *pcm, int samples);

/* Recovers the packet BEFORE `next_pkt` from the FEC (LBRR) data carried in
 * next_pkt; produces `samples` per channel (the missing packet's duration,
 * normally HD_OPUS_FRAME_SAMPLES). When next_pkt carries no FEC, libopus falls
 * back to PLC. Afterwards decode next_pkt itself normally. Returns samples,
 * HD_EPROTO on a corrupt packet, HD_EINVAL. */
int hd_opus_decode_fec(hd_opus_dec_t *d, const uint8_t *next_pkt, size_t len, int16_t *pcm, int samples);

/* Samples per channel at 48 kHz in a packet (from its TOC byte, RFC 6716
 * §3.1), HD_EPROTO if the TOC/frame count is invalid. */
int hd_opus_packet_samples(const uint8_t *pkt, size_t len);

#endif
