/* The node-to-node link (issue 15 item 3; docs/overlay.md "The link
 * protocol"): how two nodes of a cluster carry a room's media, feedback and
 * state to each other over UDP. Sans-IO: datagrams in, datagrams out.
 *
 * Every datagram is sealed with AES-128-GCM (NIST SP 800-38D) under a key of
 * its direction (sender -> receiver) derived with HMAC-SHA256 from the
 * cluster secret, both node ids and the sender's epoch (one per process
 * start). The 28-byte header is the AEAD's associated data; the 96-bit nonce
 * is the sender's 64-bit sequence number, never reused under one key: every
 * media worker of a node seals with the same key, so each has a lane of its
 * own, the sequence number's top byte (the worker's index), and counts in
 * the low 56 bits. A receiver keeps a 64-packet replay window per peer and
 * lane (as SRTP's, RFC 3711 §3.3.2: one window shared by two workers would
 * take the one that sealed more datagrams for the other's replays) and
 * accepts a new epoch of a peer only when it is newer than the one it knows
 * (a restarted node), so an old epoch's datagrams cannot be replayed.
 * Those windows live in each receiving worker (a worker's peers are its
 * own), so the header also names the worker a datagram is for (bytes 2-3,
 * authenticated with the rest of the header): a datagram captured on its
 * way to one worker and replayed to a sibling worker's port is dropped
 * there, not accepted once more per worker (link version 2; docs/overlay.md
 * "The link protocol" has the rolling upgrade from version 1).
 *
 * The first byte is 0xE1: outside every range RFC 7983 §7 assigns (STUN,
 * DTLS, TURN, RTP/RTCP), so link datagrams share a media worker's UDP port
 * with WebRTC traffic and are told apart by that byte alone.
 *
 * Message bodies (after decryption) are encoded and decoded here too; the
 * room side (sfu/room_remote.c) decides what to send. Messages larger than
 * one datagram (room state) are cut into fragments and put back together by
 * hd_link_reasm_t. */
#ifndef HD_OVERLAY_LINK_H
#define HD_OVERLAY_LINK_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

#define HD_LINK_MAGIC 0xE1
#define HD_LINK_HDR_LEN 28
#define HD_LINK_TAG_LEN 16
#define HD_LINK_OVERHEAD (HD_LINK_HDR_LEN + HD_LINK_TAG_LEN)
#define HD_LINK_ID_MAX 64
#define HD_LINK_SECRET_MAX 128
#define HD_LINK_KEY_LEN 16
/* A fragment's data: fits a 1500-byte datagram with the header, tag and fragment header. */
#define HD_LINK_FRAG_DATA 1200
#define HD_LINK_FRAG_MAX 256 /* fragments of one message */
#define HD_LINK_MSG_MAX (HD_LINK_FRAG_DATA * HD_LINK_FRAG_MAX)
#define HD_LINK_REASM_SLOTS 4           /* messages being put together at once, per peer */
#define HD_LINK_REASM_TIMEOUT HD_SEC(2) /* a message missing fragments this long is dropped */
#define HD_LINK_MAX_WANTS 64            /* publishers one hello can ask for */
#define HD_LINK_MAX_NACK 64             /* sequence numbers in one feedback message */
/* Lanes (senders sharing a node's keys: its media workers, at most
 * HD_MEDIA_WORKERS_MAX); a datagram of a higher lane is dropped as malformed. */
#define HD_LINK_LANES 64
#define HD_LINK_LANE_SHIFT 56 /* the lane is the sequence number's top byte */
/* The link protocol version this build speaks, announced in the registry
 * entry ("link"): 2 = header bytes 2-3 name the destination worker (its
 * index + 1). Version 1 nodes send 0 there and drop anything else.
 * 3 = LAYERS entries carry the layer's temporal-layer shares (below);
 * version 1-2 nodes drop a LAYERS body of any other length than theirs, so
 * they are sent the old form. */
#define HD_LINK_VERSION 3

enum {
  HD_LINK_MEDIA = 1,     /* a publisher's RTP packet (normalised: RTX unwrapped) */
  HD_LINK_FEEDBACK = 2,  /* NACK or keyframe request for a track, towards its publisher's node */
  HD_LINK_STATE = 3,     /* a fragment of the sender's room state (JSON) */
  HD_LINK_HELLO = 4,     /* keepalive per room: the sender's state version and the tracks it wants */
  HD_LINK_STATE_REQ = 5, /* "send me your state of this room" */
  HD_LINK_METER = 6,     /* a link_meter probe or echo (overlay/link_meter.h), per node pair */
  HD_LINK_RELAY = 7, /* a message of types 1-5 or 9-11 on a source route through relays (overlay/relay.h) */
  HD_LINK_HOP_NACK = 8,  /* "resend these relay datagrams of this hop" (overlay/relay.h) */
  HD_LINK_DATA = 9,      /* a segment of a reliable, ordered message stream (overlay/link_rel.h) */
  HD_LINK_DATA_ACK = 10, /* its acknowledgement */
  HD_LINK_LAYERS = 11,   /* the live simulcast layers of the sender's publishers (rate, size, TID shares) */
  HD_LINK_BWE_FB = 12,   /* arrival times of the peer's datagrams, per link (overlay/link_bwe.h) */
};
enum { HD_LINK_FB_NACK = 1, HD_LINK_FB_KEYFRAME = 2 };
enum { HD_LINK_MEDIA_REPAIR = 1 }; /* media flags: a retransmission answering a NACK */

/* This node's side of every link. */
typedef struct {
  char id[HD_LINK_ID_MAX];
  uint64_t id_hash;
  uint64_t epoch;    /* (start time ms << 16) | 16 random bits */
  uint64_t next_seq; /* lane << HD_LINK_LANE_SHIFT | count (from 1) */
  uint8_t secret[HD_LINK_SECRET_MAX];
  size_t secret_len;
} hd_link_self_t;

/* One peer node. */
typedef struct {
  char id[HD_LINK_ID_MAX];
  uint64_t id_hash;
  uint8_t tx_key[HD_LINK_KEY_LEN];
  /* receive side: the peer's epoch seen (0 = none yet), its key, replay window */
  uint64_t rx_epoch;
  uint8_t rx_key[HD_LINK_KEY_LEN];
  struct {
    uint64_t max; /* highest seq of the lane accepted (0: none yet) */
    uint64_t win; /* bit i: max - i accepted */
  } rx_lane[HD_LINK_LANES];
  hd_time_t last_rx;
  /* the peer's link version (its registry entry's "link"; hd_link_peer_init
   * sets HD_LINK_VERSION): below 2 it is sent 0 as the destination worker
   * and may send 0 (unspecified) itself. An authenticated datagram with a
   * destination raises it to 2 at once (ver_seen: 2 once one arrived in the
   * peer's current epoch; the registry's "link" never lowers ver below it) */
  int ver, ver_seen;
  uint64_t rx_ok, rx_auth_fail, rx_replay, rx_old_epoch, tx;
  /* authenticated, but addressed to another worker of this node (a copy
   * replayed to a sibling's port), or unaddressed from a version-2 peer */
  uint64_t rx_misaddressed;
  /* AES-GCM contexts keyed once (tx_key, rx_key): a datagram only sets its nonce */
  void *tx_ctx, *rx_ctx;
} hd_link_peer_t;

/* FNV-1a 64 of a node id: how a datagram names its sender. */
uint64_t hd_link_id_hash(const char *id);
/* lane: which of the node's senders this is (its media worker's index,
 * 0..HD_LINK_LANES-1); every sender of a node has the same id, secret and
 * epoch and a lane of its own. HD_EINVAL: empty id or secret, too long, or a
 * lane out of range. */
int hd_link_self_init(hd_link_self_t *s, const char *id, const uint8_t *secret, size_t secret_len,
                      uint64_t epoch, int lane);
/* Sets up p (any earlier state must have been freed with hd_link_peer_free).
 * HD_EINVAL, HD_ECRYPTO, HD_ENOMEM. */
int hd_link_peer_init(hd_link_peer_t *p, const hd_link_self_t *s, const char *peer_id);
/* Frees p's cipher contexts; p is zeroed. A zeroed p is fine. */
void hd_link_peer_free(hd_link_peer_t *p);
/* Seals one message of `type` with body pl into out, for the peer's media
 * worker dst (the index of the address it goes to: 0..HD_LINK_LANES-1);
 * returns its length, HD_ENOSPC (cap), HD_EINVAL (dst), HD_ECRYPTO. */
int hd_link_seal(hd_link_self_t *s, hd_link_peer_t *p, int dst, uint8_t type, const uint8_t *pl,
                 size_t pl_len, uint8_t *out, size_t cap);
/* 1 if buf starts like a link datagram (its first byte). */
static inline int hd_link_is_link(const uint8_t *buf, size_t len) {
  return len > 0 && buf[0] == HD_LINK_MAGIC;
}
/* The sender's id hash of a datagram (to find its peer): 0 or HD_EPROTO. */
int hd_link_sender(const uint8_t *buf, size_t len, uint64_t *id_hash);
/* Opens a datagram from peer p in place, on the worker whose lane s seals
 * in: *type and the body (*pl points into buf). HD_EPROTO malformed (or a
 * lane >= HD_LINK_LANES, or authenticated but addressed to another worker:
 * counted in p->rx_misaddressed, buf then decrypted; 0 = unaddressed is
 * taken from a version-1 peer only; an addressed one sets p->ver to 2),
 * HD_EAUTH (wrong key, altered), HD_EREPLAY (seen, too old within its lane,
 * or an older epoch of the peer). */
int hd_link_open(const hd_link_self_t *s, hd_link_peer_t *p, uint8_t *buf, size_t len, hd_time_t now,
                 uint8_t *type, const uint8_t **pl, size_t *pl_len);
/* The lane (the sending worker's index) of a datagram hd_link_open took:
 * where an answer to the worker that sent it goes. */
static inline int hd_link_src_lane(const uint8_t *buf) { return buf[20]; }

/* ---- message bodies ---- */

typedef struct {
  uint64_t room;
  uint32_t pub; /* publisher: hd_link_sid_hash of its participant sid */
  uint8_t in_idx, flags;
  const uint8_t *rtp;
  size_t rtp_len;
} hd_link_media_t;
typedef struct {
  uint64_t room;
  uint32_t pub;
  uint8_t in_idx, kind;
  uint16_t n_seqs;
  uint16_t seqs[HD_LINK_MAX_NACK];
} hd_link_feedback_t;
typedef struct {
  uint32_t pub;
  /* bit i: the publisher's in[] index i: a track's head, or one simulcast
   * layer of it (only the layers the receiver's subscribers take cross) */
  uint16_t mask;
} hd_link_want_t;
typedef struct {
  uint64_t room;
  uint32_t version;
  uint16_t n_wants;
  hd_link_want_t wants[HD_LINK_MAX_WANTS];
} hd_link_hello_t;
typedef struct {
  uint64_t room;
  uint32_t msg_id;
  uint16_t idx, count;
  const uint8_t *data;
  size_t len;
} hd_link_frag_t;

#define HD_LINK_MAX_LAYERS 96 /* layer reports in one LAYERS message */
/* ...of link version 3 (17 bytes each, not 13): one message stays within a
 * datagram with the relay header of a 3-hop route */
#define HD_LINK_MAX_LAYERS_V3 64
#define HD_LINK_TIDS 4 /* VP8 TIDs are 2 bits (RFC 7741 §4.2) */
typedef struct {
  uint32_t pub;
  uint8_t in_idx;         /* the layer's in[] index at the publisher's node */
  uint32_t bps;           /* its measured rate */
  uint16_t width, height; /* 0 = not known */
  /* link version 3: its VP8 temporal layers (RFC 7741 TID), n_tids = the
   * highest TID + 1 (0 or 1: none, or not known), tid_cum[k] = the share of
   * TIDs 0..k in bps, in 1/255 (non-decreasing; 255 from the highest on) */
  uint8_t n_tids;
  uint8_t tid_cum[HD_LINK_TIDS - 1];
} hd_link_layer_t;
typedef struct {
  uint64_t room;
  uint16_t n;
  int ver; /* parse: the form it came in (2: without TID shares; 3) */
  hd_link_layer_t l[HD_LINK_MAX_LAYERS];
} hd_link_layers_t;

uint32_t hd_link_sid_hash(const char *sid);
/* Header of a media body; the RTP packet follows (write it at out + the returned length). */
int hd_link_media_hdr_write(const hd_link_media_t *m, uint8_t *out, size_t cap);
int hd_link_media_parse(const uint8_t *pl, size_t len, hd_link_media_t *m);
int hd_link_feedback_write(const hd_link_feedback_t *f, uint8_t *out, size_t cap);
int hd_link_feedback_parse(const uint8_t *pl, size_t len, hd_link_feedback_t *f);
int hd_link_hello_write(const hd_link_hello_t *h, uint8_t *out, size_t cap);
int hd_link_hello_parse(const uint8_t *pl, size_t len, hd_link_hello_t *h);
int hd_link_frag_write(const hd_link_frag_t *f, uint8_t *out, size_t cap);
int hd_link_frag_parse(const uint8_t *pl, size_t len, hd_link_frag_t *f);
/* LAYERS in the form a peer of link version `ver` reads: below 3 without
 * the TID shares (byte for byte what version 2 sent), else with them (at
 * most HD_LINK_MAX_LAYERS_V3 entries: HD_EINVAL). The parser takes both
 * (told apart by the length) and sets m->ver; HD_EPROTO for any other
 * length, n_tids > 4 or shares that decrease. */
int hd_link_layers_write(const hd_link_layers_t *m, int ver, uint8_t *out, size_t cap);
int hd_link_layers_parse(const uint8_t *pl, size_t len, hd_link_layers_t *m);
/* STATE_REQ: the room hash alone. */
int hd_link_room_write(uint64_t room, uint8_t *out, size_t cap);
int hd_link_room_parse(const uint8_t *pl, size_t len, uint64_t *room);

/* Putting fragmented messages back together (one per peer). */
typedef struct {
  int used;
  uint64_t room;
  uint32_t msg_id;
  uint16_t count, got;
  uint64_t have[HD_LINK_FRAG_MAX / 64];
  size_t len; /* bytes so far; the last fragment fixes the total */
  size_t last_len;
  hd_time_t started;
  uint8_t *buf; /* HD_LINK_MSG_MAX, allocated on first use */
} hd_link_reasm_slot_t;
typedef struct {
  hd_link_reasm_slot_t slot[HD_LINK_REASM_SLOTS];
  uint64_t dropped; /* messages given up: timed out, evicted or inconsistent */
} hd_link_reasm_t;

void hd_link_reasm_init(hd_link_reasm_t *r);
void hd_link_reasm_free(hd_link_reasm_t *r);
/* Adds a fragment. 1 with *msg / *len (lent until the next call) and *room
 * when this one completed its message; 0 when more are needed; HD_EPROTO for
 * a fragment inconsistent with its message; HD_ENOMEM. */
int hd_link_reasm_add(hd_link_reasm_t *r, const hd_link_frag_t *f, hd_time_t now, const uint8_t **msg,
                      size_t *len, uint64_t *room);

#endif
