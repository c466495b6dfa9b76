/* The native SDK client (include/hudong/client.h): the I/O shell that runs the
 * sans-IO cores on its own libuv loop thread — the /rtc signaling client
 * (client/rtc_signal.h) over a WebSocket (io/ws_client.h), a publisher and a
 * subscriber PeerConnection (client/pc.h), each on its own UDP socket — plus
 * the command queue that lets any thread drive it, the join timeout and the
 * reconnect-with-backoff of docs/protocol.md "Reconnection". The media side
 * (codecs, jitter buffer, frame assembly, stats) is in client_media.c.
 *
 * Why one session object per connection attempt: protocol 1 has no session
 * resume, so a reconnect is a fresh WebSocket, fresh PCs and a fresh join;
 * tearing the old ones down as a unit (freed when libuv has closed its UDP
 * handles) keeps the lifetime rules simple. Failures detected inside a
 * callback of a core (pc event, signaling event) only mark the session dead;
 * it is torn down after the core's call returns (a pc must not be freed from
 * its own callback). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "base/err.h"
#include "base/log.h"
#include "base/rand.h"
#include "client/client_internal.h"
#include "client/client_route.h"
#include "client/join_report.h"
#include "client/quality_report.h"

#define TICK_MS 5
#define LEAVE_WAIT_US 2000000
/* a route thread: hd_client_route needs ~16 KiB of buffers plus getaddrinfo and
 * the sanitizers; not the 8 MiB default */
#define ROUTE_THREAD_STACK (256 * 1024)

enum {
  CMD_JOIN = 1,
  CMD_LEAVE,
  CMD_PUBLISH,
  CMD_UNPUBLISH,
  CMD_MUTE,
  CMD_AUDIO,
  CMD_VIDEO,
  CMD_H264,
  CMD_KEYFRAME,
  CMD_SUBSCRIBE,
  CMD_TRACK_SETTINGS,
  CMD_DATA,
  CMD_STOP
};

typedef struct cl_cmd {
  struct cl_cmd *next;
  int type, track, arg, w, h;
  hd_client_publish_t pub;
  char str[HD_RTC_SIGNAL_SID_MAX];
  size_t n_to, len;
  uint8_t data[];
} cl_cmd_t;

/* per-session failure, handled after the core call that found it returns */
typedef struct {
  int dead, err, reconnect;
  char reason[200];
} cl_dead_t;
static cl_dead_t g_dead_unused;

hd_time_t cl_now(void) { return (hd_time_t)(uv_hrtime() / 1000); }

static void set_state(hd_client_t *c, hd_client_state_t st, int err, const char *reason) {
  if (c->state == st && !err) return;
  c->state = st;
  uv_mutex_lock(&c->mu);
  c->state_pub = st;
  c->snap.state = st;
  uv_mutex_unlock(&c->mu);
  if (err) HD_LOGD("client", "%s: %s (%s)", hd_client_state_name(st), reason ? reason : "", hd_strerror(err));
  if (c->cfg.cb.on_state) c->cfg.cb.on_state(c->cfg.cb.ud, st, err, reason ? reason : "");
}

/* ---- session failure marking ---- */

/* The session's dead record lives right after it (allocated together). */
static cl_dead_t *dead_of(cl_session_t *s) { return s ? (cl_dead_t *)(s + 1) : &g_dead_unused; }

static void mark_dead(cl_session_t *s, int err, int reconnect, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void mark_dead(cl_session_t *s, int err, int reconnect, const char *fmt, ...) {
  cl_dead_t *d = dead_of(s);
  if (d->dead) return; /* the first cause wins */
  d->dead = 1;
  d->err = err;
  d->reconnect = reconnect;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->reason, sizeof d->reason, fmt, ap);
  va_end(ap);
}

/* ---- flushing ---- */

void cl_flush(hd_client_t *c) {
  cl_session_t *s = c->s;
  if (!s || s->closing) return;
  hd_time_t now = cl_now();
  for (int i = 0; i < 2; i++) {
    uint8_t buf[1500];
    struct sockaddr_storage to;
    socklen_t tl;
    int n;
    while ((n = hd_pc_poll(s->pc[i], buf, sizeof buf, &to, &tl, now)) > 0) {
      uv_buf_t b = uv_buf_init((char *)buf, (unsigned)n);
      uv_udp_try_send(&s->udp[i], &b, 1,
                      (const struct sockaddr *)&to); /* a full buffer is loss: NACK repairs */
    }
  }
  size_t l;
  while (s->ws && hd_ws_client_is_open(s->ws) && (l = hd_rtc_signal_peek_len(s->sig)) > 0) {
    char *t = malloc(l + 1);
    if (!t) break;
    hd_rtc_signal_poll(s->sig, t, l + 1);
    int rc = hd_ws_client_send(s->ws, t, l);
    free(t);
    if (rc < 0) {
      mark_dead(s, HD_EIO, 1, "signaling send failed: %s", hd_strerror(rc));
      break;
    }
  }
}

/* ---- session lifecycle ---- */

static void udp_closed(uv_handle_t *h) {
  cl_session_t *s = h->data;
  if (--s->udp_open == 0) free(s);
}

static void announce_room(hd_client_t *c, int joined) {
  cl_session_t *s = c->s;
  if (!s || !s->joined) return;
  int n = hd_rtc_signal_participant_count(s->sig);
  for (int i = 0; i < n; i++) {
    const hd_rtc_signal_participant_t *p = hd_rtc_signal_participant(s->sig, i);
    if (joined && c->cfg.cb.on_participant) c->cfg.cb.on_participant(c->cfg.cb.ud, p->sid, p->identity, 1);
    for (int k = 0; k < p->n_tracks; k++) {
      hd_client_track_info_t t = {.participant_sid = p->sid,
                                  .identity = p->identity,
                                  .track_sid = p->tracks[k].sid,
                                  .kind = (hd_client_kind_t)p->tracks[k].kind,
                                  .source = p->tracks[k].source,
                                  .muted = p->tracks[k].muted};
      if (c->cfg.cb.on_track) c->cfg.cb.on_track(c->cfg.cb.ud, &t, joined);
    }
    if (!joined && c->cfg.cb.on_participant) c->cfg.cb.on_participant(c->cfg.cb.ud, p->sid, p->identity, 0);
  }
}

/* Tears the current session down. emit: tell the app the remote side is gone. */
static void session_end(hd_client_t *c, int emit) {
  cl_session_t *s = c->s;
  if (!s) return;
  if (emit) announce_room(c, 0);
  cl_remotes_clear(c);
  for (int i = 0; i < HD_CLIENT_MAX_LOCAL_TRACKS; i++)
    c->local[i].pc_track = -1;
  /* a clean DTLS close_notify when we can still send */
  for (int i = 0; i < 2; i++)
    if (hd_pc_state(s->pc[i]) == HD_PC_CONNECTED) hd_pc_close(s->pc[i]);
  cl_flush(c);
  s->closing = 1;
  hd_ws_client_free(s->ws);
  s->ws = NULL;
  hd_rtc_signal_free(s->sig);
  for (int i = 0; i < 2; i++) {
    hd_pc_free(s->pc[i]);
    s->pc[i] = NULL;
  }
  c->s = NULL;
  for (int i = 0; i < 2; i++)
    uv_close((uv_handle_t *)&s->udp[i], udp_closed);
}

static void pc_event(cl_session_t *s, int which, const hd_pc_event_t *ev) {
  hd_client_t *c = s->c;
  if (s->closing || c->s != s) return;
  hd_time_t now = cl_now();
  switch (ev->type) {
  case HD_PC_EV_STATE:
    if (ev->state == HD_PC_FAILED)
      mark_dead(s, HD_EIO, 1, "%s connection failed: %s", which ? "subscriber" : "publisher", ev->reason);
    if (which == 0 && ev->state == HD_PC_CONNECTED)
      for (int i = 0; i < HD_CLIENT_MAX_LOCAL_TRACKS; i++)
        c->local[i].force_key = 1;
    break;
  case HD_PC_EV_KEYFRAME:
    if (which == 0)
      for (int i = 0; i < HD_CLIENT_MAX_LOCAL_TRACKS; i++)
        if (c->local[i].used && c->local[i].pc_track == ev->track) {
          if (c->local[i].sim_n > 1 && ev->layer > 0 && ev->layer < c->local[i].sim_n)
            c->local[i].sim[ev->layer].force_key = 1; /* that layer alone */
          else if (c->local[i].sim_n > 1 && hd_pc_track_layers(s->pc[0], ev->track) > 1)
            c->local[i].sim[0].force_key = 1;
          else
            c->local[i].force_key = 1;
        }
    break;
  case HD_PC_EV_SEND_RATE:
    if (which == 0) {
      cl_apply_send_rate(c, ev->bitrate_bps);
      hd_pc_set_send_desired(s->pc[0], cl_send_desired(c));
    }
    break;
  case HD_PC_EV_RTP:
    if (which == 1) {
      if (!s->first_media_at) s->first_media_at = now;
      cl_remote_rtp(c, &ev->rtp, now);
    }
    break;
  default: break;
  }
}
static void pub_event(void *ud, const hd_pc_event_t *ev) { pc_event(ud, 0, ev); }
static void sub_event(void *ud, const hd_pc_event_t *ev) { pc_event(ud, 1, ev); }

static void do_publish(hd_client_t *c, hd_time_t now) {
  cl_session_t *s = c->s;
  if (!s || !s->joined || s->closing) return;
  if (s->publishing) {
    s->publish_dirty = 1;
    return;
  }
  hd_rtc_signal_pub_t list[HD_CLIENT_MAX_LOCAL_TRACKS];
  size_t n = 0;
  for (int i = 0; i < HD_CLIENT_MAX_LOCAL_TRACKS; i++) {
    cl_local_t *l = &c->local[i];
    if (!l->used) continue;
    if (l->pc_track < 0) {
      int t = hd_pc_add_transceiver(s->pc[0], l->opt.kind == HD_CLIENT_AUDIO ? HD_PC_AUDIO : HD_PC_VIDEO,
                                    HD_PC_SENDONLY);
      if (t < 0) {
        HD_LOGW("client", "cannot add a transceiver: %s", hd_strerror(t));
        continue;
      }
      l->pc_track = t;
      int rc;
      if (l->opt.h264 && (rc = l->opt.h264_profile_level_id
                                   ? hd_pc_set_h264_profile(s->pc[0], t, l->opt.h264_profile_level_id)
                                   : hd_pc_set_h264(s->pc[0], t)) < 0)
        HD_LOGW("client", "H.264 offer for %s: %s", l->source, hd_strerror(rc));
      if (l->sim_n > 1 && (rc = hd_pc_set_simulcast(s->pc[0], t, l->sim_n, cl_sim_rids(l))) < 0)
        HD_LOGW("client", "simulcast off for %s: %s", l->source, hd_strerror(rc));
    }
    list[n++] =
        (hd_rtc_signal_pub_t){.cid = l->cid, .track = l->pc_track, .source = l->source, .muted = l->muted};
  }
  if (!n && !s->published_n) return; /* nothing published, nothing to withdraw */
  int rc = hd_rtc_signal_publish(s->sig, list, n, now);
  if (rc == 0) {
    s->published_n = (int)n;
    s->publishing = 1;
    s->publish_dirty = 0;
  } else if (rc == HD_ESTATE) {
    s->publish_dirty = 1;
  } else {
    HD_LOGW("client", "publish failed: %s", hd_strerror(rc));
  }
}

static int map_join_error(int code, const char *reason) {
  if (code == 401) return strcmp(reason, "token_expired") ? HD_EAUTH : HD_EEXPIRED;
  if (code == 403) return HD_EFORBIDDEN;
  return HD_EPROTO;
}

/* A draining node's `left`/`error` names the node to rejoin (docs/protocol.md
 * "Leaving and reconnecting"): its http(s) URL becomes this client's
 * ws(s)://.../rtc, used from the next connection attempt on. */
static void follow_redirect(hd_client_t *c, const char *redirect) {
  char buf[HD_CLIENT_ROUTE_URL_MAX + 64];
  char *u = redirect && cl_rtc_url_of(redirect, buf, sizeof buf) == 0 ? strdup(buf) : NULL;
  if (!u) return;
  HD_LOGI("client", "the node is draining: rejoining through %s", u);
  free(c->url);
  c->url = u;
  c->cfg.url = u;
  c->redirected = 1;
}

static void handle_sig_events(hd_client_t *c, hd_time_t now) {
  cl_session_t *s = c->s;
  hd_rtc_signal_event_t ev;
  while (s && !s->closing && hd_rtc_signal_poll_event(s->sig, &ev)) {
    const hd_client_callbacks_t *cb = &c->cfg.cb;
    switch (ev.type) {
    case HD_RTC_SIGNAL_EV_JOINED:
      s->joined = 1;
      s->joined_at = now;
      s->next_quality = now + (hd_time_t)HD_QUALITY_REPORT_INTERVAL_MS * 1000;
      if (c->state == HD_CLIENT_RECONNECTING) c->reconnects++;
      c->attempt = 0;
      set_state(c, HD_CLIENT_JOINED, 0, "");
      announce_room(c, 1);
      do_publish(c, now);
      break;
    case HD_RTC_SIGNAL_EV_PARTICIPANT_JOINED:
    case HD_RTC_SIGNAL_EV_PARTICIPANT_LEFT:
      if (cb->on_participant)
        cb->on_participant(cb->ud, ev.participant_sid, ev.identity,
                           ev.type == HD_RTC_SIGNAL_EV_PARTICIPANT_JOINED);
      break;
    case HD_RTC_SIGNAL_EV_TRACK_PUBLISHED:
    case HD_RTC_SIGNAL_EV_TRACK_UNPUBLISHED:
    case HD_RTC_SIGNAL_EV_TRACK_MUTED: {
      const hd_rtc_signal_participant_t *p = hd_rtc_signal_find_participant(s->sig, ev.participant_sid);
      hd_client_track_info_t t = {.participant_sid = ev.participant_sid,
                                  .identity = p ? p->identity : "",
                                  .track_sid = ev.track_sid,
                                  .kind = (hd_client_kind_t)ev.kind,
                                  .source = "",
                                  .muted = ev.muted};
      for (int k = 0; p && k < p->n_tracks; k++)
        if (!strcmp(p->tracks[k].sid, ev.track_sid)) {
          t.source = p->tracks[k].source;
          t.kind = (hd_client_kind_t)p->tracks[k].kind;
        }
      if (ev.type == HD_RTC_SIGNAL_EV_TRACK_MUTED) {
        if (cb->on_track_muted) cb->on_track_muted(cb->ud, &t);
      } else {
        if (ev.type == HD_RTC_SIGNAL_EV_TRACK_UNPUBLISHED)
          for (int i = 0; i < HD_CLIENT_MAX_REMOTE_TRACKS; i++)
            if (c->remote[i].used && !strcmp(c->remote[i].track_sid, ev.track_sid))
              cl_remote_free(&c->remote[i]);
        if (cb->on_track) cb->on_track(cb->ud, &t, ev.type == HD_RTC_SIGNAL_EV_TRACK_PUBLISHED);
      }
      break;
    }
    case HD_RTC_SIGNAL_EV_PUBLISH_ANSWER:
      s->publishing = 0;
      if (ev.code < 0) HD_LOGW("client", "publish answer refused by the pc: %s", hd_strerror(ev.code));
      for (int i = 0; i < HD_CLIENT_MAX_LOCAL_TRACKS; i++) {
        cl_local_t *l = &c->local[i];
        const char *sid = l->used ? hd_rtc_signal_pub_sid(s->sig, l->cid) : NULL;
        if (sid && l->muted) hd_rtc_signal_mute(s->sig, sid, 1);
      }
      if (s->publish_dirty) do_publish(c, now);
      break;
    case HD_RTC_SIGNAL_EV_SUBSCRIBER_OFFER:
      if (ev.code < 0) HD_LOGW("client", "subscriber offer not answered: %s", hd_strerror(ev.code));
      break;
    case HD_RTC_SIGNAL_EV_DATA:
      if (cb->on_data) cb->on_data(cb->ud, ev.identity, ev.payload, strlen(ev.payload));
      break;
    case HD_RTC_SIGNAL_EV_ERROR:
      if (!s->joined) {
        int err = map_join_error(ev.code, ev.reason);
        /* 401/403 are final (docs/protocol.md: do not retry); others (503) back off */
        mark_dead(s, err, err == HD_EPROTO, "join refused: %d %s: %s", ev.code, ev.reason, ev.message);
      } else {
        HD_LOGW("client", "node error %d %s: %s (id %s)", ev.code, ev.reason, ev.message, ev.id);
        if (s->publishing && ev.id[0] && !strncmp(ev.id, "pub", 3)) {
          hd_pc_rollback_offer(s->pc[0]);
          s->publishing = 0;
        }
      }
      break;
    case HD_RTC_SIGNAL_EV_LEFT:
      s->left = 1;
      if (!strcmp(ev.reason, "server_shutdown"))
        mark_dead(s, HD_EIO, 1, "node shutting down");
      else if (!strcmp(ev.reason, "node_draining")) {
        follow_redirect(c, ev.redirect);
        mark_dead(s, HD_EIO, 1, "node draining%s%s", ev.redirect[0] ? ": moving to " : "", ev.redirect);
      } else if (strcmp(ev.reason, "client_request"))
        mark_dead(s, HD_ECLOSED, 0, "left the room: %s", ev.reason);
      break;
    case HD_RTC_SIGNAL_EV_PONG: c->sig_rtt = ev.rtt; break;
    case HD_RTC_SIGNAL_EV_PUBLISH_LAYERS:
      for (int i = 0; i < HD_CLIENT_MAX_LOCAL_TRACKS; i++) {
        cl_local_t *l = &c->local[i];
        const char *sid = l->used && l->sim_n > 1 ? hd_rtc_signal_pub_sid(s->sig, l->cid) : NULL;
        if (sid && !strcmp(sid, ev.track_sid)) {
          cl_sim_set_active(l, ev.rids, ev.n_rids);
          HD_LOGI("client", "publish_layers %s: %d of %d layers", l->source, ev.n_rids, l->sim_n);
        }
      }
      break;
    case HD_RTC_SIGNAL_EV_TRACK_REFUSED:
      for (int i = 0; i < HD_CLIENT_MAX_LOCAL_TRACKS; i++) {
        cl_local_t *l = &c->local[i];
        const char *sid = l->used ? hd_rtc_signal_pub_sid(s->sig, l->cid) : NULL;
        if (!sid || strcmp(sid, ev.track_sid)) continue;
        HD_LOGI("client", "%s cannot decode our %s track (%s)", ev.identity, l->source, ev.reason);
        if (c->cfg.cb.on_track_refused) c->cfg.cb.on_track_refused(c->cfg.cb.ud, i, ev.reason, ev.identity);
      }
      break;
    case HD_RTC_SIGNAL_EV_TIMEOUT: mark_dead(s, HD_EIO, 1, "signaling timeout (no ping answer)"); break;
    default: break;
    }
  }
}

/* ---- WebSocket / UDP callbacks ---- */

static void process_dead(hd_client_t *c);

static void ws_open(void *ud, hd_ws_client_t *ws) {
  cl_session_t *s = ud;
  hd_rtc_signal_join(s->sig, cl_now());
  cl_flush(s->c);
}
static void ws_message(void *ud, hd_ws_client_t *ws, const char *text, size_t len) {
  cl_session_t *s = ud;
  hd_client_t *c = s->c;
  hd_time_t now = cl_now();
  hd_rtc_signal_feed(s->sig, text, len, now);
  handle_sig_events(c, now);
  cl_flush(c);
  process_dead(c);
}
static void ws_close(void *ud, hd_ws_client_t *ws, int code, const char *reason) {
  cl_session_t *s = ud;
  if (s->left && !dead_of(s)->dead) {
    mark_dead(s, 0, 0, "left");
  } else if (!s->joined && code == HD_WS_CLIENT_ABNORMAL) {
    mark_dead(s, HD_EIO, 1, "cannot reach the node: %s", reason);
  } else {
    mark_dead(s, HD_EIO, 1, "signaling connection closed: %d %s", code, reason);
  }
  process_dead(s->c);
}

static void udp_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  static __thread char buf[2048];
  *b = uv_buf_init(buf, sizeof buf);
}
static void udp_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *b, const struct sockaddr *from, unsigned flags) {
  cl_session_t *s = u->data;
  if (n <= 0 || !from || s->closing) return;
  int i = u == &s->udp[1];
  hd_pc_feed(s->pc[i], (const uint8_t *)b->base, (size_t)n, from,
             from->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6), cl_now());
  cl_flush(s->c);
  process_dead(s->c);
}

static int session_start(hd_client_t *c, hd_time_t now) {
  cl_session_t *s = calloc(1, sizeof *s + sizeof(cl_dead_t));
  if (!s) return HD_ENOMEM;
  s->c = c;
  s->started_at = now;
  s->started_unix_ms = (int64_t)((now + c->wall_offset) / 1000);
  int rc = 0;
  for (int i = 0; i < 2; i++) {
    hd_pc_config_t pcfg = {.cert = c->cert,
                           .on_event = i ? sub_event : pub_event,
                           .ud = s,
                           .wall_offset = c->wall_offset,
                           .accept_h264 = i && c->cfg.accept_h264 && c->cfg.no_decode,
                           /* both pcs keep transport-cc: the subscriber's feedback gives
                            * the node its estimate of our downlink (layer choice, pacing;
                            * unit/test_client_downlink) */
                           .connect_timeout = 15000000};
    if ((rc = hd_pc_new(&s->pc[i], &pcfg)) < 0) goto fail;
  }
  hd_rtc_signal_config_t scfg = {.token = c->token,
                                 .no_auto_subscribe = c->cfg.no_auto_subscribe,
                                 .view_width = c->cfg.view_width,
                                 .view_height = c->cfg.view_height,
                                 .name = c->name,
                                 .metadata = c->metadata,
                                 .pub_pc = s->pc[0],
                                 .sub_pc = s->pc[1]};
  if ((rc = hd_rtc_signal_new(&s->sig, &scfg)) < 0) goto fail;
  for (int i = 0; i < 2; i++) {
    uv_udp_init(&c->loop, &s->udp[i]);
    s->udp[i].data = s;
    s->udp_open++;
    struct sockaddr_in a;
    uv_ip4_addr("0.0.0.0", 0, &a);
    if (uv_udp_bind(&s->udp[i], (struct sockaddr *)&a, 0) < 0 ||
        uv_udp_recv_start(&s->udp[i], udp_alloc, udp_recv) < 0) {
      rc = HD_EIO;
      goto fail;
    }
  }
  hd_ws_client_config_t wc = {.on_open = ws_open,
                              .on_message = ws_message,
                              .on_close = ws_close,
                              .ud = s,
                              .connect_timeout_ms =
                                  c->cfg.join_timeout_ms + 1000}; /* our join deadline fires first */
  if ((rc = hd_ws_client_connect(&s->ws, &c->loop, c->url, &wc)) < 0) goto fail;
  s->deadline = now + (hd_time_t)c->cfg.join_timeout_ms * 1000;
  c->s = s;
  return 0;
fail:
  hd_rtc_signal_free(s->sig);
  for (int i = 0; i < 2; i++)
    hd_pc_free(s->pc[i]);
  if (s->udp_open) {
    s->closing = 1;
    int n = s->udp_open;
    for (int i = 0; i < n; i++)
      uv_close((uv_handle_t *)&s->udp[i], udp_closed);
  } else {
    free(s);
  }
  return rc;
}

static void schedule_reconnect(hd_client_t *c, int err, const char *reason, hd_time_t now) {
  int now_please = c->redirected; /* a draining node named a live one: go at once */
  int first = c->state != HD_CLIENT_RECONNECTING;
  if (first) {
    c->reconnect_since = now;
    c->attempt = 0;
  }
  if (!c->redirected && c->n_urls > 1) { /* a cluster: each attempt through the next node */
    c->url_idx = (c->url_idx + 1) % c->n_urls;
    char *u = strdup(c->urls[c->url_idx]);
    if (u) {
      HD_LOGI("client", "rejoining through %s (%s)", u, reason);
      free(c->url);
      c->url = u;
      c->cfg.url = u;
    }
  }
  c->redirected = 0;
  if (now - c->reconnect_since >= (hd_time_t)c->cfg.reconnect_max_ms * 1000) {
    char msg[256];
    snprintf(msg, sizeof msg, "gave up reconnecting after %u ms: %s", c->cfg.reconnect_max_ms, reason);
    c->want_joined = 0;
    set_state(c, HD_CLIENT_FAILED, err ? err : HD_EIO, msg);
    return;
  }
  c->attempt++;
  hd_time_t d = now_please               ? 0
                : first && c->n_urls > 1 ? (hd_time_t)(hd_random_u32() % 250001) /* another node: soon */
                                         : hd_client_backoff(c->attempt, hd_random_u32());
  c->reconnect_at = now + d;
  char msg[256];
  snprintf(msg, sizeof msg, "attempt %d in %lld ms: %s", c->attempt, (long long)(d / 1000), reason);
  set_state(c, HD_CLIENT_RECONNECTING, err ? err : HD_EIO, msg);
}

static void finish_stop(hd_client_t *c);

static void process_dead(hd_client_t *c) {
  cl_session_t *s = c->s;
  if (!s) return;
  cl_dead_t *d = dead_of(s);
  if (!d->dead) return;
  cl_dead_t dd = *d;
  int was_joined = s->joined;
  hd_time_t now = cl_now();
  session_end(c, was_joined);
  if (c->stopping) {
    finish_stop(c);
    return;
  }
  if (!dd.err) { /* our leave completed */
    set_state(c, HD_CLIENT_DISCONNECTED, 0, "left");
    return;
  }
  if (!c->want_joined) {
    set_state(c, HD_CLIENT_DISCONNECTED, 0, "left");
    return;
  }
  /* the first join never reached the room: fail at once (issue 6 §6: a clear
   * error within the join timeout); a lost call reconnects */
  int ever = was_joined || c->state == HD_CLIENT_RECONNECTING || c->state == HD_CLIENT_JOINED;
  if (!dd.reconnect || !ever || c->cfg.no_reconnect) {
    c->want_joined = 0;
    set_state(c, dd.err == HD_ECLOSED ? HD_CLIENT_DISCONNECTED : HD_CLIENT_FAILED, dd.err, dd.reason);
    return;
  }
  schedule_reconnect(c, dd.err, dd.reason, now);
}

/* ---- loop ---- */

static void close_noop(uv_handle_t *h) {}

static void finish_stop(hd_client_t *c) {
  session_end(c, 0);
  for (int i = 0; i < HD_CLIENT_MAX_LOCAL_TRACKS; i++)
    cl_local_free(&c->local[i]);
  cl_remotes_clear(c);
  if (!uv_is_closing((uv_handle_t *)&c->tick)) uv_close((uv_handle_t *)&c->tick, close_noop);
  uv_mutex_lock(&c->mu);
  c->async_closed = 1; /* a route thread still running keeps its result: hd_client_free joins it */
  uv_mutex_unlock(&c->mu);
  if (!uv_is_closing((uv_handle_t *)&c->async)) uv_close((uv_handle_t *)&c->async, close_noop);
}

/* Quality data (docs/quality.md "Collection"): this session's join attempt
 * once it has media (or 5 s after joining without), then a quality_report
 * every HD_QUALITY_REPORT_INTERVAL_MS, like web/rtc.js. A refused report
 * (rate limit, a node without quality data) only costs that report. */
static void quality_tick(hd_client_t *c, cl_session_t *s, hd_time_t now) {
  if (!s->joined || s->left || now < s->next_quality) return;
  s->next_quality = now + (hd_time_t)HD_QUALITY_REPORT_INTERVAL_MS * 1000;
  char buf[8192];
  if (!s->join_reported) {
    hd_join_attempt_t a;
    memset(&a, 0, sizeof a);
    snprintf(a.id, sizeof a.id, "ja_sdk_%llx_%llx", (unsigned long long)s->started_unix_ms,
             (unsigned long long)(uintptr_t)s & 0xffffff);
    snprintf(a.room, sizeof a.room, "%s", hd_rtc_signal_room(s->sig));
    a.started_at_ms = s->started_unix_ms;
    a.ok = 1;
    a.join_ms = (s->joined_at - s->started_at) / 1000;
    a.first_media_ms = s->first_media_at ? (s->first_media_at - s->started_at) / 1000 : -1;
    if (hd_join_report_json(&a, 1, NULL, buf, sizeof buf) > 0 && hd_rtc_signal_send_text(s->sig, buf) == 0)
      s->join_reported = 1;
    return; /* the node takes one quality message per interval */
  }
  hd_client_stats_t st;
  uv_mutex_lock(&c->mu);
  st = c->snap;
  uv_mutex_unlock(&c->mu);
  if (hd_quality_report_json(&st, buf, sizeof buf) > 0) hd_rtc_signal_send_text(s->sig, buf);
}

static void on_tick(uv_timer_t *t) {
  hd_client_t *c = t->data;
  hd_time_t now = cl_now();
  cl_session_t *s = c->s;
  if (s) {
    if (hd_rtc_signal_next_timeout(s->sig) <= now) hd_rtc_signal_handle_timeout(s->sig, now);
    handle_sig_events(c, now);
    if (!c->cfg.no_quality_reports) quality_tick(c, s, now);
    for (int k = 0; k < 2 && c->s == s && !s->closing; k++)
      if (hd_pc_next_timeout(s->pc[k]) <= now) hd_pc_handle_timeout(s->pc[k], now);
    if (!s->joined && now >= s->deadline)
      mark_dead(s, HD_ETIMEDOUT, 1, "join timed out after %u ms", c->cfg.join_timeout_ms);
    if (s->left && now >= s->deadline) mark_dead(s, 0, 0, "left (no answer)");
    if (c->stopping && now >= c->stop_deadline) mark_dead(s, 0, 0, "stopping");
  }
  cl_local_sources(c, now);
  cl_remote_tick(c, now);
  cl_flush(c);
  process_dead(c);
  if (c->reconnect_at && now >= c->reconnect_at && !c->s && !c->stopping) {
    c->reconnect_at = 0;
    int rc = session_start(c, now);
    if (rc < 0) schedule_reconnect(c, rc, hd_strerror(rc), now);
  }
  if (now >= c->next_stats) {
    c->next_stats = now + (hd_time_t)c->cfg.stats_interval_ms * 1000;
    cl_stats(c, now, 1);
  }
  if (c->stopping && !c->s) finish_stop(c);
}

static void join_failed(hd_client_t *c, int rc) {
  c->want_joined = 0;
  set_state(c, HD_CLIENT_FAILED, rc,
            rc == HD_EUNSUPPORTED ? "unsupported url (only ws://<address or localhost>:port/path)"
            : rc == HD_EINVAL     ? "malformed url"
                                  : "cannot start the connection");
}

/* cfg.cluster_url: hd_client_route, blocking, on its own thread (at most
 * HD_CLIENT_ROUTE_MAX_MS); only it touches c->route* until route_ready is
 * set under mu, then the loop thread takes them (on_async -> route_done).
 * hd_client_free joins it. */
static void route_main(void *arg) {
  hd_client_t *c = arg;
  int rc = hd_client_route(c->cluster, c->token, &c->route, c->route_err, sizeof c->route_err);
  uv_mutex_lock(&c->mu);
  c->route_rc = rc;
  c->route_ready = 1;
  if (!c->async_closed) uv_async_send(&c->async);
  uv_mutex_unlock(&c->mu);
}

/* The ring of URLs after a route: the chosen node, the app's fallbacks, the
 * route's other nodes (up to 1 + HD_CLIENT_MAX_FALLBACK_URLS in all). */
static int apply_route(hd_client_t *c) {
  char *first = strdup(c->route.node.rtc_url);
  if (!first) return HD_ENOMEM;
  free(c->urls[0]);
  c->urls[0] = first;
  for (int i = c->n_fixed; i < c->n_urls; i++) {
    free(c->urls[i]);
    c->urls[i] = NULL;
  }
  c->n_urls = c->n_fixed;
  for (int i = 0; i < c->route.n_others && c->n_urls < 1 + HD_CLIENT_MAX_FALLBACK_URLS; i++) {
    char *u = strdup(c->route.fallback_urls[i]);
    if (u) c->urls[c->n_urls++] = u;
  }
  char *u = strdup(first);
  if (!u) return HD_ENOMEM;
  free(c->url);
  c->url = u;
  c->cfg.url = u;
  c->url_idx = 0;
  return 0;
}

static void route_done(hd_client_t *c) {
  c->routing = 0;
  if (c->stopping || !c->want_joined) return; /* freed or left meanwhile (leave said DISCONNECTED) */
  if (c->route_rc < 0) {
    char msg[600];
    snprintf(msg, sizeof msg, "route via %s: %s", c->cluster, c->route_err);
    c->want_joined = 0;
    set_state(c, HD_CLIENT_FAILED, c->route_rc, msg);
    return;
  }
  int rc = apply_route(c);
  if (rc == 0) {
    HD_LOGI("client", "route: room %s -> node %s (%s), reason %s, %d other node(s)", c->route.room,
            c->route.node.id, c->url, c->route.reason, c->route.n_others);
    rc = session_start(c, cl_now());
  }
  if (rc < 0) {
    join_failed(c, rc);
    return;
  }
  cl_flush(c);
}

static void handle_cmd(hd_client_t *c, cl_cmd_t *m, hd_time_t now) {
  cl_session_t *s = c->s;
  cl_local_t *l = m->track >= 0 && m->track < HD_CLIENT_MAX_LOCAL_TRACKS ? &c->local[m->track] : NULL;
  switch (m->type) {
  case CMD_JOIN: {
    if (c->s || c->state == HD_CLIENT_JOINED || c->state == HD_CLIENT_RECONNECTING ||
        (c->routing && c->want_joined)) {
      HD_LOGW("client", "join: already %s", hd_client_state_name(c->state));
      break;
    }
    c->want_joined = 1;
    set_state(c, HD_CLIENT_CONNECTING, 0, "");
    if (c->routing) break;        /* left while routing, joined again: that route goes on */
    if (c->cluster) {             /* route first, off this thread (route_main) */
      if (c->route_thread_live) { /* the last route's thread: it has posted its result and ends */
        uv_thread_join(&c->route_thread);
        c->route_thread_live = 0;
      }
      uv_thread_options_t to = {.flags = UV_THREAD_HAS_STACK_SIZE, .stack_size = ROUTE_THREAD_STACK};
      if (uv_thread_create_ex(&c->route_thread, &to, route_main, c) == 0) {
        c->routing = 1;
        c->route_thread_live = 1;
      } else {
        join_failed(c, HD_EIO);
      }
      break;
    }
    int rc = session_start(c, now);
    if (rc < 0) join_failed(c, rc);
    break;
  }
  case CMD_LEAVE:
    c->want_joined = 0;
    c->reconnect_at = 0;
    if (s && s->joined && !s->left) {
      hd_rtc_signal_leave(s->sig);
      s->left = 1;
      s->deadline = now + LEAVE_WAIT_US;
      cl_flush(c);
    } else if (s) {
      mark_dead(s, 0, 0, "left");
    } else if (c->state != HD_CLIENT_DISCONNECTED && c->state != HD_CLIENT_FAILED) {
      set_state(c, HD_CLIENT_DISCONNECTED, 0, "left");
    }
    break;
  case CMD_PUBLISH:
    m->pub.source = m->str[0] ? m->str : NULL;
    if (l && cl_local_init(c, m->track, &m->pub) == 0) do_publish(c, now);
    break;
  case CMD_UNPUBLISH:
    if (l && l->used) {
      cl_local_free(l);
      do_publish(c, now);
    }
    break;
  case CMD_MUTE:
    if (l && l->used) {
      l->muted = m->arg;
      const char *sid = s && s->joined ? hd_rtc_signal_pub_sid(s->sig, l->cid) : NULL;
      if (sid) hd_rtc_signal_mute(s->sig, sid, m->arg);
      if (!m->arg) l->force_key = 1;
    }
    break;
  case CMD_AUDIO:
    if (l && l->used && l->opt.kind == HD_CLIENT_AUDIO)
      cl_local_push_audio(c, l, (const int16_t *)(const void *)m->data,
                          m->len / sizeof(int16_t) / (size_t)l->opt.channels, now);
    break;
  case CMD_VIDEO:
    if (l && l->used && l->opt.kind == HD_CLIENT_VIDEO) {
      hd_i420_t pic;
      if (hd_i420_wrap(&pic, m->data, m->len, m->w, m->h) == 0) cl_local_push_video(c, l, &pic, now);
    }
    break;
  case CMD_H264:
    if (l && l->used && l->opt.kind == HD_CLIENT_VIDEO && l->opt.h264 && m->len > sizeof(int64_t)) {
      int64_t pts;
      memcpy(&pts, m->data, sizeof pts);
      cl_local_push_h264(c, l, m->data + sizeof pts, m->len - sizeof pts, pts, now);
    }
    break;
  case CMD_KEYFRAME:
    if (l) l->force_key = 1;
    break;
  case CMD_SUBSCRIBE:
    if (s && s->joined) {
      const char *sid = m->str;
      int rc = hd_rtc_signal_subscribe(s->sig, m->arg, &sid, 1);
      if (rc < 0) HD_LOGW("client", "subscribe: %s", hd_strerror(rc));
    }
    break;
  case CMD_TRACK_SETTINGS:
    if (s && s->joined) {
      const char *sid = m->str;
      hd_client_track_settings_t ts;
      memcpy(&ts, m->data, sizeof ts);
      int rc = hd_rtc_signal_track_settings_max(s->sig, &sid, 1, ts.visible, ts.width, ts.height, 0,
                                                ts.max_spatial_layer, ts.max_temporal_layer);
      if (rc < 0) HD_LOGW("client", "track settings: %s", hd_strerror(rc));
    }
    break;
  case CMD_DATA:
    if (s && s->joined) {
      const char *to[64];
      const char *p = (const char *)m->data + strlen((const char *)m->data) + 1;
      for (size_t i = 0; i < m->n_to && i < 64; i++) {
        to[i] = p;
        p += strlen(p) + 1;
      }
      int rc = hd_rtc_signal_send_data(s->sig, (const char *)m->data, m->n_to ? to : NULL, m->n_to);
      if (rc < 0) HD_LOGW("client", "send_data: %s", hd_strerror(rc));
    }
    break;
  case CMD_STOP:
    c->stopping = 1;
    c->want_joined = 0;
    c->reconnect_at = 0;
    c->stop_deadline = now + 1000000;
    if (s && s->joined && !s->left) {
      hd_rtc_signal_leave(s->sig);
      s->left = 1;
      s->deadline = now + 1000000;
    } else if (s) {
      mark_dead(s, 0, 0, "stopping");
    }
    break;
  default: break;
  }
}

static void on_async(uv_async_t *a) {
  hd_client_t *c = a->data;
  uv_mutex_lock(&c->mu);
  cl_cmd_t *m = c->q_head;
  c->q_head = c->q_tail = NULL;
  c->q_n = c->q_bytes = 0;
  int routed = c->route_ready;
  c->route_ready = 0;
  uv_mutex_unlock(&c->mu);
  hd_time_t now = cl_now();
  if (routed) route_done(c);
  while (m) {
    cl_cmd_t *next = m->next;
    if (!c->stopping || m->type == CMD_STOP) handle_cmd(c, m, now);
    free(m);
    m = next;
  }
  cl_flush(c);
  process_dead(c);
  if (c->stopping && !c->s) finish_stop(c);
}

static void loop_main(void *arg) {
  hd_client_t *c = arg;
  uv_run(&c->loop, UV_RUN_DEFAULT);
}

/* ---- public API (any thread) ---- */

static cl_cmd_t *cmd_new(int type, int track, size_t len) {
  cl_cmd_t *m = calloc(1, sizeof *m + len + 1);
  if (!m) return NULL;
  m->type = type;
  m->track = track;
  m->len = len;
  return m;
}

static int enqueue(hd_client_t *c, cl_cmd_t *m, int force) {
  if (!m) return HD_ENOMEM;
  uv_mutex_lock(&c->mu);
  int rc = 0;
  if (c->stopped && !force)
    rc = HD_ESTATE;
  else if (!force && (c->q_n >= HD_CLIENT_QUEUE_MAX || c->q_bytes + m->len > HD_CLIENT_QUEUE_BYTES))
    rc = HD_ENOSPC;
  if (rc == 0) {
    if (c->q_tail)
      c->q_tail->next = m;
    else
      c->q_head = m;
    c->q_tail = m;
    c->q_n++;
    c->q_bytes += m->len;
  }
  uv_mutex_unlock(&c->mu);
  if (rc < 0) {
    free(m);
    return rc;
  }
  uv_async_send(&c->async);
  return 0;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

int hd_client_new(hd_client_t **out, const hd_client_config_t *cfg) {
  if (!out || !cfg || !cfg->token || !cfg->token[0] || !cfg->url == !cfg->cluster_url) return HD_EINVAL;
  hd_client_t *c = calloc(1, sizeof *c);
  if (!c) return HD_ENOMEM;
  c->cfg = *cfg;
  if (!c->cfg.join_timeout_ms) c->cfg.join_timeout_ms = 10000;
  if (!c->cfg.reconnect_max_ms) c->cfg.reconnect_max_ms = 30000;
  if (!c->cfg.stats_interval_ms) c->cfg.stats_interval_ms = 1000;
  if (!c->cfg.max_video_bps) c->cfg.max_video_bps = 1500000;
  if (!c->cfg.audio_bps) c->cfg.audio_bps = 32000;
  /* with a cluster URL, url and urls[0] are the routed node's: a placeholder until then */
  c->cluster = dup_or_null(cfg->cluster_url);
  c->url = strdup(cfg->url ? cfg->url : cfg->cluster_url);
  c->token = strdup(cfg->token);
  c->urls[c->n_urls++] = strdup(cfg->url ? cfg->url : cfg->cluster_url);
  for (int i = 0; cfg->fallback_urls && i < cfg->n_fallback_urls && i < HD_CLIENT_MAX_FALLBACK_URLS; i++)
    if (cfg->fallback_urls[i] && cfg->fallback_urls[i][0])
      c->urls[c->n_urls++] = strdup(cfg->fallback_urls[i]);
  c->n_fixed = c->n_urls;
  c->cfg.fallback_urls = NULL; /* not kept: the copies above are */
  c->cfg.n_fallback_urls = 0;
  for (int i = 0; i < c->n_urls; i++)
    if (!c->urls[i]) c->n_urls = 0; /* out of memory: fails below */
  c->name = dup_or_null(cfg->name);
  c->metadata = dup_or_null(cfg->metadata);
  c->cfg.url = c->url;
  c->cfg.token = c->token;
  c->cfg.name = c->name;
  c->cfg.metadata = c->metadata;
  for (int i = 0; i < HD_CLIENT_MAX_LOCAL_TRACKS; i++)
    c->local[i].pc_track = -1;
  struct timeval tv;
  gettimeofday(&tv, NULL);
  c->wall_offset = (hd_time_t)tv.tv_sec * 1000000 + tv.tv_usec - cl_now();
  c->snap.rtt_ms = -1;
  int rc = HD_ENOMEM;
  c->cfg.cluster_url = c->cluster;
  if (!c->url || !c->token || (cfg->name && !c->name) || (cfg->metadata && !c->metadata) || !c->n_urls ||
      (cfg->cluster_url && !c->cluster))
    goto fail_mem;
  if ((rc = hd_dtls_cert_generate(&c->cert)) < 0) goto fail_mem;
  uv_mutex_init(&c->mu);
  uv_loop_init(&c->loop);
  uv_async_init(&c->loop, &c->async, on_async);
  c->async.data = c;
  uv_timer_init(&c->loop, &c->tick);
  c->tick.data = c;
  uv_timer_start(&c->tick, on_tick, TICK_MS, TICK_MS);
  if (uv_thread_create(&c->thread, loop_main, c) != 0) {
    uv_close((uv_handle_t *)&c->tick, NULL);
    uv_close((uv_handle_t *)&c->async, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
    uv_mutex_destroy(&c->mu);
    rc = HD_EIO;
    goto fail_mem;
  }
  c->thread_started = 1;
  *out = c;
  return 0;
fail_mem:
  hd_dtls_cert_free(c->cert);
  for (int i = 0; i < 1 + HD_CLIENT_MAX_FALLBACK_URLS; i++)
    free(c->urls[i]);
  free(c->url);
  free(c->cluster);
  free(c->token);
  free(c->name);
  free(c->metadata);
  free(c);
  return rc;
}

int hd_client_join(hd_client_t *c) { return c ? enqueue(c, cmd_new(CMD_JOIN, -1, 0), 0) : HD_EINVAL; }
int hd_client_leave(hd_client_t *c) { return c ? enqueue(c, cmd_new(CMD_LEAVE, -1, 0), 0) : HD_EINVAL; }

int hd_client_publish(hd_client_t *c, const hd_client_publish_t *o) {
  if (!c || !o || (o->kind != HD_CLIENT_AUDIO && o->kind != HD_CLIENT_VIDEO)) return HD_EINVAL;
  if (o->kind == HD_CLIENT_AUDIO &&
      (o->channels < 0 || o->channels > 2 || o->from == HD_CLIENT_SOURCE_PATTERN))
    return HD_EINVAL;
  if (o->kind == HD_CLIENT_VIDEO &&
      (o->width < 0 || o->height < 0 || o->width > HD_I420_MAX_DIM || o->height > HD_I420_MAX_DIM ||
       o->fps < 0 || o->fps > 240 || o->from == HD_CLIENT_SOURCE_TONE))
    return HD_EINVAL;
  if (o->from == HD_CLIENT_SOURCE_PATTERN && o->width && o->width < HD_TEST_PATTERN_MIN_WIDTH)
    return HD_EINVAL;
  if (o->source && strlen(o->source) >= 16) return HD_EINVAL;
  if (o->h264 && (o->kind != HD_CLIENT_VIDEO || o->from != HD_CLIENT_SOURCE_PUSH || o->simulcast > 0))
    return HD_EINVAL; /* H.264 is pushed encoded: no built-in source, no simulcast */
  uv_mutex_lock(&c->mu);
  int idx = HD_ENOSPC;
  for (int i = 0; i < HD_CLIENT_MAX_LOCAL_TRACKS; i++)
    if (!c->slot_taken[i]) {
      c->slot_taken[i] = 1;
      c->slot_channels[i] = o->kind == HD_CLIENT_AUDIO ? (o->channels ? o->channels : 1) : o->h264 ? -1 : 0;
      idx = i;
      break;
    }
  uv_mutex_unlock(&c->mu);
  if (idx < 0) return idx;
  cl_cmd_t *m = cmd_new(CMD_PUBLISH, idx, 0);
  if (m) {
    m->pub = *o;
    if (o->source) snprintf(m->str, sizeof m->str, "%s", o->source);
    m->pub.source = NULL; /* the loop copies m->str */
  }
  int rc = enqueue(c, m, 0);
  if (rc < 0) {
    uv_mutex_lock(&c->mu);
    c->slot_taken[idx] = 0;
    uv_mutex_unlock(&c->mu);
    return rc;
  }
  return idx;
}

static int check_track(hd_client_t *c, int t) {
  if (!c || t < 0 || t >= HD_CLIENT_MAX_LOCAL_TRACKS) return HD_EINVAL;
  uv_mutex_lock(&c->mu);
  int ok = c->slot_taken[t];
  uv_mutex_unlock(&c->mu);
  return ok ? 0 : HD_EINVAL;
}

int hd_client_unpublish(hd_client_t *c, int t) {
  int rc = check_track(c, t);
  if (rc < 0) return rc;
  if ((rc = enqueue(c, cmd_new(CMD_UNPUBLISH, t, 0), 0)) < 0) return rc;
  uv_mutex_lock(&c->mu);
  c->slot_taken[t] = 0;
  uv_mutex_unlock(&c->mu);
  return 0;
}

int hd_client_mute(hd_client_t *c, int t, int muted) {
  int rc = check_track(c, t);
  if (rc < 0) return rc;
  cl_cmd_t *m = cmd_new(CMD_MUTE, t, 0);
  if (m) m->arg = !!muted;
  return enqueue(c, m, 0);
}

int hd_client_request_keyframe(hd_client_t *c, int t) {
  int rc = check_track(c, t);
  return rc < 0 ? rc : enqueue(c, cmd_new(CMD_KEYFRAME, t, 0), 0);
}

int hd_client_push_audio(hd_client_t *c, int t, const int16_t *pcm, size_t samples) {
  int rc = check_track(c, t);
  if (rc < 0) return rc;
  if (!pcm || !samples || samples > HD_OPUS_RATE) return HD_EINVAL;
  uv_mutex_lock(&c->mu);
  int ch = c->slot_channels[t];
  uv_mutex_unlock(&c->mu);
  if (ch < 1) return HD_EINVAL; /* not an audio track */
  size_t bytes = samples * (size_t)ch * sizeof(int16_t);
  cl_cmd_t *m = cmd_new(CMD_AUDIO, t, bytes);
  if (!m) return HD_ENOMEM;
  memcpy(m->data, pcm, bytes);
  return enqueue(c, m, 0);
}

int hd_client_push_video(hd_client_t *c, int t, int w, int h, const uint8_t *const plane[3],
                         const int stride[3]) {
  int rc = check_track(c, t);
  if (rc < 0) return rc;
  if (!plane || !stride || w < 2 || h < 2 || w > HD_I420_MAX_DIM || h > HD_I420_MAX_DIM) return HD_EINVAL;
  size_t sz = hd_i420_size(w, h);
  cl_cmd_t *m = cmd_new(CMD_VIDEO, t, sz);
  if (!m) return HD_ENOMEM;
  m->w = w;
  m->h = h;
  hd_i420_t src = {.width = w, .height = h}, dst;
  for (int i = 0; i < 3; i++) {
    if (!plane[i] || stride[i] < (i ? hd_i420_chroma(w) : w)) {
      free(m);
      return HD_EINVAL;
    }
    src.plane[i] = (uint8_t *)plane[i];
    src.stride[i] = stride[i];
  }
  hd_i420_wrap(&dst, m->data, sz, w, h);
  hd_i420_copy(&dst, &src);
  return enqueue(c, m, 0);
}

int hd_client_push_h264(hd_client_t *c, int t, const uint8_t *au, size_t len, int64_t pts_us) {
  int rc = check_track(c, t);
  if (rc < 0) return rc;
  if (!au || !len || len > CL_VIDEO_OUT_MAX * 4) return HD_EINVAL;
  uv_mutex_lock(&c->mu);
  int h264 = c->slot_channels[t] == -1;
  uv_mutex_unlock(&c->mu);
  if (!h264) return HD_EINVAL; /* not a track published with h264 = 1 */
  cl_cmd_t *m = cmd_new(CMD_H264, t, sizeof pts_us + len);
  if (!m) return HD_ENOMEM;
  memcpy(m->data, &pts_us, sizeof pts_us);
  memcpy(m->data + sizeof pts_us, au, len);
  return enqueue(c, m, 0);
}

int hd_client_subscribe(hd_client_t *c, const char *track_sid, int subscribe) {
  if (!c || !track_sid || !track_sid[0] || strlen(track_sid) >= HD_RTC_SIGNAL_SID_MAX) return HD_EINVAL;
  cl_cmd_t *m = cmd_new(CMD_SUBSCRIBE, -1, 0);
  if (m) {
    snprintf(m->str, sizeof m->str, "%s", track_sid);
    m->arg = !!subscribe;
  }
  return enqueue(c, m, 0);
}

int hd_client_set_track_settings(hd_client_t *c, const char *track_sid, const hd_client_track_settings_t *s) {
  if (!c || !s || !track_sid || !track_sid[0] || strlen(track_sid) >= HD_RTC_SIGNAL_SID_MAX || s->width < 0 ||
      s->height < 0 || s->width > 16384 || s->height > 16384 || s->max_spatial_layer < -1 ||
      s->max_spatial_layer > 2 || s->max_temporal_layer < -1 || s->max_temporal_layer > 2)
    return HD_EINVAL;
  cl_cmd_t *m = cmd_new(CMD_TRACK_SETTINGS, -1, sizeof *s);
  if (m) {
    snprintf(m->str, sizeof m->str, "%s", track_sid);
    memcpy(m->data, s, sizeof *s);
  }
  return enqueue(c, m, 0);
}

int hd_client_send_data(hd_client_t *c, const char *payload, const char *const *to, size_t n_to) {
  if (!c || !payload || n_to > 64 || (n_to && !to)) return HD_EINVAL;
  size_t len = strlen(payload) + 1;
  for (size_t i = 0; i < n_to; i++) {
    if (!to[i]) return HD_EINVAL;
    len += strlen(to[i]) + 1;
  }
  if (len > 65536) return HD_EINVAL;
  cl_cmd_t *m = cmd_new(CMD_DATA, -1, len);
  if (!m) return HD_ENOMEM;
  m->n_to = n_to;
  char *p = (char *)m->data;
  size_t l = strlen(payload) + 1;
  memcpy(p, payload, l);
  p += l;
  for (size_t i = 0; i < n_to; i++) {
    l = strlen(to[i]) + 1;
    memcpy(p, to[i], l);
    p += l;
  }
  return enqueue(c, m, 0);
}

int hd_client_get_stats(hd_client_t *c, hd_client_stats_t *out) {
  if (!c || !out) return HD_EINVAL;
  uv_mutex_lock(&c->mu);
  *out = c->snap;
  uv_mutex_unlock(&c->mu);
  return 0;
}

hd_client_state_t hd_client_state(const hd_client_t *c) {
  if (!c) return HD_CLIENT_DISCONNECTED;
  uv_mutex_lock((uv_mutex_t *)&c->mu);
  hd_client_state_t s = c->state_pub;
  uv_mutex_unlock((uv_mutex_t *)&c->mu);
  return s;
}

void hd_client_free(hd_client_t *c) {
  if (!c) return;
  enqueue(c, cmd_new(CMD_STOP, -1, 0), 1);
  uv_mutex_lock(&c->mu);
  c->stopped = 1;
  uv_mutex_unlock(&c->mu);
  uv_thread_join(&c->thread);
  if (c->route_thread_live) uv_thread_join(&c->route_thread); /* at most HD_CLIENT_ROUTE_MAX_MS */
  uv_loop_close(&c->loop);
  cl_cmd_t *m = c->q_head;
  while (m) {
    cl_cmd_t *n = m->next;
    free(m);
    m = n;
  }
  uv_mutex_destroy(&c->mu);
  hd_dtls_cert_free(c->cert);
  for (int i = 0; i < c->n_urls; i++)
    free(c->urls[i]);
  free(c->url);
  free(c->cluster);
  free(c->token);
  free(c->name);
  free(c->metadata);
  free(c);
}

const char *hd_client_strerror(int err) { return hd_strerror(err); }

const char *hd_client_state_name(hd_client_state_t s) {
  switch (s) {
  case HD_CLIENT_DISCONNECTED: return "disconnected";
  case HD_CLIENT_CONNECTING: return "connecting";
  case HD_CLIENT_JOINED: return "joined";
  case HD_CLIENT_RECONNECTING: return "reconnecting";
  case HD_CLIENT_FAILED: return "failed";
  }
  return "unknown";
}
