/* Virtual-time harness for rtc/bwe.h on netem links. See bwe_sim.h. */
#include "bwe_sim.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "netem/profile.h"
#include "proto/rtcp.h"

#define FRAME_US 33333                 /* 30 fps */
#define MAX_PAYLOAD 1200               /* bytes on the wire per media packet */
#define PAD_SIZE 1200                  /* probe padding packet */
#define PACER_CAP 4096                 /* packets queued in one pacer */
#define RECV_CAP 4096                  /* packets awaiting feedback */
#define SAMPLE_US 10000                /* target sampling for step reactions */
#define RECV_CLOCK_OFFSET HD_SEC(5000) /* the receiver's clock has another origin */

enum { PKT_MEDIA = 1, PKT_FEEDBACK = 2 };

typedef struct {
  hd_bwe_t bwe;
  int link, fb_link;
  uint16_t seq;
  uint16_t q[PACER_CAP]; /* sizes of queued media packets */
  size_t q_head, q_len;
  hd_time_t next_frame, next_send;
  int probing;
  hd_bwe_probe_t probe;
  size_t probe_bytes;
  int probe_pkts;
  /* receiver */
  hd_rtcp_twcc_recv_t recv[RECV_CAP];
  size_t n_recv;
  uint8_t fb_count;
  hd_time_t next_fb;
  uint64_t rx_bytes, rx_media_bytes;
  uint64_t *send_rate; /* per sample: min(target, source) */
  int layer_on;        /* layer_bps scenarios */
  hd_time_t qmax_sec;  /* largest queueing delay seen by this flow's packets this second (trace) */
} flow_t;

static int active(const hd_bwe_scn_t *s, int f, hd_time_t now) { return now >= s->start[f]; }

static uint64_t sending_rate(const hd_bwe_scn_t *s, const flow_t *fl) {
  if (s->layer_bps) return s->src_max_bps + (fl->layer_on ? s->layer_bps : 0);
  uint64_t t = hd_bwe_target(&fl->bwe);
  return t < s->src_max_bps ? t : s->src_max_bps;
}

static void produce_frame(const hd_bwe_scn_t *s, flow_t *fl) {
  size_t bytes = (size_t)(sending_rate(s, fl) * FRAME_US / 8000000);
  while (bytes > 0 && fl->q_len < PACER_CAP) {
    size_t n = bytes > MAX_PAYLOAD ? MAX_PAYLOAD : bytes;
    if (n < 100) n = 100; /* header-sized floor */
    fl->q[(fl->q_head + fl->q_len) % PACER_CAP] = (uint16_t)n;
    fl->q_len++;
    bytes = bytes > n ? bytes - n : 0;
  }
}

static int send_packet(hd_netem_link_t *l, int type, int flow, uint16_t seq, int padding, size_t size,
                       hd_time_t now) {
  uint8_t buf[HD_NETEM_MAX_PKT];
  memset(buf, 0, size);
  buf[0] = (uint8_t)type;
  buf[1] = (uint8_t)flow;
  buf[2] = (uint8_t)(seq >> 8);
  buf[3] = (uint8_t)seq;
  buf[4] = (uint8_t)padding;
  for (int i = 0; i < 8; i++)
    buf[5 + i] = (uint8_t)((uint64_t)now >> (8 * i));
  return hd_netem_link_send(l, buf, size, now);
}

/* Pacer: media first, padding to fill a probe cluster; paced at the cluster's
 * rate while probing, else at the estimator's pacing rate. */
static void pace(const hd_bwe_scn_t *s, flow_t *fl, int f, hd_netem_link_t *l, hd_time_t now) {
  (void)s;
  if (!fl->probing) {
    hd_bwe_probe_t p;
    if (hd_bwe_next_probe(&fl->bwe, now, &p) == 1) {
      fl->probing = 1;
      fl->probe = p;
      fl->probe_bytes = 0;
      fl->probe_pkts = 0;
    }
  }
  if (fl->q_len == 0 && !fl->probing) {
    if (fl->next_send < now) fl->next_send = now; /* no credit for idle time */
    return;
  }
  if (fl->next_send < now - HD_MS(5)) fl->next_send = now - HD_MS(5);
  while (fl->next_send <= now && (fl->q_len > 0 || fl->probing)) {
    size_t size;
    int padding = 0;
    if (fl->q_len > 0) {
      size = fl->q[fl->q_head];
      fl->q_head = (fl->q_head + 1) % PACER_CAP;
      fl->q_len--;
    } else {
      size = PAD_SIZE;
      padding = 1;
    }
    int cluster = fl->probing ? fl->probe.id : 0;
    uint16_t seq = fl->seq++;
    send_packet(l, PKT_MEDIA, f, seq, padding, size, now);
    hd_bwe_on_packet_sent(&fl->bwe, seq, size, now, cluster);
    double rate = fl->probing ? (double)fl->probe.bitrate_bps : (double)hd_bwe_pacing_rate(&fl->bwe);
    if (rate < 10000) rate = 10000;
    fl->next_send += (hd_time_t)((double)size * 8e6 / rate);
    if (fl->probing) {
      fl->probe_bytes += size;
      fl->probe_pkts++;
      if (fl->probe_bytes >= fl->probe.min_bytes && fl->probe_pkts >= fl->probe.min_packets) fl->probing = 0;
    }
  }
}

static void send_feedback(flow_t *fl, int f, hd_netem_link_t *l, hd_time_t now) {
  size_t off = 0;
  while (off < fl->n_recv) {
    uint8_t buf[1500];
    size_t used = 0;
    int n = hd_rtcp_build_twcc(0x1111, 0x2222, fl->fb_count, fl->recv + off, fl->n_recv - off, &used, buf + 8,
                               sizeof buf - 8);
    if (n < 0 || used == 0) break;
    fl->fb_count++;
    buf[0] = PKT_FEEDBACK;
    buf[1] = (uint8_t)f;
    memset(buf + 2, 0, 6);
    hd_netem_link_send(l, buf, (size_t)n + 8, now);
    off += used;
  }
  fl->n_recv = 0;
}

static void on_feedback(flow_t *fl, const uint8_t *p, size_t len, hd_time_t now) {
  static hd_rtcp_twcc_pkt_t pkts[8192];
  hd_rtcp_iter_t it;
  hd_rtcp_pkt_t pkt;
  hd_rtcp_iter_init(&it, p, len);
  while (hd_rtcp_next(&it, &pkt) == 1) {
    hd_rtcp_fb_t fb;
    hd_rtcp_twcc_t tw;
    if (pkt.pt != HD_RTCP_RTPFB || hd_rtcp_parse_fb(&pkt, &fb) != 0 || fb.fmt != HD_RTCP_FMT_TWCC) continue;
    int n = hd_rtcp_twcc_parse(&fb, &tw, pkts, sizeof pkts / sizeof pkts[0]);
    if (n >= 0) hd_bwe_on_twcc(&fl->bwe, &tw, pkts, (size_t)n, now);
  }
}

/* layer_bps scenarios: the node's allocator in miniature (session.c
 * hd_session_allocate, allocator.c; without its 1.5 s hold). */
static void update_layer(const hd_bwe_scn_t *s, flow_t *fl, int f, hd_time_t now, hd_bwe_sim_result_t *r) {
  double t = (double)hd_bwe_target(&fl->bwe), both = (double)(s->src_max_bps + s->layer_bps);
  if (fl->layer_on && t * 0.9 < both) {
    fl->layer_on = 0;
    r->layer_offs[f]++;
    r->layer_on_since[f] = -1;
  } else if (!fl->layer_on && t * 0.9 * 0.85 >= both) {
    fl->layer_on = 1;
    r->layer_on_since[f] = now;
  }
  hd_bwe_set_desired(&fl->bwe, fl->layer_on ? (uint64_t)both : (uint64_t)(both / (0.9 * 0.85) * 1.1));
  hd_bwe_set_held_back(&fl->bwe, !fl->layer_on);
}

static uint64_t sum_src(const hd_bwe_scn_t *s, int link, hd_time_t now) {
  uint64_t v = 0;
  for (int f = 0; f < s->n_flows; f++)
    if (s->media_link[f] == link && active(s, f, now)) v += s->src_max_bps;
  return v;
}

int hd_bwe_sim_run(const hd_bwe_scn_t *s, hd_bwe_sim_result_t *r, FILE *trace) {
  if (!s || !r || s->n_flows < 1 || s->n_flows > HD_BWE_SIM_MAX_FLOWS || s->duration <= 0 ||
      s->fb_interval <= 0)
    return HD_EINVAL;
  memset(r, 0, sizeof *r);
  for (int f = 0; f < HD_BWE_SIM_MAX_FLOWS; f++)
    r->layer_on_since[f] = -1;
  int rc = HD_ENOMEM;
  hd_netem_link_t *links[2] = {NULL, NULL};
  flow_t *fl = calloc((size_t)s->n_flows, sizeof *fl);
  size_t n_samples = (size_t)(s->duration / SAMPLE_US) + 2;
  uint64_t *cap_samples[2] = {calloc(n_samples, 8), calloc(n_samples, 8)};
  if (!fl || !cap_samples[0] || !cap_samples[1]) goto out;
  for (int i = 0; i < 2; i++) {
    rc = hd_netem_link_new(&links[i], &s->link[i], s->seed + (uint64_t)i, 0);
    if (rc < 0) goto out;
  }
  rc = HD_ENOMEM;
  for (int f = 0; f < s->n_flows; f++) {
    fl[f].send_rate = calloc(n_samples, 8);
    if (!fl[f].send_rate) goto out;
    rc = hd_bwe_init(&fl[f].bwe, &s->cfg, s->start[f]);
    if (rc < 0) goto out;
    rc = HD_ENOMEM;
    if (s->desired_bps) {
      hd_bwe_set_desired(&fl[f].bwe, s->desired_bps);
      hd_bwe_set_held_back(&fl[f].bwe, 1);
    } else if (!s->desired_max) {
      hd_bwe_set_desired(&fl[f].bwe, s->src_max_bps);
    }
    fl[f].link = s->media_link[f];
    fl[f].fb_link = 1 - s->media_link[f];
    fl[f].next_frame = s->start[f] + s->frame_phase[f];
    fl[f].next_send = s->start[f];
    fl[f].next_fb = s->start[f] + s->fb_interval;
    fl[f].seq = (uint16_t)(65000 + 1000 * f); /* wraps early on purpose */
  }
  uint64_t rx_link[2] = {0, 0}, rx_media_link[2] = {0, 0};
  double cap_int[2] = {0, 0}, media_cap_int[2] = {0, 0};
  size_t sample = 0;
  hd_time_t now = 0, next_sample = 0, next_trace = HD_SEC(1);
  while (now <= s->duration) {
    for (int f = 0; f < s->n_flows; f++) {
      if (!active(s, f, now)) continue;
      while (now >= fl[f].next_frame) {
        produce_frame(s, &fl[f]);
        fl[f].next_frame += FRAME_US;
      }
      pace(s, &fl[f], f, links[fl[f].link], now);
    }
    for (int i = 0; i < 2; i++) {
      const uint8_t *p;
      int len;
      while ((len = hd_netem_link_poll(links[i], now, &p)) > 0) {
        int f = p[1];
        if (f >= s->n_flows) continue;
        if (p[0] == PKT_MEDIA) {
          flow_t *x = &fl[f];
          uint16_t seq = (uint16_t)(p[2] << 8 | p[3]);
          if (x->n_recv == RECV_CAP) send_feedback(x, f, links[x->fb_link], now);
          x->recv[x->n_recv].seq = seq;
          x->recv[x->n_recv].arrival = now + RECV_CLOCK_OFFSET;
          x->n_recv++;
          x->rx_bytes += (uint64_t)len;
          uint64_t sent_at = 0;
          for (int k = 0; k < 8; k++)
            sent_at |= (uint64_t)p[5 + k] << (8 * k);
          hd_time_t q = now - (hd_time_t)sent_at - s->link[i].delay;
          if (q > x->qmax_sec) x->qmax_sec = q;
          rx_link[i] += (uint64_t)len;
          if (!p[4]) {
            x->rx_media_bytes += (uint64_t)len;
            rx_media_link[i] += (uint64_t)len;
          }
        } else if (p[0] == PKT_FEEDBACK && len > 8) {
          on_feedback(&fl[f], p + 8, (size_t)len - 8, now);
        }
      }
    }
    for (int f = 0; f < s->n_flows; f++) {
      if (active(s, f, now) && now >= fl[f].next_fb) {
        if (fl[f].n_recv) send_feedback(&fl[f], f, links[fl[f].fb_link], now);
        fl[f].next_fb += s->fb_interval;
      }
    }
    while (now >= next_sample && sample < n_samples) {
      for (int i = 0; i < 2; i++) {
        uint64_t c = hd_netem_link_rate(links[i], next_sample);
        cap_samples[i][sample] = c;
        uint64_t src = sum_src(s, i, next_sample);
        cap_int[i] += (double)c * SAMPLE_US / 8e6;
        media_cap_int[i] += (double)(c < src ? c : src) * SAMPLE_US / 8e6;
      }
      for (int f = 0; f < s->n_flows; f++) {
        if (s->layer_bps && active(s, f, next_sample)) update_layer(s, &fl[f], f, next_sample, r);
        fl[f].send_rate[sample] = active(s, f, next_sample) ? sending_rate(s, &fl[f]) : 0;
        uint64_t t = hd_bwe_target(&fl[f].bwe);
        if (active(s, f, next_sample) && t > r->max_target[f]) r->max_target[f] = t;
      }
      sample++;
      next_sample += SAMPLE_US;
    }
    if (trace && now >= next_trace) {
      for (int f = 0; f < s->n_flows; f++) {
        hd_bwe_stats_t st;
        hd_bwe_stats(&fl[f].bwe, &st);
        fprintf(
            trace,
            "t=%5.1f f%d cap=%5.0f target=%5.0f delay=%5.0f loss_bps=%5.0f acked=%5.0f qmax=%3lld loss=%.3f "
            "rtt=%3lld thr=%.1f u=%d probes=%llu/%llu\n",
            (double)now / 1e6, f, (double)hd_netem_link_rate(links[fl[f].link], now) / 1000,
            (double)st.target_bps / 1000, (double)st.delay_bps / 1000, (double)st.loss_bps / 1000,
            (double)st.acked_bps / 1000, (long long)(fl[f].qmax_sec / 1000), st.loss,
            (long long)(st.rtt / 1000), st.threshold, (int)st.usage, (unsigned long long)st.probes_succeeded,
            (unsigned long long)st.probes_started);
        fl[f].qmax_sec = 0;
      }
      next_trace += HD_SEC(1);
    }
    /* next event */
    hd_time_t next = next_sample;
    for (int f = 0; f < s->n_flows; f++) {
      if (!active(s, f, now)) {
        next = hd_time_min(next, s->start[f]);
        continue;
      }
      next = hd_time_min(next, fl[f].next_frame);
      next = hd_time_min(next, fl[f].next_fb);
      if (fl[f].q_len > 0 || fl[f].probing) next = hd_time_min(next, fl[f].next_send);
    }
    for (int i = 0; i < 2; i++)
      next = hd_time_min(next, hd_netem_link_next_timeout(links[i]));
    if (next <= now) next = now + 1;
    now = next;
  }
  /* results */
  for (int i = 0; i < 2; i++) {
    hd_netem_stats_t st;
    hd_netem_link_stats(links[i], &st);
    for (int f = 0; f < s->n_flows; f++)
      if (s->media_link[f] == i) r->used[i] = 1;
    r->util[i] = cap_int[i] > 0 ? (double)rx_link[i] / cap_int[i] : 0;
    r->media_util[i] = media_cap_int[i] > 0 ? (double)rx_media_link[i] / media_cap_int[i] : 0;
    r->qdelay_p95[i] = st.qdelay_p95;
    r->qdelay_max[i] = st.qdelay_max;
    r->drops[i] = st.drop_queue;
    /* reactions to capacity steps (schedule of the link, after the start) */
    const hd_netem_params_t *lp = &s->link[i];
    for (size_t k = 0; k < lp->n_schedule && r->n_steps[i] < HD_BWE_SIM_MAX_STEPS; k++) {
      uint64_t from = k ? lp->schedule[k - 1].rate_bps : lp->rate_bps;
      uint64_t to = lp->schedule[k].rate_bps;
      hd_time_t at = lp->schedule[k].at, end = k + 1 < lp->n_schedule ? lp->schedule[k + 1].at : s->duration;
      if (!r->used[i] || at == 0 || from == to) continue;
      hd_bwe_sim_step_t *st2 = &r->steps[i][r->n_steps[i]++];
      st2->at = at;
      st2->from = from;
      st2->to = to;
      st2->reaction = -1;
      uint64_t src = sum_src(s, i, at);
      uint64_t goal = to < src ? to : src;
      for (size_t j = (size_t)(at / SAMPLE_US); j < n_samples && (hd_time_t)j * SAMPLE_US < end; j++) {
        uint64_t sum = 0;
        for (int f = 0; f < s->n_flows; f++)
          if (s->media_link[f] == i) sum += fl[f].send_rate[j];
        if ((to < from && sum <= to) || (to > from && (double)sum >= 0.9 * (double)goal)) {
          st2->reaction = (hd_time_t)j * SAMPLE_US - at;
          break;
        }
      }
    }
  }
  for (int f = 0; f < s->n_flows; f++) {
    hd_time_t dur = s->duration - s->start[f];
    r->flow_bps[f] = (double)fl[f].rx_bytes * 8e6 / (double)dur;
    int i = fl[f].link, n = 0;
    for (int g = 0; g < s->n_flows; g++)
      if (s->media_link[g] == i) n++;
    double fair = cap_int[i] * 8e6 / (double)s->duration / n;
    r->flow_share[f] = fair > 0 ? r->flow_bps[f] / fair : 0;
    hd_bwe_stats(&fl[f].bwe, &r->bwe[f]);
  }
  rc = 0;
out:
  for (int i = 0; i < 2; i++) {
    hd_netem_link_free(links[i]);
    free(cap_samples[i]);
  }
  if (fl)
    for (int f = 0; f < s->n_flows; f++)
      free(fl[f].send_rate);
  free(fl);
  return rc;
}

static void set_schedule(hd_netem_params_t *p, const int *secs, const int *kbps, size_t n) {
  for (size_t k = 0; k < n; k++) {
    p->schedule[k].at = HD_SEC(secs[k]);
    p->schedule[k].rate_bps = (uint64_t)kbps[k] * 1000;
  }
  p->n_schedule = n;
}

int hd_bwe_sim_rfc8867(const char *which, hd_bwe_scn_t *s) {
  memset(s, 0, sizeof *s);
  s->src_max_bps = 2500000;
  s->fb_interval = HD_MS(50);
  s->seed = 8867;
  hd_bwe_config_init(&s->cfg);
  s->n_flows = 1;
  for (int i = 0; i < 2; i++) {
    hd_netem_params_init(&s->link[i]);
    s->link[i].delay = HD_MS(50);
    s->link[i].queue_time = HD_MS(300);
  }
  if (!strcmp(which, "5.1")) {
    /* RFC 8867 §5.1 variable capacity, single flow: the project's own
     * `hudong netem --profile rfc8867-5.1` */
    s->name = "rfc8867-5.1";
    s->duration = HD_SEC(100);
    return hd_netem_profile_get("rfc8867-5.1", &s->link[0], &s->link[1]) == 0 ? 0 : HD_ENOTFOUND;
  }
  if (!strcmp(which, "5.2")) {
    /* §5.2 variable capacity, two flows sharing the bottleneck, 125 s:
     * 4 -> 2 -> 3.5 -> 1 -> 2 Mbit/s at 0/25/50/75/100 s */
    static const int secs[] = {0, 25, 50, 75, 100}, kbps[] = {4000, 2000, 3500, 1000, 2000};
    s->name = "rfc8867-5.2";
    s->duration = HD_SEC(125);
    set_schedule(&s->link[0], secs, kbps, 5);
    s->n_flows = 2;
    s->frame_phase[1] = HD_MS(17); /* the two sources are not in lockstep */
    return 0;
  }
  if (!strcmp(which, "5.3")) {
    /* §5.3 congested feedback link, one flow each way, 100 s: forward
     * 2 -> 1 -> 0.5 -> 2 Mbit/s at 0/20/40/60 s, backward 2 -> 0.8 -> 2 at
     * 0/35/70 s; each flow's feedback shares the other flow's bottleneck */
    static const int fs[] = {0, 20, 40, 60}, fk[] = {2000, 1000, 500, 2000};
    static const int bs[] = {0, 35, 70}, bk[] = {2000, 800, 2000};
    s->name = "rfc8867-5.3";
    s->duration = HD_SEC(100);
    set_schedule(&s->link[0], fs, fk, 4);
    set_schedule(&s->link[1], bs, bk, 3);
    s->n_flows = 2;
    s->media_link[1] = 1;
    s->frame_phase[1] = HD_MS(11);
    return 0;
  }
  return HD_ENOTFOUND;
}

void hd_bwe_sim_print(const hd_bwe_scn_t *s, const hd_bwe_sim_result_t *r, FILE *out) {
  fprintf(out, "%s (%.0f s, source max %.2f Mbit/s, feedback every %lld ms)\n", s->name,
          (double)s->duration / 1e6, (double)s->src_max_bps / 1e6, (long long)(s->fb_interval / 1000));
  for (int i = 0; i < 2; i++) {
    if (!r->used[i]) continue;
    fprintf(out,
            "  link %d: utilisation %.1f%% (media only %.1f%%), queueing delay p95 %.1f ms max %.1f ms, "
            "drops %llu\n",
            i, 100 * r->util[i], 100 * r->media_util[i], (double)r->qdelay_p95[i] / 1000,
            (double)r->qdelay_max[i] / 1000, (unsigned long long)r->drops[i]);
    for (size_t k = 0; k < r->n_steps[i]; k++) {
      const hd_bwe_sim_step_t *st = &r->steps[i][k];
      char re[32];
      if (st->reaction < 0)
        snprintf(re, sizeof re, "never");
      else
        snprintf(re, sizeof re, "%.2f s", (double)st->reaction / 1e6);
      fprintf(out, "    at %5.1f s %4llu -> %4llu kbit/s: %s %s\n", (double)st->at / 1e6,
              (unsigned long long)(st->from / 1000), (unsigned long long)(st->to / 1000),
              st->to < st->from ? "settled below in" : "back to 90% of full rate in", re);
    }
  }
  for (int f = 0; f < s->n_flows; f++)
    fprintf(out,
            "  flow %d: %.0f kbit/s delivered, %.2f of fair share, max target %.0f kbit/s, probes %llu ok of "
            "%llu\n",
            f, r->flow_bps[f] / 1000, r->flow_share[f], (double)r->max_target[f] / 1000,
            (unsigned long long)r->bwe[f].probes_succeeded, (unsigned long long)r->bwe[f].probes_started);
}
