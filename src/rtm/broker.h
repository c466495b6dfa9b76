/* RTM broker: real-time messaging over the /rtm WebSocket (docs/rtm.md).
 *
 * Sans-IO (DESIGN §3 rule 1): the I/O shell tells the broker about
 * connections (open, text message, closed) with the current time; the broker
 * answers through two callbacks (send a text to a connection, close a
 * connection) and says when it next needs to be ticked. It never touches a
 * socket, a clock or a thread. Connections are named by the shell's 64-bit
 * connection id (hd_ws_id); a *session* (login) outlives its connection for a
 * resume grace period.
 *
 * What it does: login with an RTM-grant JWT, channels (subscribe, publish with
 * a per-channel sequence number, optional storage + history), presence
 * (join/leave/timeout events, who-is-here, per-user temporary state), channel
 * and user attributes with revisions and compare-and-set, TTL locks, peer
 * messages with delivery receipts, and the reliability layer: every message to
 * a session carries a per-session sequence number "s", the client acks
 * cumulatively, unacked messages stay in a bounded window that is replayed on
 * resume; a window overflow ends the session with close code 4008.
 *
 * Multi-node (issue 15 item 5, docs/overlay.md "RTM across nodes"): with
 * cfg.cluster set, a channel's events are sequenced and carried by a shared
 * per-channel log (hd_rtm_cluster_t; the node's Redis in io/rtm_redis.h):
 * the broker appends (publish, presence, attributes, locks) and fans out only
 * what the shell reads back from the log (hd_rtm_cluster_entry), so every
 * node delivers a channel in the log's one order. Sessions move between
 * nodes on resume (hd_rtm_cluster_export / hd_rtm_cluster_import). Without
 * cfg.cluster nothing of this runs. */
#ifndef HD_RTM_BROKER_H
#define HD_RTM_BROKER_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"
#include "proto/token.h"
#include "rtm/store.h"

#define HD_RTM_PROTOCOL_VERSION 1

/* ---- limits (defaults; most are configurable, docs/rtm.md "Limits") ---- */
#define HD_RTM_DEFAULT_MAX_MSG (32 * 1024)     /* a client message, whole text (bytes) */
#define HD_RTM_DEFAULT_WINDOW_MSGS 1024        /* unacked messages per session */
#define HD_RTM_DEFAULT_WINDOW_BYTES (2u << 20) /* unacked bytes per session */
#define HD_RTM_DEFAULT_RESUME_GRACE HD_SEC(30)
#define HD_RTM_DEFAULT_RATE 100.0  /* client messages per second per connection */
#define HD_RTM_DEFAULT_BURST 200.0 /* token bucket depth */
#define HD_RTM_DEFAULT_MAX_SESSIONS 20000
#define HD_RTM_DEFAULT_MAX_SESSIONS_PER_USER 8   /* per (app, identity): a login replaces a resumable one */
#define HD_RTM_DEFAULT_QUOTA_CHANNELS 10000      /* channels with stored history per app */
#define HD_RTM_DEFAULT_QUOTA_BYTES (256LL << 20) /* stored history bytes per app */
#define HD_RTM_DEFAULT_MIN_FREE (100LL << 20)    /* refuse stored publishes under this much free disk */
#define HD_RTM_DEFAULT_PEER_TIMEOUT HD_SEC(30)
#define HD_RTM_DEFAULT_HISTORY_KEEP 1000 /* stored messages kept per channel */
#define HD_RTM_DEFAULT_PRESENCE_MAX 500  /* members up to which presence events are sent */
#define HD_RTM_MAX_SUBS 64               /* channels per session */
#define HD_RTM_MAX_CHANNEL 64            /* channel name bytes: [A-Za-z0-9_.:-] */
#define HD_RTM_MAX_USER 127              /* user id (token "sub") bytes */
#define HD_RTM_MAX_ID 64                 /* request "id" bytes */
#define HD_RTM_MAX_KEY 64                /* attribute key / lock name bytes */
#define HD_RTM_MAX_VALUE 8192            /* attribute value bytes */
#define HD_RTM_MAX_STATE 1024            /* presence state bytes */
#define HD_RTM_MAX_ATTRS 128             /* keys per channel / per user */
#define HD_RTM_HIST_MAX 100              /* messages per history reply */
#define HD_RTM_MAX_LOCK_TTL HD_SEC(3600)
#define HD_RTM_MAX_LOCKS 100000   /* locks per node */
#define HD_RTM_PUB_DEDUPE 64      /* recent publish/peer ids remembered per session */
#define HD_RTM_MAX_OUT (4u << 20) /* any node->client message (a history reply) */

/* WebSocket close codes the broker uses (RFC 6455 §7.4.2 private range). */
#define HD_RTM_CLOSE_NORMAL 1000       /* logout */
#define HD_RTM_CLOSE_LOGIN_FAILED 4001 /* login refused (the error message says why) */
#define HD_RTM_CLOSE_OVERFLOW 4008     /* window overflow: session dropped; log in again, fetch history */
#define HD_RTM_CLOSE_REPLACED 4009     /* the session was resumed on another connection */
#define HD_RTM_CLOSE_SHUTDOWN 4010     /* node shutting down: resume elsewhere / later */

/* Error codes of "error" replies: numeric (HTTP-like) and a reason string. */
typedef enum {
  HD_RTM_ERR_NONE = 0,
  HD_RTM_ERR_BAD_REQUEST,   /* 400 bad_request: malformed JSON, unknown type, bad field */
  HD_RTM_ERR_UNAUTHORIZED,  /* 401 unauthorized: bad token, or not logged in */
  HD_RTM_ERR_TOKEN_EXPIRED, /* 401 token_expired */
  HD_RTM_ERR_FORBIDDEN,     /* 403 forbidden: no rtm grant, admin action without admin */
  HD_RTM_ERR_NOT_FOUND,     /* 404 not_found: not subscribed, no such lock/attribute */
  HD_RTM_ERR_OFFLINE,       /* 404 user_offline: peer message to a user with no session */
  HD_RTM_ERR_CONFLICT,      /* 409 conflict: revision mismatch, lock held by another */
  HD_RTM_ERR_SESSION_GONE,  /* 410 session_gone: resume token unknown or expired */
  HD_RTM_ERR_TOO_LARGE,     /* 413 too_large: message or field over its cap */
  HD_RTM_ERR_RATE_LIMITED,  /* 429 rate_limited */
  HD_RTM_ERR_INTERNAL,      /* 500 internal: store failure, out of memory */
  HD_RTM_ERR_FULL,          /* 503 full: a node/session cap reached */
  HD_RTM_ERR_NOT_DELIVERED, /* 504 not_delivered: peer message not acked in time / session lost */
  HD_RTM_ERR_STORAGE_FULL,  /* 507 storage_full: a history quota or the disk floor refused a stored publish */
  HD_RTM_ERR_UNAVAILABLE,   /* 503 unavailable: the cluster's shared log (Redis) did not answer */
  HD_RTM_ERR_COUNT
} hd_rtm_errcode_t;

typedef struct hd_rtm_broker hd_rtm_broker_t;

/* ---- multi-node (docs/overlay.md "RTM across nodes") ---- */

/* A position in a channel's log (a Redis stream id "ms-seq"); {0,0} = the start. */
typedef struct {
  uint64_t ms, seq;
} hd_rtm_pos_t;
int hd_rtm_pos_cmp(hd_rtm_pos_t a, hd_rtm_pos_t b);
/* "ms-seq" <-> pos. parse returns 0 or HD_EINVAL. */
int hd_rtm_pos_parse(const char *s, size_t len, hd_rtm_pos_t *out);
void hd_rtm_pos_str(hd_rtm_pos_t p, char out[48]);

/* One log entry (lent for the call): its position, the channel sequence
 * number (> 0 for a channel message, 0 for an event) and the compact JSON
 * object a subscriber gets (without "s"). */
typedef struct {
  hd_rtm_pos_t pos;
  int64_t cseq;
  const char *json;
  size_t len;
} hd_rtm_entry_t;
typedef int (*hd_rtm_entry_fn)(void *ud, const hd_rtm_entry_t *e);
typedef int (*hd_rtm_who_fn)(void *ud, const char *user, const char *state /* NULL: none */);
typedef int (*hd_rtm_lockl_fn)(void *ud, const char *name, const char *owner, int64_t exp_ms);

/* Presence operations on the shared member table. */
enum { HD_RTM_PRES_JOIN = 1, HD_RTM_PRES_LEAVE = 2, HD_RTM_PRES_TIMEOUT = 3, HD_RTM_PRES_STATE = 4 };

/* The shared log and state of a cluster. Synchronous calls on the broker's
 * thread (like the store), each one atomic in the log; a negative HD_E* when
 * it cannot be reached (the request then gets 503 unavailable). Strings are
 * lent for the call. */
typedef struct {
  void *ud;
  const char *node; /* this node's id */
  /* The node starts following a channel (first local subscriber): its last
   * cseq and log position now, read atomically; entries after pos are then
   * read back through hd_rtm_cluster_entry. */
  int (*chan_open)(void *ud, const char *app, const char *ch, int64_t *cseq, hd_rtm_pos_t *pos);
  void (*chan_close)(void *ud, const char *app, const char *ch);
  /* Sequences a channel message: cseq = the channel's next (> floor: the
   * highest this node has seen, so a Redis that lost its data never goes
   * back), the entry is pre + cseq + post; stored (m->cseq is ignored) in
   * the channel's history when store. pid ("<session>:<id>", NULL = none)
   * makes it idempotent: a publish whose call failed after the log took it
   * (a timeout) and is sent again with the same id gets the first cseq back
   * (returns 1) instead of a second entry. */
  int (*publish)(void *ud, const char *app, const char *ch, const char *pre, const char *post, int64_t floor,
                 const hd_rtm_stored_msg_t *m, int store, int keep, const char *pid, int64_t *cseq);
  int (*hist)(void *ud, const char *app, const char *ch, const hd_rtm_hist_query_t *q, hd_rtm_msg_fn fn,
              void *fud);
  /* Entries of a channel after `after` up to and including `upto`, ascending. */
  int (*range)(void *ud, const char *app, const char *ch, hd_rtm_pos_t after, hd_rtm_pos_t upto,
               hd_rtm_entry_fn fn, void *fud);
  /* Presence of user in ch held by node (NULL: this node). JOIN: the node
   * holds the user now (the event `body` is logged if the user was nowhere
   * before); LEAVE/TIMEOUT: no more (logged if the user is now nowhere);
   * STATE: state set (logged always). None is logged while the channel has
   * more than presence_max members (0 = no cap). */
  int (*presence)(void *ud, const char *app, const char *ch, const char *user, const char *node, int op,
                  const char *state, const char *body, int presence_max);
  int (*who)(void *ud, const char *app, const char *ch, hd_rtm_who_fn fn, void *fud);
  /* Attribute compare-and-set, as the store's attr_cas; the change event
   * (ev_pre + rev + ev_post) is logged in the channel when sc is a channel. */
  int (*attr_cas)(void *ud, const char *app, hd_rtm_scope_t sc, const char *name, const char *key,
                  const char *value, int64_t expect, int max_keys, const char *ev_pre, const char *ev_post,
                  int64_t *rev);
  int (*attr_list)(void *ud, const char *app, hd_rtm_scope_t sc, const char *name, hd_rtm_attr_fn fn,
                   void *fud);
  /* Locks: op 'a' acquire/refresh, 's' steal (admin), 'r' release (admin:
   * anyone's). The event is logged. Returns 0 (*exp_ms set for a/s, prev =
   * previous owner or ""), HD_ESTATE (held: prev = owner), HD_ENOTFOUND,
   * HD_EFORBIDDEN, HD_ENOSPC. Expiry is the shell's (it logs "expired"). */
  int (*lock)(void *ud, int op, const char *app, const char *ch, const char *name, const char *user,
              int64_t ttl_ms, int admin, char prev[128], int64_t *exp_ms);
  int (*lock_list)(void *ud, const char *app, const char *ch, hd_rtm_lockl_fn fn, void *fud);
  /* A resume for a session this node does not hold: ask the other nodes;
   * the shell answers later with hd_rtm_cluster_import (session or NULL).
   * Returns 0, or a negative HD_E* (the login then gets 410). */
  int (*resume)(void *ud, uint64_t conn, const char *resume);
  /* Peer messages and user attribute events across nodes (docs/overlay.md
   * "Peer messages and user events"). user_here: this node holds a session
   * of (app, user) now (here = 1: its first) or no more (0). */
  void (*user_here)(void *ud, const char *app, const char *user, int here);
  /* Hands a peer message (body: the compact JSON the recipient gets, without
   * "s") to every other live node holding a session of `to`; *nodes = how
   * many took it (each answers once through hd_rtm_cluster_peer_result on the
   * sender's node). */
  int (*peer)(void *ud, const char *app, const char *to, const char *sid, const char *id, const char *body,
              int *nodes);
  /* The outcome of a peer message that node `node` (session sid) sent. */
  void (*peer_result)(void *ud, const char *node, const char *sid, const char *id, int delivered);
  /* Sends a user attribute event to every other node; fn gets each channel
   * where the user is present in the cluster (for this node's subscribers). */
  int (*user_event)(void *ud, const char *app, const char *user, const char *body,
                    int (*fn)(void *fud, const char *ch), void *fud);
  /* A publish to a hooked channel (a board, whose state the hook keeps in
   * this node's memory): 0 if this node owns the channel's hook state (it
   * claims it when no live node does), 1 if node *owner does, or a negative
   * HD_E*. NULL: no check. */
  int (*hook_owner)(void *ud, const char *app, const char *ch, char owner[128]);
} hd_rtm_cluster_t;
/* Publish hook (the whiteboard, src/board/, docs/whiteboard.md): a "pub" to a
 * channel whose name starts with hook_prefix is first handed to pub_hook,
 * after the id dedupe and before the channel sequence number is assigned, so
 * the hook sees publishes in channel order. It returns 0 to publish — *out
 * (malloc'd, the broker frees it) instead of data when set, never stored in
 * the channel history (the hook keeps its own log) — or an hd_rtm_errcode_t
 * to refuse with msg (nothing is published). */
typedef struct {
  const char *app, *user, *ch, *data;
  size_t len;
  int writer; /* the token has canPublishData or roomAdmin */
  int64_t wall_ms;
} hd_rtm_hook_pub_t;
typedef int (*hd_rtm_pub_hook_fn)(void *ud, const hd_rtm_hook_pub_t *p, char **out, char *msg, size_t msgcap);

typedef struct {
  /* outputs (required). text is lent for the call. */
  void (*send)(void *ud, uint64_t conn, const char *text, size_t len);
  /* Close the connection; the shell must still call hd_rtm_conn_closed later
   * (calling it again for a connection the broker already detached is fine). */
  void (*close)(void *ud, uint64_t conn, int code, const char *reason);
  void *ud;
  /* token verification (required) */
  hd_token_secret_fn secret_lookup;
  void *secret_ud;
  int64_t token_leeway;  /* seconds */
  hd_rtm_store_t *store; /* required; not owned */
  hd_time_t wall_offset; /* wall-clock µs = now + wall_offset (history ts, lock expiry, tokens) */
  /* limits; 0 = default */
  size_t max_msg, window_msgs, window_bytes, max_sessions;
  size_t max_sessions_per_app,
      max_sessions_per_user; /* docs/rtm.md "Session caps"; per app: 0 = half the node */
  hd_time_t resume_grace, peer_timeout;
  double rate, burst;
  int history_keep;
  /* stored history per app and the disk floor (docs/rtm.md "Storage quotas"); 0 = default, < 0 = none */
  int64_t quota_channels, quota_bytes, min_free_bytes;
  const hd_rtm_cluster_t *cluster; /* NULL: one node (the default); not owned */
  /* presence events (join/leave/timeout/state) only while the channel has at
   * most this many members (docs/rtm.md "Presence"); 0 = default, < 0 = no cap */
  int presence_max;
  /* publish hook (see hd_rtm_hook_pub_t); a room-scoped token may also use
   * the channels hook_prefix + R + ":" + name (its room's boards) */
  const char *hook_prefix;
  hd_rtm_pub_hook_fn pub_hook;
  void *hook_ud;
  /* Group commit (docs/rtm.md "Storage"): stored publishes are held until
   * hd_rtm_turn_end (or until anything else needs the broker: another
   * request, a close, a tick), then share one store transaction, committed
   * before any of their oks or deliveries is sent. The shell must then call
   * hd_rtm_turn_end once per loop turn while hd_rtm_pending says so. 0: each
   * stored publish is committed and answered on its own (one node, no
   * cluster; ignored with cfg.cluster). */
  int group_commit;
} hd_rtm_config_t;

/* Counters for /metrics. */
typedef struct {
  uint64_t sessions;    /* live sessions (gauge), attached or waiting for resume */
  uint64_t connections; /* attached connections (gauge) */
  uint64_t channels;    /* channels with subscribers (gauge) */
  uint64_t msgs_in;     /* client messages received */
  uint64_t msgs_out;    /* messages sent to connections (incl. replays) */
  uint64_t published;   /* channel messages published */
  uint64_t errors;      /* error replies */
  uint64_t rate_limited;
  uint64_t drops;             /* sessions dropped on window overflow */
  uint64_t expired;           /* sessions dropped after the resume grace */
  uint64_t resumes;           /* successful resumes */
  uint64_t replayed;          /* messages re-sent on resume */
  uint64_t locks;             /* locks held (gauge) */
  uint64_t replaced;          /* resumable sessions ended by a new login of the same identity (cap) */
  uint64_t refused_logins;    /* logins refused by a session cap (node, app, identity) */
  uint64_t store_refused;     /* stored publishes refused by a quota or the disk floor */
  uint64_t errors_suppressed; /* error replies not sent: too many unacked errors (docs/rtm.md) */
  uint64_t presence_quiet;    /* presence events not sent: channel over presence_max members */
  uint64_t receipts;          /* peer receipts in memory (gauge): pending, or settled and held by windows */
} hd_rtm_stats_t;

/* Delivery accounting (issue 14 item 1, DESIGN §6 "delivery rate", docs/quality.md
 * "Delivery rate"): per app, cumulative since the broker started. A delivery
 * is one channel ("msg") or peer ("peer") message in one recipient session's
 * window; it is counted acked when the cumulative ack (or a resume's "last")
 * first covers it — the entry then leaves the window, so a duplicate ack or a
 * replay after a resume can never count it twice — or given up when the
 * session ends with it still unacked. Latency: publish accepted -> the ack
 * that covers it, as the node sees it (it includes the client's ack delay,
 * at most 100 ms with the bundled clients); a histogram, no allocation. */
#define HD_RTM_DLAT_BUCKETS 11 /* upper bounds hd_rtm_dlat_le_ms[], the last one +Inf */
extern const int64_t hd_rtm_dlat_le_ms[HD_RTM_DLAT_BUCKETS - 1];
typedef struct {
  uint64_t sent;       /* channel and peer messages accepted from publishers */
  uint64_t owed;       /* deliveries owed: one per recipient session at publish time */
  uint64_t acked;      /* deliveries acknowledged by the recipient session (each exactly once) */
  uint64_t overflow;   /* given up: the recipient's window was full (4008) */
  uint64_t gone;       /* given up: the recipient logged out (or was ending) with it unacked */
  uint64_t expired;    /* given up: the recipient's session was not resumed within the grace, or replaced */
  uint64_t lat_sum_us; /* sum of publish -> ack latencies of the acked */
  uint64_t lat_hist[HD_RTM_DLAT_BUCKETS]; /* acked deliveries by latency bucket (not cumulative) */
} hd_rtm_delivery_t;

/* Per-app delivery counters (cumulative): up to max apps into apps[i] /
 * out[i]. Returns the number of apps written (apps the broker has seen). */
int hd_rtm_delivery(const hd_rtm_broker_t *b, char (*apps)[64], hd_rtm_delivery_t *out, int max);

/* Creates a broker; loads locks from the store. now: current time.
 * Returns 0, HD_EINVAL (missing callbacks/store), HD_ENOMEM, or a store error. */
int hd_rtm_broker_new(hd_rtm_broker_t **out, const hd_rtm_config_t *cfg, hd_time_t now);
/* Frees everything (no callbacks are made). The store is not freed. Stored
 * publishes still held (group commit) are dropped unanswered: their
 * publishers resend them. */
void hd_rtm_broker_free(hd_rtm_broker_t *b);
/* Group commit: the stored publishes held (0: none), and the end of the
 * shell's loop turn: commits them in one transaction, then sends their oks
 * and deliveries (or each one's error). Call before the turn's output is
 * written. */
#define HD_RTM_GROUP_COMMIT 1
#define HD_RTM_GC_MAX 256 /* stored publishes held at most: one more commits them first */
int hd_rtm_pending(const hd_rtm_broker_t *b);
void hd_rtm_turn_end(hd_rtm_broker_t *b);

/* A new connection (not logged in yet). Returns 0, HD_EINVAL (conn 0 or known). */
int hd_rtm_conn_open(hd_rtm_broker_t *b, uint64_t conn, hd_time_t now);
/* One complete text message from a connection. Replies and events go out
 * through cfg.send/close before it returns. Returns 0; a negative value only
 * for an unknown connection (HD_ENOTFOUND). Bad input is answered with an
 * "error" message, never a failure. */
int hd_rtm_conn_message(hd_rtm_broker_t *b, uint64_t conn, const char *text, size_t len, hd_time_t now);
/* The connection is gone. Its session (if any) waits resume_grace for a
 * resume, queueing messages into its window. Unknown conn: no-op. */
void hd_rtm_conn_closed(hd_rtm_broker_t *b, uint64_t conn, hd_time_t now);

/* Runs timers due at now: resume grace expiry (presence "timeout"), lock TTL
 * expiry, peer receipt timeouts. */
void hd_rtm_tick(hd_rtm_broker_t *b, hd_time_t now);
/* Earliest time hd_rtm_tick has work, HD_TIME_NEVER if none. */
hd_time_t hd_rtm_next_timeout(const hd_rtm_broker_t *b);

/* Node shutdown: every attached connection is closed with 4010. */
void hd_rtm_shutdown(hd_rtm_broker_t *b);

void hd_rtm_stats(const hd_rtm_broker_t *b, hd_rtm_stats_t *out);
/* Prometheus text (hudong_rtm_*) into buf. Returns bytes written or HD_ENOSPC. */
int hd_rtm_metrics_text(const hd_rtm_broker_t *b, char *buf, size_t cap);

/* ---- multi-node ---- */
/* An entry read from a channel's log: fanned out to this node's subscribers
 * of (app, ch) unless already seen (pos at or below the channel's). */
void hd_rtm_cluster_entry(hd_rtm_broker_t *b, const char *app, const char *ch, const hd_rtm_entry_t *e,
                          hd_time_t now);
/* Another node wants the session with this resume token (its client
 * resumed there): if this node holds it, the session leaves this node (its
 * connection, if any, is closed with 4009; no presence event: the user moves)
 * and *out gets its state (malloc'd JSON, *len) for hd_rtm_cluster_import on
 * node `to`. Returns 0, HD_ENOTFOUND (not here), HD_ENOMEM. */
int hd_rtm_cluster_export(hd_rtm_broker_t *b, const char *resume, const char *to, char **out, size_t *len,
                          hd_time_t now);
/* The answer to cfg.cluster->resume for conn: the exported session (NULL =
 * no node has it: 410). The session continues here (welcome resumed, replay
 * of what the client lacks, then what the log has after each channel's
 * position). Returns 0 or HD_ENOTFOUND (conn gone or not waiting). */
int hd_rtm_cluster_import(hd_rtm_broker_t *b, uint64_t conn, const char *state, size_t len, hd_time_t now);

/* A peer message from session sid of node `node` to (app, to): delivered to
 * this node's sessions of `to`; the outcome goes back through
 * cfg.cluster->peer_result (at once when `to` has no session here). */
void hd_rtm_cluster_peer_in(hd_rtm_broker_t *b, const char *node, const char *sid, const char *id,
                            const char *app, const char *to, const char *body, hd_time_t now);
/* Another node's outcome of a peer message sent by this node's session sid. */
void hd_rtm_cluster_peer_result(hd_rtm_broker_t *b, const char *sid, const char *id, int delivered,
                                hd_time_t now);
/* A user attribute event made on another node: to this node's sessions of
 * the user and to its subscribers of channels chs[0..n) (where the user is
 * present), each session once. */
void hd_rtm_cluster_user_event(hd_rtm_broker_t *b, const char *app, const char *user, const char *body,
                               const char *const *chs, int n, hd_time_t now);

/* The cluster's shared state may have been lost (Redis restarted without
 * persistence): every member this node holds is written again (idempotent
 * when nothing was lost: no event is logged for a user still present). */
void hd_rtm_cluster_reassert(hd_rtm_broker_t *b, hd_time_t now);

/* Names: numeric code (400..) and reason ("bad_request") of an error code. */
int hd_rtm_err_status(hd_rtm_errcode_t c);
const char *hd_rtm_err_reason(hd_rtm_errcode_t c);

#endif
