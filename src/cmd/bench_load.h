/* `hudong bench load` internals shared by the command (bench_cmd.c: legs,
 * PeerConnections, UDP, media, accounting, report; the Hudong target) and the
 * Janus VideoRoom target (bench_janus.c). Private to src/cmd.
 *
 * A "leg" is one PeerConnection with its own UDP socket and its own signaling
 * session: a publisher (audio and/or video, sendonly) or one part of a
 * subscriber. A subscriber that must receive more than HD_PC_MAX_TRANSCEIVERS
 * tracks (a voice room of 50) is split into several legs, each receiving the
 * streams of the publishers p with p % legs == leg: the server forwards the
 * same packets, only over more PeerConnections.
 *
 * Threads (--threads T): the subscriber legs are split into T contiguous
 * parts, each run by its own thread with its own libuv loop, sockets, timer
 * and accounting (bl_part_t); part 0 is the main thread, which also runs the
 * publishers and the target's set-up. Nothing on the packet path is shared
 * between threads: a part's legs are touched only by its thread; the parts
 * meet at phase boundaries (joined, window announced, tallied, stop) through
 * atomics, and the main thread merges the per-part tallies at the end. */
#ifndef HD_CMD_BENCH_LOAD_H
#define HD_CMD_BENCH_LOAD_H
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "base/time.h"
#include "client/join_report.h"
#include "client/load.h"
#include "client/pc.h"

enum { BL_HUDONG = 1, BL_JANUS = 2 };

typedef struct {
  int target;
  const char *url;
  const char *key, *secret; /* Hudong app */
  const char *room;         /* room name prefix; rooms are <room>-<i> when rooms > 1 */
  int rooms, publishers, subscribers;
  int audio_only, video_kbps;
  double duration, warmup;
  const char *json;
  int server_pid;     /* 0 = do not measure server CPU / RSS */
  int ramp;           /* subscriber legs connecting at once */
  int join_timeout_s; /* per phase */
  int quiet;
  const char *local_ip; /* clients' UDP bind + host candidate; default 127.0.0.1 */
  int count_only;       /* subscribers count RTP seqs in the clear, no decryption, no latency */
  int balance_workers;  /* >0: room names split evenly over that many media workers */
  int list_rooms;       /* print the room names and exit */
  int fail_fast;        /* end the join phase at the first failed leg (capacity searches) */
  int threads;          /* generator threads (subscriber parts); 0 = default (online CPUs, capped) */
  double join_rate;     /* subscriber legs started per second over all threads; 0 = unpaced */
  /* --sub-url U1,U2,...: subscribers join these nodes of a cluster (subscriber
   * i of a room: URL i mod count) while publishers join --url (bench/cluster) */
  char sub_urls[8][1024];
  int n_sub_urls;
} bl_opts_t;

#define BL_MAX_KEYS 256 /* keyframes followed per run */

typedef struct bl_run bl_run_t;
typedef struct bl_part bl_part_t;

typedef struct bl_leg {
  bl_run_t *run;
  bl_part_t *part;                  /* the thread that runs it */
  int is_pub, room, index, sub_leg; /* index: publisher or subscriber number in its room */
  char identity[64];
  uint32_t pub_id; /* publishers: room * 1000 + index + 1 (also the Janus feed id) */
  hd_pc_t *pc;
  uv_udp_t udp;
  int started, connected, ready, failed, done;
  char why[160];
  hd_time_t t_start, t_connected;
  /* the join attempt (docs/quality.md "join success"): reported to the node
   * as quality_join (Hudong target) once its outcome is known */
  hd_join_attempt_t att;
  int joined, att_done, att_sent;
  hd_time_t t_media;
  /* publisher */
  hd_load_source_t src;
  int atrack, vtrack;
  /* subscriber: the streams this leg expects */
  hd_load_rx_t *rx;
  int n_rx;
  /* subscriber in count-only mode: one per SSRC seen (at most n_rx + 2) */
  hd_load_seq_t *seq;
  int n_seq;
  uint64_t rx_unknown, rx_bad;
  /* target state (bench_cmd.c's Hudong session or bench_janus.c's) */
  void *t;
} bl_leg_t;

#define BL_MAX_PARTS 16      /* --threads cap */
#define BL_DEFAULT_THREADS 8 /* --threads default: online CPUs, at most this */

/* One keyframe followed to every subscriber: when the first and the last got
 * its last packet (the spread a per-subscriber pacer is about). */
typedef struct {
  uint32_t pub_id, seq;
  hd_time_t sent, first, last;
  int n;
} bl_key_t;

/* What one part counted, computed by its own thread after the window (and
 * read by the main thread only after the part said so). */
typedef struct {
  uint64_t received, dups, unknown, bad;                 /* decrypt mode: in-window unique packets */
  uint64_t seq_expected, seq_received, arrived, too_old; /* count-only */
  int subs_ok, subs_started;
  int unreported, joins_refused;
  hd_join_tally_t jt;
  double cpu_us;       /* the thread's CPU time over the window */
  hd_time_t join_done; /* when its last leg came up or failed */
  hd_time_t first_start, last_start;
} bl_tally_t;

struct bl_part {
  bl_run_t *run;
  int id; /* 0 = the main thread */
  uv_loop_t *loop;
  uv_loop_t own_loop; /* parts > 0 */
  uv_thread_t thread;
  uv_timer_t tick;
  uint64_t ticks;
  int lo, hi;       /* its subscriber legs: run->subs[lo..hi) */
  int ramp;         /* its share of --ramp (legs connecting at once) */
  double join_rate; /* its share of --join-rate; 0 = unpaced */
  hd_time_t join_t0, join_deadline, ramp_checked;
  int n_started, next_start;
  hd_time_t w0, w1; /* the window, as announced by the main thread */
  int window;       /* count-only: 0 before w0, 1 in the window, 2 after w1 */
  int stopping;
  hd_load_hist_t *hist;
  bl_key_t keys[BL_MAX_KEYS];
  int n_keys;
  int joins_refused; /* quality_join reports the node refused (their legs carry on) */
  uint8_t *rx_batch; /* count-only recvmmsg buffer (RX_BATCH slots of 64 KiB) */
  char rx_one[2048];
  hd_join_attempt_t *orphans; /* attempts no leg of the part could report: sent by the main thread */
  int n_orphans, report_cursor;
  bl_tally_t tally;
  _Atomic int phase; /* part -> main: 1 joined, 2 tallied */
};

struct bl_run {
  bl_opts_t o;
  uv_loop_t *loop; /* part 0's (the main thread's) */
  bl_part_t *parts;
  int n_parts;
  _Atomic int go;         /* main -> parts: 1 window announced (w0, w1 set), 2 stop */
  _Atomic int sub_failed; /* --fail-fast: a part saw a subscriber leg fail */
  bl_leg_t *pubs;         /* rooms * publishers */
  bl_leg_t *subs;         /* rooms * subscribers * sub_legs */
  int n_pubs, n_subs, sub_legs;
  hd_time_t w0, w1;           /* measurement window (written before go = 1) */
  hd_load_hist_t *hist;       /* merged at the end */
  void *janus;                /* bench_janus.c's run state (one part only) */
  int stopping;               /* main thread: the run is ending */
  bl_key_t keys[BL_MAX_KEYS]; /* keyframes sent in the window, merged over the parts */
  int n_keys;
};

hd_time_t bl_now(void);
/* Parses `hudong bench load` options into o (bench_opts.c): 0, 1 after --help (usage printed), or -1
 * (what is wrong printed). */
int bl_parse_opts(int argc, char **argv, bl_opts_t *o);
/* Called by a target once it has the remote description applied etc. */
void bl_leg_fail(bl_leg_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sends queued datagrams of the leg's pc. */
void bl_leg_flush(bl_leg_t *l);
/* 1 if subscriber leg l receives publisher p (index in the room). */
int bl_leg_wants(const bl_leg_t *l, int p);

/* ---- Janus target (bench_janus.c) ---- */
int bl_janus_init(bl_run_t *r); /* creates the rooms; runs the loop until done */
int bl_janus_start(
    bl_leg_t *l); /* publisher: join + configure(offer); subscriber: join(streams) -> answer -> start */
void bl_janus_tick(bl_run_t *r, hd_time_t now);
void bl_janus_stop(bl_run_t *r); /* destroys the sessions (best effort), frees */

#endif
