/* Session quotas per tenant and per identity (see quota.h). */
#include "sfu/quota.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/map.h"

/* Keys: a kind byte and two 64-bit FNV-1a hashes (different offset bases) of
 * the app, or of app 0xff identity: app keys and identities are longer than
 * a map key may be, and 128 bits make a collision (two identities sharing a
 * count) practically impossible. */
#define KEY_LEN 17

typedef struct {
  uint8_t app_key[KEY_LEN], id_key[KEY_LEN];
  int has_id;
} held_t;

struct hd_quota {
  pthread_mutex_t mu;
  size_t per_app, per_identity;
  hd_map_t counts; /* key -> count (as a pointer-sized integer) */
  hd_map_t held;   /* session id -> held_t* */
};

static uint64_t fnv64(uint64_t h, const char *s) {
  for (const char *p = s; *p; p++)
    h = (h ^ (uint8_t)*p) * 1099511628211ull;
  return h;
}

static void make_key(uint8_t key[KEY_LEN], const char *app, const char *identity) {
  uint64_t h[2] = {14695981039346656037ull, 0x9ae16a3b2f90404full};
  for (int i = 0; i < 2; i++) {
    h[i] = fnv64(h[i], app);
    if (identity) {
      h[i] = (h[i] ^ 0xff) * 1099511628211ull;
      h[i] = fnv64(h[i], identity);
    }
  }
  key[0] = identity ? 'I' : 'A';
  memcpy(key + 1, h, 16);
}

static size_t count_of(hd_quota_t *q, const uint8_t key[KEY_LEN]) {
  return (size_t)(uintptr_t)hd_map_get(&q->counts, key, KEY_LEN);
}

/* Adds d (+1 or -1) to a count; an entry that reaches 0 is removed. */
static int count_add(hd_quota_t *q, const uint8_t key[KEY_LEN], int d) {
  size_t c = count_of(q, key);
  if (d < 0) {
    if (c <= 1) {
      hd_map_del(&q->counts, key, KEY_LEN);
      return 0;
    }
    return hd_map_put(&q->counts, key, KEY_LEN, (void *)(uintptr_t)(c - 1));
  }
  return hd_map_put(&q->counts, key, KEY_LEN, (void *)(uintptr_t)(c + 1));
}

int hd_quota_new(hd_quota_t **out, size_t per_app, size_t per_identity, size_t max_sessions) {
  hd_quota_t *q = calloc(1, sizeof *q);
  if (!q) return HD_ENOMEM;
  q->per_app = per_app;
  q->per_identity = per_identity;
  /* each session holds at most two count entries; a little headroom for
   * sessions set up on several workers at the same instant */
  size_t cap = (max_sessions ? max_sessions : 1000) * 2 + 64;
  int rc = hd_map_init(&q->counts, cap * 2);
  if (rc == 0) rc = hd_map_init(&q->held, cap);
  if (rc < 0) {
    hd_map_free(&q->counts);
    free(q);
    return rc;
  }
  pthread_mutex_init(&q->mu, NULL);
  *out = q;
  return 0;
}

void hd_quota_free(hd_quota_t *q) {
  if (!q) return;
  for (size_t i = 0; i < q->held.n_slots; i++)
    if (q->held.slots[i].klen) free(q->held.slots[i].value);
  hd_map_free(&q->held);
  hd_map_free(&q->counts);
  pthread_mutex_destroy(&q->mu);
  free(q);
}

static int check_locked(hd_quota_t *q, const uint8_t ak[KEY_LEN], const uint8_t *ik,
                        hd_quota_limit_t *which) {
  hd_quota_limit_t w = HD_QUOTA_OK;
  if (q->per_app && count_of(q, ak) >= q->per_app)
    w = HD_QUOTA_APP;
  else if (ik && q->per_identity && count_of(q, ik) >= q->per_identity)
    w = HD_QUOTA_IDENTITY;
  if (which) *which = w;
  return w == HD_QUOTA_OK ? 0 : HD_ENOSPC;
}

int hd_quota_check(hd_quota_t *q, const char *app, const char *identity, hd_quota_limit_t *which) {
  uint8_t ak[KEY_LEN], ik[KEY_LEN];
  make_key(ak, app, NULL);
  if (identity) make_key(ik, app, identity);
  pthread_mutex_lock(&q->mu);
  int rc = check_locked(q, ak, identity ? ik : NULL, which);
  pthread_mutex_unlock(&q->mu);
  return rc;
}

int hd_quota_take(hd_quota_t *q, const char *app, const char *identity, const char *sid,
                  hd_quota_limit_t *which) {
  held_t *h = calloc(1, sizeof *h);
  if (!h) return HD_ENOMEM;
  make_key(h->app_key, app, NULL);
  h->has_id = identity != NULL;
  if (identity) make_key(h->id_key, app, identity);
  pthread_mutex_lock(&q->mu);
  int rc = hd_map_get(&q->held, sid, strlen(sid)) ? HD_EINVAL : 0;
  if (rc == 0) rc = check_locked(q, h->app_key, h->has_id ? h->id_key : NULL, which);
  if (rc == 0) rc = hd_map_put(&q->held, sid, strlen(sid), h);
  if (rc == 0) {
    rc = count_add(q, h->app_key, +1);
    if (rc == 0 && h->has_id && (rc = count_add(q, h->id_key, +1)) < 0) count_add(q, h->app_key, -1);
    if (rc < 0) hd_map_del(&q->held, sid, strlen(sid));
  }
  pthread_mutex_unlock(&q->mu);
  if (rc < 0) free(h);
  return rc;
}

void hd_quota_release(hd_quota_t *q, const char *sid) {
  pthread_mutex_lock(&q->mu);
  held_t *h = hd_map_get(&q->held, sid, strlen(sid));
  if (h) {
    hd_map_del(&q->held, sid, strlen(sid));
    count_add(q, h->app_key, -1);
    if (h->has_id) count_add(q, h->id_key, -1);
  }
  pthread_mutex_unlock(&q->mu);
  free(h);
}

size_t hd_quota_app_count(hd_quota_t *q, const char *app) {
  uint8_t k[KEY_LEN];
  make_key(k, app, NULL);
  pthread_mutex_lock(&q->mu);
  size_t c = count_of(q, k);
  pthread_mutex_unlock(&q->mu);
  return c;
}

size_t hd_quota_identity_count(hd_quota_t *q, const char *app, const char *identity) {
  uint8_t k[KEY_LEN];
  make_key(k, app, identity);
  pthread_mutex_lock(&q->mu);
  size_t c = count_of(q, k);
  pthread_mutex_unlock(&q->mu);
  return c;
}

size_t hd_quota_per_app(const hd_quota_t *q) { return q->per_app; }
size_t hd_quota_per_identity(const hd_quota_t *q) { return q->per_identity; }
