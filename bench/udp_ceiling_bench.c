/* udp_ceiling_bench — the machine's ceiling for forwarding: raw UDP packets
 * per second per core on 127.0.0.1, with the batching of Hudong's I/O
 * (io/rtc_udp.c: recvmmsg in batches of 16 on receive, one sendto per
 * datagram on send), and with sendmmsg batches of 16 for comparison (the
 * batched send of the line-rate issue).
 *
 * A sender thread sends 1200-byte datagrams to a receiver thread for a few
 * seconds per mode; each thread's CPU time (CLOCK_THREAD_CPUTIME_ID) gives
 * packets per CPU-second of each side. An SFU pays one receive per input and
 * one send per output, so the send figure is the ceiling of its forwarded
 * packets per core (before any SRTP or logic). Not a test: prints numbers. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define SIZE 1200
#define BATCH 16

static atomic_int g_stop;
static int g_rx_fd;
static unsigned long long g_rx_pkts;
static double g_rx_cpu;

static double thread_cpu(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}
static double mono(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *rx_main(void *arg) {
  (void)arg;
  static char bufs[BATCH][2048];
  struct mmsghdr m[BATCH];
  struct iovec iov[BATCH];
  double c0 = thread_cpu();
  unsigned long long n = 0;
  while (!atomic_load(&g_stop)) {
    for (int i = 0; i < BATCH; i++) {
      iov[i].iov_base = bufs[i];
      iov[i].iov_len = sizeof bufs[i];
      memset(&m[i].msg_hdr, 0, sizeof m[i].msg_hdr);
      m[i].msg_hdr.msg_iov = &iov[i];
      m[i].msg_hdr.msg_iovlen = 1;
    }
    int r = recvmmsg(g_rx_fd, m, BATCH, MSG_WAITFORONE, NULL);
    if (r > 0) n += (unsigned long long)r;
  }
  g_rx_cpu = thread_cpu() - c0;
  g_rx_pkts = n;
  return NULL;
}

typedef struct {
  const char *mode;
  double tx_pps_core, rx_pps_core, tx_pps_wall;
  unsigned long long sent, received;
} result_t;

static result_t run(int use_mmsg, double seconds) {
  result_t res = {.mode = use_mmsg ? "sendmmsg x16" : "sendto"};
  int rx = socket(AF_INET, SOCK_DGRAM, 0), tx = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  int sz = 4 << 20;
  setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  struct timeval rto = {0, 100000}; /* the receiver checks g_stop at least every 100 ms */
  setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &rto, sizeof rto);
  if (bind(rx, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(rx, (struct sockaddr *)&a, &al) < 0) {
    perror("bind");
    exit(1);
  }
  g_rx_fd = rx;
  atomic_store(&g_stop, 0);
  pthread_t th;
  pthread_create(&th, NULL, rx_main, NULL);
  static char pkt[SIZE];
  memset(pkt, 0x5a, sizeof pkt);
  struct mmsghdr m[BATCH];
  struct iovec iov[BATCH];
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = pkt;
    iov[i].iov_len = SIZE;
    memset(&m[i].msg_hdr, 0, sizeof m[i].msg_hdr);
    m[i].msg_hdr.msg_iov = &iov[i];
    m[i].msg_hdr.msg_iovlen = 1;
    m[i].msg_hdr.msg_name = &a;
    m[i].msg_hdr.msg_namelen = sizeof a;
  }
  double c0 = thread_cpu(), t0 = mono(), end = t0 + seconds;
  unsigned long long sent = 0;
  while (mono() < end) {
    for (int k = 0; k < 64; k++) {
      if (use_mmsg) {
        int r = sendmmsg(tx, m, BATCH, 0);
        if (r > 0) sent += (unsigned long long)r;
      } else if (sendto(tx, pkt, SIZE, 0, (struct sockaddr *)&a, sizeof a) == SIZE) {
        sent++;
      }
    }
  }
  double tx_cpu = thread_cpu() - c0, wall = mono() - t0;
  usleep(100000);
  atomic_store(&g_stop, 1);
  pthread_join(th, NULL);
  close(rx);
  close(tx);
  res.sent = sent;
  res.received = g_rx_pkts;
  res.tx_pps_core = tx_cpu > 0 ? (double)sent / tx_cpu : 0;
  res.rx_pps_core = g_rx_cpu > 0 ? (double)g_rx_pkts / g_rx_cpu : 0;
  res.tx_pps_wall = (double)sent / wall;
  return res;
}

int main(int argc, char **argv) {
  double seconds = 3;
  const char *json = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
      seconds = atof(argv[++i]);
    else if (!strcmp(argv[i], "--json") && i + 1 < argc)
      json = argv[++i];
    else {
      fprintf(stderr, "usage: udp_ceiling_bench [--seconds S] [--json FILE]\n");
      return 2;
    }
  }
  result_t r[2] = {run(0, seconds), run(1, seconds)};
  printf("%-14s %14s %16s %16s %12s\n", "send mode", "sent/s (wall)", "send pkts/cpu-s", "recv pkts/cpu-s",
         "delivered");
  for (int i = 0; i < 2; i++)
    printf("%-14s %14.0f %16.0f %16.0f %11.1f%%\n", r[i].mode, r[i].tx_pps_wall, r[i].tx_pps_core, r[i].rx_pps_core,
           r[i].sent ? 100.0 * (double)r[i].received / (double)r[i].sent : 0);
  printf("(%d-byte datagrams on 127.0.0.1; receive: recvmmsg x%d as io/rtc_udp.c)\n", SIZE, BATCH);
  if (json) {
    FILE *f = fopen(json, "w");
    if (!f) return 1;
    /* pps_per_core: the send side with Hudong's current batching (one sendto
     * per datagram) — each forwarded packet is one send */
    fprintf(f,
            "{\"benchmark\":\"udp_ceiling\",\"size\":%d,\"batch\":%d,\"mode\":\"sendto + recvmmsg x%d\","
            "\"pps_per_core\":%.0f,\"recv_pps_per_core\":%.0f,\"sendmmsg_pps_per_core\":%.0f,"
            "\"sendmmsg_recv_pps_per_core\":%.0f}\n",
            SIZE, BATCH, BATCH, r[0].tx_pps_core, r[0].rx_pps_core, r[1].tx_pps_core, r[1].rx_pps_core);
    fclose(f);
  }
  return 0;
}
