/* In-process link model and in-flight datagram heap (see link.h). */
#include "link.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

void hd_link_init(hd_link_t *l, const hd_link_params_t *p, uint64_t seed) {
  memset(l, 0, sizeof *l);
  l->p = *p;
  l->rng = seed;
}

void hd_link_set(hd_link_t *l, const hd_link_params_t *p) {
  l->p = *p;
  l->drop_pos = 0;
}

uint64_t hd_link_rand(hd_link_t *l) {
  uint64_t z = (l->rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

int hd_link_send(hd_link_t *l, hd_time_t now, hd_time_t *at) {
  uint64_t idx = l->sent++;
  int drop = 0;
  while (l->p.drop && l->drop_pos < l->p.n_drop && l->p.drop[l->drop_pos] < idx)
    l->drop_pos++;
  if (l->p.drop && l->drop_pos < l->p.n_drop && l->p.drop[l->drop_pos] == idx) drop = 1;
  /* always draw, so a drop list does not shift the random loss pattern */
  double r = (double)(hd_link_rand(l) >> 11) / 9007199254740992.0;
  if (r < l->p.loss) drop = 1;
  if (drop) {
    l->dropped++;
    return 0;
  }
  *at = now + l->p.delay;
  return 1;
}

int hd_wire_init(hd_wire_t *w, size_t cap) {
  memset(w, 0, sizeof *w);
  w->heap = calloc(cap, sizeof *w->heap);
  if (!w->heap) return HD_ENOMEM;
  w->cap = cap;
  return 0;
}

void hd_wire_free(hd_wire_t *w) {
  for (size_t i = 0; i < w->n; i++)
    free(w->heap[i]);
  free(w->heap);
  memset(w, 0, sizeof *w);
}

static int before(const hd_wire_pkt_t *a, const hd_wire_pkt_t *b) {
  return a->at < b->at || (a->at == b->at && a->order < b->order);
}

int hd_wire_push(hd_wire_t *w, hd_time_t at, int dst, const struct sockaddr *from, socklen_t fromlen,
                 const uint8_t *data, size_t len) {
  if (len > HD_WIRE_MTU || fromlen > sizeof(struct sockaddr_storage)) return HD_EINVAL;
  if (w->n == w->cap) {
    w->overflow++;
    return HD_ENOSPC;
  }
  hd_wire_pkt_t *p = malloc(sizeof *p);
  if (!p) return HD_ENOMEM;
  p->at = at;
  p->order = w->order++;
  p->dst = dst;
  memset(&p->from, 0, sizeof p->from);
  memcpy(&p->from, from, fromlen);
  p->fromlen = fromlen;
  p->len = len;
  memcpy(p->data, data, len);
  size_t i = w->n++;
  while (i > 0 && before(p, w->heap[(i - 1) / 2])) {
    w->heap[i] = w->heap[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  w->heap[i] = p;
  return 0;
}

hd_time_t hd_wire_next(const hd_wire_t *w) { return w->n ? w->heap[0]->at : HD_TIME_NEVER; }

int hd_wire_pop(hd_wire_t *w, hd_time_t now, hd_wire_pkt_t *out) {
  if (!w->n || w->heap[0]->at > now) return 0;
  hd_wire_pkt_t *top = w->heap[0];
  *out = *top;
  free(top);
  hd_wire_pkt_t *last = w->heap[--w->n];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    const hd_wire_pkt_t *best = last;
    if (l < w->n && before(w->heap[l], best)) m = l, best = w->heap[l];
    if (r < w->n && before(w->heap[r], best)) m = r;
    if (m == i) break;
    w->heap[i] = w->heap[m];
    i = m;
  }
  if (w->n) w->heap[i] = last;
  return 1;
}
