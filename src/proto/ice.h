/* ICE-lite agent (RFC 8445 §2.5, lite implementation, always controlled) with
 * consent freshness (RFC 7675), one per peer connection. The server never sends
 * checks: it answers the peer's Binding requests (§7.3), learns the peer's
 * addresses from them, and takes the address nominated with USE-CANDIDATE as
 * the path for media. Sans-IO: the caller feeds packets and the time, sends the
 * responses we write, and calls hd_ice_handle_timeout at hd_ice_next_timeout. */
#ifndef HD_PROTO_ICE_H
#define HD_PROTO_ICE_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/time.h"

#define HD_ICE_MAX_UFRAG 256              /* RFC 8839 §5.4: ice-char 4..256 */
#define HD_ICE_MAX_PWD 256                /* 22..256 */
#define HD_ICE_MAX_REMOTE 8               /* remote addresses tracked per agent (cap) */
#define HD_ICE_CONSENT_TIMEOUT HD_SEC(30) /* RFC 7675 §5.1 */
#define HD_ICE_CONNECT_TIMEOUT HD_SEC(30)

enum { HD_ICE_NEW = 0, HD_ICE_CONNECTED = 1, HD_ICE_FAILED = 2 };

/* One peer address from which a valid check arrived (a candidate pair, since
 * the local side is the one socket the packet came in on). */
typedef struct {
  struct sockaddr_storage addr;
  socklen_t addrlen;
  uint32_t priority;    /* PRIORITY of the last check */
  hd_time_t last_check; /* time of the last valid check (consent) */
  int nominated;
} hd_ice_remote_t;

/* Exposed so owners can embed it; treat fields as read-only except the two
 * timeouts, which may be changed after hd_ice_init. */
typedef struct hd_ice {
  char local_ufrag[HD_ICE_MAX_UFRAG + 1];
  char local_pwd[HD_ICE_MAX_PWD + 1];
  char remote_ufrag[HD_ICE_MAX_UFRAG + 1]; /* "" = accept any */
  size_t local_ufrag_len, local_pwd_len, remote_ufrag_len;

  int state;                 /* HD_ICE_* */
  hd_time_t start;           /* anchor of the connect timeout; -1 until known */
  hd_time_t consent_timeout; /* default HD_ICE_CONSENT_TIMEOUT */
  hd_time_t connect_timeout; /* default HD_ICE_CONNECT_TIMEOUT */
  uint64_t tie_breaker;      /* ours; UINT64_MAX: a lite agent keeps the controlled role */

  hd_ice_remote_t remotes[HD_ICE_MAX_REMOTE];
  size_t n_remotes;
  int selected;  /* index into remotes, -1 = none */
  int nominated; /* 1 once any USE-CANDIDATE arrived */

  /* Counters for stats / debugging. */
  uint64_t n_checks;    /* valid binding requests answered */
  uint64_t n_auth_fail; /* bad USERNAME or MESSAGE-INTEGRITY */
  uint64_t n_bad;       /* malformed / not for us */
} hd_ice_t;

/* Initializes the agent. ufrag/pwd are NUL-terminated; remote_ufrag may be NULL
 * (learn it later with hd_ice_set_remote_ufrag; until then any peer ufrag is
 * accepted). Returns 0 or HD_EINVAL (NULL or too long credentials). The connect
 * timeout is anchored at the first hd_ice_start / hd_ice_feed /
 * hd_ice_handle_timeout call, since init has no clock. */
int hd_ice_init(hd_ice_t *ice, const char *local_ufrag, const char *local_pwd, const char *remote_ufrag);

/* Anchors the connect timeout at `now` (optional; see hd_ice_init). */
void hd_ice_start(hd_ice_t *ice, hd_time_t now);

/* Sets or replaces the peer's ufrag (e.g. once the remote SDP is known). */
int hd_ice_set_remote_ufrag(hd_ice_t *ice, const char *remote_ufrag);

/* ICE restart (RFC 8445 §9): new local (and optionally remote) credentials.
 * The current selected path and its consent are kept so media keeps flowing
 * until the peer nominates under the new credentials. */
int hd_ice_restart(hd_ice_t *ice, const char *local_ufrag, const char *local_pwd, const char *remote_ufrag);

/* Feeds one packet (expected to be STUN) received from `from` at `now`.
 * - Valid Binding request for us (USERNAME "local:remote" matches,
 *   MESSAGE-INTEGRITY with local_pwd ok, FINGERPRINT ok if present): writes a
 *   success response (XOR-MAPPED-ADDRESS = from, MESSAGE-INTEGRITY,
 *   FINGERPRINT) into resp, sets *resp_len, refreshes consent, learns/nominates
 *   `from`, returns 1.
 * - Authenticated request with an unknown comprehension-required attribute:
 *   420 error response (with UNKNOWN-ATTRIBUTES), returns 1; not a valid check.
 * - Authenticated request with ICE-CONTROLLED (peer also controlled): 487 Role
 *   Conflict error response (§7.3.1.1; a lite agent never switches role),
 *   returns 1; not a valid check.
 * - Binding indications and responses: accepted and ignored, returns 0.
 * Errors (no response written): HD_EAUTH (bad USERNAME / integrity /
 * fingerprint), HD_EPROTO / HD_ETRUNC (not STUN, malformed, request lacking
 * USERNAME or MESSAGE-INTEGRITY), HD_EUNSUPPORTED (non-Binding request),
 * HD_ENOSPC (resp_cap too small; 128 bytes is plenty), HD_ECLOSED (FAILED),
 * HD_EINVAL (bad arguments, e.g. `from` not IPv4/IPv6).
 * In short: return 1 means "send resp back to from". */
int hd_ice_feed(hd_ice_t *ice, const uint8_t *pkt, size_t len, const struct sockaddr *from, socklen_t fromlen,
                hd_time_t now, uint8_t *resp, size_t resp_cap, size_t *resp_len);

/* The address media should be sent to: the latest nominated one, or before any
 * nomination the address of the first valid check (tentative). NULL if none or
 * FAILED. *len (if len != NULL) receives its length. Pointer valid until the
 * next call that modifies the agent. */
const struct sockaddr *hd_ice_selected(const hd_ice_t *ice, socklen_t *len);

/* 1 if the selected address was nominated by the peer, else 0. */
int hd_ice_is_nominated(const hd_ice_t *ice);

/* HD_ICE_NEW, HD_ICE_CONNECTED (a valid check arrived) or HD_ICE_FAILED
 * (connect timeout, or consent lost: the owner must close the session). */
int hd_ice_state(const hd_ice_t *ice);

/* Next deadline: connect timeout while NEW, consent expiry while CONNECTED,
 * HD_TIME_NEVER when FAILED. Returns 0 ("due now") if the connect timeout is not
 * anchored yet, so that the owner's first hd_ice_handle_timeout anchors it. */
hd_time_t hd_ice_next_timeout(const hd_ice_t *ice);

/* Applies timeouts at `now`: FAILED when now >= start + connect_timeout without
 * a valid check, or now >= last valid check on the selected address +
 * consent_timeout. Returns 0 while alive, HD_ETIMEDOUT once FAILED. */
int hd_ice_handle_timeout(hd_ice_t *ice, hd_time_t now);

/* Releases resources (none today; wipes the credentials). Safe to call twice. */
void hd_ice_free(hd_ice_t *ice);

#endif
