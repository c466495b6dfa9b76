/* TURN credentials in the style of the "TURN REST API"
 * (draft-uberti-behave-turn-rest-00 §2.2), as coturn's `use-auth-secret` /
 * `static-auth-secret` checks them: the node and the TURN server share a
 * secret, and the node mints short-lived credentials without talking to it.
 *
 *   username   = "<expiry unix seconds>:<identity>"
 *   credential = base64(HMAC-SHA1(shared secret, username))   (RFC 4648 §4)
 *
 * The TURN server then uses them as ordinary long-term credentials (RFC 8489
 * §9.2) and refuses a username whose timestamp has passed. Pure function. */
#ifndef HD_PROTO_TURN_CRED_H
#define HD_PROTO_TURN_CRED_H
#include <stddef.h>
#include <stdint.h>

/* base64 of a 20-byte HMAC-SHA1, with its NUL */
#define HD_TURN_CRED_LEN 29

/* Writes username and credential for `identity`, valid until `expiry` (Unix
 * seconds). HD_ENOSPC when user_cap is too small for the username,
 * HD_EINVAL for an empty secret or a negative expiry, HD_ECRYPTO if the HMAC
 * fails. */
int hd_turn_cred_mint(const char *secret, const char *identity, int64_t expiry, char *user, size_t user_cap,
                      char cred[HD_TURN_CRED_LEN]);

#endif
