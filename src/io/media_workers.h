/* Media workers: the forwarding node spread over N threads (docs/architecture.md
 * "Threads").
 *
 * Each worker has its own libuv loop, its own UDP media socket (port base+i,
 * announced in the ICE candidates of the sessions it serves) and its own
 * hd_node_t. A room lives on exactly one worker, chosen by a hash of (app, room),
 * so every packet of a room is received, forwarded and sent by one thread and
 * the packet path takes no lock.
 *
 * The control thread (HTTP API, /rtc signaling, RTM, webhooks) reaches a
 * worker through hd_media_workers_call: a function run on the worker's
 * loop between two packet batches while the caller waits (one job at a time per
 * worker: the control thread is single), and through its inbox of /rtc
 * messages, posted without waiting (hd_media_workers_rtc_post). A worker reaches the control thread
 * only through its outbox (signaling text, closes, webhook events), bounded in
 * messages and bytes and drained on the control loop. Neither side ever waits
 * on a worker's packets: a job waits at most for the batch in progress. */
#ifndef HD_IO_MEDIA_WORKERS_H
#define HD_IO_MEDIA_WORKERS_H
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "io/ice_tcp.h"
#include "proto/token.h"
#include "sfu/node.h"

#define HD_MEDIA_WORKERS_MAX 64
/* Outbox caps per worker: beyond either, signaling output is dropped and
 * counted (hudong_worker_outbox_dropped_total) — only when the control thread
 * stalls for a long time. */
#define HD_MEDIA_OUTBOX_MAX_MSGS 65536
#define HD_MEDIA_OUTBOX_MAX_BYTES (64u << 20)
/* Inbox caps per worker (posted /rtc messages not yet handled): beyond either
 * the control thread waits for the worker (nothing is dropped). */
#define HD_MEDIA_INBOX_MAX_MSGS 8192
#define HD_MEDIA_INBOX_MAX_BYTES (16u << 20)

typedef struct hd_media_workers hd_media_workers_t;

typedef struct {
  int n;                 /* workers, 1..HD_MEDIA_WORKERS_MAX */
  const char *bind_host; /* media sockets' address */
  int base_port;         /* worker i binds base_port + i; 0 = an ephemeral port each */
  int announce_port;     /* 0 = the bound port; else worker i announces announce_port + i */
  /* Template for every worker's node. Its signal_send/signal_close/on_event
   * are replaced (they run on the workers); max_sessions is shared. */
  hd_node_config_t node;
  hd_dtls_cert_t *cert;
  /* ICE-TCP (io/ice_tcp.h): 1 = worker i also listens on TCP at its UDP port
   * number and offers a passive TCP candidate there (announce_port + i when
   * announce_port is set); ice_tcp_cfg holds its caps (zeros = defaults). */
  int ice_tcp;
  hd_ice_tcp_config_t ice_tcp_cfg;
  /* One room across workers (io/worker_shards.h): a viewer that connects in
   * a room of at least shard_min_room subscribers is sealed and sent by the
   * least-loaded worker. 0 = off (every room's viewers on its worker), also
   * with one worker. shard_ring: slots per worker-pair ring (0 =
   * HD_SHARDS_RING_DEFAULT). */
  size_t shard_min_room, shard_ring;
  uv_loop_t *control_loop;
  /* Worker output, called on the control loop. conn is the id the control side
   * gave hd_media_workers_rtc_message. */
  void (*signal_send)(void *ud, uint64_t conn, const char *text, size_t len);
  void (*signal_close)(void *ud, uint64_t conn, int code, const char *reason);
  void (*on_event)(void *ud, const hd_webhook_event_t *ev);
  void *ud;
} hd_media_workers_config_t;

/* Binds the sockets, creates the nodes and starts the threads. On failure
 * writes a reason to err and returns HD_EIO (a port in use), HD_EINVAL or
 * HD_ENOMEM; nothing is left running. */
int hd_media_workers_start(hd_media_workers_t **out, const hd_media_workers_config_t *cfg, char *err,
                           size_t errcap);
int hd_media_workers_count(const hd_media_workers_t *w);
/* The worker of n that owns room `room` of tenant `app`: FNV-1a over app, a
 * 0xff byte and room (base/hash.h), mod n. Pure, so that the load generator
 * places its rooms as the server will. */
int hd_media_room_worker(const char *app, const char *room, int n);
/* The same for this set of workers. */
int hd_media_workers_for_room(const hd_media_workers_t *w, const char *app, const char *room);
/* The UDP port worker i is bound to. */
int hd_media_workers_port(const hd_media_workers_t *w, int i);

/* Runs fn(node, arg, now) on worker i's thread and waits for it. Afterwards the
 * worker sends what its node queued and re-arms its timer, and the outputs the
 * worker produced so far are delivered here, before this returns (a reply fn
 * caused goes out before whatever the caller does next). Control thread only. */
typedef void (*hd_media_job_fn)(hd_node_t *node, void *arg, hd_time_t now);
void hd_media_workers_call(hd_media_workers_t *w, int i, hd_media_job_fn fn, void *arg);

/* /rtc signaling for the WebSocket connection with id conn (non-zero), which
 * the caller pins to worker i: the worker keeps conn -> participant, so no
 * pointer into a worker's memory ever crosses threads. Returns what
 * hd_node_rtc_message returns; *was_joined tells whether the connection had a
 * participant before the message. Messages on a connection the node has
 * closed (signal_close sent, close pending on the control side) are ignored. */
int hd_media_workers_rtc_message(hd_media_workers_t *w, int i, uint64_t conn, const char *text, size_t len,
                                 hd_token_secret_fn lookup, void *lookup_ud, int64_t unix_now,
                                 int *was_joined);
/* The connection closed: its participant (if any) leaves. */
void hd_media_workers_rtc_closed(hd_media_workers_t *w, int i, uint64_t conn);

/* The same without waiting for worker i (what the node's /rtc endpoint uses):
 * the message is copied into the worker's inbox and handled in order with
 * the connection's other posted messages and its close, after the worker's
 * current packet batch; replies come through the outbox. A message the node
 * refuses closes the connection through signal_close (1000 "left" after a
 * leave, 1013 full, 1011 internal error, 1008 any other refused join). The
 * worker stops taking messages while its outbox is half full until the
 * control loop has drained it, and a full inbox (HD_MEDIA_INBOX_MAX_*) makes
 * the poster wait: back-pressure, no drops. 0 or HD_ENOMEM. Control thread
 * only; lookup must stay valid and give the same answers while the node runs. */
int hd_media_workers_rtc_post(hd_media_workers_t *w, int i, uint64_t conn, const char *text, size_t len,
                              hd_token_secret_fn lookup, void *lookup_ud, int64_t unix_now);
void hd_media_workers_rtc_post_closed(hd_media_workers_t *w, int i, uint64_t conn);

/* Prometheus text: the nodes' metrics summed over workers (hd_node_metrics_t,
 * packets other workers sent for them included), then per-worker packets,
 * rooms, sendmmsg calls and shard hand-offs. Length or HD_ENOSPC. */
int hd_media_workers_metrics_text(hd_media_workers_t *w, char *out, size_t cap);

/* Ends every session and participant on every worker (hd_node_close_all) and
 * delivers the resulting signaling. */
void hd_media_workers_close_all(hd_media_workers_t *w, const char *why);
/* Stops the threads (each drains its socket first), frees everything. NULL ok. */
void hd_media_workers_stop(hd_media_workers_t *w);

#endif
