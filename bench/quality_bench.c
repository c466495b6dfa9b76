/* Quality store write throughput (issue 14 item 2): how many rows per second
 * the writer thread (src/quality/writer.h) commits to SQLite (a file, WAL) and
 * to a real PostgreSQL (started here, tests/support/pg_server.h), and what
 * that means in sessions: a session (a participant with camera and
 * microphone, receiving one other) makes 6 rows per sample (node: 2 uplink +
 * 2 downlink legs; client: 2 received tracks), one sample every 5 s by
 * default. Numbers, not a test (DESIGN §6).
 *
 * Usage: quality_bench [--seconds S] [--only sqlite|postgres] [--json FILE] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "quality/store.h"
#include "quality/writer.h"
#include "support/pg_server.h"

#define ROWS_PER_SESSION_SAMPLE 6
#define SAMPLE_INTERVAL_S 5

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fill(hd_qrow_t *r, int i, int64_t ts) {
  memset(r, 0, sizeof *r);
  int session = i / ROWS_PER_SESSION_SAMPLE, k = i % ROWS_PER_SESSION_SAMPLE;
  r->kind = k < 4 ? HD_QROW_NODE : HD_QROW_CLIENT;
  r->k.ts = ts;
  snprintf(r->k.app, sizeof r->k.app, "bench");
  snprintf(r->k.room, sizeof r->k.room, "room-%d", session / 2);
  snprintf(r->k.room_sid, sizeof r->k.room_sid, "RM_%08d", session / 2);
  snprintf(r->k.identity, sizeof r->k.identity, "user-%d", session);
  snprintf(r->k.participant_sid, sizeof r->k.participant_sid, "PA_%08d", session);
  if (r->kind == HD_QROW_NODE) {
    hd_qnode_t *x = &r->u.node;
    snprintf(x->dir, sizeof x->dir, "%s", k < 2 ? "up" : "down");
    snprintf(x->track_sid, sizeof x->track_sid, "TR_%08d%d", session, k & 1);
    snprintf(x->kind, sizeof x->kind, "%s", k & 1 ? "video" : "audio");
    x->interval_ms = 5000, x->bitrate_bps = 800000, x->packets = 400, x->lost = 4, x->nack = 4, x->rtx = 4;
    x->rtt_ms = 40, x->jitter_ms = 3;
  } else {
    hd_qclient_t *x = &r->u.client;
    snprintf(x->track_sid, sizeof x->track_sid, "TR_%08d%d", session, k & 1);
    snprintf(x->kind, sizeof x->kind, "%s", k & 1 ? "video" : "audio");
    snprintf(x->candidate, sizeof x->candidate, "host");
    x->interval_ms = 5000, x->packets = 400, x->watched_ms = 5000, x->frames_decoded = 150;
    x->jb_delay_ms = 30, x->rtt_ms = 40;
  }
}

/* Pushes as fast as the queue takes rows for `seconds`, then waits for the
 * writer: rows committed per second over the whole time. */
static double run(const char *url, double seconds, char *err, size_t errcap) {
  hd_qstore_t *s = NULL;
  if (hd_qstore_open(&s, url, err, errcap) < 0) return -1;
  hd_qwriter_t *w = NULL;
  if (hd_qwriter_start(&w, s, NULL) < 0) return -1;
  enum { B = 120 };
  hd_qrow_t batch[B];
  double t0 = now_s();
  long pushed = 0;
  int64_t ts = INT64_C(1800000000000);
  while (now_s() - t0 < seconds) {
    for (int i = 0; i < B; i++)
      fill(&batch[i], (int)((pushed + i) % 60000), ts + (pushed + i) / 60000 * 5000);
    if (hd_qwriter_push(w, batch, B) < 0) {
      usleep(500);
      continue;
    }
    pushed += B;
  }
  hd_qwriter_flush(w, 60000);
  double dt = now_s() - t0;
  hd_qwriter_stats_t st;
  hd_qwriter_stats(w, &st);
  hd_qwriter_stop(w);
  hd_qstore_close(s);
  return (double)st.written / dt;
}

int main(int argc, char **argv) {
  double seconds = 5;
  const char *only = NULL, *json = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
      seconds = atof(argv[++i]);
    else if (!strcmp(argv[i], "--only") && i + 1 < argc)
      only = argv[++i];
    else if (!strcmp(argv[i], "--json") && i + 1 < argc)
      json = argv[++i];
    else {
      fprintf(stderr, "usage: quality_bench [--seconds S] [--only sqlite|postgres] [--json FILE]\n");
      return 2;
    }
  }
  char err[512];
  double lite = -1, pgr = -1;
  if (!only || !strcmp(only, "sqlite")) {
    char dir[] = "/tmp/hdqb.XXXXXX", db[64];
    if (!mkdtemp(dir)) return 1;
    snprintf(db, sizeof db, "%s/q.db", dir);
    lite = run(db, seconds, err, sizeof err);
    if (lite < 0) fprintf(stderr, "sqlite: %s\n", err);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  }
  if (!only || !strcmp(only, "postgres")) {
    hd_pg_server_t pg;
    if (hd_pg_server_start(&pg, err, sizeof err) < 0)
      fprintf(stderr, "postgres: not measured: %s\n", err);
    else {
      pgr = run(pg.url, seconds, err, sizeof err);
      if (pgr < 0) fprintf(stderr, "postgres: %s\n", err);
    }
    hd_pg_server_stop(&pg);
  }
  printf("%-9s %12s %28s\n", "store", "rows/s", "sessions at 1 sample / 5 s");
  if (lite >= 0)
    printf("%-9s %12.0f %28.0f\n", "sqlite", lite, lite * SAMPLE_INTERVAL_S / ROWS_PER_SESSION_SAMPLE);
  if (pgr >= 0)
    printf("%-9s %12.0f %28.0f\n", "postgres", pgr, pgr * SAMPLE_INTERVAL_S / ROWS_PER_SESSION_SAMPLE);
  if (json) {
    FILE *f = fopen(json, "w");
    if (f) {
      fprintf(f,
              "{\"bench\":\"quality_store\",\"seconds\":%.1f,\"rows_per_session_sample\":%d,\"sample_"
              "interval_s\":%d,"
              "\"sqlite_rows_per_s\":%.0f,\"sqlite_sessions\":%.0f,\"postgres_rows_per_s\":%.0f,"
              "\"postgres_sessions\":%.0f}\n",
              seconds, ROWS_PER_SESSION_SAMPLE, SAMPLE_INTERVAL_S, lite,
              lite * SAMPLE_INTERVAL_S / ROWS_PER_SESSION_SAMPLE, pgr,
              pgr * SAMPLE_INTERVAL_S / ROWS_PER_SESSION_SAMPLE);
      fclose(f);
    }
  }
  return 0;
}
