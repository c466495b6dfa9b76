/* RTM locks: named locks per channel with a time-to-live (docs/rtm.md
 * "Locks"), the building block for seat and mic management. A lock has one
 * owner (a user id) until it is released by the owner, stolen by an admin, or
 * its TTL runs out; acquiring a lock one already holds refreshes its TTL.
 * In-memory table with a hard cap; the broker writes every change through to
 * the store so that locks survive a restart. Sans-IO: times are passed in. */
#ifndef HD_RTM_LOCKS_H
#define HD_RTM_LOCKS_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

typedef struct hd_rtm_lock {
  struct hd_rtm_lock *next;
  char app[64], ch[65], name[65], owner[128];
  hd_time_t exp; /* on the caller's clock */
} hd_rtm_lock_t;

typedef struct {
  hd_rtm_lock_t *head;
  size_t count, max;
} hd_rtm_locks_t;

void hd_rtm_locks_init(hd_rtm_locks_t *t, size_t max);
void hd_rtm_locks_free(hd_rtm_locks_t *t);
/* The live lock (exp > now), or NULL. */
hd_rtm_lock_t *hd_rtm_locks_get(hd_rtm_locks_t *t, const char *app, const char *ch, const char *name,
                                hd_time_t now);
/* Acquire (or refresh) for owner until exp. force != 0 takes it from another
 * owner (steal). Returns 0 (acquired; *prev_owner gets the previous live
 * owner or "" when it was free), HD_ESTATE (held by another; *prev_owner =
 * holder), HD_ENOSPC (table full), HD_EINVAL (a name over its buffer). */
int hd_rtm_locks_acquire(hd_rtm_locks_t *t, const char *app, const char *ch, const char *name,
                         const char *owner, hd_time_t exp, int force, hd_time_t now, char prev_owner[128]);
/* Release by owner (owner NULL: anyone, i.e. admin). Returns 0, HD_ENOTFOUND
 * (no live lock), HD_EFORBIDDEN (held by someone else). */
int hd_rtm_locks_release(hd_rtm_locks_t *t, const char *app, const char *ch, const char *name,
                         const char *owner, hd_time_t now);
/* Removes every lock with exp <= now, calling fn(ud, lock) for each before it
 * is freed. Returns how many expired. */
int hd_rtm_locks_expire(hd_rtm_locks_t *t, hd_time_t now, void (*fn)(void *ud, const hd_rtm_lock_t *l),
                        void *ud);
/* Earliest expiry, HD_TIME_NEVER if none. */
hd_time_t hd_rtm_locks_next(const hd_rtm_locks_t *t);

#endif
