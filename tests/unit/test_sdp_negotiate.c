/* Unit tests for src/proto/sdp_negotiate.c: WHIP answers to Chrome / Firefox /
 * GStreamer offers (tests/fuzz/corpus/fuzz_sdp), WHEP answers that map the publisher's
 * codec onto the viewer's payload types, H.264 profile matching, the rejection
 * reasons, and that the answer text carries what Chrome requires. */
#include "hd_test.h"

#include "base/err.h"
#include "proto/sdp.h"
#include "proto/sdp_negotiate.h"

static hd_sdp_t g_offer, g_answer, g_parsed;
static hd_sdp_negotiated_t g_neg, g_src;
static char g_text[1 << 16], g_out[1 << 16], g_out2[1 << 16];
static char g_err[512];

#define OUR_FP                                                                                               \
  "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF"

static size_t load(const char *name, char *buf, size_t cap) {
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
  return n;
}

/* Copies src into g_text with every line starting with `prefix` removed. */
static void drop_lines(const char *src, const char *prefix) {
  char tmp[sizeof g_text];
  size_t j = 0, pl = strlen(prefix);
  for (const char *p = src; *p;) {
    const char *e = strchr(p, '\n');
    size_t len = e ? (size_t)(e - p + 1) : strlen(p);
    if (strncmp(p, prefix, pl) != 0) {
      memcpy(tmp + j, p, len);
      j += len;
    }
    p += len;
  }
  tmp[j] = '\0';
  memcpy(g_text, tmp, j + 1);
}

/* Replaces every occurrence of `from` by `to` in g_text. */
static void replace_all(const char *from, const char *to) {
  char tmp[sizeof g_text];
  size_t j = 0, fl = strlen(from), tl = strlen(to);
  for (const char *p = g_text; *p;) {
    if (!strncmp(p, from, fl)) {
      memcpy(tmp + j, to, tl);
      j += tl;
      p += fl;
    } else {
      tmp[j++] = *p++;
    }
  }
  tmp[j] = '\0';
  memcpy(g_text, tmp, j + 1);
}

static void parse_text(hd_sdp_t *s) {
  char err[256];
  if (hd_sdp_parse(s, g_text, strlen(g_text), err, sizeof err) != 0) fail_msg("parse: %s", err);
}

static void parse_file(const char *name, hd_sdp_t *s) {
  load(name, g_text, sizeof g_text);
  parse_text(s);
}

static hd_sdp_answer_params_t whip_params(void) {
  hd_sdp_answer_params_t p = {.ice_ufrag = "srvU",
                              .ice_pwd = "srvpassword0123456789ab",
                              .fingerprint_sha256 = OUR_FP,
                              .cand_ip = "192.0.2.1",
                              .cand_port = 7881,
                              .direction = HD_SDP_RECVONLY};
  return p;
}

static hd_sdp_answer_params_t whep_params(const hd_sdp_negotiated_t *src) {
  hd_sdp_answer_params_t p = whip_params();
  p.direction = HD_SDP_SENDONLY;
  p.source = src;
  p.send_ssrc_audio = 11;
  p.send_ssrc_video = 22;
  p.send_ssrc_video_rtx = 23;
  p.cname = "hudong-cn";
  p.stream_id = "live";
  return p;
}

static int negotiate(const hd_sdp_answer_params_t *p) {
  return hd_sdp_negotiate(&g_offer, p, &g_answer, &g_neg, g_err, sizeof g_err);
}

/* Serializes the answer, re-parses it, and checks the writer is stable on it. */
static const char *answer_text(void) {
  char err[256];
  int n = hd_sdp_write(&g_answer, g_out, sizeof g_out);
  assert_true(n > 0);
  if (hd_sdp_parse(&g_parsed, g_out, (size_t)n, err, sizeof err) != 0) fail_msg("answer: %s", err);
  int n2 = hd_sdp_write(&g_parsed, g_out2, sizeof g_out2);
  assert_int_equal(n, n2);
  assert_memory_equal(g_out, g_out2, (size_t)n);
  return g_out;
}

#define HAS(t, s)                                                                                            \
  do {                                                                                                       \
    if (!strstr((t), (s))) fail_msg("answer lacks \"%s\":\n%s", (s), (t));                                   \
  } while (0)
#define HASNT(t, s)                                                                                          \
  do {                                                                                                       \
    if (strstr((t), (s))) fail_msg("answer must not contain \"%s\":\n%s", (s), (t));                         \
  } while (0)

/* RED (RFC 2198) for Opus: put first by the offerer (web/rtc.js does), it is
 * first in the answer, so the browser sends RED; one whose fmtp names another
 * codec is not taken. */
static void test_red_first(void **st) {
  (void)st;
  load("chrome_vp8.sdp", g_text, sizeof g_text);
  replace_all("m=audio 9 UDP/TLS/RTP/SAVPF 111 63", "m=audio 9 UDP/TLS/RTP/SAVPF 63 111");
  parse_text(&g_offer);
  hd_sdp_answer_params_t p = whip_params();
  assert_int_equal(negotiate(&p), 0);
  assert_int_equal(g_neg.media[0].red_pt, 63);
  assert_int_equal(g_neg.media[0].pt, 111);
  const char *t = answer_text();
  HAS(t, "m=audio 7881 UDP/TLS/RTP/SAVPF 63 111\r\n");
  replace_all("a=fmtp:63 111/111", "a=fmtp:63 111/110");
  parse_text(&g_offer);
  assert_int_equal(negotiate(&p), 0);
  assert_int_equal(g_neg.media[0].red_pt, 0);
  t = answer_text();
  HASNT(t, "red/");
}

/* FlexFEC from a publisher (issue 13 item 2): "flexfec/90000" with its
 * FEC-FR group is taken (pt, repair SSRC, echoed with its repair-window);
 * Chromium's field-trial "flexfec-03" (the draft layout) is not, nor is FEC
 * on what we send (WHEP). */
static void test_flexfec_from_publisher(void **st) {
  (void)st;
  load("chrome_vp8.sdp", g_text, sizeof g_text);
  replace_all("m=video 9 UDP/TLS/RTP/SAVPF 96 97 102", "m=video 9 UDP/TLS/RTP/SAVPF 96 97 35 102");
  replace_all("a=rtpmap:97 rtx/90000\r\n",
              "a=rtpmap:97 rtx/90000\r\na=rtpmap:35 flexfec/90000\r\na=fmtp:35 repair-window=4000000\r\n");
  replace_all("a=ssrc-group:FID 2001 2002\r\n",
              "a=ssrc-group:FID 2001 2002\r\na=ssrc-group:FEC-FR 2001 2003\r\n");
  parse_text(&g_offer);
  hd_sdp_answer_params_t p = whip_params();
  assert_int_equal(negotiate(&p), 0);
  assert_int_equal(g_neg.media[1].fec_pt, 35);
  assert_int_equal(g_neg.media[1].remote_fec_ssrc, 2003);
  assert_int_equal(g_neg.media[0].fec_pt, 0); /* audio */
  const char *t = answer_text();
  HAS(t, "m=video 7881 UDP/TLS/RTP/SAVPF 96 97 35\r\n");
  HAS(t, "a=rtpmap:35 flexfec/90000\r\n");
  HAS(t, "a=fmtp:35 repair-window=4000000\r\n");
  /* the draft format under Chromium's name: not taken */
  replace_all("flexfec/90000", "flexfec-03/90000");
  parse_text(&g_offer);
  assert_int_equal(negotiate(&p), 0);
  assert_int_equal(g_neg.media[1].fec_pt, 0);
  assert_int_equal(g_neg.media[1].remote_fec_ssrc, 0);
  HASNT(answer_text(), "flexfec");
}

static void test_whip_chrome_vp8(void **st) {
  (void)st;
  parse_file("chrome_vp8.sdp", &g_offer);
  hd_sdp_answer_params_t p = whip_params();
  assert_int_equal(negotiate(&p), 0);
  assert_int_equal(g_neg.n_media, 2);
  assert_string_equal(g_neg.remote_ufrag, "EsAw");
  assert_string_equal(g_neg.remote_pwd, "bP+XJMM09aR8AiX1jdukzR6Y");
  assert_string_equal(
      g_neg.remote_fingerprint,
      "DA:7B:57:DC:28:CE:04:4F:31:79:85:C4:31:67:EB:27:58:29:ED:77:2A:0D:24:AE:ED:AD:30:BC:BD:F1:9C:02");
  assert_int_equal(g_neg.remote_setup, HD_SDP_SETUP_ACTPASS);
  assert_int_equal(g_neg.dtls_server, 1);

  const hd_sdp_media_negotiated_t *a = &g_neg.media[0];
  assert_int_equal(a->active, 1);
  assert_int_equal(a->kind, HD_SDP_AUDIO);
  assert_string_equal(a->mid, "0");
  assert_int_equal(a->direction, HD_SDP_RECVONLY);
  assert_int_equal(a->pt, 111);
  assert_string_equal(a->codec, "opus");
  assert_int_equal(a->clock, 48000);
  assert_int_equal(a->channels, 2);
  assert_string_equal(a->fmtp, "minptime=10;useinbandfec=1");
  assert_int_equal(a->rtx_pt, 0);
  assert_int_equal(a->red_pt, 63); /* Chrome offers red/48000/2 "111/111" after Opus */
  assert_int_equal(a->twcc_fb, 1);
  assert_int_equal(a->nack, 0);
  assert_int_equal(a->ext_audio_level, 1);
  assert_int_equal(a->ext_abs_send_time, 2);
  assert_int_equal(a->ext_twcc, 3);
  assert_int_equal(a->ext_mid, 4);
  assert_int_equal(a->ext_rid, 0);
  assert_int_equal(a->remote_ssrc, 1001);

  const hd_sdp_media_negotiated_t *v = &g_neg.media[1];
  assert_int_equal(v->active, 1);
  assert_int_equal(v->pt, 96);
  assert_string_equal(v->codec, "VP8");
  assert_int_equal(v->clock, 90000);
  assert_int_equal(v->rtx_pt, 97);
  assert_int_equal(v->red_pt, 0);
  assert_int_equal(v->ulpfec_pt, 0);
  assert_true(v->nack && v->pli && v->fir && v->twcc_fb && v->remb);
  assert_int_equal(v->ext_mid, 4);
  assert_int_equal(v->ext_abs_send_time, 2);
  assert_int_equal(v->ext_twcc, 3);
  assert_int_equal(v->ext_rid, 10);
  assert_int_equal(v->ext_rrid, 11);
  assert_int_equal(v->ext_audio_level, 0);
  assert_int_equal(v->remote_ssrc, 2001);
  assert_int_equal(v->remote_rtx_ssrc, 2002);
  assert_int_equal(v->n_rids, 0);

  /* the answer struct */
  assert_int_equal(g_answer.ice_lite, 1);
  assert_int_equal(g_answer.n_bundle, 2);
  assert_int_equal(g_answer.media[1].n_fmt, 2);
  assert_int_equal(g_answer.media[1].n_codecs, 2);
  assert_int_equal(g_answer.media[1].setup, HD_SDP_SETUP_PASSIVE);

  /* what Chrome needs to accept the answer */
  const char *t = answer_text();
  HAS(t, "v=0\r\n");
  HAS(t, "a=ice-lite\r\n");
  HAS(t, "a=group:BUNDLE 0 1\r\n");
  HAS(t, "a=extmap-allow-mixed\r\n");
  /* RED offered after Opus: accepted, after Opus (the publisher sends plain Opus) */
  HAS(t, "m=audio 7881 UDP/TLS/RTP/SAVPF 111 63\r\nc=IN IP4 192.0.2.1\r\n");
  HAS(t, "a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n");
  HAS(t, "m=video 7881 UDP/TLS/RTP/SAVPF 96 97\r\n");
  HAS(t, "a=ice-ufrag:srvU\r\n");
  HAS(t, "a=ice-pwd:srvpassword0123456789ab\r\n");
  HAS(t, "a=fingerprint:sha-256 " OUR_FP "\r\n");
  HAS(t, "a=setup:passive\r\n");
  HAS(t, "a=mid:0\r\n");
  HAS(t, "a=mid:1\r\n");
  HAS(t, "a=recvonly\r\n");
  HAS(t, "a=rtcp-mux\r\n");
  HAS(t, "a=rtcp-rsize\r\n");
  HAS(t,
      "a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n");
  HAS(t, "a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\na=rtcp-fb:96 ccm fir\r\n"
         "a=rtcp-fb:96 transport-cc\r\na=rtcp-fb:96 goog-remb\r\n");
  HAS(t, "a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n");
  HAS(t, "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n");
  HAS(t, "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n");
  HAS(t, "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n");
  HAS(t, "a=candidate:1 1 udp 2130706431 192.0.2.1 7881 typ host\r\n");
  HAS(t, "a=end-of-candidates\r\n");
  HASNT(t, "H264");
  HASNT(t, "ulpfec");
  HASNT(t, "toffset");
  HASNT(t, "video-orientation");
  HASNT(t, "a=setup:actpass");
  HASNT(t, "a=ssrc"); /* WHIP: we send nothing */
  assert_int_equal(g_parsed.n_media, 2);
  assert_string_equal(hd_sdp_eff_ice_ufrag(&g_parsed, 1), "srvU");
}

static void test_whip_chrome_h264_only(void **st) {
  (void)st;
  parse_file("chrome_h264.sdp", &g_offer);
  hd_sdp_answer_params_t p = whip_params();
  assert_int_equal(negotiate(&p), 0);
  const hd_sdp_media_negotiated_t *v = &g_neg.media[1];
  /* 102 (42001f baseline) comes first in Chrome's order, but 106 is 42e01f pm=1 */
  assert_int_equal(v->pt, 106);
  assert_string_equal(v->codec, "H264");
  assert_int_equal(v->rtx_pt, 107);
  assert_string_equal(v->fmtp, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f");
  assert_int_equal(v->remote_ssrc, 3001);
  assert_int_equal(v->remote_rtx_ssrc, 3002);
  const char *t = answer_text();
  HAS(t, "m=video 7881 UDP/TLS/RTP/SAVPF 106 107\r\n");
  HAS(t, "a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n");
  HAS(t, "a=fmtp:107 apt=106\r\n");
  HASNT(t, "profile-level-id=4d001f");
}

/* Our H.264 preference among what an offer contains. */
static void test_h264_preference(void **st) {
  (void)st;
  hd_sdp_answer_params_t p = whip_params();
  load("chrome_h264.sdp", g_text, sizeof g_text);
  /* without 42e01f pm=1 (106): the pm=1 baseline 42001f (102) wins over pm=0 ones */
  drop_lines(g_text, "a=fmtp:106 ");
  replace_all("a=rtpmap:106 H264", "a=rtpmap:106 H265");
  parse_text(&g_offer);
  assert_int_equal(negotiate(&p), 0);
  assert_int_equal(g_neg.media[1].pt, 102);
  assert_int_equal(g_neg.media[1].rtx_pt, 103);

  /* only main / high profile (an RTMP ingest passing its stream through
   * offers exactly that): taken, High (112, 64001f pm=1) over Main */
  load("chrome_h264.sdp", g_text, sizeof g_text);
  replace_all("profile-level-id=42", "profile-level-id=4d");
  parse_text(&g_offer);
  assert_int_equal(negotiate(&p), 0);
  assert_int_equal(g_neg.media[1].active, 1);
  assert_int_equal(g_neg.media[1].pt, 112);
  assert_string_equal(g_neg.media[1].fmtp,
                      "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f");

  /* only High 10 (no browser decodes it): video is rejected, audio still served */
  load("chrome_h264.sdp", g_text, sizeof g_text);
  replace_all("profile-level-id=42", "profile-level-id=6e");
  replace_all("profile-level-id=4d", "profile-level-id=6e");
  replace_all("profile-level-id=64", "profile-level-id=6e");
  parse_text(&g_offer);
  assert_int_equal(negotiate(&p), 0);
  assert_int_equal(g_neg.media[0].active, 1);
  assert_int_equal(g_neg.media[1].active, 0);
  assert_int_equal(g_answer.media[1].port, 0);
  assert_int_equal(g_answer.n_bundle, 1);
  const char *t = answer_text();
  HAS(t, "a=group:BUNDLE 0\r\n");
  HAS(t, "m=video 0 UDP/TLS/RTP/SAVPF 102\r\n");
  HAS(t, "a=mid:1\r\n");

  /* only packetization-mode=0: still acceptable */
  load("chrome_h264.sdp", g_text, sizeof g_text);
  replace_all("packetization-mode=1", "packetization-mode=0");
  parse_text(&g_offer);
  assert_int_equal(negotiate(&p), 0);
  assert_int_equal(g_neg.media[1].pt, 106); /* 42e01f, first equal-score CB */
}

static void test_h264_same_profile(void **st) {
  (void)st;
  const char *cb31 = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";
  assert_true(hd_sdp_h264_same_profile(cb31, "packetization-mode=1;profile-level-id=42e034"));
  assert_true(hd_sdp_h264_same_profile(cb31, "packetization-mode=1;profile-level-id=42C01F"));
  assert_true(
      hd_sdp_h264_same_profile(cb31, "packetization-mode=1;profile-level-id=4de01f")); /* CB via Main */
  assert_false(hd_sdp_h264_same_profile(cb31, "packetization-mode=1;profile-level-id=42001f"));
  assert_false(hd_sdp_h264_same_profile(cb31, "packetization-mode=1;profile-level-id=4d001f"));
  assert_false(hd_sdp_h264_same_profile(cb31, "packetization-mode=1;profile-level-id=64001f"));
  assert_false(hd_sdp_h264_same_profile(cb31, "packetization-mode=0;profile-level-id=42e01f"));
  assert_false(hd_sdp_h264_same_profile(cb31, "profile-level-id=42e01f")); /* pm defaults to 0 */
  assert_true(hd_sdp_h264_same_profile("", "profile-level-id=42001f"));    /* default 420010 */
  assert_true(hd_sdp_h264_same_profile("profile-level-id=640c1f", "profile-level-id=640c34"));
  assert_false(hd_sdp_h264_same_profile("profile-level-id=640c1f", "profile-level-id=64001f"));
  assert_false(hd_sdp_h264_same_profile("profile-level-id=zz001f", "profile-level-id=zz001f"));
  assert_false(hd_sdp_h264_same_profile("profile-level-id=42e01", cb31));
}

static void test_whip_firefox(void **st) {
  (void)st;
  parse_file("firefox_sendonly.sdp", &g_offer);
  hd_sdp_answer_params_t p = whip_params();
  assert_int_equal(negotiate(&p), 0);
  assert_string_equal(g_neg.remote_ufrag, "1a2b3c4d");
  assert_string_equal(g_neg.remote_fingerprint, g_offer.fingerprint.value); /* session level */
  const hd_sdp_media_negotiated_t *a = &g_neg.media[0], *v = &g_neg.media[1];
  assert_int_equal(a->pt, 109);
  assert_string_equal(a->fmtp, "maxplaybackrate=48000;stereo=1;useinbandfec=1");
  assert_int_equal(a->ext_audio_level, 1);
  assert_int_equal(a->ext_mid, 3);
  assert_int_equal(a->remote_ssrc, 2615104012u);
  assert_int_equal(v->pt, 120);
  assert_string_equal(v->codec, "VP8");
  assert_int_equal(v->rtx_pt, 124);
  assert_true(v->nack && v->pli && v->fir && v->twcc_fb && v->remb);
  assert_int_equal(v->ext_mid, 3);
  assert_int_equal(v->ext_abs_send_time, 4);
  assert_int_equal(v->ext_twcc, 7);
  assert_int_equal(v->remote_ssrc, 1349212380u);
  assert_int_equal(v->remote_rtx_ssrc, 2887405601u);
  const char *t = answer_text();
  HAS(t, "m=video 7881 UDP/TLS/RTP/SAVPF 120 124\r\n");
  HAS(t, "a=fmtp:120 max-fs=12288;max-fr=60\r\n");
  HASNT(t, "csrc-audio-level");
  HASNT(t, "playout-delay");
  HASNT(t, "a=extmap-allow-mixed"); /* Firefox did not offer it */
}

static void test_whip_gstreamer(void **st) {
  (void)st;
  parse_file("gstreamer_webrtcbin.sdp", &g_offer);
  hd_sdp_answer_params_t p = whip_params();
  assert_int_equal(negotiate(&p), 0);
  assert_string_equal(g_neg.remote_ufrag, "Sbs+H0VL3bGKoeJd8KpCtnBS9XcXyflS");
  const hd_sdp_media_negotiated_t *v = &g_neg.media[0], *a = &g_neg.media[1];
  assert_string_equal(v->mid, "video0");
  assert_int_equal(v->pt, 96);
  assert_int_equal(v->rtx_pt, 97);
  assert_true(v->nack && v->pli && v->fir && v->twcc_fb);
  assert_int_equal(v->remb, 0);
  assert_int_equal(v->ext_twcc, 1);
  assert_int_equal(v->remote_ssrc, 3484078950u);
  assert_int_equal(v->remote_rtx_ssrc, 2940181045u);
  assert_string_equal(a->mid, "audio1");
  assert_string_equal(a->codec, "OPUS");
  assert_int_equal(a->pt, 98);
  assert_int_equal(a->channels, 2);
  assert_int_equal(a->remote_ssrc, 1577340523u);
  const char *t = answer_text();
  HAS(t, "a=group:BUNDLE video0 audio1\r\n");
  HAS(t, "a=rtpmap:98 OPUS/48000/2\r\n");
  HASNT(t, "goog-remb");
}

static void test_whip_simulcast(void **st) {
  (void)st;
  parse_file("chrome_simulcast.sdp", &g_offer);
  hd_sdp_answer_params_t p = whip_params();
  assert_int_equal(negotiate(&p), 0);
  const hd_sdp_media_negotiated_t *v = &g_neg.media[1];
  assert_int_equal(v->n_rids, 3);
  assert_string_equal(v->rids[0], "q");
  assert_string_equal(v->rids[1], "h");
  assert_string_equal(v->rids[2], "f");
  assert_int_equal(v->remote_ssrc, 0);
  assert_int_equal(v->ext_rid, 10);
  const char *t = answer_text();
  HAS(t, "a=rid:q recv\r\na=rid:h recv\r\na=rid:f recv\r\na=simulcast:recv q;h;f\r\n");
}

/* DTLS role: passive offer -> we are active (client); active offer -> passive. */
static void test_dtls_roles(void **st) {
  (void)st;
  hd_sdp_answer_params_t p = whip_params();
  load("chrome_vp8.sdp", g_text, sizeof g_text);
  replace_all("a=setup:actpass", "a=setup:passive");
  parse_text(&g_offer);
  assert_int_equal(negotiate(&p), 0);
  assert_int_equal(g_neg.dtls_server, 0);
  assert_int_equal(g_neg.remote_setup, HD_SDP_SETUP_PASSIVE);
  HAS(answer_text(), "a=setup:active\r\n");

  load("chrome_vp8.sdp", g_text, sizeof g_text);
  replace_all("a=setup:actpass", "a=setup:active");
  parse_text(&g_offer);
  assert_int_equal(negotiate(&p), 0);
  assert_int_equal(g_neg.dtls_server, 1);
  HAS(answer_text(), "a=setup:passive\r\n");

  load("chrome_vp8.sdp", g_text, sizeof g_text);
  replace_all("a=setup:actpass", "a=setup:holdconn");
  parse_text(&g_offer);
  assert_int_equal(negotiate(&p), HD_EUNSUPPORTED);
  assert_non_null(strstr(g_err, "holdconn"));
}

/* WHEP: a Chrome publisher (VP8 96, opus 111) seen by a Firefox viewer whose payload
 * types differ (VP8 120/rtx 124, opus 109). */
static void test_whep_maps_payload_types(void **st) {
  (void)st;
  parse_file("chrome_vp8.sdp", &g_offer);
  hd_sdp_answer_params_t p = whip_params();
  assert_int_equal(negotiate(&p), 0);
  g_src = g_neg;

  parse_file("firefox_recvonly.sdp", &g_offer);
  p = whep_params(&g_src);
  assert_int_equal(negotiate(&p), 0);
  const hd_sdp_media_negotiated_t *a = &g_neg.media[0], *v = &g_neg.media[1];
  assert_int_equal(a->active, 1);
  assert_int_equal(a->direction, HD_SDP_SENDONLY);
  assert_int_equal(a->pt, 109);
  assert_string_equal(a->codec, "opus");
  assert_int_equal(v->active, 1);
  assert_int_equal(v->pt, 120);
  assert_string_equal(v->codec, "VP8");
  assert_int_equal(v->rtx_pt, 124);
  assert_int_equal(v->remote_ssrc, 0);
  const char *t = answer_text();
  HAS(t, "m=audio 7881 UDP/TLS/RTP/SAVPF 109\r\n");
  HAS(t, "m=video 7881 UDP/TLS/RTP/SAVPF 120 124\r\n");
  HAS(t, "a=rtpmap:109 opus/48000/2\r\n");
  HAS(t, "a=rtpmap:124 rtx/90000\r\na=fmtp:124 apt=120\r\n");
  HAS(t, "a=sendonly\r\n");
  HAS(t, "a=msid-semantic: WMS live\r\n");
  HAS(t, "a=msid:live audio-0\r\n");
  HAS(t, "a=msid:live video-1\r\n");
  HAS(t, "a=ssrc:11 cname:hudong-cn\r\na=ssrc:11 msid:live audio-0\r\n");
  HAS(t, "a=ssrc-group:FID 22 23\r\n");
  HAS(t, "a=ssrc:22 cname:hudong-cn\r\na=ssrc:22 msid:live video-1\r\n");
  HAS(t, "a=ssrc:23 cname:hudong-cn\r\n");
  HASNT(t, "a=recvonly");
  HASNT(t, "a=rid:");
  assert_int_equal(g_parsed.media[1].n_ssrcs, 2);
  /* playout-delay on the video we send (issue 11: the node asks a viewer
   * behind a lossy publisher leg to buffer for both legs' repairs) */
  assert_int_equal(v->ext_playout_delay, 6);
  assert_int_equal(a->ext_playout_delay, 0);
  HAS(t, "a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r\n");

  /* without an RTX SSRC of ours there is no RTX in the answer */
  p.send_ssrc_video_rtx = 0;
  assert_int_equal(negotiate(&p), 0);
  assert_int_equal(g_neg.media[1].rtx_pt, 0);
  t = answer_text();
  HAS(t, "m=video 7881 UDP/TLS/RTP/SAVPF 120\r\n");
  HASNT(t, "FID");
}

/* WHEP with an H.264 publisher: the viewer's H.264 entry with the same profile and
 * packetization-mode is chosen (Firefox 126, not 97 which is pm=0). */
static void test_whep_h264_profile_match(void **st) {
  (void)st;
  parse_file("chrome_h264.sdp", &g_offer);
  hd_sdp_answer_params_t p = whip_params();
  assert_int_equal(negotiate(&p), 0);
  g_src = g_neg;
  assert_int_equal(g_src.media[1].pt, 106);

  parse_file("firefox_recvonly.sdp", &g_offer);
  p = whep_params(&g_src);
  assert_int_equal(negotiate(&p), 0);
  assert_int_equal(g_neg.media[1].pt, 126);
  assert_int_equal(g_neg.media[1].rtx_pt, 127);
  assert_string_equal(g_neg.media[1].codec, "H264");
  HAS(answer_text(), "m=video 7881 UDP/TLS/RTP/SAVPF 126 127\r\n");

  /* a viewer whose only H.264 is pm=0 cannot take a pm=1 stream: video rejected */
  load("firefox_recvonly.sdp", g_text, sizeof g_text);
  replace_all("packetization-mode=1", "packetization-mode=0");
  parse_text(&g_offer);
  assert_int_equal(negotiate(&p), 0);
  assert_int_equal(g_neg.media[0].active, 1);
  assert_int_equal(g_neg.media[1].active, 0);
  const char *t = answer_text();
  HAS(t, "m=video 0 UDP/TLS/RTP/SAVPF 120\r\n");
  HAS(t, "a=group:BUNDLE 0\r\n");

  /* no section at all can be served: a reason for the HTTP 400 */
  load("firefox_recvonly.sdp", g_text, sizeof g_text);
  replace_all("packetization-mode=1", "packetization-mode=0");
  replace_all("opus/48000", "ISAC/16000");
  parse_text(&g_offer);
  assert_int_equal(negotiate(&p), HD_EUNSUPPORTED);
  assert_non_null(strstr(g_err, "no media section can be served"));
  assert_non_null(strstr(g_err, "mid 0: offer lacks the publisher's codec opus/48000"));
  assert_non_null(strstr(g_err, "mid 1: offer lacks the publisher's codec H264/90000"));
}

/* WHEP source without video: the viewer's video section is rejected. A viewer that
 * only sends (sendonly) cannot be played to. */
static void test_whep_rejections(void **st) {
  (void)st;
  memset(&g_src, 0, sizeof g_src);
  g_src.n_media = 1;
  g_src.media[0] = (hd_sdp_media_negotiated_t){
      .kind = HD_SDP_AUDIO, .active = 1, .pt = 111, .codec = "opus", .clock = 48000, .channels = 2};
  parse_file("firefox_recvonly.sdp", &g_offer);
  hd_sdp_answer_params_t p = whep_params(&g_src);
  assert_int_equal(negotiate(&p), 0);
  assert_int_equal(g_neg.media[0].active, 1);
  assert_int_equal(g_neg.media[1].active, 0);

  parse_file("firefox_sendonly.sdp", &g_offer);
  assert_int_equal(negotiate(&p), HD_EUNSUPPORTED);
  assert_non_null(strstr(g_err, "WHEP needs recvonly or sendrecv"));

  /* WHEP with no source uses the normal preference */
  parse_file("firefox_recvonly.sdp", &g_offer);
  p.source = NULL;
  assert_int_equal(negotiate(&p), 0);
  assert_int_equal(g_neg.media[1].pt, 120);
}

static void expect_reject(const char *want) {
  hd_sdp_answer_params_t p = whip_params();
  int rc = negotiate(&p);
  if (rc != HD_EUNSUPPORTED) fail_msg("expected HD_EUNSUPPORTED for '%s', got %d (%s)", want, rc, g_err);
  if (!strstr(g_err, want)) fail_msg("reason '%s' does not contain '%s'", g_err, want);
}

static void test_whip_rejections(void **st) {
  (void)st;
  load("chrome_vp8.sdp", g_text, sizeof g_text);
  drop_lines(g_text, "a=group:BUNDLE");
  parse_text(&g_offer);
  expect_reject("offer has no a=group:BUNDLE; BUNDLE is required");

  load("chrome_vp8.sdp", g_text, sizeof g_text);
  drop_lines(g_text, "a=fingerprint");
  parse_text(&g_offer);
  expect_reject("offer has no sha-256 a=fingerprint");

  load("chrome_vp8.sdp", g_text, sizeof g_text);
  replace_all("a=fingerprint:sha-256", "a=fingerprint:sha-1");
  parse_text(&g_offer);
  expect_reject("sha-256");

  load("chrome_vp8.sdp", g_text, sizeof g_text);
  drop_lines(g_text, "a=ice-pwd");
  parse_text(&g_offer);
  expect_reject("offer has no a=ice-ufrag / a=ice-pwd");

  load("chrome_vp8.sdp", g_text, sizeof g_text);
  drop_lines(g_text, "a=rtcp-mux");
  parse_text(&g_offer);
  expect_reject("mid 0 has no a=rtcp-mux; rtcp-mux is required");

  load("chrome_vp8.sdp", g_text, sizeof g_text);
  drop_lines(g_text, "a=mid:");
  parse_text(&g_offer);
  expect_reject("m-line 0 has no a=mid");

  /* only codecs we do not implement */
  load("chrome_vp8.sdp", g_text, sizeof g_text);
  replace_all("opus/48000", "ISAC/16000");
  replace_all("VP8/90000", "VP7/90000");
  replace_all("H264/90000", "H265/90000");
  parse_text(&g_offer);
  expect_reject("no media section can be served: mid 0: no supported audio codec offered (need "
                "opus/48000/2); mid 1: no supported video codec offered");

  /* a recvonly (viewer) offer sent to WHIP */
  parse_file("firefox_recvonly.sdp", &g_offer);
  expect_reject("mid 0: offer direction is recvonly; WHIP needs sendonly or sendrecv");
  load("chrome_vp8.sdp", g_text, sizeof g_text);
  replace_all("a=sendonly", "a=inactive");
  parse_text(&g_offer);
  expect_reject("offer direction is inactive");

  /* data channel only */
  parse_file("chrome_datachannel.sdp", &g_offer);
  expect_reject("no media section can be served: mid 0: application sections are not supported");

  /* BUNDLE naming a mid that does not exist is a malformed offer */
  load("chrome_vp8.sdp", g_text, sizeof g_text);
  replace_all("a=group:BUNDLE 0 1", "a=group:BUNDLE 7 1");
  parse_text(&g_offer);
  hd_sdp_answer_params_t p = whip_params();
  assert_int_equal(negotiate(&p), HD_EPROTO);
  assert_non_null(strstr(g_err, "'7'"));

  /* a section outside the BUNDLE group is rejected, the rest is served */
  load("chrome_vp8.sdp", g_text, sizeof g_text);
  replace_all("a=group:BUNDLE 0 1", "a=group:BUNDLE 0");
  parse_text(&g_offer);
  assert_int_equal(negotiate(&p), 0);
  assert_int_equal(g_neg.media[1].active, 0);

  /* no media at all */
  strcpy(g_text, "v=0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE\r\n");
  parse_text(&g_offer);
  expect_reject("offer has no media sections");
}

/* Audio + video + data channel: the data channel is listed with port 0 and its mid
 * and left out of our BUNDLE group. */
static void test_av_plus_datachannel(void **st) {
  (void)st;
  load("chrome_vp8.sdp", g_text, sizeof g_text);
  replace_all("a=group:BUNDLE 0 1", "a=group:BUNDLE 0 1 2");
  strcat(g_text, "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
                 "c=IN IP4 0.0.0.0\r\n"
                 "a=ice-ufrag:EsAw\r\n"
                 "a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\n"
                 "a=mid:2\r\n"
                 "a=sctp-port:5000\r\n"
                 "a=max-message-size:262144\r\n");
  parse_text(&g_offer);
  hd_sdp_answer_params_t p = whip_params();
  assert_int_equal(negotiate(&p), 0);
  assert_int_equal(g_neg.n_media, 3);
  assert_int_equal(g_neg.media[2].active, 0);
  assert_int_equal(g_neg.media[2].kind, HD_SDP_APPLICATION);
  assert_string_equal(g_neg.media[2].mid, "2");
  const char *t = answer_text();
  HAS(t, "a=group:BUNDLE 0 1\r\n");
  HAS(t, "m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\n");
  HASNT(t, "sctp-port");
  assert_int_equal(g_parsed.n_media, 3);
}

/* With params.datachannel (room publisher PCs) the section is accepted (RFC
 * 8841): in our BUNDLE group, with our transport, a=sctp-port and
 * a=max-message-size; the remote's values are reported. */
static void test_datachannel_accepted(void **st) {
  (void)st;
  load("chrome_vp8.sdp", g_text, sizeof g_text);
  replace_all("a=group:BUNDLE 0 1", "a=group:BUNDLE 0 1 2");
  strcat(g_text, "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
                 "c=IN IP4 0.0.0.0\r\n"
                 "a=mid:2\r\n"
                 "a=sctp-port:5001\r\n"
                 "a=max-message-size:262144\r\n");
  parse_text(&g_offer);
  hd_sdp_answer_params_t p = whip_params();
  p.datachannel = 1;
  assert_int_equal(negotiate(&p), 0);
  assert_int_equal(g_neg.media[2].active, 1);
  assert_int_equal(g_neg.media[2].kind, HD_SDP_APPLICATION);
  assert_int_equal(g_neg.sctp, 1);
  assert_int_equal(g_neg.remote_sctp_port, 5001);
  assert_int_equal(g_neg.remote_max_message, 262144);
  const char *t = answer_text();
  HAS(t, "a=group:BUNDLE 0 1 2\r\n");
  HAS(t, "m=application 7881 UDP/DTLS/SCTP webrtc-datachannel\r\n");
  HAS(t, "a=sctp-port:5000\r\na=max-message-size:262144\r\n");
  HAS(t, "a=candidate:1 1 udp 2130706431 192.0.2.1 7881 typ host\r\n");

  /* data channel only (a chat-only participant): served alone, defaults for absent attributes */
  parse_file("chrome_datachannel.sdp", &g_offer);
  assert_int_equal(negotiate(&p), 0);
  assert_int_equal(g_neg.sctp, 1);
  assert_int_equal(g_neg.dtls_server, 1);
  t = answer_text();
  HAS(t, "a=setup:passive\r\n");
  HAS(t, "webrtc-datachannel");

  /* two data channel sections: the second is rejected; an old-style SCTP section too */
  load("chrome_datachannel.sdp", g_text, sizeof g_text);
  replace_all("a=group:BUNDLE 0", "a=group:BUNDLE 0 1");
  strcat(g_text, "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n");
  parse_text(&g_offer);
  assert_int_equal(negotiate(&p), 0);
  assert_int_equal(g_neg.media[0].active, 1);
  assert_int_equal(g_neg.media[1].active, 0);
  strcpy(g_text,
         "v=0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\na=ice-ufrag:EsAw\r\n"
         "a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\n"
         "a=fingerprint:sha-256 "
         "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\n"
         "m=application 9 DTLS/SCTP 5000\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n");
  parse_text(&g_offer);
  assert_int_equal(negotiate(&p), HD_EUNSUPPORTED);
  assert_non_null(strstr(g_err, "UDP/DTLS/SCTP webrtc-datachannel"));
}

static void test_bad_params(void **st) {
  (void)st;
  parse_file("chrome_vp8.sdp", &g_offer);
  hd_sdp_answer_params_t p = whip_params();
  p.fingerprint_sha256 = "AB:CD";
  assert_int_equal(negotiate(&p), HD_EINVAL);
  p = whip_params();
  p.ice_pwd = NULL;
  assert_int_equal(negotiate(&p), HD_EINVAL);
  p = whip_params();
  p.direction = HD_SDP_SENDRECV;
  assert_int_equal(negotiate(&p), HD_EINVAL);
  p = whip_params();
  p.cand_ip = "";
  assert_int_equal(negotiate(&p), HD_EINVAL);
  p = whip_params();
  assert_int_equal(hd_sdp_negotiate(NULL, &p, &g_answer, &g_neg, g_err, sizeof g_err), HD_EINVAL);
  /* IPv6 candidate address */
  p.cand_ip = "2001:db8::1";
  assert_int_equal(negotiate(&p), 0);
  const char *t = answer_text();
  HAS(t, "c=IN IP6 2001:db8::1\r\n");
  HAS(t, "a=candidate:1 1 udp 2130706431 2001:db8::1 7881 typ host\r\n");
}

/* With a TCP port, every section carries an ICE-TCP passive host candidate
 * (RFC 6544 §4.5) on the same address, with a lower priority than UDP; the
 * media section and the data channel section alike. */
static void test_ice_tcp_candidate(void **st) {
  (void)st;
  load("chrome_vp8.sdp", g_text, sizeof g_text);
  replace_all("a=group:BUNDLE 0 1", "a=group:BUNDLE 0 1 2");
  strcat(g_text, "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\n");
  parse_text(&g_offer);
  hd_sdp_answer_params_t p = whip_params();
  p.datachannel = 1;
  p.cand_tcp_port = 7891;
  assert_int_equal(negotiate(&p), 0);
  const char *t = answer_text();
  for (int i = 0; i < 3; i++) {
    assert_int_equal(g_answer.media[i].n_candidates, 2);
    assert_string_equal(g_answer.media[i].candidates[1].transport, "tcp");
    assert_string_equal(g_answer.media[i].candidates[1].tcptype, "passive");
    assert_true(g_answer.media[i].candidates[1].priority < g_answer.media[i].candidates[0].priority);
  }
  HAS(t, "a=candidate:1 1 udp 2130706431 192.0.2.1 7881 typ host\r\n"
         "a=candidate:2 1 tcp 2113942527 192.0.2.1 7891 typ host tcptype passive\r\n");
  /* without a TCP port: UDP only, as before */
  p.cand_tcp_port = 0;
  assert_int_equal(negotiate(&p), 0);
  HASNT(answer_text(), " tcp ");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ice_tcp_candidate),
      cmocka_unit_test(test_flexfec_from_publisher),
      cmocka_unit_test(test_whip_chrome_vp8),
      cmocka_unit_test(test_red_first),
      cmocka_unit_test(test_whip_chrome_h264_only),
      cmocka_unit_test(test_h264_preference),
      cmocka_unit_test(test_h264_same_profile),
      cmocka_unit_test(test_whip_firefox),
      cmocka_unit_test(test_whip_gstreamer),
      cmocka_unit_test(test_whip_simulcast),
      cmocka_unit_test(test_dtls_roles),
      cmocka_unit_test(test_whep_maps_payload_types),
      cmocka_unit_test(test_whep_h264_profile_match),
      cmocka_unit_test(test_whep_rejections),
      cmocka_unit_test(test_whip_rejections),
      cmocka_unit_test(test_av_plus_datachannel),
      cmocka_unit_test(test_datachannel_accepted),
      cmocka_unit_test(test_bad_params),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
