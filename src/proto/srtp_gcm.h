/* Native AEAD_AES_128_GCM SRTP/SRTCP (RFC 7714) on proto/aes_gcm (AES-NI or
 * VAES; OpenSSL EVP with HD_SRTP_ENGINE=openssl or on CPUs without them): the
 * engine behind proto/srtp.h for profile HD_SRTP_AEAD_AES_128_GCM (libsrtp2
 * stays for AES-CM and as the reference in tests; HD_SRTP_ENGINE=libsrtp
 * selects it for GCM too, see docs/operations.md).
 *
 * Same contract as the hd_srtp_* functions (in-place transform, same return
 * codes), with per-SSRC stream state kept here: an outbound and an inbound table
 * of at most HD_SRTP_GCM_MAX_STREAMS streams each. Not thread-safe per object;
 * separate objects may be used from separate threads. */
#ifndef HD_PROTO_SRTP_GCM_H
#define HD_PROTO_SRTP_GCM_H
#include <stddef.h>
#include <stdint.h>

/* Master key || master salt (RFC 7714 §12: 128-bit key, 96-bit salt). */
#define HD_SRTP_GCM_MASTER_LEN 28
#define HD_SRTP_GCM_TAG_LEN 16
/* SSRCs with full state per direction. Beyond it the least recently used
 * stream is replaced: its replay window is dropped but its highest RTP/SRTCP
 * indices are kept (16 bytes, up to HD_SRTP_GCM_MAX_RETIRED SSRCs), so the SSRC
 * continues where it was if it comes back — no IV is ever used twice. The price,
 * inbound: packets of a replaced SSRC less than a window behind its newest can be
 * replayed once. When the retired list is full too, outbound refuses new SSRCs
 * (HD_ENOSPC: re-key with a new DTLS handshake) and inbound forgets the retired
 * SSRC it replaced longest ago (roughly; the list is not kept in order). */
#define HD_SRTP_GCM_MAX_STREAMS 256
#define HD_SRTP_GCM_MAX_RETIRED 4096

typedef struct hd_srtp_gcm hd_srtp_gcm_t;

/* From the per-direction master key||salt (28 bytes each; local for protect,
 * remote for unprotect), keys derived per RFC 3711 §4.3 with KDR 0.
 * Returns 0, HD_EINVAL, HD_ENOMEM or HD_ECRYPTO. */
int hd_srtp_gcm_new(hd_srtp_gcm_t **out, const uint8_t *local_master, const uint8_t *remote_master);

/* Session keys given directly (16-byte key, 12-byte salt; RTP then RTCP per
 * direction), skipping the KDF: for the RFC 7714 §16/§17 known answers. */
typedef struct {
  uint8_t rtp_key[16], rtp_salt[12], rtcp_key[16], rtcp_salt[12];
} hd_srtp_gcm_session_keys_t;
int hd_srtp_gcm_new_session(hd_srtp_gcm_t **out, const hd_srtp_gcm_session_keys_t *local,
                            const hd_srtp_gcm_session_keys_t *remote);

void hd_srtp_gcm_free(hd_srtp_gcm_t *g);

/* Streams held in one direction (inbound != 0: unprotect side), for tests. */
int hd_srtp_gcm_stream_count(const hd_srtp_gcm_t *g, int inbound);

/* As hd_srtp_protect / unprotect / protect_rtcp / unprotect_rtcp (proto/srtp.h). */
int hd_srtp_gcm_protect(hd_srtp_gcm_t *g, uint8_t *pkt, size_t len, size_t cap);
int hd_srtp_gcm_unprotect(hd_srtp_gcm_t *g, uint8_t *pkt, size_t len);
int hd_srtp_gcm_protect_rtcp(hd_srtp_gcm_t *g, uint8_t *pkt, size_t len, size_t cap);
int hd_srtp_gcm_unprotect_rtcp(hd_srtp_gcm_t *g, uint8_t *pkt, size_t len);

/* RFC 3550 §5.1 header length (fixed part, CSRCs, extension) of an RTP packet of
 * len bytes, or HD_EPROTO. Shared with proto/srtp.c. */
int hd_srtp_rtp_header_len(const uint8_t *p, size_t len);

#endif
