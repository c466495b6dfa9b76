/* Access tokens: JWT (RFC 7519) as JWS compact serialization (RFC 7515 §7.1)
 * with HS256 (RFC 7518 §3.2), carrying Hudong grants. See token.h and
 * docs/tokens.md for the claim format.
 *
 * Verification order matters for safety: the header's "alg" is checked against
 * the one algorithm we accept before anything else (no "none", no algorithm
 * confusion, RFC 8725 §3.1); only "iss" is read from the payload before the
 * signature is checked, because it selects the tenant's secret; every other
 * claim is trusted only after the MAC matches. */
#include "proto/token.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/base64.h"
#include "base/err.h"
#include "base/rand.h"

#define SIG_B64_LEN 43 /* base64url of a 32-byte HMAC-SHA256, no padding */
#define DECODED_MAX (HD_TOKEN_MAX / 4 * 3 + 3)
/* NumericDate range we accept: 1970 .. 9999-12-31T23:59:59Z. Keeps every
 * later addition of a leeway far from int64 overflow. */
#define TIME_MAX_SECS INT64_C(253402300799)

/* Set once at start (before any thread verifies tokens), read on every verify. */
static _Atomic int64_t g_max_lifetime = 0; /* library default: none; `hudong serve` sets its config */

void hd_token_set_max_lifetime(int64_t seconds) { g_max_lifetime = seconds > 0 ? seconds : 0; }
int64_t hd_token_max_lifetime(void) { return g_max_lifetime; }

static int fail(int err, char *why, size_t whycap, const char *fmt, ...) {
  if (why && whycap > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whycap, fmt, ap);
    va_end(ap);
  }
  return err;
}

/* ---------------------------------------------------------------- helpers */

static int b64url_char(char ch) {
  return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
         ch == '_';
}

static int b64url_val(char ch) {
  if (ch >= 'A' && ch <= 'Z') return ch - 'A';
  if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9') return ch - '0' + 52;
  return ch == '-' ? 62 : 63;
}

/* Strict base64url (RFC 7515 §2: URL alphabet, no padding, no whitespace).
 * Also rejects non-zero leftover bits so each byte string has exactly one
 * encoding: a token cannot be altered without changing what it decodes to. */
static int b64url_decode_strict(const char *in, size_t n, uint8_t *out, size_t cap) {
  if (n == 0 || n % 4 == 1) return HD_EPROTO;
  for (size_t i = 0; i < n; i++)
    if (!b64url_char(in[i])) return HD_EPROTO;
  int last = b64url_val(in[n - 1]);
  if ((n % 4 == 2 && (last & 0x0f)) || (n % 4 == 3 && (last & 0x03))) return HD_EPROTO;
  return hd_base64_decode(in, n, out, cap);
}

static int hmac_sha256_b64(const char *secret, const char *data, size_t n, char out[SIG_B64_LEN + 1]) {
  uint8_t md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  size_t klen = strlen(secret);
  if (klen > INT32_MAX) return HD_EINVAL;
  if (!HMAC(EVP_sha256(), secret, (int)klen, (const unsigned char *)data, n, md, &mdlen) || mdlen != 32)
    return HD_ECRYPTO;
  int r = hd_base64_encode(md, mdlen, out, SIG_B64_LEN + 1, 1);
  OPENSSL_cleanse(md, sizeof md);
  return r == SIG_B64_LEN ? 0 : HD_ECRYPTO;
}

/* Optional string claim: absent leaves dst "", present must be a string that
 * fits dst with its NUL. */
static int get_str(json_t *obj, const char *name, char *dst, size_t cap, int required, char *why,
                   size_t whycap) {
  json_t *v = json_object_get(obj, name);
  dst[0] = 0;
  if (!v) {
    if (required) return fail(HD_EPROTO, why, whycap, "missing claim \"%s\"", name);
    return 0;
  }
  if (!json_is_string(v)) return fail(HD_EPROTO, why, whycap, "claim \"%s\" is not a string", name);
  size_t n = json_string_length(v);
  const char *s = json_string_value(v);
  if (n >= cap) return fail(HD_EPROTO, why, whycap, "claim \"%s\" is longer than %zu bytes", name, cap - 1);
  if (strlen(s) != n) return fail(HD_EPROTO, why, whycap, "claim \"%s\" contains NUL", name);
  memcpy(dst, s, n + 1);
  return 0;
}

/* NumericDate (RFC 7519 §2): a JSON number of seconds; fractions are allowed
 * by the RFC and truncated here. 0 means absent for optional claims. */
static int get_time(json_t *obj, const char *name, int64_t *dst, int required, char *why, size_t whycap) {
  json_t *v = json_object_get(obj, name);
  *dst = 0;
  if (!v) {
    if (required) return fail(HD_EPROTO, why, whycap, "missing claim \"%s\"", name);
    return 0;
  }
  double d;
  if (json_is_integer(v)) {
    json_int_t i = json_integer_value(v);
    if (i < 0 || i > TIME_MAX_SECS) goto range;
    *dst = (int64_t)i;
    return 0;
  }
  if (!json_is_real(v)) return fail(HD_EPROTO, why, whycap, "claim \"%s\" is not a number", name);
  d = json_real_value(v);
  if (!isfinite(d) || d < 0 || d > (double)TIME_MAX_SECS) goto range;
  *dst = (int64_t)floor(d);
  return 0;
range:
  return fail(HD_EPROTO, why, whycap, "claim \"%s\" is out of range", name);
}

static int get_bool(json_t *obj, const char *name, int *dst, char *why, size_t whycap) {
  json_t *v = json_object_get(obj, name);
  *dst = 0;
  if (!v) return 0;
  if (!json_is_boolean(v)) return fail(HD_EPROTO, why, whycap, "grant \"%s\" is not a boolean", name);
  *dst = json_is_true(v) ? 1 : 0;
  return 0;
}

/* Parses the (already authenticated) payload into claims. */
static int parse_claims(json_t *p, hd_token_claims_t *c, char *why, size_t whycap) {
  int r;
  memset(c, 0, sizeof *c);
  if ((r = get_str(p, "iss", c->key, sizeof c->key, 1, why, whycap)) < 0) return r;
  if ((r = get_str(p, "sub", c->identity, sizeof c->identity, 0, why, whycap)) < 0) return r;
  if ((r = get_str(p, "name", c->name, sizeof c->name, 0, why, whycap)) < 0) return r;
  if ((r = get_str(p, "metadata", c->metadata, sizeof c->metadata, 0, why, whycap)) < 0) return r;
  if ((r = get_time(p, "exp", &c->exp, 1, why, whycap)) < 0) return r;
  if ((r = get_time(p, "nbf", &c->nbf, 0, why, whycap)) < 0) return r;
  if ((r = get_time(p, "iat", &c->iat, 0, why, whycap)) < 0) return r;
  json_t *jti = json_object_get(p, "jti");
  if (jti && !json_is_string(jti)) return fail(HD_EPROTO, why, whycap, "claim \"jti\" is not a string");

  json_t *g = json_object_get(p, "grants");
  if (!g) return 0; /* no grants: the token authenticates but authorizes nothing */
  if (!json_is_object(g)) return fail(HD_EPROTO, why, whycap, "claim \"grants\" is not an object");
  if ((r = get_str(g, "room", c->room, sizeof c->room, 0, why, whycap)) < 0) return r;
  if ((r = get_bool(g, "roomJoin", &c->room_join, why, whycap)) < 0) return r;
  if ((r = get_bool(g, "canPublish", &c->can_publish, why, whycap)) < 0) return r;
  if ((r = get_bool(g, "canSubscribe", &c->can_subscribe, why, whycap)) < 0) return r;
  if ((r = get_bool(g, "canPublishData", &c->can_publish_data, why, whycap)) < 0) return r;
  if ((r = get_bool(g, "roomAdmin", &c->room_admin, why, whycap)) < 0) return r;
  if ((r = get_bool(g, "hidden", &c->hidden, why, whycap)) < 0) return r;
  if ((r = get_bool(g, "canRecord", &c->can_record, why, whycap)) < 0) return r;
  if ((r = get_bool(g, "rtm", &c->rtm, why, whycap)) < 0) return r;
  return 0;
}

/* Decodes one base64url segment and parses it as a JSON object. Duplicate
 * member names are rejected: parsers disagree on which one wins, which is a
 * known way to smuggle claims past one of them. */
static int decode_json(const char *seg, size_t n, const char *what, json_t **out, char *why, size_t whycap) {
  uint8_t buf[DECODED_MAX];
  int m = b64url_decode_strict(seg, n, buf, sizeof buf);
  if (m < 0) return fail(HD_EPROTO, why, whycap, "%s is not base64url", what);
  json_error_t jerr;
  json_t *j = json_loadb((const char *)buf, (size_t)m, JSON_REJECT_DUPLICATES, &jerr);
  if (!j) return fail(HD_EPROTO, why, whycap, "%s is not JSON", what);
  if (!json_is_object(j)) {
    json_decref(j);
    return fail(HD_EPROTO, why, whycap, "%s is not a JSON object", what);
  }
  *out = j;
  return 0;
}

/* ------------------------------------------------------------------ verify */

int hd_token_verify(const char *jwt, size_t len, hd_token_secret_fn lookup, void *ud, int64_t now,
                    int64_t leeway, hd_token_claims_t *out, char *why, size_t whycap) {
  json_t *hdr = NULL, *pay = NULL;
  hd_token_claims_t c;
  char sig[SIG_B64_LEN + 1];
  int r;

  if (why && whycap > 0) why[0] = 0;
  if (!jwt || !lookup || !out || leeway < 0 || leeway > HD_TOKEN_MAX_LEEWAY)
    return fail(HD_EINVAL, why, whycap, "bad arguments");
  if (len > HD_TOKEN_MAX) return fail(HD_EPROTO, why, whycap, "token longer than %d bytes", HD_TOKEN_MAX);

  /* Compact form: exactly three segments, header.payload.signature. */
  const char *d1 = memchr(jwt, '.', len);
  const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - jwt)) : NULL;
  if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - jwt)))
    return fail(HD_EPROTO, why, whycap, "not a compact JWS (header.payload.signature)");
  size_t hlen = (size_t)(d1 - jwt), plen = (size_t)(d2 - d1 - 1), slen = len - (size_t)(d2 + 1 - jwt);

  if ((r = decode_json(jwt, hlen, "header", &hdr, why, whycap)) < 0) goto out;
  json_t *alg = json_object_get(hdr, "alg");
  if (!alg || !json_is_string(alg)) {
    r = fail(HD_EPROTO, why, whycap, "header has no \"alg\" string");
    goto out;
  }
  if (strcmp(json_string_value(alg), "HS256") != 0 || json_string_length(alg) != 5) {
    r = fail(HD_EUNSUPPORTED, why, whycap, "unsupported alg (only HS256 is accepted)");
    goto out;
  }
  json_t *typ = json_object_get(hdr, "typ");
  if (typ && !json_is_string(typ)) {
    r = fail(HD_EPROTO, why, whycap, "header \"typ\" is not a string");
    goto out;
  }
  /* RFC 7515 §4.1.11: we understand no extensions, so any "crit" is fatal. */
  if (json_object_get(hdr, "crit")) {
    r = fail(HD_EUNSUPPORTED, why, whycap, "header \"crit\" extensions are not supported");
    goto out;
  }

  if ((r = decode_json(d1 + 1, plen, "payload", &pay, why, whycap)) < 0) goto out;
  json_t *iss = json_object_get(pay, "iss");
  if (!iss || !json_is_string(iss) || json_string_length(iss) == 0 ||
      json_string_length(iss) >= sizeof c.key || strlen(json_string_value(iss)) != json_string_length(iss)) {
    r = fail(HD_EPROTO, why, whycap, "payload has no valid \"iss\" (API key)");
    goto out;
  }
  const char *secret = lookup(ud, json_string_value(iss));
  if (!secret) {
    r = fail(HD_EAUTH, why, whycap, "unknown API key");
    goto out;
  }
  if ((r = hmac_sha256_b64(secret, jwt, (size_t)(d2 - jwt), sig)) < 0) {
    fail(r, why, whycap, "HMAC failed");
    goto out;
  }
  /* Comparing the canonical encoding also rejects alternative encodings of
   * the right MAC. Length is not secret; the bytes are compared in constant time. */
  if (slen != SIG_B64_LEN || CRYPTO_memcmp(sig, d2 + 1, SIG_B64_LEN) != 0) {
    r = fail(HD_EAUTH, why, whycap, "bad signature");
    goto out;
  }

  if ((r = parse_claims(pay, &c, why, whycap)) < 0) goto out;
  /* Bounded claims (<= year 9999) and leeway (<= 1 day) cannot overflow here. */
  if (now >= c.exp + leeway) {
    r = fail(HD_EEXPIRED, why, whycap, "token expired");
    goto out;
  }
  if (c.nbf - leeway > now) {
    r = fail(HD_EEXPIRED, why, whycap, "token not yet valid");
    goto out;
  }
  /* Lifetime from issue (or from now, for a token without "iat" or issued in
   * the future) to expiry: a leaked token must not stay valid for years
   * (issue 12 item 10; Agora caps privileges at 24 h the same way). */
  int64_t max_life = hd_token_max_lifetime();
  int64_t from = c.iat > 0 && c.iat < now ? c.iat : now;
  if (max_life > 0 && from < c.exp - max_life - leeway) { /* bounded: no overflow for any now */
    r = fail(HD_EAUTH, why, whycap, "token lifetime exceeds the node's maximum of %lld s: mint a shorter one",
             (long long)max_life);
    goto out;
  }
  *out = c;
  r = 0;
out:
  OPENSSL_cleanse(sig, sizeof sig);
  json_decref(hdr);
  json_decref(pay);
  return r;
}

/* -------------------------------------------------------------------- mint */

static int terminated(const char *s, size_t cap) { return memchr(s, 0, cap) != NULL; }

/* Adds a string member unless empty; fails on invalid UTF-8 (json_string). */
static int put_str(json_t *o, const char *name, const char *v) {
  if (!v[0]) return 0;
  json_t *s = json_string(v);
  return s && json_object_set_new(o, name, s) == 0 ? 0 : HD_EINVAL;
}

static int put_int(json_t *o, const char *name, int64_t v) {
  json_t *i = json_integer((json_int_t)v);
  return i && json_object_set_new(o, name, i) == 0 ? 0 : HD_ENOMEM;
}

static int put_true(json_t *o, const char *name, int v) {
  return !v || json_object_set_new(o, name, json_true()) == 0 ? 0 : HD_ENOMEM;
}

int hd_token_mint(const hd_token_claims_t *c, const char *secret, char *out, size_t cap) {
  static const char header_json[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
  char tok[HD_TOKEN_MAX + 1];
  char sig[SIG_B64_LEN + 1];
  char jti[23];
  json_t *p = NULL, *g = NULL;
  char *pj = NULL;
  int r;

  if (!c || !secret || !secret[0] || !out) return HD_EINVAL;
  if (!terminated(c->key, sizeof c->key) || !c->key[0] || !terminated(c->identity, sizeof c->identity) ||
      !terminated(c->name, sizeof c->name) || !terminated(c->room, sizeof c->room) ||
      !terminated(c->metadata, sizeof c->metadata))
    return HD_EINVAL;
  if (c->exp <= 0 || c->exp > TIME_MAX_SECS || c->nbf < 0 || c->nbf > TIME_MAX_SECS || c->iat < 0 ||
      c->iat > TIME_MAX_SECS)
    return HD_EINVAL;

  r = HD_ENOMEM;
  if (!(p = json_object()) || !(g = json_object())) goto out;
  if ((r = put_str(p, "iss", c->key)) < 0 || (r = put_str(p, "sub", c->identity)) < 0) goto out;
  if (c->iat && (r = put_int(p, "iat", c->iat)) < 0) goto out;
  if (c->nbf && (r = put_int(p, "nbf", c->nbf)) < 0) goto out;
  if ((r = put_int(p, "exp", c->exp)) < 0) goto out;
  /* jti: 22 chars of [A-Za-z0-9] ~ 131 bits, unique per token for logs/revocation. */
  hd_random_token(jti, sizeof jti - 1);
  if ((r = put_str(p, "jti", jti)) < 0) goto out;
  if ((r = put_str(p, "name", c->name)) < 0 || (r = put_str(p, "metadata", c->metadata)) < 0) goto out;
  if ((r = put_str(g, "room", c->room)) < 0) goto out;
  if ((r = put_true(g, "roomJoin", c->room_join)) < 0 ||
      (r = put_true(g, "canPublish", c->can_publish)) < 0 ||
      (r = put_true(g, "canSubscribe", c->can_subscribe)) < 0 ||
      (r = put_true(g, "canPublishData", c->can_publish_data)) < 0 ||
      (r = put_true(g, "roomAdmin", c->room_admin)) < 0 || (r = put_true(g, "hidden", c->hidden)) < 0 ||
      (r = put_true(g, "rtm", c->rtm)) < 0 || (r = put_true(g, "canRecord", c->can_record)) < 0)
    goto out;
  r = HD_ENOMEM;
  if (json_object_set(p, "grants", g) != 0) goto out;
  if (!(pj = json_dumps(p, JSON_COMPACT))) goto out;

  /* header.payload, then the MAC over exactly those ASCII bytes (RFC 7515 §5.1). */
  size_t pjlen = strlen(pj), n = 0;
  int e = hd_base64_encode(header_json, sizeof header_json - 1, tok, sizeof tok, 1);
  r = HD_ENOSPC;
  if (e < 0) goto out;
  n = (size_t)e;
  if (n + 1 + hd_base64_encoded_len(pjlen, 1) + 1 + SIG_B64_LEN > HD_TOKEN_MAX) goto out;
  tok[n++] = '.';
  if ((e = hd_base64_encode(pj, pjlen, tok + n, sizeof tok - n, 1)) < 0) goto out;
  n += (size_t)e;
  if ((r = hmac_sha256_b64(secret, tok, n, sig)) < 0) goto out;
  tok[n++] = '.';
  memcpy(tok + n, sig, SIG_B64_LEN);
  n += SIG_B64_LEN;
  tok[n] = 0;
  r = HD_ENOSPC;
  if (cap < n + 1) goto out;
  memcpy(out, tok, n + 1);
  r = (int)n;
out:
  OPENSSL_cleanse(sig, sizeof sig);
  free(pj);
  json_decref(g);
  json_decref(p);
  return r;
}

/* --------------------------------------------------------------- authorize */

int hd_token_authorize(const hd_token_claims_t *c, const char *room, int needed, char *why, size_t whycap) {
  if (why && whycap > 0) why[0] = 0;
  if (!c || needed & ~(HD_GRANT_PUBLISH | HD_GRANT_SUBSCRIBE | HD_GRANT_PUBLISH_DATA | HD_GRANT_ADMIN |
                       HD_GRANT_JOIN | HD_GRANT_RTM | HD_GRANT_RECORD))
    return fail(HD_EINVAL, why, whycap, "bad arguments");
  if (room && room[0]) {
    if (c->room[0]) {
      if (strcmp(c->room, room) != 0)
        return fail(HD_EFORBIDDEN, why, whycap, "token is for room %s", c->room);
    } else if (!c->room_admin) {
      return fail(HD_EFORBIDDEN, why, whycap, "token names no room");
    }
  }
  static const struct {
    int bit;
    size_t off;
    const char *name;
  } need[] = {
      {HD_GRANT_JOIN, offsetof(hd_token_claims_t, room_join), "roomJoin"},
      {HD_GRANT_PUBLISH, offsetof(hd_token_claims_t, can_publish), "canPublish"},
      {HD_GRANT_SUBSCRIBE, offsetof(hd_token_claims_t, can_subscribe), "canSubscribe"},
      {HD_GRANT_PUBLISH_DATA, offsetof(hd_token_claims_t, can_publish_data), "canPublishData"},
      {HD_GRANT_ADMIN, offsetof(hd_token_claims_t, room_admin), "roomAdmin"},
      {HD_GRANT_RTM, offsetof(hd_token_claims_t, rtm), "rtm"},
  };
  for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
    const int *have = (const int *)((const char *)c + need[i].off);
    if ((needed & need[i].bit) && !*have)
      return fail(HD_EFORBIDDEN, why, whycap, "token lacks %s", need[i].name);
  }
  if ((needed & HD_GRANT_RECORD) && !c->can_record && !c->room_admin)
    return fail(HD_EFORBIDDEN, why, whycap, "token lacks canRecord (or roomAdmin)");
  if ((needed & HD_GRANT_JOIN) && !c->identity[0])
    return fail(HD_EFORBIDDEN, why, whycap, "token has no identity (sub)");
  return 0;
}

/* ------------------------------------------------------------------ bearer */

static int is_ws(char ch) { return ch == ' ' || ch == '\t'; }

/* RFC 6750 §2.1 b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static int is_b64token(char ch) {
  return isalnum((unsigned char)ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch == '+' ||
         ch == '/' || ch == '=';
}

int hd_token_from_bearer(const char *hdr, const char **tok, size_t *len) {
  if (!hdr || !tok || !len) return HD_EINVAL;
  const char *s = hdr;
  while (is_ws(*s))
    s++;
  if (strncasecmp(s, "bearer", 6) != 0 || !is_ws(s[6])) return HD_EAUTH;
  s += 6;
  while (is_ws(*s))
    s++;
  const char *t = s;
  while (is_b64token(*s))
    s++;
  size_t n = (size_t)(s - t);
  while (is_ws(*s))
    s++;
  if (n == 0 || *s != 0 || n > HD_TOKEN_MAX) return HD_EAUTH;
  *tok = t;
  *len = n;
  return 0;
}
