/* `hudong netem` relay (see netem_relay.h): UDP in, emulated links, UDP out.
 *
 * Deadlines come from the links in microseconds; libuv timers only have
 * millisecond resolution, which alone would add ~0.5 ms per hop, so the relay
 * arms a Linux timerfd (CLOCK_MONOTONIC, absolute, the clock uv_hrtime reads)
 * watched by a uv_poll handle. Packets due at once (no delay) go out in the
 * receive callback itself.
 *
 * Waking from an idle sleep is late by the timer slack (50 µs by default) plus
 * the (virtual) CPU's wake-up time, which on a VM reaches hundreds of µs. So the
 * relay sets its timer slack to 1 ns and arms the timerfd SPIN_US early, then
 * spins on the clock for the rest: a packet leaves within a few µs of its
 * deadline, for at most SPIN_US of CPU per wake-up (this is a test instrument:
 * precision first). Sends are non-blocking; a full socket buffer drops
 * the packet and counts it. */
#include "io/netem_relay.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"

#define RX_SLOT (64 * 1024) /* libuv splits the receive buffer into 64 KiB slots for recvmmsg */
#define RECV_BATCH 32
#define MAX_SESSIONS_CAP 4096
#define MAX_ABS_BLACKOUTS 8
#define SOCK_BUF (4 << 20)

typedef struct session session_t;
struct session {
  hd_netem_relay_t *r;
  session_t *next;
  uv_udp_t sock; /* upstream: connected to the target */
  struct sockaddr_storage client;
  char name[64];
  hd_netem_link_t *link[2];
  hd_time_t start, last_active;
  uint64_t drop_send[2];
  uint64_t drop_big[2]; /* datagrams over HD_NETEM_MAX_PKT */
};

typedef struct {
  hd_time_t start, end; /* absolute (relay clock) */
} abs_window_t;

struct hd_netem_relay {
  uv_loop_t *loop;
  uv_udp_t listen;
  uv_poll_t tpoll;
  uv_timer_t sweep;
  int tfd;
  hd_time_t armed; /* timerfd deadline, HD_TIME_NEVER when disarmed */
  int port;
  int open_handles;
  int stopping;
  struct sockaddr_storage target;
  hd_netem_opts_t opts, initial;
  char *trace[2];
  size_t trace_len[2];
  abs_window_t abs[2][MAX_ABS_BLACKOUTS];
  size_t n_abs[2];
  size_t max_sessions, n_sessions;
  hd_time_t idle_timeout;
  session_t *sessions, *last_hit;
  uint64_t sessions_total, sessions_expired, sessions_rejected, session_seq;
  hd_netem_stats_t closed[2]; /* counters of expired sessions */
  uint64_t closed_drop_send[2], closed_drop_big[2];
  uint8_t *rxbuf;
};

static hd_time_t now_us(void) { return (hd_time_t)(uv_hrtime() / 1000); }

static int addr_eq(const struct sockaddr_storage *a, const struct sockaddr *b) {
  if (a->ss_family != b->sa_family) return 0;
  if (b->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (b->sa_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr);
  }
  return 0;
}

static socklen_t addr_len(const struct sockaddr *a) {
  return a->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static void addr_name(const struct sockaddr *a, char *buf, size_t cap) {
  char ip[64] = "?";
  int port = 0;
  if (a->sa_family == AF_INET) {
    uv_ip4_name((const struct sockaddr_in *)a, ip, sizeof ip);
    port = ntohs(((const struct sockaddr_in *)a)->sin_port);
    snprintf(buf, cap, "%s:%d", ip, port);
  } else {
    uv_ip6_name((const struct sockaddr_in6 *)a, ip, sizeof ip);
    port = ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
    snprintf(buf, cap, "[%s]:%d", ip, port);
  }
}

static int parse_addr(const char *host, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0) return 0;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0) return 0;
  return HD_EINVAL;
}

/* ---- impairments per session ---- */

/* The relay's params for direction d as seen by session s: blackout windows
 * started "now" are absolute on the relay clock, links count from their start. */
static void session_params(hd_netem_relay_t *r, session_t *s, int d, hd_time_t now, hd_netem_params_t *p) {
  *p = r->opts.dir[d];
  for (size_t i = 0; i < r->n_abs[d] && p->n_blackouts < HD_NETEM_MAX_BLACKOUTS; i++) {
    if (r->abs[d][i].end <= now) continue;
    hd_time_t st = r->abs[d][i].start - s->start;
    hd_time_t dur = r->abs[d][i].end - r->abs[d][i].start;
    if (st < 0) { /* window began before the session */
      dur += st;
      st = 0;
    }
    if (dur <= 0) continue;
    p->blackouts[p->n_blackouts].start = st;
    p->blackouts[p->n_blackouts].duration = dur;
    p->n_blackouts++;
  }
}

static void apply_trace(hd_netem_relay_t *r, session_t *s, int d) {
  if (!r->trace[d] || !r->opts.trace_path[d][0]) return;
  char err[128];
  if (hd_netem_link_set_trace(s->link[d], r->trace[d], r->trace_len[d], err, sizeof err) < 0)
    HD_LOGW("netem", "trace (%s): %s", d ? "down" : "up", err);
}

/* ---- timer ---- */

/* how early the timerfd fires before a deadline; the rest is spun */
#define SPIN_US 150

static void arm(hd_netem_relay_t *r) {
  if (r->stopping) return;
  hd_time_t next = HD_TIME_NEVER;
  for (session_t *s = r->sessions; s; s = s->next)
    for (int d = 0; d < 2; d++)
      next = hd_time_min(next, hd_netem_link_next_timeout(s->link[d]));
  if (next == r->armed) return;
  struct itimerspec its;
  memset(&its, 0, sizeof its);
  if (next != HD_TIME_NEVER) {
    hd_time_t at = next - SPIN_US;
    if (at < 1) at = 1; /* an all-zero it_value disarms */
    its.it_value.tv_sec = at / 1000000;
    its.it_value.tv_nsec = (long)(at % 1000000) * 1000;
  }
  if (timerfd_settime(r->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0) r->armed = next;
}

/* Sends every packet due at `now` on every link. */
static void deliver(hd_netem_relay_t *r, hd_time_t now) {
  for (session_t *s = r->sessions; s; s = s->next) {
    for (int d = 0; d < 2; d++) {
      if (hd_netem_link_next_timeout(s->link[d]) > now) continue;
      const uint8_t *pkt;
      int n;
      while ((n = hd_netem_link_poll(s->link[d], now, &pkt)) > 0) {
        uv_buf_t b = uv_buf_init((char *)pkt, (unsigned)n);
        int rc = d == HD_NETEM_UP ? uv_udp_try_send(&s->sock, &b, 1, NULL)
                                  : uv_udp_try_send(&r->listen, &b, 1, (const struct sockaddr *)&s->client);
        if (rc < 0) s->drop_send[d]++;
      }
    }
  }
}

static void on_tfd(uv_poll_t *h, int status, int events) {
  hd_netem_relay_t *r = h->data;
  uint64_t ticks;
  if (read(r->tfd, &ticks, sizeof ticks) < 0 && errno != EAGAIN) HD_LOGD("netem", "timerfd read failed");
  hd_time_t due = r->armed, now = now_us();
  r->armed = HD_TIME_NEVER;                                         /* expired (a one-shot timer) */
  while (due != HD_TIME_NEVER && now < due && due - now <= SPIN_US) /* the early part: spin */
    now = now_us();
  deliver(r, now);
  arm(r);
}

/* ---- sessions ---- */

static void on_alloc_listen(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  hd_netem_relay_t *r = h->data;
  buf->base = (char *)r->rxbuf;
  buf->len = (unsigned)(RECV_BATCH * RX_SLOT);
}

/* one receive buffer serves every socket: each datagram is copied into a link
 * before the next callback runs */
static void on_alloc_session(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  hd_netem_relay_t *r = ((session_t *)h->data)->r;
  buf->base = (char *)r->rxbuf;
  buf->len = (unsigned)(RECV_BATCH * RX_SLOT);
}

static void on_upstream(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                        unsigned flags) {
  session_t *s = h->data;
  hd_netem_relay_t *r = s->r;
  if (nread > 0) {
    hd_time_t now = now_us();
    s->last_active = now;
    if (hd_netem_link_send(s->link[HD_NETEM_DOWN], (const uint8_t *)buf->base, (size_t)nread, now) < 0)
      s->drop_big[HD_NETEM_DOWN]++;
  }
  if (!(flags & UV_UDP_MMSG_CHUNK)) {
    deliver(r, now_us());
    arm(r);
  }
}

static void session_closed(uv_handle_t *h) {
  session_t *s = h->data;
  hd_netem_relay_t *r = s->r;
  free(s);
  if (--r->open_handles == 0 && r->stopping) {
    free(r->rxbuf);
    free(r->trace[0]);
    free(r->trace[1]);
    free(r);
  }
}

static void stats_add(hd_netem_stats_t *t, const hd_netem_stats_t *s) {
  t->pkts_in += s->pkts_in;
  t->bytes_in += s->bytes_in;
  t->pkts_out += s->pkts_out;
  t->bytes_out += s->bytes_out;
  t->drop_loss += s->drop_loss;
  t->drop_queue += s->drop_queue;
  t->drop_blackout += s->drop_blackout;
  t->drop_cap += s->drop_cap;
  t->duplicated += s->duplicated;
  t->reordered += s->reordered;
  if (s->qdelay_p50 > t->qdelay_p50) t->qdelay_p50 = s->qdelay_p50;
  if (s->qdelay_p95 > t->qdelay_p95) t->qdelay_p95 = s->qdelay_p95;
  if (s->qdelay_p99 > t->qdelay_p99) t->qdelay_p99 = s->qdelay_p99;
  if (s->qdelay_max > t->qdelay_max) t->qdelay_max = s->qdelay_max;
}

static void session_free(hd_netem_relay_t *r, session_t *s) {
  for (int d = 0; d < 2; d++) {
    hd_netem_stats_t st;
    hd_netem_link_stats(s->link[d], &st);
    stats_add(&r->closed[d], &st);
    r->closed_drop_send[d] += s->drop_send[d];
    r->closed_drop_big[d] += s->drop_big[d];
    hd_netem_link_free(s->link[d]);
    s->link[d] = NULL;
  }
  if (r->last_hit == s) r->last_hit = NULL;
  r->n_sessions--;
  uv_udp_recv_stop(&s->sock);
  uv_close((uv_handle_t *)&s->sock, session_closed);
}

static session_t *session_new(hd_netem_relay_t *r, const struct sockaddr *client, hd_time_t now) {
  if (r->n_sessions >= r->max_sessions) {
    if (r->sessions_rejected++ == 0)
      HD_LOGW("netem", "session cap (%zu) reached: datagrams from new clients are dropped", r->max_sessions);
    return NULL;
  }
  session_t *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->r = r;
  s->start = s->last_active = now;
  memcpy(&s->client, client, addr_len(client));
  addr_name(client, s->name, sizeof s->name);
  uint64_t seq = ++r->session_seq;
  int ok = 1;
  for (int d = 0; d < 2 && ok; d++) {
    hd_netem_params_t p;
    session_params(r, s, d, now, &p);
    /* distinct, reproducible streams per session and direction */
    uint64_t seed = hd_netem_opts_seed(&r->opts, d) * 0x9E3779B97F4A7C15ull + seq * 2 + (uint64_t)d;
    ok = hd_netem_link_new(&s->link[d], &p, seed, now) == 0;
    if (ok) apply_trace(r, s, d);
  }
  struct sockaddr_storage any;
  memset(&any, 0, sizeof any);
  any.ss_family = r->target.ss_family;
  if (ok) {
    uv_udp_init_ex(r->loop, &s->sock, (unsigned)r->target.ss_family | UV_UDP_RECVMMSG);
    s->sock.data = s;
    r->open_handles++;
    int rc = uv_udp_bind(&s->sock, (const struct sockaddr *)&any, 0);
    if (rc == 0) rc = uv_udp_connect(&s->sock, (const struct sockaddr *)&r->target);
    if (rc == 0) {
      int sz = SOCK_BUF;
      uv_recv_buffer_size((uv_handle_t *)&s->sock, &sz);
      sz = SOCK_BUF;
      uv_send_buffer_size((uv_handle_t *)&s->sock, &sz);
      rc = uv_udp_recv_start(&s->sock, on_alloc_session, on_upstream);
    }
    if (rc != 0) {
      HD_LOGW("netem", "upstream socket for %s: %s", s->name, uv_strerror(rc));
      for (int d = 0; d < 2; d++)
        hd_netem_link_free(s->link[d]);
      uv_close((uv_handle_t *)&s->sock, session_closed);
      return NULL;
    }
  } else {
    for (int d = 0; d < 2; d++)
      hd_netem_link_free(s->link[d]);
    free(s);
    return NULL;
  }
  s->next = r->sessions;
  r->sessions = s;
  r->n_sessions++;
  r->sessions_total++;
  HD_LOGI("netem", "session %s: new (%zu active)", s->name, r->n_sessions);
  return s;
}

static void on_listen(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                      unsigned flags) {
  hd_netem_relay_t *r = h->data;
  if (nread > 0 && addr) {
    hd_time_t now = now_us();
    session_t *s = r->last_hit;
    if (!s || !addr_eq(&s->client, addr)) {
      for (s = r->sessions; s && !addr_eq(&s->client, addr); s = s->next) {
      }
      if (!s) s = session_new(r, addr, now);
      r->last_hit = s;
    }
    if (s) {
      s->last_active = now;
      if (hd_netem_link_send(s->link[HD_NETEM_UP], (const uint8_t *)buf->base, (size_t)nread, now) < 0)
        s->drop_big[HD_NETEM_UP]++;
    }
  }
  if (!(flags & UV_UDP_MMSG_CHUNK)) {
    deliver(r, now_us());
    arm(r);
  }
}

static void on_sweep(uv_timer_t *t) {
  hd_netem_relay_t *r = t->data;
  hd_time_t now = now_us();
  session_t **pp = &r->sessions;
  while (*pp) {
    session_t *s = *pp;
    if (now - s->last_active >= r->idle_timeout) {
      *pp = s->next;
      HD_LOGI("netem", "session %s: idle for %llds, closed", s->name,
              (long long)((now - s->last_active) / 1000000));
      r->sessions_expired++;
      session_free(r, s);
    } else {
      pp = &s->next;
    }
  }
  /* forget blackout windows that are over */
  for (int d = 0; d < 2; d++) {
    size_t k = 0;
    for (size_t i = 0; i < r->n_abs[d]; i++)
      if (r->abs[d][i].end > now) r->abs[d][k++] = r->abs[d][i];
    r->n_abs[d] = k;
  }
  arm(r);
}

/* ---- public API ---- */

static void handle_closed(uv_handle_t *h) {
  hd_netem_relay_t *r = h->data;
  if (--r->open_handles == 0 && r->stopping) {
    free(r->rxbuf);
    free(r->trace[0]);
    free(r->trace[1]);
    free(r);
  }
}

int hd_netem_relay_start(hd_netem_relay_t **out, uv_loop_t *loop, const hd_netem_relay_config_t *cfg) {
  for (int d = 0; d < 2; d++)
    if (hd_netem_params_check(&cfg->opts.dir[d]) < 0) return HD_EINVAL;
  hd_netem_relay_t *r = calloc(1, sizeof *r);
  if (!r) return HD_ENOMEM;
  int rc = HD_ENOMEM;
  r->loop = loop;
  r->tfd = -1;
  r->armed = HD_TIME_NEVER;
  r->opts = cfg->opts;
  r->initial = cfg->opts;
  r->initial.blackout_now[0] = r->initial.blackout_now[1] = 0;
  r->max_sessions = cfg->max_sessions ? cfg->max_sessions : 64;
  if (r->max_sessions > MAX_SESSIONS_CAP) r->max_sessions = MAX_SESSIONS_CAP;
  r->idle_timeout = cfg->idle_timeout > 0 ? cfg->idle_timeout : HD_SEC(60);
  struct sockaddr_storage ls;
  if (!cfg->listen_host || !cfg->to_host || parse_addr(cfg->listen_host, cfg->listen_port, &ls) ||
      parse_addr(cfg->to_host, cfg->to_port, &r->target) || cfg->to_port <= 0) {
    free(r);
    return HD_EINVAL;
  }
  for (int d = 0; d < 2; d++) {
    if (cfg->trace[d] && cfg->trace_len[d]) {
      r->trace[d] = malloc(cfg->trace_len[d]);
      if (!r->trace[d]) goto fail_mem;
      memcpy(r->trace[d], cfg->trace[d], cfg->trace_len[d]);
      r->trace_len[d] = cfg->trace_len[d];
    }
  }
  r->rxbuf = malloc(RECV_BATCH * RX_SLOT);
  if (!r->rxbuf) goto fail_mem;
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* this thread's sleeps end on time (see top) */
  r->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (r->tfd < 0) {
    rc = HD_EIO;
    goto fail_mem;
  }
  uv_udp_init_ex(loop, &r->listen, (unsigned)ls.ss_family | UV_UDP_RECVMMSG);
  r->listen.data = r;
  uv_poll_init(loop, &r->tpoll, r->tfd);
  r->tpoll.data = r;
  uv_timer_init(loop, &r->sweep);
  r->sweep.data = r;
  r->open_handles = 3;
  int urc = uv_udp_bind(&r->listen, (const struct sockaddr *)&ls, 0);
  if (urc == 0) {
    int sz = SOCK_BUF;
    uv_recv_buffer_size((uv_handle_t *)&r->listen, &sz);
    sz = SOCK_BUF;
    uv_send_buffer_size((uv_handle_t *)&r->listen, &sz);
    urc = uv_udp_recv_start(&r->listen, on_alloc_listen, on_listen);
  }
  if (urc != 0) {
    HD_LOGE("netem", "cannot bind UDP %s:%d: %s", cfg->listen_host, cfg->listen_port, uv_strerror(urc));
    r->stopping = 1;
    uv_close((uv_handle_t *)&r->listen, handle_closed);
    uv_close((uv_handle_t *)&r->tpoll, handle_closed);
    uv_close((uv_handle_t *)&r->sweep, handle_closed);
    close(r->tfd);
    return HD_EIO; /* r is freed once the closes run */
  }
  uv_poll_start(&r->tpoll, UV_READABLE, on_tfd);
  uint64_t sweep_ms = (uint64_t)(r->idle_timeout / 4000);
  if (sweep_ms < 10) sweep_ms = 10;
  if (sweep_ms > 1000) sweep_ms = 1000;
  uv_timer_start(&r->sweep, on_sweep, sweep_ms, sweep_ms);
  struct sockaddr_storage bound;
  int blen = sizeof bound;
  uv_udp_getsockname(&r->listen, (struct sockaddr *)&bound, &blen);
  r->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)&bound)->sin_port);
  /* a --blackout-now on the command line starts with the relay */
  hd_netem_relay_set(r, &r->opts);
  *out = r;
  return 0;
fail_mem:
  free(r->rxbuf);
  free(r->trace[0]);
  free(r->trace[1]);
  free(r);
  return rc;
}

int hd_netem_relay_port(const hd_netem_relay_t *r) { return r->port; }

void hd_netem_relay_get(const hd_netem_relay_t *r, hd_netem_opts_t *out) { *out = r->opts; }

int hd_netem_relay_set(hd_netem_relay_t *r, const hd_netem_opts_t *o) {
  hd_time_t now = now_us();
  hd_netem_opts_t n = *o;
  for (int d = 0; d < 2; d++)
    if (hd_netem_params_check(&n.dir[d]) < 0) return HD_EINVAL;
  for (int d = 0; d < 2; d++) {
    if (n.blackout_clear[d]) r->n_abs[d] = 0;
    if (n.blackout_now[d] > 0) {
      if (r->n_abs[d] == MAX_ABS_BLACKOUTS) { /* drop the oldest */
        memmove(&r->abs[d][0], &r->abs[d][1], (MAX_ABS_BLACKOUTS - 1) * sizeof r->abs[d][0]);
        r->n_abs[d]--;
      }
      r->abs[d][r->n_abs[d]++] = (abs_window_t){.start = now, .end = now + n.blackout_now[d]};
    }
    n.blackout_now[d] = 0;
    n.blackout_clear[d] = 0;
  }
  r->opts = n;
  for (session_t *s = r->sessions; s; s = s->next) {
    for (int d = 0; d < 2; d++) {
      hd_netem_params_t p;
      session_params(r, s, d, now, &p);
      int rc = hd_netem_link_set(s->link[d], &p, now);
      if (rc < 0) return rc;
      /* a trace stays loaded across set(); a --rate/--profile that replaced it drops it */
      if (!r->opts.trace_path[d][0]) hd_netem_link_clear_trace(s->link[d]);
    }
  }
  deliver(r, now);
  arm(r);
  return 0;
}

static int url_decode(const char *s, size_t n, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '+')
      c = ' ';
    else if (c == '%' && i + 2 < n) {
      char h[3] = {s[i + 1], s[i + 2], 0};
      char *end;
      long v = strtol(h, &end, 16);
      if (*end || v <= 0) return -1;
      c = (char)v;
      i += 2;
    } else if (c == '%') {
      return -1;
    }
    if (o + 1 >= cap) return -1;
    out[o++] = c;
  }
  out[o] = 0;
  return 0;
}

#define MAX_IMPAIR_OPTS 64
#define IMPAIR_STR 128

typedef struct {
  char names[MAX_IMPAIR_OPTS][IMPAIR_STR];
  char values[MAX_IMPAIR_OPTS][IMPAIR_STR];
  int has_value[MAX_IMPAIR_OPTS];
  size_t n;
  int reset;
} impair_req_t;

static int req_add(impair_req_t *q, const char *prefix, const char *key, const char *value, char *err,
                   size_t errcap) {
  if (q->n >= MAX_IMPAIR_OPTS) {
    snprintf(err, errcap, "too many settings (at most %d)", MAX_IMPAIR_OPTS);
    return HD_EINVAL;
  }
  int k = snprintf(q->names[q->n], IMPAIR_STR, "%s%s", prefix, key);
  if (k < 0 || k >= IMPAIR_STR || (value && strlen(value) >= IMPAIR_STR)) {
    snprintf(err, errcap, "setting '%s' too long", key);
    return HD_EINVAL;
  }
  q->has_value[q->n] = value != NULL;
  snprintf(q->values[q->n], IMPAIR_STR, "%s", value ? value : "");
  q->n++;
  return 0;
}

static int json_settings(impair_req_t *q, const char *prefix, json_t *obj, char *err, size_t errcap) {
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    char val[IMPAIR_STR];
    const char *vp = val;
    if (!prefix[0] && (!strcmp(key, "up") || !strcmp(key, "down") || !strcmp(key, "both"))) {
      if (!json_is_object(v)) {
        snprintf(err, errcap, "\"%s\" must be an object of settings", key);
        return HD_EINVAL;
      }
      char p[8];
      snprintf(p, sizeof p, "%s-", key);
      int rc = json_settings(q, p, v, err, errcap);
      if (rc < 0) return rc;
      continue;
    }
    if (!prefix[0] && !strcmp(key, "reset")) {
      q->reset = json_is_true(v);
      continue;
    }
    if (json_is_integer(v))
      snprintf(val, sizeof val, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
      snprintf(val, sizeof val, "%.10g", json_real_value(v));
    else if (json_is_string(v))
      snprintf(val, sizeof val, "%s", json_string_value(v));
    else if (json_is_true(v))
      vp = NULL;
    else if (json_is_false(v) && (!strcmp(key, "keep_order") || !strcmp(key, "keep-order"))) {
      key = "no-keep-order";
      vp = NULL;
    } else if (json_is_false(v) && !strcmp(key, "blackout")) {
      key = "no-blackout";
      vp = NULL;
    } else if (json_is_array(v) && (!strcmp(key, "burst_loss") || !strcmp(key, "burst-loss"))) {
      size_t i, o = 0;
      json_t *e;
      val[0] = 0;
      json_array_foreach(v, i, e) {
        if (!json_is_number(e) || o + 24 >= sizeof val) {
          snprintf(err, errcap, "\"%s\": want [P,R,K,H] percentages", key);
          return HD_EINVAL;
        }
        o += (size_t)snprintf(val + o, sizeof val - o, "%s%.10g", i ? "," : "", json_number_value(e));
      }
    } else {
      snprintf(err, errcap, "\"%s\": unsupported value type", key);
      return HD_EINVAL;
    }
    int rc = req_add(q, prefix, key, vp, err, errcap);
    if (rc < 0) return rc;
  }
  return 0;
}

int hd_netem_relay_impair(hd_netem_relay_t *r, const char *body, size_t len, int is_json, char *err,
                          size_t errcap) {
  impair_req_t *q = calloc(1, sizeof *q);
  if (!q) return HD_ENOMEM;
  int rc = 0;
  if (is_json) {
    json_error_t je;
    json_t *root = json_loadb(body, len, 0, &je);
    if (!root || !json_is_object(root)) {
      snprintf(err, errcap, "body is not a JSON object%s%s", root ? "" : ": ", root ? "" : je.text);
      json_decref(root);
      rc = HD_EINVAL;
      goto out;
    }
    rc = json_settings(q, "", root, err, errcap);
    json_decref(root);
    if (rc < 0) goto out;
  } else {
    size_t pos = 0;
    while (pos < len) {
      size_t e = pos;
      while (e < len && body[e] != '&')
        e++;
      const char *eq = memchr(body + pos, '=', e - pos);
      char key[IMPAIR_STR], val[IMPAIR_STR];
      size_t kl = eq ? (size_t)(eq - (body + pos)) : e - pos;
      if (kl && (url_decode(body + pos, kl, key, sizeof key) ||
                 (eq && url_decode(eq + 1, (size_t)(body + e - eq - 1), val, sizeof val)))) {
        snprintf(err, errcap, "bad query string near '%.*s'", (int)(e - pos > 40 ? 40 : e - pos), body + pos);
        rc = HD_EINVAL;
        goto out;
      }
      if (kl) {
        if (!strcmp(key, "reset"))
          q->reset = !eq || strcmp(val, "0");
        else if ((rc = req_add(q, "", key, eq ? val : NULL, err, errcap)) < 0)
          goto out;
      }
      pos = e + 1;
    }
  }
  hd_netem_opts_t o = q->reset ? r->initial : r->opts;
  if (q->reset) o.blackout_clear[0] = o.blackout_clear[1] = 1;
  const char *names[MAX_IMPAIR_OPTS], *values[MAX_IMPAIR_OPTS];
  for (size_t i = 0; i < q->n; i++) {
    int arity = hd_netem_opt_arity(q->names[i]);
    const char *bare = q->names[i];
    /* files and the seed are fixed for the relay's lifetime */
    if (arity >= 0 && (strstr(bare, "schedule") || strstr(bare, "trace") || strstr(bare, "seed"))) {
      snprintf(err, errcap, "--%s: not changeable at run time; restart the relay with it", bare);
      rc = HD_EINVAL;
      goto out;
    }
    if (arity == 0 && q->has_value[i] && strcmp(q->values[i], "1") && strcmp(q->values[i], "true") &&
        q->values[i][0]) {
      snprintf(err, errcap, "--%s: is a flag and takes no value", bare);
      rc = HD_EINVAL;
      goto out;
    }
    names[i] = q->names[i];
    values[i] = arity == 1 && q->has_value[i] ? q->values[i] : NULL;
  }
  rc = hd_netem_opts_apply(&o, names, values, q->n, err, errcap);
  if (rc == 0) {
    rc = hd_netem_relay_set(r, &o);
    if (rc < 0) snprintf(err, errcap, "the resulting settings are not valid for the link model");
  }
out:
  free(q);
  return rc;
}

static void totals(hd_netem_relay_t *r, hd_netem_stats_t out[2], uint64_t drop_send[2],
                   uint64_t drop_big[2]) {
  for (int d = 0; d < 2; d++) {
    out[d] = r->closed[d];
    drop_send[d] = r->closed_drop_send[d];
    drop_big[d] = r->closed_drop_big[d];
  }
  for (session_t *s = r->sessions; s; s = s->next) {
    for (int d = 0; d < 2; d++) {
      hd_netem_stats_t st;
      hd_netem_link_stats(s->link[d], &st);
      stats_add(&out[d], &st);
      drop_send[d] += s->drop_send[d];
      drop_big[d] += s->drop_big[d];
    }
  }
}

void hd_netem_relay_stats(hd_netem_relay_t *r, hd_netem_stats_t *up, hd_netem_stats_t *down,
                          size_t *sessions) {
  hd_netem_stats_t t[2];
  uint64_t ds[2], db[2];
  totals(r, t, ds, db);
  if (up) *up = t[0];
  if (down) *down = t[1];
  if (sessions) *sessions = r->n_sessions;
}

static json_t *dir_json(const hd_netem_stats_t *s, uint64_t drop_send, uint64_t drop_big, uint64_t rate_bps,
                        int with_rate) {
  json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:{s:I,s:I,s:I,s:I,s:I,s:I},s:I,s:I,s:{s:f,s:f,s:f,s:f}}",
                        "pkts_in", (json_int_t)s->pkts_in, "bytes_in", (json_int_t)s->bytes_in, "pkts_out",
                        (json_int_t)s->pkts_out, "bytes_out", (json_int_t)s->bytes_out, "drops", "loss",
                        (json_int_t)s->drop_loss, "queue", (json_int_t)s->drop_queue, "blackout",
                        (json_int_t)s->drop_blackout, "cap", (json_int_t)s->drop_cap, "send",
                        (json_int_t)drop_send, "oversize", (json_int_t)drop_big, "duplicated",
                        (json_int_t)s->duplicated, "reordered", (json_int_t)s->reordered, "qdelay_ms", "p50",
                        (double)s->qdelay_p50 / 1000.0, "p95", (double)s->qdelay_p95 / 1000.0, "p99",
                        (double)s->qdelay_p99 / 1000.0, "max", (double)s->qdelay_max / 1000.0);
  if (o && with_rate) json_object_set_new(o, "rate_kbps", json_real((double)rate_bps / 1000.0));
  return o;
}

char *hd_netem_relay_stats_json(hd_netem_relay_t *r) {
  hd_netem_stats_t t[2];
  uint64_t ds[2], db[2];
  totals(r, t, ds, db);
  hd_time_t now = now_us();
  json_t *root = json_object();
  if (!root) return NULL;
  json_object_set_new(root, "sessions", json_integer((json_int_t)r->n_sessions));
  json_object_set_new(root, "sessions_total", json_integer((json_int_t)r->sessions_total));
  json_object_set_new(root, "sessions_expired", json_integer((json_int_t)r->sessions_expired));
  json_object_set_new(root, "sessions_rejected", json_integer((json_int_t)r->sessions_rejected));
  json_object_set_new(root, "up", dir_json(&t[0], ds[0], db[0], 0, 0));
  json_object_set_new(root, "down", dir_json(&t[1], ds[1], db[1], 0, 0));
  json_t *settings = json_object();
  for (int d = 0; d < 2; d++) {
    char desc[1024];
    hd_netem_opts_describe(&r->opts, d, desc, sizeof desc);
    json_object_set_new(settings, d ? "down" : "up", json_string(desc));
  }
  json_object_set_new(root, "settings", settings);
  json_t *clients = json_array();
  for (session_t *s = r->sessions; s; s = s->next) {
    hd_netem_stats_t st[2];
    for (int d = 0; d < 2; d++)
      hd_netem_link_stats(s->link[d], &st[d]);
    json_t *c = json_pack("{s:s,s:f,s:f}", "addr", s->name, "age_s", (double)(now - s->start) / 1e6, "idle_s",
                          (double)(now - s->last_active) / 1e6);
    if (!c) continue;
    json_object_set_new(
        c, "up", dir_json(&st[0], s->drop_send[0], s->drop_big[0], hd_netem_link_rate(s->link[0], now), 1));
    json_object_set_new(
        c, "down", dir_json(&st[1], s->drop_send[1], s->drop_big[1], hd_netem_link_rate(s->link[1], now), 1));
    json_array_append_new(clients, c);
  }
  json_object_set_new(root, "clients", clients);
  char *out = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
  json_decref(root);
  return out;
}

void hd_netem_relay_stop(hd_netem_relay_t *r) {
  if (!r) return;
  r->stopping = 1;
  while (r->sessions) {
    session_t *s = r->sessions;
    r->sessions = s->next;
    session_free(r, s); /* its socket closes through session_closed */
  }
  uv_udp_recv_stop(&r->listen);
  uv_poll_stop(&r->tpoll);
  uv_timer_stop(&r->sweep);
  close(r->tfd);
  uv_close((uv_handle_t *)&r->listen, handle_closed);
  uv_close((uv_handle_t *)&r->tpoll, handle_closed);
  uv_close((uv_handle_t *)&r->sweep, handle_closed);
}
