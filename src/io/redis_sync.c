/* A blocking Redis connection (see redis_sync.h). */
#include "io/redis_sync.h"

#include <stdio.h>
#include <sys/time.h>

redisContext *hd_redis_sync_connect(const hd_redis_url_t *url, int timeout_ms, char *why, size_t cap) {
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  redisContext *c = redisConnectWithTimeout(url->host, url->port, tv);
  if (!c || c->err) {
    snprintf(why, cap, "%s", c ? c->errstr : "out of memory");
    if (c) redisFree(c);
    return NULL;
  }
  redisSetTimeout(c, tv);
  redisReply *rep = NULL;
  if (url->password[0]) {
    rep = url->user[0] ? redisCommand(c, "AUTH %s %s", url->user, url->password)
                       : redisCommand(c, "AUTH %s", url->password);
    if (!rep || rep->type == REDIS_REPLY_ERROR) goto bad;
    freeReplyObject(rep);
  }
  if (url->db) {
    rep = redisCommand(c, "SELECT %d", url->db);
    if (!rep || rep->type == REDIS_REPLY_ERROR) goto bad;
    freeReplyObject(rep);
  }
  return c;
bad:
  snprintf(why, cap, "%s", rep ? rep->str : c->errstr);
  if (rep) freeReplyObject(rep);
  redisFree(c);
  return NULL;
}
