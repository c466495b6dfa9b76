/* Opus wrapper over libopus (RFC 6716; see opus_codec.h). libopus does the
 * work; this file pins the WebRTC profile (48 kHz, 20 ms) and maps errors. */
#include "media/opus_codec.h"

#include <opus/opus.h>
#include <string.h>

#include "base/err.h"

void hd_opus_enc_config_default(hd_opus_enc_config_t *c) {
  memset(c, 0, sizeof(*c));
  c->channels = 1;
  c->bitrate = 32000;
  c->fec = 1;
  c->expected_loss = 10;
  c->dtx = 0;
  c->complexity = 9;
  c->music = 0;
}

static int bitrate_ok(int bps) { return bps >= 6000 && bps <= 510000; }

int hd_opus_enc_init(hd_opus_enc_t *e, const hd_opus_enc_config_t *c) {
  if (!e || !c) return HD_EINVAL;
  memset(e, 0, sizeof(*e));
  if ((c->channels != 1 && c->channels != 2) || !bitrate_ok(c->bitrate) || c->expected_loss < 0 ||
      c->expected_loss > 100 || c->complexity < 0 || c->complexity > 10)
    return HD_EINVAL;
  int err = 0;
  OpusEncoder *enc = opus_encoder_create(HD_OPUS_RATE, c->channels,
                                         c->music ? OPUS_APPLICATION_AUDIO : OPUS_APPLICATION_VOIP, &err);
  if (!enc) return err == OPUS_ALLOC_FAIL ? HD_ENOMEM : HD_EUNSUPPORTED;
  if (opus_encoder_ctl(enc, OPUS_SET_BITRATE(c->bitrate)) != OPUS_OK ||
      opus_encoder_ctl(enc, OPUS_SET_INBAND_FEC(c->fec ? 1 : 0)) != OPUS_OK ||
      opus_encoder_ctl(enc, OPUS_SET_PACKET_LOSS_PERC(c->expected_loss)) != OPUS_OK ||
      opus_encoder_ctl(enc, OPUS_SET_DTX(c->dtx ? 1 : 0)) != OPUS_OK ||
      opus_encoder_ctl(enc, OPUS_SET_COMPLEXITY(c->complexity)) != OPUS_OK) {
    opus_encoder_destroy(enc);
    return HD_EUNSUPPORTED;
  }
  e->enc = enc;
  e->channels = c->channels;
  return 0;
}

void hd_opus_enc_free(hd_opus_enc_t *e) {
  if (!e) return;
  if (e->enc) opus_encoder_destroy(e->enc);
  e->enc = NULL;
}

int hd_opus_enc_set_bitrate(hd_opus_enc_t *e, int bps) {
  if (!e || !e->enc || !bitrate_ok(bps)) return HD_EINVAL;
  return opus_encoder_ctl(e->enc, OPUS_SET_BITRATE(bps)) == OPUS_OK ? 0 : HD_EINVAL;
}

int hd_opus_enc_set_fec(hd_opus_enc_t *e, int on, int expected_loss_pct) {
  if (!e || !e->enc || expected_loss_pct < 0 || expected_loss_pct > 100) return HD_EINVAL;
  if (opus_encoder_ctl(e->enc, OPUS_SET_INBAND_FEC(on ? 1 : 0)) != OPUS_OK ||
      opus_encoder_ctl(e->enc, OPUS_SET_PACKET_LOSS_PERC(expected_loss_pct)) != OPUS_OK)
    return HD_EINVAL;
  return 0;
}

int hd_opus_enc_set_dtx(hd_opus_enc_t *e, int on) {
  if (!e || !e->enc) return HD_EINVAL;
  return opus_encoder_ctl(e->enc, OPUS_SET_DTX(on ? 1 : 0)) == OPUS_OK ? 0 : HD_EINVAL;
}

int hd_opus_enc_get_bitrate(const hd_opus_enc_t *e) {
  if (!e || !e->enc) return HD_EINVAL;
  opus_int32 v = 0;
  if (opus_encoder_ctl(e->enc, OPUS_GET_BITRATE(&v)) != OPUS_OK) return HD_EINVAL;
  return (int)v;
}

int hd_opus_encode(hd_opus_enc_t *e, const int16_t *pcm, uint8_t *out, size_t cap) {
  if (!e || !e->enc || !pcm || !out || cap == 0) return HD_EINVAL;
  opus_int32 max = cap > HD_OPUS_MAX_PACKET ? HD_OPUS_MAX_PACKET : (opus_int32)cap;
  int n = opus_encode(e->enc, pcm, HD_OPUS_FRAME_SAMPLES, out, max);
  if (n == OPUS_BUFFER_TOO_SMALL) return HD_ENOSPC;
  if (n < 0) return HD_EINVAL;
  return n;
}

int hd_opus_dec_init(hd_opus_dec_t *d, int channels) {
  if (!d) return HD_EINVAL;
  memset(d, 0, sizeof(*d));
  if (channels != 1 && channels != 2) return HD_EINVAL;
  int err = 0;
  OpusDecoder *dec = opus_decoder_create(HD_OPUS_RATE, channels, &err);
  if (!dec) return err == OPUS_ALLOC_FAIL ? HD_ENOMEM : HD_EUNSUPPORTED;
  d->dec = dec;
  d->channels = channels;
  return 0;
}

void hd_opus_dec_free(hd_opus_dec_t *d) {
  if (!d) return;
  if (d->dec) opus_decoder_destroy(d->dec);
  d->dec = NULL;
}

int hd_opus_packet_samples(const uint8_t *pkt, size_t len) {
  if (!pkt || len == 0) return HD_ETRUNC;
  if (len > HD_OPUS_MAX_PACKET) return HD_EPROTO;
  int n = opus_packet_get_nb_samples(pkt, (opus_int32)len, HD_OPUS_RATE);
  if (n <= 0 || n > HD_OPUS_MAX_FRAME_SAMPLES) return HD_EPROTO;
  return n;
}

int hd_opus_decode(hd_opus_dec_t *d, const uint8_t *pkt, size_t len, int16_t *pcm, size_t cap_samples) {
  if (!d || !d->dec || !pkt || !pcm || len == 0) return HD_EINVAL;
  int need = hd_opus_packet_samples(pkt, len);
  if (need < 0) return need;
  if ((size_t)need > cap_samples) return HD_ENOSPC;
  int n = opus_decode(d->dec, pkt, (opus_int32)len, pcm, need, 0);
  if (n < 0) return HD_EPROTO;
  return n;
}

static int conceal_len_ok(int samples) {
  return samples > 0 && samples <= HD_OPUS_MAX_FRAME_SAMPLES && samples % 120 == 0;
}

int hd_opus_decode_plc(hd_opus_dec_t *d, int16_t *pcm, int samples) {
  if (!d || !d->dec || !pcm || !conceal_len_ok(samples)) return HD_EINVAL;
  int n = opus_decode(d->dec, NULL, 0, pcm, samples, 0);
  return n < 0 ? HD_EINVAL : n;
}

int hd_opus_decode_fec(hd_opus_dec_t *d, const uint8_t *next_pkt, size_t len, int16_t *pcm, int samples) {
  if (!d || !d->dec || !next_pkt || !pcm || len == 0 || !conceal_len_ok(samples)) return HD_EINVAL;
  int chk = hd_opus_packet_samples(next_pkt, len);
  if (chk < 0) return chk;
  int n = opus_decode(d->dec, next_pkt, (opus_int32)len, pcm, samples, 1);
  return n < 0 ? HD_EPROTO : n;
}
