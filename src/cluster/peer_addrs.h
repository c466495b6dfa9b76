/* Per-peer media address overrides (issue 16 item 5; docs/overlay.md
 * "Per-pair addresses"), sans-IO.
 *
 * A node sends its node-link datagrams (media, feedback, state, link probes)
 * to the media addresses each peer announces in the registry. An override
 * names, for one peer id, the addresses to use instead on THIS node only:
 * `hudong serve --peer-addr n3=127.0.0.1:9000` (repeatable) or the config key
 * "peer_addrs": "n3=127.0.0.1:9000,n4=127.0.0.1:9100". It exists so a test bed
 * (bench/overlay/testbed.py) can put a `hudong netem` relay on one pair's path
 * (A -> C through a relay while B -> C goes straight), and for an operator
 * whose nodes reach one peer by a private address the others cannot use.
 * Several entries for one id give that peer's workers' addresses in order
 * (worker 0 first): a room's media goes to address hash(room) % count, as the
 * peer places rooms on its workers, so give one per media worker of the peer.
 * Other nodes and clients still see the announced addresses. */
#ifndef HD_CLUSTER_PEER_ADDRS_H
#define HD_CLUSTER_PEER_ADDRS_H
#include <stddef.h>

#include "cluster/registry.h"

#define HD_PEER_ADDRS_MAX 64 /* override entries per node (all peers together) */

typedef struct {
  char id[HD_CLUSTER_ID_MAX];
  char addr[HD_CLUSTER_ADDR_MAX]; /* "ip:port" or "[ip6]:port", as a registry entry writes it */
} hd_peer_addr_t;

typedef struct {
  hd_peer_addr_t e[HD_PEER_ADDRS_MAX];
  int n;
} hd_peer_addrs_t;

/* Appends the entries of spec ("ID=HOST:PORT[,ID=HOST:PORT...]"; HOST an IPv4
 * or IPv6 literal, IPv6 in brackets; "" adds nothing) to t. HD_EINVAL with a
 * message in err (naming the entry and the expected form) for a malformed
 * entry, HD_ENOSPC past HD_PEER_ADDRS_MAX entries or HD_CLUSTER_MAX_MEDIA
 * addresses for one id; t is unchanged on error. */
int hd_peer_addrs_parse(hd_peer_addrs_t *t, const char *spec, char *err, size_t errcap);
/* The override addresses for peer id, in the order given: up to max pointers
 * into t in out; returns their count (0 = no override, use the registry's). */
int hd_peer_addrs_get(const hd_peer_addrs_t *t, const char *id, const char **out, int max);

#endif
