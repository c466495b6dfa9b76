/* The media packet path allocates nothing in steady state (issue 7): a WHIP
 * publisher (audio + video) and three WHEP viewers on the node, sans-IO on a
 * virtual clock (tests/support/node_world.h), two of the viewers on lossy
 * downlinks so that they NACK and the node answers from its RTX cache
 * (RFC 4585 §6.2.1, RFC 4588). After a warm-up, every heap call made while the
 * node runs is counted by a counting allocator interposed in this binary
 * (malloc/calloc/realloc/free and the aligned ones, forwarded to glibc's
 * __libc_*), by what the node was doing: a datagram fed (RTP, RTCP, STUN,
 * DTLS) or a timer (reports, TWCC, NACK/PLI to the publisher).
 *
 * SRTP (src/proto/srtp.c over libsrtp/OpenSSL) is counted apart: the build
 * links this test with -Wl,--wrap for the four hd_srtp_(un)protect* calls, so
 * heap calls made inside them are attributed to SRTP. The assertions are about
 * our code: zero heap calls outside SRTP per forwarded RTP packet, per received
 * RTCP packet (NACKs included) and per timer run, and zero inside SRTP too
 * with our AES-GCM engine (src/proto/srtp_gcm.c; not asserted with
 * HD_SRTP_ENGINE=libsrtp, whose NSS-based GCM allocates per packet).
 *
 * Under AddressSanitizer the allocator cannot be interposed (ASan owns
 * malloc): the test exits 77, which CMake maps to "skipped". */
#include "hd_test.h"

#include <execinfo.h>
#include <unistd.h>

#include "base/log.h"
#include "proto/srtp.h"
#include "sfu/node.h"
#include "sfu/session.h"
#include "support/node_world.h"

#if defined(__SANITIZE_ADDRESS__)
#define HD_NO_INTERPOSE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define HD_NO_INTERPOSE 1
#endif
#endif

#define SKIP_CODE 77

enum { C_RTP, C_RTCP, C_STUN, C_DTLS, C_OTHER, C_TIMER, C_N };
static const char *const class_name[C_N] = {"rtp", "rtcp", "stun", "dtls", "other", "timer"};

typedef struct {
  uint64_t calls;    /* node calls of this class in the window */
  uint64_t allocs;   /* malloc/calloc/realloc/memalign outside SRTP */
  uint64_t frees;    /* free(non-NULL) outside SRTP */
  uint64_t srtp_ops; /* hd_srtp_(un)protect* calls */
  uint64_t srtp_allocs, srtp_frees;
} alloc_count_t;

static struct {
  int on;      /* counting window open */
  int in_node; /* inside a node call */
  int in_srtp; /* inside an hd_srtp_* call (depth) */
  int cls;     /* class of the current node call */
  int trace;   /* HD_ALLOC_TRACE=1: backtrace of every counted non-SRTP call, 2: SRTP too */
  /* GSO opportunity (docs/performance.md): datagrams the node queued per call,
   * and those that could join the previous one in a UDP_SEGMENT send (same
   * destination and same length as the previous queue entry) */
  uint64_t tx_total, tx_gso_adjacent;
  hd_txq_t *txq;
  alloc_count_t c[C_N];
} g;

#ifndef HD_NO_INTERPOSE
static void count(int is_free) {
  if (!g.on || !g.in_node) return;
  alloc_count_t *c = &g.c[g.cls];
  if (g.in_srtp) {
    if (is_free)
      c->srtp_frees++;
    else
      c->srtp_allocs++;
  } else if (is_free) {
    c->frees++;
  } else {
    c->allocs++;
  }
  if (g.trace > (g.in_srtp ? 1 : 0)) { /* backtrace_symbols_fd does not allocate; backtrace was warmed up */
    void *bt[24];
    int n = backtrace(bt, 24);
    g.on = 0;
    dprintf(2, "--- %s in a %s call:\n", is_free ? "free" : "alloc", class_name[g.cls]);
    backtrace_symbols_fd(bt, n, 2);
    g.on = 1;
  }
}

/* glibc's own entry points, under the names it exports for this purpose. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

void *malloc(size_t n) {
  count(0);
  return __libc_malloc(n);
}
void *calloc(size_t n, size_t m) {
  count(0);
  return __libc_calloc(n, m);
}
void *realloc(void *p, size_t n) {
  count(0);
  return __libc_realloc(p, n);
}
void free(void *p) {
  if (p) count(1);
  __libc_free(p);
}
void *memalign(size_t a, size_t n) {
  count(0);
  return __libc_memalign(a, n);
}
void *aligned_alloc(size_t a, size_t n) {
  count(0);
  return __libc_memalign(a, n);
}
int posix_memalign(void **out, size_t a, size_t n) {
  count(0);
  void *p = __libc_memalign(a, n);
  if (!p) return 12; /* ENOMEM */
  *out = p;
  return 0;
}
#endif

static void srtp_enter(void) {
  g.in_srtp++;
  if (g.on && g.in_node) g.c[g.cls].srtp_ops++;
}

/* --wrap'd SRTP transforms (see CMakeLists.txt): mark the SRTP share. */
int __real_hd_srtp_protect(hd_srtp_t *s, uint8_t *pkt, size_t len, size_t cap);
int __real_hd_srtp_unprotect(hd_srtp_t *s, uint8_t *pkt, size_t len);
int __real_hd_srtp_protect_rtcp(hd_srtp_t *s, uint8_t *pkt, size_t len, size_t cap);
int __real_hd_srtp_unprotect_rtcp(hd_srtp_t *s, uint8_t *pkt, size_t len);
int __wrap_hd_srtp_protect(hd_srtp_t *s, uint8_t *pkt, size_t len, size_t cap);
int __wrap_hd_srtp_unprotect(hd_srtp_t *s, uint8_t *pkt, size_t len);
int __wrap_hd_srtp_protect_rtcp(hd_srtp_t *s, uint8_t *pkt, size_t len, size_t cap);
int __wrap_hd_srtp_unprotect_rtcp(hd_srtp_t *s, uint8_t *pkt, size_t len);

int __wrap_hd_srtp_protect(hd_srtp_t *s, uint8_t *pkt, size_t len, size_t cap) {
  srtp_enter();
  int rc = __real_hd_srtp_protect(s, pkt, len, cap);
  g.in_srtp--;
  return rc;
}
int __wrap_hd_srtp_unprotect(hd_srtp_t *s, uint8_t *pkt, size_t len) {
  srtp_enter();
  int rc = __real_hd_srtp_unprotect(s, pkt, len);
  g.in_srtp--;
  return rc;
}
int __wrap_hd_srtp_protect_rtcp(hd_srtp_t *s, uint8_t *pkt, size_t len, size_t cap) {
  srtp_enter();
  int rc = __real_hd_srtp_protect_rtcp(s, pkt, len, cap);
  g.in_srtp--;
  return rc;
}
int __wrap_hd_srtp_unprotect_rtcp(hd_srtp_t *s, uint8_t *pkt, size_t len) {
  srtp_enter();
  int rc = __real_hd_srtp_unprotect_rtcp(s, pkt, len);
  g.in_srtp--;
  return rc;
}

#ifndef HD_NO_INTERPOSE
/* Classifies what the node is fed (RFC 7983 demux, RFC 5761 §4 for RTCP). */
static int classify(const uint8_t *buf, size_t len) {
  if (!buf) return C_TIMER;
  if (len < 2) return C_OTHER;
  if (buf[0] <= 3) return C_STUN;
  if (buf[0] >= 20 && buf[0] <= 63) return C_DTLS;
  if (buf[0] >= 128 && buf[0] <= 191) return buf[1] >= 192 && buf[1] <= 223 ? C_RTCP : C_RTP;
  return C_OTHER;
}

static void node_hook(void *ctx, int begin, const uint8_t *buf, size_t len) {
  (void)ctx;
  if (begin) {
    g.cls = classify(buf, len);
    if (g.on) g.c[g.cls].calls++;
    g.in_node = 1;
    return;
  }
  g.in_node = 0;
  if (!g.on) return;
  const hd_txq_t *q = g.txq; /* what this call queued (the harness drains after each) */
  for (size_t i = 0; i < q->count; i++) {
    const hd_datagram_t *d = &q->items[(q->head + i) % q->cap];
    g.tx_total++;
    if (i == 0) continue;
    const hd_datagram_t *p = &q->items[(q->head + i - 1) % q->cap];
    if (p->len == d->len && p->tolen == d->tolen && !memcmp(&p->to, &d->to, d->tolen)) g.tx_gso_adjacent++;
  }
}

/* Sum over the node's viewer sessions of media packets sent / retransmissions. */
static void viewer_totals(world_t *w, uint64_t *fwd, uint64_t *rtx) {
  *fwd = *rtx = 0;
  for (int i = 1; i < MAX_CLIENTS; i++) {
    if (!w->p[i].c) continue;
    hd_session_t *s = hd_node_session(w->node, w->p[i].id);
    assert_non_null(s);
    for (int k = 0; k < s->n_out; k++) {
      *fwd += s->out[k].packets;
      *rtx += s->out[k].retransmits;
    }
  }
}

static void test_steady_state_allocs(void **st) {
  (void)st;
  world_t *w = calloc(1, sizeof *w);
  assert_non_null(w);
  world_init(w);
  w->node_hook = node_hook;
  g.txq = hd_node_txq(w->node);
  assert_int_equal(join(w, 0, HD_SESSION_PUBLISH, "r"), 0);
  assert_int_equal(join(w, 1, HD_SESSION_PLAY, "r"), 0);
  /* two viewers NACK what their lossy downlinks drop: one gets RTX, one plain repeats */
  hd_rtc_client_config_t nack_rtx = {.auto_nack = 1, .nack_interval = HD_MS(60)};
  hd_rtc_client_config_t nack_plain = {.auto_nack = 1, .nack_interval = HD_MS(60), .no_rtx = 1};
  assert_int_equal(join_ex(w, 2, HD_SESSION_PLAY, "app", "r", nack_rtx), 0);
  assert_int_equal(join_ex(w, 3, HD_SESSION_PLAY, "app", "r", nack_plain), 0);
  run_for(w, HD_SEC(1));
  for (int i = 0; i <= 3; i++)
    assert_true(hd_rtc_client_connected(w->p[i].c));
  hd_link_params_t lossy = {.delay = DELAY, .loss = 0.03};
  hd_link_set(&w->p[2].down, &lossy);
  hd_link_set(&w->p[3].down, &lossy);
  /* warm-up: every SSRC (RTX ones included) has been seen by SRTP, the
   * first reports and TWCC feedback have gone out */
  run_for(w, HD_SEC(3));

  uint64_t fwd0, rtx0, fwd1, rtx1;
  viewer_totals(w, &fwd0, &rtx0);
  const hd_node_stats_t *ns = hd_node_stats(w->node);
  uint64_t nack0 = ns->media.nack_received;
  memset(g.c, 0, sizeof g.c);
  g.on = 1;
  run_for(w, HD_SEC(4));
  g.on = 0;
  viewer_totals(w, &fwd1, &rtx1);
  uint64_t fwd = fwd1 - fwd0, rtx = rtx1 - rtx0, nacks = ns->media.nack_received - nack0;

  print_message("window: %llu RTP packets forwarded (%llu retransmitted for %llu NACKed seqs)\n",
                (unsigned long long)fwd, (unsigned long long)rtx, (unsigned long long)nacks);
  print_message("GSO: %llu of %llu queued datagrams had the destination and length of the one before\n",
                (unsigned long long)g.tx_gso_adjacent, (unsigned long long)g.tx_total);
  print_message("%-6s %8s %8s %8s %9s %10s %10s\n", "class", "calls", "allocs", "frees", "srtp_ops",
                "srtp_alloc", "srtp_free");
  for (int i = 0; i < C_N; i++)
    print_message("%-6s %8llu %8llu %8llu %9llu %10llu %10llu\n", class_name[i],
                  (unsigned long long)g.c[i].calls, (unsigned long long)g.c[i].allocs,
                  (unsigned long long)g.c[i].frees, (unsigned long long)g.c[i].srtp_ops,
                  (unsigned long long)g.c[i].srtp_allocs, (unsigned long long)g.c[i].srtp_frees);
  for (int i = 0; i < C_N; i++)
    if (g.c[i].srtp_ops)
      print_message("srtp in %s calls: %.2f heap calls (alloc+free) per SRTP transform\n", class_name[i],
                    (double)(g.c[i].srtp_allocs + g.c[i].srtp_frees) / (double)g.c[i].srtp_ops);

  /* the window is the one the issue asks about */
  assert_true(fwd >= 1000);
  assert_true(g.c[C_RTP].calls >= 300);
  assert_true(g.c[C_RTCP].calls >= 20);
  assert_true(rtx >= 20);
  assert_true(g.c[C_TIMER].calls >= 20);
  /* our code: nothing on the heap per RTP packet, RTCP packet (NACK answers
   * included) or timer run */
  static const int hot[] = {C_RTP, C_RTCP, C_TIMER};
  for (size_t i = 0; i < sizeof hot / sizeof hot[0]; i++) {
    assert_int_equal(g.c[hot[i]].allocs, 0);
    assert_int_equal(g.c[hot[i]].frees, 0);
  }
  /* SRTP: AES-GCM (what the clients negotiate) runs on our own engine
   * (src/proto/srtp_gcm.c), which allocates nothing per packet either. With
   * HD_SRTP_ENGINE=libsrtp it runs on Debian's libsrtp2, which does AES-GCM
   * through NSS and allocates and frees 5 blocks per packet (printed above,
   * not asserted; docs/performance.md). */
  const char *eng = getenv("HD_SRTP_ENGINE");
  if (!eng || strcmp(eng, "libsrtp") != 0) {
    for (size_t i = 0; i < sizeof hot / sizeof hot[0]; i++) {
      assert_int_equal(g.c[hot[i]].srtp_allocs, 0);
      assert_int_equal(g.c[hot[i]].srtp_frees, 0);
    }
  }
  world_free(w);
  free(w);
}

static int setup_all(void **st) {
  if (node_world_setup_all(st)) return -1;
  const char *t = getenv("HD_ALLOC_TRACE");
  g.trace = t ? atoi(t) : 0;
  void *bt[2];
  backtrace(bt, 2); /* loads libgcc now, not inside the window */
  return 0;
}

#endif /* HD_NO_INTERPOSE */

int main(void) {
#ifdef HD_NO_INTERPOSE
  (void)class_name;
  printf("test_alloc_free_path: skipped (the allocator cannot be interposed under a sanitizer)\n");
  return SKIP_CODE;
#else
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_steady_state_allocs),
  };
  return cmocka_run_group_tests(tests, setup_all, node_world_teardown_all);
#endif
}
