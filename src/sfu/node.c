/* Forwarding node: rooms, sessions, demux and counters (see node.h). */
#include "sfu/node.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sockaddr_key.h"
#include "base/err.h"
#include "base/log.h"
#include "base/map.h"
#include "base/rand.h"
#include "proto/sdp.h"
#include "proto/sdp_negotiate.h"
#include "overlay/link.h"
#include "proto/stun.h"
#include "sfu/node_internal.h"

#define TXQ_CAP 4096

/* ---- address keys for the 5-tuple map ---- */
size_t node_addr_key(const struct sockaddr *sa, uint8_t key[20]) { return hd_sockaddr_key(sa, key); }

int hd_node_new(hd_node_t **out, const hd_node_config_t *cfg, hd_dtls_cert_t *cert) {
  hd_node_t *n = calloc(1, sizeof *n);
  if (!n) return HD_ENOMEM;
  n->cfg = *cfg;
  if (!n->cfg.max_sessions) n->cfg.max_sessions = 1000;
  if (!n->cfg.max_viewers) n->cfg.max_viewers = 500;
  snprintf(n->rtc_ip, sizeof n->rtc_ip, "%s", cfg->rtc_ip ? cfg->rtc_ip : "127.0.0.1");
  n->cfg.rtc_ip = n->rtc_ip;
  n->cert = cert;
  int rc = hd_txq_init(&n->txq, TXQ_CAP);
  if (!rc) rc = hd_map_init(&n->by_id, n->cfg.max_sessions);
  if (!rc) rc = hd_map_init(&n->by_ufrag, n->cfg.max_sessions);
  if (!rc) rc = hd_map_init(&n->by_addr, n->cfg.max_sessions * HD_ICE_MAX_REMOTE);
  if (!rc) rc = hd_srtp_global_init();
  if (!rc && n->cfg.quota) {
    n->quota = n->cfg.quota;
  } else if (!rc) {
    rc = hd_quota_new(&n->quota, n->cfg.max_sessions_per_app, n->cfg.max_sessions_per_identity,
                      n->cfg.max_sessions);
    n->own_quota = rc == 0;
  }
  if (rc) {
    hd_node_free(n);
    return rc;
  }
  *out = n;
  return 0;
}

hd_room_t *node_room_find(hd_node_t *n, const char *app, const char *name) {
  for (hd_room_t *r = n->rooms; r; r = r->next)
    if (!strcmp(r->app, app) && !strcmp(r->name, name)) return r;
  return NULL;
}

void node_fire_room_event(hd_node_t *n, int type, const hd_room_t *r) {
  if (!n->cfg.on_event) return;
  hd_webhook_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.type = (hd_webhook_event_type_t)type;
  ev.app = r->app;
  ev.room_name = r->name;
  ev.room_sid = r->sid[0] ? r->sid : NULL;
  n->cfg.on_event(n->cfg.event_ud, &ev);
}

hd_room_t *node_room_get(hd_node_t *n, const char *app, const char *name, hd_time_t now) {
  hd_room_t *r = node_room_find(n, app, name);
  if (r) return r;
  r = calloc(1, sizeof *r);
  if (!r) return NULL;
  snprintf(r->app, sizeof r->app, "%s", app);
  snprintf(r->name, sizeof r->name, "%s", name);
  r->created = now;
  r->empty_timeout = n->cfg.room_empty_timeout;
  r->close_at = HD_TIME_NEVER;
  r->next = n->rooms;
  n->rooms = r;
  n->n_rooms++;
  /* a room sid from the start, so webhooks and signaling name it the same */
  char tok[13];
  hd_random_token(tok, 12);
  snprintf(r->sid, sizeof r->sid, "RM_%s", tok);
  /* in a cluster, room_started goes through Redis, whose answer names the
   * room's cluster-wide sid (hd_node_room_set_sid): joins wait for it */
  if (n->cl && n->cfg.on_event) {
    r->sid_pending = 1;
    r->sid_wait_until = now + (n->cfg.sid_wait > 0 ? n->cfg.sid_wait : HD_ROOM_SID_WAIT);
  }
  node_fire_room_event(n, HD_WEBHOOK_ROOM_STARTED, r);
  HD_LOGI("room", "room %s/%s created", app, name);
  return r;
}

int hd_node_room_set_sid(hd_node_t *n, const char *app, const char *room, const char *was, const char *sid,
                         hd_time_t now) {
  n->now = now;
  hd_room_t *r = node_room_find(n, app, room);
  if (!r || strcmp(r->sid, was)) return HD_ENOTFOUND;
  snprintf(r->sid, sizeof r->sid, "%s", sid);
  rooms_sid_settled(n, r, 1, now);
  return 0;
}

static void room_free(hd_node_t *n, hd_room_t *r) {
  for (hd_room_t **pp = &n->rooms; *pp; pp = &(*pp)->next) {
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  }
  HD_LOGI("room", "room %s/%s closed", r->app, r->name);
  node_fire_room_event(n, HD_WEBHOOK_ROOM_FINISHED, r);
  n->n_rooms--;
  room_remote_free(r);
  free(r);
}

void node_room_pin(hd_room_t *r) { r->pinned++; }

void node_room_unpin(hd_node_t *n, hd_room_t *r) {
  if (--r->pinned == 0) node_room_maybe_delete(n, r);
}

void node_room_maybe_delete(hd_node_t *n, hd_room_t *r) {
  if (r->publisher || r->viewers || r->participants || r->joining || r->pinned) return;
  if (r->closing || n->closing || r->empty_timeout <= 0) {
    room_free(n, r);
    return;
  }
  /* keeps its sid and settings for a while: a quick rejoin (page reload,
   * network change) finds the same room (no room_finished/room_started pair) */
  if (r->close_at == HD_TIME_NEVER) {
    r->close_at = n->now + r->empty_timeout;
    HD_LOGI("room", "room %s/%s is empty; closes in %lld ms unless someone joins", r->app, r->name,
            (long long)(r->empty_timeout / 1000));
  }
}

void node_room_in_use(hd_room_t *r) { r->close_at = HD_TIME_NEVER; }

/* Adds what one hd_peer_feed call dropped (per-peer counters, after minus
 * before) to the node's counters, so hd_node_stats() is complete and cheap. */
static void count_peer_drops(hd_node_stats_t *st, const hd_peer_stats_t *b, const hd_peer_stats_t *a) {
  st->drop_stun_auth += a->drop_stun_auth - b->drop_stun_auth;
  st->drop_malformed += a->drop_malformed - b->drop_malformed;
  st->drop_srtp_auth += a->drop_srtp_auth - b->drop_srtp_auth;
  st->drop_srtp_replay += a->drop_srtp_replay - b->drop_srtp_replay;
  st->drop_not_ready += a->drop_not_ready - b->drop_not_ready;
  st->drop_dtls += a->drop_dtls - b->drop_dtls;
}

/* Unlinks and frees a session and every index entry pointing at it. */
void node_session_destroy(hd_node_t *n, hd_session_t *s, const char *why) {
  hd_room_t *r = s->room;
  HD_LOGI("sfu", "session %s (%s) closed: %s", s->id,
          s->kind == HD_SESSION_PUBLISH ? (s->owner ? "publisher pc" : "whip")
                                        : (s->kind == HD_SESSION_PLAY ? "whep" : "subscriber pc"),
          why);
  if (r) {
    if (r->publisher == s) r->publisher = NULL;
    for (hd_session_t **pp = &r->viewers; *pp; pp = &(*pp)->next_in_room) {
      if (*pp == s) {
        *pp = s->next_in_room;
        if (s->kind == HD_SESSION_PLAY) r->n_viewers--;
        break;
      }
    }
    /* nobody may keep forwarding from a source that is going away */
    if (s->kind == HD_SESSION_PUBLISH)
      for (hd_session_t *v = r->viewers; v; v = v->next_in_room)
        hd_session_unbind_source(v, s);
  }
  if (s->owner) rooms_on_session_destroyed(n, s);
  hd_map_del(&n->by_id, s->id, strlen(s->id));
  hd_map_del(&n->by_ufrag, s->local_ufrag, strlen(s->local_ufrag));
  for (size_t i = 0; i < s->peer.ice.n_remotes; i++) {
    uint8_t key[20];
    size_t kl = node_addr_key((const struct sockaddr *)&s->peer.ice.remotes[i].addr, key);
    if (kl && hd_map_get(&n->by_addr, key, kl) == s) hd_map_del(&n->by_addr, key, kl);
  }
  if (s->peer.state == HD_PEER_FAILED) n->stats.sessions_failed++;
  hd_peer_close(&s->peer, why);
  if (s->peer.rtp_out_h && n->cfg.shard_detach) n->cfg.shard_detach(s->peer.rtp_out_h);
  hd_peer_free(&s->peer);
  hd_session_free_tracks(s);
  if (s->kind == HD_SESSION_PUBLISH)
    n->n_publish--;
  else if (s->kind == HD_SESSION_PLAY)
    n->n_play--;
  else
    n->n_subscribe--;
  if (n->cfg.shared_sessions) atomic_fetch_sub_explicit(n->cfg.shared_sessions, 1, memory_order_relaxed);
  hd_quota_release(n->quota, s->id);
  free(s);
  if (r) node_room_maybe_delete(n, r);
}

/* A viewer transport just connected, before it sent any RTP: its sealing
 * may go to another worker (hd_node_config_t.shard_attach). On any failure
 * it stays here. */
static void node_shard_attach(hd_node_t *n, hd_session_t *s) {
  if (!n->cfg.shard_attach || (s->kind != HD_SESSION_PLAY && s->kind != HD_SESSION_SUBSCRIBE) || !s->room ||
      s->peer.link_send || s->peer.rtp_out_h)
    return;
  socklen_t tolen;
  const struct sockaddr *to = hd_ice_selected(&s->peer.ice, &tolen);
  hd_srtp_t *tx = NULL;
  if (!to || hd_peer_clone_rtp_tx(&s->peer, &tx) < 0) return;
  void *stream = NULL;
  int rc =
      n->cfg.shard_attach(n->cfg.shard_ud, s->room->n_viewers + s->room->n_participants, to, tx, &stream);
  if (rc != 1) hd_srtp_free(tx);
  if (rc < 0) return;
  hd_peer_set_rtp_out(&s->peer, rc == 1 ? n->cfg.shard_send : NULL, stream);
}

void hd_node_set_rtc_port(hd_node_t *n, uint16_t port) { n->cfg.rtc_port = port; }
void hd_node_set_rtc_tcp_port(hd_node_t *n, uint16_t port) { n->cfg.rtc_tcp_port = port; }

int hd_node_addr_known(hd_node_t *n, const struct sockaddr *addr) {
  uint8_t key[20];
  size_t kl = node_addr_key(addr, key);
  return kl && hd_map_get(&n->by_addr, key, kl) != NULL;
}

void hd_node_close_all(hd_node_t *n, const char *why) {
  n->closing = 1; /* an emptied room is freed at once, whatever its timeout */
  while (n->rooms) {
    hd_room_t *r = n->rooms;
    if (r->participants || r->joining)
      rooms_close_all(n, r); /* frees the room once it is empty */
    else if (r->publisher)
      node_session_destroy(n, r->publisher, why);
    else if (r->viewers)
      node_session_destroy(n, r->viewers, why);
    else
      node_room_maybe_delete(n, r);
  }
  n->closing = 0;
}

void hd_node_free(hd_node_t *n) {
  if (!n) return;
  hd_node_close_all(n, "node freed");
  hd_map_free(&n->by_id);
  hd_map_free(&n->by_ufrag);
  hd_map_free(&n->by_addr);
  hd_txq_free(&n->txq);
  if (n->own_quota) hd_quota_free(n->quota);
  node_cluster_free(n);
  free(n);
}

hd_session_t *node_session_new(hd_node_t *n, int kind, const char *ufrag, const char *pwd,
                               const hd_sdp_negotiated_t *neg, const uint32_t want_ssrc[2], uint32_t want_rtx,
                               hd_time_t now, int *rc_out) {
  hd_session_t *s = calloc(1, sizeof *s);
  int rc = HD_ENOMEM;
  if (s) {
    s->kind = kind;
    s->created = now;
    hd_random_token(s->id, HD_SESSION_ID_LEN);
    snprintf(s->local_ufrag, sizeof s->local_ufrag, "%s", ufrag);
    snprintf(s->local_pwd, sizeof s->local_pwd, "%s", pwd);
    if (neg) s->neg = *neg;
    if (kind == HD_SESSION_PUBLISH) s->remb_bps = n->cfg.max_publish_bitrate;
    if (want_ssrc) {
      s->want_ssrc[HD_TRACK_AUDIO] = want_ssrc[HD_TRACK_AUDIO];
      s->want_ssrc[HD_TRACK_VIDEO] = want_ssrc[HD_TRACK_VIDEO];
      s->want_rtx_ssrc = want_rtx;
    }
    /* without a negotiation yet (subscriber PC before its answer): ICE only */
    rc =
        hd_peer_init(&s->peer, &n->txq, n->cert, s->local_ufrag, s->local_pwd, neg ? neg->remote_ufrag : NULL,
                     neg ? neg->remote_fingerprint : NULL, neg ? neg->dtls_server : 1, now);
    if (rc == 0) {
      rc = hd_session_setup_tracks(s, now);
      if (rc < 0) {
        hd_session_free_tracks(s);
        hd_peer_free(&s->peer);
      }
    }
    if (rc < 0) {
      free(s);
      s = NULL;
    }
  }
  *rc_out = rc;
  return s;
}

void node_session_discard(hd_session_t *s) {
  hd_session_free_tracks(s);
  hd_peer_free(&s->peer);
  free(s);
}

size_t node_session_total(const hd_node_t *n) {
  if (n->cfg.shared_sessions) return atomic_load_explicit(n->cfg.shared_sessions, memory_order_relaxed);
  return n->n_publish + n->n_play + n->n_subscribe;
}

int hd_node_create_session(hd_node_t *n, int kind, const char *app, const char *room, const char *offer,
                           size_t offer_len, hd_time_t now, char *answer, size_t answer_cap,
                           char id[HD_SESSION_ID_LEN + 1], char *err, size_t errcap) {
  return hd_node_create_session_as(n, kind, app, NULL, room, offer, offer_len, now, answer, answer_cap, id,
                                   err, errcap);
}

/* A WHIP publisher that a new publish may replace: the same identity (the
 * publishing page was reloaded or closed without DELETE), or nothing heard
 * from it (media, consent checks) for HD_NODE_WHIP_STALE — a live browser
 * sends audio 50 times a second, so silence that long means it is gone, and
 * the room need not stay blocked until its 30 s consent timeout. */
static int publisher_replaceable(const hd_room_t *r, const char *identity, hd_time_t now) {
  if (identity && r->publisher_identity[0] && !strcmp(identity, r->publisher_identity)) return 1;
  return now - r->publisher_last_rx >= HD_NODE_WHIP_STALE;
}

int hd_node_create_session_as(hd_node_t *n, int kind, const char *app, const char *identity, const char *room,
                              const char *offer, size_t offer_len, hd_time_t now, char *answer,
                              size_t answer_cap, char id[HD_SESSION_ID_LEN + 1], char *err, size_t errcap) {
  int rc;
  hd_sdp_t *osdp = NULL, *asdp = NULL;
  hd_sdp_negotiated_t *neg = NULL;
  hd_session_t *replace = NULL;
  n->now = now;
  hd_room_t *r = node_room_find(n, app, room);
  if (kind == HD_SESSION_PUBLISH && r && r->publisher) {
    if (!publisher_replaceable(r, identity, now)) {
      snprintf(err, errcap,
               "room '%s' already has a publisher (it is live; a new publish replaces it only when it "
               "has the same identity or has sent nothing for %d s)",
               room, (int)(HD_NODE_WHIP_STALE / HD_SEC(1)));
      return HD_ESTATE;
    }
    replace = r->publisher; /* ended once the new session is set up (below) */
  }
  /* the session being replaced frees its own place */
  if (!replace && (rc = node_capacity_check(n, app, identity, err, errcap)) < 0) return rc;
  /* WHEP plays the room's WHIP publisher, else its first participant publishing a camera or microphone */
  hd_session_t *play_src =
      kind == HD_SESSION_PLAY && r ? (r->publisher ? r->publisher : rooms_play_source(r)) : NULL;
  if (kind == HD_SESSION_PLAY && !play_src) {
    snprintf(err, errcap,
             "nothing is published in room '%s' (no WHIP publisher, no participant with a camera or "
             "microphone)",
             room);
    return HD_ENOTFOUND;
  }
  if (kind == HD_SESSION_PLAY && r->n_viewers >= n->cfg.max_viewers) {
    snprintf(err, errcap, "room '%s' is at its viewer limit (%zu)", room, n->cfg.max_viewers);
    return HD_ENOSPC;
  }
  osdp = malloc(sizeof *osdp);
  asdp = malloc(sizeof *asdp);
  neg = malloc(sizeof *neg);
  if (!osdp || !asdp || !neg) {
    rc = HD_ENOMEM;
    snprintf(err, errcap, "out of memory");
    goto out;
  }
  rc = hd_sdp_parse(osdp, offer, offer_len, err, errcap);
  if (rc < 0) goto out;
  char ufrag[17], pwd[33];
  hd_random_token(ufrag, 16);
  hd_random_token(pwd, 32);
  uint32_t ssrc[2] = {hd_random_u32() | 1, hd_random_u32() | 2}, ssrc_rtx = hd_random_u32() | 4;
  hd_sdp_answer_params_t p = {
      .ice_ufrag = ufrag,
      .ice_pwd = pwd,
      .fingerprint_sha256 = hd_dtls_cert_fingerprint(n->cert),
      .cand_ip = n->rtc_ip,
      .cand_port = n->cfg.rtc_port,
      .cand_tcp_port = n->cfg.rtc_tcp_port,
      .direction = kind == HD_SESSION_PUBLISH ? HD_SDP_RECVONLY : HD_SDP_SENDONLY,
      .source = kind == HD_SESSION_PLAY ? &play_src->neg : NULL,
      .send_ssrc_audio = ssrc[HD_TRACK_AUDIO],
      .send_ssrc_video = ssrc[HD_TRACK_VIDEO],
      .send_ssrc_video_rtx = ssrc_rtx,
      .cname = "hudong",
      .stream_id = room,
  };
  rc = hd_sdp_negotiate(osdp, &p, asdp, neg, err, errcap);
  if (rc < 0) goto out;
  rc = hd_sdp_write(asdp, answer, answer_cap);
  if (rc < 0) {
    snprintf(err, errcap, "answer too large");
    goto out;
  }
  hd_session_t *s = node_session_new(n, kind, ufrag, pwd, neg, ssrc, ssrc_rtx, now, &rc);
  if (!s) {
    snprintf(err, errcap, "transport setup failed: %s", hd_strerror(rc));
    goto out;
  }
  r = node_room_get(n, app, room, now);
  if (replace && (!r || r->publisher != replace)) replace = NULL;
  if (replace) hd_quota_release(n->quota, replace->id); /* its place goes to the new session */
  rc = r ? node_session_register(n, s, r, identity) : HD_ENOMEM;
  if (replace && rc < 0) { /* the old publisher stays, counted again */
    hd_quota_take(n->quota, app, r->publisher_identity[0] ? r->publisher_identity : NULL, replace->id, NULL);
  } else if (replace) {
    /* after the new one is the room's publisher, so the room is never empty */
    HD_LOGI("sfu", "whip publisher %s of %s/%s replaced by a new publish", replace->id, app, room);
    node_session_destroy(n, replace, "replaced by a new publisher");
  }
  if (rc < 0) {
    node_session_discard(s);
    if (r) node_room_maybe_delete(n, r);
    if (rc == HD_ENOSPC)
      node_capacity_check(n, app, identity, err, errcap) < 0
          ? (void)0
          : (void)snprintf(err, errcap, "session table full");
    else
      snprintf(err, errcap, "session table full");
    goto out;
  }
  if (kind == HD_SESSION_PUBLISH) {
    snprintf(r->publisher_identity, sizeof r->publisher_identity, "%s", identity ? identity : "");
    r->publisher_last_rx = now;
    /* /rtc participants see and receive it; other nodes of the room too,
     * through a stand-in built from its offer (room_remote.c) */
    rooms_on_whip_publish(n, r, s, identity, offer, offer_len, now);
  } else if (play_src != r->publisher) {
    /* WHEP in a room without WHIP: play the participant rooms_play_source chose */
    for (int i = 0; i < s->n_out; i++) {
      hd_out_track_t *t = &s->out[i];
      int in = hd_session_first_in(play_src, t->kind);
      t->follow_room_pub = 0;
      t->src = in >= 0 ? play_src : NULL;
      t->src_in = in;
      if (in < 0) t->active = 0;
    }
  }
  memcpy(id, s->id, HD_SESSION_ID_LEN + 1);
  HD_LOGI("sfu", "session %s (%s) created in %s/%s", s->id, kind == HD_SESSION_PUBLISH ? "whip" : "whep", app,
          room);
out:
  free(osdp);
  free(asdp);
  free(neg);
  return rc;
}

hd_session_t *hd_node_session(hd_node_t *n, const char *id) { return hd_map_get(&n->by_id, id, strlen(id)); }

int hd_node_room_has_publisher(hd_node_t *n, const char *app, const char *room) {
  hd_room_t *r = node_room_find(n, app, room);
  return r && r->publisher;
}

hd_session_t *hd_node_find_session(hd_node_t *n, int kind, const char *app, const char *room,
                                   const char *id) {
  hd_session_t *s = id[0] ? hd_node_session(n, id) : NULL;
  if (!s || s->kind != kind || !s->room || strcmp(s->room->app, app) || strcmp(s->room->name, room))
    return NULL;
  return s;
}

int hd_node_delete_session(hd_node_t *n, int kind, const char *app, const char *room, const char *id,
                           hd_time_t now) {
  n->now = now;
  hd_session_t *s = hd_node_find_session(n, kind, app, room, id);
  if (!s) return HD_ENOTFOUND;
  node_session_destroy(n, s, "deleted by client");
  return 0;
}

int node_capacity_check(hd_node_t *n, const char *app, const char *identity, char *err, size_t errcap) {
  hd_quota_limit_t which;
  if (node_session_total(n) >= n->cfg.max_sessions) {
    snprintf(err, errcap, "node is at its session limit (%zu)", n->cfg.max_sessions);
    return HD_ENOSPC;
  }
  if (hd_quota_check(n->quota, app, identity, &which) == 0) return 0;
  if (which == HD_QUOTA_APP)
    snprintf(err, errcap, "app '%s' is at its session limit (%zu, max_sessions_per_app)", app,
             hd_quota_per_app(n->quota));
  else
    snprintf(err, errcap, "identity '%s' is at its session limit (%zu, max_sessions_per_identity)",
             identity ? identity : "", hd_quota_per_identity(n->quota));
  return HD_ENOSPC;
}

int node_session_register(hd_node_t *n, hd_session_t *s, hd_room_t *r, const char *identity) {
  int rc;
  hd_quota_limit_t which;
  if ((rc = hd_quota_take(n->quota, r->app, identity, s->id, &which)) < 0) return HD_ENOSPC;
  if ((rc = hd_map_put(&n->by_id, s->id, strlen(s->id), s)) < 0) {
    hd_quota_release(n->quota, s->id);
    return rc;
  }
  if ((rc = hd_map_put(&n->by_ufrag, s->local_ufrag, strlen(s->local_ufrag), s)) < 0) {
    hd_map_del(&n->by_id, s->id, strlen(s->id));
    hd_quota_release(n->quota, s->id);
    return rc;
  }
  s->room = r;
  node_room_in_use(r);
  if (s->kind == HD_SESSION_PUBLISH && !s->owner) { /* WHIP: the room's publisher, what WHEP follows */
    r->publisher = s;
    s->room_publisher = 1;
  } else {
    s->next_in_room = r->viewers;
    r->viewers = s;
  }
  if (s->kind == HD_SESSION_PUBLISH)
    n->n_publish++;
  else if (s->kind == HD_SESSION_PLAY)
    n->n_play++, r->n_viewers++;
  else
    n->n_subscribe++;
  if (n->cfg.shared_sessions) atomic_fetch_add_explicit(n->cfg.shared_sessions, 1, memory_order_relaxed);
  n->stats.sessions_total++;
  return 0;
}

static hd_session_t *route(hd_node_t *n, const uint8_t *buf, size_t len, const struct sockaddr *from) {
  uint8_t key[20];
  size_t kl = node_addr_key(from, key);
  hd_session_t *s = kl ? hd_map_get(&n->by_addr, key, kl) : NULL;
  if (s) return s;
  if (!hd_stun_is_stun(buf, len)) return NULL;
  hd_stun_msg_t m;
  const char *lu, *ru;
  size_t ll, rl;
  if (hd_stun_parse(&m, buf, len) < 0 || hd_stun_username_split(&m, &lu, &ll, &ru, &rl) < 0) return NULL;
  return hd_map_get(&n->by_ufrag, lu, ll);
}

/* A packet of the publisher's RED audio our leg lost, rebuilt from the next
 * one's redundancy: cached (a viewer's NACK may ask for it) and forwarded. */
typedef struct {
  hd_node_t *n;
  hd_session_t *s;
  int in_idx;
  hd_time_t now;
} red_fix_ctx_t;

static void red_rebuilt(void *ud, const uint8_t *pkt, size_t len) {
  red_fix_ctx_t *x = ud;
  hd_rtp_hdr_t h;
  if (hd_rtp_parse(pkt, len, &h) < 0) return;
  hd_in_track_t *it = &x->s->in[x->in_idx];
  if (it->have_cache) hd_rtp_cache_put(&it->cache, pkt, len, x->now);
  x->n->stats.media.red_rebuilt++;
  for (hd_session_t *v = x->s->room->viewers; v; v = v->next_in_room)
    if (v->n_out) hd_session_forward(v, x->s, x->in_idx, &h, x->now, &x->n->stats.media);
}

/* One normalised packet of publisher s's track in_idx to its viewers here
 * and to the other nodes that want it. */
static void forward_publisher_pkt(hd_node_t *n, hd_session_t *s, int in_idx, const hd_rtp_hdr_t *h,
                                  hd_time_t now) {
  for (hd_session_t *v = s->room->viewers; v; v = v->next_in_room)
    if (v->n_out) hd_session_forward(v, s, in_idx, h, now, &n->stats.media);
  if (s->room->cl) room_remote_forward(n, s, in_idx, h, now);
}

void hd_node_feed(hd_node_t *n, uint8_t *buf, size_t len, const struct sockaddr *from, socklen_t fromlen,
                  hd_time_t now) {
  n->now = now;
  n->stats.packets_in++;
  n->stats.bytes_in += len;
  if (n->cl && hd_link_is_link(buf, len)) { /* another node (docs/overlay.md): never a client's */
    room_remote_feed(n, buf, len, from, now);
    return;
  }
  hd_session_t *s = route(n, buf, len, from);
  if (!s) {
    n->stats.drop_unknown_source++;
    return;
  }
  int ice_ok = 0;
  int was_connected = s->peer.state == HD_PEER_CONNECTED;
  hd_peer_stats_t before = s->peer.stats;
  int rc = hd_peer_feed(&s->peer, buf, &len, from, fromlen, now, &ice_ok);
  if (rc < 0) count_peer_drops(&n->stats, &before, &s->peer.stats);
  if (ice_ok) {
    uint8_t key[20];
    size_t kl = node_addr_key(from, key);
    if (kl && hd_map_get(&n->by_addr, key, kl) != s) {
      if (hd_map_put(&n->by_addr, key, kl, s) < 0) HD_LOGW("sfu", "address table full");
    }
  }
  if (rc == HD_ECLOSED) n->stats.drop_closed++;
  hd_session_t *pub = s->room ? s->room->publisher : NULL;
  /* alive (publisher_replaceable): a valid ICE check or authenticated SRTP/SRTCP only */
  if (s == pub && (ice_ok || rc == HD_PEER_PKT_RTP || rc == HD_PEER_PKT_RTCP))
    s->room->publisher_last_rx = now;
  if (!was_connected && s->peer.state == HD_PEER_CONNECTED) {
    HD_LOGI("sfu", "session %s connected", s->id);
    node_shard_attach(n, s);
    if (s->kind == HD_SESSION_PLAY && pub) hd_session_request_keyframe(pub, now, &n->stats.media);
    if (s->kind == HD_SESSION_PLAY && !pub) /* playing a participant (explicit sources) */
      for (int i = 0; i < s->n_out; i++)
        if (s->out[i].active && s->out[i].src && s->out[i].kind == HD_TRACK_VIDEO)
          hd_session_request_keyframe_track(s->out[i].src, s->out[i].src_in, now, &n->stats.media);
    if (s->owner) rooms_on_connected(n, s, now);
  }
  if (rc == HD_PEER_PKT_RTP && s->kind == HD_SESSION_PUBLISH) {
    uint8_t scratch[HD_DATAGRAM_MAX];
    hd_rtp_hdr_t h; /* parsed once, shared by every viewer */
    int in_idx = hd_session_publisher_rtp(s, buf, len, now, scratch, sizeof scratch, &h, &n->stats.media);
    if (in_idx >= 0) {
      hd_in_track_t *it = &s->in[in_idx];
      if (it->kind == HD_TRACK_AUDIO && it->red_pt && h.pt == it->red_pt && !it->muted) {
        /* our leg's losses rebuilt from RED before this packet goes on (sfu/red_repair.h) */
        red_fix_ctx_t rc2 = {n, s, in_idx, now};
        hd_red_repair_feed(&it->red_fix, &h, red_rebuilt, &rc2);
      }
      forward_publisher_pkt(n, s, in_idx, &h, now);
    }
    /* video our leg lost, rebuilt from the publisher's FlexFEC (sfu/fec_in.h) */
    uint8_t rec[HD_DATAGRAM_MAX];
    while ((in_idx = hd_session_publisher_recovered(s, rec, sizeof rec, now, scratch, sizeof scratch, &h,
                                                    &n->stats.media)) >= 0)
      forward_publisher_pkt(n, s, in_idx, &h, now);
  } else if (rc == HD_PEER_PKT_RTCP) {
    hd_session_rtcp(s, s->kind == HD_SESSION_PUBLISH ? s : pub, buf, len, now, &n->stats.media);
  }
  if (s->owner && s->peer.sctp) rooms_on_sctp(n, s, now);
  if (s->peer.state == HD_PEER_FAILED || s->peer.state == HD_PEER_CLOSED)
    node_session_destroy(n, s, s->peer.reason);
}

hd_txq_t *hd_node_txq(hd_node_t *n) { return &n->txq; }

hd_time_t hd_node_next_timeout(hd_node_t *n) {
  hd_time_t t = n->cl ? room_remote_node_next_timeout(n) : HD_TIME_NEVER;
  for (hd_room_t *r = n->rooms; r; r = r->next) {
    if (r->publisher) t = hd_time_min(t, hd_session_next_timeout(r->publisher));
    for (hd_session_t *v = r->viewers; v; v = v->next_in_room)
      t = hd_time_min(t, hd_session_next_timeout(v));
    if (r->participants) t = hd_time_min(t, rooms_next_timeout(n, r));
    if (r->cl) t = hd_time_min(t, room_remote_next_timeout(n, r));
    t = hd_time_min(t, r->close_at);
    if (r->sid_pending) t = hd_time_min(t, r->sid_wait_until);
  }
  return t;
}

void hd_node_handle_timeout(hd_node_t *n, hd_time_t now) {
  n->now = now;
  if (n->cl && room_remote_node_next_timeout(n) <= now) room_remote_node_tick(n, now);
  /* empty rooms whose timeout ran out */
  for (hd_room_t *e = n->rooms, *next; e; e = next) {
    next = e->next;
    if (e->close_at <= now && !e->publisher && !e->viewers && !e->participants && !e->joining)
      room_free(n, e);
  }
  hd_room_t *r = n->rooms;
  while (r) {
    hd_room_t *next_room = r->next;
    /* destroying the last session (or a WHIP publisher's, with its stand-in
     * participant) may empty the room: pinned, it stays until the end */
    node_room_pin(r);
    hd_session_t *pub = r->publisher;
    hd_session_t *list[2048];
    size_t cnt = 0;
    if (pub) list[cnt++] = pub;
    for (hd_session_t *v = r->viewers; v && cnt < 2048; v = v->next_in_room)
      list[cnt++] = v;
    for (size_t i = 0; i < cnt; i++) {
      hd_session_t *s = list[i];
      if (hd_session_next_timeout(s) <= now) {
        hd_session_handle_timeout(s, s->kind == HD_SESSION_PUBLISH ? s : r->publisher, now,
                                  n->cfg.wall_offset, &n->stats.media);
        if (s->owner && s->peer.sctp) rooms_on_sctp(n, s, now);
      }
    }

    for (size_t i = 0; i < cnt; i++) {
      hd_session_t *s = list[i];
      if (s->peer.state == HD_PEER_FAILED || s->peer.state == HD_PEER_CLOSED)
        node_session_destroy(n, s, s->peer.reason);
    }
    if (r->sid_pending && r->sid_wait_until <= now) {
      HD_LOGW("cluster",
              "room %s/%s: Redis gave no cluster sid within %d ms; the joins waiting for it are refused",
              r->app, r->name, (int)((n->cfg.sid_wait > 0 ? n->cfg.sid_wait : HD_ROOM_SID_WAIT) / 1000));
      rooms_sid_settled(n, r, 0, now);
    }
    if (r->participants && rooms_next_timeout(n, r) <= now) rooms_handle_timeout(n, r, now);
    if (r->cl && room_remote_next_timeout(n, r) <= now) room_remote_tick(n, r, now);
    node_room_unpin(n, r); /* r may be freed now */
    r = next_room;
  }
}

hd_node_stats_t *hd_node_stats(hd_node_t *n) { return &n->stats; }
hd_quota_t *hd_node_quota(hd_node_t *n) { return n->quota; }

size_t hd_node_session_count(const hd_node_t *n, int kind) {
  switch (kind) {
  case HD_SESSION_PUBLISH: return n->n_publish;
  case HD_SESSION_PLAY: return n->n_play;
  case HD_SESSION_SUBSCRIBE: return n->n_subscribe;
  default: return n->n_publish + n->n_play + n->n_subscribe;
  }
}
size_t hd_node_room_count(const hd_node_t *n) { return n->n_rooms; }

void hd_node_metrics(hd_node_t *n, hd_node_metrics_t *m) {
  memset(m, 0, sizeof *m);
  m->stats = n->stats;
  m->n_publish = n->n_publish;
  m->n_play = n->n_play;
  m->n_subscribe = n->n_subscribe;
  m->n_participants = n->n_participants;
  m->n_rooms = n->n_rooms;
  for (const hd_room_t *r = n->rooms; r; r = r->next)
    if (r->close_at != HD_TIME_NEVER) m->n_rooms_empty++;
  m->txq_dropped = n->txq.dropped;
}

void hd_node_metrics_add(hd_node_metrics_t *sum, const hd_node_metrics_t *m) {
  _Static_assert(sizeof(hd_node_stats_t) % sizeof(uint64_t) == 0, "hd_node_stats_t holds uint64_t only");
  uint64_t *d = (uint64_t *)&sum->stats;
  const uint64_t *s = (const uint64_t *)&m->stats;
  for (size_t i = 0; i < sizeof m->stats / sizeof *s; i++)
    d[i] += s[i];
  sum->n_publish += m->n_publish;
  sum->n_play += m->n_play;
  sum->n_subscribe += m->n_subscribe;
  sum->n_participants += m->n_participants;
  sum->n_rooms += m->n_rooms;
  sum->n_rooms_empty += m->n_rooms_empty;
  sum->txq_dropped += m->txq_dropped;
}

int hd_node_metrics_text(hd_node_t *n, char *out, size_t cap) {
  hd_node_metrics_t m;
  hd_node_metrics(n, &m);
  return hd_node_metrics_format(&m, out, cap);
}

int hd_node_metrics_format(const hd_node_metrics_t *mm, char *out, size_t cap) {
  const hd_node_stats_t *st = &mm->stats;
  const hd_session_counters_t *m = &st->media;
  int len = snprintf(
      out, cap,
      "# HELP hudong_sessions Current WebRTC sessions by kind.\n# TYPE hudong_sessions gauge\n"
      "hudong_sessions{kind=\"publish\"} %zu\nhudong_sessions{kind=\"play\"} %zu\n"
      "hudong_sessions{kind=\"subscribe\"} %zu\n"
      "# HELP hudong_participants Room participants: connected over /rtc, and WHIP publishers.\n"
      "# TYPE hudong_participants gauge\n"
      "hudong_participants %zu\n"
      "# HELP hudong_rooms Current rooms.\n# TYPE hudong_rooms gauge\nhudong_rooms %zu\n"
      "# HELP hudong_rooms_empty Rooms nobody is in, kept until their empty timeout.\n"
      "# TYPE hudong_rooms_empty gauge\nhudong_rooms_empty %zu\n"
      "# HELP hudong_sessions_created_total Sessions created.\n# TYPE hudong_sessions_created_total counter\n"
      "hudong_sessions_created_total %llu\n"
      "# HELP hudong_sessions_failed_total Sessions ended by ICE/DTLS failure or consent expiry.\n"
      "# TYPE hudong_sessions_failed_total counter\nhudong_sessions_failed_total %llu\n"
      "# HELP hudong_packets_in_total UDP datagrams received on the media port.\n"
      "# TYPE hudong_packets_in_total counter\nhudong_packets_in_total %llu\n"
      "# HELP hudong_bytes_in_total UDP bytes received on the media port.\n"
      "# TYPE hudong_bytes_in_total counter\nhudong_bytes_in_total %llu\n"
      "# HELP hudong_packets_out_total UDP datagrams sent from the media port.\n"
      "# TYPE hudong_packets_out_total counter\nhudong_packets_out_total %llu\n"
      "# HELP hudong_bytes_out_total UDP bytes sent from the media port.\n"
      "# TYPE hudong_bytes_out_total counter\nhudong_bytes_out_total %llu\n"
      "# HELP hudong_packets_dropped_total Datagrams dropped, by reason.\n"
      "# TYPE hudong_packets_dropped_total counter\n"
      "hudong_packets_dropped_total{reason=\"unknown_source\"} %llu\n"
      "hudong_packets_dropped_total{reason=\"stun_auth\"} %llu\n"
      "hudong_packets_dropped_total{reason=\"malformed\"} %llu\n"
      "hudong_packets_dropped_total{reason=\"srtp_auth\"} %llu\n"
      "hudong_packets_dropped_total{reason=\"srtp_replay\"} %llu\n"
      "hudong_packets_dropped_total{reason=\"not_ready\"} %llu\n"
      "hudong_packets_dropped_total{reason=\"dtls\"} %llu\n"
      "hudong_packets_dropped_total{reason=\"unknown_payload_type\"} %llu\n"
      "hudong_packets_dropped_total{reason=\"malformed_rtp\"} %llu\n"
      "hudong_packets_dropped_total{reason=\"malformed_rtcp\"} %llu\n"
      "hudong_packets_dropped_total{reason=\"tx_queue_full\"} %llu\n"
      "hudong_packets_dropped_total{reason=\"send_error\"} %llu\n"
      "hudong_packets_dropped_total{reason=\"session_closed\"} %llu\n"
      "# HELP hudong_nack_received_total Sequence numbers NACKed by viewers.\n"
      "# TYPE hudong_nack_received_total counter\nhudong_nack_received_total %llu\n"
      "# HELP hudong_nack_sent_total Sequence numbers NACKed to publishers (uplink repair).\n"
      "# TYPE hudong_nack_sent_total counter\nhudong_nack_sent_total %llu\n"
      "# HELP hudong_retransmitted_total Packets retransmitted to viewers from the cache.\n"
      "# TYPE hudong_retransmitted_total counter\nhudong_retransmitted_total %llu\n"
      "# HELP hudong_repair_total Loss repair across the publisher's and the viewer's legs, by event: "
      "publisher repairs passed on to viewers that had seen the gap (as RTX where negotiated), viewer NACKs "
      "waiting for such a repair, viewer NACKs that could not be answered, keyframe requests made because a "
      "loss could not be repaired in time, keyframe requests repeated because no keyframe came, repairs sent "
      "twice to a lossy viewer leg, last packets of frames resent unasked when nothing followed them (tail "
      "probes).\n"
      "# TYPE hudong_repair_total counter\n"
      "hudong_repair_total{event=\"forwarded\"} %llu\nhudong_repair_total{event=\"nack_deferred\"} %llu\n"
      "hudong_repair_total{event=\"nack_unrepairable\"} "
      "%llu\nhudong_repair_total{event=\"keyframe_request\"} %llu\n"
      "hudong_repair_total{event=\"keyframe_request_repeated\"} %llu\n"
      "hudong_repair_total{event=\"sent_twice\"} %llu\n"
      "hudong_repair_total{event=\"tail_probe\"} %llu\n"
      "hudong_repair_total{event=\"tail_probe_acked\"} %llu\n"
      "hudong_repair_total{event=\"tail_probe_failed\"} %llu\n"
      "# HELP hudong_layer_switches_total Simulcast layer switches made for subscribers.\n"
      "# TYPE hudong_layer_switches_total counter\nhudong_layer_switches_total %llu\n"
      "# HELP hudong_layer_pauses_total Video tracks paused for a subscriber because not even their lowest "
      "layer fit its downlink estimate.\n"
      "# TYPE hudong_layer_pauses_total counter\nhudong_layer_pauses_total %llu\n"
      "# HELP hudong_probes_total Bandwidth probes started for subscribers held back by their estimate.\n"
      "# TYPE hudong_probes_total counter\nhudong_probes_total %llu\n"
      "# HELP hudong_probe_bytes_total Bytes sent as probes (RTX copies of recent packets).\n"
      "# TYPE hudong_probe_bytes_total counter\nhudong_probe_bytes_total %llu\n"
      "# HELP hudong_pacer_packets_total Subscriber pacers (rtc/pacer.h): packets that waited, video dropped "
      "to the queue caps, probe padding dropped to them.\n"
      "# TYPE hudong_pacer_packets_total counter\nhudong_pacer_packets_total{event=\"waited\"} %llu\n"
      "hudong_pacer_packets_total{event=\"dropped\"} %llu\n"
      "hudong_pacer_packets_total{event=\"padding_refused\"} %llu\n"
      "# HELP hudong_twcc_feedback_received_total Transport-wide CC feedback received from subscribers "
      "(drives the send-side estimator, rtc/bwe.h).\n"
      "# TYPE hudong_twcc_feedback_received_total counter\nhudong_twcc_feedback_received_total %llu\n"
      "# HELP hudong_estimates_received_total Downlink estimates (REMB) received from subscribers.\n"
      "# TYPE hudong_estimates_received_total counter\nhudong_estimates_received_total %llu\n"
      "# HELP hudong_pli_sent_total Keyframe requests (PLI) sent to publishers.\n"
      "# TYPE hudong_pli_sent_total counter\nhudong_pli_sent_total %llu\n"
      "# HELP hudong_rtcp_sent_total RTCP reports sent, by type.\n# TYPE hudong_rtcp_sent_total counter\n"
      "hudong_rtcp_sent_total{type=\"rr\"} %llu\nhudong_rtcp_sent_total{type=\"sr\"} %llu\n"
      "hudong_rtcp_sent_total{type=\"twcc\"} %llu\nhudong_rtcp_sent_total{type=\"remb\"} %llu\n"
      "# HELP hudong_datachannel_messages_total Room data over data channels: sent by participants, "
      "delivered on data channels / WebSockets, refused at the sender, lost at a full receiver.\n"
      "# TYPE hudong_datachannel_messages_total counter\n"
      "hudong_datachannel_messages_total{event=\"in\"} %llu\n"
      "hudong_datachannel_messages_total{event=\"out_datachannel\"} %llu\n"
      "hudong_datachannel_messages_total{event=\"out_websocket\"} %llu\n"
      "hudong_datachannel_messages_total{event=\"refused\"} %llu\n"
      "hudong_datachannel_messages_total{event=\"dropped\"} %llu\n"
      "# HELP hudong_udp_gso_sends_total UDP GSO messages (2+ datagrams to one destination in one send).\n"
      "# TYPE hudong_udp_gso_sends_total counter\nhudong_udp_gso_sends_total %llu\n"
      "# HELP hudong_udp_gso_datagrams_total Datagrams sent inside UDP GSO messages.\n"
      "# TYPE hudong_udp_gso_datagrams_total counter\nhudong_udp_gso_datagrams_total %llu\n",
      mm->n_publish, mm->n_play, mm->n_subscribe, mm->n_participants, mm->n_rooms, mm->n_rooms_empty,
      (unsigned long long)st->sessions_total, (unsigned long long)st->sessions_failed,
      (unsigned long long)st->packets_in, (unsigned long long)st->bytes_in,
      (unsigned long long)st->packets_out, (unsigned long long)st->bytes_out,
      (unsigned long long)st->drop_unknown_source, (unsigned long long)st->drop_stun_auth,
      (unsigned long long)st->drop_malformed, (unsigned long long)st->drop_srtp_auth,
      (unsigned long long)st->drop_srtp_replay, (unsigned long long)st->drop_not_ready,
      (unsigned long long)st->drop_dtls, (unsigned long long)m->drop_unknown_pt,
      (unsigned long long)m->drop_malformed_rtp, (unsigned long long)m->drop_malformed_rtcp,
      (unsigned long long)(st->drop_txq_full + mm->txq_dropped), (unsigned long long)st->drop_send_error,
      (unsigned long long)st->drop_closed, (unsigned long long)m->nack_received,
      (unsigned long long)m->nack_sent, (unsigned long long)m->retransmitted,
      (unsigned long long)m->repair_forwarded, (unsigned long long)m->nack_deferred,
      (unsigned long long)m->nack_unrepairable, (unsigned long long)m->pli_unrepairable,
      (unsigned long long)m->pli_retried, (unsigned long long)m->repairs_doubled,
      (unsigned long long)m->tail_probes, (unsigned long long)m->tail_probes_acked,
      (unsigned long long)m->tail_probes_failed, (unsigned long long)m->layer_switches,
      (unsigned long long)m->layer_pauses, (unsigned long long)m->probes_started,
      (unsigned long long)m->probe_bytes, (unsigned long long)m->paced, (unsigned long long)m->pacer_dropped,
      (unsigned long long)m->pacer_padding_refused, (unsigned long long)m->twcc_received,
      (unsigned long long)m->remb_received, (unsigned long long)m->pli_forwarded,
      (unsigned long long)m->rr_sent, (unsigned long long)m->sr_sent, (unsigned long long)m->twcc_sent,
      (unsigned long long)m->remb_sent, (unsigned long long)st->dc_msgs_in,
      (unsigned long long)st->dc_msgs_out, (unsigned long long)st->dc_msgs_ws,
      (unsigned long long)st->dc_msgs_refused, (unsigned long long)st->dc_msgs_dropped,
      (unsigned long long)st->udp_gso_sends, (unsigned long long)st->udp_gso_datagrams);
  if (len < 0 || (size_t)len >= cap) return HD_ENOSPC;
  int kr =
      snprintf(out + len, cap - (size_t)len,
               "# HELP hudong_red_rebuilt_total Audio packets a publisher's leg lost, rebuilt from the "
               "RED redundancy of the next one and forwarded (issue 13).\n"
               "# TYPE hudong_red_rebuilt_total counter\nhudong_red_rebuilt_total %llu\n"
               "# HELP hudong_fec_received_total FlexFEC repair packets received from publishers.\n"
               "# TYPE hudong_fec_received_total counter\nhudong_fec_received_total %llu\n"
               "# HELP hudong_fec_recovered_total Video packets a publisher's leg lost, rebuilt from its "
               "FlexFEC and forwarded (issue 13).\n"
               "# TYPE hudong_fec_recovered_total counter\nhudong_fec_recovered_total %llu\n"
               "# HELP hudong_fec_sent_total FlexFEC repair packets the node computed over what it sent "
               "subscribers that negotiated FlexFEC, and sent them (sfu/session_fec.h).\n"
               "# TYPE hudong_fec_sent_total counter\nhudong_fec_sent_total %llu\n"
               "# HELP hudong_resent_exact_total Repairs on a media SSRC (no RTX) sent as the first send's "
               "exact bytes (sfu/resend_cache.h).\n"
               "# TYPE hudong_resent_exact_total counter\nhudong_resent_exact_total %llu\n"
               "# HELP hudong_same_index_refused_total Packets not sent because their seq (SRTP index) "
               "already went out with other bytes (RFC 7714 section 8.3).\n"
               "# TYPE hudong_same_index_refused_total counter\nhudong_same_index_refused_total %llu\n"
               "# HELP hudong_fec_copy_refused_total RTX copies not sent to a FlexFEC subscriber because "
               "the first send's bytes were gone (a rebuilt copy could differ from what FlexFEC covered).\n"
               "# TYPE hudong_fec_copy_refused_total counter\nhudong_fec_copy_refused_total %llu\n"
               "# HELP hudong_temporal_dropped_total VP8 packets of temporal layers not forwarded to a "
               "subscriber whose estimate holds it to a lower frame rate (sfu/temporal.h).\n"
               "# TYPE hudong_temporal_dropped_total counter\nhudong_temporal_dropped_total %llu\n",
               (unsigned long long)m->red_rebuilt, (unsigned long long)m->fec_received,
               (unsigned long long)m->fec_recovered, (unsigned long long)m->fec_sent,
               (unsigned long long)m->resent_exact, (unsigned long long)m->same_index_refused,
               (unsigned long long)m->fec_copy_refused, (unsigned long long)m->temporal_dropped);
  if (kr < 0 || (size_t)kr >= cap - (size_t)len) return HD_ENOSPC;
  len += kr;
  /* layer selection (issue 11 item 7): estimate histogram, publisher layer changes */
  static const uint64_t bounds[] = HD_ESTIMATE_BOUNDS;
  int k = snprintf(
      out + len, cap - (size_t)len,
      "# HELP hudong_publisher_layer_changes_total Simulcast layer sets sent to publishers "
      "(publish_layers: layers no subscriber needs paused, or resumed).\n"
      "# TYPE hudong_publisher_layer_changes_total counter\nhudong_publisher_layer_changes_total %llu\n"
      "# HELP hudong_downlink_estimate_bps Subscribers' downlink estimates, sampled once a second "
      "each.\n# TYPE hudong_downlink_estimate_bps histogram\n",
      (unsigned long long)m->publisher_layer_changes);
  if (k < 0 || (size_t)k >= cap - (size_t)len) return HD_ENOSPC;
  len += k;
  uint64_t cum = 0;
  for (size_t b = 0; b <= sizeof bounds / sizeof bounds[0]; b++) {
    cum += m->estimate_bucket[b];
    char le[32];
    if (b < sizeof bounds / sizeof bounds[0])
      snprintf(le, sizeof le, "%llu", (unsigned long long)bounds[b]);
    else
      snprintf(le, sizeof le, "+Inf");
    k = snprintf(out + len, cap - (size_t)len, "hudong_downlink_estimate_bps_bucket{le=\"%s\"} %llu\n", le,
                 (unsigned long long)cum);
    if (k < 0 || (size_t)k >= cap - (size_t)len) return HD_ENOSPC;
    len += k;
  }
  k = snprintf(out + len, cap - (size_t)len,
               "hudong_downlink_estimate_bps_sum %llu\nhudong_downlink_estimate_bps_count %llu\n",
               (unsigned long long)m->estimate_sum, (unsigned long long)m->estimate_count);
  if (k < 0 || (size_t)k >= cap - (size_t)len) return HD_ENOSPC;
  return len + k;
}
