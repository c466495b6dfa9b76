/* Video jitter buffer; see video_jitter.h. */
#include "media/video_jitter.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

#define BASE_WINDOW HD_SEC(5)
#define TS_JUMP_US HD_SEC(5) /* a timestamp jump this large is a new source clock */

void hd_video_jb_config_default(hd_video_jb_config_t *c) {
  memset(c, 0, sizeof *c);
  hd_frame_asm_config_default(&c->asm_cfg);
  c->min_delay = 0;
  c->max_delay = HD_MS(500);
  c->percentile = 0.99;
  c->shrink_per_frame = HD_MS(2);
  c->min_hold = HD_MS(150);
  c->max_hold = HD_SEC(1);
  c->min_key_interval = HD_MS(300);
  c->max_frames = 64;
  c->max_bytes = 8u << 20;
}

static hd_time_t clampt(hd_time_t v, hd_time_t lo, hd_time_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* The assembler's waits follow the rtt, the frame rate and the delay. */
static void update_waits(hd_video_jb_t *jb) {
  hd_time_t fi = (hd_time_t)jb->frame_interval_us;
  hd_time_t hold = 8 * jb->rtt + 3 * fi;
  if (jb->delay + jb->rtt > hold) hold = jb->delay + jb->rtt;
  hold = clampt(hold, jb->cfg.min_hold, jb->cfg.max_hold);
  hd_time_t key = 3 * jb->rtt > jb->cfg.min_key_interval ? 3 * jb->rtt : jb->cfg.min_key_interval;
  hd_time_t tl = jb->delay > fi ? jb->delay : fi;
  if (tl > hold) tl = hold;
  hd_frame_asm_set_waits(&jb->fa, hold, key, tl);
}

int hd_video_jb_init(hd_video_jb_t *jb, const hd_video_jb_config_t *c) {
  if (!jb) return HD_EINVAL;
  memset(jb, 0, sizeof *jb);
  if (c)
    jb->cfg = *c;
  else
    hd_video_jb_config_default(&jb->cfg);
  const hd_video_jb_config_t *k = &jb->cfg;
  if (k->min_delay < 0 || k->max_delay < k->min_delay || k->percentile <= 0 || k->percentile > 1 ||
      k->shrink_per_frame < 0 || k->min_hold < 0 || k->max_hold < k->min_hold || k->min_key_interval < 0 ||
      k->max_frames < 1 || k->max_bytes < HD_FRAME_ASM_MAX_PAYLOAD)
    return HD_EINVAL;
  int rc = hd_frame_asm_init(&jb->fa, &k->asm_cfg);
  if (rc < 0) return rc;
  jb->q = calloc(k->max_frames, sizeof *jb->q);
  if (!jb->q) {
    hd_frame_asm_free(&jb->fa);
    return HD_ENOMEM;
  }
  jb->rtt = HD_MS(100);
  jb->frame_interval_us = 33333;
  jb->delay = k->min_delay;
  jb->base_prev = jb->base_cur = INT64_MAX;
  update_waits(jb);
  return 0;
}

void hd_video_jb_free(hd_video_jb_t *jb) {
  if (!jb || !jb->q) return;
  for (size_t i = 0; i < jb->q_n; i++)
    free(jb->q[(jb->q_head + i) % jb->cfg.max_frames].data);
  free(jb->q);
  free(jb->lent);
  hd_frame_asm_free(&jb->fa);
  memset(jb, 0, sizeof *jb);
}

void hd_video_jb_set_rtt(hd_video_jb_t *jb, hd_time_t rtt) {
  if (!jb || rtt <= 0 || rtt > HD_SEC(5) || rtt == jb->rtt) return;
  jb->rtt = rtt;
  update_waits(jb);
}

void hd_video_jb_set_sync_delay(hd_video_jb_t *jb, hd_time_t extra) {
  if (jb) jb->sync_extra = extra > 0 ? extra : 0;
}

hd_time_t hd_video_jb_delay(const hd_video_jb_t *jb) { return jb ? jb->delay : 0; }

static int cmp_time(const void *a, const void *b) {
  hd_time_t x = *(const hd_time_t *)a, y = *(const hd_time_t *)b;
  return x < y ? -1 : x > y;
}

/* Timing of a frame that just completed at `now`: returns its render time. */
static hd_time_t schedule(hd_video_jb_t *jb, const hd_frame_asm_frame_t *f, hd_time_t now) {
  int reset = !jb->have_ts;
  if (jb->have_ts) {
    int64_t d = (int32_t)(f->ts - jb->last_ts);
    int64_t d_us = d * 1000000 / 90000;
    if (d_us > TS_JUMP_US || d_us < -TS_JUMP_US) {
      reset = 1;
    } else {
      jb->ts_ext += d;
      if (d_us > 0) jb->frame_interval_us += ((double)d_us - jb->frame_interval_us) / 16;
    }
  }
  jb->last_ts = f->ts;
  if (reset) {
    jb->have_ts = 1;
    jb->ts_ext = (int64_t)f->ts;
    jb->base_cur = jb->base_prev = INT64_MAX;
    jb->n_late = jb->late_pos = 0;
    jb->base_window_start = now;
  }
  int64_t ts_us = jb->ts_ext * 1000000 / 90000;
  int64_t sample = now - ts_us;
  if (now - jb->base_window_start >= BASE_WINDOW) {
    jb->base_prev = jb->base_cur;
    jb->base_cur = sample;
    jb->base_window_start = now;
  } else if (sample < jb->base_cur) {
    jb->base_cur = sample;
  }
  int64_t base = jb->base_cur < jb->base_prev ? jb->base_cur : jb->base_prev;
  hd_time_t late = sample - base;
  jb->late[jb->late_pos] = late;
  jb->late_pos = (jb->late_pos + 1) % HD_VIDEO_JB_LATENESS_WINDOW;
  if (jb->n_late < HD_VIDEO_JB_LATENESS_WINDOW) jb->n_late++;
  hd_time_t sorted[HD_VIDEO_JB_LATENESS_WINDOW];
  memcpy(sorted, jb->late, jb->n_late * sizeof sorted[0]);
  qsort(sorted, jb->n_late, sizeof sorted[0], cmp_time);
  size_t idx = (size_t)(jb->cfg.percentile * (double)(jb->n_late - 1) + 0.5);
  /* plus what lip sync asks for (the same sender's audio is later, media/av_sync.h) */
  hd_time_t target = clampt(sorted[idx] + jb->sync_extra, jb->cfg.min_delay, jb->cfg.max_delay);
  if (target > jb->delay) {
    jb->delay = target;
  } else {
    hd_time_t down = jb->delay - target;
    jb->delay -= down < jb->cfg.shrink_per_frame ? down : jb->cfg.shrink_per_frame;
  }
  update_waits(jb);
  hd_time_t due = base + ts_us + jb->delay;
  if (jb->q_n) { /* never before a frame queued ahead of it */
    hd_time_t prev = jb->q[(jb->q_head + jb->q_n - 1) % jb->cfg.max_frames].due;
    if (due < prev) due = prev;
  }
  return due;
}

static int q_full(const hd_video_jb_t *jb) {
  return jb->q_n >= jb->cfg.max_frames || jb->q_bytes >= jb->cfg.max_bytes;
}

/* Moves frames the assembler has ready into the render queue; 1 with *ev set
 * when the assembler asks for a keyframe. */
static int pull(hd_video_jb_t *jb, hd_time_t now, hd_video_jb_event_t *ev) {
  hd_frame_asm_event_t fe;
  while (!q_full(jb) && hd_frame_asm_poll(&jb->fa, now, &fe) == 1) {
    if (fe.type == HD_FRAME_ASM_KEYFRAME_NEEDED) {
      memset(ev, 0, sizeof *ev);
      ev->type = HD_VIDEO_JB_KEYFRAME_NEEDED;
      jb->st.keyframe_requests++;
      return 1;
    }
    uint8_t *copy = malloc(fe.frame.len ? fe.frame.len : 1);
    if (!copy) {
      jb->st.frames_overflow++;
      hd_frame_asm_request_keyframe(&jb->fa, now);
      continue;
    }
    memcpy(copy, fe.frame.data, fe.frame.len);
    hd_video_jb_slot_t *s = &jb->q[(jb->q_head + jb->q_n) % jb->cfg.max_frames];
    s->due = schedule(jb, &fe.frame, now);
    s->data = copy;
    s->f = fe.frame;
    s->f.data = copy;
    jb->q_n++;
    jb->q_bytes += fe.frame.len;
  }
  return 0;
}

int hd_video_jb_push(hd_video_jb_t *jb, const hd_frame_asm_pkt_t *pkt, hd_time_t now) {
  if (!jb || !jb->q) return HD_EINVAL;
  return hd_frame_asm_push(&jb->fa, pkt, now);
}

int hd_video_jb_poll(hd_video_jb_t *jb, hd_time_t now, hd_video_jb_event_t *ev) {
  if (!jb || !jb->q || !ev) return HD_EINVAL;
  free(jb->lent);
  jb->lent = NULL;
  if (pull(jb, now, ev)) return 1;
  if (!jb->q_n) return 0;
  hd_video_jb_slot_t *h = &jb->q[jb->q_head];
  /* a full queue releases its oldest frame early rather than lose the chain */
  if (h->due > now && !q_full(jb)) return 0;
  memset(ev, 0, sizeof *ev);
  ev->type = HD_VIDEO_JB_FRAME;
  ev->frame = h->f;
  ev->jb_delay = now - h->f.first_arrival;
  ev->render = 1;
  if (jb->q_n > 1 && jb->q[(jb->q_head + 1) % jb->cfg.max_frames].due <= now) ev->render = 0;
  jb->lent = h->data;
  h->data = NULL;
  jb->q_head = (jb->q_head + 1) % jb->cfg.max_frames;
  jb->q_n--;
  jb->q_bytes -= h->f.len;
  jb->st.frames_out++;
  if (ev->render)
    jb->st.frames_rendered++;
  else
    jb->st.frames_render_dropped++;
  jb->st.jitter_buffer_delay_s += (double)ev->jb_delay / 1e6;
  jb->st.jitter_buffer_target_s += (double)jb->delay / 1e6;
  jb->st.jitter_buffer_emitted++;
  return 1;
}

hd_time_t hd_video_jb_next_timeout(const hd_video_jb_t *jb) {
  if (!jb || !jb->q) return HD_TIME_NEVER;
  hd_time_t t = hd_frame_asm_next_timeout(&jb->fa);
  if (jb->q_n && jb->q[jb->q_head].due < t) t = jb->q[jb->q_head].due;
  return t;
}

void hd_video_jb_request_keyframe(hd_video_jb_t *jb, hd_time_t now) {
  if (!jb || !jb->q) return;
  /* queued deltas depend on what failed to decode: they go too */
  for (size_t i = 0; i < jb->q_n; i++) {
    hd_video_jb_slot_t *s = &jb->q[(jb->q_head + i) % jb->cfg.max_frames];
    free(s->data);
    s->data = NULL;
    jb->fa.stats.frames_dropped++;
  }
  jb->q_n = jb->q_bytes = 0;
  hd_frame_asm_request_keyframe(&jb->fa, now);
}
