/* The admin API's view of rooms (docs/api.md) and the quality samples
 * (sfu/qsample.h, issue 14 item 1). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "sfu/qsample.h"
#include "sfu/rooms_internal.h"

/* ---- admin ---- */

/* A published track's simulcast layers as measured (issue 11 item 7). */
static json_t *layers_json(const hd_session_t *s, int head, hd_time_t now) {
  json_t *a = json_array();
  const hd_in_track_t *h = &s->in[head];
  for (int l = 0; l < h->n_layers; l++) {
    const hd_in_track_t *x = &s->in[h->layers[l]];
    int live = x->last_packet_at && now - x->last_packet_at <= HD_SESSION_LAYER_TIMEOUT;
    json_t *o = json_pack("{s:s, s:I, s:i, s:i, s:b}", "rid", x->rid, "bps", (json_int_t)x->bps, "width",
                          x->width, "height", x->height, "live", live);
    if (o && x->max_tid >= 0) { /* VP8 temporal layers (RFC 7741 TID): how many, and each one's rate */
      json_t *tb = json_array();
      for (int k = 0; k <= x->max_tid; k++)
        json_array_append_new(tb, json_integer((json_int_t)x->tid_bps[k]));
      json_object_set_new(o, "temporal_layers", json_integer(x->max_tid + 1));
      json_object_set_new(o, "temporal_bps", tb);
    }
    json_array_append_new(a, o);
  }
  return a;
}

static json_t *tracks_json(const hd_participant_t *p, hd_time_t now) {
  json_t *a = json_array();
  for (int i = 0; i < p->n_tracks; i++) {
    const pub_track_t *t = &p->tracks[i];
    json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:s}", "sid", t->sid, "kind",
                          t->kind == HD_TRACK_AUDIO ? "audio" : "video", "source",
                          hd_signal_source_name((hd_signal_source_t)t->source), "muted", t->muted, "codec",
                          rooms_track_codec(p, t));
    if (o && p->pub_sess && t->in_idx >= 0 && t->in_idx < p->pub_sess->n_in &&
        (p->pub_sess->in[t->in_idx].n_layers > 1 || p->pub_sess->in[t->in_idx].max_tid > 0))
      json_object_set_new(o, "layers", layers_json(p->pub_sess, t->in_idx, now));
    json_array_append_new(a, o);
  }
  return a;
}

/* What the node sends this participant: its downlink estimate and, per
 * subscribed video track, the layer chosen (issue 11 item 7). */
static json_t *downlink_json(const hd_participant_t *p) {
  const hd_session_t *ss = p->sub_sess;
  if (!ss) return json_null();
  json_t *subs = json_array();
  for (int i = 0; i < p->n_subs; i++) {
    const sub_t *sub = &p->subs[i];
    int oi = hd_session_track_by_mid(ss, sub->mid);
    if (oi < 0) continue;
    const hd_out_track_t *t = &ss->out[oi];
    const hd_in_track_t *cur =
        t->src && t->cur_in >= 0 && t->cur_in < t->src->n_in ? &t->src->in[t->cur_in] : NULL;
    const hd_in_track_t *want =
        t->src && t->want_in >= 0 && t->want_in < t->src->n_in ? &t->src->in[t->want_in] : NULL;
    int layered = t->gated || (t->src && t->src_in >= 0 && t->src_in < t->src->n_in &&
                               t->src->in[t->src_in].n_layers > 1);
    json_array_append_new(subs,
                          json_pack("{s:s, s:s, s:s, s:s, s:i, s:b, s:I, s:I}", "track_sid", sub->track_sid,
                                    "kind", t->kind == HD_TRACK_AUDIO ? "audio" : "video", "layer",
                                    cur ? cur->rid : "", "wanted_layer", want ? want->rid : "", "height",
                                    cur ? cur->height : 0, "paused", layered && t->want_in < 0, "packets",
                                    (json_int_t)t->packets, "layer_switches", (json_int_t)t->alloc.switches));
  }
  return json_pack("{s:s, s:I, s:I, s:o}", "estimator",
                   ss->bwe            ? "twcc"
                   : ss->estimate_bps ? "remb"
                                      : "none",
                   "estimate_bps", (json_int_t)ss->estimate_bps, "rtt_ms", (json_int_t)(ss->rtt / 1000),
                   "subscriptions", subs);
}

static char *dump(json_t *j) {
  char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  return s;
}

static json_t *room_json(const hd_node_t *n, const hd_room_t *r) {
  size_t cap = r->max_participants       ? r->max_participants
               : n->cfg.max_participants ? n->cfg.max_participants
                                         : 100;
  json_t *o =
      json_pack("{s:s, s:s, s:I, s:I, s:b, s:I, s:I, s:I, s:s}", "name", r->name, "sid", r->sid,
                "participants", (json_int_t)r->n_participants, "whep_viewers", (json_int_t)r->n_viewers,
                "whip_publisher", r->publisher != NULL, "created_at", (json_int_t)r->created_unix,
                "empty_timeout_s", (json_int_t)(r->empty_timeout / HD_SEC(1)), "max_participants",
                (json_int_t)cap, "metadata", r->metadata);
  /* while empty: seconds until it closes (rounded up) */
  if (o && r->close_at != HD_TIME_NEVER) {
    hd_time_t left = r->close_at > n->now ? r->close_at - n->now : 0;
    json_object_set_new(o, "closes_in_s", json_integer((json_int_t)((left + HD_SEC(1) - 1) / HD_SEC(1))));
  }
  return o;
}

size_t hd_node_room_names(hd_node_t *n, hd_node_room_fn fn, void *ud) {
  size_t k = 0;
  for (hd_room_t *r = n->rooms; r; r = r->next, k++)
    fn(ud, r->app, r->name);
  return k;
}

size_t hd_node_room_sids(hd_node_t *n, hd_node_room_sid_fn fn, void *ud) {
  size_t k = 0;
  for (hd_room_t *r = n->rooms; r; r = r->next)
    if (!r->sid_pending) {
      fn(ud, r->app, r->name, r->sid);
      k++;
    }
  return k;
}

char *hd_node_admin_rooms_json(hd_node_t *n, const char *app) {
  json_t *rooms = json_array();
  for (hd_room_t *r = n->rooms; r; r = r->next) {
    if (app && strcmp(r->app, app)) continue;
    json_array_append_new(rooms, room_json(n, r));
  }
  return dump(json_pack("{s:o}", "rooms", rooms));
}

int hd_node_admin_create_room(hd_node_t *n, const char *app, const char *name, const hd_room_opts_t *opts,
                              int64_t unix_now, hd_time_t now, char **json) {
  n->now = now;
  if (opts->metadata && strlen(opts->metadata) >= HD_NODE_ROOM_METADATA_MAX) return HD_EINVAL;
  hd_time_t timeout = opts->empty_timeout >= 0 ? opts->empty_timeout : n->cfg.room_empty_timeout;
  if (timeout <= 0) return HD_EINVAL; /* it would close before anyone could join */
  if (node_room_find(n, app, name)) return HD_ESTATE;
  hd_room_t *r = node_room_get(n, app, name, now);
  if (!r) return HD_ENOMEM;
  r->empty_timeout = timeout;
  r->max_participants = opts->max_participants;
  snprintf(r->metadata, sizeof r->metadata, "%s", opts->metadata ? opts->metadata : "");
  r->created_unix = unix_now;
  r->next_speakers = now + SPEAKER_INTERVAL;
  node_room_maybe_delete(n, r); /* empty from the start: its timer runs */
  *json = dump(room_json(n, r));
  return *json ? 0 : HD_ENOMEM;
}

char *hd_node_admin_participants_json(hd_node_t *n, const char *app, const char *room) {
  hd_room_t *r = node_room_find(n, app, room);
  if (!r) return NULL;
  json_t *list = json_array();
  for (hd_participant_t *p = r->participants; p; p = p->next)
    json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:I, s:b, s:o, s:o}", "sid", p->sid,
                                          "identity", p->identity, "name", p->name, "metadata", p->metadata,
                                          "joined_at", (json_int_t)p->joined_at, "hidden", p->claims.hidden,
                                          "tracks", tracks_json(p, n->now), "downlink", downlink_json(p)));
  return dump(json_pack("{s:s, s:s, s:o}", "room", r->name, "sid", r->sid, "participants", list));
}

static hd_participant_t *find_participant(hd_node_t *n, const char *app, const char *room,
                                          const char *identity) {
  hd_room_t *r = node_room_find(n, app, room);
  if (!r) return NULL;
  for (hd_participant_t *p = r->participants; p; p = p->next)
    if (!strcmp(p->identity, identity)) return p;
  return NULL;
}

int hd_node_admin_remove(hd_node_t *n, const char *app, const char *room, const char *identity,
                         hd_time_t now) {
  n->now = now;
  hd_participant_t *p = find_participant(n, app, room, identity);
  if (!p) return HD_ENOTFOUND;
  if (p->remote) return room_remote_admin(n, p, NULL, 0); /* its own node acts (docs/overlay.md) */
  rooms_participant_remove(n, p, HD_SIGNAL_LEFT_REMOVED, 1);
  return 0;
}

int hd_node_admin_mute(hd_node_t *n, const char *app, const char *room, const char *identity,
                       const char *track_sid, int muted, hd_time_t now) {
  n->now = now;
  hd_participant_t *p = find_participant(n, app, room, identity);
  pub_track_t *t = p ? rooms_track_by_sid(p, track_sid) : NULL;
  if (!t) return HD_ENOTFOUND;
  if (p->remote) return room_remote_admin(n, p, t->sid, muted);
  rooms_set_muted(n, p, t, muted, 1);
  return 0;
}

int hd_node_admin_close_room(hd_node_t *n, const char *app, const char *room, hd_time_t now) {
  n->now = now;
  hd_room_t *r = node_room_find(n, app, room);
  if (!r) return HD_ENOTFOUND;
  r->closing = 1;   /* freed with its last session or participant, whatever its empty timeout */
  node_room_pin(r); /* whatever empties it below, it is freed at the unpin */
  /* WHIP/WHEP sessions first (the WHIP one takes its stand-in participant along) */
  if (r->publisher) node_session_destroy(n, r->publisher, "room closed by admin");
  for (;;) {
    hd_session_t *v = r->viewers;
    while (v && v->owner)
      v = v->next_in_room;
    if (!v) break;
    node_session_destroy(n, v, "room closed by admin");
  }
  while (r->participants)
    rooms_participant_remove(n, r->participants, HD_SIGNAL_LEFT_ROOM_CLOSED, 1);
  node_room_unpin(n, r);
  return 0;
}

/* ---- quality samples (sfu/qsample.h, issue 14 item 1) ---- */

static void qsample_key(hd_node_qsample_t *q, const hd_room_t *r, const hd_participant_t *p) {
  memset(q, 0, sizeof *q);
  snprintf(q->app, sizeof q->app, "%s", r->app);
  snprintf(q->room, sizeof q->room, "%s", r->name);
  snprintf(q->room_sid, sizeof q->room_sid, "%s", r->sid);
  snprintf(q->identity, sizeof q->identity, "%s", p->identity);
  snprintf(q->psid, sizeof q->psid, "%s", p->sid);
  q->rtt_ms = q->jitter_ms = -1;
}

int hd_node_quality_samples(hd_node_t *n, hd_node_qsample_t *out, size_t cap, hd_time_t now) {
  (void)now;
  size_t k = 0;
  for (hd_room_t *r = n->rooms; r; r = r->next)
    for (hd_participant_t *p = r->participants; p; p = p->next) {
      const hd_session_t *ps = p->pub_sess;
      for (int i = 0; ps && i < p->n_tracks && k < cap; i++) {
        const pub_track_t *t = &p->tracks[i];
        if (t->in_idx < 0 || t->in_idx >= ps->n_in) continue;
        hd_node_qsample_t *q = &out[k++];
        qsample_key(q, r, p);
        snprintf(q->track_sid, sizeof q->track_sid, "%s", t->sid);
        q->video = t->kind == HD_TRACK_VIDEO;
        const hd_in_track_t *h = &ps->in[t->in_idx];
        for (int l = 0; l < h->n_layers; l++) {
          const hd_in_track_t *x = &ps->in[h->layers[l]];
          q->bytes += x->bytes;
          q->packets += x->packets;
          q->rtx += x->rtx_packets;
          q->pli += x->plis_sent;
          if (x->nack_enabled) {
            /* a gap is repaired (recovered) or given up: each missing packet counted once */
            q->lost += x->nack.recovered + x->nack.gave_up;
            q->nack += x->nack.requested;
            q->lost_after += x->nack.gave_up;
          } else if (x->have_ssrc && x->stats.started) {
            int64_t lost = hd_rtp_recv_stats_lost(&x->stats);
            q->lost += lost > 0 ? (uint64_t)lost : 0;
            q->lost_after += lost > 0 ? (uint64_t)lost : 0;
          }
          if (l == 0 && x->clock && x->stats.have_transit)
            q->jitter_ms = (double)hd_rtp_recv_stats_jitter(&x->stats) * 1000.0 / x->clock;
        }
      }
      const hd_session_t *ss = p->sub_sess;
      for (int i = 0; ss && i < p->n_subs && k < cap; i++) {
        const sub_t *sub = &p->subs[i];
        int oi = hd_session_track_by_mid(ss, sub->mid);
        if (oi < 0) continue;
        const hd_out_track_t *t = &ss->out[oi];
        hd_node_qsample_t *q = &out[k++];
        qsample_key(q, r, p);
        snprintf(q->track_sid, sizeof q->track_sid, "%s", sub->track_sid);
        q->down = 1;
        q->video = t->kind == HD_TRACK_VIDEO;
        const hd_in_track_t *cur =
            t->src && t->cur_in >= 0 && t->cur_in < t->src->n_in ? &t->src->in[t->cur_in] : NULL;
        if (cur) snprintf(q->layer, sizeof q->layer, "%s", cur->rid);
        q->bytes = t->bytes;
        q->packets = t->packets;
        q->rtx = t->retransmits;
        q->nack = t->retransmits + t->nacks_unanswered;
        q->loss_frac = ss->loss_q8 / 256.0;
        q->rtt_ms = ss->rtt ? (double)ss->rtt / 1000.0 : -1;
        q->downlink_bps = ss->estimate_bps;
      }
    }
  return (int)k;
}
