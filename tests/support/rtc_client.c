/* Test-support WebRTC client endpoint (see rtc_client.h): offer building, ICE
 * controlling checks (RFC 8445 §7.2.4, consent RFC 7675 §5.1), DTLS-SRTP client
 * (RFC 5764), synthetic RTP sender and recording receiver with NACK (RFC 4585
 * §6.2.1) and RTX decoding (RFC 4588 §4). */
#include "rtc_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/rand.h"
#include "client/client_quality.h"
#include "proto/rtcp.h"
#include "proto/rtp.h"
#include "proto/sdp.h"
#include "proto/sdp_negotiate.h"
#include "proto/srtp.h"
#include "proto/stun.h"
#include "rtc/rtp_cache.h"
#include "rtc/rtp_stats.h"
#include "rtc/twcc_recv.h"
#include "sfu/txq.h"

#define TXQ_CAP 1024
#define CHECK_RETRY HD_MS(100)
#define AUDIO_INTERVAL HD_MS(20)
#define N_TXIDS 8
#define EXT_MID 1
#define EXT_AST 2
#define EXT_TWCC 3
#define EXT_PLAYOUT 4 /* playout-delay, player only (cfg.playout_ext) */

typedef struct {
  uint16_t seq;
  int64_t ext;
  hd_time_t next;
  int tries;
} miss_t;

struct hd_rtc_client {
  hd_rtc_client_config_t cfg;
  hd_dtls_cert_t *cert;
  int own_cert;
  char ufrag[9], pwd[25], cname[64];
  char r_ufrag[HD_SDP_ICE_MAX], r_pwd[HD_SDP_ICE_MAX], r_fp[HD_SDP_FP_MAX];
  struct sockaddr_storage remote;
  socklen_t remote_len;
  int answered, dtls_server;
  /* ICE */
  uint64_t tie;
  uint8_t txids[N_TXIDS][HD_STUN_TXID_LEN];
  size_t txid_pos;
  int ice_ok, consent_on;
  hd_time_t next_check;
  /* DTLS / SRTP */
  hd_dtls_t *dtls;
  hd_srtp_t *srtp;
  int closed;
  hd_txq_t q;
  hd_sctp_t *sctp; /* data channels */
  /* sending */
  uint32_t ssrc[2], rtx_ssrc, rtcp_ssrc;
  uint16_t seq[2], twcc_seq;
  uint32_t ts_base[2];
  uint32_t audio_n, frame;
  hd_time_t media_start, next_audio, next_video;
  int sending, force_key, media_started, resync;
  uint32_t frame_grid;
  /* answer */
  uint32_t ans_ssrc[2], ans_rtx_ssrc;
  /* publisher: sent video kept for answering the node's NACKs with RTX */
  hd_rtp_cache_t sent;
  int have_sent;
  uint16_t rtx_seq;
  uint8_t ans_pt[2], ans_rtx_pt;
  /* receiving */
  hd_rtc_stream_stats_t rx[2];
  /* player: RFC 3550 receive statistics of the video (original packets only,
   * RTX excluded as a browser counts them) for an RR every second, so the
   * node learns this leg's loss and RTT as it does from a browser */
  hd_rtp_recv_stats_t rr_stats;
  int rr_started;
  hd_time_t next_rr;
  /* player: transport-wide arrivals for feedback (cfg.twcc_fb_interval), allocated on the first */
  hd_twcc_recv_t *twfb;
  hd_time_t next_twfb;
  /* player: video frame log, index frame - first_frame */
  struct frame_log {
    hd_time_t sent, complete;
    hd_time_t floor; /* the playout-delay floor its packets carried (cfg.playout_ext) */
    uint64_t got;    /* bit i: packet i of the frame received */
    int8_t npk;      /* packets in the frame, from the marker packet; 0 = unknown */
    uint8_t key;
  } * frames;
  int have_first_frame;
  uint32_t first_frame;
  uint16_t seq_delta[2]; /* received seq - original seq carried in the payload */
  int have_delta[2];
  miss_t miss[HD_RTC_CLIENT_NACK_MAX];
  size_t n_miss;
  hd_rtc_client_stats_t st;
};

static uint8_t pt_of(const hd_rtc_client_t *c, int k) {
  return k == HD_RTC_AUDIO ? c->cfg.audio_pt : c->cfg.video_pt;
}

int hd_rtc_client_new(hd_rtc_client_t **out, const hd_rtc_client_config_t *cfg) {
  hd_rtc_client_t *c = calloc(1, sizeof *c);
  if (!c) return HD_ENOMEM;
  c->cfg = *cfg;
  if (!c->cfg.audio_pt) c->cfg.audio_pt = 111;
  if (!c->cfg.video_pt) c->cfg.video_pt = 96;
  if (!c->cfg.rtx_pt) c->cfg.rtx_pt = 97;
  if (!c->cfg.video_pkts_per_frame) c->cfg.video_pkts_per_frame = 3;
  if (!c->cfg.video_payload) c->cfg.video_payload = 800;
  if (c->cfg.video_payload < 16) c->cfg.video_payload = 16;
  if (c->cfg.video_payload > 1100) c->cfg.video_payload = 1100;
  if (!c->cfg.nack_interval) c->cfg.nack_interval = HD_MS(50);
  if (!c->cfg.nack_max_tries) c->cfg.nack_max_tries = 10;
  if (!c->cfg.consent_interval) c->cfg.consent_interval = HD_SEC(5);
  snprintf(c->cname, sizeof c->cname, "%s", cfg->cname ? cfg->cname : "client");
  int rc = hd_txq_init(&c->q, TXQ_CAP);
  if (rc) {
    free(c);
    return rc;
  }
  c->frames = calloc(HD_RTC_CLIENT_FRAMES, sizeof *c->frames); /* NULL: no frame log, nothing else lost */
  for (int k = 0; k < 2; k++) {
    c->rx[k].seen = calloc(HD_RTC_CLIENT_SEQ_WINDOW / 8, 1);
    if (!c->rx[k].seen) {
      hd_rtc_client_free(c);
      return HD_ENOMEM;
    }
  }
  if (cfg->cert) {
    c->cert = cfg->cert;
  } else {
    if ((rc = hd_dtls_cert_generate(&c->cert)) < 0) {
      hd_rtc_client_free(c);
      return rc;
    }
    c->own_cert = 1;
  }
  hd_random_token(c->ufrag, 8);
  hd_random_token(c->pwd, 24);
  hd_random_bytes(&c->tie, sizeof c->tie);
  c->rtcp_ssrc = hd_random_u32() | 1;
  c->consent_on = 1;
  c->sending = 1;
  c->next_check = HD_TIME_NEVER;
  hd_rtc_client_restart_source(c);
  c->force_key = 1;
  c->st.first_pli_at = c->st.last_pli_at = -1;
  c->st.last_consent_sent = -1;
  c->st.connected_at = -1;
  *out = c;
  return 0;
}

void hd_rtc_client_free(hd_rtc_client_t *c) {
  if (!c) return;
  free(c->twfb);
  hd_sctp_free(c->sctp);
  hd_srtp_free(c->srtp);
  hd_dtls_free(c->dtls);
  if (c->own_cert) hd_dtls_cert_free(c->cert);
  for (int k = 0; k < 2; k++)
    free(c->rx[k].seen);
  free(c->frames);
  hd_txq_free(&c->q);
  if (c->have_sent) hd_rtp_cache_free(&c->sent);
  free(c);
}

void hd_rtc_client_restart_source(hd_rtc_client_t *c) {
  for (int k = 0; k < 2; k++) {
    c->ssrc[k] = hd_random_u32() | 1;
    c->seq[k] = (uint16_t)hd_random_u32();
    c->ts_base[k] = hd_random_u32();
  }
  c->rtx_ssrc = hd_random_u32() | 1;
  c->audio_n = 0;
  c->frame = 0;
  c->force_key = 1;
}

/* ---- SDP offer ---- */

int hd_rtc_client_offer(hd_rtc_client_t *c, char *out, size_t cap) {
  const char *fp = hd_dtls_cert_fingerprint(c->cert);
  int pub = c->cfg.kind == HD_RTC_CLIENT_PUBLISH;
  const char *dir = pub ? "sendonly" : "recvonly";
  size_t off = 0;
  int n;
#define OUT(...)                                                                                             \
  do {                                                                                                       \
    n = snprintf(out + off, off < cap ? cap - off : 0, __VA_ARGS__);                                         \
    if (n < 0 || off + (size_t)n >= cap) return HD_ENOSPC;                                                   \
    off += (size_t)n;                                                                                        \
  } while (0)
  OUT("v=0\r\no=- %u 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE%s%s%s\r\n"
      "a=extmap-allow-mixed\r\na=msid-semantic: WMS stream\r\n",
      hd_random_u32() >> 1, c->cfg.no_audio ? "" : " 0", c->cfg.no_video ? "" : " 1",
      c->cfg.datachannel ? " 2" : "");
  for (int k = 0; k < 2; k++) {
    if ((k == HD_RTC_AUDIO && c->cfg.no_audio) || (k == HD_RTC_VIDEO && c->cfg.no_video)) continue;
    uint8_t pt = pt_of(c, k);
    int rtx = k == HD_RTC_VIDEO && !c->cfg.no_rtx;
    if (k == HD_RTC_AUDIO)
      OUT("m=audio 9 UDP/TLS/RTP/SAVPF %u\r\n", pt);
    else if (rtx)
      OUT("m=video 9 UDP/TLS/RTP/SAVPF %u %u\r\n", pt, c->cfg.rtx_pt);
    else
      OUT("m=video 9 UDP/TLS/RTP/SAVPF %u\r\n", pt);
    OUT("c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:%s\r\na=ice-pwd:%s\r\n"
        "a=ice-options:trickle\r\na=fingerprint:sha-256 %s\r\na=setup:actpass\r\na=mid:%d\r\n",
        c->ufrag, c->pwd, fp, k);
    OUT("a=extmap:%d %s\r\na=extmap:%d %s\r\na=extmap:%d %s\r\n", EXT_MID, HD_SDP_EXT_MID, EXT_AST,
        HD_SDP_EXT_ABS_SEND_TIME, EXT_TWCC, HD_SDP_EXT_TWCC);
    if (!pub && k == HD_RTC_VIDEO && c->cfg.playout_ext)
      OUT("a=extmap:%d %s\r\n", EXT_PLAYOUT, HD_SDP_EXT_PLAYOUT_DELAY);
    OUT("a=%s\r\n", dir);
    if (pub) OUT("a=msid:stream %s\r\n", k ? "video0" : "audio0");
    OUT("a=rtcp-mux\r\na=rtcp-rsize\r\n");
    if (k == HD_RTC_AUDIO) {
      OUT("a=rtpmap:%u opus/48000/2\r\na=rtcp-fb:%u transport-cc\r\na=fmtp:%u minptime=10;useinbandfec=1\r\n",
          pt, pt, pt);
    } else {
      OUT("a=rtpmap:%u VP8/90000\r\na=rtcp-fb:%u goog-remb\r\na=rtcp-fb:%u transport-cc\r\n"
          "a=rtcp-fb:%u ccm fir\r\na=rtcp-fb:%u nack\r\na=rtcp-fb:%u nack pli\r\n",
          pt, pt, pt, pt, pt, pt);
      if (rtx) OUT("a=rtpmap:%u rtx/90000\r\na=fmtp:%u apt=%u\r\n", c->cfg.rtx_pt, c->cfg.rtx_pt, pt);
    }
    if (pub) {
      if (rtx) OUT("a=ssrc-group:FID %u %u\r\n", c->ssrc[k], c->rtx_ssrc);
      OUT("a=ssrc:%u cname:%s\r\na=ssrc:%u msid:stream %s\r\n", c->ssrc[k], c->cname, c->ssrc[k],
          k ? "video0" : "audio0");
      if (rtx) OUT("a=ssrc:%u cname:%s\r\n", c->rtx_ssrc, c->cname);
    }
  }
  if (c->cfg.datachannel)
    OUT("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:%s\r\n"
        "a=ice-pwd:%s\r\na=fingerprint:sha-256 %s\r\na=setup:actpass\r\na=mid:2\r\n"
        "a=sctp-port:5000\r\na=max-message-size:262144\r\n",
        c->ufrag, c->pwd, fp);
#undef OUT
  return (int)off;
}

/* ---- answer ---- */

static int parse_addr(const char *ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    *len = sizeof *a4;
    return 0;
  }
  if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    *len = sizeof *a6;
    return 0;
  }
  return HD_EPROTO;
}

int hd_rtc_client_apply_answer(hd_rtc_client_t *c, const char *sdp, size_t len, hd_time_t now) {
  hd_sdp_t *a = malloc(sizeof *a);
  if (!a) return HD_ENOMEM;
  int rc = hd_sdp_parse(a, sdp, len, NULL, 0);
  if (rc < 0) goto done;
  rc = HD_EUNSUPPORTED;
  int have = 0;
  for (int i = 0; i < a->n_media; i++) {
    const hd_sdp_media_t *m = &a->media[i];
    if (m->port == 0) continue;
    if (m->kind == HD_SDP_APPLICATION && !c->cfg.datachannel) continue;
    if (m->kind != HD_SDP_AUDIO && m->kind != HD_SDP_VIDEO && m->kind != HD_SDP_APPLICATION) continue;
    int k = m->kind == HD_SDP_AUDIO ? HD_RTC_AUDIO : HD_RTC_VIDEO;
    for (int j = 0; m->kind != HD_SDP_APPLICATION && j < m->n_codecs; j++) {
      if (!strcasecmp(m->codecs[j].name, "rtx"))
        c->ans_rtx_pt = m->codecs[j].pt;
      else if (!c->ans_pt[k])
        c->ans_pt[k] = m->codecs[j].pt;
    }
    int grouped = 0;
    for (int g = 0; g < m->n_ssrc_groups; g++)
      if (!strcmp(m->ssrc_groups[g].semantics, "FID") && m->ssrc_groups[g].n_ssrcs >= 2) {
        c->ans_ssrc[k] = m->ssrc_groups[g].ssrcs[0];
        c->ans_rtx_ssrc = m->ssrc_groups[g].ssrcs[1];
        grouped = 1;
      }
    if (!grouped && m->n_ssrcs && m->kind != HD_SDP_APPLICATION) c->ans_ssrc[k] = m->ssrcs[0].ssrc;
    if (have) continue;
    const char *u = hd_sdp_eff_ice_ufrag(a, i), *p = hd_sdp_eff_ice_pwd(a, i);
    const hd_sdp_fingerprint_t *fp = hd_sdp_eff_fingerprint(a, i);
    if (!u[0] || !p[0] || !fp || m->n_candidates < 1) goto done;
    if (parse_addr(m->candidates[0].addr, m->candidates[0].port, &c->remote, &c->remote_len) < 0) goto done;
    snprintf(c->r_ufrag, sizeof c->r_ufrag, "%s", u);
    snprintf(c->r_pwd, sizeof c->r_pwd, "%s", p);
    snprintf(c->r_fp, sizeof c->r_fp, "%s", fp->value);
    c->dtls_server = hd_sdp_eff_setup(a, i) == HD_SDP_SETUP_ACTIVE;
    have = 1;
  }
  if (!have) goto done;
  rc = hd_dtls_new(&c->dtls, c->cert, c->dtls_server, c->r_fp, now);
  if (rc < 0) goto done;
  c->answered = 1;
  c->next_check = now;
  rc = 0;
done:
  free(a);
  return rc;
}

/* ---- output queue ---- */

static hd_datagram_t *reserve(hd_rtc_client_t *c) { return c->answered ? hd_txq_reserve(&c->q) : NULL; }
static void commit(hd_rtc_client_t *c, size_t len) {
  hd_txq_commit(&c->q, len, (const struct sockaddr *)&c->remote, c->remote_len);
  c->st.tx_packets++;
}

int hd_rtc_client_poll(hd_rtc_client_t *c, uint8_t *out, size_t cap, struct sockaddr_storage *to,
                       socklen_t *tolen) {
  hd_datagram_t *d = hd_txq_peek(&c->q);
  if (!d) return 0;
  if (d->len > cap) return HD_ENOSPC;
  memcpy(out, d->data, d->len);
  memcpy(to, &d->to, sizeof *to);
  *tolen = d->tolen;
  int n = (int)d->len;
  hd_txq_pop(&c->q);
  return n;
}

static void flush_dtls(hd_rtc_client_t *c) {
  if (!c->ice_ok || !c->dtls) return;
  for (;;) {
    hd_datagram_t *d = reserve(c);
    if (!d) return;
    int n = hd_dtls_poll(c->dtls, d->data, sizeof d->data);
    if (n <= 0) return;
    commit(c, (size_t)n);
  }
}

void hd_rtc_client_sctp_flush(hd_rtc_client_t *c) {
  if (!c->sctp) return;
  uint8_t pkt[HD_DTLS_MAX_APP_DATA];
  int n;
  while ((n = hd_sctp_poll(c->sctp, pkt, sizeof pkt)) > 0)
    hd_dtls_send(c->dtls, pkt, (size_t)n);
  flush_dtls(c);
}

hd_sctp_t *hd_rtc_client_sctp(hd_rtc_client_t *c) { return c->sctp; }

static void check_dtls(hd_rtc_client_t *c, hd_time_t now) {
  int st = hd_dtls_state(c->dtls);
  if (st == HD_DTLS_CONNECTED && !c->srtp) {
    hd_dtls_srtp_keys_t k;
    if (hd_dtls_srtp_keys(c->dtls, &k) == 0 &&
        hd_srtp_new(&c->srtp, k.profile, k.local_key, k.remote_key, k.key_len) == 0) {
      c->st.connected_at = now;
      if (c->cfg.datachannel && hd_sctp_new(&c->sctp, !c->dtls_server, 0, 0, now) == 0)
        hd_rtc_client_sctp_flush(c);
    } else {
      c->closed = 1;
    }
  } else if (st == HD_DTLS_FAILED || st == HD_DTLS_CLOSED) {
    c->closed = 1;
  }
}

/* ---- ICE ---- */

static void send_check(hd_rtc_client_t *c, hd_time_t now) {
  hd_datagram_t *d = reserve(c);
  if (!d) return;
  hd_stun_builder_t b;
  char user[2 * HD_SDP_ICE_MAX + 2];
  int ul = snprintf(user, sizeof user, "%s:%s", c->r_ufrag, c->ufrag);
  hd_stun_build_start(&b, d->data, sizeof d->data, HD_STUN_BINDING_REQUEST, NULL);
  hd_stun_add_username(&b, user, (size_t)ul);
  hd_stun_add_priority(&b, 1853824767u); /* prflx type preference 110 (RFC 8445 §5.1.2.1) */
  hd_stun_add_ice_controlling(&b, c->tie);
  hd_stun_add_use_candidate(&b);
  int n = hd_stun_build_finish(&b, (const uint8_t *)c->r_pwd, strlen(c->r_pwd), 1);
  if (n <= 0) return;
  memcpy(c->txids[c->txid_pos++ % N_TXIDS], d->data + 8, HD_STUN_TXID_LEN);
  commit(c, (size_t)n);
  c->st.stun_req_sent++;
  if (c->ice_ok) c->st.last_consent_sent = now;
}

static int feed_stun(hd_rtc_client_t *c, const uint8_t *buf, size_t len, hd_time_t now) {
  hd_stun_msg_t m;
  if (hd_stun_parse(&m, buf, len) < 0 || m.cls != HD_STUN_CLASS_SUCCESS) return HD_EPROTO;
  int known = 0;
  for (size_t i = 0; i < N_TXIDS; i++)
    known |= !memcmp(c->txids[i], m.txid, HD_STUN_TXID_LEN);
  if (!known) return HD_ENOTFOUND;
  if (hd_stun_check_integrity(&m, buf, len, (const uint8_t *)c->r_pwd, strlen(c->r_pwd)) < 0 ||
      hd_stun_check_fingerprint(&m) < 0)
    return HD_EAUTH;
  c->st.stun_resp_ok++;
  if (!c->ice_ok) {
    c->ice_ok = 1;
    c->next_check = c->consent_on ? now + c->cfg.consent_interval : HD_TIME_NEVER;
    flush_dtls(c);
  }
  return 0;
}

/* ---- receiving ---- */

static int64_t extend(int64_t ref, uint16_t seq) {
  int64_t cand = (ref & ~(int64_t)0xffff) | seq;
  if (cand - ref > 0x8000)
    cand -= 0x10000;
  else if (ref - cand > 0x8000)
    cand += 0x10000;
  return cand;
}

static int seen_get(const hd_rtc_stream_stats_t *s, int64_t ext) {
  int64_t i = ext - s->first_ext;
  if (i < 0 || i >= HD_RTC_CLIENT_SEQ_WINDOW) return 0;
  return s->seen[i / 8] >> (i % 8) & 1;
}
static void seen_set(hd_rtc_stream_stats_t *s, int64_t ext) {
  int64_t i = ext - s->first_ext;
  if (i < 0 || i >= HD_RTC_CLIENT_SEQ_WINDOW) return;
  s->seen[i / 8] |= (uint8_t)(1u << (i % 8));
}

static void miss_add(hd_rtc_client_t *c, uint16_t seq, int64_t ext, hd_time_t now) {
  if (c->n_miss >= HD_RTC_CLIENT_NACK_MAX) {
    c->st.nack_gave_up++;
    return;
  }
  /* first NACK right away: the gap is the loss signal (RFC 4585 §3.5.1 immediate mode) */
  c->miss[c->n_miss++] = (miss_t){.seq = seq, .ext = ext, .next = now, .tries = 0};
}
static void miss_del(hd_rtc_client_t *c, int64_t ext) {
  for (size_t i = 0; i < c->n_miss; i++)
    if (c->miss[i].ext == ext) {
      memmove(&c->miss[i], &c->miss[i + 1], (c->n_miss - i - 1) * sizeof c->miss[0]);
      c->n_miss--;
      return;
    }
}

/* Notes one received video packet in the frame log (see the header). */
#define VIDEO_HDR 2 /* VP8 descriptor + payload header byte before a video payload's fields */

static void log_frame(hd_rtc_client_t *c, const uint8_t *pl, hd_time_t now) {
  uint32_t f = (uint32_t)pl[1] << 24 | (uint32_t)pl[2] << 16 | (uint32_t)pl[3] << 8 | pl[4];
  if (!c->frames) return;
  if (!c->have_first_frame) {
    c->have_first_frame = 1;
    c->first_frame = f;
  }
  uint32_t i = f - c->first_frame;
  if (i >= HD_RTC_CLIENT_FRAMES) return;
  struct frame_log *e = &c->frames[i];
  int idx = pl[5];
  if (idx >= 64) return;
  hd_time_t sent = 0;
  for (int b = 9; b < 17; b++)
    sent = sent << 8 | pl[b];
  e->sent = sent;
  e->floor = c->st.playout_min_last;
  e->key = pl[0] & 1;
  e->got |= 1ull << idx;
  if (pl[0] & 2) e->npk = (int8_t)(idx + 1); /* bit 1: last packet of the frame */
  if (e->npk && !e->complete && e->got == (e->npk == 64 ? ~0ull : (1ull << e->npk) - 1)) e->complete = now;
}

static int cmp_time(const void *a, const void *b) {
  hd_time_t x = *(const hd_time_t *)a, y = *(const hd_time_t *)b;
  return x < y ? -1 : x > y;
}

int hd_rtc_client_video_quality(const hd_rtc_client_t *c, hd_time_t playout_delay,
                                hd_rtc_video_quality_t *q) {
  memset(q, 0, sizeof *q);
  if (!c->frames || !c->have_first_frame) return HD_ESTATE;
  size_t last = 0;
  for (size_t i = 0; i < HD_RTC_CLIENT_FRAMES; i++)
    if (c->frames[i].got) last = i;
  hd_time_t *delays = calloc(last + 1, sizeof *delays);
  if (!delays) return HD_ENOMEM;
  hd_time_t path = -1; /* the lowest complete - sent: the path's one-way delay, where a floor counts from */
  for (size_t i = 0; i < last; i++)
    if (c->frames[i].complete && (path < 0 || c->frames[i].complete - c->frames[i].sent < path))
      path = c->frames[i].complete - c->frames[i].sent;
  hd_freeze_t fz = {0};
  hd_time_t render = 0, first_render = 0;
  int chain = 0; /* the previous frame was decoded */
  /* the last frame is left out: a loss at the very end of a stream has no
   * later packet to reveal it, to the node or to us */
  for (size_t i = 0; i < last; i++) {
    const struct frame_log *e = &c->frames[i];
    q->frames++;
    if (!e->complete) {
      chain = 0;
      continue;
    }
    delays[q->complete++] = e->complete - e->sent;
    if (!e->key && !chain) continue; /* its reference is missing */
    chain = 1;
    hd_time_t wait = e->floor && path + e->floor > playout_delay ? path + e->floor : playout_delay;
    hd_time_t due = e->sent + wait, at = e->complete > due ? e->complete : due;
    if (e->complete > due) q->late++;
    if (at < render) at = render;
    render = at;
    if (!first_render) first_render = at;
    q->decoded++;
    hd_freeze_frame(&fz, at);
  }
  qsort(delays, q->complete, sizeof *delays, cmp_time);
  if (q->complete) {
    q->delay_p50 = delays[q->complete * 50 / 100];
    q->delay_p95 = delays[q->complete * 95 / 100];
    q->delay_p99 = delays[q->complete * 99 / 100];
    q->delay_max = delays[q->complete - 1];
  }
  free(delays);
  q->freezes = fz.freezes;
  q->freeze_ms = fz.freeze_us / 1000.0;
  q->watched_ms = (double)(render - first_render) / 1000.0;
  q->stall_rate = q->watched_ms > 0 ? q->freeze_ms / q->watched_ms : 0;
  return 0;
}

/* Records a received (or RTX-restored) seq of stream k. */
static void record(hd_rtc_client_t *c, int k, uint16_t seq, int is_rtx, const uint8_t *pl, size_t plen,
                   hd_time_t now) {
  if (k == HD_RTC_VIDEO && plen > VIDEO_HDR) { /* our fields follow the VP8 bytes */
    pl += VIDEO_HDR;
    plen -= VIDEO_HDR;
  }
  hd_rtc_stream_stats_t *s = &c->rx[k];
  int64_t ext;
  if (!s->started) {
    s->started = 1;
    ext = s->first_ext = s->max_ext = 0x100000 + seq;
    s->max_jump = 1;
  } else {
    ext = extend(s->max_ext, seq);
    if (ext > s->max_ext) {
      uint64_t jump = (uint64_t)(ext - s->max_ext);
      if (jump > s->max_jump) s->max_jump = jump;
      if (c->cfg.auto_nack && k == HD_RTC_VIDEO && jump > 1 && jump < 1000)
        for (int64_t e = s->max_ext + 1; e < ext; e++)
          miss_add(c, (uint16_t)e, e, now);
      s->max_ext = ext;
    } else if (!is_rtx && ext < s->max_ext) {
      s->out_of_order++;
    }
  }
  if (seen_get(s, ext)) {
    s->duplicates++;
  } else {
    seen_set(s, ext);
    s->unique++;
    if (is_rtx) s->rtx_recovered++;
  }
  miss_del(c, ext);
  if (plen >= 9) {
    uint16_t orig = (uint16_t)(pl[6] << 8 | pl[7]);
    uint16_t delta = (uint16_t)(seq - orig);
    if (!is_rtx) {
      c->seq_delta[k] = delta;
      c->have_delta[k] = 1;
    } else if (c->have_delta[k] && delta != c->seq_delta[k]) {
      s->rtx_bad++;
    }
    if (pl[8] < 32) s->tags_seen |= 1u << pl[8];
  }
  if (k == HD_RTC_VIDEO && plen >= 9 && (pl[0] & 1) && pl[5] == 0 && !is_rtx) {
    s->keyframes++;
    if (s->keyframes == 1) s->first_keyframe_at = now;
  }
  if (k == HD_RTC_VIDEO && plen >= 5 && !is_rtx)
    s->last_frame = (uint32_t)pl[1] << 24 | (uint32_t)pl[2] << 16 | (uint32_t)pl[3] << 8 | pl[4];
  if (k == HD_RTC_VIDEO && plen >= 17) log_frame(c, pl, now);
}

static void on_rtp(hd_rtc_client_t *c, const uint8_t *buf, size_t len, hd_time_t now) {
  hd_rtp_hdr_t h;
  if (hd_rtp_parse(buf, len, &h) < 0) {
    c->st.drop_other++;
    return;
  }
  const uint8_t *twd;
  size_t twl;
  uint16_t tws;
  if (hd_rtp_ext_find(&h, EXT_TWCC, &twd, &twl) == 0 && hd_rtp_twcc_seq_parse(twd, twl, &tws) == 0) {
    if (c->st.tw_rx && tws != (uint16_t)(c->st.tw_last + 1)) c->st.tw_not_next++;
    c->st.tw_last = tws;
    c->st.tw_rx++;
    if (c->cfg.twcc_fb_interval && !c->twfb && (c->twfb = malloc(sizeof *c->twfb))) {
      hd_twcc_recv_init(c->twfb);
      c->next_twfb = now + c->cfg.twcc_fb_interval;
    }
    if (c->twfb) hd_twcc_recv_add(c->twfb, tws, now);
  }
  const uint8_t *pd;
  size_t pdl;
  unsigned pmin, pmax;
  if (c->cfg.playout_ext && h.pt == pt_of(c, HD_RTC_VIDEO) &&
      hd_rtp_ext_find(&h, EXT_PLAYOUT, &pd, &pdl) == 0 &&
      hd_rtp_playout_delay_parse(pd, pdl, &pmin, &pmax) == 0) {
    c->st.playout_min_last = HD_MS(pmin);
    if (c->st.playout_min_last > c->st.playout_min_max) c->st.playout_min_max = c->st.playout_min_last;
  }
  for (int k = 0; k < 2; k++) {
    if (h.pt != pt_of(c, k)) continue;
    hd_rtc_stream_stats_t *s = &c->rx[k];
    if (!s->started)
      s->ssrc = h.ssrc;
    else if (h.ssrc != s->ssrc) {
      s->ssrc_changes++;
      s->ssrc = h.ssrc;
    }
    s->pt = h.pt;
    s->packets++;
    if (k == HD_RTC_VIDEO && c->cfg.kind == HD_RTC_CLIENT_PLAY) {
      if (!c->rr_started || c->rr_stats.ssrc != h.ssrc) {
        hd_rtp_recv_stats_init(&c->rr_stats, h.ssrc);
        c->rr_started = 1;
        c->next_rr = now + HD_SEC(1);
      }
      hd_rtp_recv_stats_update(&c->rr_stats, h.seq, h.ts, now, 90000);
    }
    record(c, k, h.seq, 0, h.payload, h.payload_len, now);
    return;
  }
  if (h.pt == c->cfg.rtx_pt && !c->cfg.no_rtx) {
    hd_rtc_stream_stats_t *s = &c->rx[HD_RTC_VIDEO];
    uint8_t tmp[HD_DATAGRAM_MAX];
    uint16_t osn;
    s->rtx_packets++;
    s->rtx_ssrc = h.ssrc;
    int n = hd_rtp_rtx_decode(buf, len, s->ssrc, c->cfg.video_pt, tmp, sizeof tmp, &osn);
    hd_rtp_hdr_t oh;
    if (n < 0 || hd_rtp_parse(tmp, (size_t)n, &oh) < 0) {
      s->rtx_bad++;
      return;
    }
    record(c, HD_RTC_VIDEO, osn, 1, oh.payload, oh.payload_len, now);
    return;
  }
  int k = h.ssrc == c->ans_ssrc[HD_RTC_AUDIO] ? HD_RTC_AUDIO : HD_RTC_VIDEO;
  c->rx[k].wrong_pt++;
}

/* Publisher: answers a NACKed video seq with RTX (RFC 4588) from what we sent. */
static void resend_rtx(hd_rtc_client_t *c, uint16_t seq, hd_time_t now) {
  const uint8_t *orig;
  size_t olen;
  if (!c->have_sent || c->cfg.no_rtx || hd_rtp_cache_get(&c->sent, seq, now, &orig, &olen) < 0) return;
  hd_datagram_t *d = reserve(c);
  if (!d) return;
  int n = hd_rtp_rtx_build(orig, olen, c->rtx_ssrc, c->cfg.rtx_pt, c->rtx_seq, d->data, sizeof d->data);
  if (n < 0) return;
  n = hd_srtp_protect(c->srtp, d->data, (size_t)n, sizeof d->data);
  if (n < 0) return;
  commit(c, (size_t)n);
  c->rtx_seq++;
  c->st.rtx_sent++;
}

static void on_rtcp(hd_rtc_client_t *c, const uint8_t *buf, size_t len, hd_time_t now) {
  hd_rtcp_iter_t it;
  hd_rtcp_pkt_t p;
  c->st.rtcp_rx++;
  hd_rtcp_iter_init(&it, buf, len);
  while (hd_rtcp_next(&it, &p) == 1) {
    if (p.pt == HD_RTCP_SR) {
      c->st.sr_rx++;
      hd_rtcp_sr_t sr;
      if (hd_rtcp_parse_sr(&p, &sr) == 0 && c->rr_started && sr.ssrc == c->rr_stats.ssrc)
        hd_rtp_recv_stats_on_sr(&c->rr_stats, sr.ntp, now);
    } else if (p.pt == HD_RTCP_RR)
      c->st.rr_rx++;
    else if (p.pt == HD_RTCP_RTPFB || p.pt == HD_RTCP_PSFB) {
      hd_rtcp_fb_t fb;
      if (hd_rtcp_parse_fb(&p, &fb) < 0) continue;
      if (fb.pt == HD_RTCP_RTPFB && fb.fmt == HD_RTCP_FMT_NACK) {
        uint16_t seqs[256];
        int n = hd_rtcp_nack_expand(&fb, seqs, 256);
        c->st.nack_rx++;
        if (n > 0) c->st.nack_seqs_rx += (uint64_t)n;
        if (fb.media_ssrc == c->ssrc[HD_RTC_VIDEO])
          for (int i = 0; i < n; i++)
            resend_rtx(c, seqs[i], now);
      } else if (fb.pt == HD_RTCP_RTPFB && fb.fmt == HD_RTCP_FMT_TWCC) {
        c->st.twcc_rx++;
      } else if (fb.pt == HD_RTCP_PSFB && fb.fmt == HD_RTCP_FMT_PLI) {
        c->st.pli_rx++;
        if (c->st.first_pli_at < 0) c->st.first_pli_at = now;
        c->st.last_pli_at = now;
        c->force_key = 1;
      } else if (fb.pt == HD_RTCP_PSFB && fb.fmt == HD_RTCP_FMT_FIR) {
        c->st.fir_rx++;
        c->force_key = 1;
      } else if (fb.pt == HD_RTCP_PSFB && fb.fmt == HD_RTCP_FMT_AFB) {
        c->st.remb_rx++;
        hd_rtcp_remb_t r;
        if (hd_rtcp_remb_parse(&fb, &r) == 0) {
          c->st.remb_last_bps = r.bitrate_bps;
          c->st.remb_last_n = 0;
          for (size_t i = 0; i < r.ssrc_count && i < 8; i++)
            c->st.remb_last_ssrcs[c->st.remb_last_n++] = r.ssrcs[i];
        }
      }
    }
  }
}

int hd_rtc_client_feed(hd_rtc_client_t *c, const uint8_t *buf, size_t len, const struct sockaddr *from,
                       socklen_t fromlen, hd_time_t now) {
  (void)from;
  (void)fromlen;
  if (len == 0 || !c->answered) return HD_EPROTO;
  c->st.rx_packets++;
  uint8_t b0 = buf[0];
  if (b0 <= 3) return feed_stun(c, buf, len, now);
  if (b0 >= 20 && b0 <= 63) {
    int rc = hd_dtls_feed(c->dtls, buf, len, now);
    check_dtls(c, now);
    uint8_t app[HD_DTLS_MAX_DATAGRAM];
    int n;
    while ((n = hd_dtls_recv(c->dtls, app, sizeof app)) > 0)
      if (c->sctp) hd_sctp_feed(c->sctp, app, (size_t)n, now);
    hd_rtc_client_sctp_flush(c);
    flush_dtls(c);
    if (c->srtp && !c->media_started) {
      c->media_started = 1;
      c->media_start = c->next_audio = c->next_video = now;
    }
    return rc < 0 ? rc : 0;
  }
  if (b0 >= 128 && b0 <= 191 && c->srtp) {
    uint8_t tmp[HD_DATAGRAM_MAX];
    if (len > sizeof tmp) return HD_EPROTO;
    memcpy(tmp, buf, len);
    int is_rtcp = len >= 2 && buf[1] >= 192 && buf[1] <= 223;
    int n = is_rtcp ? hd_srtp_unprotect_rtcp(c->srtp, tmp, len) : hd_srtp_unprotect(c->srtp, tmp, len);
    if (n < 0) {
      c->st.drop_srtp++;
      return n;
    }
    if (is_rtcp)
      on_rtcp(c, tmp, (size_t)n, now);
    else
      on_rtp(c, tmp, (size_t)n, now);
    return 0;
  }
  c->st.drop_other++;
  return HD_EPROTO;
}

/* ---- sending ---- */

static int send_rtcp(hd_rtc_client_t *c, const uint8_t *pkt, size_t len) {
  if (!c->srtp) return HD_ESTATE;
  hd_datagram_t *d = reserve(c);
  if (!d) return HD_ENOSPC;
  memcpy(d->data, pkt, len);
  int n = hd_srtp_protect_rtcp(c->srtp, d->data, len, sizeof d->data);
  if (n < 0) return n;
  commit(c, (size_t)n);
  c->st.rtcp_sent++;
  return 0;
}

static uint32_t media_ssrc_of(const hd_rtc_client_t *c, int k) {
  return c->ans_ssrc[k] ? c->ans_ssrc[k] : c->rx[k].ssrc;
}

int hd_rtc_client_send_nack(hd_rtc_client_t *c, int kind, const uint16_t *seqs, size_t n) {
  uint8_t buf[1200];
  int len = hd_rtcp_build_nack(c->rtcp_ssrc, media_ssrc_of(c, kind), seqs, n, buf, sizeof buf);
  if (len < 0) return len;
  int rc = send_rtcp(c, buf, (size_t)len);
  if (rc == 0) {
    c->st.nack_sent++;
    c->st.nack_seqs_sent += n;
  }
  return rc;
}

int hd_rtc_client_send_pli(hd_rtc_client_t *c) {
  uint8_t buf[64];
  int len = hd_rtcp_build_pli(c->rtcp_ssrc, media_ssrc_of(c, HD_RTC_VIDEO), buf, sizeof buf);
  if (len < 0) return len;
  int rc = send_rtcp(c, buf, (size_t)len);
  if (rc == 0) c->st.pli_sent++;
  return rc;
}

int hd_rtc_client_send_remb(hd_rtc_client_t *c, uint64_t bitrate_bps) {
  uint8_t buf[64];
  uint32_t ssrc = media_ssrc_of(c, HD_RTC_VIDEO);
  int len = hd_rtcp_build_remb(c->rtcp_ssrc, bitrate_bps, &ssrc, 1, buf, sizeof buf);
  if (len < 0) return len;
  return send_rtcp(c, buf, (size_t)len);
}

static void send_rtp(hd_rtc_client_t *c, int k, int marker, uint32_t ts, const uint8_t *pl, size_t plen,
                     hd_time_t now) {
  hd_datagram_t *d = reserve(c);
  if (!d) return;
  uint8_t mid[1] = {(uint8_t)('0' + k)}, ast[3], tw[2];
  hd_rtp_abs_send_time_write(ast, hd_rtp_abs_send_time_from_us(now));
  hd_rtp_twcc_seq_write(tw, c->twcc_seq++);
  hd_rtp_ext_t exts[3] = {{EXT_MID, 1, mid}, {EXT_AST, 3, ast}, {EXT_TWCC, 2, tw}};
  hd_rtp_build_t b = {.pt = pt_of(c, k),
                      .marker = (uint8_t)marker,
                      .seq = c->seq[k],
                      .ts = ts,
                      .ssrc = c->ssrc[k],
                      .exts = exts,
                      .ext_count = 3};
  int n = hd_rtp_build(&b, pl, plen, d->data, sizeof d->data);
  if (n < 0) return;
  if (k == HD_RTC_VIDEO) {
    if (!c->have_sent && hd_rtp_cache_init(&c->sent, 1024) == 0) c->have_sent = 1;
    if (c->have_sent) hd_rtp_cache_put(&c->sent, d->data, (size_t)n, now);
  }
  n = hd_srtp_protect(c->srtp, d->data, (size_t)n, sizeof d->data);
  if (n < 0) return;
  commit(c, (size_t)n);
  c->seq[k]++;
  c->st.rtp_sent[k]++;
}

static void fill_payload(hd_rtc_client_t *c, uint8_t *pl, size_t plen, int key, uint32_t frame, int idx,
                         int k, int last, hd_time_t now) {
  memset(pl, 0xA5, plen);
  if (k == HD_RTC_VIDEO && plen > VIDEO_HDR) {
    /* a VP8 payload descriptor (RFC 7741 §4.2: S=1, PartID 0 on a frame's
     * first packet) and payload header byte (§4.3: P=0 on a keyframe), so
     * the node sees keyframes as it does a browser's */
    pl[0] = idx == 0 ? 0x10 : 0x00;
    pl[1] = key ? 0x00 : 0x01;
    pl += VIDEO_HDR;
    plen -= VIDEO_HDR;
  }
  pl[0] = (uint8_t)((key ? 1 : 0) | (last ? 2 : 0));
  if (plen >= 17)
    for (int b = 0; b < 8; b++)
      pl[9 + b] = (uint8_t)((uint64_t)now >> (56 - 8 * b));
  pl[1] = (uint8_t)(frame >> 24);
  pl[2] = (uint8_t)(frame >> 16);
  pl[3] = (uint8_t)(frame >> 8);
  pl[4] = (uint8_t)frame;
  pl[5] = (uint8_t)idx;
  pl[6] = (uint8_t)(c->seq[k] >> 8); /* original seq: lets a receiver check RTX OSNs */
  pl[7] = (uint8_t)c->seq[k];
  pl[8] = c->cfg.tag;
}

static void send_media(hd_rtc_client_t *c, hd_time_t now) {
  uint8_t pl[1200];
  while (!c->cfg.no_audio && c->next_audio <= now) {
    fill_payload(c, pl, 40, 0, c->audio_n, 0, HD_RTC_AUDIO, 1, now);
    send_rtp(c, HD_RTC_AUDIO, 0, c->ts_base[HD_RTC_AUDIO] + c->audio_n * 960, pl, 40, now);
    c->audio_n++;
    c->next_audio += AUDIO_INTERVAL;
  }
  while (!c->cfg.no_video && c->next_video <= now) {
    int key = c->force_key;
    c->force_key = 0;
    int npk = c->cfg.video_pkts_per_frame * (key ? (c->cfg.key_factor > 0 ? c->cfg.key_factor : 2) : 1);
    uint32_t ts = c->ts_base[HD_RTC_VIDEO] + c->frame * 3000;
    for (int i = 0; i < npk; i++) {
      fill_payload(c, pl, c->cfg.video_payload, key, c->frame, i, HD_RTC_VIDEO, i == npk - 1, c->next_video);
      send_rtp(c, HD_RTC_VIDEO, i == npk - 1, ts, pl, c->cfg.video_payload, now);
    }
    c->frame++;
    /* 30 fps on an exact grid from the start (no drift from rounding 33.3 ms) */
    c->next_video = c->media_start + (hd_time_t)c->frame_grid++ * HD_SEC(1) / 30 + HD_SEC(1) / 30;
  }
}

void hd_rtc_client_set_sending(hd_rtc_client_t *c, int on) {
  if (on && !c->sending) c->resync = 1;
  c->sending = on;
}

void hd_rtc_client_set_consent(hd_rtc_client_t *c, int on) {
  c->consent_on = on;
  if (!c->ice_ok) return; /* connectivity checks go on until the first success */
  c->next_check = on ? 0 : HD_TIME_NEVER;
}

/* ---- timers ---- */

static hd_time_t nack_due(const hd_rtc_client_t *c) {
  hd_time_t t = HD_TIME_NEVER;
  if (!c->srtp) return t;
  for (size_t i = 0; i < c->n_miss; i++)
    t = hd_time_min(t, c->miss[i].next);
  return t;
}

hd_time_t hd_rtc_client_next_timeout(const hd_rtc_client_t *c) {
  if (!c->answered || c->closed) return HD_TIME_NEVER;
  hd_time_t t = c->next_check;
  if (c->ice_ok && !c->srtp) t = hd_time_min(t, hd_dtls_next_timeout(c->dtls));
  if (c->srtp && c->cfg.kind == HD_RTC_CLIENT_PUBLISH && c->sending) {
    if (!c->cfg.no_audio) t = hd_time_min(t, c->next_audio);
    if (!c->cfg.no_video) t = hd_time_min(t, c->next_video);
  }
  if (c->sctp) t = hd_time_min(t, hd_sctp_next_timeout(c->sctp));
  if (c->rr_started && c->srtp) t = hd_time_min(t, c->next_rr);
  if (c->twfb && c->srtp) t = hd_time_min(t, c->next_twfb);
  return hd_time_min(t, nack_due(c));
}

static void send_nacks(hd_rtc_client_t *c, hd_time_t now) {
  uint16_t seqs[HD_RTC_CLIENT_NACK_MAX];
  size_t n = 0;
  for (size_t i = 0; i < c->n_miss;) {
    miss_t *m = &c->miss[i];
    if (m->next > now) {
      i++;
      continue;
    }
    if (m->tries >= c->cfg.nack_max_tries) {
      c->st.nack_gave_up++;
      memmove(m, m + 1, (c->n_miss - i - 1) * sizeof *m);
      c->n_miss--;
      continue;
    }
    m->tries++;
    m->next = now + c->cfg.nack_interval;
    seqs[n++] = m->seq;
    i++;
  }
  if (n) hd_rtc_client_send_nack(c, HD_RTC_VIDEO, seqs, n); /* list is in arrival (= seq) order */
}

void hd_rtc_client_handle_timeout(hd_rtc_client_t *c, hd_time_t now) {
  if (!c->answered || c->closed) return;
  if (now >= c->next_check) {
    send_check(c, now);
    c->next_check = !c->ice_ok      ? now + CHECK_RETRY
                    : c->consent_on ? now + c->cfg.consent_interval
                                    : HD_TIME_NEVER;
  }
  if (c->ice_ok && !c->srtp && hd_dtls_next_timeout(c->dtls) <= now) {
    hd_dtls_handle_timeout(c->dtls, now);
    check_dtls(c, now);
    flush_dtls(c);
  }
  if (c->srtp && c->cfg.kind == HD_RTC_CLIENT_PUBLISH && c->sending) {
    if (c->resync) { /* after a pause: restart the clock grid instead of catching up */
      c->resync = 0;
      c->media_start = c->next_audio = c->next_video = now;
      c->frame_grid = 0;
    }
    send_media(c, now);
  }
  if (nack_due(c) <= now) send_nacks(c, now);
  if (c->rr_started && c->srtp && now >= c->next_rr) {
    hd_rtcp_rr_t rr;
    memset(&rr, 0, sizeof rr);
    rr.ssrc = c->rtcp_ssrc;
    if (hd_rtp_recv_stats_report(&c->rr_stats, now, &rr.rb[0]) == 0) rr.rb_count = 1;
    uint8_t buf[128];
    int n = hd_rtcp_build_rr(&rr, buf, sizeof buf);
    if (n > 0) send_rtcp(c, buf, (size_t)n);
    c->next_rr = now + HD_SEC(1);
  }
  if (c->twfb && c->srtp && now >= c->next_twfb) {
    uint8_t buf[1200];
    int n;
    while ((n = hd_twcc_recv_build(c->twfb, c->rtcp_ssrc, media_ssrc_of(c, HD_RTC_VIDEO), buf, sizeof buf)) >
           0)
      send_rtcp(c, buf, (size_t)n);
    c->next_twfb = now + c->cfg.twcc_fb_interval;
  }
  if (c->sctp && hd_sctp_next_timeout(c->sctp) <= now) {
    hd_sctp_handle_timeout(c->sctp, now);
    hd_rtc_client_sctp_flush(c);
  }
}

/* ---- accessors ---- */

int hd_rtc_client_connected(const hd_rtc_client_t *c) { return c->srtp != NULL && !c->closed; }
int hd_rtc_client_closed(const hd_rtc_client_t *c) { return c->closed; }
const hd_rtc_client_stats_t *hd_rtc_client_stats(const hd_rtc_client_t *c) { return &c->st; }
const hd_rtc_stream_stats_t *hd_rtc_client_rx(const hd_rtc_client_t *c, int kind) { return &c->rx[kind & 1]; }
int hd_rtc_client_rx_has(const hd_rtc_client_t *c, int kind, int64_t ext) {
  return seen_get(&c->rx[kind & 1], ext);
}
uint32_t hd_rtc_client_answer_ssrc(const hd_rtc_client_t *c, int kind) { return c->ans_ssrc[kind & 1]; }
uint32_t hd_rtc_client_answer_rtx_ssrc(const hd_rtc_client_t *c) { return c->ans_rtx_ssrc; }
uint8_t hd_rtc_client_pt(const hd_rtc_client_t *c, int kind) { return pt_of(c, kind & 1); }
uint32_t hd_rtc_client_send_ssrc(const hd_rtc_client_t *c, int kind) { return c->ssrc[kind & 1]; }
const struct sockaddr *hd_rtc_client_remote(const hd_rtc_client_t *c, socklen_t *len) {
  if (len) *len = c->remote_len;
  return c->answered ? (const struct sockaddr *)&c->remote : NULL;
}
