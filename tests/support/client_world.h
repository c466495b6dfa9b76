/* Test support (not shipped): an in-process node (sfu/node.h) with an SDK
 * publisher and an SDK subscriber PeerConnection (client/pc.h) in one room,
 * every leg a `hudong netem` link model (netem/link.h) configured with the
 * options the command line takes, run sans-IO on a virtual clock (fixed
 * seeds for the links, for hd_random_* and OpenSSL (seeded_rand.h) and fixed
 * certificate dates: a result is reproducible bit for bit, docs/testing.md
 * "Determinism"). The publisher is a synthetic
 * encoder (audio 50 packets/s, VP8 at 30 fps in one stream or three simulcast
 * layers); the subscriber's frames go through the SDK's video jitter buffer
 * (media/video_jitter.h) and the W3C freeze rule (client/client_quality.h)
 * as client_media.c drives them. Shared by test_client_downlink,
 * test_client_narrow_audio, test_client_viewer_fec and
 * test_client_publisher_fec. Helpers abort on a
 * broken harness invariant (they are linked without cmocka). */
#ifndef HD_TEST_CLIENT_WORLD_H
#define HD_TEST_CLIENT_WORLD_H
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "client/client_internal.h"
#include "client/client_quality.h"
#include "client/pc.h"
#include "media/audio_jitter.h"
#include "media/video_jitter.h"
#include "netem/link.h"
#include "proto/dtls.h"
#include "sfu/node.h"
#include "sfu/rooms_internal.h"
#include "sfu/signal.h"

#define CW_NODE 2       /* index of the node in cw_t.nl */
#define CW_LAYERS 3     /* simulcast layers of the synthetic encoder */
#define CW_MAXSEQ 32768 /* video packets tracked by ext seq (cw_ep_t.got) */
#define CW_MAXDELAYS 8192
#define CW_RAND_SEED 0x6875646f6e67ull /* hd_test_rand_seed of the worlds (seeded_rand.h) */

struct cw;

typedef struct {
  struct cw *world;
  hd_pc_t *pc;
  struct sockaddr_in addr;
  /* publisher */
  int sending, vtrack, atrack;
  int video_off; /* the camera unpublished (cw_unpublish_camera): no video frames */
  uint32_t frame, audio_n;
  int force_key[CW_LAYERS];
  uint16_t pid[CW_LAYERS];
  hd_time_t next_video, next_audio;
  int n_layers;       /* 1 (one stream) or CW_LAYERS (simulcast) */
  uint64_t send_rate; /* latest SEND_RATE target; 0 = fixed layer rates */
  int adapt;          /* one stream sized from send_rate as client_media.c does */
  /* publisher with the SDK's media policy (client_media.c) on a client with
   * one audio and one video track: start plan, send budget, audio protection */
  hd_client_t *sdk;
  uint64_t reports_seen;
  uint64_t send_full; /* video packets hd_pc_send_rtp refused: its queue was full (HD_ENOSPC) */
  /* subscriber */
  hd_video_jb_t jb;
  int have_jb, rtrack;
  hd_freeze_t fz;
  hd_time_t watch_from; /* frames and freezes counted from here */
  uint64_t rendered, keyreqs;
  int last_layer; /* layer of the last rendered frame, -1 none */
  uint64_t layer_frames[CW_LAYERS];
  hd_time_t first_frame_at, last_frame_at;
  hd_time_t *delays, *jb_delays; /* per rendered frame: capture -> render, and its jitter-buffer part */
  size_t n_delays;
  hd_time_t tr_last, tr_lo, tr_hi; /* trace: last frame delay, range before the jitter buffer */
  int64_t first_ext, max_ext;
  uint8_t got[CW_MAXSEQ]; /* video packets delivered, by ext seq from the first */
  /* subscriber's audio: NetEQ-class buffer pulled every 20 ms (client_media.c) */
  hd_audio_jitter_t ajb;
  int have_ajb;
  hd_time_t next_pull;
  hd_time_t *adelays; /* per audio packet watched: capture -> arrival */
  size_t n_adelays;
} cw_ep_t;

/* What differs between the worlds the tests build; zero is the default. */
typedef struct {
  /* netem options of each leg; NULL: "--delay 25" */
  const char *const *up, *const *down;   /* publisher's uplink, subscriber's downlink */
  const char *const *vup, *const *pdown; /* subscriber's uplink, publisher's downlink */
  size_t nup, ndown, nvup, npdown;
  uint64_t seed;      /* the links' seeds (per direction, from this) */
  int n_layers;       /* publisher: 1 (one stream at 450 kbit/s) or CW_LAYERS; 0 = CW_LAYERS */
  int adapt;          /* the publisher's single stream follows its estimate (90% less audio) */
  int64_t adapt_max;  /* with adapt: the stream's cap in bit/s; 0 = 1100000 */
  int sub_no_twcc;    /* the subscriber declines transport-cc as the SDK client did before (client.c) */
  int pub_fec;        /* the publisher offers its own FlexFEC */
  int sub_fec;        /* the subscriber joins with "flexfec" and takes FlexFEC (client/rtc_signal.c) */
  int sdk;            /* the publisher follows the SDK's media policy (cw_ep_t.sdk) */
  int sub_audio;      /* audio payloads carry their capture time, the subscriber plays them through
                       * the audio jitter buffer on a 20 ms clock and records their delay */
  int untagged;       /* VP8 payloads without capture time and layer tag, keyframes 640x360 */
  int rtt_track_only; /* the jitter buffer takes only the track's repair RTT, not the pc's RTT */
  int mic_only_first; /* the publisher's first publish_offer names only its microphone (cw_publish) */
  int pub_fec_later;  /* with pub_fec: the publisher's first offer leaves FlexFEC out (pub_offer_drop_fec) */
  int pub_probe;      /* the publisher's pc sends bandwidth probes (hd_pc_config_t.probe) */
  int64_t pub_probe_interval; /* its hd_pc_config_t.probe_interval (0 default, < 0 off) */
  double pub_app_limit;       /* its hd_pc_config_t.app_limit_factor (0 default) */
} cw_cfg_t;

#define CW_MAX_FEC_SSRCS 16

typedef struct cw {
  cw_cfg_t cfg;
  cw_ep_t ep[2]; /* 0 publisher ("alice"), 1 subscriber ("bob") */
  struct sockaddr_in node_addr;
  hd_node_t *node;
  hd_time_t now;
  char *msgs[2][64];
  int n_msgs[2];
  hd_participant_t *part[2];
  hd_netem_link_t *nl[3][3];            /* [from][to], CW_NODE = 2 */
  char *joined_text;                    /* the node's "joined" to the subscriber, as sent */
  char cam_sid[64];                     /* the camera's track sid, as the subscriber knows it */
  char offer[32768];                    /* the node's subscriber offer, as sent */
  char answer[32768];                   /* the subscriber's answer */
  uint64_t pt_bytes[256], pt_pkts[256]; /* node -> subscriber RTP by payload type (255: RTCP) */
  /* node -> subscriber FlexFEC repair packets (the node's pt) by SSRC, and when the last left */
  struct {
    uint32_t ssrc;
    uint64_t pkts;
    hd_time_t last;
  } fec_out[CW_MAX_FEC_SSRCS];
  int n_fec_out;
  int answer_drop_fec; /* cw_answer_subscriber takes FlexFEC out of the answers it sends (not the pc's) */
  /* publisher -> node FlexFEC repair packets (the SDK's pt, HD_PC_PT_FLEXFEC)
   * by SSRC as they were put on the link: count, when the last left, the
   * highest seq and how many did not go past it (a seq sent again: an SRTP
   * index reused, which the node's replay check drops), and how many the
   * link delivered to the node */
  struct {
    uint32_t ssrc;
    uint64_t pkts, not_ahead, delivered;
    uint16_t max_seq;
    hd_time_t last;
  } pub_fec_out[CW_MAX_FEC_SSRCS];
  int n_pub_fec_out;
  /* the publisher's (re)negotiation (cw_publish*, cw_republish_camera) with
   * FlexFEC taken out of its offer before the node sees it (a publisher that
   * does not offer it: the pc then reads an answer without it), or out of the
   * node's answer before the pc applies it (an answer that declines it) */
  int pub_offer_drop_fec, pub_answer_drop_fec;
  /* called (if set) as the node's publish answer is about to be applied,
   * nothing drained in between: what the publisher's pc holds then */
  void (*pub_before_answer)(struct cw *w);
  char pub_offer[32768], pub_answer[32768]; /* the last publish offer / answer, as the other side got it */
  /* every datagram put on a link: count and cw_trace_mix hash (determinism check) */
  uint64_t trace_n, trace_hash;
} cw_t;

/* cmocka group setup/teardown: quiet logs, the three certificates (the
 * publisher's, the subscriber's, the node's; pc_world.h uses them too). */
extern hd_dtls_cert_t *cw_cert_a, *cw_cert_b, *cw_cert_n;
int cw_setup_all(void **st);
int cw_teardown_all(void **st);

/* The publisher (camera + microphone) and the subscriber joined, published,
 * subscribed (the connections still to come up in virtual time). */
cw_t *cw_new(const cw_cfg_t *cfg);
void cw_free(cw_t *w);
/* The publisher renegotiates (a new offer from its pc, the node's answer
 * applied) naming its microphone and, with cam_cid, its camera under that
 * client id (NULL: the camera is unpublished). Then the subscriber answers
 * every subscriber offer the node sends it (cw_answer_subscriber). */
void cw_publish(cw_t *w, const char *cam_cid);
/* The same with the microphone under mic_cid (NULL: unpublished). */
void cw_publish2(cw_t *w, const char *mic_cid, const char *cam_cid);
/* The camera as the SDK client unpublishes and publishes it again
 * (client.c do_publish): its transceiver stops sending and stays in the
 * offers; published again it is a new sendonly video transceiver (a new mid,
 * new SSRCs, a new FlexFEC repair SSRC), named under cam_cid in a
 * renegotiation with the microphone. cw_unpublish_camera renegotiates without it. */
void cw_unpublish_camera(cw_t *w);
void cw_republish_camera(cw_t *w, const char *cam_cid);
/* Repair packets the publisher put on its uplink on FlexFEC SSRC ssrc; and
 * those of them the link delivered to the node. */
uint64_t cw_pub_fec_out(const cw_t *w, uint32_t ssrc);
uint64_t cw_pub_fec_delivered(const cw_t *w, uint32_t ssrc);
/* The subscriber answers the node's pending subscriber offer(s) with its pc
 * (the last offer and answer kept in w->offer / w->answer). Returns how many
 * it answered. */
int cw_answer_subscriber(cw_t *w);
/* Repair packets the node sent the subscriber on FlexFEC SSRC ssrc. */
uint64_t cw_fec_out(const cw_t *w, uint32_t ssrc);
/* Runs the world on the virtual clock until `end`. */
void cw_run_until(cw_t *w, hd_time_t end);
/* A signaling message from client c (0, 1) to the node: the node's result. */
int cw_rtc_msg(cw_t *w, int c, const char *text);
/* Takes the first message of `type` the node sent client c: 0 or HD_ENOTFOUND. */
int cw_take(cw_t *w, int c, hd_signal_type_t type, hd_signal_msg_t *m);
/* The node's estimate of the subscriber's downlink (admin participants JSON),
 * 0 when absent; *paused (optional): the subscriber's video paused. */
uint64_t cw_estimate(cw_t *w, int *paused);
/* Percent of the watched time (since ep[1].watch_from) the subscriber's video
 * was frozen; a gap still open at the end counts too. */
double cw_stall_pct(cw_t *w);
/* Hands every datagram the node (node_index; node may be NULL) and the pcs
 * pcs[0..1] (NULL: none) want to send now to send(ctx, from, to, data, len),
 * the node's first: the wire of both client worlds (this one, pc_world.h). */
typedef void (*cw_send_fn)(void *ctx, int from, const struct sockaddr_storage *to, const uint8_t *data,
                           size_t len);
void cw_pump(hd_node_t *node, int node_index, hd_pc_t *const pcs[2], hd_time_t now, cw_send_fn send,
             void *ctx);
/* Folds one datagram (virtual send time, from, to, length) into an FNV-1a
 * hash h (start from 0): two runs of a world with equal hashes sent the same
 * sizes between the same parties at the same virtual times. */
uint64_t cw_trace_mix(uint64_t h, hd_time_t now, int from, int to, size_t len);
/* The p-th percentile of v[0..n) (sorts v); 0 when empty. */
hd_time_t cw_pctl(hd_time_t *v, size_t n, int p);

#endif
