/* SFU answerer for WHIP/WHEP offers: RFC 3264 §6 (generating the answer), JSEP RFC 9429
 * §5.3.1 (answer contents), BUNDLE RFC 9143 §7.3, DTLS roles RFC 5763 §5, ICE-lite
 * RFC 8445 §2.5 / RFC 8839, RTX RFC 4588 §8, H.264 payload matching RFC 6184 §8.2.2.
 *
 * The policy is "answer with the smallest set we actually implement": one codec per
 * section (+ its RTX), the rtcp-fb and header extensions our transport engine
 * handles, one host candidate. Anything else in the offer is simply not echoed, so
 * the browser will not use it. A section we cannot serve is rejected (port 0) rather
 * than failing the whole offer, because browsers add sections (data channel, extra
 * transceivers) that a WHIP/WHEP server does not need. */
#include "proto/sdp_negotiate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/rand.h"
#include "base/str.h"

/* ---- helpers ---- */

/* Small decimal (payload type, apt=, packetization-mode): -1 unless 1-3 digits. */
static int small_num(const char *s) {
  int v = 0, n = 0;
  for (; *s >= '0' && *s <= '9' && n < 4; s++, n++)
    v = v * 10 + (*s - '0');
  return (*s || n == 0 || n > 3) ? -1 : v;
}

/* ---- H.264 profile-level-id (RFC 6184 §8.1, Table 5) ---- */

enum {
  H264_UNKNOWN = 0,
  H264_CB,
  H264_BASELINE,
  H264_MAIN,
  H264_EXTENDED,
  H264_HIGH,
  H264_CHIGH,
  H264_HIGH10,
  H264_HIGH422,
  H264_HIGH444
};

typedef struct {
  uint8_t idc, mask, value;
  int profile;
} h264_pat_t;

/* profile_iop bit patterns from RFC 6184 Table 5 ("x1xx0000" -> mask 0x4F, value 0x40). */
static const h264_pat_t h264_pats[] = {
    {0x42, 0x4F, 0x40, H264_CB},       {0x4D, 0x8F, 0x80, H264_CB},       {0x58, 0xCF, 0xC0, H264_CB},
    {0x42, 0x4F, 0x00, H264_BASELINE}, {0x58, 0xCF, 0x80, H264_BASELINE}, {0x4D, 0x8F, 0x00, H264_MAIN},
    {0x58, 0xCF, 0x00, H264_EXTENDED}, {0x64, 0xFF, 0x00, H264_HIGH},     {0x64, 0xFF, 0x0C, H264_CHIGH},
    {0x6E, 0xFF, 0x00, H264_HIGH10},   {0x7A, 0xFF, 0x00, H264_HIGH422},  {0xF4, 0xFF, 0x00, H264_HIGH444},
};

static int hexv(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

typedef struct {
  uint8_t idc, iop, level;
  int profile;
  int pmode;
} h264_info_t;

/* Reads profile-level-id (default 420010, RFC 6184 §8.1) and packetization-mode
 * (default 0). Returns -1 if profile-level-id is malformed. */
static int h264_info(const char *fmtp, h264_info_t *h) {
  char v[16];
  const char *plid = "420010";
  if (hd_sdp_fmtp_param(fmtp ? fmtp : "", "profile-level-id", v, sizeof v) >= 0) plid = v;
  if (strlen(plid) != 6) return -1;
  int b[3];
  for (int i = 0; i < 3; i++) {
    int hi = hexv(plid[2 * i]), lo = hexv(plid[2 * i + 1]);
    if (hi < 0 || lo < 0) return -1;
    b[i] = hi << 4 | lo;
  }
  h->idc = (uint8_t)b[0];
  h->iop = (uint8_t)b[1];
  h->level = (uint8_t)b[2];
  h->profile = H264_UNKNOWN;
  for (size_t i = 0; i < sizeof h264_pats / sizeof h264_pats[0]; i++)
    if (h264_pats[i].idc == h->idc && (h->iop & h264_pats[i].mask) == h264_pats[i].value) {
      h->profile = h264_pats[i].profile;
      break;
    }
  h->pmode = 0;
  char pm[8];
  if (hd_sdp_fmtp_param(fmtp ? fmtp : "", "packetization-mode", pm, sizeof pm) >= 0) h->pmode = small_num(pm);
  return 0;
}

int hd_sdp_h264_same_profile(const char *fmtp_a, const char *fmtp_b) {
  h264_info_t a, b;
  if (h264_info(fmtp_a, &a) < 0 || h264_info(fmtp_b, &b) < 0) return 0;
  if (a.pmode != b.pmode) return 0;
  if (a.profile != H264_UNKNOWN || b.profile != H264_UNKNOWN) return a.profile == b.profile;
  return a.idc == b.idc && a.iop == b.iop;
}

/* ---- codec choice ---- */

static int is_codec(const hd_sdp_codec_t *c, const char *name, uint32_t clock) {
  return c && !strcasecmp(c->name, name) && c->clock == clock;
}

/* H.264 preference for what we ingest: packetization-mode=1 first (FU-A lets the
 * encoder use large slices), then 42e01f > other constrained baseline > baseline
 * > constrained high / high / main. Baseline is what every WebRTC decoder takes,
 * so an offer that has it (every browser's) gets it; Main and High (profile_idc
 * 0x4d, 0x64 without the 10-bit/4:2:2/4:4:4 variants) are taken only from an
 * offer without baseline: a sender passing through another encoder's stream
 * (the RTMP ingest) offers exactly its stream's profile, and the node then
 * offers viewers that profile (those that cannot decode it refuse the track
 * and the publisher is told: sfu/rooms.c "track_refused"). 0 = not acceptable. */
static int h264_score(const hd_sdp_codec_t *c) {
  h264_info_t h;
  if (!is_codec(c, "H264", 90000) || h264_info(c->fmtp, &h) < 0) return 0;
  if (h.pmode != 0 && h.pmode != 1) return 0;
  int s = h.pmode == 1 ? 10 : 0;
  if (h.idc == 0x42) {
    if (h.iop == 0xe0 && h.level == 0x1f) return s + 6;
    if (h.profile == H264_CB) return s + 5;
    return s + 4;
  }
  if (h.profile == H264_CHIGH) return s + 3;
  if (h.profile == H264_HIGH) return s + 2;
  if (h.profile == H264_MAIN) return s + 1;
  return 0;
}

/* Picks by our preference over the offer's m= line order; NULL if nothing fits. */
static const hd_sdp_codec_t *pick_codec(const hd_sdp_media_t *m) {
  const hd_sdp_codec_t *best = NULL;
  int best_score = 0;
  for (int i = 0; i < m->n_fmt; i++) {
    const hd_sdp_codec_t *c = hd_sdp_codec_by_pt(m, small_num(m->fmt[i]));
    if (!c) continue;
    if (m->kind == HD_SDP_AUDIO) {
      if (is_codec(c, "opus", 48000)) return c;
    } else if (m->kind == HD_SDP_VIDEO) {
      if (is_codec(c, "VP8", 90000)) return c;
      int s = h264_score(c);
      if (s > best_score) best = c, best_score = s;
    }
  }
  return best;
}

/* The offered codec that is the same as what the publisher sends (WHEP). */
static const hd_sdp_codec_t *match_source(const hd_sdp_media_t *m, const hd_sdp_media_negotiated_t *src) {
  for (int i = 0; i < m->n_fmt; i++) {
    const hd_sdp_codec_t *c = hd_sdp_codec_by_pt(m, small_num(m->fmt[i]));
    if (!c || strcasecmp(c->name, src->codec) || c->clock != src->clock) continue;
    if (!strcasecmp(c->name, "H264") && !hd_sdp_h264_same_profile(c->fmtp, src->fmtp)) continue;
    return c;
  }
  return NULL;
}

/* The RTX payload type whose apt= names pt, NULL if none offered. */
static const hd_sdp_codec_t *find_rtx(const hd_sdp_media_t *m, uint8_t pt) {
  for (int i = 0; i < m->n_fmt; i++) {
    const hd_sdp_codec_t *c = hd_sdp_codec_by_pt(m, small_num(m->fmt[i]));
    char apt[8];
    if (!c || strcasecmp(c->name, "rtx") || hd_sdp_fmtp_param(c->fmtp, "apt", apt, sizeof apt) < 0) continue;
    if (small_num(apt) == pt) return c;
  }
  return NULL;
}

/* FlexFEC (RFC 8627 §5.1.1 "flexfec"), NULL if not offered. Chromium's
 * field-trial "flexfec-03" is the draft's packet layout, which the decoder
 * (rtc/flexfec.h) does not read: not taken. */
static const hd_sdp_codec_t *find_fec(const hd_sdp_media_t *m) {
  for (int i = 0; i < m->n_fmt; i++) {
    const hd_sdp_codec_t *c = hd_sdp_codec_by_pt(m, small_num(m->fmt[i]));
    if (c && !strcasecmp(c->name, "flexfec") && c->clock == 90000) return c;
  }
  return NULL;
}

/* RED for Opus (RFC 2198; how browsers protect audio): the offered
 * red/48000/2 whose fmtp lists only the Opus pt ("111/111"), NULL if none.
 * *first is set when it comes before Opus on the m= line (the offerer prefers
 * to send it). */
static const hd_sdp_codec_t *find_red(const hd_sdp_media_t *m, uint8_t opus_pt, int *first) {
  *first = 0;
  int seen_opus = 0;
  for (int i = 0; i < m->n_fmt; i++) {
    const hd_sdp_codec_t *c = hd_sdp_codec_by_pt(m, small_num(m->fmt[i]));
    if (!c) continue;
    if (c->pt == opus_pt) seen_opus = 1;
    if (strcasecmp(c->name, "red") || c->clock != 48000) continue;
    /* fmtp "P/P[/P...]": every block Opus */
    const char *f = c->fmtp;
    int ok = *f != 0;
    while (*f && ok) {
      char *end;
      long v = strtol(f, &end, 10);
      ok = end != f && v == opus_pt && (*end == '/' || *end == 0);
      f = *end == '/' ? end + 1 : end;
    }
    if (!ok) continue;
    *first = !seen_opus;
    return c;
  }
  return NULL;
}

/* ---- answer building ---- */

static const char *const supported_fb[] = {"nack", "nack pli", "ccm fir", "transport-cc", "goog-remb"};

static const char *const supported_ext[] = {
    HD_SDP_EXT_MID, HD_SDP_EXT_ABS_SEND_TIME, HD_SDP_EXT_TWCC,         HD_SDP_EXT_AUDIO_LEVEL,
    HD_SDP_EXT_RID, HD_SDP_EXT_RRID,          HD_SDP_EXT_PLAYOUT_DELAY};

static int in_bundle(const hd_sdp_t *o, const char *mid) {
  for (int i = 0; i < o->n_bundle; i++)
    if (!strcmp(o->bundle[i], mid)) return 1;
  return 0;
}

/* Fills a rejected (port 0) answer section: still listed, still with its mid. */
static void reject_section(const hd_sdp_media_t *om, hd_sdp_media_t *am) {
  memset(am, 0, sizeof *am);
  am->kind = om->kind;
  memcpy(am->media, om->media, sizeof am->media);
  memcpy(am->proto, om->proto, sizeof am->proto);
  am->port = 0;
  am->n_fmt = 1;
  memcpy(am->fmt[0], om->fmt[0], sizeof am->fmt[0]);
  am->has_conn = 1;
  strcpy(am->conn_addrtype, "IP4");
  strcpy(am->conn_addr, "0.0.0.0");
  memcpy(am->mid, om->mid, sizeof am->mid);
}

static void add_fmt(hd_sdp_media_t *am, uint8_t pt) {
  if (am->n_fmt < HD_SDP_MAX_FMT) snprintf(am->fmt[am->n_fmt++], sizeof am->fmt[0], "%u", pt);
}

typedef struct {
  const hd_sdp_t *offer;
  const hd_sdp_answer_params_t *p;
  hd_sdp_t *answer;
  hd_sdp_negotiated_t *out;
  int setup; /* our a=setup */
  int whep;  /* we send */
  int served_audio, served_video;
  char why[512]; /* accumulated reasons for rejected sections */
} nctx_t;

static void note(nctx_t *n, const hd_sdp_media_t *om, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void note(nctx_t *n, const hd_sdp_media_t *om, const char *fmt, ...) {
  size_t len = strlen(n->why);
  if (len + 8 >= sizeof n->why) return;
  int k =
      snprintf(n->why + len, sizeof n->why - len, "%smid %s: ", len ? "; " : "", om->mid[0] ? om->mid : "?");
  if (k < 0 || (size_t)k >= sizeof n->why - len) {
    n->why[len] = '\0';
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(n->why + len + (size_t)k, sizeof n->why - len - (size_t)k, fmt, ap);
  va_end(ap);
}

/* The publisher's i-th served section of this kind (WHEP source). */
static const hd_sdp_media_negotiated_t *source_media(const hd_sdp_negotiated_t *src, int kind) {
  for (int i = 0; i < src->n_media && i < HD_SDP_MAX_MEDIA; i++)
    if (src->media[i].active && src->media[i].kind == kind) return &src->media[i];
  return NULL;
}

/* Remote SSRCs: the FID group gives media + RTX; otherwise the first a=ssrc. */
static void remote_ssrcs(const hd_sdp_media_t *om, hd_sdp_media_negotiated_t *nm) {
  for (int g = 0; g < om->n_ssrc_groups; g++)
    if (!strcmp(om->ssrc_groups[g].semantics, "FID") && om->ssrc_groups[g].n_ssrcs >= 2) {
      nm->remote_ssrc = om->ssrc_groups[g].ssrcs[0];
      nm->remote_rtx_ssrc = om->ssrc_groups[g].ssrcs[1];
      return;
    }
  if (om->n_ssrcs) nm->remote_ssrc = om->ssrcs[0].ssrc;
}

/* Mirrors the offer's send-side simulcast (RFC 8853 §5.3): "send a;b" -> "recv a;b". */
static void answer_simulcast(const hd_sdp_media_t *om, hd_sdp_media_t *am, hd_sdp_media_negotiated_t *nm) {
  if (strncmp(om->simulcast, "send ", 5) != 0) return;
  for (int i = 0; i < om->n_rids; i++) {
    if (om->rids[i].direction != HD_SDP_RID_SEND) continue;
    hd_sdp_rid_t *r = &am->rids[am->n_rids++];
    memcpy(r->id, om->rids[i].id, sizeof r->id);
    r->direction = HD_SDP_RID_RECV;
    memcpy(nm->rids[nm->n_rids++], om->rids[i].id, sizeof nm->rids[0]);
  }
  const char *list = om->simulcast + 5;
  while (*list == ' ')
    list++;
  /* a "recv" part in the offer would be for us to send simulcast: not supported, so
   * only the send list is mirrored. */
  const char *end = strstr(list, " recv");
  size_t n = end ? (size_t)(end - list) : strlen(list);
  if (n + 5 < sizeof am->simulcast) snprintf(am->simulcast, sizeof am->simulcast, "recv %.*s", (int)n, list);
}

/* Transport attributes and our one host candidate, shared by every accepted section. */
static void answer_transport(nctx_t *n, hd_sdp_media_t *am) {
  const hd_sdp_answer_params_t *p = n->p;
  am->port = p->cand_port;
  int v6 = strchr(p->cand_ip, ':') != NULL;
  strcpy(am->conn_addrtype, v6 ? "IP6" : "IP4");
  snprintf(am->conn_addr, sizeof am->conn_addr, "%s", p->cand_ip);
  snprintf(am->ice_ufrag, sizeof am->ice_ufrag, "%s", p->ice_ufrag);
  snprintf(am->ice_pwd, sizeof am->ice_pwd, "%s", p->ice_pwd);
  strcpy(am->fingerprint.hash, "sha-256");
  snprintf(am->fingerprint.value, sizeof am->fingerprint.value, "%s", p->fingerprint_sha256);
  am->setup = n->setup;
  (void)hd_sdp_add_host_candidates(am, p->cand_ip, p->cand_port,
                                   p->cand_tcp_port); /* a fresh section has room */
  am->end_of_candidates = 1;
}

/* A data channel section (RFC 8841 §5: "UDP/DTLS/SCTP webrtc-datachannel"):
 * answered with our SCTP port and message size cap. Only one per offer, and
 * only in the BUNDLE group (it shares the DTLS transport of the media). */
static int answer_datachannel(nctx_t *n, int i) {
  const hd_sdp_media_t *om = &n->offer->media[i];
  hd_sdp_media_t *am = &n->answer->media[i];
  hd_sdp_media_negotiated_t *nm = &n->out->media[i];
  if (n->out->sctp) {
    note(n, om, "only one data channel section can be served");
    return 0;
  }
  if (om->port == 0 && !om->bundle_only) {
    note(n, om, "section disabled by the offer (port 0)");
    return 0;
  }
  if (!in_bundle(n->offer, om->mid)) {
    note(n, om, "section is not in the BUNDLE group");
    return 0;
  }
  if (strcmp(om->proto, "UDP/DTLS/SCTP") != 0 || om->n_fmt < 1 ||
      strcmp(om->fmt[0], "webrtc-datachannel") != 0) {
    note(n, om, "data channel section must be UDP/DTLS/SCTP webrtc-datachannel (RFC 8841)");
    return 0;
  }
  nm->active = 1;
  n->out->sctp = 1;
  n->out->remote_sctp_port = om->sctp_port ? om->sctp_port : 5000;
  n->out->remote_max_message = om->max_message_size ? om->max_message_size : 65536;
  am->n_fmt = 1;
  answer_transport(n, am);
  am->sctp_port = 5000;
  am->max_message_size = HD_SDP_MAX_MESSAGE_SIZE;
  return 1;
}

/* Tries to accept section i; on failure rejects it and records why. */
static int answer_section(nctx_t *n, int i) {
  const hd_sdp_media_t *om = &n->offer->media[i];
  const hd_sdp_answer_params_t *p = n->p;
  hd_sdp_media_t *am = &n->answer->media[i];
  hd_sdp_media_negotiated_t *nm = &n->out->media[i];
  memset(nm, 0, sizeof *nm);
  nm->kind = om->kind;
  memcpy(nm->mid, om->mid, sizeof nm->mid);
  reject_section(om, am);

  if (om->kind == HD_SDP_APPLICATION && p->datachannel) return answer_datachannel(n, i);
  if (om->kind != HD_SDP_AUDIO && om->kind != HD_SDP_VIDEO) {
    note(n, om, "%s sections are not supported", om->media);
    return 0;
  }
  if (om->port == 0 && !om->bundle_only) {
    note(n, om, "section disabled by the offer (port 0)");
    return 0;
  }
  if (!in_bundle(n->offer, om->mid)) {
    note(n, om, "section is not in the BUNDLE group");
    return 0;
  }
  if (!strstr(om->proto, "SAVPF")) {
    note(n, om, "protocol %s is not supported (need UDP/TLS/RTP/SAVPF)", om->proto);
    return 0;
  }
  int odir = hd_sdp_eff_direction(n->offer, i);
  if (!n->whep && odir != HD_SDP_SENDRECV && odir != HD_SDP_SENDONLY) {
    note(n, om, "offer direction is %s; WHIP needs sendonly or sendrecv", hd_sdp_direction_name(odir));
    return 0;
  }
  if (n->whep && odir != HD_SDP_SENDRECV && odir != HD_SDP_RECVONLY) {
    note(n, om, "offer direction is %s; WHEP needs recvonly or sendrecv", hd_sdp_direction_name(odir));
    return 0;
  }
  const char *kname = om->kind == HD_SDP_AUDIO ? "audio" : "video";
  if (n->whep && (om->kind == HD_SDP_AUDIO ? n->served_audio : n->served_video)) {
    note(n, om, "only one %s section can be served", kname);
    return 0;
  }

  const hd_sdp_codec_t *codec;
  if (n->whep && p->source) {
    const hd_sdp_media_negotiated_t *src = source_media(p->source, om->kind);
    if (!src) {
      note(n, om, "the publisher sends no %s", kname);
      return 0;
    }
    codec = match_source(om, src);
    if (!codec) {
      note(n, om, "offer lacks the publisher's codec %s/%u", src->codec, src->clock);
      return 0;
    }
  } else {
    codec = pick_codec(om);
    if (!codec) {
      note(n, om, "no supported %s codec offered (need %s)", kname,
           om->kind == HD_SDP_AUDIO ? "opus/48000/2" : "VP8 or H264 (constrained baseline, main or high)");
      return 0;
    }
  }

  /* ---- accepted ---- */
  nm->active = 1;
  nm->direction = n->whep ? HD_SDP_SENDONLY : HD_SDP_RECVONLY;
  nm->pt = codec->pt;
  if (hd_scpy(nm->codec, sizeof nm->codec, codec->name) < 0) {
    nm->active = 0;
    note(n, om, "codec name too long");
    return 0;
  }
  nm->clock = codec->clock;
  nm->channels = codec->channels;
  memcpy(nm->fmtp, codec->fmtp, sizeof nm->fmtp);
  const hd_sdp_codec_t *rtx = om->kind == HD_SDP_VIDEO ? find_rtx(om, codec->pt) : NULL;
  if (n->whep && !p->send_ssrc_video_rtx) rtx = NULL; /* nothing to send RTX with */
  nm->rtx_pt = rtx ? rtx->pt : 0;
  int red_first = 0;
  const hd_sdp_codec_t *red = om->kind == HD_SDP_AUDIO ? find_red(om, codec->pt, &red_first) : NULL;
  nm->red_pt = red ? red->pt : 0;
  nm->nack = hd_sdp_codec_has_fb(om, codec, "nack");
  nm->pli = hd_sdp_codec_has_fb(om, codec, "nack pli");
  nm->fir = hd_sdp_codec_has_fb(om, codec, "ccm fir");
  nm->twcc_fb = hd_sdp_codec_has_fb(om, codec, "transport-cc");
  nm->remb = hd_sdp_codec_has_fb(om, codec, "goog-remb");
  remote_ssrcs(om, nm);
  /* FlexFEC from a publisher (one stream, not simulcast): we recover its
   * leg's losses before NACKing (sfu/fec_in.h); viewers are not offered it */
  const hd_sdp_codec_t *fec =
      om->kind == HD_SDP_VIDEO && !n->whep && om->n_rids == 0 && nm->direction == HD_SDP_RECVONLY
          ? find_fec(om)
          : NULL;
  nm->fec_pt = fec ? fec->pt : 0;
  for (int g = 0; g < om->n_ssrc_groups && fec; g++)
    if (!strcmp(om->ssrc_groups[g].semantics, "FEC-FR") && om->ssrc_groups[g].n_ssrcs >= 2)
      nm->remote_fec_ssrc = om->ssrc_groups[g].ssrcs[1];

  am->port = p->cand_port;
  am->n_fmt = 0;
  /* a publisher that put RED first sends RED (we receive it, and pass it on
   * or unwrap it per viewer); a viewer gets RED when its source sends it */
  if (red && red_first) add_fmt(am, red->pt);
  add_fmt(am, codec->pt);
  if (red && !red_first) add_fmt(am, red->pt);
  if (rtx) add_fmt(am, rtx->pt);
  if (fec) add_fmt(am, fec->pt);
  int v6 = strchr(p->cand_ip, ':') != NULL;
  strcpy(am->conn_addrtype, v6 ? "IP6" : "IP4");
  snprintf(am->conn_addr, sizeof am->conn_addr, "%s", p->cand_ip);
  snprintf(am->ice_ufrag, sizeof am->ice_ufrag, "%s", p->ice_ufrag);
  snprintf(am->ice_pwd, sizeof am->ice_pwd, "%s", p->ice_pwd);
  strcpy(am->fingerprint.hash, "sha-256");
  snprintf(am->fingerprint.value, sizeof am->fingerprint.value, "%s", p->fingerprint_sha256);
  am->setup = n->setup;
  am->direction = nm->direction;
  am->rtcp_mux = 1;
  am->rtcp_rsize = om->rtcp_rsize;

  for (int e = 0; e < om->n_extmaps; e++) {
    const hd_sdp_extmap_t *oe = &om->extmaps[e];
    size_t k;
    for (k = 0; k < sizeof supported_ext / sizeof supported_ext[0]; k++)
      if (!strcmp(oe->uri, supported_ext[k])) break;
    if (k == sizeof supported_ext / sizeof supported_ext[0] || oe->id > 255) continue;
    if (om->kind == HD_SDP_AUDIO && (k == 4 || k == 5 || k == 6))
      continue;                                               /* rid, playout-delay: video only */
    if (k == 6 && nm->direction != HD_SDP_SENDONLY) continue; /* playout-delay: on what we send */
    uint8_t id = (uint8_t)oe->id;
    uint8_t *slot[] = {&nm->ext_mid, &nm->ext_abs_send_time, &nm->ext_twcc,         &nm->ext_audio_level,
                       &nm->ext_rid, &nm->ext_rrid,          &nm->ext_playout_delay};
    if (*slot[k]) continue; /* offered twice: keep the first */
    *slot[k] = id;
    hd_sdp_extmap_t *ae = &am->extmaps[am->n_extmaps++];
    ae->id = id;
    memcpy(ae->uri, oe->uri, sizeof ae->uri);
  }

  hd_sdp_codec_t *ac = &am->codecs[am->n_codecs++];
  ac->pt = codec->pt;
  memcpy(ac->name, codec->name, sizeof ac->name);
  ac->clock = codec->clock;
  ac->channels = codec->channels;
  memcpy(ac->fmtp, codec->fmtp, sizeof ac->fmtp);
  for (size_t f = 0; f < sizeof supported_fb / sizeof supported_fb[0]; f++)
    if (hd_sdp_codec_has_fb(om, codec, supported_fb[f]) && ac->n_fb < HD_SDP_MAX_FB)
      strcpy(ac->fb[ac->n_fb++], supported_fb[f]);
  if (red) {
    hd_sdp_codec_t *ar = &am->codecs[am->n_codecs++];
    ar->pt = red->pt;
    memcpy(ar->name, red->name, sizeof ar->name);
    ar->clock = red->clock;
    ar->channels = red->channels;
    memcpy(ar->fmtp, red->fmtp, sizeof ar->fmtp);
  }
  if (rtx) {
    hd_sdp_codec_t *ar = &am->codecs[am->n_codecs++];
    ar->pt = rtx->pt;
    memcpy(ar->name, rtx->name, sizeof ar->name);
    ar->clock = rtx->clock;
    snprintf(ar->fmtp, sizeof ar->fmtp, "apt=%u", codec->pt);
  }
  if (fec) {
    hd_sdp_codec_t *af = &am->codecs[am->n_codecs++];
    af->pt = fec->pt;
    memcpy(af->name, fec->name, sizeof af->name);
    af->clock = fec->clock;
    memcpy(af->fmtp, fec->fmtp, sizeof af->fmtp); /* repair-window as offered (RFC 8627 §5.1.1) */
  }

  if (!n->whep) answer_simulcast(om, am, nm);

  if (n->whep) {
    const char *stream = p->stream_id && p->stream_id[0] ? p->stream_id : "hudong";
    const char *cname = p->cname && p->cname[0] ? p->cname : "hudong";
    char track[64];
    snprintf(track, sizeof track, "%s-%s", kname, om->mid);
    am->has_msid = 1;
    snprintf(am->msid_stream, sizeof am->msid_stream, "%s", stream);
    snprintf(am->msid_track, sizeof am->msid_track, "%s", track);
    uint32_t ssrc = om->kind == HD_SDP_AUDIO ? p->send_ssrc_audio : p->send_ssrc_video;
    uint32_t ssrcs[2] = {ssrc, rtx ? p->send_ssrc_video_rtx : 0};
    if (ssrc) {
      if (ssrcs[1]) {
        hd_sdp_ssrc_group_t *g = &am->ssrc_groups[am->n_ssrc_groups++];
        strcpy(g->semantics, "FID");
        g->ssrcs[0] = ssrcs[0];
        g->ssrcs[1] = ssrcs[1];
        g->n_ssrcs = 2;
      }
      for (int s = 0; s < 2 && ssrcs[s]; s++) {
        hd_sdp_ssrc_t *as = &am->ssrcs[am->n_ssrcs++];
        as->ssrc = ssrcs[s];
        snprintf(as->cname, sizeof as->cname, "%s", cname);
        snprintf(as->msid, sizeof as->msid, "%s %s", stream, track);
      }
    }
    if (om->kind == HD_SDP_AUDIO)
      n->served_audio = 1;
    else
      n->served_video = 1;
  }

  (void)hd_sdp_add_host_candidates(am, p->cand_ip, p->cand_port,
                                   p->cand_tcp_port); /* a fresh section has room */
  am->end_of_candidates = 1;
  return 1;
}

static int check_params(const hd_sdp_answer_params_t *p, char *err, size_t errcap) {
  if (!p->ice_ufrag || !p->ice_ufrag[0] || strlen(p->ice_ufrag) >= HD_SDP_ICE_MAX || !p->ice_pwd ||
      !p->ice_pwd[0] || strlen(p->ice_pwd) >= HD_SDP_ICE_MAX)
    return hd_errf(err, errcap, HD_EINVAL, "internal error: missing our ICE credentials");
  if (!p->fingerprint_sha256 || strlen(p->fingerprint_sha256) != 95)
    return hd_errf(err, errcap, HD_EINVAL, "internal error: our sha-256 fingerprint is malformed");
  if (!p->cand_ip || !p->cand_ip[0] || strlen(p->cand_ip) >= HD_SDP_ADDR_MAX || strchr(p->cand_ip, ' '))
    return hd_errf(err, errcap, HD_EINVAL, "internal error: missing our candidate address");
  if (p->direction != HD_SDP_RECVONLY && p->direction != HD_SDP_SENDONLY)
    return hd_errf(err, errcap, HD_EINVAL, "internal error: answer direction must be recvonly or sendonly");
  if ((p->cname && strlen(p->cname) >= 64) || (p->stream_id && strlen(p->stream_id) >= 48))
    return hd_errf(err, errcap, HD_EINVAL, "internal error: cname or stream id too long");
  return 0;
}

int hd_sdp_negotiate(const hd_sdp_t *offer, const hd_sdp_answer_params_t *p, hd_sdp_t *answer,
                     hd_sdp_negotiated_t *out, char *err, size_t errcap) {
  if (err && errcap) err[0] = '\0';
  if (!offer || !p || !answer || !out)
    return hd_errf(err, errcap, HD_EINVAL, "internal error: NULL argument");
  int rc = check_params(p, err, errcap);
  if (rc < 0) return rc;
  if (offer->n_media <= 0 || offer->n_media > HD_SDP_MAX_MEDIA)
    return hd_errf(err, errcap, HD_EUNSUPPORTED, "offer has no media sections");
  if (!offer->has_bundle || offer->n_bundle == 0)
    return hd_errf(err, errcap, HD_EUNSUPPORTED, "offer has no a=group:BUNDLE; BUNDLE is required");
  for (int i = 0; i < offer->n_media; i++)
    if (!offer->media[i].mid[0])
      return hd_errf(err, errcap, HD_EUNSUPPORTED, "m-line %d has no a=mid; Unified Plan SDP is required", i);

  /* Transport parameters come from the offerer's BUNDLE-tag section (RFC 9143 §7.2). */
  int tag = hd_sdp_media_by_mid(offer, offer->bundle[0]);
  if (tag < 0)
    return hd_errf(err, errcap, HD_EPROTO, "a=group:BUNDLE names mid '%s' that has no m-line",
                   offer->bundle[0]);
  const char *ufrag = hd_sdp_eff_ice_ufrag(offer, tag), *pwd = hd_sdp_eff_ice_pwd(offer, tag);
  if (!ufrag[0] || !pwd[0])
    return hd_errf(err, errcap, HD_EUNSUPPORTED, "offer has no a=ice-ufrag / a=ice-pwd");
  const hd_sdp_fingerprint_t *fp = hd_sdp_eff_fingerprint(offer, tag);
  if (!fp || strcmp(fp->hash, "sha-256") != 0)
    return hd_errf(err, errcap, HD_EUNSUPPORTED, "offer has no sha-256 a=fingerprint");
  int rsetup = hd_sdp_eff_setup(offer, tag);
  if (rsetup == HD_SDP_SETUP_HOLDCONN)
    return hd_errf(err, errcap, HD_EUNSUPPORTED, "a=setup:holdconn is not supported");
  for (int i = 0; i < offer->n_media; i++) {
    const hd_sdp_media_t *m = &offer->media[i];
    if ((m->kind == HD_SDP_AUDIO || m->kind == HD_SDP_VIDEO) && in_bundle(offer, m->mid) &&
        (m->port || m->bundle_only) && !m->rtcp_mux)
      return hd_errf(err, errcap, HD_EUNSUPPORTED, "mid %s has no a=rtcp-mux; rtcp-mux is required", m->mid);
  }

  nctx_t *n = &(nctx_t){0};
  n->offer = offer;
  n->p = p;
  n->answer = answer;
  n->out = out;
  n->whep = p->direction == HD_SDP_SENDONLY;
  /* We prefer being the DTLS server (RFC 5763 §5); only a passive offerer forces active.
   * An offer without a=setup is treated as actpass. */
  n->setup = rsetup == HD_SDP_SETUP_PASSIVE ? HD_SDP_SETUP_ACTIVE : HD_SDP_SETUP_PASSIVE;

  memset(out, 0, sizeof *out);
  hd_sdp_init(answer);
  uint64_t sid = ((uint64_t)hd_random_u32() << 31) ^ hd_random_u32();
  snprintf(answer->origin_sess_id, sizeof answer->origin_sess_id, "%llu", (unsigned long long)sid);
  answer->origin_sess_version = 2;
  answer->ice_lite = 1;
  answer->extmap_allow_mixed = offer->extmap_allow_mixed;
  if (n->whep && p->stream_id && p->stream_id[0])
    snprintf(answer->msid_semantic, sizeof answer->msid_semantic, "WMS %s", p->stream_id);
  else
    strcpy(answer->msid_semantic, "WMS");
  answer->n_media = offer->n_media;
  out->n_media = offer->n_media;

  int accepted = 0;
  for (int i = 0; i < offer->n_media; i++) {
    if (answer_section(n, i)) {
      memcpy(answer->bundle[answer->n_bundle++], offer->media[i].mid, HD_SDP_TOKEN_MAX);
      accepted++;
    }
  }
  if (!accepted) {
    int r = hd_errf(err, errcap, HD_EUNSUPPORTED, "no media section can be served: %s", n->why);
    memset(out, 0, sizeof *out);
    return r;
  }
  answer->has_bundle = 1;

  snprintf(out->remote_ufrag, sizeof out->remote_ufrag, "%s", ufrag);
  snprintf(out->remote_pwd, sizeof out->remote_pwd, "%s", pwd);
  snprintf(out->remote_fingerprint, sizeof out->remote_fingerprint, "%s", fp->value);
  out->remote_setup = rsetup;
  out->dtls_server = n->setup == HD_SDP_SETUP_PASSIVE;
  return 0;
}
