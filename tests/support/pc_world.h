/* Test support (not shipped): the client PeerConnection's world
 * (client/pc.h) on a virtual clock with the in-process link model
 * (support/link.h, or per direction a `hudong netem` link model):
 * (a) a publisher pc and a subscriber pc in one room of an in-process node,
 *     driven over the node's /rtc JSON API (pw_room_run, pw_room_start);
 * (b) two pcs, both full ICE agents, connected directly (pw_connect_direct).
 * A synthetic encoder (audio 50 packets/s with RED when negotiated, video
 * 30 fps, payload byte 7 = 0x5A as a check mark) and what each endpoint's
 * application saw (pw_app_t); optionally the SDK's audio and video jitter
 * buffers as client_media.c drives them. Shared by test_client_pc,
 * test_client_pc_audio and test_client_pc_fec; the certificates are
 * client_world.h's (cw_setup_all). Helpers abort on a broken harness
 * invariant (they are linked without cmocka). */
#ifndef HD_TEST_PC_WORLD_H
#define HD_TEST_PC_WORLD_H
#include <netinet/in.h>
#include <stdint.h>

#include "client/client_quality.h"
#include "client/pc.h"
#include "media/audio_jitter.h"
#include "media/video_jitter.h"
#include "netem/link.h"
#include "proto/dtls.h"
#include "sfu/node.h"
#include "sfu/rooms_internal.h"
#include "client_world.h" /* the certificates: cw_setup_all, cw_teardown_all */
#include "link.h"

#define PW_NEP 3
#define PW_NODE 2
#define PW_DELAY HD_MS(20)
#define PW_MAXSEQ 8192

/* What an endpoint's application saw. */
typedef struct {
  int connected, failed, keyframes, remb_events;
  uint64_t last_remb;
  uint64_t rtp[3];  /* per kind */
  uint64_t rtx_rtp; /* delivered packets that came from RTX */
  uint64_t red_rtp; /* audio delivered as RED whose primary is our audio payload */
  int64_t first_ext[3], max_ext[3];
  uint8_t got[3][PW_MAXSEQ]; /* video/audio ext seqs relative to the first */
  int bad_payload;
} pw_app_t;

typedef struct {
  hd_pc_t *pc;
  struct sockaddr_in addr;
  hd_link_t up, down; /* up: from this endpoint; down: towards it */
  pw_app_t app;
  int sending;
  int force_key;
  uint32_t frame, audio_n;
  hd_time_t next_video, next_audio;
  int vtrack, atrack;
  int half_fps;          /* w->adapt: every other frame skipped (the SDK's rule below 100 kbit/s of video) */
  hd_audio_jitter_t *jb; /* set: received audio goes into a jitter buffer pulled every 20 ms */
  hd_time_t next_pull;
  /* set: received video goes through the SDK's video jitter buffer
   * (media/video_jitter.h) as client/client_media.c drives it: repair RTT
   * from the pc, PLI on KEYFRAME_NEEDED; what it renders is measured */
  hd_video_jb_t *vjb;
  hd_freeze_t freeze;
  uint64_t v_out, v_rendered, v_plis;
  uint64_t v_delay_n;
  hd_time_t v_delay[4096]; /* capture -> render of rendered frames (ms granularity kept in us) */
  hd_time_t v_first_render, v_last_render, v_drained;
} pw_ep_t;

typedef struct {
  pw_ep_t ep[PW_NEP]; /* 0, 1: pcs; 2: the node's address in (a) */
  hd_node_t *node;
  hd_wire_t wire;
  hd_time_t now;
  /* signaling captured per connection */
  char *msgs[2][64];
  int n_msgs[2];
  hd_participant_t *part[2];
  char offer[16384], answer[16384];
  /* optional bottleneck on endpoint 0's uplink: serialisation at up_rate
   * bit/s behind a 200 ms drop-tail queue */
  uint64_t up_rate;
  hd_time_t up_busy;
  uint64_t up_drops, up_sent;
  int adapt;                             /* endpoint 0 sizes its video frames from the SEND_RATE target */
  int no_red, no_nack, no_video, no_fec; /* pc config / what alice publishes */
  int vp8; /* video payloads carry a VP8 payload descriptor (RFC 7741 §4.2) and header, so that a
            * receiver's frame assembler takes them; frame n is captured at sent_at[n] */
  hd_time_t sent_at[4096];
  /* set: alice's video is a source of fixed rate (pushed H.264 at push_bps,
   * 30 fps, a keyframe 4x a frame every 2 s), sent with .fixed_rate =
   * push_fixed; the time each of its video packets waited in her pc (leaves
   * her minus sent_at of its frame) is kept in vwait[0..vwait_n) */
  uint64_t push_bps;
  int push_fixed;
  size_t vwait_n;
  hd_time_t vwait[16384];
  /* set: datagrams from -> to go through the netem link model (src/netem)
   * instead of the support/link pair */
  hd_netem_link_t *nl[PW_NEP][PW_NEP];
  /* every datagram handed to the wire: count and cw_trace_mix hash (determinism check) */
  uint64_t trace_n, trace_hash;
} pw_t;

void pw_mkaddr(struct sockaddr_in *a, const char *ip, uint16_t port);
/* A world with no endpoint yet; the clock at 500 s. */
pw_t *pw_new(void);
void pw_free(pw_t *w);
/* Endpoint i at ip:port behind links of `loss` (PW_DELAY each way); a pc
 * with the world's no_red/no_nack/no_fec unless i is PW_NODE. */
void pw_ep_init(pw_t *w, int i, const char *ip, uint16_t port, double loss, hd_dtls_cert_t *cert);
/* Runs the world on the virtual clock until `end`. */
void pw_run_until(pw_t *w, hd_time_t end);
/* (a): alice (0) publishes microphone + camera (w->no_video: microphone
 * only), bob (1) subscribes, every link losing `loss`; runs `secs` seconds.
 * pw_room_run makes the world; up_rate (bit/s, 0 none) puts a bottleneck on
 * alice's uplink and makes her encoder follow its estimate. */
pw_t *pw_room_run(double loss, int secs, uint64_t up_rate);
void pw_room_start(pw_t *w, double loss, int secs);
/* (b): endpoints 0 and 1 as full ICE agents over links of `loss`: 0 offers
 * a video track in direction a_dir (and a sendrecv audio one first when
 * b_audio), 1 answers, 0 takes the answer; the connection is still to come
 * up in virtual time. */
void pw_connect_direct(pw_t *w, double loss, int a_dir, int b_audio);
/* Counts ext seqs of kind k missing between the first and `tail` before the last one. */
int64_t pw_holes(const pw_app_t *a, int k, int64_t tail);

#endif
