/* The forwarding node's media plane, sans-IO: WHIP (RFC 9725) publish and WHEP
 * play sessions grouped in rooms per tenant (app), one UDP port demultiplexed
 * by STUN USERNAME (the local ICE ufrag) and then by 5-tuple (RFC 8445 §2.5,
 * RFC 7983), forwarding with per-viewer rewriting and repair, and counters for
 * /metrics. The I/O shell feeds datagrams and time in and drains the tx queue. */
#ifndef HD_SFU_NODE_H
#define HD_SFU_NODE_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/time.h"
#include "overlay/link_bwe.h"
#include "overlay/link_meter.h"
#include "overlay/relay.h"
#include "proto/dtls.h"
#include "proto/token.h"
#include "sfu/quota.h"
#include "sfu/session.h"
#include "sfu/txq.h"
#include "sfu/webhook.h"

typedef struct {
  const char *rtc_ip;    /* address put in our ICE candidate */
  uint16_t rtc_port;     /* UDP port of that candidate */
  uint16_t rtc_tcp_port; /* ICE-TCP passive candidate port (RFC 6544) on rtc_ip; 0 = none */
  size_t max_sessions;   /* cap on concurrent sessions (0 = 1000) */
  /* When several nodes share one session cap (media workers, io/media_workers.h):
   * the count of sessions over all of them, kept by each node on register and
   * destroy (an atomic on session setup, never on the packet path). NULL = this
   * node's own count. */
  atomic_size_t *shared_sessions;
  /* Caps on concurrent sessions (WHIP, WHEP and participants' publisher and
   * subscriber PCs) per tenant (app) and per identity (the token's sub);
   * 0 = no cap of that kind. A refusal is HD_ENOSPC (HTTP 503 + Retry-After,
   * /rtc 503 node_full with retry_after). docs/operations.md "Limits". */
  size_t max_sessions_per_app, max_sessions_per_identity;
  /* The counts behind those caps when several nodes share them (media
   * workers); NULL = this node keeps its own (from the two caps above). */
  hd_quota_t *quota;
  size_t max_viewers;      /* cap on viewers per room (0 = 500) */
  hd_time_t wall_offset;   /* unix_us = monotonic_us + wall_offset (for RTCP NTP) */
  size_t max_participants; /* cap on signaling participants per room (0 = 100) */
  /* How long a room that became empty (no participant, no WHIP/WHEP session)
   * keeps its sid and settings before it is closed (room_finished) and freed;
   * a join or session within that time reuses it. 0 = closed at once. A room
   * created by the admin API may carry its own value (hd_room_opts_t). */
  hd_time_t room_empty_timeout;
  /* In a cluster, how long a join into a room new on this node waits for
   * Redis to name the room's sid (config "cluster.sid_wait_ms"); 0 =
   * HD_ROOM_SID_WAIT. */
  hd_time_t sid_wait;
  /* Bitrate cap (bits/s) sent to every publisher PeerConnection as REMB
   * (draft-alvestrand-rmcat-remb) about once a second; 0 = no REMB is sent
   * (the publisher's own TWCC-driven estimate rules). */
  uint64_t max_publish_bitrate;
  /* Clock skew (seconds) accepted on the exp/nbf of /rtc join tokens. */
  int64_t token_leeway;
  /* Room signaling output (docs/protocol.md "Rooms"): the node hands each text
   * message for a participant's WebSocket to signal_send, and asks the shell to
   * close a connection with signal_close (after a "left" or fatal "error"). */
  void (*signal_send)(void *ud, void *conn, const char *text, size_t len);
  void (*signal_close)(void *ud, void *conn, int code, const char *reason);
  void *signal_ud;
  /* An external TURN server (docs/turn.md) handed to every /rtc participant in
   * "joined" ice_servers, with a credential minted for its identity that is
   * valid turn_ttl seconds (proto/turn_cred.h). The strings must outlive the
   * node. n_turn_urls 0 = no ice_servers. */
  const char *const *turn_urls;
  size_t n_turn_urls;
  const char *turn_secret;
  int64_t turn_ttl;
  /* Room and participant lifecycle events (for webhooks); may be NULL. */
  void (*on_event)(void *ud, const hd_webhook_event_t *ev);
  void *event_ud;
  /* Viewers sealed and sent by another media worker (io/worker_shards.h);
   * NULL = every packet sealed here. When a WHEP or subscriber transport
   * connects, shard_attach gets the room's size (WHEP viewers + participants),
   * the transport's selected address and a second outbound RTP session of
   * the transport: it returns 1 if it
   * took that session (the transport's RTP then goes to shard_send, see
   * hd_peer_set_rtp_out), 0 if not (freed here), negative on failure; *stream
   * is set on >= 0 and given to shard_detach when the session ends. */
  int (*shard_attach)(void *ud, size_t room_size, const struct sockaddr *to, hd_srtp_t *rtp_tx,
                      void **stream);
  int (*shard_send)(void *stream, const uint8_t *pkt, size_t len, const struct sockaddr *to, socklen_t tolen);
  void (*shard_detach)(void *stream);
  void *shard_ud;
} hd_node_config_t;

/* Node-wide counters (monotonic unless noted). Every field, including those
 * of `media`, is a uint64_t: hd_node_metrics_add sums them as an array. */
typedef struct {
  uint64_t sessions_total, sessions_failed;
  uint64_t packets_in, bytes_in, packets_out, bytes_out;
  uint64_t drop_unknown_source, drop_stun_auth, drop_malformed, drop_srtp_auth, drop_srtp_replay,
      drop_not_ready, drop_dtls, drop_txq_full, drop_send_error, drop_closed;
  /* room data over data channels (docs/protocol.md "Data channels") */
  uint64_t dc_msgs_in;      /* messages participants sent on hd-reliable / hd-lossy */
  uint64_t dc_msgs_out;     /* copies delivered on data channels */
  uint64_t dc_msgs_ws;      /* copies delivered over WebSockets (fallback) */
  uint64_t dc_msgs_refused; /* dropped at the sender: grant, size, rate, label, encoding */
  uint64_t dc_msgs_dropped; /* copies lost: a receiver's SCTP send buffer was full */
  /* UDP GSO (io/rtc_udp.c): messages of 2+ datagrams sent with UDP_SEGMENT, and their datagrams */
  uint64_t udp_gso_sends, udp_gso_datagrams;
  hd_session_counters_t media;
} hd_node_stats_t;

typedef struct hd_node hd_node_t;

int hd_node_new(hd_node_t **out, const hd_node_config_t *cfg, hd_dtls_cert_t *cert);
void hd_node_free(hd_node_t *n);
/* Changes the port announced in new answers (after binding an ephemeral port). */
void hd_node_set_rtc_port(hd_node_t *n, uint16_t port);
/* The same for the ICE-TCP passive candidate (0 = none offered). */
void hd_node_set_rtc_tcp_port(hd_node_t *n, uint16_t port);
/* 1 if a session took a valid ICE check from `addr` (its 5-tuple is routed to
 * it): the I/O shell's test that an ICE-TCP connection is in use. */
int hd_node_addr_known(hd_node_t *n, const struct sockaddr *addr);
/* Ends every session (DTLS close_notify queued) and frees the rooms. */
void hd_node_close_all(hd_node_t *n, const char *why);

/* Seconds a client is told to wait (Retry-After, /rtc retry_after) after a
 * capacity refusal: sessions free up as calls end or fail ICE (≤ 30 s). */
#define HD_NODE_RETRY_AFTER_S 5

/* Creates a WHIP (HD_SESSION_PUBLISH) or WHEP (HD_SESSION_PLAY) session in room
 * `room` of tenant `app` from an SDP offer. On success writes the SDP answer and
 * the session id. Errors, with a reason in err:
 *   HD_EPROTO / HD_EUNSUPPORTED  offer malformed or unusable          (HTTP 400)
 *   HD_ENOTFOUND                 WHEP: nothing published in the room  (HTTP 404)
 *   HD_ESTATE                    WHIP: room already has a publisher   (HTTP 409)
 *   HD_ENOSPC                    session or viewer cap reached        (HTTP 503) */
int hd_node_create_session(hd_node_t *n, int kind, const char *app, const char *room, const char *offer,
                           size_t offer_len, hd_time_t now, char *answer, size_t answer_cap,
                           char id[HD_SESSION_ID_LEN + 1], char *err, size_t errcap);
/* The same for the token identity `identity` (counted against
 * max_sessions_per_identity; NULL = not counted per identity). A WHIP publish
 * replaces the room's publisher instead of HD_ESTATE when that publisher has
 * the same identity or has sent nothing (media, consent) for
 * HD_NODE_WHIP_STALE. */
int hd_node_create_session_as(hd_node_t *n, int kind, const char *app, const char *identity, const char *room,
                              const char *offer, size_t offer_len, hd_time_t now, char *answer,
                              size_t answer_cap, char id[HD_SESSION_ID_LEN + 1], char *err, size_t errcap);
#define HD_NODE_WHIP_STALE HD_SEC(5)
/* Ends a session (DELETE on the WHIP/WHEP resource). HD_ENOTFOUND if no such
 * session of that kind in that app/room. */
int hd_node_delete_session(hd_node_t *n, int kind, const char *app, const char *room, const char *id,
                           hd_time_t now);
/* Finds a session of `kind` by id, only within tenant `app` and room `room`
 * (a resource URL never reaches another tenant's session). NULL if none. */
hd_session_t *hd_node_find_session(hd_node_t *n, int kind, const char *app, const char *room, const char *id);
/* Finds a session by id (for tests and diagnostics). */
hd_session_t *hd_node_session(hd_node_t *n, const char *id);
/* 1 if room `room` of `app` has a publisher. */
int hd_node_room_has_publisher(hd_node_t *n, const char *app, const char *room);

void hd_node_feed(hd_node_t *n, uint8_t *buf, size_t len, const struct sockaddr *from, socklen_t fromlen,
                  hd_time_t now);
hd_txq_t *hd_node_txq(hd_node_t *n);
hd_time_t hd_node_next_timeout(hd_node_t *n);
void hd_node_handle_timeout(hd_node_t *n, hd_time_t now);

/* ---- cluster: rooms across nodes (room_remote.c, docs/overlay.md) ---- */
struct hd_cluster_node;
/* Turns the cluster side on: this node's id, the cluster secret the link
 * keys derive from, this process's link epoch and this media worker's index
 * (its link lane: every worker seals with the node's keys, each in a
 * sequence space of its own; overlay/link.h). Once, before any peer.
 * HD_EINVAL / HD_ENOMEM. */
int hd_node_cluster_init(hd_node_t *n, const char *node_id, const uint8_t *secret, size_t secret_len,
                         uint64_t epoch, int worker);
/* The other nodes as the registry shows them now (ids, media addresses,
 * rooms). A node missing from the list keeps its link state (a Redis outage
 * empties the list while the links work on); its rooms' media stop only when
 * its link goes silent. No-op before hd_node_cluster_init. */
int hd_node_cluster_set_peers(hd_node_t *n, const struct hd_cluster_node *peers, int count, hd_time_t now);
/* Per-pair override (cluster/peer_addrs.h, docs/overlay.md "Per-pair
 * addresses"): node id's link datagrams go to addrs[0..count) instead of the
 * addresses its registry entry announces. Call after each
 * hd_node_cluster_set_peers (which puts the announced ones back). Returns the
 * addresses taken (unparsable ones skipped), 0 if id is not a peer yet. */
int hd_node_cluster_peer_addr(hd_node_t *n, const char *id, const char *const *addrs, int count);
/* Makes this worker the node's measuring one (docs/overlay.md "Link
 * measurement"): it probes every peer node every 100 ms (each worker
 * answers probes). Call on one worker, after hd_node_cluster_init. */
void hd_node_cluster_measure(hd_node_t *n);
#define HD_NODE_LINK_SAMPLES 16 /* recent raw samples copied out per link */
#define HD_NODE_LINK_WORKERS                                                                                 \
  16 /* workers counted one by one (a peer reaches at most 16: HD_CLUSTER_MAX_MEDIA) */
typedef struct {
  char peer[64];
  int listed; /* in the last registry read */
  hd_link_meter_stats_t st;
  hd_link_meter_sample_t samples[HD_NODE_LINK_SAMPLES];
  int n_samples;
  /* relaying (issue 16 item 3), this worker's counts for this peer */
  uint64_t relay_sent;      /* relayed datagrams this node sent to it (its own and forwarded) */
  uint64_t relay_forwarded; /* of which forwarded for another node (this node as a relay) */
  uint64_t relay_received;  /* relayed datagrams received from it */
  uint64_t relay_detoured;  /* to be relayed to it while its link was down: sent round it instead */
  uint64_t hop_repaired, hop_lost, hop_resent; /* per-hop repair: holes filled / given up; resent to it */
  uint64_t dedup_dropped;                      /* media from this origin dropped as a duplicate */
  uint64_t dedup_video;                        /* of which video (duplicated only while a route changes) */
  uint64_t relay_rescued; /* sent into its link shortly before it went bad, sent again round it */
  /* its datagrams this node's workers refused (all workers: hd_node_cluster_links_add):
   * replays (seen, too old in the window, an older epoch), not authentic, and
   * authentic but addressed to another worker of this node (or unaddressed
   * from a version-2 peer) */
  uint64_t rx_replay, rx_auth_fail, rx_misaddressed;
  /* bandwidth of the link (overlay/link_bwe.h), all workers' flows summed (hd_node_cluster_links_add) */
  hd_link_bwe_stats_t bw;
  /* the relay counts per media worker (relaying spreads over a relay's
   * workers: docs/overlay.md "Relaying on every worker"); the fields above
   * are the measuring worker's until hd_node_cluster_links_add adds the
   * others' */
  int n_workers; /* entries of by_worker filled (the highest worker index seen + 1) */
  struct {
    uint64_t sent, forwarded, received;
  } by_worker[HD_NODE_LINK_WORKERS];
} hd_node_link_t;
/* The measuring worker's links (0 on any other worker): at most cap. */
int hd_node_cluster_links(hd_node_t *n, hd_node_link_t *out, int cap, hd_time_t now);
/* Adds this (non-measuring) worker's refused-datagram and relay counts and
 * bandwidth flows to the links hd_node_cluster_links gave (matched by peer
 * id), and its relay counts under its own index in by_worker. */
void hd_node_cluster_links_add(hd_node_t *n, hd_node_link_t *links, int count);
/* The route to each destination node (docs/overlay.md "Relaying"): the path
 * (id hashes after this node; n = 1 direct), a disjoint second path (n = 0:
 * none) and whether audio is duplicated on it. A path through a node this
 * worker does not know is replaced by the direct link. */
typedef struct {
  uint64_t dst;
  hd_relay_path_t path, alt;
  int dup_audio;
  int dup_all; /* all media on alt too: path's first link is suspect (overlay/link_meter.h) */
  /* this node's own link to dst is suspect or down (it answered once):
   * relays take a detour round it; when it turns bad, what each worker sent
   * into it from rescue_since on goes again round it (relay.h "rescue") */
  int link_bad;
  hd_time_t rescue_since;
} hd_node_route_t;
void hd_node_cluster_set_routes(hd_node_t *n, const hd_node_route_t *routes, int count, hd_time_t now);

/* ---- rooms: participants over WebSocket signaling (rooms.c) ---- */
typedef struct hd_participant hd_participant_t;

/* Handles one text message received on a /rtc WebSocket. *pp is the
 * connection's participant: NULL until a successful "join" sets it. Tokens
 * are verified with `lookup` at wall-clock time unix_now (seconds). Replies and
 * events go out through cfg.signal_send. Returns 0, or a negative value when
 * the connection is to be closed (the reason was sent first): HD_ENOSPC when
 * the room is full (close 1013, try again later), HD_ENOMEM on an internal
 * failure (1011), anything else for a refused join or a leave. */
int hd_node_rtc_message(hd_node_t *n, void *conn, hd_participant_t **pp, const char *text, size_t len,
                        hd_token_secret_fn lookup, void *lookup_ud, int64_t unix_now, hd_time_t now);
/* The participant's WebSocket closed: it leaves the room. */
void hd_node_rtc_closed(hd_node_t *n, hd_participant_t *p, hd_time_t now);
size_t hd_node_participant_count(const hd_node_t *n);

/* ---- admin (HTTP /admin, roomAdmin tokens), within tenant `app` ---- */
/* JSON text (malloc'd, caller frees) listing the app's rooms. */
char *hd_node_admin_rooms_json(hd_node_t *n, const char *app);
/* JSON text listing a room's participants and their tracks; NULL if no such room. */
char *hd_node_admin_participants_json(hd_node_t *n, const char *app, const char *room);
/* Removes a participant (it gets "left" reason "removed"). 0 or HD_ENOTFOUND. */
int hd_node_admin_remove(hd_node_t *n, const char *app, const char *room, const char *identity,
                         hd_time_t now);
/* Mutes or unmutes a participant's track; forwarding stops while muted. 0 or HD_ENOTFOUND. */
int hd_node_admin_mute(hd_node_t *n, const char *app, const char *room, const char *identity,
                       const char *track_sid, int muted, hd_time_t now);
/* Settings of a room created by the admin API. */
typedef struct {
  hd_time_t empty_timeout; /* < 0 = the node's room_empty_timeout */
  size_t max_participants; /* 0 = the node's max_participants */
  const char *metadata;    /* NULL = "" (at most HD_NODE_ROOM_METADATA_MAX - 1 bytes) */
} hd_room_opts_t;
#define HD_NODE_ROOM_METADATA_MAX 1024

/* Creates room `name` of `app` ahead of any join (POST /admin/rooms): it gets
 * its sid and room_started now, and is closed after its empty timeout if
 * nobody joins. On success *json (malloc'd, caller frees) describes the room
 * like one entry of hd_node_admin_rooms_json. HD_ESTATE if the room exists,
 * HD_EINVAL for metadata too long, HD_ENOMEM. */
int hd_node_admin_create_room(hd_node_t *n, const char *app, const char *name, const hd_room_opts_t *opts,
                              int64_t unix_now, hd_time_t now, char **json);
/* Closes a room at once (whatever its empty timeout): participants get "left"
 * reason "room_closed", WHIP/WHEP sessions end. 0 or HD_ENOTFOUND. */
int hd_node_admin_close_room(hd_node_t *n, const char *app, const char *room, hd_time_t now);

hd_node_stats_t *hd_node_stats(hd_node_t *n);
/* The counts behind the per-app and per-identity caps. */
hd_quota_t *hd_node_quota(hd_node_t *n);
size_t hd_node_session_count(const hd_node_t *n, int kind);
size_t hd_node_room_count(const hd_node_t *n);
/* Calls fn for every room (any app) the node holds; returns how many: the
 * room list of the cluster registry entry (io/cluster_redis.h). */
typedef void (*hd_node_room_fn)(void *ud, const char *app, const char *room);
size_t hd_node_room_names(hd_node_t *n, hd_node_room_fn fn, void *ud);
/* Calls fn for every room whose sid is settled (not waiting for the
 * cluster's: hd_node_room_set_sid), with that sid: what a clustered node
 * re-announces in Redis after an outage (io/cluster_redis.h
 * hd_cluster_redis_reconcile). Returns how many. */
typedef void (*hd_node_room_sid_fn)(void *ud, const char *app, const char *room, const char *sid);
size_t hd_node_room_sids(hd_node_t *n, hd_node_room_sid_fn fn, void *ud);
/* Gives room app/room the sid `sid` (the cluster's, decided by the first node
 * holding it: docs/overlay.md "Room events") if its sid is still `was` (a room
 * closed and made again meanwhile keeps its own), and completes the joins
 * that waited for it (their `joined` names it). Call it with sid == was when
 * the room keeps its own sid (Redis down, or this node was first). 0, or
 * HD_ENOTFOUND. */
int hd_node_room_set_sid(hd_node_t *n, const char *app, const char *room, const char *was, const char *sid,
                         hd_time_t now);
/* How long a join into a room new on a clustered node waits for that answer
 * before it is refused (503 cluster_unavailable, docs/protocol.md), unless
 * hd_node_config_t.sid_wait says otherwise. */
#define HD_ROOM_SID_WAIT HD_SEC(2)
/* Prometheus text exposition of all counters; returns length or HD_ENOSPC. */
int hd_node_metrics_text(hd_node_t *n, char *out, size_t cap);

/* A snapshot of what /metrics shows of a node, so that the nodes of several
 * media workers can be summed into one exposition. */
typedef struct {
  hd_node_stats_t stats;
  size_t n_publish, n_play, n_subscribe, n_participants, n_rooms, n_rooms_empty;
  uint64_t txq_dropped;
} hd_node_metrics_t;
void hd_node_metrics(hd_node_t *n, hd_node_metrics_t *m);
void hd_node_metrics_add(hd_node_metrics_t *sum, const hd_node_metrics_t *m);
int hd_node_metrics_format(const hd_node_metrics_t *m, char *out, size_t cap);

#endif
