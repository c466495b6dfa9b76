/* Worker shards: one room's viewers sealed and sent by several media workers
 * (issue 17 item 3; docs/performance.md "A room across every core").
 *
 * A room lives on one worker (io/media_workers.h): that worker receives and
 * decrypts the publisher's packets once, and builds each viewer's packet
 * (rewriting, pacing, NACK/RTX cache, TWCC sequence) as before. What costs
 * most per viewer — the SRTP seal and the kernel's UDP send — is handed, for
 * viewers placed on another worker, to that worker: the room worker writes
 * the built packet in clear with its destination into a bounded
 * single-producer/single-consumer ring (base/spsc.h) from it to the shard
 * worker, which seals it with the viewer's own outbound RTP session (a second
 * SRTP session of the viewer's transport, sfu/peer.h hd_peer_clone_rtp_tx,
 * used by that thread alone) and sends it from the room worker's socket (the
 * 5-tuple the viewer's ICE chose). One ring per ordered worker pair, created
 * at its first packet; a full ring is waited on for at most
 * HD_SHARDS_FULL_WAIT_US per flush (yielding the CPU), then drops the packet
 * and counts it (the viewer's NACK repairs it like any loss). No lock on the
 * packet path.
 *
 * Feedback does not move: the viewer's RTCP (NACK, PLI, REMB, TWCC) reaches
 * the room worker's socket and is handled there, with the publisher.
 *
 * Placement: a viewer transport that connects in a room of at least
 * min_room subscribers is given to the worker with the fewest viewers it
 * seals for (ties: not the room's own worker); smaller rooms keep sealing on
 * their worker. A viewer's stream is retired through the same ring, after
 * its last packet, and freed by the shard worker.
 *
 * Threads: hd_shards_attach / _send / _detach / _flush run on the producing
 * (room) worker `from`; hd_shards_run on the consuming worker; _stop and
 * _stats on any thread; _new / _set_worker / _free with no
 * worker running. */
#ifndef HD_IO_WORKER_SHARDS_H
#define HD_IO_WORKER_SHARDS_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "proto/srtp.h"

/* Slots per ring (per ordered worker pair), config media_shard_ring, rounded
 * up to a power of two (base/spsc.h indexes with a mask): 10000 gives 16384
 * (hd_shards_ring_slots). Each slot holds one datagram (~1.5 KB): 16384 slots
 * = 24 MiB per pair that is used (a keyframe of ~50 packets to 300 viewers on
 * the other worker is 15,000). */
#define HD_SHARDS_RING_DEFAULT 16384
#define HD_SHARDS_RING_MAX 65536
/* A full ring: the room worker waits up to this long per flush (yielding)
 * for the shard to make room before it drops what does not fit. */
#define HD_SHARDS_FULL_WAIT_US 2000
/* A consumer takes at most this many packets from one ring per run before it
 * lets its own loop work (it comes back at once). */
#define HD_SHARDS_RUN_BUDGET 2048

typedef struct hd_shards hd_shards_t;
typedef struct hd_shard_stream hd_shard_stream_t;

typedef struct {
  uint64_t handed;       /* packets this worker handed to other workers */
  uint64_t dropped_full; /* ... dropped because the ring to that worker was full */
  uint64_t full_waits;   /* bounded waits (<= HD_SHARDS_FULL_WAIT_US) this worker made for a full ring */
  uint64_t sent;         /* packets this worker sealed and sent for other workers */
  uint64_t bytes;        /* their bytes (sealed) */
  uint64_t send_errors;  /* ... refused by the kernel (full socket buffer) */
  uint64_t seal_errors;  /* ... the seal refused (counted, dropped) */
  uint64_t send_calls;   /* sendmmsg calls for them */
  uint64_t streams;      /* viewers this worker seals for now (its own and others') */
} hd_shards_stats_t;

/* n workers; min_room: the room size from which new viewers are placed
 * (>= 1); ring_cap: slots per ring (1..HD_SHARDS_RING_MAX), rounded up to a
 * power of two. HD_EINVAL / HD_ENOMEM. */
int hd_shards_new(hd_shards_t **out, int n, size_t min_room, size_t ring_cap);
/* The slots a ring of ring_cap (1..HD_SHARDS_RING_MAX) really has: the next
 * power of two; 0 for a value out of range. */
size_t hd_shards_ring_slots(size_t ring_cap);
/* Worker i's socket (viewers of its rooms are reached from it), whether GSO
 * works on it, and the async handle that makes worker i call hd_shards_run. */
void hd_shards_set_worker(hd_shards_t *s, int i, int fd, int gso, uv_async_t *wake);

/* On worker `from`, for a viewer transport that just connected in a room of
 * room_size subscribers: picks the worker that seals for it. Returns 1 when
 * that is another worker — it took rtp_tx (the viewer's second outbound SRTP
 * session) and RTP goes through hd_shards_send(*out, ...) — or 0 when it is
 * `from` (rtp_tx stays the caller's). Either way *out is the viewer's stream,
 * given back with hd_shards_detach. HD_ENOMEM (nothing taken). */
int hd_shards_attach(hd_shards_t *s, int from, size_t room_size, hd_srtp_t *rtp_tx, hd_shard_stream_t **out);
/* Hands one clear RTP packet for the stream's viewer to its shard worker
 * (a hd_peer_set_rtp_out callback: h is the stream). HD_ENOSPC when the ring
 * is full (dropped, counted), HD_EINVAL for a packet over a datagram. */
int hd_shards_send(void *h, const uint8_t *pkt, size_t len, const struct sockaddr *to, socklen_t tolen);
/* The viewer is gone: its stream is retired after the packets already handed. */
void hd_shards_detach(hd_shard_stream_t *st);
/* Producer `from` after each send of its own queue: wakes the workers it
 * handed packets to, and re-tries retirements that found a ring full.
 * Returns the retirements still waiting. */
int hd_shards_flush(hd_shards_t *s, int from);
/* Worker c: seals and sends what the other workers handed it. Returns the
 * packets taken; if a ring still holds more, c is woken again. */
int hd_shards_run(hd_shards_t *s, int c);
/* From now on no worker wakes another or seals for another (any thread), and
 * a producer no longer waits for a full ring (nobody drains it any more:
 * hd_shards_send drops at once). Once every worker has been through a job
 * after this (io/media_workers.c), none touches another's async handle or
 * socket: they may close them. */
void hd_shards_stop(hd_shards_t *s);
void hd_shards_stats(hd_shards_t *s, int i, hd_shards_stats_t *out);
/* With no worker running: frees the rings and every stream still in them. */
void hd_shards_free(hd_shards_t *s);

#endif
