/* Benchmark of `hudong netem` (issue 4, goal: >= 100k packets/s on one core and
 * < 200 us added beyond the configured delay), 1200-byte packets:
 *  1. the link model in process: hd_netem_link_send + hd_netem_link_poll on a
 *     virtual clock, no impairment and a typical impairment set;
 *  2. the real relay (src/io/netem_relay.c on its own libuv loop and thread)
 *     over 127.0.0.1, no impairment: a paced sender and the sink (the relay's
 *     target) share the other thread; for each offered rate the delivered rate
 *     and the loss are reported (loss = relay or kernel socket drops);
 *  3. the latency the relay adds: timestamped probes at 1000/s through the
 *     relay with --delay 0 and --delay 10 ms, one-way (same clock), minus the
 *     configured delay; a direct sender->sink path is the reference.
 * Prints a table and writes bench/results/netem.json.
 * Usage: netem_bench [--seconds S] [--rates 50000,100000,...] [--json FILE] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "base/err.h"
#include "base/log.h"
#include "io/netem_relay.h"
#include "netem/link.h"

#define PKT 1200
#define BATCH 64
#define MAX_RATES 16

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* ---- 1. link model in process ---- */

typedef struct {
  const char *name;
  double pps, ns_per_pkt;
  unsigned long long in, out;
} link_result_t;

static void bench_link(link_result_t *res, const char *name, const hd_netem_params_t *p, double seconds) {
  hd_netem_link_t *l;
  if (hd_netem_link_new(&l, p, 1, 0) < 0) {
    fprintf(stderr, "link_new failed\n");
    exit(1);
  }
  uint8_t pkt[PKT];
  memset(pkt, 0x5a, sizeof pkt);
  hd_time_t t = 0;
  unsigned long long in = 0, out = 0;
  double start = now_s(), end = start + seconds, el;
  do {
    for (int i = 0; i < 10000; i++) {
      t += 10; /* 100k packets per virtual second */
      hd_netem_link_send(l, pkt, sizeof pkt, t);
      in++;
      const uint8_t *o;
      while (hd_netem_link_poll(l, t, &o) > 0)
        out++;
    }
    el = now_s() - start;
  } while (now_s() < end);
  hd_netem_link_free(l);
  res->name = name;
  res->in = in;
  res->out = out;
  res->pps = (double)in / el;
  res->ns_per_pkt = el * 1e9 / (double)in;
}

/* ---- relay on its own thread ---- */

typedef struct {
  uv_loop_t loop;
  uv_async_t stop;
  hd_netem_relay_t *relay;
  pthread_t th;
  hd_netem_stats_t up, down;
  int port;
  double cpu0, cpu; /* relay thread CPU seconds */
} relay_thr_t;

static double thread_cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_stop(uv_async_t *a) {
  relay_thr_t *t = a->data;
  t->cpu = thread_cpu() - t->cpu0;
  hd_netem_relay_stats(t->relay, &t->up, &t->down, NULL);
  hd_netem_relay_stop(t->relay);
  uv_close((uv_handle_t *)&t->stop, NULL);
}

static void *relay_main(void *arg) {
  relay_thr_t *t = arg;
  t->cpu0 = thread_cpu();
  uv_run(&t->loop, UV_RUN_DEFAULT);
  return NULL;
}

static void relay_start(relay_thr_t *t, int sink_port, double delay_ms) {
  memset(t, 0, sizeof *t);
  uv_loop_init(&t->loop);
  hd_netem_relay_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  hd_netem_opts_init(&cfg.opts);
  cfg.opts.dir[0].delay = cfg.opts.dir[1].delay = (hd_time_t)(delay_ms * 1000);
  cfg.opts.dir[0].max_packets = cfg.opts.dir[1].max_packets = 1 << 18;
  cfg.listen_host = "127.0.0.1";
  cfg.listen_port = 0;
  cfg.to_host = "127.0.0.1";
  cfg.to_port = sink_port;
  if (hd_netem_relay_start(&t->relay, &t->loop, &cfg) < 0) {
    fprintf(stderr, "relay start failed\n");
    exit(1);
  }
  t->port = hd_netem_relay_port(t->relay);
  uv_async_init(&t->loop, &t->stop, on_stop);
  t->stop.data = t;
  pthread_create(&t->th, NULL, relay_main, t);
}

static void relay_join(relay_thr_t *t) {
  uv_async_send(&t->stop);
  pthread_join(t->th, NULL);
  uv_loop_close(&t->loop);
}

static int udp_bind(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int sz = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
  bind(fd, (struct sockaddr *)&a, sizeof a);
  return fd;
}

static int port_of(int fd) {
  struct sockaddr_in a;
  socklen_t l = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &l);
  return ntohs(a.sin_port);
}

static struct sockaddr_in lo(int port) {
  struct sockaddr_in a = {
      .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  return a;
}

/* Drains the sink without blocking; returns packets read. Optionally records
 * one-way latencies from the timestamp in each packet. */
static unsigned long drain(int fd, double *lat, size_t *nlat, size_t cap) {
  static uint8_t bufs[BATCH][2048];
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  unsigned long got = 0;
  for (;;) {
    for (int i = 0; i < BATCH; i++) {
      iov[i].iov_base = bufs[i];
      iov[i].iov_len = sizeof bufs[i];
      memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) break;
    double t = now_s();
    for (int i = 0; i < n && lat; i++) {
      double sent;
      memcpy(&sent, bufs[i], sizeof sent);
      if (*nlat < cap) lat[(*nlat)++] = t - sent;
    }
    got += (unsigned long)n;
  }
  return got;
}

/* ---- 2. throughput through the relay ---- */

typedef struct {
  double offered, sent_pps, delivered_pps, loss_pct, relay_in_pps, relay_cpu_pct, pps_per_core;
  unsigned long long sent, delivered;
} tput_result_t;

static void bench_tput(tput_result_t *res, double rate, double seconds) {
  int sink = udp_bind(), snd = udp_bind();
  relay_thr_t rt;
  relay_start(&rt, port_of(sink), 0);
  struct sockaddr_in to = lo(rt.port);
  static uint8_t pkt[PKT];
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = pkt;
    iov[i].iov_len = PKT;
    memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &to;
    msgs[i].msg_hdr.msg_namelen = sizeof to;
  }
  unsigned long long sent = 0, got = 0;
  /* warm-up packet creates the session */
  sendto(snd, pkt, PKT, 0, (struct sockaddr *)&to, sizeof to);
  usleep(20000);
  drain(sink, NULL, NULL, 0);
  double start = now_s(), end = start + seconds, t;
  while ((t = now_s()) < end) {
    unsigned long long due = rate > 0 ? (unsigned long long)((t - start) * rate) : sent + BATCH;
    while (sent < due) {
      int want = due - sent > BATCH ? BATCH : (int)(due - sent);
      int n = sendmmsg(snd, msgs, (unsigned)want, MSG_DONTWAIT);
      if (n <= 0) break;
      sent += (unsigned long long)n;
    }
    got += drain(sink, NULL, NULL, 0);
  }
  double el = now_s() - start;
  double tail = now_s() + 0.2;
  while (now_s() < tail) {
    got += drain(sink, NULL, NULL, 0);
    usleep(1000);
  }
  relay_join(&rt);
  close(sink);
  close(snd);
  res->offered = rate;
  res->sent = sent;
  res->delivered = got;
  res->sent_pps = (double)sent / el;
  res->delivered_pps = (double)got / el;
  res->relay_in_pps = (double)rt.up.pkts_in / el;
  /* the relay thread's CPU over the run (incl. warm-up and tail: a slight overestimate) */
  res->relay_cpu_pct = 100.0 * rt.cpu / el;
  res->pps_per_core = rt.cpu > 0 ? (double)rt.up.pkts_out / rt.cpu : 0;
  res->loss_pct = sent ? 100.0 * (double)(sent - (got < sent ? got : sent)) / (double)sent : 0;
}

/* ---- 3. latency ---- */

typedef struct {
  const char *path;
  double delay_ms, p50_us, p99_us, added_p50_us, added_p99_us;
  size_t n;
} lat_result_t;

static void bench_latency(lat_result_t *res, const char *path, int via_relay, double delay_ms,
                          double seconds) {
  int sink = udp_bind(), snd = udp_bind();
  relay_thr_t rt;
  int port = port_of(sink);
  if (via_relay) {
    relay_start(&rt, port, delay_ms);
    port = rt.port;
  }
  struct sockaddr_in to = lo(port);
  size_t cap = (size_t)(seconds * 1000) + 16, n = 0;
  double *lat = calloc(cap, sizeof *lat);
  uint8_t pkt[PKT];
  memset(pkt, 0, sizeof pkt);
  double start = now_s(), next = start, end = start + seconds;
  while (now_s() < end) {
    double t = now_s();
    if (t >= next) {
      memcpy(pkt, &t, sizeof t);
      sendto(snd, pkt, PKT, 0, (struct sockaddr *)&to, sizeof to);
      next += 0.001;
    }
    struct pollfd p = {.fd = sink, .events = POLLIN};
    int ms = (int)((next - now_s()) * 1000);
    poll(&p, 1, ms < 0 ? 0 : ms);
    drain(sink, lat, &n, cap);
  }
  double tail = now_s() + delay_ms / 1000 + 0.05;
  while (now_s() < tail) {
    struct pollfd p = {.fd = sink, .events = POLLIN};
    poll(&p, 1, 5);
    drain(sink, lat, &n, cap);
  }
  if (via_relay) relay_join(&rt);
  close(sink);
  close(snd);
  qsort(lat, n, sizeof *lat, cmp_d);
  res->path = path;
  res->delay_ms = delay_ms;
  res->n = n;
  res->p50_us = n ? lat[n / 2] * 1e6 : 0;
  res->p99_us = n ? lat[(size_t)((double)n * 0.99)] * 1e6 : 0;
  res->added_p50_us = res->p50_us - delay_ms * 1000;
  res->added_p99_us = res->p99_us - delay_ms * 1000;
  free(lat);
}

int main(int argc, char **argv) {
  double seconds = 2;
  const char *json = "bench/results/netem.json";
  double rates[MAX_RATES] = {50000, 100000, 150000, 200000, 0};
  int n_rates = 5;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
      seconds = atof(argv[++i]);
    else if (!strcmp(argv[i], "--json") && i + 1 < argc)
      json = argv[++i];
    else if (!strcmp(argv[i], "--rates") && i + 1 < argc) {
      n_rates = 0;
      for (char *s = argv[++i]; *s && n_rates < MAX_RATES;) {
        rates[n_rates++] = strtod(s, &s);
        if (*s == ',')
          s++;
        else
          break;
      }
    } else {
      fprintf(stderr, "usage: netem_bench [--seconds S] [--rates 50000,100000,0(=unpaced)] [--json FILE]\n");
      return 2;
    }
  }
  hd_log_set_level(HD_LOG_WARN);

  link_result_t lr[2];
  hd_netem_params_t p;
  hd_netem_params_init(&p);
  bench_link(&lr[0], "no impairment", &p, seconds);
  p.delay = HD_MS(25);
  p.jitter = HD_MS(5);
  p.jitter_dist = HD_JITTER_NORMAL;
  p.loss = 0.01;
  p.rate_bps = 1000000000;
  p.queue_time = HD_MS(100);
  bench_link(&lr[1], "25ms+5ms normal jitter, 1% loss, 1 Gbit/s, 100ms queue", &p, seconds);
  printf("link model in process (1200-byte packets, virtual clock):\n");
  printf("  %-56s %12s %10s\n", "params", "packets/s", "ns/pkt");
  for (int i = 0; i < 2; i++)
    printf("  %-56s %12.0f %10.1f\n", lr[i].name, lr[i].pps, lr[i].ns_per_pkt);

  tput_result_t tr[MAX_RATES];
  printf("\nrelay over 127.0.0.1, no impairment (relay thread + sender/sink thread):\n");
  printf("  %12s %12s %12s %14s %8s %10s %14s\n", "offered/s", "sent/s", "relay in/s", "delivered/s", "loss%",
         "relay cpu%", "pkts/cpu-s");
  for (int i = 0; i < n_rates; i++) {
    bench_tput(&tr[i], rates[i], seconds);
    char off[32];
    if (rates[i] > 0)
      snprintf(off, sizeof off, "%.0f", rates[i]);
    else
      snprintf(off, sizeof off, "unpaced");
    printf("  %12s %12.0f %12.0f %14.0f %8.2f %10.1f %14.0f\n", off, tr[i].sent_pps, tr[i].relay_in_pps,
           tr[i].delivered_pps, tr[i].loss_pct, tr[i].relay_cpu_pct, tr[i].pps_per_core);
  }

  lat_result_t lt[3];
  bench_latency(&lt[0], "direct (no relay)", 0, 0, seconds);
  bench_latency(&lt[1], "relay --delay 0", 1, 0, seconds);
  bench_latency(&lt[2], "relay --delay 10", 1, 10, seconds);
  printf("\none-way latency, 1000 probes/s of 1200 bytes:\n");
  printf("  %-20s %10s %10s %10s %16s %16s\n", "path", "delay ms", "p50 us", "p99 us", "added p50 us",
         "added p99 us");
  for (int i = 0; i < 3; i++)
    printf("  %-20s %10.0f %10.1f %10.1f %16.1f %16.1f\n", lt[i].path, lt[i].delay_ms, lt[i].p50_us,
           lt[i].p99_us, lt[i].added_p50_us, lt[i].added_p99_us);

  FILE *f = fopen(json, "w");
  if (!f) {
    fprintf(stderr, "cannot write %s\n", json);
    return 1;
  }
  time_t wall = time(NULL);
  char date[32];
  strftime(date, sizeof date, "%Y-%m-%d", gmtime(&wall));
  fprintf(f, "{\n  \"bench\": \"netem\",\n  \"date\": \"%s\",\n  \"packet_bytes\": %d,\n  \"seconds\": %g,\n",
          date, PKT, seconds);
  fprintf(f, "  \"link\": [\n");
  for (int i = 0; i < 2; i++)
    fprintf(f, "    {\"params\": \"%s\", \"packets_per_s\": %.0f, \"ns_per_packet\": %.1f}%s\n", lr[i].name,
            lr[i].pps, lr[i].ns_per_pkt, i < 1 ? "," : "");
  fprintf(f, "  ],\n  \"relay_throughput\": [\n");
  for (int i = 0; i < n_rates; i++)
    fprintf(f,
            "    {\"offered_pps\": %.0f, \"sent_pps\": %.0f, \"relay_in_pps\": %.0f, \"delivered_pps\": "
            "%.0f, \"loss_pct\": %.3f, "
            "\"relay_cpu_pct\": %.1f, \"packets_per_cpu_second\": %.0f}%s\n",
            tr[i].offered, tr[i].sent_pps, tr[i].relay_in_pps, tr[i].delivered_pps, tr[i].loss_pct,
            tr[i].relay_cpu_pct, tr[i].pps_per_core, i < n_rates - 1 ? "," : "");
  fprintf(f, "  ],\n  \"latency\": [\n");
  for (int i = 0; i < 3; i++)
    fprintf(f,
            "    {\"path\": \"%s\", \"delay_ms\": %.0f, \"probes\": %zu, \"p50_us\": %.1f, \"p99_us\": %.1f, "
            "\"added_p50_us\": %.1f, \"added_p99_us\": %.1f}%s\n",
            lt[i].path, lt[i].delay_ms, lt[i].n, lt[i].p50_us, lt[i].p99_us, lt[i].added_p50_us,
            lt[i].added_p99_us, i < 2 ? "," : "");
  fprintf(f, "  ]\n}\n");
  fclose(f);
  printf("\nwrote %s\n", json);
  return 0;
}
