/* A hiredis asynchronous context driven by a libuv loop (our adapter: see
 * redis_uv.c for why not the one hiredis 0.14 ships). */
#ifndef HD_IO_REDIS_UV_H
#define HD_IO_REDIS_UV_H
#include <hiredis/async.h>

struct uv_loop_s;

/* Attaches ac (just connected with redisAsyncConnect) to loop; the adapter
 * is freed with the context. REDIS_OK or REDIS_ERR. */
int hd_redis_uv_attach(redisAsyncContext *ac, struct uv_loop_s *loop);

#endif
