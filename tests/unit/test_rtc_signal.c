/* Unit tests for the /rtc signaling client (src/client/rtc_signal.h) against
 * canned node messages (docs/protocol.md "Rooms"): join, joined with
 * participants, presence and track events, the subscriber offer answered by a
 * client pc, publish with a pc, data, ping/pong keepalive, errors, leave and
 * the liveness timeout. What the client sends is checked with the node's own
 * strict parser (src/sfu/signal.h). */
#include "hd_test.h"

#include "base/err.h"
#include "client/pc.h"
#include "client/rtc_signal.h"
#include "sfu/signal.h"

static hd_dtls_cert_t *g_cert;

/* Takes the next text the client wants to send and parses it as the node would. */
static void next_out(hd_rtc_signal_t *s, hd_signal_type_t type, hd_signal_msg_t *m) {
  static char buf[65536];
  int n = hd_rtc_signal_poll(s, buf, sizeof buf);
  assert_true(n > 0);
  hd_signal_error_t e;
  int rc = hd_signal_parse(buf, (size_t)n, HD_SIGNAL_FROM_CLIENT, m, &e);
  if (rc) fprintf(stderr, "parse: %s: %s\n", e.message, buf);
  assert_int_equal(rc, 0);
  assert_int_equal(m->type, type);
}

static int feed(hd_rtc_signal_t *s, const char *text, hd_time_t now) {
  return hd_rtc_signal_feed(s, text, strlen(text), now);
}

static int next_ev(hd_rtc_signal_t *s, hd_rtc_signal_event_t *ev) { return hd_rtc_signal_poll_event(s, ev); }

/* JSON string literal of text. */
static char *jquote(const char *text) {
  size_t n = strlen(text);
  char *o = malloc(2 * n + 3), *p = o;
  *p++ = '"';
  for (const char *c = text; *c; c++) {
    if (*c == '\r')
      *p++ = '\\', *p++ = 'r';
    else if (*c == '\n')
      *p++ = '\\', *p++ = 'n';
    else if (*c == '"' || *c == '\\')
      *p++ = '\\', *p++ = *c;
    else
      *p++ = *c;
  }
  *p++ = '"';
  *p = 0;
  return o;
}

static const char *JOINED =
    "{\"type\":\"joined\",\"id\":\"c1\",\"participant\":{\"sid\":\"PA_me\",\"identity\":\"me\",\"name\":\"\","
    "\"metadata\":\"\",\"joined_at\":1,\"tracks\":[],\"permissions\":{\"can_publish\":true}},"
    "\"room\":{\"name\":\"r1\",\"sid\":\"RM_1\",\"created_at\":1,\"max_participants\":0},"
    "\"participants\":[{\"sid\":\"PA_bob\",\"identity\":\"bob\",\"name\":\"Bob\",\"metadata\":\"\",\"joined_"
    "at\":1,"
    "\"tracks\":[{\"sid\":\"TR_ba\",\"kind\":\"audio\",\"source\":\"microphone\",\"muted\":false,\"width\":0,"
    "\"height\":0,\"codec\":\"opus\"},{\"sid\":\"TR_bv\",\"kind\":\"video\",\"source\":\"camera\",\"muted\":"
    "true,"
    "\"width\":0,\"height\":0,\"codec\":\"VP8\"}]}],\"ice_servers\":[],\"ping_interval\":5,\"ping_timeout\":"
    "20,"
    "\"protocol\":1,\"future_member\":{\"x\":1}}";

static int g_view_w, g_view_h; /* the view size joined_client configures */

static hd_rtc_signal_t *joined_client(hd_pc_t *pub, hd_pc_t *sub, hd_time_t now) {
  hd_rtc_signal_t *s;
  hd_rtc_signal_config_t cfg = {.token = "tok.en.x",
                                .name = "Me",
                                .pub_pc = pub,
                                .sub_pc = sub,
                                .view_width = g_view_w,
                                .view_height = g_view_h};
  assert_int_equal(hd_rtc_signal_new(&s, &cfg), 0);
  assert_int_equal(hd_rtc_signal_state(s), HD_RTC_SIGNAL_IDLE);
  assert_int_equal(hd_rtc_signal_next_timeout(s), HD_TIME_NEVER);
  assert_int_equal(hd_rtc_signal_join(s, now), 0);
  assert_int_equal(hd_rtc_signal_join(s, now), HD_ESTATE);
  hd_signal_msg_t m;
  next_out(s, HD_SIGNAL_JOIN, &m);
  assert_string_equal(m.join.token, "tok.en.x");
  assert_string_equal(m.join.name, "Me");
  assert_true(m.join.auto_subscribe);
  assert_string_equal(m.id, "c1");
  hd_signal_msg_free(&m);
  assert_int_equal(hd_rtc_signal_state(s), HD_RTC_SIGNAL_JOINING);
  assert_int_equal(feed(s, JOINED, now), 0);
  assert_int_equal(hd_rtc_signal_state(s), HD_RTC_SIGNAL_JOINED);
  hd_rtc_signal_event_t ev;
  assert_int_equal(next_ev(s, &ev), 1);
  assert_int_equal(ev.type, HD_RTC_SIGNAL_EV_JOINED);
  assert_string_equal(ev.participant_sid, "PA_me");
  assert_int_equal(next_ev(s, &ev), 0);
  return s;
}

static void test_join_and_presence(void **st) {
  hd_time_t now = HD_SEC(100);
  hd_rtc_signal_t *s = joined_client(NULL, NULL, now);
  hd_rtc_signal_event_t ev;
  assert_string_equal(hd_rtc_signal_own_sid(s), "PA_me");
  assert_string_equal(hd_rtc_signal_room(s), "r1");
  assert_int_equal(hd_rtc_signal_participant_count(s), 1);
  const hd_rtc_signal_participant_t *bob = hd_rtc_signal_participant(s, 0);
  assert_string_equal(bob->identity, "bob");
  assert_int_equal(bob->n_tracks, 2);
  assert_int_equal(bob->tracks[1].kind, HD_PC_VIDEO);
  assert_true(bob->tracks[1].muted);
  assert_int_equal(hd_rtc_signal_next_timeout(s), now + HD_SEC(5)); /* ping_interval from joined */

  assert_int_equal(
      feed(s,
           "{\"type\":\"participant_joined\",\"participant\":{\"sid\":\"PA_c\",\"identity\":\"carol\","
           "\"name\":\"\",\"metadata\":\"\",\"joined_at\":2,\"tracks\":[]}}",
           now),
      0);
  assert_int_equal(next_ev(s, &ev), 1);
  assert_int_equal(ev.type, HD_RTC_SIGNAL_EV_PARTICIPANT_JOINED);
  assert_string_equal(ev.identity, "carol");
  assert_int_equal(hd_rtc_signal_participant_count(s), 2);
  assert_int_equal(
      feed(s,
           "{\"type\":\"track_published\",\"participant_sid\":\"PA_c\",\"track\":{\"sid\":\"TR_cv\","
           "\"kind\":\"video\",\"source\":\"screen\",\"muted\":false,\"width\":1280,\"height\":720,"
           "\"codec\":\"\"}}",
           now),
      0);
  assert_int_equal(next_ev(s, &ev), 1);
  assert_int_equal(ev.type, HD_RTC_SIGNAL_EV_TRACK_PUBLISHED);
  assert_string_equal(ev.track_sid, "TR_cv");
  assert_int_equal(ev.kind, HD_PC_VIDEO);
  const hd_rtc_signal_participant_t *carol = hd_rtc_signal_find_participant(s, "PA_c");
  assert_non_null(carol);
  assert_int_equal(carol->n_tracks, 1);
  assert_string_equal(carol->tracks[0].source, "screen");
  assert_int_equal(
      feed(s,
           "{\"type\":\"track_muted\",\"participant_sid\":\"PA_c\",\"track_sid\":\"TR_cv\",\"muted\":true}",
           now),
      0);
  assert_int_equal(next_ev(s, &ev), 1);
  assert_int_equal(ev.type, HD_RTC_SIGNAL_EV_TRACK_MUTED);
  assert_true(ev.muted);
  assert_true(carol->tracks[0].muted);
  assert_int_equal(
      feed(s, "{\"type\":\"track_unpublished\",\"participant_sid\":\"PA_c\",\"track_sid\":\"TR_cv\"}", now),
      0);
  assert_int_equal(next_ev(s, &ev), 1);
  assert_int_equal(ev.type, HD_RTC_SIGNAL_EV_TRACK_UNPUBLISHED);
  assert_int_equal(ev.kind, HD_PC_VIDEO);
  assert_int_equal(carol->n_tracks, 0);
  assert_int_equal(
      feed(s,
           "{\"type\":\"participant_left\",\"participant\":{\"sid\":\"PA_bob\",\"identity\":\"bob\","
           "\"name\":\"\",\"metadata\":\"\",\"joined_at\":1,\"tracks\":[]}}",
           now),
      0);
  assert_int_equal(next_ev(s, &ev), 1);
  assert_int_equal(ev.type, HD_RTC_SIGNAL_EV_PARTICIPANT_LEFT);
  assert_int_equal(hd_rtc_signal_participant_count(s), 1);
  assert_null(hd_rtc_signal_find_participant(s, "PA_bob"));

  /* data, unknown types, garbage */
  assert_int_equal(
      feed(s, "{\"type\":\"data\",\"from\":\"carol\",\"from_sid\":\"PA_c\",\"payload\":\"hi\"}", now), 0);
  assert_int_equal(next_ev(s, &ev), 1);
  assert_int_equal(ev.type, HD_RTC_SIGNAL_EV_DATA);
  assert_string_equal(ev.payload, "hi");
  assert_string_equal(ev.identity, "carol");
  assert_int_equal(feed(s, "{\"type\":\"active_speakers\",\"speakers\":[]}", now), 0);
  assert_int_equal(feed(s, "{\"type\":\"something_new\"}", now), 0);
  assert_int_equal(next_ev(s, &ev), 0);
  assert_int_equal(feed(s, "not json", now), HD_EPROTO);
  assert_int_equal(feed(s, "[1,2]", now), HD_EPROTO);
  assert_int_equal(feed(s, "{\"type\":1}", now), HD_EPROTO);
  assert_int_equal(feed(s, "{\"type\":\"a\",\"type\":\"b\"}", now), HD_EPROTO);
  assert_int_equal(hd_rtc_signal_bad_messages(s), 4);

  /* requests the node's parser accepts */
  hd_signal_msg_t m;
  const char *to[] = {"carol"};
  assert_int_equal(hd_rtc_signal_send_data(s, "hello", to, 1), 0);
  next_out(s, HD_SIGNAL_DATA, &m);
  assert_string_equal(m.data.payload, "hello");
  assert_int_equal(m.data.n_to, 1);
  hd_signal_msg_free(&m);
  const char *sids[] = {"TR_x", "TR_y"};
  assert_int_equal(hd_rtc_signal_subscribe(s, 0, sids, 2), 0);
  next_out(s, HD_SIGNAL_UNSUBSCRIBE, &m);
  assert_int_equal(m.unsubscribe.n_track_sids, 2);
  hd_signal_msg_free(&m);
  assert_int_equal(hd_rtc_signal_subscribe(s, 1, sids, 0), HD_EINVAL);
  assert_int_equal(hd_rtc_signal_mute(s, "TR_m", 1), 0);
  next_out(s, HD_SIGNAL_MUTE, &m);
  assert_true(m.mute.muted);
  hd_signal_msg_free(&m);

  /* an error reply */
  assert_int_equal(feed(s,
                        "{\"type\":\"error\",\"code\":404,\"reason\":\"not_found\",\"message\":\"no such "
                        "track\",\"id\":\"c4\"}",
                        now),
                   0);
  assert_int_equal(next_ev(s, &ev), 1);
  assert_int_equal(ev.type, HD_RTC_SIGNAL_EV_ERROR);
  assert_int_equal(ev.code, 404);
  assert_string_equal(ev.reason, "not_found");
  assert_string_equal(ev.id, "c4");
  assert_int_equal(hd_rtc_signal_state(s), HD_RTC_SIGNAL_JOINED); /* stays */

  /* keepalive: ping at the interval, pong gives the RTT */
  now = hd_rtc_signal_next_timeout(s);
  hd_rtc_signal_handle_timeout(s, now);
  next_out(s, HD_SIGNAL_PING, &m);
  char pong[128];
  snprintf(pong, sizeof pong, "{\"type\":\"pong\",\"t\":%lld}", (long long)m.ping.t);
  hd_signal_msg_free(&m);
  assert_int_equal(feed(s, pong, now + HD_MS(30)), 0);
  assert_int_equal(next_ev(s, &ev), 1);
  assert_int_equal(ev.type, HD_RTC_SIGNAL_EV_PONG);
  assert_int_equal(ev.rtt, HD_MS(30));

  /* leave */
  assert_int_equal(hd_rtc_signal_leave(s), 0);
  next_out(s, HD_SIGNAL_LEAVE, &m);
  hd_signal_msg_free(&m);
  assert_int_equal(feed(s, "{\"type\":\"left\",\"reason\":\"client_request\"}", now), 0);
  assert_int_equal(hd_rtc_signal_state(s), HD_RTC_SIGNAL_LEFT);
  assert_int_equal(next_ev(s, &ev), 1);
  assert_int_equal(ev.type, HD_RTC_SIGNAL_EV_LEFT);
  assert_string_equal(ev.reason, "client_request");
  assert_int_equal(hd_rtc_signal_leave(s), HD_ESTATE);
  assert_int_equal(hd_rtc_signal_next_timeout(s), HD_TIME_NEVER);
  hd_rtc_signal_free(s);
}

/* A room bigger than the participant table: the joined list comes newest
 * first, so its publishers are at the end; they must still be kept (they take
 * the places of participants that publish nothing). */
static void test_big_room_keeps_publishers(void **st) {
  (void)st;
  hd_time_t now = HD_SEC(100);
  hd_rtc_signal_t *s;
  hd_rtc_signal_config_t cfg = {.token = "t.o.k"};
  assert_int_equal(hd_rtc_signal_new(&s, &cfg), 0);
  assert_int_equal(hd_rtc_signal_join(s, now), 0);
  hd_signal_msg_t m;
  next_out(s, HD_SIGNAL_JOIN, &m);
  hd_signal_msg_free(&m);
  enum { LISTENERS = HD_RTC_SIGNAL_MAX_PARTICIPANTS + 100, PUBS = 20 };
  size_t cap = 200 * (LISTENERS + PUBS) + 1024, len = 0;
  char *j = malloc(cap);
  len +=
      (size_t)snprintf(j + len, cap - len,
                       "{\"type\":\"joined\",\"id\":\"c1\",\"participant\":{\"sid\":\"PA_me\",\"identity\":"
                       "\"me\",\"tracks\":[]},\"room\":{\"name\":\"big\"},\"participants\":[");
  for (int i = 0; i < LISTENERS; i++)
    len += (size_t)snprintf(j + len, cap - len, "%s{\"sid\":\"PA_l%d\",\"identity\":\"l%d\",\"tracks\":[]}",
                            i ? "," : "", i, i);
  for (int i = 0; i < PUBS; i++)
    len +=
        (size_t)snprintf(j + len, cap - len,
                         ",{\"sid\":\"PA_p%d\",\"identity\":\"p%d\",\"tracks\":[{\"sid\":\"TR_%d\",\"kind\":"
                         "\"audio\",\"source\":\"microphone\"}]}",
                         i, i, i);
  snprintf(j + len, cap - len, "],\"ping_interval\":5,\"ping_timeout\":20,\"protocol\":1}");
  assert_int_equal(feed(s, j, now), 0);
  free(j);
  assert_int_equal(hd_rtc_signal_participant_count(s), HD_RTC_SIGNAL_MAX_PARTICIPANTS);
  int pubs = 0;
  for (int i = 0; i < hd_rtc_signal_participant_count(s); i++)
    pubs += hd_rtc_signal_participant(s, i)->n_tracks == 1;
  assert_int_equal(pubs, PUBS);
  hd_rtc_signal_free(s);
}

static void test_join_refused_and_timeout(void **st) {
  hd_rtc_signal_t *s;
  hd_rtc_signal_config_t cfg = {.token = "t"};
  hd_rtc_signal_event_t ev;
  hd_signal_msg_t m;
  assert_int_equal(hd_rtc_signal_new(&s, &(hd_rtc_signal_config_t){.token = ""}), HD_EINVAL);
  assert_int_equal(hd_rtc_signal_new(&s, &cfg), 0);
  assert_int_equal(hd_rtc_signal_send_data(s, "x", NULL, 0), HD_ESTATE); /* not joined */
  assert_int_equal(hd_rtc_signal_join(s, 0), 0);
  next_out(s, HD_SIGNAL_JOIN, &m);
  hd_signal_msg_free(&m);
  assert_int_equal(
      feed(s,
           "{\"type\":\"error\",\"code\":401,\"reason\":\"token_expired\",\"message\":\"expired\","
           "\"id\":\"c1\"}",
           0),
      0);
  assert_int_equal(hd_rtc_signal_state(s), HD_RTC_SIGNAL_LEFT);
  assert_int_equal(next_ev(s, &ev), 1);
  assert_int_equal(ev.code, 401);
  assert_string_equal(ev.reason, "token_expired");
  hd_rtc_signal_free(s);

  /* silence for ping_timeout (20 s in JOINED) after the last message: TIMEOUT */
  hd_time_t now = HD_SEC(1);
  s = joined_client(NULL, NULL, now);
  int pings = 0;
  while (hd_rtc_signal_state(s) == HD_RTC_SIGNAL_JOINED) {
    now = hd_rtc_signal_next_timeout(s);
    hd_rtc_signal_handle_timeout(s, now);
    while (hd_rtc_signal_poll(s, (char[256]){0}, 256) > 0)
      pings++;
  }
  assert_int_equal(now, HD_SEC(21));
  assert_int_equal(pings, 3); /* at 6, 11, 16 s */
  assert_int_equal(next_ev(s, &ev), 1);
  assert_int_equal(ev.type, HD_RTC_SIGNAL_EV_TIMEOUT);
  hd_rtc_signal_free(s);
}

/* The node's subscriber_offer of bob's video TR_bv into msg: node_sub gets a
 * video transceiver and makes the offer. */
static void bob_video_offer(hd_pc_t *node_sub, hd_time_t now, char *msg, size_t cap) {
  static char sdp[65536];
  assert_int_equal(hd_pc_add_transceiver(node_sub, HD_PC_VIDEO, HD_PC_SENDONLY), 0);
  assert_true(hd_pc_create_offer(node_sub, sdp, sizeof sdp, now) > 0);
  char *q = jquote(sdp);
  snprintf(msg, cap,
           "{\"type\":\"subscriber_offer\",\"sdp\":%s,\"tracks\":[{\"mid\":\"0\",\"track_sid\":\"TR_bv\","
           "\"participant_sid\":\"PA_bob\"}]}",
           q);
  free(q);
}

/* The next message out is the automatic track_settings of bob's new video
 * tile: visible, the configured view size w x h. */
static void expect_bob_tile(hd_rtc_signal_t *s, int w, int h) {
  hd_signal_msg_t m;
  next_out(s, HD_SIGNAL_TRACK_SETTINGS, &m);
  assert_int_equal(m.track_settings.n_track_sids, 1);
  assert_string_equal(m.track_settings.track_sids[0], "TR_bv");
  assert_int_equal(m.track_settings.visible, 1);
  assert_int_equal(m.track_settings.width, w);
  assert_int_equal(m.track_settings.height, h);
  hd_signal_msg_free(&m);
}

/* The publish and subscribe flows drive the pcs: a "node" is played by two
 * more pcs that answer our offer and make the subscriber offer. */
static void test_pc_flows(void **st) {
  hd_time_t now = HD_SEC(10);
  hd_pc_t *pub, *sub, *node_pub, *node_sub;
  hd_pc_config_t pcfg = {.cert = g_cert};
  assert_int_equal(hd_pc_new(&pub, &pcfg), 0);
  assert_int_equal(hd_pc_new(&sub, &pcfg), 0);
  assert_int_equal(hd_pc_new(&node_pub, &pcfg), 0);
  assert_int_equal(hd_pc_new(&node_sub, &pcfg), 0);
  g_view_w = 320;
  g_view_h = 180;
  hd_rtc_signal_t *s = joined_client(pub, sub, now);
  g_view_w = g_view_h = 0;
  hd_rtc_signal_event_t ev;
  hd_signal_msg_t m;
  static char sdp[65536], msg[200000];

  /* publish: our offer goes out with the tracks' mids */
  int a = hd_pc_add_transceiver(pub, HD_PC_AUDIO, HD_PC_SENDONLY);
  int v = hd_pc_add_transceiver(pub, HD_PC_VIDEO, HD_PC_SENDONLY);
  hd_rtc_signal_pub_t tracks[2] = {{.cid = "mic", .track = a, .source = "microphone"},
                                   {.cid = "cam", .track = v, .source = "camera"}};
  assert_int_equal(hd_rtc_signal_publish(s, tracks, 2, now), 0);
  assert_int_equal(hd_rtc_signal_publish(s, tracks, 2, now), HD_ESTATE); /* one outstanding */
  next_out(s, HD_SIGNAL_PUBLISH_OFFER, &m);
  assert_int_equal(m.publish_offer.n_tracks, 2);
  assert_string_equal(m.publish_offer.tracks[1].mid, "1");
  assert_int_equal(m.publish_offer.tracks[0].kind, HD_SIGNAL_KIND_AUDIO);
  /* first refused (409): the pc's offer is rolled back, a retry works */
  char err[128];
  snprintf(err, sizeof err,
           "{\"type\":\"error\",\"code\":409,\"reason\":\"conflict\",\"message\":\"x\",\"id\":\"%s\"}", m.id);
  hd_signal_msg_free(&m);
  assert_int_equal(feed(s, err, now), 0);
  assert_int_equal(next_ev(s, &ev), 1);
  assert_int_equal(ev.code, 409);
  assert_int_equal(hd_rtc_signal_publish(s, tracks, 2, now), 0);
  next_out(s, HD_SIGNAL_PUBLISH_OFFER, &m);
  assert_true(hd_pc_answer_offer(node_pub, m.publish_offer.sdp, strlen(m.publish_offer.sdp), sdp, sizeof sdp,
                                 now) > 0);
  hd_signal_msg_free(&m);
  char *q = jquote(sdp);
  snprintf(
      msg, sizeof msg,
      "{\"type\":\"publish_answer\",\"id\":\"c3\",\"sdp\":%s,\"tracks\":[{\"cid\":\"mic\",\"sid\":\"TR_m\"},"
      "{\"cid\":\"cam\",\"sid\":\"TR_c\"}]}",
      q);
  free(q);
  assert_int_equal(feed(s, msg, now), 0);
  assert_int_equal(next_ev(s, &ev), 1);
  assert_int_equal(ev.type, HD_RTC_SIGNAL_EV_PUBLISH_ANSWER);
  assert_int_equal(ev.code, 0);
  assert_int_equal(hd_pc_state(pub), HD_PC_CHECKING); /* the answer reached the pc */
  assert_string_equal(hd_rtc_signal_pub_sid(s, "cam"), "TR_c");
  assert_null(hd_rtc_signal_pub_sid(s, "nope"));

  /* subscribe: the node's offer is answered by the sub pc and the answer sent */
  bob_video_offer(node_sub, now, msg, sizeof msg);
  assert_int_equal(feed(s, msg, now), 0);
  assert_int_equal(next_ev(s, &ev), 1);
  assert_int_equal(ev.type, HD_RTC_SIGNAL_EV_SUBSCRIBER_OFFER);
  assert_true(ev.code >= 0);
  assert_string_equal(hd_rtc_signal_sub_track(s, "0")->track_sid, "TR_bv");
  assert_null(hd_rtc_signal_sub_track(s, "1"));
  next_out(s, HD_SIGNAL_SUBSCRIBER_ANSWER, &m);
  assert_int_equal(
      hd_pc_set_remote_answer(node_sub, m.subscriber_answer.sdp, strlen(m.subscriber_answer.sdp), now), 0);
  hd_signal_msg_free(&m);
  assert_int_equal(hd_pc_track_direction(sub, 0), HD_PC_RECVONLY);
  /* the new video track's tile goes to the node (track_settings, as a page
   * does), once: a later offer still carrying it says nothing more */
  expect_bob_tile(s, 320, 180);
  assert_int_equal(hd_rtc_signal_peek_len(s), 0);
  assert_int_equal(feed(s, msg, now), 0); /* the same offer again */
  assert_int_equal(next_ev(s, &ev), 1);
  if (ev.code >= 0) {
    next_out(s, HD_SIGNAL_SUBSCRIBER_ANSWER, &m);
    hd_signal_msg_free(&m);
  }
  assert_int_equal(hd_rtc_signal_peek_len(s), 0);
  /* an offer the pc cannot answer: the event carries the error, no answer goes out */
  assert_int_equal(feed(s, "{\"type\":\"subscriber_offer\",\"sdp\":\"v=0\",\"tracks\":[]}", now), 0);
  assert_int_equal(next_ev(s, &ev), 1);
  assert_true(ev.code < 0);
  assert_int_equal(hd_rtc_signal_peek_len(s), 0);
  hd_rtc_signal_free(s);
  hd_pc_free(pub);
  hd_pc_free(sub);
  hd_pc_free(node_pub);
  hd_pc_free(node_sub);
}

/* The node offers bob's video track TR_bv to s (made by node_sub); the
 * client's answer is taken. */
static void offer_bob_video(hd_rtc_signal_t *s, hd_pc_t *node_sub, hd_time_t now) {
  static char msg[200000];
  bob_video_offer(node_sub, now, msg, sizeof msg);
  assert_int_equal(feed(s, msg, now), 0);
  hd_rtc_signal_event_t ev;
  assert_int_equal(next_ev(s, &ev), 1);
  assert_int_equal(ev.type, HD_RTC_SIGNAL_EV_SUBSCRIBER_OFFER);
  assert_true(ev.code >= 0);
  hd_signal_msg_t m;
  next_out(s, HD_SIGNAL_SUBSCRIBER_ANSWER, &m);
  hd_signal_msg_free(&m);
}

/* Settings the app gives a track before the subscriber offer carries it
 * (rtc_signal.c app_told) are the ones the node keeps: the automatic
 * view-size message for the new tile is not sent for that track (the node
 * takes each track_settings whole, so it would replace the app's). A track
 * the app said nothing about still gets the automatic message. */
static void test_app_track_settings_not_replaced(void **st) {
  hd_time_t now = HD_SEC(10);
  hd_pc_t *pub, *sub, *node_sub;
  hd_pc_config_t pcfg = {.cert = g_cert};
  hd_signal_msg_t m;
  g_view_w = 320;
  g_view_h = 180;
  /* the app hides bob's video before it is offered */
  assert_int_equal(hd_pc_new(&pub, &pcfg), 0);
  assert_int_equal(hd_pc_new(&sub, &pcfg), 0);
  assert_int_equal(hd_pc_new(&node_sub, &pcfg), 0);
  hd_rtc_signal_t *s = joined_client(pub, sub, now);
  const char *bv = "TR_bv";
  assert_int_equal(hd_rtc_signal_track_settings(s, &bv, 1, 0, 0, 0, 0), 0);
  next_out(s, HD_SIGNAL_TRACK_SETTINGS, &m);
  assert_string_equal(m.track_settings.track_sids[0], "TR_bv");
  assert_int_equal(m.track_settings.visible, 0);
  hd_signal_msg_free(&m);
  offer_bob_video(s, node_sub, now);
  assert_int_equal(hd_rtc_signal_peek_len(s), 0); /* no visible 320x180 over the app's hidden */
  hd_rtc_signal_free(s);
  hd_pc_free(pub);
  hd_pc_free(sub);
  hd_pc_free(node_sub);

  /* the app set another track only: bob's video gets the view size */
  assert_int_equal(hd_pc_new(&pub, &pcfg), 0);
  assert_int_equal(hd_pc_new(&sub, &pcfg), 0);
  assert_int_equal(hd_pc_new(&node_sub, &pcfg), 0);
  s = joined_client(pub, sub, now);
  const char *other = "TR_other";
  assert_int_equal(hd_rtc_signal_track_settings(s, &other, 1, 1, 1280, 720, 1), 0);
  next_out(s, HD_SIGNAL_TRACK_SETTINGS, &m);
  hd_signal_msg_free(&m);
  offer_bob_video(s, node_sub, now);
  expect_bob_tile(s, 320, 180);
  assert_int_equal(hd_rtc_signal_peek_len(s), 0);
  g_view_w = g_view_h = 0;
  hd_rtc_signal_free(s);
  hd_pc_free(pub);
  hd_pc_free(sub);
  hd_pc_free(node_sub);
}

static int group_setup(void **st) { return hd_dtls_cert_generate(&g_cert) < 0 ? -1 : 0; }
static int group_teardown(void **st) {
  hd_dtls_cert_free(g_cert);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_join_and_presence),
      cmocka_unit_test(test_join_refused_and_timeout),
      cmocka_unit_test(test_big_room_keeps_publishers),
      cmocka_unit_test(test_pc_flows),
      cmocka_unit_test(test_app_track_settings_not_replaced),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
