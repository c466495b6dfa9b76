/* Group commit of stored publishes (cfg.group_commit; docs/rtm.md
 * "Storage"): the stored publishes of one loop turn are held, appended in
 * one transaction and committed before any of their oks or deliveries leave. */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "rtm/broker_internal.h"

int rtm_gc_holds(const hd_rtm_broker_t *b, const sess_t *s, const char *id) {
  for (int i = 0; i < b->gc_n; i++)
    if (b->gc[i].s == s && b->gc[i].id && !strcmp(b->gc[i].id, id)) return 1;
  return 0;
}

/* Holds a stored publish until the turn's commit. 0, or HD_ENOMEM (then it
 * is published on its own, as without group commit). */
int rtm_gc_hold(hd_rtm_broker_t *b, sess_t *s, const req_t *r, chan_t *c, const char *data, hd_time_t now) {
  if (!b->gc && !(b->gc = calloc(HD_RTM_GC_MAX, sizeof *b->gc))) return HD_ENOMEM;
  gc_pub_t *p = &b->gc[b->gc_n++];
  memset(p, 0, sizeof *p);
  p->s = s;
  p->c = c;
  p->o = json_incref(r->o);
  p->id = r->id;
  p->data = data;
  p->ts_ms = rtm_wall_ms(b, now);
  c->gc_pending++;
  return 0;
}

/* One transaction for every held publish (each append a step of it: a
 * refused one leaves the others), committed before any ok or delivery;
 * then the results in arrival order, as a broker without group commit
 * would have sent them. If the transaction does not commit, none is
 * published: each gets 500, the channels' sequence is as before. */
void rtm_gc_flush(hd_rtm_broker_t *b) {
  if (!b->gc_n || b->gc_flushing) return;
  b->gc_flushing = 1;
  hd_rtm_store_t *sto = b->cfg.store;
  hd_rtm_store_limits_t lim = {b->cfg.history_keep, b->cfg.quota_channels > 0 ? b->cfg.quota_channels : 0,
                               b->cfg.quota_bytes > 0 ? b->cfg.quota_bytes : 0,
                               b->cfg.min_free_bytes > 0 ? b->cfg.min_free_bytes : 0};
  int n = b->gc_n, tx = sto->ops->batch_begin ? sto->ops->batch_begin(sto) : 1; /* 1: no batches */
  for (int i = 0; i < n; i++) {
    gc_pub_t *p = &b->gc[i];
    chan_t *c = p->c;
    p->old_cseq = c->cseq;
    p->old_hwm = c->hwm;
    p->rc = HD_EIO;
    if (tx < 0) continue;
    int64_t cseq = c->cseq + 1;
    if (cseq > c->hwm) { /* reserve a block of sequence numbers first: never reused after a restart */
      if (sto->ops->seq_put(sto, c->app, c->name, c->hwm + SEQ_RESERVE) < 0) continue;
      c->hwm += SEQ_RESERVE;
    }
    hd_rtm_stored_msg_t m = {cseq, p->ts_ms, p->s->user, p->data};
    p->rc = sto->ops->msg_append(sto, c->app, c->name, &m, &lim, &p->use);
    if (p->rc == 0) c->cseq = p->cseq = cseq;
  }
  if (tx == 0 && sto->ops->batch_end(sto, 1) < 0) /* nothing of the batch is stored */
    for (int i = n - 1; i >= 0; i--) {
      gc_pub_t *p = &b->gc[i];
      p->c->cseq = p->old_cseq;
      p->c->hwm = p->old_hwm;
      /* a refusal counted rolled-back appends: retryable, not "storage full" */
      if (p->rc == 0 || p->rc == HD_ENOSPC) p->rc = HD_EIO;
    }
  for (int i = 0; i < n; i++) { /* committed: the answers, in arrival order */
    gc_pub_t *p = &b->gc[i];
    sess_t *s = p->s;
    chan_t *c = p->c;
    req_t r = {p->o, "pub", p->id};
    c->gc_pending--;
    if (p->rc == HD_ENOSPC && p->use.refused)
      rtm_store_refused(b, s, &r, &lim, &p->use);
    else if (p->rc < 0)
      rtm_err(b, s, r.id, HD_RTM_ERR_INTERNAL, "store failure: not published", NULL);
    else {
      b->st.published++;
      s->ac->dl.sent++;
      if (r.id) rtm_dedupe_add(s, r.id, p->cseq);
      rtm_ok(b, s, &r, json_pack("{s:s,s:I}", "ch", c->name, "cseq", (json_int_t)p->cseq));
      rtm_channel_deliver_as(b, c,
                             json_pack("{s:s,s:s,s:I,s:s,s:s}", "type", "msg", "ch", c->name, "cseq",
                                       (json_int_t)p->cseq, "from", s->user, "data", p->data),
                             1);
    }
    rtm_chan_maybe_free(b, c);
    json_decref(p->o);
  }
  b->gc_n = 0;
  b->gc_flushing = 0;
}
