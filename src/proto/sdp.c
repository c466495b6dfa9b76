/* SDP parser and serializer (RFC 8866 §5 line grammar) with the WebRTC attribute set
 * of JSEP (RFC 9429 §5.8): ICE (RFC 8839 §5), DTLS (RFC 8122 §5, RFC 4145 §4), BUNDLE
 * (RFC 9143 §7), extmap (RFC 8285 §8), ssrc (RFC 5576 §4), msid (RFC 8830 §2), rid
 * (RFC 8851 §4), simulcast (RFC 8853 §5.1), SCTP (RFC 8841 §6).
 *
 * The parser works on one line at a time and writes straight into the caller's
 * fixed-size struct: every copy is bounded and a value that does not fit is an error
 * (a silently truncated ICE password or fingerprint would fail much later and much
 * more confusingly). Parsing is deliberately lenient about what WebRTC stacks do not
 * agree on (unknown lines/attributes, missing o=, "a=msid-semantic: WMS" spacing) and
 * strict about what we act on (numbers, payload types, mandatory tokens). */
#include "proto/sdp.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"

/* ---- small string helpers: a span is a non-NUL-terminated slice of the input ---- */

typedef struct {
  const char *p;
  size_t n;
} span_t;

static int is_ws(char c) { return c == ' ' || c == '\t'; }

static span_t span_trim(span_t s) {
  while (s.n && is_ws(s.p[0]))
    s.p++, s.n--;
  while (s.n && is_ws(s.p[s.n - 1]))
    s.n--;
  return s;
}

/* Takes the next whitespace-separated token from *s; returns 0 when none is left. */
static int next_tok(span_t *s, span_t *tok) {
  *s = span_trim(*s);
  if (!s->n) return 0;
  size_t i = 0;
  while (i < s->n && !is_ws(s->p[i]))
    i++;
  tok->p = s->p;
  tok->n = i;
  s->p += i;
  s->n -= i;
  return 1;
}

static int span_eq(span_t s, const char *lit) {
  size_t n = strlen(lit);
  return s.n == n && memcmp(s.p, lit, n) == 0;
}

static char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c; }

static int span_eq_ci(span_t s, const char *lit) {
  size_t n = strlen(lit);
  if (s.n != n) return 0;
  for (size_t i = 0; i < n; i++)
    if (lower(s.p[i]) != lower(lit[i])) return 0;
  return 1;
}

/* Strict unsigned decimal: digits only, no sign, no overflow past max. */
static int parse_uint(span_t s, uint64_t max, uint64_t *out) {
  if (!s.n || s.n > 20) return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < s.n; i++) {
    if (s.p[i] < '0' || s.p[i] > '9') return -1;
    unsigned d = (unsigned)(s.p[i] - '0');
    if (v > (max - d) / 10) return -1;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

/* ---- parse context ---- */

typedef struct {
  hd_sdp_t *sdp;
  hd_sdp_media_t *m; /* current m= section, NULL at session level */
  int line;
  char *err;
  size_t errcap;
} pctx_t;

__attribute__((format(printf, 2, 3))) static int fail(pctx_t *c, const char *fmt, ...) {
  if (c->err && c->errcap) {
    int k = c->line > 0 ? snprintf(c->err, c->errcap, "line %d: ", c->line) : 0;
    if (k < 0) k = 0;
    if ((size_t)k < c->errcap) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(c->err + k, c->errcap - (size_t)k, fmt, ap);
      va_end(ap);
    }
  }
  return HD_EPROTO;
}

/* Bounded copy of a span into a fixed char array; over-long is an error naming `what`. */
static int cpy(pctx_t *c, char *dst, size_t cap, span_t s, const char *what) {
  if (s.n >= cap) return fail(c, "%s too long (max %zu characters)", what, cap - 1);
  if (s.n) memcpy(dst, s.p, s.n);
  /* zero the tail too: a value overwritten by a shorter one leaves no stale bytes, so
   * equal descriptions are equal structs (the fuzzer checks parse(write(x)) == x) */
  memset(dst + s.n, 0, cap - s.n);
  return 0;
}

#define CPY(dst, s, what)                                                                                    \
  do {                                                                                                       \
    if (cpy(c, (dst), sizeof(dst), (s), (what)) < 0) return HD_EPROTO;                                       \
  } while (0)

static int kind_of(const char *media) {
  if (!strcmp(media, "audio")) return HD_SDP_AUDIO;
  if (!strcmp(media, "video")) return HD_SDP_VIDEO;
  if (!strcmp(media, "application")) return HD_SDP_APPLICATION;
  return HD_SDP_KIND_OTHER;
}

static int dir_of(span_t s) {
  if (span_eq(s, "sendrecv")) return HD_SDP_SENDRECV;
  if (span_eq(s, "sendonly")) return HD_SDP_SENDONLY;
  if (span_eq(s, "recvonly")) return HD_SDP_RECVONLY;
  if (span_eq(s, "inactive")) return HD_SDP_INACTIVE;
  return HD_SDP_DIR_UNSET;
}

/* ---- line handlers ---- */

static int parse_origin(pctx_t *c, span_t v) {
  span_t t[6];
  for (int i = 0; i < 6; i++)
    if (!next_tok(&v, &t[i])) return fail(c, "bad o= line (need 6 fields)");
  hd_sdp_t *s = c->sdp;
  uint64_t ver;
  if (parse_uint(t[2], UINT64_MAX, &ver) < 0) return fail(c, "bad o= session version");
  CPY(s->origin_user, t[0], "o= username");
  CPY(s->origin_sess_id, t[1], "o= session id");
  s->origin_sess_version = ver;
  CPY(s->origin_addrtype, t[4], "o= address type");
  CPY(s->origin_addr, t[5], "o= address");
  return 0;
}

static int parse_conn(pctx_t *c, span_t v, int *has, char *atype, size_t acap, char *addr, size_t addrcap) {
  span_t nettype, at, ad;
  if (!next_tok(&v, &nettype) || !next_tok(&v, &at) || !next_tok(&v, &ad)) return fail(c, "bad c= line");
  if (cpy(c, atype, acap, at, "c= address type") < 0) return HD_EPROTO;
  if (cpy(c, addr, addrcap, ad, "c= address") < 0) return HD_EPROTO;
  *has = 1;
  return 0;
}

static int parse_mline(pctx_t *c, span_t v) {
  hd_sdp_t *s = c->sdp;
  if (s->n_media >= HD_SDP_MAX_MEDIA) return fail(c, "too many media sections (max %d)", HD_SDP_MAX_MEDIA);
  hd_sdp_media_t *m = &s->media[s->n_media];
  memset(m, 0, sizeof *m);
  span_t media, port, proto, f;
  if (!next_tok(&v, &media) || !next_tok(&v, &port) || !next_tok(&v, &proto)) return fail(c, "bad m= line");
  CPY(m->media, media, "m= media type");
  /* port may be "<port>/<number of ports>"; the count is not used by WebRTC */
  for (size_t i = 0; i < port.n; i++)
    if (port.p[i] == '/') {
      port.n = i;
      break;
    }
  uint64_t pv;
  if (parse_uint(port, 65535, &pv) < 0) return fail(c, "bad m= line: port");
  m->port = (uint16_t)pv;
  CPY(m->proto, proto, "m= protocol");
  int rtp = strstr(m->proto, "RTP") != NULL;
  while (next_tok(&v, &f)) {
    if (m->n_fmt >= HD_SDP_MAX_FMT) return fail(c, "too many formats on m= line (max %d)", HD_SDP_MAX_FMT);
    if (rtp && parse_uint(f, 127, &pv) < 0) return fail(c, "bad m= line: payload type");
    CPY(m->fmt[m->n_fmt], f, "m= format");
    m->n_fmt++;
  }
  if (!m->n_fmt) return fail(c, "bad m= line: no formats");
  m->kind = kind_of(m->media);
  s->n_media++;
  c->m = m;
  return 0;
}

static int parse_pt(pctx_t *c, span_t t, const char *what, uint8_t *pt) {
  uint64_t v;
  if (parse_uint(t, 127, &v) < 0) return fail(c, "bad payload type in %s", what);
  *pt = (uint8_t)v;
  return 0;
}

static hd_sdp_codec_t *codec_get(pctx_t *c, uint8_t pt) {
  hd_sdp_media_t *m = c->m;
  for (int i = 0; i < m->n_codecs; i++)
    if (m->codecs[i].pt == pt) return &m->codecs[i];
  if (m->n_codecs >= HD_SDP_MAX_CODECS) {
    fail(c, "too many codecs in m= section (max %d)", HD_SDP_MAX_CODECS);
    return NULL;
  }
  hd_sdp_codec_t *k = &m->codecs[m->n_codecs++];
  memset(k, 0, sizeof *k);
  k->pt = pt;
  return k;
}

/* a=rtpmap:<pt> <name>/<clock>[/<channels>] */
static int parse_rtpmap(pctx_t *c, span_t v) {
  span_t ptt, enc;
  uint8_t pt = 0;
  if (!next_tok(&v, &ptt) || !next_tok(&v, &enc)) return fail(c, "bad a=rtpmap");
  if (parse_pt(c, ptt, "a=rtpmap", &pt) < 0) return HD_EPROTO;
  span_t part[3];
  int np = 0;
  size_t st = 0;
  for (size_t i = 0; i <= enc.n; i++) {
    if (i == enc.n || enc.p[i] == '/') {
      if (np == 3) return fail(c, "bad a=rtpmap encoding");
      part[np].p = enc.p + st;
      part[np].n = i - st;
      np++;
      st = i + 1;
    }
  }
  uint64_t clock, ch = 0;
  if (np < 2 || !part[0].n || parse_uint(part[1], UINT32_MAX, &clock) < 0 ||
      (np == 3 && parse_uint(part[2], 255, &ch) < 0))
    return fail(c, "bad a=rtpmap encoding");
  hd_sdp_codec_t *k = codec_get(c, pt);
  if (!k) return HD_EPROTO;
  CPY(k->name, part[0], "a=rtpmap encoding name");
  k->clock = (uint32_t)clock;
  k->channels = (uint8_t)ch;
  return 0;
}

static int parse_fmtp(pctx_t *c, span_t v) {
  span_t ptt;
  uint8_t pt = 0;
  if (!next_tok(&v, &ptt)) return fail(c, "bad a=fmtp");
  v = span_trim(v);
  uint64_t tmp;
  if (parse_uint(ptt, 255, &tmp) < 0) return 0; /* non-RTP format (e.g. old SCTP): ignore */
  if (parse_pt(c, ptt, "a=fmtp", &pt) < 0) return HD_EPROTO;
  if (!v.n) return 0; /* nothing to keep */
  hd_sdp_codec_t *k = codec_get(c, pt);
  if (!k) return HD_EPROTO;
  CPY(k->fmtp, v, "a=fmtp parameters");
  return 0;
}

static int parse_rtcpfb(pctx_t *c, span_t v) {
  span_t ptt;
  if (!next_tok(&v, &ptt)) return fail(c, "bad a=rtcp-fb");
  v = span_trim(v);
  if (!v.n) return fail(c, "bad a=rtcp-fb: no feedback type");
  hd_sdp_media_t *m = c->m;
  int *n;
  char(*list)[HD_SDP_TOKEN_MAX];
  if (span_eq(ptt, "*")) {
    n = &m->n_fb_any;
    list = m->fb_any;
  } else {
    uint8_t pt = 0;
    if (parse_pt(c, ptt, "a=rtcp-fb", &pt) < 0) return HD_EPROTO;
    hd_sdp_codec_t *k = codec_get(c, pt);
    if (!k) return HD_EPROTO;
    n = &k->n_fb;
    list = k->fb;
  }
  if (*n >= HD_SDP_MAX_FB) return fail(c, "too many a=rtcp-fb for one payload type (max %d)", HD_SDP_MAX_FB);
  CPY(list[*n], v, "a=rtcp-fb value");
  (*n)++;
  return 0;
}

/* a=extmap:<id>[/<direction>] <uri> [<extension attributes>] */
static int parse_extmap(pctx_t *c, span_t v) {
  hd_sdp_media_t *m = c->m;
  span_t idt, uri;
  if (!next_tok(&v, &idt) || !next_tok(&v, &uri)) return fail(c, "bad a=extmap");
  span_t dirt = {NULL, 0};
  for (size_t i = 0; i < idt.n; i++)
    if (idt.p[i] == '/') {
      dirt.p = idt.p + i + 1;
      dirt.n = idt.n - i - 1;
      idt.n = i;
      break;
    }
  uint64_t id;
  if (parse_uint(idt, 4351, &id) < 0 || id == 0) return fail(c, "bad a=extmap id");
  int dir = HD_SDP_DIR_UNSET;
  if (dirt.p && !(dir = dir_of(dirt))) return fail(c, "bad a=extmap direction");
  if (m->n_extmaps >= HD_SDP_MAX_EXTMAPS) return fail(c, "too many a=extmap (max %d)", HD_SDP_MAX_EXTMAPS);
  hd_sdp_extmap_t *e = &m->extmaps[m->n_extmaps];
  memset(e, 0, sizeof *e);
  e->id = (uint16_t)id;
  e->direction = dir;
  CPY(e->uri, uri, "a=extmap URI");
  CPY(e->attrs, span_trim(v), "a=extmap attributes");
  m->n_extmaps++;
  return 0;
}

static int parse_ssrc_num(pctx_t *c, span_t t, uint32_t *out) {
  uint64_t v;
  if (parse_uint(t, UINT32_MAX, &v) < 0) return fail(c, "bad SSRC");
  *out = (uint32_t)v;
  return 0;
}

/* a=ssrc:<ssrc> <attribute>[:<value>] */
static int parse_ssrc(pctx_t *c, span_t v) {
  hd_sdp_media_t *m = c->m;
  span_t st;
  uint32_t ssrc = 0;
  if (!next_tok(&v, &st)) return fail(c, "bad a=ssrc");
  if (parse_ssrc_num(c, st, &ssrc) < 0) return HD_EPROTO;
  hd_sdp_ssrc_t *e = NULL;
  for (int i = 0; i < m->n_ssrcs; i++)
    if (m->ssrcs[i].ssrc == ssrc) e = &m->ssrcs[i];
  if (!e) {
    if (m->n_ssrcs >= HD_SDP_MAX_SSRCS) return fail(c, "too many SSRCs (max %d)", HD_SDP_MAX_SSRCS);
    e = &m->ssrcs[m->n_ssrcs++];
    memset(e, 0, sizeof *e);
    e->ssrc = ssrc;
  }
  v = span_trim(v);
  span_t name = v, val = {v.p + v.n, 0};
  for (size_t i = 0; i < v.n; i++)
    if (v.p[i] == ':') {
      name.n = i;
      val.p = v.p + i + 1;
      val.n = v.n - i - 1;
      break;
    }
  val = span_trim(val);
  if (span_eq(name, "cname"))
    CPY(e->cname, val, "a=ssrc cname");
  else if (span_eq(name, "msid"))
    CPY(e->msid, val, "a=ssrc msid");
  return 0;
}

static int parse_ssrc_group(pctx_t *c, span_t v) {
  hd_sdp_media_t *m = c->m;
  span_t sem, t;
  if (!next_tok(&v, &sem)) return fail(c, "bad a=ssrc-group");
  if (m->n_ssrc_groups >= HD_SDP_MAX_SSRC_GROUPS)
    return fail(c, "too many a=ssrc-group (max %d)", HD_SDP_MAX_SSRC_GROUPS);
  hd_sdp_ssrc_group_t *g = &m->ssrc_groups[m->n_ssrc_groups];
  memset(g, 0, sizeof *g);
  CPY(g->semantics, sem, "a=ssrc-group semantics");
  while (next_tok(&v, &t)) {
    if (g->n_ssrcs >= HD_SDP_MAX_GROUP_SSRCS)
      return fail(c, "too many SSRCs in a=ssrc-group (max %d)", HD_SDP_MAX_GROUP_SSRCS);
    if (parse_ssrc_num(c, t, &g->ssrcs[g->n_ssrcs]) < 0) return HD_EPROTO;
    g->n_ssrcs++;
  }
  if (!g->n_ssrcs) return fail(c, "bad a=ssrc-group: no SSRCs");
  m->n_ssrc_groups++;
  return 0;
}

static int parse_rid(pctx_t *c, span_t v) {
  hd_sdp_media_t *m = c->m;
  span_t id, dir;
  if (!next_tok(&v, &id) || !next_tok(&v, &dir)) return fail(c, "bad a=rid");
  if (m->n_rids >= HD_SDP_MAX_RIDS) return fail(c, "too many a=rid (max %d)", HD_SDP_MAX_RIDS);
  hd_sdp_rid_t *r = &m->rids[m->n_rids];
  memset(r, 0, sizeof *r);
  if (span_eq(dir, "send"))
    r->direction = HD_SDP_RID_SEND;
  else if (span_eq(dir, "recv"))
    r->direction = HD_SDP_RID_RECV;
  else
    return fail(c, "bad a=rid direction");
  CPY(r->id, id, "a=rid id");
  CPY(r->params, span_trim(v), "a=rid parameters");
  m->n_rids++;
  return 0;
}

/* a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type>
 *             [raddr <a>] [rport <p>] [tcptype <t>] *(<extension name> <value>) */
static int parse_candidate(pctx_t *c, span_t v) {
  hd_sdp_media_t *m = c->m;
  span_t t[8];
  for (int i = 0; i < 8; i++)
    if (!next_tok(&v, &t[i])) return fail(c, "bad a=candidate");
  if (!span_eq(t[6], "typ")) return fail(c, "bad a=candidate: expected 'typ'");
  if (m->n_candidates >= HD_SDP_MAX_CANDIDATES)
    return fail(c, "too many a=candidate (max %d)", HD_SDP_MAX_CANDIDATES);
  hd_sdp_candidate_t *k = &m->candidates[m->n_candidates];
  memset(k, 0, sizeof *k);
  uint64_t comp, prio, port;
  if (parse_uint(t[1], 256, &comp) < 0 || comp == 0) return fail(c, "bad a=candidate component");
  if (parse_uint(t[3], UINT32_MAX, &prio) < 0) return fail(c, "bad a=candidate priority");
  if (parse_uint(t[5], 65535, &port) < 0) return fail(c, "bad a=candidate port");
  CPY(k->foundation, t[0], "a=candidate foundation");
  CPY(k->transport, t[2], "a=candidate transport");
  for (char *p = k->transport; *p; p++)
    *p = lower(*p);
  CPY(k->addr, t[4], "a=candidate address");
  CPY(k->type, t[7], "a=candidate type");
  k->component = (uint16_t)comp;
  k->priority = (uint32_t)prio;
  k->port = (uint16_t)port;
  span_t key, val;
  while (next_tok(&v, &key) && next_tok(&v, &val)) {
    if (span_eq(key, "raddr"))
      CPY(k->raddr, val, "a=candidate raddr");
    else if (span_eq(key, "rport")) {
      if (parse_uint(val, 65535, &port) < 0) return fail(c, "bad a=candidate rport");
      k->rport = (uint16_t)port;
    } else if (span_eq(key, "tcptype"))
      CPY(k->tcptype, val, "a=candidate tcptype");
  }
  m->n_candidates++;
  return 0;
}

static int parse_fingerprint(pctx_t *c, span_t v, hd_sdp_fingerprint_t *fp) {
  span_t h, val;
  if (!next_tok(&v, &h) || !next_tok(&v, &val)) return fail(c, "bad a=fingerprint");
  /* RFC 8122 §5 allows several; keep the first, but let a sha-256 one win because
   * that is the one we verify against. */
  if (fp->hash[0] && (!strcmp(fp->hash, "sha-256") || !span_eq_ci(h, "sha-256"))) return 0;
  CPY(fp->hash, h, "a=fingerprint hash function");
  for (char *p = fp->hash; *p; p++)
    *p = lower(*p);
  CPY(fp->value, val, "a=fingerprint value");
  return 0;
}

static int parse_setup(pctx_t *c, span_t v, int *out) {
  v = span_trim(v);
  if (span_eq(v, "actpass"))
    *out = HD_SDP_SETUP_ACTPASS;
  else if (span_eq(v, "active"))
    *out = HD_SDP_SETUP_ACTIVE;
  else if (span_eq(v, "passive"))
    *out = HD_SDP_SETUP_PASSIVE;
  else if (span_eq(v, "holdconn"))
    *out = HD_SDP_SETUP_HOLDCONN;
  else
    return fail(c, "bad a=setup value");
  return 0;
}

static int parse_group(pctx_t *c, span_t v) {
  hd_sdp_t *s = c->sdp;
  span_t sem, t;
  if (!next_tok(&v, &sem)) return fail(c, "bad a=group");
  if (!span_eq(sem, "BUNDLE") || s->has_bundle) return 0; /* LS etc., or a 2nd group: ignored */
  s->has_bundle = 1;
  while (next_tok(&v, &t)) {
    if (s->n_bundle >= HD_SDP_MAX_MEDIA)
      return fail(c, "too many mids in a=group:BUNDLE (max %d)", HD_SDP_MAX_MEDIA);
    CPY(s->bundle[s->n_bundle], t, "a=group mid");
    s->n_bundle++;
  }
  return 0;
}

static int parse_attr(pctx_t *c, span_t v) {
  span_t name = v, val = {v.p + v.n, 0};
  for (size_t i = 0; i < v.n; i++)
    if (v.p[i] == ':') {
      name.n = i;
      val.p = v.p + i + 1;
      val.n = v.n - i - 1;
      break;
    }
  name = span_trim(name);
  val = span_trim(val);
  hd_sdp_t *s = c->sdp;
  hd_sdp_media_t *m = c->m;
  uint64_t n;
  int dir = dir_of(name);

  /* attributes valid at both levels */
  if (dir) {
    if (m)
      m->direction = dir;
    else
      s->direction = dir;
  } else if (span_eq(name, "ice-ufrag")) {
    if (m)
      CPY(m->ice_ufrag, val, "a=ice-ufrag");
    else
      CPY(s->ice_ufrag, val, "a=ice-ufrag");
  } else if (span_eq(name, "ice-pwd")) {
    if (m)
      CPY(m->ice_pwd, val, "a=ice-pwd");
    else
      CPY(s->ice_pwd, val, "a=ice-pwd");
  } else if (span_eq(name, "ice-options")) {
    if (m)
      CPY(m->ice_options, val, "a=ice-options");
    else
      CPY(s->ice_options, val, "a=ice-options");
  } else if (span_eq(name, "fingerprint")) {
    return parse_fingerprint(c, val, m ? &m->fingerprint : &s->fingerprint);
  } else if (span_eq(name, "setup")) {
    return parse_setup(c, val, m ? &m->setup : &s->setup);
  } else if (span_eq(name, "extmap-allow-mixed")) {
    if (m)
      m->extmap_allow_mixed = 1;
    else
      s->extmap_allow_mixed = 1;
  } else if (!m) {
    /* session-only attributes; media-only ones at session level are ignored */
    if (span_eq(name, "ice-lite"))
      s->ice_lite = 1;
    else if (span_eq(name, "group"))
      return parse_group(c, val);
    else if (span_eq(name, "msid-semantic"))
      CPY(s->msid_semantic, val, "a=msid-semantic");
  } else if (span_eq(name, "mid")) {
    if (!val.n) return fail(c, "empty a=mid");
    CPY(m->mid, val, "a=mid");
  } else if (span_eq(name, "rtcp-mux")) {
    m->rtcp_mux = 1;
  } else if (span_eq(name, "rtcp-rsize")) {
    m->rtcp_rsize = 1;
  } else if (span_eq(name, "bundle-only")) {
    m->bundle_only = 1;
  } else if (span_eq(name, "rtpmap")) {
    return parse_rtpmap(c, val);
  } else if (span_eq(name, "fmtp")) {
    return parse_fmtp(c, val);
  } else if (span_eq(name, "rtcp-fb")) {
    return parse_rtcpfb(c, val);
  } else if (span_eq(name, "extmap")) {
    return parse_extmap(c, val);
  } else if (span_eq(name, "ssrc")) {
    return parse_ssrc(c, val);
  } else if (span_eq(name, "ssrc-group")) {
    return parse_ssrc_group(c, val);
  } else if (span_eq(name, "msid")) {
    if (m->has_msid) return 0;
    span_t st, tr = {NULL, 0};
    if (!next_tok(&val, &st)) return fail(c, "bad a=msid");
    next_tok(&val, &tr);
    CPY(m->msid_stream, st, "a=msid stream id");
    CPY(m->msid_track, tr, "a=msid track id");
    m->has_msid = 1;
  } else if (span_eq(name, "rid")) {
    return parse_rid(c, val);
  } else if (span_eq(name, "simulcast")) {
    CPY(m->simulcast, val, "a=simulcast");
  } else if (span_eq(name, "candidate")) {
    return parse_candidate(c, val);
  } else if (span_eq(name, "end-of-candidates")) {
    m->end_of_candidates = 1;
  } else if (span_eq(name, "sctp-port")) {
    if (parse_uint(val, 65535, &n) < 0) return fail(c, "bad a=sctp-port");
    m->sctp_port = (uint16_t)n;
  } else if (span_eq(name, "max-message-size")) {
    if (parse_uint(val, UINT64_MAX, &n) < 0) return fail(c, "bad a=max-message-size");
    m->max_message_size = n;
  }
  return 0;
}

void hd_sdp_init(hd_sdp_t *sdp) {
  memset(sdp, 0, sizeof *sdp);
  strcpy(sdp->origin_user, "-");
  strcpy(sdp->origin_sess_id, "0");
  strcpy(sdp->origin_addrtype, "IP4");
  strcpy(sdp->origin_addr, "127.0.0.1");
  strcpy(sdp->session_name, "-");
}

int hd_sdp_parse(hd_sdp_t *sdp, const char *text, size_t len, char *err, size_t errcap) {
  pctx_t ctx = {sdp, NULL, 0, err, errcap};
  pctx_t *c = &ctx;
  if (err && errcap) err[0] = '\0';
  if (!sdp || (!text && len)) return fail(c, "no SDP");
  memset(sdp, 0, sizeof *sdp);
  strcpy(sdp->session_name, "-");
  int seen_v = 0;
  size_t pos = 0;
  while (pos < len) {
    size_t end = pos;
    while (end < len && text[end] != '\n')
      end++;
    span_t ln = {text + pos, end - pos};
    pos = end + 1;
    c->line++;
    if (ln.n && ln.p[ln.n - 1] == '\r') ln.n--;
    if (memchr(ln.p, '\0', ln.n)) return fail(c, "NUL byte in SDP");
    if (!span_trim(ln).n) continue; /* tolerate blank lines (e.g. a trailing one) */
    if (ln.n < 2 || ln.p[1] != '=') return fail(c, "expected <type>=<value>");
    char type = ln.p[0];
    span_t v = {ln.p + 2, ln.n - 2};
    if (!seen_v) {
      if (type != 'v' || !span_eq(span_trim(v), "0")) return fail(c, "SDP must start with v=0");
      seen_v = 1;
      continue;
    }
    int rc = 0;
    switch (type) {
    case 'o':
      if (!c->m) rc = parse_origin(c, v);
      break;
    case 's':
      if (!c->m && span_trim(v).n) {
        if (cpy(c, sdp->session_name, sizeof sdp->session_name, span_trim(v), "s= session name") < 0)
          return HD_EPROTO;
      }
      break;
    case 't': {
      span_t a, b;
      uint64_t x, y;
      if (c->m) break;
      if (!next_tok(&v, &a) || !next_tok(&v, &b) || parse_uint(a, UINT64_MAX, &x) < 0 ||
          parse_uint(b, UINT64_MAX, &y) < 0)
        return fail(c, "bad t= line");
      sdp->time_start = x;
      sdp->time_stop = y;
      break;
    }
    case 'c':
      if (c->m)
        rc = parse_conn(c, v, &c->m->has_conn, c->m->conn_addrtype, sizeof c->m->conn_addrtype,
                        c->m->conn_addr, sizeof c->m->conn_addr);
      else
        rc = parse_conn(c, v, &sdp->has_conn, sdp->conn_addrtype, sizeof sdp->conn_addrtype, sdp->conn_addr,
                        sizeof sdp->conn_addr);
      break;
    case 'm': rc = parse_mline(c, v); break;
    case 'a': rc = parse_attr(c, v); break;
    default: break; /* b=, i=, u=, e=, p=, k=, r=, z=, unknown: not used by WebRTC */
    }
    if (rc < 0) return rc;
  }
  if (!seen_v) {
    c->line = 0;
    return fail(c, "empty SDP (no v= line)");
  }
  return 0;
}

/* ---- writer ---- */

typedef struct {
  char *out;
  size_t cap, len;
  int err;
} wctx_t;

__attribute__((format(printf, 2, 3))) static void wf(wctx_t *w, const char *fmt, ...) {
  if (w->err) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(w->out + w->len, w->cap - w->len, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= w->cap - w->len) {
    w->err = HD_ENOSPC;
    return;
  }
  w->len += (size_t)n;
}

const char *hd_sdp_direction_name(int dir) {
  switch (dir) {
  case HD_SDP_SENDRECV: return "sendrecv";
  case HD_SDP_SENDONLY: return "sendonly";
  case HD_SDP_RECVONLY: return "recvonly";
  case HD_SDP_INACTIVE: return "inactive";
  default: return "";
  }
}

const char *hd_sdp_setup_name(int setup) {
  switch (setup) {
  case HD_SDP_SETUP_ACTPASS: return "actpass";
  case HD_SDP_SETUP_ACTIVE: return "active";
  case HD_SDP_SETUP_PASSIVE: return "passive";
  case HD_SDP_SETUP_HOLDCONN: return "holdconn";
  default: return "";
  }
}

/* Transport attributes shared by both levels, in the order browsers write them. */
static void write_transport(wctx_t *w, const char *ufrag, const char *pwd, const char *opts,
                            const hd_sdp_fingerprint_t *fp, int setup) {
  if (ufrag[0]) wf(w, "a=ice-ufrag:%s\r\n", ufrag);
  if (pwd[0]) wf(w, "a=ice-pwd:%s\r\n", pwd);
  if (opts[0]) wf(w, "a=ice-options:%s\r\n", opts);
  if (fp->hash[0]) wf(w, "a=fingerprint:%s %s\r\n", fp->hash, fp->value);
  if (setup > HD_SDP_SETUP_NONE && setup <= HD_SDP_SETUP_HOLDCONN)
    wf(w, "a=setup:%s\r\n", hd_sdp_setup_name(setup));
}

static void write_media(wctx_t *w, const hd_sdp_media_t *m) {
  wf(w, "m=%s %u %s", m->media[0] ? m->media : "application", m->port, m->proto);
  for (int i = 0; i < m->n_fmt && i < HD_SDP_MAX_FMT; i++)
    wf(w, " %s", m->fmt[i]);
  wf(w, "\r\n");
  if (m->has_conn) wf(w, "c=IN %s %s\r\n", m->conn_addrtype, m->conn_addr);
  write_transport(w, m->ice_ufrag, m->ice_pwd, m->ice_options, &m->fingerprint, m->setup);
  if (m->mid[0]) wf(w, "a=mid:%s\r\n", m->mid);
  for (int i = 0; i < m->n_extmaps && i < HD_SDP_MAX_EXTMAPS; i++) {
    const hd_sdp_extmap_t *e = &m->extmaps[i];
    wf(w, "a=extmap:%u", e->id);
    if (e->direction) wf(w, "/%s", hd_sdp_direction_name(e->direction));
    wf(w, " %s%s%s\r\n", e->uri, e->attrs[0] ? " " : "", e->attrs);
  }
  if (m->direction) wf(w, "a=%s\r\n", hd_sdp_direction_name(m->direction));
  if (m->has_msid) wf(w, "a=msid:%s%s%s\r\n", m->msid_stream, m->msid_track[0] ? " " : "", m->msid_track);
  if (m->rtcp_mux) wf(w, "a=rtcp-mux\r\n");
  if (m->rtcp_rsize) wf(w, "a=rtcp-rsize\r\n");
  if (m->bundle_only) wf(w, "a=bundle-only\r\n");
  if (m->extmap_allow_mixed) wf(w, "a=extmap-allow-mixed\r\n");
  for (int i = 0; i < m->n_codecs && i < HD_SDP_MAX_CODECS; i++) {
    const hd_sdp_codec_t *k = &m->codecs[i];
    if (k->name[0]) {
      wf(w, "a=rtpmap:%u %s/%u", k->pt, k->name, k->clock);
      if (k->channels) wf(w, "/%u", k->channels);
      wf(w, "\r\n");
    }
    for (int j = 0; j < k->n_fb && j < HD_SDP_MAX_FB; j++)
      wf(w, "a=rtcp-fb:%u %s\r\n", k->pt, k->fb[j]);
    if (k->fmtp[0]) wf(w, "a=fmtp:%u %s\r\n", k->pt, k->fmtp);
  }
  for (int j = 0; j < m->n_fb_any && j < HD_SDP_MAX_FB; j++)
    wf(w, "a=rtcp-fb:* %s\r\n", m->fb_any[j]);
  for (int i = 0; i < m->n_ssrc_groups && i < HD_SDP_MAX_SSRC_GROUPS; i++) {
    const hd_sdp_ssrc_group_t *g = &m->ssrc_groups[i];
    wf(w, "a=ssrc-group:%s", g->semantics);
    for (int j = 0; j < g->n_ssrcs && j < HD_SDP_MAX_GROUP_SSRCS; j++)
      wf(w, " %u", g->ssrcs[j]);
    wf(w, "\r\n");
  }
  for (int i = 0; i < m->n_ssrcs && i < HD_SDP_MAX_SSRCS; i++) {
    const hd_sdp_ssrc_t *s = &m->ssrcs[i];
    if (!s->cname[0] && !s->msid[0]) wf(w, "a=ssrc:%u\r\n", s->ssrc);
    if (s->cname[0]) wf(w, "a=ssrc:%u cname:%s\r\n", s->ssrc, s->cname);
    if (s->msid[0]) wf(w, "a=ssrc:%u msid:%s\r\n", s->ssrc, s->msid);
  }
  for (int i = 0; i < m->n_rids && i < HD_SDP_MAX_RIDS; i++) {
    const hd_sdp_rid_t *r = &m->rids[i];
    wf(w, "a=rid:%s %s%s%s\r\n", r->id, r->direction == HD_SDP_RID_RECV ? "recv" : "send",
       r->params[0] ? " " : "", r->params);
  }
  if (m->simulcast[0]) wf(w, "a=simulcast:%s\r\n", m->simulcast);
  for (int i = 0; i < m->n_candidates && i < HD_SDP_MAX_CANDIDATES; i++) {
    const hd_sdp_candidate_t *k = &m->candidates[i];
    wf(w, "a=candidate:%s %u %s %u %s %u typ %s", k->foundation, k->component, k->transport, k->priority,
       k->addr, k->port, k->type);
    if (k->raddr[0]) wf(w, " raddr %s", k->raddr);
    if (k->rport) wf(w, " rport %u", k->rport);
    if (k->tcptype[0]) wf(w, " tcptype %s", k->tcptype);
    wf(w, "\r\n");
  }
  if (m->end_of_candidates) wf(w, "a=end-of-candidates\r\n");
  if (m->sctp_port) wf(w, "a=sctp-port:%u\r\n", m->sctp_port);
  if (m->max_message_size) wf(w, "a=max-message-size:%llu\r\n", (unsigned long long)m->max_message_size);
}

int hd_sdp_write(const hd_sdp_t *sdp, char *out, size_t cap) {
  if (!sdp || !out || !cap) return HD_EINVAL;
  wctx_t w = {out, cap, 0, 0};
  out[0] = '\0';
  wf(&w, "v=0\r\n");
  if (sdp->origin_user[0])
    wf(&w, "o=%s %s %llu IN %s %s\r\n", sdp->origin_user, sdp->origin_sess_id,
       (unsigned long long)sdp->origin_sess_version, sdp->origin_addrtype, sdp->origin_addr);
  wf(&w, "s=%s\r\n", sdp->session_name[0] ? sdp->session_name : "-");
  if (sdp->has_conn) wf(&w, "c=IN %s %s\r\n", sdp->conn_addrtype, sdp->conn_addr);
  wf(&w, "t=%llu %llu\r\n", (unsigned long long)sdp->time_start, (unsigned long long)sdp->time_stop);
  if (sdp->ice_lite) wf(&w, "a=ice-lite\r\n");
  if (sdp->has_bundle) {
    wf(&w, "a=group:BUNDLE");
    for (int i = 0; i < sdp->n_bundle && i < HD_SDP_MAX_MEDIA; i++)
      wf(&w, " %s", sdp->bundle[i]);
    wf(&w, "\r\n");
  }
  if (sdp->extmap_allow_mixed) wf(&w, "a=extmap-allow-mixed\r\n");
  if (sdp->msid_semantic[0]) wf(&w, "a=msid-semantic: %s\r\n", sdp->msid_semantic);
  write_transport(&w, sdp->ice_ufrag, sdp->ice_pwd, sdp->ice_options, &sdp->fingerprint, sdp->setup);
  if (sdp->direction) wf(&w, "a=%s\r\n", hd_sdp_direction_name(sdp->direction));
  for (int i = 0; i < sdp->n_media && i < HD_SDP_MAX_MEDIA; i++)
    write_media(&w, &sdp->media[i]);
  if (w.err) {
    out[0] = '\0';
    return w.err;
  }
  return (int)w.len;
}

/* ---- accessors ---- */

static const hd_sdp_media_t *media_at(const hd_sdp_t *sdp, int mi) {
  return (sdp && mi >= 0 && mi < sdp->n_media && mi < HD_SDP_MAX_MEDIA) ? &sdp->media[mi] : NULL;
}

const char *hd_sdp_eff_ice_ufrag(const hd_sdp_t *sdp, int mi) {
  const hd_sdp_media_t *m = media_at(sdp, mi);
  if (m && m->ice_ufrag[0]) return m->ice_ufrag;
  return sdp ? sdp->ice_ufrag : "";
}

const char *hd_sdp_eff_ice_pwd(const hd_sdp_t *sdp, int mi) {
  const hd_sdp_media_t *m = media_at(sdp, mi);
  if (m && m->ice_pwd[0]) return m->ice_pwd;
  return sdp ? sdp->ice_pwd : "";
}

const hd_sdp_fingerprint_t *hd_sdp_eff_fingerprint(const hd_sdp_t *sdp, int mi) {
  const hd_sdp_media_t *m = media_at(sdp, mi);
  if (m && m->fingerprint.hash[0]) return &m->fingerprint;
  if (sdp && sdp->fingerprint.hash[0]) return &sdp->fingerprint;
  return NULL;
}

int hd_sdp_eff_setup(const hd_sdp_t *sdp, int mi) {
  const hd_sdp_media_t *m = media_at(sdp, mi);
  if (m && m->setup) return m->setup;
  return sdp ? sdp->setup : HD_SDP_SETUP_NONE;
}

int hd_sdp_eff_direction(const hd_sdp_t *sdp, int mi) {
  const hd_sdp_media_t *m = media_at(sdp, mi);
  if (m && m->direction) return m->direction;
  if (sdp && sdp->direction) return sdp->direction;
  return HD_SDP_SENDRECV;
}

const hd_sdp_codec_t *hd_sdp_codec_by_pt(const hd_sdp_media_t *m, int pt) {
  if (!m) return NULL;
  for (int i = 0; i < m->n_codecs && i < HD_SDP_MAX_CODECS; i++)
    if (m->codecs[i].pt == pt) return &m->codecs[i];
  return NULL;
}

int hd_sdp_codec_has_fb(const hd_sdp_media_t *m, const hd_sdp_codec_t *c, const char *fb) {
  if (c)
    for (int i = 0; i < c->n_fb && i < HD_SDP_MAX_FB; i++)
      if (!strcmp(c->fb[i], fb)) return 1;
  if (m)
    for (int i = 0; i < m->n_fb_any && i < HD_SDP_MAX_FB; i++)
      if (!strcmp(m->fb_any[i], fb)) return 1;
  return 0;
}

int hd_sdp_fmtp_param(const char *fmtp, const char *key, char *out, size_t cap) {
  if (!fmtp || !key) return HD_EINVAL;
  span_t rest = {fmtp, strlen(fmtp)};
  while (rest.n) {
    size_t i = 0;
    while (i < rest.n && rest.p[i] != ';')
      i++;
    span_t item = span_trim((span_t){rest.p, i});
    rest.p += i < rest.n ? i + 1 : i;
    rest.n -= i < rest.n ? i + 1 : i;
    size_t eq = 0;
    while (eq < item.n && item.p[eq] != '=')
      eq++;
    if (!span_eq_ci(span_trim((span_t){item.p, eq}), key)) continue;
    span_t val = eq < item.n ? span_trim((span_t){item.p + eq + 1, item.n - eq - 1}) : (span_t){item.p, 0};
    if (!out || val.n >= cap) return HD_ENOSPC;
    memcpy(out, val.p, val.n);
    out[val.n] = '\0';
    return (int)val.n;
  }
  return HD_ENOTFOUND;
}

int hd_sdp_media_by_mid(const hd_sdp_t *sdp, const char *mid) {
  if (!sdp || !mid) return HD_EINVAL;
  if (!mid[0]) return HD_ENOTFOUND;
  for (int i = 0; i < sdp->n_media && i < HD_SDP_MAX_MEDIA; i++)
    if (!strcmp(sdp->media[i].mid, mid)) return i;
  return HD_ENOTFOUND;
}

int hd_sdp_extmap_by_uri(const hd_sdp_media_t *m, const char *uri) {
  if (!m || !uri) return HD_EINVAL;
  for (int i = 0; i < m->n_extmaps && i < HD_SDP_MAX_EXTMAPS; i++)
    if (!strcmp(m->extmaps[i].uri, uri)) return i;
  return HD_ENOTFOUND;
}

int hd_sdp_add_host_candidates(hd_sdp_media_t *m, const char *ip, uint16_t udp_port, uint16_t tcp_port) {
  if (m->n_candidates + (tcp_port ? 2 : 1) > HD_SDP_MAX_CANDIDATES) return HD_ENOSPC;
  hd_sdp_candidate_t *k = &m->candidates[m->n_candidates++];
  memset(k, 0, sizeof *k);
  snprintf(k->foundation, sizeof k->foundation, "1");
  k->component = 1;
  snprintf(k->transport, sizeof k->transport, "udp");
  k->priority = HD_SDP_PRIO_HOST_UDP;
  snprintf(k->addr, sizeof k->addr, "%s", ip);
  k->port = udp_port;
  snprintf(k->type, sizeof k->type, "host");
  if (!tcp_port) return 0;
  k = &m->candidates[m->n_candidates++];
  memset(k, 0, sizeof *k);
  snprintf(k->foundation, sizeof k->foundation,
           "2"); /* another transport: another foundation (RFC 8445 §5.1.1.3) */
  k->component = 1;
  snprintf(k->transport, sizeof k->transport, "tcp");
  k->priority = HD_SDP_PRIO_HOST_TCP;
  snprintf(k->addr, sizeof k->addr, "%s", ip);
  k->port = tcp_port;
  snprintf(k->type, sizeof k->type, "host");
  snprintf(k->tcptype, sizeof k->tcptype, "passive");
  return 0;
}
