/* Bounded queue of outgoing datagrams. Sans-IO cores in sfu/ write what they
 * want sent here; the I/O shell drains it to the socket after every event
 * (DESIGN §3 rule 1). Overflow drops the newest datagram and counts it. */
#ifndef HD_SFU_TXQ_H
#define HD_SFU_TXQ_H
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/err.h"

#define HD_DATAGRAM_MAX 1500

typedef struct {
  size_t len;
  socklen_t tolen;
  struct sockaddr_storage to;
  uint8_t data[HD_DATAGRAM_MAX];
} hd_datagram_t;

typedef struct {
  hd_datagram_t *items;
  size_t cap, head, count;
  uint64_t dropped; /* datagrams lost to a full queue */
} hd_txq_t;

static inline int hd_txq_init(hd_txq_t *q, size_t cap) {
  memset(q, 0, sizeof *q);
  q->items = calloc(cap, sizeof *q->items);
  if (!q->items) return HD_ENOMEM;
  q->cap = cap;
  return 0;
}
static inline void hd_txq_free(hd_txq_t *q) {
  free(q->items);
  memset(q, 0, sizeof *q);
}
/* A slot to fill, or NULL when full (counted as dropped). Commit with hd_txq_commit. */
static inline hd_datagram_t *hd_txq_reserve(hd_txq_t *q) {
  if (q->count == q->cap) {
    q->dropped++;
    return NULL;
  }
  return &q->items[(q->head + q->count) % q->cap];
}
static inline void hd_txq_commit(hd_txq_t *q, size_t len, const struct sockaddr *to, socklen_t tolen) {
  hd_datagram_t *d = &q->items[(q->head + q->count) % q->cap];
  d->len = len;
  if (tolen > sizeof d->to) tolen = sizeof d->to;
  memcpy(&d->to, to, tolen);
  d->tolen = tolen;
  q->count++;
}
static inline hd_datagram_t *hd_txq_peek(hd_txq_t *q) { return q->count ? &q->items[q->head] : NULL; }
static inline void hd_txq_pop(hd_txq_t *q) {
  if (!q->count) return;
  q->head = (q->head + 1) % q->cap;
  q->count--;
}

#endif
