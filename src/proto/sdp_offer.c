/* Node-side offerer for the subscriber PeerConnection: RFC 3264 §5 (generating the
 * offer), §8 (modifying the session: stable m= line order, version increments),
 * JSEP RFC 9429 §5.2.2 (subsequent offers, recycling zero-port m= sections with a new
 * mid) and §5.10 (applying an answer), BUNDLE RFC 9143 §7.2 (offerer-tagged section),
 * DTLS roles RFC 8842 §5.5, RTX RFC 4588 §8, ssrc/ssrc-group RFC 5576, msid RFC 8830.
 *
 * The offer is deliberately minimal and the same shape every time: one codec per m=
 * section (the publisher's, since the SFU does not transcode), its RTX, our fixed
 * payload types and extension ids. The answer check is strict about what would make
 * media silently fail later (mids, payload types, transport parameters) and lenient
 * about what does not matter to us (extra attributes, rejected-section contents). */
#include "proto/sdp_offer.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/rand.h"
#include "base/str.h"

/* ---- helpers ---- */

/* Non-empty, fits in cap, and safe to put on an SDP line (no space, no control). */
static int valid_token(const char *s, size_t cap) {
  if (!s || !s[0] || strlen(s) >= cap) return 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p <= ' ' || *p == 0x7f) return 0;
  return 1;
}

/* Like valid_token but spaces are allowed (fmtp) and empty is fine. */
static int valid_text(const char *s, size_t cap) {
  if (!s || strlen(s) >= cap) return 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p < ' ' || *p == 0x7f) return 0;
  return 1;
}

/* Payload type text from an m= line: -1 unless 1-3 digits. */
static int small_num(const char *s) {
  int v = 0, n = 0;
  for (; *s >= '0' && *s <= '9' && n < 4; s++, n++)
    v = v * 10 + (*s - '0');
  return (*s || n == 0 || n > 3) ? -1 : v;
}

/* Our spelling of a codec we can offer, NULL if we cannot. */
static const char *canon_codec(const char *name, uint32_t clock, int kind) {
  if (kind == HD_SDP_AUDIO && !strcasecmp(name, "opus") && clock == 48000) return "opus";
  if (kind == HD_SDP_VIDEO && !strcasecmp(name, "VP8") && clock == 90000) return "VP8";
  if (kind == HD_SDP_VIDEO && !strcasecmp(name, "H264") && clock == 90000) return "H264";
  return NULL;
}

#define HAS_NUL(arr) (memchr((arr), 0, sizeof(arr)) != NULL)

static int check_track(const hd_sdp_out_track_t *t) {
  if (!t || (t->kind != HD_SDP_AUDIO && t->kind != HD_SDP_VIDEO) || t->ssrc == 0) return HD_EINVAL;
  if (!HAS_NUL(t->codec) || !HAS_NUL(t->fmtp) || !HAS_NUL(t->stream_id) || !HAS_NUL(t->track_id))
    return HD_EINVAL;
  if (t->kind == HD_SDP_AUDIO && t->rtx_ssrc) return HD_EINVAL;
  if (t->rtx_ssrc == t->ssrc) return HD_EINVAL;
  if (t->fec_ssrc && (t->kind != HD_SDP_VIDEO || t->fec_ssrc == t->ssrc || t->fec_ssrc == t->rtx_ssrc))
    return HD_EINVAL;
  if (!valid_token(t->stream_id, sizeof t->stream_id) || !valid_token(t->track_id, sizeof t->track_id))
    return HD_EINVAL;
  if (!valid_text(t->fmtp, sizeof t->fmtp)) return HD_EINVAL;
  if (!canon_codec(t->codec, t->clock, t->kind)) return HD_EUNSUPPORTED;
  return 0;
}

int hd_sdp_out_track_from_negotiated(hd_sdp_out_track_t *t, const hd_sdp_media_negotiated_t *src,
                                     uint32_t ssrc, uint32_t rtx_ssrc, const char *stream_id,
                                     const char *track_id) {
  if (!t || !src || !ssrc || !valid_token(stream_id, sizeof t->stream_id) ||
      !valid_token(track_id, sizeof t->track_id))
    return HD_EINVAL;
  if (src->kind != HD_SDP_AUDIO && src->kind != HD_SDP_VIDEO) return HD_EINVAL;
  if (!HAS_NUL(src->codec) || !HAS_NUL(src->fmtp)) return HD_EINVAL;
  const char *name = canon_codec(src->codec, src->clock, src->kind);
  if (!name) return HD_EUNSUPPORTED;
  hd_sdp_out_track_t x;
  memset(&x, 0, sizeof x);
  x.kind = src->kind;
  hd_scpy(x.codec, sizeof x.codec, name);
  x.clock = src->clock;
  x.channels = src->channels;
  hd_scpy(x.fmtp, sizeof x.fmtp, src->fmtp);
  x.ssrc = ssrc;
  x.rtx_ssrc = src->kind == HD_SDP_VIDEO ? rtx_ssrc : 0;
  x.red = src->kind == HD_SDP_AUDIO && src->red_pt != 0;
  hd_scpy(x.stream_id, sizeof x.stream_id, stream_id);
  hd_scpy(x.track_id, sizeof x.track_id, track_id);
  int rc = check_track(&x);
  if (rc < 0) return rc;
  *t = x;
  return 0;
}

/* ---- init / params ---- */

static int check_creds(const char *ufrag, const char *pwd) {
  /* RFC 8839 §5.4: ufrag >= 4 and pwd >= 22 characters */
  if (!valid_token(ufrag, HD_SDP_ICE_MAX) || !valid_token(pwd, HD_SDP_ICE_MAX)) return HD_EINVAL;
  if (strlen(ufrag) < 4 || strlen(pwd) < 22) return HD_EINVAL;
  return 0;
}

int hd_sdp_offerer_init(hd_sdp_offerer_t *o, const hd_sdp_offerer_params_t *p) {
  if (!o || !p) return HD_EINVAL;
  if (check_creds(p->ice_ufrag, p->ice_pwd) < 0) return HD_EINVAL;
  if (!valid_token(p->fingerprint_sha256, HD_SDP_FP_MAX) || strlen(p->fingerprint_sha256) != 95)
    return HD_EINVAL;
  if (!valid_token(p->cand_ip, HD_SDP_ADDR_MAX) || p->cand_port == 0) return HD_EINVAL;
  if (p->cname && !valid_token(p->cname, HD_SDP_OFFER_ID_MAX)) return HD_EINVAL;
  memset(o, 0, sizeof *o);
  hd_scpy(o->ice_ufrag, sizeof o->ice_ufrag, p->ice_ufrag);
  hd_scpy(o->ice_pwd, sizeof o->ice_pwd, p->ice_pwd);
  hd_scpy(o->fingerprint, sizeof o->fingerprint, p->fingerprint_sha256);
  hd_scpy(o->cand_ip, sizeof o->cand_ip, p->cand_ip);
  o->cand_port = p->cand_port;
  o->cand_tcp_port = p->cand_tcp_port;
  hd_scpy(o->cname, sizeof o->cname, p->cname ? p->cname : "hudong");
  o->twcc = p->twcc != 0;
  /* RFC 8866 §5.2: sess-id is a numeric string; 62 random bits keep it positive in
   * a signed 64-bit integer, which some parsers use. */
  uint64_t sid = ((uint64_t)(hd_random_u32() & 0x3fffffffu) << 32) | hd_random_u32();
  snprintf(o->sess_id, sizeof o->sess_id, "%llu", (unsigned long long)sid);
  return 0;
}

int hd_sdp_offerer_restart_ice(hd_sdp_offerer_t *o, const char *ufrag, const char *pwd) {
  if (!o || check_creds(ufrag, pwd) < 0) return HD_EINVAL;
  hd_scpy(o->ice_ufrag, sizeof o->ice_ufrag, ufrag);
  hd_scpy(o->ice_pwd, sizeof o->ice_pwd, pwd);
  o->dirty = 1;
  return 0;
}

int hd_sdp_offerer_needs_offer(const hd_sdp_offerer_t *o) { return o && o->dirty && o->n_slots > 0; }

/* ---- payload types ---- */

static int pt_used(const hd_sdp_offerer_t *o, int pt) {
  for (int i = 0; i < o->n_ptmap; i++)
    if (o->ptmap[i].pt == pt || o->ptmap[i].rtx_pt == pt) return 1;
  return 0;
}

/* A free dynamic PT: 96-127 first, then 35-63 (RFC 3551 §6 unassigned range that
 * browsers also use; 64-95 would collide with RTCP packet types under rtcp-mux,
 * RFC 5761 §4). Returns -1 if none. */
static int free_pt(const hd_sdp_offerer_t *o, int avoid) {
  for (int pt = 96; pt <= 127; pt++)
    if (pt != avoid && !pt_used(o, pt)) return pt;
  for (int pt = 35; pt < HD_SDP_OFFER_PT_FLEXFEC; pt++)
    if (pt != avoid && !pt_used(o, pt)) return pt;
  return -1;
}

/* The PTs for the codec configuration of t: the same configuration always gets the
 * same PTs; a new one gets our preferred PTs if free, else free ones. */
static int ptmap_get(hd_sdp_offerer_t *o, const hd_sdp_out_track_t *t, uint8_t *pt, uint8_t *rtx_pt) {
  const char *name = canon_codec(t->codec, t->clock, t->kind);
  for (int i = 0; i < o->n_ptmap; i++) {
    hd_sdp_offer_ptmap_t *e = &o->ptmap[i];
    if (!strcmp(e->name, name) && e->clock == t->clock && e->channels == t->channels &&
        !strcmp(e->fmtp, t->fmtp)) {
      *pt = e->pt;
      *rtx_pt = e->rtx_pt;
      return 0;
    }
  }
  if (o->n_ptmap >= HD_SDP_OFFER_MAX_PTMAP) return HD_ENOSPC;
  int want = HD_SDP_OFFER_PT_OPUS, want_rtx = -1;
  if (!strcmp(name, "VP8")) want = HD_SDP_OFFER_PT_VP8, want_rtx = HD_SDP_OFFER_PT_VP8_RTX;
  if (!strcmp(name, "H264")) want = HD_SDP_OFFER_PT_H264, want_rtx = HD_SDP_OFFER_PT_H264_RTX;
  int p = pt_used(o, want) ? free_pt(o, -1) : want;
  if (p < 0) return HD_ENOSPC;
  int r = 0;
  if (t->kind == HD_SDP_VIDEO) {
    r = (want_rtx >= 0 && !pt_used(o, want_rtx) && want_rtx != p) ? want_rtx : free_pt(o, p);
    if (r < 0) return HD_ENOSPC;
  }
  hd_sdp_offer_ptmap_t *e = &o->ptmap[o->n_ptmap++];
  memset(e, 0, sizeof *e);
  hd_scpy(e->name, sizeof e->name, name);
  e->clock = t->clock;
  e->channels = t->channels;
  hd_scpy(e->fmtp, sizeof e->fmtp, t->fmtp);
  e->pt = (uint8_t)p;
  e->rtx_pt = (uint8_t)r;
  *pt = e->pt;
  *rtx_pt = e->rtx_pt;
  return 0;
}

/* ---- tracks ---- */

static void new_mid(hd_sdp_offerer_t *o, char *mid) { snprintf(mid, HD_SDP_TOKEN_MAX, "%u", o->next_mid++); }

int hd_sdp_offerer_add_track(hd_sdp_offerer_t *o, const hd_sdp_out_track_t *t, char *mid_out, size_t cap) {
  if (!o || !t) return HD_EINVAL;
  int rc = check_track(t);
  if (rc < 0) return rc;
  for (int i = 0; i < o->n_slots; i++)
    if (o->slots[i].state == HD_SDP_SLOT_ACTIVE &&
        (o->slots[i].track.ssrc == t->ssrc || o->slots[i].track.ssrc == t->rtx_ssrc ||
         (t->rtx_ssrc && o->slots[i].track.rtx_ssrc == t->rtx_ssrc) || o->slots[i].track.rtx_ssrc == t->ssrc))
      return HD_EINVAL; /* an SSRC may appear in one m= section only (RFC 9143 §9.1) */

  /* 1. a live inactive slot of this kind keeps its mid; 2. a settled rejected one is
   * recycled with a new mid; 3. append */
  int idx = -1, recycle = 0;
  for (int i = 0; i < o->n_slots && idx < 0; i++)
    if (o->slots[i].state == HD_SDP_SLOT_INACTIVE && o->slots[i].kind == t->kind) idx = i;
  for (int i = 0; i < o->n_slots && idx < 0; i++)
    if (o->slots[i].state == HD_SDP_SLOT_REJECTED && o->slots[i].settled_rejected &&
        o->slots[i].kind == t->kind)
      idx = i, recycle = 1;
  if (idx < 0 && o->n_slots >= HD_SDP_MAX_MEDIA) return HD_ENOSPC;

  uint8_t pt, rtx_pt;
  rc = ptmap_get(o, t, &pt, &rtx_pt);
  if (rc < 0) return rc;

  hd_sdp_offer_slot_t *s;
  if (idx < 0) {
    idx = o->n_slots++;
    /* Before the first offer an audio section goes before the video ones: m-line 0
     * becomes the offerer-tagged BUNDLE section (RFC 9143 §7.2), and a client may
     * refuse a video section it cannot decode (Debian's Chromium has no H.264
     * High); Chromium then fails the whole answer ("Failed to setup RTCP mux" on
     * every other section). Nothing was offered yet, so no m-line moves. */
    if (t->kind == HD_SDP_AUDIO && o->version == 0)
      for (int i = 0; i < idx; i++)
        if (o->slots[i].kind == HD_SDP_VIDEO) {
          memmove(&o->slots[i + 1], &o->slots[i], (size_t)(idx - i) * sizeof o->slots[0]);
          idx = i;
          break;
        }
    s = &o->slots[idx];
    memset(s, 0, sizeof *s);
    s->kind = t->kind;
    new_mid(o, s->mid);
  } else {
    s = &o->slots[idx];
    if (recycle) {
      memcpy(s->old_mid, s->mid, sizeof s->old_mid);
      s->old_state = s->state;
      new_mid(o, s->mid);
      s->offered = 0;
      s->settled_rejected = 0;
      s->accepted = 0;
    }
  }
  s->state = HD_SDP_SLOT_ACTIVE;
  s->track = *t;
  s->pt = pt;
  s->rtx_pt = t->rtx_ssrc ? rtx_pt : 0;
  o->dirty = 1;
  if (mid_out && cap) snprintf(mid_out, cap, "%s", s->mid);
  return idx;
}

/* The offerer-tagged BUNDLE section: the first m= section that is not rejected. */
static int tag_index(const hd_sdp_offerer_t *o) {
  for (int i = 0; i < o->n_slots; i++)
    if (o->slots[i].state != HD_SDP_SLOT_REJECTED) return i;
  return -1;
}

int hd_sdp_offerer_remove_track(hd_sdp_offerer_t *o, const char *mid) {
  if (!o || !mid) return HD_EINVAL;
  int i = hd_sdp_offerer_find_mid(o, mid);
  if (i < 0 || o->slots[i].state != HD_SDP_SLOT_ACTIVE) return HD_ENOTFOUND;
  hd_sdp_offer_slot_t *s = &o->slots[i];
  o->dirty = 1;
  if (!s->offered) {
    if (s->old_mid[0]) {
      /* recycled but never offered: back to the settled rejected section it was */
      memcpy(s->mid, s->old_mid, sizeof s->mid);
      memset(s->old_mid, 0, sizeof s->old_mid);
      s->state = s->old_state;
      s->offered = 1;
      s->settled_rejected = 1;
    } else {
      /* appended and never offered: the client never saw it, so drop it. Every slot
       * after it was appended later, hence never offered either. */
      memmove(&o->slots[i], &o->slots[i + 1], (size_t)(o->n_slots - i - 1) * sizeof o->slots[0]);
      o->n_slots--;
      memset(&o->slots[o->n_slots], 0, sizeof o->slots[0]);
    }
    return 0;
  }
  /* Keep the BUNDLE tag alive (see the header): the tag goes inactive, others port 0. */
  s->state = i == tag_index(o) ? HD_SDP_SLOT_INACTIVE : HD_SDP_SLOT_REJECTED;
  s->settled_rejected = 0;
  return 0;
}

/* ---- offer ---- */

static const char *const audio_exts[] = {HD_SDP_EXT_AUDIO_LEVEL, HD_SDP_EXT_ABS_SEND_TIME, HD_SDP_EXT_TWCC,
                                         HD_SDP_EXT_MID};
static const uint8_t audio_ext_ids[] = {HD_SDP_OFFER_EXTID_AUDIO_LEVEL, HD_SDP_OFFER_EXTID_ABS_SEND_TIME,
                                        HD_SDP_OFFER_EXTID_TWCC, HD_SDP_OFFER_EXTID_MID};
static const char *const video_exts[] = {HD_SDP_EXT_ABS_SEND_TIME, HD_SDP_EXT_TWCC, HD_SDP_EXT_MID,
                                         HD_SDP_EXT_PLAYOUT_DELAY};
static const uint8_t video_ext_ids[] = {HD_SDP_OFFER_EXTID_ABS_SEND_TIME, HD_SDP_OFFER_EXTID_TWCC,
                                        HD_SDP_OFFER_EXTID_MID, HD_SDP_OFFER_EXTID_PLAYOUT_DELAY};

/* The rtcp-fb values we offer for a kind (RFC 4585 nack/pli, RFC 5104 fir, TWCC;
 * audio: nack and TWCC).
 * goog-remb lets a receiver without transport-cc still give us an estimate. */
static int offered_fb(const hd_sdp_offerer_t *o, int kind, const char *out[8]) {
  int n = 0;
  if (kind == HD_SDP_VIDEO) {
    out[n++] = "goog-remb";
    if (o->twcc) out[n++] = "transport-cc";
    out[n++] = "ccm fir";
    out[n++] = "nack";
    out[n++] = "nack pli";
  } else {
    if (o->twcc) out[n++] = "transport-cc";
    /* audio NACK: Opus has no RTX, so the node's repair is the packet again
     * under its SRTP index: the first send's exact bytes, kept per viewer
     * track (sfu/resend_cache.h; a rebuilt header would put other bytes under
     * the same AES-GCM IV, RFC 7714 §8.3). A viewer that does not list it in
     * its answer gets none. */
    out[n++] = "nack";
  }
  return n;
}

static void add_fmt(hd_sdp_media_t *m, uint8_t pt) {
  if (m->n_fmt < HD_SDP_MAX_FMT) snprintf(m->fmt[m->n_fmt++], sizeof m->fmt[0], "%u", pt);
}

/* RED is offered with an audio track whose source sends it (RFC 2198 over
 * the slot's Opus pt); the node passes RED on to a viewer that accepts it. */
static int offers_red(const hd_sdp_offer_slot_t *s) {
  return s->kind == HD_SDP_AUDIO && s->track.red && s->pt != HD_SDP_OFFER_PT_RED;
}

/* FlexFEC is offered with a video track whose subscriber asked for it. */
static int offers_fec(const hd_sdp_offer_slot_t *s) {
  return s->kind == HD_SDP_VIDEO && s->track.fec_ssrc != 0 && s->pt != HD_SDP_OFFER_PT_FLEXFEC &&
         s->rtx_pt != HD_SDP_OFFER_PT_FLEXFEC;
}

static void build_section(const hd_sdp_offerer_t *o, const hd_sdp_offer_slot_t *s, int setup,
                          hd_sdp_media_t *m) {
  memset(m, 0, sizeof *m);
  m->kind = s->kind;
  hd_scpy(m->media, sizeof m->media, s->kind == HD_SDP_AUDIO ? "audio" : "video");
  hd_scpy(m->proto, sizeof m->proto, "UDP/TLS/RTP/SAVPF");
  memcpy(m->mid, s->mid, sizeof m->mid);
  m->has_conn = 1;
  const hd_sdp_out_track_t *t = &s->track;

  hd_sdp_codec_t *c = &m->codecs[m->n_codecs++];
  c->pt = s->pt;
  hd_scpy(c->name, sizeof c->name, canon_codec(t->codec, t->clock, t->kind));
  c->clock = t->clock;
  c->channels = t->channels;
  add_fmt(m, s->pt);

  if (s->state == HD_SDP_SLOT_REJECTED) {
    /* RFC 3264 §8.2: port 0, the format list kept; no transport attributes */
    m->port = 0;
    hd_scpy(m->conn_addrtype, sizeof m->conn_addrtype, "IP4");
    hd_scpy(m->conn_addr, sizeof m->conn_addr, "0.0.0.0");
    m->direction = HD_SDP_INACTIVE;
    return;
  }

  m->port = o->cand_port;
  hd_scpy(m->conn_addrtype, sizeof m->conn_addrtype, strchr(o->cand_ip, ':') ? "IP6" : "IP4");
  hd_scpy(m->conn_addr, sizeof m->conn_addr, o->cand_ip);
  memcpy(m->ice_ufrag, o->ice_ufrag, sizeof m->ice_ufrag);
  memcpy(m->ice_pwd, o->ice_pwd, sizeof m->ice_pwd);
  hd_scpy(m->fingerprint.hash, sizeof m->fingerprint.hash, "sha-256");
  memcpy(m->fingerprint.value, o->fingerprint, sizeof m->fingerprint.value);
  m->setup = setup;
  m->direction = s->state == HD_SDP_SLOT_ACTIVE ? HD_SDP_SENDONLY : HD_SDP_INACTIVE;
  m->rtcp_mux = 1;
  m->rtcp_rsize = 1;

  const char *const *uris = s->kind == HD_SDP_AUDIO ? audio_exts : video_exts;
  const uint8_t *ids = s->kind == HD_SDP_AUDIO ? audio_ext_ids : video_ext_ids;
  int n_ext = 4; /* audio_exts and video_exts alike */
  for (int i = 0; i < n_ext; i++) {
    if (!o->twcc && !strcmp(uris[i], HD_SDP_EXT_TWCC)) continue;
    hd_sdp_extmap_t *e = &m->extmaps[m->n_extmaps++];
    e->id = ids[i];
    hd_scpy(e->uri, sizeof e->uri, uris[i]);
  }

  const char *fb[8];
  int nfb = offered_fb(o, s->kind, fb);
  for (int i = 0; i < nfb; i++)
    hd_scpy(c->fb[c->n_fb++], sizeof c->fb[0], fb[i]);
  hd_scpy(c->fmtp, sizeof c->fmtp, t->fmtp);
  if (offers_red(s)) {
    add_fmt(m, HD_SDP_OFFER_PT_RED);
    hd_sdp_codec_t *r = &m->codecs[m->n_codecs++];
    r->pt = HD_SDP_OFFER_PT_RED;
    hd_scpy(r->name, sizeof r->name, "red");
    r->clock = 48000;
    r->channels = t->channels;
    snprintf(r->fmtp, sizeof r->fmtp, "%u/%u", s->pt, s->pt);
  }
  if (s->rtx_pt) {
    add_fmt(m, s->rtx_pt);
    hd_sdp_codec_t *r = &m->codecs[m->n_codecs++];
    r->pt = s->rtx_pt;
    hd_scpy(r->name, sizeof r->name, "rtx");
    r->clock = t->clock;
    snprintf(r->fmtp, sizeof r->fmtp, "apt=%u", s->pt);
  }
  if (offers_fec(s)) { /* RFC 8627 §5.1.1 */
    add_fmt(m, HD_SDP_OFFER_PT_FLEXFEC);
    hd_sdp_codec_t *r = &m->codecs[m->n_codecs++];
    r->pt = HD_SDP_OFFER_PT_FLEXFEC;
    hd_scpy(r->name, sizeof r->name, "flexfec");
    r->clock = 90000;
    snprintf(r->fmtp, sizeof r->fmtp, "repair-window=%u", HD_SDP_OFFER_FEC_REPAIR_WINDOW_US);
  }

  if (s->state == HD_SDP_SLOT_ACTIVE) {
    m->has_msid = 1;
    hd_scpy(m->msid_stream, sizeof m->msid_stream, t->stream_id);
    hd_scpy(m->msid_track, sizeof m->msid_track, t->track_id);
    uint32_t ssrcs[2] = {t->ssrc, s->rtx_pt ? t->rtx_ssrc : 0};
    if (ssrcs[1]) {
      hd_sdp_ssrc_group_t *g = &m->ssrc_groups[m->n_ssrc_groups++];
      hd_scpy(g->semantics, sizeof g->semantics, "FID");
      g->ssrcs[0] = ssrcs[0];
      g->ssrcs[1] = ssrcs[1];
      g->n_ssrcs = 2;
    }
    if (offers_fec(s)) { /* RFC 8627 §5.1.3: the protected SSRC, then the repair SSRC */
      hd_sdp_ssrc_group_t *g = &m->ssrc_groups[m->n_ssrc_groups++];
      hd_scpy(g->semantics, sizeof g->semantics, "FEC-FR");
      g->ssrcs[0] = t->ssrc;
      g->ssrcs[1] = t->fec_ssrc;
      g->n_ssrcs = 2;
    }
    uint32_t fec_ssrc = offers_fec(s) ? t->fec_ssrc : 0;
    for (int i = 0; i < 3; i++) {
      uint32_t q = i < 2 ? ssrcs[i] : fec_ssrc;
      if (!q) continue;
      hd_sdp_ssrc_t *x = &m->ssrcs[m->n_ssrcs++];
      x->ssrc = q;
      hd_scpy(x->cname, sizeof x->cname, o->cname);
      snprintf(x->msid, sizeof x->msid, "%s %s", t->stream_id, t->track_id);
    }
  }

  (void)hd_sdp_add_host_candidates(m, o->cand_ip, o->cand_port,
                                   o->cand_tcp_port); /* a fresh section has room */
  m->end_of_candidates = 1;
}

int hd_sdp_offerer_create_offer(hd_sdp_offerer_t *o, hd_sdp_t *offer) {
  if (!o || !offer) return HD_EINVAL;
  if (o->pending) return HD_ESTATE;
  if (o->n_slots == 0) return HD_EAGAIN;
  int setup = !o->established  ? HD_SDP_SETUP_ACTPASS
              : o->dtls_server ? HD_SDP_SETUP_PASSIVE
                               : HD_SDP_SETUP_ACTIVE;

  hd_sdp_init(offer);
  hd_scpy(offer->origin_sess_id, sizeof offer->origin_sess_id, o->sess_id);
  offer->origin_sess_version = ++o->version;
  offer->ice_lite = 1;
  hd_scpy(offer->msid_semantic, sizeof offer->msid_semantic, "WMS");
  offer->n_media = o->n_slots;
  for (int i = 0; i < o->n_slots; i++) {
    hd_sdp_offer_slot_t *s = &o->slots[i];
    build_section(o, s, setup, &offer->media[i]);
    if (s->state != HD_SDP_SLOT_REJECTED) memcpy(offer->bundle[offer->n_bundle++], s->mid, HD_SDP_TOKEN_MAX);
    s->offered = 1;
    memset(s->old_mid, 0, sizeof s->old_mid);
  }
  offer->has_bundle = offer->n_bundle > 0;
  memcpy(o->pending_slots, o->slots, sizeof o->slots);
  o->n_pending = o->n_slots;
  o->pending = 1;
  o->dirty = 0;
  return 0;
}

int hd_sdp_offerer_rollback(hd_sdp_offerer_t *o) {
  if (!o) return HD_EINVAL;
  if (!o->pending) return HD_ESTATE;
  o->pending = 0;
  o->dirty = 1;
  return 0;
}

/* ---- answer ---- */

static int in_group(const hd_sdp_t *a, const char *mid) {
  for (int i = 0; i < a->n_bundle && i < HD_SDP_MAX_MEDIA; i++)
    if (!strcmp(a->bundle[i], mid)) return 1;
  return 0;
}

/* Checks one accepted section against what we offered and fills nm. */
static int answer_section(const hd_sdp_offerer_t *o, const hd_sdp_offer_slot_t *s, const hd_sdp_t *ans, int i,
                          hd_sdp_media_negotiated_t *nm, char *err, size_t errcap) {
  const hd_sdp_media_t *am = &ans->media[i];
  const hd_sdp_out_track_t *t = &s->track;
  int has_pt = 0, has_rtx = 0, has_red = 0, has_fec = 0;
  for (int f = 0; f < am->n_fmt; f++) {
    int pt = small_num(am->fmt[f]);
    if (pt == HD_SDP_OFFER_PT_RED && offers_red(s)) {
      has_red = 1;
      continue;
    }
    if (pt == HD_SDP_OFFER_PT_FLEXFEC && offers_fec(s)) {
      const hd_sdp_codec_t *c = hd_sdp_codec_by_pt(am, pt);
      if (c && c->name[0] && (strcasecmp(c->name, "flexfec") || c->clock != 90000))
        return hd_errf(err, errcap, HD_EPROTO,
                       "mid %s: answer maps payload type %d to %s/%u, offer had flexfec/90000", s->mid, pt,
                       c->name, c->clock);
      has_fec = 1;
      continue;
    }
    if (pt < 0 || (pt != s->pt && (!s->rtx_pt || pt != s->rtx_pt)))
      return hd_errf(err, errcap, HD_EPROTO, "mid %s: answer has payload type %s, which was not offered",
                     s->mid, am->fmt[f]);
    if (pt == s->pt)
      has_pt = 1;
    else
      has_rtx = 1;
    const hd_sdp_codec_t *c = hd_sdp_codec_by_pt(am, pt);
    const char *want = pt == s->pt ? canon_codec(t->codec, t->clock, t->kind) : "rtx";
    if (c && c->name[0] && (strcasecmp(c->name, want) || c->clock != t->clock))
      return hd_errf(err, errcap, HD_EPROTO, "mid %s: answer maps payload type %d to %s/%u, offer had %s/%u",
                     s->mid, pt, c->name, c->clock, want, t->clock);
  }
  if (!has_pt)
    return hd_errf(err, errcap, HD_EPROTO,
                   "mid %s: answer accepts the section but drops its codec %s (pt %u)", s->mid, t->codec,
                   s->pt);
  const hd_sdp_codec_t *ac = hd_sdp_codec_by_pt(am, s->pt);
  if (ac && ac->fmtp[0] && !strcasecmp(t->codec, "H264") && !hd_sdp_h264_same_profile(t->fmtp, ac->fmtp))
    return hd_errf(err, errcap, HD_EPROTO, "mid %s: answer's H264 fmtp '%s' does not match the offered '%s'",
                   s->mid, ac->fmtp, t->fmtp);
  if (!am->rtcp_mux) return hd_errf(err, errcap, HD_EUNSUPPORTED, "mid %s: answer lacks a=rtcp-mux", s->mid);
  if (!in_group(ans, s->mid))
    return hd_errf(err, errcap, HD_EUNSUPPORTED, "mid %s: accepted but not in the answer's BUNDLE group",
                   s->mid);

  nm->active = 1;
  nm->direction = HD_SDP_SENDONLY;
  nm->pt = s->pt;
  hd_scpy(nm->codec, sizeof nm->codec, canon_codec(t->codec, t->clock, t->kind));
  nm->clock = t->clock;
  nm->channels = t->channels;
  hd_scpy(nm->fmtp, sizeof nm->fmtp, t->fmtp);
  nm->rtx_pt = has_rtx ? s->rtx_pt : 0;
  nm->red_pt = has_red ? HD_SDP_OFFER_PT_RED : 0;
  /* FlexFEC the viewer takes: our repair SSRC (the offer's FEC-FR group) */
  nm->fec_pt = has_fec ? HD_SDP_OFFER_PT_FLEXFEC : 0;
  nm->remote_fec_ssrc = has_fec ? t->fec_ssrc : 0;
  /* rtcp-fb is only in effect if both sides list it (RFC 4585 §4.2); a missing codec
   * entry in the answer means none */
  const char *fb[8];
  int nfb = offered_fb(o, s->kind, fb);
  for (int f = 0; f < nfb; f++) {
    if (!hd_sdp_codec_has_fb(am, ac, fb[f])) continue;
    if (!strcmp(fb[f], "nack")) nm->nack = 1;
    if (!strcmp(fb[f], "nack pli")) nm->pli = 1;
    if (!strcmp(fb[f], "ccm fir")) nm->fir = 1;
    if (!strcmp(fb[f], "transport-cc")) nm->twcc_fb = 1;
    if (!strcmp(fb[f], "goog-remb")) nm->remb = 1;
  }
  /* extensions: only URIs we offered for this kind; the answer's id is the one the
   * receiver parses with. We write one-byte headers only, so ids 1..14. */
  const char *const *uris = s->kind == HD_SDP_AUDIO ? audio_exts : video_exts;
  int n_ext = 4; /* audio_exts and video_exts alike */
  for (int e = 0; e < n_ext; e++) {
    if (!o->twcc && !strcmp(uris[e], HD_SDP_EXT_TWCC)) continue;
    int k = hd_sdp_extmap_by_uri(am, uris[e]);
    if (k < 0 || am->extmaps[k].id < 1 || am->extmaps[k].id > 14) continue;
    if (am->extmaps[k].direction == HD_SDP_SENDONLY || am->extmaps[k].direction == HD_SDP_INACTIVE) continue;
    uint8_t id = (uint8_t)am->extmaps[k].id;
    if (!strcmp(uris[e], HD_SDP_EXT_MID))
      nm->ext_mid = id;
    else if (!strcmp(uris[e], HD_SDP_EXT_ABS_SEND_TIME))
      nm->ext_abs_send_time = id;
    else if (!strcmp(uris[e], HD_SDP_EXT_TWCC))
      nm->ext_twcc = id;
    else if (!strcmp(uris[e], HD_SDP_EXT_AUDIO_LEVEL))
      nm->ext_audio_level = id;
    else if (!strcmp(uris[e], HD_SDP_EXT_PLAYOUT_DELAY))
      nm->ext_playout_delay = id;
  }
  if (am->n_ssrcs) nm->remote_ssrc = am->ssrcs[0].ssrc;
  return 0;
}

int hd_sdp_offerer_apply_answer(hd_sdp_offerer_t *o, const hd_sdp_t *ans, hd_sdp_negotiated_t *out, char *err,
                                size_t errcap) {
  if (err && errcap) err[0] = '\0';
  if (!o || !ans || !out) return hd_errf(err, errcap, HD_EINVAL, "internal error: NULL argument");
  if (!o->pending) return hd_errf(err, errcap, HD_ESTATE, "no offer is pending");
  if (ans->n_media != o->n_pending)
    return hd_errf(err, errcap, HD_EPROTO, "answer has %d m-lines, the offer has %d", ans->n_media,
                   o->n_pending);
  const hd_sdp_offer_slot_t *ps = o->pending_slots;

  /* every m-line answered, in order, same mid and kind (RFC 3264 §6) */
  int live = 0;
  for (int i = 0; i < o->n_pending; i++) {
    const hd_sdp_media_t *am = &ans->media[i];
    if (!am->mid[0]) return hd_errf(err, errcap, HD_EPROTO, "answer m-line %d has no a=mid", i);
    if (strcmp(am->mid, ps[i].mid))
      return hd_errf(err, errcap, HD_EPROTO, "answer m-line %d has mid '%s', the offer has '%s' there", i,
                     am->mid, ps[i].mid);
    if (am->kind != ps[i].kind)
      return hd_errf(err, errcap, HD_EPROTO, "mid %s: answer media type '%s' differs from the offer's",
                     am->mid, am->media);
    if (ps[i].state != HD_SDP_SLOT_REJECTED && am->port != 0) {
      int d = hd_sdp_eff_direction(ans, i);
      if (d == HD_SDP_SENDRECV || d == HD_SDP_SENDONLY)
        return hd_errf(err, errcap, HD_EPROTO, "mid %s: answer direction %s is not valid for a %s offer",
                       am->mid, hd_sdp_direction_name(d),
                       ps[i].state == HD_SDP_SLOT_ACTIVE ? "sendonly" : "inactive");
      live++;
    }
  }

  /* transport: from the answer's BUNDLE-tag section (RFC 9143 §7.3) */
  memset(out, 0, sizeof *out);
  int dtls_server = o->dtls_server, setup = HD_SDP_SETUP_NONE;
  const hd_sdp_fingerprint_t *fp = NULL;
  if (live) {
    if (!ans->has_bundle || ans->n_bundle == 0)
      return hd_errf(err, errcap, HD_EUNSUPPORTED, "answer has no a=group:BUNDLE; BUNDLE is required");
    int tag = hd_sdp_media_by_mid(ans, ans->bundle[0]);
    if (tag < 0)
      return hd_errf(err, errcap, HD_EPROTO, "answer's a=group:BUNDLE names mid '%s' that has no m-line",
                     ans->bundle[0]);
    const char *ufrag = hd_sdp_eff_ice_ufrag(ans, tag), *pwd = hd_sdp_eff_ice_pwd(ans, tag);
    if (!ufrag[0] || !pwd[0])
      return hd_errf(err, errcap, HD_EUNSUPPORTED, "answer has no a=ice-ufrag / a=ice-pwd");
    fp = hd_sdp_eff_fingerprint(ans, tag);
    if (!fp || strcmp(fp->hash, "sha-256"))
      return hd_errf(err, errcap, HD_EUNSUPPORTED, "answer has no sha-256 a=fingerprint");
    setup = hd_sdp_eff_setup(ans, tag);
    if (setup == HD_SDP_SETUP_NONE) setup = HD_SDP_SETUP_ACTIVE; /* RFC 4145 §4 default */
    if (setup != HD_SDP_SETUP_ACTIVE && setup != HD_SDP_SETUP_PASSIVE)
      return hd_errf(err, errcap, HD_EPROTO, "answer a=setup:%s; an answer must be active or passive",
                     hd_sdp_setup_name(setup));
    dtls_server = setup == HD_SDP_SETUP_ACTIVE;
    if (o->established && dtls_server != o->dtls_server)
      return hd_errf(err, errcap, HD_EUNSUPPORTED, "answer swaps the DTLS roles (a=setup:%s); not supported",
                     hd_sdp_setup_name(setup));
    if (o->established && o->remote_fingerprint[0] && strcasecmp(o->remote_fingerprint, fp->value))
      return hd_errf(err, errcap, HD_EUNSUPPORTED, "answer changes the DTLS fingerprint; not supported");
    hd_scpy(out->remote_ufrag, sizeof out->remote_ufrag, ufrag);
    hd_scpy(out->remote_pwd, sizeof out->remote_pwd, pwd);
    hd_scpy(out->remote_fingerprint, sizeof out->remote_fingerprint, fp->value);
  }
  out->remote_setup = setup;
  out->dtls_server = dtls_server;

  /* per section */
  out->n_media = o->n_pending;
  for (int i = 0; i < o->n_pending; i++) {
    hd_sdp_media_negotiated_t *nm = &out->media[i];
    nm->kind = ps[i].kind;
    memcpy(nm->mid, ps[i].mid, sizeof nm->mid);
    const hd_sdp_media_t *am = &ans->media[i];
    if (ps[i].state != HD_SDP_SLOT_ACTIVE || am->port == 0) continue;
    if (hd_sdp_eff_direction(ans, i) != HD_SDP_RECVONLY) continue; /* inactive: not receiving */
    int rc = answer_section(o, &ps[i], ans, i, nm, err, errcap);
    if (rc < 0) {
      memset(out, 0, sizeof *out);
      return rc;
    }
  }

  /* commit: the answer is good */
  for (int i = 0; i < o->n_pending; i++) {
    hd_sdp_offer_slot_t *s = &o->slots[i];
    int same = i < o->n_slots && !strcmp(s->mid, ps[i].mid);
    int refused = ps[i].state != HD_SDP_SLOT_REJECTED && ans->media[i].port == 0;
    if (!same) continue; /* recycled since the offer: its new mid is not negotiated yet */
    if (ps[i].state == HD_SDP_SLOT_REJECTED || refused) {
      if (refused) s->state = HD_SDP_SLOT_REJECTED;
      /* a section re-activated after the offer (cannot happen with same mid) is left as is */
      if (s->state == HD_SDP_SLOT_REJECTED) s->settled_rejected = 1;
    }
    s->accepted = out->media[i].active;
  }
  if (fp) {
    o->established = 1;
    o->dtls_server = dtls_server;
    hd_scpy(o->remote_fingerprint, sizeof o->remote_fingerprint, fp->value);
    hd_scpy(o->remote_ufrag, sizeof o->remote_ufrag, out->remote_ufrag);
  }
  o->pending = 0;
  return 0;
}

/* ---- lookups ---- */

const hd_sdp_offer_slot_t *hd_sdp_offerer_slot(const hd_sdp_offerer_t *o, int i) {
  return (o && i >= 0 && i < o->n_slots) ? &o->slots[i] : NULL;
}

int hd_sdp_offerer_find_mid(const hd_sdp_offerer_t *o, const char *mid) {
  if (!o || !mid) return HD_EINVAL;
  for (int i = 0; i < o->n_slots; i++)
    if (!strcmp(o->slots[i].mid, mid)) return i;
  return HD_ENOTFOUND;
}

const hd_sdp_out_track_t *hd_sdp_offerer_track(const hd_sdp_offerer_t *o, const char *mid) {
  int i = hd_sdp_offerer_find_mid(o, mid);
  return (i >= 0 && o->slots[i].state == HD_SDP_SLOT_ACTIVE) ? &o->slots[i].track : NULL;
}
