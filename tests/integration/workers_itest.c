/* Media workers (io/media_workers.h) with real threads, loops and UDP sockets
 * on 127.0.0.1: rooms pinned by hash to distinct workers, jobs run on the
 * owning worker's thread (always the same one, never the caller's), worker
 * output (signaling, closes, webhook events) delivered on the control thread
 * in order, /rtc participants kept per connection id across a node-side
 * removal, metrics summed over workers, orderly stop. Media forwarding across
 * workers is covered by the e2e tests (every room there lands on one of the
 * default 2 workers) and by `hudong bench load`. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "base/err.h"
#include "io/media_workers.h"
#include "proto/dtls.h"
#include "proto/token.h"

static int g_fail;
#define CHECK(c, ...)                                                                                        \
  do {                                                                                                       \
    if (!(c)) {                                                                                              \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                                   \
      fprintf(stderr, __VA_ARGS__);                                                                          \
      fprintf(stderr, "\n");                                                                                 \
      g_fail = 1;                                                                                            \
    }                                                                                                        \
  } while (0)

/* what the control side received, in order */
typedef struct {
  char log[16384];
  size_t len;
  int sends, closes, events;
  uint64_t last_close_conn;
  pthread_t control;
  int wrong_thread;
} sink_t;

static void logf_(sink_t *k, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(k->log + k->len, sizeof k->log - k->len, fmt, ap);
  va_end(ap);
  if (n > 0 && (size_t)n < sizeof k->log - k->len) k->len += (size_t)n;
}

static void on_send(void *ud, uint64_t conn, const char *text, size_t len) {
  sink_t *k = ud;
  if (!pthread_equal(pthread_self(), k->control)) k->wrong_thread = 1;
  k->sends++;
  logf_(k, "send %llu %.*s\n", (unsigned long long)conn, (int)(len > 60 ? 60 : len), text);
}

static void on_close(void *ud, uint64_t conn, int code, const char *reason) {
  sink_t *k = ud;
  if (!pthread_equal(pthread_self(), k->control)) k->wrong_thread = 1;
  k->closes++;
  k->last_close_conn = conn;
  logf_(k, "close %llu %d %s\n", (unsigned long long)conn, code, reason);
}

static void on_event(void *ud, const hd_webhook_event_t *ev) {
  sink_t *k = ud;
  if (!pthread_equal(pthread_self(), k->control)) k->wrong_thread = 1;
  k->events++;
  logf_(k, "event %s %s %s %s\n", hd_webhook_event_name(ev->type), ev->app, ev->room_name,
        ev->participant_identity ? ev->participant_identity : "-");
}

static const char *lookup(void *ud, const char *key) {
  (void)ud;
  return strcmp(key, "k") ? NULL : "s3cret";
}

/* a job that records the thread it ran on and creates a room */
typedef struct {
  pthread_t ran_on;
  const char *room;
  int rc;
  char *json;
} job_t;

static void create_room_job(hd_node_t *node, void *arg, hd_time_t now) {
  job_t *j = arg;
  j->ran_on = pthread_self();
  hd_room_opts_t o = {.empty_timeout = HD_SEC(60)};
  j->rc = hd_node_admin_create_room(node, "k", j->room, &o, (int64_t)time(NULL), now, &j->json);
}

static void quick_room_job(hd_node_t *node, void *arg, hd_time_t now) {
  job_t *j = arg;
  hd_room_opts_t o = {.empty_timeout = HD_MS(50)};
  j->rc = hd_node_admin_create_room(node, "k", j->room, &o, (int64_t)time(NULL), now, &j->json);
}

static void whoami_job(hd_node_t *node, void *arg, hd_time_t now) {
  (void)node;
  (void)now;
  ((job_t *)arg)->ran_on = pthread_self();
}

static void remove_job(hd_node_t *node, void *arg, hd_time_t now) {
  job_t *j = arg;
  j->rc = hd_node_admin_remove(node, "k", j->room, "alice", now);
}

/* A job that keeps its worker busy (as a large room's packet batch does) until
 * the control thread says so or 5 s pass; it records which came first. */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int release, released_by_control;
  hd_media_workers_t *w;
} busy_t;

static void busy_job(hd_node_t *node, void *arg, hd_time_t now) {
  (void)node;
  (void)now;
  busy_t *b = arg;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 5;
  pthread_mutex_lock(&b->mu);
  while (!b->release)
    if (pthread_cond_timedwait(&b->cv, &b->mu, &until) != 0) break;
  b->released_by_control = b->release;
  pthread_mutex_unlock(&b->mu);
}

/* The poster: a second thread standing in for the control loop's /rtc
 * handler while the main thread waits in hd_media_workers_call (outputs are
 * then still delivered on the main thread). It posts once the job runs and
 * releases the job only after its posts returned. */
typedef struct {
  busy_t *b;
  const char *join, *ping, *bad;
  int rc[3];
} poster_t;

static void *poster_thread(void *arg) {
  poster_t *p = arg;
  busy_t *b = p->b;
  uv_sleep(50); /* the job is running (it holds the worker until released) */
  p->rc[0] =
      hd_media_workers_rtc_post(b->w, 1, 9, p->join, strlen(p->join), lookup, NULL, (int64_t)time(NULL));
  p->rc[1] =
      hd_media_workers_rtc_post(b->w, 1, 9, p->ping, strlen(p->ping), lookup, NULL, (int64_t)time(NULL));
  p->rc[2] =
      hd_media_workers_rtc_post(b->w, 1, 10, p->bad, strlen(p->bad), lookup, NULL, (int64_t)time(NULL));
  pthread_mutex_lock(&b->mu);
  b->release = 1;
  pthread_cond_signal(&b->cv);
  pthread_mutex_unlock(&b->mu);
  return NULL;
}

static void join_msg(const char *room, const char *identity, char *out, size_t cap) {
  hd_token_claims_t c;
  memset(&c, 0, sizeof c);
  snprintf(c.key, sizeof c.key, "k");
  snprintf(c.identity, sizeof c.identity, "%s", identity);
  snprintf(c.room, sizeof c.room, "%s", room);
  c.room_join = c.can_publish = c.can_subscribe = 1;
  c.exp = (int64_t)time(NULL) + 600;
  char tok[HD_TOKEN_MAX];
  if (hd_token_mint(&c, "s3cret", tok, sizeof tok) < 0) abort();
  snprintf(out, cap, "{\"type\":\"join\",\"id\":\"1\",\"token\":\"%s\"}", tok);
}

int main(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  hd_dtls_cert_t *cert;
  CHECK(hd_dtls_cert_generate(&cert) == 0, "cert");
  sink_t sink;
  memset(&sink, 0, sizeof sink);
  sink.control = pthread_self();
  hd_media_workers_config_t cfg = {.n = 2,
                                   .bind_host = "127.0.0.1",
                                   .node = {.rtc_ip = "127.0.0.1", .max_sessions = 10},
                                   .cert = cert,
                                   .control_loop = &loop,
                                   .signal_send = on_send,
                                   .signal_close = on_close,
                                   .on_event = on_event,
                                   .ud = &sink};
  hd_media_workers_t *w = NULL;
  char err[256];
  CHECK(hd_media_workers_start(&w, &cfg, err, sizeof err) == 0, "start: %s", err);
  if (!w) return 1;
  CHECK(hd_media_workers_count(w) == 2, "count");
  int p0 = hd_media_workers_port(w, 0), p1 = hd_media_workers_port(w, 1);
  CHECK(p0 > 0 && p1 > 0 && p0 != p1, "ports %d %d", p0, p1);

  /* two room names that hash to different workers */
  char rooms[2][32] = {"", ""};
  for (int i = 0; i < 100 && (!rooms[0][0] || !rooms[1][0]); i++) {
    char name[32];
    snprintf(name, sizeof name, "room-%d", i);
    int wi = hd_media_workers_for_room(w, "k", name);
    CHECK(wi == hd_media_workers_for_room(w, "k", name), "hash is a function");
    if (!rooms[wi][0]) snprintf(rooms[wi], sizeof rooms[wi], "%s", name);
  }
  CHECK(rooms[0][0] && rooms[1][0], "no room for one worker in 100 names");

  /* jobs run on the worker's own thread, the same one every time */
  pthread_t t[2];
  for (int i = 0; i < 2; i++) {
    job_t j = {.room = rooms[i]};
    hd_media_workers_call(w, i, create_room_job, &j);
    CHECK(j.rc == 0, "create %s: %d", rooms[i], j.rc);
    CHECK(j.json && strstr(j.json, rooms[i]), "room json");
    free(j.json);
    t[i] = j.ran_on;
    CHECK(!pthread_equal(j.ran_on, pthread_self()), "job ran on the caller's thread");
    job_t again = {0};
    hd_media_workers_call(w, i, whoami_job, &again);
    CHECK(pthread_equal(again.ran_on, t[i]), "worker %d changed threads", i);
  }
  CHECK(!pthread_equal(t[0], t[1]), "both workers on one thread");
  /* room_started came back through the outbox, on this thread, before call returned */
  CHECK(sink.events == 2, "events %d: %s", sink.events, sink.log);
  CHECK(strstr(sink.log, "room_started k room-") != NULL, "event text: %s", sink.log);

  /* /rtc: alice joins the room of worker 1 on connection 7 */
  char msg[HD_TOKEN_MAX + 128];
  join_msg(rooms[1], "alice", msg, sizeof msg);
  int was = -1;
  int rc = hd_media_workers_rtc_message(w, 1, 7, msg, strlen(msg), lookup, NULL, (int64_t)time(NULL), &was);
  CHECK(rc == 0 && was == 0, "join rc %d was %d", rc, was);
  CHECK(strstr(sink.log, "send 7 {\"type\":\"joined\"") != NULL, "joined reply: %s", sink.log);
  int sends = sink.sends;
  const char *ping = "{\"type\":\"ping\",\"id\":\"2\",\"t\":1}";
  rc = hd_media_workers_rtc_message(w, 1, 7, ping, strlen(ping), lookup, NULL, (int64_t)time(NULL), &was);
  CHECK(rc == 0 && was == 1 && sink.sends == sends + 1, "ping: rc %d was %d", rc, was);
  CHECK(strstr(sink.log, "send 7 {\"type\":\"pong\"") != NULL, "pong: %s", sink.log);

  /* a bad join on connection 8 is refused and says why */
  const char *bad = "{\"type\":\"join\",\"id\":\"1\",\"token\":\"x.y.z\"}";
  rc = hd_media_workers_rtc_message(w, 0, 8, bad, strlen(bad), lookup, NULL, (int64_t)time(NULL), &was);
  CHECK(rc < 0 && was == 0, "bad join rc %d", rc);
  CHECK(strstr(sink.log, "send 8 {\"type\":\"error\"") != NULL, "bad join error: %s", sink.log);

  /* the node removes alice: a close for connection 7 reaches this thread, and
   * later messages on it are ignored (no participant any more, no new join) */
  job_t rm = {.room = rooms[1]};
  hd_media_workers_call(w, 1, remove_job, &rm);
  CHECK(rm.rc == 0, "remove rc %d", rm.rc);
  CHECK(sink.closes == 1 && sink.last_close_conn == 7, "close: %s", sink.log);
  sends = sink.sends;
  rc = hd_media_workers_rtc_message(w, 1, 7, ping, strlen(ping), lookup, NULL, (int64_t)time(NULL), &was);
  CHECK(rc == 0 && sink.sends == sends, "message after removal answered: %s", sink.log);
  hd_media_workers_rtc_closed(w, 1, 7);
  hd_media_workers_rtc_closed(w, 0, 8);

  /* Posting does not wait for the worker (a join storm into a room whose
   * worker is busy forwarding stalled the control loop, which then read no
   * socket: clients closed as idle, signaling dropped). While worker 1 is
   * held by a job, bob's join and a ping are posted; the job is released by
   * this thread only after both posts returned, so a post that waited for
   * the worker would leave the job to time out instead. Replies come through
   * the outbox in order; a refused join closes its connection with 1008. */
  busy_t b = {.w = w};
  pthread_mutex_init(&b.mu, NULL);
  pthread_cond_init(&b.cv, NULL);
  join_msg(rooms[1], "bob", msg, sizeof msg);
  poster_t po = {.b = &b, .join = msg, .ping = "{\"type\":\"ping\",\"id\":\"p9\",\"t\":1}", .bad = bad};
  pthread_t pt;
  CHECK(pthread_create(&pt, NULL, poster_thread, &po) == 0, "poster thread");
  hd_media_workers_call(w, 1, busy_job, &b);
  pthread_join(pt, NULL);
  CHECK(po.rc[0] == 0 && po.rc[1] == 0 && po.rc[2] == 0, "posts %d %d %d", po.rc[0], po.rc[1], po.rc[2]);
  CHECK(b.released_by_control, "a post waited for the busy worker");
  uint64_t t1 = uv_hrtime();
  while ((!strstr(sink.log, "send 9 {\"type\":\"pong\"") || !strstr(sink.log, "close 10 ")) &&
         uv_hrtime() - t1 < 3000000000ull) {
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_sleep(5);
  }
  const char *jd = strstr(sink.log, "send 9 {\"type\":\"joined\"");
  const char *pg = strstr(sink.log, "send 9 {\"type\":\"pong\"");
  CHECK(jd && pg && jd < pg, "posted join then ping answered in order: %s", sink.log);
  CHECK(strstr(sink.log, "close 10 1008 join failed") != NULL, "refused posted join closed 1008: %s",
        sink.log);
  hd_media_workers_rtc_post_closed(w, 1, 9);
  hd_media_workers_rtc_post_closed(w, 1, 10);
  pthread_mutex_destroy(&b.mu);
  pthread_cond_destroy(&b.cv);

  /* metrics: rooms summed over the workers, one per worker */
  char *text = malloc(65536);
  int n = hd_media_workers_metrics_text(w, text, 65536);
  CHECK(n > 0, "metrics %d", n);
  if (n > 0) {
    CHECK(strstr(text, "\nhudong_rooms 2\n") != NULL, "summed rooms");
    CHECK(strstr(text, "hudong_media_workers 2\n") != NULL, "workers gauge");
    CHECK(strstr(text, "hudong_worker_rooms{worker=\"0\"} 1\n") != NULL, "worker 0 rooms");
    CHECK(strstr(text, "hudong_worker_rooms{worker=\"1\"} 1\n") != NULL, "worker 1 rooms");
  }
  free(text);

  /* output a worker produces on its own (its timer, not a job) reaches the
   * control loop through the async wake-up: a room with a 50 ms empty timeout
   * finishes by itself */
  int events = sink.events;
  job_t quick = {.room = "quick"};
  hd_media_workers_call(w, hd_media_workers_for_room(w, "k", "quick"), quick_room_job, &quick);
  CHECK(quick.rc == 0 && sink.events == events + 1, "quick room: %d", quick.rc);
  free(quick.json);
  uint64_t t0 = uv_hrtime();
  while (sink.events < events + 2 && uv_hrtime() - t0 < 3000000000ull) {
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_sleep(5);
  }
  CHECK(sink.events == events + 2 && strstr(sink.log, "room_finished k quick"), "timer output: %s", sink.log);
  events = sink.events;
  hd_media_workers_close_all(w, "test over");
  CHECK(sink.events == events + 2, "room_finished of both rooms after close_all: %s", sink.log);
  CHECK(!sink.wrong_thread, "output delivered on a worker thread");
  hd_media_workers_stop(w);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0, "control loop has handles left");
  hd_dtls_cert_free(cert);
  if (g_fail) {
    fprintf(stderr, "log:\n%s", sink.log);
    return 1;
  }
  printf("workers_itest: ok (ports %d, %d; rooms %s -> 0, %s -> 1)\n", p0, p1, rooms[0], rooms[1]);
  return 0;
}
