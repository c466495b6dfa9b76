/* DTLS 1.2 (RFC 6347) for WebRTC DTLS-SRTP (RFC 5764, RFC 8827/8842), sans-IO.
 *
 * OpenSSL 3 does the record layer and handshake over an in-memory datagram BIO:
 * the caller feeds received datagrams in with hd_dtls_feed() and takes datagrams
 * to send out with hd_dtls_poll() (one datagram per call, records of a flight
 * packed up to HD_DTLS_MTU). Retransmission runs on the caller's clock: the
 * module keeps its own RTO schedule (hd_dtls_next_timeout /
 * hd_dtls_handle_timeout) instead of OpenSSL's wall-clock timer (exact with
 * OpenSSL 3.0/3.1; other versions fall back to OpenSSL's timer, see dtls.c).
 * Only certificate generation reads the wall clock (validity dates; see
 * hd_dtls_cert_generate_at).
 *
 * Peers authenticate with self-signed certificates whose SHA-256 fingerprint
 * travels in SDP (a=fingerprint, RFC 8122 §5); a mismatch fails the session.
 * On success the SRTP master keys are exported per RFC 5764 §4.2. */
#ifndef HD_PROTO_DTLS_H
#define HD_PROTO_DTLS_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

/* ---- Certificate (one per node, shared by all sessions) ---- */

typedef struct hd_dtls_cert hd_dtls_cert_t;

/* Generates a self-signed ECDSA P-256 certificate and key: random serial, CN "hudong",
 * valid from 30 days ago to 1 year ahead. Returns 0 or HD_ENOMEM/HD_ECRYPTO. */
int hd_dtls_cert_generate(hd_dtls_cert_t **out);
/* The same with the validity dates around unix_now (seconds) instead of the wall
 * clock: the virtual-clock test worlds use a fixed time so the certificate, and
 * the length of its DER-encoded ECDSA signature (70-72 bytes, it signs the
 * dates), are the same every run (docs/testing.md, "Determinism"). Peers check
 * only the fingerprint (RFC 8122 §5), never the dates. */
int hd_dtls_cert_generate_at(hd_dtls_cert_t **out, int64_t unix_now);
/* Frees a certificate. Sessions made with it must be freed first. NULL is a no-op. */
void hd_dtls_cert_free(hd_dtls_cert_t *c);
/* SHA-256 fingerprint of the certificate as upper-case "AB:CD:..." (95 chars), for
 * SDP "a=fingerprint:sha-256 <value>". Owned by the certificate. */
const char *hd_dtls_cert_fingerprint(const hd_dtls_cert_t *c);

/* ---- Session ---- */

enum {
  HD_DTLS_HANDSHAKING = 0,
  HD_DTLS_CONNECTED = 1,
  HD_DTLS_FAILED = 2,
  HD_DTLS_CLOSED = 3,
};

/* Largest datagram hd_dtls_poll() produces (MTU set on the SSL object), and the
 * buffer size that is always enough for one poll. */
#define HD_DTLS_MTU 1200
#define HD_DTLS_MAX_DATAGRAM 1500

/* Retransmission schedule (RFC 6347 §4.2.4.1): first RTO, doubling up to the cap;
 * after HD_DTLS_MAX_RETRIES retransmissions of a flight without progress the
 * session fails (~20 s; the PeerConnection's connect timeout usually ends it
 * first). The cap is 1 s, not RFC 6347's 60 s: a handshake flight is a few
 * small datagrams, and on a weak network (30-50 % random loss, issue 13) a
 * backoff to 8 s left half of the handshakes unfinished after 10 s (RFC 6347
 * §4.2.4.1 lets implementations tune the timer values). */
#define HD_DTLS_RTO_INITIAL HD_MS(500)
#define HD_DTLS_RTO_MAX HD_SEC(1)
#define HD_DTLS_MAX_RETRIES 12

typedef struct hd_dtls hd_dtls_t;

/* Creates a DTLS session using `cert` (borrowed, must outlive the session).
 * is_server: 1 = DTLS server (a=setup:passive), 0 = client (a=setup:active); the
 * client builds its ClientHello here, ready for hd_dtls_poll().
 * remote_fp_sha256: the peer's SHA-256 fingerprint from SDP ("AB:CD:...", case-insensitive);
 * NULL disables the check (tests only). Returns 0 or HD_EINVAL/HD_ENOMEM/HD_ECRYPTO. */
int hd_dtls_new(hd_dtls_t **out, hd_dtls_cert_t *cert, int is_server, const char *remote_fp_sha256,
                hd_time_t now);

/* Restricts the offered/accepted DTLS-SRTP profiles (OpenSSL syntax, ':'-separated,
 * e.g. "SRTP_AES128_CM_SHA1_80"). Default: "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80".
 * Only valid before the handshake has started (server: before the first feed; client:
 * meant for tests, where the ClientHello is rebuilt). Returns 0, HD_EINVAL or HD_ESTATE. */
int hd_dtls_set_srtp_profiles(hd_dtls_t *d, const char *profiles);

/* Processes one received DTLS datagram (RFC 7983 demux is the caller's job); the
 * buffer is only lent for the call. Returns 0 when consumed — also for input that
 * is harmless after CONNECTED, e.g. a peer's retransmitted Finished (answered by
 * re-sending our last flight) or application data (queued for hd_dtls_recv).
 * Returns HD_EPROTO for a datagram that is not a sequence of DTLS records (dropped,
 * state unchanged) or that breaks the handshake/record layer (state FAILED),
 * HD_EAUTH on fingerprint mismatch (state FAILED, alert queued for the peer),
 * HD_ESTATE when already FAILED/CLOSED. A peer's close_notify makes the state CLOSED. */
int hd_dtls_feed(hd_dtls_t *d, const uint8_t *rec, size_t len, hd_time_t now);

/* After CONNECTED only authenticated records change state: records that cannot be
 * (a plaintext epoch-0 alert or application record, another epoch, an epoch-1
 * record shorter than the AEAD nonce + tag) are dropped before OpenSSL sees them,
 * and epoch-1 records whose tag fails are discarded by OpenSSL (RFC 6347
 * §4.1.2.7). hd_dtls_feed returns HD_EPROTO when nothing in the datagram was kept.
 * This counts all such dropped records since the session began. */
uint64_t hd_dtls_dropped(const hd_dtls_t *d);

/* Copies the next datagram to send into out. Returns its length, 0 when none is
 * queued, or HD_ENOSPC if cap is too small (the datagram stays queued). */
int hd_dtls_poll(hd_dtls_t *d, uint8_t *out, size_t cap);

/* When hd_dtls_handle_timeout() should next be called; HD_TIME_NEVER when no timer. */
hd_time_t hd_dtls_next_timeout(const hd_dtls_t *d);

/* Retransmits the last flight when its timer is due (the datagrams then come out of
 * hd_dtls_poll()). Returns 0, or HD_ETIMEDOUT when the retry budget is spent (state
 * FAILED). Calling it early is harmless. */
int hd_dtls_handle_timeout(hd_dtls_t *d, hd_time_t now);

/* HD_DTLS_HANDSHAKING, HD_DTLS_CONNECTED, HD_DTLS_FAILED or HD_DTLS_CLOSED. */
int hd_dtls_state(const hd_dtls_t *d);

/* Why the session failed or closed ("fingerprint mismatch", "handshake timeout",
 * an OpenSSL reason string, "peer alert: ..."); "" when none. Never NULL. */
const char *hd_dtls_error(const hd_dtls_t *d);

/* SRTP keying material of a connected session, RFC 5764 §4.2: the exporter output
 * "EXTRACTOR-dtls_srtp" split as client_key|server_key|client_salt|server_salt and
 * re-joined as key||salt per direction. local_key protects what we send, remote_key
 * unprotects what we receive. profile is an IANA id (HD_SRTP_* in proto/srtp.h:
 * 1 = AES128_CM_SHA1_80, 7 = AEAD_AES_128_GCM). key_len is the per-direction
 * key||salt length (30 for CM, 28 for GCM). */
typedef struct {
  int profile;
  uint8_t local_key[32];
  uint8_t remote_key[32];
  size_t key_len; /* key || salt */
} hd_dtls_srtp_keys_t;

/* Fills out after CONNECTED. Returns 0, HD_ESTATE before CONNECTED, HD_EUNSUPPORTED if
 * the peer negotiated no supported SRTP profile, HD_ECRYPTO on exporter failure. */
int hd_dtls_srtp_keys(const hd_dtls_t *d, hd_dtls_srtp_keys_t *out);

/* Largest application payload hd_dtls_send() takes (one record in one datagram). */
#define HD_DTLS_MAX_APP_DATA 1400

/* Sends application data (e.g. SCTP for data channels, RFC 8261) as one record in
 * one datagram, taken with hd_dtls_poll(). Returns len, HD_EINVAL (empty/too long),
 * HD_ESTATE unless CONNECTED, HD_ECRYPTO. */
int hd_dtls_send(hd_dtls_t *d, const uint8_t *data, size_t len);

/* Takes the next received application record (queued by hd_dtls_feed, at most 64
 * kept; more are dropped). Returns its length, 0 when none, HD_ENOSPC if cap is too
 * small (the record stays queued). */
int hd_dtls_recv(hd_dtls_t *d, uint8_t *out, size_t cap);

/* Queues a close_notify alert (take it with hd_dtls_poll()); state becomes CLOSED.
 * Returns 0 or HD_ESTATE if already closed/failed. */
int hd_dtls_close(hd_dtls_t *d);

/* Frees the session. NULL is a no-op. */
void hd_dtls_free(hd_dtls_t *d);

#endif
