/* Node configuration loading (JSON via jansson). */
#include "cmd/config.h"

#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "cluster/peer_addrs.h"
#include "cluster/redis_url.h"
#include "io/http_client.h"
#include "io/webhook_sender.h"

void hd_config_defaults(hd_config_t *c) {
  memset(c, 0, sizeof *c);
  snprintf(c->listen_host, sizeof c->listen_host, "127.0.0.1");
  c->listen_port = 7880;
  c->rtc_port = 7881;
  c->max_sessions = 1000;
  hd_overlay_params_default(&c->overlay);
  c->board_share_every_ms = 1000; /* docs/whiteboard.md "Multi-node" */
  c->board_share_max_kb = 1024;
  c->board_share_ttl_s = 86400;
  c->cluster_sid_wait_ms = 2000;   /* HD_ROOM_SID_WAIT */
  c->cluster_room_ttl_ms = 30000;  /* HD_CLUSTER_ROOM_TTL_MS */
  c->cluster_reap_grace_ms = 5000; /* HD_CLUSTER_REAP_GRACE_MS */
  c->max_sessions_per_app = 0;     /* 0: max_sessions with one app, half of it with two or more */
  c->max_sessions_per_identity = 20;
  c->max_viewers = 500;
  c->body_cap = 64 * 1024;
  c->token_leeway = 10;
  c->room_empty_timeout =
      20; /* like LiveKit's departure timeout: a reload or network change rejoins the same room */
  c->webhook_max_queue = 1000;
  snprintf(c->egress_dir, sizeof c->egress_dir, "egress");
  c->egress_max = 16;
  c->ingest_max_keyframe_interval_ms = 2500; /* docs/egress.md "RTMP ingest": passthrough GOP limit */
  c->egress_min_free_mb = 1024;
  c->webhook_max_attempts = 8;
  c->webhook_max_age = 600;
  c->webhook_timeout_ms = 10000;
  snprintf(c->rtm_db, sizeof c->rtm_db, "hudong-rtm.db");
  c->rtm_max_message = 32 * 1024;
  c->rtm_rate = 100;
  c->rtm_burst = 200;
  c->rtm_window_messages = 1024;
  c->rtm_presence_max = 500;  /* docs/rtm.md "Presence" */
  c->rtm_cluster_log = 10000; /* docs/overlay.md "RTM across nodes" */
  c->rtm_cluster_dedupe = 4096;
  c->rtm_window_bytes = 2 << 20;
  c->rtm_resume_grace = 30;
  c->ice_tcp = 1;
  c->ice_tcp_max_conns = 1024;
  c->ice_tcp_check_timeout = 10000;
  c->ice_tcp_idle_timeout = 30;
  c->ice_tcp_max_buffer = 1 << 20;
  c->turn_ttl = 86400;
  c->rtm_max_sessions = 20000;     /* docs/rtm.md "Limits" */
  c->rtm_max_sessions_per_app = 0; /* half of rtm.max_sessions */
  c->rtm_max_sessions_per_user = 8;
  c->rtm_quota_channels = 10000;
  c->rtm_quota_mb = 256;
  c->rtm_min_free_mb = 100;
  c->max_token_lifetime = 24 * 3600; /* like Agora's 24 h privilege expiry cap */
  c->quality_retention_days = 7;     /* docs/quality.md */
  c->quality_sample_interval_s = 5;
  c->quality_min_report_interval_ms = 1000;
  c->quality_max_rows_per_s = 5000;
  c->quality_max_queue = 20000;
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

/* 1 if s is 1+ characters of A-Z a-z 0-9 and the extra characters in `more`. */
static int token_chars(const char *s, const char *more) {
  if (!*s) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          strchr(more, *s)))
      return 0;
  return 1;
}

int hd_config_check_cluster(const hd_config_t *c, char *err, size_t errcap) {
  hd_redis_url_t u;
  if (c->redis[0] && hd_redis_url_parse(c->redis, &u, err, errcap) < 0) return HD_EINVAL;
  if (c->node_id[0] && !token_chars(c->node_id, "-_.:")) {
    snprintf(err, errcap, "config: 'node_id' must be 1-63 characters of A-Z a-z 0-9 - _ . :");
    return HD_EINVAL;
  }
  hd_peer_addrs_t pa = {.n = 0};
  char why[256];
  if (hd_peer_addrs_parse(&pa, c->peer_addrs, why, sizeof why) < 0) {
    snprintf(err, errcap, "config: 'peer_addrs' (--peer-addr): %s", why);
    return HD_EINVAL;
  }
  if (c->region[0] && !token_chars(c->region, "-_.")) {
    snprintf(err, errcap, "config: 'region' must be 1-31 characters of A-Z a-z 0-9 - _ . (e.g. eu-west)");
    return HD_EINVAL;
  }
  /* labels: k=v pairs separated by commas */
  for (const char *l = c->labels; *l;) {
    const char *e = strchr(l, ',');
    size_t n = e ? (size_t)(e - l) : strlen(l);
    const char *eq = memchr(l, '=', n);
    char one[256];
    memcpy(one, l, n);
    one[n] = 0;
    if (!eq || eq == l || !token_chars(one, "-_.=") || memchr(eq + 1, '=', n - (size_t)(eq + 1 - l)) ||
        eq + 1 == l + n || (e && !e[1])) {
      snprintf(err, errcap,
               "config: 'labels' must be key=value pairs separated by commas (A-Z a-z 0-9 - _ .), e.g. "
               "\"gpu=yes,tier=edge\"");
      return HD_EINVAL;
    }
    l += n + (e ? 1 : 0);
  }
  if (c->announce_url[0]) {
    const char *u2 = c->announce_url;
    int ok = (!strncmp(u2, "http://", 7) && u2[7]) || (!strncmp(u2, "https://", 8) && u2[8]);
    for (; ok && *u2; u2++)
      ok = *u2 > ' ' && *u2 != '"' && *u2 != '\\';
    if (!ok) {
      snprintf(err, errcap,
               "config: 'announce_url' must be the node's http:// or https:// URL as clients "
               "reach it, e.g. https://edge1.example.com");
      return HD_EINVAL;
    }
  }
  return 0;
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
                                         "media_workers",
                                         "media_shard_min_room",
                                         "media_shard_ring",
                                         "web_root",
                                         "max_sessions",
                                         "max_sessions_per_app",
                                         "max_sessions_per_identity",
                                         "max_viewers_per_room",
                                         "max_request_body",
                                         "token_leeway_seconds",
                                         "room_empty_timeout_s",
                                         "max_publish_bitrate_kbps",
                                         "apps",
                                         "cors_origins",
                                         "webhooks",
                                         "rtm",
                                         "board",
                                         "ice_tcp",
                                         "turn",
                                         "http",
                                         "max_token_lifetime_s",
                                         "quality_db",
                                         "quality",
                                         "redis",
                                         "node_id",
                                         "region",
                                         "labels",
                                         "peer_addrs",
                                         "overlay",
                                         "cluster",
                                         "announce_url",
                                         "drain_grace_s",
                                         "egress_dir",
                                         "egress_max",
                                         "egress_min_free_mb",
                                         "ingest_rtmp_url",
                                         "ingest_max_keyframe_interval_ms"};

/* Keys of the "webhooks" object, refused otherwise for the same reason. */
static const char *const webhook_keys[] = {"urls", "max_queue", "max_attempts", "max_age_seconds",
                                           "timeout_ms"};

/* Reads an array of at most max webhook URLs into dst; each must be an
 * http:// URL the client can parse (https needs a TLS-terminating proxy). */
static int get_urls(json_t *arr, const char *what, char (*dst)[HD_CONFIG_URL_MAX], int max, int *n, char *err,
                    size_t errcap) {
  if (!json_is_array(arr) || json_array_size(arr) > (size_t)max) {
    snprintf(err, errcap, "config: '%s' must be an array of at most %d URL strings", what, max);
    return HD_EINVAL;
  }
  size_t i;
  json_t *u;
  *n = 0;
  json_array_foreach(arr, i, u) {
    hd_http_url_t parsed;
    int rc = json_is_string(u) && json_string_length(u) < HD_CONFIG_URL_MAX
                 ? hd_http_url_parse(json_string_value(u), &parsed)
                 : HD_EINVAL;
    if (rc == HD_EUNSUPPORTED) {
      snprintf(err, errcap,
               "config: %s[%zu]: only http:// URLs are supported (for https, point it at a "
               "TLS-terminating proxy)",
               what, i);
      return HD_EINVAL;
    }
    if (rc < 0) {
      snprintf(err, errcap, "config: %s[%zu] must be an http://host[:port]/path URL shorter than %d bytes",
               what, i, HD_CONFIG_URL_MAX);
      return HD_EINVAL;
    }
    snprintf(dst[(*n)++], HD_CONFIG_URL_MAX, "%s", json_string_value(u));
  }
  return 0;
}

/* Refuses o unless it is an object whose keys are all in keys[0..n); the
 * error names what (e.g. "rtm") and the page that lists the keys. */
static int check_keys_doc(json_t *o, const char *what, const char *const *keys, size_t n, const char *doc,
                          char *err, size_t errcap) {
  if (!json_is_object(o)) {
    snprintf(err, errcap, "config: '%s' must be an object", what);
    return HD_EINVAL;
  }
  const char *k;
  json_t *kv;
  json_object_foreach(o, k, kv) {
    size_t i = 0;
    while (i < n && strcmp(k, keys[i]))
      i++;
    if (i == n) {
      snprintf(err, errcap, "config: unknown key '%s.%.64s' (see %s)", what, k, doc);
      return HD_EINVAL;
    }
  }
  return 0;
}

static int check_keys(json_t *o, const char *what, const char *const *keys, size_t n, char *err,
                      size_t errcap) {
  return check_keys_doc(o, what, keys, n, "docs/operations.md", err, errcap);
}

static int load_webhooks(hd_config_t *c, json_t *w, char *err, size_t errcap) {
  if (check_keys(w, "webhooks", webhook_keys, sizeof webhook_keys / sizeof webhook_keys[0], err, errcap))
    return HD_EINVAL;
  json_t *urls = json_object_get(w, "urls");
  if (urls &&
      get_urls(urls, "webhooks.urls", c->webhook_urls, HD_MAX_WEBHOOK_URLS, &c->n_webhook_urls, err, errcap))
    return HD_EINVAL;
  if (get_int(w, "max_queue", 1, 1000000, &c->webhook_max_queue, err, errcap)) return HD_EINVAL;
  if (get_int(w, "max_attempts", 1, 100, &c->webhook_max_attempts, err, errcap)) return HD_EINVAL;
  if (get_int(w, "max_age_seconds", 1, 86400, &c->webhook_max_age, err, errcap)) return HD_EINVAL;
  if (get_int(w, "timeout_ms", 100, 120000, &c->webhook_timeout_ms, err, errcap)) return HD_EINVAL;
  return 0;
}

/* "overlay": every key is optional; its default is overlay_params.h's. */
static const struct {
  const char *key;
  int kind; /* 0: ms (hd_time_t), 1: int, 2: number */
  size_t off;
} overlay_keys[] = {
    {"probe_interval_ms", 0, offsetof(hd_overlay_params_t, probe_interval)},
    {"down_probes", 1, offsetof(hd_overlay_params_t, down_probes)},
    {"up_echoes", 1, offsetof(hd_overlay_params_t, up_echoes)},
    {"down_confirm_ms", 0, offsetof(hd_overlay_params_t, down_confirm)},
    {"check_interval_ms", 0, offsetof(hd_overlay_params_t, check_interval)},
    {"relay_overlap_ms", 0, offsetof(hd_overlay_params_t, relay_overlap)},
    {"dup_audio_loss", 2, offsetof(hd_overlay_params_t, dup_audio_loss)},
    {"hop_cache", 1, offsetof(hd_overlay_params_t, hop_cache)},
    {"hop_cache_age_ms", 0, offsetof(hd_overlay_params_t, hop_cache_age)},
    {"hop_reorder_ms", 0, offsetof(hd_overlay_params_t, hop_reorder)},
    {"hop_min_retry_ms", 0, offsetof(hd_overlay_params_t, hop_min_retry)},
    {"hop_give_up_ms", 0, offsetof(hd_overlay_params_t, hop_give_up)},
    {"hop_max_tries", 1, offsetof(hd_overlay_params_t, hop_max_tries)},
    {"rescue_max", 1, offsetof(hd_overlay_params_t, rescue_max)},
    {"hysteresis_fraction", 2, offsetof(hd_overlay_params_t, hyst_frac)},
    {"hysteresis_ms", 2, offsetof(hd_overlay_params_t, hyst_ms)},
    {"hold_ms", 0, offsetof(hd_overlay_params_t, hold)},
};
#define N_OVERLAY_KEYS (sizeof overlay_keys / sizeof overlay_keys[0])

static int load_overlay(hd_config_t *c, json_t *o, char *err, size_t errcap) {
  const char *names[N_OVERLAY_KEYS];
  for (size_t i = 0; i < N_OVERLAY_KEYS; i++)
    names[i] = overlay_keys[i].key;
  if (check_keys_doc(o, "overlay", names, N_OVERLAY_KEYS, "docs/overlay.md \"Tuning the overlay\"", err,
                     errcap))
    return HD_EINVAL;
  hd_overlay_params_t p = c->overlay;
  for (size_t i = 0; i < N_OVERLAY_KEYS; i++) {
    json_t *v = json_object_get(o, overlay_keys[i].key);
    if (!v) continue;
    char *dst = (char *)&p + overlay_keys[i].off;
    if (overlay_keys[i].kind == 2 ? !json_is_number(v) : !json_is_integer(v)) {
      snprintf(err, errcap, "config: 'overlay.%s' must be %s (see docs/overlay.md \"Tuning the overlay\")",
               overlay_keys[i].key, overlay_keys[i].kind == 2 ? "a number" : "an integer");
      return HD_EINVAL;
    }
    if (overlay_keys[i].kind == 0) {
      json_int_t ms = json_integer_value(v);
      *(hd_time_t *)dst = ms < 0         ? -HD_MS(1)
                          : ms > 3600000 ? HD_SEC(3600) + 1
                                         : HD_MS(ms); /* the check says the range */
    } else if (overlay_keys[i].kind == 1) {
      json_int_t x = json_integer_value(v);
      *(int *)dst = x < -1 ? -1 : x > 1000000 ? 1000000 : (int)x;
    } else {
      *(double *)dst = json_number_value(v);
    }
  }
  char why[200];
  if (hd_overlay_params_check(&p, why, sizeof why) < 0) {
    snprintf(err, errcap, "config: %s (see docs/overlay.md \"Tuning the overlay\")", why);
    return HD_EINVAL;
  }
  c->overlay = p;
  return 0;
}

/* "cluster": room timing in a cluster (docs/operations.md "Cluster timing"). */
static const char *const cluster_keys[] = {"sid_wait_ms", "room_ttl_ms", "reap_grace_ms"};

static int load_cluster(hd_config_t *c, json_t *o, char *err, size_t errcap) {
  static const char doc[] = "docs/operations.md \"Cluster timing\"";
  if (check_keys_doc(o, "cluster", cluster_keys, sizeof cluster_keys / sizeof cluster_keys[0], doc, err,
                     errcap))
    return HD_EINVAL;
  static const struct {
    const char *key;
    long lo, hi;
    const char *why;
  } k[] = {
      {"sid_wait_ms", 100, 60000, "a join waits this long for Redis to name its room"},
      {"room_ttl_ms", 6000, 86400000, "room keys are refreshed every sixth of it, at least every second"},
      {"reap_grace_ms", 0, 600000, "0 reaps a node's rooms as soon as its registry key is gone"},
  };
  long *dst[] = {&c->cluster_sid_wait_ms, &c->cluster_room_ttl_ms, &c->cluster_reap_grace_ms};
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
    json_t *v = json_object_get(o, k[i].key);
    if (!v) continue;
    if (!json_is_integer(v) || json_integer_value(v) < k[i].lo || json_integer_value(v) > k[i].hi) {
      snprintf(err, errcap,
               "config: 'cluster.%s' must be an integer in [%ld, %ld] (milliseconds; %s; see %s)", k[i].key,
               k[i].lo, k[i].hi, k[i].why, doc);
      return HD_EINVAL;
    }
    *dst[i] = (long)json_integer_value(v);
  }
  return 0;
}

static const char *const rtm_keys[] = {"db",
                                       "max_message",
                                       "rate",
                                       "burst",
                                       "window_messages",
                                       "window_bytes",
                                       "resume_grace_seconds",
                                       "max_sessions",
                                       "max_sessions_per_app",
                                       "max_sessions_per_user",
                                       "quota_channels",
                                       "quota_mb",
                                       "min_free_mb",
                                       "presence_max",
                                       "cluster_log",
                                       "cluster_dedupe"};

static int load_rtm(hd_config_t *c, json_t *w, char *err, size_t errcap) {
  if (check_keys(w, "rtm", rtm_keys, sizeof rtm_keys / sizeof rtm_keys[0], err, errcap)) return HD_EINVAL;
  if (get_str(w, "db", c->rtm_db, sizeof c->rtm_db, err, errcap)) return HD_EINVAL;
  if (!c->rtm_db[0]) {
    snprintf(err, errcap, "config: 'rtm.db' must not be empty (\":memory:\" for no file)");
    return HD_EINVAL;
  }
  if (get_int(w, "max_message", 256, 1 << 20, &c->rtm_max_message, err, errcap)) return HD_EINVAL;
  if (get_int(w, "rate", 1, 100000, &c->rtm_rate, err, errcap)) return HD_EINVAL;
  if (get_int(w, "burst", 1, 1000000, &c->rtm_burst, err, errcap)) return HD_EINVAL;
  if (get_int(w, "window_messages", 16, 1000000, &c->rtm_window_messages, err, errcap)) return HD_EINVAL;
  if (get_int(w, "window_bytes", 65536, 1L << 30, &c->rtm_window_bytes, err, errcap)) return HD_EINVAL;
  if (get_int(w, "resume_grace_seconds", 1, 3600, &c->rtm_resume_grace, err, errcap)) return HD_EINVAL;
  if (get_int(w, "max_sessions", 1, 1000000, &c->rtm_max_sessions, err, errcap)) return HD_EINVAL;
  if (get_int(w, "max_sessions_per_app", 0, 1000000, &c->rtm_max_sessions_per_app, err, errcap))
    return HD_EINVAL;
  if (get_int(w, "max_sessions_per_user", 1, 10000, &c->rtm_max_sessions_per_user, err, errcap))
    return HD_EINVAL;
  if (get_int(w, "quota_channels", 0, 100000000, &c->rtm_quota_channels, err, errcap)) return HD_EINVAL;
  if (get_int(w, "presence_max", 0, 1000000, &c->rtm_presence_max, err, errcap)) return HD_EINVAL;
  if (get_int(w, "cluster_log", 1000, 10000000, &c->rtm_cluster_log, err, errcap)) return HD_EINVAL;
  if (get_int(w, "cluster_dedupe", 64, 10000000, &c->rtm_cluster_dedupe, err, errcap)) return HD_EINVAL;
  if (get_int(w, "quota_mb", 0, 100000000, &c->rtm_quota_mb, err, errcap)) return HD_EINVAL;
  if (get_int(w, "min_free_mb", 0, 100000000, &c->rtm_min_free_mb, err, errcap)) return HD_EINVAL;
  return 0;
}

static const char *const board_keys[] = {"max_pages",      "max_elements",   "max_points",   "max_image_kb",
                                         "max_boards",     "snapshot_every", "max_entry_kb", "max_board_mb",
                                         "share_every_ms", "share_max_kb",   "share_ttl_s"};

/* "board": whiteboard caps (docs/whiteboard.md "Limits"). */
static int load_board(hd_config_t *c, json_t *w, char *err, size_t errcap) {
  if (check_keys_doc(w, "board", board_keys, sizeof board_keys / sizeof board_keys[0], "docs/whiteboard.md",
                     err, errcap))
    return HD_EINVAL;
  if (get_int(w, "max_pages", 1, 10000, &c->board_max_pages, err, errcap) ||
      get_int(w, "max_elements", 1, 1000000, &c->board_max_elements, err, errcap) ||
      get_int(w, "max_points", 2, 100000, &c->board_max_points, err, errcap) ||
      get_int(w, "max_image_kb", 1, 65536, &c->board_max_image_kb, err, errcap) ||
      get_int(w, "max_boards", 1, 1000000, &c->board_max_boards, err, errcap) ||
      get_int(w, "snapshot_every", 1, 1000000, &c->board_snapshot_every, err, errcap) ||
      get_int(w, "max_entry_kb", 16, 1 << 20, &c->board_max_entry_kb, err, errcap) ||
      get_int(w, "max_board_mb", 1, 65536, &c->board_max_board_mb, err, errcap) ||
      get_int(w, "share_every_ms", 100, 60000, &c->board_share_every_ms, err, errcap) ||
      get_int(w, "share_max_kb", 16, 65536, &c->board_share_max_kb, err, errcap) ||
      get_int(w, "share_ttl_s", 60, 2592000, &c->board_share_ttl_s, err, errcap))
    return HD_EINVAL;
  return 0;
}

static const char *const ice_tcp_keys[] = {"enabled", "max_connections", "check_timeout_ms",
                                           "idle_timeout_seconds", "max_buffer_bytes"};

static int load_ice_tcp(hd_config_t *c, json_t *o, char *err, size_t errcap) {
  if (check_keys(o, "ice_tcp", ice_tcp_keys, sizeof ice_tcp_keys / sizeof ice_tcp_keys[0], err, errcap))
    return HD_EINVAL;
  json_t *en = json_object_get(o, "enabled");
  if (en && !json_is_boolean(en)) {
    snprintf(err, errcap, "config: 'ice_tcp.enabled' must be true or false");
    return HD_EINVAL;
  }
  if (en) c->ice_tcp = json_is_true(en);
  if (get_int(o, "max_connections", 1, 100000, &c->ice_tcp_max_conns, err, errcap) ||
      get_int(o, "check_timeout_ms", 100, 600000, &c->ice_tcp_check_timeout, err, errcap) ||
      get_int(o, "idle_timeout_seconds", 1, 3600, &c->ice_tcp_idle_timeout, err, errcap) ||
      get_int(o, "max_buffer_bytes", 16384, 64L << 20, &c->ice_tcp_max_buffer, err, errcap))
    return HD_EINVAL;
  return 0;
}

static const char *const turn_keys[] = {"urls", "secret", "ttl_seconds"};

/* A TURN URL as RTCPeerConnection takes it (RFC 7065): turn: or turns:, a host,
 * an optional port and ?transport=udp|tcp. Checked here so that a typo is an
 * error at start, not a browser exception at every join. */
static int turn_url_ok(const char *u) {
  const char *p = !strncmp(u, "turns:", 6) ? u + 6 : !strncmp(u, "turn:", 5) ? u + 5 : NULL;
  if (!p || !*p || *p == '/' || *p == '?') return 0;
  for (const char *q = p; *q; q++)
    if (*q <= ' ' || *q == '"' || *q == '\\' || *q == '/') return 0;
  const char *t = strchr(p, '?');
  return !t || !strcmp(t, "?transport=udp") || !strcmp(t, "?transport=tcp");
}

static int load_turn(hd_config_t *c, json_t *o, char *err, size_t errcap) {
  if (check_keys(o, "turn", turn_keys, sizeof turn_keys / sizeof turn_keys[0], err, errcap)) return HD_EINVAL;
  json_t *urls = json_object_get(o, "urls");
  if (!urls || !json_is_array(urls) || json_array_size(urls) == 0 ||
      json_array_size(urls) > HD_MAX_TURN_URLS) {
    snprintf(err, errcap,
             "config: 'turn.urls' must be an array of 1 to %d TURN URLs (\"turns:HOST:PORT\", "
             "\"turn:HOST:PORT?transport=tcp\")",
             HD_MAX_TURN_URLS);
    return HD_EINVAL;
  }
  size_t i;
  json_t *u;
  c->n_turn_urls = 0;
  json_array_foreach(urls, i, u) {
    if (!json_is_string(u) || json_string_length(u) >= HD_CONFIG_URL_MAX ||
        !turn_url_ok(json_string_value(u))) {
      snprintf(err, errcap,
               "config: turn.urls[%zu] must be turn:HOST[:PORT] or turns:HOST[:PORT], optionally "
               "with ?transport=udp or ?transport=tcp",
               i);
      return HD_EINVAL;
    }
    snprintf(c->turn_urls[c->n_turn_urls++], HD_CONFIG_URL_MAX, "%s", json_string_value(u));
  }
  if (get_str(o, "secret", c->turn_secret, sizeof c->turn_secret, err, errcap)) return HD_EINVAL;
  if (strlen(c->turn_secret) < 16) {
    snprintf(err, errcap,
             "config: 'turn.secret' must be the TURN server's shared secret (coturn "
             "static-auth-secret), at least 16 characters");
    return HD_EINVAL;
  }
  if (get_int(o, "ttl_seconds", 60, 7 * 86400, &c->turn_ttl, err, errcap)) return HD_EINVAL;
  return 0;
}

static const char *const http_keys[] = {"max_connections",   "max_connections_per_ip",
                                        "header_timeout_ms", "body_timeout_ms",
                                        "tls_cert",          "tls_key"};

static int load_http(hd_config_t *c, json_t *w, char *err, size_t errcap) {
  if (check_keys(w, "http", http_keys, sizeof http_keys / sizeof http_keys[0], err, errcap)) return HD_EINVAL;
  if (get_int(w, "max_connections", 16, 1000000, &c->http_max_conns, err, errcap)) return HD_EINVAL;
  if (get_int(w, "max_connections_per_ip", 1, 1000000, &c->http_max_conns_per_ip, err, errcap))
    return HD_EINVAL;
  if (get_int(w, "header_timeout_ms", 100, 600000, &c->http_header_timeout_ms, err, errcap)) return HD_EINVAL;
  if (get_int(w, "body_timeout_ms", 1000, 3600000, &c->http_body_timeout_ms, err, errcap)) return HD_EINVAL;
  if (get_str(w, "tls_cert", c->tls_cert, sizeof c->tls_cert, err, errcap)) return HD_EINVAL;
  if (get_str(w, "tls_key", c->tls_key, sizeof c->tls_key, err, errcap)) return HD_EINVAL;
  return 0;
}

/* "quality": intake caps, retention and alert rules (docs/quality.md). */
static const char *const quality_keys[] = {"retention_days", "sample_interval_s", "min_report_interval_ms",
                                           "max_rows_per_s", "max_queue",         "alerts"};
static const char *const alert_keys[] = {"name",    "metric",    "threshold", "window_s",
                                         "windows", "silence_s", "below",     "min_samples"};

static int load_quality(hd_config_t *c, json_t *q, char *err, size_t errcap) {
  if (check_keys(q, "quality", quality_keys, sizeof quality_keys / sizeof quality_keys[0], err, errcap))
    return HD_EINVAL;
  if (get_int(q, "retention_days", 0, 3650, &c->quality_retention_days, err, errcap) ||
      get_int(q, "sample_interval_s", 1, 3600, &c->quality_sample_interval_s, err, errcap) ||
      get_int(q, "min_report_interval_ms", 100, 600000, &c->quality_min_report_interval_ms, err, errcap) ||
      get_int(q, "max_rows_per_s", 1, 10000000, &c->quality_max_rows_per_s, err, errcap) ||
      get_int(q, "max_queue", 100, 10000000, &c->quality_max_queue, err, errcap))
    return HD_EINVAL;
  json_t *al = json_object_get(q, "alerts");
  if (!al) return 0;
  if (!json_is_array(al) || json_array_size(al) > HD_QALERT_MAX_RULES) {
    snprintf(err, errcap, "config: 'quality.alerts' must be an array of at most %d rules",
             HD_QALERT_MAX_RULES);
    return HD_EINVAL;
  }
  size_t i;
  json_t *r;
  c->n_quality_rules = 0;
  json_array_foreach(al, i, r) {
    hd_qrule_t *x = &c->quality_rules[c->n_quality_rules];
    memset(x, 0, sizeof *x);
    if (!json_is_object(r) ||
        check_keys(r, "quality.alerts[]", alert_keys, sizeof alert_keys / sizeof alert_keys[0], err, errcap))
      goto bad;
    const char *metric = json_string_value(json_object_get(r, "metric"));
    int m = metric ? hd_qmetric_parse(metric) : -1;
    json_t *th = json_object_get(r, "threshold");
    if (m < 0 || !json_is_number(th)) {
      snprintf(err, errcap,
               "config: quality.alerts[%zu] needs 'metric' (video_stall_rate, audio_stall_rate, "
               "join_success_rate, rtt_ms, loss_rate) and a numeric 'threshold'",
               i);
      return HD_EINVAL;
    }
    x->metric = (hd_qmetric_t)m;
    x->threshold = json_number_value(th);
    x->below = m == HD_QM_JOIN_SUCCESS;
    json_t *b = json_object_get(r, "below");
    if (b) x->below = json_is_true(b);
    const char *name = json_string_value(json_object_get(r, "name"));
    snprintf(x->name, sizeof x->name, "%s", name ? name : metric);
    long win = 60, wins = 1, sil = 600, mins = 0;
    if (get_int(r, "window_s", 1, 86400, &win, err, errcap) ||
        get_int(r, "windows", 1, 1000, &wins, err, errcap) ||
        get_int(r, "silence_s", 0, 7 * 86400, &sil, err, errcap) ||
        get_int(r, "min_samples", 0, 1000000000, &mins, err, errcap))
      return HD_EINVAL;
    x->window = HD_SEC(win);
    x->windows = (int)wins;
    x->silence = HD_SEC(sil);
    x->min_den = (double)mins;
    c->n_quality_rules++;
  }
  return 0;
bad:
  if (!err[0]) snprintf(err, errcap, "config: quality.alerts[%zu] must be an object", i);
  return HD_EINVAL;
}

int hd_config_load(hd_config_t *c, const char *path, char *err, size_t errcap) {
  json_error_t je;
  FILE *f = fopen(path, "r");
  if (!f) { /* jansson would say "line -1: unable to open" */
    snprintf(err, errcap, "cannot open config %s: %s", path, strerror(errno));
    return HD_EINVAL;
  }
  fclose(f);
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
  v = c->media_workers;
  if (get_int(root, "media_workers", 0, 64, &v, err, errcap)) goto out;
  c->media_workers = (int)v;
  if (get_int(root, "media_shard_min_room", 0, 1000000, &c->media_shard_min_room, err, errcap) ||
      get_int(root, "media_shard_ring", 0, 65536, &c->media_shard_ring, err, errcap))
    goto out;
  v = (long)c->max_sessions;
  if (get_int(root, "max_sessions", 1, 1000000, &v, err, errcap)) goto out;
  c->max_sessions = (size_t)v;
  v = (long)c->max_sessions_per_app;
  if (get_int(root, "max_sessions_per_app", 0, 1000000, &v, err, errcap)) goto out;
  c->max_sessions_per_app = (size_t)v;
  v = (long)c->max_sessions_per_identity;
  if (get_int(root, "max_sessions_per_identity", 0, 1000000, &v, err, errcap)) goto out;
  c->max_sessions_per_identity = (size_t)v;
  v = (long)c->max_viewers;
  if (get_int(root, "max_viewers_per_room", 1, 100000, &v, err, errcap)) goto out;
  c->max_viewers = (size_t)v;
  v = (long)c->body_cap;
  if (get_int(root, "max_request_body", 1024, 16 << 20, &v, err, errcap)) goto out;
  c->body_cap = (size_t)v;
  v = c->token_leeway;
  if (get_int(root, "token_leeway_seconds", 0, 3600, &v, err, errcap)) goto out;
  c->token_leeway = v;
  if (get_int(root, "room_empty_timeout_s", 0, 86400, &c->room_empty_timeout, err, errcap)) goto out;
  if (get_int(root, "max_publish_bitrate_kbps", 0, 1000000, &c->max_publish_bitrate_kbps, err, errcap))
    goto out;
  if (get_str(root, "egress_dir", c->egress_dir, sizeof c->egress_dir, err, errcap) ||
      get_int(root, "egress_max", 0, 1000, &c->egress_max, err, errcap) ||
      get_int(root, "egress_min_free_mb", 0, 1 << 30, &c->egress_min_free_mb, err, errcap) ||
      get_str(root, "ingest_rtmp_url", c->ingest_rtmp_url, sizeof c->ingest_rtmp_url, err, errcap) ||
      get_int(root, "ingest_max_keyframe_interval_ms", 0, 600000, &c->ingest_max_keyframe_interval_ms, err,
              errcap))
    goto out;
  if (c->ingest_rtmp_url[0] && strncmp(c->ingest_rtmp_url, "rtmp://", 7)) {
    snprintf(err, errcap, "config: 'ingest_rtmp_url' must be an rtmp:// URL (the RTMP front's application)");
    goto out;
  }
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
      json_t *wu = json_object_get(a, "webhook_urls");
      if (wu && get_urls(wu, "apps[].webhook_urls", app->webhook_urls, HD_MAX_APP_WEBHOOK_URLS,
                         &app->n_webhook_urls, err, errcap))
        goto out;
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
  json_t *wh = json_object_get(root, "webhooks");
  if (wh && load_webhooks(c, wh, err, errcap)) goto out;
  json_t *rtm = json_object_get(root, "rtm");
  if (rtm && load_rtm(c, rtm, err, errcap)) goto out;
  json_t *board = json_object_get(root, "board");
  if (board && load_board(c, board, err, errcap)) goto out;
  json_t *itcp = json_object_get(root, "ice_tcp");
  if (itcp && load_ice_tcp(c, itcp, err, errcap)) goto out;
  json_t *turn = json_object_get(root, "turn");
  if (turn && load_turn(c, turn, err, errcap)) goto out;
  json_t *http = json_object_get(root, "http");
  if (http && load_http(c, http, err, errcap)) goto out;
  if (get_int(root, "max_token_lifetime_s", 0, 10L * 365 * 86400, &c->max_token_lifetime, err, errcap))
    goto out;
  if (get_str(root, "quality_db", c->quality_db, sizeof c->quality_db, err, errcap)) goto out;
  json_t *quality = json_object_get(root, "quality");
  if (quality && load_quality(c, quality, err, errcap)) goto out;
  if (get_str(root, "redis", c->redis, sizeof c->redis, err, errcap) ||
      get_str(root, "node_id", c->node_id, sizeof c->node_id, err, errcap) ||
      get_str(root, "region", c->region, sizeof c->region, err, errcap) ||
      get_str(root, "labels", c->labels, sizeof c->labels, err, errcap) ||
      get_str(root, "announce_url", c->announce_url, sizeof c->announce_url, err, errcap) ||
      get_str(root, "peer_addrs", c->peer_addrs, sizeof c->peer_addrs, err, errcap) ||
      hd_config_check_cluster(c, err, errcap))
    goto out;
  if (get_int(root, "drain_grace_s", 0, 3600, &c->drain_grace_s, err, errcap)) goto out;
  json_t *ovl = json_object_get(root, "overlay");
  if (ovl && load_overlay(c, ovl, err, errcap)) goto out;
  json_t *cl = json_object_get(root, "cluster");
  if (cl && load_cluster(c, cl, err, errcap)) goto out;
  rc = 0;
out:
  json_decref(root);
  return rc;
}

int hd_config_webhooks_start(const hd_config_t *c, uv_loop_t *loop, hd_webhook_sender_t **out) {
  *out = NULL;
  int n = c->n_webhook_urls;
  for (int i = 0; i < c->n_apps; i++)
    n += c->apps[i].n_webhook_urls;
  if (n == 0) return 0;
  hd_webhook_sender_config_t cfg;
  hd_webhook_sender_config_defaults(&cfg);
  cfg.core.max_queue = (size_t)c->webhook_max_queue;
  cfg.core.max_attempts = (int)c->webhook_max_attempts;
  cfg.core.max_age = HD_SEC(c->webhook_max_age);
  cfg.timeout_ms = (uint64_t)c->webhook_timeout_ms;
  if (cfg.connect_timeout_ms > cfg.timeout_ms) cfg.connect_timeout_ms = cfg.timeout_ms;
  hd_webhook_sender_t *s = NULL;
  int rc = hd_webhook_sender_start(&s, loop, &cfg);
  if (rc < 0) return rc;
  hd_webhook_t *core = hd_webhook_sender_core(s);
  for (int i = 0; i < c->n_apps && rc == 0; i++)
    rc = hd_webhook_add_app(core, c->apps[i].key, c->apps[i].secret);
  for (int i = 0; i < c->n_webhook_urls && rc == 0; i++)
    rc = hd_webhook_add_url(core, c->webhook_urls[i], NULL);
  for (int i = 0; i < c->n_apps && rc == 0; i++)
    for (int k = 0; k < c->apps[i].n_webhook_urls && rc == 0; k++)
      rc = hd_webhook_add_url(core, c->apps[i].webhook_urls[k], c->apps[i].key);
  if (rc < 0) {
    hd_webhook_sender_stop(s);
    return rc;
  }
  *out = s;
  return 0;
}
