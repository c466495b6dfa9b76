/* Rooms: participants joined over WebSocket signaling (docs/protocol.md,
 * "Rooms"). Each participant has up to two PeerConnections: a publisher PC
 * (the client offers, we answer, as for WHIP) and a subscriber PC (we offer the
 * tracks it subscribes to and re-offer when they change; the client answers).
 * Forwarding reuses the session machinery: a subscriber PC's out tracks are
 * bound to (publisher session, track) and hd_session_forward does the rest.
 * Data channels (docs/protocol.md "Data channels"): the publisher PC may carry
 * an SCTP association with the channels "hd-reliable" and "hd-lossy"; what a
 * participant sends on one goes to every other participant on its channel of
 * the same reliability, or over its WebSocket when it has none.
 * Sans-IO: messages in, messages out through cfg.signal_send. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/err.h"
#include "base/log.h"
#include "base/rand.h"
#include "proto/sdp.h"
#include "proto/sdp_negotiate.h"
#include "proto/sdp_offer.h"
#include "proto/token.h"
#include "proto/turn_cred.h"
#include "sfu/conn_quality.h"
#include "sfu/node_internal.h"
#include "sfu/signal.h"
#include "sfu/qsample.h"

#include "sfu/rooms_internal.h"

/* ---- lifecycle events (webhooks) ---- */

static void fire(hd_node_t *n, hd_webhook_event_type_t type, const hd_participant_t *p,
                 const pub_track_t *t) {
  if (!n->cfg.on_event || p->remote) return; /* a remote participant's events fire on its own node */
  hd_webhook_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.type = type;
  ev.app = p->room->app;
  ev.room_name = p->room->name;
  ev.room_sid = p->room->sid;
  ev.participant_sid = p->sid;
  ev.participant_identity = p->identity;
  if (t) {
    ev.track_sid = t->sid;
    ev.track_kind = t->kind == HD_TRACK_AUDIO ? "audio" : "video";
    ev.track_source = hd_signal_source_name((hd_signal_source_t)t->source);
  }
  n->cfg.on_event(n->cfg.event_ud, &ev);
}

/* ---- output ---- */

void rooms_emit(hd_node_t *n, hd_participant_t *p, const char *text, int len) {
  if (len > 0 && p && !p->leaving && !p->whip && !p->remote && n->cfg.signal_send)
    n->cfg.signal_send(n->cfg.signal_ud, p->conn, text, (size_t)len);
}

static void emit_conn(hd_node_t *n, void *conn, const char *text, int len) {
  if (len > 0 && n->cfg.signal_send) n->cfg.signal_send(n->cfg.signal_ud, conn, text, (size_t)len);
}

void rooms_send_error(hd_node_t *n, void *conn, const char *id, hd_signal_errcode_t code, const char *msg) {
  char buf[1024];
  int len = hd_signal_write_error(id, code, msg, buf, sizeof buf);
  emit_conn(n, conn, buf, len);
}

void rooms_broadcast(hd_node_t *n, hd_room_t *r, const hd_participant_t *except, const char *text, int len) {
  room_remote_changed(n, r); /* what others are told may be what other nodes must be told */
  for (hd_participant_t *q = r->participants; q; q = q->next)
    if (q != except) rooms_emit(n, q, text, len);
}

static void random_sid(char *out, const char *prefix) {
  char tok[13];
  hd_random_token(tok, 12);
  snprintf(out, 24, "%s%s", prefix, tok);
}

const char *rooms_track_codec(const hd_participant_t *p, const pub_track_t *t) {
  if (!p->pub_sess || t->in_idx < 0) return "";
  return p->pub_sess->in[t->in_idx].codec;
}

static void track_info(const hd_participant_t *p, const pub_track_t *t, hd_signal_track_t *out) {
  out->sid = t->sid;
  out->kind = t->kind == HD_TRACK_AUDIO ? HD_SIGNAL_KIND_AUDIO : HD_SIGNAL_KIND_VIDEO;
  out->source = (hd_signal_source_t)t->source;
  out->muted = t->muted;
  out->width = t->width;
  out->height = t->height;
  out->codec = rooms_track_codec(p, t);
}

static void participant_info(const hd_participant_t *p, hd_signal_participant_t *out,
                             hd_signal_track_t *tracks, int with_permissions) {
  memset(out, 0, sizeof *out);
  out->sid = p->sid;
  out->identity = p->identity;
  out->name = p->name;
  out->metadata = p->metadata;
  out->joined_at = p->joined_at;
  for (int i = 0; i < p->n_tracks; i++)
    track_info(p, &p->tracks[i], &tracks[i]);
  out->tracks = tracks;
  out->n_tracks = (size_t)p->n_tracks;
  if (with_permissions) {
    out->has_permissions = 1;
    out->permissions.can_publish = p->claims.can_publish;
    out->permissions.can_subscribe = p->claims.can_subscribe;
    out->permissions.can_publish_data = p->claims.can_publish_data;
    out->permissions.room_admin = p->claims.room_admin;
    out->permissions.hidden = p->claims.hidden;
  }
}

static void broadcast_participant(hd_node_t *n, hd_participant_t *p, hd_signal_type_t type,
                                  int include_self) {
  if (p->claims.hidden) return;
  hd_signal_participant_t info;
  hd_signal_track_t tracks[MAX_PUB_TRACKS];
  participant_info(p, &info, tracks, 0);
  char *buf = malloc(OUT_CAP);
  if (!buf) return;
  int len = hd_signal_write_participant(type, &info, buf, OUT_CAP);
  rooms_broadcast(n, p->room, include_self ? NULL : p, buf, len);
  free(buf);
}

/* ---- subscriptions (the subscriber PC) ---- */

static void sub_negotiate(hd_node_t *n, hd_participant_t *q);

static int ensure_offerer(hd_node_t *n, hd_participant_t *q) {
  if (q->offerer) return 0;
  q->offerer = calloc(1, sizeof *q->offerer);
  if (!q->offerer) return HD_ENOMEM;
  hd_random_token(q->sub_ufrag, 16);
  hd_random_token(q->sub_pwd, 32);
  hd_sdp_offerer_params_t op = {.ice_ufrag = q->sub_ufrag,
                                .ice_pwd = q->sub_pwd,
                                .fingerprint_sha256 = hd_dtls_cert_fingerprint(n->cert),
                                .cand_ip = n->rtc_ip,
                                .cand_port = n->cfg.rtc_port,
                                .cand_tcp_port = n->cfg.rtc_tcp_port,
                                .cname = "hudong",
                                /* transport-wide CC (issue 11 item 2): the
                                 * subscriber's feedback drives the node's
                                 * send-side estimator; without it only REMB
                                 * (starting near 80 kbit/s in Chromium) was
                                 * left to the allocator */
                                .twcc = hd_session_twcc_enabled()};
  int rc = hd_sdp_offerer_init(q->offerer, &op);
  if (rc < 0) {
    free(q->offerer);
    q->offerer = NULL;
  }
  return rc;
}

sub_t *rooms_sub_find(hd_participant_t *q, const char *track_sid) {
  for (int i = 0; i < q->n_subs; i++)
    if (!strcmp(q->subs[i].track_sid, track_sid)) return &q->subs[i];
  return NULL;
}

/* q starts receiving track t of participant p (staged; sub_negotiate offers it). */
static int sub_add(hd_node_t *n, hd_participant_t *q, hd_participant_t *p, const pub_track_t *t) {
  if (q == p || !q->claims.can_subscribe || !p->pub_sess || t->in_idx < 0) return 0;
  if (rooms_sub_find(q, t->sid)) return 0;
  if (q->n_subs >= MAX_SUBS) return HD_ENOSPC;
  int rc = ensure_offerer(n, q);
  if (rc < 0) return rc;
  const hd_in_track_t *in = &p->pub_sess->in[t->in_idx];
  sub_t *s = &q->subs[q->n_subs];
  memset(s, 0, sizeof *s);
  s->pub = p;
  s->told_layer = -1;
  snprintf(s->track_sid, sizeof s->track_sid, "%s", t->sid);
  s->ssrc = hd_random_u32() | 1;
  s->rtx_ssrc = in->kind == HD_TRACK_VIDEO ? (hd_random_u32() | 1) : 0;
  /* FlexFEC only to a client that said it decodes it (Chromium does not by default) */
  s->fec_ssrc = in->kind == HD_TRACK_VIDEO && q->flexfec ? (hd_random_u32() | 1) : 0;
  if (s->fec_ssrc && (s->fec_ssrc == s->ssrc || s->fec_ssrc == s->rtx_ssrc)) s->fec_ssrc ^= 2;
  hd_sdp_out_track_t ot;
  rc = hd_sdp_out_track_from_negotiated(&ot, &p->pub_sess->neg.media[in->media_index], s->ssrc, s->rtx_ssrc,
                                        p->sid, t->sid);
  if (rc < 0) return rc;
  ot.fec_ssrc = s->fec_ssrc;
  rc = hd_sdp_offerer_add_track(q->offerer, &ot, s->mid, sizeof s->mid);
  if (rc < 0) return rc;
  q->n_subs++;
  return 0;
}

static void sub_remove_at(hd_participant_t *q, int i) {
  sub_t *s = &q->subs[i];
  if (q->offerer) hd_sdp_offerer_remove_track(q->offerer, s->mid);
  if (q->sub_sess) {
    int oi = hd_session_track_by_mid(q->sub_sess, s->mid);
    if (oi >= 0) {
      q->sub_sess->out[oi].active = 0;
      q->sub_sess->out[oi].src = NULL;
    }
  }
  memmove(&q->subs[i], &q->subs[i + 1], (size_t)(q->n_subs - i - 1) * sizeof q->subs[0]);
  q->n_subs--;
}

/* Everyone else with auto_subscribe takes p's tracks 0..nt-1 (those with
 * added[i] set, or all when added is NULL), one renegotiation each. */
static void auto_subscribe_others(hd_node_t *n, hd_participant_t *p, const int *added, int nt) {
  for (hd_participant_t *q = p->room->participants; q; q = q->next) {
    if (q == p || !q->auto_subscribe) continue;
    int changed = 0;
    for (int i = 0; i < nt; i++)
      if ((!added || added[i]) && sub_add(n, q, p, &p->tracks[i]) == 0) changed = 1;
    if (changed) sub_negotiate(n, q);
  }
}

/* Everyone stops receiving track `sid` of p (or every track of p if sid is NULL). */
static void unsubscribe_all(hd_node_t *n, hd_participant_t *p, const char *sid) {
  for (hd_participant_t *q = p->room->participants; q; q = q->next) {
    int changed = 0;
    for (int i = q->n_subs - 1; i >= 0; i--)
      if (q->subs[i].pub == p && (!sid || !strcmp(q->subs[i].track_sid, sid))) {
        sub_remove_at(q, i);
        changed = 1;
      }
    if (changed && !q->leaving) sub_negotiate(n, q);
  }
}

/* The subscriber PC's session exists from the first offer on, answering ICE
 * checks at once; its DTLS starts when the answer arrives. */
static int create_sub_session(hd_node_t *n, hd_participant_t *q, char *err, size_t errcap) {
  int rc = node_capacity_check(n, q->room->app, q->identity, err, errcap);
  if (rc < 0) return rc;
  hd_session_t *s =
      node_session_new(n, HD_SESSION_SUBSCRIBE, q->sub_ufrag, q->sub_pwd, NULL, NULL, 0, n->now, &rc);
  if (!s) {
    snprintf(err, errcap, "subscriber transport setup failed: %s", hd_strerror(rc));
    return rc;
  }
  s->owner = q;
  if ((rc = node_session_register(n, s, q->room, q->identity)) < 0) {
    node_session_discard(s);
    if (rc != HD_ENOSPC || node_capacity_check(n, q->room->app, q->identity, err, errcap) == 0)
      snprintf(err, errcap, "subscriber transport setup failed: %s", hd_strerror(rc));
    return rc == HD_ENOSPC ? rc : HD_ENOMEM;
  }
  q->sub_sess = s;
  return 0;
}

/* A capacity refusal (node, tenant or identity session cap): 503 node_full
 * with a retry hint, like HTTP's 503 + Retry-After. */
static void send_node_full(hd_node_t *n, void *conn, const char *id, const char *why) {
  char buf[1024];
  int len =
      hd_signal_write_error_retry(id, HD_SIGNAL_ERR_NODE_FULL, why, HD_NODE_RETRY_AFTER_S, buf, sizeof buf);
  emit_conn(n, conn, buf, len);
}

/* Sends a new subscriber offer when subscriptions changed and none is pending. */
static void sub_negotiate(hd_node_t *n, hd_participant_t *q) {
  if (q->leaving || q->negotiating || !q->offerer || !hd_sdp_offerer_needs_offer(q->offerer)) return;
  hd_sdp_t *sdp = malloc(sizeof *sdp);
  char *text = malloc(ANSWER_CAP), *buf = malloc(OUT_CAP);
  if (!sdp || !text || !buf) goto out;
  if (hd_sdp_offerer_create_offer(q->offerer, sdp) < 0) goto out;
  if (hd_sdp_write(sdp, text, ANSWER_CAP) < 0) {
    hd_sdp_offerer_rollback(q->offerer);
    goto out;
  }
  hd_signal_sub_track_t tracks[MAX_SUBS];
  size_t nt = 0;
  for (int i = 0; i < q->n_subs; i++) {
    tracks[nt].mid = q->subs[i].mid;
    tracks[nt].track_sid = q->subs[i].track_sid;
    tracks[nt].participant_sid = q->subs[i].pub->sid;
    nt++;
  }
  int len = hd_signal_write_subscriber_offer(text, tracks, nt, buf, OUT_CAP);
  if (len < 0) {
    hd_sdp_offerer_rollback(q->offerer);
    goto out;
  }
  if (!q->sub_sess) {
    /* the transport first: an offer the node could not serve would only fail later */
    char err[256] = "";
    int rc = create_sub_session(n, q, err, sizeof err);
    if (rc < 0) {
      hd_sdp_offerer_rollback(q->offerer);
      if (rc == HD_ENOSPC)
        send_node_full(n, q->conn, NULL, err); /* retried by the next subscribe / published track */
      else
        rooms_send_error(n, q->conn, NULL, HD_SIGNAL_ERR_INTERNAL, err);
      goto out;
    }
  }
  q->negotiating = 1;
  rooms_emit(n, q, buf, len);
out:
  free(sdp);
  free(text);
  free(buf);
}

pub_track_t *rooms_track_by_sid(hd_participant_t *p, const char *sid) {
  for (int i = 0; i < p->n_tracks; i++)
    if (!strcmp(p->tracks[i].sid, sid)) return &p->tracks[i];
  return NULL;
}

/* The viewer q's answer refused (port 0) the section of a track it is
 * subscribed to: it cannot decode that codec/profile (e.g. a native SDK viewer
 * offered H.264, a browser offered an H.264 profile it lacks). The publisher is
 * told once per viewer and track ("track_refused", docs/protocol.md), so a
 * sender that can change what it sends does: the RTMP ingest stops passing
 * H.264 through and transcodes to VP8 (docs/egress.md "RTMP ingest"). */
static void tell_refused(hd_node_t *n, hd_participant_t *q, sub_t *sub) {
  sub->refused_told = 1;
  pub_track_t *t = sub->pub ? rooms_track_by_sid(sub->pub, sub->track_sid) : NULL;
  hd_session_t *ps = sub->pub ? sub->pub->pub_sess : NULL;
  if (!t || !ps || t->in_idx < 0 || t->in_idx >= ps->n_in) return;
  /* an identity of control characters escapes to 6 bytes each (768 for the
   * longest), the fmtp as much: 4 KiB holds the worst */
  char buf[4096];
  int len = hd_signal_write_track_refused(t->sid, ps->in[t->in_idx].codec, ps->in[t->in_idx].fmtp,
                                          q->identity, buf, sizeof buf);
  if (len < 0) {
    HD_LOGW("room", "track_refused for %s not sent: %s", t->sid, hd_strerror(len));
    return;
  }
  rooms_emit(n, sub->pub, buf, len);
  HD_LOGI("room", "participant %s refused track %s (%s %s) of %s", q->identity, t->sid,
          ps->in[t->in_idx].codec, ps->in[t->in_idx].fmtp, sub->pub->identity);
}

/* Binds the subscriber PC's out tracks to their sources after an answer. */
static void sync_out_tracks(hd_node_t *n, hd_participant_t *q, hd_time_t now) {
  hd_session_t *ss = q->sub_sess;
  for (int i = 0; i < ss->neg.n_media; i++) {
    const hd_sdp_media_negotiated_t *m = &ss->neg.media[i];
    int oi = hd_session_track_by_mid(ss, m->mid);
    sub_t *sub = NULL;
    for (int j = 0; j < q->n_subs; j++)
      if (!strcmp(q->subs[j].mid, m->mid)) sub = &q->subs[j];
    if (!m->active && sub && !sub->refused_told) tell_refused(n, q, sub);
    if (!m->active || !sub) {
      if (oi >= 0) {
        ss->out[oi].active = 0;
        ss->out[oi].src = NULL;
      }
      continue;
    }
    pub_track_t *t = rooms_track_by_sid(sub->pub, sub->track_sid);
    if (!t || !sub->pub->pub_sess) continue;
    int fresh = oi < 0;
    if (fresh) oi = hd_session_add_out_track(ss, i, sub->ssrc, sub->rtx_ssrc);
    if (oi < 0) continue;
    /* a kept track takes FlexFEC as this answer says, not as the first one did */
    if (!fresh && hd_session_out_track_renegotiated(ss, oi, i) > 0)
      HD_LOGI("room", "participant %s: track %s FlexFEC %s by the answer", q->identity, sub->track_sid,
              ss->out[oi].fec_pt ? "taken up" : "dropped");
    ss->out[oi].src = sub->pub->pub_sess;
    ss->out[oi].src_in = t->in_idx;
    if (fresh && ss->peer.state == HD_PEER_CONNECTED)
      hd_session_request_keyframe_track(sub->pub->pub_sess, t->in_idx, now, &n->stats.media);
  }
}

static int handle_subscriber_answer(hd_node_t *n, hd_participant_t *q, const hd_signal_msg_t *m,
                                    hd_time_t now) {
  char err[256] = "";
  if (!q->offerer || !q->negotiating) {
    rooms_send_error(n, q->conn, m->id, HD_SIGNAL_ERR_CONFLICT, "no subscriber offer is pending");
    return 0;
  }
  hd_sdp_t *sdp = malloc(sizeof *sdp);
  hd_sdp_negotiated_t *neg = malloc(sizeof *neg);
  int rc = HD_ENOMEM;
  if (!sdp || !neg) goto out;
  const char *text = m->subscriber_answer.sdp;
  rc = hd_sdp_parse(sdp, text, strlen(text), err, sizeof err);
  if (rc == 0) rc = hd_sdp_offerer_apply_answer(q->offerer, sdp, neg, err, sizeof err);
  if (rc < 0) {
    hd_sdp_offerer_rollback(q->offerer);
    q->negotiating = 0;
    rooms_send_error(n, q->conn, m->id, HD_SIGNAL_ERR_BAD_REQUEST, err[0] ? err : "unusable answer");
    goto out;
  }
  q->negotiating = 0;
  if (!q->sub_sess) {
    char why[256] = "";
    int crc = create_sub_session(n, q, why, sizeof why);
    if (crc == HD_ENOSPC) {
      send_node_full(n, q->conn, m->id, why);
      goto out;
    }
    if (crc < 0) {
      rooms_send_error(n, q->conn, m->id, HD_SIGNAL_ERR_INTERNAL, why);
      goto out;
    }
  }
  q->sub_sess->neg = *neg;
  if (!q->sub_sess->peer.dtls && hd_peer_set_remote(&q->sub_sess->peer, neg->remote_ufrag,
                                                    neg->remote_fingerprint, neg->dtls_server, now) < 0) {
    rooms_send_error(n, q->conn, m->id, HD_SIGNAL_ERR_INTERNAL, "subscriber DTLS setup failed");
    goto out;
  }
  sync_out_tracks(n, q, now);
  rc = 0;
  sub_negotiate(n, q); /* changes staged while this offer was out */
out:
  free(sdp);
  free(neg);
  return 0;
}

/* ---- publishing (the publisher PC) ---- */

static int negotiate_publisher(hd_node_t *n, hd_participant_t *p, const char *offer, int media_allowed,
                               char *answer, char *err, size_t errcap, hd_time_t now) {
  hd_sdp_t *osdp = malloc(sizeof *osdp), *asdp = malloc(sizeof *asdp);
  hd_sdp_negotiated_t *neg = malloc(sizeof *neg);
  hd_session_t *s = NULL;
  int rc = HD_ENOMEM;
  if (!osdp || !asdp || !neg) goto out;
  rc = hd_sdp_parse(osdp, offer, strlen(offer), err, errcap);
  if (rc < 0) goto out;
  char ufrag[24], pwd[40];
  if (p->pub_sess) {
    snprintf(ufrag, sizeof ufrag, "%s", p->pub_sess->local_ufrag);
    snprintf(pwd, sizeof pwd, "%s", p->pub_sess->local_pwd);
  } else {
    hd_random_token(ufrag, 16);
    hd_random_token(pwd, 32);
  }
  hd_sdp_answer_params_t ap = {.ice_ufrag = ufrag,
                               .ice_pwd = pwd,
                               .fingerprint_sha256 = hd_dtls_cert_fingerprint(n->cert),
                               .cand_ip = n->rtc_ip,
                               .cand_port = n->cfg.rtc_port,
                               .cand_tcp_port = n->cfg.rtc_tcp_port,
                               .direction = HD_SDP_RECVONLY,
                               .cname = "hudong",
                               .stream_id = p->sid,
                               .datachannel = 1};
  rc = hd_sdp_negotiate(osdp, &ap, asdp, neg, err, errcap);
  if (rc < 0) goto out;
  if (!media_allowed) /* data channels only: no audio/video may be accepted */
    for (int i = 0; i < neg->n_media; i++)
      if (neg->media[i].active &&
          (neg->media[i].kind == HD_SDP_AUDIO || neg->media[i].kind == HD_SDP_VIDEO)) {
        snprintf(err, errcap, "%s",
                 p->claims.hidden ? "hidden participants cannot publish" : "token lacks canPublish");
        rc = HD_EFORBIDDEN;
        goto out;
      }
  if (p->pub_sess && strcmp(neg->remote_ufrag, p->pub_sess->neg.remote_ufrag)) {
    snprintf(err, errcap, "ICE restart is not supported; reconnect instead");
    rc = HD_EUNSUPPORTED;
    goto out;
  }
  rc = hd_sdp_write(asdp, answer, ANSWER_CAP);
  if (rc < 0) {
    snprintf(err, errcap, "answer too large");
    goto out;
  }
  if (!p->pub_sess) {
    if ((rc = node_capacity_check(n, p->room->app, p->identity, err, errcap)) < 0) goto out;
    s = node_session_new(n, HD_SESSION_PUBLISH, ufrag, pwd, neg, NULL, 0, now, &rc);
    if (s) {
      s->owner = p;
      rc = node_session_register(n, s, p->room, p->identity);
      if (rc < 0) node_session_discard(s);
      if (rc == HD_ENOSPC && node_capacity_check(n, p->room->app, p->identity, err, errcap) < 0) goto out;
    }
    if (rc < 0) {
      snprintf(err, errcap, "publisher transport setup failed: %s", hd_strerror(rc));
      if (rc == HD_ENOSPC) rc = HD_ENOMEM; /* a table, not a cap: internal */
      goto out;
    }
    p->pub_sess = s;
  } else {
    /* Renegotiation keeps the transport; m-lines keep their order (JSEP), so
     * tracks keep their media_index; new sections get new tracks. */
    s = p->pub_sess;
    s->neg = *neg;
    /* a kept track may take FlexFEC up, drop it, or take a new repair SSRC */
    if (hd_session_publisher_renegotiated(s) > 0)
      HD_LOGI("room", "participant %s: FlexFEC on a published track changed by its re-offer", p->identity);
  }
  if (neg->sctp && hd_peer_enable_sctp(&s->peer, neg->remote_sctp_port, neg->remote_max_message, now) < 0)
    HD_LOGW("room", "participant %s: data channels unavailable", p->identity);
  rc = 0;
out:
  free(osdp);
  free(asdp);
  free(neg);
  return rc;
}

static int handle_publish_offer(hd_node_t *n, hd_participant_t *p, const hd_signal_msg_t *m, hd_time_t now) {
  /* without canPublish (or hidden) a publisher PC may still carry data channels */
  int media_allowed = p->claims.can_publish && !p->claims.hidden;
  if (!media_allowed && m->publish_offer.n_tracks) {
    rooms_send_error(n, p->conn, m->id, HD_SIGNAL_ERR_FORBIDDEN,
                     p->claims.hidden ? "hidden participants cannot publish" : "token lacks canPublish");
    return 0;
  }
  char err[512] = "";
  char *answer = malloc(ANSWER_CAP);
  if (!answer) return 0;
  int rc = negotiate_publisher(n, p, m->publish_offer.sdp, media_allowed, answer, err, sizeof err, now);
  if (rc == HD_ENOSPC) { /* a session cap: 503 with a retry hint, the connection stays */
    send_node_full(n, p->conn, m->id, err);
    free(answer);
    return 0;
  }
  if (rc < 0) {
    rooms_send_error(n, p->conn, m->id,
                     rc == HD_EFORBIDDEN ? HD_SIGNAL_ERR_FORBIDDEN
                     : rc == HD_ENOMEM   ? HD_SIGNAL_ERR_INTERNAL
                                         : HD_SIGNAL_ERR_BAD_REQUEST,
                     err[0] ? err : hd_strerror(rc));
    free(answer);
    return 0;
  }
  /* the full set of tracks after this offer */
  pub_track_t next[MAX_PUB_TRACKS];
  int nn = 0, added[MAX_PUB_TRACKS] = {0};
  for (size_t i = 0; i < m->publish_offer.n_tracks && nn < MAX_PUB_TRACKS; i++) {
    const hd_signal_pub_track_t *mt = &m->publish_offer.tracks[i];
    int in_idx = hd_session_track_by_mid(p->pub_sess, mt->mid);
    if (in_idx < 0) continue; /* not accepted (e.g. unsupported codec): not published */
    pub_track_t *t = &next[nn];
    memset(t, 0, sizeof *t);
    pub_track_t *old = NULL;
    for (int j = 0; j < p->n_tracks; j++)
      if (!strcmp(p->tracks[j].cid, mt->cid)) old = &p->tracks[j];
    if (old)
      snprintf(t->sid, sizeof t->sid, "%s", old->sid);
    else {
      random_sid(t->sid, "TR_");
      added[nn] = 1;
    }
    snprintf(t->cid, sizeof t->cid, "%s", mt->cid);
    snprintf(t->mid, sizeof t->mid, "%s", mt->mid);
    t->kind = mt->kind == HD_SIGNAL_KIND_AUDIO ? HD_TRACK_AUDIO : HD_TRACK_VIDEO;
    t->source = mt->source;
    t->muted = mt->muted;
    t->width = mt->width;
    t->height = mt->height;
    t->in_idx = in_idx;
    nn++;
  }
  /* unpublished: tracks no longer in the set. Everyone hears track_unpublished
   * before the subscriber offer that drops the track (docs/protocol.md
   * "Ordering"): a client can tell a removed track from a lost one. */
  int gone[MAX_PUB_TRACKS] = {0};
  for (int j = 0; j < p->n_tracks; j++) {
    int kept = 0;
    for (int i = 0; i < nn; i++)
      if (!strcmp(next[i].sid, p->tracks[j].sid)) kept = 1;
    if (kept) continue;
    gone[j] = 1;
    fire(n, HD_WEBHOOK_TRACK_UNPUBLISHED, p, &p->tracks[j]);
    char buf[512];
    int len = hd_signal_write_track_unpublished(p->sid, p->tracks[j].sid, buf, sizeof buf);
    if (!p->claims.hidden) rooms_broadcast(n, p->room, p, buf, len);
  }
  for (int j = 0; j < p->n_tracks; j++)
    if (gone[j]) unsubscribe_all(n, p, p->tracks[j].sid);
  memcpy(p->tracks, next, sizeof next[0] * (size_t)nn);
  p->n_tracks = nn;
  /* answer first, then tell the others */
  hd_signal_track_ref_t refs[MAX_PUB_TRACKS];
  for (int i = 0; i < nn; i++) {
    refs[i].cid = p->tracks[i].cid;
    refs[i].sid = p->tracks[i].sid;
  }
  char *buf = malloc(OUT_CAP);
  if (buf) {
    int len = hd_signal_write_publish_answer(m->id, answer, refs, (size_t)nn, buf, OUT_CAP);
    rooms_emit(n, p, buf, len);
    for (int i = 0; i < nn; i++) {
      if (added[i]) fire(n, HD_WEBHOOK_TRACK_PUBLISHED, p, &p->tracks[i]);
      if (!added[i] || p->claims.hidden) continue;
      hd_signal_track_t ti;
      track_info(p, &p->tracks[i], &ti);
      len = hd_signal_write_track_published(p->sid, &ti, buf, OUT_CAP);
      rooms_broadcast(n, p->room, p, buf, len);
    }
    free(buf);
  }
  free(answer);
  free(p->pub_offer); /* what other nodes build this publisher's stand-in from (room_remote.c) */
  p->pub_offer = strdup(m->publish_offer.sdp);
  room_remote_changed(n, p->room);
  auto_subscribe_others(n, p, added, nn);
  return 0;
}

/* ---- leaving ---- */

void rooms_participant_remove(hd_node_t *n, hd_participant_t *p, int left_reason, int close_conn) {
  hd_room_t *r = p->room;
  if (left_reason >= 0) {
    char buf[512];
    int len = hd_signal_write_left((hd_signal_left_reason_t)left_reason, NULL, buf, sizeof buf);
    rooms_emit(n, p, buf, len);
  }
  p->leaving = 1; /* from here p is sent nothing */
  /* participant_left first, then the subscriber offers without p's tracks
   * (docs/protocol.md "Ordering") */
  broadcast_participant(n, p, HD_SIGNAL_PARTICIPANT_LEFT, 0);
  unsubscribe_all(n, p, NULL); /* others stop receiving p's tracks */
  /* while p is still listed, so that the room is not freed under us */
  if (p->pub_sess) node_session_destroy(n, p->pub_sess, "participant left");
  if (p->sub_sess) node_session_destroy(n, p->sub_sess, "participant left");
  for (hd_participant_t **pp = &r->participants; *pp; pp = &(*pp)->next)
    if (*pp == p) {
      *pp = p->next;
      break;
    }
  r->n_participants--;
  n->n_participants--;
  for (int i = 0; i < p->n_tracks; i++)
    fire(n, HD_WEBHOOK_TRACK_UNPUBLISHED, p, &p->tracks[i]);
  fire(n, HD_WEBHOOK_PARTICIPANT_LEFT, p, NULL);
  HD_LOGI("room", "participant %s (%s) left %s/%s", p->sid, p->identity, r->app, r->name);
  if (close_conn && !p->whip && !p->remote &&
      n->cfg.signal_close) /* 1001 "going away" on shutdown, else 1000 */
    n->cfg.signal_close(n->cfg.signal_ud, p->conn,
                        left_reason == HD_SIGNAL_LEFT_SERVER_SHUTDOWN ? 1001 : 1000, "left");
  free(p->offerer);
  free(p->pub_offer);
  free(p->remote_link_ud);
  room_remote_changed(n, r);
  free(p);
  node_room_maybe_delete(n, r);
}

static int join_finish(hd_node_t *n, hd_participant_t *p, const char *id, int64_t unix_now, hd_time_t now);

/* A join still waiting for the room's cluster sid goes (its connection
 * closed, or the wait given up): it was never in the room, nobody is told. */
static void join_pending_drop(hd_node_t *n, hd_participant_t *p) {
  hd_room_t *r = p->room;
  for (hd_participant_t **pp = &r->joining; *pp; pp = &(*pp)->next)
    if (*pp == p) {
      *pp = p->next;
      break;
    }
  free(p);
  node_room_maybe_delete(n, r);
}

void hd_node_rtc_closed(hd_node_t *n, hd_participant_t *p, hd_time_t now) {
  n->now = now;
  if (p && p->join_pending)
    join_pending_drop(n, p);
  else if (p)
    rooms_participant_remove(n, p, -1, 0);
}

void rooms_sid_settled(hd_node_t *n, hd_room_t *r, int named, hd_time_t now) {
  if (!r->sid_pending) return;
  r->sid_pending = 0;
  /* the waiting joins, in the order they came (the list is newest first) */
  hd_participant_t *list = NULL;
  while (r->joining) {
    hd_participant_t *p = r->joining;
    r->joining = p->next;
    p->next = list;
    list = p;
  }
  node_room_pin(r);
  while (list) {
    hd_participant_t *p = list;
    list = p->next;
    p->next = NULL;
    p->join_pending = 0;
    void *conn = p->conn;
    if (named) {
      int64_t unix_now = p->joined_at + (int64_t)((now - p->join_at) / HD_SEC(1));
      if (join_finish(n, p, p->join_id, unix_now, now) == 0) continue;
    } else {
      char why[512];
      snprintf(why, sizeof why,
               "the cluster's Redis did not name room %s within %d ms (its sid is shared by every node); "
               "join again in a moment",
               r->name, (int)((n->cfg.sid_wait > 0 ? n->cfg.sid_wait : HD_ROOM_SID_WAIT) / 1000));
      char buf[1024];
      int len = hd_signal_write_error_retry(p->join_id, HD_SIGNAL_ERR_CLUSTER_UNAVAILABLE, why,
                                            HD_NODE_RETRY_AFTER_S, buf, sizeof buf);
      emit_conn(n, conn, buf, len);
      free(p);
    }
    /* p is gone (join_finish freed it on failure): its connection ends */
    if (n->cfg.signal_close) n->cfg.signal_close(n->cfg.signal_ud, conn, named ? 1011 : 1013, "join failed");
  }
  node_room_unpin(n, r);
}

/* 1 if the room holds sessions that belong to no participant (WHEP; a WHIP
 * publisher belongs to its stand-in participant). */
static int has_plain_sessions(const hd_room_t *r) {
  if (r->publisher && !r->publisher->owner) return 1;
  for (const hd_session_t *v = r->viewers; v; v = v->next_in_room)
    if (!v->owner) return 1;
  return 0;
}

void rooms_close_all(hd_node_t *n, hd_room_t *r) {
  while (r->joining) { /* joins still waiting for the cluster's sid: closed as they are */
    hd_participant_t *p = r->joining;
    r->joining = p->next;
    if (n->cfg.signal_close) n->cfg.signal_close(n->cfg.signal_ud, p->conn, 1001, "left");
    free(p);
  }
  r->sid_pending = 0;
  if (!r->participants) {
    node_room_maybe_delete(n, r); /* may free r */
    return;
  }
  while (r->participants) {
    int last = r->participants->next == NULL && !has_plain_sessions(r);
    rooms_participant_remove(n, r->participants, HD_SIGNAL_LEFT_SERVER_SHUTDOWN, 1);
    if (last) return; /* the room was freed with its last participant */
  }
}

size_t hd_node_participant_count(const hd_node_t *n) { return n->n_participants; }

/* ---- hooks from node.c ---- */

/* A WHIP publisher's session ended (DELETE, ICE/DTLS failure, replaced): its
 * stand-in participant leaves. The session is being freed by the caller,
 * which also decides about the room, so neither is touched here. */
static void whip_participant_gone(hd_node_t *n, hd_participant_t *p) {
  hd_room_t *r = p->room;
  p->leaving = 1;
  p->pub_sess = NULL;
  broadcast_participant(n, p, HD_SIGNAL_PARTICIPANT_LEFT, 0); /* before the offers that drop its tracks */
  unsubscribe_all(n, p, NULL);
  for (hd_participant_t **pp = &r->participants; *pp; pp = &(*pp)->next)
    if (*pp == p) {
      *pp = p->next;
      break;
    }
  r->n_participants--;
  n->n_participants--;
  for (int i = 0; i < p->n_tracks; i++)
    fire(n, HD_WEBHOOK_TRACK_UNPUBLISHED, p, &p->tracks[i]);
  fire(n, HD_WEBHOOK_PARTICIPANT_LEFT, p, NULL);
  HD_LOGI("room", "whip publisher %s (%s) left %s/%s", p->sid, p->identity, r->app, r->name);
  free(p->offerer);
  free(p->pub_offer);
  free(p);
}

void rooms_on_session_destroyed(hd_node_t *n, hd_session_t *s) {
  hd_participant_t *p = s->owner;
  if (!p) return;
  if (p->whip && p->pub_sess == s && !p->leaving) {
    whip_participant_gone(n, p);
    return;
  }
  if (p->pub_sess == s) {
    p->pub_sess = NULL;
    p->dc[DC_RELIABLE] = p->dc[DC_LOSSY] = -1;
    if (!p->leaving) { /* transport failed: its tracks are gone (announced before the offers) */
      for (int i = 0; i < p->n_tracks; i++) {
        char buf[512];
        int len = hd_signal_write_track_unpublished(p->sid, p->tracks[i].sid, buf, sizeof buf);
        if (!p->claims.hidden) rooms_broadcast(n, p->room, p, buf, len);
      }
      unsubscribe_all(n, p, NULL);
      p->n_tracks = 0;
    }
  }
  if (p->sub_sess == s) {
    p->sub_sess = NULL;
    /* the client must rebuild its subscriber PC: start over with a fresh offerer */
    free(p->offerer);
    p->offerer = NULL;
    p->negotiating = 0;
    p->n_subs = 0;
  }
}

void rooms_on_connected(hd_node_t *n, hd_session_t *s, hd_time_t now) {
  if (s->kind != HD_SESSION_SUBSCRIBE) return;
  for (int i = 0; i < s->n_out; i++)
    if (s->out[i].active && s->out[i].src && s->out[i].kind == HD_TRACK_VIDEO)
      hd_session_request_keyframe_track(s->out[i].src, s->out[i].src_in, now, &n->stats.media);
}

hd_time_t rooms_next_timeout(hd_node_t *n, hd_room_t *r) {
  return r->participants ? r->next_speakers : HD_TIME_NEVER;
}

static int cmp_level(const void *a, const void *b) {
  double x = (*(hd_participant_t *const *)a)->level, y = (*(hd_participant_t *const *)b)->level;
  return x < y ? 1 : x > y ? -1 : 0;
}

/* Active speakers (loudest first) from the RFC 6464 levels of the last
 * interval; layer selection's room side (layers_tick) on the same timer. */
void rooms_handle_timeout(hd_node_t *n, hd_room_t *r, hd_time_t now) {
  if (now < r->next_speakers) return;
  r->next_speakers = now + SPEAKER_INTERVAL;
  rooms_layers_tick(n, r, now);
  hd_participant_t *loud[HD_SIGNAL_MAX_SPEAKERS];
  size_t nl = 0;
  for (hd_participant_t *p = r->participants; p; p = p->next) {
    p->level = 0;
    if (!p->pub_sess) continue;
    for (int i = 0; i < p->pub_sess->n_in; i++) {
      hd_in_track_t *t = &p->pub_sess->in[i];
      if (t->kind != HD_TRACK_AUDIO || !t->level_cnt) continue;
      double lv = (double)t->level_acc / t->level_cnt / 127.0;
      if (lv > p->level) p->level = lv;
      t->level_acc = t->level_cnt = 0;
    }
    if (p->level >= SPEAKER_THRESHOLD && !p->claims.hidden && nl < HD_SIGNAL_MAX_SPEAKERS) loud[nl++] = p;
  }
  qsort(loud, nl, sizeof loud[0], cmp_level);
  if (nl > 3) nl = 3;
  for (hd_participant_t *p = r->participants; p; p = p->next)
    p->speaking = 0;
  for (size_t i = 0; i < nl; i++)
    loud[i]->speaking = 1;
  char key[256] = "";
  size_t kl = 0;
  for (size_t i = 0; i < nl; i++)
    kl += (size_t)snprintf(key + kl, sizeof key - kl, "%s,", loud[i]->sid);
  if (!strcmp(key, r->speakers_key)) return;
  snprintf(r->speakers_key, sizeof r->speakers_key, "%s", key);
  hd_signal_speaker_t sp[3];
  for (size_t i = 0; i < nl; i++) {
    sp[i].sid = loud[i]->sid;
    sp[i].level = loud[i]->level > 1.0 ? 1.0 : loud[i]->level;
  }
  char buf[2048];
  int len = hd_signal_write_active_speakers(sp, nl, buf, sizeof buf);
  rooms_broadcast(n, r, NULL, buf, len);
}

/* ---- WHIP publishers and WHEP viewers in the room (docs/protocol.md
 * "WHIP/WHEP and /rtc rooms") ---- */

void rooms_on_whip_publish(hd_node_t *n, hd_room_t *r, hd_session_t *s, const char *identity,
                           const char *offer, size_t offer_len, hd_time_t now) {
  hd_participant_t *p = calloc(1, sizeof *p);
  if (!p) {
    HD_LOGW("room", "whip publisher in %s/%s not shown to participants: out of memory", r->app, r->name);
    return;
  }
  int64_t unix_now = (int64_t)((now + n->cfg.wall_offset) / 1000000);
  random_sid(p->sid, "PA_");
  p->whip = 1;
  p->dc[DC_RELIABLE] = p->dc[DC_LOSSY] = -1;
  p->room = r;
  p->joined_at = unix_now;
  snprintf(p->claims.key, sizeof p->claims.key, "%s", r->app);
  if (identity && identity[0])
    snprintf(p->identity, sizeof p->identity, "%s", identity);
  else
    snprintf(p->identity, sizeof p->identity, "whip-%s", s->id);
  snprintf(p->claims.identity, sizeof p->claims.identity, "%s", p->identity);
  snprintf(p->name, sizeof p->name, "%s", p->identity);
  p->claims.room_join = p->claims.can_publish = 1;
  p->pub_sess = s;
  s->owner = p;
  /* the room's other nodes build its stand-in from the offer (room_remote.c) */
  p->pub_offer = offer ? strndup(offer, offer_len) : NULL;
  if (!r->created_unix) {
    r->created_unix = unix_now;
    r->next_speakers = now + SPEAKER_INTERVAL;
  }
  p->next = r->participants;
  r->participants = p;
  r->n_participants++;
  n->n_participants++;
  broadcast_participant(n, p, HD_SIGNAL_PARTICIPANT_JOINED, 0); /* no tracks yet: they follow */
  fire(n, HD_WEBHOOK_PARTICIPANT_JOINED, p, NULL);
  char *buf = malloc(OUT_CAP);
  for (int i = 0; i < s->n_in && p->n_tracks < MAX_PUB_TRACKS; i++) {
    if (!s->in[i].active) continue;
    pub_track_t *t = &p->tracks[p->n_tracks++];
    random_sid(t->sid, "TR_");
    snprintf(t->cid, sizeof t->cid, "whip-%s", s->in[i].mid);
    snprintf(t->mid, sizeof t->mid, "%s", s->in[i].mid);
    t->kind = s->in[i].kind;
    t->source = t->kind == HD_TRACK_AUDIO ? HD_SIGNAL_SOURCE_MICROPHONE : HD_SIGNAL_SOURCE_CAMERA;
    t->in_idx = i;
    fire(n, HD_WEBHOOK_TRACK_PUBLISHED, p, t);
    if (!buf) continue;
    hd_signal_track_t ti;
    track_info(p, t, &ti);
    int len = hd_signal_write_track_published(p->sid, &ti, buf, OUT_CAP);
    rooms_broadcast(n, r, p, buf, len);
  }
  free(buf);
  HD_LOGI("room", "whip publisher %s (%s) joined %s/%s with %d tracks", p->sid, p->identity, r->app, r->name,
          p->n_tracks);
  auto_subscribe_others(n, p, NULL, p->n_tracks);
}

hd_session_t *rooms_play_source(hd_room_t *r) {
  hd_participant_t *best = NULL;
  for (hd_participant_t *p = r->participants; p; p = p->next) {
    if (p->whip || p->claims.hidden || !p->pub_sess) continue;
    int has = 0;
    for (int i = 0; i < p->n_tracks; i++)
      has |= p->tracks[i].source == HD_SIGNAL_SOURCE_CAMERA ||
             p->tracks[i].source == HD_SIGNAL_SOURCE_MICROPHONE;
    /* the list is newest first: the last match is the one who joined first */
    if (has) best = p;
  }
  return best ? best->pub_sess : NULL;
}

/* ---- join and the other messages ---- */

/* The TURN server of the node's config with a credential for p, valid
 * turn_ttl seconds from unix_now (docs/turn.md). The username carries the
 * identity, or the participant sid when the identity would make it longer
 * than the signaling's cap. Returns the number of servers written (0 or 1). */
static size_t join_ice_servers(hd_node_t *n, const hd_participant_t *p, int64_t unix_now,
                               hd_signal_ice_server_t *out, char user[HD_SIGNAL_MAX_URL + 1],
                               char cred[HD_TURN_CRED_LEN]) {
  const hd_node_config_t *c = &n->cfg;
  if (!c->n_turn_urls || !c->turn_secret) return 0;
  int64_t exp = unix_now + c->turn_ttl;
  if (hd_turn_cred_mint(c->turn_secret, p->identity, exp, user, HD_SIGNAL_MAX_URL + 1, cred) < 0 &&
      hd_turn_cred_mint(c->turn_secret, p->sid, exp, user, HD_SIGNAL_MAX_URL + 1, cred) < 0) {
    HD_LOGW("room", "cannot mint a TURN credential for %s: no ice_servers in its joined", p->sid);
    return 0;
  }
  out->urls = c->turn_urls;
  out->n_urls = c->n_turn_urls < HD_SIGNAL_MAX_URLS ? c->n_turn_urls : HD_SIGNAL_MAX_URLS;
  out->username = user;
  out->credential = cred;
  return 1;
}

static int do_join(hd_node_t *n, void *conn, hd_participant_t **pp, const hd_signal_msg_t *m,
                   hd_token_secret_fn lookup, void *lookup_ud, int64_t unix_now, hd_time_t now) {
  hd_token_claims_t c;
  char why[256];
  int rc = hd_token_verify(m->join.token, strlen(m->join.token), lookup, lookup_ud, unix_now,
                           n->cfg.token_leeway, &c, why, sizeof why);
  if (rc < 0) {
    rooms_send_error(n, conn, m->id, hd_signal_err_from_token(rc), why);
    return -1;
  }
  if (!c.room[0]) {
    rooms_send_error(n, conn, m->id, HD_SIGNAL_ERR_FORBIDDEN, "token names no room");
    return -1;
  }
  if (hd_token_authorize(&c, c.room, HD_GRANT_JOIN, why, sizeof why) < 0) {
    rooms_send_error(n, conn, m->id, HD_SIGNAL_ERR_FORBIDDEN, why);
    return -1;
  }
  hd_room_t *r = node_room_find(n, c.key, c.room);
  if (r) {            /* the newer connection of an identity wins */
    node_room_pin(r); /* r stays while we look at it */
    for (hd_participant_t *q = r->participants; q; q = q->next)
      if (!q->whip && !q->remote && !strcmp(q->identity, c.identity)) {
        rooms_participant_remove(n, q, HD_SIGNAL_LEFT_DUPLICATE_IDENTITY, 1);
        break;
      }
    for (hd_participant_t *q = r->joining; q; q = q->next)
      if (!strcmp(q->identity, c.identity)) { /* an older join still waiting for the room's sid */
        if (n->cfg.signal_close) n->cfg.signal_close(n->cfg.signal_ud, q->conn, 1000, "duplicate_identity");
        join_pending_drop(n, q);
        break;
      }
    room_remote_drop_identity(n, r, c.identity, NULL); /* its stand-in from another node is stale */
    node_room_unpin(n, r);                             /* may free r: found (or made) again below */
  }
  r = node_room_get(n, c.key, c.room, now);
  if (!r) {
    rooms_send_error(n, conn, m->id, HD_SIGNAL_ERR_INTERNAL, "out of memory");
    return HD_ENOMEM;
  }
  /* a room created by the admin API may have its own cap */
  size_t cap = r->max_participants       ? r->max_participants
               : n->cfg.max_participants ? n->cfg.max_participants
                                         : 100;
  size_t waiting = 0; /* joins waiting for the cluster's sid hold a place too */
  for (hd_participant_t *q = r->joining; q; q = q->next)
    waiting++;
  if (r->n_participants + waiting >= cap) {
    char buf[512];
    int len = hd_signal_write_error_retry(m->id, HD_SIGNAL_ERR_ROOM_FULL, "room is full",
                                          HD_NODE_RETRY_AFTER_S, buf, sizeof buf);
    emit_conn(n, conn, buf, len);
    node_room_maybe_delete(n, r);
    return HD_ENOSPC;
  }
  /* a participant is of no use without a media session: refuse at the door
   * when the node, its tenant or its identity has no place for one */
  if (node_capacity_check(n, c.key, c.identity, why, sizeof why) < 0) {
    send_node_full(n, conn, m->id, why);
    node_room_maybe_delete(n, r);
    return HD_ENOSPC;
  }
  hd_participant_t *p = calloc(1, sizeof *p);
  if (!p) {
    rooms_send_error(n, conn, m->id, HD_SIGNAL_ERR_INTERNAL, "out of memory");
    node_room_maybe_delete(n, r);
    return HD_ENOMEM;
  }
  random_sid(p->sid, "PA_");
  p->dc[DC_RELIABLE] = p->dc[DC_LOSSY] = -1;
  p->claims = c;
  p->conn = conn;
  p->room = r;
  p->joined_at = unix_now;
  p->auto_subscribe = m->join.auto_subscribe;
  p->flexfec = m->join.flexfec;
  p->data_tokens = DATA_BURST;
  p->data_last = now;
  p->msg_tokens = MSG_BURST;
  p->msg_last = now;
  p->last_429 = -HD_SEC(10);
  snprintf(p->identity, sizeof p->identity, "%s", c.identity);
  snprintf(p->name, sizeof p->name, "%s", m->join.name ? m->join.name : c.name);
  snprintf(p->metadata, sizeof p->metadata, "%s", m->join.metadata ? m->join.metadata : c.metadata);
  if (r->sid_pending) {
    /* a room new on this node of a cluster: its `joined` names the cluster's
     * sid, which Redis gives (hd_node_room_set_sid); until then the join
     * waits, bounded by HD_ROOM_SID_WAIT (rooms_sid_timeout) */
    p->join_pending = 1;
    p->join_at = now;
    snprintf(p->join_id, sizeof p->join_id, "%s", m->id ? m->id : "");
    p->next = r->joining;
    r->joining = p;
    node_room_in_use(r);
    *pp = p;
    return 0;
  }
  rc = join_finish(n, p, m->id, unix_now, now);
  if (rc == 0) *pp = p;
  return rc;
}

/* The second half of a join: the participant enters the room and gets its
 * `joined`. On failure it gets an error and is freed. */
static int join_finish(hd_node_t *n, hd_participant_t *p, const char *id, int64_t unix_now, hd_time_t now) {
  hd_room_t *r = p->room;
  void *conn = p->conn;
  size_t cap = r->max_participants       ? r->max_participants
               : n->cfg.max_participants ? n->cfg.max_participants
                                         : 100;
  if (!r->created_unix) {
    r->created_unix = unix_now;
    r->next_speakers = now + SPEAKER_INTERVAL;
  }
  /* joined: self, room, everyone else visible */
  hd_signal_msg_t j;
  memset(&j, 0, sizeof j);
  j.type = HD_SIGNAL_JOINED;
  j.id = id;
  hd_signal_track_t self_tracks[1];
  participant_info(p, &j.joined.participant, self_tracks, 1);
  j.joined.room.name = r->name;
  j.joined.room.sid = r->sid;
  j.joined.room.created_at = r->created_unix;
  j.joined.room.max_participants = (int)cap;
  size_t others = 0;
  for (hd_participant_t *q = r->participants; q; q = q->next)
    if (!q->claims.hidden) others++;
  hd_signal_participant_t *list = calloc(others ? others : 1, sizeof *list);
  hd_signal_track_t(*tracks)[MAX_PUB_TRACKS] = calloc(others ? others : 1, sizeof *tracks);
  char *buf = malloc(HD_SIGNAL_MAX_NODE_MSG);
  if (!list || !tracks || !buf) {
    free(list);
    free(tracks);
    free(buf);
    free(p);
    rooms_send_error(n, conn, id, HD_SIGNAL_ERR_INTERNAL, "out of memory");
    node_room_maybe_delete(n, r);
    return HD_ENOMEM;
  }
  size_t k = 0;
  for (hd_participant_t *q = r->participants; q; q = q->next)
    if (!q->claims.hidden) {
      participant_info(q, &list[k], tracks[k], 0);
      k++;
    }
  j.joined.participants = list;
  j.joined.n_participants = k;
  hd_signal_ice_server_t turn;
  char turn_user[HD_SIGNAL_MAX_URL + 1], turn_cred[HD_TURN_CRED_LEN];
  j.joined.n_ice_servers = join_ice_servers(n, p, unix_now, &turn, turn_user, turn_cred);
  j.joined.ice_servers = &turn;
  j.joined.ping_interval = 10;
  j.joined.ping_timeout = 30;
  j.joined.protocol = HD_SIGNAL_PROTOCOL_VERSION;
  int len = hd_signal_write(&j, buf, HD_SIGNAL_MAX_NODE_MSG);
  free(list);
  free(tracks);
  if (len < 0) {
    free(buf);
    free(p);
    rooms_send_error(n, conn, id, HD_SIGNAL_ERR_INTERNAL, "cannot describe the room");
    node_room_maybe_delete(n, r);
    return HD_ENOMEM;
  }
  p->next = r->participants;
  r->participants = p;
  r->n_participants++;
  node_room_in_use(r);
  n->n_participants++;
  rooms_emit(n, p, buf, len);
  free(buf);
  broadcast_participant(n, p, HD_SIGNAL_PARTICIPANT_JOINED, 0);
  fire(n, HD_WEBHOOK_PARTICIPANT_JOINED, p, NULL);
  room_remote_changed(n, r); /* hidden joins broadcast nothing but must reach other nodes too */
  HD_LOGI("room", "participant %s (%s) joined %s/%s", p->sid, p->identity, r->app, r->name);
  /* subscribe to what is already published */
  if (p->auto_subscribe) {
    int changed = 0;
    for (hd_participant_t *q = r->participants; q; q = q->next)
      for (int i = 0; q != p && i < q->n_tracks; i++)
        if (sub_add(n, p, q, &q->tracks[i]) == 0) changed = 1;
    if (changed) sub_negotiate(n, p);
  }
  return 0;
}

static hd_participant_t *owner_of_track(hd_room_t *r, const char *sid, pub_track_t **t) {
  for (hd_participant_t *q = r->participants; q; q = q->next)
    if ((*t = rooms_track_by_sid(q, sid)) != NULL) return q;
  return NULL;
}

static void handle_subscribe(hd_node_t *n, hd_participant_t *p, const hd_signal_msg_t *m, int on) {
  if (!p->claims.can_subscribe) {
    rooms_send_error(n, p->conn, m->id, HD_SIGNAL_ERR_FORBIDDEN, "token lacks canSubscribe");
    return;
  }
  const char *const *sids = on ? m->subscribe.track_sids : m->unsubscribe.track_sids;
  size_t ns = on ? m->subscribe.n_track_sids : m->unsubscribe.n_track_sids;
  for (size_t i = 0; i < ns; i++) {
    pub_track_t *t;
    hd_participant_t *q = owner_of_track(p->room, sids[i], &t);
    if (!q) {
      char msg[128];
      snprintf(msg, sizeof msg, "no track %s in this room", sids[i]);
      rooms_send_error(n, p->conn, m->id, HD_SIGNAL_ERR_NOT_FOUND, msg);
      return;
    }
    if (on) {
      int rc = sub_add(n, p, q, t);
      if (rc < 0) {
        rooms_send_error(n, p->conn, m->id, HD_SIGNAL_ERR_CONFLICT, hd_strerror(rc));
        return;
      }
    } else {
      for (int j = p->n_subs - 1; j >= 0; j--)
        if (!strcmp(p->subs[j].track_sid, sids[i])) sub_remove_at(p, j);
    }
  }
  sub_negotiate(n, p);
}

/* Mute stops forwarding (so an admin mute holds) and tells the others; an
 * admin mute tells the owner too. */
void rooms_set_muted(hd_node_t *n, hd_participant_t *p, pub_track_t *t, int muted, int tell_owner) {
  t->muted = muted;
  if (p->pub_sess && t->in_idx >= 0 && t->in_idx < p->pub_sess->n_in)
    p->pub_sess->in[t->in_idx].muted = muted;
  char buf[512];
  int len = hd_signal_write_track_muted(p->sid, t->sid, t->muted, buf, sizeof buf);
  if (!p->claims.hidden)
    rooms_broadcast(n, p->room, tell_owner ? NULL : p, buf, len);
  else if (tell_owner)
    rooms_emit(n, p, buf, len);
}

static void handle_mute(hd_node_t *n, hd_participant_t *p, const hd_signal_msg_t *m) {
  pub_track_t *t = rooms_track_by_sid(p, m->mute.track_sid);
  if (!t) {
    rooms_send_error(n, p->conn, m->id, HD_SIGNAL_ERR_NOT_FOUND, "no such track of yours");
    return;
  }
  rooms_set_muted(n, p, t, m->mute.muted, 1); /* everyone, the muter too (docs/protocol.md Mute) */
}

/* The per-participant data rate limit (token bucket), shared by the WebSocket
 * and data channel paths: 1 if one more message may go now. */
int rooms_data_rate_ok(hd_participant_t *p, hd_time_t now) {
  p->data_tokens += (double)(now - p->data_last) * DATA_RATE / 1e6;
  if (p->data_tokens > DATA_BURST) p->data_tokens = DATA_BURST;
  p->data_last = now;
  if (p->data_tokens < 1.0) return 0;
  p->data_tokens -= 1.0;
  return 1;
}

static void handle_data(hd_node_t *n, hd_participant_t *p, const hd_signal_msg_t *m, hd_time_t now) {
  if (!p->claims.can_publish_data) {
    rooms_send_error(n, p->conn, m->id, HD_SIGNAL_ERR_FORBIDDEN, "token lacks canPublishData");
    return;
  }
  if (!rooms_data_rate_ok(p, now)) {
    if (now - p->last_429 >= HD_SEC(1)) {
      p->last_429 = now;
      rooms_send_error(n, p->conn, m->id, HD_SIGNAL_ERR_RATE_LIMITED,
                       "more than 50 data messages per second");
    }
    return;
  }
  char *buf = malloc(OUT_CAP);
  if (!buf) return;
  int len = hd_signal_write_data_recv(p->identity, p->sid, m->data.payload, buf, OUT_CAP);
  for (hd_participant_t *q = p->room->participants; q; q = q->next) {
    if (q == p) continue;
    int to = m->data.n_to == 0;
    for (size_t i = 0; !to && i < m->data.n_to; i++)
      to = !strcmp(m->data.to[i], q->identity);
    if (to) rooms_emit(n, q, buf, len);
  }
  room_remote_data(n, p->room, -1, (const char *const *)m->data.to, m->data.n_to, buf, len);
  free(buf);
}

static void handle_update_metadata(hd_node_t *n, hd_participant_t *p, const hd_signal_msg_t *m) {
  if (m->update_metadata.metadata)
    snprintf(p->metadata, sizeof p->metadata, "%s", m->update_metadata.metadata);
  if (m->update_metadata.name) snprintf(p->name, sizeof p->name, "%s", m->update_metadata.name);
  broadcast_participant(n, p, HD_SIGNAL_PARTICIPANT_UPDATED, 1);
}

int hd_node_rtc_message(hd_node_t *n, void *conn, hd_participant_t **pp, const char *text, size_t len,
                        hd_token_secret_fn lookup, void *lookup_ud, int64_t unix_now, hd_time_t now) {
  n->now = now;
  hd_signal_msg_t m;
  hd_signal_error_t e;
  if (hd_signal_parse(text, len, HD_SIGNAL_FROM_CLIENT, &m, &e) < 0) {
    char buf[1024];
    int l = hd_signal_write_parse_error(&e, buf, sizeof buf);
    emit_conn(n, conn, buf, l);
    return *pp ? 0 : -1; /* before join, a bad first message ends the connection */
  }
  int rc = 0;
  hd_participant_t *p = *pp;
  if (p && p->join_pending) { /* joined not sent yet: only leave is taken */
    if (m.type == HD_SIGNAL_LEAVE) {
      *pp = NULL;
      join_pending_drop(n, p);
      rc = -1;
    } else {
      rooms_send_error(n, conn, m.id, HD_SIGNAL_ERR_CONFLICT,
                       "the join is not complete: wait for `joined` (the cluster names the room)");
    }
    hd_signal_msg_free(&m);
    return rc;
  }
  if (!p) {
    if (m.type != HD_SIGNAL_JOIN) {
      rooms_send_error(n, conn, m.id, HD_SIGNAL_ERR_UNAUTHORIZED, "first message must be join");
      rc = -1;
    } else {
      rc = do_join(n, conn, pp, &m, lookup, lookup_ud, unix_now, now);
    }
    hd_signal_msg_free(&m);
    return rc;
  }
  /* connection-wide rate limit (token bucket); leave always goes through */
  p->msg_tokens += (double)(now - p->msg_last) * MSG_RATE / 1e6;
  if (p->msg_tokens > MSG_BURST) p->msg_tokens = MSG_BURST;
  p->msg_last = now;
  if (m.type != HD_SIGNAL_LEAVE) {
    if (p->msg_tokens < 1.0) {
      if (now - p->last_429 >= HD_SEC(1)) {
        p->last_429 = now;
        rooms_send_error(n, conn, m.id, HD_SIGNAL_ERR_RATE_LIMITED, "more than 100 messages per second");
      }
      hd_signal_msg_free(&m);
      return 0;
    }
    p->msg_tokens -= 1.0;
  }
  switch (m.type) {
  case HD_SIGNAL_JOIN: rooms_send_error(n, conn, m.id, HD_SIGNAL_ERR_CONFLICT, "already joined"); break;
  case HD_SIGNAL_PUBLISH_OFFER: handle_publish_offer(n, p, &m, now); break;
  case HD_SIGNAL_SUBSCRIBER_ANSWER: handle_subscriber_answer(n, p, &m, now); break;
  case HD_SIGNAL_SUBSCRIBE: handle_subscribe(n, p, &m, 1); break;
  case HD_SIGNAL_UNSUBSCRIBE: handle_subscribe(n, p, &m, 0); break;
  case HD_SIGNAL_MUTE: handle_mute(n, p, &m); break;
  case HD_SIGNAL_UPDATE_METADATA: handle_update_metadata(n, p, &m); break;
  case HD_SIGNAL_DATA: handle_data(n, p, &m, now); break;
  case HD_SIGNAL_TRACK_SETTINGS: rooms_handle_track_settings(n, p, &m); break;
  case HD_SIGNAL_PING: {
    char buf[256];
    int l = hd_signal_write_pong(m.id, m.ping.t, buf, sizeof buf);
    rooms_emit(n, p, buf, l);
    break;
  }
  case HD_SIGNAL_LEAVE:
    *pp = NULL;
    rooms_participant_remove(n, p, HD_SIGNAL_LEFT_CLIENT_REQUEST, 0);
    rc = -1;
    break;
  default: rooms_send_error(n, conn, m.id, HD_SIGNAL_ERR_BAD_REQUEST, "unexpected message type"); break;
  }
  hd_signal_msg_free(&m);
  return rc;
}

/* ---- stand-ins of participants on other nodes (room_remote.c) ---- */

void rooms_remote_join(hd_node_t *n, hd_participant_t *p) {
  hd_room_t *r = p->room;
  p->next = r->participants;
  r->participants = p;
  r->n_participants++;
  node_room_in_use(r);
  n->n_participants++;
  broadcast_participant(n, p, HD_SIGNAL_PARTICIPANT_JOINED, 0); /* tracks follow as track_published */
  HD_LOGI("room", "remote participant %s (%s) joined %s/%s", p->sid, p->identity, r->app, r->name);
}

void rooms_remote_tracks_added(hd_node_t *n, hd_participant_t *p, const int *added, int nt) {
  char *buf = malloc(OUT_CAP);
  if (buf && !p->claims.hidden)
    for (int i = 0; i < nt; i++) {
      if (!added[i]) continue;
      hd_signal_track_t ti;
      track_info(p, &p->tracks[i], &ti);
      int len = hd_signal_write_track_published(p->sid, &ti, buf, OUT_CAP);
      rooms_broadcast(n, p->room, p, buf, len);
    }
  free(buf);
  auto_subscribe_others(n, p, added, nt);
}

void rooms_remote_track_removed(hd_node_t *n, hd_participant_t *p, int i) {
  char buf[512];
  int len = hd_signal_write_track_unpublished(p->sid, p->tracks[i].sid, buf, sizeof buf);
  if (!p->claims.hidden) rooms_broadcast(n, p->room, p, buf, len);
  char sid[24];
  snprintf(sid, sizeof sid, "%s", p->tracks[i].sid);
  unsubscribe_all(n, p, sid);
  memmove(&p->tracks[i], &p->tracks[i + 1], (size_t)(p->n_tracks - i - 1) * sizeof p->tracks[0]);
  p->n_tracks--;
}

void rooms_remote_metadata(hd_node_t *n, hd_participant_t *p) {
  broadcast_participant(n, p, HD_SIGNAL_PARTICIPANT_UPDATED, 0);
}
