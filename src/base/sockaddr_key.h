/* A compact map key for an IPv4/IPv6 address and port (family tag, port,
 * address): what the node's 5-tuple map and the ICE-TCP connection table look
 * peers up by (the local side of the 5-tuple is fixed per socket). */
#ifndef HD_BASE_SOCKADDR_KEY_H
#define HD_BASE_SOCKADDR_KEY_H
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define HD_SOCKADDR_KEY_MAX 20

/* Writes the key of sa into key; returns its length, 0 for another family. */
static inline size_t hd_sockaddr_key(const struct sockaddr *sa, uint8_t key[HD_SOCKADDR_KEY_MAX]) {
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    key[0] = 4;
    memcpy(key + 1, &a->sin_port, 2);
    memcpy(key + 3, &a->sin_addr, 4);
    return 7;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    key[0] = 6;
    memcpy(key + 1, &a->sin6_port, 2);
    memcpy(key + 3, &a->sin6_addr, 16);
    return 19;
  }
  return 0;
}

#endif
