/* A blocking hiredis connection to the Redis of `--redis` (docs/overlay.md):
 * connect with a timeout, the same timeout on every later call, then AUTH
 * and SELECT as the URL says. Shared by the callers that talk to Redis
 * synchronously (io/rtm_redis.c, io/board_redis.c). */
#ifndef HD_IO_REDIS_SYNC_H
#define HD_IO_REDIS_SYNC_H
#include <stddef.h>

#include <hiredis/hiredis.h>

#include "cluster/redis_url.h"

/* The ready context, or NULL with the reason in why (nothing to free). */
redisContext *hd_redis_sync_connect(const hd_redis_url_t *url, int timeout_ms, char *why, size_t cap);

#endif
