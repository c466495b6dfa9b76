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
 * packets per core (before any SRTP or logic). Not a test: prints numbers.
 *
 * --gso adds the UDP GSO question (issue 7): sendmmsg x64 to 64 different
 * destinations (127.0.0.2..65, an SFU's fan-out) and to one destination,
 * against sendmsg with UDP_SEGMENT (Linux >= 4.18) of 16 / 4 / 2 segments to
 * one destination (a keyframe or NACK burst to one viewer). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
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
#define MAX_BATCH 64
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h */
#endif

/* Send modes: the first two are the default run. */
enum { M_SENDTO, M_MMSG16, M_MMSG64_FANOUT, M_MMSG64_ONE, M_GSO16, M_GSO4, M_GSO2, M_N };
static const char *const mode_name[M_N] = {"sendto",           "sendmmsg x16",    "sendmmsg x64 fan",
                                           "sendmmsg x64 one", "gso 16 segs one", "gso 4 segs one",
                                           "gso 2 segs one"};

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

static int gso_segs(int mode) { return mode == M_GSO16 ? 16 : mode == M_GSO4 ? 4 : mode == M_GSO2 ? 2 : 0; }

static result_t run(int mode, double seconds) {
  result_t res = {.mode = mode_name[mode]};
  int rx = socket(AF_INET, SOCK_DGRAM, 0), tx = socket(AF_INET, SOCK_DGRAM, 0);
  /* the fan-out mode needs every 127.0.0.x: the receiver listens on any */
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(mode == M_MMSG64_FANOUT ? INADDR_ANY : INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  int sz = 4 << 20;
  setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  struct timeval rto = {0, 100000}; /* the receiver checks g_stop at least every 100 ms */
  setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &rto, sizeof rto);
  if (bind(rx, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(rx, (struct sockaddr *)&a, &al) < 0) {
    perror("bind");
    exit(1);
  }
  if (mode == M_MMSG64_FANOUT) a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  g_rx_fd = rx;
  atomic_store(&g_stop, 0);
  pthread_t th;
  pthread_create(&th, NULL, rx_main, NULL);
  static char pkt[SIZE * 16];
  memset(pkt, 0x5a, sizeof pkt);
  int batch = mode == M_MMSG16 ? BATCH : MAX_BATCH;
  struct mmsghdr m[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  struct sockaddr_in dst[MAX_BATCH];
  for (int i = 0; i < MAX_BATCH; i++) {
    dst[i] = a;
    if (mode == M_MMSG64_FANOUT) dst[i].sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1 + (uint32_t)i);
    iov[i].iov_base = pkt;
    iov[i].iov_len = SIZE;
    memset(&m[i].msg_hdr, 0, sizeof m[i].msg_hdr);
    m[i].msg_hdr.msg_iov = &iov[i];
    m[i].msg_hdr.msg_iovlen = 1;
    m[i].msg_hdr.msg_name = &dst[i];
    m[i].msg_hdr.msg_namelen = sizeof dst[i];
  }
  /* GSO: one sendmsg of segs x SIZE bytes, cut by the kernel into SIZE-byte
   * datagrams (cmsg UDP_SEGMENT, the per-call form of the socket option) */
  int segs = gso_segs(mode);
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } cm;
  struct iovec giov = {.iov_base = pkt, .iov_len = (size_t)segs * SIZE};
  struct msghdr gm = {.msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &giov, .msg_iovlen = 1};
  if (segs) {
    memset(&cm, 0, sizeof cm);
    gm.msg_control = cm.buf;
    gm.msg_controllen = sizeof cm.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&gm);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t gso = SIZE;
    memcpy(CMSG_DATA(c), &gso, sizeof gso);
  }
  double c0 = thread_cpu(), t0 = mono(), end = t0 + seconds;
  unsigned long long sent = 0;
  while (mono() < end) {
    for (int k = 0; k < 64; k++) {
      if (segs) {
        ssize_t r = sendmsg(tx, &gm, 0);
        if (r > 0) sent += (unsigned long long)r / SIZE;
        else if (r < 0 && sent == 0 && k == 0) {
          perror("sendmsg UDP_SEGMENT");
          break;
        }
      } else if (mode != M_SENDTO) {
        int r = sendmmsg(tx, m, (unsigned)batch, 0);
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
  int gso = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--gso"))
      gso = 1;
    else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
      seconds = atof(argv[++i]);
    else if (!strcmp(argv[i], "--json") && i + 1 < argc)
      json = argv[++i];
    else {
      fprintf(stderr, "usage: udp_ceiling_bench [--seconds S] [--json FILE] [--gso]\n");
      return 2;
    }
  }
  if (gso) {
    printf("%-18s %14s %16s %16s %12s\n", "send mode", "sent/s (wall)", "send pkts/cpu-s", "recv pkts/cpu-s",
           "delivered");
    for (int mode = M_MMSG64_FANOUT; mode < M_N; mode++) {
      result_t g = run(mode, seconds);
      printf("%-18s %14.0f %16.0f %16.0f %11.1f%%\n", g.mode, g.tx_pps_wall, g.tx_pps_core, g.rx_pps_core,
             g.sent ? 100.0 * (double)g.received / (double)g.sent : 0);
    }
    printf("(%d-byte datagrams; fan = 64 destinations 127.0.0.2..65, one = one destination)\n", SIZE);
    return 0;
  }
  result_t r[2] = {run(M_SENDTO, seconds), run(M_MMSG16, seconds)};
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
