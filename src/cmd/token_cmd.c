/* `hudong token`: mints an HS256 JWT with Hudong grants (docs/tokens.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "cmd/cmd.h"
#include "proto/token.h"

static void usage(FILE *f) {
  fprintf(f, "usage: hudong token --key K --secret S --room R --identity U [--publish] [--subscribe]\n"
             "                    [--publish-data] [--admin] [--hidden] [--rtm] [--record] [--name N] [--ttl "
             "SECONDS]\n"
             "  prints a JWT (HS256) for app key K, valid for --ttl seconds (default 3600)\n");
}

int hd_cmd_token(int argc, char **argv) {
  hd_token_claims_t c;
  memset(&c, 0, sizeof c);
  const char *secret = NULL;
  long ttl = 3600;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define STR_OPT(flag, field)                                                                                 \
  if (!strcmp(a, flag)) {                                                                                    \
    if (!v || strlen(v) >= sizeof(field)) {                                                                  \
      fprintf(stderr, "hudong token: %s needs a value shorter than %zu bytes\n", flag, sizeof(field));       \
      return 2;                                                                                              \
    }                                                                                                        \
    snprintf(field, sizeof(field), "%s", v);                                                                 \
    i++;                                                                                                     \
    continue;                                                                                                \
  }
    STR_OPT("--key", c.key)
    STR_OPT("--room", c.room)
    STR_OPT("--identity", c.identity)
    STR_OPT("--name", c.name)
#undef STR_OPT
    if (!strcmp(a, "--secret") && v) {
      secret = v;
      i++;
    } else if (!strcmp(a, "--ttl") && v) {
      char *end;
      ttl = strtol(v, &end, 10);
      if (*end || ttl <= 0 || ttl > 366L * 86400) {
        fprintf(stderr, "hudong token: --ttl must be 1..31622400 seconds\n");
        return 2;
      }
      i++;
    } else if (!strcmp(a, "--publish"))
      c.can_publish = 1;
    else if (!strcmp(a, "--subscribe"))
      c.can_subscribe = 1;
    else if (!strcmp(a, "--publish-data"))
      c.can_publish_data = 1;
    else if (!strcmp(a, "--admin"))
      c.room_admin = 1;
    else if (!strcmp(a, "--hidden"))
      c.hidden = 1;
    else if (!strcmp(a, "--rtm"))
      c.rtm = 1;
    else if (!strcmp(a, "--record"))
      c.can_record = 1;
    else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "hudong token: unknown or incomplete option '%s'\n", a);
      usage(stderr);
      return 2;
    }
  }
  /* an RTM-only token (--rtm without --room) needs no room: RTM is not room-scoped */
  if (!c.key[0] || !secret || !secret[0] || !c.identity[0] || (!c.room[0] && !c.room_admin && !c.rtm)) {
    fprintf(stderr, "hudong token: --key, --secret, --identity and --room (or --rtm) are required\n");
    usage(stderr);
    return 2;
  }
  c.room_join = c.room[0] || c.room_admin;
  c.iat = c.nbf = (int64_t)time(NULL);
  c.exp = c.iat + ttl;
  char out[HD_TOKEN_MAX];
  int rc = hd_token_mint(&c, secret, out, sizeof out);
  if (rc < 0) {
    fprintf(stderr, "hudong token: %s\n", hd_strerror(rc));
    return 1;
  }
  printf("%s\n", out);
  return 0;
}
