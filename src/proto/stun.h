/* STUN message codec (RFC 8489): demultiplexing (RFC 7983 §7), a zero-allocation
 * parser whose attribute pointers point into the caller's buffer, short-term
 * MESSAGE-INTEGRITY (HMAC-SHA1, §14.5), FINGERPRINT (CRC-32, §14.7), and a
 * bounded builder. Carries the ICE attributes of RFC 8445 §16 (PRIORITY,
 * USE-CANDIDATE, ICE-CONTROLLING, ICE-CONTROLLED). Sans-IO: no sockets, no clock. */
#ifndef HD_PROTO_STUN_H
#define HD_PROTO_STUN_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/bytes.h"

#define HD_STUN_HEADER_LEN 20
#define HD_STUN_MAGIC_COOKIE 0x2112A442u
#define HD_STUN_TXID_LEN 12
#define HD_STUN_MI_LEN 20 /* HMAC-SHA1 output */
#define HD_STUN_FINGERPRINT_XOR 0x5354554eu
#define HD_STUN_MAX_UNKNOWN 8    /* unknown comprehension-required attrs remembered */
#define HD_STUN_MAX_USERNAME 513 /* RFC 8489 §14.3: < 513 bytes */
#define HD_STUN_MAX_REASON 763   /* §14.8: < 128 characters, 763 bytes */
#define HD_STUN_MAX_SOFTWARE 763 /* §14.14 */

/* Message classes (§5: C1C0 bits). */
enum {
  HD_STUN_CLASS_REQUEST = 0,
  HD_STUN_CLASS_INDICATION = 1,
  HD_STUN_CLASS_SUCCESS = 2,
  HD_STUN_CLASS_ERROR = 3
};

#define HD_STUN_METHOD_BINDING 0x001

/* Full message types for Binding. */
#define HD_STUN_BINDING_REQUEST 0x0001
#define HD_STUN_BINDING_INDICATION 0x0011
#define HD_STUN_BINDING_SUCCESS 0x0101
#define HD_STUN_BINDING_ERROR 0x0111

/* Attribute types (RFC 8489 §18.3, RFC 8445 §16.1). */
#define HD_STUN_ATTR_MAPPED_ADDRESS 0x0001
#define HD_STUN_ATTR_USERNAME 0x0006
#define HD_STUN_ATTR_MESSAGE_INTEGRITY 0x0008
#define HD_STUN_ATTR_ERROR_CODE 0x0009
#define HD_STUN_ATTR_UNKNOWN_ATTRIBUTES 0x000A
#define HD_STUN_ATTR_REALM 0x0014
#define HD_STUN_ATTR_NONCE 0x0015
#define HD_STUN_ATTR_XOR_MAPPED_ADDRESS 0x0020
#define HD_STUN_ATTR_PRIORITY 0x0024
#define HD_STUN_ATTR_USE_CANDIDATE 0x0025
#define HD_STUN_ATTR_SOFTWARE 0x8022
#define HD_STUN_ATTR_ALTERNATE_SERVER 0x8023
#define HD_STUN_ATTR_FINGERPRINT 0x8028
#define HD_STUN_ATTR_ICE_CONTROLLED 0x8029
#define HD_STUN_ATTR_ICE_CONTROLLING 0x802A

/* Error codes used by ICE (RFC 8489 §14.8, RFC 8445 §16.2). */
#define HD_STUN_ERR_BAD_REQUEST 400
#define HD_STUN_ERR_UNAUTHENTICATED 401
#define HD_STUN_ERR_UNKNOWN_ATTRIBUTE 420
#define HD_STUN_ERR_ROLE_CONFLICT 487
#define HD_STUN_ERR_SERVER_ERROR 500

/* Bits of hd_stun_msg_t.present: which attributes the message carried. */
enum {
  HD_STUN_HAS_USERNAME = 1u << 0,
  HD_STUN_HAS_PRIORITY = 1u << 1,
  HD_STUN_HAS_USE_CANDIDATE = 1u << 2,
  HD_STUN_HAS_ICE_CONTROLLING = 1u << 3,
  HD_STUN_HAS_ICE_CONTROLLED = 1u << 4,
  HD_STUN_HAS_ERROR_CODE = 1u << 5,
  HD_STUN_HAS_XOR_MAPPED_ADDRESS = 1u << 6,
  HD_STUN_HAS_MAPPED_ADDRESS = 1u << 7,
  HD_STUN_HAS_SOFTWARE = 1u << 8,
  HD_STUN_HAS_MESSAGE_INTEGRITY = 1u << 9,
  HD_STUN_HAS_FINGERPRINT = 1u << 10,
  HD_STUN_HAS_REALM = 1u << 11,
  HD_STUN_HAS_NONCE = 1u << 12
};

/* A parsed STUN message. Fixed size, no allocation: the string pointers point
 * into the buffer given to hd_stun_parse and are NOT NUL-terminated; they are
 * valid only while that buffer is. Fields are meaningful only if the matching
 * HD_STUN_HAS_* bit is set in `present`. */
typedef struct {
  uint16_t type;   /* full 14-bit message type */
  uint16_t method; /* e.g. HD_STUN_METHOD_BINDING */
  uint8_t cls;     /* HD_STUN_CLASS_* */
  size_t len;      /* total message length (header + body) */
  uint8_t txid[HD_STUN_TXID_LEN];
  uint32_t present; /* HD_STUN_HAS_* */

  const char *username;
  size_t username_len;
  uint32_t priority;
  uint64_t ice_controlling; /* tie-breaker */
  uint64_t ice_controlled;  /* tie-breaker */
  int error_code;           /* 300..699 */
  const char *error_reason;
  size_t error_reason_len;
  struct sockaddr_storage xor_mapped; /* de-XORed, AF_INET or AF_INET6 */
  socklen_t xor_mapped_len;
  struct sockaddr_storage mapped;
  socklen_t mapped_len;
  const char *software;
  size_t software_len;
  const char *realm;
  size_t realm_len;
  const char *nonce;
  size_t nonce_len;

  size_t integrity_off;   /* offset of the MESSAGE-INTEGRITY attribute header */
  size_t fingerprint_off; /* offset of the FINGERPRINT attribute header */
  int fingerprint_ok;     /* 1 if FINGERPRINT present and its CRC matched */

  /* Comprehension-required (type < 0x8000) attributes we do not understand,
   * before MESSAGE-INTEGRITY (later ones are ignored, §14.5). At most
   * HD_STUN_MAX_UNKNOWN are recorded; n_unknown counts the recorded ones. */
  uint16_t unknown[HD_STUN_MAX_UNKNOWN];
  size_t n_unknown;
} hd_stun_msg_t;

/* RFC 7983 demux test: 1 if buf looks like STUN (len >= 20, first byte 0..3,
 * magic cookie, body length a multiple of 4), else 0. Cheap; no full parse. */
int hd_stun_is_stun(const uint8_t *buf, size_t len);

/* Parses one STUN message at buf[0..len). The message must fit in len (its own
 * length field decides its size; trailing bytes are ignored, m->len says how
 * many were used). Attributes after MESSAGE-INTEGRITY other than FINGERPRINT
 * are ignored (§14.5); anything after FINGERPRINT is an error; the FINGERPRINT
 * CRC is verified and reported in m->fingerprint_ok (a mismatch is not a parse
 * error). Returns 0, HD_ETRUNC (too short) or HD_EPROTO (malformed). */
int hd_stun_parse(hd_stun_msg_t *m, const uint8_t *buf, size_t len);

/* Verifies MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489 §14.5) of the message that m
 * was parsed from (buf/len must be the same buffer). key is the short-term
 * password, or the 16-byte long-term key from hd_stun_long_term_key.
 * Returns 0 if valid, HD_EAUTH if wrong or absent, HD_EINVAL, HD_ECRYPTO. */
int hd_stun_check_integrity(const hd_stun_msg_t *m, const uint8_t *buf, size_t len, const uint8_t *key,
                            size_t keylen);

/* Returns 0 if the message carries a FINGERPRINT that matches (§14.7),
 * HD_EAUTH if the CRC is wrong or the attribute absent. */
int hd_stun_check_fingerprint(const hd_stun_msg_t *m);

/* Long-term credential key (§9.2.2, MD5 variant): MD5(username ":" realm ":"
 * password) into key[16]. Inputs are used as given (no SASLprep/OpaqueString).
 * Returns 0 or HD_ECRYPTO/HD_EINVAL. */
int hd_stun_long_term_key(const char *username, size_t ulen, const char *realm, size_t rlen,
                          const char *password, size_t plen, uint8_t key[16]);

/* Splits USERNAME "A:B" at the first ':'. For a check received by the server,
 * A is the server's (local) ufrag and B the peer's. Returns 0, or HD_ENOTFOUND
 * if there is no USERNAME, HD_EPROTO if there is no ':'. Out pointers point into
 * the message buffer and are not NUL-terminated. */
int hd_stun_username_split(const hd_stun_msg_t *m, const char **local, size_t *llen, const char **remote,
                           size_t *rlen);

/* CRC-32 (ISO-HDLC, as in zlib) of buf; exposed for tests. */
uint32_t hd_stun_crc32(const uint8_t *buf, size_t len);

/* ---- Builder ----
 * Writes into a caller buffer with a hard cap. Errors are sticky: after the
 * first failure every call returns that error and hd_stun_build_finish fails,
 * so callers may add several attributes and check once. The header's length
 * field is kept current after every call. */
typedef struct {
  hd_writer_t w;
  int err;
} hd_stun_builder_t;

/* Starts a message of `type` (e.g. HD_STUN_BINDING_SUCCESS) into buf[0..cap).
 * txid: 12 bytes, or NULL to draw a random one (read it back from buf+8). */
int hd_stun_build_start(hd_stun_builder_t *b, uint8_t *buf, size_t cap, uint16_t type, const uint8_t *txid);
/* Arbitrary attribute; value is padded to 4 bytes with zeros. len <= 65531. */
int hd_stun_add_attr(hd_stun_builder_t *b, uint16_t type, const void *val, size_t len);
int hd_stun_add_username(hd_stun_builder_t *b, const char *user, size_t len);
int hd_stun_add_priority(hd_stun_builder_t *b, uint32_t prio);
int hd_stun_add_use_candidate(hd_stun_builder_t *b);
int hd_stun_add_ice_controlling(hd_stun_builder_t *b, uint64_t tie_breaker);
int hd_stun_add_ice_controlled(hd_stun_builder_t *b, uint64_t tie_breaker);
/* XOR-MAPPED-ADDRESS (§14.2) of an AF_INET/AF_INET6 address; HD_EINVAL otherwise. */
int hd_stun_add_xor_mapped_address(hd_stun_builder_t *b, const struct sockaddr *sa, socklen_t salen);
/* MAPPED-ADDRESS (§14.1), for completeness / legacy clients. */
int hd_stun_add_mapped_address(hd_stun_builder_t *b, const struct sockaddr *sa, socklen_t salen);
/* ERROR-CODE (§14.8): code 300..699; reason may be NULL (a standard one is used). */
int hd_stun_add_error_code(hd_stun_builder_t *b, int code, const char *reason);
/* UNKNOWN-ATTRIBUTES (§14.9), for 420 responses. */
int hd_stun_add_unknown_attributes(hd_stun_builder_t *b, const uint16_t *types, size_t n);
int hd_stun_add_software(hd_stun_builder_t *b, const char *sw);
/* Appends MESSAGE-INTEGRITY (HMAC-SHA1 with key) now; use before FINGERPRINT. */
int hd_stun_add_integrity(hd_stun_builder_t *b, const uint8_t *key, size_t keylen);
/* Appends FINGERPRINT; must be the last attribute. */
int hd_stun_add_fingerprint(hd_stun_builder_t *b);
/* Finishes: if key != NULL appends MESSAGE-INTEGRITY, then if fingerprint != 0
 * appends FINGERPRINT. Returns the total message length (> 0) or the sticky
 * error (HD_ENOSPC when cap was too small, HD_EINVAL, HD_ECRYPTO). */
int hd_stun_build_finish(hd_stun_builder_t *b, const uint8_t *key, size_t keylen, int fingerprint);

#endif
