/* Reliable, ordered messages over the node link (see link_rel.h). */
#include "overlay/link_rel.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/rand.h"

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (24 - 8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
  put32(p, (uint32_t)(v >> 32));
  put32(p + 4, (uint32_t)v);
}
static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) << 32 | get32(p + 4); }

/* serial number order (RFC 1982): a after b */
static int after(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }

/* A stream id: the sending instance's tag (24 bits) and its stream count (8 bits, never 0). */
static uint32_t tag_of(uint32_t stream) { return stream >> 8; }
static uint32_t next_stream(uint32_t stream) {
  uint32_t c = (stream + 1) & 0xff;
  return (stream & ~0xffu) | (c ? c : 1);
}

void hd_link_rel_init(hd_link_rel_t *r, uint64_t room, uint32_t instance) {
  memset(r, 0, sizeof *r);
  r->room = room;
  while (!instance)
    instance = hd_random_u32();
  r->instance = instance;
  /* the tag mixes all 32 bits (MurmurHash3's fmix32), so two ids that differ
   * only in their low bits (a caller's clock in ms, read 100 ms apart) still
   * tag their streams apart */
  uint32_t h = instance;
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  uint32_t tag = h >> 8;
  r->tx_stream = (tag ? tag : 1) << 8 | 1;
  r->next_seq = r->una = 1;
  r->rto = HD_LINK_REL_RTO_INIT;
}

void hd_link_rel_free(hd_link_rel_t *r) {
  free(r->tx);
  free(r->rx);
  free(r->msg);
  memset(r, 0, sizeof *r);
}

int hd_link_rel_room(const uint8_t *pl, size_t len, uint64_t *room) {
  if (len < 8) return HD_EPROTO;
  *room = get64(pl);
  return 0;
}

int hd_link_rel_send(hd_link_rel_t *r, const uint8_t *msg, size_t len) {
  if (!len || len > HD_LINK_REL_MSG_MAX) return HD_EINVAL;
  size_t nseg = (len + HD_LINK_REL_SEG - 1) / HD_LINK_REL_SEG;
  if ((size_t)(r->next_seq - r->una) + nseg > HD_LINK_REL_WINDOW) {
    r->dropped_full++;
    return HD_ENOSPC;
  }
  if (!r->tx && !(r->tx = calloc(HD_LINK_REL_WINDOW, sizeof *r->tx))) return HD_ENOMEM;
  for (size_t i = 0; i < nseg; i++) {
    size_t off = i * HD_LINK_REL_SEG, l = len - off > HD_LINK_REL_SEG ? HD_LINK_REL_SEG : len - off;
    hd_link_rel_seg_t *s = &r->tx[r->next_seq % HD_LINK_REL_WINDOW];
    s->seq = r->next_seq++;
    s->len = (uint16_t)l;
    s->flags = i + 1 < nseg ? HD_LINK_REL_MORE : 0;
    s->head = i == 0;
    s->tries = 0;
    s->due = 0; /* now */
    s->used = 1;
    s->acked = s->sacked_past = 0;
    memcpy(s->data, msg + off, l);
  }
  r->msgs_sent++;
  return 0;
}

/* A segment ran out of tries: what is queued is dropped and a new stream
 * starts, so the receiver does not wait for the lost one forever. */
static void reset_stream(hd_link_rel_t *r) {
  for (uint32_t q = r->una; q != r->next_seq; q++) {
    hd_link_rel_seg_t *s = &r->tx[q % HD_LINK_REL_WINDOW];
    if (s->used && !(s->flags & HD_LINK_REL_MORE)) r->dropped_reset++;
    s->used = 0;
  }
  r->tx_stream = next_stream(r->tx_stream);
  r->next_seq = r->una = 1;
  r->resets++;
}

/* The receiver lost its state: what is unacknowledged goes again, numbered
 * from 1 under a newer stream id. A message whose head the old receiver
 * acknowledged cannot be completed at the new one: its remaining segments
 * are dropped (the new receiver would take them for a whole message). */
static void restart_for_peer(hd_link_rel_t *r) {
  hd_link_rel_seg_t *old = r->tx;
  hd_link_rel_seg_t *fresh = calloc(HD_LINK_REL_WINDOW, sizeof *fresh);
  if (!fresh) return; /* kept as is: the tries cap resets it later */
  uint32_t from = r->una;
  while (from != r->next_seq && !old[from % HD_LINK_REL_WINDOW].head) {
    if (!(old[from % HD_LINK_REL_WINDOW].flags & HD_LINK_REL_MORE)) r->dropped_reset++; /* its tail */
    from++;
  }
  uint32_t n = r->next_seq - from;
  for (uint32_t k = 0; k < n; k++) {
    hd_link_rel_seg_t *s = &old[(from + k) % HD_LINK_REL_WINDOW], *d = &fresh[(1 + k) % HD_LINK_REL_WINDOW];
    *d = *s;
    d->seq = 1 + k;
    d->tries = 0;
    d->due = 0;
    d->acked = d->sacked_past = 0;
  }
  free(old);
  r->tx = fresh;
  r->una = 1;
  r->next_seq = 1 + n;
  r->tx_stream = next_stream(r->tx_stream);
  r->peer_restarts++;
}

static int write_ack(hd_link_rel_t *r, uint8_t *out) {
  uint32_t map = 0;
  for (uint32_t i = 0; r->rx && i < 32 && i + 1 < HD_LINK_REL_WINDOW; i++) {
    uint32_t q = r->rx_next + 1 + i;
    const hd_link_rel_seg_t *s = &r->rx[q % HD_LINK_REL_WINDOW];
    if (s->used && s->seq == q) map |= 1u << i;
  }
  put64(out, r->room);
  put32(out + 8, r->rx_stream);
  put32(out + 12, r->rx_next);
  put32(out + 16, map);
  put32(out + 20, r->instance);
  r->ack_due = 0;
  return HD_LINK_REL_ACK_LEN;
}

int hd_link_rel_poll(hd_link_rel_t *r, hd_time_t now, uint8_t *out, size_t cap, int *is_ack) {
  if (cap < HD_LINK_REL_DATA_HDR + HD_LINK_REL_SEG) return HD_ENOSPC;
  *is_ack = 0;
  if (r->ack_due) {
    *is_ack = 1;
    return write_ack(r, out);
  }
  for (uint32_t q = r->una; r->tx && q != r->next_seq; q++) {
    hd_link_rel_seg_t *s = &r->tx[q % HD_LINK_REL_WINDOW];
    if (!s->used || s->acked || s->due > now) continue;
    if (s->tries >= HD_LINK_REL_MAX_TRIES) {
      reset_stream(r);
      return 0;
    }
    if (s->tries) r->retransmits++;
    s->tries++;
    s->sent_at = now;
    s->sacked_past = 0;
    hd_time_t rto = r->rto;
    for (int i = 1; i < s->tries && rto < HD_LINK_REL_RTO_MAX; i++)
      rto *= 2;
    s->due = now + (rto < HD_LINK_REL_RTO_MAX ? rto : HD_LINK_REL_RTO_MAX);
    put64(out, r->room);
    put32(out + 8, r->tx_stream);
    put32(out + 12, s->seq);
    out[16] = s->flags;
    memcpy(out + HD_LINK_REL_DATA_HDR, s->data, s->len);
    r->segs_sent++;
    return HD_LINK_REL_DATA_HDR + s->len;
  }
  return 0;
}

hd_time_t hd_link_rel_next_timeout(const hd_link_rel_t *r) {
  if (r->ack_due) return 0;
  hd_time_t t = HD_TIME_NEVER;
  for (uint32_t q = r->una; r->tx && q != r->next_seq; q++) {
    const hd_link_rel_seg_t *s = &r->tx[q % HD_LINK_REL_WINDOW];
    if (s->used && !s->acked && s->due < t) t = s->due;
  }
  return t;
}

/* RFC 6298 §2 from one round trip sample (a segment sent once: Karn). */
static void rtt_sample(hd_link_rel_t *r, hd_time_t rtt) {
  if (!r->srtt) {
    r->srtt = rtt;
    r->rttvar = rtt / 2;
  } else {
    hd_time_t d = r->srtt > rtt ? r->srtt - rtt : rtt - r->srtt;
    r->rttvar = (3 * r->rttvar + d) / 4;
    r->srtt = (7 * r->srtt + rtt) / 8;
  }
  hd_time_t k = 4 * r->rttvar > HD_MS(10) ? 4 * r->rttvar : HD_MS(10);
  r->rto = r->srtt + k;
  if (r->rto < HD_LINK_REL_RTO_MIN) r->rto = HD_LINK_REL_RTO_MIN;
  if (r->rto > HD_LINK_REL_RTO_MAX) r->rto = HD_LINK_REL_RTO_MAX;
}

static void mark_acked(hd_link_rel_t *r, hd_link_rel_seg_t *s, hd_time_t now) {
  if (s->acked) return;
  if (s->tries == 1 && now >= s->sent_at) rtt_sample(r, now - s->sent_at);
  s->acked = 1;
}

int hd_link_rel_on_ack(hd_link_rel_t *r, const uint8_t *pl, size_t len, hd_time_t now) {
  if (len != HD_LINK_REL_ACK_LEN) return HD_EPROTO;
  uint32_t stream = get32(pl + 8), cum = get32(pl + 12), map = get32(pl + 16), inst = get32(pl + 20);
  if (stream != r->tx_stream || !r->tx) return 0;     /* about an older stream */
  if (r->peer_instance && inst != r->peer_instance) { /* a new receiver: it knows nothing of ours */
    r->peer_instance = inst;
    restart_for_peer(r);
    return 0;
  }
  r->peer_instance = inst;
  if (after(cum, r->next_seq) || after(r->una, cum)) return 0; /* outside what was sent: stale */
  for (; r->una != cum; r->una++) {
    hd_link_rel_seg_t *s = &r->tx[r->una % HD_LINK_REL_WINDOW];
    if (s->used) mark_acked(r, s, now);
    s->used = 0;
  }
  uint32_t highest = 0;
  for (uint32_t i = 0; i < 32; i++) {
    uint32_t q = cum + 1 + i;
    if (!((map >> i) & 1) || !after(r->next_seq, q)) continue;
    hd_link_rel_seg_t *s = &r->tx[q % HD_LINK_REL_WINDOW];
    if (s->used && s->seq == q) mark_acked(r, s, now);
    highest = q;
  }
  /* fast retransmit: a segment that three segments sent after it (by their
   * last transmission, so a retransmission is not sent again for acks of
   * what was already in flight) overtook is lost, not late */
  for (uint32_t q = r->una; highest && after(highest, q); q++) {
    hd_link_rel_seg_t *s = &r->tx[q % HD_LINK_REL_WINDOW];
    if (!s->used || s->acked || s->sacked_past || !s->tries) continue;
    int later = 0;
    for (uint32_t k = q + 1; k != highest + 1 && later < 3; k++) {
      const hd_link_rel_seg_t *o = &r->tx[k % HD_LINK_REL_WINDOW];
      if (o->used && o->acked && o->sent_at > s->sent_at) later++;
    }
    if (later < 3) continue;
    s->sacked_past = 1; /* once per transmission */
    if (s->due > now) {
      s->due = now;
      r->fast_retransmits++;
    }
  }
  return 0;
}

int hd_link_rel_on_data(hd_link_rel_t *r, const uint8_t *pl, size_t len, hd_link_rel_deliver_fn deliver,
                        void *ud) {
  if (len < HD_LINK_REL_DATA_HDR || len > HD_LINK_REL_DATA_HDR + HD_LINK_REL_SEG) return HD_EPROTO;
  uint32_t stream = get32(pl + 8), seq = get32(pl + 12);
  uint8_t flags = pl[16];
  if (!stream || !seq) return HD_EPROTO;
  if (r->rx_stream && stream != r->rx_stream) { /* an old stream's segment, or a new stream */
    uint32_t tag = tag_of(stream), cur = tag_of(r->rx_stream);
    for (int i = 0; i < HD_LINK_REL_OLD_TAGS; i++)
      if (tag == cur ? r->old_streams[i] == stream : r->old_tags[i] == tag)
        return 0;     /* a late segment of a stream (or instance) left behind */
    if (tag != cur) { /* a new instance of the sender (restarted): the current one is replaced */
      memmove(r->old_tags + 1, r->old_tags, sizeof r->old_tags - sizeof r->old_tags[0]);
      r->old_tags[0] = cur;
      memset(r->old_streams, 0, sizeof r->old_streams);
    } else { /* the sender reset its stream: the current one is left behind */
      memmove(r->old_streams + 1, r->old_streams, sizeof r->old_streams - sizeof r->old_streams[0]);
      r->old_streams[0] = r->rx_stream;
    }
  }
  if (!r->rx && !(r->rx = calloc(HD_LINK_REL_WINDOW, sizeof *r->rx))) return HD_ENOMEM;
  if (!r->msg && !(r->msg = malloc(HD_LINK_REL_MSG_MAX))) return HD_ENOMEM;
  if (stream != r->rx_stream) { /* a new stream (first, restarted sender, or reset after a loss) */
    memset(r->rx, 0, HD_LINK_REL_WINDOW * sizeof *r->rx);
    r->rx_stream = stream;
    r->rx_next = 1;
    r->msg_len = 0;
    r->msg_skip = 0;
  }
  r->ack_due = 1;
  if (after(r->rx_next, seq)) { /* had it already */
    r->rx_dup++;
    return 0;
  }
  if (seq - r->rx_next >= HD_LINK_REL_WINDOW) {
    r->rx_out_of_window++;
    return 0;
  }
  hd_link_rel_seg_t *s = &r->rx[seq % HD_LINK_REL_WINDOW];
  if (s->used && s->seq == seq) {
    r->rx_dup++;
    return 0;
  }
  s->used = 1;
  s->seq = seq;
  s->flags = flags;
  s->len = (uint16_t)(len - HD_LINK_REL_DATA_HDR);
  memcpy(s->data, pl + HD_LINK_REL_DATA_HDR, s->len);
  int rc = 0;
  for (;;) {
    hd_link_rel_seg_t *h = &r->rx[r->rx_next % HD_LINK_REL_WINDOW];
    if (!h->used || h->seq != r->rx_next) break;
    if (r->msg_len + h->len > HD_LINK_REL_MSG_MAX && !r->msg_skip) { /* never delivered cut */
      r->msg_skip = 1;
      r->rx_too_long++;
      rc = HD_EPROTO;
    }
    if (!r->msg_skip) {
      memcpy(r->msg + r->msg_len, h->data, h->len);
      r->msg_len += h->len;
    }
    h->used = 0;
    r->rx_next++;
    if (!(h->flags & HD_LINK_REL_MORE)) {
      if (!r->msg_skip) {
        r->msgs_delivered++;
        if (deliver) deliver(ud, r->msg, r->msg_len);
      }
      r->msg_len = 0;
      r->msg_skip = 0;
    }
  }
  return rc;
}
