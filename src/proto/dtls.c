/* DTLS 1.2 (RFC 6347) for WebRTC DTLS-SRTP (RFC 5764; RFC 8827 §6.5, RFC 8842),
 * sans-IO, over OpenSSL 3.
 *
 * Transport: a small custom BIO is both rbio and wbio of the SSL object.
 *  - read side: hd_dtls_feed() lends it exactly one datagram; one BIO read returns
 *    it whole (datagram semantics), the next one says "retry".
 *  - write side: records are appended to an open datagram; OpenSSL sizes handshake
 *    fragments from MTU - BIO_wpending() and flushes at the end of a flight, so
 *    several records share one datagram (allowed by RFC 6347 §4.1.1) and a flight
 *    is one or a few datagrams of at most HD_DTLS_MTU bytes. Closed datagrams go
 *    to a capped queue that hd_dtls_poll() drains.
 *
 * Time: OpenSSL's DTLS timer reads the wall clock. We keep our own RTO schedule on
 * the caller's clock (RFC 6347 §4.2.4.1: initial, doubling, capped, bounded
 * retries) and let OpenSSL only *perform* the retransmission. To make OpenSSL's
 * timer never fire on its own, DTLS_set_timer_cb() returns a very long duration.
 * To make it fire when *we* decide, we need it expired: OpenSSL 3.0/3.1 hands the
 * rbio a pointer to its next-timeout timeval (BIO_CTRL_DGRAM_SET_NEXT_TIMEOUT) on
 * every timer start/stop; we keep that pointer and move the deadline into the past
 * right before DTLSv1_handle_timeout(). That layout is version-specific (3.2 passes
 * a stack copy), so it is gated on the runtime library version; with any other
 * version the OpenSSL timer runs on the wall clock with our RTO as its duration
 * (correct in production where virtual time is real time, not in virtual-time
 * tests). An always-expired OpenSSL timer (1 µs) is NOT usable: OpenSSL checks the
 * timer on every record read, so it would retransmit on each read and hit its
 * 12-timeout fatal limit within one call.
 *
 * Authentication: self-signed certificates on both sides; the peer's certificate
 * is accepted iff its SHA-256 digest equals the a=fingerprint from SDP
 * (RFC 8122 §5, RFC 8827 §6.5). Mismatch aborts the handshake with an alert. */
#include "proto/dtls.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "base/err.h"
#include "base/hex.h"

#define DEFAULT_PROFILES "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80"
#define OUTQ_CAP 32       /* datagrams waiting for hd_dtls_poll */
#define INQ_CAP 64        /* application records waiting for hd_dtls_recv */
#define APP_SCRATCH 16384 /* largest DTLS plaintext record */
/* OpenSSL timer duration when we drive retransmission ourselves: effectively never. */
#define OSSL_TIMER_FAR_US 3600000000u

struct hd_dtls_cert {
  X509 *x509;
  EVP_PKEY *pkey;
  SSL_CTX *ctx;
  char fingerprint[3 * 32];
};

typedef struct {
  uint8_t *data;
  size_t len;
} dgram_t;

struct hd_dtls {
  hd_dtls_cert_t *cert;
  SSL *ssl;
  BIO *bio;
  int is_server;
  int state;
  int fed; /* a datagram has been fed (profiles can no longer change) */
  int has_fp;
  uint8_t remote_fp[32];
  char error[160];

  /* inbound datagram lent by feed */
  const uint8_t *in;
  size_t in_len;

  /* outbound: open datagram + queue */
  uint8_t open[HD_DTLS_MAX_DATAGRAM];
  size_t open_len;
  dgram_t outq[OUTQ_CAP];
  size_t outq_head, outq_n;
  uint64_t out_dropped;

  /* inbound application data */
  dgram_t inq[INQ_CAP];
  size_t inq_head, inq_n;
  uint64_t in_dropped;

  /* retransmission schedule on the caller's clock */
  hd_time_t deadline;
  hd_time_t rto;
  int retries;
  int lossy;               /* a flight was retransmitted: handshake datagrams go twice (close_open) */
  uint64_t dup_sent;       /* datagrams sent twice */
  int timer_fresh;         /* OpenSSL started a timer for a new flight */
  struct timeval *ossl_tv; /* OpenSSL 3.0/3.1: its next-timeout field */

  char profiles[96];
  hd_time_t last_now;

  /* post-handshake record filter (see filter_records) */
  uint64_t dropped;   /* records dropped as not authenticated */
  uint64_t authed_in; /* records OpenSSL accepted after CONNECTED (alerts, handshake, app data) */
};

/* ---------------------------------------------------------------- helpers */

static int virtual_timer_supported(void) {
  /* See the file comment: only 3.0.x and 3.1.x pass &d1->next_timeout to the BIO. */
  unsigned long v = OpenSSL_version_num();
  return v >= 0x30000000UL && v < 0x30200000UL;
}

static void set_error(hd_dtls_t *d, const char *msg) {
  if (d->error[0]) return; /* keep the first, most specific reason */
  snprintf(d->error, sizeof d->error, "%s", msg);
}

static void set_ssl_error(hd_dtls_t *d, const char *what) {
  unsigned long e = ERR_peek_last_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  char buf[160];
  snprintf(buf, sizeof buf, "%s%s%s", what, r ? ": " : "", r ? r : "");
  set_error(d, buf);
}

static void fail(hd_dtls_t *d) {
  d->state = HD_DTLS_FAILED;
  d->deadline = HD_TIME_NEVER;
}

static void free_dgrams(dgram_t *q, size_t cap, size_t *head, size_t *n) {
  while (*n) {
    free(q[*head].data);
    q[*head].data = NULL;
    *head = (*head + 1) % cap;
    (*n)--;
  }
  *head = 0;
}

static void enqueue_open(hd_dtls_t *d) {
  if (d->outq_n == OUTQ_CAP) {
    d->out_dropped++;
    return;
  }
  uint8_t *p = malloc(d->open_len);
  if (!p) {
    d->out_dropped++;
    return;
  }
  memcpy(p, d->open, d->open_len);
  size_t i = (d->outq_head + d->outq_n) % OUTQ_CAP;
  d->outq[i].data = p;
  d->outq[i].len = d->open_len;
  d->outq_n++;
}

/* Moves the open datagram to the out queue. A full queue drops it, like a full
 * socket buffer would: DTLS retransmission copes. Once a flight of this
 * session had to be retransmitted (the path loses), handshake and CCS
 * datagrams go out twice: a round trip then gets through with (1 - p^2)^2
 * instead of (1 - p)^2 -- 56 % instead of 25 % at 50 % loss each way --
 * for a few hundred bytes once per session; DTLS drops the copy (RFC 6347
 * §4.1.2.6 replay detection, §4.2.2 message sequence numbers). */
static void close_open(hd_dtls_t *d) {
  if (!d->open_len) return;
  enqueue_open(d);
  uint8_t type = d->open[0];
  if (d->lossy && (type == 20 || type == 22)) { /* change_cipher_spec, handshake (RFC 5246 §6.2.1) */
    enqueue_open(d);
    d->dup_sent++;
  }
  d->open_len = 0;
}

/* ---------------------------------------------------------------- the BIO */

static BIO_METHOD *g_bio_method;
static CRYPTO_ONCE g_bio_once = CRYPTO_ONCE_STATIC_INIT;

static int bio_write(BIO *b, const char *buf, int len) {
  hd_dtls_t *d = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (!d || len < 0) return -1;
  size_t n = (size_t)len;
  if (n > HD_DTLS_MAX_DATAGRAM) return -1;
  if (d->open_len && d->open_len + n > HD_DTLS_MTU) close_open(d);
  memcpy(d->open + d->open_len, buf, n);
  d->open_len += n;
  return len;
}

static int bio_read(BIO *b, char *buf, int len) {
  hd_dtls_t *d = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (!d || !d->in) {
    BIO_set_retry_read(b);
    return -1;
  }
  size_t n = d->in_len < (size_t)len ? d->in_len : (size_t)len; /* truncates like UDP */
  memcpy(buf, d->in, n);
  d->in = NULL;
  d->in_len = 0;
  return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  hd_dtls_t *d = BIO_get_data(b);
  switch (cmd) {
  case BIO_CTRL_FLUSH:
    if (d) close_open(d);
    return 1;
  case BIO_CTRL_WPENDING: return d ? (long)d->open_len : 0;
  case BIO_CTRL_PENDING: return d && d->in ? (long)d->in_len : 0;
  case BIO_CTRL_DGRAM_SET_NEXT_TIMEOUT:
    if (d && ptr && virtual_timer_supported()) d->ossl_tv = ptr;
    return 1;
  case BIO_CTRL_DGRAM_QUERY_MTU:
  case BIO_CTRL_DGRAM_GET_FALLBACK_MTU: return HD_DTLS_MTU;
  case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD:
  case BIO_CTRL_DGRAM_MTU_EXCEEDED: return 0;
  default: return 0;
  }
}

static int bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static void bio_method_init(void) {
  BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "hudong-dtls");
  if (!m) return;
  BIO_meth_set_write(m, bio_write);
  BIO_meth_set_read(m, bio_read);
  BIO_meth_set_ctrl(m, bio_ctrl);
  BIO_meth_set_create(m, bio_create);
  g_bio_method = m;
}

/* ------------------------------------------------------------ certificate */

static int verify_cb(X509_STORE_CTX *xs, void *arg);

static int make_ctx(hd_dtls_cert_t *c) {
  SSL_CTX *ctx = SSL_CTX_new(DTLS_method());
  if (!ctx) return HD_ECRYPTO;
  int ok = SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION) &&
           SSL_CTX_set_max_proto_version(ctx, DTLS1_2_VERSION) && SSL_CTX_use_certificate(ctx, c->x509) &&
           SSL_CTX_use_PrivateKey(ctx, c->pkey) && SSL_CTX_check_private_key(ctx) &&
           /* ECDHE + AEAD only; ECDSA for us, RSA accepted from peers that use RSA certs.
            * AES-128-GCM is the suite RFC 8827 §6.5 makes mandatory, so every WebRTC
            * peer has it. AEAD only also keeps record_overhead() exact: the record
            * filter must know the smallest authentic record (issue 12 item 1). */
           SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                                        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"
                                        "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305") &&
           SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384");
  if (!ok) {
    SSL_CTX_free(ctx);
    return HD_ECRYPTO;
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_QUERY_MTU | SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  /* Certificates are self-signed by design: trust comes from the SDP fingerprint. */
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
  SSL_CTX_set_cert_verify_callback(ctx, verify_cb, NULL);
  SSL_CTX_set_read_ahead(ctx, 1);
  c->ctx = ctx;
  return 0;
}

int hd_dtls_cert_generate(hd_dtls_cert_t **out) { return hd_dtls_cert_generate_at(out, (int64_t)time(NULL)); }

int hd_dtls_cert_generate_at(hd_dtls_cert_t **out, int64_t unix_now) {
  if (!out) return HD_EINVAL;
  time_t t = (time_t)unix_now;
  int rc = HD_ECRYPTO;
  hd_dtls_cert_t *c = calloc(1, sizeof *c);
  if (!c) return HD_ENOMEM;
  c->pkey = EVP_EC_gen("P-256");
  c->x509 = X509_new();
  if (!c->pkey || !c->x509) goto fail;

  /* Random positive 63-bit serial: two certs from one node must differ. */
  uint64_t serial;
  if (RAND_bytes((unsigned char *)&serial, sizeof serial) != 1) goto fail;
  serial &= 0x7fffffffffffffffULL;
  ASN1_INTEGER *sn = X509_get_serialNumber(c->x509);
  if (!X509_set_version(c->x509, 2) || !ASN1_INTEGER_set_uint64(sn, serial)) goto fail;
  /* Backdated so peers with skewed clocks do not see a not-yet-valid cert. */
  if (!X509_time_adj(X509_getm_notBefore(c->x509), -30L * 24 * 3600, &t) ||
      !X509_time_adj(X509_getm_notAfter(c->x509), 365L * 24 * 3600, &t))
    goto fail;
  X509_NAME *name = X509_get_subject_name(c->x509);
  if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"hudong", -1, -1, 0) ||
      !X509_set_issuer_name(c->x509, name) || !X509_set_pubkey(c->x509, c->pkey) ||
      !X509_sign(c->x509, c->pkey, EVP_sha256()))
    goto fail;

  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (!X509_digest(c->x509, EVP_sha256(), md, &mdlen) || mdlen != 32) goto fail;
  hd_hex_encode(md, 32, ':', c->fingerprint);
  if ((rc = make_ctx(c)) < 0) goto fail;
  *out = c;
  return 0;
fail:
  ERR_clear_error();
  hd_dtls_cert_free(c);
  return rc;
}

void hd_dtls_cert_free(hd_dtls_cert_t *c) {
  if (!c) return;
  SSL_CTX_free(c->ctx);
  X509_free(c->x509);
  EVP_PKEY_free(c->pkey);
  free(c);
}

const char *hd_dtls_cert_fingerprint(const hd_dtls_cert_t *c) { return c ? c->fingerprint : ""; }

/* Whole-chain verification replaced by a fingerprint comparison (RFC 8122 §5). */
static int verify_cb(X509_STORE_CTX *xs, void *arg) {
  SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
  hd_dtls_t *d = ssl ? SSL_get_app_data(ssl) : NULL;
  X509 *peer = X509_STORE_CTX_get0_cert(xs);
  if (!d || !peer) return 0;
  if (!d->has_fp) return 1;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (!X509_digest(peer, EVP_sha256(), md, &mdlen) || mdlen != 32 ||
      CRYPTO_memcmp(md, d->remote_fp, 32) != 0) {
    set_error(d, "fingerprint mismatch");
    X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
    return 0;
  }
  return 1;
}

/* ---------------------------------------------------------------- session */

/* OpenSSL asks for the duration of its (wall-clock) timer: at a fresh start with
 * prev == 0 (a new flight), else when it retransmits. */
static unsigned int timer_cb(SSL *ssl, unsigned int prev) {
  hd_dtls_t *d = SSL_get_app_data(ssl);
  if (d && prev == 0) d->timer_fresh = 1;
  if (virtual_timer_supported()) return OSSL_TIMER_FAR_US;
  /* Fallback: OpenSSL's timer mirrors our schedule on the wall clock. */
  hd_time_t rto = d ? (prev == 0 ? HD_DTLS_RTO_INITIAL : d->rto * 2) : HD_DTLS_RTO_INITIAL;
  if (rto > HD_DTLS_RTO_MAX) rto = HD_DTLS_RTO_MAX;
  return (unsigned int)rto;
}

static void info_cb(const SSL *ssl, int where, int ret) {
  hd_dtls_t *d = SSL_get_app_data(ssl);
  /* SSL_CB_READ_ALERT is two bits (ALERT|READ): test both, or alerts we send
   * (e.g. "internal error") would be reported as the peer's. */
  if (!d || (where & SSL_CB_READ_ALERT) != SSL_CB_READ_ALERT) return;
  if ((ret & 0xff) == SSL_AD_CLOSE_NOTIFY) return;
  char buf[96];
  snprintf(buf, sizeof buf, "peer alert: %s", SSL_alert_desc_string_long(ret));
  set_error(d, buf);
}

/* Counts records OpenSSL authenticated and acted on after the handshake (alerts,
 * handshake messages, CCS; application data is counted where SSL_read returns it),
 * so that feed can tell which epoch>0 records it silently discarded (bad MAC,
 * replay: RFC 6347 §4.1.2.7). */
static void msg_cb(int write_p, int version, int content_type, const void *buf, size_t len, SSL *ssl,
                   void *arg) {
  (void)version, (void)buf, (void)len, (void)arg;
  hd_dtls_t *d = SSL_get_app_data(ssl);
  if (!d || write_p || d->state != HD_DTLS_CONNECTED) return;
  if (content_type == SSL3_RT_ALERT || content_type == SSL3_RT_HANDSHAKE ||
      content_type == SSL3_RT_CHANGE_CIPHER_SPEC)
    d->authed_in++;
}

/* Builds (or rebuilds) the SSL object; the client sends its ClientHello. */
static int setup_ssl(hd_dtls_t *d, hd_time_t now);

/* Re-arms our schedule from OpenSSL's timer state after any SSL call. Only the
 * handshake uses timers: after CONNECTED the last-flight sender retransmits only
 * when the peer repeats its Finished, which OpenSSL does on feed. */
static void sync_timer(hd_dtls_t *d, hd_time_t now) {
  struct timeval tv;
  if (d->state != HD_DTLS_HANDSHAKING || DTLSv1_get_timeout(d->ssl, &tv) != 1) {
    d->deadline = HD_TIME_NEVER;
    d->timer_fresh = 0;
    return;
  }
  if (d->timer_fresh || d->deadline == HD_TIME_NEVER) {
    d->timer_fresh = 0;
    d->rto = HD_DTLS_RTO_INITIAL;
    d->retries = 0;
    d->deadline = now + d->rto;
  }
}

/* Runs the handshake / reads records after input. Returns 0 or a negative HD_E*. */
static int drive(hd_dtls_t *d, hd_time_t now) {
  int rc = 0;
  ERR_clear_error();
  if (d->state == HD_DTLS_HANDSHAKING) {
    int r = SSL_do_handshake(d->ssl);
    if (r == 1) {
      d->state = HD_DTLS_CONNECTED;
    } else {
      int e = SSL_get_error(d->ssl, r);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        if (!strcmp(d->error, "fingerprint mismatch"))
          rc = HD_EAUTH;
        else
          rc = HD_EPROTO;
        set_ssl_error(d, "handshake failed");
        fail(d);
      }
    }
  }
  if (d->state == HD_DTLS_CONNECTED) {
    /* Drain records: application data goes to the inbound queue; OpenSSL itself
     * answers a repeated Finished by re-sending its last flight. */
    uint8_t *buf = malloc(APP_SCRATCH);
    if (!buf) {
      rc = HD_ENOMEM;
      goto out;
    }
    for (;;) {
      int r = SSL_read(d->ssl, buf, APP_SCRATCH);
      if (r > 0) {
        d->authed_in++;
        if (d->inq_n == INQ_CAP) {
          d->in_dropped++;
          continue;
        }
        uint8_t *p = malloc((size_t)r);
        if (!p) {
          d->in_dropped++;
          continue;
        }
        memcpy(p, buf, (size_t)r);
        size_t i = (d->inq_head + d->inq_n) % INQ_CAP;
        d->inq[i].data = p;
        d->inq[i].len = (size_t)r;
        d->inq_n++;
        continue;
      }
      int e = SSL_get_error(d->ssl, r);
      if (e == SSL_ERROR_ZERO_RETURN) {
        set_error(d, "closed by peer");
        d->state = HD_DTLS_CLOSED;
        /* Answer with our close_notify (RFC 5246 §7.2.1). */
        SSL_shutdown(d->ssl);
      } else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        set_ssl_error(d, "record error");
        fail(d);
        rc = HD_EPROTO;
      }
      break;
    }
    free(buf);
  }
out:
  ERR_clear_error();
  close_open(d);
  sync_timer(d, now);
  return rc;
}

static int setup_ssl(hd_dtls_t *d, hd_time_t now) {
  if (d->ssl) SSL_free(d->ssl); /* also frees the BIO */
  d->ssl = NULL;
  d->bio = NULL;
  d->ossl_tv = NULL;
  d->open_len = 0;
  free_dgrams(d->outq, OUTQ_CAP, &d->outq_head, &d->outq_n);

  SSL *ssl = SSL_new(d->cert->ctx);
  if (!ssl) return HD_ENOMEM;
  BIO *bio = BIO_new(g_bio_method);
  if (!bio) {
    SSL_free(ssl);
    return HD_ENOMEM;
  }
  BIO_set_data(bio, d);
  SSL_set_bio(ssl, bio, bio); /* rbio == wbio: the SSL takes our one reference */
  d->ssl = ssl;
  d->bio = bio;
  SSL_set_app_data(ssl, d);
  SSL_set_info_callback(ssl, info_cb);
  SSL_set_msg_callback(ssl, msg_cb);
  DTLS_set_timer_cb(ssl, timer_cb);
  SSL_set_options(ssl, SSL_OP_NO_QUERY_MTU);
  if (!SSL_set_mtu(ssl, HD_DTLS_MTU) || SSL_set_tlsext_use_srtp(ssl, d->profiles) != 0) {
    ERR_clear_error();
    return HD_ECRYPTO;
  }
  if (d->is_server) {
    SSL_set_accept_state(ssl);
    return 0;
  }
  SSL_set_connect_state(ssl);
  return drive(d, now);
}

int hd_dtls_new(hd_dtls_t **out, hd_dtls_cert_t *cert, int is_server, const char *remote_fp_sha256,
                hd_time_t now) {
  if (!out || !cert || !cert->ctx) return HD_EINVAL;
  CRYPTO_THREAD_run_once(&g_bio_once, bio_method_init);
  if (!g_bio_method) return HD_ECRYPTO;
  hd_dtls_t *d = calloc(1, sizeof *d);
  if (!d) return HD_ENOMEM;
  d->cert = cert;
  d->is_server = is_server ? 1 : 0;
  d->state = HD_DTLS_HANDSHAKING;
  d->deadline = HD_TIME_NEVER;
  d->rto = HD_DTLS_RTO_INITIAL;
  d->last_now = now;
  snprintf(d->profiles, sizeof d->profiles, "%s", DEFAULT_PROFILES);
  if (remote_fp_sha256) {
    if (hd_hex_decode(remote_fp_sha256, strlen(remote_fp_sha256), d->remote_fp, 32) != 32) {
      free(d);
      return HD_EINVAL;
    }
    d->has_fp = 1;
  }
  int rc = setup_ssl(d, now);
  if (rc < 0) {
    hd_dtls_free(d);
    return rc;
  }
  *out = d;
  return 0;
}

int hd_dtls_set_srtp_profiles(hd_dtls_t *d, const char *profiles) {
  if (!d || !profiles || !*profiles || strlen(profiles) >= sizeof d->profiles) return HD_EINVAL;
  if (d->fed || d->state != HD_DTLS_HANDSHAKING) return HD_ESTATE;
  /* Validate with OpenSSL's parser on a throwaway object first. */
  SSL *probe = SSL_new(d->cert->ctx);
  if (!probe) return HD_ENOMEM;
  int bad = SSL_set_tlsext_use_srtp(probe, profiles) != 0;
  SSL_free(probe);
  ERR_clear_error();
  if (bad) return HD_EINVAL;
  snprintf(d->profiles, sizeof d->profiles, "%s", profiles);
  if (d->is_server) return SSL_set_tlsext_use_srtp(d->ssl, d->profiles) == 0 ? 0 : HD_ECRYPTO;
  /* Client: rebuild so the ClientHello carries the new list. */
  return setup_ssl(d, d->last_now);
}

/* Cheap structural check (RFC 6347 §4.1, RFC 7983 demux range): the datagram must be
 * a sequence of complete DTLS records, so junk never reaches OpenSSL. */
static int well_formed(const uint8_t *p, size_t len) {
  if (len < 13) return 0;
  while (len) {
    if (len < 13) return 0;
    if (p[0] < 20 || p[0] > 63 || p[1] != 0xfe) return 0;
    size_t rl = (size_t)p[11] << 8 | p[12];
    if (rl > len - 13) return 0;
    p += 13 + rl;
    len -= 13 + rl;
  }
  return 1;
}

/* Smallest epoch>0 record the negotiated suite can produce: AEAD only (make_ctx),
 * so explicit nonce + tag (RFC 5288 §3: 8 + 16 for GCM; RFC 7905 §2: 0 + 16 for
 * ChaCha20-Poly1305). */
static size_t record_overhead(const hd_dtls_t *d) {
  const SSL_CIPHER *c = SSL_get_current_cipher(d->ssl);
  if (c && SSL_CIPHER_get_cipher_nid(c) == NID_chacha20_poly1305) return 16;
  return 24;
}

/* After the handshake, only records that can be authentic reach OpenSSL (issue 12
 * item 1). An epoch-1 record too short to hold the AEAD nonce and tag makes OpenSSL
 * 3 raise a fatal internal_error and kill the session, so 8 spoofed 15-byte
 * "alerts" from the client's address ended it; a plaintext epoch-0 alert or
 * application record is unauthenticated by definition (RFC 6347 §4.1.2.7: invalid
 * records are silently discarded). Kept: epoch-0 handshake/CCS records (the peer's
 * retransmitted last flight, answered by ours) and full-size records of the current
 * epoch (OpenSSL checks their tag; failures are discarded and counted in feed).
 * Writes the kept records to out (cap >= len). Returns the bytes kept; *n_epoch_kept
 * and *n_plain_kept count kept records per kind; d->dropped counts the rest. */
static size_t filter_records(hd_dtls_t *d, const uint8_t *p, size_t len, uint8_t *out, int *n_epoch_kept,
                             int *n_plain_kept) {
  size_t kept = 0, min = record_overhead(d);
  *n_epoch_kept = *n_plain_kept = 0;
  while (len >= 13) {
    size_t rl = (size_t)p[11] << 8 | p[12];
    unsigned epoch = (unsigned)p[3] << 8 | p[4];
    int keep;
    if (epoch == 0)
      keep = p[0] == SSL3_RT_HANDSHAKE || p[0] == SSL3_RT_CHANGE_CIPHER_SPEC;
    else
      keep = epoch == 1 && rl >= min;
    if (keep) {
      memcpy(out + kept, p, 13 + rl);
      kept += 13 + rl;
      if (epoch == 0)
        (*n_plain_kept)++;
      else
        (*n_epoch_kept)++;
    } else {
      d->dropped++;
    }
    p += 13 + rl;
    len -= 13 + rl;
  }
  return kept;
}

int hd_dtls_feed(hd_dtls_t *d, const uint8_t *rec, size_t len, hd_time_t now) {
  if (!d || (!rec && len)) return HD_EINVAL;
  if (d->state == HD_DTLS_FAILED || d->state == HD_DTLS_CLOSED) return HD_ESTATE;
  d->last_now = now;
  if (!well_formed(rec, len)) return HD_EPROTO;
  d->fed = 1;
  if (d->state != HD_DTLS_CONNECTED) {
    d->in = rec;
    d->in_len = len;
    int rc = drive(d, now);
    d->in = NULL; /* lent for this call only */
    d->in_len = 0;
    return rc;
  }
  uint8_t *buf = malloc(len);
  if (!buf) return HD_ENOMEM;
  int n_epoch = 0, n_plain = 0;
  size_t kept = filter_records(d, rec, len, buf, &n_epoch, &n_plain);
  int rc = HD_EPROTO; /* nothing authentic in it: dropped, state unchanged */
  if (kept) {
    uint64_t authed = d->authed_in;
    d->in = buf;
    d->in_len = kept;
    rc = drive(d, now);
    d->in = NULL;
    d->in_len = 0;
    /* Epoch-1 records OpenSSL discarded (tag check failed, replay) count as dropped.
     * Only exact when no plaintext handshake record shares the datagram. */
    uint64_t got = d->authed_in - authed;
    if (!n_plain && got < (uint64_t)n_epoch) d->dropped += (uint64_t)n_epoch - got;
  }
  free(buf);
  return rc;
}

uint64_t hd_dtls_dropped(const hd_dtls_t *d) { return d ? d->dropped : 0; }

int hd_dtls_poll(hd_dtls_t *d, uint8_t *out, size_t cap) {
  if (!d || !out) return HD_EINVAL;
  close_open(d);
  if (!d->outq_n) return 0;
  dgram_t *g = &d->outq[d->outq_head];
  if (g->len > cap) return HD_ENOSPC;
  size_t n = g->len;
  memcpy(out, g->data, n);
  free(g->data);
  g->data = NULL;
  d->outq_head = (d->outq_head + 1) % OUTQ_CAP;
  d->outq_n--;
  return (int)n;
}

hd_time_t hd_dtls_next_timeout(const hd_dtls_t *d) {
  if (!d || d->state != HD_DTLS_HANDSHAKING) return HD_TIME_NEVER;
  return d->deadline;
}

int hd_dtls_handle_timeout(hd_dtls_t *d, hd_time_t now) {
  if (!d) return HD_EINVAL;
  d->last_now = now;
  if (d->state != HD_DTLS_HANDSHAKING || d->deadline == HD_TIME_NEVER || now < d->deadline) return 0;
  if (d->retries >= HD_DTLS_MAX_RETRIES) {
    set_error(d, "handshake timeout");
    fail(d);
    return HD_ETIMEDOUT;
  }
  d->retries++;
  d->lossy = 1;
  d->rto = d->rto * 2 > HD_DTLS_RTO_MAX ? HD_DTLS_RTO_MAX : d->rto * 2;
  d->deadline = now + d->rto;
  /* Make OpenSSL's own timer look expired so it retransmits the flight now. */
  if (d->ossl_tv && (d->ossl_tv->tv_sec || d->ossl_tv->tv_usec)) {
    d->ossl_tv->tv_sec = 1;
    d->ossl_tv->tv_usec = 0;
  }
  ERR_clear_error();
  int r = DTLSv1_handle_timeout(d->ssl);
  int rc = 0;
  if (r < 0) {
    set_ssl_error(d, "retransmission failed");
    fail(d);
    rc = HD_EPROTO;
  }
  ERR_clear_error();
  close_open(d);
  /* A retransmission is not a new flight: keep our backoff. */
  d->timer_fresh = 0;
  return rc;
}

int hd_dtls_state(const hd_dtls_t *d) { return d ? d->state : HD_DTLS_FAILED; }

const char *hd_dtls_error(const hd_dtls_t *d) { return d ? d->error : "no session"; }

int hd_dtls_srtp_keys(const hd_dtls_t *d, hd_dtls_srtp_keys_t *out) {
  if (!d || !out) return HD_EINVAL;
  if (d->state != HD_DTLS_CONNECTED) return HD_ESTATE;
  SRTP_PROTECTION_PROFILE *p = SSL_get_selected_srtp_profile(d->ssl);
  if (!p) return HD_EUNSUPPORTED;
  size_t key, salt;
  switch (p->id) {
  case SRTP_AES128_CM_SHA1_80:
    key = 16;
    salt = 14;
    break;
  case SRTP_AEAD_AES_128_GCM:
    key = 16;
    salt = 12;
    break;
  default: return HD_EUNSUPPORTED;
  }
  /* RFC 5764 §4.2: client_key | server_key | client_salt | server_salt. */
  uint8_t m[2 * (16 + 14)];
  size_t mlen = 2 * (key + salt);
  static const char label[] = "EXTRACTOR-dtls_srtp";
  if (SSL_export_keying_material(d->ssl, m, mlen, label, sizeof label - 1, NULL, 0, 0) != 1) {
    ERR_clear_error();
    return HD_ECRYPTO;
  }
  const uint8_t *ck = m, *sk = m + key, *cs = m + 2 * key, *ss = m + 2 * key + salt;
  const uint8_t *lk = d->is_server ? sk : ck, *ls = d->is_server ? ss : cs;
  const uint8_t *rk = d->is_server ? ck : sk, *rs = d->is_server ? cs : ss;
  memset(out, 0, sizeof *out);
  out->profile = (int)p->id;
  memcpy(out->local_key, lk, key);
  memcpy(out->local_key + key, ls, salt);
  memcpy(out->remote_key, rk, key);
  memcpy(out->remote_key + key, rs, salt);
  out->key_len = key + salt;
  OPENSSL_cleanse(m, sizeof m);
  return 0;
}

int hd_dtls_send(hd_dtls_t *d, const uint8_t *data, size_t len) {
  if (!d || (!data && len) || len == 0 || len > HD_DTLS_MAX_APP_DATA) return HD_EINVAL;
  if (d->state != HD_DTLS_CONNECTED) return HD_ESTATE;
  ERR_clear_error();
  int r = SSL_write(d->ssl, data, (int)len);
  int rc = (int)len;
  if (r <= 0) {
    set_ssl_error(d, "write failed");
    rc = HD_ECRYPTO;
  }
  ERR_clear_error();
  close_open(d); /* one record, one datagram */
  return rc;
}

int hd_dtls_recv(hd_dtls_t *d, uint8_t *out, size_t cap) {
  if (!d || !out) return HD_EINVAL;
  if (!d->inq_n) return 0;
  dgram_t *g = &d->inq[d->inq_head];
  if (g->len > cap) return HD_ENOSPC;
  size_t n = g->len;
  memcpy(out, g->data, n);
  free(g->data);
  g->data = NULL;
  d->inq_head = (d->inq_head + 1) % INQ_CAP;
  d->inq_n--;
  return (int)n;
}

int hd_dtls_close(hd_dtls_t *d) {
  if (!d) return HD_EINVAL;
  if (d->state == HD_DTLS_CLOSED || d->state == HD_DTLS_FAILED) return HD_ESTATE;
  int was_connected = d->state == HD_DTLS_CONNECTED;
  d->state = HD_DTLS_CLOSED;
  d->deadline = HD_TIME_NEVER;
  set_error(d, "closed locally");
  if (was_connected) {
    ERR_clear_error();
    SSL_shutdown(d->ssl); /* queues close_notify; we do not wait for the peer's */
    ERR_clear_error();
    close_open(d);
  }
  return 0;
}

void hd_dtls_free(hd_dtls_t *d) {
  if (!d) return;
  SSL_free(d->ssl);
  free_dgrams(d->outq, OUTQ_CAP, &d->outq_head, &d->outq_n);
  free_dgrams(d->inq, INQ_CAP, &d->inq_head, &d->inq_n);
  free(d);
}
