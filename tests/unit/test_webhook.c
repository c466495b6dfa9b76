/* Tests for the sans-IO webhook core on a virtual clock: the signature against
 * an HMAC computed here with OpenSSL, the JSON shape, the backoff schedule
 * (exact without jitter, bounded with it), giving up by attempts and by age,
 * the overflow policy, permanent vs retryable outcomes, per-URL ordering and
 * app filtering, and the receiver-side verify helper. */
#include "hd_test.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/err.h"
#include "sfu/webhook.h"

#define T0 HD_SEC(1000)
#define UNIX0 INT64_C(1700000000)

static hd_webhook_t *mk(size_t max_queue, int max_attempts, int jitter) {
  hd_webhook_config_t c;
  hd_webhook_config_defaults(&c);
  c.max_queue = max_queue;
  c.max_attempts = max_attempts;
  c.jitter_pct = jitter;
  c.seed = 42;
  hd_webhook_t *wh = NULL;
  assert_int_equal(hd_webhook_new(&wh, &c), 0);
  assert_int_equal(hd_webhook_add_app(wh, "appA", "secretA"), 0);
  assert_int_equal(hd_webhook_add_app(wh, "appB", "secretB"), 0);
  return wh;
}

static hd_webhook_event_t room_ev(const char *app, const char *room) {
  hd_webhook_event_t e = {.type = HD_WEBHOOK_ROOM_STARTED, .app = app, .room_name = room, .room_sid = "RM_1"};
  return e;
}

static const char *hdr(const hd_webhook_req_t *r, const char *name) {
  for (int i = 0; i < r->n_headers; i++)
    if (!strcmp(r->header_names[i], name)) return r->header_values[i];
  return NULL;
}

/* "room" field of the body's JSON, to identify events in ordering tests */
static void body_room(const hd_webhook_req_t *r, char *out, size_t cap) {
  json_error_t je;
  json_t *j = json_loadb(r->body, r->body_len, 0, &je);
  assert_non_null(j);
  snprintf(out, cap, "%s", json_string_value(json_object_get(json_object_get(j, "room"), "name")));
  json_decref(j);
}

static void expect_sig(const char *secret, const hd_webhook_req_t *r, int64_t t) {
  char msg[8192];
  int n = snprintf(msg, sizeof msg, "%lld.", (long long)t);
  memcpy(msg + n, r->body, r->body_len);
  uint8_t md[32];
  unsigned mdlen = 0;
  assert_non_null(
      HMAC(EVP_sha256(), secret, (int)strlen(secret), (uint8_t *)msg, (size_t)n + r->body_len, md, &mdlen));
  char want[128];
  int o = snprintf(want, sizeof want, "t=%lld,v1=", (long long)t);
  for (unsigned i = 0; i < mdlen; i++)
    o += snprintf(want + o, sizeof want - (size_t)o, "%02x", md[i]);
  assert_string_equal(hdr(r, "Hudong-Signature"), want);
}

static void test_signature_known_answer(void **state) {
  /* fixed input: HMAC-SHA256("whsec_test", "1700000000.{\"a\":1}") computed
   * independently (python3 hmac) */
  char out[128];
  assert_int_equal(hd_webhook_sign("whsec_test", 1700000000, "{\"a\":1}", 7, out, sizeof out), 80);
  assert_string_equal(out,
                      "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789");
}

static void test_request_shape_and_signature(void **state) {
  hd_webhook_t *wh = mk(10, 8, 0);
  assert_int_equal(hd_webhook_add_url(wh, "http://127.0.0.1:9/hook", NULL), 0);
  hd_webhook_event_t e = {.type = HD_WEBHOOK_TRACK_PUBLISHED,
                          .app = "appA",
                          .room_name = "demo",
                          .room_sid = "RM_x",
                          .participant_sid = "PA_y",
                          .participant_identity = "alice",
                          .track_sid = "TR_z",
                          .track_kind = "video",
                          .track_source = "camera"};
  assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), 1);
  assert_int_equal(hd_webhook_next_timeout(wh), T0);
  hd_webhook_req_t r;
  assert_int_equal(hd_webhook_poll(wh, T0, UNIX0 + 5, &r), 1);
  assert_string_equal(r.method, "POST");
  assert_string_equal(r.url, "http://127.0.0.1:9/hook");
  assert_string_equal(hdr(&r, "Content-Type"), "application/json");
  assert_string_equal(hdr(&r, "Hudong-App-Key"), "appA");
  assert_string_equal(hdr(&r, "Hudong-Event"), "track_published");
  assert_string_equal(hdr(&r, "Hudong-Attempt"), "1");
  assert_int_equal(r.attempt, 1);
  expect_sig("secretA", &r, UNIX0 + 5);
  assert_int_equal(
      hd_webhook_verify(hdr(&r, "Hudong-Signature"), "secretA", r.body, r.body_len, UNIX0 + 5, 300), 0);

  json_error_t je;
  json_t *j = json_loadb(r.body, r.body_len, 0, &je);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "event")), "track_published");
  assert_string_equal(json_string_value(json_object_get(j, "id")), r.event_id);
  assert_string_equal(hdr(&r, "Hudong-Event-Id"), r.event_id);
  assert_int_equal(json_integer_value(json_object_get(j, "created_at")), UNIX0);
  assert_string_equal(json_string_value(json_object_get(j, "app")), "appA");
  json_t *room = json_object_get(j, "room"), *p = json_object_get(j, "participant"),
         *t = json_object_get(j, "track");
  assert_string_equal(json_string_value(json_object_get(room, "name")), "demo");
  assert_string_equal(json_string_value(json_object_get(room, "sid")), "RM_x");
  assert_string_equal(json_string_value(json_object_get(p, "sid")), "PA_y");
  assert_string_equal(json_string_value(json_object_get(p, "identity")), "alice");
  assert_string_equal(json_string_value(json_object_get(t, "sid")), "TR_z");
  assert_string_equal(json_string_value(json_object_get(t, "kind")), "video");
  assert_string_equal(json_string_value(json_object_get(t, "source")), "camera");
  json_decref(j);
  /* the body goes out byte for byte as signed: a changed body fails */
  char copy[4096];
  memcpy(copy, r.body, r.body_len);
  copy[r.body_len - 2] ^= 1;
  assert_int_equal(
      hd_webhook_verify(hdr(&r, "Hudong-Signature"), "secretA", copy, r.body_len, UNIX0 + 5, 300), HD_EAUTH);

  /* one in flight per URL: nothing more until the result */
  assert_int_equal(hd_webhook_poll(wh, T0, UNIX0, &r), 0);
  assert_int_equal(hd_webhook_next_timeout(wh), HD_TIME_NEVER);
  uint64_t id = r.id;
  assert_int_equal(hd_webhook_on_result(wh, id, 204, T0 + 1000), 0);
  assert_int_equal(hd_webhook_on_result(wh, id, 204, T0 + 1000), HD_ENOTFOUND);
  hd_webhook_stats_t st;
  hd_webhook_stats(wh, &st);
  assert_int_equal(st.delivered, 1);
  assert_int_equal(st.queued, 0);
  assert_int_equal(st.attempts, 1);
  hd_webhook_free(wh);
}

static void test_room_event_json_and_unique_ids(void **state) {
  hd_webhook_t *wh = mk(10, 8, 0);
  assert_int_equal(hd_webhook_add_url(wh, "http://h/x", NULL), 0);
  hd_webhook_event_t e = {.type = HD_WEBHOOK_ROOM_FINISHED, .app = "appB", .room_name = "r"};
  assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), 1);
  assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), 1);
  hd_webhook_req_t r;
  char id1[64];
  assert_int_equal(hd_webhook_poll(wh, T0, UNIX0, &r), 1);
  snprintf(id1, sizeof id1, "%s", r.event_id);
  /* no sid, no participant, no track: those members are absent */
  char want[256];
  snprintf(want, sizeof want,
           "{\"event\":\"room_finished\",\"id\":\"%s\",\"created_at\":1700000000,\"app\":\"appB\","
           "\"room\":{\"name\":\"r\"}}",
           r.event_id);
  assert_int_equal(r.body_len, strlen(want));
  assert_memory_equal(r.body, want, r.body_len);
  expect_sig("secretB", &r, UNIX0);
  assert_int_equal(hd_webhook_on_result(wh, r.id, 200, T0), 0);
  assert_int_equal(hd_webhook_poll(wh, T0, UNIX0, &r), 1);
  assert_string_not_equal(r.event_id, id1);
  assert_int_equal(strncmp(r.event_id, "EV_", 3), 0);
  hd_webhook_free(wh);
}

/* quality_alert (issue 14 item 5): the rule's "alert" object is in the body,
 * no participant or track needed, and an event without it is refused. */
static void test_quality_alert_event(void **state) {
  hd_webhook_t *wh = mk(10, 8, 0);
  assert_int_equal(hd_webhook_add_url(wh, "http://h/x", NULL), 0);
  hd_webhook_event_t e = {.type = HD_WEBHOOK_QUALITY_ALERT, .app = "appA", .room_name = "*"};
  assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), HD_EINVAL);
  e.alert_json = "not json";
  assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), HD_EINVAL);
  e.alert_json = "{\"rule\":\"stall\",\"metric\":\"video_stall_rate\",\"value\":0.5}";
  assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), 1);
  hd_webhook_req_t r;
  assert_int_equal(hd_webhook_poll(wh, T0, UNIX0, &r), 1);
  char want[512];
  snprintf(want, sizeof want,
           "{\"event\":\"quality_alert\",\"id\":\"%s\",\"created_at\":1700000000,\"app\":\"appA\","
           "\"room\":{\"name\":\"*\"},\"alert\":{\"rule\":\"stall\",\"metric\":\"video_stall_rate\","
           "\"value\":0.5}}",
           r.event_id);
  assert_int_equal(r.body_len, strlen(want));
  assert_memory_equal(r.body, want, r.body_len);
  assert_string_equal(hd_webhook_event_name(HD_WEBHOOK_QUALITY_ALERT), "quality_alert");
  hd_webhook_free(wh);
}

/* egress_* (issue 18 item 4): the "egress" object (files, durations, sizes)
 * is in the body; an egress event without it is refused. */
static void test_egress_events(void **state) {
  hd_webhook_t *wh = mk(10, 8, 0);
  assert_int_equal(hd_webhook_add_url(wh, "http://h/x", NULL), 0);
  hd_webhook_event_t e = {.type = HD_WEBHOOK_EGRESS_ENDED, .app = "appA", .room_name = "r1"};
  assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), HD_EINVAL);
  e.egress_json = "[1]";
  assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), HD_EINVAL);
  e.egress_json = "{\"id\":\"EG_1\",\"files\":[{\"path\":\"a.ogg\",\"duration_ms\":5000,\"bytes\":9}]}";
  assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), 1);
  hd_webhook_req_t r;
  assert_int_equal(hd_webhook_poll(wh, T0, UNIX0, &r), 1);
  char want[512];
  snprintf(want, sizeof want,
           "{\"event\":\"egress_ended\",\"id\":\"%s\",\"created_at\":1700000000,\"app\":\"appA\","
           "\"room\":{\"name\":\"r1\"},\"egress\":{\"id\":\"EG_1\",\"files\":[{\"path\":\"a.ogg\","
           "\"duration_ms\":5000,\"bytes\":9}]}}",
           r.event_id);
  assert_int_equal(r.body_len, strlen(want));
  assert_memory_equal(r.body, want, r.body_len);
  assert_string_equal(hd_webhook_event_name(HD_WEBHOOK_EGRESS_STARTED), "egress_started");
  assert_string_equal(hd_webhook_event_name(HD_WEBHOOK_EGRESS_UPDATED), "egress_updated");
  hd_webhook_free(wh);
}

static void test_push_validation(void **state) {
  hd_webhook_t *wh = mk(10, 8, 0);
  hd_webhook_event_t e = room_ev("appA", "r");
  assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), 0); /* no URL wants it: accepted, queued nowhere */
  assert_int_equal(hd_webhook_add_url(wh, "http://h/x", NULL), 0);
  e.app = "nope";
  assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), HD_ENOTFOUND);
  e.app = NULL;
  assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), HD_EINVAL);
  e = room_ev("appA", "");
  assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), HD_EINVAL);
  e = room_ev("appA", "r");
  e.type = HD_WEBHOOK_EVENT_COUNT;
  assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), HD_EINVAL);
  e.type = HD_WEBHOOK_PARTICIPANT_JOINED; /* needs a participant */
  assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), HD_EINVAL);
  e.participant_identity = "bob";
  e.type = HD_WEBHOOK_TRACK_UNPUBLISHED; /* needs a track */
  assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), HD_EINVAL);
  e.track_sid = "TR";
  assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), 1);
  e.participant_identity = "\xff\xfe bad utf-8";
  assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), HD_EINVAL);
  char big[HD_WEBHOOK_FIELD_MAX + 1];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = 0;
  e.participant_identity = big;
  assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), HD_EINVAL);
  hd_webhook_stats_t st;
  hd_webhook_stats(wh, &st);
  assert_int_equal(st.pushed, 2);
  assert_int_equal(st.queued, 1);
  assert_null(hd_webhook_event_name(HD_WEBHOOK_EVENT_COUNT));
  assert_string_equal(hd_webhook_event_name(HD_WEBHOOK_PARTICIPANT_LEFT), "participant_left");
  hd_webhook_free(wh);
}

static void test_config_and_url_validation(void **state) {
  hd_webhook_t *wh = NULL;
  hd_webhook_config_t c;
  hd_webhook_config_defaults(&c);
  assert_int_equal(c.max_queue, 1000);
  assert_int_equal(c.max_attempts, 8);
  c.max_queue = 0;
  assert_int_equal(hd_webhook_new(&wh, &c), HD_EINVAL);
  hd_webhook_config_defaults(&c);
  c.max_attempts = 0;
  assert_int_equal(hd_webhook_new(&wh, &c), HD_EINVAL);
  hd_webhook_config_defaults(&c);
  c.backoff_cap = c.backoff_base - 1;
  assert_int_equal(hd_webhook_new(&wh, &c), HD_EINVAL);
  hd_webhook_config_defaults(&c);
  c.jitter_pct = 101;
  assert_int_equal(hd_webhook_new(&wh, &c), HD_EINVAL);
  assert_int_equal(hd_webhook_new(&wh, NULL), 0);
  assert_int_equal(hd_webhook_add_app(wh, "", "s"), HD_EINVAL);
  assert_int_equal(hd_webhook_add_app(wh, "k", ""), HD_EINVAL);
  assert_int_equal(hd_webhook_add_app(wh, "k", "s"), 0);
  assert_int_equal(hd_webhook_add_url(wh, "https://h/x", NULL), HD_EINVAL);
  assert_int_equal(hd_webhook_add_url(wh, "ftp://h/x", NULL), HD_EINVAL);
  assert_int_equal(hd_webhook_add_url(wh, "http://", NULL), HD_EINVAL);
  assert_int_equal(hd_webhook_add_url(wh, "http://h/a b", NULL), HD_EINVAL);
  assert_int_equal(hd_webhook_add_url(wh, "http://h/x\r\nX: y", NULL), HD_EINVAL);
  assert_int_equal(hd_webhook_add_url(wh, "http://h/x", "unknown-app"), HD_ENOTFOUND);
  char longurl[HD_WEBHOOK_URL_MAX + 8] = "http://h/";
  memset(longurl + 9, 'a', HD_WEBHOOK_URL_MAX - 9);
  longurl[HD_WEBHOOK_URL_MAX] = 0;
  assert_int_equal(hd_webhook_add_url(wh, longurl, NULL), HD_EINVAL);
  for (int i = 0; i < HD_WEBHOOK_MAX_DESTS; i++)
    assert_int_equal(hd_webhook_add_url(wh, "http://h/x", "k"), 0);
  assert_int_equal(hd_webhook_add_url(wh, "http://h/x", NULL), HD_ENOSPC);
  assert_int_equal(hd_webhook_on_result(wh, 12345, 200, T0), HD_ENOTFOUND);
  assert_int_equal(hd_webhook_on_result(wh, 0, 200, T0), HD_ENOTFOUND);
  hd_webhook_free(wh);
  hd_webhook_free(NULL);
}

/* Fails every attempt with `status` and records when each attempt happened. */
static int run_failing(hd_webhook_t *wh, int status, hd_time_t *at, int cap) {
  hd_time_t now = T0;
  int n = 0;
  for (;;) {
    hd_time_t next = hd_webhook_next_timeout(wh);
    if (next == HD_TIME_NEVER) break;
    assert_true(next >= now);
    now = next;
    hd_webhook_req_t r;
    assert_int_equal(hd_webhook_poll(wh, now, UNIX0, &r), 1);
    assert_int_equal(r.attempt, n + 1);
    assert_true(n < cap);
    at[n++] = now;
    /* polling before the timeout gives nothing */
    assert_int_equal(hd_webhook_poll(wh, now, UNIX0, &r), 0);
    now += HD_MS(10); /* the request took 10 ms */
    assert_int_equal(hd_webhook_on_result(wh, r.id, status, now), 0);
  }
  return n;
}

static void test_backoff_schedule_and_give_up(void **state) {
  hd_webhook_t *wh = mk(10, 8, 0);
  assert_int_equal(hd_webhook_add_url(wh, "http://h/x", NULL), 0);
  hd_webhook_event_t e = room_ev("appA", "r");
  assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), 1);
  hd_time_t at[16];
  assert_int_equal(run_failing(wh, 503, at, 16), 8);
  /* without jitter: 0.5, 1, 2, 4, 8, 16, 30 (capped) s after each failure */
  static const int64_t want_ms[] = {500, 1000, 2000, 4000, 8000, 16000, 30000};
  for (int i = 0; i < 7; i++)
    assert_int_equal(at[i + 1] - (at[i] + HD_MS(10)), HD_MS(want_ms[i]));
  hd_webhook_stats_t st;
  hd_webhook_stats(wh, &st);
  assert_int_equal(st.attempts, 8);
  assert_int_equal(st.attempt_failures, 8);
  assert_int_equal(st.retries, 7);
  assert_int_equal(st.failed, 1);
  assert_int_equal(st.delivered, 0);
  assert_int_equal(st.queued, 0);
  hd_webhook_free(wh);
}

static void test_backoff_jitter_bounds(void **state) {
  hd_webhook_t *wh = mk(10, 12, 25);
  assert_int_equal(hd_webhook_add_url(wh, "http://h/x", NULL), 0);
  hd_webhook_event_t e = room_ev("appA", "r");
  assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), 1);
  hd_time_t at[16];
  assert_int_equal(run_failing(wh, HD_ETIMEDOUT, at, 16), 12);
  int jittered = 0;
  hd_time_t prev = 0;
  for (int i = 0; i < 11; i++) {
    hd_time_t d = at[i + 1] - (at[i] + HD_MS(10));
    hd_time_t base = HD_MS(500) << i;
    if (base > HD_SEC(30)) base = HD_SEC(30);
    assert_true(d >= base);
    assert_true(d <= HD_SEC(30));
    if (base < HD_SEC(30)) assert_true(d < base + base / 4);
    jittered += d != base;
    assert_true(d >= prev); /* never shrinks */
    prev = d;
  }
  assert_true(jittered >= 4);
  hd_webhook_free(wh);
}

static void test_give_up_by_age(void **state) {
  hd_webhook_config_t c;
  hd_webhook_config_defaults(&c);
  c.jitter_pct = 0;
  c.max_attempts = 100;
  c.max_age = HD_SEC(10);
  hd_webhook_t *wh = NULL;
  assert_int_equal(hd_webhook_new(&wh, &c), 0);
  assert_int_equal(hd_webhook_add_app(wh, "appA", "s"), 0);
  assert_int_equal(hd_webhook_add_url(wh, "http://h/x", NULL), 0);
  hd_webhook_event_t e = room_ev("appA", "r");
  assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), 1);
  hd_time_t at[16];
  /* attempts at 0, 0.51, 1.52, 3.53, 7.54 s; the next (+8 s) would be past 10 s */
  assert_int_equal(run_failing(wh, 500, at, 16), 5);
  hd_webhook_stats_t st;
  hd_webhook_stats(wh, &st);
  assert_int_equal(st.failed, 1);
  assert_int_equal(st.retries, 4);

  /* an event that waited past its age behind a failing head is given up
   * without being attempted */
  hd_webhook_event_t e2 = room_ev("appA", "second");
  assert_int_equal(hd_webhook_push(wh, &e, T0 + HD_SEC(100), UNIX0), 1);
  assert_int_equal(hd_webhook_push(wh, &e2, T0 + HD_SEC(100), UNIX0), 1);
  hd_webhook_req_t r;
  assert_int_equal(hd_webhook_poll(wh, T0 + HD_SEC(100), UNIX0, &r), 1);
  assert_int_equal(hd_webhook_on_result(wh, r.id, 503, T0 + HD_SEC(109)), 0); /* slow answer */
  /* retry due at 109.5 s: still inside the head's age */
  assert_int_equal(hd_webhook_next_timeout(wh), T0 + HD_SEC(109) + HD_MS(500));
  assert_int_equal(hd_webhook_poll(wh, T0 + HD_SEC(109) + HD_MS(500), UNIX0, &r), 1);
  assert_int_equal(hd_webhook_on_result(wh, r.id, 503, T0 + HD_SEC(111)), 0);
  /* head gave up (next try would be past 110 s); e2 is also past its age */
  hd_webhook_stats(wh, &st);
  assert_int_equal(st.failed, 2);
  assert_int_equal(hd_webhook_poll(wh, T0 + HD_SEC(111), UNIX0, &r), 0);
  hd_webhook_stats(wh, &st);
  assert_int_equal(st.failed, 3);
  assert_int_equal(st.queued, 0);
  assert_int_equal(st.attempts, 7);
  hd_webhook_free(wh);
}

static void test_permanent_vs_retryable(void **state) {
  static const int permanent[] = {400, 401, 403, 404, 410, 413, 301, 302, 100};
  static const int retry[] = {408, 429, 500, 502, 503, 504, HD_ETIMEDOUT, HD_EIO, HD_EPROTO, HD_ENOTFOUND};
  for (size_t i = 0; i < sizeof permanent / sizeof permanent[0]; i++) {
    hd_webhook_t *wh = mk(10, 8, 0);
    assert_int_equal(hd_webhook_add_url(wh, "http://h/x", NULL), 0);
    hd_webhook_event_t e = room_ev("appA", "r");
    assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), 1);
    hd_time_t at[16];
    assert_int_equal(run_failing(wh, permanent[i], at, 16), 1);
    hd_webhook_stats_t st;
    hd_webhook_stats(wh, &st);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.retries, 0);
    hd_webhook_free(wh);
  }
  for (size_t i = 0; i < sizeof retry / sizeof retry[0]; i++) {
    hd_webhook_t *wh = mk(10, 3, 0);
    assert_int_equal(hd_webhook_add_url(wh, "http://h/x", NULL), 0);
    hd_webhook_event_t e = room_ev("appA", "r");
    assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), 1);
    hd_time_t at[16];
    assert_int_equal(run_failing(wh, retry[i], at, 16), 3);
    hd_webhook_stats_t st;
    hd_webhook_stats(wh, &st);
    assert_int_equal(st.retries, 2);
    assert_int_equal(st.failed, 1);
    hd_webhook_free(wh);
  }
  /* every 2xx is success */
  for (int s = 200; s <= 299; s += 33) {
    hd_webhook_t *wh = mk(10, 3, 0);
    assert_int_equal(hd_webhook_add_url(wh, "http://h/x", NULL), 0);
    hd_webhook_event_t e = room_ev("appA", "r");
    assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), 1);
    hd_time_t at[4];
    assert_int_equal(run_failing(wh, s, at, 4), 1);
    hd_webhook_stats_t st;
    hd_webhook_stats(wh, &st);
    assert_int_equal(st.delivered, 1);
    assert_int_equal(st.failed, 0);
    hd_webhook_free(wh);
  }
}

static void test_ordering_across_retries(void **state) {
  hd_webhook_t *wh = mk(10, 8, 0);
  assert_int_equal(hd_webhook_add_url(wh, "http://h/x", NULL), 0);
  const char *rooms[] = {"a", "b", "c"};
  for (int i = 0; i < 3; i++) {
    hd_webhook_event_t e = room_ev("appA", rooms[i]);
    assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), 1);
  }
  hd_webhook_req_t r;
  char room[32];
  hd_time_t now = T0;
  /* a fails twice: b must wait behind it */
  for (int k = 0; k < 2; k++) {
    assert_int_equal(hd_webhook_poll(wh, now, UNIX0, &r), 1);
    body_room(&r, room, sizeof room);
    assert_string_equal(room, "a");
    assert_int_equal(hd_webhook_poll(wh, now, UNIX0, &r), 0);
    assert_int_equal(hd_webhook_on_result(wh, r.id, 503, now), 0);
    assert_int_equal(hd_webhook_poll(wh, now, UNIX0, &r), 0);
    now = hd_webhook_next_timeout(wh);
  }
  for (int i = 0; i < 3; i++) {
    assert_int_equal(hd_webhook_poll(wh, now, UNIX0, &r), 1);
    body_room(&r, room, sizeof room);
    assert_string_equal(room, rooms[i]);
    assert_int_equal(r.attempt, i == 0 ? 3 : 1);
    assert_int_equal(hd_webhook_on_result(wh, r.id, 200, now), 0);
  }
  assert_int_equal(hd_webhook_next_timeout(wh), HD_TIME_NEVER);
  hd_webhook_free(wh);
}

static void test_overflow_drops_oldest(void **state) {
  hd_webhook_t *wh = mk(3, 8, 0);
  assert_int_equal(hd_webhook_add_url(wh, "http://h/x", NULL), 0);
  char name[8];
  hd_webhook_event_t e;
  e = room_ev("appA", "e0");
  assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), 1);
  hd_webhook_req_t r;
  assert_int_equal(hd_webhook_poll(wh, T0, UNIX0, &r), 1); /* e0 in flight */
  uint64_t inflight = r.id;
  for (int i = 1; i <= 5; i++) {
    snprintf(name, sizeof name, "e%d", i);
    e = room_ev("appA", name);
    assert_int_equal(hd_webhook_push(wh, &e, T0, UNIX0), 1);
  }
  hd_webhook_stats_t st;
  hd_webhook_stats(wh, &st);
  assert_int_equal(st.dropped, 3); /* e0 (in flight), e1, e2 */
  assert_int_equal(st.queued, 3);
  /* e0's late success counts for nothing; e3..e5 follow in order */
  assert_int_equal(hd_webhook_on_result(wh, inflight, 200, T0 + HD_MS(5)), 0);
  hd_webhook_stats(wh, &st);
  assert_int_equal(st.delivered, 0);
  char room[32];
  for (int i = 3; i <= 5; i++) {
    assert_int_equal(hd_webhook_poll(wh, T0 + HD_MS(5), UNIX0, &r), 1);
    body_room(&r, room, sizeof room);
    snprintf(name, sizeof name, "e%d", i);
    assert_string_equal(room, name);
    assert_int_equal(r.attempt, 1);
    assert_int_equal(hd_webhook_on_result(wh, r.id, 200, T0 + HD_MS(5)), 0);
  }
  hd_webhook_stats(wh, &st);
  assert_int_equal(st.delivered, 3);
  assert_int_equal(st.queued, 0);
  assert_int_equal(st.pushed, 6);

  /* a dropped in-flight event that then fails makes the next one wait one
   * base delay, not hammer the failing receiver */
  hd_time_t t1 = T0 + HD_SEC(1);
  e = room_ev("appA", "f0");
  assert_int_equal(hd_webhook_push(wh, &e, t1, UNIX0), 1);
  assert_int_equal(hd_webhook_poll(wh, t1, UNIX0, &r), 1);
  for (int i = 1; i <= 3; i++)
    assert_int_equal(hd_webhook_push(wh, &e, t1, UNIX0), 1);
  assert_int_equal(hd_webhook_on_result(wh, r.id, 503, t1 + HD_SEC(1)), 0);
  assert_int_equal(hd_webhook_next_timeout(wh), t1 + HD_SEC(1) + HD_MS(500));
  assert_int_equal(hd_webhook_poll(wh, t1 + HD_SEC(1), UNIX0, &r), 0);
  assert_int_equal(hd_webhook_poll(wh, t1 + HD_SEC(1) + HD_MS(500), UNIX0, &r), 1);
  assert_int_equal(r.attempt, 1);
  hd_webhook_free(wh);
}

static void test_destinations_and_app_filter(void **state) {
  hd_webhook_t *wh = mk(10, 8, 0);
  assert_int_equal(hd_webhook_add_url(wh, "http://global/x", NULL), 0);
  assert_int_equal(hd_webhook_add_url(wh, "http://a-only/x", "appA"), 0);
  assert_int_equal(hd_webhook_add_url(wh, "http://b-only/x", "appB"), 0);
  hd_webhook_event_t ea = room_ev("appA", "ra"), eb = room_ev("appB", "rb");
  assert_int_equal(hd_webhook_push(wh, &ea, T0, UNIX0), 2);
  assert_int_equal(hd_webhook_push(wh, &eb, T0, UNIX0), 2);
  /* the three URLs progress independently: three requests at once */
  hd_webhook_req_t r[4];
  int seen_a = 0, seen_b = 0, seen_g = 0;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(hd_webhook_poll(wh, T0, UNIX0, &r[i]), 1);
    char room[32];
    body_room(&r[i], room, sizeof room);
    if (!strcmp(r[i].url, "http://a-only/x")) {
      assert_string_equal(room, "ra");
      expect_sig("secretA", &r[i], UNIX0);
      seen_a++;
    } else if (!strcmp(r[i].url, "http://b-only/x")) {
      assert_string_equal(room, "rb");
      expect_sig("secretB", &r[i], UNIX0);
      assert_string_equal(hdr(&r[i], "Hudong-App-Key"), "appB");
      seen_b++;
    } else {
      assert_string_equal(room, "ra");
      seen_g++;
    }
    /* fail the global one, succeed the others */
    assert_int_equal(hd_webhook_on_result(wh, r[i].id, !strcmp(r[i].url, "http://global/x") ? 500 : 200, T0),
                     0);
  }
  assert_int_equal(seen_a + seen_b + seen_g, 3);
  assert_int_equal(seen_a, 1);
  assert_int_equal(seen_b, 1);
  assert_int_equal(hd_webhook_poll(wh, T0, UNIX0, &r[3]), 0);
  assert_int_equal(hd_webhook_next_timeout(wh), T0 + HD_MS(500));
  assert_int_equal(hd_webhook_poll(wh, T0 + HD_MS(500), UNIX0, &r[3]), 1);
  assert_string_equal(r[3].url, "http://global/x");
  assert_int_equal(r[3].attempt, 2);
  hd_webhook_free(wh); /* with a request in flight and one queued: nothing leaks */
}

static void test_verify_helper(void **state) {
  const char *body = "{\"event\":\"room_started\"}";
  char sig[128];
  assert_true(hd_webhook_sign("s3cret", UNIX0, body, strlen(body), sig, sizeof sig) > 0);
  assert_int_equal(hd_webhook_verify(sig, "s3cret", body, strlen(body), UNIX0 + 300, 300), 0);
  assert_int_equal(hd_webhook_verify(sig, "s3cret", body, strlen(body), UNIX0 - 300, 300), 0);
  assert_int_equal(hd_webhook_verify(sig, "s3cret", body, strlen(body), UNIX0 + 301, 300), HD_EEXPIRED);
  assert_int_equal(hd_webhook_verify(sig, "other", body, strlen(body), UNIX0, 300), HD_EAUTH);
  assert_int_equal(hd_webhook_verify(sig, "s3cret", body, strlen(body) - 1, UNIX0, 300), HD_EAUTH);
  /* rotation: several v1 entries, one matching */
  char two[256];
  snprintf(two, sizeof two, "t=%lld,v1=%064d,%s", (long long)UNIX0, 0, strchr(sig, ',') + 1);
  assert_int_equal(hd_webhook_verify(two, "s3cret", body, strlen(body), UNIX0, 300), 0);
  /* unknown schemes are ignored */
  snprintf(two, sizeof two, "%s,v0=abc", sig);
  assert_int_equal(hd_webhook_verify(two, "s3cret", body, strlen(body), UNIX0, 300), 0);
  assert_int_equal(hd_webhook_verify("", "s3cret", body, strlen(body), UNIX0, 300), HD_EPROTO);
  assert_int_equal(hd_webhook_verify("t=1", "s3cret", body, strlen(body), UNIX0, 300), HD_EPROTO);
  assert_int_equal(hd_webhook_verify("t=abc,v1=00", "s3cret", body, strlen(body), UNIX0, 300), HD_EPROTO);
  char bad[128];
  snprintf(bad, sizeof bad, "%s", sig);
  bad[strlen(bad) - 1] = 'G';
  assert_int_equal(hd_webhook_verify(bad, "s3cret", body, strlen(body), UNIX0, 300), HD_EPROTO);
  assert_int_equal(hd_webhook_verify(NULL, "s3cret", body, strlen(body), UNIX0, 300), HD_EPROTO);
  char small[20];
  assert_int_equal(hd_webhook_sign("s", 1, "", 0, small, sizeof small), HD_ENOSPC);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_signature_known_answer),
      cmocka_unit_test(test_request_shape_and_signature),
      cmocka_unit_test(test_room_event_json_and_unique_ids),
      cmocka_unit_test(test_push_validation),
      cmocka_unit_test(test_quality_alert_event),
      cmocka_unit_test(test_egress_events),
      cmocka_unit_test(test_config_and_url_validation),
      cmocka_unit_test(test_backoff_schedule_and_give_up),
      cmocka_unit_test(test_backoff_jitter_bounds),
      cmocka_unit_test(test_give_up_by_age),
      cmocka_unit_test(test_permanent_vs_retryable),
      cmocka_unit_test(test_ordering_across_retries),
      cmocka_unit_test(test_overflow_drops_oldest),
      cmocka_unit_test(test_destinations_and_app_filter),
      cmocka_unit_test(test_verify_helper),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
