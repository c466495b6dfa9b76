/* Tests for the blocking HTTP/1.1 client (src/io/http_sync): against a tiny
 * scripted server on 127.0.0.1 (a thread; a free port outside the ephemeral
 * range): two requests on one kept-alive connection, the Bearer header and
 * the URL's path prefix, Content-Length framing (RFC 9112 §6.3), a response
 * without a length, a body over the cap, a server that stops sending (the
 * deadline), a refused connection, an https URL; each error's sentence
 * says what happened; a request over the size a token may have; signals
 * (EINTR) during the wait do not fail a request. */
#include "hd_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/err.h"
#include "io/http_sync.h"
#include "support/free_port.h"

typedef struct {
  int lfd, port;
  const char *const *replies; /* one per request, NULL ends the connection */
  char seen[4096];            /* the requests, one after the other */
  int hold_ms;                /* after the last reply, keep the connection open this long */
  int delay_ms;               /* before each reply */
} server_t;

static int heads(const char *seen) {
  int n = 0;
  for (const char *p = seen; (p = strstr(p, "\r\n\r\n")); p += 4)
    n++;
  return n;
}

static void *serve(void *arg) {
  server_t *s = arg;
  int fd = accept(s->lfd, NULL, NULL);
  if (fd < 0) return NULL;
  size_t got = 0;
  for (int i = 0; s->replies[i]; i++) {
    while (heads(s->seen) <= i) { /* read until request i's head is in */
      ssize_t r = recv(fd, s->seen + got, sizeof s->seen - 1 - got, 0);
      if (r <= 0) goto out;
      got += (size_t)r;
      s->seen[got] = 0;
    }
    if (s->delay_ms) usleep((useconds_t)s->delay_ms * 1000);
    send(fd, s->replies[i], strlen(s->replies[i]), MSG_NOSIGNAL);
  }
  if (s->hold_ms) usleep((useconds_t)s->hold_ms * 1000);
out:
  close(fd);
  return NULL;
}

static pthread_t start(server_t *s) {
  s->port = hd_test_free_port(1);
  assert_true(s->port > 0);
  s->lfd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(s->lfd, 4), 0);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, serve, s), 0);
  return t;
}

static void stop(server_t *s, pthread_t t) {
  pthread_join(t, NULL);
  close(s->lfd);
}

static void test_keep_alive_and_framing(void **state) {
  static const char *const replies[] = {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                                        "HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\n\r\nno\n", NULL};
  server_t s = {.replies = replies};
  pthread_t t = start(&s);
  char base[64], path[256], body[64];
  snprintf(base, sizeof base, "http://127.0.0.1:%d/pre//", s.port);
  hd_http_url_t u;
  assert_int_equal(hd_http_url_parse(base, &u), 0);
  assert_int_equal(hd_http_sync_path(&u, "/api/ping", path, sizeof path), 0);
  assert_string_equal(path, "/pre/api/ping");
  int64_t dl = hd_http_sync_now_ms() + 5000;
  int fd = hd_http_sync_connect(&u, dl);
  assert_true(fd >= 0);
  assert_int_equal(hd_http_sync_request(fd, "GET", &u, path, "tok", body, sizeof body, dl), 200);
  assert_string_equal(body, "hello");
  assert_int_equal(hd_http_sync_request(fd, "POST", &u, "/x", NULL, body, sizeof body, dl), 404);
  assert_string_equal(body, "no\n");
  close(fd);
  stop(&s, t);
  assert_non_null(strstr(s.seen, "GET /pre/api/ping HTTP/1.1\r\n"));
  assert_non_null(strstr(s.seen, "Authorization: Bearer tok\r\n"));
  assert_non_null(strstr(s.seen, "POST /x HTTP/1.1\r\n"));
  assert_non_null(strstr(s.seen, "Content-Length: 0\r\n")); /* POST without a body says so */
  assert_int_equal(hd_http_sync_path(&u, "/x", path, 4), HD_ENOSPC);
}

static void one(const char *reply, int hold_ms, size_t cap, int timeout_ms, int want, const char *says) {
  const char *replies[] = {reply, NULL};
  server_t s = {.replies = replies, .hold_ms = hold_ms};
  pthread_t t = start(&s);
  char base[64], body[256], err[256];
  snprintf(base, sizeof base, "http://127.0.0.1:%d", s.port);
  assert_int_equal(hd_http_sync("GET", base, "/", NULL, body, cap, timeout_ms, err, sizeof err), want);
  if (want < 0 && !strstr(err, says)) fail_msg("error '%s' does not say '%s'", err, says);
  stop(&s, t);
}

static void test_bad_answers(void **state) {
  /* each error says what really happened, not "no answer within N ms" for all */
  one("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0, 256, 5000, 200, NULL);
  one("HTTP/1.1 200 OK\r\n\r\nok", 0, 256, 5000, HD_EPROTO,
      "not HTTP/1.x with a Content-Length"); /* no length */
  one("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nok", 0, 16, 5000, HD_ENOSPC,
      "larger than");                                                      /* over cap */
  one("SSH-2.0-OpenSSH\r\n\r\n", 0, 256, 5000, HD_EPROTO, "not HTTP/1.x"); /* not HTTP */
  one("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\npart", 1500, 256, 300, HD_ETIMEDOUT,
      "no complete HTTP answer within 300 ms"); /* stalls */
  one("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\npart", 0, 256, 5000, HD_EIO,
      "connection closed"); /* cut */
}

static void test_no_server_and_https(void **state) {
  char body[64], err[256], base[64];
  int port = hd_test_free_port(1);
  snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
  assert_int_equal(hd_http_sync("GET", base, "/", NULL, body, sizeof body, 2000, err, sizeof err), HD_EIO);
  assert_non_null(strstr(err, "no answer from 127.0.0.1"));
  assert_non_null(strstr(err, "refused"));
  assert_int_equal(
      hd_http_sync("GET", "https://127.0.0.1:1", "/", NULL, body, sizeof body, 2000, err, sizeof err),
      HD_EUNSUPPORTED);
  assert_non_null(strstr(err, "only http://"));
  assert_int_equal(hd_http_sync("GET", "127.0.0.1:1", "/", NULL, body, sizeof body, 2000, err, sizeof err),
                   HD_EINVAL);
  assert_non_null(strstr(err, "not an http://host:port URL"));
}

/* A token longer than any valid one (HD_TOKEN_MAX) makes the request too
 * large: HD_EINVAL and a sentence that says so, not "answer too large". */
static void test_request_too_large(void **state) {
  static const char *const replies[] = {NULL};
  server_t s = {.replies = replies};
  pthread_t t = start(&s);
  char base[64], body[64], err[256];
  snprintf(base, sizeof base, "http://127.0.0.1:%d", s.port);
  char *tok = malloc(9000);
  assert_non_null(tok);
  memset(tok, 'a', 8999);
  tok[8999] = 0;
  assert_int_equal(hd_http_sync("GET", base, "/", tok, body, sizeof body, 2000, err, sizeof err), HD_EINVAL);
  if (!strstr(err, "request is too large")) fail_msg("error '%s'", err);
  free(tok);
  stop(&s, t);
}

static void on_usr1(int sig) { (void)sig; }

typedef struct {
  pthread_t target;
  atomic_int stop;
  int sent;
} pester_t;

/* Signals the target thread every 10 ms (a profiler's SIGPROF, an app's timer). */
static void *pester(void *arg) {
  pester_t *p = arg;
  while (!atomic_load(&p->stop)) {
    pthread_kill(p->target, SIGUSR1);
    p->sent++;
    usleep(10000);
  }
  return NULL;
}

/* A signal during connect/send/recv retries the wait within the deadline:
 * the answer (400 ms late) still arrives. */
static void test_signals_do_not_fail_a_request(void **state) {
  struct sigaction sa = {.sa_handler = on_usr1}, old; /* no SA_RESTART: EINTR reaches the caller */
  sigemptyset(&sa.sa_mask);
  assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
  static const char *const replies[] = {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", NULL};
  server_t s = {.replies = replies, .delay_ms = 400};
  pthread_t t = start(&s);
  char base[64], body[64], err[256] = "";
  snprintf(base, sizeof base, "http://127.0.0.1:%d", s.port);
  pester_t p = {.target = pthread_self()};
  pthread_t pt;
  assert_int_equal(pthread_create(&pt, NULL, pester, &p), 0);
  int st = hd_http_sync("GET", base, "/", NULL, body, sizeof body, 5000, err, sizeof err);
  atomic_store(&p.stop, 1);
  pthread_join(pt, NULL);
  stop(&s, t);
  sigaction(SIGUSR1, &old, NULL);
  if (st != 200) fail_msg("interrupted by signals: %d (%s)", st, err);
  assert_true(p.sent >= 10); /* signals did come during the 400 ms wait */
  assert_string_equal(body, "ok");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keep_alive_and_framing),        cmocka_unit_test(test_bad_answers),
      cmocka_unit_test(test_no_server_and_https),           cmocka_unit_test(test_request_too_large),
      cmocka_unit_test(test_signals_do_not_fail_a_request),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
