/* Native C client for Hudong real-time messaging (docs/rtm.md "C client"): a
 * JSON-over-WebSocket /rtm session on a caller-provided libuv loop, with the
 * client half of the reliability contract (docs/rtm.md "Reliability"), the
 * same behaviour as web/rtm.js:
 *  - cumulative acks every 32 messages or 100 ms (rtm/client.h);
 *  - on a cut (anything but logout 1000, login failure 4001, replaced 4009):
 *    reconnect with backoff and resume {resume, last}; replays are deduped by "s";
 *  - session lost (410 on resume, 4008 overflow, a gap in "s"): log in afresh
 *    (token again, from get_token if given), subscribe every channel again and
 *    refill each one from history after its last delivered cseq; live messages
 *    for a channel wait until its refill is done, so delivery stays in order;
 *  - requests without a reply are sent again with the same id after a resume
 *    (the node answers a repeated pub id with the first cseq, "dup");
 *  - 429 rate_limited (not executed): retried with backoff (100 ms .. 2 s, 8 tries).
 * The application thus sees each channel message exactly once, in cseq order
 * (after a session loss, only stored messages can be refilled; and a pub whose
 * ok was lost is sent again in the new session, where the node's per-session
 * id dedupe does not apply, so it may be published twice).
 *
 * THREADING: every function must be called on the loop's thread; every
 * callback runs on it. Strings given to callbacks are lent for the call.
 * A request's done callback is called exactly once (unless the client is
 * freed first); a function that fails never calls it. */
#ifndef HD_CLIENT_RTM_CLIENT_H
#define HD_CLIENT_RTM_CLIENT_H
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define HD_RTMC_DEFAULT_MAX_PENDING 256
#define HD_RTMC_DEFAULT_REQUEST_TIMEOUT_MS 15000
#define HD_RTMC_DEFAULT_RECONNECT_MAX_MS 60000
#define HD_RTMC_MAX_CHANNELS 64        /* the node's subscription cap */
#define HD_RTMC_MAX_REFILL_BUFFER 4096 /* live msgs held per channel during a refill */

typedef struct hd_rtmc hd_rtmc_t;

typedef enum {
  HD_RTMC_IDLE = 0,     /* created, not logged in */
  HD_RTMC_CONNECTING,   /* first login in progress */
  HD_RTMC_CONNECTED,    /* welcomed */
  HD_RTMC_RECONNECTING, /* cut: resuming or logging in again */
  HD_RTMC_CLOSED        /* logged out, login refused, replaced, or gave up */
} hd_rtmc_state_t;

/* A request's outcome. code 0 = ok; a node error code (400..504); or a
 * negative HD_E* for a local failure (HD_ETIMEDOUT, HD_ECLOSED). */
typedef struct {
  int code;
  const char *reason;  /* node's reason ("conflict") or hd_strerror(code); "" on ok */
  const char *message; /* node's message or "" */
  int64_t cseq;        /* pub / sub ok: the channel sequence; else 0 */
  int64_t rev;         /* attr ok, or 409 CAS conflict: current rev; else -1 */
  const char *owner;   /* lock 409: the holder; else NULL */
  int64_t exp;         /* lock_acquire ok: expiry (Unix ms) */
  int dup;             /* pub ok repeated for a retried id */
  const char *json;    /* the whole reply as compact JSON (e.g. hist "msgs"), NULL if local */
} hd_rtmc_result_t;

typedef void (*hd_rtmc_done_fn)(void *ud, void *req_ud, const hd_rtmc_result_t *r);

typedef struct {
  const char *url;   /* "ws://127.0.0.1:7880/rtm" */
  const char *token; /* JWT with the rtm grant (copied), or NULL with get_token */
  /* Called for each fresh login (first and after session loss); writes a
   * NUL-terminated token into buf; returns 0 or a negative HD_E*. */
  int (*get_token)(void *ud, char *buf, size_t cap);
  void (*on_state)(void *ud, hd_rtmc_state_t st, const char *reason);
  /* Channel message, exactly once and in cseq order per channel. data is not
   * NUL-terminated. */
  void (*on_message)(void *ud, const char *ch, int64_t cseq, const char *from, const char *data, size_t len);
  void (*on_presence)(void *ud, const char *ch, const char *ev, const char *user, const char *state);
  /* ch or user is NULL; value NULL = deleted */
  void (*on_attr)(void *ud, const char *ch, const char *user, const char *key, const char *value, int64_t rev,
                  const char *by);
  void (*on_lock)(void *ud, const char *ch, const char *name, const char *ev, const char *owner);
  void (*on_peer)(void *ud, const char *from, const char *pid, const char *data, size_t len);
  /* Errors nobody waits for (e.g. a failed re-subscribe). */
  void (*on_error)(void *ud, int code, const char *reason, const char *message);
  void *ud;
  unsigned max_pending;        /* requests awaiting a reply; 0 = default */
  unsigned request_timeout_ms; /* 0 = default */
  unsigned reconnect_max_ms;   /* give up reconnecting after this; 0 = default */
} hd_rtmc_config_t;

/* Creates a client (does not connect). HD_EINVAL (no url, or neither token
 * nor get_token), HD_ENOMEM. */
int hd_rtmc_new(hd_rtmc_t **out, uv_loop_t *loop, const hd_rtmc_config_t *cfg);

/* Connects and logs in; done gets code 0 on welcome or the login error
 * (401/403/...; or HD_EIO-like local failures). HD_ESTATE unless IDLE/CLOSED. */
int hd_rtmc_login(hd_rtmc_t *c, hd_rtmc_done_fn done, void *req_ud);

/* Requests. Each may be issued before the welcome (queued) or while
 * reconnecting (sent after the resume). Returns 0, HD_EINVAL (bad argument),
 * HD_ENOSPC (pending table full: max_pending requests await replies),
 * HD_ESTATE (closed), HD_ENOMEM. done may be NULL. */
int hd_rtmc_subscribe(hd_rtmc_t *c, const char *ch, hd_rtmc_done_fn done, void *req_ud);
int hd_rtmc_unsubscribe(hd_rtmc_t *c, const char *ch, hd_rtmc_done_fn done, void *req_ud);
/* data must be UTF-8. ok: r->cseq. */
int hd_rtmc_publish(hd_rtmc_t *c, const char *ch, const char *data, size_t len, int store,
                    hd_rtmc_done_fn done, void *req_ud);
/* after < 0: the last `limit` messages. Messages in r->json ("msgs"); not
 * delivered through on_message. */
int hd_rtmc_history(hd_rtmc_t *c, const char *ch, int limit, int64_t after, hd_rtmc_done_fn done,
                    void *req_ud);
/* Exactly one of ch / user. rev < 0: unconditional; else compare-and-set
 * (0 = must not exist); a mismatch gives code 409 and r->rev. value NULL
 * deletes (attr_del). */
int hd_rtmc_set_attr(hd_rtmc_t *c, const char *ch, const char *user, const char *key, const char *value,
                     int64_t rev, hd_rtmc_done_fn done, void *req_ud);
/* ttl_ms 0 = the node's default. Held by another user: 409 and r->owner. */
int hd_rtmc_lock_acquire(hd_rtmc_t *c, const char *ch, const char *name, unsigned ttl_ms,
                         hd_rtmc_done_fn done, void *req_ud);
int hd_rtmc_lock_release(hd_rtmc_t *c, const char *ch, const char *name, hd_rtmc_done_fn done, void *req_ud);
/* Peer message: done gets code 0 when the recipient acked it (receipt),
 * 404 user_offline, or 504 not_delivered. */
int hd_rtmc_send_peer(hd_rtmc_t *c, const char *to, const char *data, size_t len, hd_rtmc_done_fn done,
                      void *req_ud);
/* Any other request (who, state, attr_get, lock_get, lock_steal ...): a JSON
 * object text with "type"; the client adds "id". */
int hd_rtmc_request(hd_rtmc_t *c, const char *json_obj, hd_rtmc_done_fn done, void *req_ud);

/* Logs out (presence leave); state goes CLOSED after the node's close 1000;
 * pending requests fail with HD_ECLOSED. done may be NULL. */
int hd_rtmc_logout(hd_rtmc_t *c, hd_rtmc_done_fn done, void *req_ud);

/* Test hook / "reconnect now": closes the TCP connection without a close
 * frame, as a network cut would; the client resumes. HD_ESTATE if not connected. */
int hd_rtmc_drop_connection(hd_rtmc_t *c);

/* Test hook: like hd_rtmc_drop_connection, and the resume secret is
 * forgotten, so the resume gets 410 session_gone as after an expiry: the
 * client logs in afresh, subscribes again and refills from history. */
int hd_rtmc_drop_session(hd_rtmc_t *c);

hd_rtmc_state_t hd_rtmc_state(const hd_rtmc_t *c);
/* The user id from the welcome ("" before). */
const char *hd_rtmc_user(const hd_rtmc_t *c);

typedef struct {
  uint64_t delivered, duplicates, resumes, relogins, refilled, retries_429, resent;
} hd_rtmc_stats_t;
void hd_rtmc_get_stats(const hd_rtmc_t *c, hd_rtmc_stats_t *out);

/* Frees the client at once (socket closed without handshake); no callback
 * follows. Not to be called from inside one of its callbacks. */
void hd_rtmc_free(hd_rtmc_t *c);

#endif
