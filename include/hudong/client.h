/* DRAFT — NOT IMPLEMENTED. Proposed public API of the native Hudong client SDK
 * (libhudong, issue 6). Types and prototypes only, for review; nothing here is
 * compiled into the library yet and every signature may still change.
 *
 * What it will wrap: src/client/pc.h (PeerConnection: ICE, DTLS-SRTP, RTP,
 * NACK/RTX, RTCP), src/client/rtc_signal.h (the /rtc rooms protocol) and
 * src/io/ws_client.h (WebSocket) plus UDP sockets on a libuv loop.
 *
 * THREADING MODEL: an hd_client_t runs its own loop thread (one libuv loop).
 * Every callback is called on that thread; a callback must not block and may
 * call any hd_client_* function. Functions called from other threads are
 * queued to the loop (uv_async) and return at once; their outcome arrives as a
 * callback. Media buffers passed to hd_client_send_* are copied before the call
 * returns. Data given to a callback is lent for the duration of the call.
 *
 * Errors: int returns, 0 or a negative HD_E* code (hd_strerror names it). */
#ifndef HUDONG_CLIENT_H
#define HUDONG_CLIENT_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hd_client hd_client_t;

typedef enum { HD_CLIENT_AUDIO = 1, HD_CLIENT_VIDEO = 2 } hd_client_kind_t;

typedef enum {
  HD_CLIENT_DISCONNECTED = 0,
  HD_CLIENT_CONNECTING = 1, /* WebSocket + join */
  HD_CLIENT_JOINED = 2,
  HD_CLIENT_RECONNECTING = 3, /* lost; retrying with backoff (docs/protocol.md) */
  HD_CLIENT_FAILED = 4        /* gave up: 401/403, removed, room closed */
} hd_client_state_t;

/* A remote track as the room announced it. Strings lent for the callback. */
typedef struct {
  const char *participant_sid, *identity, *track_sid;
  hd_client_kind_t kind;
  const char *source; /* "camera", "microphone", "screen", "screen_audio" */
  int muted;
} hd_client_track_info_t;

/* One received encoded frame piece (an RTP payload; depacketization and
 * decoding are the media layer's job, or the app's). */
typedef struct {
  const char *track_sid;
  hd_client_kind_t kind;
  uint8_t payload_type;
  uint32_t rtp_timestamp;
  int marker;
  const uint8_t *payload;
  size_t len;
} hd_client_media_t;

typedef struct {
  void (*on_state)(void *ud, hd_client_state_t state, const char *reason);
  void (*on_participant)(void *ud, const char *participant_sid, const char *identity, int joined);
  void (*on_track)(void *ud, const hd_client_track_info_t *t, int published); /* 0 = unpublished */
  void (*on_track_muted)(void *ud, const hd_client_track_info_t *t);
  void (*on_media)(void *ud, const hd_client_media_t *m);
  void (*on_data)(void *ud, const char *from_identity, const char *payload, size_t len);
  void (*on_keyframe_request)(void *ud, int local_track);
  void (*on_send_rate)(void *ud, uint64_t bitrate_bps); /* encoder target from the node */
  void *ud;
} hd_client_callbacks_t;

typedef struct {
  const char *url;   /* "ws://host:port/rtc" */
  const char *token; /* JWT from the app's backend */
  const char *name, *metadata;
  int no_auto_subscribe;
  int no_reconnect;
  hd_client_callbacks_t cb;
} hd_client_config_t;

/* Creates the client and starts its loop thread (not yet connected). */
int hd_client_new(hd_client_t **out, const hd_client_config_t *cfg);
/* Connects and joins (outcome: on_state JOINED or FAILED). */
int hd_client_join(hd_client_t *c);
/* Adds a local track to publish (kind, source, e.g. "camera"); returns its
 * index (>= 0). Publishing (re)negotiates the publisher PeerConnection. */
int hd_client_publish(hd_client_t *c, hd_client_kind_t kind, const char *source);
int hd_client_unpublish(hd_client_t *c, int local_track);
int hd_client_mute(hd_client_t *c, int local_track, int muted);
/* Sends one encoded payload of a local track (RTP packetized by the caller or
 * by the media layer); copied. */
int hd_client_send_media(hd_client_t *c, int local_track, uint32_t rtp_timestamp, int marker,
                         const uint8_t *payload, size_t len);
/* Explicit subscription when auto-subscribe is off. */
int hd_client_subscribe(hd_client_t *c, const char *track_sid, int subscribe);
/* Text data to everyone (to == NULL) or to identities. */
int hd_client_send_data(hd_client_t *c, const char *payload, const char *const *to, size_t n_to);
/* Leaves the room (outcome: on_state DISCONNECTED). */
int hd_client_leave(hd_client_t *c);
/* Stops the loop thread and frees everything; no callback after it returns.
 * Must not be called from a callback. */
void hd_client_free(hd_client_t *c);

#ifdef __cplusplus
}
#endif
#endif
