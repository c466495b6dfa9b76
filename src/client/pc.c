/* Client PeerConnection transport (see pc.h): ICE full agent (RFC 8445 §7.2
 * checks, §7.3 answering checks, §7.3.1.1 role conflicts, aggressive
 * nomination), consent freshness (RFC 7675 §5.1), DTLS-SRTP (RFC 5764) with the
 * role from a=setup (RFC 8842 §5), the outgoing datagram queue and the timers.
 * SDP lives in pc_sdp.c, RTP/RTCP in pc_media.c. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/rand.h"
#include "client/pc_fec.h"
#include "client/pc_internal.h"

#define CHECK_PACE HD_MS(50)       /* RFC 8445 §14.2 Ta for one agent */
#define CONSENT_TIMEOUT HD_SEC(30) /* RFC 7675 §5.1 */
#define CONSENT_INTERVAL HD_SEC(5)
/* An unanswered consent check is asked again after this, not at the next
 * interval: at 50 % loss each way 3 in 4 checks go unanswered, and six in a
 * row (one 30 s window at a 5 s pace) expired consent in ~1 of 6 windows
 * (issue 13). A STUN request may be retransmitted (RFC 8489 §6.2.1); 1 s stays
 * above its 500 ms initial RTO. */
#define CONSENT_RETRY HD_SEC(1)
#define CONNECT_TIMEOUT HD_SEC(20)
#define PC_TXQ_CAP 256
/* Candidate priority of our (host) checks, RFC 8445 §5.1.2.1 with type
 * preference 110 (prflx, as the peer would learn us). */
#define CHECK_PRIORITY ((110u << 24) | (65535u << 8) | 255u)

/* ---- events and state ---- */

void pc_emit(hd_pc_t *pc, hd_pc_event_t *ev) {
  if (pc->cfg.on_event) pc->cfg.on_event(pc->cfg.ud, ev);
}

const char *hd_pc_state_name(int state) {
  static const char *names[] = {"new", "checking", "dtls", "connected", "failed", "closed"};
  return state >= 0 && state <= HD_PC_CLOSED ? names[state] : "?";
}

void pc_set_state(hd_pc_t *pc, int state, const char *reason) {
  if (pc->state == state || pc->state == HD_PC_FAILED || pc->state == HD_PC_CLOSED) return;
  pc->state = state;
  if (reason) snprintf(pc->err, sizeof pc->err, "%s", reason);
  hd_pc_event_t ev = {.type = HD_PC_EV_STATE, .state = state, .reason = reason ? pc->err : ""};
  pc_emit(pc, &ev);
}

/* ---- lifecycle ---- */

void pc_trx_init(hd_pc_t *pc, pc_trx_t *t, int kind, const char *mid) {
  pc_trx_free(t);
  memset(t, 0, sizeof *t);
  t->kind = kind;
  snprintf(t->mid, sizeof t->mid, "%s", mid);
  snprintf(t->media, sizeof t->media, "%s", kind == HD_PC_AUDIO ? "audio" : "video");
  t->ssrc = hd_random_u32() | 1;
  t->rtx_ssrc = hd_random_u32() | 1;
  t->fec_ssrc = hd_random_u32() | 1;
  t->seq = (uint16_t)hd_random_u32();
  t->rtx_seq = (uint16_t)hd_random_u32();
  hd_nack_gen_init(&t->ng);
  /* the subscriber pc sends no media, so no report block ever gives it an
   * RTT: the NACK generator measures request -> repair itself, which is also
   * the wait that matters for retrying (it includes the node's own repair) */
  t->ng.learn_rtt = 1;
  t->st.rtt = -1;
  t->st.fraction_lost = -1;
  (void)pc;
}

void pc_trx_free(pc_trx_t *t) {
  pc_fec_free(t);
  if (t->have_cache) hd_rtp_cache_free(&t->cache);
  t->have_cache = 0;
  for (int l = 0; l < HD_PC_MAX_LAYERS; l++) {
    if (t->lay[l].have_cache) hd_rtp_cache_free(&t->lay[l].cache);
    t->lay[l].have_cache = 0;
  }
}

void pc_layer_swap(pc_trx_t *t, int L) {
  if (L <= 0 || L >= HD_PC_MAX_LAYERS) return;
  pc_layer_t *y = &t->lay[L], tmp = *y;
  y->ssrc = t->ssrc, y->rtx_ssrc = t->rtx_ssrc, y->seq = t->seq, y->rtx_seq = t->rtx_seq;
  y->sst = t->sst, y->cache = t->cache, y->have_cache = t->have_cache;
  t->ssrc = tmp.ssrc, t->rtx_ssrc = tmp.rtx_ssrc, t->seq = tmp.seq, t->rtx_seq = tmp.rtx_seq;
  t->sst = tmp.sst, t->cache = tmp.cache, t->have_cache = tmp.have_cache;
}

int hd_pc_new(hd_pc_t **out, const hd_pc_config_t *cfg) {
  if (!out || !cfg) return HD_EINVAL;
  if (cfg->send_cache && (cfg->send_cache & (cfg->send_cache - 1) || cfg->send_cache > HD_RTP_CACHE_MAX))
    return HD_EINVAL;
  hd_pc_t *pc = calloc(1, sizeof *pc);
  if (!pc) return HD_ENOMEM;
  pc->cfg = *cfg;
  if (!pc->cfg.consent_interval) pc->cfg.consent_interval = CONSENT_INTERVAL;
  if (!pc->cfg.connect_timeout) pc->cfg.connect_timeout = CONNECT_TIMEOUT;
  if (!pc->cfg.rtcp_interval) pc->cfg.rtcp_interval = HD_SEC(1);
  if (!pc->cfg.send_cache) pc->cfg.send_cache = 512;
  /* issue 13 A/B switches for measurements (bench/weak_network) */
  const char *e = getenv("HUDONG_FEC");
  if (e && !strcmp(e, "0")) pc->cfg.no_fec = 1;
  e = getenv("HUDONG_AUDIO_NACK");
  if (e && !strcmp(e, "0")) pc->cfg.no_audio_nack = 1;
  e = getenv("HUDONG_PROBE");
  if (e) pc->cfg.probe = strcmp(e, "0") != 0;
  pc->cfg.local_ip = NULL; /* copied below */
  pc->cfg.cname = NULL;
  pc->q_cap = PC_TXQ_CAP;
  pc->q = calloc(pc->q_cap, sizeof *pc->q);
  pc->pq = calloc(pc->q_cap, sizeof *pc->pq);
  pc->tx_twcc = -1;
  int rc = HD_ENOMEM;
  if (!pc->q || !pc->pq) goto fail;
  if (cfg->cert) {
    pc->cert = cfg->cert;
  } else {
    if ((rc = hd_dtls_cert_generate(&pc->cert)) < 0) goto fail;
    pc->own_cert = 1;
  }
  hd_random_token(pc->ufrag, 8);
  hd_random_token(pc->pwd, 24);
  if (cfg->cname)
    snprintf(pc->cname, sizeof pc->cname, "%s", cfg->cname);
  else
    hd_random_token(pc->cname, 16);
  snprintf(pc->sess_id, sizeof pc->sess_id, "%u%u", hd_random_u32() >> 1, hd_random_u32() % 1000);
  hd_random_bytes(&pc->tie, sizeof pc->tie);
  pc->rtcp_ssrc = hd_random_u32() | 1;
  pc->selected = -1;
  pc->next_check = HD_TIME_NEVER;
  pc->next_rtcp = HD_TIME_NEVER;
  pc->rtt = -1;
  pc->ice_rtt = -1;
  for (int i = 0; i < PC_TX_CAP; i++)
    pc->txs[i].cand = -1;
  pc->controlling = 1;
  if (cfg->local_ip) {
    rc = HD_EINVAL;
    if (strlen(cfg->local_ip) >= sizeof pc->local_ip) goto fail;
    snprintf(pc->local_ip, sizeof pc->local_ip, "%s", cfg->local_ip);
  }
  *out = pc;
  return 0;
fail:
  if (pc->own_cert) hd_dtls_cert_free(pc->cert);
  free(pc->q);
  free(pc);
  return rc;
}

void hd_pc_free(hd_pc_t *pc) {
  if (!pc) return;
  for (int i = 0; i < HD_PC_MAX_TRANSCEIVERS; i++)
    pc_trx_free(&pc->tr[i]);
  hd_srtp_free(pc->srtp);
  hd_dtls_free(pc->dtls);
  if (pc->own_cert) hd_dtls_cert_free(pc->cert);
  free(pc->q);
  free(pc->pq);
  free(pc->bwe);
  free(pc->twcc_rx);
  free(pc);
}

/* ---- tx queue ---- */

static int enqueue(hd_pc_t *pc, const uint8_t *data, size_t len, const struct sockaddr_storage *to,
                   socklen_t tolen) {
  if (len > PC_DGRAM_MAX) return HD_EINVAL;
  int paced = pc->tx_paced && pc_pace_rate(pc);
  size_t *count = paced ? &pc->pq_count : &pc->q_count;
  if (*count == pc->q_cap) {
    pc->st.drop_txq++;
    pc->tx_twcc = -1;
    pc->tx_paced = pc->tx_fixed = pc->tx_cluster = 0;
    return HD_ENOSPC;
  }
  pc_dgram_t *d = paced ? &pc->pq[(pc->pq_head + pc->pq_count) % pc->q_cap]
                        : &pc->q[(pc->q_head + pc->q_count) % pc->q_cap];
  memcpy(d->data, data, len);
  d->len = len;
  d->twcc = pc->tx_twcc;
  d->protect_later = (uint8_t)(paced && pc->tx_twcc_off);
  d->twcc_off = pc->tx_twcc_off;
  pc->tx_twcc_off = 0;
  d->paced = (uint8_t)pc->tx_paced;
  d->fixed_rate = (uint8_t)(paced && pc->tx_fixed);
  d->rtp_len = (uint16_t)pc->tx_rtp_len;
  d->cluster = (int16_t)pc->tx_cluster;
  pc->tx_twcc = -1;
  pc->tx_paced = pc->tx_fixed = pc->tx_cluster = 0;
  d->to = *to;
  d->tolen = tolen;
  (*count)++;
  if (paced) pc->pq_bytes += len;
  if (d->fixed_rate) pc->pq_fixed++;
  if (paced && d->cluster) pc->pq_probe++;
  return 0;
}

int pc_send_dgram(hd_pc_t *pc, const uint8_t *data, size_t len) {
  if (pc->selected < 0) return HD_ESTATE;
  return enqueue(pc, data, len, &pc->cands[pc->selected].addr, pc->cands[pc->selected].len);
}

/* ---- ICE ---- */

static int addr_eq(const struct sockaddr_storage *a, const struct sockaddr *b, socklen_t blen) {
  if (a->ss_family != b->sa_family) return 0;
  if (b->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return blen >= (socklen_t)sizeof *y && x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (b->sa_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return blen >= (socklen_t)sizeof *y && x->sin6_port == y->sin6_port &&
           !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr);
  }
  return 0;
}

static int find_cand(const hd_pc_t *pc, const struct sockaddr *a, socklen_t len) {
  for (int i = 0; i < pc->n_cands; i++)
    if (addr_eq(&pc->cands[i].addr, a, len)) return i;
  return -1;
}

int pc_add_cand(hd_pc_t *pc, const struct sockaddr *a, socklen_t len) {
  if (!a || (a->sa_family != AF_INET && a->sa_family != AF_INET6) ||
      len > (socklen_t)sizeof(struct sockaddr_storage))
    return HD_EINVAL;
  if (a->sa_family == AF_INET && len < (socklen_t)sizeof(struct sockaddr_in)) return HD_EINVAL;
  if (a->sa_family == AF_INET6 && len < (socklen_t)sizeof(struct sockaddr_in6)) return HD_EINVAL;
  int i = find_cand(pc, a, len);
  if (i >= 0) return i;
  if (pc->n_cands >= HD_PC_MAX_REMOTE_CANDS) return HD_ENOSPC;
  pc_cand_t *c = &pc->cands[pc->n_cands];
  memset(c, 0, sizeof *c);
  memcpy(&c->addr, a, len);
  c->len = len;
  return pc->n_cands++;
}

int hd_pc_add_remote_candidate(hd_pc_t *pc, const struct sockaddr *addr, socklen_t len) {
  int rc = pc_add_cand(pc, addr, len);
  if (rc >= 0 && pc->have_remote && pc->selected < 0 && pc->state == HD_PC_CHECKING) pc->next_check = 0;
  return rc < 0 ? rc : 0;
}

static void flush_dtls(hd_pc_t *pc) {
  if (!pc->dtls || pc->selected < 0) return;
  uint8_t buf[HD_DTLS_MAX_DATAGRAM];
  int n;
  while ((n = hd_dtls_poll(pc->dtls, buf, sizeof buf)) > 0)
    pc_send_dgram(pc, buf, (size_t)n);
}

static void select_cand(hd_pc_t *pc, int i, hd_time_t now) {
  if (pc->selected == i) return;
  int first = pc->selected < 0;
  pc->selected = i;
  if (first) {
    pc->last_consent = now;
    pc->next_check = now + pc->cfg.consent_interval;
    if (pc->state == HD_PC_CHECKING) pc_set_state(pc, HD_PC_DTLS, NULL);
  }
  flush_dtls(pc);
}

static void send_check(hd_pc_t *pc, int ci, hd_time_t now) {
  uint8_t buf[256];
  char user[2 * HD_SDP_ICE_MAX + 2];
  int ulen = snprintf(user, sizeof user, "%s:%s", pc->r_ufrag, pc->ufrag);
  hd_stun_builder_t b;
  hd_stun_build_start(&b, buf, sizeof buf, HD_STUN_BINDING_REQUEST, NULL);
  hd_stun_add_username(&b, user, (size_t)ulen);
  hd_stun_add_priority(&b, CHECK_PRIORITY);
  if (pc->controlling) {
    hd_stun_add_ice_controlling(&b, pc->tie);
    hd_stun_add_use_candidate(&b); /* aggressive nomination */
  } else {
    hd_stun_add_ice_controlled(&b, pc->tie);
  }
  int n = hd_stun_build_finish(&b, (const uint8_t *)pc->r_pwd, strlen(pc->r_pwd), 1);
  if (n < 0) return;
  /* the oldest entry makes room: at PC_TX_CAP checks it is past PC_TX_KEEP anyway at our pace */
  memcpy(pc->txs[pc->tx_pos].txid, buf + 8, HD_STUN_TXID_LEN);
  pc->txs[pc->tx_pos].cand = ci;
  pc->txs[pc->tx_pos].sent = now;
  pc->tx_pos = (pc->tx_pos + 1) % PC_TX_CAP;
  if (enqueue(pc, buf, (size_t)n, &pc->cands[ci].addr, pc->cands[ci].len) == 0) pc->st.stun_checks_sent++;
}

/* Role conflict (RFC 8445 §7.3.1.1) on a request we received. Returns 1 if we
 * must answer 487, 0 to go on (possibly after switching roles). */
static int role_conflict(hd_pc_t *pc, const hd_stun_msg_t *m) {
  if (pc->controlling && (m->present & HD_STUN_HAS_ICE_CONTROLLING)) {
    pc->st.role_conflicts++;
    if (pc->lite_peer || pc->tie >= m->ice_controlling) return 1;
    pc->controlling = 0;
  } else if (!pc->controlling && (m->present & HD_STUN_HAS_ICE_CONTROLLED)) {
    pc->st.role_conflicts++;
    if (pc->tie >= m->ice_controlled) {
      pc->controlling = 1;
    } else {
      return 1;
    }
  }
  return 0;
}

static int on_stun_request(hd_pc_t *pc, const hd_stun_msg_t *m, const uint8_t *buf, size_t len,
                           const struct sockaddr *from, socklen_t fromlen, hd_time_t now) {
  const char *l, *r;
  size_t ll, rl;
  if (m->method != HD_STUN_METHOD_BINDING) return HD_EUNSUPPORTED;
  if (hd_stun_username_split(m, &l, &ll, &r, &rl) < 0 || ll != strlen(pc->ufrag) || memcmp(l, pc->ufrag, ll))
    return HD_EAUTH;
  if (pc->r_ufrag[0] && (rl != strlen(pc->r_ufrag) || memcmp(r, pc->r_ufrag, rl))) return HD_EAUTH;
  if (hd_stun_check_integrity(m, buf, len, (const uint8_t *)pc->pwd, strlen(pc->pwd)) < 0) return HD_EAUTH;
  if ((m->present & HD_STUN_HAS_FINGERPRINT) && !m->fingerprint_ok) return HD_EAUTH;
  uint8_t resp[256];
  hd_stun_builder_t b;
  int conflict = role_conflict(pc, m);
  hd_stun_build_start(&b, resp, sizeof resp, conflict ? HD_STUN_BINDING_ERROR : HD_STUN_BINDING_SUCCESS,
                      m->txid);
  if (conflict)
    hd_stun_add_error_code(&b, HD_STUN_ERR_ROLE_CONFLICT, "Role Conflict");
  else
    hd_stun_add_xor_mapped_address(&b, from, fromlen);
  int n = hd_stun_build_finish(&b, (const uint8_t *)pc->pwd, strlen(pc->pwd), 1);
  if (n < 0) return n;
  struct sockaddr_storage to;
  memset(&to, 0, sizeof to);
  memcpy(&to, from, fromlen);
  enqueue(pc, resp, (size_t)n, &to, fromlen);
  if (conflict) return 0;
  pc->st.stun_requests_answered++;
  int ci = pc_add_cand(pc, from, fromlen); /* peer-reflexive if new (§7.3.1.3) */
  if (ci < 0) return 0;
  pc->cands[ci].valid = 1;
  if (!pc->controlling && (m->present & HD_STUN_HAS_USE_CANDIDATE)) {
    pc->cands[ci].nominated = 1;
    select_cand(pc, ci, now);
  }
  return 0; /* consent is refreshed only by responses to our own checks (RFC 7675 §5.1) */
}

static int on_stun_response(hd_pc_t *pc, const hd_stun_msg_t *m, const uint8_t *buf, size_t len,
                            const struct sockaddr *from, socklen_t fromlen, hd_time_t now) {
  /* §7.2.5.2: a response is to a check we sent (matched by transaction id),
   * not only to the latest ones: a busy peer may answer seconds late. */
  int ci = -1;
  hd_time_t sent = 0;
  for (int i = 0; i < PC_TX_CAP; i++)
    if (pc->txs[i].cand >= 0 && !memcmp(pc->txs[i].txid, m->txid, HD_STUN_TXID_LEN)) {
      if (now - pc->txs[i].sent <= PC_TX_KEEP) {
        ci = pc->txs[i].cand;
        sent = pc->txs[i].sent;
      }
      pc->txs[i].cand = -1; /* one answer per transaction; an expired one is forgotten */
      break;
    }
  if (ci < 0 || ci >= pc->n_cands) return HD_ENOTFOUND;
  if (hd_stun_check_integrity(m, buf, len, (const uint8_t *)pc->r_pwd, strlen(pc->r_pwd)) < 0)
    return HD_EAUTH;
  if (m->cls == HD_STUN_CLASS_ERROR) {
    if ((m->present & HD_STUN_HAS_ERROR_CODE) && m->error_code == HD_STUN_ERR_ROLE_CONFLICT &&
        !pc->lite_peer) {
      pc->controlling = !pc->controlling; /* §7.2.5.1: switch and retry */
      pc->st.role_conflicts++;
      pc->next_check = now;
    }
    return 0;
  }
  /* §7.2.5.2.1: the response must come from where we sent the request */
  if (!addr_eq(&pc->cands[ci].addr, from, fromlen)) return HD_EPROTO;
  pc->st.stun_responses++;
  pc->ice_rtt = now - sent;
  pc->cands[ci].valid = 1;
  if (pc->selected < 0 || (pc->controlling && !pc->cands[pc->selected].nominated)) {
    if (pc->controlling) pc->cands[ci].nominated = 1; /* USE-CANDIDATE was in it */
    select_cand(pc, ci, now);
  }
  if (ci == pc->selected) {
    pc->last_consent = now;
    if (pc->state == HD_PC_CONNECTED || pc->state == HD_PC_DTLS)
      pc->next_check = now + pc->cfg.consent_interval;
  }
  return 0;
}

static int feed_stun(hd_pc_t *pc, const uint8_t *buf, size_t len, const struct sockaddr *from,
                     socklen_t fromlen, hd_time_t now) {
  hd_stun_msg_t m;
  int rc = hd_stun_parse(&m, buf, len);
  if (rc < 0) return rc;
  if (m.cls == HD_STUN_CLASS_REQUEST) return on_stun_request(pc, &m, buf, len, from, fromlen, now);
  if (m.cls == HD_STUN_CLASS_SUCCESS || m.cls == HD_STUN_CLASS_ERROR)
    return on_stun_response(pc, &m, buf, len, from, fromlen, now);
  return 0; /* indications: keepalives, ignored */
}

/* ---- DTLS ---- */

int pc_start_transport(hd_pc_t *pc, int remote_setup, hd_time_t now) {
  /* RFC 8842 §5: the answerer picks; we are the client unless the peer is active */
  pc->dtls_client = remote_setup != HD_SDP_SETUP_ACTIVE;
  int rc = hd_dtls_new(&pc->dtls, pc->cert, !pc->dtls_client, pc->r_fp, now);
  if (rc < 0) return rc;
  pc->started = now;
  pc->next_check = now;
  pc_set_state(pc, HD_PC_CHECKING, NULL);
  return 0;
}

static void check_dtls(hd_pc_t *pc, hd_time_t now) {
  int s = hd_dtls_state(pc->dtls);
  if (s == HD_DTLS_FAILED) {
    char why[160];
    snprintf(why, sizeof why, "dtls: %s", hd_dtls_error(pc->dtls));
    pc_set_state(pc, HD_PC_FAILED, why);
  } else if (s == HD_DTLS_CLOSED) {
    pc_set_state(pc, HD_PC_CLOSED, "peer closed (close_notify)");
  } else if (s == HD_DTLS_CONNECTED && !pc->srtp) {
    hd_dtls_srtp_keys_t k;
    int rc = hd_dtls_srtp_keys(pc->dtls, &k);
    if (rc == 0) rc = hd_srtp_new(&pc->srtp, k.profile, k.local_key, k.remote_key, k.key_len);
    memset(&k, 0, sizeof k);
    if (rc < 0) {
      pc_set_state(pc, HD_PC_FAILED, "srtp keying failed");
      return;
    }
    pc->next_rtcp = now + pc->cfg.rtcp_interval / 2;
    pc_set_state(pc, HD_PC_CONNECTED, NULL);
  }
}

/* ---- I/O ---- */

int hd_pc_feed(hd_pc_t *pc, const uint8_t *buf, size_t len, const struct sockaddr *from, socklen_t fromlen,
               hd_time_t now) {
  if (!pc || !buf || !from) return HD_EINVAL;
  pc->st.datagrams_in++;
  pc->st.bytes_in += len;
  if (len == 0 || !pc->have_remote || pc->state == HD_PC_FAILED || pc->state == HD_PC_CLOSED) {
    pc->st.drop_unknown++;
    return HD_ESTATE;
  }
  uint8_t b0 = buf[0];
  int rc;
  if (b0 <= 3) { /* RFC 7983 */
    rc = feed_stun(pc, buf, len, from, fromlen, now);
  } else if (b0 >= 20 && b0 <= 63) {
    if (pc->selected < 0) { /* the peer found the path first: take it if it checked with us */
      int ci = find_cand(pc, from, fromlen);
      if (ci >= 0 && pc->cands[ci].valid) select_cand(pc, ci, now);
    }
    rc = hd_dtls_feed(pc->dtls, buf, len, now);
    check_dtls(pc, now);
    flush_dtls(pc);
  } else if (b0 >= 128 && b0 <= 191 && pc->srtp) {
    pc_media_on_srtp(pc, buf, len, now);
    rc = 0;
  } else {
    rc = HD_EPROTO;
  }
  if (rc < 0) pc->st.drop_malformed++;
  return rc < 0 ? rc : 0;
}

hd_time_t hd_pc_next_timeout(const hd_pc_t *pc) {
  if (!pc->have_remote || pc->state == HD_PC_FAILED || pc->state == HD_PC_CLOSED) return HD_TIME_NEVER;
  hd_time_t t = pc->next_check;
  if (pc->state != HD_PC_CONNECTED) t = hd_time_min(t, pc->started + pc->cfg.connect_timeout);
  if (pc->selected >= 0) t = hd_time_min(t, pc->last_consent + CONSENT_TIMEOUT);
  if (pc->dtls && pc->selected >= 0 && pc->state == HD_PC_DTLS)
    t = hd_time_min(t, hd_dtls_next_timeout(pc->dtls));
  if (pc->state == HD_PC_CONNECTED) t = hd_time_min(t, pc_media_next_timeout(pc));
  if (pc->pq_count) t = hd_time_min(t, pc_pace_due(pc));
  return t;
}

void hd_pc_handle_timeout(hd_pc_t *pc, hd_time_t now) {
  if (!pc->have_remote || pc->state == HD_PC_FAILED || pc->state == HD_PC_CLOSED) return;
  if (pc->state != HD_PC_CONNECTED && now >= pc->started + pc->cfg.connect_timeout) {
    pc_set_state(pc, HD_PC_FAILED, pc->selected < 0 ? "ice: no connectivity" : "dtls: handshake timeout");
    return;
  }
  if (pc->selected >= 0 && now >= pc->last_consent + CONSENT_TIMEOUT) {
    pc_set_state(pc, HD_PC_FAILED, "ice: consent expired");
    return;
  }
  if (now >= pc->next_check) {
    if (pc->selected < 0) {
      if (pc->n_cands > 0 && pc->r_pwd[0]) {
        pc->next_cand %= pc->n_cands;
        send_check(pc, pc->next_cand++, now);
      }
      pc->next_check = now + CHECK_PACE;
    } else {
      send_check(pc, pc->selected, now); /* consent (RFC 7675 §5.1) */
      /* ±20 % around the interval would be RFC 7675's randomisation; a fixed
       * interval keeps virtual-time runs reproducible. The answer moves the
       * next check to a full interval out; until then it is CONSENT_RETRY. */
      pc->next_check =
          now + (CONSENT_RETRY < pc->cfg.consent_interval ? CONSENT_RETRY : pc->cfg.consent_interval);
    }
  }
  if (pc->dtls && pc->selected >= 0 && pc->state == HD_PC_DTLS && hd_dtls_next_timeout(pc->dtls) <= now) {
    hd_dtls_handle_timeout(pc->dtls, now);
    check_dtls(pc, now);
    flush_dtls(pc);
  }
  if (pc->state == HD_PC_CONNECTED) pc_media_timeout(pc, now);
}

int hd_pc_poll(hd_pc_t *pc, uint8_t *out, size_t cap, struct sockaddr_storage *to, socklen_t *tolen,
               hd_time_t now) {
  if (!pc || !out) return HD_EINVAL;
  /* what an answer applied since it was queued no longer allows leaves
   * either queue unsent (RFC 3264 §6.1: only formats in the answer); the
   * unpaced one holds all with pacing off */
  while (pc->q_count && !pc_media_may_send(pc, pc->q[pc->q_head].data, pc->q[pc->q_head].len)) {
    pc->q_head = (pc->q_head + 1) % pc->q_cap;
    pc->q_count--;
    pc->st.drop_unnegotiated++;
  }
  if (!pc->q_count && !pc->pq_count && hd_pc_next_timeout(pc) <= now) hd_pc_handle_timeout(pc, now);
  int paced = 0;
  if (!pc->q_count) {
    while (pc->pq_count && !pc_media_may_send(pc, pc->pq[pc->pq_head].data, pc->pq[pc->pq_head].len)) {
      pc->pq_bytes -= pc->pq[pc->pq_head].len;
      pc->pq_fixed -= pc->pq[pc->pq_head].fixed_rate;
      pc->pq_probe -= pc->pq[pc->pq_head].cluster != 0;
      pc->pq_head = (pc->pq_head + 1) % pc->q_cap;
      pc->pq_count--;
      pc->st.drop_unnegotiated++;
    }
    if (!pc->pq_count) return 0;
    pc_pace_refill(pc, now);
    if (pc->pace_budget < 0 && pc_pace_rate(pc)) {
      if (!pc->pq_fixed) {
        pc->st.paced_waits++;
        return 0;
      }
      /* a fixed-rate source (pushed H.264) is queued: the estimate cannot
       * slow it, so holding it only builds a queue up to PACE_MAX_QUEUE_US
       * (docs/bwe.md). It and what is ahead of it leave now; their bytes are
       * charged to the budget, its debt kept to one burst so that paced
       * media after it is not starved for what the fixed source sent */
      pc->st.pace_bypassed++;
      if (pc->pace_budget < -pc_pace_burst(pc)) pc->pace_budget = -pc_pace_burst(pc);
    }
    paced = 1;
  }
  pc_dgram_t *d = paced ? &pc->pq[pc->pq_head] : &pc->q[pc->q_head];
  if (d->len > cap) return HD_ENOSPC;
  if (paced) {
    pc->pace_budget -= (double)d->len;
    pc->pq_head = (pc->pq_head + 1) % pc->q_cap;
    pc->pq_count--;
    pc->pq_bytes -= d->len;
    pc->pq_fixed -= d->fixed_rate;
    pc->pq_probe -= d->cluster != 0;
  } else {
    pc->q_head = (pc->q_head + 1) % pc->q_cap;
    pc->q_count--;
  }
  if (d->protect_later) {
    /* stamped and protected as it leaves: transport-wide seqs in send order */
    d->twcc = pc->twcc_seq++;
    hd_rtp_twcc_seq_write(d->data + d->twcc_off, (uint16_t)d->twcc);
    int pn = hd_srtp_protect(pc->srtp, d->data, d->len, sizeof d->data);
    if (pn < 0) {
      pc->st.drop_txq++;
      return 0;
    }
    d->len = (size_t)pn;
    if (d->len > cap) return HD_ENOSPC;
  }
  /* the estimator needs the time the packet really left, after the pacer;
   * during a probe cluster what the pacer lets go (media first, then the
   * cluster's packets) leaves at the cluster's rate and is the probe, as on
   * the node's viewer legs (sfu/session_pace.c) */
  int cluster = d->cluster ? d->cluster : paced ? pc->probe.id : 0;
  if (d->twcc >= 0 && pc->bwe) hd_bwe_on_packet_sent(pc->bwe, (uint16_t)d->twcc, d->rtp_len, now, cluster);
  memcpy(out, d->data, d->len);
  if (to) *to = d->to;
  if (tolen) *tolen = d->tolen;
  int n = (int)d->len;
  pc->st.datagrams_out++;
  pc->st.bytes_out += (uint64_t)n;
  return n;
}

int hd_pc_close(hd_pc_t *pc) {
  if (!pc) return HD_EINVAL;
  if (pc->state == HD_PC_CLOSED || pc->state == HD_PC_FAILED) return HD_ESTATE;
  if (pc->dtls && hd_dtls_state(pc->dtls) == HD_DTLS_CONNECTED) {
    hd_dtls_close(pc->dtls);
    flush_dtls(pc);
  }
  pc_set_state(pc, HD_PC_CLOSED, "closed locally");
  return 0;
}

/* ---- accessors ---- */

int hd_pc_state(const hd_pc_t *pc) { return pc->state; }
const char *hd_pc_error(const hd_pc_t *pc) {
  return pc->state == HD_PC_FAILED || pc->state == HD_PC_CLOSED ? pc->err : "";
}
int hd_pc_ice_controlling(const hd_pc_t *pc) { return pc->controlling; }
int hd_pc_dtls_client(const hd_pc_t *pc) { return pc->dtls_client; }
int hd_pc_fec_enabled(const hd_pc_t *pc) { return pc && !pc->cfg.no_fec; }
uint64_t hd_pc_send_rate_target(const hd_pc_t *pc) { return pc->remb_bps; }
const struct sockaddr *hd_pc_remote_addr(const hd_pc_t *pc, socklen_t *len) {
  if (pc->selected < 0) return NULL;
  if (len) *len = pc->cands[pc->selected].len;
  return (const struct sockaddr *)&pc->cands[pc->selected].addr;
}

int hd_pc_track_count(const hd_pc_t *pc) { return pc->n_tr; }
int hd_pc_find_mid(const hd_pc_t *pc, const char *mid) {
  for (int i = 0; i < pc->n_tr; i++)
    if (!strcmp(pc->tr[i].mid, mid)) return i;
  return HD_ENOTFOUND;
}
const char *hd_pc_track_mid(const hd_pc_t *pc, int i) {
  return i >= 0 && i < pc->n_tr ? pc->tr[i].mid : NULL;
}
int hd_pc_track_kind(const hd_pc_t *pc, int i) { return i >= 0 && i < pc->n_tr ? pc->tr[i].kind : 0; }
int hd_pc_track_direction(const hd_pc_t *pc, int i) { return i >= 0 && i < pc->n_tr ? pc->tr[i].dir : 0; }

const char *hd_pc_track_codec(const hd_pc_t *pc, int track) {
  if (!pc || track < 0 || track >= pc->n_tr || !pc->tr[track].negotiated) return "";
  return pc->tr[track].codec;
}

uint8_t hd_pc_track_red_pt(const hd_pc_t *pc, int track) {
  if (!pc || track < 0 || track >= pc->n_tr || !pc->tr[track].negotiated) return 0;
  return pc->tr[track].red_pt;
}

int hd_pc_track_loss_report(const hd_pc_t *pc, int track, double *fraction_lost, uint64_t *count) {
  if (!pc || track < 0 || track >= pc->n_tr || !pc->tr[track].st.reports_received) return HD_ENOTFOUND;
  *fraction_lost = pc->tr[track].st.fraction_lost;
  *count = pc->tr[track].st.reports_received;
  return 0;
}

void hd_pc_stats(const hd_pc_t *pc, hd_pc_stats_t *out) {
  *out = pc->st;
  out->state = pc->state;
  out->ice_controlling = pc->controlling;
  out->send_rate_bps = pc->remb_bps;
  out->bwe_bps = pc->bwe ? hd_bwe_target(pc->bwe) : 0;
  out->pacing_bps = pc_pace_rate(pc);
  out->rtt = pc->rtt;
  out->ice_rtt = pc->ice_rtt;
  out->n_tracks = pc->n_tr;
  for (int i = 0; i < pc->n_tr; i++) {
    const pc_trx_t *t = &pc->tr[i];
    hd_pc_track_stats_t *s = &out->tracks[i];
    *s = t->st;
    s->kind = t->kind;
    s->direction = t->dir;
    snprintf(s->mid, sizeof s->mid, "%s", t->mid);
    s->send_ssrc = t->ssrc;
    s->send_rtx_ssrc = t->rtx_ssrc;
    s->recv_ssrc = t->r_ssrc;
    s->pt = t->pt;
    s->red_pt = t->red_pt;
    s->rtx_pt = t->rtx_pt;
    if (t->r_started) {
      s->lost = hd_rtp_recv_stats_lost(&t->rst);
      s->jitter = hd_rtp_recv_stats_jitter(&t->rst);
    }
    s->nack_gave_up = t->ng.gave_up;
    s->missing = t->ng.noticed;
    s->repair_rtt = t->ng.rtt_samples ? t->ng.rtt : -1;
    s->fec_group = pc_fec_group(pc, t);
  }
}
