/* Recently seen cross-node message keys (seen.h). A ring in arrival order
 * (eviction = the oldest) plus a hash map from a 128-bit digest of the key to
 * its ring slot; the full key is kept and compared, so a digest collision
 * never drops a message (it only makes the older key forgettable sooner). */
#include "rtm/seen.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

static void digest(const char *k, size_t len, uint8_t out[16]) {
  uint64_t a = 14695981039346656037ull, b = 0x84222325cbf29ce4ull ^ len;
  for (size_t i = 0; i < len; i++) {
    a = (a ^ (uint8_t)k[i]) * 1099511628211ull;
    b = (b ^ (uint8_t)k[len - 1 - i]) * 0x100000001b3ull;
    b ^= b >> 29;
  }
  memcpy(out, &a, 8);
  memcpy(out + 8, &b, 8);
}

int hd_rtm_seen_init(hd_rtm_seen_t *s, size_t cap) {
  memset(s, 0, sizeof *s);
  if (cap < 1) return HD_EINVAL;
  s->ring = calloc(cap, sizeof *s->ring);
  if (!s->ring) return HD_ENOMEM;
  if (hd_map_init(&s->map, cap) < 0) {
    free(s->ring);
    s->ring = NULL;
    return HD_ENOMEM;
  }
  s->cap = cap;
  return 0;
}

void hd_rtm_seen_free(hd_rtm_seen_t *s) {
  if (!s->ring) return;
  for (size_t i = 0; i < s->cap; i++) {
    free(s->ring[i].key);
    free(s->ring[i].first);
    free(s->ring[i].wait);
  }
  free(s->ring);
  hd_map_free(&s->map);
  memset(s, 0, sizeof *s);
}

static hd_rtm_seen_ent_t *find(hd_rtm_seen_t *s, const uint8_t d[16], const char *key, size_t len) {
  uintptr_t v = (uintptr_t)hd_map_get(&s->map, d, 16);
  if (!v) return NULL;
  hd_rtm_seen_ent_t *e = &s->ring[v - 1];
  return e->key && e->len == len && !memcmp(e->key, key, len) ? e : NULL;
}

/* Adds origin to e's waiting origins unless it is there already or is the
 * first copy's (answered by the caller: it must not take a slot). */
static void wait_add(hd_rtm_seen_t *s, hd_rtm_seen_ent_t *e, const char *origin) {
  size_t ol = strlen(origin), used = 0;
  if (e->first && !strcmp(e->first, origin)) return;
  for (size_t i = 0; i < e->n_wait; i++) {
    const char *w = e->wait + used;
    if (!strcmp(w, origin)) return;
    used += strlen(w) + 1;
  }
  char *grown =
      e->n_wait < HD_RTM_SEEN_WAITERS && ol < HD_RTM_SEEN_ORIGIN_MAX ? realloc(e->wait, used + ol + 1) : NULL;
  if (!grown) {
    s->unanswered++;
    return;
  }
  memcpy(grown + used, origin, ol + 1);
  e->wait = grown;
  e->n_wait++;
}

int hd_rtm_seen_check(hd_rtm_seen_t *s, const char *key, size_t len, const char *origin, int *outcome) {
  if (!s->ring || len == 0 || len > HD_RTM_SEEN_KEY_MAX) return HD_EINVAL;
  uint8_t d[16];
  digest(key, len, d);
  hd_rtm_seen_ent_t *e = find(s, d, key, len);
  if (e) {
    *outcome = e->outcome;
    s->dropped++;
    if (e->outcome == HD_RTM_SEEN_PENDING && origin && origin[0]) wait_add(s, e, origin);
    return 1;
  }
  char *copy = malloc(len);
  if (!copy) return HD_ENOMEM;
  memcpy(copy, key, len);
  size_t slot = (s->head + s->n) % s->cap;
  if (s->n == s->cap) { /* full: the oldest goes */
    hd_rtm_seen_ent_t *old = &s->ring[s->head];
    uint8_t od[16];
    digest(old->key, old->len, od);
    if ((uintptr_t)hd_map_get(&s->map, od, 16) == s->head + 1) hd_map_del(&s->map, od, 16);
    free(old->key);
    free(old->first);
    /* still pending after cap newer messages: those senders answer 504 at
     * their deadline (counted: nobody answers them now) */
    if (old->outcome == HD_RTM_SEEN_PENDING) s->unanswered += old->n_wait;
    free(old->wait);
    old->key = NULL;
    old->first = NULL;
    old->wait = NULL;
    old->n_wait = 0;
    slot = s->head;
    s->head = (s->head + 1) % s->cap;
    s->n--;
  }
  if (hd_map_put(&s->map, d, 16, (void *)(uintptr_t)(slot + 1)) < 0) {
    free(copy);
    return HD_ENOMEM;
  }
  /* no copy of the first origin (too long, no memory): a retry from it then
   * takes a waiter slot (settle's `answered` still keeps it from a second answer) */
  size_t fl = origin ? strlen(origin) : 0;
  char *first = fl && fl < HD_RTM_SEEN_ORIGIN_MAX ? malloc(fl + 1) : NULL;
  if (first) memcpy(first, origin, fl + 1);
  s->ring[slot] = (hd_rtm_seen_ent_t){copy, len, HD_RTM_SEEN_PENDING, first, NULL, 0};
  s->n++;
  return 0;
}

int hd_rtm_seen_settle(hd_rtm_seen_t *s, const char *key, size_t len, int outcome, const char *answered,
                       hd_rtm_seen_origin_fn fn, void *ud) {
  if (!s->ring || len == 0 || len > HD_RTM_SEEN_KEY_MAX) return 0;
  uint8_t d[16];
  digest(key, len, d);
  hd_rtm_seen_ent_t *e = find(s, d, key, len);
  if (!e) return 0;
  e->outcome = outcome;
  free(e->first); /* only needed while pending */
  e->first = NULL;
  /* taken off the entry first: fn may add keys (and so evict this one) */
  char *wait = e->wait;
  size_t n = e->n_wait;
  e->wait = NULL;
  e->n_wait = 0;
  for (size_t i = 0, off = 0; i < n; i++) {
    const char *w = wait + off;
    off += strlen(w) + 1;
    if (fn && !(answered && !strcmp(w, answered))) fn(ud, w);
  }
  free(wait);
  return 1;
}
