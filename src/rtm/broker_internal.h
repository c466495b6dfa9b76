/* RTM broker internals shared by broker.c (connections, sessions, the
 * reliable outbound window, login/resume/ack, timers) and broker_ops.c (the
 * channel, presence, attribute, lock, history and peer requests). Not a
 * public API. */
#ifndef HD_RTM_BROKER_INTERNAL_H
#define HD_RTM_BROKER_INTERNAL_H
#include <jansson.h>

#include "base/map.h"
#include "rtm/broker.h"
#include "rtm/locks.h"

#define SID_LEN 20
#define RESUME_LEN 32
#define CHAN_BUCKETS 4096
#define SEQ_RESERVE 1000 /* cseqs reserved in the store at a time */

typedef struct receipt {
  struct receipt *next, *prev; /* pending receipts, by deadline (only while !done) */
  char sender[SID_LEN + 1], id[HD_RTM_MAX_ID + 1], to[HD_RTM_MAX_USER + 1];
  char node[128];    /* cluster: the node the outcome goes to when not this one ("" = here): the
                        sender's, or the one a recipient's window entry moved from (rtm_receipt_moved_in) */
  char fwd[128];     /* cluster: the node the (local) sender's session moved to before the outcome
                        was known ("" = none): the outcome goes there (hd_rtm_cluster_export) */
  int refs;          /* window entries and nodes_pending still holding it */
  int nodes_pending; /* of refs: other nodes (or the old node, adopted) yet to answer; dropped when it is
                        done (their later answers find nothing), so only window entries keep it then */
  int done;          /* receipt or failure sent */
  hd_time_t deadline;
} receipt_t;

/* A message body shared by every window entry it went to (one per fan-out):
 * compact JSON object text without its closing '}'; each session's copy is
 * body + ,"s":N} (built when sent). */
typedef struct {
  int refs;
  size_t len;
  char text[];
} body_t;

typedef struct {
  int64_t s;
  body_t *body;
  receipt_t *rc;
  size_t len;   /* whole text with "s" */
  int err;      /* an error reply (counted in win_errs) */
  int dlv;      /* a channel/peer message: a delivery counted in the app's hd_rtm_delivery_t */
  hd_time_t t0; /* dlv: when the publish was accepted */
} out_ent_t;

struct chan;
struct ruser;

typedef struct {
  char id[HD_RTM_MAX_ID + 1];
  int64_t cseq;
} dd_ent_t;

struct app_cnt;

typedef struct sess {
  struct sess *next, *prev;   /* all sessions */
  struct sess *unext, *uprev; /* sessions of the same user (ruser_t) */
  struct sess *xnext, *xprev; /* detached sessions, by expire_at */
  struct sess *dnext;         /* doomed sessions waiting for reap() */
  struct ruser *u;
  struct app_cnt *ac; /* its app's counters (live as long as the broker) */
  char sid[SID_LEN + 1], resume[RESUME_LEN + 1];
  char app[64], user[HD_RTM_MAX_USER + 1];
  int admin;
  int writer; /* canPublishData or roomAdmin: may change a board (hd_rtm_hook_pub_t) */
  /* A token naming a room (grants.room) scopes the session (docs/rtm.md
   * "Room-scoped tokens"): only channels scope[0] ("R") and scope[1]
   * ("room:R"; "" = none), its own user attributes, peers in its room. */
  int scoped;
  char scope[2][HD_RTM_MAX_CHANNEL + 1];
  int in_exp;          /* on the detached list */
  uint64_t conn;       /* 0 = detached, waiting for a resume */
  hd_time_t expire_at; /* when detached: end of the grace period */
  int64_t next_s;      /* next session sequence number */
  out_ent_t *win;      /* ring of unacked messages (allocated on first use) */
  size_t win_cap, win_head, win_n, win_bytes;
  size_t win_errs;    /* error replies in the window (capped: docs/rtm.md "Errors") */
  struct chan **subs; /* channels (grown on demand, up to HD_RTM_MAX_SUBS) */
  int n_subs, cap_subs;
  dd_ent_t *dd; /* HD_RTM_PUB_DEDUPE recent ids, allocated on first use */
  int dd_next;
  int doomed; /* 1 overflow, 2 logout, 3 expired: reaped after the current operation */
  uint32_t mark;
} sess_t;

/* All sessions of one (app, user): peer messages and user attribute events
 * find them without scanning every session. */
typedef struct ruser {
  struct ruser *next; /* bucket chain */
  char app[64], user[HD_RTM_MAX_USER + 1];
  sess_t *sessions;
  int n;
} ruser_t;

typedef struct {
  char user[HD_RTM_MAX_USER + 1];
  int count; /* sessions of the user subscribed */
  char *state;
} member_t;

typedef struct chan {
  struct chan *next; /* bucket chain */
  char app[64], name[HD_RTM_MAX_CHANNEL + 1];
  int64_t cseq, hwm;
  hd_rtm_pos_t pos; /* cluster: the last log entry fanned out here */
  sess_t **subs;
  size_t n_subs, cap_subs;
  member_t *mem;
  size_t n_mem, cap_mem;
  int gc_pending; /* stored publishes held for the group commit: the channel stays */
} chan_t;

/* A stored publish held for the turn's group commit (docs/rtm.md "Storage"). */
typedef struct {
  sess_t *s;
  chan_t *c;
  json_t *o; /* the request (a reference): id and data point into it */
  const char *id, *data;
  int64_t ts_ms, cseq;       /* wall time at arrival; the cseq it got */
  int64_t old_cseq, old_hwm; /* the channel's before it: restored if the batch does not commit */
  int rc;                    /* msg_append's result, HD_EIO if the batch did not commit */
  hd_rtm_usage_t use;
} gc_pub_t;

/* Sessions per app (tenant): the per-app cap. Apps are the configured
 * tenants, a short list. */
typedef struct app_cnt {
  struct app_cnt *next;
  size_t n;
  hd_rtm_delivery_t dl; /* delivery accounting (broker.h) */
  char app[64];
} app_cnt_t;

typedef struct {
  uint64_t id;
  sess_t *s;
  double tokens;
  hd_time_t last;
  /* cluster: a resume asked of the other nodes (cfg.cluster->resume) */
  int resuming;
  int64_t resume_last;
  char resume_id[HD_RTM_MAX_ID + 1];
} conn_t;

struct hd_rtm_broker {
  hd_rtm_config_t cfg;
  const hd_rtm_cluster_t *cl; /* cfg.cluster: NULL on one node */
  hd_map_t conns;             /* conn id (8 bytes) -> conn_t */
  hd_map_t by_sid;            /* sid -> sess_t */
  hd_map_t by_resume;         /* resume token -> sess_t */
  sess_t *sessions;
  size_t n_sessions;
  app_cnt_t *apps;
  sess_t *doomed;              /* to reap */
  sess_t *exp_head, *exp_tail; /* detached sessions, earliest expiry first */
  ruser_t **ubuckets;          /* (app, user) -> ruser_t, chained, grows */
  size_t n_ubuckets, n_users;
  char *scratch; /* a window entry's whole text, when sent */
  size_t scratch_cap;
  chan_t *buckets[CHAN_BUCKETS];
  size_t n_chans;
  hd_rtm_locks_t locks;
  receipt_t *receipts, *receipts_tail; /* pending (not done) receipts, earliest deadline first */
  uint32_t mark;
  hd_rtm_stats_t st;
  hd_time_t now; /* of the call being handled (delivery latency) */
  gc_pub_t *gc;  /* held stored publishes (cfg.group_commit), at most HD_RTM_GC_MAX */
  int gc_n, gc_flushing;
};

/* A parsed request: the JSON object, its type and id. */
typedef struct {
  json_t *o;
  const char *type, *id;
} req_t;

/* ---- broker.c ---- */
/* Group commit: commits the held stored publishes and sends their results
 * (no-op when none, or while it runs). Called before anything else the
 * broker does that is not a stored publish or an ack, so the outputs keep
 * the order of a broker without it. */
void rtm_gc_flush(hd_rtm_broker_t *b);
/* broker_gc.c: is (s, id) held; hold one (0, or HD_ENOMEM: publish it alone) */
int rtm_gc_holds(const hd_rtm_broker_t *b, const sess_t *s, const char *id);
int rtm_gc_hold(hd_rtm_broker_t *b, sess_t *s, const req_t *r, chan_t *c, const char *data, hd_time_t now);
/* broker_ops.c, shared with broker_gc.c */
void rtm_channel_deliver_as(hd_rtm_broker_t *b, chan_t *c, json_t *o, int dlv);
void rtm_dedupe_add(sess_t *s, const char *id, int64_t cseq);
void rtm_store_refused(hd_rtm_broker_t *b, sess_t *s, const req_t *r, const hd_rtm_store_limits_t *lim,
                       const hd_rtm_usage_t *u);
hd_time_t rtm_wall_ms(const hd_rtm_broker_t *b, hd_time_t now);
/* Sends a sequenced message (o gets "s"; o is consumed) to session s. rc: a
 * peer receipt riding on it, or NULL. */
void rtm_push(hd_rtm_broker_t *b, sess_t *s, json_t *o, receipt_t *rc);
/* Same with a pre-serialised body (compact JSON object text), for fan-out. */
void rtm_push_text(hd_rtm_broker_t *b, sess_t *s, const char *body, size_t len, receipt_t *rc);
/* Replies "ok" (extra members from o, may be NULL; consumed). */
void rtm_ok(hd_rtm_broker_t *b, sess_t *s, const req_t *r, json_t *o);
/* Replies "error"; extra members from extra (may be NULL; consumed). */
void rtm_err(hd_rtm_broker_t *b, sess_t *s, const char *id, hd_rtm_errcode_t code, const char *msg,
             json_t *extra);
/* Same, for a result that is not a reply to bad input (a peer message's
 * failure): never suppressed by the unacked-error cap. */
void rtm_err_result(hd_rtm_broker_t *b, sess_t *s, const char *id, hd_rtm_errcode_t code, const char *msg,
                    json_t *extra);
/* Error replies a session may have unacked before more are suppressed. */
size_t rtm_err_cap(const hd_rtm_broker_t *b);
sess_t *rtm_session_by_sid(hd_rtm_broker_t *b, const char *sid);
/* Marks s to be ended by reap() (kind: 1 overflow, 2 logout, 3 expired). */
void rtm_doom(hd_rtm_broker_t *b, sess_t *s, int kind);
/* The sessions of (app, user), or NULL. */
ruser_t *rtm_user_get(hd_rtm_broker_t *b, const char *app, const char *user);
/* Same fan-out as rtm_push_text with a shared body (refs taken per entry). */
void rtm_push_body(hd_rtm_broker_t *b, sess_t *s, body_t *body, receipt_t *rc);
/* Same for a channel or peer message: one delivery owed to s (counted). */
void rtm_push_delivery(hd_rtm_broker_t *b, sess_t *s, body_t *body, receipt_t *rc);
/* A body from compact JSON object text (NULL on bad input / no memory);
 * refs = 1 for the caller, who drops it with rtm_body_unref. */
body_t *rtm_body_new(const char *json, size_t len);
void rtm_body_unref(body_t *body);
/* Ends the sessions doomed during the current operation. */
void rtm_reap(hd_rtm_broker_t *b);

/* ---- broker_ops.c ---- */
chan_t *rtm_chan_get(hd_rtm_broker_t *b, const char *app, const char *name, int create);
void rtm_chan_maybe_free(hd_rtm_broker_t *b, chan_t *c);
/* Session leaves a channel (unsub, logout, drop); ev "leave" or "timeout". */
void rtm_chan_leave(hd_rtm_broker_t *b, sess_t *s, chan_t *c, const char *ev);
/* Handles a request of a logged-in session; returns 0 if the type was known. */
int rtm_dispatch(hd_rtm_broker_t *b, sess_t *s, const req_t *r, hd_time_t now);
/* A window entry carrying a receipt was acked (delivered=1) or dropped (0). */
void rtm_receipt_settle(hd_rtm_broker_t *b, receipt_t *rc, int delivered);
/* Cluster: session sid is moving to node `to`: its pending peer receipts
 * answer there from now on (rtm_receipt_adopt on that node waits for it);
 * each one's id and recipient go into arr as [id, to]. */
void rtm_receipts_forward(hd_rtm_broker_t *b, const char *sid, const char *to, json_t *arr);
/* Cluster: a receipt of session sid (just imported) whose outcome its old
 * node forwards (hd_rtm_cluster_peer_result), due at now + peer_timeout. */
int rtm_receipt_adopt(hd_rtm_broker_t *b, const char *sid, const char *id, const char *to, hd_time_t now);
/* Cluster: a recipient's window entry carrying rc leaves with its session for
 * another node: if rc is still pending, the entry's reference becomes that
 * node's (its ack there comes back through hd_rtm_cluster_peer_result) and 1
 * is returned (the entry takes rc's identity along); else the reference is
 * dropped as for an entry given up and 0 is returned. */
int rtm_receipt_moves(hd_rtm_broker_t *b, receipt_t *rc);
/* Cluster: the receipt of a window entry imported from node `from` (see
 * rtm_receipt_moves): the entry's ack (or loss) here is answered to `from`,
 * as for a peer message from another node. NULL if out of memory. */
receipt_t *rtm_receipt_moved_in(hd_rtm_broker_t *b, const char *from, const char *sid, const char *id,
                                const char *to, hd_time_t now);
void rtm_receipts_tick(hd_rtm_broker_t *b, hd_time_t now);
/* Frees a receipt the broker is destroying (no callbacks). */
void rtm_receipts_free_all(hd_rtm_broker_t *b);
hd_time_t rtm_receipts_next(const hd_rtm_broker_t *b);
void rtm_locks_tick(hd_rtm_broker_t *b, hd_time_t now);
int rtm_locks_load(hd_rtm_broker_t *b, hd_time_t now);
void rtm_free_all_chans(hd_rtm_broker_t *b);
/* Cluster: s joins channel c (already open) as a subscriber; presence as a
 * sub; moved: the user's presence came from node `from` (import), which
 * left it when from_left. Returns 0 or HD_ENOMEM/HD_ENOSPC. */
int rtm_chan_join(hd_rtm_broker_t *b, sess_t *s, chan_t *c, const char *from, int from_left);
/* Cluster: s leaves c without any presence change in the log (its session
 * moves to another node); returns 1 if it was the user's last local session
 * in c (the importing node then takes the node's presence over). */
int rtm_chan_move_out(hd_rtm_broker_t *b, sess_t *s, chan_t *c);
/* Cluster: pushes c's log entries in (after, upto] to s only. */
int rtm_chan_fill(hd_rtm_broker_t *b, sess_t *s, chan_t *c, hd_rtm_pos_t after, hd_rtm_pos_t upto);
/* Cluster: catches c up to `upto` from the log (fan-out to its subscribers). */
int rtm_chan_catch_up(hd_rtm_broker_t *b, chan_t *c, hd_rtm_pos_t upto);

#endif
