/* Relaying along the overlay's routes (issue 16 item 3; docs/overlay.md
 * "Relaying"), sans-IO. Four small pieces the node link (sfu/room_remote.c)
 * puts together:
 *
 *  - the RELAY body (link message type 7): a source route (origin, up to two
 *    relays and the destination, the index of the hop being travelled), a
 *    per-hop stream and sequence number, and the message it carries (a MEDIA,
 *    FEEDBACK, HELLO, STATE or STATE_REQ body as it would go directly). Each
 *    hop seals the datagram with its own link key (overlay/link.h), so
 *    authentication and replay protection stay per hop.
 *  - per-hop repair: the sender of a hop keeps what it sent in a ring
 *    (hd_hop_tx_t) and the receiver of the hop (hd_hop_rx_t) tracks the hop
 *    sequence numbers, asks for the missing ones (HOP_NACK, type 8) after a
 *    short reorder wait and again after ~1.5 hop RTTs, up to
 *    HD_HOP_MAX_TRIES times. A loss costs one RTT *of that hop*, not of the
 *    whole path (the reason two short hops beat one long lossy one, as
 *    path_select prices it). The end-to-end NACK of the stand-in session
 *    stays behind it as the last resort.
 *  - de-duplication at the destination (hd_dedup_t): per source SSRC, a
 *    window of RTP sequence numbers already delivered, so a packet that
 *    arrives twice (old and new path while a route changes, duplicate audio
 *    on a second path, a hop repair racing the original) reaches the room
 *    once.
 *  - make-before-break (hd_relay_route_t): when the route to a node changes,
 *    media goes on the new path at once *and* on the old one for
 *    HD_RELAY_OVERLAP, so the receiver never waits for the new path to fill
 *    (no gap, no keyframe); the optional second, disjoint path carries a copy
 *    of the audio when the best path's loss is above a threshold.
 *  - relaying on every worker (hd_relay_worker, hop lanes): a relay node's
 *    worker for a message is picked by a hash of its flow, and each sender
 *    keeps one hop stream per worker of the next hop.
 *  - rescue (hd_relay_rescue): what a node sent into a link shortly before
 *    finding it suspect or down goes again round it. */
#ifndef HD_OVERLAY_RELAY_H
#define HD_OVERLAY_RELAY_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

#define HD_RELAY_MAX_HOPS 3 /* links of a path: at most two relays, then the destination */
#define HD_RELAY_FIXED_LEN 19
#define HD_RELAY_HDR_MAX (HD_RELAY_FIXED_LEN + 8 * HD_RELAY_MAX_HOPS)
enum { HD_RELAY_RETX = 1 }; /* flags: a hop repair (answering a HOP_NACK) */

/* A path as the sender sees it: the nodes after itself (id hashes), the last
 * is the destination; n = 1 is the direct link. */
typedef struct {
  uint8_t n;
  uint64_t hop[HD_RELAY_MAX_HOPS];
} hd_relay_path_t;

typedef struct {
  uint64_t origin;                  /* the node that sent the inner message */
  uint8_t n_hops;                   /* 1..HD_RELAY_MAX_HOPS */
  uint8_t hop;                      /* index in hops[] of the node this datagram is addressed to */
  uint8_t dst_worker;               /* the destination's media worker for the message (its room's) */
  uint8_t flags;                    /* HD_RELAY_RETX */
  uint16_t stream;                  /* the hop sender's stream (one per sending worker) */
  uint32_t hop_seq;                 /* per hop and stream, from 1 */
  uint8_t inner_type;               /* HD_LINK_MEDIA ... HD_LINK_STATE_REQ */
  uint64_t hops[HD_RELAY_MAX_HOPS]; /* relays..., destination */
  const uint8_t *inner;             /* parse: points into the body */
  size_t inner_len;
} hd_relay_hdr_t;

/* Writes the header (without inner) and returns its length; HD_EINVAL, HD_ENOSPC. */
int hd_relay_hdr_write(const hd_relay_hdr_t *h, uint8_t *out, size_t cap);
/* HD_EPROTO for anything malformed (no hops, hop past the end, too short). */
int hd_relay_parse(const uint8_t *pl, size_t len, hd_relay_hdr_t *h);
/* Rewrites, in a body already written, the per-hop fields for the next hop:
 * hop index, stream, sequence number and flags. */
void hd_relay_set_hop(uint8_t *body, uint8_t hop, uint16_t stream, uint32_t hop_seq, uint8_t flags);
/* A detour at a relay whose link to the next hop is down (docs/overlay.md
 * "Relaying"): h arrived at this node (h->hops[h->hop]); `own` is this
 * node's own path to the destination (after itself). Writes to out the
 * header to send on: the hops travelled so far, then `own`, hop index at
 * own's first node. HD_EINVAL when own does not end at the destination,
 * passes this node or starts on `dead` (the route has not moved off the dead
 * link yet); HD_ENOSPC when the whole path would exceed HD_RELAY_MAX_HOPS.
 * No loop is possible: every hop moves the index on and the path never grows
 * past HD_RELAY_MAX_HOPS, so a datagram is sent at most that many times. */
int hd_relay_detour(const hd_relay_hdr_t *h, uint64_t self, uint64_t dead, const hd_relay_path_t *own,
                    hd_relay_hdr_t *out);

/* Which media worker of a relay node takes a relayed message (docs/overlay.md
 * "Relaying on every worker"): by a hash of its origin, destination and room
 * (the first 8 bytes of every room message body), so relayed streams spread
 * over the relay's n_workers (1..) while one room's stream from one origin
 * stays on one worker and keeps its order. The same at every hop, from the
 * header alone. A last hop goes to dst_worker instead (the room's worker at
 * the destination). */
int hd_relay_worker(const hd_relay_hdr_t *h, int n_workers);

/* ---- rescue: what went into a link that went bad ---- */

/* Datagrams re-sent at most per link and worker when the link goes suspect
 * or down: overlay.rescue_max (0: no rescue). */
#define HD_RELAY_RESCUE_MAX 256
/* From when: what was sent into a link from `since` on may be lost. The
 * link's last echo came back at last_echo; the probe it answered crossed the
 * link about an RTT before, so sends older than last_echo - (SRTT + 4
 * RTTVAR) (RFC 6298's margin) got through. */
hd_time_t hd_relay_rescue_since(hd_time_t last_echo, double srtt_ms, double rttvar_ms);
/* A relay body `h` this node sent into its link to `dead` (h->hops[h->hop]
 * == dead: kept for that hop's repair, or a direct message kept as a 1-hop
 * body) goes again, round the dead link: out is the header to send it with
 * (out->hops[out->hop] is the new next hop). This node was its origin
 * (h->hop == 0, h->origin == self): a new path, `own` or else `alt` (this
 * node's route and second path to the destination), whichever does not
 * start on `dead`. This node relayed it (h->hops[h->hop - 1] == self): a
 * detour (hd_relay_detour) on own or alt. HD_EINVAL when neither goes round
 * the dead link (or h was not sent by this node into it), HD_ENOSPC when the
 * path would exceed HD_RELAY_MAX_HOPS. */
int hd_relay_rescue(const hd_relay_hdr_t *h, uint64_t self, uint64_t dead, const hd_relay_path_t *own,
                    const hd_relay_path_t *alt, hd_relay_hdr_t *out);

/* ---- per-hop repair: the sending side ---- */

/* Defaults; the process's values are overlay_params.h's (config "overlay"). */
#define HD_HOP_CACHE 512    /* hop datagrams kept for repair, per next hop and worker: overlay.hop_cache */
#define HD_HOP_PKT_MAX 1472 /* largest relay body kept */
/* older ones are not resent (the end-to-end NACK takes over): overlay.hop_cache_age_ms */
#define HD_HOP_CACHE_AGE HD_SEC(1)
/* Hop streams of one sender towards one next hop: one per media worker of
 * the next hop it sends to (a peer announces at most HD_CLUSTER_MAX_MEDIA =
 * 16 media addresses). Each lane is a stream of its own on the wire (stream
 * id = the sending worker's base id + lane) with its own run of sequence
 * numbers, so a receiving worker sees no holes for datagrams that went to
 * another worker; the lanes share one ring of kept datagrams. */
#define HD_HOP_LANES 16

typedef struct {
  uint32_t seq;
  uint16_t len;
  uint8_t lane;
  hd_time_t at;
  uint8_t data[HD_HOP_PKT_MAX];
} hd_hop_slot_t;

typedef struct {
  uint32_t next_seq[HD_HOP_LANES]; /* the last one given out, per lane */
  uint64_t pos;                    /* datagrams kept so far (64 bits: the ring index never wraps) */
  hd_hop_slot_t *slot;             /* n_slots, allocated on first use */
  uint32_t *lane_pos;              /* [lane][seq % n_slots]: where that seq was kept */
  int n_slots;                     /* overlay.hop_cache when it was allocated (or the size init asked for) */
  hd_time_t max_age;               /* overlay.hop_cache_age_ms, taken at init */
  uint64_t sent, resent, miss;
} hd_hop_tx_t;

void hd_hop_tx_init(hd_hop_tx_t *t);
/* As hd_hop_tx_init with a ring of n_slots (16..HD_OVL_HOP_CACHE_MAX) instead of overlay.hop_cache. */
void hd_hop_tx_init_n(hd_hop_tx_t *t, int n_slots);
void hd_hop_tx_free(hd_hop_tx_t *t);
/* The next hop sequence number of lane (0..HD_HOP_LANES-1; from 1). */
uint32_t hd_hop_tx_seq(hd_hop_tx_t *t, int lane);
/* Keeps body (a whole relay body carrying sequence number seq of lane) for
 * repair. HD_ENOMEM, HD_ENOSPC (longer than HD_HOP_PKT_MAX: not kept),
 * HD_EINVAL (lane out of range). */
int hd_hop_tx_keep(hd_hop_tx_t *t, int lane, uint32_t seq, const uint8_t *body, size_t len, hd_time_t now);
/* The same for a body in two pieces (a header written apart, then the message). */
int hd_hop_tx_keep2(hd_hop_tx_t *t, int lane, uint32_t seq, const uint8_t *a, size_t a_len, const uint8_t *b,
                    size_t b_len, hd_time_t now);
/* The body kept for seq of lane; HD_ENOTFOUND when it was overwritten or is
 * older than max_age (overlay.hop_cache_age_ms). */
int hd_hop_tx_get(hd_hop_tx_t *t, int lane, uint32_t seq, hd_time_t now, uint8_t **body, size_t *len);
/* The datagrams kept at or after `since` (and younger than max_age), oldest
 * first, every lane: the newest `cap` of them when there are more. Pointers
 * into the ring, valid until the next keep. Returns how many. */
int hd_hop_tx_recent(const hd_hop_tx_t *t, hd_time_t since, hd_time_t now, const hd_hop_slot_t **out,
                     int cap);

/* ---- per-hop repair: the receiving side ---- */

#define HD_HOP_WIN 1024        /* sequence numbers remembered (duplicates, late repairs) */
#define HD_HOP_MAX_MISSING 128 /* holes being repaired at once; a larger gap gives up its oldest */
#define HD_HOP_MAX_TRIES 3     /* NACKs per missing datagram: overlay.hop_max_tries */
#define HD_HOP_REORDER                                                                                       \
  HD_MS(5) /* wait this long before the first NACK (reordering): overlay.hop_reorder_ms */
#define HD_HOP_MIN_RETRY                                                                                     \
  HD_MS(20) /* at least this long between two NACKs of one hole: overlay.hop_min_retry_ms */
#define HD_HOP_GIVE_UP HD_MS(1000) /* a hole older than this is lost for this hop: overlay.hop_give_up_ms */
#define HD_HOP_RTT_INIT HD_MS(50)  /* the hop RTT before any repair measured it */
#define HD_HOP_NACK_MAX 64         /* sequence numbers in one HOP_NACK */

typedef struct {
  uint32_t seq;
  uint8_t tries;
  hd_time_t first, next, asked; /* detected, next NACK due, last NACK sent */
} hd_hop_miss_t;

typedef struct {
  int started;
  uint32_t max;
  uint64_t seen[HD_HOP_WIN / 64];
  hd_hop_miss_t miss[HD_HOP_MAX_MISSING];
  int n_miss;
  hd_time_t rtt; /* smoothed from repairs (time from a first NACK to its answer) */
  hd_time_t last_rx;
  hd_time_t reorder, min_retry, give_up; /* overlay_params.h, taken at init */
  int max_tries;
  uint64_t received, dup, holes, nacked, repaired, lost;
} hd_hop_rx_t;

void hd_hop_rx_init(hd_hop_rx_t *r);
/* A hop datagram with sequence number seq arrived. 1: new, deliver it; 0: a
 * duplicate or older than the window, drop it. */
int hd_hop_rx_feed(hd_hop_rx_t *r, uint32_t seq, hd_time_t now);
/* The sequence numbers to ask for now (at most cap); gives up holes past
 * their tries or age. */
int hd_hop_rx_poll(hd_hop_rx_t *r, hd_time_t now, uint32_t *seqs, int cap);
hd_time_t hd_hop_rx_next_timeout(const hd_hop_rx_t *r);

/* HOP_NACK body: stream (2), count (2, 1..HD_HOP_NACK_MAX), count x seq (4). */
int hd_hop_nack_write(uint16_t stream, const uint32_t *seqs, int n, uint8_t *out, size_t cap);
int hd_hop_nack_parse(const uint8_t *pl, size_t len, uint16_t *stream, uint32_t *seqs, int cap);

/* ---- de-duplication at the destination ---- */

#define HD_DEDUP_WIN 1024 /* RTP sequence numbers remembered per source */

typedef struct {
  int started;
  uint32_t ssrc;
  uint16_t max;
  uint64_t seen[HD_DEDUP_WIN / 64];
  uint64_t passed, dropped;
} hd_dedup_t;

/* 1: first time this (ssrc, seq) is seen, deliver; 0: a duplicate. A new
 * SSRC starts the window over; a sequence number older than the window is
 * passed (the session's own checks judge it). */
int hd_dedup_check(hd_dedup_t *d, uint32_t ssrc, uint16_t seq);

/* ---- routes: make-before-break and duplicate audio ---- */

#define HD_RELAY_OVERLAP                                                                                     \
  HD_MS(1000) /* the old path keeps carrying media this long: overlay.relay_overlap_ms */
#define HD_RELAY_DUP_LOSS                                                                                    \
  0.02 /* duplicate audio on the second path at or above this loss: overlay.dup_audio_loss */

typedef struct {
  hd_relay_path_t cur, old, alt;
  hd_time_t old_until;
  hd_time_t overlap; /* overlay.relay_overlap_ms, taken at init */
  int dup_audio;
  int dup_all; /* all media on alt too (the path's first link is suspect) */
  uint64_t changes;
} hd_relay_route_t;

/* Whether audio also goes on the second path: the best path's loss before
 * repair (0..1, averaged over the last ~100 probes of each link) is at or
 * above `threshold` (overlay.dup_audio_loss). At, not above: a path whose
 * probes lost nothing in the window measures exactly 0 (two 0.5% links do
 * about one time in three), so with "above" even a threshold of 0 turned
 * duplicate audio off and on from one heartbeat to the next; 0 now means
 * always (when a disjoint second path exists). */
int hd_relay_dup_audio_on(double path_loss, double threshold);

/* A route to a node starts direct (path {1, {dst}}). */
void hd_relay_route_init(hd_relay_route_t *r, uint64_t dst);
/* The router's choice: path (the best), alt (a disjoint second path, n = 0
 * if none) and whether audio goes on both. A changed path starts the
 * overlap. Returns 1 when the path changed. */
int hd_relay_route_set(hd_relay_route_t *r, const hd_relay_path_t *path, const hd_relay_path_t *alt,
                       int dup_audio, hd_time_t now);
/* While on: all media goes on alt too (when there is one). The control
 * thread turns it on while the path's first link is suspect (link_meter.h:
 * silent past the fast rule, not down yet), so a dying link costs no more
 * than the fast rule's time, and a link that was only late (its far end not
 * scheduled for a while) changes no route. */
void hd_relay_route_dup_all(hd_relay_route_t *r, int on);
/* The paths a message goes on now: always the current one; media also on the
 * old one during the overlap; audio also on alt when duplicating; all media
 * on alt while dup_all. Returns
 * how many (1..3) were written to out. */
int hd_relay_route_paths(const hd_relay_route_t *r, hd_time_t now, int media, int audio,
                         hd_relay_path_t *out);
int hd_relay_path_same(const hd_relay_path_t *a, const hd_relay_path_t *b);

#endif
