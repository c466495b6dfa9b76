/* RTM's shared log and state in Redis (rtm_redis.h; docs/overlay.md "RTM
 * across nodes" has the key layout and why this design).
 *
 * Keys (cid = "<app>/<channel>"; a channel name has no '/', so the last '/'
 * splits it):
 *   hudong:rtm:seq:<cid>   STRING  the channel's last cseq (INCR)
 *   hudong:rtm:log:<cid>   STREAM  the channel's log: fields j (the JSON a
 *                                  subscriber gets) and c (cseq, 0 = event)
 *   hudong:rtm:hist:<cid>  STREAM  stored messages, id "<cseq>-1", fields f t d
 *   hudong:rtm:m:<cid>     HASH    user -> nodes holding the user there
 *   hudong:rtm:mn:<cid>    HASH    "<node>\n<user>" -> 1
 *   hudong:rtm:st:<cid>    HASH    user -> presence state
 *   hudong:rtm:nch:<node>  SET     cids where node holds members (for purge)
 *   hudong:rtm:pnodes      SET     nodes holding members somewhere
 *   hudong:rtm:attr:<c|u>:<app>/<name>  HASH key -> value
 *   hudong:rtm:arev:<c|u>:<app>/<name>  HASH key -> revision (kept on delete)
 *   hudong:rtm:lock:<cid>  HASH    lock name -> {"o":owner,"e":exp_ms}
 *   hudong:rtm:lockexp     ZSET    "<cid>\n<name>" by expiry (Redis's clock)
 *   hudong:rtm:un:<app>/<user>  SET nodes holding a session of the user (peer messages)
 *   hudong:rtm:nu:<node>   SET     "<app>/<user>" the node holds (for purge)
 *   hudong:rtm:uch:<app>/<user> SET channels where the user is present (user events)
 *   hudong:rtm:own:<cid>   STRING  the node holding a board channel's state
 *   hudong:rtm:bc          STREAM  to every node: resume requests (want), user events (uev)
 *   hudong:rtm:in:<node>   STREAM  to one node: sessions (give), peer messages (peer) and
 *                                  their outcomes (prc); trimmed by its reader as it reads;
 *                                  expires 1 h after its last write, deleted by the purge
 *   hudong:rtm:pids:<app>/<sid>  HASH  publish id -> cseq, the session's last 64 (":o" LIST
 *                                  their order); expire 120 s after its last publish
 * The control streams replaced pub/sub (at-most-once: a node whose pub/sub
 * connection was down lost what was published meanwhile): the reader reads
 * them in the same XREAD as the fan-in streams and continues from its
 * positions after a reconnect (docs/overlay.md "Exactly-once between nodes").
 * The scripts touch keys they compute themselves (the lock expiry and the
 * purge walk several channels): fine for one Redis, not for Redis Cluster. */
#include "io/rtm_redis.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <uv.h>

#include "base/err.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/rand.h"
#include "io/redis_sync.h"
#include "io/redis_uv.h"
#include "io/rtm_redis_scripts.h"
#include "io/rtc_udp.h"
#include "rtm/seen.h"

#define P "hudong:rtm:"
#define SYNC_TIMEOUT_MS 1000 /* one call of the broker; Redis is on the LAN */
#define SYNC_RETRY_MS 500    /* after a failure, calls fail at once for this long */
#define BACKOFF_MIN_MS 250   /* readers' reconnect */
#define BACKOFF_MAX_MS 2000
#define XREAD_BLOCK_MS "5000" /* a blocking read returns at least this often */
#define XREAD_COUNT "512"
#define RESUME_WAIT_MS 1000 /* no holder answered: 410 */
#define TICK_MS 200         /* lock expiry */
#define PURGE_EVERY 10      /* ticks: a dead node's presence, every 2 s */
#define WATCH_BUCKETS 1024
#define MAX_PENDING 1024
#define FAN_SHARDS HD_RTM_FAN_SHARDS
#define ST_BC FAN_SHARDS       /* reader stream index of hudong:rtm:bc */
#define ST_IN (FAN_SHARDS + 1) /* ... of this node's inbox */
#define N_STREAMS (FAN_SHARDS + 2)
#define PUB_ID_TTL "120" /* s a session's publish ids stay in Redis after its last publish */

/* ---------------------------------------------------------------- state */

typedef struct watch {
  struct watch *next;
  char *key; /* hudong:rtm:log:<cid> */
  char app[64], ch[HD_RTM_MAX_CHANNEL + 1];
  hd_rtm_pos_t pos; /* read up to here */
} watch_t;

typedef struct {
  uint64_t conn;
  char rid[24];
  hd_time_t deadline;
} pending_t;

/* An asynchronous connection that reconnects with backoff. */
typedef struct {
  struct hd_rtm_redis *r;
  redisAsyncContext *ac;
  int up, backoff_ms, failing;
  uv_timer_t retry;
  const char *what;
  void (*on_up)(struct hd_rtm_redis *r);
} aconn_t;

struct hd_rtm_redis {
  uv_loop_t *loop;
  hd_rtm_redis_config_t cfg;
  char node[128];
  char maxlen[16];
  hd_rtm_cluster_t ops;
  hd_rtm_broker_t *b;
  /* synchronous calls */
  redisContext *sc;
  hd_time_t sync_retry_at;
  int sync_failing, reasserting;
  char sha[RS_COUNT][41];
  /* the log reader: the fan-in streams */
  aconn_t rd;
  int reading, fan_ready;
  /* Redis's clock for the resume requests of one XREAD reply: asked at the
   * first one (TIME), then reused, so that a batch of N of them (a node died
   * with N clients) costs one round trip, not N of up to SYNC_TIMEOUT_MS. */
  uint64_t batch_redis_ms;
  int batch_timed;
  hd_rtm_pos_t fan_pos[N_STREAMS]; /* fan-in shards, then bc and the inbox */
  char inbox[200];                 /* hudong:rtm:in:<node> */
  hd_rtm_seen_t seen;              /* peer messages taken in (sender's session, id) */
  watch_t *wb[WATCH_BUCKETS];
  size_t n_watch;
  pending_t pend[MAX_PENDING];
  int n_pend;
  uint64_t next_rid;
  uv_timer_t tick;
  int ticks;
  char dead[16][128]; /* nodes seen missing from the registry once (purged when seen twice) */
  int n_dead;
  int closing, open_handles;
  uint64_t appended, entries, moves_out, moves_in, resume_misses, failures;
  uint64_t peers_in, uevents_in; /* peer messages and user events from other nodes */
  uint64_t gaps, pub_dups;       /* stream entries trimmed before this node read them; publishes
                                    answered from the retried-id key */
};

static hd_time_t now_of(hd_rtm_redis_t *r) { return hd_io_now(r->loop); }

static void cid_of(char *out, size_t cap, const char *app, const char *ch) {
  snprintf(out, cap, "%s/%s", app, ch);
}

/* ---------------------------------------------------------------- sync calls */

static void sync_fail(hd_rtm_redis_t *r, const char *why) {
  r->failures++;
  if (!r->sync_failing) {
    r->sync_failing = 1;
    HD_LOGW("rtm",
            "cluster: Redis at %s:%d: %s; RTM requests that need the cluster get 503 unavailable "
            "until it answers again (retrying every %d ms)",
            r->cfg.url.host, r->cfg.url.port, why, SYNC_RETRY_MS);
  }
  if (r->sc) redisFree(r->sc);
  r->sc = NULL;
  r->sync_retry_at = now_of(r) + (hd_time_t)SYNC_RETRY_MS * 1000;
}

static redisContext *sync_ctx(hd_rtm_redis_t *r) {
  if (r->sc) return r->sc;
  if (now_of(r) < r->sync_retry_at) return NULL;
  char why[300];
  redisContext *c = hd_redis_sync_connect(&r->cfg.url, SYNC_TIMEOUT_MS, why, sizeof why);
  if (!c) {
    sync_fail(r, why);
    return NULL;
  }
  int was_failing = r->sync_failing;
  if (was_failing) HD_LOGW("rtm", "cluster: Redis at %s:%d answers again", r->cfg.url.host, r->cfg.url.port);
  r->sync_failing = 0;
  r->sc = c;
  for (int i = 0; i < RS_COUNT; i++) /* scripts by SHA from here on (EVALSHA) */
    r->sha[i][0] = 0;
  /* a Redis back from a restart may have lost the members: write ours again
   * (nothing is logged for a user that is still there) */
  if (was_failing && r->b && !r->reasserting) {
    r->reasserting = 1;
    hd_rtm_cluster_reassert(r->b, now_of(r));
    r->reasserting = 0;
  }
  return r->sc;
}

/* One command (argv); the reply (caller frees) or NULL after a failure. An
 * error reply is returned as it is (the caller decides). */
static redisReply *sync_argv(hd_rtm_redis_t *r, int argc, const char **argv, const size_t *lens) {
  redisContext *c = sync_ctx(r);
  if (!c) return NULL;
  redisReply *rep = redisCommandArgv(c, argc, argv, lens);
  if (!rep) {
    sync_fail(r, c->errstr[0] ? c->errstr : "no reply");
    return NULL;
  }
  return rep;
}

/* EVALSHA script (loading it on first use and after NOSCRIPT). keys then
 * args; lens may be NULL (all NUL-terminated). */
static redisReply *run(hd_rtm_redis_t *r, int script, int nkeys, const char **keys, int nargs,
                       const char **args, const size_t *arglens) {
  const char *argv[32];
  size_t lens[32];
  char nk[16];
  if (3 + nkeys + nargs > 32) return NULL;
  for (int attempt = 0; attempt < 2; attempt++) {
    if (!sync_ctx(r)) return NULL;
    if (!r->sha[script][0]) {
      const char *la[3] = {"SCRIPT", "LOAD", hd_rtm_redis_scripts[script]};
      redisReply *l = sync_argv(r, 3, la, NULL);
      if (!l) return NULL;
      if (l->type != REDIS_REPLY_STRING || l->len != 40) {
        HD_LOGE("rtm", "cluster: SCRIPT LOAD refused: %s", l->type == REDIS_REPLY_ERROR ? l->str : "?");
        freeReplyObject(l);
        return NULL;
      }
      memcpy(r->sha[script], l->str, 41);
      freeReplyObject(l);
    }
    snprintf(nk, sizeof nk, "%d", nkeys);
    int n = 0;
    argv[n] = "EVALSHA", lens[n++] = 7;
    argv[n] = r->sha[script], lens[n++] = 40;
    argv[n] = nk, lens[n++] = strlen(nk);
    for (int i = 0; i < nkeys; i++)
      argv[n] = keys[i], lens[n++] = strlen(keys[i]);
    for (int i = 0; i < nargs; i++)
      argv[n] = args[i], lens[n++] = arglens ? arglens[i] : strlen(args[i]);
    redisReply *rep = sync_argv(r, n, argv, lens);
    if (rep && rep->type == REDIS_REPLY_ERROR && !strncmp(rep->str, "NOSCRIPT", 8)) {
      freeReplyObject(rep);
      r->sha[script][0] = 0; /* Redis restarted: load again */
      continue;
    }
    if (rep && rep->type == REDIS_REPLY_ERROR) {
      HD_LOGW("rtm", "cluster: script %d: %s", script, rep->str);
      freeReplyObject(rep);
      return NULL;
    }
    return rep;
  }
  return NULL;
}

static int64_t rep_int(const redisReply *e) {
  if (!e) return 0;
  if (e->type == REDIS_REPLY_INTEGER) return e->integer;
  if (e->type == REDIS_REPLY_STRING) return strtoll(e->str, NULL, 10);
  return 0;
}

/* ---------------------------------------------------------------- watches */

static watch_t **watch_slot(hd_rtm_redis_t *r, const char *key) {
  watch_t **pp = &r->wb[hd_fnv1a_pair(key, 0, "") % WATCH_BUCKETS];
  while (*pp && strcmp((*pp)->key, key))
    pp = &(*pp)->next;
  return pp;
}

static void reader_kick(hd_rtm_redis_t *r);

/* ---------------------------------------------------------------- the broker's calls */

static int c_chan_open(void *ud, const char *app, const char *ch, int64_t *cseq, hd_rtm_pos_t *pos) {
  hd_rtm_redis_t *r = ud;
  char cid[200], k1[256], k2[256];
  cid_of(cid, sizeof cid, app, ch);
  snprintf(k1, sizeof k1, P "seq:%s", cid);
  snprintf(k2, sizeof k2, P "log:%s", cid);
  const char *keys[2] = {k1, k2};
  redisReply *rep = run(r, RS_OPEN, 2, keys, 0, NULL, NULL);
  if (!rep) return HD_EIO;
  int rc = HD_EIO;
  if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 && rep->element[1]->type == REDIS_REPLY_STRING &&
      hd_rtm_pos_parse(rep->element[1]->str, rep->element[1]->len, pos) == 0) {
    *cseq = rep_int(rep->element[0]);
    rc = 0;
  }
  freeReplyObject(rep);
  if (rc < 0) return rc;
  watch_t **pp = watch_slot(r, k2);
  if (!*pp) {
    watch_t *w = calloc(1, sizeof *w);
    if (!w || !(w->key = strdup(k2))) {
      free(w);
      return HD_ENOMEM;
    }
    snprintf(w->app, sizeof w->app, "%s", app);
    snprintf(w->ch, sizeof w->ch, "%s", ch);
    *pp = w;
    r->n_watch++;
  }
  (*pp)->pos = *pos;
  reader_kick(r);
  return 0;
}

static void c_chan_close(void *ud, const char *app, const char *ch) {
  hd_rtm_redis_t *r = ud;
  char cid[200], k[256];
  cid_of(cid, sizeof cid, app, ch);
  snprintf(k, sizeof k, P "log:%s", cid);
  watch_t **pp = watch_slot(r, k);
  if (!*pp) return;
  watch_t *w = *pp;
  *pp = w->next;
  free(w->key);
  free(w);
  r->n_watch--;
  reader_kick(r);
}

static int c_publish(void *ud, const char *app, const char *ch, const char *pre, const char *post,
                     int64_t floor, const hd_rtm_stored_msg_t *m, int store, int keep, const char *pid,
                     int64_t *cseq) {
  hd_rtm_redis_t *r = ud;
  char cid[200], k1[256], k2[256], k3[256], fl[24], kp[16], ts[24], pk[200] = "", nd[16];
  const char *pid_id = "";
  const char *colon = pid ? strchr(pid, ':') : NULL; /* "<session>:<id>" */
  if (colon) {
    snprintf(pk, sizeof pk, P "pids:%s/%.*s", app, (int)(colon - pid), pid);
    pid_id = colon + 1;
  }
  snprintf(nd, sizeof nd, "%d", HD_RTM_PUB_DEDUPE);
  cid_of(cid, sizeof cid, app, ch);
  snprintf(k1, sizeof k1, P "seq:%s", cid);
  snprintf(k2, sizeof k2, P "log:%s", cid);
  snprintf(k3, sizeof k3, P "hist:%s", cid);
  snprintf(fl, sizeof fl, "%lld", (long long)floor);
  snprintf(kp, sizeof kp, "%d", keep > 0 ? keep : 1000);
  snprintf(ts, sizeof ts, "%lld", (long long)m->ts_ms);
  const char *keys[3] = {k1, k2, k3};
  const char *args[14] = {pre,     post, fl, r->maxlen, store ? "1" : "0", kp, m->from, ts,
                          m->data, cid,  pk, pid_id,    PUB_ID_TTL,        nd};
  redisReply *rep = run(r, RS_PUB, 3, keys, 14, args, NULL);
  if (!rep) return HD_EIO;
  int rc = HD_EIO;
  if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
    *cseq = rep_int(rep->element[0]);
    rc = 0;
    r->appended++;
  } else if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3) { /* a retried id: logged already */
    *cseq = rep_int(rep->element[0]);
    rc = 1;
    r->pub_dups++;
  }
  freeReplyObject(rep);
  return rc;
}

static int hist_entry(const redisReply *e, hd_rtm_stored_msg_t *m) {
  if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING ||
      e->element[1]->type != REDIS_REPLY_ARRAY)
    return -1;
  m->cseq = strtoll(e->element[0]->str, NULL, 10);
  m->from = m->data = "";
  m->ts_ms = 0;
  const redisReply *f = e->element[1];
  for (size_t i = 0; i + 1 < f->elements; i += 2) {
    const char *k = f->element[i]->str, *v = f->element[i + 1]->str;
    if (!k || !v) continue;
    if (!strcmp(k, "f")) m->from = v;
    if (!strcmp(k, "d")) m->data = v;
    if (!strcmp(k, "t")) m->ts_ms = strtoll(v, NULL, 10);
  }
  return 0;
}

static int c_hist(void *ud, const char *app, const char *ch, const hd_rtm_hist_query_t *q, hd_rtm_msg_fn fn,
                  void *fud) {
  hd_rtm_redis_t *r = ud;
  char cid[200], k[256], start[48], cnt[16];
  cid_of(cid, sizeof cid, app, ch);
  snprintf(k, sizeof k, P "hist:%s", cid);
  snprintf(cnt, sizeof cnt, "%d", q->limit);
  redisReply *rep;
  int rev = 0;
  if (q->after >= 0) {
    snprintf(start, sizeof start, "(%lld-1", (long long)q->after);
    const char *a[6] = {"XRANGE", k, start, "+", "COUNT", cnt};
    rep = sync_argv(r, 6, a, NULL);
  } else if (q->since >= 0) {
    const char *a[4] = {"XRANGE", k, "-", "+"}; /* at most `keep` entries: filtered here */
    rep = sync_argv(r, 4, a, NULL);
  } else {
    const char *a[6] = {"XREVRANGE", k, "+", "-", "COUNT", cnt};
    rep = sync_argv(r, 6, a, NULL);
    rev = 1;
  }
  if (!rep) return HD_EIO;
  if (rep->type != REDIS_REPLY_ARRAY) {
    freeReplyObject(rep);
    return HD_EIO;
  }
  int n = 0;
  for (size_t j = 0; j < rep->elements && n < q->limit; j++) {
    size_t i = rev ? rep->elements - 1 - j : j;
    hd_rtm_stored_msg_t m;
    if (hist_entry(rep->element[i], &m) < 0) continue;
    if (q->since >= 0 && m.ts_ms < q->since) continue;
    n++;
    if (fn(fud, &m) < 0) break;
  }
  freeReplyObject(rep);
  return n;
}

/* One stream entry [id, [field, value, ...]] as a log entry. */
static int log_entry(const redisReply *e, hd_rtm_entry_t *out) {
  if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING ||
      e->element[1]->type != REDIS_REPLY_ARRAY ||
      hd_rtm_pos_parse(e->element[0]->str, e->element[0]->len, &out->pos) < 0)
    return -1;
  out->json = NULL;
  out->cseq = 0;
  const redisReply *f = e->element[1];
  for (size_t i = 0; i + 1 < f->elements; i += 2) {
    const redisReply *k = f->element[i], *v = f->element[i + 1];
    if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
    if (k->len == 1 && k->str[0] == 'j') out->json = v->str, out->len = v->len;
    if (k->len == 1 && k->str[0] == 'c') out->cseq = strtoll(v->str, NULL, 10);
  }
  return out->json ? 0 : -1;
}

/* Whether entries after pos may have been trimmed from stream key (MAXLEN)
 * before this node read them: 1, 0, or HD_EIO. XINFO's max-deleted-entry-id
 * does not move on a MAXLEN trim (Redis 7.0), so: pos itself still there =
 * nothing after it is gone (trims remove from the head); pos 0-0 (the stream
 * was empty) = gone if anything was ever removed; pos gone = maybe (the
 * callers' catch-up skips what was read: assuming a gap costs a read, never
 * a duplicate). */
static int trimmed_past(hd_rtm_redis_t *r, const char *key, hd_rtm_pos_t pos) {
  if (pos.ms || pos.seq) {
    char p[48];
    hd_rtm_pos_str(pos, p);
    const char *a[6] = {"XRANGE", key, p, p, "COUNT", "1"};
    redisReply *x = sync_argv(r, 6, a, NULL);
    if (!x) return HD_EIO;
    int there = x->type == REDIS_REPLY_ARRAY && x->elements == 1;
    freeReplyObject(x);
    return !there;
  }
  const char *xa[3] = {"XINFO", "STREAM", key};
  redisReply *x = sync_argv(r, 3, xa, NULL);
  if (!x) return HD_EIO;
  long long added = -1, len = -1;
  for (size_t i = 0; x->type == REDIS_REPLY_ARRAY && i + 1 < x->elements; i += 2) {
    const redisReply *kk = x->element[i], *v = x->element[i + 1];
    if (kk->type != REDIS_REPLY_STRING) continue;
    if (!strcmp(kk->str, "entries-added")) added = rep_int(v);
    if (!strcmp(kk->str, "length")) len = rep_int(v);
  }
  freeReplyObject(x); /* no such stream (an error reply): nothing was ever there */
  return added > len && len >= 0;
}

static int c_range(void *ud, const char *app, const char *ch, hd_rtm_pos_t after, hd_rtm_pos_t upto,
                   hd_rtm_entry_fn fn, void *fud) {
  hd_rtm_redis_t *r = ud;
  char cid[200], k[256], s0[52], s1[48];
  cid_of(cid, sizeof cid, app, ch);
  snprintf(k, sizeof k, P "log:%s", cid);
  hd_rtm_pos_str(upto, s1);
  int t = trimmed_past(r, k, after); /* trimmed past `after` (MAXLEN): entries are gone, never a silent gap */
  if (t < 0) return t;
  if (t) return HD_ENOSPC;
  for (;;) { /* in pages of 1000 */
    char p[48];
    hd_rtm_pos_str(after, p);
    snprintf(s0, sizeof s0, "(%s", p);
    const char *a[6] = {"XRANGE", k, s0, s1, "COUNT", "1000"};
    redisReply *rep = sync_argv(r, 6, a, NULL);
    if (!rep) return HD_EIO;
    if (rep->type != REDIS_REPLY_ARRAY) {
      freeReplyObject(rep);
      return HD_EIO;
    }
    size_t n = rep->elements;
    for (size_t i = 0; i < n; i++) {
      hd_rtm_entry_t e;
      if (log_entry(rep->element[i], &e) < 0) continue;
      after = e.pos;
      if (fn(fud, &e) < 0) {
        freeReplyObject(rep);
        return 0;
      }
    }
    freeReplyObject(rep);
    if (n < 1000) return 0;
  }
}

static int c_presence(void *ud, const char *app, const char *ch, const char *user, const char *node, int op,
                      const char *state, const char *body, int presence_max) {
  hd_rtm_redis_t *r = ud;
  char cid[200], k[6][256], o[4], pm[16];
  const char *nd = node ? node : r->node;
  cid_of(cid, sizeof cid, app, ch);
  snprintf(k[0], sizeof k[0], P "m:%s", cid);
  snprintf(k[1], sizeof k[1], P "mn:%s", cid);
  snprintf(k[2], sizeof k[2], P "st:%s", cid);
  snprintf(k[3], sizeof k[3], P "log:%s", cid);
  snprintf(k[4], sizeof k[4], P "nch:%s", nd);
  snprintf(k[5], sizeof k[5], P "pnodes");
  snprintf(o, sizeof o, "%d", op);
  const char *keys[6] = {k[0], k[1], k[2], k[3], k[4], k[5]};
  snprintf(pm, sizeof pm, "%d", presence_max);
  const char *args[8] = {user, nd, o, state ? state : "", body, r->maxlen, cid, pm};
  redisReply *rep = run(r, RS_PRES, 6, keys, 8, args, NULL);
  if (!rep) return HD_EIO;
  int rc = (int)rep_int(rep);
  freeReplyObject(rep);
  return rc;
}

static int c_who(void *ud, const char *app, const char *ch, hd_rtm_who_fn fn, void *fud) {
  hd_rtm_redis_t *r = ud;
  char cid[200], k1[256], k2[256];
  cid_of(cid, sizeof cid, app, ch);
  snprintf(k1, sizeof k1, P "m:%s", cid);
  snprintf(k2, sizeof k2, P "st:%s", cid);
  const char *keys[2] = {k1, k2};
  redisReply *rep = run(r, RS_WHO, 2, keys, 0, NULL, NULL);
  if (!rep) return HD_EIO;
  int n = 0;
  for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i + 2 < rep->elements; i += 3) {
    const redisReply *u = rep->element[i], *st = rep->element[i + 1];
    if (u->type != REDIS_REPLY_STRING) continue;
    fn(fud, u->str, rep_int(rep->element[i + 2]) ? st->str : NULL);
    n++;
  }
  freeReplyObject(rep);
  return n;
}

static void attr_keys(char *vals, char *revs, size_t cap, const char *app, hd_rtm_scope_t sc,
                      const char *name) {
  snprintf(vals, cap, P "attr:%c:%s/%s", sc == HD_RTM_SCOPE_CHANNEL ? 'c' : 'u', app, name);
  snprintf(revs, cap, P "arev:%c:%s/%s", sc == HD_RTM_SCOPE_CHANNEL ? 'c' : 'u', app, name);
}

static int c_attr_cas(void *ud, const char *app, hd_rtm_scope_t sc, const char *name, const char *key,
                      const char *value, int64_t expect, int max_keys, const char *ev_pre,
                      const char *ev_post, int64_t *rev) {
  hd_rtm_redis_t *r = ud;
  char k1[256], k2[256], k3[256], ex[24], mk[16], cid[200];
  attr_keys(k1, k2, sizeof k1, app, sc, name);
  cid_of(cid, sizeof cid, app, name);
  snprintf(k3, sizeof k3, P "log:%s", cid);
  snprintf(ex, sizeof ex, "%lld", (long long)expect);
  snprintf(mk, sizeof mk, "%d", max_keys);
  const char *keys[3] = {k1, k2, k3};
  const char *args[10] = {key,
                          value ? value : "",
                          value ? "0" : "1",
                          ex,
                          mk,
                          ev_pre,
                          ev_post,
                          r->maxlen,
                          sc == HD_RTM_SCOPE_CHANNEL ? "1" : "0",
                          cid};
  redisReply *rep = run(r, RS_ATTR, 3, keys, 10, args, NULL);
  if (!rep) return HD_EIO;
  int rc = HD_EIO;
  if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
    int64_t code = rep_int(rep->element[0]);
    *rev = rep_int(rep->element[1]);
    rc = code == 0 ? 0 : code == -1 ? HD_ESTATE : code == -2 ? HD_ENOTFOUND : HD_ENOSPC;
  }
  freeReplyObject(rep);
  return rc;
}

static int c_attr_list(void *ud, const char *app, hd_rtm_scope_t sc, const char *name, hd_rtm_attr_fn fn,
                       void *fud) {
  hd_rtm_redis_t *r = ud;
  char k1[256], k2[256];
  attr_keys(k1, k2, sizeof k1, app, sc, name);
  const char *keys[2] = {k1, k2};
  redisReply *rep = run(r, RS_ATTRS, 2, keys, 0, NULL, NULL);
  if (!rep) return HD_EIO;
  int n = 0;
  for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i + 2 < rep->elements; i += 3) {
    if (rep->element[i]->type != REDIS_REPLY_STRING || rep->element[i + 1]->type != REDIS_REPLY_STRING)
      continue;
    hd_rtm_attr_t a = {rep->element[i]->str, rep->element[i + 1]->str, rep_int(rep->element[i + 2])};
    n++;
    if (fn(fud, &a) < 0) break;
  }
  freeReplyObject(rep);
  return n;
}

static int c_lock(void *ud, int op, const char *app, const char *ch, const char *name, const char *user,
                  int64_t ttl_ms, int admin, char prev[128], int64_t *exp_ms) {
  hd_rtm_redis_t *r = ud;
  char cid[200], k1[256], k3[256], o[2] = {(char)op, 0}, ttl[24];
  cid_of(cid, sizeof cid, app, ch);
  snprintf(k1, sizeof k1, P "lock:%s", cid);
  snprintf(k3, sizeof k3, P "log:%s", cid);
  snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_ms);
  const char *keys[3] = {k1, P "lockexp", k3};
  const char *args[8] = {o, name, user, ttl, admin ? "1" : "0", cid, r->maxlen, ch};
  redisReply *rep = run(r, RS_LOCK, 3, keys, 8, args, NULL);
  if (!rep) return HD_EIO;
  int rc = HD_EIO;
  if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3) {
    int64_t code = rep_int(rep->element[0]);
    snprintf(prev, 128, "%s", rep->element[1]->type == REDIS_REPLY_STRING ? rep->element[1]->str : "");
    *exp_ms = rep_int(rep->element[2]);
    rc = code == 0 ? 0 : code == -1 ? HD_ESTATE : code == -2 ? HD_ENOTFOUND : HD_EFORBIDDEN;
  }
  freeReplyObject(rep);
  return rc;
}

static int c_lock_list(void *ud, const char *app, const char *ch, hd_rtm_lockl_fn fn, void *fud) {
  hd_rtm_redis_t *r = ud;
  char cid[200], k1[256];
  cid_of(cid, sizeof cid, app, ch);
  snprintf(k1, sizeof k1, P "lock:%s", cid);
  const char *keys[1] = {k1};
  redisReply *rep = run(r, RS_LOCKS, 1, keys, 0, NULL, NULL);
  if (!rep) return HD_EIO;
  int n = 0;
  for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i + 2 < rep->elements; i += 3) {
    if (rep->element[i]->type != REDIS_REPLY_STRING || rep->element[i + 1]->type != REDIS_REPLY_STRING)
      continue;
    fn(fud, rep->element[i]->str, rep->element[i + 1]->str, rep_int(rep->element[i + 2]));
    n++;
  }
  freeReplyObject(rep);
  return n;
}

/* One control message into a stream (the broadcast stream or a node's
 * inbox), kept there for the readers: 0 or HD_EIO. A node's inbox gets a TTL
 * on every write (RS_INBOX): the node may be dead and its inbox purged. */
static int ctl_send(hd_rtm_redis_t *r, const char *key, const char *msg, size_t len) {
  redisReply *rep;
  if (strcmp(key, P "bc")) {
    const char *keys[1] = {key}, *args[2] = {r->maxlen, msg};
    size_t al[2] = {strlen(r->maxlen), len};
    rep = run(r, RS_INBOX, 1, keys, 2, args, al);
  } else {
    const char *a[8] = {"XADD", key, "MAXLEN", "~", r->maxlen, "*", "m", msg};
    size_t l[8] = {4, strlen(key), 6, 1, strlen(r->maxlen), 1, 1, len};
    rep = sync_argv(r, 8, a, l);
  }
  if (!rep) return HD_EIO;
  int rc = rep->type == REDIS_REPLY_ERROR ? HD_EIO : 0;
  if (rc < 0) HD_LOGW("rtm", "cluster: XADD %s: %s", key, rep->str);
  freeReplyObject(rep);
  return rc;
}

/* A resume this node cannot serve: ask every node on the broadcast stream;
 * the holder answers in our inbox (ctl_message), or nobody within
 * RESUME_WAIT_MS. */
static int c_resume(void *ud, uint64_t conn, const char *resume) {
  hd_rtm_redis_t *r = ud;
  if (!r->rd.up || r->n_pend >= MAX_PENDING) return HD_EAGAIN;
  pending_t *p = &r->pend[r->n_pend];
  snprintf(p->rid, sizeof p->rid, "%llu", (unsigned long long)++r->next_rid);
  char msg[400];
  snprintf(msg, sizeof msg, "want\n%s\n%s\n%s", r->node, p->rid, resume);
  if (ctl_send(r, P "bc", msg, strlen(msg)) < 0) return HD_EIO;
  p->conn = conn;
  p->deadline = now_of(r) + (hd_time_t)RESUME_WAIT_MS * 1000;
  r->n_pend++;
  return 0;
}

/* ---------------------------------------------------------------- peers, user events */

static void c_user_here(void *ud, const char *app, const char *user, int here) {
  hd_rtm_redis_t *r = ud;
  char au[200], k1[256], k2[256];
  snprintf(au, sizeof au, "%s/%s", app, user);
  snprintf(k1, sizeof k1, P "un:%s", au);
  snprintf(k2, sizeof k2, P "nu:%s", r->node);
  const char *keys[3] = {k1, k2, P "pnodes"};
  const char *args[3] = {r->node, au, here ? "1" : "0"};
  redisReply *rep = run(r, RS_UHERE, 3, keys, 3, args, NULL);
  if (rep)
    freeReplyObject(rep);
  else if (here) /* written again by hd_rtm_cluster_reassert when Redis answers */
    HD_LOGD("rtm", "cluster: %s not registered for peer messages (Redis away)", au);
}

static int c_peer(void *ud, const char *app, const char *to, const char *sid, const char *id,
                  const char *body, int *nodes) {
  hd_rtm_redis_t *r = ud;
  *nodes = 0;
  json_t *o =
      json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "n", r->node, "s", sid, "i", id, "a", app, "u", to, "b", body);
  char *j = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  size_t jl = j ? strlen(j) : 0;
  char *msg = j ? malloc(jl + 6) : NULL;
  if (!msg) {
    free(j);
    return HD_ENOMEM;
  }
  memcpy(msg, "peer\n", 5);
  memcpy(msg + 5, j, jl + 1);
  free(j);
  char au[200], k[256];
  snprintf(au, sizeof au, "%s/%s", app, to);
  snprintf(k, sizeof k, P "un:%s", au);
  const char *keys[1] = {k};
  const char *args[3] = {r->node, msg, r->maxlen};
  redisReply *rep = run(r, RS_PEER, 1, keys, 3, args, NULL);
  free(msg);
  if (!rep) return HD_EIO;
  *nodes = (int)rep_int(rep);
  freeReplyObject(rep);
  return 0;
}

/* The de-duplication key of a peer message: its sender's session and id. The
 * session id is unique in the cluster and moves with the session, so a
 * retry sent from the node the session moved to is recognised too; the
 * origin node is only where the answer goes (the node each copy came
 * from). */
static size_t peer_key(char *out, size_t cap, const char *node, const char *sid, const char *id) {
  (void)node;
  int n = snprintf(out, cap, "%s\n%s", sid, id);
  return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* The outcome of a peer message sent by session sid of node `node`, into
 * that node's inbox. */
static void send_prc(hd_rtm_redis_t *r, const char *node, const char *sid, const char *id, int delivered) {
  json_t *o = json_pack("{s:s,s:s,s:b}", "s", sid, "i", id, "d", delivered);
  char *j = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  char ch[200], *msg = j ? malloc(strlen(j) + 5) : NULL;
  if (msg) {
    snprintf(msg, strlen(j) + 5, "prc\n%s", j);
    snprintf(ch, sizeof ch, P "in:%s", node);
    if (ctl_send(r, ch, msg, strlen(msg)) < 0) /* the sender's own deadline answers 504 */
      HD_LOGW("rtm", "cluster: the outcome of a peer message for node %s is lost (Redis did not take it)",
              node);
  }
  free(msg);
  free(j);
}

typedef struct {
  hd_rtm_redis_t *r;
  const char *sid, *id;
  int delivered;
} prc_ctx_t;

static void prc_waiting(void *ud, const char *origin) {
  prc_ctx_t *x = ud;
  send_prc(x->r, origin, x->sid, x->id, x->delivered);
}

/* The broker's outcome of a peer message it took in: to the node of its
 * first copy (`node`) and to every other node a later copy came from while
 * it was pending (a retry from the node the sender's session moved to). */
static void c_peer_result(void *ud, const char *node, const char *sid, const char *id, int delivered) {
  hd_rtm_redis_t *r = ud;
  char key[HD_RTM_SEEN_KEY_MAX + 1];
  size_t kl = peer_key(key, sizeof key, node, sid, id);
  prc_ctx_t x = {r, sid, id, delivered};
  if (kl) /* a copy of it that comes again gets this answer again */
    hd_rtm_seen_settle(&r->seen, key, kl, delivered ? HD_RTM_SEEN_DELIVERED : HD_RTM_SEEN_FAILED, node,
                       prc_waiting, &x);
  send_prc(r, node, sid, id, delivered);
}

static int c_user_event(void *ud, const char *app, const char *user, const char *body,
                        int (*fn)(void *fud, const char *ch), void *fud) {
  hd_rtm_redis_t *r = ud;
  char k[256];
  snprintf(k, sizeof k, P "uch:%s/%s", app, user);
  const char *keys[2] = {k, P "bc"};
  const char *args[5] = {r->node, app, user, body, r->maxlen};
  redisReply *rep = run(r, RS_UEV, 2, keys, 5, args, NULL);
  if (!rep) {
    HD_LOGW("rtm", "cluster: a user attribute event of %s/%s reached only this node (Redis did not take it)",
            app, user);
    return HD_EIO;
  }
  for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++)
    if (rep->element[i]->type == REDIS_REPLY_STRING) fn(fud, rep->element[i]->str);
  freeReplyObject(rep);
  return 0;
}

static int c_hook_owner(void *ud, const char *app, const char *ch, char owner[128]) {
  hd_rtm_redis_t *r = ud;
  char k[256];
  snprintf(k, sizeof k, P "own:%s/%s", app, ch);
  const char *keys[1] = {k};
  const char *args[1] = {r->node};
  redisReply *rep = run(r, RS_OWN, 1, keys, 1, args, NULL);
  if (!rep) return HD_EIO;
  int rc = rep->type == REDIS_REPLY_STRING && rep->len > 0 ? 1 : 0;
  if (rc) snprintf(owner, 128, "%s", rep->str);
  freeReplyObject(rep);
  return rc;
}

/* Messages of the control channels other than session moves. */
static void ps_other(hd_rtm_redis_t *r, const char *m, size_t len) {
  if (!r->b || len < 5) return;
  int kind = !memcmp(m, "peer\n", 5) ? 1 : !memcmp(m, "prc\n", 4) ? 2 : !memcmp(m, "uev\n", 4) ? 3 : 0;
  if (!kind) return;
  size_t skip = kind == 1 ? 5 : 4;
  json_t *o = json_loadb(m + skip, len - skip, 0, NULL);
  if (!o) return;
  const char *n = json_string_value(json_object_get(o, "n")),
             *sid = json_string_value(json_object_get(o, "s")),
             *id = json_string_value(json_object_get(o, "i")),
             *app = json_string_value(json_object_get(o, "a")),
             *u = json_string_value(json_object_get(o, "u")),
             *body = json_string_value(json_object_get(o, "b"));
  hd_time_t now = now_of(r);
  if (kind == 1 && n && sid && id && app && u && body) {
    char key[HD_RTM_SEEN_KEY_MAX + 1];
    size_t kl = peer_key(key, sizeof key, n, sid, id);
    int outcome = HD_RTM_SEEN_PENDING;
    if (kl && hd_rtm_seen_check(&r->seen, key, kl, n, &outcome) == 1) {
      /* a second copy (the sender's retry after a lost answer, maybe from
       * the node its session moved to): delivered once; a known outcome is
       * answered again to this copy's node, a pending one comes to it later
       * (c_peer_result answers every node a copy came from) */
      if (outcome != HD_RTM_SEEN_PENDING) send_prc(r, n, sid, id, outcome == HD_RTM_SEEN_DELIVERED);
    } else {
      r->peers_in++;
      hd_rtm_cluster_peer_in(r->b, n, sid, id, app, u, body, now);
    }
  } else if (kind == 2 && sid && id) {
    hd_rtm_cluster_peer_result(r->b, sid, id, json_is_true(json_object_get(o, "d")), now);
  } else if (kind == 3 && n && strcmp(n, r->node) && app && u && body) {
    json_t *c = json_object_get(o, "c"); /* Lua's cjson encodes no channels as {} */
    size_t nc = json_is_array(c) ? json_array_size(c) : 0;
    const char **chs = nc ? calloc(nc, sizeof *chs) : NULL;
    int k = 0;
    for (size_t i = 0; chs && i < nc; i++)
      if (json_is_string(json_array_get(c, i))) chs[k++] = json_string_value(json_array_get(c, i));
    r->uevents_in++;
    hd_rtm_cluster_user_event(r->b, app, u, body, chs, k, now);
    free(chs);
  }
  json_decref(o);
}

/* ---------------------------------------------------------------- async connections */

static void aconn_connect(aconn_t *a);

static void aconn_retry_cb(uv_timer_t *t) { aconn_connect(t->data); }

static void aconn_lost(aconn_t *a, const char *why) {
  hd_rtm_redis_t *r = a->r;
  a->up = 0;
  a->ac = NULL;
  if (r->closing) return;
  if (!a->failing) {
    a->failing = 1;
    HD_LOGW("rtm",
            "cluster: %s connection to Redis at %s:%d lost (%s); reconnecting with backoff up to %d ms",
            a->what, r->cfg.url.host, r->cfg.url.port, why, BACKOFF_MAX_MS);
  }
  uv_timer_start(&a->retry, aconn_retry_cb, (uint64_t)a->backoff_ms, 0);
  a->backoff_ms = a->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : a->backoff_ms * 2;
}

static void aconn_on_disconnect(const redisAsyncContext *ac, int status) {
  aconn_t *a = ac->data;
  if (a && a->ac == ac) aconn_lost(a, status == REDIS_OK ? "closed" : ac->errstr);
}

static void aconn_on_ready(redisAsyncContext *ac, void *reply, void *priv) {
  aconn_t *a = priv;
  redisReply *rep = reply;
  if (!rep || a->ac != ac) return;
  if (rep->type == REDIS_REPLY_ERROR) {
    HD_LOGW("rtm", "cluster: Redis refused the %s connection's setup: %s", a->what, rep->str);
    redisAsyncDisconnect(ac);
    return;
  }
  if (a->failing) HD_LOGW("rtm", "cluster: %s connection to Redis is back", a->what);
  a->up = 1;
  a->failing = 0;
  a->backoff_ms = BACKOFF_MIN_MS;
  a->on_up(a->r);
}

static void aconn_on_connect(const redisAsyncContext *ac, int status) {
  aconn_t *a = ac->data;
  if (!a || a->ac != ac) return;
  if (status != REDIS_OK) {
    aconn_lost(a, ac->errstr); /* hiredis frees the context */
    return;
  }
  hd_rtm_redis_t *r = a->r;
  redisAsyncContext *c = (redisAsyncContext *)ac;
  if (r->cfg.url.password[0]) {
    if (r->cfg.url.user[0])
      redisAsyncCommand(c, NULL, NULL, "AUTH %s %s", r->cfg.url.user, r->cfg.url.password);
    else
      redisAsyncCommand(c, NULL, NULL, "AUTH %s", r->cfg.url.password);
  }
  if (r->cfg.url.db) redisAsyncCommand(c, NULL, NULL, "SELECT %d", r->cfg.url.db);
  redisAsyncCommand(c, aconn_on_ready, a, "PING");
}

static void aconn_connect(aconn_t *a) {
  hd_rtm_redis_t *r = a->r;
  if (r->closing) return;
  redisAsyncContext *ac = redisAsyncConnect(r->cfg.url.host, r->cfg.url.port);
  if (!ac || ac->err) {
    char why[160];
    snprintf(why, sizeof why, "%s", ac ? ac->errstr : "out of memory");
    if (ac) redisAsyncFree(ac);
    a->ac = NULL;
    aconn_lost(a, why);
    return;
  }
  ac->data = a;
  a->ac = ac;
  if (hd_redis_uv_attach(ac, r->loop) != REDIS_OK) {
    a->ac = NULL;
    redisAsyncFree(ac);
    aconn_lost(a, "cannot attach to the event loop");
    return;
  }
  redisAsyncSetConnectCallback(ac, aconn_on_connect);
  redisAsyncSetDisconnectCallback(ac, aconn_on_disconnect);
}

/* ---------------------------------------------------------------- session moves */

static void give(hd_rtm_redis_t *r, const char *to, const char *rid, const char *resume) {
  char *state = NULL;
  size_t len = 0;
  if (!r->b || hd_rtm_cluster_export(r->b, resume, to, &state, &len, now_of(r)) < 0) return;
  r->moves_out++;
  size_t hl = strlen(rid) + 8, total = hl + len;
  char *msg = malloc(total + 1), ch[200];
  if (msg) {
    int n = snprintf(msg, hl + 1, "give\n%s\n", rid);
    memcpy(msg + n, state, len);
    snprintf(ch, sizeof ch, P "in:%s", to);
    if (ctl_send(r, ch, msg, (size_t)n + len) < 0)
      HD_LOGW("rtm",
              "cluster: a session moving to node %s is lost (Redis did not take it): its client logs "
              "in again",
              to);
  }
  free(msg);
  free(state);
}

static void taken(hd_rtm_redis_t *r, const char *rid, const char *state, size_t len) {
  for (int i = 0; i < r->n_pend; i++)
    if (!strcmp(r->pend[i].rid, rid)) {
      uint64_t conn = r->pend[i].conn;
      r->pend[i] = r->pend[--r->n_pend];
      r->moves_in++;
      if (r->b) hd_rtm_cluster_import(r->b, conn, state, len, now_of(r));
      return;
    }
}

/* Redis's clock in ms (the clock of stream ids), or 0. */
static uint64_t redis_ms(hd_rtm_redis_t *r) {
  const char *a[1] = {"TIME"};
  redisReply *rep = sync_argv(r, 1, a, NULL);
  uint64_t ms = 0;
  if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2)
    ms = (uint64_t)rep_int(rep->element[0]) * 1000 + (uint64_t)rep_int(rep->element[1]) / 1000;
  if (rep) freeReplyObject(rep);
  return ms;
}

/* One control message (an entry of the broadcast stream or of this node's
 * inbox, at position at). */
static void ctl_message(hd_rtm_redis_t *r, const char *m, size_t len, hd_rtm_pos_t at) {
  if (len > 5 && !memcmp(m, "want\n", 5)) { /* want\n<from>\n<rid>\n<resume> */
    char from[128], rid[24], resume[64];
    if (sscanf(m + 5, "%127[^\n]\n%23[^\n]\n%63s", from, rid, resume) != 3 || !strcmp(from, r->node)) return;
    /* read late (this reader was reconnecting): the asker has answered its
     * client 410 by now, and a session given to it would be lost */
    if (!r->batch_timed) { /* once per XREAD reply (on_xread resets it) */
      r->batch_redis_ms = redis_ms(r);
      r->batch_timed = 1;
    }
    uint64_t now = r->batch_redis_ms;
    if (!now || now > at.ms + RESUME_WAIT_MS * 8 / 10) return;
    give(r, from, rid, resume);
  } else if (len > 5 && !memcmp(m, "give\n", 5)) { /* give\n<rid>\n<state> */
    const char *nl = memchr(m + 5, '\n', len - 5);
    if (!nl || nl - (m + 5) >= 24) return;
    char rid[24];
    memcpy(rid, m + 5, (size_t)(nl - (m + 5)));
    rid[nl - (m + 5)] = 0;
    taken(r, rid, nl + 1, len - (size_t)(nl + 1 - m));
  } else {
    ps_other(r, m, len);
  }
}

/* ---------------------------------------------------------------- the log reader */

static void reader_issue(hd_rtm_redis_t *r);

static void stream_key(hd_rtm_redis_t *r, int i, char out[200]) {
  if (i < FAN_SHARDS)
    snprintf(out, 200, P "fan:%d", i);
  else
    snprintf(out, 200, "%s", i == ST_BC ? P "bc" : r->inbox);
}

/* Where the reader starts in each stream it reads (the fan-in shards, the
 * broadcast stream, this node's inbox): its last entry now (an empty
 * stream: its start). Never "$": a stream with no entry for a while would
 * then skip what arrives between two reads. 0, or -1 to retry. After a
 * reconnect the reader goes on from where it was instead. */
static int fan_init(hd_rtm_redis_t *r) {
  for (int i = 0; i < N_STREAMS; i++) {
    char k[200];
    stream_key(r, i, k);
    const char *a[6] = {"XREVRANGE", k, "+", "-", "COUNT", "1"};
    redisReply *rep = sync_argv(r, 6, a, NULL);
    if (!rep) return -1;
    hd_rtm_pos_t pos = {0, 0};
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 && rep->element[0]->type == REDIS_REPLY_ARRAY &&
        rep->element[0]->elements >= 1 && rep->element[0]->element[0]->type == REDIS_REPLY_STRING)
      hd_rtm_pos_parse(rep->element[0]->element[0]->str, rep->element[0]->element[0]->len, &pos);
    freeReplyObject(rep);
    r->fan_pos[i] = pos;
  }
  r->fan_ready = 1;
  return 0;
}

/* After a reconnect: entries trimmed (MAXLEN) before this node read them.
 * A fan-in shard: each followed channel catches up from its own log (which
 * keeps rtm.cluster_log entries per channel, not shared); the broker skips
 * what it fanned out already (positions). A control stream: counted and
 * logged (a peer message there ends as 504 at its sender's deadline). */
static int catch_up_cb(void *ud, const hd_rtm_entry_t *e);
typedef struct {
  hd_rtm_redis_t *r;
  char app[64], ch[HD_RTM_MAX_CHANNEL + 1];
} catch_t;

static int catch_up_cb(void *ud, const hd_rtm_entry_t *e) {
  catch_t *c = ud;
  hd_rtm_redis_t *r = c->r;
  if (!r->b) return -1;
  char key[256];
  snprintf(key, sizeof key, P "log:%s/%s", c->app, c->ch);
  watch_t *w = *watch_slot(r, key);
  if (!w) return -1; /* its last subscriber left meanwhile */
  if (hd_rtm_pos_cmp(e->pos, w->pos) > 0) w->pos = e->pos;
  r->entries++;
  hd_rtm_cluster_entry(r->b, c->app, c->ch, e, now_of(r));
  return 0;
}

static void reader_check_gaps(hd_rtm_redis_t *r) {
  int fan_gap = 0;
  for (int i = 0; i < N_STREAMS; i++) {
    char k[200];
    stream_key(r, i, k);
    if (trimmed_past(r, k, r->fan_pos[i]) != 1) continue;
    if (i < FAN_SHARDS) {
      fan_gap = 1;
    } else {
      r->gaps++;
      HD_LOGW("rtm",
              "cluster: %s was trimmed past this node's position while its reader was away (more than "
              "rtm.cluster_log entries): peer messages there end as 504 at their senders' deadline, "
              "user events and resume requests there are lost",
              k);
    }
  }
  if (!fan_gap || !r->b) return;
  size_t n = r->n_watch, k = 0;
  catch_t *cs = n ? calloc(n, sizeof *cs) : NULL;
  for (int b = 0; cs && b < WATCH_BUCKETS; b++)
    for (watch_t *w = r->wb[b]; w && k < n; w = w->next) {
      cs[k].r = r;
      snprintf(cs[k].app, sizeof cs[k].app, "%s", w->app);
      snprintf(cs[k].ch, sizeof cs[k].ch, "%s", w->ch);
      k++;
    }
  hd_rtm_pos_t end = {UINT64_MAX, UINT64_MAX};
  for (size_t i = 0; i < k; i++) {
    char key[256];
    snprintf(key, sizeof key, P "log:%s/%s", cs[i].app, cs[i].ch);
    watch_t *w = *watch_slot(r, key);
    if (!w) continue;
    int rc = c_range(r, cs[i].app, cs[i].ch, w->pos, end, catch_up_cb, &cs[i]);
    if (rc == HD_ENOSPC) {
      r->gaps++;
      HD_LOGW("rtm",
              "cluster: channel %s/%s: its log was trimmed past what this node had read (more than "
              "rtm.cluster_log entries while its reader was away): its subscribers here miss those; "
              "they refill with hist",
              cs[i].app, cs[i].ch);
    }
  }
  free(cs);
  HD_LOGW("rtm",
          "cluster: fan-in streams trimmed while the reader was away: %zu channel(s) caught up from "
          "their logs",
          k);
}

/* One fan-in entry: k (cid), p (its id in the channel's log), j, c. */
static void fan_entry(hd_rtm_redis_t *r, const redisReply *e, hd_time_t now) {
  const redisReply *f = e->element[1];
  const char *cid = NULL, *p = NULL;
  size_t pl = 0;
  hd_rtm_entry_t x = {.cseq = 0, .json = NULL};
  for (size_t i = 0; i + 1 < f->elements; i += 2) {
    const redisReply *k = f->element[i], *v = f->element[i + 1];
    if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || k->len != 1) continue;
    if (k->str[0] == 'k') cid = v->str;
    if (k->str[0] == 'p') p = v->str, pl = v->len;
    if (k->str[0] == 'j') x.json = v->str, x.len = v->len;
    if (k->str[0] == 'c') x.cseq = strtoll(v->str, NULL, 10);
  }
  if (!cid || !p || !x.json || hd_rtm_pos_parse(p, pl, &x.pos) < 0) return;
  char key[256];
  snprintf(key, sizeof key, P "log:%s", cid);
  watch_t *w = *watch_slot(r, key);
  if (!w) return; /* a channel this node does not follow */
  if (hd_rtm_pos_cmp(x.pos, w->pos) > 0) w->pos = x.pos;
  r->entries++;
  char app[64], ch[HD_RTM_MAX_CHANNEL + 1];
  snprintf(app, sizeof app, "%s", w->app);
  snprintf(ch, sizeof ch, "%s", w->ch);
  hd_rtm_cluster_entry(r->b, app, ch, &x, now); /* may close w (its last subscriber left) */
}

static void on_xread(redisAsyncContext *ac, void *reply, void *priv) {
  hd_rtm_redis_t *r = priv;
  redisReply *rep = reply;
  if (r->rd.ac != ac) return;
  r->reading = 0;
  if (!rep) return; /* disconnecting: the reconnect reads again */
  hd_time_t now = now_of(r);
  hd_rtm_pos_t inbox_read = {0, 0};
  r->batch_timed = 0; /* Redis's clock is asked again for this reply's resume requests */
  if (rep->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i < rep->elements; i++) {
      const redisReply *st = rep->element[i];
      if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 || st->element[0]->type != REDIS_REPLY_STRING)
        continue;
      const char *name = st->element[0]->str;
      int idx = -1;
      if (!strncmp(name, P "fan:", sizeof(P "fan:") - 1))
        idx = atoi(name + sizeof(P "fan:") - 1);
      else if (!strcmp(name, P "bc"))
        idx = ST_BC;
      else if (!strcmp(name, r->inbox))
        idx = ST_IN;
      if (idx < 0 || idx >= N_STREAMS) continue;
      const redisReply *es = st->element[1];
      for (size_t j = 0; j < es->elements; j++) {
        const redisReply *e = es->element[j];
        hd_rtm_pos_t id;
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING ||
            e->element[1]->type != REDIS_REPLY_ARRAY ||
            hd_rtm_pos_parse(e->element[0]->str, e->element[0]->len, &id) < 0)
          continue;
        r->fan_pos[idx] = id;
        if (!r->b) continue;
        if (idx < FAN_SHARDS) {
          fan_entry(r, e, now);
          continue;
        }
        if (idx == ST_IN) inbox_read = id;
        const redisReply *f = e->element[1];
        for (size_t k = 0; k + 1 < f->elements; k += 2)
          if (f->element[k]->type == REDIS_REPLY_STRING && f->element[k]->len == 1 &&
              f->element[k]->str[0] == 'm' && f->element[k + 1]->type == REDIS_REPLY_STRING)
            ctl_message(r, f->element[k + 1]->str, f->element[k + 1]->len, id);
      }
    }
  } else if (rep->type == REDIS_REPLY_ERROR) {
    HD_LOGW("rtm", "cluster: XREAD: %s", rep->str);
  }
  if ((inbox_read.ms || inbox_read.seq) && r->rd.up) { /* read: the inbox need not keep it (a moved
                                                        * session can be MiBs); pipelined before the
                                                        * next read, no wait */
    char id[48]; /* MINID keeps the last entry read: the reconnect's gap check looks for it */
    hd_rtm_pos_str(inbox_read, id);
    const char *a[4] = {"XTRIM", r->inbox, "MINID", id};
    redisAsyncCommandArgv(r->rd.ac, NULL, NULL, 4, a, NULL);
  }
  reader_issue(r);
}

/* One blocking read of the fan-in streams, the broadcast stream and this
 * node's inbox from where the reader is: the same command whatever
 * channels the node follows. */
static void reader_issue(hd_rtm_redis_t *r) {
  if (!r->rd.up || r->reading || !r->b) return;
  if (!r->fan_ready && fan_init(r) < 0) return; /* Redis away: the reconnect comes back here */
  const char *argv[6 + 2 * N_STREAMS];
  char keys[N_STREAMS][200], ids[N_STREAMS][48];
  size_t k = 0;
  argv[k++] = "XREAD", argv[k++] = "COUNT", argv[k++] = XREAD_COUNT, argv[k++] = "BLOCK",
  argv[k++] = XREAD_BLOCK_MS, argv[k++] = "STREAMS";
  for (int i = 0; i < N_STREAMS; i++) {
    stream_key(r, i, keys[i]);
    hd_rtm_pos_str(r->fan_pos[i], ids[i]);
    argv[k + (size_t)i] = keys[i];
    argv[k + N_STREAMS + (size_t)i] = ids[i];
  }
  if (redisAsyncCommandArgv(r->rd.ac, on_xread, r, 6 + 2 * N_STREAMS, argv, NULL) == REDIS_OK) r->reading = 1;
}

static void reader_kick(hd_rtm_redis_t *r) { reader_issue(r); }

static void reader_up(hd_rtm_redis_t *r) {
  r->reading = 0;
  if (r->fan_ready && r->b) reader_check_gaps(r); /* a reconnect: read on from the positions */
  reader_issue(r);
}

/* ---------------------------------------------------------------- timers */

static void purge_dead(hd_rtm_redis_t *r) {
  const char *a[2] = {"SMEMBERS", P "pnodes"};
  redisReply *rep = sync_argv(r, 2, a, NULL);
  if (!rep) return;
  char seen[16][128];
  int n_seen = 0;
  for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
    const char *id = rep->element[i]->str;
    if (!id || !strcmp(id, r->node) || rep->element[i]->len >= 128) continue;
    char key[200];
    snprintf(key, sizeof key, "hudong:node:%s", id);
    const char *e[2] = {"EXISTS", key};
    redisReply *x = sync_argv(r, 2, e, NULL);
    if (!x) break;
    int alive = rep_int(x) > 0;
    freeReplyObject(x);
    if (alive) continue;
    int before = 0; /* missing at the previous look too (2 s): dead, not a Redis restart's gap */
    for (int k = 0; k < r->n_dead; k++)
      before |= !strcmp(r->dead[k], id);
    if (before) {
      const char *args[2] = {id, r->maxlen};
      redisReply *p = run(r, RS_PURGE, 0, NULL, 2, args, NULL);
      if (p) {
        HD_LOGI("rtm", "cluster: node %s is gone: its RTM members timed out", id);
        freeReplyObject(p);
      }
    } else if (n_seen < 16) {
      snprintf(seen[n_seen++], 128, "%s", id);
    }
  }
  freeReplyObject(rep);
  memcpy(r->dead, seen, sizeof seen);
  r->n_dead = n_seen;
}

static void on_tick(uv_timer_t *t) {
  hd_rtm_redis_t *r = t->data;
  hd_time_t now = now_of(r);
  for (int i = 0; i < r->n_pend;) /* resumes nobody answered: 410 */
    if (r->pend[i].deadline <= now) {
      uint64_t conn = r->pend[i].conn;
      r->pend[i] = r->pend[--r->n_pend];
      r->resume_misses++;
      if (r->b) hd_rtm_cluster_import(r->b, conn, NULL, 0, now);
    } else {
      i++;
    }
  if (!r->b || (!r->sc && now < r->sync_retry_at)) return;
  const char *keys[1] = {P "lockexp"};
  const char *args[1] = {r->maxlen};
  redisReply *rep = run(r, RS_LOCK_EXPIRE, 1, keys, 1, args, NULL);
  if (rep) freeReplyObject(rep);
  if (++r->ticks % PURGE_EVERY == 0) purge_dead(r);
}

/* ---------------------------------------------------------------- API */

int hd_rtm_redis_new(hd_rtm_redis_t **out, uv_loop_t *loop, const hd_rtm_redis_config_t *cfg) {
  *out = NULL;
  if (!cfg->node_id || !cfg->node_id[0] || strlen(cfg->node_id) >= 128 || strchr(cfg->node_id, '\n'))
    return HD_EINVAL;
  hd_rtm_redis_t *r = calloc(1, sizeof *r);
  if (!r) return HD_ENOMEM;
  r->loop = loop;
  r->cfg = *cfg;
  snprintf(r->node, sizeof r->node, "%s", cfg->node_id);
  snprintf(r->maxlen, sizeof r->maxlen, "%d", cfg->log_max > 0 ? cfg->log_max : HD_RTM_REDIS_DEFAULT_LOG);
  r->ops = (hd_rtm_cluster_t){.ud = r,
                              .node = r->node,
                              .chan_open = c_chan_open,
                              .chan_close = c_chan_close,
                              .publish = c_publish,
                              .hist = c_hist,
                              .range = c_range,
                              .presence = c_presence,
                              .who = c_who,
                              .attr_cas = c_attr_cas,
                              .attr_list = c_attr_list,
                              .lock = c_lock,
                              .lock_list = c_lock_list,
                              .resume = c_resume,
                              .user_here = c_user_here,
                              .peer = c_peer,
                              .peer_result = c_peer_result,
                              .user_event = c_user_event,
                              .hook_owner = c_hook_owner};
  snprintf(r->inbox, sizeof r->inbox, P "in:%s", r->node);
  if (hd_rtm_seen_init(&r->seen, cfg->dedupe_max > 0 ? (size_t)cfg->dedupe_max : HD_RTM_SEEN_DEFAULT) < 0) {
    free(r);
    return HD_ENOMEM;
  }
  aconn_t *as[1] = {&r->rd};
  const char *names[1] = {"log reader"};
  void (*ups[1])(hd_rtm_redis_t *) = {reader_up};
  for (int i = 0; i < 1; i++) {
    as[i]->r = r;
    as[i]->what = names[i];
    as[i]->on_up = ups[i];
    as[i]->backoff_ms = BACKOFF_MIN_MS;
    uv_timer_init(loop, &as[i]->retry);
    as[i]->retry.data = as[i];
  }
  uv_timer_init(loop, &r->tick);
  r->tick.data = r;
  r->open_handles = 2;
  *out = r;
  return 0;
}

const hd_rtm_cluster_t *hd_rtm_redis_ops(hd_rtm_redis_t *r) { return &r->ops; }

void hd_rtm_redis_start(hd_rtm_redis_t *r, hd_rtm_broker_t *b) {
  r->b = b;
  aconn_connect(&r->rd);
  uv_timer_start(&r->tick, on_tick, TICK_MS, TICK_MS);
}

static void closed(hd_rtm_redis_t *r) {
  if (--r->open_handles == 0) {
    for (int b = 0; b < WATCH_BUCKETS; b++)
      while (r->wb[b]) {
        watch_t *w = r->wb[b];
        r->wb[b] = w->next;
        free(w->key);
        free(w);
      }
    hd_rtm_seen_free(&r->seen);
    free(r);
  }
}

static void on_tick_closed(uv_handle_t *h) { closed(h->data); }
static void on_retry_closed(uv_handle_t *h) { closed(((aconn_t *)h->data)->r); }

void hd_rtm_redis_free(hd_rtm_redis_t *r) {
  if (!r) return;
  r->closing = 1;
  r->b = NULL;
  aconn_t *as[1] = {&r->rd};
  for (int i = 0; i < 1; i++) {
    redisAsyncContext *ac = as[i]->ac;
    as[i]->ac = NULL;
    if (ac) redisAsyncFree(ac);
    uv_close((uv_handle_t *)&as[i]->retry, on_retry_closed);
  }
  if (r->sc) redisFree(r->sc);
  r->sc = NULL;
  uv_close((uv_handle_t *)&r->tick, on_tick_closed);
}

int hd_rtm_redis_metrics_text(hd_rtm_redis_t *r, char *out, size_t cap) {
  int n = snprintf(
      out, cap,
      "# HELP hudong_rtm_cluster_appended_total RTM messages this node appended to channel logs.\n"
      "# TYPE hudong_rtm_cluster_appended_total counter\nhudong_rtm_cluster_appended_total %llu\n"
      "# HELP hudong_rtm_cluster_entries_total RTM log entries this node read.\n"
      "# TYPE hudong_rtm_cluster_entries_total counter\nhudong_rtm_cluster_entries_total %llu\n"
      "# HELP hudong_rtm_cluster_channels RTM channel logs this node follows.\n"
      "# TYPE hudong_rtm_cluster_channels gauge\nhudong_rtm_cluster_channels %zu\n"
      "# HELP hudong_rtm_cluster_moves_total RTM sessions moved between nodes on resume.\n"
      "# TYPE hudong_rtm_cluster_moves_total counter\n"
      "hudong_rtm_cluster_moves_total{dir=\"in\"} %llu\nhudong_rtm_cluster_moves_total{dir=\"out\"} %llu\n"
      "# HELP hudong_rtm_cluster_resume_misses_total RTM resumes no node held (410).\n"
      "# TYPE hudong_rtm_cluster_resume_misses_total counter\nhudong_rtm_cluster_resume_misses_total %llu\n"
      "# HELP hudong_rtm_cluster_redis_failures_total RTM calls to Redis that failed.\n"
      "# TYPE hudong_rtm_cluster_redis_failures_total counter\nhudong_rtm_cluster_redis_failures_total "
      "%llu\n"
      "# HELP hudong_rtm_cluster_peer_in_total RTM peer messages from other nodes' sessions.\n"
      "# TYPE hudong_rtm_cluster_peer_in_total counter\nhudong_rtm_cluster_peer_in_total %llu\n"
      "# HELP hudong_rtm_cluster_user_events_in_total RTM user attribute events made on other nodes.\n"
      "# TYPE hudong_rtm_cluster_user_events_in_total counter\nhudong_rtm_cluster_user_events_in_total "
      "%llu\n"
      "# HELP hudong_rtm_cluster_dups_total RTM cross-node copies taken once: publishes answered from a "
      "retried id, peer messages seen before.\n"
      "# TYPE hudong_rtm_cluster_dups_total counter\n"
      "hudong_rtm_cluster_dups_total{kind=\"pub\"} %llu\nhudong_rtm_cluster_dups_total{kind=\"peer\"} %llu\n"
      "# HELP hudong_rtm_cluster_gaps_total RTM stream entries trimmed before this node read them.\n"
      "# TYPE hudong_rtm_cluster_gaps_total counter\nhudong_rtm_cluster_gaps_total %llu\n"
      "# HELP hudong_rtm_cluster_peer_unanswered_total RTM repeated peer messages whose node never gets "
      "the outcome from here (over the waiters per message, or pushed out while pending): its sender "
      "answers 504 at its deadline.\n"
      "# TYPE hudong_rtm_cluster_peer_unanswered_total counter\nhudong_rtm_cluster_peer_unanswered_total "
      "%llu\n",
      (unsigned long long)r->appended, (unsigned long long)r->entries, r->n_watch,
      (unsigned long long)r->moves_in, (unsigned long long)r->moves_out, (unsigned long long)r->resume_misses,
      (unsigned long long)r->failures, (unsigned long long)r->peers_in, (unsigned long long)r->uevents_in,
      (unsigned long long)r->pub_dups, r->seen.dropped, (unsigned long long)r->gaps, r->seen.unanswered);
  return n < 0 || (size_t)n >= cap ? HD_ENOSPC : n;
}
