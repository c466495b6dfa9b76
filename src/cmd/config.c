/* Node configuration loading (JSON via jansson). */
#include "cmd/config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

void hd_config_defaults(hd_config_t *c) {
  memset(c, 0, sizeof *c);
  snprintf(c->listen_host, sizeof c->listen_host, "127.0.0.1");
  c->listen_port = 7880;
  c->rtc_port = 7881;
  c->max_sessions = 1000;
  c->max_viewers = 500;
  c->body_cap = 64 * 1024;
  c->token_leeway = 10;
}

int hd_config_parse_hostport(const char *s, char *host, size_t hostcap, int *port) {
  const char *colon = strrchr(s, ':');
  const char *ps = colon ? colon + 1 : s;
  char *end;
  long p = strtol(ps, &end, 10);
  if (*ps == 0 || *end || p < 0 || p > 65535) return HD_EINVAL;
  if (colon && colon != s) {
    size_t hl = (size_t)(colon - s);
    if (hl >= hostcap) return HD_EINVAL;
    memcpy(host, s, hl);
    host[hl] = 0;
  }
  *port = (int)p;
  return 0;
}

const char *hd_config_secret(const hd_config_t *c, const char *key) {
  for (int i = 0; i < c->n_apps; i++)
    if (!strcmp(c->apps[i].key, key)) return c->apps[i].secret;
  return NULL;
}

static int get_str(json_t *o, const char *k, char *dst, size_t cap, char *err, size_t errcap) {
  json_t *v = json_object_get(o, k);
  if (!v) return 0;
  if (!json_is_string(v) || json_string_length(v) >= cap) {
    snprintf(err, errcap, "config: '%s' must be a string shorter than %zu bytes", k, cap);
    return HD_EINVAL;
  }
  snprintf(dst, cap, "%s", json_string_value(v));
  return 0;
}

static int get_int(json_t *o, const char *k, long lo, long hi, long *dst, char *err, size_t errcap) {
  json_t *v = json_object_get(o, k);
  if (!v) return 0;
  if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
    snprintf(err, errcap, "config: '%s' must be an integer in [%ld, %ld]", k, lo, hi);
    return HD_EINVAL;
  }
  *dst = (long)json_integer_value(v);
  return 0;
}

/* Every top-level key hd_config_load understands; anything else is refused so
 * that a typo ("max_viewers") is an error at start, not a silently kept default. */
static const char *const known_keys[] = {"listen",
                                         "rtc_bind",
                                         "rtc_ip",
                                         "rtc_port",
                                         "rtc_announce_port",
                                         "web_root",
                                         "max_sessions",
                                         "max_viewers_per_room",
                                         "max_request_body",
                                         "token_leeway_seconds",
                                         "apps",
                                         "cors_origins"};

int hd_config_load(hd_config_t *c, const char *path, char *err, size_t errcap) {
  json_error_t je;
  json_t *root = json_load_file(path, 0, &je);
  if (!root) {
    snprintf(err, errcap, "config %s: line %d: %s", path, je.line, je.text);
    return HD_EINVAL;
  }
  int rc = HD_EINVAL;
  if (!json_is_object(root)) {
    snprintf(err, errcap, "config %s: top level must be an object", path);
    goto out;
  }
  const char *k;
  json_t *kv;
  json_object_foreach(root, k, kv) {
    size_t i = 0;
    while (i < sizeof known_keys / sizeof known_keys[0] && strcmp(k, known_keys[i]))
      i++;
    if (i == sizeof known_keys / sizeof known_keys[0]) {
      snprintf(err, errcap, "config %s: unknown key '%.64s' (see docs/operations.md)", path, k);
      goto out;
    }
  }
  char listen[128] = "";
  if (get_str(root, "listen", listen, sizeof listen, err, errcap)) goto out;
  if (listen[0] && hd_config_parse_hostport(listen, c->listen_host, sizeof c->listen_host, &c->listen_port)) {
    snprintf(err, errcap, "config: bad 'listen' value '%s' (want HOST:PORT)", listen);
    goto out;
  }
  if (get_str(root, "rtc_bind", c->rtc_bind, sizeof c->rtc_bind, err, errcap)) goto out;
  if (get_str(root, "rtc_ip", c->rtc_ip, sizeof c->rtc_ip, err, errcap)) goto out;
  if (get_str(root, "web_root", c->web_root, sizeof c->web_root, err, errcap)) goto out;
  long v;
  v = c->rtc_port;
  if (get_int(root, "rtc_port", 0, 65535, &v, err, errcap)) goto out;
  c->rtc_port = (int)v;
  v = c->rtc_announce_port;
  if (get_int(root, "rtc_announce_port", 0, 65535, &v, err, errcap)) goto out;
  c->rtc_announce_port = (int)v;
  v = (long)c->max_sessions;
  if (get_int(root, "max_sessions", 1, 1000000, &v, err, errcap)) goto out;
  c->max_sessions = (size_t)v;
  v = (long)c->max_viewers;
  if (get_int(root, "max_viewers_per_room", 1, 100000, &v, err, errcap)) goto out;
  c->max_viewers = (size_t)v;
  v = (long)c->body_cap;
  if (get_int(root, "max_request_body", 1024, 16 << 20, &v, err, errcap)) goto out;
  c->body_cap = (size_t)v;
  v = c->token_leeway;
  if (get_int(root, "token_leeway_seconds", 0, 3600, &v, err, errcap)) goto out;
  c->token_leeway = v;
  json_t *apps = json_object_get(root, "apps");
  if (apps) {
    if (!json_is_array(apps) || json_array_size(apps) > HD_MAX_APPS) {
      snprintf(err, errcap, "config: 'apps' must be an array of at most %d {key, secret} objects",
               HD_MAX_APPS);
      goto out;
    }
    size_t i;
    json_t *a;
    c->n_apps = 0;
    json_array_foreach(apps, i, a) {
      hd_app_t *app = &c->apps[c->n_apps];
      memset(app, 0, sizeof *app);
      if (!json_is_object(a) || get_str(a, "key", app->key, sizeof app->key, err, errcap) ||
          get_str(a, "secret", app->secret, sizeof app->secret, err, errcap) || !app->key[0] ||
          !app->secret[0]) {
        if (!err[0]) snprintf(err, errcap, "config: apps[%zu] needs a non-empty 'key' and 'secret'", i);
        goto out;
      }
      c->n_apps++;
    }
  }
  json_t *origins = json_object_get(root, "cors_origins");
  if (origins) {
    if (!json_is_array(origins) || json_array_size(origins) > HD_MAX_ORIGINS) {
      snprintf(err, errcap, "config: 'cors_origins' must be an array of at most %d strings", HD_MAX_ORIGINS);
      goto out;
    }
    size_t i;
    json_t *o;
    c->n_origins = 0;
    json_array_foreach(origins, i, o) {
      if (!json_is_string(o) || json_string_length(o) >= sizeof c->origins[0]) {
        snprintf(err, errcap, "config: cors_origins[%zu] must be a string", i);
        goto out;
      }
      snprintf(c->origins[c->n_origins++], sizeof c->origins[0], "%s", json_string_value(o));
    }
  }
  rc = 0;
out:
  json_decref(root);
  return rc;
}
