/* The node's link to the cluster's Redis (issue 15 item 1; docs/overlay.md):
 * one hiredis asynchronous connection on the control loop (through a libuv
 * event adapter of our own: the one hiredis 0.14 ships drops poll errors)
 * that registers this node with a TTL heartbeat and reads the other nodes'
 * entries into a peer table (cluster/registry.h).
 *
 * Redis unreachable or restarting: the node goes on serving; the link logs
 * once (what to check), retries with backoff (250 ms doubling to 2 s) and
 * registers again as soon as Redis answers. Nothing here blocks the loop
 * except the name lookup of the Redis host inside hiredis's connect (use an
 * IP address to avoid even that). */
#ifndef HD_IO_CLUSTER_REDIS_H
#define HD_IO_CLUSTER_REDIS_H
#include <stddef.h>
#include <stdint.h>

#include "cluster/redis_url.h"
#include "cluster/registry.h"

struct uv_loop_s;
typedef struct hd_cluster_redis hd_cluster_redis_t;

/* Writes this node's current registry entry (hd_cluster_node_encode) into
 * out; returns its length or a negative HD_E*. Called once per heartbeat. */
typedef int (*hd_cluster_entry_fn)(void *ud, char *out, size_t cap);
/* A room finished because the node that last held it is gone (killed, its
 * registry key expired: docs/overlay.md "Room events"): room is
 * "<app>/<room>", sid its cluster-wide sid. One node of the cluster gets it. */
typedef void (*hd_cluster_room_gone_fn)(void *ud, const char *room, const char *sid);

/* This node registered in Redis: first = 1 the first time in this process,
 * 0 when it registers again after losing Redis. The caller answers with
 * hd_cluster_redis_reconcile (the rooms it holds now). */
typedef void (*hd_cluster_registered_fn)(void *ud, int first);
/* What hd_cluster_redis_reconcile found for one room (docs/overlay.md
 * "Coming back after an outage"): room "<app>/<room>", local the sid this
 * node's room has, sid the cluster's now. */
enum {
  HD_CLUSTER_BACK_READDED = 1,   /* this node was no longer listed for the room (reaped, Redis lost its
                                    data): listed again; take `sid` if it is not `local` */
  HD_CLUSTER_BACK_RESTARTED = 2, /* the cluster had finished this room (room_finished fired while this
                                    node was cut off): it runs again under `local`: fire room_started */
};
typedef void (*hd_cluster_room_back_fn)(void *ud, const char *room, const char *local, const char *sid,
                                        int status);

typedef struct {
  hd_redis_url_t url;
  const char *node_id;
  int heartbeat_ms;  /* default 1000 */
  int ttl_ms;        /* default 3000: a node silent this long is gone */
  int room_ttl_ms;   /* room keys' TTL; <= 0: HD_CLUSTER_ROOM_TTL_MS */
  int reap_grace_ms; /* < 0: HD_CLUSTER_REAP_GRACE_MS; 0 = reap at once */
  hd_cluster_entry_fn entry;
  hd_cluster_room_gone_fn room_gone;   /* may be NULL */
  hd_cluster_registered_fn registered; /* may be NULL */
  hd_cluster_room_back_fn room_back;   /* may be NULL */
  /* may be NULL: the peer table was read again (hd_cluster_redis_peers is
   * fresh now, e.g. a room another node started; not a heartbeat later) */
  void (*peers_read)(void *ud);
  void *ud;
} hd_cluster_redis_config_t;

/* Keys (docs/overlay.md "Key layout"). */
#define HD_CLUSTER_KEY_PREFIX "hudong:"
#define HD_CLUSTER_NODES_KEY HD_CLUSTER_KEY_PREFIX "nodes"
#define HD_CLUSTER_NODE_KEY HD_CLUSTER_KEY_PREFIX "node:"
#define HD_CLUSTER_ROOM_KEY HD_CLUSTER_KEY_PREFIX "room:"
#define HD_CLUSTER_NODEROOMS_KEY HD_CLUSTER_KEY_PREFIX "noderooms:"
/* The room keys (hudong:room:*, hudong:noderooms:*) expire this long after
 * the last node holding the room stopped refreshing them (a crashed cluster
 * leaves nothing behind); each node refreshes its rooms' keys every sixth
 * of it (5 s of the default). The default; config "cluster.room_ttl_ms"
 * (docs/overlay.md "Key layout", docs/operations.md "Cluster timing"). */
#define HD_CLUSTER_ROOM_TTL_MS 30000
/* A room finished because a node was taken for dead leaves
 * hudong:room:<app>/<room>:finished = its sid this long, so that the node,
 * if it was only cut off from Redis and comes back still holding the room,
 * knows room_finished went out for it and fires room_started again. */
#define HD_CLUSTER_FINISHED_TTL_MS 3600000
/* One room this node holds, for hd_cluster_redis_reconcile. */
#define HD_CLUSTER_ROOM_NAME_MAX 200 /* "app/room" */
typedef struct {
  char room[HD_CLUSTER_ROOM_NAME_MAX];
  char sid[24];
} hd_cluster_held_t;
/* A node whose registry key has expired is no longer a peer at once (routes,
 * media), but its rooms are cleaned up (and those it leaves empty finished)
 * only when the key has stayed gone this much longer, as seen by the node
 * that reaps: a live node whose Redis link blipped past the 3 s key TTL
 * re-registers within it and keeps its rooms (one cut off longer comes
 * back through hd_cluster_redis_reconcile). The default; config
 * "cluster.reap_grace_ms". */
#define HD_CLUSTER_REAP_GRACE_MS 5000

/* Starts the link (the first connect is attempted at once; failing to reach
 * Redis is not an error here). HD_ENOMEM or HD_EINVAL. */
int hd_cluster_redis_start(hd_cluster_redis_t **out, struct uv_loop_s *loop,
                           const hd_cluster_redis_config_t *cfg);
/* Deregisters (best effort, bounded to 500 ms of the loop) and frees; run the
 * loop afterwards so that its handles close. NULL is fine. */
void hd_cluster_redis_stop(hd_cluster_redis_t *r);
/* The live peers (not this node) at now; the table is empty once the last
 * successful read is older than the TTL. */
const hd_cluster_peers_t *hd_cluster_redis_peers(hd_cluster_redis_t *r);
/* Writes the entry now instead of at the next heartbeat (a change the others
 * must see soon: draining); nothing when Redis is down or a heartbeat is in
 * flight (the next one carries it). */
void hd_cluster_redis_beat_now(hd_cluster_redis_t *r);
/* 1 while registered (the last heartbeat was answered). */
int hd_cluster_redis_up(const hd_cluster_redis_t *r);
/* Room events once per cluster (docs/overlay.md "Room events"): this node
 * starts (started = 1) or stops holding room app/room whose local sid is
 * `sid`. cb runs once, later, with fire = 1 when this node is the first
 * (start) or the last (stop) node holding the room, 0 when not, -1 when Redis
 * gave no answer (connection lost: the caller decides alone); sid is the
 * room's cluster-wide sid (the first node's), lent for the call. HD_ESTATE
 * when not registered in Redis now (cb will not run), HD_ENOMEM, HD_EIO. */
typedef void (*hd_cluster_room_cb)(void *ud, int fire, const char *sid);
int hd_cluster_redis_room_event(hd_cluster_redis_t *r, const char *app, const char *room, const char *sid,
                                int started, hd_cluster_room_cb cb, void *ud);
/* The rooms ("<app>/<room>", n strings `stride` bytes apart from `rooms`)
 * this node holds now: their Redis keys' TTLs are refreshed, all of them, in
 * scripts of up to 512 rooms (at most every sixth of the room TTL; call it
 * every heartbeat). */
void hd_cluster_redis_rooms_alive(hd_cluster_redis_t *r, const char *rooms, size_t stride, int n);
/* Reconciles Redis with the rooms this node holds (rooms[0..n), each with
 * its settled sid), after hd_cluster_registered_fn said it (re-)registered:
 * it is listed again in each room's node set and in its
 * hudong:noderooms:<id> (a node cut off longer than the registry TTL plus
 * the reap grace was reaped by the others), a room without a sid key takes
 * this node's, and it leaves the rooms Redis still lists for it that it no
 * longer holds. What needs the caller (a sid to take, a room_started to
 * fire) comes back through room_back. complete = 0: rooms is not every room
 * held (the caller's list was capped): no pruning then, since a room left
 * out would be taken for one let go. HD_ESTATE when not
 * registered, HD_ENOMEM, HD_EIO. */
int hd_cluster_redis_reconcile(hd_cluster_redis_t *r, const hd_cluster_held_t *rooms, int n, int complete);
/* Prometheus lines (hudong_cluster_*); returns the length written. */
int hd_cluster_redis_metrics_text(hd_cluster_redis_t *r, char *out, size_t cap);

#endif
