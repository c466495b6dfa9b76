/* Open-addressing hash map with backward-shift deletion; FNV-1a hashing. */
#include "base/map.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

static uint32_t fnv1a(const uint8_t *p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 16777619u;
  }
  return h ? h : 1;
}

int hd_map_init(hd_map_t *m, size_t max_count) {
  memset(m, 0, sizeof *m);
  m->n_slots = 16;
  m->max_count = max_count ? max_count : 1u << 20;
  m->slots = calloc(m->n_slots, sizeof *m->slots);
  return m->slots ? 0 : HD_ENOMEM;
}

void hd_map_free(hd_map_t *m) {
  free(m->slots);
  memset(m, 0, sizeof *m);
}

static size_t find(const hd_map_t *m, const uint8_t *k, size_t klen, uint32_t h, int *found) {
  size_t mask = m->n_slots - 1, i = h & mask;
  for (;;) {
    const hd_map_slot_t *s = &m->slots[i];
    if (!s->klen) {
      *found = 0;
      return i;
    }
    if (s->hash == h && s->klen == klen && !memcmp(s->key, k, klen)) {
      *found = 1;
      return i;
    }
    i = (i + 1) & mask;
  }
}

static int grow(hd_map_t *m) {
  size_t n = m->n_slots * 2;
  hd_map_slot_t *ns = calloc(n, sizeof *ns);
  if (!ns) return HD_ENOMEM;
  for (size_t i = 0; i < m->n_slots; i++) {
    hd_map_slot_t *s = &m->slots[i];
    if (!s->klen) continue;
    size_t j = s->hash & (n - 1);
    while (ns[j].klen)
      j = (j + 1) & (n - 1);
    ns[j] = *s;
  }
  free(m->slots);
  m->slots = ns;
  m->n_slots = n;
  return 0;
}

int hd_map_put(hd_map_t *m, const void *key, size_t klen, void *value) {
  if (!klen || klen > HD_MAP_KEY_MAX) return HD_EINVAL;
  uint32_t h = fnv1a(key, klen);
  int found;
  size_t i = find(m, key, klen, h, &found);
  if (found) {
    m->slots[i].value = value;
    return 0;
  }
  if (m->count >= m->max_count) return HD_ENOSPC;
  if ((m->count + 1) * 4 > m->n_slots * 3) {
    int rc = grow(m);
    if (rc) return rc;
    i = find(m, key, klen, h, &found);
  }
  hd_map_slot_t *s = &m->slots[i];
  s->klen = (uint8_t)klen;
  memcpy(s->key, key, klen);
  s->hash = h;
  s->value = value;
  m->count++;
  return 0;
}

void *hd_map_get(const hd_map_t *m, const void *key, size_t klen) {
  if (!klen || klen > HD_MAP_KEY_MAX || !m->slots) return NULL;
  int found;
  size_t i = find(m, key, klen, fnv1a(key, klen), &found);
  return found ? m->slots[i].value : NULL;
}

int hd_map_del(hd_map_t *m, const void *key, size_t klen) {
  if (!klen || klen > HD_MAP_KEY_MAX || !m->slots) return 0;
  int found;
  size_t i = find(m, key, klen, fnv1a(key, klen), &found);
  if (!found) return 0;
  size_t mask = m->n_slots - 1;
  /* backward-shift: move later entries of the probe run into the hole */
  size_t hole = i, j = i;
  for (;;) {
    j = (j + 1) & mask;
    hd_map_slot_t *s = &m->slots[j];
    if (!s->klen) break;
    size_t home = s->hash & mask;
    /* can s move to hole? yes if home is not in (hole, j] cyclically */
    int in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!in_range) {
      m->slots[hole] = *s;
      hole = j;
    }
  }
  m->slots[hole].klen = 0;
  m->count--;
  return 1;
}
