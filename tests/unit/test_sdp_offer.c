/* Unit tests for src/proto/sdp_offer.c: the node's offers on a subscriber PC built from
 * tracks that a Chrome publisher negotiated over WHIP (tests/fuzz/corpus/fuzz_sdp),
 * Chrome-style answers applied (literal texts, plus a generator that answers any of
 * our offers the way Chrome does), renegotiation (screen share added, track removed,
 * m= section recycled), and the rejection reasons. */
#include "hd_test.h"

#include "base/err.h"
#include "proto/sdp.h"
#include "proto/sdp_negotiate.h"
#include "proto/sdp_offer.h"

static hd_sdp_t g_pub_offer, g_pub_answer, g_offer, g_answer, g_parsed;
static hd_sdp_negotiated_t g_src, g_neg;
static hd_sdp_offerer_t g_o;
static char g_text[1 << 16], g_out[1 << 16], g_out2[1 << 16];
static char g_err[512];

#define OUR_FP                                                                                               \
  "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF"
#define CHROME_FP                                                                                            \
  "6F:1B:B5:06:0D:3C:62:83:5D:FE:91:0A:0C:24:C2:57:7D:9E:34:C8:5F:11:9E:3B:61:64:08:8F:4F:D4:0B:76"
#define CHROME_UFRAG "q2Zw"
#define CHROME_PWD "2wYyV1+Q1mD0zYq6sJ0a3Ph3"

/* ---- fixtures ---- */

static void load(const char *name, char *buf, size_t cap) {
  char path[1024];
  const char *f = __FILE__;
  const char *slash = strrchr(f, '/');
  int dl = slash ? (int)(slash - f) : 1;
  snprintf(path, sizeof path, "%.*s/../fuzz/corpus/fuzz_sdp/%s", dl, slash ? f : ".", name);
  FILE *fp = fopen(path, "rb");
  if (!fp) fail_msg("cannot open %s", path);
  size_t n = fread(buf, 1, cap - 1, fp);
  fclose(fp);
  buf[n] = '\0';
}

/* A Chrome publisher's WHIP session: what the publisher really sends (g_src). */
static void publish(const char *file) {
  char err[256];
  load(file, g_text, sizeof g_text);
  if (hd_sdp_parse(&g_pub_offer, g_text, strlen(g_text), err, sizeof err)) fail_msg("parse: %s", err);
  hd_sdp_answer_params_t p = {.ice_ufrag = "srvU",
                              .ice_pwd = "srvpassword0123456789ab",
                              .fingerprint_sha256 = OUR_FP,
                              .cand_ip = "192.0.2.1",
                              .cand_port = 7881,
                              .direction = HD_SDP_RECVONLY};
  if (hd_sdp_negotiate(&g_pub_offer, &p, &g_pub_answer, &g_src, err, sizeof err))
    fail_msg("negotiate: %s", err);
}

static const hd_sdp_media_negotiated_t *src_media(int kind) {
  for (int i = 0; i < g_src.n_media; i++)
    if (g_src.media[i].active && g_src.media[i].kind == kind) return &g_src.media[i];
  fail_msg("publisher has no kind %d", kind);
  return NULL;
}

static void offerer_init(int twcc) {
  hd_sdp_offerer_params_t p = {.ice_ufrag = "nodeU",
                               .ice_pwd = "nodepassword0123456789",
                               .fingerprint_sha256 = OUR_FP,
                               .cand_ip = "192.0.2.1",
                               .cand_port = 7881,
                               .cname = "hudong-sub",
                               .twcc = twcc};
  assert_int_equal(hd_sdp_offerer_init(&g_o, &p), 0);
}

static hd_sdp_out_track_t track(int kind, uint32_t ssrc, uint32_t rtx, const char *stream, const char *id) {
  hd_sdp_out_track_t t;
  assert_int_equal(hd_sdp_out_track_from_negotiated(&t, src_media(kind), ssrc, rtx, stream, id), 0);
  return t;
}

static int add(const hd_sdp_out_track_t *t, char *mid) {
  return hd_sdp_offerer_add_track(&g_o, t, mid, HD_SDP_TOKEN_MAX);
}

/* Creates the next offer, writes it, re-parses it with our parser and checks the
 * writer is stable on it. Returns the text. */
static const char *offer_text(void) {
  char err[256];
  assert_int_equal(hd_sdp_offerer_create_offer(&g_o, &g_offer), 0);
  int n = hd_sdp_write(&g_offer, g_out, sizeof g_out);
  assert_true(n > 0);
  if (hd_sdp_parse(&g_parsed, g_out, (size_t)n, err, sizeof err) != 0) fail_msg("offer: %s\n%s", err, g_out);
  int n2 = hd_sdp_write(&g_parsed, g_out2, sizeof g_out2);
  assert_int_equal(n, n2);
  assert_memory_equal(g_out, g_out2, (size_t)n);
  return g_out;
}

static int apply_text(const char *text) {
  char err[256];
  if (hd_sdp_parse(&g_answer, text, strlen(text), err, sizeof err) != 0)
    fail_msg("answer: %s\n%s", err, text);
  return hd_sdp_offerer_apply_answer(&g_o, &g_answer, &g_neg, g_err, sizeof g_err);
}

#define HAS(t, s)                                                                                            \
  do {                                                                                                       \
    if (!strstr((t), (s))) fail_msg("missing \"%s\" in:\n%s", (s), (t));                                     \
  } while (0)
#define HASNT(t, s)                                                                                          \
  do {                                                                                                       \
    if (strstr((t), (s))) fail_msg("unexpected \"%s\" in:\n%s", (s), (t));                                   \
  } while (0)
#define ERR_HAS(s)                                                                                           \
  do {                                                                                                       \
    if (!strstr(g_err, (s))) fail_msg("error \"%s\" lacks \"%s\"", g_err, (s));                              \
  } while (0)

/* Chrome (M120) answering our first offer with audio mid 0 + VP8 video mid 1. */
static const char chrome_answer_av[] =
    "v=0\r\n"
    "o=- 6181466497316745417 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0 1\r\n"
    "a=msid-semantic: WMS\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:" CHROME_UFRAG "\r\n"
    "a=ice-pwd:" CHROME_PWD "\r\n"
    "a=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 " CHROME_FP "\r\n"
    "a=setup:active\r\n"
    "a=mid:0\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=recvonly\r\n"
    "a=rtcp-mux\r\n"
    "a=rtcp-rsize\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
    "a=rtcp-fb:111 transport-cc\r\n"
    "a=fmtp:111 minptime=10;useinbandfec=1\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:" CHROME_UFRAG "\r\n"
    "a=ice-pwd:" CHROME_PWD "\r\n"
    "a=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 " CHROME_FP "\r\n"
    "a=setup:active\r\n"
    "a=mid:1\r\n"
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r\n"
    "a=recvonly\r\n"
    "a=rtcp-mux\r\n"
    "a=rtcp-rsize\r\n"
    "a=rtpmap:96 VP8/90000\r\n"
    "a=rtcp-fb:96 goog-remb\r\n"
    "a=rtcp-fb:96 transport-cc\r\n"
    "a=rtcp-fb:96 ccm fir\r\n"
    "a=rtcp-fb:96 nack\r\n"
    "a=rtcp-fb:96 nack pli\r\n"
    "a=rtpmap:97 rtx/90000\r\n"
    "a=fmtp:97 apt=96\r\n";

/* Answers the pending offer g_offer the way Chrome does: every section answered in
 * order; live sections recvonly (or `inactive_mid` inactive) with every codec,
 * rtcp-fb and extension of the offer; rejected sections port 0. */
static const char *chrome_answer(const char *setup, const char *inactive_mid, const char *refuse_mid) {
  static char buf[1 << 16];
  size_t n = 0;
#define W(...) n += (size_t)snprintf(buf + n, sizeof buf - n, __VA_ARGS__)
  W("v=0\r\no=- 6181466497316745417 %llu IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
    (unsigned long long)g_offer.origin_sess_version + 1);
  W("a=group:BUNDLE");
  for (int i = 0; i < g_offer.n_bundle; i++)
    if (!refuse_mid || strcmp(refuse_mid, g_offer.bundle[i])) W(" %s", g_offer.bundle[i]);
  W("\r\na=msid-semantic: WMS\r\n");
  for (int i = 0; i < g_offer.n_media; i++) {
    const hd_sdp_media_t *m = &g_offer.media[i];
    int rejected = m->port == 0 || (refuse_mid && !strcmp(refuse_mid, m->mid));
    W("m=%s %d UDP/TLS/RTP/SAVPF", m->media, rejected ? 0 : 9);
    for (int f = 0; f < m->n_fmt; f++)
      W(" %s", m->fmt[f]);
    W("\r\nc=IN IP4 0.0.0.0\r\n");
    if (rejected) {
      W("a=mid:%s\r\na=inactive\r\n", m->mid);
      for (int c = 0; c < m->n_codecs; c++)
        W("a=rtpmap:%u %s/%u\r\n", m->codecs[c].pt, m->codecs[c].name, m->codecs[c].clock);
      continue;
    }
    W("a=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:" CHROME_UFRAG "\r\na=ice-pwd:" CHROME_PWD
      "\r\na=ice-options:trickle\r\na=fingerprint:sha-256 " CHROME_FP "\r\na=setup:%s\r\na=mid:%s\r\n",
      setup, m->mid);
    for (int e = 0; e < m->n_extmaps; e++)
      W("a=extmap:%u %s\r\n", m->extmaps[e].id, m->extmaps[e].uri);
    int inactive = m->direction == HD_SDP_INACTIVE || (inactive_mid && !strcmp(inactive_mid, m->mid));
    W("a=%s\r\na=rtcp-mux\r\na=rtcp-rsize\r\n", inactive ? "inactive" : "recvonly");
    for (int c = 0; c < m->n_codecs; c++) {
      const hd_sdp_codec_t *k = &m->codecs[c];
      W("a=rtpmap:%u %s/%u", k->pt, k->name, k->clock);
      if (k->channels) W("/%u", k->channels);
      W("\r\n");
      for (int f = 0; f < k->n_fb; f++)
        W("a=rtcp-fb:%u %s\r\n", k->pt, k->fb[f]);
      if (k->fmtp[0]) W("a=fmtp:%u %s\r\n", k->pt, k->fmtp);
    }
  }
#undef W
  assert_true(n < sizeof buf);
  return buf;
}

/* ---- tests ---- */

/* With a TCP port the subscriber offer carries the ICE-TCP passive candidate
 * (RFC 6544) after the UDP one, at a lower priority. */
static void test_offer_ice_tcp_candidate(void **st) {
  (void)st;
  publish("chrome_vp8.sdp");
  hd_sdp_offerer_params_t p = {.ice_ufrag = "nodeU",
                               .ice_pwd = "nodepassword0123456789",
                               .fingerprint_sha256 = OUR_FP,
                               .cand_ip = "192.0.2.1",
                               .cand_port = 7881,
                               .cand_tcp_port = 7881,
                               .cname = "hudong-sub"};
  assert_int_equal(hd_sdp_offerer_init(&g_o, &p), 0);
  char mid[HD_SDP_TOKEN_MAX];
  hd_sdp_out_track_t a = track(HD_SDP_AUDIO, 1111, 0, "alice", "alice-mic");
  assert_int_equal(add(&a, mid), 0);
  const char *t = offer_text();
  HAS(t, "a=candidate:1 1 udp 2130706431 192.0.2.1 7881 typ host\r\n"
         "a=candidate:2 1 tcp 2113942527 192.0.2.1 7881 typ host tcptype passive\r\n"
         "a=end-of-candidates\r\n");
}

static void test_first_offer_audio_video(void **st) {
  (void)st;
  publish("chrome_vp8.sdp");
  offerer_init(1);
  char mid[HD_SDP_TOKEN_MAX];
  hd_sdp_out_track_t a = track(HD_SDP_AUDIO, 1111, 0, "alice", "alice-mic");
  hd_sdp_out_track_t v = track(HD_SDP_VIDEO, 2222, 2223, "alice", "alice-cam");
  assert_int_equal(add(&a, mid), 0);
  assert_string_equal(mid, "0");
  assert_int_equal(add(&v, mid), 1);
  assert_string_equal(mid, "1");
  assert_int_equal(hd_sdp_offerer_needs_offer(&g_o), 1);
  const char *t = offer_text();
  assert_int_equal(hd_sdp_offerer_needs_offer(&g_o), 0);

  /* session level */
  HAS(t, "v=0\r\n");
  HAS(t, " 1 IN IP4 "); /* o= version 1 */
  HAS(t, "a=ice-lite\r\n");
  HAS(t, "a=group:BUNDLE 0 1\r\n");
  /* audio */
  /* the publisher (Chrome) sends RED: offered after Opus, to be passed on */
  HAS(t, "m=audio 7881 UDP/TLS/RTP/SAVPF 111 63\r\n");
  HAS(t, "a=rtpmap:63 red/48000/2\r\n");
  HAS(t, "a=fmtp:63 111/111\r\n");
  HAS(t, "c=IN IP4 192.0.2.1\r\n");
  HAS(t, "a=ice-ufrag:nodeU\r\n");
  HAS(t, "a=ice-pwd:nodepassword0123456789\r\n");
  HAS(t, "a=fingerprint:sha-256 " OUR_FP "\r\n");
  HAS(t, "a=setup:actpass\r\n");
  HAS(t, "a=mid:0\r\n");
  HAS(t, "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n");
  HAS(t, "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n");
  HAS(t, "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n");
  HAS(t, "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n");
  HAS(t, "a=sendonly\r\n");
  HAS(t, "a=msid:alice alice-mic\r\n");
  HAS(t, "a=rtcp-mux\r\n");
  HAS(t, "a=rtcp-rsize\r\n");
  HAS(t, "a=rtpmap:111 opus/48000/2\r\n");
  HAS(t, "a=rtcp-fb:111 transport-cc\r\n");
  HAS(t, "a=fmtp:111 minptime=10;useinbandfec=1\r\n");
  HAS(t, "a=ssrc:1111 cname:hudong-sub\r\n");
  HAS(t, "a=ssrc:1111 msid:alice alice-mic\r\n");
  HAS(t, "a=candidate:1 1 udp 2130706431 192.0.2.1 7881 typ host\r\n");
  HAS(t, "a=end-of-candidates\r\n");
  /* video */
  HAS(t, "m=video 7881 UDP/TLS/RTP/SAVPF 96 97\r\n");
  HAS(t, "a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r\n");
  HAS(t, "a=rtpmap:96 VP8/90000\r\n");
  HAS(t, "a=rtcp-fb:96 nack\r\n");
  HAS(t, "a=rtcp-fb:96 nack pli\r\n");
  HAS(t, "a=rtcp-fb:96 ccm fir\r\n");
  HAS(t, "a=rtcp-fb:96 transport-cc\r\n");
  HAS(t, "a=rtpmap:97 rtx/90000\r\n");
  HAS(t, "a=fmtp:97 apt=96\r\n");
  HAS(t, "a=ssrc-group:FID 2222 2223\r\n");
  HAS(t, "a=ssrc:2223 msid:alice alice-cam\r\n");
  /* the audio-level extension is for audio only */
  assert_int_equal(hd_sdp_extmap_by_uri(&g_parsed.media[1], HD_SDP_EXT_AUDIO_LEVEL), HD_ENOTFOUND);

  /* and through our own parser */
  assert_int_equal(g_parsed.n_media, 2);
  assert_int_equal(g_parsed.ice_lite, 1);
  assert_int_equal(g_parsed.origin_sess_version, 1);
  assert_string_equal(g_parsed.media[1].mid, "1");
  assert_int_equal(hd_sdp_eff_direction(&g_parsed, 1), HD_SDP_SENDONLY);
  assert_int_equal(hd_sdp_eff_setup(&g_parsed, 0), HD_SDP_SETUP_ACTPASS);
  assert_int_equal(g_parsed.media[0].codecs[0].channels, 2);

  /* no second offer while one is pending */
  assert_int_equal(hd_sdp_offerer_create_offer(&g_o, &g_offer), HD_ESTATE);
}

/* Offer audio+video and apply chrome_answer_av. */
static void first_round(int twcc) {
  publish("chrome_vp8.sdp");
  offerer_init(twcc);
  char mid[HD_SDP_TOKEN_MAX];
  hd_sdp_out_track_t a = track(HD_SDP_AUDIO, 1111, 0, "alice", "alice-mic");
  hd_sdp_out_track_t v = track(HD_SDP_VIDEO, 2222, 2223, "alice", "alice-cam");
  assert_int_equal(add(&a, mid), 0);
  assert_int_equal(add(&v, mid), 1);
  offer_text();
  if (apply_text(chrome_answer_av) != 0) fail_msg("apply: %s", g_err);
}

/* A viewer that accepts the offered RED gets it (red_pt in the result); a
 * source without RED is offered plain Opus. */
static void test_red_passed_on(void **st) {
  (void)st;
  publish("chrome_vp8.sdp");
  offerer_init(1);
  char mid[HD_SDP_TOKEN_MAX];
  hd_sdp_out_track_t a = track(HD_SDP_AUDIO, 1111, 0, "alice", "alice-mic");
  assert_true(a.red);
  assert_int_equal(add(&a, mid), 0);
  offer_text();
  if (apply_text(chrome_answer("active", NULL, NULL)) != 0) fail_msg("apply: %s", g_err);
  assert_int_equal(g_neg.media[0].pt, 111);
  assert_int_equal(g_neg.media[0].red_pt, HD_SDP_OFFER_PT_RED);
  /* no RED from the source: none offered, and an answer naming 63 is refused */
  offerer_init(1);
  a.red = 0;
  assert_int_equal(add(&a, mid), 0);
  const char *t = offer_text();
  HAS(t, "m=audio 7881 UDP/TLS/RTP/SAVPF 111\r\n");
  HASNT(t, "red/48000");
}

/* Audio NACK (issue 13): offered on Opus, in effect only when the viewer's
 * answer lists it too (RFC 4585 §4.2); with transport-cc off it is still
 * offered. (The node's repair is the first send's exact bytes,
 * sfu/resend_cache.h.) */
static void test_audio_nack_offered(void **st) {
  (void)st;
  for (int twcc = 0; twcc <= 1; twcc++) {
    publish("chrome_vp8.sdp");
    offerer_init(twcc);
    char mid[HD_SDP_TOKEN_MAX];
    hd_sdp_out_track_t a = track(HD_SDP_AUDIO, 1111, 0, "alice", "alice-mic");
    assert_int_equal(add(&a, mid), 0);
    const char *t = offer_text();
    HAS(t, "a=rtcp-fb:111 nack\r\n");
    HASNT(t, "a=rtcp-fb:111 nack pli");
    if (apply_text(chrome_answer("active", NULL, NULL)) != 0) fail_msg("apply: %s", g_err);
    assert_int_equal(g_neg.media[0].nack, 1); /* the answer echoed it */
  }
  /* Chrome's real answer lists only transport-cc for Opus: no audio NACK */
  first_round(1);
  assert_int_equal(g_neg.media[0].nack, 0);
}

/* Replaces the first `from` in src by `to` into out. */
static void subst(const char *src, const char *from, const char *to, char *out, size_t cap) {
  const char *p = strstr(src, from);
  assert_non_null(p);
  snprintf(out, cap, "%.*s%s%s", (int)(p - src), src, to, p + strlen(from));
}

/* FlexFEC to a viewer (issue 13 item 4, sfu/session_fec.h): offered with a
 * video track that has a repair SSRC (flexfec/90000 on our pt 62, FEC-FR
 * media repair, RFC 8627 §5.1), in effect only when the answer keeps it
 * (Chromium's drops it: it knows only "flexfec-03"); then the result names
 * our repair SSRC. Not for audio; an answer mapping 62 to another codec is
 * refused. */
static void test_flexfec_offered(void **st) {
  (void)st;
  publish("chrome_vp8.sdp");
  offerer_init(1);
  char mid[HD_SDP_TOKEN_MAX];
  hd_sdp_out_track_t a = track(HD_SDP_AUDIO, 1111, 0, "alice", "alice-mic");
  hd_sdp_out_track_t v = track(HD_SDP_VIDEO, 2222, 2223, "alice", "alice-cam");
  a.fec_ssrc = 1112;
  assert_int_equal(add(&a, mid), HD_EINVAL);
  a.fec_ssrc = 0;
  v.fec_ssrc = 2222; /* the media SSRC itself */
  assert_int_equal(add(&v, mid), HD_EINVAL);
  v.fec_ssrc = 2224;
  assert_int_equal(add(&a, mid), 0);
  assert_int_equal(add(&v, mid), 1);
  const char *t = offer_text();
  HAS(t, "m=video 7881 UDP/TLS/RTP/SAVPF 96 97 62\r\n");
  HAS(t, "a=rtpmap:62 flexfec/90000\r\n");
  HAS(t, "a=fmtp:62 repair-window=200000\r\n");
  HAS(t, "a=ssrc-group:FEC-FR 2222 2224\r\n");
  HAS(t, "a=ssrc:2224 cname:hudong-sub\r\n");
  HASNT(t, "m=audio 7881 UDP/TLS/RTP/SAVPF 111 63 62");
  /* Chromium's answer drops it */
  if (apply_text(chrome_answer_av) != 0) fail_msg("apply: %s", g_err);
  assert_int_equal(g_neg.media[1].fec_pt, 0);
  assert_int_equal(g_neg.media[1].remote_fec_ssrc, 0);
  /* an answer that keeps it (as the C SDK's does) */
  static char ans[8192], ans2[8192];
  subst(chrome_answer_av, "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n", "m=video 9 UDP/TLS/RTP/SAVPF 96 97 62\r\n",
        ans, sizeof ans);
  subst(ans, "a=rtpmap:97 rtx/90000\r\n", "a=rtpmap:97 rtx/90000\r\na=rtpmap:62 flexfec/90000\r\n", ans2,
        sizeof ans2);
  offer_text();
  if (apply_text(ans2) != 0) fail_msg("apply: %s", g_err);
  assert_int_equal(g_neg.media[1].fec_pt, HD_SDP_OFFER_PT_FLEXFEC);
  assert_int_equal(g_neg.media[1].remote_fec_ssrc, 2224);
  assert_int_equal(g_neg.media[0].fec_pt, 0);
  /* 62 mapped to another codec */
  subst(ans, "a=rtpmap:97 rtx/90000\r\n", "a=rtpmap:97 rtx/90000\r\na=rtpmap:62 ulpfec/90000\r\n", ans2,
        sizeof ans2);
  offer_text();
  assert_int_equal(apply_text(ans2), HD_EPROTO);
  ERR_HAS("offer had flexfec/90000");
}

static void test_apply_chrome_answer(void **st) {
  (void)st;
  first_round(1);
  assert_int_equal(g_neg.n_media, 2);
  assert_string_equal(g_neg.remote_ufrag, CHROME_UFRAG);
  assert_string_equal(g_neg.remote_pwd, CHROME_PWD);
  assert_string_equal(g_neg.remote_fingerprint, CHROME_FP);
  assert_int_equal(g_neg.remote_setup, HD_SDP_SETUP_ACTIVE);
  assert_int_equal(g_neg.dtls_server, 1);

  const hd_sdp_media_negotiated_t *a = &g_neg.media[0];
  assert_int_equal(a->active, 1);
  assert_int_equal(a->kind, HD_SDP_AUDIO);
  assert_string_equal(a->mid, "0");
  assert_int_equal(a->direction, HD_SDP_SENDONLY);
  assert_int_equal(a->pt, 111);
  assert_string_equal(a->codec, "opus");
  assert_int_equal(a->clock, 48000);
  assert_int_equal(a->channels, 2);
  assert_string_equal(a->fmtp, "minptime=10;useinbandfec=1");
  assert_int_equal(a->rtx_pt, 0);
  assert_int_equal(a->red_pt, 0); /* this answer took plain Opus only */
  assert_int_equal(a->twcc_fb, 1);
  assert_int_equal(a->nack, 0);
  assert_int_equal(a->ext_audio_level, 1);
  assert_int_equal(a->ext_abs_send_time, 2);
  assert_int_equal(a->ext_twcc, 3);
  assert_int_equal(a->ext_mid, 4);

  const hd_sdp_media_negotiated_t *v = &g_neg.media[1];
  assert_int_equal(v->active, 1);
  assert_string_equal(v->mid, "1");
  assert_int_equal(v->pt, 96);
  assert_string_equal(v->codec, "VP8");
  assert_int_equal(v->rtx_pt, 97);
  assert_int_equal(v->nack, 1);
  assert_int_equal(v->pli, 1);
  assert_int_equal(v->fir, 1);
  assert_int_equal(v->twcc_fb, 1);
  assert_int_equal(v->remb, 1);
  assert_int_equal(v->ext_audio_level, 0);
  assert_int_equal(v->ext_mid, 4);
  assert_int_equal(v->ext_playout_delay, 5);
  assert_int_equal(a->ext_playout_delay, 0);

  const hd_sdp_offer_slot_t *s = hd_sdp_offerer_slot(&g_o, 1);
  assert_non_null(s);
  assert_int_equal(s->accepted, 1);
  assert_int_equal(hd_sdp_offerer_find_mid(&g_o, "1"), 1);
  assert_int_equal(hd_sdp_offerer_track(&g_o, "1")->rtx_ssrc, 2223);
  assert_null(hd_sdp_offerer_track(&g_o, "9"));
  assert_null(hd_sdp_offerer_slot(&g_o, 2));

  /* no pending offer any more */
  assert_int_equal(hd_sdp_offerer_apply_answer(&g_o, &g_answer, &g_neg, g_err, sizeof g_err), HD_ESTATE);
  assert_int_equal(hd_sdp_offerer_needs_offer(&g_o), 0);
}

static void test_answer_keeps_subset(void **st) {
  (void)st;
  /* a receiver that drops RTX, nack and the abs-send-time extension */
  publish("chrome_vp8.sdp");
  offerer_init(1);
  char mid[HD_SDP_TOKEN_MAX];
  hd_sdp_out_track_t a = track(HD_SDP_AUDIO, 1111, 0, "alice", "alice-mic");
  hd_sdp_out_track_t v = track(HD_SDP_VIDEO, 2222, 2223, "alice", "alice-cam");
  add(&a, mid);
  add(&v, mid);
  offer_text();
  strcpy(g_text, chrome_answer_av);
  char *p = strstr(g_text, "m=video 9 UDP/TLS/RTP/SAVPF 96 97");
  p[strlen("m=video 9 UDP/TLS/RTP/SAVPF 96")] = '\0';
  strcat(g_text, "\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\na=rtcp-mux\r\n"
                 "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
                 "a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack pli\r\na=ssrc:4242 cname:rx\r\n");
  if (apply_text(g_text) != 0) fail_msg("apply: %s", g_err);
  const hd_sdp_media_negotiated_t *nv = &g_neg.media[1];
  assert_int_equal(nv->active, 1);
  assert_int_equal(nv->rtx_pt, 0);
  assert_int_equal(nv->nack, 0);
  assert_int_equal(nv->pli, 1);
  assert_int_equal(nv->fir, 0);
  assert_int_equal(nv->twcc_fb, 0);
  assert_int_equal(nv->ext_abs_send_time, 0);
  assert_int_equal(nv->ext_mid, 4);
  assert_int_equal(nv->remote_ssrc, 4242);
}

static void test_renegotiate_screen_share(void **st) {
  (void)st;
  first_round(1);
  char mid[HD_SDP_TOKEN_MAX];
  hd_sdp_out_track_t sc = track(HD_SDP_VIDEO, 3333, 3334, "alice", "alice-screen");
  assert_int_equal(add(&sc, mid), 2);
  assert_string_equal(mid, "2");
  assert_int_equal(hd_sdp_offerer_needs_offer(&g_o), 1);
  const char *t = offer_text();
  HAS(t, " 2 IN IP4 "); /* o= version 2 */
  HAS(t, "a=group:BUNDLE 0 1 2\r\n");
  HAS(t, "a=setup:passive\r\n"); /* RFC 8842 §5.5: our established role */
  HASNT(t, "a=setup:actpass");
  HAS(t, "a=mid:2\r\n");
  HAS(t, "a=msid:alice alice-screen\r\n");
  HAS(t, "a=ssrc-group:FID 3333 3334\r\n");
  assert_int_equal(g_parsed.n_media, 3);
  /* same VP8 configuration -> same payload types */
  assert_string_equal(g_parsed.media[2].fmt[0], "96");
  assert_string_equal(g_parsed.media[2].fmt[1], "97");
  /* the session id stays, the version grows */
  char sid[32];
  strcpy(sid, g_parsed.origin_sess_id);

  if (apply_text(chrome_answer("active", NULL, NULL)) != 0) fail_msg("apply: %s", g_err);
  assert_int_equal(g_neg.n_media, 3);
  assert_int_equal(g_neg.media[2].active, 1);
  assert_string_equal(g_neg.media[2].mid, "2");
  assert_int_equal(g_neg.media[2].rtx_pt, 97);
  assert_int_equal(g_neg.dtls_server, 1);

  /* nothing changed: a re-offer (e.g. ICE restart) is the same but for version */
  assert_int_equal(hd_sdp_offerer_needs_offer(&g_o), 0);
  assert_int_equal(hd_sdp_offerer_restart_ice(&g_o, "nodeV", "nodepassword9876543210"), 0);
  assert_int_equal(hd_sdp_offerer_needs_offer(&g_o), 1);
  t = offer_text();
  HAS(t, " 3 IN IP4 ");
  HAS(t, "a=ice-ufrag:nodeV\r\n");
  assert_string_equal(g_parsed.origin_sess_id, sid);
  assert_int_equal(hd_sdp_offerer_restart_ice(&g_o, "x", "short"), HD_EINVAL);
}

static void test_remove_and_recycle(void **st) {
  (void)st;
  first_round(1);
  char mid[HD_SDP_TOKEN_MAX];
  hd_sdp_out_track_t sc = track(HD_SDP_VIDEO, 3333, 3334, "bob", "bob-screen");
  assert_int_equal(add(&sc, mid), 2);
  offer_text();
  assert_int_equal(apply_text(chrome_answer("active", NULL, NULL)), 0);

  /* remove alice's camera (mid 1, not the BUNDLE tag): port 0, inactive, out of BUNDLE */
  assert_int_equal(hd_sdp_offerer_remove_track(&g_o, "1"), 0);
  assert_int_equal(hd_sdp_offerer_remove_track(&g_o, "1"), HD_ENOTFOUND);
  assert_null(hd_sdp_offerer_track(&g_o, "1"));
  const char *t = offer_text();
  HAS(t, "m=video 0 UDP/TLS/RTP/SAVPF 96\r\n");
  HAS(t, "a=group:BUNDLE 0 2\r\n");
  assert_int_equal(g_parsed.n_media, 3);
  assert_int_equal(g_parsed.media[1].port, 0);
  assert_string_equal(g_parsed.media[1].mid, "1");
  assert_int_equal(g_parsed.media[1].direction, HD_SDP_INACTIVE);
  assert_int_equal(g_parsed.media[1].n_ssrcs, 0);
  assert_int_equal(g_parsed.media[1].n_candidates, 0);

  /* a new video track before the answer: the port-0 section is not settled yet, so it
   * cannot be recycled -> appended */
  hd_sdp_out_track_t early = track(HD_SDP_VIDEO, 5555, 5556, "dave", "dave-cam");
  assert_int_equal(add(&early, mid), 3);
  assert_string_equal(mid, "3");
  /* ...and removed again before it was ever offered: it just disappears */
  assert_int_equal(hd_sdp_offerer_remove_track(&g_o, "3"), 0);
  assert_int_equal(hd_sdp_offerer_find_mid(&g_o, "3"), HD_ENOTFOUND);

  assert_int_equal(apply_text(chrome_answer("active", NULL, NULL)), 0);
  assert_int_equal(g_neg.media[1].active, 0);
  assert_int_equal(g_neg.media[2].active, 1);
  assert_int_equal(hd_sdp_offerer_slot(&g_o, 1)->state, HD_SDP_SLOT_REJECTED);
  assert_int_equal(hd_sdp_offerer_slot(&g_o, 1)->settled_rejected, 1);

  /* a new video track recycles m-line 1 with a new mid (JSEP §5.2.2) */
  hd_sdp_out_track_t cam2 = track(HD_SDP_VIDEO, 4444, 4445, "carol", "carol-cam");
  assert_int_equal(add(&cam2, mid), 1);
  assert_string_equal(mid, "4");
  t = offer_text();
  assert_int_equal(g_parsed.n_media, 3);
  assert_string_equal(g_parsed.media[1].mid, "4");
  assert_int_equal(g_parsed.media[1].port, 7881);
  HAS(t, "a=group:BUNDLE 0 4 2\r\n");
  HAS(t, "a=msid:carol carol-cam\r\n");
  HAS(t, "a=ssrc-group:FID 4444 4445\r\n");
  assert_int_equal(g_parsed.origin_sess_version, 4);
  assert_int_equal(apply_text(chrome_answer("active", NULL, NULL)), 0);
  assert_int_equal(g_neg.media[1].active, 1);
  assert_string_equal(g_neg.media[1].mid, "4");

  /* removing the BUNDLE-tag section (audio mid 0) keeps it live but inactive */
  assert_int_equal(hd_sdp_offerer_remove_track(&g_o, "0"), 0);
  t = offer_text();
  HAS(t, "m=audio 7881 UDP/TLS/RTP/SAVPF 111 63\r\n");
  HAS(t, "a=group:BUNDLE 0 4 2\r\n");
  assert_int_equal(g_parsed.media[0].direction, HD_SDP_INACTIVE);
  assert_int_equal(g_parsed.media[0].has_msid, 0);
  assert_int_equal(g_parsed.media[0].n_ssrcs, 0);
  assert_int_equal(g_parsed.media[0].n_candidates, 1);
  assert_int_equal(apply_text(chrome_answer("active", NULL, NULL)), 0);
  assert_int_equal(g_neg.media[0].active, 0);
  assert_string_equal(g_neg.remote_ufrag, CHROME_UFRAG); /* transport still there */

  /* a new audio track takes the inactive section back with the same mid */
  hd_sdp_out_track_t mic = track(HD_SDP_AUDIO, 6666, 0, "carol", "carol-mic");
  assert_int_equal(add(&mic, mid), 0);
  assert_string_equal(mid, "0");
  t = offer_text();
  HAS(t, "a=msid:carol carol-mic\r\n");
  assert_int_equal(g_parsed.media[0].direction, HD_SDP_SENDONLY);
  assert_int_equal(apply_text(chrome_answer("active", NULL, NULL)), 0);
  assert_int_equal(g_neg.media[0].active, 1);
  assert_string_equal(g_neg.media[0].mid, "0");
}

static void test_recycle_then_remove_before_offer(void **st) {
  (void)st;
  first_round(1);
  char mid[HD_SDP_TOKEN_MAX];
  hd_sdp_out_track_t sc = track(HD_SDP_VIDEO, 3333, 3334, "bob", "bob-screen");
  add(&sc, mid);
  offer_text();
  assert_int_equal(apply_text(chrome_answer("active", NULL, NULL)), 0);
  assert_int_equal(hd_sdp_offerer_remove_track(&g_o, "1"), 0);
  offer_text();
  assert_int_equal(apply_text(chrome_answer("active", NULL, NULL)), 0);
  /* recycled with mid 3, then removed before any offer: back to rejected mid 1 */
  hd_sdp_out_track_t cam2 = track(HD_SDP_VIDEO, 4444, 4445, "carol", "carol-cam");
  assert_int_equal(add(&cam2, mid), 1);
  assert_string_equal(mid, "3");
  assert_int_equal(hd_sdp_offerer_remove_track(&g_o, "3"), 0);
  const char *t = offer_text();
  HAS(t, "a=mid:1\r\n");
  HASNT(t, "a=mid:3\r\n");
  assert_int_equal(g_parsed.media[1].port, 0);
  assert_int_equal(apply_text(chrome_answer("active", NULL, NULL)), 0);
  /* still recyclable; the next mid is fresh */
  assert_int_equal(add(&cam2, mid), 1);
  assert_string_equal(mid, "4");
}

/* Before the first offer an audio track goes before the video (an RTMP ingest
 * publishes video, then audio), so m-line 0, the BUNDLE tag, is the audio:
 * Chromium refuses a video profile it cannot decode (H.264 High on Debian), and a
 * refused tag made it fail the whole answer ("Failed to setup RTCP mux" on mid 1).
 * After the first offer, m-lines never move. */
static void test_first_offer_audio_tag(void **st) {
  (void)st;
  publish("chrome_vp8.sdp");
  offerer_init(1);
  char mid[HD_SDP_TOKEN_MAX];
  hd_sdp_out_track_t v = track(HD_SDP_VIDEO, 2222, 2223, "obs", "obs-cam");
  hd_sdp_out_track_t a = track(HD_SDP_AUDIO, 1111, 0, "obs", "obs-mic");
  assert_int_equal(add(&v, mid), 0);
  assert_string_equal(mid, "0");
  assert_int_equal(add(&a, mid), 0);
  assert_string_equal(mid, "1");
  const char *t = offer_text();
  HAS(t, "a=group:BUNDLE 1 0\r\n");
  assert_true(strstr(t, "m=audio") < strstr(t, "m=video"));
  /* the viewer refuses the video section: the audio keeps the transport */
  assert_int_equal(apply_text(chrome_answer("active", NULL, "0")), 0);
  assert_int_equal(g_neg.media[0].active, 1);
  assert_int_equal(g_neg.media[1].active, 0);
  assert_string_equal(g_neg.remote_ufrag, CHROME_UFRAG);
  /* later: a new audio track is appended after the video */
  hd_sdp_out_track_t a2 = track(HD_SDP_AUDIO, 3333, 0, "obs2", "obs2-mic");
  assert_int_equal(add(&a2, mid), 2);
  assert_string_equal(mid, "2");
}

static void test_answer_refuses_and_inactive(void **st) {
  (void)st;
  publish("chrome_vp8.sdp");
  offerer_init(1);
  char mid[HD_SDP_TOKEN_MAX];
  hd_sdp_out_track_t a = track(HD_SDP_AUDIO, 1111, 0, "alice", "alice-mic");
  hd_sdp_out_track_t v = track(HD_SDP_VIDEO, 2222, 2223, "alice", "alice-cam");
  hd_sdp_out_track_t s = track(HD_SDP_VIDEO, 3333, 3334, "alice", "alice-screen");
  add(&a, mid);
  add(&v, mid);
  add(&s, mid);
  offer_text();
  /* the client refuses mid 2 (port 0) and does not want mid 1 right now (inactive) */
  assert_int_equal(apply_text(chrome_answer("active", "1", "2")), 0);
  assert_int_equal(g_neg.media[0].active, 1);
  assert_int_equal(g_neg.media[1].active, 0);
  assert_int_equal(g_neg.media[2].active, 0);
  assert_int_equal(hd_sdp_offerer_slot(&g_o, 1)->state, HD_SDP_SLOT_ACTIVE);
  assert_int_equal(hd_sdp_offerer_slot(&g_o, 2)->state, HD_SDP_SLOT_REJECTED);
  assert_null(hd_sdp_offerer_track(&g_o, "2"));
  /* the refused section is settled: the next video track recycles it */
  hd_sdp_out_track_t s2 = track(HD_SDP_VIDEO, 7777, 7778, "alice", "alice-screen2");
  assert_int_equal(add(&s2, mid), 2);
  assert_string_equal(mid, "3");
}

static void test_reject_wrong_mid_order(void **st) {
  (void)st;
  publish("chrome_vp8.sdp");
  offerer_init(1);
  char mid[HD_SDP_TOKEN_MAX];
  hd_sdp_out_track_t a = track(HD_SDP_AUDIO, 1111, 0, "alice", "alice-mic");
  hd_sdp_out_track_t v = track(HD_SDP_VIDEO, 2222, 2223, "alice", "alice-cam");
  add(&a, mid);
  add(&v, mid);
  offer_text();
  /* swap the two m= sections */
  const char *vid = strstr(chrome_answer_av, "m=video");
  const char *aud = strstr(chrome_answer_av, "m=audio");
  size_t head = (size_t)(aud - chrome_answer_av);
  snprintf(g_text, sizeof g_text, "%.*s%s%.*s", (int)head, chrome_answer_av, vid, (int)(vid - aud), aud);
  assert_int_equal(apply_text(g_text), HD_EPROTO);
  ERR_HAS("m-line 0 has mid '1'");
  /* a missing section */
  snprintf(g_text, sizeof g_text, "%.*s", (int)(vid - chrome_answer_av), chrome_answer_av);
  assert_int_equal(apply_text(g_text), HD_EPROTO);
  ERR_HAS("answer has 1 m-lines, the offer has 2");
  /* a changed mid */
  strcpy(g_text, chrome_answer_av);
  *strstr(g_text, "a=mid:1") = '\0';
  strcat(g_text, "a=mid:x\r\na=recvonly\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n");
  assert_int_equal(apply_text(g_text), HD_EPROTO);
  ERR_HAS("has mid 'x'");
  /* sendrecv is not an answer to sendonly */
  strcpy(g_text, chrome_answer_av);
  memcpy(strstr(g_text, "a=recvonly"), "a=sendrecv", 10);
  assert_int_equal(apply_text(g_text), HD_EPROTO);
  ERR_HAS("sendrecv");
  /* the offer is still pending: the right answer still works */
  assert_int_equal(apply_text(chrome_answer_av), 0);
}

static void test_reject_bad_answers(void **st) {
  (void)st;
  publish("chrome_vp8.sdp");
  offerer_init(1);
  char mid[HD_SDP_TOKEN_MAX];
  hd_sdp_out_track_t a = track(HD_SDP_AUDIO, 1111, 0, "alice", "alice-mic");
  hd_sdp_out_track_t v = track(HD_SDP_VIDEO, 2222, 2223, "alice", "alice-cam");
  add(&a, mid);
  add(&v, mid);
  offer_text();
  struct {
    const char *from, *to;
    int rc;
    const char *why;
  } cases[] = {
      /* a payload type we never offered */
      {"m=video 9 UDP/TLS/RTP/SAVPF 96 97", "m=video 9 UDP/TLS/RTP/SAVPF 100 97", HD_EPROTO,
       "payload type 100"},
      /* our PT remapped to another codec */
      {"a=rtpmap:96 VP8/90000", "a=rtpmap:96 VP9/90000", HD_EPROTO, "VP9/90000"},
      /* accepted but without its codec */
      {"m=video 9 UDP/TLS/RTP/SAVPF 96 97", "m=video 9 UDP/TLS/RTP/SAVPF 97", HD_EPROTO, "drops its codec"},
      /* no fingerprint */
      {"a=fingerprint:sha-256 " CHROME_FP "\r\n", "", HD_EUNSUPPORTED, "sha-256 a=fingerprint"},
      /* sha-1 only */
      {"a=fingerprint:sha-256 " CHROME_FP, "a=fingerprint:sha-1 AB:CD", HD_EUNSUPPORTED, "sha-256"},
      /* no ICE */
      {"a=ice-ufrag:" CHROME_UFRAG "\r\n", "", HD_EUNSUPPORTED, "ice-ufrag"},
      /* actpass is not an answer */
      {"a=setup:active", "a=setup:actpass", HD_EPROTO, "setup:actpass"},
      /* no rtcp-mux */
      {"a=rtcp-mux\r\n", "", HD_EUNSUPPORTED, "rtcp-mux"},
      /* no BUNDLE */
      {"a=group:BUNDLE 0 1\r\n", "", HD_EUNSUPPORTED, "BUNDLE"},
      /* accepted section outside the BUNDLE group */
      {"a=group:BUNDLE 0 1", "a=group:BUNDLE 0", HD_EUNSUPPORTED, "not in the answer's BUNDLE"},
      /* BUNDLE names an unknown mid */
      {"a=group:BUNDLE 0 1", "a=group:BUNDLE 7 0 1", HD_EPROTO, "mid '7'"},
      /* kind changed */
      {"m=video 9", "m=audio 9", HD_EPROTO, "media type"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    strcpy(g_text, chrome_answer_av);
    /* replace every occurrence */
    char tmp[sizeof g_text];
    size_t j = 0, fl = strlen(cases[i].from), tl = strlen(cases[i].to);
    for (const char *p = g_text; *p;) {
      if (!strncmp(p, cases[i].from, fl)) {
        memcpy(tmp + j, cases[i].to, tl);
        j += tl;
        p += fl;
      } else {
        tmp[j++] = *p++;
      }
    }
    tmp[j] = '\0';
    int rc = apply_text(tmp);
    if (rc != cases[i].rc) fail_msg("case %zu: rc %d (%s), want %d", i, rc, g_err, cases[i].rc);
    ERR_HAS(cases[i].why);
    assert_int_equal(g_o.pending, 1);
  }
  assert_int_equal(apply_text(chrome_answer_av), 0);
}

static void test_h264_source(void **st) {
  (void)st;
  publish("chrome_h264.sdp");
  const hd_sdp_media_negotiated_t *sv = src_media(HD_SDP_VIDEO);
  assert_string_equal(sv->codec, "H264");
  offerer_init(0);
  char mid[HD_SDP_TOKEN_MAX];
  hd_sdp_out_track_t a = track(HD_SDP_AUDIO, 1111, 0, "pub", "pub-mic");
  hd_sdp_out_track_t v = track(HD_SDP_VIDEO, 2222, 2223, "pub", "pub-cam");
  assert_string_equal(v.fmtp, sv->fmtp);
  add(&a, mid);
  add(&v, mid);
  const char *t = offer_text();
  HAS(t, "m=video 7881 UDP/TLS/RTP/SAVPF 102 103\r\n");
  HAS(t, "a=rtpmap:102 H264/90000\r\n");
  char line[400];
  snprintf(line, sizeof line, "a=fmtp:102 %s\r\n", sv->fmtp);
  HAS(t, line);
  HAS(t, "a=fmtp:103 apt=102\r\n");
  /* transport-cc off: neither the feedback nor the extension */
  HASNT(t, "transport-cc");
  HASNT(t, "transport-wide-cc");

  /* a second H.264 source with another profile must not reuse 102/103 */
  hd_sdp_out_track_t v2 = v;
  v2.ssrc = 3333;
  v2.rtx_ssrc = 3334;
  strcpy(v2.track_id, "pub-screen");
  strcpy(v2.fmtp, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f");
  assert_int_equal(add(&v2, mid), 2);
  assert_int_equal(hd_sdp_offerer_slot(&g_o, 2)->pt, 96);
  assert_int_equal(hd_sdp_offerer_slot(&g_o, 2)->rtx_pt, 97);

  /* Chrome's answer echoes the profile */
  hd_sdp_offerer_rollback(&g_o);
  assert_int_equal(hd_sdp_offerer_rollback(&g_o), HD_ESTATE);
  offer_text();
  assert_int_equal(apply_text(chrome_answer("active", NULL, NULL)), 0);
  assert_string_equal(g_neg.media[1].codec, "H264");
  assert_int_equal(g_neg.media[1].pt, 102);
  assert_int_equal(g_neg.media[1].rtx_pt, 103);
  assert_string_equal(g_neg.media[1].fmtp, sv->fmtp);
  assert_int_equal(g_neg.media[1].twcc_fb, 0);
  assert_int_equal(g_neg.media[1].ext_twcc, 0);
  assert_int_equal(g_neg.media[2].pt, 96);
  assert_string_equal(g_neg.media[2].fmtp, v2.fmtp);
}

static void test_h264_answer_profile_mismatch(void **st) {
  (void)st;
  publish("chrome_h264.sdp");
  offerer_init(1);
  char mid[HD_SDP_TOKEN_MAX];
  hd_sdp_out_track_t v = track(HD_SDP_VIDEO, 2222, 2223, "pub", "pub-cam");
  strcpy(v.fmtp, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f");
  add(&v, mid);
  offer_text();
  strcpy(g_text, chrome_answer("active", NULL, NULL));
  char *p = strstr(g_text, "profile-level-id=42e01f");
  memcpy(p, "profile-level-id=640c1f", 23);
  assert_int_equal(apply_text(g_text), HD_EPROTO);
  ERR_HAS("H264 fmtp");
  /* a level-only difference is fine (RFC 6184 §8.2.2: level is not negotiated here) */
  strcpy(g_text, chrome_answer("active", NULL, NULL));
  p = strstr(g_text, "profile-level-id=42e01f");
  memcpy(p, "profile-level-id=42e034", 23);
  assert_int_equal(apply_text(g_text), 0);
}

static void test_answer_setup_passive(void **st) {
  (void)st;
  publish("chrome_vp8.sdp");
  offerer_init(1);
  char mid[HD_SDP_TOKEN_MAX];
  hd_sdp_out_track_t a = track(HD_SDP_AUDIO, 1111, 0, "alice", "alice-mic");
  add(&a, mid);
  offer_text();
  assert_int_equal(apply_text(chrome_answer("passive", NULL, NULL)), 0);
  assert_int_equal(g_neg.dtls_server, 0); /* we are the DTLS client */
  assert_int_equal(g_neg.remote_setup, HD_SDP_SETUP_PASSIVE);

  /* the next offer states our role: active */
  hd_sdp_out_track_t v = track(HD_SDP_VIDEO, 2222, 2223, "alice", "alice-cam");
  add(&v, mid);
  const char *t = offer_text();
  HAS(t, "a=setup:active\r\n");
  HASNT(t, "a=setup:actpass");
  /* an answer that swaps the roles is refused */
  assert_int_equal(apply_text(chrome_answer("active", NULL, NULL)), HD_EUNSUPPORTED);
  ERR_HAS("DTLS roles");
  /* a changed fingerprint too */
  strcpy(g_text, chrome_answer("passive", NULL, NULL));
  for (char *p = strstr(g_text, CHROME_FP); p; p = strstr(p + 1, CHROME_FP))
    p[0] = '7';
  assert_int_equal(apply_text(g_text), HD_EUNSUPPORTED);
  ERR_HAS("fingerprint");
  assert_int_equal(apply_text(chrome_answer("passive", NULL, NULL)), 0);
  assert_int_equal(g_neg.dtls_server, 0);
}

static void test_no_setup_means_active(void **st) {
  (void)st;
  publish("chrome_vp8.sdp");
  offerer_init(1);
  char mid[HD_SDP_TOKEN_MAX];
  hd_sdp_out_track_t a = track(HD_SDP_AUDIO, 1111, 0, "alice", "alice-mic");
  add(&a, mid);
  offer_text();
  strcpy(g_text, chrome_answer("active", NULL, NULL));
  char *p = strstr(g_text, "a=setup:active\r\n");
  memmove(p, p + 16, strlen(p + 16) + 1);
  assert_int_equal(apply_text(g_text), 0);
  assert_int_equal(g_neg.dtls_server, 1);
}

static void test_zero_tracks_and_states(void **st) {
  (void)st;
  publish("chrome_vp8.sdp");
  offerer_init(1);
  /* no offer until the first track */
  assert_int_equal(hd_sdp_offerer_needs_offer(&g_o), 0);
  assert_int_equal(hd_sdp_offerer_create_offer(&g_o, &g_offer), HD_EAGAIN);
  assert_int_equal(hd_sdp_offerer_rollback(&g_o), HD_ESTATE);
  assert_int_equal(hd_sdp_offerer_apply_answer(&g_o, &g_answer, &g_neg, g_err, sizeof g_err), HD_ESTATE);
  assert_int_equal(hd_sdp_offerer_remove_track(&g_o, "0"), HD_ENOTFOUND);
  /* added then removed before an offer: back to nothing */
  char mid[HD_SDP_TOKEN_MAX];
  hd_sdp_out_track_t a = track(HD_SDP_AUDIO, 1111, 0, "alice", "alice-mic");
  assert_int_equal(add(&a, mid), 0);
  assert_int_equal(hd_sdp_offerer_remove_track(&g_o, mid), 0);
  assert_int_equal(hd_sdp_offerer_create_offer(&g_o, &g_offer), HD_EAGAIN);
  /* rollback keeps the staged tracks and bumps the version on the next offer */
  assert_int_equal(add(&a, mid), 0);
  assert_string_equal(mid, "1"); /* mids are never reused */
  offer_text();
  assert_int_equal(g_parsed.origin_sess_version, 1);
  assert_int_equal(hd_sdp_offerer_rollback(&g_o), 0);
  assert_int_equal(hd_sdp_offerer_needs_offer(&g_o), 1);
  offer_text();
  assert_int_equal(g_parsed.origin_sess_version, 2);
  HAS(g_out, "a=setup:actpass\r\n");
}

static void test_bad_params_and_tracks(void **st) {
  (void)st;
  publish("chrome_vp8.sdp");
  hd_sdp_offerer_params_t p = {.ice_ufrag = "nodeU",
                               .ice_pwd = "nodepassword0123456789",
                               .fingerprint_sha256 = OUR_FP,
                               .cand_ip = "192.0.2.1",
                               .cand_port = 7881};
  hd_sdp_offerer_params_t q = p;
  q.fingerprint_sha256 = "AB:CD";
  assert_int_equal(hd_sdp_offerer_init(&g_o, &q), HD_EINVAL);
  q = p;
  q.ice_pwd = "short";
  assert_int_equal(hd_sdp_offerer_init(&g_o, &q), HD_EINVAL);
  q = p;
  q.cand_ip = "192.0.2.1 evil";
  assert_int_equal(hd_sdp_offerer_init(&g_o, &q), HD_EINVAL);
  q = p;
  q.cname = "a b";
  assert_int_equal(hd_sdp_offerer_init(&g_o, &q), HD_EINVAL);
  assert_int_equal(hd_sdp_offerer_init(NULL, &p), HD_EINVAL);
  assert_int_equal(hd_sdp_offerer_init(&g_o, &p), 0);

  hd_sdp_out_track_t t;
  const hd_sdp_media_negotiated_t *sa = src_media(HD_SDP_AUDIO);
  assert_int_equal(hd_sdp_out_track_from_negotiated(&t, sa, 0, 0, "s", "t"), HD_EINVAL);
  assert_int_equal(hd_sdp_out_track_from_negotiated(&t, sa, 1, 0, "s s", "t"), HD_EINVAL);
  assert_int_equal(hd_sdp_out_track_from_negotiated(&t, sa, 1, 0, "s", ""), HD_EINVAL);
  hd_sdp_media_negotiated_t g722 = *sa;
  strcpy(g722.codec, "G722");
  g722.clock = 8000;
  assert_int_equal(hd_sdp_out_track_from_negotiated(&t, &g722, 1, 0, "s", "t"), HD_EUNSUPPORTED);
  /* audio ignores an RTX SSRC */
  assert_int_equal(hd_sdp_out_track_from_negotiated(&t, sa, 1, 2, "s", "t"), 0);
  assert_int_equal(t.rtx_ssrc, 0);

  char mid[HD_SDP_TOKEN_MAX];
  hd_sdp_out_track_t bad = t;
  bad.rtx_ssrc = 5; /* RTX on audio */
  assert_int_equal(add(&bad, mid), HD_EINVAL);
  bad = t;
  bad.kind = HD_SDP_APPLICATION;
  assert_int_equal(add(&bad, mid), HD_EINVAL);
  bad = t;
  strcpy(bad.codec, "PCMU");
  assert_int_equal(add(&bad, mid), HD_EUNSUPPORTED);
  bad = t;
  strcpy(bad.fmtp, "a=1\r\na=evil");
  assert_int_equal(add(&bad, mid), HD_EINVAL);
  bad = t;
  memset(bad.track_id, 'x', sizeof bad.track_id); /* no NUL */
  assert_int_equal(add(&bad, mid), HD_EINVAL);
  assert_int_equal(add(&t, mid), 0);
  assert_int_equal(add(&t, mid), HD_EINVAL); /* same SSRC twice */

  /* the m-line cap */
  for (uint32_t i = 1; i < HD_SDP_MAX_MEDIA; i++) {
    hd_sdp_out_track_t x = t;
    x.ssrc = 100 + i;
    assert_int_equal(add(&x, mid), (int)i);
  }
  hd_sdp_out_track_t x = t;
  x.ssrc = 99;
  assert_int_equal(add(&x, mid), HD_ENOSPC);
  offer_text();
  assert_int_equal(g_parsed.n_media, HD_SDP_MAX_MEDIA);
}

static void test_payload_type_pool(void **st) {
  (void)st;
  publish("chrome_vp8.sdp");
  offerer_init(1);
  char mid[HD_SDP_TOKEN_MAX];
  hd_sdp_out_track_t v = track(HD_SDP_VIDEO, 2222, 2223, "alice", "alice-cam");
  /* distinct configurations get distinct, stable PTs, never 64-95 */
  int seen[128] = {0};
  for (int i = 0; i < 12; i++) {
    hd_sdp_out_track_t x = v;
    x.ssrc = 1000 + (uint32_t)i * 2;
    x.rtx_ssrc = x.ssrc + 1;
    snprintf(x.fmtp, sizeof x.fmtp, "x-variant=%d", i);
    assert_int_equal(add(&x, mid), i);
    const hd_sdp_offer_slot_t *s = hd_sdp_offerer_slot(&g_o, i);
    assert_false(s->pt >= 64 && s->pt <= 95);
    assert_false(s->rtx_pt >= 64 && s->rtx_pt <= 95);
    assert_int_equal(seen[s->pt]++, 0);
    assert_int_equal(seen[s->rtx_pt]++, 0);
  }
  assert_int_equal(hd_sdp_offerer_slot(&g_o, 0)->pt, 96);
  assert_int_equal(hd_sdp_offerer_slot(&g_o, 0)->rtx_pt, 97);
  offer_text();
  assert_int_equal(apply_text(chrome_answer("active", NULL, NULL)), 0);
  for (int i = 0; i < 12; i++)
    assert_int_equal(g_neg.media[i].pt, hd_sdp_offerer_slot(&g_o, i)->pt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_first_offer_audio_video),
      cmocka_unit_test(test_offer_ice_tcp_candidate),
      cmocka_unit_test(test_audio_nack_offered),
      cmocka_unit_test(test_apply_chrome_answer),
      cmocka_unit_test(test_red_passed_on),
      cmocka_unit_test(test_flexfec_offered),
      cmocka_unit_test(test_answer_keeps_subset),
      cmocka_unit_test(test_renegotiate_screen_share),
      cmocka_unit_test(test_remove_and_recycle),
      cmocka_unit_test(test_recycle_then_remove_before_offer),
      cmocka_unit_test(test_answer_refuses_and_inactive),
      cmocka_unit_test(test_first_offer_audio_tag),
      cmocka_unit_test(test_reject_wrong_mid_order),
      cmocka_unit_test(test_reject_bad_answers),
      cmocka_unit_test(test_h264_source),
      cmocka_unit_test(test_h264_answer_profile_mismatch),
      cmocka_unit_test(test_answer_setup_passive),
      cmocka_unit_test(test_no_setup_means_active),
      cmocka_unit_test(test_zero_tracks_and_states),
      cmocka_unit_test(test_bad_params_and_tracks),
      cmocka_unit_test(test_payload_type_pool),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
