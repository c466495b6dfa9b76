/* WebSocket server endpoints (RFC 6455) on the HTTP server's libwebsockets
 * context. lws does the framing, masking, ping answers, close handshake and
 * UTF-8 validation (§8.1); this file adds routing by path, accept/reject with an
 * HTTP status before the 101 (§4.2.2), message reassembly with a size cap
 * (§5.4), a bounded outbound queue of pre-built frames written in batches from
 * SERVER_WRITEABLE, idle timeout
 * with server pings (§5.5.2), and counters.
 *
 * Lifetime: the hd_ws_conn_t is created in HTTP_CONFIRM_UPGRADE (while the
 * request headers are still there) and hung on the wsi's opaque user data, which
 * survives lws re-binding the wsi from the HTTP protocol to ours. It is reported
 * (on_close) and freed on LWS_CALLBACK_CLOSED, or on LWS_CALLBACK_WSI_DESTROY if
 * the upgrade failed half-way or the context is being destroyed.
 * Everything runs on the loop thread. */
#include "io/ws.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "io/ws_priv.h"

#define CLOSE_GRACE_MS 5000    /* closing connection not gone by then: dropped */
#define SHUTDOWN_GRACE_MS 1500 /* hd_http_server_stop waits this long for close handshakes */

/* Outbound: complete WebSocket frames (RFC 6455 §5.2, server to client:
 * unmasked, FIN set, text opcode) are built in hd_ws_send into one contiguous
 * per-connection buffer. SERVER_WRITEABLE writes as many whole frames as fit
 * in WRITE_BATCH with one lws_write (LWS_WRITE_RAW: lws passes the bytes
 * through), i.e. one send() and one POLLOUT round for a burst of messages
 * instead of one per message. Only whole frames are written per call, so the
 * control frames lws sends itself (pong, close) never land inside ours. The
 * buffer is freed when drained, so an idle connection holds none. */
#define WRITE_BATCH (64 * 1024)
#define OBUF_MIN 1024
/* Drained OBUF_MIN buffers kept by the hub for the next connection that
 * queues a frame, instead of a malloc + free per delivery when each
 * connection gets about one message per loop turn (RTM fan-out, issue 17):
 * at most OBUF_POOL (1 MiB), whatever the number of connections. */
#define OBUF_POOL 1024

typedef struct {
  hd_ws_endpoint_config_t cfg;
  char path[64];
  hd_ws_stats_t st;
} endpoint_t;

enum { ST_OPENING = 0, ST_OPEN, ST_CLOSING, ST_CLOSED };

struct hd_ws_conn {
  hd_ws_hub_t *hub;
  endpoint_t *ep;
  struct lws *wsi;
  hd_ws_conn_t *prev, *next;
  uint64_t id;
  void *user;
  int state;
  /* our close, when we started one */
  int close_code, close_cr;
  char close_reason[HD_WS_MAX_REASON + 1];
  uint64_t closing_since;
  int close_ready; /* queue flushed: the closer may send the close frame */
  int close_sent;
  int killed;
  int peer_code; /* from the peer's close frame; 0 = none seen */
  /* inbound reassembly */
  char *in;
  size_t in_len, in_cap;
  /* outbound queue: framed bytes in ob[ob_off, ob_len) */
  unsigned char *ob;
  size_t ob_off, ob_len, ob_cap;
  size_t q_bytes, q_msgs; /* payload bytes / messages queued (the caps count these) */
  int wr_req;             /* a SERVER_WRITEABLE was requested and has not come yet */
  int dirty;              /* on the hub's flush list */
  int write_failed;       /* a direct write failed: close on the next SERVER_WRITEABLE */
  int tls;                /* lws_is_ssl, read once (flush_turn asks per message) */
  hd_ws_conn_t *dirty_next;
  /* liveness */
  uint64_t last_rx;
  int ping_sent, ping_due;
  /* inbound message rate (token bucket, hd_ws_endpoint_config_t.msg_rate) */
  double tokens;
  uint64_t tokens_at;
};

struct hd_ws_hub {
  uv_loop_t *loop;
  uv_timer_t *timer; /* sweep: idle timeouts, pings, close grace */
  uv_timer_t *kick;  /* zero-delay: runs the closer outside lws callbacks */
  uint64_t period;
  endpoint_t eps[HD_WS_MAX_ENDPOINTS];
  int n_eps;
  /* every connection: the closing ones first, then the others by last_rx,
   * oldest first (a receive moves a connection to the tail), so the sweep
   * stops at the first open connection that is not due and costs O(due), not
   * O(connections) per tick (100,000 idle connections, issue 17) */
  hd_ws_conn_t *conns, *conns_tail;
  uint64_t min_quiet; /* smallest positive ping interval / idle timeout of the endpoints (ms) */
  uint64_t next_id;
  int shutting_down;
  uv_check_t *flush;         /* after each loop turn's I/O: write what the turn queued */
  hd_ws_conn_t *dirty_head;  /* connections with frames queued this turn */
  void (*turn_fn)(void *ud); /* hd_ws_at_turn_end: runs first in flush_turn */
  void *turn_ud;
  unsigned char *pool[OBUF_POOL]; /* drained OBUF_MIN output buffers */
  int n_pool;
  /* a message that arrives whole in one RECEIVE (nearly all: acks, requests)
   * is handed to on_message from here, not from a per-connection buffer
   * allocated and freed per message; grows up to the largest max_message + 1 */
  char *rx;
  size_t rx_cap;
};

static const char *const cr_names[HD_WS_CR_COUNT] = {"peer", "app",  "too_big",  "binary",
                                                     "slow", "idle", "shutdown", "abnormal"};

const char *hd_ws_close_reason_name(int cr) {
  return cr >= 0 && cr < HD_WS_CR_COUNT ? cr_names[cr] : "unknown";
}

/* ------------------------------------------------------------ helpers */

static hd_ws_hub_t *hub_of(struct lws *wsi) {
  struct lws_context *ctx = lws_get_context(wsi);
  hd_http_server_t *s = ctx ? lws_context_user(ctx) : NULL;
  return s ? hd_http__hub(s) : NULL;
}

/* Gives an output buffer back: an OBUF_MIN one to the hub's pool. */
static void obuf_release(hd_ws_hub_t *h, unsigned char *b, size_t cap) {
  if (b && cap == OBUF_MIN && h->n_pool < OBUF_POOL)
    h->pool[h->n_pool++] = b;
  else
    free(b);
}

static void queue_free(hd_ws_conn_t *c) {
  obuf_release(c->hub, c->ob, c->ob_cap);
  c->ob = NULL;
  c->ob_off = c->ob_len = c->ob_cap = 0;
  c->ep->st.queued_bytes -= c->q_bytes;
  c->q_bytes = c->q_msgs = 0;
}

/* Asks lws for one SERVER_WRITEABLE unless one is already pending: asking
 * again per message would change the poll set (epoll_ctl) per message. */
static void want_write(hd_ws_conn_t *c) {
  if (c->wr_req || !c->wsi) return;
  c->wr_req = 1;
  lws_callback_on_writable(c->wsi);
}

static void conn_free(hd_ws_conn_t *c) {
  if (c->dirty)
    for (hd_ws_conn_t **pp = &c->hub->dirty_head; *pp; pp = &(*pp)->dirty_next)
      if (*pp == c) {
        *pp = c->dirty_next;
        break;
      }
  queue_free(c);
  free(c->in);
  free(c);
}

static void list_remove(hd_ws_conn_t *c) {
  hd_ws_hub_t *h = c->hub;
  if (c->prev)
    c->prev->next = c->next;
  else if (h->conns == c)
    h->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  else if (h->conns_tail == c)
    h->conns_tail = c->prev;
  c->prev = c->next = NULL;
}

static void list_push_tail(hd_ws_conn_t *c) {
  hd_ws_hub_t *h = c->hub;
  c->next = NULL;
  c->prev = h->conns_tail;
  if (h->conns_tail)
    h->conns_tail->next = c;
  else
    h->conns = c;
  h->conns_tail = c;
}

static void list_push_head(hd_ws_conn_t *c) {
  hd_ws_hub_t *h = c->hub;
  c->prev = NULL;
  c->next = h->conns;
  if (h->conns)
    h->conns->prev = c;
  else
    h->conns_tail = c;
  h->conns = c;
}

/* The peer was heard from: last_rx is now, the connection goes to the tail
 * (closing connections stay at the head, where the sweep and the closer
 * look for them). */
static void touch(hd_ws_conn_t *c) {
  c->last_rx = uv_now(c->hub->loop);
  if (c->state >= ST_CLOSING || c->hub->conns_tail == c) return;
  list_remove(c);
  list_push_tail(c);
}

/* Reports the close to the application exactly once, then frees c. */
static void report_close(hd_ws_conn_t *c, int fallback_code, int fallback_cr) {
  int code, cr;
  if (c->close_code) { /* we closed */
    code = c->close_code;
    cr = c->close_cr;
  } else if (c->peer_code) {
    code = c->peer_code;
    cr = HD_WS_CR_PEER;
  } else {
    code = fallback_code;
    cr = fallback_cr;
  }
  endpoint_t *ep = c->ep;
  c->state = ST_CLOSED;
  ep->st.open--;
  ep->st.closes[cr]++;
  list_remove(c);
  if (c->wsi) lws_set_opaque_user_data(c->wsi, NULL);
  c->wsi = NULL;
  HD_LOGD("ws", "conn %llu on %s closed: %d (%s)", (unsigned long long)c->id, ep->path, code,
          hd_ws_close_reason_name(cr));
  if (ep->cfg.on_close) ep->cfg.on_close(ep->cfg.ud, c, code);
  conn_free(c);
}

static int valid_close_code(int code) {
  if (code < 1000 || code > 4999) return 0;
  if (code == 1004 || code == 1005 || code == 1006 || code == 1015) return 0;
  if (code >= 1016 && code < 3000) return 0; /* reserved for future RFCs */
  return 1;
}

/* Starts our close. drop: free the queue now instead of flushing it first. */
static void start_close(hd_ws_conn_t *c, int code, const char *reason, int cr, int drop) {
  if (c->state >= ST_CLOSING) return;
  int was_open = c->state == ST_OPEN;
  c->state = ST_CLOSING;
  c->close_code = valid_close_code(code) ? code : HD_WS_CLOSE_NORMAL;
  c->close_cr = cr;
  snprintf(c->close_reason, sizeof c->close_reason, "%s", reason ? reason : "");
  c->closing_since = uv_now(c->hub->loop);
  if (c->prev || c->next || c->hub->conns == c) { /* on the list: closing ones lead it */
    list_remove(c);
    list_push_head(c);
  }
  if (drop) queue_free(c);
  if (was_open && c->wsi) want_write(c);
  /* a connection still in its handshake asks for writable once ESTABLISHED */
}

/* Inside a RECEIVE callback: stop delivering input and close with code. The
 * rest of the offending message is read and discarded rather than left unread,
 * because closing a socket with unread input sends a TCP reset that can destroy
 * our close frame before the peer reads it. */
static int fail_input(hd_ws_conn_t *c, int code, int cr, const char *reason) {
  start_close(c, code, reason, cr, 1);
  free(c->in);
  c->in = NULL;
  c->in_len = c->in_cap = 0;
  return 0;
}

static void copy_hdr(struct lws *wsi, enum lws_token_indexes t, char *dst, size_t cap) {
  dst[0] = 0;
  int n = lws_hdr_total_length(wsi, t);
  if (n > 0 && (size_t)n < cap) lws_hdr_copy(wsi, dst, (int)cap, t);
}

static endpoint_t *find_ep(hd_ws_hub_t *h, const char *path) {
  for (int i = 0; i < h->n_eps; i++)
    if (!strcmp(h->eps[i].path, path)) return &h->eps[i];
  return NULL;
}

/* ------------------------------------------------------------ sweep timer */

static void sweep(uv_timer_t *t) {
  hd_ws_hub_t *h = t->data;
  uint64_t now = uv_now(h->loop);
  for (hd_ws_conn_t *c = h->conns, *next; c; c = next) {
    next = c->next;                                                    /* start_close moves c to the head */
    if (c->state == ST_OPEN && now - c->last_rx < h->min_quiet) break; /* nobody further is due */
    if (!c->wsi) continue;
    if (c->state == ST_CLOSING) {
      if (!c->killed && now - c->closing_since >= CLOSE_GRACE_MS) {
        /* the peer neither drained its queue nor answered our close frame */
        c->killed = 1;
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
      }
      continue;
    }
    if (c->state != ST_OPEN) continue;
    const hd_ws_endpoint_config_t *cfg = &c->ep->cfg;
    uint64_t quiet = now - c->last_rx;
    if (cfg->idle_timeout_ms > 0 && quiet >= (uint64_t)cfg->idle_timeout_ms) {
      start_close(c, HD_WS_CLOSE_GOING_AWAY, "idle timeout", HD_WS_CR_IDLE, 0);
    } else if (cfg->ping_interval_ms > 0 && quiet >= (uint64_t)cfg->ping_interval_ms && !c->ping_sent) {
      c->ping_sent = c->ping_due = 1;
      want_write(c);
    }
  }
}

static void timer_closed(uv_handle_t *hd) { free(hd); }

static void arm_timer(hd_ws_hub_t *h, uint64_t ms) {
  if (ms < 20) ms = 20;
  if (ms > 1000) ms = 1000;
  if (h->period && h->period <= ms) return;
  h->period = ms;
  uv_timer_start(h->timer, sweep, ms, ms);
}

/* ------------------------------------------------------------ hub */

int hd_ws__hub_new(hd_ws_hub_t **out, uv_loop_t *loop) {
  hd_ws_hub_t *h = calloc(1, sizeof *h);
  if (!h) return HD_ENOMEM;
  h->timer = calloc(1, sizeof *h->timer);
  h->kick = calloc(1, sizeof *h->kick);
  h->flush = calloc(1, sizeof *h->flush);
  if (!h->timer || !h->kick || !h->flush) {
    free(h->timer);
    free(h->kick);
    free(h->flush);
    free(h);
    return HD_ENOMEM;
  }
  h->loop = loop;
  h->next_id = 1;
  uv_timer_init(loop, h->timer);
  uv_timer_init(loop, h->kick);
  uv_check_init(loop, h->flush);
  uv_unref((uv_handle_t *)h->timer); /* never keeps the loop alive by itself */
  uv_unref((uv_handle_t *)h->kick);
  uv_unref((uv_handle_t *)h->flush);
  h->timer->data = h->kick->data = h;
  h->flush->data = h;
  *out = h;
  return 0;
}

void hd_ws__hub_shutdown(hd_ws_hub_t *h) {
  if (!h || h->shutting_down) return;
  h->shutting_down = 1;
  for (hd_ws_conn_t *c = h->conns, *next; c; c = next) {
    next = c->next; /* start_close moves c to the head */
    start_close(c, HD_WS_CLOSE_GOING_AWAY, "server shutdown", HD_WS_CR_SHUTDOWN, 0);
  }
  if (h->conns) {
    /* The loop was stopped by our owner; turn it, waking at least every 5 ms
     * (the timer), until every close handshake is done or the grace is over. */
    uv_update_time(h->loop);
    uint64_t t0 = uv_now(h->loop);
    h->period = 5;
    uv_timer_start(h->timer, sweep, 5, 5);
    while (h->conns && uv_now(h->loop) - t0 < SHUTDOWN_GRACE_MS)
      uv_run(h->loop, UV_RUN_ONCE);
  }
  uv_timer_stop(h->timer);
  uv_close((uv_handle_t *)h->timer, timer_closed);
  h->timer = NULL;
  uv_timer_stop(h->kick);
  uv_close((uv_handle_t *)h->kick, timer_closed);
  h->kick = NULL;
  if (h->turn_fn) { /* not run yet: now, its output with the rest */
    void (*fn)(void *) = h->turn_fn;
    h->turn_fn = NULL;
    fn(h->turn_ud);
  }
  /* frames still queued go by SERVER_WRITEABLE from here on (mark_dirty) */
  hd_ws_conn_t *d;
  while ((d = h->dirty_head) != NULL) {
    h->dirty_head = d->dirty_next;
    d->dirty = 0;
    d->dirty_next = NULL;
    want_write(d);
  }
  uv_check_stop(h->flush);
  uv_close((uv_handle_t *)h->flush, timer_closed);
  h->flush = NULL;
}

void hd_ws__hub_free(hd_ws_hub_t *h) {
  if (!h) return;
  /* lws_context_destroy reported every connection via WSI_DESTROY; anything
   * still here was never bound to a wsi that lws knew about. */
  while (h->conns) {
    hd_ws_conn_t *c = h->conns;
    c->wsi = NULL;
    report_close(c, HD_WS_CLOSE_GOING_AWAY, HD_WS_CR_SHUTDOWN);
  }
  if (h->timer) { /* hd_ws__hub_shutdown was not called */
    uv_close((uv_handle_t *)h->timer, timer_closed);
    uv_close((uv_handle_t *)h->kick, timer_closed);
    uv_close((uv_handle_t *)h->flush, timer_closed);
  }
  while (h->n_pool)
    free(h->pool[--h->n_pool]);
  free(h->rx);
  free(h);
}

int hd_ws_endpoint_add(hd_http_server_t *s, const hd_ws_endpoint_config_t *cfg) {
  hd_ws_hub_t *h = s ? hd_http__hub(s) : NULL;
  if (!h || !cfg || !cfg->path || cfg->path[0] != '/' || strlen(cfg->path) >= sizeof h->eps[0].path ||
      strchr(cfg->path, '?'))
    return HD_EINVAL;
  if (h->shutting_down) return HD_ESTATE;
  if (find_ep(h, cfg->path)) return HD_ESTATE;
  if (h->n_eps >= HD_WS_MAX_ENDPOINTS) return HD_ENOSPC;
  endpoint_t *ep = &h->eps[h->n_eps];
  memset(ep, 0, sizeof *ep);
  ep->cfg = *cfg;
  snprintf(ep->path, sizeof ep->path, "%s", cfg->path);
  ep->cfg.path = ep->path;
  if (!ep->cfg.max_message) ep->cfg.max_message = HD_WS_DEFAULT_MAX_MESSAGE;
  if (ep->cfg.msg_rate > 0 && ep->cfg.msg_burst < 1) ep->cfg.msg_burst = ep->cfg.msg_rate;
  if (!ep->cfg.out_max_bytes) ep->cfg.out_max_bytes = HD_WS_DEFAULT_OUT_MAX_BYTES;
  if (!ep->cfg.out_max_msgs) ep->cfg.out_max_msgs = HD_WS_DEFAULT_OUT_MAX_MSGS;
  if (!ep->cfg.idle_timeout_ms) ep->cfg.idle_timeout_ms = HD_WS_DEFAULT_IDLE_TIMEOUT_MS;
  if (!ep->cfg.ping_interval_ms) ep->cfg.ping_interval_ms = HD_WS_DEFAULT_PING_INTERVAL_MS;
  if (ep->cfg.max_message > (size_t)1 << 30 || ep->cfg.out_max_bytes > (size_t)1 << 30) return HD_EINVAL;
  h->n_eps++;
  if (!h->min_quiet) h->min_quiet = UINT64_MAX;
  if (ep->cfg.idle_timeout_ms > 0 && (uint64_t)ep->cfg.idle_timeout_ms < h->min_quiet)
    h->min_quiet = (uint64_t)ep->cfg.idle_timeout_ms;
  if (ep->cfg.ping_interval_ms > 0 && (uint64_t)ep->cfg.ping_interval_ms < h->min_quiet)
    h->min_quiet = (uint64_t)ep->cfg.ping_interval_ms;
  /* sweep often enough that idle timeouts and pings are late by at most ~25% */
  uint64_t p = 1000;
  if (ep->cfg.idle_timeout_ms > 0 && (uint64_t)ep->cfg.idle_timeout_ms / 4 < p)
    p = (uint64_t)ep->cfg.idle_timeout_ms / 4;
  if (ep->cfg.ping_interval_ms > 0 && (uint64_t)ep->cfg.ping_interval_ms / 4 < p)
    p = (uint64_t)ep->cfg.ping_interval_ms / 4;
  arm_timer(h, p);
  return 0;
}

/* ------------------------------------------------------------ upgrade */

int hd_ws__confirm_upgrade(hd_ws_hub_t *h, struct lws *wsi, const char *upgrade) {
  if (!h) return -1;
  char path[256], query[1024], origin[256], authorization[4200], host[256], ua[256], proto[256], peer[64];
  if (upgrade && strcasecmp(upgrade, "websocket")) {
    /* lws would answer "Upgrade: h2c" with 101 and switch to cleartext HTTP/2,
     * which the node does not serve (h2c is deprecated, RFC 9113 §3.1). */
    hd_http_resp_t r;
    memset(&r, 0, sizeof r);
    hd_http_resp_text(&r, 400,
                      "Upgrade: %.40s is not supported here; send HTTP/1.1 requests, or Upgrade: websocket\n",
                      upgrade);
    hd_http_resp_header(&r, "Connection", "close");
    hd_http__send_response(wsi, &r, 1);
    free(r.body);
    return -1;
  }
  char version[16];
  copy_hdr(wsi, WSI_TOKEN_VERSION, version, sizeof version);
  if (strcmp(version, "13")) {
    /* RFC 6455 §4.4: a version we do not speak gets 426 naming the ones we do. */
    hd_http_resp_t r;
    memset(&r, 0, sizeof r);
    hd_http_resp_text(&r, 426, "Sec-WebSocket-Version %s is not supported; use 13 (RFC 6455)\n",
                      version[0] ? version : "(missing)");
    hd_http_resp_header(&r, "Sec-WebSocket-Version", "13");
    hd_http_resp_header(&r, "Connection", "close");
    hd_http__send_response(wsi, &r, 1);
    free(r.body);
    return -1;
  }
  copy_hdr(wsi, WSI_TOKEN_GET_URI, path, sizeof path);
  char *q = strchr(path, '?');
  if (q) *q = 0;
  /* lws splits the query into URI_ARGS fragments; rebuild the raw query */
  query[0] = 0;
  size_t qo = 0;
  char arg[1024];
  for (int frag = 0; lws_hdr_copy_fragment(wsi, arg, sizeof arg, WSI_TOKEN_HTTP_URI_ARGS, frag) > 0; frag++) {
    int n = snprintf(query + qo, sizeof query - qo, "%s%s", frag ? "&" : "", arg);
    if (n < 0 || (size_t)n >= sizeof query - qo) {
      query[qo] = 0;
      break;
    }
    qo += (size_t)n;
  }
  copy_hdr(wsi, WSI_TOKEN_ORIGIN, origin, sizeof origin);
  copy_hdr(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, authorization, sizeof authorization);
  if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION) >= (int)sizeof authorization)
    snprintf(authorization, sizeof authorization, "oversized");
  copy_hdr(wsi, WSI_TOKEN_HOST, host, sizeof host);
  copy_hdr(wsi, WSI_TOKEN_HTTP_USER_AGENT, ua, sizeof ua);
  copy_hdr(wsi, WSI_TOKEN_PROTOCOL, proto, sizeof proto);
  peer[0] = 0;
  lws_get_peer_simple(wsi, peer, sizeof peer);

  hd_http_resp_t resp;
  memset(&resp, 0, sizeof resp);
  endpoint_t *ep = find_ep(h, path);
  hd_ws_conn_t *c = NULL;
  if (!ep) {
    hd_http_resp_text(&resp, 404, "no WebSocket endpoint at %s\n", path);
  } else if (proto[0]) {
    /* lws would bind a protocol by that name or drop the connection without a
     * reply; a clear refusal is better. */
    hd_http_resp_text(&resp, 400, "subprotocols (Sec-WebSocket-Protocol) are not supported on %s\n", path);
  } else if (h->shutting_down) {
    hd_http_resp_text(&resp, 503, "server shutting down\n");
  } else {
    c = calloc(1, sizeof *c);
    if (!c) {
      hd_http_resp_text(&resp, 503, "out of memory\n");
    } else {
      c->hub = h;
      c->ep = ep;
      c->id = h->next_id++;
      c->state = ST_OPENING;
      hd_ws_req_t req = {.path = path,
                         .query = query,
                         .origin = origin,
                         .authorization = authorization,
                         .host = host,
                         .user_agent = ua,
                         .protocol = proto,
                         .peer = peer};
      if (ep->cfg.on_open) ep->cfg.on_open(ep->cfg.ud, c, &req, &resp);
      if (resp.status && resp.status < 400) { /* only refusals are meaningful here */
        HD_LOGW("ws", "on_open for %s set status %d; treating as 500", path, resp.status);
        hd_http_resp_text(&resp, 500, "bad status from the endpoint\n");
      }
      if (resp.status) {
        ep->st.rejected++;
        conn_free(c);
        c = NULL;
      }
    }
  }
  if (!c) {
    /* Answer and hang up. The client waits for our 101 before sending frames,
     * so nothing unread is left to turn the close into a reset. */
    hd_http_resp_header(&resp, "Connection", "close");
    hd_http__send_response(wsi, &resp, 1);
    free(resp.body);
    return -1;
  }
  free(resp.body);
  c->wsi = wsi;
  c->tls = lws_is_ssl(wsi);
  c->last_rx = uv_now(h->loop);
  list_push_tail(c);
  c->tokens = ep->cfg.msg_burst;
  c->tokens_at = c->last_rx;
  ep->st.accepted++;
  ep->st.open++;
  lws_set_opaque_user_data(wsi, c);
  return 0;
}

/* ------------------------------------------------------------ lws callback */

/* Sends the close frames of connections whose queues are flushed: from a timer
 * callback (never inside an lws callback of the wsi), lws_close_reason plus a
 * synchronous lws close makes lws send the frame and wait for the peer's
 * (RFC 6455 §7.1.2); LWS_CALLBACK_CLOSED follows when it arrives. */
static void run_closer(uv_timer_t *t) {
  hd_ws_hub_t *h = t->data;
  hd_ws_conn_t *c = h->conns;
  while (c && c->state >= ST_CLOSING) { /* the closing connections lead the list */
    hd_ws_conn_t *next = c->next;       /* c may be freed by the close below */
    if (c->close_ready && !c->close_sent && c->wsi) {
      c->close_sent = 1;
      lws_close_reason(c->wsi, (enum lws_close_status)c->close_code, (unsigned char *)c->close_reason,
                       strlen(c->close_reason));
      lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_SYNC);
    }
    c = next;
  }
}

static void deliver(hd_ws_conn_t *c, const char *text, size_t n);

static int on_receive(hd_ws_conn_t *c, struct lws *wsi, const char *in, size_t len) {
  endpoint_t *ep = c->ep;
  if (c->state != ST_OPEN) return 0; /* closing: input is discarded */
  if (lws_frame_is_binary(wsi))
    return fail_input(c, HD_WS_CLOSE_UNSUPPORTED, HD_WS_CR_BINARY, "binary messages are not supported");
  if (lws_is_first_fragment(wsi)) c->in_len = 0;
  size_t rest = lws_remaining_packet_payload(wsi);
  if (c->in_len + len + rest > ep->cfg.max_message || c->in_len + len + rest < c->in_len) {
    char why[64];
    snprintf(why, sizeof why, "message exceeds %zu bytes", ep->cfg.max_message);
    return fail_input(c, HD_WS_CLOSE_TOO_BIG, HD_WS_CR_TOO_BIG, why);
  }
  hd_ws_hub_t *h = c->hub;
  if (!c->in_len && !rest && lws_is_first_fragment(wsi) && lws_is_final_fragment(wsi)) {
    /* whole in this callback: through the hub's buffer (never re-entered:
     * on_message cannot make lws call us for another connection) */
    if (len + 1 > h->rx_cap) {
      char *n = realloc(h->rx, len + 1 > 1024 ? len + 1 : 1024);
      if (!n) return fail_input(c, HD_WS_CLOSE_INTERNAL, HD_WS_CR_ABNORMAL, "out of memory");
      h->rx = n;
      h->rx_cap = len + 1 > 1024 ? len + 1 : 1024;
    }
    if (len) memcpy(h->rx, in, len);
    h->rx[len] = 0;
    deliver(c, h->rx, len);
    return 0;
  }
  if (c->in_len + len + 1 > c->in_cap) {
    size_t cap = c->in_cap ? c->in_cap : 1024;
    while (cap < c->in_len + len + rest + 1)
      cap *= 2;
    if (cap > ep->cfg.max_message + 1) cap = ep->cfg.max_message + 1;
    char *n = realloc(c->in, cap);
    if (!n) return fail_input(c, HD_WS_CLOSE_INTERNAL, HD_WS_CR_ABNORMAL, "out of memory");
    c->in = n;
    c->in_cap = cap;
  }
  if (len) memcpy(c->in + c->in_len, in, len);
  c->in_len += len;
  if (!lws_is_final_fragment(wsi)) return 0;
  c->in[c->in_len] = 0;
  size_t n = c->in_len;
  c->in_len = 0;
  deliver(c, c->in, n);
  /* An idle connection keeps no receive buffer (memory per idle connection). */
  free(c->in);
  c->in = NULL;
  c->in_cap = 0;
  return 0;
}

/* One complete message (text[n] == 0): counted, rate-limited, handed to the
 * endpoint. c is still valid afterwards: on_close only runs from lws
 * callbacks, never re-entrantly. */
static void deliver(hd_ws_conn_t *c, const char *text, size_t n) {
  endpoint_t *ep = c->ep;
  ep->st.msgs_in++;
  ep->st.bytes_in += n;
  int pass = 1;
  if (ep->cfg.msg_rate > 0) {
    /* Every message counts, valid or not, before the endpoint parses it: a
     * flood of invalid /rtc messages used to get 100,000 error replies. */
    uint64_t now = uv_now(c->hub->loop);
    c->tokens += (double)(now - c->tokens_at) * ep->cfg.msg_rate / 1000.0;
    if (c->tokens > ep->cfg.msg_burst) c->tokens = ep->cfg.msg_burst;
    c->tokens_at = now;
    if (c->tokens < 1.0) {
      pass = 0;
      ep->st.rate_dropped++;
    } else {
      c->tokens -= 1.0;
    }
  }
  if (pass && ep->cfg.on_message) ep->cfg.on_message(ep->cfg.ud, c, text, n);
}

/* Size of the frame starting at p (we built it: well-formed, FIN, unmasked);
 * *payload gets its payload length. */
static size_t frame_size(const unsigned char *p, size_t *payload) {
  size_t n = p[1] & 0x7f, h = 2;
  if (n == 126) {
    n = (size_t)p[2] << 8 | p[3];
    h = 4;
  } else if (n == 127) {
    n = 0;
    for (int i = 2; i < 10; i++)
      n = n << 8 | p[i];
    h = 10;
  }
  *payload = n;
  return h + n;
}

/* Writes whole queued frames, up to WRITE_BATCH bytes, with one lws_write
 * (LWS_WRITE_RAW goes to the socket as is; a partial send is kept by lws and
 * finished before anything else is written on the connection). Asks for a
 * SERVER_WRITEABLE when more remains. -1 on a write error. */
static int write_frames(hd_ws_conn_t *c, struct lws *wsi) {
  endpoint_t *ep = c->ep;
  size_t chunk = 0, msgs = 0, bytes = 0;
  while (c->ob_off + chunk < c->ob_len) {
    size_t pl, fs = frame_size(c->ob + c->ob_off + chunk, &pl);
    if (chunk && chunk + fs > WRITE_BATCH) break;
    chunk += fs;
    msgs++;
    bytes += pl;
  }
  int n = lws_write(wsi, c->ob + c->ob_off, chunk, LWS_WRITE_RAW);
  c->ob_off += chunk;
  if (c->ob_off == c->ob_len) { /* drained: an idle connection keeps no buffer */
    obuf_release(c->hub, c->ob, c->ob_cap);
    c->ob = NULL;
    c->ob_off = c->ob_len = c->ob_cap = 0;
  }
  c->q_bytes -= bytes;
  c->q_msgs -= msgs;
  ep->st.queued_bytes -= bytes;
  if (n < 0) return -1;
  ep->st.msgs_out += msgs;
  ep->st.bytes_out += bytes;
  if (c->ob_len > c->ob_off || c->state == ST_CLOSING) want_write(c);
  return 0;
}

/* End of a loop turn (uv_check, after the I/O callbacks): every connection
 * that got frames during the turn writes them now, directly, when lws has
 * nothing of its own half-sent on it. A fan-out to 10 subscribers is then 10
 * send() calls, not 10 POLLOUT arm/wake/disarm rounds (epoll_ctl twice per
 * message); several messages queued in one turn go out in one send(). Writing
 * outside SERVER_WRITEABLE is safe here because only whole frames are written
 * and lws_partial_buffered() is checked first; TLS connections and anything
 * unusual (a ping due, a callback already requested, closing) take the
 * SERVER_WRITEABLE path. */
static void flush_turn(uv_check_t *chk) {
  hd_ws_hub_t *h = chk->data;
  hd_ws_conn_t *c;
  if (h->turn_fn) { /* its output joins this turn's */
    void (*fn)(void *) = h->turn_fn;
    h->turn_fn = NULL;
    fn(h->turn_ud);
  }
  while ((c = h->dirty_head) != NULL) {
    h->dirty_head = c->dirty_next;
    c->dirty = 0;
    c->dirty_next = NULL;
    if (c->ob_len <= c->ob_off || !c->wsi) continue;
    if (c->state != ST_OPEN || c->wr_req || c->ping_due || c->tls || lws_partial_buffered(c->wsi)) {
      want_write(c);
      continue;
    }
    if (write_frames(c, c->wsi) < 0) {
      c->write_failed = 1;
      want_write(c);
    }
  }
  uv_check_stop(chk);
}

void hd_ws_at_turn_end(hd_ws_conn_t *c, void (*fn)(void *ud), void *ud) {
  hd_ws_hub_t *h = c->hub;
  if (!h->flush) { /* shutting down */
    fn(ud);
    return;
  }
  h->turn_fn = fn;
  h->turn_ud = ud;
  uv_check_start(h->flush, flush_turn);
}

static void mark_dirty(hd_ws_conn_t *c) {
  hd_ws_hub_t *h = c->hub;
  if (!h->flush) { /* shutting down: the plain path */
    want_write(c);
    return;
  }
  if (c->dirty) return;
  c->dirty = 1;
  c->dirty_next = h->dirty_head;
  h->dirty_head = c;
  uv_check_start(h->flush, flush_turn);
}

static int on_writeable(hd_ws_conn_t *c, struct lws *wsi) {
  c->wr_req = 0;
  if (c->ping_due) {
    /* non-empty payload: lws 4.1 does not report zero-length pongs */
    unsigned char buf[LWS_PRE + 2] = {0};
    buf[LWS_PRE] = 'h';
    buf[LWS_PRE + 1] = 'd';
    c->ping_due = 0;
    if (lws_write(wsi, buf + LWS_PRE, 2, LWS_WRITE_PING) < 0) return -1;
    if (c->ob_len > c->ob_off || c->state == ST_CLOSING) want_write(c);
    return 0;
  }
  if (c->write_failed) return -1; /* a direct write (flush_turn) failed: lws closes */
  if (c->ob_len > c->ob_off) return write_frames(c, wsi);
  if (c->state == ST_CLOSING && !c->close_ready) {
    /* Returning -1 here after lws_close_reason would be the usual way, but
     * lws 4.1 on libuv then kills the socket without sending the close frame
     * ("close_and_handled uv repeat"). The closer does it from outside. */
    c->close_ready = 1;
    uv_timer_start(c->hub->kick, run_closer, 0, 0);
  }
  return 0;
}

int hd_ws__lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
  hd_ws_conn_t *c = wsi ? lws_get_opaque_user_data(wsi) : NULL;
  switch (reason) {
  case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
    /* New connections start bound to the vhost's default protocol (ours), so
     * a first request that is an upgrade is confirmed here; after an HTTP
     * request on a kept-alive connection it comes to http.c's callback. */
    return hd_ws__confirm_upgrade(hub_of(wsi), wsi, in);
  case LWS_CALLBACK_ESTABLISHED:
    if (!c) return -1; /* an upgrade that did not pass hd_ws__confirm_upgrade */
    touch(c);
    if (c->state == ST_OPENING) c->state = ST_OPEN;
    if (c->ob_len > c->ob_off || c->state == ST_CLOSING) want_write(c);
    if (c->state == ST_CLOSING) c->closing_since = uv_now(c->hub->loop);
    return 0;
  case LWS_CALLBACK_RECEIVE:
    if (!c) return -1;
    touch(c);
    c->ping_sent = 0;
    return on_receive(c, wsi, in, len);
  case LWS_CALLBACK_RECEIVE_PONG:
    if (c) {
      touch(c);
      c->ping_sent = 0;
    }
    return 0;
  case LWS_CALLBACK_SERVER_WRITEABLE:
    if (!c) return -1;
    return on_writeable(c, wsi);
  case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
    if (c) {
      const unsigned char *p = in;
      c->peer_code = len >= 2 ? (p[0] << 8 | p[1]) : 1005;
    }
    return 0; /* lws answers the close frame */
  case LWS_CALLBACK_CLOSED:
    if (c) report_close(c, HD_WS_CLOSE_ABNORMAL, HD_WS_CR_ABNORMAL);
    return 0;
  case LWS_CALLBACK_WSI_DESTROY:
    hd_http__wsi_gone(wsi); /* the connection no longer counts against the caps */
    if (c) {
      hd_ws_hub_t *h = c->hub;
      report_close(c, HD_WS_CLOSE_GOING_AWAY, h->shutting_down ? HD_WS_CR_SHUTDOWN : HD_WS_CR_ABNORMAL);
    }
    return 0;
  default: break;
  }
  (void)user;
  return 0;
}

/* ------------------------------------------------------------ public API */

int hd_ws_send(hd_ws_conn_t *c, const char *text, size_t len) {
  if (!c || c->state >= ST_CLOSING) return HD_ECLOSED;
  endpoint_t *ep = c->ep;
  if (len > ep->cfg.out_max_bytes) return HD_EINVAL;
  if (c->q_bytes + len > ep->cfg.out_max_bytes || c->q_msgs + 1 > ep->cfg.out_max_msgs) {
    HD_LOGI("ws", "conn %llu on %s: outbound queue full (%zu bytes, %zu msgs): closing",
            (unsigned long long)c->id, ep->path, c->q_bytes, c->q_msgs);
    start_close(c, HD_WS_CLOSE_POLICY, "slow consumer: outbound queue full", HD_WS_CR_SLOW, 1);
    return HD_ENOSPC;
  }
  size_t hl = len < 126 ? 2 : len < 65536 ? 4 : 10;
  if (c->ob_len + hl + len > c->ob_cap) {
    if (c->ob_off) { /* written frames at the front: reuse their room first */
      memmove(c->ob, c->ob + c->ob_off, c->ob_len - c->ob_off);
      c->ob_len -= c->ob_off;
      c->ob_off = 0;
    }
    if (c->ob_len + hl + len > c->ob_cap) {
      size_t cap = c->ob_cap ? c->ob_cap : OBUF_MIN;
      while (cap < c->ob_len + hl + len)
        cap *= 2;
      unsigned char *nb;
      if (!c->ob && cap == OBUF_MIN && c->hub->n_pool)
        nb = c->hub->pool[--c->hub->n_pool];
      else if (!(nb = realloc(c->ob, cap)))
        return HD_ENOMEM;
      c->ob = nb;
      c->ob_cap = cap;
    }
  }
  unsigned char *p = c->ob + c->ob_len;
  p[0] = 0x81; /* FIN + text (§5.2); server frames are not masked (§5.1) */
  if (hl == 2) {
    p[1] = (unsigned char)len;
  } else if (hl == 4) {
    p[1] = 126;
    p[2] = (unsigned char)(len >> 8);
    p[3] = (unsigned char)len;
  } else {
    p[1] = 127;
    for (int i = 0; i < 8; i++)
      p[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
  }
  if (len) memcpy(p + hl, text, len);
  c->ob_len += hl + len;
  c->q_bytes += len;
  c->q_msgs++;
  ep->st.queued_bytes += len;
  if (c->q_bytes > ep->st.queued_peak) ep->st.queued_peak = c->q_bytes;
  if (c->state == ST_OPEN) mark_dirty(c);
  return 0;
}

int hd_ws_close(hd_ws_conn_t *c, int code, const char *reason) {
  if (!c || c->state >= ST_CLOSING) return HD_ECLOSED;
  start_close(c, code, reason, HD_WS_CR_APP, 0);
  return 0;
}

void hd_ws_set_user(hd_ws_conn_t *c, void *user) {
  if (c) c->user = user;
}
void *hd_ws_user(const hd_ws_conn_t *c) { return c ? c->user : NULL; }
uint64_t hd_ws_id(const hd_ws_conn_t *c) { return c ? c->id : 0; }
const char *hd_ws_path(const hd_ws_conn_t *c) { return c ? c->ep->path : ""; }
size_t hd_ws_queued_bytes(const hd_ws_conn_t *c) { return c ? c->q_bytes : 0; }

static void stats_add(hd_ws_stats_t *a, const hd_ws_stats_t *b) {
  a->open += b->open;
  a->accepted += b->accepted;
  a->rejected += b->rejected;
  a->msgs_in += b->msgs_in;
  a->rate_dropped += b->rate_dropped;
  a->msgs_out += b->msgs_out;
  a->bytes_in += b->bytes_in;
  a->bytes_out += b->bytes_out;
  a->queued_bytes += b->queued_bytes;
  if (b->queued_peak > a->queued_peak) a->queued_peak = b->queued_peak;
  for (int i = 0; i < HD_WS_CR_COUNT; i++)
    a->closes[i] += b->closes[i];
}

int hd_ws_stats(hd_http_server_t *s, const char *path, hd_ws_stats_t *out) {
  hd_ws_hub_t *h = s ? hd_http__hub(s) : NULL;
  if (!h || !out) return HD_EINVAL;
  hd_ws_stats_t sum;
  memset(&sum, 0, sizeof sum);
  if (path) {
    endpoint_t *ep = find_ep(h, path);
    if (!ep) return HD_ENOTFOUND;
    sum = ep->st;
  } else {
    for (int i = 0; i < h->n_eps; i++)
      stats_add(&sum, &h->eps[i].st);
  }
  *out = sum;
  return 0;
}

typedef struct {
  char *buf;
  size_t cap, n;
  int overflow;
} sbuf_t;

static void sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf_t *b, const char *fmt, ...) {
  if (b->overflow) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b->buf + b->n, b->cap - b->n, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= b->cap - b->n) {
    b->overflow = 1;
    return;
  }
  b->n += (size_t)n;
}

int hd_ws_metrics_text(hd_http_server_t *s, char *buf, size_t cap) {
  hd_ws_hub_t *h = s ? hd_http__hub(s) : NULL;
  if (!h || !buf || !cap) return HD_EINVAL;
  buf[0] = 0;
  if (!h->n_eps) return 0;
  sbuf_t b = {buf, cap, 0, 0};
  static const struct {
    const char *name, *type, *help;
    size_t off;
  } m[] = {
      {"hudong_ws_connections", "gauge", "WebSocket connections open now.", offsetof(hd_ws_stats_t, open)},
      {"hudong_ws_accepted_total", "counter", "WebSocket upgrades accepted.",
       offsetof(hd_ws_stats_t, accepted)},
      {"hudong_ws_rejected_total", "counter", "WebSocket upgrades refused by the endpoint.",
       offsetof(hd_ws_stats_t, rejected)},
      {"hudong_ws_messages_in_total", "counter", "Complete text messages received.",
       offsetof(hd_ws_stats_t, msgs_in)},
      {"hudong_ws_messages_out_total", "counter", "Text messages sent.", offsetof(hd_ws_stats_t, msgs_out)},
      {"hudong_ws_rate_dropped_total", "counter", "Messages dropped over the per-connection message rate.",
       offsetof(hd_ws_stats_t, rate_dropped)},
      {"hudong_ws_bytes_in_total", "counter", "Payload bytes received.", offsetof(hd_ws_stats_t, bytes_in)},
      {"hudong_ws_bytes_out_total", "counter", "Payload bytes sent.", offsetof(hd_ws_stats_t, bytes_out)},
      {"hudong_ws_queued_bytes", "gauge", "Outbound bytes queued now.",
       offsetof(hd_ws_stats_t, queued_bytes)},
  };
  for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
    sb_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", m[i].name, m[i].help, m[i].name, m[i].type);
    for (int e = 0; e < h->n_eps; e++) {
      uint64_t v;
      memcpy(&v, (const char *)&h->eps[e].st + m[i].off, sizeof v);
      sb_printf(&b, "%s{path=\"%s\"} %llu\n", m[i].name, h->eps[e].path, (unsigned long long)v);
    }
  }
  sb_printf(&b, "# HELP hudong_ws_closes_total WebSocket connections closed, by reason.\n"
                "# TYPE hudong_ws_closes_total counter\n");
  for (int e = 0; e < h->n_eps; e++)
    for (int r = 0; r < HD_WS_CR_COUNT; r++)
      sb_printf(&b, "hudong_ws_closes_total{path=\"%s\",reason=\"%s\"} %llu\n", h->eps[e].path, cr_names[r],
                (unsigned long long)h->eps[e].st.closes[r]);
  if (b.overflow) {
    buf[0] = 0;
    return HD_ENOSPC;
  }
  return (int)b.n;
}
