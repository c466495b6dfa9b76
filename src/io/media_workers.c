/* Media workers (see media_workers.h): N threads, each a libuv loop with its
 * own node and UDP socket; a job slot and an outbox per worker connect it to
 * the control thread. */
#include "io/media_workers.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/map.h"
#include "io/rtc_udp.h"
#include "io/worker_shards.h"
#include "io/ws.h"

/* Inbox: messages a worker takes per wake-up before it lets its loop turn
 * (packets, timers) run again, and the outbox level at which it stops taking
 * /rtc messages until the control thread has drained the outbox (each join
 * in a room of N queues N messages: back-pressure instead of dropping). */
#define INBOX_BATCH 64
#define OUTBOX_HIGH_MSGS (HD_MEDIA_OUTBOX_MAX_MSGS / 2)
#define OUTBOX_HIGH_BYTES (HD_MEDIA_OUTBOX_MAX_BYTES / 2)

/* ---- outbox items (worker -> control) ---- */
enum { OUT_SEND, OUT_CLOSE, OUT_EVENT };

/* A webhook event with its strings copied (hd_webhook_event_t only lends them). */
typedef struct {
  hd_webhook_event_type_t type;
  char app[64], room_name[130], room_sid[32], participant_sid[32], participant_identity[260], track_sid[32],
      track_kind[16], track_source[32];
  unsigned has; /* bit per optional string that was non-NULL */
} event_copy_t;

typedef struct out_item {
  struct out_item *next;
  int type;
  int code;
  uint64_t conn;
  size_t len;
  event_copy_t *ev;
  char text[]; /* OUT_SEND: the message; OUT_CLOSE: the reason */
} out_item_t;

typedef struct {
  hd_media_job_fn fn;
  void *arg;
  int done;
} job_t;

/* ---- inbox items (control -> worker): /rtc messages and closes, posted
 * without waiting (hd_media_workers_rtc_post). The control thread used to wait
 * for a worker's loop turn per /rtc message: with a worker busy forwarding a
 * large room, every ping, answer and join then cost the control thread a
 * whole packet batch of that worker (plus its scheduling delay on a loaded
 * machine), the control loop stopped reading its sockets, and in a join storm
 * (bench/forwarding live 800) clients were closed as idle and signaling to
 * them was dropped. ---- */
enum { IN_MSG, IN_CLOSED };

typedef struct in_item {
  struct in_item *next;
  int type;
  uint64_t conn;
  int64_t unix_now;
  size_t len;
  char text[]; /* IN_MSG: the message, NUL-terminated */
} in_item_t;

typedef struct worker {
  struct hd_media_workers *w;
  int idx;
  pthread_t thread;
  int thread_started;
  uv_loop_t loop;
  int loop_inited;
  uv_async_t wake;
  uv_async_t shard_wake; /* other workers handed it packets (io/worker_shards.h); with shards only */
  hd_node_t *node;
  hd_rtc_udp_t *udp;
  hd_ice_tcp_t *tcp; /* NULL without ICE-TCP */
  /* worker thread only: /rtc connection id -> participant (or &g_closed) */
  hd_map_t conns;
  /* guarded by mu */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  job_t *job;
  int stop;
  out_item_t *out_head, *out_tail;
  size_t out_n, out_bytes;
  uint64_t out_dropped;
  in_item_t *in_head, *in_tail;
  size_t in_n, in_bytes;
  uint64_t in_held; /* times the inbox waited for the outbox to drain (back-pressure) */
} worker_t;

struct hd_media_workers {
  hd_media_workers_config_t cfg;
  int n;
  worker_t *workers;
  uv_async_t *ctl_wake;   /* on the control loop: some outbox has items (freed by its close) */
  atomic_size_t sessions; /* the node-wide session count behind max_sessions */
  hd_quota_t *quota;      /* per-app / per-identity session counts, shared by the nodes */
  hd_shards_t *shards;    /* one room across workers; NULL when off */
  /* what posted /rtc messages verify tokens with (the same on every post;
   * the secrets it reads do not change while the node runs) */
  hd_token_secret_fn lookup;
  void *lookup_ud;
};

/* marks a connection whose participant the node removed: its close is on the
 * way to the control thread, late messages are ignored */
static char g_closed;

/* ---- worker side ---- */

static void out_push(worker_t *k, out_item_t *it) {
  hd_media_workers_t *w = k->w;
  pthread_mutex_lock(&k->mu);
  int full = k->out_n >= HD_MEDIA_OUTBOX_MAX_MSGS || k->out_bytes + it->len > HD_MEDIA_OUTBOX_MAX_BYTES;
  if (full) {
    k->out_dropped++;
  } else {
    it->next = NULL;
    if (k->out_tail)
      k->out_tail->next = it;
    else
      k->out_head = it;
    k->out_tail = it;
    k->out_n++;
    k->out_bytes += it->len;
  }
  pthread_mutex_unlock(&k->mu);
  if (full) {
    HD_LOGW("worker", "worker %d: outbox full, signaling output dropped", k->idx);
    free(it->ev);
    free(it);
    return;
  }
  uv_async_send(w->ctl_wake);
}

static out_item_t *item_new(int type, uint64_t conn, const char *text, size_t len) {
  out_item_t *it = calloc(1, sizeof *it + len + 1);
  if (!it) return NULL;
  it->type = type;
  it->conn = conn;
  it->len = len;
  if (len) memcpy(it->text, text, len);
  return it;
}

static void w_signal_send(void *ud, void *conn, const char *text, size_t len) {
  worker_t *k = ud;
  out_item_t *it = item_new(OUT_SEND, (uint64_t)(uintptr_t)conn, text, len);
  if (it)
    out_push(k, it);
  else
    HD_LOGW("worker", "signaling message dropped: out of memory");
}

static void w_signal_close(void *ud, void *conn, int code, const char *reason) {
  worker_t *k = ud;
  uint64_t id = (uint64_t)(uintptr_t)conn;
  /* the participant is being freed: from now on this connection has none */
  if (hd_map_get(&k->conns, &id, sizeof id)) hd_map_put(&k->conns, &id, sizeof id, &g_closed);
  out_item_t *it = item_new(OUT_CLOSE, id, reason ? reason : "", reason ? strlen(reason) : 0);
  if (!it) return;
  it->code = code;
  out_push(k, it);
}

static void copy_str(char *dst, size_t cap, const char *src, unsigned bit, unsigned *has) {
  if (!src) return;
  snprintf(dst, cap, "%s", src);
  *has |= bit;
}

static void w_on_event(void *ud, const hd_webhook_event_t *ev) {
  worker_t *k = ud;
  out_item_t *it = item_new(OUT_EVENT, 0, NULL, 0);
  event_copy_t *c = calloc(1, sizeof *c);
  if (!it || !c) {
    free(it);
    free(c);
    return;
  }
  c->type = ev->type;
  copy_str(c->app, sizeof c->app, ev->app, 1, &c->has);
  copy_str(c->room_name, sizeof c->room_name, ev->room_name, 2, &c->has);
  copy_str(c->room_sid, sizeof c->room_sid, ev->room_sid, 4, &c->has);
  copy_str(c->participant_sid, sizeof c->participant_sid, ev->participant_sid, 8, &c->has);
  copy_str(c->participant_identity, sizeof c->participant_identity, ev->participant_identity, 16, &c->has);
  copy_str(c->track_sid, sizeof c->track_sid, ev->track_sid, 32, &c->has);
  copy_str(c->track_kind, sizeof c->track_kind, ev->track_kind, 64, &c->has);
  copy_str(c->track_source, sizeof c->track_source, ev->track_source, 128, &c->has);
  it->ev = c;
  it->len = sizeof *c;
  out_push(k, it);
}

static void run_inbox(worker_t *k);

/* Runs posted /rtc messages, then the pending job or the stop request
 * (worker thread). */
static void on_wake(uv_async_t *a) {
  worker_t *k = a->data;
  pthread_mutex_lock(&k->mu);
  job_t *job = k->job;
  int stop = k->stop;
  pthread_mutex_unlock(&k->mu);
  if (!stop) run_inbox(k);
  if (job) {
    job->fn(k->node, job->arg, hd_io_now(&k->loop));
    hd_rtc_udp_kick(k->udp); /* what the job queued goes out; the timer follows new deadlines */
    pthread_mutex_lock(&k->mu);
    job->done = 1;
    k->job = NULL;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
  }
  if (stop && k->udp) {
    hd_ice_tcp_stop(k->tcp);
    k->tcp = NULL;
    hd_rtc_udp_stop(k->udp); /* sends what is queued (close_notify alerts) first */
    k->udp = NULL;
    if (k->w->shards) uv_close((uv_handle_t *)&k->shard_wake, NULL);
    uv_close((uv_handle_t *)&k->wake, NULL); /* the loop ends with its last handle */
  }
}

/* ---- shards (io/worker_shards.h) ---- */

static int w_shard_attach(void *ud, size_t room_size, const struct sockaddr *to, hd_srtp_t *rtp_tx,
                          void **stream) {
  worker_t *k = ud;
  hd_shard_stream_t *st = NULL;
  /* a viewer reached over ICE-TCP stays here: only this worker's connection can send to it */
  int tcp = hd_ice_tcp_has_peer(k->tcp, to);
  int rc = hd_shards_attach(k->w->shards, k->idx, room_size, tcp ? NULL : rtp_tx, &st);
  if (rc >= 0) *stream = st;
  return rc;
}

static void w_shard_detach(void *stream) { hd_shards_detach(stream); }

static void w_shard_flush(void *ud) {
  worker_t *k = ud;
  hd_shards_flush(k->w->shards, k->idx);
}

static void on_shard_wake(uv_async_t *a) {
  worker_t *k = a->data;
  hd_shards_run(k->w->shards, k->idx);
}

static void *worker_main(void *arg) {
  worker_t *k = arg;
  uv_run(&k->loop, UV_RUN_DEFAULT);
  return NULL;
}

/* ---- control side ---- */

static void deliver(hd_media_workers_t *w, out_item_t *it) {
  const hd_media_workers_config_t *c = &w->cfg;
  if (it->type == OUT_SEND) {
    if (c->signal_send) c->signal_send(c->ud, it->conn, it->text, it->len);
  } else if (it->type == OUT_CLOSE) {
    if (c->signal_close) c->signal_close(c->ud, it->conn, it->code, it->text);
  } else if (it->ev && c->on_event) {
    const event_copy_t *e = it->ev;
    hd_webhook_event_t ev = {
        .type = e->type,
        .app = e->has & 1 ? e->app : NULL,
        .room_name = e->has & 2 ? e->room_name : NULL,
        .room_sid = e->has & 4 ? e->room_sid : NULL,
        .participant_sid = e->has & 8 ? e->participant_sid : NULL,
        .participant_identity = e->has & 16 ? e->participant_identity : NULL,
        .track_sid = e->has & 32 ? e->track_sid : NULL,
        .track_kind = e->has & 64 ? e->track_kind : NULL,
        .track_source = e->has & 128 ? e->track_source : NULL,
    };
    c->on_event(c->ud, &ev);
  }
}

/* Delivers every worker's outbox, in order per worker. A worker that held
 * its inbox for a full outbox is woken to go on. */
static void drain_outboxes(hd_media_workers_t *w) {
  for (int i = 0; i < w->n; i++) {
    worker_t *k = &w->workers[i];
    pthread_mutex_lock(&k->mu);
    out_item_t *it = k->out_head;
    int was_full = k->out_n >= OUTBOX_HIGH_MSGS || k->out_bytes >= OUTBOX_HIGH_BYTES;
    int more = k->in_head != NULL && !k->stop;
    k->out_head = k->out_tail = NULL;
    k->out_n = k->out_bytes = 0;
    pthread_mutex_unlock(&k->mu);
    if (more && was_full) uv_async_send(&k->wake);
    while (it) {
      out_item_t *next = it->next;
      deliver(w, it);
      free(it->ev);
      free(it);
      it = next;
    }
  }
}

static void on_ctl_wake(uv_async_t *a) { drain_outboxes(a->data); }

void hd_media_workers_call(hd_media_workers_t *w, int i, hd_media_job_fn fn, void *arg) {
  worker_t *k = &w->workers[i];
  job_t job = {.fn = fn, .arg = arg};
  pthread_mutex_lock(&k->mu);
  k->job = &job;
  pthread_mutex_unlock(&k->mu);
  uv_async_send(&k->wake);
  pthread_mutex_lock(&k->mu);
  while (!job.done)
    pthread_cond_wait(&k->cv, &k->mu);
  pthread_mutex_unlock(&k->mu);
  drain_outboxes(w);
}

int hd_media_workers_count(const hd_media_workers_t *w) { return w->n; }

int hd_media_workers_port(const hd_media_workers_t *w, int i) { return hd_rtc_udp_port(w->workers[i].udp); }

int hd_media_room_worker(const char *app, const char *room, int n) {
  return n > 0 ? (int)(hd_fnv1a_pair(app, 0xff, room) % (uint32_t)n) : 0;
}

int hd_media_workers_for_room(const hd_media_workers_t *w, const char *app, const char *room) {
  return hd_media_room_worker(app, room, w->n);
}

/* ---- /rtc ---- */

typedef struct {
  uint64_t conn;
  const char *text;
  size_t len;
  hd_token_secret_fn lookup;
  void *lookup_ud;
  int64_t unix_now;
  int rc, was_joined;
  worker_t *k;
} rtc_job_t;

static void rtc_message_job(hd_node_t *node, void *arg, hd_time_t now) {
  rtc_job_t *j = arg;
  hd_map_t *conns = &j->k->conns;
  void *v = hd_map_get(conns, &j->conn, sizeof j->conn);
  if (v == &g_closed) { /* removed by the node; the close is on its way */
    j->rc = 0;
    j->was_joined = 1;
    return;
  }
  hd_participant_t *p = v;
  j->was_joined = p != NULL;
  j->rc = hd_node_rtc_message(node, (void *)(uintptr_t)j->conn, &p, j->text, j->len, j->lookup, j->lookup_ud,
                              j->unix_now, now);
  /* the node may have removed the participant itself (signal_close marked it) */
  if (hd_map_get(conns, &j->conn, sizeof j->conn) == &g_closed) return;
  if (p) {
    if (hd_map_put(conns, &j->conn, sizeof j->conn, p) < 0) { /* cannot track it: it leaves */
      hd_node_rtc_closed(node, p, now);
      j->rc = HD_ENOMEM;
    }
  } else {
    hd_map_del(conns, &j->conn, sizeof j->conn);
  }
}

int hd_media_workers_rtc_message(hd_media_workers_t *w, int i, uint64_t conn, const char *text, size_t len,
                                 hd_token_secret_fn lookup, void *lookup_ud, int64_t unix_now,
                                 int *was_joined) {
  rtc_job_t j = {.conn = conn,
                 .text = text,
                 .len = len,
                 .lookup = lookup,
                 .lookup_ud = lookup_ud,
                 .unix_now = unix_now,
                 .k = &w->workers[i]};
  hd_media_workers_call(w, i, rtc_message_job, &j);
  if (was_joined) *was_joined = j.was_joined;
  return j.rc;
}

static void rtc_closed_job(hd_node_t *node, void *arg, hd_time_t now);
static void noop_job(hd_node_t *node, void *arg, hd_time_t now) {
  (void)node;
  (void)arg;
  (void)now;
}

/* ---- /rtc without waiting: the inbox ---- */

/* A posted message the node refused (rc < 0) closes its connection, as
 * docs/protocol.md "Connection" says: a joined participant that left 1000, a
 * full room or node 1013 (try again later), an internal failure 1011, any
 * other refused join 1008. Later messages already posted on it are ignored. */
static void refuse_conn(worker_t *k, uint64_t conn, int rc, int was_joined) {
  int code = HD_WS_CLOSE_POLICY;
  const char *why = "join failed";
  if (was_joined) {
    code = HD_WS_CLOSE_NORMAL;
    why = "left";
  } else if (rc == HD_ENOSPC) {
    code = HD_WS_CLOSE_TRY_LATER;
    why = "full, try again later";
  } else if (rc == HD_ENOMEM) {
    code = HD_WS_CLOSE_INTERNAL;
    why = "internal error";
  }
  (void)hd_map_put(&k->conns, &conn, sizeof conn, &g_closed);
  out_item_t *it = item_new(OUT_CLOSE, conn, why, strlen(why));
  if (!it) return;
  it->code = code;
  out_push(k, it);
}

/* Takes up to INBOX_BATCH posted items, in order, while the outbox is below
 * its high-water mark; asks for another wake-up (after this loop turn's
 * packets) when more are waiting. Worker thread. */
static void run_inbox(worker_t *k) {
  hd_media_workers_t *w = k->w;
  int ran = 0, more = 0;
  for (;;) {
    pthread_mutex_lock(&k->mu);
    in_item_t *it = k->in_head;
    int hold = it && (k->out_n >= OUTBOX_HIGH_MSGS || k->out_bytes >= OUTBOX_HIGH_BYTES);
    if (hold) k->in_held++;
    if (it && !hold && ran < INBOX_BATCH) {
      k->in_head = it->next;
      if (!k->in_head) k->in_tail = NULL;
      k->in_n--;
      k->in_bytes -= it->len;
    } else {
      more = it && !hold; /* held: the control thread wakes us when it drained */
      it = NULL;
    }
    pthread_mutex_unlock(&k->mu);
    if (!it) break;
    hd_time_t now = hd_io_now(&k->loop);
    rtc_job_t j = {.conn = it->conn,
                   .text = it->text,
                   .len = it->len,
                   .lookup = w->lookup,
                   .lookup_ud = w->lookup_ud,
                   .unix_now = it->unix_now,
                   .k = k};
    if (it->type == IN_MSG) {
      rtc_message_job(k->node, &j, now);
      if (j.rc < 0) refuse_conn(k, it->conn, j.rc, j.was_joined);
    } else {
      rtc_closed_job(k->node, &j, now);
    }
    free(it);
    ran++;
  }
  if (ran) hd_rtc_udp_kick(k->udp); /* what the messages queued goes out; the timer follows */
  if (more) uv_async_send(&k->wake);
}

static int in_post(hd_media_workers_t *w, int i, int type, uint64_t conn, const char *text, size_t len,
                   int64_t unix_now) {
  worker_t *k = &w->workers[i];
  in_item_t *it = malloc(sizeof *it + len + 1);
  if (!it) return HD_ENOMEM;
  it->next = NULL;
  it->type = type;
  it->conn = conn;
  it->unix_now = unix_now;
  it->len = len;
  if (len) memcpy(it->text, text, len);
  it->text[len] = 0;
  for (;;) {
    pthread_mutex_lock(&k->mu);
    int room = k->in_n < HD_MEDIA_INBOX_MAX_MSGS && k->in_bytes + len <= HD_MEDIA_INBOX_MAX_BYTES;
    if (room) {
      if (k->in_tail)
        k->in_tail->next = it;
      else
        k->in_head = it;
      k->in_tail = it;
      k->in_n++;
      k->in_bytes += len;
    }
    pthread_mutex_unlock(&k->mu);
    if (room) break;
    /* Full: the worker is behind by HD_MEDIA_INBOX_MAX_MSGS messages. Wait for
     * it (back-pressure on the control loop, as before the inbox existed)
     * rather than drop a signaling message: a job runs after the worker's
     * next batch and drains the outboxes, which lets a held inbox go on. */
    hd_media_workers_call(w, i, noop_job, NULL);
  }
  uv_async_send(&k->wake);
  return 0;
}

int hd_media_workers_rtc_post(hd_media_workers_t *w, int i, uint64_t conn, const char *text, size_t len,
                              hd_token_secret_fn lookup, void *lookup_ud, int64_t unix_now) {
  if (w->lookup != lookup || w->lookup_ud != lookup_ud) {
    /* written once in practice (the same lookup every call), before the post
     * that publishes it to the worker (the inbox mutex orders the two): a
     * write on every call raced with the workers' reads */
    w->lookup = lookup;
    w->lookup_ud = lookup_ud;
  }
  return in_post(w, i, IN_MSG, conn, text, len, unix_now);
}

void hd_media_workers_rtc_post_closed(hd_media_workers_t *w, int i, uint64_t conn) {
  if (in_post(w, i, IN_CLOSED, conn, NULL, 0, 0) < 0) hd_media_workers_rtc_closed(w, i, conn);
}

static void rtc_closed_job(hd_node_t *node, void *arg, hd_time_t now) {
  rtc_job_t *j = arg;
  void *v = hd_map_get(&j->k->conns, &j->conn, sizeof j->conn);
  hd_map_del(&j->k->conns, &j->conn, sizeof j->conn);
  if (v && v != &g_closed) hd_node_rtc_closed(node, v, now);
}

void hd_media_workers_rtc_closed(hd_media_workers_t *w, int i, uint64_t conn) {
  rtc_job_t j = {.conn = conn, .k = &w->workers[i]};
  hd_media_workers_call(w, i, rtc_closed_job, &j);
}

/* ---- metrics ---- */

typedef struct {
  hd_node_metrics_t m;
  uint64_t send_calls, out_dropped;
  hd_ice_tcp_stats_t tcp;
  hd_shards_stats_t sh;
  worker_t *k;
} metrics_job_t;

static void metrics_job(hd_node_t *node, void *arg, hd_time_t now) {
  (void)now;
  metrics_job_t *j = arg;
  hd_node_metrics(node, &j->m);
  j->send_calls = hd_rtc_udp_send_calls(j->k->udp);
  hd_ice_tcp_stats(j->k->tcp, &j->tcp);
}

static int appendf(char *out, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ICE-TCP counters summed over workers (docs/operations.md "ICE-TCP"). */
static int ice_tcp_metrics(const metrics_job_t *per, int n, char *out, size_t cap, size_t *len) {
  hd_ice_tcp_stats_t s;
  memset(&s, 0, sizeof s);
  for (int i = 0; i < n; i++) {
    const hd_ice_tcp_stats_t *t = &per[i].tcp;
    s.conns += t->conns;
    s.accepted += t->accepted;
    s.refused_cap += t->refused_cap;
    s.closed_bad_frame += t->closed_bad_frame;
    s.closed_not_stun += t->closed_not_stun;
    s.closed_check_timeout += t->closed_check_timeout;
    s.closed_idle += t->closed_idle;
    s.closed_peer += t->closed_peer;
    s.out_dropped += t->out_dropped;
  }
  return appendf(out, cap, len,
                 "# HELP hudong_ice_tcp_connections Open ICE-TCP connections (RFC 6544) on the media ports.\n"
                 "# TYPE hudong_ice_tcp_connections gauge\nhudong_ice_tcp_connections %zu\n"
                 "# HELP hudong_ice_tcp_accepted_total ICE-TCP connections accepted.\n"
                 "# TYPE hudong_ice_tcp_accepted_total counter\nhudong_ice_tcp_accepted_total %llu\n"
                 "# HELP hudong_ice_tcp_closed_total ICE-TCP connections closed or refused, by reason.\n"
                 "# TYPE hudong_ice_tcp_closed_total counter\n"
                 "hudong_ice_tcp_closed_total{reason=\"max_connections\"} %llu\n"
                 "hudong_ice_tcp_closed_total{reason=\"bad_framing\"} %llu\n"
                 "hudong_ice_tcp_closed_total{reason=\"not_stun\"} %llu\n"
                 "hudong_ice_tcp_closed_total{reason=\"check_timeout\"} %llu\n"
                 "hudong_ice_tcp_closed_total{reason=\"idle\"} %llu\n"
                 "hudong_ice_tcp_closed_total{reason=\"peer\"} %llu\n"
                 "# HELP hudong_ice_tcp_dropped_total Datagrams dropped because an ICE-TCP connection's "
                 "send buffer was full.\n"
                 "# TYPE hudong_ice_tcp_dropped_total counter\nhudong_ice_tcp_dropped_total %llu\n",
                 s.conns, (unsigned long long)s.accepted, (unsigned long long)s.refused_cap,
                 (unsigned long long)s.closed_bad_frame, (unsigned long long)s.closed_not_stun,
                 (unsigned long long)s.closed_check_timeout, (unsigned long long)s.closed_idle,
                 (unsigned long long)s.closed_peer, (unsigned long long)s.out_dropped);
}

static int appendf(char *out, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int appendf(char *out, size_t cap, size_t *len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(out + *len, cap - *len, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= cap - *len) return HD_ENOSPC;
  *len += (size_t)n;
  return 0;
}

/* One room across workers (io/worker_shards.h), per worker. */
static int shard_metrics(const metrics_job_t *per, int n, char *out, size_t cap, size_t *len) {
  static const struct {
    const char *name, *type, *help;
  } fam[] = {
      {"hudong_shard_handed_total", "counter",
       "RTP packets a worker handed to another worker to seal and send (its rooms' viewers placed there)."},
      {"hudong_shard_dropped_total", "counter",
       "RTP packets dropped because the ring to the shard worker was full (media_shard_ring)."},
      {"hudong_shard_full_waits_total", "counter",
       "Waits (at most 2 ms each) a worker made for a full ring to a shard worker before dropping."},
      {"hudong_shard_sent_total", "counter", "Packets a worker sealed and sent for other workers' rooms."},
      {"hudong_shard_seal_errors_total", "counter", "Handed packets the shard worker could not seal."},
      {"hudong_shard_streams", "gauge",
       "Viewers each worker seals and sends for (its own rooms' and others')."}};
  int rc = 0;
  for (size_t f = 0; f < sizeof fam / sizeof fam[0] && !rc; f++) {
    rc = appendf(out, cap, len, "# HELP %s %s\n# TYPE %s %s\n", fam[f].name, fam[f].help, fam[f].name,
                 fam[f].type);
    for (int i = 0; i < n && !rc; i++) {
      const hd_shards_stats_t *t = &per[i].sh;
      const uint64_t v[] = {t->handed, t->dropped_full, t->full_waits, t->sent, t->seal_errors, t->streams};
      rc = appendf(out, cap, len, "%s{worker=\"%d\"} %llu\n", fam[f].name, i, (unsigned long long)v[f]);
    }
  }
  return rc;
}

int hd_media_workers_metrics_text(hd_media_workers_t *w, char *out, size_t cap) {
  metrics_job_t *per = calloc((size_t)w->n, sizeof *per);
  if (!per) return HD_ENOMEM;
  hd_node_metrics_t sum;
  memset(&sum, 0, sizeof sum);
  uint64_t send_calls = 0, dropped = 0;
  for (int i = 0; i < w->n; i++) {
    per[i].k = &w->workers[i];
    hd_media_workers_call(w, i, metrics_job, &per[i]);
    pthread_mutex_lock(&per[i].k->mu);
    per[i].out_dropped = per[i].k->out_dropped;
    pthread_mutex_unlock(&per[i].k->mu);
    hd_node_metrics_add(&sum, &per[i].m);
    send_calls += per[i].send_calls;
    dropped += per[i].out_dropped;
    if (w->shards) { /* what worker i sealed and sent for the others is the node's output too */
      hd_shards_stats(w->shards, i, &per[i].sh);
      sum.stats.packets_out += per[i].sh.sent;
      sum.stats.bytes_out += per[i].sh.bytes;
      sum.stats.drop_send_error += per[i].sh.send_errors;
      send_calls += per[i].sh.send_calls;
    }
  }
  int n = hd_node_metrics_format(&sum, out, cap);
  size_t len = n > 0 ? (size_t)n : 0;
  int rc = n < 0 ? n : 0;
  if (!rc)
    rc = appendf(
        out, cap, &len,
        "# HELP hudong_udp_send_calls_total sendmmsg calls on the media ports "
        "(hudong_packets_out_total / this = datagrams per call).\n"
        "# TYPE hudong_udp_send_calls_total counter\nhudong_udp_send_calls_total %llu\n"
        "# HELP hudong_media_workers Media worker threads (each a loop, a UDP port, its rooms).\n"
        "# TYPE hudong_media_workers gauge\nhudong_media_workers %d\n"
        "# HELP hudong_worker_outbox_dropped_total Signaling output a worker dropped because "
        "the control thread fell behind.\n"
        "# TYPE hudong_worker_outbox_dropped_total counter\nhudong_worker_outbox_dropped_total %llu\n",
        (unsigned long long)send_calls, w->n, (unsigned long long)dropped);
  static const struct {
    const char *name, *type, *help;
  } fam[] = {{"hudong_worker_packets_in_total", "counter", "Datagrams received, per media worker."},
             {"hudong_worker_packets_out_total", "counter", "Datagrams sent, per media worker."},
             {"hudong_worker_rooms", "gauge", "Rooms pinned to each media worker."},
             {"hudong_worker_sessions", "gauge", "WebRTC sessions on each media worker."}};
  for (int f = 0; f < 4 && !rc; f++) {
    rc = appendf(out, cap, &len, "# HELP %s %s\n# TYPE %s %s\n", fam[f].name, fam[f].help, fam[f].name,
                 fam[f].type);
    for (int i = 0; i < w->n && !rc; i++) {
      const hd_node_metrics_t *m = &per[i].m;
      const uint64_t v[] = {m->stats.packets_in, m->stats.packets_out, m->n_rooms,
                            m->n_publish + m->n_play + m->n_subscribe};
      rc = appendf(out, cap, &len, "%s{worker=\"%d\"} %llu\n", fam[f].name, i, (unsigned long long)v[f]);
    }
  }
  if (!rc) rc = ice_tcp_metrics(per, w->n, out, cap, &len);
  if (!rc && w->shards) rc = shard_metrics(per, w->n, out, cap, &len);
  free(per);
  return rc < 0 ? rc : (int)len;
}

/* ---- lifecycle ---- */

static void close_all_job(hd_node_t *node, void *arg, hd_time_t now) {
  (void)now;
  hd_node_close_all(node, arg);
}

void hd_media_workers_close_all(hd_media_workers_t *w, const char *why) {
  for (int i = 0; i < w->n; i++)
    hd_media_workers_call(w, i, close_all_job, (void *)why);
}

static void free_handle(uv_handle_t *h) { free(h); }

static void worker_free(worker_t *k) {
  if (k->node) hd_node_free(k->node);
  hd_map_free(&k->conns);
  for (in_item_t *it = k->in_head, *next; it; it = next) {
    next = it->next;
    free(it);
  }
  for (out_item_t *it = k->out_head, *next; it; it = next) {
    next = it->next;
    free(it->ev);
    free(it);
  }
  pthread_mutex_destroy(&k->mu);
  pthread_cond_destroy(&k->cv);
}

/* ICE-TCP on worker k: a TCP listener on the number of its UDP port, and the
 * passive candidate in what its node offers and answers. With ephemeral ports
 * (base_port 0), a UDP port whose number is taken on TCP is traded for another
 * one, a few times. */
static int worker_ice_tcp_init(hd_media_workers_t *w, worker_t *k, int announce, char *err, size_t errcap) {
  const hd_media_workers_config_t *c = &w->cfg;
  int port = hd_rtc_udp_port(k->udp);
  for (int tries = 1; !c->base_port && tries < 8; tries++) {
    if (hd_ice_tcp_start(&k->tcp, &k->loop, k->node, k->udp, c->bind_host, port, &c->ice_tcp_cfg) == 0) break;
    hd_rtc_udp_stop(k->udp); /* closed when the loop runs */
    k->udp = NULL;
    if (hd_rtc_udp_start(&k->udp, &k->loop, k->node, c->bind_host, 0) < 0) {
      snprintf(err, errcap, "cannot bind UDP %s:0 (worker %d)", c->bind_host, k->idx);
      return HD_EIO;
    }
    port = hd_rtc_udp_port(k->udp);
    if (!c->announce_port) announce = port;
    hd_node_set_rtc_port(k->node, (uint16_t)announce);
  }
  if (!k->tcp &&
      hd_ice_tcp_start(&k->tcp, &k->loop, k->node, k->udp, c->bind_host, port, &c->ice_tcp_cfg) < 0) {
    snprintf(err, errcap,
             "cannot listen on TCP %s:%d for ICE-TCP (worker %d; the media port's number is used for both "
             "UDP and TCP): free the port or set \"ice_tcp\": {\"enabled\": false}",
             c->bind_host, port, k->idx);
    return HD_EIO;
  }
  hd_node_set_rtc_tcp_port(k->node, (uint16_t)announce);
  return 0;
}

/* Sets worker i up on the caller's thread (its loop runs later on its own). */
static int worker_init(hd_media_workers_t *w, int i, char *err, size_t errcap) {
  worker_t *k = &w->workers[i];
  const hd_media_workers_config_t *c = &w->cfg;
  k->w = w;
  k->idx = i;
  pthread_mutex_init(&k->mu, NULL);
  pthread_cond_init(&k->cv, NULL);
  int rc = hd_map_init(&k->conns, 1u << 20);
  if (rc == 0) rc = uv_loop_init(&k->loop);
  if (rc != 0) {
    snprintf(err, errcap, "worker %d: loop init failed", i);
    return HD_ENOMEM;
  }
  k->loop_inited = 1;
  uv_async_init(&k->loop, &k->wake, on_wake);
  k->wake.data = k;
  hd_node_config_t nc = c->node;
  nc.signal_send = w_signal_send;
  nc.signal_close = w_signal_close;
  nc.signal_ud = k;
  nc.on_event = c->on_event ? w_on_event : NULL;
  nc.event_ud = k;
  nc.shared_sessions = &w->sessions;
  nc.quota = w->quota;
  if (w->shards) {
    uv_async_init(&k->loop, &k->shard_wake, on_shard_wake);
    k->shard_wake.data = k;
    nc.shard_attach = w_shard_attach;
    nc.shard_send = hd_shards_send;
    nc.shard_detach = w_shard_detach;
    nc.shard_ud = k;
  }
  if ((rc = hd_node_new(&k->node, &nc, c->cert)) < 0) {
    snprintf(err, errcap, "worker %d: node init failed: %s", i, hd_strerror(rc));
    return rc;
  }
  int port = c->base_port ? c->base_port + i : 0;
  if (port > 65535 || (rc = hd_rtc_udp_start(&k->udp, &k->loop, k->node, c->bind_host, port)) < 0) {
    snprintf(err, errcap, "cannot bind UDP %s:%d (worker %d of %d uses base port + %d)", c->bind_host, port,
             i, w->n, i);
    return HD_EIO;
  }
  int announce = c->announce_port ? c->announce_port + i : hd_rtc_udp_port(k->udp);
  hd_node_set_rtc_port(k->node, (uint16_t)announce);
  if (c->ice_tcp && (rc = worker_ice_tcp_init(w, k, announce, err, errcap)) < 0) return rc;
  if (w->shards) { /* after ICE-TCP, which may have traded the UDP socket */
    hd_shards_set_worker(w->shards, i, hd_rtc_udp_fd(k->udp), hd_rtc_udp_gso(k->udp), &k->shard_wake);
    hd_rtc_udp_set_on_flush(k->udp, w_shard_flush, k);
  }
  return 0;
}

/* Frees a worker whose thread never ran (start failed part way). */
static void worker_abort(worker_t *k) {
  if (k->loop_inited) {
    hd_ice_tcp_stop(k->tcp);
    k->tcp = NULL;
    if (k->udp) hd_rtc_udp_stop(k->udp);
    k->udp = NULL;
    if (k->w->shards) uv_close((uv_handle_t *)&k->shard_wake, NULL);
    uv_close((uv_handle_t *)&k->wake, NULL);
    uv_run(&k->loop, UV_RUN_DEFAULT);
    uv_loop_close(&k->loop);
  }
  worker_free(k);
}

int hd_media_workers_start(hd_media_workers_t **out, const hd_media_workers_config_t *cfg, char *err,
                           size_t errcap) {
  if (cfg->n < 1 || cfg->n > HD_MEDIA_WORKERS_MAX) {
    snprintf(err, errcap, "media workers must be 1..%d", HD_MEDIA_WORKERS_MAX);
    return HD_EINVAL;
  }
  hd_media_workers_t *w = calloc(1, sizeof *w);
  if (w) w->workers = calloc((size_t)cfg->n, sizeof *w->workers);
  if (!w || !w->workers) {
    if (w) free(w);
    snprintf(err, errcap, "out of memory");
    return HD_ENOMEM;
  }
  w->cfg = *cfg;
  w->n = cfg->n;
  atomic_init(&w->sessions, 0);
  if (hd_quota_new(&w->quota, cfg->node.max_sessions_per_app, cfg->node.max_sessions_per_identity,
                   cfg->node.max_sessions ? cfg->node.max_sessions : 1000) < 0) {
    free(w->workers);
    free(w);
    snprintf(err, errcap, "out of memory");
    return HD_ENOMEM;
  }
  w->ctl_wake = calloc(1, sizeof *w->ctl_wake);
  if (!w->ctl_wake) {
    hd_quota_free(w->quota);
    free(w->workers);
    free(w);
    snprintf(err, errcap, "out of memory");
    return HD_ENOMEM;
  }
  size_t ring = cfg->shard_ring ? cfg->shard_ring : HD_SHARDS_RING_DEFAULT; /* 0 = the default */
  int src =
      cfg->shard_min_room && cfg->n > 1 ? hd_shards_new(&w->shards, cfg->n, cfg->shard_min_room, ring) : 0;
  if (src < 0) {
    free(w->ctl_wake);
    hd_quota_free(w->quota);
    free(w->workers);
    free(w);
    if (src == HD_EINVAL)
      snprintf(err, errcap, "media shards: media_shard_ring %zu is out of range: give 1..%d slots (0 = %d)",
               ring, HD_SHARDS_RING_MAX, HD_SHARDS_RING_DEFAULT);
    else
      snprintf(err, errcap, "media shards (%d workers, rings of %zu slots): %s", cfg->n,
               hd_shards_ring_slots(ring), hd_strerror(src));
    return src;
  }
  uv_async_init(cfg->control_loop, w->ctl_wake, on_ctl_wake);
  w->ctl_wake->data = w;
  (void)hd_log_level(); /* read HUDONG_LOG once, before any thread logs */
  int rc = 0, inited = 0;
  for (; inited < w->n && rc == 0; inited++)
    rc = worker_init(w, inited, err, errcap);
  if (rc < 0) {
    for (int i = 0; i < inited; i++)
      worker_abort(&w->workers[i]);
    uv_close((uv_handle_t *)w->ctl_wake, free_handle);
    hd_quota_free(w->quota);
    hd_shards_free(w->shards);
    free(w->workers);
    free(w);
    return rc;
  }
  for (int i = 0; i < w->n; i++) {
    worker_t *k = &w->workers[i];
    if (pthread_create(&k->thread, NULL, worker_main, k) != 0) {
      snprintf(err, errcap, "cannot start media worker thread %d", i);
      hd_media_workers_stop(w);
      return HD_ENOMEM;
    }
    k->thread_started = 1;
    char name[16];
    snprintf(name, sizeof name, "hd-media-%d", i & 63);
    pthread_setname_np(k->thread, name);
  }
  *out = w;
  return 0;
}

static void quiet_job(hd_node_t *node, void *arg, hd_time_t now) {
  (void)node;
  (void)arg;
  (void)now;
}

void hd_media_workers_stop(hd_media_workers_t *w) {
  if (!w) return;
  if (w->shards) {
    /* no worker wakes or sends for another any more; after one job each
     * (between two batches) none is still doing so: sockets may close */
    hd_shards_stop(w->shards);
    for (int i = 0; i < w->n; i++)
      if (w->workers[i].thread_started) hd_media_workers_call(w, i, quiet_job, NULL);
  }
  /* stop and join every thread before freeing any worker: draining the
   * outboxes touches them all */
  for (int i = 0; i < w->n; i++) {
    worker_t *k = &w->workers[i];
    if (!k->thread_started) continue;
    pthread_mutex_lock(&k->mu);
    k->stop = 1;
    pthread_mutex_unlock(&k->mu);
    uv_async_send(&k->wake);
  }
  for (int i = 0; i < w->n; i++)
    if (w->workers[i].thread_started) pthread_join(w->workers[i].thread, NULL);
  drain_outboxes(w);
  for (int i = 0; i < w->n; i++) {
    worker_t *k = &w->workers[i];
    if (k->thread_started) {
      uv_loop_close(&k->loop);
      worker_free(k);
    } else {
      worker_abort(k);
    }
  }
  uv_close((uv_handle_t *)w->ctl_wake, free_handle);
  hd_quota_free(w->quota);   /* after the nodes, which give their sessions back to it */
  hd_shards_free(w->shards); /* after the nodes, whose viewers retire their streams */
  free(w->workers);
  free(w);
}
