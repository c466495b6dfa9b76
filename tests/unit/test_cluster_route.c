/* Edge scheduling (src/cluster/route): full and draining nodes are never
 * chosen, a held room goes to its node, region and labels narrow the choice,
 * client RTTs decide among measured nodes with load weighed in, and rooms
 * spread over equally loaded nodes. */
#include "hd_test.h"

#include <string.h>

#include "base/err.h"
#include "cluster/route.h"

static hd_cluster_node_t N[4];
static hd_route_cand_t C[4];

static void setup_nodes(void) {
  static const char *ids[4] = {"a", "b", "c", "d"};
  static const char *regions[4] = {"eu", "us", "us", "ap"};
  static const char *labels[4] = {"", "gpu=yes", "tier=edge", ""};
  for (int i = 0; i < 4; i++) {
    memset(&N[i], 0, sizeof N[i]);
    snprintf(N[i].id, sizeof N[i].id, "%s", ids[i]);
    snprintf(N[i].region, sizeof N[i].region, "%s", regions[i]);
    snprintf(N[i].labels, sizeof N[i].labels, "%s", labels[i]);
    N[i].capacity = 100;
  }
}

static int choose(const char *room, const char *region, const char *labels, const char *rtt,
                  const char **reason) {
  hd_route_req_t r = {.app = "app", .room = room, .region = region, .labels = labels};
  char why[160];
  assert_int_equal(hd_route_parse_rtt(rtt, &r, why, sizeof why), 0);
  const char *dummy;
  return hd_route_choose(N, 4, &r, C, reason ? reason : &dummy);
}

static void test_parse_rtt(void **st) {
  (void)st;
  hd_route_req_t r;
  char why[160];
  assert_int_equal(hd_route_parse_rtt("", &r, why, sizeof why), 0);
  assert_int_equal(r.n_rtt, 0);
  /* node ids may contain ':' (the default is hostname:port) */
  assert_int_equal(hd_route_parse_rtt("nodeA:23,host-1:7880:80", &r, why, sizeof why), 0);
  assert_string_equal(r.rtt[1].id, "host-1:7880");
  assert_int_equal(r.rtt[1].ms, 80);
  assert_int_equal(hd_route_parse_rtt("nodeA:23,nodeB:80", &r, why, sizeof why), 0);
  assert_int_equal(r.n_rtt, 2);
  assert_string_equal(r.rtt[1].id, "nodeB");
  assert_int_equal(r.rtt[1].ms, 80);
  static const char *const bad[] = {"a", "a:", ":5", "a:5,", "a:-1", "a:60001", "a:1x", "a:5,,b:3"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(hd_route_parse_rtt(bad[i], &r, why, sizeof why), HD_EINVAL);
  char many[400] = "";
  for (int i = 0; i <= HD_ROUTE_MAX_RTT; i++)
    snprintf(many + strlen(many), sizeof many - strlen(many), "%sn%d:1", i ? "," : "", i);
  assert_int_equal(hd_route_parse_rtt(many, &r, why, sizeof why), HD_EINVAL);
}

static void test_never_full_or_draining(void **st) {
  (void)st;
  setup_nodes();
  N[0].draining = 1;
  N[1].participants = 100;
  N[2].sessions = 100;
  for (int i = 0; i < 50; i++) {
    char room[16];
    snprintf(room, sizeof room, "r%d", i);
    /* even with the client preferring the unavailable ones */
    assert_int_equal(choose(room, "", "", "a:1,b:1,c:1,d:300", NULL), 3);
  }
  N[3].draining = 1;
  assert_int_equal(choose("r", "", "", "", NULL), HD_ENOTFOUND);
}

static void test_room_stays(void **st) {
  (void)st;
  setup_nodes();
  N[2].room_hashes[0] = hd_cluster_room_hash("app", "held");
  N[2].n_room_hashes = 1;
  N[2].participants = 60; /* the most loaded: without client hints the room still goes there */
  const char *reason;
  assert_int_equal(choose("held", "", "", "", &reason), 2);
  assert_string_equal(reason, "room");
  assert_int_equal(choose("held", "us", "", "", &reason), 2); /* within the region hint */
  assert_string_equal(reason, "room");
  /* rooms span nodes: the client's region and RTTs win over the held room */
  assert_int_equal(choose("held", "eu", "", "", &reason), 0);
  assert_int_equal(choose("held", "", "", "a:1,c:200", &reason), 0);
  assert_string_equal(reason, "rtt");
  /* not for another tenant's room of the same name */
  hd_route_req_t r = {.app = "other", .room = "held", .region = "", .labels = ""};
  assert_true(hd_route_choose(N, 4, &r, C, &reason) != 2 || strcmp(reason, "room"));
  /* its node full: placed elsewhere */
  N[2].participants = 100;
  assert_true(choose("held", "", "", "", &reason) != 2);
  assert_string_equal(reason, "load");
}

static void test_region_labels(void **st) {
  (void)st;
  setup_nodes();
  for (int i = 0; i < 30; i++) {
    char room[16];
    snprintf(room, sizeof room, "r%d", i);
    int c = choose(room, "us", "", "", NULL);
    assert_true(c == 1 || c == 2);
    assert_int_equal(choose(room, "eu", "", "", NULL), 0);
    assert_int_equal(choose(room, "us", "gpu=yes", "", NULL), 1);
    assert_int_equal(choose(room, "", "tier=edge", "", NULL), 2);
    /* an unknown region or label narrows nothing */
    c = choose(room, "mars", "gpu=no", "", NULL);
    assert_true(c >= 0 && c < 4);
  }
  /* the region's only node full: another region rather than no answer */
  N[0].participants = 100;
  assert_true(choose("x", "eu", "", "", NULL) != 0);
}

static void test_rtt(void **st) {
  (void)st;
  setup_nodes();
  const char *reason;
  assert_int_equal(choose("r", "", "", "a:80,b:20,c:50", &reason), 1);
  assert_string_equal(reason, "rtt");
  /* unmeasured nodes are left out when some are measured */
  assert_int_equal(choose("r", "", "", "c:90", NULL), 2);
  /* load weighs in: b at 50% = 50 ms more, c wins */
  N[1].participants = 50;
  assert_int_equal(choose("r", "", "", "a:80,b:20,c:50", NULL), 2);
  /* region first, then RTT within it */
  assert_int_equal(choose("r", "eu", "", "a:80,b:20,c:50", NULL), 0);
  /* a node the client measured that is not in the registry changes nothing */
  assert_int_equal(choose("r", "", "", "zz:1,a:80,c:50", NULL), 2);
  /* ties on score: the smaller id, stable */
  setup_nodes();
  assert_int_equal(choose("r", "", "", "c:30,b:30", NULL), 1);
}

static void test_spread_by_load(void **st) {
  (void)st;
  setup_nodes();
  N[0].participants = 30; /* a at 30%, others empty */
  int count[4] = {0};
  for (int i = 0; i < 300; i++) {
    char room[16];
    snprintf(room, sizeof room, "room-%d", i);
    int c = choose(room, "", "", "", NULL);
    assert_true(c >= 0);
    count[c]++;
    /* the same room always gets the same answer from the same view */
    assert_int_equal(choose(room, "", "", "", NULL), c);
  }
  assert_int_equal(count[0], 0);
  for (int i = 1; i < 4; i++)
    assert_true(count[i] > 50); /* about 100 each */
  /* within the band (5 points) loads count as equal */
  setup_nodes();
  N[0].participants = 4;
  int got_a = 0;
  for (int i = 0; i < 100; i++) {
    char room[16];
    snprintf(room, sizeof room, "x%d", i);
    got_a |= choose(room, "", "", "", NULL) == 0;
  }
  assert_true(got_a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_rtt),  cmocka_unit_test(test_never_full_or_draining),
      cmocka_unit_test(test_room_stays), cmocka_unit_test(test_region_labels),
      cmocka_unit_test(test_rtt),        cmocka_unit_test(test_spread_by_load),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
