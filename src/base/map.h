/* Hash map from short byte keys (≤ 48 bytes: ICE ufrags, normalised socket
 * addresses, session ids) to pointers. Open addressing with linear probing and
 * backward-shift deletion (no tombstones); grows by doubling up to a hard cap. */
#ifndef HD_BASE_MAP_H
#define HD_BASE_MAP_H
#include <stddef.h>
#include <stdint.h>

#define HD_MAP_KEY_MAX 48

typedef struct {
  uint8_t klen; /* 0 = empty slot */
  uint8_t key[HD_MAP_KEY_MAX];
  uint32_t hash;
  void *value;
} hd_map_slot_t;

typedef struct {
  hd_map_slot_t *slots;
  size_t n_slots; /* power of two */
  size_t count;
  size_t max_count; /* hard cap on entries */
} hd_map_t;

int hd_map_init(hd_map_t *m, size_t max_count);
void hd_map_free(hd_map_t *m);
/* Inserts or replaces; HD_ENOSPC at the cap, HD_EINVAL for a bad key. */
int hd_map_put(hd_map_t *m, const void *key, size_t klen, void *value);
void *hd_map_get(const hd_map_t *m, const void *key, size_t klen);
/* Removes; returns 1 if it was present. */
int hd_map_del(hd_map_t *m, const void *key, size_t klen);
static inline size_t hd_map_count(const hd_map_t *m) { return m->count; }

#endif
