/* Node + clients behind `hudong netem` link models (see netem_world.h); moved
 * out of test_netem_sfu.c and test_netem_pacing.c, which each carried it. */
#include "netem_world.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node_world.h" /* g_node_cert, g_client_cert */
#include "check.h"

void netem_opts_from(hd_netem_opts_t *o, const char *const *argv, size_t argc) {
  hd_netem_opts_init(o);
  const char *names[16], *values[16];
  size_t n = 0;
  for (size_t i = 0; i < argc; n++) {
    CHECK(n < 16);
    names[n] = argv[i];
    int ar = hd_netem_opt_arity(argv[i]);
    CHECK(ar >= 0);
    CHECK(i + (size_t)ar < argc);
    values[n] = ar ? argv[i + 1] : NULL;
    i += 1 + (size_t)ar;
  }
  char err[256];
  if (hd_netem_opts_apply(o, names, values, n, err, sizeof err) != 0) {
    fprintf(stderr, "netem_world: bad netem options: %s\n", err);
    abort();
  }
}

void netem_world_init(netem_world_t *w) {
  memset(w, 0, sizeof *w);
  hd_node_config_t cfg = {.rtc_ip = "10.0.0.1", .rtc_port = 7881, .wall_offset = HD_SEC(1700000000)};
  CHECK(hd_node_new(&w->node, &cfg, g_node_cert) == 0);
  mkaddr(&w->node_addr, "10.0.0.1", 7881);
  w->now = HD_SEC(1000);
}

void netem_world_free(netem_world_t *w) {
  hd_node_free(w->node);
  for (int i = 0; i < NETEM_WORLD_MAX; i++) {
    hd_rtc_client_free(w->p[i].c);
    for (int d = 0; d < 2; d++)
      hd_netem_link_free(w->p[i].link[d]);
  }
}

void netem_world_set_links(netem_world_t *w, int i, const hd_netem_opts_t *o) {
  for (int d = 0; d < 2; d++) {
    if (!w->p[i].link[d]) {
      uint64_t seed = hd_netem_opts_seed(o, d) * 0x9E3779B97F4A7C15ull + (uint64_t)(i + 1) * 2 + (uint64_t)d;
      CHECK(hd_netem_link_new(&w->p[i].link[d], &o->dir[d], seed, w->now) == 0);
    } else {
      CHECK(hd_netem_link_set(w->p[i].link[d], &o->dir[d], w->now) == 0);
    }
  }
}

static int addr_eq(const struct sockaddr_storage *ss, const struct sockaddr_in *a) {
  const struct sockaddr_in *b = (const struct sockaddr_in *)ss;
  return b->sin_family == AF_INET && b->sin_port == a->sin_port && b->sin_addr.s_addr == a->sin_addr.s_addr;
}

/* Puts everything the node and the clients want to send into the links. */
static void nw_drain(netem_world_t *w) {
  hd_txq_t *q = hd_node_txq(w->node);
  hd_datagram_t *d;
  while ((d = hd_txq_peek(q)) != NULL) {
    for (int i = 0; i < NETEM_WORLD_MAX; i++)
      if (w->p[i].c && addr_eq(&d->to, &w->p[i].addr))
        CHECK(hd_netem_link_send(w->p[i].link[HD_NETEM_DOWN], d->data, d->len, w->now) >= 0);
    hd_txq_pop(q);
  }
  for (int i = 0; i < NETEM_WORLD_MAX; i++) {
    uint8_t buf[HD_NETEM_MAX_PKT];
    struct sockaddr_storage to;
    socklen_t tolen;
    int n;
    while (w->p[i].c && (n = hd_rtc_client_poll(w->p[i].c, buf, sizeof buf, &to, &tolen)) > 0)
      CHECK(hd_netem_link_send(w->p[i].link[HD_NETEM_UP], buf, (size_t)n, w->now) >= 0);
  }
}

void netem_world_run_until(netem_world_t *w, hd_time_t end) {
  for (long guard = 0;; guard++) {
    CHECK(guard < 50000000);
    nw_drain(w);
    hd_time_t t = hd_node_next_timeout(w->node);
    for (int i = 0; i < NETEM_WORLD_MAX; i++) {
      if (!w->p[i].c) continue;
      t = hd_time_min(t, hd_rtc_client_next_timeout(w->p[i].c));
      for (int d = 0; d < 2; d++)
        t = hd_time_min(t, hd_netem_link_next_timeout(w->p[i].link[d]));
    }
    if (t > end) break;
    if (t > w->now) w->now = t;
    for (int i = 0; i < NETEM_WORLD_MAX; i++) {
      const uint8_t *pkt;
      int n;
      uint8_t tmp[HD_NETEM_MAX_PKT];
      while (w->p[i].c && (n = hd_netem_link_poll(w->p[i].link[HD_NETEM_UP], w->now, &pkt)) > 0) {
        memcpy(tmp, pkt, (size_t)n); /* the node decrypts in place */
        hd_node_feed(w->node, tmp, (size_t)n, (struct sockaddr *)&w->p[i].addr, sizeof w->p[i].addr, w->now);
        nw_drain(w);
      }
      while (w->p[i].c && (n = hd_netem_link_poll(w->p[i].link[HD_NETEM_DOWN], w->now, &pkt)) > 0) {
        memcpy(tmp, pkt, (size_t)n);
        hd_rtc_client_feed(w->p[i].c, tmp, (size_t)n, (struct sockaddr *)&w->node_addr, sizeof w->node_addr,
                           w->now);
        nw_drain(w);
      }
    }
    if (hd_node_next_timeout(w->node) <= w->now) hd_node_handle_timeout(w->node, w->now);
    for (int i = 0; i < NETEM_WORLD_MAX; i++)
      if (w->p[i].c && hd_rtc_client_next_timeout(w->p[i].c) <= w->now)
        hd_rtc_client_handle_timeout(w->p[i].c, w->now);
  }
  w->now = end;
}

void netem_world_join(netem_world_t *w, int i, int kind, const hd_netem_opts_t *o,
                      const hd_rtc_client_config_t *base) {
  CHECK(i >= 0 && i < NETEM_WORLD_MAX && !w->p[i].c);
  netem_peer_t *p = &w->p[i];
  char ip[32];
  snprintf(ip, sizeof ip, "10.0.1.%d", i + 2);
  mkaddr(&p->addr, ip, (uint16_t)(5000 + i));
  hd_rtc_client_config_t cfg = {0};
  if (base) cfg = *base;
  cfg.kind = kind == HD_SESSION_PUBLISH ? HD_RTC_CLIENT_PUBLISH : HD_RTC_CLIENT_PLAY;
  cfg.cert = g_client_cert;
  CHECK(hd_rtc_client_new(&p->c, &cfg) == 0);
  netem_world_set_links(w, i, o);
  char offer[8192], *answer = malloc(65536), err[256] = "";
  CHECK(answer != NULL);
  CHECK(hd_rtc_client_offer(p->c, offer, sizeof offer) > 0);
  if (hd_node_create_session(w->node, kind, "app", "r", offer, strlen(offer), w->now, answer, 65536, p->id,
                             err, sizeof err) != 0) {
    fprintf(stderr, "netem_world: the node refused client %d: %s\n", i, err);
    abort();
  }
  CHECK(hd_rtc_client_apply_answer(p->c, answer, strlen(answer), w->now) == 0);
  free(answer);
}

int netem_world_connect(netem_world_t *w, int n) {
  for (int k = 0; k < 100; k++) {
    int up = 1;
    for (int i = 0; i < n; i++)
      up = up && w->p[i].c && hd_rtc_client_connected(w->p[i].c);
    if (up) return 1;
    netem_world_run_until(w, w->now + HD_MS(100));
  }
  return 0;
}
