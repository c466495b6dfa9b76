/* AES-128-GCM (NIST SP 800-38D), native AES-NI/PCLMULQDQ engine and the
 * OpenSSL EVP reference engine. See proto/aes_gcm.h.
 *
 * Native GHASH, the arithmetic: GF(2^128) modulo g = x^128 + x^7 + x^2 + x + 1
 * with GCM's bit order (SP 800-38D §6.3: bit 0 of a block, the MSB of its
 * first byte, is the coefficient of x^0). A block is byte-reversed on load, so
 * that in the 128-bit register bit j holds the coefficient of x^(127-j) (the
 * "reflected" form). A carry-less multiply of two reflected values gives bit k
 * = coefficient of x^(254-k) of the product: one bit short of the reflected
 * 256-bit form. Instead of shifting every product, the key is stored as
 * H * x^-1 mod g (x^-1 = x^127 + x^6 + x + 1, since x * that = g + 1), so the
 * 256-bit product of a reflected block and the stored key is exactly the
 * reflected form of block * H. Its high 128 bits are the degrees 0..127; its
 * low 128 bits L stand for x^128 * l, and x^128 = 1 + x + x^2 + x^7 (mod g):
 * in reflected form, multiplying by x^m is a right shift by m, and the bits a
 * shift pushes out (degrees 128..134, from the lowest 7 bits of L) fold back
 * the same way once more. Eight blocks are multiplied by H^8..H^1 and summed
 * before one reduction (aggregated reduction), with Karatsuba's three
 * multiplies per block, while the next eight counter blocks go through AES. The counter blocks are CTR mode
 * with a 32-bit big-endian counter starting at 2 (§7.1: J0 = IV || 1 encrypts the tag). */
#include "proto/aes_gcm.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HD_AES_GCM_HAVE_NATIVE 1
#include <cpuid.h>
#include <immintrin.h>
#endif

struct hd_aes_gcm {
#ifdef HD_AES_GCM_HAVE_NATIVE
  __m128i rk[11]; /* AES-128 round keys (FIPS 197 §5.2) */
  __m128i hp[8];  /* reflected H^(i+1) * x^-1 */
  __m128i hk[8];  /* Karatsuba: low 64 bits of hp[i] XOR its high 64 bits */
  /* vaes engine: the same, two blocks per 256-bit register */
  __m256i rkw[11];       /* round keys in both halves */
  __m256i hw[4], hkw[4]; /* pair j: low half for block 2j (H^(8-2j)), high half for 2j+1 */
#endif
  EVP_CIPHER_CTX *enc, *dec; /* openssl engine: pre-keyed, IV set per call */
  int engine;
};

/* ---------------------------------------------------------------- native */
#ifdef HD_AES_GCM_HAVE_NATIVE
#define TGT __attribute__((target("avx,aes,pclmul")))

TGT static inline __m128i bswap(__m128i x) {
  return _mm_shuffle_epi8(x, _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
}

TGT static inline __m128i aes_block(const __m128i *rk, __m128i b) {
  b = _mm_xor_si128(b, rk[0]);
#pragma GCC unroll 9
  for (int i = 1; i < 10; i++)
    b = _mm_aesenc_si128(b, rk[i]);
  return _mm_aesenclast_si128(b, rk[10]);
}

/* Eight blocks in parallel (the AES units are pipelined), round keys read
 * from memory operands. */
TGT static inline void aes_block8(const __m128i *rk, __m128i b[8]) {
#pragma GCC unroll 8
  for (int j = 0; j < 8; j++)
    b[j] = _mm_xor_si128(b[j], rk[0]);
#pragma GCC unroll 9
  for (int i = 1; i < 10; i++) {
    __m128i k = rk[i];
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++)
      b[j] = _mm_aesenc_si128(b[j], k);
  }
#pragma GCC unroll 8
  for (int j = 0; j < 8; j++)
    b[j] = _mm_aesenclast_si128(b[j], rk[10]);
}

/* FIPS 197 §5.2 for Nk = 4: w[i] = w[i-4] ^ SubWord(RotWord(w[i-1])) ^ Rcon
 * for the first word of a round key, w[i] = w[i-4] ^ w[i-1] for the others;
 * aeskeygenassist gives SubWord(RotWord(.)) ^ Rcon of the last word in lane 3. */
TGT static inline __m128i key_step(__m128i k, __m128i assist) {
  assist = _mm_shuffle_epi32(assist, 0xff);
  k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
  k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
  k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
  return _mm_xor_si128(k, assist);
}

TGT static void key_expand(__m128i rk[11], const uint8_t key[16]) {
  rk[0] = _mm_loadu_si128((const __m128i *)key);
#define HD_KEY_STEP(i, rcon) rk[i] = key_step(rk[i - 1], _mm_aeskeygenassist_si128(rk[i - 1], rcon))
  HD_KEY_STEP(1, 0x01);
  HD_KEY_STEP(2, 0x02);
  HD_KEY_STEP(3, 0x04);
  HD_KEY_STEP(4, 0x08);
  HD_KEY_STEP(5, 0x10);
  HD_KEY_STEP(6, 0x20);
  HD_KEY_STEP(7, 0x40);
  HD_KEY_STEP(8, 0x80);
  HD_KEY_STEP(9, 0x1b);
  HD_KEY_STEP(10, 0x36);
#undef HD_KEY_STEP
}

/* Reflected 256-bit hi:lo to 128 bits (see the header comment). */
TGT static inline __m128i reduce(__m128i hi, __m128i lo) {
  /* the bits x^1, x^2, x^7 push out of lo, folded: (lo << 127) ^ (lo << 126) ^ (lo << 121) */
  __m128i e =
      _mm_xor_si128(_mm_xor_si128(_mm_slli_epi64(lo, 63), _mm_slli_epi64(lo, 62)), _mm_slli_epi64(lo, 57));
  __m128i m = _mm_xor_si128(lo, _mm_slli_si128(e, 8));
  /* m * (1 + x + x^2 + x^7): m ^ (m >> 1) ^ (m >> 2) ^ (m >> 7), 128-bit shifts */
  __m128i r = _mm_xor_si128(_mm_xor_si128(_mm_srli_epi64(m, 1), _mm_srli_epi64(m, 2)), _mm_srli_epi64(m, 7));
  __m128i c =
      _mm_xor_si128(_mm_xor_si128(_mm_slli_epi64(m, 63), _mm_slli_epi64(m, 62)), _mm_slli_epi64(m, 57));
  r = _mm_xor_si128(r, _mm_srli_si128(c, 8));
  return _mm_xor_si128(_mm_xor_si128(m, r), hi);
}

/* Unreduced product accumulators (Karatsuba: lo, hi, and the middle term). */
typedef struct {
  __m128i lo, hi, mid;
} acc_t;

TGT static inline void mul_acc(acc_t *a, __m128i x, __m128i h, __m128i hk) {
  a->lo = _mm_xor_si128(a->lo, _mm_clmulepi64_si128(x, h, 0x00));
  a->hi = _mm_xor_si128(a->hi, _mm_clmulepi64_si128(x, h, 0x11));
  __m128i xk = _mm_xor_si128(x, _mm_shuffle_epi32(x, 0x4e));
  a->mid = _mm_xor_si128(a->mid, _mm_clmulepi64_si128(xk, hk, 0x00));
}

TGT static inline __m128i acc_reduce(const acc_t *a) {
  __m128i mid = _mm_xor_si128(a->mid, _mm_xor_si128(a->lo, a->hi));
  return reduce(_mm_xor_si128(a->hi, _mm_srli_si128(mid, 8)), _mm_xor_si128(a->lo, _mm_slli_si128(mid, 8)));
}

/* y = (y ^ x) * H, x reflected. */
TGT static inline __m128i ghash1(const hd_aes_gcm_t *k, __m128i y, __m128i x) {
  acc_t a = {_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128()};
  mul_acc(&a, _mm_xor_si128(y, x), k->hp[0], k->hk[0]);
  return acc_reduce(&a);
}

/* y = (...((y ^ x0) * H ^ x1) * H ... ^ x7) * H, as one sum and one reduction. */
TGT static inline __m128i ghash8(const hd_aes_gcm_t *k, __m128i y, const __m128i x[8]) {
  acc_t a = {_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128()};
  mul_acc(&a, _mm_xor_si128(y, x[0]), k->hp[7], k->hk[7]);
#pragma GCC unroll 7
  for (int i = 1; i < 8; i++)
    mul_acc(&a, x[i], k->hp[7 - i], k->hk[7 - i]);
  return acc_reduce(&a);
}

/* GHASH over p[0..n), zero-padded to whole blocks. */
TGT static __m128i ghash_bytes(const hd_aes_gcm_t *k, __m128i y, const uint8_t *p, size_t n) {
  for (; n >= 128; p += 128, n -= 128) {
    __m128i x[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
      x[i] = bswap(_mm_loadu_si128((const __m128i *)(p + 16 * i)));
    y = ghash8(k, y, x);
  }
  for (; n >= 16; p += 16, n -= 16)
    y = ghash1(k, y, bswap(_mm_loadu_si128((const __m128i *)p)));
  if (n) {
    uint8_t b[16] = {0};
    memcpy(b, p, n);
    y = ghash1(k, y, bswap(_mm_loadu_si128((const __m128i *)b)));
  }
  return y;
}

/* GHASH of a1 || a2, zero-padded (the AAD of SP 800-38D §7.1 step 5). */
TGT static __m128i ghash_aad(const hd_aes_gcm_t *k, const uint8_t *a1, size_t a1n, const uint8_t *a2,
                             size_t a2n) {
  __m128i y = _mm_setzero_si128();
  size_t full = a1n & ~(size_t)15, r = a1n - full;
  y = ghash_bytes(k, y, a1, full);
  if (r) { /* a1's tail and the start of a2 share a block */
    uint8_t b[16] = {0};
    size_t take = a2n < 16 - r ? a2n : 16 - r;
    memcpy(b, a1 + full, r);
    if (take) memcpy(b + r, a2, take);
    y = ghash1(k, y, bswap(_mm_loadu_si128((const __m128i *)b)));
    a2 += take;
    a2n -= take;
  }
  return a2n ? ghash_bytes(k, y, a2, a2n) : y;
}

/* CTR over data in place, GHASHing the ciphertext (after encrypting for seal,
 * before decrypting for open); then the tag, S = GHASH ^ E(K, J0). In three
 * parts, all inlined into each engine's seal and open (so `enc` is a constant):
 * the set-up and AAD, the bulk (eight blocks per round; 128-bit AES-NI or
 * 256-bit VAES), and the last blocks with the tag. */
typedef struct {
  __m128i j0, c, y; /* J0; the counter state (reflected: the 32-bit counter in lane 0); GHASH so far */
  uint8_t *p;
  size_t left;
} run_t;

TGT static inline __attribute__((always_inline)) void crypt_head(const hd_aes_gcm_t *k, run_t *r,
                                                                 const uint8_t iv[12], const uint8_t *a1,
                                                                 size_t a1n, const uint8_t *a2, size_t a2n,
                                                                 uint8_t *data, size_t n) {
  uint8_t j0b[16];
  memcpy(j0b, iv, 12);
  j0b[12] = j0b[13] = j0b[14] = 0;
  j0b[15] = 1;
  r->j0 = _mm_loadu_si128((const __m128i *)j0b);
  r->c = bswap(r->j0);
  r->y = ghash_aad(k, a1, a1n, a2, a2n);
  r->p = data;
  r->left = n;
}

TGT static inline __attribute__((always_inline)) void bulk128(const hd_aes_gcm_t *k, run_t *r,
                                                              const int enc) {
  const __m128i one = _mm_set_epi32(0, 0, 0, 1);
  __m128i c = r->c, y = r->y;
  uint8_t *p = r->p;
  size_t left = r->left;
  for (; left >= 128; p += 128, left -= 128) {
    __m128i s[8], x[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
      c = _mm_add_epi32(c, one);
      s[i] = bswap(c);
    }
    aes_block8(k->rk, s);
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
      __m128i d = _mm_loadu_si128((const __m128i *)(p + 16 * i));
      __m128i o = _mm_xor_si128(d, s[i]);
      _mm_storeu_si128((__m128i *)(p + 16 * i), o);
      x[i] = bswap(enc ? o : d);
    }
    y = ghash8(k, y, x);
  }
  r->c = c;
  r->y = y;
  r->p = p;
  r->left = left;
}

TGT static inline __attribute__((always_inline)) void
crypt_tail(const hd_aes_gcm_t *k, run_t *r, size_t aad_len, size_t n, const int enc, uint8_t tag[16]) {
  const __m128i one = _mm_set_epi32(0, 0, 0, 1);
  __m128i c = r->c, y = r->y;
  uint8_t *p = r->p;
  size_t left = r->left;
  for (; left >= 16; p += 16, left -= 16) {
    c = _mm_add_epi32(c, one);
    __m128i d = _mm_loadu_si128((const __m128i *)p);
    __m128i o = _mm_xor_si128(d, aes_block(k->rk, bswap(c)));
    _mm_storeu_si128((__m128i *)p, o);
    y = ghash1(k, y, bswap(enc ? o : d));
  }
  if (left) {
    uint8_t b[16] = {0}, ks[16];
    c = _mm_add_epi32(c, one);
    _mm_storeu_si128((__m128i *)ks, aes_block(k->rk, bswap(c)));
    memcpy(b, p, left);
    if (!enc) y = ghash1(k, y, bswap(_mm_loadu_si128((const __m128i *)b)));
    for (size_t i = 0; i < left; i++)
      b[i] ^= ks[i];
    memcpy(p, b, left);
    if (enc) {
      memset(b + left, 0, 16 - left);
      y = ghash1(k, y, bswap(_mm_loadu_si128((const __m128i *)b)));
    }
  }
  /* §7.1 step 5: the lengths block, len(A) || len(C) in bits, 64 bits each. */
  __m128i lens = _mm_set_epi64x((long long)((uint64_t)aad_len * 8), (long long)((uint64_t)n * 8));
  y = ghash1(k, y, lens);
  _mm_storeu_si128((__m128i *)tag, _mm_xor_si128(bswap(y), aes_block(k->rk, r->j0)));
}

TGT static void native_seal(const hd_aes_gcm_t *k, const uint8_t iv[12], const uint8_t *a1, size_t a1n,
                            const uint8_t *a2, size_t a2n, uint8_t *data, size_t n, uint8_t tag[16]) {
  run_t r;
  crypt_head(k, &r, iv, a1, a1n, a2, a2n, data, n);
  bulk128(k, &r, 1);
  crypt_tail(k, &r, a1n + a2n, n, 1, tag);
}

TGT static void native_open(const hd_aes_gcm_t *k, const uint8_t iv[12], const uint8_t *a1, size_t a1n,
                            const uint8_t *a2, size_t a2n, uint8_t *data, size_t n, uint8_t tag[16]) {
  run_t r;
  crypt_head(k, &r, iv, a1, a1n, a2, a2n, data, n);
  bulk128(k, &r, 0);
  crypt_tail(k, &r, a1n + a2n, n, 0, tag);
}

/* ---- vaes: the bulk with VAES + VPCLMULQDQ on 256-bit registers (two blocks
 * per instruction; Ice Lake, Zen 3 and later). Not measurable under valgrind,
 * which hides these CPU features: there the 128-bit engine runs. */
#define VT __attribute__((target("avx2,vaes,vpclmulqdq,aes,pclmul")))

VT static inline __attribute__((always_inline)) void bulk256(const hd_aes_gcm_t *k, run_t *r, const int enc) {
  const __m256i bsw =
      _mm256_broadcastsi128_si256(_mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  const __m256i two = _mm256_set_epi32(0, 0, 0, 2, 0, 0, 0, 2);
  const __m128i eight = _mm_set_epi32(0, 0, 0, 8);
  __m128i c = r->c, y = r->y;
  uint8_t *p = r->p;
  size_t left = r->left;
  for (; left >= 128; p += 128, left -= 128) {
    /* counters c+1 .. c+8, two per register (low half first) */
    __m256i cc = _mm256_add_epi32(_mm256_broadcastsi128_si256(c), _mm256_set_epi32(0, 0, 0, 2, 0, 0, 0, 1));
    c = _mm_add_epi32(c, eight);
    __m256i s[4], x[4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
      s[j] = _mm256_xor_si256(_mm256_shuffle_epi8(cc, bsw), k->rkw[0]);
      cc = _mm256_add_epi32(cc, two);
    }
#pragma GCC unroll 9
    for (int i = 1; i < 10; i++) {
      __m256i rk = k->rkw[i];
#pragma GCC unroll 4
      for (int j = 0; j < 4; j++)
        s[j] = _mm256_aesenc_epi128(s[j], rk);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
      s[j] = _mm256_aesenclast_epi128(s[j], k->rkw[10]);
      __m256i d = _mm256_loadu_si256((const __m256i *)(p + 32 * j));
      __m256i o = _mm256_xor_si256(d, s[j]);
      _mm256_storeu_si256((__m256i *)(p + 32 * j), o);
      x[j] = _mm256_shuffle_epi8(enc ? o : d, bsw);
    }
    x[0] = _mm256_xor_si256(x[0], _mm256_inserti128_si256(_mm256_setzero_si256(), y, 0));
    __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256(), mid = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
      lo = _mm256_xor_si256(lo, _mm256_clmulepi64_epi128(x[j], k->hw[j], 0x00));
      hi = _mm256_xor_si256(hi, _mm256_clmulepi64_epi128(x[j], k->hw[j], 0x11));
      __m256i xk = _mm256_xor_si256(x[j], _mm256_shuffle_epi32(x[j], 0x4e));
      mid = _mm256_xor_si256(mid, _mm256_clmulepi64_epi128(xk, k->hkw[j], 0x00));
    }
    acc_t a = {_mm_xor_si128(_mm256_castsi256_si128(lo), _mm256_extracti128_si256(lo, 1)),
               _mm_xor_si128(_mm256_castsi256_si128(hi), _mm256_extracti128_si256(hi, 1)),
               _mm_xor_si128(_mm256_castsi256_si128(mid), _mm256_extracti128_si256(mid, 1))};
    y = acc_reduce(&a);
  }
  r->c = c;
  r->y = y;
  r->p = p;
  r->left = left;
}

VT static void vaes_seal(const hd_aes_gcm_t *k, const uint8_t iv[12], const uint8_t *a1, size_t a1n,
                         const uint8_t *a2, size_t a2n, uint8_t *data, size_t n, uint8_t tag[16]) {
  run_t r;
  crypt_head(k, &r, iv, a1, a1n, a2, a2n, data, n);
  bulk256(k, &r, 1);
  crypt_tail(k, &r, a1n + a2n, n, 1, tag);
}

VT static void vaes_open(const hd_aes_gcm_t *k, const uint8_t iv[12], const uint8_t *a1, size_t a1n,
                         const uint8_t *a2, size_t a2n, uint8_t *data, size_t n, uint8_t tag[16]) {
  run_t r;
  crypt_head(k, &r, iv, a1, a1n, a2, a2n, data, n);
  bulk256(k, &r, 0);
  crypt_tail(k, &r, a1n + a2n, n, 0, tag);
}

VT static void vaes_init(hd_aes_gcm_t *k) {
  for (int i = 0; i < 11; i++)
    k->rkw[i] = _mm256_broadcastsi128_si256(k->rk[i]);
  for (int j = 0; j < 4; j++) {
    k->hw[j] = _mm256_set_m128i(k->hp[6 - 2 * j], k->hp[7 - 2 * j]);
    k->hkw[j] = _mm256_set_m128i(k->hk[6 - 2 * j], k->hk[7 - 2 * j]);
  }
}

/* hp[0] = reflected H * x^-1: shift left by one (divide by x), and when H's
 * constant term (bit 127) falls out, add g / x = x^127 + x^6 + x + 1 (bits 0,
 * 121, 126, 127). Then H^(i+1) x^-1 = (H x^-1)(H^i x^-1) x, which is what the
 * product-and-reduce above computes. */
TGT static void native_init(hd_aes_gcm_t *k, const uint8_t key[16]) {
  key_expand(k->rk, key);
  __m128i h = bswap(aes_block(k->rk, _mm_setzero_si128()));
  uint64_t v[2];
  _mm_storeu_si128((__m128i *)v, h);
  uint64_t top = v[1] >> 63;
  uint64_t hi = v[1] << 1 | v[0] >> 63, lo = v[0] << 1;
  if (top) {
    hi ^= 0xc200000000000000ull;
    lo ^= 1;
  }
  k->hp[0] = _mm_set_epi64x((long long)hi, (long long)lo);
  for (int i = 1; i < 8; i++) {
    acc_t a = {_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128()};
    __m128i hk0 = _mm_xor_si128(k->hp[0], _mm_shuffle_epi32(k->hp[0], 0x4e));
    mul_acc(&a, k->hp[i - 1], k->hp[0], hk0);
    k->hp[i] = acc_reduce(&a);
  }
  for (int i = 0; i < 8; i++)
    k->hk[i] = _mm_xor_si128(k->hp[i], _mm_shuffle_epi32(k->hp[i], 0x4e));
}
#endif /* HD_AES_GCM_HAVE_NATIVE */

int hd_aes_gcm_available(int engine) {
  if (engine == HD_AES_GCM_OPENSSL) return 1;
#ifdef HD_AES_GCM_HAVE_NATIVE
  __builtin_cpu_init();
  int aesni =
      __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("avx");
  if (engine == HD_AES_GCM_NATIVE) return aesni;
  if (engine == HD_AES_GCM_VAES) { /* CPUID leaf 7: EBX bit 5 AVX2, ECX bit 9 VAES, bit 10 VPCLMULQDQ */
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!aesni || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 5 & 1) && (c >> 9 & 1) && (c >> 10 & 1);
  }
#endif
  return 0;
}

/* ---------------------------------------------------------------- openssl */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *g_gcm;

/* One explicit fetch per process: no implicit fetch (and its store lock) per context. */
static void fetch_cipher(void) { g_gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL); }

static int ossl_init(hd_aes_gcm_t *k, const uint8_t key[16]) {
  if (pthread_once(&g_once, fetch_cipher) != 0 || !g_gcm) return HD_ECRYPTO;
  k->enc = EVP_CIPHER_CTX_new();
  k->dec = EVP_CIPHER_CTX_new();
  if (!k->enc || !k->dec) return HD_ENOMEM;
  if (EVP_CipherInit_ex(k->enc, g_gcm, NULL, key, NULL, 1) != 1 ||
      EVP_CipherInit_ex(k->dec, g_gcm, NULL, key, NULL, 0) != 1 ||
      EVP_CIPHER_CTX_get_iv_length(k->enc) != 12) /* GCM's default IV is the 96 bits of RFC 7714 §8.1 */
    return HD_ECRYPTO;
  return 0;
}

static int ossl_seal(EVP_CIPHER_CTX *c, const uint8_t iv[12], const uint8_t *a1, size_t a1n,
                     const uint8_t *a2, size_t a2n, uint8_t *data, size_t n, uint8_t *tag) {
  int outl;
  uint8_t fin[16];
  if (EVP_EncryptInit_ex(c, NULL, NULL, NULL, iv) != 1) return HD_ECRYPTO;
  if (a1n && EVP_EncryptUpdate(c, NULL, &outl, a1, (int)a1n) != 1) return HD_ECRYPTO;
  if (a2n && EVP_EncryptUpdate(c, NULL, &outl, a2, (int)a2n) != 1) return HD_ECRYPTO;
  if (n && EVP_EncryptUpdate(c, data, &outl, data, (int)n) != 1) return HD_ECRYPTO;
  if (EVP_EncryptFinal_ex(c, fin, &outl) != 1) return HD_ECRYPTO;
  if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, HD_AES_GCM_TAG_LEN, tag) != 1) return HD_ECRYPTO;
  return 0;
}

static int ossl_open(EVP_CIPHER_CTX *c, const uint8_t iv[12], const uint8_t *a1, size_t a1n,
                     const uint8_t *a2, size_t a2n, uint8_t *data, size_t n, const uint8_t *tag) {
  int outl;
  uint8_t fin[16];
  if (EVP_DecryptInit_ex(c, NULL, NULL, NULL, iv) != 1) return HD_ECRYPTO;
  if (a1n && EVP_DecryptUpdate(c, NULL, &outl, a1, (int)a1n) != 1) return HD_ECRYPTO;
  if (a2n && EVP_DecryptUpdate(c, NULL, &outl, a2, (int)a2n) != 1) return HD_ECRYPTO;
  if (n && EVP_DecryptUpdate(c, data, &outl, data, (int)n) != 1) return HD_ECRYPTO;
  if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, HD_AES_GCM_TAG_LEN, (void *)tag) != 1) return HD_ECRYPTO;
  return EVP_DecryptFinal_ex(c, fin, &outl) > 0 ? 0 : HD_EAUTH;
}

/* ---------------------------------------------------------------- interface */
static int auto_engine(void) {
  const char *e = getenv("HD_SRTP_ENGINE");
  if (e && strcmp(e, "openssl") == 0) return HD_AES_GCM_OPENSSL;
  if (hd_aes_gcm_available(HD_AES_GCM_VAES)) return HD_AES_GCM_VAES;
  return hd_aes_gcm_available(HD_AES_GCM_NATIVE) ? HD_AES_GCM_NATIVE : HD_AES_GCM_OPENSSL;
}

int hd_aes_gcm_new(hd_aes_gcm_t **out, const uint8_t key[HD_AES_GCM_KEY_LEN], int engine) {
  if (!out || !key) return HD_EINVAL;
  *out = NULL;
  if (engine == HD_AES_GCM_AUTO) engine = auto_engine();
  if (engine != HD_AES_GCM_NATIVE && engine != HD_AES_GCM_VAES && engine != HD_AES_GCM_OPENSSL)
    return HD_EINVAL;
  if (!hd_aes_gcm_available(engine)) return HD_EUNSUPPORTED;
  hd_aes_gcm_t *k = NULL;
  if (posix_memalign((void **)&k, 64, sizeof *k) != 0) return HD_ENOMEM;
  memset(k, 0, sizeof *k);
  k->engine = engine;
  int rc = 0;
#ifdef HD_AES_GCM_HAVE_NATIVE
  if (engine == HD_AES_GCM_NATIVE || engine == HD_AES_GCM_VAES) native_init(k, key);
  if (engine == HD_AES_GCM_VAES) vaes_init(k);
#endif
  if (engine == HD_AES_GCM_OPENSSL) rc = ossl_init(k, key);
  if (rc < 0) {
    hd_aes_gcm_free(k);
    return rc;
  }
  *out = k;
  return 0;
}

void hd_aes_gcm_free(hd_aes_gcm_t *k) {
  if (!k) return;
  EVP_CIPHER_CTX_free(k->enc);
  EVP_CIPHER_CTX_free(k->dec);
  OPENSSL_cleanse(k, sizeof *k); /* round keys, H */
  free(k);
}

int hd_aes_gcm_engine(const hd_aes_gcm_t *k) { return k ? k->engine : HD_EINVAL; }

int hd_aes_gcm_seal(hd_aes_gcm_t *k, const uint8_t iv[HD_AES_GCM_IV_LEN], const uint8_t *a1, size_t a1n,
                    const uint8_t *a2, size_t a2n, uint8_t *data, size_t n, uint8_t tag[HD_AES_GCM_TAG_LEN]) {
  if (!k || !iv || !tag || (a1n && !a1) || (a2n && !a2) || (n && !data)) return HD_EINVAL;
  if (n >= (1u << 31) || a1n + a2n >= (1u << 31)) return HD_EINVAL;
#ifdef HD_AES_GCM_HAVE_NATIVE
  if (k->engine == HD_AES_GCM_VAES) {
    vaes_seal(k, iv, a1, a1n, a2, a2n, data, n, tag);
    return 0;
  }
  if (k->engine == HD_AES_GCM_NATIVE) {
    native_seal(k, iv, a1, a1n, a2, a2n, data, n, tag);
    return 0;
  }
#endif
  return ossl_seal(k->enc, iv, a1, a1n, a2, a2n, data, n, tag);
}

int hd_aes_gcm_open(hd_aes_gcm_t *k, const uint8_t iv[HD_AES_GCM_IV_LEN], const uint8_t *a1, size_t a1n,
                    const uint8_t *a2, size_t a2n, uint8_t *data, size_t n,
                    const uint8_t tag[HD_AES_GCM_TAG_LEN]) {
  if (!k || !iv || !tag || (a1n && !a1) || (a2n && !a2) || (n && !data)) return HD_EINVAL;
  if (n >= (1u << 31) || a1n + a2n >= (1u << 31)) return HD_EINVAL;
#ifdef HD_AES_GCM_HAVE_NATIVE
  if (k->engine == HD_AES_GCM_NATIVE || k->engine == HD_AES_GCM_VAES) {
    uint8_t want[16];
    if (k->engine == HD_AES_GCM_VAES)
      vaes_open(k, iv, a1, a1n, a2, a2n, data, n, want);
    else
      native_open(k, iv, a1, a1n, a2, a2n, data, n, want);
    int bad = CRYPTO_memcmp(want, tag, 16);
    OPENSSL_cleanse(want, sizeof want);
    return bad ? HD_EAUTH : 0;
  }
#endif
  return ossl_open(k->dec, iv, a1, a1n, a2, a2n, data, n, tag);
}
