/* Node + clients on a virtual clock (see node_world.h); moved out of
 * tests/unit/test_node.c so that other node tests share it. */
#include "node_world.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "check.h"
#include "seeded_rand.h"

hd_dtls_cert_t *g_node_cert, *g_client_cert;
#define NODE_WORLD_RAND_SEED 0x6e6f6465776full

int node_world_setup_all(void **st) {
  (void)st;
  hd_log_set_level(HD_LOG_WARN);
  /* seeded keys and fixed dates: the same certificates every run (docs/testing.md, "Determinism") */
  hd_test_rand_seed(NODE_WORLD_RAND_SEED);
  if (hd_dtls_cert_generate_at(&g_node_cert, 1800000000) ||
      hd_dtls_cert_generate_at(&g_client_cert, 1800000000))
    return -1;
  return 0;
}

int node_world_teardown_all(void **st) {
  (void)st;
  hd_dtls_cert_free(g_node_cert);
  hd_dtls_cert_free(g_client_cert);
  return 0;
}

void mkaddr(struct sockaddr_in *a, const char *ip, uint16_t port) {
  memset(a, 0, sizeof *a);
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  inet_pton(AF_INET, ip, &a->sin_addr);
}

void world_init_cfg(world_t *w, const hd_node_config_t *extra) {
  memset(w, 0, sizeof *w);
  hd_test_rand_seed(NODE_WORLD_RAND_SEED + 1); /* SSRCs, ufrags, DTLS/SRTP keys: the same every run */
  hd_node_config_t cfg = {.rtc_ip = "10.0.0.1", .rtc_port = 7881, .wall_offset = HD_SEC(1700000000)};
  if (extra) {
    cfg.room_empty_timeout = extra->room_empty_timeout;
    cfg.max_publish_bitrate = extra->max_publish_bitrate;
  }
  CHECK(hd_node_new(&w->node, &cfg, g_node_cert) == 0);
  mkaddr(&w->node_addr, "10.0.0.1", 7881);
  CHECK(hd_wire_init(&w->wire, 1 << 16) == 0);
  w->now = HD_SEC(1000); /* any origin: nothing may assume 0 */
  w->tap_client = -1;
}

void world_init(world_t *w) { world_init_cfg(w, NULL); }

void world_free(world_t *w) {
  hd_node_free(w->node);
  for (int i = 0; i < MAX_CLIENTS; i++)
    hd_rtc_client_free(w->p[i].c);
  hd_wire_free(&w->wire);
}

static int addr_eq(const struct sockaddr_storage *ss, const struct sockaddr_in *a) {
  const struct sockaddr_in *b = (const struct sockaddr_in *)ss;
  return b->sin_family == AF_INET && b->sin_port == a->sin_port && b->sin_addr.s_addr == a->sin_addr.s_addr;
}

void drain(world_t *w) {
  hd_txq_t *q = hd_node_txq(w->node);
  hd_datagram_t *d;
  while ((d = hd_txq_peek(q)) != NULL) {
    int dst = -2;
    for (int i = 0; i < MAX_CLIENTS; i++)
      if (w->p[i].c && addr_eq(&d->to, &w->p[i].addr)) dst = i;
    hd_time_t at;
    if (dst < 0)
      w->to_nowhere++;
    else if (hd_link_send(&w->p[dst].down, w->now, &at))
      CHECK(hd_wire_push(&w->wire, at, dst, (struct sockaddr *)&w->node_addr, sizeof w->node_addr, d->data,
                         d->len) == 0);
    hd_txq_pop(q);
  }
  for (int i = 0; i < MAX_CLIENTS; i++) {
    peer_t *p = &w->p[i];
    if (!p->c) continue;
    uint8_t buf[HD_WIRE_MTU];
    struct sockaddr_storage to;
    socklen_t tolen;
    int n;
    while ((n = hd_rtc_client_poll(p->c, buf, sizeof buf, &to, &tolen)) > 0) {
      CHECK(addr_eq(&to, &w->node_addr));
      if (i == w->tap_client && buf[0] >= 128 && buf[0] <= 191 && !(buf[1] >= 192 && buf[1] <= 223)) {
        memcpy(w->tap, buf, (size_t)n);
        w->tap_len = (size_t)n;
      }
      hd_time_t at;
      if (hd_link_send(&p->up, w->now, &at))
        CHECK(hd_wire_push(&w->wire, at, NODE_DST, (struct sockaddr *)&p->addr, sizeof p->addr, buf,
                           (size_t)n) == 0);
    }
  }
}

void run_until(world_t *w, hd_time_t end) {
  hd_wire_pkt_t *pkt = malloc(sizeof *pkt);
  CHECK(pkt);
  for (long guard = 0;; guard++) {
    CHECK(guard < 50000000);
    drain(w);
    hd_time_t t = hd_time_min(hd_wire_next(&w->wire), hd_node_next_timeout(w->node));
    for (int i = 0; i < MAX_CLIENTS; i++)
      if (w->p[i].c) t = hd_time_min(t, hd_rtc_client_next_timeout(w->p[i].c));
    if (t > end) break;
    if (t > w->now) w->now = t;
    while (hd_wire_pop(&w->wire, w->now, pkt)) {
      if (pkt->dst == NODE_DST) {
        if (w->node_hook) w->node_hook(w->hook_ctx, 1, pkt->data, pkt->len);
        hd_node_feed(w->node, pkt->data, pkt->len, (struct sockaddr *)&pkt->from, pkt->fromlen, w->now);
        if (w->node_hook) w->node_hook(w->hook_ctx, 0, pkt->data, pkt->len);
      } else if (w->p[pkt->dst].c) {
        hd_rtc_client_feed(w->p[pkt->dst].c, pkt->data, pkt->len, (struct sockaddr *)&pkt->from, pkt->fromlen,
                           w->now);
      }
      drain(w);
    }
    if (hd_node_next_timeout(w->node) <= w->now) {
      if (w->node_hook) w->node_hook(w->hook_ctx, 1, NULL, 0);
      hd_node_handle_timeout(w->node, w->now);
      if (w->node_hook) w->node_hook(w->hook_ctx, 0, NULL, 0);
    }
    for (int i = 0; i < MAX_CLIENTS; i++)
      if (w->p[i].c && hd_rtc_client_next_timeout(w->p[i].c) <= w->now)
        hd_rtc_client_handle_timeout(w->p[i].c, w->now);
  }
  w->now = end;
  free(pkt);
}

void run_for(world_t *w, hd_time_t d) { run_until(w, w->now + d); }

int join_ex(world_t *w, int i, int kind, const char *app, const char *room, hd_rtc_client_config_t cfg) {
  peer_t *p = &w->p[i];
  char ip[32];
  snprintf(ip, sizeof ip, "10.0.1.%d", i + 2);
  mkaddr(&p->addr, ip, (uint16_t)(5000 + i));
  cfg.kind = kind == HD_SESSION_PUBLISH ? HD_RTC_CLIENT_PUBLISH : HD_RTC_CLIENT_PLAY;
  cfg.cert = g_client_cert;
  CHECK(hd_rtc_client_new(&p->c, &cfg) == 0);
  hd_link_params_t lp = {.delay = DELAY};
  hd_link_init(&p->up, &lp, 1000 + (uint64_t)i);
  hd_link_init(&p->down, &lp, 2000 + (uint64_t)i);
  char offer[8192], *answer = malloc(65536), err[256] = "";
  CHECK(answer);
  CHECK(hd_rtc_client_offer(p->c, offer, sizeof offer) > 0);
  int rc = hd_node_create_session(w->node, kind, app, room, offer, strlen(offer), w->now, answer, 65536,
                                  p->id, err, sizeof err);
  if (rc == 0) {
    CHECK(hd_rtc_client_apply_answer(p->c, answer, strlen(answer), w->now) == 0);
    p->kind = kind;
    snprintf(p->app, sizeof p->app, "%s", app);
    snprintf(p->room, sizeof p->room, "%s", room);
  } else {
    hd_rtc_client_free(p->c);
    p->c = NULL;
  }
  free(answer);
  return rc;
}

int join(world_t *w, int i, int kind, const char *room) {
  hd_rtc_client_config_t cfg = {0};
  return join_ex(w, i, kind, "app", room, cfg);
}

void leave(world_t *w, int i) {
  peer_t *p = &w->p[i];
  CHECK(hd_node_delete_session(w->node, p->kind, p->app, p->room, p->id, w->now) == 0);
  drain(w); /* the close_notify goes out; the client is gone before it lands */
  hd_rtc_client_free(p->c);
  p->c = NULL;
}
