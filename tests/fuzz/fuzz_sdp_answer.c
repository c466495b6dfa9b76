/* Fuzz target for the answer-processing path of the subscriber-PC offerer
 * (src/proto/sdp_offer.c). The first input byte picks a scenario (bit 0: a first
 * offer/answer round has completed and the node re-offers with a removed and an added
 * track; bit 1: transport-cc on); the rest is parsed as the client's answer and
 * applied. Beyond "no crash" it checks the contracts: a failed apply leaves the offer
 * pending, a successful one reports one entry per m-line with our payload types, and
 * the offerer can always produce a next offer that our own parser reads back. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/sdp.h"
#include "proto/sdp_offer.h"

static hd_sdp_t offer, answer, reparsed;
static hd_sdp_offerer_t o;
static hd_sdp_negotiated_t neg;
static char text[1 << 17];

#define FP "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"

/* The answer a well-behaved client gives to the first offer (audio 0, video 1). */
static const char first_answer[] = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
                                   "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n"
                                   "a=ice-ufrag:cliU\r\na=ice-pwd:clientpassword0123456789\r\n"
                                   "a=fingerprint:sha-256 " FP "\r\na=setup:active\r\na=mid:0\r\n"
                                   "a=recvonly\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n"
                                   "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n"
                                   "a=recvonly\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n"
                                   "a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n";

static void check_offer(void) {
  char err[256];
  if (hd_sdp_offerer_create_offer(&o, &offer) != 0) abort();
  int n = hd_sdp_write(&offer, text, sizeof text);
  if (n < 0 || hd_sdp_parse(&reparsed, text, (size_t)n, err, sizeof err) != 0) abort();
  if (reparsed.n_media != o.n_slots) abort();
  for (int i = 0; i < reparsed.n_bundle; i++)
    for (int j = i + 1; j < reparsed.n_bundle; j++)
      if (!strcmp(reparsed.bundle[i], reparsed.bundle[j])) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[256], mid[HD_SDP_TOKEN_MAX];
  if (size < 1) return 0;
  int mode = data[0];
  hd_sdp_offerer_params_t p = {.ice_ufrag = "nodeU",
                               .ice_pwd = "nodepassword0123456789",
                               .fingerprint_sha256 = FP,
                               .cand_ip = "192.0.2.1",
                               .cand_port = 7881,
                               .twcc = (mode & 2) != 0};
  if (hd_sdp_offerer_init(&o, &p) != 0) abort();
  hd_sdp_out_track_t a = {.kind = HD_SDP_AUDIO,
                          .codec = "opus",
                          .clock = 48000,
                          .channels = 2,
                          .fmtp = "minptime=10;useinbandfec=1",
                          .ssrc = 11,
                          .stream_id = "alice",
                          .track_id = "mic"};
  hd_sdp_out_track_t v = {.kind = HD_SDP_VIDEO,
                          .codec = "VP8",
                          .clock = 90000,
                          .ssrc = 22,
                          .rtx_ssrc = 23,
                          .stream_id = "alice",
                          .track_id = "cam"};
  if (hd_sdp_offerer_add_track(&o, &a, mid, sizeof mid) != 0) abort();
  if (hd_sdp_offerer_add_track(&o, &v, mid, sizeof mid) != 1) abort();
  check_offer();
  if (mode & 1) {
    if (hd_sdp_parse(&answer, first_answer, sizeof first_answer - 1, err, sizeof err) != 0) abort();
    if (hd_sdp_offerer_apply_answer(&o, &answer, &neg, err, sizeof err) != 0) abort();
    hd_sdp_out_track_t s = v;
    s.ssrc = 33;
    s.rtx_ssrc = 34;
    memcpy(s.track_id, "screen", 7);
    if (hd_sdp_offerer_remove_track(&o, "1") != 0) abort();
    if (hd_sdp_offerer_add_track(&o, &s, mid, sizeof mid) != 2) abort();
    check_offer();
  }

  if (hd_sdp_parse(&answer, (const char *)data + 1, size - 1, err, sizeof err) != 0) return 0;
  int n_pending = o.n_pending;
  int rc = hd_sdp_offerer_apply_answer(&o, &answer, &neg, err, sizeof err);
#ifdef FUZZ_DEBUG
  fprintf(stderr, "mode %d: apply rc %d %s\n", mode, rc, err);
#endif
  if (rc < 0) {
    if (!o.pending || !err[0]) abort();
    if (hd_sdp_offerer_rollback(&o) != 0) abort();
  } else {
    if (o.pending || neg.n_media != n_pending) abort();
    for (int i = 0; i < neg.n_media; i++) {
      const hd_sdp_media_negotiated_t *m = &neg.media[i];
      if (!m->active) continue;
      const hd_sdp_offer_slot_t *s = hd_sdp_offerer_slot(&o, i);
      if (!s || s->state != HD_SDP_SLOT_ACTIVE || m->pt != s->pt || (m->rtx_pt && m->rtx_pt != s->rtx_pt))
        abort();
    }
    /* keep going: subscriptions change again */
    hd_sdp_out_track_t x = v;
    x.ssrc = 55;
    x.rtx_ssrc = 56;
    hd_sdp_offerer_remove_track(&o, "0");
    if (hd_sdp_offerer_add_track(&o, &x, mid, sizeof mid) < 0) abort();
  }
  check_offer();
  return 0;
}
