/* Test support (not shipped): a forwarding node (sfu/node.h) and our own
 * client endpoints (support/rtc_client.h) joined by the link model
 * (support/link.h), run sans-IO on a virtual clock. Shared by the node unit
 * tests (test_node, test_alloc_free_path). Helpers abort on a broken harness
 * invariant (they are linked without cmocka). */
#ifndef HD_TEST_NODE_WORLD_H
#define HD_TEST_NODE_WORLD_H
#include <netinet/in.h>
#include <stdint.h>

#include "proto/dtls.h"
#include "sfu/node.h"
#include "link.h"
#include "rtc_client.h"

#define MAX_CLIENTS 6
#define NODE_DST (-1)
#define DELAY HD_MS(20)

/* Certificates of the node and of every client: set once per test binary. */
extern hd_dtls_cert_t *g_node_cert, *g_client_cert;
/* cmocka group setup/teardown: quiet logs, the two certificates above. */
int node_world_setup_all(void **st);
int node_world_teardown_all(void **st);

typedef struct {
  hd_rtc_client_t *c;
  struct sockaddr_in addr;
  hd_link_t up, down;
  char id[HD_SESSION_ID_LEN + 1];
  int kind;
  char app[16], room[16];
} peer_t;

/* Called around every call into the node: begin=1 before, 0 after; buf/len is
 * the datagram fed (NULL/0 for hd_node_handle_timeout). */
typedef void (*world_node_hook_t)(void *ctx, int begin, const uint8_t *buf, size_t len);

typedef struct {
  hd_node_t *node;
  struct sockaddr_in node_addr;
  hd_wire_t wire;
  peer_t p[MAX_CLIENTS];
  hd_time_t now;
  uint64_t to_nowhere; /* node datagrams for an address no client has */
  /* tap: last datagram a client sent (to replay it) */
  int tap_client;
  uint8_t tap[HD_WIRE_MTU];
  size_t tap_len;
  world_node_hook_t node_hook; /* optional */
  void *hook_ctx;
} world_t;

void mkaddr(struct sockaddr_in *a, const char *ip, uint16_t port);
/* A node with `extra`'s room timeout and REMB cap (and everything else fixed). */
void world_init_cfg(world_t *w, const hd_node_config_t *extra);
void world_init(world_t *w);
void world_free(world_t *w);
/* Moves everything the node and the clients want to send onto the wire. */
void drain(world_t *w);
/* Runs the world on the virtual clock until `end` / for `d`. */
void run_until(world_t *w, hd_time_t end);
void run_for(world_t *w, hd_time_t d);
/* Creates client i and its session. Returns the node's result. */
int join_ex(world_t *w, int i, int kind, const char *app, const char *room, hd_rtc_client_config_t cfg);
int join(world_t *w, int i, int kind, const char *room);
/* Deletes client i's session and frees the client. */
void leave(world_t *w, int i);

#endif
