/* AEAD_AES_128_GCM SRTP/SRTCP (RFC 7714), with the stream bookkeeping of
 * RFC 3711 (ROC, index estimation, replay windows), on proto/aes_gcm
 * (AES-NI/PCLMULQDQ, or OpenSSL EVP as the reference and fallback).
 *
 * Why not libsrtp: Debian's libsrtp2 is built on NSS, which sets up a PK11
 * context and takes mutexes per packet (docs/performance.md). Here each
 * direction keeps one keyed AEAD object per key, keyed once; a packet only
 * supplies the IV, so there is no allocation or lock per packet. Behaviour (index estimation, replay window,
 * SRTCP index counting) follows libsrtp's so that output is byte-identical to it (tested). */
#include "proto/srtp_gcm.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "proto/aes_gcm.h"
#include "proto/srtp.h"

#define TAG HD_SRTP_GCM_TAG_LEN
#define RTP_WIN HD_SRTP_REPLAY_WINDOW
#define RTCP_WIN 128          /* SRTCP replay window (libsrtp's fixed one; RTCP is sparse) */
#define SRTCP_TRAILER 4       /* E flag || 31-bit SRTCP index (RFC 7714 §9.1) */
#define SRTCP_MAX 0x7fffffffu /* last SRTCP index before the key must change (RFC 3711 §9.2) */

_Static_assert((RTP_WIN & (RTP_WIN - 1)) == 0 && RTP_WIN % 64 == 0, "window is a power of two");

/* One SSRC's state in one direction. RTP: highest packet index seen (ROC << 16 |
 * SEQ, RFC 3711 §3.3.1) and a ring of received/sent indices (§3.3.2). RTCP:
 * outbound, the last SRTCP index sent; inbound, the highest accepted and its ring. */
typedef struct {
  uint32_t ssrc;
  uint64_t used; /* LRU stamp */
  uint64_t rtp_top;
  uint64_t rtcp_top;
  uint64_t rtcp_bits[RTCP_WIN / 64];
  uint64_t rtp_bits[RTP_WIN / 64];
} stream_t;

/* What is kept of a replaced stream: its highest indices, so that the SSRC, if
 * it comes back, continues from there (no packet index is used twice under one
 * key: GCM must never see an IV twice, RFC 7714 §8.1 / §13). */
typedef struct {
  uint32_t ssrc;
  uint32_t rtcp_top;
  uint64_t rtp_top;
} retired_t;

typedef struct {
  stream_t *v;
  uint32_t n, cap, last; /* last: index of the last hit, checked first */
  uint64_t tick;
  retired_t *r; /* allocated at the first replacement */
  uint32_t rn, rcap, rnext;
  int outbound;
} table_t;

typedef struct {
  hd_aes_gcm_t *rtp, *rtcp; /* keyed with the session keys, IV given per packet */
  uint8_t rtp_salt[12], rtcp_salt[12];
  table_t t;
} dir_t;

struct hd_srtp_gcm {
  dir_t out, in;
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *g_ecb;

/* Explicit fetch once per process (key derivation only): no implicit fetch (and
 * its store lock) per context. */
static void fetch_ciphers(void) { g_ecb = EVP_CIPHER_fetch(NULL, "AES-128-ECB", NULL); }

static inline uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void wr32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

int hd_srtp_rtp_header_len(const uint8_t *p, size_t len) {
  if (len < 12 || (p[0] >> 6) != 2) return HD_EPROTO;
  size_t h = 12 + 4 * (size_t)(p[0] & 0x0f);
  if (p[0] & 0x10) {
    if (len < h + 4) return HD_EPROTO;
    h += 4 + 4 * ((size_t)p[h + 2] << 8 | p[h + 3]);
  }
  if (h > len) return HD_EPROTO;
  return (int)h;
}

/* ---- key derivation: RFC 3711 §4.3.1 with the AES-CM PRF (§4.3.3), KDR 0 so r = 0.
 * x = (label || r) XOR master_salt, right-aligned in 112 bits; the PRF input is
 * x * 2^16. RFC 7714 §11: the 96-bit master salt is used as the leading 96 of
 * those 112 bits (libsrtp zero-pads it on the right; the known-answer test pins it). */
static int kdf(EVP_CIPHER_CTX *ecb, const uint8_t master[HD_SRTP_GCM_MASTER_LEN], uint8_t label, uint8_t *out,
               size_t n) {
  uint8_t in[16] = {0}, ks[16];
  memcpy(in, master + 16, 12);
  in[7] ^= label;
  int outl = 0;
  if (EVP_EncryptInit_ex(ecb, g_ecb, NULL, master, NULL) != 1 || EVP_CIPHER_CTX_set_padding(ecb, 0) != 1 ||
      EVP_EncryptUpdate(ecb, ks, &outl, in, 16) != 1 || outl != 16)
    return HD_ECRYPTO;
  memcpy(out, ks, n);
  OPENSSL_cleanse(ks, sizeof ks);
  return 0;
}

static int derive(const uint8_t master[HD_SRTP_GCM_MASTER_LEN], hd_srtp_gcm_session_keys_t *k) {
  EVP_CIPHER_CTX *ecb = EVP_CIPHER_CTX_new();
  if (!ecb) return HD_ENOMEM;
  int rc = 0;
  /* labels (RFC 3711 §4.3.2): 0 SRTP key, 2 SRTP salt, 3 SRTCP key, 5 SRTCP salt;
   * 1 and 4 (auth keys) are unused by an AEAD transform (RFC 7714 §11). */
  if (kdf(ecb, master, 0x00, k->rtp_key, 16) < 0 || kdf(ecb, master, 0x02, k->rtp_salt, 12) < 0 ||
      kdf(ecb, master, 0x03, k->rtcp_key, 16) < 0 || kdf(ecb, master, 0x05, k->rtcp_salt, 12) < 0)
    rc = HD_ECRYPTO;
  EVP_CIPHER_CTX_free(ecb);
  return rc;
}

static int dir_init(dir_t *d, const hd_srtp_gcm_session_keys_t *k) {
  int rc = hd_aes_gcm_new(&d->rtp, k->rtp_key, HD_AES_GCM_AUTO);
  if (rc == 0) rc = hd_aes_gcm_new(&d->rtcp, k->rtcp_key, HD_AES_GCM_AUTO);
  if (rc < 0) return rc;
  memcpy(d->rtp_salt, k->rtp_salt, 12);
  memcpy(d->rtcp_salt, k->rtcp_salt, 12);
  return 0;
}

static void dir_free(dir_t *d) {
  hd_aes_gcm_free(d->rtp);
  hd_aes_gcm_free(d->rtcp);
  free(d->t.v);
  free(d->t.r);
  OPENSSL_cleanse(d, sizeof *d); /* salts */
}

int hd_srtp_gcm_new_session(hd_srtp_gcm_t **out, const hd_srtp_gcm_session_keys_t *local,
                            const hd_srtp_gcm_session_keys_t *remote) {
  if (!out || !local || !remote) return HD_EINVAL;
  *out = NULL;
  if (pthread_once(&g_once, fetch_ciphers) != 0 || !g_ecb) return HD_ECRYPTO;
  hd_srtp_gcm_t *g = calloc(1, sizeof *g);
  if (!g) return HD_ENOMEM;
  int rc = dir_init(&g->out, local);
  if (rc == 0) rc = dir_init(&g->in, remote);
  if (rc < 0) {
    hd_srtp_gcm_free(g);
    return rc;
  }
  g->out.t.outbound = 1;
  *out = g;
  return 0;
}

int hd_srtp_gcm_new(hd_srtp_gcm_t **out, const uint8_t *local_master, const uint8_t *remote_master) {
  if (!out || !local_master || !remote_master) return HD_EINVAL;
  *out = NULL;
  if (pthread_once(&g_once, fetch_ciphers) != 0 || !g_ecb) return HD_ECRYPTO;
  hd_srtp_gcm_session_keys_t lk, rk;
  int rc = derive(local_master, &lk);
  if (rc == 0) rc = derive(remote_master, &rk);
  if (rc == 0) rc = hd_srtp_gcm_new_session(out, &lk, &rk);
  OPENSSL_cleanse(&lk, sizeof lk);
  OPENSSL_cleanse(&rk, sizeof rk);
  return rc;
}

void hd_srtp_gcm_free(hd_srtp_gcm_t *g) {
  if (!g) return;
  dir_free(&g->out);
  dir_free(&g->in);
  free(g);
}

int hd_srtp_gcm_stream_count(const hd_srtp_gcm_t *g, int inbound) {
  return g ? (int)(inbound ? g->in.t.n : g->out.t.n) : 0;
}

/* ---- stream table: linear scan (a transport has a handful of SSRCs), the last
 * hit first; grows on demand up to HD_SRTP_GCM_MAX_STREAMS, then the least
 * recently used stream is replaced. */
static stream_t *find(table_t *t, uint32_t ssrc) {
  stream_t *s = NULL;
  if (t->last < t->n && t->v[t->last].ssrc == ssrc) {
    s = &t->v[t->last];
  } else {
    for (uint32_t i = 0; i < t->n; i++)
      if (t->v[i].ssrc == ssrc) {
        s = &t->v[i];
        t->last = i;
        break;
      }
  }
  if (s) s->used = ++t->tick;
  return s;
}

/* Remembers a stream being replaced. Full list: inbound overwrites the oldest
 * entry (a peer's new SSRC must get through; what is lost is replay state of a
 * long-gone SSRC); outbound refuses (HD_ENOSPC), as forgetting a ROC could make
 * us reuse an IV. */
static int retire(table_t *t, const stream_t *s) {
  if (t->rn == t->rcap) {
    if (t->rcap < HD_SRTP_GCM_MAX_RETIRED) {
      uint32_t nc = t->rcap ? t->rcap * 4 : 16;
      if (nc > HD_SRTP_GCM_MAX_RETIRED) nc = HD_SRTP_GCM_MAX_RETIRED;
      retired_t *r = realloc(t->r, nc * sizeof *r);
      if (!r) return HD_ENOMEM;
      t->r = r;
      t->rcap = nc;
    } else if (t->outbound) {
      return HD_ENOSPC;
    }
  }
  uint32_t i;
  if (t->rn < t->rcap) {
    i = t->rn++;
  } else {
    i = t->rnext;
    t->rnext = (t->rnext + 1) % t->rcap;
  }
  t->r[i] = (retired_t){.ssrc = s->ssrc, .rtcp_top = (uint32_t)s->rtcp_top, .rtp_top = s->rtp_top};
  return 0;
}

/* Adds a stream for ssrc (replacing the least recently used one when full), and
 * restores its indices if it was retired. Returns NULL with *err set. */
static stream_t *insert(table_t *t, uint32_t ssrc, int *err) {
  retired_t back = {0};
  int found = 0;
  for (uint32_t j = 0; j < t->rn; j++)
    if (t->r[j].ssrc == ssrc) { /* taken out first: frees its place for the one replaced now */
      back = t->r[j];
      t->r[j] = t->r[--t->rn];
      found = 1;
      break;
    }
  uint32_t i = 0;
  int rc = 0;
  if (t->n < t->cap) {
    i = t->n++;
  } else if (t->cap < HD_SRTP_GCM_MAX_STREAMS) {
    uint32_t nc = t->cap ? t->cap * 2 : 4;
    if (nc > HD_SRTP_GCM_MAX_STREAMS) nc = HD_SRTP_GCM_MAX_STREAMS;
    stream_t *v = realloc(t->v, nc * sizeof *v);
    if (!v) {
      rc = HD_ENOMEM;
    } else {
      t->v = v;
      t->cap = nc;
      i = t->n++;
    }
  } else {
    i = 0;
    for (uint32_t j = 1; j < t->n; j++)
      if (t->v[j].used < t->v[i].used) i = j;
    rc = retire(t, &t->v[i]);
  }
  if (rc < 0) {
    if (found) t->r[t->rn++] = back; /* its place is still free */
    *err = rc;
    return NULL;
  }
  stream_t *s = &t->v[i];
  memset(s, 0, sizeof *s);
  s->ssrc = ssrc;
  s->used = ++t->tick;
  t->last = i;
  /* Back from retirement: continue after its highest indices. Its window bits
   * are gone, so indices up to a window behind count as unseen. */
  s->rtp_top = back.rtp_top;
  s->rtcp_top = back.rtcp_top;
  return s;
}

/* The state an unknown SSRC is checked against before it authenticates: fresh,
 * or the highest indices it had if it was retired. */
static void peek(const table_t *t, uint32_t ssrc, stream_t *v) {
  memset(v, 0, sizeof *v);
  v->ssrc = ssrc;
  for (uint32_t j = 0; j < t->rn; j++)
    if (t->r[j].ssrc == ssrc) {
      v->rtp_top = t->r[j].rtp_top;
      v->rtcp_top = t->r[j].rtcp_top;
      break;
    }
}

/* ---- replay windows (RFC 3711 §3.3.2): bit (index mod w) of a ring says whether
 * that index was seen; top is the highest index seen. w is a power of two. */
enum { WIN_NEW = 0, WIN_SEEN = 1, WIN_OLD = -1 };

static int win_check(const uint64_t *bits, uint64_t w, uint64_t top, uint64_t idx) {
  if (idx > top) return WIN_NEW;
  if (top - idx >= w) return WIN_OLD;
  uint64_t b = idx & (w - 1);
  return (bits[b >> 6] >> (b & 63)) & 1 ? WIN_SEEN : WIN_NEW;
}

static void win_add(uint64_t *bits, uint64_t w, uint64_t *top, uint64_t idx) {
  if (idx > *top) {
    if (idx - *top >= w) {
      memset(bits, 0, (size_t)(w / 8));
    } else {
      for (uint64_t i = *top + 1; i < idx; i++) {
        uint64_t b = i & (w - 1);
        bits[b >> 6] &= ~(1ull << (b & 63));
      }
    }
    *top = idx;
  }
  uint64_t b = idx & (w - 1);
  bits[b >> 6] |= 1ull << (b & 63);
}

/* RFC 3711 §3.3.1 / Appendix A: the index closest to the highest seen, as ROC-1,
 * ROC or ROC+1 with this SEQ. A guess below ROC 0 stays at ROC 0 (libsrtp does
 * the same while the highest index is below 2^15). */
static uint64_t estimate(uint64_t top, uint16_t seq) {
  uint32_t roc = (uint32_t)(top >> 16), v = roc;
  int s_l = (int)(top & 0xffff), s = seq;
  if (s_l < 32768) {
    if (s - s_l > 32768 && roc > 0) v = roc - 1;
  } else if (s_l - 32768 > s) {
    v = roc + 1;
  }
  return (uint64_t)v << 16 | seq;
}

/* RFC 7714 §8.1: IV = (0x0000 || SSRC || ROC || SEQ) XOR salt. */
static void rtp_iv(uint8_t iv[12], const uint8_t salt[12], const uint8_t *pkt, uint64_t idx) {
  iv[0] = iv[1] = 0;
  memcpy(iv + 2, pkt + 8, 4);
  wr32(iv + 6, (uint32_t)(idx >> 16));
  iv[10] = (uint8_t)(idx >> 8);
  iv[11] = (uint8_t)idx;
  for (int i = 0; i < 12; i++)
    iv[i] ^= salt[i];
}

/* RFC 7714 §9.1: IV = (0x0000 || SSRC || 0x0000 || 0 || SRTCP index) XOR salt. */
static void rtcp_iv(uint8_t iv[12], const uint8_t salt[12], const uint8_t *pkt, uint32_t idx) {
  iv[0] = iv[1] = 0;
  memcpy(iv + 2, pkt + 4, 4);
  iv[6] = iv[7] = 0;
  wr32(iv + 8, idx & SRTCP_MAX);
  for (int i = 0; i < 12; i++)
    iv[i] ^= salt[i];
}

int hd_srtp_gcm_protect(hd_srtp_gcm_t *g, uint8_t *pkt, size_t len, size_t cap) {
  if (!g || !pkt || cap < len) return HD_EINVAL;
  int h = hd_srtp_rtp_header_len(pkt, len);
  if (h < 0) return HD_EPROTO;
  if (cap - len < TAG) return HD_ENOSPC;
  if (len > INT_MAX - TAG) return HD_EINVAL;
  uint32_t ssrc = rd32(pkt + 8);
  uint16_t seq = (uint16_t)(pkt[2] << 8 | pkt[3]);
  stream_t *s = find(&g->out.t, ssrc);
  int err = 0;
  if (!s && !(s = insert(&g->out.t, ssrc, &err))) return err;
  /* RFC 3711 §3.3.1: the sender's ROC, estimated as the receiver will. A repeat
   * of an index already sent is allowed (plain NACK retransmission re-protects
   * the same packet: same index, same bytes); one older than the window is not. */
  uint64_t idx = estimate(s->rtp_top, seq);
  int w = win_check(s->rtp_bits, RTP_WIN, s->rtp_top, idx);
  if (w == WIN_OLD) return HD_EREPLAY;
  if (w == WIN_NEW) win_add(s->rtp_bits, RTP_WIN, &s->rtp_top, idx);
  uint8_t iv[12];
  rtp_iv(iv, g->out.rtp_salt, pkt, idx);
  /* RFC 7714 §8.2: AAD is the header through CSRCs and extension. */
  int rc = hd_aes_gcm_seal(g->out.rtp, iv, pkt, (size_t)h, NULL, 0, pkt + h, len - (size_t)h, pkt + len);
  return rc < 0 ? rc : (int)(len + TAG);
}

int hd_srtp_gcm_unprotect(hd_srtp_gcm_t *g, uint8_t *pkt, size_t len) {
  if (!g || !pkt) return HD_EINVAL;
  if (len < TAG || len > INT_MAX) return HD_EPROTO;
  size_t n = len - TAG;
  int h = hd_srtp_rtp_header_len(pkt, n);
  if (h < 0) return HD_EPROTO;
  uint32_t ssrc = rd32(pkt + 8);
  uint16_t seq = (uint16_t)(pkt[2] << 8 | pkt[3]);
  stream_t *s = find(&g->in.t, ssrc), fresh;
  const stream_t *v = s;
  if (!s) { /* a new stream starts at ROC 0 (RFC 3711 §3.3.1), a retired one where it was */
    peek(&g->in.t, ssrc, &fresh);
    v = &fresh;
  }
  uint64_t idx = estimate(v->rtp_top, seq);
  if (win_check(v->rtp_bits, RTP_WIN, v->rtp_top, idx) != WIN_NEW) return HD_EREPLAY;
  uint8_t iv[12];
  rtp_iv(iv, g->in.rtp_salt, pkt, idx);
  int rc = hd_aes_gcm_open(g->in.rtp, iv, pkt, (size_t)h, NULL, 0, pkt + h, n - (size_t)h, pkt + n);
  if (rc < 0) return rc;
  /* Only an authenticated packet creates a stream (forged SSRCs cost nothing). */
  int err = 0;
  if (!s && !(s = insert(&g->in.t, ssrc, &err))) return err;
  win_add(s->rtp_bits, RTP_WIN, &s->rtp_top, idx);
  return (int)n;
}

int hd_srtp_gcm_protect_rtcp(hd_srtp_gcm_t *g, uint8_t *pkt, size_t len, size_t cap) {
  if (!g || !pkt || cap < len) return HD_EINVAL;
  if (len < 8 || (pkt[0] >> 6) != 2) return HD_EPROTO; /* RFC 3550 §6.4: header + sender SSRC */
  if (cap - len < TAG + SRTCP_TRAILER) return HD_ENOSPC;
  if (len > INT_MAX - TAG - SRTCP_TRAILER) return HD_EINVAL;
  uint32_t ssrc = rd32(pkt + 4);
  stream_t *s = find(&g->out.t, ssrc);
  int err = 0;
  if (!s && !(s = insert(&g->out.t, ssrc, &err))) return err;
  if (s->rtcp_top >= SRTCP_MAX) return HD_ECRYPTO; /* index space used up: re-key */
  uint32_t idx = (uint32_t)++s->rtcp_top;          /* the first SRTCP index is 1, as libsrtp's */
  /* RFC 7714 §9.1: E=1 (encrypted) || index; AAD = first 8 octets || E || index;
   * the packet ends ciphertext || tag || E||index. */
  uint8_t *trailer = pkt + len + TAG;
  wr32(trailer, 0x80000000u | idx);
  uint8_t iv[12];
  rtcp_iv(iv, g->out.rtcp_salt, pkt, idx);
  int rc = hd_aes_gcm_seal(g->out.rtcp, iv, pkt, 8, trailer, SRTCP_TRAILER, pkt + 8, len - 8, pkt + len);
  return rc < 0 ? rc : (int)(len + TAG + SRTCP_TRAILER);
}

int hd_srtp_gcm_unprotect_rtcp(hd_srtp_gcm_t *g, uint8_t *pkt, size_t len) {
  if (!g || !pkt) return HD_EINVAL;
  if (len < 8 + TAG + SRTCP_TRAILER || len > INT_MAX) return HD_EPROTO;
  size_t n = len - TAG - SRTCP_TRAILER;
  if ((pkt[0] >> 6) != 2) return HD_EPROTO;
  const uint8_t *trailer = pkt + len - SRTCP_TRAILER;
  uint32_t t = rd32(trailer);
  /* E clear = unencrypted SRTCP (RFC 7714 §9.2): we always encrypt and so does
   * every browser; not accepted (as the libsrtp path). */
  if (!(t & 0x80000000u)) return HD_EPROTO;
  uint32_t idx = t & SRTCP_MAX;
  uint32_t ssrc = rd32(pkt + 4);
  stream_t *s = find(&g->in.t, ssrc), fresh;
  const stream_t *v = s;
  if (!s) {
    peek(&g->in.t, ssrc, &fresh);
    v = &fresh;
  }
  if (win_check(v->rtcp_bits, RTCP_WIN, v->rtcp_top, idx) != WIN_NEW) return HD_EREPLAY;
  uint8_t iv[12];
  rtcp_iv(iv, g->in.rtcp_salt, pkt, idx);
  int rc = hd_aes_gcm_open(g->in.rtcp, iv, pkt, 8, trailer, SRTCP_TRAILER, pkt + 8, n - 8, pkt + n);
  if (rc < 0) return rc;
  int err = 0;
  if (!s && !(s = insert(&g->in.t, ssrc, &err))) return err;
  win_add(s->rtcp_bits, RTCP_WIN, &s->rtcp_top, idx);
  return (int)n;
}
