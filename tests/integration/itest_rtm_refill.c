/* Integration test of the native RTM client's history refill (issue 12 items
 * 4 and 5) against a real `hudong serve --dev` (run_with_server.sh; port in
 * HUDONG_HTTP). The reader subscribes two fresh channels and then loses its
 * session (hd_rtmc_drop_session: the resume gets 410) while its loop is not
 * running, so it misses everything live; the writer, on a second loop,
 * publishes 150 small stored messages to one channel and 100 stored 30 KB
 * messages to the other. When the reader's loop runs again it logs in afresh
 * and refills both channels from history after cseq 0: it must deliver all
 * 150 and all 100 in order, exactly once, with a single re-login (a history
 * reply over the window would end the new session with 4008 and force
 * another), following the node's pages ("more"/"next"). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "base/err.h"
#include "client/rtm_client.h"
#include "proto/token.h"

#define N_SMALL 150
#define N_BIG 100
#define BIG (30 * 1024)

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "itest_rtm_refill: FAIL: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static char g_small[64], g_big[64];
static int g_subs, g_logged, g_w_logged, g_oks, g_sent;
static int g_n_small, g_n_big, g_bad;
static hd_rtmc_t *g_writer;
static char *g_bigbuf;

static void on_state(void *ud, hd_rtmc_state_t st, const char *reason) {
  fprintf(stderr, "itest_rtm_refill: %s state %d (%s)\n", (const char *)ud, (int)st, reason);
}

static void on_message(void *ud, const char *ch, int64_t cseq, const char *from, const char *data,
                       size_t len) {
  char want[32];
  if (!strcmp(ch, g_small)) {
    int n = snprintf(want, sizeof want, "g%d", g_n_small);
    if ((size_t)n != len || memcmp(data, want, len)) {
      fprintf(stderr, "itest_rtm_refill: small #%d is %.*s (cseq %lld)\n", g_n_small, (int)len, data,
              (long long)cseq);
      g_bad++;
    }
    g_n_small++;
  } else if (!strcmp(ch, g_big)) {
    int n = snprintf(want, sizeof want, "%d:", g_n_big);
    if (len != (size_t)n + BIG || memcmp(data, want, (size_t)n)) {
      fprintf(stderr, "itest_rtm_refill: big #%d is %.*s... (%zu bytes)\n", g_n_big, 8, data, len);
      g_bad++;
    }
    g_n_big++;
  }
}

static void sub_done(void *ud, void *req, const hd_rtmc_result_t *r) {
  if (r->code) die("subscribe: %d %s", r->code, r->reason);
  g_subs++;
}

static void login_done(void *ud, void *req, const hd_rtmc_result_t *r) {
  if (r->code) die("login: %d %s %s", r->code, r->reason, r->message);
  *(int *)req = 1;
}

static void publish_next(void);

static void pub_done(void *ud, void *req, const hd_rtmc_result_t *r) {
  if (r->code) die("publish %d: %d %s %s", (int)(intptr_t)req, r->code, r->reason, r->message);
  g_oks++;
  publish_next();
}

/* One at a time, in order: small ones first, then the big ones. */
static void publish_next(void) {
  if (g_sent >= N_SMALL + N_BIG) return;
  int i = g_sent++;
  int rc;
  if (i < N_SMALL) {
    char d[32];
    int n = snprintf(d, sizeof d, "g%d", i);
    rc = hd_rtmc_publish(g_writer, g_small, d, (size_t)n, 1, pub_done, (void *)(intptr_t)i);
  } else {
    int n = snprintf(g_bigbuf, 32, "%d:", i - N_SMALL);
    memset(g_bigbuf + n, 'y', BIG);
    rc = hd_rtmc_publish(g_writer, g_big, g_bigbuf, (size_t)n + BIG, 1, pub_done, (void *)(intptr_t)i);
  }
  if (rc < 0) die("publish %d: %s", i, hd_strerror(rc));
}

static hd_rtmc_t *make(uv_loop_t *loop, const char *url, const char *name) {
  hd_token_claims_t cl;
  memset(&cl, 0, sizeof cl);
  snprintf(cl.key, sizeof cl.key, "devkey");
  snprintf(cl.identity, sizeof cl.identity, "%s", name);
  cl.rtm = 1;
  cl.iat = cl.nbf = (int64_t)time(NULL) - 5;
  cl.exp = cl.iat + 3600;
  char tok[HD_TOKEN_MAX];
  if (hd_token_mint(&cl, "devsecret", tok, sizeof tok) < 0) die("token mint failed");
  hd_rtmc_config_t cfg = {
      .url = url, .token = tok, .on_state = on_state, .on_message = on_message, .ud = (void *)name};
  hd_rtmc_t *c;
  if (hd_rtmc_new(&c, loop, &cfg) < 0) die("rtmc_new");
  return c;
}

static void nop(uv_timer_t *t) { (void)t; }

/* Runs loop until *a >= want_a and *b >= want_b, or ms pass. */
static int run_until(uv_loop_t *loop, int *a, int want_a, int *b, int want_b, unsigned ms) {
  uv_timer_t t;
  uv_timer_init(loop, &t);
  uv_timer_start(&t, nop, 10, 10);
  uint64_t end = uv_now(loop) + ms;
  while ((*a < want_a || *b < want_b) && uv_now(loop) < end)
    uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return *a >= want_a && *b >= want_b;
}

int main(void) {
  const char *hp = getenv("HUDONG_HTTP");
  if (!hp) die("HUDONG_HTTP not set (run via run_with_server.sh)");
  char url[128];
  snprintf(url, sizeof url, "ws://127.0.0.1:%d/rtm", atoi(hp));
  /* history is stored across runs (./hudong-rtm.db): fresh channels start at cseq 1 */
  snprintf(g_small, sizeof g_small, "gap-%d-%lld", (int)getpid(), (long long)time(NULL));
  snprintf(g_big, sizeof g_big, "big-%d-%lld", (int)getpid(), (long long)time(NULL));
  if (!(g_bigbuf = malloc(BIG + 64))) die("oom");
  uv_loop_t rl, wl;
  uv_loop_init(&rl);
  uv_loop_init(&wl);
  int one = 1;

  hd_rtmc_t *reader = make(&rl, url, "reader");
  if (hd_rtmc_login(reader, login_done, &g_logged) < 0 ||
      hd_rtmc_subscribe(reader, g_small, sub_done, NULL) < 0 ||
      hd_rtmc_subscribe(reader, g_big, sub_done, NULL) < 0)
    die("reader requests");
  if (!run_until(&rl, &g_logged, 1, &g_subs, 2, 10000)) die("reader did not subscribe");
  /* the session is lost and the reader's loop stops: it misses everything live */
  if (hd_rtmc_drop_session(reader) < 0) die("drop_session");
  uv_run(&rl, UV_RUN_NOWAIT);

  g_writer = make(&wl, url, "writer");
  if (hd_rtmc_login(g_writer, login_done, &g_w_logged) < 0) die("writer login");
  if (!run_until(&wl, &g_w_logged, 1, &one, 1, 10000)) die("writer did not log in");
  publish_next();
  if (!run_until(&wl, &g_oks, N_SMALL + N_BIG, &one, 1, 60000)) die("only %d publishes acked", g_oks);

  /* the reader comes back: 410 on resume, a fresh login, refill from after 0 */
  if (!run_until(&rl, &g_n_small, N_SMALL, &g_n_big, N_BIG, 60000))
    die("refill delivered %d of %d small and %d of %d big messages", g_n_small, N_SMALL, g_n_big, N_BIG);
  int dummy = 0;
  run_until(&rl, &dummy, 1, &one, 1, 500); /* anything extra (a duplicate) would arrive now */
  hd_rtmc_stats_t st;
  hd_rtmc_get_stats(reader, &st);
  fprintf(stderr, "itest_rtm_refill: delivered %llu, refilled %llu, relogins %llu, duplicates %llu\n",
          (unsigned long long)st.delivered, (unsigned long long)st.refilled, (unsigned long long)st.relogins,
          (unsigned long long)st.duplicates);
  if (g_bad) die("%d messages out of order or wrong", g_bad);
  if (g_n_small != N_SMALL || g_n_big != N_BIG)
    die("delivered %d small, %d big (duplicates)", g_n_small, g_n_big);
  if (st.relogins != 1) die("%llu re-logins: the refill lost its session", (unsigned long long)st.relogins);
  if (st.refilled < N_SMALL + N_BIG) die("only %llu from history", (unsigned long long)st.refilled);

  hd_rtmc_free(reader);
  hd_rtmc_free(g_writer);
  uv_run(&rl, UV_RUN_DEFAULT);
  uv_run(&wl, UV_RUN_DEFAULT);
  if (uv_loop_close(&rl) != 0 || uv_loop_close(&wl) != 0) die("handles left open");
  free(g_bigbuf);
  fprintf(stderr, "itest_rtm_refill: PASS\n");
  return 0;
}
