/* hiredis asynchronous contexts on a libuv loop (redis_uv.h).
 *
 * hiredis 0.14's own libuv adapter (adapters/libuv.h) returns early on a poll
 * error, so a refused connect is never reported and the context waits
 * forever; this one passes an error on as readiness so that hiredis reads the
 * socket error itself ("Connection refused"). hiredis 1.x fixed it the same
 * way. Shared by the cluster registry (cluster_redis.c) and the RTM cluster
 * log (rtm_redis.c). */
#include "io/redis_uv.h"

#include <stdlib.h>
#include <uv.h>

typedef struct {
  redisAsyncContext *ac;
  uv_poll_t poll;
  int events; /* UV_READABLE | UV_WRITABLE wanted by hiredis */
} uv_adapter_t;

static void adapter_on_poll(uv_poll_t *h, int status, int events) {
  uv_adapter_t *a = h->data;
  /* an error (POLLERR: refused connect, reset) is given to hiredis as the
   * readiness it waits for; its read or write then fails with the reason */
  int ev = status < 0 ? a->events : events;
  if (a->ac && (ev & UV_READABLE)) redisAsyncHandleRead(a->ac);
  if (a->ac && (ev & UV_WRITABLE)) redisAsyncHandleWrite(a->ac);
}

static void adapter_update(uv_adapter_t *a, int add, int del) {
  a->events = (a->events | add) & ~del;
  if (a->events)
    uv_poll_start(&a->poll, a->events, adapter_on_poll);
  else
    uv_poll_stop(&a->poll);
}

static void adapter_add_read(void *d) { adapter_update(d, UV_READABLE, 0); }
static void adapter_del_read(void *d) { adapter_update(d, 0, UV_READABLE); }
static void adapter_add_write(void *d) { adapter_update(d, UV_WRITABLE, 0); }
static void adapter_del_write(void *d) { adapter_update(d, 0, UV_WRITABLE); }

static void adapter_closed(uv_handle_t *h) { free(h->data); }

static void adapter_cleanup(void *d) {
  uv_adapter_t *a = d;
  a->ac = NULL; /* hiredis is freeing the context */
  uv_close((uv_handle_t *)&a->poll, adapter_closed);
}

int hd_redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop) {
  if (ac->ev.data) return REDIS_ERR;
  uv_adapter_t *a = calloc(1, sizeof *a);
  if (!a) return REDIS_ERR;
  if (uv_poll_init_socket(loop, &a->poll, ac->c.fd) < 0) {
    free(a);
    return REDIS_ERR;
  }
  a->ac = ac;
  a->poll.data = a;
  ac->ev.addRead = adapter_add_read;
  ac->ev.delRead = adapter_del_read;
  ac->ev.addWrite = adapter_add_write;
  ac->ev.delWrite = adapter_del_write;
  ac->ev.cleanup = adapter_cleanup;
  ac->ev.data = a;
  return REDIS_OK;
}
