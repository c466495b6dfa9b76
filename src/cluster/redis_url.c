/* Parses redis://[[user]:password@]host[:port][/db] (see redis_url.h).
 * rediss:// (TLS) is refused: hiredis 0.14 has no TLS (DESIGN §4), so Redis
 * stays on a private network with a password. */
#include "cluster/redis_url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

#define FORM "redis://[:password@]host[:port][/db]"

static int bad(char *why, size_t whycap, const char *what) {
  snprintf(why, whycap, "bad Redis URL: %s (want " FORM ")", what);
  return HD_EINVAL;
}

static int num(const char *s, size_t l, long lo, long hi, long *out) {
  if (l == 0 || l > 6) return -1;
  long v = 0;
  for (size_t i = 0; i < l; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  if (v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

int hd_redis_url_parse(const char *s, hd_redis_url_t *out, char *why, size_t whycap) {
  memset(out, 0, sizeof *out);
  out->port = 6379;
  if (!strncmp(s, "rediss://", 9))
    return bad(why, whycap, "rediss:// (TLS) is not supported; keep Redis on a private network");
  if (strncmp(s, "redis://", 8)) return bad(why, whycap, "it must start with redis://");
  const char *p = s + 8;
  const char *end = p + strcspn(p, "/?#");
  const char *at = NULL;
  for (const char *q = p; q < end; q++)
    if (*q == '@') at = q; /* the last '@': a password may contain '@' */
  if (at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    size_t ul = colon ? (size_t)(colon - p) : (size_t)(at - p);
    if (!colon) return bad(why, whycap, "credentials must be user:password@ or :password@");
    size_t pl = (size_t)(at - colon - 1);
    if (ul >= sizeof out->user || pl >= sizeof out->password) return bad(why, whycap, "credentials too long");
    if (pl == 0) return bad(why, whycap, "empty password");
    memcpy(out->user, p, ul);
    out->user[ul] = 0;
    memcpy(out->password, colon + 1, pl);
    out->password[pl] = 0;
    p = at + 1;
  }
  const char *hend;
  if (*p == '[') { /* [IPv6] */
    const char *rb = memchr(p, ']', (size_t)(end - p));
    if (!rb) return bad(why, whycap, "unclosed [ in the host");
    if ((size_t)(rb - p - 1) >= sizeof out->host || rb == p + 1) return bad(why, whycap, "bad host");
    memcpy(out->host, p + 1, (size_t)(rb - p - 1));
    out->host[rb - p - 1] = 0;
    hend = rb + 1;
    if (hend < end && *hend != ':') return bad(why, whycap, "junk after ]");
  } else {
    hend = p;
    while (hend < end && *hend != ':')
      hend++;
    if (hend == p || (size_t)(hend - p) >= sizeof out->host) return bad(why, whycap, "missing or long host");
    memcpy(out->host, p, (size_t)(hend - p));
    out->host[hend - p] = 0;
  }
  if (hend < end) { /* ":port" */
    long port;
    if (num(hend + 1, (size_t)(end - hend - 1), 1, 65535, &port))
      return bad(why, whycap, "the port must be an integer in 1..65535");
    out->port = (int)port;
  }
  if (*end == '/' && end[1]) {
    long db;
    if (num(end + 1, strlen(end + 1), 0, 1000000, &db))
      return bad(why, whycap, "the /db must be a database number");
    out->db = (int)db;
  } else if (*end && strcmp(end, "/")) {
    return bad(why, whycap, "no query or fragment allowed");
  }
  return 0;
}
