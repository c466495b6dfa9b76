/* Client side of the rooms signaling protocol (/rtc, JSON text over a
 * WebSocket; docs/protocol.md "Rooms"), sans-IO: it produces the texts to send
 * and consumes the texts received, keeps the room state the client needs
 * (own sid, participants and their tracks, which subscriber m-section carries
 * which track) and runs the ping/pong keepalive on the caller's clock.
 *
 * Optionally it drives two client PeerConnections (client/pc.h) itself: the
 * publisher pc (hd_rtc_signal_publish: our offer -> publish_offer,
 * publish_answer -> hd_pc_set_remote_answer) and the subscriber pc
 * (subscriber_offer -> hd_pc_answer_offer -> subscriber_answer). Without pcs the
 * application does the SDP itself from the events.
 *
 * Events are queued (hd_rtc_signal_poll_event); strings in an event stay valid
 * until the next poll_event call or hd_rtc_signal_free. Parsing is lenient in
 * the way the protocol asks of clients: unknown members and unknown message
 * types are ignored (a newer node may send more), malformed JSON is counted. */
#ifndef HD_CLIENT_RTC_SIGNAL_H
#define HD_CLIENT_RTC_SIGNAL_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"
#include "client/pc.h"

/* Participants tracked; beyond it one that publishes replaces one that does
 * not, and the rest are not stored. */
#define HD_RTC_SIGNAL_MAX_PARTICIPANTS 256
#define HD_RTC_SIGNAL_MAX_TRACKS 16      /* per participant (protocol limit) */
#define HD_RTC_SIGNAL_MAX_SUB_TRACKS 100 /* subscriber m-sections (protocol limit) */
#define HD_RTC_SIGNAL_SID_MAX 64
#define HD_RTC_SIGNAL_IDENTITY_MAX 128
#define HD_RTC_SIGNAL_OUT_MAX 64         /* outgoing texts queued */
#define HD_RTC_SIGNAL_EV_MAX 256         /* events queued; overflow drops the newest (counted) */
#define HD_RTC_SIGNAL_MSG_MAX (1u << 20) /* largest text accepted from the node */

enum { /* client state */
       HD_RTC_SIGNAL_IDLE = 0,
       HD_RTC_SIGNAL_JOINING = 1,
       HD_RTC_SIGNAL_JOINED = 2,
       HD_RTC_SIGNAL_LEFT = 3 /* left, removed, failed join, or timed out */
};

enum {
  HD_RTC_SIGNAL_EV_JOINED = 1,          /* own_sid, room; participants already in the state */
  HD_RTC_SIGNAL_EV_PARTICIPANT_JOINED,  /* participant_sid, identity */
  HD_RTC_SIGNAL_EV_PARTICIPANT_LEFT,    /* participant_sid, identity */
  HD_RTC_SIGNAL_EV_PARTICIPANT_UPDATED, /* participant_sid, identity */
  HD_RTC_SIGNAL_EV_TRACK_PUBLISHED,     /* participant_sid, track_sid, kind, muted */
  HD_RTC_SIGNAL_EV_TRACK_UNPUBLISHED,   /* participant_sid, track_sid */
  HD_RTC_SIGNAL_EV_TRACK_MUTED,         /* participant_sid, track_sid, muted */
  HD_RTC_SIGNAL_EV_PUBLISH_ANSWER,      /* sdp; code = result of hd_pc_set_remote_answer (0 without a pc) */
  HD_RTC_SIGNAL_EV_SUBSCRIBER_OFFER, /* sdp; code = result of hd_pc_answer_offer (>= 0 ok); see sub tracks */
  HD_RTC_SIGNAL_EV_DATA,             /* identity (from), participant_sid (from_sid), payload */
  HD_RTC_SIGNAL_EV_PONG,             /* rtt */
  HD_RTC_SIGNAL_EV_ERROR,            /* code, reason, message, id */
  HD_RTC_SIGNAL_EV_LEFT,             /* reason, message: the node ended the session */
  HD_RTC_SIGNAL_EV_TIMEOUT,          /* nothing heard for ping_timeout: consider the connection dead */
  HD_RTC_SIGNAL_EV_PUBLISH_LAYERS,   /* track_sid (ours), rids/n_rids: the simulcast layers to send */
  HD_RTC_SIGNAL_EV_TRACK_REFUSED, /* track_sid (ours), reason = codec, identity: a viewer cannot decode it */
};

typedef struct {
  int type;
  const char *participant_sid, *identity, *track_sid;
  int kind; /* HD_PC_AUDIO / HD_PC_VIDEO */
  int muted;
  const char *sdp;
  const char *payload;
  int code;                           /* ERROR: 400...; PUBLISH_ANSWER / SUBSCRIBER_OFFER: pc result */
  const char *reason, *message, *id;  /* ERROR / LEFT ("" when absent) */
  const char *redirect;               /* ERROR / LEFT node_draining: the node to go to ("" = none) */
  hd_time_t rtt;                      /* PONG */
  const char *rids[HD_PC_MAX_LAYERS]; /* PUBLISH_LAYERS: active_rids (others are paused) */
  int n_rids;
} hd_rtc_signal_event_t;

typedef struct {
  char sid[HD_RTC_SIGNAL_SID_MAX];
  int kind; /* HD_PC_AUDIO / HD_PC_VIDEO */
  int muted;
  char source[16];
} hd_rtc_signal_track_t;

typedef struct {
  char sid[HD_RTC_SIGNAL_SID_MAX];
  char identity[HD_RTC_SIGNAL_IDENTITY_MAX];
  char name[HD_RTC_SIGNAL_IDENTITY_MAX];
  int n_tracks;
  hd_rtc_signal_track_t tracks[HD_RTC_SIGNAL_MAX_TRACKS];
} hd_rtc_signal_participant_t;

/* Which remote track a subscriber m-section carries. */
typedef struct {
  char mid[HD_PC_MID_MAX];
  char track_sid[HD_RTC_SIGNAL_SID_MAX];
  char participant_sid[HD_RTC_SIGNAL_SID_MAX];
  int told; /* video: track_settings sent for it (once per subscription) */
} hd_rtc_signal_sub_track_t;

/* A track we publish. */
typedef struct {
  const char *cid;    /* our id, unique */
  int track;          /* transceiver index in the publisher pc (its mid is sent) */
  const char *source; /* "camera", "microphone", "screen", "screen_audio" */
  int muted;
} hd_rtc_signal_pub_t;

typedef struct {
  const char *token; /* JWT (copied) */
  int no_auto_subscribe;
  const char *name, *metadata; /* NULL = the token's */
  hd_pc_t *pub_pc, *sub_pc;    /* borrowed, may be NULL (see file comment) */
  /* The size the application shows remote video at, in pixels (0 x 0 = not
   * given: the node sends the top layer). With a sub pc, every newly
   * subscribed video track is announced with track_settings (visible, this
   * size) once its subscriber offer is answered, as web/rtc.js does for each
   * tile: the node then sends the smallest simulcast layer covering it. */
  int view_width, view_height;
} hd_rtc_signal_config_t;

typedef struct hd_rtc_signal hd_rtc_signal_t;

/* Creates the client. Returns 0, HD_EINVAL (no token / too long), HD_ENOMEM. */
int hd_rtc_signal_new(hd_rtc_signal_t **out, const hd_rtc_signal_config_t *cfg);
void hd_rtc_signal_free(hd_rtc_signal_t *s);

/* Queues "join" (the WebSocket just opened). HD_ESTATE unless IDLE. */
int hd_rtc_signal_join(hd_rtc_signal_t *s, hd_time_t now);

/* Consumes one received text. Returns 0, HD_EPROTO (not a JSON object with a
 * string "type"; counted and dropped), HD_ETRUNC-free. Events are queued. */
int hd_rtc_signal_feed(hd_rtc_signal_t *s, const char *text, size_t len, hd_time_t now);

/* Takes the next text to send (NUL-terminated) into out. Returns its length, 0
 * when none, HD_ENOSPC if cap is too small (it stays queued). */
int hd_rtc_signal_poll(hd_rtc_signal_t *s, char *out, size_t cap);
/* Length of the next text to send (0 if none), to size a buffer. */
size_t hd_rtc_signal_peek_len(const hd_rtc_signal_t *s);

/* Takes the next event: 1 with *ev filled, 0 when none. */
int hd_rtc_signal_poll_event(hd_rtc_signal_t *s, hd_rtc_signal_event_t *ev);

/* Keepalive: ping every ping_interval (from "joined"), TIMEOUT event after
 * ping_timeout without any message from the node. */
hd_time_t hd_rtc_signal_next_timeout(const hd_rtc_signal_t *s);
void hd_rtc_signal_handle_timeout(hd_rtc_signal_t *s, hd_time_t now);

/* track_settings (docs/protocol.md "Layer selection") for remote tracks:
 * visible 0 = send nothing, width/height = tile in pixels (0 = not given),
 * pinned = bandwidth goes to it first. HD_EINVAL for no/too many sids. */
int hd_rtc_signal_track_settings(hd_rtc_signal_t *s, const char *const *track_sids, size_t n, int visible,
                                 int width, int height, int pinned);
/* The same with caps: the highest simulcast layer (0 = lowest .. 2) and VP8
 * temporal layer (0..2) the node may send; -1 = no cap. HD_EINVAL outside. */
int hd_rtc_signal_track_settings_max(hd_rtc_signal_t *s, const char *const *track_sids, size_t n, int visible,
                                     int width, int height, int pinned, int max_spatial, int max_temporal);

/* ---- requests (JOINED only: HD_ESTATE otherwise; HD_ENOSPC when the out queue is full) ---- */

/* Publishes `tracks` (the full set after this offer) with an offer made by the
 * publisher pc (needs cfg.pub_pc and its transceivers). HD_ESTATE also while a
 * publish is outstanding. */
int hd_rtc_signal_publish(hd_rtc_signal_t *s, const hd_rtc_signal_pub_t *tracks, size_t n, hd_time_t now);
/* Sends a publish_offer with the caller's own SDP (no pub pc). mids[i] per track. */
int hd_rtc_signal_publish_sdp(hd_rtc_signal_t *s, const char *sdp, const hd_rtc_signal_pub_t *tracks,
                              const char *const *mids, size_t n);
/* Sends the answer to the latest subscriber offer (no sub pc). */
int hd_rtc_signal_subscriber_answer(hd_rtc_signal_t *s, const char *sdp);
/* subscribe != 0: "subscribe", else "unsubscribe". */
int hd_rtc_signal_subscribe(hd_rtc_signal_t *s, int subscribe, const char *const *track_sids, size_t n);
int hd_rtc_signal_mute(hd_rtc_signal_t *s, const char *track_sid, int muted);
/* payload to everyone else (to == NULL / n_to 0) or to identities. */
int hd_rtc_signal_send_data(hd_rtc_signal_t *s, const char *payload, const char *const *to, size_t n_to);
/* Queues "leave"; the state becomes LEFT when "left" arrives. */
int hd_rtc_signal_leave(hd_rtc_signal_t *s);
/* Queues a message the caller built (a JSON object, e.g. quality_report /
 * quality_join: docs/quality.md) while joined. HD_ESTATE before "joined",
 * HD_EINVAL if text is not a JSON object with a "type", HD_ENOSPC when the
 * outgoing queue is full. */
int hd_rtc_signal_send_text(hd_rtc_signal_t *s, const char *text);

/* ---- state ---- */

int hd_rtc_signal_state(const hd_rtc_signal_t *s);
const char *hd_rtc_signal_own_sid(const hd_rtc_signal_t *s); /* "" before joined */
const char *hd_rtc_signal_room(const hd_rtc_signal_t *s);    /* room name, "" before joined */
/* Participants other than us (not hidden). */
int hd_rtc_signal_participant_count(const hd_rtc_signal_t *s);
const hd_rtc_signal_participant_t *hd_rtc_signal_participant(const hd_rtc_signal_t *s, int i);
const hd_rtc_signal_participant_t *hd_rtc_signal_find_participant(const hd_rtc_signal_t *s, const char *sid);
/* The remote track on subscriber m-section `mid` (NULL if none). */
const hd_rtc_signal_sub_track_t *hd_rtc_signal_sub_track(const hd_rtc_signal_t *s, const char *mid);
/* Our published track's sid for cid (from publish_answer), NULL if not known. */
const char *hd_rtc_signal_pub_sid(const hd_rtc_signal_t *s, const char *cid);
/* Texts that could not be parsed, events dropped by the queue cap. */
uint64_t hd_rtc_signal_bad_messages(const hd_rtc_signal_t *s);
uint64_t hd_rtc_signal_dropped_events(const hd_rtc_signal_t *s);

#endif
