/* `hudong drain`: asks a node to drain (POST /admin/drain; docs/overlay.md
 * "Draining", issue 15 item 6) and, with --wait, waits until it has stopped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "io/http_sync.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: hudong drain --url http://HOST:PORT --token ADMIN_TOKEN [--grace S] [--wait]\n"
          "  drains the node at URL: it leaves the cluster's routing, refuses new joins naming\n"
          "  another node, tells its participants to move there, and stops once empty (after at\n"
          "  least 2 s) or after --grace seconds (0..3600; default: the node's drain_grace_s, else 30).\n"
          "  ADMIN_TOKEN: an app-wide roomAdmin token (hudong token ... --admin, without --room).\n"
          "  --wait: return once the node no longer answers (exit 1 if it still does after grace + 10 s).\n");
}

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int hd_cmd_drain(int argc, char **argv) {
  const char *url = NULL, *token = NULL;
  long grace = -1;
  int wait = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--wait")) {
      wait = 1;
    } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else if (!v) {
      fprintf(stderr, "hudong drain: %s needs a value\n", a);
      usage(stderr);
      return 2;
    } else {
      if (!strcmp(a, "--url"))
        url = v;
      else if (!strcmp(a, "--token"))
        token = v;
      else if (!strcmp(a, "--grace")) {
        char *end;
        grace = strtol(v, &end, 10);
        if (*end || end == v || grace < 0 || grace > 3600) {
          fprintf(stderr, "hudong drain: --grace is 0..3600 seconds\n");
          return 2;
        }
      } else {
        fprintf(stderr, "hudong drain: unknown option %s\n", a);
        usage(stderr);
        return 2;
      }
      i++;
    }
  }
  if (!url || !token) {
    fprintf(stderr, "hudong drain: --url and --token are required\n");
    usage(stderr);
    return 2;
  }
  char path[64], body[4096], err[512];
  if (grace >= 0)
    snprintf(path, sizeof path, "/admin/drain?grace=%ld", grace);
  else
    snprintf(path, sizeof path, "/admin/drain");
  int st = hd_http_sync("POST", url, path, token, body, sizeof body, 3000, err, sizeof err);
  if (st < 0) {
    fprintf(stderr, "hudong drain: %s\n", err);
    return 1;
  }
  if (st != 202) {
    fprintf(stderr, "hudong drain: the node answered %d: %s", st, body);
    return 1;
  }
  printf("%s\n", body);
  if (!wait) return 0;
  /* the grace the node took, from its answer ("grace_s":N) */
  const char *g = strstr(body, "\"grace_s\":");
  long gs = g ? strtol(g + 10, NULL, 10) : 30;
  double t0 = mono_s();
  while (mono_s() - t0 < (double)gs + 10) {
    usleep(200000);
    if (hd_http_sync("GET", url, "/healthz", NULL, body, sizeof body, 3000, err, sizeof err) < 0) {
      printf("hudong drain: the node stopped %.1f s after the request\n", mono_s() - t0);
      return 0;
    }
  }
  fprintf(stderr, "hudong drain: the node still answers %ld s after the request\n", gs + 10);
  return 1;
}
