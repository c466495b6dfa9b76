/* Internals of the SDK client (include/hudong/client.h), shared by client.c
 * (loop thread, command queue, signaling session, reconnect) and
 * client_media.c (local tracks: encode + packetize; remote tracks: jitter
 * buffer / frame assembly + decode; statistics). Everything here runs on the
 * client's loop thread except the fields marked "mutex". */
#ifndef HD_CLIENT_CLIENT_INTERNAL_H
#define HD_CLIENT_CLIENT_INTERNAL_H
#include <stdint.h>
#include <uv.h>

#include "base/time.h"
#include "client/client_quality.h"
#include "client/pc.h"
#include "client/rtc_signal.h"
#include "hudong/client.h"
#include "io/ws_client.h"
#include "media/audio_jitter.h"
#include "media/av_sync.h"
#include "media/h264_pay.h"
#include "media/h264_reorder.h"
#include "media/video_jitter.h"
#include "media/i420.h"
#include "media/opus_codec.h"
#include "media/rtp_payload.h"
#include "media/test_signal.h"
#include "media/vp8_codec.h"
#include "rtc/audio_protect.h"

#define CL_VIDEO_OUT_MAX (1u << 20) /* largest encoded video frame */

/* most redundant frames per RED packet we send */
#define CL_RED_MAX HD_AUDIO_PROTECT_MAX_DEPTH

typedef struct cl_local {
  int used;
  hd_client_publish_t opt;
  char source[16];
  char cid[16];
  int muted;
  int pc_track; /* transceiver in the current publisher pc, -1 */
  uint64_t target_bps;
  /* audio */
  hd_opus_enc_t opus;
  hd_opus_pay_t opay;
  int16_t abuf[HD_OPUS_FRAME_SAMPLES * 2];
  size_t afill;
  hd_tone_t tone;
  /* RED (RFC 2198): the last frames sent, for the redundant blocks */
  uint8_t red_hist[CL_RED_MAX][HD_OPUS_MAX_PACKET];
  size_t red_len[CL_RED_MAX];
  uint32_t red_ts[CL_RED_MAX];
  int red_n, red_pos;         /* filled entries, next write */
  int red_depth;              /* redundant frames to send now (2 until the first receiver report) */
  hd_audio_protect_t protect; /* the plan from the receiver's reports */
  uint64_t reports_seen;      /* receiver report blocks already applied */
  int fec_loss_pct;           /* expected loss given to the encoder */
  /* video */
  hd_vp8_enc_t vp8;
  int venc_ok;
  hd_vp8_pay_t vpay;
  uint8_t *vout;
  hd_i420_t pattern;
  uint32_t counter;
  int64_t pts;
  uint32_t ts_base;
  hd_time_t t0;
  int force_key;
  /* adaptation to a low target (issue 13 item 3): half resolution below
   * CL_HALF_RES_BPS, half frame rate below CL_HALF_FPS_BPS (with hysteresis) */
  hd_i420_t half;
  int half_res, half_fps;
  hd_time_t adapt_at; /* last resolution switch (each one costs a keyframe) */
  uint64_t frames_skipped, counter_in;
  /* simulcast (issue 11 items 1, 4): sim_n layers offered, lowest first, each
   * its own encoder on a 1/2^k scaled picture; `active` follows publish_layers */
  int sim_n;
  struct cl_sim {
    hd_vp8_enc_t enc;
    int enc_ok, active, force_key;
    int starved; /* its floor does not fit the target: not encoded (cl_sim_split) */
    hd_vp8_pay_t pay;
    hd_i420_t pic; /* scaled input (unused for the top layer) */
    uint64_t bps, frames;
  } sim[HD_PC_MAX_LAYERS];
  /* H.264 pushed encoded (opt.h264): packetiser, first pts */
  hd_h264_pay_t *hpay;
  int64_t h264_pts0, h264_last_pts; /* first and last pushed pts (µs) */
  int h264_have_pts0;
  /* built-in sources */
  hd_time_t next_frame;
  /* stats */
  uint64_t frames, keyframes, last_bytes;
} cl_local_t;

#define CL_E2E_BIN_US 5000 /* end-to-end delay histogram: 5 ms bins */
#define CL_E2E_BINS 600    /* up to 3 s (the last bin takes the rest) */

typedef struct cl_remote {
  int used;
  int pc_track;
  int kind;
  char track_sid[HD_RTC_SIGNAL_SID_MAX];
  char participant_sid[HD_RTC_SIGNAL_SID_MAX];
  char identity[HD_RTC_SIGNAL_IDENTITY_MAX];
  /* audio */
  hd_audio_jitter_t jb;
  hd_opus_dec_t dec;
  int audio_ok;
  hd_time_t next_pull;
  /* video */
  hd_video_jb_t vjb;
  hd_vp8_dec_t vdec;
  int video_ok;
  hd_h264_reorder_t *h264; /* H.264 track (cfg.accept_h264): reorder window + depacketiser, instead of vjb */
  int width, height;
  hd_freeze_t freeze;
  /* stats */
  uint64_t frames, keyframe_requests, last_bytes;
  uint64_t frames_decoded, frames_dropped; /* W3C: decoded; dropped before decode or not rendered */
  hd_time_t last_frame_at;                 /* last render */
  hd_time_t first_frame_at;                /* first render (0 none), for the stall rate's denominator */
  /* end-to-end delay: play/render time minus capture time on the sender's
   * clock (its RTCP SRs), smoothed, and a histogram for the median */
  hd_time_t e2e;
  int have_e2e;
  uint32_t e2e_hist[CL_E2E_BINS];
  uint64_t e2e_n;
  hd_av_sync_t sync; /* video: lip sync with the same participant's audio (media/av_sync.h) */
  hd_time_t next_sync;
} cl_remote_t;

/* One connection attempt: WebSocket + signaling + two pcs + two UDP sockets.
 * Freed once both UDP handles have closed (libuv closes asynchronously). */
typedef struct cl_session {
  struct hd_client *c;
  hd_ws_client_t *ws;
  hd_rtc_signal_t *sig;
  hd_pc_t *pc[2]; /* 0 publisher, 1 subscriber */
  uv_udp_t udp[2];
  int udp_open, closing;
  int joined, left, publishing, publish_dirty;
  int published_n;    /* tracks in the last publish_offer */
  hd_time_t deadline; /* join must complete by then */
  /* quality data (docs/quality.md): this join attempt and the periodic report */
  hd_time_t started_at, joined_at, first_media_at; /* 0 = not yet */
  int64_t started_unix_ms;
  int join_reported;
  hd_time_t next_quality;
} cl_session_t;

struct hd_client {
  hd_client_config_t cfg;
  char *url, *token, *name, *metadata;
  int redirected; /* the url was just replaced by a draining node's redirect */
  /* url then the cluster's fallback URLs (cfg.fallback_urls), tried in turn after a lost connection */
  char *urls[1 + HD_CLIENT_MAX_FALLBACK_URLS];
  int n_urls, url_idx;
  /* cfg.cluster_url: each join routes first (client_route.c) on a thread
   * of its own (route_thread: not libuv's shared pool of 4, where routes of
   * several clients would queue behind each other and starve the app's own
   * work); urls[0] is then the chosen node, urls[1..n_fixed) the app's
   * fallback_urls, the route's other nodes after them */
  char *cluster;
  int n_fixed;
  int routing; /* a route thread runs and its result is not taken: it writes route*, nothing else does */
  uv_thread_t route_thread;
  int route_thread_live; /* started and not joined yet */
  int route_ready;       /* under mu: route* are written; the loop takes them (on_async) */
  int async_closed;      /* under mu: c->async is closing: the route thread must not send to it */
  hd_client_route_result_t route;
  int route_rc;
  char route_err[512];
  uv_loop_t loop;
  uv_thread_t thread;
  uv_async_t async;
  uv_timer_t tick;
  int thread_started;
  /* mutex: command queue, slot allocation, stats snapshot, state */
  uv_mutex_t mu;
  struct cl_cmd *q_head, *q_tail;
  size_t q_n, q_bytes;
  int stopped; /* no more commands accepted */
  int slot_taken[HD_CLIENT_MAX_LOCAL_TRACKS];
  int slot_channels[HD_CLIENT_MAX_LOCAL_TRACKS]; /* audio tracks: channels; video 0; H.264 push -1 */
  hd_client_stats_t snap;
  hd_client_state_t state_pub;
  /* loop thread */
  hd_client_state_t state;
  int want_joined; /* join requested and not left */
  int stopping;
  hd_time_t stop_deadline;
  cl_session_t *s;
  int attempt;
  hd_time_t reconnect_at, reconnect_since;
  uint64_t reconnects;
  hd_time_t wall_offset;
  hd_dtls_cert_t *cert;
  cl_local_t local[HD_CLIENT_MAX_LOCAL_TRACKS];
  cl_remote_t remote[HD_CLIENT_MAX_REMOTE_TRACKS];
  hd_time_t next_stats, last_stats;
  uint64_t send_rate_bps;
  hd_time_t sig_rtt;            /* from the signaling ping/pong, a fallback RTT */
  hd_pc_stats_t vstats_scratch; /* loop thread: pc stats read while draining video */
};

hd_time_t cl_now(void);

/* client_media.c */
int cl_local_init(hd_client_t *c, int i, const hd_client_publish_t *o);
void cl_local_free(cl_local_t *l);
void cl_local_push_audio(hd_client_t *c, cl_local_t *l, const int16_t *pcm, size_t samples, hd_time_t now);
void cl_local_push_video(hd_client_t *c, cl_local_t *l, const hd_i420_t *pic, hd_time_t now);
void cl_local_push_h264(hd_client_t *c, cl_local_t *l, const uint8_t *au, size_t len, int64_t pts_us,
                        hd_time_t now);
void cl_local_sources(hd_client_t *c, hd_time_t now);
void cl_apply_send_rate(hd_client_t *c, uint64_t bps);
/* The send rate at which every published video track gets its cap (with
 * audio and budget_video's overhead): the estimator probes only below it
 * (hd_pc_set_send_desired); 0 without video. */
uint64_t cl_send_desired(const hd_client_t *c);
/* The Opus rate audio protection plans from: the configured one, capped so
 * that audio and its RED copies stay within a share of the send estimate. */
uint64_t cl_audio_base_bps(const hd_client_t *c);
/* A receiver report on audio track l: its FEC, RED depth and Opus rate
 * follow (rtc/audio_protect.h) from base_bps (cl_audio_base_bps). */
void cl_audio_adapt(cl_local_t *l, double fraction_lost, uint64_t base_bps);
/* Simulcast: the rids of l's layers (lowest first), and publish_layers. */
const char *const *cl_sim_rids(const cl_local_t *l);
void cl_sim_set_active(cl_local_t *l, const char *const *rids, int n);
void cl_sim_split(cl_local_t *l);
void cl_remote_rtp(hd_client_t *c, const hd_pc_rtp_t *r, hd_time_t now);
void cl_remote_tick(hd_client_t *c, hd_time_t now);
void cl_remote_free(cl_remote_t *r);
void cl_remotes_clear(hd_client_t *c);
void cl_stats(hd_client_t *c, hd_time_t now, int emit);
void cl_flush(hd_client_t *c);

#endif
