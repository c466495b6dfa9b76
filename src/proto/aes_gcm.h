/* One-shot AES-128-GCM (NIST SP 800-38D) with a 96-bit IV and a 16-byte tag:
 * the AEAD under SRTP/SRTCP (RFC 7714 §5, used by proto/srtp_gcm).
 *
 * Three engines behind one interface:
 * - native: AES-NI + PCLMULQDQ (x86-64 with AVX), key schedule and GHASH key
 *   powers computed once at hd_aes_gcm_new, so a seal is one pass over the
 *   data with no per-call parameter handling (OpenSSL 3's EVP layer builds and
 *   parses OSSL_PARAM lists to set the IV and to read the tag: ~40% of a
 *   1200-byte seal, docs/performance.md);
 * - vaes: the same with the bulk on VAES + VPCLMULQDQ, two blocks per 256-bit
 *   instruction (CPUs with AVX2, VAES, VPCLMULQDQ);
 * - openssl: one pre-keyed EVP_CIPHER_CTX, only the IV set per call; the
 *   reference the native engine is tested against, and the engine on CPUs
 *   without AES-NI/PCLMULQDQ.
 * HD_AES_GCM_AUTO picks vaes, else native, as the CPU allows, unless the
 * environment variable HD_SRTP_ENGINE is "openssl" (docs/operations.md).
 *
 * An object is used by one thread at a time; distinct objects from distinct
 * threads. */
#ifndef HD_PROTO_AES_GCM_H
#define HD_PROTO_AES_GCM_H
#include <stddef.h>
#include <stdint.h>

#define HD_AES_GCM_KEY_LEN 16
#define HD_AES_GCM_IV_LEN 12
#define HD_AES_GCM_TAG_LEN 16

enum { HD_AES_GCM_AUTO = 0, HD_AES_GCM_NATIVE = 1, HD_AES_GCM_OPENSSL = 2, HD_AES_GCM_VAES = 3 };

typedef struct hd_aes_gcm hd_aes_gcm_t;

/* 1 if this CPU (and build) can run engine (HD_AES_GCM_NATIVE, _VAES, _OPENSSL). */
int hd_aes_gcm_available(int engine);

/* Keys an object for `engine` (HD_AES_GCM_*). Returns 0, HD_EINVAL,
 * HD_EUNSUPPORTED (an engine this CPU cannot run: hd_aes_gcm_available),
 * HD_ENOMEM or HD_ECRYPTO. */
int hd_aes_gcm_new(hd_aes_gcm_t **out, const uint8_t key[HD_AES_GCM_KEY_LEN], int engine);
void hd_aes_gcm_free(hd_aes_gcm_t *k);

/* HD_AES_GCM_NATIVE, _VAES or _OPENSSL: the engine k runs on. */
int hd_aes_gcm_engine(const hd_aes_gcm_t *k);

/* Encrypts data[0..n) in place and writes the tag. The additional data is
 * a1[0..a1n) || a2[0..a2n) (two parts so SRTCP's trailer needs no copy; a2 may
 * be NULL with a2n 0). n, a1n + a2n below 2^31. Returns 0 or HD_ECRYPTO. */
int hd_aes_gcm_seal(hd_aes_gcm_t *k, const uint8_t iv[HD_AES_GCM_IV_LEN], const uint8_t *a1, size_t a1n,
                    const uint8_t *a2, size_t a2n, uint8_t *data, size_t n, uint8_t tag[HD_AES_GCM_TAG_LEN]);

/* Decrypts data in place and checks the tag (constant-time compare): 0, or
 * HD_EAUTH on mismatch (data is then unspecified), HD_ECRYPTO. */
int hd_aes_gcm_open(hd_aes_gcm_t *k, const uint8_t iv[HD_AES_GCM_IV_LEN], const uint8_t *a1, size_t a1n,
                    const uint8_t *a2, size_t a2n, uint8_t *data, size_t n,
                    const uint8_t tag[HD_AES_GCM_TAG_LEN]);

#endif
