/* Tests for JWT HS256 access tokens (RFC 7519 / RFC 7515): the RFC 7515 A.1
 * known answer, mint/verify round trip, every rejection path, authorization
 * rules and Bearer header parsing. Wall time is a fixed number, never a clock. */
#include "hd_test.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/base64.h"
#include "base/err.h"
#include "proto/token.h"

#define NOW INT64_C(1700000000)

static char rfc_key[80]; /* RFC 7515 A.1 JWK "k", decoded */

static const char *lookup(void *ud, const char *key) {
  (void)ud;
  if (strcmp(key, "APIkey1") == 0) return "secret-one";
  if (strcmp(key, "APIkey2") == 0) return "secret-two";
  if (strcmp(key, "joe") == 0) return rfc_key;
  return NULL;
}

static int setup(void **state) {
  static const char k[] =
      "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
  int n = hd_base64_decode(k, strlen(k), (uint8_t *)rfc_key, sizeof rfc_key - 1);
  if (n != 64 || memchr(rfc_key, 0, 64)) return -1;
  rfc_key[n] = 0;
  return 0;
}

/* Builds header.payload.signature from raw JSON text, signed with secret
 * (or with an empty signature if secret is NULL): lets tests forge any header
 * or payload, including ones hd_token_mint would never produce. */
static void make_jwt(const char *hjson, const char *pjson, const char *secret, char *out, size_t cap) {
  int n = hd_base64_encode(hjson, strlen(hjson), out, cap, 1);
  assert_true(n > 0);
  size_t o = (size_t)n;
  out[o++] = '.';
  n = hd_base64_encode(pjson, strlen(pjson), out + o, cap - o, 1);
  assert_true(n >= 0);
  o += (size_t)n;
  out[o++] = '.';
  out[o] = 0;
  if (!secret) return;
  uint8_t md[32];
  unsigned int mdlen = 0;
  assert_non_null(HMAC(EVP_sha256(), secret, (int)strlen(secret), (const uint8_t *)out, o - 1, md, &mdlen));
  assert_int_equal(hd_base64_encode(md, mdlen, out + o, cap - o, 1), 43);
}

static const char *HS256 = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

static int verify_str(const char *jwt, int64_t now, int64_t leeway, hd_token_claims_t *c, char *why) {
  return hd_token_verify(jwt, strlen(jwt), lookup, NULL, now, leeway, c, why, 128);
}

/* Verifies a token built from raw JSON payload, signed with APIkey1's secret. */
static int verify_payload(const char *pjson, char *why) {
  char jwt[HD_TOKEN_MAX + 1];
  hd_token_claims_t c;
  make_jwt(HS256, pjson, "secret-one", jwt, sizeof jwt);
  return verify_str(jwt, NOW, 0, &c, why);
}

static hd_token_claims_t full_claims(void) {
  hd_token_claims_t c;
  memset(&c, 0, sizeof c);
  strcpy(c.key, "APIkey1");
  strcpy(c.identity, "alice");
  strcpy(c.name, "Alice \xe7\x8e\x8b"); /* UTF-8 survives */
  strcpy(c.room, "lobby");
  strcpy(c.metadata, "{\"role\":\"host\"}");
  c.room_join = c.can_publish = c.can_subscribe = c.can_publish_data = 1;
  c.iat = NOW - 5;
  c.nbf = NOW - 5;
  c.exp = NOW + 3600;
  return c;
}

static void mint_ok(const hd_token_claims_t *c, char *out) {
  int n = hd_token_mint(c, "secret-one", out, HD_TOKEN_MAX + 1);
  assert_true(n > 0);
  assert_int_equal((size_t)n, strlen(out));
}

/* ----------------------------------------------------------------- tests */

static void test_rfc7515_a1(void **state) {
  /* RFC 7515 Appendix A.1: header has "typ" first and CRLFs inside the JSON;
   * the payload has no grants and an extra private claim. */
  static const char jws[] =
      "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
      ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
      ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
  hd_token_claims_t c;
  char why[128];
  assert_int_equal(hd_token_verify(jws, strlen(jws), lookup, NULL, 1300819379, 0, &c, why, sizeof why), 0);
  assert_string_equal(why, "");
  assert_string_equal(c.key, "joe");
  assert_int_equal(c.exp, 1300819380);
  assert_string_equal(c.identity, "");
  assert_string_equal(c.room, "");
  assert_int_equal(c.room_join + c.can_publish + c.can_subscribe + c.room_admin, 0);
  /* A.1's own exp: at exp it is expired, within leeway it is not. */
  assert_int_equal(hd_token_verify(jws, strlen(jws), lookup, NULL, 1300819380, 0, &c, why, sizeof why),
                   HD_EEXPIRED);
  assert_int_equal(hd_token_verify(jws, strlen(jws), lookup, NULL, 1300819385, 10, &c, NULL, 0), 0);
  /* A grant-less token authenticates but authorizes nothing. */
  assert_int_equal(hd_token_authorize(&c, "lobby", HD_GRANT_JOIN, why, sizeof why), HD_EFORBIDDEN);
  /* Rebuilding A.1 from its JSON octets (CRLFs included) and key reproduces the
   * RFC's compact serialization byte for byte, signature included. */
  char jwt[256];
  make_jwt("{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}",
           "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}", rfc_key, jwt,
           sizeof jwt);
  assert_string_equal(jwt, jws);
  /* A mint with the same key verifies under the "joe" tenant. */
  hd_token_claims_t m;
  memset(&m, 0, sizeof m);
  strcpy(m.key, "joe");
  m.exp = 1300819380;
  assert_true(hd_token_mint(&m, rfc_key, jwt, sizeof jwt) > 0);
  assert_int_equal(hd_token_verify(jwt, strlen(jwt), lookup, NULL, 1300819379, 0, &c, why, sizeof why), 0);
}

static void test_roundtrip(void **state) {
  hd_token_claims_t in = full_claims(), out;
  char jwt[HD_TOKEN_MAX + 1], why[128];
  mint_ok(&in, jwt);
  /* Header is exactly {"alg":"HS256","typ":"JWT"}. */
  assert_memory_equal(jwt, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37);
  memset(&out, 0xAA, sizeof out);
  assert_int_equal(verify_str(jwt, NOW, 0, &out, why), 0);
  assert_string_equal(out.key, in.key);
  assert_string_equal(out.identity, in.identity);
  assert_string_equal(out.name, in.name);
  assert_string_equal(out.room, in.room);
  assert_string_equal(out.metadata, in.metadata);
  assert_int_equal(out.iat, in.iat);
  assert_int_equal(out.nbf, in.nbf);
  assert_int_equal(out.exp, in.exp);
  assert_int_equal(out.room_join, 1);
  assert_int_equal(out.can_publish, 1);
  assert_int_equal(out.can_subscribe, 1);
  assert_int_equal(out.can_publish_data, 1);
  assert_int_equal(out.room_admin, 0);
  assert_int_equal(out.hidden, 0);
  assert_int_equal(out.rtm, 0);
  assert_int_equal(hd_token_authorize(&out, "lobby", HD_GRANT_JOIN | HD_GRANT_PUBLISH | HD_GRANT_SUBSCRIBE,
                                      why, sizeof why),
                   0);

  /* Other tenant's token verifies with its own secret. */
  in.key[6] = '2';
  in.room_admin = in.hidden = in.rtm = 1;
  assert_true(hd_token_mint(&in, "secret-two", jwt, sizeof jwt) > 0);
  assert_int_equal(verify_str(jwt, NOW, 0, &out, why), 0);
  assert_string_equal(out.key, "APIkey2");
  assert_int_equal(out.room_admin + out.hidden + out.rtm, 3);
}

static void test_mint_payload_shape(void **state) {
  hd_token_claims_t in = full_claims();
  in.can_publish = 0;
  in.iat = 0;
  in.name[0] = 0;
  char a[HD_TOKEN_MAX + 1], b[HD_TOKEN_MAX + 1];
  mint_ok(&in, a);
  mint_ok(&in, b);
  assert_string_not_equal(a, b); /* random jti */
  const char *p = strchr(a, '.') + 1;
  const char *q = strchr(p, '.');
  char json[HD_TOKEN_MAX];
  int n = hd_base64_decode(p, (size_t)(q - p), (uint8_t *)json, sizeof json - 1);
  assert_true(n > 0);
  json[n] = 0;
  assert_non_null(strstr(json, "\"iss\":\"APIkey1\""));
  assert_non_null(strstr(json, "\"sub\":\"alice\""));
  assert_non_null(strstr(json, "\"jti\":\""));
  assert_non_null(strstr(json, "\"roomJoin\":true"));
  assert_non_null(strstr(json, "\"room\":\"lobby\""));
  assert_null(strstr(json, "canPublish\""));  /* false grants omitted */
  assert_null(strstr(json, "\"roomAdmin\"")); /* ditto */
  assert_null(strstr(json, "\"iat\""));       /* zero time omitted */
  assert_null(strstr(json, "\"name\""));      /* empty string omitted */
  assert_null(strchr(a, '='));                /* no padding anywhere */
}

static void test_mint_errors(void **state) {
  hd_token_claims_t c = full_claims();
  char jwt[HD_TOKEN_MAX + 1];
  assert_int_equal(hd_token_mint(&c, "", jwt, sizeof jwt), HD_EINVAL);
  assert_int_equal(hd_token_mint(&c, NULL, jwt, sizeof jwt), HD_EINVAL);
  assert_int_equal(hd_token_mint(NULL, "s", jwt, sizeof jwt), HD_EINVAL);
  c.exp = 0;
  assert_int_equal(hd_token_mint(&c, "s", jwt, sizeof jwt), HD_EINVAL);
  c = full_claims();
  c.key[0] = 0;
  assert_int_equal(hd_token_mint(&c, "s", jwt, sizeof jwt), HD_EINVAL);
  c = full_claims();
  memset(c.room, 'r', sizeof c.room); /* unterminated */
  assert_int_equal(hd_token_mint(&c, "s", jwt, sizeof jwt), HD_EINVAL);
  c = full_claims();
  strcpy(c.name, "bad \xff utf8");
  assert_int_equal(hd_token_mint(&c, "s", jwt, sizeof jwt), HD_EINVAL);
  c = full_claims();
  c.nbf = -1;
  assert_int_equal(hd_token_mint(&c, "s", jwt, sizeof jwt), HD_EINVAL);
  /* Output cap too small. */
  c = full_claims();
  assert_int_equal(hd_token_mint(&c, "s", jwt, 40), HD_ENOSPC);
  /* Control characters escape to \u00XX (6x): the token would exceed HD_TOKEN_MAX. */
  memset(c.metadata, 1, sizeof c.metadata - 1);
  c.metadata[sizeof c.metadata - 1] = 0;
  assert_int_equal(hd_token_mint(&c, "s", jwt, sizeof jwt), HD_ENOSPC);
}

static void test_tampered(void **state) {
  hd_token_claims_t c = full_claims(), out;
  char jwt[HD_TOKEN_MAX + 1], forged[HD_TOKEN_MAX + 1], why[128];
  mint_ok(&c, jwt);

  /* Payload replaced by one granting admin, old signature kept. */
  make_jwt(HS256,
           "{\"iss\":\"APIkey1\",\"sub\":\"alice\",\"exp\":1900000000,\"grants\":{\"roomAdmin\":true}}",
           "wrong", forged, sizeof forged);
  char *sig = strrchr(forged, '.') + 1;
  strcpy(sig, strrchr(jwt, '.') + 1);
  assert_int_equal(verify_str(forged, NOW, 0, &out, why), HD_EAUTH);
  assert_string_equal(why, "bad signature");

  /* One payload character changed to another valid one. */
  strcpy(forged, jwt);
  char *p = strchr(forged, '.') + 5;
  *p = *p == 'A' ? 'B' : 'A';
  int r = verify_str(forged, NOW, 0, &out, why);
  assert_true(r == HD_EAUTH || r == HD_EPROTO);

  /* Signature: first char flipped. */
  strcpy(forged, jwt);
  sig = strrchr(forged, '.') + 1;
  sig[0] = sig[0] == 'A' ? 'B' : 'A';
  assert_int_equal(verify_str(forged, NOW, 0, &out, why), HD_EAUTH);
  /* Signature: only the 2 unused low bits of the last char changed — decodes to
   * the same MAC, but a non-canonical encoding is rejected. */
  strcpy(forged, jwt);
  sig = strrchr(forged, '.') + 1;
  sig[42] = sig[42] == 'A' ? 'B' : 'A'; /* 'A'=0 <-> 'B'=1: low bit only */
  assert_int_equal(verify_str(forged, NOW, 0, &out, why), HD_EAUTH);
  /* Signature truncated / extended / removed. */
  strcpy(forged, jwt);
  forged[strlen(forged) - 1] = 0;
  assert_int_equal(verify_str(forged, NOW, 0, &out, why), HD_EAUTH);
  strcpy(forged, jwt);
  strcat(forged, "AA");
  assert_int_equal(verify_str(forged, NOW, 0, &out, why), HD_EAUTH);
  strcpy(forged, jwt);
  strrchr(forged, '.')[1] = 0;
  assert_int_equal(verify_str(forged, NOW, 0, &out, why), HD_EAUTH);
  /* Untouched token still fine. */
  assert_int_equal(verify_str(jwt, NOW, 0, &out, why), 0);
}

static void test_wrong_secret_unknown_key(void **state) {
  hd_token_claims_t c = full_claims(), out;
  char jwt[HD_TOKEN_MAX + 1], why[128];
  assert_true(hd_token_mint(&c, "secret-two", jwt, sizeof jwt) > 0); /* APIkey1 but key2's secret */
  assert_int_equal(verify_str(jwt, NOW, 0, &out, why), HD_EAUTH);
  assert_string_equal(why, "bad signature");
  strcpy(c.key, "nobody");
  assert_true(hd_token_mint(&c, "secret-one", jwt, sizeof jwt) > 0);
  assert_int_equal(verify_str(jwt, NOW, 0, &out, why), HD_EAUTH);
  assert_string_equal(why, "unknown API key");
}

static void test_alg(void **state) {
  static const char pay[] = "{\"iss\":\"APIkey1\",\"sub\":\"a\",\"exp\":1900000000}";
  char jwt[HD_TOKEN_MAX + 1], why[128];
  hd_token_claims_t out;
  make_jwt("{\"alg\":\"none\"}", pay, NULL, jwt, sizeof jwt); /* unsecured JWT, empty signature */
  assert_int_equal(verify_str(jwt, NOW, 0, &out, why), HD_EUNSUPPORTED);
  assert_non_null(strstr(why, "alg"));
  make_jwt("{\"alg\":\"none\"}", pay, "secret-one", jwt, sizeof jwt);
  assert_int_equal(verify_str(jwt, NOW, 0, &out, why), HD_EUNSUPPORTED);
  make_jwt("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", pay, "secret-one", jwt, sizeof jwt);
  assert_int_equal(verify_str(jwt, NOW, 0, &out, why), HD_EUNSUPPORTED);
  make_jwt("{\"alg\":\"RS256\"}", pay, "secret-one", jwt, sizeof jwt);
  assert_int_equal(verify_str(jwt, NOW, 0, &out, why), HD_EUNSUPPORTED);
  make_jwt("{\"alg\":\"hs256\"}", pay, "secret-one", jwt, sizeof jwt);
  assert_int_equal(verify_str(jwt, NOW, 0, &out, why), HD_EUNSUPPORTED);
  make_jwt("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", pay, "secret-one", jwt, sizeof jwt);
  assert_int_equal(verify_str(jwt, NOW, 0, &out, why), HD_EUNSUPPORTED);
  /* Malformed headers. */
  make_jwt("{\"typ\":\"JWT\"}", pay, "secret-one", jwt, sizeof jwt);
  assert_int_equal(verify_str(jwt, NOW, 0, &out, why), HD_EPROTO);
  make_jwt("{\"alg\":256}", pay, "secret-one", jwt, sizeof jwt);
  assert_int_equal(verify_str(jwt, NOW, 0, &out, why), HD_EPROTO);
  make_jwt("{\"alg\":\"HS256\",\"typ\":1}", pay, "secret-one", jwt, sizeof jwt);
  assert_int_equal(verify_str(jwt, NOW, 0, &out, why), HD_EPROTO);
  make_jwt("{\"alg\":\"HS256\",\"alg\":\"none\"}", pay, "secret-one", jwt, sizeof jwt);
  assert_int_equal(verify_str(jwt, NOW, 0, &out, why), HD_EPROTO);
  make_jwt("[\"HS256\"]", pay, "secret-one", jwt, sizeof jwt);
  assert_int_equal(verify_str(jwt, NOW, 0, &out, why), HD_EPROTO);
  make_jwt("alg=HS256", pay, "secret-one", jwt, sizeof jwt);
  assert_int_equal(verify_str(jwt, NOW, 0, &out, why), HD_EPROTO);
  /* Sanity: the same payload under a proper header verifies. */
  make_jwt(HS256, pay, "secret-one", jwt, sizeof jwt);
  assert_int_equal(verify_str(jwt, NOW, 0, &out, why), 0);
}

static void test_time(void **state) {
  hd_token_claims_t c = full_claims(), out;
  char jwt[HD_TOKEN_MAX + 1], why[128];
  c.nbf = NOW + 100;
  c.exp = NOW + 200;
  mint_ok(&c, jwt);
  /* exp: valid strictly before exp; leeway extends by exactly leeway seconds. */
  assert_int_equal(verify_str(jwt, NOW + 199, 0, &out, why), 0);
  assert_int_equal(verify_str(jwt, NOW + 200, 0, &out, why), HD_EEXPIRED);
  assert_string_equal(why, "token expired");
  assert_int_equal(verify_str(jwt, NOW + 209, 10, &out, why), 0);
  assert_int_equal(verify_str(jwt, NOW + 210, 10, &out, why), HD_EEXPIRED);
  /* nbf: valid from nbf on; leeway lets it in leeway seconds early. */
  assert_int_equal(verify_str(jwt, NOW + 100, 0, &out, why), 0);
  assert_int_equal(verify_str(jwt, NOW + 99, 0, &out, why), HD_EEXPIRED);
  assert_string_equal(why, "token not yet valid");
  assert_int_equal(verify_str(jwt, NOW + 90, 10, &out, why), 0);
  assert_int_equal(verify_str(jwt, NOW + 89, 10, &out, why), HD_EEXPIRED);
  /* Extreme now values do not overflow. */
  assert_int_equal(verify_str(jwt, INT64_MAX, 10, &out, why), HD_EEXPIRED);
  assert_int_equal(verify_str(jwt, INT64_MIN, 10, &out, why), HD_EEXPIRED);
  /* Leeway must be sane. */
  assert_int_equal(verify_str(jwt, NOW + 150, -1, &out, why), HD_EINVAL);
  assert_int_equal(verify_str(jwt, NOW + 150, HD_TOKEN_MAX_LEEWAY + 1, &out, why), HD_EINVAL);
  /* Fractional NumericDate is truncated (RFC 7519 §2 allows fractions). */
  assert_int_equal(verify_payload("{\"iss\":\"APIkey1\",\"exp\":1700000000.9}", why), HD_EEXPIRED);
  assert_int_equal(verify_payload("{\"iss\":\"APIkey1\",\"exp\":1700000001.5}", why), 0);
}

static void test_wrong_types(void **state) {
  char why[128];
  static const struct {
    const char *json;
    const char *why_has;
  } bad[] = {
      {"not json at all", "payload is not JSON"},
      {"[1,2,3]", "not a JSON object"},
      {"\"APIkey1\"", "payload is not JSON"}, /* jansson wants an object or array */
      {"{\"iss\":\"APIkey1\",\"exp\":1900000000", "payload is not JSON"},
      {"{\"exp\":1900000000}", "iss"},
      {"{\"iss\":42,\"exp\":1900000000}", "iss"},
      {"{\"iss\":\"\",\"exp\":1900000000}", "iss"},
      {"{\"iss\":\"APIkey1\"}", "missing claim \"exp\""},
      {"{\"iss\":\"APIkey1\",\"exp\":\"1900000000\"}", "\"exp\" is not a number"},
      {"{\"iss\":\"APIkey1\",\"exp\":-5}", "out of range"},
      {"{\"iss\":\"APIkey1\",\"exp\":1e300}", "out of range"},
      {"{\"iss\":\"APIkey1\",\"exp\":99999999999999999999}", "payload is not JSON"}, /* jansson: too big */
      {"{\"iss\":\"APIkey1\",\"exp\":1900000000,\"nbf\":true}", "\"nbf\" is not a number"},
      {"{\"iss\":\"APIkey1\",\"exp\":1900000000,\"iat\":null}", "\"iat\" is not a number"},
      {"{\"iss\":\"APIkey1\",\"exp\":1900000000,\"sub\":7}", "\"sub\" is not a string"},
      {"{\"iss\":\"APIkey1\",\"exp\":1900000000,\"name\":{}}", "\"name\" is not a string"},
      {"{\"iss\":\"APIkey1\",\"exp\":1900000000,\"metadata\":{\"a\":1}}", "\"metadata\" is not a string"},
      {"{\"iss\":\"APIkey1\",\"exp\":1900000000,\"jti\":1}", "\"jti\" is not a string"},
      {"{\"iss\":\"APIkey1\",\"exp\":1900000000,\"grants\":[]}", "\"grants\" is not an object"},
      {"{\"iss\":\"APIkey1\",\"exp\":1900000000,\"grants\":\"all\"}", "\"grants\" is not an object"},
      {"{\"iss\":\"APIkey1\",\"exp\":1900000000,\"grants\":{\"room\":1}}", "\"room\" is not a string"},
      {"{\"iss\":\"APIkey1\",\"exp\":1900000000,\"grants\":{\"canPublish\":1}}",
       "\"canPublish\" is not a boolean"},
      {"{\"iss\":\"APIkey1\",\"exp\":1900000000,\"grants\":{\"roomAdmin\":\"true\"}}", "\"roomAdmin\""},
      {"{\"iss\":\"APIkey1\",\"exp\":1900000000,\"grants\":{\"rtm\":null}}", "\"rtm\""},
      {"{\"iss\":\"APIkey1\",\"exp\":1900000000,\"sub\":\"a\",\"sub\":\"admin\"}", "payload is not JSON"},
      {"{\"iss\":\"APIkey1\",\"exp\":1900000000,\"sub\":\"a\\u0000b\"}", "payload is not JSON"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int r = verify_payload(bad[i].json, why);
    if (r != HD_EPROTO || !strstr(why, bad[i].why_has))
      fail_msg("case %zu (%s): r=%d why=\"%s\"", i, bad[i].json, r, why);
  }
  /* Over-long string claims. */
  char json[2048], room[200];
  memset(room, 'r', 128);
  room[128] = 0;
  snprintf(json, sizeof json, "{\"iss\":\"APIkey1\",\"exp\":1900000000,\"grants\":{\"room\":\"%s\"}}", room);
  assert_int_equal(verify_payload(json, why), HD_EPROTO);
  assert_non_null(strstr(why, "longer"));
  room[127] = 0; /* 127 chars fit */
  snprintf(json, sizeof json, "{\"iss\":\"APIkey1\",\"exp\":1900000000,\"grants\":{\"room\":\"%s\"}}", room);
  assert_int_equal(verify_payload(json, why), 0);
  /* Unknown claims and grants are ignored. */
  assert_int_equal(verify_payload("{\"iss\":\"APIkey1\",\"exp\":1900000000,\"aud\":[\"x\"],"
                                  "\"grants\":{\"future\":{\"x\":1}}}",
                                  why),
                   0);
}

static void test_compact_form(void **state) {
  hd_token_claims_t c = full_claims(), out;
  char jwt[HD_TOKEN_MAX + 1], bad[HD_TOKEN_MAX + 8], why[128];
  mint_ok(&c, jwt);
  size_t n = strlen(jwt);
  static const char *simple[] = {"", ".", "..", "...", "a.b", "a.b.c.d", "eyJhbGciOiJIUzI1NiJ9..x"};
  for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++)
    assert_int_equal(verify_str(simple[i], NOW, 0, &out, why), HD_EPROTO);
  /* Four segments. */
  snprintf(bad, sizeof bad, "%s.x", jwt);
  assert_int_equal(verify_str(bad, NOW, 0, &out, why), HD_EPROTO);
  /* Padding or whitespace in the header segment. */
  snprintf(bad, sizeof bad, "%.*s=%s", 36, jwt, jwt + 36);
  assert_int_equal(verify_str(bad, NOW, 0, &out, why), HD_EPROTO);
  snprintf(bad, sizeof bad, " %s", jwt);
  assert_int_equal(verify_str(bad, NOW, 0, &out, why), HD_EPROTO);
  /* Standard-alphabet character. */
  strcpy(bad, jwt);
  bad[3] = '+';
  assert_int_equal(verify_str(bad, NOW, 0, &out, why), HD_EPROTO);
  /* Length is taken from len, not NUL: a prefix is not a token. */
  assert_int_equal(hd_token_verify(jwt, n - 1, lookup, NULL, NOW, 0, &out, why, sizeof why), HD_EAUTH);
  assert_int_equal(hd_token_verify(jwt, n, lookup, NULL, NOW, 0, &out, why, sizeof why), 0);
  /* Embedded NUL. */
  memcpy(bad, jwt, n + 1);
  bad[10] = 0;
  assert_int_equal(hd_token_verify(bad, n, lookup, NULL, NOW, 0, &out, why, sizeof why), HD_EPROTO);
  /* Bad arguments. */
  assert_int_equal(hd_token_verify(NULL, 0, lookup, NULL, NOW, 0, &out, why, sizeof why), HD_EINVAL);
  assert_int_equal(hd_token_verify(jwt, n, NULL, NULL, NOW, 0, &out, why, sizeof why), HD_EINVAL);
  assert_int_equal(hd_token_verify(jwt, n, lookup, NULL, NOW, 0, NULL, why, sizeof why), HD_EINVAL);
  /* why is optional and truncated safely. */
  assert_int_equal(hd_token_verify("x", 1, lookup, NULL, NOW, 0, &out, NULL, 0), HD_EPROTO);
  char tiny[4];
  assert_int_equal(hd_token_verify("x", 1, lookup, NULL, NOW, 0, &out, tiny, sizeof tiny), HD_EPROTO);
  assert_int_equal(strlen(tiny), 3);
}

static void test_overlong(void **state) {
  enum { BIG = 2 * HD_TOKEN_MAX };
  char *big = malloc(BIG);
  char why[128];
  hd_token_claims_t out;
  assert_non_null(big);
  /* Grow a validly signed token one payload byte at a time until it is exactly
   * HD_TOKEN_MAX + 1 long (base64url lengths skip only n % 4 == 1, which the
   * three-segment total never needs here): rejected on size alone. */
  char pay[HD_TOKEN_MAX];
  int pad = 2900;
  do {
    snprintf(pay, sizeof pay, "{\"iss\":\"APIkey1\",\"exp\":1900000000,\"x\":\"%0*d\"}", ++pad, 0);
    make_jwt(HS256, pay, "secret-one", big, BIG);
  } while (strlen(big) <= HD_TOKEN_MAX);
  assert_int_equal(strlen(big), HD_TOKEN_MAX + 1);
  assert_int_equal(verify_str(big, NOW, 0, &out, why), HD_EPROTO);
  assert_non_null(strstr(why, "longer"));
  /* One payload byte less: at most HD_TOKEN_MAX, verifies. */
  snprintf(pay, sizeof pay, "{\"iss\":\"APIkey1\",\"exp\":1900000000,\"x\":\"%0*d\"}", pad - 1, 0);
  make_jwt(HS256, pay, "secret-one", big, BIG);
  assert_true(strlen(big) <= HD_TOKEN_MAX && strlen(big) >= HD_TOKEN_MAX - 2);
  assert_int_equal(verify_str(big, NOW, 0, &out, why), 0);
  free(big);
}

static void test_authorize(void **state) {
  hd_token_claims_t c = full_claims();
  char why[128];
  assert_int_equal(hd_token_authorize(&c, "lobby", HD_GRANT_JOIN, why, sizeof why), 0);
  assert_string_equal(why, "");
  assert_int_equal(hd_token_authorize(&c, "other", HD_GRANT_JOIN, why, sizeof why), HD_EFORBIDDEN);
  assert_string_equal(why, "token is for room lobby");
  assert_int_equal(hd_token_authorize(&c, "Lobby", HD_GRANT_JOIN, why, sizeof why), HD_EFORBIDDEN);
  c.can_publish = 0;
  assert_int_equal(hd_token_authorize(&c, "lobby", HD_GRANT_JOIN | HD_GRANT_PUBLISH, why, sizeof why),
                   HD_EFORBIDDEN);
  assert_string_equal(why, "token lacks canPublish");
  assert_int_equal(hd_token_authorize(&c, "lobby", HD_GRANT_ADMIN, why, sizeof why), HD_EFORBIDDEN);
  assert_string_equal(why, "token lacks roomAdmin");
  assert_int_equal(hd_token_authorize(&c, "lobby", HD_GRANT_RTM, why, sizeof why), HD_EFORBIDDEN);
  assert_string_equal(why, "token lacks rtm");
  c.can_subscribe = 0;
  assert_int_equal(hd_token_authorize(&c, "lobby", HD_GRANT_SUBSCRIBE, why, sizeof why), HD_EFORBIDDEN);
  assert_string_equal(why, "token lacks canSubscribe");
  c.can_publish_data = 0;
  assert_int_equal(hd_token_authorize(&c, "lobby", HD_GRANT_PUBLISH_DATA, why, sizeof why), HD_EFORBIDDEN);
  assert_string_equal(why, "token lacks canPublishData");
  c.room_join = 0;
  assert_int_equal(hd_token_authorize(&c, "lobby", HD_GRANT_JOIN, why, sizeof why), HD_EFORBIDDEN);
  assert_string_equal(why, "token lacks roomJoin");
  /* Nothing needed, right room: allowed. */
  assert_int_equal(hd_token_authorize(&c, "lobby", 0, why, sizeof why), 0);

  /* Join needs an identity. */
  c = full_claims();
  c.identity[0] = 0;
  assert_int_equal(hd_token_authorize(&c, "lobby", HD_GRANT_JOIN, why, sizeof why), HD_EFORBIDDEN);
  assert_non_null(strstr(why, "identity"));

  /* Empty room: any room only with roomAdmin. */
  c = full_claims();
  c.room[0] = 0;
  assert_int_equal(hd_token_authorize(&c, "lobby", HD_GRANT_JOIN, why, sizeof why), HD_EFORBIDDEN);
  assert_string_equal(why, "token names no room");
  c.room_admin = 1;
  assert_int_equal(hd_token_authorize(&c, "lobby", HD_GRANT_JOIN | HD_GRANT_ADMIN, why, sizeof why), 0);
  assert_int_equal(hd_token_authorize(&c, "anything", HD_GRANT_SUBSCRIBE, why, sizeof why), 0);

  /* Room-less action (RTM): room not checked, grant is. */
  c = full_claims();
  assert_int_equal(hd_token_authorize(&c, NULL, HD_GRANT_RTM, why, sizeof why), HD_EFORBIDDEN);
  c.rtm = 1;
  assert_int_equal(hd_token_authorize(&c, NULL, HD_GRANT_RTM, why, sizeof why), 0);
  assert_int_equal(hd_token_authorize(&c, "", HD_GRANT_RTM, NULL, 0), 0);

  assert_int_equal(hd_token_authorize(NULL, "lobby", 0, why, sizeof why), HD_EINVAL);
  assert_int_equal(hd_token_authorize(&c, "lobby", 128, why, sizeof why), HD_EINVAL);
}

/* issue 18 item 4: grants.canRecord starts/stops recordings of its room;
 * roomAdmin implies it; it survives mint/verify. */
static void test_record_grant(void **state) {
  hd_token_claims_t c = full_claims(), out;
  char why[128], jwt[HD_TOKEN_MAX + 1];
  assert_int_equal(hd_token_authorize(&c, "lobby", HD_GRANT_RECORD, why, sizeof why), HD_EFORBIDDEN);
  assert_string_equal(why, "token lacks canRecord (or roomAdmin)");
  c.can_record = 1;
  assert_int_equal(hd_token_authorize(&c, "lobby", HD_GRANT_RECORD, why, sizeof why), 0);
  assert_int_equal(hd_token_authorize(&c, "other", HD_GRANT_RECORD, why, sizeof why), HD_EFORBIDDEN);
  mint_ok(&c, jwt);
  const char *p = strchr(jwt, '.') + 1, *q = strchr(p, '.');
  char json[HD_TOKEN_MAX];
  int n = hd_base64_decode(p, (size_t)(q - p), (uint8_t *)json, sizeof json - 1);
  assert_true(n > 0);
  json[n] = 0;
  assert_non_null(strstr(json, "\"canRecord\":true"));
  assert_int_equal(verify_str(jwt, NOW, 0, &out, why), 0);
  assert_int_equal(out.can_record, 1);
  c.can_record = 0;
  c.room_admin = 1;
  assert_int_equal(hd_token_authorize(&c, "lobby", HD_GRANT_RECORD, why, sizeof why), 0);
}

static void test_bearer(void **state) {
  const char *t;
  size_t n;
  assert_int_equal(hd_token_from_bearer("Bearer abc.def.ghi", &t, &n), 0);
  assert_int_equal(n, 11);
  assert_memory_equal(t, "abc.def.ghi", 11);
  assert_int_equal(hd_token_from_bearer("bearer abc.def.ghi", &t, &n), 0);
  assert_int_equal(hd_token_from_bearer("BEARER abc", &t, &n), 0);
  assert_int_equal(hd_token_from_bearer("  bEaReR \t  a-b_c.d~e+f/g==  \t", &t, &n), 0);
  assert_int_equal(n, 15);
  assert_memory_equal(t, "a-b_c.d~e+f/g==", 15);

  static const char *bad[] = {
      "",           "Bearer",         "Bearer ",        "Bearer    ",  "Bearerabc.def", "Basic dXNlcjpwYXNz",
      "Token abc",  "Bearer abc def", "Bearer abc\r\n", "Bearer a\"b", "Bearer a,b",    "Bear abc",
      "abc.def.ghi"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (hd_token_from_bearer(bad[i], &t, &n) != HD_EAUTH) fail_msg("bearer case %zu accepted", i);
  assert_int_equal(hd_token_from_bearer(NULL, &t, &n), HD_EINVAL);

  /* Token length cap. */
  char *big = malloc(HD_TOKEN_MAX + 16);
  assert_non_null(big);
  strcpy(big, "Bearer ");
  memset(big + 7, 'a', HD_TOKEN_MAX);
  big[7 + HD_TOKEN_MAX] = 0;
  assert_int_equal(hd_token_from_bearer(big, &t, &n), 0);
  assert_int_equal(n, HD_TOKEN_MAX);
  strcat(big, "a");
  assert_int_equal(hd_token_from_bearer(big, &t, &n), HD_EAUTH);
  free(big);

  /* End to end: header from a minted token verifies. */
  hd_token_claims_t c = full_claims(), out;
  char jwt[HD_TOKEN_MAX + 1], hdr[HD_TOKEN_MAX + 32];
  mint_ok(&c, jwt);
  snprintf(hdr, sizeof hdr, "bearer  %s ", jwt);
  assert_int_equal(hd_token_from_bearer(hdr, &t, &n), 0);
  assert_int_equal(hd_token_verify(t, n, lookup, NULL, NOW, 10, &out, NULL, 0), 0);
  assert_string_equal(out.identity, "alice");
}

/* issue 12 item 10: a token valid until year 9999 was accepted. */
static void test_max_lifetime(void **state) {
  (void)state;
  hd_token_claims_t c = full_claims(), out;
  char jwt[HD_TOKEN_MAX + 1], why[128];
  c.nbf = 0;
  c.iat = NOW;
  c.exp = 253402300799; /* 9999-12-31 */
  mint_ok(&c, jwt);
  assert_int_equal(hd_token_max_lifetime(), 0); /* library default: no limit */
  assert_int_equal(verify_str(jwt, NOW, 10, &out, why), 0);
  hd_token_set_max_lifetime(86400);
  assert_int_equal(verify_str(jwt, NOW, 10, &out, why), HD_EAUTH);
  assert_string_equal(why, "token lifetime exceeds the node's maximum of 86400 s: mint a shorter one");
  /* exactly 24 h (+ leeway) passes, one second more does not */
  c.exp = NOW + 86400 + 10;
  mint_ok(&c, jwt);
  assert_int_equal(verify_str(jwt, NOW, 10, &out, why), 0);
  c.exp = NOW + 86400 + 11;
  mint_ok(&c, jwt);
  assert_int_equal(verify_str(jwt, NOW, 10, &out, why), HD_EAUTH);
  /* lifetime counts from iat: minted 23 h ago for 25 h is too long even if 2 h are left */
  c.iat = NOW - 23 * 3600;
  c.exp = NOW + 2 * 3600;
  mint_ok(&c, jwt);
  assert_int_equal(verify_str(jwt, NOW, 0, &out, why), HD_EAUTH);
  /* without iat (or with iat in the future) it counts from now */
  c.iat = 0;
  c.exp = NOW + 3600;
  mint_ok(&c, jwt);
  assert_int_equal(verify_str(jwt, NOW, 0, &out, why), 0);
  c.iat = NOW + 1000000;
  c.exp = NOW + 2 * 86400;
  mint_ok(&c, jwt);
  assert_int_equal(verify_str(jwt, NOW, 0, &out, why), HD_EAUTH);
  assert_int_equal(verify_str(jwt, INT64_MIN, 10, &out, why), HD_EEXPIRED);
  hd_token_set_max_lifetime(0);
  assert_int_equal(verify_str(jwt, NOW, 0, &out, why), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rfc7515_a1),
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_mint_payload_shape),
      cmocka_unit_test(test_mint_errors),
      cmocka_unit_test(test_tampered),
      cmocka_unit_test(test_wrong_secret_unknown_key),
      cmocka_unit_test(test_alg),
      cmocka_unit_test(test_time),
      cmocka_unit_test(test_wrong_types),
      cmocka_unit_test(test_compact_form),
      cmocka_unit_test(test_overlong),
      cmocka_unit_test(test_authorize),
      cmocka_unit_test(test_record_grant),
      cmocka_unit_test(test_bearer),
      cmocka_unit_test(test_max_lifetime),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
