/* Fuzz target for the SDP parser/writer (src/proto/sdp.c) and the SFU answerer
 * (src/proto/sdp_negotiate.c). Beyond "no crash", it checks the writer's contract:
 * for anything the parser accepts, parse(write(x)) == x, byte for byte in the struct,
 * and the negotiated answer itself serializes and re-parses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/sdp.h"
#include "proto/sdp_negotiate.h"

static hd_sdp_t a, b, ans, ans2;
static hd_sdp_negotiated_t neg, neg2;
static char text1[1 << 20], text2[1 << 20];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[256];
  if (hd_sdp_parse(&a, (const char *)data, size, err, sizeof err) < 0) return 0;
  int n1 = hd_sdp_write(&a, text1, sizeof text1);
  if (n1 < 0) abort();
  if (hd_sdp_parse(&b, text1, (size_t)n1, err, sizeof err) < 0) abort();
  if (memcmp(&a, &b, sizeof a) != 0) abort();
  int n2 = hd_sdp_write(&b, text2, sizeof text2);
  if (n2 != n1 || memcmp(text1, text2, (size_t)n1) != 0) abort();

  static const char fp[] = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:"
                           "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";
  hd_sdp_answer_params_t p = {.ice_ufrag = "ufrag",
                              .ice_pwd = "0123456789abcdefghijkl",
                              .fingerprint_sha256 = fp,
                              .cand_ip = "192.0.2.1",
                              .cand_port = 7881,
                              .direction = HD_SDP_RECVONLY};
  /* a room publisher PC: data channel sections accepted too (RFC 8841) */
  p.datachannel = 1;
  if (hd_sdp_negotiate(&a, &p, &ans, &neg, err, sizeof err) == 0) {
    n1 = hd_sdp_write(&ans, text1, sizeof text1);
    if (n1 < 0 || hd_sdp_parse(&b, text1, (size_t)n1, err, sizeof err) < 0) abort();
    if (neg.sctp && (!neg.remote_sctp_port || !neg.remote_max_message)) abort();
  }
  p.datachannel = 0;
  if (hd_sdp_negotiate(&a, &p, &ans, &neg, err, sizeof err) == 0) {
    n1 = hd_sdp_write(&ans, text1, sizeof text1);
    if (n1 < 0 || hd_sdp_parse(&b, text1, (size_t)n1, err, sizeof err) < 0) abort();
    /* WHEP against the same offer with the WHIP result as the source */
    p.direction = HD_SDP_SENDONLY;
    p.source = &neg;
    p.send_ssrc_audio = 1;
    p.send_ssrc_video = 2;
    p.send_ssrc_video_rtx = 3;
    p.stream_id = "s";
    if (hd_sdp_negotiate(&a, &p, &ans2, &neg2, err, sizeof err) == 0) {
      n1 = hd_sdp_write(&ans2, text1, sizeof text1);
      if (n1 < 0 || hd_sdp_parse(&b, text1, (size_t)n1, err, sizeof err) < 0) abort();
    }
  }
  return 0;
}
