/* ICE-lite agent (RFC 8445 §2.5, §7.3 responding to checks as the controlled
 * agent) with consent freshness (RFC 7675 §5.1: 30 s without a valid check
 * means consent is lost). A lite agent sends no checks: every valid Binding
 * request proves the path from the peer and refreshes consent; USE-CANDIDATE
 * (§8.2, regular or aggressive nomination alike) selects the path for media. */
#include "proto/ice.h"

#include <netinet/in.h>
#include <string.h>

#include "base/err.h"
#include "proto/stun.h"

/* a + b without overflowing past HD_TIME_NEVER (timeouts may be set huge to
 * disable them). */
static hd_time_t add_sat(hd_time_t a, hd_time_t b) {
  if (b > 0 && a > HD_TIME_NEVER - b) return HD_TIME_NEVER;
  return a + b;
}

static int copy_cred(char *dst, size_t *dlen, size_t cap, const char *src, int allow_colon) {
  size_t n = strnlen(src, cap + 1);
  if (n == 0 || n > cap) return HD_EINVAL;
  /* USERNAME is split at the first ':', so a ufrag must not contain one
   * (ice-char is ALPHA / DIGIT / "+" / "/" anyway, RFC 8839 §5.4). */
  if (!allow_colon && memchr(src, ':', n)) return HD_EINVAL;
  memcpy(dst, src, n);
  dst[n] = 0;
  *dlen = n;
  return 0;
}

/* Validates all credentials before touching the agent so a failure leaves it unchanged. */
static int set_creds(hd_ice_t *ice, const char *lu, const char *lp, const char *ru) {
  hd_ice_t tmp;
  if (!lu || !lp) return HD_EINVAL;
  if (copy_cred(tmp.local_ufrag, &tmp.local_ufrag_len, HD_ICE_MAX_UFRAG, lu, 0)) return HD_EINVAL;
  if (copy_cred(tmp.local_pwd, &tmp.local_pwd_len, HD_ICE_MAX_PWD, lp, 1)) return HD_EINVAL;
  tmp.remote_ufrag[0] = 0;
  tmp.remote_ufrag_len = 0;
  if (ru && copy_cred(tmp.remote_ufrag, &tmp.remote_ufrag_len, HD_ICE_MAX_UFRAG, ru, 0)) return HD_EINVAL;
  memcpy(ice->local_ufrag, tmp.local_ufrag, tmp.local_ufrag_len + 1);
  memcpy(ice->local_pwd, tmp.local_pwd, tmp.local_pwd_len + 1);
  memcpy(ice->remote_ufrag, tmp.remote_ufrag, tmp.remote_ufrag_len + 1);
  ice->local_ufrag_len = tmp.local_ufrag_len;
  ice->local_pwd_len = tmp.local_pwd_len;
  ice->remote_ufrag_len = tmp.remote_ufrag_len;
  return 0;
}

int hd_ice_init(hd_ice_t *ice, const char *local_ufrag, const char *local_pwd, const char *remote_ufrag) {
  if (!ice) return HD_EINVAL;
  memset(ice, 0, sizeof *ice);
  int rc = set_creds(ice, local_ufrag, local_pwd, remote_ufrag);
  if (rc) return rc;
  ice->state = HD_ICE_NEW;
  ice->start = -1;
  ice->consent_timeout = HD_ICE_CONSENT_TIMEOUT;
  ice->connect_timeout = HD_ICE_CONNECT_TIMEOUT;
  /* A lite agent cannot become controlling (§6.1.1), so it always "wins" the
   * tie-break of §7.3.1.1 and answers a conflicting peer with 487. */
  ice->tie_breaker = UINT64_MAX;
  ice->selected = -1;
  return 0;
}

void hd_ice_start(hd_ice_t *ice, hd_time_t now) {
  if (ice && ice->start < 0) ice->start = now;
}

int hd_ice_set_remote_ufrag(hd_ice_t *ice, const char *remote_ufrag) {
  if (!ice || !remote_ufrag) return HD_EINVAL;
  size_t n;
  char tmp[HD_ICE_MAX_UFRAG + 1];
  if (copy_cred(tmp, &n, HD_ICE_MAX_UFRAG, remote_ufrag, 0)) return HD_EINVAL;
  memcpy(ice->remote_ufrag, tmp, n + 1);
  ice->remote_ufrag_len = n;
  return 0;
}

int hd_ice_restart(hd_ice_t *ice, const char *local_ufrag, const char *local_pwd, const char *remote_ufrag) {
  if (!ice) return HD_EINVAL;
  if (ice->state == HD_ICE_FAILED) return HD_ECLOSED;
  return set_creds(ice, local_ufrag, local_pwd, remote_ufrag);
}

static int addr_ok(const struct sockaddr *sa, socklen_t len) {
  if (!sa) return 0;
  if (sa->sa_family == AF_INET) return len >= (socklen_t)sizeof(struct sockaddr_in);
  if (sa->sa_family == AF_INET6) return len >= (socklen_t)sizeof(struct sockaddr_in6);
  return 0;
}

/* Address equality on family, port and IP (and IPv6 scope), ignoring padding. */
static int addr_eq(const struct sockaddr_storage *a, const struct sockaddr *b) {
  if (a->ss_family != b->sa_family) return 0;
  if (b->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)a, *y = (const struct sockaddr_in *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a, *y = (const struct sockaddr_in6 *)b;
  return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
         memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

/* Finds `from` in the table or claims a slot for it; when the table is full
 * the least recently checked address that is not selected is evicted (the cap
 * keeps a peer spraying checks from many ports from growing our state). */
static int remote_slot(hd_ice_t *ice, const struct sockaddr *from, socklen_t fromlen, int *is_new) {
  *is_new = 0;
  for (size_t i = 0; i < ice->n_remotes; i++)
    if (addr_eq(&ice->remotes[i].addr, from)) return (int)i;
  *is_new = 1;
  if (ice->n_remotes < HD_ICE_MAX_REMOTE) return (int)ice->n_remotes;
  int victim = -1;
  for (size_t i = 0; i < ice->n_remotes; i++) {
    if ((int)i == ice->selected) continue;
    if (victim < 0 || ice->remotes[i].last_check < ice->remotes[victim].last_check) victim = (int)i;
  }
  return victim; /* never -1 since HD_ICE_MAX_REMOTE > 1 */
}

/* Applies the connect and consent deadlines at `now`. */
static void expire(hd_ice_t *ice, hd_time_t now) {
  if (ice->state == HD_ICE_FAILED) return;
  if (ice->start < 0) ice->start = now;
  if (ice->state == HD_ICE_NEW) {
    if (now >= add_sat(ice->start, ice->connect_timeout)) ice->state = HD_ICE_FAILED;
    return;
  }
  if (ice->selected < 0) { /* cannot happen while CONNECTED; be safe */
    ice->state = HD_ICE_FAILED;
    return;
  }
  if (now < add_sat(ice->remotes[ice->selected].last_check, ice->consent_timeout)) return;
  /* The tentative (unnominated) path went quiet: if the peer still checks
   * another address, follow it rather than drop a live session. A nominated
   * path is the peer's explicit choice; its consent loss ends the session. */
  if (!ice->nominated) {
    int best = -1;
    for (size_t i = 0; i < ice->n_remotes; i++) {
      if (now >= add_sat(ice->remotes[i].last_check, ice->consent_timeout)) continue;
      if (best < 0 || ice->remotes[i].last_check > ice->remotes[best].last_check) best = (int)i;
    }
    if (best >= 0) {
      ice->selected = best;
      return;
    }
  }
  ice->state = HD_ICE_FAILED;
}

/* Error response (§7.3.1.1 487, RFC 8489 §6.3.1.1 420), integrity-protected
 * with our password because the request authenticated. */
static int build_error(hd_ice_t *ice, const hd_stun_msg_t *req, int code, uint8_t *resp, size_t cap,
                       size_t *resp_len) {
  hd_stun_builder_t b;
  hd_stun_build_start(&b, resp, cap, HD_STUN_BINDING_ERROR, req->txid);
  hd_stun_add_error_code(&b, code, NULL);
  if (code == HD_STUN_ERR_UNKNOWN_ATTRIBUTE) hd_stun_add_unknown_attributes(&b, req->unknown, req->n_unknown);
  int n = hd_stun_build_finish(&b, (const uint8_t *)ice->local_pwd, ice->local_pwd_len, 1);
  if (n < 0) return n;
  *resp_len = (size_t)n;
  return 1;
}

int hd_ice_feed(hd_ice_t *ice, const uint8_t *pkt, size_t len, const struct sockaddr *from, socklen_t fromlen,
                hd_time_t now, uint8_t *resp, size_t resp_cap, size_t *resp_len) {
  if (!ice || !pkt || !resp || !resp_len || !addr_ok(from, fromlen)) return HD_EINVAL;
  expire(ice, now);
  if (ice->state == HD_ICE_FAILED) return HD_ECLOSED;

  hd_stun_msg_t m;
  if (!hd_stun_is_stun(pkt, len)) {
    ice->n_bad++;
    return HD_EPROTO;
  }
  int rc = hd_stun_parse(&m, pkt, len);
  if (rc) {
    ice->n_bad++;
    return rc;
  }
  /* RFC 8489 §7.3: a FINGERPRINT that does not match means "not STUN". */
  if ((m.present & HD_STUN_HAS_FINGERPRINT) && !m.fingerprint_ok) {
    ice->n_bad++;
    return HD_EAUTH;
  }
  if (m.cls != HD_STUN_CLASS_REQUEST) return 0; /* indications (keepalives) and responses */
  if (m.method != HD_STUN_METHOD_BINDING) {
    ice->n_bad++;
    return HD_EUNSUPPORTED;
  }
  /* §7.3: checks must carry short-term credentials. Unauthenticated garbage
   * is dropped silently rather than answered (no reflection). */
  if (!(m.present & HD_STUN_HAS_USERNAME) || !(m.present & HD_STUN_HAS_MESSAGE_INTEGRITY)) {
    ice->n_bad++;
    return HD_EPROTO;
  }
  const char *lu, *ru;
  size_t lul, rul;
  if (hd_stun_username_split(&m, &lu, &lul, &ru, &rul) || lul != ice->local_ufrag_len ||
      memcmp(lu, ice->local_ufrag, lul) != 0 ||
      (ice->remote_ufrag_len && (rul != ice->remote_ufrag_len || memcmp(ru, ice->remote_ufrag, rul) != 0))) {
    ice->n_auth_fail++;
    return HD_EAUTH;
  }
  rc = hd_stun_check_integrity(&m, pkt, len, (const uint8_t *)ice->local_pwd, ice->local_pwd_len);
  if (rc) {
    ice->n_auth_fail++;
    return rc == HD_ECRYPTO ? rc : HD_EAUTH;
  }

  /* Authenticated from here on: errors get integrity-protected responses. */
  if (m.n_unknown) return build_error(ice, &m, HD_STUN_ERR_UNKNOWN_ATTRIBUTE, resp, resp_cap, resp_len);
  if (m.present & HD_STUN_HAS_ICE_CONTROLLED) {
    /* §7.3.1.1: we are controlled and so is the peer. Our tie-breaker is the
     * maximum, so we keep our role and tell the peer to switch. */
    return build_error(ice, &m, HD_STUN_ERR_ROLE_CONFLICT, resp, resp_cap, resp_len);
  }

  /* Build the response before changing state so a too-small buffer leaves
   * the agent untouched. */
  hd_stun_builder_t b;
  hd_stun_build_start(&b, resp, resp_cap, HD_STUN_BINDING_SUCCESS, m.txid);
  hd_stun_add_xor_mapped_address(&b, from, fromlen);
  int n = hd_stun_build_finish(&b, (const uint8_t *)ice->local_pwd, ice->local_pwd_len, 1);
  if (n < 0) return n;

  int is_new;
  int idx = remote_slot(ice, from, fromlen, &is_new);
  hd_ice_remote_t *r = &ice->remotes[idx];
  if (is_new) {
    memset(r, 0, sizeof *r);
    memcpy(&r->addr, from, (size_t)fromlen < sizeof r->addr ? (size_t)fromlen : sizeof r->addr);
    r->addrlen = from->sa_family == AF_INET ? (socklen_t)sizeof(struct sockaddr_in)
                                            : (socklen_t)sizeof(struct sockaddr_in6);
    if ((size_t)idx == ice->n_remotes) ice->n_remotes++;
  }
  r->priority = (m.present & HD_STUN_HAS_PRIORITY) ? m.priority : 0;
  r->last_check = now;
  if (m.present & HD_STUN_HAS_USE_CANDIDATE) {
    /* A later nomination replaces an earlier one: path change / ICE restart. */
    if (ice->selected >= 0) ice->remotes[ice->selected].nominated = 0;
    r->nominated = 1;
    ice->selected = idx;
    ice->nominated = 1;
  } else if (ice->selected < 0) {
    ice->selected = idx; /* tentative: lets media flow before nomination */
  }
  ice->state = HD_ICE_CONNECTED;
  ice->n_checks++;
  *resp_len = (size_t)n;
  return 1;
}

const struct sockaddr *hd_ice_selected(const hd_ice_t *ice, socklen_t *len) {
  if (!ice || ice->state == HD_ICE_FAILED || ice->selected < 0) return NULL;
  const hd_ice_remote_t *r = &ice->remotes[ice->selected];
  if (len) *len = r->addrlen;
  return (const struct sockaddr *)&r->addr;
}

int hd_ice_is_nominated(const hd_ice_t *ice) {
  return ice && ice->state != HD_ICE_FAILED && ice->selected >= 0 && ice->remotes[ice->selected].nominated;
}

int hd_ice_state(const hd_ice_t *ice) { return ice ? ice->state : HD_ICE_FAILED; }

hd_time_t hd_ice_next_timeout(const hd_ice_t *ice) {
  if (!ice || ice->state == HD_ICE_FAILED) return HD_TIME_NEVER;
  if (ice->start < 0) return 0; /* unanchored: ask the owner to call handle_timeout now */
  if (ice->state == HD_ICE_NEW) return add_sat(ice->start, ice->connect_timeout);
  if (ice->selected < 0) return 0;
  return add_sat(ice->remotes[ice->selected].last_check, ice->consent_timeout);
}

int hd_ice_handle_timeout(hd_ice_t *ice, hd_time_t now) {
  if (!ice) return HD_EINVAL;
  expire(ice, now);
  return ice->state == HD_ICE_FAILED ? HD_ETIMEDOUT : 0;
}

void hd_ice_free(hd_ice_t *ice) {
  if (!ice) return;
  /* Nothing is heap-allocated; scrub the password so a freed session does not
   * leave credentials lying around in a reused struct. */
  memset(ice->local_pwd, 0, sizeof ice->local_pwd);
  ice->local_pwd_len = 0;
  ice->state = HD_ICE_FAILED;
  ice->selected = -1;
}
