/* Real-time integration test of `hudong netem` on 127.0.0.1 (issue 4): spawns
 * the relay in front of a UDP echo peer written here, and checks
 *   - --delay 25 each way → mean RTT 50 ± 5 ms over 200 probes; then 50 ms on
 *     the up direction only (0 down, set live) → 50 ± 5 ms again;
 *   - a live {"up":{"rate":2000}} holds 2000 kbit/s ± 5% under saturating load;
 *   - POST /impair to 100% loss stops traffic, back to 0 resumes it;
 *   - blackout_now_ms drops what is sent inside the window only;
 *   - a second client gets its own session;
 *   - GET /stats is JSON whose counters match what was sent and echoed;
 *   - SIGTERM → exit 0 with the stats printed.
 * usage: netem_itest <hudong binary>. Runs in about 10 s. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support/free_port.h"

static int failures;
#define CHECK(cond, ...)                                                                                     \
  do {                                                                                                       \
    if (!(cond)) {                                                                                           \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                                   \
      fprintf(stderr, __VA_ARGS__);                                                                          \
      fprintf(stderr, "\n");                                                                                 \
      failures++;                                                                                            \
    }                                                                                                        \
  } while (0)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct sockaddr_in lo(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static int bound_port(int fd) {
  struct sockaddr_in a;
  socklen_t l = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &l);
  return ntohs(a.sin_port);
}

static int udp_socket(int port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = lo(port);
  int sz = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    perror("bind");
    exit(1);
  }
  return fd;
}

/* ---- echo peer ---- */
static int echo_fd;
static atomic_ulong echo_count;
static atomic_int echo_stop;

static void *echo_main(void *arg) {
  (void)arg;
  uint8_t buf[2048];
  while (!atomic_load(&echo_stop)) {
    struct pollfd p = {.fd = echo_fd, .events = POLLIN};
    if (poll(&p, 1, 50) <= 0) continue;
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(echo_fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    if (n <= 0) continue;
    atomic_fetch_add(&echo_count, 1);
    sendto(echo_fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
  }
  return NULL;
}

/* ---- HTTP client for the control endpoint ---- */
static int ctl_port;

static int http(const char *method, const char *path, const char *body, char *out, size_t cap) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = lo(ctl_port);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  char req[4096];
  int n =
      snprintf(req, sizeof req,
               "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n"
               "Content-Length: %zu\r\n\r\n%s",
               method, path, body ? strlen(body) : 0, body ? body : "");
  if (write(fd, req, (size_t)n) != n) {
    close(fd);
    return -1;
  }
  size_t got = 0;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 3000) <= 0) break;
    ssize_t r = read(fd, out + got, cap - 1 - got);
    if (r <= 0) break;
    got += (size_t)r;
    if (got >= cap - 1) break;
  }
  close(fd);
  out[got] = 0;
  int status = 0;
  if (sscanf(out, "HTTP/1.%*d %d", &status) != 1) return -1;
  char *b = strstr(out, "\r\n\r\n");
  if (b) memmove(out, b + 4, strlen(b + 4) + 1);
  return status;
}

static int impair(const char *json) {
  char out[8192];
  int st = http("POST", "/impair", json, out, sizeof out);
  CHECK(st == 200, "POST /impair %s -> %d %s", json, st, out);
  return st;
}

static json_t *get_stats(void) {
  char out[65536];
  int st = http("GET", "/stats", NULL, out, sizeof out);
  if (st != 200) return NULL;
  json_error_t e;
  return json_loads(out, 0, &e);
}

static long long jint(json_t *root, const char *dir, const char *key, const char *sub) {
  json_t *d = json_object_get(root, dir);
  json_t *v = json_object_get(d, key);
  if (sub) v = json_object_get(v, sub);
  return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

/* ---- client traffic ---- */
typedef struct {
  int fd;
  int relay_port;
  unsigned long sent, received;
} client_t;

static void send_probe(client_t *c, uint32_t seq, size_t len) {
  uint8_t buf[1500];
  memset(buf, 0xab, sizeof buf);
  double t = now_s();
  memcpy(buf, &seq, 4);
  memcpy(buf + 4, &t, sizeof t);
  struct sockaddr_in a = lo(c->relay_port);
  if (sendto(c->fd, buf, len, 0, (struct sockaddr *)&a, sizeof a) == (ssize_t)len) c->sent++;
}

/* Receives replies until `until`; calls back with the RTT in seconds. */
static int recv_until(client_t *c, double until, void (*cb)(void *, double rtt, double at, size_t len),
                      void *ud) {
  int n = 0;
  uint8_t buf[2048];
  for (;;) {
    double left = until - now_s();
    if (left <= 0) break;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int ms = (int)(left * 1000) + 1;
    if (poll(&p, 1, ms > 5 ? 5 : ms) <= 0) continue;
    ssize_t r;
    while ((r = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
      double at = now_s(), t;
      memcpy(&t, buf + 4, sizeof t);
      c->received++;
      n++;
      if (cb) cb(ud, at - t, at, (size_t)r);
    }
  }
  return n;
}

typedef struct {
  double sum;
  int n;
  double min, max;
} rtt_acc_t;

static void on_rtt(void *ud, double rtt, double at, size_t len) {
  rtt_acc_t *a = ud;
  a->sum += rtt;
  a->n++;
  if (a->n == 1 || rtt < a->min) a->min = rtt;
  if (rtt > a->max) a->max = rtt;
}

typedef struct {
  double first, last, start_after;
  unsigned long n;
  size_t bytes_after_first;
} rate_acc_t;

static void on_rate(void *ud, double rtt, double at, size_t len) {
  rate_acc_t *a = ud;
  if (at < a->start_after) return; /* skip the start-up transient */
  if (a->n == 0)
    a->first = at;
  else
    a->bytes_after_first += len;
  a->last = at;
  a->n++;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: netem_itest <hudong binary>\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  double t0 = now_s();
  echo_fd = udp_socket(0);
  int echo_port = bound_port(echo_fd);
  pthread_t echo_thr;
  pthread_create(&echo_thr, NULL, echo_main, NULL);

  int relay_port = hd_test_free_port(0);
  ctl_port = hd_test_free_port(0);
  char listen[64], to[64], ctl[64];
  snprintf(listen, sizeof listen, "127.0.0.1:%d", relay_port);
  snprintf(to, sizeof to, "127.0.0.1:%d", echo_port);
  snprintf(ctl, sizeof ctl, "127.0.0.1:%d", ctl_port);
  char logpath[] = "/tmp/netem-itest-XXXXXX";
  int logfd = mkstemp(logpath);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(logfd, 2);
    execl(argv[1], argv[1], "netem", "--listen", listen, "--to", to, "--delay", "25", "--control", ctl,
          "--seed", "7", (char *)NULL);
    perror("exec");
    _exit(127);
  }
  /* wait for the control endpoint */
  json_t *st = NULL;
  for (int i = 0; i < 100 && !st; i++) {
    usleep(50000);
    st = get_stats();
  }
  if (!st) {
    fprintf(stderr, "FAIL: hudong netem did not come up\n");
    kill(pid, SIGKILL);
    return 1;
  }
  json_decref(st);

  client_t c = {.fd = udp_socket(0), .relay_port = relay_port};

  /* 1. delay 25 ms each way: 200 probes 5 ms apart */
  rtt_acc_t rtt = {0};
  for (uint32_t i = 0; i < 200; i++) {
    send_probe(&c, i, 200);
    recv_until(&c, now_s() + 0.005, on_rtt, &rtt);
  }
  recv_until(&c, now_s() + 0.2, on_rtt, &rtt);
  double mean_ms = rtt.n ? rtt.sum / rtt.n * 1000 : 0;
  printf("rtt: %d/200 replies, mean %.2f ms (min %.2f, max %.2f)\n", rtt.n, mean_ms, rtt.min * 1000,
         rtt.max * 1000);
  CHECK(rtt.n == 200, "expected 200 replies, got %d", rtt.n);
  CHECK(mean_ms >= 45 && mean_ms <= 55, "mean RTT %.2f ms not in 50 ± 5", mean_ms);
  CHECK(rtt.min * 1000 >= 50.0, "RTT below the configured delay: %.3f ms", rtt.min * 1000);

  /* 1b. a 50 ms delay on one direction only (set live): RTT 50 ± 5 ms */
  impair("{\"up\":{\"delay\":50},\"down\":{\"delay\":0}}");
  rtt_acc_t one = {0};
  for (uint32_t i = 0; i < 100; i++) {
    send_probe(&c, 500 + i, 200);
    recv_until(&c, now_s() + 0.005, on_rtt, &one);
  }
  recv_until(&c, now_s() + 0.2, on_rtt, &one);
  double one_ms = one.n ? one.sum / one.n * 1000 : 0;
  printf("rtt with --up-delay 50 --down-delay 0: %d/100 replies, mean %.2f ms (min %.2f, max %.2f)\n", one.n,
         one_ms, one.min * 1000, one.max * 1000);
  CHECK(one.n == 100, "expected 100 replies, got %d", one.n);
  CHECK(one_ms >= 45 && one_ms <= 55, "mean RTT %.2f ms not in 50 ± 5", one_ms);
  CHECK(one.min * 1000 >= 50.0, "RTT below the configured delay: %.3f ms", one.min * 1000);
  impair("{\"reset\":true}");

  /* 2. rate cap 2000 kbit/s upstream, offered ~2900 kbit/s (3 x 1200 B every 10 ms) for 3.5 s */
  impair("{\"up\":{\"rate\":2000,\"queue\":200}}");
  rate_acc_t ra = {.start_after = now_s() + 0.5};
  double tr0 = now_s(), end = tr0 + 3.5;
  uint32_t seq = 1000, sent = 0;
  while (now_s() < end) {
    /* by the clock, not per loop turn: a loop slowed by a busy machine must
     * still offer ~2900 kbit/s, or the queue drains and the cap is not what
     * limits the rate */
    uint32_t due = (uint32_t)((now_s() - tr0) * 300) + 3;
    for (; sent < due; sent++)
      send_probe(&c, seq++, 1200);
    recv_until(&c, now_s() + 0.010, on_rate, &ra);
  }
  recv_until(&c, now_s() + 0.4, on_rate, &ra);
  double kbps = ra.last > ra.first ? (double)ra.bytes_after_first * 8 / (ra.last - ra.first) / 1000 : 0;
  printf("rate: %lu packets in %.2f s -> %.1f kbit/s (cap 2000)\n", ra.n, ra.last - ra.first, kbps);
  CHECK(kbps >= 1900 && kbps <= 2100, "rate %.1f kbit/s not within 2000 ± 5%%", kbps);
  st = get_stats();
  CHECK(st && jint(st, "up", "drops", "queue") > 0, "the drop-tail queue should have dropped packets");
  json_decref(st);
  impair("{\"reset\":true}");
  recv_until(&c, now_s() + 0.1, NULL, NULL);

  /* 3. 100% loss downstream stops traffic; back to 0 resumes it */
  impair("{\"down\":{\"loss\":100}}");
  unsigned long before = c.received;
  for (uint32_t i = 0; i < 20; i++) {
    send_probe(&c, 5000 + i, 100);
    recv_until(&c, now_s() + 0.005, NULL, NULL);
  }
  recv_until(&c, now_s() + 0.15, NULL, NULL);
  CHECK(c.received == before, "100%% loss: %lu replies got through", c.received - before);
  st = get_stats();
  CHECK(st && jint(st, "down", "drops", "loss") == 20, "down drops.loss = %lld, want 20",
        st ? jint(st, "down", "drops", "loss") : -1);
  json_decref(st);
  /* the query-string form */
  char out[4096];
  int code = http("POST", "/impair?down-loss=0", NULL, out, sizeof out);
  CHECK(code == 200, "POST /impair?down-loss=0 -> %d %s", code, out);
  before = c.received;
  for (uint32_t i = 0; i < 20; i++) {
    send_probe(&c, 6000 + i, 100);
    recv_until(&c, now_s() + 0.005, NULL, NULL);
  }
  recv_until(&c, now_s() + 0.15, NULL, NULL);
  CHECK(c.received - before == 20, "after loss 0: %lu/20 replies", c.received - before);

  /* 4. blackout now for 300 ms both ways: probes inside it are lost, later ones pass */
  impair("{\"both\":{\"blackout_now_ms\":300}}");
  before = c.received;
  for (uint32_t i = 0; i < 10; i++) {
    send_probe(&c, 7000 + i, 100);
    recv_until(&c, now_s() + 0.01, NULL, NULL);
  }
  recv_until(&c, now_s() + 0.3, NULL, NULL); /* past the window */
  CHECK(c.received == before, "blackout: %lu replies got through", c.received - before);
  before = c.received;
  for (uint32_t i = 0; i < 10; i++) {
    send_probe(&c, 8000 + i, 100);
    recv_until(&c, now_s() + 0.005, NULL, NULL);
  }
  recv_until(&c, now_s() + 0.15, NULL, NULL);
  CHECK(c.received - before == 10, "after blackout: %lu/10 replies", c.received - before);

  /* bad control requests get 400 with a reason */
  code = http("POST", "/impair", "{\"down\":{\"loss\":150}}", out, sizeof out);
  CHECK(code == 400 && strstr(out, "--down-loss: 150 is not a percentage in 0..100"), "bad loss -> %d %s",
        code, out);
  code = http("POST", "/impair", "{not json", out, sizeof out);
  CHECK(code == 400, "bad json -> %d", code);
  code = http("POST", "/impair", "{\"both\":{\"schedule\":\"x\"}}", out, sizeof out);
  CHECK(code == 400, "schedule at run time -> %d", code);
  code = http("POST", "/impair", "{\"up\":{\"seed\":3}}", out, sizeof out);
  CHECK(code == 400 && strstr(out, "not changeable at run time"), "seed at run time -> %d %s", code, out);

  /* 5. a second client gets its own session */
  client_t c2 = {.fd = udp_socket(0), .relay_port = relay_port};
  send_probe(&c2, 1, 100);
  recv_until(&c2, now_s() + 0.2, NULL, NULL);
  CHECK(c2.received == 1, "second client got %lu replies", c2.received);

  /* 6. /stats counters match */
  st = get_stats();
  CHECK(st != NULL, "GET /stats is not JSON");
  if (st) {
    unsigned long echoed = atomic_load(&echo_count);
    long long sessions = json_integer_value(json_object_get(st, "sessions"));
    printf(
        "stats: sessions %lld, up in %lld out %lld (queue drops %lld, blackout %lld), down in %lld out %lld "
        "(loss %lld); client sent %lu got %lu, echo saw %lu\n",
        sessions, jint(st, "up", "pkts_in", NULL), jint(st, "up", "pkts_out", NULL),
        jint(st, "up", "drops", "queue"), jint(st, "up", "drops", "blackout"),
        jint(st, "down", "pkts_in", NULL), jint(st, "down", "pkts_out", NULL),
        jint(st, "down", "drops", "loss"), c.sent + c2.sent, c.received + c2.received, echoed);
    CHECK(sessions == 2, "sessions %lld, want 2", sessions);
    CHECK(jint(st, "up", "pkts_in", NULL) == (long long)(c.sent + c2.sent), "up.pkts_in != sent");
    CHECK(jint(st, "up", "pkts_out", NULL) == (long long)echoed, "up.pkts_out != echoed");
    CHECK(jint(st, "down", "pkts_in", NULL) == (long long)echoed, "down.pkts_in != echoed");
    CHECK(jint(st, "down", "pkts_out", NULL) == (long long)(c.received + c2.received),
          "down.pkts_out != received");
    CHECK(jint(st, "up", "drops", "blackout") == 10, "up drops.blackout %lld, want 10",
          jint(st, "up", "drops", "blackout"));
    CHECK(json_array_size(json_object_get(st, "clients")) == 2, "clients array");
    json_decref(st);
  }

  /* 7. SIGTERM: exit 0 with the stats printed */
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "hudong netem exit status %d", status);
  char log[16384] = "";
  ssize_t ln = pread(logfd, log, sizeof log - 1, 0);
  if (ln > 0) log[ln] = 0;
  CHECK(strstr(log, "hudong netem: stopped") && strstr(log, "queueing delay"), "exit stats missing:\n%s",
        log);
  CHECK(!strstr(log, "Sanitizer") && !strstr(log, "runtime error"), "sanitizer report:\n%s", log);
  close(logfd);
  unlink(logpath);
  atomic_store(&echo_stop, 1);
  pthread_join(echo_thr, NULL);
  printf("netem integration: %s in %.1f s\n", failures ? "FAILED" : "ok", now_s() - t0);
  return failures ? 1 : 0;
}
