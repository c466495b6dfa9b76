/* UDP media port on libuv (see rtc_udp.h). recvmmsg batching is enabled where
 * libuv supports it; sends are non-blocking try_send, a full socket buffer
 * drops and counts. */
#include "io/rtc_udp.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "io/udp_batch.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h, Linux 4.18 */
#endif

/* libuv splits the receive buffer into 64 KiB slots for recvmmsg */
#define RX_SLOT (64 * 1024)
#define RECV_BATCH 16

struct hd_rtc_udp {
  uv_udp_t udp;
  uv_timer_t timer;
  hd_node_t *node;
  int port;
  int closing;
  uint8_t *rxbuf;
  uint64_t send_calls; /* sendmmsg calls (for the benchmarks: datagrams per call) */
  int gso;             /* UDP_SEGMENT usable on this socket */
  int gso_fails;       /* GSO messages refused in a row */
  hd_udp_batch_t batch;
  hd_rtc_udp_tcp_t tcp; /* ICE-TCP connections' share of the tx queue (take = NULL: none) */
  /* GSO hold (HUDONG_GSO_HOLD_US, off by default): after a receive batch the
   * send waits up to hold_us for the next batches, so that a viewer's share of
   * a frame whose packets arrive over a few batches leaves as one GSO message.
   * A timerfd gives µs resolution (libuv timers have 1 ms). */
  int hold_us;
  int hold_fd;      /* timerfd, -1 when the hold is off */
  int hold_pending; /* a hold is armed: datagrams wait in the queue */
  uv_poll_t hold_poll;
  void (*on_flush)(void *ud); /* after every drain (hd_rtc_udp_set_on_flush) */
  void *on_flush_ud;
};

hd_time_t hd_io_now(uv_loop_t *loop) {
  (void)loop;
  return (hd_time_t)(uv_hrtime() / 1000);
}

/* Sends everything queued, up to HD_UDP_BATCH_MSGS messages per sendmmsg(2):
 * a publisher packet fanned out to 50 viewers is one system call, not 50.
 * With GSO (probed at start), datagrams of the flush to one destination with
 * equal lengths go as one UDP_SEGMENT message (io/udp_batch.h). The socket is
 * non-blocking; a datagram the kernel refuses (full buffer, unreachable) is
 * dropped and counted, and the rest of the batch goes on. A GSO message the
 * kernel refuses as such (gso_refused) is sent again as plain datagrams;
 * GSO_MAX_FAILS refusals with no GSO send in between turn GSO off for the
 * socket. */
#define GSO_MAX_FAILS 8
/* Errors that say "not with GSO" rather than "not now" (EAGAIN, ENOBUFS). */
static int gso_refused(int e) {
  return e == EIO || e == EINVAL || e == EOPNOTSUPP || e == ENOPROTOOPT || e == EMSGSIZE;
}
/* Hands the datagrams addressed to ICE-TCP peers to their connections and
 * marks them sent (len 0): the UDP plan skips them. */
static void drain_tcp(hd_rtc_udp_t *u, hd_txq_t *q, hd_node_stats_t *st) {
  for (size_t i = 0; i < q->count; i++) {
    hd_datagram_t *d = &q->items[(q->head + i) % q->cap];
    int rc = d->len ? u->tcp.take(u->tcp.ud, d) : 0;
    if (rc > 0) {
      st->packets_out++;
      st->bytes_out += d->len;
    } else if (rc < 0) {
      st->drop_send_error++; /* the connection's send buffer is full: as a full UDP socket buffer */
    }
    if (rc) d->len = 0;
  }
  u->tcp.flush(u->tcp.ud);
}

void hd_udp_send_queue(int fd, hd_txq_t *q, hd_udp_batch_t *b, int *gso, int *gso_fails, uint64_t *send_calls,
                       hd_node_stats_t *st) {
  int plain = 0; /* next plan without GSO (after a refused GSO message) */
  while (q->count) {
    unsigned n = hd_udp_batch_plan(b, q, *gso && !plain);
    plain = 0;
    if (n == 0) {
      hd_udp_batch_pop_sent(q);
      continue;
    }
    int sent = sendmmsg(fd, b->msgs, n, MSG_DONTWAIT);
    if (sent < 0 && errno == EINTR) continue;
    if (sent <= 0) {
      unsigned k = hd_udp_batch_segs(b, 0);
      if (k > 1 && gso_refused(errno)) { /* e.g. EIO: no checksum offload on the route */
        if (++*gso_fails >= GSO_MAX_FAILS) {
          HD_LOGW("rtc", "UDP GSO refused %d times (%s): sending plain datagrams", *gso_fails,
                  strerror(errno));
          *gso = 0;
        }
        plain = 1;
        continue;
      }
      st->drop_send_error += k; /* the first message failed (full buffer...): drop it, try the rest */
      hd_udp_batch_mark_sent(b, q, 0);
      hd_udp_batch_pop_sent(q);
      continue;
    }
    (*send_calls)++;
    for (int i = 0; i < sent; i++) {
      unsigned k = hd_udp_batch_segs(b, (unsigned)i);
      st->packets_out += k;
      st->bytes_out += hd_udp_batch_mark_sent(b, q, (unsigned)i);
      if (k > 1) {
        st->udp_gso_sends++;
        st->udp_gso_datagrams += k;
        *gso_fails = 0;
      }
    }
    hd_udp_batch_pop_sent(q);
  }
}

static void drain(hd_rtc_udp_t *u) {
  hd_txq_t *q = hd_node_txq(u->node);
  hd_node_stats_t *st = hd_node_stats(u->node);
  if (u->tcp.take && *u->tcp.n_conns && q->count) drain_tcp(u, q, st);
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)&u->udp, &fd) == 0)
    hd_udp_send_queue(fd, q, &u->batch, &u->gso, &u->gso_fails, &u->send_calls, st);
  if (u->on_flush) u->on_flush(u->on_flush_ud);
}

static void on_timer(uv_timer_t *t);
static void rearm(hd_rtc_udp_t *u);

static void hold_cancel(hd_rtc_udp_t *u) {
  if (!u->hold_pending) return;
  struct itimerspec off = {{0, 0}, {0, 0}};
  timerfd_settime(u->hold_fd, 0, &off, NULL);
  u->hold_pending = 0;
}

static void on_hold(uv_poll_t *p, int status, int events) {
  hd_rtc_udp_t *u = p->data;
  uint64_t n;
  while (read(u->hold_fd, &n, sizeof n) == (ssize_t)sizeof n) {
  }
  u->hold_pending = 0;
  drain(u);
  rearm(u);
}

static void rearm(hd_rtc_udp_t *u) {
  if (u->closing) return;
  hd_time_t next = hd_node_next_timeout(u->node);
  if (next == HD_TIME_NEVER) {
    uv_timer_stop(&u->timer);
    return;
  }
  hd_time_t now = hd_io_now(u->udp.loop);
  uint64_t ms = next <= now ? 0 : (uint64_t)((next - now + 999) / 1000);
  uv_timer_start(&u->timer, on_timer, ms, 0);
}

static void on_timer(uv_timer_t *t) {
  hd_rtc_udp_t *u = t->data;
  hd_node_handle_timeout(u->node, hd_io_now(t->loop));
  hold_cancel(u);
  drain(u);
  rearm(u);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  hd_rtc_udp_t *u = h->data;
  buf->base = (char *)u->rxbuf;
  buf->len = (unsigned)(RECV_BATCH * RX_SLOT);
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned flags) {
  hd_rtc_udp_t *u = h->data;
  if (nread > 0 && addr) {
    socklen_t alen = addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    hd_node_feed(u->node, (uint8_t *)buf->base, (size_t)nread, addr, alen, hd_io_now(h->loop));
  }
  /* with recvmmsg, each datagram comes flagged UV_UDP_MMSG_CHUNK and a final
   * call ends the batch: send what the whole batch produced in sendmmsg
   * batches and re-arm the timer once per batch; within a batch, drain only
   * when the queue is half full (a large room must not overflow it) */
  hd_txq_t *q = hd_node_txq(u->node);
  if (!(flags & UV_UDP_MMSG_CHUNK)) {
    if (u->hold_fd >= 0 && u->gso && q->count && q->count < q->cap / 4) {
      /* the hold: the first batch after a send arms it, later ones join */
      if (!u->hold_pending) {
        struct itimerspec at = {{0, 0}, {0, (long)u->hold_us * 1000}};
        if (timerfd_settime(u->hold_fd, 0, &at, NULL) == 0) {
          u->hold_pending = 1;
          rearm(u);
          return;
        }
      } else {
        rearm(u);
        return;
      }
    }
    hold_cancel(u);
    drain(u);
    rearm(u);
  } else if (q->count >= q->cap / 2) {
    hold_cancel(u);
    drain(u);
  }
}

int hd_rtc_udp_start(hd_rtc_udp_t **out, uv_loop_t *loop, hd_node_t *node, const char *host, int port) {
  hd_rtc_udp_t *u = calloc(1, sizeof *u);
  if (!u) return HD_ENOMEM;
  u->hold_fd = -1;
  u->rxbuf = malloc(RECV_BATCH * RX_SLOT);
  if (!u->rxbuf) {
    free(u);
    return HD_ENOMEM;
  }
  u->node = node;
  struct sockaddr_storage ss;
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0) {
    free(u->rxbuf);
    free(u);
    return HD_EINVAL;
  }
  uv_udp_init_ex(loop, &u->udp, (unsigned)ss.ss_family | UV_UDP_RECVMMSG);
  u->udp.data = u;
  uv_timer_init(loop, &u->timer);
  u->timer.data = u;
  int rc = uv_udp_bind(&u->udp, (const struct sockaddr *)&ss, 0);
  if (rc == 0) {
    int sz = 4 << 20;
    uv_recv_buffer_size((uv_handle_t *)&u->udp, &sz);
    sz = 4 << 20;
    uv_send_buffer_size((uv_handle_t *)&u->udp, &sz);
    rc = uv_udp_recv_start(&u->udp, on_alloc, on_recv);
  }
  if (rc != 0) {
    HD_LOGE("rtc", "cannot bind UDP %s:%d: %s", host, port, uv_strerror(rc));
    u->closing = 1;
    uv_close((uv_handle_t *)&u->udp, NULL);
    uv_close((uv_handle_t *)&u->timer, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    free(u->rxbuf);
    free(u);
    return HD_EIO;
  }
  /* GSO probe: the option exists (Linux >= 4.18); HUDONG_UDP_GSO=0 turns it off */
  uv_os_fd_t fd;
  const char *env = getenv("HUDONG_UDP_GSO");
  int zero = 0;
  u->gso = !(env && env[0] == '0') && uv_fileno((uv_handle_t *)&u->udp, &fd) == 0 &&
           setsockopt(fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof zero) == 0;
  /* GSO hold, µs (docs/operations.md): 0 = off (the default), at most HD_RTC_GSO_HOLD_MAX_US */
  const char *hold = getenv("HUDONG_GSO_HOLD_US");
  u->hold_fd = -1;
  u->hold_us = hold ? atoi(hold) : 0;
  if (u->hold_us < 0 || u->hold_us > HD_RTC_GSO_HOLD_MAX_US) {
    HD_LOGW("rtc", "HUDONG_GSO_HOLD_US=%s is outside 0..%d: the hold stays off", hold,
            HD_RTC_GSO_HOLD_MAX_US);
    u->hold_us = 0;
  }
  if (u->hold_us > 0 && u->gso) {
    u->hold_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (u->hold_fd >= 0 && uv_poll_init(loop, &u->hold_poll, u->hold_fd) == 0) {
      u->hold_poll.data = u;
      uv_poll_start(&u->hold_poll, UV_READABLE, on_hold);
    } else {
      if (u->hold_fd >= 0) close(u->hold_fd);
      u->hold_fd = -1;
      HD_LOGW("rtc", "GSO hold unavailable (timerfd): sending at once");
    }
  }
  struct sockaddr_storage bound;
  int blen = sizeof bound;
  uv_udp_getsockname(&u->udp, (struct sockaddr *)&bound, &blen);
  u->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)&bound)->sin_port);
  *out = u;
  return 0;
}

int hd_rtc_udp_port(const hd_rtc_udp_t *u) { return u->port; }

uint64_t hd_rtc_udp_send_calls(const hd_rtc_udp_t *u) { return u ? u->send_calls : 0; }

void hd_rtc_udp_set_tcp(hd_rtc_udp_t *u, const hd_rtc_udp_tcp_t *hooks) {
  if (hooks)
    u->tcp = *hooks;
  else
    memset(&u->tcp, 0, sizeof u->tcp);
}

int hd_rtc_udp_fd(const hd_rtc_udp_t *u) {
  uv_os_fd_t fd;
  return uv_fileno((const uv_handle_t *)&u->udp, &fd) == 0 ? fd : -1;
}

int hd_rtc_udp_gso(const hd_rtc_udp_t *u) { return u->gso; }

void hd_rtc_udp_set_on_flush(hd_rtc_udp_t *u, void (*fn)(void *ud), void *ud) {
  u->on_flush = fn;
  u->on_flush_ud = ud;
}

void hd_rtc_udp_kick(hd_rtc_udp_t *u) {
  hold_cancel(u);
  drain(u);
  rearm(u);
}

static void on_closed(uv_handle_t *h) {
  hd_rtc_udp_t *u = h->data;
  if (++u->closing == (u->hold_fd >= 0 ? 4 : 3)) {
    if (u->hold_fd >= 0) close(u->hold_fd);
    free(u->rxbuf);
    free(u);
  }
}

void hd_rtc_udp_stop(hd_rtc_udp_t *u) {
  if (!u) return;
  hold_cancel(u);
  drain(u);
  u->closing = 1;
  uv_timer_stop(&u->timer);
  uv_udp_recv_stop(&u->udp);
  uv_close((uv_handle_t *)&u->udp, on_closed);
  uv_close((uv_handle_t *)&u->timer, on_closed);
  if (u->hold_fd >= 0) {
    uv_poll_stop(&u->hold_poll);
    uv_close((uv_handle_t *)&u->hold_poll, on_closed);
  }
}
