/* `hudong pub`: the native SDK (include/hudong/client.h) from the command line:
 * joins a room and publishes audio (a WAV file or a tone) and video (a Y4M file
 * or the test pattern with a burnt-in frame counter, media/test_signal.h).
 * Files are pushed in real time from this thread through the SDK's push API;
 * the tone and the pattern are the SDK's built-in sources.
 *
 * Helper modes for tests (no network): --write-pattern FILE.y4m writes the
 * test pattern (size/rate from --pattern, length from --duration) and
 * --write-tone FILE.wav writes a 48 kHz mono tone (--tone, --duration), e.g.
 * for Chromium's --use-file-for-fake-video/audio-capture. */
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "base/base64.h"
#include "base/err.h"
#include "cmd/cmd.h"
#include "hudong/client.h"
#include "media/i420.h"
#include "media/media_file.h"
#include "media/test_signal.h"

static volatile sig_atomic_t g_stop;
static void on_sig(int s) { g_stop = 1; }

static void usage(FILE *f) {
  fprintf(f, "usage: hudong pub (--url U | --cluster C) --token T [--audio FILE.wav | --tone HZ]\n"
             "                  [--video FILE.y4m | --pattern WxH@FPS] [--loop] [--duration S]\n"
             "                  [--name N] [--max-bitrate BPS] [--simulcast | --no-simulcast] [--quiet]\n"
             "                  [--fallback U2,U3,...]\n"
             "  --fallback: other nodes of a cluster, rejoined in turn when the connection to U is lost\n"
             "  (with --cluster, the route's other nodes are added)\n"
             "       hudong pub --write-pattern FILE.y4m [--pattern WxH@FPS] [--duration S]\n"
             "       hudong pub --write-tone FILE.wav [--tone HZ] [--duration S]\n"
             "  joins the room of token T at U (the node's address: http://host:port, https://, ws://\n"
             "  or wss://, /rtc optional) and publishes; exits 1 if the node does not accept the tracks.\n"
             "  --cluster C: any node of a cluster (http://host:port): the node is chosen by its\n"
             "  /api/route with the RTTs measured to the candidates (docs/overlay.md)\n"
             "  --simulcast / --no-simulcast: send the video as 2 (from 360p) or 3 (from 540p) layers\n"
             "  (the default from 540p), or as one stream with FlexFEC (the default below; docs/sdk.md\n"
             "  \"Simulcast\")\n"
             "  WAV must be\n"
             "  48 kHz 16-bit mono/stereo; the pattern burns a 16-bit frame counter into the picture.\n");
}

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
  uint8_t *p;
  size_t len;
} map_t;

static int map_file(const char *path, map_t *m) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return HD_EIO;
  struct stat st;
  if (fstat(fd, &st) < 0 || st.st_size <= 0) {
    close(fd);
    return HD_EIO;
  }
  void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return HD_EIO;
  m->p = p;
  m->len = (size_t)st.st_size;
  return 0;
}

static int parse_pattern(const char *v, int *w, int *h, int *fps) {
  return sscanf(v, "%dx%d@%d", w, h, fps) == 3 && *w >= HD_TEST_PATTERN_MIN_WIDTH && *h >= 16 &&
                 *w <= HD_I420_MAX_DIM && *h <= HD_I420_MAX_DIM && *fps >= 1 && *fps <= 120 && !(*w & 1) &&
                 !(*h & 1)
             ? 0
             : -1;
}

static int write_pattern(const char *path, int w, int h, int fps, double secs) {
  FILE *f = fopen(path, "wb");
  if (!f) {
    perror(path);
    return 1;
  }
  char hdr[HD_Y4M_HEADER_MAX];
  int n = hd_y4m_header_write(hdr, sizeof hdr, w, h, fps, 1);
  fwrite(hdr, 1, (size_t)n, f);
  hd_i420_t pic;
  if (hd_i420_alloc(&pic, w, h) < 0) return 1;
  size_t cap = hd_i420_size(w, h) + 16;
  uint8_t *buf = malloc(cap);
  int frames = (int)(secs * fps);
  for (int i = 0; i < frames && buf; i++) {
    hd_test_pattern_draw(&pic, (uint32_t)i);
    int k = hd_y4m_frame_write(&pic, buf, cap);
    if (k > 0) fwrite(buf, 1, (size_t)k, f);
  }
  free(buf);
  hd_i420_free(&pic);
  return fclose(f) == 0 ? 0 : 1;
}

static int write_tone(const char *path, double hz, double secs) {
  FILE *f = fopen(path, "wb");
  if (!f) {
    perror(path);
    return 1;
  }
  size_t samples = (size_t)(secs * 48000);
  uint8_t hdr[HD_WAV_HEADER_LEN];
  hd_wav_header_write(hdr, sizeof hdr, 48000, 1, (uint32_t)(samples * 2));
  fwrite(hdr, 1, sizeof hdr, f);
  hd_tone_t t;
  if (hd_tone_init(&t, hz, 8000, 48000, 1) < 0) return 1;
  int16_t pcm[960];
  for (size_t i = 0; i < samples; i += 960) {
    size_t n = samples - i < 960 ? samples - i : 960;
    hd_tone_fill(&t, pcm, n);
    fwrite(pcm, 2, n, f); /* little-endian hosts only (x86, arm) */
  }
  return fclose(f) == 0 ? 0 : 1;
}

/* What the token grants, read from its payload without the secret (the node
 * checks the signature; this only catches a token that cannot publish before
 * connecting, with a message saying how to mint one that can). 0 if readable. */
static int token_publish_grant(const char *token, int *can_publish, int *hidden) {
  const char *dot1 = strchr(token, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
  if (!dot2 || dot2 - dot1 - 1 > 8192) return -1;
  uint8_t body[8192];
  int n = hd_base64_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), body, sizeof body);
  if (n < 0) return -1;
  json_t *o = json_loadb((const char *)body, (size_t)n, 0, NULL);
  json_t *g = json_object_get(o, "grants");
  if (!json_is_object(g)) {
    json_decref(o);
    return -1;
  }
  *can_publish = json_is_true(json_object_get(g, "canPublish"));
  *hidden = json_is_true(json_object_get(g, "hidden"));
  json_decref(o);
  return 0;
}

/* 1 once the node has named every local track (accepted the publish). */
static int all_published(hd_client_t *c, int want) {
  hd_client_stats_t st;
  if (hd_client_get_stats(c, &st) < 0) return 0;
  int named = 0;
  for (int i = 0; i < st.n_tracks; i++)
    named += st.tracks[i].local && st.tracks[i].track_sid[0];
  return named >= want;
}

static void on_state(void *ud, hd_client_state_t st, int err, const char *reason) {
  if (err)
    fprintf(stderr, "hudong pub: %s: %s (%s)\n", hd_client_state_name(st), reason, hd_client_strerror(err));
  else
    fprintf(stderr, "hudong pub: %s\n", hd_client_state_name(st));
}

static void on_stats(void *ud, const hd_client_stats_t *s) {
  if (*(int *)ud) return;
  for (int i = 0; i < s->n_tracks; i++) {
    const hd_client_track_stats_t *t = &s->tracks[i];
    if (!t->local) continue;
    fprintf(stderr,
            "pub %s %-5s %7.1f kb/s target %llu pkts %llu lost %.1f%% rtt %.0f ms frames %llu estimate %llu "
            "%dx%d\n",
            t->track_sid[0] ? t->track_sid : "-", t->kind == HD_CLIENT_AUDIO ? "audio" : "video",
            t->bitrate_kbps, (unsigned long long)t->target_bps, (unsigned long long)t->packets, t->loss_pct,
            t->rtt_ms, (unsigned long long)t->frames, (unsigned long long)t->available_outgoing_bitrate,
            t->width, t->height);
  }
}

int hd_cmd_pub(int argc, char **argv) {
  const char *url = NULL, *token = NULL, *audio = NULL, *video = NULL, *name = NULL, *cluster = NULL,
             *fallback = NULL;
  const char *wpattern = NULL, *wtone = NULL;
  double tone = 0, duration = 0;
  int w = 640, h = 360, fps = 30, pattern = 0, loop = 0, quiet = 0, simulcast = 0;
  unsigned max_bps = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int takes = 1;
    if (!strcmp(a, "--loop")) {
      loop = 1;
      takes = 0;
    } else if (!strcmp(a, "--quiet")) {
      quiet = 1;
      takes = 0;
    } else if (!strcmp(a, "--simulcast") || !strcmp(a, "--no-simulcast")) {
      simulcast = a[2] == 'n' ? -1 : 1;
      takes = 0;
    } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else if (!v) {
      fprintf(stderr, "hudong pub: %s needs a value\n", a);
      usage(stderr);
      return 2;
    } else if (!strcmp(a, "--url"))
      url = v;
    else if (!strcmp(a, "--fallback"))
      fallback = v;
    else if (!strcmp(a, "--cluster"))
      cluster = v;
    else if (!strcmp(a, "--token"))
      token = v;
    else if (!strcmp(a, "--name"))
      name = v;
    else if (!strcmp(a, "--audio"))
      audio = v;
    else if (!strcmp(a, "--video"))
      video = v;
    else if (!strcmp(a, "--write-pattern"))
      wpattern = v;
    else if (!strcmp(a, "--write-tone"))
      wtone = v;
    else if (!strcmp(a, "--tone")) {
      tone = atof(v);
      if (tone <= 0 || tone >= 24000) {
        fprintf(stderr, "hudong pub: --tone must be 0 < HZ < 24000\n");
        return 2;
      }
    } else if (!strcmp(a, "--duration")) {
      duration = atof(v);
      if (duration < 0) {
        fprintf(stderr, "hudong pub: --duration must be >= 0\n");
        return 2;
      }
    } else if (!strcmp(a, "--max-bitrate"))
      max_bps = (unsigned)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--pattern")) {
      if (parse_pattern(v, &w, &h, &fps) < 0) {
        fprintf(stderr, "hudong pub: --pattern wants WxH@FPS, even W >= %d and H >= 16 (e.g. 640x360@30)\n",
                HD_TEST_PATTERN_MIN_WIDTH);
        return 2;
      }
      pattern = 1;
    } else {
      fprintf(stderr, "hudong pub: unknown option %s\n", a);
      usage(stderr);
      return 2;
    }
    i += takes;
  }
  if (wpattern) return write_pattern(wpattern, w, h, fps, duration > 0 ? duration : 10);
  if (wtone) return write_tone(wtone, tone > 0 ? tone : 440, duration > 0 ? duration : 10);
  if (!(url || cluster) || !token) {
    fprintf(stderr, "hudong pub: --url (or --cluster) and --token are required\n");
    usage(stderr);
    return 2;
  }
  char rtc_url[1024], uerr[1200];
  static hd_client_route_result_t routed; /* static: large, and fallback_urls point into it */
  if (cluster) {                          /* the node to use, from the cluster's /api/route and our RTTs */
    if (url) {
      fprintf(stderr, "hudong pub: give --url (one node) or --cluster (any node of a cluster), not both\n");
      return 2;
    }
    if (hd_cli_route(cluster, token, &routed, uerr, sizeof uerr, !quiet) < 0) {
      fprintf(stderr, "hudong pub: %s\n", uerr);
      return 1;
    }
    url = routed.node.url;
  }
  if (hd_cli_rtc_url(url, rtc_url, sizeof rtc_url, uerr, sizeof uerr) < 0) {
    fprintf(stderr, "hudong pub: %s\n", uerr);
    return 2;
  }
  url = rtc_url;
  int can_pub = 1, hidden = 0;
  if (token_publish_grant(token, &can_pub, &hidden) == 0 && (!can_pub || hidden)) {
    fprintf(stderr,
            "hudong pub: this token cannot publish (%s); mint one with publish rights, e.g. "
            "hudong token --key K --secret S --room R --identity U --publish\n",
            hidden ? "it is a hidden participant's" : "it lacks canPublish");
    return 1;
  }
  if ((audio && tone > 0) || (video && pattern)) {
    fprintf(stderr, "hudong pub: --audio/--tone and --video/--pattern are exclusive\n");
    return 2;
  }
  if (!audio && tone <= 0 && !video && !pattern) {
    fprintf(stderr, "hudong pub: nothing to publish (give --audio, --tone, --video or --pattern)\n");
    return 2;
  }

  /* files first: a bad file is an error before we connect */
  map_t wav = {0}, y4m = {0};
  hd_wav_info_t wi;
  hd_y4m_info_t yi;
  int rc;
  if (audio) {
    if (map_file(audio, &wav) < 0) {
      perror(audio);
      return 1;
    }
    if ((rc = hd_wav_parse(wav.p, wav.len, &wi)) < 0 || wi.rate != 48000 || wi.channels > 2) {
      fprintf(stderr, "hudong pub: %s: %s\n", audio,
              rc < 0 ? hd_client_strerror(rc) : "must be 48000 Hz, mono or stereo");
      return 1;
    }
  }
  if (video) {
    if (map_file(video, &y4m) < 0) {
      perror(video);
      return 1;
    }
    if ((rc = hd_y4m_parse_header(y4m.p, y4m.len, &yi)) < 0) {
      fprintf(stderr, "hudong pub: %s: not a 4:2:0 Y4M file (%s)\n", video, hd_client_strerror(rc));
      return 1;
    }
  }

  int quiet_flag = quiet;
  /* the cluster's other nodes: where the client rejoins when its node is lost (docs/overlay.md) */
  static char fb_urls[HD_CLIENT_MAX_FALLBACK_URLS][1024];
  const char *fb[HD_CLIENT_MAX_FALLBACK_URLS];
  char fb_list[8192];
  snprintf(fb_list, sizeof fb_list, "%s", fallback ? fallback : "");
  int n_fb = hd_cli_url_list(fb_list, fb_urls, HD_CLIENT_MAX_FALLBACK_URLS, uerr, sizeof uerr);
  if (n_fb < 0) {
    fprintf(stderr, "hudong pub: --fallback: %s\n", uerr);
    return 2;
  }
  for (int i = 0; i < n_fb; i++)
    fb[i] = fb_urls[i];
  for (int i = 0; i < routed.n_others && n_fb < HD_CLIENT_MAX_FALLBACK_URLS;
       i++) /* then the route's others */
    fb[n_fb++] = routed.fallback_urls[i];
  hd_client_config_t cfg = {.url = url,
                            .fallback_urls = fb,
                            .n_fallback_urls = n_fb,
                            .token = token,
                            .name = name,
                            .max_video_bps = max_bps,
                            .cb = {.on_state = on_state, .on_stats = on_stats, .ud = &quiet_flag}};
  hd_client_t *c;
  if ((rc = hd_client_new(&c, &cfg)) < 0) {
    fprintf(stderr, "hudong pub: %s\n", hd_client_strerror(rc));
    return 1;
  }
  signal(SIGINT, on_sig);
  signal(SIGTERM, on_sig);
  int at = -1, vt = -1;
  if (audio || tone > 0) {
    hd_client_publish_t p = {.kind = HD_CLIENT_AUDIO,
                             .from = audio ? HD_CLIENT_SOURCE_PUSH : HD_CLIENT_SOURCE_TONE,
                             .channels = audio ? wi.channels : 1,
                             .tone_hz = tone};
    at = hd_client_publish(c, &p);
  }
  if (video || pattern) {
    hd_client_publish_t p = {.kind = HD_CLIENT_VIDEO,
                             .from = video ? HD_CLIENT_SOURCE_PUSH : HD_CLIENT_SOURCE_PATTERN,
                             .width = video ? yi.width : w,
                             .height = video ? yi.height : h,
                             .fps =
                                 video ? (yi.fps_num + yi.fps_den / 2) / (yi.fps_den ? yi.fps_den : 1) : fps,
                             /* by default a picture from 540p goes as simulcast (layers q,
                              * h, f); a smaller one as one stream, which keeps FlexFEC on
                              * its uplink (a simulcast offer has none, docs/sdk.md) */
                             .simulcast = simulcast                        ? simulcast
                                          : (video ? yi.height : h) >= 540 ? 1
                                                                           : -1};
    if (p.fps < 1) p.fps = 30;
    vt = hd_client_publish(c, &p);
  }
  hd_client_join(c);
  int status = 0;
  double t0 = mono_s();
  /* wait for the join outcome (the SDK enforces the join timeout) */
  for (;;) {
    hd_client_state_t st = hd_client_state(c);
    if (st == HD_CLIENT_JOINED) break;
    if (st == HD_CLIENT_FAILED || g_stop) {
      status = 1;
      goto out;
    }
    usleep(10000);
  }
  /* the node must accept the tracks (a token without canPublish, a session
   * cap): otherwise say so and fail instead of "publishing" nothing */
  int want = (at >= 0) + (vt >= 0);
  double t_pub = mono_s();
  while (!all_published(c, want) && !g_stop && hd_client_state(c) == HD_CLIENT_JOINED) {
    if (mono_s() - t_pub > 10) {
      fprintf(stderr, "hudong pub: the node did not accept the tracks within 10 s (see the messages above: a "
                      "token without canPublish, or the node at a session limit); nothing was published\n");
      status = 1;
      goto out;
    }
    usleep(20000);
  }
  if (hd_client_state(c) == HD_CLIENT_FAILED) {
    status = 1;
    goto out;
  }
  size_t aoff = 0, voff = y4m.p ? yi.header_len : 0;
  double start = mono_s(), a_next = start, v_next = start;
  double v_iv = video ? (double)yi.fps_den / (double)yi.fps_num : 0;
  int a_done = !audio, v_done = !video;
  while (!g_stop) {
    double now = mono_s();
    if (duration > 0 && now - start >= duration) break;
    if (hd_client_state(c) == HD_CLIENT_FAILED) {
      status = 1;
      break;
    }
    while (!a_done && a_next <= now) {
      size_t frame = 960 * (size_t)wi.channels * 2;
      if (aoff + frame > wi.data_len) {
        if (!loop) {
          a_done = 1;
          break;
        }
        aoff = 0;
      }
      hd_client_push_audio(c, at, (const int16_t *)(const void *)(wav.p + wi.data_off + aoff), 960);
      aoff += frame;
      a_next += 0.02;
    }
    while (!v_done && v_next <= now) {
      hd_i420_t pic;
      int n = hd_y4m_parse_frame(y4m.p + voff, y4m.len - voff, &yi, &pic);
      if (n <= 0) {
        if (!loop || voff == yi.header_len) {
          v_done = 1;
          break;
        }
        voff = yi.header_len;
        continue;
      }
      voff += (size_t)n;
      const uint8_t *pl[3] = {pic.plane[0], pic.plane[1], pic.plane[2]};
      hd_client_push_video(c, vt, pic.width, pic.height, pl, pic.stride);
      v_next += v_iv;
      if (now - v_next > 0.2) v_next = now; /* fell behind: skip, do not burst */
    }
    if (a_done && v_done && !(tone > 0) && !pattern) break;
    usleep(5000);
  }
out:
  hd_client_leave(c);
  for (int i = 0; i < 100 && hd_client_state(c) == HD_CLIENT_JOINED; i++)
    usleep(10000);
  hd_client_free(c);
  if (wav.p) munmap(wav.p, wav.len);
  if (y4m.p) munmap(y4m.p, y4m.len);
  if (!quiet) fprintf(stderr, "hudong pub: done after %.1f s\n", mono_s() - t0);
  return status;
}
