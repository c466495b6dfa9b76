/* Deterministic randomness for the test worlds (seeded_rand.h). */
/* RAND_METHOD is deprecated in OpenSSL 3 but is still the one hook that reaches
 * every RAND_bytes_ex/RAND_priv_bytes_ex call inside libssl and the default
 * provider (key generation, ECDSA nonces); test code only. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "seeded_rand.h"

#include <openssl/rand.h>
#include <stddef.h>
#include <string.h>

static int seeded;
static uint64_t state;

/* splitmix64 (Steele, Lea, Flood 2014): tiny, full-period, good enough for
 * reproducible test identifiers and keys. */
static uint64_t next64(void) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void fill(void *buf, size_t n) {
  uint8_t *p = buf;
  while (n > 0) {
    uint64_t v = next64();
    size_t k = n < sizeof v ? n : sizeof v;
    memcpy(p, &v, k);
    p += k;
    n -= k;
  }
}

/* Resolves the weak reference in src/base/rand.c. */
int hd_rand_test_override(void *buf, size_t n);
int hd_rand_test_override(void *buf, size_t n) {
  if (!seeded) return 0;
  fill(buf, n);
  return 1;
}

static int ossl_bytes(unsigned char *buf, int num) {
  if (num < 0) return 0;
  fill(buf, (size_t)num);
  return 1;
}
static int ossl_seed(const void *buf, int num) {
  (void)buf;
  (void)num;
  return 1;
}
static int ossl_add(const void *buf, int num, double entropy) {
  (void)buf;
  (void)num;
  (void)entropy;
  return 1;
}
static int ossl_status(void) { return 1; }

static RAND_METHOD ossl_method = {
    .seed = ossl_seed, .bytes = ossl_bytes, .add = ossl_add, .pseudorand = ossl_bytes, .status = ossl_status};

void hd_test_rand_seed(uint64_t seed) {
  state = seed;
  seeded = 1;
  RAND_set_rand_method(&ossl_method);
}

void hd_test_rand_unseed(void) {
  seeded = 0;
  RAND_set_rand_method(NULL);
}
