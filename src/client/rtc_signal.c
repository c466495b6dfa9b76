/* Client of the /rtc rooms protocol (see rtc_signal.h, docs/protocol.md
 * "Rooms"): JSON (RFC 8259) texts built and read with jansson; room state and
 * the ping/pong keepalive; optional wiring of the publisher and subscriber
 * PeerConnections (two PCs per participant, one offerer each, so no glare). */
#include "client/rtc_signal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

#define SDP_MAX 65536
#define DEFAULT_PING HD_SEC(10)
#define DEFAULT_PING_TIMEOUT HD_SEC(30)

typedef struct {
  hd_rtc_signal_event_t ev;
  json_t *msg; /* keeps the event's strings alive */
} qev_t;

struct hd_rtc_signal {
  hd_rtc_signal_config_t cfg;
  char *token, *name, *metadata;
  int state;
  char own_sid[HD_RTC_SIGNAL_SID_MAX], room[128];
  hd_rtc_signal_participant_t *parts; /* HD_RTC_SIGNAL_MAX_PARTICIPANTS */
  int n_parts;
  hd_rtc_signal_sub_track_t *subs; /* HD_RTC_SIGNAL_MAX_SUB_TRACKS */
  int n_subs;
  /* tracks the app gave settings before the subscriber offer carried them:
   * no automatic view-size message replaces theirs (a ring, the newest kept) */
  char app_set[HD_RTC_SIGNAL_MAX_SUB_TRACKS][HD_RTC_SIGNAL_SID_MAX];
  int n_app_set, app_set_next;
  struct {
    char cid[HD_RTC_SIGNAL_SID_MAX], sid[HD_RTC_SIGNAL_SID_MAX];
  } pubs[HD_RTC_SIGNAL_MAX_TRACKS];
  int n_pubs, publishing;
  char pub_id[16]; /* id of the outstanding publish_offer */
  /* queues */
  char *out[HD_RTC_SIGNAL_OUT_MAX];
  int out_head, out_n;
  qev_t ev[HD_RTC_SIGNAL_EV_MAX];
  int ev_head, ev_n;
  json_t *cur; /* json of the last event handed out */
  /* keepalive */
  hd_time_t ping_interval, ping_timeout, next_ping, last_rx;
  unsigned req_id;
  uint64_t bad, dropped;
};

static char *dupstr(const char *s) { return s ? strdup(s) : NULL; }

int hd_rtc_signal_new(hd_rtc_signal_t **out, const hd_rtc_signal_config_t *cfg) {
  if (!out || !cfg || !cfg->token || !cfg->token[0] || strlen(cfg->token) > 4096) return HD_EINVAL;
  hd_rtc_signal_t *s = calloc(1, sizeof *s);
  if (!s) return HD_ENOMEM;
  s->cfg = *cfg;
  s->token = dupstr(cfg->token);
  s->name = dupstr(cfg->name);
  s->metadata = dupstr(cfg->metadata);
  s->parts = calloc(HD_RTC_SIGNAL_MAX_PARTICIPANTS, sizeof *s->parts);
  s->subs = calloc(HD_RTC_SIGNAL_MAX_SUB_TRACKS, sizeof *s->subs);
  if (!s->token || (cfg->name && !s->name) || (cfg->metadata && !s->metadata) || !s->parts || !s->subs) {
    hd_rtc_signal_free(s);
    return HD_ENOMEM;
  }
  s->ping_interval = DEFAULT_PING;
  s->ping_timeout = DEFAULT_PING_TIMEOUT;
  s->next_ping = HD_TIME_NEVER;
  *out = s;
  return 0;
}

void hd_rtc_signal_free(hd_rtc_signal_t *s) {
  if (!s) return;
  for (int i = 0; i < s->out_n; i++)
    free(s->out[(s->out_head + i) % HD_RTC_SIGNAL_OUT_MAX]);
  for (int i = 0; i < s->ev_n; i++)
    json_decref(s->ev[(s->ev_head + i) % HD_RTC_SIGNAL_EV_MAX].msg);
  json_decref(s->cur);
  free(s->token);
  free(s->name);
  free(s->metadata);
  free(s->parts);
  free(s->subs);
  free(s);
}

/* ---- queues ---- */

/* Queues a message (consumes the reference). Adds an "id" when with_id. */
static int send_json(hd_rtc_signal_t *s, json_t *m, int with_id) {
  if (!m) return HD_ENOMEM;
  if (s->out_n == HD_RTC_SIGNAL_OUT_MAX) {
    json_decref(m);
    return HD_ENOSPC;
  }
  if (with_id) {
    char id[16];
    snprintf(id, sizeof id, "c%u", ++s->req_id);
    json_object_set_new(m, "id", json_string(id));
  }
  char *t = json_dumps(m, JSON_COMPACT);
  json_decref(m);
  if (!t) return HD_ENOMEM;
  s->out[(s->out_head + s->out_n) % HD_RTC_SIGNAL_OUT_MAX] = t;
  s->out_n++;
  return 0;
}

size_t hd_rtc_signal_peek_len(const hd_rtc_signal_t *s) { return s->out_n ? strlen(s->out[s->out_head]) : 0; }

int hd_rtc_signal_poll(hd_rtc_signal_t *s, char *out, size_t cap) {
  if (!s->out_n) return 0;
  char *t = s->out[s->out_head];
  size_t n = strlen(t);
  if (n + 1 > cap) return HD_ENOSPC;
  memcpy(out, t, n + 1);
  free(t);
  s->out_head = (s->out_head + 1) % HD_RTC_SIGNAL_OUT_MAX;
  s->out_n--;
  return (int)n;
}

/* Queues an event; msg (may be NULL) is retained for its strings. */
static hd_rtc_signal_event_t *push_ev(hd_rtc_signal_t *s, int type, json_t *msg) {
  if (s->ev_n == HD_RTC_SIGNAL_EV_MAX) {
    s->dropped++;
    return NULL;
  }
  qev_t *q = &s->ev[(s->ev_head + s->ev_n) % HD_RTC_SIGNAL_EV_MAX];
  memset(q, 0, sizeof *q);
  q->ev.type = type;
  q->ev.participant_sid = q->ev.identity = q->ev.track_sid = q->ev.reason = q->ev.message = q->ev.id = "";
  q->msg = msg ? json_incref(msg) : NULL;
  s->ev_n++;
  return &q->ev;
}

int hd_rtc_signal_poll_event(hd_rtc_signal_t *s, hd_rtc_signal_event_t *ev) {
  json_decref(s->cur);
  s->cur = NULL;
  if (!s->ev_n) return 0;
  qev_t *q = &s->ev[s->ev_head];
  *ev = q->ev;
  s->cur = q->msg;
  s->ev_head = (s->ev_head + 1) % HD_RTC_SIGNAL_EV_MAX;
  s->ev_n--;
  return 1;
}

/* ---- state helpers ---- */

static const char *jstr(json_t *o, const char *k) {
  const char *v = json_string_value(json_object_get(o, k));
  return v ? v : "";
}

static int kind_of(const char *k) { return !strcmp(k, "audio") ? HD_PC_AUDIO : HD_PC_VIDEO; }

static hd_rtc_signal_participant_t *find_part(hd_rtc_signal_t *s, const char *sid, int *idx) {
  for (int i = 0; i < s->n_parts; i++)
    if (!strcmp(s->parts[i].sid, sid)) {
      if (idx) *idx = i;
      return &s->parts[i];
    }
  return NULL;
}

static void set_track(hd_rtc_signal_track_t *t, json_t *j) {
  snprintf(t->sid, sizeof t->sid, "%s", jstr(j, "sid"));
  t->kind = kind_of(jstr(j, "kind"));
  t->muted = json_is_true(json_object_get(j, "muted"));
  snprintf(t->source, sizeof t->source, "%s", jstr(j, "source"));
}

/* Adds or replaces a participant from its JSON object. */
static hd_rtc_signal_participant_t *upsert_part(hd_rtc_signal_t *s, json_t *j) {
  const char *sid = jstr(j, "sid");
  if (!sid[0]) return NULL;
  hd_rtc_signal_participant_t *p = find_part(s, sid, NULL);
  if (!p && s->n_parts < HD_RTC_SIGNAL_MAX_PARTICIPANTS) {
    p = &s->parts[s->n_parts++];
  } else if (!p && json_array_size(json_object_get(j, "tracks")) > 0) {
    /* full: someone who publishes takes the place of someone who does not —
     * a big room's joined list (newest first) would otherwise push out its
     * publishers, the only participants a client can subscribe to */
    for (int i = 0; i < s->n_parts && !p; i++)
      if (!s->parts[i].n_tracks) p = &s->parts[i];
  }
  if (!p) return NULL;
  memset(p, 0, sizeof *p);
  snprintf(p->sid, sizeof p->sid, "%s", sid);
  snprintf(p->identity, sizeof p->identity, "%s", jstr(j, "identity"));
  snprintf(p->name, sizeof p->name, "%s", jstr(j, "name"));
  json_t *tr = json_object_get(j, "tracks");
  size_t i;
  json_t *t;
  json_array_foreach(tr, i, t) {
    if (p->n_tracks >= HD_RTC_SIGNAL_MAX_TRACKS) break;
    set_track(&p->tracks[p->n_tracks++], t);
  }
  return p;
}

static hd_rtc_signal_track_t *find_track(hd_rtc_signal_participant_t *p, const char *sid, int *idx) {
  for (int i = 0; p && i < p->n_tracks; i++)
    if (!strcmp(p->tracks[i].sid, sid)) {
      if (idx) *idx = i;
      return &p->tracks[i];
    }
  return NULL;
}

/* ---- received messages ---- */

static void on_joined(hd_rtc_signal_t *s, json_t *m, hd_time_t now) {
  json_t *me = json_object_get(m, "participant"), *parts = json_object_get(m, "participants");
  snprintf(s->own_sid, sizeof s->own_sid, "%s", jstr(me, "sid"));
  snprintf(s->room, sizeof s->room, "%s", jstr(json_object_get(m, "room"), "name"));
  s->n_parts = 0;
  size_t i;
  json_t *p;
  json_array_foreach(parts, i, p) upsert_part(s, p);
  json_int_t pi = json_integer_value(json_object_get(m, "ping_interval"));
  json_int_t pt = json_integer_value(json_object_get(m, "ping_timeout"));
  if (pi > 0 && pi <= 3600) s->ping_interval = HD_SEC(pi);
  if (pt > 0 && pt <= 3600) s->ping_timeout = HD_SEC(pt);
  s->next_ping = now + s->ping_interval;
  s->state = HD_RTC_SIGNAL_JOINED;
  hd_rtc_signal_event_t *ev = push_ev(s, HD_RTC_SIGNAL_EV_JOINED, m);
  if (ev) ev->participant_sid = jstr(me, "sid");
}

static void on_publish_answer(hd_rtc_signal_t *s, json_t *m, hd_time_t now) {
  const char *sdp = jstr(m, "sdp");
  s->publishing = 0;
  size_t i;
  json_t *t;
  json_array_foreach(json_object_get(m, "tracks"), i, t) {
    for (int k = 0; k < s->n_pubs; k++)
      if (!strcmp(s->pubs[k].cid, jstr(t, "cid")))
        snprintf(s->pubs[k].sid, sizeof s->pubs[k].sid, "%s", jstr(t, "sid"));
  }
  int rc = 0;
  if (s->cfg.pub_pc) rc = hd_pc_set_remote_answer(s->cfg.pub_pc, sdp, strlen(sdp), now);
  hd_rtc_signal_event_t *ev = push_ev(s, HD_RTC_SIGNAL_EV_PUBLISH_ANSWER, m);
  if (ev) {
    ev->sdp = sdp;
    ev->code = rc;
  }
}

/* 1 if a track_settings for sub track x was sent under an earlier offer, or
 * by the app before any offer carried it. */
static int told_before(const hd_rtc_signal_t *s, const hd_rtc_signal_sub_track_t *old, int n_old,
                       const char *track_sid) {
  for (int i = 0; i < n_old; i++)
    if (old[i].told && !strcmp(old[i].track_sid, track_sid)) return 1;
  for (int i = 0; i < s->n_app_set; i++)
    if (!strcmp(s->app_set[i], track_sid)) return 1;
  return 0;
}

/* The app sent settings for these tracks: the automatic message is not sent
 * for them (it would replace the app's, the node takes each as a whole). */
static void app_told(hd_rtc_signal_t *s, const char *const *track_sids, size_t n) {
  for (size_t k = 0; k < n; k++) {
    int found = 0;
    for (int i = 0; i < s->n_subs; i++)
      if (!strcmp(s->subs[i].track_sid, track_sids[k])) s->subs[i].told = found = 1;
    for (int i = 0; !found && i < s->n_app_set; i++)
      found = !strcmp(s->app_set[i], track_sids[k]);
    if (found) continue;
    snprintf(s->app_set[s->app_set_next], sizeof s->app_set[0], "%s", track_sids[k]);
    s->app_set_next = (s->app_set_next + 1) % HD_RTC_SIGNAL_MAX_SUB_TRACKS;
    if (s->n_app_set < HD_RTC_SIGNAL_MAX_SUB_TRACKS) s->n_app_set++;
  }
}

static int send_track_settings(hd_rtc_signal_t *s, const char *const *track_sids, size_t n, int visible,
                               int width, int height, int pinned, int max_spatial, int max_temporal);

/* Each video track this offer newly carries gets one track_settings (the
 * view size of the config), as a page does for a new tile. */
static void tell_new_tiles(hd_rtc_signal_t *s) {
  for (int i = 0; i < s->n_subs; i++) {
    hd_rtc_signal_sub_track_t *x = &s->subs[i];
    if (x->told) continue;
    const hd_rtc_signal_track_t *t = find_track(find_part(s, x->participant_sid, NULL), x->track_sid, NULL);
    if (!t || t->kind != HD_PC_VIDEO) continue;
    const char *sid = x->track_sid;
    if (send_track_settings(s, &sid, 1, 1, s->cfg.view_width, s->cfg.view_height, 0, -1, -1) == 0)
      x->told = 1;
  }
}

static void on_subscriber_offer(hd_rtc_signal_t *s, json_t *m, hd_time_t now) {
  const char *sdp = jstr(m, "sdp");
  hd_rtc_signal_sub_track_t *old = malloc(sizeof *old * (size_t)(s->n_subs ? s->n_subs : 1));
  int n_old = old ? s->n_subs : 0;
  if (old && n_old) memcpy(old, s->subs, sizeof *old * (size_t)n_old);
  s->n_subs = 0;
  size_t i;
  json_t *t;
  json_array_foreach(json_object_get(m, "tracks"), i, t) {
    if (s->n_subs >= HD_RTC_SIGNAL_MAX_SUB_TRACKS) break;
    hd_rtc_signal_sub_track_t *x = &s->subs[s->n_subs++];
    snprintf(x->mid, sizeof x->mid, "%s", jstr(t, "mid"));
    snprintf(x->track_sid, sizeof x->track_sid, "%s", jstr(t, "track_sid"));
    snprintf(x->participant_sid, sizeof x->participant_sid, "%s", jstr(t, "participant_sid"));
    x->told = told_before(s, old, n_old, x->track_sid);
  }
  free(old);
  int rc = 0;
  if (s->cfg.sub_pc) {
    char *ans = malloc(SDP_MAX);
    rc = ans ? hd_pc_answer_offer(s->cfg.sub_pc, sdp, strlen(sdp), ans, SDP_MAX, now) : HD_ENOMEM;
    if (rc >= 0) rc = hd_rtc_signal_subscriber_answer(s, ans);
    free(ans);
    if (rc >= 0) tell_new_tiles(s);
  }
  hd_rtc_signal_event_t *ev = push_ev(s, HD_RTC_SIGNAL_EV_SUBSCRIBER_OFFER, m);
  if (ev) {
    ev->sdp = sdp;
    ev->code = rc;
  }
}

static void on_participant(hd_rtc_signal_t *s, json_t *m, int type) {
  json_t *p = json_object_get(m, "participant");
  const char *sid = jstr(p, "sid");
  if (type == HD_RTC_SIGNAL_EV_PARTICIPANT_LEFT) {
    int idx;
    if (find_part(s, sid, &idx)) {
      memmove(&s->parts[idx], &s->parts[idx + 1], (size_t)(s->n_parts - idx - 1) * sizeof s->parts[0]);
      s->n_parts--;
    }
  } else {
    upsert_part(s, p);
  }
  hd_rtc_signal_event_t *ev = push_ev(s, type, m);
  if (ev) {
    ev->participant_sid = sid;
    ev->identity = jstr(p, "identity");
  }
}

static void on_track(hd_rtc_signal_t *s, json_t *m, int type) {
  const char *psid = jstr(m, "participant_sid");
  hd_rtc_signal_participant_t *p = find_part(s, psid, NULL);
  json_t *tj = json_object_get(m, "track");
  const char *tsid = type == HD_RTC_SIGNAL_EV_TRACK_PUBLISHED ? jstr(tj, "sid") : jstr(m, "track_sid");
  int idx;
  hd_rtc_signal_track_t *t = find_track(p, tsid, &idx);
  hd_rtc_signal_event_t *ev = push_ev(s, type, m);
  if (ev) {
    ev->participant_sid = psid;
    ev->track_sid = tsid;
  }
  if (type == HD_RTC_SIGNAL_EV_TRACK_PUBLISHED) {
    if (!t && p && p->n_tracks < HD_RTC_SIGNAL_MAX_TRACKS) t = &p->tracks[p->n_tracks++];
    if (t) set_track(t, tj);
    if (ev) {
      ev->kind = kind_of(jstr(tj, "kind"));
      ev->muted = json_is_true(json_object_get(tj, "muted"));
    }
  } else if (type == HD_RTC_SIGNAL_EV_TRACK_UNPUBLISHED) {
    if (t) {
      if (ev) ev->kind = t->kind;
      memmove(t, t + 1, (size_t)(p->n_tracks - idx - 1) * sizeof *t);
      p->n_tracks--;
    }
  } else {
    int muted = json_is_true(json_object_get(m, "muted"));
    if (t) t->muted = muted;
    if (ev) {
      ev->muted = muted;
      ev->kind = t ? t->kind : 0;
    }
  }
}

int hd_rtc_signal_feed(hd_rtc_signal_t *s, const char *text, size_t len, hd_time_t now) {
  if (!s || !text) return HD_EINVAL;
  if (len > HD_RTC_SIGNAL_MSG_MAX) {
    s->bad++;
    return HD_EPROTO;
  }
  json_error_t je;
  json_t *m = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  const char *type = json_string_value(json_object_get(m, "type"));
  if (!m || !json_is_object(m) || !type) {
    json_decref(m);
    s->bad++;
    return HD_EPROTO;
  }
  s->last_rx = now;
  hd_rtc_signal_event_t *ev;
  if (!strcmp(type, "joined")) {
    on_joined(s, m, now);
  } else if (!strcmp(type, "publish_answer")) {
    on_publish_answer(s, m, now);
  } else if (!strcmp(type, "subscriber_offer")) {
    on_subscriber_offer(s, m, now);
  } else if (!strcmp(type, "participant_joined")) {
    on_participant(s, m, HD_RTC_SIGNAL_EV_PARTICIPANT_JOINED);
  } else if (!strcmp(type, "participant_left")) {
    on_participant(s, m, HD_RTC_SIGNAL_EV_PARTICIPANT_LEFT);
  } else if (!strcmp(type, "participant_updated")) {
    on_participant(s, m, HD_RTC_SIGNAL_EV_PARTICIPANT_UPDATED);
  } else if (!strcmp(type, "track_published")) {
    on_track(s, m, HD_RTC_SIGNAL_EV_TRACK_PUBLISHED);
  } else if (!strcmp(type, "track_unpublished")) {
    on_track(s, m, HD_RTC_SIGNAL_EV_TRACK_UNPUBLISHED);
  } else if (!strcmp(type, "track_muted")) {
    on_track(s, m, HD_RTC_SIGNAL_EV_TRACK_MUTED);
  } else if (!strcmp(type, "data")) {
    if ((ev = push_ev(s, HD_RTC_SIGNAL_EV_DATA, m))) {
      ev->identity = jstr(m, "from");
      ev->participant_sid = jstr(m, "from_sid");
      ev->payload = jstr(m, "payload");
    }
  } else if (!strcmp(type, "pong")) {
    json_int_t t = json_integer_value(json_object_get(m, "t"));
    if ((ev = push_ev(s, HD_RTC_SIGNAL_EV_PONG, NULL))) ev->rtt = now / 1000 >= t ? HD_MS(now / 1000 - t) : 0;
  } else if (!strcmp(type, "error")) {
    const char *id = jstr(m, "id");
    if (s->state == HD_RTC_SIGNAL_JOINING)
      s->state = HD_RTC_SIGNAL_LEFT;               /* a failed join closes the socket */
    if (s->publishing && !strcmp(id, s->pub_id)) { /* the offer was refused */
      s->publishing = 0;
      if (s->cfg.pub_pc) hd_pc_rollback_offer(s->cfg.pub_pc);
    }
    if ((ev = push_ev(s, HD_RTC_SIGNAL_EV_ERROR, m))) {
      ev->code = (int)json_integer_value(json_object_get(m, "code"));
      ev->reason = jstr(m, "reason");
      ev->message = jstr(m, "message");
      ev->redirect = jstr(m, "redirect");
      ev->id = id;
    }
  } else if (!strcmp(type, "left")) {
    s->state = HD_RTC_SIGNAL_LEFT;
    s->next_ping = HD_TIME_NEVER;
    if ((ev = push_ev(s, HD_RTC_SIGNAL_EV_LEFT, m))) {
      ev->reason = jstr(m, "reason");
      ev->message = jstr(m, "message");
      ev->redirect = jstr(m, "redirect");
    }
  } else if (!strcmp(type, "publish_layers")) {
    json_t *a = json_object_get(m, "active_rids");
    if (json_is_array(a) && json_is_string(json_object_get(m, "track_sid")) &&
        (ev = push_ev(s, HD_RTC_SIGNAL_EV_PUBLISH_LAYERS, m))) {
      ev->track_sid = jstr(m, "track_sid");
      for (size_t i = 0; i < json_array_size(a) && ev->n_rids < HD_PC_MAX_LAYERS; i++)
        if (json_is_string(json_array_get(a, i)))
          ev->rids[ev->n_rids++] = json_string_value(json_array_get(a, i));
    }
  } else if (!strcmp(type, "track_refused")) {
    if (json_is_string(json_object_get(m, "track_sid")) &&
        (ev = push_ev(s, HD_RTC_SIGNAL_EV_TRACK_REFUSED, m))) {
      ev->track_sid = jstr(m, "track_sid");
      ev->reason = jstr(m, "codec");
      ev->identity = jstr(m, "identity");
    }
  } /* else: active_speakers and future types are ignored */
  json_decref(m);
  return 0;
}

/* ---- keepalive ---- */

hd_time_t hd_rtc_signal_next_timeout(const hd_rtc_signal_t *s) {
  if (s->state != HD_RTC_SIGNAL_JOINED) return HD_TIME_NEVER;
  return hd_time_min(s->next_ping, s->last_rx + s->ping_timeout);
}

void hd_rtc_signal_handle_timeout(hd_rtc_signal_t *s, hd_time_t now) {
  if (s->state != HD_RTC_SIGNAL_JOINED) return;
  if (now >= s->last_rx + s->ping_timeout) {
    s->state = HD_RTC_SIGNAL_LEFT;
    push_ev(s, HD_RTC_SIGNAL_EV_TIMEOUT, NULL);
    return;
  }
  if (now >= s->next_ping) {
    /* t is our clock in ms (any integer 0..2^53-1 is allowed); the pong echoes it */
    send_json(s, json_pack("{s:s, s:I}", "type", "ping", "t", (json_int_t)(now > 0 ? now / 1000 : 0)), 0);
    s->next_ping = now + s->ping_interval;
  }
}

/* ---- requests ---- */

int hd_rtc_signal_join(hd_rtc_signal_t *s, hd_time_t now) {
  if (s->state != HD_RTC_SIGNAL_IDLE) return HD_ESTATE;
  json_t *m = json_pack("{s:s, s:s, s:b}", "type", "join", "token", s->token, "auto_subscribe",
                        !s->cfg.no_auto_subscribe);
  if (m && s->name) json_object_set_new(m, "name", json_string(s->name));
  if (m && s->metadata) json_object_set_new(m, "metadata", json_string(s->metadata));
  /* our subscriber pc decodes FlexFEC: the node then offers it on video (issue 13 item 4) */
  if (m && s->cfg.sub_pc && hd_pc_fec_enabled(s->cfg.sub_pc)) json_object_set_new(m, "flexfec", json_true());
  int rc = send_json(s, m, 1);
  if (rc == 0) {
    s->state = HD_RTC_SIGNAL_JOINING;
    s->last_rx = now;
  }
  return rc;
}

static json_t *pub_tracks(hd_rtc_signal_t *s, const hd_rtc_signal_pub_t *tracks, const char *const *mids,
                          size_t n) {
  if (n > HD_RTC_SIGNAL_MAX_TRACKS) return NULL;
  json_t *arr = json_array();
  s->n_pubs = 0;
  for (size_t i = 0; i < n && arr; i++) {
    const hd_rtc_signal_pub_t *t = &tracks[i];
    const char *src = t->source ? t->source : "camera";
    int audio = !strcmp(src, "microphone") || !strcmp(src, "screen_audio");
    if (!t->cid || !mids[i] ||
        json_array_append_new(arr,
                              json_pack("{s:s, s:s, s:s, s:s, s:b}", "cid", t->cid, "mid", mids[i], "kind",
                                        audio ? "audio" : "video", "source", src, "muted", t->muted)) < 0) {
      json_decref(arr);
      return NULL;
    }
    snprintf(s->pubs[s->n_pubs].cid, sizeof s->pubs[0].cid, "%s", t->cid);
    s->pubs[s->n_pubs++].sid[0] = 0;
  }
  return arr;
}

int hd_rtc_signal_publish_sdp(hd_rtc_signal_t *s, const char *sdp, const hd_rtc_signal_pub_t *tracks,
                              const char *const *mids, size_t n) {
  if (!s || !sdp || (n && (!tracks || !mids))) return HD_EINVAL;
  if (s->state != HD_RTC_SIGNAL_JOINED || s->publishing) return HD_ESTATE;
  json_t *arr = pub_tracks(s, tracks, mids, n);
  if (!arr) return HD_EINVAL;
  int rc = send_json(s, json_pack("{s:s, s:s, s:o}", "type", "publish_offer", "sdp", sdp, "tracks", arr), 1);
  if (rc == 0) {
    s->publishing = 1;
    snprintf(s->pub_id, sizeof s->pub_id, "c%u", s->req_id);
  }
  return rc;
}

int hd_rtc_signal_publish(hd_rtc_signal_t *s, const hd_rtc_signal_pub_t *tracks, size_t n, hd_time_t now) {
  if (!s || !s->cfg.pub_pc || n > HD_RTC_SIGNAL_MAX_TRACKS || (n && !tracks)) return HD_EINVAL;
  if (s->state != HD_RTC_SIGNAL_JOINED || s->publishing) return HD_ESTATE;
  const char *mids[HD_RTC_SIGNAL_MAX_TRACKS];
  for (size_t i = 0; i < n; i++)
    if (!(mids[i] = hd_pc_track_mid(s->cfg.pub_pc, tracks[i].track))) return HD_EINVAL;
  char *sdp = malloc(SDP_MAX);
  if (!sdp) return HD_ENOMEM;
  int rc = hd_pc_create_offer(s->cfg.pub_pc, sdp, SDP_MAX, now);
  if (rc >= 0) rc = hd_rtc_signal_publish_sdp(s, sdp, tracks, mids, n);
  free(sdp);
  return rc;
}

int hd_rtc_signal_subscriber_answer(hd_rtc_signal_t *s, const char *sdp) {
  if (!s || !sdp) return HD_EINVAL;
  if (s->state != HD_RTC_SIGNAL_JOINED) return HD_ESTATE;
  return send_json(s, json_pack("{s:s, s:s}", "type", "subscriber_answer", "sdp", sdp), 0);
}

int hd_rtc_signal_subscribe(hd_rtc_signal_t *s, int subscribe, const char *const *track_sids, size_t n) {
  if (!s || !track_sids || n < 1 || n > 100) return HD_EINVAL;
  if (s->state != HD_RTC_SIGNAL_JOINED) return HD_ESTATE;
  json_t *arr = json_array();
  for (size_t i = 0; i < n && arr; i++)
    if (!track_sids[i] || json_array_append_new(arr, json_string(track_sids[i])) < 0) {
      json_decref(arr);
      return HD_EINVAL;
    }
  return send_json(
      s, json_pack("{s:s, s:o}", "type", subscribe ? "subscribe" : "unsubscribe", "track_sids", arr), 1);
}

int hd_rtc_signal_track_settings(hd_rtc_signal_t *s, const char *const *track_sids, size_t n, int visible,
                                 int width, int height, int pinned) {
  return hd_rtc_signal_track_settings_max(s, track_sids, n, visible, width, height, pinned, -1, -1);
}

int hd_rtc_signal_track_settings_max(hd_rtc_signal_t *s, const char *const *track_sids, size_t n, int visible,
                                     int width, int height, int pinned, int max_spatial, int max_temporal) {
  int rc = send_track_settings(s, track_sids, n, visible, width, height, pinned, max_spatial, max_temporal);
  if (rc == 0) app_told(s, track_sids, n);
  return rc;
}

static int send_track_settings(hd_rtc_signal_t *s, const char *const *track_sids, size_t n, int visible,
                               int width, int height, int pinned, int max_spatial, int max_temporal) {
  if (!s || !track_sids || n < 1 || n > 100 || width < 0 || height < 0 || width > 16384 || height > 16384 ||
      max_spatial < -1 || max_spatial > 2 || max_temporal < -1 || max_temporal > 2)
    return HD_EINVAL;
  if (s->state != HD_RTC_SIGNAL_JOINED) return HD_ESTATE;
  json_t *arr = json_array();
  for (size_t i = 0; i < n && arr; i++)
    if (!track_sids[i] || json_array_append_new(arr, json_string(track_sids[i])) < 0) {
      json_decref(arr);
      return HD_EINVAL;
    }
  json_t *m = json_pack("{s:s, s:o, s:b}", "type", "track_settings", "track_sids", arr, "visible", visible);
  if (m && width > 0) json_object_set_new(m, "width", json_integer(width));
  if (m && height > 0) json_object_set_new(m, "height", json_integer(height));
  if (m && pinned) json_object_set_new(m, "pinned", json_true());
  if (m && max_spatial >= 0) json_object_set_new(m, "max_spatial_layer", json_integer(max_spatial));
  if (m && max_temporal >= 0) json_object_set_new(m, "max_temporal_layer", json_integer(max_temporal));
  return send_json(s, m, 1);
}

int hd_rtc_signal_mute(hd_rtc_signal_t *s, const char *track_sid, int muted) {
  if (!s || !track_sid) return HD_EINVAL;
  if (s->state != HD_RTC_SIGNAL_JOINED) return HD_ESTATE;
  return send_json(s, json_pack("{s:s, s:s, s:b}", "type", "mute", "track_sid", track_sid, "muted", muted),
                   1);
}

int hd_rtc_signal_send_data(hd_rtc_signal_t *s, const char *payload, const char *const *to, size_t n_to) {
  if (!s || !payload || n_to > 64 || (n_to && !to)) return HD_EINVAL;
  if (s->state != HD_RTC_SIGNAL_JOINED) return HD_ESTATE;
  json_t *m = json_pack("{s:s, s:s}", "type", "data", "payload", payload);
  if (!m) return HD_EINVAL; /* e.g. invalid UTF-8 */
  if (n_to) {
    json_t *arr = json_array();
    for (size_t i = 0; i < n_to; i++)
      json_array_append_new(arr, json_string(to[i] ? to[i] : ""));
    json_object_set_new(m, "to", arr);
  }
  return send_json(s, m, 1);
}

int hd_rtc_signal_send_text(hd_rtc_signal_t *s, const char *text) {
  if (!s || !text) return HD_EINVAL;
  if (s->state != HD_RTC_SIGNAL_JOINED) return HD_ESTATE;
  json_t *m = json_loads(text, 0, NULL);
  if (!json_is_object(m) || !json_is_string(json_object_get(m, "type"))) {
    json_decref(m);
    return HD_EINVAL;
  }
  return send_json(s, m, 0);
}

int hd_rtc_signal_leave(hd_rtc_signal_t *s) {
  if (!s) return HD_EINVAL;
  if (s->state != HD_RTC_SIGNAL_JOINED) return HD_ESTATE;
  return send_json(s, json_pack("{s:s}", "type", "leave"), 1);
}

/* ---- state ---- */

int hd_rtc_signal_state(const hd_rtc_signal_t *s) { return s->state; }
const char *hd_rtc_signal_own_sid(const hd_rtc_signal_t *s) { return s->own_sid; }
const char *hd_rtc_signal_room(const hd_rtc_signal_t *s) { return s->room; }
int hd_rtc_signal_participant_count(const hd_rtc_signal_t *s) { return s->n_parts; }
const hd_rtc_signal_participant_t *hd_rtc_signal_participant(const hd_rtc_signal_t *s, int i) {
  return i >= 0 && i < s->n_parts ? &s->parts[i] : NULL;
}
const hd_rtc_signal_participant_t *hd_rtc_signal_find_participant(const hd_rtc_signal_t *s, const char *sid) {
  return find_part((hd_rtc_signal_t *)s, sid, NULL);
}
const hd_rtc_signal_sub_track_t *hd_rtc_signal_sub_track(const hd_rtc_signal_t *s, const char *mid) {
  for (int i = 0; i < s->n_subs; i++)
    if (!strcmp(s->subs[i].mid, mid)) return &s->subs[i];
  return NULL;
}
const char *hd_rtc_signal_pub_sid(const hd_rtc_signal_t *s, const char *cid) {
  for (int i = 0; i < s->n_pubs; i++)
    if (!strcmp(s->pubs[i].cid, cid) && s->pubs[i].sid[0]) return s->pubs[i].sid;
  return NULL;
}
uint64_t hd_rtc_signal_bad_messages(const hd_rtc_signal_t *s) { return s->bad; }
uint64_t hd_rtc_signal_dropped_events(const hd_rtc_signal_t *s) { return s->dropped; }
