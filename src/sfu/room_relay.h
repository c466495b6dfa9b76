/* Relaying between nodes (docs/overlay.md "Relaying"): a message on a source
 * route through other nodes, repaired per hop; and the receiving side of the
 * node link (room_relay.c). Internal to src/sfu; room_remote_feed,
 * room_remote_forward (node_internal.h) and hd_node_cluster_set_routes
 * (node.h) are its entry points from the node. */
#ifndef HD_SFU_ROOM_RELAY_H
#define HD_SFU_ROOM_RELAY_H

#include "sfu/room_remote_internal.h"

/* One message on path ps (through relays) to worker w of its destination. */
void rr_relay_send(hd_node_t *n, const hd_relay_path_t *ps, int w, uint8_t type, const uint8_t *body,
                   size_t len);
/* Keeps a message sent to p directly (its body, for p's worker w) for a
 * rescue if p's link goes bad (relay.h "rescue"; up to overlay.rescue_max). */
void rr_keep_direct(hd_node_t *n, cl_peer_t *p, int w, uint8_t type, const uint8_t *body, size_t len);
/* HOP_NACKs due on every relay stream; returns the next deadline. */
hd_time_t rr_hop_tick(hd_node_t *n, hd_time_t now);

#endif
