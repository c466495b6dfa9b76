/* --url of `hudong pub`, `sub` and `bench load`: what a user copies from the
 * node's start banner or browser bar (http://127.0.0.1:7880) is as good as
 * the WebSocket URL (ws://127.0.0.1:7880/rtc). See cmd.h. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cmd/cmd.h"

int hd_cli_rtc_url(const char *in, char *out, size_t cap, char *err, size_t errcap) {
  static const struct {
    const char *from, *to;
  } schemes[] = {{"http://", "ws://"}, {"https://", "wss://"}, {"ws://", "ws://"}, {"wss://", "wss://"}};
  const char *scheme = NULL, *rest = in;
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
    size_t n = strlen(schemes[i].from);
    if (!strncasecmp(in, schemes[i].from, n)) {
      scheme = schemes[i].to;
      rest = in + n;
      break;
    }
  }
  if (!scheme) {
    const char *sep = strstr(in, "://");
    if (sep) {
      snprintf(err, errcap, "--url '%s': unknown scheme '%.*s' (use http://, https://, ws:// or wss://)", in,
               (int)(sep - in), in);
      return -1;
    }
    scheme = "ws://"; /* "127.0.0.1:7880" */
  }
  size_t hl = strcspn(rest, "/?#");
  if (hl == 0) {
    snprintf(err, errcap, "--url '%s': no host (e.g. http://127.0.0.1:7880)", in);
    return -1;
  }
  if (rest[hl] == '?' || rest[hl] == '#' || strpbrk(rest + hl, "?#")) {
    snprintf(err, errcap, "--url '%s': no query or fragment please (e.g. http://127.0.0.1:7880)", in);
    return -1;
  }
  /* the path without trailing slashes; /rtc added unless it is already there */
  const char *path = rest + hl;
  size_t pl = strlen(path);
  while (pl > 0 && path[pl - 1] == '/')
    pl--;
  int has_rtc = pl >= 4 && !strncmp(path + pl - 4, "/rtc", 4);
  int n = snprintf(out, cap, "%s%.*s%.*s%s", scheme, (int)hl, rest, (int)pl, path, has_rtc ? "" : "/rtc");
  if (n < 0 || (size_t)n >= cap) {
    snprintf(err, errcap, "--url '%s': too long", in);
    return -1;
  }
  return 0;
}

int hd_cli_url_list(const char *list, char (*out)[1024], int max, char *err, size_t errcap) {
  char buf[8192];
  snprintf(buf, sizeof buf, "%s", list ? list : "");
  int n = 0;
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    if (n == max) {
      snprintf(err, errcap, "at most %d fallback URLs", max);
      return -1;
    }
    if (hd_cli_rtc_url(t, out[n], sizeof out[0], err, errcap) < 0) return -1;
    n++;
  }
  return n;
}
