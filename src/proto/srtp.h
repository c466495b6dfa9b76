/* SRTP/SRTCP (RFC 3711) and AES-GCM SRTP (RFC 7714), as a pure packet
 * transform keyed by DTLS-SRTP (RFC 5764 §4.2, see proto/dtls.h).
 *
 * One hd_srtp_t holds an outbound session (protect, our local key, any SSRC)
 * and an inbound session (unprotect, the remote key, any SSRC) — one per
 * transport. Replay protection is on, with a 1024-packet window for video.
 * AES-CM runs on libsrtp2; AES-GCM on our own engine (proto/srtp_gcm.h over
 * proto/aes_gcm.h: SSRCs per direction are capped, see HD_SRTP_GCM_MAX_STREAMS
 * there), or on libsrtp2 when the environment variable HD_SRTP_ENGINE=libsrtp
 * is set at hd_srtp_new (=openssl: our engine sealing through OpenSSL EVP).
 *
 * One hd_srtp_t must be used by one thread at a time; distinct objects may be
 * used from distinct threads. */
#ifndef HD_PROTO_SRTP_H
#define HD_PROTO_SRTP_H
#include <stddef.h>
#include <stdint.h>

/* IANA DTLS-SRTP protection profile ids (RFC 5764 §4.1.2, RFC 7714 §14.2). */
enum { HD_SRTP_AES128_CM_SHA1_80 = 1, HD_SRTP_AEAD_AES_128_GCM = 7 };

/* Replay window in packets. */
#define HD_SRTP_REPLAY_WINDOW 1024
/* Bytes protect may add: SRTP 10 (CM auth tag) / 16 (GCM tag); SRTCP adds 4 (index) too. */
#define HD_SRTP_MAX_TRAILER 32

/* Initialises libsrtp once per process (thread-safe). Returns 0 or HD_ECRYPTO.
 * hd_srtp_new calls it itself. */
int hd_srtp_global_init(void);

/* Master key||salt length of a profile (30 for CM, 28 for GCM), or HD_EUNSUPPORTED. */
int hd_srtp_key_len(int profile);

typedef struct hd_srtp hd_srtp_t;

/* Creates a session pair for `profile` from the per-direction master key||salt
 * (as from hd_dtls_srtp_keys: local_key for protect, remote_key for unprotect).
 * key_len must equal hd_srtp_key_len(profile). Returns 0, HD_EINVAL,
 * HD_EUNSUPPORTED, HD_ENOMEM or HD_ECRYPTO. */
int hd_srtp_new(hd_srtp_t **out, int profile, const uint8_t *local_key, const uint8_t *remote_key,
                size_t key_len);

/* Encrypts an RTP packet in place. len is the RTP length, cap the buffer size
 * (needs room for the auth tag). Returns the SRTP length, HD_ENOSPC if cap is too
 * small (nothing written past cap) or, native GCM engine only, a new SSRC finds
 * the stream tables full (HD_SRTP_GCM_MAX_RETIRED; re-key), HD_EPROTO for a
 * packet that is not RTP (shorter than a header, bad version/extension), HD_EREPLAY for a sequence number
 * older than the replay window of what this SSRC sent (a repeat within it is allowed: NACK retransmission),
 * HD_ENOMEM, HD_ECRYPTO otherwise. */
int hd_srtp_protect(hd_srtp_t *s, uint8_t *pkt, size_t len, size_t cap);

/* Decrypts/authenticates an SRTP packet in place. Returns the RTP length,
 * HD_EAUTH (tag mismatch), HD_EREPLAY (replayed or too old), HD_EPROTO (malformed),
 * HD_ENOMEM, HD_ECRYPTO otherwise. On failure the packet's bytes are unspecified. */
int hd_srtp_unprotect(hd_srtp_t *s, uint8_t *pkt, size_t len);

/* As above for RTCP/SRTCP (compound packets). SRTCP is always encrypted (E=1);
 * unprotect refuses E=0 with HD_EPROTO. */
int hd_srtp_protect_rtcp(hd_srtp_t *s, uint8_t *pkt, size_t len, size_t cap);
int hd_srtp_unprotect_rtcp(hd_srtp_t *s, uint8_t *pkt, size_t len);

/* "native" or "libsrtp": the engine s runs on (for logs and benchmarks). */
const char *hd_srtp_engine(const hd_srtp_t *s);

/* Frees the sessions. NULL is a no-op. */
void hd_srtp_free(hd_srtp_t *s);

#endif
