/* The node's whiteboards (board_server.h, docs/whiteboard.md). */
#include "board/board_server.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/str.h"

typedef struct {
  char app[64], ch[HD_RTM_MAX_CHANNEL + 1];
  hd_board_t *b;
  char *snap; /* the newest snapshot's text (at snap_seq) */
  int64_t snap_seq;
  char **tail; /* entries after the snapshot, in order */
  size_t n_tail, cap_tail;
  uint64_t used; /* LRU stamp */
  /* cluster sharing (hd_board_share_t) */
  int dirty;             /* changed since its last share */
  int64_t shared_at_ms;  /* wall ms of the last share */
  int64_t checked_at_ms; /* wall ms of the last look at the shared snapshot */
  int too_big;           /* its snapshot was over share.max_bytes (logged once) */
} slot_t;

struct hd_board_server {
  hd_board_server_config_t cfg;
  slot_t **slots;
  size_t n_slots;
  uint64_t clock;
  hd_board_stats_t st;
};

int hd_board_server_new(hd_board_server_t **out, const hd_board_server_config_t *cfg) {
  if (!cfg || !cfg->store) return HD_EINVAL;
  hd_board_server_t *s = calloc(1, sizeof *s);
  if (!s) return HD_ENOMEM;
  s->cfg = *cfg;
  if (s->cfg.snapshot_every <= 0) s->cfg.snapshot_every = HD_BOARD_DEFAULT_SNAPSHOT_EVERY;
  if (s->cfg.max_boards <= 0) s->cfg.max_boards = HD_BOARD_DEFAULT_MAX_BOARDS;
  s->slots = calloc((size_t)s->cfg.max_boards, sizeof *s->slots);
  if (!s->slots) {
    free(s);
    return HD_ENOMEM;
  }
  *out = s;
  return 0;
}

static void tail_clear(slot_t *t) {
  for (size_t i = 0; i < t->n_tail; i++)
    free(t->tail[i]);
  t->n_tail = 0;
}

static void slot_free(slot_t *t) {
  if (!t) return;
  tail_clear(t);
  free(t->tail);
  free(t->snap);
  hd_board_free(t->b);
  free(t);
}

void hd_board_server_free(hd_board_server_t *s) {
  if (!s) return;
  for (size_t i = 0; i < s->n_slots; i++)
    slot_free(s->slots[i]);
  free(s->slots);
  free(s);
}

static int tail_push(slot_t *t, const char *entry) {
  if (t->n_tail == t->cap_tail) {
    size_t nc = t->cap_tail ? t->cap_tail * 2 : 16;
    char **a = realloc(t->tail, nc * sizeof *a);
    if (!a) return HD_ENOMEM;
    t->tail = a;
    t->cap_tail = nc;
  }
  char *c = strdup(entry);
  if (!c) return HD_ENOMEM;
  t->tail[t->n_tail++] = c;
  return 0;
}

/* A new snapshot of t's board: stored, and the tail starts again. */
static int snapshot(hd_board_server_t *s, slot_t *t) {
  char *snap = hd_board_snapshot(t->b);
  if (!snap) return HD_ENOMEM;
  int64_t seq = hd_board_seq(t->b);
  if (hd_board_store_snap_put(s->cfg.store, t->app, t->ch, seq, snap) < 0) {
    s->st.store_errors++;
    HD_LOGW("board", "cannot store a snapshot of %s (seq %" PRId64 "); keeping the tail", t->ch, seq);
    free(snap);
    return HD_EIO;
  }
  free(t->snap);
  t->snap = snap;
  t->snap_seq = seq;
  tail_clear(t);
  s->st.snapshots++;
  return 0;
}

typedef struct {
  slot_t *t;
  int rc;
} replay_ctx_t;

static int load_entry(void *ud, int64_t seq, int64_t ts, const char *entry) {
  replay_ctx_t *c = ud;
  (void)seq, (void)ts;
  int rc = hd_board_apply_entry(c->t->b, entry, strlen(entry));
  if (rc == 0) rc = tail_push(c->t, entry);
  if (rc < 0) {
    c->rc = rc;
    return -1;
  }
  return 0;
}

/* The board of (app, ch), loaded from the store when not in memory. */
static slot_t *board_get(hd_board_server_t *s, const char *app, const char *ch, int *err) {
  for (size_t i = 0; i < s->n_slots; i++)
    if (!strcmp(s->slots[i]->ch, ch) && !strcmp(s->slots[i]->app, app)) {
      s->slots[i]->used = ++s->clock;
      return s->slots[i];
    }
  if (s->n_slots >= (size_t)s->cfg.max_boards) { /* evict the least recently used (snapshotted first) */
    size_t lru = 0;
    for (size_t i = 1; i < s->n_slots; i++)
      if (s->slots[i]->used < s->slots[lru]->used) lru = i;
    slot_t *v = s->slots[lru];
    if (v->n_tail && snapshot(s, v) < 0) {
      *err = HD_ENOSPC;
      return NULL;
    }
    slot_free(v);
    s->slots[lru] = s->slots[--s->n_slots];
    s->st.evictions++;
  }
  slot_t *t = calloc(1, sizeof *t);
  if (!t || hd_board_new(&t->b, &s->cfg.lim) < 0) {
    free(t);
    *err = HD_ENOMEM;
    return NULL;
  }
  hd_scpy(t->app, sizeof t->app, app);
  hd_scpy(t->ch, sizeof t->ch, ch);
  int64_t sseq = 0;
  char *snap = NULL;
  int rc = hd_board_store_snap_get(s->cfg.store, app, ch, &sseq, &snap);
  if (rc == 0) {
    rc = hd_board_load_snapshot(t->b, snap, strlen(snap));
    if (rc < 0)
      HD_LOGW("board", "snapshot of %s at seq %" PRId64 " unreadable: %s", ch, sseq, hd_strerror(rc));
  }
  if (rc == HD_ENOTFOUND) rc = 0;
  replay_ctx_t c = {t, 0};
  if (rc == 0) {
    t->snap = snap ? snap : hd_board_snapshot(t->b);
    snap = NULL;
    t->snap_seq = hd_board_seq(t->b);
    /* the entries after the snapshot; pages of HD_BOARD_LOG_MAX */
    int n;
    do {
      n = hd_board_store_entries(s->cfg.store, app, ch, hd_board_seq(t->b), -1, HD_BOARD_LOG_MAX, load_entry,
                                 &c);
    } while (n == HD_BOARD_LOG_MAX && !c.rc);
    if (n < 0) rc = n;
    if (c.rc) rc = c.rc;
  }
  free(snap);
  if (rc < 0 || !t->snap) {
    HD_LOGE("board", "cannot load board %s: %s", ch, hd_strerror(rc < 0 ? rc : HD_ENOMEM));
    slot_free(t);
    *err = rc < 0 ? rc : HD_ENOMEM;
    return NULL;
  }
  t->used = ++s->clock;
  s->slots[s->n_slots++] = t;
  s->st.loads++;
  return t;
}

static int errcode(int status) {
  switch (status) {
  case 403: return HD_RTM_ERR_FORBIDDEN;
  case 404: return HD_RTM_ERR_NOT_FOUND;
  case 409: return HD_RTM_ERR_CONFLICT;
  case 413: return HD_RTM_ERR_TOO_LARGE;
  case 503: return HD_RTM_ERR_FULL;
  case 500: return HD_RTM_ERR_INTERNAL;
  default: return HD_RTM_ERR_BAD_REQUEST;
  }
}

int hd_board_channel(char *out, size_t cap, const char *room, const char *board) {
  size_t bl = strlen(board);
  if (bl < 1 || bl > 16) return HD_EINVAL;
  for (const char *c = board; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' ||
          *c == '-'))
      return HD_EINVAL;
  int n = snprintf(out, cap, HD_BOARD_PREFIX "%s:%s", room, board);
  return n < 0 || (size_t)n >= cap || n > HD_RTM_MAX_CHANNEL ? HD_EINVAL : 0;
}

/* ---- sharing with the cluster (docs/whiteboard.md "Multi-node") ---- */

/* Shares t's board now (its newest snapshot text). */
static void share_now(hd_board_server_t *s, slot_t *t, int64_t wall_ms) {
  int64_t seq = hd_board_seq(t->b);
  char *text = t->snap_seq == seq && t->snap ? NULL : hd_board_snapshot(t->b);
  const char *snap = text ? text : t->snap;
  t->dirty = 0;
  t->shared_at_ms = wall_ms;
  if (!snap) {
    t->dirty = 1; /* out of memory: next time */
    return;
  }
  size_t len = strlen(snap);
  if (len > s->cfg.share.max_bytes) {
    if (!t->too_big++)
      HD_LOGW("board",
              "board %s: its state (%zu bytes) is over board.share_max_kb (%zu KiB): not shared with the "
              "cluster, so a node taking it over would start from its own store",
              t->ch, len, s->cfg.share.max_bytes / 1024);
  } else if (s->cfg.share.put(s->cfg.share.ud, t->app, t->ch, seq, snap, len) >= 0) {
    s->st.shared++;
  } else {
    t->dirty = 1; /* Redis away: again at the next flush */
  }
  free(text);
}

void hd_board_server_set_share(hd_board_server_t *s, const hd_board_share_t *share) { s->cfg.share = *share; }

void hd_board_server_share_flush(hd_board_server_t *s, int64_t wall_ms) {
  if (!s->cfg.share.put) return;
  for (size_t i = 0; i < s->n_slots; i++) {
    slot_t *t = s->slots[i];
    if (t->dirty && wall_ms - t->shared_at_ms >= s->cfg.share.every_ms) share_now(s, t, wall_ms);
  }
}

/* Before an operation on t (this node owns the board now): if the cluster's
 * shared snapshot is newer than t's state, another node held the board
 * meanwhile (this node takes it over from a dead owner): t starts from that
 * snapshot, stored here as t's newest. */
static void share_check(hd_board_server_t *s, slot_t *t, int64_t wall_ms) {
  if (!s->cfg.share.get || (t->checked_at_ms && wall_ms - t->checked_at_ms < HD_BOARD_SHARE_CHECK_MS)) return;
  t->checked_at_ms = wall_ms;
  int64_t seq = 0, mine = hd_board_seq(t->b);
  char *text = NULL;
  if (s->cfg.share.get(s->cfg.share.ud, t->app, t->ch, mine, &seq, &text) < 0) return;
  hd_board_t *b = NULL;
  if (seq > mine && hd_board_new(&b, &s->cfg.lim) == 0 &&
      hd_board_load_snapshot(b, text, strlen(text)) == 0 && hd_board_seq(b) == seq) {
    hd_board_free(t->b);
    t->b = b;
    b = NULL;
    if (snapshot(s, t) < 0) { /* the store lacks it; the board in memory is right */
      char *snap = hd_board_snapshot(t->b);
      if (snap) {
        free(t->snap);
        t->snap = snap;
        t->snap_seq = seq;
        tail_clear(t);
      }
    }
    s->st.adopted++;
    HD_LOGI("board",
            "board %s: taken over from the cluster's shared snapshot at seq %" PRId64
            " (this node had %" PRId64 ")",
            t->ch, seq, mine);
  } else if (seq > mine) {
    HD_LOGW("board",
            "board %s: the cluster's shared snapshot (seq %" PRId64 ") is unreadable; kept this node's",
            t->ch, seq);
  }
  hd_board_free(b);
  free(text);
}

int hd_board_server_pub_hook(void *ud, const hd_rtm_hook_pub_t *p, char **out, char *msg, size_t msgcap) {
  hd_board_server_t *s = ud;
  const char *rest = p->ch + strlen(HD_BOARD_PREFIX), *colon = strrchr(rest, ':');
  if (!colon || colon == rest || !colon[1]) {
    s->st.refused++;
    snprintf(msg, msgcap, "board channels are named wb:<room>:<board>");
    return HD_RTM_ERR_BAD_REQUEST;
  }
  int err = 0;
  slot_t *t = board_get(s, p->app, p->ch, &err);
  if (!t) {
    s->st.refused++;
    snprintf(msg, msgcap, "%s",
             err == HD_ENOSPC ? "too many boards open on this node (board.max_boards): try again later"
                              : "cannot load the board: store failure");
    return err == HD_ENOSPC ? HD_RTM_ERR_FULL : HD_RTM_ERR_INTERNAL;
  }
  share_check(s, t, p->wall_ms);
  hd_board_err_t e = {0};
  char *entry = NULL;
  int rc = hd_board_op(t->b, p->user, p->writer, p->data, p->len, p->wall_ms, &entry, &e);
  if (rc < 0) {
    s->st.refused++;
    snprintf(msg, msgcap, "%s", e.msg);
    return errcode(e.status);
  }
  if (rc == HD_BOARD_EPHEMERAL) {
    s->st.ephemeral++;
    return 0; /* passed on as it is */
  }
  s->st.ops++;
  /* logged before it is sent: a late joiner's load sees what the channel sent */
  if (hd_board_store_append(s->cfg.store, t->app, t->ch, hd_board_seq(t->b), p->wall_ms, entry) < 0) {
    s->st.store_errors++;
    HD_LOGW("board", "cannot log entry %" PRId64 " of %s: it is live but missing from replay",
            hd_board_seq(t->b), t->ch);
  }
  if (tail_push(t, entry) < 0 || t->n_tail >= (size_t)s->cfg.snapshot_every) snapshot(s, t);
  if (s->cfg.share.put) {
    t->dirty = 1;
    if (p->wall_ms - t->shared_at_ms >= s->cfg.share.every_ms) share_now(s, t, p->wall_ms);
  }
  *out = entry;
  return 0;
}

/* A growing text buffer. */
typedef struct {
  char *p;
  size_t n, cap;
  int oom;
} buf_t;

static void put(buf_t *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->n + n + 1)
      nc *= 2;
    char *q = realloc(b->p, nc);
    if (!q) {
      b->oom = 1;
      return;
    }
    b->p = q;
    b->cap = nc;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}
static void puts_(buf_t *b, const char *s) { put(b, s, strlen(s)); }
static void putf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(buf_t *b, const char *fmt, ...) {
  char t[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(t, sizeof t, fmt, ap);
  va_end(ap);
  if (n > 0) put(b, t, (size_t)n < sizeof t ? (size_t)n : sizeof t - 1);
}

typedef struct {
  buf_t *b;
  int n;
  int64_t last;
} list_ctx_t;

static int list_entry(void *ud, int64_t seq, int64_t ts, const char *entry) {
  list_ctx_t *c = ud;
  (void)ts;
  if (c->n++) puts_(c->b, ",");
  puts_(c->b, entry);
  c->last = seq;
  return 0;
}

static int finish(buf_t *b, char **json) {
  if (b->oom) {
    free(b->p);
    return HD_ENOMEM;
  }
  *json = b->p;
  return 0;
}

int hd_board_server_load(hd_board_server_t *s, const char *app, const char *ch, int64_t after, char **json) {
  int err = 0;
  slot_t *t = board_get(s, app, ch, &err);
  if (!t) return err;
  buf_t b = {0};
  putf(&b, "{\"ch\":\"%s\",\"seq\":%" PRId64, ch, hd_board_seq(t->b));
  if (after < 0 || after >= t->snap_seq) {
    if (after < 0) {
      puts_(&b, ",\"snapshot\":");
      puts_(&b, t->snap);
    }
    puts_(&b, ",\"ops\":[");
    int64_t first = t->snap_seq + 1; /* seq of tail[0] */
    int n = 0;
    for (size_t i = 0; i < t->n_tail; i++)
      if (after < 0 || first + (int64_t)i > after) {
        if (n++) puts_(&b, ",");
        puts_(&b, t->tail[i]);
      }
    puts_(&b, "]}");
    return finish(&b, json);
  }
  /* a refill from before the snapshot: from the log */
  puts_(&b, ",\"ops\":[");
  list_ctx_t c = {&b, 0, after};
  int n = hd_board_store_entries(s->cfg.store, app, ch, after, -1, INT32_MAX, list_entry, &c);
  puts_(&b, "]}");
  if (n < 0) {
    free(b.p);
    return n;
  }
  return finish(&b, json);
}

int hd_board_server_log(hd_board_server_t *s, const char *app, const char *ch, int64_t after,
                        int64_t since_ms, int limit, char **json) {
  if (limit < 1 || limit > HD_BOARD_LOG_MAX) limit = HD_BOARD_LOG_MAX;
  buf_t b = {0};
  putf(&b, "{\"ch\":\"%s\",\"ops\":[", ch);
  list_ctx_t c = {&b, 0, after};
  int n = hd_board_store_entries(s->cfg.store, app, ch, after, since_ms, limit, list_entry, &c);
  if (n < 0) {
    free(b.p);
    return n;
  }
  putf(&b, "],\"more\":%s,\"next\":%" PRId64 "}", n == limit ? "true" : "false", c.last);
  return finish(&b, json);
}

void hd_board_server_stats(const hd_board_server_t *s, hd_board_stats_t *out) {
  *out = s->st;
  out->boards = s->n_slots;
}

int hd_board_server_metrics_text(const hd_board_server_t *s, char *buf, size_t cap) {
  int n =
      snprintf(buf, cap,
               "# HELP hudong_board_ops_total Whiteboard operations committed.\n"
               "# TYPE hudong_board_ops_total counter\nhudong_board_ops_total %" PRIu64 "\n"
               "# HELP hudong_board_ephemeral_total Whiteboard cursor and live-stroke messages passed on.\n"
               "# TYPE hudong_board_ephemeral_total counter\nhudong_board_ephemeral_total %" PRIu64 "\n"
               "# HELP hudong_board_refused_total Whiteboard operations refused (error replies).\n"
               "# TYPE hudong_board_refused_total counter\nhudong_board_refused_total %" PRIu64 "\n"
               "# HELP hudong_board_store_errors_total Whiteboard log or snapshot writes that failed.\n"
               "# TYPE hudong_board_store_errors_total counter\nhudong_board_store_errors_total %" PRIu64 "\n"
               "# HELP hudong_board_boards Whiteboards held in memory.\n"
               "# TYPE hudong_board_boards gauge\nhudong_board_boards %zu\n",
               s->st.ops, s->st.ephemeral, s->st.refused, s->st.store_errors, s->n_slots);
  return n < 0 || (size_t)n >= cap ? HD_ENOSPC : n;
}
