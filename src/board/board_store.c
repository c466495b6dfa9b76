/* SQLite whiteboard store (board_store.h). One prepared statement per query,
 * made once; WAL, synchronous=NORMAL like the RTM store (docs/rtm.md
 * "Storage"): a committed entry survives a process crash. */
#include "board/board_store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

enum { Q_APPEND, Q_SNAP_PUT, Q_SNAP_TRIM, Q_SNAP_GET, Q_ENTRIES, Q_LAST, Q_IMG_PUT, Q_IMG_GET, Q_N };

static const char *const SQL[Q_N] = {
    [Q_APPEND] = "INSERT OR REPLACE INTO board_op(app,ch,seq,ts,entry) VALUES(?1,?2,?3,?4,?5)",
    [Q_SNAP_PUT] = "INSERT OR REPLACE INTO board_snap(app,ch,seq,snap) VALUES(?1,?2,?3,?4)",
    [Q_SNAP_TRIM] = "DELETE FROM board_snap WHERE app=?1 AND ch=?2 AND seq NOT IN "
                    "(SELECT seq FROM board_snap WHERE app=?1 AND ch=?2 ORDER BY seq DESC LIMIT 2)",
    [Q_SNAP_GET] = "SELECT seq,snap FROM board_snap WHERE app=?1 AND ch=?2 ORDER BY seq DESC LIMIT 1",
    [Q_ENTRIES] = "SELECT seq,ts,entry FROM board_op WHERE app=?1 AND ch=?2 AND seq>?3 AND ts>=?4 "
                  "ORDER BY seq LIMIT ?5",
    [Q_LAST] = "SELECT max(seq) FROM board_op WHERE app=?1 AND ch=?2",
    [Q_IMG_PUT] = "INSERT OR IGNORE INTO board_image(hash,type,data) VALUES(?1,?2,?3)",
    [Q_IMG_GET] = "SELECT type,data FROM board_image WHERE hash=?1",
};

struct hd_board_store {
  sqlite3 *db;
  sqlite3_stmt *st[Q_N];
};

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS board_op(app TEXT NOT NULL, ch TEXT NOT NULL, seq INTEGER NOT NULL,"
    " ts INTEGER NOT NULL, entry TEXT NOT NULL, PRIMARY KEY(app,ch,seq)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS board_snap(app TEXT NOT NULL, ch TEXT NOT NULL, seq INTEGER NOT NULL,"
    " snap TEXT NOT NULL, PRIMARY KEY(app,ch,seq)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS board_image(hash TEXT PRIMARY KEY, type TEXT NOT NULL, data BLOB NOT NULL);";

int hd_board_store_open(hd_board_store_t **out, const char *path, char *err, size_t errcap) {
  hd_board_store_t *s = calloc(1, sizeof *s);
  if (!s) return HD_ENOMEM;
  if (sqlite3_open(path, &s->db) != SQLITE_OK) goto fail;
  sqlite3_busy_timeout(s->db, 2000); /* the RTM store's connection may hold the write lock briefly */
  if (sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, NULL) !=
          SQLITE_OK ||
      sqlite3_exec(s->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK)
    goto fail;
  for (int i = 0; i < Q_N; i++)
    if (sqlite3_prepare_v2(s->db, SQL[i], -1, &s->st[i], NULL) != SQLITE_OK) goto fail;
  *out = s;
  return 0;
fail:
  if (err && errcap) snprintf(err, errcap, "%s: %s", path, s->db ? sqlite3_errmsg(s->db) : "cannot open");
  hd_board_store_free(s);
  return HD_EIO;
}

void hd_board_store_free(hd_board_store_t *s) {
  if (!s) return;
  for (int i = 0; i < Q_N; i++)
    sqlite3_finalize(s->st[i]);
  sqlite3_close(s->db);
  free(s);
}

static sqlite3_stmt *q(hd_board_store_t *s, int i) {
  sqlite3_reset(s->st[i]);
  sqlite3_clear_bindings(s->st[i]);
  return s->st[i];
}

static int done(sqlite3_stmt *st, int rc) {
  sqlite3_reset(st);
  return rc;
}

int hd_board_store_append(hd_board_store_t *s, const char *app, const char *ch, int64_t seq, int64_t ts_ms,
                          const char *entry) {
  sqlite3_stmt *st = q(s, Q_APPEND);
  sqlite3_bind_text(st, 1, app, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, ch, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, seq);
  sqlite3_bind_int64(st, 4, ts_ms);
  sqlite3_bind_text(st, 5, entry, -1, SQLITE_STATIC);
  return done(st, sqlite3_step(st) == SQLITE_DONE ? 0 : HD_EIO);
}

int hd_board_store_snap_put(hd_board_store_t *s, const char *app, const char *ch, int64_t seq,
                            const char *snap) {
  sqlite3_stmt *st = q(s, Q_SNAP_PUT);
  sqlite3_bind_text(st, 1, app, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, ch, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, seq);
  sqlite3_bind_text(st, 4, snap, -1, SQLITE_STATIC);
  if (done(st, sqlite3_step(st) == SQLITE_DONE ? 0 : HD_EIO) < 0) return HD_EIO;
  st = q(s, Q_SNAP_TRIM);
  sqlite3_bind_text(st, 1, app, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, ch, -1, SQLITE_STATIC);
  return done(st, sqlite3_step(st) == SQLITE_DONE ? 0 : HD_EIO);
}

int hd_board_store_snap_get(hd_board_store_t *s, const char *app, const char *ch, int64_t *seq, char **snap) {
  sqlite3_stmt *st = q(s, Q_SNAP_GET);
  sqlite3_bind_text(st, 1, app, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, ch, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) return done(st, HD_ENOTFOUND);
  if (rc != SQLITE_ROW) return done(st, HD_EIO);
  *seq = sqlite3_column_int64(st, 0);
  const char *t = (const char *)sqlite3_column_text(st, 1);
  *snap = t ? strdup(t) : NULL;
  return done(st, *snap ? 0 : HD_ENOMEM);
}

int hd_board_store_entries(hd_board_store_t *s, const char *app, const char *ch, int64_t after,
                           int64_t since_ms, int limit, hd_board_entry_fn fn, void *ud) {
  sqlite3_stmt *st = q(s, Q_ENTRIES);
  sqlite3_bind_text(st, 1, app, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, ch, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, after);
  sqlite3_bind_int64(st, 4, since_ms < 0 ? INT64_MIN : since_ms);
  sqlite3_bind_int(st, 5, limit);
  int n = 0, rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    n++;
    if (fn(ud, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
           (const char *)sqlite3_column_text(st, 2)) < 0)
      break;
  }
  return done(st, rc == SQLITE_ROW || rc == SQLITE_DONE ? n : HD_EIO);
}

int hd_board_store_last_seq(hd_board_store_t *s, const char *app, const char *ch, int64_t *seq) {
  sqlite3_stmt *st = q(s, Q_LAST);
  sqlite3_bind_text(st, 1, app, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, ch, -1, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_ROW) return done(st, HD_EIO);
  *seq = sqlite3_column_int64(st, 0);
  return done(st, 0);
}

int hd_board_store_image_put(hd_board_store_t *s, const char *hash, const char *type, const void *data,
                             size_t len) {
  sqlite3_stmt *st = q(s, Q_IMG_PUT);
  sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 3, data, (int)len, SQLITE_STATIC);
  return done(st, sqlite3_step(st) == SQLITE_DONE ? 0 : HD_EIO);
}

int hd_board_store_image_get(hd_board_store_t *s, const char *hash, char type[64], void **data, size_t *len) {
  sqlite3_stmt *st = q(s, Q_IMG_GET);
  sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) return done(st, HD_ENOTFOUND);
  if (rc != SQLITE_ROW) return done(st, HD_EIO);
  snprintf(type, 64, "%s", (const char *)sqlite3_column_text(st, 0));
  int n = sqlite3_column_bytes(st, 1);
  *data = malloc(n ? (size_t)n : 1);
  if (!*data) return done(st, HD_ENOMEM);
  memcpy(*data, sqlite3_column_blob(st, 1), (size_t)n);
  *len = (size_t)n;
  return done(st, 0);
}
