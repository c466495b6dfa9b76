/* Unit test for the load generator's kernel-drop reader
 * (src/cmd/bench_proc.h bl_proc_udp_drops): a UDP socket with a small
 * receive buffer that nobody reads is sent more than it holds on 127.0.0.1;
 * the drops the reader finds for this process's sockets are exactly what was
 * sent and not received. src/cmd is built into the hudong program only, so
 * its source is compiled in here. */
#include "hd_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cmd/bench_proc.c"

static void test_udp_drops_counts_a_full_receive_buffer(void **st) {
  (void)st;
  unsigned long long d0 = 0;
  int n0 = 0;
  assert_int_equal(bl_proc_udp_drops((int)getpid(), &d0, &n0), 0);
  int tx = socket(AF_INET, SOCK_DGRAM, 0), rx = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  assert_true(tx >= 0 && rx >= 0);
  int small = 4096; /* the kernel doubles it and keeps a floor: a few datagrams */
  setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  struct sockaddr_in a = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  assert_int_equal(bind(rx, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t al = sizeof a;
  getsockname(rx, (struct sockaddr *)&a, &al);
  uint8_t pkt[1200];
  memset(pkt, 7, sizeof pkt);
  int sent = 0;
  for (int i = 0; i < 200; i++)
    if (sendto(tx, pkt, sizeof pkt, 0, (struct sockaddr *)&a, sizeof a) == (ssize_t)sizeof pkt) sent++;
  int got = 0;
  while (recv(rx, pkt, sizeof pkt, 0) > 0)
    got++;
  assert_int_equal(sent, 200);
  assert_true(got < sent); /* the buffer held only some */
  unsigned long long d1 = 0;
  int n1 = 0;
  assert_int_equal(bl_proc_udp_drops((int)getpid(), &d1, &n1), 0);
  assert_int_equal(n1, n0 + 2); /* both new sockets found by their inodes */
  assert_int_equal(d1 - d0, (unsigned long long)(sent - got));
  printf("sent %d, received %d, drops found %llu\n", sent, got, d1 - d0);
  close(tx);
  close(rx);
  /* a process that is not there */
  assert_int_equal(bl_proc_udp_drops(-1, &d1, &n1), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_udp_drops_counts_a_full_receive_buffer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
