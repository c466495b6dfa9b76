/* Room signaling messages: strict JSON (RFC 8259) codec for the WebSocket
 * signaling protocol at /rtc. See signal.h and docs/protocol.md.
 *
 * One validator per message type reads a jansson tree into the typed structs.
 * The parser runs it on received text; the builders turn a struct into a tree
 * and run the same validator on it before dumping, so whatever the node writes
 * is exactly what a client's parser accepts (and the other way round). Parsed
 * strings point into the jansson tree, which the message keeps alive; arrays
 * come from a small block list freed with the message. */
/* Field paths in error messages are cut at FIELD_MAX on purpose. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif
#include "sfu/signal.h"
#include "sfu/signal_internal.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/err.h"

/* ---------------------------------------------------------------- names */

const hd_sig_type_info_t hd_sig_types[HD_SIGNAL_TYPE_COUNT] = {
    [HD_SIGNAL_JOIN] = {"join", HD_SIGNAL_FROM_CLIENT},
    [HD_SIGNAL_PUBLISH_OFFER] = {"publish_offer", HD_SIGNAL_FROM_CLIENT},
    [HD_SIGNAL_SUBSCRIBER_ANSWER] = {"subscriber_answer", HD_SIGNAL_FROM_CLIENT},
    [HD_SIGNAL_SUBSCRIBE] = {"subscribe", HD_SIGNAL_FROM_CLIENT},
    [HD_SIGNAL_UNSUBSCRIBE] = {"unsubscribe", HD_SIGNAL_FROM_CLIENT},
    [HD_SIGNAL_MUTE] = {"mute", HD_SIGNAL_FROM_CLIENT},
    [HD_SIGNAL_UPDATE_METADATA] = {"update_metadata", HD_SIGNAL_FROM_CLIENT},
    [HD_SIGNAL_DATA] = {"data", HD_SIGNAL_FROM_CLIENT},
    [HD_SIGNAL_LEAVE] = {"leave", HD_SIGNAL_FROM_CLIENT},
    [HD_SIGNAL_PING] = {"ping", HD_SIGNAL_FROM_CLIENT},
    [HD_SIGNAL_TRACK_SETTINGS] = {"track_settings", HD_SIGNAL_FROM_CLIENT},
    [HD_SIGNAL_JOINED] = {"joined", HD_SIGNAL_FROM_NODE},
    [HD_SIGNAL_PUBLISH_ANSWER] = {"publish_answer", HD_SIGNAL_FROM_NODE},
    [HD_SIGNAL_SUBSCRIBER_OFFER] = {"subscriber_offer", HD_SIGNAL_FROM_NODE},
    [HD_SIGNAL_PARTICIPANT_JOINED] = {"participant_joined", HD_SIGNAL_FROM_NODE},
    [HD_SIGNAL_PARTICIPANT_LEFT] = {"participant_left", HD_SIGNAL_FROM_NODE},
    [HD_SIGNAL_PARTICIPANT_UPDATED] = {"participant_updated", HD_SIGNAL_FROM_NODE},
    [HD_SIGNAL_TRACK_PUBLISHED] = {"track_published", HD_SIGNAL_FROM_NODE},
    [HD_SIGNAL_TRACK_UNPUBLISHED] = {"track_unpublished", HD_SIGNAL_FROM_NODE},
    [HD_SIGNAL_TRACK_MUTED] = {"track_muted", HD_SIGNAL_FROM_NODE},
    [HD_SIGNAL_ACTIVE_SPEAKERS] = {"active_speakers", HD_SIGNAL_FROM_NODE},
    [HD_SIGNAL_DATA_RECV] = {"data", HD_SIGNAL_FROM_NODE},
    [HD_SIGNAL_PONG] = {"pong", HD_SIGNAL_FROM_NODE},
    [HD_SIGNAL_ERROR] = {"error", HD_SIGNAL_FROM_NODE},
    [HD_SIGNAL_LEFT] = {"left", HD_SIGNAL_FROM_NODE},
    [HD_SIGNAL_STREAM_STATE] = {"stream_state", HD_SIGNAL_FROM_NODE},
    [HD_SIGNAL_PUBLISH_LAYERS] = {"publish_layers", HD_SIGNAL_FROM_NODE},
    [HD_SIGNAL_CONNECTION_QUALITY] = {"connection_quality", HD_SIGNAL_FROM_NODE},
    [HD_SIGNAL_TRACK_REFUSED] = {"track_refused", HD_SIGNAL_FROM_NODE},
};

const hd_sig_err_info_t hd_sig_errs[HD_SIGNAL_ERR_COUNT] = {
    [HD_SIGNAL_ERR_NONE] = {0, ""},
    [HD_SIGNAL_ERR_BAD_REQUEST] = {400, "bad_request"},
    [HD_SIGNAL_ERR_UNAUTHORIZED] = {401, "unauthorized"},
    [HD_SIGNAL_ERR_TOKEN_EXPIRED] = {401, "token_expired"},
    [HD_SIGNAL_ERR_FORBIDDEN] = {403, "forbidden"},
    [HD_SIGNAL_ERR_NOT_FOUND] = {404, "not_found"},
    [HD_SIGNAL_ERR_CONFLICT] = {409, "conflict"},
    [HD_SIGNAL_ERR_TOO_LARGE] = {413, "too_large"},
    [HD_SIGNAL_ERR_RATE_LIMITED] = {429, "rate_limited"},
    [HD_SIGNAL_ERR_INTERNAL] = {500, "internal"},
    [HD_SIGNAL_ERR_ROOM_FULL] = {503, "room_full"},
    [HD_SIGNAL_ERR_NODE_FULL] = {503, "node_full"},
    [HD_SIGNAL_ERR_NODE_DRAINING] = {503, "node_draining"},
    [HD_SIGNAL_ERR_CLUSTER_UNAVAILABLE] = {503, "cluster_unavailable"},
};

const char *const hd_sig_kinds[] = {"audio", "video"};
const char *const hd_sig_sources[] = {"camera", "microphone", "screen", "screen_audio"};
const char *const hd_sig_stream_states[] = {"active", "paused"};
const char *const hd_sig_pause_reasons[HD_SIGNAL_PAUSE_COUNT] = {"", "bandwidth", "hidden", "publisher"};
const char *const hd_sig_qualities[] = {"good", "poor", "lost"};
const char *const hd_sig_left_reasons[HD_SIGNAL_LEFT_COUNT] = {
    "client_request", "duplicate_identity", "removed", "room_closed", "server_shutdown", "node_draining"};

const char *hd_signal_type_name(hd_signal_type_t t) {
  return (t > HD_SIGNAL_NONE && t < HD_SIGNAL_TYPE_COUNT) ? hd_sig_types[t].name : "?";
}
int hd_signal_err_status(hd_signal_errcode_t c) {
  return ((int)c >= 0 && c < HD_SIGNAL_ERR_COUNT) ? hd_sig_errs[c].status : 0;
}
const char *hd_signal_err_reason(hd_signal_errcode_t c) {
  return ((int)c >= 0 && c < HD_SIGNAL_ERR_COUNT) ? hd_sig_errs[c].reason : "";
}
hd_signal_errcode_t hd_signal_err_from_token(int e) {
  if (e >= 0) return HD_SIGNAL_ERR_NONE;
  if (e == HD_EEXPIRED) return HD_SIGNAL_ERR_TOKEN_EXPIRED;
  if (e == HD_EFORBIDDEN) return HD_SIGNAL_ERR_FORBIDDEN;
  if (e == HD_ENOMEM) return HD_SIGNAL_ERR_INTERNAL;
  return HD_SIGNAL_ERR_UNAUTHORIZED;
}
const char *hd_signal_kind_name(hd_signal_kind_t k) {
  return ((int)k >= 0 && (size_t)k < NELEM(hd_sig_kinds)) ? hd_sig_kinds[k] : "?";
}
const char *hd_signal_source_name(hd_signal_source_t s) {
  return ((int)s >= 0 && (size_t)s < NELEM(hd_sig_sources)) ? hd_sig_sources[s] : "?";
}
const char *hd_signal_left_reason_name(hd_signal_left_reason_t r) {
  return ((int)r >= 0 && r < HD_SIGNAL_LEFT_COUNT) ? hd_sig_left_reasons[r] : "?";
}

size_t hd_sig_dir_cap(hd_signal_dir_t d) {
  return d == HD_SIGNAL_FROM_CLIENT ? HD_SIGNAL_MAX_MSG : HD_SIGNAL_MAX_NODE_MSG;
}

/* Length of the valid UTF-8 sequence (RFC 3629 §4) at s[0..n), or 0 if invalid:
 * no overlongs, no surrogates, nothing above U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t len;
  unsigned lo = 0x80, hi = 0xBF;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF)
    len = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else
    return 0;
  if (n < len || s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < len; i++)
    if (s[i] < 0x80 || s[i] > 0xBF) return 0;
  return len;
}

int hd_sig_utf8_valid(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  size_t n = strlen(s);
  while (n) {
    size_t k = utf8_seq(p, n);
    if (!k) return 0;
    p += k;
    n -= k;
  }
  return 1;
}

/* Copies s into out[0..cap) as valid UTF-8 of at most cap-1 bytes: invalid
 * bytes become '?', and a character that does not fit is dropped whole. */
void hd_sig_utf8_sanitize(const char *s, char *out, size_t cap) {
  const unsigned char *p = (const unsigned char *)s;
  size_t n = strlen(s), o = 0;
  while (n) {
    size_t k = utf8_seq(p, n);
    if (!k) {
      if (o + 1 >= cap) break;
      out[o++] = '?';
      p++;
      n--;
      continue;
    }
    if (o + k >= cap) break;
    memcpy(out + o, p, k);
    o += k;
    p += k;
    n -= k;
  }
  out[o] = 0;
}

/* ---------------------------------------------------------------- storage */

typedef struct blk {
  struct blk *next;
  max_align_t data[];
} blk_t;

typedef struct {
  json_t *root;
  blk_t *blocks;
} store_t;

static void store_free(store_t *st) {
  if (!st) return;
  while (st->blocks) {
    blk_t *b = st->blocks;
    st->blocks = b->next;
    free(b);
  }
  json_decref(st->root);
  free(st);
}

/* ---------------------------------------------------------------- validator */

typedef struct {
  store_t *st;
  hd_signal_error_t *err;
  int oom;
} vctx_t;

#define FIELD_MAX 128

static int vfail(vctx_t *v, hd_signal_errcode_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int vfail(vctx_t *v, hd_signal_errcode_t code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  v->err->code = code;
  vsnprintf(v->err->message, sizeof v->err->message, fmt, ap);
  va_end(ap);
  return -1;
}

static void *arena_alloc(vctx_t *v, size_t n, size_t size) {
  if (n == 0) return NULL;
  if (n > (SIZE_MAX - sizeof(blk_t)) / size) goto oom;
  blk_t *b = calloc(1, sizeof(blk_t) + n * size);
  if (!b) goto oom;
  b->next = v->st->blocks;
  v->st->blocks = b;
  return b->data;
oom:
  v->oom = 1;
  vfail(v, HD_SIGNAL_ERR_INTERNAL, "out of memory");
  return NULL;
}

static const char *fname(char f[FIELD_MAX], const char *path, const char *key) {
  /* a truncated field path only shortens an error message */
  int n = path && *path ? snprintf(f, FIELD_MAX, "%s.%s", path, key) : snprintf(f, FIELD_MAX, "%s", key);
  (void)(n >= FIELD_MAX);
  return f;
}

/* Looks up key; absent and JSON null both mean "not given". */
static json_t *vget(json_t *o, const char *key) {
  json_t *x = json_object_get(o, key);
  return json_is_null(x) ? NULL : x;
}

static int vmissing(vctx_t *v, const char *path, const char *key) {
  char f[FIELD_MAX];
  return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "missing field \"%s\"", fname(f, path, key));
}

static int vstr(vctx_t *v, json_t *o, const char *path, const char *key, int req, size_t minlen,
                size_t maxlen, const char **out) {
  char f[FIELD_MAX];
  json_t *x = vget(o, key);
  *out = NULL;
  if (!x) return req ? vmissing(v, path, key) : 0;
  if (!json_is_string(x))
    return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "field \"%s\" must be a string", fname(f, path, key));
  size_t n = json_string_length(x);
  if (n > maxlen)
    return vfail(v, HD_SIGNAL_ERR_TOO_LARGE, "field \"%s\" is longer than %zu bytes", fname(f, path, key),
                 maxlen);
  if (n < minlen)
    return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "field \"%s\" must not be empty", fname(f, path, key));
  *out = json_string_value(x);
  return 0;
}

static int vbool(vctx_t *v, json_t *o, const char *path, const char *key, int req, int def, int *out) {
  char f[FIELD_MAX];
  json_t *x = vget(o, key);
  *out = def;
  if (!x) return req ? vmissing(v, path, key) : 0;
  if (!json_is_boolean(x))
    return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "field \"%s\" must be true or false", fname(f, path, key));
  *out = json_is_true(x);
  return 0;
}

static int vint(vctx_t *v, json_t *o, const char *path, const char *key, int req, int64_t min, int64_t max,
                int64_t def, int64_t *out) {
  char f[FIELD_MAX];
  json_t *x = vget(o, key);
  *out = def;
  if (!x) return req ? vmissing(v, path, key) : 0;
  if (!json_is_integer(x))
    return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "field \"%s\" must be an integer", fname(f, path, key));
  json_int_t i = json_integer_value(x);
  if (i < min || i > max)
    return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "field \"%s\" must be in %lld..%lld", fname(f, path, key),
                 (long long)min, (long long)max);
  *out = (int64_t)i;
  return 0;
}

/* int-sized variant of vint */
static int vint32(vctx_t *v, json_t *o, const char *path, const char *key, int req, int min, int max, int def,
                  int *out) {
  int64_t x;
  if (vint(v, o, path, key, req, min, max, def, &x) < 0) return -1;
  *out = (int)x;
  return 0;
}

static int venum(vctx_t *v, json_t *o, const char *path, const char *key, const char *const *names, size_t n,
                 int *out) {
  const char *s;
  char f[FIELD_MAX];
  if (vstr(v, o, path, key, 1, 0, 64, &s) < 0) {
    if (v->err->code == HD_SIGNAL_ERR_TOO_LARGE) v->err->code = HD_SIGNAL_ERR_BAD_REQUEST;
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    if (strcmp(s, names[i]) == 0) {
      *out = (int)i;
      return 0;
    }
  return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "field \"%s\" has an unknown value \"%s\"", fname(f, path, key),
               s);
}

static int varr(vctx_t *v, json_t *o, const char *path, const char *key, size_t minn, size_t maxn,
                json_t **out) {
  char f[FIELD_MAX];
  json_t *x = vget(o, key);
  *out = NULL;
  if (!x) return vmissing(v, path, key);
  if (!json_is_array(x))
    return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "field \"%s\" must be an array", fname(f, path, key));
  size_t n = json_array_size(x);
  if (n > maxn)
    return vfail(v, HD_SIGNAL_ERR_TOO_LARGE, "field \"%s\" has more than %zu entries", fname(f, path, key),
                 maxn);
  if (n < minn)
    return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "field \"%s\" must not be empty", fname(f, path, key));
  *out = x;
  return 0;
}

static int vobj(vctx_t *v, json_t *o, const char *path, const char *key, int req, json_t **out) {
  char f[FIELD_MAX];
  json_t *x = vget(o, key);
  *out = NULL;
  if (!x) return req ? vmissing(v, path, key) : 0;
  if (!json_is_object(x))
    return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "field \"%s\" must be an object", fname(f, path, key));
  *out = x;
  return 0;
}

static const char *elem_path(char p[FIELD_MAX], const char *path, const char *key, size_t i) {
  int n = path && *path ? snprintf(p, FIELD_MAX, "%s.%s[%zu]", path, key, i)
                        : snprintf(p, FIELD_MAX, "%s[%zu]", key, i);
  (void)(n >= FIELD_MAX);
  return p;
}

/* Array entry i of arr must be an object. */
static int velem_obj(vctx_t *v, json_t *arr, size_t i, const char *ep, json_t **out) {
  *out = json_array_get(arr, i);
  if (!json_is_object(*out)) return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "field \"%s\" must be an object", ep);
  return 0;
}

/* Array of strings, each minlen..maxlen bytes. */
static int vstr_array(vctx_t *v, json_t *o, const char *path, const char *key, size_t minn, size_t maxn,
                      size_t minlen, size_t maxlen, const char *const **out, size_t *n_out) {
  json_t *arr;
  char ep[FIELD_MAX];
  *out = NULL;
  *n_out = 0;
  if (varr(v, o, path, key, minn, maxn, &arr) < 0) return -1;
  size_t n = json_array_size(arr);
  const char **a = arena_alloc(v, n, sizeof *a);
  if (n && !a) return -1;
  for (size_t i = 0; i < n; i++) {
    json_t *x = json_array_get(arr, i);
    elem_path(ep, path, key, i);
    if (!json_is_string(x)) return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "field \"%s\" must be a string", ep);
    size_t len = json_string_length(x);
    if (len > maxlen)
      return vfail(v, HD_SIGNAL_ERR_TOO_LARGE, "field \"%s\" is longer than %zu bytes", ep, maxlen);
    if (len < minlen) return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "field \"%s\" must not be empty", ep);
    a[i] = json_string_value(x);
  }
  *out = a;
  *n_out = n;
  return 0;
}

static int vsdp(vctx_t *v, json_t *o, const char **out) {
  return vstr(v, o, "", "sdp", 1, 1, HD_SIGNAL_MAX_NODE_MSG, out);
}

/* camera/screen are video sources, microphone/screen_audio audio ones. */
static int source_kind(hd_signal_source_t s) {
  return (s == HD_SIGNAL_SOURCE_CAMERA || s == HD_SIGNAL_SOURCE_SCREEN) ? HD_SIGNAL_KIND_VIDEO
                                                                        : HD_SIGNAL_KIND_AUDIO;
}

static int vkind_source(vctx_t *v, json_t *o, const char *path, hd_signal_kind_t *kind,
                        hd_signal_source_t *source) {
  int k, s;
  char f[FIELD_MAX];
  if (venum(v, o, path, "kind", hd_sig_kinds, NELEM(hd_sig_kinds), &k) < 0 ||
      venum(v, o, path, "source", hd_sig_sources, NELEM(hd_sig_sources), &s) < 0)
    return -1;
  if (source_kind((hd_signal_source_t)s) != k)
    return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "field \"%s\": source \"%s\" does not carry %s",
                 fname(f, path, "source"), hd_sig_sources[s], hd_sig_kinds[k]);
  *kind = (hd_signal_kind_t)k;
  *source = (hd_signal_source_t)s;
  return 0;
}

static int vtrack(vctx_t *v, json_t *o, const char *path, hd_signal_track_t *t) {
  if (vstr(v, o, path, "sid", 1, 1, HD_SIGNAL_MAX_SID, &t->sid) < 0 ||
      vkind_source(v, o, path, &t->kind, &t->source) < 0 || vbool(v, o, path, "muted", 1, 0, &t->muted) < 0 ||
      vint32(v, o, path, "width", 1, 0, HD_SIGNAL_MAX_DIMENSION, 0, &t->width) < 0 ||
      vint32(v, o, path, "height", 1, 0, HD_SIGNAL_MAX_DIMENSION, 0, &t->height) < 0 ||
      vstr(v, o, path, "codec", 1, 0, HD_SIGNAL_MAX_CODEC, &t->codec) < 0)
    return -1;
  return 0;
}

static int vperms(vctx_t *v, json_t *o, const char *path, hd_signal_permissions_t *p) {
  if (vbool(v, o, path, "can_publish", 1, 0, &p->can_publish) < 0 ||
      vbool(v, o, path, "can_subscribe", 1, 0, &p->can_subscribe) < 0 ||
      vbool(v, o, path, "can_publish_data", 1, 0, &p->can_publish_data) < 0 ||
      vbool(v, o, path, "room_admin", 1, 0, &p->room_admin) < 0 ||
      vbool(v, o, path, "hidden", 1, 0, &p->hidden) < 0)
    return -1;
  return 0;
}

static int vparticipant(vctx_t *v, json_t *o, const char *path, int need_perms, hd_signal_participant_t *p) {
  json_t *arr, *po;
  char ep[FIELD_MAX], pp[FIELD_MAX];
  if (vstr(v, o, path, "sid", 1, 1, HD_SIGNAL_MAX_SID, &p->sid) < 0 ||
      vstr(v, o, path, "identity", 1, 1, HD_SIGNAL_MAX_IDENTITY, &p->identity) < 0 ||
      vstr(v, o, path, "name", 1, 0, HD_SIGNAL_MAX_NAME, &p->name) < 0 ||
      vstr(v, o, path, "metadata", 1, 0, HD_SIGNAL_MAX_METADATA, &p->metadata) < 0 ||
      vint(v, o, path, "joined_at", 1, 0, HD_SIGNAL_MAX_T, 0, &p->joined_at) < 0 ||
      varr(v, o, path, "tracks", 0, HD_SIGNAL_MAX_TRACKS, &arr) < 0 ||
      vobj(v, o, path, "permissions", need_perms, &po) < 0)
    return -1;
  size_t n = json_array_size(arr);
  hd_signal_track_t *t = arena_alloc(v, n, sizeof *t);
  if (n && !t) return -1;
  for (size_t i = 0; i < n; i++) {
    json_t *e;
    elem_path(ep, path, "tracks", i);
    if (velem_obj(v, arr, i, ep, &e) < 0 || vtrack(v, e, ep, &t[i]) < 0) return -1;
  }
  p->tracks = t;
  p->n_tracks = n;
  p->has_permissions = po != NULL;
  memset(&p->permissions, 0, sizeof p->permissions);
  if (po && vperms(v, po, fname(pp, path, "permissions"), &p->permissions) < 0) return -1;
  return 0;
}

/* ---- client -> node ---- */

static int v_join(vctx_t *v, json_t *o, hd_signal_msg_t *m) {
  int64_t proto;
  if (vstr(v, o, "", "token", 1, 1, HD_SIGNAL_MAX_TOKEN, &m->join.token) < 0 ||
      vbool(v, o, "", "auto_subscribe", 0, 1, &m->join.auto_subscribe) < 0 ||
      vstr(v, o, "", "name", 0, 0, HD_SIGNAL_MAX_NAME, &m->join.name) < 0 ||
      vstr(v, o, "", "metadata", 0, 0, HD_SIGNAL_MAX_METADATA, &m->join.metadata) < 0 ||
      vint(v, o, "", "protocol", 0, 1, 1000000, HD_SIGNAL_PROTOCOL_VERSION, &proto) < 0 ||
      vbool(v, o, "", "flexfec", 0, 0, &m->join.flexfec) < 0)
    return -1;
  if (proto != HD_SIGNAL_PROTOCOL_VERSION)
    return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "unsupported protocol %lld (this node speaks %d)",
                 (long long)proto, HD_SIGNAL_PROTOCOL_VERSION);
  m->join.protocol = (int)proto;
  return 0;
}

static int v_publish_offer(vctx_t *v, json_t *o, hd_signal_msg_t *m) {
  json_t *arr;
  char ep[FIELD_MAX];
  if (vsdp(v, o, &m->publish_offer.sdp) < 0 || varr(v, o, "", "tracks", 0, HD_SIGNAL_MAX_TRACKS, &arr) < 0)
    return -1;
  size_t n = json_array_size(arr);
  hd_signal_pub_track_t *t = arena_alloc(v, n, sizeof *t);
  if (n && !t) return -1;
  for (size_t i = 0; i < n; i++) {
    json_t *e;
    elem_path(ep, "", "tracks", i);
    if (velem_obj(v, arr, i, ep, &e) < 0 || vstr(v, e, ep, "cid", 1, 1, HD_SIGNAL_MAX_SID, &t[i].cid) < 0 ||
        vstr(v, e, ep, "mid", 1, 1, HD_SIGNAL_MAX_MID, &t[i].mid) < 0 ||
        vkind_source(v, e, ep, &t[i].kind, &t[i].source) < 0 ||
        vbool(v, e, ep, "muted", 0, 0, &t[i].muted) < 0 ||
        vint32(v, e, ep, "width", 0, 0, HD_SIGNAL_MAX_DIMENSION, 0, &t[i].width) < 0 ||
        vint32(v, e, ep, "height", 0, 0, HD_SIGNAL_MAX_DIMENSION, 0, &t[i].height) < 0)
      return -1;
    /* cid and mid each name one track: the answer's cid->sid map and the
     * node's mid->track map would be ambiguous otherwise. */
    for (size_t j = 0; j < i; j++) {
      if (strcmp(t[j].cid, t[i].cid) == 0)
        return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "field \"%s.cid\": duplicate cid \"%s\"", ep, t[i].cid);
      if (strcmp(t[j].mid, t[i].mid) == 0)
        return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "field \"%s.mid\": duplicate mid \"%s\"", ep, t[i].mid);
    }
  }
  m->publish_offer.tracks = t;
  m->publish_offer.n_tracks = n;
  return 0;
}

static int v_subscriber_answer(vctx_t *v, json_t *o, hd_signal_msg_t *m) {
  return vsdp(v, o, &m->subscriber_answer.sdp);
}

static int v_subscribe(vctx_t *v, json_t *o, hd_signal_msg_t *m) {
  /* subscribe and unsubscribe share one layout */
  return vstr_array(v, o, "", "track_sids", 1, HD_SIGNAL_MAX_TRACK_SIDS, 1, HD_SIGNAL_MAX_SID,
                    &m->subscribe.track_sids, &m->subscribe.n_track_sids);
}

static int v_mute(vctx_t *v, json_t *o, hd_signal_msg_t *m) {
  if (vstr(v, o, "", "track_sid", 1, 1, HD_SIGNAL_MAX_SID, &m->mute.track_sid) < 0 ||
      vbool(v, o, "", "muted", 1, 0, &m->mute.muted) < 0)
    return -1;
  return 0;
}

static int v_update_metadata(vctx_t *v, json_t *o, hd_signal_msg_t *m) {
  if (vstr(v, o, "", "metadata", 0, 0, HD_SIGNAL_MAX_METADATA, &m->update_metadata.metadata) < 0 ||
      vstr(v, o, "", "name", 0, 0, HD_SIGNAL_MAX_NAME, &m->update_metadata.name) < 0)
    return -1;
  if (!m->update_metadata.metadata && !m->update_metadata.name)
    return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "missing field \"metadata\" (or \"name\")");
  return 0;
}

static int v_data(vctx_t *v, json_t *o, hd_signal_msg_t *m) {
  int reliable;
  if (vstr(v, o, "", "payload", 1, 0, HD_SIGNAL_MAX_PAYLOAD, &m->data.payload) < 0 ||
      vbool(v, o, "", "reliable", 0, 1, &reliable) < 0)
    return -1;
  if (!reliable)
    return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST,
                 "field \"reliable\": WebSocket data is always reliable; use a data channel for unreliable");
  if (vget(o, "to"))
    return vstr_array(v, o, "", "to", 0, HD_SIGNAL_MAX_TO, 1, HD_SIGNAL_MAX_IDENTITY, &m->data.to,
                      &m->data.n_to);
  return 0;
}

static int v_leave(vctx_t *v, json_t *o, hd_signal_msg_t *m) { return 0; }

static int v_ping(vctx_t *v, json_t *o, hd_signal_msg_t *m) {
  /* ping and pong share one layout */
  return vint(v, o, "", "t", 1, 0, HD_SIGNAL_MAX_T, 0, &m->ping.t);
}

static int v_track_settings(vctx_t *v, json_t *o, hd_signal_msg_t *m) {
  if (vstr_array(v, o, "", "track_sids", 1, HD_SIGNAL_MAX_TRACK_SIDS, 1, HD_SIGNAL_MAX_SID,
                 &m->track_settings.track_sids, &m->track_settings.n_track_sids) < 0 ||
      vbool(v, o, "", "visible", 0, 1, &m->track_settings.visible) < 0 ||
      vint32(v, o, "", "width", 0, 0, HD_SIGNAL_MAX_DIMENSION, 0, &m->track_settings.width) < 0 ||
      vint32(v, o, "", "height", 0, 0, HD_SIGNAL_MAX_DIMENSION, 0, &m->track_settings.height) < 0 ||
      vbool(v, o, "", "pinned", 0, 0, &m->track_settings.pinned) < 0 ||
      vint32(v, o, "", "max_spatial_layer", 0, 0, 2, -1, &m->track_settings.max_spatial_layer) < 0 ||
      vint32(v, o, "", "max_temporal_layer", 0, 0, 2, -1, &m->track_settings.max_temporal_layer) < 0)
    return -1;
  return 0;
}

/* ---- node -> client ---- */

static int v_joined(vctx_t *v, json_t *o, hd_signal_msg_t *m) {
  json_t *po, *ro, *parr, *iarr;
  char ep[FIELD_MAX], up[FIELD_MAX];
  int64_t proto;
  if (vobj(v, o, "", "participant", 1, &po) < 0 ||
      vparticipant(v, po, "participant", 1, &m->joined.participant) < 0 ||
      vobj(v, o, "", "room", 1, &ro) < 0 ||
      vstr(v, ro, "room", "name", 1, 1, HD_SIGNAL_MAX_ROOM, &m->joined.room.name) < 0 ||
      vstr(v, ro, "room", "sid", 1, 1, HD_SIGNAL_MAX_SID, &m->joined.room.sid) < 0 ||
      vint(v, ro, "room", "created_at", 1, 0, HD_SIGNAL_MAX_T, 0, &m->joined.room.created_at) < 0 ||
      vint32(v, ro, "room", "max_participants", 1, 0, 1000000, 0, &m->joined.room.max_participants) < 0 ||
      varr(v, o, "", "participants", 0, HD_SIGNAL_MAX_PARTICIPANTS, &parr) < 0 ||
      varr(v, o, "", "ice_servers", 0, HD_SIGNAL_MAX_ICE_SERVERS, &iarr) < 0 ||
      vint32(v, o, "", "ping_interval", 1, 1, 3600, 0, &m->joined.ping_interval) < 0 ||
      vint32(v, o, "", "ping_timeout", 1, 1, 3600, 0, &m->joined.ping_timeout) < 0 ||
      vint(v, o, "", "protocol", 1, 1, 1000000, 0, &proto) < 0)
    return -1;
  m->joined.protocol = (int)proto;
  size_t n = json_array_size(parr);
  hd_signal_participant_t *ps = arena_alloc(v, n, sizeof *ps);
  if (n && !ps) return -1;
  for (size_t i = 0; i < n; i++) {
    json_t *e;
    elem_path(ep, "", "participants", i);
    if (velem_obj(v, parr, i, ep, &e) < 0 || vparticipant(v, e, ep, 0, &ps[i]) < 0) return -1;
  }
  m->joined.participants = ps;
  m->joined.n_participants = n;
  n = json_array_size(iarr);
  hd_signal_ice_server_t *is = arena_alloc(v, n, sizeof *is);
  if (n && !is) return -1;
  for (size_t i = 0; i < n; i++) {
    json_t *e;
    elem_path(ep, "", "ice_servers", i);
    if (velem_obj(v, iarr, i, ep, &e) < 0 ||
        vstr_array(v, e, ep, "urls", 1, HD_SIGNAL_MAX_URLS, 1, HD_SIGNAL_MAX_URL, &is[i].urls,
                   &is[i].n_urls) < 0 ||
        vstr(v, e, ep, "username", 0, 0, HD_SIGNAL_MAX_URL, &is[i].username) < 0 ||
        vstr(v, e, ep, "credential", 0, 0, HD_SIGNAL_MAX_URL, &is[i].credential) < 0)
      return -1;
    for (size_t k = 0; k < is[i].n_urls; k++) {
      const char *u = is[i].urls[k];
      if (strncmp(u, "stun:", 5) && strncmp(u, "turn:", 5) && strncmp(u, "turns:", 6))
        return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST,
                     "field \"%s\" must start with stun:, turn: or turns:", elem_path(up, ep, "urls", k));
    }
  }
  m->joined.ice_servers = is;
  m->joined.n_ice_servers = n;
  return 0;
}

static int v_publish_answer(vctx_t *v, json_t *o, hd_signal_msg_t *m) {
  json_t *arr;
  char ep[FIELD_MAX];
  if (vsdp(v, o, &m->publish_answer.sdp) < 0 || varr(v, o, "", "tracks", 0, HD_SIGNAL_MAX_TRACKS, &arr) < 0)
    return -1;
  size_t n = json_array_size(arr);
  hd_signal_track_ref_t *t = arena_alloc(v, n, sizeof *t);
  if (n && !t) return -1;
  for (size_t i = 0; i < n; i++) {
    json_t *e;
    elem_path(ep, "", "tracks", i);
    if (velem_obj(v, arr, i, ep, &e) < 0 || vstr(v, e, ep, "cid", 1, 1, HD_SIGNAL_MAX_SID, &t[i].cid) < 0 ||
        vstr(v, e, ep, "sid", 1, 1, HD_SIGNAL_MAX_SID, &t[i].sid) < 0)
      return -1;
  }
  m->publish_answer.tracks = t;
  m->publish_answer.n_tracks = n;
  return 0;
}

static int v_subscriber_offer(vctx_t *v, json_t *o, hd_signal_msg_t *m) {
  json_t *arr;
  char ep[FIELD_MAX];
  if (vsdp(v, o, &m->subscriber_offer.sdp) < 0 ||
      varr(v, o, "", "tracks", 0, HD_SIGNAL_MAX_TRACK_SIDS, &arr) < 0)
    return -1;
  size_t n = json_array_size(arr);
  hd_signal_sub_track_t *t = arena_alloc(v, n, sizeof *t);
  if (n && !t) return -1;
  for (size_t i = 0; i < n; i++) {
    json_t *e;
    elem_path(ep, "", "tracks", i);
    if (velem_obj(v, arr, i, ep, &e) < 0 || vstr(v, e, ep, "mid", 1, 1, HD_SIGNAL_MAX_MID, &t[i].mid) < 0 ||
        vstr(v, e, ep, "track_sid", 1, 1, HD_SIGNAL_MAX_SID, &t[i].track_sid) < 0 ||
        vstr(v, e, ep, "participant_sid", 1, 1, HD_SIGNAL_MAX_SID, &t[i].participant_sid) < 0)
      return -1;
  }
  m->subscriber_offer.tracks = t;
  m->subscriber_offer.n_tracks = n;
  return 0;
}

static int v_participant_msg(vctx_t *v, json_t *o, hd_signal_msg_t *m) {
  json_t *po;
  /* the three participant_* messages share one layout */
  if (vobj(v, o, "", "participant", 1, &po) < 0) return -1;
  return vparticipant(v, po, "participant", 0, &m->participant_joined.participant);
}

static int v_track_published(vctx_t *v, json_t *o, hd_signal_msg_t *m) {
  json_t *to;
  if (vstr(v, o, "", "participant_sid", 1, 1, HD_SIGNAL_MAX_SID, &m->track_published.participant_sid) < 0 ||
      vobj(v, o, "", "track", 1, &to) < 0)
    return -1;
  return vtrack(v, to, "track", &m->track_published.track);
}

static int v_track_unpublished(vctx_t *v, json_t *o, hd_signal_msg_t *m) {
  if (vstr(v, o, "", "participant_sid", 1, 1, HD_SIGNAL_MAX_SID, &m->track_unpublished.participant_sid) < 0 ||
      vstr(v, o, "", "track_sid", 1, 1, HD_SIGNAL_MAX_SID, &m->track_unpublished.track_sid) < 0)
    return -1;
  return 0;
}

static int v_track_muted(vctx_t *v, json_t *o, hd_signal_msg_t *m) {
  if (vstr(v, o, "", "participant_sid", 1, 1, HD_SIGNAL_MAX_SID, &m->track_muted.participant_sid) < 0 ||
      vstr(v, o, "", "track_sid", 1, 1, HD_SIGNAL_MAX_SID, &m->track_muted.track_sid) < 0 ||
      vbool(v, o, "", "muted", 1, 0, &m->track_muted.muted) < 0)
    return -1;
  return 0;
}

static int v_active_speakers(vctx_t *v, json_t *o, hd_signal_msg_t *m) {
  json_t *arr;
  char ep[FIELD_MAX], f[FIELD_MAX];
  if (varr(v, o, "", "speakers", 0, HD_SIGNAL_MAX_SPEAKERS, &arr) < 0) return -1;
  size_t n = json_array_size(arr);
  hd_signal_speaker_t *s = arena_alloc(v, n, sizeof *s);
  if (n && !s) return -1;
  for (size_t i = 0; i < n; i++) {
    json_t *e, *lv;
    elem_path(ep, "", "speakers", i);
    if (velem_obj(v, arr, i, ep, &e) < 0 || vstr(v, e, ep, "sid", 1, 1, HD_SIGNAL_MAX_SID, &s[i].sid) < 0)
      return -1;
    lv = vget(e, "level");
    if (!lv) return vmissing(v, ep, "level");
    if (!json_is_number(lv))
      return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "field \"%s\" must be a number", fname(f, ep, "level"));
    s[i].level = json_number_value(lv);
    if (!(s[i].level >= 0.0 && s[i].level <= 1.0))
      return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "field \"%s\" must be in 0..1", fname(f, ep, "level"));
  }
  m->active_speakers.speakers = s;
  m->active_speakers.n_speakers = n;
  return 0;
}

static int v_data_recv(vctx_t *v, json_t *o, hd_signal_msg_t *m) {
  if (vstr(v, o, "", "from", 1, 0, HD_SIGNAL_MAX_IDENTITY, &m->data_recv.from) < 0 ||
      vstr(v, o, "", "from_sid", 0, 1, HD_SIGNAL_MAX_SID, &m->data_recv.from_sid) < 0 ||
      vstr(v, o, "", "payload", 1, 0, HD_SIGNAL_MAX_PAYLOAD, &m->data_recv.payload) < 0 ||
      vstr(v, o, "", "channel", 0, 1, 16, &m->data_recv.channel) < 0 ||
      vbool(v, o, "", "binary", 0, 0, &m->data_recv.binary) < 0)
    return -1;
  return 0;
}

static int v_error(vctx_t *v, json_t *o, hd_signal_msg_t *m) {
  int64_t code;
  const char *reason;
  if (vint(v, o, "", "code", 1, 100, 999, 0, &code) < 0 || vstr(v, o, "", "reason", 1, 1, 64, &reason) < 0 ||
      vstr(v, o, "", "message", 1, 0, HD_SIGNAL_MAX_TEXT, &m->error.message) < 0 ||
      vint32(v, o, "", "retry_after", 0, 1, 86400, 0, &m->error.retry_after) < 0 ||
      vstr(v, o, "", "redirect", 0, 1, HD_SIGNAL_MAX_TEXT, &m->error.redirect) < 0)
    return -1;
  for (int c = 1; c < HD_SIGNAL_ERR_COUNT; c++)
    if (strcmp(reason, hd_sig_errs[c].reason) == 0) {
      if (hd_sig_errs[c].status != code)
        return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "field \"code\": %lld does not go with reason \"%s\" (%d)",
                     (long long)code, reason, hd_sig_errs[c].status);
      m->error.code = (hd_signal_errcode_t)c;
      return 0;
    }
  return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "field \"reason\" has an unknown value \"%s\"", reason);
}

static int v_left(vctx_t *v, json_t *o, hd_signal_msg_t *m) {
  int r;
  if (venum(v, o, "", "reason", hd_sig_left_reasons, HD_SIGNAL_LEFT_COUNT, &r) < 0 ||
      vstr(v, o, "", "message", 0, 0, HD_SIGNAL_MAX_TEXT, &m->left.message) < 0 ||
      vstr(v, o, "", "redirect", 0, 1, HD_SIGNAL_MAX_TEXT, &m->left.redirect) < 0)
    return -1;
  m->left.reason = (hd_signal_left_reason_t)r;
  return 0;
}

static int v_stream_state(vctx_t *v, json_t *o, hd_signal_msg_t *m) {
  int st, r = HD_SIGNAL_PAUSE_NONE;
  if (vstr(v, o, "", "participant_sid", 1, 1, HD_SIGNAL_MAX_SID, &m->stream_state.participant_sid) < 0 ||
      vstr(v, o, "", "track_sid", 1, 1, HD_SIGNAL_MAX_SID, &m->stream_state.track_sid) < 0 ||
      venum(v, o, "", "state", hd_sig_stream_states, NELEM(hd_sig_stream_states), &st) < 0 ||
      vstr(v, o, "", "rid", 0, 1, HD_SIGNAL_MAX_RID, &m->stream_state.rid) < 0 ||
      vint32(v, o, "", "width", 0, 0, HD_SIGNAL_MAX_DIMENSION, 0, &m->stream_state.width) < 0 ||
      vint32(v, o, "", "height", 0, 0, HD_SIGNAL_MAX_DIMENSION, 0, &m->stream_state.height) < 0)
    return -1;
  if (st == HD_SIGNAL_STREAM_PAUSED &&
      venum(v, o, "", "reason", hd_sig_pause_reasons + 1, HD_SIGNAL_PAUSE_COUNT - 1, &r) < 0)
    return -1;
  m->stream_state.state = (hd_signal_stream_t)st;
  m->stream_state.reason =
      st == HD_SIGNAL_STREAM_PAUSED ? (hd_signal_pause_reason_t)(r + 1) : HD_SIGNAL_PAUSE_NONE;
  return 0;
}

static int v_publish_layers(vctx_t *v, json_t *o, hd_signal_msg_t *m) {
  if (vstr(v, o, "", "track_sid", 1, 1, HD_SIGNAL_MAX_SID, &m->publish_layers.track_sid) < 0 ||
      vstr_array(v, o, "", "active_rids", 0, HD_SIGNAL_MAX_LAYERS, 1, HD_SIGNAL_MAX_RID,
                 &m->publish_layers.active_rids, &m->publish_layers.n_active_rids) < 0)
    return -1;
  return 0;
}

static int v_track_refused(vctx_t *v, json_t *o, hd_signal_msg_t *m) {
  if (vstr(v, o, "", "track_sid", 1, 1, HD_SIGNAL_MAX_SID, &m->track_refused.track_sid) < 0 ||
      vstr(v, o, "", "codec", 1, 0, HD_SIGNAL_MAX_CODEC, &m->track_refused.codec) < 0 ||
      vstr(v, o, "", "fmtp", 1, 0, HD_SIGNAL_MAX_TEXT, &m->track_refused.fmtp) < 0 ||
      vstr(v, o, "", "identity", 1, 1, HD_SIGNAL_MAX_IDENTITY, &m->track_refused.identity) < 0)
    return -1;
  return 0;
}

static int v_connection_quality(vctx_t *v, json_t *o, hd_signal_msg_t *m) {
  json_t *arr;
  char ep[FIELD_MAX];
  if (varr(v, o, "", "updates", 1, HD_SIGNAL_MAX_TRACK_SIDS, &arr) < 0) return -1;
  size_t n = json_array_size(arr);
  hd_signal_quality_update_t *u = arena_alloc(v, n, sizeof *u);
  if (n && !u) return -1;
  for (size_t i = 0; i < n; i++) {
    json_t *e;
    int q;
    elem_path(ep, "", "updates", i);
    if (velem_obj(v, arr, i, ep, &e) < 0 ||
        vstr(v, e, ep, "participant_sid", 1, 1, HD_SIGNAL_MAX_SID, &u[i].participant_sid) < 0 ||
        venum(v, e, ep, "quality", hd_sig_qualities, NELEM(hd_sig_qualities), &q) < 0)
      return -1;
    u[i].quality = (hd_signal_quality_t)q;
  }
  m->connection_quality.updates = u;
  m->connection_quality.n_updates = n;
  return 0;
}

typedef int (*vfn_t)(vctx_t *, json_t *, hd_signal_msg_t *);
static const vfn_t VALIDATORS[HD_SIGNAL_TYPE_COUNT] = {
    [HD_SIGNAL_JOIN] = v_join,
    [HD_SIGNAL_PUBLISH_OFFER] = v_publish_offer,
    [HD_SIGNAL_SUBSCRIBER_ANSWER] = v_subscriber_answer,
    [HD_SIGNAL_SUBSCRIBE] = v_subscribe,
    [HD_SIGNAL_UNSUBSCRIBE] = v_subscribe,
    [HD_SIGNAL_MUTE] = v_mute,
    [HD_SIGNAL_UPDATE_METADATA] = v_update_metadata,
    [HD_SIGNAL_DATA] = v_data,
    [HD_SIGNAL_LEAVE] = v_leave,
    [HD_SIGNAL_PING] = v_ping,
    [HD_SIGNAL_TRACK_SETTINGS] = v_track_settings,
    [HD_SIGNAL_JOINED] = v_joined,
    [HD_SIGNAL_PUBLISH_ANSWER] = v_publish_answer,
    [HD_SIGNAL_SUBSCRIBER_OFFER] = v_subscriber_offer,
    [HD_SIGNAL_PARTICIPANT_JOINED] = v_participant_msg,
    [HD_SIGNAL_PARTICIPANT_LEFT] = v_participant_msg,
    [HD_SIGNAL_PARTICIPANT_UPDATED] = v_participant_msg,
    [HD_SIGNAL_TRACK_PUBLISHED] = v_track_published,
    [HD_SIGNAL_TRACK_UNPUBLISHED] = v_track_unpublished,
    [HD_SIGNAL_TRACK_MUTED] = v_track_muted,
    [HD_SIGNAL_ACTIVE_SPEAKERS] = v_active_speakers,
    [HD_SIGNAL_DATA_RECV] = v_data_recv,
    [HD_SIGNAL_PONG] = v_ping,
    [HD_SIGNAL_ERROR] = v_error,
    [HD_SIGNAL_LEFT] = v_left,
    [HD_SIGNAL_STREAM_STATE] = v_stream_state,
    [HD_SIGNAL_PUBLISH_LAYERS] = v_publish_layers,
    [HD_SIGNAL_CONNECTION_QUALITY] = v_connection_quality,
    [HD_SIGNAL_TRACK_REFUSED] = v_track_refused,
};

/* Validates a whole message object sent by `from` into m. */
static int validate(vctx_t *v, json_t *root, hd_signal_dir_t from, hd_signal_msg_t *m) {
  const char *tname;
  json_t *idv = vget(root, "id");
  if (idv) {
    if (!json_is_string(idv)) return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "field \"id\" must be a string");
    size_t n = json_string_length(idv);
    if (n < 1 || n > HD_SIGNAL_MAX_ID)
      return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "field \"id\" must be 1..%d bytes", HD_SIGNAL_MAX_ID);
    m->id = json_string_value(idv);
    memcpy(v->err->id, m->id, n + 1); /* so an error reply can echo it */
  }
  if (vstr(v, root, "", "type", 1, 1, 64, &tname) < 0) {
    if (v->err->code == HD_SIGNAL_ERR_TOO_LARGE) {
      v->err->code = HD_SIGNAL_ERR_BAD_REQUEST;
      snprintf(v->err->message, sizeof v->err->message, "unknown message type");
    }
    return -1;
  }
  for (int t = 1; t < HD_SIGNAL_TYPE_COUNT; t++)
    if (hd_sig_types[t].dir == from && strcmp(hd_sig_types[t].name, tname) == 0) {
      m->type = (hd_signal_type_t)t;
      v->err->type = m->type;
      return VALIDATORS[t](v, root, m);
    }
  return vfail(v, HD_SIGNAL_ERR_BAD_REQUEST, "unknown message type \"%s\"", tname);
}

void hd_sig_err_reset(hd_signal_error_t *e) { memset(e, 0, sizeof *e); }

int hd_signal_parse(const char *text, size_t len, hd_signal_dir_t from, hd_signal_msg_t *out,
                    hd_signal_error_t *err) {
  hd_signal_error_t scratch;
  json_error_t je;
  vctx_t v = {0};
  if (!err) err = &scratch;
  hd_sig_err_reset(err);
  if (!out) return HD_EINVAL;
  memset(out, 0, sizeof *out);
  if (!text || (from != HD_SIGNAL_FROM_CLIENT && from != HD_SIGNAL_FROM_NODE)) {
    err->code = HD_SIGNAL_ERR_INTERNAL;
    snprintf(err->message, sizeof err->message, "invalid arguments");
    return HD_EINVAL;
  }
  v.err = err;
  if (len > hd_sig_dir_cap(from)) {
    vfail(&v, HD_SIGNAL_ERR_TOO_LARGE, "message is %zu bytes; the limit is %zu", len, hd_sig_dir_cap(from));
    return HD_EPROTO;
  }
  v.st = calloc(1, sizeof *v.st);
  if (!v.st) {
    vfail(&v, HD_SIGNAL_ERR_INTERNAL, "out of memory");
    return HD_ENOMEM;
  }
  /* Strict JSON: UTF-8 checked by jansson, no "\u0000" (JSON_ALLOW_NUL off),
   * no duplicate keys (a second "type" must not smuggle another meaning past a
   * proxy that reads the first), nothing after the value. */
  v.st->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (!v.st->root) {
    vfail(&v, HD_SIGNAL_ERR_BAD_REQUEST, "malformed JSON at byte %d: %s", je.position, je.text);
    goto fail;
  }
  if (!json_is_object(v.st->root)) {
    vfail(&v, HD_SIGNAL_ERR_BAD_REQUEST, "message must be a JSON object");
    goto fail;
  }
  if (validate(&v, v.st->root, from, out) < 0) goto fail;
  out->priv_ = v.st;
  return 0;
fail:
  store_free(v.st);
  memset(out, 0, sizeof *out);
  return v.oom ? HD_ENOMEM : HD_EPROTO;
}

void hd_signal_msg_free(hd_signal_msg_t *m) {
  if (!m) return;
  store_free(m->priv_);
  memset(m, 0, sizeof *m);
}

int hd_sig_validate_tree(json_t *o, hd_signal_dir_t from, hd_signal_error_t *err) {
  store_t *st = calloc(1, sizeof *st);
  if (!st) return HD_ENOMEM;
  hd_signal_msg_t tmp;
  memset(&tmp, 0, sizeof tmp);
  vctx_t v = {st, err, 0};
  int vr = validate(&v, o, from, &tmp);
  store_free(st); /* frees the temp arrays only; st->root is NULL */
  if (vr < 0) return v.oom ? HD_ENOMEM : HD_EINVAL;
  return 0;
}
