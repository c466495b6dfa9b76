/* What the room files share (rooms.c: joins, publishing, subscriptions;
 * room_layers.c: layer selection's room side; room_datachannel.c: data
 * channels; room_admin.c: the admin API and quality samples). Internal to
 * src/sfu: the participant as the room code sees it. */
#ifndef HD_SFU_ROOMS_INTERNAL_H
#define HD_SFU_ROOMS_INTERNAL_H

#include "proto/sdp_offer.h"
#include "proto/token.h"
#include "sfu/conn_quality.h"
#include "sfu/node_internal.h"
#include "sfu/signal.h"

#define MAX_PUB_TRACKS 16
#define MAX_SUBS HD_SESSION_MAX_OUT
#define OUT_CAP (256 * 1024)
#define ANSWER_CAP 65536
#define SPEAKER_INTERVAL HD_MS(500)
#define SPEAKER_THRESHOLD 0.35 /* mean (127 - dBov level) / 127 above which one is speaking */
#define DATA_RATE 50.0         /* data messages per second per participant ... */
#define DATA_BURST 100.0       /* ... with bursts of this many (docs/protocol.md "Limits") */
#define MSG_RATE 100.0         /* any messages per second per connection ... */
#define MSG_BURST 200.0
/* Data channels (docs/protocol.md "Data channels"): the labels the node
 * forwards, and size caps matching the WebSocket data payload (binary goes
 * out as base64, which must fit the same 15 KiB payload). */
#define DC_LABEL_RELIABLE "hd-reliable"
#define DC_LABEL_LOSSY "hd-lossy"
#define DC_MAX_TEXT HD_SIGNAL_MAX_PAYLOAD
#define DC_MAX_BINARY (HD_SIGNAL_MAX_PAYLOAD / 4 * 3)
enum { DC_RELIABLE = 0, DC_LOSSY = 1 };

/* A simulcast layer nobody needs is paused at the publisher (publish_layers)
 * once it has been unneeded this long; a needed one resumes at once. */
#define LAYER_IDLE_PAUSE HD_SEC(3)
/* Quality-indicator evaluation period (connection_quality). */
#define QUALITY_INTERVAL HD_SEC(1)

typedef struct {
  char sid[24], cid[HD_SIGNAL_MAX_SID + 1], mid[32];
  int kind, source, muted, width, height;
  int in_idx; /* track of the publisher session */
  /* simulcast layers paused at the publisher, as bits over the head's
   * layers[] (a=simulcast order), and since when each has been unneeded */
  unsigned layers_off;
  hd_time_t unneeded_since[HD_SESSION_MAX_LAYERS];
  uint64_t rx_expected, rx_received; /* at the last quality evaluation */
} pub_track_t;

typedef struct {
  struct hd_participant *pub;
  char track_sid[24];
  char mid[32];
  uint32_t ssrc, rtx_ssrc;
  uint32_t fec_ssrc; /* video to a participant that joined with "flexfec": our FlexFEC SSRC, else 0 */
  /* track_settings from the subscriber (defaults: visible, any size, not pinned) */
  int hidden, tile_w, tile_h, pinned;
  int lim_spatial, lim_temporal; /* track_settings max_*_layer + 1; 0 = no cap */
  /* last stream_state told: reason (HD_SIGNAL_PAUSE_*) and in[] index of the layer sent (-1 none) */
  int told_reason, told_layer;
  int refused_told; /* the viewer's answer refused this track and its publisher was told (track_refused) */
} sub_t;

struct hd_participant {
  char sid[24], identity[HD_SIGNAL_MAX_IDENTITY + 1], name[HD_SIGNAL_MAX_NAME + 1];
  char metadata[HD_SIGNAL_MAX_METADATA + 1];
  hd_token_claims_t claims;
  void *conn;
  hd_room_t *room;
  struct hd_participant *next;
  int64_t joined_at;
  int auto_subscribe, leaving;
  int flexfec; /* join's "flexfec": video subscriptions are offered FlexFEC (sfu/session_fec.h) */
  int whip;    /* stands for a WHIP publisher (no WebSocket; pub_sess is the WHIP session) */
  hd_session_t *pub_sess, *sub_sess;
  hd_sdp_offerer_t *offerer;
  char sub_ufrag[24], sub_pwd[40];
  pub_track_t tracks[MAX_PUB_TRACKS];
  int n_tracks;
  sub_t subs[MAX_SUBS];
  int n_subs;
  int negotiating;
  double data_tokens, msg_tokens;
  hd_time_t data_last, msg_last, last_429;
  double level;
  int speaking; /* among the active speakers (a higher priority for its video) */
  hd_cq_t quality;
  int quality_told;    /* its grade was sent at least once */
  int quality_has_all; /* it was sent everyone's grade (joiners get the full list once) */
  hd_time_t next_quality;
  int dc[2];             /* SCTP stream of our hd-reliable / hd-lossy channel on pub_sess, -1 = none */
  hd_time_t last_dc_err; /* data channel errors go out over the WebSocket at most once a second */
  uint64_t dc_dropped;   /* data channel messages not delivered to us (send buffer full) */
  /* cluster (sfu/room_remote.c, docs/overlay.md): the SDP offer of our
   * publisher PC (local participants), what other nodes build our stand-in
   * from; remote != 0 for the stand-in of a participant on another node (the
   * hash of that node's id): no connection, its publisher session is fed by
   * the link, in[] indexes of that node mapped to ours by remote_in */
  char *pub_offer;
  uint64_t remote;
  uint32_t remote_offer_hash;
  int8_t remote_in[HD_SESSION_MAX_TRACKS];
  /* when media of that node's in[] index i last came over the link (a
   * simulcast layer not crossing is kept live from that node's LAYERS reports) */
  hd_time_t remote_rx_at[HD_SESSION_MAX_TRACKS];
  void *remote_link_ud;
  /* a join waiting for the room's cluster sid (hd_room_t.joining): not in
   * the room yet; join_id is its request id, join_at when it came */
  int join_pending;
  char join_id[HD_SIGNAL_MAX_ID + 1];
  hd_time_t join_at;
};

/* Shared helpers (rooms.c). */
void rooms_emit(hd_node_t *n, hd_participant_t *p, const char *text, int len);
void rooms_send_error(hd_node_t *n, void *conn, const char *id, hd_signal_errcode_t code, const char *msg);
void rooms_broadcast(hd_node_t *n, hd_room_t *r, const hd_participant_t *except, const char *text, int len);
const char *rooms_track_codec(const hd_participant_t *p, const pub_track_t *t);
pub_track_t *rooms_track_by_sid(hd_participant_t *p, const char *sid);
sub_t *rooms_sub_find(hd_participant_t *q, const char *track_sid);
void rooms_participant_remove(hd_node_t *n, hd_participant_t *p, int left_reason, int close_conn);
void rooms_set_muted(hd_node_t *n, hd_participant_t *p, pub_track_t *t, int muted, int tell_owner);
/* The data message rate limit (docs/protocol.md "Limits"): 1 when p may send one now. */
int rooms_data_rate_ok(hd_participant_t *p, hd_time_t now);

/* Cluster (room_remote.c): r's state changed (a participant, track, mute,
 * metadata): the other nodes holding r are told at the next tick. Cheap;
 * nothing without a cluster. */
void room_remote_changed(hd_node_t *n, hd_room_t *r);
/* rooms.c's side of a remote participant p (p->remote set, p->room set):
 * it joins r (participant_joined to the local participants); its tracks
 * [0, nt) with added[i] set were published (track_published, auto
 * subscriptions); its track i was unpublished (and removed from p->tracks);
 * its name or metadata changed. It leaves with rooms_participant_remove. */
void rooms_remote_join(hd_node_t *n, hd_participant_t *p);
void rooms_remote_tracks_added(hd_node_t *n, hd_participant_t *p, const int *added, int nt);
void rooms_remote_track_removed(hd_node_t *n, hd_participant_t *p, int i);
void rooms_remote_metadata(hd_node_t *n, hd_participant_t *p);
/* Removes the stand-ins (remote participants) of `identity` in r but keep:
 * a newer connection of that identity joined (room_remote.c). */
/* An admin action on remote participant p goes to its node, which acts as
 * for its own admin API: remove (track_sid NULL) or mute track_sid. 0 (sent),
 * HD_ENOTFOUND (its node unknown), HD_ENOMEM. */
int room_remote_admin(hd_node_t *n, hd_participant_t *p, const char *track_sid, int muted);
void room_remote_drop_identity(hd_node_t *n, hd_room_t *r, const char *identity,
                               const hd_participant_t *keep);
/* Data messages across nodes (room_remote.c): a local participant's data
 * message `text` (the `data` signaling message as receivers get it; dc = -1
 * over WebSocket, else DC_RELIABLE/DC_LOSSY for a data channel message, which
 * receivers get on their channel of that kind when they have one) goes to the
 * room's other nodes, for their participants named in to[0..n_to) (all when
 * n_to is 0). */
void room_remote_data(hd_node_t *n, hd_room_t *r, int dc, const char *const *to, size_t n_to,
                      const char *text, int len);
/* 1 when another node of r has subscribers for local publisher p's track
 * whose head is in[] index `head` (its simulcast layers must keep flowing
 * there: the publisher does not pause them for lack of local tiles). */
int room_remote_track_wanted(const hd_room_t *r, const hd_participant_t *p, int head, hd_time_t now);
/* Delivers a data channel message (text for q's channel of kind dc, or its
 * WebSocket) to every local participant but `except` accepted by want(ud,
 * q) (NULL = all) (room_datachannel.c). */
void rooms_dc_deliver(hd_node_t *n, hd_room_t *r, const hd_participant_t *except, int dc, const char *buf,
                      int blen, int (*want)(void *ud, const hd_participant_t *q), void *ud);

/* Layer selection, room side (room_layers.c). */
void rooms_layers_tick(hd_node_t *n, hd_room_t *r, hd_time_t now);
void rooms_handle_track_settings(hd_node_t *n, hd_participant_t *p, const hd_signal_msg_t *m);

/* Data channels (room_datachannel.c): rooms_on_sctp is in node_internal.h. */

#endif
