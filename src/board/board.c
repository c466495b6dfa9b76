/* Whiteboard operation model: validation of client operations, primitive
 * steps with their inverses, per-user undo/redo, snapshots (board.h,
 * docs/whiteboard.md). */
#include "board/board.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/map.h"
#include "base/str.h"

typedef struct page page_t;
typedef struct {
  json_t *o; /* the element (owned) */
  page_t *pg;
  size_t sz; /* its JSON text's length when added (board.max_board_mb) */
} el_t;

struct page {
  char id[HD_BOARD_MAX_ID + 1], name[HD_BOARD_MAX_NAME + 1];
  el_t **els; /* z-order, back to front */
  size_t n, cap;
};

typedef struct {
  char *user;
  json_t *undo, *redo; /* arrays of step arrays (inverses), newest last */
} ustack_t;

struct hd_board {
  hd_board_limits_t lim;
  page_t **pages;
  size_t n_pages, cap_pages;
  hd_map_t ids; /* element id -> el_t */
  size_t n_els;
  size_t bytes; /* sum of the elements' sz */
  int64_t seq;
  ustack_t *users;
  size_t n_users;
};

/* ------------------------------------------------------------ small helpers */

static int fail(hd_board_err_t *e, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(hd_board_err_t *e, int status, const char *fmt, ...) {
  if (e) {
    e->status = status;
    e->reason = status == 403   ? "forbidden"
                : status == 404 ? "not_found"
                : status == 409 ? "conflict"
                : status == 413 ? "too_large"
                : status == 503 ? "full"
                : status == 500 ? "internal"
                                : "bad_request";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
  }
  return status == 500 ? HD_ENOMEM : status == 403 ? HD_EFORBIDDEN : HD_EPROTO;
}

static int valid_id(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > HD_BOARD_MAX_ID) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
          *s == '-'))
      return 0;
  return 1;
}

static int valid_color(const char *s) {
  if (strlen(s) != 7 || s[0] != '#') return 0;
  for (int i = 1; i < 7; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
  return 1;
}

static int valid_image_src(const char *s) {
  static const char pfx[] = "/api/board/image/";
  if (strncmp(s, pfx, sizeof pfx - 1)) return 0;
  s += sizeof pfx - 1;
  if (strlen(s) != 64) return 0;
  for (; *s; s++)
    if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return 0;
  return 1;
}

static const char *const KINDS[] = {"stroke", "line", "arrow", "rect", "ellipse", "text", "image"};
enum { K_STROKE, K_LINE, K_ARROW, K_RECT, K_ELLIPSE, K_TEXT, K_IMAGE, K_N };

static int kind_of(const char *k) {
  for (int i = 0; i < K_N; i++)
    if (!strcmp(k, KINDS[i])) return i;
  return -1;
}

static const char *sget(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

/* An integer member in [lo, hi]: 1 (set), 0 (absent), < 0 (refused). */
static int iget(const json_t *o, const char *k, int64_t lo, int64_t hi, int64_t *out, hd_board_err_t *e) {
  json_t *v = json_object_get(o, k);
  if (!v) return 0;
  if (!json_is_integer(v))
    return fail(e, 400, "field \"%s\" must be an integer (board coordinates and sizes are whole units)", k);
  int64_t x = json_integer_value(v);
  if (x < lo || x > hi)
    return fail(e, 400, "field \"%s\" = %lld is out of range %lld..%lld", k, (long long)x, (long long)lo,
                (long long)hi);
  *out = x;
  return 1;
}

static page_t *page_find(const hd_board_t *b, const char *id, size_t *idx) {
  for (size_t i = 0; i < b->n_pages; i++)
    if (!strcmp(b->pages[i]->id, id)) {
      if (idx) *idx = i;
      return b->pages[i];
    }
  return NULL;
}

static el_t *el_find(const hd_board_t *b, const char *id) {
  size_t n = strlen(id);
  if (n < 1 || n > HD_BOARD_MAX_ID) return NULL;
  return hd_map_get(&b->ids, id, n);
}

static size_t el_index(const page_t *pg, const el_t *e) {
  for (size_t i = 0; i < pg->n; i++)
    if (pg->els[i] == e) return i;
  return pg->n;
}

static int64_t el_v(const el_t *e) { return json_integer_value(json_object_get(e->o, "v")); }

/* ------------------------------------------------------------ board state */

/* An element's JSON text length (its share of board.max_board_mb). */
static size_t el_size(const json_t *o) {
  size_t n = json_dumpb(o, NULL, 0, JSON_COMPACT);
  return n ? n : 1;
}

static page_t *page_new(const char *id, const char *name) {
  page_t *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  hd_scpy(p->id, sizeof p->id, id);
  hd_scpy(p->name, sizeof p->name, name);
  return p;
}

static void page_free_els(hd_board_t *b, page_t *p) {
  for (size_t i = 0; i < p->n; i++) {
    const char *id = sget(p->els[i]->o, "id");
    if (b && id) hd_map_del(&b->ids, id, strlen(id));
    if (b) b->bytes -= p->els[i]->sz;
    json_decref(p->els[i]->o);
    free(p->els[i]);
  }
  if (b) b->n_els -= p->n;
  p->n = 0;
}

static int page_insert(hd_board_t *b, size_t at, page_t *p) {
  if (b->n_pages == b->cap_pages) {
    size_t nc = b->cap_pages ? b->cap_pages * 2 : 4;
    page_t **a = realloc(b->pages, nc * sizeof *a);
    if (!a) return HD_ENOMEM;
    b->pages = a;
    b->cap_pages = nc;
  }
  if (at > b->n_pages) at = b->n_pages;
  memmove(b->pages + at + 1, b->pages + at, (b->n_pages - at) * sizeof *b->pages);
  b->pages[at] = p;
  b->n_pages++;
  return 0;
}

static void page_remove_at(hd_board_t *b, size_t at) {
  memmove(b->pages + at, b->pages + at + 1, (b->n_pages - at - 1) * sizeof *b->pages);
  b->n_pages--;
}

/* Inserts element object o (a reference is taken) into pg at z index at. */
static int el_insert(hd_board_t *b, page_t *pg, size_t at, json_t *o) {
  const char *id = sget(o, "id");
  if (pg->n == pg->cap) {
    size_t nc = pg->cap ? pg->cap * 2 : 16;
    el_t **a = realloc(pg->els, nc * sizeof *a);
    if (!a) return HD_ENOMEM;
    pg->els = a;
    pg->cap = nc;
  }
  el_t *e = calloc(1, sizeof *e);
  if (!e) return HD_ENOMEM;
  if (hd_map_put(&b->ids, id, strlen(id), e) < 0) {
    free(e);
    return HD_ENOMEM;
  }
  e->o = json_incref(o);
  e->pg = pg;
  e->sz = el_size(o);
  b->bytes += e->sz;
  if (at > pg->n) at = pg->n;
  memmove(pg->els + at + 1, pg->els + at, (pg->n - at) * sizeof *pg->els);
  pg->els[at] = e;
  pg->n++;
  b->n_els++;
  return 0;
}

static void el_remove(hd_board_t *b, el_t *e) {
  page_t *pg = e->pg;
  size_t i = el_index(pg, e);
  memmove(pg->els + i, pg->els + i + 1, (pg->n - i - 1) * sizeof *pg->els);
  pg->n--;
  b->n_els--;
  b->bytes -= e->sz;
  const char *id = sget(e->o, "id");
  hd_map_del(&b->ids, id, strlen(id));
  json_decref(e->o);
  free(e);
}

static void users_clear(hd_board_t *b) {
  for (size_t i = 0; i < b->n_users; i++) {
    free(b->users[i].user);
    json_decref(b->users[i].undo);
    json_decref(b->users[i].redo);
  }
  free(b->users);
  b->users = NULL;
  b->n_users = 0;
}

static void board_clear(hd_board_t *b) {
  for (size_t i = 0; i < b->n_pages; i++) {
    page_free_els(b, b->pages[i]);
    free(b->pages[i]->els);
    free(b->pages[i]);
  }
  b->n_pages = 0;
}

int hd_board_new(hd_board_t **out, const hd_board_limits_t *lim) {
  hd_board_t *b = calloc(1, sizeof *b);
  if (!b) return HD_ENOMEM;
  if (lim) b->lim = *lim;
  if (b->lim.max_pages <= 0) b->lim.max_pages = HD_BOARD_DEFAULT_MAX_PAGES;
  if (b->lim.max_elements <= 0) b->lim.max_elements = HD_BOARD_DEFAULT_MAX_ELEMENTS;
  if (b->lim.max_points <= 0) b->lim.max_points = HD_BOARD_DEFAULT_MAX_POINTS;
  if (b->lim.max_undo <= 0) b->lim.max_undo = HD_BOARD_DEFAULT_MAX_UNDO;
  if (!b->lim.max_entry) b->lim.max_entry = HD_BOARD_DEFAULT_MAX_ENTRY;
  if (!b->lim.max_bytes) b->lim.max_bytes = HD_BOARD_DEFAULT_MAX_BYTES;
  /* every element of every page: the map's cap follows the caps */
  size_t cap = (size_t)b->lim.max_pages * (size_t)b->lim.max_elements;
  page_t *p = page_new("p1", "Page 1");
  if (!p || hd_map_init(&b->ids, cap < 64 ? 64 : cap) < 0 || page_insert(b, 0, p) < 0) {
    free(p);
    hd_map_free(&b->ids);
    free(b->pages);
    free(b);
    return HD_ENOMEM;
  }
  *out = b;
  return 0;
}

void hd_board_free(hd_board_t *b) {
  if (!b) return;
  board_clear(b);
  free(b->pages);
  users_clear(b);
  hd_map_free(&b->ids);
  free(b);
}

int64_t hd_board_seq(const hd_board_t *b) { return b->seq; }
size_t hd_board_bytes(const hd_board_t *b) { return b->bytes; }

void hd_board_count(const hd_board_t *b, int *pages, int *elements) {
  if (pages) *pages = (int)b->n_pages;
  if (elements) *elements = (int)b->n_els;
}

/* ------------------------------------------------------------ primitive steps
 *
 * apply_step applies one step and appends its inverse steps (in the order
 * they must run) to inv (may be NULL). Returns 1 applied, 0 skipped (does not
 * apply to the current state: the same on every participant), HD_EPROTO for
 * a malformed step, HD_ENOMEM. enforce: the node's caps (elements per page,
 * pages) apply; participants applying the node's entries never enforce them. */

static json_t *el_copy_bumped(const el_t *e) {
  json_t *c = json_deep_copy(e->o);
  if (c) json_object_set_new(c, "v", json_integer(el_v(e) + 1));
  return c;
}

static int apply_step(hd_board_t *b, const json_t *st, json_t *inv, int enforce) {
  const char *a = sget(st, "a");
  if (!a) return HD_EPROTO;
  json_t *atv = json_object_get(st, "at");
  int64_t at = json_is_integer(atv) ? json_integer_value(atv) : -1;
  if (atv && at < 0) return HD_EPROTO;
  if (!strcmp(a, "add")) {
    const char *pid = sget(st, "page");
    json_t *el = json_object_get(st, "el");
    const char *id = sget(el, "id");
    if (!pid || !json_is_object(el) || !id || !sget(el, "k") || !valid_id(id) ||
        !json_is_integer(json_object_get(el, "v")))
      return HD_EPROTO;
    page_t *pg = page_find(b, pid, NULL);
    if (!pg || el_find(b, id)) return 0;
    if (enforce && (pg->n >= (size_t)b->lim.max_elements || b->bytes + el_size(el) > b->lim.max_bytes))
      return 0;
    if (el_insert(b, pg, at < 0 ? pg->n : (size_t)at, el) < 0) return HD_ENOMEM;
    if (inv) json_array_append_new(inv, json_pack("{s:s,s:s}", "a", "del", "id", id));
    return 1;
  }
  if (!strcmp(a, "del")) {
    const char *id = sget(st, "id");
    if (!id) return HD_EPROTO;
    el_t *e = el_find(b, id);
    if (!e) return 0;
    if (inv)
      json_array_append_new(inv, json_pack("{s:s,s:s,s:I,s:o}", "a", "add", "page", e->pg->id, "at",
                                           (json_int_t)el_index(e->pg, e), "el", el_copy_bumped(e)));
    el_remove(b, e);
    return 1;
  }
  if (!strcmp(a, "set")) {
    const char *id = sget(st, "id");
    json_t *f = json_object_get(st, "f");
    if (!id || !json_is_object(f)) return HD_EPROTO;
    el_t *e = el_find(b, id);
    if (!e) return 0;
    const char *k;
    json_t *v;
    json_t *old = json_object();
    json_object_foreach(f, k, v) {
      if (!strcmp(k, "id") || !strcmp(k, "k") || !strcmp(k, "v") || !strcmp(k, "by")) continue;
      json_t *cur = json_object_get(e->o, k);
      json_object_set(old, k, cur ? cur : json_null());
    }
    json_object_foreach(f, k, v) {
      if (!strcmp(k, "id") || !strcmp(k, "k") || !strcmp(k, "v") || !strcmp(k, "by")) continue;
      if (json_is_null(v))
        json_object_del(e->o, k);
      else
        json_object_set(e->o, k, v);
    }
    json_object_set_new(e->o, "v", json_integer(el_v(e) + 1));
    if (inv)
      json_array_append_new(inv, json_pack("{s:s,s:s,s:o}", "a", "set", "id", id, "f", old));
    else
      json_decref(old);
    return 1;
  }
  if (!strcmp(a, "z")) {
    const char *id = sget(st, "id");
    if (!id || at < 0) return HD_EPROTO;
    el_t *e = el_find(b, id);
    if (!e) return 0;
    page_t *pg = e->pg;
    size_t old = el_index(pg, e), to = (size_t)at >= pg->n ? pg->n - 1 : (size_t)at;
    memmove(pg->els + old, pg->els + old + 1, (pg->n - old - 1) * sizeof *pg->els);
    memmove(pg->els + to + 1, pg->els + to, (pg->n - 1 - to) * sizeof *pg->els);
    pg->els[to] = e;
    json_object_set_new(e->o, "v", json_integer(el_v(e) + 1));
    if (inv)
      json_array_append_new(inv, json_pack("{s:s,s:s,s:I}", "a", "z", "id", id, "at", (json_int_t)old));
    return 1;
  }
  if (!strcmp(a, "clear")) {
    const char *pid = sget(st, "page");
    if (!pid) return HD_EPROTO;
    page_t *pg = page_find(b, pid, NULL);
    if (!pg) return 0;
    if (inv)
      for (size_t i = 0; i < pg->n; i++)
        json_array_append_new(inv, json_pack("{s:s,s:s,s:I,s:o}", "a", "add", "page", pid, "at",
                                             (json_int_t)i, "el", el_copy_bumped(pg->els[i])));
    page_free_els(b, pg);
    return 1;
  }
  if (!strcmp(a, "padd")) {
    json_t *p = json_object_get(st, "page");
    const char *id = sget(p, "id"), *name = sget(p, "name");
    if (!id || !name || !valid_id(id) || strlen(name) > HD_BOARD_MAX_NAME) return HD_EPROTO;
    if (page_find(b, id, NULL)) return 0;
    if (enforce && b->n_pages >= (size_t)b->lim.max_pages) return 0;
    page_t *pg = page_new(id, name);
    if (!pg || page_insert(b, at < 0 ? b->n_pages : (size_t)at, pg) < 0) {
      free(pg);
      return HD_ENOMEM;
    }
    if (inv) json_array_append_new(inv, json_pack("{s:s,s:s}", "a", "pdel", "id", id));
    return 1;
  }
  if (!strcmp(a, "pdel")) {
    const char *id = sget(st, "id");
    size_t idx;
    if (!id) return HD_EPROTO;
    page_t *pg = page_find(b, id, &idx);
    if (!pg || b->n_pages <= 1) return 0; /* a board keeps one page */
    if (inv) {
      json_array_append_new(inv, json_pack("{s:s,s:I,s:{s:s,s:s}}", "a", "padd", "at", (json_int_t)idx,
                                           "page", "id", pg->id, "name", pg->name));
      for (size_t i = 0; i < pg->n; i++)
        json_array_append_new(inv, json_pack("{s:s,s:s,s:I,s:o}", "a", "add", "page", id, "at", (json_int_t)i,
                                             "el", el_copy_bumped(pg->els[i])));
    }
    page_free_els(b, pg);
    free(pg->els);
    free(pg);
    page_remove_at(b, idx);
    return 1;
  }
  if (!strcmp(a, "pmove")) {
    const char *id = sget(st, "id");
    size_t idx;
    if (!id || at < 0) return HD_EPROTO;
    page_t *pg = page_find(b, id, &idx);
    if (!pg) return 0;
    page_remove_at(b, idx);
    page_insert(b, (size_t)at, pg); /* cannot fail: capacity is there */
    if (inv)
      json_array_append_new(inv, json_pack("{s:s,s:s,s:I}", "a", "pmove", "id", id, "at", (json_int_t)idx));
    return 1;
  }
  return HD_EPROTO;
}

/* The shape of a step (what apply_step checks before it touches the state):
 * an entry with a malformed step is refused whole. */
static int step_ok(const json_t *st) {
  const char *a = sget(st, "a");
  json_t *atv = json_object_get(st, "at");
  if (!a || (atv && (!json_is_integer(atv) || json_integer_value(atv) < 0))) return 0;
  if (!strcmp(a, "add")) {
    json_t *el = json_object_get(st, "el");
    const char *id = sget(el, "id");
    return sget(st, "page") && json_is_object(el) && id && valid_id(id) && sget(el, "k") &&
           json_is_integer(json_object_get(el, "v"));
  }
  if (!strcmp(a, "del") || !strcmp(a, "pdel")) return sget(st, "id") != NULL;
  if (!strcmp(a, "set")) return sget(st, "id") && json_is_object(json_object_get(st, "f"));
  if (!strcmp(a, "z") || !strcmp(a, "pmove")) return sget(st, "id") && atv;
  if (!strcmp(a, "clear")) return sget(st, "page") != NULL;
  if (!strcmp(a, "padd")) {
    json_t *p = json_object_get(st, "page");
    const char *id = sget(p, "id"), *name = sget(p, "name");
    return id && valid_id(id) && name && strlen(name) <= HD_BOARD_MAX_NAME;
  }
  return 0;
}

/* Applies steps in order; applied gets the ones that applied (may be NULL),
 * inv their inverse (the reverse order: undo runs it as it stands). */
static int apply_steps(hd_board_t *b, const json_t *steps, json_t *applied, json_t *inv, int enforce) {
  json_t *blocks = inv ? json_array() : NULL;
  size_t i;
  json_t *st;
  int n = 0, rc = 0;
  json_array_foreach(steps, i, st) {
    json_t *blk = inv ? json_array() : NULL;
    rc = apply_step(b, st, blk, enforce);
    if (rc < 0) {
      json_decref(blk);
      break;
    }
    if (rc == 1) {
      n++;
      if (applied) json_array_append(applied, st);
      if (blk) json_array_append(blocks, blk);
    }
    json_decref(blk);
    rc = 0;
  }
  if (inv) {
    for (size_t k = json_array_size(blocks); k-- > 0;)
      json_array_extend(inv, json_array_get(blocks, k));
    json_decref(blocks);
  }
  return rc < 0 ? rc : n;
}

/* ------------------------------------------------------------ client operations */

/* Style and geometry members a "set" may change, per kind. */
static int settable(int kind, const char *k) {
  if (!strcmp(k, "x") || !strcmp(k, "y") || !strcmp(k, "w") || !strcmp(k, "h") || !strcmp(k, "c") ||
      !strcmp(k, "sw") || !strcmp(k, "o"))
    return 1;
  if (!strcmp(k, "fill")) return kind == K_RECT || kind == K_ELLIPSE;
  if (!strcmp(k, "hl")) return kind == K_STROKE;
  if (!strcmp(k, "txt") || !strcmp(k, "fs")) return kind == K_TEXT;
  return 0;
}

/* Validates member k = v of an element of this kind; out gets the normalised
 * value (or json null: remove). */
static int check_field(const hd_board_t *b, int kind, const char *k, json_t *v, json_t **out,
                       hd_board_err_t *e) {
  json_t *tmp = json_pack("{s:O}", k, v);
  int64_t x = 0;
  int rc = 0;
  *out = NULL;
  if (!strcmp(k, "x") || !strcmp(k, "y"))
    rc = iget(tmp, k, -HD_BOARD_MAX_COORD, HD_BOARD_MAX_COORD, &x, e);
  else if (!strcmp(k, "w") || !strcmp(k, "h"))
    rc = iget(tmp, k, 0, HD_BOARD_MAX_COORD, &x, e);
  else if (!strcmp(k, "sw"))
    rc = iget(tmp, k, 1, 200, &x, e);
  else if (!strcmp(k, "o"))
    rc = iget(tmp, k, 1, 100, &x, e);
  else if (!strcmp(k, "fs"))
    rc = iget(tmp, k, 4, 400, &x, e);
  else if (!strcmp(k, "c") || !strcmp(k, "fill")) {
    if (json_is_null(v) && !strcmp(k, "fill")) {
      *out = json_null();
      rc = 2;
    } else if (!json_is_string(v) || !valid_color(json_string_value(v)))
      rc = fail(e, 400, "field \"%s\" must be a colour \"#rrggbb\" (lower-case hex)%s", k,
                !strcmp(k, "fill") ? " or null (no fill)" : "");
    else {
      *out = json_incref(v);
      rc = 2;
    }
  } else if (!strcmp(k, "hl")) {
    if (!json_is_boolean(v))
      rc = fail(e, 400, "field \"hl\" (highlighter) must be true or false");
    else {
      *out = json_is_true(v) ? json_true() : json_null();
      rc = 2;
    }
  } else if (!strcmp(k, "txt")) {
    const char *s = json_string_value(v);
    if (!s || !*s)
      rc = fail(e, 400, "field \"txt\" must be a non-empty string");
    else if (strlen(s) > HD_BOARD_MAX_TEXT)
      rc = fail(e, 413, "text of %zu bytes is over the cap of %d bytes: split it into several text elements",
                strlen(s), HD_BOARD_MAX_TEXT);
    else {
      *out = json_incref(v);
      rc = 2;
    }
  } else
    rc = fail(e, 400, "field \"%s\" cannot be set on a %s element", k, KINDS[kind]);
  if (rc == 1) *out = json_integer(x);
  json_decref(tmp);
  (void)b;
  return rc < 0 ? rc : 0;
}

/* The points of a stroke (x, y, pressure 0..100, time ms from the stroke's
 * start, per point) or a line/arrow (x1, y1, x2, y2), relative to (x, y). */
static int check_pts(const hd_board_t *b, int kind, json_t *p, hd_board_err_t *e) {
  if (!json_is_array(p)) return fail(e, 400, "field \"pts\" must be an array of integers");
  size_t n = json_array_size(p);
  if (kind == K_STROKE) {
    if (n < 4 || n % 4)
      return fail(e, 400,
                  "a stroke's \"pts\" is x, y, pressure, time per point: a multiple of 4 integers, at "
                  "least one point");
    if (n / 4 > (size_t)b->lim.max_points)
      return fail(
          e, 413,
          "a stroke of %zu points is over the cap of %d points per stroke (board.max_points): commit it "
          "as several strokes",
          n / 4, b->lim.max_points);
  } else if (n != 4)
    return fail(e, 400, "a %s's \"pts\" is x1, y1, x2, y2 (4 integers)", KINDS[kind]);
  size_t i;
  json_t *v;
  json_array_foreach(p, i, v) {
    if (!json_is_integer(v)) return fail(e, 400, "\"pts\"[%zu] must be an integer", i);
    int64_t x = json_integer_value(v);
    int64_t lo = -HD_BOARD_MAX_COORD, hi = HD_BOARD_MAX_COORD;
    if (kind == K_STROKE && i % 4 == 2) lo = 0, hi = 100;                /* pressure */
    if (kind == K_STROKE && i % 4 == 3) lo = 0, hi = 24LL * 3600 * 1000; /* time, ms */
    if (x < lo || x > hi)
      return fail(e, 400, "\"pts\"[%zu] = %lld is out of range %lld..%lld", i, (long long)x, (long long)lo,
                  (long long)hi);
  }
  return 0;
}

/* A new element from the client's "el": normalised (defaults filled, author
 * and version set) into *out. */
static int make_el(hd_board_t *b, json_t *in, const char *user, json_t **out, hd_board_err_t *e) {
  if (!json_is_object(in)) return fail(e, 400, "field \"el\" must be an object");
  const char *id = sget(in, "id"), *k = sget(in, "k");
  if (!id || !valid_id(id)) return fail(e, 400, "field \"el.id\" must be 1..40 of A-Z a-z 0-9 _ -");
  int kind = k ? kind_of(k) : -1;
  if (kind < 0)
    return fail(e, 400, "field \"el.k\" must be one of stroke, line, arrow, rect, ellipse, text, image");
  json_t *o = json_pack("{s:s,s:s,s:s,s:i,s:s,s:i,s:i}", "id", id, "k", k, "by", user, "v", 1, "c", "#000000",
                        "sw", 2, "o", 100);
  if (kind == K_TEXT) json_object_set_new(o, "fs", json_integer(24));
  const char *key;
  json_t *v;
  int rc = 0;
  json_object_foreach(in, key, v) {
    if (!strcmp(key, "id") || !strcmp(key, "k")) continue;
    if (!strcmp(key, "pts")) {
      if (kind != K_STROKE && kind != K_LINE && kind != K_ARROW) {
        rc = fail(e, 400, "a %s element has no \"pts\"", k);
        break;
      }
      if ((rc = check_pts(b, kind, v, e)) < 0) break;
      json_object_set(o, "pts", v);
      continue;
    }
    if (!strcmp(key, "src")) {
      const char *s = json_string_value(v);
      if (kind != K_IMAGE || !s || !valid_image_src(s)) {
        rc = fail(e, 400,
                  "field \"src\" belongs to image elements and is the path an upload returned "
                  "(/api/board/image/<sha256>): upload the image first (POST /api/board/image)");
        break;
      }
      json_object_set(o, "src", v);
      continue;
    }
    if (!settable(kind, key)) {
      rc = fail(e, 400, "unknown field \"el.%s\" for a %s element", key, k);
      break;
    }
    json_t *nv;
    if ((rc = check_field(b, kind, key, v, &nv, e)) < 0) break;
    if (json_is_null(nv))
      json_object_del(o, key);
    else
      json_object_set(o, key, nv);
    json_decref(nv);
  }
  static const char *const need[] = {"x", "y", "w", "h"};
  for (int i = 0; rc == 0 && i < 4; i++)
    if (!json_object_get(in, need[i])) rc = fail(e, 400, "field \"el.%s\" is required", need[i]);
  if (rc == 0 && (kind == K_STROKE || kind == K_LINE || kind == K_ARROW) && !json_object_get(o, "pts"))
    rc = fail(e, 400, "a %s needs \"pts\"", k);
  if (rc == 0 && kind == K_TEXT && !json_object_get(o, "txt"))
    rc = fail(e, 400, "a text element needs \"txt\"");
  if (rc == 0 && kind == K_IMAGE && !json_object_get(o, "src"))
    rc = fail(e, 400, "an image element needs \"src\" (upload it with POST /api/board/image)");
  if (rc < 0) {
    json_decref(o);
    return rc;
  }
  if (kind == K_STROKE || kind == K_LINE || kind == K_ARROW) {
    /* the points' frame: a resize scales the points by w/pw, h/ph */
    int64_t w = json_integer_value(json_object_get(o, "w")), h = json_integer_value(json_object_get(o, "h"));
    json_object_set_new(o, "pw", json_integer(w > 0 ? w : 1));
    json_object_set_new(o, "ph", json_integer(h > 0 ? h : 1));
  }
  *out = o;
  return 0;
}

static int op_add(hd_board_t *b, const json_t *op, const char *user, json_t *steps, hd_board_err_t *e) {
  const char *pid = sget(op, "page");
  page_t *pg = pid ? page_find(b, pid, NULL) : NULL;
  if (!pid) return fail(e, 400, "field \"page\" (the page id) is required");
  if (!pg)
    return fail(e, 404, "no page \"%s\" on this board (it was deleted?): add to an existing page", pid);
  json_t *el = NULL;
  int rc = make_el(b, json_object_get(op, "el"), user, &el, e);
  if (rc < 0) return rc;
  if (el_find(b, sget(el, "id"))) {
    int r = fail(e, 409, "an element \"%s\" exists already: use a new id", sget(el, "id"));
    json_decref(el);
    return r;
  }
  if (b->bytes + el_size(el) > b->lim.max_bytes) {
    json_decref(el);
    return fail(
        e, 503,
        "this board holds %zu KiB of elements, the cap is %zu KiB (board.max_board_mb): clear pages or "
        "start another board",
        b->bytes >> 10, b->lim.max_bytes >> 10);
  }
  if (pg->n >= (size_t)b->lim.max_elements) {
    json_decref(el);
    return fail(
        e, 503,
        "page \"%s\" holds %zu elements, the cap (board.max_elements): delete some or use another page", pid,
        pg->n);
  }
  json_array_append_new(
      steps, json_pack("{s:s,s:s,s:I,s:o}", "a", "add", "page", pid, "at", (json_int_t)pg->n, "el", el));
  return 0;
}

static int op_upd(hd_board_t *b, const json_t *op, json_t *steps, hd_board_err_t *e) {
  json_t *items = json_object_get(op, "items");
  if (!json_is_array(items) || !json_array_size(items))
    return fail(e, 400, "field \"items\" must be a non-empty array of {id, set, if?}");
  if (json_array_size(items) > HD_BOARD_MAX_ITEMS)
    return fail(e, 413, "%zu items in one update, the cap is %d: send several updates",
                json_array_size(items), HD_BOARD_MAX_ITEMS);
  size_t i;
  json_t *it;
  json_array_foreach(items, i, it) {
    const char *id = sget(it, "id");
    json_t *set = json_object_get(it, "set");
    if (!id || !json_is_object(set) || !json_object_size(set))
      return fail(e, 400, "items[%zu] needs \"id\" and a non-empty object \"set\"", i);
    el_t *el = el_find(b, id);
    if (!el) {
      if (json_array_size(items) == 1)
        return fail(e, 404, "element \"%s\" was deleted (or never existed): nothing to update", id);
      continue; /* deleted meanwhile by someone else: the others still move */
    }
    int64_t ifv;
    int rc = iget(it, "if", 1, INT64_MAX, &ifv, e);
    if (rc < 0) return rc;
    if (rc == 1 && ifv != el_v(el))
      return fail(
          e, 409,
          "element \"%s\" is at version %lld, not %lld: someone changed it; apply the newer state and "
          "retry",
          id, (long long)el_v(el), (long long)ifv);
    int kind = kind_of(sget(el->o, "k"));
    json_t *f = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(set, k, v) {
      json_t *nv;
      if (!settable(kind, k)) {
        json_decref(f);
        return fail(e, 400, "field \"%s\" cannot be set on a %s element", k, KINDS[kind]);
      }
      if ((rc = check_field(b, kind, k, v, &nv, e)) < 0) {
        json_decref(f);
        return rc;
      }
      json_object_set_new(f, k, nv);
    }
    json_array_append_new(steps, json_pack("{s:s,s:s,s:o}", "a", "set", "id", id, "f", f));
  }
  if (!json_array_size(steps)) return fail(e, 404, "every element named was deleted: nothing to update");
  return 0;
}

static int op_del(hd_board_t *b, const json_t *op, json_t *steps, hd_board_err_t *e) {
  json_t *ids = json_object_get(op, "ids");
  if (!json_is_array(ids) || !json_array_size(ids))
    return fail(e, 400, "field \"ids\" must be a non-empty array");
  if (json_array_size(ids) > HD_BOARD_MAX_ITEMS)
    return fail(e, 413, "%zu ids in one delete, the cap is %d: send several, or \"clear\" the page",
                json_array_size(ids), HD_BOARD_MAX_ITEMS);
  size_t i;
  json_t *v;
  json_array_foreach(ids, i, v) {
    const char *id = json_string_value(v);
    if (!id) return fail(e, 400, "\"ids\"[%zu] must be a string", i);
    if (el_find(b, id)) {
      int dup = 0;
      size_t j;
      json_t *s;
      json_array_foreach(steps, j, s) dup |= !strcmp(sget(s, "id"), id);
      if (!dup) json_array_append_new(steps, json_pack("{s:s,s:s}", "a", "del", "id", id));
    }
  }
  if (!json_array_size(steps)) return fail(e, 404, "the elements are already deleted: nothing to delete");
  return 0;
}

static int op_z(hd_board_t *b, const json_t *op, json_t *steps, hd_board_err_t *e) {
  const char *id = sget(op, "id");
  el_t *el = id ? el_find(b, id) : NULL;
  if (!id) return fail(e, 400, "field \"id\" is required");
  if (!el) return fail(e, 404, "element \"%s\" was deleted: nothing to reorder", id);
  json_t *to = json_object_get(op, "to");
  int64_t at;
  if (json_is_string(to) && !strcmp(json_string_value(to), "front"))
    at = (int64_t)el->pg->n - 1;
  else if (json_is_string(to) && !strcmp(json_string_value(to), "back"))
    at = 0;
  else if (json_is_integer(to) && json_integer_value(to) >= 0)
    at = json_integer_value(to) >= (int64_t)el->pg->n ? (int64_t)el->pg->n - 1 : json_integer_value(to);
  else
    return fail(e, 400, "field \"to\" must be \"front\", \"back\" or a z index (0 = back)");
  json_array_append_new(steps, json_pack("{s:s,s:s,s:I}", "a", "z", "id", id, "at", (json_int_t)at));
  return 0;
}

static int op_page(hd_board_t *b, const char *name, const json_t *op, json_t *steps, hd_board_err_t *e) {
  if (!strcmp(name, "page_add")) {
    json_t *p = json_object_get(op, "page");
    const char *id = sget(p, "id"), *pn = sget(p, "name");
    if (!id || !valid_id(id)) return fail(e, 400, "field \"page.id\" must be 1..40 of A-Z a-z 0-9 _ -");
    if (!pn) pn = "";
    if (strlen(pn) > HD_BOARD_MAX_NAME) return fail(e, 413, "page name over %d bytes", HD_BOARD_MAX_NAME);
    if (page_find(b, id, NULL)) return fail(e, 409, "a page \"%s\" exists already: use a new id", id);
    if (b->n_pages >= (size_t)b->lim.max_pages)
      return fail(e, 503, "this board has %zu pages, the cap (board.max_pages): delete one first",
                  b->n_pages);
    int64_t at = (int64_t)b->n_pages;
    int rc = iget(op, "at", 0, INT32_MAX, &at, e);
    if (rc < 0) return rc;
    if (at > (int64_t)b->n_pages) at = (int64_t)b->n_pages;
    json_array_append_new(steps, json_pack("{s:s,s:I,s:{s:s,s:s}}", "a", "padd", "at", (json_int_t)at, "page",
                                           "id", id, "name", pn));
    return 0;
  }
  const char *id = sget(op, "page");
  size_t idx;
  if (!id) return fail(e, 400, "field \"page\" (the page id) is required");
  page_t *pg = page_find(b, id, &idx);
  if (!pg) return fail(e, 404, "no page \"%s\" on this board", id);
  if (!strcmp(name, "page_del")) {
    if (b->n_pages <= 1) return fail(e, 409, "a board keeps at least one page: clear it instead");
    json_array_append_new(steps, json_pack("{s:s,s:s}", "a", "pdel", "id", id));
  } else if (!strcmp(name, "page_move")) {
    int64_t to;
    int rc = iget(op, "to", 0, INT32_MAX, &to, e);
    if (rc <= 0) return rc < 0 ? rc : fail(e, 400, "field \"to\" (the new index, 0 = first) is required");
    if (to >= (int64_t)b->n_pages) to = (int64_t)b->n_pages - 1;
    json_array_append_new(steps, json_pack("{s:s,s:s,s:I}", "a", "pmove", "id", id, "at", (json_int_t)to));
  } else { /* clear */
    if (!pg->n) return fail(e, 404, "page \"%s\" is empty: nothing to clear", id);
    json_array_append_new(steps, json_pack("{s:s,s:s}", "a", "clear", "page", id));
  }
  return 0;
}

static ustack_t *ustack(hd_board_t *b, const char *user, int create) {
  for (size_t i = 0; i < b->n_users; i++)
    if (!strcmp(b->users[i].user, user)) return &b->users[i];
  if (!create || b->n_users >= HD_BOARD_MAX_USERS) return NULL;
  ustack_t *a = realloc(b->users, (b->n_users + 1) * sizeof *a);
  if (!a) return NULL;
  b->users = a;
  ustack_t *u = &a[b->n_users];
  u->user = strdup(user);
  u->undo = json_array();
  u->redo = json_array();
  if (!u->user || !u->undo || !u->redo) {
    free(u->user);
    json_decref(u->undo);
    json_decref(u->redo);
    return NULL;
  }
  b->n_users++;
  return u;
}

static void push_capped(json_t *stack, json_t *steps, int cap) {
  json_array_append(stack, steps);
  while (json_array_size(stack) > (size_t)cap)
    json_array_remove(stack, 0);
}

/* An ephemeral operation: checked, never applied. */
static int op_ephemeral(const hd_board_t *b, const char *name, const json_t *op, size_t len, int writer,
                        hd_board_err_t *e) {
  int64_t x;
  int rc;
  if (!strcmp(name, "cur")) {
    if (len > 1024) return fail(e, 413, "a cursor message is at most 1024 bytes");
    if ((rc = iget(op, "x", -HD_BOARD_MAX_COORD, HD_BOARD_MAX_COORD, &x, e)) <= 0 ||
        (rc = iget(op, "y", -HD_BOARD_MAX_COORD, HD_BOARD_MAX_COORD, &x, e)) <= 0)
      return rc < 0 ? rc : fail(e, 400, "a cursor needs integer \"x\" and \"y\"");
    json_t *l = json_object_get(op, "laser");
    if (l && !json_is_boolean(l)) return fail(e, 400, "field \"laser\" must be true or false");
    if (l && json_is_true(l) && !writer)
      return fail(e, 403, "the laser pointer needs a writer's token (canPublishData)");
    return HD_BOARD_EPHEMERAL;
  }
  /* live: a stroke being drawn */
  if (!writer) return fail(e, 403, "drawing needs a writer's token (canPublishData); this one is a reader's");
  const char *id = sget(op, "id");
  json_t *p = json_object_get(op, "pts");
  if (!id || !valid_id(id))
    return fail(e, 400, "field \"id\" (the stroke's id) must be 1..40 of A-Z a-z 0-9 _ -");
  if (!json_is_array(p) || json_array_size(p) % 4 || json_array_size(p) > 4 * HD_BOARD_MAX_LIVE_POINTS)
    return fail(e, 400, "field \"pts\" must be x, y, pressure, time per point, at most %d points per message",
                HD_BOARD_MAX_LIVE_POINTS);
  size_t i;
  json_t *v;
  json_array_foreach(p, i, v) if (!json_is_integer(v)) return fail(e, 400, "\"pts\"[%zu] must be an integer",
                                                                   i);
  (void)b;
  return HD_BOARD_EPHEMERAL;
}

static char *make_entry(const hd_board_t *b, int64_t ts_ms, const char *user, const char *cid, const char *op,
                        json_t *applied) {
  json_t *o = json_pack("{s:I,s:I,s:s,s:s,s:O}", "seq", (json_int_t)(b->seq + 1), "ts", (json_int_t)ts_ms,
                        "by", user, "op", op, "do", applied);
  if (!o) return NULL;
  if (cid) json_object_set_new(o, "cid", json_string(cid));
  char *t = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return t;
}

int hd_board_op(hd_board_t *b, const char *user, int writer, const char *text, size_t len, int64_t ts_ms,
                char **entry, hd_board_err_t *err) {
  json_error_t je;
  *entry = NULL;
  json_t *op = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  int rc = 0;
  json_t *steps = NULL, *applied = NULL, *inv = NULL;
  if (!json_is_object(op)) {
    rc = fail(err, 400, "an operation is a JSON object {\"op\": ...}: %s",
              op ? "this is not an object" : je.text);
    goto done;
  }
  const char *name = sget(op, "op");
  json_t *cidv = json_object_get(op, "cid");
  const char *cid = json_string_value(cidv);
  if (!name) {
    rc = fail(err, 400, "field \"op\" (the operation's name) is required");
    goto done;
  }
  if (cidv && (!cid || strlen(cid) > 64)) {
    rc = fail(err, 400, "field \"cid\" (the client's operation id) must be a string of at most 64 bytes");
    goto done;
  }
  if (!strcmp(name, "cur") || !strcmp(name, "live")) {
    rc = op_ephemeral(b, name, op, len, writer, err);
    goto done;
  }
  static const char *const known[] = {"add",      "upd",       "del",  "z",    "clear", "page_add",
                                      "page_del", "page_move", "undo", "redo", NULL};
  int k = 0;
  while (known[k] && strcmp(known[k], name))
    k++;
  if (!known[k]) {
    rc =
        fail(err, 400,
             "unknown operation \"%.32s\": use add, upd, del, z, clear, page_add, page_del, page_move, undo, "
             "redo, cur or live",
             name);
    goto done;
  }
  if (!writer) {
    rc = fail(
        err, 403,
        "this token is a reader's (no canPublishData grant): it may watch the board and show a cursor; ask "
        "for a writer's token to draw");
    goto done;
  }
  steps = json_array();
  applied = json_array();
  inv = json_array();
  if (!steps || !applied || !inv) {
    rc = fail(err, 500, "out of memory");
    goto done;
  }
  int undo = !strcmp(name, "undo"), redo = !strcmp(name, "redo");
  if (undo || redo) {
    ustack_t *u = ustack(b, user, 0);
    json_t *stk = u ? (undo ? u->undo : u->redo) : NULL;
    /* the newest entry that still changes something (others may have undone
     * its effect already: e.g. deleted the stroke this would delete) */
    while (stk && json_array_size(stk)) {
      json_t *top = json_incref(json_array_get(stk, json_array_size(stk) - 1));
      json_array_remove(stk, json_array_size(stk) - 1);
      char *t = json_dumps(top, JSON_COMPACT);
      size_t tl = t ? strlen(t) : 0;
      free(t);
      if (tl + 256 > b->lim.max_entry) {
        json_decref(top);
        rc = fail(
            err, 413,
            "this %s would send %zu bytes, over the cap of %zu (board.max_entry_kb); it is dropped from your "
            "history",
            name, tl, b->lim.max_entry);
        goto done;
      }
      rc = apply_steps(b, top, applied, inv, 1);
      json_decref(top);
      if (rc < 0) {
        rc = fail(err, 500, "undo history damaged");
        goto done;
      }
      if (rc > 0) break;
    }
    if (!json_array_size(applied)) {
      rc = fail(err, 404, "nothing to %s", name);
      goto done;
    }
    push_capped(undo ? u->redo : u->undo, inv, b->lim.max_undo);
  } else {
    if (!strcmp(name, "add"))
      rc = op_add(b, op, user, steps, err);
    else if (!strcmp(name, "upd"))
      rc = op_upd(b, op, steps, err);
    else if (!strcmp(name, "del"))
      rc = op_del(b, op, steps, err);
    else if (!strcmp(name, "z"))
      rc = op_z(b, op, steps, err);
    else if (!strcmp(name, "clear"))
      rc = op_page(b, "clear", op, steps, err);
    else
      rc = op_page(b, name, op, steps, err);
    if (rc < 0) goto done;
    rc = apply_steps(b, steps, applied, inv, 1);
    if (rc <= 0) { /* validation above makes every step apply */
      rc = fail(err, 500, "operation did not apply");
      goto done;
    }
    ustack_t *u = ustack(b, user, 1);
    if (u) {
      push_capped(u->undo, inv, b->lim.max_undo);
      json_array_clear(u->redo);
    }
  }
  *entry = make_entry(b, ts_ms, user, cid, name, applied);
  if (!*entry) {
    rc = fail(err, 500, "out of memory");
    goto done;
  }
  b->seq++;
  rc = HD_BOARD_COMMITTED;
done:
  json_decref(op);
  json_decref(steps);
  json_decref(applied);
  json_decref(inv);
  return rc;
}

int hd_board_apply_entry(hd_board_t *b, const char *text, size_t len) {
  json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
  json_t *seq = json_object_get(o, "seq"), *d = json_object_get(o, "do");
  int rc;
  if (!json_is_integer(seq) || !json_is_array(d))
    rc = HD_EPROTO;
  else if (json_integer_value(seq) != b->seq + 1)
    rc = HD_ESTATE;
  else {
    /* check every step's shape first: a malformed entry changes nothing */
    size_t i;
    json_t *st;
    rc = 0;
    json_array_foreach(d, i, st) if (!step_ok(st)) rc = HD_EPROTO;
    if (!rc) {
      rc = apply_steps(b, d, NULL, NULL, 0);
      if (rc >= 0) {
        b->seq++;
        rc = 0;
      }
    }
  }
  json_decref(o);
  return rc;
}

/* ------------------------------------------------------------ snapshots */

static json_t *pages_json(const hd_board_t *b) {
  json_t *pages = json_array();
  for (size_t i = 0; pages && i < b->n_pages; i++) {
    page_t *pg = b->pages[i];
    json_t *els = json_array();
    for (size_t j = 0; els && j < pg->n; j++)
      json_array_append(els, pg->els[j]->o);
    json_array_append_new(pages, json_pack("{s:s,s:s,s:o}", "id", pg->id, "name", pg->name, "els", els));
  }
  return pages;
}

char *hd_board_snapshot(const hd_board_t *b) {
  json_t *o = json_pack("{s:I,s:o}", "seq", (json_int_t)b->seq, "pages", pages_json(b));
  char *t = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(o);
  return t;
}

uint64_t hd_board_hash(const hd_board_t *b) {
  json_t *p = pages_json(b);
  char *t = p ? json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(p);
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const char *c = t; c && *c; c++)
    h = (h ^ (uint8_t)*c) * 0x100000001b3ULL;
  free(t);
  return h;
}

int hd_board_load_snapshot(hd_board_t *b, const char *text, size_t len) {
  json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
  json_t *seq = json_object_get(o, "seq"), *pages = json_object_get(o, "pages");
  int rc = 0;
  if (!json_is_integer(seq) || json_integer_value(seq) < 0 || !json_is_array(pages) ||
      !json_array_size(pages) || json_array_size(pages) > (size_t)b->lim.max_pages) {
    json_decref(o);
    return HD_EPROTO;
  }
  /* build into a fresh board, then swap: a bad snapshot leaves b as it was */
  hd_board_t *nb;
  if ((rc = hd_board_new(&nb, &b->lim)) < 0) {
    json_decref(o);
    return rc;
  }
  board_clear(nb);
  size_t i, j;
  json_t *p, *el;
  json_array_foreach(pages, i, p) {
    const char *id = sget(p, "id"), *name = sget(p, "name");
    json_t *els = json_object_get(p, "els");
    if (!id || !valid_id(id) || !name || strlen(name) > HD_BOARD_MAX_NAME || !json_is_array(els) ||
        page_find(nb, id, NULL)) {
      rc = HD_EPROTO;
      break;
    }
    page_t *pg = page_new(id, name);
    if (!pg || page_insert(nb, nb->n_pages, pg) < 0) {
      free(pg);
      rc = HD_ENOMEM;
      break;
    }
    json_array_foreach(els, j, el) {
      const char *eid = sget(el, "id");
      if (!json_is_object(el) || !eid || !valid_id(eid) || !sget(el, "k") ||
          !json_is_integer(json_object_get(el, "v")) || el_find(nb, eid)) {
        rc = HD_EPROTO;
        break;
      }
      if ((rc = el_insert(nb, pg, pg->n, el)) < 0) break;
    }
    if (rc < 0) break;
  }
  int64_t nseq = json_integer_value(seq);
  json_decref(o);
  if (rc < 0) {
    hd_board_free(nb);
    return rc;
  }
  /* swap contents */
  board_clear(b);
  free(b->pages);
  users_clear(b);
  hd_map_free(&b->ids);
  b->pages = nb->pages;
  b->n_pages = nb->n_pages;
  b->cap_pages = nb->cap_pages;
  b->ids = nb->ids;
  b->n_els = nb->n_els;
  b->bytes = nb->bytes;
  b->seq = nseq;
  free(nb);
  return 0;
}

int hd_board_each(const hd_board_t *b, int page, hd_board_el_fn fn, void *ud) {
  if (page < 0 || (size_t)page >= b->n_pages) return HD_ENOTFOUND;
  page_t *pg = b->pages[page];
  int n = 0;
  for (size_t i = 0; i < pg->n; i++) {
    char *t = json_dumps(pg->els[i]->o, JSON_COMPACT | JSON_SORT_KEYS);
    if (!t) return HD_ENOMEM;
    int rc = fn(ud, pg->id, t);
    free(t);
    n++;
    if (rc < 0) break;
  }
  return n;
}
