/* Audio jitter buffer for 20 ms Opus frames; see audio_jitter.h.
 *
 * Timeline: play_ts (extended RTP timestamp) advances one frame per pull, like
 * the sound card's clock; a packet behind it is late. The actual playout delay
 * D is how long after its earliest possible arrival (media time + the window's
 * minimum relative delay) the frame at play_ts is played. Keeping D at or
 * just above the target, with the target covering the chosen quantile of the
 * observed delay spread plus one pull period, is what makes late packets rare
 * once the window has seen the jitter. */
#include "media/audio_jitter.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

struct hd_audio_jitter_slot {
  int used;
  int64_t ext;
  uint16_t seq;
  size_t len;
  uint8_t data[HD_AUDIO_JITTER_MAX_PAYLOAD];
};

void hd_audio_jitter_config_default(hd_audio_jitter_config_t *c) {
  memset(c, 0, sizeof(*c));
  c->min_delay = HD_MS(20);
  c->max_delay = HD_MS(400);
  c->quantile = 0.95;
  c->max_packets = 64;
  c->frame_samples = HD_OPUS_FRAME_SAMPLES;
}

int hd_audio_jitter_init(hd_audio_jitter_t *j, const hd_audio_jitter_config_t *c) {
  if (!j) return HD_EINVAL;
  memset(j, 0, sizeof(*j));
  if (c)
    j->cfg = *c;
  else
    hd_audio_jitter_config_default(&j->cfg);
  const hd_audio_jitter_config_t *k = &j->cfg;
  if (k->min_delay < 0 || k->max_delay < k->min_delay || k->max_delay > HD_SEC(10) || !(k->quantile >= 0.5) ||
      k->quantile > 1.0 || k->max_packets < 2 || k->max_packets > HD_AUDIO_JITTER_MAX_PACKETS ||
      k->frame_samples < 120 || k->frame_samples > HD_OPUS_MAX_FRAME_SAMPLES || k->frame_samples % 120)
    return HD_EINVAL;
  j->slots = calloc(k->max_packets, sizeof(*j->slots));
  if (!j->slots) return HD_ENOMEM;
  j->stats.target_delay = k->min_delay;
  return 0;
}

void hd_audio_jitter_free(hd_audio_jitter_t *j) {
  if (!j) return;
  free(j->slots);
  j->slots = NULL;
}

/* 48 kHz ticks to microseconds. */
static hd_time_t ticks_us(int64_t t) { return t * 125 / 6; }
static hd_time_t frame_us(const hd_audio_jitter_t *j) { return ticks_us(j->cfg.frame_samples); }

static int64_t unwrap(hd_audio_jitter_t *j, uint32_t ts) {
  if (!j->have_first) return ((int64_t)1 << 32) + ts; /* positive with room below */
  int64_t ext = j->last_ext_ts + (int32_t)(ts - (uint32_t)j->last_ext_ts);
  return ext;
}

static hd_audio_jitter_slot_t *find(hd_audio_jitter_t *j, int64_t ext) {
  for (size_t i = 0; i < j->cfg.max_packets; i++)
    if (j->slots[i].used && j->slots[i].ext == ext) return &j->slots[i];
  return NULL;
}

/* The stored packet with the smallest ext >= from, or NULL. */
static hd_audio_jitter_slot_t *earliest_from(hd_audio_jitter_t *j, int64_t from) {
  hd_audio_jitter_slot_t *best = NULL;
  for (size_t i = 0; i < j->cfg.max_packets; i++) {
    hd_audio_jitter_slot_t *s = &j->slots[i];
    if (s->used && s->ext >= from && (!best || s->ext < best->ext)) best = s;
  }
  return best;
}

int hd_audio_jitter_push(hd_audio_jitter_t *j, uint16_t seq, uint32_t ts, const uint8_t *payload, size_t len,
                         hd_time_t now) {
  if (!j || !j->slots || !payload || len == 0 || len > HD_AUDIO_JITTER_MAX_PAYLOAD) return HD_EINVAL;
  int64_t ext = unwrap(j, ts);
  if (j->started && (ext < j->play_ts - HD_OPUS_RATE || ext > j->play_ts + 10 * HD_OPUS_RATE)) {
    /* A timestamp jump of more than 1 s back or 10 s ahead is a new stream
     * (sender restart, SSRC reuse), not jitter: start over from it. */
    hd_audio_jitter_stats_t keep = j->stats;
    hd_audio_jitter_slot_t *slots = j->slots;
    hd_audio_jitter_config_t cfg = j->cfg;
    memset(slots, 0, cfg.max_packets * sizeof(*slots));
    memset(j, 0, sizeof(*j));
    j->cfg = cfg;
    j->slots = slots;
    j->stats = keep;
    j->stats.resets++;
    ext = unwrap(j, ts);
  }
  if (!j->have_first) {
    j->have_first = 1;
    j->first_ext = ext;
    j->first_arrival = now;
    j->last_ext_ts = ext;
  }
  if (ext > j->last_ext_ts) j->last_ext_ts = ext;
  if (find(j, ext)) {
    j->stats.duplicates++;
    return 1;
  }
  /* Every packet, late ones included, teaches the delay estimate: a late
   * packet is exactly the evidence that the target must grow. */
  j->rel[j->rel_pos] = now - ticks_us(ext - j->first_ext);
  j->rel_pos = (j->rel_pos + 1) % HD_AUDIO_JITTER_WINDOW;
  if (j->rel_n < HD_AUDIO_JITTER_WINDOW) j->rel_n++;
  if (j->started && ext < j->play_ts) {
    j->stats.late++;
    return 1;
  }
  hd_audio_jitter_slot_t *s = NULL;
  for (size_t i = 0; i < j->cfg.max_packets && !s; i++)
    if (!j->slots[i].used) s = &j->slots[i];
  if (!s) {
    s = earliest_from(j, INT64_MIN);
    if (s->ext > ext) {
      j->stats.overflow++; /* the newcomer is the oldest: it is the one to go */
      return 1;
    }
    j->stats.overflow++;
    s->used = 0;
    j->n--;
  }
  s->used = 1;
  s->ext = ext;
  s->seq = seq;
  s->len = len;
  memcpy(s->data, payload, len);
  j->n++;
  j->stats.packets++;
  return 0;
}

static int cmp_time(const void *a, const void *b) {
  hd_time_t x = *(const hd_time_t *)a, y = *(const hd_time_t *)b;
  return x < y ? -1 : x > y;
}

/* Minimum relative delay and target from the window. */
static void estimate(hd_audio_jitter_t *j, hd_time_t *min_rel, hd_time_t *target) {
  hd_time_t sorted[HD_AUDIO_JITTER_WINDOW];
  size_t n = j->rel_n;
  memcpy(sorted, j->rel, n * sizeof(sorted[0]));
  qsort(sorted, n, sizeof(sorted[0]), cmp_time);
  size_t qi = (size_t)(j->cfg.quantile * (double)n + 0.999999);
  if (qi < 1) qi = 1;
  if (qi > n) qi = n;
  *min_rel = sorted[0];
  hd_time_t t = sorted[qi - 1] - sorted[0] + frame_us(j);
  if (t < j->cfg.min_delay) t = j->cfg.min_delay;
  if (t > j->cfg.max_delay) t = j->cfg.max_delay;
  *target = t;
}

static void take(hd_audio_jitter_t *j, hd_audio_jitter_slot_t *s) {
  s->used = 0;
  j->n--;
}

int hd_audio_jitter_pull(hd_audio_jitter_t *j, hd_time_t now, hd_audio_jitter_out_t *out) {
  if (!j || !j->slots || !out) return HD_EINVAL;
  memset(out, 0, sizeof(*out));
  out->kind = HD_AUDIO_JITTER_EMPTY;
  if (!j->have_first || j->rel_n == 0) return out->kind;
  hd_time_t min_rel, target;
  estimate(j, &min_rel, &target);
  j->stats.target_delay = target;
  int64_t fs = j->cfg.frame_samples;
  hd_time_t fms = frame_us(j) / 1000;
  if (!j->started) {
    hd_audio_jitter_slot_t *first = earliest_from(j, INT64_MIN);
    if (!first) return out->kind;
    hd_time_t d = now - (ticks_us(first->ext - j->first_ext) + min_rel);
    if (d < target) return out->kind; /* still buffering */
    j->started = 1;
    j->play_ts = first->ext;
  }
  hd_time_t d = now - (ticks_us(j->play_ts - j->first_ext) + min_rel);
  j->stats.delay = d;
  j->stats.played_ms += (uint64_t)fms;
  out->ts = (uint32_t)j->play_ts;
  if (d < target) {
    /* Expand: play a concealed frame and let the delay grow by one frame. */
    j->stats.expands++;
    j->stats.concealed_ms += (uint64_t)fms;
    out->kind = HD_AUDIO_JITTER_PLC;
    return out->kind;
  }
  if (d > target + 2 * frame_us(j)) {
    /* Accelerate: skip one frame to shed a frame of delay. */
    hd_audio_jitter_slot_t *s = find(j, j->play_ts);
    if (s) {
      j->last_seq = s->seq;
      j->have_last_seq = 1;
      take(j, s);
    }
    j->play_ts += fs;
    j->stats.accelerates++;
    out->ts = (uint32_t)j->play_ts;
  }
  hd_audio_jitter_slot_t *s = find(j, j->play_ts);
  if (s) {
    if (j->pending_gap_ms && j->have_last_seq && s->seq == (uint16_t)(j->last_seq + 1)) {
      /* The frames concealed on an empty buffer were a DTX pause after all. */
      j->stats.concealed_ms -= (uint64_t)j->pending_gap_ms;
      j->stats.cng_ms += (uint64_t)j->pending_gap_ms;
    }
    j->pending_gap_ms = 0;
    out->kind = HD_AUDIO_JITTER_PLAY;
    out->data = s->data;
    out->len = s->len;
    out->seq = s->seq;
    j->last_seq = s->seq;
    j->have_last_seq = 1;
    take(j, s);
  } else {
    hd_audio_jitter_slot_t *nx = earliest_from(j, j->play_ts + 1);
    if (nx && j->have_last_seq && nx->seq == (uint16_t)(j->last_seq + 1)) {
      out->kind = HD_AUDIO_JITTER_CNG; /* no sequence gap: the sender paused (DTX) */
      j->stats.cng_ms += (uint64_t)fms;
    } else if (nx && nx->ext == j->play_ts + fs) {
      out->kind = HD_AUDIO_JITTER_FEC;
      out->data = nx->data; /* not taken: it plays normally on the next pull */
      out->len = nx->len;
      out->seq = (uint16_t)(nx->seq - 1);
      j->stats.fec_ms += (uint64_t)fms;
    } else {
      out->kind = HD_AUDIO_JITTER_PLC;
      j->stats.concealed_ms += (uint64_t)fms;
      if (!nx) j->pending_gap_ms += fms;
    }
  }
  j->play_ts += fs;
  return out->kind;
}

int hd_audio_jitter_pull_pcm(hd_audio_jitter_t *j, hd_time_t now, hd_opus_dec_t *dec, int16_t *pcm,
                             size_t cap_samples, int *kind) {
  if (!j || !dec || !dec->dec || !pcm) return HD_EINVAL;
  int fs = j->cfg.frame_samples;
  if (cap_samples < (size_t)fs) return HD_ENOSPC;
  hd_audio_jitter_out_t o;
  int k = hd_audio_jitter_pull(j, now, &o);
  if (k < 0) return k;
  if (kind) *kind = k;
  int n;
  switch (k) {
  case HD_AUDIO_JITTER_PLAY:
    n = hd_opus_decode(dec, o.data, o.len, pcm, cap_samples);
    if (n == fs) return n;
    /* Corrupt, or not one frame long: conceal rather than break the clock. */
    return hd_opus_decode_plc(dec, pcm, fs);
  case HD_AUDIO_JITTER_FEC:
    n = hd_opus_decode_fec(dec, o.data, o.len, pcm, fs);
    return n == fs ? n : hd_opus_decode_plc(dec, pcm, fs);
  case HD_AUDIO_JITTER_PLC:
  case HD_AUDIO_JITTER_CNG: return hd_opus_decode_plc(dec, pcm, fs);
  default: memset(pcm, 0, (size_t)fs * (size_t)dec->channels * sizeof(*pcm)); return fs;
  }
}

hd_time_t hd_audio_jitter_target(const hd_audio_jitter_t *j) { return j ? j->stats.target_delay : 0; }

double hd_audio_jitter_stall_rate(const hd_audio_jitter_t *j) {
  if (!j || j->stats.played_ms == 0) return 0.0;
  return (double)j->stats.concealed_ms / (double)j->stats.played_ms;
}
