/* Unit tests for src/proto/sdp.c: parsing real browser / GStreamer offers (the files in
 * tests/fuzz/corpus/fuzz_sdp), effective-value accessors, round trips, caps and the
 * error messages for malformed input. */
#include "hd_test.h"

#define HD_STR2(x) #x
#define HD_STR(x) HD_STR2(x)

#include "base/err.h"
#include "proto/sdp.h"

/* hd_sdp_t is ~0.5 MB: keep them off the stack. */
static hd_sdp_t g_a, g_b;
static char g_text[1 << 16], g_out[1 << 16], g_out2[1 << 16];

/* Reads a corpus file next to this source (CMake compiles with absolute paths). */
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

static void parse_file(const char *name, hd_sdp_t *s) {
  char err[256];
  size_t n = load(name, g_text, sizeof g_text);
  int rc = hd_sdp_parse(s, g_text, n, err, sizeof err);
  if (rc != 0) fail_msg("%s: %s", name, err);
}

static int parse_str(hd_sdp_t *s, const char *text, char *err, size_t errcap) {
  return hd_sdp_parse(s, text, strlen(text), err, errcap);
}

static void test_parse_chrome(void **st) {
  (void)st;
  hd_sdp_t *s = &g_a;
  parse_file("chrome_vp8.sdp", s);
  assert_string_equal(s->origin_user, "-");
  assert_string_equal(s->origin_sess_id, "4215775240449105457");
  assert_true(s->origin_sess_version == 2);
  assert_string_equal(s->origin_addr, "127.0.0.1");
  assert_string_equal(s->session_name, "-");
  assert_int_equal(s->has_bundle, 1);
  assert_int_equal(s->n_bundle, 2);
  assert_string_equal(s->bundle[0], "0");
  assert_string_equal(s->bundle[1], "1");
  assert_int_equal(s->extmap_allow_mixed, 1);
  assert_string_equal(s->msid_semantic, "WMS 3b5a0a1c-7bb5-4b5e-9d2e-5f4f8c3c2a10");
  assert_int_equal(s->n_media, 2);

  const hd_sdp_media_t *a = &s->media[0];
  assert_int_equal(a->kind, HD_SDP_AUDIO);
  assert_int_equal(a->port, 9);
  assert_string_equal(a->proto, "UDP/TLS/RTP/SAVPF");
  assert_int_equal(a->n_fmt, 8);
  assert_string_equal(a->fmt[0], "111");
  assert_string_equal(a->fmt[7], "126");
  assert_int_equal(a->has_conn, 1);
  assert_string_equal(a->conn_addr, "0.0.0.0");
  assert_string_equal(a->mid, "0");
  assert_int_equal(a->direction, HD_SDP_SENDONLY);
  assert_int_equal(a->rtcp_mux, 1);
  assert_int_equal(a->rtcp_rsize, 1);
  assert_string_equal(a->ice_options, "trickle");
  assert_string_equal(hd_sdp_eff_ice_ufrag(s, 0), "EsAw");
  assert_string_equal(hd_sdp_eff_ice_pwd(s, 0), "bP+XJMM09aR8AiX1jdukzR6Y");
  const hd_sdp_fingerprint_t *fp = hd_sdp_eff_fingerprint(s, 0);
  assert_non_null(fp);
  assert_string_equal(fp->hash, "sha-256");
  assert_int_equal(strlen(fp->value), 95);
  assert_int_equal(hd_sdp_eff_setup(s, 0), HD_SDP_SETUP_ACTPASS);
  const hd_sdp_codec_t *opus = hd_sdp_codec_by_pt(a, 111);
  assert_non_null(opus);
  assert_string_equal(opus->name, "opus");
  assert_int_equal(opus->clock, 48000);
  assert_int_equal(opus->channels, 2);
  assert_string_equal(opus->fmtp, "minptime=10;useinbandfec=1");
  assert_true(hd_sdp_codec_has_fb(a, opus, "transport-cc"));
  assert_false(hd_sdp_codec_has_fb(a, opus, "nack"));
  const hd_sdp_codec_t *pcmu = hd_sdp_codec_by_pt(a, 0);
  assert_non_null(pcmu);
  assert_string_equal(pcmu->name, "PCMU");
  assert_int_equal(pcmu->channels, 0);
  assert_int_equal(a->n_extmaps, 4);
  assert_int_equal(a->extmaps[0].id, 1);
  assert_string_equal(a->extmaps[0].uri, "urn:ietf:params:rtp-hdrext:ssrc-audio-level");
  assert_int_equal(hd_sdp_extmap_by_uri(a, "urn:ietf:params:rtp-hdrext:sdes:mid"), 3);
  assert_int_equal(hd_sdp_extmap_by_uri(a, "urn:nope"), HD_ENOTFOUND);
  assert_int_equal(a->n_ssrcs, 1);
  assert_int_equal(a->ssrcs[0].ssrc, 1001);
  assert_string_equal(a->ssrcs[0].cname, "ZtqD1m4m8s9bWq2V");
  assert_string_equal(a->ssrcs[0].msid,
                      "3b5a0a1c-7bb5-4b5e-9d2e-5f4f8c3c2a10 6a1a3e0e-2b1f-4d8c-9a7e-0c1d2e3f4a5b");
  assert_int_equal(a->has_msid, 1);
  assert_string_equal(a->msid_stream, "3b5a0a1c-7bb5-4b5e-9d2e-5f4f8c3c2a10");
  assert_string_equal(a->msid_track, "6a1a3e0e-2b1f-4d8c-9a7e-0c1d2e3f4a5b");

  const hd_sdp_media_t *v = &s->media[1];
  assert_int_equal(v->kind, HD_SDP_VIDEO);
  assert_int_equal(v->n_fmt, 25);
  assert_int_equal(v->n_codecs, 25);
  const hd_sdp_codec_t *vp8 = hd_sdp_codec_by_pt(v, 96);
  assert_string_equal(vp8->name, "VP8");
  assert_int_equal(vp8->clock, 90000);
  assert_int_equal(vp8->n_fb, 5);
  assert_true(hd_sdp_codec_has_fb(v, vp8, "nack pli"));
  assert_true(hd_sdp_codec_has_fb(v, vp8, "ccm fir"));
  assert_true(hd_sdp_codec_has_fb(v, vp8, "goog-remb"));
  const hd_sdp_codec_t *rtx = hd_sdp_codec_by_pt(v, 97);
  assert_string_equal(rtx->name, "rtx");
  assert_string_equal(rtx->fmtp, "apt=96");
  const hd_sdp_codec_t *h = hd_sdp_codec_by_pt(v, 106);
  assert_string_equal(h->fmtp, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f");
  assert_null(hd_sdp_codec_by_pt(v, 5));
  assert_int_equal(v->n_ssrc_groups, 1);
  assert_string_equal(v->ssrc_groups[0].semantics, "FID");
  assert_int_equal(v->ssrc_groups[0].n_ssrcs, 2);
  assert_int_equal(v->ssrc_groups[0].ssrcs[0], 2001);
  assert_int_equal(v->ssrc_groups[0].ssrcs[1], 2002);
  assert_int_equal(v->n_ssrcs, 2);
  assert_int_equal(v->n_extmaps, 11);
  int ri = hd_sdp_extmap_by_uri(v, "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id");
  assert_true(ri >= 0);
  assert_int_equal(v->extmaps[ri].id, 10);
  assert_int_equal(hd_sdp_media_by_mid(s, "1"), 1);
  assert_int_equal(hd_sdp_media_by_mid(s, "7"), HD_ENOTFOUND);
}

/* Firefox: fingerprint at session level, ICE at media level, fmtp before rtpmap,
 * a session-level direction overridden per section, extmap with a direction. */
static void test_parse_firefox(void **st) {
  (void)st;
  hd_sdp_t *s = &g_a;
  parse_file("firefox_sendonly.sdp", s);
  assert_string_equal(s->origin_user, "mozilla...THIS_IS_SDPARTA-99.0");
  assert_true(s->origin_sess_version == 0);
  assert_string_equal(s->fingerprint.hash, "sha-256");
  assert_string_equal(s->media[0].fingerprint.hash, "");
  assert_ptr_equal(hd_sdp_eff_fingerprint(s, 1), &s->fingerprint);
  assert_int_equal(s->direction, HD_SDP_SENDRECV);
  assert_int_equal(hd_sdp_eff_direction(s, 0), HD_SDP_SENDONLY);
  assert_string_equal(s->ice_ufrag, "");
  assert_string_equal(hd_sdp_eff_ice_ufrag(s, 1), "1a2b3c4d");
  assert_string_equal(s->msid_semantic, "WMS *");
  assert_string_equal(s->ice_options, "trickle");
  const hd_sdp_media_t *a = &s->media[0];
  assert_int_equal(a->extmaps[1].direction, HD_SDP_RECVONLY);
  assert_string_equal(a->extmaps[1].uri, "urn:ietf:params:rtp-hdrext:csrc-audio-level");
  const hd_sdp_codec_t *opus = hd_sdp_codec_by_pt(a, 109);
  assert_string_equal(opus->name, "opus");
  assert_string_equal(opus->fmtp, "maxplaybackrate=48000;stereo=1;useinbandfec=1");
  const hd_sdp_codec_t *g722 = hd_sdp_codec_by_pt(a, 9);
  assert_int_equal(g722->channels, 1);
  assert_string_equal(a->msid_stream, "{9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f}");
  const hd_sdp_media_t *v = &s->media[1];
  const hd_sdp_codec_t *h = hd_sdp_codec_by_pt(v, 126);
  assert_string_equal(h->name, "H264");
  assert_string_equal(h->fmtp, "profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1");
  assert_int_equal(h->n_fb, 5);
  assert_int_equal(v->ssrc_groups[0].ssrcs[1], 2887405601u);
  /* with no setup/direction anywhere the defaults apply */
  assert_int_equal(hd_sdp_eff_direction(s, 5), HD_SDP_SENDRECV);
}

static void test_parse_gstreamer_candidates(void **st) {
  (void)st;
  hd_sdp_t *s = &g_a;
  parse_file("gstreamer_webrtcbin.sdp", s);
  assert_string_equal(s->bundle[0], "video0");
  assert_string_equal(s->bundle[1], "audio1");
  const hd_sdp_media_t *v = &s->media[0];
  assert_string_equal(v->mid, "video0");
  assert_string_equal(hd_sdp_eff_ice_ufrag(s, 0), "Sbs+H0VL3bGKoeJd8KpCtnBS9XcXyflS");
  assert_int_equal(v->n_candidates, 3);
  assert_string_equal(v->candidates[0].foundation, "1");
  assert_int_equal(v->candidates[0].component, 1);
  assert_string_equal(v->candidates[0].transport, "udp"); /* lower-cased from "UDP" */
  assert_int_equal(v->candidates[0].priority, 2015363327u);
  assert_string_equal(v->candidates[0].addr, "192.168.1.23");
  assert_int_equal(v->candidates[0].port, 43567);
  assert_string_equal(v->candidates[0].type, "host");
  assert_string_equal(v->candidates[1].transport, "tcp");
  assert_string_equal(v->candidates[1].tcptype, "active");
  assert_string_equal(v->candidates[2].type, "srflx");
  assert_string_equal(v->candidates[2].raddr, "192.168.1.23");
  assert_int_equal(v->candidates[2].rport, 43567);
  assert_int_equal(v->end_of_candidates, 1);
  const hd_sdp_codec_t *opus = hd_sdp_codec_by_pt(&s->media[1], 98);
  assert_string_equal(opus->name, "OPUS");
  assert_int_equal(s->media[1].ssrcs[0].ssrc, 1577340523u);
}

static void test_parse_datachannel_and_simulcast(void **st) {
  (void)st;
  hd_sdp_t *s = &g_a;
  parse_file("chrome_datachannel.sdp", s);
  assert_int_equal(s->n_media, 1);
  assert_int_equal(s->media[0].kind, HD_SDP_APPLICATION);
  assert_string_equal(s->media[0].proto, "UDP/DTLS/SCTP");
  assert_string_equal(s->media[0].fmt[0], "webrtc-datachannel");
  assert_int_equal(s->media[0].sctp_port, 5000);
  assert_true(s->media[0].max_message_size == 262144);
  assert_string_equal(s->msid_semantic, "WMS");

  parse_file("chrome_simulcast.sdp", s);
  const hd_sdp_media_t *v = &s->media[1];
  assert_int_equal(v->n_rids, 3);
  assert_string_equal(v->rids[0].id, "q");
  assert_int_equal(v->rids[0].direction, HD_SDP_RID_SEND);
  assert_string_equal(v->rids[2].id, "f");
  assert_string_equal(v->simulcast, "send q;h;f");
  assert_int_equal(v->n_ssrcs, 0);
}

/* parse -> write -> parse gives the same struct, and writing is then stable. */
static void test_round_trip_corpus(void **st) {
  (void)st;
  const char *files[] = {"chrome_vp8.sdp",         "chrome_h264.sdp",      "chrome_simulcast.sdp",
                         "chrome_datachannel.sdp", "firefox_sendonly.sdp", "firefox_recvonly.sdp",
                         "gstreamer_webrtcbin.sdp"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char err[256];
    parse_file(files[i], &g_a);
    int n = hd_sdp_write(&g_a, g_out, sizeof g_out);
    assert_true(n > 0);
    assert_int_equal(strlen(g_out), (size_t)n);
    assert_int_equal(hd_sdp_parse(&g_b, g_out, (size_t)n, err, sizeof err), 0);
    assert_memory_equal(&g_a, &g_b, sizeof g_a);
    int n2 = hd_sdp_write(&g_b, g_out2, sizeof g_out2);
    assert_int_equal(n, n2);
    assert_memory_equal(g_out, g_out2, (size_t)n);
    /* every line ends in \r\n */
    for (int k = 0; k < n; k++)
      if (g_out[k] == '\n') assert_int_equal(g_out[k - 1], '\r');
  }
  /* spot-check the serialization of Chrome's offer */
  parse_file("chrome_vp8.sdp", &g_a);
  hd_sdp_write(&g_a, g_out, sizeof g_out);
  assert_non_null(strstr(g_out, "v=0\r\no=- 4215775240449105457 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"));
  assert_non_null(strstr(g_out, "a=group:BUNDLE 0 1\r\n"));
  assert_non_null(
      strstr(g_out, "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 0.0.0.0\r\n"));
  assert_non_null(strstr(g_out, "a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 "
                                "minptime=10;useinbandfec=1\r\n"));
  assert_non_null(strstr(g_out, "a=ssrc-group:FID 2001 2002\r\n"));
  assert_non_null(strstr(g_out, "a=msid-semantic: WMS 3b5a0a1c"));
}

/* \n-only line ends, a missing final newline and blank lines parse the same. */
static void test_line_endings(void **st) {
  (void)st;
  char err[256];
  parse_file("firefox_sendonly.sdp", &g_a);
  size_t n = load("firefox_sendonly.sdp", g_text, sizeof g_text), j = 0;
  for (size_t i = 0; i < n; i++)
    if (g_text[i] != '\r') g_out[j++] = g_text[i];
  j--; /* drop the final \n */
  g_out[j] = '\0';
  assert_int_equal(hd_sdp_parse(&g_b, g_out, j, err, sizeof err), 0);
  assert_memory_equal(&g_a, &g_b, sizeof g_a);
  const char *blank = "v=0\r\n\r\ns=x\r\n\r\n";
  assert_int_equal(parse_str(&g_b, blank, err, sizeof err), 0);
  assert_string_equal(g_b.session_name, "x");
}

static void test_unknown_ignored(void **st) {
  (void)st;
  char err[256];
  const char *t = "v=0\n"
                  "o=- 1 1 IN IP4 0.0.0.0\n"
                  "s=-\n"
                  "i=some info\n"
                  "b=AS:1000\n"
                  "t=0 0\n"
                  "a=x-google-flag:conference\n"
                  "a=rtpmap:96 VP8/90000\n" /* media attribute at session level */
                  "m=video 9 UDP/TLS/RTP/SAVPF 96\n"
                  "b=AS:2000\n"
                  "a=mid:v\n"
                  "a=ice-lite\n"
                  "a=framerate:30\n"
                  "a=rtcp-fb:* nack\n"
                  "a=fmtp:96 \n"
                  "a=rtcp:9 IN IP4 0.0.0.0\n";
  assert_int_equal(parse_str(&g_a, t, err, sizeof err), 0);
  assert_int_equal(g_a.ice_lite, 0);
  assert_int_equal(g_a.n_media, 1);
  assert_int_equal(g_a.media[0].n_codecs, 0); /* empty fmtp creates nothing */
  assert_int_equal(g_a.media[0].n_fb_any, 1);
  hd_sdp_codec_t fake = {.pt = 96};
  assert_true(hd_sdp_codec_has_fb(&g_a.media[0], &fake, "nack"));
  assert_int_equal(hd_sdp_eff_setup(&g_a, 0), HD_SDP_SETUP_NONE);
  assert_null(hd_sdp_eff_fingerprint(&g_a, 0));
}

/* Session-level values apply to every section unless the section overrides them. */
static void test_effective_values(void **st) {
  (void)st;
  char err[256];
  const char *t = "v=0\r\ns=-\r\nt=0 0\r\n"
                  "a=ice-ufrag:sess\r\na=ice-pwd:sesspwd\r\na=setup:active\r\n"
                  "a=fingerprint:SHA-1 00:11\r\na=fingerprint:sha-256 AA:BB\r\n"
                  "a=fingerprint:sha-512 CC:DD\r\na=inactive\r\n"
                  "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\n"
                  "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\n"
                  "a=ice-ufrag:med\r\na=ice-pwd:medpwd\r\na=setup:passive\r\n"
                  "a=fingerprint:sha-384 EE:FF\r\na=recvonly\r\n";
  assert_int_equal(parse_str(&g_a, t, err, sizeof err), 0);
  assert_string_equal(hd_sdp_eff_ice_ufrag(&g_a, 0), "sess");
  assert_string_equal(hd_sdp_eff_ice_pwd(&g_a, 0), "sesspwd");
  assert_int_equal(hd_sdp_eff_setup(&g_a, 0), HD_SDP_SETUP_ACTIVE);
  assert_int_equal(hd_sdp_eff_direction(&g_a, 0), HD_SDP_INACTIVE);
  assert_string_equal(hd_sdp_eff_fingerprint(&g_a, 0)->value, "AA:BB"); /* sha-256 wins */
  assert_string_equal(hd_sdp_eff_ice_ufrag(&g_a, 1), "med");
  assert_string_equal(hd_sdp_eff_ice_pwd(&g_a, 1), "medpwd");
  assert_int_equal(hd_sdp_eff_setup(&g_a, 1), HD_SDP_SETUP_PASSIVE);
  assert_int_equal(hd_sdp_eff_direction(&g_a, 1), HD_SDP_RECVONLY);
  assert_string_equal(hd_sdp_eff_fingerprint(&g_a, 1)->hash, "sha-384");
  /* out-of-range index falls back to session level */
  assert_string_equal(hd_sdp_eff_ice_ufrag(&g_a, 99), "sess");
  assert_string_equal(hd_sdp_setup_name(HD_SDP_SETUP_ACTPASS), "actpass");
  assert_string_equal(hd_sdp_direction_name(HD_SDP_DIR_UNSET), "");
}

static void test_fmtp_param(void **st) {
  (void)st;
  char v[16];
  const char *f = "level-asymmetry-allowed=1; Packetization-Mode=1;profile-level-id=42e01f";
  assert_int_equal(hd_sdp_fmtp_param(f, "profile-level-id", v, sizeof v), 6);
  assert_string_equal(v, "42e01f");
  assert_int_equal(hd_sdp_fmtp_param(f, "packetization-mode", v, sizeof v), 1);
  assert_string_equal(v, "1");
  assert_int_equal(hd_sdp_fmtp_param(f, "level", v, sizeof v), HD_ENOTFOUND);
  assert_int_equal(hd_sdp_fmtp_param(f, "profile-level-id", v, 4), HD_ENOSPC);
  assert_int_equal(hd_sdp_fmtp_param("apt=96", "apt", v, sizeof v), 2);
  assert_int_equal(hd_sdp_fmtp_param("", "apt", v, sizeof v), HD_ENOTFOUND);
  assert_int_equal(hd_sdp_fmtp_param("111/111", "apt", v, sizeof v), HD_ENOTFOUND);
}

/* Builds a description by hand and checks it serializes and parses back. */
static void test_build_and_write(void **st) {
  (void)st;
  char err[256];
  hd_sdp_t *s = &g_a;
  hd_sdp_init(s);
  s->ice_lite = 1;
  s->has_bundle = 1;
  s->n_bundle = 1;
  strcpy(s->bundle[0], "a");
  s->n_media = 1;
  hd_sdp_media_t *m = &s->media[0];
  m->kind = HD_SDP_AUDIO;
  strcpy(m->media, "audio");
  m->port = 5000;
  strcpy(m->proto, "UDP/TLS/RTP/SAVPF");
  m->n_fmt = 1;
  strcpy(m->fmt[0], "111");
  strcpy(m->mid, "a");
  m->direction = HD_SDP_RECVONLY;
  m->n_codecs = 1;
  m->codecs[0].pt = 111;
  strcpy(m->codecs[0].name, "opus");
  m->codecs[0].clock = 48000;
  m->codecs[0].channels = 2;
  int n = hd_sdp_write(s, g_out, sizeof g_out);
  assert_true(n > 0);
  assert_string_equal(g_out, "v=0\r\n"
                             "o=- 0 0 IN IP4 127.0.0.1\r\n"
                             "s=-\r\n"
                             "t=0 0\r\n"
                             "a=ice-lite\r\n"
                             "a=group:BUNDLE a\r\n"
                             "m=audio 5000 UDP/TLS/RTP/SAVPF 111\r\n"
                             "a=mid:a\r\n"
                             "a=recvonly\r\n"
                             "a=rtpmap:111 opus/48000/2\r\n");
  assert_int_equal(hd_sdp_parse(&g_b, g_out, (size_t)n, err, sizeof err), 0);
  assert_memory_equal(&g_a, &g_b, sizeof g_a);
  /* exact-size boundary: needs room for the NUL */
  assert_int_equal(hd_sdp_write(s, g_out2, (size_t)n), HD_ENOSPC);
  assert_int_equal(g_out2[0], '\0');
  assert_int_equal(hd_sdp_write(s, g_out2, (size_t)n + 1), n);
  assert_int_equal(hd_sdp_write(s, g_out2, 10), HD_ENOSPC);
  assert_int_equal(hd_sdp_write(NULL, g_out2, 10), HD_EINVAL);
}

/* Expects hd_sdp_parse to fail with HD_EPROTO and an error containing `want`. */
static void expect_err(const char *text, const char *want) {
  char err[256];
  int rc = hd_sdp_parse(&g_a, text, strlen(text), err, sizeof err);
  if (rc != HD_EPROTO) fail_msg("expected HD_EPROTO for [%s], got %d", want, rc);
  if (!strstr(err, want)) fail_msg("error '%s' does not contain '%s'", err, want);
}

static void test_errors(void **st) {
  (void)st;
  expect_err("", "empty SDP");
  expect_err("x=1\r\n", "line 1: SDP must start with v=0");
  expect_err("v=1\r\n", "line 1: SDP must start with v=0");
  expect_err("v=0\r\nhello\r\n", "line 2: expected <type>=<value>");
  expect_err("v=0\r\ns=-\r\nt=0 0\r\nm=audio\r\n", "line 4: bad m= line");
  expect_err("v=0\r\nm=audio x UDP/TLS/RTP/SAVPF 0\r\n", "line 2: bad m= line: port");
  expect_err("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 128\r\n", "bad m= line: payload type");
  expect_err("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF\r\n", "bad m= line: no formats");
  expect_err("v=0\r\nm=audio 70000 RTP/AVP 0\r\n", "bad m= line: port");
  expect_err("v=0\r\no=- 1\r\n", "line 2: bad o= line");
  expect_err("v=0\r\nt=0\r\n", "bad t= line");
  expect_err("v=0\r\nc=IN IP4\r\n", "bad c= line");
  expect_err("v=0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n", "line 3: bad a=rtpmap encoding");
  expect_err("v=0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:200 PCMU/8000\r\n", "bad payload type in a=rtpmap");
  expect_err("v=0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000/1/2\r\n", "bad a=rtpmap encoding");
  expect_err("v=0\r\nm=audio 9 RTP/AVP 0\r\na=rtcp-fb:0\r\n", "bad a=rtcp-fb");
  expect_err("v=0\r\nm=audio 9 RTP/AVP 0\r\na=extmap:0 urn:x\r\n", "bad a=extmap id");
  expect_err("v=0\r\nm=audio 9 RTP/AVP 0\r\na=extmap:1/sideways urn:x\r\n", "bad a=extmap direction");
  expect_err("v=0\r\nm=audio 9 RTP/AVP 0\r\na=ssrc:-1 cname:x\r\n", "bad SSRC");
  expect_err("v=0\r\nm=audio 9 RTP/AVP 0\r\na=ssrc:4294967296 cname:x\r\n", "bad SSRC");
  expect_err("v=0\r\nm=audio 9 RTP/AVP 0\r\na=ssrc-group:FID\r\n", "no SSRCs");
  expect_err("v=0\r\nm=audio 9 RTP/AVP 0\r\na=rid:a both\r\n", "bad a=rid direction");
  expect_err("v=0\r\nm=audio 9 RTP/AVP 0\r\na=candidate:1 1 udp 1 1.2.3.4 5 host x\r\n", "expected 'typ'");
  expect_err("v=0\r\nm=audio 9 RTP/AVP 0\r\na=candidate:1 1 udp 1 1.2.3.4\r\n", "bad a=candidate");
  expect_err("v=0\r\nm=audio 9 RTP/AVP 0\r\na=candidate:1 1 udp 1 1.2.3.4 99999 typ host\r\n",
             "bad a=candidate port");
  expect_err("v=0\r\na=setup:sometimes\r\n", "line 2: bad a=setup value");
  expect_err("v=0\r\na=fingerprint:sha-256\r\n", "bad a=fingerprint");
  expect_err("v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=sctp-port:65536\r\n",
             "bad a=sctp-port");
  expect_err("v=0\r\nm=audio 9 RTP/AVP 0\r\na=mid:\r\n", "empty a=mid");
  expect_err("v=0\r\nm=audio 9 RTP/AVP 0\r\na=msid:\r\n", "bad a=msid");

  /* NUL bytes */
  char err[128];
  const char nul[] = "v=0\r\ns=a\0b\r\n";
  assert_int_equal(hd_sdp_parse(&g_a, nul, sizeof nul - 1, err, sizeof err), HD_EPROTO);
  assert_non_null(strstr(err, "line 2: NUL byte"));
  /* err may be NULL; a tiny err buffer is truncated, not overrun */
  assert_int_equal(hd_sdp_parse(&g_a, "x", 1, NULL, 0), HD_EPROTO);
  char tiny[5];
  assert_int_equal(hd_sdp_parse(&g_a, "x", 1, tiny, sizeof tiny), HD_EPROTO);
  assert_int_equal(strlen(tiny), 4);
  assert_int_equal(hd_sdp_parse(NULL, "v=0", 3, err, sizeof err), HD_EPROTO);
}

/* Every cap is an error with a message, not an overflow. */
static void test_caps(void **st) {
  (void)st;
  static char big[1 << 16];
  size_t n;

  n = (size_t)snprintf(big, sizeof big, "v=0\r\n");
  for (int i = 0; i <= HD_SDP_MAX_MEDIA; i++)
    n += (size_t)snprintf(big + n, sizeof big - n, "m=audio 9 RTP/AVP 0\r\n");
  expect_err(big, "line 18: too many media sections (max 16)");

  n = (size_t)snprintf(big, sizeof big, "v=0\r\na=ice-ufrag:");
  for (int i = 0; i < HD_SDP_ICE_MAX; i++)
    big[n++] = 'u';
  big[n] = '\0';
  expect_err(big, "line 2: a=ice-ufrag too long (max 127 characters)");

  n = (size_t)snprintf(big, sizeof big, "v=0\r\nm=video 9 RTP/AVP 96\r\n");
  for (int i = 0; i <= HD_SDP_MAX_CODECS; i++)
    n += (size_t)snprintf(big + n, sizeof big - n, "a=rtpmap:%d VP8/90000\r\n", i);
  expect_err(big, "too many codecs in m= section (max " HD_STR(HD_SDP_MAX_CODECS) ")");

  n = (size_t)snprintf(big, sizeof big, "v=0\r\nm=video 9 RTP/AVP");
  for (int i = 0; i <= HD_SDP_MAX_FMT; i++)
    n += (size_t)snprintf(big + n, sizeof big - n, " %d", i);
  snprintf(big + n, sizeof big - n, "\r\n");
  expect_err(big, "too many formats on m= line (max " HD_STR(HD_SDP_MAX_FMT) ")");

  n = (size_t)snprintf(big, sizeof big, "v=0\r\nm=video 9 RTP/AVP 96\r\n");
  for (int i = 0; i <= HD_SDP_MAX_FB; i++)
    n += (size_t)snprintf(big + n, sizeof big - n, "a=rtcp-fb:96 fb%d\r\n", i);
  expect_err(big, "too many a=rtcp-fb");

  n = (size_t)snprintf(big, sizeof big, "v=0\r\nm=video 9 RTP/AVP 96\r\n");
  for (int i = 0; i <= HD_SDP_MAX_SSRCS; i++)
    n += (size_t)snprintf(big + n, sizeof big - n, "a=ssrc:%d cname:x\r\n", i + 1);
  expect_err(big, "too many SSRCs (max 16)");

  n = (size_t)snprintf(big, sizeof big, "v=0\r\nm=video 9 RTP/AVP 96\r\n");
  for (int i = 0; i <= HD_SDP_MAX_EXTMAPS; i++)
    n += (size_t)snprintf(big + n, sizeof big - n, "a=extmap:%d urn:x:%d\r\n", i + 1, i);
  expect_err(big, "too many a=extmap");

  n = (size_t)snprintf(big, sizeof big, "v=0\r\nm=video 9 RTP/AVP 96\r\n");
  for (int i = 0; i <= HD_SDP_MAX_CANDIDATES; i++)
    n += (size_t)snprintf(big + n, sizeof big - n, "a=candidate:%d 1 udp 1 10.0.0.1 %d typ host\r\n", i, i);
  expect_err(big, "too many a=candidate (max 32)");

  n = (size_t)snprintf(big, sizeof big, "v=0\r\na=group:BUNDLE");
  for (int i = 0; i <= HD_SDP_MAX_MEDIA; i++)
    n += (size_t)snprintf(big + n, sizeof big - n, " m%d", i);
  expect_err(big, "too many mids in a=group:BUNDLE");

  n = (size_t)snprintf(big, sizeof big, "v=0\r\nm=video 9 RTP/AVP 96\r\na=fmtp:96 ");
  for (int i = 0; i < HD_SDP_FMTP_MAX; i++)
    big[n++] = 'x';
  big[n] = '\0';
  expect_err(big, "line 3: a=fmtp parameters too long (max 255 characters)");

  /* exactly at the cap is fine */
  n = (size_t)snprintf(big, sizeof big, "v=0\r\na=ice-pwd:");
  for (int i = 0; i < HD_SDP_ICE_MAX - 1; i++)
    big[n++] = 'p';
  big[n] = '\0';
  char err[128];
  assert_int_equal(hd_sdp_parse(&g_a, big, n, err, sizeof err), 0);
  assert_int_equal(strlen(g_a.ice_pwd), HD_SDP_ICE_MAX - 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_chrome),
      cmocka_unit_test(test_parse_firefox),
      cmocka_unit_test(test_parse_gstreamer_candidates),
      cmocka_unit_test(test_parse_datachannel_and_simulcast),
      cmocka_unit_test(test_round_trip_corpus),
      cmocka_unit_test(test_line_endings),
      cmocka_unit_test(test_unknown_ignored),
      cmocka_unit_test(test_effective_values),
      cmocka_unit_test(test_fmtp_param),
      cmocka_unit_test(test_build_and_write),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_caps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
