/* Webhook queue core (see webhook.h). Events are rendered once (jansson) into a
 * refcounted blob shared by every destination queue holding it; a destination
 * is a ring of event pointers plus the retry state of its head event. Only the
 * head of a ring is ever attempted, which is what keeps per-URL order. */
#include "sfu/webhook.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/rand.h"

typedef struct {
  int refs;
  int app; /* index into wh->apps */
  char id[24];
  char name[24];      /* event type name, for the Hudong-Event header */
  hd_time_t deadline; /* push time + max_age */
  size_t body_len;
  char body[]; /* NUL-terminated */
} event_t;

typedef struct {
  char url[HD_WEBHOOK_URL_MAX];
  int app;        /* -1 = all apps */
  event_t **ring; /* max_queue slots */
  size_t head, len;
  int attempts;         /* attempts made for the head event */
  hd_time_t next_at;    /* head may be attempted from then on */
  uint64_t inflight;    /* request id, 0 = none */
  int inflight_dropped; /* head was dropped by overflow while in flight */
} dest_t;

typedef struct {
  char key[HD_WEBHOOK_KEY_MAX];
  char secret[HD_WEBHOOK_SECRET_MAX];
} app_t;

struct hd_webhook {
  hd_webhook_config_t cfg;
  app_t apps[HD_WEBHOOK_MAX_APPS];
  int n_apps;
  dest_t dests[HD_WEBHOOK_MAX_DESTS];
  int n_dests;
  int rr; /* round-robin start for poll fairness */
  uint64_t next_id;
  uint64_t rng;
  hd_webhook_stats_t st;
  /* storage behind the last hd_webhook_req_t */
  char sig[128];
  char attempt_str[16];
};

static const char *const event_names[HD_WEBHOOK_EVENT_COUNT] = {
    "room_started",      "room_finished", "participant_joined", "participant_left", "track_published",
    "track_unpublished", "quality_alert", "egress_started",     "egress_updated",   "egress_ended"};

const char *hd_webhook_event_name(hd_webhook_event_type_t type) {
  if ((int)type < 0 || type >= HD_WEBHOOK_EVENT_COUNT) return NULL;
  return event_names[type];
}

void hd_webhook_config_defaults(hd_webhook_config_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->max_queue = 1000;
  cfg->max_attempts = 8;
  cfg->max_age = HD_SEC(600);
  cfg->backoff_base = HD_MS(500);
  cfg->backoff_cap = HD_SEC(30);
  cfg->jitter_pct = 25;
  cfg->seed = 0;
}

/* splitmix64: jitter needs spread, not secrecy, and a seed makes tests exact */
static uint64_t rng_next(hd_webhook_t *wh) {
  uint64_t z = (wh->rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

int hd_webhook_new(hd_webhook_t **out, const hd_webhook_config_t *cfg) {
  hd_webhook_config_t c;
  if (cfg)
    c = *cfg;
  else
    hd_webhook_config_defaults(&c);
  if (c.max_queue == 0 || c.max_queue > (1u << 20) || c.max_attempts < 1 || c.jitter_pct < 0 ||
      c.jitter_pct > 100 || c.backoff_base <= 0 || c.backoff_cap < c.backoff_base || c.max_age <= 0)
    return HD_EINVAL;
  hd_webhook_t *wh = calloc(1, sizeof *wh);
  if (!wh) return HD_ENOMEM;
  wh->cfg = c;
  wh->next_id = 1;
  wh->rng = c.seed ? c.seed : ((uint64_t)hd_random_u32() << 32 | hd_random_u32());
  *out = wh;
  return 0;
}

static void event_unref(event_t *e) {
  if (e && --e->refs == 0) free(e);
}

void hd_webhook_free(hd_webhook_t *wh) {
  if (!wh) return;
  for (int i = 0; i < wh->n_dests; i++) {
    dest_t *d = &wh->dests[i];
    for (size_t k = 0; k < d->len; k++)
      event_unref(d->ring[(d->head + k) % wh->cfg.max_queue]);
    free(d->ring);
  }
  free(wh);
}

static int find_app(const hd_webhook_t *wh, const char *key) {
  for (int i = 0; i < wh->n_apps; i++)
    if (!strcmp(wh->apps[i].key, key)) return i;
  return -1;
}

int hd_webhook_add_app(hd_webhook_t *wh, const char *key, const char *secret) {
  if (!key || !secret || !key[0] || !secret[0] || strlen(key) >= HD_WEBHOOK_KEY_MAX ||
      strlen(secret) >= HD_WEBHOOK_SECRET_MAX)
    return HD_EINVAL;
  int i = find_app(wh, key);
  if (i < 0) {
    if (wh->n_apps >= HD_WEBHOOK_MAX_APPS) return HD_ENOSPC;
    i = wh->n_apps++;
    snprintf(wh->apps[i].key, sizeof wh->apps[i].key, "%s", key);
  }
  snprintf(wh->apps[i].secret, sizeof wh->apps[i].secret, "%s", secret);
  return 0;
}

int hd_webhook_add_url(hd_webhook_t *wh, const char *url, const char *app) {
  if (!url || strncasecmp(url, "http://", 7) != 0 || strlen(url) <= 7 || strlen(url) >= HD_WEBHOOK_URL_MAX)
    return HD_EINVAL;
  for (const char *p = url; *p; p++)
    if ((unsigned char)*p <= 0x20 || *p == 0x7f) return HD_EINVAL; /* no spaces/controls in a request line */
  int ai = -1;
  if (app && app[0]) {
    if (strlen(app) >= HD_WEBHOOK_KEY_MAX) return HD_EINVAL;
    ai = find_app(wh, app);
    if (ai < 0) return HD_ENOTFOUND;
  }
  if (wh->n_dests >= HD_WEBHOOK_MAX_DESTS) return HD_ENOSPC;
  dest_t *d = &wh->dests[wh->n_dests];
  memset(d, 0, sizeof *d);
  d->ring = calloc(wh->cfg.max_queue, sizeof *d->ring);
  if (!d->ring) return HD_ENOMEM;
  snprintf(d->url, sizeof d->url, "%s", url);
  d->app = ai;
  wh->n_dests++;
  return 0;
}

/* Adds a string member after checking its cap; jansson rejects invalid UTF-8. */
static int set_str(json_t *o, const char *k, const char *v) {
  if (!v) return 0;
  if (strlen(v) >= HD_WEBHOOK_FIELD_MAX) return HD_EINVAL;
  json_t *s = json_string(v);
  if (!s) return HD_EINVAL;
  return json_object_set_new(o, k, s) ? HD_ENOMEM : 0;
}

static int render(const hd_webhook_event_t *ev, const char *id, int64_t unix_now, char **out) {
  int rc = HD_EINVAL;
  json_t *root = json_object(), *room = json_object(), *part = NULL, *track = NULL;
  if (!root || !room) {
    rc = HD_ENOMEM;
    goto out;
  }
  if (set_str(root, "event", event_names[ev->type]) || set_str(root, "id", id)) goto out;
  if (json_object_set_new(root, "created_at", json_integer(unix_now))) goto out;
  if (set_str(root, "app", ev->app)) goto out;
  if (set_str(room, "name", ev->room_name) || set_str(room, "sid", ev->room_sid)) goto out;
  if (json_object_set(root, "room", room)) goto out;
  if (ev->participant_sid || ev->participant_identity) {
    part = json_object();
    if (!part || set_str(part, "sid", ev->participant_sid) ||
        set_str(part, "identity", ev->participant_identity) || json_object_set(root, "participant", part))
      goto out;
  }
  if (ev->track_sid) {
    track = json_object();
    if (!track || set_str(track, "sid", ev->track_sid) || set_str(track, "kind", ev->track_kind) ||
        set_str(track, "source", ev->track_source) || json_object_set(root, "track", track))
      goto out;
  }
  if (ev->alert_json) {
    json_t *al = json_loads(ev->alert_json, 0, NULL);
    if (!json_is_object(al) || json_object_set_new(root, "alert", al)) {
      json_decref(al);
      goto out;
    }
  }
  if (ev->egress_json) {
    json_t *eg = json_loads(ev->egress_json, 0, NULL);
    if (!json_is_object(eg) || json_object_set_new(root, "egress", eg)) {
      json_decref(eg);
      goto out;
    }
  }
  *out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
  rc = *out ? 0 : HD_ENOMEM;
out:
  json_decref(track);
  json_decref(part);
  json_decref(room);
  json_decref(root);
  return rc;
}

/* Removes the head event of d (delivered, given up or dropped) and resets the
 * per-event retry state. */
static void pop_head(hd_webhook_t *wh, dest_t *d) {
  event_unref(d->ring[d->head]);
  d->ring[d->head] = NULL;
  d->head = (d->head + 1) % wh->cfg.max_queue;
  d->len--;
  d->attempts = 0;
  wh->st.queued--;
}

int hd_webhook_push(hd_webhook_t *wh, const hd_webhook_event_t *ev, hd_time_t now, int64_t unix_now) {
  if (!ev || (int)ev->type < 0 || ev->type >= HD_WEBHOOK_EVENT_COUNT || !ev->app || !ev->room_name ||
      !ev->room_name[0])
    return HD_EINVAL;
  if (ev->type >= HD_WEBHOOK_PARTICIPANT_JOINED && ev->type <= HD_WEBHOOK_TRACK_UNPUBLISHED &&
      !ev->participant_sid && !ev->participant_identity)
    return HD_EINVAL;
  if (ev->type >= HD_WEBHOOK_TRACK_PUBLISHED && ev->type <= HD_WEBHOOK_TRACK_UNPUBLISHED && !ev->track_sid)
    return HD_EINVAL;
  if (ev->type == HD_WEBHOOK_QUALITY_ALERT && !ev->alert_json) return HD_EINVAL;
  if (ev->type >= HD_WEBHOOK_EGRESS_STARTED && ev->type <= HD_WEBHOOK_EGRESS_ENDED && !ev->egress_json)
    return HD_EINVAL;
  int ai = find_app(wh, ev->app);
  if (ai < 0) return HD_ENOTFOUND;

  char id[24] = "EV_";
  hd_random_token(id + 3, 16);
  char *json = NULL;
  int rc = render(ev, id, unix_now, &json);
  if (rc < 0) return rc;
  size_t n = strlen(json);
  if (n >= HD_WEBHOOK_BODY_MAX) {
    free(json);
    return HD_EINVAL;
  }
  event_t *e = malloc(sizeof *e + n + 1);
  if (!e) {
    free(json);
    return HD_ENOMEM;
  }
  memset(e, 0, sizeof *e);
  e->app = ai;
  snprintf(e->id, sizeof e->id, "%s", id);
  snprintf(e->name, sizeof e->name, "%s", event_names[ev->type]);
  e->deadline = now > HD_TIME_NEVER - wh->cfg.max_age ? HD_TIME_NEVER : now + wh->cfg.max_age;
  e->body_len = n;
  memcpy(e->body, json, n + 1);
  free(json);

  e->refs = 1; /* ours until the loop below hands it out */
  int queued = 0;
  for (int i = 0; i < wh->n_dests; i++) {
    dest_t *d = &wh->dests[i];
    if (d->app >= 0 && d->app != ai) continue;
    if (d->len == wh->cfg.max_queue) {
      /* full: drop the oldest. If it is in flight, the request goes on but its
       * result no longer counts (see on_result). */
      if (d->inflight) d->inflight_dropped = 1;
      pop_head(wh, d);
      wh->st.dropped++;
    }
    d->ring[(d->head + d->len) % wh->cfg.max_queue] = e;
    e->refs++;
    if (d->len == 0 && !d->inflight && d->next_at < now) d->next_at = now;
    d->len++;
    wh->st.queued++;
    queued++;
  }
  event_unref(e);
  wh->st.pushed++;
  return queued;
}

/* Delay after the k-th failed attempt (k >= 1): base * 2^(k-1), plus up to
 * jitter_pct% of it, capped. Jitter only ever lengthens a delay so the
 * schedule stays increasing, while spreading retries of many events. */
static hd_time_t backoff(hd_webhook_t *wh, int k) {
  hd_time_t d = wh->cfg.backoff_base;
  for (int i = 1; i < k && d < wh->cfg.backoff_cap; i++)
    d *= 2;
  if (d > wh->cfg.backoff_cap) d = wh->cfg.backoff_cap;
  if (wh->cfg.jitter_pct > 0) {
    uint64_t span = (uint64_t)d * (uint64_t)wh->cfg.jitter_pct / 100;
    if (span) d += (hd_time_t)(rng_next(wh) % span);
  }
  return d > wh->cfg.backoff_cap ? wh->cfg.backoff_cap : d;
}

static void hex_lower(const uint8_t *in, size_t n, char *out) {
  static const char hx[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hx[in[i] >> 4];
    out[2 * i + 1] = hx[in[i] & 15];
  }
  out[2 * n] = 0;
}

/* HMAC-SHA256(secret, "<t>.<body>") */
static int mac(const char *secret, int64_t t, const char *body, size_t body_len, uint8_t md[32]) {
  static const uint8_t empty_key[1] = {0};
  char ts[24];
  int tn = snprintf(ts, sizeof ts, "%lld.", (long long)t);
  int rc = HD_ECRYPTO;
  size_t klen = strlen(secret), outlen = 0;
  EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
  EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
  OSSL_PARAM params[2];
  if (!ctx) goto out;
  params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
  params[1] = OSSL_PARAM_construct_end();
  if (!EVP_MAC_init(ctx, klen ? (const uint8_t *)secret : empty_key, klen, params)) goto out;
  if (!EVP_MAC_update(ctx, (const uint8_t *)ts, (size_t)tn)) goto out;
  if (body_len && !EVP_MAC_update(ctx, (const uint8_t *)body, body_len)) goto out;
  if (!EVP_MAC_final(ctx, md, &outlen, 32) || outlen != 32) goto out;
  rc = 0;
out:
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(m);
  return rc;
}

int hd_webhook_sign(const char *secret, int64_t unix_t, const char *body, size_t body_len, char *out,
                    size_t cap) {
  uint8_t md[32];
  char hex[65];
  int rc = mac(secret, unix_t, body, body_len, md);
  if (rc < 0) return rc;
  hex_lower(md, 32, hex);
  int n = snprintf(out, cap, "t=%lld,v1=%s", (long long)unix_t, hex);
  if (n < 0 || (size_t)n >= cap) return HD_ENOSPC;
  return n;
}

int hd_webhook_verify(const char *header, const char *secret, const char *body, size_t body_len,
                      int64_t unix_now, int64_t tolerance) {
  if (!header || !secret) return HD_EPROTO;
  int have_t = 0, n_v1 = 0;
  long long t = 0;
  uint8_t sigs[4][32];
  const char *p = header;
  while (*p) {
    while (*p == ' ')
      p++;
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len > 2 && !strncmp(p, "t=", 2)) {
      char buf[24];
      if (len - 2 >= sizeof buf) return HD_EPROTO;
      memcpy(buf, p + 2, len - 2);
      buf[len - 2] = 0;
      char *e;
      t = strtoll(buf, &e, 10);
      if (*e || buf[0] == '-' || buf[0] == '+') return HD_EPROTO;
      have_t = 1;
    } else if (len == 3 + 64 && !strncmp(p, "v1=", 3)) {
      if (n_v1 < 4) {
        for (int i = 0; i < 32; i++) {
          unsigned v = 0;
          for (int j = 0; j < 2; j++) {
            char c = p[3 + 2 * i + j];
            int x = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (x < 0) return HD_EPROTO;
            v = v * 16 + (unsigned)x;
          }
          sigs[n_v1][i] = (uint8_t)v;
        }
        n_v1++;
      }
    } /* other schemes (future v2=...) are ignored, as Stripe receivers do */
    p += len;
    if (*p == ',') p++;
  }
  if (!have_t || n_v1 == 0) return HD_EPROTO;
  uint8_t md[32];
  if (mac(secret, t, body, body_len, md) < 0) return HD_ECRYPTO;
  int ok = 0;
  for (int i = 0; i < n_v1; i++)
    ok |= CRYPTO_memcmp(md, sigs[i], 32) == 0;
  if (!ok) return HD_EAUTH;
  long long diff = (long long)unix_now - t;
  if (diff < 0) diff = -diff;
  if (diff > tolerance) return HD_EEXPIRED;
  return 0;
}

int hd_webhook_poll(hd_webhook_t *wh, hd_time_t now, int64_t unix_now, hd_webhook_req_t *req) {
  for (int k = 0; k < wh->n_dests; k++) {
    int i = (wh->rr + k) % wh->n_dests;
    dest_t *d = &wh->dests[i];
    if (d->inflight || d->len == 0 || d->next_at > now) continue;
    /* events that waited past max_age behind a failing head are given up
     * without an attempt */
    while (d->len && d->ring[d->head]->deadline <= now) {
      pop_head(wh, d);
      wh->st.failed++;
    }
    if (d->len == 0) continue;
    event_t *e = d->ring[d->head];
    int n = hd_webhook_sign(wh->apps[e->app].secret, unix_now, e->body, e->body_len, wh->sig, sizeof wh->sig);
    if (n < 0) return n;
    d->attempts++;
    d->inflight = wh->next_id++;
    d->inflight_dropped = 0;
    snprintf(wh->attempt_str, sizeof wh->attempt_str, "%d", d->attempts);
    memset(req, 0, sizeof *req);
    req->id = d->inflight;
    req->method = "POST";
    req->url = d->url;
    static const char *const names[] = {"Content-Type",  "User-Agent",      "Hudong-App-Key",
                                        "Hudong-Event",  "Hudong-Event-Id", "Hudong-Signature",
                                        "Hudong-Attempt"};
    const char *values[] = {
        "application/json", "hudong-webhook/1", wh->apps[e->app].key, e->name, e->id, wh->sig,
        wh->attempt_str};
    _Static_assert(sizeof names / sizeof names[0] <= HD_WEBHOOK_MAX_REQ_HEADERS, "header cap");
    for (size_t h = 0; h < sizeof names / sizeof names[0]; h++) {
      req->header_names[h] = names[h];
      req->header_values[h] = values[h];
    }
    req->n_headers = (int)(sizeof names / sizeof names[0]);
    req->body = e->body;
    req->body_len = e->body_len;
    req->attempt = d->attempts;
    req->event_id = e->id;
    wh->st.attempts++;
    wh->rr = (i + 1) % wh->n_dests;
    return 1;
  }
  return 0;
}

static int retryable(int status) {
  return status < 0 || status == 408 || status == 429 || (status >= 500 && status <= 599);
}

int hd_webhook_on_result(hd_webhook_t *wh, uint64_t id, int status, hd_time_t now) {
  if (id == 0) return HD_ENOTFOUND;
  dest_t *d = NULL;
  for (int i = 0; i < wh->n_dests && !d; i++)
    if (wh->dests[i].inflight == id) d = &wh->dests[i];
  if (!d) return HD_ENOTFOUND;
  d->inflight = 0;
  int ok = status >= 200 && status <= 299;
  if (d->inflight_dropped) {
    /* its event was dropped (and counted) by an overflow; the next event
     * starts fresh, after a pause if the receiver is failing */
    d->inflight_dropped = 0;
    d->attempts = 0;
    d->next_at = ok ? now : now + backoff(wh, 1);
    return 0;
  }
  if (d->len == 0) return 0; /* cannot happen: the head is only removed above */
  event_t *e = d->ring[d->head];
  if (ok) {
    wh->st.delivered++;
    pop_head(wh, d);
    d->next_at = now;
    return 0;
  }
  wh->st.attempt_failures++;
  if (retryable(status) && d->attempts < wh->cfg.max_attempts) {
    hd_time_t at = now + backoff(wh, d->attempts);
    if (at < e->deadline) {
      wh->st.retries++;
      d->next_at = at;
      return 0;
    }
  }
  wh->st.failed++;
  pop_head(wh, d);
  d->next_at = now;
  return 0;
}

hd_time_t hd_webhook_next_timeout(const hd_webhook_t *wh) {
  hd_time_t t = HD_TIME_NEVER;
  for (int i = 0; i < wh->n_dests; i++) {
    const dest_t *d = &wh->dests[i];
    if (d->len && !d->inflight) t = hd_time_min(t, d->next_at);
  }
  return t;
}

void hd_webhook_stats(const hd_webhook_t *wh, hd_webhook_stats_t *out) { *out = wh->st; }
