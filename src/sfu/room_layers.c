/* Layer selection, room side (issue 11 items 3, 4, 7; docs/protocol.md
 * "Layer selection"): track_settings, stream_state, publish_layers and
 * connection_quality, evaluated on the active-speaker timer. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "sfu/rooms_internal.h"

/* ---- layer selection, room side (issue 11 items 3, 4, 7; docs/protocol.md
 * "Layer selection") ---- */

static hd_out_track_t *sub_out(hd_participant_t *q, const sub_t *sub) {
  int oi = q->sub_sess ? hd_session_track_by_mid(q->sub_sess, sub->mid) : -1;
  return oi >= 0 ? &q->sub_sess->out[oi] : NULL;
}

/* Pinned first, then screen share, then whoever speaks. */
static int sub_priority(const sub_t *sub) {
  const pub_track_t *t = rooms_track_by_sid(sub->pub, sub->track_sid);
  return 4 * (sub->pinned != 0) + 2 * (t && t->source == HD_SIGNAL_SOURCE_SCREEN) + (sub->pub->speaking != 0);
}

/* Hands a subscription's settings and priority to its out track; the
 * allocator runs again at once when they changed. */
static void apply_sub_settings(hd_participant_t *q, sub_t *sub) {
  hd_out_track_t *t = sub_out(q, sub);
  if (!t) return; /* not negotiated yet: the next tick applies them */
  int vis = !sub->hidden, prio = sub_priority(sub);
  if (t->alloc.visible == vis && t->tile_w == sub->tile_w && t->tile_h == sub->tile_h &&
      t->alloc.priority == prio && t->lim_spatial == sub->lim_spatial && t->lim_tid == sub->lim_temporal)
    return;
  t->lim_spatial = sub->lim_spatial;
  t->lim_tid = sub->lim_temporal;
  t->alloc.visible = vis;
  t->alloc.priority = prio;
  t->tile_w = sub->tile_w;
  t->tile_h = sub->tile_h;
  q->sub_sess->next_alloc = 0;
}

void rooms_handle_track_settings(hd_node_t *n, hd_participant_t *p, const hd_signal_msg_t *m) {
  const hd_signal_msg_t *ms = m;
  for (size_t i = 0; i < ms->track_settings.n_track_sids; i++)
    if (!rooms_sub_find(p, ms->track_settings.track_sids[i])) {
      char msg[160];
      snprintf(msg, sizeof msg,
               "not subscribed to track %s: subscribe to it first (or wait for its track_published)",
               ms->track_settings.track_sids[i]);
      rooms_send_error(n, p->conn, m->id, HD_SIGNAL_ERR_NOT_FOUND, msg);
      return;
    }
  for (size_t i = 0; i < ms->track_settings.n_track_sids; i++) {
    sub_t *sub = rooms_sub_find(p, ms->track_settings.track_sids[i]);
    sub->hidden = !ms->track_settings.visible;
    sub->tile_w = ms->track_settings.width;
    sub->tile_h = ms->track_settings.height;
    sub->pinned = ms->track_settings.pinned;
    sub->lim_spatial = ms->track_settings.max_spatial_layer + 1;
    sub->lim_temporal = ms->track_settings.max_temporal_layer + 1;
    apply_sub_settings(p, sub);
  }
}

static int layer_live(const hd_in_track_t *t, hd_time_t now) {
  return t->active && t->last_packet_at && now - t->last_packet_at <= HD_SESSION_LAYER_TIMEOUT;
}

/* stream_state: tells q when a video track it subscribed to is paused (and
 * why) or resumes, and which simulcast layer it gets. */
static void report_stream_states(hd_node_t *n, hd_participant_t *q, hd_time_t now) {
  for (int j = 0; j < q->n_subs; j++) {
    sub_t *sub = &q->subs[j];
    hd_out_track_t *t = sub_out(q, sub);
    if (!t || !t->active || t->kind != HD_TRACK_VIDEO || !t->src || t->src_in < 0 ||
        t->src_in >= t->src->n_in)
      continue;
    const hd_session_t *ps = t->src;
    const hd_in_track_t *head = &ps->in[ps->in[t->src_in].head];
    int reason = HD_SIGNAL_PAUSE_NONE, layer = -1;
    if (head->n_layers > 1 || t->gated) {
      if (t->want_in < 0) {
        int any = 0;
        for (int l = 0; l < (head->n_layers > 1 ? head->n_layers : 1); l++)
          any |= layer_live(&ps->in[head->n_layers > 1 ? head->layers[l] : t->src_in], now);
        reason = !t->alloc.visible ? HD_SIGNAL_PAUSE_HIDDEN
                 : any             ? HD_SIGNAL_PAUSE_BANDWIDTH
                                   : HD_SIGNAL_PAUSE_PUBLISHER;
      } else if (head->n_layers > 1) {
        layer = t->cur_in;
      }
    }
    if (reason == sub->told_reason && layer == sub->told_layer) continue;
    sub->told_reason = reason;
    sub->told_layer = layer;
    const hd_in_track_t *lt = layer >= 0 && layer < ps->n_in ? &ps->in[layer] : NULL;
    char buf[512];
    int len = hd_signal_write_stream_state(sub->pub->sid, sub->track_sid, (hd_signal_pause_reason_t)reason,
                                           lt ? lt->rid : NULL, lt ? lt->width : 0, lt ? lt->height : 0, buf,
                                           sizeof buf);
    rooms_emit(n, q, buf, len);
  }
}

/* Publisher layers follow demand (item 4): a simulcast layer that no
 * subscriber's tile needs is paused at the publisher (publish_layers; the
 * client sets encodings[i].active) after LAYER_IDLE_PAUSE. The lowest layer
 * always flows, so a new subscriber or a tile made visible starts at once.
 * Nothing is paused while layer sizes are not all known, while a WHEP player
 * watches the room (it sends no tile size) or for a WHIP publisher (no
 * signaling to tell it). */
static void update_publish_layers(hd_node_t *n, hd_room_t *r, hd_participant_t *p, hd_time_t now) {
  if (p->whip || !p->pub_sess) return;
  hd_session_t *ps = p->pub_sess;
  for (int i = 0; i < p->n_tracks; i++) {
    pub_track_t *t = &p->tracks[i];
    if (t->kind != HD_TRACK_VIDEO || t->in_idx < 0 || t->in_idx >= ps->n_in) continue;
    const hd_in_track_t *head = &ps->in[t->in_idx];
    int nl = head->n_layers;
    if (nl <= 1) continue;
    int order[HD_SESSION_MAX_LAYERS], w[HD_SESSION_MAX_LAYERS], h[HD_SESSION_MAX_LAYERS], sized = 1;
    hd_session_layer_order(ps, t->in_idx, now, order);
    for (int l = 0; l < nl; l++) {
      w[l] = ps->in[order[l]].width;
      h[l] = ps->in[order[l]].height;
      sized &= w[l] > 0 && h[l] > 0;
    }
    int need = 0; /* highest layer (ascending size) some tile needs */
    /* viewers on other nodes: their allocators pick among the live layers */
    if (!sized || r->n_viewers || room_remote_track_wanted(r, p, t->in_idx, now)) need = nl - 1;
    for (hd_participant_t *q = r->participants; q && need < nl - 1; q = q->next)
      for (int j = 0; j < q->n_subs; j++) {
        const sub_t *sub = &q->subs[j];
        if (sub->pub != p || strcmp(sub->track_sid, t->sid) || sub->hidden) continue;
        int l = hd_alloc_tile_layer(w, h, nl, sub->tile_w, sub->tile_h);
        if (sub->lim_spatial && l > sub->lim_spatial - 1) l = sub->lim_spatial - 1;
        if (l > need) need = l;
      }
    unsigned off = t->layers_off;
    for (int l = 0; l < nl; l++) {
      int pos = 0; /* a=simulcast position of order[l] */
      while (pos < nl && head->layers[pos] != order[l])
        pos++;
      if (pos >= nl) continue;
      if (l <= need) {
        t->unneeded_since[pos] = 0;
        off &= ~(1u << pos);
      } else if (!t->unneeded_since[pos]) {
        t->unneeded_since[pos] = now;
      } else if (now - t->unneeded_since[pos] >= LAYER_IDLE_PAUSE) {
        off |= 1u << pos;
      }
    }
    if (off == t->layers_off) continue;
    t->layers_off = off;
    const char *rids[HD_SESSION_MAX_LAYERS];
    size_t nr = 0;
    for (int pos = 0; pos < nl; pos++)
      if (!(off & (1u << pos))) rids[nr++] = ps->in[head->layers[pos]].rid;
    char buf[512];
    int len = hd_signal_write_publish_layers(t->sid, rids, nr, buf, sizeof buf);
    rooms_emit(n, p, buf, len);
    n->stats.media.publisher_layer_changes++;
    HD_LOGD("room", "participant %s track %s: %zu of %d layers wanted", p->sid, t->sid, nr, nl);
  }
}

/* Loss on what p publishes since the last evaluation (0..1, -1 unknown). */
static double uplink_loss(hd_participant_t *p) {
  if (!p->pub_sess) return -1;
  uint64_t exp = 0, rec = 0;
  for (int i = 0; i < p->n_tracks; i++) {
    pub_track_t *t = &p->tracks[i];
    if (t->in_idx < 0 || t->in_idx >= p->pub_sess->n_in) continue;
    const hd_in_track_t *head = &p->pub_sess->in[t->in_idx];
    uint64_t e = 0, rv = 0;
    for (int l = 0; l < (head->n_layers > 1 ? head->n_layers : 1); l++) {
      const hd_rtp_recv_stats_t *st =
          &p->pub_sess->in[head->n_layers > 1 ? head->layers[l] : t->in_idx].stats;
      if (!st->started) continue;
      e += hd_rtp_recv_stats_ext_max(st) - st->base_seq + 1;
      rv += st->received;
    }
    if (e >= t->rx_expected && rv >= t->rx_received) {
      exp += e - t->rx_expected;
      rec += rv - t->rx_received;
    }
    t->rx_expected = e;
    t->rx_received = rv;
  }
  if (exp < 10) return -1; /* too few packets to say */
  return rec >= exp ? 0.0 : (double)(exp - rec) / (double)exp;
}

static void connection_quality_tick(hd_node_t *n, hd_room_t *r, hd_time_t now) {
  hd_signal_quality_update_t up[HD_SIGNAL_MAX_TRACK_SIDS];
  size_t nu = 0;
  for (hd_participant_t *p = r->participants; p; p = p->next) {
    if (now < p->next_quality) continue;
    p->next_quality = now + QUALITY_INTERVAL;
    if (p->sub_sess && p->sub_sess->estimate_bps) /* the /metrics histogram: a sample a second */
      hd_session_count_estimate(&n->stats.media, p->sub_sess->estimate_bps);
    hd_cq_input_t in = {.loss_up = uplink_loss(p), .loss_down = -1};
    hd_time_t last_rx = 0;
    int sends = 0;
    if (p->pub_sess) {
      for (int i = 0; i < p->pub_sess->n_in; i++) {
        const hd_in_track_t *t = &p->pub_sess->in[i];
        if (!t->active || t->muted) continue;
        sends = 1;
        if (t->last_packet_at > last_rx) last_rx = t->last_packet_at;
      }
      if (p->pub_sess->peer.state != HD_PEER_CONNECTED && now - p->pub_sess->created > HD_CQ_SILENT)
        in.disconnected = 1;
    }
    if (sends && last_rx) in.silent = now - last_rx;
    hd_session_t *ss = p->sub_sess;
    if (ss) {
      in.loss_down = ss->loss_q8 / 256.0;
      in.rtt = ss->rtt;
      if (p->n_subs && ss->peer.state != HD_PEER_CONNECTED && now - ss->created > HD_CQ_SILENT)
        in.disconnected = 1;
      for (int j = 0; j < p->n_subs; j++) {
        const hd_out_track_t *t = sub_out(p, &p->subs[j]);
        if (t && t->active && t->alloc.visible &&
            (t->gated ||
             (t->src && t->src_in >= 0 && t->src_in < t->src->n_in && t->src->in[t->src_in].n_layers > 1)))
          /* paused for bandwidth; a lower layer than the tile wants is not
           * "poor" (the estimate climbs for seconds after every join) */
          in.limited |= t->want_in < 0 && p->subs[j].told_reason == HD_SIGNAL_PAUSE_BANDWIDTH;
      }
    }
    if (!p->pub_sess && !ss) continue; /* signaling only: nothing to grade */
    int changed = hd_cq_update(&p->quality, &in);
    if ((changed || !p->quality_told) && nu < HD_SIGNAL_MAX_TRACK_SIDS && !p->claims.hidden) {
      p->quality_told = 1;
      up[nu].participant_sid = p->sid;
      up[nu].quality = (hd_signal_quality_t)p->quality.grade;
      nu++;
    }
  }
  /* on the stack: this runs every second in every room, and the hot paths
   * allocate nothing (unit/test_alloc_free_path); 100 entries take < 7 KB */
  char buf[12288], full[12288];
  int len = nu ? hd_signal_write_connection_quality(up, nu, buf, sizeof buf) : 0;
  /* a joiner first gets everyone's grade; the others the changes */
  hd_signal_quality_update_t all[HD_SIGNAL_MAX_TRACK_SIDS];
  size_t na = 0;
  int flen = -1;
  for (hd_participant_t *q = r->participants; q; q = q->next) {
    if (q->whip) continue;
    if (!q->quality_has_all) {
      if (flen < 0) {
        for (hd_participant_t *p = r->participants; p && na < HD_SIGNAL_MAX_TRACK_SIDS; p = p->next)
          if (p->quality_told && !p->claims.hidden) {
            all[na].participant_sid = p->sid;
            all[na].quality = (hd_signal_quality_t)p->quality.grade;
            na++;
          }
        flen = na ? hd_signal_write_connection_quality(all, na, full, sizeof full) : 0;
      }
      if (flen <= 0) continue;
      rooms_emit(n, q, full, flen);
      q->quality_has_all = 1;
    } else if (nu) {
      rooms_emit(n, q, buf, len);
    }
  }
}

void rooms_layers_tick(hd_node_t *n, hd_room_t *r, hd_time_t now) {
  for (hd_participant_t *q = r->participants; q; q = q->next) {
    for (int j = 0; j < q->n_subs; j++)
      apply_sub_settings(q, &q->subs[j]);
    report_stream_states(n, q, now);
  }
  for (hd_participant_t *p = r->participants; p; p = p->next)
    update_publish_layers(n, r, p, now);
  connection_quality_tick(n, r, now);
}
