/* Worker shards (see worker_shards.h): rings between media workers, placement,
 * seal-and-send on the shard worker, stream retirement. */
#include "io/worker_shards.h"

#include <netinet/in.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/spsc.h"
#include "io/rtc_udp.h"
#include "io/udp_batch.h"
#include "sfu/txq.h"

enum { SLOT_PKT = 1, SLOT_RETIRE = 2 };

typedef struct {
  uint8_t type;
  uint16_t len;
  socklen_t tolen;
  hd_shard_stream_t *st;
  union { /* an ICE-selected address: IPv4 or IPv6 (not a whole sockaddr_storage: 100 bytes a slot) */
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
  } to;
  uint8_t data[HD_DATAGRAM_MAX - HD_SRTP_MAX_TRAILER];
} slot_t;

struct hd_shard_stream {
  hd_shards_t *s;
  hd_srtp_t *srtp; /* remote streams: the viewer's outbound RTP session, used by worker `to` only */
  int from, to;
  hd_shard_stream_t *next_retire; /* producer's list of retirements that found the ring full */
};

/* Wakes the consumer at the first packet handed to it after a wake and then
 * after every this many, so it starts at once (the time a packet waits here
 * is queueing delay to the viewer's transport-wide estimator, which took the
 * send time at hand-off) and works while the room worker is still fanning out. */
#define WAKE_EVERY 32

typedef struct {
  /* set before the threads run */
  int fd;
  uv_async_t *wake;
  /* load: viewers this worker seals for (any thread reads, attach/retire write) */
  atomic_size_t streams;
  /* producer-owned (this worker as a room worker) */
  unsigned *since_wake;              /* [n] packets handed to worker i since it was woken */
  uint8_t *gave_up;                  /* [n] the ring to worker i stayed full this flush: drop at once */
  hd_shard_stream_t *pending_retire; /* retirements waiting for room in their ring */
  /* consumer-owned (this worker as a shard) */
  hd_txq_t txq;
  hd_udp_batch_t batch;
  int *gso, *gso_fails; /* [n]: per producer socket */
  /* counters (relaxed atomics: the control thread reads them) */
  atomic_uint_least64_t handed, dropped_full, full_waits, sent, bytes, send_errors, seal_errors, send_calls;
} shard_worker_t;

struct hd_shards {
  atomic_int closing; /* hd_shards_stop: nobody wakes or runs any more */
  int n;
  size_t min_room, ring_cap;
  shard_worker_t *w;
  _Atomic(hd_spsc_t *) *rings; /* [from * n + to], created by `from` at first use */
};

static void add(atomic_uint_least64_t *c, uint64_t v) {
  atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

size_t hd_shards_ring_slots(size_t ring_cap) {
  if (ring_cap < 1 || ring_cap > HD_SHARDS_RING_MAX) return 0;
  size_t c = 1;
  while (c < ring_cap) /* as hd_spsc_init rounds */
    c <<= 1;
  return c;
}

int hd_shards_new(hd_shards_t **out, int n, size_t min_room, size_t ring_cap) {
  if (n < 1 || min_room < 1 || ring_cap < 1 || ring_cap > HD_SHARDS_RING_MAX) return HD_EINVAL;
  hd_shards_t *s = calloc(1, sizeof *s);
  if (!s) return HD_ENOMEM;
  atomic_init(&s->closing, 0);
  s->n = n;
  s->min_room = min_room;
  s->ring_cap = ring_cap;
  s->w = calloc((size_t)n, sizeof *s->w);
  s->rings = calloc((size_t)n * (size_t)n, sizeof *s->rings);
  int rc = s->w && s->rings ? 0 : HD_ENOMEM;
  for (int i = 0; i < n && !rc; i++) {
    shard_worker_t *k = &s->w[i];
    k->fd = -1;
    atomic_init(&k->streams, 0);
    k->since_wake = calloc((size_t)n, sizeof *k->since_wake);
    k->gave_up = calloc((size_t)n, 1);
    k->gso = calloc((size_t)n, sizeof *k->gso);
    k->gso_fails = calloc((size_t)n, sizeof *k->gso_fails);
    if (!k->since_wake || !k->gave_up || !k->gso || !k->gso_fails ||
        hd_txq_init(&k->txq, HD_UDP_BATCH_WINDOW) < 0)
      rc = HD_ENOMEM;
  }
  if (s->rings)
    for (int i = 0; i < n * n; i++)
      atomic_init(&s->rings[i], NULL);
  if (rc) {
    hd_shards_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

void hd_shards_set_worker(hd_shards_t *s, int i, int fd, int gso, uv_async_t *wake) {
  s->w[i].fd = fd;
  s->w[i].wake = wake;
  for (int c = 0; c < s->n; c++)
    s->w[c].gso[i] = gso;
}

/* The ring from -> to, created on first use (on from's thread). */
static hd_spsc_t *ring_get(hd_shards_t *s, int from, int to) {
  _Atomic(hd_spsc_t *) *slot = &s->rings[from * s->n + to];
  hd_spsc_t *q = atomic_load_explicit(slot, memory_order_acquire);
  if (q) return q;
  q = malloc(sizeof *q);
  if (!q) return NULL;
  if (hd_spsc_init(q, s->ring_cap, sizeof(slot_t)) < 0) {
    free(q);
    return NULL;
  }
  atomic_store_explicit(slot, q, memory_order_release);
  return q;
}

static void ping(hd_shards_t *s, int to) {
  if (s->w[to].wake && !atomic_load_explicit(&s->closing, memory_order_acquire)) uv_async_send(s->w[to].wake);
}

static void wake(hd_shards_t *s, int from, int to) {
  s->w[from].since_wake[to] = 0;
  ping(s, to);
}

int hd_shards_attach(hd_shards_t *s, int from, size_t room_size, hd_srtp_t *rtp_tx, hd_shard_stream_t **out) {
  int to = from;
  if (rtp_tx && s->n > 1 && room_size >= s->min_room) {
    size_t best = (size_t)-1;
    for (int i = 0; i < s->n; i++) {
      size_t load = atomic_load_explicit(&s->w[i].streams, memory_order_relaxed);
      /* ties go away from the room's worker: it builds every viewer's packets */
      if (load < best || (load == best && to == from)) {
        best = load;
        to = i;
      }
    }
  }
  hd_shard_stream_t *st = calloc(1, sizeof *st);
  if (!st) return HD_ENOMEM;
  st->s = s;
  st->from = from;
  st->to = to;
  if (to != from) {
    if (!ring_get(s, from, to)) {
      free(st);
      return HD_ENOMEM;
    }
    st->srtp = rtp_tx;
  }
  atomic_fetch_add_explicit(&s->w[to].streams, 1, memory_order_relaxed);
  *out = st;
  return to != from;
}

int hd_shards_send(void *h, const uint8_t *pkt, size_t len, const struct sockaddr *to, socklen_t tolen) {
  hd_shard_stream_t *st = h;
  hd_shards_t *s = st->s;
  shard_worker_t *k = &s->w[st->from];
  if (len > sizeof((slot_t *)0)->data || tolen > sizeof((slot_t *)0)->to) return HD_EINVAL;
  hd_spsc_t *q = atomic_load_explicit(&s->rings[st->from * s->n + st->to], memory_order_relaxed);
  slot_t *sl = q ? hd_spsc_reserve(q) : NULL;
  if (!sl && q && !k->gave_up[st->to] && !atomic_load_explicit(&s->closing, memory_order_acquire)) {
    /* full (a keyframe to many viewers, or the shard was not scheduled):
     * wait for it a little, as sending here would have taken that long, but
     * at most HD_SHARDS_FULL_WAIT_US per flush: a shard that does not move
     * costs drops, not the room worker's time. Not once hd_shards_stop was
     * called: the shards run no more, the ring never drains, and every flush
     * of the shutdown would spin for the whole wait. */
    ping(s, st->to);
    add(&k->full_waits, 1);
    uint64_t t0 = uv_hrtime();
    while (!(sl = hd_spsc_reserve(q)) && uv_hrtime() - t0 < (uint64_t)HD_SHARDS_FULL_WAIT_US * 1000 &&
           !atomic_load_explicit(&s->closing, memory_order_acquire))
      sched_yield();
    if (!sl) k->gave_up[st->to] = 1;
  }
  if (!sl) {
    add(&k->dropped_full, 1);
    ping(s, st->to); /* it is behind: make sure it runs */
    return HD_ENOSPC;
  }
  sl->type = SLOT_PKT;
  sl->len = (uint16_t)len;
  sl->tolen = tolen;
  sl->st = st;
  memcpy(&sl->to, to, tolen);
  memcpy(sl->data, pkt, len);
  hd_spsc_commit(q);
  add(&k->handed, 1);
  if (k->since_wake[st->to]++ % WAKE_EVERY == 0) ping(s, st->to); /* the 1st, 33rd, ... since the flush */
  return 0;
}

static int push_retire(hd_shard_stream_t *st) {
  hd_shards_t *s = st->s;
  int from = st->from, to = st->to; /* st is the shard's to free once committed */
  hd_spsc_t *q = atomic_load_explicit(&s->rings[from * s->n + to], memory_order_relaxed);
  slot_t *sl = hd_spsc_reserve(q);
  if (!sl) return HD_ENOSPC;
  sl->type = SLOT_RETIRE;
  sl->len = 0;
  sl->st = st;
  hd_spsc_commit(q);
  s->w[from].since_wake[to]++;
  return 0;
}

static void stream_free(hd_shard_stream_t *st) {
  atomic_fetch_sub_explicit(&st->s->w[st->to].streams, 1, memory_order_relaxed);
  hd_srtp_free(st->srtp);
  free(st);
}

void hd_shards_detach(hd_shard_stream_t *st) {
  if (!st) return;
  if (st->to == st->from) {
    stream_free(st);
    return;
  }
  shard_worker_t *k = &st->s->w[st->from];
  /* after the packets already handed (FIFO); a full ring keeps it for the next flush */
  if (k->pending_retire || push_retire(st) < 0) {
    hd_shard_stream_t **pp = &k->pending_retire;
    while (*pp)
      pp = &(*pp)->next_retire;
    st->next_retire = NULL;
    *pp = st;
  }
}

int hd_shards_flush(hd_shards_t *s, int from) {
  shard_worker_t *k = &s->w[from];
  while (k->pending_retire) {
    hd_shard_stream_t *next = k->pending_retire->next_retire; /* read before the shard may free it */
    if (push_retire(k->pending_retire) < 0) break;
    k->pending_retire = next;
  }
  for (int to = 0; to < s->n; to++) {
    k->gave_up[to] = 0;
    if (k->since_wake[to]) wake(s, from, to);
  }
  int left = 0;
  for (hd_shard_stream_t *st = k->pending_retire; st; st = st->next_retire)
    left++;
  return left;
}

/* Sends consumer c's queue on producer `from`'s socket. */
static void send_out(hd_shards_t *s, int c, int from) {
  shard_worker_t *k = &s->w[c];
  if (!k->txq.count) return;
  hd_node_stats_t st;
  memset(&st, 0, sizeof st);
  uint64_t calls = 0;
  hd_udp_send_queue(s->w[from].fd, &k->txq, &k->batch, &k->gso[from], &k->gso_fails[from], &calls, &st);
  add(&k->sent, st.packets_out);
  add(&k->bytes, st.bytes_out);
  add(&k->send_errors, st.drop_send_error);
  add(&k->send_calls, calls);
}

int hd_shards_run(hd_shards_t *s, int c) {
  shard_worker_t *k = &s->w[c];
  if (atomic_load_explicit(&s->closing, memory_order_acquire)) return 0;
  int taken = 0, more = 0;
  uint64_t seal_err = 0;
  for (int from = 0; from < s->n; from++) {
    if (from == c) continue;
    hd_spsc_t *q = atomic_load_explicit(&s->rings[from * s->n + c], memory_order_acquire);
    if (!q) continue;
    int budget = HD_SHARDS_RUN_BUDGET;
    slot_t *sl;
    while ((sl = hd_spsc_peek(q))) {
      if (budget-- == 0) {
        more = 1;
        break;
      }
      if (sl->type == SLOT_RETIRE) {
        stream_free(sl->st); /* its packets before this slot are sealed already */
      } else {
        hd_datagram_t *d = hd_txq_reserve(&k->txq);
        if (!d) {
          send_out(s, c, from);
          d = hd_txq_reserve(&k->txq);
        }
        memcpy(d->data, sl->data, sl->len);
        int n = hd_srtp_protect(sl->st->srtp, d->data, sl->len, sizeof d->data);
        if (n < 0)
          seal_err++;
        else
          hd_txq_commit(&k->txq, (size_t)n, &sl->to.sa, sl->tolen);
      }
      hd_spsc_pop(q);
      taken++;
    }
    send_out(s, c, from);
  }
  if (seal_err) add(&k->seal_errors, seal_err);
  if (more) ping(s, c);
  return taken;
}

void hd_shards_stop(hd_shards_t *s) { atomic_store_explicit(&s->closing, 1, memory_order_release); }

void hd_shards_stats(hd_shards_t *s, int i, hd_shards_stats_t *out) {
  shard_worker_t *k = &s->w[i];
  out->handed = atomic_load_explicit(&k->handed, memory_order_relaxed);
  out->dropped_full = atomic_load_explicit(&k->dropped_full, memory_order_relaxed);
  out->full_waits = atomic_load_explicit(&k->full_waits, memory_order_relaxed);
  out->sent = atomic_load_explicit(&k->sent, memory_order_relaxed);
  out->bytes = atomic_load_explicit(&k->bytes, memory_order_relaxed);
  out->send_errors = atomic_load_explicit(&k->send_errors, memory_order_relaxed);
  out->seal_errors = atomic_load_explicit(&k->seal_errors, memory_order_relaxed);
  out->send_calls = atomic_load_explicit(&k->send_calls, memory_order_relaxed);
  out->streams = atomic_load_explicit(&k->streams, memory_order_relaxed);
}

void hd_shards_free(hd_shards_t *s) {
  if (!s) return;
  if (s->rings) {
    for (int i = 0; i < s->n * s->n; i++) {
      hd_spsc_t *q = atomic_load_explicit(&s->rings[i], memory_order_acquire);
      if (!q) continue;
      slot_t *sl;
      while ((sl = hd_spsc_peek(q))) {
        if (sl->type == SLOT_RETIRE) stream_free(sl->st);
        hd_spsc_pop(q);
      }
      hd_spsc_free(q);
      free(q);
    }
  }
  if (s->w) {
    for (int i = 0; i < s->n; i++) {
      shard_worker_t *k = &s->w[i];
      while (k->pending_retire) {
        hd_shard_stream_t *next = k->pending_retire->next_retire;
        stream_free(k->pending_retire);
        k->pending_retire = next;
      }
      hd_txq_free(&k->txq);
      free(k->since_wake);
      free(k->gave_up);
      free(k->gso);
      free(k->gso_fails);
    }
  }
  free(s->rings);
  free(s->w);
  free(s);
}
