/* WebRTC transport: ICE-lite + DTLS-SRTP + SRTP glue, sans-IO. */
#include "sfu/peer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "proto/stun.h"

int hd_peer_init(hd_peer_t *p, hd_txq_t *txq, hd_dtls_cert_t *cert, const char *local_ufrag,
                 const char *local_pwd, const char *remote_ufrag, const char *remote_fp, int dtls_server,
                 hd_time_t now) {
  memset(p, 0, sizeof *p);
  p->txq = txq;
  p->dtls_server = dtls_server;
  int rc = hd_ice_init(&p->ice, local_ufrag, local_pwd, remote_ufrag);
  if (rc) return rc;
  hd_ice_start(&p->ice, now);
  p->cert = cert;
  if (!remote_fp) return 0; /* ICE only until hd_peer_set_remote */
  rc = hd_dtls_new(&p->dtls, cert, dtls_server, remote_fp, now);
  if (rc) {
    hd_ice_free(&p->ice);
    return rc;
  }
  p->state = HD_PEER_NEW;
  return 0;
}

static void fail(hd_peer_t *p, const char *why) {
  if (p->state == HD_PEER_FAILED || p->state == HD_PEER_CLOSED) return;
  p->state = HD_PEER_FAILED;
  snprintf(p->reason, sizeof p->reason, "%s", why);
}

/* Moves pending DTLS datagrams to the tx queue once ICE has a path. */
static void flush_dtls(hd_peer_t *p) {
  socklen_t tolen;
  const struct sockaddr *to = hd_ice_selected(&p->ice, &tolen);
  if (!to || !p->dtls) return;
  for (;;) {
    hd_datagram_t *d = hd_txq_reserve(p->txq);
    if (!d) return;
    int n = hd_dtls_poll(p->dtls, d->data, sizeof d->data);
    if (n <= 0) return;
    hd_txq_commit(p->txq, (size_t)n, to, tolen);
    p->stats.tx_packets++;
    p->stats.tx_bytes += (size_t)n;
  }
}

void hd_peer_sctp_flush(hd_peer_t *p) {
  if (!p->sctp || !p->dtls) return;
  uint8_t pkt[HD_DTLS_MAX_APP_DATA];
  int n;
  /* every packet is taken even if DTLS refuses it (closing): SCTP repairs or
   * notices, and a packet left queued would keep the timer due forever */
  while ((n = hd_sctp_poll(p->sctp, pkt, sizeof pkt)) > 0)
    if (hd_dtls_send(p->dtls, pkt, (size_t)n) < 0) p->stats.drop_app_data++;
  flush_dtls(p);
}

static void start_sctp(hd_peer_t *p, hd_time_t now) {
  if (!p->want_sctp || p->sctp || p->state != HD_PEER_CONNECTED) return;
  int rc = hd_sctp_new(&p->sctp, !p->dtls_server, HD_SCTP_PORT, p->sctp_remote_port, now);
  if (rc) {
    HD_LOGW("peer", "data channels unavailable: %s", hd_strerror(rc));
    p->want_sctp = 0;
    return;
  }
  hd_sctp_set_remote_max_message(p->sctp, (size_t)p->sctp_remote_max_message);
  hd_peer_sctp_flush(p);
}

int hd_peer_enable_sctp(hd_peer_t *p, uint16_t remote_port, uint64_t remote_max_message, hd_time_t now) {
  if (p->want_sctp) return 0;
  p->want_sctp = 1;
  p->sctp_remote_port = remote_port ? remote_port : HD_SCTP_PORT;
  p->sctp_remote_max_message = remote_max_message;
  start_sctp(p, now);
  return p->want_sctp ? 0 : HD_EIO;
}

static void check_dtls(hd_peer_t *p, hd_time_t now) {
  int st = hd_dtls_state(p->dtls);
  if (st == HD_DTLS_CONNECTED && !p->srtp && p->state == HD_PEER_NEW) {
    hd_dtls_srtp_keys_t k;
    int rc = hd_dtls_srtp_keys(p->dtls, &k);
    if (rc == 0) rc = hd_srtp_new(&p->srtp, k.profile, k.local_key, k.remote_key, k.key_len);
    memset(&k, 0, sizeof k);
    /* a data-channel-only transport may come without use_srtp: fine without media */
    if (rc && !(rc == HD_EUNSUPPORTED && p->want_sctp)) {
      fail(p, "SRTP keying failed");
      return;
    }
    p->state = HD_PEER_CONNECTED;
    p->connected_at = now;
    start_sctp(p, now);
  } else if (st == HD_DTLS_FAILED) {
    char why[160];
    snprintf(why, sizeof why, "DTLS failed: %s", hd_dtls_error(p->dtls));
    fail(p, why);
  } else if (st == HD_DTLS_CLOSED && p->state != HD_PEER_CLOSED) {
    p->state = HD_PEER_CLOSED;
    snprintf(p->reason, sizeof p->reason, "peer closed DTLS");
  }
}

int hd_peer_feed(hd_peer_t *p, uint8_t *buf, size_t *len, const struct sockaddr *from, socklen_t fromlen,
                 hd_time_t now, int *ice_ok) {
  *ice_ok = 0;
  if (p->state == HD_PEER_FAILED || p->state == HD_PEER_CLOSED) return HD_ECLOSED;
  if (*len == 0) return HD_EPROTO;
  p->stats.rx_packets++;
  p->stats.rx_bytes += *len;
  uint8_t b0 = buf[0];
  if (b0 <= 3) { /* STUN, RFC 7983 */
    hd_datagram_t *d = hd_txq_reserve(p->txq);
    uint8_t scratch[HD_DATAGRAM_MAX];
    size_t rlen = 0;
    uint64_t checks_before = p->ice.n_checks;
    int rc = hd_ice_feed(&p->ice, buf, *len, from, fromlen, now, d ? d->data : scratch,
                         d ? sizeof d->data : sizeof scratch, &rlen);
    if (rc < 0) {
      if (rc == HD_EAUTH)
        p->stats.drop_stun_auth++;
      else
        p->stats.drop_malformed++;
      if (rlen && d) hd_txq_commit(p->txq, rlen, from, fromlen); /* error responses (e.g. 487) */
      return rc;
    }
    if (rlen && d) {
      hd_txq_commit(p->txq, rlen, from, fromlen);
      p->stats.tx_packets++;
      p->stats.tx_bytes += rlen;
    }
    /* rc == 1 also for error responses (420/487): only a valid check counts */
    if (rc == 1 && p->ice.n_checks > checks_before) *ice_ok = 1;
    flush_dtls(p); /* a path may exist now (client role has a ClientHello waiting) */
    return HD_PEER_PKT_NONE;
  }
  if (b0 >= 20 && b0 <= 63 && !p->dtls) { /* DTLS before the answer: keep a few */
    if (p->n_early < 4 && *len <= sizeof p->early[0]) {
      memcpy(p->early[p->n_early], buf, *len);
      p->early_len[p->n_early++] = *len;
    }
    return HD_PEER_PKT_NONE;
  }
  if (b0 >= 20 && b0 <= 63) { /* DTLS */
    uint64_t dropped = hd_dtls_dropped(p->dtls);
    int rc = hd_dtls_feed(p->dtls, buf, *len, now);
    /* unauthenticated records (issue 12 item 1) are counted per record */
    dropped = hd_dtls_dropped(p->dtls) - dropped;
    p->stats.drop_dtls += dropped ? dropped : rc < 0 ? 1u : 0u;
    check_dtls(p, now);
    /* application data: SCTP packets of the data channels (RFC 8261) */
    uint8_t app[HD_DTLS_MAX_DATAGRAM];
    int n;
    while ((n = hd_dtls_recv(p->dtls, app, sizeof app)) > 0) {
      if (!p->sctp || hd_sctp_feed(p->sctp, app, (size_t)n, now) < 0) p->stats.drop_app_data++;
    }
    if (p->sctp)
      hd_peer_sctp_flush(p);
    else
      flush_dtls(p);
    return rc < 0 ? rc : HD_PEER_PKT_NONE;
  }
  if (b0 >= 128 && b0 <= 191) { /* RTP / RTCP */
    if (!p->srtp) {
      p->stats.drop_not_ready++;
      return HD_ESTATE;
    }
    int is_rtcp = *len >= 2 && buf[1] >= 192 && buf[1] <= 223;
    int rc = is_rtcp ? hd_srtp_unprotect_rtcp(p->srtp, buf, *len) : hd_srtp_unprotect(p->srtp, buf, *len);
    if (rc < 0) {
      if (rc == HD_EREPLAY)
        p->stats.drop_srtp_replay++;
      else if (rc == HD_EAUTH)
        p->stats.drop_srtp_auth++;
      else
        p->stats.drop_malformed++;
      return rc;
    }
    *len = (size_t)rc;
    return is_rtcp ? HD_PEER_PKT_RTCP : HD_PEER_PKT_RTP;
  }
  p->stats.drop_malformed++;
  return HD_EPROTO;
}

int hd_peer_set_remote(hd_peer_t *p, const char *remote_ufrag, const char *remote_fp, int dtls_server,
                       hd_time_t now) {
  if (p->dtls) return HD_ESTATE;
  if (remote_ufrag && remote_ufrag[0]) hd_ice_set_remote_ufrag(&p->ice, remote_ufrag);
  p->dtls_server = dtls_server;
  int rc = hd_dtls_new(&p->dtls, p->cert, dtls_server, remote_fp, now);
  if (rc) return rc;
  for (int i = 0; i < p->n_early; i++)
    hd_dtls_feed(p->dtls, p->early[i], p->early_len[i], now);
  p->n_early = 0;
  check_dtls(p, now);
  flush_dtls(p);
  return 0;
}

int hd_peer_set_link(hd_peer_t *p, int (*send)(void *ud, const uint8_t *pkt, size_t len, int is_rtcp),
                     void *ud, hd_time_t now) {
  if (!p->link_buf && !(p->link_buf = malloc(HD_DATAGRAM_MAX))) return HD_ENOMEM;
  hd_dtls_free(p->dtls);
  p->dtls = NULL;
  p->link_send = send;
  p->link_ud = ud;
  p->state = HD_PEER_CONNECTED;
  p->connected_at = now;
  return 0;
}

uint8_t *hd_peer_tx_begin(hd_peer_t *p, size_t *cap) {
  if (p->state != HD_PEER_CONNECTED) return NULL;
  if (p->link_send) {
    *cap = HD_DATAGRAM_MAX - HD_SRTP_MAX_TRAILER;
    return p->link_buf;
  }
  hd_datagram_t *d = hd_txq_reserve(p->txq);
  if (!d) return NULL;
  *cap = sizeof d->data - HD_SRTP_MAX_TRAILER;
  return d->data;
}

int hd_peer_tx_commit(hd_peer_t *p, size_t len, int is_rtcp) {
  if (p->link_send) {
    if (p->state != HD_PEER_CONNECTED) return HD_ESTATE;
    p->stats.tx_packets++;
    p->stats.tx_bytes += len;
    return p->link_send(p->link_ud, p->link_buf, len, is_rtcp);
  }
  socklen_t tolen;
  const struct sockaddr *to = hd_ice_selected(&p->ice, &tolen);
  if (!to || p->state != HD_PEER_CONNECTED) return HD_ESTATE;
  hd_datagram_t *d = hd_txq_reserve(p->txq);
  if (!d) return HD_ENOSPC;
  if (!is_rtcp && p->rtp_out) { /* sealed and sent by another worker (io/worker_shards.h) */
    int rc = p->rtp_out(p->rtp_out_h, d->data, len, to, tolen);
    if (rc < 0) return rc;
    p->stats.tx_packets++;
    p->stats.tx_bytes += len + 16; /* + the GCM tag (10 for CM): what leaves, near enough */
    return (int)len;
  }
  int n = is_rtcp ? hd_srtp_protect_rtcp(p->srtp, d->data, len, sizeof d->data)
                  : hd_srtp_protect(p->srtp, d->data, len, sizeof d->data);
  if (n < 0) return n;
  hd_txq_commit(p->txq, (size_t)n, to, tolen);
  p->stats.tx_packets++;
  p->stats.tx_bytes += (size_t)n;
  return n;
}

int hd_peer_clone_rtp_tx(hd_peer_t *p, hd_srtp_t **out) {
  if (p->state != HD_PEER_CONNECTED || !p->dtls || !p->srtp || p->link_send) return HD_ESTATE;
  hd_dtls_srtp_keys_t k;
  int rc = hd_dtls_srtp_keys(p->dtls, &k);
  if (rc == 0) rc = hd_srtp_new(out, k.profile, k.local_key, k.remote_key, k.key_len);
  memset(&k, 0, sizeof k);
  return rc;
}

void hd_peer_set_rtp_out(hd_peer_t *p,
                         int (*out)(void *h, const uint8_t *pkt, size_t len, const struct sockaddr *to,
                                    socklen_t tolen),
                         void *h) {
  p->rtp_out = out;
  p->rtp_out_h = h;
}

int hd_peer_send(hd_peer_t *p, const uint8_t *pkt, size_t len, int is_rtcp) {
  size_t cap;
  uint8_t *b = hd_peer_tx_begin(p, &cap);
  if (!b) return p->state == HD_PEER_CONNECTED ? HD_ENOSPC : HD_ESTATE;
  if (len > cap) return HD_ENOSPC;
  memcpy(b, pkt, len);
  return hd_peer_tx_commit(p, len, is_rtcp);
}

hd_time_t hd_peer_next_timeout(const hd_peer_t *p) {
  if (p->state == HD_PEER_FAILED || p->state == HD_PEER_CLOSED || p->link_send) return HD_TIME_NEVER;
  hd_time_t t = hd_ice_next_timeout(&p->ice);
  if (p->dtls && p->state == HD_PEER_NEW) t = hd_time_min(t, hd_dtls_next_timeout(p->dtls));
  if (p->sctp) t = hd_time_min(t, hd_sctp_next_timeout(p->sctp));
  return t;
}

void hd_peer_handle_timeout(hd_peer_t *p, hd_time_t now) {
  if (p->state == HD_PEER_FAILED || p->state == HD_PEER_CLOSED || p->link_send) return;
  hd_ice_handle_timeout(&p->ice, now);
  if (hd_ice_state(&p->ice) == HD_ICE_FAILED) {
    fail(p, p->state == HD_PEER_NEW && !hd_ice_selected(&p->ice, &(socklen_t){0})
                ? "ICE: no connectivity check within the connect timeout"
                : "ICE: consent expired (no check for 30 s, RFC 7675)");
    return;
  }
  if (p->dtls && p->state == HD_PEER_NEW && hd_dtls_next_timeout(p->dtls) <= now) {
    hd_dtls_handle_timeout(p->dtls, now);
    check_dtls(p, now);
    flush_dtls(p);
  }
  if (p->sctp && hd_sctp_next_timeout(p->sctp) <= now) {
    hd_sctp_handle_timeout(p->sctp, now);
    hd_peer_sctp_flush(p);
  }
}

void hd_peer_close(hd_peer_t *p, const char *reason) {
  if (p->state == HD_PEER_CLOSED) return;
  if (p->dtls && p->state == HD_PEER_CONNECTED) {
    hd_dtls_close(p->dtls);
    flush_dtls(p);
  }
  p->state = HD_PEER_CLOSED;
  snprintf(p->reason, sizeof p->reason, "%s", reason ? reason : "closed");
}

void hd_peer_free(hd_peer_t *p) {
  hd_sctp_free(p->sctp);
  p->sctp = NULL;
  hd_srtp_free(p->srtp);
  hd_dtls_free(p->dtls);
  hd_ice_free(&p->ice);
  free(p->link_buf);
  p->link_buf = NULL;
  p->link_send = NULL;
  p->rtp_out = NULL;
  p->rtp_out_h = NULL;
  p->srtp = NULL;
  p->dtls = NULL;
}
