/* Cryptographically secure random bytes (getrandom(2)), for ICE credentials,
 * SSRCs, STUN transaction ids and session ids. */
#ifndef HD_BASE_RAND_H
#define HD_BASE_RAND_H
#include <stddef.h>
#include <stdint.h>

/* Fills buf with n random bytes; returns 0 or HD_EIO. */
int hd_random_bytes(void *buf, size_t n);
uint32_t hd_random_u32(void);
/* Writes n random characters from [A-Za-z0-9] plus a NUL to out (out holds n+1). */
void hd_random_token(char *out, size_t n);

#endif
