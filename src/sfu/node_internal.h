/* Internals of the forwarding node shared by node.c (sessions, demux, WHIP/WHEP)
 * and rooms.c (participants and WebSocket signaling). Not a public header. */
#ifndef HD_SFU_NODE_INTERNAL_H
#define HD_SFU_NODE_INTERNAL_H
#include "base/map.h"
#include "sfu/node.h"
#include "sfu/session.h"

struct hd_participant;

typedef struct hd_room {
  char app[64];
  char name[128];
  char sid[24];
  hd_session_t *publisher;      /* WHIP publisher */
  char publisher_identity[128]; /* its token's identity ("" = unknown) */
  hd_time_t publisher_last_rx;  /* last packet that passed its checks (STUN, DTLS, SRTP) */
  hd_session_t *viewers;        /* every other session (WHEP viewers, participants' PCs), via next_in_room */
  size_t n_viewers;             /* WHEP viewers only (their cap) */
  struct hd_participant *participants; /* signaling participants, via next */
  size_t n_participants;
  hd_time_t created;
  int64_t created_unix;
  hd_time_t next_speakers;
  char speakers_key[256]; /* last active-speaker set sent, to send only changes */
  /* Empty-room lifetime: while nobody is in the room, close_at is when it is
   * closed (room_finished) and freed; HD_TIME_NEVER while in use. */
  hd_time_t empty_timeout, close_at;
  int closing;             /* admin close: freed as soon as it is empty, whatever its timeout */
  int pinned;              /* > 0 while code walks the room: it is not freed (node_room_unpin decides) */
  size_t max_participants; /* 0 = the node's cap */
  char metadata[HD_NODE_ROOM_METADATA_MAX];
  struct room_cluster *cl; /* the other nodes holding this room (room_remote.c); NULL alone */
  /* In a cluster a room new on this node has its own sid until Redis gives
   * the cluster's (hd_node_room_set_sid): joins wait for it in `joining`
   * (rooms.c), at most until sid_wait_until (HD_ROOM_SID_WAIT). */
  int sid_pending;
  hd_time_t sid_wait_until;
  struct hd_participant *joining;
  struct hd_room *next;
} hd_room_t;

struct hd_node {
  hd_node_config_t cfg;
  char rtc_ip[64];
  hd_dtls_cert_t *cert;
  hd_txq_t txq;
  hd_map_t by_id, by_ufrag, by_addr;
  hd_room_t *rooms;
  size_t n_rooms, n_publish, n_play, n_subscribe, n_participants;
  hd_node_stats_t stats;
  hd_time_t now; /* time of the event being handled (for code reached without one) */
  int closing;   /* hd_node_close_all: empty rooms are freed at once */
  hd_quota_t *quota;
  int own_quota;           /* created here (no shared one in cfg) */
  struct node_cluster *cl; /* the cluster's links (room_remote.c); NULL alone */
};

size_t node_addr_key(const struct sockaddr *sa, uint8_t key[20]);
hd_room_t *node_room_find(hd_node_t *n, const char *app, const char *name);
hd_room_t *node_room_get(hd_node_t *n, const char *app, const char *name, hd_time_t now);
/* Called when the room may have become empty: frees it (room_finished) if
 * its empty timeout is 0 or it is closing, else arms its close_at timer. */
void node_room_maybe_delete(hd_node_t *n, hd_room_t *r);
/* While pinned the room is not freed even if it empties (destroying a WHIP
 * session also removes its stand-in participant); unpinning calls
 * node_room_maybe_delete, so afterwards r may be gone. */
void node_room_pin(hd_room_t *r);
void node_room_unpin(hd_node_t *n, hd_room_t *r);
/* The room is used again (a participant joined, a session registered): its
 * empty timer stops. */
void node_room_in_use(hd_room_t *r);
void node_session_destroy(hd_node_t *n, hd_session_t *s, const char *why);
/* A new session with our ICE credentials and, if neg is given, the agreed
 * media and the peer's transport (else ICE only until hd_peer_set_remote).
 * want_ssrc/want_rtx: the SSRCs a WHEP answer promised (NULL otherwise).
 * Not yet registered; NULL with *rc on failure. */
hd_session_t *node_session_new(hd_node_t *n, int kind, const char *ufrag, const char *pwd,
                               const hd_sdp_negotiated_t *neg, const uint32_t want_ssrc[2], uint32_t want_rtx,
                               hd_time_t now, int *rc);
/* Frees a session that was never registered. */
void node_session_discard(hd_session_t *s);
/* Sessions of every kind, for the node's session cap. */
size_t node_session_total(const hd_node_t *n);
/* Registers a session in the id and ufrag maps and links it into room r (as
 * the room's publisher for a WHIP session; set s->owner first for a
 * participant's), counting it against the quotas of (r->app, identity)
 * (identity NULL = not counted per identity). HD_ENOSPC when a cap is
 * reached: node_capacity_error then says which. */
int node_session_register(hd_node_t *n, hd_session_t *s, hd_room_t *r, const char *identity);
/* 0 if one more session for (app, identity) fits under the node, tenant and
 * identity caps, else HD_ENOSPC with the reason in err (for the 503). */
int node_capacity_check(hd_node_t *n, const char *app, const char *identity, char *err, size_t errcap);

/* Reports a room lifecycle event to cfg.on_event (webhooks). */
void node_fire_room_event(hd_node_t *n, int type, const hd_room_t *r);

/* Cluster (room_remote.c; docs/overlay.md "The link protocol"). */
/* A link datagram (hd_link_is_link) from `from`. */
void room_remote_feed(hd_node_t *n, uint8_t *buf, size_t len, const struct sockaddr *from, hd_time_t now);
/* A local publisher's packet (normalised, h as hd_session_publisher_rtp
 * parsed it) goes to every node that asked for its track. */
void room_remote_forward(hd_node_t *n, hd_session_t *pub, int in_idx, const hd_rtp_hdr_t *h, hd_time_t now);
hd_time_t room_remote_next_timeout(hd_node_t *n, hd_room_t *r);
/* Link upkeep of room r (pinned by the caller): state, keepalives, wants, dead nodes. */
void room_remote_tick(hd_node_t *n, hd_room_t *r, hd_time_t now);
/* Node-wide: the link meters' probes (measuring worker only). */
hd_time_t room_remote_node_next_timeout(hd_node_t *n);
void room_remote_node_tick(hd_node_t *n, hd_time_t now);
void room_remote_free(hd_room_t *r);
void node_cluster_free(hd_node_t *n);

/* rooms.c hooks called by node.c */
void rooms_on_session_destroyed(hd_node_t *n, hd_session_t *s);
void rooms_on_connected(hd_node_t *n, hd_session_t *s, hd_time_t now);
/* Drains the data channel events of a participant's session (s->peer.sctp). */
void rooms_on_sctp(hd_node_t *n, hd_session_t *s, hd_time_t now);
/* The room's cluster sid is settled (named: Redis answered, the sid is
 * r->sid now) or the wait for it ran out: the joins waiting for it complete,
 * or are refused with a clear error. */
void rooms_sid_settled(hd_node_t *n, hd_room_t *r, int named, hd_time_t now);
hd_time_t rooms_next_timeout(hd_node_t *n, hd_room_t *r);
void rooms_handle_timeout(hd_node_t *n, hd_room_t *r, hd_time_t now);
void rooms_close_all(hd_node_t *n, hd_room_t *r);
/* A WHIP session s became room r's publisher: a stand-in participant (identity
 * = the token's, or "whip-<session id>") with its tracks joins the room, so
 * /rtc participants see and receive it; it leaves when s ends. */
void rooms_on_whip_publish(hd_node_t *n, hd_room_t *r, hd_session_t *s, const char *identity,
                           const char *offer, size_t offer_len, hd_time_t now);
/* What a WHEP viewer plays when the room has no WHIP publisher: the publisher
 * session of the participant who joined first among those publishing a
 * camera or microphone; NULL if none. */
hd_session_t *rooms_play_source(hd_room_t *r);

#endif
