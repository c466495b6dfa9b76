/* RTM client-side dedupe/ordering/ack helper (client.h, docs/rtm.md
 * "Reliability"). */
#include "rtm/client.h"

#include <string.h>

void hd_rtm_client_init(hd_rtm_client_t *c) {
  memset(c, 0, sizeof *c);
  c->ack_every = 32;
  c->ack_delay = HD_MS(100);
}

void hd_rtm_client_new_session(hd_rtm_client_t *c) {
  c->last_s = c->acked_s = 0;
  c->unacked_since = 0;
}

hd_rtm_verdict_t hd_rtm_client_on_seq(hd_rtm_client_t *c, int64_t s, hd_time_t now) {
  if (s <= c->last_s) return HD_RTM_DUPLICATE;
  if (s != c->last_s + 1) return HD_RTM_GAP;
  c->last_s = s;
  if (!c->unacked_since) c->unacked_since = now ? now : 1;
  return HD_RTM_DELIVER;
}

hd_rtm_verdict_t hd_rtm_client_on_channel_msg(hd_rtm_client_t *c, const char *ch, int64_t cseq) {
  int i;
  for (i = 0; i < c->n_ch; i++)
    if (!strcmp(c->ch[i], ch)) break;
  if (i == c->n_ch) {
    if (c->n_ch == HD_RTM_CLIENT_MAX_CHANNELS || strlen(ch) >= sizeof c->ch[0]) return HD_RTM_DELIVER;
    strcpy(c->ch[i], ch);
    c->last_cseq[i] = 0;
    c->n_ch++;
  }
  if (cseq <= c->last_cseq[i]) return HD_RTM_DUPLICATE;
  c->last_cseq[i] = cseq;
  return HD_RTM_DELIVER;
}

int64_t hd_rtm_client_ack_due(hd_rtm_client_t *c, hd_time_t now) {
  if (c->last_s <= c->acked_s) return 0;
  if (c->last_s - c->acked_s < c->ack_every && now < c->unacked_since + c->ack_delay) return 0;
  c->acked_s = c->last_s;
  c->unacked_since = 0;
  return c->acked_s;
}

hd_time_t hd_rtm_client_next_timeout(const hd_rtm_client_t *c) {
  if (c->last_s <= c->acked_s) return HD_TIME_NEVER;
  return c->unacked_since + c->ack_delay;
}

int64_t hd_rtm_client_resume_last(const hd_rtm_client_t *c) { return c->last_s; }
