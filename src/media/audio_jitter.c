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
#include "media/rtp_payload.h"
#include "media/time_stretch.h"

struct hd_audio_jitter_slot {
  int used;
  int red; /* from a redundant RED block */
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
  j->pcm = calloc(2 * (size_t)HD_AUDIO_JITTER_PCM_CAP, sizeof(*j->pcm));
  if (!j->slots || !j->pcm) {
    free(j->slots);
    free(j->pcm);
    j->slots = NULL;
    j->pcm = NULL;
    return HD_ENOMEM;
  }
  j->stats.target_delay = k->min_delay;
  return 0;
}

void hd_audio_jitter_free(hd_audio_jitter_t *j) {
  if (!j) return;
  free(j->slots);
  free(j->pcm);
  j->slots = NULL;
  j->pcm = NULL;
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

/* Stores one frame. A redundant one (RED block) only fills a hole: it says
 * nothing about the path's delay, and its frame being there already or past
 * is the normal case, not a duplicate or a late packet. */
static int store(hd_audio_jitter_t *j, uint16_t seq, uint32_t ts, const uint8_t *payload, size_t len,
                 hd_time_t now, int redundant) {
  int64_t ext = unwrap(j, ts);
  if (!redundant && j->started && (ext < j->play_ts - HD_OPUS_RATE || ext > j->play_ts + 10 * HD_OPUS_RATE)) {
    /* A timestamp jump of more than 1 s back or 10 s ahead is a new stream
     * (sender restart, SSRC reuse), not jitter: start over from it. */
    hd_audio_jitter_stats_t keep = j->stats;
    hd_audio_jitter_slot_t *slots = j->slots;
    int16_t *pcm = j->pcm;
    int pcm_mode = j->pcm_mode;
    hd_audio_jitter_config_t cfg = j->cfg;
    memset(slots, 0, cfg.max_packets * sizeof(*slots));
    memset(j, 0, sizeof(*j));
    j->cfg = cfg;
    j->slots = slots;
    j->pcm = pcm;
    j->pcm_mode = pcm_mode;
    j->stats = keep;
    j->stats.resets++;
    ext = unwrap(j, ts);
  }
  if (redundant) {
    if (!j->have_first || (j->started && ext < j->play_ts) || ext < j->last_ext_ts - 64 * HD_OPUS_RATE ||
        ext > j->last_ext_ts || find(j, ext))
      return 1;
  } else {
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
     * packet is exactly the evidence that the target must grow. Not a NACK
     * repair: it is late by a round trip on purpose (the repair floor in
     * estimate() covers it), and at 30% loss a third of the packets would
     * push the target to the repair time (NetEQ leaves them out too). */
    if (!j->pushing_repair) {
      j->rel[j->rel_pos] = now - ticks_us(ext - j->first_ext);
      j->rel_pos = (j->rel_pos + 1) % HD_AUDIO_JITTER_WINDOW;
      if (j->rel_n < HD_AUDIO_JITTER_WINDOW) j->rel_n++;
    }
    if (j->started && ext < j->play_ts) {
      j->stats.late++;
      return 1;
    }
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
  s->red = redundant;
  s->ext = ext;
  s->seq = seq;
  s->len = len;
  memcpy(s->data, payload, len);
  j->n++;
  if (redundant)
    j->stats.red_blocks++;
  else
    j->stats.packets++;
  return 0;
}

int hd_audio_jitter_push(hd_audio_jitter_t *j, uint16_t seq, uint32_t ts, const uint8_t *payload, size_t len,
                         hd_time_t now) {
  if (!j || !j->slots || !payload || len == 0 || len > HD_AUDIO_JITTER_MAX_PAYLOAD) return HD_EINVAL;
  return store(j, seq, ts, payload, len, now, 0);
}

int hd_audio_jitter_push_red(hd_audio_jitter_t *j, uint16_t seq, uint32_t ts, const uint8_t *red, size_t len,
                             uint8_t opus_pt, hd_time_t now) {
  if (!j || !j->slots || !red || len == 0 || len > HD_AUDIO_JITTER_MAX_PAYLOAD) return HD_EINVAL;
  hd_red_block_t b[HD_RED_MAX_BLOCKS];
  int n = hd_red_parse(red, len, b);
  if (n < 0) return n;
  int rc = 1;
  if (b[n - 1].pt == opus_pt && b[n - 1].len > 0) rc = store(j, seq, ts, b[n - 1].data, b[n - 1].len, now, 0);
  int depth = 0;
  for (int i = 0; i < n - 1; i++) {
    if (b[i].pt != opus_pt || b[i].len == 0 || b[i].ts_offset == 0) continue;
    int back = (b[i].ts_offset + j->cfg.frame_samples / 2) / j->cfg.frame_samples;
    if (back > depth) depth = back;
    store(j, (uint16_t)(seq - back), ts - b[i].ts_offset, b[i].data, b[i].len, now, 1);
  }
  j->red_depth = depth;
  return rc;
}

int hd_audio_jitter_push_repair(hd_audio_jitter_t *j, uint16_t seq, uint32_t ts, const uint8_t *payload,
                                size_t len, int red, uint8_t opus_pt, hd_time_t now) {
  if (!j) return HD_EINVAL;
  j->pushing_repair = 1;
  int rc = red ? hd_audio_jitter_push_red(j, seq, ts, payload, len, opus_pt, now)
               : hd_audio_jitter_push(j, seq, ts, payload, len, now);
  j->pushing_repair = 0;
  if (rc == 0) j->stats.repairs++;
  return rc;
}

static int cmp_time(const void *a, const void *b) {
  hd_time_t x = *(const hd_time_t *)a, y = *(const hd_time_t *)b;
  return x < y ? -1 : x > y;
}

/* Minimum relative delay and target from the window. */
static void estimate(hd_audio_jitter_t *j, hd_time_t now, hd_time_t *min_rel, hd_time_t *target) {
  hd_time_t sorted[HD_AUDIO_JITTER_WINDOW];
  size_t n = j->rel_n;
  memcpy(sorted, j->rel, n * sizeof(sorted[0]));
  qsort(sorted, n, sizeof(sorted[0]), cmp_time);
  size_t qi = (size_t)(j->cfg.quantile * (double)n + 0.999999);
  if (qi < 1) qi = 1;
  if (qi > n) qi = n;
  *min_rel = sorted[0];
  hd_time_t t = sorted[qi - 1] - sorted[0] + frame_us(j);
  if (j->last_loss && now - j->last_loss < HD_AUDIO_JITTER_LOSS_HOLD) {
    /* Losses lately: wait for the packet that carries the lost frame's copy
     * (the next one for Opus FEC; red_depth on for RED, plus one for the FEC
     * of the frame after it, which may itself come from a RED block) before
     * giving up. */
    t += frame_us(j) * (j->red_depth + 1);
    /* NACK repairs (RFC 4585): room for a request and its answer */
    hd_time_t nack = j->repair_rtt + 2 * frame_us(j) + HD_MS(10);
    if (j->repair_rtt > 0 && nack <= HD_AUDIO_JITTER_NACK_MAX && t < nack) t = nack;
  }
  t += j->sync_extra; /* lip sync: video is later (media/av_sync.h) */
  if (t < j->cfg.min_delay) t = j->cfg.min_delay;
  if (t > j->cfg.max_delay) t = j->cfg.max_delay;
  *target = t;
}

static void take(hd_audio_jitter_t *j, hd_audio_jitter_slot_t *s) {
  s->used = 0;
  j->n--;
}

/* Counts one 20 ms frame of concealment (PLC) towards the speech-gap run. */
static void conceal(hd_audio_jitter_t *j, hd_time_t fms) {
  j->stats.concealed_ms += (uint64_t)fms;
  if (!j->run_ms) j->max_run_before = j->stats.max_concealed_run_ms;
  j->run_ms += fms;
  if ((uint64_t)j->run_ms > j->stats.max_concealed_run_ms)
    j->stats.max_concealed_run_ms = (uint64_t)j->run_ms;
}

/* One frame's decision. backlog: decoded audio not yet played (PCM mode),
 * which delays the frame decided now. */
static int pull_frame(hd_audio_jitter_t *j, hd_time_t now, hd_time_t backlog, hd_audio_jitter_out_t *out) {
  memset(out, 0, sizeof(*out));
  out->kind = HD_AUDIO_JITTER_EMPTY;
  if (!j->have_first || j->rel_n == 0) return out->kind;
  hd_time_t min_rel, target;
  estimate(j, now, &min_rel, &target);
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
  hd_time_t d = now + backlog - (ticks_us(j->play_ts - j->first_ext) + min_rel);
  j->stats.delay = d;
  j->stats.played_ms += (uint64_t)fms;
  out->ts = (uint32_t)j->play_ts;
  if (j->pcm_mode) {
    /* steer by stretching what is decoded below (PLAY / FEC only) */
    if (d < target)
      out->stretch = 1;
    else if (d > target + HD_AUDIO_JITTER_ACCEL_MARGIN)
      out->stretch = -1;
    if (d < target && !earliest_from(j, j->play_ts)) {
      /* Nothing at or after the frame is here and it is not due yet (the
       * playout clock ran ahead of the packets: a stalled loop catching up,
       * an underflow): conceal and wait for it rather than move on and find
       * every packet late. With a later packet here it is a loss: FEC/PLC. */
      j->stats.expands++;
      conceal(j, fms);
      out->kind = HD_AUDIO_JITTER_PLC;
      out->stretch = 0;
      return out->kind;
    }
  } else if (d < target) {
    /* Expand: play a concealed frame and let the delay grow by one frame. */
    j->stats.expands++;
    conceal(j, fms);
    out->kind = HD_AUDIO_JITTER_PLC;
    return out->kind;
  } else if (d > target + 2 * frame_us(j)) {
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
      if ((hd_time_t)j->run_ms == j->pending_gap_ms) j->stats.max_concealed_run_ms = j->max_run_before;
      if (j->pcm_mode) {
        uint64_t n = (uint64_t)j->pending_gap_ms * (HD_OPUS_RATE / 1000);
        if (n > j->stats.concealed_samples) n = j->stats.concealed_samples;
        j->stats.concealed_samples -= n;
        j->stats.silent_concealed_samples += n;
      }
    }
    j->pending_gap_ms = 0;
    j->run_ms = 0;
    out->kind = HD_AUDIO_JITTER_PLAY;
    out->data = s->data;
    out->len = s->len;
    out->seq = s->seq;
    if (s->red) {
      j->stats.red_ms += (uint64_t)fms;
      j->last_loss = now ? now : 1;
      j->fec_seen = 1;
    }
    j->last_seq = s->seq;
    j->have_last_seq = 1;
    take(j, s);
  } else {
    hd_audio_jitter_slot_t *nx = earliest_from(j, j->play_ts + 1);
    if (nx && j->have_last_seq && nx->seq == (uint16_t)(j->last_seq + 1)) {
      out->kind = HD_AUDIO_JITTER_CNG; /* no sequence gap: the sender paused (DTX) */
      j->stats.cng_ms += (uint64_t)fms;
      out->stretch = 0;
    } else if (nx && nx->ext == j->play_ts + fs) {
      out->kind = HD_AUDIO_JITTER_FEC;
      out->data = nx->data; /* not taken: it plays normally on the next pull */
      out->len = nx->len;
      out->seq = (uint16_t)(nx->seq - 1);
      j->stats.fec_ms += (uint64_t)fms;
      j->last_loss = now ? now : 1;
      j->fec_seen = 1;
      j->run_ms = 0;
    } else {
      out->kind = HD_AUDIO_JITTER_PLC;
      out->stretch = 0;
      conceal(j, fms);
      if (!nx)
        j->pending_gap_ms += fms;
      else
        j->last_loss = now ? now : 1; /* a hole with later packets here: a loss */
    }
  }
  j->play_ts += fs;
  return out->kind;
}

int hd_audio_jitter_pull(hd_audio_jitter_t *j, hd_time_t now, hd_audio_jitter_out_t *out) {
  if (!j || !j->slots || !out) return HD_EINVAL;
  return pull_frame(j, now, 0, out);
}

/* Decodes one frame for action o into f (fs samples per channel). */
static int decode_frame(hd_opus_dec_t *dec, const hd_audio_jitter_out_t *o, int fs, int16_t *f) {
  int n = -1;
  if (o->kind == HD_AUDIO_JITTER_PLAY)
    n = hd_opus_decode(dec, o->data, o->len, f, HD_OPUS_MAX_FRAME_SAMPLES);
  else if (o->kind == HD_AUDIO_JITTER_FEC)
    n = hd_opus_decode_fec(dec, o->data, o->len, f, fs);
  if (n == fs) return 0;
  /* PLC, CNG, or a corrupt packet / one not a frame long: conceal rather than
   * break the clock */
  n = hd_opus_decode_plc(dec, f, fs);
  return n == fs ? 1 : (n < 0 ? n : HD_EPROTO);
}

int hd_audio_jitter_pull_pcm_cb(hd_audio_jitter_t *j, hd_time_t now, hd_opus_dec_t *dec, int16_t *pcm,
                                size_t cap_samples, int *kind, hd_audio_jitter_packet_fn on_packet,
                                void *ud) {
  if (!j || !j->slots || !j->pcm || !dec || !dec->dec || !pcm || dec->channels < 1 || dec->channels > 2)
    return HD_EINVAL;
  int fs = j->cfg.frame_samples;
  size_t ch = (size_t)dec->channels;
  if (cap_samples < (size_t)fs) return HD_ENOSPC;
  j->pcm_mode = 1;
  int last = HD_AUDIO_JITTER_EMPTY, concealed = 0, silent = 1;
  static __thread int16_t f[HD_OPUS_MAX_FRAME_SAMPLES * 2], st[(HD_OPUS_FRAME_SAMPLES + 480) * 2];
  while (j->pcm_n < fs) {
    hd_audio_jitter_out_t o;
    int k = pull_frame(j, now, ticks_us(j->pcm_n), &o);
    if (k == HD_AUDIO_JITTER_EMPTY) {
      if (j->pcm_n == 0) break; /* not started: silence, not counted */
      memset(j->pcm + (size_t)j->pcm_n * ch, 0, (size_t)(fs - j->pcm_n) * ch * sizeof(*pcm));
      j->pcm_n = fs; /* the stream restarted under us: pad the tail */
      break;
    }
    silent = 0;
    last = k;
    if (k == HD_AUDIO_JITTER_PLAY && on_packet) on_packet(ud, &o);
    int rc = decode_frame(dec, &o, fs, f);
    if (rc < 0) return rc;
    const int16_t *src = f;
    int n = fs;
    if (rc == 0 && o.stretch && fs <= HD_OPUS_FRAME_SAMPLES) {
      int m =
          o.stretch > 0 ? hd_tstretch_expand(f, fs, (int)ch, st) : hd_tstretch_accelerate(f, fs, (int)ch, st);
      if (m > fs) {
        j->stats.inserted_samples_for_deceleration += (uint64_t)(m - fs);
        j->stats.expands++;
      } else if (m > 0 && m < fs) {
        j->stats.removed_samples_for_acceleration += (uint64_t)(fs - m);
        j->stats.accelerates++;
      }
      if (m > 0) {
        src = st;
        n = m;
      }
    }
    if (k == HD_AUDIO_JITTER_PLC || k == HD_AUDIO_JITTER_CNG) {
      if (k == HD_AUDIO_JITTER_PLC) {
        concealed = 1;
        j->stats.concealed_samples += (uint64_t)fs;
        if (!j->concealing) j->stats.concealment_events++;
        j->concealing = 1;
      } else {
        j->stats.silent_concealed_samples += (uint64_t)fs;
      }
    } else {
      j->concealing = 0;
    }
    if ((size_t)(j->pcm_n + n) > HD_AUDIO_JITTER_PCM_CAP) n = HD_AUDIO_JITTER_PCM_CAP - j->pcm_n;
    memcpy(j->pcm + (size_t)j->pcm_n * ch, src, (size_t)n * ch * sizeof(*pcm));
    j->pcm_n += n;
  }
  if (kind) *kind = concealed ? HD_AUDIO_JITTER_PLC : last;
  if (silent && j->pcm_n == 0) {
    memset(pcm, 0, (size_t)fs * ch * sizeof(*pcm));
    return fs;
  }
  memcpy(pcm, j->pcm, (size_t)fs * ch * sizeof(*pcm));
  j->pcm_n -= fs;
  memmove(j->pcm, j->pcm + (size_t)fs * ch, (size_t)j->pcm_n * ch * sizeof(*pcm));
  j->stats.total_samples_received += (uint64_t)fs;
  /* jitterBufferDelay: each emitted sample's time in the buffer, taken as the
   * current playout delay (arrival of the earliest packet to playout) */
  if (j->stats.delay > 0) j->stats.jitter_buffer_delay_s += (double)j->stats.delay / 1e6 * fs;
  j->stats.jitter_buffer_emitted_count += (uint64_t)fs;
  return fs;
}

int hd_audio_jitter_pull_pcm(hd_audio_jitter_t *j, hd_time_t now, hd_opus_dec_t *dec, int16_t *pcm,
                             size_t cap_samples, int *kind) {
  return hd_audio_jitter_pull_pcm_cb(j, now, dec, pcm, cap_samples, kind, NULL, NULL);
}

void hd_audio_jitter_set_sync_delay(hd_audio_jitter_t *j, hd_time_t extra) {
  if (j) j->sync_extra = extra > 0 ? extra : 0;
}

hd_time_t hd_audio_jitter_target(const hd_audio_jitter_t *j) { return j ? j->stats.target_delay : 0; }

void hd_audio_jitter_set_repair_rtt(hd_audio_jitter_t *j, hd_time_t rtt) {
  if (j) j->repair_rtt = rtt > 0 ? rtt : 0;
}

hd_time_t hd_audio_jitter_repair_window(const hd_audio_jitter_t *j) {
  if (!j) return 0;
  hd_time_t d = j->started ? j->stats.delay : j->stats.target_delay;
  d -= frame_us(j);
  return d > 0 ? d : 0;
}

double hd_audio_jitter_stall_rate(const hd_audio_jitter_t *j) {
  if (!j || j->stats.played_ms == 0) return 0.0;
  return (double)j->stats.concealed_ms / (double)j->stats.played_ms;
}
