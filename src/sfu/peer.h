/* One server-side WebRTC transport (a PeerConnection as the node sees it):
 * ICE-lite (RFC 8445 §2.5) + DTLS-SRTP (RFC 5764) + SRTP (RFC 3711/7714) over
 * one bundled, rtcp-muxed 5-tuple. Sans-IO: datagrams come in through
 * hd_peer_feed and go out into the node's tx queue; media is handed back to
 * the caller decrypted. Demux of a datagram's first byte follows RFC 7983 §7.
 * With data channels enabled (hd_peer_enable_sctp), DTLS application data is
 * SCTP (RFC 8261): it goes to an hd_sctp association created when DTLS
 * connects, whose packets are DTLS-encrypted into the tx queue; the caller
 * drains the association's events (p->sctp, hd_sctp_next_event). */
#ifndef HD_SFU_PEER_H
#define HD_SFU_PEER_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/time.h"
#include "proto/dtls.h"
#include "proto/ice.h"
#include "proto/sctp.h"
#include "proto/srtp.h"
#include "sfu/txq.h"

enum { HD_PEER_NEW = 0, HD_PEER_CONNECTED = 1, HD_PEER_FAILED = 2, HD_PEER_CLOSED = 3 };
enum { HD_PEER_PKT_NONE = 0, HD_PEER_PKT_RTP = 1, HD_PEER_PKT_RTCP = 2 };

typedef struct {
  uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
  uint64_t drop_stun_auth, drop_malformed, drop_srtp_auth, drop_srtp_replay, drop_not_ready, drop_dtls;
  uint64_t drop_app_data; /* DTLS application data without data channels (or SCTP refused it) */
} hd_peer_stats_t;

typedef struct {
  hd_ice_t ice;
  hd_dtls_t *dtls;
  hd_srtp_t *srtp;
  hd_txq_t *txq;
  int state;
  int dtls_server;
  char reason[160]; /* why FAILED/CLOSED */
  hd_time_t connected_at;
  hd_peer_stats_t stats;
  /* DTLS datagrams that arrived before the remote description (see hd_peer_set_remote) */
  hd_dtls_cert_t *cert;
  uint8_t early[4][1500];
  size_t early_len[4];
  int n_early;
  /* data channels (RFC 8831): wanted from the SDP; the association exists once DTLS is up */
  int want_sctp;
  uint16_t sctp_remote_port;
  uint64_t sctp_remote_max_message;
  hd_sctp_t *sctp;
  /* link mode (hd_peer_set_link): no ICE/DTLS/SRTP, what the session sends
   * goes to link_send (a node-to-node link: sfu/room_remote.c) */
  int (*link_send)(void *ud, const uint8_t *pkt, size_t len, int is_rtcp);
  void *link_ud;
  uint8_t *link_buf;
  /* RTP sent by another thread (hd_peer_set_rtp_out, io/worker_shards.h):
   * outgoing RTP goes to rtp_out in clear with its destination, sealed there
   * with a second outbound SRTP session of this transport; RTCP stays here. */
  int (*rtp_out)(void *h, const uint8_t *pkt, size_t len, const struct sockaddr *to, socklen_t tolen);
  void *rtp_out_h;
} hd_peer_t;

/* Creates the transport. remote_fp is the peer's sha-256 fingerprint from SDP. */
int hd_peer_init(hd_peer_t *p, hd_txq_t *txq, hd_dtls_cert_t *cert, const char *local_ufrag,
                 const char *local_pwd, const char *remote_ufrag, const char *remote_fp, int dtls_server,
                 hd_time_t now);
/* With remote_fp NULL, hd_peer_init starts ICE only (our offer is out, the
 * answer not in yet: the client's first checks are answered at once instead of
 * waiting for its retransmissions); DTLS starts with hd_peer_set_remote. */
int hd_peer_set_remote(hd_peer_t *p, const char *remote_ufrag, const char *remote_fp, int dtls_server,
                       hd_time_t now);
/* Feeds one datagram from `from`. STUN and DTLS are consumed (return
 * HD_PEER_PKT_NONE, or 1 in *ice_ok when a valid ICE check came in); SRTP/SRTCP
 * is decrypted in place (*len updated) and HD_PEER_PKT_RTP/RTCP is returned.
 * Negative: dropped (counted in stats). */
int hd_peer_feed(hd_peer_t *p, uint8_t *buf, size_t *len, const struct sockaddr *from, socklen_t fromlen,
                 hd_time_t now, int *ice_ok);
/* Outgoing media: hd_peer_tx_begin returns a buffer of *cap bytes (room left for
 * the SRTP trailer) in the tx queue, or NULL when not connected / queue full;
 * write one RTP or RTCP packet there, then commit it (it is encrypted in place). */
uint8_t *hd_peer_tx_begin(hd_peer_t *p, size_t *cap);
int hd_peer_tx_commit(hd_peer_t *p, size_t len, int is_rtcp);
/* Copies and sends one packet (convenience over begin/commit). */
int hd_peer_send(hd_peer_t *p, const uint8_t *pkt, size_t len, int is_rtcp);
hd_time_t hd_peer_next_timeout(const hd_peer_t *p);
void hd_peer_handle_timeout(hd_peer_t *p, hd_time_t now);
/* Expects an SCTP association for data channels (the SDP accepted an
 * m=application section): remote_port / remote_max_message are the offer's
 * a=sctp-port / a=max-message-size. The association is created (and INIT
 * sent) when DTLS connects, or at once if it already has. Idempotent. Returns
 * 0 or an hd_sctp_new error. */
int hd_peer_enable_sctp(hd_peer_t *p, uint16_t remote_port, uint64_t remote_max_message, hd_time_t now);
/* Moves the association's outbound SCTP packets into DTLS records and the
 * DTLS datagrams into the tx queue; call after hd_sctp_send/close_channel. */
void hd_peer_sctp_flush(hd_peer_t *p);
/* Turns p into the stand-in transport of a publisher on another node
 * (docs/overlay.md): connected at once, no ICE/DTLS/SRTP, no timers; every
 * packet the session sends (RTCP: NACK, PLI, reports) goes to send(ud, ...)
 * in clear, which carries it over the node link. HD_ENOMEM. */
int hd_peer_set_link(hd_peer_t *p, int (*send)(void *ud, const uint8_t *pkt, size_t len, int is_rtcp),
                     void *ud, hd_time_t now);
/* A second outbound SRTP session of this connected transport, keyed as its
 * own (RFC 5764 §4.2 keys exported again), for RTP protect on another thread:
 * the transport then protects only RTCP itself, so the two sessions share no
 * state (RTP and SRTCP keep separate per-SSRC counters, RFC 3711 §3.2.3 /
 * §3.4). The caller owns *out. HD_ESTATE (not connected, or link mode),
 * hd_dtls_srtp_keys / hd_srtp_new errors. */
int hd_peer_clone_rtp_tx(hd_peer_t *p, hd_srtp_t **out);
/* From now on outgoing RTP goes to out(h, ...) in clear (the receiver of h
 * seals it with the hd_peer_clone_rtp_tx session) instead of being protected
 * into the tx queue; counted in tx stats at hand-off. out NULL = back to
 * sealing here (only valid if nothing was handed off). */
void hd_peer_set_rtp_out(hd_peer_t *p,
                         int (*out)(void *h, const uint8_t *pkt, size_t len, const struct sockaddr *to,
                                    socklen_t tolen),
                         void *h);
/* Sends DTLS close_notify and marks CLOSED. */
void hd_peer_close(hd_peer_t *p, const char *reason);
void hd_peer_free(hd_peer_t *p);

#endif
