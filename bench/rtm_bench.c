/* RTM fan-out benchmark (issue 5 item 5): Hudong's /rtm broker against
 * mosquitto (MQTT 3.1.1, QoS 1) with the same load, one after the other, in
 * one run. Numbers, not a test (DESIGN §6).
 *
 * For each target the benchmark starts the server itself, opens N client
 * connections from this one process (epoll, non-blocking), and measures:
 *  - memory per idle connection: the server's RSS growth from N logged-in,
 *    idle connections, divided by N;
 *  - for fan-out S (channels of S subscribers plus one publisher, as many
 *    channels as the N connections allow): the largest delivered rate
 *    (messages/s arriving at subscribers) the server sustains — offered rates
 *    are raised until the deliveries of a 2 s trial are not complete 1 s after
 *    it ended or p99 passes 200 ms — then a 5 s run at 50% of that rate with
 *    p50/p99 publish→deliver latency.
 * Each message carries its publish time (CLOCK_MONOTONIC, same process), so
 * latency is exact. Every delivery is acknowledged as each protocol wants
 * (MQTT PUBACK per message; Hudong cumulative acks, docs/rtm.md). The client
 * side shares the 2 cores with the server, for both targets alike.
 *
 * Usage: rtm_bench [--conns N] [--fanout 10,100,1000] [--payload B]
 *                  [--hudong PATH] [--mosquitto PATH] [--only hudong|mosquitto]
 *                  [--json FILE] [--rates R1,R2,..]
 * bench/run_rtm.sh runs it with the defaults and writes bench/results/rtm.json. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rtm_bench_proto.h"

#define MAX_FANOUTS 8
#define HIST_BUCKETS 200000 /* 10 µs each: 0..2 s */
#define RBUF_CAP (256 * 1024)
#define WBUF_CAP (4 * 1024 * 1024)

/* ------------------------------------------------------------ time */

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------ latency histogram */

static uint32_t hist[HIST_BUCKETS];
static uint64_t hist_n, hist_over;

static void hist_reset(void) {
  memset(hist, 0, sizeof hist);
  hist_n = hist_over = 0;
}

static void hist_add(int64_t ns) {
  int64_t b = ns / 10000;
  if (b < 0) b = 0;
  hist_n++;
  if (b >= HIST_BUCKETS)
    hist_over++;
  else
    hist[b]++;
}

/* percentile in ms; overflow counts as 2000 ms */
static double hist_pct(double p) {
  if (!hist_n) return 0;
  uint64_t want = (uint64_t)(p * (double)hist_n), acc = 0;
  if (want >= hist_n) want = hist_n - 1;
  for (int i = 0; i < HIST_BUCKETS; i++) {
    acc += hist[i];
    if (acc > want) return (i + 0.5) * 0.01;
  }
  return 2000.0;
}

/* ------------------------------------------------------------ connections */

static int ep;
static bench_conn_t *conns;
static int n_conns;
static const bench_proto_t *proto;
static int64_t t0_ns;

/* counters of the current phase */
static uint64_t c_ready, c_subscribed, c_delivered, c_delivered_in_window, c_acked, c_errors, c_closed;
static int64_t window_start_ns; /* deliveries of messages published since this count in the trial */
static int64_t last_delivery_ns;

void bench_fail(bench_conn_t *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (c_errors < 10) {
    fprintf(stderr, "rtm_bench: conn %d: ", c->idx);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
  }
  va_end(ap);
  c_errors++;
}

static void update_events(bench_conn_t *c) {
  struct epoll_event ev = {.events = EPOLLIN | (c->wlen ? EPOLLOUT : 0), .data.ptr = c};
  if (c->connecting) ev.events = EPOLLOUT;
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void flush(bench_conn_t *c) {
  while (c->wlen > 0 && c->fd >= 0) {
    ssize_t n = send(c->fd, c->wbuf, c->wlen, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      bench_fail(c, "send: %s", strerror(errno));
      return;
    }
    memmove(c->wbuf, c->wbuf + n, c->wlen - (size_t)n);
    c->wlen -= (size_t)n;
  }
  int want_out = c->wlen > 0;
  if (want_out != c->want_out) {
    c->want_out = want_out;
    update_events(c);
  }
}

int bench_write(bench_conn_t *c, const void *p, size_t n) {
  if (c->fd < 0) return -1;
  if (c->wlen + n > c->wcap) {
    size_t cap = c->wcap ? c->wcap : 4096;
    while (cap < c->wlen + n) cap *= 2;
    if (cap > WBUF_CAP) {
      bench_fail(c, "write buffer over %d bytes", WBUF_CAP);
      return -1;
    }
    uint8_t *nb = realloc(c->wbuf, cap);
    if (!nb) return -1;
    c->wbuf = nb;
    c->wcap = cap;
  }
  memcpy(c->wbuf + c->wlen, p, n);
  c->wlen += n;
  return 0;
}

void bench_on_ready(bench_conn_t *c) {
  if (!c->ready) {
    c->ready = 1;
    c_ready++;
  }
}

void bench_on_subscribed(bench_conn_t *c) { c_subscribed++; }

void bench_on_puback(bench_conn_t *c) { c_acked++; }

/* A delivered message: the payload starts with "<publish ns> " */
void bench_on_message(bench_conn_t *c, const uint8_t *payload, size_t n) {
  int64_t sent = 0;
  size_t i = 0;
  while (i < n && payload[i] >= '0' && payload[i] <= '9') sent = sent * 10 + (payload[i++] - '0');
  if (i == 0) {
    bench_fail(c, "message without a timestamp");
    return;
  }
  int64_t t = now_ns();
  c_delivered++;
  last_delivery_ns = t;
  if (sent + t0_ns >= window_start_ns) {
    c_delivered_in_window++;
    hist_add(t - (sent + t0_ns));
  }
}

static int open_conn(bench_conn_t *c, int port) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (c->fd < 0) return -1;
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
    close(c->fd);
    c->fd = -1;
    return -1;
  }
  c->connecting = 1;
  struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
  return 0;
}

static void close_conn(bench_conn_t *c) {
  if (c->fd >= 0) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c_closed++;
  }
  free(c->wbuf);
  c->wbuf = NULL;
  c->wlen = c->wcap = 0;
  free(c->rbuf);
  c->rbuf = NULL;
  c->rlen = 0;
  free(c->pstate);
  c->pstate = NULL;
}

static void on_io(bench_conn_t *c, uint32_t events) {
  if (c->connecting) {
    int err = 0;
    socklen_t l = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err) {
      bench_fail(c, "connect: %s", strerror(err));
      close_conn(c);
      return;
    }
    c->connecting = 0;
    c->want_out = -1;
    proto->hello(c);
    flush(c);
    return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    for (;;) {
      if (!c->rbuf) c->rbuf = malloc(RBUF_CAP);
      ssize_t n = recv(c->fd, c->rbuf + c->rlen, RBUF_CAP - c->rlen, 0);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        bench_fail(c, "recv: %s", strerror(errno));
        close_conn(c);
        return;
      }
      if (n == 0) {
        bench_fail(c, "server closed the connection");
        close_conn(c);
        return;
      }
      c->rlen += (size_t)n;
      size_t used = 0;
      if (proto->parse(c, &used) < 0) {
        close_conn(c);
        return;
      }
      memmove(c->rbuf, c->rbuf + used, c->rlen - used);
      c->rlen -= used;
      if (c->rlen == RBUF_CAP) {
        bench_fail(c, "message over %d bytes", RBUF_CAP);
        close_conn(c);
        return;
      }
      if ((size_t)n < RBUF_CAP / 2) break;
    }
    if (c->fd >= 0 && proto->after_read) proto->after_read(c);
  }
  if (c->fd >= 0) flush(c);
}

/* Turns the event loop until deadline (ns) or until done() says so. */
static void run_until(int64_t deadline, int (*done)(void), void (*tick)(int64_t)) {
  struct epoll_event evs[512];
  for (;;) {
    int64_t t = now_ns();
    if (tick) tick(t);
    if (done && done()) return;
    if (t >= deadline) return;
    int n = epoll_wait(ep, evs, 512, 1);
    for (int i = 0; i < n; i++) on_io(evs[i].data.ptr, evs[i].events);
    /* flush what the parsers queued on connections not in this batch */
    for (int i = 0; i < n; i++) {
      bench_conn_t *c = evs[i].data.ptr;
      if (c->fd >= 0 && c->wlen) flush(c);
    }
  }
}

/* ------------------------------------------------------------ servers */

static pid_t server_pid;

static long rss_kb(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long kb = -1;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "VmRSS:", 6)) kb = strtol(line + 6, NULL, 10);
  fclose(f);
  return kb;
}

static double cpu_s(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char buf[1024];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (!p) return -1;
  unsigned long ut = 0, st = 0;
  /* fields after ")": state(3) ... utime(14) stime(15) */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int port_open(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
  close(fd);
  return ok;
}

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t l = sizeof sa;
  bind(fd, (struct sockaddr *)&sa, sizeof sa);
  getsockname(fd, (struct sockaddr *)&sa, &l);
  close(fd);
  return ntohs(sa.sin_port);
}

static int start_server(char *const argv[], int port, const char *log) {
  server_pid = fork();
  if (server_pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execv(argv[0], argv);
    _exit(127);
  }
  for (int i = 0; i < 200; i++) {
    if (port_open(port)) return 0;
    usleep(25000);
  }
  fprintf(stderr, "rtm_bench: %s did not listen on %d (log: %s)\n", argv[0], port, log);
  return -1;
}

static void stop_server(void) {
  if (server_pid > 0) {
    kill(server_pid, SIGTERM);
    int st;
    for (int i = 0; i < 100 && waitpid(server_pid, &st, WNOHANG) == 0; i++) usleep(50000);
    if (waitpid(server_pid, &st, WNOHANG) == 0) {
      kill(server_pid, SIGKILL);
      waitpid(server_pid, &st, 0);
    }
  }
  server_pid = 0;
}

/* ------------------------------------------------------------ phases */

static int want_ready, want_subscribed;
static int all_ready(void) { return (int)c_ready >= want_ready || c_closed > 0; }
static int all_subscribed(void) { return (int)c_subscribed >= want_subscribed || c_closed > 0; }

/* publishing schedule of one trial */
static int cur_fanout, n_channels;
static double pub_rate; /* messages/s, all channels together */
static int64_t pub_start, pub_end;
static uint64_t published, pub_ch_next;
static size_t payload_bytes;

static void pub_tick(int64_t t) {
  if (t < pub_start || pub_start == 0) return;
  int64_t until = t < pub_end ? t : pub_end;
  uint64_t due = (uint64_t)((double)(until - pub_start) / 1e9 * pub_rate);
  char msg[4096];
  while (published < due) {
    int ch = (int)(pub_ch_next++ % (uint64_t)n_channels);
    bench_conn_t *c = &conns[ch * (cur_fanout + 1)]; /* the channel's publisher */
    int64_t ts = now_ns() - t0_ns;
    int len = snprintf(msg, sizeof msg, "%lld ", (long long)ts);
    while ((size_t)len < payload_bytes && len < (int)sizeof msg - 1) msg[len++] = 'x';
    msg[len] = 0;
    if (c->fd >= 0) {
      proto->publish(c, ch, cur_fanout, msg, (size_t)len);
      flush(c);
    }
    published++;
  }
}

typedef struct {
  double offered, delivered_rate, complete, p50, p99, server_cpu, client_cpu;
} trial_t;

/* One trial: publish at rate (deliveries/s = rate * fanout) for secs, then
 * drain for up to 1 s. */
static trial_t trial(double deliveries_per_s, double secs) {
  trial_t r = {.offered = deliveries_per_s};
  hist_reset();
  c_delivered = c_delivered_in_window = 0;
  published = 0;
  pub_rate = deliveries_per_s / cur_fanout;
  double cpu0 = cpu_s(server_pid), self0 = self_cpu_s();
  pub_start = now_ns();
  window_start_ns = pub_start;
  pub_end = pub_start + (int64_t)(secs * 1e9);
  run_until(pub_end, NULL, pub_tick);
  uint64_t expected = published * (uint64_t)cur_fanout;
  int64_t drain_end = pub_end + 1000000000LL;
  while (now_ns() < drain_end && c_delivered_in_window < expected) run_until(now_ns() + 5000000, NULL, NULL);
  pub_start = 0;
  r.complete = expected ? (double)c_delivered_in_window / (double)expected : 0;
  r.delivered_rate = (double)c_delivered_in_window / secs;
  r.p50 = hist_pct(0.50);
  r.p99 = hist_pct(0.99);
  r.server_cpu = cpu_s(server_pid) - cpu0;
  r.client_cpu = self_cpu_s() - self0;
  /* an overloaded server still works off its backlog: wait until deliveries
   * stop (200 ms quiet, at most 15 s) so the next trial starts clean */
  int64_t quiet_end = now_ns() + 15000000000LL;
  while (now_ns() < quiet_end && now_ns() - last_delivery_ns < 200000000LL) run_until(now_ns() + 20000000, NULL, NULL);
  return r;
}

typedef struct {
  int fanout, channels;
  double max_rate, at50_rate, p50, p99, cpu_per_msg_us, client_cpu_per_msg_us;
} fan_result_t;

typedef struct {
  const char *name;
  int conns_ok;
  double kb_per_conn;
  int n_fan;
  fan_result_t fan[MAX_FANOUTS];
  char error[256];
} target_result_t;

/* --rates R1,R2,..: fixed offered rates instead of the search (to compare
 * builds at the same load); the first that fails ends the list. */
static double fixed_rates[8];
static int n_fixed_rates;

static int ok_trial(const trial_t *t) { return t->complete >= 0.999 && t->p99 < 200 && !c_closed; }

static void run_fanout(fan_result_t *fr, int fanout) {
  cur_fanout = fanout;
  n_channels = n_conns / (fanout + 1);
  fr->fanout = fanout;
  fr->channels = n_channels;
  /* subscribe every non-publisher member of every channel */
  c_subscribed = 0;
  want_subscribed = 0;
  for (int ch = 0; ch < n_channels; ch++)
    for (int k = 1; k <= fanout; k++) {
      bench_conn_t *c = &conns[ch * (fanout + 1) + k];
      proto->subscribe(c, ch, fanout);
      flush(c);
      want_subscribed++;
    }
  run_until(now_ns() + 60000000000LL, all_subscribed, NULL);
  if ((int)c_subscribed < want_subscribed) {
    fprintf(stderr, "rtm_bench: only %llu of %d subscriptions confirmed\n", (unsigned long long)c_subscribed,
            want_subscribed);
    return;
  }
  /* raise the offered delivery rate until a trial fails, then bisect */
  double lo = 0, hi = 0, rate = n_fixed_rates ? fixed_rates[0] : 20000;
  for (int i = 0; i < 12 && !c_closed; i++) {
    if (n_fixed_rates) {
      if (i >= n_fixed_rates) break;
      rate = fixed_rates[i];
    }
    trial_t t = trial(rate, 2.0);
    printf("  %-9s fan-out %4d offered %9.0f/s: delivered %9.0f/s complete %6.2f%% p50 %7.2f ms p99 %7.2f ms "
           "(CPU s: server %.2f, client %.2f)\n",
           proto->name, fanout, t.offered, t.delivered_rate, 100 * t.complete, t.p50, t.p99, t.server_cpu,
           t.client_cpu);
    fflush(stdout);
    if (n_fixed_rates) {
      if (!ok_trial(&t)) break;
      lo = rate;
      continue;
    }
    if (ok_trial(&t)) {
      lo = rate;
      if (hi == 0) {
        rate *= 2;
        continue;
      }
    } else {
      hi = rate;
    }
    if (hi > 0 && hi - lo < hi * 0.1) break;
    rate = (lo + hi) / 2;
  }
  fr->max_rate = lo;
  if (lo > 0 && !c_closed) {
    trial_t t = trial(lo / 2, 5.0);
    fr->at50_rate = t.delivered_rate;
    fr->p50 = t.p50;
    fr->p99 = t.p99;
    fr->cpu_per_msg_us = t.delivered_rate > 0 ? t.server_cpu / (t.delivered_rate * 5.0) * 1e6 : 0;
    fr->client_cpu_per_msg_us = t.delivered_rate > 0 ? t.client_cpu / (t.delivered_rate * 5.0) * 1e6 : 0;
    printf("  %-9s fan-out %4d at 50%%: delivered %9.0f/s p50 %.2f ms p99 %.2f ms, CPU µs/delivery: server %.2f, "
           "this client %.2f\n",
           proto->name, fanout, t.delivered_rate, t.p50, t.p99, fr->cpu_per_msg_us, fr->client_cpu_per_msg_us);
  }
}

static void run_target(target_result_t *tr, const bench_proto_t *p, char *const argv[], int port, const char *log,
                       const int *fanouts, int n_fan) {
  proto = p;
  tr->name = p->name;
  printf("== %s (%d connections)\n", p->name, n_conns);
  if (start_server(argv, port, log) < 0) {
    snprintf(tr->error, sizeof tr->error, "server did not start");
    return;
  }
  usleep(200000);
  long rss0 = rss_kb(server_pid);
  c_ready = c_closed = c_errors = 0;
  want_ready = n_conns;
  bench_proto_set_port(port);
  /* connect in waves so the listen backlog never overflows */
  for (int i = 0; i < n_conns; i++) {
    memset(&conns[i], 0, sizeof conns[i]);
    conns[i].idx = i;
    conns[i].fd = -1;
  }
  for (int i = 0; i < n_conns; i += 500) {
    int end = i + 500 < n_conns ? i + 500 : n_conns;
    for (int k = i; k < end; k++)
      if (open_conn(&conns[k], port) < 0) bench_fail(&conns[k], "connect failed: %s", strerror(errno));
    want_ready = end;
    run_until(now_ns() + 30000000000LL, all_ready, NULL);
  }
  want_ready = n_conns;
  tr->conns_ok = (int)c_ready;
  if ((int)c_ready < n_conns) {
    snprintf(tr->error, sizeof tr->error, "only %llu of %d connections logged in", (unsigned long long)c_ready,
             n_conns);
    fprintf(stderr, "rtm_bench: %s\n", tr->error);
  } else {
    run_until(now_ns() + 1000000000LL, NULL, NULL); /* settle */
    long rss1 = rss_kb(server_pid);
    tr->kb_per_conn = (double)(rss1 - rss0) / n_conns;
    printf("  %-9s %d idle connections: server RSS %ld -> %ld KB, %.2f KB per connection\n", p->name, n_conns,
           rss0, rss1, tr->kb_per_conn);
    for (int i = 0; i < n_fan && !c_closed; i++) run_fanout(&tr->fan[tr->n_fan++], fanouts[i]);
    if (c_closed) snprintf(tr->error, sizeof tr->error, "%llu connections were closed during the run",
                           (unsigned long long)c_closed);
  }
  for (int i = 0; i < n_conns; i++) close_conn(&conns[i]);
  stop_server();
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv) {
  int fanouts[MAX_FANOUTS] = {10, 100, 1000}, n_fan = 3;
  const char *hudong = "./build/hudong", *mosq = "/usr/sbin/mosquitto", *only = NULL,
             *json = "bench/results/rtm.json";
  n_conns = 10000;
  payload_bytes = 64;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--conns") && v)
      n_conns = atoi(argv[++i]);
    else if (!strcmp(a, "--payload") && v)
      payload_bytes = (size_t)atoi(argv[++i]);
    else if (!strcmp(a, "--hudong") && v)
      hudong = argv[++i];
    else if (!strcmp(a, "--mosquitto") && v)
      mosq = argv[++i];
    else if (!strcmp(a, "--only") && v)
      only = argv[++i];
    else if (!strcmp(a, "--json") && v)
      json = argv[++i];
    else if (!strcmp(a, "--rates") && v) {
      for (char *s = argv[++i]; *s && n_fixed_rates < 8;) {
        fixed_rates[n_fixed_rates++] = strtod(s, &s);
        if (*s == ',') s++;
      }
    }
    else if (!strcmp(a, "--fanout") && v) {
      n_fan = 0;
      for (char *s = argv[++i]; *s && n_fan < MAX_FANOUTS;) {
        fanouts[n_fan++] = (int)strtol(s, &s, 10);
        if (*s == ',') s++;
      }
    } else {
      fprintf(stderr, "usage: rtm_bench [--conns N] [--fanout 10,100,1000] [--payload B] [--hudong PATH]\n"
                      "                 [--mosquitto PATH] [--only hudong|mosquitto] [--json FILE]\n"
                      "                 [--rates R1,R2,.. (fixed offered deliveries/s, no search)]\n");
      return 2;
    }
  }
  if (payload_bytes < 24 || payload_bytes > 4000 || n_conns < 2) {
    fprintf(stderr, "rtm_bench: --payload 24..4000, --conns >= 2\n");
    return 2;
  }
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if ((rlim_t)n_conns + 64 > rl.rlim_cur) {
    fprintf(stderr, "rtm_bench: %d connections need more than the %llu open files allowed\n", n_conns,
            (unsigned long long)rl.rlim_cur);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  ep = epoll_create1(0);
  conns = calloc((size_t)n_conns, sizeof *conns);
  t0_ns = now_ns();
  char tmp[] = "/tmp/rtm_bench.XXXXXX";
  if (!mkdtemp(tmp)) return 1;

  target_result_t res[2];
  memset(res, 0, sizeof res);
  int n_res = 0;

  if (!only || !strcmp(only, "hudong")) {
    int port = free_port();
    char cfg[256], log[256], listen[64];
    snprintf(cfg, sizeof cfg, "%s/hudong.json", tmp);
    snprintf(log, sizeof log, "%s/hudong.log", tmp);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    if (bench_hudong_write_config(cfg, listen) < 0) return 1;
    char *args[] = {(char *)hudong, "serve", "--config", cfg, NULL};
    run_target(&res[n_res++], &bench_proto_hudong, args, port, log, fanouts, n_fan);
  }
  if (!only || !strcmp(only, "mosquitto")) {
    int port = free_port();
    char cfg[256], log[256];
    snprintf(cfg, sizeof cfg, "%s/mosquitto.conf", tmp);
    snprintf(log, sizeof log, "%s/mosquitto.log", tmp);
    FILE *f = fopen(cfg, "w");
    if (!f) return 1;
    /* the reference as a user would run it for this load: no persistence, no
     * connection cap, queues deep enough for the bursts of the trials */
    fprintf(f,
            "listener %d 127.0.0.1\nallow_anonymous true\nmax_connections -1\npersistence false\n"
            "max_inflight_messages 0\nmax_queued_messages 100000\nset_tcp_nodelay true\nlog_dest stderr\nlog_type error\n",
            port);
    fclose(f);
    char *args[] = {(char *)mosq, "-c", cfg, NULL};
    run_target(&res[n_res++], &bench_proto_mqtt, args, port, log, fanouts, n_fan);
  }

  /* table */
  printf("\n| fan-out | target | max delivered msg/s | at 50%%: p50 ms | p99 ms | server CPU µs/delivery |\n"
         "|---|---|---|---|---|---|\n");
  for (int k = 0; k < n_fan; k++)
    for (int t = 0; t < n_res; t++) {
      if (k >= res[t].n_fan) continue;
      const fan_result_t *f = &res[t].fan[k];
      printf("| %d (%d channels) | %s | %.0f | %.2f | %.2f | %.2f |\n", f->fanout, f->channels, res[t].name,
             f->max_rate, f->p50, f->p99, f->cpu_per_msg_us);
    }
  for (int t = 0; t < n_res; t++)
    printf("%s: %.2f KB per idle connection (%d connections)%s%s\n", res[t].name, res[t].kb_per_conn,
           res[t].conns_ok, res[t].error[0] ? "; error: " : "", res[t].error);
  if (n_res == 2)
    for (int k = 0; k < n_fan && k < res[0].n_fan && k < res[1].n_fan; k++)
      if (res[1].fan[k].max_rate > 0)
        printf("fan-out %d: %s / %s max delivered rate = %.2f\n", fanouts[k], res[0].name, res[1].name,
               res[0].fan[k].max_rate / res[1].fan[k].max_rate);

  FILE *jf = fopen(json, "w");
  if (jf) {
    fprintf(jf, "{\"bench\":\"rtm\",\"conns\":%d,\"payload\":%zu,\"targets\":[", n_conns, payload_bytes);
    for (int t = 0; t < n_res; t++) {
      fprintf(jf, "%s{\"name\":\"%s\",\"conns_ok\":%d,\"kb_per_idle_conn\":%.3f,\"error\":\"%s\",\"fanout\":[",
              t ? "," : "", res[t].name, res[t].conns_ok, res[t].kb_per_conn, res[t].error);
      for (int k = 0; k < res[t].n_fan; k++) {
        const fan_result_t *f = &res[t].fan[k];
        fprintf(jf,
                "%s{\"subscribers\":%d,\"channels\":%d,\"max_delivered_per_s\":%.0f,\"at50_delivered_per_s\":%.0f,"
                "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"server_cpu_us_per_delivery\":%.3f,"
                "\"client_cpu_us_per_delivery\":%.3f}",
                k ? "," : "", f->fanout, f->channels, f->max_rate, f->at50_rate, f->p50, f->p99, f->cpu_per_msg_us,
                f->client_cpu_per_msg_us);
      }
      fprintf(jf, "]}");
    }
    fprintf(jf, "]}\n");
    fclose(jf);
    printf("wrote %s\n", json);
  }
  return 0;
}
