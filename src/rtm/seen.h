/* The keys of the most recent cross-node messages a node took in, with their
 * outcome: the receiving half of exactly-once across nodes (docs/overlay.md
 * "RTM across nodes", "Exactly-once between nodes"). A message handed to Redis
 * can be handed over twice — a sender whose call timed out after Redis took it
 * answers 503 and its client sends the same id again — so the receiving node
 * de-duplicates on (sender's session, message id; a session id is unique in
 * the cluster and moves with its session): the first copy is
 * delivered, a later one is dropped and, when the first one's outcome is known
 * already, that outcome is answered again (the sender's retry waits for it).
 * A later copy that comes while the outcome is still pending is answered
 * when it is known, to the node that copy came from: a retry may come from
 * another node than the first copy (the sender's session moved there after
 * its first attempt got 503), and that node waits for its own answer (it
 * answered 504 at its deadline before, although the message was delivered).
 *
 * Capped (rtm.cluster_dedupe, default HD_RTM_SEEN_DEFAULT): the oldest key
 * goes first. A copy that arrives after its key was pushed out is delivered
 * again — at the default, after 4096 newer messages to the node, i.e. far
 * later than any retry (a client retries within its 15 s request timeout).
 * Sans-IO: no clock, no socket. */
#ifndef HD_RTM_SEEN_H
#define HD_RTM_SEEN_H
#include <stddef.h>

#include "base/map.h"

#define HD_RTM_SEEN_DEFAULT 4096
#define HD_RTM_SEEN_KEY_MAX 512 /* node (127) + session + id (64) with separators fit */
/* Origin nodes of later copies remembered per key while its outcome is
 * pending, besides the first copy's own (kept apart: its node is answered by
 * the caller and takes no slot). A session's retries come from at most a few
 * nodes; one beyond this is counted in `unanswered` (exported as
 * hudong_rtm_cluster_peer_unanswered_total) and its sender answers 504 at
 * its deadline. */
#define HD_RTM_SEEN_WAITERS 4
#define HD_RTM_SEEN_ORIGIN_MAX 128 /* an origin node id, NUL included */

enum { HD_RTM_SEEN_PENDING = -1, HD_RTM_SEEN_FAILED = 0, HD_RTM_SEEN_DELIVERED = 1 };

typedef struct {
  char *key;
  size_t len;
  int outcome;
  char *first;   /* the first copy's origin (NULL: none, too long or no memory) */
  char *wait;    /* origins waiting for the outcome: n_wait NUL-terminated ids back to back (NULL: none) */
  size_t n_wait; /* ... their count */
} hd_rtm_seen_ent_t;

typedef struct {
  hd_map_t map; /* 16-byte digest of the key -> ring index + 1 */
  hd_rtm_seen_ent_t *ring;
  size_t cap, head, n;
  unsigned long long dropped;    /* copies recognised as repeats */
  unsigned long long unanswered; /* origins of repeats never answered: not remembered (cap, memory) or
                                  * dropped with their pending key when it was pushed out */
} hd_rtm_seen_t;

/* Called by hd_rtm_seen_settle for each origin to answer. */
typedef void (*hd_rtm_seen_origin_fn)(void *ud, const char *origin);

/* cap ≥ 1. HD_EINVAL, HD_ENOMEM. */
int hd_rtm_seen_init(hd_rtm_seen_t *s, size_t cap);
void hd_rtm_seen_free(hd_rtm_seen_t *s);
/* First sight of key (a copy from node `origin`): remembers it (pending; the
 * oldest key goes at the cap) and returns 0. Seen before: returns 1 and
 * *outcome (HD_RTM_SEEN_*); while that is HD_RTM_SEEN_PENDING, origin is
 * remembered (once per node; not the first copy's origin, which the caller
 * answers) to be answered by hd_rtm_seen_settle — the caller answers a known
 * outcome itself, at once. A key over
 * HD_RTM_SEEN_KEY_MAX or out of memory: HD_EINVAL / HD_ENOMEM (the caller
 * delivers: never lose a message to the table). */
int hd_rtm_seen_check(hd_rtm_seen_t *s, const char *key, size_t len, const char *origin, int *outcome);
/* Records key's outcome (HD_RTM_SEEN_FAILED / _DELIVERED) if it is still
 * there, and calls fn(ud, origin) once for each origin that sent a copy
 * while it was pending, except `answered` (the first copy's origin, which
 * the caller answers itself; NULL = none), then forgets them. 1 if the key
 * was there, 0 if not. fn may be NULL. */
int hd_rtm_seen_settle(hd_rtm_seen_t *s, const char *key, size_t len, int outcome, const char *answered,
                       hd_rtm_seen_origin_fn fn, void *ud);

#endif
