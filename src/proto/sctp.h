/* WebRTC data channels: one SCTP association over DTLS (RFC 8261, RFC 8831)
 * with DCEP channel setup (RFC 8832), sans-IO, on top of usrsctp.
 *
 * usrsctp runs with its own threads off (usrsctp_init_nothreads) and AF_CONN
 * sockets: the caller feeds SCTP packets that arrived as DTLS application data
 * with hd_sctp_feed() and takes packets to send (to be DTLS-encrypted) with
 * hd_sctp_poll(). Events (association up/down, channel opened/closed, message)
 * come out of hd_sctp_next_event().
 *
 * Timers: usrsctp 0.9.5 keeps one process-wide timer wheel and exposes no
 * "next timer due" query, only usrsctp_handle_timers(elapsed_ms). So while an
 * association exists, hd_sctp_next_timeout() asks for a fixed tick of
 * HD_SCTP_TICK (10 ms) after the last one; hd_sctp_handle_timeout() advances
 * the shared wheel by the whole milliseconds elapsed on the caller's clock
 * since the last advance (once per tick for all associations together, however
 * many call it). So a process with any association wakes every 10 ms.
 *
 * One leak of real time remains inside usrsctp: it reads gettimeofday() for
 * RTT samples and, in its T3-rtx handler, to check that a chunk has been
 * outstanding for an RTO before retransmitting it. In a node both clocks run
 * together; a test on a virtual clock must make gettimeofday follow it (see
 * tests/unit/test_sctp.c), else nothing is ever retransmitted.
 *
 * Roles: both ends send INIT when created (SCTP simultaneous open, RFC 9260
 * §5.2.1; what Chromium and Janus do), so it does not matter who is first.
 * The DTLS role decides stream-id parity for channels we open ourselves (RFC
 * 8832 §6: DTLS client even, DTLS server odd). A node is the DTLS server and
 * normally only answers channels the browser opens.
 *
 * THREADING: usrsctp is global and not thread-safe in this mode, so every
 * hd_sctp_* call takes one process-wide lock: associations may live on
 * different threads (media workers), each used by one thread at a time. The
 * shared timer wheel is advanced by whichever thread ticks first. usrsctp is
 * initialised by the first hd_sctp_new and finished (usrsctp_finish) when the
 * last association is freed. */
#ifndef HD_PROTO_SCTP_H
#define HD_PROTO_SCTP_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"
#include "proto/dcep.h"

/* SCTP port of WebRTC data channels (RFC 8841 a=sctp-port default). */
#define HD_SCTP_PORT 5000
/* Largest message we send or accept (SDP a=max-message-size, RFC 8841 §6). */
#define HD_SCTP_MAX_MESSAGE (256 * 1024)
/* Streams we ask for in each direction (the association uses the minimum of
 * both ends' numbers). */
#define HD_SCTP_MAX_STREAMS 1024
/* Channels open at once on one association; more are refused (stream reset). */
#define HD_SCTP_MAX_CHANNELS 64
/* SCTP packet size (path MTU discovery off): fits one DTLS record in a
 * 1280-byte IPv6 path with room for DTLS/UDP/IP headers. */
#define HD_SCTP_MTU 1200
/* Outbound packets waiting for hd_sctp_poll; more are dropped (SCTP repairs). */
#define HD_SCTP_OUTQ_CAP 512
/* Events waiting for hd_sctp_next_event, and the message bytes they may hold;
 * more are dropped and counted (drop_events_full). */
#define HD_SCTP_EVQ_CAP 512
#define HD_SCTP_EVQ_MAX_BYTES (2 * 1024 * 1024)
/* Timer tick while an association exists (see header comment). */
#define HD_SCTP_TICK HD_MS(10)

/* Payload protocol identifiers (RFC 8831 §8). Empty messages travel as one
 * zero byte with the *_EMPTY PPID; hd_sctp hides that on both paths. */
enum {
  HD_SCTP_PPID_DCEP = 50,
  HD_SCTP_PPID_STRING = 51,
  HD_SCTP_PPID_BINARY = 53,
  HD_SCTP_PPID_STRING_EMPTY = 56,
  HD_SCTP_PPID_BINARY_EMPTY = 57,
};

enum { HD_SCTP_CONNECTING = 0, HD_SCTP_CONNECTED = 1, HD_SCTP_CLOSED = 2 };

enum {
  HD_SCTP_EV_CONNECTED = 1,      /* association up: channels may be opened */
  HD_SCTP_EV_CHANNEL_OPEN = 2,   /* peer opened a channel (we acked), or our open was acked */
  HD_SCTP_EV_MESSAGE = 3,        /* a whole message on an open channel */
  HD_SCTP_EV_CHANNEL_CLOSED = 4, /* the channel's incoming stream was reset (either side closed) */
  HD_SCTP_EV_CLOSED = 5,         /* association ended (shutdown, abort, lost) */
};

typedef struct {
  int type;        /* HD_SCTP_EV_* */
  uint16_t stream; /* channel events and messages: the SCTP stream id = channel id */
  /* HD_SCTP_EV_MESSAGE */
  uint32_t ppid;       /* HD_SCTP_PPID_STRING/BINARY (never *_EMPTY) */
  int binary;          /* 1 for binary, 0 for a string (UTF-8, not checked) */
  const uint8_t *data; /* lent until the next hd_sctp_next_event/hd_sctp_free; NULL when len 0 */
  size_t len;
  /* HD_SCTP_EV_CHANNEL_OPEN: what the OPEN said (label, protocol, type) */
  int remote_opened; /* 1: the peer opened it, 0: our own open was acked */
  hd_dcep_open_t channel;
} hd_sctp_event_t;

typedef struct {
  uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
  uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
  uint64_t drop_outq_full;   /* outbound packets dropped: caller did not poll */
  uint64_t drop_events_full; /* events/messages dropped: caller did not drain events */
  uint64_t drop_no_channel;  /* messages on a stream with no open channel */
  uint64_t drop_too_large;   /* inbound messages over HD_SCTP_MAX_MESSAGE */
  uint64_t drop_bad_dcep;    /* malformed/unexpected DCEP messages */
  uint64_t refused_channels; /* OPENs refused (table full, bad stream, duplicate) */
} hd_sctp_stats_t;

typedef struct hd_sctp hd_sctp_t;

/* Creates an association endpoint and sends INIT (take it with hd_sctp_poll).
 * Create it once DTLS is connected. dtls_client: our DTLS role (stream-id
 * parity of channels we open). local_port/remote_port: a=sctp-port values
 * (0 = HD_SCTP_PORT). Initialises usrsctp on first use. Returns 0, HD_ENOMEM,
 * or HD_EIO when usrsctp refuses the socket. */
int hd_sctp_new(hd_sctp_t **out, int dtls_client, uint16_t local_port, uint16_t remote_port, hd_time_t now);

/* Aborts the association if still up (an ABORT is produced but cannot be taken
 * any more: the peer notices through DTLS close or timeouts) and frees it.
 * The last free finishes usrsctp. NULL is a no-op. */
void hd_sctp_free(hd_sctp_t *s);

/* Limits the size of messages we send to the peer's a=max-message-size
 * (0 = the RFC 8841 §6.1 default of 64 KB; never above HD_SCTP_MAX_MESSAGE). */
void hd_sctp_set_remote_max_message(hd_sctp_t *s, size_t max);

/* Feeds one SCTP packet (the plaintext of a DTLS application data record).
 * Processing may queue packets (hd_sctp_poll) and events (hd_sctp_next_event).
 * Returns 0, HD_EINVAL for an empty/oversized packet, HD_ECLOSED after the
 * association ended. usrsctp drops malformed packets silently. */
int hd_sctp_feed(hd_sctp_t *s, const uint8_t *pkt, size_t len, hd_time_t now);

/* Copies the next outbound SCTP packet (at most HD_SCTP_MTU bytes) into out.
 * Returns its length, 0 when none, HD_ENOSPC if cap is too small (it stays). */
int hd_sctp_poll(hd_sctp_t *s, uint8_t *out, size_t cap);

/* Takes the next event. Returns 1 with *ev filled, 0 when none. Drain events
 * after every feed, timeout, send and close. */
int hd_sctp_next_event(hd_sctp_t *s, hd_sctp_event_t *ev);

/* HD_SCTP_CONNECTING, HD_SCTP_CONNECTED or HD_SCTP_CLOSED. */
int hd_sctp_state(const hd_sctp_t *s);

/* Opens a channel from our side: sends DATA_CHANNEL_OPEN on the lowest free
 * stream id of our parity. *open gives label, protocol, type, reliability,
 * priority. Returns the stream id (>= 0); HD_ESTATE unless CONNECTED, HD_EINVAL
 * for a bad type/label, HD_ENOSPC when no stream id or table slot is free.
 * Messages may be sent at once (ordered until the ACK, RFC 8832 §6);
 * HD_SCTP_EV_CHANNEL_OPEN with remote_opened 0 reports the ACK. */
int hd_sctp_open_channel(hd_sctp_t *s, const hd_dcep_open_t *open);

/* Sends one message on an open channel with the channel's reliability and
 * ordering. binary: 1 = binary PPID, 0 = string. len 0 is allowed (sent as
 * the *_EMPTY PPID). Returns len, or:
 *   HD_ENOTFOUND  no open channel on that stream (or it is closing)
 *   HD_EINVAL     len over the max message size (ours, HD_SCTP_MAX_MESSAGE, or
 *                 the peer's, hd_sctp_set_remote_max_message); nothing sent
 *   HD_EAGAIN     send buffer full (the peer is not keeping up); nothing sent
 *   HD_ESTATE     association not CONNECTED
 *   HD_EIO        other usrsctp error */
int hd_sctp_send(hd_sctp_t *s, uint16_t stream, const void *data, size_t len, int binary);

/* Closes a channel by resetting its outgoing stream (RFC 8831 §6.7); the peer
 * resets its own in turn, which reports HD_SCTP_EV_CHANNEL_CLOSED here too.
 * Returns 0, HD_ENOTFOUND if no such channel, HD_ESTATE unless CONNECTED. */
int hd_sctp_close_channel(hd_sctp_t *s, uint16_t stream);

/* Label of the open channel on `stream`, or NULL. */
const char *hd_sctp_channel_label(const hd_sctp_t *s, uint16_t stream);
/* DCEP channel type of the open channel on `stream`, or a negative HD_ENOTFOUND. */
int hd_sctp_channel_type(const hd_sctp_t *s, uint16_t stream);

/* When to call hd_sctp_handle_timeout: now-ish when packets or events are
 * waiting (another association's timer may have produced them), else the next
 * HD_SCTP_TICK while not CLOSED; HD_TIME_NEVER when CLOSED. */
hd_time_t hd_sctp_next_timeout(const hd_sctp_t *s);

/* Advances usrsctp's shared timer wheel to `now` (see header comment) and
 * retries pending stream resets. Calling it early is harmless. */
void hd_sctp_handle_timeout(hd_sctp_t *s, hd_time_t now);

/* Counters of this association. */
const hd_sctp_stats_t *hd_sctp_stats(const hd_sctp_t *s);

/* Associations alive in the process (0 once usrsctp is finished). */
int hd_sctp_live_count(void);

#endif
