/* Cluster node registry, sans-IO (issue 15 item 1; docs/overlay.md "Registry").
 *
 * Each node of a cluster publishes one entry (who it is, where clients and
 * other nodes reach it, how loaded it is, which rooms it holds) in Redis under
 * a key with a TTL, refreshed by a heartbeat; the entries that exist are the
 * nodes that are alive. This file is the part that needs no Redis: the entry's
 * JSON encoding and decoding, and the peer table a node keeps from the last
 * registry read (which nodes joined, which left). The Redis glue is
 * cluster/cluster.{h,c}. */
#ifndef HD_CLUSTER_REGISTRY_H
#define HD_CLUSTER_REGISTRY_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

#define HD_CLUSTER_ID_MAX 64 /* node id, labels are "k=v,k=v" */
#define HD_CLUSTER_REGION_MAX 32
#define HD_CLUSTER_LABELS_MAX 256
#define HD_CLUSTER_URL_MAX 256
#define HD_CLUSTER_MAX_MEDIA 16   /* media addresses (one per media worker) */
#define HD_CLUSTER_ADDR_MAX 64    /* one "ip:port" */
#define HD_CLUSTER_MAX_ROOMS 1024 /* rooms listed per entry; more = "rooms_truncated" */
#define HD_CLUSTER_MAX_NODES 256  /* peers a node keeps; more are ignored (logged) */
#define HD_CLUSTER_ENTRY_MAX (HD_CLUSTER_MAX_ROOMS * 140 + 8192) /* encoded entry cap */

/* One node as the registry shows it. Rooms are kept as 64-bit hashes of
 * (app, room) (hd_cluster_room_hash): the table only answers "does node X
 * hold room R", for routing. */
/* One measured link of a node, as its entry publishes it (docs/overlay.md
 * "Link measurement": the "links" member). */
#define HD_CLUSTER_MAX_LINKS 32 /* links an entry lists (the route selection's node cap) */
typedef struct {
  char peer[HD_CLUSTER_ID_MAX];
  int up;
  double rtt_ms, loss, jitter_ms; /* smoothed RTT; forward loss 0..1; forward jitter */
} hd_cluster_link_t;

typedef struct hd_cluster_node {
  char id[HD_CLUSTER_ID_MAX];
  char region[HD_CLUSTER_REGION_MAX];
  char labels[HD_CLUSTER_LABELS_MAX];
  char url[HD_CLUSTER_URL_MAX];                          /* announced HTTP(S) URL */
  char media[HD_CLUSTER_MAX_MEDIA][HD_CLUSTER_ADDR_MAX]; /* "ip:port" per worker */
  int n_media;
  int64_t capacity;     /* max_sessions */
  int64_t sessions;     /* WebRTC sessions (what max_sessions caps) */
  int64_t participants; /* /rtc participants */
  int64_t rooms;        /* rooms held (may exceed n_room_hashes) */
  int64_t bitrate_bps;  /* forwarded (sent) bit rate over the last heartbeat */
  int cpu_pct;          /* process CPU over the last heartbeat, % of one core; -1 unknown */
  int draining;         /* 1: takes no new clients */
  int link_ver;         /* its node-link protocol version ("link"; 1 when absent: before version 2,
                           docs/overlay.md "The link protocol"); 0 in an entry to encode = not written */
  int link_ver_bad;     /* decode: "link" was there but not an integer >= 1 (taken as 1) */
  int64_t ts_ms;        /* wall clock of the heartbeat (informational) */
  uint64_t room_hashes[HD_CLUSTER_MAX_ROOMS];
  int n_room_hashes;
  hd_cluster_link_t links[HD_CLUSTER_MAX_LINKS]; /* this node's links to its peers */
  int n_links;
} hd_cluster_node_t;

/* The hash a room is listed under (app and room name, FNV-1a 64). */
uint64_t hd_cluster_room_hash(const char *app, const char *room);

/* Encodes n as the registry entry's JSON text; room_names (n_rooms "app/room"
 * strings, the names behind n->room_hashes) are written as names so the entry
 * stays readable with redis-cli. Returns the length or HD_ENOSPC/HD_ENOMEM. */
int hd_cluster_node_encode(const hd_cluster_node_t *n, const char *const *room_names, int n_rooms, char *out,
                           size_t cap);
/* Decodes an entry. HD_EPROTO (why says what) for anything not an entry. */
int hd_cluster_node_decode(const char *text, size_t len, hd_cluster_node_t *out, char *why, size_t whycap);

/* 1 if labels ("k=v,k=v") contains every "k=v" of want ("" = any). */
int hd_cluster_labels_match(const char *labels, const char *want);
/* 1 if the node holds (app, room) per its entry. */
int hd_cluster_node_has_room(const hd_cluster_node_t *n, uint64_t room_hash);
/* 1 if the node takes no new client: draining, or its sessions or
 * participants at its capacity. */
int hd_cluster_node_full(const hd_cluster_node_t *n);
/* A node's load in [0, 1+]: max(sessions, participants) / capacity. */
double hd_cluster_node_load(const hd_cluster_node_t *n);

/* ---- the peer table: the other nodes as of the last registry read ---- */
typedef struct {
  hd_cluster_node_t *nodes; /* [HD_CLUSTER_MAX_NODES] */
  int n;
  hd_time_t updated; /* when the last read succeeded; HD_TIME_NEVER-like 0 = never */
  hd_time_t ttl;     /* a table older than this is empty (the entries may be gone) */
} hd_cluster_peers_t;

/* What changed in one update: ids that appeared and ids that vanished. */
typedef void (*hd_cluster_peer_fn)(void *ud, const char *id, int joined);

int hd_cluster_peers_init(hd_cluster_peers_t *p, hd_time_t ttl);
void hd_cluster_peers_free(hd_cluster_peers_t *p);
/* Replaces the table with nodes[0..n) read at now (the node's own id skipped),
 * calling fn for each id that joined or left. Returns the number of peers. */
int hd_cluster_peers_update(hd_cluster_peers_t *p, const hd_cluster_node_t *nodes, int n, const char *self_id,
                            hd_time_t now, hd_cluster_peer_fn fn, void *ud);
/* The peers known alive at now: the table if it was read within ttl, else
 * none (every entry may have expired since: the node cannot tell, so it
 * counts only on itself). Calls fn for each id dropped this way. */
int hd_cluster_peers_live(hd_cluster_peers_t *p, hd_time_t now, hd_cluster_peer_fn fn, void *ud);

#endif
