/* Bounded SPSC ring (see spsc.h). */
#include "base/spsc.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

int hd_spsc_init(hd_spsc_t *q, size_t cap, size_t slot_size) {
  memset(q, 0, sizeof *q);
  if (cap == 0 || cap > ((size_t)1 << 24) || slot_size == 0 || slot_size > ((size_t)1 << 20))
    return HD_EINVAL;
  size_t c = 1;
  while (c < cap)
    c <<= 1;
  slot_size = (slot_size + 15) & ~(size_t)15;
  q->slots = aligned_alloc(64, (c * slot_size + 63) & ~(size_t)63);
  if (!q->slots) return HD_ENOMEM;
  q->cap = c;
  q->slot_size = slot_size;
  atomic_init(&q->head, 0);
  atomic_init(&q->tail, 0);
  return 0;
}

void hd_spsc_free(hd_spsc_t *q) {
  free(q->slots);
  q->slots = NULL;
  q->cap = 0;
}
