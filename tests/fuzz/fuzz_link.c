/* Fuzz target for the node link's parsers (src/overlay/link): a datagram
 * from the network (anyone can send to a media port), opened with a fixed
 * peer key; the message bodies after decryption (a peer with the key may
 * still be buggy); and fragment sequences through reassembly. The first byte
 * picks the parser. Checks: nothing opens without the key, a parsed body
 * stays within its caps (LAYERS in both link-version forms, written back
 * byte for byte), a reassembled message is never longer than its fragments
 * allow. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "overlay/link.h"

static hd_link_self_t g_self, g_other;
static hd_link_peer_t g_peer, g_other_peer;
static hd_link_reasm_t g_reasm;
static int g_init;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_init) {
    hd_link_self_init(&g_self, "fuzz-b", (const uint8_t *)"secret", 6, 1, 0);
    hd_link_self_init(&g_other, "fuzz-a", (const uint8_t *)"secret", 6, 1, 0);
    hd_link_peer_init(&g_peer, &g_self, "fuzz-a");
    hd_link_peer_init(&g_other_peer, &g_other, "fuzz-b");
    hd_link_reasm_init(&g_reasm);
    g_init = 1;
  }
  if (size < 1 || size > 4096) return 0;
  uint8_t buf[4096 + HD_LINK_OVERHEAD];
  size_t n = size - 1;
  memcpy(buf, data + 1, n);
  uint8_t type;
  const uint8_t *pl;
  size_t pl_len;
  switch (data[0] % 4) {
  case 0: /* raw datagram: without the key it must never open */
    if (hd_link_open(&g_self, &g_peer, buf, n, 0, &type, &pl, &pl_len) == 0) abort();
    break;
  case 1: { /* sealed by the real peer: opens, then the body parsers */
    int len = hd_link_seal(&g_other, &g_other_peer, 0, data[0] >> 2, buf, n, buf, sizeof buf);
    if (len < 0) break;
    if (hd_link_open(&g_self, &g_peer, buf, (size_t)len, 0, &type, &pl, &pl_len) != 0 || pl_len != n) abort();
    hd_link_media_t m;
    hd_link_feedback_t f;
    hd_link_hello_t h;
    hd_link_frag_t fr;
    uint64_t room;
    if (hd_link_media_parse(pl, pl_len, &m) == 0 && m.rtp_len + 14 != pl_len) abort();
    if (hd_link_feedback_parse(pl, pl_len, &f) == 0 && f.n_seqs > HD_LINK_MAX_NACK) abort();
    if (hd_link_hello_parse(pl, pl_len, &h) == 0 && h.n_wants > HD_LINK_MAX_WANTS) abort();
    if (hd_link_frag_parse(pl, pl_len, &fr) == 0 && (fr.len > HD_LINK_FRAG_DATA || fr.idx >= fr.count))
      abort();
    hd_link_room_parse(pl, pl_len, &room);
    hd_link_layers_t ly;
    if (hd_link_layers_parse(pl, pl_len, &ly) == 0) {
      /* either form (link version 2: 13 bytes an entry, 3: 17 with the TID
       * shares), within its caps, and written back byte for byte */
      if (ly.n > HD_LINK_MAX_LAYERS || (ly.ver != 2 && ly.ver != 3) ||
          (ly.ver == 2 ? 10u + 13u * ly.n : 10u + 17u * ly.n) != pl_len)
        abort();
      for (int i = 0; i < ly.n; i++)
        if (ly.l[i].n_tids > HD_LINK_TIDS || ly.l[i].tid_cum[0] > ly.l[i].tid_cum[1] ||
            ly.l[i].tid_cum[1] > ly.l[i].tid_cum[2])
          abort();
      static uint8_t again[4096];
      if ((ly.ver == 2 || ly.n <= HD_LINK_MAX_LAYERS_V3) &&
          (hd_link_layers_write(&ly, ly.ver, again, sizeof again) != (int)pl_len ||
           memcmp(again, pl, pl_len) != 0))
        abort();
    }
    break;
  }
  default: { /* a run of fragments: [len byte][fragment body] ... */
    size_t off = 0;
    hd_time_t now = 0;
    while (off < n) {
      size_t l = buf[off++];
      if (l > n - off) l = n - off;
      /* stretch short inputs into full-size fragments so multi-fragment messages are reachable */
      uint8_t f[16 + HD_LINK_FRAG_DATA];
      memset(f, 0xAB, sizeof f);
      memcpy(f, buf + off, l < sizeof f ? l : sizeof f);
      size_t flen = l >= 16 && (buf[off] & 1) ? sizeof f : l;
      hd_link_frag_t fr;
      if (hd_link_frag_parse(f, flen, &fr) == 0) {
        const uint8_t *msg;
        size_t ml;
        uint64_t room;
        if (hd_link_reasm_add(&g_reasm, &fr, now, &msg, &ml, &room) == 1 &&
            ml > (size_t)fr.count * HD_LINK_FRAG_DATA)
          abort();
      }
      off += l;
      now += HD_MS(300);
    }
    break;
  }
  }
  return 0;
}
