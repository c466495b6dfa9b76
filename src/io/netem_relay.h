/* `hudong netem` relay on libuv: a UDP listener that forwards each client's
 * datagrams to a target through an emulated link (src/netem/link.h) and the
 * replies back through another. Each client source address gets its own
 * session: its own upstream UDP socket (so replies find their client) and two
 * links (up: client→target, down: target→client). Idle sessions expire, the
 * session count is capped. One timer, armed at the earliest link deadline,
 * delivers due packets. Impairments can be changed live (applied to every
 * session and to new ones). */
#ifndef HD_IO_NETEM_RELAY_H
#define HD_IO_NETEM_RELAY_H
#include <stddef.h>
#include <uv.h>

#include "netem/link.h"
#include "netem/profile.h"

typedef struct hd_netem_relay hd_netem_relay_t;

typedef struct {
  const char *listen_host; /* e.g. "127.0.0.1" */
  int listen_port;         /* 0 = ephemeral */
  const char *to_host;     /* target address (IPv4 or IPv6 literal) */
  int to_port;
  hd_netem_opts_t opts; /* impairments up/down, seed, pending blackout-now */
  const char *trace[2]; /* Mahimahi trace text per direction (NULL = none), copied */
  size_t trace_len[2];
  size_t max_sessions;    /* 0 = 64 */
  hd_time_t idle_timeout; /* 0 = 60 s */
} hd_netem_relay_config_t;

/* Binds the listener and starts relaying. HD_EINVAL for bad addresses,
 * HD_EIO if the port cannot be bound. */
int hd_netem_relay_start(hd_netem_relay_t **out, uv_loop_t *loop, const hd_netem_relay_config_t *cfg);
/* Bound listen port. */
int hd_netem_relay_port(const hd_netem_relay_t *r);
/* Current impairments (a copy). */
void hd_netem_relay_get(const hd_netem_relay_t *r, hd_netem_opts_t *out);
/* Replaces the impairments for all sessions and new ones from now on; a
 * pending blackout_now[d] > 0 starts a window of that length now. */
int hd_netem_relay_set(hd_netem_relay_t *r, const hd_netem_opts_t *o);
/* Applies a control request body: JSON ({"down":{"loss":20}},
 * {"both":{"blackout_now_ms":2000}}, {"reset":true}) or a query string
 * ("down-loss=20&jitter=5"); keys are the command-line options without "--"
 * ('_' or '-'). Returns 0 or HD_EINVAL with a message in err. */
int hd_netem_relay_impair(hd_netem_relay_t *r, const char *body, size_t len, int is_json, char *err,
                          size_t errcap);
/* Totals per direction over all sessions, live and expired. Percentiles are
 * exact for one session; with several, the largest session's value. */
void hd_netem_relay_stats(hd_netem_relay_t *r, hd_netem_stats_t *up, hd_netem_stats_t *down,
                          size_t *sessions);
/* Stats as a JSON document (malloc'd, caller frees; NULL on ENOMEM). */
char *hd_netem_relay_stats_json(hd_netem_relay_t *r);
/* Closes the sockets and timers; memory is released as the loop runs the closes. */
void hd_netem_relay_stop(hd_netem_relay_t *r);

#endif
