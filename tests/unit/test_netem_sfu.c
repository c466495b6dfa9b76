/* The forwarding node behind the netem link model (src/netem) on a virtual
 * clock: the in-process use of issue 4 (DESIGN §3 rule 2). A publisher and a
 * viewer (tests/support/rtc_client.h) reach the node through a pair of
 * hd_netem_link_t each, configured with the same options `hudong netem`
 * takes on its command line (src/netem/profile.h), so a result here reads as
 * "with `hudong netem --delay 50 --up-burst-loss 5,20,100,0`, X happens" and
 * is reproducible bit for bit (fixed seeds). */
#include "hd_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "base/err.h"
#include "base/log.h"
#include "netem/link.h"
#include "netem/profile.h"
#include "sfu/node.h"
#include "support/rtc_client.h"

static hd_dtls_cert_t *g_node_cert, *g_client_cert;

typedef struct {
  hd_rtc_client_t *c;
  struct sockaddr_in addr;
  hd_netem_link_t *link[2]; /* [HD_NETEM_UP] client -> node, [HD_NETEM_DOWN] node -> client */
  char id[64];
} peer_t;

typedef struct {
  hd_node_t *node;
  struct sockaddr_in node_addr;
  peer_t p[2]; /* 0 publisher, 1 viewer */
  hd_time_t now;
} world_t;

static void mkaddr(struct sockaddr_in *a, const char *ip, uint16_t port) {
  memset(a, 0, sizeof *a);
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  inet_pton(AF_INET, ip, &a->sin_addr);
}

/* Applies `hudong netem`-style options ("--delay", "50", ...) to fresh options. */
static void opts_from(hd_netem_opts_t *o, const char *const *argv, size_t argc) {
  hd_netem_opts_init(o);
  const char *names[16], *values[16];
  size_t n = 0;
  for (size_t i = 0; i < argc; n++) {
    names[n] = argv[i];
    int ar = hd_netem_opt_arity(argv[i]);
    assert_true(ar >= 0);
    values[n] = ar ? argv[i + 1] : NULL;
    i += 1 + (size_t)ar;
  }
  char err[256];
  assert_int_equal(hd_netem_opts_apply(o, names, values, n, err, sizeof err), 0);
}

static void set_links(world_t *w, int i, const hd_netem_opts_t *o) {
  for (int d = 0; d < 2; d++) {
    if (!w->p[i].link[d]) {
      /* as the relay derives its per-session streams (src/io/netem_relay.c) */
      uint64_t seed = hd_netem_opts_seed(o, d) * 0x9E3779B97F4A7C15ull + (uint64_t)(i + 1) * 2 + (uint64_t)d;
      assert_int_equal(hd_netem_link_new(&w->p[i].link[d], &o->dir[d], seed, w->now), 0);
    } else {
      assert_int_equal(hd_netem_link_set(w->p[i].link[d], &o->dir[d], w->now), 0);
    }
  }
}

static int addr_eq(const struct sockaddr_storage *ss, const struct sockaddr_in *a) {
  const struct sockaddr_in *b = (const struct sockaddr_in *)ss;
  return b->sin_family == AF_INET && b->sin_port == a->sin_port && b->sin_addr.s_addr == a->sin_addr.s_addr;
}

/* Puts everything the node and the clients want to send into the links. */
static void drain(world_t *w) {
  hd_txq_t *q = hd_node_txq(w->node);
  hd_datagram_t *d;
  while ((d = hd_txq_peek(q)) != NULL) {
    for (int i = 0; i < 2; i++)
      if (w->p[i].c && addr_eq(&d->to, &w->p[i].addr))
        assert_true(hd_netem_link_send(w->p[i].link[HD_NETEM_DOWN], d->data, d->len, w->now) >= 0);
    hd_txq_pop(q);
  }
  for (int i = 0; i < 2; i++) {
    uint8_t buf[HD_NETEM_MAX_PKT];
    struct sockaddr_storage to;
    socklen_t tolen;
    int n;
    while (w->p[i].c && (n = hd_rtc_client_poll(w->p[i].c, buf, sizeof buf, &to, &tolen)) > 0)
      assert_true(hd_netem_link_send(w->p[i].link[HD_NETEM_UP], buf, (size_t)n, w->now) >= 0);
  }
}

static void run_until(world_t *w, hd_time_t end) {
  for (long guard = 0;; guard++) {
    assert_true(guard < 50000000);
    drain(w);
    hd_time_t t = hd_node_next_timeout(w->node);
    for (int i = 0; i < 2; i++) {
      if (!w->p[i].c) continue;
      t = hd_time_min(t, hd_rtc_client_next_timeout(w->p[i].c));
      for (int d = 0; d < 2; d++)
        t = hd_time_min(t, hd_netem_link_next_timeout(w->p[i].link[d]));
    }
    if (t > end) break;
    if (t > w->now) w->now = t;
    for (int i = 0; i < 2; i++) {
      const uint8_t *pkt;
      int n;
      uint8_t tmp[HD_NETEM_MAX_PKT];
      while (w->p[i].c && (n = hd_netem_link_poll(w->p[i].link[HD_NETEM_UP], w->now, &pkt)) > 0) {
        memcpy(tmp, pkt, (size_t)n); /* the node decrypts in place */
        hd_node_feed(w->node, tmp, (size_t)n, (struct sockaddr *)&w->p[i].addr, sizeof w->p[i].addr, w->now);
        drain(w);
      }
      while (w->p[i].c && (n = hd_netem_link_poll(w->p[i].link[HD_NETEM_DOWN], w->now, &pkt)) > 0) {
        memcpy(tmp, pkt, (size_t)n);
        hd_rtc_client_feed(w->p[i].c, tmp, (size_t)n, (struct sockaddr *)&w->node_addr, sizeof w->node_addr,
                           w->now);
        drain(w);
      }
    }
    if (hd_node_next_timeout(w->node) <= w->now) hd_node_handle_timeout(w->node, w->now);
    for (int i = 0; i < 2; i++)
      if (w->p[i].c && hd_rtc_client_next_timeout(w->p[i].c) <= w->now)
        hd_rtc_client_handle_timeout(w->p[i].c, w->now);
  }
  w->now = end;
}

static void join_cfg(world_t *w, int i, int kind, const hd_netem_opts_t *o,
                     const hd_rtc_client_config_t *base) {
  peer_t *p = &w->p[i];
  char ip[32];
  snprintf(ip, sizeof ip, "10.0.1.%d", i + 2);
  mkaddr(&p->addr, ip, (uint16_t)(5000 + i));
  hd_rtc_client_config_t cfg = {0};
  if (base) cfg = *base;
  cfg.kind = kind == HD_SESSION_PUBLISH ? HD_RTC_CLIENT_PUBLISH : HD_RTC_CLIENT_PLAY;
  cfg.cert = g_client_cert;
  assert_int_equal(hd_rtc_client_new(&p->c, &cfg), 0);
  set_links(w, i, o);
  char offer[8192], *answer = malloc(65536), err[256] = "";
  assert_non_null(answer);
  assert_true(hd_rtc_client_offer(p->c, offer, sizeof offer) > 0);
  assert_int_equal(hd_node_create_session(w->node, kind, "app", "r", offer, strlen(offer), w->now, answer,
                                          65536, p->id, err, sizeof err),
                   0);
  assert_int_equal(hd_rtc_client_apply_answer(p->c, answer, strlen(answer), w->now), 0);
  free(answer);
}

static void join(world_t *w, int i, int kind, const hd_netem_opts_t *o) { join_cfg(w, i, kind, o, NULL); }

static void world_init(world_t *w) {
  memset(w, 0, sizeof *w);
  hd_node_config_t cfg = {.rtc_ip = "10.0.0.1", .rtc_port = 7881, .wall_offset = HD_SEC(1700000000)};
  assert_int_equal(hd_node_new(&w->node, &cfg, g_node_cert), 0);
  mkaddr(&w->node_addr, "10.0.0.1", 7881);
  w->now = HD_SEC(1000);
}

static void world_free(world_t *w) {
  hd_node_free(w->node);
  for (int i = 0; i < 2; i++) {
    hd_rtc_client_free(w->p[i].c);
    for (int d = 0; d < 2; d++)
      hd_netem_link_free(w->p[i].link[d]);
  }
}

typedef struct {
  uint64_t up_lost, span, unique, nack_seqs, rtx_sent;
  hd_time_t connect_time;
} result_t;

/* Publisher and viewer connect over `clean`, then the publisher's path turns
 * into `bad` for 20 s of media; returns what the viewer got. */
static void scenario(const hd_netem_opts_t *clean, const hd_netem_opts_t *bad, result_t *r) {
  world_t *w = calloc(1, sizeof *w);
  assert_non_null(w);
  world_init(w);
  hd_time_t t0 = w->now;
  join(w, 0, HD_SESSION_PUBLISH, clean);
  join(w, 1, HD_SESSION_PLAY, clean);
  for (int k = 0; k < 100 && !(hd_rtc_client_connected(w->p[0].c) && hd_rtc_client_connected(w->p[1].c)); k++)
    run_until(w, w->now + HD_MS(100));
  assert_true(hd_rtc_client_connected(w->p[0].c));
  assert_true(hd_rtc_client_connected(w->p[1].c));
  r->connect_time = w->now - t0;
  run_until(w, w->now + HD_SEC(1));
  set_links(w, 0, bad);
  hd_netem_stats_t s0;
  hd_netem_link_stats(w->p[0].link[HD_NETEM_UP], &s0);
  run_until(w, w->now + HD_SEC(20));
  set_links(w, 0, clean); /* the last repairs get through */
  hd_rtc_client_set_sending(w->p[0].c, 0);
  run_until(w, w->now + HD_SEC(2));
  hd_netem_stats_t s1;
  hd_netem_link_stats(w->p[0].link[HD_NETEM_UP], &s1);
  const hd_rtc_stream_stats_t *v = hd_rtc_client_rx(w->p[1].c, HD_RTC_VIDEO);
  const hd_rtc_client_stats_t *ps = hd_rtc_client_stats(w->p[0].c);
  r->up_lost = s1.drop_loss - s0.drop_loss;
  r->span = (uint64_t)(v->max_ext - v->first_ext + 1);
  r->unique = v->unique;
  r->nack_seqs = ps->nack_seqs_rx;
  r->rtx_sent = ps->rtx_sent;
  assert_int_equal(v->rtx_bad, 0);
  assert_int_equal(v->wrong_pt, 0);
  assert_true(hd_rtc_client_connected(w->p[1].c));
  world_free(w);
  free(w);
}

/* "At 20% Gilbert-Elliott loss and 100 ms RTT": the publisher's uplink loses
 * 20% in bursts of 5 packets on average (P 5%, R 20%, K 100%, H 0%), 50 ms
 * each way. The node NACKs the publisher, which answers with RTX; the viewer
 * behind a clean 50 ms path must see almost every video packet (measured:
 * all of them, with 20% bursty loss one way and both ways). */
static void test_ge_uplink_repaired(void **st) {
  (void)st;
  static const char *const clean_args[] = {"--delay", "50", "--seed", "1"};
  static const char *const bad_args[] = {"--delay", "50", "--up-burst-loss", "5,20,100,0", "--seed", "1"};
  hd_netem_opts_t clean, bad;
  opts_from(&clean, clean_args, 4);
  opts_from(&bad, bad_args, 6);
  assert_true(bad.dir[HD_NETEM_UP].ge.enabled);
  assert_false(bad.dir[HD_NETEM_DOWN].ge.enabled);
  result_t a, b;
  scenario(&clean, &bad, &a);
  print_message("GE 20%% uplink, 100 ms RTT: connected in %lld ms; %llu lost on the link, %llu seqs NACKed, "
                "%llu RTX; viewer got %llu of %llu video seqs (%.2f%%)\n",
                (long long)(a.connect_time / 1000), (unsigned long long)a.up_lost,
                (unsigned long long)a.nack_seqs, (unsigned long long)a.rtx_sent, (unsigned long long)a.unique,
                (unsigned long long)a.span, 100.0 * (double)a.unique / (double)a.span);
  /* ~20% of 20 s of media (~90 video + 50 audio packets/s) */
  assert_true(a.up_lost > 300);
  assert_true(a.nack_seqs > 0 && a.rtx_sent > 0);
  assert_true(a.unique * 100 >= a.span * 99);
  /* the same seeds give the same run */
  scenario(&clean, &bad, &b);
  assert_int_equal(a.up_lost, b.up_lost);
  assert_int_equal(a.unique, b.unique);
  assert_int_equal(a.rtx_sent, b.rtx_sent);

  /* both ways on the publisher's path: NACKs and their RTX are lost too */
  static const char *const both_args[] = {"--delay", "50", "--burst-loss", "5,20,100,0", "--seed", "1"};
  opts_from(&bad, both_args, 6);
  scenario(&clean, &bad, &b);
  print_message("GE 20%% both ways: %llu lost upstream, %llu seqs NACKed, %llu RTX; viewer got %llu of %llu "
                "(%.2f%%)\n",
                (unsigned long long)b.up_lost, (unsigned long long)b.nack_seqs,
                (unsigned long long)b.rtx_sent, (unsigned long long)b.unique, (unsigned long long)b.span,
                100.0 * (double)b.unique / (double)b.span);
  assert_true(b.unique * 100 >= b.span * 99);
}

/* ---- repair across two lossy legs (issue 11 item 0) ---- */

typedef struct {
  hd_rtc_video_quality_t q;
  uint64_t lost_up, lost_down; /* video+audio+RTCP datagrams lost on the publisher's / viewer's leg */
  hd_session_counters_t m;
} two_legs_t;

/* Publisher and viewer connect over a clean 25 ms leg each, then the
 * publisher's leg turns into `pub_bad` and the viewer's into `view_bad` for
 * `secs` of media. The viewer NACKs like a browser does: at once on a gap,
 * again every `viewer_nack_iv`. */
static void two_legs(const hd_netem_opts_t *pub_bad, const hd_netem_opts_t *view_bad, int secs,
                     hd_time_t viewer_nack_iv, hd_time_t playout, two_legs_t *r) {
  static const char *const clean_args[] = {"--delay", "25", "--seed", "1"};
  hd_netem_opts_t clean;
  opts_from(&clean, clean_args, 4);
  world_t *w = calloc(1, sizeof *w);
  assert_non_null(w);
  world_init(w);
  hd_rtc_client_config_t pub = {.video_payload = 1000, .video_pkts_per_frame = 4};
  hd_rtc_client_config_t view = {.auto_nack = 1, .nack_interval = viewer_nack_iv, .nack_max_tries = 10};
  join_cfg(w, 0, HD_SESSION_PUBLISH, &clean, &pub);
  join_cfg(w, 1, HD_SESSION_PLAY, &clean, &view);
  for (int k = 0; k < 100 && !(hd_rtc_client_connected(w->p[0].c) && hd_rtc_client_connected(w->p[1].c)); k++)
    run_until(w, w->now + HD_MS(100));
  assert_true(hd_rtc_client_connected(w->p[0].c) && hd_rtc_client_connected(w->p[1].c));
  run_until(w, w->now + HD_SEC(2)); /* RTCP exchanged on both legs: RTTs known */
  set_links(w, 0, pub_bad);
  set_links(w, 1, view_bad);
  hd_netem_stats_t u0, d0, u1, d1;
  hd_netem_link_stats(w->p[0].link[HD_NETEM_UP], &u0);
  hd_netem_link_stats(w->p[1].link[HD_NETEM_DOWN], &d0);
  run_until(w, w->now + HD_SEC(secs));
  hd_rtc_client_set_sending(w->p[0].c, 0);
  run_until(w, w->now + HD_SEC(2));
  hd_netem_link_stats(w->p[0].link[HD_NETEM_UP], &u1);
  hd_netem_link_stats(w->p[1].link[HD_NETEM_DOWN], &d1);
  r->lost_up = u1.drop_loss - u0.drop_loss;
  r->lost_down = d1.drop_loss - d0.drop_loss;
  assert_int_equal(hd_rtc_client_video_quality(w->p[1].c, playout, &r->q), 0);
  hd_node_metrics_t nm;
  hd_node_metrics(w->node, &nm);
  r->m = nm.stats.media;
  assert_int_equal(hd_rtc_client_rx(w->p[1].c, HD_RTC_VIDEO)->rtx_bad, 0);
  world_free(w);
  free(w);
}

static void print_two_legs(const char *what, const two_legs_t *r) {
  print_message(
      "%-34s lost up/down %4llu/%4llu | frames %llu complete %llu decoded %llu late %llu | "
      "delay p50/p95/p99/max %lld/%lld/%lld/%lld ms | freezes %llu, stall %.2f%% | "
      "repairs fwd %llu (twice %llu), deferred NACKs %llu, unrepairable %llu, PLI %llu (+%llu repeated)\n",
      what, (unsigned long long)r->lost_up, (unsigned long long)r->lost_down, (unsigned long long)r->q.frames,
      (unsigned long long)r->q.complete, (unsigned long long)r->q.decoded, (unsigned long long)r->q.late,
      (long long)(r->q.delay_p50 / 1000), (long long)(r->q.delay_p95 / 1000),
      (long long)(r->q.delay_p99 / 1000), (long long)(r->q.delay_max / 1000),
      (unsigned long long)r->q.freezes, 100.0 * r->q.stall_rate, (unsigned long long)r->m.repair_forwarded,
      (unsigned long long)r->m.repairs_doubled, (unsigned long long)r->m.nack_deferred,
      (unsigned long long)r->m.nack_unrepairable, (unsigned long long)r->m.pli_unrepairable,
      (unsigned long long)r->m.pli_retried);
}

/* Random loss p% each way on both legs (25 ms each way, 50 ms RTT per leg),
 * against the same end-to-end path as one hop: 50 ms each way and the two
 * legs' combined loss on the publisher's side, the viewer next to the node, so
 * one repair loop spans the whole path as between two browsers connected
 * directly. Through the node every frame must arrive whole, and the viewer
 * must stall no more than over the one-hop path. */
static void check_two_legs(int loss_pct) {
  char loss[16], combined[16];
  snprintf(loss, sizeof loss, "%d", loss_pct);
  snprintf(combined, sizeof combined, "%.2f",
           100.0 * (1.0 - (1.0 - loss_pct / 100.0) * (1.0 - loss_pct / 100.0)));
  const char *const leg_args[] = {"--delay", "25", "--loss", loss, "--seed", "7"};
  const char *const hop_args[] = {"--delay", "50", "--loss", combined, "--seed", "7"};
  const char *const near_args[] = {"--delay", "0", "--seed", "7"};
  hd_netem_opts_t leg, hop, near;
  opts_from(&leg, leg_args, 6);
  opts_from(&hop, hop_args, 6);
  opts_from(&near, near_args, 4);
  two_legs_t a, ref;
  const hd_time_t playout = HD_MS(200);
  two_legs(&leg, &leg, 30, HD_MS(60), playout, &a);
  two_legs(&hop, &near, 30, HD_MS(110), playout, &ref);
  char what[64];
  snprintf(what, sizeof what, "%d%% both legs, via node:", loss_pct);
  print_two_legs(what, &a);
  snprintf(what, sizeof what, "%s%% one hop (direct reference):", combined);
  print_two_legs(what, &ref);
  assert_true(a.lost_up > 0 && a.lost_down > 0);
  /* every loss repaired: all frames whole and decoded */
  assert_int_equal(a.q.complete, a.q.frames);
  assert_int_equal(a.q.decoded, a.q.frames);
  assert_true(a.q.stall_rate <= ref.q.stall_rate);
  assert_true(a.q.delay_p99 <= ref.q.delay_p99);
  assert_true(a.m.repair_forwarded > 0);
  assert_true(a.m.repairs_doubled > 0); /* the viewer's RRs report its leg's loss */
}

static void test_two_lossy_legs_5(void **st) {
  (void)st;
  check_two_legs(5);
}

static void test_two_lossy_legs_10(void **st) {
  (void)st;
  check_two_legs(10);
}

/* A keyframe request lost on the way to the publisher (PLI is never
 * acknowledged, RFC 4585 §6.3.1) is repeated until a keyframe starts arriving:
 * the viewer asks once while everything the node sends the publisher is lost
 * for 1.5 s; once the path is back the viewer gets its keyframe without
 * asking again. */
static void test_lost_keyframe_request_repeated(void **st) {
  (void)st;
  static const char *const clean_args[] = {"--delay", "25", "--seed", "3"};
  static const char *const cut_args[] = {"--delay", "25", "--down-loss", "100", "--seed", "3"};
  hd_netem_opts_t clean, cut;
  opts_from(&clean, clean_args, 4);
  opts_from(&cut, cut_args, 6);
  world_t *w = calloc(1, sizeof *w);
  assert_non_null(w);
  world_init(w);
  join(w, 0, HD_SESSION_PUBLISH, &clean);
  join(w, 1, HD_SESSION_PLAY, &clean);
  for (int k = 0; k < 100 && !(hd_rtc_client_connected(w->p[0].c) && hd_rtc_client_connected(w->p[1].c)); k++)
    run_until(w, w->now + HD_MS(100));
  run_until(w, w->now + HD_SEC(2));
  uint64_t keys0 = hd_rtc_client_rx(w->p[1].c, HD_RTC_VIDEO)->keyframes;
  uint64_t pli0 = hd_rtc_client_stats(w->p[0].c)->pli_rx;
  set_links(w, 0, &cut);
  assert_int_equal(hd_rtc_client_send_pli(w->p[1].c), 0);
  run_until(w, w->now + HD_MS(1500));
  assert_int_equal(hd_rtc_client_stats(w->p[0].c)->pli_rx, pli0); /* nothing got through */
  set_links(w, 0, &clean);
  run_until(w, w->now + HD_SEC(1));
  hd_node_metrics_t nm;
  hd_node_metrics(w->node, &nm);
  print_message(
      "PLI lost for 1.5 s: publisher got %llu PLI after the cut, node repeated %llu, viewer keyframes "
      "%llu -> %llu\n",
      (unsigned long long)(hd_rtc_client_stats(w->p[0].c)->pli_rx - pli0),
      (unsigned long long)nm.stats.media.pli_retried, (unsigned long long)keys0,
      (unsigned long long)hd_rtc_client_rx(w->p[1].c, HD_RTC_VIDEO)->keyframes);
  assert_true(hd_rtc_client_stats(w->p[0].c)->pli_rx > pli0);
  assert_true(nm.stats.media.pli_retried >= 1);
  assert_true(hd_rtc_client_rx(w->p[1].c, HD_RTC_VIDEO)->keyframes > keys0);
  /* and once the keyframe came, no more requests */
  uint64_t pli1 = hd_rtc_client_stats(w->p[0].c)->pli_rx;
  run_until(w, w->now + HD_SEC(3));
  assert_int_equal(hd_rtc_client_stats(w->p[0].c)->pli_rx, pli1);
  world_free(w);
  free(w);
}

static int setup_all(void **st) {
  (void)st;
  hd_log_set_level(HD_LOG_WARN);
  if (hd_dtls_cert_generate(&g_node_cert) || hd_dtls_cert_generate(&g_client_cert)) return -1;
  return 0;
}

static int teardown_all(void **st) {
  (void)st;
  hd_dtls_cert_free(g_node_cert);
  hd_dtls_cert_free(g_client_cert);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ge_uplink_repaired),
      cmocka_unit_test(test_two_lossy_legs_5),
      cmocka_unit_test(test_two_lossy_legs_10),
      cmocka_unit_test(test_lost_keyframe_request_repeated),
  };
  return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
