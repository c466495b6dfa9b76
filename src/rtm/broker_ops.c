/* RTM broker requests (docs/rtm.md "Messages"): channels (sub, unsub, pub with
 * per-channel sequence numbers, hist), presence (who, state, join/leave/
 * timeout events), attributes (attr_set/attr_del/attr_get with revisions and
 * compare-and-set, change events), TTL locks (lock_acquire/lock_release/
 * lock_steal/lock_get, events) and peer messages with delivery receipts.
 *
 * Fan-out: channel_deliver() is the one place a channel event reaches
 * subscribers; the body is serialised once and each session's copy only gets
 * its own "s" spliced in. A multi-node relay hooks in there (docs/rtm.md
 * "Multi-node"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/hash.h"
#include "base/str.h"
#include "rtm/broker_internal.h"

/* ---------------------------------------------------------------- fields */

/* A string member: required or not, length min..max, no NUL. Returns 1 and
 * sets *out, 0 if absent and optional, -1 after replying an error. */
static int fstr(hd_rtm_broker_t *b, sess_t *s, const req_t *r, const char *key, int req, size_t min,
                size_t max, const char **out) {
  json_t *v = json_object_get(r->o, key);
  char m[160];
  *out = NULL;
  if (!v || json_is_null(v)) {
    if (!req) return 0;
    snprintf(m, sizeof m, "missing field \"%s\"", key);
    rtm_err(b, s, r->id, HD_RTM_ERR_BAD_REQUEST, m, NULL);
    return -1;
  }
  if (!json_is_string(v) || memchr(json_string_value(v), 0, json_string_length(v))) {
    snprintf(m, sizeof m, "field \"%s\" must be a string", key);
    rtm_err(b, s, r->id, HD_RTM_ERR_BAD_REQUEST, m, NULL);
    return -1;
  }
  size_t n = json_string_length(v);
  if (n > max || n < min) {
    snprintf(m, sizeof m, "field \"%s\" must be %zu..%zu bytes", key, min, max);
    rtm_err(b, s, r->id, n > max ? HD_RTM_ERR_TOO_LARGE : HD_RTM_ERR_BAD_REQUEST, m, NULL);
    return -1;
  }
  *out = json_string_value(v);
  return 1;
}

static int fint(hd_rtm_broker_t *b, sess_t *s, const req_t *r, const char *key, int64_t min, int64_t max,
                int64_t def, int64_t *out) {
  json_t *v = json_object_get(r->o, key);
  *out = def;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
    char m[160];
    snprintf(m, sizeof m, "field \"%s\" must be an integer in %lld..%lld", key, (long long)min,
             (long long)max);
    rtm_err(b, s, r->id, HD_RTM_ERR_BAD_REQUEST, m, NULL);
    return -1;
  }
  *out = json_integer_value(v);
  return 1;
}

static int valid_name(const char *c) {
  for (; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-' ||
          *c == '_' || *c == '.' || *c == ':'))
      return 0;
  return 1;
}

/* A room-scoped session may use only its room's channels (broker_internal.h),
 * and with a publish hook its room's hook channels (prefix + R + ":" + name). */
static int in_scope(const hd_rtm_broker_t *b, const sess_t *s, const char *ch) {
  if (!s->scoped || (s->scope[0][0] && !strcmp(ch, s->scope[0])) ||
      (s->scope[1][0] && !strcmp(ch, s->scope[1])))
    return 1;
  const char *px = b->cfg.pub_hook ? b->cfg.hook_prefix : NULL;
  size_t pl = px ? strlen(px) : 0, rl = strlen(s->scope[0]);
  return px && rl && !strncmp(ch, px, pl) && !strncmp(ch + pl, s->scope[0], rl) && ch[pl + rl] == ':' &&
         ch[pl + rl + 1];
}

/* The "ch" member: a valid channel name within the session's scope. */
static int fchan(hd_rtm_broker_t *b, sess_t *s, const req_t *r, const char **ch) {
  if (fstr(b, s, r, "ch", 1, 1, HD_RTM_MAX_CHANNEL, ch) < 0) return -1;
  if (!valid_name(*ch)) {
    rtm_err(b, s, r->id, HD_RTM_ERR_BAD_REQUEST, "field \"ch\": use 1..64 of A-Z a-z 0-9 - _ . :", NULL);
    return -1;
  }
  if (!in_scope(b, s, *ch)) {
    char m[300];
    if (s->scope[0][0] || s->scope[1][0])
      snprintf(
          m, sizeof m,
          "this token is scoped to a room: it may use only channel%s \"%s%s%s\"; use a token without a room "
          "for other channels",
          s->scope[0][0] && s->scope[1][0] ? "s" : "", s->scope[0],
          s->scope[0][0] && s->scope[1][0] ? "\", \"" : "", s->scope[1]);
    else
      snprintf(
          m, sizeof m,
          "this token is scoped to a room whose name gives no channel (it has characters outside A-Z a-z "
          "0-9 - _ . :, or is too long): it may use no channel; use a token without a room");
    rtm_err(b, s, r->id, HD_RTM_ERR_FORBIDDEN, m, NULL);
    return -1;
  }
  return 0;
}

/* ---------------------------------------------------------------- channels */

static uint32_t hash(const char *app, const char *name) { return hd_fnv1a_pair(app, 0x1f, name); }

chan_t *rtm_chan_get(hd_rtm_broker_t *b, const char *app, const char *name, int create) {
  uint32_t h = hash(app, name) % CHAN_BUCKETS;
  for (chan_t *c = b->buckets[h]; c; c = c->next)
    if (!strcmp(c->name, name) && !strcmp(c->app, app)) return c;
  if (!create) return NULL;
  chan_t *c = calloc(1, sizeof *c);
  if (!c || hd_scpy(c->app, sizeof c->app, app) < 0 || hd_scpy(c->name, sizeof c->name, name) < 0) {
    free(c);
    return NULL;
  }
  if (b->cl) { /* the node follows the channel's log from here */
    if (b->cl->chan_open(b->cl->ud, app, name, &c->cseq, &c->pos) < 0) {
      free(c);
      return NULL;
    }
    c->hwm = c->cseq;
  } else {
    /* the sequence continues above everything ever assigned (survives restarts) */
    if (b->cfg.store->ops->seq_get(b->cfg.store, app, name, &c->hwm) < 0) {
      free(c);
      return NULL;
    }
    c->cseq = c->hwm;
  }
  c->next = b->buckets[h];
  b->buckets[h] = c;
  b->n_chans++;
  return c;
}

static void chan_free(chan_t *c) {
  for (size_t i = 0; i < c->n_mem; i++)
    free(c->mem[i].state);
  free(c->mem);
  free(c->subs);
  free(c);
}

void rtm_chan_maybe_free(hd_rtm_broker_t *b, chan_t *c) {
  if (c->n_subs || c->n_mem || c->gc_pending) return;
  if (b->cl) b->cl->chan_close(b->cl->ud, c->app, c->name);
  /* give back the unused reservation so that the next use continues at cseq + 1 */
  else if (c->cseq < c->hwm)
    b->cfg.store->ops->seq_put(b->cfg.store, c->app, c->name, c->cseq);
  uint32_t h = hash(c->app, c->name) % CHAN_BUCKETS;
  for (chan_t **pp = &b->buckets[h]; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      b->n_chans--;
      chan_free(c);
      return;
    }
}

void rtm_free_all_chans(hd_rtm_broker_t *b) {
  for (int i = 0; i < CHAN_BUCKETS; i++)
    while (b->buckets[i]) {
      chan_t *c = b->buckets[i];
      b->buckets[i] = c->next;
      chan_free(c);
    }
  b->n_chans = 0;
}

/* Every subscriber of c gets o (consumed). dlv: o is a channel message, one
 * delivery owed per subscriber session (broker.h hd_rtm_delivery_t); events
 * (presence, attributes, locks) are not counted. */
void rtm_channel_deliver_as(hd_rtm_broker_t *b, chan_t *c, json_t *o, int dlv) {
  char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  body_t *bd = t ? rtm_body_new(t, strlen(t)) : NULL;
  free(t);
  if (!bd) return;
  /* one body for every subscriber: each window entry holds a reference */
  for (size_t i = 0; i < c->n_subs; i++) {
    if (dlv)
      rtm_push_delivery(b, c->subs[i], bd, NULL);
    else
      rtm_push_body(b, c->subs[i], bd, NULL);
  }
  rtm_body_unref(bd);
}

static void channel_deliver(hd_rtm_broker_t *b, chan_t *c, json_t *o) { rtm_channel_deliver_as(b, c, o, 0); }

static member_t *member(chan_t *c, const char *user) {
  for (size_t i = 0; i < c->n_mem; i++)
    if (!strcmp(c->mem[i].user, user)) return &c->mem[i];
  return NULL;
}

static json_t *presence_obj(const chan_t *c, const char *ev, const char *user, const char *state) {
  json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "type", "pres", "ch", c->name, "ev", ev, "user", user);
  if (o && state) json_object_set_new(o, "state", json_string(state));
  return o;
}

/* Cluster: the presence change goes to the shared member table, which logs
 * the event when the user's cluster-wide presence changes (node NULL: this
 * node's share; else another node's, on a session move). */
static int presence_shared(hd_rtm_broker_t *b, chan_t *c, const char *ev, const char *user, const char *node,
                           const char *state) {
  int op = !strcmp(ev, "join")    ? HD_RTM_PRES_JOIN
           : !strcmp(ev, "leave") ? HD_RTM_PRES_LEAVE
           : !strcmp(ev, "state") ? HD_RTM_PRES_STATE
                                  : HD_RTM_PRES_TIMEOUT;
  json_t *o = presence_obj(c, ev, user, state);
  char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  int rc = t ? b->cl->presence(b->cl->ud, c->app, c->name, user, node, op, state, t,
                               b->cfg.presence_max > 0 ? b->cfg.presence_max : 0)
             : HD_ENOMEM;
  free(t);
  return rc;
}

/* Presence events go out only in channels of at most presence_max members
 * (docs/rtm.md "Presence"): in a channel of n members every join is
 * delivered to n subscribers, so n joins cost n^2/2 deliveries (500 000 for
 * 1000 members, the whole cost of filling a big channel). Large channels use
 * `who` instead, as Agora's "announce max" does. */
static void presence_event(hd_rtm_broker_t *b, chan_t *c, const char *ev, const char *user,
                           const char *state) {
  if (b->cl) {
    presence_shared(b, c, ev, user, NULL, state);
    return;
  }
  size_t n = c->n_mem + (!strcmp(ev, "leave") || !strcmp(ev, "timeout")); /* a leaver counts */
  if (b->cfg.presence_max > 0 && n > (size_t)b->cfg.presence_max) {
    b->st.presence_quiet++;
    return;
  }
  channel_deliver(b, c, presence_obj(c, ev, user, state));
}

static int is_sub(const sess_t *s, const chan_t *c) {
  for (int i = 0; i < s->n_subs; i++)
    if (s->subs[i] == c) return 1;
  return 0;
}

void rtm_chan_leave(hd_rtm_broker_t *b, sess_t *s, chan_t *c, const char *ev) {
  for (int i = 0; i < s->n_subs; i++)
    if (s->subs[i] == c) {
      s->subs[i] = s->subs[--s->n_subs];
      break;
    }
  for (size_t i = 0; i < c->n_subs; i++)
    if (c->subs[i] == s) {
      c->subs[i] = c->subs[--c->n_subs];
      break;
    }
  member_t *m = member(c, s->user);
  if (m && --m->count <= 0) {
    free(m->state);
    *m = c->mem[--c->n_mem];
    presence_event(b, c, ev, s->user, NULL);
  }
  rtm_chan_maybe_free(b, c);
}

/* Room for one more subscription of s and subscriber of c (m: the user's
 * member entry in c, NULL if new). */
static int sub_room(sess_t *s, chan_t *c, member_t *m) {
  if (s->n_subs == s->cap_subs) { /* grown on demand: an idle session keeps little */
    int nc = s->cap_subs ? s->cap_subs * 2 : 2;
    if (nc > HD_RTM_MAX_SUBS) nc = HD_RTM_MAX_SUBS;
    chan_t **a = realloc(s->subs, (size_t)nc * sizeof *a);
    if (!a) return HD_ENOMEM;
    s->subs = a;
    s->cap_subs = nc;
  }
  if ((c->n_subs == c->cap_subs || (!m && c->n_mem == c->cap_mem))) {
    size_t ns = c->cap_subs ? c->cap_subs * 2 : 8, nm = c->cap_mem ? c->cap_mem * 2 : 8;
    sess_t **a = c->n_subs == c->cap_subs ? realloc(c->subs, ns * sizeof *a) : c->subs;
    if (a) {
      c->subs = a;
      if (c->n_subs == c->cap_subs) c->cap_subs = ns;
    }
    member_t *mm = !m && c->n_mem == c->cap_mem ? realloc(c->mem, nm * sizeof *mm) : c->mem;
    if (mm) {
      c->mem = mm;
      if (!m && c->n_mem == c->cap_mem) c->cap_mem = nm;
    }
    if (!a || !mm) return HD_ENOMEM;
  }
  return 0;
}

static void do_sub(hd_rtm_broker_t *b, sess_t *s, const req_t *r) {
  const char *name;
  if (fchan(b, s, r, &name) < 0) return;
  chan_t *c = rtm_chan_get(b, s->app, name, 1);
  if (!c) {
    rtm_err(b, s, r->id, HD_RTM_ERR_INTERNAL, "cannot create the channel", NULL);
    return;
  }
  if (is_sub(s, c)) {
    rtm_ok(b, s, r, json_pack("{s:s,s:I}", "ch", name, "cseq", (json_int_t)c->cseq));
    return;
  }
  if (s->n_subs >= HD_RTM_MAX_SUBS) {
    rtm_err(b, s, r->id, HD_RTM_ERR_FULL, "too many subscriptions (64 per session)", NULL);
    rtm_chan_maybe_free(b, c);
    return;
  }
  member_t *m = member(c, s->user);
  if (sub_room(s, c, m) < 0) {
    rtm_err(b, s, r->id, HD_RTM_ERR_INTERNAL, "out of memory", NULL);
    rtm_chan_maybe_free(b, c);
    return;
  }
  c->subs[c->n_subs++] = s;
  s->subs[s->n_subs++] = c;
  /* the reply comes before the join event: cseq is where this session's stream starts */
  rtm_ok(b, s, r, json_pack("{s:s,s:I}", "ch", name, "cseq", (json_int_t)c->cseq));
  if (m) {
    m->count++;
    return;
  }
  m = &c->mem[c->n_mem++];
  memset(m, 0, sizeof *m);
  hd_scpy(m->user, sizeof m->user, s->user);
  m->count = 1;
  presence_event(b, c, "join", s->user, NULL);
}

/* The channel of a request the session must be subscribed to. */
static chan_t *subscribed(hd_rtm_broker_t *b, sess_t *s, const req_t *r) {
  const char *name;
  if (fchan(b, s, r, &name) < 0) return NULL;
  chan_t *c = rtm_chan_get(b, s->app, name, 0);
  if (!c || !is_sub(s, c)) {
    rtm_err(b, s, r->id, HD_RTM_ERR_NOT_FOUND, "not subscribed to this channel", NULL);
    return NULL;
  }
  return c;
}

static void do_unsub(hd_rtm_broker_t *b, sess_t *s, const req_t *r) {
  chan_t *c = subscribed(b, s, r);
  if (!c) return;
  json_t *ok = json_pack("{s:s}", "ch", c->name);
  rtm_chan_leave(b, s, c, "leave"); /* may free c */
  rtm_ok(b, s, r, ok);
}

/* Remembered publish/peer ids: a retry after a resume is answered, not redone. */
static int64_t *dedupe_find(sess_t *s, const char *id) {
  for (int i = 0; s->dd && i < HD_RTM_PUB_DEDUPE; i++)
    if (s->dd[i].id[0] && !strcmp(s->dd[i].id, id)) return &s->dd[i].cseq;
  return NULL;
}

void rtm_dedupe_add(sess_t *s, const char *id, int64_t cseq) {
  /* allocated on the first publish with an id: most sessions never publish */
  if (!s->dd && !(s->dd = calloc(HD_RTM_PUB_DEDUPE, sizeof *s->dd))) return;
  hd_scpy(s->dd[s->dd_next].id, sizeof s->dd[0].id, id);
  s->dd[s->dd_next].cseq = cseq;
  s->dd_next = (s->dd_next + 1) % HD_RTM_PUB_DEDUPE;
}

/* 507 storage_full: which limit, the usage, and what to do. */
void rtm_store_refused(hd_rtm_broker_t *b, sess_t *s, const req_t *r, const hd_rtm_store_limits_t *lim,
                       const hd_rtm_usage_t *u) {
  char m[400];
  b->st.store_refused++;
  if (u->refused == HD_RTM_STORE_DISK_FLOOR)
    snprintf(m, sizeof m,
             "the node's disk is nearly full (%lld MiB free, floor rtm.min_free_mb = %lld MiB): stored "
             "publishes are refused; publish with \"store\":false, or ask the operator to free disk space",
             (long long)(u->disk_free >> 20), (long long)(lim->min_free_bytes >> 20));
  else if (u->refused == HD_RTM_STORE_QUOTA_CHANNELS)
    snprintf(
        m, sizeof m,
        "this app has stored history in %lld channels, its quota (rtm.quota_channels): store in a "
        "channel that already has history, publish with \"store\":false, or ask the operator to raise it",
        (long long)u->channels);
  else
    snprintf(m, sizeof m,
             "this app stores %lld bytes of history, its quota is %lld (rtm.quota_mb): publish with "
             "\"store\":false, or ask the operator to raise it",
             (long long)u->bytes, (long long)lim->app_bytes);
  rtm_err(b, s, r->id, HD_RTM_ERR_STORAGE_FULL, m, NULL);
}

/* JSON text of o split where an integer goes: pre ends with "key": and post
 * holds the remaining members of tail (an object) and the closing brace. */
static int splice_parts(json_t *head, const char *key, json_t *tail, char **pre, char **post) {
  char *h = head ? json_dumps(head, JSON_COMPACT) : NULL, *t = tail ? json_dumps(tail, JSON_COMPACT) : NULL;
  json_decref(head);
  json_decref(tail);
  *pre = *post = NULL;
  if (h && t && strlen(h) >= 2 && strlen(t) >= 2) {
    size_t hl = strlen(h), tl = strlen(t);
    *pre = malloc(hl + strlen(key) + 8);
    *post = malloc(tl + 2);
    if (*pre && *post) {
      snprintf(*pre, hl + strlen(key) + 8, "%.*s%s\"%s\":", (int)(hl - 1), h, hl > 2 ? "," : "", key);
      snprintf(*post, tl + 2, "%s%s", tl > 2 ? "," : "", t + 1);
    }
  }
  free(h);
  free(t);
  if (*pre && *post) return 0;
  free(*pre);
  free(*post);
  *pre = *post = NULL;
  return HD_ENOMEM;
}

static void unavailable(hd_rtm_broker_t *b, sess_t *s, const req_t *r, const char *what) {
  char m[200];
  snprintf(m, sizeof m, "the cluster's shared state (Redis) did not answer: %s; retry in a moment (same id)",
           what);
  rtm_err(b, s, r->id, HD_RTM_ERR_UNAVAILABLE, m, NULL);
}

/* Cluster publish: the log assigns cseq and every node (this one included)
 * fans the message out when it reads it back, all in the log's order. */
static void pub_shared(hd_rtm_broker_t *b, sess_t *s, const req_t *r, chan_t *c, const char *data, int store,
                       hd_time_t now) {
  char *pre, *post;
  int64_t cseq = 0;
  hd_rtm_stored_msg_t m = {0, rtm_wall_ms(b, now), s->user, data};
  int rc = splice_parts(json_pack("{s:s,s:s}", "type", "msg", "ch", c->name), "cseq",
                        json_pack("{s:s,s:s}", "from", s->user, "data", data), &pre, &post);
  char pid[HD_RTM_MAX_ID + 80];
  if (r->id) snprintf(pid, sizeof pid, "%s:%s", s->sid, r->id);
  if (rc == 0)
    rc = b->cl->publish(b->cl->ud, s->app, c->name, pre, post, c->cseq, &m, store, b->cfg.history_keep,
                        r->id ? pid : NULL, &cseq);
  free(pre);
  free(post);
  if (rc < 0) {
    unavailable(b, s, r, "not published");
  } else {
    b->st.published++; /* rc 1: an earlier try, whose answer was lost, was published: counted now */
    s->ac->dl.sent++;
    if (r->id) rtm_dedupe_add(s, r->id, cseq);
    rtm_ok(b, s, r,
           rc == 1 ? json_pack("{s:s,s:I,s:b}", "ch", c->name, "cseq", (json_int_t)cseq, "dup", 1)
                   : json_pack("{s:s,s:I}", "ch", c->name, "cseq", (json_int_t)cseq));
  }
  rtm_chan_maybe_free(b, c);
}

static void do_pub(hd_rtm_broker_t *b, sess_t *s, const req_t *r, hd_time_t now) {
  const char *name, *data;
  if (fchan(b, s, r, &name) < 0 || fstr(b, s, r, "data", 1, 0, b->cfg.max_msg, &data) < 0) return;
  json_t *st = json_object_get(r->o, "store");
  if (st && !json_is_boolean(st)) {
    rtm_err(b, s, r->id, HD_RTM_ERR_BAD_REQUEST, "field \"store\" must be true or false", NULL);
    return;
  }
  if (r->id && b->gc_n && rtm_gc_holds(b, s, r->id)) rtm_gc_flush(b); /* a resend of a held one: its answer */
  int64_t *seen = r->id ? dedupe_find(s, r->id) : NULL;
  if (seen) {
    rtm_ok(b, s, r, json_pack("{s:s,s:I,s:b}", "ch", name, "cseq", (json_int_t)*seen, "dup", 1));
    return;
  }
  int held = st && json_is_true(st) && b->cfg.group_commit && !b->cl;
  /* the cap's flush answers held publishes and may free their channel (no
   * subscriber, nothing pending): so before this one's channel is looked up */
  if (held && b->gc_n >= HD_RTM_GC_MAX) rtm_gc_flush(b);
  chan_t *c = rtm_chan_get(b, s->app, name, 1);
  if (!c) {
    if (b->cl)
      unavailable(b, s, r, "not published");
    else
      rtm_err(b, s, r->id, HD_RTM_ERR_INTERNAL, "cannot open the channel", NULL);
    return;
  }
  char *hooked = NULL;
  const char *px = b->cfg.pub_hook ? b->cfg.hook_prefix : NULL;
  if (px && !strncmp(name, px, strlen(px))) { /* the hook keeps its own log: never stored here */
    hd_rtm_hook_pub_t hp = {s->app, s->user, name, data, strlen(data), s->writer, rtm_wall_ms(b, now)};
    char hm[256] = "", owner[128] = "";
    /* cluster: the hook's state (a board) lives on one node, its owner */
    int oc = b->cl && b->cl->hook_owner ? b->cl->hook_owner(b->cl->ud, s->app, name, owner) : 0;
    if (oc < 0) {
      rtm_chan_maybe_free(b, c);
      unavailable(b, s, r, "not published");
      return;
    }
    if (oc > 0) {
      rtm_err(b, s, r->id, HD_RTM_ERR_CONFLICT,
              "this board's state is on another node of the cluster: connect to that node (the room's node "
              "from /api/route) to change it",
              json_pack("{s:s}", "node", owner));
      rtm_chan_maybe_free(b, c);
      return;
    }
    int hc = b->cfg.pub_hook(b->cfg.hook_ud, &hp, &hooked, hm, sizeof hm);
    if (hc > 0 && hc < HD_RTM_ERR_COUNT) {
      rtm_err(b, s, r->id, (hd_rtm_errcode_t)hc, hm, NULL);
      rtm_chan_maybe_free(b, c);
      return;
    }
    if (hooked) data = hooked;
    st = NULL;
  }
  if (b->cl) { /* a board channel's hook ran here: its participants share this node (docs/whiteboard.md) */
    pub_shared(b, s, r, c, data, st && json_is_true(st), now);
    free(hooked);
    return;
  }
  if (held && st && b->gc_n < HD_RTM_GC_MAX) { /* hooked channels are never stored: st is NULL */
    if (rtm_gc_hold(b, s, r, c, data, now) == 0) return;
  }
  hd_rtm_store_t *sto = b->cfg.store;
  int64_t cseq = c->cseq + 1;
  if (cseq > c->hwm) { /* reserve a block of sequence numbers first: never reused after a restart */
    if (sto->ops->seq_put(sto, s->app, name, c->hwm + SEQ_RESERVE) < 0) {
      rtm_err(b, s, r->id, HD_RTM_ERR_INTERNAL, "store failure", NULL);
      free(hooked);
      rtm_chan_maybe_free(b, c);
      return;
    }
    c->hwm += SEQ_RESERVE;
  }
  if (st && json_is_true(st)) {
    hd_rtm_stored_msg_t m = {cseq, rtm_wall_ms(b, now), s->user, data};
    hd_rtm_store_limits_t lim = {b->cfg.history_keep, b->cfg.quota_channels > 0 ? b->cfg.quota_channels : 0,
                                 b->cfg.quota_bytes > 0 ? b->cfg.quota_bytes : 0,
                                 b->cfg.min_free_bytes > 0 ? b->cfg.min_free_bytes : 0};
    hd_rtm_usage_t use = {0};
    int rc = sto->ops->msg_append(sto, s->app, name, &m, &lim, &use);
    if (rc == HD_ENOSPC && use.refused) {
      rtm_store_refused(b, s, r, &lim, &use);
      rtm_chan_maybe_free(b, c);
      return;
    }
    if (rc < 0) {
      rtm_err(b, s, r->id, HD_RTM_ERR_INTERNAL, "store failure: not published", NULL);
      rtm_chan_maybe_free(b, c);
      return;
    }
  }
  c->cseq = cseq;
  b->st.published++;
  s->ac->dl.sent++;
  if (r->id) rtm_dedupe_add(s, r->id, cseq);
  /* the ack first: a publisher that is also a subscriber sees ok, then its message */
  rtm_ok(b, s, r, json_pack("{s:s,s:I}", "ch", name, "cseq", (json_int_t)cseq));
  rtm_channel_deliver_as(b, c,
                         json_pack("{s:s,s:s,s:I,s:s,s:s}", "type", "msg", "ch", name, "cseq",
                                   (json_int_t)cseq, "from", s->user, "data", data),
                         1);
  free(hooked);
  rtm_chan_maybe_free(b, c);
}

typedef struct {
  json_t *arr;
  size_t bytes, budget;
  int more, oom;
  int64_t last;         /* cseq of the last message in the page */
  int64_t skipped;      /* cseq of the first message that did not fit (0: none) */
  size_t skipped_bytes; /* its size in the reply */
} hist_ctx_t;

static int hist_cb(void *ud, const hd_rtm_stored_msg_t *m) {
  hist_ctx_t *h = ud;
  json_t *o = json_pack("{s:I,s:I,s:s,s:s}", "cseq", (json_int_t)m->cseq, "ts", (json_int_t)m->ts_ms, "from",
                        m->from, "data", m->data);
  if (!o) {
    h->oom = 1;
    return -1;
  }
  size_t n = json_dumpb(o, NULL, 0, JSON_COMPACT) + 1; /* exact, escapes included; + its comma */
  if (h->bytes + n > h->budget) {
    h->more = 1;
    h->skipped = m->cseq;
    h->skipped_bytes = n;
    json_decref(o);
    return -1;
  }
  h->bytes += n;
  h->last = m->cseq;
  json_array_append_new(h->arr, o);
  return 0;
}

/* History is paged to fit the session's window (docs/rtm.md "History"): a
 * reply is one window entry, and one bigger than what the window has free
 * would end the session with 4008. A page takes at most half the window
 * (and HD_RTM_MAX_OUT), and leaves a quarter of the window free for live
 * traffic; the client acks before asking for the next page. "next" is the
 * cursor for that page (after = next). */
static void do_hist(hd_rtm_broker_t *b, sess_t *s, const req_t *r) {
  const char *name;
  hd_rtm_hist_query_t q = {HD_RTM_HIST_NONE, HD_RTM_HIST_NONE, 0};
  int64_t lim;
  if (fchan(b, s, r, &name) < 0 || fint(b, s, r, "limit", 1, HD_RTM_HIST_MAX, 50, &lim) < 0 ||
      fint(b, s, r, "after", 0, INT64_MAX, HD_RTM_HIST_NONE, &q.after) < 0 ||
      fint(b, s, r, "since", 0, INT64_MAX, HD_RTM_HIST_NONE, &q.since) < 0)
    return;
  if (q.after >= 0 && q.since >= 0) {
    rtm_err(b, s, r->id, HD_RTM_ERR_BAD_REQUEST, "give \"after\" or \"since\", not both", NULL);
    return;
  }
  q.limit = (int)lim;
  size_t wb = b->cfg.window_bytes, overhead = 160 + strlen(name) + (r->id ? strlen(r->id) : 0);
  size_t cap = wb / 2 < HD_RTM_MAX_OUT ? wb / 2 : HD_RTM_MAX_OUT;
  size_t used = s->win_bytes + wb / 4, page = wb > used ? wb - used : 0;
  if (page > cap) page = cap;
  hist_ctx_t h = {json_array(), 0, page > overhead ? page - overhead : 0, 0, 0, 0, 0, 0};
  int n = !h.arr  ? HD_ENOMEM
          : b->cl ? b->cl->hist(b->cl->ud, s->app, name, &q, hist_cb, &h)
                  : b->cfg.store->ops->msg_query(b->cfg.store, s->app, name, &q, hist_cb, &h);
  if (n < 0 || h.oom) {
    json_decref(h.arr);
    if (b->cl && !h.oom)
      unavailable(b, s, r, "no history");
    else
      rtm_err(b, s, r->id, HD_RTM_ERR_INTERNAL, "store failure", NULL);
    return;
  }
  if (!json_array_size(h.arr) && h.skipped && h.skipped_bytes + overhead > cap) {
    /* even an acked window cannot carry it: say so, and how to skip it */
    char m[300];
    json_decref(h.arr);
    snprintf(m, sizeof m,
             "stored message %lld is %zu bytes in a reply, more than a history page can carry with this "
             "window (rtm.window_bytes): skip it with after=%lld",
             (long long)h.skipped, h.skipped_bytes, (long long)h.skipped);
    rtm_err(b, s, r->id, HD_RTM_ERR_TOO_LARGE, m, json_pack("{s:I}", "next", (json_int_t)h.skipped));
    return;
  }
  int more = h.more || n == q.limit;
  json_t *ok = json_pack("{s:s,s:o,s:b}", "ch", name, "msgs", h.arr, "more", more);
  /* the next page's cursor; an empty page with more (the window is full of
   * unacked messages) says: ack, then ask again from the same place */
  int64_t next = json_array_size(h.arr) ? h.last : h.skipped ? h.skipped - 1 : q.after;
  if (ok && more && next >= 0) json_object_set_new(ok, "next", json_integer(next));
  rtm_ok(b, s, r, ok);
}

static int who_cb(void *ud, const char *user, const char *state) {
  json_t *u = json_pack("{s:s}", "user", user);
  if (u && state) json_object_set_new(u, "state", json_string(state));
  return json_array_append_new(ud, u);
}

static void do_who(hd_rtm_broker_t *b, sess_t *s, const req_t *r) {
  const char *name;
  if (fchan(b, s, r, &name) < 0) return;
  if (b->cl) { /* the cluster's members, every node's */
    json_t *a = json_array();
    if (!a || b->cl->who(b->cl->ud, s->app, name, who_cb, a) < 0) {
      json_decref(a);
      unavailable(b, s, r, "no member list");
      return;
    }
    rtm_ok(b, s, r, json_pack("{s:s,s:o}", "ch", name, "users", a));
    return;
  }
  chan_t *c = rtm_chan_get(b, s->app, name, 0);
  json_t *a = json_array();
  for (size_t i = 0; c && a && i < c->n_mem; i++) {
    json_t *u = json_pack("{s:s}", "user", c->mem[i].user);
    if (u && c->mem[i].state) json_object_set_new(u, "state", json_string(c->mem[i].state));
    json_array_append_new(a, u);
  }
  rtm_ok(b, s, r, json_pack("{s:s,s:o}", "ch", name, "users", a ? a : json_array()));
}

static void do_state(hd_rtm_broker_t *b, sess_t *s, const req_t *r) {
  const char *st;
  chan_t *c = subscribed(b, s, r);
  if (!c || fstr(b, s, r, "state", 1, 0, HD_RTM_MAX_STATE, &st) < 0) return;
  member_t *m = member(c, s->user);
  char *d = strdup(st);
  if (!m || !d) {
    free(d);
    rtm_err(b, s, r->id, HD_RTM_ERR_INTERNAL, "out of memory", NULL);
    return;
  }
  free(m->state);
  m->state = d;
  rtm_ok(b, s, r, json_pack("{s:s}", "ch", c->name));
  presence_event(b, c, "state", s->user, st);
}

/* ---------------------------------------------------------------- attributes */

/* Scope of an attribute request: "ch" or "user" (exactly one). */
static int fscope(hd_rtm_broker_t *b, sess_t *s, const req_t *r, hd_rtm_scope_t *sc, const char **name) {
  const char *ch, *user;
  if (fstr(b, s, r, "user", 0, 1, HD_RTM_MAX_USER, &user) < 0) return -1;
  if (json_object_get(r->o, "ch") || !user) {
    if (user) {
      rtm_err(b, s, r->id, HD_RTM_ERR_BAD_REQUEST, "give \"ch\" or \"user\", not both", NULL);
      return -1;
    }
    if (fchan(b, s, r, &ch) < 0) return -1;
    *sc = HD_RTM_SCOPE_CHANNEL;
    *name = ch;
    return 0;
  }
  if (s->scoped && strcmp(user, s->user)) {
    rtm_err(b, s, r->id, HD_RTM_ERR_FORBIDDEN,
            "a room-scoped token reaches only its own user attributes; use a token without a room", NULL);
    return -1;
  }
  *sc = HD_RTM_SCOPE_USER;
  *name = user;
  return 0;
}

/* A user attribute change goes to the user's own sessions and to everyone
 * subscribed to a channel where the user is present (each session once). In
 * a cluster the user's presence is partly elsewhere: the channels come from
 * the shared member table too (cl->user_event, which also hands the event to
 * the other nodes). */
typedef struct {
  hd_rtm_broker_t *b;
  body_t *bd;
  const char *app;
  uint32_t mk;
} uev_ctx_t;

static int uev_chan(void *ud, const char *ch) {
  uev_ctx_t *x = ud;
  chan_t *c = rtm_chan_get(x->b, x->app, ch, 0);
  for (size_t k = 0; c && k < c->n_subs; k++) {
    sess_t *o2 = c->subs[k];
    if (o2->mark == x->mk) continue;
    o2->mark = x->mk;
    rtm_push_body(x->b, o2, x->bd, NULL);
  }
  return 0;
}

static void user_event_local(hd_rtm_broker_t *b, uev_ctx_t *x, const char *user) {
  ruser_t *u = rtm_user_get(b, x->app, user);
  for (sess_t *s = u ? u->sessions : NULL; s; s = s->unext) {
    if (s->mark != x->mk) {
      s->mark = x->mk;
      rtm_push_body(b, s, x->bd, NULL);
    }
    for (int i = 0; i < s->n_subs; i++)
      uev_chan(x, s->subs[i]->name);
  }
}

static void user_attr_event(hd_rtm_broker_t *b, const char *app, const char *user, json_t *o) {
  char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  body_t *bd = t ? rtm_body_new(t, strlen(t)) : NULL;
  if (bd) {
    uev_ctx_t x = {b, bd, app, ++b->mark};
    user_event_local(b, &x, user);
    if (b->cl && b->cl->user_event) /* fails only with Redis away (the shell logs it): then here only */
      b->cl->user_event(b->cl->ud, app, user, t, uev_chan, &x);
  }
  free(t);
  rtm_body_unref(bd);
}

void hd_rtm_cluster_user_event(hd_rtm_broker_t *b, const char *app, const char *user, const char *body,
                               const char *const *chs, int n, hd_time_t now) {
  b->now = now;
  body_t *bd = rtm_body_new(body, strlen(body));
  if (!bd) return;
  uev_ctx_t x = {b, bd, app, ++b->mark};
  user_event_local(b, &x, user);
  for (int i = 0; i < n; i++)
    uev_chan(&x, chs[i]);
  rtm_body_unref(bd);
  rtm_reap(b);
}

static void do_attr_set(hd_rtm_broker_t *b, sess_t *s, const req_t *r, int del) {
  hd_rtm_scope_t sc;
  const char *name, *key, *value = NULL;
  int64_t expect;
  if (fscope(b, s, r, &sc, &name) < 0 || fstr(b, s, r, "key", 1, 1, HD_RTM_MAX_KEY, &key) < 0 ||
      (!del && fstr(b, s, r, "value", 1, 0, HD_RTM_MAX_VALUE, &value) < 0) ||
      fint(b, s, r, "rev", 0, INT64_MAX, -1, &expect) < 0)
    return;
  if (sc == HD_RTM_SCOPE_USER && strcmp(name, s->user) && !s->admin) {
    rtm_err(b, s, r->id, HD_RTM_ERR_FORBIDDEN, "only the user itself or an admin sets user attributes", NULL);
    return;
  }
  int64_t rev = 0;
  const char *sk = sc == HD_RTM_SCOPE_CHANNEL ? "ch" : "user";
  int rc;
  if (b->cl) { /* CAS in the shared table; a channel's event is logged with it */
    char *pre, *post;
    rc = splice_parts(json_pack("{s:s,s:s,s:s,s:o}", "type", "attr", sk, name, "key", key, "value",
                                value ? json_string(value) : json_null()),
                      "rev", json_pack("{s:s}", "by", s->user), &pre, &post);
    if (rc == 0) {
      rc =
          b->cl->attr_cas(b->cl->ud, s->app, sc, name, key, value, expect, HD_RTM_MAX_ATTRS, pre, post, &rev);
      if (rc < 0 && rc != HD_ESTATE && rc != HD_ENOTFOUND && rc != HD_ENOSPC) {
        free(pre), free(post);
        unavailable(b, s, r, "not changed");
        return;
      }
    }
    free(pre);
    free(post);
  } else {
    rc = b->cfg.store->ops->attr_cas(b->cfg.store, s->app, sc, name, key, value, expect, HD_RTM_MAX_ATTRS,
                                     &rev);
  }
  if (rc == HD_ESTATE) {
    rtm_err(b, s, r->id, HD_RTM_ERR_CONFLICT, "revision mismatch",
            json_pack("{s:I}", "rev", (json_int_t)rev));
    return;
  }
  if (rc == HD_ENOTFOUND) {
    rtm_err(b, s, r->id, HD_RTM_ERR_NOT_FOUND, "no such attribute", NULL);
    return;
  }
  if (rc == HD_ENOSPC) {
    rtm_err(b, s, r->id, HD_RTM_ERR_FULL, "too many attributes (128 per channel or user)", NULL);
    return;
  }
  if (rc < 0) {
    rtm_err(b, s, r->id, HD_RTM_ERR_INTERNAL, "store failure", NULL);
    return;
  }
  rtm_ok(b, s, r, json_pack("{s:s,s:s,s:I}", sk, name, "key", key, "rev", (json_int_t)rev));
  json_t *ev = json_pack("{s:s,s:s,s:s,s:o,s:I,s:s}", "type", "attr", sk, name, "key", key, "value",
                         value ? json_string(value) : json_null(), "rev", (json_int_t)rev, "by", s->user);
  if (sc == HD_RTM_SCOPE_CHANNEL && b->cl) {
    json_decref(ev); /* logged with the change: every node's subscribers get it from there */
  } else if (sc == HD_RTM_SCOPE_CHANNEL) {
    chan_t *c = rtm_chan_get(b, s->app, name, 0);
    if (c)
      channel_deliver(b, c, ev);
    else
      json_decref(ev);
  } else
    user_attr_event(b, s->app, name, ev);
}

static int attr_cb(void *ud, const hd_rtm_attr_t *a) {
  json_array_append_new(
      ud, json_pack("{s:s,s:s,s:I}", "key", a->key, "value", a->value, "rev", (json_int_t)a->rev));
  return 0;
}

static void do_attr_get(hd_rtm_broker_t *b, sess_t *s, const req_t *r) {
  hd_rtm_scope_t sc;
  const char *name;
  if (fscope(b, s, r, &sc, &name) < 0) return;
  json_t *a = json_array();
  int n = !a      ? HD_ENOMEM
          : b->cl ? b->cl->attr_list(b->cl->ud, s->app, sc, name, attr_cb, a)
                  : b->cfg.store->ops->attr_list(b->cfg.store, s->app, sc, name, attr_cb, a);
  if (n < 0 && b->cl && a) {
    json_decref(a);
    unavailable(b, s, r, "no attributes");
    return;
  }
  if (n < 0) {
    json_decref(a);
    rtm_err(b, s, r->id, HD_RTM_ERR_INTERNAL, "store failure", NULL);
    return;
  }
  rtm_ok(b, s, r, json_pack("{s:s,s:o}", sc == HD_RTM_SCOPE_CHANNEL ? "ch" : "user", name, "attrs", a));
}

/* ---------------------------------------------------------------- locks */

static void lock_event(hd_rtm_broker_t *b, const char *app, const char *ch, const char *name, const char *ev,
                       const char *owner) {
  chan_t *c = rtm_chan_get(b, app, ch, 0);
  if (c)
    channel_deliver(
        b, c,
        json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", "lock", "ch", ch, "name", name, "ev", ev, "owner", owner));
}

static void lock_expired(void *ud, const hd_rtm_lock_t *l) {
  hd_rtm_broker_t *b = ud;
  b->cfg.store->ops->lock_del(b->cfg.store, l->app, l->ch, l->name);
  lock_event(b, l->app, l->ch, l->name, "expired", l->owner);
}

void rtm_locks_tick(hd_rtm_broker_t *b, hd_time_t now) {
  hd_rtm_locks_expire(&b->locks, now, lock_expired, b);
}

typedef struct {
  hd_rtm_broker_t *b;
  hd_time_t now;
} load_ctx_t;

static int lock_load_cb(void *ud, const char *app, const hd_rtm_lock_rec_t *l) {
  load_ctx_t *x = ud;
  char prev[128];
  /* wall ms -> the caller's clock; an expired one fires at the first tick */
  hd_time_t exp = l->exp_ms * 1000 - x->b->cfg.wall_offset;
  hd_rtm_locks_acquire(&x->b->locks, app, l->ch, l->name, l->owner, exp, 1, INT64_MIN, prev);
  return 0;
}

int rtm_locks_load(hd_rtm_broker_t *b, hd_time_t now) {
  load_ctx_t x = {b, now};
  if (b->cl) return 0; /* the cluster's locks live in its shared table */
  int n = b->cfg.store->ops->lock_load(b->cfg.store, lock_load_cb, &x);
  return n < 0 ? n : 0;
}

static int lockl_cb(void *ud, const char *name, const char *owner, int64_t exp_ms) {
  return json_array_append_new(
      ud, json_pack("{s:s,s:s,s:I}", "name", name, "owner", owner, "exp", (json_int_t)exp_ms));
}

/* Cluster locks: one shared table, arbitrated atomically there (by Redis's
 * clock); the events are logged in the channel by the same step. */
static void lock_shared(hd_rtm_broker_t *b, sess_t *s, const req_t *r, int op, const char *ch,
                        const char *name, int64_t ttl) {
  if (op == 'g') {
    json_t *a = json_array();
    if (!a || b->cl->lock_list(b->cl->ud, s->app, ch, lockl_cb, a) < 0) {
      json_decref(a);
      unavailable(b, s, r, "no lock list");
      return;
    }
    rtm_ok(b, s, r, json_pack("{s:s,s:o}", "ch", ch, "locks", a));
    return;
  }
  if (op == 's' && !s->admin) {
    rtm_err(b, s, r->id, HD_RTM_ERR_FORBIDDEN, "lock_steal needs an admin token (roomAdmin)", NULL);
    return;
  }
  char prev[128] = "";
  int64_t exp = 0;
  int rc = b->cl->lock(b->cl->ud, op, s->app, ch, name, s->user, ttl, s->admin, prev, &exp);
  if (rc == HD_ESTATE)
    rtm_err(b, s, r->id, HD_RTM_ERR_CONFLICT, "the lock is held", json_pack("{s:s}", "owner", prev));
  else if (rc == HD_ENOTFOUND)
    rtm_err(b, s, r->id, HD_RTM_ERR_NOT_FOUND, "no such lock", NULL);
  else if (rc == HD_EFORBIDDEN)
    rtm_err(b, s, r->id, HD_RTM_ERR_FORBIDDEN, "the lock is held by another user", NULL);
  else if (rc == HD_ENOSPC)
    rtm_err(b, s, r->id, HD_RTM_ERR_FULL, "cannot take the lock: the lock table is full", NULL);
  else if (rc < 0)
    unavailable(b, s, r, "lock unchanged");
  else if (op == 'r')
    rtm_ok(b, s, r, json_pack("{s:s,s:s}", "ch", ch, "name", name));
  else
    rtm_ok(b, s, r, json_pack("{s:s,s:s,s:I}", "ch", ch, "name", name, "exp", (json_int_t)exp));
}

static void do_lock(hd_rtm_broker_t *b, sess_t *s, const req_t *r, hd_time_t now, int op) {
  const char *ch, *name;
  int64_t ttl;
  if (fchan(b, s, r, &ch) < 0 || fstr(b, s, r, "name", op != 'g', 1, HD_RTM_MAX_KEY, &name) < 0 ||
      fint(b, s, r, "ttl", 100, HD_RTM_MAX_LOCK_TTL / 1000, 30000, &ttl) < 0)
    return;
  hd_rtm_store_t *sto = b->cfg.store;
  char prev[128];
  if (b->cl) {
    lock_shared(b, s, r, op, ch, name, ttl);
    return;
  }
  if (op == 'g') { /* lock_get: the channel's live locks */
    json_t *a = json_array();
    for (hd_rtm_lock_t *l = b->locks.head; l && a; l = l->next)
      if (l->exp > now && !strcmp(l->app, s->app) && !strcmp(l->ch, ch))
        json_array_append_new(a, json_pack("{s:s,s:s,s:I}", "name", l->name, "owner", l->owner, "exp",
                                           (json_int_t)rtm_wall_ms(b, l->exp)));
    rtm_ok(b, s, r, json_pack("{s:s,s:o}", "ch", ch, "locks", a ? a : json_array()));
    return;
  }
  if (op == 's' && !s->admin) {
    rtm_err(b, s, r->id, HD_RTM_ERR_FORBIDDEN, "lock_steal needs an admin token (roomAdmin)", NULL);
    return;
  }
  if (op == 'r') {
    int rc = hd_rtm_locks_release(&b->locks, s->app, ch, name, s->admin ? NULL : s->user, now);
    if (rc == HD_ENOTFOUND) {
      rtm_err(b, s, r->id, HD_RTM_ERR_NOT_FOUND, "no such lock", NULL);
      return;
    }
    if (rc == HD_EFORBIDDEN) {
      rtm_err(b, s, r->id, HD_RTM_ERR_FORBIDDEN, "the lock is held by another user", NULL);
      return;
    }
    sto->ops->lock_del(sto, s->app, ch, name);
    rtm_ok(b, s, r, json_pack("{s:s,s:s}", "ch", ch, "name", name));
    lock_event(b, s->app, ch, name, "released", s->user);
    return;
  }
  hd_time_t exp = now + HD_MS(ttl);
  int rc = hd_rtm_locks_acquire(&b->locks, s->app, ch, name, s->user, exp, op == 's', now, prev);
  if (rc == HD_ESTATE) {
    rtm_err(b, s, r->id, HD_RTM_ERR_CONFLICT, "the lock is held", json_pack("{s:s}", "owner", prev));
    return;
  }
  if (rc < 0) {
    rtm_err(b, s, r->id, rc == HD_ENOSPC ? HD_RTM_ERR_FULL : HD_RTM_ERR_INTERNAL, "cannot take the lock",
            NULL);
    return;
  }
  hd_rtm_lock_rec_t rec = {ch, name, s->user, rtm_wall_ms(b, exp)};
  if (sto->ops->lock_put(sto, s->app, &rec) < 0) {
    hd_rtm_locks_release(&b->locks, s->app, ch, name, NULL, now);
    rtm_err(b, s, r->id, HD_RTM_ERR_INTERNAL, "store failure", NULL);
    return;
  }
  rtm_ok(b, s, r, json_pack("{s:s,s:s,s:I}", "ch", ch, "name", name, "exp", (json_int_t)rec.exp_ms));
  if (strcmp(prev, s->user))
    lock_event(b, s->app, ch, name, op == 's' && prev[0] ? "stolen" : "acquired", s->user);
}

/* ---------------------------------------------------------------- peer messages */

/* Pending receipts are on a list ordered by deadline (one peer_timeout for
 * all: new ones go at the tail); a settled one leaves the list and is freed
 * when no window entry holds it any more. */
static void receipt_link(hd_rtm_broker_t *b, receipt_t *rc) {
  receipt_t *p = b->receipts_tail;
  while (p && p->deadline > rc->deadline)
    p = p->prev;
  rc->prev = p;
  rc->next = p ? p->next : b->receipts;
  if (rc->next)
    rc->next->prev = rc;
  else
    b->receipts_tail = rc;
  if (p)
    p->next = rc;
  else
    b->receipts = rc;
}

/* Done: the nodes that have not answered stop holding it (hd_rtm_cluster_peer_result
 * looks at pending receipts only, so their answers would never drop those
 * references: before, a receipt leaked per message answered by a local ack or
 * the deadline while another node still owed its answer). */
static void receipt_done(hd_rtm_broker_t *b, receipt_t *rc) {
  if (rc->done) return;
  rc->done = 1;
  rc->refs -= rc->nodes_pending;
  rc->nodes_pending = 0;
  if (rc->prev)
    rc->prev->next = rc->next;
  else
    b->receipts = rc->next;
  if (rc->next)
    rc->next->prev = rc->prev;
  else
    b->receipts_tail = rc->prev;
  rc->next = rc->prev = NULL;
}

static receipt_t *receipt_new(hd_rtm_broker_t *b) {
  receipt_t *rc = calloc(1, sizeof *rc);
  if (rc) b->st.receipts++;
  return rc;
}

static void receipt_free(hd_rtm_broker_t *b, receipt_t *rc) {
  if (!rc) return;
  free(rc);
  b->st.receipts--;
}

static void receipt_free_if_done(hd_rtm_broker_t *b, receipt_t *rc) {
  if (rc->refs <= 0 && rc->done) receipt_free(b, rc);
}

/* Window entries have dropped theirs (hd_rtm_broker_free), and a done
 * receipt is held by window entries only: what is left is pending. */
void rtm_receipts_free_all(hd_rtm_broker_t *b) {
  while (b->receipts) {
    receipt_t *r = b->receipts;
    b->receipts = r->next;
    receipt_free(b, r);
  }
  b->receipts_tail = NULL;
}

static void receipt_fail(hd_rtm_broker_t *b, receipt_t *rc, const char *why) {
  receipt_done(b, rc);
  /* the sender is on another node (or its session moved there since): that
   * node decides (its other nodes may still ack) */
  const char *there = rc->node[0] ? rc->node : rc->fwd;
  if (there[0]) {
    if (b->cl && b->cl->peer_result) b->cl->peer_result(b->cl->ud, there, rc->sender, rc->id, 0);
    return;
  }
  sess_t *snd = rtm_session_by_sid(b, rc->sender);
  if (snd && !snd->doomed)
    rtm_err_result(b, snd, rc->id, HD_RTM_ERR_NOT_DELIVERED, why, json_pack("{s:s}", "to", rc->to));
}

void rtm_receipt_settle(hd_rtm_broker_t *b, receipt_t *rc, int delivered) {
  rc->refs--;
  if (!rc->done && delivered) {
    receipt_done(b, rc);
    const char *there = rc->node[0] ? rc->node : rc->fwd;
    if (there[0]) {
      if (b->cl && b->cl->peer_result) b->cl->peer_result(b->cl->ud, there, rc->sender, rc->id, 1);
      receipt_free_if_done(b, rc);
      return;
    }
    sess_t *snd = rtm_session_by_sid(b, rc->sender);
    if (snd && !snd->doomed)
      rtm_push(b, snd, json_pack("{s:s,s:s,s:s}", "type", "receipt", "id", rc->id, "to", rc->to), NULL);
  } else if (!rc->done && rc->refs <= 0)
    receipt_fail(b, rc, "the recipient's session ended before it acknowledged");
  receipt_free_if_done(b, rc);
}

void rtm_receipts_tick(hd_rtm_broker_t *b, hd_time_t now) {
  while (b->receipts && b->receipts->deadline <= now) {
    receipt_t *rc = b->receipts;
    receipt_fail(b, rc, "not acknowledged by the recipient in time");
    receipt_free_if_done(b, rc);
  }
}

/* Issue 15 review: before, a peer message whose sender's session moved to
 * another node before its outcome was known lost that outcome (this node
 * found no session to tell) and the client's retry there was taken as "on
 * its way": it never heard. */
void rtm_receipts_forward(hd_rtm_broker_t *b, const char *sid, const char *to, json_t *arr) {
  for (receipt_t *rc = b->receipts; rc && to && to[0]; rc = rc->next) /* pending only */
    if (!rc->node[0] && !strcmp(rc->sender, sid)) {
      hd_scpy(rc->fwd, sizeof rc->fwd, to);
      json_array_append_new(arr, json_pack("[s,s]", rc->id, rc->to));
    }
}

int rtm_receipt_adopt(hd_rtm_broker_t *b, const char *sid, const char *id, const char *to, hd_time_t now) {
  receipt_t *rc = receipt_new(b);
  if (!rc) return HD_ENOMEM;
  hd_scpy(rc->sender, sizeof rc->sender, sid);
  hd_scpy(rc->id, sizeof rc->id, id);
  hd_scpy(rc->to, sizeof rc->to, to);
  rc->deadline = now + b->cfg.peer_timeout; /* after the old node's own: its failure comes first */
  rc->refs = rc->nodes_pending = 1;         /* the old node's answer (dropped at the deadline) */
  receipt_link(b, rc);
  return 0;
}

/* Review 2: before, a recipient's session that moved before it acked took
 * the message along (replayed and acked on the new node) but its receipt was
 * settled here as failed: the sender got 504 for a delivered message. */
int rtm_receipt_moves(hd_rtm_broker_t *b, receipt_t *rc) {
  if (rc->done || !b->cl || !b->cl->peer_result) {
    rtm_receipt_settle(b, rc, 0);
    return 0;
  }
  rc->nodes_pending++; /* the entry's reference, now the new node's */
  return 1;
}

receipt_t *rtm_receipt_moved_in(hd_rtm_broker_t *b, const char *from, const char *sid, const char *id,
                                const char *to, hd_time_t now) {
  receipt_t *rc = receipt_new(b);
  if (!rc) return NULL;
  hd_scpy(rc->node, sizeof rc->node, from);
  hd_scpy(rc->sender, sizeof rc->sender, sid);
  hd_scpy(rc->id, sizeof rc->id, id);
  hd_scpy(rc->to, sizeof rc->to, to);
  rc->deadline = now + b->cfg.peer_timeout; /* after the old node's own: its failure comes first */
  rc->refs = 1;                             /* the imported window entry */
  receipt_link(b, rc);
  return rc;
}

hd_time_t rtm_receipts_next(const hd_rtm_broker_t *b) {
  return b->receipts ? b->receipts->deadline : HD_TIME_NEVER;
}

typedef struct {
  const char *user;
  int found;
} who_find_t;

static int who_find_cb(void *ud, const char *user, const char *state) {
  (void)state;
  who_find_t *w = ud;
  w->found |= !strcmp(w->user, user);
  return 0;
}

static void do_peer(hd_rtm_broker_t *b, sess_t *s, const req_t *r, hd_time_t now) {
  const char *to, *data;
  if (!r->id) {
    rtm_err(b, s, NULL, HD_RTM_ERR_BAD_REQUEST, "a peer message needs an \"id\" (its receipt names it)",
            NULL);
    return;
  }
  if (fstr(b, s, r, "to", 1, 1, HD_RTM_MAX_USER, &to) < 0 ||
      fstr(b, s, r, "data", 1, 0, b->cfg.max_msg, &data) < 0)
    return;
  if (dedupe_find(s, r->id)) return; /* a retry: its receipt or failure is on its way */
  if (s->scoped) {                   /* only to users present in the session's room channels */
    chan_t *c0 = rtm_chan_get(b, s->app, s->scope[0], 0), *c1 = rtm_chan_get(b, s->app, s->scope[1], 0);
    int in = (c0 && member(c0, to)) || (c1 && member(c1, to));
    for (int i = 0; !in && b->cl && i < 2; i++) /* present in the room through another node */
      if (s->scope[i][0]) {
        who_find_t w = {to, 0};
        b->cl->who(b->cl->ud, s->app, s->scope[i], who_find_cb, &w);
        in = w.found;
      }
    if (!in) {
      rtm_err(b, s, r->id, HD_RTM_ERR_FORBIDDEN,
              "a room-scoped token sends peer messages only to users present in its room's channel",
              json_pack("{s:s}", "to", to));
      return;
    }
  }
  int n = 0;
  ruser_t *u = rtm_user_get(b, s->app, to);
  for (sess_t *t = u ? u->sessions : NULL; t; t = t->unext)
    n += !t->doomed;
  receipt_t *rc = receipt_new(b);
  json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "type", "peer", "from", s->user, "pid", r->id, "data", data);
  char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (!rc || !t) {
    receipt_free(b, rc);
    free(t);
    rtm_err(b, s, r->id, HD_RTM_ERR_INTERNAL, "out of memory", NULL);
    return;
  }
  int nodes = 0; /* cluster: other nodes holding sessions of `to`, each one reference until it answers */
  if (b->cl && b->cl->peer && b->cl->peer(b->cl->ud, s->app, to, s->sid, r->id, t, &nodes) < 0) {
    nodes = 0;
    if (!n) { /* cannot tell whether the user is online elsewhere */
      receipt_free(b, rc);
      free(t);
      unavailable(b, s, r, "not sent");
      return;
    }
  }
  if (!n && !nodes) {
    receipt_free(b, rc);
    free(t);
    rtm_err(b, s, r->id, HD_RTM_ERR_OFFLINE, "the user has no session", json_pack("{s:s}", "to", to));
    return;
  }
  rtm_dedupe_add(s, r->id, -1);
  hd_scpy(rc->sender, sizeof rc->sender, s->sid);
  hd_scpy(rc->id, sizeof rc->id, r->id);
  hd_scpy(rc->to, sizeof rc->to, to);
  rc->deadline = now + b->cfg.peer_timeout;
  rc->refs = n + nodes + 1; /* +1 held while fanning out, so that an early failure cannot free it */
  rc->nodes_pending = nodes;
  receipt_link(b, rc);
  s->ac->dl.sent++;
  body_t *bd = rtm_body_new(t, strlen(t));
  free(t);
  for (sess_t *x = u ? u->sessions : NULL, *nx; x; x = nx) {
    nx = x->unext; /* ending sessions only get doomed here, not unlinked */
    if (x->doomed) continue;
    if (bd) {
      rtm_push_delivery(b, x, bd, rc);
    } else {
      x->ac->dl.owed++; /* out of memory: owed and given up at once */
      x->ac->dl.gone++;
      rtm_receipt_settle(b, rc, 0);
    }
  }
  rtm_body_unref(bd);
  rc->refs--;
  if (!rc->done && rc->refs <= 0) receipt_fail(b, rc, "the recipient's window is full");
  receipt_free_if_done(b, rc);
}

/* Cluster: a peer message from another node's session. Its receipt here
 * stands for the sender's: the first ack, or the failure of every session
 * here, goes back to the sender's node (which waits for all its nodes). */
void hd_rtm_cluster_peer_in(hd_rtm_broker_t *b, const char *node, const char *sid, const char *id,
                            const char *app, const char *to, const char *body, hd_time_t now) {
  b->now = now;
  if (!b->cl || !b->cl->peer_result) return;
  ruser_t *u = rtm_user_get(b, app, to);
  int n = 0;
  for (sess_t *t = u ? u->sessions : NULL; t; t = t->unext)
    n += !t->doomed;
  receipt_t *rc = n ? receipt_new(b) : NULL;
  body_t *bd = rc ? rtm_body_new(body, strlen(body)) : NULL;
  if (!bd) { /* no session here (any more), or out of memory */
    receipt_free(b, rc);
    b->cl->peer_result(b->cl->ud, node, sid, id, 0);
    return;
  }
  hd_scpy(rc->node, sizeof rc->node, node);
  hd_scpy(rc->sender, sizeof rc->sender, sid);
  hd_scpy(rc->id, sizeof rc->id, id);
  hd_scpy(rc->to, sizeof rc->to, to);
  rc->deadline = now + b->cfg.peer_timeout;
  rc->refs = n + 1;
  receipt_link(b, rc);
  for (sess_t *x = u->sessions, *nx; x; x = nx) {
    nx = x->unext;
    if (!x->doomed) rtm_push_delivery(b, x, bd, rc);
  }
  rtm_body_unref(bd);
  rc->refs--;
  if (!rc->done && rc->refs <= 0) receipt_fail(b, rc, "the recipient's window is full");
  receipt_free_if_done(b, rc);
  rtm_reap(b);
}

void hd_rtm_cluster_peer_result(hd_rtm_broker_t *b, const char *sid, const char *id, int delivered,
                                hd_time_t now) {
  b->now = now;
  /* pending only: a late answer finds nothing. A receipt standing for
   * another node's sender waits for answers only when a recipient's window
   * entry moved on (rtm_receipt_moves). */
  for (receipt_t *rc = b->receipts; rc; rc = rc->next)
    if ((!rc->node[0] || rc->nodes_pending > 0) && !strcmp(rc->sender, sid) && !strcmp(rc->id, id)) {
      if (rc->nodes_pending > 0) {
        rc->nodes_pending--;
        rtm_receipt_settle(b, rc, delivered); /* drops that node's reference; may free rc */
      } else if (delivered) { /* an answer more than the nodes counted: it holds no reference */
        rc->refs++;
        rtm_receipt_settle(b, rc, 1);
      }
      break;
    }
  rtm_reap(b);
}

/* ---------------------------------------------------------------- dispatch */

int rtm_dispatch(hd_rtm_broker_t *b, sess_t *s, const req_t *r, hd_time_t now) {
  const char *t = r->type;
  if (!strcmp(t, "pub"))
    do_pub(b, s, r, now);
  else if (!strcmp(t, "sub"))
    do_sub(b, s, r);
  else if (!strcmp(t, "unsub"))
    do_unsub(b, s, r);
  else if (!strcmp(t, "hist"))
    do_hist(b, s, r);
  else if (!strcmp(t, "who"))
    do_who(b, s, r);
  else if (!strcmp(t, "state"))
    do_state(b, s, r);
  else if (!strcmp(t, "attr_set"))
    do_attr_set(b, s, r, 0);
  else if (!strcmp(t, "attr_del"))
    do_attr_set(b, s, r, 1);
  else if (!strcmp(t, "attr_get"))
    do_attr_get(b, s, r);
  else if (!strcmp(t, "lock_acquire"))
    do_lock(b, s, r, now, 'a');
  else if (!strcmp(t, "lock_release"))
    do_lock(b, s, r, now, 'r');
  else if (!strcmp(t, "lock_steal"))
    do_lock(b, s, r, now, 's');
  else if (!strcmp(t, "lock_get"))
    do_lock(b, s, r, now, 'g');
  else if (!strcmp(t, "peer"))
    do_peer(b, s, r, now);
  else if (!strcmp(t, "ack"))
    return 0; /* handled by the core */
  else
    return -1;
  return 0;
}

/* ---------------------------------------------------------------- multi-node */

/* One log entry to c's subscribers (only: to that session alone). Entries
 * at or below the channel's position were fanned out already (a catch-up
 * read them first, or a reader restarted): skipped, so each goes out once. */
static void fan_entry(hd_rtm_broker_t *b, chan_t *c, const hd_rtm_entry_t *e, sess_t *only) {
  if (!only) {
    if (hd_rtm_pos_cmp(e->pos, c->pos) <= 0) return;
    c->pos = e->pos;
    if (e->cseq > c->cseq) c->cseq = e->cseq;
  }
  body_t *bd = rtm_body_new(e->json, e->len);
  if (!bd) return;
  for (size_t i = 0; i < (only ? 1 : c->n_subs); i++) {
    sess_t *x = only ? only : c->subs[i];
    if (e->cseq > 0)
      rtm_push_delivery(b, x, bd, NULL);
    else
      rtm_push_body(b, x, bd, NULL);
  }
  rtm_body_unref(bd);
}

void hd_rtm_cluster_entry(hd_rtm_broker_t *b, const char *app, const char *ch, const hd_rtm_entry_t *e,
                          hd_time_t now) {
  b->now = now;
  chan_t *c = rtm_chan_get(b, app, ch, 0);
  if (c) fan_entry(b, c, e, NULL);
  rtm_reap(b);
}

typedef struct {
  hd_rtm_broker_t *b;
  chan_t *c;
  sess_t *only;
} fill_ctx_t;

static int fill_cb(void *ud, const hd_rtm_entry_t *e) {
  fill_ctx_t *x = ud;
  if (x->only && x->only->doomed) return -1;
  fan_entry(x->b, x->c, e, x->only);
  return 0;
}

int rtm_chan_fill(hd_rtm_broker_t *b, sess_t *s, chan_t *c, hd_rtm_pos_t after, hd_rtm_pos_t upto) {
  fill_ctx_t x = {b, c, s};
  int rc = b->cl->range(b->cl->ud, c->app, c->name, after, upto, fill_cb, &x);
  return rc < 0 ? rc : 0;
}

int rtm_chan_catch_up(hd_rtm_broker_t *b, chan_t *c, hd_rtm_pos_t upto) {
  fill_ctx_t x = {b, c, NULL};
  int rc = b->cl->range(b->cl->ud, c->app, c->name, c->pos, upto, fill_cb, &x);
  if (rc < 0) return rc;
  if (hd_rtm_pos_cmp(c->pos, upto) < 0) c->pos = upto; /* trimmed or nothing there: never read it again */
  return 0;
}

int rtm_chan_join(hd_rtm_broker_t *b, sess_t *s, chan_t *c, const char *from, int from_left) {
  member_t *m = member(c, s->user);
  if (s->n_subs >= HD_RTM_MAX_SUBS) return HD_ENOSPC;
  if (sub_room(s, c, m) < 0) return HD_ENOMEM;
  c->subs[c->n_subs++] = s;
  s->subs[s->n_subs++] = c;
  if (m) {
    m->count++;
  } else {
    m = &c->mem[c->n_mem++];
    memset(m, 0, sizeof *m);
    hd_scpy(m->user, sizeof m->user, s->user);
    m->count = 1;
    presence_shared(b, c, "join", s->user, NULL, NULL); /* the user is present already: no event */
  }
  /* then the old node's share goes: the user never looked absent */
  if (from_left && from && from[0] && strcmp(from, b->cl->node))
    presence_shared(b, c, "leave", s->user, from, NULL);
  return 0;
}

int rtm_chan_move_out(hd_rtm_broker_t *b, sess_t *s, chan_t *c) {
  int last = 0;
  for (int i = 0; i < s->n_subs; i++)
    if (s->subs[i] == c) {
      s->subs[i] = s->subs[--s->n_subs];
      break;
    }
  for (size_t i = 0; i < c->n_subs; i++)
    if (c->subs[i] == s) {
      c->subs[i] = c->subs[--c->n_subs];
      break;
    }
  member_t *m = member(c, s->user);
  if (m && --m->count <= 0) {
    free(m->state);
    *m = c->mem[--c->n_mem];
    last = 1;
  }
  rtm_chan_maybe_free(b, c);
  return last;
}

void hd_rtm_cluster_reassert(hd_rtm_broker_t *b, hd_time_t now) {
  b->now = now;
  if (!b->cl) return;
  for (int i = 0; i < CHAN_BUCKETS; i++)
    for (chan_t *c = b->buckets[i]; c; c = c->next)
      for (size_t k = 0; k < c->n_mem; k++)
        presence_shared(b, c, "join", c->mem[k].user, NULL, NULL);
  for (size_t i = 0; b->cl->user_here && i < b->n_ubuckets; i++) /* where peer messages find them */
    for (ruser_t *u = b->ubuckets[i]; u; u = u->next)
      b->cl->user_here(b->cl->ud, u->app, u->user, 1);
}
