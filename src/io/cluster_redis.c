/* Redis link of a cluster node (see cluster_redis.h).
 *
 * Registry layout (docs/overlay.md "Key layout"):
 *   hudong:node:<id>  STRING, the node's JSON entry, SET ... PX ttl each heartbeat
 *   hudong:nodes      SET of node ids: an index so that a read is SMEMBERS +
 *                     MGET of those keys, not a SCAN of the whole keyspace
 * A node is alive while its key exists: Redis's own expiry decides, so the
 * nodes' clocks never need to agree. An id in the set whose key has expired is
 * removed (SREM) by whichever node notices first.
 *
 * hiredis 0.14 notes: the libuv adapter it ships (adapters/libuv.h) returns
 * early on a poll error, so a refused connect is never reported and the
 * context waits forever (measured: a node pointed at a closed port saw nothing
 * until our watchdog fired; hiredis 1.x fixed it the same way as below). The
 * small adapter here passes an error on as readiness so that hiredis reads the
 * socket error itself ("Connection refused"). Its async API has no timeouts:
 * the heartbeat timer is the watchdog, a connect or a heartbeat unanswered for
 * a TTL drops the connection and starts over. */
#include "io/cluster_redis.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/err.h"
#include "base/log.h"
#include "io/redis_uv.h"
#include "io/rtc_udp.h"

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 2000
#define STOP_GRACE_MS 500

enum { ST_IDLE, ST_CONNECTING, ST_UP };

struct hd_cluster_redis {
  uv_loop_t *loop;
  hd_cluster_redis_config_t cfg;
  char id[HD_CLUSTER_ID_MAX];
  char key[HD_CLUSTER_ID_MAX + 32];
  redisAsyncContext *ac;
  int state;
  hd_time_t state_since;
  uv_timer_t beat;  /* heartbeat and watchdog */
  uv_timer_t retry; /* reconnect after a backoff */
  int backoff_ms;
  int failing;  /* in a streak of failures (logged once) */
  int attempts; /* connects in the current streak */
  int registered;
  int ever_registered;
  int awaiting; /* a heartbeat's reads are in flight */
  hd_time_t awaiting_since;
  char *entry; /* encode buffer: the entry SET by the last heartbeat */
  int entry_len;
  char *prev; /* the entry SET by the heartbeat before */
  int prev_len;
  uint64_t dup_warned;  /* another node with our id seen (logged once) */
  hd_time_t touched_at; /* the last refresh of our rooms' key TTLs */
  struct {
    char id[HD_CLUSTER_ID_MAX];
    hd_time_t since; /* when its key was first seen gone */
  } gone[HD_CLUSTER_MAX_NODES];
  int n_gone;
  hd_cluster_peers_t peers;
  hd_cluster_node_t *scratch; /* decode buffer, HD_CLUSTER_MAX_NODES */
  uint64_t heartbeats, failures, bad_entries, bad_link_vers;
  int stopping;
  int open_timers; /* freed when both timers have closed */
};

static void try_connect(hd_cluster_redis_t *r);
static void reap(hd_cluster_redis_t *r, const char *id);

static hd_time_t now_of(hd_cluster_redis_t *r) { return hd_io_now(r->loop); }

static void set_state(hd_cluster_redis_t *r, int st) {
  r->state = st;
  r->state_since = now_of(r);
}

/* Logs the first failure of a streak as a warning with what to check; the
 * rest at debug level (no log flood while Redis is away). */
static void fail(hd_cluster_redis_t *r, const char *what) {
  r->failures++;
  r->registered = 0;
  if (!r->failing) {
    r->failing = 1;
    HD_LOGW("cluster",
            "Redis at %s:%d: %s. This node keeps serving its own clients but is not in the cluster "
            "registry; check that redis-server runs there and that the --redis URL (host, port, password, "
            "db) is right. Retrying with backoff up to %d ms.",
            r->cfg.url.host, r->cfg.url.port, what, BACKOFF_MAX_MS);
  } else {
    HD_LOGD("cluster", "Redis at %s:%d: %s (attempt %d)", r->cfg.url.host, r->cfg.url.port, what,
            r->attempts);
  }
}

static void on_retry(uv_timer_t *t) { try_connect(t->data); }

static void schedule_retry(hd_cluster_redis_t *r) {
  set_state(r, ST_IDLE);
  if (r->stopping) return;
  uv_timer_start(&r->retry, on_retry, (uint64_t)r->backoff_ms, 0);
  r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

/* Drops the connection (ours to free) and schedules a reconnect. */
static void drop(hd_cluster_redis_t *r, const char *why) {
  redisAsyncContext *ac = r->ac;
  r->ac = NULL; /* callbacks run by the free below see a stale context and do nothing */
  r->awaiting = 0;
  fail(r, why);
  if (ac) redisAsyncFree(ac);
  schedule_retry(r);
}

static void peer_changed(void *ud, const char *id, int joined) {
  hd_cluster_redis_t *r = ud;
  HD_LOGI("cluster", "%s: peer %s %s", r->id, id, joined ? "joined" : "left");
}

/* Node id's key is gone: 1 once it has stayed gone the reap grace
 * (its rooms are then reaped and it leaves the index), 0 before. A node
 * seen alive again is forgotten (gone_clear). Past the table's cap a node is
 * reaped at once, as before the grace existed. */
static int gone_long_enough(hd_cluster_redis_t *r, const char *id, hd_time_t now) {
  for (int i = 0; i < r->n_gone; i++) {
    if (strcmp(r->gone[i].id, id)) continue;
    if (now - r->gone[i].since < (hd_time_t)r->cfg.reap_grace_ms * 1000) return 0;
    r->gone[i] = r->gone[--r->n_gone];
    return 1;
  }
  if (r->n_gone == HD_CLUSTER_MAX_NODES || r->cfg.reap_grace_ms == 0) return 1;
  snprintf(r->gone[r->n_gone].id, sizeof r->gone[r->n_gone].id, "%s", id);
  r->gone[r->n_gone++].since = now;
  return 0;
}

static void gone_clear(hd_cluster_redis_t *r, const char *id) {
  for (int i = 0; i < r->n_gone; i++)
    if (!strcmp(r->gone[i].id, id)) {
      r->gone[i] = r->gone[--r->n_gone];
      return;
    }
}

/* MGET reply: the entries of the ids in the set, in order (nil = expired). */
static void on_mget(redisAsyncContext *ac, void *reply, void *priv) {
  hd_cluster_redis_t *r = ac->data;
  redisReply *rep = reply;
  char **ids = priv; /* the ids asked for, NULL-terminated, ours to free */
  if (!r || ac != r->ac || !rep) goto out;
  if (rep->type != REDIS_REPLY_ARRAY) {
    drop(r, rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected MGET reply");
    goto out;
  }
  int n = 0;
  for (size_t i = 0; i < rep->elements && ids[i]; i++) {
    redisReply *e = rep->element[i];
    if (e->type != REDIS_REPLY_STRING) { /* expired: not a peer now; its rooms after a grace */
      if (strcmp(ids[i], r->id) && !gone_long_enough(r, ids[i], now_of(r))) continue;
      const char *argv[3] = {"SREM", HD_CLUSTER_NODES_KEY, ids[i]};
      redisAsyncCommandArgv(ac, NULL, NULL, 3, argv, NULL);
      if (strcmp(ids[i], r->id)) reap(r, ids[i]);
      continue;
    }
    gone_clear(r, ids[i]);
    if (!strcmp(ids[i], r->id)) continue; /* ourselves */
    if (n == HD_CLUSTER_MAX_NODES) break;
    char why[160];
    if (hd_cluster_node_decode(e->str, e->len, &r->scratch[n], why, sizeof why) < 0 ||
        strcmp(r->scratch[n].id, ids[i])) {
      if (!r->bad_entries++)
        HD_LOGW("cluster",
                "registry entry of node '%s' is unreadable (%s); ignored (a node of another "
                "version or something else writing under " HD_CLUSTER_KEY_PREFIX "?)",
                ids[i], why);
      continue;
    }
    if (r->scratch[n].link_ver_bad && !r->bad_link_vers++)
      HD_LOGW("cluster",
              "registry entry of node '%s' has a 'link' that is not an integer >= 1; taken as link "
              "version 1 (unaddressed link datagrams: docs/overlay.md \"The link protocol\")",
              ids[i]);
    n++;
  }
  hd_cluster_peers_update(&r->peers, r->scratch, n, r->id, now_of(r), peer_changed, r);
  r->awaiting = 0;
  if (r->cfg.peers_read) r->cfg.peers_read(r->cfg.ud);
out:
  if (ids)
    for (char **p = ids; *p; p++)
      free(*p);
  free(ids);
}

/* SMEMBERS reply: the ids; read their entries with one MGET. */
static void on_members(redisAsyncContext *ac, void *reply, void *priv) {
  hd_cluster_redis_t *r = ac->data;
  redisReply *rep = reply;
  (void)priv;
  if (!r || ac != r->ac || !rep) return;
  if (rep->type != REDIS_REPLY_ARRAY) {
    drop(r, rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected SMEMBERS reply");
    return;
  }
  size_t n = rep->elements < HD_CLUSTER_MAX_NODES * 2 ? rep->elements : HD_CLUSTER_MAX_NODES * 2;
  if (n == 0) { /* our own SADD came first, so this is unusual: a FLUSHALL in between */
    hd_cluster_peers_update(&r->peers, r->scratch, 0, r->id, now_of(r), peer_changed, r);
    r->awaiting = 0;
    return;
  }
  const char **argv = calloc(n + 1, sizeof *argv);
  char **ids = calloc(n + 1, sizeof *ids);
  size_t m = 0;
  if (!argv || !ids) goto oom;
  argv[0] = "MGET";
  for (size_t i = 0; i < n; i++) {
    redisReply *e = rep->element[i];
    if (e->type != REDIS_REPLY_STRING || e->len == 0 || e->len >= HD_CLUSTER_ID_MAX) continue;
    char *k = malloc(sizeof HD_CLUSTER_NODE_KEY + e->len);
    ids[m] = strdup(e->str);
    if (!k || !ids[m]) {
      free(k);
      goto oom;
    }
    snprintf(k, sizeof HD_CLUSTER_NODE_KEY + e->len, HD_CLUSTER_NODE_KEY "%s", e->str);
    argv[++m] = k;
  }
  if (m == 0) { /* nothing readable in the index: no peers (MGET needs a key) */
    hd_cluster_peers_update(&r->peers, r->scratch, 0, r->id, now_of(r), peer_changed, r);
    r->awaiting = 0;
    goto oom;
  }
  if (redisAsyncCommandArgv(ac, on_mget, ids, (int)m + 1, argv, NULL) != REDIS_OK) goto oom;
  ids = NULL; /* on_mget owns them now */
oom:
  if (argv)
    for (size_t i = 1; i <= m; i++)
      free((char *)argv[i]);
  free(argv);
  if (ids) {
    for (size_t i = 0; ids[i]; i++)
      free(ids[i]);
    free(ids);
  }
}

/* SET reply: registered (or why not). */
static void on_set(redisAsyncContext *ac, void *reply, void *priv) {
  hd_cluster_redis_t *r = ac->data;
  redisReply *rep = reply;
  (void)priv;
  if (!r || ac != r->ac || !rep) return;
  if (rep->type == REDIS_REPLY_ERROR) {
    drop(r, rep->str); /* NOAUTH, READONLY (a replica), OOM ... */
    return;
  }
  /* SET ... GET answered the value it replaced: anything but what we SET a
   * heartbeat ago (checked from the second SET of a connection on) was
   * written by another node with our id */
  if (r->registered && rep->type == REDIS_REPLY_STRING &&
      ((size_t)r->prev_len != rep->len || memcmp(rep->str, r->prev, rep->len)) && !r->dup_warned++)
    HD_LOGW("cluster",
            "another node registers with this node's id '%s': the two overwrite each other's entry; give "
            "each node its own node_id (--node-id)",
            r->id);
  if (!r->registered) {
    if (r->failing)
      HD_LOGW("cluster", "Redis at %s:%d answers after %d attempt(s); node %s registered%s", r->cfg.url.host,
              r->cfg.url.port, r->attempts, r->id, r->ever_registered ? " again" : "");
    else
      HD_LOGI("cluster", "node %s registered in Redis at %s:%d", r->id, r->cfg.url.host, r->cfg.url.port);
  }
  int back = !r->registered, first = !r->ever_registered;
  r->registered = r->ever_registered = 1;
  r->failing = 0;
  r->attempts = 0;
  r->backoff_ms = BACKOFF_MIN_MS;
  /* (re-)registered: the rooms this node holds are put back in Redis
   * (hd_cluster_redis_reconcile), queued behind this SET on this connection */
  if (back && r->cfg.registered) r->cfg.registered(r->cfg.ud, first);
}

static void heartbeat(hd_cluster_redis_t *r) {
  char *t = r->prev; /* what we SET last time becomes prev */
  r->prev = r->entry;
  r->prev_len = r->entry_len;
  r->entry = t;
  int len = r->cfg.entry(r->cfg.ud, r->entry, HD_CLUSTER_ENTRY_MAX);
  r->entry_len = len < 0 ? 0 : len;
  if (len < 0) {
    HD_LOGW("cluster", "cannot encode this node's registry entry: %s", hd_strerror(len));
    return;
  }
  char ttl[24];
  snprintf(ttl, sizeof ttl, "%d", r->cfg.ttl_ms);
  const char *set[6] = {"SET", r->key, r->entry, "PX", ttl, "GET"}; /* GET: Redis >= 6.2 */
  size_t setlen[6] = {3, strlen(r->key), (size_t)len, 2, strlen(ttl), 3};
  const char *sadd[3] = {"SADD", HD_CLUSTER_NODES_KEY, r->id};
  const char *smem[2] = {"SMEMBERS", HD_CLUSTER_NODES_KEY};
  if (redisAsyncCommandArgv(r->ac, on_set, NULL, 6, set, setlen) != REDIS_OK ||
      redisAsyncCommandArgv(r->ac, NULL, NULL, 3, sadd, NULL) != REDIS_OK ||
      redisAsyncCommandArgv(r->ac, on_members, NULL, 2, smem, NULL) != REDIS_OK) {
    drop(r, "cannot queue a command");
    return;
  }
  r->heartbeats++;
  r->awaiting = 1;
  r->awaiting_since = now_of(r);
}

/* AUTH/SELECT replies: an error here is a configuration error, said plainly. */
static void on_setup(redisAsyncContext *ac, void *reply, void *priv) {
  hd_cluster_redis_t *r = ac->data;
  redisReply *rep = reply;
  if (!r || ac != r->ac || !rep) return;
  if (rep->type == REDIS_REPLY_ERROR) {
    char why[320];
    snprintf(why, sizeof why, "%s refused: %s", (const char *)priv, rep->str);
    drop(r, why);
  }
}

static void on_connect(const redisAsyncContext *cac, int status) {
  redisAsyncContext *ac = (redisAsyncContext *)cac;
  hd_cluster_redis_t *r = ac->data;
  if (!r || ac != r->ac) return;
  if (status != REDIS_OK) {
    /* hiredis frees the context after this callback */
    r->ac = NULL;
    fail(r, ac->errstr[0] ? ac->errstr : "connect failed");
    schedule_retry(r);
    return;
  }
  set_state(r, ST_UP);
  if (r->cfg.url.password[0]) {
    const char *a[3] = {"AUTH", r->cfg.url.user[0] ? r->cfg.url.user : r->cfg.url.password,
                        r->cfg.url.password};
    redisAsyncCommandArgv(ac, on_setup, "AUTH", r->cfg.url.user[0] ? 3 : 2, a, NULL);
  }
  if (r->cfg.url.db) {
    char db[16];
    snprintf(db, sizeof db, "%d", r->cfg.url.db);
    const char *a[2] = {"SELECT", db};
    redisAsyncCommandArgv(ac, on_setup, "SELECT", 2, a, NULL);
  }
  if (r->ac) heartbeat(r); /* register at once, not a heartbeat later */
}

static void on_disconnect(const redisAsyncContext *cac, int status) {
  redisAsyncContext *ac = (redisAsyncContext *)cac;
  hd_cluster_redis_t *r = ac->data;
  if (!r || ac != r->ac) return; /* our own drop() or stop */
  r->ac = NULL;                  /* hiredis frees it after this callback */
  r->awaiting = 0;
  fail(r, status == REDIS_OK ? "connection closed" : ac->errstr[0] ? ac->errstr : "connection lost");
  schedule_retry(r);
}

static void try_connect(hd_cluster_redis_t *r) {
  if (r->stopping || r->ac) return;
  r->attempts++;
  redisAsyncContext *ac = redisAsyncConnect(r->cfg.url.host, r->cfg.url.port);
  if (!ac) {
    fail(r, "out of memory");
    schedule_retry(r);
    return;
  }
  if (ac->err) {
    char why[160];
    snprintf(why, sizeof why, "%s", ac->errstr);
    redisAsyncFree(ac);
    fail(r, why);
    schedule_retry(r);
    return;
  }
  ac->data = r;
  r->ac = ac;
  if (hd_redis_uv_attach(ac, r->loop) != REDIS_OK) {
    r->ac = NULL;
    redisAsyncFree(ac);
    fail(r, "cannot attach to the event loop");
    schedule_retry(r);
    return;
  }
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  set_state(r, ST_CONNECTING);
}

static void on_beat(uv_timer_t *t) {
  hd_cluster_redis_t *r = t->data;
  hd_time_t now = now_of(r);
  hd_time_t ttl = (hd_time_t)r->cfg.ttl_ms * 1000;
  hd_cluster_peers_live(&r->peers, now, peer_changed, r);
  if (r->state == ST_CONNECTING && now - r->state_since > ttl) {
    drop(r, "connect timed out");
    return;
  }
  if (r->state != ST_UP || !r->ac) return;
  if (r->awaiting) {
    if (now - r->awaiting_since > ttl) drop(r, "no reply for a heartbeat (Redis stalled?)");
    return; /* one heartbeat in flight at a time */
  }
  heartbeat(r);
}

void hd_cluster_redis_beat_now(hd_cluster_redis_t *r) {
  if (r && r->state == ST_UP && r->ac && !r->awaiting) heartbeat(r);
}

int hd_cluster_redis_start(hd_cluster_redis_t **out, uv_loop_t *loop, const hd_cluster_redis_config_t *cfg) {
  *out = NULL;
  if (!cfg->node_id || !cfg->node_id[0] || strlen(cfg->node_id) >= HD_CLUSTER_ID_MAX || !cfg->entry)
    return HD_EINVAL;
  hd_cluster_redis_t *r = calloc(1, sizeof *r);
  if (!r) return HD_ENOMEM;
  r->loop = loop;
  r->cfg = *cfg;
  if (r->cfg.heartbeat_ms <= 0) r->cfg.heartbeat_ms = 1000;
  if (r->cfg.ttl_ms <= 0) r->cfg.ttl_ms = 3000;
  if (r->cfg.room_ttl_ms <= 0) r->cfg.room_ttl_ms = HD_CLUSTER_ROOM_TTL_MS;
  if (r->cfg.reap_grace_ms < 0) r->cfg.reap_grace_ms = HD_CLUSTER_REAP_GRACE_MS;
  snprintf(r->id, sizeof r->id, "%s", cfg->node_id);
  snprintf(r->key, sizeof r->key, HD_CLUSTER_NODE_KEY "%s", r->id);
  r->backoff_ms = BACKOFF_MIN_MS;
  r->entry = malloc(HD_CLUSTER_ENTRY_MAX);
  r->prev = malloc(HD_CLUSTER_ENTRY_MAX);
  r->scratch = calloc(HD_CLUSTER_MAX_NODES, sizeof *r->scratch);
  if (!r->entry || !r->prev || !r->scratch ||
      hd_cluster_peers_init(&r->peers, (hd_time_t)r->cfg.ttl_ms * 1000) < 0) {
    free(r->entry);
    free(r->prev);
    free(r->scratch);
    hd_cluster_peers_free(&r->peers);
    free(r);
    return HD_ENOMEM;
  }
  uv_timer_init(loop, &r->beat);
  uv_timer_init(loop, &r->retry);
  r->beat.data = r->retry.data = r;
  r->open_timers = 2;
  uv_timer_start(&r->beat, on_beat, (uint64_t)r->cfg.heartbeat_ms, (uint64_t)r->cfg.heartbeat_ms);
  try_connect(r);
  *out = r;
  return 0;
}

static void on_timer_closed(uv_handle_t *h) {
  hd_cluster_redis_t *r = h->data;
  if (--r->open_timers == 0) {
    hd_cluster_peers_free(&r->peers);
    free(r->scratch);
    free(r->entry);
    free(r->prev);
    free(r);
  }
}

static void on_stop_grace(uv_timer_t *t) {
  hd_cluster_redis_t *r = t->data;
  redisAsyncContext *ac = r->ac;
  r->ac = NULL;
  if (ac) redisAsyncFree(ac); /* Redis did not answer the deregistration in time */
  uv_close((uv_handle_t *)&r->beat, on_timer_closed);
  uv_close((uv_handle_t *)&r->retry, on_timer_closed);
}

static void on_unregistered(redisAsyncContext *ac, void *reply, void *priv) {
  hd_cluster_redis_t *r = priv;
  (void)reply;
  if (ac != r->ac) return;
  r->ac = NULL;
  redisAsyncDisconnect(ac); /* the context is freed once this callback returns */
  uv_timer_stop(&r->beat);
  uv_timer_start(&r->beat, on_stop_grace, 0, 0);
}

void hd_cluster_redis_stop(hd_cluster_redis_t *r) {
  if (!r) return;
  r->stopping = 1;
  uv_timer_stop(&r->retry);
  uv_timer_stop(&r->beat);
  if (r->ac && r->state == ST_UP) {
    /* the others drop this node at once instead of after the TTL; only if
     * the entry is still the one we wrote (compare-and-delete, atomic in a
     * script): a node that shares our id by mistake keeps its entry */
    static const char script[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                 "redis.call('DEL', KEYS[1]); redis.call('SREM', KEYS[2], ARGV[2]) end "
                                 "return 1";
    const char *ev[7] = {"EVAL", script, "2", r->key, HD_CLUSTER_NODES_KEY, r->entry, r->id};
    size_t evlen[7] = {4,
                       strlen(script),
                       1,
                       strlen(r->key),
                       strlen(HD_CLUSTER_NODES_KEY),
                       (size_t)r->entry_len,
                       strlen(r->id)};
    redisAsyncCommandArgv(r->ac, on_unregistered, r, 7, ev, evlen);
    ((redisAsyncContext *)r->ac)->data = NULL; /* reply callbacks of heartbeats ignore it now */
    uv_timer_start(&r->beat, on_stop_grace, STOP_GRACE_MS, 0);
    return;
  }
  on_stop_grace(&r->beat);
}

const hd_cluster_peers_t *hd_cluster_redis_peers(hd_cluster_redis_t *r) {
  hd_cluster_peers_live(&r->peers, now_of(r), peer_changed, r);
  return &r->peers;
}

int hd_cluster_redis_up(const hd_cluster_redis_t *r) { return r->registered; }

int hd_cluster_redis_metrics_text(hd_cluster_redis_t *r, char *out, size_t cap) {
  const hd_cluster_peers_t *p = hd_cluster_redis_peers(r);
  int n = snprintf(
      out, cap,
      "# HELP hudong_cluster_registered 1 while this node is registered in Redis.\n"
      "# TYPE hudong_cluster_registered gauge\nhudong_cluster_registered %d\n"
      "# HELP hudong_cluster_peers Other live nodes in the registry.\n"
      "# TYPE hudong_cluster_peers gauge\nhudong_cluster_peers %d\n"
      "# HELP hudong_cluster_redis_failures_total Failed Redis connects, lost connections, "
      "refused commands.\n"
      "# TYPE hudong_cluster_redis_failures_total counter\nhudong_cluster_redis_failures_total %llu\n",
      r->registered, p->n, (unsigned long long)r->failures);
  return n > 0 && (size_t)n < cap ? n : 0;
}

/* ---- room events once per cluster (docs/overlay.md "Room events") ----
 *
 * hudong:room:<app>/<room>:nodes  SET of the node ids holding the room
 * hudong:room:<app>/<room>:sid    STRING, the room's sid while any node holds it
 * hudong:noderooms:<id>           SET of the "<app>/<room>" node <id> holds
 * One script, so that deciding "first" or "last" and changing the sets are one
 * step however many nodes race. Members whose registry key is gone (a killed
 * node, once its TTL ran out) are dropped first, so a dead node does not keep a
 * room from finishing or from starting afresh; a dead node still within its
 * TTL when the last live node leaves is dropped by room_reap_script once its
 * key is gone, which then finishes the room. Every key has a TTL
 * (the room TTL, cluster.room_ttl_ms), refreshed while a node holds the room
 * (hd_cluster_redis_rooms_alive): a crashed cluster leaves nothing behind.
 * A room finished because a dead member was dropped leaves its sid in
 * hudong:room:<app>/<room>:finished for HD_CLUSTER_FINISHED_TTL_MS: that
 * member may have been only cut off from Redis (reconcile_script).
 * ARGV: 1 node id, 2 local sid, 3 start|finish, 4 node key prefix,
 * 5 "<app>/<room>", 6 TTL (ms), 7 finished TTL (ms). KEYS: 1 nodes, 2 sid,
 * 3 noderooms:<id>, 4 finished. */
static const char room_script[] =
    "local dropped = false "
    "for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do "
    "  if m ~= ARGV[1] and redis.call('EXISTS', ARGV[4] .. m) == 0 then "
    "    redis.call('SREM', KEYS[1], m) dropped = true "
    "  end "
    "end "
    "if ARGV[3] == 'start' then "
    "  local first = redis.call('SCARD', KEYS[1]) == 0 "
    "  redis.call('SADD', KEYS[1], ARGV[1]) "
    "  local sid = redis.call('GET', KEYS[2]) "
    "  if first or not sid then redis.call('SET', KEYS[2], ARGV[2]) sid = ARGV[2] end "
    "  redis.call('SADD', KEYS[3], ARGV[5]) "
    "  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[6]) end "
    "  return {first and 1 or 0, sid} "
    "end "
    "redis.call('SREM', KEYS[1], ARGV[1]) "
    "redis.call('SREM', KEYS[3], ARGV[5]) "
    "local sid = redis.call('GET', KEYS[2]) or ARGV[2] "
    "if redis.call('SCARD', KEYS[1]) == 0 then "
    "  redis.call('DEL', KEYS[2]) "
    "  if dropped then redis.call('SET', KEYS[4], sid, 'PX', ARGV[7]) end "
    "  return {1, sid} "
    "end "
    "return {0, sid}";

/* A node's registry key is gone (killed: its TTL ran out): its rooms lose it,
 * and each room it leaves empty is finished here (its sid key deleted, so
 * the room finishes once however many nodes notice). Returns {room, sid, ...}
 * of those rooms; each leaves its sid in ...:finished (reconcile_script).
 * KEYS: 1 noderooms:<id>. ARGV: 1 id, 2 node key prefix, 3 room key prefix,
 * 4 finished TTL (ms). Nothing if the node is back. */
static const char room_reap_script[] =
    "if redis.call('EXISTS', ARGV[2] .. ARGV[1]) == 1 then return {} end "
    "local out = {} "
    "for _, ar in ipairs(redis.call('SMEMBERS', KEYS[1])) do "
    "  local kn, ks = ARGV[3] .. ar .. ':nodes', ARGV[3] .. ar .. ':sid' "
    "  redis.call('SREM', kn, ARGV[1]) "
    "  for _, m in ipairs(redis.call('SMEMBERS', kn)) do "
    "    if redis.call('EXISTS', ARGV[2] .. m) == 0 then redis.call('SREM', kn, m) end "
    "  end "
    "  if redis.call('SCARD', kn) == 0 then "
    "    local sid = redis.call('GET', ks) "
    "    if sid then "
    "      redis.call('DEL', ks) redis.call('SET', ARGV[3] .. ar .. ':finished', sid, 'PX', ARGV[4]) "
    "      out[#out + 1] = ar out[#out + 1] = sid "
    "    end "
    "  end "
    "end "
    "redis.call('DEL', KEYS[1]) "
    "return out";

/* The rooms this node holds: their keys live another TTL. ARGV: 1 TTL (ms),
 * 2 room key prefix, 3.. "<app>/<room>". KEYS: 1 noderooms:<id>. */
static const char room_touch_script[] = "redis.call('PEXPIRE', KEYS[1], ARGV[1]) "
                                        "for i = 3, #ARGV do "
                                        "  redis.call('PEXPIRE', ARGV[2] .. ARGV[i] .. ':nodes', ARGV[1]) "
                                        "  redis.call('PEXPIRE', ARGV[2] .. ARGV[i] .. ':sid', ARGV[1]) "
                                        "end "
                                        "return 1";

static void on_reaped(redisAsyncContext *ac, void *reply, void *priv) {
  hd_cluster_redis_t *r = ac->data;
  redisReply *rep = reply;
  char *id = priv;
  if (r && ac == r->ac && rep && rep->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i + 1 < rep->elements; i += 2) {
      redisReply *a = rep->element[i], *s = rep->element[i + 1];
      if (a->type != REDIS_REPLY_STRING || s->type != REDIS_REPLY_STRING) continue;
      HD_LOGI("cluster", "room %s: node %s, gone, was the last holding it: the room finishes", a->str, id);
      if (r->cfg.room_gone) r->cfg.room_gone(r->cfg.ud, a->str, s->str);
    }
  } else if (r && rep && rep->type == REDIS_REPLY_ERROR) {
    HD_LOGW("cluster", "room clean-up script for gone node %s refused by Redis: %s", id, rep->str);
  }
  free(id);
}

/* Node `id`'s registry key is gone: its rooms are cleaned up (room_reap_script). */
static void reap(hd_cluster_redis_t *r, const char *id) {
  char k[HD_CLUSTER_ID_MAX + 40];
  snprintf(k, sizeof k, HD_CLUSTER_NODEROOMS_KEY "%s", id);
  char *dup = strdup(id);
  if (!dup) return;
  char fttl[24];
  snprintf(fttl, sizeof fttl, "%d", HD_CLUSTER_FINISHED_TTL_MS);
  const char *argv[8] = {"EVAL", room_reap_script, "1", k, id, HD_CLUSTER_NODE_KEY, HD_CLUSTER_ROOM_KEY,
                         fttl};
  if (redisAsyncCommandArgv(r->ac, on_reaped, dup, 8, argv, NULL) != REDIS_OK) free(dup);
}

#define TOUCH_CHUNK 512 /* rooms per touch script: one EVAL stays short */

void hd_cluster_redis_rooms_alive(hd_cluster_redis_t *r, const char *rooms, size_t stride, int n) {
  if (!r || !r->ac || r->state != ST_UP || !r->registered || r->stopping) return;
  hd_time_t now = now_of(r);
  /* six refreshes per TTL (5 s of the default 30 s): a slow Redis round trip never lets a key lapse */
  if (r->touched_at && now - r->touched_at < (hd_time_t)r->cfg.room_ttl_ms * 1000 / 6) return;
  r->touched_at = now;
  const char *argv[TOUCH_CHUNK + 6];
  char k[HD_CLUSTER_ID_MAX + 40], ttl[24];
  snprintf(k, sizeof k, HD_CLUSTER_NODEROOMS_KEY "%s", r->id);
  snprintf(ttl, sizeof ttl, "%d", r->cfg.room_ttl_ms);
  argv[0] = "EVAL";
  argv[1] = room_touch_script;
  argv[2] = "1";
  argv[3] = k;
  argv[4] = ttl;
  argv[5] = HD_CLUSTER_ROOM_KEY;
  int i = 0;
  do { /* at least once: noderooms:<id> itself lives on */
    int a = 6;
    for (; i < n && a < TOUCH_CHUNK + 6; i++)
      argv[a++] = rooms + (size_t)i * stride;
    redisAsyncCommandArgv(r->ac, NULL, NULL, a, argv, NULL);
  } while (i < n);
}

typedef struct {
  hd_cluster_room_cb cb;
  void *ud;
} room_op_t;

static void on_room_reply(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  room_op_t *op = priv;
  redisReply *rep = reply;
  int fire = -1;
  const char *sid = NULL;
  if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
      rep->element[0]->type == REDIS_REPLY_INTEGER && rep->element[1]->type == REDIS_REPLY_STRING) {
    fire = rep->element[0]->integer ? 1 : 0;
    sid = rep->element[1]->str;
  } else if (rep && rep->type == REDIS_REPLY_ERROR) {
    HD_LOGW("cluster", "room event script refused by Redis: %s; this node fires the event itself", rep->str);
  }
  /* a reply NULL: the connection went (hiredis calls every pending callback) */
  op->cb(op->ud, fire, sid);
  free(op);
}

int hd_cluster_redis_room_event(hd_cluster_redis_t *r, const char *app, const char *room, const char *sid,
                                int started, hd_cluster_room_cb cb, void *ud) {
  if (!r || !r->ac || r->state != ST_UP || !r->registered || r->stopping) return HD_ESTATE;
  char k1[HD_CLUSTER_ID_MAX + 400], k2[HD_CLUSTER_ID_MAX + 400], k3[HD_CLUSTER_ID_MAX + 40], ar[400], ttl[24];
  char k4[HD_CLUSTER_ID_MAX + 400], fttl[24];
  int l1 = snprintf(k1, sizeof k1, HD_CLUSTER_ROOM_KEY "%s/%s:nodes", app, room);
  int l2 = snprintf(k2, sizeof k2, HD_CLUSTER_ROOM_KEY "%s/%s:sid", app, room);
  int l3 = snprintf(ar, sizeof ar, "%s/%s", app, room);
  int l4 = snprintf(k4, sizeof k4, HD_CLUSTER_ROOM_KEY "%s/%s:finished", app, room);
  if (l1 < 0 || (size_t)l1 >= sizeof k1 || l2 < 0 || (size_t)l2 >= sizeof k2 || l3 < 0 ||
      (size_t)l3 >= sizeof ar || l4 < 0 || (size_t)l4 >= sizeof k4)
    return HD_EINVAL;
  snprintf(k3, sizeof k3, HD_CLUSTER_NODEROOMS_KEY "%s", r->id);
  snprintf(ttl, sizeof ttl, "%d", r->cfg.room_ttl_ms);
  snprintf(fttl, sizeof fttl, "%d", HD_CLUSTER_FINISHED_TTL_MS);
  room_op_t *op = malloc(sizeof *op);
  if (!op) return HD_ENOMEM;
  op->cb = cb;
  op->ud = ud;
  const char *argv[14] = {"EVAL",
                          room_script,
                          "4",
                          k1,
                          k2,
                          k3,
                          k4,
                          r->id,
                          sid ? sid : "",
                          started ? "start" : "finish",
                          HD_CLUSTER_NODE_KEY,
                          ar,
                          ttl,
                          fttl};
  if (redisAsyncCommandArgv(r->ac, on_room_reply, op, 14, argv, NULL) != REDIS_OK) {
    free(op);
    return HD_EIO;
  }
  return 0;
}

/* ---- coming back after an outage (docs/overlay.md "Coming back after an outage") ----
 *
 * A node cut off from Redis longer than its registry TTL plus the reap grace
 * was taken for dead: another node took it out of its rooms' node sets (and
 * finished the rooms it was the last to hold), its noderooms key is gone, and
 * past the room TTL its rooms' keys may have lapsed too; a Redis restarted
 * without its data lost them all. The node itself went on serving those
 * rooms. When it registers again it puts them back, so that the cluster
 * agrees again on who holds what: a room's room_finished waits for its last
 * participant, and a later joiner elsewhere gets the room's sid.
 *
 * reconcile_script, per room this node holds (ARGV pairs "<app>/<room>",
 * local sid): lists the node in the room's node set and its noderooms again,
 * and answers for the rooms where something changed {room, local sid,
 * cluster sid, status} (HD_CLUSTER_BACK_*): the sid rule is that the sid in
 * Redis wins (another node started the room afresh meanwhile: this node's
 * room takes that sid); a room without one takes this node's sid, and if
 * the room's :finished marker names that sid, the cluster had fired
 * room_finished for it: status RESTARTED (the caller fires room_started).
 * KEYS: 1 noderooms:<id>. ARGV: 1 id, 2 room key prefix, 3 TTL (ms), 4..
 * pairs. */
static const char reconcile_script[] =
    "local out = {} "
    "for i = 4, #ARGV - 1, 2 do "
    "  local ar, mine = ARGV[i], ARGV[i + 1] "
    "  local kn, ks, kf = ARGV[2] .. ar .. ':nodes', ARGV[2] .. ar .. ':sid', ARGV[2] .. ar .. ':finished' "
    "  local st = 0 "
    "  if redis.call('SADD', kn, ARGV[1]) == 1 then st = 1 end "
    "  local sid = redis.call('GET', ks) "
    "  if not sid then "
    "    sid = mine "
    "    redis.call('SET', ks, mine) "
    "    if redis.call('GET', kf) == mine then st = 2 redis.call('DEL', kf) elseif st == 0 then st = 1 end "
    "  elseif sid ~= mine and st == 0 then st = 1 end "
    "  redis.call('SADD', KEYS[1], ar) "
    "  redis.call('PEXPIRE', kn, ARGV[3]) "
    "  redis.call('PEXPIRE', ks, ARGV[3]) "
    "  if st ~= 0 then out[#out + 1] = ar out[#out + 1] = mine out[#out + 1] = sid out[#out + 1] = st end "
    "end "
    "redis.call('PEXPIRE', KEYS[1], ARGV[3]) "
    "return out";

/* The rooms Redis lists for this node that it does not hold (it let them go
 * while cut off, deciding alone, or a former process with its id held
 * them): it leaves them; a room left empty loses its sid key and comes back
 * as {room, sid}, only logged: a room let go during the outage had its
 * room_finished then, and so had a former process's rooms if it stopped
 * with SIGTERM (a killed process restarted with the same id before its
 * registry key lapsed: nobody fires it, as without this). KEYS: 1
 * noderooms:<id>. ARGV: 1 id, 2 room key prefix, 3.. the rooms held. */
static const char prune_script[] =
    "local held = {} "
    "for i = 3, #ARGV do held[ARGV[i]] = true end "
    "local out = {} "
    "for _, ar in ipairs(redis.call('SMEMBERS', KEYS[1])) do "
    "  if not held[ar] then "
    "    local kn, ks = ARGV[2] .. ar .. ':nodes', ARGV[2] .. ar .. ':sid' "
    "    redis.call('SREM', KEYS[1], ar) "
    "    redis.call('SREM', kn, ARGV[1]) "
    "    if redis.call('SCARD', kn) == 0 then "
    "      local sid = redis.call('GET', ks) "
    "      if sid then redis.call('DEL', ks) out[#out + 1] = ar out[#out + 1] = sid end "
    "    end "
    "  end "
    "end "
    "return out";

static int str_el(const redisReply *e) { return e->type == REDIS_REPLY_STRING; }

static void on_reconciled(redisAsyncContext *ac, void *reply, void *priv) {
  hd_cluster_redis_t *r = ac->data;
  redisReply *rep = reply;
  (void)priv;
  if (!r || ac != r->ac || !rep) return;
  if (rep->type != REDIS_REPLY_ARRAY) {
    if (rep->type == REDIS_REPLY_ERROR)
      HD_LOGW("cluster", "re-announcing this node's rooms: Redis refused the script: %s", rep->str);
    return;
  }
  for (size_t i = 0; i + 3 < rep->elements; i += 4) {
    redisReply **e = rep->element + i;
    if (!str_el(e[0]) || !str_el(e[1]) || !str_el(e[2]) || e[3]->type != REDIS_REPLY_INTEGER) continue;
    int st = (int)e[3]->integer;
    HD_LOGI("cluster", "room %s: listed again for node %s in Redis (%s)", e[0]->str, r->id,
            st == HD_CLUSTER_BACK_RESTARTED ? "the cluster had finished it: it starts again"
            : strcmp(e[1]->str, e[2]->str)  ? "it takes the cluster's sid"
                                            : "with its sid");
    if (r->cfg.room_back) r->cfg.room_back(r->cfg.ud, e[0]->str, e[1]->str, e[2]->str, st);
  }
}

static void on_pruned(redisAsyncContext *ac, void *reply, void *priv) {
  hd_cluster_redis_t *r = ac->data;
  redisReply *rep = reply;
  (void)priv;
  if (!r || ac != r->ac || !rep) return;
  if (rep->type != REDIS_REPLY_ARRAY) {
    if (rep->type == REDIS_REPLY_ERROR)
      HD_LOGW("cluster", "leaving the rooms this node no longer holds: Redis refused the script: %s",
              rep->str);
    return;
  }
  for (size_t i = 0; i + 1 < rep->elements; i += 2) {
    redisReply *a = rep->element[i], *s = rep->element[i + 1];
    if (!str_el(a) || !str_el(s)) continue;
    HD_LOGI("cluster", "room %s (sid %s): node %s no longer holds it and was the last listed: its keys go",
            a->str, s->str, r->id);
  }
}

int hd_cluster_redis_reconcile(hd_cluster_redis_t *r, const hd_cluster_held_t *rooms, int n, int complete) {
  if (!r || !r->ac || r->state != ST_UP || !r->registered || r->stopping) return HD_ESTATE;
  if (n < 0) n = 0;
  char k[HD_CLUSTER_ID_MAX + 40], ttl[24];
  snprintf(k, sizeof k, HD_CLUSTER_NODEROOMS_KEY "%s", r->id);
  snprintf(ttl, sizeof ttl, "%d", r->cfg.room_ttl_ms);
  /* the prune script takes every held room at once (it must know them all);
   * the re-announce goes TOUCH_CHUNK rooms per script, each stays short */
  const char **argv = malloc(sizeof *argv * ((size_t)n * 2 + 8));
  if (!argv) return HD_ENOMEM;
  int rc = 0;
  for (int i = 0; i < n;) {
    int a = 0;
    argv[a++] = "EVAL";
    argv[a++] = reconcile_script;
    argv[a++] = "1";
    argv[a++] = k;
    argv[a++] = r->id;
    argv[a++] = HD_CLUSTER_ROOM_KEY;
    argv[a++] = ttl;
    for (int m = 0; i < n && m < TOUCH_CHUNK; i++, m++) {
      argv[a++] = rooms[i].room;
      argv[a++] = rooms[i].sid;
    }
    if (redisAsyncCommandArgv(r->ac, on_reconciled, NULL, a, argv, NULL) != REDIS_OK) rc = HD_EIO;
  }
  if (complete) {
    int a = 0;
    argv[a++] = "EVAL";
    argv[a++] = prune_script;
    argv[a++] = "1";
    argv[a++] = k;
    argv[a++] = r->id;
    argv[a++] = HD_CLUSTER_ROOM_KEY;
    for (int i = 0; i < n; i++)
      argv[a++] = rooms[i].room;
    if (redisAsyncCommandArgv(r->ac, on_pruned, NULL, a, argv, NULL) != REDIS_OK) rc = HD_EIO;
  }
  free(argv);
  if (n) HD_LOGI("cluster", "node %s re-announces the %d room(s) it holds in Redis", r->id, n);
  return rc;
}
