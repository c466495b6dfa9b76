/* Room signaling messages: the JSON text messages of Hudong's WebSocket
 * signaling protocol at /rtc (docs/protocol.md, "Rooms: WebSocket signaling").
 * JSON is RFC 8259 (UTF-8 only); the transport is a WebSocket (RFC 6455) text
 * frame per message.
 *
 * This is the codec only: typed structs for every message, a strict parser and
 * builders. Sans-IO; no sockets, no room logic, no clocks.
 *
 * Every message is a JSON object with "type" and an optional client-chosen "id"
 * (string, 1..HD_SIGNAL_MAX_ID bytes) that the node echoes in its direct reply.
 * Unknown members are ignored (forward compatibility); an unknown "type", a
 * missing required member, a member of the wrong JSON type, a value outside its
 * enum or a string/array over its cap is an error (400 bad_request) whose
 * message names the member.
 *
 * Strings in a parsed message point into storage owned by the message (free it
 * with hd_signal_msg_free). For building, the caller fills the same structs with
 * its own NUL-terminated strings and arrays; nothing is retained. Lengths are
 * UTF-8 bytes after JSON unescaping, without the NUL. */
#ifndef HD_SFU_SIGNAL_H
#define HD_SFU_SIGNAL_H
#include <stddef.h>
#include <stdint.h>

#define HD_SIGNAL_PROTOCOL_VERSION 1

/* ---- caps (bytes unless said otherwise) ---- */
#define HD_SIGNAL_MAX_MSG 65536           /* a client->node message, whole text */
#define HD_SIGNAL_MAX_NODE_MSG (1u << 20) /* a node->client message (joined of a big room) */
#define HD_SIGNAL_MAX_ID 64               /* "id" */
#define HD_SIGNAL_MAX_TOKEN 4096          /* join.token (= HD_TOKEN_MAX) */
#define HD_SIGNAL_MAX_SID 63              /* participant/track/room sid, cid, track_sid */
#define HD_SIGNAL_MAX_MID 31              /* SDP a=mid value */
#define HD_SIGNAL_MAX_IDENTITY 127        /* participant identity (token "sub") */
#define HD_SIGNAL_MAX_NAME 127            /* display name */
#define HD_SIGNAL_MAX_ROOM 127            /* room name */
#define HD_SIGNAL_MAX_METADATA 4096       /* participant metadata */
#define HD_SIGNAL_MAX_PAYLOAD 15360       /* data payload (15 KiB) */
#define HD_SIGNAL_MAX_CODEC 31            /* codec name, e.g. "VP8" */
#define HD_SIGNAL_MAX_TEXT 255            /* error message, left message */
#define HD_SIGNAL_MAX_URL 255             /* ICE server URL, username, credential */
#define HD_SIGNAL_MAX_DIMENSION 16384     /* track width/height */
/* array caps (entries) */
#define HD_SIGNAL_MAX_TRACKS 16                   /* tracks of one participant / one publish_offer */
#define HD_SIGNAL_MAX_PARTICIPANTS 1000           /* joined.participants */
#define HD_SIGNAL_MAX_LAYERS 3                    /* publish_layers.active_rids */
#define HD_SIGNAL_MAX_RID 16                      /* RFC 8851 rid in stream_state / publish_layers */
#define HD_SIGNAL_MAX_TRACK_SIDS 100              /* subscribe/unsubscribe list; subscriber_offer.tracks */
#define HD_SIGNAL_MAX_TO 64                       /* data.to recipients */
#define HD_SIGNAL_MAX_SPEAKERS 32                 /* active_speakers.speakers */
#define HD_SIGNAL_MAX_ICE_SERVERS 8               /* joined.ice_servers */
#define HD_SIGNAL_MAX_URLS 8                      /* urls of one ICE server */
#define HD_SIGNAL_MAX_T INT64_C(9007199254740991) /* ping/pong "t": 0..2^53-1 */

/* Who sent the text being parsed: decides which "type"s exist ("data" differs
 * by direction) and the size cap (HD_SIGNAL_MAX_MSG vs HD_SIGNAL_MAX_NODE_MSG). */
typedef enum { HD_SIGNAL_FROM_CLIENT = 1, HD_SIGNAL_FROM_NODE = 2 } hd_signal_dir_t;

typedef enum {
  HD_SIGNAL_NONE = 0,
  /* client -> node */
  HD_SIGNAL_JOIN,              /* "join" */
  HD_SIGNAL_PUBLISH_OFFER,     /* "publish_offer" */
  HD_SIGNAL_SUBSCRIBER_ANSWER, /* "subscriber_answer" */
  HD_SIGNAL_SUBSCRIBE,         /* "subscribe" */
  HD_SIGNAL_UNSUBSCRIBE,       /* "unsubscribe" */
  HD_SIGNAL_MUTE,              /* "mute" */
  HD_SIGNAL_UPDATE_METADATA,   /* "update_metadata" */
  HD_SIGNAL_DATA,              /* "data" (client -> node) */
  HD_SIGNAL_LEAVE,             /* "leave" */
  HD_SIGNAL_PING,              /* "ping" */
  HD_SIGNAL_TRACK_SETTINGS,    /* "track_settings" */
  /* node -> client */
  HD_SIGNAL_JOINED,              /* "joined" */
  HD_SIGNAL_PUBLISH_ANSWER,      /* "publish_answer" */
  HD_SIGNAL_SUBSCRIBER_OFFER,    /* "subscriber_offer" */
  HD_SIGNAL_PARTICIPANT_JOINED,  /* "participant_joined" */
  HD_SIGNAL_PARTICIPANT_LEFT,    /* "participant_left" */
  HD_SIGNAL_PARTICIPANT_UPDATED, /* "participant_updated" */
  HD_SIGNAL_TRACK_PUBLISHED,     /* "track_published" */
  HD_SIGNAL_TRACK_UNPUBLISHED,   /* "track_unpublished" */
  HD_SIGNAL_TRACK_MUTED,         /* "track_muted" */
  HD_SIGNAL_ACTIVE_SPEAKERS,     /* "active_speakers" */
  HD_SIGNAL_DATA_RECV,           /* "data" (node -> client) */
  HD_SIGNAL_PONG,                /* "pong" */
  HD_SIGNAL_ERROR,               /* "error" */
  HD_SIGNAL_LEFT,                /* "left" */
  HD_SIGNAL_STREAM_STATE,        /* "stream_state" */
  HD_SIGNAL_PUBLISH_LAYERS,      /* "publish_layers" */
  HD_SIGNAL_CONNECTION_QUALITY,  /* "connection_quality" */
  HD_SIGNAL_TRACK_REFUSED,       /* "track_refused" */
  HD_SIGNAL_TYPE_COUNT
} hd_signal_type_t;

typedef enum { HD_SIGNAL_KIND_AUDIO = 0, HD_SIGNAL_KIND_VIDEO = 1 } hd_signal_kind_t;

/* Track source; camera/screen are video, microphone/screen_audio are audio. */
typedef enum {
  HD_SIGNAL_SOURCE_CAMERA = 0,
  HD_SIGNAL_SOURCE_MICROPHONE = 1,
  HD_SIGNAL_SOURCE_SCREEN = 2,
  HD_SIGNAL_SOURCE_SCREEN_AUDIO = 3
} hd_signal_source_t;

/* Error codes of "error" messages: a number (HTTP-like) and a string reason. */
typedef enum {
  HD_SIGNAL_ERR_NONE = 0,
  HD_SIGNAL_ERR_BAD_REQUEST,   /* 400 bad_request: malformed, invalid, unknown type, wrong state */
  HD_SIGNAL_ERR_UNAUTHORIZED,  /* 401 unauthorized: token missing, malformed, bad signature, unknown key */
  HD_SIGNAL_ERR_TOKEN_EXPIRED, /* 401 token_expired: token expired or not yet valid */
  HD_SIGNAL_ERR_FORBIDDEN,     /* 403 forbidden: grant missing, token for another room */
  HD_SIGNAL_ERR_NOT_FOUND,     /* 404 not_found: no such track / participant */
  HD_SIGNAL_ERR_CONFLICT,      /* 409 conflict: request clashes with the session state */
  HD_SIGNAL_ERR_TOO_LARGE,     /* 413 too_large: message or field over its cap */
  HD_SIGNAL_ERR_RATE_LIMITED,  /* 429 rate_limited */
  HD_SIGNAL_ERR_INTERNAL,      /* 500 internal */
  HD_SIGNAL_ERR_ROOM_FULL,     /* 503 room_full */
  HD_SIGNAL_ERR_NODE_FULL,     /* 503 node_full */
  HD_SIGNAL_ERR_NODE_DRAINING, /* 503 node_draining: go to "redirect" (cluster, docs/overlay.md) */
  HD_SIGNAL_ERR_CLUSTER_UNAVAILABLE, /* 503 cluster_unavailable: Redis did not name a new room in time */
  HD_SIGNAL_ERR_COUNT
} hd_signal_errcode_t;

/* Why a node ended a participant's session ("left".reason). */
typedef enum {
  HD_SIGNAL_LEFT_CLIENT_REQUEST = 0, /* "client_request": the client sent leave */
  HD_SIGNAL_LEFT_DUPLICATE_IDENTITY, /* "duplicate_identity": same identity joined again */
  HD_SIGNAL_LEFT_REMOVED,            /* "removed": by the admin API */
  HD_SIGNAL_LEFT_ROOM_CLOSED,        /* "room_closed" */
  HD_SIGNAL_LEFT_SERVER_SHUTDOWN,    /* "server_shutdown" */
  HD_SIGNAL_LEFT_NODE_DRAINING,      /* "node_draining": rejoin through "redirect" */
  HD_SIGNAL_LEFT_COUNT
} hd_signal_left_reason_t;

/* ---- shared objects ---- */

/* A published track as others see it. codec may be "" (not known yet). */
typedef struct {
  const char *sid;
  hd_signal_kind_t kind;
  hd_signal_source_t source;
  int muted;         /* 0/1 */
  int width, height; /* 0 = unknown or audio; else 1..HD_SIGNAL_MAX_DIMENSION */
  const char *codec;
} hd_signal_track_t;

/* A track in a publish_offer. */
typedef struct {
  const char *cid; /* client's track id (e.g. MediaStreamTrack.id) */
  const char *mid; /* the SDP m-section (transceiver.mid) carrying it */
  hd_signal_kind_t kind;
  hd_signal_source_t source;
  int muted;
  int width, height; /* 0 = not given */
} hd_signal_pub_track_t;

/* publish_answer entry: the node's sid for a client's cid. */
typedef struct {
  const char *cid, *sid;
} hd_signal_track_ref_t;

/* subscriber_offer entry: which remote track an m-section carries. */
typedef struct {
  const char *mid, *track_sid, *participant_sid;
} hd_signal_sub_track_t;

typedef struct {
  int can_publish, can_subscribe, can_publish_data, room_admin, hidden; /* 0/1 */
} hd_signal_permissions_t;

typedef struct {
  const char *sid, *identity, *name, *metadata; /* name/metadata may be "" */
  int64_t joined_at;                            /* Unix seconds, >= 0 */
  const hd_signal_track_t *tracks;
  size_t n_tracks;
  int has_permissions; /* 1: "permissions" present (only for the joiner itself) */
  hd_signal_permissions_t permissions;
} hd_signal_participant_t;

typedef struct {
  const char *name, *sid;
  int64_t created_at;   /* Unix seconds, >= 0 */
  int max_participants; /* 0 = no limit */
} hd_signal_room_t;

typedef struct {
  const char *const *urls; /* 1..HD_SIGNAL_MAX_URLS, "stun:" / "turn:" / "turns:" */
  size_t n_urls;
  const char *username, *credential; /* NULL = absent */
} hd_signal_ice_server_t;

typedef struct {
  const char *sid;
  double level; /* 0.0 (silence) .. 1.0 (loudest) */
} hd_signal_speaker_t;

/* Whether the node forwards a subscribed track now (stream_state). */
typedef enum { HD_SIGNAL_STREAM_ACTIVE = 0, HD_SIGNAL_STREAM_PAUSED = 1 } hd_signal_stream_t;
/* Why a track is paused: its subscriber's downlink estimate cannot carry even
 * its lowest layer, the subscriber hid it (track_settings), or the publisher
 * sends nothing. */
typedef enum {
  HD_SIGNAL_PAUSE_NONE = 0, /* active */
  HD_SIGNAL_PAUSE_BANDWIDTH,
  HD_SIGNAL_PAUSE_HIDDEN,
  HD_SIGNAL_PAUSE_PUBLISHER,
  HD_SIGNAL_PAUSE_COUNT
} hd_signal_pause_reason_t;

/* connection_quality entry. */
typedef enum {
  HD_SIGNAL_QUALITY_GOOD = 0,
  HD_SIGNAL_QUALITY_POOR,
  HD_SIGNAL_QUALITY_LOST
} hd_signal_quality_t;
typedef struct {
  const char *participant_sid;
  hd_signal_quality_t quality;
} hd_signal_quality_update_t;

/* ---- the message ---- */

typedef struct {
  hd_signal_type_t type;
  const char *id; /* request id; NULL = absent */
  union {
    /* client -> node */
    struct {
      const char *token;  /* JWT, 1..HD_SIGNAL_MAX_TOKEN */
      int auto_subscribe; /* default 1 */
      const char *name;   /* NULL = absent (use the token's) */
      const char *metadata;
      int protocol; /* default HD_SIGNAL_PROTOCOL_VERSION */
      int flexfec;  /* 1: the client decodes FlexFEC (RFC 8627 "flexfec") on the video it
                     * receives: the node offers it (sfu/session_fec.h); default 0 */
    } join;
    struct {
      const char *sdp;
      const hd_signal_pub_track_t *tracks; /* the full set published after this offer */
      size_t n_tracks;                     /* 0..HD_SIGNAL_MAX_TRACKS */
    } publish_offer;
    struct {
      const char *sdp;
    } subscriber_answer;
    struct {
      const char *const *track_sids; /* 1..HD_SIGNAL_MAX_TRACK_SIDS */
      size_t n_track_sids;
    } subscribe, unsubscribe;
    struct {
      const char *track_sid;
      int muted;
    } mute;
    struct {
      const char *metadata, *name; /* NULL = unchanged; at least one is non-NULL */
    } update_metadata;
    struct {
      const char *payload;   /* 0..HD_SIGNAL_MAX_PAYLOAD bytes */
      const char *const *to; /* identities; n_to == 0: everyone else in the room */
      size_t n_to;
    } data;
    struct {
      int64_t t; /* 0..HD_SIGNAL_MAX_T, echoed in pong */
    } ping, pong;
    struct {
      const char *const *track_sids; /* 1..HD_SIGNAL_MAX_TRACK_SIDS, subscribed tracks */
      size_t n_track_sids;
      int visible;       /* default 1; 0: shown nowhere, the node sends nothing */
      int width, height; /* the tile in device pixels; 0 = not given (any layer) */
      int pinned;        /* default 0; pinned tracks get bandwidth first */
      /* caps (LiveKit setTrackSettings, Agora setRemoteVideoStreamType): the
       * highest simulcast layer (0 = lowest) and VP8 temporal layer (TID)
       * to send; -1 = not given (no cap) */
      int max_spatial_layer, max_temporal_layer;
    } track_settings;
    /* node -> client */
    struct {
      hd_signal_participant_t participant; /* the joiner itself, with permissions */
      hd_signal_room_t room;
      const hd_signal_participant_t *participants; /* everyone else (not hidden) */
      size_t n_participants;
      const hd_signal_ice_server_t *ice_servers;
      size_t n_ice_servers;
      int ping_interval, ping_timeout; /* seconds, 1..3600 */
      int protocol;
    } joined;
    struct {
      const char *sdp;
      const hd_signal_track_ref_t *tracks;
      size_t n_tracks;
    } publish_answer;
    struct {
      const char *sdp;
      const hd_signal_sub_track_t *tracks; /* 0..HD_SIGNAL_MAX_TRACK_SIDS */
      size_t n_tracks;
    } subscriber_offer;
    struct {
      hd_signal_participant_t participant;
    } participant_joined, participant_left, participant_updated;
    struct {
      const char *participant_sid;
      hd_signal_track_t track;
    } track_published;
    struct {
      const char *participant_sid, *track_sid;
    } track_unpublished;
    struct {
      const char *participant_sid, *track_sid;
      int muted;
    } track_muted;
    struct {
      const hd_signal_speaker_t *speakers; /* loudest first, 0..HD_SIGNAL_MAX_SPEAKERS */
      size_t n_speakers;
    } active_speakers;
    struct {
      const char *from;     /* sender identity; "" = sent by the server/admin */
      const char *from_sid; /* NULL = absent */
      const char *payload;
      const char *channel; /* NULL = absent (WebSocket data); "reliable"/"lossy": came over a data channel */
      int binary;          /* 1: payload is base64 of a binary data channel message */
    } data_recv;
    struct {
      hd_signal_errcode_t code;
      const char *message;  /* 0..HD_SIGNAL_MAX_TEXT bytes */
      int retry_after;      /* seconds before trying again (503s); 0 = absent */
      const char *redirect; /* node_draining: http(s) URL of the node to use; NULL = absent */
    } error;
    struct {
      hd_signal_left_reason_t reason;
      const char *message;  /* NULL = absent */
      const char *redirect; /* node_draining: http(s) URL of the node to rejoin through; NULL = absent */
    } left;
    struct {
      const char *participant_sid, *track_sid;
      hd_signal_stream_t state;
      hd_signal_pause_reason_t reason; /* NONE when active */
      const char *rid;                 /* active: the simulcast layer sent (RFC 8851 rid); NULL = none */
      int width, height;               /* active: that layer's size; 0 = unknown */
    } stream_state;
    struct {
      const char *track_sid;          /* one of the receiver's published tracks */
      const char *const *active_rids; /* the layers someone needs; the others may be paused */
      size_t n_active_rids;           /* 0..HD_SIGNAL_MAX_LAYERS */
    } publish_layers;
    struct {                 /* a subscriber cannot decode one of the receiver's tracks */
      const char *track_sid; /* one of the receiver's published tracks */
      const char *codec;     /* as published, e.g. "H264" */
      const char *fmtp;      /* its format parameters (the H.264 profile), "" if none */
      const char *identity;  /* who refused it */
    } track_refused;
    struct {
      const hd_signal_quality_update_t *updates; /* 1..HD_SIGNAL_MAX_TRACK_SIDS */
      size_t n_updates;
    } connection_quality;
  };
  void *priv_; /* parse storage; NULL for caller-built messages */
} hd_signal_msg_t;

/* Parse failure details, for the "error" reply. */
typedef struct {
  hd_signal_errcode_t code;             /* BAD_REQUEST, TOO_LARGE or INTERNAL (out of memory) */
  char message[HD_SIGNAL_MAX_TEXT + 1]; /* e.g. "missing field \"sdp\"" */
  char id[HD_SIGNAL_MAX_ID + 1];        /* the request's "id" if it could be read, else "" */
  hd_signal_type_t type;                /* the message type if it was known, else NONE */
} hd_signal_error_t;

/* ---- parse ---- */

/* Parses one message text[0..len) sent by `from`. Strict: the text must be one
 * JSON object (UTF-8, no duplicate keys, no trailing data, no NUL in strings)
 * of at most HD_SIGNAL_MAX_MSG (from client) / HD_SIGNAL_MAX_NODE_MSG (from
 * node) bytes, with a "type" that exists in that direction and every member
 * valid. Returns 0 and fills *out (release with hd_signal_msg_free), or
 *   HD_EPROTO  invalid; *err says why (code BAD_REQUEST, or TOO_LARGE for a
 *              message or field over its cap), with the "id" and type when known
 *   HD_ENOMEM  allocation failed (err->code INTERNAL)
 *   HD_EINVAL  NULL arguments or bad `from`.
 * On failure *out is zeroed and owns nothing. err may be NULL. */
int hd_signal_parse(const char *text, size_t len, hd_signal_dir_t from, hd_signal_msg_t *out,
                    hd_signal_error_t *err);

/* Releases what hd_signal_parse stored in m and zeroes it. Safe on a zeroed or
 * caller-built message (priv_ NULL) and on NULL. */
void hd_signal_msg_free(hd_signal_msg_t *m);

/* ---- build ---- */

/* Checks a caller-built message against the same rules the parser applies
 * (what the node writes, a client accepts). Returns 0 or HD_EINVAL with the
 * reason in *err (err may be NULL). */
int hd_signal_check(const hd_signal_msg_t *m, hd_signal_error_t *err);

/* Writes m as compact JSON (UTF-8, members in documented order) into out,
 * NUL-terminated. Returns the length without the NUL, HD_EINVAL (m fails
 * hd_signal_check, or the text would exceed its direction's cap), HD_ENOSPC
 * (does not fit cap) or HD_ENOMEM. Optional strings that are NULL are left
 * out; ints and bools are written as given (a zeroed join has
 * "auto_subscribe":false, so set it). join.protocol / joined.protocol 0 are
 * written as HD_SIGNAL_PROTOCOL_VERSION. */
int hd_signal_write(const hd_signal_msg_t *m, char *out, size_t cap);

/* Convenience builders: each fills a message and calls hd_signal_write. id may
 * be NULL (no "id" member). Same returns as hd_signal_write. */
/* client -> node */
int hd_signal_write_join(const char *id, const char *token, int auto_subscribe, const char *name,
                         const char *metadata, char *out, size_t cap);
int hd_signal_write_publish_offer(const char *id, const char *sdp, const hd_signal_pub_track_t *tracks,
                                  size_t n, char *out, size_t cap);
int hd_signal_write_subscriber_answer(const char *id, const char *sdp, char *out, size_t cap);
/* subscribe != 0: "subscribe", else "unsubscribe". */
int hd_signal_write_subscribe(const char *id, int subscribe, const char *const *track_sids, size_t n,
                              char *out, size_t cap);
int hd_signal_write_mute(const char *id, const char *track_sid, int muted, char *out, size_t cap);
int hd_signal_write_update_metadata(const char *id, const char *metadata, const char *name, char *out,
                                    size_t cap);
int hd_signal_write_data(const char *id, const char *payload, const char *const *to, size_t n_to, char *out,
                         size_t cap);
int hd_signal_write_leave(const char *id, char *out, size_t cap);
int hd_signal_write_ping(const char *id, int64_t t, char *out, size_t cap);
/* node -> client. For joined, fill a message with type HD_SIGNAL_JOINED and use
 * hd_signal_write. */
int hd_signal_write_publish_answer(const char *id, const char *sdp, const hd_signal_track_ref_t *tracks,
                                   size_t n, char *out, size_t cap);
int hd_signal_write_subscriber_offer(const char *sdp, const hd_signal_sub_track_t *tracks, size_t n,
                                     char *out, size_t cap);
/* type: HD_SIGNAL_PARTICIPANT_JOINED, _LEFT or _UPDATED. */
int hd_signal_write_participant(hd_signal_type_t type, const hd_signal_participant_t *p, char *out,
                                size_t cap);
int hd_signal_write_track_published(const char *participant_sid, const hd_signal_track_t *t, char *out,
                                    size_t cap);
int hd_signal_write_track_unpublished(const char *participant_sid, const char *track_sid, char *out,
                                      size_t cap);
int hd_signal_write_track_muted(const char *participant_sid, const char *track_sid, int muted, char *out,
                                size_t cap);
int hd_signal_write_active_speakers(const hd_signal_speaker_t *s, size_t n, char *out, size_t cap);
int hd_signal_write_data_recv(const char *from, const char *from_sid, const char *payload, char *out,
                              size_t cap);
/* `data` for a message that came over a data channel (docs/protocol.md "Data
 * channels"): channel "reliable" or "lossy", binary 1 when payload is base64. */
int hd_signal_write_data_recv_dc(const char *from, const char *from_sid, const char *payload,
                                 const char *channel, int binary, char *out, size_t cap);
int hd_signal_write_pong(const char *id, int64_t t, char *out, size_t cap);
/* message NULL = "". A message longer than HD_SIGNAL_MAX_TEXT is truncated
 * (at a UTF-8 boundary) rather than failing: an error reply must go out. */
int hd_signal_write_error(const char *id, hd_signal_errcode_t code, const char *message, char *out,
                          size_t cap);
/* Replies to a failed hd_signal_parse: code, message and id from *e. */
/* The same with "retry_after" (seconds, > 0): for 503 refusals, how long to
 * wait before trying again (docs/protocol.md "Error codes"). */
int hd_signal_write_error_retry(const char *id, hd_signal_errcode_t code, const char *message,
                                int retry_after, char *out, size_t cap);
int hd_signal_write_parse_error(const hd_signal_error_t *e, char *out, size_t cap);
int hd_signal_write_left(hd_signal_left_reason_t reason, const char *message, char *out, size_t cap);
/* Layer selection (docs/protocol.md "Layer selection"). */
int hd_signal_write_track_settings(const char *id, const char *const *track_sids, size_t n, int visible,
                                   int width, int height, int pinned, char *out, size_t cap);
/* The same with the layer caps (max_spatial 0..2, max_temporal 0..2; -1 = none). */
int hd_signal_write_track_settings_max(const char *id, const char *const *track_sids, size_t n, int visible,
                                       int width, int height, int pinned, int max_spatial, int max_temporal,
                                       char *out, size_t cap);
/* paused NONE = "active" (with rid/width/height when known), else "paused" with that reason. */
int hd_signal_write_stream_state(const char *participant_sid, const char *track_sid,
                                 hd_signal_pause_reason_t paused, const char *rid, int width, int height,
                                 char *out, size_t cap);
int hd_signal_write_publish_layers(const char *track_sid, const char *const *active_rids, size_t n, char *out,
                                   size_t cap);
int hd_signal_write_track_refused(const char *track_sid, const char *codec, const char *fmtp,
                                  const char *identity, char *out, size_t cap);
int hd_signal_write_connection_quality(const hd_signal_quality_update_t *u, size_t n, char *out, size_t cap);

/* ---- names ---- */

/* Wire name of a type ("join", "data" for both DATA and DATA_RECV), or "?" */
const char *hd_signal_type_name(hd_signal_type_t t);
/* Numeric code of an error (400, 401, ...), 0 for NONE/unknown. */
int hd_signal_err_status(hd_signal_errcode_t c);
/* String reason of an error ("bad_request", ...), "" for NONE/unknown. */
const char *hd_signal_err_reason(hd_signal_errcode_t c);
/* Maps an hd_token_verify / hd_token_authorize result to an error code:
 * HD_EEXPIRED -> TOKEN_EXPIRED, HD_EFORBIDDEN -> FORBIDDEN, HD_ENOMEM ->
 * INTERNAL, other negatives -> UNAUTHORIZED, 0 -> NONE. */
hd_signal_errcode_t hd_signal_err_from_token(int hd_err);
const char *hd_signal_kind_name(hd_signal_kind_t k);               /* "audio" / "video" */
const char *hd_signal_source_name(hd_signal_source_t s);           /* "camera", ... */
const char *hd_signal_left_reason_name(hd_signal_left_reason_t r); /* "removed", ... */
const char *hd_signal_quality_name(hd_signal_quality_t q);         /* "good", "poor", "lost" */

#endif
