#include "free_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void ephemeral_range(int *lo, int *hi) {
  *lo = 32768;
  *hi = 60999;
  FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
  if (!f) return;
  int a, b;
  if (fscanf(f, "%d %d", &a, &b) == 2 && a > 0 && b >= a) {
    *lo = a;
    *hi = b;
  }
  fclose(f);
}

static int free_now(int port) {
  static const int kinds[] = {SOCK_STREAM, SOCK_DGRAM};
  for (int i = 0; i < 2; i++) {
    int fd = socket(AF_INET, kinds[i], 0);
    if (fd < 0) return 0;
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    if (!ok) return 0;
  }
  return 1;
}

int hd_test_free_port(int span) {
  int lo, hi;
  ephemeral_range(&lo, &hi);
  int r0[2] = {10000, hi + 1}, r1[2] = {lo - 1 - span, 65535 - span}, n = 0;
  int from[2], to[2];
  for (int i = 0; i < 2; i++)
    if (r1[i] > r0[i]) from[n] = r0[i], to[n++] = r1[i];
  if (n == 0) from[n] = 1024, to[n++] = 65535 - span;
  /* seeded per process: tests started together pick different numbers */
  unsigned seed = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16) ^ (unsigned)clock();
  for (int tries = 0; tries < 500; tries++) {
    int k = (int)(rand_r(&seed) % (unsigned)n);
    int p = from[k] + (int)(rand_r(&seed) % (unsigned)(to[k] - from[k] + 1));
    int ok = 1;
    for (int q = p; q <= p + span && ok; q++)
      ok = free_now(q);
    if (ok) return p;
  }
  return -1;
}
