/* First-request head check in front of libwebsockets (see http_head.h). */
#include "io/http_head.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

size_t hd_http_head_length(const char *buf, size_t len) {
  for (size_t i = 0; i + 1 < len; i++) {
    if (buf[i] != '\n') continue;
    if (buf[i + 1] == '\n') return i + 2;
    if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n') return i + 3;
  }
  return 0;
}

/* RFC 9110 §5.6.2 tchar */
static int is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
  return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* 1 when name (not NUL-terminated) is a proper prefix of a name in lws's lexer
 * table (header names and the request-line methods it also matches there):
 * such a name followed by ':' makes lws 4.1 lose the ':' (see http_head.h). */
static int lws_prefix_trap(const char *name, size_t n) {
  int prefix = 0;
  for (int t = 0; t < WSI_TOKEN_COUNT; t++) {
    const char *s = (const char *)lws_token_to_string((enum lws_token_indexes)t);
    if (!s || !*s || *s == ':' || *s == ' ') continue;
    size_t sl = strlen(s);
    while (sl && (s[sl - 1] == ':' || s[sl - 1] == ' '))
      sl--;
    if (n > sl || strncasecmp(s, name, n)) continue;
    if (n == sl) return 0; /* a name lws knows ("Sec-WebSocket-Key" next to "...-Key1") */
    prefix = 1;
  }
  return prefix;
}

static int fail(char *why, size_t cap, int status, const char *fmt, const char *arg) {
  snprintf(why, cap, fmt, arg);
  return status;
}

int hd_http_head_check(char *buf, size_t *head_len, size_t *total, char *why, size_t whycap,
                       hd_http_head_info_t *info) {
  hd_http_head_info_t dummy;
  if (!info) info = &dummy;
  memset(info, 0, sizeof *info);
  char *end = buf + *head_len;
  why[0] = 0;
  /* request line: METHOD SP request-target SP HTTP-version (RFC 9112 §3) */
  char *p = buf, *eol = memchr(buf, '\n', *head_len);
  if (!eol) return fail(why, whycap, 400, "%smalformed request line\n", "");
  char *sp1 = memchr(p, ' ', (size_t)(eol - p));
  char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
  if (!sp1 || !sp2 || sp2 == sp1 + 1 || sp1 == p)
    return fail(why, whycap, 400, "%smalformed request line: want METHOD SP target SP HTTP/1.1\n", "");
  char method[16];
  size_t ml = (size_t)(sp1 - p);
  for (size_t i = 0; i < ml; i++)
    if (!is_tchar((unsigned char)p[i])) return fail(why, whycap, 400, "%smalformed request method\n", "");
  if (ml >= sizeof method) ml = sizeof method - 1;
  memcpy(method, p, ml);
  method[ml] = 0;
  size_t vl = (size_t)(eol - sp2 - 1);
  if (vl && sp2[vl] == '\r') vl--;
  if (vl != 8 || strncmp(sp2 + 1, "HTTP/", 5) || sp2[7] != '.' || sp2[6] < '0' || sp2[6] > '9')
    return fail(why, whycap, 400, "%smalformed HTTP version in the request line\n", "");
  if (sp2[6] != '1' || (sp2[8] != '0' && sp2[8] != '1'))
    return fail(why, whycap, 505, "%sonly HTTP/1.0 and HTTP/1.1 are served here\n", "");
  static const char *const ok[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
  int known = 0;
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    if (!strcmp(method, ok[i])) known = 1;
  if (!strcmp(method, "CONNECT") || !strcmp(method, "TRACE"))
    return fail(why, whycap, 405, "method %s is not supported: this node is not a proxy\n", method);
  if (!known)
    return fail(why, whycap, 501,
                "method %s is not implemented; use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS\n", method);

  /* header fields (RFC 9112 §5) */
  int n_cl = 0, has_te = 0;
  p = eol + 1;
  while (p < end) {
    eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) break;
    size_t ll = (size_t)(eol - p);
    if (ll && p[ll - 1] == '\r') ll--;
    if (ll == 0) break; /* the empty line ending the head */
    if (*p == ' ' || *p == '\t')
      return fail(why, whycap, 400, "%sobsolete header line folding is not accepted (RFC 9112 §5.2)\n", "");
    char *colon = memchr(p, ':', ll);
    if (!colon || colon == p) return fail(why, whycap, 400, "%smalformed header line (no name: value)\n", "");
    size_t nl = (size_t)(colon - p);
    for (size_t i = 0; i < nl; i++)
      if (!is_tchar((unsigned char)p[i]))
        return fail(why, whycap, 400, "%sinvalid character in a header name (no space before ':')\n", "");
    const char *v = colon + 1, *ve = p + ll;
    while (v < ve && (*v == ' ' || *v == '\t'))
      v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
      ve--;
    if (nl == 14 && !strncasecmp(p, "content-length", 14)) {
      /* RFC 9112 §6.3 item 5 / RFC 9110 §8.6: 1*DIGIT, once. A list, a sign or
       * trailing junk is an invalid length: answered 400 and the connection closed. */
      if (++n_cl > 1)
        return fail(why, whycap, 400, "%smore than one Content-Length header; send exactly one\n", "");
      size_t dl = (size_t)(ve - v);
      int digits = dl > 0 && dl <= 15;
      for (const char *d = v; digits && d < ve; d++)
        if (*d < '0' || *d > '9') digits = 0;
      if (!digits)
        return fail(why, whycap, 400, "%sinvalid Content-Length: send one decimal number of bytes\n", "");
      for (const char *d = v; d < ve; d++)
        if (*d != '0') info->has_body = 1;
    } else if (nl == 17 && !strncasecmp(p, "transfer-encoding", 17)) {
      has_te = 1;
      info->has_body = 1;
    } else if (nl == 7 && !strncasecmp(p, "upgrade", 7)) {
      info->upgrade = 1;
    } else if (lws_prefix_trap(p, nl)) {
      if (!info->dropped++)
        snprintf(info->first_dropped, sizeof info->first_dropped, "%.*s", (int)(nl < 40 ? nl : 40), p);
      /* drop the line (with its LF) from the head; the node reads no such header */
      size_t drop = (size_t)(eol + 1 - p);
      memmove(p, eol + 1, (size_t)(buf + *total - (eol + 1)));
      *head_len -= drop;
      *total -= drop;
      end -= drop;
      continue;
    }
    p = eol + 1;
  }
  if (has_te && n_cl)
    return fail(why, whycap, 400,
                "%sTransfer-Encoding and Content-Length together are not accepted (RFC 9112 §6.1)\n", "");
  return 0;
}
