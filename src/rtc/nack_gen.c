/* NACK generation for one stream (see nack_gen.h). */
#include "rtc/nack_gen.h"

#include <string.h>

#include "proto/rtp.h"

#define RESET_GAP 1000 /* a forward jump larger than this is a restart, not loss */

void hd_nack_gen_init(hd_nack_gen_t *g) {
  memset(g, 0, sizeof *g);
  g->rtt = HD_MS(100);
  g->min_interval = HD_MS(20);
  g->max_age = HD_SEC(1);
  g->max_tries = 10;
  g->reorder_wait = HD_MS(5);
}

void hd_nack_gen_reset(hd_nack_gen_t *g) {
  g->started = 0;
  g->n_missing = 0;
  g->resets++;
}

void hd_nack_gen_set_rtt(hd_nack_gen_t *g, hd_time_t rtt) {
  if (rtt > 0 && rtt < HD_SEC(5)) g->rtt = rtt;
}

static hd_time_t retry_interval(const hd_nack_gen_t *g) {
  hd_time_t iv = g->rtt + g->rtt / 4;
  return iv < g->min_interval ? g->min_interval : iv;
}

static void remove_at(hd_nack_gen_t *g, size_t i) {
  memmove(&g->missing[i], &g->missing[i + 1], (g->n_missing - i - 1) * sizeof g->missing[0]);
  g->n_missing--;
}

static void rtt_sample(hd_nack_gen_t *g, hd_time_t sample) {
  if (sample <= 0 || sample >= HD_SEC(5)) return;
  g->rtt = g->rtt_samples == 0 ? sample : g->rtt + (sample - g->rtt) / 8;
  g->rtt_samples++;
}

int hd_nack_gen_on_packet(hd_nack_gen_t *g, uint16_t seq, hd_time_t now) {
  if (!g->started) {
    g->started = 1;
    g->max_ext = 0x10000 + seq;
    return 0;
  }
  int64_t ext = hd_seq_extend(g->max_ext, seq);
  if (ext <= g->max_ext) { /* late or repaired: no longer missing */
    for (size_t i = 0; i < g->n_missing; i++) {
      if (g->missing[i].ext_seq == ext) {
        int repaired = g->missing[i].tries > 0;
        if (repaired) g->recovered++;
        if (g->learn_rtt && g->missing[i].tries == 1) rtt_sample(g, now - g->missing[i].asked);
        remove_at(g, i);
        return repaired;
      }
    }
    return 0;
  }
  int64_t gap = ext - g->max_ext - 1;
  if (gap > RESET_GAP) {
    g->n_missing = 0;
    g->resets++;
  } else {
    for (int64_t s = g->max_ext + 1; s < ext; s++) {
      if (g->n_missing == HD_NACK_MAX_MISSING) { /* drop the oldest: it is the least likely to be useful */
        remove_at(g, 0);
        g->gave_up++;
      }
      hd_nack_entry_t *e = &g->missing[g->n_missing++];
      e->ext_seq = s;
      e->first = now;
      e->next_ask = now + hd_nack_gen_first_wait(g, now);
      e->tries = 0;
      g->noticed++;
    }
  }
  g->max_ext = ext;
  return 0;
}

void hd_nack_gen_fec_seen(hd_nack_gen_t *g, hd_time_t wait, hd_time_t now) {
  g->fec_wait = wait;
  g->fec_until = now + HD_NACK_FEC_HOLD;
}

hd_time_t hd_nack_gen_first_wait(const hd_nack_gen_t *g, hd_time_t now) {
  if (now < g->fec_until && g->fec_wait > g->reorder_wait) return g->fec_wait;
  return g->reorder_wait;
}

size_t hd_nack_gen_fec_covered(hd_nack_gen_t *g, uint16_t first_seq, uint16_t last_seq, hd_time_t now) {
  if (!g->started) return 0;
  int64_t first = hd_seq_extend(g->max_ext, first_seq), last = hd_seq_extend(g->max_ext, last_seq);
  size_t n = 0;
  for (size_t i = 0; i < g->n_missing; i++) {
    hd_nack_entry_t *e = &g->missing[i];
    if (e->ext_seq < first || e->ext_seq > last || e->tries || e->next_ask <= now) continue;
    e->next_ask = now;
    n++;
  }
  return n;
}

int hd_nack_gen_is_missing(const hd_nack_gen_t *g, uint16_t seq) {
  if (!g->started) return 0;
  int64_t ext = hd_seq_extend(g->max_ext, seq);
  for (size_t i = 0; i < g->n_missing; i++)
    if (g->missing[i].ext_seq == ext) return 1;
  return 0;
}

size_t hd_nack_gen_poll(hd_nack_gen_t *g, hd_time_t now, uint16_t *seqs, size_t cap) {
  size_t n = 0, i = 0;
  while (i < g->n_missing) {
    hd_nack_entry_t *e = &g->missing[i];
    if (now - e->first >= g->max_age || e->tries >= g->max_tries) {
      g->gave_up++;
      remove_at(g, i);
      continue;
    }
    if (e->next_ask <= now && n < cap) {
      seqs[n++] = (uint16_t)e->ext_seq;
      if (e->tries == 0) e->asked = now;
      e->tries++;
      e->next_ask = now + retry_interval(g);
      g->requested++;
    }
    i++;
  }
  return n;
}

hd_time_t hd_nack_gen_next_timeout(const hd_nack_gen_t *g) {
  hd_time_t t = HD_TIME_NEVER;
  for (size_t i = 0; i < g->n_missing; i++) {
    const hd_nack_entry_t *e = &g->missing[i];
    hd_time_t due = e->next_ask;
    hd_time_t expire = e->first + g->max_age;
    if (expire < due) due = expire;
    if (due < t) t = due;
  }
  return t;
}
