/* Link measurement by probes and echoes (link_meter.h). */
#include "overlay/link_meter.h"

#include <math.h>
#include <string.h>

#include "base/bytes.h"
#include "base/err.h"
#include "overlay/overlay_params.h"

void hd_link_meter_init(hd_link_meter_t *m, hd_time_t interval, hd_time_t now) {
  memset(m, 0, sizeof *m);
  const hd_overlay_params_t *op = hd_overlay_params();
  m->interval = interval > 0 ? interval : op->probe_interval;
  m->down_probes = op->down_probes > 0 ? op->down_probes : HD_LINK_METER_DOWN_PROBES;
  m->up_echoes = op->up_echoes > 0 ? op->up_echoes : HD_LINK_METER_UP_ECHOES;
  m->confirm = op->down_confirm >= 0 ? op->down_confirm : HD_LINK_METER_DOWN_CONFIRM;
  m->next_probe = now;
}

static void add_sample(hd_link_meter_t *m, hd_time_t at, float rtt_ms) {
  hd_link_meter_sample_t *s = &m->samples[m->n_samples % HD_LINK_METER_SAMPLES];
  s->at = at;
  s->rtt_ms = rtt_ms;
  m->n_samples++;
}

/* Average over the last HD_LINK_METER_LOSS_WINDOW outcomes: a plain mean while
 * fewer have been seen (so the first ones are not diluted by a made-up 0),
 * then an exponential average with that window. */
static void loss_update(double *avg, uint64_t *n, double outcome, uint64_t weight) {
  *n += weight;
  double a = (double)weight / (double)(*n < HD_LINK_METER_LOSS_WINDOW ? *n : HD_LINK_METER_LOSS_WINDOW);
  if (a > 1) a = 1;
  *avg += (outcome - *avg) * a;
}

/* How long the meter's owner has been late since the last echo: the probe
 * that was due at next_probe is only being sent (or looked at) now, so the
 * owner's loop did not run in between (a scheduling stall, a long batch),
 * and echoes that came meanwhile may still sit unread in its socket. Only
 * the part after the last echo counts. */
static hd_time_t late_part(const hd_link_meter_t *m, hd_time_t now) {
  hd_time_t from = m->next_probe > m->st.last_echo ? m->next_probe : m->st.last_echo;
  return now > from ? now - from : 0;
}

/* Suspect when echoes stopped for down_probes probe intervals plus SRTT +
 * 4 RTTVAR (the RTO margin of RFC 6298 section 2.3); down when they stay
 * away confirm longer. Neither counts the time this end itself was late
 * (the longest single stall since the last echo, or the current one): a
 * silence we caused by not running is not the link's. */
static void eval_down(hd_link_meter_t *m, hd_time_t now) {
  if (!m->st.up) return;
  hd_time_t quiet = m->down_probes * m->interval + (hd_time_t)((m->st.srtt_ms + 4 * m->st.rttvar_ms) * 1000);
  hd_time_t cur = late_part(m, now);
  hd_time_t silence = now - m->st.last_echo - (cur > m->late ? cur : m->late);
  if (silence > quiet && !m->st.suspect) {
    m->st.suspect = 1;
    m->st.suspects++;
  }
  if (silence > quiet + m->confirm) {
    m->st.up = 0;
    m->st.suspect = 0;
    m->st.downs++;
    m->up_streak = 0;
  }
}

int hd_link_meter_poll(hd_link_meter_t *m, hd_time_t now, uint8_t *out, size_t cap) {
  for (int i = 0; i < HD_LINK_METER_OUTSTANDING; i++) {
    if (!m->out[i].live || now - m->out[i].sent <= HD_LINK_METER_PROBE_TIMEOUT) continue;
    m->out[i].live = 0;
    loss_update(&m->st.loss_rtt, &m->rtt_outcomes, 1.0, 1);
    add_sample(m, now, -1.0f);
  }
  eval_down(m, now);
  if (now < m->next_probe) return 0;
  if (cap < HD_LINK_METER_PROBE_LEN) return HD_ENOSPC;
  hd_time_t late = now - m->next_probe; /* >= 0 here */
  if (late > m->st.late_max) m->st.late_max = late;
  m->st.late_total += late;
  /* the largest stall since the last echo, not the sum: a steady lateness L
   * holds echoes unread for about L, once; summing it per probe would excuse
   * the same delay again at every probe, and a busy owner would hardly ever
   * see a dead link (silence growing by interval - L per probe) */
  hd_time_t lp = late_part(m, now);
  if (lp > m->late) m->late = lp;
  uint32_t seq = m->seq++;
  int slot = (int)(seq % HD_LINK_METER_OUTSTANDING);
  if (m->out[slot].live) { /* overwritten before it timed out: a very short interval */
    loss_update(&m->st.loss_rtt, &m->rtt_outcomes, 1.0, 1);
    add_sample(m, now, -1.0f);
  }
  m->out[slot].seq = seq;
  m->out[slot].sent = now;
  m->out[slot].live = 1;
  m->st.probes_sent++;
  m->next_probe += m->interval;
  if (m->next_probe <= now) m->next_probe = now + m->interval; /* fell behind: no burst */
  hd_writer_t w;
  hd_writer_init(&w, out, cap);
  hd_wr_u8(&w, HD_LINK_METER_PROBE);
  hd_wr_u32(&w, seq);
  hd_wr_u64(&w, (uint64_t)now);
  return HD_LINK_METER_PROBE_LEN;
}

hd_time_t hd_link_meter_next_timeout(const hd_link_meter_t *m) {
  hd_time_t t = m->next_probe;
  for (int i = 0; i < HD_LINK_METER_OUTSTANDING; i++)
    if (m->out[i].live) t = hd_time_min(t, m->out[i].sent + HD_LINK_METER_PROBE_TIMEOUT + 1);
  return t;
}

/* As the echoer: count the probe, update the RFC 3550 section 6.4.1 jitter
 * from the transit-time difference (clock offsets cancel), answer it. */
static int answer_probe(hd_link_meter_t *m, hd_reader_t *r, hd_time_t now, uint8_t *reply, size_t replycap) {
  uint32_t seq = hd_rd_u32(r);
  uint64_t t_send = hd_rd_u64(r);
  if (r->err || hd_rd_left(r)) return HD_EINVAL;
  if (replycap < HD_LINK_METER_ECHO_LEN) return HD_ENOSPC;
  m->rx_count++;
  int64_t transit = (int64_t)((uint64_t)now - t_send);
  if (m->have_transit) {
    double d = fabs((double)(transit - m->last_transit_us));
    m->rx_jitter_us += (d - m->rx_jitter_us) / 16.0;
  }
  m->have_transit = 1;
  m->last_transit_us = transit;
  hd_writer_t w;
  hd_writer_init(&w, reply, replycap);
  hd_wr_u8(&w, HD_LINK_METER_ECHO);
  hd_wr_u32(&w, seq);
  hd_wr_u64(&w, t_send);
  hd_wr_u32(&w, 0); /* answered at once: no hold */
  hd_wr_u32(&w, m->rx_count);
  double j = m->rx_jitter_us < 4e9 ? m->rx_jitter_us : 4e9;
  hd_wr_u32(&w, (uint32_t)j);
  return HD_LINK_METER_ECHO_LEN;
}

static void take_echo(hd_link_meter_t *m, uint32_t seq, uint64_t t_send, uint32_t hold, uint32_t rx,
                      uint32_t jitter_us, hd_time_t now) {
  int slot = (int)(seq % HD_LINK_METER_OUTSTANDING);
  if (!m->out[slot].live || m->out[slot].seq != seq || (uint64_t)m->out[slot].sent != t_send) return;
  m->out[slot].live = 0;
  hd_time_t rtt = now - m->out[slot].sent - (hd_time_t)hold;
  if (rtt < 0) rtt = 0;
  double r = (double)rtt / 1000.0;
  /* RFC 6298 section 2.2/2.3 */
  if (!m->st.probes_answered) {
    m->st.srtt_ms = r;
    m->st.rttvar_ms = r / 2;
    m->st.min_rtt_ms = r;
  } else {
    m->st.rttvar_ms = 0.75 * m->st.rttvar_ms + 0.25 * fabs(m->st.srtt_ms - r);
    m->st.srtt_ms = 0.875 * m->st.srtt_ms + 0.125 * r;
    if (r < m->st.min_rtt_ms) m->st.min_rtt_ms = r;
  }
  m->st.probes_answered++;
  loss_update(&m->st.loss_rtt, &m->rtt_outcomes, 0.0, 1);
  add_sample(m, now, (float)r);
  m->st.jitter_ms = jitter_us / 1000.0;
  /* forward loss between this echo and the previous (newer seqs only: an
   * echo overtaken by a later one says nothing new) */
  if (m->have_echo_ref) {
    int32_t sent = (int32_t)(seq - m->last_echo_seq);
    if (sent <= 0) return;
    int32_t got = (int32_t)(rx - m->last_echo_rx);
    if (got < 0) got = 0;
    if (got > sent) got = sent;
    loss_update(&m->st.loss_fwd, &m->fwd_outcomes, (double)(sent - got) / sent, (uint64_t)sent);
  }
  m->have_echo_ref = 1;
  m->last_echo_seq = seq;
  m->last_echo_rx = rx;
}

int hd_link_meter_feed(hd_link_meter_t *m, const uint8_t *buf, size_t len, hd_time_t now, uint8_t *reply,
                       size_t replycap) {
  hd_reader_t r;
  hd_reader_init(&r, buf, len);
  uint8_t type = hd_rd_u8(&r);
  if (r.err) return HD_EINVAL;
  if (type == HD_LINK_METER_PROBE) return answer_probe(m, &r, now, reply, replycap);
  if (type != HD_LINK_METER_ECHO) return HD_EINVAL;
  uint32_t seq = hd_rd_u32(&r);
  uint64_t t_send = hd_rd_u64(&r);
  uint32_t hold = hd_rd_u32(&r), rx = hd_rd_u32(&r), jit = hd_rd_u32(&r);
  if (r.err || hd_rd_left(&r)) return HD_EINVAL;
  m->st.echoes_received++;
  m->st.last_echo = now;
  m->st.suspect = 0;
  m->late = 0;
  if (!m->st.up) {
    /* the first echo ever brings the link up; after a down, up_echoes of consecutive probes do */
    m->up_streak = m->up_streak && seq == m->up_last_seq + 1 ? m->up_streak + 1 : 1;
    m->up_last_seq = seq;
    if (!m->st.downs || m->up_streak >= (uint32_t)m->up_echoes) {
      m->st.up = 1;
      m->up_streak = 0;
    }
  }
  take_echo(m, seq, t_send, hold, rx, jit, now);
  return 0;
}

void hd_link_meter_stats(hd_link_meter_t *m, hd_time_t now, hd_link_meter_stats_t *out) {
  eval_down(m, now);
  *out = m->st;
}

size_t hd_link_meter_samples(const hd_link_meter_t *m, hd_link_meter_sample_t *out, size_t cap) {
  uint32_t have = m->n_samples < HD_LINK_METER_SAMPLES ? m->n_samples : HD_LINK_METER_SAMPLES;
  if (have > cap) have = (uint32_t)cap;
  for (uint32_t i = 0; i < have; i++)
    out[i] = m->samples[(m->n_samples - have + i) % HD_LINK_METER_SAMPLES];
  return have;
}
