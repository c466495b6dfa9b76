/* Fuzz target for the DTLS wrapper (src/proto/dtls): OpenSSL behind memory
 * BIOs, fed datagrams from the network. The first input byte picks the
 * scenario: bit 0 = our side is the server (a=setup:passive) or the client;
 * bit 1 = run a real handshake with an in-process peer first, so the input
 * hits a CONNECTED session (records, alerts, retransmitted flights, app data).
 * The rest is a list of datagrams, each a 2-byte big-endian length and its
 * bytes. Every call must return a documented code, every output must fit
 * HD_DTLS_MAX_DATAGRAM, and nothing may crash or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "proto/dtls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static hd_dtls_cert_t *g_cert_a, *g_cert_b;

/* Moves datagrams between two sessions until nothing is left to send. */
static void pump(hd_dtls_t *a, hd_dtls_t *b, hd_time_t now) {
  uint8_t buf[HD_DTLS_MAX_DATAGRAM];
  for (int round = 0; round < 64; round++) {
    int moved = 0, n;
    while ((n = hd_dtls_poll(a, buf, sizeof buf)) > 0) {
      (void)hd_dtls_feed(b, buf, (size_t)n, now);
      moved = 1;
    }
    while ((n = hd_dtls_poll(b, buf, sizeof buf)) > 0) {
      (void)hd_dtls_feed(a, buf, (size_t)n, now);
      moved = 1;
    }
    if (!moved) return;
  }
}

static void drain_and_check(hd_dtls_t *d) {
  uint8_t buf[HD_DTLS_MAX_DATAGRAM];
  int n;
  while ((n = hd_dtls_poll(d, buf, sizeof buf)) > 0)
    if ((size_t)n > sizeof buf) abort();
  if (n != 0) abort();
  while ((n = hd_dtls_recv(d, buf, sizeof buf)) > 0)
    if ((size_t)n > sizeof buf) abort();
  if (n != 0 && n != HD_ENOSPC) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  if (!g_cert_a && (hd_dtls_cert_generate(&g_cert_a) || hd_dtls_cert_generate(&g_cert_b))) abort();
  int is_server = data[0] & 1, connect_first = data[0] & 2;
  hd_time_t now = HD_SEC(1);
  hd_dtls_t *d = NULL, *peer = NULL;
  if (hd_dtls_new(&d, g_cert_a, is_server, NULL, now)) abort();
  if (connect_first) {
    if (hd_dtls_new(&peer, g_cert_b, !is_server, hd_dtls_cert_fingerprint(g_cert_a), now)) abort();
    pump(d, peer, now);
    if (hd_dtls_state(d) != HD_DTLS_CONNECTED || hd_dtls_state(peer) != HD_DTLS_CONNECTED) abort();
  }
  size_t pos = 1;
  while (pos + 2 <= size) {
    size_t len = (size_t)data[pos] << 8 | data[pos + 1];
    pos += 2;
    if (len > size - pos) len = size - pos;
    int before = hd_dtls_state(d);
    int rc = hd_dtls_feed(d, data + pos, len, now);
    pos += len;
    if (rc != 0 && rc != HD_EPROTO && rc != HD_EAUTH && rc != HD_ESTATE) abort();
    if (rc == HD_ESTATE && before != HD_DTLS_FAILED && before != HD_DTLS_CLOSED) abort();
    int st = hd_dtls_state(d);
    if (st < HD_DTLS_HANDSHAKING || st > HD_DTLS_CLOSED || !hd_dtls_error(d)) abort();
    /* a session never goes back to handshaking */
    if (before != HD_DTLS_HANDSHAKING && st == HD_DTLS_HANDSHAKING) abort();
    if (st == HD_DTLS_CONNECTED) {
      hd_dtls_srtp_keys_t k;
      int krc = hd_dtls_srtp_keys(d, &k);
      if (krc != 0 && krc != HD_EUNSUPPORTED) abort();
      if (krc == 0 && (k.key_len != 28 && k.key_len != 30)) abort();
    }
    drain_and_check(d);
    now += HD_MS(100);
    if (hd_dtls_next_timeout(d) <= now) (void)hd_dtls_handle_timeout(d, now);
  }
  /* whatever the input did, the session can still be closed and freed */
  if (hd_dtls_state(d) == HD_DTLS_CONNECTED) {
    static const uint8_t msg[] = "after fuzz";
    if (hd_dtls_send(d, msg, sizeof msg) != (int)sizeof msg) abort();
    if (peer) {
      pump(d, peer, now);
      uint8_t buf[64];
      (void)hd_dtls_recv(peer, buf, sizeof buf);
    }
    if (hd_dtls_close(d)) abort();
  }
  drain_and_check(d);
  hd_dtls_free(d);
  hd_dtls_free(peer);
  return 0;
}
