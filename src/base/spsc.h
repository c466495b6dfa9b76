/* Bounded single-producer / single-consumer ring of fixed-size slots, lock-free
 * (C11 atomics): the hand-off between two threads on the media path, where a
 * mutex is not allowed (DESIGN §3 rule 3). One thread reserves a slot, fills
 * it and commits it; one other thread peeks at the oldest slot, uses it in
 * place and pops it. The producer's commit is a release store of its index,
 * the consumer's peek an acquire load of it (and the other way round for the
 * pop), so a slot's bytes are visible to the consumer exactly when it sees the
 * slot, and the producer reuses a slot only after the consumer is done with it.
 *
 * The cap is fixed at init (a power of two); a full ring refuses the slot
 * (hd_spsc_reserve returns NULL) and the caller drops and counts: nothing
 * waits on the other thread. */
#ifndef HD_BASE_SPSC_H
#define HD_BASE_SPSC_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  /* on their own cache lines: each is written by one thread only */
  _Alignas(64) atomic_size_t tail; /* next slot the producer fills (written by the producer) */
  _Alignas(64) atomic_size_t head; /* next slot the consumer takes (written by the consumer) */
  _Alignas(64) size_t cap;         /* slots, a power of two */
  size_t slot_size;
  uint8_t *slots;
} hd_spsc_t;

/* cap: slots, rounded up to a power of two (1..2^24); slot_size: bytes per
 * slot (> 0, rounded up to 16). Returns 0, HD_EINVAL or HD_ENOMEM. */
int hd_spsc_init(hd_spsc_t *q, size_t cap, size_t slot_size);
void hd_spsc_free(hd_spsc_t *q);

/* Producer: the next free slot (slot_size bytes), or NULL when the ring is
 * full. Nothing is visible to the consumer until hd_spsc_commit. */
static inline void *hd_spsc_reserve(hd_spsc_t *q) {
  size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
  size_t h = atomic_load_explicit(&q->head, memory_order_acquire);
  if (t - h >= q->cap) return NULL;
  return q->slots + (t & (q->cap - 1)) * q->slot_size;
}
/* Producer: publishes the slot hd_spsc_reserve returned. */
static inline void hd_spsc_commit(hd_spsc_t *q) {
  size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
  atomic_store_explicit(&q->tail, t + 1, memory_order_release);
}
/* Consumer: the oldest committed slot, or NULL when empty. */
static inline void *hd_spsc_peek(hd_spsc_t *q) {
  size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
  size_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
  if (h == t) return NULL;
  return q->slots + (h & (q->cap - 1)) * q->slot_size;
}
/* Consumer: gives the slot hd_spsc_peek returned back to the producer. */
static inline void hd_spsc_pop(hd_spsc_t *q) {
  size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
  atomic_store_explicit(&q->head, h + 1, memory_order_release);
}
/* Slots committed and not yet popped (exact on either side's own thread for
 * its own index; a snapshot otherwise). */
static inline size_t hd_spsc_count(hd_spsc_t *q) {
  size_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
  size_t h = atomic_load_explicit(&q->head, memory_order_acquire);
  return t - h;
}

#endif
