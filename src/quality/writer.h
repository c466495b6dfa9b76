/* Quality writer (issue 14 item 2): a bounded queue of quality rows and one
 * thread that writes them to the store (quality/store.h) in batches, one
 * transaction each, and prunes rows past the retention. The control thread
 * pushes (never waits on the disk); the media threads never see it.
 *
 * Caps: at most max_queue rows wait; a push past that is refused with
 * HD_ENOSPC and counted (hudong_quality_rows_dropped_total), so a slow disk or
 * an unreachable PostgreSQL costs samples, never memory or the control loop. */
#ifndef HD_QUALITY_WRITER_H
#define HD_QUALITY_WRITER_H
#include <stddef.h>
#include <stdint.h>

#include "quality/store.h"

#define HD_QWRITER_DEFAULT_QUEUE 20000
#define HD_QWRITER_DEFAULT_BATCH 500

typedef struct {
  size_t max_queue;     /* rows waiting at most (0 = HD_QWRITER_DEFAULT_QUEUE) */
  size_t batch;         /* rows per transaction at most (0 = HD_QWRITER_DEFAULT_BATCH) */
  int64_t retention_ms; /* rows older than this are deleted (about once a minute); 0 = kept forever */
} hd_qwriter_config_t;

typedef struct {
  uint64_t queued;  /* gauge: rows waiting */
  uint64_t written; /* rows committed */
  uint64_t dropped; /* rows refused: queue full */
  uint64_t failed;  /* rows lost to a store error */
  uint64_t batches; /* transactions committed */
  uint64_t pruned;  /* rows deleted by the retention */
} hd_qwriter_stats_t;

typedef struct hd_qwriter hd_qwriter_t;

/* Starts the thread writing to st (st must outlive the writer). */
int hd_qwriter_start(hd_qwriter_t **out, hd_qstore_t *st, const hd_qwriter_config_t *cfg);
/* Queues n rows (copied), all or none: HD_ENOSPC if they do not fit. */
int hd_qwriter_push(hd_qwriter_t *w, const hd_qrow_t *rows, size_t n);
/* Waits until every row queued before the call is written (or failed), at
 * most timeout_ms: 0, or HD_ETIMEDOUT (a slow or unreachable database must not
 * hold the caller, the control thread, for long). */
int hd_qwriter_flush(hd_qwriter_t *w, int timeout_ms);
void hd_qwriter_stats(hd_qwriter_t *w, hd_qwriter_stats_t *out);
/* Writes what is queued, stops the thread and frees the writer. NULL ok. */
void hd_qwriter_stop(hd_qwriter_t *w);

#endif
