/* Cluster routing of the SDK (issue 15 item 4; docs/overlay.md "Routing: the
 * client side"): which node of a cluster this client joins. The steps of
 * web/route.js, blocking, on plain sockets (io/http_sync.h): /api/route for
 * the candidates, /api/ping RTTs to each (one thread per candidate, so the
 * slowest bounds the time, not the sum), /api/route again with the RTTs.
 * Used by hd_client_route callers, by the client itself for
 * cfg.cluster_url (on a thread of its own per route, client.c) and by
 * `hudong pub|sub --cluster`.
 *
 * Time: each /api/route call has ONE deadline (ROUTE_ASK_MS from its start)
 * for its connect, request and answer; all pings share one deadline
 * (ROUTE_PROBE_MS from before the first thread starts), so the worst case is
 * 2 x ROUTE_ASK_MS + ROUTE_PROBE_MS = HD_CLIENT_ROUTE_MAX_MS, plus DNS. */
#include "client/client_route.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/base64.h"
#include "base/err.h"
#include "proto/token.h"
#include "hudong/client.h"
#include "io/http_sync.h"

#define ROUTE_PING_SAMPLES 3
#define ROUTE_PING_MS 1000  /* one ping (the connect for the first) */
#define ROUTE_PROBE_MS 2000 /* all pings of one candidate */
#define ROUTE_ASK_MS 3000   /* one /api/route call */
#define ROUTE_BODY_MAX (256 * 1024)
#define ROUTE_MAX_CANDS 64 /* candidates read from an answer; more are ignored */
/* A ping thread's stack: its buffers (~3 KiB), getaddrinfo's and the
 * sanitizers' needs, far under the 8 MiB default of 8 threads at once. */
#define ROUTE_PING_STACK (128 * 1024)

_Static_assert(ROUTE_ASK_MS * 2 + ROUTE_PROBE_MS == HD_CLIENT_ROUTE_MAX_MS, "the documented worst case");

int cl_rtc_url_of(const char *http_url, char *out, size_t cap) {
  static const char *const from[] = {"http://", "https://"}, *const to[] = {"ws://", "wss://"};
  for (int i = 0; http_url && i < 2; i++) {
    size_t n = strlen(from[i]);
    if (strncasecmp(http_url, from[i], n)) continue; /* the scheme is case-insensitive (RFC 3986 §3.1) */
    size_t l = strlen(http_url + n);
    while (l > 0 && http_url[n + l - 1] == '/')
      l--;
    if (l == 0) return HD_EINVAL;
    int w = snprintf(out, cap, "%s%.*s/rtc", to[i], (int)l, http_url + n);
    return w < 0 || (size_t)w >= cap ? HD_ENOSPC : 0;
  }
  return HD_EINVAL;
}

#define FAIL(code, ...)                                                                                      \
  do {                                                                                                       \
    if (err && errcap) snprintf(err, errcap, __VA_ARGS__);                                                   \
    rc = (code);                                                                                             \
    goto done;                                                                                               \
  } while (0)

typedef struct {
  char id[128];
  char url[HD_CLIENT_ROUTE_URL_MAX];
  int probed;        /* a ping thread ran for it (at most HD_CLIENT_ROUTE_MAX_PROBES do) */
  int64_t probe_end; /* the pings' common deadline */
  double rtt;        /* ms; < 0 = no answer or not probed */
} cand_t;

static double now_ms_f(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* 3 pings on one connection; the smallest time (the TCP handshake is not in it). */
static void *probe_thread(void *arg) {
  cand_t *p = arg;
  p->rtt = -1;
  hd_http_url_t u;
  char path[HD_HTTPC_PATH_MAX + 16], body[512];
  if (hd_http_url_parse(p->url, &u) < 0 || hd_http_sync_path(&u, "/api/ping", path, sizeof path) < 0)
    return NULL;
  int64_t start = hd_http_sync_now_ms(), end = p->probe_end;
  int fd = hd_http_sync_connect(&u, start + ROUTE_PING_MS < end ? start + ROUTE_PING_MS : end);
  if (fd < 0) return NULL;
  for (int i = 0; i < ROUTE_PING_SAMPLES; i++) {
    int64_t t = hd_http_sync_now_ms();
    double t0 = now_ms_f();
    if (hd_http_sync_request(fd, "GET", &u, path, NULL, body, sizeof body,
                             t + ROUTE_PING_MS < end ? t + ROUTE_PING_MS : end) != 200)
      break;
    double ms = now_ms_f() - t0;
    if (p->rtt < 0 || ms < p->rtt) p->rtt = ms;
  }
  close(fd);
  return NULL;
}

/* The room of a token (grants.room), unverified: the node checks the token. */
static int token_room(const char *token, char *room, size_t cap) {
  const char *a = strchr(token, '.'), *b = a ? strchr(a + 1, '.') : NULL;
  if (!b) return HD_EINVAL;
  uint8_t buf[4096];
  int n = hd_base64_decode(a + 1, (size_t)(b - a - 1), buf, sizeof buf - 1);
  if (n < 0) return HD_EINVAL;
  json_t *o = json_loadb((const char *)buf, (size_t)n, 0, NULL);
  const char *r = json_string_value(json_object_get(json_object_get(o, "grants"), "room"));
  int rc = r && r[0] && strlen(r) < cap ? 0 : HD_EINVAL;
  if (!rc) snprintf(room, cap, "%s", r);
  json_decref(o);
  return rc;
}

/* Percent-encodes s (RFC 3986 §2.1: all but the unreserved characters). */
static void pct(const char *s, char *out, size_t cap) {
  size_t o = 0;
  for (; *s && o + 4 < cap; s++) {
    unsigned char ch = (unsigned char)*s;
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
        strchr("-._~", ch))
      out[o++] = (char)ch;
    else
      o += (size_t)snprintf(out + o, cap - o, "%%%02X", ch);
  }
  out[o] = 0;
}

/* GET /api/route, all of it before deadline; the JSON of a 200 or 503
 * answer (*status says which), else NULL and *rc. */
static json_t *ask(const hd_http_url_t *u, const char *room, const char *token, const char *rtt,
                   int64_t deadline, int *status, int *out_rc, char *err, size_t errcap) {
  int rc = 0;
  char q[HD_HTTPC_PATH_MAX + 1600], enc[400], path[sizeof q + HD_HTTPC_PATH_MAX];
  pct(room, enc, sizeof enc);
  snprintf(q, sizeof q, "/api/route?room=%s%s%s", enc, rtt[0] ? "&rtt=" : "", rtt);
  json_t *o = NULL;
  char *body = malloc(ROUTE_BODY_MAX);
  if (!body) FAIL(HD_ENOMEM, "out of memory");
  if (hd_http_sync_path(u, q, path, sizeof path) < 0) FAIL(HD_EINVAL, "the cluster URL's path is too long");
  int fd = hd_http_sync_connect(u, deadline);
  if (fd < 0)
    FAIL(fd == HD_ETIMEDOUT ? HD_ETIMEDOUT : HD_EIO,
         "no answer from %s:%d (%s): is a hudong node running there? Give any live node of the cluster",
         u->host, u->port, hd_http_sync_connect_error(fd));
  int st = hd_http_sync_request(fd, "GET", u, path, token, body, ROUTE_BODY_MAX, deadline);
  close(fd);
  if (st == HD_EINVAL)
    FAIL(HD_EINVAL,
         "GET /api/route to %s:%d: request too large (a token over %d bytes?): use a shorter token", u->host,
         u->port, HD_TOKEN_MAX);
  if (st == HD_ETIMEDOUT)
    FAIL(HD_ETIMEDOUT, "%s:%d did not answer GET /api/route within %d ms: is it a hudong node's HTTP port?",
         u->host, u->port, ROUTE_ASK_MS);
  if (st < 0)
    FAIL(st == HD_ENOMEM ? HD_ENOMEM
         : st == HD_EIO  ? HD_EIO
                         : HD_EPROTO,
         "GET /api/route at %s:%d: %s: is it a hudong node's HTTP port?", u->host, u->port,
         hd_http_sync_request_error(st));
  size_t bl = strcspn(body, "\r\n");
  if (st == 401)
    FAIL(
        strstr(body, "expired") ? HD_EEXPIRED : HD_EAUTH,
        "the cluster refused the token (401 %.*s): mint a fresh one with an API key and secret the cluster's "
        "nodes share (hudong token --key K --secret S --room R --identity U)",
        (int)(bl > 200 ? 200 : bl), body);
  if (st == 403)
    FAIL(HD_EFORBIDDEN, "the cluster refused the token for room %s (403 %.*s): mint one for that room", room,
         (int)(bl > 200 ? 200 : bl), body);
  if (st == 404)
    FAIL(HD_EPROTO, "%s:%d has no /api/route (404): give a hudong node's base URL, e.g. http://host:7880",
         u->host, u->port);
  if (st != 200 && st != 503)
    FAIL(HD_EPROTO, "/api/route at %s:%d answered %d: %.*s", u->host, u->port, st, (int)(bl > 200 ? 200 : bl),
         body);
  o = json_loads(body, 0, NULL);
  if (!json_is_object(o))
    FAIL(HD_EPROTO, "/api/route at %s:%d answered %d without a JSON object: is it a hudong node?", u->host,
         u->port, st);
  json_t *node = json_object_get(o, "node");
  /* a 503 may come without candidates (its "error" is what counts) */
  if (st == 200 &&
      !(json_is_array(json_object_get(o, "candidates")) && json_is_string(json_object_get(node, "id")) &&
        json_is_string(json_object_get(node, "url"))))
    FAIL(HD_EPROTO,
         "%s:%d answered %d with JSON that is not an /api/route answer (no node / candidates): give a hudong "
         "node's base URL (http://host:port), not another service's",
         u->host, u->port, st);
  *status = st;
  *out_rc = 0;
  free(body);
  return o;
done:
  *out_rc = rc ? rc : HD_EIO;
  free(body);
  json_decref(o);
  return NULL;
}

static void fill_node(hd_client_route_node_t *n, const char *id, const char *url, double rtt) {
  snprintf(n->id, sizeof n->id, "%s", id ? id : "");
  snprintf(n->url, sizeof n->url, "%s", url);
  if (cl_rtc_url_of(url, n->rtc_url, sizeof n->rtc_url) < 0) n->rtc_url[0] = 0;
  n->rtt_ms = rtt;
}

static double rtt_key(const cand_t *c) { return c->rtt >= 0 ? c->rtt : 1e12; }

int hd_client_route(const char *cluster_url, const char *token, hd_client_route_result_t *out, char *err,
                    size_t errcap) {
  int rc = 0;
  json_t *first = NULL, *answer = NULL;
  cand_t *cands = NULL;
  if (err && errcap) err[0] = 0;
  if (!cluster_url || !token || !out) FAIL(HD_EINVAL, "a cluster URL, a token and a result are needed");
  memset(out, 0, sizeof *out);
  hd_http_url_t u;
  int prc = hd_http_url_parse(cluster_url, &u);
  if (prc == HD_EUNSUPPORTED)
    FAIL(
        HD_EUNSUPPORTED,
        "cluster URL '%s': only http:// (the route lookup speaks no TLS): give an https node's wss:// URL as "
        "the client's url instead",
        cluster_url);
  if (prc < 0)
    FAIL(HD_EINVAL, "cluster URL '%s': not an http://host:port URL (e.g. http://127.0.0.1:7880)",
         cluster_url);
  if (token_room(token, out->room, sizeof out->room) < 0)
    FAIL(HD_EINVAL, "the token names no room (grants.room): mint one for the room to join "
                    "(hudong token --room R ...)");
  int st1 = 0, st2 = 0;
  if (!(first = ask(&u, out->room, token, "", hd_http_sync_now_ms() + ROUTE_ASK_MS, &st1, &rc, err, errcap)))
    goto done;
  cands = calloc(ROUTE_MAX_CANDS, sizeof *cands);
  if (!cands) FAIL(HD_ENOMEM, "out of memory");
  int nc = 0, np = 0;
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(first, "candidates"), i, c) {
    const char *id = json_string_value(json_object_get(c, "id"));
    const char *url = json_string_value(json_object_get(c, "url"));
    if (nc == ROUTE_MAX_CANDS || !id || !url || !json_is_true(json_object_get(c, "eligible"))) continue;
    if (strlen(id) >= sizeof cands[0].id || strlen(url) >= sizeof cands[0].url) continue;
    snprintf(cands[nc].id, sizeof cands[nc].id, "%s", id);
    snprintf(cands[nc].url, sizeof cands[nc].url, "%s", url);
    cands[nc].rtt = -1;
    nc++;
  }
  /* the first answer's node (the room's holder, or the rule's pick) is
   * probed first: with more than HD_CLIENT_ROUTE_MAX_PROBES candidates it is
   * the one the second answer most likely names */
  const char *first_id = json_string_value(json_object_get(json_object_get(first, "node"), "id"));
  int porder[ROUTE_MAX_CANDS], npo = 0;
  for (int k = 0; k < nc; k++)
    if (first_id && !strcmp(cands[k].id, first_id)) porder[npo++] = k;
  for (int k = 0; k < nc; k++)
    if (!first_id || strcmp(cands[k].id, first_id)) porder[npo++] = k;
  pthread_t th[HD_CLIENT_ROUTE_MAX_PROBES];
  pthread_attr_t attr;
  int attr_ok = pthread_attr_init(&attr) == 0;
  if (attr_ok) pthread_attr_setstacksize(&attr, ROUTE_PING_STACK); /* on failure: the default size */
  int64_t probe_end = hd_http_sync_now_ms() + ROUTE_PROBE_MS;
  for (int j = 0; j < npo && np < HD_CLIENT_ROUTE_MAX_PROBES; j++) {
    cand_t *p = &cands[porder[j]];
    p->probe_end = probe_end;
    if (pthread_create(&th[np], attr_ok ? &attr : NULL, probe_thread, p) == 0) {
      p->probed = 1;
      np++;
    }
  }
  if (attr_ok) pthread_attr_destroy(&attr);
  for (int k = 0; k < np; k++)
    pthread_join(th[k], NULL);
  char rtt[1024] = "", enc[400];
  size_t rl = 0;
  for (int k = 0; k < nc; k++)
    if (cands[k].rtt >= 0) {
      pct(cands[k].id, enc, sizeof enc);
      int w =
          snprintf(rtt + rl, sizeof rtt - rl, "%s%s%%3A%d", rl ? "%2C" : "", enc, (int)(cands[k].rtt + 0.5));
      if (w < 0 || rl + (size_t)w >= sizeof rtt) {
        rtt[rl] = 0; /* the rest stays unmeasured for the node */
        break;
      }
      rl += (size_t)w;
    }
  if (rl) {
    int arc = 0;
    answer = ask(&u, out->room, token, rtt, hd_http_sync_now_ms() + ROUTE_ASK_MS, &st2, &arc, NULL, 0);
  }
  if (answer && st2 == 503) { /* the cluster has just refused every node: joining one would be refused too */
    const char *e = json_string_value(json_object_get(answer, "error"));
    FAIL(HD_EIO, "no node of the cluster can be joined now (503: %s): retry in a few seconds, or add nodes",
         e ? e : "no node named");
  }
  if (!answer) answer = json_incref(first); /* the second call failed: the first's choice */
  const char *nid = json_string_value(json_object_get(json_object_get(answer, "node"), "id"));
  const char *nurl = json_string_value(json_object_get(json_object_get(answer, "node"), "url"));
  const char *reason = json_string_value(json_object_get(answer, "reason"));
  /* the chosen node unless it did not answer our pings: then the fastest that did */
  int best = -1, chosen = -1;
  for (int k = 0; k < nc; k++) {
    if (nid && !strcmp(cands[k].id, nid)) chosen = k;
    if (cands[k].rtt >= 0 && (best < 0 || cands[k].rtt < cands[best].rtt)) best = k;
  }
  /* a candidate past the probe cap was not measured: not measured is not "did not answer" */
  if (nurl && strlen(nurl) >= sizeof out->node.url)
    FAIL(HD_EPROTO,
         "the cluster named node %s with a URL too long (%zu bytes, at most %d): shorten its --announce-url",
         nid ? nid : "?", strlen(nurl), HD_CLIENT_ROUTE_URL_MAX - 1);
  if (nurl && (best < 0 || (chosen >= 0 && (!cands[chosen].probed || cands[chosen].rtt >= 0)))) {
    fill_node(&out->node, nid, nurl, chosen >= 0 ? cands[chosen].rtt : -1);
    snprintf(out->reason, sizeof out->reason, "%s", reason ? reason : "");
  } else if (best >= 0) {
    fill_node(&out->node, cands[best].id, cands[best].url, cands[best].rtt);
    snprintf(out->reason, sizeof out->reason, "ping");
    chosen = best;
  } else {
    const char *e = json_string_value(json_object_get(answer, "error"));
    FAIL(HD_EIO, "no node of the cluster can be joined now (%s): retry in a few seconds, or add nodes",
         e ? e : "no node named");
  }
  if (!out->node.rtc_url[0])
    FAIL(HD_EPROTO,
         "the cluster named node %s with an unusable URL '%s' (its --announce-url must be "
         "http(s)://host:port)",
         out->node.id, out->node.url);
  /* the others: measured fastest first, then the unmeasured ones (docs/overlay.md step 4) */
  cand_t *order[ROUTE_MAX_CANDS];
  int no = 0;
  for (int k = 0; k < nc; k++)
    if (k != chosen && strcmp(cands[k].url, out->node.url)) order[no++] = &cands[k];
  for (int k = 1; k < no; k++) /* a stable sort: the unmeasured keep the route's order */
    for (int j = k; j > 0 && rtt_key(order[j]) < rtt_key(order[j - 1]); j--) {
      cand_t *t = order[j];
      order[j] = order[j - 1];
      order[j - 1] = t;
    }
  for (int k = 0; k < no && out->n_others < HD_CLIENT_MAX_FALLBACK_URLS; k++) {
    hd_client_route_node_t *o = &out->others[out->n_others];
    fill_node(o, order[k]->id, order[k]->url, order[k]->rtt);
    if (!o->rtc_url[0]) continue;
    out->fallback_urls[out->n_others] = o->rtc_url;
    out->n_others++;
  }
done:
  free(cands);
  json_decref(first);
  json_decref(answer);
  return rc;
}
