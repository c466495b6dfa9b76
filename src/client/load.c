/* Load generator cores: synthetic payloads, the media pattern, loss and
 * latency accounting (see load.h). Sans-IO: time comes in as arguments. */
#include "client/load.h"

#include <stdio.h>
#include <string.h>

#include "base/bytes.h"
#include "base/err.h"
#include "io/media_workers.h"

int hd_load_payload_write(uint8_t *buf, size_t cap, size_t len, const hd_load_hdr_t *h) {
  if (!buf || !h || len < HD_LOAD_HDR_LEN) return HD_EINVAL;
  if (len > cap) return HD_ENOSPC;
  uint8_t *p = buf;
  p[0] = 0x48, p[1] = 0x44, p[2] = 0x4c, p[3] = 0x44;
  p[4] = (uint8_t)(h->pub_id >> 24), p[5] = (uint8_t)(h->pub_id >> 16), p[6] = (uint8_t)(h->pub_id >> 8),
  p[7] = (uint8_t)h->pub_id;
  p[8] = h->kind, p[9] = h->flags, p[10] = 0, p[11] = 0;
  p[12] = (uint8_t)(h->seq >> 24), p[13] = (uint8_t)(h->seq >> 16), p[14] = (uint8_t)(h->seq >> 8),
  p[15] = (uint8_t)h->seq;
  uint64_t t = (uint64_t)h->sent;
  for (int i = 0; i < 8; i++)
    p[16 + i] = (uint8_t)(t >> (56 - 8 * i));
  /* bytes 24..27: length of the whole payload, so truncation is detectable */
  p[24] = (uint8_t)(len >> 24), p[25] = (uint8_t)(len >> 16), p[26] = (uint8_t)(len >> 8),
  p[27] = (uint8_t)len;
  /* padding: a fixed pattern (not zeros: nothing on the path may compress it) */
  for (size_t i = HD_LOAD_HDR_LEN; i < len; i++)
    p[i] = (uint8_t)(0x5a ^ i);
  return (int)len;
}

int hd_load_payload_parse(const uint8_t *buf, size_t len, hd_load_hdr_t *out) {
  if (!buf || !out) return HD_EINVAL;
  if (len < HD_LOAD_HDR_LEN) return HD_ETRUNC;
  if (buf[0] != 0x48 || buf[1] != 0x44 || buf[2] != 0x4c || buf[3] != 0x44) return HD_EPROTO;
  uint32_t total = (uint32_t)buf[24] << 24 | (uint32_t)buf[25] << 16 | (uint32_t)buf[26] << 8 | buf[27];
  if (total != len) return HD_ETRUNC;
  hd_load_hdr_t h;
  h.pub_id = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 | (uint32_t)buf[6] << 8 | buf[7];
  h.kind = buf[8];
  h.flags = buf[9];
  if (h.kind != HD_LOAD_AUDIO && h.kind != HD_LOAD_VIDEO) return HD_EPROTO;
  h.seq = (uint32_t)buf[12] << 24 | (uint32_t)buf[13] << 16 | (uint32_t)buf[14] << 8 | buf[15];
  uint64_t t = 0;
  for (int i = 0; i < 8; i++)
    t = t << 8 | buf[16 + i];
  h.sent = (hd_time_t)t;
  *out = h;
  return 0;
}

/* ---- source ---- */

#define AUDIO_PERIOD 20000

int hd_load_source_init(hd_load_source_t *s, const hd_load_source_cfg_t *cfg, uint32_t pub_id,
                        hd_time_t now) {
  if (!s || !cfg || (!cfg->audio && !cfg->video)) return HD_EINVAL;
  hd_load_source_cfg_t c = *cfg;
  if (!c.video_kbps) c.video_kbps = 1000;
  if (!c.fps) c.fps = 30;
  if (!c.key_interval) c.key_interval = HD_SEC(2);
  if (c.video_kbps < 1 || c.video_kbps > 100000 || c.fps < 1 || c.fps > 120 || c.key_interval < 0)
    return HD_EINVAL;
  memset(s, 0, sizeof *s);
  s->cfg = c;
  s->pub_id = pub_id;
  s->next_audio = s->next_video = now;
  s->next_key = now;
  s->key_pending = 1;
  s->w0 = HD_TIME_NEVER;
  s->w1 = HD_TIME_NEVER;
  /* average over a key interval = target: (F - 1) deltas + one key of KEY_FACTOR deltas */
  double frames = (double)c.fps * (double)c.key_interval / 1e6;
  if (frames < 1) frames = 1;
  double per_frame = (double)c.video_kbps * 1000.0 / 8.0 / c.fps;
  double delta = per_frame * frames / (frames - 1 + HD_LOAD_KEY_FACTOR);
  s->delta_bytes = delta < HD_LOAD_HDR_LEN ? HD_LOAD_HDR_LEN : (size_t)delta;
  if (s->delta_bytes * HD_LOAD_KEY_FACTOR > (size_t)HD_LOAD_MAX_FRAME_PKTS * HD_LOAD_MAX_PAYLOAD)
    return HD_EINVAL;
  return 0;
}

void hd_load_source_window(hd_load_source_t *s, hd_time_t w0, hd_time_t w1) {
  s->w0 = w0;
  s->w1 = w1;
}

void hd_load_source_request_key(hd_load_source_t *s) { s->key_pending = 1; }

hd_time_t hd_load_source_next(const hd_load_source_t *s) {
  hd_time_t t = HD_TIME_NEVER;
  if (s->cfg.audio) t = s->next_audio;
  if (s->cfg.video && s->next_video < t) t = s->next_video;
  return t;
}

static void emit(hd_load_source_t *s, int kind, int flags, size_t len, uint32_t ts, hd_time_t now,
                 uint8_t *buf, hd_load_pkt_t *pkt) {
  hd_load_hdr_t h = {.pub_id = s->pub_id,
                     .kind = (uint8_t)kind,
                     .flags = (uint8_t)flags,
                     .seq = s->seq[kind]++,
                     .sent = now};
  hd_load_payload_write(buf, HD_LOAD_MAX_PAYLOAD, len, &h);
  pkt->kind = kind;
  pkt->rtp_ts = ts;
  pkt->marker = !!(flags & HD_LOAD_F_MARKER);
  pkt->key = !!(flags & HD_LOAD_F_KEY);
  pkt->len = len;
  s->sent[kind]++;
  if (now >= s->w0 && now < s->w1) s->sent_in_window[kind]++;
}

int hd_load_source_poll(hd_load_source_t *s, hd_time_t now, uint8_t *bufs, size_t stride, hd_load_pkt_t *pkts,
                        int cap) {
  if (stride < HD_LOAD_MAX_PAYLOAD || cap <= 0) return 0;
  int n = 0;
  while (s->cfg.audio && s->next_audio <= now && n < cap) {
    emit(s, HD_LOAD_AUDIO, HD_LOAD_F_MARKER * (s->audio_n == 0), HD_LOAD_AUDIO_BYTES, s->audio_n * 960u, now,
         bufs + (size_t)n * stride, &pkts[n]);
    n++;
    s->audio_n++;
    s->next_audio += AUDIO_PERIOD;
    /* after a stall (the caller was late by more than a second), do not burst */
    if (now - s->next_audio > HD_SEC(1)) s->next_audio = now + AUDIO_PERIOD;
  }
  while (s->cfg.video && s->next_video <= now) {
    int key = s->key_pending || now >= s->next_key;
    size_t bytes = s->delta_bytes * (key ? HD_LOAD_KEY_FACTOR : 1);
    int npk = (int)((bytes + HD_LOAD_MAX_PAYLOAD - 1) / HD_LOAD_MAX_PAYLOAD);
    if (n + npk > cap) break;
    size_t each = bytes / (size_t)npk;
    if (each < HD_LOAD_HDR_LEN) each = HD_LOAD_HDR_LEN;
    uint32_t ts = (uint32_t)((uint64_t)s->frames * 90000u / (uint32_t)s->cfg.fps);
    for (int i = 0; i < npk; i++) {
      int fl = (key ? HD_LOAD_F_KEY : 0) | (i == npk - 1 ? HD_LOAD_F_MARKER : 0);
      emit(s, HD_LOAD_VIDEO, fl, each, ts, now, bufs + (size_t)n * stride, &pkts[n]);
      n++;
    }
    if (key) {
      s->key_pending = 0;
      s->next_key = now + s->cfg.key_interval;
    }
    s->frames++;
    s->next_video += 1000000 / s->cfg.fps;
    if (now - s->next_video > HD_SEC(1)) s->next_video = now + 1000000 / s->cfg.fps;
  }
  return n;
}

/* ---- histogram ---- */

void hd_load_hist_add(hd_load_hist_t *h, hd_time_t v) {
  h->n++;
  if (v < 0) {
    h->negative++;
    v = 0;
  }
  h->sum += (double)v;
  if (v > h->max) h->max = v;
  if (v < 10 * HD_LOAD_HIST_FINE)
    h->fine[v / 10]++;
  else if (v < 10000 + 1000 * (hd_time_t)HD_LOAD_HIST_COARSE)
    h->coarse[(v - 10000) / 1000]++;
  else
    h->overflow++;
}

void hd_load_hist_merge(hd_load_hist_t *into, const hd_load_hist_t *from) {
  into->n += from->n;
  into->overflow += from->overflow;
  into->negative += from->negative;
  into->sum += from->sum;
  if (from->max > into->max) into->max = from->max;
  for (int i = 0; i < HD_LOAD_HIST_FINE; i++)
    into->fine[i] += from->fine[i];
  for (int i = 0; i < HD_LOAD_HIST_COARSE; i++)
    into->coarse[i] += from->coarse[i];
}

hd_time_t hd_load_hist_quantile(const hd_load_hist_t *h, double q) {
  if (!h->n) return 0;
  if (q < 0) q = 0;
  if (q > 1) q = 1;
  uint64_t rank = (uint64_t)(q * (double)h->n);
  if (rank >= h->n) rank = h->n - 1;
  uint64_t acc = 0;
  for (int i = 0; i < HD_LOAD_HIST_FINE; i++) {
    acc += h->fine[i];
    if (acc > rank) return (hd_time_t)(i + 1) * 10;
  }
  for (int i = 0; i < HD_LOAD_HIST_COARSE; i++) {
    acc += h->coarse[i];
    if (acc > rank) return 10000 + (hd_time_t)(i + 1) * 1000;
  }
  return h->max;
}

/* ---- receiver ---- */

void hd_load_rx_init(hd_load_rx_t *r, uint32_t pub_id, int kind) {
  memset(r, 0, sizeof *r);
  r->pub_id = pub_id;
  r->kind = (uint8_t)kind;
}

int hd_load_rx_feed(hd_load_rx_t *r, const hd_load_hdr_t *h, hd_time_t arrival, hd_time_t w0, hd_time_t w1,
                    hd_load_hist_t *hist) {
  if (!r || !h || h->pub_id != r->pub_id || h->kind != r->kind) return HD_EINVAL;
  uint32_t bit = h->seq % HD_LOAD_DEDUP_BITS;
  if (r->any) {
    int32_t d = (int32_t)(h->seq - r->max_seq);
    if (d > 0) {
      /* clear the bits of the seqs skipped over (they may still arrive late) */
      uint32_t clear = d >= HD_LOAD_DEDUP_BITS ? HD_LOAD_DEDUP_BITS : (uint32_t)d;
      for (uint32_t i = 1; i <= clear; i++) {
        uint32_t b = (r->max_seq + i) % HD_LOAD_DEDUP_BITS;
        r->seen[b / 8] &= (uint8_t) ~(1u << (b % 8));
      }
      r->max_seq = h->seq;
    } else if (d <= -HD_LOAD_DEDUP_BITS) {
      r->duplicates++; /* too old to tell: treat as a duplicate, never double count */
      return 0;
    } else if (r->seen[bit / 8] & (1u << (bit % 8))) {
      r->duplicates++;
      return 0;
    }
  } else {
    r->any = 1;
    r->max_seq = h->seq;
  }
  r->seen[bit / 8] |= (uint8_t)(1u << (bit % 8));
  r->received++;
  if (h->sent >= w0 && h->sent < w1) {
    r->in_window++;
    if (hist) hd_load_hist_add(hist, arrival - h->sent);
  }
  return 1;
}

double hd_load_loss(uint64_t expected, uint64_t received) {
  if (!expected || received >= expected) return 0;
  return (double)(expected - received) / (double)expected;
}

/* ---- count-only receive ---- */

void hd_load_seq_init(hd_load_seq_t *s, uint32_t ssrc, int pt) {
  memset(s, 0, sizeof *s);
  s->ssrc = ssrc;
  s->pt = pt;
}

static int seq_bit(const hd_load_seq_t *s, int64_t ext) {
  uint32_t b = (uint32_t)(ext % HD_LOAD_SEQ_WINDOW);
  return (s->seen[b / 8] >> (b % 8)) & 1;
}

static void seq_set(hd_load_seq_t *s, int64_t ext, int on) {
  uint32_t b = (uint32_t)(ext % HD_LOAD_SEQ_WINDOW);
  if (on)
    s->seen[b / 8] |= (uint8_t)(1u << (b % 8));
  else
    s->seen[b / 8] &= (uint8_t) ~(1u << (b % 8));
}

int hd_load_seq_feed(hd_load_seq_t *s, uint16_t seq) {
  int64_t ext;
  if (!s->any) {
    /* start high enough that ext never goes negative behind the first packet */
    ext = (int64_t)1 << 20 | seq;
    s->any = 1;
    s->max_ext = ext;
    /* a window started before the stream's first packet begins just before it */
    if (s->started && !s->ended) s->s0 = ext - 1;
  } else {
    int16_t d = (int16_t)(uint16_t)(seq - (uint16_t)s->max_ext); /* RFC 3550 A.1: nearest in mod 2^16 */
    ext = s->max_ext + d;
    if (d > 0) {
      /* forget the seqs skipped over (their slot is reused; they may still arrive late) */
      int64_t clear = d >= HD_LOAD_SEQ_WINDOW ? HD_LOAD_SEQ_WINDOW : d;
      for (int64_t i = 1; i <= clear; i++)
        seq_set(s, s->max_ext + i, 0);
      s->max_ext = ext;
    } else if (-d >= HD_LOAD_SEQ_WINDOW) {
      s->too_old++; /* cannot tell a duplicate from a late packet: never count twice */
      return 0;
    } else if (seq_bit(s, ext)) {
      s->duplicates++;
      return 0;
    }
  }
  seq_set(s, ext, 1);
  s->received++;
  if (s->started && ext > s->s0 && (!s->ended || ext <= s->s1)) s->in_window++;
  if (s->started && !s->ended) s->arrived++;
  return 1;
}

void hd_load_seq_window_start(hd_load_seq_t *s) {
  s->started = 1;
  s->s0 = s->any ? s->max_ext : 0; /* set at the first packet otherwise */
}

void hd_load_seq_window_end(hd_load_seq_t *s) {
  if (!s->started) hd_load_seq_window_start(s);
  s->ended = 1;
  s->s1 = s->any ? s->max_ext : s->s0;
}

uint64_t hd_load_seq_expected(const hd_load_seq_t *s) {
  return s->any && s->ended && s->s1 > s->s0 ? (uint64_t)(s->s1 - s->s0) : 0;
}

int hd_load_rtp_peek(const uint8_t *buf, size_t len, uint32_t *ssrc, uint16_t *seq, int *pt) {
  if (!buf || len < 12 || buf[0] < 128 || buf[0] > 191) return 0;
  int p = buf[1] & 0x7f;
  if (p >= 64 && p <= 95) return 0; /* RTCP 192..223 with the marker bit's place */
  *pt = p;
  *seq = (uint16_t)(buf[2] << 8 | buf[3]);
  *ssrc = (uint32_t)buf[8] << 24 | (uint32_t)buf[9] << 16 | (uint32_t)buf[10] << 8 | buf[11];
  return 1;
}

int hd_load_room_worker(const char *app, const char *room, int n) {
  return hd_media_room_worker(app, room, n);
}

int hd_load_balanced_room(const char *app, const char *prefix, int i, int n, char *out, size_t cap) {
  if (!app || !prefix || !out || i < 0 || n < 1) return HD_EINVAL;
  int want = i % n, skip = i / n;
  for (int j = 0; j < 1000000; j++) {
    int w = snprintf(out, cap, "%s-%d", prefix, j);
    if (w < 0 || (size_t)w >= cap) return HD_ENOSPC;
    if (hd_load_room_worker(app, out, n) == want && skip-- == 0) return 0;
  }
  return HD_ENOSPC;
}
