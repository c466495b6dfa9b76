/* Cluster node registry entries and the peer table (see registry.h). The
 * entry is JSON so that an operator can read it with redis-cli GET; unknown
 * members are ignored so that a newer node's entry stays readable by an
 * older one during a rolling upgrade. */
#include "cluster/registry.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

uint64_t hd_cluster_room_hash(const char *app, const char *room) {
  uint64_t h = 14695981039346656037ull;
  for (const char *p = app; *p; p++)
    h = (h ^ (uint8_t)*p) * 1099511628211ull;
  h = (h ^ '/') * 1099511628211ull; /* app keys and room names have no '/' */
  for (const char *p = room; *p; p++)
    h = (h ^ (uint8_t)*p) * 1099511628211ull;
  return h;
}

int hd_cluster_node_encode(const hd_cluster_node_t *n, const char *const *room_names, int n_rooms, char *out,
                           size_t cap) {
  json_t *media = json_array(), *rooms = json_array(), *links = json_array();
  json_t *o = json_object();
  int rc = HD_ENOMEM;
  if (!media || !rooms || !links || !o) goto out;
  for (int i = 0; i < n->n_links; i++) {
    const hd_cluster_link_t *l = &n->links[i];
    json_array_append_new(links, json_pack("{s:s, s:b, s:f, s:f, s:f}", "peer", l->peer, "up", l->up,
                                           "rtt_ms", l->rtt_ms, "loss", l->loss, "jitter_ms", l->jitter_ms));
  }
  for (int i = 0; i < n->n_media; i++)
    json_array_append_new(media, json_string(n->media[i]));
  int listed = n_rooms < HD_CLUSTER_MAX_ROOMS ? n_rooms : HD_CLUSTER_MAX_ROOMS;
  for (int i = 0; i < listed; i++)
    json_array_append_new(rooms, json_string(room_names[i]));
  if (json_object_set_new(o, "v", json_integer(1)) || json_object_set_new(o, "id", json_string(n->id)) ||
      json_object_set_new(o, "region", json_string(n->region)) ||
      json_object_set_new(o, "labels", json_string(n->labels)) ||
      json_object_set_new(o, "url", json_string(n->url)) || json_object_set(o, "media", media) ||
      json_object_set_new(o, "capacity", json_integer(n->capacity)) ||
      json_object_set_new(o, "sessions", json_integer(n->sessions)) ||
      json_object_set_new(o, "participants", json_integer(n->participants)) ||
      json_object_set_new(o, "rooms", json_integer(n->rooms)) ||
      json_object_set_new(o, "bitrate_bps", json_integer(n->bitrate_bps)) ||
      json_object_set_new(o, "cpu_pct", json_integer(n->cpu_pct)) ||
      json_object_set_new(o, "draining", json_boolean(n->draining)) ||
      json_object_set_new(o, "ts_ms", json_integer(n->ts_ms)) || json_object_set(o, "room_names", rooms) ||
      json_object_set_new(o, "rooms_truncated", json_boolean(n_rooms > listed)) ||
      (n->n_links && json_object_set(o, "links", links)) ||
      (n->link_ver > 0 && json_object_set_new(o, "link", json_integer(n->link_ver))))
    goto out;
  size_t len = json_dumpb(o, out, cap, JSON_COMPACT);
  rc = len == 0 ? HD_ENOMEM : len >= cap ? HD_ENOSPC : (int)len;
  if (rc > 0) out[len] = 0;
out:
  json_decref(media);
  json_decref(rooms);
  json_decref(links);
  json_decref(o);
  return rc;
}

static int str_member(json_t *o, const char *k, char *dst, size_t cap, int required, char *why,
                      size_t whycap) {
  json_t *v = json_object_get(o, k);
  if (!v && !required) return 0;
  if (!json_is_string(v) || json_string_length(v) >= cap) {
    snprintf(why, whycap, "'%s' must be a string shorter than %zu bytes", k, cap);
    return HD_EPROTO;
  }
  memcpy(dst, json_string_value(v), json_string_length(v) + 1);
  return 0;
}

static int int_member(json_t *o, const char *k, int64_t lo, int64_t *dst, char *why, size_t whycap) {
  json_t *v = json_object_get(o, k);
  if (!v) return 0;
  if (!json_is_integer(v) || json_integer_value(v) < lo) {
    snprintf(why, whycap, "'%s' must be an integer >= %lld", k, (long long)lo);
    return HD_EPROTO;
  }
  *dst = json_integer_value(v);
  return 0;
}

int hd_cluster_node_decode(const char *text, size_t len, hd_cluster_node_t *out, char *why, size_t whycap) {
  memset(out, 0, sizeof *out);
  out->cpu_pct = -1;
  json_error_t je;
  json_t *o = json_loadb(text, len, 0, &je);
  int rc = HD_EPROTO;
  if (!json_is_object(o)) {
    snprintf(why, whycap, "not a JSON object");
    goto out;
  }
  json_t *v = json_object_get(o, "v");
  if (!json_is_integer(v) || json_integer_value(v) != 1) {
    snprintf(why, whycap, "'v' must be 1 (entry format version)");
    goto out;
  }
  if (str_member(o, "id", out->id, sizeof out->id, 1, why, whycap) ||
      str_member(o, "region", out->region, sizeof out->region, 0, why, whycap) ||
      str_member(o, "labels", out->labels, sizeof out->labels, 0, why, whycap) ||
      str_member(o, "url", out->url, sizeof out->url, 1, why, whycap))
    goto out;
  if (!out->id[0]) {
    snprintf(why, whycap, "'id' is empty");
    goto out;
  }
  int64_t cpu = -1, lv = 1; /* an entry without "link": a node of link version 1 */
  /* "link" only chooses what goes in the link header's destination bytes: a
   * value this node cannot read is taken as 1 (flagged for a log line), not a
   * reason to lose the whole peer (and its rooms) */
  json_t *lj = json_object_get(o, "link");
  if (lj && json_is_integer(lj) && json_integer_value(lj) >= 1)
    lv = json_integer_value(lj);
  else if (lj)
    out->link_ver_bad = 1;
  if (int_member(o, "capacity", 1, &out->capacity, why, whycap) ||
      int_member(o, "sessions", 0, &out->sessions, why, whycap) ||
      int_member(o, "participants", 0, &out->participants, why, whycap) ||
      int_member(o, "rooms", 0, &out->rooms, why, whycap) ||
      int_member(o, "bitrate_bps", 0, &out->bitrate_bps, why, whycap) ||
      int_member(o, "cpu_pct", -1, &cpu, why, whycap) || int_member(o, "ts_ms", 0, &out->ts_ms, why, whycap))
    goto out;
  if (out->capacity == 0) {
    snprintf(why, whycap, "'capacity' is missing");
    goto out;
  }
  out->cpu_pct = cpu > 100000 ? 100000 : (int)cpu;
  out->link_ver = lv > 255 ? 255 : (int)lv;
  json_t *d = json_object_get(o, "draining");
  if (d && !json_is_boolean(d)) {
    snprintf(why, whycap, "'draining' must be true or false");
    goto out;
  }
  out->draining = d ? json_is_true(d) : 0;
  json_t *media = json_object_get(o, "media");
  if (media && !json_is_array(media)) {
    snprintf(why, whycap, "'media' must be an array");
    goto out;
  }
  size_t i;
  json_array_foreach(media, i, v) {
    if (!json_is_string(v) || json_string_length(v) >= HD_CLUSTER_ADDR_MAX) {
      snprintf(why, whycap, "media[%zu] must be an \"ip:port\" string", i);
      goto out;
    }
    if (out->n_media < HD_CLUSTER_MAX_MEDIA)
      snprintf(out->media[out->n_media++], HD_CLUSTER_ADDR_MAX, "%s", json_string_value(v));
  }
  json_t *rooms = json_object_get(o, "room_names");
  if (rooms && !json_is_array(rooms)) {
    snprintf(why, whycap, "'room_names' must be an array");
    goto out;
  }
  json_array_foreach(rooms, i, v) {
    const char *s = json_string_value(v);
    const char *slash = s ? strchr(s, '/') : NULL;
    if (!slash || slash == s || json_string_length(v) > 200) {
      snprintf(why, whycap, "room_names[%zu] must be an \"app/room\" string", i);
      goto out;
    }
    if (out->n_room_hashes == HD_CLUSTER_MAX_ROOMS) break;
    char app[100];
    size_t al = (size_t)(slash - s);
    if (al >= sizeof app) continue;
    memcpy(app, s, al);
    app[al] = 0;
    out->room_hashes[out->n_room_hashes++] = hd_cluster_room_hash(app, slash + 1);
  }
  json_t *links = json_object_get(o, "links");
  if (links && !json_is_array(links)) {
    snprintf(why, whycap, "'links' must be an array");
    goto out;
  }
  json_array_foreach(links, i, v) {
    const char *peer = NULL;
    int up = 0;
    double rtt = 0, loss = 0, jit = 0;
    if (json_unpack(v, "{s:s, s:b, s:F, s:F, s:F}", "peer", &peer, "up", &up, "rtt_ms", &rtt, "loss", &loss,
                    "jitter_ms", &jit) < 0 ||
        strlen(peer) >= HD_CLUSTER_ID_MAX) {
      snprintf(why, whycap, "links[%zu] must be {\"peer\", \"up\", \"rtt_ms\", \"loss\", \"jitter_ms\"}", i);
      goto out;
    }
    if (out->n_links == HD_CLUSTER_MAX_LINKS) break;
    hd_cluster_link_t *l = &out->links[out->n_links++];
    snprintf(l->peer, sizeof l->peer, "%s", peer);
    l->up = up;
    l->rtt_ms = rtt;
    l->loss = loss;
    l->jitter_ms = jit;
  }
  rc = 0;
out:
  json_decref(o);
  return rc;
}

int hd_cluster_labels_match(const char *labels, const char *want) {
  const char *w = want;
  while (*w) {
    const char *e = strchr(w, ',');
    size_t wl = e ? (size_t)(e - w) : strlen(w);
    int found = wl == 0;
    for (const char *l = labels; !found && *l;) {
      const char *le = strchr(l, ',');
      size_t ll = le ? (size_t)(le - l) : strlen(l);
      found = ll == wl && !strncmp(l, w, wl);
      l += ll + (le ? 1 : 0);
    }
    if (!found) return 0;
    w += wl + (e ? 1 : 0);
  }
  return 1;
}

int hd_cluster_node_has_room(const hd_cluster_node_t *n, uint64_t room_hash) {
  for (int i = 0; i < n->n_room_hashes; i++)
    if (n->room_hashes[i] == room_hash) return 1;
  return 0;
}

int hd_cluster_node_full(const hd_cluster_node_t *n) {
  return n->draining || n->sessions >= n->capacity || n->participants >= n->capacity;
}

double hd_cluster_node_load(const hd_cluster_node_t *n) {
  int64_t u = n->sessions > n->participants ? n->sessions : n->participants;
  return n->capacity > 0 ? (double)u / (double)n->capacity : 1.0;
}

int hd_cluster_peers_init(hd_cluster_peers_t *p, hd_time_t ttl) {
  memset(p, 0, sizeof *p);
  p->nodes = calloc(HD_CLUSTER_MAX_NODES, sizeof *p->nodes);
  p->ttl = ttl;
  return p->nodes ? 0 : HD_ENOMEM;
}

void hd_cluster_peers_free(hd_cluster_peers_t *p) {
  free(p->nodes);
  p->nodes = NULL;
  p->n = 0;
}

static int find(const hd_cluster_node_t *nodes, int n, const char *id) {
  for (int i = 0; i < n; i++)
    if (!strcmp(nodes[i].id, id)) return i;
  return -1;
}

int hd_cluster_peers_update(hd_cluster_peers_t *p, const hd_cluster_node_t *nodes, int n, const char *self_id,
                            hd_time_t now, hd_cluster_peer_fn fn, void *ud) {
  /* joined: in nodes, not in the table; left: in the table, not in nodes */
  for (int i = 0; i < n; i++) {
    if (!strcmp(nodes[i].id, self_id) || find(nodes, i, nodes[i].id) >= 0) continue; /* self, duplicate */
    if (find(p->nodes, p->n, nodes[i].id) < 0 && fn) fn(ud, nodes[i].id, 1);
  }
  for (int i = 0; i < p->n; i++)
    if (find(nodes, n, p->nodes[i].id) < 0 && fn) fn(ud, p->nodes[i].id, 0);
  int m = 0;
  for (int i = 0; i < n && m < HD_CLUSTER_MAX_NODES; i++) {
    if (!strcmp(nodes[i].id, self_id) || find(p->nodes, m, nodes[i].id) >= 0) continue;
    p->nodes[m++] = nodes[i];
  }
  p->n = m;
  p->updated = now;
  return m;
}

int hd_cluster_peers_live(hd_cluster_peers_t *p, hd_time_t now, hd_cluster_peer_fn fn, void *ud) {
  if (p->n > 0 && now - p->updated > p->ttl) {
    for (int i = 0; i < p->n && fn; i++)
      fn(ud, p->nodes[i].id, 0);
    p->n = 0;
  }
  return p->n;
}
