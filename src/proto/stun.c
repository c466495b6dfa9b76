/* STUN message codec (RFC 8489). Parsing is zero-copy into a fixed-size
 * hd_stun_msg_t; MESSAGE-INTEGRITY is HMAC-SHA1 over the message prefix with
 * the length field rewritten to end just after the MESSAGE-INTEGRITY attribute
 * (§14.5); FINGERPRINT is CRC-32 XOR 0x5354554e (§14.7). RFC 7983 §7 gives
 * the first-byte demux rule used by hd_stun_is_stun. */
#include "proto/stun.h"

#include <netinet/in.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <string.h>

#include "base/err.h"
#include "base/rand.h"

/* ---- helpers ---- */

/* CRC-32 with a 16-entry nibble table: small, const (thread-safe, no lazy
 * init), and fast enough for ~100-byte STUN messages. */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};

static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    crc ^= p[i];
    crc = (crc >> 4) ^ crc_nibble[crc & 15];
    crc = (crc >> 4) ^ crc_nibble[crc & 15];
  }
  return crc;
}

uint32_t hd_stun_crc32(const uint8_t *buf, size_t len) { return ~crc32_update(0xFFFFFFFFu, buf, len); }

/* One HMAC-SHA1 context per thread, kept: OpenSSL 3 fetches the algorithm and
 * allocates a context (~13 heap calls) per EVP_MAC_fetch/EVP_MAC_CTX_new, and
 * every connectivity check computes two HMACs. Freed at thread exit. */
static pthread_once_t g_mac_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_mac_key;
static int g_mac_key_ok;

static void mac_ctx_free(void *p) { EVP_MAC_CTX_free(p); }
static void mac_key_init(void) { g_mac_key_ok = pthread_key_create(&g_mac_key, mac_ctx_free) == 0; }

static EVP_MAC_CTX *mac_ctx_new(void) {
  EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL; /* holds its own reference */
  EVP_MAC_free(mac);
  OSSL_PARAM params[2];
  params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA1", 0);
  params[1] = OSSL_PARAM_construct_end();
  if (ctx && !EVP_MAC_CTX_set_params(ctx, params)) {
    EVP_MAC_CTX_free(ctx);
    ctx = NULL;
  }
  return ctx;
}

/* HMAC-SHA1 over up to two segments (a patched header copy + the rest). */
static int hmac_sha1(const uint8_t *key, size_t keylen, const uint8_t *a, size_t alen, const uint8_t *b,
                     size_t blen, uint8_t out[HD_STUN_MI_LEN]) {
  static const uint8_t empty_key[1] = {0};
  pthread_once(&g_mac_once, mac_key_init);
  EVP_MAC_CTX *ctx = g_mac_key_ok ? pthread_getspecific(g_mac_key) : NULL;
  int cached = ctx != NULL;
  if (!ctx) {
    ctx = mac_ctx_new();
    if (!ctx) return HD_ECRYPTO;
    cached = g_mac_key_ok && pthread_setspecific(g_mac_key, ctx) == 0;
  }
  int rc = HD_ECRYPTO;
  size_t outlen = 0;
  /* OpenSSL rejects a NULL key pointer; an empty key is still a valid HMAC key. */
  if (!EVP_MAC_init(ctx, keylen ? key : empty_key, keylen, NULL)) goto done;
  if (alen && !EVP_MAC_update(ctx, a, alen)) goto done;
  if (blen && !EVP_MAC_update(ctx, b, blen)) goto done;
  if (!EVP_MAC_final(ctx, out, &outlen, HD_STUN_MI_LEN) || outlen != HD_STUN_MI_LEN) goto done;
  rc = 0;
done:
  if (!cached) EVP_MAC_CTX_free(ctx);
  return rc;
}

/* ---- demux + parse ---- */

int hd_stun_is_stun(const uint8_t *buf, size_t len) {
  if (!buf || len < HD_STUN_HEADER_LEN) return 0;
  if (buf[0] > 3) return 0; /* RFC 7983: 0..3 is STUN, 20..63 DTLS, 128..191 RTP */
  if (hd_get_u32(buf + 4) != HD_STUN_MAGIC_COOKIE) return 0;
  if (hd_get_u16(buf + 2) % 4) return 0;
  return 1;
}

/* Decodes (XOR-)MAPPED-ADDRESS values (§14.1, §14.2). */
static int parse_address(const uint8_t *v, size_t vlen, int xored, const uint8_t *hdr,
                         struct sockaddr_storage *ss, socklen_t *sslen) {
  if (vlen < 4) return HD_EPROTO;
  uint8_t family = v[1];
  uint16_t port = hd_get_u16(v + 2);
  if (xored) port ^= (uint16_t)(HD_STUN_MAGIC_COOKIE >> 16);
  memset(ss, 0, sizeof *ss);
  if (family == 0x01) {
    if (vlen != 8) return HD_EPROTO;
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    uint8_t a[4];
    for (int i = 0; i < 4; i++)
      a[i] = (uint8_t)(v[4 + i] ^ (xored ? hdr[4 + i] : 0));
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    memcpy(&sin->sin_addr, a, 4);
    *sslen = sizeof *sin;
    return 0;
  }
  if (family == 0x02) {
    if (vlen != 20) return HD_EPROTO;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    uint8_t a[16];
    /* IPv6 is XORed with the magic cookie followed by the transaction id,
     * i.e. header bytes 4..19. */
    for (int i = 0; i < 16; i++)
      a[i] = (uint8_t)(v[4 + i] ^ (xored ? hdr[4 + i] : 0));
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    memcpy(&sin6->sin6_addr, a, 16);
    *sslen = sizeof *sin6;
    return 0;
  }
  return HD_EPROTO;
}

/* Comprehension-required types this codec understands (§18.3 + ICE). */
static int known_required(uint16_t t) {
  switch (t) {
  case HD_STUN_ATTR_MAPPED_ADDRESS:
  case HD_STUN_ATTR_USERNAME:
  case HD_STUN_ATTR_MESSAGE_INTEGRITY:
  case HD_STUN_ATTR_ERROR_CODE:
  case HD_STUN_ATTR_UNKNOWN_ATTRIBUTES:
  case HD_STUN_ATTR_REALM:
  case HD_STUN_ATTR_NONCE:
  case HD_STUN_ATTR_XOR_MAPPED_ADDRESS:
  case HD_STUN_ATTR_PRIORITY:
  case HD_STUN_ATTR_USE_CANDIDATE: return 1;
  default: return 0;
  }
}

int hd_stun_parse(hd_stun_msg_t *m, const uint8_t *buf, size_t len) {
  if (!m || !buf) return HD_EINVAL;
  memset(m, 0, sizeof *m);
  if (len < HD_STUN_HEADER_LEN) return HD_ETRUNC;
  uint16_t type = hd_get_u16(buf);
  uint16_t body = hd_get_u16(buf + 2);
  if (type & 0xC000) return HD_EPROTO;
  if (hd_get_u32(buf + 4) != HD_STUN_MAGIC_COOKIE) return HD_EPROTO;
  if (body % 4) return HD_EPROTO;
  if ((size_t)body > len - HD_STUN_HEADER_LEN) return HD_ETRUNC;

  m->type = type;
  /* §5: method bits M0-M11 are interleaved with class bits C0 (bit 4), C1 (bit 8). */
  m->method = (uint16_t)((type & 0x000F) | ((type & 0x00E0) >> 1) | ((type & 0x3E00) >> 2));
  m->cls = (uint8_t)(((type >> 4) & 1) | ((type >> 7) & 2));
  m->len = HD_STUN_HEADER_LEN + (size_t)body;
  memcpy(m->txid, buf + 8, HD_STUN_TXID_LEN);

  hd_reader_t r;
  hd_reader_init(&r, buf + HD_STUN_HEADER_LEN, body);
  int after_mi = 0;
  while (hd_rd_left(&r) > 0) {
    size_t off = HD_STUN_HEADER_LEN + r.off;
    uint16_t at = hd_rd_u16(&r);
    uint16_t alen = hd_rd_u16(&r);
    size_t padded = ((size_t)alen + 3) & ~(size_t)3;
    const uint8_t *v = hd_rd_bytes(&r, padded);
    if (r.err || !v) return HD_EPROTO;                          /* attribute runs past the message */
    if (m->present & HD_STUN_HAS_FINGERPRINT) return HD_EPROTO; /* FINGERPRINT must be last */

    if (at == HD_STUN_ATTR_FINGERPRINT) {
      if (alen != 4) return HD_EPROTO;
      m->present |= HD_STUN_HAS_FINGERPRINT;
      m->fingerprint_off = off;
      /* The header length already covers FINGERPRINT since it must be last. */
      uint32_t crc = hd_stun_crc32(buf, off) ^ HD_STUN_FINGERPRINT_XOR;
      m->fingerprint_ok = crc == hd_get_u32(v);
      continue;
    }
    if (after_mi) continue; /* §14.5: ignore everything after MESSAGE-INTEGRITY but FINGERPRINT */

    uint32_t bit = 0;
    switch (at) {
    case HD_STUN_ATTR_USERNAME: bit = HD_STUN_HAS_USERNAME; break;
    case HD_STUN_ATTR_PRIORITY: bit = HD_STUN_HAS_PRIORITY; break;
    case HD_STUN_ATTR_USE_CANDIDATE: bit = HD_STUN_HAS_USE_CANDIDATE; break;
    case HD_STUN_ATTR_ICE_CONTROLLING: bit = HD_STUN_HAS_ICE_CONTROLLING; break;
    case HD_STUN_ATTR_ICE_CONTROLLED: bit = HD_STUN_HAS_ICE_CONTROLLED; break;
    case HD_STUN_ATTR_ERROR_CODE: bit = HD_STUN_HAS_ERROR_CODE; break;
    case HD_STUN_ATTR_XOR_MAPPED_ADDRESS: bit = HD_STUN_HAS_XOR_MAPPED_ADDRESS; break;
    case HD_STUN_ATTR_MAPPED_ADDRESS: bit = HD_STUN_HAS_MAPPED_ADDRESS; break;
    case HD_STUN_ATTR_SOFTWARE: bit = HD_STUN_HAS_SOFTWARE; break;
    case HD_STUN_ATTR_MESSAGE_INTEGRITY: bit = HD_STUN_HAS_MESSAGE_INTEGRITY; break;
    case HD_STUN_ATTR_REALM: bit = HD_STUN_HAS_REALM; break;
    case HD_STUN_ATTR_NONCE: bit = HD_STUN_HAS_NONCE; break;
    default: break;
    }
    if (!bit) {
      if (at < 0x8000 && !known_required(at)) {
        int dup = 0;
        for (size_t i = 0; i < m->n_unknown; i++)
          dup |= m->unknown[i] == at;
        if (!dup && m->n_unknown < HD_STUN_MAX_UNKNOWN) m->unknown[m->n_unknown++] = at;
      }
      continue;
    }
    if (m->present & bit) continue; /* §14: only the first occurrence counts */

    switch (at) {
    case HD_STUN_ATTR_USERNAME:
      m->username = (const char *)v;
      m->username_len = alen;
      break;
    case HD_STUN_ATTR_PRIORITY:
      if (alen != 4) return HD_EPROTO;
      m->priority = hd_get_u32(v);
      break;
    case HD_STUN_ATTR_USE_CANDIDATE:
      if (alen != 0) return HD_EPROTO;
      break;
    case HD_STUN_ATTR_ICE_CONTROLLING:
    case HD_STUN_ATTR_ICE_CONTROLLED: {
      if (alen != 8) return HD_EPROTO;
      uint64_t tb = ((uint64_t)hd_get_u32(v) << 32) | hd_get_u32(v + 4);
      if (at == HD_STUN_ATTR_ICE_CONTROLLING)
        m->ice_controlling = tb;
      else
        m->ice_controlled = tb;
      break;
    }
    case HD_STUN_ATTR_ERROR_CODE: {
      if (alen < 4) return HD_EPROTO;
      int cls = v[2] & 7, num = v[3];
      if (cls < 3 || cls > 6 || num > 99) return HD_EPROTO;
      m->error_code = cls * 100 + num;
      m->error_reason = (const char *)v + 4;
      m->error_reason_len = (size_t)alen - 4;
      break;
    }
    case HD_STUN_ATTR_XOR_MAPPED_ADDRESS:
      if (parse_address(v, alen, 1, buf, &m->xor_mapped, &m->xor_mapped_len)) return HD_EPROTO;
      break;
    case HD_STUN_ATTR_MAPPED_ADDRESS:
      if (parse_address(v, alen, 0, buf, &m->mapped, &m->mapped_len)) return HD_EPROTO;
      break;
    case HD_STUN_ATTR_SOFTWARE:
      m->software = (const char *)v;
      m->software_len = alen;
      break;
    case HD_STUN_ATTR_REALM:
      m->realm = (const char *)v;
      m->realm_len = alen;
      break;
    case HD_STUN_ATTR_NONCE:
      m->nonce = (const char *)v;
      m->nonce_len = alen;
      break;
    case HD_STUN_ATTR_MESSAGE_INTEGRITY:
      if (alen != HD_STUN_MI_LEN) return HD_EPROTO;
      m->integrity_off = off;
      after_mi = 1;
      break;
    default: break;
    }
    m->present |= bit;
  }
  return 0;
}

int hd_stun_check_integrity(const hd_stun_msg_t *m, const uint8_t *buf, size_t len, const uint8_t *key,
                            size_t keylen) {
  if (!m || !buf || (!key && keylen)) return HD_EINVAL;
  if (!(m->present & HD_STUN_HAS_MESSAGE_INTEGRITY)) return HD_EAUTH;
  size_t off = m->integrity_off;
  if (off < HD_STUN_HEADER_LEN || off + 4 + HD_STUN_MI_LEN > len || off + 4 + HD_STUN_MI_LEN > m->len)
    return HD_EINVAL; /* m was not parsed from this buffer */
  uint8_t hdr[HD_STUN_HEADER_LEN];
  memcpy(hdr, buf, sizeof hdr);
  /* §14.5: the length field must count up to and including MESSAGE-INTEGRITY,
   * ignoring a FINGERPRINT that may follow. */
  hd_put_u16(hdr + 2, (uint16_t)(off + 4 + HD_STUN_MI_LEN - HD_STUN_HEADER_LEN));
  uint8_t mac[HD_STUN_MI_LEN];
  int rc = hmac_sha1(key, keylen, hdr, sizeof hdr, buf + HD_STUN_HEADER_LEN, off - HD_STUN_HEADER_LEN, mac);
  if (rc) return rc;
  return CRYPTO_memcmp(mac, buf + off + 4, HD_STUN_MI_LEN) == 0 ? 0 : HD_EAUTH;
}

int hd_stun_check_fingerprint(const hd_stun_msg_t *m) {
  if (!m) return HD_EINVAL;
  return (m->present & HD_STUN_HAS_FINGERPRINT) && m->fingerprint_ok ? 0 : HD_EAUTH;
}

int hd_stun_long_term_key(const char *username, size_t ulen, const char *realm, size_t rlen,
                          const char *password, size_t plen, uint8_t key[16]) {
  if ((!username && ulen) || (!realm && rlen) || (!password && plen) || !key) return HD_EINVAL;
  int rc = HD_ECRYPTO;
  unsigned int outlen = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx) return HD_ENOMEM;
  if (!EVP_DigestInit_ex(ctx, EVP_md5(), NULL)) goto done;
  if (!EVP_DigestUpdate(ctx, username, ulen) || !EVP_DigestUpdate(ctx, ":", 1) ||
      !EVP_DigestUpdate(ctx, realm, rlen) || !EVP_DigestUpdate(ctx, ":", 1) ||
      !EVP_DigestUpdate(ctx, password, plen))
    goto done;
  if (!EVP_DigestFinal_ex(ctx, key, &outlen) || outlen != 16) goto done;
  rc = 0;
done:
  EVP_MD_CTX_free(ctx);
  return rc;
}

int hd_stun_username_split(const hd_stun_msg_t *m, const char **local, size_t *llen, const char **remote,
                           size_t *rlen) {
  if (!m) return HD_EINVAL;
  if (!(m->present & HD_STUN_HAS_USERNAME)) return HD_ENOTFOUND;
  const char *u = m->username;
  const char *colon = u ? memchr(u, ':', m->username_len) : NULL;
  if (!colon) return HD_EPROTO;
  size_t l = (size_t)(colon - u);
  if (local) *local = u;
  if (llen) *llen = l;
  if (remote) *remote = colon + 1;
  if (rlen) *rlen = m->username_len - l - 1;
  return 0;
}

/* ---- builder ---- */

static int bfail(hd_stun_builder_t *b, int err) {
  if (!b->err) b->err = err;
  return b->err;
}

/* Keeps the header length equal to the body written so far. */
static void sync_len(hd_stun_builder_t *b) {
  if (!b->err && b->w.len >= HD_STUN_HEADER_LEN)
    hd_put_u16(b->w.p + 2, (uint16_t)(b->w.len - HD_STUN_HEADER_LEN));
}

int hd_stun_build_start(hd_stun_builder_t *b, uint8_t *buf, size_t cap, uint16_t type, const uint8_t *txid) {
  if (!b) return HD_EINVAL;
  b->err = 0;
  hd_writer_init(&b->w, buf, buf ? cap : 0);
  if (!buf || (type & 0xC000)) return bfail(b, HD_EINVAL);
  uint8_t rnd[HD_STUN_TXID_LEN];
  if (!txid) {
    if (hd_random_bytes(rnd, sizeof rnd)) return bfail(b, HD_EIO);
    txid = rnd;
  }
  hd_wr_u16(&b->w, type);
  hd_wr_u16(&b->w, 0);
  hd_wr_u32(&b->w, HD_STUN_MAGIC_COOKIE);
  hd_wr_bytes(&b->w, txid, HD_STUN_TXID_LEN);
  if (b->w.err) return bfail(b, b->w.err);
  return 0;
}

int hd_stun_add_attr(hd_stun_builder_t *b, uint16_t type, const void *val, size_t len) {
  if (!b) return HD_EINVAL;
  if (b->err) return b->err;
  if (len > 0xFFFF - 4 || (!val && len)) return bfail(b, HD_EINVAL);
  size_t padded = (len + 3) & ~(size_t)3;
  /* The body length field is 16 bits; refuse rather than wrap. */
  if (b->w.len - HD_STUN_HEADER_LEN + 4 + padded > 0xFFFF) return bfail(b, HD_ENOSPC);
  hd_wr_u16(&b->w, type);
  hd_wr_u16(&b->w, (uint16_t)len);
  hd_wr_bytes(&b->w, val, len);
  hd_wr_zeros(&b->w, padded - len);
  if (b->w.err) return bfail(b, b->w.err);
  sync_len(b);
  return 0;
}

int hd_stun_add_username(hd_stun_builder_t *b, const char *user, size_t len) {
  if (b && !b->err && len > HD_STUN_MAX_USERNAME) return bfail(b, HD_EINVAL);
  return hd_stun_add_attr(b, HD_STUN_ATTR_USERNAME, user, len);
}

int hd_stun_add_priority(hd_stun_builder_t *b, uint32_t prio) {
  uint8_t v[4];
  hd_put_u32(v, prio);
  return hd_stun_add_attr(b, HD_STUN_ATTR_PRIORITY, v, sizeof v);
}

int hd_stun_add_use_candidate(hd_stun_builder_t *b) {
  return hd_stun_add_attr(b, HD_STUN_ATTR_USE_CANDIDATE, NULL, 0);
}

static int add_u64(hd_stun_builder_t *b, uint16_t type, uint64_t x) {
  uint8_t v[8];
  hd_put_u32(v, (uint32_t)(x >> 32));
  hd_put_u32(v + 4, (uint32_t)x);
  return hd_stun_add_attr(b, type, v, sizeof v);
}

int hd_stun_add_ice_controlling(hd_stun_builder_t *b, uint64_t tb) {
  return add_u64(b, HD_STUN_ATTR_ICE_CONTROLLING, tb);
}

int hd_stun_add_ice_controlled(hd_stun_builder_t *b, uint64_t tb) {
  return add_u64(b, HD_STUN_ATTR_ICE_CONTROLLED, tb);
}

static int add_address(hd_stun_builder_t *b, uint16_t type, const struct sockaddr *sa, socklen_t salen,
                       int xored) {
  if (!b) return HD_EINVAL;
  if (b->err) return b->err;
  uint8_t v[20];
  size_t vlen;
  const uint8_t *hdr = b->w.p; /* cookie + txid live at bytes 4..19 */
  if (sa && sa->sa_family == AF_INET && salen >= (socklen_t)sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
    v[0] = 0;
    v[1] = 0x01;
    hd_put_u16(v + 2, ntohs(sin->sin_port));
    memcpy(v + 4, &sin->sin_addr, 4);
    vlen = 8;
  } else if (sa && sa->sa_family == AF_INET6 && salen >= (socklen_t)sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
    v[0] = 0;
    v[1] = 0x02;
    hd_put_u16(v + 2, ntohs(sin6->sin6_port));
    memcpy(v + 4, &sin6->sin6_addr, 16);
    vlen = 20;
  } else {
    return bfail(b, HD_EINVAL);
  }
  if (xored) {
    hd_put_u16(v + 2, (uint16_t)(hd_get_u16(v + 2) ^ (HD_STUN_MAGIC_COOKIE >> 16)));
    for (size_t i = 4; i < vlen; i++)
      v[i] ^= hdr[i];
  }
  return hd_stun_add_attr(b, type, v, vlen);
}

int hd_stun_add_xor_mapped_address(hd_stun_builder_t *b, const struct sockaddr *sa, socklen_t salen) {
  return add_address(b, HD_STUN_ATTR_XOR_MAPPED_ADDRESS, sa, salen, 1);
}

int hd_stun_add_mapped_address(hd_stun_builder_t *b, const struct sockaddr *sa, socklen_t salen) {
  return add_address(b, HD_STUN_ATTR_MAPPED_ADDRESS, sa, salen, 0);
}

static const char *default_reason(int code) {
  switch (code) {
  case 300: return "Try Alternate";
  case 400: return "Bad Request";
  case 401: return "Unauthenticated";
  case 403: return "Forbidden";
  case 420: return "Unknown Attribute";
  case 438: return "Stale Nonce";
  case 487: return "Role Conflict";
  case 500: return "Server Error";
  default: return "Error";
  }
}

int hd_stun_add_error_code(hd_stun_builder_t *b, int code, const char *reason) {
  if (!b) return HD_EINVAL;
  if (b->err) return b->err;
  if (code < 300 || code > 699) return bfail(b, HD_EINVAL);
  if (!reason) reason = default_reason(code);
  size_t rl = strlen(reason);
  if (rl > HD_STUN_MAX_REASON) return bfail(b, HD_EINVAL);
  uint8_t v[4 + HD_STUN_MAX_REASON];
  v[0] = 0;
  v[1] = 0;
  v[2] = (uint8_t)(code / 100);
  v[3] = (uint8_t)(code % 100);
  memcpy(v + 4, reason, rl);
  return hd_stun_add_attr(b, HD_STUN_ATTR_ERROR_CODE, v, 4 + rl);
}

int hd_stun_add_unknown_attributes(hd_stun_builder_t *b, const uint16_t *types, size_t n) {
  if (!b) return HD_EINVAL;
  if (b->err) return b->err;
  if ((!types && n) || n > 64) return bfail(b, HD_EINVAL);
  uint8_t v[128];
  for (size_t i = 0; i < n; i++)
    hd_put_u16(v + 2 * i, types[i]);
  return hd_stun_add_attr(b, HD_STUN_ATTR_UNKNOWN_ATTRIBUTES, v, 2 * n);
}

int hd_stun_add_software(hd_stun_builder_t *b, const char *sw) {
  if (!b) return HD_EINVAL;
  if (b->err) return b->err;
  if (!sw) return bfail(b, HD_EINVAL);
  size_t l = strlen(sw);
  if (l > HD_STUN_MAX_SOFTWARE) return bfail(b, HD_EINVAL);
  return hd_stun_add_attr(b, HD_STUN_ATTR_SOFTWARE, sw, l);
}

int hd_stun_add_integrity(hd_stun_builder_t *b, const uint8_t *key, size_t keylen) {
  if (!b) return HD_EINVAL;
  if (b->err) return b->err;
  if (!key && keylen) return bfail(b, HD_EINVAL);
  /* Reserve the attribute first so the header length already counts it, then
   * MAC everything before it (§14.5) and fill the value in. */
  size_t off = b->w.len;
  uint8_t zero[HD_STUN_MI_LEN] = {0};
  int rc = hd_stun_add_attr(b, HD_STUN_ATTR_MESSAGE_INTEGRITY, zero, sizeof zero);
  if (rc) return rc;
  uint8_t mac[HD_STUN_MI_LEN];
  rc = hmac_sha1(key, keylen, b->w.p, off, NULL, 0, mac);
  if (rc) return bfail(b, rc);
  memcpy(b->w.p + off + 4, mac, sizeof mac);
  return 0;
}

int hd_stun_add_fingerprint(hd_stun_builder_t *b) {
  if (!b) return HD_EINVAL;
  if (b->err) return b->err;
  size_t off = b->w.len;
  uint8_t zero[4] = {0};
  int rc = hd_stun_add_attr(b, HD_STUN_ATTR_FINGERPRINT, zero, sizeof zero);
  if (rc) return rc;
  hd_put_u32(b->w.p + off + 4, hd_stun_crc32(b->w.p, off) ^ HD_STUN_FINGERPRINT_XOR);
  return 0;
}

int hd_stun_build_finish(hd_stun_builder_t *b, const uint8_t *key, size_t keylen, int fingerprint) {
  if (!b) return HD_EINVAL;
  if (key) hd_stun_add_integrity(b, key, keylen);
  if (fingerprint) hd_stun_add_fingerprint(b);
  if (b->err) return b->err;
  if (b->w.len < HD_STUN_HEADER_LEN) return HD_EINVAL;
  return (int)b->w.len;
}
