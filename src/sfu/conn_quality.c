/* Connection quality grade (see conn_quality.h). */
#include "sfu/conn_quality.h"

void hd_cq_init(hd_cq_t *q) {
  q->grade = HD_CQ_GOOD;
  q->candidate = HD_CQ_GOOD;
  q->count = 0;
}

static double worst_loss(const hd_cq_input_t *in) {
  return in->loss_up > in->loss_down ? in->loss_up : in->loss_down;
}

int hd_cq_grade(const hd_cq_input_t *in) {
  double loss = worst_loss(in);
  if (in->disconnected || in->silent >= HD_CQ_SILENT || loss >= HD_CQ_LOST_LOSS) return HD_CQ_LOST;
  if (loss >= HD_CQ_POOR_LOSS || (in->rtt && in->rtt >= HD_CQ_POOR_RTT) || in->limited) return HD_CQ_POOR;
  return HD_CQ_GOOD;
}

int hd_cq_update(hd_cq_t *q, const hd_cq_input_t *in) {
  int g = hd_cq_grade(in);
  if (g > q->grade) { /* worse: at once, so "lost" shows while it is true */
    q->grade = g;
    q->count = 0;
    return 1;
  }
  if (g == q->grade) {
    q->count = 0;
    return 0;
  }
  if (g != q->candidate) {
    q->candidate = g;
    q->count = 0;
  }
  if (++q->count < HD_CQ_BETTER_AFTER) return 0;
  q->grade = g;
  q->count = 0;
  return 1;
}
