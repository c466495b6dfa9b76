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
#define MAX_TARGETS 6
#define MAX_REPEATS 9
#define MAX_STEPS 16
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

void bench_flush(bench_conn_t *c) { flush(c); }

int bench_write(bench_conn_t *c, const void *p, size_t n) {
  if (c->fd < 0) return -1;
  if (c->wlen + n > c->wcap) {
    size_t cap = c->wcap ? c->wcap : 4096;
    while (cap < c->wlen + n)
      cap *= 2;
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
  while (i < n && payload[i] >= '0' && payload[i] <= '9')
    sent = sent * 10 + (payload[i++] - '0');
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
    c->proto->hello(c);
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
      if (c->proto->parse(c, &used) < 0) {
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
    if (c->fd >= 0 && c->proto->after_read) c->proto->after_read(c);
  }
  if (c->fd >= 0) flush(c);
}

/* Turns the event loop until deadline (ns) or until done() says so. */
static void run_until(int64_t deadline, int (*done)(void), void (*tick)(int64_t)) {
  struct epoll_event evs[512];
  for (;;) {
    int64_t t = now_ns();
    if (tick) tick(t);
    if (proto && proto->poll) proto->poll(t);
    if (done && done()) return;
    if (t >= deadline) return;
    int n = epoll_wait(ep, evs, 512, 1);
    for (int i = 0; i < n; i++)
      on_io(evs[i].data.ptr, evs[i].events);
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
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
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
  for (int i = 0; i < 1200; i++) { /* 30 s: a server under valgrind starts slowly */
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
    for (int i = 0; i < 100 && waitpid(server_pid, &st, WNOHANG) == 0; i++)
      usleep(50000);
    if (waitpid(server_pid, &st, WNOHANG) == 0) {
      kill(server_pid, SIGKILL);
      waitpid(server_pid, &st, 0);
    }
  }
  server_pid = 0;
}

/* ------------------------------------------------------------ targets */

typedef struct {
  double rate;                /* offered deliveries/s */
  int n;                      /* repeats run */
  double cpu_us[MAX_REPEATS]; /* server CPU per delivered message */
  double complete[MAX_REPEATS], p50[MAX_REPEATS], p99[MAX_REPEATS], delivered[MAX_REPEATS];
  double load0[MAX_REPEATS], load1[MAX_REPEATS]; /* 1-min load average before / after */
  int pass;                                      /* the median trial passed */
} step_t;

typedef struct {
  int fanout, channels;
  double setup_cpu_s, quiet_after_s; /* subscribing everyone: server CPU, time until quiet */
  int n_steps;
  step_t steps[MAX_STEPS];
  double max_rate; /* the highest offered rate whose median trial passed */
} fan_result_t;

typedef struct {
  const bench_proto_t *proto;
  const char *guarantee;
  pid_t pid;
  int port;
  int port2;      /* hudong-2n: odd connections go to the second node */
  pid_t extra[2]; /* hudong-2n: the second node and redis-server (their CPU counts too) */
  int n_extra;
  bench_conn_t *conns;
  int conns_ok;
  double kb_per_conn;
  int alive; /* still on the ladder */
  fan_result_t fan[MAX_FANOUTS];
  char error[256];
} target_t;

static target_t targets[MAX_TARGETS];
static int n_targets;

static pid_t cur_extra[2];
static int cur_n_extra;

static void use(target_t *t) {
  proto = t->proto;
  conns = t->conns;
  server_pid = t->pid;
  cur_n_extra = t->n_extra;
  memcpy(cur_extra, t->extra, sizeof cur_extra);
}

/* The current target's server CPU: all its processes. */
static double srv_cpu(void) {
  double c = cpu_s(server_pid);
  for (int i = 0; i < cur_n_extra; i++)
    c += cpu_s(cur_extra[i]);
  return c;
}

static double load1m(void) {
  FILE *f = fopen("/proc/loadavg", "r");
  double l = -1;
  if (f) {
    if (fscanf(f, "%lf", &l) != 1) l = -1;
    fclose(f);
  }
  return l;
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
    while ((size_t)len < payload_bytes && len < (int)sizeof msg - 1)
      msg[len++] = 'x';
    msg[len] = 0;
    if (c->fd >= 0) {
      proto->publish(c, ch, cur_fanout, msg, (size_t)len);
      flush(c);
    }
    published++;
  }
}

typedef struct {
  double delivered_rate, complete, p50, p99, server_cpu, client_cpu;
} trial_t;

/* Waits until the current server is quiet: under 2% of a core over 500 ms
 * (at most max_s). Returns the seconds waited. */
static double wait_quiet(double max_s) {
  int64_t start = now_ns(), end = start + (int64_t)(max_s * 1e9);
  for (;;) {
    double c0 = srv_cpu();
    run_until(now_ns() + 500000000LL, NULL, NULL);
    double c1 = srv_cpu();
    if (c1 - c0 < 0.01 || now_ns() >= end) break;
  }
  return (double)(now_ns() - start) / 1e9;
}

/* One trial: publish at rate (deliveries/s = rate * fanout) for secs, then
 * drain for up to 1 s. The server's CPU is counted until its backlog is
 * worked off (deliveries stop), so a server that defers work is charged. */
static trial_t trial(double deliveries_per_s, double secs) {
  trial_t r = {0};
  hist_reset();
  c_delivered = c_delivered_in_window = 0;
  published = 0;
  pub_rate = deliveries_per_s / cur_fanout;
  double cpu0 = srv_cpu(), self0 = self_cpu_s();
  pub_start = now_ns();
  window_start_ns = pub_start;
  pub_end = pub_start + (int64_t)(secs * 1e9);
  run_until(pub_end, NULL, pub_tick);
  uint64_t expected = published * (uint64_t)cur_fanout;
  int64_t drain_end = pub_end + 1000000000LL;
  while (now_ns() < drain_end && c_delivered_in_window < expected)
    run_until(now_ns() + 5000000, NULL, NULL);
  pub_start = 0;
  r.complete = expected ? (double)c_delivered_in_window / (double)expected : 0;
  r.delivered_rate = (double)c_delivered_in_window / secs;
  r.p50 = hist_pct(0.50);
  r.p99 = hist_pct(0.99);
  /* an overloaded server still works off its backlog: wait until deliveries
   * stop (200 ms quiet, at most 15 s) so the next trial starts clean */
  int64_t quiet_end = now_ns() + 15000000000LL;
  while (now_ns() < quiet_end && now_ns() - last_delivery_ns < 200000000LL)
    run_until(now_ns() + 20000000, NULL, NULL);
  r.server_cpu = srv_cpu() - cpu0;
  r.client_cpu = self_cpu_s() - self0;
  return r;
}

static int ok_trial(double complete, double p99) { return complete >= 0.999 && p99 < 200; }

static double median(const double *v, int n) {
  double s[MAX_REPEATS];
  memcpy(s, v, (size_t)n * sizeof *v);
  for (int i = 1; i < n; i++)
    for (int k = i; k > 0 && s[k] < s[k - 1]; k--) {
      double x = s[k];
      s[k] = s[k - 1];
      s[k - 1] = x;
    }
  return n ? (n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2) : 0;
}
static double vmin(const double *v, int n) {
  double m = n ? v[0] : 0;
  for (int i = 1; i < n; i++)
    m = v[i] < m ? v[i] : m;
  return m;
}
static double vmax(const double *v, int n) {
  double m = n ? v[0] : 0;
  for (int i = 1; i < n; i++)
    m = v[i] > m ? v[i] : m;
  return m;
}

static int repeats = 3, max_steps = 10;
static double ladder_start = 0, ladder_factor = 1.5, trial_secs = 2.0;
static double fixed_rates[MAX_STEPS];
static int n_fixed_rates;

/* Subscribes every non-publisher member of every channel of target t, then
 * waits for its server to be quiet (the set-up must not leak into trials). */
static void setup_fanout(target_t *t, int k, int fanout) {
  use(t);
  fan_result_t *fr = &t->fan[k];
  cur_fanout = fanout;
  n_channels = n_conns / (fanout + 1);
  fr->fanout = fanout;
  fr->channels = n_channels;
  c_subscribed = 0;
  want_subscribed = 0;
  double cpu0 = srv_cpu();
  for (int ch = 0; ch < n_channels; ch++)
    for (int m = 1; m <= fanout; m++) {
      bench_conn_t *c = &conns[ch * (fanout + 1) + m];
      proto->subscribe(c, ch, fanout);
      flush(c);
      want_subscribed++;
    }
  run_until(now_ns() + 60000000000LL, all_subscribed, NULL);
  if ((int)c_subscribed < want_subscribed) {
    snprintf(t->error, sizeof t->error, "only %llu of %d subscriptions confirmed at fan-out %d",
             (unsigned long long)c_subscribed, want_subscribed, fanout);
    fprintf(stderr, "rtm_bench: %s: %s\n", proto->name, t->error);
    t->alive = 0;
    return;
  }
  fr->quiet_after_s = wait_quiet(60);
  fr->setup_cpu_s = srv_cpu() - cpu0;
  printf("  %-9s fan-out %4d: %d subscriptions, set-up took %.2f s of server CPU, quiet %.1f s after\n",
         proto->name, fanout, want_subscribed, fr->setup_cpu_s, fr->quiet_after_s);
  fflush(stdout);
}

/* The ladder of one fan-out: each step runs every target still on it, in an
 * order that rotates per repeat (A B C, B C A, C A B: each system runs early
 * and late under the same background), `repeats` times; a target leaves the
 * ladder at the first step whose median trial fails. */
static void run_ladder(int k, int fanout) {
  double rate = n_fixed_rates ? fixed_rates[0] : ladder_start > 0 ? ladder_start : 10000;
  for (int step = 0; step < max_steps; step++) {
    if (n_fixed_rates) {
      if (step >= n_fixed_rates) break;
      rate = fixed_rates[step];
    }
    int order[MAX_TARGETS], n = 0;
    for (int i = 0; i < n_targets; i++)
      if (targets[i].alive) order[n++] = i;
    if (!n) break;
    for (int rep = 0; rep < repeats; rep++)
      for (int j = 0; j < n; j++) {
        target_t *t = &targets[order[(j + rep) % n]];
        use(t);
        cur_fanout = fanout;
        n_channels = t->fan[k].channels;
        step_t *s = &t->fan[k].steps[step];
        s->rate = rate;
        c_closed = 0;
        s->load0[rep] = load1m();
        trial_t tr = trial(rate, trial_secs);
        s->load1[rep] = load1m();
        s->cpu_us[rep] = tr.delivered_rate > 0 ? tr.server_cpu / (tr.delivered_rate * trial_secs) * 1e6 : 0;
        s->complete[rep] = tr.complete;
        s->p50[rep] = tr.p50;
        s->p99[rep] = tr.p99;
        s->delivered[rep] = tr.delivered_rate;
        s->n = rep + 1;
        printf("  %-9s fan-out %4d offered %8.0f/s rep %d: delivered %8.0f/s complete %6.2f%% p50 %7.2f ms "
               "p99 %7.2f "
               "ms, server CPU %.2f us/delivery (client %.2f s), load %.2f -> %.2f\n",
               proto->name, fanout, rate, rep + 1, tr.delivered_rate, 100 * tr.complete, tr.p50, tr.p99,
               s->cpu_us[rep], tr.client_cpu, s->load0[rep], s->load1[rep]);
        fflush(stdout);
        if (c_closed) {
          snprintf(t->error, sizeof t->error, "connections closed at fan-out %d, %.0f/s", fanout, rate);
          t->alive = 0;
        }
      }
    for (int j = 0; j < n; j++) {
      target_t *t = &targets[order[j]];
      fan_result_t *fr = &t->fan[k];
      step_t *s = &fr->steps[step];
      fr->n_steps = step + 1;
      s->pass = t->alive && ok_trial(median(s->complete, s->n), median(s->p99, s->n));
      if (s->pass)
        fr->max_rate = rate;
      else
        t->alive = 0;
    }
    rate *= ladder_factor;
  }
}

static void connect_target(target_t *t) {
  use(t);
  long rss0 = rss_kb(t->pid);
  c_ready = c_closed = c_errors = 0;
  for (int i = 0; i < n_conns; i++) {
    memset(&conns[i], 0, sizeof conns[i]);
    conns[i].idx = i;
    conns[i].fd = -1;
    conns[i].proto = t->proto;
  }
  for (int i = 0; i < n_conns; i += 500) { /* in waves: the listen backlog never overflows */
    int end = i + 500 < n_conns ? i + 500 : n_conns;
    for (int k = i; k < end; k++)
      if (open_conn(&conns[k], t->port2 && (k & 1) ? t->port2 : t->port) < 0)
        bench_fail(&conns[k], "connect failed: %s", strerror(errno));
    want_ready = end;
    run_until(now_ns() + 30000000000LL, all_ready, NULL);
  }
  t->conns_ok = (int)c_ready;
  if ((int)c_ready < n_conns) {
    snprintf(t->error, sizeof t->error, "only %llu of %d connections ready", (unsigned long long)c_ready,
             n_conns);
    fprintf(stderr, "rtm_bench: %s: %s\n", t->proto->name, t->error);
    t->alive = 0;
    return;
  }
  wait_quiet(10);
  long rss1 = rss_kb(t->pid);
  t->kb_per_conn = (double)(rss1 - rss0) / n_conns;
  printf("  %-9s %d idle connections: server RSS %ld -> %ld KB, %.2f KB per connection\n", t->proto->name,
         n_conns, rss0, rss1, t->kb_per_conn);
  t->alive = 1;
}

static int add_target(const bench_proto_t *p, const char *guarantee, char *const argv[], int port,
                      int listen_port, const char *log) {
  target_t *t = &targets[n_targets];
  memset(t, 0, sizeof *t);
  t->proto = p;
  t->guarantee = guarantee;
  t->port = listen_port;
  t->conns = calloc((size_t)n_conns, sizeof *t->conns);
  if (start_server(argv, port, log) < 0) return -1;
  t->pid = server_pid;
  if (port != listen_port)
    for (int i = 0; i < 200 && !port_open(listen_port); i++)
      usleep(25000);
  n_targets++;
  return 0;
}

/* ------------------------------------------------------------ main */

static int has(const char *list, const char *name) {
  if (!list) return 1;
  size_t n = strlen(name);
  for (const char *p = list; (p = strstr(p, name)); p += n)
    if ((p == list || p[-1] == ',') && (p[n] == 0 || p[n] == ',')) return 1;
  return 0;
}

int main(int argc, char **argv) {
  int fanouts[MAX_FANOUTS] = {10, 100, 1000}, n_fan = 3;
  const char *hudong = "./build/hudong", *mosq = "/usr/sbin/mosquitto", *nats = "/usr/sbin/nats-server",
             *only = NULL, *json = "bench/results/rtm.json", *base = NULL;
  int ack_ms = 0; /* one ack per read burst; 100 = the shipped clients (docs/performance.md "RTM, round 3") */
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
    else if (!strcmp(a, "--nats") && v)
      nats = argv[++i];
    else if (!strcmp(a, "--base") && v)
      base = argv[++i];
    else if (!strcmp(a, "--ack-ms") && v)
      ack_ms = atoi(argv[++i]);
    else if (!strcmp(a, "--only") && v)
      only = argv[++i];
    else if (!strcmp(a, "--json") && v)
      json = argv[++i];
    else if (!strcmp(a, "--repeat") && v)
      repeats = atoi(argv[++i]);
    else if (!strcmp(a, "--steps") && v)
      max_steps = atoi(argv[++i]);
    else if (!strcmp(a, "--start") && v)
      ladder_start = atof(argv[++i]);
    else if (!strcmp(a, "--factor") && v)
      ladder_factor = atof(argv[++i]);
    else if (!strcmp(a, "--secs") && v)
      trial_secs = atof(argv[++i]);
    else if (!strcmp(a, "--rates") && v) {
      for (char *s = argv[++i]; *s && n_fixed_rates < MAX_STEPS;) {
        fixed_rates[n_fixed_rates++] = strtod(s, &s);
        if (*s == ',') s++;
      }
    } else if (!strcmp(a, "--fanout") && v) {
      n_fan = 0;
      for (char *s = argv[++i]; *s && n_fan < MAX_FANOUTS;) {
        fanouts[n_fan++] = (int)strtol(s, &s, 10);
        if (*s == ',') s++;
      }
    } else {
      fprintf(stderr,
              "usage: rtm_bench [--conns N] [--fanout 10,100,1000] [--payload B] [--repeat R (3)]\n"
              "                 [--start DELIVERIES/S (10000)] [--factor F (1.5)] [--steps N (10)] "
              "[--secs S (2)]\n"
              "                 [--rates R1,R2,.. (fixed ladder)] [--hudong PATH] [--mosquitto PATH] "
              "[--nats PATH]\n"
              "                 [--base PATH (a second hudong binary, e.g. before a change: target "
              "hudong-base)]\n"
              "                 [--ack-ms MS (hudong clients ack every 32 messages or MS after the first "
              "unacked, 100 as the shipped clients; 0 = once per read burst)]\n"
              "                 [--only hudong,mosquitto,nats-tcp,nats-ws,hudong-2n (two cluster "
              "nodes + redis)]\n"
              "                 [--json FILE]\n");
      return 2;
    }
  }
  if (payload_bytes < 24 || payload_bytes > 4000 || n_conns < 2 || repeats < 1 || repeats > MAX_REPEATS ||
      max_steps < 1 || max_steps > MAX_STEPS || ladder_factor <= 1 || ack_ms < 0 || ack_ms > 10000) {
    fprintf(
        stderr,
        "rtm_bench: --payload 24..4000, --conns >= 2, --repeat 1..%d, --steps 1..%d, --factor > 1, --ack-ms "
        "0..10000\n",
        MAX_REPEATS, MAX_STEPS);
    return 2;
  }
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  int want_t = has(only, "hudong") + has(only, "mosquitto") + has(only, "nats-tcp") + has(only, "nats-ws") +
               (only && has(only, "hudong-2n")) + (base != NULL);
  if ((rlim_t)n_conns * (rlim_t)want_t + 64 > rl.rlim_cur) {
    fprintf(stderr, "rtm_bench: %d connections per target need more than the %llu open files allowed\n",
            n_conns, (unsigned long long)rl.rlim_cur);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  bench_hudong_set_ack(32, ack_ms);
  if (ack_ms)
    printf("== hudong clients ack every 32 messages or %d ms after the first unacked (--ack-ms)\n", ack_ms);
  else
    printf("== hudong clients ack once per read burst (--ack-ms 0)\n");
  ep = epoll_create1(0);
  t0_ns = now_ns();
  char tmp[] = "/tmp/rtm_bench.XXXXXX";
  if (!mkdtemp(tmp)) return 1;

  /* every server runs during the whole benchmark (idle while another is
   * measured), so that the steps can alternate between them */
  if (has(only, "hudong")) {
    int port = free_port();
    char cfg[256], log[256], listen[64];
    snprintf(cfg, sizeof cfg, "%s/hudong.json", tmp);
    snprintf(log, sizeof log, "%s/hudong.log", tmp);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    if (bench_hudong_write_config(cfg, listen) < 0) return 1;
    char *args[] = {(char *)hudong, "serve", "--config", cfg, NULL};
    bench_proto_set_port(port);
    if (add_target(&bench_proto_hudong,
                   "JSON over WebSocket; every delivery acked, kept until acked, resumable (exactly-once)",
                   args, port, port, log) < 0)
      return 1;
  }
  if (base) { /* the same load on another build of hudong, alternating with the first */
    int port = free_port();
    char cfg[256], log[256], listen[64];
    snprintf(cfg, sizeof cfg, "%s/hudong-base.json", tmp);
    snprintf(log, sizeof log, "%s/hudong-base.log", tmp);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    if (bench_hudong_write_config(cfg, listen) < 0) return 1;
    char *args[] = {(char *)base, "serve", "--config", cfg, NULL};
    if (add_target(&bench_proto_hudong_base, "as hudong, another build (--base)", args, port, port, log) < 0)
      return 1;
  }
  if (has(only, "mosquitto")) {
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
            "max_inflight_messages 0\nmax_queued_messages 100000\nset_tcp_nodelay true\nlog_dest "
            "stderr\nlog_type "
            "error\n",
            port);
    fclose(f);
    char *args[] = {(char *)mosq, "-c", cfg, NULL};
    if (add_target(&bench_proto_mqtt,
                   "binary MQTT 3.1.1 over TCP, QoS 1 (PUBACK per delivery, at-least-once)", args, port, port,
                   log) < 0)
      return 1;
  }
  if (has(only, "nats-tcp") || has(only, "nats-ws")) {
    int port = free_port(), wsport = free_port();
    char cfg[256], log[256];
    snprintf(cfg, sizeof cfg, "%s/nats.conf", tmp);
    snprintf(log, sizeof log, "%s/nats.log", tmp);
    FILE *f = fopen(cfg, "w");
    if (!f) return 1;
    /* core NATS as shipped, both listeners; max_pending deep enough for the
     * trials' bursts (its default drops a slow consumer at 64 MB) */
    fprintf(f,
            "listen: 127.0.0.1:%d\nmax_connections: 1000000\nmax_pending: 1GB\nwrite_deadline: \"30s\"\n"
            "websocket {\n  listen: \"127.0.0.1:%d\"\n  no_tls: true\n}\n",
            port, wsport);
    fclose(f);
    char *args[] = {(char *)nats, "-c", cfg, NULL};
    bench_nats_set_ws_port(wsport);
    if (has(only, "nats-tcp") &&
        add_target(&bench_proto_nats,
                   "core NATS text protocol over TCP, at-most-once (no acks, no redelivery)", args, port,
                   port, log) < 0)
      return 1;
    if (has(only, "nats-ws")) {
      if (has(only, "nats-tcp")) { /* one nats-server serves both listeners */
        targets[n_targets] = targets[n_targets - 1];
        targets[n_targets].proto = &bench_proto_nats_ws;
        targets[n_targets].guarantee = "core NATS over WebSocket, at-most-once (no acks, no redelivery)";
        targets[n_targets].port = wsport;
        targets[n_targets].conns = calloc((size_t)n_conns, sizeof *targets[n_targets].conns);
        n_targets++;
      } else if (add_target(&bench_proto_nats_ws,
                            "core NATS over WebSocket, at-most-once (no acks, no redelivery)", args, port,
                            wsport, log) < 0) {
        return 1;
      }
    }
  }
  if (only && has(only, "hudong-2n")) { /* two nodes of a cluster: RTM across nodes (docs/overlay.md) */
    int rport = free_port(), pa = free_port(), pb = free_port();
    char rlog[256], rps[16], url[64], cfga[256], cfgb[256], loga[256], logb[256], la[64], lb[64];
    snprintf(rlog, sizeof rlog, "%s/redis.log", tmp);
    snprintf(rps, sizeof rps, "%d", rport);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", rport);
    snprintf(cfga, sizeof cfga, "%s/hudong-a.json", tmp);
    snprintf(cfgb, sizeof cfgb, "%s/hudong-b.json", tmp);
    snprintf(loga, sizeof loga, "%s/hudong-a.log", tmp);
    snprintf(logb, sizeof logb, "%s/hudong-b.log", tmp);
    snprintf(la, sizeof la, "127.0.0.1:%d", pa);
    snprintf(lb, sizeof lb, "127.0.0.1:%d", pb);
    char *rargs[] = {"/usr/bin/redis-server", "--port", rps,     "--bind", "127.0.0.1", "--save", "",
                     "--appendonly",          "no",     "--dir", tmp,      NULL};
    if (start_server(rargs, rport, rlog) < 0) return 1;
    pid_t redis_pid = server_pid;
    if (bench_hudong_write_config(cfga, la) < 0 || bench_hudong_write_config(cfgb, lb) < 0) return 1;
    char *bargs[] = {(char *)hudong, "serve", "--config", cfgb, "--redis", url, "--node-id", "b", NULL};
    if (start_server(bargs, pb, logb) < 0) return 1;
    pid_t b_pid = server_pid;
    char *aargs[] = {(char *)hudong, "serve", "--config", cfga, "--redis", url, "--node-id", "a", NULL};
    if (add_target(&bench_proto_hudong_2n,
                   "as hudong, connections alternating between two nodes of a cluster (Redis-sequenced "
                   "channel logs)",
                   aargs, pa, pa, loga) < 0)
      return 1;
    targets[n_targets - 1].port2 = pb;
    targets[n_targets - 1].extra[0] = b_pid;
    targets[n_targets - 1].extra[1] = redis_pid;
    targets[n_targets - 1].n_extra = 2;
    usleep(1500000); /* the two nodes see each other in the registry */
  }
  printf("== %d targets, %d connections each, payload %zu B, %d repeats per step\n", n_targets, n_conns,
         payload_bytes, repeats);
  for (int i = 0; i < n_targets; i++)
    connect_target(&targets[i]);
  for (int k = 0; k < n_fan; k++) {
    printf("== fan-out %d\n", fanouts[k]);
    for (int i = 0; i < n_targets; i++)
      if (targets[i].alive || !targets[i].error[0]) {
        targets[i].alive = !targets[i].error[0];
        if (targets[i].alive) setup_fanout(&targets[i], k, fanouts[k]);
      }
    run_ladder(k, fanouts[k]);
    for (int i = 0; i < n_targets; i++)
      if (!targets[i].error[0]) targets[i].alive = 1; /* back on the next fan-out's ladder */
  }

  /* tables: per fan-out, per step: CPU per delivery (median [range]) */
  printf("\nServer CPU per delivered message (µs; median [min-max] of %d repeats), median complete %%, "
         "median p99 "
         "ms; a step fails when the median is < 99.9%% complete or p99 >= 200 ms\n",
         repeats);
  for (int k = 0; k < n_fan; k++) {
    printf("\nfan-out %d\n| offered deliveries/s |", fanouts[k]);
    for (int i = 0; i < n_targets; i++)
      printf(" %s |", targets[i].proto->name);
    printf("\n|---|");
    for (int i = 0; i < n_targets; i++)
      printf("---|");
    printf("\n");
    int steps = 0;
    for (int i = 0; i < n_targets; i++)
      steps = targets[i].fan[k].n_steps > steps ? targets[i].fan[k].n_steps : steps;
    for (int s = 0; s < steps; s++) {
      double rate = 0;
      for (int i = 0; i < n_targets; i++)
        if (targets[i].fan[k].n_steps > s) rate = targets[i].fan[k].steps[s].rate;
      printf("| %.0f |", rate);
      for (int i = 0; i < n_targets; i++) {
        const step_t *st = &targets[i].fan[k].steps[s];
        if (targets[i].fan[k].n_steps <= s || !st->n) {
          printf(" — |");
          continue;
        }
        printf(" %.2f [%.2f-%.2f], %.1f%%, p99 %.1f%s |", median(st->cpu_us, st->n), vmin(st->cpu_us, st->n),
               vmax(st->cpu_us, st->n), 100 * median(st->complete, st->n), median(st->p99, st->n),
               st->pass ? "" : " FAIL");
      }
      printf("\n");
    }
    printf("max passing offered rate:");
    for (int i = 0; i < n_targets; i++)
      printf(" %s %.0f/s (set-up CPU %.2f s);", targets[i].proto->name, targets[i].fan[k].max_rate,
             targets[i].fan[k].setup_cpu_s);
    printf("\n");
  }
  for (int i = 0; i < n_targets; i++)
    printf("%s: %.2f KB per idle connection (%d connections); %s%s%s\n", targets[i].proto->name,
           targets[i].kb_per_conn, targets[i].conns_ok, targets[i].guarantee,
           targets[i].error[0] ? "; error: " : "", targets[i].error);

  FILE *jf = fopen(json, "w");
  if (jf) {
    fprintf(jf, "{\"bench\":\"rtm\",\"conns\":%d,\"payload\":%zu,\"repeats\":%d,\"targets\":[", n_conns,
            payload_bytes, repeats);
    for (int i = 0; i < n_targets; i++) {
      const target_t *t = &targets[i];
      fprintf(
          jf,
          "%s{\"name\":\"%s\",\"guarantee\":\"%s\",\"kb_per_idle_conn\":%.3f,\"error\":\"%s\",\"fanout\":[",
          i ? "," : "", t->proto->name, t->guarantee, t->kb_per_conn, t->error);
      for (int k = 0; k < n_fan; k++) {
        const fan_result_t *f = &t->fan[k];
        fprintf(jf,
                "%s{\"subscribers\":%d,\"channels\":%d,\"setup_cpu_s\":%.3f,\"max_passing_rate\":%.0f,"
                "\"steps\":[",
                k ? "," : "", f->fanout, f->channels, f->setup_cpu_s, f->max_rate);
        for (int s = 0; s < f->n_steps; s++) {
          const step_t *st = &f->steps[s];
          fprintf(jf, "%s{\"offered\":%.0f,\"pass\":%s,\"cpu_us_per_delivery\":[", s ? "," : "", st->rate,
                  st->pass ? "true" : "false");
          for (int r = 0; r < st->n; r++)
            fprintf(jf, "%s%.3f", r ? "," : "", st->cpu_us[r]);
          fprintf(jf, "],\"complete\":[");
          for (int r = 0; r < st->n; r++)
            fprintf(jf, "%s%.5f", r ? "," : "", st->complete[r]);
          fprintf(jf, "],\"p99_ms\":[");
          for (int r = 0; r < st->n; r++)
            fprintf(jf, "%s%.3f", r ? "," : "", st->p99[r]);
          fprintf(jf, "],\"load_before\":[");
          for (int r = 0; r < st->n; r++)
            fprintf(jf, "%s%.2f", r ? "," : "", st->load0[r]);
          fprintf(jf, "],\"load_after\":[");
          for (int r = 0; r < st->n; r++)
            fprintf(jf, "%s%.2f", r ? "," : "", st->load1[r]);
          fprintf(jf, "]}");
        }
        fprintf(jf, "]}");
      }
      fprintf(jf, "]}");
    }
    fprintf(jf, "]}\n");
    fclose(jf);
    printf("wrote %s\n", json);
  }
  for (int i = 0; i < n_targets; i++) {
    if (i && targets[i].pid == targets[i - 1].pid) continue;
    for (int k = 0; k < targets[i].n_extra; k++) {
      server_pid = targets[i].extra[k];
      stop_server();
    }
    server_pid = targets[i].pid;
    stop_server();
  }
  return 0;
}
