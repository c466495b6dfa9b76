/* Test support (not shipped): deterministic randomness for the virtual-clock
 * worlds (client_world.h, pc_world.h). After hd_test_rand_seed(s) every byte
 * hd_random_bytes() (base/rand.h: SSRCs, ICE ufrag/pwd, sequence starts, token
 * ids) and OpenSSL's RAND_bytes/RAND_priv_bytes (DTLS keys, ECDSA nonces, the
 * ClientHello random, SRTP master keys, GCM explicit IVs) hand out comes from
 * one splitmix64 stream seeded with s, so a world run twice from the same seed
 * sends the same datagrams at the same virtual times.
 *
 * The seam is link-time: src/base/rand.c calls the weak symbol
 * hd_rand_test_override, which only this file defines; production binaries do
 * not link it (docs/testing.md, "Determinism"). Never use it outside tests:
 * the stream is predictable by design. Not thread-safe: the worlds are single
 * threaded. */
#ifndef HD_TEST_SEEDED_RAND_H
#define HD_TEST_SEEDED_RAND_H
#include <stdint.h>

/* (Re)starts the deterministic stream at seed, for hd_random_* and OpenSSL. */
void hd_test_rand_seed(uint64_t seed);
/* Back to the OS generator for hd_random_* and OpenSSL's default DRBG. */
void hd_test_rand_unseed(void);

#endif
