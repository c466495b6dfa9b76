/* RTM stored publishes (issue 17 item 2): the control thread's cost of a
 * `pub` with "store":true against the same `pub` without, through the real
 * broker (src/rtm/broker.h) and the real SQLite store (src/rtm/store_sqlite.c)
 * on a database file, no sockets: what the node's loop thread spends per
 * publish in the broker (parse, sequence, store, ok, fan-out to `--subs`
 * subscribers) and nothing of the WebSocket layer. Numbers, not a test
 * (DESIGN §6).
 *
 * Blocks of --n publishes, plain and stored alternated --rounds times; each
 * block is run by its own non-inlined function (run_plain / run_stored) so
 * that callgrind gives the exact instruction count of each:
 *
 *   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
 *       build/rtm_store_bench --n 2000 --rounds 1
 *   callgrind_annotate --inclusive=yes /tmp/cg.out | grep -E 'run_(plain|stored)'
 *
 * Prints CPU µs per publish (CLOCK_PROCESS_CPUTIME_ID) and wall µs per
 * publish of each block. --batch K hands K publishes to the broker per loop
 * turn (hd_rtm_turn_end after every K; 1 = one per turn).
 *
 * Usage: rtm_store_bench [--n 2000] [--rounds 3] [--subs 0] [--payload 64]
 *                        [--channels 1] [--batch 1] [--db /tmp/rtm_store_bench.db] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rtm/broker.h"
#include "support/rtm_world.h"

#ifndef HD_RTM_GROUP_COMMIT /* a broker without group commit (the build before): every publish is its own    \
                               turn */
#define hd_rtm_turn_end(b) ((void)(b))
#endif

static uint64_t sent, errors, last_s[64];

static void on_send(void *ud, uint64_t conn, const char *t, size_t len) {
  sent++;
  if (!strncmp(t, "{\"type\":\"error\"", 16)) {
    if (!errors++) fprintf(stderr, "first error: %.*s\n", (int)len, t);
  }
  const char *p = len > 8 ? strstr(t + len - 30 > t ? t + len - 30 : t, "\"s\":") : NULL;
  if (p && conn < 64) last_s[conn] = strtoull(p + 4, NULL, 10);
}
static void on_close(void *ud, uint64_t conn, int code, const char *reason) {
  fprintf(stderr, "connection %llu closed %d %s\n", (unsigned long long)conn, code, reason);
  exit(1);
}
static const char *lookup(void *ud, const char *key) { return SECRET; }

static double clk(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int n = 2000, subs = 0, payload = 64, channels = 1, batch = 1;
static char *data;

static void msg(hd_rtm_broker_t *b, uint64_t conn, const char *t) {
  if (hd_rtm_conn_message(b, conn, t, strlen(t), now) != 0) {
    fprintf(stderr, "broker refused: %s\n", t);
    exit(1);
  }
}

static void ack(hd_rtm_broker_t *b, uint64_t conn) {
  char t[64];
  snprintf(t, sizeof t, "{\"type\":\"ack\",\"s\":%llu}", (unsigned long long)last_s[conn]);
  msg(b, conn, t);
}

static void block(hd_rtm_broker_t *b, int stored, int round) {
  char *t = malloc((size_t)payload + 200);
  for (int i = 0; i < n; i++) {
    snprintf(t, (size_t)payload + 200,
             "{\"type\":\"pub\",\"id\":\"%c%d.%d\",\"ch\":\"c%d\",\"data\":\"%s\"%s}", stored ? 's' : 'p',
             round, i, i % channels, data, stored ? ",\"store\":true" : "");
    msg(b, 1, t);
    if ((i + 1) % batch == 0) hd_rtm_turn_end(b);
    if (i % 32 == 31)
      for (uint64_t c = 1; c <= (uint64_t)subs + 1; c++)
        ack(b, c);
  }
  hd_rtm_turn_end(b);
  for (uint64_t c = 1; c <= (uint64_t)subs + 1; c++)
    ack(b, c);
  free(t);
}
__attribute__((noinline)) static void run_plain(hd_rtm_broker_t *b, int round) { block(b, 0, round); }
__attribute__((noinline)) static void run_stored(hd_rtm_broker_t *b, int round) { block(b, 1, round); }

int main(int argc, char **argv) {
  int rounds = 3;
  const char *db = "/tmp/rtm_store_bench.db";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--n"))
      n = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--rounds"))
      rounds = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--subs"))
      subs = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--payload"))
      payload = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--channels"))
      channels = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--batch"))
      batch = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--db"))
      db = argv[i + 1];
    else {
      fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (n < 1 || subs < 0 || subs > 60 || payload < 1 || payload > 30000 || channels < 1 || batch < 1) {
    fprintf(stderr, "bad arguments\n");
    return 2;
  }
  data = malloc((size_t)payload + 1);
  memset(data, 'x', (size_t)payload);
  data[payload] = 0;
  char path[512];
  for (const char *sfx = ""; sfx; sfx = !*sfx ? "-wal" : !strcmp(sfx, "-wal") ? "-shm" : NULL) {
    snprintf(path, sizeof path, "%s%s", db, sfx);
    unlink(path);
  }
  hd_rtm_store_t *st;
  char err[256];
  if (hd_rtm_store_sqlite_new(&st, db, err, sizeof err) != 0) {
    fprintf(stderr, "store: %s\n", err);
    return 1;
  }
  now = HD_SEC(1000);
  hd_rtm_config_t cfg = {.send = on_send,
                         .close = on_close,
                         .secret_lookup = lookup,
                         .store = st,
                         .wall_offset = HD_SEC(1700000000),
                         .rate = 1e9,
                         .burst = 1e9,
                         .window_msgs = 4096};
#ifdef HD_RTM_GROUP_COMMIT
  cfg.group_commit = 1;
#endif
  hd_rtm_broker_t *b;
  if (hd_rtm_broker_new(&b, &cfg, now) != 0) return 1;
  char t[2048];
  for (uint64_t c = 1; c <= (uint64_t)subs + 1; c++) {
    char u[16];
    snprintf(u, sizeof u, "u%llu", (unsigned long long)c);
    hd_rtm_conn_open(b, c, now);
    snprintf(t, sizeof t, "{\"type\":\"login\",\"token\":\"%s\"}", token_x("app", u, "", 0));
    msg(b, c, t);
    for (int k = 0; c > 1 && k < channels; k++) {
      snprintf(t, sizeof t, "{\"type\":\"sub\",\"ch\":\"c%d\"}", k);
      msg(b, c, t);
    }
    hd_rtm_turn_end(b);
    ack(b, c);
  }
  printf("rtm_store_bench: %d publishes per block, %d-byte payload, %d subscribers, %d channels, %d per "
         "turn, db %s\n",
         n, payload, subs, channels, batch, db);
  for (int r = 0; r < rounds; r++)
    for (int k = 0; k < 2; k++) {
      int stored = (r + k) % 2; /* alternate which goes first */
      double c0 = clk(CLOCK_PROCESS_CPUTIME_ID), w0 = clk(CLOCK_MONOTONIC);
      if (stored)
        run_stored(b, r);
      else
        run_plain(b, r);
      double c1 = clk(CLOCK_PROCESS_CPUTIME_ID), w1 = clk(CLOCK_MONOTONIC);
      printf("round %d %-6s cpu %.2f us/pub  wall %.2f us/pub\n", r, stored ? "stored" : "plain",
             (c1 - c0) / n, (w1 - w0) / n);
      fflush(stdout);
    }
  printf("%llu messages sent to the connections, %llu errors\n", (unsigned long long)sent,
         (unsigned long long)errors);
  hd_rtm_broker_free(b);
  hd_rtm_store_free(st);
  free(data);
  return 0;
}
