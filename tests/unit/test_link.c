/* The node link's core (src/overlay/link): sealing and opening between two
 * nodes sharing a cluster secret, tampering, replays and peer restarts
 * (epochs), the message bodies, and putting fragmented room state together
 * in virtual time (docs/overlay.md "The link protocol"). */
#include "hd_test.h"

#include <string.h>

#include "base/err.h"
#include "overlay/link.h"

static const uint8_t SECRET[] = "cluster-secret-0123456789abcdef";
static hd_link_self_t A, B;
static hd_link_peer_t A_B, B_A; /* A's view of B, B's view of A */

static void setup(uint64_t epoch_a, uint64_t epoch_b) {
  hd_link_peer_free(&A_B);
  hd_link_peer_free(&B_A);
  assert_int_equal(hd_link_self_init(&A, "node-a", SECRET, sizeof SECRET - 1, epoch_a, 0), 0);
  assert_int_equal(hd_link_self_init(&B, "node-b", SECRET, sizeof SECRET - 1, epoch_b, 0), 0);
  assert_int_equal(hd_link_peer_init(&A_B, &A, "node-b"), 0);
  assert_int_equal(hd_link_peer_init(&B_A, &B, "node-a"), 0);
}

static int seal_ab(const char *text, uint8_t *out) {
  return hd_link_seal(&A, &A_B, 0, HD_LINK_HELLO, (const uint8_t *)text, strlen(text), out, 1500);
}

static int open_at_b(uint8_t *buf, size_t len, hd_time_t now) {
  uint8_t type;
  const uint8_t *pl;
  size_t pl_len;
  return hd_link_open(&B, &B_A, buf, len, now, &type, &pl, &pl_len);
}

static void test_roundtrip(void **st) {
  (void)st;
  setup(1000, 2000);
  uint8_t d[1500];
  int n = seal_ab("hello over the link", d);
  assert_int_equal(n, HD_LINK_OVERHEAD + 19);
  assert_true(hd_link_is_link(d, (size_t)n));
  assert_int_equal(d[0], 0xE1);                  /* outside RFC 7983's ranges: shares the media port */
  assert_null(memmem(d, (size_t)n, "hello", 5)); /* encrypted */
  uint64_t h;
  assert_int_equal(hd_link_sender(d, (size_t)n, &h), 0);
  assert_true(h == hd_link_id_hash("node-a"));
  uint8_t type;
  const uint8_t *pl;
  size_t pl_len;
  assert_int_equal(hd_link_open(&B, &B_A, d, (size_t)n, HD_MS(5), &type, &pl, &pl_len), 0);
  assert_int_equal(type, HD_LINK_HELLO);
  assert_int_equal(pl_len, 19);
  assert_memory_equal(pl, "hello over the link", 19);
  assert_int_equal(B_A.last_rx, HD_MS(5));
  /* the other direction has its own key and works too */
  n = hd_link_seal(&B, &B_A, 0, HD_LINK_STATE_REQ, (const uint8_t *)"x", 1, d, sizeof d);
  assert_true(n > 0);
  assert_int_equal(hd_link_open(&A, &A_B, d, (size_t)n, 0, &type, &pl, &pl_len), 0);
  assert_int_equal(type, HD_LINK_STATE_REQ);
}

static void test_tamper_and_wrong_secret(void **st) {
  (void)st;
  setup(1000, 2000);
  uint8_t d[1500], c[1500];
  int n = seal_ab("media bytes", d);
  for (int i = 1; i < n; i++) { /* every byte after the magic is covered: header as AAD, body, tag */
    memcpy(c, d, (size_t)n);
    c[i] ^= 0x01;
    int rc = open_at_b(c, (size_t)n, 0);
    assert_true(rc == HD_EAUTH || rc == HD_EPROTO || rc == HD_EREPLAY);
  }
  assert_int_equal(open_at_b(d, (size_t)n, 0), 0); /* the original still opens */
  /* a node with another secret cannot speak to B */
  hd_link_self_t X;
  hd_link_peer_t X_B;
  assert_int_equal(hd_link_self_init(&X, "node-a", (const uint8_t *)"other", 5, 1000, 0), 0);
  assert_int_equal(hd_link_peer_init(&X_B, &X, "node-b"), 0);
  X.next_seq = 100;
  n = hd_link_seal(&X, &X_B, 0, HD_LINK_HELLO, (const uint8_t *)"x", 1, d, sizeof d);
  hd_link_peer_free(&X_B);
  uint64_t fails = B_A.rx_auth_fail;
  assert_int_equal(open_at_b(d, (size_t)n, 0), HD_EAUTH);
  assert_int_equal(B_A.rx_auth_fail, fails + 1);
  /* reflection: A's datagram sent back to A as if B had sent it fails (per-direction keys) */
  n = seal_ab("reflect me", d);
  uint8_t type;
  const uint8_t *pl;
  size_t pl_len;
  assert_int_equal(hd_link_open(&A, &A_B, d, (size_t)n, 0, &type, &pl, &pl_len), HD_EPROTO);
  uint64_t hb = hd_link_id_hash("node-b");
  for (int i = 0; i < 8; i++)
    d[4 + i] = (uint8_t)(hb >> (56 - 8 * i));
  assert_int_equal(hd_link_open(&A, &A_B, d, (size_t)n, 0, &type, &pl, &pl_len), HD_EAUTH);
  /* too short, wrong magic */
  assert_int_equal(open_at_b(d, 10, 0), HD_EPROTO);
  d[0] = 0x80;
  assert_int_equal(open_at_b(d, (size_t)n, 0), HD_EPROTO);
  assert_int_equal(hd_link_seal(&A, &A_B, 0, 1, d, 100, d, 120), HD_ENOSPC);
}

static void test_replay_window(void **st) {
  (void)st;
  setup(1000, 2000);
  uint8_t d[80][200];
  int len[80];
  for (int i = 0; i < 80; i++)
    len[i] = seal_ab("p", d[i]);
  uint8_t c[200];
  memcpy(c, d[0], (size_t)len[0]);
  assert_int_equal(open_at_b(d[0], (size_t)len[0], 0), 0);
  assert_int_equal(open_at_b(c, (size_t)len[0], 0), HD_EREPLAY); /* the same datagram again */
  assert_int_equal(open_at_b(d[10], (size_t)len[10], 0), 0);
  assert_int_equal(open_at_b(d[5], (size_t)len[5], 0), 0); /* late but within the window */
  memcpy(c, d[5], (size_t)len[5]);
  assert_int_equal(open_at_b(d[79], (size_t)len[79], 0), 0);
  assert_int_equal(open_at_b(d[6], (size_t)len[6], 0), HD_EREPLAY); /* 73 behind: too old */
  assert_int_equal(open_at_b(d[70], (size_t)len[70], 0), 0);
  assert_int_equal(B_A.rx_replay, 2);
}

static void test_epochs(void **st) {
  (void)st;
  setup(1000, 2000);
  uint8_t old[200], d[200];
  int ol = seal_ab("before restart", old);
  int n = seal_ab("before restart 2", d);
  assert_int_equal(open_at_b(d, (size_t)n, 0), 0);
  /* A restarts: a newer epoch, its sequence starts over, B follows */
  assert_int_equal(hd_link_self_init(&A, "node-a", SECRET, sizeof SECRET - 1, 5000, 0), 0);
  hd_link_peer_free(&A_B);
  assert_int_equal(hd_link_peer_init(&A_B, &A, "node-b"), 0);
  n = seal_ab("after restart", d);
  assert_int_equal(open_at_b(d, (size_t)n, HD_SEC(1)), 0);
  assert_true(B_A.rx_epoch == 5000);
  /* the old epoch's datagrams cannot be replayed any more */
  assert_int_equal(open_at_b(old, (size_t)ol, HD_SEC(1)), HD_EREPLAY);
  assert_int_equal(B_A.rx_old_epoch, 1);
  /* a forged newer epoch does not move B: only an authenticated datagram does */
  n = seal_ab("x", d);
  d[12] = 0x7f;
  assert_int_equal(open_at_b(d, (size_t)n, HD_SEC(1)), HD_EAUTH);
  assert_true(B_A.rx_epoch == 5000);
  n = seal_ab("still fine", d);
  assert_int_equal(open_at_b(d, (size_t)n, HD_SEC(1)), 0);
}

/* A node's media workers all seal with its keys (one id, one epoch): each
 * in its own lane, so no nonce is used twice and the receiver's replay
 * window keeps them apart. Two workers reaching one worker of the peer is
 * common (a relay's first worker, the measuring worker's probes next to a
 * room's messages, nodes with different worker counts); with one window a
 * busy worker's datagrams pushed the other's out of it for good. */
static void test_lanes(void **st) {
  (void)st;
  setup(1000, 2000); /* A is worker 0 of node-a */
  hd_link_self_t A1; /* worker 1 of node-a */
  hd_link_peer_t A1_B;
  assert_int_equal(hd_link_self_init(&A1, "node-a", SECRET, sizeof SECRET - 1, 1000, 1), 0);
  assert_int_equal(hd_link_peer_init(&A1_B, &A1, "node-b"), 0);
  assert_int_equal(hd_link_self_init(&A1, "node-a", SECRET, sizeof SECRET - 1, 1000, HD_LINK_LANES),
                   HD_EINVAL);
  assert_int_equal(hd_link_self_init(&A1, "node-a", SECRET, sizeof SECRET - 1, 1000, 1), 0);
  uint8_t d0[200], d1[200], c[200];
  int n0 = seal_ab("w0", d0);
  int n1 = hd_link_seal(&A1, &A1_B, 0, HD_LINK_HELLO, (const uint8_t *)"w1", 2, d1, sizeof d1);
  assert_true(n0 > 0 && n1 > 0);
  /* same key, different nonces: the sequence numbers differ in their top byte */
  assert_int_equal(d0[20], 0);
  assert_int_equal(d1[20], 1);
  assert_memory_not_equal(d0 + 20, d1 + 20, 8);
  assert_int_equal(open_at_b(d1, (size_t)n1, 0), 0);
  assert_int_equal(open_at_b(d0, (size_t)n0, 0), 0);
  /* worker 1 sends a lot (media), worker 0 a little (probes): both get through */
  for (int i = 0; i < 200; i++) {
    n1 = hd_link_seal(&A1, &A1_B, 0, HD_LINK_MEDIA, (const uint8_t *)"m", 1, d1, sizeof d1);
    assert_int_equal(open_at_b(d1, (size_t)n1, 0), 0);
  }
  n0 = seal_ab("probe", d0);
  memcpy(c, d0, (size_t)n0);
  assert_int_equal(open_at_b(d0, (size_t)n0, 0), 0);
  assert_int_equal(open_at_b(c, (size_t)n0, 0), HD_EREPLAY); /* each lane still drops its replays */
  assert_int_equal(B_A.rx_replay, 1);
  /* a lane past HD_LINK_LANES is malformed */
  n0 = seal_ab("x", d0);
  d0[20] = HD_LINK_LANES;
  assert_int_equal(open_at_b(d0, (size_t)n0, 0), HD_EPROTO);
  /* node-a restarts (a newer epoch): every lane starts over */
  assert_int_equal(hd_link_self_init(&A, "node-a", SECRET, sizeof SECRET - 1, 5000, 0), 0);
  assert_int_equal(hd_link_self_init(&A1, "node-a", SECRET, sizeof SECRET - 1, 5000, 1), 0);
  hd_link_peer_free(&A_B);
  hd_link_peer_free(&A1_B);
  assert_int_equal(hd_link_peer_init(&A_B, &A, "node-b"), 0);
  assert_int_equal(hd_link_peer_init(&A1_B, &A1, "node-b"), 0);
  n1 = hd_link_seal(&A1, &A1_B, 0, HD_LINK_HELLO, (const uint8_t *)"w1", 2, d1, sizeof d1);
  assert_int_equal(open_at_b(d1, (size_t)n1, HD_SEC(1)), 0);
  n0 = seal_ab("w0 again", d0);
  assert_int_equal(open_at_b(d0, (size_t)n0, HD_SEC(1)), 0);
  hd_link_peer_free(&A1_B);
}

/* Issue 15 review: the replay windows live in each receiving worker, so
 * before the header named its destination worker a datagram captured on its
 * way to worker 1 of node-b and replayed to worker 0's port was accepted
 * there once more (and once per worker) until node-a's epoch changed. Now
 * the destination (bytes 2-3, worker + 1) is in the authenticated header:
 * worker 0 drops the copy (counted), the original path still works, the
 * byte cannot be rewritten (the tag fails), "unaddressed" (0) is taken only
 * from a peer of link version 1, and a version-1 peer is sent 0 (it drops
 * anything else there). */
static void test_destination_worker(void **st) {
  (void)st;
  setup(1000, 2000); /* B: worker 0 of node-b */
  hd_link_self_t B1; /* worker 1 of node-b: its own view of node-a, its own windows */
  hd_link_peer_t B1_A;
  assert_int_equal(hd_link_self_init(&B1, "node-b", SECRET, sizeof SECRET - 1, 2000, 1), 0);
  assert_int_equal(hd_link_peer_init(&B1_A, &B1, "node-a"), 0);
  uint8_t type, d[200], c[200];
  const uint8_t *pl;
  size_t pl_len;
  int n = hd_link_seal(&A, &A_B, 1, HD_LINK_MEDIA, (const uint8_t *)"for w1", 6, d, sizeof d);
  assert_true(n > 0);
  assert_int_equal(d[2], 0);
  assert_int_equal(d[3], 2); /* worker 1, + 1 */
  memcpy(c, d, (size_t)n);
  assert_int_equal(hd_link_open(&B1, &B1_A, d, (size_t)n, 0, &type, &pl, &pl_len), 0);
  assert_memory_equal(pl, "for w1", 6);
  /* the copy replayed to worker 0: refused, counted, worker 0's window untouched */
  memcpy(d, c, (size_t)n);
  assert_int_equal(open_at_b(d, (size_t)n, 0), HD_EPROTO);
  assert_int_equal(B_A.rx_misaddressed, 1);
  assert_int_equal(B_A.rx_ok, 0);
  /* ... and the destination rewritten to worker 0: the tag fails */
  memcpy(d, c, (size_t)n);
  d[3] = 1;
  assert_int_equal(open_at_b(d, (size_t)n, 0), HD_EAUTH);
  /* ... or to 0 ("unaddressed", as version 1 sends): the tag fails too */
  memcpy(d, c, (size_t)n);
  d[3] = 0;
  assert_int_equal(open_at_b(d, (size_t)n, 0), HD_EAUTH);
  assert_int_equal(B_A.rx_misaddressed, 1);
  /* a genuinely unaddressed one: node-a speaks version 2, refused */
  A_B.ver = 1;
  n = hd_link_seal(&A, &A_B, 0, HD_LINK_HELLO, (const uint8_t *)"unaddr", 6, d, sizeof d);
  A_B.ver = HD_LINK_VERSION;
  assert_int_equal(open_at_b(d, (size_t)n, 0), HD_EPROTO);
  assert_int_equal(B_A.rx_misaddressed, 2);
  /* past the last lane: malformed */
  memcpy(d, c, (size_t)n);
  d[3] = HD_LINK_LANES + 1;
  assert_int_equal(open_at_b(d, (size_t)n, 0), HD_EPROTO);
  /* the normal path to worker 0 still works; a destination out of range is not sealed */
  n = seal_ab("for w0", d);
  assert_int_equal(d[3], 1);
  assert_int_equal(open_at_b(d, (size_t)n, 0), 0);
  assert_int_equal(hd_link_seal(&A, &A_B, HD_LINK_LANES, HD_LINK_HELLO, d, 1, d, sizeof d), HD_EINVAL);
  assert_int_equal(hd_link_seal(&A, &A_B, -1, HD_LINK_HELLO, d, 1, d, sizeof d), HD_EINVAL);
  /* rolling upgrade: node-b known as version 1 is sent 0 there (it drops anything else) */
  A_B.ver = 1;
  n = hd_link_seal(&A, &A_B, 1, HD_LINK_HELLO, (const uint8_t *)"old b", 5, d, sizeof d);
  assert_int_equal(d[2] | d[3], 0);
  /* ... and node-a known as version 1 (it sends 0) is taken by any worker of node-b */
  B_A.ver = 1;
  B1_A.ver = 1;
  memcpy(c, d, (size_t)n);
  assert_int_equal(open_at_b(d, (size_t)n, 0), 0);
  assert_int_equal(hd_link_open(&B1, &B1_A, c, (size_t)n, 0, &type, &pl, &pl_len), 0);
  /* a version-1 peer that has upgraded meanwhile is still checked when it addresses a worker */
  A_B.ver = HD_LINK_VERSION;
  n = hd_link_seal(&A, &A_B, 1, HD_LINK_HELLO, (const uint8_t *)"new a", 5, d, sizeof d);
  assert_int_equal(open_at_b(d, (size_t)n, 0), HD_EPROTO);
  assert_int_equal(B_A.rx_misaddressed, 3);
  hd_link_peer_free(&B1_A);
}

/* Forged datagrams naming another worker (or none) are not the peer's: they
 * fail the tag and are counted as rx_auth_fail, never as rx_misaddressed
 * (which, counted before the tag, anyone could inflate). */
static void test_misaddressed_counted_only_when_authentic(void **st) {
  (void)st;
  setup(1000, 2000); /* B: worker 0 of node-b */
  uint8_t d[200];
  for (int i = 0; i < 5; i++) {
    int n = hd_link_seal(&A, &A_B, 0, HD_LINK_HELLO, (const uint8_t *)"hi", 2, d, sizeof d);
    d[3] = (uint8_t)(i % 2 ? 0 : 3); /* unaddressed, or worker 2 */
    d[HD_LINK_HDR_LEN] ^= 0x55;      /* and no valid tag (a forger has no key) */
    assert_int_equal(open_at_b(d, (size_t)n, 0), HD_EAUTH);
  }
  assert_int_equal(B_A.rx_misaddressed, 0);
  assert_int_equal(B_A.rx_auth_fail, 5);
  /* the peer's own datagram to worker 2, replayed here: counted */
  int n = hd_link_seal(&A, &A_B, 2, HD_LINK_HELLO, (const uint8_t *)"hi", 2, d, sizeof d);
  assert_int_equal(open_at_b(d, (size_t)n, 0), HD_EPROTO);
  assert_int_equal(B_A.rx_misaddressed, 1);
  assert_int_equal(B_A.rx_ok, 0);
}

/* A peer known as link version 1 (its registry entry, ~1 s stale during a
 * rolling upgrade) that sends an authenticated datagram with a destination
 * speaks version 2: it is marked so at once and sent addressed datagrams.
 * A forged one does not move it; an unaddressed datagram of a new epoch (the
 * peer restarted) voids what the last run proved (ver_seen), so that its
 * registry entry decides again. */
static void test_addressed_datagram_upgrades_peer(void **st) {
  (void)st;
  setup(1000, 2000);
  uint8_t d[200];
  B_A.ver = 1;
  int n = seal_ab("v2 now", d); /* A_B.ver is 2: addressed to worker 0 */
  assert_int_equal(d[3], 1);
  d[HD_LINK_HDR_LEN] ^= 1; /* forged first: no change */
  assert_int_equal(open_at_b(d, (size_t)n, 0), HD_EAUTH);
  assert_int_equal(B_A.ver, 1);
  assert_int_equal(B_A.ver_seen, 0);
  n = seal_ab("v2 now", d);
  assert_int_equal(open_at_b(d, (size_t)n, 0), 0);
  assert_int_equal(B_A.ver, 2);
  assert_int_equal(B_A.ver_seen, 2);
  /* what node-b sends node-a now names node-a's worker */
  n = hd_link_seal(&B, &B_A, 1, HD_LINK_HELLO, (const uint8_t *)"x", 1, d, sizeof d);
  assert_int_equal(d[2] << 8 | d[3], 2);
  /* the same epoch's unaddressed datagrams are now refused */
  A_B.ver = 1;
  n = seal_ab("old", d);
  assert_int_equal(open_at_b(d, (size_t)n, 0), HD_EPROTO);
  assert_int_equal(B_A.rx_misaddressed, 1);
  assert_int_equal(B_A.ver_seen, 2);
  /* node-a restarts as version 1 (a new epoch, unaddressed): refused while
   * node-b still holds it as version 2, but its proof is void */
  assert_int_equal(hd_link_self_init(&A, "node-a", SECRET, sizeof SECRET - 1, 1001, 0), 0);
  hd_link_peer_free(&A_B);
  assert_int_equal(hd_link_peer_init(&A_B, &A, "node-b"), 0);
  A_B.ver = 1;
  n = seal_ab("rolled back", d);
  assert_int_equal(d[2] | d[3], 0);
  assert_int_equal(open_at_b(d, (size_t)n, 0), HD_EPROTO);
  assert_int_equal(B_A.ver_seen, 0);
  /* ... so its registry entry ("link": 1) takes it back to version 1 */
  B_A.ver = B_A.ver_seen > 1 ? B_A.ver_seen : 1;
  n = seal_ab("rolled back", d);
  assert_int_equal(open_at_b(d, (size_t)n, 0), 0);
  assert_int_equal(B_A.ver, 1);
}

static void test_bodies(void **st) {
  (void)st;
  uint8_t b[1500];
  hd_link_media_t m = {
      .room = 0x1122334455667788ull, .pub = 0xdeadbeef, .in_idx = 3, .flags = HD_LINK_MEDIA_REPAIR};
  int hl = hd_link_media_hdr_write(&m, b, sizeof b);
  assert_int_equal(hl, 14);
  memset(b + hl, 0x80, 12); /* an RTP header's worth */
  hd_link_media_t m2;
  assert_int_equal(hd_link_media_parse(b, (size_t)hl + 12, &m2), 0);
  assert_true(m2.room == m.room && m2.pub == m.pub && m2.in_idx == 3 && m2.flags == 1 && m2.rtp_len == 12);
  assert_int_equal(hd_link_media_parse(b, (size_t)hl + 11, &m2), HD_EPROTO);

  hd_link_feedback_t f = {
      .room = 7, .pub = 9, .in_idx = 1, .kind = HD_LINK_FB_NACK, .n_seqs = 3, .seqs = {65535, 0, 4}};
  int fl = hd_link_feedback_write(&f, b, sizeof b);
  hd_link_feedback_t f2;
  assert_int_equal(hd_link_feedback_parse(b, (size_t)fl, &f2), 0);
  assert_int_equal(f2.n_seqs, 3);
  assert_int_equal(f2.seqs[0], 65535);
  assert_int_equal(hd_link_feedback_parse(b, (size_t)fl - 1, &f2), HD_EPROTO);
  b[13] = 9; /* unknown kind */
  assert_int_equal(hd_link_feedback_parse(b, (size_t)fl, &f2), HD_EPROTO);
  f.n_seqs = HD_LINK_MAX_NACK + 1;
  assert_int_equal(hd_link_feedback_write(&f, b, sizeof b), HD_EINVAL);

  hd_link_hello_t h = {.room = 5, .version = 42, .n_wants = 2};
  h.wants[0].pub = 1;
  h.wants[0].mask = 0x3;
  h.wants[1].pub = 2;
  h.wants[1].mask = 0x8000;
  int l = hd_link_hello_write(&h, b, sizeof b);
  hd_link_hello_t h2;
  assert_int_equal(hd_link_hello_parse(b, (size_t)l, &h2), 0);
  assert_int_equal(h2.version, 42);
  assert_int_equal(h2.wants[1].mask, 0x8000);
  b[12] = 0xff; /* a want count past the cap */
  assert_int_equal(hd_link_hello_parse(b, (size_t)l, &h2), HD_EPROTO);

  uint64_t room;
  assert_int_equal(hd_link_room_write(99, b, sizeof b), 8);
  assert_int_equal(hd_link_room_parse(b, 8, &room), 0);
  assert_true(room == 99);
  assert_int_equal(hd_link_room_parse(b, 9, &room), HD_EPROTO);

  hd_link_frag_t fr = {.room = 1, .msg_id = 2, .idx = 0, .count = 2, .data = b, .len = 100};
  assert_int_equal(hd_link_frag_write(&fr, b + 200, 1300), 116);
  hd_link_frag_t fr2;
  /* a fragment before the last must be full: offsets are idx * HD_LINK_FRAG_DATA */
  assert_int_equal(hd_link_frag_parse(b + 200, 116, &fr2), HD_EPROTO);
  fr.idx = 1;
  assert_int_equal(hd_link_frag_write(&fr, b + 200, 1300), 116);
  assert_int_equal(hd_link_frag_parse(b + 200, 116, &fr2), 0);
  fr.idx = 2; /* idx >= count */
  assert_int_equal(hd_link_frag_write(&fr, b + 200, 1300), HD_EINVAL);
}

/* LAYERS (type 11) in both forms: to a peer of link version 1 or 2 the
 * version-2 bytes exactly (13 per entry: such a node drops any other
 * length), from version 3 on 17 with the TID shares; the parser takes both,
 * tells them apart by the length, and refuses what is neither or out of
 * range. */
static void test_layers_versions(void **st) {
  (void)st;
  hd_link_layers_t m = {.room = 0x0102030405060708ull, .n = 2};
  m.l[0] = (hd_link_layer_t){.pub = 0xAABBCCDD,
                             .in_idx = 1,
                             .bps = 260000,
                             .width = 640,
                             .height = 360,
                             .n_tids = 3,
                             .tid_cum = {94, 155, 255}};
  m.l[1] =
      (hd_link_layer_t){.pub = 0xAABBCCDD, .in_idx = 2, .bps = 1, .n_tids = 0, .tid_cum = {255, 255, 255}};
  /* the version-2 form: room, count, then per entry pub, in[] index, rate, width, height */
  static const uint8_t head[10] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 2};
  static const uint8_t e0[13] = {0xAA, 0xBB, 0xCC, 0xDD, 1, 0, 3, 0xF7, 0xA0, 2, 0x80, 1, 0x68};
  static const uint8_t e1[13] = {0xAA, 0xBB, 0xCC, 0xDD, 2, 0, 0, 0, 1, 0, 0, 0, 0};
  uint8_t b[1500], v2[10 + 2 * 13];
  memcpy(v2, head, 10);
  memcpy(v2 + 10, e0, 13);
  memcpy(v2 + 23, e1, 13);
  for (int ver = 1; ver <= 2; ver++) {
    assert_int_equal(hd_link_layers_write(&m, ver, b, sizeof b), (int)sizeof v2);
    assert_memory_equal(b, v2, sizeof v2);
  }
  hd_link_layers_t p;
  assert_int_equal(hd_link_layers_parse(v2, sizeof v2, &p), 0);
  assert_int_equal(p.ver, 2);
  assert_int_equal(p.n, 2);
  assert_true(p.l[0].bps == 260000 && p.l[0].width == 640 && p.l[0].height == 360 && p.l[0].in_idx == 1);
  assert_int_equal(p.l[0].n_tids, 0); /* a version-2 node says nothing of its TIDs */

  int n = hd_link_layers_write(&m, 3, b, sizeof b);
  assert_int_equal(n, 10 + 2 * 17);
  assert_memory_equal(b, v2, 10 + 13); /* the version-2 entry, then the shares */
  assert_int_equal(b[23], 3);
  assert_memory_equal(b + 24, m.l[0].tid_cum, 3);
  assert_int_equal(hd_link_layers_parse(b, (size_t)n, &p), 0);
  assert_int_equal(p.ver, 3);
  assert_true(p.l[0].n_tids == 3 && p.l[0].tid_cum[0] == 94 && p.l[0].tid_cum[1] == 155 &&
              p.l[0].tid_cum[2] == 255);
  assert_true(p.l[1].pub == 0xAABBCCDD && p.l[1].in_idx == 2 && p.l[1].bps == 1 && p.l[1].n_tids == 0);

  /* neither length, a TID count past 4, shares that decrease: refused */
  assert_int_equal(hd_link_layers_parse(b, (size_t)n - 1, &p), HD_EPROTO);
  assert_int_equal(hd_link_layers_parse(b, (size_t)n + 13, &p), HD_EPROTO);
  b[23] = 5;
  assert_int_equal(hd_link_layers_parse(b, (size_t)n, &p), HD_EPROTO);
  b[23] = 3;
  b[25] = 93; /* TIDs 0-1 less than TID 0 alone */
  assert_int_equal(hd_link_layers_parse(b, (size_t)n, &p), HD_EPROTO);

  /* caps: 96 entries in the old form, 64 in the new (a relayed datagram of
   * a 3-hop route still fits: 43 bytes of relay header) */
  m.n = HD_LINK_MAX_LAYERS;
  assert_int_equal(hd_link_layers_write(&m, 2, b, sizeof b), 10 + 13 * HD_LINK_MAX_LAYERS);
  assert_int_equal(hd_link_layers_write(&m, 3, b, sizeof b), HD_EINVAL);
  m.n = HD_LINK_MAX_LAYERS_V3;
  n = hd_link_layers_write(&m, 3, b, sizeof b);
  assert_true(n > 0 && (size_t)n + 43 <= 1500 - HD_LINK_OVERHEAD);
  assert_int_equal(hd_link_layers_parse(b, (size_t)n, &p), 0);
  assert_int_equal(p.n, HD_LINK_MAX_LAYERS_V3);
  m.n = HD_LINK_MAX_LAYERS + 1;
  assert_int_equal(hd_link_layers_write(&m, 2, b, sizeof b), HD_EINVAL);
}

static uint8_t MSG[HD_LINK_FRAG_DATA * 3 + 17];

static hd_link_frag_t frag_of(uint32_t id, int i, int count, size_t total) {
  size_t off = (size_t)i * HD_LINK_FRAG_DATA, l = total - off;
  if (l > HD_LINK_FRAG_DATA) l = HD_LINK_FRAG_DATA;
  hd_link_frag_t f = {
      .room = 77, .msg_id = id, .idx = (uint16_t)i, .count = (uint16_t)count, .data = MSG + off, .len = l};
  return f;
}

static void test_reassembly(void **st) {
  (void)st;
  for (size_t i = 0; i < sizeof MSG; i++)
    MSG[i] = (uint8_t)(i * 7);
  hd_link_reasm_t r;
  hd_link_reasm_init(&r);
  const uint8_t *msg;
  size_t len;
  uint64_t room;
  /* out of order, with a duplicate */
  int order[] = {3, 1, 1, 0, 2};
  int rc = 0;
  for (int k = 0; k < 5; k++) {
    hd_link_frag_t f = frag_of(1, order[k], 4, sizeof MSG);
    rc = hd_link_reasm_add(&r, &f, HD_MS(k), &msg, &len, &room);
    assert_int_equal(rc, k == 4 ? 1 : 0);
  }
  assert_int_equal(len, sizeof MSG);
  assert_memory_equal(msg, MSG, sizeof MSG);
  assert_true(room == 77);
  /* a message missing a fragment is given up after HD_LINK_REASM_TIMEOUT (virtual time) */
  hd_link_frag_t f = frag_of(2, 0, 4, sizeof MSG);
  assert_int_equal(hd_link_reasm_add(&r, &f, HD_SEC(10), &msg, &len, &room), 0);
  f = frag_of(3, 0, 1, 50); /* a one-fragment message later on */
  assert_int_equal(hd_link_reasm_add(&r, &f, HD_SEC(10) + HD_LINK_REASM_TIMEOUT + 1, &msg, &len, &room), 1);
  assert_int_equal(len, 50);
  assert_int_equal(r.dropped, 1);
  f = frag_of(2, 1, 4, sizeof MSG); /* message 2 starts over: its first fragment is gone */
  assert_int_equal(hd_link_reasm_add(&r, &f, HD_SEC(13), &msg, &len, &room), 0);
  /* more messages at once than slots: the oldest is evicted and counted */
  for (uint32_t id = 10; id < 10 + HD_LINK_REASM_SLOTS; id++) {
    f = frag_of(id, 0, 2, sizeof MSG);
    assert_int_equal(hd_link_reasm_add(&r, &f, HD_SEC(14), &msg, &len, &room), 0);
  }
  assert_int_equal(r.dropped, 2);
  /* a fragment whose count disagrees with its message's */
  f = frag_of(10, 1, 3, sizeof MSG);
  assert_int_equal(hd_link_reasm_add(&r, &f, HD_SEC(14), &msg, &len, &room), HD_EPROTO);
  hd_link_reasm_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_tamper_and_wrong_secret),
      cmocka_unit_test(test_replay_window),
      cmocka_unit_test(test_epochs),
      cmocka_unit_test(test_lanes),
      cmocka_unit_test(test_destination_worker),
      cmocka_unit_test(test_misaddressed_counted_only_when_authentic),
      cmocka_unit_test(test_addressed_datagram_upgrades_peer),
      cmocka_unit_test(test_bodies),
      cmocka_unit_test(test_layers_versions),
      cmocka_unit_test(test_reassembly),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  hd_link_peer_free(&A_B);
  hd_link_peer_free(&B_A);
  return rc;
}
