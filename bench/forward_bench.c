/* Benchmark of the node's forwarding hot path, in process (no sockets): one
 * publisher and N viewers are connected through real ICE/DTLS/SRTP with the
 * test client, then a recorded stream of the publisher's SRTP datagrams is fed
 * to hd_node_feed and the tx queue drained (as the UDP shell would, minus the
 * syscall). Prints a table and writes JSON (bench/results/forward.json).
 *
 * Side by side in the same run it measures the floor that every forwarded
 * packet pays anyway: one SRTP protect of a same-size packet (AES-GCM on the
 * engine in use: native, or libsrtp with HD_SRTP_ENGINE=libsrtp), so the
 * result reads as "forwarding costs X times an SRTP protect".
 *
 * Usage: forward_bench [--viewers 1,10,50] [--seconds S] [--repeats R] [--json FILE] [--remb KBPS]
 *
 * --repeats R (default 3): each viewer count runs R times (a fresh node each);
 * the table gives the median ns per packet and the range [min-max].
 *
 * --remb KBPS: every viewer reports KBPS as its estimate (REMB) before the
 * replay, and the node's timers run during it at the packets' virtual times,
 * so each viewer's pacer (rtc/pacer.h) is active: the cost of pacing is
 * counted (HUDONG_PACER=0 turns the pacer off for the side-by-side run).
 * Times are the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), not wall time, so
 * that another process on a shared machine does not count; they still vary
 * with cache and frequency. For stable figures count instructions:
 *   valgrind --tool=callgrind --toggle-collect=replay_into_node \
 *     ./build/forward_bench --viewers 50 --seconds 2
 * (Ir of replay_into_node / out_pkts = instructions per forwarded packet). */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/log.h"
#include "proto/dtls.h"
#include "proto/srtp.h"
#include "sfu/node.h"
#include "support/rtc_client.h"

#define MAX_VIEWERS 200
#define MAX_REC 200000

static uint64_t g_remb_bps; /* --remb: the viewers' estimate, 0 = none (no pacing, no timers in the replay) */

typedef struct {
  uint8_t data[HD_DATAGRAM_MAX];
  size_t len;
} rec_t;

static double cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

typedef struct {
  hd_node_t *node;
  hd_rtc_client_t *cl[MAX_VIEWERS + 1];
  struct sockaddr_in addr[MAX_VIEWERS + 1];
  int n;
  hd_time_t now;
  rec_t *rec; /* when set, publisher datagrams to the node are recorded, not delivered */
  size_t n_rec;
  uint64_t out_pkts;
} world_t;

static int find_client(world_t *w, const struct sockaddr_storage *to) {
  const struct sockaddr_in *a = (const struct sockaddr_in *)to;
  for (int i = 0; i < w->n; i++)
    if (a->sin_port == w->addr[i].sin_port) return i;
  return -1;
}

/* Moves datagrams instantly between clients and node until quiet. */
static void pump(world_t *w) {
  for (int round = 0; round < 64; round++) {
    int moved = 0;
    uint8_t buf[HD_DATAGRAM_MAX];
    for (int i = 0; i < w->n; i++) {
      struct sockaddr_storage to;
      socklen_t tl;
      int len;
      while ((len = hd_rtc_client_poll(w->cl[i], buf, sizeof buf, &to, &tl)) > 0) {
        moved = 1;
        if (w->rec && i == 0 && buf[0] >= 128 && buf[0] <= 191 && w->n_rec < MAX_REC) {
          memcpy(w->rec[w->n_rec].data, buf, (size_t)len);
          w->rec[w->n_rec++].len = (size_t)len;
          continue;
        }
        hd_node_feed(w->node, buf, (size_t)len, (struct sockaddr *)&w->addr[i], sizeof w->addr[i], w->now);
      }
    }
    hd_txq_t *q = hd_node_txq(w->node);
    hd_datagram_t *d;
    while ((d = hd_txq_peek(q)) != NULL) {
      moved = 1;
      int i = find_client(w, &d->to);
      if (i >= 0)
        hd_rtc_client_feed(w->cl[i], d->data, d->len, (struct sockaddr *)&w->addr[i], sizeof w->addr[i],
                           w->now);
      hd_txq_pop(q);
    }
    if (!moved) break;
  }
}

static void advance(world_t *w, hd_time_t until) {
  while (w->now < until) {
    w->now += HD_MS(1);
    for (int i = 0; i < w->n; i++)
      if (hd_rtc_client_next_timeout(w->cl[i]) <= w->now) hd_rtc_client_handle_timeout(w->cl[i], w->now);
    if (hd_node_next_timeout(w->node) <= w->now) hd_node_handle_timeout(w->node, w->now);
    pump(w);
  }
}

static int join(world_t *w, int i, int kind, hd_dtls_cert_t *cert) {
  hd_rtc_client_config_t cfg = {.kind = kind, .cert = cert, .video_pkts_per_frame = 8, .video_payload = 1100};
  if (hd_rtc_client_new(&w->cl[i], &cfg) < 0) return -1;
  memset(&w->addr[i], 0, sizeof w->addr[i]);
  w->addr[i].sin_family = AF_INET;
  w->addr[i].sin_port = htons((uint16_t)(20000 + i));
  w->addr[i].sin_addr.s_addr = htonl(0x7f000002);
  char offer[16384], answer[65536], id[HD_SESSION_ID_LEN + 1], err[256];
  int n = hd_rtc_client_offer(w->cl[i], offer, sizeof offer);
  if (n < 0 || hd_node_create_session(
                   w->node, kind == HD_RTC_CLIENT_PUBLISH ? HD_SESSION_PUBLISH : HD_SESSION_PLAY, "bench",
                   "room", offer, (size_t)n, w->now, answer, sizeof answer, id, err, sizeof err) < 0) {
    fprintf(stderr, "join %d: %s\n", i, err);
    return -1;
  }
  if (hd_rtc_client_apply_answer(w->cl[i], answer, strlen(answer), w->now) < 0) return -1;
  w->n = i + 1;
  return 0;
}

typedef struct {
  int viewers;
  size_t in_pkts;
  uint64_t out_pkts;
  double ns_per_in, ns_per_out, srtp_ns, ratio;
  double out_min, out_max; /* range of ns_per_out over the repeats */
} result_t;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double srtp_floor_ns(size_t pkt_len, int iters) {
  uint8_t key[30] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14,
                     15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28};
  hd_srtp_t *s;
  if (hd_srtp_new(&s, HD_SRTP_AEAD_AES_128_GCM, key, key, 28) < 0) return 0;
  uint8_t pkt[HD_DATAGRAM_MAX];
  memset(pkt, 0xab, sizeof pkt);
  double t0 = cpu_ns();
  for (int i = 0; i < iters; i++) {
    pkt[0] = 0x80;
    pkt[1] = 96;
    pkt[2] = (uint8_t)(i >> 8);
    pkt[3] = (uint8_t)i;
    pkt[4] = (uint8_t)(i >> 24); /* timestamp varies so the ROC never matters */
    pkt[8] = 0x11;
    hd_srtp_protect(s, pkt, pkt_len, sizeof pkt);
  }
  double dt = cpu_ns() - t0;
  hd_srtp_free(s);
  return dt / iters;
}

/* The measured part, a function of its own so that callgrind can count just it
 * (--toggle-collect=replay_into_node). Returns the datagrams sent. */
__attribute__((noinline)) static uint64_t replay_into_node(world_t *w, rec_t *rec, size_t n, hd_time_t span) {
  hd_txq_t *q = hd_node_txq(w->node);
  struct sockaddr_in *pa = &w->addr[0];
  uint64_t out = 0;
  for (size_t i = 0; i < n; i++) {
    hd_time_t vt = w->now + (hd_time_t)((double)span * i / (double)n);
    hd_node_feed(w->node, rec[i].data, rec[i].len, (struct sockaddr *)pa, sizeof *pa, vt);
    if (g_remb_bps && hd_node_next_timeout(w->node) <= vt) hd_node_handle_timeout(w->node, vt);
    hd_datagram_t *d;
    while ((d = hd_txq_peek(q)) != NULL) {
      out++;
      hd_txq_pop(q);
    }
  }
  return out;
}

static int run(int viewers, double seconds, hd_dtls_cert_t *node_cert, hd_dtls_cert_t *cl_cert, result_t *r) {
  world_t *w = calloc(1, sizeof *w);
  w->rec = NULL;
  hd_node_config_t ncfg = {
      .rtc_ip = "127.0.0.1", .rtc_port = 7881, .max_sessions = MAX_VIEWERS + 2, .max_viewers = MAX_VIEWERS};
  if (hd_node_new(&w->node, &ncfg, node_cert) < 0) return -1;
  w->now = HD_SEC(1);
  if (join(w, 0, HD_RTC_CLIENT_PUBLISH, cl_cert) < 0) return -1;
  for (int i = 1; i <= viewers; i++)
    if (join(w, i, HD_RTC_CLIENT_PLAY, cl_cert) < 0) return -1;
  advance(w, w->now + HD_MS(500));
  for (int i = 0; i <= viewers; i++)
    if (!hd_rtc_client_connected(w->cl[i])) {
      fprintf(stderr, "client %d did not connect\n", i);
      return -1;
    }
  if (g_remb_bps) { /* every viewer's estimate: the node paces what it sends them */
    for (int i = 1; i <= viewers; i++)
      hd_rtc_client_send_remb(w->cl[i], g_remb_bps);
    advance(w, w->now + HD_MS(20));
  }
  /* record the publisher's stream */
  w->rec = malloc(sizeof(rec_t) * MAX_REC);
  hd_time_t rec_start = w->now;
  advance(w, w->now + (hd_time_t)(seconds * 1e6));
  rec_t *rec = w->rec;
  size_t n = w->n_rec;
  w->rec = NULL;
  /* replay into the node: feed + drain, as the UDP shell does, minus syscalls */
  hd_time_t span = w->now - rec_start;
  double t0 = cpu_ns();
  uint64_t out = replay_into_node(w, rec, n, span);
  double dt = cpu_ns() - t0;
  r->viewers = viewers;
  r->in_pkts = n;
  r->out_pkts = out;
  r->ns_per_in = n ? dt / (double)n : 0;
  r->ns_per_out = out ? dt / (double)out : 0;
  free(rec);
  for (int i = 0; i < w->n; i++)
    hd_rtc_client_free(w->cl[i]);
  hd_node_free(w->node);
  free(w);
  return 0;
}

int main(int argc, char **argv) {
  int counts[16] = {1, 10, 50}, nc = 3, repeats = 3;
  double seconds = 10;
  const char *json = "bench/results/forward.json";
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--viewers") && i + 1 < argc) {
      nc = 0;
      for (char *save = NULL, *t = strtok_r(argv[++i], ",", &save); t && nc < 16;
           t = strtok_r(NULL, ",", &save)) {
        int v = atoi(t);
        if (v >= 1 && v <= MAX_VIEWERS) counts[nc++] = v;
      }
    } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
      seconds = atof(argv[++i]);
    } else if (!strcmp(argv[i], "--repeats") && i + 1 < argc) {
      repeats = atoi(argv[++i]);
      if (repeats < 1 || repeats > 15) {
        fprintf(stderr, "forward_bench: --repeats wants 1..15\n");
        return 2;
      }
    } else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
      json = argv[++i];
    } else if (!strcmp(argv[i], "--remb") && i + 1 < argc) {
      g_remb_bps = (uint64_t)atoll(argv[++i]) * 1000;
    } else {
      fprintf(stderr, "usage: forward_bench [--viewers 1,10,50] [--seconds S] [--repeats R] [--json FILE] "
                      "[--remb KBPS]\n");
      return 2;
    }
  }
  hd_log_set_level(HD_LOG_WARN);
  hd_srtp_global_init();
  const char *pacer_env = getenv("HUDONG_PACER");
  hd_session_set_pacer(!(pacer_env && !strcmp(pacer_env, "0")), 0);
  hd_dtls_cert_t *nc_cert, *cl_cert;
  if (hd_dtls_cert_generate(&nc_cert) < 0 || hd_dtls_cert_generate(&cl_cert) < 0) return 1;
  result_t res[16];
  /* the floor: median of three runs of thread CPU time */
  double fl[3];
  for (int i = 0; i < 3; i++)
    fl[i] = srtp_floor_ns(1150, 100000);
  double floor_ns = fl[0] > fl[1] ? (fl[1] > fl[2] ? fl[1] : (fl[0] > fl[2] ? fl[2] : fl[0]))
                                  : (fl[0] > fl[2] ? fl[0] : (fl[1] > fl[2] ? fl[2] : fl[1]));
  printf("%-8s %10s %12s %14s %22s %12s   (thread CPU; median [range] of %d runs)\n", "viewers", "in_pkts",
         "out_pkts", "ns/in_pkt", "ns/out_pkt", "x srtp_prot", repeats);
  for (int i = 0; i < nc; i++) {
    result_t rr[15];
    double in_ns[15], out_ns[15];
    for (int k = 0; k < repeats; k++) {
      if (run(counts[i], seconds, nc_cert, cl_cert, &rr[k]) < 0) return 1;
      in_ns[k] = rr[k].ns_per_in;
      out_ns[k] = rr[k].ns_per_out;
    }
    qsort(in_ns, (size_t)repeats, sizeof(double), cmp_double);
    qsort(out_ns, (size_t)repeats, sizeof(double), cmp_double);
    res[i] = rr[0];
    res[i].ns_per_in = in_ns[repeats / 2];
    res[i].ns_per_out = out_ns[repeats / 2];
    res[i].out_min = out_ns[0];
    res[i].out_max = out_ns[repeats - 1];
    res[i].srtp_ns = floor_ns;
    res[i].ratio = floor_ns > 0 ? res[i].ns_per_out / floor_ns : 0;
    char range[64];
    snprintf(range, sizeof range, "%.0f [%.0f-%.0f]", res[i].ns_per_out, res[i].out_min, res[i].out_max);
    printf("%-8d %10zu %12llu %14.0f %22s %12.2f\n", res[i].viewers, res[i].in_pkts,
           (unsigned long long)res[i].out_pkts, res[i].ns_per_in, range, res[i].ratio);
  }
  printf("floor: SRTP AES-GCM protect of a 1150-byte packet = %.0f ns (%s engine; thread CPU time, median of "
         "3)\n",
         floor_ns, getenv("HD_SRTP_ENGINE") ? getenv("HD_SRTP_ENGINE") : "default");
  FILE *f = fopen(json, "w");
  if (f) {
    fprintf(f, "{\"benchmark\":\"forward\",\"srtp_protect_ns\":%.1f,\"runs\":[", floor_ns);
    for (int i = 0; i < nc; i++)
      fprintf(f,
              "%s{\"viewers\":%d,\"in_packets\":%zu,\"out_packets\":%llu,\"ns_per_in_packet\":%.1f,"
              "\"ns_per_out_packet\":%.1f,\"ns_per_out_min\":%.1f,\"ns_per_out_max\":%.1f,\"repeats\":%d,"
              "\"ratio_to_srtp_protect\":%.2f}",
              i ? "," : "", res[i].viewers, res[i].in_pkts, (unsigned long long)res[i].out_pkts,
              res[i].ns_per_in, res[i].ns_per_out, res[i].out_min, res[i].out_max, repeats, res[i].ratio);
    fprintf(f, "]}\n");
    fclose(f);
    printf("wrote %s\n", json);
  }
  hd_dtls_cert_free(nc_cert);
  hd_dtls_cert_free(cl_cert);
  return 0;
}
