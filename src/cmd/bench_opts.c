/* `hudong bench load`'s command line (bench_load.h bl_parse_opts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "cmd/bench_load.h"
#include "cmd/cmd.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: hudong bench load --target hudong|janus --url URL [--key K --secret S] [--room R]\n"
          "         [--rooms R] --publishers M --subscribers N [--audio-only] [--video-kbps 1000]\n"
          "         [--duration S] [--warmup S] [--ramp 20] [--join-timeout S] [--server-pid PID]\n"
          "         [--local-ip IP] [--json FILE] [--quiet] [--count-only]\n"
          "         [--balance-workers W [--list-rooms]] [--fail-fast] [--sub-url U1,U2,...]\n"
          "         [--threads T] [--join-rate LEGS_PER_S]\n"
          "  M publishers and N subscribers per room over real ICE/DTLS/SRTP; synthetic media\n"
          "  (audio 50 pkt/s, video ~1 Mbps, keyframe every 2 s); reports loss and added latency.\n"
          "  hudong: --url http://127.0.0.1:7880 (or ws://127.0.0.1:7880/rtc), tokens minted with\n"
          "          --key/--secret\n"
          "  janus:  --url http://127.0.0.1:8088/janus (VideoRoom plugin; rooms created here)\n"
          "  --local-ip: address the clients' UDP sockets bind to (default 127.0.0.1; Janus never\n"
          "            gathers loopback candidates: give it the host's own address, still local)\n"
          "  --count-only: subscribers do not decrypt media; they count packets and loss from the\n"
          "            clear RTP sequence numbers per SSRC (recvmmsg batches). No latency figure.\n"
          "            Loss = max(sequence-gap loss, shortfall of arrivals against what was sent).\n"
          "  --balance-workers W: name the rooms so that `hudong serve --media-workers W` puts\n"
          "            room i on worker i %% W (same FNV-1a of key and room as the server);\n"
          "            --list-rooms prints those names, one a line, and exits\n"
          "  --fail-fast: stop joining at the first subscriber leg that fails (a rate search's\n"
          "            failed step then ends in seconds, not minutes)\n"
          "  --sub-url U1[,U2,...]: hudong cluster: subscribers join these nodes (subscriber i of a\n"
          "            room: U(i mod count)), publishers join --url (bench/cluster)\n"
          "  --threads T: generator threads, 1..%d (default: online CPUs, at most %d; Janus: 1).\n"
          "            Subscriber legs are split over them, each thread with its own loop, sockets\n"
          "            and counts (merged at the end); publishers run on the first. 1 = one loop.\n"
          "  --ramp N: subscriber legs connecting at once, over all threads (default 20;\n"
          "            no cap with --join-rate unless given)\n"
          "  --join-rate R: start R subscriber legs per second over all threads, however many are\n"
          "            still connecting (default 0 = as fast as --ramp allows); the join phase\n"
          "            ends when every leg is up or has failed (its --join-timeout), at the latest\n"
          "            1.5 x legs / R + --join-timeout s; the report says how long it took\n",
          BL_MAX_PARTS, BL_DEFAULT_THREADS);
}

int bl_parse_opts(int argc, char **argv, bl_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->room = "bench";
  o->rooms = 1;
  o->publishers = 1;
  o->video_kbps = 1000;
  o->duration = 10;
  o->warmup = 2;
  o->ramp = 20;
  o->join_timeout_s = 20;
  o->local_ip = "127.0.0.1";
  int ramp_set = 0;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV                                                                                                \
  if (!v) {                                                                                                  \
    fprintf(stderr, "hudong bench load: %s needs a value\n", a);                                             \
    return -1;                                                                                               \
  }                                                                                                          \
  i++;
    if (!strcmp(a, "--target")) {
      NEEDV
      if (!strcmp(v, "hudong"))
        o->target = BL_HUDONG;
      else if (!strcmp(v, "janus"))
        o->target = BL_JANUS;
      else {
        fprintf(stderr, "hudong bench load: --target hudong or janus\n");
        return -1;
      }
    } else if (!strcmp(a, "--url")) {
      NEEDV o->url = v;
    } else if (!strcmp(a, "--sub-url")) {
      NEEDV
      char list[8192];
      snprintf(list, sizeof list, "%s", v);
      o->n_sub_urls = 0;
      for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char uerr[1200];
        if (o->n_sub_urls == 8 ||
            hd_cli_rtc_url(t, o->sub_urls[o->n_sub_urls], sizeof o->sub_urls[0], uerr, sizeof uerr) < 0) {
          fprintf(stderr, "hudong bench load: --sub-url: %s\n", o->n_sub_urls == 8 ? "at most 8 URLs" : uerr);
          return -1;
        }
        o->n_sub_urls++;
      }
    } else if (!strcmp(a, "--key")) {
      NEEDV o->key = v;
    } else if (!strcmp(a, "--secret")) {
      NEEDV o->secret = v;
    } else if (!strcmp(a, "--room")) {
      NEEDV o->room = v;
    } else if (!strcmp(a, "--rooms")) {
      NEEDV o->rooms = atoi(v);
    } else if (!strcmp(a, "--publishers")) {
      NEEDV o->publishers = atoi(v);
    } else if (!strcmp(a, "--subscribers")) {
      NEEDV o->subscribers = atoi(v);
    } else if (!strcmp(a, "--audio-only")) {
      o->audio_only = 1;
    } else if (!strcmp(a, "--video-kbps")) {
      NEEDV o->video_kbps = atoi(v);
    } else if (!strcmp(a, "--duration")) {
      NEEDV o->duration = atof(v);
    } else if (!strcmp(a, "--warmup")) {
      NEEDV o->warmup = atof(v);
    } else if (!strcmp(a, "--ramp")) {
      NEEDV o->ramp = atoi(v);
      ramp_set = 1;
    } else if (!strcmp(a, "--join-timeout")) {
      NEEDV o->join_timeout_s = atoi(v);
    } else if (!strcmp(a, "--server-pid")) {
      NEEDV o->server_pid = atoi(v);
    } else if (!strcmp(a, "--json")) {
      NEEDV o->json = v;
    } else if (!strcmp(a, "--local-ip")) {
      NEEDV o->local_ip = v;
    } else if (!strcmp(a, "--count-only")) {
      o->count_only = 1;
    } else if (!strcmp(a, "--balance-workers")) {
      NEEDV o->balance_workers = atoi(v);
    } else if (!strcmp(a, "--threads")) {
      NEEDV o->threads = atoi(v);
      if (o->threads < 1 || o->threads > BL_MAX_PARTS) {
        fprintf(stderr, "hudong bench load: --threads takes 1..%d (got %s)\n", BL_MAX_PARTS, v);
        return -1;
      }
    } else if (!strcmp(a, "--join-rate")) {
      NEEDV o->join_rate = atof(v);
      if (!(o->join_rate >= 0 && o->join_rate <= 100000)) {
        fprintf(stderr,
                "hudong bench load: --join-rate takes legs per second, 0..100000 (0 = unpaced; got %s)\n", v);
        return -1;
      }
    } else if (!strcmp(a, "--fail-fast")) {
      o->fail_fast = 1;
    } else if (!strcmp(a, "--list-rooms")) {
      o->list_rooms = 1;
    } else if (!strcmp(a, "--quiet")) {
      o->quiet = 1;
    } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 1;
    } else {
      fprintf(stderr, "hudong bench load: unknown option %s\n", a);
      return -1;
    }
#undef NEEDV
  }
  if (o->balance_workers < 0 || o->balance_workers > 64) {
    fprintf(stderr, "hudong bench load: --balance-workers 1..64\n");
    return -1;
  }
  if (o->list_rooms) {
    if (!o->key) o->key = "devkey";
    return 0;
  }
  if (!o->target || !o->url) {
    fprintf(stderr, "hudong bench load: --target and --url are required\n");
    return -1;
  }
  if (o->target == BL_HUDONG) { /* the node's address or its /rtc URL (cmd.h hd_cli_rtc_url) */
    static char rtc_url[1024];
    char uerr[1200];
    if (hd_cli_rtc_url(o->url, rtc_url, sizeof rtc_url, uerr, sizeof uerr) < 0) {
      fprintf(stderr, "hudong bench load: %s\n", uerr);
      return -1;
    }
    o->url = rtc_url;
  }
  /* paced joins: the rate alone decides when a leg starts (legs that hang do
   * not hold the others back) unless --ramp caps them as well */
  if (o->join_rate > 0 && !ramp_set) o->ramp = 1000000;
  if (o->target == BL_JANUS && o->threads > 1) {
    fprintf(stderr,
            "hudong bench load: --threads %d: the Janus target runs on one thread (one HTTP session and "
            "long poll); use --threads 1 or leave it out\n",
            o->threads);
    return -1;
  }
  if (o->target == BL_HUDONG && (!o->key || !o->secret)) {
    fprintf(stderr, "hudong bench load: --key and --secret are required for hudong\n");
    return -1;
  }
  if (o->rooms < 1 || o->rooms > 100 || o->publishers < 1 || o->publishers > 200 || o->subscribers < 0 ||
      o->subscribers > 5000 || o->duration <= 0 || o->duration > 3600 || o->warmup < 0 || o->ramp < 1 ||
      o->video_kbps < 10 || o->video_kbps > 20000 || o->join_timeout_s < 1) {
    fprintf(stderr, "hudong bench load: a value is out of range\n");
    return -1;
  }
  return 0;
}
