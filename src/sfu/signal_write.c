/* Room signaling messages, the writing side (signal.h, docs/protocol.md):
 * builders turn a caller-filled struct into a jansson tree, run the parser's
 * own validator on it (signal.c) and dump it, so whatever the node writes is
 * exactly what a client's parser accepts. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/err.h"
#include "sfu/signal.h"
#include "sfu/signal_internal.h"

/* ---------------------------------------------------------------- builder */

/* Builds a jansson tree from a caller-filled struct. Caps on array counts are
 * checked here (before walking caller arrays); everything else is left to the
 * validator that runs on the result. */
typedef struct {
  hd_signal_error_t *err;
  int rc; /* 0, HD_EINVAL or HD_ENOMEM */
} bctx_t;

static void bfail(bctx_t *b, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void bfail(bctx_t *b, int rc, const char *fmt, ...) {
  if (b->rc) return;
  va_list ap;
  va_start(ap, fmt);
  b->rc = rc;
  b->err->code = rc == HD_ENOMEM ? HD_SIGNAL_ERR_INTERNAL : HD_SIGNAL_ERR_BAD_REQUEST;
  vsnprintf(b->err->message, sizeof b->err->message, fmt, ap);
  va_end(ap);
}

static void bset(bctx_t *b, json_t *o, const char *key, json_t *val) {
  if (!val) {
    bfail(b, HD_ENOMEM, "out of memory");
    return;
  }
  if (!o || json_object_set_new(o, key, val) < 0) {
    if (o)
      bfail(b, HD_ENOMEM, "out of memory");
    else
      json_decref(val);
  }
}

/* NULL s: member left out (the validator reports it if it was required). */
static void bstr(bctx_t *b, json_t *o, const char *key, const char *s) {
  if (!s) return;
  if (!hd_sig_utf8_valid(s)) {
    bfail(b, HD_EINVAL, "field \"%s\" is not valid UTF-8", key);
    return;
  }
  bset(b, o, key, json_string(s));
}

static void bbool(bctx_t *b, json_t *o, const char *key, int x) { bset(b, o, key, json_boolean(x)); }

static void bint(bctx_t *b, json_t *o, const char *key, int64_t x) {
  bset(b, o, key, json_integer((json_int_t)x));
}

static void benum(bctx_t *b, json_t *o, const char *key, const char *const *names, size_t n, int x) {
  if (x < 0 || (size_t)x >= n) {
    bfail(b, HD_EINVAL, "field \"%s\" has an unknown value %d", key, x);
    return;
  }
  bstr(b, o, key, names[x]);
}

/* New array for n entries of a caller array p; NULL (and an error) on misuse. */
static json_t *barr(bctx_t *b, const char *key, const void *p, size_t n, size_t maxn) {
  if (n > maxn) {
    bfail(b, HD_EINVAL, "field \"%s\" has more than %zu entries", key, maxn);
    return NULL;
  }
  if (n && !p) {
    bfail(b, HD_EINVAL, "field \"%s\": NULL array with %zu entries", key, n);
    return NULL;
  }
  json_t *a = json_array();
  if (!a) bfail(b, HD_ENOMEM, "out of memory");
  return a;
}

static void bappend(bctx_t *b, json_t *a, json_t *x) {
  if (!x || json_array_append_new(a, x) < 0) bfail(b, HD_ENOMEM, "out of memory");
}

static json_t *bobj(bctx_t *b) {
  json_t *o = json_object();
  if (!o) bfail(b, HD_ENOMEM, "out of memory");
  return o;
}

static void bstr_array(bctx_t *b, json_t *o, const char *key, const char *const *s, size_t n, size_t maxn) {
  json_t *a = barr(b, key, s, n, maxn);
  if (!a) return;
  for (size_t i = 0; i < n && !b->rc; i++) {
    if (!s[i]) {
      bfail(b, HD_EINVAL, "field \"%s[%zu]\" is NULL", key, i);
      break;
    }
    if (!hd_sig_utf8_valid(s[i])) {
      bfail(b, HD_EINVAL, "field \"%s[%zu]\" is not valid UTF-8", key, i);
      break;
    }
    bappend(b, a, json_string(s[i]));
  }
  bset(b, o, key, a);
}

static json_t *btrack(bctx_t *b, const hd_signal_track_t *t) {
  json_t *o = bobj(b);
  bstr(b, o, "sid", t->sid);
  benum(b, o, "kind", hd_sig_kinds, NELEM(hd_sig_kinds), (int)t->kind);
  benum(b, o, "source", hd_sig_sources, NELEM(hd_sig_sources), (int)t->source);
  bbool(b, o, "muted", t->muted);
  bint(b, o, "width", t->width);
  bint(b, o, "height", t->height);
  bstr(b, o, "codec", t->codec ? t->codec : "");
  return o;
}

static json_t *bparticipant(bctx_t *b, const hd_signal_participant_t *p) {
  json_t *o = bobj(b);
  bstr(b, o, "sid", p->sid);
  bstr(b, o, "identity", p->identity);
  bstr(b, o, "name", p->name ? p->name : "");
  bstr(b, o, "metadata", p->metadata ? p->metadata : "");
  bint(b, o, "joined_at", p->joined_at);
  json_t *a = barr(b, "tracks", p->tracks, p->n_tracks, HD_SIGNAL_MAX_TRACKS);
  for (size_t i = 0; a && i < p->n_tracks && !b->rc; i++)
    bappend(b, a, btrack(b, &p->tracks[i]));
  if (a) bset(b, o, "tracks", a);
  if (p->has_permissions) {
    json_t *po = bobj(b);
    bbool(b, po, "can_publish", p->permissions.can_publish);
    bbool(b, po, "can_subscribe", p->permissions.can_subscribe);
    bbool(b, po, "can_publish_data", p->permissions.can_publish_data);
    bbool(b, po, "room_admin", p->permissions.room_admin);
    bbool(b, po, "hidden", p->permissions.hidden);
    bset(b, o, "permissions", po);
  }
  return o;
}

static void build_body(bctx_t *b, json_t *o, const hd_signal_msg_t *m) {
  json_t *a;
  switch (m->type) {
  case HD_SIGNAL_JOIN:
    bstr(b, o, "token", m->join.token);
    bbool(b, o, "auto_subscribe", m->join.auto_subscribe);
    bstr(b, o, "name", m->join.name);
    bstr(b, o, "metadata", m->join.metadata);
    bint(b, o, "protocol", m->join.protocol ? m->join.protocol : HD_SIGNAL_PROTOCOL_VERSION);
    if (m->join.flexfec) bbool(b, o, "flexfec", 1);
    break;
  case HD_SIGNAL_PUBLISH_OFFER:
    bstr(b, o, "sdp", m->publish_offer.sdp);
    a = barr(b, "tracks", m->publish_offer.tracks, m->publish_offer.n_tracks, HD_SIGNAL_MAX_TRACKS);
    for (size_t i = 0; a && i < m->publish_offer.n_tracks && !b->rc; i++) {
      const hd_signal_pub_track_t *t = &m->publish_offer.tracks[i];
      json_t *e = bobj(b);
      bstr(b, e, "cid", t->cid);
      bstr(b, e, "mid", t->mid);
      benum(b, e, "kind", hd_sig_kinds, NELEM(hd_sig_kinds), (int)t->kind);
      benum(b, e, "source", hd_sig_sources, NELEM(hd_sig_sources), (int)t->source);
      bbool(b, e, "muted", t->muted);
      if (t->width) bint(b, e, "width", t->width);
      if (t->height) bint(b, e, "height", t->height);
      bappend(b, a, e);
    }
    if (a) bset(b, o, "tracks", a);
    break;
  case HD_SIGNAL_SUBSCRIBER_ANSWER: bstr(b, o, "sdp", m->subscriber_answer.sdp); break;
  case HD_SIGNAL_SUBSCRIBE:
  case HD_SIGNAL_UNSUBSCRIBE:
    bstr_array(b, o, "track_sids", m->subscribe.track_sids, m->subscribe.n_track_sids,
               HD_SIGNAL_MAX_TRACK_SIDS);
    break;
  case HD_SIGNAL_MUTE:
    bstr(b, o, "track_sid", m->mute.track_sid);
    bbool(b, o, "muted", m->mute.muted);
    break;
  case HD_SIGNAL_UPDATE_METADATA:
    bstr(b, o, "metadata", m->update_metadata.metadata);
    bstr(b, o, "name", m->update_metadata.name);
    break;
  case HD_SIGNAL_DATA:
    bstr(b, o, "payload", m->data.payload);
    if (m->data.n_to) bstr_array(b, o, "to", m->data.to, m->data.n_to, HD_SIGNAL_MAX_TO);
    break;
  case HD_SIGNAL_LEAVE: break;
  case HD_SIGNAL_PING:
  case HD_SIGNAL_PONG: bint(b, o, "t", m->ping.t); break;
  case HD_SIGNAL_JOINED: {
    hd_signal_participant_t me = m->joined.participant;
    me.has_permissions = 1; /* always present for the joiner */
    bset(b, o, "participant", bparticipant(b, &me));
    json_t *r = bobj(b);
    bstr(b, r, "name", m->joined.room.name);
    bstr(b, r, "sid", m->joined.room.sid);
    bint(b, r, "created_at", m->joined.room.created_at);
    bint(b, r, "max_participants", m->joined.room.max_participants);
    bset(b, o, "room", r);
    a = barr(b, "participants", m->joined.participants, m->joined.n_participants, HD_SIGNAL_MAX_PARTICIPANTS);
    for (size_t i = 0; a && i < m->joined.n_participants && !b->rc; i++)
      bappend(b, a, bparticipant(b, &m->joined.participants[i]));
    if (a) bset(b, o, "participants", a);
    a = barr(b, "ice_servers", m->joined.ice_servers, m->joined.n_ice_servers, HD_SIGNAL_MAX_ICE_SERVERS);
    for (size_t i = 0; a && i < m->joined.n_ice_servers && !b->rc; i++) {
      const hd_signal_ice_server_t *s = &m->joined.ice_servers[i];
      json_t *e = bobj(b);
      bstr_array(b, e, "urls", s->urls, s->n_urls, HD_SIGNAL_MAX_URLS);
      bstr(b, e, "username", s->username);
      bstr(b, e, "credential", s->credential);
      bappend(b, a, e);
    }
    if (a) bset(b, o, "ice_servers", a);
    bint(b, o, "ping_interval", m->joined.ping_interval);
    bint(b, o, "ping_timeout", m->joined.ping_timeout);
    bint(b, o, "protocol", m->joined.protocol ? m->joined.protocol : HD_SIGNAL_PROTOCOL_VERSION);
    break;
  }
  case HD_SIGNAL_PUBLISH_ANSWER:
    bstr(b, o, "sdp", m->publish_answer.sdp);
    a = barr(b, "tracks", m->publish_answer.tracks, m->publish_answer.n_tracks, HD_SIGNAL_MAX_TRACKS);
    for (size_t i = 0; a && i < m->publish_answer.n_tracks && !b->rc; i++) {
      json_t *e = bobj(b);
      bstr(b, e, "cid", m->publish_answer.tracks[i].cid);
      bstr(b, e, "sid", m->publish_answer.tracks[i].sid);
      bappend(b, a, e);
    }
    if (a) bset(b, o, "tracks", a);
    break;
  case HD_SIGNAL_SUBSCRIBER_OFFER:
    bstr(b, o, "sdp", m->subscriber_offer.sdp);
    a = barr(b, "tracks", m->subscriber_offer.tracks, m->subscriber_offer.n_tracks, HD_SIGNAL_MAX_TRACK_SIDS);
    for (size_t i = 0; a && i < m->subscriber_offer.n_tracks && !b->rc; i++) {
      json_t *e = bobj(b);
      bstr(b, e, "mid", m->subscriber_offer.tracks[i].mid);
      bstr(b, e, "track_sid", m->subscriber_offer.tracks[i].track_sid);
      bstr(b, e, "participant_sid", m->subscriber_offer.tracks[i].participant_sid);
      bappend(b, a, e);
    }
    if (a) bset(b, o, "tracks", a);
    break;
  case HD_SIGNAL_PARTICIPANT_JOINED:
  case HD_SIGNAL_PARTICIPANT_LEFT:
  case HD_SIGNAL_PARTICIPANT_UPDATED:
    bset(b, o, "participant", bparticipant(b, &m->participant_joined.participant));
    break;
  case HD_SIGNAL_TRACK_PUBLISHED:
    bstr(b, o, "participant_sid", m->track_published.participant_sid);
    bset(b, o, "track", btrack(b, &m->track_published.track));
    break;
  case HD_SIGNAL_TRACK_UNPUBLISHED:
    bstr(b, o, "participant_sid", m->track_unpublished.participant_sid);
    bstr(b, o, "track_sid", m->track_unpublished.track_sid);
    break;
  case HD_SIGNAL_TRACK_MUTED:
    bstr(b, o, "participant_sid", m->track_muted.participant_sid);
    bstr(b, o, "track_sid", m->track_muted.track_sid);
    bbool(b, o, "muted", m->track_muted.muted);
    break;
  case HD_SIGNAL_ACTIVE_SPEAKERS:
    a = barr(b, "speakers", m->active_speakers.speakers, m->active_speakers.n_speakers,
             HD_SIGNAL_MAX_SPEAKERS);
    for (size_t i = 0; a && i < m->active_speakers.n_speakers && !b->rc; i++) {
      json_t *e = bobj(b);
      bstr(b, e, "sid", m->active_speakers.speakers[i].sid);
      bset(b, e, "level", json_real(m->active_speakers.speakers[i].level));
      bappend(b, a, e);
    }
    if (a) bset(b, o, "speakers", a);
    break;
  case HD_SIGNAL_DATA_RECV:
    bstr(b, o, "from", m->data_recv.from);
    bstr(b, o, "from_sid", m->data_recv.from_sid);
    bstr(b, o, "payload", m->data_recv.payload);
    bstr(b, o, "channel", m->data_recv.channel);
    if (m->data_recv.binary) bbool(b, o, "binary", 1);
    break;
  case HD_SIGNAL_ERROR:
    if (m->error.code <= HD_SIGNAL_ERR_NONE || m->error.code >= HD_SIGNAL_ERR_COUNT) {
      bfail(b, HD_EINVAL, "field \"code\" has an unknown value %d", (int)m->error.code);
      break;
    }
    bint(b, o, "code", hd_sig_errs[m->error.code].status);
    bstr(b, o, "reason", hd_sig_errs[m->error.code].reason);
    bstr(b, o, "message", m->error.message ? m->error.message : "");
    if (m->error.retry_after > 0) bint(b, o, "retry_after", m->error.retry_after);
    if (m->error.redirect) bstr(b, o, "redirect", m->error.redirect);
    break;
  case HD_SIGNAL_LEFT:
    benum(b, o, "reason", hd_sig_left_reasons, HD_SIGNAL_LEFT_COUNT, (int)m->left.reason);
    bstr(b, o, "message", m->left.message);
    if (m->left.redirect) bstr(b, o, "redirect", m->left.redirect);
    break;
  case HD_SIGNAL_TRACK_SETTINGS:
    bstr_array(b, o, "track_sids", m->track_settings.track_sids, m->track_settings.n_track_sids,
               HD_SIGNAL_MAX_TRACK_SIDS);
    bbool(b, o, "visible", m->track_settings.visible);
    if (m->track_settings.width) bint(b, o, "width", m->track_settings.width);
    if (m->track_settings.height) bint(b, o, "height", m->track_settings.height);
    if (m->track_settings.pinned) bbool(b, o, "pinned", 1);
    if (m->track_settings.max_spatial_layer >= 0)
      bint(b, o, "max_spatial_layer", m->track_settings.max_spatial_layer);
    if (m->track_settings.max_temporal_layer >= 0)
      bint(b, o, "max_temporal_layer", m->track_settings.max_temporal_layer);
    break;
  case HD_SIGNAL_STREAM_STATE:
    bstr(b, o, "participant_sid", m->stream_state.participant_sid);
    bstr(b, o, "track_sid", m->stream_state.track_sid);
    benum(b, o, "state", hd_sig_stream_states, NELEM(hd_sig_stream_states), (int)m->stream_state.state);
    if (m->stream_state.state == HD_SIGNAL_STREAM_PAUSED) {
      if (m->stream_state.reason <= HD_SIGNAL_PAUSE_NONE)
        bfail(b, HD_EINVAL, "field \"reason\": a paused stream needs one");
      else
        benum(b, o, "reason", hd_sig_pause_reasons, HD_SIGNAL_PAUSE_COUNT, (int)m->stream_state.reason);
    } else {
      bstr(b, o, "rid", m->stream_state.rid && *m->stream_state.rid ? m->stream_state.rid : NULL);
      if (m->stream_state.width) bint(b, o, "width", m->stream_state.width);
      if (m->stream_state.height) bint(b, o, "height", m->stream_state.height);
    }
    break;
  case HD_SIGNAL_PUBLISH_LAYERS:
    bstr(b, o, "track_sid", m->publish_layers.track_sid);
    bstr_array(b, o, "active_rids", m->publish_layers.active_rids, m->publish_layers.n_active_rids,
               HD_SIGNAL_MAX_LAYERS);
    break;
  case HD_SIGNAL_TRACK_REFUSED:
    bstr(b, o, "track_sid", m->track_refused.track_sid);
    bstr(b, o, "codec", m->track_refused.codec ? m->track_refused.codec : "");
    bstr(b, o, "fmtp", m->track_refused.fmtp ? m->track_refused.fmtp : "");
    bstr(b, o, "identity", m->track_refused.identity);
    break;
  case HD_SIGNAL_CONNECTION_QUALITY:
    a = barr(b, "updates", m->connection_quality.updates, m->connection_quality.n_updates,
             HD_SIGNAL_MAX_TRACK_SIDS);
    for (size_t i = 0; a && i < m->connection_quality.n_updates && !b->rc; i++) {
      json_t *e = bobj(b);
      bstr(b, e, "participant_sid", m->connection_quality.updates[i].participant_sid);
      benum(b, e, "quality", hd_sig_qualities, NELEM(hd_sig_qualities),
            (int)m->connection_quality.updates[i].quality);
      bappend(b, a, e);
    }
    if (a) bset(b, o, "updates", a);
    break;
  default: bfail(b, HD_EINVAL, "unknown message type %d", (int)m->type);
  }
}

/* Struct -> checked tree. Returns the tree or NULL with *rc set. */
static json_t *build_checked(const hd_signal_msg_t *m, hd_signal_error_t *err, int *rc) {
  bctx_t b = {err, 0};
  *rc = 0;
  hd_sig_err_reset(err);
  if (!m) {
    bfail(&b, HD_EINVAL, "no message");
    *rc = b.rc;
    return NULL;
  }
  json_t *o = bobj(&b);
  if (o && m->type > HD_SIGNAL_NONE && m->type < HD_SIGNAL_TYPE_COUNT)
    bstr(&b, o, "type", hd_sig_types[m->type].name);
  bstr(&b, o, "id", m->id);
  if (!b.rc) build_body(&b, o, m);
  if (b.rc) {
    json_decref(o);
    *rc = b.rc;
    return NULL;
  }
  /* The same validator the receiver runs: nothing leaves that a peer rejects. */
  int vr = hd_sig_validate_tree(o, hd_sig_types[m->type].dir, err);
  if (vr < 0) {
    json_decref(o);
    *rc = vr;
    return NULL;
  }
  hd_sig_err_reset(err);
  return o;
}

int hd_signal_check(const hd_signal_msg_t *m, hd_signal_error_t *err) {
  hd_signal_error_t scratch;
  int rc;
  json_t *o = build_checked(m, err ? err : &scratch, &rc);
  json_decref(o);
  return rc;
}

int hd_signal_write(const hd_signal_msg_t *m, char *out, size_t cap) {
  hd_signal_error_t err;
  int rc;
  if (!out || cap == 0) return HD_EINVAL;
  out[0] = 0;
  json_t *o = build_checked(m, &err, &rc);
  if (!o) return rc;
  /* Precision 6 is plenty for levels and keeps 0.1 from printing as 0.10000000000000001. */
  size_t n = json_dumpb(o, out, cap, JSON_COMPACT | JSON_REAL_PRECISION(6));
  json_decref(o);
  if (n == 0) {
    out[0] = 0;
    return HD_ENOMEM;
  }
  if (n > hd_sig_dir_cap(hd_sig_types[m->type].dir)) {
    out[0] = 0;
    return HD_EINVAL;
  }
  if (n >= cap) {
    out[0] = 0;
    return HD_ENOSPC;
  }
  out[n] = 0;
  return (int)n;
}

/* ---------------------------------------------------------------- convenience */

#define MSG(t)                                                                                               \
  hd_signal_msg_t m;                                                                                         \
  memset(&m, 0, sizeof m);                                                                                   \
  m.type = (t)

int hd_signal_write_join(const char *id, const char *token, int auto_subscribe, const char *name,
                         const char *metadata, char *out, size_t cap) {
  MSG(HD_SIGNAL_JOIN);
  m.id = id;
  m.join.token = token;
  m.join.auto_subscribe = auto_subscribe;
  m.join.name = name;
  m.join.metadata = metadata;
  m.join.protocol = HD_SIGNAL_PROTOCOL_VERSION;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_publish_offer(const char *id, const char *sdp, const hd_signal_pub_track_t *tracks,
                                  size_t n, char *out, size_t cap) {
  MSG(HD_SIGNAL_PUBLISH_OFFER);
  m.id = id;
  m.publish_offer.sdp = sdp;
  m.publish_offer.tracks = tracks;
  m.publish_offer.n_tracks = n;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_subscriber_answer(const char *id, const char *sdp, char *out, size_t cap) {
  MSG(HD_SIGNAL_SUBSCRIBER_ANSWER);
  m.id = id;
  m.subscriber_answer.sdp = sdp;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_subscribe(const char *id, int subscribe, const char *const *track_sids, size_t n,
                              char *out, size_t cap) {
  MSG(subscribe ? HD_SIGNAL_SUBSCRIBE : HD_SIGNAL_UNSUBSCRIBE);
  m.id = id;
  m.subscribe.track_sids = track_sids;
  m.subscribe.n_track_sids = n;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_mute(const char *id, const char *track_sid, int muted, char *out, size_t cap) {
  MSG(HD_SIGNAL_MUTE);
  m.id = id;
  m.mute.track_sid = track_sid;
  m.mute.muted = muted != 0;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_update_metadata(const char *id, const char *metadata, const char *name, char *out,
                                    size_t cap) {
  MSG(HD_SIGNAL_UPDATE_METADATA);
  m.id = id;
  m.update_metadata.metadata = metadata;
  m.update_metadata.name = name;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_data(const char *id, const char *payload, const char *const *to, size_t n_to, char *out,
                         size_t cap) {
  MSG(HD_SIGNAL_DATA);
  m.id = id;
  m.data.payload = payload;
  m.data.to = to;
  m.data.n_to = n_to;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_leave(const char *id, char *out, size_t cap) {
  MSG(HD_SIGNAL_LEAVE);
  m.id = id;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_ping(const char *id, int64_t t, char *out, size_t cap) {
  MSG(HD_SIGNAL_PING);
  m.id = id;
  m.ping.t = t;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_publish_answer(const char *id, const char *sdp, const hd_signal_track_ref_t *tracks,
                                   size_t n, char *out, size_t cap) {
  MSG(HD_SIGNAL_PUBLISH_ANSWER);
  m.id = id;
  m.publish_answer.sdp = sdp;
  m.publish_answer.tracks = tracks;
  m.publish_answer.n_tracks = n;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_subscriber_offer(const char *sdp, const hd_signal_sub_track_t *tracks, size_t n,
                                     char *out, size_t cap) {
  MSG(HD_SIGNAL_SUBSCRIBER_OFFER);
  m.subscriber_offer.sdp = sdp;
  m.subscriber_offer.tracks = tracks;
  m.subscriber_offer.n_tracks = n;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_participant(hd_signal_type_t type, const hd_signal_participant_t *p, char *out,
                                size_t cap) {
  if ((type != HD_SIGNAL_PARTICIPANT_JOINED && type != HD_SIGNAL_PARTICIPANT_LEFT &&
       type != HD_SIGNAL_PARTICIPANT_UPDATED) ||
      !p)
    return HD_EINVAL;
  MSG(type);
  m.participant_joined.participant = *p;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_track_published(const char *participant_sid, const hd_signal_track_t *t, char *out,
                                    size_t cap) {
  if (!t) return HD_EINVAL;
  MSG(HD_SIGNAL_TRACK_PUBLISHED);
  m.track_published.participant_sid = participant_sid;
  m.track_published.track = *t;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_track_unpublished(const char *participant_sid, const char *track_sid, char *out,
                                      size_t cap) {
  MSG(HD_SIGNAL_TRACK_UNPUBLISHED);
  m.track_unpublished.participant_sid = participant_sid;
  m.track_unpublished.track_sid = track_sid;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_track_muted(const char *participant_sid, const char *track_sid, int muted, char *out,
                                size_t cap) {
  MSG(HD_SIGNAL_TRACK_MUTED);
  m.track_muted.participant_sid = participant_sid;
  m.track_muted.track_sid = track_sid;
  m.track_muted.muted = muted != 0;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_active_speakers(const hd_signal_speaker_t *s, size_t n, char *out, size_t cap) {
  MSG(HD_SIGNAL_ACTIVE_SPEAKERS);
  m.active_speakers.speakers = s;
  m.active_speakers.n_speakers = n;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_data_recv(const char *from, const char *from_sid, const char *payload, char *out,
                              size_t cap) {
  MSG(HD_SIGNAL_DATA_RECV);
  m.data_recv.from = from;
  m.data_recv.from_sid = from_sid;
  m.data_recv.payload = payload;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_data_recv_dc(const char *from, const char *from_sid, const char *payload,
                                 const char *channel, int binary, char *out, size_t cap) {
  MSG(HD_SIGNAL_DATA_RECV);
  m.data_recv.from = from;
  m.data_recv.from_sid = from_sid;
  m.data_recv.payload = payload;
  m.data_recv.channel = channel;
  m.data_recv.binary = binary;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_pong(const char *id, int64_t t, char *out, size_t cap) {
  MSG(HD_SIGNAL_PONG);
  m.id = id;
  m.pong.t = t;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_error(const char *id, hd_signal_errcode_t code, const char *message, char *out,
                          size_t cap) {
  return hd_signal_write_error_retry(id, code, message, 0, out, cap);
}

int hd_signal_write_error_retry(const char *id, hd_signal_errcode_t code, const char *message,
                                int retry_after, char *out, size_t cap) {
  char text[HD_SIGNAL_MAX_TEXT + 1], idbuf[HD_SIGNAL_MAX_ID + 1];
  MSG(HD_SIGNAL_ERROR);
  /* An error reply must go out even when what it quotes is junk: clean the
   * text to valid UTF-8 within the cap, and drop an id that is unusable. */
  hd_sig_utf8_sanitize(message ? message : "", text, sizeof text);
  if (id && *id && strlen(id) <= HD_SIGNAL_MAX_ID) {
    hd_sig_utf8_sanitize(id, idbuf, sizeof idbuf);
    if (strcmp(idbuf, id) == 0) m.id = id;
  }
  m.error.code = code;
  m.error.message = text;
  m.error.retry_after = retry_after;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_parse_error(const hd_signal_error_t *e, char *out, size_t cap) {
  if (!e) return HD_EINVAL;
  hd_signal_errcode_t code = e->code == HD_SIGNAL_ERR_NONE ? HD_SIGNAL_ERR_BAD_REQUEST : e->code;
  return hd_signal_write_error(e->id, code, e->message, out, cap);
}

int hd_signal_write_left(hd_signal_left_reason_t reason, const char *message, char *out, size_t cap) {
  MSG(HD_SIGNAL_LEFT);
  m.left.reason = reason;
  m.left.message = message;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_track_settings(const char *id, const char *const *track_sids, size_t n, int visible,
                                   int width, int height, int pinned, char *out, size_t cap) {
  return hd_signal_write_track_settings_max(id, track_sids, n, visible, width, height, pinned, -1, -1, out,
                                            cap);
}

int hd_signal_write_track_settings_max(const char *id, const char *const *track_sids, size_t n, int visible,
                                       int width, int height, int pinned, int max_spatial, int max_temporal,
                                       char *out, size_t cap) {
  MSG(HD_SIGNAL_TRACK_SETTINGS);
  m.track_settings.max_spatial_layer = max_spatial;
  m.track_settings.max_temporal_layer = max_temporal;
  m.id = id;
  m.track_settings.track_sids = track_sids;
  m.track_settings.n_track_sids = n;
  m.track_settings.visible = visible != 0;
  m.track_settings.width = width;
  m.track_settings.height = height;
  m.track_settings.pinned = pinned != 0;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_stream_state(const char *participant_sid, const char *track_sid,
                                 hd_signal_pause_reason_t paused, const char *rid, int width, int height,
                                 char *out, size_t cap) {
  MSG(HD_SIGNAL_STREAM_STATE);
  m.stream_state.participant_sid = participant_sid;
  m.stream_state.track_sid = track_sid;
  m.stream_state.state = paused != HD_SIGNAL_PAUSE_NONE ? HD_SIGNAL_STREAM_PAUSED : HD_SIGNAL_STREAM_ACTIVE;
  m.stream_state.reason = paused;
  m.stream_state.rid = rid;
  m.stream_state.width = width;
  m.stream_state.height = height;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_publish_layers(const char *track_sid, const char *const *active_rids, size_t n, char *out,
                                   size_t cap) {
  MSG(HD_SIGNAL_PUBLISH_LAYERS);
  m.publish_layers.track_sid = track_sid;
  m.publish_layers.active_rids = active_rids;
  m.publish_layers.n_active_rids = n;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_track_refused(const char *track_sid, const char *codec, const char *fmtp,
                                  const char *identity, char *out, size_t cap) {
  MSG(HD_SIGNAL_TRACK_REFUSED);
  m.track_refused.track_sid = track_sid;
  m.track_refused.codec = codec;
  m.track_refused.fmtp = fmtp;
  m.track_refused.identity = identity;
  return hd_signal_write(&m, out, cap);
}

int hd_signal_write_connection_quality(const hd_signal_quality_update_t *u, size_t n, char *out, size_t cap) {
  MSG(HD_SIGNAL_CONNECTION_QUALITY);
  m.connection_quality.updates = u;
  m.connection_quality.n_updates = n;
  return hd_signal_write(&m, out, cap);
}

const char *hd_signal_quality_name(hd_signal_quality_t q) {
  return ((int)q >= 0 && (size_t)q < NELEM(hd_sig_qualities)) ? hd_sig_qualities[q] : "?";
}
