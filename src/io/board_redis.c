/* Whiteboard snapshots in the cluster's Redis (see board_redis.h). */
#include "io/board_redis.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "base/err.h"
#include "base/log.h"
#include "io/redis_sync.h"

struct hd_board_redis {
  hd_redis_url_t url;
  int64_t ttl_ms; /* up to 30 days in ms: does not fit an int */
  redisContext *c;
  int64_t down_until_ms; /* no connect before this (monotonic ms) */
  int failing;           /* in a streak of failures (logged once) */
};

/* Writes only over an older snapshot (or none). KEYS: 1 the board's key.
 * ARGV: 1 seq, 2 snapshot text, 3 TTL (ms). */
static const char put_script[] = "local s = tonumber(redis.call('HGET', KEYS[1], 'seq') or '-1') "
                                 "if s > tonumber(ARGV[1]) then return 0 end "
                                 "redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'snap', ARGV[2]) "
                                 "redis.call('PEXPIRE', KEYS[1], ARGV[3]) "
                                 "return 1";

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int hd_board_redis_new(hd_board_redis_t **out, const hd_redis_url_t *url, int64_t ttl_ms) {
  hd_board_redis_t *r = calloc(1, sizeof *r);
  if (!r) return HD_ENOMEM;
  r->url = *url;
  r->ttl_ms = ttl_ms;
  *out = r;
  return 0;
}

void hd_board_redis_free(hd_board_redis_t *r) {
  if (!r) return;
  if (r->c) redisFree(r->c);
  free(r);
}

static void fail(hd_board_redis_t *r, const char *why) {
  if (!r->failing++)
    HD_LOGW("board",
            "cluster: board snapshots cannot reach Redis at %s:%d (%s): a board taken over meanwhile "
            "goes on from what its new node has; retrying every %d ms",
            r->url.host, r->url.port, why, HD_BOARD_REDIS_RETRY_MS);
  if (r->c) redisFree(r->c);
  r->c = NULL;
  r->down_until_ms = mono_ms() + HD_BOARD_REDIS_RETRY_MS;
}

/* The connection, (re)made when needed; NULL while Redis is away. */
static redisContext *conn(hd_board_redis_t *r) {
  if (r->c) return r->c;
  if (mono_ms() < r->down_until_ms) return NULL;
  char why[300];
  r->c = hd_redis_sync_connect(&r->url, HD_BOARD_REDIS_TIMEOUT_MS, why, sizeof why);
  if (!r->c) {
    fail(r, why);
    return NULL;
  }
  if (r->failing) HD_LOGI("board", "cluster: board snapshots reach Redis again");
  r->failing = 0;
  return r->c;
}

int hd_board_redis_get(void *ud, const char *app, const char *ch, int64_t have, int64_t *seq, char **text) {
  hd_board_redis_t *r = ud;
  redisContext *c = conn(r);
  if (!c) return HD_EIO;
  /* the seq first: the snapshot (up to board.share_max_kb) crosses only when newer */
  redisReply *rep = redisCommand(c, "HGET " HD_BOARD_REDIS_KEY "%s/%s seq", app, ch);
  if (!rep || (rep->type != REDIS_REPLY_STRING && rep->type != REDIS_REPLY_NIL)) {
    char why[160];
    snprintf(why, sizeof why, "%s", rep && rep->type == REDIS_REPLY_ERROR ? rep->str : c->errstr);
    if (rep) freeReplyObject(rep);
    fail(r, why);
    return HD_EIO;
  }
  int newer = rep->type == REDIS_REPLY_STRING && strtoll(rep->str, NULL, 10) > have;
  freeReplyObject(rep);
  if (!newer) return HD_ENOTFOUND;
  rep = redisCommand(c, "HMGET " HD_BOARD_REDIS_KEY "%s/%s seq snap", app, ch);
  if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
    char why[160];
    snprintf(why, sizeof why, "%s", rep && rep->type == REDIS_REPLY_ERROR ? rep->str : c->errstr);
    if (rep) freeReplyObject(rep);
    fail(r, why);
    return HD_EIO;
  }
  int rc = HD_ENOTFOUND;
  redisReply *s = rep->element[0], *t = rep->element[1];
  if (s->type == REDIS_REPLY_STRING && t->type == REDIS_REPLY_STRING) {
    *seq = strtoll(s->str, NULL, 10);
    *text = malloc(t->len + 1);
    rc = *text ? 0 : HD_ENOMEM;
    if (*text) {
      memcpy(*text, t->str, t->len);
      (*text)[t->len] = 0;
    }
  }
  freeReplyObject(rep);
  return rc;
}

int hd_board_redis_put(void *ud, const char *app, const char *ch, int64_t seq, const char *text, size_t len) {
  hd_board_redis_t *r = ud;
  redisContext *c = conn(r);
  if (!c) return HD_EIO;
  char key[400], sq[24], ttl[24];
  snprintf(key, sizeof key, HD_BOARD_REDIS_KEY "%s/%s", app, ch);
  snprintf(sq, sizeof sq, "%" PRId64, seq);
  snprintf(ttl, sizeof ttl, "%" PRId64, r->ttl_ms);
  const char *argv[7] = {"EVAL", put_script, "1", key, sq, text, ttl};
  size_t lens[7] = {4, strlen(put_script), 1, strlen(key), strlen(sq), len, strlen(ttl)};
  redisReply *rep = redisCommandArgv(c, 7, argv, lens);
  if (!rep || rep->type != REDIS_REPLY_INTEGER) {
    char why[160];
    snprintf(why, sizeof why, "%s", rep && rep->type == REDIS_REPLY_ERROR ? rep->str : c->errstr);
    if (rep) freeReplyObject(rep);
    fail(r, why);
    return HD_EIO;
  }
  int rc = rep->integer ? 1 : 0;
  freeReplyObject(rep);
  return rc;
}
