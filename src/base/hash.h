/* FNV-1a (32-bit) over two strings with a separator byte between them, so
 * that ("ab", "c") and ("a", "bc") differ: the key of (tenant, name) pairs in
 * hash tables and the placement of rooms on media workers. */
#ifndef HD_BASE_HASH_H
#define HD_BASE_HASH_H
#include <stdint.h>

static inline uint32_t hd_fnv1a_pair(const char *a, uint8_t sep, const char *b) {
  uint32_t h = 2166136261u;
  for (const char *p = a; *p; p++)
    h = (h ^ (uint8_t)*p) * 16777619u;
  h = (h ^ sep) * 16777619u;
  for (const char *p = b; *p; p++)
    h = (h ^ (uint8_t)*p) * 16777619u;
  return h;
}

#endif
