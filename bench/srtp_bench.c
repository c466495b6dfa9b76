/* srtp_bench — per-packet cost of AES-GCM SRTP (RFC 7714) on the engines of
 * proto/srtp, side by side in one run: libsrtp2 (Debian's, NSS-backed; selected
 * with HD_SRTP_ENGINE=libsrtp), the native SRTP framing (proto/srtp_gcm) on
 * OpenSSL EVP (HD_SRTP_ENGINE=openssl) and on the AES-NI/PCLMULQDQ AEAD
 * (proto/aes_gcm, the default). Reports ns of thread CPU time per protect and per unprotect
 * of a 1200-byte RTP packet (12-byte header + 1188 payload), the median of a few
 * interleaved rounds, and the libsrtp/native and openssl/native ratios. Not a test: prints numbers.
 *
 * Usage: srtp_bench [--packets N] [--rounds R] [--size BYTES] [--only libsrtp|openssl|native] [--json FILE]
 * For instruction counts: valgrind --tool=callgrind --toggle-collect=hd_srtp_protect
 *   ./build/srtp_bench --packets 20000 --rounds 1 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/srtp.h"

#define BATCH 1024
#define MAXPKT 1500

static const uint8_t k_tx[28] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14,
                                 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28};
static const uint8_t k_rx[28] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 9, 8, 7, 6,
                                 5, 4, 3, 2, 1, 0, 9, 8, 7, 6, 5, 4, 3, 2};
static uint8_t g_pkts[BATCH][MAXPKT];
static int g_lens[BATCH];

static double cpu_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void make_rtp(uint8_t *p, size_t size, uint16_t seq) {
  p[0] = 0x80;
  p[1] = 96;
  p[2] = (uint8_t)(seq >> 8);
  p[3] = (uint8_t)seq;
  memset(p + 4, 0, 4);
  p[8] = 0x12, p[9] = 0x34, p[10] = 0x56, p[11] = 0x78;
  for (size_t i = 12; i < size; i++)
    p[i] = (uint8_t)(i * 31 + seq);
}

typedef struct {
  double protect_ns, unprotect_ns;
} cost_t;

/* One round: `packets` protects (timed), then `packets` unprotects (timed) of
 * packets protected untimed in batches. Sequence numbers run on across rounds
 * (per engine session), wrapping as they would. */
static int run_round(const char *engine, hd_srtp_t *tx, hd_srtp_t *rx, uint32_t *seq, int packets,
                     size_t size, cost_t *c) {
  (void)engine;
  double t_prot = 0, t_unprot = 0;
  for (int done = 0; done < packets; done += BATCH) {
    int n = packets - done < BATCH ? packets - done : BATCH;
    for (int i = 0; i < n; i++)
      make_rtp(g_pkts[i], size, (uint16_t)(*seq + (uint32_t)i));
    double t0 = cpu_ns();
    for (int i = 0; i < n; i++)
      g_lens[i] = hd_srtp_protect(tx, g_pkts[i], size, MAXPKT);
    t_prot += cpu_ns() - t0;
    for (int i = 0; i < n; i++)
      if (g_lens[i] <= 0) return -1;
    t0 = cpu_ns();
    for (int i = 0; i < n; i++)
      g_lens[i] = hd_srtp_unprotect(rx, g_pkts[i], (size_t)g_lens[i]);
    t_unprot += cpu_ns() - t0;
    for (int i = 0; i < n; i++)
      if (g_lens[i] != (int)size) return -1;
    *seq += (uint32_t)n;
  }
  c->protect_ns = t_prot / packets;
  c->unprotect_ns = t_unprot / packets;
  return 0;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  int packets = 200000, rounds = 5;
  size_t size = 1200;
  const char *json = NULL, *only = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--packets") && i + 1 < argc)
      packets = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
      rounds = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--size") && i + 1 < argc)
      size = (size_t)atoi(argv[++i]);
    else if (!strcmp(argv[i], "--only") && i + 1 < argc)
      only = argv[++i];
    else if (!strcmp(argv[i], "--json") && i + 1 < argc)
      json = argv[++i];
    else {
      fprintf(stderr,
              "usage: srtp_bench [--packets N] [--rounds R] [--size BYTES] [--only libsrtp|openssl|native] "
              "[--json FILE]\n");
      return 2;
    }
  }
  if (packets < 1 || rounds < 1 || rounds > 64 || size < 12 || size + HD_SRTP_MAX_TRAILER > MAXPKT) return 2;
  enum { NE = 3 };
  const char *names[NE] = {"libsrtp", "openssl", "native"};
  const char *env[NE] = {"libsrtp", "openssl", NULL};
  const char *framing[NE] = {"libsrtp", "native", "native"}; /* what hd_srtp_engine says */
  hd_srtp_t *tx[NE], *rx[NE];
  for (int e = 0; e < NE; e++) {
    if (env[e])
      setenv("HD_SRTP_ENGINE", env[e], 1);
    else
      unsetenv("HD_SRTP_ENGINE");
    if (hd_srtp_new(&tx[e], HD_SRTP_AEAD_AES_128_GCM, k_tx, k_rx, 28) < 0 ||
        hd_srtp_new(&rx[e], HD_SRTP_AEAD_AES_128_GCM, k_rx, k_tx, 28) < 0 ||
        strcmp(hd_srtp_engine(tx[e]), framing[e])) {
      fprintf(stderr, "cannot create the %s engine\n", names[e]);
      return 1;
    }
  }
  unsetenv("HD_SRTP_ENGINE");
  double prot[NE][64], unprot[NE][64];
  uint32_t seq[NE] = {0, 0, 0};
  for (int r = 0; r < rounds; r++) /* interleaved: both engines see the same machine load */
    for (int e = 0; e < NE; e++) {
      cost_t c = {0, 0};
      if (only && strcmp(only, names[e]) != 0) {
        prot[e][r] = unprot[e][r] = 0;
        continue;
      }
      if (run_round(names[e], tx[e], rx[e], &seq[e], packets, size, &c) < 0) {
        fprintf(stderr, "%s: protect/unprotect failed\n", names[e]);
        return 1;
      }
      prot[e][r] = c.protect_ns;
      unprot[e][r] = c.unprotect_ns;
    }
  cost_t med[NE];
  for (int e = 0; e < NE; e++) {
    qsort(prot[e], (size_t)rounds, sizeof(double), cmp);
    qsort(unprot[e], (size_t)rounds, sizeof(double), cmp);
    med[e].protect_ns = prot[e][rounds / 2];
    med[e].unprotect_ns = unprot[e][rounds / 2];
  }
  double rp = med[2].protect_ns > 0 ? med[0].protect_ns / med[2].protect_ns : 0;
  double ru = med[2].unprotect_ns > 0 ? med[0].unprotect_ns / med[2].unprotect_ns : 0;
  double op = med[2].protect_ns > 0 ? med[1].protect_ns / med[2].protect_ns : 0;
  double ou = med[2].unprotect_ns > 0 ? med[1].unprotect_ns / med[2].unprotect_ns : 0;
  printf("%-8s %14s %16s   (AES-128-GCM, %zu-byte RTP, median of %d rounds x %d packets, thread CPU)\n",
         "engine", "ns/protect", "ns/unprotect", size, rounds, packets);
  for (int e = 0; e < NE; e++)
    printf("%-8s %14.0f %16.0f\n", names[e], med[e].protect_ns, med[e].unprotect_ns);
  printf("libsrtp/native: protect %.2fx, unprotect %.2fx\n", rp, ru);
  printf("openssl/native: protect %.2fx, unprotect %.2fx\n", op, ou);
  if (json) {
    FILE *f = fopen(json, "w");
    if (!f) return 1;
    fprintf(
        f,
        "{\"benchmark\":\"srtp\",\"profile\":\"AEAD_AES_128_GCM\",\"size\":%zu,\"packets\":%d,\"rounds\":%d,"
        "\"libsrtp\":{\"protect_ns\":%.1f,\"unprotect_ns\":%.1f},"
        "\"openssl\":{\"protect_ns\":%.1f,\"unprotect_ns\":%.1f},"
        "\"native\":{\"protect_ns\":%.1f,\"unprotect_ns\":%.1f},"
        "\"ratio_protect\":%.2f,\"ratio_unprotect\":%.2f,"
        "\"ratio_openssl_protect\":%.2f,\"ratio_openssl_unprotect\":%.2f}\n",
        size, packets, rounds, med[0].protect_ns, med[0].unprotect_ns, med[1].protect_ns, med[1].unprotect_ns,
        med[2].protect_ns, med[2].unprotect_ns, rp, ru, op, ou);
    fclose(f);
  }
  for (int e = 0; e < NE; e++) {
    hd_srtp_free(tx[e]);
    hd_srtp_free(rx[e]);
  }
  return 0;
}
