/* Native RTM client (rtm_client.h, docs/rtm.md "Reliability" and "C client"):
 * the JSON protocol over io/ws_client.h, with rtm/client.h doing the sans-IO
 * dedupe / ordering / ack bookkeeping. Mirrors web/rtm.js.
 *
 * One uv_timer serves every deadline (ack, 429 retries, request timeouts,
 * reconnect backoff): after each event the next deadline is recomputed, so
 * an idle client does not wake up. Pending requests are a doubly linked list
 * in id order (resent in that order after a resume), capped at max_pending. */
#include "client/rtm_client.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/rand.h"
#include "base/time.h"
#include "io/ws_client.h"
#include "rtm/client.h"

typedef enum { REQ_USER = 0, REQ_PEER, REQ_RESUB, REQ_REFILL, REQ_LOGOUT } req_kind_t;

typedef struct req {
  struct req *prev, *next;
  uint64_t id;
  req_kind_t kind;
  json_t *msg; /* the request with its "id" */
  hd_rtmc_done_fn done;
  void *ud;
  int tries;          /* 429 retries so far */
  hd_time_t retry_at; /* 0 = not waiting for a retry */
  hd_time_t deadline; /* request timeout */
  int chan;           /* REQ_RESUB / REQ_REFILL: channel index */
} req_t;

typedef struct {
  char name[65];
  int refilling;   /* after a re-login: live msgs wait in held[] until history caught up */
  int empty_pages; /* consecutive empty history pages with "more" (window full): bounded */
  json_t *held;    /* array of held msg objects */
} chan_t;

struct hd_rtmc {
  uv_loop_t *loop;
  hd_rtmc_config_t cfg;
  char *url, *token;
  uv_timer_t timer;
  int timer_closed;
  hd_ws_client_t *ws;
  hd_rtmc_state_t state;
  int live;     /* the socket is welcomed */
  int resuming; /* the current connection logs in with resume */
  int lost;     /* the session is gone: next login is fresh */
  int closing;  /* logout requested */
  int ever_welcomed;
  char session_resume[64], user[128];
  hd_rtm_client_t rc;
  req_t *head, *tail;
  unsigned n_pending;
  uint64_t next_id;
  hd_rtmc_done_fn login_done;
  void *login_ud;
  hd_time_t reconnect_at, reconnect_start, reconnect_delay;
  chan_t chans[HD_RTMC_MAX_CHANNELS];
  int n_chans;
  hd_rtmc_stats_t st;
};

static hd_time_t now_us(void) { return (hd_time_t)(uv_hrtime() / 1000); }
static void reschedule(hd_rtmc_t *c);
static void start_connect(hd_rtmc_t *c);
static void cut(hd_rtmc_t *c, int code, const char *reason);

static void set_state(hd_rtmc_t *c, hd_rtmc_state_t s, const char *reason) {
  if (c->state == s) return;
  c->state = s;
  if (c->cfg.on_state) c->cfg.on_state(c->cfg.ud, s, reason ? reason : "");
}

/* ---- pending requests ---- */

static void req_unlink(hd_rtmc_t *c, req_t *r) {
  if (r->prev)
    r->prev->next = r->next;
  else
    c->head = r->next;
  if (r->next)
    r->next->prev = r->prev;
  else
    c->tail = r->prev;
  c->n_pending--;
}

static void req_free(req_t *r) {
  json_decref(r->msg);
  free(r);
}

static req_t *req_find(hd_rtmc_t *c, const char *id) {
  if (!id || id[0] != 'r') return NULL;
  char *end;
  unsigned long long v = strtoull(id + 1, &end, 10);
  if (*end) return NULL;
  for (req_t *r = c->head; r; r = r->next)
    if (r->id == v) return r;
  return NULL;
}

static int send_json(hd_rtmc_t *c, json_t *m) {
  if (!c->ws || !hd_ws_client_is_open(c->ws)) return HD_ESTATE;
  char *t = json_dumps(m, JSON_COMPACT);
  if (!t) return HD_ENOMEM;
  int rc = hd_ws_client_send(c->ws, t, strlen(t));
  free(t);
  return rc;
}

static void local_result(hd_rtmc_result_t *res, int code) {
  memset(res, 0, sizeof *res);
  res->code = code;
  res->reason = code ? hd_strerror(code) : "";
  res->message = "";
  res->rev = -1;
}

/* Completes r (already unlinked) with res, frees it. */
static void req_complete(hd_rtmc_t *c, req_t *r, const hd_rtmc_result_t *res) {
  if (r->done) r->done(c->cfg.ud, r->ud, res);
  req_free(r);
}

static void fail_all(hd_rtmc_t *c, int code) {
  while (c->head) {
    req_t *r = c->head;
    req_unlink(c, r);
    hd_rtmc_result_t res;
    local_result(&res, code);
    req_complete(c, r, &res);
  }
}

/* Takes ownership of msg. */
static int enqueue(hd_rtmc_t *c, json_t *msg, req_kind_t kind, int chan, hd_rtmc_done_fn done, void *ud) {
  if (!msg) return HD_ENOMEM;
  if (c->state == HD_RTMC_CLOSED || c->closing) {
    json_decref(msg);
    return HD_ESTATE;
  }
  if (c->n_pending >= c->cfg.max_pending) {
    json_decref(msg);
    return HD_ENOSPC;
  }
  req_t *r = calloc(1, sizeof *r);
  if (!r) {
    json_decref(msg);
    return HD_ENOMEM;
  }
  char id[32];
  r->id = ++c->next_id;
  snprintf(id, sizeof id, "r%llu", (unsigned long long)r->id);
  if (json_object_set_new(msg, "id", json_string(id)) < 0) {
    json_decref(msg);
    free(r);
    return HD_ENOMEM;
  }
  r->msg = msg;
  r->kind = kind;
  r->chan = chan;
  r->done = done;
  r->ud = ud;
  r->deadline = now_us() + HD_MS(c->cfg.request_timeout_ms);
  r->prev = c->tail;
  if (c->tail)
    c->tail->next = r;
  else
    c->head = r;
  c->tail = r;
  c->n_pending++;
  if (c->live) send_json(c, msg); /* a failed send is retried on the resume */
  reschedule(c);
  return 0;
}

/* ---- channels ---- */

static chan_t *chan_find(hd_rtmc_t *c, const char *ch) {
  for (int i = 0; i < c->n_chans; i++)
    if (!strcmp(c->chans[i].name, ch)) return &c->chans[i];
  return NULL;
}

static int64_t last_cseq(hd_rtmc_t *c, const char *ch) {
  for (int i = 0; i < c->rc.n_ch; i++)
    if (!strcmp(c->rc.ch[i], ch)) return c->rc.last_cseq[i];
  return 0;
}

static void deliver_msg(hd_rtmc_t *c, const char *ch, json_t *m, int refill) {
  int64_t cseq = json_integer_value(json_object_get(m, "cseq"));
  json_t *d = json_object_get(m, "data");
  const char *from = json_string_value(json_object_get(m, "from"));
  if (!json_is_string(d) || cseq <= 0) return;
  if (hd_rtm_client_on_channel_msg(&c->rc, ch, cseq) != HD_RTM_DELIVER) {
    c->st.duplicates++;
    return;
  }
  c->st.delivered++;
  if (refill) c->st.refilled++;
  if (c->cfg.on_message)
    c->cfg.on_message(c->cfg.ud, ch, cseq, from ? from : "", json_string_value(d), json_string_length(d));
}

static void refill_done(hd_rtmc_t *c, chan_t *ch) {
  ch->refilling = 0;
  if (ch->held) {
    json_t *held = ch->held;
    ch->held = NULL;
    size_t i;
    json_t *m;
    json_array_foreach(held, i, m) deliver_msg(c, ch->name, m, 0);
    json_decref(held);
  }
}

/* Asks for the history page after `after` (0 is a valid cursor: from the
 * first message kept). */
static void send_hist(hd_rtmc_t *c, int idx, int64_t after) {
  chan_t *ch = &c->chans[idx];
  json_t *m = json_pack("{s:s, s:s, s:I, s:i}", "type", "hist", "ch", ch->name, "after", (json_int_t)after,
                        "limit", 100);
  if (enqueue(c, m, REQ_REFILL, idx, NULL, NULL) < 0) refill_done(c, ch); /* cannot refill: deliver live */
}

/* Acks everything delivered now: the node pages history to fit the free
 * part of the window, so the next page has room only once the last is acked. */
static void ack_now(hd_rtmc_t *c) {
  int64_t a = hd_rtm_client_ack_due(&c->rc, HD_TIME_NEVER - HD_SEC(3600));
  if (a > 0) {
    json_t *ack = json_pack("{s:s, s:I}", "type", "ack", "s", (json_int_t)a);
    send_json(c, ack);
    json_decref(ack);
  }
}

/* ---- node messages ---- */

static void handle_reply(hd_rtmc_t *c, json_t *m, int is_error) {
  req_t *r = req_find(c, json_string_value(json_object_get(m, "id")));
  if (!r) {
    if (is_error && c->cfg.on_error)
      c->cfg.on_error(c->cfg.ud, (int)json_integer_value(json_object_get(m, "code")),
                      json_string_value(json_object_get(m, "reason")),
                      json_string_value(json_object_get(m, "message")));
    return;
  }
  int code = is_error ? (int)json_integer_value(json_object_get(m, "code")) : 0;
  if (r->kind == REQ_PEER && !is_error) return; /* peer: only receipt or error end it */
  if (code == 429 && r->tries < 8) {            /* not executed: again later */
    r->tries++;
    c->st.retries_429++;
    hd_time_t d = HD_MS(100) << (r->tries - 1);
    if (d > HD_MS(2000)) d = HD_MS(2000);
    r->retry_at = now_us() + d;
    reschedule(c);
    return;
  }
  req_unlink(c, r);
  if (r->kind == REQ_RESUB) {
    if (code && c->cfg.on_error)
      c->cfg.on_error(c->cfg.ud, code, json_string_value(json_object_get(m, "reason")),
                      "re-subscribe failed");
    if (code)
      refill_done(c, &c->chans[r->chan]);
    else {
      c->chans[r->chan].empty_pages = 0;
      send_hist(c, r->chan, last_cseq(c, c->chans[r->chan].name));
    }
    req_free(r);
    return;
  }
  if (r->kind == REQ_REFILL) {
    chan_t *ch = &c->chans[r->chan];
    json_t *msgs = json_object_get(m, "msgs");
    size_t i;
    json_t *x;
    if (!code) json_array_foreach(msgs, i, x) deliver_msg(c, ch->name, x, 1);
    /* follow the pages: "next" is the cursor (docs/rtm.md "History"); an
     * empty page with "more" means the window had no room: ack, ask again */
    json_t *next = json_object_get(m, "next");
    ch->empty_pages = json_array_size(msgs) ? 0 : ch->empty_pages + 1;
    if (code == 413 && json_is_integer(next)) { /* a message no page of this window carries: skip it */
      if (c->cfg.on_error)
        c->cfg.on_error(c->cfg.ud, code, "too_large", json_string_value(json_object_get(m, "message")));
      send_hist(c, r->chan, json_integer_value(next));
    } else if (!code && json_is_true(json_object_get(m, "more")) && ch->empty_pages <= 20) {
      ack_now(c);
      send_hist(c, r->chan, json_is_integer(next) ? json_integer_value(next) : last_cseq(c, ch->name));
    } else {
      if (!code && json_is_true(json_object_get(m, "more")) && c->cfg.on_error) /* never silent */
        c->cfg.on_error(c->cfg.ud, 503, "refill_stopped",
                        "history refill stopped: 20 empty pages in a row (the window stayed full)");
      refill_done(c, ch);
    }
    req_free(r);
    return;
  }
  hd_rtmc_result_t res;
  local_result(&res, 0);
  res.code = code;
  res.reason = is_error ? json_string_value(json_object_get(m, "reason")) : "";
  res.message = is_error ? json_string_value(json_object_get(m, "message")) : "";
  if (!res.reason) res.reason = "";
  if (!res.message) res.message = "";
  json_t *v;
  if ((v = json_object_get(m, "cseq"))) res.cseq = json_integer_value(v);
  if ((v = json_object_get(m, "rev"))) res.rev = json_integer_value(v);
  if ((v = json_object_get(m, "exp"))) res.exp = json_integer_value(v);
  res.owner = json_string_value(json_object_get(m, "owner"));
  res.dup = json_is_true(json_object_get(m, "dup"));
  char *txt = json_dumps(m, JSON_COMPACT);
  res.json = txt;
  /* sub ok: remember the channel and start its dedupe at the cseq the node
   * reported, so that only messages after the subscribe are delivered */
  const char *type = json_string_value(json_object_get(r->msg, "type"));
  const char *chn = json_string_value(json_object_get(r->msg, "ch"));
  if (!code && type && chn && !strcmp(type, "sub") && !chan_find(c, chn) &&
      c->n_chans < HD_RTMC_MAX_CHANNELS) {
    snprintf(c->chans[c->n_chans++].name, sizeof c->chans[0].name, "%s", chn);
    if (res.cseq > 0) hd_rtm_client_on_channel_msg(&c->rc, chn, res.cseq);
  }
  req_complete(c, r, &res);
  free(txt);
}

static void handle_event(hd_rtmc_t *c, json_t *m, const char *type) {
  const hd_rtmc_config_t *g = &c->cfg;
#define S(k) json_string_value(json_object_get(m, k))
  if (!strcmp(type, "ok"))
    handle_reply(c, m, 0);
  else if (!strcmp(type, "error"))
    handle_reply(c, m, 1);
  else if (!strcmp(type, "msg")) {
    const char *chn = S("ch");
    if (!chn) return;
    chan_t *ch = chan_find(c, chn);
    if (ch && ch->refilling) {
      if (!ch->held) ch->held = json_array();
      if (ch->held && json_array_size(ch->held) < HD_RTMC_MAX_REFILL_BUFFER) json_array_append(ch->held, m);
      return;
    }
    deliver_msg(c, chn, m, 0);
  } else if (!strcmp(type, "pres")) {
    if (g->on_presence) g->on_presence(g->ud, S("ch"), S("ev"), S("user"), S("state"));
  } else if (!strcmp(type, "attr")) {
    if (g->on_attr)
      g->on_attr(g->ud, S("ch"), S("user"), S("key"), S("value"),
                 json_integer_value(json_object_get(m, "rev")), S("by"));
  } else if (!strcmp(type, "lock")) {
    if (g->on_lock) g->on_lock(g->ud, S("ch"), S("name"), S("ev"), S("owner"));
  } else if (!strcmp(type, "peer")) {
    json_t *d = json_object_get(m, "data");
    if (g->on_peer && json_is_string(d))
      g->on_peer(g->ud, S("from"), S("pid"), json_string_value(d), json_string_length(d));
  } else if (!strcmp(type, "receipt")) {
    req_t *r = req_find(c, S("id"));
    if (r && r->kind == REQ_PEER) {
      req_unlink(c, r);
      hd_rtmc_result_t res;
      local_result(&res, 0);
      req_complete(c, r, &res);
    }
  }
#undef S
}

static void on_welcome(hd_rtmc_t *c, json_t *m) {
  int resumed = json_is_true(json_object_get(m, "resumed"));
  snprintf(c->session_resume, sizeof c->session_resume, "%s",
           json_string_value(json_object_get(m, "resume")) ? json_string_value(json_object_get(m, "resume"))
                                                           : "");
  snprintf(c->user, sizeof c->user, "%s",
           json_string_value(json_object_get(m, "user")) ? json_string_value(json_object_get(m, "user"))
                                                         : "");
  int relogin = !resumed && c->ever_welcomed;
  if (!resumed)
    hd_rtm_client_new_session(&c->rc);
  else
    c->st.resumes++;
  c->live = 1;
  c->lost = 0;
  c->ever_welcomed = 1;
  c->reconnect_at = 0;
  c->reconnect_start = 0;
  /* requests in flight across the cut go again with the same id; a fresh
   * session after a loss drops the internal refill requests of the old one */
  for (req_t *r = c->head, *nx; r; r = nx) {
    nx = r->next;
    if (relogin && (r->kind == REQ_RESUB || r->kind == REQ_REFILL)) {
      req_unlink(c, r);
      req_free(r);
      continue;
    }
    if (!r->retry_at && send_json(c, r->msg) == 0) c->st.resent++;
  }
  if (relogin) {
    c->st.relogins++;
    for (int i = 0; i < c->n_chans; i++) {
      chan_t *ch = &c->chans[i];
      ch->refilling = 1;
      if (enqueue(c, json_pack("{s:s, s:s}", "type", "sub", "ch", ch->name), REQ_RESUB, i, NULL, NULL) < 0)
        refill_done(c, ch);
    }
  }
  set_state(c, HD_RTMC_CONNECTED, resumed ? "resumed" : relogin ? "logged in again" : "logged in");
  if (c->login_done) {
    hd_rtmc_done_fn d = c->login_done;
    c->login_done = NULL;
    hd_rtmc_result_t res;
    local_result(&res, 0);
    d(c->cfg.ud, c->login_ud, &res);
  }
}

static void ws_message(void *ud, hd_ws_client_t *ws, const char *text, size_t len) {
  hd_rtmc_t *c = ud;
  json_error_t je;
  json_t *m = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (!json_is_object(m)) {
    json_decref(m);
    return;
  }
  const char *type = json_string_value(json_object_get(m, "type"));
  if (!type) goto done;
  if (!c->live) {
    if (!strcmp(type, "welcome"))
      on_welcome(c, m);
    else if (!strcmp(type, "error")) {
      int code = (int)json_integer_value(json_object_get(m, "code"));
      if (c->resuming && code == 410) { /* session gone: log in afresh on a new connection */
        c->lost = 1;
        cut(c, 4008, "session gone");
      } else if (c->login_done) {
        hd_rtmc_done_fn d = c->login_done;
        c->login_done = NULL;
        hd_rtmc_result_t res;
        local_result(&res, code);
        res.reason = json_string_value(json_object_get(m, "reason"));
        res.message = json_string_value(json_object_get(m, "message"));
        if (!res.reason) res.reason = "";
        if (!res.message) res.message = "";
        d(c->cfg.ud, c->login_ud, &res);
      }
    }
    goto done;
  }
  json_t *sv = json_object_get(m, "s");
  if (json_is_integer(sv)) {
    hd_time_t now = now_us();
    hd_rtm_verdict_t v = hd_rtm_client_on_seq(&c->rc, json_integer_value(sv), now);
    if (v == HD_RTM_DUPLICATE) {
      c->st.duplicates++;
      goto done;
    }
    if (v == HD_RTM_GAP) { /* cannot happen within a session: treat it as lost */
      c->lost = 1;
      cut(c, 4008, "gap in session sequence");
      goto done;
    }
    int64_t a = hd_rtm_client_ack_due(&c->rc, now);
    if (a > 0) {
      json_t *ack = json_pack("{s:s, s:I}", "type", "ack", "s", (json_int_t)a);
      send_json(c, ack);
      json_decref(ack);
    }
  }
  handle_event(c, m, type);
  reschedule(c);
done:
  json_decref(m);
}

static void ws_open(void *ud, hd_ws_client_t *ws) {
  hd_rtmc_t *c = ud;
  json_t *m;
  if (c->resuming)
    m = json_pack("{s:s, s:s, s:I, s:s}", "type", "login", "resume", c->session_resume, "last",
                  (json_int_t)hd_rtm_client_resume_last(&c->rc), "id", "login");
  else {
    char tok[4096];
    const char *t = c->token;
    if (c->cfg.get_token) {
      if (c->cfg.get_token(c->cfg.ud, tok, sizeof tok) < 0) {
        cut(c, 1006, "get_token failed");
        return;
      }
      t = tok;
    }
    m = json_pack("{s:s, s:s, s:s}", "type", "login", "token", t ? t : "", "id", "login");
  }
  send_json(c, m);
  json_decref(m);
}

/* The connection ended (code as the node sent it, or 1006). Decides between
 * closing for good and reconnecting. */
static void ended(hd_rtmc_t *c, int code, const char *reason) {
  c->ws = NULL;
  c->live = 0;
  if (c->closing || code == 1000 || code == 4001 || code == 4009 ||
      (!c->ever_welcomed && c->state == HD_RTMC_CONNECTING)) {
    c->closing = 0;
    set_state(c, HD_RTMC_CLOSED, reason);
    if (c->login_done) {
      hd_rtmc_done_fn d = c->login_done;
      c->login_done = NULL;
      hd_rtmc_result_t res;
      local_result(&res, HD_ECLOSED);
      res.message = reason ? reason : "";
      d(c->cfg.ud, c->login_ud, &res);
    }
    fail_all(c, HD_ECLOSED);
    reschedule(c);
    return;
  }
  if (code == 4008) c->lost = 1;
  hd_time_t now = now_us();
  if (!c->reconnect_start) {
    c->reconnect_start = now;
    c->reconnect_delay = HD_MS(300);
  }
  if (now - c->reconnect_start > HD_MS(c->cfg.reconnect_max_ms)) {
    set_state(c, HD_RTMC_CLOSED, "could not reconnect");
    fail_all(c, HD_ETIMEDOUT);
    reschedule(c);
    return;
  }
  /* a cut right after a good connection reconnects at once; then backoff with jitter */
  hd_time_t d = c->reconnect_delay;
  c->reconnect_at = now + d / 2 + (hd_time_t)(hd_random_u32() % (uint32_t)(d / 2 + 1));
  if (c->reconnect_delay < HD_MS(5000)) c->reconnect_delay *= 2;
  set_state(c, HD_RTMC_RECONNECTING, reason);
  reschedule(c);
}

static void ws_close(void *ud, hd_ws_client_t *ws, int code, const char *reason) {
  hd_rtmc_t *c = ud;
  if (c->ws != ws) return;
  hd_ws_client_free(ws);
  ended(c, code, reason);
}

/* Drops the current connection at once (no close frame) and reconnects. */
static void cut(hd_rtmc_t *c, int code, const char *reason) {
  if (c->ws) hd_ws_client_free(c->ws);
  ended(c, code, reason);
}

static void start_connect(hd_rtmc_t *c) {
  hd_ws_client_config_t wc = {.on_open = ws_open, .on_message = ws_message, .on_close = ws_close, .ud = c};
  c->resuming = c->ever_welcomed && !c->lost && c->session_resume[0];
  c->reconnect_at = 0;
  hd_ws_client_t *ws = NULL;
  int rc = hd_ws_client_connect(&ws, c->loop, c->url, &wc);
  if (rc < 0) {
    ended(c, 1006, hd_strerror(rc));
    return;
  }
  c->ws = ws;
}

/* ---- timer ---- */

static void on_timer(uv_timer_t *t) {
  hd_rtmc_t *c = t->data;
  hd_time_t now = now_us();
  if (c->live) {
    int64_t a = hd_rtm_client_ack_due(&c->rc, now);
    if (a > 0) {
      json_t *ack = json_pack("{s:s, s:I}", "type", "ack", "s", (json_int_t)a);
      send_json(c, ack);
      json_decref(ack);
    }
  }
  for (req_t *r = c->head, *nx; r; r = nx) {
    nx = r->next;
    if (r->retry_at && r->retry_at <= now) {
      r->retry_at = 0;
      r->deadline = now + HD_MS(c->cfg.request_timeout_ms);
      if (c->live) send_json(c, r->msg);
    } else if (r->deadline <= now) {
      req_unlink(c, r);
      if (r->kind == REQ_RESUB || r->kind == REQ_REFILL) {
        refill_done(c, &c->chans[r->chan]);
        req_free(r);
      } else {
        hd_rtmc_result_t res;
        local_result(&res, HD_ETIMEDOUT);
        req_complete(c, r, &res);
      }
    }
  }
  if (c->reconnect_at && c->reconnect_at <= now && !c->ws && c->state == HD_RTMC_RECONNECTING)
    start_connect(c);
  reschedule(c);
}

static void reschedule(hd_rtmc_t *c) {
  if (c->timer_closed) return;
  hd_time_t next = HD_TIME_NEVER;
  if (c->live) next = hd_rtm_client_next_timeout(&c->rc);
  for (req_t *r = c->head; r; r = r->next) {
    hd_time_t t = r->retry_at ? r->retry_at : r->deadline;
    if (t < next) next = t;
  }
  if (c->reconnect_at && c->reconnect_at < next) next = c->reconnect_at;
  if (next == HD_TIME_NEVER) {
    uv_timer_stop(&c->timer);
    return;
  }
  hd_time_t now = now_us();
  uint64_t ms = next <= now ? 0 : (uint64_t)((next - now + 999) / 1000);
  uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* ---- public ---- */

int hd_rtmc_new(hd_rtmc_t **out, uv_loop_t *loop, const hd_rtmc_config_t *cfg) {
  if (!out || !loop || !cfg || !cfg->url || (!cfg->token && !cfg->get_token)) return HD_EINVAL;
  hd_rtmc_t *c = calloc(1, sizeof *c);
  if (!c) return HD_ENOMEM;
  c->loop = loop;
  c->cfg = *cfg;
  if (!c->cfg.max_pending) c->cfg.max_pending = HD_RTMC_DEFAULT_MAX_PENDING;
  if (!c->cfg.request_timeout_ms) c->cfg.request_timeout_ms = HD_RTMC_DEFAULT_REQUEST_TIMEOUT_MS;
  if (!c->cfg.reconnect_max_ms) c->cfg.reconnect_max_ms = HD_RTMC_DEFAULT_RECONNECT_MAX_MS;
  c->url = strdup(cfg->url);
  c->token = cfg->token ? strdup(cfg->token) : NULL;
  if (!c->url || (cfg->token && !c->token)) {
    free(c->url);
    free(c->token);
    free(c);
    return HD_ENOMEM;
  }
  c->cfg.url = c->url;
  c->cfg.token = c->token;
  hd_rtm_client_init(&c->rc);
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  *out = c;
  return 0;
}

int hd_rtmc_login(hd_rtmc_t *c, hd_rtmc_done_fn done, void *req_ud) {
  if (c->state != HD_RTMC_IDLE && c->state != HD_RTMC_CLOSED) return HD_ESTATE;
  c->login_done = done;
  c->login_ud = req_ud;
  c->ever_welcomed = 0;
  c->lost = 0;
  c->closing = 0;
  c->reconnect_start = 0;
  set_state(c, HD_RTMC_CONNECTING, "login");
  start_connect(c);
  return 0;
}

static int valid_str(const char *s, size_t max) { return s && s[0] && strlen(s) <= max; }

/* docs/rtm.md: 1..64 of A-Z a-z 0-9 - _ . : (refused here rather than as a 400 later) */
static int valid_ch(const char *s) {
  if (!valid_str(s, 64)) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          strchr("-_.:", *s)))
      return 0;
  return 1;
}

int hd_rtmc_subscribe(hd_rtmc_t *c, const char *ch, hd_rtmc_done_fn done, void *req_ud) {
  if (!valid_ch(ch)) return HD_EINVAL;
  return enqueue(c, json_pack("{s:s, s:s}", "type", "sub", "ch", ch), REQ_USER, 0, done, req_ud);
}

int hd_rtmc_unsubscribe(hd_rtmc_t *c, const char *ch, hd_rtmc_done_fn done, void *req_ud) {
  if (!valid_ch(ch)) return HD_EINVAL;
  chan_t *x = chan_find(c, ch);
  if (x) { /* forget it; the array stays dense, so re-number the channel index of
            * in-flight refill requests and drop those of this channel */
    json_decref(x->held);
    int i = (int)(x - c->chans);
    memmove(&c->chans[i], &c->chans[i + 1], (size_t)(c->n_chans - i - 1) * sizeof c->chans[0]);
    c->n_chans--;
    for (req_t *r = c->head; r; r = r->next)
      if ((r->kind == REQ_RESUB || r->kind == REQ_REFILL) && r->chan >= i)
        r->chan = r->chan > i ? r->chan - 1 : -1;
    for (req_t *r = c->head, *nx; r; r = nx) {
      nx = r->next;
      if ((r->kind == REQ_RESUB || r->kind == REQ_REFILL) && r->chan < 0) {
        req_unlink(c, r);
        req_free(r);
      }
    }
  }
  return enqueue(c, json_pack("{s:s, s:s}", "type", "unsub", "ch", ch), REQ_USER, 0, done, req_ud);
}

int hd_rtmc_publish(hd_rtmc_t *c, const char *ch, const char *data, size_t len, int store,
                    hd_rtmc_done_fn done, void *req_ud) {
  if (!valid_ch(ch) || (!data && len)) return HD_EINVAL;
  json_t *d = json_stringn(data ? data : "", len);
  if (!d) return HD_EINVAL; /* not UTF-8 */
  return enqueue(c, json_pack("{s:s, s:s, s:o, s:b}", "type", "pub", "ch", ch, "data", d, "store", store),
                 REQ_USER, 0, done, req_ud);
}

int hd_rtmc_history(hd_rtmc_t *c, const char *ch, int limit, int64_t after, hd_rtmc_done_fn done,
                    void *req_ud) {
  if (!valid_ch(ch) || limit < 0 || limit > 100) return HD_EINVAL;
  json_t *m = json_pack("{s:s, s:s}", "type", "hist", "ch", ch);
  if (m && limit) json_object_set_new(m, "limit", json_integer(limit));
  if (m && after >= 0) json_object_set_new(m, "after", json_integer(after));
  return enqueue(c, m, REQ_USER, 0, done, req_ud);
}

int hd_rtmc_set_attr(hd_rtmc_t *c, const char *ch, const char *user, const char *key, const char *value,
                     int64_t rev, hd_rtmc_done_fn done, void *req_ud) {
  if (!ch == !user || (ch && !valid_ch(ch)) || !valid_str(key, 64)) return HD_EINVAL;
  json_t *m = json_pack("{s:s, s:s, s:s}", "type", value ? "attr_set" : "attr_del", ch ? "ch" : "user",
                        ch ? ch : user, "key", key);
  if (!m) return HD_ENOMEM;
  if (value) {
    json_t *v = json_string(value);
    if (!v) {
      json_decref(m);
      return HD_EINVAL;
    }
    json_object_set_new(m, "value", v);
  }
  if (rev >= 0) json_object_set_new(m, "rev", json_integer(rev));
  return enqueue(c, m, REQ_USER, 0, done, req_ud);
}

int hd_rtmc_lock_acquire(hd_rtmc_t *c, const char *ch, const char *name, unsigned ttl_ms,
                         hd_rtmc_done_fn done, void *req_ud) {
  if (!valid_ch(ch) || !valid_str(name, 64)) return HD_EINVAL;
  json_t *m = json_pack("{s:s, s:s, s:s}", "type", "lock_acquire", "ch", ch, "name", name);
  if (m && ttl_ms) json_object_set_new(m, "ttl", json_integer(ttl_ms));
  return enqueue(c, m, REQ_USER, 0, done, req_ud);
}

int hd_rtmc_lock_release(hd_rtmc_t *c, const char *ch, const char *name, hd_rtmc_done_fn done, void *req_ud) {
  if (!valid_ch(ch) || !valid_str(name, 64)) return HD_EINVAL;
  return enqueue(c, json_pack("{s:s, s:s, s:s}", "type", "lock_release", "ch", ch, "name", name), REQ_USER, 0,
                 done, req_ud);
}

int hd_rtmc_send_peer(hd_rtmc_t *c, const char *to, const char *data, size_t len, hd_rtmc_done_fn done,
                      void *req_ud) {
  if (!valid_str(to, 127) || (!data && len)) return HD_EINVAL;
  json_t *d = json_stringn(data ? data : "", len);
  if (!d) return HD_EINVAL;
  return enqueue(c, json_pack("{s:s, s:s, s:o}", "type", "peer", "to", to, "data", d), REQ_PEER, 0, done,
                 req_ud);
}

int hd_rtmc_request(hd_rtmc_t *c, const char *json_obj, hd_rtmc_done_fn done, void *req_ud) {
  if (!json_obj) return HD_EINVAL;
  json_t *m = json_loads(json_obj, JSON_REJECT_DUPLICATES, NULL);
  if (!json_is_object(m) || !json_is_string(json_object_get(m, "type"))) {
    json_decref(m);
    return HD_EINVAL;
  }
  const char *t = json_string_value(json_object_get(m, "type"));
  req_kind_t k = !strcmp(t, "peer") ? REQ_PEER : REQ_USER;
  return enqueue(c, m, k, 0, done, req_ud);
}

int hd_rtmc_logout(hd_rtmc_t *c, hd_rtmc_done_fn done, void *req_ud) {
  if (c->state == HD_RTMC_CLOSED || c->state == HD_RTMC_IDLE) return HD_ESTATE;
  if (!c->live) { /* nothing to tell the node: just stop */
    if (c->ws) hd_ws_client_free(c->ws);
    c->ws = NULL;
    c->reconnect_at = 0;
    set_state(c, HD_RTMC_CLOSED, "logout");
    fail_all(c, HD_ECLOSED);
    reschedule(c);
    if (done) {
      hd_rtmc_result_t res;
      local_result(&res, 0);
      done(c->cfg.ud, req_ud, &res);
    }
    return 0;
  }
  int rc = enqueue(c, json_pack("{s:s}", "type", "logout"), REQ_LOGOUT, 0, done, req_ud);
  if (rc == 0) c->closing = 1; /* the node closes with 1000 after its ok */
  return rc;
}

int hd_rtmc_drop_connection(hd_rtmc_t *c) {
  if (!c->ws) return HD_ESTATE;
  cut(c, 1006, "dropped by client");
  return 0;
}

int hd_rtmc_drop_session(hd_rtmc_t *c) {
  if (!c->ws) return HD_ESTATE;
  snprintf(c->session_resume, sizeof c->session_resume, "%s", "forgotten-by-test-hook-000000000");
  cut(c, 1006, "session dropped by client");
  return 0;
}

hd_rtmc_state_t hd_rtmc_state(const hd_rtmc_t *c) { return c->state; }
const char *hd_rtmc_user(const hd_rtmc_t *c) { return c->user; }
void hd_rtmc_get_stats(const hd_rtmc_t *c, hd_rtmc_stats_t *out) { *out = c->st; }

static void on_timer_closed(uv_handle_t *h) {
  hd_rtmc_t *c = h->data;
  free(c);
}

void hd_rtmc_free(hd_rtmc_t *c) {
  if (!c) return;
  if (c->ws) hd_ws_client_free(c->ws);
  c->ws = NULL;
  while (c->head) {
    req_t *r = c->head;
    req_unlink(c, r);
    req_free(r);
  }
  for (int i = 0; i < c->n_chans; i++)
    json_decref(c->chans[i].held);
  free(c->url);
  free(c->token);
  c->timer_closed = 1;
  uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}
