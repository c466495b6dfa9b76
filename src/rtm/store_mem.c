/* In-memory RTM store (store.h): the reference semantics of the storage
 * interface, used by the unit tests. Linear lists: it holds test-sized data.
 * A deleted attribute stays as a tombstone (value NULL) so that its revision
 * keeps counting up when the key is created again (no ABA for CAS). */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "rtm/store.h"

typedef struct mmsg {
  struct mmsg *next;
  int64_t cseq, ts_ms;
  char *from, *data;
} mmsg_t;

typedef struct mchan {
  struct mchan *next;
  char *app, *ch;
  int64_t hwm;
  mmsg_t *head, *tail;
  int n;
  int64_t bytes; /* stored data + sender bytes of its messages */
} mchan_t;

typedef struct mattr {
  struct mattr *next;
  char *app, *name, *key, *value; /* value NULL = tombstone */
  int sc;
  int64_t rev;
} mattr_t;

typedef struct mlock {
  struct mlock *next;
  char *app, *ch, *name, *owner;
  int64_t exp_ms;
} mlock_t;

typedef struct {
  hd_rtm_store_t base;
  mchan_t *chans;
  mattr_t *attrs;
  mlock_t *locks;
} mem_t;

static char *dup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

static mchan_t *chan(mem_t *m, const char *app, const char *ch, int create) {
  for (mchan_t *c = m->chans; c; c = c->next)
    if (!strcmp(c->app, app) && !strcmp(c->ch, ch)) return c;
  if (!create) return NULL;
  mchan_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->app = dup(app);
  c->ch = dup(ch);
  if (!c->app || !c->ch) {
    free(c->app);
    free(c->ch);
    free(c);
    return NULL;
  }
  c->next = m->chans;
  m->chans = c;
  return c;
}

static void mem_close(hd_rtm_store_t *s) {
  mem_t *m = (mem_t *)s;
  while (m->chans) {
    mchan_t *c = m->chans;
    m->chans = c->next;
    while (c->head) {
      mmsg_t *x = c->head;
      c->head = x->next;
      free(x->from);
      free(x->data);
      free(x);
    }
    free(c->app);
    free(c->ch);
    free(c);
  }
  while (m->attrs) {
    mattr_t *a = m->attrs;
    m->attrs = a->next;
    free(a->app);
    free(a->name);
    free(a->key);
    free(a->value);
    free(a);
  }
  while (m->locks) {
    mlock_t *l = m->locks;
    m->locks = l->next;
    free(l->app);
    free(l->ch);
    free(l->name);
    free(l->owner);
    free(l);
  }
  free(m);
}

static int mem_seq_get(hd_rtm_store_t *s, const char *app, const char *ch, int64_t *out) {
  mchan_t *c = chan((mem_t *)s, app, ch, 0);
  *out = c ? c->hwm : 0;
  return 0;
}

static int mem_seq_put(hd_rtm_store_t *s, const char *app, const char *ch, int64_t hwm) {
  mchan_t *c = chan((mem_t *)s, app, ch, 1);
  if (!c) return HD_ENOMEM;
  c->hwm = hwm;
  return 0;
}

static int64_t msg_bytes(const char *from, const char *data) {
  return (int64_t)(strlen(from) + strlen(data));
}

static int mem_usage(hd_rtm_store_t *s, const char *app, hd_rtm_usage_t *out) {
  memset(out, 0, sizeof *out);
  for (mchan_t *c = ((mem_t *)s)->chans; c; c = c->next)
    if (c->n > 0 && !strcmp(c->app, app)) {
      out->channels++;
      out->bytes += c->bytes;
    }
  return 0;
}

static void drop_head(mchan_t *c) {
  mmsg_t *h = c->head;
  c->head = h->next;
  if (!c->head) c->tail = NULL;
  c->bytes -= msg_bytes(h->from, h->data);
  free(h->from);
  free(h->data);
  free(h);
  c->n--;
}

/* No disk: lim->min_free_bytes does not apply. */
static int mem_msg_append(hd_rtm_store_t *s, const char *app, const char *ch, const hd_rtm_stored_msg_t *m,
                          const hd_rtm_store_limits_t *lim, hd_rtm_usage_t *use) {
  hd_rtm_usage_t u;
  mem_usage(s, app, &u);
  mchan_t *c = chan((mem_t *)s, app, ch, 0);
  int64_t len = msg_bytes(m->from, m->data), trimmed = 0;
  int k = c && lim->keep > 0 ? c->n + 1 - lim->keep : 0; /* oldest messages that make room */
  mmsg_t *x = c ? c->head : NULL;
  for (int i = 0; i < k && x; i++, x = x->next)
    trimmed += msg_bytes(x->from, x->data);
  if (lim->app_channels > 0 && (!c || c->n == 0) && u.channels >= lim->app_channels)
    u.refused = HD_RTM_STORE_QUOTA_CHANNELS;
  else if (lim->app_bytes > 0 && len > trimmed && u.bytes + len - trimmed > lim->app_bytes)
    u.refused = HD_RTM_STORE_QUOTA_BYTES;
  if (u.refused) {
    if (use) *use = u;
    return HD_ENOSPC;
  }
  if (!c) c = chan((mem_t *)s, app, ch, 1);
  x = c ? calloc(1, sizeof *x) : NULL;
  if (!x) return HD_ENOMEM;
  x->cseq = m->cseq;
  x->ts_ms = m->ts_ms;
  x->from = dup(m->from);
  x->data = dup(m->data);
  if (!x->from || !x->data) {
    free(x->from);
    free(x->data);
    free(x);
    return HD_ENOMEM;
  }
  if (c->tail)
    c->tail->next = x;
  else
    c->head = x;
  c->tail = x;
  c->n++;
  c->bytes += len;
  while (lim->keep > 0 && c->n > lim->keep)
    drop_head(c);
  if (use) mem_usage(s, app, use);
  return 0;
}

static int mem_msg_query(hd_rtm_store_t *s, const char *app, const char *ch, const hd_rtm_hist_query_t *q,
                         hd_rtm_msg_fn fn, void *ud) {
  mchan_t *c = chan((mem_t *)s, app, ch, 0);
  if (!c || q->limit <= 0) return 0;
  int skip = 0;
  if (q->after < 0 && q->since < 0 && c->n > q->limit) skip = c->n - q->limit;
  int n = 0;
  for (mmsg_t *x = c->head; x && n < q->limit; x = x->next) {
    if (skip > 0) {
      skip--;
      continue;
    }
    if (q->after >= 0 && x->cseq <= q->after) continue;
    if (q->after < 0 && q->since >= 0 && x->ts_ms < q->since) continue;
    hd_rtm_stored_msg_t m = {x->cseq, x->ts_ms, x->from, x->data};
    n++;
    if (fn(ud, &m) < 0) break;
  }
  return n;
}

static mattr_t *attr_find(mem_t *m, const char *app, int sc, const char *name, const char *key) {
  for (mattr_t *a = m->attrs; a; a = a->next)
    if (a->sc == sc && !strcmp(a->app, app) && !strcmp(a->name, name) && !strcmp(a->key, key)) return a;
  return NULL;
}

static int mem_attr_list(hd_rtm_store_t *s, const char *app, hd_rtm_scope_t sc, const char *name,
                         hd_rtm_attr_fn fn, void *ud) {
  mem_t *m = (mem_t *)s;
  /* ascending key order: selection by repeated minimum (test-sized data) */
  const char *last = NULL;
  int n = 0;
  for (;;) {
    mattr_t *best = NULL;
    for (mattr_t *a = m->attrs; a; a = a->next)
      if (a->value && a->sc == (int)sc && !strcmp(a->app, app) && !strcmp(a->name, name) &&
          (!last || strcmp(a->key, last) > 0) && (!best || strcmp(a->key, best->key) < 0))
        best = a;
    if (!best) break;
    hd_rtm_attr_t x = {best->key, best->value, best->rev};
    n++;
    if (fn(ud, &x) < 0) break;
    last = best->key;
  }
  return n;
}

static int mem_attr_cas(hd_rtm_store_t *s, const char *app, hd_rtm_scope_t sc, const char *name,
                        const char *key, const char *value, int64_t expect, int max_keys, int64_t *rev) {
  mem_t *m = (mem_t *)s;
  mattr_t *a = attr_find(m, app, (int)sc, name, key);
  int64_t cur = a && a->value ? a->rev : 0;
  if (expect >= 0 && expect != cur) {
    *rev = cur;
    return HD_ESTATE;
  }
  if (!value && cur == 0) return HD_ENOTFOUND;
  if (value && cur == 0 && max_keys > 0) {
    int n = 0;
    for (mattr_t *x = m->attrs; x; x = x->next)
      n += x->value && x->sc == (int)sc && !strcmp(x->app, app) && !strcmp(x->name, name);
    if (n >= max_keys) return HD_ENOSPC;
  }
  if (!a) {
    a = calloc(1, sizeof *a);
    if (!a) return HD_ENOMEM;
    a->app = dup(app);
    a->name = dup(name);
    a->key = dup(key);
    a->sc = (int)sc;
    if (!a->app || !a->name || !a->key) {
      free(a->app);
      free(a->name);
      free(a->key);
      free(a);
      return HD_ENOMEM;
    }
    a->next = m->attrs;
    m->attrs = a;
  }
  char *nv = NULL;
  if (value && !(nv = dup(value))) return HD_ENOMEM;
  free(a->value);
  a->value = nv;
  a->rev++;
  *rev = a->rev;
  return 0;
}

static int mem_lock_put(hd_rtm_store_t *s, const char *app, const hd_rtm_lock_rec_t *l) {
  mem_t *m = (mem_t *)s;
  for (mlock_t *x = m->locks; x; x = x->next)
    if (!strcmp(x->app, app) && !strcmp(x->ch, l->ch) && !strcmp(x->name, l->name)) {
      char *o = dup(l->owner);
      if (!o) return HD_ENOMEM;
      free(x->owner);
      x->owner = o;
      x->exp_ms = l->exp_ms;
      return 0;
    }
  mlock_t *x = calloc(1, sizeof *x);
  if (!x) return HD_ENOMEM;
  x->app = dup(app);
  x->ch = dup(l->ch);
  x->name = dup(l->name);
  x->owner = dup(l->owner);
  x->exp_ms = l->exp_ms;
  if (!x->app || !x->ch || !x->name || !x->owner) {
    free(x->app);
    free(x->ch);
    free(x->name);
    free(x->owner);
    free(x);
    return HD_ENOMEM;
  }
  x->next = m->locks;
  m->locks = x;
  return 0;
}

static int mem_lock_del(hd_rtm_store_t *s, const char *app, const char *ch, const char *name) {
  mem_t *m = (mem_t *)s;
  for (mlock_t **pp = &m->locks; *pp; pp = &(*pp)->next) {
    mlock_t *x = *pp;
    if (!strcmp(x->app, app) && !strcmp(x->ch, ch) && !strcmp(x->name, name)) {
      *pp = x->next;
      free(x->app);
      free(x->ch);
      free(x->name);
      free(x->owner);
      free(x);
      return 0;
    }
  }
  return 0;
}

static int mem_lock_load(hd_rtm_store_t *s, hd_rtm_lock_fn fn, void *ud) {
  int n = 0;
  for (mlock_t *x = ((mem_t *)s)->locks; x; x = x->next) {
    hd_rtm_lock_rec_t l = {x->ch, x->name, x->owner, x->exp_ms};
    n++;
    if (fn(ud, x->app, &l) < 0) break;
  }
  return n;
}

static const hd_rtm_store_ops_t MEM_OPS = {mem_close,     mem_seq_get,   mem_seq_put,  mem_msg_append,
                                           mem_msg_query, mem_attr_list, mem_attr_cas, mem_lock_put,
                                           mem_lock_del,  mem_lock_load, mem_usage,    NULL,
                                           NULL}; /* no group commit: each append stands alone */

int hd_rtm_store_mem_new(hd_rtm_store_t **out) {
  mem_t *m = calloc(1, sizeof *m);
  if (!m) return HD_ENOMEM;
  m->base.ops = &MEM_OPS;
  *out = &m->base;
  return 0;
}

void hd_rtm_store_free(hd_rtm_store_t *s) {
  if (s) s->ops->close(s);
}
