/* getrandom(2)-backed randomness. */
#include "base/rand.h"

#include <errno.h>
#include <sys/random.h>

#include "base/err.h"

/* Test seam (docs/testing.md, "Determinism"): a weak reference that only a test
 * binary resolves, by linking tests/support/seeded_rand.c (hd_test_rand_seed).
 * No source under src/ defines it and the production binaries do not link the
 * test support library (a ctest checks `hudong` has no such symbol), so there
 * the address is NULL and every byte comes from getrandom(2); hidden, so the
 * dynamic loader cannot bind it either (no LD_PRELOAD of a definition). It returns 1 when
 * it filled buf from its seeded generator, 0 to fall through to getrandom. */
extern int hd_rand_test_override(void *buf, size_t n) __attribute__((weak, visibility("hidden")));

int hd_random_bytes(void *buf, size_t n) {
  if (hd_rand_test_override && hd_rand_test_override(buf, n)) return 0;
  uint8_t *p = buf;
  while (n > 0) {
    ssize_t r = getrandom(p, n, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return HD_EIO;
    }
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

uint32_t hd_random_u32(void) {
  uint32_t v = 0;
  (void)hd_random_bytes(&v, sizeof v);
  return v;
}

void hd_random_token(char *out, size_t n) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  uint8_t raw[256];
  size_t done = 0;
  while (done < n) {
    size_t chunk = n - done > sizeof raw ? sizeof raw : n - done;
    (void)hd_random_bytes(raw, chunk);
    for (size_t i = 0; i < chunk; i++)
      out[done + i] = alphabet[raw[i] % 62];
    done += chunk;
  }
  out[n] = 0;
}
