/* Client PeerConnection SDP (see pc.h): Unified Plan offers and answers per
 * JSEP (RFC 9429 §5.2 offers, §5.3 answers, §5.10 applying an answer), BUNDLE
 * (RFC 9143) with rtcp-mux (RFC 5761), ICE attributes (RFC 8839), DTLS
 * fingerprint/setup (RFC 8122, RFC 8842 §5), RTX (RFC 4588), extmap (RFC 8285),
 * ssrc / FID groups (RFC 5576). Text is written with snprintf (our own offers
 * and answers have a fixed shape) and parsed with proto/sdp. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/rand.h"
#include "client/pc_fec.h"
#include "client/pc_internal.h"
#include "proto/sdp_negotiate.h"

/* Our extension ids: the same as the node's offerer, and the same in every
 * section (BUNDLE requires one meaning per id). */
#define EXT_LEVEL 1
#define EXT_AST 2
#define EXT_TWCC 3
#define EXT_MID 4
#define EXT_RID 5

enum { DIR_SEND = 1, DIR_RECV = 2 };

static int dir_bits(int dir) {
  switch (dir) {
  case HD_PC_SENDRECV: return DIR_SEND | DIR_RECV;
  case HD_PC_SENDONLY: return DIR_SEND;
  case HD_PC_RECVONLY: return DIR_RECV;
  default: return 0;
  }
}
static int bits_dir(int b) {
  static const int d[4] = {HD_PC_INACTIVE, HD_PC_SENDONLY, HD_PC_RECVONLY, HD_PC_SENDRECV};
  return d[b & 3];
}
/* The direction the other side's `dir` leaves for us. */
static int complement(int dir) {
  int b = dir_bits(dir);
  return bits_dir(((b & DIR_SEND) ? DIR_RECV : 0) | ((b & DIR_RECV) ? DIR_SEND : 0));
}

int hd_pc_add_transceiver(hd_pc_t *pc, int kind, int direction) {
  if (!pc || (kind != HD_PC_AUDIO && kind != HD_PC_VIDEO) || direction < HD_PC_SENDRECV ||
      direction > HD_PC_RECVONLY)
    return HD_EINVAL;
  if (pc->answerer) return HD_ESTATE;
  if (pc->n_tr >= HD_PC_MAX_TRANSCEIVERS) return HD_ENOSPC;
  char mid[16];
  snprintf(mid, sizeof mid, "%d", pc->n_tr);
  pc_trx_t *t = &pc->tr[pc->n_tr];
  pc_trx_init(pc, t, kind, mid);
  t->want_dir = direction;
  t->dir = HD_PC_INACTIVE; /* until negotiated */
  return pc->n_tr++;
}

int hd_pc_set_h264(hd_pc_t *pc, int track) {
  if (!pc || track < 0 || track >= pc->n_tr || pc->tr[track].kind != HD_PC_VIDEO) return HD_EINVAL;
  if (pc->answerer) return HD_ESTATE;
  pc->tr[track].send_h264 = 1;
  return 0;
}

int hd_pc_set_h264_profile(hd_pc_t *pc, int track, uint32_t profile_level_id) {
  if (profile_level_id == 0 || profile_level_id > 0xffffff) return HD_EINVAL;
  int rc = hd_pc_set_h264(pc, track);
  if (rc == 0) pc->tr[track].h264_plid = profile_level_id;
  return rc;
}

int hd_pc_set_simulcast(hd_pc_t *pc, int track, int n, const char *const *rids) {
  if (!pc || track < 0 || track >= pc->n_tr || n < 2 || n > HD_PC_MAX_LAYERS || !rids) return HD_EINVAL;
  if (pc->answerer) return HD_ESTATE;
  pc_trx_t *t = &pc->tr[track];
  if (t->kind != HD_PC_VIDEO) return HD_EINVAL;
  for (int i = 0; i < n; i++) {
    size_t len = rids[i] ? strlen(rids[i]) : 0;
    if (!len || len >= HD_PC_RID_MAX) return HD_EINVAL;
    for (size_t k = 0; k < len; k++) /* RFC 8851 §10: rid-id = 1*(alpha-numeric / "-" / "_") */
      if (!((rids[i][k] >= 'a' && rids[i][k] <= 'z') || (rids[i][k] >= 'A' && rids[i][k] <= 'Z') ||
            (rids[i][k] >= '0' && rids[i][k] <= '9')))
        return HD_EINVAL;
    for (int j = 0; j < i; j++)
      if (!strcmp(rids[i], rids[j])) return HD_EINVAL;
  }
  for (int i = 0; i < n; i++) {
    snprintf(t->rids[i], sizeof t->rids[i], "%s", rids[i]);
    if (i && !t->lay[i].ssrc) {
      t->lay[i].ssrc = hd_random_u32() | 1;
      t->lay[i].rtx_ssrc = hd_random_u32() | 1;
      t->lay[i].seq = (uint16_t)hd_random_u32();
      t->lay[i].rtx_seq = (uint16_t)hd_random_u32();
    }
  }
  t->n_rids = n;
  return 0;
}

int hd_pc_track_layers(const hd_pc_t *pc, int track) {
  if (!pc || track < 0 || track >= pc->n_tr) return HD_EINVAL;
  return pc->tr[track].sim > 1 ? pc->tr[track].sim : 1;
}

/* ---- writing ---- */

typedef struct {
  char *p;
  size_t cap, off;
  int err;
} wbuf_t;

__attribute__((format(printf, 2, 3))) static void out(wbuf_t *w, const char *fmt, ...) {
  if (w->err) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(w->p + w->off, w->cap - w->off, fmt, ap);
  va_end(ap);
  if (n < 0 || w->off + (size_t)n >= w->cap) {
    w->err = HD_ENOSPC;
    return;
  }
  w->off += (size_t)n;
}

static const char *setup_name(const hd_pc_t *pc) {
  if (!pc->have_remote) return "actpass";
  return pc->dtls_client ? "active" : "passive";
}

static void write_session(hd_pc_t *pc, wbuf_t *w) {
  out(w, "v=0\r\no=- %s %u IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE", pc->sess_id,
      ++pc->sdp_version);
  for (int i = 0; i < pc->n_tr; i++)
    if (!pc->tr[i].rejected) out(w, " %s", pc->tr[i].mid);
  out(w, "\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS %s\r\n", pc->cname);
}

static void write_transport(hd_pc_t *pc, wbuf_t *w, const pc_trx_t *t) {
  out(w,
      "c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:%s\r\na=ice-pwd:%s\r\n"
      "a=ice-options:trickle\r\na=fingerprint:sha-256 %s\r\na=setup:%s\r\na=mid:%s\r\n",
      pc->ufrag, pc->pwd, hd_dtls_cert_fingerprint(pc->cert), setup_name(pc), t->mid);
}

static void write_candidate(hd_pc_t *pc, wbuf_t *w) {
  if (!pc->local_ip[0]) return;
  out(w, "a=candidate:1 1 udp 2130706431 %s %u typ host\r\n", pc->local_ip, pc->cfg.local_port);
}

/* a=ssrc lines of a sending section (RFC 5576), msid (RFC 8830). */
static void write_ssrcs(hd_pc_t *pc, wbuf_t *w, const pc_trx_t *t, int rtx, int fec) {
  out(w, "a=msid:%s %s-%s\r\n", pc->cname, t->media, t->mid);
  if (rtx) out(w, "a=ssrc-group:FID %u %u\r\n", t->ssrc, t->rtx_ssrc);
  if (fec) out(w, "a=ssrc-group:FEC-FR %u %u\r\n", t->ssrc, t->fec_ssrc); /* RFC 8627 §5.1.3 */
  out(w, "a=ssrc:%u cname:%s\r\na=ssrc:%u msid:%s %s-%s\r\n", t->ssrc, pc->cname, t->ssrc, pc->cname,
      t->media, t->mid);
  if (rtx) out(w, "a=ssrc:%u cname:%s\r\n", t->rtx_ssrc, pc->cname);
  if (fec) out(w, "a=ssrc:%u cname:%s\r\n", t->fec_ssrc, pc->cname);
}

/* FlexFEC's rtpmap and its required repair window (RFC 8627 §5.1.1: in
 * microseconds; ours is the decoder's reach, about 4 s of 30 fps video). */
static void write_fec_codec(wbuf_t *w, uint8_t pt) {
  out(w, "a=rtpmap:%u flexfec/90000\r\na=fmtp:%u repair-window=%u\r\n", pt, pt, PC_FEC_REPAIR_WINDOW_US);
}

int hd_pc_create_offer(hd_pc_t *pc, char *buf, size_t cap, hd_time_t now) {
  if (!pc || !buf || !cap) return HD_EINVAL;
  if (pc->answerer || pc->offer_pending || pc->n_tr == 0) return HD_ESTATE;
  wbuf_t w = {buf, cap, 0, 0};
  unsigned ver = pc->sdp_version;
  write_session(pc, &w);
  for (int i = 0; i < pc->n_tr; i++) {
    pc_trx_t *t = &pc->tr[i];
    int audio = t->kind == HD_PC_AUDIO, rtx = !audio && !pc->cfg.no_rtx, twcc = !pc->cfg.no_twcc;
    /* FlexFEC on a single-stream video (a simulcast offer leaves it out) */
    int fec = !audio && !pc->cfg.no_fec && t->n_rids <= 1;
    uint8_t pt = audio ? HD_PC_PT_OPUS : t->send_h264 ? HD_PC_PT_H264 : HD_PC_PT_VP8;
    uint8_t rtx_pt = t->send_h264 ? HD_PC_PT_H264_RTX : HD_PC_PT_VP8_RTX;
    if (rtx && fec)
      out(&w, "m=video 9 UDP/TLS/RTP/SAVPF %u %u %u\r\n", pt, rtx_pt, HD_PC_PT_FLEXFEC);
    else if (fec)
      out(&w, "m=video 9 UDP/TLS/RTP/SAVPF %u %u\r\n", pt, HD_PC_PT_FLEXFEC);
    else if (rtx)
      out(&w, "m=video 9 UDP/TLS/RTP/SAVPF %u %u\r\n", pt, rtx_pt);
    else if (audio && !pc->cfg.no_red) /* RED first: we prefer to send it (RFC 2198, issue 11 item 6) */
      out(&w, "m=audio 9 UDP/TLS/RTP/SAVPF %u %u\r\n", HD_PC_PT_RED, pt);
    else
      out(&w, "m=%s 9 UDP/TLS/RTP/SAVPF %u\r\n", t->media, pt);
    write_transport(pc, &w, t);
    if (audio) out(&w, "a=extmap:%d %s\r\n", EXT_LEVEL, HD_SDP_EXT_AUDIO_LEVEL);
    out(&w, "a=extmap:%d %s\r\n", EXT_AST, HD_SDP_EXT_ABS_SEND_TIME);
    if (twcc) out(&w, "a=extmap:%d %s\r\n", EXT_TWCC, HD_SDP_EXT_TWCC);
    out(&w, "a=extmap:%d %s\r\na=%s\r\n", EXT_MID, HD_SDP_EXT_MID, hd_sdp_direction_name(t->want_dir));
    out(&w, "a=rtcp-mux\r\na=rtcp-rsize\r\n");
    if (audio) {
      out(&w, "a=rtpmap:%u opus/48000/2\r\n", pt);
      if (twcc) out(&w, "a=rtcp-fb:%u transport-cc\r\n", pt);
      /* audio NACK (RFC 4585 §4.2): a lost packet is resent as is (no RTX
       * for audio) and the receiver asks only when the repair can arrive
       * before playout (hd_pc_set_nack_window) */
      if (!pc->cfg.no_nack && !pc->cfg.no_audio_nack) out(&w, "a=rtcp-fb:%u nack\r\n", pt);
      out(&w, "a=fmtp:%u minptime=10;useinbandfec=1\r\n", pt);
      if (!pc->cfg.no_red)
        out(&w, "a=rtpmap:%u red/48000/2\r\na=fmtp:%u %u/%u\r\n", HD_PC_PT_RED, HD_PC_PT_RED, pt, pt);
    } else {
      if (t->send_h264) /* RFC 6184 §8.1; 42e01f: constrained baseline, level 3.1 */
        out(&w,
            "a=rtpmap:%u H264/90000\r\na=fmtp:%u level-asymmetry-allowed=1;packetization-mode=1;"
            "profile-level-id=%06x\r\na=rtcp-fb:%u goog-remb\r\n",
            pt, pt, (unsigned)(t->h264_plid ? t->h264_plid : 0x42e01f), pt);
      else
        out(&w, "a=rtpmap:%u VP8/90000\r\na=rtcp-fb:%u goog-remb\r\n", pt, pt);
      if (twcc) out(&w, "a=rtcp-fb:%u transport-cc\r\n", pt);
      out(&w, "a=rtcp-fb:%u ccm fir\r\na=rtcp-fb:%u nack\r\na=rtcp-fb:%u nack pli\r\n", pt, pt, pt);
      if (rtx) out(&w, "a=rtpmap:%u rtx/90000\r\na=fmtp:%u apt=%u\r\n", rtx_pt, rtx_pt, pt);
      if (fec) write_fec_codec(&w, HD_PC_PT_FLEXFEC);
    }
    if ((dir_bits(t->want_dir) & DIR_SEND) && !audio && t->n_rids > 1) {
      /* RID simulcast (RFC 8853 §5.1): the layers are named by the rid header
       * extension, not by a=ssrc lines (the answerer learns the SSRCs) */
      out(&w, "a=extmap:%d %s\r\na=msid:%s %s-%s\r\n", EXT_RID, HD_SDP_EXT_RID, pc->cname, t->media, t->mid);
      for (int l = 0; l < t->n_rids; l++)
        out(&w, "a=rid:%s send\r\n", t->rids[l]);
      out(&w, "a=simulcast:send ");
      for (int l = 0; l < t->n_rids; l++)
        out(&w, "%s%s", l ? ";" : "", t->rids[l]);
      out(&w, "\r\n");
    } else if (dir_bits(t->want_dir) & DIR_SEND) {
      write_ssrcs(pc, &w, t, rtx, fec);
    }
    write_candidate(pc, &w);
  }
  if (w.err) {
    pc->sdp_version = ver;
    return w.err;
  }
  pc->offer_pending = 1;
  (void)now;
  return (int)w.off;
}

int hd_pc_rollback_offer(hd_pc_t *pc) {
  if (!pc || !pc->offer_pending) return HD_ESTATE;
  pc->offer_pending = 0;
  return 0;
}

/* ---- reading ---- */

static int parse_sdp(hd_sdp_t **out, const char *text, size_t len) {
  hd_sdp_t *s = malloc(sizeof *s);
  if (!s) return HD_ENOMEM;
  char err[128];
  if (hd_sdp_parse(s, text, len, err, sizeof err) < 0) {
    free(s);
    return HD_EPROTO;
  }
  *out = s;
  return 0;
}

static void add_sdp_candidates(hd_pc_t *pc, const hd_sdp_media_t *m) {
  for (int i = 0; i < m->n_candidates; i++) {
    const hd_sdp_candidate_t *c = &m->candidates[i];
    if (strcmp(c->transport, "udp") || c->component != 1) continue;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, c->addr, &a4->sin_addr) == 1) {
      a4->sin_family = AF_INET;
      a4->sin_port = htons(c->port);
      pc_add_cand(pc, (struct sockaddr *)a4, sizeof *a4);
    } else if (inet_pton(AF_INET6, c->addr, &a6->sin6_addr) == 1) {
      a6->sin6_family = AF_INET6;
      a6->sin6_port = htons(c->port);
      pc_add_cand(pc, (struct sockaddr *)a6, sizeof *a6);
    }
  }
}

/* ICE credentials and fingerprint of the first usable section. Returns its
 * index or HD_EUNSUPPORTED. On a renegotiation they must not change. */
static int read_transport(hd_pc_t *pc, const hd_sdp_t *s) {
  int mi = -1;
  for (int i = 0; i < s->n_media; i++)
    if (s->media[i].port != 0) {
      mi = i;
      break;
    }
  if (mi < 0) return HD_EUNSUPPORTED;
  const char *uf = hd_sdp_eff_ice_ufrag(s, mi), *pw = hd_sdp_eff_ice_pwd(s, mi);
  const hd_sdp_fingerprint_t *fp = hd_sdp_eff_fingerprint(s, mi);
  if (!uf[0] || !pw[0] || !fp || strcmp(fp->hash, "sha-256")) return HD_EUNSUPPORTED;
  if (pc->have_remote) {
    if (strcmp(pc->r_fp, fp->value) || strcmp(pc->r_ufrag, uf))
      return HD_EUNSUPPORTED; /* no ICE restart yet */
    return mi;
  }
  snprintf(pc->r_ufrag, sizeof pc->r_ufrag, "%s", uf);
  snprintf(pc->r_pwd, sizeof pc->r_pwd, "%s", pw);
  snprintf(pc->r_fp, sizeof pc->r_fp, "%s", fp->value);
  pc->r_lite = s->ice_lite;
  return mi;
}

/* Codec, RTX, feedback, extensions and remote SSRCs of section m for t.
 * Returns 0 or HD_EUNSUPPORTED (no Opus / VP8 in it, nor H.264 with cfg.accept_h264). */
static int read_codec(hd_pc_t *pc, pc_trx_t *t, const hd_sdp_media_t *m) {
  const hd_sdp_codec_t *c = NULL;
  for (int i = 0; i < m->n_fmt && !c; i++) {
    const hd_sdp_codec_t *k = hd_sdp_codec_by_pt(m, atoi(m->fmt[i]));
    if (!k) continue;
    if (t->kind == HD_PC_AUDIO && !strcasecmp(k->name, "opus") && k->clock == 48000) c = k;
    if (t->kind == HD_PC_VIDEO && !strcasecmp(k->name, "VP8") && k->clock == 90000) c = k;
    char mode[4];
    /* H.264 for a receiver that asked for it (the recorder) or a sender that
     * offered it: only the non-interleaved mode 1 (RFC 6184 §6.3) */
    if (t->kind == HD_PC_VIDEO && (pc->cfg.accept_h264 || t->send_h264) && !strcasecmp(k->name, "H264") &&
        k->clock == 90000 && hd_sdp_fmtp_param(k->fmtp, "packetization-mode", mode, sizeof mode) > 0 &&
        !strcmp(mode, "1"))
      c = k;
  }
  if (!c) return HD_EUNSUPPORTED;
  t->pt = c->pt;
  t->clock = c->clock;
  t->channels = c->channels;
  snprintf(t->codec, sizeof t->codec, "%s", c->name);
  snprintf(t->fmtp, sizeof t->fmtp, "%s", c->fmtp);
  t->rtx_pt = 0;
  t->red_pt = 0;
  for (int i = 0; i < m->n_codecs && t->kind == HD_PC_AUDIO && !pc->cfg.no_red && !t->red_pt; i++) {
    /* red/48000 whose fmtp names only our Opus pt ("111/111", RFC 2198 §5) */
    const hd_sdp_codec_t *k = &m->codecs[i];
    if (strcasecmp(k->name, "red") || k->clock != 48000 || !k->fmtp[0]) continue;
    int ok = 1;
    for (const char *f = k->fmtp; *f && ok;) {
      char *end;
      long v = strtol(f, &end, 10);
      ok = end != f && v == c->pt && (*end == '/' || *end == 0);
      f = *end == '/' ? end + 1 : end;
    }
    for (int f = 0; f < m->n_fmt && ok; f++)
      if (atoi(m->fmt[f]) == k->pt) t->red_pt = k->pt;
  }
  for (int i = 0; i < m->n_codecs && t->kind == HD_PC_VIDEO && !pc->cfg.no_rtx; i++) {
    char apt[8];
    if (!strcasecmp(m->codecs[i].name, "rtx") &&
        hd_sdp_fmtp_param(m->codecs[i].fmtp, "apt", apt, sizeof apt) > 0 && atoi(apt) == c->pt)
      t->rtx_pt = m->codecs[i].pt;
  }
  /* FlexFEC (RFC 8627 §5.1.1, the final format; Chromium's field-trial
   * "flexfec-03" is the draft layout and is not taken) */
  t->fec_pt = 0;
  for (int i = 0; i < m->n_codecs && t->kind == HD_PC_VIDEO && !pc->cfg.no_fec && t->n_rids <= 1; i++) {
    const hd_sdp_codec_t *k = &m->codecs[i];
    if (strcasecmp(k->name, "flexfec") || k->clock != 90000) continue;
    for (int f = 0; f < m->n_fmt; f++)
      if (atoi(m->fmt[f]) == k->pt) t->fec_pt = k->pt;
  }
  if (!t->fec_pt) pc_fec_off(t);
  t->nack = hd_sdp_codec_has_fb(m, c, "nack") && !(t->kind == HD_PC_AUDIO && pc->cfg.no_audio_nack);
  t->pli = hd_sdp_codec_has_fb(m, c, "nack pli");
  t->fir = hd_sdp_codec_has_fb(m, c, "ccm fir");
  t->remb = hd_sdp_codec_has_fb(m, c, "goog-remb");
  t->twcc_fb = !pc->cfg.no_twcc && hd_sdp_codec_has_fb(m, c, "transport-cc");
  t->rsize = m->rtcp_rsize;
  int e;
  t->ext_mid = (e = hd_sdp_extmap_by_uri(m, HD_SDP_EXT_MID)) >= 0 ? (uint8_t)m->extmaps[e].id : 0;
  t->ext_ast = (e = hd_sdp_extmap_by_uri(m, HD_SDP_EXT_ABS_SEND_TIME)) >= 0 ? (uint8_t)m->extmaps[e].id : 0;
  t->ext_twcc =
      (e = hd_sdp_extmap_by_uri(m, HD_SDP_EXT_TWCC)) >= 0 && !pc->cfg.no_twcc ? (uint8_t)m->extmaps[e].id : 0;
  t->ext_level = (e = hd_sdp_extmap_by_uri(m, HD_SDP_EXT_AUDIO_LEVEL)) >= 0 && t->kind == HD_PC_AUDIO
                     ? (uint8_t)m->extmaps[e].id
                     : 0;
  /* ids above 14 need the two-byte form; we only write one-byte extensions */
  if (t->ext_mid > 14) t->ext_mid = 0;
  if (t->ext_ast > 14) t->ext_ast = 0;
  if (t->ext_twcc > 14) t->ext_twcc = 0;
  if (t->ext_level > 14) t->ext_level = 0;
  /* simulcast: only when the answer receives every layer we offered and the
   * rid extension names them; otherwise layer 0 alone is the stream */
  t->ext_rid = (e = hd_sdp_extmap_by_uri(m, HD_SDP_EXT_RID)) >= 0 && m->extmaps[e].id <= 14
                   ? (uint8_t)m->extmaps[e].id
                   : 0;
  t->sim = 0;
  if (t->n_rids > 1 && t->ext_rid && !strncmp(m->simulcast, "recv", 4) && m->n_rids == t->n_rids)
    t->sim = t->n_rids;
  /* the remote's SSRCs: FID group first (media, rtx), else the first a=ssrc */
  uint32_t ssrc = 0, rtx = 0;
  for (int g = 0; g < m->n_ssrc_groups; g++)
    if (!strcmp(m->ssrc_groups[g].semantics, "FID") && m->ssrc_groups[g].n_ssrcs >= 2) {
      ssrc = m->ssrc_groups[g].ssrcs[0];
      rtx = m->ssrc_groups[g].ssrcs[1];
      break;
    }
  if (!ssrc && m->n_ssrcs) ssrc = m->ssrcs[0].ssrc;
  for (int g = 0; g < m->n_ssrc_groups && t->fec_pt; g++)
    if (!strcmp(m->ssrc_groups[g].semantics, "FEC-FR") && m->ssrc_groups[g].n_ssrcs >= 2)
      t->r_fec_ssrc = m->ssrc_groups[g].ssrcs[1];
  if (ssrc && ssrc != t->r_ssrc) pc_trx_recv_reset(t, ssrc);
  if (rtx) t->r_rtx_ssrc = rtx;
  t->negotiated = 1;
  return 0;
}

int hd_pc_set_remote_answer(hd_pc_t *pc, const char *sdp, size_t len, hd_time_t now) {
  if (!pc || !sdp) return HD_EINVAL;
  if (!pc->offer_pending) return HD_ESTATE;
  hd_sdp_t *s;
  int rc = parse_sdp(&s, sdp, len);
  if (rc < 0) return rc;
  rc = HD_EPROTO;
  if (s->n_media != pc->n_tr) goto done;
  for (int i = 0; i < s->n_media; i++)
    if (strcmp(s->media[i].mid, pc->tr[i].mid)) goto done;
  int mi = read_transport(pc, s);
  if (mi < 0) {
    rc = mi;
    goto done;
  }
  int setup = hd_sdp_eff_setup(s, mi);
  if (setup == HD_SDP_SETUP_ACTPASS) goto done; /* an answer must choose (RFC 8842 §5.3) */
  if (!pc->have_remote) setup = setup == HD_SDP_SETUP_PASSIVE ? HD_SDP_SETUP_PASSIVE : HD_SDP_SETUP_ACTIVE;
  int usable = 0;
  for (int i = 0; i < s->n_media; i++) {
    pc_trx_t *t = &pc->tr[i];
    const hd_sdp_media_t *m = &s->media[i];
    if (m->port == 0 || read_codec(pc, t, m) < 0) {
      t->rejected = m->port == 0;
      t->dir = HD_PC_INACTIVE;
      continue;
    }
    if (!m->rtcp_mux) {
      rc = HD_EUNSUPPORTED;
      goto done;
    }
    t->dir = bits_dir(dir_bits(t->want_dir) & dir_bits(complement(hd_sdp_eff_direction(s, i))));
    usable++;
    add_sdp_candidates(pc, m);
  }
  if (!usable) {
    rc = HD_EUNSUPPORTED;
    goto done;
  }
  pc->offer_pending = 0;
  rc = 0;
  if (!pc->have_remote) {
    pc->have_remote = 1;
    pc->lite_peer = pc->r_lite;
    pc->controlling = 1; /* the offerer controls between full agents; always against lite */
    rc = pc_start_transport(pc, setup, now);
  }
done:
  free(s);
  return rc;
}

/* ---- answering ---- */

static void write_answer_section(hd_pc_t *pc, wbuf_t *w, const pc_trx_t *t, const hd_sdp_media_t *m) {
  if (t->rejected) {
    out(w, "m=%s 0 %s %s\r\nc=IN IP4 0.0.0.0\r\na=mid:%s\r\na=inactive\r\n", m->media, m->proto,
        m->n_fmt ? m->fmt[0] : "0", t->mid);
    return;
  }
  if (t->rtx_pt && t->fec_pt)
    out(w, "m=%s 9 UDP/TLS/RTP/SAVPF %u %u %u\r\n", t->media, t->pt, t->rtx_pt, t->fec_pt);
  else if (t->fec_pt)
    out(w, "m=%s 9 UDP/TLS/RTP/SAVPF %u %u\r\n", t->media, t->pt, t->fec_pt);
  else if (t->rtx_pt)
    out(w, "m=%s 9 UDP/TLS/RTP/SAVPF %u %u\r\n", t->media, t->pt, t->rtx_pt);
  else if (t->red_pt)
    out(w, "m=%s 9 UDP/TLS/RTP/SAVPF %u %u\r\n", t->media, t->red_pt, t->pt);
  else
    out(w, "m=%s 9 UDP/TLS/RTP/SAVPF %u\r\n", t->media, t->pt);
  write_transport(pc, w, t);
  if (t->ext_level) out(w, "a=extmap:%u %s\r\n", t->ext_level, HD_SDP_EXT_AUDIO_LEVEL);
  if (t->ext_ast) out(w, "a=extmap:%u %s\r\n", t->ext_ast, HD_SDP_EXT_ABS_SEND_TIME);
  if (t->ext_twcc) out(w, "a=extmap:%u %s\r\n", t->ext_twcc, HD_SDP_EXT_TWCC);
  if (t->ext_mid) out(w, "a=extmap:%u %s\r\n", t->ext_mid, HD_SDP_EXT_MID);
  out(w, "a=%s\r\na=rtcp-mux\r\n", hd_sdp_direction_name(t->dir));
  if (t->rsize) out(w, "a=rtcp-rsize\r\n");
  if (t->channels)
    out(w, "a=rtpmap:%u %s/%u/%u\r\n", t->pt, t->codec, t->clock, t->channels);
  else
    out(w, "a=rtpmap:%u %s/%u\r\n", t->pt, t->codec, t->clock);
  if (t->remb) out(w, "a=rtcp-fb:%u goog-remb\r\n", t->pt);
  if (t->twcc_fb) out(w, "a=rtcp-fb:%u transport-cc\r\n", t->pt);
  if (t->fir) out(w, "a=rtcp-fb:%u ccm fir\r\n", t->pt);
  if (t->nack) out(w, "a=rtcp-fb:%u nack\r\n", t->pt);
  if (t->pli) out(w, "a=rtcp-fb:%u nack pli\r\n", t->pt);
  if (t->fmtp[0]) out(w, "a=fmtp:%u %s\r\n", t->pt, t->fmtp);
  if (t->rtx_pt) out(w, "a=rtpmap:%u rtx/90000\r\na=fmtp:%u apt=%u\r\n", t->rtx_pt, t->rtx_pt, t->pt);
  if (t->red_pt) out(w, "a=rtpmap:%u red/48000/2\r\na=fmtp:%u %u/%u\r\n", t->red_pt, t->red_pt, t->pt, t->pt);
  if (t->fec_pt) write_fec_codec(w, t->fec_pt);
  if (dir_bits(t->dir) & DIR_SEND) write_ssrcs(pc, w, t, t->rtx_pt != 0, t->fec_pt != 0);
  write_candidate(pc, w);
}

int hd_pc_answer_offer(hd_pc_t *pc, const char *offer, size_t len, char *answer, size_t cap, hd_time_t now) {
  if (!pc || !offer || !answer || !cap) return HD_EINVAL;
  if (pc->offer_pending || (pc->n_tr && !pc->answerer)) return HD_ESTATE;
  hd_sdp_t *s;
  int rc = parse_sdp(&s, offer, len);
  if (rc < 0) return rc;
  rc = HD_EUNSUPPORTED;
  if (s->n_media < 1 || s->n_media > HD_PC_MAX_TRANSCEIVERS || s->n_media < pc->n_tr) {
    rc = HD_EPROTO;
    goto done;
  }
  int mi = read_transport(pc, s);
  if (mi < 0) {
    rc = mi;
    goto done;
  }
  int setup = hd_sdp_eff_setup(s, mi);
  int n_live = 0;
  for (int i = 0; i < s->n_media; i++)
    n_live += s->media[i].port != 0;
  if (n_live > 1 && !s->has_bundle) goto done;
  for (int i = 0; i < s->n_media; i++) {
    const hd_sdp_media_t *m = &s->media[i];
    if (m->port != 0 && !m->rtcp_mux) goto done;
    int kind = m->kind == HD_SDP_AUDIO ? HD_PC_AUDIO : m->kind == HD_SDP_VIDEO ? HD_PC_VIDEO : 0;
    pc_trx_t *t = &pc->tr[i];
    /* a new m= line, or a recycled one (new mid, JSEP §5.2.2): a fresh transceiver */
    if (i >= pc->n_tr || strcmp(t->mid, m->mid) || t->kind != kind) {
      pc_trx_init(pc, t, kind, m->mid);
      snprintf(t->media, sizeof t->media, "%s", m->media);
    }
    t->rejected = 0;
    if (!kind || m->port == 0 || !strstr(m->proto, "RTP") || read_codec(pc, t, m) < 0) {
      t->rejected = 1;
      t->dir = HD_PC_INACTIVE;
      continue;
    }
    t->want_dir = complement(hd_sdp_eff_direction(s, i));
    t->dir = t->want_dir;
    add_sdp_candidates(pc, m);
  }
  pc->n_tr = s->n_media;
  pc->answerer = 1;
  wbuf_t w = {answer, cap, 0, 0};
  if (!pc->have_remote) pc->dtls_client = setup != HD_SDP_SETUP_ACTIVE; /* for setup_name below */
  int had_remote = pc->have_remote;
  pc->have_remote = 1; /* setup_name: our chosen role */
  write_session(pc, &w);
  for (int i = 0; i < s->n_media; i++)
    write_answer_section(pc, &w, &pc->tr[i], &s->media[i]);
  pc->have_remote = had_remote;
  if (w.err) {
    rc = w.err;
    goto done;
  }
  rc = (int)w.off;
  if (!pc->have_remote) {
    pc->have_remote = 1;
    pc->lite_peer = s->ice_lite;
    pc->controlling = s->ice_lite; /* RFC 8445 §6.1.1: the offerer controls unless it is lite */
    int r = pc_start_transport(pc, setup, now);
    if (r < 0) rc = r;
  }
done:
  free(s);
  return rc;
}
