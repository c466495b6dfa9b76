/* Tests for the room signaling codec (src/sfu/signal.{h,c}, docs/protocol.md
 * "Rooms: WebSocket signaling"): a round trip of every message type, every
 * validation error with the field it names, sizes at and over each cap,
 * Unicode in names and metadata, malformed JSON, and the builders' checks. */
#include "hd_test.h"

#include "base/err.h"
#include "sfu/signal.h"

static char out[HD_SIGNAL_MAX_NODE_MSG + 1024];
static char out2[HD_SIGNAL_MAX_NODE_MSG + 1024];

#define C HD_SIGNAL_FROM_CLIENT
#define N HD_SIGNAL_FROM_NODE

static hd_signal_dir_t dir_of(hd_signal_type_t t) { return t < HD_SIGNAL_JOINED ? C : N; }

/* Writes m, parses it back into *back (caller frees), and checks that writing
 * the parsed message gives the same text: every field survived. */
static void round_trip(const hd_signal_msg_t *m, hd_signal_msg_t *back) {
  hd_signal_error_t e;
  int n = hd_signal_write(m, out, sizeof out);
  if (n < 0) {
    hd_signal_check(m, &e);
    fail_msg("write %s: %d (%s)", hd_signal_type_name(m->type), n, e.message);
  }
  assert_int_equal((size_t)n, strlen(out));
  int r = hd_signal_parse(out, (size_t)n, dir_of(m->type), back, &e);
  if (r != 0) fail_msg("parse %s: %d (%s) in %s", hd_signal_type_name(m->type), r, e.message, out);
  assert_int_equal(back->type, m->type);
  int n2 = hd_signal_write(back, out2, sizeof out2);
  assert_int_equal(n2, n);
  assert_string_equal(out2, out);
}

static void parse_ok(hd_signal_dir_t d, const char *text, hd_signal_msg_t *m) {
  hd_signal_error_t e;
  int r = hd_signal_parse(text, strlen(text), d, m, &e);
  if (r != 0) fail_msg("parse failed (%d, %s): %s", r, e.message, text);
}

/* Parse must fail with code and a message containing `want`. */
static void parse_fail(hd_signal_dir_t d, const char *text, size_t len, hd_signal_errcode_t code,
                       const char *want) {
  hd_signal_msg_t m;
  hd_signal_error_t e;
  memset(&m, 0xab, sizeof m);
  int r = hd_signal_parse(text, len, d, &m, &e);
  if (r != HD_EPROTO) fail_msg("expected HD_EPROTO, got %d for %.200s", r, text);
  if (e.code != code)
    fail_msg("expected %s, got %s (%s) for %.200s", hd_signal_err_reason(code), hd_signal_err_reason(e.code),
             e.message, text);
  if (want && !strstr(e.message, want)) fail_msg("message \"%s\" lacks \"%s\"", e.message, want);
  /* out is zeroed and owns nothing after a failure */
  assert_int_equal(m.type, HD_SIGNAL_NONE);
  assert_null(m.priv_);
  hd_signal_msg_free(&m);
}

static void pfail(hd_signal_dir_t d, const char *text, hd_signal_errcode_t code, const char *want) {
  parse_fail(d, text, strlen(text), code, want);
}

/* A string of n bytes of ch in a static buffer. */
static char *rep(char ch, size_t n) {
  static char buf[2][HD_SIGNAL_MAX_MSG + 16];
  static int which;
  char *b = buf[which ^= 1];
  assert_true(n < sizeof buf[0]);
  memset(b, ch, n);
  b[n] = 0;
  return b;
}

static const char *SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

/* ---------------------------------------------------------------- round trips */

static void test_rt_client(void **state) {
  hd_signal_msg_t m, b;

  memset(&m, 0, sizeof m);
  m.type = HD_SIGNAL_JOIN;
  m.id = "j1";
  m.join.token = "aaa.bbb.ccc";
  m.join.auto_subscribe = 0;
  m.join.name = "Alice";
  m.join.metadata = "{\"role\":\"host\"}";
  round_trip(&m, &b);
  assert_string_equal(b.id, "j1");
  assert_string_equal(b.join.token, "aaa.bbb.ccc");
  assert_int_equal(b.join.auto_subscribe, 0);
  assert_string_equal(b.join.name, "Alice");
  assert_string_equal(b.join.metadata, "{\"role\":\"host\"}");
  assert_int_equal(b.join.protocol, 1);
  hd_signal_msg_free(&b);

  hd_signal_pub_track_t pt[2] = {
      {"cam-1", "0", HD_SIGNAL_KIND_VIDEO, HD_SIGNAL_SOURCE_CAMERA, 0, 1280, 720},
      {"mic-1", "1", HD_SIGNAL_KIND_AUDIO, HD_SIGNAL_SOURCE_MICROPHONE, 1, 0, 0},
  };
  memset(&m, 0, sizeof m);
  m.type = HD_SIGNAL_PUBLISH_OFFER;
  m.id = "p1";
  m.publish_offer.sdp = SDP;
  m.publish_offer.tracks = pt;
  m.publish_offer.n_tracks = 2;
  round_trip(&m, &b);
  assert_string_equal(b.publish_offer.sdp, SDP);
  assert_int_equal(b.publish_offer.n_tracks, 2);
  assert_string_equal(b.publish_offer.tracks[0].cid, "cam-1");
  assert_string_equal(b.publish_offer.tracks[0].mid, "0");
  assert_int_equal(b.publish_offer.tracks[0].kind, HD_SIGNAL_KIND_VIDEO);
  assert_int_equal(b.publish_offer.tracks[0].source, HD_SIGNAL_SOURCE_CAMERA);
  assert_int_equal(b.publish_offer.tracks[0].width, 1280);
  assert_int_equal(b.publish_offer.tracks[0].height, 720);
  assert_int_equal(b.publish_offer.tracks[1].muted, 1);
  assert_int_equal(b.publish_offer.tracks[1].source, HD_SIGNAL_SOURCE_MICROPHONE);
  hd_signal_msg_free(&b);

  /* an offer that unpublishes everything */
  m.publish_offer.n_tracks = 0;
  m.publish_offer.tracks = NULL;
  round_trip(&m, &b);
  assert_int_equal(b.publish_offer.n_tracks, 0);
  hd_signal_msg_free(&b);

  memset(&m, 0, sizeof m);
  m.type = HD_SIGNAL_SUBSCRIBER_ANSWER;
  m.subscriber_answer.sdp = SDP;
  round_trip(&m, &b);
  assert_null(b.id);
  assert_string_equal(b.subscriber_answer.sdp, SDP);
  hd_signal_msg_free(&b);

  const char *sids[] = {"TR_a", "TR_b", "TR_c"};
  for (int t = HD_SIGNAL_SUBSCRIBE; t <= HD_SIGNAL_UNSUBSCRIBE; t++) {
    memset(&m, 0, sizeof m);
    m.type = (hd_signal_type_t)t;
    m.subscribe.track_sids = sids;
    m.subscribe.n_track_sids = 3;
    round_trip(&m, &b);
    assert_int_equal(b.unsubscribe.n_track_sids, 3);
    assert_string_equal(b.subscribe.track_sids[2], "TR_c");
    hd_signal_msg_free(&b);
  }

  memset(&m, 0, sizeof m);
  m.type = HD_SIGNAL_MUTE;
  m.mute.track_sid = "TR_a";
  m.mute.muted = 1;
  round_trip(&m, &b);
  assert_string_equal(b.mute.track_sid, "TR_a");
  assert_int_equal(b.mute.muted, 1);
  hd_signal_msg_free(&b);

  memset(&m, 0, sizeof m);
  m.type = HD_SIGNAL_UPDATE_METADATA;
  m.update_metadata.metadata = "";
  round_trip(&m, &b);
  assert_string_equal(b.update_metadata.metadata, "");
  assert_null(b.update_metadata.name);
  hd_signal_msg_free(&b);

  const char *to[] = {"bob", "carol"};
  memset(&m, 0, sizeof m);
  m.type = HD_SIGNAL_DATA;
  m.data.payload = "hello";
  m.data.to = to;
  m.data.n_to = 2;
  round_trip(&m, &b);
  assert_string_equal(b.data.payload, "hello");
  assert_int_equal(b.data.n_to, 2);
  assert_string_equal(b.data.to[1], "carol");
  hd_signal_msg_free(&b);
  m.data.n_to = 0; /* everyone: no "to" member */
  round_trip(&m, &b);
  assert_null(strstr(out, "\"to\""));
  assert_int_equal(b.data.n_to, 0);
  assert_null(b.data.to);
  hd_signal_msg_free(&b);

  memset(&m, 0, sizeof m);
  m.type = HD_SIGNAL_LEAVE;
  round_trip(&m, &b);
  assert_string_equal(out, "{\"type\":\"leave\"}");
  hd_signal_msg_free(&b);

  memset(&m, 0, sizeof m);
  m.type = HD_SIGNAL_PING;
  m.id = "7";
  m.ping.t = HD_SIGNAL_MAX_T;
  round_trip(&m, &b);
  assert_string_equal(out, "{\"type\":\"ping\",\"id\":\"7\",\"t\":9007199254740991}");
  assert_true(b.ping.t == HD_SIGNAL_MAX_T);
  hd_signal_msg_free(&b);
}

static hd_signal_track_t TRACKS[2] = {
    {"TR_v", HD_SIGNAL_KIND_VIDEO, HD_SIGNAL_SOURCE_SCREEN, 0, 1920, 1080, "VP8"},
    {"TR_a", HD_SIGNAL_KIND_AUDIO, HD_SIGNAL_SOURCE_SCREEN_AUDIO, 1, 0, 0, "opus"},
};

static void test_rt_joined(void **state) {
  hd_signal_msg_t m, b;
  hd_signal_participant_t others[2] = {
      {"PA_b", "bob", "Bob", "", 1700000001, TRACKS, 2, 0, {0}},
      {"PA_c", "carol", "", "{}", 1700000002, NULL, 0, 0, {0}},
  };
  const char *urls[] = {"stun:stun.example.org:3478", "turn:turn.example.org?transport=tcp"};
  hd_signal_ice_server_t ice[2] = {{urls, 1, NULL, NULL}, {urls + 1, 1, "u", "p"}};
  memset(&m, 0, sizeof m);
  m.type = HD_SIGNAL_JOINED;
  m.id = "j1";
  m.joined.participant =
      (hd_signal_participant_t){"PA_a", "alice", "Alice", "m", 1700000000, NULL, 0, 1, {1, 1, 1, 0, 0}};
  m.joined.room = (hd_signal_room_t){"lobby", "RM_x", 1699999999, 50};
  m.joined.participants = others;
  m.joined.n_participants = 2;
  m.joined.ice_servers = ice;
  m.joined.n_ice_servers = 2;
  m.joined.ping_interval = 10;
  m.joined.ping_timeout = 30;
  round_trip(&m, &b);
  assert_string_equal(b.id, "j1");
  assert_string_equal(b.joined.participant.identity, "alice");
  assert_int_equal(b.joined.participant.has_permissions, 1);
  assert_int_equal(b.joined.participant.permissions.can_publish_data, 1);
  assert_int_equal(b.joined.participant.permissions.room_admin, 0);
  assert_string_equal(b.joined.room.name, "lobby");
  assert_int_equal(b.joined.room.created_at, 1699999999);
  assert_int_equal(b.joined.room.max_participants, 50);
  assert_int_equal(b.joined.n_participants, 2);
  assert_int_equal(b.joined.participants[0].n_tracks, 2);
  assert_int_equal(b.joined.participants[0].has_permissions, 0);
  assert_string_equal(b.joined.participants[0].tracks[0].codec, "VP8");
  assert_int_equal(b.joined.participants[0].tracks[0].width, 1920);
  assert_int_equal(b.joined.participants[0].tracks[1].source, HD_SIGNAL_SOURCE_SCREEN_AUDIO);
  assert_int_equal(b.joined.participants[0].tracks[1].muted, 1);
  assert_string_equal(b.joined.participants[1].metadata, "{}");
  assert_int_equal(b.joined.n_ice_servers, 2);
  assert_null(b.joined.ice_servers[0].username);
  assert_string_equal(b.joined.ice_servers[1].credential, "p");
  assert_string_equal(b.joined.ice_servers[1].urls[0], "turn:turn.example.org?transport=tcp");
  assert_int_equal(b.joined.ping_interval, 10);
  assert_int_equal(b.joined.ping_timeout, 30);
  assert_int_equal(b.joined.protocol, 1);
  hd_signal_msg_free(&b);

  /* The biggest room a joined lists: 1000 participants with 2 tracks each. */
  static hd_signal_participant_t many[HD_SIGNAL_MAX_PARTICIPANTS + 1];
  static char sidbuf[HD_SIGNAL_MAX_PARTICIPANTS + 1][16];
  for (int i = 0; i <= HD_SIGNAL_MAX_PARTICIPANTS; i++) {
    snprintf(sidbuf[i], sizeof sidbuf[i], "PA_%d", i);
    many[i] = others[0];
    many[i].sid = many[i].identity = sidbuf[i];
  }
  m.joined.participants = many;
  m.joined.n_participants = HD_SIGNAL_MAX_PARTICIPANTS;
  round_trip(&m, &b);
  assert_int_equal(b.joined.n_participants, HD_SIGNAL_MAX_PARTICIPANTS);
  assert_string_equal(b.joined.participants[999].identity, "PA_999");
  hd_signal_msg_free(&b);
  m.joined.n_participants++;
  assert_int_equal(hd_signal_write(&m, out, sizeof out), HD_EINVAL);
}

static void test_rt_node(void **state) {
  hd_signal_msg_t m, b;

  hd_signal_track_ref_t refs[1] = {{"cam-1", "TR_v"}};
  assert_true(hd_signal_write_publish_answer("p1", SDP, refs, 1, out, sizeof out) > 0);
  parse_ok(N, out, &b);
  assert_int_equal(b.type, HD_SIGNAL_PUBLISH_ANSWER);
  assert_string_equal(b.id, "p1");
  assert_string_equal(b.publish_answer.tracks[0].sid, "TR_v");
  hd_signal_msg_free(&b);

  hd_signal_sub_track_t st[2] = {{"0", "TR_v", "PA_b"}, {"1", "TR_a", "PA_b"}};
  memset(&m, 0, sizeof m);
  m.type = HD_SIGNAL_SUBSCRIBER_OFFER;
  m.subscriber_offer.sdp = SDP;
  m.subscriber_offer.tracks = st;
  m.subscriber_offer.n_tracks = 2;
  round_trip(&m, &b);
  assert_string_equal(b.subscriber_offer.tracks[1].mid, "1");
  assert_string_equal(b.subscriber_offer.tracks[1].participant_sid, "PA_b");
  hd_signal_msg_free(&b);

  hd_signal_participant_t p = {"PA_b", "bob", "Bob", "x", 5, TRACKS, 1, 0, {0}};
  for (int t = HD_SIGNAL_PARTICIPANT_JOINED; t <= HD_SIGNAL_PARTICIPANT_UPDATED; t++) {
    memset(&m, 0, sizeof m);
    m.type = (hd_signal_type_t)t;
    m.participant_joined.participant = p;
    round_trip(&m, &b);
    assert_string_equal(b.participant_left.participant.identity, "bob");
    assert_int_equal(b.participant_updated.participant.n_tracks, 1);
    hd_signal_msg_free(&b);
  }
  assert_int_equal(hd_signal_write_participant(HD_SIGNAL_JOIN, &p, out, sizeof out), HD_EINVAL);

  memset(&m, 0, sizeof m);
  m.type = HD_SIGNAL_TRACK_PUBLISHED;
  m.track_published.participant_sid = "PA_b";
  m.track_published.track = TRACKS[0];
  round_trip(&m, &b);
  assert_string_equal(b.track_published.track.sid, "TR_v");
  assert_int_equal(b.track_published.track.height, 1080);
  hd_signal_msg_free(&b);

  assert_true(hd_signal_write_track_unpublished("PA_b", "TR_v", out, sizeof out) > 0);
  parse_ok(N, out, &b);
  assert_string_equal(b.track_unpublished.track_sid, "TR_v");
  hd_signal_msg_free(&b);

  assert_true(hd_signal_write_track_muted("PA_b", "TR_a", 1, out, sizeof out) > 0);
  parse_ok(N, out, &b);
  assert_int_equal(b.track_muted.muted, 1);
  hd_signal_msg_free(&b);

  hd_signal_speaker_t sp[3] = {{"PA_b", 0.9}, {"PA_c", 0.25}, {"PA_d", 0.0}};
  memset(&m, 0, sizeof m);
  m.type = HD_SIGNAL_ACTIVE_SPEAKERS;
  m.active_speakers.speakers = sp;
  m.active_speakers.n_speakers = 3;
  round_trip(&m, &b);
  assert_int_equal(b.active_speakers.n_speakers, 3);
  assert_true(b.active_speakers.speakers[0].level > 0.8999 && b.active_speakers.speakers[0].level < 0.9001);
  assert_true(b.active_speakers.speakers[2].level == 0.0);
  hd_signal_msg_free(&b);
  m.active_speakers.n_speakers = 0;
  round_trip(&m, &b);
  hd_signal_msg_free(&b);

  memset(&m, 0, sizeof m);
  m.type = HD_SIGNAL_DATA_RECV;
  m.data_recv.from = "bob";
  m.data_recv.from_sid = "PA_b";
  m.data_recv.payload = "hi";
  round_trip(&m, &b);
  assert_string_equal(b.data_recv.from, "bob");
  assert_string_equal(b.data_recv.from_sid, "PA_b");
  hd_signal_msg_free(&b);
  m.data_recv.from = ""; /* from the server */
  m.data_recv.from_sid = NULL;
  round_trip(&m, &b);
  assert_null(b.data_recv.from_sid);
  hd_signal_msg_free(&b);

  assert_true(hd_signal_write_pong("7", 42, out, sizeof out) > 0);
  assert_string_equal(out, "{\"type\":\"pong\",\"id\":\"7\",\"t\":42}");
  parse_ok(N, out, &b);
  assert_int_equal(b.pong.t, 42);
  hd_signal_msg_free(&b);

  assert_true(hd_signal_write_error("r9", HD_SIGNAL_ERR_NOT_FOUND, "no track TR_z", out, sizeof out) > 0);
  assert_string_equal(out, "{\"type\":\"error\",\"id\":\"r9\",\"code\":404,\"reason\":\"not_found\","
                           "\"message\":\"no track TR_z\"}");
  parse_ok(N, out, &b);
  assert_int_equal(b.error.code, HD_SIGNAL_ERR_NOT_FOUND);
  assert_string_equal(b.id, "r9");
  hd_signal_msg_free(&b);

  for (int r = 0; r < HD_SIGNAL_LEFT_COUNT; r++) {
    assert_true(hd_signal_write_left((hd_signal_left_reason_t)r, r ? "bye" : NULL, out, sizeof out) > 0);
    parse_ok(N, out, &b);
    assert_int_equal(b.left.reason, r);
    assert_string_equal(hd_signal_left_reason_name(b.left.reason), hd_signal_left_reason_name(r));
    if (r)
      assert_string_equal(b.left.message, "bye");
    else
      assert_null(b.left.message);
    hd_signal_msg_free(&b);
  }
  assert_true(strstr(out, "\"reason\":\"node_draining\"") != NULL);
}

/* Every convenience builder produces what its parser reads back. */
static void test_builders(void **state) {
  hd_signal_msg_t b;
  const char *sids[] = {"TR_1"};
  hd_signal_pub_track_t pt = {"c", "0", HD_SIGNAL_KIND_AUDIO, HD_SIGNAL_SOURCE_MICROPHONE, 0, 0, 0};

  assert_true(hd_signal_write_join(NULL, "t.t.t", 1, NULL, NULL, out, sizeof out) > 0);
  assert_string_equal(out, "{\"type\":\"join\",\"token\":\"t.t.t\",\"auto_subscribe\":true,\"protocol\":1}");
  parse_ok(C, out, &b);
  assert_null(b.join.name);
  assert_int_equal(b.join.auto_subscribe, 1);
  hd_signal_msg_free(&b);

  assert_true(hd_signal_write_publish_offer("1", SDP, &pt, 1, out, sizeof out) > 0);
  parse_ok(C, out, &b);
  assert_int_equal(b.publish_offer.tracks[0].width, 0);
  hd_signal_msg_free(&b);

  assert_true(hd_signal_write_subscriber_answer(NULL, SDP, out, sizeof out) > 0);
  parse_ok(C, out, &b);
  hd_signal_msg_free(&b);

  assert_true(hd_signal_write_subscribe("s", 1, sids, 1, out, sizeof out) > 0);
  parse_ok(C, out, &b);
  assert_int_equal(b.type, HD_SIGNAL_SUBSCRIBE);
  hd_signal_msg_free(&b);
  assert_true(hd_signal_write_subscribe("s", 0, sids, 1, out, sizeof out) > 0);
  parse_ok(C, out, &b);
  assert_int_equal(b.type, HD_SIGNAL_UNSUBSCRIBE);
  hd_signal_msg_free(&b);

  assert_true(hd_signal_write_mute(NULL, "TR_1", 5, out, sizeof out) > 0);
  assert_string_equal(out, "{\"type\":\"mute\",\"track_sid\":\"TR_1\",\"muted\":true}");
  assert_true(hd_signal_write_update_metadata(NULL, NULL, "Al", out, sizeof out) > 0);
  assert_string_equal(out, "{\"type\":\"update_metadata\",\"name\":\"Al\"}");
  assert_int_equal(hd_signal_write_update_metadata(NULL, NULL, NULL, out, sizeof out), HD_EINVAL);
  assert_true(hd_signal_write_data(NULL, "x", NULL, 0, out, sizeof out) > 0);
  assert_string_equal(out, "{\"type\":\"data\",\"payload\":\"x\"}");
  assert_true(hd_signal_write_leave("z", out, sizeof out) > 0);
  assert_string_equal(out, "{\"type\":\"leave\",\"id\":\"z\"}");
  assert_true(hd_signal_write_ping(NULL, 0, out, sizeof out) > 0);
  assert_true(hd_signal_write_subscriber_offer(SDP, NULL, 0, out, sizeof out) > 0);
  assert_true(hd_signal_write_track_published("PA", &TRACKS[1], out, sizeof out) > 0);
  assert_true(hd_signal_write_active_speakers(NULL, 0, out, sizeof out) > 0);
  assert_string_equal(out, "{\"type\":\"active_speakers\",\"speakers\":[]}");
  assert_true(hd_signal_write_data_recv("bob", NULL, "p", out, sizeof out) > 0);
  assert_string_equal(out, "{\"type\":\"data\",\"from\":\"bob\",\"payload\":\"p\"}");
}

/* ---------------------------------------------------------------- validation */

static void test_envelope_errors(void **state) {
  pfail(C, "{}", HD_SIGNAL_ERR_BAD_REQUEST, "missing field \"type\"");
  pfail(C, "{\"type\":5}", HD_SIGNAL_ERR_BAD_REQUEST, "field \"type\" must be a string");
  pfail(C, "{\"type\":\"\"}", HD_SIGNAL_ERR_BAD_REQUEST, "must not be empty");
  pfail(C, "{\"type\":\"dance\"}", HD_SIGNAL_ERR_BAD_REQUEST, "unknown message type \"dance\"");
  char longtype[200];
  snprintf(longtype, sizeof longtype, "{\"type\":\"%s\"}", rep('x', 100));
  pfail(C, longtype, HD_SIGNAL_ERR_BAD_REQUEST, "unknown message type");
  /* node->client types are unknown when a client sends them, and vice versa */
  pfail(C, "{\"type\":\"joined\"}", HD_SIGNAL_ERR_BAD_REQUEST, "unknown message type \"joined\"");
  pfail(C, "{\"type\":\"pong\",\"t\":1}", HD_SIGNAL_ERR_BAD_REQUEST, "unknown message type");
  pfail(N, "{\"type\":\"join\",\"token\":\"x\"}", HD_SIGNAL_ERR_BAD_REQUEST, "unknown message type");
  pfail(N, "{\"type\":\"ping\",\"t\":1}", HD_SIGNAL_ERR_BAD_REQUEST, "unknown message type");
  pfail(C, "{\"type\":\"leave\",\"id\":5}", HD_SIGNAL_ERR_BAD_REQUEST, "field \"id\" must be a string");
  pfail(C, "{\"type\":\"leave\",\"id\":\"\"}", HD_SIGNAL_ERR_BAD_REQUEST, "field \"id\" must be 1..64 bytes");
  char longid[120];
  snprintf(longid, sizeof longid, "{\"type\":\"leave\",\"id\":\"%s\"}", rep('i', 65));
  pfail(C, longid, HD_SIGNAL_ERR_BAD_REQUEST, "field \"id\"");
  snprintf(longid, sizeof longid, "{\"type\":\"leave\",\"id\":\"%s\"}", rep('i', 64));
  hd_signal_msg_t m;
  parse_ok(C, longid, &m);
  assert_int_equal(strlen(m.id), 64);
  hd_signal_msg_free(&m);
  /* null = absent for optional members; unknown members are ignored */
  parse_ok(C, "{\"type\":\"leave\",\"id\":null,\"future\":[1,{\"x\":2}]}", &m);
  assert_null(m.id);
  hd_signal_msg_free(&m);

  /* the id is recovered for the error reply, and the type once known */
  hd_signal_error_t e;
  const char *bad = "{\"id\":\"req-42\",\"type\":\"mute\",\"track_sid\":\"TR\"}";
  assert_int_equal(hd_signal_parse(bad, strlen(bad), C, &m, &e), HD_EPROTO);
  assert_string_equal(e.id, "req-42");
  assert_int_equal(e.type, HD_SIGNAL_MUTE);
  assert_string_equal(e.message, "missing field \"muted\"");
  assert_true(hd_signal_write_parse_error(&e, out, sizeof out) > 0);
  assert_string_equal(out, "{\"type\":\"error\",\"id\":\"req-42\",\"code\":400,\"reason\":\"bad_request\","
                           "\"message\":\"missing field \\\"muted\\\"\"}");
  bad = "{\"id\":\"q\",\"type\":\"nope\"}";
  assert_int_equal(hd_signal_parse(bad, strlen(bad), C, &m, &e), HD_EPROTO);
  assert_string_equal(e.id, "q");
  assert_int_equal(e.type, HD_SIGNAL_NONE);
}

static void test_malformed_json(void **state) {
  pfail(C, "", HD_SIGNAL_ERR_BAD_REQUEST, "malformed JSON");
  pfail(C, "not json", HD_SIGNAL_ERR_BAD_REQUEST, "malformed JSON");
  pfail(C, "{\"type\":\"leave\"", HD_SIGNAL_ERR_BAD_REQUEST, "malformed JSON");
  pfail(C, "{\"type\":\"leave\"}x", HD_SIGNAL_ERR_BAD_REQUEST, "malformed JSON");
  pfail(C, "{\"type\":\"leave\"}{}", HD_SIGNAL_ERR_BAD_REQUEST, "malformed JSON");
  pfail(C, "[{\"type\":\"leave\"}]", HD_SIGNAL_ERR_BAD_REQUEST, "must be a JSON object");
  pfail(C, "{\"type\":\"leave\",\"type\":\"join\"}", HD_SIGNAL_ERR_BAD_REQUEST, "malformed JSON");
  pfail(C, "{'type':'leave'}", HD_SIGNAL_ERR_BAD_REQUEST, "malformed JSON");
  pfail(C, "{\"type\":\"leave\",}", HD_SIGNAL_ERR_BAD_REQUEST, "malformed JSON");
  pfail(C, "{\"type\":\"ping\",\"t\":NaN}", HD_SIGNAL_ERR_BAD_REQUEST, "malformed JSON");
  /* invalid UTF-8, a lone surrogate, an escaped NUL */
  pfail(C, "{\"type\":\"data\",\"payload\":\"\xff\xfe\"}", HD_SIGNAL_ERR_BAD_REQUEST, "malformed JSON");
  pfail(C, "{\"type\":\"data\",\"payload\":\"\xc0\xaf\"}", HD_SIGNAL_ERR_BAD_REQUEST, "malformed JSON");
  pfail(C, "{\"type\":\"data\",\"payload\":\"\\ud800\"}", HD_SIGNAL_ERR_BAD_REQUEST, "malformed JSON");
  pfail(C, "{\"type\":\"data\",\"payload\":\"a\\u0000b\"}", HD_SIGNAL_ERR_BAD_REQUEST, "malformed JSON");
  /* a raw NUL inside the text (len covers it) */
  parse_fail(C, "{\"type\":\"leave\"}\0", 17, HD_SIGNAL_ERR_BAD_REQUEST, "malformed JSON");
  /* deep nesting is refused by the parser's depth limit, not the stack */
  static char deep[20000];
  size_t o = 0;
  o += (size_t)snprintf(deep, sizeof deep, "{\"type\":\"leave\",\"x\":");
  for (int i = 0; i < 5000; i++)
    deep[o++] = '[';
  for (int i = 0; i < 5000; i++)
    deep[o++] = ']';
  deep[o++] = '}';
  deep[o] = 0;
  pfail(C, deep, HD_SIGNAL_ERR_BAD_REQUEST, "malformed JSON");
  /* a too-big integer */
  pfail(C, "{\"type\":\"ping\",\"t\":123456789012345678901234567890}", HD_SIGNAL_ERR_BAD_REQUEST,
        "malformed");

  hd_signal_msg_t m;
  hd_signal_error_t e;
  assert_int_equal(hd_signal_parse(NULL, 0, C, &m, &e), HD_EINVAL);
  assert_int_equal(hd_signal_parse("{}", 2, (hd_signal_dir_t)7, &m, &e), HD_EINVAL);
  assert_int_equal(hd_signal_parse("{}", 2, C, NULL, &e), HD_EINVAL);
  /* err is optional */
  assert_int_equal(hd_signal_parse("{}", 2, C, &m, NULL), HD_EPROTO);
  hd_signal_msg_free(NULL);
  memset(&m, 0, sizeof m);
  hd_signal_msg_free(&m);
}

static void test_client_field_errors(void **state) {
  const hd_signal_errcode_t B = HD_SIGNAL_ERR_BAD_REQUEST, L = HD_SIGNAL_ERR_TOO_LARGE;
  /* join */
  pfail(C, "{\"type\":\"join\"}", B, "missing field \"token\"");
  pfail(C, "{\"type\":\"join\",\"token\":1}", B, "field \"token\" must be a string");
  pfail(C, "{\"type\":\"join\",\"token\":\"\"}", B, "field \"token\" must not be empty");
  pfail(C, "{\"type\":\"join\",\"token\":\"t\",\"auto_subscribe\":\"yes\"}", B,
        "field \"auto_subscribe\" must be true or false");
  pfail(C, "{\"type\":\"join\",\"token\":\"t\",\"auto_subscribe\":1}", B, "auto_subscribe");
  pfail(C, "{\"type\":\"join\",\"token\":\"t\",\"name\":[]}", B, "field \"name\" must be a string");
  pfail(C, "{\"type\":\"join\",\"token\":\"t\",\"protocol\":2}", B, "unsupported protocol 2");
  pfail(C, "{\"type\":\"join\",\"token\":\"t\",\"protocol\":\"1\"}", B, "must be an integer");
  /* publish_offer */
  pfail(C, "{\"type\":\"publish_offer\",\"tracks\":[]}", B, "missing field \"sdp\"");
  pfail(C, "{\"type\":\"publish_offer\",\"sdp\":\"\",\"tracks\":[]}", B, "field \"sdp\" must not be empty");
  pfail(C, "{\"type\":\"publish_offer\",\"sdp\":\"v=0\"}", B, "missing field \"tracks\"");
  pfail(C, "{\"type\":\"publish_offer\",\"sdp\":\"v=0\",\"tracks\":{}}", B,
        "field \"tracks\" must be an array");
  pfail(C, "{\"type\":\"publish_offer\",\"sdp\":\"v=0\",\"tracks\":[1]}", B,
        "field \"tracks[0]\" must be an object");
  pfail(C,
        "{\"type\":\"publish_offer\",\"sdp\":\"v=0\",\"tracks\":[{\"mid\":\"0\",\"kind\":\"audio\","
        "\"source\":\"microphone\"}]}",
        B, "missing field \"tracks[0].cid\"");
  pfail(C,
        "{\"type\":\"publish_offer\",\"sdp\":\"v=0\",\"tracks\":[{\"cid\":\"a\",\"kind\":\"audio\","
        "\"source\":\"microphone\"}]}",
        B, "missing field \"tracks[0].mid\"");
  pfail(C,
        "{\"type\":\"publish_offer\",\"sdp\":\"v=0\",\"tracks\":[{\"cid\":\"a\",\"mid\":\"0\",\"kind\":"
        "\"data\",\"source\":\"microphone\"}]}",
        B, "field \"tracks[0].kind\" has an unknown value \"data\"");
  pfail(C,
        "{\"type\":\"publish_offer\",\"sdp\":\"v=0\",\"tracks\":[{\"cid\":\"a\",\"mid\":\"0\",\"kind\":"
        "\"audio\",\"source\":\"webcam\"}]}",
        B, "field \"tracks[0].source\" has an unknown value \"webcam\"");
  pfail(C,
        "{\"type\":\"publish_offer\",\"sdp\":\"v=0\",\"tracks\":[{\"cid\":\"a\",\"mid\":\"0\",\"kind\":"
        "\"audio\",\"source\":\"camera\"}]}",
        B, "source \"camera\" does not carry audio");
  pfail(C,
        "{\"type\":\"publish_offer\",\"sdp\":\"v=0\",\"tracks\":[{\"cid\":\"a\",\"mid\":\"0\",\"kind\":"
        "\"video\",\"source\":\"screen_audio\"}]}",
        B, "does not carry video");
  pfail(C,
        "{\"type\":\"publish_offer\",\"sdp\":\"v=0\",\"tracks\":[{\"cid\":\"a\",\"mid\":\"0\",\"kind\":"
        "\"video\",\"source\":\"camera\",\"width\":16385}]}",
        B, "field \"tracks[0].width\" must be in 0..16384");
  pfail(C,
        "{\"type\":\"publish_offer\",\"sdp\":\"v=0\",\"tracks\":[{\"cid\":\"a\",\"mid\":\"0\",\"kind\":"
        "\"video\",\"source\":\"camera\",\"height\":-1}]}",
        B, "tracks[0].height");
  pfail(C,
        "{\"type\":\"publish_offer\",\"sdp\":\"v=0\",\"tracks\":[{\"cid\":\"a\",\"mid\":\"0\",\"kind\":"
        "\"video\",\"source\":\"camera\",\"width\":640.5}]}",
        B, "field \"tracks[0].width\" must be an integer");
  pfail(C,
        "{\"type\":\"publish_offer\",\"sdp\":\"v=0\",\"tracks\":[{\"cid\":\"a\",\"mid\":\"0\",\"kind\":"
        "\"video\",\"source\":\"camera\",\"muted\":0}]}",
        B, "tracks[0].muted");
  pfail(C,
        "{\"type\":\"publish_offer\",\"sdp\":\"v=0\",\"tracks\":[{\"cid\":\"a\",\"mid\":\"0\",\"kind\":"
        "\"video\",\"source\":\"camera\"},"
        "{\"cid\":\"a\",\"mid\":\"1\",\"kind\":\"audio\",\"source\":\"microphone\"}]}",
        B, "field \"tracks[1].cid\": duplicate cid \"a\"");
  pfail(C,
        "{\"type\":\"publish_offer\",\"sdp\":\"v=0\",\"tracks\":[{\"cid\":\"a\",\"mid\":\"0\",\"kind\":"
        "\"video\",\"source\":\"camera\"},"
        "{\"cid\":\"b\",\"mid\":\"0\",\"kind\":\"audio\",\"source\":\"microphone\"}]}",
        B, "duplicate mid \"0\"");
  /* subscribe / unsubscribe */
  pfail(C, "{\"type\":\"subscribe\"}", B, "missing field \"track_sids\"");
  pfail(C, "{\"type\":\"subscribe\",\"track_sids\":[]}", B, "field \"track_sids\" must not be empty");
  pfail(C, "{\"type\":\"unsubscribe\",\"track_sids\":[7]}", B, "field \"track_sids[0]\" must be a string");
  pfail(C, "{\"type\":\"unsubscribe\",\"track_sids\":[\"TR\",\"\"]}", B,
        "field \"track_sids[1]\" must not be empty");
  pfail(C, "{\"type\":\"subscribe\",\"track_sids\":\"TR\"}", B, "must be an array");
  /* mute */
  pfail(C, "{\"type\":\"mute\",\"muted\":true}", B, "missing field \"track_sid\"");
  pfail(C, "{\"type\":\"mute\",\"track_sid\":\"TR\",\"muted\":\"true\"}", B,
        "field \"muted\" must be true or false");
  /* update_metadata */
  pfail(C, "{\"type\":\"update_metadata\"}", B, "missing field \"metadata\"");
  pfail(C, "{\"type\":\"update_metadata\",\"metadata\":{}}", B, "field \"metadata\" must be a string");
  /* data */
  pfail(C, "{\"type\":\"data\"}", B, "missing field \"payload\"");
  pfail(C, "{\"type\":\"data\",\"payload\":{\"a\":1}}", B, "field \"payload\" must be a string");
  pfail(C, "{\"type\":\"data\",\"payload\":\"x\",\"reliable\":false}", B, "always reliable");
  pfail(C, "{\"type\":\"data\",\"payload\":\"x\",\"to\":\"bob\"}", B, "field \"to\" must be an array");
  pfail(C, "{\"type\":\"data\",\"payload\":\"x\",\"to\":[\"\"]}", B, "field \"to[0]\" must not be empty");
  hd_signal_msg_t m;
  parse_ok(C, "{\"type\":\"data\",\"payload\":\"\",\"reliable\":true,\"to\":[]}", &m);
  assert_int_equal(m.data.n_to, 0);
  hd_signal_msg_free(&m);
  /* ping */
  pfail(C, "{\"type\":\"ping\"}", B, "missing field \"t\"");
  pfail(C, "{\"type\":\"ping\",\"t\":-1}", B, "field \"t\" must be in 0..9007199254740991");
  pfail(C, "{\"type\":\"ping\",\"t\":9007199254740992}", B, "field \"t\"");
  pfail(C, "{\"type\":\"ping\",\"t\":1.5}", B, "field \"t\" must be an integer");
  (void)L;
}

static void test_node_field_errors(void **state) {
  const hd_signal_errcode_t B = HD_SIGNAL_ERR_BAD_REQUEST;
  pfail(N, "{\"type\":\"error\",\"code\":404,\"reason\":\"forbidden\",\"message\":\"\"}", B,
        "404 does not go with reason \"forbidden\" (403)");
  pfail(N, "{\"type\":\"error\",\"code\":400,\"reason\":\"oops\",\"message\":\"\"}", B,
        "field \"reason\" has an unknown value \"oops\"");
  pfail(N, "{\"type\":\"error\",\"code\":400,\"reason\":\"bad_request\"}", B, "missing field \"message\"");
  pfail(N, "{\"type\":\"left\",\"reason\":\"bored\"}", B, "field \"reason\" has an unknown value \"bored\"");
  pfail(N, "{\"type\":\"left\"}", B, "missing field \"reason\"");
  pfail(
      N,
      "{\"type\":\"track_published\",\"participant_sid\":\"PA\",\"track\":{\"sid\":\"TR\",\"kind\":\"audio\","
      "\"source\":\"screen\",\"muted\":false,\"width\":0,\"height\":0,\"codec\":\"opus\"}}",
      B, "field \"track.source\": source \"screen\" does not carry audio");
  pfail(
      N,
      "{\"type\":\"track_published\",\"participant_sid\":\"PA\",\"track\":{\"sid\":\"TR\",\"kind\":\"audio\","
      "\"source\":\"microphone\",\"muted\":false,\"width\":0,\"height\":0}}",
      B, "missing field \"track.codec\"");
  pfail(N, "{\"type\":\"track_published\",\"participant_sid\":\"PA\"}", B, "missing field \"track\"");
  pfail(N, "{\"type\":\"track_muted\",\"participant_sid\":\"PA\",\"track_sid\":\"TR\"}", B,
        "missing field \"muted\"");
  pfail(N, "{\"type\":\"active_speakers\",\"speakers\":[{\"sid\":\"PA\",\"level\":1.5}]}", B,
        "field \"speakers[0].level\" must be in 0..1");
  pfail(N, "{\"type\":\"active_speakers\",\"speakers\":[{\"sid\":\"PA\",\"level\":\"loud\"}]}", B,
        "must be a number");
  pfail(N, "{\"type\":\"active_speakers\",\"speakers\":[{\"sid\":\"PA\"}]}", B,
        "missing field \"speakers[0].level\"");
  pfail(N,
        "{\"type\":\"participant_joined\",\"participant\":{\"sid\":\"PA\",\"identity\":\"\",\"name\":\"\","
        "\"metadata\":\"\",\"joined_at\":0,\"tracks\":[]}}",
        B, "field \"participant.identity\" must not be empty");
  pfail(N,
        "{\"type\":\"participant_left\",\"participant\":{\"sid\":\"PA\",\"identity\":\"a\",\"name\":\"\","
        "\"metadata\":\"\",\"joined_at\":0,\"tracks\":[{\"sid\":\"TR\"}]}}",
        B, "missing field \"participant.tracks[0].kind\"");
  pfail(N,
        "{\"type\":\"participant_updated\",\"participant\":{\"sid\":\"PA\",\"identity\":\"a\",\"name\":\"\","
        "\"metadata\":\"\",\"joined_at\":0,\"tracks\":[],\"permissions\":{\"can_publish\":true}}}",
        B, "missing field \"participant.permissions.can_subscribe\"");
  pfail(N,
        "{\"type\":\"subscriber_offer\",\"sdp\":\"v=0\",\"tracks\":[{\"mid\":\"0\",\"track_sid\":\"TR\"}]}",
        B, "missing field \"tracks[0].participant_sid\"");
  pfail(N, "{\"type\":\"publish_answer\",\"sdp\":\"v=0\",\"tracks\":[{\"cid\":\"c\"}]}", B,
        "missing field \"tracks[0].sid\"");
  pfail(N, "{\"type\":\"data\",\"payload\":\"x\"}", B, "missing field \"from\"");

  /* joined: its nested objects name their paths */
  hd_signal_msg_t m;
  hd_signal_participant_t self = {"PA_a", "a", "", "", 0, NULL, 0, 1, {0}};
  const char *badurl[] = {"http://x"};
  hd_signal_ice_server_t ice = {badurl, 1, NULL, NULL};
  memset(&m, 0, sizeof m);
  m.type = HD_SIGNAL_JOINED;
  m.joined.participant = self;
  m.joined.room = (hd_signal_room_t){"r", "RM", 0, 0};
  m.joined.ping_interval = 10;
  m.joined.ping_timeout = 30;
  assert_true(hd_signal_write(&m, out, sizeof out) > 0);
  m.joined.ice_servers = &ice;
  m.joined.n_ice_servers = 1;
  hd_signal_error_t e;
  assert_int_equal(hd_signal_check(&m, &e), HD_EINVAL);
  assert_string_equal(e.message, "field \"ice_servers[0].urls[0]\" must start with stun:, turn: or turns:");
  m.joined.n_ice_servers = 0;
  m.joined.ping_interval = 0;
  assert_int_equal(hd_signal_check(&m, &e), HD_EINVAL);
  assert_string_equal(e.message, "field \"ping_interval\" must be in 1..3600");
  m.joined.ping_interval = 10;
  m.joined.room.name = NULL;
  assert_int_equal(hd_signal_check(&m, &e), HD_EINVAL);
  assert_string_equal(e.message, "missing field \"room.name\"");
  pfail(N,
        "{\"type\":\"joined\",\"participant\":{\"sid\":\"PA\",\"identity\":\"a\",\"name\":\"\",\"metadata\":"
        "\"\","
        "\"joined_at\":0,\"tracks\":[]},\"room\":{\"name\":\"r\",\"sid\":\"RM\",\"created_at\":0,\"max_"
        "participants\":0},"
        "\"participants\":[],\"ice_servers\":[],\"ping_interval\":10,\"ping_timeout\":30,\"protocol\":1}",
        B, "missing field \"participant.permissions\"");
}

/* ---------------------------------------------------------------- caps */

static void test_sizes(void **state) {
  static char buf[HD_SIGNAL_MAX_NODE_MSG + 64];
  hd_signal_msg_t m;
  const hd_signal_errcode_t L = HD_SIGNAL_ERR_TOO_LARGE;

  /* whole message: 65536 bytes from a client is fine, 65537 is not */
  int n = snprintf(buf, sizeof buf, "{\"type\":\"ping\",\"t\":1}");
  memset(buf + n, ' ', HD_SIGNAL_MAX_MSG - (size_t)n);
  buf[HD_SIGNAL_MAX_MSG] = 0;
  parse_ok(C, buf, &m);
  hd_signal_msg_free(&m);
  buf[HD_SIGNAL_MAX_MSG] = ' ';
  buf[HD_SIGNAL_MAX_MSG + 1] = 0;
  parse_fail(C, buf, HD_SIGNAL_MAX_MSG + 1, L, "message is 65537 bytes; the limit is 65536");
  /* ...but from the node up to 1 MiB */
  n = snprintf(buf, sizeof buf, "{\"type\":\"pong\",\"t\":1}");
  memset(buf + n, ' ', HD_SIGNAL_MAX_NODE_MSG - (size_t)n);
  buf[HD_SIGNAL_MAX_NODE_MSG] = 0;
  parse_ok(N, buf, &m);
  hd_signal_msg_free(&m);
  parse_fail(N, buf, HD_SIGNAL_MAX_NODE_MSG + 1, L, "limit is 1048576");

  /* data payload: 15360 ok, 15361 too large */
  snprintf(buf, sizeof buf, "{\"type\":\"data\",\"payload\":\"%s\"}", rep('p', HD_SIGNAL_MAX_PAYLOAD));
  parse_ok(C, buf, &m);
  assert_int_equal(strlen(m.data.payload), HD_SIGNAL_MAX_PAYLOAD);
  hd_signal_msg_free(&m);
  snprintf(buf, sizeof buf, "{\"type\":\"data\",\"payload\":\"%s\"}", rep('p', HD_SIGNAL_MAX_PAYLOAD + 1));
  pfail(C, buf, L, "field \"payload\" is longer than 15360 bytes");
  /* the cap counts decoded bytes: 15360 escaped "\n" (2 bytes each on the wire) fit */
  {
    char *p = buf + snprintf(buf, sizeof buf, "{\"type\":\"data\",\"payload\":\"");
    for (int i = 0; i < HD_SIGNAL_MAX_PAYLOAD; i++)
      *p++ = '\\', *p++ = 'n';
    strcpy(p, "\"}");
    parse_ok(C, buf, &m);
    assert_int_equal(strlen(m.data.payload), HD_SIGNAL_MAX_PAYLOAD);
    hd_signal_msg_free(&m);
  }

  /* metadata 4096 / 4097, in join and update_metadata */
  snprintf(buf, sizeof buf, "{\"type\":\"update_metadata\",\"metadata\":\"%s\"}",
           rep('m', HD_SIGNAL_MAX_METADATA));
  parse_ok(C, buf, &m);
  hd_signal_msg_free(&m);
  snprintf(buf, sizeof buf, "{\"type\":\"update_metadata\",\"metadata\":\"%s\"}",
           rep('m', HD_SIGNAL_MAX_METADATA + 1));
  pfail(C, buf, L, "field \"metadata\" is longer than 4096 bytes");
  snprintf(buf, sizeof buf, "{\"type\":\"join\",\"token\":\"t\",\"metadata\":\"%s\"}",
           rep('m', HD_SIGNAL_MAX_METADATA + 1));
  pfail(C, buf, L, "metadata");
  /* name 127 / 128 */
  snprintf(buf, sizeof buf, "{\"type\":\"update_metadata\",\"name\":\"%s\"}", rep('n', HD_SIGNAL_MAX_NAME));
  parse_ok(C, buf, &m);
  hd_signal_msg_free(&m);
  snprintf(buf, sizeof buf, "{\"type\":\"update_metadata\",\"name\":\"%s\"}",
           rep('n', HD_SIGNAL_MAX_NAME + 1));
  pfail(C, buf, L, "field \"name\" is longer than 127 bytes");
  /* token 4096 / 4097 */
  snprintf(buf, sizeof buf, "{\"type\":\"join\",\"token\":\"%s\"}", rep('t', HD_SIGNAL_MAX_TOKEN));
  parse_ok(C, buf, &m);
  hd_signal_msg_free(&m);
  snprintf(buf, sizeof buf, "{\"type\":\"join\",\"token\":\"%s\"}", rep('t', HD_SIGNAL_MAX_TOKEN + 1));
  pfail(C, buf, L, "field \"token\" is longer than 4096 bytes");
  /* sid 63 / 64 */
  snprintf(buf, sizeof buf, "{\"type\":\"mute\",\"track_sid\":\"%s\",\"muted\":true}",
           rep('s', HD_SIGNAL_MAX_SID));
  parse_ok(C, buf, &m);
  hd_signal_msg_free(&m);
  snprintf(buf, sizeof buf, "{\"type\":\"mute\",\"track_sid\":\"%s\",\"muted\":true}",
           rep('s', HD_SIGNAL_MAX_SID + 1));
  pfail(C, buf, L, "field \"track_sid\" is longer than 63 bytes");

  /* arrays: track_sids 100 / 101, tracks 16 / 17, to 64 / 65 */
  for (int cnt = HD_SIGNAL_MAX_TRACK_SIDS; cnt <= HD_SIGNAL_MAX_TRACK_SIDS + 1; cnt++) {
    char *p = buf + sprintf(buf, "{\"type\":\"subscribe\",\"track_sids\":[");
    for (int i = 0; i < cnt; i++)
      p += sprintf(p, "%s\"TR_%d\"", i ? "," : "", i);
    strcpy(p, "]}");
    if (cnt == HD_SIGNAL_MAX_TRACK_SIDS) {
      parse_ok(C, buf, &m);
      assert_int_equal(m.subscribe.n_track_sids, cnt);
      hd_signal_msg_free(&m);
    } else
      pfail(C, buf, L, "field \"track_sids\" has more than 100 entries");
  }
  for (int cnt = HD_SIGNAL_MAX_TRACKS; cnt <= HD_SIGNAL_MAX_TRACKS + 1; cnt++) {
    char *p = buf + sprintf(buf, "{\"type\":\"publish_offer\",\"sdp\":\"v=0\",\"tracks\":[");
    for (int i = 0; i < cnt; i++)
      p += sprintf(p, "%s{\"cid\":\"c%d\",\"mid\":\"%d\",\"kind\":\"audio\",\"source\":\"microphone\"}",
                   i ? "," : "", i, i);
    strcpy(p, "]}");
    if (cnt == HD_SIGNAL_MAX_TRACKS) {
      parse_ok(C, buf, &m);
      hd_signal_msg_free(&m);
    } else
      pfail(C, buf, L, "field \"tracks\" has more than 16 entries");
  }
  for (int cnt = HD_SIGNAL_MAX_TO; cnt <= HD_SIGNAL_MAX_TO + 1; cnt++) {
    char *p = buf + sprintf(buf, "{\"type\":\"data\",\"payload\":\"x\",\"to\":[");
    for (int i = 0; i < cnt; i++)
      p += sprintf(p, "%s\"u%d\"", i ? "," : "", i);
    strcpy(p, "]}");
    if (cnt == HD_SIGNAL_MAX_TO) {
      parse_ok(C, buf, &m);
      hd_signal_msg_free(&m);
    } else
      pfail(C, buf, L, "field \"to\" has more than 64 entries");
  }

  /* builders enforce the same caps */
  assert_int_equal(hd_signal_write_data(NULL, rep('p', HD_SIGNAL_MAX_PAYLOAD), NULL, 0, out, sizeof out),
                   (int)strlen("{\"type\":\"data\",\"payload\":\"\"}") + HD_SIGNAL_MAX_PAYLOAD);
  assert_int_equal(hd_signal_write_data(NULL, rep('p', HD_SIGNAL_MAX_PAYLOAD + 1), NULL, 0, out, sizeof out),
                   HD_EINVAL);
  hd_signal_error_t e;
  memset(&m, 0, sizeof m);
  m.type = HD_SIGNAL_UPDATE_METADATA;
  m.update_metadata.metadata = rep('m', HD_SIGNAL_MAX_METADATA + 1);
  assert_int_equal(hd_signal_check(&m, &e), HD_EINVAL);
  assert_int_equal(e.code, L);
  assert_string_equal(e.message, "field \"metadata\" is longer than 4096 bytes");
  const char *sids[HD_SIGNAL_MAX_TRACK_SIDS + 1];
  for (int i = 0; i <= HD_SIGNAL_MAX_TRACK_SIDS; i++)
    sids[i] = "TR";
  assert_true(hd_signal_write_subscribe(NULL, 1, sids, HD_SIGNAL_MAX_TRACK_SIDS, out, sizeof out) > 0);
  assert_int_equal(hd_signal_write_subscribe(NULL, 1, sids, HD_SIGNAL_MAX_TRACK_SIDS + 1, out, sizeof out),
                   HD_EINVAL);
  /* a client message whose text would pass 64 KiB is refused by the writer */
  static char bigsdp[HD_SIGNAL_MAX_MSG + 1];
  memset(bigsdp, 'a', HD_SIGNAL_MAX_MSG);
  bigsdp[HD_SIGNAL_MAX_MSG] = 0;
  assert_int_equal(hd_signal_write_subscriber_answer(NULL, bigsdp, out, sizeof out), HD_EINVAL);
  /* ...while the same SDP in a node message is fine */
  assert_true(hd_signal_write_subscriber_offer(bigsdp, NULL, 0, out, sizeof out) > HD_SIGNAL_MAX_MSG);
}

/* ---------------------------------------------------------------- unicode */

static void test_unicode(void **state) {
  hd_signal_msg_t m;
  /* raw UTF-8 and \u escapes (incl. a surrogate pair) both decode to UTF-8 */
  parse_ok(C,
           "{\"type\":\"join\",\"token\":\"t\",\"name\":\"李雷 \xf0\x9f\x8e\x89\","
           "\"metadata\":\"caf\\u00e9 \\ud83c\\udf89 \\\"q\\\" \\\\ / \\t\"}",
           &m);
  assert_string_equal(m.join.name, "李雷 🎉");
  assert_string_equal(m.join.metadata, "café 🎉 \"q\" \\ / \t");
  hd_signal_msg_free(&m);

  /* caps count UTF-8 bytes: 42 x "李" (3 bytes) + "a" = 127 fits, + "b" does not */
  char name[200] = "", text[300];
  for (int i = 0; i < 42; i++)
    strcat(name, "李");
  strcat(name, "a");
  snprintf(text, sizeof text, "{\"type\":\"update_metadata\",\"name\":\"%s\"}", name);
  parse_ok(C, text, &m);
  assert_int_equal(strlen(m.update_metadata.name), 127);
  hd_signal_msg_free(&m);
  strcat(name, "b");
  snprintf(text, sizeof text, "{\"type\":\"update_metadata\",\"name\":\"%s\"}", name);
  pfail(C, text, HD_SIGNAL_ERR_TOO_LARGE, "name");

  /* writer emits raw UTF-8 (not \u escapes) and round-trips it */
  assert_true(hd_signal_write_update_metadata("ü", "{\"emoji\":\"🎉\"}", "Zoë", out, sizeof out) > 0);
  assert_string_equal(out,
                      "{\"type\":\"update_metadata\",\"id\":\"ü\",\"metadata\":\"{\\\"emoji\\\":\\\"🎉\\\"}\","
                      "\"name\":\"Zoë\"}");
  parse_ok(C, out, &m);
  assert_string_equal(m.update_metadata.name, "Zoë");
  assert_string_equal(m.update_metadata.metadata, "{\"emoji\":\"🎉\"}");
  hd_signal_msg_free(&m);
  /* control characters are escaped on the way out */
  assert_true(hd_signal_write_data(NULL, "a\nb\x01", NULL, 0, out, sizeof out) > 0);
  assert_string_equal(out, "{\"type\":\"data\",\"payload\":\"a\\nb\\u0001\"}");

  /* invalid UTF-8 from the caller is refused by the writer */
  hd_signal_error_t e;
  memset(&m, 0, sizeof m);
  m.type = HD_SIGNAL_UPDATE_METADATA;
  m.update_metadata.name = "bad\xc3";
  assert_int_equal(hd_signal_check(&m, &e), HD_EINVAL);
  assert_string_equal(e.message, "field \"name\" is not valid UTF-8");
  assert_int_equal(hd_signal_write_update_metadata(NULL, "\xed\xa0\x80", NULL, out, sizeof out), HD_EINVAL);
  const char *to[] = {"ok", "\xff"};
  assert_int_equal(hd_signal_write_data(NULL, "x", to, 2, out, sizeof out), HD_EINVAL);
}

/* ---------------------------------------------------------------- writer */

static void test_writer_errors(void **state) {
  hd_signal_msg_t m;
  hd_signal_error_t e;
  char small[16];

  /* too small a buffer: 16 bytes of text need 17 with the NUL */
  assert_int_equal(hd_signal_write_leave(NULL, small, sizeof small), HD_ENOSPC);
  assert_string_equal(small, "");
  char exact[17];
  assert_int_equal(hd_signal_write_leave(NULL, exact, sizeof exact), 16);
  assert_string_equal(exact, "{\"type\":\"leave\"}");
  assert_int_equal(hd_signal_write_leave(NULL, NULL, 10), HD_EINVAL);
  assert_int_equal(hd_signal_write_leave(NULL, exact, 0), HD_EINVAL);

  /* NULL / bad members */
  assert_int_equal(hd_signal_write_join(NULL, NULL, 1, NULL, NULL, out, sizeof out), HD_EINVAL);
  assert_int_equal(hd_signal_write_mute(NULL, "", 1, out, sizeof out), HD_EINVAL);
  assert_int_equal(hd_signal_write_ping(NULL, -5, out, sizeof out), HD_EINVAL);
  assert_int_equal(hd_signal_write_leave("", out, sizeof out), HD_EINVAL);
  assert_int_equal(hd_signal_write_subscribe(NULL, 1, NULL, 3, out, sizeof out), HD_EINVAL);
  const char *nulls[] = {"TR", NULL};
  assert_int_equal(hd_signal_write_subscribe(NULL, 1, nulls, 2, out, sizeof out), HD_EINVAL);
  assert_int_equal(hd_signal_write_subscribe(NULL, 1, nulls, 0, out, sizeof out), HD_EINVAL); /* empty */
  hd_signal_pub_track_t bad = {"c", "0", HD_SIGNAL_KIND_AUDIO, (hd_signal_source_t)9, 0, 0, 0};
  assert_int_equal(hd_signal_write_publish_offer(NULL, SDP, &bad, 1, out, sizeof out), HD_EINVAL);
  bad.source = HD_SIGNAL_SOURCE_CAMERA; /* video source on an audio track */
  assert_int_equal(hd_signal_write_publish_offer(NULL, SDP, &bad, 1, out, sizeof out), HD_EINVAL);
  assert_int_equal(hd_signal_write_left((hd_signal_left_reason_t)99, NULL, out, sizeof out), HD_EINVAL);
  assert_int_equal(hd_signal_write_error(NULL, HD_SIGNAL_ERR_NONE, "x", out, sizeof out), HD_EINVAL);
  assert_int_equal(hd_signal_write_error(NULL, HD_SIGNAL_ERR_COUNT, "x", out, sizeof out), HD_EINVAL);
  hd_signal_speaker_t loud = {"PA", 2.0};
  assert_int_equal(hd_signal_write_active_speakers(&loud, 1, out, sizeof out), HD_EINVAL);
  assert_int_equal(hd_signal_write_track_published("PA", NULL, out, sizeof out), HD_EINVAL);
  memset(&m, 0, sizeof m);
  assert_int_equal(hd_signal_write(&m, out, sizeof out), HD_EINVAL); /* type NONE */
  m.type = HD_SIGNAL_TYPE_COUNT;
  assert_int_equal(hd_signal_check(&m, &e), HD_EINVAL);
  assert_int_equal(hd_signal_check(NULL, NULL), HD_EINVAL);
  assert_int_equal(hd_signal_write(NULL, out, sizeof out), HD_EINVAL);

  /* error replies always go out: long text is cut at a character boundary,
   * invalid bytes become '?', and an unusable id is dropped */
  char msg[400] = "";
  for (int i = 0; i < 100; i++)
    strcat(msg, "é"); /* 200 bytes */
  strcat(msg, "\xff");
  for (int i = 0; i < 40; i++)
    strcat(msg, "€"); /* 3 bytes each */
  assert_true(hd_signal_write_error("\xff", HD_SIGNAL_ERR_BAD_REQUEST, msg, out, sizeof out) > 0);
  parse_ok(N, out, &m);
  assert_null(m.id);
  assert_true(strlen(m.error.message) <= HD_SIGNAL_MAX_TEXT);
  assert_int_equal(strlen(m.error.message), 200 + 1 + 18 * 3);
  assert_int_equal(m.error.message[200], '?');
  hd_signal_msg_free(&m);
  assert_true(hd_signal_write_error(rep('i', 65), HD_SIGNAL_ERR_RATE_LIMITED, NULL, out, sizeof out) > 0);
  assert_string_equal(out, "{\"type\":\"error\",\"code\":429,\"reason\":\"rate_limited\",\"message\":\"\"}");
  assert_int_equal(hd_signal_write_parse_error(NULL, out, sizeof out), HD_EINVAL);
}

/* ---------------------------------------------------------------- draining */

/* A draining node's messages (cluster, docs/protocol.md "Error codes"), as
 * src/cmd/serve_cluster.c writes them, parse as node messages with their
 * redirect; the writer puts the redirect back. */
static void test_node_draining(void **state) {
  hd_signal_msg_t m;
  parse_ok(N,
           "{\"type\":\"error\",\"code\":503,\"reason\":\"node_draining\",\"message\":\"node n1 is "
           "draining\",\"retry_after\":1,\"id\":\"j\",\"redirect\":\"http://10.0.0.2:7880\"}",
           &m);
  assert_int_equal(m.error.code, HD_SIGNAL_ERR_NODE_DRAINING);
  assert_int_equal(m.error.retry_after, 1);
  assert_string_equal(m.error.redirect, "http://10.0.0.2:7880");
  hd_signal_msg_free(&m);
  parse_ok(N,
           "{\"type\":\"left\",\"reason\":\"node_draining\",\"message\":\"m\",\"redirect\":\"https://"
           "eu-2.example.com\"}",
           &m);
  assert_int_equal(m.left.reason, HD_SIGNAL_LEFT_NODE_DRAINING);
  assert_string_equal(m.left.redirect, "https://eu-2.example.com");
  hd_signal_msg_free(&m);
  parse_ok(N, "{\"type\":\"left\",\"reason\":\"node_draining\"}", &m); /* no other node known */
  assert_null(m.left.redirect);
  hd_signal_msg_free(&m);
  pfail(N, "{\"type\":\"left\",\"reason\":\"node_draining\",\"redirect\":\"\"}", HD_SIGNAL_ERR_BAD_REQUEST,
        "redirect");
  hd_signal_msg_t w = {.type = HD_SIGNAL_LEFT};
  w.left.reason = HD_SIGNAL_LEFT_NODE_DRAINING;
  w.left.redirect = "http://n2:7880";
  assert_true(hd_signal_write(&w, out, sizeof out) > 0);
  assert_non_null(strstr(out, "\"reason\":\"node_draining\""));
  assert_non_null(strstr(out, "\"redirect\":\"http://n2:7880\""));
  assert_string_equal(hd_signal_left_reason_name(HD_SIGNAL_LEFT_NODE_DRAINING), "node_draining");
}

/* ---------------------------------------------------------------- names */

static void test_names(void **state) {
  static const struct {
    hd_signal_errcode_t c;
    int status;
    const char *reason;
  } want[] = {
      {HD_SIGNAL_ERR_BAD_REQUEST, 400, "bad_request"},
      {HD_SIGNAL_ERR_UNAUTHORIZED, 401, "unauthorized"},
      {HD_SIGNAL_ERR_TOKEN_EXPIRED, 401, "token_expired"},
      {HD_SIGNAL_ERR_FORBIDDEN, 403, "forbidden"},
      {HD_SIGNAL_ERR_NOT_FOUND, 404, "not_found"},
      {HD_SIGNAL_ERR_CONFLICT, 409, "conflict"},
      {HD_SIGNAL_ERR_TOO_LARGE, 413, "too_large"},
      {HD_SIGNAL_ERR_RATE_LIMITED, 429, "rate_limited"},
      {HD_SIGNAL_ERR_INTERNAL, 500, "internal"},
      {HD_SIGNAL_ERR_ROOM_FULL, 503, "room_full"},
      {HD_SIGNAL_ERR_NODE_FULL, 503, "node_full"},
      {HD_SIGNAL_ERR_NODE_DRAINING, 503, "node_draining"},
      {HD_SIGNAL_ERR_CLUSTER_UNAVAILABLE, 503, "cluster_unavailable"},
  };
  hd_signal_msg_t m;
  assert_int_equal(sizeof want / sizeof want[0], HD_SIGNAL_ERR_COUNT - 1);
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    assert_int_equal(hd_signal_err_status(want[i].c), want[i].status);
    assert_string_equal(hd_signal_err_reason(want[i].c), want[i].reason);
    /* every code round-trips through an error message */
    assert_true(hd_signal_write_error("x", want[i].c, "m", out, sizeof out) > 0);
    parse_ok(N, out, &m);
    assert_int_equal(m.error.code, want[i].c);
    hd_signal_msg_free(&m);
  }
  assert_int_equal(hd_signal_err_status(HD_SIGNAL_ERR_NONE), 0);
  assert_int_equal(hd_signal_err_status((hd_signal_errcode_t)-1), 0);
  assert_string_equal(hd_signal_err_reason(HD_SIGNAL_ERR_COUNT), "");

  assert_int_equal(hd_signal_err_from_token(0), HD_SIGNAL_ERR_NONE);
  assert_int_equal(hd_signal_err_from_token(HD_EEXPIRED), HD_SIGNAL_ERR_TOKEN_EXPIRED);
  assert_int_equal(hd_signal_err_from_token(HD_EFORBIDDEN), HD_SIGNAL_ERR_FORBIDDEN);
  assert_int_equal(hd_signal_err_from_token(HD_EAUTH), HD_SIGNAL_ERR_UNAUTHORIZED);
  assert_int_equal(hd_signal_err_from_token(HD_EPROTO), HD_SIGNAL_ERR_UNAUTHORIZED);
  assert_int_equal(hd_signal_err_from_token(HD_EUNSUPPORTED), HD_SIGNAL_ERR_UNAUTHORIZED);
  assert_int_equal(hd_signal_err_from_token(HD_ENOMEM), HD_SIGNAL_ERR_INTERNAL);

  assert_string_equal(hd_signal_type_name(HD_SIGNAL_DATA), "data");
  assert_string_equal(hd_signal_type_name(HD_SIGNAL_DATA_RECV), "data");
  assert_string_equal(hd_signal_type_name(HD_SIGNAL_SUBSCRIBER_OFFER), "subscriber_offer");
  assert_string_equal(hd_signal_type_name(HD_SIGNAL_NONE), "?");
  assert_string_equal(hd_signal_type_name(HD_SIGNAL_TYPE_COUNT), "?");
  assert_string_equal(hd_signal_kind_name(HD_SIGNAL_KIND_VIDEO), "video");
  assert_string_equal(hd_signal_kind_name((hd_signal_kind_t)2), "?");
  assert_string_equal(hd_signal_source_name(HD_SIGNAL_SOURCE_SCREEN_AUDIO), "screen_audio");
  assert_string_equal(hd_signal_source_name((hd_signal_source_t)-1), "?");
  assert_string_equal(hd_signal_left_reason_name(HD_SIGNAL_LEFT_DUPLICATE_IDENTITY), "duplicate_identity");
  assert_string_equal(hd_signal_left_reason_name(HD_SIGNAL_LEFT_COUNT), "?");
  /* every type has a distinct (name, direction) */
  for (int a = 1; a < HD_SIGNAL_TYPE_COUNT; a++)
    for (int b = a + 1; b < HD_SIGNAL_TYPE_COUNT; b++)
      if (strcmp(hd_signal_type_name(a), hd_signal_type_name(b)) == 0)
        assert_true(dir_of((hd_signal_type_t)a) != dir_of((hd_signal_type_t)b));
}

/* Layer selection messages (docs/protocol.md "Layer selection"). */
static void test_layer_selection(void **state) {
  hd_signal_msg_t b;
  const char *sids[] = {"TR_1", "TR_2"};
  assert_true(hd_signal_write_track_settings("7", sids, 2, 1, 320, 180, 1, out, sizeof out) > 0);
  assert_string_equal(out, "{\"type\":\"track_settings\",\"id\":\"7\",\"track_sids\":[\"TR_1\",\"TR_2\"],"
                           "\"visible\":true,\"width\":320,\"height\":180,\"pinned\":true}");
  parse_ok(C, out, &b);
  assert_int_equal(b.track_settings.n_track_sids, 2);
  assert_int_equal(b.track_settings.width, 320);
  assert_int_equal(b.track_settings.pinned, 1);
  hd_signal_msg_free(&b);
  /* defaults: visible, no size, not pinned */
  parse_ok(C, "{\"type\":\"track_settings\",\"track_sids\":[\"TR_1\"]}", &b);
  assert_int_equal(b.track_settings.visible, 1);
  assert_int_equal(b.track_settings.width, 0);
  assert_int_equal(b.track_settings.pinned, 0);
  assert_int_equal(b.track_settings.max_spatial_layer, -1); /* no caps */
  assert_int_equal(b.track_settings.max_temporal_layer, -1);
  hd_signal_msg_free(&b);
  /* layer caps (hd_client_set_track_settings) */
  assert_true(hd_signal_write_track_settings_max("8", sids, 1, 1, 0, 0, 0, 0, 1, out, sizeof out) > 0);
  assert_string_equal(out, "{\"type\":\"track_settings\",\"id\":\"8\",\"track_sids\":[\"TR_1\"],"
                           "\"visible\":true,\"max_spatial_layer\":0,\"max_temporal_layer\":1}");
  parse_ok(C, out, &b);
  assert_int_equal(b.track_settings.max_spatial_layer, 0);
  assert_int_equal(b.track_settings.max_temporal_layer, 1);
  hd_signal_msg_free(&b);
  pfail(C, "{\"type\":\"track_settings\",\"track_sids\":[\"TR\"],\"max_temporal_layer\":3}",
        HD_SIGNAL_ERR_BAD_REQUEST, "field \"max_temporal_layer\" must be in 0..");
  pfail(C, "{\"type\":\"track_settings\",\"track_sids\":[]}", HD_SIGNAL_ERR_BAD_REQUEST,
        "field \"track_sids\" must not be empty");
  pfail(C, "{\"type\":\"track_settings\",\"track_sids\":[\"TR\"],\"width\":-1}", HD_SIGNAL_ERR_BAD_REQUEST,
        "field \"width\" must be in 0..");
  pfail(C, "{\"type\":\"track_settings\",\"track_sids\":[\"TR\"],\"visible\":1}", HD_SIGNAL_ERR_BAD_REQUEST,
        "field \"visible\" must be true or false");

  assert_true(hd_signal_write_stream_state("PA", "TR", HD_SIGNAL_PAUSE_BANDWIDTH, "f", 1280, 720, out,
                                           sizeof out) > 0);
  assert_string_equal(out, "{\"type\":\"stream_state\",\"participant_sid\":\"PA\",\"track_sid\":\"TR\","
                           "\"state\":\"paused\",\"reason\":\"bandwidth\"}");
  parse_ok(N, out, &b);
  assert_int_equal(b.stream_state.state, HD_SIGNAL_STREAM_PAUSED);
  assert_int_equal(b.stream_state.reason, HD_SIGNAL_PAUSE_BANDWIDTH);
  hd_signal_msg_free(&b);
  assert_true(hd_signal_write_stream_state("PA", "TR", HD_SIGNAL_PAUSE_NONE, "q", 320, 180, out, sizeof out) >
              0);
  assert_string_equal(out, "{\"type\":\"stream_state\",\"participant_sid\":\"PA\",\"track_sid\":\"TR\","
                           "\"state\":\"active\",\"rid\":\"q\",\"width\":320,\"height\":180}");
  parse_ok(N, out, &b);
  assert_string_equal(b.stream_state.rid, "q");
  assert_int_equal(b.stream_state.height, 180);
  hd_signal_msg_free(&b);
  pfail(N, "{\"type\":\"stream_state\",\"participant_sid\":\"PA\",\"track_sid\":\"TR\",\"state\":\"paused\"}",
        HD_SIGNAL_ERR_BAD_REQUEST, "missing field \"reason\"");
  pfail(N,
        "{\"type\":\"stream_state\",\"participant_sid\":\"PA\",\"track_sid\":\"TR\",\"state\":\"paused\","
        "\"reason\":\"\"}",
        HD_SIGNAL_ERR_BAD_REQUEST, "field \"reason\" has an unknown value");
  pfail(N, "{\"type\":\"stream_state\",\"participant_sid\":\"PA\",\"track_sid\":\"TR\",\"state\":\"gone\"}",
        HD_SIGNAL_ERR_BAD_REQUEST, "field \"state\" has an unknown value \"gone\"");

  const char *rids[] = {"q", "h"};
  assert_true(hd_signal_write_publish_layers("TR", rids, 2, out, sizeof out) > 0);
  assert_string_equal(out,
                      "{\"type\":\"publish_layers\",\"track_sid\":\"TR\",\"active_rids\":[\"q\",\"h\"]}");
  parse_ok(N, out, &b);
  assert_int_equal(b.publish_layers.n_active_rids, 2);
  hd_signal_msg_free(&b);
  const char *four[] = {"a", "b", "c", "d"};
  assert_int_equal(hd_signal_write_publish_layers("TR", four, 4, out, sizeof out), HD_EINVAL);
  /* track_refused (node -> publisher): a viewer cannot decode one of its tracks */
  assert_true(hd_signal_write_track_refused("TR_1", "H264", "packetization-mode=1;profile-level-id=64001f",
                                            "bob", out, sizeof out) > 0);
  assert_string_equal(out, "{\"type\":\"track_refused\",\"track_sid\":\"TR_1\",\"codec\":\"H264\","
                           "\"fmtp\":\"packetization-mode=1;profile-level-id=64001f\",\"identity\":\"bob\"}");
  {
    hd_signal_msg_t tr;
    hd_signal_error_t te;
    assert_int_equal(hd_signal_parse(out, strlen(out), HD_SIGNAL_FROM_NODE, &tr, &te), 0);
    assert_int_equal(tr.type, HD_SIGNAL_TRACK_REFUSED);
    assert_string_equal(tr.track_refused.codec, "H264");
    assert_string_equal(tr.track_refused.identity, "bob");
    hd_signal_msg_free(&tr);
    /* a client may not send it; the track and who are required */
    assert_int_equal(hd_signal_parse(out, strlen(out), HD_SIGNAL_FROM_CLIENT, &tr, &te), HD_EPROTO);
    const char *bad = "{\"type\":\"track_refused\",\"codec\":\"H264\",\"identity\":\"bob\"}";
    assert_int_equal(hd_signal_parse(bad, strlen(bad), HD_SIGNAL_FROM_NODE, &tr, &te), HD_EPROTO);
  }

  hd_signal_quality_update_t u[2] = {{"PA_1", HD_SIGNAL_QUALITY_GOOD}, {"PA_2", HD_SIGNAL_QUALITY_LOST}};
  assert_true(hd_signal_write_connection_quality(u, 2, out, sizeof out) > 0);
  assert_string_equal(out, "{\"type\":\"connection_quality\",\"updates\":[{\"participant_sid\":\"PA_1\","
                           "\"quality\":\"good\"},{\"participant_sid\":\"PA_2\",\"quality\":\"lost\"}]}");
  parse_ok(N, out, &b);
  assert_int_equal(b.connection_quality.updates[1].quality, HD_SIGNAL_QUALITY_LOST);
  hd_signal_msg_free(&b);
  pfail(N, "{\"type\":\"connection_quality\",\"updates\":[{\"participant_sid\":\"P\",\"quality\":\"meh\"}]}",
        HD_SIGNAL_ERR_BAD_REQUEST, "field \"updates[0].quality\" has an unknown value \"meh\"");
  assert_string_equal(hd_signal_quality_name(HD_SIGNAL_QUALITY_POOR), "poor");
  /* a client cannot send node messages */
  pfail(C, "{\"type\":\"stream_state\"}", HD_SIGNAL_ERR_BAD_REQUEST, "unknown message type \"stream_state\"");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rt_client),
      cmocka_unit_test(test_rt_joined),
      cmocka_unit_test(test_rt_node),
      cmocka_unit_test(test_builders),
      cmocka_unit_test(test_envelope_errors),
      cmocka_unit_test(test_malformed_json),
      cmocka_unit_test(test_client_field_errors),
      cmocka_unit_test(test_node_field_errors),
      cmocka_unit_test(test_sizes),
      cmocka_unit_test(test_unicode),
      cmocka_unit_test(test_writer_errors),
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_node_draining),
      cmocka_unit_test(test_layer_selection),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
