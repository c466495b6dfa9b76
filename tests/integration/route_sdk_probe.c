/* The SDK's cluster routing against real nodes (test_cluster_route_sdk.py;
 * issue 15 item 4):
 *   route_sdk_probe route CLUSTER TOKEN   hd_client_route: its result or its
 *       error as one JSON line on stdout; exit 0 on success, 1 on an error.
 *   route_sdk_probe join CLUSTER TOKEN    an hd_client with cfg.cluster_url
 *       joins; prints every state change ("state joined 0 ..."); exit 0 once
 *       JOINED, 1 on FAILED or after 20 s.
 *   route_sdk_probe free CLUSTER TOKEN    the same client freed 100 ms after
 *       hd_client_join, while it routes: prints "freed" once
 *       hd_client_free returned (it waits for the route), exit 0.
 *   route_sdk_probe many N CLUSTER TOKEN  N clients with cfg.cluster_url join
 *       at once; prints "settled N in MS ms" once each is FAILED or JOINED
 *       (30 s cap), then frees them (test_route_sdk_fake.py: N routes run at
 *       once, none waits in a queue).
 *   route_sdk_probe manyfree N CLUSTER TOKEN  the same, freed one after the
 *       other 300 ms after hd_client_join, while they route: prints "freed N
 *       in MS ms" (all the frees together). */
#include <hudong/client.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static json_t *node_json(const hd_client_route_node_t *n) {
  return json_pack("{s:s, s:s, s:s, s:f}", "id", n->id, "url", n->url, "rtc_url", n->rtc_url, "rtt_ms",
                   n->rtt_ms);
}

static int do_route(const char *cluster, const char *token) {
  static hd_client_route_result_t r;
  char err[600];
  int rc = hd_client_route(cluster, token, &r, err, sizeof err);
  json_t *o = json_pack("{s:i, s:s}", "rc", rc, "code", hd_client_strerror(rc));
  if (rc < 0) {
    json_object_set_new(o, "err", json_string(err));
  } else {
    json_t *others = json_array(), *fb = json_array();
    for (int i = 0; i < r.n_others; i++) {
      json_array_append_new(others, node_json(&r.others[i]));
      json_array_append_new(fb, json_string(r.fallback_urls[i]));
    }
    json_object_set_new(o, "room", json_string(r.room));
    json_object_set_new(o, "reason", json_string(r.reason));
    json_object_set_new(o, "node", node_json(&r.node));
    json_object_set_new(o, "others", others);
    json_object_set_new(o, "fallback_urls", fb);
  }
  char *t = json_dumps(o, JSON_COMPACT);
  printf("%s\n", t);
  fflush(stdout);
  free(t);
  json_decref(o);
  return rc < 0;
}

static void on_state(void *ud, hd_client_state_t st, int err, const char *reason) {
  printf("state %s %d %s\n", hd_client_state_name(st), err, reason ? reason : "");
  fflush(stdout);
}

static int do_join(const char *cluster, const char *token) {
  hd_client_config_t cfg = {
      .cluster_url = cluster, .token = token, .no_reconnect = 1, .cb = {.on_state = on_state}};
  hd_client_t *c;
  int rc = hd_client_new(&c, &cfg);
  if (rc < 0) {
    printf("new failed: %s\n", hd_client_strerror(rc));
    return 1;
  }
  hd_client_join(c);
  hd_client_state_t st = HD_CLIENT_CONNECTING; /* hd_client_state is thread-safe */
  for (int i = 0; i < 400 && (st = hd_client_state(c)) != HD_CLIENT_JOINED && st != HD_CLIENT_FAILED; i++)
    usleep(50000);
  int ok = st == HD_CLIENT_JOINED;
  if (ok) usleep(300000); /* the node logs the join */
  hd_client_free(c);
  return ok ? 0 : 1;
}

static int do_free(const char *cluster, const char *token) {
  hd_client_config_t cfg = {.cluster_url = cluster, .token = token, .cb = {.on_state = on_state}};
  hd_client_t *c;
  if (hd_client_new(&c, &cfg) < 0) return 1;
  hd_client_join(c);
  usleep(100000);
  hd_client_free(c);
  printf("freed\n");
  return 0;
}

static atomic_int settled;

static void on_state_count(void *ud, hd_client_state_t st, int err, const char *reason) {
  if (st == HD_CLIENT_FAILED || st == HD_CLIENT_JOINED) atomic_fetch_add(&settled, 1);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

#define MANY_MAX 16

static int do_many(int n, const char *cluster, const char *token, int free_early) {
  hd_client_t *c[MANY_MAX];
  hd_client_config_t cfg = {
      .cluster_url = cluster, .token = token, .no_reconnect = 1, .cb = {.on_state = on_state_count}};
  if (n < 1 || n > MANY_MAX) return 2;
  for (int i = 0; i < n; i++)
    if (hd_client_new(&c[i], &cfg) < 0) return 1;
  double t0 = now_ms();
  for (int i = 0; i < n; i++)
    hd_client_join(c[i]);
  if (free_early) {
    usleep(300000);
    double f0 = now_ms();
    for (int i = 0; i < n; i++)
      hd_client_free(c[i]);
    printf("freed %d in %.0f ms\n", n, now_ms() - f0);
    return 0;
  }
  while (atomic_load(&settled) < n && now_ms() - t0 < 30000)
    usleep(10000);
  printf("settled %d in %.0f ms\n", atomic_load(&settled), now_ms() - t0);
  fflush(stdout);
  for (int i = 0; i < n; i++)
    hd_client_free(c[i]);
  return atomic_load(&settled) == n ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc == 5 && (!strcmp(argv[1], "many") || !strcmp(argv[1], "manyfree")))
    return do_many(atoi(argv[2]), argv[3], argv[4], !strcmp(argv[1], "manyfree"));
  if (argc != 4 || (strcmp(argv[1], "route") && strcmp(argv[1], "join") && strcmp(argv[1], "free"))) {
    fprintf(stderr, "usage: route_sdk_probe route|join|free CLUSTER_URL TOKEN\n"
                    "       route_sdk_probe many|manyfree N CLUSTER_URL TOKEN\n");
    return 2;
  }
  if (!strcmp(argv[1], "free")) return do_free(argv[2], argv[3]);
  return !strcmp(argv[1], "route") ? do_route(argv[2], argv[3]) : do_join(argv[2], argv[3]);
}
