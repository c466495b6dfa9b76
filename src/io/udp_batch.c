/* sendmmsg batches with UDP GSO grouping (see udp_batch.h). */
#include "io/udp_batch.h"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h, Linux 4.18 */
#endif

static hd_datagram_t *at(hd_txq_t *q, size_t off) { return &q->items[(q->head + off) % q->cap]; }

/* A cheap destination key; equal keys are confirmed with memcmp. */
static uint64_t dest_key(const hd_datagram_t *d) {
  const uint8_t *p = (const uint8_t *)&d->to;
  uint64_t h = 1469598103934665603ull ^ d->tolen;
  for (socklen_t i = 0; i < d->tolen && i < 28; i++) /* family, port, address (v6: + flow, scope) */
    h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

static int same_dest(const hd_datagram_t *a, const hd_datagram_t *b) {
  return a->tolen == b->tolen && memcmp(&a->to, &b->to, a->tolen) == 0;
}

/* 1 if datagram d may join message m (the latest one to its destination). */
static int can_join(const hd_udp_batch_t *b, unsigned m, const hd_datagram_t *d) {
  if (b->closed[m] || b->segs[m] >= HD_UDP_GSO_MAX_SEGS || b->bytes[m] + d->len > HD_UDP_GSO_MAX_BYTES)
    return 0;
  return d->len <= b->seg_size[m]; /* equal, or shorter as the last one */
}

unsigned hd_udp_batch_plan(hd_udp_batch_t *b, hd_txq_t *q, int gso) {
  b->n_msgs = 0;
  unsigned n_dgrams = 0;
  size_t limit = q->count < HD_UDP_BATCH_WINDOW ? q->count : HD_UDP_BATCH_WINDOW;
  for (size_t off = 0; off < limit && n_dgrams < HD_UDP_BATCH_DGRAMS; off++) {
    hd_datagram_t *d = at(q, off);
    if (d->len == 0) continue; /* sent by an earlier, partial sendmmsg */
    if (!gso) {
      if (b->n_msgs == HD_UDP_BATCH_MSGS) break;
    } else {
      uint64_t key = dest_key(d);
      int latest = -1;
      for (int m = (int)b->n_msgs - 1; m >= 0; m--)
        if (b->key[m] == key && same_dest(at(q, b->first[m]), d)) {
          latest = m;
          break;
        }
      if (latest >= 0 && b->blocked[latest]) continue; /* an earlier one of its destination waits */
      if (latest >= 0 && can_join(b, (unsigned)latest, d)) {
        unsigned m = (unsigned)latest;
        if (d->len < b->seg_size[m]) b->closed[m] = 1;
        b->next[b->last[m]] = (uint16_t)off;
        b->last[m] = (uint16_t)off;
        b->segs[m]++;
        b->bytes[m] += (uint32_t)d->len;
        n_dgrams++;
        continue;
      }
      if (b->n_msgs == HD_UDP_BATCH_MSGS) { /* no new message: leave it, look for joiners */
        if (latest >= 0) b->blocked[latest] = 1;
        continue;
      }
      b->key[b->n_msgs] = key;
    }
    unsigned m = b->n_msgs++;
    b->first[m] = b->last[m] = (uint16_t)off;
    b->segs[m] = 1;
    b->seg_size[m] = (uint16_t)d->len;
    b->bytes[m] = (uint32_t)d->len;
    b->closed[m] = 0;
    b->blocked[m] = 0;
    n_dgrams++;
  }
  /* lay out each message's iovecs contiguously */
  unsigned iv = 0;
  for (unsigned m = 0; m < b->n_msgs; m++) {
    struct msghdr *h = &b->msgs[m].msg_hdr;
    memset(&b->msgs[m], 0, sizeof b->msgs[m]);
    hd_datagram_t *d0 = at(q, b->first[m]);
    h->msg_name = &d0->to;
    h->msg_namelen = d0->tolen;
    h->msg_iov = &b->iov[iv];
    h->msg_iovlen = b->segs[m];
    uint16_t off = b->first[m];
    for (unsigned s = 0; s < b->segs[m]; s++) {
      hd_datagram_t *d = at(q, off);
      b->iov[iv].iov_base = d->data;
      b->iov[iv].iov_len = d->len;
      iv++;
      off = b->next[off];
    }
    if (b->segs[m] > 1) { /* RFC-less kernel API: cmsg UDP_SEGMENT = segment size */
      memset(&b->cmsg[m], 0, sizeof b->cmsg[m]);
      h->msg_control = b->cmsg[m].buf;
      h->msg_controllen = sizeof b->cmsg[m].buf;
      struct cmsghdr *c = CMSG_FIRSTHDR(h);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t gso_size = b->seg_size[m];
      memcpy(CMSG_DATA(c), &gso_size, sizeof gso_size);
    }
  }
  return b->n_msgs;
}

size_t hd_udp_batch_mark_sent(hd_udp_batch_t *b, hd_txq_t *q, unsigned i) {
  size_t bytes = 0;
  uint16_t off = b->first[i];
  for (unsigned s = 0; s < b->segs[i]; s++) {
    hd_datagram_t *d = at(q, off);
    bytes += d->len;
    d->len = 0;
    off = b->next[off];
  }
  return bytes;
}

void hd_udp_batch_pop_sent(hd_txq_t *q) {
  while (q->count && at(q, 0)->len == 0)
    hd_txq_pop(q);
}
