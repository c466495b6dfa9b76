/* Test support (not shipped): a forwarding node (sfu/node.h) and our own
 * client endpoints (support/rtc_client.h), each client behind a pair of
 * `hudong netem` link models (netem/link.h) configured with the options the
 * command line takes (netem/profile.h), run sans-IO on a virtual clock. A
 * result reads as "with `hudong netem --delay 50 --loss 10`, X happens" and
 * is reproducible bit for bit (fixed seeds). Shared by test_netem_sfu and
 * test_netem_pacing. Helpers abort on a broken harness invariant (they are
 * linked without cmocka). The certificates are node_world.h's
 * (node_world_setup_all). */
#ifndef HD_TEST_NETEM_WORLD_H
#define HD_TEST_NETEM_WORLD_H
#include <netinet/in.h>
#include <stddef.h>

#include "netem/link.h"
#include "netem/profile.h"
#include "proto/dtls.h"
#include "sfu/node.h"
#include "rtc_client.h"

#define NETEM_WORLD_MAX 8 /* clients */

typedef struct {
  hd_rtc_client_t *c;
  struct sockaddr_in addr;
  hd_netem_link_t *link[2]; /* [HD_NETEM_UP] client -> node, [HD_NETEM_DOWN] node -> client */
  char id[64];
} netem_peer_t;

typedef struct {
  hd_node_t *node;
  struct sockaddr_in node_addr;
  netem_peer_t p[NETEM_WORLD_MAX];
  hd_time_t now;
} netem_world_t;

/* `hudong netem` options ("--delay", "25", ...) into fresh options. */
void netem_opts_from(hd_netem_opts_t *o, const char *const *argv, size_t argc);
/* A node at 10.0.0.1:7881; the clock starts at 1000 s (nothing may assume 0). */
void netem_world_init(netem_world_t *w);
void netem_world_free(netem_world_t *w);
/* Client i's two links get `o` (created on first use, seeded per client and
 * direction as the relay derives its per-session streams, src/io/netem_relay.c). */
void netem_world_set_links(netem_world_t *w, int i, const hd_netem_opts_t *o);
/* Client i (0 <= i < NETEM_WORLD_MAX) at 10.0.1.(i+2) joins room "r" of app
 * "app" as a publisher or a viewer (HD_SESSION_*), behind links `o`; `base`
 * (optional) gives the client's other settings. */
void netem_world_join(netem_world_t *w, int i, int kind, const hd_netem_opts_t *o,
                      const hd_rtc_client_config_t *base);
/* Runs until clients 0..n-1 are connected (at most 10 s); 1 when they are. */
int netem_world_connect(netem_world_t *w, int n);
/* Runs the world on the virtual clock until `end`. */
void netem_world_run_until(netem_world_t *w, hd_time_t end);

#endif
