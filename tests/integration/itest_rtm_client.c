/* Integration test of the native RTM client (client/rtm_client.h) against a
 * real `hudong serve --dev` (run_with_server.sh; port in HUDONG_HTTP). Two
 * clients on one loop subscribe "chat"; alice publishes 500 stored messages
 * (the first 240 at once, over the 200 burst, so 429 retries happen; the rest
 * paced under the 100/s rate) while the test cuts bob's TCP connection 3 times
 * and alice's once without a close frame (one of bob's cuts also forgets the
 * session, so its resume gets 410 and it logs in again and refills from
 * history). bob must get all 500 exactly once,
 * in cseq order, with the cseq alice's ok reported for each; every publish
 * must get its ok. Then: an attribute CAS conflict (409 with rev), a held lock
 * (409 with owner), a peer message with its receipt, and bob's logout seen by
 * alice as presence leave (on a channel subscribed after the stream). */
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

#define N_MSG 500
#define FIRST_BURST 240
#define PACE_MS 12

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "itest_rtm_client: FAIL: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

typedef struct {
  const char *name;
  hd_rtmc_t *c;
  int logged_in, subscribed, closed;
  int n_rx;
  int64_t last_cseq;
  int64_t rx_cseq[N_MSG];
  int rx_idx[N_MSG];
  int saw_leave_of_other;
  int got_peer;
} cl_t;

static uv_loop_t *g_loop;
static cl_t g_a = {.name = "alice"}, g_b = {.name = "bob"};
static int g_published, g_oks, g_dups;
static int64_t g_cseq_of[N_MSG];
static int g_cut_b, g_cut_a;
static int g_step;
static char g_key[64], g_lock[64];
static int64_t g_rev1;
static uv_timer_t g_tick;
static uint64_t g_t0;

static void on_state(void *ud, hd_rtmc_state_t st, const char *reason) {
  cl_t *x = ud;
  fprintf(stderr, "itest_rtm_client: %s state %d (%s)\n", x->name, (int)st, reason);
  if (st == HD_RTMC_CLOSED) x->closed = 1;
}

static void on_message(void *ud, const char *ch, int64_t cseq, const char *from, const char *data,
                       size_t len) {
  cl_t *x = ud;
  if (strcmp(ch, "chat")) die("%s: message on %s", x->name, ch);
  if (cseq <= x->last_cseq)
    die("%s: cseq %lld after %lld", x->name, (long long)cseq, (long long)x->last_cseq);
  x->last_cseq = cseq;
  int idx;
  if (len != 4 || sscanf(data, "m%3d", &idx) != 1 || idx < 0 || idx >= N_MSG)
    die("%s: bad data %.*s", x->name, (int)len, data);
  if (strcmp(from, "alice")) die("%s: from %s", x->name, from);
  if (x->n_rx >= N_MSG) die("%s: more than %d messages", x->name, N_MSG);
  x->rx_cseq[x->n_rx] = cseq;
  x->rx_idx[x->n_rx] = idx;
  x->n_rx++;
}

static void on_presence(void *ud, const char *ch, const char *ev, const char *user, const char *state) {
  cl_t *x = ud;
  if (x == &g_a && !strcmp(ch, "lobby") && !strcmp(ev, "leave") && user && !strcmp(user, "bob") &&
      g_step >= 5)
    x->saw_leave_of_other = 1;
}

static void on_peer(void *ud, const char *from, const char *pid, const char *data, size_t len) {
  cl_t *x = ud;
  if (x == &g_b && !strcmp(from, "alice") && len == 5 && !memcmp(data, "hello", 5)) x->got_peer = 1;
}

static void on_error(void *ud, int code, const char *reason, const char *message) {
  cl_t *x = ud;
  fprintf(stderr, "itest_rtm_client: %s unsolicited error %d %s %s\n", x->name, code, reason ? reason : "",
          message ? message : "");
}

static cl_t g_bad = {.name = "bad"};
static int g_bad_code;
static void bad_login_done(void *ud, void *req_ud, const hd_rtmc_result_t *r) { g_bad_code = r->code; }
static void bad_state(void *ud, hd_rtmc_state_t st, const char *reason) {
  if (st == HD_RTMC_CLOSED) g_bad.closed = 1;
  if (st == HD_RTMC_RECONNECTING) die("bad token: client reconnects");
}

static void login_done(void *ud, void *req_ud, const hd_rtmc_result_t *r) {
  cl_t *x = req_ud;
  if (r->code) die("%s: login: %d %s %s", x->name, r->code, r->reason, r->message);
  x->logged_in = 1;
}

static void sub_done(void *ud, void *req_ud, const hd_rtmc_result_t *r) {
  cl_t *x = req_ud;
  if (r->code) die("%s: sub: %d %s", x->name, r->code, r->reason);
  x->subscribed = 1;
}

static void pub_done(void *ud, void *req_ud, const hd_rtmc_result_t *r) {
  int i = (int)(intptr_t)req_ud;
  if (r->code) die("pub %d: %d %s %s", i, r->code, r->reason, r->message);
  if (g_cseq_of[i]) die("pub %d: second ok", i);
  g_cseq_of[i] = r->cseq;
  g_dups += r->dup;
  g_oks++;
}

static void publish_one(void) {
  char d[8];
  snprintf(d, sizeof d, "m%03d", g_published);
  int rc = hd_rtmc_publish(g_a.c, "chat", d, 4, 1, pub_done, (void *)(intptr_t)g_published);
  if (rc == HD_ENOSPC) return; /* pending table full: try on the next tick */
  if (rc < 0) die("publish: %s", hd_strerror(rc));
  g_published++;
}

/* ---- the scenario after the stream ---- */

static void logout_b_done(void *ud, void *req_ud, const hd_rtmc_result_t *r) {
  if (r->code) die("bob logout: %d %s", r->code, r->reason);
}

static void peer_done(void *ud, void *req_ud, const hd_rtmc_result_t *r) {
  if (r->code) die("peer: %d %s %s", r->code, r->reason, r->message);
  g_step = 5;
  int rc = hd_rtmc_logout(g_b.c, logout_b_done, NULL);
  if (rc < 0) die("bob logout: %s", hd_strerror(rc));
}

static void lock_b_done(void *ud, void *req_ud, const hd_rtmc_result_t *r) {
  if (r->code != 409 || !r->owner || strcmp(r->owner, "alice"))
    die("lock held: want 409 owner alice, got %d %s owner %s", r->code, r->reason, r->owner ? r->owner : "-");
  g_step = 4;
  if (hd_rtmc_send_peer(g_a.c, "bob", "hello", 5, peer_done, NULL) < 0) die("send_peer");
}

static void lock_a_done(void *ud, void *req_ud, const hd_rtmc_result_t *r) {
  if (r->code || r->exp <= 0) die("lock acquire: %d %s", r->code, r->reason);
  if (hd_rtmc_lock_acquire(g_b.c, "chat", g_lock, 5000, lock_b_done, NULL) < 0) die("lock b");
}

static void cas_b_done(void *ud, void *req_ud, const hd_rtmc_result_t *r) {
  if (r->code != 409 || r->rev != g_rev1)
    die("CAS conflict: want 409 rev %lld, got %d %s rev %lld", (long long)g_rev1, r->code, r->reason,
        (long long)r->rev);
  g_step = 3;
  if (hd_rtmc_lock_acquire(g_a.c, "chat", g_lock, 5000, lock_a_done, NULL) < 0) die("lock a");
}

static void cas_a_done(void *ud, void *req_ud, const hd_rtmc_result_t *r) {
  if (r->code || r->rev <= 0) die("attr set: %d %s", r->code, r->reason);
  g_rev1 = r->rev;
  if (hd_rtmc_set_attr(g_b.c, "chat", NULL, g_key, "b", 0, cas_b_done, NULL) < 0) die("attr b");
}

static int g_lobby;
static void lobby_done(void *ud, void *req_ud, const hd_rtmc_result_t *r) {
  if (r->code) die("sub lobby: %d %s", r->code, r->reason);
  if (++g_lobby == 2 && hd_rtmc_set_attr(g_a.c, "chat", NULL, g_key, "a", 0, cas_a_done, NULL) < 0)
    die("attr a");
}

static void check_stream(cl_t *x) {
  if (x->n_rx != N_MSG) die("%s: got %d of %d messages", x->name, x->n_rx, N_MSG);
  for (int k = 0; k < N_MSG; k++)
    if (g_cseq_of[x->rx_idx[k]] != x->rx_cseq[k])
      die("%s: message m%03d with cseq %lld, its ok said %lld", x->name, x->rx_idx[k],
          (long long)x->rx_cseq[k], (long long)g_cseq_of[x->rx_idx[k]]);
}

static void tick(uv_timer_t *t) {
  if (uv_now(g_loop) - g_t0 > 90000)
    die("timeout in step %d (oks %d, bob %d, alice %d)", g_step, g_oks, g_b.n_rx, g_a.n_rx);
  switch (g_step) {
  case 0:
    if (g_a.logged_in && g_b.logged_in && !g_a.subscribed && !g_b.subscribed) {
      if (hd_rtmc_subscribe(g_a.c, "chat", sub_done, &g_a) < 0 ||
          hd_rtmc_subscribe(g_b.c, "chat", sub_done, &g_b) < 0)
        die("subscribe");
      g_a.subscribed = g_b.subscribed = -1;
    }
    if (g_a.subscribed == 1 && g_b.subscribed == 1) {
      g_step = 1;
      while (g_published < FIRST_BURST)
        publish_one();
    }
    break;
  case 1: {
    if (g_published < N_MSG) publish_one();
    static const int cut_b_at[3] = {100, 260, 420};
    if (g_cut_b < 3 && g_published >= cut_b_at[g_cut_b] && hd_rtmc_state(g_b.c) == HD_RTMC_CONNECTED) {
      /* the middle cut also loses the session: 410 on resume, re-login + history refill */
      if ((g_cut_b == 1 ? hd_rtmc_drop_session(g_b.c) : hd_rtmc_drop_connection(g_b.c)) == 0) g_cut_b++;
    }
    if (g_cut_a < 1 && g_published >= 330 && hd_rtmc_state(g_a.c) == HD_RTMC_CONNECTED) {
      if (hd_rtmc_drop_connection(g_a.c) == 0) g_cut_a++;
    }
    if (g_oks == N_MSG && g_b.n_rx == N_MSG && g_a.n_rx == N_MSG) {
      if (g_cut_a != 1 || g_cut_b != 3) die("cuts: alice %d bob %d", g_cut_a, g_cut_b);
      check_stream(&g_b);
      check_stream(&g_a);
      hd_rtmc_stats_t sa, sb;
      hd_rtmc_get_stats(g_a.c, &sa);
      hd_rtmc_get_stats(g_b.c, &sb);
      fprintf(
          stderr,
          "itest_rtm_client: stream ok: 500/500 in order; alice resumes %llu relogins %llu 429-retries %llu "
          "resent %llu dup-oks %d; bob resumes %llu relogins %llu duplicates dropped %llu refilled %llu\n",
          (unsigned long long)sa.resumes, (unsigned long long)sa.relogins, (unsigned long long)sa.retries_429,
          (unsigned long long)sa.resent, g_dups, (unsigned long long)sb.resumes,
          (unsigned long long)sb.relogins, (unsigned long long)sb.duplicates,
          (unsigned long long)sb.refilled);
      if (sb.resumes + sb.relogins < 3)
        die("bob reconnected %llu times", (unsigned long long)(sb.resumes + sb.relogins));
      /* presence is checked on a channel subscribed only now: bob's forgotten
       * session stays subscribed to "chat" for the resume grace (30 s) */
      g_step = 2;
      if (hd_rtmc_subscribe(g_a.c, "lobby", lobby_done, NULL) < 0 ||
          hd_rtmc_subscribe(g_b.c, "lobby", lobby_done, NULL) < 0)
        die("subscribe lobby");
    }
    break;
  }
  case 5:
    if (g_b.closed && g_a.saw_leave_of_other) {
      if (!g_b.got_peer) die("bob did not get the peer message");
      g_step = 6;
      if (hd_rtmc_logout(g_a.c, NULL, NULL) < 0) die("alice logout");
    }
    break;
  case 6:
    if (g_a.closed) {
      g_step = 7;
      uv_timer_stop(&g_tick);
      uv_close((uv_handle_t *)&g_tick, NULL);
    }
    break;
  default: break;
  }
}

static void make_client(cl_t *x, const char *url) {
  hd_token_claims_t cl;
  memset(&cl, 0, sizeof cl);
  snprintf(cl.key, sizeof cl.key, "devkey");
  snprintf(cl.identity, sizeof cl.identity, "%s", x->name);
  /* no room: a room-scoped token may only use its room's channels (docs/rtm.md) */
  cl.rtm = 1;
  cl.iat = cl.nbf = (int64_t)time(NULL) - 5;
  cl.exp = cl.iat + 3600;
  char tok[HD_TOKEN_MAX];
  if (hd_token_mint(&cl, "devsecret", tok, sizeof tok) < 0) die("token mint failed");
  hd_rtmc_config_t cfg = {.url = url,
                          .token = tok,
                          .on_state = on_state,
                          .on_message = on_message,
                          .on_presence = on_presence,
                          .on_peer = on_peer,
                          .on_error = on_error,
                          .ud = x};
  int rc = hd_rtmc_new(&x->c, g_loop, &cfg);
  if (rc < 0) die("rtmc_new: %s", hd_strerror(rc));
  rc = hd_rtmc_login(x->c, login_done, x);
  if (rc < 0) die("login: %s", hd_strerror(rc));
}

int main(void) {
  const char *hp = getenv("HUDONG_HTTP");
  if (!hp) die("HUDONG_HTTP not set (run via run_with_server.sh)");
  char url[128];
  snprintf(url, sizeof url, "ws://127.0.0.1:%d/rtm", atoi(hp));
  /* attributes and locks are stored across runs (./hudong-rtm.db): unique names */
  snprintf(g_key, sizeof g_key, "topic-%d-%lld", (int)getpid(), (long long)time(NULL));
  snprintf(g_lock, sizeof g_lock, "seat-%d-%lld", (int)getpid(), (long long)time(NULL));
  g_loop = uv_default_loop();
  g_t0 = uv_now(g_loop);

  /* bad arguments are refused before anything happens */
  hd_rtmc_t *bad;
  hd_rtmc_config_t none = {.url = url};
  if (hd_rtmc_new(&bad, g_loop, &none) != HD_EINVAL) die("new without a token accepted");

  /* the pending table is bounded: over the cap a request fails at once */
  hd_rtmc_t *small;
  hd_rtmc_config_t sc = {.url = url, .token = "x", .max_pending = 2};
  if (hd_rtmc_new(&small, g_loop, &sc) < 0) die("rtmc_new small");
  if (hd_rtmc_subscribe(small, "a", NULL, NULL) < 0 || hd_rtmc_subscribe(small, "b", NULL, NULL) < 0)
    die("queue 2");
  if (hd_rtmc_subscribe(small, "c", NULL, NULL) != HD_ENOSPC) die("pending cap not enforced");
  hd_rtmc_free(small);

  /* a bad token: login fails with 401 and the client closes (no reconnect) */
  hd_rtmc_config_t bc = {.url = url, .token = "not-a-jwt", .on_state = bad_state, .ud = &g_bad};
  if (hd_rtmc_new(&g_bad.c, g_loop, &bc) < 0 || hd_rtmc_login(g_bad.c, bad_login_done, NULL) < 0)
    die("bad login");

  make_client(&g_a, url);
  make_client(&g_b, url);
  if (hd_rtmc_subscribe(g_a.c, "bad channel!", NULL, NULL) != HD_EINVAL) die("bad channel name accepted");
  uv_timer_init(g_loop, &g_tick);
  uv_timer_start(&g_tick, tick, PACE_MS, PACE_MS);
  uv_run(g_loop, UV_RUN_DEFAULT);
  if (g_step != 7) die("loop ended in step %d", g_step);
  if (g_bad_code != 401 || !g_bad.closed)
    die("bad token: login code %d, closed %d", g_bad_code, g_bad.closed);
  hd_rtmc_free(g_bad.c);
  hd_rtmc_free(g_a.c);
  hd_rtmc_free(g_b.c);
  uv_run(g_loop, UV_RUN_DEFAULT);
  if (uv_loop_close(g_loop) != 0) die("handles left open");
  fprintf(stderr, "itest_rtm_client: PASS\n");
  return 0;
}
