/* What room_remote.c (a room across nodes: state, stand-ins, data, upkeep)
 * and room_relay.c (media and messages arriving from other nodes, relaying
 * through other nodes) share: the per-node and per-room cluster state, and
 * the sending and state helpers both use. Internal to src/sfu. */
#ifndef HD_SFU_ROOM_REMOTE_INTERNAL_H
#define HD_SFU_ROOM_REMOTE_INTERNAL_H

#include <sys/socket.h>

#include "cluster/registry.h"
#include "overlay/link.h"
#include "overlay/link_bwe.h"
#include "overlay/link_meter.h"
#include "overlay/link_rel.h"
#include "overlay/relay.h"
#include "sfu/node_internal.h"
#include "sfu/rooms_internal.h"

#define CL_TICK HD_MS(100)
#define CL_HELLO_INTERVAL HD_MS(250)
#define CL_DEAD_AFTER HD_MS(1500)
#define CL_WANTS_TTL HD_SEC(2)
#define CL_REQ_INTERVAL HD_MS(300)
#define CL_MAX_RNODES 32                    /* other nodes per room */
#define CL_HOP_STREAMS HD_CLUSTER_MAX_MEDIA /* relay streams received per peer: one per sending worker */
#define CL_HOP_IDLE HD_SEC(5)               /* a relay stream silent this long may be replaced */
#define CL_DEDUP 64                         /* sources (publisher x track) de-duplicated per room */

/* One relay stream arriving from a peer (a hop's sending worker): its
 * per-hop repair state and where to send its HOP_NACKs. */
typedef struct {
  int used;
  uint16_t stream;
  hd_hop_rx_t rx;
  struct sockaddr_storage from;
  int have_from;
  int from_lane; /* the sending worker there (its lane): the HOP_NACKs' destination worker */
} hop_in_t;

typedef struct {
  int used;
  char id[HD_LINK_ID_MAX];
  int listed; /* in the last registry read */
  hd_link_peer_t link;
  hd_link_reasm_t reasm;
  struct sockaddr_storage addr[HD_CLUSTER_MAX_MEDIA];
  socklen_t addr_len[HD_CLUSTER_MAX_MEDIA];
  int n_addr;
  uint64_t *rooms;
  int n_rooms;
  /* the link's measurement (docs/overlay.md "Link measurement"): every
   * worker answers probes, the measuring worker also sends them */
  hd_link_meter_t meter;
  /* relaying (docs/overlay.md "Relaying"): how messages to this node travel,
   * what this worker sent to it as a next hop (for its HOP_NACKs) and the
   * relay streams it sends here (allocated at the first one) */
  hd_relay_route_t route;
  hd_hop_tx_t hop_tx; /* one lane (hop stream) per worker of the peer this worker sends to */
  hop_in_t *hop_in;   /* [CL_HOP_STREAMS] */
  /* messages this worker sent to it directly, kept (as 1-hop relay bodies,
   * overlay.rescue_max of them) to go again on the second path if the link
   * goes bad: only while a second path exists */
  hd_hop_tx_t direct_tx;
  int link_bad; /* the control thread's word: this node's link to it is suspect or down */
  uint64_t relay_sent, relay_forwarded, relay_received, dedup_dropped, dedup_video;
  uint64_t relay_detoured; /* forwarded round a down link to it, on this node's own route */
  uint64_t relay_rescued;  /* sent into its link shortly before the link went bad, sent again round it */
  hd_link_bwe_t *bwe;      /* bandwidth of the link (room_link_bwe.c), allocated at its first datagram */
} cl_peer_t;

struct node_cluster {
  hd_link_self_t self;
  int measure;          /* this worker probes every peer (one worker per node) */
  hd_time_t meter_next; /* the earliest meter deadline (0: recompute at the next tick) */
  cl_peer_t peers[HD_CLUSTER_MAX_NODES];
  uint64_t rx_dropped, tx_dropped;
  uint16_t
      stream; /* this worker's relay stream ids: stream + lane (per-hop sequence numbers are per stream) */
  int worker; /* this worker's index (its link lane) */
  int rescue_max;     /* overlay.rescue_max, taken at init */
  hd_time_t hop_next; /* the earliest HOP_NACK deadline of any relay stream */
  hd_time_t bwe_next; /* the earliest arrival report due (room_link_bwe.c) */
};

typedef struct {
  uint64_t peer;      /* id hash */
  hd_time_t last_rx;  /* last message about this room from it (0 = none yet) */
  uint32_t their_ver; /* version of its state we applied (0 = none) */
  hd_time_t req_at;
  hd_link_want_t wants[HD_LINK_MAX_WANTS]; /* what it wants from our publishers */
  int n_wants;
  hd_time_t wants_at;
  hd_link_want_t sent_wants[HD_LINK_MAX_WANTS]; /* what we asked it for last */
  int n_sent_wants;
  /* reliable data messages to and from it (overlay/link_rel.h), set up on first use */
  int rel_on;
  hd_link_rel_t rel;
} rnode_t;

struct room_cluster {
  uint64_t hash;
  rnode_t nodes[CL_MAX_RNODES];
  int n_nodes;
  int dirty;
  uint32_t version;
  uint64_t state_hash;
  char *state; /* our last state JSON */
  size_t state_len;
  uint32_t msg_id;
  hd_time_t next_tick, next_hello;
  /* media that may arrive twice (a route change, duplicate audio, a repair
   * racing its original) reaches the room once: per origin x publisher x track */
  struct {
    uint64_t origin;
    uint32_t pub;
    uint8_t in_idx;
    hd_dedup_t d;
  } dd[CL_DEDUP];
  int n_dd, dd_next;
  uint64_t data_dropped; /* reliable data messages the link's window could not take */
};

typedef struct {
  hd_node_t *n;
  hd_participant_t *p;
} link_ud_t;

static inline cl_peer_t *rr_peer_by_hash(struct node_cluster *c, uint64_t h) {
  for (int i = 0; i < HD_CLUSTER_MAX_NODES; i++)
    if (c->peers[i].used && c->peers[i].link.id_hash == h) return &c->peers[i];
  return NULL;
}

/* ---- sending (room_remote.c) ---- */

/* Reserves a datagram and returns where its body goes (NULL: the queue is full, counted). */
uint8_t *rr_send_begin(hd_node_t *n, size_t *cap);
/* Seals the reserved datagram (body written at HD_LINK_HDR_LEN) for peer p's
 * worker dst and queues it to `to` (that worker's address). */
void rr_seal_commit(hd_node_t *n, cl_peer_t *p, const struct sockaddr *to, int dst, uint8_t type,
                    size_t body_len);
/* Sends the reserved datagram's body to p along p's route (directly, relayed or duplicated). */
void rr_send_commit_route(hd_node_t *n, cl_peer_t *p, const hd_room_t *r, uint8_t type, size_t body_len,
                          int audio);
void rr_send_commit(hd_node_t *n, cl_peer_t *p, const hd_room_t *r, uint8_t type, size_t body_len);
/* One small message to an explicit address (meter probes and echoes,
 * HOP_NACKs), that of p's worker dst. */
void rr_send_to(hd_node_t *n, cl_peer_t *p, const struct sockaddr *to, int dst, uint8_t type,
                const uint8_t *body, size_t body_len);
void rr_send_small(hd_node_t *n, cl_peer_t *p, const hd_room_t *r, uint8_t type, const uint8_t *body,
                   size_t len);
/* Our room state JSON to p (fragments, unacknowledged: HELLO versions repair a loss). */
void rr_send_state(hd_node_t *n, hd_room_t *r, cl_peer_t *p);

/* ---- the room's other nodes and their participants (room_remote.c) ---- */

hd_participant_t *rr_remote_find(hd_room_t *r, uint64_t node, uint32_t pub_hash, const char *sid);
rnode_t *rr_rnode_find(hd_room_t *r, uint64_t peer);
rnode_t *rr_rnode_get(hd_room_t *r, uint64_t peer);
/* The reliable message stream to node x (set up on first use) and its due sends. */
hd_link_rel_t *rr_rel_of(hd_node_t *n, hd_room_t *r, rnode_t *x, hd_time_t now);
void rr_rel_flush(hd_node_t *n, hd_room_t *r, rnode_t *x, hd_time_t now);
/* A JSON message from `node` about room r: its state, a data message or an admin action. */
void rr_apply_state(hd_node_t *n, hd_room_t *r, uint64_t node, const uint8_t *msg, size_t len, hd_time_t now);
/* Whether r has participants connected to this node. */
int rr_has_local(const hd_room_t *r);
void rr_on_layers(hd_room_t *r, uint64_t node, const hd_link_layers_t *m, hd_time_t now);

/* ---- bandwidth per link (room_link_bwe.c; overlay/link_bwe.h) ---- */

/* dg (len bytes) was sealed for p and queued to `to`. */
void rr_bwe_sent(hd_node_t *n, cl_peer_t *p, const struct sockaddr *to, const uint8_t *dg, size_t len);
/* A datagram from p opened (dg: its header, pl: its body). 1 when it was a
 * BWE_FB (taken here), 0 for the caller to handle. */
int rr_bwe_received(hd_node_t *n, cl_peer_t *p, uint8_t type, const uint8_t *dg, const uint8_t *pl,
                    size_t pl_len, const struct sockaddr *from, hd_time_t now);
/* Sends the due arrival reports; returns the next deadline. */
hd_time_t rr_bwe_tick(hd_node_t *n, hd_time_t now);
void rr_bwe_stats_add(const cl_peer_t *p, hd_time_t now, hd_link_bwe_stats_t *acc);
void rr_bwe_free(cl_peer_t *p);

#endif
