/* Integration test of the public SDK API (include/hudong/client.h) against a
 * real `hudong serve --dev` (run_with_server.sh; ports in HUDONG_HTTP):
 *  - bad URL, wss:// to a closed port, bad token, a token for another key, an unreachable node,
 *    a node that accepts TCP but never answers: each join ends in FAILED with
 *    the expected error code, within the join timeout, and hd_client_free
 *    leaks nothing (ASan build);
 *  - alice publishes the built-in tone (440 Hz) and test pattern (320x180);
 *    bob, auto-subscribed, gets decoded audio whose frequency is 440 +- 5 Hz
 *    and decoded pictures whose burnt-in counter advances; encoded frames are
 *    delivered too; a data message from bob reaches alice; stats are filled;
 *  - alice pushes PCM and I420 through the push API to a second pair of tracks;
 *  - both leave (DISCONNECTED). */
#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "base/err.h"
#include "hudong/client.h"
#include "media/test_signal.h"
#include "proto/token.h"

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "itest_sdk: FAIL: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static double now_s(void) { return (double)uv_hrtime() / 1e9; }

typedef struct {
  uv_mutex_t mu;
  hd_client_state_t state;
  int err;
  char reason[256];
  int audio_frames, video_frames, encoded, data, tracks, untracks;
  double tone_sum;
  int tone_n;
  int counter_first, counter_last, counter_reads;
  char sid[2][64]; /* per remote audio track: its own analysis block */
  int16_t block[2][4800];
  size_t fill[2];
  char data_payload[64];
} obs_t;

static void on_state(void *ud, hd_client_state_t st, int err, const char *reason) {
  obs_t *o = ud;
  uv_mutex_lock(&o->mu);
  o->state = st;
  if (err) {
    o->err = err;
    snprintf(o->reason, sizeof o->reason, "%s", reason);
  }
  uv_mutex_unlock(&o->mu);
}
static void on_track(void *ud, const hd_client_track_info_t *t, int published) {
  obs_t *o = ud;
  uv_mutex_lock(&o->mu);
  o->tracks += published ? 1 : 0;
  o->untracks += published ? 0 : 1;
  uv_mutex_unlock(&o->mu);
}
static void on_audio(void *ud, const hd_client_audio_frame_t *f) {
  obs_t *o = ud;
  uv_mutex_lock(&o->mu);
  o->audio_frames++;
  int k = 0;
  while (k < 2 && o->sid[k][0] && strcmp(o->sid[k], f->track_sid))
    k++;
  if (k == 2) die("more than two remote audio tracks");
  snprintf(o->sid[k], sizeof o->sid[k], "%s", f->track_sid);
  for (size_t i = 0; i < f->samples; i++) {
    o->block[k][o->fill[k]++] = f->pcm[i * (size_t)f->channels];
    if (o->fill[k] == 4800) {
      o->fill[k] = 0;
      if (hd_pcm_rms(o->block[k], 4800, 1) > 300) {
        double hz = hd_tone_estimate_freq(o->block[k], 4800, 1, 48000);
        if (hz > 400 && hz < 480) { /* the pushed 1 kHz track is counted apart */
          o->tone_sum += hz;
          o->tone_n++;
        }
      }
    }
  }
  uv_mutex_unlock(&o->mu);
}
static void on_video(void *ud, const hd_client_video_frame_t *f) {
  obs_t *o = ud;
  hd_i420_t pic = {.width = f->width, .height = f->height};
  for (int i = 0; i < 3; i++) {
    pic.plane[i] = (uint8_t *)f->plane[i];
    pic.stride[i] = f->stride[i];
  }
  int c = hd_test_pattern_read(&pic);
  uv_mutex_lock(&o->mu);
  o->video_frames++;
  if (c >= 0) {
    if (o->counter_reads++ == 0) o->counter_first = c;
    o->counter_last = c;
  }
  uv_mutex_unlock(&o->mu);
}
static void on_encoded(void *ud, const hd_client_encoded_frame_t *f) {
  obs_t *o = ud;
  uv_mutex_lock(&o->mu);
  o->encoded++;
  uv_mutex_unlock(&o->mu);
}
static void on_data(void *ud, const char *from, const char *payload, size_t len) {
  obs_t *o = ud;
  uv_mutex_lock(&o->mu);
  o->data++;
  snprintf(o->data_payload, sizeof o->data_payload, "%.*s", (int)len, payload);
  uv_mutex_unlock(&o->mu);
}

static void mint(char *out, size_t cap, const char *identity, const char *key, const char *secret) {
  hd_token_claims_t cl;
  memset(&cl, 0, sizeof cl);
  snprintf(cl.key, sizeof cl.key, "%s", key);
  snprintf(cl.identity, sizeof cl.identity, "%s", identity);
  snprintf(cl.room, sizeof cl.room, "itest-sdk");
  cl.room_join = cl.can_publish = cl.can_subscribe = cl.can_publish_data = 1;
  cl.iat = cl.nbf = (int64_t)time(NULL) - 5;
  cl.exp = cl.iat + 3600;
  if (hd_token_mint(&cl, secret, out, cap) < 0) die("token mint failed");
}

static hd_client_t *make(obs_t *o, const char *url, const char *token, unsigned join_timeout_ms,
                         int encoded) {
  memset(o, 0, sizeof *o);
  uv_mutex_init(&o->mu);
  hd_client_config_t cfg = {.url = url,
                            .token = token,
                            .join_timeout_ms = join_timeout_ms,
                            .encoded_frames = encoded,
                            .stats_interval_ms = 500,
                            .cb = {.on_state = on_state,
                                   .on_track = on_track,
                                   .on_audio = on_audio,
                                   .on_video = on_video,
                                   .on_encoded = on_encoded,
                                   .on_data = on_data,
                                   .ud = o}};
  hd_client_t *c;
  int rc = hd_client_new(&c, &cfg);
  if (rc < 0) die("hd_client_new: %s", hd_client_strerror(rc));
  return c;
}

static int get(obs_t *o, int *field) {
  uv_mutex_lock(&o->mu);
  int v = *field;
  uv_mutex_unlock(&o->mu);
  return v;
}

/* Joins and expects FAILED with `want` within `limit_s`. */
static void expect_fail(const char *what, const char *url, const char *token, unsigned timeout_ms, int want,
                        double limit_s) {
  obs_t o;
  hd_client_t *c = make(&o, url, token, timeout_ms, 0);
  double t0 = now_s();
  if (hd_client_join(c) < 0) die("%s: join call failed", what);
  while (hd_client_state(c) != HD_CLIENT_FAILED) {
    if (now_s() - t0 > limit_s)
      die("%s: no FAILED within %.1f s (state %s)", what, limit_s, hd_client_state_name(hd_client_state(c)));
    usleep(10000);
  }
  hd_client_free(c);
  if (o.err != want)
    die("%s: error %s (%s), want %s", what, hd_client_strerror(o.err), o.reason, hd_client_strerror(want));
  printf("itest_sdk: %s -> %s: %s (%.2f s)\n", what, hd_client_strerror(o.err), o.reason, now_s() - t0);
  uv_mutex_destroy(&o.mu);
}

int main(void) {
  const char *hp = getenv("HUDONG_HTTP");
  if (!hp) die("HUDONG_HTTP not set (run via run_with_server.sh)");
  char url[128], tok_a[HD_TOKEN_MAX], tok_b[HD_TOKEN_MAX], tok_bad[HD_TOKEN_MAX];
  snprintf(url, sizeof url, "ws://127.0.0.1:%s/rtc", hp);
  mint(tok_a, sizeof tok_a, "alice", "devkey", "devsecret");
  mint(tok_b, sizeof tok_b, "bob", "devkey", "devsecret");
  mint(tok_bad, sizeof tok_bad, "mallory", "devkey", "wrongsecret");

  /* ---- failures ---- */
  hd_client_t *c;
  hd_client_config_t bad = {.url = url, .token = ""};
  if (hd_client_new(&c, &bad) != HD_CLIENT_EINVAL) die("empty token accepted");
  expect_fail("malformed url", "http:/nope", tok_a, 2000, HD_CLIENT_EINVAL, 2);
  /* wss:// is supported (issue 12 item 14): a closed port fails like ws:// */
  expect_fail("wss url, closed port", "wss://127.0.0.1:1/rtc", tok_a, 2000, HD_CLIENT_EIO, 3);
  expect_fail("bad token", url, tok_bad, 5000, HD_CLIENT_EAUTH, 5);
  const char *rp = getenv("HUDONG_RTC"); /* a UDP port: nobody listens on TCP there */
  char dead[128];
  snprintf(dead, sizeof dead, "ws://127.0.0.1:%s/rtc", rp ? rp : "1");
  expect_fail("unreachable node", dead, tok_a, 3000, HD_CLIENT_EIO, 3.5);
  /* a TCP listener that never answers: the join timeout decides */
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 4) < 0 ||
      getsockname(ls, (struct sockaddr *)&a, &al) < 0)
    die("listen");
  snprintf(dead, sizeof dead, "ws://127.0.0.1:%d/rtc", ntohs(a.sin_port));
  expect_fail("silent node", dead, tok_a, 1500, HD_CLIENT_ETIMEDOUT, 3);
  close(ls);

  /* ---- a call ---- */
  obs_t oa, ob;
  hd_client_t *alice = make(&oa, url, tok_a, 0, 0);
  hd_client_t *bob = make(&ob, url, tok_b, 0, 1);
  hd_client_publish_t tone = {.kind = HD_CLIENT_AUDIO, .from = HD_CLIENT_SOURCE_TONE, .tone_hz = 440};
  hd_client_publish_t pat = {
      .kind = HD_CLIENT_VIDEO, .from = HD_CLIENT_SOURCE_PATTERN, .width = 320, .height = 180, .fps = 15};
  if (hd_client_publish(alice, &tone) != 0 || hd_client_publish(alice, &pat) != 1) die("publish indices");
  hd_client_publish_t bogus = {.kind = HD_CLIENT_VIDEO, .from = HD_CLIENT_SOURCE_TONE};
  if (hd_client_publish(alice, &bogus) != HD_CLIENT_EINVAL) die("tone video accepted");
  if (hd_client_join(alice) < 0 || hd_client_join(bob) < 0) die("join");
  double t0 = now_s();
  while (hd_client_state(alice) != HD_CLIENT_JOINED || hd_client_state(bob) != HD_CLIENT_JOINED) {
    if (now_s() - t0 > 10)
      die("not joined: alice %s bob %s (%s)", hd_client_state_name(hd_client_state(alice)),
          hd_client_state_name(hd_client_state(bob)), ob.reason);
    usleep(10000);
  }
  /* push API: a 1 kHz PCM track and a second pattern picture stream */
  hd_client_publish_t pa = {.kind = HD_CLIENT_AUDIO, .source = "screen_audio"};
  hd_client_publish_t pv = {.kind = HD_CLIENT_VIDEO, .source = "screen", .fps = 10};
  int ta = hd_client_publish(alice, &pa), tv = hd_client_publish(alice, &pv);
  if (ta != 2 || tv != 3) die("push track indices %d %d", ta, tv);
  hd_client_publish_t fifth = {.kind = HD_CLIENT_AUDIO};
  if (hd_client_publish(alice, &fifth) != HD_CLIENT_ENOSPC) die("fifth track accepted");
  hd_tone_t k;
  hd_tone_init(&k, 1000, 6000, 48000, 1);
  hd_i420_t pic;
  hd_i420_alloc(&pic, 256, 144);
  int16_t pcm[960];
  uint32_t n = 0;
  int sent_data = 0;
  t0 = now_s();
  while (get(&ob, &ob.video_frames) < 150 || get(&ob, &ob.tone_n) < 20 || get(&ob, &ob.counter_reads) < 30 ||
         !get(&oa, &oa.data)) {
    if (now_s() - t0 > 30)
      die("bob: %d video frames (%d counters), %d audio frames (%d tone blocks), alice data %d",
          ob.video_frames, ob.counter_reads, ob.audio_frames, ob.tone_n, oa.data);
    hd_tone_fill(&k, pcm, 960);
    if (hd_client_push_audio(alice, ta, pcm, 960) < 0) die("push audio");
    if (n % 5 == 0) {
      hd_test_pattern_draw(&pic, n / 5);
      const uint8_t *pl[3] = {pic.plane[0], pic.plane[1], pic.plane[2]};
      if (hd_client_push_video(alice, tv, pic.width, pic.height, pl, pic.stride) < 0) die("push video");
    }
    n++;
    if (!sent_data && get(&ob, &ob.video_frames) > 10) {
      if (hd_client_send_data(bob, "hello alice", NULL, 0) < 0) die("send_data");
      sent_data = 1;
    }
    usleep(20000);
  }
  hd_i420_free(&pic);
  if (strcmp(oa.data_payload, "hello alice")) die("data payload '%s'", oa.data_payload);
  double hz = ob.tone_sum / ob.tone_n;
  if (fabs(hz - 440) > 5) die("tone %.1f Hz", hz);
  if (ob.counter_last == ob.counter_first) die("counter did not advance");
  if (!ob.encoded) die("no encoded frames");
  if (ob.tracks < 4) die("bob saw %d tracks", ob.tracks);
  usleep(700000);
  hd_client_stats_t *st = calloc(1, sizeof *st);
  hd_client_get_stats(bob, st);
  int remote_video = 0, remote_audio = 0;
  for (int i = 0; i < st->n_tracks; i++) {
    const hd_client_track_stats_t *t = &st->tracks[i];
    if (t->local) continue;
    if (!t->track_sid[0] || strcmp(t->identity, "alice")) die("remote track without sid/identity");
    if (t->kind == HD_CLIENT_VIDEO && t->frames > 0 && t->packets > 0) remote_video++;
    if (t->kind == HD_CLIENT_AUDIO && t->played_ms > 0 && t->packets > 0) remote_audio++;
  }
  if (remote_video < 2 || remote_audio < 2)
    die("bob's stats: %d video, %d audio tracks", remote_video, remote_audio);
  hd_client_get_stats(alice, st);
  int local = 0;
  for (int i = 0; i < st->n_tracks; i++)
    local += st->tracks[i].local && st->tracks[i].packets > 0 && st->tracks[i].track_sid[0];
  if (local != 4) die("alice's stats: %d local tracks sending", local);
  free(st);
  printf("itest_sdk: bob decoded %d frames (counter %d -> %d), %d audio frames, tone %.1f Hz, %d encoded\n",
         ob.video_frames, ob.counter_first, ob.counter_last, ob.audio_frames, hz, ob.encoded);

  /* unpublish: bob is told the track went away */
  if (hd_client_unpublish(alice, tv) < 0) die("unpublish");
  if (hd_client_unpublish(alice, tv) != HD_CLIENT_EINVAL) die("double unpublish accepted");
  t0 = now_s();
  while (get(&ob, &ob.untracks) < 1) {
    if (now_s() - t0 > 5) die("bob not told about the unpublished track");
    usleep(10000);
  }
  static const uint8_t px[256];
  const uint8_t *const pp[3] = {px, px, px};
  const int ps[3] = {16, 8, 8};
  if (hd_client_push_video(alice, tv, 16, 16, pp, ps) != HD_CLIENT_EINVAL)
    die("push to an unpublished track accepted");
  hd_client_leave(alice);
  hd_client_leave(bob);
  t0 = now_s();
  while (hd_client_state(alice) != HD_CLIENT_DISCONNECTED || hd_client_state(bob) != HD_CLIENT_DISCONNECTED) {
    if (now_s() - t0 > 5) die("leave did not complete");
    usleep(10000);
  }
  hd_client_free(alice);
  hd_client_free(bob);
  uv_mutex_destroy(&oa.mu);
  uv_mutex_destroy(&ob.mu);
  printf("itest_sdk: ok\n");
  return 0;
}
