/* RTM broker core (broker.h, docs/rtm.md): connections, sessions, login and
 * resume, the per-session reliable outbound window and cumulative acks, rate
 * limiting, timers, stats. Requests of a logged-in session are handled in
 * broker_ops.c.
 *
 * Reliability: every message to a session gets the next session sequence
 * number "s" and stays in a ring (the window) until the client acks it
 * cumulatively. The window has caps in messages and bytes; a session that
 * would exceed them is dropped (close 4008) instead of growing: bounded
 * memory, and the client learns that it must log in again and fetch history.
 * A session whose connection drops keeps queueing for resume_grace; a resume
 * {resume token, last} replays everything after "last".
 *
 * Reentrancy: a drop decided while fanning out (overflow) only marks the
 * session (doomed); reap() frees doomed sessions at the end of each entry
 * point, so no list is changed while it is walked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/rand.h"
#include "base/str.h"
#include "rtm/broker_internal.h"

static const struct {
  int status;
  const char *reason;
} ERRS[HD_RTM_ERR_COUNT] = {
    [HD_RTM_ERR_NONE] = {0, ""},
    [HD_RTM_ERR_BAD_REQUEST] = {400, "bad_request"},
    [HD_RTM_ERR_UNAUTHORIZED] = {401, "unauthorized"},
    [HD_RTM_ERR_TOKEN_EXPIRED] = {401, "token_expired"},
    [HD_RTM_ERR_FORBIDDEN] = {403, "forbidden"},
    [HD_RTM_ERR_NOT_FOUND] = {404, "not_found"},
    [HD_RTM_ERR_OFFLINE] = {404, "user_offline"},
    [HD_RTM_ERR_CONFLICT] = {409, "conflict"},
    [HD_RTM_ERR_SESSION_GONE] = {410, "session_gone"},
    [HD_RTM_ERR_TOO_LARGE] = {413, "too_large"},
    [HD_RTM_ERR_RATE_LIMITED] = {429, "rate_limited"},
    [HD_RTM_ERR_INTERNAL] = {500, "internal"},
    [HD_RTM_ERR_FULL] = {503, "full"},
    [HD_RTM_ERR_NOT_DELIVERED] = {504, "not_delivered"},
    [HD_RTM_ERR_STORAGE_FULL] = {507, "storage_full"},
    [HD_RTM_ERR_UNAVAILABLE] = {503, "unavailable"},
};

int hd_rtm_err_status(hd_rtm_errcode_t c) {
  return ((int)c >= 0 && c < HD_RTM_ERR_COUNT) ? ERRS[c].status : 0;
}
const char *hd_rtm_err_reason(hd_rtm_errcode_t c) {
  return ((int)c >= 0 && c < HD_RTM_ERR_COUNT) ? ERRS[c].reason : "";
}

hd_time_t rtm_wall_ms(const hd_rtm_broker_t *b, hd_time_t now) { return (now + b->cfg.wall_offset) / 1000; }

/* ---------------------------------------------------------------- output */

/* Group commit: nothing goes out ahead of the held stored publishes (an
 * error reply to a request that arrived after them, a receipt an ack settled). */
#define GC_BEFORE_OUTPUT(b)                                                                                  \
  do {                                                                                                       \
    if ((b)->gc_n && !(b)->gc_flushing) rtm_gc_flush(b);                                                     \
  } while (0)

static void raw_send(hd_rtm_broker_t *b, uint64_t conn, const char *text, size_t len) {
  GC_BEFORE_OUTPUT(b);
  b->st.msgs_out++;
  b->cfg.send(b->cfg.ud, conn, text, len);
}

/* Unsequenced (before login): welcome, login errors. o consumed. */
static void send_direct(hd_rtm_broker_t *b, uint64_t conn, json_t *o) {
  char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
  if (t) raw_send(b, conn, t, strlen(t));
  free(t);
  json_decref(o);
}

static json_t *err_obj(const char *id, hd_rtm_errcode_t code, const char *msg, json_t *extra) {
  json_t *o = json_pack("{s:s,s:i,s:s,s:s}", "type", "error", "code", ERRS[code].status, "reason",
                        ERRS[code].reason, "message", msg ? msg : "");
  if (o && id) json_object_set_new(o, "id", json_string(id));
  if (o && extra) json_object_update(o, extra);
  json_decref(extra);
  return o;
}

static void direct_err(hd_rtm_broker_t *b, uint64_t conn, const char *id, hd_rtm_errcode_t code,
                       const char *msg) {
  b->st.errors++;
  send_direct(b, conn, err_obj(id, code, msg, NULL));
}

/* The window ring's capacity is a power of two (16, 32, ... up to the first
 * at or above max; the count cap, window_msgs, is checked by the callers), so
 * a slot is (head + i) & (cap - 1): a division per delivery and per ack was
 * visible in the fan-out profile (issue 17). */
#define WIN_AT(s, i) ((s)->win[((s)->win_head + (i)) & ((s)->win_cap - 1)])
static int win_grow(sess_t *s, size_t max) {
  if (s->win_n < s->win_cap) return 0;
  size_t lim = 16;
  while (lim < max)
    lim <<= 1;
  if (s->win_cap >= lim) return HD_ENOSPC;
  size_t nc = s->win_cap ? s->win_cap * 2 : 16;
  out_ent_t *w = malloc(nc * sizeof *w);
  if (!w) return HD_ENOMEM;
  for (size_t i = 0; i < s->win_n; i++)
    w[i] = WIN_AT(s, i);
  free(s->win);
  s->win = w;
  s->win_cap = nc;
  s->win_head = 0;
  return 0;
}

body_t *rtm_body_new(const char *json, size_t len) {
  if (len < 2 || json[0] != '{' || json[len - 1] != '}') return NULL;
  body_t *bd = malloc(sizeof *bd + len);
  if (!bd) return NULL;
  bd->refs = 1;
  bd->len = len - 1; /* without the closing '}' */
  memcpy(bd->text, json, len - 1);
  return bd;
}

void rtm_body_unref(body_t *bd) {
  if (bd && --bd->refs <= 0) free(bd);
}

/* The tail of a window entry: ,"s":N} (no comma after an empty object). */
/* Written by hand: it runs once per delivery, twice with the send, and
 * snprintf was 3% of the node's CPU at fan-out 100 (issue 17 item 2). cap
 * is at least 32 at every call (a comma, "s":, 20 digits, the brace). */
static int ent_tail(const body_t *bd, int64_t seq, char *tail, size_t cap) {
  char d[24];
  int nd = 0, n = 0;
  uint64_t v = seq < 0 ? 0 : (uint64_t)seq;
  do {
    d[nd++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  if (cap < 32) return 0;
  if (bd->len > 1) tail[n++] = ',';
  memcpy(tail + n, "\"s\":", 4);
  n += 4;
  while (nd)
    tail[n++] = d[--nd];
  tail[n++] = '}';
  tail[n] = 0;
  return n;
}

/* Sends window entry e to conn: body + tail, built in the scratch buffer;
 * tail/tl: e's tail when the caller has it already (push_ent), else NULL. */
static void ent_send_tail(hd_rtm_broker_t *b, uint64_t conn, const out_ent_t *e, const char *tail, int tl);
static void ent_send(hd_rtm_broker_t *b, uint64_t conn, const out_ent_t *e) {
  ent_send_tail(b, conn, e, NULL, 0);
}
static void ent_send_tail(hd_rtm_broker_t *b, uint64_t conn, const out_ent_t *e, const char *tail, int tl) {
  if (e->len + 32 > b->scratch_cap) { /* room for ent_tail's worst case */
    size_t cap = b->scratch_cap ? b->scratch_cap : 4096;
    while (cap < e->len + 32)
      cap *= 2;
    char *n = realloc(b->scratch, cap);
    if (!n) return; /* stays in the window: a resume replays it */
    b->scratch = n;
    b->scratch_cap = cap;
  }
  memcpy(b->scratch, e->body->text, e->body->len);
  if (tail)
    memcpy(b->scratch + e->body->len, tail, (size_t)tl);
  else
    ent_tail(e->body, e->s, b->scratch + e->body->len, b->scratch_cap - e->body->len);
  raw_send(b, conn, b->scratch, e->len);
}

const int64_t hd_rtm_dlat_le_ms[HD_RTM_DLAT_BUCKETS - 1] = {10,  25,   50,   100,  250,
                                                            500, 1000, 2500, 5000, 10000};

/* A delivery that will never be acked: counted by why (doom kind: 1
 * overflow, 2 logout, 3 expired/replaced, 4 ending). */
static void dl_given_up(sess_t *s, int kind) {
  hd_rtm_delivery_t *d = &s->ac->dl;
  if (kind == 1)
    d->overflow++;
  else if (kind == 3)
    d->expired++;
  else
    d->gone++;
}

static void dl_acked(hd_rtm_broker_t *b, sess_t *s, const out_ent_t *e) {
  hd_rtm_delivery_t *d = &s->ac->dl;
  hd_time_t us = b->now > e->t0 ? b->now - e->t0 : 0;
  int i = 0;
  while (i < HD_RTM_DLAT_BUCKETS - 1 && us > hd_rtm_dlat_le_ms[i] * 1000)
    i++;
  d->acked++;
  d->lat_sum_us += (uint64_t)us;
  d->lat_hist[i]++;
}

static void push_ent(hd_rtm_broker_t *b, sess_t *s, body_t *bd, receipt_t *rc, int dlv) {
  GC_BEFORE_OUTPUT(b);
  if (dlv) s->ac->dl.owed++;
  if (s->doomed) {
    if (dlv) dl_given_up(s, s->doomed);
    return;
  }
  char tail[40];
  int64_t seq = s->next_s;
  int tl = ent_tail(bd, seq, tail, sizeof tail);
  size_t n = bd->len + (size_t)tl;
  if (s->win_n >= b->cfg.window_msgs || s->win_bytes + n > b->cfg.window_bytes ||
      win_grow(s, b->cfg.window_msgs) < 0) {
    rtm_doom(b, s, 1); /* overflow: never unbounded memory (docs/rtm.md "Overflow") */
    if (dlv) dl_given_up(s, 1);
    if (rc) rtm_receipt_settle(b, rc, 0);
    return;
  }
  s->next_s++;
  out_ent_t *e = &WIN_AT(s, s->win_n);
  e->s = seq;
  e->body = bd;
  bd->refs++;
  e->len = n;
  e->rc = rc;
  e->err = 0;
  e->dlv = dlv;
  e->t0 = b->now;
  s->win_n++;
  s->win_bytes += n;
  if (s->conn) ent_send_tail(b, s->conn, e, tail, tl); /* the tail once per delivery, not twice */
}

void rtm_push_body(hd_rtm_broker_t *b, sess_t *s, body_t *bd, receipt_t *rc) { push_ent(b, s, bd, rc, 0); }

void rtm_push_delivery(hd_rtm_broker_t *b, sess_t *s, body_t *bd, receipt_t *rc) {
  push_ent(b, s, bd, rc, 1);
}

void rtm_push_text(hd_rtm_broker_t *b, sess_t *s, const char *text, size_t len, receipt_t *rc) {
  if (s->doomed || len < 2 || text[len - 1] != '}') return;
  body_t *bd = rtm_body_new(text, len);
  if (!bd) { /* out of memory: like an overflow */
    rtm_doom(b, s, 1);
    if (rc) rtm_receipt_settle(b, rc, 0);
    return;
  }
  rtm_push_body(b, s, bd, rc);
  rtm_body_unref(bd);
}

void rtm_push(hd_rtm_broker_t *b, sess_t *s, json_t *o, receipt_t *rc) {
  char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (!t) {
    if (rc) rtm_receipt_settle(b, rc, 0);
    return;
  }
  rtm_push_text(b, s, t, strlen(t), rc);
  free(t);
}

void rtm_ok(hd_rtm_broker_t *b, sess_t *s, const req_t *r, json_t *o) {
  json_t *m = json_pack("{s:s}", "type", "ok");
  if (m && r->id) json_object_set_new(m, "id", json_string(r->id));
  if (m && o) json_object_update(m, o);
  json_decref(o);
  rtm_push(b, s, m, NULL);
}

void rtm_err_result(hd_rtm_broker_t *b, sess_t *s, const char *id, hd_rtm_errcode_t code, const char *msg,
                    json_t *extra) {
  b->st.errors++;
  rtm_push(b, s, err_obj(id, code, msg, extra), NULL);
}

size_t rtm_err_cap(const hd_rtm_broker_t *b) {
  size_t cap = b->cfg.window_msgs / 4;
  return cap < 8 ? 8 : cap;
}

/* Error replies to requests take at most a quarter of the window while
 * unacked: a client flooding bad input (its 400s and 429s) would otherwise
 * fill its own window and be dropped with 4008, although bad input never
 * closes a connection (docs/rtm.md "Errors"). Beyond the cap an error reply
 * is not sent (it gets no "s", so nothing is missing from the sequence);
 * a client that acks as documented never gets near it. */
void rtm_err(hd_rtm_broker_t *b, sess_t *s, const char *id, hd_rtm_errcode_t code, const char *msg,
             json_t *extra) {
  if (s->win_errs >= rtm_err_cap(b)) {
    b->st.errors_suppressed++;
    json_decref(extra);
    return;
  }
  int64_t seq = s->next_s;
  rtm_err_result(b, s, id, code, msg, extra);
  if (s->next_s > seq && s->win_n) { /* it went into the window: the newest entry */
    WIN_AT(s, s->win_n - 1).err = 1;
    s->win_errs++;
  }
}

/* Frees entries with s <= upto. how: 0 for an ack (delivered), else the
 * session's doom kind (a drop; deliveries given up for that reason). Each
 * entry is freed once, so each delivery is counted once. */
static void win_release(hd_rtm_broker_t *b, sess_t *s, int64_t upto, int how) {
  int delivered = how == 0;
  if (b->gc_n && !b->gc_flushing) /* a receipt it settles goes out after the held publishes' answers */
    for (size_t i = 0; i < s->win_n && WIN_AT(s, i).s <= upto; i++)
      if (WIN_AT(s, i).rc) {
        rtm_gc_flush(b);
        break;
      }
  while (s->win_n) {
    out_ent_t *e = &s->win[s->win_head];
    if (e->s > upto) break;
    if (e->dlv) {
      if (delivered)
        dl_acked(b, s, e);
      else
        dl_given_up(s, how);
    }
    if (e->rc) rtm_receipt_settle(b, e->rc, delivered);
    if (e->err) s->win_errs--;
    s->win_bytes -= e->len;
    rtm_body_unref(e->body);
    s->win_head = (s->win_head + 1) & (s->win_cap - 1);
    s->win_n--;
  }
  if (!s->win_n && s->win_cap > 64) { /* a burst is over: give its ring back */
    free(s->win);
    s->win = NULL;
    s->win_cap = s->win_head = 0;
  }
}

/* ---------------------------------------------------------------- sessions */

sess_t *rtm_session_by_sid(hd_rtm_broker_t *b, const char *sid) {
  return hd_map_get(&b->by_sid, sid, strlen(sid));
}

static conn_t *conn_get(hd_rtm_broker_t *b, uint64_t id) { return hd_map_get(&b->conns, &id, sizeof id); }

void rtm_doom(hd_rtm_broker_t *b, sess_t *s, int kind) {
  if (s->doomed) return;
  s->doomed = kind;
  s->dnext = b->doomed;
  b->doomed = s;
}

/* Detached sessions wait on a list ordered by expire_at: with one grace
 * period for all, a new one almost always goes at the tail. */
static void exp_insert(hd_rtm_broker_t *b, sess_t *s) {
  sess_t *p = b->exp_tail;
  while (p && p->expire_at > s->expire_at)
    p = p->xprev;
  s->xprev = p;
  s->xnext = p ? p->xnext : b->exp_head;
  if (s->xnext)
    s->xnext->xprev = s;
  else
    b->exp_tail = s;
  if (p)
    p->xnext = s;
  else
    b->exp_head = s;
  s->in_exp = 1;
}

static void exp_remove(hd_rtm_broker_t *b, sess_t *s) {
  if (!s->in_exp) return;
  if (s->xprev)
    s->xprev->xnext = s->xnext;
  else
    b->exp_head = s->xnext;
  if (s->xnext)
    s->xnext->xprev = s->xprev;
  else
    b->exp_tail = s->xprev;
  s->xnext = s->xprev = NULL;
  s->in_exp = 0;
}

static uint32_t user_hash(const char *app, const char *user) { return hd_fnv1a_pair(app, 0x1f, user); }

ruser_t *rtm_user_get(hd_rtm_broker_t *b, const char *app, const char *user) {
  if (!b->n_ubuckets) return NULL;
  for (ruser_t *u = b->ubuckets[user_hash(app, user) & (b->n_ubuckets - 1)]; u; u = u->next)
    if (!strcmp(u->user, user) && !strcmp(u->app, app)) return u;
  return NULL;
}

/* Doubles the bucket array (power of two) when users outnumber buckets. */
static int users_grow(hd_rtm_broker_t *b) {
  if (b->n_users < b->n_ubuckets) return 0;
  size_t nb = b->n_ubuckets ? b->n_ubuckets * 2 : 256;
  ruser_t **a = calloc(nb, sizeof *a);
  if (!a) return b->n_ubuckets ? 0 : HD_ENOMEM; /* longer chains, still correct */
  for (size_t i = 0; i < b->n_ubuckets; i++)
    while (b->ubuckets[i]) {
      ruser_t *u = b->ubuckets[i];
      b->ubuckets[i] = u->next;
      size_t k = user_hash(u->app, u->user) & (nb - 1);
      u->next = a[k];
      a[k] = u;
    }
  free(b->ubuckets);
  b->ubuckets = a;
  b->n_ubuckets = nb;
  return 0;
}

static int user_add(hd_rtm_broker_t *b, sess_t *s) {
  ruser_t *u = rtm_user_get(b, s->app, s->user);
  if (!u) {
    if (users_grow(b) < 0 || !(u = calloc(1, sizeof *u))) return HD_ENOMEM;
    hd_scpy(u->app, sizeof u->app, s->app);
    hd_scpy(u->user, sizeof u->user, s->user);
    size_t k = user_hash(u->app, u->user) & (b->n_ubuckets - 1);
    u->next = b->ubuckets[k];
    b->ubuckets[k] = u;
    b->n_users++;
    if (b->cl && b->cl->user_here) b->cl->user_here(b->cl->ud, u->app, u->user, 1);
  }
  s->u = u;
  s->uprev = NULL;
  s->unext = u->sessions;
  if (s->unext) s->unext->uprev = s;
  u->sessions = s;
  u->n++;
  return 0;
}

static void user_remove(hd_rtm_broker_t *b, sess_t *s) {
  ruser_t *u = s->u;
  if (!u) return;
  if (s->uprev)
    s->uprev->unext = s->unext;
  else
    u->sessions = s->unext;
  if (s->unext) s->unext->uprev = s->uprev;
  s->u = NULL;
  if (--u->n > 0) return;
  for (ruser_t **pp = &b->ubuckets[user_hash(u->app, u->user) & (b->n_ubuckets - 1)]; *pp; pp = &(*pp)->next)
    if (*pp == u) {
      *pp = u->next;
      break;
    }
  b->n_users--;
  if (b->cl && b->cl->user_here) b->cl->user_here(b->cl->ud, u->app, u->user, 0);
  free(u);
}

static app_cnt_t *app_cnt(hd_rtm_broker_t *b, const char *app, int create) {
  for (app_cnt_t *a = b->apps; a; a = a->next)
    if (!strcmp(a->app, app)) return a;
  app_cnt_t *a = create ? calloc(1, sizeof *a) : NULL;
  if (!a) return NULL;
  hd_scpy(a->app, sizeof a->app, app);
  a->next = b->apps;
  b->apps = a;
  return a;
}

static void sess_free_mem(sess_t *s) {
  free(s->win);
  free(s->subs);
  free(s->dd);
  free(s);
}

/* Ends a session: presence events (ev), windows and receipts settled, freed. */
static void sess_end(hd_rtm_broker_t *b, sess_t *s, const char *ev, int kind) {
  while (s->n_subs)
    rtm_chan_leave(b, s, s->subs[s->n_subs - 1], ev);
  win_release(b, s, INT64_MAX, kind);
  if (s->conn) {
    conn_t *c = conn_get(b, s->conn);
    if (c) c->s = NULL;
    b->st.connections--;
  }
  hd_map_del(&b->by_sid, s->sid, strlen(s->sid));
  hd_map_del(&b->by_resume, s->resume, strlen(s->resume));
  exp_remove(b, s);
  user_remove(b, s);
  app_cnt_t *ac = app_cnt(b, s->app, 0);
  if (ac && ac->n) ac->n--;
  if (s->prev)
    s->prev->next = s->next;
  else
    b->sessions = s->next;
  if (s->next) s->next->prev = s->prev;
  b->n_sessions--;
  sess_free_mem(s);
}

/* Frees doomed sessions (overflow, logout, expiry): only those, from their
 * list. Ending one may doom others (their presence events overflow); they
 * join the list and are ended in the same loop. */
static void reap(hd_rtm_broker_t *b) {
  if (b->doomed) GC_BEFORE_OUTPUT(b); /* a held publish may name a session about to be freed */
  while (b->doomed) {
    sess_t *s = b->doomed;
    b->doomed = s->dnext;
    s->dnext = NULL;
    int kind = s->doomed;
    if (kind == 1) {
      b->st.drops++;
      if (s->conn)
        b->cfg.close(b->cfg.ud, s->conn, HD_RTM_CLOSE_OVERFLOW,
                     "overflow: session dropped; log in again and fetch history");
    }
    s->doomed = 4; /* ending: nothing more is queued to it */
    sess_end(b, s, kind == 2 ? "leave" : "timeout", kind);
  }
}

void rtm_reap(hd_rtm_broker_t *b) { reap(b); }

/* The channels of a room-scoped token (docs/rtm.md "Room-scoped tokens"):
 * "R" if R has no ':' and "room:R" (what web/room.html uses), each only if it
 * is a valid channel name as it stands (no mapping, no truncation). Distinct
 * rooms thus never share a channel: "room:X" is never the "R" of a room R
 * (that has no ':'), and "room:R" names R exactly. Empty = none. */
static void scope_name(char *out, size_t cap, const char *prefix, const char *room) {
  out[0] = 0;
  if (!*prefix && strchr(room, ':')) return;
  if (strlen(prefix) + strlen(room) >= cap) return;
  for (const char *p = room; *p; p++) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_' || c == '.' || c == ':'))
      return;
  }
  size_t pl = strlen(prefix);
  memcpy(out, prefix, pl);
  memcpy(out + pl, room, strlen(room) + 1); /* fits: checked above */
}

/* A new session; sid and resume given by an import (another node's), else drawn. */
static sess_t *sess_new_ids(hd_rtm_broker_t *b, const hd_token_claims_t *c, const char *sid,
                            const char *resume) {
  app_cnt_t *ac = app_cnt(b, c->key, 1);
  sess_t *s = ac ? calloc(1, sizeof *s) : NULL;
  if (!s) return NULL;
  if (c->room[0]) {
    s->scoped = 1;
    scope_name(s->scope[0], sizeof s->scope[0], "", c->room);
    scope_name(s->scope[1], sizeof s->scope[1], "room:", c->room);
  }
  if (sid && resume) {
    hd_scpy(s->sid, sizeof s->sid, sid);
    hd_scpy(s->resume, sizeof s->resume, resume);
  } else {
    hd_random_token(s->sid, SID_LEN);
    s->sid[0] = 'S';
    hd_random_token(s->resume, RESUME_LEN);
  }
  hd_scpy(s->app, sizeof s->app, c->key);
  s->ac = ac;
  hd_scpy(s->user, sizeof s->user, c->identity);
  s->admin = c->room_admin;
  s->writer = c->can_publish_data || c->room_admin;
  s->next_s = 1;
  if (hd_map_put(&b->by_sid, s->sid, strlen(s->sid), s) < 0) {
    free(s);
    return NULL;
  }
  if (hd_map_put(&b->by_resume, s->resume, strlen(s->resume), s) < 0) {
    hd_map_del(&b->by_sid, s->sid, strlen(s->sid));
    free(s);
    return NULL;
  }
  if (user_add(b, s) < 0) {
    hd_map_del(&b->by_sid, s->sid, strlen(s->sid));
    hd_map_del(&b->by_resume, s->resume, strlen(s->resume));
    free(s);
    return NULL;
  }
  s->next = b->sessions;
  if (s->next) s->next->prev = s;
  b->sessions = s;
  b->n_sessions++;
  ac->n++;
  return s;
}

static sess_t *sess_new(hd_rtm_broker_t *b, const hd_token_claims_t *c) {
  return sess_new_ids(b, c, NULL, NULL);
}

static void attach(hd_rtm_broker_t *b, sess_t *s, conn_t *c) {
  if (s->conn && s->conn != c->id) {
    conn_t *old = conn_get(b, s->conn);
    if (old) old->s = NULL;
    b->cfg.close(b->cfg.ud, s->conn, HD_RTM_CLOSE_REPLACED, "session resumed on another connection");
    b->st.connections--;
  }
  if (s->conn != c->id) b->st.connections++;
  s->conn = c->id;
  s->expire_at = 0;
  exp_remove(b, s);
  c->s = s;
}

static json_t *welcome(hd_rtm_broker_t *b, const sess_t *s, const char *id, int resumed, int64_t last) {
  json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:b,s:I,s:i,s:{s:I,s:I,s:I,s:I}}", "type", "welcome", "session",
                        s->sid, "resume", s->resume, "user", s->user, "resumed", resumed, "last",
                        (json_int_t)last, "proto", HD_RTM_PROTOCOL_VERSION, "limits", "max_msg",
                        (json_int_t)b->cfg.max_msg, "window", (json_int_t)b->cfg.window_msgs, "grace_ms",
                        (json_int_t)(b->cfg.resume_grace / 1000), "rate", (json_int_t)b->cfg.rate);
  if (o && id) json_object_set_new(o, "id", json_string(id));
  return o;
}

/* Ends the identity's resumable session (no connection, within its grace)
 * that was cut first. Returns 1 if there was one. */
static int replace_resumable(hd_rtm_broker_t *b, ruser_t *u) {
  sess_t *old = NULL;
  for (sess_t *x = u ? u->sessions : NULL; x; x = x->unext)
    if (!x->conn && !x->doomed && (!old || x->expire_at < old->expire_at)) old = x;
  if (!old) return 0;
  rtm_doom(b, old, 3); /* like an expiry: presence "timeout", a later resume gets 410 */
  b->st.replaced++;
  reap(b);
  return 1;
}

/* Session caps (docs/rtm.md "Session caps"): per identity, per app, per
 * node. A login over a cap first replaces a resumable session of the same
 * identity (a client that cut its connection and logs in again instead of
 * resuming); only when there is none is it refused, with why in msg. So an
 * identity looping login + cut holds at most max_sessions_per_user sessions,
 * and a tenant at most max_sessions_per_app: never the whole node. */
static int make_room(hd_rtm_broker_t *b, const hd_token_claims_t *cl, char *msg, size_t cap) {
  ruser_t *u = rtm_user_get(b, cl->key, cl->identity);
  while (u && (size_t)u->n >= b->cfg.max_sessions_per_user) {
    if (!replace_resumable(b, u)) {
      snprintf(msg, cap,
               "user \"%.64s\" already has %d connected sessions (rtm.max_sessions_per_user): "
               "log out one of them, or resume a session instead of logging in again",
               cl->identity, u->n);
      return HD_ENOSPC;
    }
    u = rtm_user_get(b, cl->key, cl->identity);
  }
  app_cnt_t *ac = app_cnt(b, cl->key, 0);
  if (ac && ac->n >= b->cfg.max_sessions_per_app && !replace_resumable(b, u)) {
    snprintf(msg, cap,
             "app \"%.64s\" has %zu sessions, its cap (rtm.max_sessions_per_app): try again later, "
             "or ask the operator to raise the cap",
             cl->key, ac->n);
    return HD_ENOSPC;
  }
  if (b->n_sessions >= b->cfg.max_sessions && !replace_resumable(b, rtm_user_get(b, cl->key, cl->identity))) {
    snprintf(msg, cap, "node session limit reached (%zu, rtm.max_sessions): try again later or another node",
             b->cfg.max_sessions);
    return HD_ENOSPC;
  }
  return 0;
}

/* The session continues on connection c: what the client lacks (s > l) is
 * replayed after the welcome. Returns 0, or -1 after an error reply. */
static int resume_on(hd_rtm_broker_t *b, sess_t *s, conn_t *c, int64_t l, const char *id) {
  if (l < 0 || l >= s->next_s) {
    direct_err(b, c->id, id, HD_RTM_ERR_BAD_REQUEST, "\"last\" is beyond what the node sent");
    return -1;
  }
  win_release(b, s, l, 0);
  if (s->win_n && s->win[s->win_head].s > l + 1) {
    /* acked past "last" earlier: the client lost messages it had acked */
    direct_err(b, c->id, id, HD_RTM_ERR_SESSION_GONE, "\"last\" is below an earlier ack");
    return -1;
  }
  attach(b, s, c);
  b->st.resumes++;
  send_direct(b, c->id, welcome(b, s, id, 1, l));
  for (size_t i = 0; i < s->win_n; i++) {
    out_ent_t *e = &WIN_AT(s, i);
    b->st.replayed++;
    ent_send(b, c->id, e);
  }
  return 0;
}

static void do_login(hd_rtm_broker_t *b, conn_t *c, const req_t *r, hd_time_t now) {
  json_t *rs = json_object_get(r->o, "resume");
  if (c->resuming) {
    direct_err(b, c->id, r->id, HD_RTM_ERR_CONFLICT, "a resume is in progress: wait for its welcome");
    return;
  }
  if (c->s) {
    rtm_err(b, c->s, r->id, HD_RTM_ERR_CONFLICT, "already logged in", NULL);
    return;
  }
  if (rs) {
    json_t *last = json_object_get(r->o, "last");
    if (!json_is_string(rs) || (last && !json_is_integer(last))) {
      direct_err(b, c->id, r->id, HD_RTM_ERR_BAD_REQUEST, "\"resume\" must be a string, \"last\" an integer");
      return;
    }
    sess_t *s = hd_map_get(&b->by_resume, json_string_value(rs), json_string_length(rs));
    int64_t l = last ? json_integer_value(last) : 0;
    if (!s && b->cl && b->cl->resume && json_string_length(rs) == RESUME_LEN && !c->resuming &&
        b->cl->resume(b->cl->ud, c->id, json_string_value(rs)) == 0) {
      /* another node may hold it: the answer comes through hd_rtm_cluster_import */
      c->resuming = 1;
      c->resume_last = l;
      hd_scpy(c->resume_id, sizeof c->resume_id, r->id ? r->id : "");
      return;
    }
    if (!s || s->doomed) {
      direct_err(b, c->id, r->id, HD_RTM_ERR_SESSION_GONE,
                 "unknown or expired session: log in again and fetch history");
      return;
    }
    resume_on(b, s, c, l, r->id);
    return;
  }
  json_t *tk = json_object_get(r->o, "token");
  if (!json_is_string(tk) || json_string_length(tk) == 0 || json_string_length(tk) > HD_TOKEN_MAX) {
    direct_err(b, c->id, r->id, HD_RTM_ERR_UNAUTHORIZED, "\"token\" (a JWT) is required");
    b->cfg.close(b->cfg.ud, c->id, HD_RTM_CLOSE_LOGIN_FAILED, "login failed");
    return;
  }
  hd_token_claims_t cl;
  char why[200];
  int64_t wall_s = (now + b->cfg.wall_offset) / 1000000;
  int rc = hd_token_verify(json_string_value(tk), json_string_length(tk), b->cfg.secret_lookup,
                           b->cfg.secret_ud, wall_s, b->cfg.token_leeway, &cl, why, sizeof why);
  if (rc == 0) rc = hd_token_authorize(&cl, NULL, HD_GRANT_RTM, why, sizeof why);
  if (rc == 0 && !cl.identity[0]) {
    rc = HD_EFORBIDDEN;
    snprintf(why, sizeof why, "token has no identity (\"sub\")");
  }
  if (rc < 0) {
    hd_rtm_errcode_t code = rc == HD_EEXPIRED     ? HD_RTM_ERR_TOKEN_EXPIRED
                            : rc == HD_EFORBIDDEN ? HD_RTM_ERR_FORBIDDEN
                                                  : HD_RTM_ERR_UNAUTHORIZED;
    direct_err(b, c->id, r->id, code, why);
    b->cfg.close(b->cfg.ud, c->id, HD_RTM_CLOSE_LOGIN_FAILED, "login failed");
    return;
  }
  char full[300];
  if (make_room(b, &cl, full, sizeof full) < 0) {
    b->st.refused_logins++;
    direct_err(b, c->id, r->id, HD_RTM_ERR_FULL, full);
    b->cfg.close(b->cfg.ud, c->id, HD_RTM_CLOSE_LOGIN_FAILED, "login failed");
    return;
  }
  sess_t *s = sess_new(b, &cl);
  if (!s) {
    direct_err(b, c->id, r->id, HD_RTM_ERR_INTERNAL, "out of memory");
    return;
  }
  attach(b, s, c);
  send_direct(b, c->id, welcome(b, s, r->id, 0, 0));
}

static void do_ack(hd_rtm_broker_t *b, sess_t *s, const req_t *r) {
  json_t *v = json_object_get(r->o, "s");
  if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= s->next_s) {
    rtm_err(b, s, r->id, HD_RTM_ERR_BAD_REQUEST, "ack needs \"s\": a sequence number the node sent", NULL);
    return;
  }
  win_release(b, s, json_integer_value(v), 0);
}

/* ---------------------------------------------------------------- API */

int hd_rtm_broker_new(hd_rtm_broker_t **out, const hd_rtm_config_t *cfg, hd_time_t now) {
  if (!out || !cfg || !cfg->send || !cfg->close || !cfg->store || !cfg->secret_lookup) return HD_EINVAL;
  hd_rtm_broker_t *b = calloc(1, sizeof *b);
  if (!b) return HD_ENOMEM;
  b->cfg = *cfg;
  b->cl = cfg->cluster;
  hd_rtm_config_t *c = &b->cfg;
  if (!c->max_msg) c->max_msg = HD_RTM_DEFAULT_MAX_MSG;
  if (!c->window_msgs) c->window_msgs = HD_RTM_DEFAULT_WINDOW_MSGS;
  if (!c->window_bytes) c->window_bytes = HD_RTM_DEFAULT_WINDOW_BYTES;
  if (!c->max_sessions) c->max_sessions = HD_RTM_DEFAULT_MAX_SESSIONS;
  /* one tenant never holds more than half the node by default */
  if (!c->max_sessions_per_app) c->max_sessions_per_app = c->max_sessions > 1 ? c->max_sessions / 2 : 1;
  if (!c->max_sessions_per_user) c->max_sessions_per_user = HD_RTM_DEFAULT_MAX_SESSIONS_PER_USER;
  if (!c->quota_channels) c->quota_channels = HD_RTM_DEFAULT_QUOTA_CHANNELS;
  if (!c->quota_bytes) c->quota_bytes = HD_RTM_DEFAULT_QUOTA_BYTES;
  if (!c->min_free_bytes) c->min_free_bytes = HD_RTM_DEFAULT_MIN_FREE;
  if (!c->resume_grace) c->resume_grace = HD_RTM_DEFAULT_RESUME_GRACE;
  if (!c->peer_timeout) c->peer_timeout = HD_RTM_DEFAULT_PEER_TIMEOUT;
  if (c->rate <= 0) c->rate = HD_RTM_DEFAULT_RATE;
  if (c->burst <= 0) c->burst = HD_RTM_DEFAULT_BURST;
  if (!c->history_keep) c->history_keep = HD_RTM_DEFAULT_HISTORY_KEEP;
  if (!c->presence_max) c->presence_max = HD_RTM_DEFAULT_PRESENCE_MAX;
  hd_rtm_locks_init(&b->locks, HD_RTM_MAX_LOCKS);
  int rc = HD_ENOMEM;
  size_t maxc = c->max_sessions * 2 + 16;
  if (hd_map_init(&b->conns, maxc) < 0 || hd_map_init(&b->by_sid, maxc) < 0 ||
      hd_map_init(&b->by_resume, maxc) < 0)
    goto fail;
  if ((rc = rtm_locks_load(b, now)) < 0) goto fail;
  *out = b;
  return 0;
fail:
  hd_rtm_broker_free(b);
  return rc;
}

void hd_rtm_broker_free(hd_rtm_broker_t *b) {
  if (!b) return;
  /* no callbacks from here on: unlink sessions without events */
  while (b->sessions) {
    sess_t *s = b->sessions;
    b->sessions = s->next;
    for (size_t i = 0; i < s->win_n; i++) {
      out_ent_t *e = &WIN_AT(s, i);
      rtm_body_unref(e->body);
      /* a settled receipt lives as long as window entries hold it */
      if (e->rc && --e->rc->refs <= 0 && e->rc->done) {
        free(e->rc);
        b->st.receipts--;
      }
    }
    sess_free_mem(s);
  }
  rtm_receipts_free_all(b);
  for (size_t i = 0; i < b->n_ubuckets; i++)
    while (b->ubuckets[i]) {
      ruser_t *u = b->ubuckets[i];
      b->ubuckets[i] = u->next;
      free(u);
    }
  free(b->ubuckets);
  while (b->apps) {
    app_cnt_t *a = b->apps;
    b->apps = a->next;
    free(a);
  }
  free(b->scratch);
  rtm_free_all_chans(b);
  for (size_t i = 0; b->conns.slots && i < b->conns.n_slots; i++)
    if (b->conns.slots[i].klen) free(b->conns.slots[i].value);
  hd_map_free(&b->conns);
  hd_map_free(&b->by_sid);
  hd_map_free(&b->by_resume);
  hd_rtm_locks_free(&b->locks);
  for (int i = 0; i < b->gc_n; i++) /* held stored publishes: unanswered, their publishers resend */
    json_decref(b->gc[i].o);
  free(b->gc);
  free(b);
}

int hd_rtm_conn_open(hd_rtm_broker_t *b, uint64_t conn, hd_time_t now) {
  b->now = now;
  if (!conn || conn_get(b, conn)) return HD_EINVAL;
  conn_t *c = calloc(1, sizeof *c);
  if (!c) return HD_ENOMEM;
  c->id = conn;
  c->tokens = b->cfg.burst;
  c->last = now;
  int rc = hd_map_put(&b->conns, &conn, sizeof conn, c);
  if (rc < 0) free(c);
  return rc;
}

/* Token bucket: rate per second, burst deep. */
static int rate_ok(hd_rtm_broker_t *b, conn_t *c, hd_time_t now) {
  if (now > c->last) {
    c->tokens += (double)(now - c->last) * b->cfg.rate / 1e6;
    if (c->tokens > b->cfg.burst) c->tokens = b->cfg.burst;
    c->last = now;
  }
  if (c->tokens < 1.0) return 0;
  c->tokens -= 1.0;
  return 1;
}

/* Reads the "id" of a request if it is a short string. */
static const char *req_id(json_t *o) {
  json_t *id = json_object_get(o, "id");
  if (json_is_string(id) && json_string_length(id) > 0 && json_string_length(id) <= HD_RTM_MAX_ID &&
      !memchr(json_string_value(id), 0, json_string_length(id)))
    return json_string_value(id);
  return NULL;
}

static void reply_err(hd_rtm_broker_t *b, conn_t *c, const char *id, hd_rtm_errcode_t code, const char *msg) {
  if (c->s)
    rtm_err(b, c->s, id, code, msg, NULL);
  else
    direct_err(b, c->id, id, code, msg);
}

/* The most frequent client message by far (one per read burst of every
 * subscriber) is an ack in the form the bundled clients write,
 * {"type":"ack","s":N}: taken without a JSON parse (a jansson object per ack
 * was the broker's largest cost after the sends). Anything else, including a
 * valid ack written differently or an "s" the node never sent, takes the full
 * path (and its error reply). Returns 1 if handled. */
static int ack_fast(hd_rtm_broker_t *b, sess_t *s, const char *t, size_t len) {
  static const char head[] = "{\"type\":\"ack\",\"s\":";
  const size_t hl = sizeof head - 1;
  if (len < hl + 2 || len > hl + 19 || memcmp(t, head, hl) || t[len - 1] != '}') return 0;
  int64_t v = 0;
  for (size_t i = hl; i < len - 1; i++) {
    if (t[i] < '0' || t[i] > '9' || (i == hl && t[i] == '0' && len - 1 - hl > 1)) return 0;
    v = v * 10 + (t[i] - '0');
  }
  if (v >= s->next_s) return 0;
  win_release(b, s, v, 0);
  return 1;
}

int hd_rtm_conn_message(hd_rtm_broker_t *b, uint64_t conn, const char *text, size_t len, hd_time_t now) {
  b->now = now;
  conn_t *c = conn_get(b, conn);
  if (!c) return HD_ENOTFOUND;
  b->st.msgs_in++;
  if (len > b->cfg.max_msg) {
    char m[96];
    snprintf(m, sizeof m, "message is %zu bytes, the cap is %zu", len, b->cfg.max_msg);
    reply_err(b, c, NULL, HD_RTM_ERR_TOO_LARGE, m);
    goto out;
  }
  if (c->s && ack_fast(b, c->s, text, len)) goto out; /* an ack never waits for the group commit */
  json_error_t je;
  json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (!o || !json_is_object(o)) {
    char m[200];
    snprintf(m, sizeof m, "not a JSON object: %s", o ? "wrong top-level type" : je.text);
    json_decref(o);
    if (!rate_ok(b, c, now)) {
      b->st.rate_limited++;
      reply_err(b, c, NULL, HD_RTM_ERR_RATE_LIMITED, "too many messages");
    } else
      reply_err(b, c, NULL, HD_RTM_ERR_BAD_REQUEST, m);
    goto out;
  }
  req_t r = {o, NULL, req_id(o)};
  json_t *t = json_object_get(o, "type");
  r.type = json_is_string(t) ? json_string_value(t) : NULL;
  /* group commit: anything but an ack or another stored publish first commits the held ones */
  if (b->gc_n && !(r.type && (!strcmp(r.type, "ack") ||
                              (!strcmp(r.type, "pub") && json_is_true(json_object_get(o, "store"))))))
    rtm_gc_flush(b);
  if (r.type && !strcmp(r.type, "ack") && c->s) { /* acks are exempt from the rate limit: cheap, no output */
    do_ack(b, c->s, &r);
  } else if (!rate_ok(b, c, now)) {
    b->st.rate_limited++;
    reply_err(b, c, r.id, HD_RTM_ERR_RATE_LIMITED, "too many messages: slow down");
  } else if (json_object_get(o, "id") && !r.id) {
    reply_err(b, c, NULL, HD_RTM_ERR_BAD_REQUEST, "\"id\" must be a string of 1..64 bytes");
  } else if (!r.type) {
    reply_err(b, c, r.id, HD_RTM_ERR_BAD_REQUEST, "missing field \"type\"");
  } else if (!strcmp(r.type, "login")) {
    do_login(b, c, &r, now);
  } else if (!c->s) {
    direct_err(b, c->id, r.id, HD_RTM_ERR_UNAUTHORIZED, "log in first");
  } else if (!strcmp(r.type, "logout")) {
    rtm_ok(b, c->s, &r, NULL);
    b->cfg.close(b->cfg.ud, c->id, HD_RTM_CLOSE_NORMAL, "logout");
    rtm_doom(b, c->s, 2);
  } else if (rtm_dispatch(b, c->s, &r, now) < 0) {
    char m[120];
    snprintf(m, sizeof m, "unknown type \"%.64s\"", r.type);
    rtm_err(b, c->s, r.id, HD_RTM_ERR_BAD_REQUEST, m, NULL);
  }
  json_decref(o);
out:
  reap(b);
  return 0;
}

void hd_rtm_conn_closed(hd_rtm_broker_t *b, uint64_t conn, hd_time_t now) {
  b->now = now;
  rtm_gc_flush(b);
  conn_t *c = conn_get(b, conn);
  if (!c) return;
  sess_t *s = c->s;
  hd_map_del(&b->conns, &conn, sizeof conn);
  free(c);
  if (s && s->conn == conn) {
    s->conn = 0;
    s->expire_at = now + b->cfg.resume_grace;
    if (!s->doomed) exp_insert(b, s);
    b->st.connections--;
  }
  reap(b);
}

void hd_rtm_tick(hd_rtm_broker_t *b, hd_time_t now) {
  b->now = now;
  rtm_gc_flush(b);
  while (b->exp_head && b->exp_head->expire_at <= now) {
    sess_t *s = b->exp_head;
    exp_remove(b, s);
    if (!s->conn && !s->doomed) {
      rtm_doom(b, s, 3); /* "timeout" presence events, no close (no connection) */
      b->st.expired++;
    }
  }
  reap(b);
  rtm_locks_tick(b, now);
  rtm_receipts_tick(b, now);
  reap(b);
}

hd_time_t hd_rtm_next_timeout(const hd_rtm_broker_t *b) {
  if (b->gc_n) return b->now; /* held publishes: answered by the next tick if no turn end came */
  hd_time_t t = hd_rtm_locks_next(&b->locks);
  if (b->exp_head && b->exp_head->expire_at < t) t = b->exp_head->expire_at;
  return hd_time_min(t, rtm_receipts_next(b));
}

int hd_rtm_pending(const hd_rtm_broker_t *b) { return b->gc_n; }

void hd_rtm_turn_end(hd_rtm_broker_t *b) {
  rtm_gc_flush(b);
  reap(b);
}

void hd_rtm_shutdown(hd_rtm_broker_t *b) {
  rtm_gc_flush(b);
  for (sess_t *s = b->sessions; s; s = s->next)
    if (s->conn) b->cfg.close(b->cfg.ud, s->conn, HD_RTM_CLOSE_SHUTDOWN, "node shutting down");
}

int hd_rtm_delivery(const hd_rtm_broker_t *b, char (*apps)[64], hd_rtm_delivery_t *out, int max) {
  int n = 0;
  for (const app_cnt_t *a = b->apps; a && n < max; a = a->next, n++) {
    memcpy(apps[n], a->app, sizeof apps[n]);
    out[n] = a->dl;
  }
  return n;
}

void hd_rtm_stats(const hd_rtm_broker_t *b, hd_rtm_stats_t *out) {
  *out = b->st;
  out->sessions = b->n_sessions;
  out->channels = b->n_chans;
  out->locks = b->locks.count;
}

int hd_rtm_metrics_text(const hd_rtm_broker_t *b, char *buf, size_t cap) {
  hd_rtm_stats_t s;
  hd_rtm_stats(b, &s);
  int n = snprintf(
      buf, cap,
      "# HELP hudong_rtm_sessions RTM sessions (attached or waiting for a resume).\n"
      "# TYPE hudong_rtm_sessions gauge\nhudong_rtm_sessions %llu\n"
      "# HELP hudong_rtm_connections RTM connections with a session.\n"
      "# TYPE hudong_rtm_connections gauge\nhudong_rtm_connections %llu\n"
      "# HELP hudong_rtm_channels RTM channels with subscribers.\n"
      "# TYPE hudong_rtm_channels gauge\nhudong_rtm_channels %llu\n"
      "# HELP hudong_rtm_locks RTM locks held.\n# TYPE hudong_rtm_locks gauge\nhudong_rtm_locks %llu\n"
      "# HELP hudong_rtm_messages_in_total RTM client messages received.\n"
      "# TYPE hudong_rtm_messages_in_total counter\nhudong_rtm_messages_in_total %llu\n"
      "# HELP hudong_rtm_messages_out_total RTM messages sent (replays included).\n"
      "# TYPE hudong_rtm_messages_out_total counter\nhudong_rtm_messages_out_total %llu\n"
      "# HELP hudong_rtm_published_total RTM channel messages published.\n"
      "# TYPE hudong_rtm_published_total counter\nhudong_rtm_published_total %llu\n"
      "# HELP hudong_rtm_errors_total RTM error replies.\n"
      "# TYPE hudong_rtm_errors_total counter\nhudong_rtm_errors_total %llu\n"
      "# HELP hudong_rtm_rate_limited_total RTM messages refused by the rate limit.\n"
      "# TYPE hudong_rtm_rate_limited_total counter\nhudong_rtm_rate_limited_total %llu\n"
      "# HELP hudong_rtm_drops_total RTM sessions dropped on window overflow (close 4008).\n"
      "# TYPE hudong_rtm_drops_total counter\nhudong_rtm_drops_total %llu\n"
      "# HELP hudong_rtm_expired_total RTM sessions not resumed within the grace period.\n"
      "# TYPE hudong_rtm_expired_total counter\nhudong_rtm_expired_total %llu\n"
      "# HELP hudong_rtm_resumes_total RTM sessions resumed.\n"
      "# TYPE hudong_rtm_resumes_total counter\nhudong_rtm_resumes_total %llu\n"
      "# HELP hudong_rtm_replayed_total RTM messages re-sent on resume.\n"
      "# TYPE hudong_rtm_replayed_total counter\nhudong_rtm_replayed_total %llu\n"
      "# HELP hudong_rtm_replaced_total RTM resumable sessions replaced by a new login of the same "
      "identity.\n"
      "# TYPE hudong_rtm_replaced_total counter\nhudong_rtm_replaced_total %llu\n"
      "# HELP hudong_rtm_refused_logins_total RTM logins refused by a session cap (node, app, identity).\n"
      "# TYPE hudong_rtm_refused_logins_total counter\nhudong_rtm_refused_logins_total %llu\n"
      "# HELP hudong_rtm_store_refused_total RTM stored publishes refused by a quota or the disk floor.\n"
      "# TYPE hudong_rtm_store_refused_total counter\nhudong_rtm_store_refused_total %llu\n"
      "# HELP hudong_rtm_errors_suppressed_total RTM error replies not sent (too many unacked errors).\n"
      "# TYPE hudong_rtm_errors_suppressed_total counter\nhudong_rtm_errors_suppressed_total %llu\n"
      "# HELP hudong_rtm_presence_quiet_total RTM presence events not sent (channel over rtm.presence_max).\n"
      "# TYPE hudong_rtm_presence_quiet_total counter\nhudong_rtm_presence_quiet_total %llu\n"
      "# HELP hudong_rtm_receipts RTM peer receipts in memory (pending, or settled and held by windows).\n"
      "# TYPE hudong_rtm_receipts gauge\nhudong_rtm_receipts %llu\n",
      (unsigned long long)s.sessions, (unsigned long long)s.connections, (unsigned long long)s.channels,
      (unsigned long long)s.locks, (unsigned long long)s.msgs_in, (unsigned long long)s.msgs_out,
      (unsigned long long)s.published, (unsigned long long)s.errors, (unsigned long long)s.rate_limited,
      (unsigned long long)s.drops, (unsigned long long)s.expired, (unsigned long long)s.resumes,
      (unsigned long long)s.replayed, (unsigned long long)s.replaced, (unsigned long long)s.refused_logins,
      (unsigned long long)s.store_refused, (unsigned long long)s.errors_suppressed,
      (unsigned long long)s.presence_quiet, (unsigned long long)s.receipts);
  if (n < 0 || (size_t)n >= cap) return HD_ENOSPC;
  /* delivery rate (docs/quality.md "Delivery rate"), summed over the apps */
  hd_rtm_delivery_t d = {0};
  for (const app_cnt_t *a = b->apps; a; a = a->next) {
    d.sent += a->dl.sent, d.owed += a->dl.owed, d.acked += a->dl.acked;
    d.overflow += a->dl.overflow, d.gone += a->dl.gone, d.expired += a->dl.expired;
    d.lat_sum_us += a->dl.lat_sum_us;
    for (int i = 0; i < HD_RTM_DLAT_BUCKETS; i++)
      d.lat_hist[i] += a->dl.lat_hist[i];
  }
  int w = snprintf(
      buf + n, cap - (size_t)n,
      "# HELP hudong_rtm_delivery_sent_total RTM channel and peer messages accepted from publishers.\n"
      "# TYPE hudong_rtm_delivery_sent_total counter\nhudong_rtm_delivery_sent_total %llu\n"
      "# HELP hudong_rtm_delivery_owed_total RTM deliveries owed (one per recipient session).\n"
      "# TYPE hudong_rtm_delivery_owed_total counter\nhudong_rtm_delivery_owed_total %llu\n"
      "# HELP hudong_rtm_delivery_acked_total RTM deliveries acknowledged by the recipient, each once.\n"
      "# TYPE hudong_rtm_delivery_acked_total counter\nhudong_rtm_delivery_acked_total %llu\n"
      "# HELP hudong_rtm_delivery_given_up_total RTM deliveries given up, by why.\n"
      "# TYPE hudong_rtm_delivery_given_up_total counter\n"
      "hudong_rtm_delivery_given_up_total{reason=\"overflow\"} %llu\n"
      "hudong_rtm_delivery_given_up_total{reason=\"gone\"} %llu\n"
      "hudong_rtm_delivery_given_up_total{reason=\"expired\"} %llu\n"
      "# HELP hudong_rtm_delivery_seconds RTM delivery latency: publish accepted to the recipient's ack.\n"
      "# TYPE hudong_rtm_delivery_seconds histogram\n",
      (unsigned long long)d.sent, (unsigned long long)d.owed, (unsigned long long)d.acked,
      (unsigned long long)d.overflow, (unsigned long long)d.gone, (unsigned long long)d.expired);
  if (w < 0 || (size_t)w >= cap - (size_t)n) return HD_ENOSPC;
  n += w;
  uint64_t cum = 0;
  for (int i = 0; i < HD_RTM_DLAT_BUCKETS; i++) {
    cum += d.lat_hist[i];
    char le[24];
    if (i < HD_RTM_DLAT_BUCKETS - 1)
      snprintf(le, sizeof le, "%g", (double)hd_rtm_dlat_le_ms[i] / 1000.0);
    else
      snprintf(le, sizeof le, "+Inf");
    w = snprintf(buf + n, cap - (size_t)n, "hudong_rtm_delivery_seconds_bucket{le=\"%s\"} %llu\n", le,
                 (unsigned long long)cum);
    if (w < 0 || (size_t)w >= cap - (size_t)n) return HD_ENOSPC;
    n += w;
  }
  w = snprintf(buf + n, cap - (size_t)n,
               "hudong_rtm_delivery_seconds_sum %.6f\nhudong_rtm_delivery_seconds_count %llu\n",
               (double)d.lat_sum_us / 1e6, (unsigned long long)d.acked);
  if (w < 0 || (size_t)w >= cap - (size_t)n) return HD_ENOSPC;
  return n + w;
}

/* ---------------------------------------------------------------- multi-node */

int hd_rtm_pos_cmp(hd_rtm_pos_t a, hd_rtm_pos_t b) {
  if (a.ms != b.ms) return a.ms < b.ms ? -1 : 1;
  return a.seq < b.seq ? -1 : a.seq > b.seq;
}

int hd_rtm_pos_parse(const char *s, size_t len, hd_rtm_pos_t *out) {
  uint64_t v[2] = {0, 0};
  int k = 0, digits = 0;
  for (size_t i = 0; i < len; i++) {
    char ch = s[i];
    if (ch == '-' && k == 0 && digits) {
      k = 1;
      digits = 0;
    } else if (ch >= '0' && ch <= '9' && v[k] <= (UINT64_MAX - 9) / 10) {
      v[k] = v[k] * 10 + (uint64_t)(ch - '0');
      digits++;
    } else {
      return HD_EINVAL;
    }
  }
  if (!digits) return HD_EINVAL;
  out->ms = v[0];
  out->seq = v[1];
  return 0;
}

void hd_rtm_pos_str(hd_rtm_pos_t p, char out[48]) {
  snprintf(out, 48, "%llu-%llu", (unsigned long long)p.ms, (unsigned long long)p.seq);
}

/* The session moves to node `to` (its client resumed there): its state goes
 * out as JSON, then it ends here without a presence change in the log (the
 * importing node takes the user's presence over before this node's share is
 * dropped, so the others see no leave/join). Its unacked deliveries are owed
 * by the other node from now on. */
int hd_rtm_cluster_export(hd_rtm_broker_t *b, const char *resume, const char *to, char **out, size_t *len,
                          hd_time_t now) {
  b->now = now;
  sess_t *s = resume ? hd_map_get(&b->by_resume, resume, strlen(resume)) : NULL;
  if (!s || s->doomed || !b->cl) return HD_ENOTFOUND;
  json_t *o = json_pack("{s:i,s:s,s:s,s:s,s:s,s:s,s:b,s:b,s:[s,s],s:I,s:s}", "v", 1, "node", b->cl->node,
                        "sid", s->sid, "resume", s->resume, "app", s->app, "user", s->user, "admin", s->admin,
                        "scoped", s->scoped, "scope", s->scope[0], s->scope[1], "next_s",
                        (json_int_t)s->next_s, "to", to ? to : "");
  json_t *w = json_array(), *dd = json_array(), *subs = json_array(), *rcs = json_array();
  if (!o || !w || !dd || !subs || !rcs) {
    json_decref(o), json_decref(w), json_decref(dd), json_decref(subs), json_decref(rcs);
    return HD_ENOMEM;
  }
  for (size_t i = 0; i < s->win_n; i++) {
    out_ent_t *e = &WIN_AT(s, i);
    json_t *x = json_pack("{s:I,s:s%,s:b,s:b}", "s", (json_int_t)e->s, "b", e->body->text, e->body->len, "d",
                          e->dlv, "e", e->err);
    /* a pending peer receipt goes along: the ack there answers it (rtm_receipt_moves below) */
    if (x && e->rc && !e->rc->done && b->cl->peer_result)
      json_object_set_new(x, "r", json_pack("[s,s,s]", e->rc->sender, e->rc->id, e->rc->to));
    json_array_append_new(w, x);
  }
  for (int i = 0; s->dd && i < HD_RTM_PUB_DEDUPE; i++) {
    const dd_ent_t *d = &s->dd[(s->dd_next + i) % HD_RTM_PUB_DEDUPE]; /* oldest first */
    if (d->id[0]) json_array_append_new(dd, json_pack("[s,I]", d->id, (json_int_t)d->cseq));
  }
  while (s->n_subs) {
    chan_t *c = s->subs[s->n_subs - 1];
    char pos[48];
    hd_rtm_pos_str(c->pos, pos);
    json_t *x = json_pack("{s:s,s:s}", "ch", c->name, "pos", pos);
    json_object_set_new(x, "left", json_boolean(rtm_chan_move_out(b, s, c))); /* may free c */
    json_array_append_new(subs, x);
  }
  /* its peer messages still waiting for an outcome: answered on `to` */
  rtm_receipts_forward(b, s->sid, to, rcs);
  json_object_set_new(o, "win", w);
  json_object_set_new(o, "dd", dd);
  json_object_set_new(o, "subs", subs);
  json_object_set_new(o, "rc", rcs);
  char *t = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  /* the window leaves with it: not acked, not given up here (owed there) */
  while (s->win_n) {
    out_ent_t *e = &s->win[s->win_head];
    if (e->dlv && s->ac->dl.owed) s->ac->dl.owed--;
    if (e->rc) rtm_receipt_moves(b, e->rc); /* pending: now waits for `to`'s answer */
    if (e->err) s->win_errs--;
    s->win_bytes -= e->len;
    rtm_body_unref(e->body);
    s->win_head = (s->win_head + 1) & (s->win_cap - 1);
    s->win_n--;
  }
  if (s->conn) {
    conn_t *c = conn_get(b, s->conn);
    if (c) c->s = NULL;
    b->cfg.close(b->cfg.ud, s->conn, HD_RTM_CLOSE_REPLACED, "session resumed on another node");
    b->st.connections--;
    s->conn = 0;
  }
  sess_end(b, s, "leave", 2); /* no subscriptions, no window left: no event */
  reap(b);
  if (!t) return HD_ENOMEM;
  *out = t;
  *len = strlen(t);
  return 0;
}

static const char *jstr(json_t *o, const char *k) {
  const char *v = json_string_value(json_object_get(o, k));
  return v ? v : "";
}

/* Rebuilds an exported session on this node. Returns it, or NULL with why. */
static sess_t *import_session(hd_rtm_broker_t *b, json_t *o, char *why, size_t cap) {
  hd_token_claims_t cl;
  memset(&cl, 0, sizeof cl);
  const char *sid = jstr(o, "sid"), *resume = jstr(o, "resume");
  if (json_integer_value(json_object_get(o, "v")) != 1 || strlen(sid) != SID_LEN ||
      strlen(resume) != RESUME_LEN || hd_scpy(cl.key, sizeof cl.key, jstr(o, "app")) < 0 ||
      hd_scpy(cl.identity, sizeof cl.identity, jstr(o, "user")) < 0 || !cl.key[0] || !cl.identity[0]) {
    snprintf(why, cap, "the session's state from the other node is unreadable: log in again");
    return NULL;
  }
  cl.room_admin = json_is_true(json_object_get(o, "admin"));
  if (make_room(b, &cl, why, cap) < 0) return NULL;
  sess_t *s = sess_new_ids(b, &cl, sid, resume);
  if (!s) {
    snprintf(why, cap, "out of memory");
    return NULL;
  }
  json_t *sc = json_object_get(o, "scope");
  s->scoped = json_is_true(json_object_get(o, "scoped"));
  hd_scpy(s->scope[0], sizeof s->scope[0], json_string_value(json_array_get(sc, 0)) ?: "");
  hd_scpy(s->scope[1], sizeof s->scope[1], json_string_value(json_array_get(sc, 1)) ?: "");
  s->next_s = json_integer_value(json_object_get(o, "next_s"));
  if (s->next_s < 1) s->next_s = 1;
  size_t i;
  json_t *x;
  const char *from = jstr(o, "node");
  json_array_foreach(json_object_get(o, "win"), i, x) {
    json_t *bt = json_object_get(x, "b");
    size_t bl = json_string_length(bt);
    char *full = malloc(bl + 2);
    body_t *bd = NULL;
    if (full) {
      memcpy(full, json_string_value(bt), bl);
      full[bl] = '}';
      bd = rtm_body_new(full, bl + 1);
      free(full);
    }
    /* the ring may hold up to a power of two: the count cap is window_msgs */
    if (!bd || s->win_n >= (size_t)b->cfg.window_msgs || win_grow(s, b->cfg.window_msgs) < 0) {
      rtm_body_unref(bd);
      break; /* cannot happen within the same window caps; the gap ends the session at the client */
    }
    out_ent_t *e = &WIN_AT(s, s->win_n);
    memset(e, 0, sizeof *e);
    e->s = json_integer_value(json_object_get(x, "s"));
    e->body = bd;
    char tail[40];
    e->len = bd->len + (size_t)ent_tail(bd, e->s, tail, sizeof tail);
    e->dlv = json_is_true(json_object_get(x, "d"));
    e->err = json_is_true(json_object_get(x, "e"));
    e->t0 = b->now;
    if (e->dlv) s->ac->dl.owed++;
    if (e->err) s->win_errs++;
    json_t *r = json_object_get(x, "r"); /* a peer receipt the old node waits for: answered there */
    const char *rs = json_string_value(json_array_get(r, 0)), *ri = json_string_value(json_array_get(r, 1)),
               *rt = json_string_value(json_array_get(r, 2));
    if (rs && ri && rt && from[0] && strlen(rs) == SID_LEN && strlen(ri) <= HD_RTM_MAX_ID &&
        strlen(rt) <= HD_RTM_MAX_USER && strlen(from) < sizeof e->rc->node)
      e->rc = rtm_receipt_moved_in(b, from, rs, ri, rt, b->now); /* NULL: the old node's deadline answers */
    s->win_n++;
    s->win_bytes += e->len;
  }
  json_array_foreach(json_object_get(o, "dd"), i, x) {
    const char *id = json_string_value(json_array_get(x, 0));
    if (id && strlen(id) <= HD_RTM_MAX_ID) {
      if (!s->dd && !(s->dd = calloc(HD_RTM_PUB_DEDUPE, sizeof *s->dd))) break;
      hd_scpy(s->dd[s->dd_next].id, sizeof s->dd[0].id, id);
      s->dd[s->dd_next].cseq = json_integer_value(json_array_get(x, 1));
      s->dd_next = (s->dd_next + 1) % HD_RTM_PUB_DEDUPE;
    }
  }
  json_array_foreach(json_object_get(o, "rc"), i, x) { /* outcomes the old node forwards here */
    const char *id = json_string_value(json_array_get(x, 0)), *to = json_string_value(json_array_get(x, 1));
    if (id && to && strlen(id) <= HD_RTM_MAX_ID && strlen(to) <= HD_RTM_MAX_USER)
      rtm_receipt_adopt(b, s->sid, id, to, b->now);
  }
  json_array_foreach(json_object_get(o, "subs"), i, x) {
    hd_rtm_pos_t pos;
    const char *ch = jstr(x, "ch");
    if (hd_rtm_pos_parse(jstr(x, "pos"), strlen(jstr(x, "pos")), &pos) < 0) continue;
    chan_t *c = rtm_chan_get(b, s->app, ch, 1);
    if (!c) {
      rtm_doom(b, s, 1); /* the log is unreachable: the client logs in again and refills */
      break;
    }
    /* the session saw the channel up to pos over there: give it what this
     * node fanned out after pos, or bring this node up to pos first */
    int cmp = hd_rtm_pos_cmp(pos, c->pos);
    if ((cmp < 0 && rtm_chan_fill(b, s, c, pos, c->pos) < 0) ||
        (cmp > 0 && rtm_chan_catch_up(b, c, pos) < 0) ||
        rtm_chan_join(b, s, c, from, json_is_true(json_object_get(x, "left"))) < 0) {
      rtm_chan_maybe_free(b, c);
      rtm_doom(b, s, 1);
      break;
    }
  }
  return s;
}

int hd_rtm_cluster_import(hd_rtm_broker_t *b, uint64_t conn, const char *state, size_t len, hd_time_t now) {
  b->now = now;
  conn_t *c = conn_get(b, conn);
  if (!c || !c->resuming) return HD_ENOTFOUND;
  c->resuming = 0;
  const char *id = c->resume_id[0] ? c->resume_id : NULL;
  json_t *o = state ? json_loadb(state, len, 0, NULL) : NULL;
  char why[300];
  sess_t *s = NULL;
  if (!o)
    snprintf(why, sizeof why, "unknown or expired session: log in again and fetch history");
  else
    s = import_session(b, o, why, sizeof why);
  json_decref(o);
  if (!s) {
    direct_err(b, c->id, id, HD_RTM_ERR_SESSION_GONE, why);
  } else if (s->doomed || resume_on(b, s, c, c->resume_last, id) < 0) {
    if (s->doomed)
      direct_err(b, c->id, id, HD_RTM_ERR_SESSION_GONE,
                 "the session could not move here: log in again and fetch history");
    else {
      s->expire_at = now + b->cfg.resume_grace;
      exp_insert(b, s);
    }
  }
  reap(b);
  return 0;
}
