/* Cluster registry entries and the peer table (src/cluster/registry): an
 * entry survives encode/decode, bad entries are refused with a reason, the
 * peer table reports joins and leaves and forgets everyone once its last read
 * is older than the TTL; and the --redis URL (src/cluster/redis_url). */
#include "hd_test.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "cluster/redis_url.h"
#include "cluster/registry.h"

static void sample(hd_cluster_node_t *n, const char *id) {
  memset(n, 0, sizeof *n);
  snprintf(n->id, sizeof n->id, "%s", id);
  snprintf(n->region, sizeof n->region, "eu-west");
  snprintf(n->labels, sizeof n->labels, "gpu=yes,tier=edge");
  snprintf(n->url, sizeof n->url, "https://edge1.example.com:7880");
  snprintf(n->media[0], sizeof n->media[0], "203.0.113.7:7881");
  snprintf(n->media[1], sizeof n->media[1], "203.0.113.7:7882");
  n->n_media = 2;
  n->capacity = 1000;
  n->sessions = 12;
  n->participants = 30;
  n->rooms = 2;
  n->bitrate_bps = 4500000;
  n->cpu_pct = 37;
  n->ts_ms = 1700000000123;
}

static void test_roundtrip(void **st) {
  (void)st;
  hd_cluster_node_t *a = malloc(sizeof *a), *b = malloc(sizeof *b);
  sample(a, "node-a:7880");
  const char *rooms[2] = {"appA/lobby", "appB/class.7"};
  char buf[8192], why[160];
  int len = hd_cluster_node_encode(a, rooms, 2, buf, sizeof buf);
  assert_true(len > 0);
  assert_int_equal((size_t)len, strlen(buf));
  assert_int_equal(hd_cluster_node_decode(buf, (size_t)len, b, why, sizeof why), 0);
  assert_string_equal(b->id, "node-a:7880");
  assert_string_equal(b->region, "eu-west");
  assert_string_equal(b->labels, "gpu=yes,tier=edge");
  assert_string_equal(b->url, "https://edge1.example.com:7880");
  assert_int_equal(b->n_media, 2);
  assert_string_equal(b->media[1], "203.0.113.7:7882");
  assert_int_equal(b->capacity, 1000);
  assert_int_equal(b->sessions, 12);
  assert_int_equal(b->participants, 30);
  assert_int_equal(b->bitrate_bps, 4500000);
  assert_int_equal(b->cpu_pct, 37);
  assert_int_equal(b->draining, 0);
  assert_int_equal(b->ts_ms, 1700000000123);
  assert_int_equal(b->n_room_hashes, 2);
  assert_true(hd_cluster_node_has_room(b, hd_cluster_room_hash("appA", "lobby")));
  assert_true(hd_cluster_node_has_room(b, hd_cluster_room_hash("appB", "class.7")));
  /* same room name, other tenant: not this node's room */
  assert_false(hd_cluster_node_has_room(b, hd_cluster_room_hash("appB", "lobby")));
  /* ("ab","c") and ("a","bc") differ */
  assert_true(hd_cluster_room_hash("ab", "c") != hd_cluster_room_hash("a", "bc"));
  /* too small a buffer: ENOSPC, not a cut entry */
  assert_int_equal(hd_cluster_node_encode(a, rooms, 2, buf, 64), HD_ENOSPC);
  /* a newer node's extra members are ignored (rolling upgrades) */
  const char *newer = "{\"v\":1,\"id\":\"x\",\"url\":\"http://h:1\",\"capacity\":5,\"future\":[1,2]}";
  assert_int_equal(hd_cluster_node_decode(newer, strlen(newer), b, why, sizeof why), 0);
  assert_int_equal(b->cpu_pct, -1); /* not given: unknown */
  /* the node-link version (overlay/link.h): absent = a node of version 1,
   * which gets no destination worker in the link header */
  assert_int_equal(b->link_ver, 1);
  a->link_ver = 2;
  len = hd_cluster_node_encode(a, rooms, 2, buf, sizeof buf);
  assert_non_null(strstr(buf, "\"link\":2"));
  assert_int_equal(hd_cluster_node_decode(buf, (size_t)len, b, why, sizeof why), 0);
  assert_int_equal(b->link_ver, 2);
  assert_int_equal(b->link_ver_bad, 0);
  /* a "link" this node cannot read (0, a string, a fraction, null) is taken
   * as version 1 and flagged for a log line: the peer entry stays readable */
  const char *badv[] = {"0", "-3", "\"2\"", "2.5", "null", "true"};
  for (size_t i = 0; i < sizeof badv / sizeof *badv; i++) {
    char ent[160];
    snprintf(ent, sizeof ent, "{\"v\":1,\"id\":\"x\",\"url\":\"http://h:1\",\"capacity\":5,\"link\":%s}",
             badv[i]);
    assert_int_equal(hd_cluster_node_decode(ent, strlen(ent), b, why, sizeof why), 0);
    assert_string_equal(b->id, "x");
    assert_int_equal(b->capacity, 5);
    assert_int_equal(b->link_ver, 1);
    assert_int_equal(b->link_ver_bad, 1);
  }
  free(a);
  free(b);
}

/* issue 16: the entry carries the node's measured links (docs/overlay.md
 * "Link measurement"); an entry without them decodes with none, a malformed
 * one is refused. */
static void test_links(void **st) {
  (void)st;
  hd_cluster_node_t *a = malloc(sizeof *a), *b = malloc(sizeof *b);
  sample(a, "n1");
  char buf[8192], why[160];
  int len = hd_cluster_node_encode(a, NULL, 0, buf, sizeof buf);
  assert_true(len > 0);
  assert_null(strstr(buf, "\"links\""));
  assert_int_equal(hd_cluster_node_decode(buf, (size_t)len, b, why, sizeof why), 0);
  assert_int_equal(b->n_links, 0);
  a->n_links = 2;
  a->links[0] = (hd_cluster_link_t){.peer = "n2", .up = 1, .rtt_ms = 12.5, .loss = 0.01, .jitter_ms = 0.75};
  a->links[1] = (hd_cluster_link_t){.peer = "n3", .up = 0, .rtt_ms = 0, .loss = 1, .jitter_ms = 0};
  len = hd_cluster_node_encode(a, NULL, 0, buf, sizeof buf);
  assert_true(len > 0);
  assert_int_equal(hd_cluster_node_decode(buf, (size_t)len, b, why, sizeof why), 0);
  assert_int_equal(b->n_links, 2);
  assert_string_equal(b->links[0].peer, "n2");
  assert_int_equal(b->links[0].up, 1);
  assert_true(b->links[0].rtt_ms > 12.49 && b->links[0].rtt_ms < 12.51);
  assert_true(b->links[0].loss > 0.0099 && b->links[0].loss < 0.0101);
  assert_true(b->links[0].jitter_ms > 0.749 && b->links[0].jitter_ms < 0.751);
  assert_string_equal(b->links[1].peer, "n3");
  assert_int_equal(b->links[1].up, 0);
  const char *bad = "{\"v\":1,\"id\":\"x\",\"url\":\"http://x\",\"capacity\":5,\"links\":[{\"peer\":\"y\"}]}";
  assert_int_equal(hd_cluster_node_decode(bad, strlen(bad), b, why, sizeof why), HD_EPROTO);
  assert_non_null(strstr(why, "links[0]"));
  const char *bad2 = "{\"v\":1,\"id\":\"x\",\"url\":\"http://x\",\"capacity\":5,\"links\":3}";
  assert_int_equal(hd_cluster_node_decode(bad2, strlen(bad2), b, why, sizeof why), HD_EPROTO);
  free(a);
  free(b);
}

static void test_truncated_rooms(void **st) {
  (void)st;
  hd_cluster_node_t *a = malloc(sizeof *a), *b = malloc(sizeof *b);
  sample(a, "big");
  enum { N = HD_CLUSTER_MAX_ROOMS + 10 };
  static char names[N][32];
  static const char *ptrs[N];
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof names[i], "app/room%d", i);
    ptrs[i] = names[i];
  }
  char *buf = malloc(HD_CLUSTER_ENTRY_MAX);
  char why[160];
  int len = hd_cluster_node_encode(a, ptrs, N, buf, HD_CLUSTER_ENTRY_MAX);
  assert_true(len > 0);
  assert_non_null(strstr(buf, "\"rooms_truncated\":true"));
  assert_int_equal(hd_cluster_node_decode(buf, (size_t)len, b, why, sizeof why), 0);
  assert_int_equal(b->n_room_hashes, HD_CLUSTER_MAX_ROOMS);
  free(buf);
  free(a);
  free(b);
}

static void test_bad_entries(void **st) {
  (void)st;
  hd_cluster_node_t *b = malloc(sizeof *b);
  char why[160];
  static const char *const bad[] = {
      "",
      "[]",
      "{\"id\":\"x\",\"url\":\"http://h\",\"capacity\":1}",         /* no version */
      "{\"v\":2,\"id\":\"x\",\"url\":\"http://h\",\"capacity\":1}", /* other version */
      "{\"v\":1,\"url\":\"http://h\",\"capacity\":1}",              /* no id */
      "{\"v\":1,\"id\":\"\",\"url\":\"http://h\",\"capacity\":1}",  /* empty id */
      "{\"v\":1,\"id\":\"x\",\"capacity\":1}",                      /* no url */
      "{\"v\":1,\"id\":\"x\",\"url\":\"http://h\"}",                /* no capacity */
      "{\"v\":1,\"id\":\"x\",\"url\":\"http://h\",\"capacity\":0}", /* zero capacity */
      "{\"v\":1,\"id\":\"x\",\"url\":\"http://h\",\"capacity\":1,\"sessions\":-1}",
      "{\"v\":1,\"id\":\"x\",\"url\":\"http://h\",\"capacity\":1,\"draining\":1}",
      "{\"v\":1,\"id\":\"x\",\"url\":\"http://h\",\"capacity\":1,\"media\":\"a\"}",
      "{\"v\":1,\"id\":\"x\",\"url\":\"http://h\",\"capacity\":1,\"room_names\":[\"noslash\"]}",
      "{\"v\":1,\"id\":\"x\",\"url\":\"http://h\",\"capacity\":1,\"room_names\":[\"/r\"]}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    why[0] = 0;
    assert_int_equal(hd_cluster_node_decode(bad[i], strlen(bad[i]), b, why, sizeof why), HD_EPROTO);
    assert_true(why[0] != 0);
  }
  free(b);
}

static void test_load_full_labels(void **st) {
  (void)st;
  hd_cluster_node_t n;
  sample(&n, "a");
  assert_false(hd_cluster_node_full(&n));
  assert_true(hd_cluster_node_load(&n) > 0.029 && hd_cluster_node_load(&n) < 0.031); /* 30 / 1000 */
  n.participants = 1000;
  assert_true(hd_cluster_node_full(&n));
  n.participants = 0;
  n.sessions = 1000;
  assert_true(hd_cluster_node_full(&n));
  n.sessions = 0;
  n.draining = 1;
  assert_true(hd_cluster_node_full(&n));
  assert_true(hd_cluster_labels_match("gpu=yes,tier=edge", ""));
  assert_true(hd_cluster_labels_match("gpu=yes,tier=edge", "tier=edge"));
  assert_true(hd_cluster_labels_match("gpu=yes,tier=edge", "tier=edge,gpu=yes"));
  assert_false(hd_cluster_labels_match("gpu=yes,tier=edge", "gpu=no"));
  assert_false(hd_cluster_labels_match("gpu=yes,tier=edge", "tier=edg"));
  assert_false(hd_cluster_labels_match("gpu=yes", "gpu=yes,tier=edge"));
  assert_false(hd_cluster_labels_match("", "gpu=yes"));
}

typedef struct {
  char log[512];
} changes_t;

static void on_change(void *ud, const char *id, int joined) {
  changes_t *c = ud;
  size_t l = strlen(c->log);
  snprintf(c->log + l, sizeof c->log - l, "%s%s ", joined ? "+" : "-", id);
}

static void test_peer_table(void **st) {
  (void)st;
  hd_cluster_peers_t p;
  assert_int_equal(hd_cluster_peers_init(&p, HD_SEC(3)), 0);
  hd_cluster_node_t nodes[4];
  sample(&nodes[0], "self");
  sample(&nodes[1], "b");
  sample(&nodes[2], "c");
  sample(&nodes[3], "b"); /* a duplicate is one peer */
  changes_t ch = {""};
  /* self is never a peer */
  assert_int_equal(hd_cluster_peers_update(&p, nodes, 4, "self", HD_SEC(10), on_change, &ch), 2);
  assert_string_equal(ch.log, "+b +c ");
  /* the same set again: no change */
  ch.log[0] = 0;
  assert_int_equal(hd_cluster_peers_update(&p, nodes, 3, "self", HD_SEC(11), on_change, &ch), 2);
  assert_string_equal(ch.log, "");
  /* c's key expired: it left; d joined */
  sample(&nodes[2], "d");
  assert_int_equal(hd_cluster_peers_update(&p, nodes, 3, "self", HD_SEC(12), on_change, &ch), 2);
  assert_string_equal(ch.log, "+d -c ");
  /* no read for a TTL (Redis away): still the table at 3 s, empty after */
  ch.log[0] = 0;
  assert_int_equal(hd_cluster_peers_live(&p, HD_SEC(15), on_change, &ch), 2);
  assert_string_equal(ch.log, "");
  assert_int_equal(hd_cluster_peers_live(&p, HD_SEC(15) + 1, on_change, &ch), 0);
  assert_string_equal(ch.log, "-b -d ");
  /* back: everyone joins again */
  ch.log[0] = 0;
  assert_int_equal(hd_cluster_peers_update(&p, nodes, 3, "self", HD_SEC(20), on_change, &ch), 2);
  assert_string_equal(ch.log, "+b +d ");
  hd_cluster_peers_free(&p);
}

static void test_redis_url(void **st) {
  (void)st;
  hd_redis_url_t u;
  char why[200];
  assert_int_equal(hd_redis_url_parse("redis://127.0.0.1:6380", &u, why, sizeof why), 0);
  assert_string_equal(u.host, "127.0.0.1");
  assert_int_equal(u.port, 6380);
  assert_string_equal(u.password, "");
  assert_int_equal(u.db, 0);
  assert_int_equal(hd_redis_url_parse("redis://redis.internal", &u, why, sizeof why), 0);
  assert_string_equal(u.host, "redis.internal");
  assert_int_equal(u.port, 6379);
  assert_int_equal(hd_redis_url_parse("redis://:s3cr@t@10.0.0.5:7000/3", &u, why, sizeof why), 0);
  assert_string_equal(u.password, "s3cr@t");
  assert_string_equal(u.user, "");
  assert_string_equal(u.host, "10.0.0.5");
  assert_int_equal(u.port, 7000);
  assert_int_equal(u.db, 3);
  assert_int_equal(hd_redis_url_parse("redis://hudong:pw@[::1]:6379/", &u, why, sizeof why), 0);
  assert_string_equal(u.user, "hudong");
  assert_string_equal(u.password, "pw");
  assert_string_equal(u.host, "::1");
  static const char *const bad[] = {"",
                                    "127.0.0.1:6379",
                                    "http://127.0.0.1:6379",
                                    "rediss://h:6379",
                                    "redis://",
                                    "redis://:6379",
                                    "redis://h:0",
                                    "redis://h:65536",
                                    "redis://h:port",
                                    "redis://h:6379/db",
                                    "redis://pw@h",
                                    "redis://:@h",
                                    "redis://[::1",
                                    "redis://h:1?x=y"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    why[0] = 0;
    assert_int_equal(hd_redis_url_parse(bad[i], &u, why, sizeof why), HD_EINVAL);
    assert_non_null(strstr(why, "redis://"));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip),   cmocka_unit_test(test_truncated_rooms),
      cmocka_unit_test(test_bad_entries), cmocka_unit_test(test_load_full_labels),
      cmocka_unit_test(test_peer_table),  cmocka_unit_test(test_redis_url),
      cmocka_unit_test(test_links),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
