/* RTM TTL locks (locks.h). A linked list: lock counts per node are small
 * (seats and mics), and the cap bounds the walk. */
#include "rtm/locks.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/str.h"

void hd_rtm_locks_init(hd_rtm_locks_t *t, size_t max) {
  t->head = NULL;
  t->count = 0;
  t->max = max;
}

void hd_rtm_locks_free(hd_rtm_locks_t *t) {
  while (t->head) {
    hd_rtm_lock_t *l = t->head;
    t->head = l->next;
    free(l);
  }
  t->count = 0;
}

static hd_rtm_lock_t *find(hd_rtm_locks_t *t, const char *app, const char *ch, const char *name) {
  for (hd_rtm_lock_t *l = t->head; l; l = l->next)
    if (!strcmp(l->name, name) && !strcmp(l->ch, ch) && !strcmp(l->app, app)) return l;
  return NULL;
}

hd_rtm_lock_t *hd_rtm_locks_get(hd_rtm_locks_t *t, const char *app, const char *ch, const char *name,
                                hd_time_t now) {
  hd_rtm_lock_t *l = find(t, app, ch, name);
  return l && l->exp > now ? l : NULL;
}

int hd_rtm_locks_acquire(hd_rtm_locks_t *t, const char *app, const char *ch, const char *name,
                         const char *owner, hd_time_t exp, int force, hd_time_t now, char prev_owner[128]) {
  prev_owner[0] = 0;
  if (strlen(app) >= sizeof t->head->app || strlen(ch) >= sizeof t->head->ch ||
      strlen(name) >= sizeof t->head->name || strlen(owner) >= sizeof t->head->owner)
    return HD_EINVAL;
  hd_rtm_lock_t *l = find(t, app, ch, name);
  if (l && l->exp > now) {
    hd_scpy(prev_owner, 128, l->owner);
    if (strcmp(l->owner, owner) && !force) return HD_ESTATE;
  }
  if (!l) {
    if (t->count >= t->max) return HD_ENOSPC;
    l = calloc(1, sizeof *l);
    if (!l) return HD_ENOMEM;
    hd_scpy(l->app, sizeof l->app, app);
    hd_scpy(l->ch, sizeof l->ch, ch);
    hd_scpy(l->name, sizeof l->name, name);
    l->next = t->head;
    t->head = l;
    t->count++;
  }
  hd_scpy(l->owner, sizeof l->owner, owner);
  l->exp = exp;
  return 0;
}

int hd_rtm_locks_release(hd_rtm_locks_t *t, const char *app, const char *ch, const char *name,
                         const char *owner, hd_time_t now) {
  for (hd_rtm_lock_t **pp = &t->head; *pp; pp = &(*pp)->next) {
    hd_rtm_lock_t *l = *pp;
    if (strcmp(l->name, name) || strcmp(l->ch, ch) || strcmp(l->app, app)) continue;
    if (l->exp <= now) return HD_ENOTFOUND;
    if (owner && strcmp(l->owner, owner)) return HD_EFORBIDDEN;
    *pp = l->next;
    free(l);
    t->count--;
    return 0;
  }
  return HD_ENOTFOUND;
}

int hd_rtm_locks_expire(hd_rtm_locks_t *t, hd_time_t now, void (*fn)(void *ud, const hd_rtm_lock_t *l),
                        void *ud) {
  int n = 0;
  for (hd_rtm_lock_t **pp = &t->head; *pp;) {
    hd_rtm_lock_t *l = *pp;
    if (l->exp > now) {
      pp = &l->next;
      continue;
    }
    *pp = l->next;
    t->count--;
    if (fn) fn(ud, l);
    free(l);
    n++;
  }
  return n;
}

hd_time_t hd_rtm_locks_next(const hd_rtm_locks_t *t) {
  hd_time_t m = HD_TIME_NEVER;
  for (const hd_rtm_lock_t *l = t->head; l; l = l->next)
    if (l->exp < m) m = l->exp;
  return m;
}
