/* Quality writer (writer.h): a ring of rows under a mutex, a condition variable
 * to wake the thread, and a second one to wake flush() waiters. */
#include "quality/writer.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"

#define PRUNE_EVERY_S 60

struct hd_qwriter {
  hd_qstore_t *st;
  hd_qwriter_config_t cfg;
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t wake, done;
  hd_qrow_t *ring, *batch;
  size_t head, len;
  uint64_t pushed, finished; /* rows pushed, rows written or failed (flush waits on finished) */
  int stop;
  hd_qwriter_stats_t s;
};

static int64_t unix_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *run(void *arg) {
  hd_qwriter_t *w = arg;
  time_t next_prune = time(NULL) + PRUNE_EVERY_S;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (!w->len && !w->stop) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_sec += 1;
      pthread_cond_timedwait(&w->wake, &w->mu, &ts);
      if (w->cfg.retention_ms > 0 && time(NULL) >= next_prune) break;
    }
    size_t n = w->len < w->cfg.batch ? w->len : w->cfg.batch;
    size_t cap = w->cfg.max_queue;
    for (size_t i = 0; i < n; i++)
      w->batch[i] = w->ring[(w->head + i) % cap];
    w->head = (w->head + n) % cap;
    w->len -= n;
    int stopping = w->stop && !w->len;
    pthread_mutex_unlock(&w->mu);
    int rc = n ? hd_qstore_write(w->st, w->batch, n) : 0;
    int pruned = 0;
    if (w->cfg.retention_ms > 0 && time(NULL) >= next_prune) {
      next_prune = time(NULL) + PRUNE_EVERY_S;
      pruned = hd_qstore_prune(w->st, unix_ms() - w->cfg.retention_ms);
    }
    pthread_mutex_lock(&w->mu);
    if (n) {
      if (rc < 0)
        w->s.failed += n;
      else
        w->s.written += n, w->s.batches++;
    }
    if (pruned > 0) w->s.pruned += (uint64_t)pruned;
    w->finished += n;
    pthread_cond_broadcast(&w->done);
    if (stopping) break;
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

int hd_qwriter_start(hd_qwriter_t **out, hd_qstore_t *st, const hd_qwriter_config_t *cfg) {
  hd_qwriter_t *w = calloc(1, sizeof *w);
  if (!w) return HD_ENOMEM;
  w->st = st;
  if (cfg) w->cfg = *cfg;
  if (!w->cfg.max_queue) w->cfg.max_queue = HD_QWRITER_DEFAULT_QUEUE;
  if (!w->cfg.batch) w->cfg.batch = HD_QWRITER_DEFAULT_BATCH;
  if (w->cfg.batch > w->cfg.max_queue) w->cfg.batch = w->cfg.max_queue;
  w->ring = calloc(w->cfg.max_queue, sizeof *w->ring);
  w->batch = calloc(w->cfg.batch, sizeof *w->batch);
  if (!w->ring || !w->batch) {
    free(w->ring), free(w->batch), free(w);
    return HD_ENOMEM;
  }
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->wake, NULL);
  pthread_cond_init(&w->done, NULL);
  if (pthread_create(&w->th, NULL, run, w)) {
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->wake), pthread_cond_destroy(&w->done);
    free(w->ring), free(w->batch), free(w);
    return HD_ENOMEM;
  }
  *out = w;
  return 0;
}

int hd_qwriter_push(hd_qwriter_t *w, const hd_qrow_t *rows, size_t n) {
  pthread_mutex_lock(&w->mu);
  size_t cap = w->cfg.max_queue;
  if (w->len + n > cap) {
    w->s.dropped += n;
    pthread_mutex_unlock(&w->mu);
    return HD_ENOSPC;
  }
  for (size_t i = 0; i < n; i++)
    w->ring[(w->head + w->len + i) % cap] = rows[i];
  w->len += n;
  w->pushed += n;
  pthread_cond_signal(&w->wake);
  pthread_mutex_unlock(&w->mu);
  return (int)n;
}

int hd_qwriter_flush(hd_qwriter_t *w, int timeout_ms) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
  if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
  int rc = 0;
  pthread_mutex_lock(&w->mu);
  uint64_t target = w->pushed;
  pthread_cond_signal(&w->wake);
  while (w->finished < target && rc == 0)
    if (pthread_cond_timedwait(&w->done, &w->mu, &until) != 0 && w->finished < target) rc = HD_ETIMEDOUT;
  pthread_mutex_unlock(&w->mu);
  return rc;
}

void hd_qwriter_stats(hd_qwriter_t *w, hd_qwriter_stats_t *out) {
  pthread_mutex_lock(&w->mu);
  *out = w->s;
  out->queued = w->len;
  pthread_mutex_unlock(&w->mu);
}

void hd_qwriter_stop(hd_qwriter_t *w) {
  if (!w) return;
  pthread_mutex_lock(&w->mu);
  w->stop = 1;
  pthread_cond_signal(&w->wake);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->th, NULL);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->wake), pthread_cond_destroy(&w->done);
  free(w->ring), free(w->batch), free(w);
}
