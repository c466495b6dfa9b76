/* One direction of an emulated link (see link.h for the model and its
 * semantics). Capacity schedules follow RFC 8867 §5.1 style piecewise steps;
 * trace-driven capacity follows Mahimahi's packet-delivery traces and its
 * link queue (byte-granular use of 1500-byte opportunities).
 *
 * Design: the bottleneck is computed analytically when a packet is offered.
 * A FIFO server's departure times depend only on arrival times and the
 * capacity function, which is known in advance (constant, schedule or trace),
 * so a packet's whole fate (drop or delivery time) is decided in send(), and
 * the link holds a single binary heap of deliveries keyed by (time, sequence).
 * A small ring of (departure, length) of packets still in the bottleneck gives
 * the queue occupancy for drop-tail. Bottleneck time is kept in nanoseconds
 * relative to the link's start so serialisation times at high rates do not
 * accumulate microsecond rounding.
 *
 * Memory: packet buffers come from a pool of fixed-size slots grown in chunks
 * up to max_packets and then reused, so steady state does no allocation. */
#include "netem/link.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

#define NS_PER_US 1000
#define NS_PER_MS 1000000
#define MAX_OFFSET_US ((hd_time_t)4000000000000000LL) /* ~127 years: keeps ns in int64 */
#define POOL_CHUNK 64                                 /* slots per pool allocation */
#define TRACE_MAX_MS 2147483647u

/* ---- PRNG: xoshiro256** seeded through splitmix64 (public domain algorithms,
 * Blackman & Vigna). Private so runs are reproducible and independent of libc. */
typedef struct {
  uint64_t s[4];
} rng_t;

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void rng_seed(rng_t *r, uint64_t seed, uint64_t stream) {
  uint64_t x = seed ^ (stream * 0xd1342543de82ef95ull);
  for (int i = 0; i < 4; i++)
    r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rng_next(rng_t *r) {
  uint64_t *s = r->s;
  uint64_t res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return res;
}

/* Uniform in [0, 1). */
static inline double rng_u01(rng_t *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

/* Bernoulli draw; no random number consumed for p == 0, so enabling one
 * impairment never shifts another's stream (they are separate anyway). */
static inline int rng_chance(rng_t *r, double p) { return p > 0 && rng_u01(r) < p; }

enum { RNG_LOSS, RNG_DUP, RNG_JITTER, RNG_REORDER, RNG_N };

/* ---- queueing-delay histogram: log-linear, exact below 128 us, 64 sub-buckets
 * per octave above (relative error < 1/64), up to 2^40 us. Bounded memory. */
#define HIST_LIN 128
#define HIST_SUB 64
#define HIST_TOP_EXP 40
#define HIST_N (HIST_LIN + (HIST_TOP_EXP - 7) * HIST_SUB)

static size_t hist_index(uint64_t v) {
  if (v >= (1ull << HIST_TOP_EXP)) v = (1ull << HIST_TOP_EXP) - 1;
  if (v < HIST_LIN) return (size_t)v;
  int e = 63 - __builtin_clzll(v); /* >= 7 */
  uint64_t sub = (v >> (e - 6)) - HIST_SUB;
  return HIST_LIN + (size_t)(e - 7) * HIST_SUB + (size_t)sub;
}

static uint64_t hist_upper(size_t idx) {
  if (idx < HIST_LIN) return idx;
  int e = 7 + (int)((idx - HIST_LIN) / HIST_SUB);
  uint64_t sub = (idx - HIST_LIN) % HIST_SUB;
  return ((HIST_SUB + sub) << (e - 6)) + (1ull << (e - 6)) - 1;
}

/* ---- the link */
typedef struct {
  hd_time_t at;  /* delivery time */
  uint64_t seq;  /* tie-break: equal times leave in offer order */
  uint32_t slot; /* pool slot holding the bytes */
  uint32_t len;
} dlv_t;

typedef struct {
  int64_t dep_ns; /* bottleneck departure, ns from start */
  uint32_t len;
} qent_t;

struct hd_netem_link {
  hd_netem_params_t p;
  hd_time_t start;
  rng_t rng[RNG_N];
  int ge_bad; /* Gilbert-Elliott state */

  /* capacity bookkeeping */
  int64_t busy_ns; /* when the bottleneck finishes its last accepted packet */
  qent_t *ring;    /* packets still in the bottleneck, FIFO */
  size_t ring_head, ring_n;
  uint64_t q_bytes;

  /* trace (Mahimahi); ts in ms, non-decreasing, ts[n-1] = period > 0 */
  uint32_t *trace;
  size_t trace_n;
  int trace_used;      /* trace_c/trace_i name the last opportunity used */
  uint64_t trace_c;    /* cycle of the last used opportunity */
  size_t trace_i;      /* index of the last used opportunity */
  uint32_t trace_left; /* bytes left in it */

  /* after the bottleneck */
  hd_time_t last_dlv; /* for keep_order */

  /* deliveries, a binary min-heap on (at, seq) */
  dlv_t *heap;
  size_t heap_n;
  uint64_t seq;

  /* slot pool */
  uint8_t **chunks;
  size_t n_slots; /* slots allocated */
  uint32_t *free_slots;
  size_t n_free;
  long lent; /* slot lent by the last poll, or -1 */

  size_t cap; /* capacity of heap, ring, free_slots (max packets ever allowed) */
  size_t max_pkts;

  hd_netem_stats_t st;
  uint64_t hist[HIST_N];
};

void hd_netem_params_init(hd_netem_params_t *p) { memset(p, 0, sizeof *p); }

static int prob_ok(double x) { return x >= 0.0 && x <= 1.0; } /* false for NaN */

int hd_netem_params_check(const hd_netem_params_t *p) {
  if (!p) return HD_EINVAL;
  if (p->delay < 0 || p->delay > HD_NETEM_MAX_DELAY || p->jitter < 0 || p->jitter > HD_NETEM_MAX_DELAY)
    return HD_EINVAL;
  if (p->jitter_dist < HD_JITTER_NONE || p->jitter_dist > HD_JITTER_PARETO) return HD_EINVAL;
  if (!prob_ok(p->loss) || !prob_ok(p->duplicate) || !prob_ok(p->reorder)) return HD_EINVAL;
  if (p->ge.enabled && (!prob_ok(p->ge.p) || !prob_ok(p->ge.r) || !prob_ok(p->ge.k) || !prob_ok(p->ge.h)))
    return HD_EINVAL;
  if (p->rate_bps > HD_NETEM_MAX_RATE) return HD_EINVAL;
  if (p->queue_time < 0 || p->queue_time > HD_NETEM_MAX_DELAY) return HD_EINVAL;
  if (p->n_schedule > HD_NETEM_MAX_SCHEDULE || p->n_blackouts > HD_NETEM_MAX_BLACKOUTS) return HD_EINVAL;
  for (size_t i = 0; i < p->n_schedule; i++) {
    const hd_netem_step_t *s = &p->schedule[i];
    if (s->at < 0 || s->at > MAX_OFFSET_US || s->rate_bps > HD_NETEM_MAX_RATE) return HD_EINVAL;
    if (i > 0 && s->at <= p->schedule[i - 1].at) return HD_EINVAL;
  }
  for (size_t i = 0; i < p->n_blackouts; i++) {
    const hd_netem_blackout_t *b = &p->blackouts[i];
    if (b->duration < 0 || b->duration > MAX_OFFSET_US || b->start < -MAX_OFFSET_US ||
        b->start > MAX_OFFSET_US)
      return HD_EINVAL;
  }
  if (p->max_packets > HD_NETEM_MAX_QUEUE_PKTS) return HD_EINVAL;
  return 0;
}

/* Grows every per-packet array to hold `cap` packets (only in new/set). */
static int grow(hd_netem_link_t *l, size_t cap) {
  cap = (cap + POOL_CHUNK - 1) / POOL_CHUNK * POOL_CHUNK; /* whole pool chunks */
  if (cap <= l->cap) return 0;
  dlv_t *heap = realloc(l->heap, cap * sizeof *heap);
  if (!heap) return HD_ENOMEM;
  l->heap = heap;
  uint32_t *fr = realloc(l->free_slots, cap * sizeof *fr);
  if (!fr) return HD_ENOMEM;
  l->free_slots = fr;
  size_t nch = (cap + POOL_CHUNK - 1) / POOL_CHUNK, och = (l->cap + POOL_CHUNK - 1) / POOL_CHUNK;
  uint8_t **ch = realloc(l->chunks, nch * sizeof *ch);
  if (!ch) return HD_ENOMEM;
  for (size_t i = och; i < nch; i++)
    ch[i] = NULL;
  l->chunks = ch;
  /* the ring is circular: relinearise into the new array */
  qent_t *ring = malloc(cap * sizeof *ring);
  if (!ring) return HD_ENOMEM;
  for (size_t i = 0; i < l->ring_n; i++)
    ring[i] = l->ring[(l->ring_head + i) % l->cap];
  free(l->ring);
  l->ring = ring;
  l->ring_head = 0;
  l->cap = cap;
  return 0;
}

static size_t eff_max(const hd_netem_params_t *p) {
  return p->max_packets ? p->max_packets : HD_NETEM_DEFAULT_QUEUE_PKTS;
}

int hd_netem_link_new(hd_netem_link_t **out, const hd_netem_params_t *p, uint64_t seed, hd_time_t start) {
  if (!out || hd_netem_params_check(p)) return HD_EINVAL;
  hd_netem_link_t *l = calloc(1, sizeof *l);
  if (!l) return HD_ENOMEM;
  l->p = *p;
  l->start = start;
  for (int i = 0; i < RNG_N; i++)
    rng_seed(&l->rng[i], seed, (uint64_t)i + 1);
  l->lent = -1;
  l->last_dlv = INT64_MIN;
  l->max_pkts = eff_max(p);
  if (grow(l, l->max_pkts)) {
    hd_netem_link_free(l);
    return HD_ENOMEM;
  }
  *out = l;
  return 0;
}

int hd_netem_link_set(hd_netem_link_t *l, const hd_netem_params_t *p, hd_time_t now) {
  (void)now; /* decisions are made at offer time, so "from now on" needs no bookkeeping */
  if (!l || hd_netem_params_check(p)) return HD_EINVAL;
  int rc = grow(l, eff_max(p));
  if (rc) return rc;
  /* GE state carries over; if GE is switched off and on again it restarts good */
  if (!p->ge.enabled) l->ge_bad = 0;
  l->p = *p;
  l->max_pkts = eff_max(p);
  return 0;
}

void hd_netem_link_free(hd_netem_link_t *l) {
  if (!l) return;
  if (l->chunks)
    for (size_t i = 0; i < (l->cap + POOL_CHUNK - 1) / POOL_CHUNK; i++)
      free(l->chunks[i]);
  free(l->chunks);
  free(l->free_slots);
  free(l->heap);
  free(l->ring);
  free(l->trace);
  free(l);
}

/* ---- trace */

static void set_err(char *err, size_t errcap, size_t line, const char *msg) {
  if (!err || !errcap) return;
  if (line)
    snprintf(err, errcap, "line %zu: %s", line, msg);
  else
    snprintf(err, errcap, "%s", msg);
}

int hd_netem_link_set_trace(hd_netem_link_t *l, const char *text, size_t len, char *err, size_t errcap) {
  if (err && errcap) err[0] = 0;
  if (!l || (!text && len)) return HD_EINVAL;
  size_t lines = 1;
  for (size_t i = 0; i < len; i++)
    lines += text[i] == '\n';
  size_t alloc = lines < HD_NETEM_MAX_TRACE ? lines : HD_NETEM_MAX_TRACE;
  uint32_t *ts = malloc(alloc * sizeof *ts);
  if (!ts) return HD_ENOMEM;
  size_t n = 0, line = 0, pos = 0;
  while (pos < len) {
    line++;
    size_t e = pos;
    while (e < len && text[e] != '\n')
      e++;
    size_t a = pos, b = e;
    pos = e + 1;
    while (a < b && (text[a] == ' ' || text[a] == '\t'))
      a++;
    while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\t' || text[b - 1] == '\r'))
      b--;
    if (a == b || text[a] == '#') continue;
    uint64_t v = 0;
    for (size_t i = a; i < b; i++) {
      if (text[i] < '0' || text[i] > '9') {
        set_err(err, errcap, line, "not a millisecond timestamp");
        free(ts);
        return HD_EPROTO;
      }
      v = v * 10 + (uint64_t)(text[i] - '0');
      if (v > TRACE_MAX_MS) {
        set_err(err, errcap, line, "timestamp too large");
        free(ts);
        return HD_EPROTO;
      }
    }
    if (n && v < ts[n - 1]) {
      set_err(err, errcap, line, "timestamp goes backwards");
      free(ts);
      return HD_EPROTO;
    }
    if (n == HD_NETEM_MAX_TRACE) {
      set_err(err, errcap, line, "too many delivery opportunities");
      free(ts);
      return HD_EPROTO;
    }
    ts[n++] = (uint32_t)v;
  }
  if (n == 0) {
    set_err(err, errcap, 0, "trace has no delivery opportunities");
    free(ts);
    return HD_EPROTO;
  }
  if (ts[n - 1] == 0) {
    set_err(err, errcap, line, "trace lasts 0 ms (the last timestamp is its period)");
    free(ts);
    return HD_EPROTO;
  }
  free(l->trace);
  l->trace = ts;
  l->trace_n = n;
  l->trace_used = 0;
  l->trace_left = 0;
  return 0;
}

void hd_netem_link_clear_trace(hd_netem_link_t *l) {
  if (!l) return;
  free(l->trace);
  l->trace = NULL;
  l->trace_n = 0;
  l->trace_used = 0;
  l->trace_left = 0;
}

static int64_t trace_period_ns(const hd_netem_link_t *l) {
  return (int64_t)l->trace[l->trace_n - 1] * NS_PER_MS;
}

static int64_t trace_time(const hd_netem_link_t *l, uint64_t c, size_t i) {
  return (int64_t)c * trace_period_ns(l) + (int64_t)l->trace[i] * NS_PER_MS;
}

/* First opportunity at or after t_ns (>= 0). */
static void trace_find(const hd_netem_link_t *l, int64_t t_ns, uint64_t *c, size_t *i) {
  int64_t per = trace_period_ns(l);
  uint64_t cy = (uint64_t)(t_ns / per);
  int64_t off = t_ns - (int64_t)cy * per;
  uint64_t off_ms = (uint64_t)((off + NS_PER_MS - 1) / NS_PER_MS);
  size_t lo = 0, hi = l->trace_n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (l->trace[mid] < off_ms)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == l->trace_n) {
    cy++;
    lo = 0;
  } else if (off == 0 && cy > 0) {
    /* t falls on a period boundary: the previous cycle's entries equal to
     * the period come first in index order (same time) */
    size_t k = l->trace_n - 1;
    while (k > 0 && l->trace[k - 1] == l->trace[l->trace_n - 1])
      k--;
    cy--;
    lo = k;
  }
  *c = cy;
  *i = lo;
}

/* Mahimahi link queue: the packet arrives at a_ns, waits for the queue ahead,
 * then takes bytes from successive opportunities. Returns the departure. */
static int64_t trace_serve(hd_netem_link_t *l, int64_t a_ns, uint32_t len) {
  uint32_t rem = len;
  if (l->trace_used && l->trace_left && a_ns <= trace_time(l, l->trace_c, l->trace_i)) {
    /* still queued when the previous packet finished: share its opportunity */
    uint32_t take = rem < l->trace_left ? rem : l->trace_left;
    rem -= take;
    l->trace_left -= take;
    if (!rem) return trace_time(l, l->trace_c, l->trace_i);
  }
  uint64_t c;
  size_t i;
  trace_find(l, a_ns > l->busy_ns ? a_ns : l->busy_ns, &c, &i);
  if (l->trace_used) {
    /* never reuse an opportunity already burnt (equal timestamps) */
    uint64_t nc = l->trace_c;
    size_t ni = l->trace_i + 1;
    if (ni == l->trace_n) {
      nc++;
      ni = 0;
    }
    if (c < nc || (c == nc && i < ni)) {
      c = nc;
      i = ni;
    }
  }
  uint32_t m = (rem + HD_NETEM_TRACE_MTU - 1) / HD_NETEM_TRACE_MTU; /* >= 1 */
  size_t last = i + (m - 1);
  c += last / l->trace_n;
  i = last % l->trace_n;
  l->trace_used = 1;
  l->trace_c = c;
  l->trace_i = i;
  l->trace_left = m * HD_NETEM_TRACE_MTU - rem;
  return trace_time(l, c, i);
}

/* Saturating time arithmetic: caller clocks are arbitrary int64. */
static inline hd_time_t sat_add(hd_time_t a, hd_time_t b) {
  hd_time_t r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX - 1 : INT64_MIN;
  return r == INT64_MAX ? INT64_MAX - 1 : r; /* INT64_MAX is HD_TIME_NEVER */
}

static inline hd_time_t sat_sub(hd_time_t a, hd_time_t b) {
  hd_time_t r;
  if (__builtin_sub_overflow(a, b, &r)) return b < 0 ? INT64_MAX : INT64_MIN;
  return r;
}

/* now - start, saturated to +-MAX_OFFSET_US (caller clocks are arbitrary). */
static hd_time_t offset_us(const hd_netem_link_t *l, hd_time_t now) {
  hd_time_t off;
  if (__builtin_sub_overflow(now, l->start, &off)) return now < 0 ? -MAX_OFFSET_US : MAX_OFFSET_US;
  if (off > MAX_OFFSET_US) return MAX_OFFSET_US;
  if (off < -MAX_OFFSET_US) return -MAX_OFFSET_US;
  return off;
}

/* ---- rate / schedule */

/* Rate in effect at offset t_us and the end of that segment (ns offset). */
static uint64_t rate_at(const hd_netem_params_t *p, int64_t t_ns, int64_t *seg_end_ns) {
  uint64_t r = p->rate_bps;
  int64_t end = INT64_MAX;
  for (size_t k = 0; k < p->n_schedule; k++) {
    int64_t at = p->schedule[k].at * NS_PER_US;
    if (at <= t_ns) {
      r = p->schedule[k].rate_bps;
    } else {
      end = at;
      break;
    }
  }
  if (seg_end_ns) *seg_end_ns = end;
  return r;
}

/* FIFO server with piecewise-constant capacity: serialise len*8 bits starting
 * at s, integrating across schedule steps. Work is counted in bit*1e9 so the
 * arithmetic is exact; a rate of 0 means the rest goes through instantly. */
static int64_t rate_serve(const hd_netem_params_t *p, int64_t s, uint32_t len) {
  uint64_t rem = (uint64_t)len * 8u * 1000000000ull;
  for (;;) {
    int64_t end;
    uint64_t r = rate_at(p, s, &end);
    if (r == 0) return s;
    uint64_t need = (rem + r - 1) / r;
    if (end == INT64_MAX || need <= (uint64_t)(end - s)) return s + (int64_t)need;
    rem -= (uint64_t)(end - s) * r; /* < rem since (end - s) < need */
    s = end;
  }
}

/* At least 1: a very sparse trace is slow, not "unlimited" (0). */
static uint64_t trace_avg_rate(const hd_netem_link_t *l) {
  uint64_t r = (uint64_t)l->trace_n * HD_NETEM_TRACE_MTU * 8u * 1000u / l->trace[l->trace_n - 1];
  return r ? r : 1;
}

uint64_t hd_netem_link_rate(const hd_netem_link_t *l, hd_time_t now) {
  if (!l) return 0;
  if (l->trace) return trace_avg_rate(l);
  hd_time_t off = offset_us(l, now);
  if (off < 0) off = 0;
  return rate_at(&l->p, off * NS_PER_US, NULL);
}

/* ---- delivery heap */

static inline int dlv_before(const dlv_t *a, const dlv_t *b) {
  return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void heap_push(hd_netem_link_t *l, dlv_t d) {
  size_t i = l->heap_n++;
  while (i) {
    size_t up = (i - 1) / 2;
    if (!dlv_before(&d, &l->heap[up])) break;
    l->heap[i] = l->heap[up];
    i = up;
  }
  l->heap[i] = d;
}

static dlv_t heap_pop(hd_netem_link_t *l) {
  dlv_t top = l->heap[0], last = l->heap[--l->heap_n];
  size_t i = 0, n = l->heap_n;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && dlv_before(&l->heap[c + 1], &l->heap[c])) c++;
    if (!dlv_before(&l->heap[c], &last)) break;
    l->heap[i] = l->heap[c];
    i = c;
  }
  if (n) l->heap[i] = last;
  return top;
}

/* ---- slot pool */

static inline uint8_t *slot_ptr(const hd_netem_link_t *l, uint32_t s) {
  return l->chunks[s / POOL_CHUNK] + (size_t)(s % POOL_CHUNK) * HD_NETEM_MAX_PKT;
}

static int slot_get(hd_netem_link_t *l, uint32_t *out) {
  if (!l->n_free) {
    if (l->n_slots >= l->cap) return HD_ENOSPC;
    size_t ch = l->n_slots / POOL_CHUNK;
    l->chunks[ch] = malloc((size_t)POOL_CHUNK * HD_NETEM_MAX_PKT);
    if (!l->chunks[ch]) return HD_ENOMEM;
    /* cap is a multiple of POOL_CHUNK; push in reverse so slots are handed
     * out in ascending order */
    for (size_t k = POOL_CHUNK; k-- > 0;)
      l->free_slots[l->n_free++] = (uint32_t)(l->n_slots + k);
    l->n_slots += POOL_CHUNK;
  }
  *out = l->free_slots[--l->n_free];
  return 0;
}

static void release_lent(hd_netem_link_t *l) {
  if (l->lent >= 0) {
    l->free_slots[l->n_free++] = (uint32_t)l->lent;
    l->lent = -1;
  }
}

size_t hd_netem_link_held(const hd_netem_link_t *l) { return l ? l->heap_n : 0; }

/* ---- send path */

static void qdelay_record(hd_netem_link_t *l, hd_time_t d) {
  if (d < 0) d = 0;
  l->hist[hist_index((uint64_t)d)]++;
  if (d > l->st.qdelay_max) l->st.qdelay_max = d;
}

static hd_time_t jitter_sample(hd_netem_link_t *l) {
  const hd_netem_params_t *p = &l->p;
  if (p->jitter <= 0 || p->jitter_dist == HD_JITTER_NONE) return 0;
  rng_t *r = &l->rng[RNG_JITTER];
  double j = (double)p->jitter, x;
  switch (p->jitter_dist) {
  case HD_JITTER_UNIFORM: x = (2.0 * rng_u01(r) - 1.0) * j; break;
  case HD_JITTER_NORMAL: {
    /* Box-Muller; one sample per packet keeps the stream position simple */
    double u1 = 1.0 - rng_u01(r), u2 = rng_u01(r); /* u1 in (0, 1] */
    x = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2) * j;
    break;
  }
  default: /* Pareto: Lomax shape 3, scale j */ x = (pow(1.0 - rng_u01(r), -1.0 / 3.0) - 1.0) * j; break;
  }
  if (x > 1000.0 * j) x = 1000.0 * j;
  if (x < -1000.0 * j) x = -1000.0 * j;
  return (hd_time_t)llround(x);
}

static int in_blackout(const hd_netem_params_t *p, hd_time_t off) {
  for (size_t i = 0; i < p->n_blackouts; i++)
    if (off >= p->blackouts[i].start && off < p->blackouts[i].start + p->blackouts[i].duration) return 1;
  return 0;
}

static int lost(hd_netem_link_t *l) {
  const hd_netem_params_t *p = &l->p;
  rng_t *r = &l->rng[RNG_LOSS];
  if (p->ge.enabled) {
    /* loss decided by the state the packet meets, then the state moves
     * (as Linux netem's gemodel): a bad sojourn lasts 1/r packets on average */
    int drop;
    if (!l->ge_bad) {
      drop = rng_chance(r, 1.0 - p->ge.k);
      if (rng_chance(r, p->ge.p)) l->ge_bad = 1;
    } else {
      drop = rng_chance(r, 1.0 - p->ge.h);
      if (rng_chance(r, p->ge.r)) l->ge_bad = 0;
    }
    return drop;
  }
  return rng_chance(r, p->loss);
}

static void ring_prune(hd_netem_link_t *l, int64_t t_ns) {
  while (l->ring_n && l->ring[l->ring_head].dep_ns <= t_ns) {
    l->q_bytes -= l->ring[l->ring_head].len;
    l->ring_head = (l->ring_head + 1) % l->cap;
    l->ring_n--;
  }
}

/* One copy through the bottleneck and the delay stage. 1 accepted, 0 dropped. */
static int enqueue(hd_netem_link_t *l, const uint8_t *pkt, uint32_t len, hd_time_t now, int64_t a_ns) {
  const hd_netem_params_t *p = &l->p;
  /* (the slot lent by poll was released on entry to send) */
  if (l->heap_n >= l->max_pkts || l->heap_n >= l->cap) {
    l->st.drop_cap++;
    return 0;
  }
  int64_t dep_ns;
  ring_prune(l, a_ns);
  int limited = l->trace || p->rate_bps || p->n_schedule;
  if (!limited && l->ring_n == 0) {
    dep_ns = a_ns > l->busy_ns ? a_ns : l->busy_ns;
  } else {
    uint64_t limit = p->queue_bytes;
    if (!limit && p->queue_time) {
      /* converted with the rate in effect at the offer (0 = unlimited: no limit) */
      uint64_t r = l->trace ? trace_avg_rate(l) : rate_at(p, a_ns, NULL);
      if (r) {
        double b = (double)p->queue_time * (double)r / 8e6;
        limit = b < 1.0 ? 1 : (uint64_t)b;
      }
    }
    /* drop-tail; an empty queue always takes one packet */
    if (limit && l->ring_n && l->q_bytes + len > limit) {
      l->st.drop_queue++;
      return 0;
    }
    if (l->ring_n == l->cap) { /* only with non-monotonic time */
      l->st.drop_cap++;
      return 0;
    }
    int64_t s = a_ns > l->busy_ns ? a_ns : l->busy_ns;
    dep_ns = l->trace ? trace_serve(l, a_ns, len) : rate_serve(p, s, len);
  }
  if (dep_ns > l->busy_ns) l->busy_ns = dep_ns;
  if (dep_ns > a_ns) {
    qent_t *q = &l->ring[(l->ring_head + l->ring_n) % l->cap];
    q->dep_ns = dep_ns;
    q->len = len;
    l->ring_n++;
    l->q_bytes += len;
  }
  hd_time_t dep = sat_add(l->start, (dep_ns + NS_PER_US - 1) / NS_PER_US);
  if (dep < now) dep = now; /* only past the offset range (~127 years) */
  qdelay_record(l, sat_sub(dep, now));

  hd_time_t at;
  if (rng_chance(&l->rng[RNG_REORDER], p->reorder)) {
    at = dep;
    l->st.reordered++;
  } else {
    hd_time_t extra = p->delay + jitter_sample(l);
    at = sat_add(dep, extra > 0 ? extra : 0);
    if (p->keep_order && at < l->last_dlv) at = l->last_dlv;
    if (at > l->last_dlv) l->last_dlv = at;
  }
  uint32_t slot;
  if (slot_get(l, &slot)) {
    l->st.drop_cap++;
    return 0;
  }
  memcpy(slot_ptr(l, slot), pkt, len);
  heap_push(l, (dlv_t){.at = at, .seq = l->seq++, .slot = slot, .len = len});
  return 1;
}

int hd_netem_link_send(hd_netem_link_t *l, const uint8_t *pkt, size_t len, hd_time_t now) {
  if (!l || !pkt || len == 0 || len > HD_NETEM_MAX_PKT) return HD_EINVAL;
  release_lent(l);
  l->st.pkts_in++;
  l->st.bytes_in += len;
  hd_time_t off = offset_us(l, now);
  if (in_blackout(&l->p, off)) {
    l->st.drop_blackout++;
    return 0;
  }
  if (lost(l)) {
    l->st.drop_loss++;
    return 0;
  }
  int dup = rng_chance(&l->rng[RNG_DUP], l->p.duplicate);
  if (off < 0) off = 0; /* offers before the start are served from the start */
  int64_t a_ns = off * NS_PER_US;
  int rc = enqueue(l, pkt, (uint32_t)len, now, a_ns);
  if (dup) {
    l->st.duplicated++;
    (void)enqueue(l, pkt, (uint32_t)len, now, a_ns);
  }
  return rc;
}

int hd_netem_link_poll(hd_netem_link_t *l, hd_time_t now, const uint8_t **pkt) {
  if (!l || !pkt) return HD_EINVAL;
  release_lent(l);
  if (!l->heap_n || l->heap[0].at > now) return 0;
  dlv_t d = heap_pop(l);
  l->lent = (long)d.slot;
  *pkt = slot_ptr(l, d.slot);
  l->st.pkts_out++;
  l->st.bytes_out += d.len;
  return (int)d.len;
}

hd_time_t hd_netem_link_next_timeout(const hd_netem_link_t *l) {
  return l && l->heap_n ? l->heap[0].at : HD_TIME_NEVER;
}

void hd_netem_link_stats(hd_netem_link_t *l, hd_netem_stats_t *out) {
  if (!l || !out) return;
  *out = l->st;
  uint64_t total = 0;
  for (size_t i = 0; i < HIST_N; i++)
    total += l->hist[i];
  out->qdelay_p50 = out->qdelay_p95 = out->qdelay_p99 = 0;
  if (!total) return;
  /* nearest-rank percentiles, reported as the bucket's upper edge (<= max) */
  const double q[3] = {0.50, 0.95, 0.99};
  hd_time_t *dst[3] = {&out->qdelay_p50, &out->qdelay_p95, &out->qdelay_p99};
  uint64_t cum = 0;
  size_t k = 0;
  for (size_t i = 0; i < HIST_N && k < 3; i++) {
    cum += l->hist[i];
    while (k < 3 && cum >= (uint64_t)ceil(q[k] * (double)total)) {
      hd_time_t v = (hd_time_t)hist_upper(i);
      *dst[k++] = v < out->qdelay_max ? v : out->qdelay_max;
    }
  }
}
