/* Send-side bandwidth estimator: AIMD rate control (draft-ietf-rmcat-gcc-02
 * §5.5), loss-based cap (§6), application-limited bound, probing and REMB.
 * See bwe.h. */
#include "rtc/bwe.h"

#include <math.h>
#include <string.h>

#include "base/err.h"

#define BETA 0.85                  /* §5.5 decrease factor */
#define MULT_INCREASE 1.08         /* §5.5 eta: 8% per second far from the link capacity */
#define ACKED_WINDOW HD_MS(300)    /* window of the acknowledged-rate estimate */
#define MEDIA_WINDOW HD_SEC(1)     /* window of the media rate for the app-limited bounds */
#define APP_LIMIT_ADD 10000.0      /* increase bound: app_limit_factor x acked + this */
#define APP_LIMIT_PROBE 2.0        /* probe result bound: 2 x acked */
#define PROBE_FACTOR 1.5           /* periodic and follow-up probes, x target */
#define STARTUP_QUEUE_MS 10.0      /* delay rise (ms) that cancels the start-up clusters ... */
#define STARTUP_NOISE 4.0          /* ... when also this many times the jitter around it */
#define STARTUP_GROUPS 8           /* packet groups that decision waits for ... */
#define STARTUP_WAIT HD_MS(500)    /* ... at most this long after the first feedback */
#define STARTUP_SURE 2             /* ... unless this many show no group > STARTUP_QUEUE_MS late */
#define STALE_STATE HD_SEC(2)      /* over-use / loss no feedback confirmed for this long is stale */
#define FEEDBACK_TIMEOUT HD_SEC(1) /* no feedback while sending this long: back off */
#define TIMEOUT_FACTOR 0.8         /* ... by this much every half timeout */
#define FEEDBACK_LOSS_SPAN 1000    /* larger gap between feedbacks: not counted as loss */
#define CONFIRM_WINDOW HD_SEC(1)   /* an over-use this soon after a decrease confirms congestion */
#define LONE_DELIVERED 1.25        /* ... and so does a send rate above this x the acknowledged rate */

void hd_bwe_config_init(hd_bwe_config_t *c) {
  memset(c, 0, sizeof *c);
  c->min_bps = 30000;
  c->start_bps = 300000;
  c->max_bps = 20000000;
  c->pacing_factor = 1.5;
  c->probe_interval = HD_SEC(2);
  c->initial_probes = 1;
  c->app_limit_factor = 1.5;
}

/* ---- rate windows (bytes per 20 ms bucket) ---- */

static void rate_init(hd_bwe_rate_t *r) {
  memset(r, 0, sizeof *r);
  for (size_t i = 0; i < HD_BWE_RATE_BUCKETS; i++)
    r->start[i] = -1;
  r->first = r->latest = -1;
}

static void rate_add(hd_bwe_rate_t *r, hd_time_t t, size_t bytes) {
  if (t < 0) return;
  hd_time_t start = t - t % HD_BWE_RATE_BUCKET_US;
  size_t i = (size_t)(start / HD_BWE_RATE_BUCKET_US) % HD_BWE_RATE_BUCKETS;
  if (r->start[i] != start) {
    if (r->start[i] > start) return; /* older than the window */
    r->start[i] = start;
    r->bytes[i] = 0;
  }
  r->bytes[i] += bytes;
  if (r->first < 0 || t < r->first) r->first = t;
  if (t > r->latest) r->latest = t;
}

/* Bytes over the `window` ending at `end` (at most the latest sample), as
 * bit/s; -1 when less than half a window of data exists. */
static double rate_get_until(const hd_bwe_rate_t *r, hd_time_t window, hd_time_t end) {
  if (r->latest < 0) return -1;
  if (end > r->latest) end = r->latest;
  hd_time_t last_start = end - end % HD_BWE_RATE_BUCKET_US;
  hd_time_t from = last_start - window + HD_BWE_RATE_BUCKET_US;
  if (from < r->first) from = r->first;
  hd_time_t span = end - from;
  if (span < window / 2) return -1;
  /* buckets older than the ring (feedback lagging ~0.7 s+) were reused for
   * newer sends: unknown, not a low rate */
  hd_time_t oldest = r->latest - r->latest % HD_BWE_RATE_BUCKET_US -
                     (hd_time_t)(HD_BWE_RATE_BUCKETS - 1) * HD_BWE_RATE_BUCKET_US;
  if (from - from % HD_BWE_RATE_BUCKET_US < oldest) return -1;
  uint64_t bytes = 0;
  for (size_t i = 0; i < HD_BWE_RATE_BUCKETS; i++)
    if (r->start[i] >= 0 && r->start[i] + HD_BWE_RATE_BUCKET_US > from && r->start[i] <= last_start)
      bytes += r->bytes[i];
  return (double)bytes * 8e6 / (double)span;
}

/* The same ending at the latest sample. */
static double rate_get(const hd_bwe_rate_t *r, hd_time_t window) {
  return rate_get_until(r, window, r->latest);
}

/* ---- setup ---- */

int hd_bwe_init(hd_bwe_t *b, const hd_bwe_config_t *cfg, hd_time_t now) {
  hd_bwe_config_t c;
  if (cfg)
    c = *cfg;
  else
    hd_bwe_config_init(&c);
  if (!b || c.min_bps == 0 || c.min_bps > c.start_bps || c.start_bps > c.max_bps || c.pacing_factor < 1 ||
      c.pacing_factor > 10 || c.probe_interval < 0 ||
      !(c.app_limit_factor >= 1.05 && c.app_limit_factor <= 4))
    return HD_EINVAL;
  memset(b, 0, sizeof *b);
  b->cfg = c;
  hd_bwe_delay_init(&b->delay);
  hd_bwe_loss_init(&b->loss, (double)c.start_bps);
  hd_bwe_probes_init(&b->probes);
  rate_init(&b->acked_rate);
  rate_init(&b->media_rate);
  rate_init(&b->sent_rate);
  b->avg_pkt_bytes = 1200;
  b->rc = HD_BWE_RC_INCREASE;
  b->delay_bps = b->loss_bps = b->target_bps = (double)c.start_bps;
  b->rc_last = now;
  b->last_decrease = now - HD_SEC(1000);
  b->last_timeout_cut = now - HD_SEC(1000);
  b->first_unanswered = -1;
  b->link_avg_kbps = -1;
  b->link_var = 0.4;
  b->rtt = HD_MS(100);
  b->desired_bps = c.max_bps;
  b->last_probe = now - HD_SEC(1000);
  b->next_probe_at = now;
  if (c.initial_probes) {
    b->pending[0] = 3.0 * (double)c.start_bps;
    b->pending[1] = 6.0 * (double)c.start_bps;
    b->n_pending = 2;
    b->pending_initial = 1;
  }
  return 0;
}

void hd_bwe_set_desired(hd_bwe_t *b, uint64_t bps) { b->desired_bps = bps; }
void hd_bwe_set_held_back(hd_bwe_t *b, int on) { b->held_back = on != 0; }

void hd_bwe_set_rtt(hd_bwe_t *b, hd_time_t rtt) {
  if (rtt <= 0) return;
  b->rtt = rtt;
  b->rtt_external = 1;
}

static double clamp_bps(const hd_bwe_t *b, double v) {
  if (v < (double)b->cfg.min_bps) v = (double)b->cfg.min_bps;
  if (v > (double)b->cfg.max_bps) v = (double)b->cfg.max_bps;
  return v;
}

static void update_target(hd_bwe_t *b) {
  double t;
  if (b->twcc_seen) {
    t = b->delay_bps < b->loss_bps ? b->delay_bps : b->loss_bps;
    if (b->remb_bps && (double)b->remb_bps < t) t = (double)b->remb_bps;
  } else if (b->remb_bps) {
    t = (double)b->remb_bps;
  } else {
    t = b->delay_bps;
  }
  b->target_bps = clamp_bps(b, t);
}

/* ---- sending ---- */

void hd_bwe_on_packet_sent(hd_bwe_t *b, uint16_t twcc_seq, size_t size, hd_time_t now, int cluster_id) {
  if (size == 0) return;
  if (size > 65535) size = 65535;
  hd_bwe_sent_t *e = &b->hist[twcc_seq & (HD_BWE_HISTORY - 1)];
  e->send = now;
  e->seq = twcc_seq;
  e->size = (uint16_t)size;
  e->cluster = (int16_t)(cluster_id > 0 && cluster_id < 0x7fff ? cluster_id : 0);
  e->state = 1;
  b->avg_pkt_bytes = 0.95 * b->avg_pkt_bytes + 0.05 * (double)size;
  rate_add(&b->sent_rate, now, size);
  if (e->cluster) hd_bwe_probes_on_sent(&b->probes, e->cluster, size, now);
  if (b->first_unanswered < 0) b->first_unanswered = now;
  /* Sending without hearing back: the feedback (or the path) is gone. Back
   * off step by step rather than keep a rate nobody confirms. */
  if (b->twcc_seen && b->first_unanswered >= 0 && now - b->first_unanswered > FEEDBACK_TIMEOUT &&
      now - b->last_timeout_cut >= FEEDBACK_TIMEOUT / 2) {
    b->delay_bps = clamp_bps(b, b->delay_bps * TIMEOUT_FACTOR);
    if (b->loss_bps > b->delay_bps) b->loss_bps = b->delay_bps;
    b->loss.rate_bps = b->loss_bps;
    b->last_timeout_cut = now;
    b->st.feedback_timeouts++;
    update_target(b);
  }
}

/* The media rate the application-limited bounds compare with: the larger of
 * a short and a long window, so that a step up of the sender (after a probe)
 * counts at once while a one-frame lull does not pull the bound down. */
static double media_rate(const hd_bwe_t *b) {
  double a = rate_get(&b->media_rate, ACKED_WINDOW), c = rate_get(&b->media_rate, MEDIA_WINDOW);
  return a > c ? a : c;
}

/* The application-limited increase bound for a media rate. */
static double app_limit(const hd_bwe_t *b, double media) {
  return b->cfg.app_limit_factor * media + APP_LIMIT_ADD;
}

/* ---- AIMD (§5.5) ---- */

static double link_std_kbps(const hd_bwe_t *b) { return sqrt(b->link_var * b->link_avg_kbps); }

/* §5.5: the link capacity estimate is the average of the incoming rates seen
 * at decreases, with its variance normalised by the average. */
static void link_update(hd_bwe_t *b, double acked_kbps) {
  if (b->link_avg_kbps < 0) {
    b->link_avg_kbps = acked_kbps;
  } else {
    b->link_avg_kbps = 0.95 * b->link_avg_kbps + 0.05 * acked_kbps;
  }
  double norm = b->link_avg_kbps > 1 ? b->link_avg_kbps : 1;
  double dev = b->link_avg_kbps - acked_kbps;
  b->link_var = 0.95 * b->link_var + 0.05 * dev * dev / norm;
  if (b->link_var < 0.4) b->link_var = 0.4;
  if (b->link_var > 2.5) b->link_var = 2.5;
}

/* What the path carried of what was sent, as a rate: the acknowledged rate
 * with the path's random loss (bwe_loss.h: the loss it shows while the delay
 * does not grow) put back. The lone over-use test below compares the send
 * rate with it: at 20% random loss the acknowledged rate alone is 0.8x what
 * is sent on an idle path (1.25-1.4x with the repairs that loss brings), so
 * every delay spike read as "the link delivers less than is sent", and a
 * viewer at 20% random loss on a wide link was cut to 0.85 x 0.8 of its rate
 * (1.7 -> 1.04 Mbit/s, its top layer gone for seconds: e2e/simulcast). A link
 * that really narrowed shows its queue drops as congested loss, which the
 * base does not learn from: there this stays the acknowledged rate. */
static double carried_rate(const hd_bwe_t *b, double acked) {
  double base = b->loss.base;
  if (base > HD_BWE_LOSS_BASE_MAX) base = HD_BWE_LOSS_BASE_MAX;
  return acked > 0 ? acked / (1 - base) : acked;
}

/* How far carried_rate may be off by chance alone: the random loss of the
 * packets in one ACKED_WINDOW scatters around the base by two standard
 * deviations (binomial, as in bwe_loss.c); 0 without random loss. */
static double carried_noise(const hd_bwe_t *b, double sent) {
  double base = b->loss.base;
  if (base > HD_BWE_LOSS_BASE_MAX) base = HD_BWE_LOSS_BASE_MAX;
  double pkts = b->avg_pkt_bytes > 0 ? sent * ((double)ACKED_WINDOW / 1e6) / 8 / b->avg_pkt_bytes : 0;
  if (base <= 0 || pkts < 1) return 0;
  return 2 * sqrt(base * (1 - base) / pkts);
}

static void rate_control(hd_bwe_t *b, hd_bwe_usage_t usage, hd_time_t now) {
  double acked = rate_get(&b->acked_rate, ACKED_WINDOW);
  /* §5.5 state machine: over-use -> decrease, under-use -> hold (let the
   * queue drain), normal -> increase (from hold) */
  if (usage == HD_BWE_OVERUSE)
    b->rc = now < b->probe_guard_until ? HD_BWE_RC_HOLD : HD_BWE_RC_DECREASE;
  else if (usage == HD_BWE_UNDERUSE)
    b->rc = HD_BWE_RC_HOLD;
  else if (b->rc == HD_BWE_RC_HOLD)
    b->rc = HD_BWE_RC_INCREASE;

  if (acked > 0 && b->link_avg_kbps >= 0) {
    double std = link_std_kbps(b), kbps = acked / 1000;
    if (kbps > b->link_avg_kbps + 3 * std) b->link_avg_kbps = -1; /* capacity grew: forget it */
  }
  double dt = (double)(now - b->rc_last) / 1e6;
  if (dt > 1) dt = 1;
  if (dt < 0) dt = 0;
  b->rc_last = now;

  if (b->rc == HD_BWE_RC_INCREASE) {
    double next;
    /* §5.5: additive only close to convergence -- the incoming rate within
     * 3 std of the average max; below it (after a decrease) multiplicative
     * brings the rate back near the capacity in a second or two */
    int near =
        b->link_avg_kbps >= 0 && (acked < 0 || acked / 1000 >= b->link_avg_kbps - 3 * link_std_kbps(b));
    if (near) {
      /* near the known capacity: about one packet per response time */
      double response_s = (double)(b->rtt + HD_MS(100)) / 1e6;
      double per_s = b->avg_pkt_bytes * 8 / response_s;
      if (per_s < 4000) per_s = 4000;
      next = b->delay_bps + per_s * dt;
    } else {
      next = b->delay_bps * pow(MULT_INCREASE, dt);
    }
    double media = media_rate(b);
    if (media > 0) { /* application-limited bound */
      double limit = app_limit(b, media);
      if (next > limit) next = limit > b->delay_bps ? limit : b->delay_bps;
    }
    b->delay_bps = clamp_bps(b, next);
  } else if (b->rc == HD_BWE_RC_DECREASE) {
    /* one decrease per round trip: the previous one must have had its effect */
    hd_time_t gap = b->rtt > HD_MS(100) ? b->rtt : HD_MS(100);
    if (now - b->last_decrease >= gap) {
      double base = acked > 0 ? acked : b->delay_bps;
      double next = BETA * base;
      if (next > b->delay_bps) next = b->delay_bps;
      /* A lone over-use of an application-limited sender (it sent well under
       * the estimate): the acknowledged rate is what it chose to send, not
       * what the path carries, and BETA x that cut a subscriber sending 600
       * kbit/s on an idle 1 Mbit/s link from 1040 to 450 kbit/s -- below its
       * layer -- on one noisy delay sample (bench/downlink). Cut by BETA
       * from the estimate instead. Lone: the path delivered about what was
       * sent (a link that shrank under the send rate delivers less: BETA x
       * that at once), and either no decrease within CONFIRM_WINDOW or the
       * path now delivers more than is sent (a queue draining, after a
       * keyframe on a loaded host: no sign that what is sent is too much).
       * If the link did shrink, the queue keeps growing, over-use comes again
       * within CONFIRM_WINDOW with the send rate above the delivered one, and
       * that decrease goes to BETA x the acknowledged rate. */
      /* what was sent over the window that feedback has reported on so far
       * (not what left since: a keyframe sent after the last packet
       * reported is no news about the path yet), against what the path
       * carried of it, within the scatter random loss gives that */
      double sent = rate_get_until(&b->sent_rate, ACKED_WINDOW, b->reported_send);
      double carried = carried_rate(b, acked), noise = carried_noise(b, sent);
      int lone = sent > 0 && sent <= LONE_DELIVERED * carried * (1 + noise) &&
                 (now - b->last_decrease > CONFIRM_WINDOW || sent < carried * (1 + noise));
      if (lone && acked > 0 && BETA * b->delay_bps > next) {
        b->delay_bps = clamp_bps(b, BETA * b->delay_bps);
        b->last_decrease = now;
        b->st.decreases++;
        b->rc = HD_BWE_RC_HOLD;
        return;
      }
      if (acked > 0) {
        double kbps = acked / 1000;
        if (b->link_avg_kbps >= 0 && kbps < b->link_avg_kbps - 3 * link_std_kbps(b)) b->link_avg_kbps = -1;
        link_update(b, kbps);
      }
      b->delay_bps = clamp_bps(b, next);
      b->last_decrease = now;
      b->st.decreases++;
    }
    b->rc = HD_BWE_RC_HOLD;
  }
}

/* ---- probing ---- */

static void probe_result(hd_bwe_t *b, double result, double target, int saturated, hd_time_t now) {
  double media = media_rate(b);
  double v = result;
  if (b->initial_wait) {
    /* the 3x start-up cluster's result: no 6x cluster into a path that
     * carried less than a quarter of it (a narrow path whose queue the 6x
     * burst would overflow); on a shared wide path the 6x cluster still goes,
     * it earns a late-starting flow its share (RFC 8867 5.2) */
    b->initial_wait = 0;
    if (saturated && b->n_pending && 4.0 * result < b->pending[0]) b->n_pending = 0, b->pending_initial = 0;
  }

  if (!b->last_probe_initial && media > 0) {
    /* app-limited: no more than twice what is sent, unless the sender holds
     * media back until the estimate reaches what it wants (hd_bwe_set_held_back):
     * a subscriber whose video is paused sends audio only and needs the
     * estimate to reach its lowest video layer before the allocator resumes
     * it; the probe shows whether the path has it */
    double cap = APP_LIMIT_PROBE * media;
    if (b->held_back && (double)b->desired_bps > cap) cap = (double)b->desired_bps;
    if (v > cap) v = cap;
  }
  v = clamp_bps(b, v);
  /* an unsaturated probe shows the path carries v now, even if the loss
   * window still holds losses from before (a paused subscriber sends too few
   * packets to refresh it): the loss-based bound may rise to it */
  if (!saturated && b->loss_bps < v) b->loss_bps = v;
  if (v > b->delay_bps && b->loss_bps < v && b->loss.last_excess < HD_BWE_LOSS_LOW) b->loss_bps = v;
  /* ... and the loss-based part's own rate with it: while its last interval
   * reads 2-10% excess (it holds), it returns that rate at the next
   * feedback, and a rate from before the probe (the 300 kbit/s start, cut
   * further by a lossy start) pulled the target from the probe's ~1 Mbit/s
   * back to it (test_probe_result_reaches_loss_part) */
  if (b->loss.rate_bps < b->loss_bps) b->loss.rate_bps = b->loss_bps;
  if (v <= b->delay_bps) return;
  b->delay_bps = v;
  if (b->link_avg_kbps >= 0 && v / 1000 > b->link_avg_kbps + 3 * link_std_kbps(b)) b->link_avg_kbps = -1;
  /* the path carried the whole cluster: there may be more, probe again at once */
  if (!saturated && !b->pending_initial && v < (double)b->desired_bps && v < (double)b->cfg.max_bps &&
      b->n_pending == 0) {
    b->pending[0] = PROBE_FACTOR * v;
    b->n_pending = 1;
    b->next_probe_at = now;
  }
}

/* ---- feedback ---- */

static void on_report(hd_bwe_t *b, hd_bwe_sent_t *e, int received, hd_time_t arrival) {
  e->state = 2;
  if (e->send > b->reported_send) b->reported_send = e->send;
  if (received) {
    b->st.acked++;
    rate_add(&b->acked_rate, arrival, e->size);
    if (!e->cluster) rate_add(&b->media_rate, arrival, e->size);
    hd_bwe_delay_on_packet(&b->delay, e->send, arrival);
  } else {
    b->st.lost++;
  }
  if (e->cluster) hd_bwe_probes_on_feedback(&b->probes, e->cluster, e->size, e->send, received, arrival);
}

int hd_bwe_on_twcc(hd_bwe_t *b, const hd_rtcp_twcc_t *fb, const hd_rtcp_twcc_pkt_t *pkts, size_t n,
                   hd_time_t now) {
  if (!b || !fb || (!pkts && n > 0)) return HD_EINVAL;
  if (!b->twcc_seen) b->first_feedback_at = now;
  b->twcc_seen = 1;
  b->first_unanswered = -1;
  b->last_feedback_at = now;
  b->st.feedbacks++;
  uint32_t recv = 0, lost = 0;
  int matched = 0;
  /* Feedback messages follow each other without gaps (the receiver starts
   * each at the seq after the last one it reported); packets between the
   * last report and this base were not received. Only when no feedback
   * message went missing (fb_count + 1) is that known. */
  if (b->have_reported && b->have_fb_count && fb->fb_count == (uint8_t)(b->last_fb_count + 1)) {
    uint16_t gap = (uint16_t)(fb->base_seq - b->highest_reported - 1);
    if (gap > 0 && gap < FEEDBACK_LOSS_SPAN) {
      for (uint16_t i = 0; i < gap; i++) {
        uint16_t s = (uint16_t)(b->highest_reported + 1 + i);
        hd_bwe_sent_t *e = &b->hist[s & (HD_BWE_HISTORY - 1)];
        if (e->state == 1 && e->seq == s) {
          on_report(b, e, 0, 0);
          lost++;
        }
      }
    }
  }
  b->have_fb_count = 1;
  b->last_fb_count = fb->fb_count;
  hd_time_t rtt_sample = HD_TIME_NEVER;
  for (size_t i = 0; i < n; i++) {
    const hd_rtcp_twcc_pkt_t *p = &pkts[i];
    hd_bwe_sent_t *e = &b->hist[p->seq & (HD_BWE_HISTORY - 1)];
    if (!b->have_reported || (int16_t)(p->seq - b->highest_reported) > 0) {
      b->highest_reported = p->seq;
      b->have_reported = 1;
    }
    if (e->state == 0 || e->seq != p->seq) {
      b->st.unknown_seq++;
      continue;
    }
    int received = p->status != HD_TWCC_NOT_RECEIVED;
    if (e->state == 2) continue; /* reported before */
    matched++;
    if (received) {
      recv++;
      if (now - e->send < rtt_sample) rtt_sample = now - e->send;
    } else {
      /* left for a later feedback that may still report it received */
      lost++;
    }
    on_report(b, e, received, p->recv_us);
  }
  if (!b->rtt_external && rtt_sample != HD_TIME_NEVER && rtt_sample > 0)
    b->rtt = (7 * b->rtt + rtt_sample) / 8; /* RFC 6298 gain */

  hd_bwe_usage_t usage = hd_bwe_delay_usage(&b->delay);
  if (usage == HD_BWE_OVERUSE && b->st.usage != HD_BWE_OVERUSE) b->st.overuses++;
  b->st.usage = usage;
  rate_control(b, usage, now);

  double res, tgt;
  int sat;
  while (hd_bwe_probes_poll(&b->probes, now, &res, &tgt, &sat))
    probe_result(b, res, tgt, sat, now);

  hd_bwe_loss_on_feedback(&b->loss, recv, lost, usage == HD_BWE_OVERUSE, now);
  b->loss_bps = hd_bwe_loss_update(&b->loss, b->delay_bps, b->target_bps, b->rtt, now);
  update_target(b);
  return matched;
}

void hd_bwe_on_remb(hd_bwe_t *b, uint64_t bitrate_bps, hd_time_t now) {
  (void)now;
  b->remb_bps = bitrate_bps ? bitrate_bps : 1;
  update_target(b);
}

uint64_t hd_bwe_target(const hd_bwe_t *b) { return (uint64_t)b->target_bps; }

uint64_t hd_bwe_pacing_rate(const hd_bwe_t *b) { return (uint64_t)(b->target_bps * b->cfg.pacing_factor); }

/* ---- when to probe ---- */

static double want_bps(const hd_bwe_t *b) {
  return (double)(b->desired_bps < b->cfg.max_bps ? b->desired_bps : b->cfg.max_bps);
}

/* When the next periodic probe is due in the current state, HD_TIME_NEVER
 * when none is (the state changes only with feedback, after which the caller
 * asks again). */
static hd_time_t periodic_due(const hd_bwe_t *b) {
  if (b->n_pending || b->cfg.probe_interval <= 0 || !b->twcc_seen) return HD_TIME_NEVER;
  /* only below what the sender wants, on a clear path */
  if (b->target_bps >= 0.95 * want_bps(b)) return HD_TIME_NEVER;
  /* Over-use or loss in the last feedback: no probe while feedback keeps
   * saying so. */
  int blocked = b->st.usage != HD_BWE_NORMAL || b->loss.last_excess >= HD_BWE_LOSS_LOW;
  /* Near a known link capacity AIMD's additive increase does the work; a
   * probe there only builds queue (and, with other flows, grabs more than a
   * fair share). Probe when the capacity is unknown: at the start or once
   * the acked rate went past it (§5.5 reset: it grew). */
  hd_time_t iv = b->cfg.probe_interval;
  if (b->link_avg_kbps >= 0) {
    /* ... except when the sender is application-limited: AIMD never climbs
     * past the app-limited bound, so a capacity that came back (or a
     * bigger simulcast layer that would fit) shows only to a probe; those
     * come at twice the interval */
    double media = rate_get(&b->media_rate, ACKED_WINDOW);
    if (!(media <= 0 || b->target_bps >= (b->cfg.app_limit_factor - 0.1) * media)) blocked = 1;
    iv *= 2;
  }
  /* With nothing sent there is no feedback, and what the last one said (over-
   * use, loss, the media rate) never changes: a subscriber whose video was
   * paused for congestion would wait forever. What no feedback confirmed for
   * STALE_STATE is stale: probe then. */
  hd_time_t stale = 0;
  if (blocked) {
    if (!b->last_feedback_at) return HD_TIME_NEVER;
    stale = b->last_feedback_at + STALE_STATE;
  }
  hd_time_t a = b->last_probe + iv, c = b->last_decrease + iv / 2;
  if (a < c) a = c;
  return a > stale ? a : stale;
}

/* The start-up clusters (3x and 6x the start rate) go unless the feedback
 * so far shows the leg already full with the media alone: a viewer leg as
 * narrow as the publisher's uplink, where a cluster above the media only
 * adds a queue that cannot drain (issue 11: 250-336 ms before the jitter
 * buffer in seconds 1-3 on 300 kbit/s legs). On such a leg every packet
 * group after the first arrives later than the first, by its serialisation
 * (an 800-byte video packet after the 88-byte audio packet that opened the
 * stream: +19 ms at 300 kbit/s, then flat) or by a queue that keeps growing
 * (media above the capacity). Full: a least-squares line through the
 * accumulated delay of the groups after the first ends more than
 * STARTUP_QUEUE_MS above the first group, and more than STARTUP_NOISE times
 * the groups' scatter around that line (the jitter in the same feedback).
 * The first rule read one accumulated value (the last group's delay minus
 * the first's, > 10 ms): on a 5 Mbit/s leg with 10 or 20 ms of normal
 * delay jitter in order that difference of two jittered samples cancelled
 * the clusters in 7 and 12 of 16 starts, and the viewer reached its top
 * layer seconds later or not within 10 s (test_client_probe_queue
 * test_wide_leg_jitter_probes). libwebrtc's ProbeController reads no raw
 * delay either: it holds probes only while the trendline detector (a
 * least-squares slope over 20 groups against an adaptive threshold) says
 * over- or under-use (BandwidthLimitedCause kDelayBasedLimitedDelayIncreased),
 * and sends its first clusters before any feedback. The first feedback has
 * too few groups for a 20-group slope; hence the line through the first
 * STARTUP_GROUPS groups and the scatter around it. */
static int startup_full(const hd_bwe_t *b) {
  double level, noise;
  if (hd_bwe_delay_start_fit(&b->delay, &level, &noise) < 3) return 0;
  return level > STARTUP_QUEUE_MS && level > STARTUP_NOISE * noise;
}

/* 1 while that decision waits for more groups: feedback came, it holds
 * fewer than STARTUP_GROUPS groups (the first feedback on a 300 kbit/s leg
 * has 2: no scatter to judge by), one of them already arrived more than
 * STARTUP_QUEUE_MS later than the first (full, or jitter: more groups tell)
 * or fewer than STARTUP_SURE follow the first, and the first feedback came
 * less than STARTUP_WAIT ago. Groups that all arrived within 10 ms of the
 * first say "not full" at once, as the first rule did: waiting there only
 * delayed the clusters (20% random loss on 25 ms legs, 256 seeds: the
 * estimate at 1 s 426 -> 336 kbit/s; 3.3 more late frames of 406 with
 * feedback every 20 ms; docs/bwe.md). Without feedback (the estimator
 * alone, RFC 8867) the clusters go at once as before. */
static int startup_waits(const hd_bwe_t *b, hd_time_t now) {
  const hd_bwe_delay_t *d = &b->delay;
  if (!b->twcc_seen || d->st_n >= STARTUP_GROUPS || now >= b->first_feedback_at + STARTUP_WAIT) return 0;
  return d->st_n < STARTUP_SURE || d->st_max > STARTUP_QUEUE_MS;
}

int hd_bwe_next_probe(hd_bwe_t *b, hd_time_t now, hd_bwe_probe_t *out) {
  double rate = 0;
  int initial = 0;
  if (b->initial_wait) {
    int done = b->probes.succeeded + b->probes.failed != b->initial_mark;
    if (!done && now < b->last_probe + HD_BWE_CLUSTER_TIMEOUT) return 0;
    /* failed (no result) or timed out: no 6x cluster after it */
    b->initial_wait = 0;
    b->n_pending = 0, b->pending_initial = 0;
  }
  if (b->n_pending && b->pending_initial && now >= b->next_probe_at) {
    if (startup_waits(b, now)) return 0;
    if (startup_full(b)) {
      b->n_pending = 0, b->pending_initial = 0;
      b->last_probe = now;
      b->st.probes_skipped++;
      return 0;
    }
  }
  if (b->n_pending && now >= b->next_probe_at) {
    rate = b->pending[0];
    initial = b->pending_initial;
    b->pending[0] = b->pending[1];
    b->n_pending--;
    if (!b->n_pending) b->pending_initial = 0;
    b->next_probe_at = now + 2 * HD_BWE_PROBE_DURATION;
  } else if (now >= periodic_due(b)) {
    double want = want_bps(b);
    rate = PROBE_FACTOR * b->target_bps;
    double floor = 1.2 * b->target_bps;
    if (rate > want) rate = want > floor ? want : floor;
  } else {
    return 0;
  }
  if (rate > (double)b->cfg.max_bps) rate = (double)b->cfg.max_bps;
  if (rate <= 0) return 0;
  size_t min_bytes;
  out->id = hd_bwe_probes_start(&b->probes, rate, now, &min_bytes);
  out->bitrate_bps = (uint64_t)rate;
  out->min_bytes = min_bytes;
  out->min_packets = HD_BWE_PROBE_MIN_PKTS;
  b->last_probe = now;
  b->probe_guard_until = now + HD_BWE_PROBE_DURATION + b->rtt + HD_MS(150);
  b->last_probe_initial = initial;
  if (initial && b->n_pending &&
      b->cfg.initial_probes == HD_BWE_PROBES_GATED) { /* the 3x cluster is out; the 6x one waits for it */
    b->initial_wait = 1;
    b->initial_mark = b->probes.succeeded + b->probes.failed;
  }
  b->st.probes_started++;
  return 1;
}

hd_time_t hd_bwe_next_timeout(const hd_bwe_t *b) {
  if (b->initial_wait) return b->last_probe + HD_BWE_CLUSTER_TIMEOUT; /* feedback may end it earlier */
  if (b->n_pending) {
    /* waiting for more groups: feedback, or the end of the wait */
    if (b->pending_initial && startup_waits(b, b->next_probe_at)) {
      hd_time_t end = b->first_feedback_at + STARTUP_WAIT;
      return end > b->next_probe_at ? end : b->next_probe_at;
    }
    return b->next_probe_at;
  }
  return periodic_due(b);
}

void hd_bwe_stats(const hd_bwe_t *b, hd_bwe_stats_t *out) {
  *out = b->st;
  out->target_bps = (uint64_t)b->target_bps;
  out->delay_bps = (uint64_t)b->delay_bps;
  out->loss_bps = (uint64_t)b->loss_bps;
  double a = rate_get(&b->acked_rate, ACKED_WINDOW), s = rate_get(&b->sent_rate, ACKED_WINDOW);
  out->acked_bps = a > 0 ? (uint64_t)a : 0;
  out->sent_bps = s > 0 ? (uint64_t)s : 0;
  out->remb_bps = b->remb_bps;
  out->loss = b->loss.last_loss;
  out->rtt = b->rtt;
  out->threshold = b->delay.threshold;
  out->probes_started = b->probes.started;
  out->probes_succeeded = b->probes.succeeded;
  out->probes_failed = b->probes.failed;
}

int hd_bwe_congested(const hd_bwe_t *b) {
  if (!b || !b->twcc_seen) return 0;
  if (b->st.usage == HD_BWE_OVERUSE) return 1;
  double sent = rate_get(&b->sent_rate, ACKED_WINDOW);
  return sent > 0 && sent > HD_BWE_OVERSEND * b->target_bps;
}
