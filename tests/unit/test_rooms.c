/* Unit tests for room signaling (src/sfu/rooms.c) without sockets: join with
 * tokens and tenants, presence events, publishing a Chrome offer, the node's
 * subscriber offer answered (by our own answerer in recvonly mode), data
 * routing, rate limits, mute, duplicate identity, admin operations, webhook
 * events, and cleanup of rooms. Messages the node sends are captured per
 * connection and parsed with the same codec a client would use. */
#include "hd_test.h"

#include <arpa/inet.h>

#include "base/err.h"
#include "cluster/registry.h"
#include "overlay/link.h"
#include "proto/dtls.h"
#include "proto/sdp.h"
#include "proto/sdp_negotiate.h"
#include "proto/token.h"
#include "proto/turn_cred.h"
#include "sfu/node.h"
#include "sfu/session.h"
#include "sfu/signal.h"
#include "sfu/txq.h"

#define MAX_MSGS 64
#define NCONN 6

typedef struct {
  char *msgs[MAX_MSGS];
  int n;
  int closed;
  hd_participant_t *p;
} conn_t;

static conn_t g_conn[NCONN];
static hd_node_t *g_node;
static hd_dtls_cert_t *g_cert;
static int g_events[8];
static hd_time_t g_now;
static const int64_t UNIX_NOW = 1800000000;

static void on_send(void *ud, void *c, const char *text, size_t len) {
  conn_t *k = c;
  if (k->n < MAX_MSGS) k->msgs[k->n++] = strndup(text, len);
}
static void on_close(void *ud, void *c, int code, const char *reason) {
  conn_t *k = c;
  k->closed = code;
  k->p = NULL; /* what the shell does: the participant is gone */
}
static char g_room_sid[64]; /* the room sid of the last room_started */
static void on_event(void *ud, const hd_webhook_event_t *ev) {
  g_events[ev->type]++;
  if (ev->type == HD_WEBHOOK_ROOM_STARTED && ev->room_sid)
    snprintf(g_room_sid, sizeof g_room_sid, "%s", ev->room_sid);
}

static const char *lookup(void *ud, const char *key) {
  if (!strcmp(key, "appA")) return "secretA";
  if (!strcmp(key, "appB")) return "secretB";
  return NULL;
}

static void clear(conn_t *k) {
  for (int i = 0; i < k->n; i++)
    free(k->msgs[i]);
  k->n = 0;
}

static int setup(void **st) {
  (void)st;
  memset(g_conn, 0, sizeof g_conn);
  memset(g_events, 0, sizeof g_events);
  g_now = HD_SEC(100);
  if (!g_cert && hd_dtls_cert_generate(&g_cert) < 0) return -1;
  hd_node_config_t cfg = {.rtc_ip = "127.0.0.1",
                          .rtc_port = 7881,
                          .max_participants = 4,
                          .signal_send = on_send,
                          .signal_close = on_close,
                          .on_event = on_event};
  return hd_node_new(&g_node, &cfg, g_cert);
}

/* Session caps (issue 12 item 7): at most 3 sessions per app, 2 per identity. */
static int setup_caps(void **st) {
  (void)st;
  memset(g_conn, 0, sizeof g_conn);
  memset(g_events, 0, sizeof g_events);
  g_now = HD_SEC(100);
  if (!g_cert && hd_dtls_cert_generate(&g_cert) < 0) return -1;
  hd_node_config_t cfg = {.rtc_ip = "127.0.0.1",
                          .rtc_port = 7881,
                          .max_sessions = 10,
                          .max_sessions_per_app = 3,
                          .max_sessions_per_identity = 2,
                          .signal_send = on_send,
                          .signal_close = on_close,
                          .on_event = on_event};
  return hd_node_new(&g_node, &cfg, g_cert);
}

static int teardown(void **st) {
  (void)st;
  hd_node_free(g_node);
  for (int i = 0; i < NCONN; i++)
    clear(&g_conn[i]);
  return 0;
}

static char *token(const char *app, const char *room, const char *id, int publish, int data, int hidden,
                   int admin, int64_t exp) {
  static char out[HD_TOKEN_MAX];
  hd_token_claims_t c;
  memset(&c, 0, sizeof c);
  snprintf(c.key, sizeof c.key, "%s", app);
  snprintf(c.room, sizeof c.room, "%s", room);
  snprintf(c.identity, sizeof c.identity, "%s", id);
  c.room_join = 1;
  c.can_publish = publish;
  c.can_subscribe = 1;
  c.can_publish_data = data;
  c.hidden = hidden;
  c.room_admin = admin;
  c.iat = UNIX_NOW - 10;
  c.exp = exp ? exp : UNIX_NOW + 3600;
  assert_true(hd_token_mint(&c, !strcmp(app, "appA") ? "secretA" : "secretB", out, sizeof out) > 0);
  return out;
}

static int send_msg(int i, const char *text) {
  conn_t *k = &g_conn[i];
  return hd_node_rtc_message(g_node, k, &k->p, text, strlen(text), lookup, NULL, UNIX_NOW, g_now);
}

static int join(int i, const char *tok) {
  char buf[6000];
  snprintf(buf, sizeof buf, "{\"type\":\"join\",\"id\":\"j%d\",\"token\":\"%s\"}", i, tok);
  return send_msg(i, buf);
}

/* Index of the first captured message of `type` at or after `from`, or -1. */
static int find(int i, const char *type, int from) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"type\":\"%s\"", type);
  for (int m = from; m < g_conn[i].n; m++)
    if (strstr(g_conn[i].msgs[m], pat)) return m;
  return -1;
}

/* With a TURN server configured, "joined" hands it out with a credential
 * minted for the participant's identity, valid turn_ttl seconds (docs/turn.md);
 * without, there is no ice_servers. */
static void test_join_ice_servers(void **st) {
  (void)st;
  assert_int_equal(join(0, token("appA", "r", "alice", 1, 1, 0, 0, 0)), 0);
  hd_signal_msg_t m;
  hd_signal_error_t e;
  assert_int_equal(hd_signal_parse(g_conn[0].msgs[0], strlen(g_conn[0].msgs[0]), HD_SIGNAL_FROM_NODE, &m, &e),
                   0);
  assert_int_equal(m.joined.n_ice_servers, 0);
  hd_signal_msg_free(&m);
  hd_node_free(g_node);
  static const char *const urls[] = {"turns:turn.example.org:5349?transport=tcp",
                                     "turn:turn.example.org:3478"};
  hd_node_config_t cfg = {.rtc_ip = "127.0.0.1",
                          .rtc_port = 7881,
                          .signal_send = on_send,
                          .signal_close = on_close,
                          .turn_urls = urls,
                          .n_turn_urls = 2,
                          .turn_secret = "turn-shared-secret-0123",
                          .turn_ttl = 600};
  assert_int_equal(hd_node_new(&g_node, &cfg, g_cert), 0);
  assert_int_equal(join(1, token("appA", "r", "bob", 1, 1, 0, 0, 0)), 0);
  assert_int_equal(hd_signal_parse(g_conn[1].msgs[0], strlen(g_conn[1].msgs[0]), HD_SIGNAL_FROM_NODE, &m, &e),
                   0);
  assert_int_equal(m.type, HD_SIGNAL_JOINED);
  assert_int_equal(m.joined.n_ice_servers, 1);
  const hd_signal_ice_server_t *is = &m.joined.ice_servers[0];
  assert_int_equal(is->n_urls, 2);
  assert_string_equal(is->urls[0], urls[0]);
  assert_string_equal(is->urls[1], urls[1]);
  char user[64], cred[HD_TURN_CRED_LEN];
  assert_int_equal(
      hd_turn_cred_mint("turn-shared-secret-0123", "bob", UNIX_NOW + 600, user, sizeof user, cred), 0);
  assert_string_equal(is->username, "1800000600:bob");
  assert_string_equal(is->credential, cred);
  hd_signal_msg_free(&m);
}

static void test_join_presence_and_tokens(void **st) {
  (void)st;
  assert_int_equal(join(0, token("appA", "r", "alice", 1, 1, 0, 0, 0)), 0);
  assert_true(find(0, "joined", 0) >= 0);
  assert_non_null(g_conn[0].p);
  assert_int_equal(join(1, token("appA", "r", "bob", 1, 1, 0, 0, 0)), 0);
  assert_true(strstr(g_conn[1].msgs[0], "\"identity\":\"alice\"") != NULL); /* bob's joined lists alice */
  assert_true(find(0, "participant_joined", 0) >= 0);
  /* another tenant's room "r" is a different room */
  assert_int_equal(join(2, token("appB", "r", "carol", 1, 1, 0, 0, 0)), 0);
  assert_null(strstr(g_conn[2].msgs[0], "alice"));
  assert_int_equal(find(0, "participant_joined", 2), -1);
  /* bad tokens: expired, unknown key, garbage; and a first message that is not join */
  assert_true(join(3, token("appA", "r", "dave", 1, 1, 0, 0, UNIX_NOW - 100)) < 0);
  assert_true(strstr(g_conn[3].msgs[0], "token_expired") != NULL);
  clear(&g_conn[3]);
  assert_true(join(3, "not.a.token") < 0);
  assert_true(strstr(g_conn[3].msgs[0], "\"code\":401") != NULL);
  clear(&g_conn[3]);
  assert_true(send_msg(3, "{\"type\":\"ping\",\"t\":1}") < 0);
  assert_true(strstr(g_conn[3].msgs[0], "first message must be join") != NULL);
  assert_int_equal(hd_node_participant_count(g_node), 3);
  assert_int_equal(g_events[HD_WEBHOOK_PARTICIPANT_JOINED], 3);
  assert_int_equal(g_events[HD_WEBHOOK_ROOM_STARTED], 2);
  /* leaving: others are told, the rooms close with their last participant */
  assert_true(send_msg(1, "{\"type\":\"leave\"}") < 0);
  assert_true(find(0, "participant_left", 0) >= 0);
  hd_node_rtc_closed(g_node, g_conn[0].p, g_now);
  hd_node_rtc_closed(g_node, g_conn[2].p, g_now);
  assert_int_equal(hd_node_participant_count(g_node), 0);
  assert_int_equal(hd_node_room_count(g_node), 0);
  assert_int_equal(g_events[HD_WEBHOOK_ROOM_FINISHED], 2);
}

static char *load_sdp(const char *name) {
  static char buf[16384];
  char path[1024];
  const char *f = __FILE__, *slash = strrchr(f, '/');
  snprintf(path, sizeof path, "%.*s/../fuzz/corpus/fuzz_sdp/%s", (int)(slash - f), f, name);
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  size_t n = fread(buf, 1, sizeof buf - 1, fp);
  fclose(fp);
  buf[n] = 0;
  return buf;
}

static char *load_offer(void) { return load_sdp("chrome_vp8.sdp"); }

/* Builds a JSON string literal of text (escapes CR, LF, quotes, backslashes). */
static void json_str(const char *text, char *out, size_t cap) {
  size_t o = 0;
  out[o++] = '"';
  for (const char *p = text; *p && o + 4 < cap; p++) {
    if (*p == '\r')
      out[o++] = '\\', out[o++] = 'r';
    else if (*p == '\n')
      out[o++] = '\\', out[o++] = 'n';
    else if (*p == '"' || *p == '\\')
      out[o++] = '\\', out[o++] = *p;
    else
      out[o++] = *p;
  }
  out[o++] = '"';
  out[o] = 0;
}

static void test_publish_subscribe_flow(void **st) {
  (void)st;
  assert_int_equal(join(0, token("appA", "r", "alice", 1, 1, 0, 0, 0)), 0);
  assert_int_equal(join(1, token("appA", "r", "bob", 1, 1, 0, 0, 0)), 0);
  clear(&g_conn[0]);
  clear(&g_conn[1]);
  static char msg[40000], sdpj[32000];
  json_str(load_offer(), sdpj, sizeof sdpj);
  snprintf(msg, sizeof msg,
           "{\"type\":\"publish_offer\",\"id\":\"p1\",\"sdp\":%s,\"tracks\":["
           "{\"cid\":\"mic\",\"mid\":\"0\",\"kind\":\"audio\",\"source\":\"microphone\",\"muted\":false},"
           "{\"cid\":\"cam\",\"mid\":\"1\",\"kind\":\"video\",\"source\":\"camera\",\"muted\":false}]}",
           sdpj);
  assert_int_equal(send_msg(0, msg), 0);
  int a = find(0, "publish_answer", 0);
  assert_true(a >= 0);
  hd_signal_msg_t m;
  hd_signal_error_t e;
  assert_int_equal(hd_signal_parse(g_conn[0].msgs[a], strlen(g_conn[0].msgs[a]), HD_SIGNAL_FROM_NODE, &m, &e),
                   0);
  assert_int_equal(m.publish_answer.n_tracks, 2);
  assert_non_null(strstr(m.publish_answer.sdp, "a=ice-lite"));
  char cam_sid[64];
  snprintf(cam_sid, sizeof cam_sid, "%s", m.publish_answer.tracks[1].sid);
  hd_signal_msg_free(&m);
  assert_int_equal(g_events[HD_WEBHOOK_TRACK_PUBLISHED], 2);
  /* bob hears about both tracks and gets a subscriber offer carrying them */
  assert_true(find(1, "track_published", 0) >= 0);
  int o = find(1, "subscriber_offer", 0);
  assert_true(o >= 0);
  assert_int_equal(hd_signal_parse(g_conn[1].msgs[o], strlen(g_conn[1].msgs[o]), HD_SIGNAL_FROM_NODE, &m, &e),
                   0);
  assert_int_equal(m.subscriber_offer.n_tracks, 2);
  /* transport-wide CC is offered to room subscribers (issue 11 item 2): the
   * rtcp-fb on the video codec and the transport sequence number extension */
  assert_non_null(strstr(m.subscriber_offer.sdp, " transport-cc\r\n"));
  assert_non_null(strstr(m.subscriber_offer.sdp, "transport-wide-cc-extensions-01"));
  /* answer it as a receive-only client would (our own answerer, recvonly) */
  hd_sdp_t *offer = malloc(sizeof *offer), *ans = malloc(sizeof *ans);
  hd_sdp_negotiated_t *neg = malloc(sizeof *neg);
  char err[256];
  assert_int_equal(
      hd_sdp_parse(offer, m.subscriber_offer.sdp, strlen(m.subscriber_offer.sdp), err, sizeof err), 0);
  hd_signal_msg_free(&m);
  assert_int_equal(offer->n_media, 2);
  hd_sdp_answer_params_t ap = {.ice_ufrag = "bobufrag",
                               .ice_pwd = "bobpasswordbobpassword",
                               .fingerprint_sha256 = hd_dtls_cert_fingerprint(g_cert),
                               .cand_ip = "127.0.0.1",
                               .cand_port = 50000,
                               .direction = HD_SDP_RECVONLY};
  assert_int_equal(hd_sdp_negotiate(offer, &ap, ans, neg, err, sizeof err), 0);
  static char ans_text[32000];
  assert_true(hd_sdp_write(ans, ans_text, sizeof ans_text) > 0);
  json_str(ans_text, sdpj, sizeof sdpj);
  snprintf(msg, sizeof msg, "{\"type\":\"subscriber_answer\",\"sdp\":%s}", sdpj);
  clear(&g_conn[1]);
  assert_int_equal(send_msg(1, msg), 0);
  assert_int_equal(find(1, "error", 0), -1);
  assert_int_equal(hd_node_session_count(g_node, HD_SESSION_SUBSCRIBE), 1);
  assert_int_equal(hd_node_session_count(g_node, HD_SESSION_PUBLISH), 1);

  /* layer selection: track_settings for a track bob did not subscribe to is
   * refused with what to do; for alice's camera it is taken */
  clear(&g_conn[1]);
  assert_int_equal(send_msg(1, "{\"type\":\"track_settings\",\"id\":\"ts1\",\"track_sids\":[\"TR_nope\"]}"),
                   0);
  int er = find(1, "error", 0);
  assert_true(er >= 0);
  assert_non_null(strstr(g_conn[1].msgs[er], "not subscribed to track TR_nope: subscribe to it first"));
  assert_non_null(strstr(g_conn[1].msgs[er], "\"id\":\"ts1\""));
  clear(&g_conn[1]);
  snprintf(
      msg, sizeof msg,
      "{\"type\":\"track_settings\",\"track_sids\":[\"%s\"],\"visible\":false,\"width\":320,\"height\":180}",
      cam_sid);
  assert_int_equal(send_msg(1, msg), 0);
  assert_int_equal(find(1, "error", 0), -1);
  free(offer);
  free(ans);
  free(neg);
  /* admin: the room lists both, alice's camera can be muted, bob removed */
  char *j = hd_node_admin_participants_json(g_node, "appA", "r");
  assert_non_null(j);
  assert_non_null(strstr(j, "\"identity\":\"alice\""));
  assert_non_null(strstr(j, cam_sid));
  /* bob's downlink: no estimate yet, his subscription to alice's camera listed */
  assert_non_null(strstr(j, "\"downlink\":{\"estimator\":\"none\""));
  assert_non_null(strstr(j, "\"subscriptions\":[{\"track_sid\":"));
  free(j);
  assert_null(hd_node_admin_participants_json(g_node, "appB", "r")); /* tenant isolation */
  assert_int_equal(hd_node_admin_mute(g_node, "appA", "r", "alice", cam_sid, 1, g_now), 0);
  assert_true(find(1, "track_muted", 0) >= 0);
  assert_true(find(0, "track_muted", 0) >= 0); /* an admin mute tells the owner too */
  assert_int_equal(hd_node_admin_remove(g_node, "appA", "r", "bob", g_now), 0);
  assert_true(strstr(g_conn[1].msgs[g_conn[1].n - 1], "\"reason\":\"removed\"") != NULL);
  assert_int_equal(g_conn[1].closed, 1000);
  assert_int_equal(hd_node_session_count(g_node, HD_SESSION_SUBSCRIBE), 0);
  /* closing the room ends alice's publisher PC too */
  assert_int_equal(hd_node_admin_close_room(g_node, "appA", "r", g_now), 0);
  assert_int_equal(hd_node_session_count(g_node, 0), 0);
  assert_int_equal(hd_node_room_count(g_node), 0);
  assert_int_equal(g_events[HD_WEBHOOK_TRACK_UNPUBLISHED], 2);
}

/* A viewer that cannot decode a track refuses its section (port 0 in the
 * subscriber answer): the publisher is told once with "track_refused" (the
 * RTMP ingest then stops passing H.264 through, docs/egress.md), nobody else
 * is, and the viewer's other tracks flow. */
static void test_track_refused(void **st) {
  (void)st;
  assert_int_equal(join(0, token("appA", "r", "alice", 1, 1, 0, 0, 0)), 0);
  assert_int_equal(join(1, token("appA", "r", "bob", 1, 1, 0, 0, 0)), 0);
  static char msg[40000], sdpj[32000], text[32000];
  json_str(load_offer(), sdpj, sizeof sdpj);
  snprintf(msg, sizeof msg,
           "{\"type\":\"publish_offer\",\"id\":\"p1\",\"sdp\":%s,\"tracks\":["
           "{\"cid\":\"mic\",\"mid\":\"0\",\"kind\":\"audio\",\"source\":\"microphone\",\"muted\":false},"
           "{\"cid\":\"cam\",\"mid\":\"1\",\"kind\":\"video\",\"source\":\"camera\",\"muted\":false}]}",
           sdpj);
  assert_int_equal(send_msg(0, msg), 0);
  hd_signal_msg_t m;
  hd_signal_error_t e;
  int a = find(0, "publish_answer", 0);
  assert_true(a >= 0);
  assert_int_equal(hd_signal_parse(g_conn[0].msgs[a], strlen(g_conn[0].msgs[a]), HD_SIGNAL_FROM_NODE, &m, &e),
                   0);
  char cam_sid[64];
  snprintf(cam_sid, sizeof cam_sid, "%s", m.publish_answer.tracks[1].sid);
  hd_signal_msg_free(&m);
  int o = find(1, "subscriber_offer", 0);
  assert_true(o >= 0);
  assert_int_equal(hd_signal_parse(g_conn[1].msgs[o], strlen(g_conn[1].msgs[o]), HD_SIGNAL_FROM_NODE, &m, &e),
                   0);
  /* bob decodes no VP8: his answerer finds no codec in the video section */
  snprintf(text, sizeof text, "%s", m.subscriber_offer.sdp);
  hd_signal_msg_free(&m);
  for (char *p = text; (p = strstr(p, "VP8/90000"));)
    memcpy(p, "XYZ", 3);
  hd_sdp_t *offer = malloc(sizeof *offer), *ans = malloc(sizeof *ans);
  hd_sdp_negotiated_t *neg = malloc(sizeof *neg);
  char err[256];
  assert_int_equal(hd_sdp_parse(offer, text, strlen(text), err, sizeof err), 0);
  hd_sdp_answer_params_t ap = {.ice_ufrag = "bobufrag",
                               .ice_pwd = "bobpasswordbobpassword",
                               .fingerprint_sha256 = hd_dtls_cert_fingerprint(g_cert),
                               .cand_ip = "127.0.0.1",
                               .cand_port = 50000,
                               .direction = HD_SDP_RECVONLY};
  assert_int_equal(hd_sdp_negotiate(offer, &ap, ans, neg, err, sizeof err), 0);
  assert_int_equal(neg->media[1].active, 0); /* video refused */
  static char ans_text[32000];
  assert_true(hd_sdp_write(ans, ans_text, sizeof ans_text) > 0);
  json_str(ans_text, sdpj, sizeof sdpj);
  snprintf(msg, sizeof msg, "{\"type\":\"subscriber_answer\",\"sdp\":%s}", sdpj);
  clear(&g_conn[0]);
  clear(&g_conn[1]);
  assert_int_equal(send_msg(1, msg), 0);
  assert_int_equal(find(1, "error", 0), -1);
  int r = find(0, "track_refused", 0);
  assert_true(r >= 0);
  assert_int_equal(hd_signal_parse(g_conn[0].msgs[r], strlen(g_conn[0].msgs[r]), HD_SIGNAL_FROM_NODE, &m, &e),
                   0);
  assert_string_equal(m.track_refused.track_sid, cam_sid);
  assert_string_equal(m.track_refused.codec, "VP8");
  assert_string_equal(m.track_refused.identity, "bob");
  hd_signal_msg_free(&m);
  assert_int_equal(find(0, "track_refused", r + 1), -1);                    /* once */
  assert_int_equal(find(1, "track_refused", 0), -1);                        /* only to the publisher */
  assert_int_equal(hd_node_session_count(g_node, HD_SESSION_SUBSCRIBE), 1); /* bob still gets audio */
  free(offer);
  free(ans);
  free(neg);
}

/* Data channels on the publisher PC (docs/protocol.md "Data channels"): the
 * m=application section is accepted; without canPublish a data-only offer is
 * still served, but one with audio/video is refused with 403. */
static void test_datachannel_offers(void **st) {
  (void)st;
  assert_int_equal(join(0, token("appA", "r", "alice", 0, 1, 0, 0, 0)), 0); /* no canPublish */
  clear(&g_conn[0]);
  static char msg[40000], sdpj[32000];
  json_str(load_sdp("chrome_datachannel.sdp"), sdpj, sizeof sdpj);
  snprintf(msg, sizeof msg, "{\"type\":\"publish_offer\",\"id\":\"d1\",\"sdp\":%s,\"tracks\":[]}", sdpj);
  assert_int_equal(send_msg(0, msg), 0);
  int a = find(0, "publish_answer", 0);
  assert_true(a >= 0);
  assert_non_null(strstr(g_conn[0].msgs[a], "m=application 7881 UDP/DTLS/SCTP webrtc-datachannel"));
  assert_non_null(strstr(g_conn[0].msgs[a], "a=sctp-port:5000"));
  assert_non_null(strstr(g_conn[0].msgs[a], "a=max-message-size:262144"));
  assert_int_equal(hd_node_session_count(g_node, HD_SESSION_PUBLISH), 1);
  /* audio/video without canPublish: refused, even with no tracks listed */
  clear(&g_conn[0]);
  json_str(load_offer(), sdpj, sizeof sdpj);
  snprintf(msg, sizeof msg, "{\"type\":\"publish_offer\",\"id\":\"d2\",\"sdp\":%s,\"tracks\":[]}", sdpj);
  assert_int_equal(send_msg(0, msg), 0);
  int e = find(0, "error", 0);
  assert_true(e >= 0);
  assert_non_null(strstr(g_conn[0].msgs[e], "\"code\":403"));
  assert_non_null(strstr(g_conn[0].msgs[e], "canPublish"));
  /* ... and with tracks listed, before any negotiation */
  clear(&g_conn[0]);
  snprintf(msg, sizeof msg,
           "{\"type\":\"publish_offer\",\"id\":\"d3\",\"sdp\":%s,\"tracks\":["
           "{\"cid\":\"mic\",\"mid\":\"0\",\"kind\":\"audio\",\"source\":\"microphone\",\"muted\":false}]}",
           sdpj);
  assert_int_equal(send_msg(0, msg), 0);
  assert_true(find(0, "error", 0) >= 0);
  assert_non_null(strstr(g_conn[0].msgs[find(0, "error", 0)], "\"code\":403"));
}

static void test_data_limits_duplicates(void **st) {
  (void)st;
  assert_int_equal(join(0, token("appA", "r", "alice", 1, 1, 0, 0, 0)), 0);
  assert_int_equal(join(1, token("appA", "r", "bob", 1, 1, 0, 0, 0)), 0);
  assert_int_equal(join(2, token("appA", "r", "carol", 0, 0, 1, 0, 0)), 0); /* hidden, no data grant */
  assert_int_equal(find(0, "participant_joined", 0) >= 0 && find(0, "carol", 0) >= 0, 0);
  for (int i = 0; i < 3; i++)
    clear(&g_conn[i]);
  /* data to one identity */
  assert_int_equal(send_msg(0, "{\"type\":\"data\",\"payload\":\"hi bob\",\"to\":[\"bob\"]}"), 0);
  assert_true(find(1, "data", 0) >= 0);
  assert_int_equal(find(2, "data", 0), -1);
  /* no grant, and hidden participants cannot publish */
  assert_int_equal(send_msg(2, "{\"type\":\"data\",\"payload\":\"x\"}"), 0);
  assert_true(strstr(g_conn[2].msgs[0], "canPublishData") != NULL);
  /* rate limit: 100 data messages at once -> burst of 100 passes, then 429 once */
  clear(&g_conn[0]);
  for (int i = 0; i < 105; i++)
    send_msg(0, "{\"type\":\"data\",\"payload\":\"spam\"}");
  int n429 = 0;
  for (int i = 0; i < g_conn[0].n; i++)
    n429 += strstr(g_conn[0].msgs[i], "rate_limited") != NULL;
  assert_int_equal(n429, 1);
  /* malformed JSON keeps the connection */
  assert_int_equal(send_msg(1, "{nope"), 0);
  /* duplicate identity: the older connection is told and closed */
  clear(&g_conn[1]);
  assert_int_equal(join(3, token("appA", "r", "bob", 1, 1, 0, 0, 0)), 0);
  assert_int_equal(g_conn[1].closed, 1000);
  assert_true(find(1, "left", 0) >= 0);
  assert_int_equal(hd_node_participant_count(g_node), 3);
  /* room cap (4): two more joins, the second refused */
  assert_int_equal(join(4, token("appA", "r", "erin", 1, 1, 0, 0, 0)), 0);
  assert_true(join(5, token("appA", "r", "frank", 1, 1, 0, 0, 0)) < 0);
  assert_true(strstr(g_conn[5].msgs[0], "room_full") != NULL);
  hd_node_close_all(g_node, "test end");
  assert_int_equal(hd_node_participant_count(g_node), 0);
  assert_int_equal(hd_node_room_count(g_node), 0);
  assert_non_null(strstr(g_conn[0].msgs[g_conn[0].n - 1], "\"reason\":\"server_shutdown\""));
  assert_int_equal(g_conn[0].closed, 1001); /* going away (docs/protocol.md Connection) */
}

/* Answers the last subscriber_offer on connection i as a receive-only client. */
static void answer_sub(int i) {
  int o = -1;
  for (int k = 0; k < g_conn[i].n; k++)
    if (strstr(g_conn[i].msgs[k], "\"type\":\"subscriber_offer\"")) o = k;
  assert_true(o >= 0);
  hd_signal_msg_t m;
  hd_signal_error_t e;
  assert_int_equal(hd_signal_parse(g_conn[i].msgs[o], strlen(g_conn[i].msgs[o]), HD_SIGNAL_FROM_NODE, &m, &e),
                   0);
  hd_sdp_t *offer = malloc(sizeof *offer), *ans = malloc(sizeof *ans);
  hd_sdp_negotiated_t *neg = malloc(sizeof *neg);
  char err[256];
  assert_int_equal(
      hd_sdp_parse(offer, m.subscriber_offer.sdp, strlen(m.subscriber_offer.sdp), err, sizeof err), 0);
  hd_signal_msg_free(&m);
  hd_sdp_answer_params_t ap = {.ice_ufrag = "bobufrag",
                               .ice_pwd = "bobpasswordbobpassword",
                               .fingerprint_sha256 = hd_dtls_cert_fingerprint(g_cert),
                               .cand_ip = "127.0.0.1",
                               .cand_port = 50000,
                               .direction = HD_SDP_RECVONLY};
  int nrc = hd_sdp_negotiate(offer, &ap, ans, neg, err, sizeof err);
  if (nrc < 0) fprintf(stderr, "negotiate: %s\n", err);
  assert_int_equal(nrc, 0);
  static char ans_text[32000], sdpj[32000], msg[40000];
  assert_true(hd_sdp_write(ans, ans_text, sizeof ans_text) > 0);
  json_str(ans_text, sdpj, sizeof sdpj);
  snprintf(msg, sizeof msg, "{\"type\":\"subscriber_answer\",\"sdp\":%s}", sdpj);
  assert_int_equal(send_msg(i, msg), 0);
  assert_int_equal(find(i, "error", o), -1);
  free(offer);
  free(ans);
  free(neg);
}

static void publish_tracks(int i, const char *id, int with_cam) {
  static char msg[40000], sdpj[32000];
  json_str(load_offer(), sdpj, sizeof sdpj);
  snprintf(msg, sizeof msg,
           "{\"type\":\"publish_offer\",\"id\":\"%s\",\"sdp\":%s,\"tracks\":["
           "{\"cid\":\"mic\",\"mid\":\"0\",\"kind\":\"audio\",\"source\":\"microphone\"}%s]}",
           id, sdpj,
           with_cam ? ",{\"cid\":\"cam\",\"mid\":\"1\",\"kind\":\"video\",\"source\":\"camera\"}" : "");
  assert_int_equal(send_msg(i, msg), 0);
  assert_true(find(i, "publish_answer", 0) >= 0);
}

/* docs/protocol.md "Ordering" (issue 12 item 13): the subscriber offer that
 * drops a track comes after track_unpublished / participant_left, for a track
 * taken out of a publish_offer, for a participant who leaves, and for one whose
 * publisher transport fails. */
static void test_removal_order(void **st) {
  (void)st;
  assert_int_equal(join(0, token("appA", "r", "alice", 1, 1, 0, 0, 0)), 0);
  assert_int_equal(join(1, token("appA", "r", "bob", 1, 1, 0, 0, 0)), 0);
  publish_tracks(0, "p1", 1);
  answer_sub(1);
  /* alice stops her camera */
  clear(&g_conn[1]);
  publish_tracks(0, "p2", 0);
  int u = find(1, "track_unpublished", 0), o = find(1, "subscriber_offer", 0);
  assert_true(u >= 0 && o >= 0);
  assert_true(u < o);
  answer_sub(1);
  /* alice leaves */
  clear(&g_conn[1]);
  assert_true(send_msg(0, "{\"type\":\"leave\"}") < 0);
  int l = find(1, "participant_left", 0);
  o = find(1, "subscriber_offer", 0);
  assert_true(l >= 0 && o >= 0);
  assert_true(l < o);
  /* carol publishes; her publisher transport fails (it never connects: the
   * ICE connect timeout, 30 s): unpublished, then the offer. dave subscribes
   * 20 s later, so his own subscriber PC is not timed out with hers. */
  assert_int_equal(join(2, token("appA", "r", "carol", 1, 1, 0, 0, 0)), 0);
  publish_tracks(2, "p3", 1);
  g_now += HD_SEC(20);
  hd_node_handle_timeout(g_node, g_now);
  assert_int_equal(join(3, token("appA", "r", "dave", 1, 1, 0, 0, 0)), 0);
  answer_sub(3);
  clear(&g_conn[3]);
  g_now += HD_SEC(15);
  hd_node_handle_timeout(g_node, g_now);
  u = find(3, "track_unpublished", 0);
  o = find(3, "subscriber_offer", 0);
  assert_true(u >= 0 && o >= 0);
  assert_true(u < o);
}

static int whip_as(const char *app, const char *identity, const char *room, char *err, size_t errcap,
                   char id[HD_SESSION_ID_LEN + 1]) {
  static char answer[65536];
  const char *offer = load_offer();
  return hd_node_create_session_as(g_node, HD_SESSION_PUBLISH, app, identity, room, offer, strlen(offer),
                                   g_now, answer, sizeof answer, id, err, errcap);
}

/* One tenant or one token cannot take the node's sessions (issue 12 item 7):
 * per-identity and per-app caps on WHIP and on /rtc (join, publish_offer), each
 * refusal a 503 with a retry hint; another app is never starved; every count
 * is given back. */
static void test_session_caps(void **st) {
  (void)st;
  char err[256], id[8][HD_SESSION_ID_LEN + 1];
  hd_quota_t *q = hd_node_quota(g_node);
  assert_int_equal(whip_as("appA", "viewer", "w1", err, sizeof err, id[0]), 0);
  assert_int_equal(whip_as("appA", "viewer", "w2", err, sizeof err, id[1]), 0);
  /* a third session for the same token identity: refused whatever the room */
  assert_int_equal(whip_as("appA", "viewer", "w3", err, sizeof err, id[2]), HD_ENOSPC);
  assert_non_null(strstr(err, "identity 'viewer' is at its session limit (2"));
  assert_int_equal(hd_quota_identity_count(q, "appA", "viewer"), 2);
  assert_int_equal(whip_as("appA", "u", "w3", err, sizeof err, id[2]), 0);
  /* the app's cap (3) */
  assert_int_equal(whip_as("appA", "x", "w4", err, sizeof err, id[3]), HD_ENOSPC);
  assert_non_null(strstr(err, "app 'appA' is at its session limit (3"));
  assert_int_equal(hd_quota_app_count(q, "appA"), 3);
  /* another app still gets in (the node has 10) */
  assert_int_equal(whip_as("appB", "y", "w1", err, sizeof err, id[4]), 0);
  /* /rtc: a join of the full app is refused at the door: 503 node_full, retry hint, closed */
  assert_int_equal(join(0, token("appA", "r", "alice", 1, 1, 0, 0, 0)), HD_ENOSPC);
  assert_non_null(strstr(g_conn[0].msgs[0], "\"code\":503"));
  assert_non_null(strstr(g_conn[0].msgs[0], "\"reason\":\"node_full\""));
  assert_non_null(strstr(g_conn[0].msgs[0], "\"retry_after\":5"));
  assert_null(g_conn[0].p);
  clear(&g_conn[0]);
  /* a place frees up: alice joins; then it is taken again before she publishes */
  assert_int_equal(hd_node_delete_session(g_node, HD_SESSION_PUBLISH, "appA", "w3", id[2], g_now), 0);
  assert_int_equal(join(0, token("appA", "r", "alice", 1, 1, 0, 0, 0)), 0);
  assert_int_equal(whip_as("appA", "u", "w3", err, sizeof err, id[2]), 0);
  static char msg[40000], sdpj[32000];
  json_str(load_offer(), sdpj, sizeof sdpj);
  snprintf(msg, sizeof msg,
           "{\"type\":\"publish_offer\",\"id\":\"p1\",\"sdp\":%s,\"tracks\":["
           "{\"cid\":\"mic\",\"mid\":\"0\",\"kind\":\"audio\",\"source\":\"microphone\"}]}",
           sdpj);
  clear(&g_conn[0]);
  assert_int_equal(send_msg(0, msg), 0); /* the connection stays */
  int e = find(0, "error", 0);
  assert_true(e >= 0);
  hd_signal_msg_t m;
  hd_signal_error_t pe;
  assert_int_equal(
      hd_signal_parse(g_conn[0].msgs[e], strlen(g_conn[0].msgs[e]), HD_SIGNAL_FROM_NODE, &m, &pe), 0);
  assert_int_equal(m.error.code, HD_SIGNAL_ERR_NODE_FULL); /* not 400 "no space" */
  assert_int_equal(m.error.retry_after, HD_NODE_RETRY_AFTER_S);
  assert_non_null(strstr(m.error.message, "app 'appA'"));
  assert_string_equal(m.id, "p1");
  hd_signal_msg_free(&m);
  assert_non_null(g_conn[0].p);
  /* once there is room again the same offer is served */
  assert_int_equal(hd_node_delete_session(g_node, HD_SESSION_PUBLISH, "appA", "w3", id[2], g_now), 0);
  clear(&g_conn[0]);
  assert_int_equal(send_msg(0, msg), 0);
  assert_true(find(0, "publish_answer", 0) >= 0);
  assert_int_equal(hd_quota_app_count(q, "appA"), 3);
  assert_int_equal(hd_quota_identity_count(q, "appA", "alice"), 1);
  /* everything given back */
  hd_node_close_all(g_node, "test end");
  assert_int_equal(hd_quota_app_count(q, "appA"), 0);
  assert_int_equal(hd_quota_app_count(q, "appB"), 0);
  assert_int_equal(hd_quota_identity_count(q, "appA", "viewer"), 0);
}

/* WHIP/WHEP and /rtc rooms of the same name are one room (issue 12 item 12):
 * a WHIP publisher appears to participants as a participant (its token
 * identity) with its tracks, and they receive it; it leaves when its session
 * ends; a WHEP viewer in a room without WHIP plays the first participant who
 * publishes; closing the room ends everything. */
static void test_whip_whep_in_rtc_room(void **st) {
  (void)st;
  char err[256], wid[HD_SESSION_ID_LEN + 1], vid[HD_SESSION_ID_LEN + 1];
  assert_int_equal(join(0, token("appA", "r", "alice", 1, 1, 0, 0, 0)), 0);
  clear(&g_conn[0]);
  assert_int_equal(whip_as("appA", "obs-studio", "r", err, sizeof err, wid), 0);
  int j = find(0, "participant_joined", 0), t = find(0, "track_published", 0),
      o = find(0, "subscriber_offer", 0);
  assert_true(j >= 0 && t > j && o > t);
  assert_non_null(strstr(g_conn[0].msgs[j], "\"identity\":\"obs-studio\""));
  hd_signal_msg_t m;
  hd_signal_error_t pe;
  assert_int_equal(
      hd_signal_parse(g_conn[0].msgs[o], strlen(g_conn[0].msgs[o]), HD_SIGNAL_FROM_NODE, &m, &pe), 0);
  assert_int_equal(m.subscriber_offer.n_tracks, 2); /* its audio and video */
  hd_signal_msg_free(&m);
  answer_sub(0);
  /* a later joiner finds it in joined, with its tracks */
  assert_int_equal(join(1, token("appA", "r", "bob", 1, 1, 0, 0, 0)), 0);
  assert_non_null(strstr(g_conn[1].msgs[0], "\"identity\":\"obs-studio\""));
  assert_true(find(1, "subscriber_offer", 0) >= 0);
  answer_sub(1);
  char *js = hd_node_admin_participants_json(g_node, "appA", "r");
  assert_non_null(strstr(js, "obs-studio"));
  free(js);
  /* a /rtc join with the WHIP publisher's identity does not kick it */
  assert_int_equal(join(2, token("appA", "r", "obs-studio", 1, 1, 0, 0, 0)), 0);
  assert_true(hd_node_room_has_publisher(g_node, "appA", "r"));
  hd_node_rtc_closed(g_node, g_conn[2].p, g_now);
  g_conn[2].p = NULL;
  /* its session ends: it leaves, before the offers without its tracks */
  clear(&g_conn[0]);
  assert_int_equal(hd_node_delete_session(g_node, HD_SESSION_PUBLISH, "appA", "r", wid, g_now), 0);
  int l = find(0, "participant_left", 0);
  o = find(0, "subscriber_offer", 0);
  assert_true(l >= 0 && o > l);
  assert_int_equal(hd_node_participant_count(g_node), 2);
  /* WHEP with no WHIP publisher plays the participant who publishes */
  static char answer[65536];
  static char play[16384];
  snprintf(play, sizeof play, "%s", load_sdp("firefox_recvonly.sdp")); /* load_sdp's buffer is reused */
  assert_int_equal(hd_node_create_session_as(g_node, HD_SESSION_PLAY, "appA", "viewer", "r", play,
                                             strlen(play), g_now, answer, sizeof answer, vid, err,
                                             sizeof err),
                   HD_ENOTFOUND); /* nobody publishes yet */
  assert_non_null(strstr(err, "no participant with a camera or microphone"));
  publish_tracks(1, "pb", 1);
  err[0] = 0;
  int prc = hd_node_create_session_as(g_node, HD_SESSION_PLAY, "appA", "viewer", "r", play, strlen(play),
                                      g_now, answer, sizeof answer, vid, err, sizeof err);
  if (prc < 0) fprintf(stderr, "whep: %s\n", err);
  assert_int_equal(prc, 0);
  hd_session_t *v = hd_node_session(g_node, vid);
  assert_non_null(v);
  int bound = 0;
  for (int i = 0; i < v->n_out; i++)
    bound += v->out[i].active && v->out[i].src != NULL && !v->out[i].follow_room_pub;
  assert_true(bound >= 1);
  /* a WHIP publisher and everything else end with the room */
  assert_int_equal(whip_as("appA", "obs-studio", "r", err, sizeof err, wid), 0);
  assert_int_equal(hd_node_admin_close_room(g_node, "appA", "r", g_now), 0);
  assert_int_equal(hd_node_room_count(g_node), 0);
  assert_int_equal(hd_node_session_count(g_node, 0), 0);
  assert_int_equal(hd_node_participant_count(g_node), 0);
}

/* A failed WHIP session (ICE never connects) takes its stand-in participant
 * along, and the room goes with its last occupant (node pinned while it walks). */
static void test_whip_participant_timeout(void **st) {
  (void)st;
  char err[256], wid[HD_SESSION_ID_LEN + 1];
  assert_int_equal(whip_as("appA", "cam", "solo", err, sizeof err, wid), 0);
  assert_int_equal(hd_node_participant_count(g_node), 1);
  g_now += HD_SEC(40);
  hd_node_handle_timeout(g_node, g_now);
  assert_int_equal(hd_node_participant_count(g_node), 0);
  assert_int_equal(hd_node_room_count(g_node), 0);
  hd_node_close_all(g_node, "end");
}

/* A room new on a clustered node: joins wait for the cluster's sid, and the
 * waiting ones hold places (max_participants 4 here): the 5th and 6th are
 * refused room_full at once, the 4 waiting enter when the sid comes (the
 * cap was bypassed before: all 6 entered). */
static void test_cluster_sid_wait_counts_against_cap(void **st) {
  (void)st;
  uint8_t secret[32] = {1};
  assert_int_equal(hd_node_cluster_init(g_node, "n1", secret, sizeof secret, 1, 0), 0);
  char id[16];
  for (int i = 0; i < 6; i++) {
    snprintf(id, sizeof id, "u%d", i);
    join(i, token("appA", "capped", id, 0, 0, 0, 0, 0));
  }
  for (int i = 0; i < 4; i++)
    assert_int_equal(find(i, "joined", 0), -1); /* waiting for the sid */
  for (int i = 4; i < 6; i++) {
    int m = find(i, "error", 0);
    assert_true(m >= 0);
    assert_non_null(strstr(g_conn[i].msgs[m], "room_full"));
  }
  assert_int_equal(hd_node_room_set_sid(g_node, "appA", "capped", g_room_sid, "RM_cluster", g_now), 0);
  for (int i = 0; i < 4; i++) {
    int m = find(i, "joined", 0);
    assert_true(m >= 0);
    assert_non_null(strstr(g_conn[i].msgs[m], "RM_cluster"));
  }
}

/* Link version negotiation for LAYERS (docs/overlay.md "The link protocol",
 * rolling upgrade to version 3): a node sends its simulcast publisher's
 * layer report to a peer whose registry entry says "link": 2 in the
 * version-2 form (13 bytes an entry: such a node drops any other length)
 * and to one that says 3 with the layers' TID shares. */
static void test_cluster_layers_by_link_version(void **st) {
  (void)st;
  uint8_t secret[32] = {7};
  assert_int_equal(hd_node_cluster_init(g_node, "n1", secret, sizeof secret, 1, 0), 0);
  char err[256], wid[HD_SESSION_ID_LEN + 1];
  static char answer[65536];
  const char *offer = load_sdp("chrome_simulcast.sdp");
  assert_int_equal(hd_node_create_session_as(g_node, HD_SESSION_PUBLISH, "appA", "cam", "sc", offer,
                                             strlen(offer), g_now, answer, sizeof answer, wid, err,
                                             sizeof err),
                   0);
  hd_session_t *s = hd_node_session(g_node, wid);
  assert_non_null(s);
  /* two other nodes hold the room: n2 of link version 2, n3 of version 3 */
  static hd_cluster_node_t peers[2];
  memset(peers, 0, sizeof peers);
  for (int i = 0; i < 2; i++) {
    snprintf(peers[i].id, sizeof peers[i].id, "n%d", i + 2);
    snprintf(peers[i].media[0], sizeof peers[i].media[0], "127.0.0.1:%d", 40002 + i); /* never opened */
    peers[i].n_media = 1;
    peers[i].link_ver = i + 2;
    peers[i].room_hashes[0] = hd_cluster_room_hash("appA", "sc");
    peers[i].n_room_hashes = 1;
  }
  assert_int_equal(hd_node_cluster_set_peers(g_node, peers, 2, g_now), 0);
  int got[2] = {0, 0};
  for (int step = 0; step < 20; step++, g_now += HD_MS(50)) {
    /* its layers are live, with measured VP8 temporal layers (as media would make them) */
    for (int i = 0; i < s->n_in; i++) {
      hd_in_track_t *t = &s->in[i];
      if (t->kind != HD_TRACK_VIDEO || !t->active) continue;
      t->last_packet_at = g_now;
      t->bps = 100000 * (uint32_t)(i + 1);
      t->max_tid = 2;
      t->tid_bps[0] = t->bps / 2;
      t->tid_bps[1] = t->bps / 4;
      t->tid_bps[2] = t->bps / 4;
    }
    hd_node_handle_timeout(g_node, g_now);
    hd_txq_t *q = hd_node_txq(g_node);
    for (hd_datagram_t *d; (d = hd_txq_peek(q)); hd_txq_pop(q)) {
      int port = ntohs(((struct sockaddr_in *)&d->to)->sin_port), k = port - 40002;
      if (k < 0 || k > 1) continue;
      hd_link_self_t self;
      hd_link_peer_t from;
      assert_int_equal(hd_link_self_init(&self, peers[k].id, secret, sizeof secret, 5, 0), 0);
      assert_int_equal(hd_link_peer_init(&from, &self, "n1"), 0);
      uint8_t type;
      const uint8_t *pl;
      size_t pl_len;
      assert_int_equal(hd_link_open(&self, &from, d->data, d->len, g_now, &type, &pl, &pl_len), 0);
      hd_link_peer_free(&from);
      if (type != HD_LINK_LAYERS) continue;
      hd_link_layers_t m;
      assert_int_equal(hd_link_layers_parse(pl, pl_len, &m), 0);
      assert_true(m.n >= 2);
      assert_int_equal(m.ver, k ? 3 : 2);
      assert_int_equal(pl_len, 10 + (k ? 17u : 13u) * m.n);
      /* version 3: TIDs 0-2, TID 0 half the rate, 0-1 three quarters */
      assert_int_equal(m.l[0].n_tids, k ? 3 : 0);
      if (k) assert_true(m.l[0].tid_cum[0] == 128 && m.l[0].tid_cum[1] == 191 && m.l[0].tid_cum[2] == 255);
      got[k]++;
    }
  }
  print_message("LAYERS messages: %d to the link-2 peer, %d to the link-3 peer\n", got[0], got[1]);
  assert_true(got[0] >= 2 && got[1] >= 2);
  hd_node_close_all(g_node, "end");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_join_presence_and_tokens, setup, teardown),
      cmocka_unit_test_setup_teardown(test_join_ice_servers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_publish_subscribe_flow, setup, teardown),
      cmocka_unit_test_setup_teardown(test_track_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_datachannel_offers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_data_limits_duplicates, setup, teardown),
      cmocka_unit_test_setup_teardown(test_session_caps, setup_caps, teardown),
      cmocka_unit_test_setup_teardown(test_removal_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_whip_whep_in_rtc_room, setup, teardown),
      cmocka_unit_test_setup_teardown(test_whip_participant_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cluster_sid_wait_counts_against_cap, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cluster_layers_by_link_version, setup, teardown),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  hd_dtls_cert_free(g_cert);
  return rc;
}
