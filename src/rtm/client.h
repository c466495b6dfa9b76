/* RTM client-side reliability helper (docs/rtm.md "Reliability"): the sans-IO
 * bookkeeping a client library needs so that the application sees every
 * message exactly once and in order across reconnects and re-logins.
 *
 * Feed it the "s" (session sequence) of each sequenced message the node sends;
 * it says whether to deliver it, drop it as a duplicate (a replay after
 * resume) or treat it as a gap (must not happen within one session; the
 * client should re-login). For channel messages it also dedupes by
 * (channel, cseq), which is the message id that survives a new session (when
 * a client re-logs in after session loss and fetches history, the overlap is
 * dropped). It tells when to send a cumulative ack and what "last" to put in a
 * resume. No I/O, no allocation after init. */
#ifndef HD_RTM_CLIENT_H
#define HD_RTM_CLIENT_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

#define HD_RTM_CLIENT_MAX_CHANNELS 64

typedef enum {
  HD_RTM_DELIVER = 0, /* new: hand it to the application */
  HD_RTM_DUPLICATE,   /* seen before: drop */
  HD_RTM_GAP          /* a sequence number was skipped: re-login and fetch history */
} hd_rtm_verdict_t;

typedef struct {
  char ch[HD_RTM_CLIENT_MAX_CHANNELS][65];
  int64_t last_cseq[HD_RTM_CLIENT_MAX_CHANNELS];
  int n_ch;
  int64_t last_s;          /* highest in-order session seq delivered */
  int64_t acked_s;         /* highest seq acked to the node */
  int ack_every;           /* ack after this many messages (default 32) */
  hd_time_t ack_delay;     /* ... or this long after the first unacked one (default 100 ms) */
  hd_time_t unacked_since; /* 0 = nothing unacked */
} hd_rtm_client_t;

/* Zeroes the state and sets the defaults. */
void hd_rtm_client_init(hd_rtm_client_t *c);
/* New session (after a fresh login, not after a resume): session seqs restart
 * at 1; channel cseqs are kept for dedupe. */
void hd_rtm_client_new_session(hd_rtm_client_t *c);
/* A sequenced message with session seq s arrived at now. */
hd_rtm_verdict_t hd_rtm_client_on_seq(hd_rtm_client_t *c, int64_t s, hd_time_t now);
/* A channel message (ch, cseq), after on_seq said DELIVER (or from a history
 * reply): DELIVER if cseq is above the last one seen for ch, else DUPLICATE.
 * Channels beyond HD_RTM_CLIENT_MAX_CHANNELS are passed as DELIVER. */
hd_rtm_verdict_t hd_rtm_client_on_channel_msg(hd_rtm_client_t *c, const char *ch, int64_t cseq);
/* If an ack is due at now, returns the seq to ack (> 0) and records it as
 * sent; else 0. */
int64_t hd_rtm_client_ack_due(hd_rtm_client_t *c, hd_time_t now);
/* When hd_rtm_client_ack_due will next return non-zero (HD_TIME_NEVER if nothing is unacked). */
hd_time_t hd_rtm_client_next_timeout(const hd_rtm_client_t *c);
/* The "last" to send in a resume: the highest in-order seq delivered. */
int64_t hd_rtm_client_resume_last(const hd_rtm_client_t *c);

#endif
