/* Per-peer media address overrides (see peer_addrs.h). */
#include "cluster/peer_addrs.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"

#define FORM "NODE_ID=IP:PORT, e.g. n3=127.0.0.1:9000 or n3=[::1]:9000"

static int id_ok(const char *s, size_t n) {
  if (n == 0 || n >= HD_CLUSTER_ID_MAX) return 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          strchr("-_.:", ch)))
      return 0;
  }
  return 1;
}

/* "ip:port" or "[ip6]:port" with a literal address: what the node link can
 * send to without a resolver on the media thread. */
static int addr_ok(const char *s, size_t n) {
  char buf[HD_CLUSTER_ADDR_MAX];
  if (n == 0 || n >= sizeof buf) return 0;
  memcpy(buf, s, n);
  buf[n] = 0;
  char *colon = strrchr(buf, ':');
  if (!colon || !colon[1] || strlen(colon + 1) > 5) return 0;
  long port = 0;
  for (const char *p = colon + 1; *p; p++) {
    if (*p < '0' || *p > '9') return 0;
    port = port * 10 + (*p - '0');
  }
  if (port < 1 || port > 65535) return 0;
  *colon = 0;
  unsigned char tmp[16];
  if (buf[0] == '[') {
    size_t l = strlen(buf);
    if (l < 3 || buf[l - 1] != ']') return 0;
    buf[l - 1] = 0;
    return inet_pton(AF_INET6, buf + 1, tmp) == 1;
  }
  return inet_pton(AF_INET, buf, tmp) == 1;
}

int hd_peer_addrs_parse(hd_peer_addrs_t *t, const char *spec, char *err, size_t errcap) {
  hd_peer_addrs_t work = *t;
  for (const char *s = spec ? spec : ""; *s;) {
    size_t n = strcspn(s, ",");
    const char *eq = memchr(s, '=', n);
    size_t idl = eq ? (size_t)(eq - s) : 0;
    size_t al = eq ? n - idl - 1 : 0;
    if (!eq || !id_ok(s, idl) || !addr_ok(eq + 1, al)) {
      snprintf(err, errcap, "peer address '%.*s': want " FORM " (the node id as the peer registers it)",
               (int)(n > 120 ? 120 : n), s);
      return HD_EINVAL;
    }
    if (work.n >= HD_PEER_ADDRS_MAX) {
      snprintf(err, errcap, "peer addresses: at most %d entries", HD_PEER_ADDRS_MAX);
      return HD_ENOSPC;
    }
    hd_peer_addr_t *e = &work.e[work.n];
    memcpy(e->id, s, idl);
    e->id[idl] = 0;
    memcpy(e->addr, eq + 1, al);
    e->addr[al] = 0;
    const char *dummy[HD_CLUSTER_MAX_MEDIA];
    if (hd_peer_addrs_get(&work, e->id, dummy, HD_CLUSTER_MAX_MEDIA) >= HD_CLUSTER_MAX_MEDIA) {
      snprintf(err, errcap, "peer addresses: at most %d for node '%s' (one per media worker)",
               HD_CLUSTER_MAX_MEDIA, e->id);
      return HD_ENOSPC;
    }
    work.n++;
    s += n;
    if (*s == ',') {
      s++;
      if (!*s) {
        snprintf(err, errcap, "peer addresses end with ','; want " FORM);
        return HD_EINVAL;
      }
    }
  }
  *t = work;
  return 0;
}

int hd_peer_addrs_get(const hd_peer_addrs_t *t, const char *id, const char **out, int max) {
  int k = 0;
  for (int i = 0; i < t->n && k < max; i++)
    if (!strcmp(t->e[i].id, id)) out[k++] = t->e[i].addr;
  return k;
}
