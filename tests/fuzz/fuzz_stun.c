/* Fuzz target for the STUN codec (src/proto/stun) and the ICE-lite agent's
 * packet path (src/proto/ice): parse, integrity + fingerprint checks, USERNAME
 * split, and a full hd_ice_feed on arbitrary bytes. Any crash, sanitizer report
 * or broken invariant is a bug. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "proto/ice.h"
#include "proto/stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hd_stun_msg_t m;
  int is = hd_stun_is_stun(data, size);
  int rc = hd_stun_parse(&m, data, size);
  /* The demux test is only stricter than the parser in the first byte (0..3
   * per RFC 7983, vs. any type with the top two bits clear). */
  if (rc == 0 && data[0] <= 3 && !is) abort();
  if (rc == 0) {
    /* Invariants a successful parse promises. */
    if (m.len > size || m.len < HD_STUN_HEADER_LEN || hd_get_u32(data + 4) != HD_STUN_MAGIC_COOKIE) abort();
    if ((m.present & HD_STUN_HAS_MESSAGE_INTEGRITY) && m.integrity_off + 24 > m.len) abort();
    if ((m.present & HD_STUN_HAS_FINGERPRINT) && m.fingerprint_off + 8 != m.len) abort();
    if ((m.present & HD_STUN_HAS_USERNAME) && m.username + m.username_len > (const char *)data + m.len)
      abort();
    if (m.n_unknown > HD_STUN_MAX_UNKNOWN) abort();
    /* The passwords of the seed corpus, so integrity success paths are reached too. */
    (void)hd_stun_check_integrity(&m, data, size, (const uint8_t *)"VOkJxbRl1RmTxUk/WvJxBt", 22);
    (void)hd_stun_check_integrity(&m, data, size, (const uint8_t *)"fuzzpassword0123456789", 22);
    (void)hd_stun_check_fingerprint(&m);
    const char *l, *r;
    size_t ll, rl;
    if (hd_stun_username_split(&m, &l, &ll, &r, &rl) == 0) {
      if (ll + 1 + rl != m.username_len || l != m.username) abort();
    }
  }

  /* The agent: local ufrag/pwd match the Chrome-style seeds. */
  hd_ice_t ice;
  if (hd_ice_init(&ice, "fzLo", "fuzzpassword0123456789", NULL)) abort();
  struct sockaddr_in6 from;
  memset(&from, 0, sizeof from);
  from.sin6_family = AF_INET6;
  from.sin6_port = htons(4242);
  from.sin6_addr.s6_addr[15] = 1;
  uint8_t resp[256];
  size_t rlen = 0;
  rc = hd_ice_feed(&ice, data, size, (const struct sockaddr *)&from, sizeof from, 1000, resp, sizeof resp,
                   &rlen);
  if (rc == 1) {
    /* Our own responses must parse and verify. */
    hd_stun_msg_t out;
    if (rlen > sizeof resp || hd_stun_parse(&out, resp, rlen) || !out.fingerprint_ok) abort();
    if (hd_stun_check_integrity(&out, resp, rlen, (const uint8_t *)"fuzzpassword0123456789", 22)) abort();
  }
  hd_ice_free(&ice);
  return 0;
}
