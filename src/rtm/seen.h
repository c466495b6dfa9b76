/* The keys of the most recent cross-node messages a node took in, with their
 * outcome: the receiving half of exactly-once across nodes (docs/overlay.md
 * "RTM across nodes", "Exactly-once between nodes"). A message handed to Redis
 * can be handed over twice — a sender whose call timed out after Redis took it
 * answers 503 and its client sends the same id again — so the receiving node
 * de-duplicates on (sender's session, message id; a session id is unique in
 * the cluster and moves with its session): the first copy is
 * delivered, a later one is dropped and, when the first one's outcome is known
 * already, that outcome is answered again (the sender's retry waits for it).
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

enum { HD_RTM_SEEN_PENDING = -1, HD_RTM_SEEN_FAILED = 0, HD_RTM_SEEN_DELIVERED = 1 };

typedef struct {
  char *key;
  size_t len;
  int outcome;
} hd_rtm_seen_ent_t;

typedef struct {
  hd_map_t map; /* 16-byte digest of the key -> ring index + 1 */
  hd_rtm_seen_ent_t *ring;
  size_t cap, head, n;
  unsigned long long dropped; /* copies recognised as repeats */
} hd_rtm_seen_t;

/* cap ≥ 1. HD_EINVAL, HD_ENOMEM. */
int hd_rtm_seen_init(hd_rtm_seen_t *s, size_t cap);
void hd_rtm_seen_free(hd_rtm_seen_t *s);
/* First sight of key: remembers it (pending; the oldest key goes at the cap)
 * and returns 0. Seen before: returns 1 and *outcome (HD_RTM_SEEN_*). A key
 * over HD_RTM_SEEN_KEY_MAX or out of memory: HD_EINVAL / HD_ENOMEM (the
 * caller delivers: never lose a message to the table). */
int hd_rtm_seen_check(hd_rtm_seen_t *s, const char *key, size_t len, int *outcome);
/* Records key's outcome (HD_RTM_SEEN_FAILED / _DELIVERED) if it is still
 * there; 1 if it was, 0 if not. */
int hd_rtm_seen_settle(hd_rtm_seen_t *s, const char *key, size_t len, int outcome);

#endif
