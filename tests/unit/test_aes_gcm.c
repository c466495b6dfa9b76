/* Unit tests for proto/aes_gcm: the native engines (AES-NI/PCLMULQDQ, and
 * VAES/VPCLMULQDQ where the CPU has them) against
 * known answers (the GCM specification's AES-128 test cases, RFC 7714 §16.1's
 * packet) and against the OpenSSL engine on random keys, IVs, lengths and AAD
 * splits (every partial-block and 4-block boundary), both directions, and
 * tampering. */
#include "hd_test.h"

#include "base/err.h"
#include "proto/aes_gcm.h"

static void unhex(const char *h, uint8_t *out, size_t n) {
  assert_int_equal(strlen(h), 2 * n);
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
    out[i] = (uint8_t)v;
  }
}

static int engines[3];
static int n_engines, n_native; /* engines[0..n_native) are native, then OpenSSL */

static int setup(void **st) {
  (void)st;
  n_engines = 0;
  if (hd_aes_gcm_available(HD_AES_GCM_NATIVE))
    engines[n_engines++] = HD_AES_GCM_NATIVE;
  else
    fprintf(stderr, "note: no AES-NI/PCLMULQDQ/AVX here: the native engine is not tested\n");
  if (hd_aes_gcm_available(HD_AES_GCM_VAES))
    engines[n_engines++] = HD_AES_GCM_VAES;
  else
    fprintf(stderr, "note: no VAES/VPCLMULQDQ here: the vaes engine is not tested\n");
  n_native = n_engines;
  engines[n_engines++] = HD_AES_GCM_OPENSSL;
  return 0;
}

typedef struct {
  const char *key, *iv, *aad, *pt, *ct, *tag;
} kat_t;

/* McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 1-4
 * (AES-128, 96-bit IV); RFC 7714 §16.1 (IV = (SSRC || ROC || SEQ) ^ salt, the
 * 12-byte RTP header as AAD). */
static const kat_t kKats[] = {
    {"00000000000000000000000000000000", "000000000000000000000000", "", "", "",
     "58e2fccefa7e3061367f1d57a4e7455a"},
    {"00000000000000000000000000000000", "000000000000000000000000", "", "00000000000000000000000000000000",
     "0388dace60b6a392f328c2b971b2fe78", "ab6e47d42cec13bdf53a67b21257bddf"},
    {"feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888", "",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf"
     "5aa0de65"
     "7ba637b391aafd255",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b3"
     "96a0aac9"
     "73d58e091473f5985",
     "4d5c2af327cd64a62cf35abd2ba6fab4"},
    {"feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf"
     "5aa0de65"
     "7ba637b39",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b3"
     "96a0aac9"
     "73d58e091",
     "5bc94fbc3221a5db94fae95ae7121a47"},
    {"000102030405060708090a0b0c0d0e0f", "51753c6580c2726f20718414", "8040f17b8041f8d35501a0b2",
     "47616c6c696120657374206f6d6e69732064697669736120696e207061727465732074726573",
     "f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42a5f47a51c7d19b36de3adf8833",
     "899d7f27beb16a9152cf765ee4390cce"},
};

static void test_known_answers(void **st) {
  (void)st;
  for (size_t i = 0; i < sizeof kKats / sizeof kKats[0]; i++) {
    const kat_t *t = &kKats[i];
    uint8_t key[16], iv[12], aad[64], pt[128], ct[128], tag[16], buf[128], got[16];
    size_t an = strlen(t->aad) / 2, n = strlen(t->pt) / 2;
    unhex(t->key, key, 16);
    unhex(t->iv, iv, 12);
    unhex(t->aad, aad, an);
    unhex(t->pt, pt, n);
    unhex(t->ct, ct, n);
    unhex(t->tag, tag, 16);
    for (int e = 0; e < n_engines; e++) {
      hd_aes_gcm_t *k;
      assert_int_equal(hd_aes_gcm_new(&k, key, engines[e]), 0);
      assert_int_equal(hd_aes_gcm_engine(k), engines[e]);
      memcpy(buf, pt, n);
      assert_int_equal(hd_aes_gcm_seal(k, iv, aad, an, NULL, 0, buf, n, got), 0);
      assert_memory_equal(buf, ct, n);
      assert_memory_equal(got, tag, 16);
      assert_int_equal(hd_aes_gcm_open(k, iv, aad, an, NULL, 0, buf, n, tag), 0);
      assert_memory_equal(buf, pt, n);
      hd_aes_gcm_free(k);
    }
  }
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint8_t rnd8(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint8_t)(rng >> 24);
}
static void fill(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    p[i] = rnd8();
}

/* A native engine and OpenSSL agree byte for byte, each opens the other's
 * output, and one flipped bit anywhere (data, either AAD part, tag) fails both. */
static void cross(int engine) {
  enum { MAXN = 1600 };
  static const size_t sizes[] = {0,   1,   15,   16,   17,   31,   32,   33,   47,  48,
                                 63,  64,  65,   79,   80,   127,  128,  129,  200, 255,
                                 256, 257, 1000, 1100, 1188, 1200, 1201, 1500, MAXN};
  for (int round = 0; round < 40; round++) {
    uint8_t key[16], iv[12], a1[80], a2[40];
    fill(key, 16);
    hd_aes_gcm_t *nat, *ref;
    assert_int_equal(hd_aes_gcm_new(&nat, key, engine), 0);
    assert_int_equal(hd_aes_gcm_new(&ref, key, HD_AES_GCM_OPENSSL), 0);
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
      size_t n = sizes[si], a1n = (size_t)(rnd8() % 81), a2n = (size_t)(rnd8() % 41);
      if (round % 4 == 0) a2n = 0;
      static uint8_t pt[MAXN], x[MAXN], y[MAXN];
      uint8_t tx[16], ty[16];
      fill(iv, 12);
      fill(a1, a1n);
      fill(a2, a2n);
      fill(pt, n);
      memcpy(x, pt, n);
      memcpy(y, pt, n);
      assert_int_equal(hd_aes_gcm_seal(nat, iv, a1, a1n, a2, a2n, x, n, tx), 0);
      assert_int_equal(hd_aes_gcm_seal(ref, iv, a1, a1n, a2, a2n, y, n, ty), 0);
      assert_memory_equal(x, y, n);
      assert_memory_equal(tx, ty, 16);
      /* a1 || a2 is one AAD: the same bytes split elsewhere give the same tag */
      if (a1n && a2n) {
        uint8_t cat[120], tz[16];
        memcpy(cat, a1, a1n);
        memcpy(cat + a1n, a2, a2n);
        memcpy(y, pt, n);
        assert_int_equal(hd_aes_gcm_seal(nat, iv, cat, a1n + a2n, NULL, 0, y, n, tz), 0);
        assert_memory_equal(tz, tx, 16);
        memcpy(y, x, n);
      }
      hd_aes_gcm_t *openers[2] = {nat, ref};
      for (int o = 0; o < 2; o++) {
        memcpy(y, x, n);
        assert_int_equal(hd_aes_gcm_open(openers[o], iv, a1, a1n, a2, a2n, y, n, tx), 0);
        assert_memory_equal(y, pt, n);
        /* tamper: one bit of the ciphertext, the AAD or the tag */
        uint8_t t2[16];
        memcpy(t2, tx, 16);
        int what = rnd8() % 3;
        size_t ai = a1n ? rnd8() % a1n : 0;
        memcpy(y, x, n);
        if (what == 0 && n)
          y[rnd8() % n] ^= (uint8_t)(1u << (rnd8() % 8));
        else if (what == 1 && a1n)
          a1[ai] ^= 0x80;
        else
          t2[rnd8() % 16] ^= 0x01;
        assert_int_equal(hd_aes_gcm_open(openers[o], iv, a1, a1n, a2, a2n, y, n, t2), HD_EAUTH);
        if (what == 1 && a1n) a1[ai] ^= 0x80;
      }
    }
    hd_aes_gcm_free(nat);
    hd_aes_gcm_free(ref);
  }
}

static void test_cross(void **st) {
  (void)st;
  if (n_native == 0) skip();
  for (int e = 0; e < n_native; e++)
    cross(engines[e]);
}

static void test_engine_selection_and_errors(void **st) {
  (void)st;
  uint8_t key[16] = {0}, iv[12] = {0}, tag[16], d[4] = {0};
  hd_aes_gcm_t *k;
  setenv("HD_SRTP_ENGINE", "openssl", 1);
  assert_int_equal(hd_aes_gcm_new(&k, key, HD_AES_GCM_AUTO), 0);
  assert_int_equal(hd_aes_gcm_engine(k), HD_AES_GCM_OPENSSL);
  hd_aes_gcm_free(k);
  unsetenv("HD_SRTP_ENGINE");
  assert_int_equal(hd_aes_gcm_new(&k, key, HD_AES_GCM_AUTO), 0);
  assert_int_equal(hd_aes_gcm_engine(k), hd_aes_gcm_available(HD_AES_GCM_VAES)     ? HD_AES_GCM_VAES
                                         : hd_aes_gcm_available(HD_AES_GCM_NATIVE) ? HD_AES_GCM_NATIVE
                                                                                   : HD_AES_GCM_OPENSSL);
  assert_int_equal(hd_aes_gcm_seal(k, iv, NULL, 4, NULL, 0, d, 4, tag), HD_EINVAL);
  assert_int_equal(hd_aes_gcm_seal(k, iv, NULL, 0, NULL, 0, NULL, 4, tag), HD_EINVAL);
  assert_int_equal(hd_aes_gcm_open(NULL, iv, NULL, 0, NULL, 0, d, 4, tag), HD_EINVAL);
  hd_aes_gcm_free(k);
  assert_int_equal(hd_aes_gcm_new(&k, key, 99), HD_EINVAL);
  assert_null(k);
  assert_int_equal(hd_aes_gcm_new(NULL, key, HD_AES_GCM_AUTO), HD_EINVAL);
  hd_aes_gcm_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_known_answers),
      cmocka_unit_test(test_cross),
      cmocka_unit_test(test_engine_selection_and_errors),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
