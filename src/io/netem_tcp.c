/* TCP delay relay (see netem_tcp.h). One connection = the client's socket,
 * the upstream socket and, per direction, a FIFO of chunks each due at its
 * read time + the delay, drained by one timer. A side's EOF travels as a
 * marker through the same FIFO, so the other side is shut down only after the
 * bytes before it were written. The connection is freed when its four
 * handles have closed. */
#include "io/netem_tcp.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"

typedef struct chunk {
  struct chunk *next;
  hd_time_t due;
  size_t len; /* 0 = the EOF marker */
  char data[];
} chunk_t;

typedef struct conn conn_t;

typedef struct {
  conn_t *c;
  int d; /* 0 up (client -> target), 1 down */
  chunk_t *head, *tail;
  size_t queued;
  int paused;
  uv_timer_t timer;
} dir_t;

struct conn {
  hd_netem_tcp_t *r;
  uv_tcp_t sock[2]; /* [0] client side, [1] upstream */
  dir_t dir[2];     /* dir[d] reads sock[d], writes sock[1 - d] */
  int connected, closing, open_handles, shut_done;
  struct conn *next;
};

struct hd_netem_tcp {
  uv_loop_t *loop;
  uv_tcp_t listener;
  struct sockaddr_storage target;
  hd_time_t delay[2];
  size_t max_conns, n_conns, conns_total;
  uint64_t bytes[2];
  conn_t *conns;
  int stopping, listener_closed;
};

typedef struct {
  uv_write_t req;
  chunk_t *ch;
} wreq_t;

static hd_time_t now_us(uv_loop_t *loop) {
  uv_update_time(loop);
  return (hd_time_t)uv_now(loop) * 1000;
}

static int parse_addr(const char *host, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0) return 0;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0) return 0;
  return HD_EINVAL;
}

static void on_handle_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  if (--c->open_handles > 0) return;
  for (int d = 0; d < 2; d++) {
    chunk_t *ch = c->dir[d].head;
    while (ch) {
      chunk_t *n = ch->next;
      free(ch);
      ch = n;
    }
  }
  hd_netem_tcp_t *r = c->r;
  for (conn_t **p = &r->conns; *p; p = &(*p)->next)
    if (*p == c) {
      *p = c->next;
      break;
    }
  r->n_conns--;
  free(c);
  if (r->stopping && r->listener_closed && !r->n_conns) free(r);
}

static void on_timer_closed(uv_handle_t *h) {
  dir_t *x = h->data;
  h->data = x->c; /* on_handle_closed wants the connection */
  on_handle_closed(h);
}

static void conn_close(conn_t *c) {
  if (c->closing) return;
  c->closing = 1;
  for (int i = 0; i < 2; i++) {
    uv_close((uv_handle_t *)&c->sock[i], on_handle_closed);
    uv_close((uv_handle_t *)&c->dir[i].timer, on_timer_closed);
  }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  chunk_t *ch = malloc(sizeof *ch + 65536);
  buf->base = ch ? ch->data : NULL;
  buf->len = ch ? 65536 : 0;
}

static void on_timer(uv_timer_t *t);

static void arm(dir_t *x) {
  if (!x->head || x->c->closing) return;
  hd_time_t now = now_us(x->c->r->loop);
  uint64_t ms = x->head->due > now ? (uint64_t)((x->head->due - now + 999) / 1000) : 0;
  uv_timer_start(&x->timer, on_timer, ms, 0);
}

static void on_written(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  conn_t *c = req->data;
  free(w->ch);
  free(w);
  if (status < 0 && status != UV_ECANCELED) conn_close(c);
}

/* A write half is shut once the writes queued before it are flushed; the
 * connection closes when both halves are (or at once on an error). */
static void on_shutdown(uv_shutdown_t *req, int status) {
  conn_t *c = req->data;
  free(req);
  if (status < 0 || ++c->shut_done == 2) conn_close(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_timer(uv_timer_t *t) {
  dir_t *x = t->data;
  conn_t *c = x->c;
  hd_time_t now = now_us(c->r->loop);
  uv_stream_t *out = (uv_stream_t *)&c->sock[1 - x->d];
  while (x->head && x->head->due <= now && !c->closing) {
    chunk_t *ch = x->head;
    x->head = ch->next;
    if (!x->head) x->tail = NULL;
    if (!ch->len) { /* EOF: shut the other side's write half */
      free(ch);
      uv_shutdown_t *sr = malloc(sizeof *sr);
      if (sr) sr->data = c;
      if (!sr || uv_shutdown(sr, out, on_shutdown) < 0) {
        free(sr);
        conn_close(c);
        return;
      }
      continue;
    }
    x->queued -= ch->len;
    wreq_t *w = malloc(sizeof *w);
    if (!w) {
      free(ch);
      conn_close(c);
      return;
    }
    w->ch = ch;
    w->req.data = c;
    uv_buf_t b = uv_buf_init(ch->data, (unsigned)ch->len);
    if (uv_write(&w->req, out, &b, 1, on_written) < 0) {
      free(ch);
      free(w);
      conn_close(c);
      return;
    }
    c->r->bytes[x->d] += b.len;
  }
  if (x->paused && x->queued < HD_NETEM_TCP_QUEUE_MAX / 2 && !c->closing) {
    x->paused = 0;
    uv_read_start((uv_stream_t *)&c->sock[x->d], on_alloc, on_read);
  }
  arm(x);
}

static void push(dir_t *x, chunk_t *ch) {
  ch->next = NULL;
  ch->due = now_us(x->c->r->loop) + x->c->r->delay[x->d];
  if (x->tail)
    x->tail->next = ch;
  else
    x->head = ch;
  x->tail = ch;
  x->queued += ch->len;
  if (!uv_is_active((uv_handle_t *)&x->timer)) arm(x);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = s->data;
  int d = s == (uv_stream_t *)&c->sock[0] ? 0 : 1;
  dir_t *x = &c->dir[d];
  chunk_t *ch = buf->base ? (chunk_t *)(buf->base - offsetof(chunk_t, data)) : NULL;
  if (nread > 0 && ch) {
    chunk_t *small = realloc(ch, sizeof *ch + (size_t)nread);
    ch = small ? small : ch;
    ch->len = (size_t)nread;
    push(x, ch);
    if (x->queued > HD_NETEM_TCP_QUEUE_MAX) {
      x->paused = 1;
      uv_read_stop(s);
    }
    return;
  }
  free(ch);
  if (nread == UV_EOF) {
    uv_read_stop(s);
    chunk_t *eof = calloc(1, sizeof *eof);
    if (!eof) {
      conn_close(c);
      return;
    }
    push(x, eof);
  } else if (nread < 0) {
    conn_close(c);
  }
}

static void on_connected(uv_connect_t *req, int status) {
  conn_t *c = req->data;
  free(req);
  if (c->closing) return;
  if (status < 0) {
    HD_LOGD("netem", "tcp: upstream connect failed: %s", uv_strerror(status));
    conn_close(c);
    return;
  }
  c->connected = 1;
  for (int i = 0; i < 2; i++)
    uv_read_start((uv_stream_t *)&c->sock[i], on_alloc, on_read);
}

static void on_accept(uv_stream_t *ls, int status) {
  hd_netem_tcp_t *r = ls->data;
  if (status < 0 || r->stopping) return;
  conn_t *c = calloc(1, sizeof *c);
  if (!c) return;
  c->r = r;
  for (int i = 0; i < 2; i++) {
    uv_tcp_init(r->loop, &c->sock[i]);
    c->sock[i].data = c;
    uv_timer_init(r->loop, &c->dir[i].timer);
    c->dir[i].timer.data = &c->dir[i];
    c->dir[i].c = c;
    c->dir[i].d = i;
  }
  c->open_handles = 4;
  c->next = r->conns;
  r->conns = c;
  r->n_conns++;
  r->conns_total++;
  uv_connect_t *cr = malloc(sizeof *cr);
  if (uv_accept(ls, (uv_stream_t *)&c->sock[0]) < 0 || r->n_conns > r->max_conns || !cr) {
    free(cr);
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->sock[0], 1);
  uv_tcp_nodelay(&c->sock[1], 1);
  cr->data = c;
  if (uv_tcp_connect(cr, &c->sock[1], (const struct sockaddr *)&r->target, on_connected) < 0) {
    free(cr);
    conn_close(c);
  }
}

static void on_listener_closed(uv_handle_t *h) {
  hd_netem_tcp_t *r = h->data;
  r->listener_closed = 1;
  if (!r->n_conns) free(r);
}

int hd_netem_tcp_start(hd_netem_tcp_t **out, uv_loop_t *loop, const hd_netem_tcp_config_t *cfg) {
  *out = NULL;
  struct sockaddr_storage ls;
  if (!cfg->listen_host || !cfg->to_host || cfg->to_port <= 0 ||
      parse_addr(cfg->listen_host, cfg->listen_port, &ls))
    return HD_EINVAL;
  hd_netem_tcp_t *r = calloc(1, sizeof *r);
  if (!r) return HD_ENOMEM;
  if (parse_addr(cfg->to_host, cfg->to_port, &r->target)) {
    free(r);
    return HD_EINVAL;
  }
  r->loop = loop;
  r->delay[0] = cfg->delay[0];
  r->delay[1] = cfg->delay[1];
  r->max_conns = cfg->max_conns ? cfg->max_conns : 256;
  uv_tcp_init(loop, &r->listener);
  r->listener.data = r;
  if (uv_tcp_bind(&r->listener, (const struct sockaddr *)&ls, 0) < 0 ||
      uv_listen((uv_stream_t *)&r->listener, 128, on_accept) < 0) {
    r->stopping = 1;
    uv_close((uv_handle_t *)&r->listener, on_listener_closed);
    return HD_EIO;
  }
  *out = r;
  return 0;
}

int hd_netem_tcp_port(const hd_netem_tcp_t *r) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getsockname(&r->listener, (struct sockaddr *)&ss, &len) < 0) return -1;
  return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                        : ((struct sockaddr_in *)&ss)->sin_port);
}

void hd_netem_tcp_stats(const hd_netem_tcp_t *r, size_t *conns, uint64_t bytes[2]) {
  *conns = r->conns_total;
  bytes[0] = r->bytes[0];
  bytes[1] = r->bytes[1];
}

void hd_netem_tcp_stop(hd_netem_tcp_t *r) {
  if (!r) return;
  r->stopping = 1;
  for (conn_t *c = r->conns; c; c = c->next)
    conn_close(c);
  uv_close((uv_handle_t *)&r->listener, on_listener_closed);
}
