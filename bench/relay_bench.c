/* bench/relay_bench.c — the CPU cost of one relay hop per packet (issue 16
 * goal: a relay hop costs < 1 ms and < 20% more CPU per packet than a direct
 * node-to-node forward; docs/overlay.md "Cost of a relay hop").
 *
 * Three nodes A, B, C with real link keys (overlay/link.h). For each packet
 * (an RTP packet of --size bytes in a MEDIA body):
 *  - direct_forward: what a direct node-to-node forward costs the two ends:
 *    A keeps a copy for a rescue (sfu/room_relay.c rr_keep_direct: when the
 *    route has a second path, what went into a link that dies goes again on
 *    it), seals the MEDIA datagram to C, C opens it and checks it against
 *    its de-duplication window (the node's on_media before the room);
 *  - relay_hop: what the relay B does with a RELAY datagram from A bound for
 *    C (sfu/room_relay.c on_relay): opens it, parses the source route, feeds
 *    its hop receiver, copies the body into a new datagram, picks C's worker
 *    (the lane), takes the lane's next hop sequence number, rewrites the hop
 *    fields, keeps it for hop repair and seals it to C;
 *  - relay_ends: the rest of the relayed path: A wraps the message in a
 *    RELAY body, picks B's worker by the flow hash (hd_relay_worker; B has
 *    WORKERS of them), keeps it for hop repair and seals it to B; C opens the
 *    datagram from B, parses it, feeds its hop receiver, de-duplicates.
 * Each runs in a function of its own, so that
 *   valgrind --tool=callgrind --toggle-collect=relay_hop build/relay_bench
 * counts its instructions alone (bench/overlay/relay_instr.sh does that for
 * all three and divides by the packet count). Without valgrind it prints ns
 * per packet (machine-load dependent: compare the ratios, not the figures).
 * Each also does the bandwidth-per-link work of its datagrams (issue 16 item
 * 1; overlay/link_bwe.h, as sfu/room_link_bwe.c does it): the sealing node
 * records the datagram for its flow, the opening node notes its arrival and,
 * when a report is due (every 50 ms of the bench's clock, 100 us per packet),
 * makes it, and the sending node takes it into its estimator (that share is
 * counted where the datagram is opened; sealing and opening the report
 * datagram itself, one per 500 packets, is not).
 * UDP send/receive system calls are not included (they are the same for
 * each datagram a node sends or receives: a relay hop adds one receive and
 * one send, a direct forward has one of each too).
 *
 *   build/relay_bench [--packets N] [--size BYTES] [--warmup N] [--json FILE]
 * (--warmup: packets sent directly first, untimed; leave it 0 under callgrind,
 * whose counts are divided by --packets)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/bytes.h"
#include "base/err.h"
#include "overlay/link.h"
#include "overlay/link_bwe.h"
#include "overlay/relay.h"

typedef struct {
  hd_link_self_t self[3];
  hd_link_peer_t peer[3][3]; /* [node][other] */
  hd_hop_tx_t tx_ab, tx_bc, tx_direct;
  hd_hop_rx_t rx_ba, rx_cb;
  hd_dedup_t dd_direct, dd_relay;
  hd_link_bwe_t bwe[3][3]; /* [node][other]: bandwidth per link */
  uint8_t rtp[1500];
  size_t rtp_len;
  int b_worker;  /* B's worker the relayed flow hashes to (hd_relay_worker): the one modelled */
  uint64_t sink; /* keeps the compiler from dropping work */
} bench_t;

enum { A, B, C };
#define WORKERS 2 /* media workers of each node (relaying spreads over them) */
static const char *const names[3] = {"node-a", "node-b", "node-c"};

static size_t media_body(bench_t *b, uint32_t k, uint8_t *out);

static void setup(bench_t *b, size_t size) {
  static const uint8_t secret[32] = "relay bench cluster secret......";
  memset(b, 0, sizeof *b);
  b->rtp_len = size < 12 ? 12 : size > 1200 ? 1200 : size;
  b->rtp[0] = 0x80;
  b->rtp[1] = 96;
  for (size_t i = 12; i < b->rtp_len; i++)
    b->rtp[i] = (uint8_t)(i * 7);
  /* the worker of B that takes the flow A -> C of the room (as relay_origin
   * picks it): B is that worker, so the destination worker A seals in the
   * link header (overlay/link.h, version 2) is the one that opens it */
  uint8_t body[1600];
  size_t bl = media_body(b, 0, body);
  hd_relay_hdr_t h = {.origin = hd_link_id_hash(names[A]),
                      .n_hops = 2,
                      .inner = body,
                      .inner_len = bl,
                      .hops = {hd_link_id_hash(names[B]), hd_link_id_hash(names[C])}};
  b->b_worker = hd_relay_worker(&h, WORKERS);
  for (int i = 0; i < 3; i++)
    if (hd_link_self_init(&b->self[i], names[i], secret, sizeof secret, 1000 + (uint64_t)i,
                          i == B ? b->b_worker : 0) < 0)
      exit(1);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++)
      if (i != j && hd_link_peer_init(&b->peer[i][j], &b->self[i], names[j]) < 0) exit(1);
  for (int i = 0; i < 3; i++) /* each node's bandwidth state lives in the worker modelled (its lane) */
    for (int j = 0; j < 3; j++)
      hd_link_bwe_init(&b->bwe[i][j], i == B ? b->b_worker : 0);
  hd_hop_tx_init(&b->tx_ab);
  hd_hop_tx_init(&b->tx_bc);
  hd_hop_tx_init_n(&b->tx_direct, HD_RELAY_RESCUE_MAX);
  hd_hop_rx_init(&b->rx_ba);
  hd_hop_rx_init(&b->rx_cb);
}

static void teardown(bench_t *b) {
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++)
      if (i != j) hd_link_peer_free(&b->peer[i][j]);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++)
      hd_link_bwe_free(&b->bwe[i][j]);
  hd_hop_tx_free(&b->tx_ab);
  hd_hop_tx_free(&b->tx_bc);
  hd_hop_tx_free(&b->tx_direct);
}

/* The MEDIA body of packet k (RTP sequence number k). */
static size_t media_body(bench_t *b, uint32_t k, uint8_t *out) {
  hd_link_media_t m = {.room = 0x1234, .pub = 0xabcd, .in_idx = 0};
  int hl = hd_link_media_hdr_write(&m, out, 64);
  memcpy(out + hl, b->rtp, b->rtp_len);
  out[hl + 2] = (uint8_t)(k >> 8);
  out[hl + 3] = (uint8_t)k;
  return (size_t)hl + b->rtp_len;
}

static int deliver(hd_dedup_t *d, const uint8_t *pl, size_t len) {
  hd_link_media_t m;
  if (hd_link_media_parse(pl, len, &m) < 0) return 0;
  uint16_t seq = (uint16_t)(m.rtp[2] << 8 | m.rtp[3]);
  return hd_dedup_check(d, 0x11223344, seq);
}

/* Bandwidth per link: node `from` sealed dg to `to`'s worker dst. */
static void bw_sent(bench_t *b, int from, int to, int dst, const uint8_t *dg, size_t len, hd_time_t now) {
  if (hd_link_bwe_on_sent(&b->bwe[from][to], dst, hd_get_be64(dg + 20), len, now) < 0) exit(11);
}

/* ... and `at` opened it: noted, reported when due, the report taken by `from`. */
static void bw_received(bench_t *b, int at, int from, const uint8_t *dg, hd_time_t now) {
  hd_link_bwe_t *x = &b->bwe[at][from];
  hd_link_bwe_on_received(x, hd_get_be64(dg + 20), now, "r", 1);
  if (hd_link_bwe_next_timeout(x) > now) return;
  uint8_t rep[HD_LINK_BWE_FB_HDR + HD_LINK_BWE_FB_MAX * HD_LINK_BWE_FB_ENTRY];
  const void *ret;
  size_t rl;
  int n;
  while ((n = hd_link_bwe_poll(x, now, rep, sizeof rep, &ret, &rl)) > 0)
    if (hd_link_bwe_on_feedback(&b->bwe[from][at], rep, (size_t)n, now) < 0) exit(12);
}

/* A -> C directly: keep for a rescue and seal at A, open and de-duplicate at C. */
__attribute__((noinline)) void direct_forward(bench_t *b, uint32_t k, hd_time_t now) {
  uint8_t body[1600], dg[1600];
  size_t bl = media_body(b, k, body);
  hd_relay_hdr_t rh = {
      .origin = b->self[A].id_hash, .n_hops = 1, .inner_type = HD_LINK_MEDIA, .hops = {b->self[C].id_hash}};
  uint8_t hdr[HD_RELAY_HDR_MAX];
  int rl = hd_relay_hdr_write(&rh, hdr, sizeof hdr);
  hd_hop_tx_keep2(&b->tx_direct, 0, hd_hop_tx_seq(&b->tx_direct, 0), hdr, (size_t)rl, body, bl, now);
  int n = hd_link_seal(&b->self[A], &b->peer[A][C], 0, HD_LINK_MEDIA, body, bl, dg, sizeof dg);
  uint8_t type;
  const uint8_t *pl;
  size_t pl_len;
  if (n > 0) bw_sent(b, A, C, 0, dg, (size_t)n, now);
  if (n < 0 || hd_link_open(&b->self[C], &b->peer[C][A], dg, (size_t)n, now, &type, &pl, &pl_len) < 0)
    exit(3);
  bw_received(b, C, A, dg, now);
  b->sink += (uint64_t)deliver(&b->dd_direct, pl, pl_len);
}

/* A's side of a relayed packet: RELAY body around the MEDIA body, kept, sealed to B. */
__attribute__((noinline)) int relay_origin(bench_t *b, uint32_t k, hd_time_t now, uint8_t *dg, size_t cap) {
  uint8_t body[1600];
  hd_relay_hdr_t h = {.origin = b->self[A].id_hash,
                      .n_hops = 2,
                      .inner_type = HD_LINK_MEDIA,
                      .hops = {b->self[B].id_hash, b->self[C].id_hash}};
  size_t hl = HD_RELAY_FIXED_LEN + 8 * (size_t)h.n_hops;
  size_t bl = hl + media_body(b, k, body + hl);
  h.inner = body + hl;
  h.inner_len = bl - hl;
  int lane = hd_relay_worker(&h, WORKERS);
  h.stream = (uint16_t)(1 + lane);
  h.hop_seq = hd_hop_tx_seq(&b->tx_ab, lane);
  hd_relay_hdr_write(&h, body, sizeof body);
  hd_hop_tx_keep(&b->tx_ab, lane, h.hop_seq, body, bl, now);
  int n = hd_link_seal(&b->self[A], &b->peer[A][B], lane, HD_LINK_RELAY, body, bl, dg, cap);
  if (n > 0) bw_sent(b, A, B, lane, dg, (size_t)n, now);
  return n;
}

/* B: the relay hop (on_relay's work, without the socket). */
__attribute__((noinline)) int relay_hop(bench_t *b, uint8_t *dg, size_t len, hd_time_t now, uint8_t *out,
                                        size_t cap) {
  uint8_t type;
  const uint8_t *pl;
  size_t pl_len;
  if (hd_link_open(&b->self[B], &b->peer[B][A], dg, len, now, &type, &pl, &pl_len) < 0) exit(4);
  bw_received(b, B, A, dg, now);
  hd_relay_hdr_t h;
  if (type != HD_LINK_RELAY || hd_relay_parse(pl, pl_len, &h) < 0 || h.hops[h.hop] != b->self[B].id_hash)
    exit(5);
  if (!hd_hop_rx_feed(&b->rx_ba, h.hop_seq, now)) return 0;
  uint8_t *body = out + HD_LINK_HDR_LEN; /* written where the seal wants it, as send_begin does */
  memcpy(body, pl, pl_len);
  h.hop++;
  int lane = h.hop + 1 == h.n_hops ? h.dst_worker % WORKERS : hd_relay_worker(&h, WORKERS);
  uint32_t seq = hd_hop_tx_seq(&b->tx_bc, lane);
  hd_relay_set_hop(body, h.hop, (uint16_t)(2 + lane), seq, 0);
  hd_hop_tx_keep(&b->tx_bc, lane, seq, body, pl_len, now);
  int n = hd_link_seal(&b->self[B], &b->peer[B][C], lane, HD_LINK_RELAY, body, pl_len, out, cap);
  if (n > 0) bw_sent(b, B, C, lane, out, (size_t)n, now);
  return n;
}

/* C: the destination of a relayed packet. */
__attribute__((noinline)) void relay_dest(bench_t *b, uint8_t *dg, size_t len, hd_time_t now) {
  uint8_t type;
  const uint8_t *pl;
  size_t pl_len;
  if (hd_link_open(&b->self[C], &b->peer[C][B], dg, len, now, &type, &pl, &pl_len) < 0) exit(6);
  bw_received(b, C, B, dg, now);
  hd_relay_hdr_t h;
  if (hd_relay_parse(pl, pl_len, &h) < 0 || !hd_hop_rx_feed(&b->rx_cb, h.hop_seq, now)) exit(7);
  b->sink += (uint64_t)deliver(&b->dd_relay, h.inner, h.inner_len);
}

/* relay_origin + relay_dest: what the relayed path costs its two ends. */
__attribute__((noinline)) void relay_ends(bench_t *b, uint32_t k, hd_time_t now, uint8_t *ab, size_t *ab_len,
                                          const uint8_t *bc, size_t bc_len) {
  if (bc) relay_dest(b, (uint8_t *)bc, bc_len, now);
  if (ab) {
    int n = relay_origin(b, k, now, ab, 1600);
    if (n < 0) exit(8);
    *ab_len = (size_t)n;
  }
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  int packets = 20000, warmup = 0;
  size_t size = 1000;
  const char *json = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--packets") && i + 1 < argc)
      packets = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--size") && i + 1 < argc)
      size = (size_t)atoi(argv[++i]);
    else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
      warmup = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--json") && i + 1 < argc)
      json = argv[++i];
    else {
      fprintf(stderr,
              "usage: relay_bench [--packets N] [--size BYTES (12..1200)] [--warmup N] [--json FILE]\n");
      return 2;
    }
  }
  if (packets < 1 || packets > 10000000) {
    fprintf(stderr, "relay_bench: --packets must be 1..10000000\n");
    return 2;
  }
  bench_t *b = calloc(1, sizeof *b);
  if (!b) return 1;
  setup(b, size);
  hd_time_t t = HD_SEC(1);
  for (int k = 0; k < warmup; k++, t += 100)
    direct_forward(b, (uint32_t)k, t);
  memset(&b->dd_direct, 0, sizeof b->dd_direct);
  double t0 = now_ns();
  for (int k = 0; k < packets; k++, t += 100)
    direct_forward(b, (uint32_t)k, t);
  double t_direct = now_ns() - t0;
  /* the relayed path: A's datagram of packet k goes through B while C takes packet k-1's */
  uint8_t ab[1600], bc[1600];
  size_t ab_len = 0, bc_len = 0;
  double t_hop = 0, t_ends = 0;
  int have_bc = 0;
  for (int k = 0; k <= packets; k++, t += 100) {
    double s = now_ns();
    relay_ends(b, (uint32_t)k, t, k < packets ? ab : NULL, &ab_len, have_bc ? bc : NULL, bc_len);
    double m = now_ns();
    t_ends += m - s;
    have_bc = 0;
    if (k < packets) {
      int n = relay_hop(b, ab, ab_len, t, bc, sizeof bc);
      if (n <= 0) return 9;
      bc_len = (size_t)n;
      have_bc = 1;
      t_hop += now_ns() - m;
    }
  }
  if (b->dd_direct.passed != (uint64_t)packets || b->dd_relay.passed != (uint64_t)packets) {
    fprintf(stderr, "relay_bench: %llu / %llu of %d packets delivered\n",
            (unsigned long long)b->dd_direct.passed, (unsigned long long)b->dd_relay.passed, packets);
    return 10;
  }
  double ns_direct = t_direct / packets, ns_hop = t_hop / packets, ns_ends = t_ends / packets;
  printf("%-16s %10s %12s   (%d packets of %zu RTP bytes; wall time, machine-load dependent)\n", "part",
         "ns/pkt", "vs direct", packets, b->rtp_len);
  printf("%-16s %10.0f %11.2fx\n", "direct_forward", ns_direct, 1.0);
  printf("%-16s %10.0f %11.2fx\n", "relay_hop", ns_hop, ns_hop / ns_direct);
  printf("%-16s %10.0f %11.2fx\n", "relay_ends", ns_ends, ns_ends / ns_direct);
  if (json) {
    FILE *f = fopen(json, "w");
    if (!f) {
      fprintf(stderr, "relay_bench: cannot write %s\n", json);
      return 1;
    }
    fprintf(
        f,
        "{\"packets\": %d, \"rtp_bytes\": %zu, \"ns_per_packet\": {\"direct_forward\": %.0f, \"relay_hop\": "
        "%.0f, \"relay_ends\": %.0f}}\n",
        packets, b->rtp_len, ns_direct, ns_hop, ns_ends);
    fclose(f);
  }
  teardown(b);
  free(b);
  return 0;
}
