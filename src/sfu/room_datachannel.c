/* Data channels in rooms (docs/protocol.md "Data channels"): what a
 * participant sends on hd-reliable / hd-lossy goes to every other participant
 * on its channel of the same reliability, or over its WebSocket. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/err.h"
#include "base/log.h"
#include "sfu/rooms_internal.h"

/* ---- data channels ---- */

/* A refused data channel message is dropped; the sender hears why over its
 * WebSocket (no request id: the message had none), at most once a second. */
static void dc_error(hd_node_t *n, hd_participant_t *p, hd_signal_errcode_t code, const char *msg,
                     hd_time_t now) {
  n->stats.dc_msgs_refused++;
  if (p->last_dc_err && now - p->last_dc_err < HD_SEC(1)) return;
  p->last_dc_err = now;
  rooms_send_error(n, p->conn, NULL, code, msg);
}

/* The SCTP association of q's publisher PC if it is up. */
static hd_sctp_t *dc_assoc(const hd_participant_t *q) {
  if (!q->pub_sess || !q->pub_sess->peer.sctp) return NULL;
  return hd_sctp_state(q->pub_sess->peer.sctp) == HD_SCTP_CONNECTED ? q->pub_sess->peer.sctp : NULL;
}

static void dc_message(hd_node_t *n, hd_participant_t *p, uint16_t stream, const uint8_t *data, size_t len,
                       int binary, hd_time_t now) {
  n->stats.dc_msgs_in++;
  int k = stream == p->dc[DC_RELIABLE] ? DC_RELIABLE : stream == p->dc[DC_LOSSY] ? DC_LOSSY : -1;
  if (k < 0) {
    dc_error(n, p, HD_SIGNAL_ERR_BAD_REQUEST,
             "data channel message dropped: only " DC_LABEL_RELIABLE " and " DC_LABEL_LOSSY " are forwarded",
             now);
    return;
  }
  if (!p->claims.can_publish_data) {
    dc_error(n, p, HD_SIGNAL_ERR_FORBIDDEN, "token lacks canPublishData: data channel message dropped", now);
    return;
  }
  if (len > (binary ? DC_MAX_BINARY : DC_MAX_TEXT)) {
    dc_error(n, p, HD_SIGNAL_ERR_TOO_LARGE,
             binary ? "data channel message dropped: binary over 11520 bytes"
                    : "data channel message dropped: text over 15360 bytes",
             now);
    return;
  }
  if (!rooms_data_rate_ok(p, now)) {
    dc_error(n, p, HD_SIGNAL_ERR_RATE_LIMITED,
             "more than 50 data messages per second: data channel message dropped", now);
    return;
  }
  /* payload as a C string: text as is (no NUL allowed), binary as base64 */
  char payload[HD_SIGNAL_MAX_PAYLOAD + 1];
  if (binary) {
    if (hd_base64_encode(data, len, payload, sizeof payload, 0) < 0) return;
  } else {
    if (len && memchr(data, 0, len)) {
      dc_error(n, p, HD_SIGNAL_ERR_BAD_REQUEST, "data channel message dropped: text contains NUL", now);
      return;
    }
    if (len) memcpy(payload, data, len);
    payload[len] = 0;
  }
  char *buf = malloc(OUT_CAP);
  if (!buf) return;
  int blen = hd_signal_write_data_recv_dc(p->identity, p->sid, payload,
                                          k == DC_RELIABLE ? "reliable" : "lossy", binary, buf, OUT_CAP);
  if (blen < 0) {
    dc_error(n, p, HD_SIGNAL_ERR_BAD_REQUEST, "data channel message dropped: text is not valid UTF-8", now);
    free(buf);
    return;
  }
  rooms_dc_deliver(n, p->room, p, k, buf, blen, NULL, NULL);
  room_remote_data(n, p->room, k, NULL, 0, buf, blen); /* the room's participants on other nodes */
  free(buf);
}

void rooms_dc_deliver(hd_node_t *n, hd_room_t *r, const hd_participant_t *except, int k, const char *buf,
                      int blen, int (*want)(void *ud, const hd_participant_t *q), void *ud) {
  for (hd_participant_t *q = r->participants; q; q = q->next) {
    if (q == except || q->remote || (want && !want(ud, q))) continue;
    hd_sctp_t *sc = dc_assoc(q);
    if (sc && q->dc[k] >= 0) {
      int rc = hd_sctp_send(sc, (uint16_t)q->dc[k], buf, (size_t)blen, 0);
      hd_peer_sctp_flush(&q->pub_sess->peer);
      if (rc < 0) { /* a receiver not keeping up loses messages, others do not wait */
        q->dc_dropped++;
        n->stats.dc_msgs_dropped++;
      } else {
        n->stats.dc_msgs_out++;
      }
    } else {
      rooms_emit(n, q, buf, blen); /* no channel of that kind: the WebSocket (reliable, ordered) */
      n->stats.dc_msgs_ws++;
    }
  }
}

void rooms_on_sctp(hd_node_t *n, hd_session_t *s, hd_time_t now) {
  hd_participant_t *p = s->owner;
  hd_sctp_t *sc = s->peer.sctp;
  hd_sctp_event_t ev;
  while (hd_sctp_next_event(sc, &ev)) {
    if (p->pub_sess != s) continue;
    switch (ev.type) {
    case HD_SCTP_EV_CHANNEL_OPEN: {
      int k = !strcmp(ev.channel.label, DC_LABEL_RELIABLE) ? DC_RELIABLE
              : !strcmp(ev.channel.label, DC_LABEL_LOSSY)  ? DC_LOSSY
                                                           : -1;
      if (k >= 0) p->dc[k] = ev.stream;
      HD_LOGI("room", "participant %s opened data channel '%s' (stream %u)", p->identity, ev.channel.label,
              ev.stream);
      break;
    }
    case HD_SCTP_EV_CHANNEL_CLOSED:
      for (int k = 0; k < 2; k++)
        if (p->dc[k] == ev.stream) p->dc[k] = -1;
      break;
    case HD_SCTP_EV_CLOSED: p->dc[DC_RELIABLE] = p->dc[DC_LOSSY] = -1; break;
    case HD_SCTP_EV_MESSAGE: dc_message(n, p, ev.stream, ev.data, ev.len, ev.binary, now); break;
    default: break;
    }
  }
}
