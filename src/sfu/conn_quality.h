/* Connection quality of a room participant (issue 11 item 7): good / poor /
 * lost from what the node measures of its two PeerConnections, with
 * hysteresis so that the indicator on the room page does not flicker. Pure:
 * numbers in, a grade out. docs/protocol.md "Layer selection" gives the
 * thresholds to users. */
#ifndef HD_SFU_CONN_QUALITY_H
#define HD_SFU_CONN_QUALITY_H
#include "base/time.h"

enum { HD_CQ_GOOD = 0, HD_CQ_POOR = 1, HD_CQ_LOST = 2 };

#define HD_CQ_POOR_LOSS 0.05      /* either leg loses 5% or more ... */
#define HD_CQ_LOST_LOSS 0.30      /* ... or 30%: lost */
#define HD_CQ_POOR_RTT HD_MS(400) /* a round trip this long makes a conversation hard */
#define HD_CQ_SILENT HD_SEC(3)    /* its publisher PC sent nothing this long (not muted): lost */
#define HD_CQ_BETTER_AFTER 3      /* a better grade needs this many evaluations in a row */

typedef struct {
  double loss_up;   /* loss on what it publishes, last interval, 0..1; < 0 unknown */
  double loss_down; /* loss its receiver reports on what we send it, 0..1; < 0 unknown */
  hd_time_t rtt;    /* round trip to it, 0 unknown */
  hd_time_t silent; /* how long its publisher PC has sent nothing while it should; 0 = fine */
  int disconnected; /* a PeerConnection it should have is not connected */
  int limited;      /* subscribed video paused for lack of bandwidth */
} hd_cq_input_t;

typedef struct {
  int grade;     /* HD_CQ_*, what is shown */
  int candidate; /* a better grade seen lately ... */
  int count;     /* ... this many evaluations in a row */
} hd_cq_t;

void hd_cq_init(hd_cq_t *q);
/* The grade of one evaluation, without history. */
int hd_cq_grade(const hd_cq_input_t *in);
/* One evaluation: a worse grade applies at once, a better one after
 * HD_CQ_BETTER_AFTER in a row. Returns 1 when q->grade changed. */
int hd_cq_update(hd_cq_t *q, const hd_cq_input_t *in);

#endif
