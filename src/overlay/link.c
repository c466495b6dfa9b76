/* The node-to-node link: sealing, opening, replay window, message bodies and
 * reassembly (docs/overlay.md "The link protocol"; link.h says why each
 * choice). */
#include "overlay/link.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"
#include "base/err.h"

uint64_t hd_link_id_hash(const char *id) {
  uint64_t h = 14695981039346656037ull;
  for (const char *p = id; *p; p++)
    h = (h ^ (uint8_t)*p) * 1099511628211ull;
  return h;
}

uint32_t hd_link_sid_hash(const char *sid) {
  uint32_t h = 2166136261u;
  for (const char *p = sid; *p; p++)
    h = (h ^ (uint8_t)*p) * 16777619u;
  return h;
}

/* key(sender -> receiver, epoch) = HMAC-SHA256(secret, "hudong-link-1" 0 sender 0 receiver 0 epoch)[0..16) */
static int derive(const hd_link_self_t *s, const char *from, const char *to, uint64_t epoch,
                  uint8_t key[HD_LINK_KEY_LEN]) {
  uint8_t msg[16 + 2 * HD_LINK_ID_MAX + 8];
  size_t n = 0;
  memcpy(msg, "hudong-link-1", 13);
  n = 13;
  msg[n++] = 0;
  size_t fl = strlen(from), tl = strlen(to);
  memcpy(msg + n, from, fl);
  n += fl;
  msg[n++] = 0;
  memcpy(msg + n, to, tl);
  n += tl;
  msg[n++] = 0;
  hd_put_be64(msg + n, epoch);
  n += 8;
  uint8_t md[32];
  unsigned mdlen = 0;
  if (!HMAC(EVP_sha256(), s->secret, (int)s->secret_len, msg, n, md, &mdlen) || mdlen != 32)
    return HD_ECRYPTO;
  memcpy(key, md, HD_LINK_KEY_LEN);
  return 0;
}

int hd_link_self_init(hd_link_self_t *s, const char *id, const uint8_t *secret, size_t secret_len,
                      uint64_t epoch, int lane) {
  memset(s, 0, sizeof *s);
  if (!id || !id[0] || strlen(id) >= HD_LINK_ID_MAX || !secret_len || secret_len > HD_LINK_SECRET_MAX ||
      lane < 0 || lane >= HD_LINK_LANES)
    return HD_EINVAL;
  snprintf(s->id, sizeof s->id, "%s", id);
  s->id_hash = hd_link_id_hash(id);
  s->epoch = epoch;
  memcpy(s->secret, secret, secret_len);
  s->secret_len = secret_len;
  s->next_seq = ((uint64_t)lane << HD_LINK_LANE_SHIFT) | 1;
  return 0;
}

/* A context keyed for AES-128-GCM (enc or dec); the nonce comes per datagram. */
static EVP_CIPHER_CTX *keyed(int enc, const uint8_t key[HD_LINK_KEY_LEN]) {
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  if (!c) return NULL;
  int ok = enc ? EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, key, NULL)
               : EVP_DecryptInit_ex(c, EVP_aes_128_gcm(), NULL, key, NULL);
  if (!ok) {
    EVP_CIPHER_CTX_free(c);
    return NULL;
  }
  return c;
}

int hd_link_peer_init(hd_link_peer_t *p, const hd_link_self_t *s, const char *peer_id) {
  memset(p, 0, sizeof *p);
  if (!peer_id || !peer_id[0] || strlen(peer_id) >= HD_LINK_ID_MAX) return HD_EINVAL;
  snprintf(p->id, sizeof p->id, "%s", peer_id);
  p->id_hash = hd_link_id_hash(peer_id);
  int rc = derive(s, s->id, peer_id, s->epoch, p->tx_key);
  if (rc < 0) return rc;
  if (!(p->tx_ctx = keyed(1, p->tx_key))) return HD_ECRYPTO;
  p->ver = HD_LINK_VERSION;
  return 0;
}

void hd_link_peer_free(hd_link_peer_t *p) {
  EVP_CIPHER_CTX_free(p->tx_ctx);
  EVP_CIPHER_CTX_free(p->rx_ctx);
  memset(p, 0, sizeof *p);
}

static void nonce_of(uint64_t seq, uint8_t iv[12]) {
  memset(iv, 0, 4);
  hd_put_be64(iv + 4, seq);
}

/* AES-128-GCM over data in place with c (keyed once: keyed()); aad = the
 * header. enc: tag written, else checked. */
static int gcm(int enc, EVP_CIPHER_CTX *c, uint64_t seq, const uint8_t *aad, size_t aad_len, uint8_t *data,
               size_t len, uint8_t tag[16]) {
  uint8_t iv[12];
  nonce_of(seq, iv);
  int ok = 0, outl = 0, rc = HD_ECRYPTO;
  if (enc) {
    ok = EVP_EncryptInit_ex(c, NULL, NULL, NULL, iv) &&
         EVP_EncryptUpdate(c, NULL, &outl, aad, (int)aad_len) &&
         (len == 0 || EVP_EncryptUpdate(c, data, &outl, data, (int)len)) &&
         EVP_EncryptFinal_ex(c, data + len, &outl) && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag);
    rc = ok ? 0 : HD_ECRYPTO;
  } else {
    ok = EVP_DecryptInit_ex(c, NULL, NULL, NULL, iv) &&
         EVP_DecryptUpdate(c, NULL, &outl, aad, (int)aad_len) &&
         (len == 0 || EVP_DecryptUpdate(c, data, &outl, data, (int)len)) &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag);
    rc = ok ? (EVP_DecryptFinal_ex(c, data + len, &outl) > 0 ? 0 : HD_EAUTH) : HD_ECRYPTO;
  }
  return rc;
}

int hd_link_seal(hd_link_self_t *s, hd_link_peer_t *p, int dst, uint8_t type, const uint8_t *pl,
                 size_t pl_len, uint8_t *out, size_t cap) {
  if (cap < HD_LINK_OVERHEAD || pl_len > cap - HD_LINK_OVERHEAD) return HD_ENOSPC;
  if (dst < 0 || dst >= HD_LINK_LANES) return HD_EINVAL;
  uint64_t seq = s->next_seq++;
  out[0] = HD_LINK_MAGIC;
  out[1] = type;
  /* the destination worker + 1, in the associated data: a copy replayed to
   * another worker of the peer fails there; 0 to a version-1 peer (it drops
   * anything else) */
  hd_put_be16(out + 2, p->ver >= 2 ? (uint16_t)(dst + 1) : 0);
  hd_put_be64(out + 4, s->id_hash);
  hd_put_be64(out + 12, s->epoch);
  hd_put_be64(out + 20, seq);
  if (pl_len) memmove(out + HD_LINK_HDR_LEN, pl, pl_len);
  if (!p->tx_ctx) return HD_ESTATE;
  int rc = gcm(1, p->tx_ctx, seq, out, HD_LINK_HDR_LEN, out + HD_LINK_HDR_LEN, pl_len,
               out + HD_LINK_HDR_LEN + pl_len);
  if (rc < 0) return rc;
  p->tx++;
  return (int)(HD_LINK_OVERHEAD + pl_len);
}

int hd_link_sender(const uint8_t *buf, size_t len, uint64_t *id_hash) {
  if (len < HD_LINK_OVERHEAD || buf[0] != HD_LINK_MAGIC) return HD_EPROTO;
  *id_hash = hd_get_be64(buf + 4);
  return 0;
}

int hd_link_open(const hd_link_self_t *s, hd_link_peer_t *p, uint8_t *buf, size_t len, hd_time_t now,
                 uint8_t *type, const uint8_t **pl, size_t *pl_len) {
  uint64_t h;
  if (hd_link_sender(buf, len, &h) < 0 || h != p->id_hash) return HD_EPROTO;
  uint64_t epoch = hd_get_be64(buf + 12), seq = hd_get_be64(buf + 20);
  uint64_t lane = seq >> HD_LINK_LANE_SHIFT;
  if (lane >= HD_LINK_LANES) return HD_EPROTO;
  unsigned dst = hd_get_be16(buf + 2), self_lane = (unsigned)(s->next_seq >> HD_LINK_LANE_SHIFT);
  if (dst > HD_LINK_LANES) return HD_EPROTO;
  if (p->rx_epoch && epoch < p->rx_epoch) {
    p->rx_old_epoch++;
    return HD_EREPLAY;
  }
  uint8_t key[HD_LINK_KEY_LEN];
  int new_epoch = epoch != p->rx_epoch;
  if (new_epoch) {
    int rc = derive(s, p->id, s->id, epoch, key);
    if (rc < 0) return rc;
  } else {
    memcpy(key, p->rx_key, sizeof key);
    /* replay window (RFC 3711 §3.3.2), 64 packets, per lane: each sender of
     * the node counts on its own */
    if (seq <= p->rx_lane[lane].max) {
      uint64_t d = p->rx_lane[lane].max - seq;
      if (d >= 64 || (p->rx_lane[lane].win >> d) & 1) {
        p->rx_replay++;
        return HD_EREPLAY;
      }
    }
  }
  size_t body = len - HD_LINK_OVERHEAD;
  /* decrypt a copy of the tag's position: the tag is read before the data is overwritten */
  uint8_t tag[16];
  memcpy(tag, buf + HD_LINK_HDR_LEN + body, 16);
  uint8_t saved[HD_LINK_HDR_LEN];
  memcpy(saved, buf, HD_LINK_HDR_LEN);
  /* a new epoch is tried with a context of its own: p keeps its current one until it authenticates */
  EVP_CIPHER_CTX *c = new_epoch ? keyed(0, key) : p->rx_ctx;
  if (!c) return HD_ECRYPTO;
  int rc = gcm(0, c, seq, saved, HD_LINK_HDR_LEN, buf + HD_LINK_HDR_LEN, body, tag);
  if (rc < 0) {
    if (new_epoch) EVP_CIPHER_CTX_free(c);
    p->rx_auth_fail++;
    return rc;
  }
  /* the worker it is for: this one (its lane), else a replay to a sibling
   * worker (whose windows are its own) or a misrouted datagram; unaddressed
   * (0) only from a version-1 peer. Checked after the tag, so that only the
   * peer's own datagrams are counted (a forged one is rx_auth_fail), and
   * before anything of p moves. */
  /* an addressed datagram is the peer's own word that it speaks version 2:
   * addressed answers from now on, not after its registry entry is re-read
   * (~1 s); an unaddressed one of a new epoch (a restart) voids that word */
  if (dst) {
    p->ver_seen = 2;
    if (p->ver < 2) p->ver = 2;
  } else if (new_epoch) {
    p->ver_seen = 0;
  }
  if (dst ? dst != self_lane + 1 : p->ver >= 2) {
    if (new_epoch) EVP_CIPHER_CTX_free(c);
    p->rx_misaddressed++;
    return HD_EPROTO;
  }
  if (new_epoch) { /* only an authenticated datagram moves a peer to a newer epoch */
    EVP_CIPHER_CTX_free(p->rx_ctx);
    p->rx_ctx = c;
    p->rx_epoch = epoch;
    memcpy(p->rx_key, key, sizeof key);
    memset(p->rx_lane, 0, sizeof p->rx_lane); /* every lane starts over */
    p->rx_lane[lane].max = seq;
    p->rx_lane[lane].win = 1;
  } else if (seq > p->rx_lane[lane].max) {
    uint64_t d = seq - p->rx_lane[lane].max;
    p->rx_lane[lane].win = d >= 64 ? 1 : (p->rx_lane[lane].win << d) | 1;
    p->rx_lane[lane].max = seq;
  } else {
    p->rx_lane[lane].win |= 1ull << (p->rx_lane[lane].max - seq);
  }
  p->last_rx = now;
  p->rx_ok++;
  *type = buf[1];
  *pl = buf + HD_LINK_HDR_LEN;
  *pl_len = body;
  return 0;
}

/* ---- bodies ---- */

int hd_link_media_hdr_write(const hd_link_media_t *m, uint8_t *out, size_t cap) {
  if (cap < 14) return HD_ENOSPC;
  hd_put_be64(out, m->room);
  hd_put_be32(out + 8, m->pub);
  out[12] = m->in_idx;
  out[13] = m->flags;
  return 14;
}

int hd_link_media_parse(const uint8_t *pl, size_t len, hd_link_media_t *m) {
  if (len < 14 + 12) return HD_EPROTO;
  m->room = hd_get_be64(pl);
  m->pub = hd_get_be32(pl + 8);
  m->in_idx = pl[12];
  m->flags = pl[13];
  m->rtp = pl + 14;
  m->rtp_len = len - 14;
  return 0;
}

int hd_link_feedback_write(const hd_link_feedback_t *f, uint8_t *out, size_t cap) {
  if (f->n_seqs > HD_LINK_MAX_NACK) return HD_EINVAL;
  size_t n = 16 + 2u * f->n_seqs;
  if (cap < n) return HD_ENOSPC;
  hd_put_be64(out, f->room);
  hd_put_be32(out + 8, f->pub);
  out[12] = f->in_idx;
  out[13] = f->kind;
  hd_put_be16(out + 14, f->n_seqs);
  for (int i = 0; i < f->n_seqs; i++)
    hd_put_be16(out + 16 + 2 * i, f->seqs[i]);
  return (int)n;
}

int hd_link_feedback_parse(const uint8_t *pl, size_t len, hd_link_feedback_t *f) {
  if (len < 16) return HD_EPROTO;
  f->room = hd_get_be64(pl);
  f->pub = hd_get_be32(pl + 8);
  f->in_idx = pl[12];
  f->kind = pl[13];
  f->n_seqs = hd_get_be16(pl + 14);
  if (f->kind != HD_LINK_FB_NACK && f->kind != HD_LINK_FB_KEYFRAME) return HD_EPROTO;
  if (f->n_seqs > HD_LINK_MAX_NACK || len != 16 + 2u * f->n_seqs) return HD_EPROTO;
  for (int i = 0; i < f->n_seqs; i++)
    f->seqs[i] = hd_get_be16(pl + 16 + 2 * i);
  return 0;
}

int hd_link_hello_write(const hd_link_hello_t *h, uint8_t *out, size_t cap) {
  if (h->n_wants > HD_LINK_MAX_WANTS) return HD_EINVAL;
  size_t n = 14 + 6u * h->n_wants;
  if (cap < n) return HD_ENOSPC;
  hd_put_be64(out, h->room);
  hd_put_be32(out + 8, h->version);
  hd_put_be16(out + 12, h->n_wants);
  for (int i = 0; i < h->n_wants; i++) {
    hd_put_be32(out + 14 + 6 * i, h->wants[i].pub);
    hd_put_be16(out + 18 + 6 * i, h->wants[i].mask);
  }
  return (int)n;
}

int hd_link_hello_parse(const uint8_t *pl, size_t len, hd_link_hello_t *h) {
  if (len < 14) return HD_EPROTO;
  h->room = hd_get_be64(pl);
  h->version = hd_get_be32(pl + 8);
  h->n_wants = hd_get_be16(pl + 12);
  if (h->n_wants > HD_LINK_MAX_WANTS || len != 14 + 6u * h->n_wants) return HD_EPROTO;
  for (int i = 0; i < h->n_wants; i++) {
    h->wants[i].pub = hd_get_be32(pl + 14 + 6 * i);
    h->wants[i].mask = hd_get_be16(pl + 18 + 6 * i);
  }
  return 0;
}

int hd_link_frag_write(const hd_link_frag_t *f, uint8_t *out, size_t cap) {
  if (f->len > HD_LINK_FRAG_DATA || !f->count || f->count > HD_LINK_FRAG_MAX || f->idx >= f->count)
    return HD_EINVAL;
  if (cap < 16 + f->len) return HD_ENOSPC;
  hd_put_be64(out, f->room);
  hd_put_be32(out + 8, f->msg_id);
  hd_put_be16(out + 12, f->idx);
  hd_put_be16(out + 14, f->count);
  if (f->len) memcpy(out + 16, f->data, f->len);
  return (int)(16 + f->len);
}

int hd_link_frag_parse(const uint8_t *pl, size_t len, hd_link_frag_t *f) {
  if (len < 16) return HD_EPROTO;
  f->room = hd_get_be64(pl);
  f->msg_id = hd_get_be32(pl + 8);
  f->idx = hd_get_be16(pl + 12);
  f->count = hd_get_be16(pl + 14);
  f->data = pl + 16;
  f->len = len - 16;
  if (!f->count || f->count > HD_LINK_FRAG_MAX || f->idx >= f->count || f->len > HD_LINK_FRAG_DATA)
    return HD_EPROTO;
  /* every fragment but the last is full: the offset of each is idx * HD_LINK_FRAG_DATA */
  if (f->idx + 1 < f->count && f->len != HD_LINK_FRAG_DATA) return HD_EPROTO;
  return 0;
}

/* Entry sizes: version 2 (pub 4, in[] index 1, rate 4, width 2, height 2),
 * version 3 adds n_tids (1) and the three cumulative shares (1 each). */
#define LAYER_LEN_V2 13u
#define LAYER_LEN_V3 17u

int hd_link_layers_write(const hd_link_layers_t *m, int ver, uint8_t *out, size_t cap) {
  size_t el = ver >= 3 ? LAYER_LEN_V3 : LAYER_LEN_V2;
  if (m->n > (ver >= 3 ? HD_LINK_MAX_LAYERS_V3 : HD_LINK_MAX_LAYERS)) return HD_EINVAL;
  size_t n = 10 + el * m->n;
  if (cap < n) return HD_ENOSPC;
  hd_put_be64(out, m->room);
  hd_put_be16(out + 8, m->n);
  for (int i = 0; i < m->n; i++) {
    uint8_t *e = out + 10 + el * (size_t)i;
    hd_put_be32(e, m->l[i].pub);
    e[4] = m->l[i].in_idx;
    hd_put_be32(e + 5, m->l[i].bps);
    hd_put_be16(e + 9, m->l[i].width);
    hd_put_be16(e + 11, m->l[i].height);
    if (ver < 3) continue;
    e[13] = m->l[i].n_tids;
    memcpy(e + 14, m->l[i].tid_cum, HD_LINK_TIDS - 1);
  }
  return (int)n;
}

int hd_link_layers_parse(const uint8_t *pl, size_t len, hd_link_layers_t *m) {
  if (len < 10) return HD_EPROTO;
  m->room = hd_get_be64(pl);
  m->n = hd_get_be16(pl + 8);
  if (m->n > HD_LINK_MAX_LAYERS) return HD_EPROTO;
  /* n names the entries, so the length tells the form (n = 0: both are 10 bytes) */
  size_t el = len == 10 + LAYER_LEN_V2 * m->n ? LAYER_LEN_V2 : LAYER_LEN_V3;
  if (len != 10 + el * m->n) return HD_EPROTO;
  m->ver = el == LAYER_LEN_V3 ? 3 : 2;
  for (int i = 0; i < m->n; i++) {
    const uint8_t *e = pl + 10 + el * (size_t)i;
    hd_link_layer_t *l = &m->l[i];
    memset(l, 0, sizeof *l);
    l->pub = hd_get_be32(e);
    l->in_idx = e[4];
    l->bps = hd_get_be32(e + 5);
    l->width = hd_get_be16(e + 9);
    l->height = hd_get_be16(e + 11);
    if (el == LAYER_LEN_V2) continue;
    l->n_tids = e[13];
    memcpy(l->tid_cum, e + 14, HD_LINK_TIDS - 1);
    if (l->n_tids > HD_LINK_TIDS || l->tid_cum[0] > l->tid_cum[1] || l->tid_cum[1] > l->tid_cum[2])
      return HD_EPROTO;
  }
  return 0;
}

int hd_link_room_write(uint64_t room, uint8_t *out, size_t cap) {
  if (cap < 8) return HD_ENOSPC;
  hd_put_be64(out, room);
  return 8;
}

int hd_link_room_parse(const uint8_t *pl, size_t len, uint64_t *room) {
  if (len != 8) return HD_EPROTO;
  *room = hd_get_be64(pl);
  return 0;
}

/* ---- reassembly ---- */

void hd_link_reasm_init(hd_link_reasm_t *r) { memset(r, 0, sizeof *r); }

void hd_link_reasm_free(hd_link_reasm_t *r) {
  for (int i = 0; i < HD_LINK_REASM_SLOTS; i++)
    free(r->slot[i].buf);
  memset(r, 0, sizeof *r);
}

int hd_link_reasm_add(hd_link_reasm_t *r, const hd_link_frag_t *f, hd_time_t now, const uint8_t **msg,
                      size_t *len, uint64_t *room) {
  hd_link_reasm_slot_t *s = NULL, *oldest = NULL;
  for (int i = 0; i < HD_LINK_REASM_SLOTS; i++) {
    hd_link_reasm_slot_t *c = &r->slot[i];
    if (c->used && now - c->started > HD_LINK_REASM_TIMEOUT) {
      c->used = 0;
      r->dropped++;
    }
    if (c->used && c->msg_id == f->msg_id && c->room == f->room) s = c;
  }
  if (!s) {
    for (int i = 0; i < HD_LINK_REASM_SLOTS && !s; i++)
      if (!r->slot[i].used) s = &r->slot[i];
    if (!s) { /* evict the oldest: a newer message supersedes it anyway */
      for (int i = 0; i < HD_LINK_REASM_SLOTS; i++)
        if (!oldest || r->slot[i].started < oldest->started) oldest = &r->slot[i];
      s = oldest;
      r->dropped++;
    }
    if (!s->buf && !(s->buf = malloc(HD_LINK_MSG_MAX))) return HD_ENOMEM;
    s->used = 1;
    s->room = f->room;
    s->msg_id = f->msg_id;
    s->count = f->count;
    s->got = 0;
    s->last_len = 0;
    memset(s->have, 0, sizeof s->have);
    s->started = now;
  }
  if (s->count != f->count) {
    s->used = 0;
    r->dropped++;
    return HD_EPROTO;
  }
  if ((s->have[f->idx / 64] >> (f->idx % 64)) & 1) return 0; /* duplicate */
  memcpy(s->buf + (size_t)f->idx * HD_LINK_FRAG_DATA, f->data, f->len);
  s->have[f->idx / 64] |= 1ull << (f->idx % 64);
  if (f->idx + 1 == f->count) s->last_len = f->len;
  if (++s->got < s->count) return 0;
  s->used = 0;
  *msg = s->buf;
  *len = (size_t)(s->count - 1) * HD_LINK_FRAG_DATA + s->last_len;
  *room = s->room;
  return 1;
}
