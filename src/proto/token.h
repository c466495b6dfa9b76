/* Access tokens: JWT (RFC 7519) in JWS compact serialization (RFC 7515 §7.1),
 * signed with HS256 = HMAC-SHA256 (RFC 7518 §3.2), carrying Hudong grants.
 *
 * A token is issued by an app (tenant) with its API key / secret pair: "iss" is
 * the API key, which selects the tenant and the secret that verifies the
 * signature, so apps are isolated from one another. Format, grants and error
 * codes are documented in docs/tokens.md.
 *
 * Sans-IO: no clocks. Every time here is wall-clock seconds since the Unix
 * epoch (JWT NumericDate), passed in by the caller — not hd_time_t. */
#ifndef HD_PROTO_TOKEN_H
#define HD_PROTO_TOKEN_H
#include <stddef.h>
#include <stdint.h>

/* Hard cap on a token's compact form (bytes, without NUL), for mint and verify. */
#define HD_TOKEN_MAX 4096
/* Upper bound accepted for the verify leeway (one day). */
#define HD_TOKEN_MAX_LEEWAY 86400

typedef struct {
  char key[64];       /* "iss": the app's API key (selects tenant + secret); required */
  char identity[128]; /* "sub": participant identity; required to join a room */
  char name[128];     /* "name": optional display name */
  char room[128];     /* grants.room. Empty = any room, but only together with
                       * room_admin; an empty room without room_admin grants no
                       * room-scoped action (see hd_token_authorize). */
  int room_join, can_publish, can_subscribe, can_publish_data, room_admin, hidden, rtm; /* grants, 0/1 */
  int can_record;        /* grants.canRecord: may start/stop recordings of its room (docs/egress.md) */
  int64_t iat, nbf, exp; /* seconds since epoch; iat/nbf 0 = absent; exp required (> 0) */
  char metadata[512];    /* "metadata": optional opaque string for the app */
} hd_token_claims_t;

/* Mints a signed token for claims c with the app secret (NUL-terminated, non-empty).
 * Header {"alg":"HS256","typ":"JWT"}; payload iss, sub, iat, nbf, exp, jti (random),
 * name, metadata and "grants" {"room","roomJoin","canPublish","canSubscribe",
 * "canPublishData","roomAdmin","hidden","rtm","canRecord"}; false grants, empty strings and zero
 * iat/nbf are omitted. Writes the NUL-terminated compact token to out.
 * Returns its length (< HD_TOKEN_MAX), HD_EINVAL (no key, no secret, exp <= 0, an
 * unterminated field, nbf/iat/exp out of range), HD_ENOSPC (cap too small or token
 * longer than HD_TOKEN_MAX), HD_ENOMEM or HD_ECRYPTO. */
int hd_token_mint(const hd_token_claims_t *c, const char *secret, char *out, size_t cap);

/* Looks up the NUL-terminated secret for an API key (tenant). Returns NULL if the
 * key is unknown. The returned pointer need only live until the call returns. */
typedef const char *(*hd_token_secret_fn)(void *ud, const char *key);

/* Verifies token jwt[0..len) (need not be NUL-terminated) at wall time now (seconds
 * since epoch), allowing leeway seconds of clock skew (0..HD_TOKEN_MAX_LEEWAY).
 * Returns 0 and fills *out, or:
 *   HD_EPROTO       malformed: len > HD_TOKEN_MAX, not three base64url parts,
 *                   JSON not an object, duplicate keys, a field of the wrong type,
 *                   a string over its cap, missing "iss" or "exp"
 *   HD_EUNSUPPORTED header "alg" is not "HS256" (incl. "none"), or a "crit" header
 *   HD_EAUTH        unknown key (lookup returned NULL) or bad signature
 *   HD_EEXPIRED     now >= exp + leeway, or now + leeway < nbf
 *   HD_EINVAL       bad arguments (NULL jwt/lookup/out, leeway out of range)
 * The signature is checked (CRYPTO_memcmp) before any claim other than "iss" is
 * trusted. Unknown claims are ignored; missing grants are false. If why is not
 * NULL, a human-readable reason (NUL-terminated, truncated to whycap) is written
 * on failure and "" on success. *out is written only on success. */
int hd_token_verify(const char *jwt, size_t len, hd_token_secret_fn lookup, void *ud, int64_t now,
                    int64_t leeway, hd_token_claims_t *out, char *why, size_t whycap);
/* Longest lifetime hd_token_verify accepts: exp minus iat (or minus now when
 * "iat" is absent or in the future) over this plus leeway fails with HD_EAUTH,
 * why = "token lifetime exceeds the node's maximum of N s: mint a shorter one".
 * Process-wide, set once at start before tokens are verified (config key
 * max_token_lifetime_s, flag --max-token-lifetime; the node default is
 * HD_TOKEN_DEFAULT_MAX_LIFETIME); 0 = no limit, also the library default. */
#define HD_TOKEN_DEFAULT_MAX_LIFETIME (24 * 3600)
void hd_token_set_max_lifetime(int64_t seconds);
int64_t hd_token_max_lifetime(void);

/* Grants an action may need, OR-ed together for hd_token_authorize. */
enum {
  HD_GRANT_PUBLISH = 1,
  HD_GRANT_SUBSCRIBE = 2,
  HD_GRANT_PUBLISH_DATA = 4,
  HD_GRANT_ADMIN = 8,
  HD_GRANT_JOIN = 16,
  HD_GRANT_RTM = 32,
  HD_GRANT_RECORD = 64 /* canRecord, or roomAdmin (which may do anything in its rooms) */
};

/* Authorization used by the server after hd_token_verify. room is the room the
 * action targets (NULL or "" for an action not scoped to a room, e.g. RTM).
 * Room rule: a token naming a room matches only that room (exact, case-sensitive);
 * a token with an empty room matches any room only if it has roomAdmin, otherwise
 * it matches no room. HD_GRANT_JOIN also requires a non-empty identity ("sub").
 * Returns 0, HD_EFORBIDDEN with a reason in why ("token is for room X",
 * "token lacks canPublish", ...), or HD_EINVAL (c NULL). */
int hd_token_authorize(const hd_token_claims_t *c, const char *room, int needed, char *why, size_t whycap);

/* Extracts the token from an HTTP "Authorization" header value "Bearer <jwt>"
 * (RFC 6750 §2.1): scheme case-insensitive, spaces/tabs around and between
 * allowed; the token is the following run of non-whitespace, and nothing but
 * whitespace may follow it. *tok points into hdr (NUL-terminated), *len is its
 * length. Returns 0, or HD_EAUTH (no/other scheme, empty token, trailing junk,
 * token longer than HD_TOKEN_MAX) or HD_EINVAL (NULL args). */
int hd_token_from_bearer(const char *hdr, const char **tok, size_t *len);

#endif
