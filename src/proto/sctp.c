/* WebRTC data channels over usrsctp, sans-IO (see sctp.h): SCTP over DTLS
 * (RFC 8261), data channel usage of SCTP (RFC 8831: PPIDs §8, closing by
 * stream reset §6.7, RFC 6525), DCEP channel setup (RFC 8832).
 *
 * How usrsctp is driven: usrsctp_init_nothreads (no timer or receive
 * threads), AF_CONN sockets whose "address" is an opaque key we choose. The
 * key is a slot index plus a generation into a process-wide table, not a
 * pointer: usrsctp may still call the output callback for an association we
 * already freed (an ABORT from usrsctp_close, a late timer), and a stale key
 * then finds nothing instead of freed memory. usrsctp calls back into us
 * synchronously from usrsctp_conninput / usrsctp_sendv / usrsctp_handle_timers;
 * the callbacks only queue packets and events, and anything that would call
 * back into usrsctp (DCEP ACKs, stream resets) is deferred to service(), run
 * after the usrsctp call returned. */
#include "proto/sctp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <usrsctp.h>

#include "base/err.h"
#include "base/log.h"

enum { CH_FREE = 0, CH_OPEN = 1, CH_CLOSING = 2 };

typedef struct {
  uint8_t state;
  uint8_t local;         /* we opened it */
  uint8_t acked;         /* ours: ACK seen (unordered allowed); theirs: always 1 */
  uint8_t ack_pending;   /* theirs: our ACK still to send */
  uint8_t reset_pending; /* our outgoing stream reset still to request */
  uint8_t out_reset;     /* our outgoing stream reset requested/done */
  uint8_t in_reset;      /* their outgoing stream was reset (reported as CLOSED) */
  uint8_t type;
  uint16_t stream;
  uint32_t reliability;
  char label[HD_DCEP_MAX_LABEL + 1];
} chan_t;

typedef struct {
  size_t len;
  uint8_t data[];
} pkt_t;

/* A queued event, kept small (the queue is per association): the message
 * bytes, or the channel description of an OPEN, live in `owned` (malloc). */
typedef struct {
  uint8_t type;
  uint8_t binary;
  uint8_t remote_opened;
  uint16_t stream;
  size_t len;
  void *owned;
} evq_item_t;

struct hd_sctp {
  struct socket *sock;
  uintptr_t key;
  int state;
  int dtls_client;
  uint16_t local_port, remote_port;
  uint16_t n_out_streams, n_in_streams; /* negotiated */
  size_t remote_max_message;
  chan_t ch[HD_SCTP_MAX_CHANNELS];
  uint8_t ch_by_stream[HD_SCTP_MAX_STREAMS]; /* slot + 1, 0 = none */
  pkt_t *outq[HD_SCTP_OUTQ_CAP];
  size_t out_head, out_n;
  evq_item_t evq[HD_SCTP_EVQ_CAP];
  size_t ev_head, ev_n;
  size_t ev_bytes; /* message bytes queued (capped by HD_SCTP_EVQ_MAX_BYTES) */
  void *lent;      /* data of the last event handed out */
  /* reassembly of a message delivered in pieces (partial delivery) */
  uint8_t *rx_buf;
  size_t rx_len, rx_cap;
  int rx_active, rx_skip;
  uint16_t rx_stream;
  uint32_t rx_ppid;
  int service_pending;
  uint16_t refuse[16]; /* streams of refused OPENs, to reset (closes them at the peer) */
  int n_refuse;
  hd_sctp_stats_t stats;
};

/* ---- process-wide usrsctp state (single thread, see sctp.h) ---- */

#define KEY_SLOT_BITS 20
#define MAX_SLOTS (1u << KEY_SLOT_BITS)

static struct {
  int refs;
  int inited; /* usrsctp is initialised (stays so if usrsctp_finish ever refused) */
  hd_time_t last_tick;
  hd_sctp_t **slots;
  uint32_t *gens;
  size_t n_slots, cap_slots;
} g;

static hd_sctp_t *lookup(void *addr) {
  uintptr_t key = (uintptr_t)addr;
  size_t slot = (size_t)(key & (MAX_SLOTS - 1)) - 1; /* slot 0 would make key 0: keys start at 1 */
  if ((key & (MAX_SLOTS - 1)) == 0 || slot >= g.n_slots) return NULL;
  if (g.gens[slot] != (uint32_t)(key >> KEY_SLOT_BITS)) return NULL;
  return g.slots[slot];
}

static int slot_alloc(hd_sctp_t *s) {
  size_t slot = g.n_slots;
  for (size_t i = 0; i < g.n_slots; i++)
    if (!g.slots[i]) {
      slot = i;
      break;
    }
  if (slot == g.n_slots) {
    if (g.n_slots + 1 >= MAX_SLOTS) return HD_ENOSPC;
    if (g.n_slots == g.cap_slots) {
      size_t nc = g.cap_slots ? g.cap_slots * 2 : 16;
      hd_sctp_t **ns = realloc(g.slots, nc * sizeof *ns);
      if (!ns) return HD_ENOMEM;
      g.slots = ns;
      uint32_t *ng = realloc(g.gens, nc * sizeof *ng);
      if (!ng) return HD_ENOMEM;
      g.gens = ng;
      g.cap_slots = nc;
    }
    g.slots[slot] = NULL;
    g.gens[slot] = 0;
    g.n_slots++;
  }
  g.gens[slot]++;
  g.slots[slot] = s;
  s->key = ((uintptr_t)g.gens[slot] << KEY_SLOT_BITS) | (uintptr_t)(slot + 1);
  return 0;
}

static void slot_release(hd_sctp_t *s) {
  hd_sctp_t *cur = lookup((void *)s->key);
  if (cur == s) g.slots[(s->key & (MAX_SLOTS - 1)) - 1] = NULL;
}

static int conn_output(void *addr, void *buf, size_t len, uint8_t tos, uint8_t set_df) {
  hd_sctp_t *s = lookup(addr);
  if (!s) return 0; /* association already freed: nobody to send it */
  if (s->out_n >= HD_SCTP_OUTQ_CAP || len > HD_SCTP_MTU + 64) {
    s->stats.drop_outq_full++;
    return 0; /* SCTP retransmits; reporting an error would not help it */
  }
  pkt_t *p = malloc(sizeof *p + len);
  if (!p) {
    s->stats.drop_outq_full++;
    return 0;
  }
  p->len = len;
  memcpy(p->data, buf, len);
  s->outq[(s->out_head + s->out_n) % HD_SCTP_OUTQ_CAP] = p;
  s->out_n++;
  return 0;
}

static int global_acquire(hd_time_t now) {
  if (g.refs++ > 0) return 0;
  if (!g.inited) {
    usrsctp_init_nothreads(0, conn_output, NULL);
    usrsctp_sysctl_set_sctp_ecn_enable(0);
    usrsctp_sysctl_set_sctp_pr_enable(1);
    usrsctp_sysctl_set_sctp_reconfig_enable(1);
    g.inited = 1;
  }
  g.last_tick = now;
  return 0;
}

static void global_release(void) {
  if (--g.refs > 0) return;
  /* Freeing an endpoint's PCB can wait on usrsctp's own kill timers: run them
   * (there is no association left, so time is no one's business) until
   * usrsctp_finish agrees. */
  int i = 0;
  for (; i < 200 && usrsctp_finish() != 0; i++)
    usrsctp_handle_timers(50);
  int still = i == 200;
  if (still) HD_LOGW("sctp", "usrsctp_finish did not complete; usrsctp stays initialised");
  free(g.slots);
  free(g.gens);
  memset(&g, 0, sizeof g); /* stale keys of late callbacks now find nothing */
  g.inited = still;
}

static int sctp_live_count(void) { return g.refs; }

/* ---- channels ---- */

static chan_t *chan_get(hd_sctp_t *s, uint16_t stream) {
  if (stream >= HD_SCTP_MAX_STREAMS || !s->ch_by_stream[stream]) return NULL;
  return &s->ch[s->ch_by_stream[stream] - 1];
}

static chan_t *chan_add(hd_sctp_t *s, uint16_t stream) {
  if (stream >= HD_SCTP_MAX_STREAMS || s->ch_by_stream[stream]) return NULL;
  for (int i = 0; i < HD_SCTP_MAX_CHANNELS; i++) {
    if (s->ch[i].state == CH_FREE) {
      memset(&s->ch[i], 0, sizeof s->ch[i]);
      s->ch[i].stream = stream;
      s->ch[i].state = CH_OPEN;
      s->ch_by_stream[stream] = (uint8_t)(i + 1);
      return &s->ch[i];
    }
  }
  return NULL;
}

static void chan_del(hd_sctp_t *s, chan_t *c) {
  s->ch_by_stream[c->stream] = 0;
  memset(c, 0, sizeof *c);
}

/* ---- events ---- */

static evq_item_t *ev_push(hd_sctp_t *s, int type, uint16_t stream) {
  if (s->ev_n >= HD_SCTP_EVQ_CAP) {
    s->stats.drop_events_full++;
    return NULL;
  }
  evq_item_t *it = &s->evq[(s->ev_head + s->ev_n) % HD_SCTP_EVQ_CAP];
  memset(it, 0, sizeof *it);
  it->type = (uint8_t)type;
  it->stream = stream;
  s->ev_n++;
  return it;
}

/* Queues CHANNEL_OPEN with a copy of the channel description. */
static void ev_open(hd_sctp_t *s, uint16_t stream, int remote_opened, const hd_dcep_open_t *o) {
  hd_dcep_open_t *copy = malloc(sizeof *copy);
  if (!copy) {
    s->stats.drop_events_full++;
    return;
  }
  *copy = *o;
  evq_item_t *it = ev_push(s, HD_SCTP_EV_CHANNEL_OPEN, stream);
  if (!it) {
    free(copy);
    return;
  }
  it->remote_opened = (uint8_t)remote_opened;
  it->owned = copy;
}

/* Queues a message event taking ownership of data (malloc'd, may be NULL). */
static void ev_message(hd_sctp_t *s, uint16_t stream, uint32_t ppid, uint8_t *data, size_t len) {
  int empty = ppid == HD_SCTP_PPID_STRING_EMPTY || ppid == HD_SCTP_PPID_BINARY_EMPTY;
  if (empty || !len) {
    free(data);
    data = NULL;
    len = 0;
  }
  if (s->ev_bytes + len > HD_SCTP_EVQ_MAX_BYTES) {
    s->stats.drop_events_full++;
    free(data);
    return;
  }
  evq_item_t *it = ev_push(s, HD_SCTP_EV_MESSAGE, stream);
  if (!it) {
    free(data);
    return;
  }
  it->binary = ppid == HD_SCTP_PPID_BINARY || ppid == HD_SCTP_PPID_BINARY_EMPTY;
  it->len = len;
  it->owned = data;
  s->ev_bytes += len;
  s->stats.msgs_in++;
  s->stats.bytes_in += len;
}

/* ---- sending ---- */

static int raw_send(hd_sctp_t *s, uint16_t stream, uint32_t ppid, const void *data, size_t len, int unordered,
                    uint16_t pr_policy, uint32_t pr_value) {
  struct sctp_sendv_spa spa;
  memset(&spa, 0, sizeof spa);
  spa.sendv_flags = SCTP_SEND_SNDINFO_VALID;
  spa.sendv_sndinfo.snd_sid = stream;
  spa.sendv_sndinfo.snd_ppid = htonl(ppid);
  spa.sendv_sndinfo.snd_flags = unordered ? SCTP_UNORDERED : 0;
  if (pr_policy != SCTP_PR_SCTP_NONE) {
    spa.sendv_flags |= SCTP_SEND_PRINFO_VALID;
    spa.sendv_prinfo.pr_policy = pr_policy;
    spa.sendv_prinfo.pr_value = pr_value;
  }
  ssize_t n = usrsctp_sendv(s->sock, data, len, NULL, 0, &spa, (socklen_t)sizeof spa, SCTP_SENDV_SPA, 0);
  if (n < 0) {
    if (errno == EWOULDBLOCK || errno == EAGAIN || errno == ENOBUFS) return HD_EAGAIN;
    if (errno == EMSGSIZE) return HD_EINVAL;
    return HD_EIO;
  }
  return (int)n;
}

static int send_dcep(hd_sctp_t *s, uint16_t stream, const uint8_t *msg, size_t len) {
  return raw_send(s, stream, HD_DCEP_PPID, msg, len, 0, SCTP_PR_SCTP_NONE, 0);
}

/* Runs what the callbacks deferred: DCEP ACKs and outgoing stream resets. */
static void service(hd_sctp_t *s) {
  if (!s->service_pending || s->state != HD_SCTP_CONNECTED) return;
  s->service_pending = 0;
  uint16_t list[HD_SCTP_MAX_CHANNELS + 16];
  uint16_t n = 0;
  for (int i = 0; i < HD_SCTP_MAX_CHANNELS; i++) {
    chan_t *c = &s->ch[i];
    if (c->state == CH_FREE) continue;
    if (c->ack_pending) {
      uint8_t ack[1];
      hd_dcep_build_ack(ack, sizeof ack);
      if (send_dcep(s, c->stream, ack, 1) >= 0)
        c->ack_pending = 0;
      else
        s->service_pending = 1;
    }
    if (c->reset_pending) list[n++] = c->stream;
  }
  int n_refuse = s->n_refuse;
  for (int i = 0; i < n_refuse; i++)
    list[n++] = s->refuse[i];
  if (!n) return;
  uint8_t buf[sizeof(struct sctp_reset_streams) + sizeof list];
  struct sctp_reset_streams *srs = (struct sctp_reset_streams *)(void *)buf;
  memset(buf, 0, sizeof buf);
  srs->srs_flags = SCTP_STREAM_RESET_OUTGOING;
  srs->srs_number_streams = n;
  memcpy(srs->srs_stream_list, list, n * sizeof list[0]);
  if (usrsctp_setsockopt(s->sock, IPPROTO_SCTP, SCTP_RESET_STREAMS, srs,
                         (socklen_t)(sizeof *srs + n * sizeof list[0])) == 0) {
    for (uint16_t i = 0; i < n; i++) {
      chan_t *c = chan_get(s, list[i]);
      if (c) c->reset_pending = 0, c->out_reset = 1;
    }
    s->n_refuse = 0;
  } else {
    s->service_pending = 1; /* a reset is in flight (EALREADY/EBUSY): retry on the next tick */
  }
}

/* ---- receiving ---- */

static void on_dcep(hd_sctp_t *s, uint16_t stream, const uint8_t *data, size_t len) {
  hd_dcep_open_t o;
  int t = hd_dcep_parse(data, len, &o);
  if (t == HD_DCEP_ACK) {
    chan_t *c = chan_get(s, stream);
    if (!c || !c->local || c->acked) {
      s->stats.drop_bad_dcep++;
      return;
    }
    c->acked = 1;
    hd_dcep_open_t mine;
    memset(&mine, 0, sizeof mine);
    mine.channel_type = c->type;
    mine.reliability = c->reliability;
    memcpy(mine.label, c->label, sizeof mine.label);
    ev_open(s, stream, 0, &mine);
    return;
  }
  if (t != HD_DCEP_OPEN) {
    s->stats.drop_bad_dcep++;
    return;
  }
  if (chan_get(s, stream)) { /* duplicate, or the same id as one of ours (RFC 8832 §6 parity broken) */
    s->stats.refused_channels++;
    return;
  }
  chan_t *c = stream < s->n_out_streams ? chan_add(s, stream) : NULL;
  if (!c) {
    /* table full: refuse by resetting the stream, which closes it at the peer */
    s->stats.refused_channels++;
    if (stream < s->n_out_streams && s->n_refuse < (int)(sizeof s->refuse / sizeof s->refuse[0])) {
      s->refuse[s->n_refuse++] = stream;
      s->service_pending = 1;
    }
    HD_LOGW("sctp", "refused data channel on stream %u (table full or stream out of range)", stream);
    return;
  }
  c->local = 0;
  c->acked = 1;
  c->ack_pending = 1;
  c->type = o.channel_type;
  c->reliability = o.reliability;
  snprintf(c->label, sizeof c->label, "%s", o.label);
  s->service_pending = 1;
  ev_open(s, stream, 1, &o);
}

/* A complete SCTP message (takes ownership of data). */
static void on_message(hd_sctp_t *s, uint16_t stream, uint32_t ppid, uint8_t *data, size_t len) {
  if (ppid == HD_DCEP_PPID) {
    on_dcep(s, stream, data, len);
    free(data);
    return;
  }
  chan_t *c = chan_get(s, stream);
  if (!c || c->in_reset) {
    s->stats.drop_no_channel++;
    free(data);
    return;
  }
  if (ppid != HD_SCTP_PPID_STRING && ppid != HD_SCTP_PPID_BINARY && ppid != HD_SCTP_PPID_STRING_EMPTY &&
      ppid != HD_SCTP_PPID_BINARY_EMPTY && ppid != 52 && ppid != 54) {
    s->stats.drop_bad_dcep++; /* not a data channel payload */
    free(data);
    return;
  }
  if (ppid == 52) ppid = HD_SCTP_PPID_STRING; /* deprecated partial PPIDs (RFC 8831 §8): whole here */
  if (ppid == 54) ppid = HD_SCTP_PPID_BINARY;
  ev_message(s, stream, ppid, data, len);
}

static void on_data(hd_sctp_t *s, uint8_t *data, size_t len, const struct sctp_rcvinfo *rcv, int flags) {
  uint32_t ppid = ntohl(rcv->rcv_ppid);
  uint16_t stream = rcv->rcv_sid;
  int eor = (flags & MSG_EOR) != 0;
  if (!s->rx_active && eor) { /* the usual case: the whole message at once */
    if (len > HD_SCTP_MAX_MESSAGE) {
      s->stats.drop_too_large++;
      free(data);
      return;
    }
    on_message(s, stream, ppid, data, len);
    return;
  }
  /* partial delivery: collect pieces (no interleaving across streams without
   * I-DATA, so one message is in progress at a time) */
  if (s->rx_active && s->rx_stream != stream) {
    s->rx_len = 0; /* cannot happen without I-DATA; restart rather than mix */
    s->rx_skip = 0;
  }
  if (!s->rx_active) {
    s->rx_active = 1;
    s->rx_stream = stream;
    s->rx_ppid = ppid;
    s->rx_len = 0;
    s->rx_skip = 0;
  }
  if (!s->rx_skip && s->rx_len + len > HD_SCTP_MAX_MESSAGE) {
    s->rx_skip = 1;
    s->stats.drop_too_large++;
  }
  if (!s->rx_skip && len) {
    if (s->rx_len + len > s->rx_cap) {
      size_t nc = s->rx_cap ? s->rx_cap : 16384;
      while (nc < s->rx_len + len)
        nc *= 2;
      uint8_t *nb = realloc(s->rx_buf, nc);
      if (!nb) {
        s->rx_skip = 1;
        s->stats.drop_events_full++;
      } else {
        s->rx_buf = nb;
        s->rx_cap = nc;
      }
    }
    if (!s->rx_skip) {
      memcpy(s->rx_buf + s->rx_len, data, len);
      s->rx_len += len;
    }
  }
  free(data);
  if (!eor) return;
  s->rx_active = 0;
  if (s->rx_skip) return;
  uint8_t *msg = malloc(s->rx_len ? s->rx_len : 1);
  if (!msg) {
    s->stats.drop_events_full++;
    return;
  }
  memcpy(msg, s->rx_buf, s->rx_len);
  on_message(s, s->rx_stream, s->rx_ppid, msg, s->rx_len);
}

static void set_closed(hd_sctp_t *s) {
  if (s->state == HD_SCTP_CLOSED) return;
  s->state = HD_SCTP_CLOSED;
  ev_push(s, HD_SCTP_EV_CLOSED, 0);
}

static void on_stream_reset(hd_sctp_t *s, const struct sctp_stream_reset_event *e, size_t len) {
  if (len < sizeof *e || e->strreset_length > len) return;
  size_t n = (e->strreset_length - sizeof *e) / sizeof(uint16_t);
  int failed = (e->strreset_flags & (SCTP_STREAM_RESET_DENIED | SCTP_STREAM_RESET_FAILED)) != 0;
  for (size_t i = 0; i < n; i++) {
    chan_t *c = chan_get(s, e->strreset_stream_list[i]);
    if (!c) continue;
    if (failed) {
      if (e->strreset_flags & SCTP_STREAM_RESET_OUTGOING_SSN) {
        c->out_reset = 0;
        c->reset_pending = 1; /* try again */
        s->service_pending = 1;
      }
      continue;
    }
    if (e->strreset_flags & SCTP_STREAM_RESET_INCOMING_SSN) {
      /* the peer closed (or answered our close): close our side too */
      if (!c->in_reset) {
        c->in_reset = 1;
        c->state = CH_CLOSING;
        ev_push(s, HD_SCTP_EV_CHANNEL_CLOSED, c->stream);
      }
      if (!c->out_reset && !c->reset_pending) {
        c->reset_pending = 1;
        s->service_pending = 1;
      }
    }
    if (e->strreset_flags & SCTP_STREAM_RESET_OUTGOING_SSN) c->out_reset = 2; /* done */
    if (c->in_reset && c->out_reset == 2) chan_del(s, c);
  }
}

static void on_notification(hd_sctp_t *s, const union sctp_notification *n, size_t len) {
  if (len < sizeof n->sn_header || n->sn_header.sn_length > len) return;
  switch (n->sn_header.sn_type) {
  case SCTP_ASSOC_CHANGE: {
    const struct sctp_assoc_change *ac = &n->sn_assoc_change;
    if (len < sizeof *ac) return;
    if (ac->sac_state == SCTP_COMM_UP || ac->sac_state == SCTP_RESTART) {
      s->n_out_streams = ac->sac_outbound_streams;
      s->n_in_streams = ac->sac_inbound_streams;
      if (s->n_out_streams > HD_SCTP_MAX_STREAMS) s->n_out_streams = HD_SCTP_MAX_STREAMS;
      if (s->n_in_streams > HD_SCTP_MAX_STREAMS) s->n_in_streams = HD_SCTP_MAX_STREAMS;
      if (s->state == HD_SCTP_CONNECTING) {
        s->state = HD_SCTP_CONNECTED;
        ev_push(s, HD_SCTP_EV_CONNECTED, 0);
      }
    } else if (ac->sac_state == SCTP_COMM_LOST || ac->sac_state == SCTP_SHUTDOWN_COMP ||
               ac->sac_state == SCTP_CANT_STR_ASSOC) {
      set_closed(s);
    }
    break;
  }
  case SCTP_STREAM_RESET_EVENT: on_stream_reset(s, &n->sn_strreset_event, len); break;
  case SCTP_SHUTDOWN_EVENT: set_closed(s); break;
  default: break;
  }
}

static int receive_cb(struct socket *sock, union sctp_sockstore addr, void *data, size_t len,
                      struct sctp_rcvinfo rcv, int flags, void *ulp_info) {
  hd_sctp_t *s = lookup(ulp_info);
  if (!s) {
    free(data);
    return 1;
  }
  if (!data) { /* end of the association */
    set_closed(s);
    return 1;
  }
  if (flags & MSG_NOTIFICATION) {
    on_notification(s, (const union sctp_notification *)data, len);
    free(data);
  } else {
    on_data(s, data, len, &rcv, flags);
  }
  return 1;
}

/* ---- public API ---- */

static int setup_socket(hd_sctp_t *s) {
  struct socket *so = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP, receive_cb, NULL, 0, (void *)s->key);
  if (!so) return HD_EIO;
  s->sock = so;
  int on = 1;
  struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* close = ABORT, resources go at once */
  struct sctp_assoc_value av = {.assoc_id = SCTP_ALL_ASSOC, .assoc_value = SCTP_ENABLE_RESET_STREAM_REQ};
  struct sctp_initmsg im = {.sinit_num_ostreams = HD_SCTP_MAX_STREAMS,
                            .sinit_max_instreams = HD_SCTP_MAX_STREAMS};
  /* RTOs in ms; usrsctp's defaults (1 s min, 60 s max) are for the open Internet */
  struct sctp_rtoinfo rto = {.srto_assoc_id = 0, .srto_initial = 1000, .srto_max = 10000, .srto_min = 250};
  int buf = 1024 * 1024; /* room for a max-size message plus what is in flight */
  uint16_t evs[] = {SCTP_ASSOC_CHANGE, SCTP_STREAM_RESET_EVENT, SCTP_SHUTDOWN_EVENT};
  if (usrsctp_set_non_blocking(so, 1) < 0) return HD_EIO;
  if (usrsctp_setsockopt(so, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) < 0) return HD_EIO;
  if (usrsctp_setsockopt(so, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf) < 0) return HD_EIO;
  if (usrsctp_setsockopt(so, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf) < 0) return HD_EIO;
  if (usrsctp_setsockopt(so, IPPROTO_SCTP, SCTP_NODELAY, &on, sizeof on) < 0) return HD_EIO;
  if (usrsctp_setsockopt(so, IPPROTO_SCTP, SCTP_RECVRCVINFO, &on, sizeof on) < 0) return HD_EIO;
  if (usrsctp_setsockopt(so, IPPROTO_SCTP, SCTP_ENABLE_STREAM_RESET, &av, sizeof av) < 0) return HD_EIO;
  if (usrsctp_setsockopt(so, IPPROTO_SCTP, SCTP_INITMSG, &im, sizeof im) < 0) return HD_EIO;
  if (usrsctp_setsockopt(so, IPPROTO_SCTP, SCTP_RTOINFO, &rto, sizeof rto) < 0) return HD_EIO;
  for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++) {
    struct sctp_event ev = {.se_assoc_id = SCTP_ALL_ASSOC, .se_type = evs[i], .se_on = 1};
    if (usrsctp_setsockopt(so, IPPROTO_SCTP, SCTP_EVENT, &ev, sizeof ev) < 0) return HD_EIO;
  }
  struct sockaddr_conn sc;
  memset(&sc, 0, sizeof sc);
  sc.sconn_family = AF_CONN;
  sc.sconn_port = htons(s->local_port);
  sc.sconn_addr = (void *)s->key;
  if (usrsctp_bind(so, (struct sockaddr *)&sc, sizeof sc) < 0) return HD_EIO;
  /* Fixed path MTU (no PMTUD over DTLS): set for future associations before connect. */
  struct sctp_paddrparams pp;
  memset(&pp, 0, sizeof pp);
  pp.spp_assoc_id = SCTP_FUTURE_ASSOC;
  pp.spp_flags = SPP_PMTUD_DISABLE;
  pp.spp_pathmtu = HD_SCTP_MTU;
  if (usrsctp_setsockopt(so, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, &pp, sizeof pp) < 0) return HD_EIO;
  sc.sconn_port = htons(s->remote_port);
  if (usrsctp_connect(so, (struct sockaddr *)&sc, sizeof sc) < 0 && errno != EINPROGRESS) return HD_EIO;
  return 0;
}

static void sctp_free(hd_sctp_t *s);

static int sctp_new(hd_sctp_t **out, int dtls_client, uint16_t local_port, uint16_t remote_port,
                    hd_time_t now) {
  hd_sctp_t *s = calloc(1, sizeof *s);
  if (!s) return HD_ENOMEM;
  s->dtls_client = dtls_client;
  s->local_port = local_port ? local_port : HD_SCTP_PORT;
  s->remote_port = remote_port ? remote_port : HD_SCTP_PORT;
  s->remote_max_message = 65536;
  s->state = HD_SCTP_CONNECTING;
  global_acquire(now);
  int rc = slot_alloc(s);
  if (rc) {
    free(s);
    global_release();
    return rc;
  }
  usrsctp_register_address((void *)s->key);
  rc = setup_socket(s);
  if (rc) {
    sctp_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

static void sctp_free(hd_sctp_t *s) {
  if (!s) return;
  if (s->sock) usrsctp_close(s->sock); /* SO_LINGER 0: ABORT, goes to conn_output */
  usrsctp_deregister_address((void *)s->key);
  slot_release(s);
  for (size_t i = 0; i < s->out_n; i++)
    free(s->outq[(s->out_head + i) % HD_SCTP_OUTQ_CAP]);
  for (size_t i = 0; i < s->ev_n; i++)
    free(s->evq[(s->ev_head + i) % HD_SCTP_EVQ_CAP].owned);
  free(s->lent);
  free(s->rx_buf);
  free(s);
  global_release();
}

static void sctp_set_remote_max_message(hd_sctp_t *s, size_t max) {
  if (!max) max = 65536;
  s->remote_max_message = max > HD_SCTP_MAX_MESSAGE ? HD_SCTP_MAX_MESSAGE : max;
}

static int sctp_feed(hd_sctp_t *s, const uint8_t *pkt, size_t len, hd_time_t now) {
  if (s->state == HD_SCTP_CLOSED) return HD_ECLOSED;
  if (!len || len > 65535) return HD_EINVAL;
  s->stats.rx_packets++;
  s->stats.rx_bytes += len;
  usrsctp_conninput((void *)s->key, pkt, len, 0);
  service(s);
  return 0;
}

static int sctp_poll(hd_sctp_t *s, uint8_t *out, size_t cap) {
  if (!s->out_n) return 0;
  pkt_t *p = s->outq[s->out_head];
  if (p->len > cap) return HD_ENOSPC;
  memcpy(out, p->data, p->len);
  int n = (int)p->len;
  free(p);
  s->out_head = (s->out_head + 1) % HD_SCTP_OUTQ_CAP;
  s->out_n--;
  s->stats.tx_packets++;
  s->stats.tx_bytes += (size_t)n;
  return n;
}

static int sctp_next_event(hd_sctp_t *s, hd_sctp_event_t *ev) {
  free(s->lent);
  s->lent = NULL;
  if (!s->ev_n) return 0;
  evq_item_t *it = &s->evq[s->ev_head];
  memset(ev, 0, sizeof *ev);
  ev->type = it->type;
  ev->stream = it->stream;
  if (it->type == HD_SCTP_EV_MESSAGE) {
    ev->binary = it->binary;
    ev->ppid = it->binary ? HD_SCTP_PPID_BINARY : HD_SCTP_PPID_STRING;
    ev->data = it->owned;
    ev->len = it->len;
    s->ev_bytes -= it->len;
    s->lent = it->owned;
  } else if (it->type == HD_SCTP_EV_CHANNEL_OPEN) {
    ev->remote_opened = it->remote_opened;
    ev->channel = *(const hd_dcep_open_t *)it->owned;
    free(it->owned);
  }
  it->owned = NULL;
  s->ev_head = (s->ev_head + 1) % HD_SCTP_EVQ_CAP;
  s->ev_n--;
  return 1;
}

static int sctp_state(const hd_sctp_t *s) { return s->state; }

static int sctp_open_channel(hd_sctp_t *s, const hd_dcep_open_t *open) {
  if (s->state != HD_SCTP_CONNECTED) return HD_ESTATE;
  uint8_t msg[HD_DCEP_OPEN_HEADER + HD_DCEP_MAX_LABEL + HD_DCEP_MAX_PROTOCOL];
  int mlen = hd_dcep_build_open(open, msg, sizeof msg);
  if (mlen < 0) return HD_EINVAL;
  uint16_t stream = s->dtls_client ? 0 : 1;
  for (; stream < s->n_out_streams && stream < s->n_in_streams; stream += 2)
    if (!s->ch_by_stream[stream]) break;
  if (stream >= s->n_out_streams || stream >= s->n_in_streams) return HD_ENOSPC;
  chan_t *c = chan_add(s, stream);
  if (!c) return HD_ENOSPC;
  c->local = 1;
  c->type = open->channel_type;
  c->reliability = hd_dcep_reliable(open->channel_type) ? 0 : open->reliability;
  snprintf(c->label, sizeof c->label, "%s", open->label);
  int rc = send_dcep(s, stream, msg, (size_t)mlen);
  if (rc < 0) {
    chan_del(s, c);
    return rc;
  }
  return stream;
}

static int sctp_send(hd_sctp_t *s, uint16_t stream, const void *data, size_t len, int binary) {
  if (s->state != HD_SCTP_CONNECTED) return HD_ESTATE;
  chan_t *c = chan_get(s, stream);
  if (!c || c->state != CH_OPEN) return HD_ENOTFOUND;
  if (len > HD_SCTP_MAX_MESSAGE || len > s->remote_max_message) return HD_EINVAL;
  uint32_t ppid = binary ? HD_SCTP_PPID_BINARY : HD_SCTP_PPID_STRING;
  static const uint8_t zero = 0;
  if (!len) {
    ppid = binary ? HD_SCTP_PPID_BINARY_EMPTY : HD_SCTP_PPID_STRING_EMPTY;
    data = &zero;
  }
  uint16_t policy = SCTP_PR_SCTP_NONE;
  if ((c->type & 0x7f) == HD_DCEP_PARTIAL_RELIABLE_REXMIT) policy = SCTP_PR_SCTP_RTX;
  if ((c->type & 0x7f) == HD_DCEP_PARTIAL_RELIABLE_TIMED) policy = SCTP_PR_SCTP_TTL;
  /* RFC 8832 §6: ordered until the ACK, so the OPEN cannot be overtaken */
  int unordered = !hd_dcep_ordered(c->type) && c->acked;
  int rc = raw_send(s, stream, ppid, data, len ? len : 1, unordered, policy, c->reliability);
  service(s);
  if (rc < 0) return rc;
  s->stats.msgs_out++;
  s->stats.bytes_out += len;
  return (int)len;
}

static int sctp_close_channel(hd_sctp_t *s, uint16_t stream) {
  if (s->state != HD_SCTP_CONNECTED) return HD_ESTATE;
  chan_t *c = chan_get(s, stream);
  if (!c || c->state != CH_OPEN) return HD_ENOTFOUND;
  c->state = CH_CLOSING;
  c->reset_pending = 1;
  s->service_pending = 1;
  service(s);
  return 0;
}

static const char *sctp_channel_label(const hd_sctp_t *s, uint16_t stream) {
  if (stream >= HD_SCTP_MAX_STREAMS || !s->ch_by_stream[stream]) return NULL;
  const chan_t *c = &s->ch[s->ch_by_stream[stream] - 1];
  return c->state == CH_OPEN ? c->label : NULL;
}

static int sctp_channel_type(const hd_sctp_t *s, uint16_t stream) {
  if (stream >= HD_SCTP_MAX_STREAMS || !s->ch_by_stream[stream]) return HD_ENOTFOUND;
  const chan_t *c = &s->ch[s->ch_by_stream[stream] - 1];
  return c->state == CH_OPEN ? c->type : HD_ENOTFOUND;
}

static hd_time_t sctp_next_timeout(const hd_sctp_t *s) {
  if (s->out_n || s->ev_n) return 0;
  if (s->state == HD_SCTP_CLOSED) return HD_TIME_NEVER;
  return g.last_tick + HD_SCTP_TICK;
}

static void sctp_handle_timeout(hd_sctp_t *s, hd_time_t now) {
  if (now < g.last_tick - HD_SEC(1)) g.last_tick = now; /* a clock that went back: restart from it */
  if (now >= g.last_tick + HD_MS(1)) {
    int64_t ms = (now - g.last_tick) / 1000;
    g.last_tick += ms * 1000;
    usrsctp_handle_timers((uint32_t)(ms > 3600000 ? 3600000 : ms));
  }
  if (s->state == HD_SCTP_CONNECTED) {
    if (!s->service_pending)
      for (int i = 0; i < HD_SCTP_MAX_CHANNELS; i++)
        if (s->ch[i].reset_pending || s->ch[i].ack_pending || s->n_refuse) s->service_pending = 1;
    service(s);
  }
}

const hd_sctp_stats_t *hd_sctp_stats(const hd_sctp_t *s) { return &s->stats; }

/* ---- public entry points: one process-wide lock around usrsctp ----
 * usrsctp keeps one global stack (timer wheel, PCBs) and, without its own
 * threads, does no locking of its own that we may rely on. Media workers
 * (io/media_workers.h) each own associations on their own thread, so every
 * call into this module holds g_lock (recursive: a failing hd_sctp_new frees
 * through hd_sctp_free). usrsctp's callbacks only fill the association's own
 * queues, which its owner drains under the same lock. Data channels only: the
 * RTP path never takes it. */
static pthread_mutex_t g_lock;
static pthread_once_t g_lock_once = PTHREAD_ONCE_INIT;
static void lock_init(void) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&g_lock, &a);
  pthread_mutexattr_destroy(&a);
}
static void lock(void) {
  pthread_once(&g_lock_once, lock_init);
  pthread_mutex_lock(&g_lock);
}
static void unlock(void) { pthread_mutex_unlock(&g_lock); }

int hd_sctp_live_count(void) {
  lock();
  int r = sctp_live_count();
  unlock();
  return r;
}

int hd_sctp_new(hd_sctp_t **out, int dtls_client, uint16_t local_port, uint16_t remote_port, hd_time_t now) {
  lock();
  int r = sctp_new(out, dtls_client, local_port, remote_port, now);
  unlock();
  return r;
}

void hd_sctp_free(hd_sctp_t *s) {
  lock();
  sctp_free(s);
  unlock();
}

void hd_sctp_set_remote_max_message(hd_sctp_t *s, size_t max) {
  lock();
  sctp_set_remote_max_message(s, max);
  unlock();
}

int hd_sctp_feed(hd_sctp_t *s, const uint8_t *pkt, size_t len, hd_time_t now) {
  lock();
  int r = sctp_feed(s, pkt, len, now);
  unlock();
  return r;
}

int hd_sctp_poll(hd_sctp_t *s, uint8_t *out, size_t cap) {
  lock();
  int r = sctp_poll(s, out, cap);
  unlock();
  return r;
}

int hd_sctp_next_event(hd_sctp_t *s, hd_sctp_event_t *ev) {
  lock();
  int r = sctp_next_event(s, ev);
  unlock();
  return r;
}

int hd_sctp_state(const hd_sctp_t *s) {
  lock();
  int r = sctp_state(s);
  unlock();
  return r;
}

int hd_sctp_open_channel(hd_sctp_t *s, const hd_dcep_open_t *open) {
  lock();
  int r = sctp_open_channel(s, open);
  unlock();
  return r;
}

int hd_sctp_send(hd_sctp_t *s, uint16_t stream, const void *data, size_t len, int binary) {
  lock();
  int r = sctp_send(s, stream, data, len, binary);
  unlock();
  return r;
}

int hd_sctp_close_channel(hd_sctp_t *s, uint16_t stream) {
  lock();
  int r = sctp_close_channel(s, stream);
  unlock();
  return r;
}

const char *hd_sctp_channel_label(const hd_sctp_t *s, uint16_t stream) {
  lock();
  const char *r = sctp_channel_label(s, stream);
  unlock();
  return r;
}

int hd_sctp_channel_type(const hd_sctp_t *s, uint16_t stream) {
  lock();
  int r = sctp_channel_type(s, stream);
  unlock();
  return r;
}

hd_time_t hd_sctp_next_timeout(const hd_sctp_t *s) {
  lock();
  hd_time_t r = sctp_next_timeout(s);
  unlock();
  return r;
}

void hd_sctp_handle_timeout(hd_sctp_t *s, hd_time_t now) {
  lock();
  sctp_handle_timeout(s, now);
  unlock();
}
