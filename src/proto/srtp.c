/* SRTP/SRTCP (RFC 3711) with AES-CM + HMAC-SHA1-80 (§4.1.1, §4.2.1) and AES-GCM
 * (RFC 7714), keyed from DTLS-SRTP (RFC 5764 §4.2), as a pure in-place packet
 * transform.
 *
 * AES-GCM runs on our own engine (proto/srtp_gcm.h, proto/aes_gcm.h) unless
 * HD_SRTP_ENGINE=libsrtp; AES-CM, and GCM with that variable, run on libsrtp2:
 *
 * Two libsrtp sessions per transport: an outbound one with an ssrc_any_outbound
 * template (every SSRC we send gets its own stream and ROC, RFC 3711 §3.3.1) and
 * an inbound one with ssrc_any_inbound (streams are cloned from the template only
 * after a packet authenticates, so forged SSRCs cost nothing). Replay protection
 * (RFC 3711 §3.3.2) stays on, with a window wide enough for reordered video. */
#include "proto/srtp.h"

#include <limits.h>
#include <pthread.h>
#include <srtp2/srtp.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "proto/srtp_gcm.h"

struct hd_srtp {
  hd_srtp_gcm_t *gcm; /* native engine (GCM profile); the libsrtp sessions are then unused */
  srtp_t out;
  srtp_t in;
  int profile;
  size_t rtp_trailer;  /* bytes protect appends: auth tag */
  size_t rtcp_trailer; /* E flag + SRTCP index + auth tag */
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_init_rc = HD_ECRYPTO;

static void do_init(void) { g_init_rc = srtp_init() == srtp_err_status_ok ? 0 : HD_ECRYPTO; }

int hd_srtp_global_init(void) {
  if (pthread_once(&g_once, do_init) != 0) return HD_ECRYPTO;
  return g_init_rc;
}

int hd_srtp_key_len(int profile) {
  switch (profile) {
  case HD_SRTP_AES128_CM_SHA1_80: return SRTP_AES_ICM_128_KEY_LEN_WSALT; /* 16 + 14 */
  case HD_SRTP_AEAD_AES_128_GCM: return SRTP_AES_GCM_128_KEY_LEN_WSALT;  /* 16 + 12 */
  default: return HD_EUNSUPPORTED;
  }
}

static int map_err(srtp_err_status_t st) {
  switch (st) {
  case srtp_err_status_ok: return 0;
  case srtp_err_status_replay_fail:
  case srtp_err_status_replay_old: return HD_EREPLAY;
  case srtp_err_status_auth_fail: return HD_EAUTH;
  case srtp_err_status_bad_param:
  case srtp_err_status_parse_err:
  case srtp_err_status_bad_mki:
  case srtp_err_status_cant_check: /* SRTCP with the E flag clear: not our policy */ return HD_EPROTO;
  case srtp_err_status_alloc_fail: return HD_ENOMEM;
  default: return HD_ECRYPTO;
  }
}

static int make_session(srtp_t *out, int profile, const uint8_t *key, int outbound) {
  srtp_policy_t p;
  memset(&p, 0, sizeof p);
  if (profile == HD_SRTP_AES128_CM_SHA1_80) {
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtp);
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtcp);
  } else {
    srtp_crypto_policy_set_aes_gcm_128_16_auth(&p.rtp);
    srtp_crypto_policy_set_aes_gcm_128_16_auth(&p.rtcp);
  }
  p.ssrc.type = outbound ? ssrc_any_outbound : ssrc_any_inbound;
  p.key = (unsigned char *)key; /* copied by srtp_create */
  p.window_size = HD_SRTP_REPLAY_WINDOW;
  /* Outbound: plain NACK retransmission (no RTX) re-protects the same packet. */
  p.allow_repeat_tx = outbound;
  p.next = NULL;
  return map_err(srtp_create(out, &p));
}

/* HD_SRTP_ENGINE=libsrtp keeps GCM on libsrtp2 (side-by-side benchmarks, and
 * an escape hatch); read at each hd_srtp_new. */
static int use_native(void) {
  const char *e = getenv("HD_SRTP_ENGINE");
  return !(e && strcmp(e, "libsrtp") == 0);
}

const char *hd_srtp_engine(const hd_srtp_t *s) { return s && s->gcm ? "native" : "libsrtp"; }

int hd_srtp_new(hd_srtp_t **out, int profile, const uint8_t *local_key, const uint8_t *remote_key,
                size_t key_len) {
  if (!out || !local_key || !remote_key) return HD_EINVAL;
  int kl = hd_srtp_key_len(profile);
  if (kl < 0) return kl;
  if (key_len != (size_t)kl) return HD_EINVAL;
  int rc = hd_srtp_global_init();
  if (rc < 0) return rc;
  hd_srtp_t *s = calloc(1, sizeof *s);
  if (!s) return HD_ENOMEM;
  s->profile = profile;
  if (profile == HD_SRTP_AEAD_AES_128_GCM && use_native()) {
    rc = hd_srtp_gcm_new(&s->gcm, local_key, remote_key);
    if (rc < 0) {
      free(s);
      return rc;
    }
    *out = s;
    return 0;
  }
  /* srtp_create wants a buffer it may read a little past the salt for some
   * profiles; give it a full-size copy. */
  uint8_t lk[SRTP_MAX_KEY_LEN] = {0}, rk[SRTP_MAX_KEY_LEN] = {0};
  memcpy(lk, local_key, key_len);
  memcpy(rk, remote_key, key_len);
  if ((rc = make_session(&s->out, profile, lk, 1)) < 0) goto fail;
  if ((rc = make_session(&s->in, profile, rk, 0)) < 0) goto fail;
  uint32_t t1 = 0, t2 = 0;
  if (srtp_get_protect_trailer_length(s->out, 0, 0, &t1) != srtp_err_status_ok ||
      srtp_get_protect_rtcp_trailer_length(s->out, 0, 0, &t2) != srtp_err_status_ok ||
      t1 > HD_SRTP_MAX_TRAILER || t2 > HD_SRTP_MAX_TRAILER) {
    rc = HD_ECRYPTO;
    goto fail;
  }
  s->rtp_trailer = t1;
  s->rtcp_trailer = t2;
  memset(lk, 0, sizeof lk);
  memset(rk, 0, sizeof rk);
  *out = s;
  return 0;
fail:
  memset(lk, 0, sizeof lk);
  memset(rk, 0, sizeof rk);
  hd_srtp_free(s);
  return rc < 0 ? rc : HD_ECRYPTO;
}

void hd_srtp_free(hd_srtp_t *s) {
  if (!s) return;
  hd_srtp_gcm_free(s->gcm);
  if (s->out) srtp_dealloc(s->out);
  if (s->in) srtp_dealloc(s->in);
  free(s);
}

/* RFC 3550 §6.4: at least header + sender SSRC, version 2. */
static int rtcp_ok(const uint8_t *p, size_t len) { return len >= 8 && (p[0] >> 6) == 2; }

/* Trailer protect appends (tag, plus the SRTCP index for RTCP), asked of libsrtp. */
static int trailer(hd_srtp_t *s, int rtcp, size_t *out) {
  *out = rtcp ? s->rtcp_trailer : s->rtp_trailer;
  return 0;
}

int hd_srtp_protect(hd_srtp_t *s, uint8_t *pkt, size_t len, size_t cap) {
  if (!s || !pkt || cap < len) return HD_EINVAL;
  if (s->gcm) return hd_srtp_gcm_protect(s->gcm, pkt, len, cap);
  if (hd_srtp_rtp_header_len(pkt, len) < 0) return HD_EPROTO;
  size_t t;
  int rc = trailer(s, 0, &t);
  if (rc < 0) return rc;
  if (len + t > cap) return HD_ENOSPC;
  if (len + t > INT_MAX) return HD_EINVAL;
  int n = (int)len;
  rc = map_err(srtp_protect(s->out, pkt, &n));
  if (rc < 0) return rc;
  if ((size_t)n > cap) return HD_ECRYPTO; /* cannot happen: checked above */
  return n;
}

int hd_srtp_unprotect(hd_srtp_t *s, uint8_t *pkt, size_t len) {
  if (!s || !pkt) return HD_EINVAL;
  if (s->gcm) return hd_srtp_gcm_unprotect(s->gcm, pkt, len);
  size_t t;
  int rc = trailer(s, 0, &t); /* same profile both ways: tag length is symmetric */
  if (rc < 0) return rc;
  if (len < t || hd_srtp_rtp_header_len(pkt, len - t) < 0) return HD_EPROTO;
  if (len > INT_MAX) return HD_EPROTO;
  int n = (int)len;
  rc = map_err(srtp_unprotect(s->in, pkt, &n));
  return rc < 0 ? rc : n;
}

int hd_srtp_protect_rtcp(hd_srtp_t *s, uint8_t *pkt, size_t len, size_t cap) {
  if (!s || !pkt || cap < len) return HD_EINVAL;
  if (s->gcm) return hd_srtp_gcm_protect_rtcp(s->gcm, pkt, len, cap);
  if (!rtcp_ok(pkt, len)) return HD_EPROTO;
  size_t t;
  int rc = trailer(s, 1, &t);
  if (rc < 0) return rc;
  if (len + t > cap) return HD_ENOSPC;
  if (len + t > INT_MAX) return HD_EINVAL;
  int n = (int)len;
  rc = map_err(srtp_protect_rtcp(s->out, pkt, &n));
  if (rc < 0) return rc;
  if ((size_t)n > cap) return HD_ECRYPTO;
  return n;
}

int hd_srtp_unprotect_rtcp(hd_srtp_t *s, uint8_t *pkt, size_t len) {
  if (!s || !pkt) return HD_EINVAL;
  if (s->gcm) return hd_srtp_gcm_unprotect_rtcp(s->gcm, pkt, len);
  size_t t;
  int rc = trailer(s, 1, &t);
  if (rc < 0) return rc;
  if (len < t || !rtcp_ok(pkt, len - t)) return HD_EPROTO;
  if (len > INT_MAX) return HD_EPROTO;
  int n = (int)len;
  rc = map_err(srtp_unprotect_rtcp(s->in, pkt, &n));
  return rc < 0 ? rc : n;
}
