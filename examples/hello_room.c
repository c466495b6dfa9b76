/* hello_room: the smallest complete libhudong program (docs/sdk.md).
 * Joins a room, publishes a 440 Hz tone and a moving picture that it makes
 * itself (pushed as raw PCM / I420), and reports what it receives from the
 * others (browsers or native clients) until Ctrl-C.
 *   usage: hello_room ws://127.0.0.1:7880/rtc TOKEN */
#include <hudong/client.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define W 320
#define H 180
static volatile sig_atomic_t stop;
static void on_sigint(int s) { stop = 1; }

static void on_state(void *ud, hd_client_state_t st, int err, const char *why) {
  printf("state: %s %s\n", hd_client_state_name(st), err ? why : "");
}
static void on_track(void *ud, const hd_client_track_info_t *t, int published) {
  printf("%s %s track of %s\n", published ? "+" : "-", t->kind == HD_CLIENT_AUDIO ? "audio" : "video",
         t->identity);
}
static void on_audio(void *ud, const hd_client_audio_frame_t *f) { /* 20 ms of 48 kHz PCM: play it here */
}
static void on_video(void *ud, const hd_client_video_frame_t *f) { ++*(long *)ud; /* an I420 picture */ }
static void on_stats(void *ud, const hd_client_stats_t *s) {
  for (int i = 0; i < s->n_tracks; i++) {
    const hd_client_track_stats_t *t = &s->tracks[i];
    if (t->local) continue;
    printf("  %s %s: %.0f kb/s, loss %.1f%%, %llu frames, concealed %.1f%%\n", t->identity,
           t->kind == HD_CLIENT_AUDIO ? "audio" : "video", t->bitrate_kbps, t->loss_pct,
           (unsigned long long)t->frames, t->concealed_pct);
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s ws://host:port/rtc TOKEN\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0); /* line by line, also into a pipe */
  long frames = 0;
  hd_client_config_t cfg = {.url = argv[1],
                            .token = argv[2],
                            .cb = {.on_state = on_state,
                                   .on_track = on_track,
                                   .on_audio = on_audio,
                                   .on_video = on_video,
                                   .on_stats = on_stats,
                                   .ud = &frames}};
  hd_client_t *c;
  int rc = hd_client_new(&c, &cfg);
  if (rc < 0) return fprintf(stderr, "hd_client_new: %s\n", hd_client_strerror(rc)), 1;
  hd_client_publish_t mic = {.kind = HD_CLIENT_AUDIO}; /* defaults: push, mono */
  hd_client_publish_t cam = {.kind = HD_CLIENT_VIDEO, .width = W, .height = H, .fps = 25};
  int a = hd_client_publish(c, &mic), v = hd_client_publish(c, &cam);
  hd_client_join(c);
  signal(SIGINT, on_sigint);
  static uint8_t y[W * H], u[W * H / 4], vv[W * H / 4];
  const uint8_t *planes[3] = {y, u, vv};
  const int strides[3] = {W, W / 2, W / 2};
  int16_t pcm[960];
  double phase = 0;
  for (long n = 0; !stop && hd_client_state(c) != HD_CLIENT_FAILED; n++) {
    for (int i = 0; i < 960; i++, phase += 2 * M_PI * 440 / 48000) /* 20 ms of tone */
      pcm[i] = (int16_t)(6000 * sin(phase));
    hd_client_push_audio(c, a, pcm, 960);
    if (n % 2 == 0) { /* 25 fps: a bar sweeping over a gradient */
      for (int r = 0; r < H; r++)
        for (int x = 0; x < W; x++)
          y[r * W + x] = (uint8_t)(abs(x - (int)(n * 2 % W)) < 8 ? 235 : 16 + r);
      for (int i = 0; i < W * H / 4; i++)
        u[i] = vv[i] = 128;
      hd_client_push_video(c, v, W, H, planes, strides);
    }
    usleep(20000); /* a real app is driven by its capture devices instead */
  }
  printf("decoded %ld remote video frames\n", frames);
  hd_client_leave(c);
  hd_client_free(c);
  return 0;
}
