/* SQLite backend of the quality store (store.h): one connection, WAL journal
 * with synchronous=NORMAL (a committed batch survives a process crash), a busy
 * timeout for another process on the same file, and prepared statements cached
 * by SQL text pointer (the store's queries are static strings). */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "quality/store.h"

#define STMT_CACHE 48

typedef struct {
  sqlite3 *db;
  struct {
    const char *sql;
    sqlite3_stmt *st;
  } cache[STMT_CACHE];
  int n_cache;
} lite_t;

static sqlite3_stmt *prepare(lite_t *l, const char *sql, char *err, size_t errcap) {
  for (int i = 0; i < l->n_cache; i++)
    if (l->cache[i].sql == sql) return l->cache[i].st;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(l->db, sql, -1, &st, NULL) != SQLITE_OK) {
    snprintf(err, errcap, "sqlite: %s (in: %.80s)", sqlite3_errmsg(l->db), sql);
    return NULL;
  }
  if (l->n_cache < STMT_CACHE) {
    l->cache[l->n_cache].sql = sql;
    l->cache[l->n_cache].st = st;
    l->n_cache++;
  }
  return st;
}

static int lite_exec(void *db, const char *sql, const hd_qparam_t *p, int np, hd_qrow_fn fn, void *ud,
                     char *err, size_t errcap) {
  lite_t *l = db;
  sqlite3_stmt *st = prepare(l, sql, err, errcap);
  if (!st) return HD_EIO;
  int cached = 0;
  for (int i = 0; i < l->n_cache; i++)
    cached |= l->cache[i].st == st;
  int rc = 0;
  /* SQLite numbers "$N" parameters by first appearance, PostgreSQL by N: bind by name */
  for (int k = 1; k <= sqlite3_bind_parameter_count(st); k++) {
    const char *name = sqlite3_bind_parameter_name(st, k);
    int i = name && name[0] == '$' ? atoi(name + 1) - 1 : -1;
    if (i < 0 || i >= np) {
      snprintf(err, errcap, "sqlite: parameter %s has no value", name ? name : "?");
      rc = HD_EINVAL;
      goto out;
    }
    int b;
    switch (p[i].t) {
    case 'i': b = sqlite3_bind_int64(st, k, p[i].i); break;
    case 'd': b = sqlite3_bind_double(st, k, p[i].d); break;
    case 's': b = sqlite3_bind_text(st, k, p[i].s ? p[i].s : "", -1, SQLITE_STATIC); break;
    default: b = sqlite3_bind_null(st, k); break;
    }
    if (b != SQLITE_OK) {
      snprintf(err, errcap, "sqlite bind: %s", sqlite3_errmsg(l->db));
      rc = HD_EIO;
      goto out;
    }
  }
  for (;;) {
    int s = sqlite3_step(st);
    if (s == SQLITE_DONE) break;
    if (s != SQLITE_ROW) {
      snprintf(err, errcap, "sqlite: %s", sqlite3_errmsg(l->db));
      rc = HD_EIO;
      break;
    }
    int nc = sqlite3_column_count(st);
    const char *vals[32];
    if (nc > 32) nc = 32;
    for (int c = 0; c < nc; c++)
      vals[c] = (const char *)sqlite3_column_text(st, c);
    if (fn) fn(ud, nc, vals);
    rc++;
  }
  if (rc == 0 && sqlite3_column_count(st) == 0)
    rc = sqlite3_changes(l->db); /* rows a DELETE/INSERT touched */
out:
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  if (!cached) sqlite3_finalize(st);
  return rc;
}

static void lite_close(void *db) {
  lite_t *l = db;
  if (!l) return;
  for (int i = 0; i < l->n_cache; i++)
    sqlite3_finalize(l->cache[i].st);
  sqlite3_close(l->db);
  free(l);
}

static const hd_qbackend_t lite_ops = {"sqlite", lite_exec, lite_close};

int hd_qstore_sqlite_open(const char *path, void **db, const hd_qbackend_t **ops, char *err, size_t errcap) {
  lite_t *l = calloc(1, sizeof *l);
  if (!l) return HD_ENOMEM;
  if (sqlite3_open_v2(path, &l->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
      SQLITE_OK) {
    snprintf(err, errcap, "cannot open quality database %s: %s (check the directory exists and is writable)",
             path, l->db ? sqlite3_errmsg(l->db) : "out of memory");
    lite_close(l);
    return HD_EIO;
  }
  sqlite3_busy_timeout(l->db, 5000);
  char *e = NULL;
  if (strcmp(path, ":memory:") && sqlite3_exec(l->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                                               NULL, NULL, &e) != SQLITE_OK) {
    snprintf(err, errcap, "quality database %s: %s", path, e ? e : "pragma failed");
    sqlite3_free(e);
    lite_close(l);
    return HD_EIO;
  }
  *db = l;
  *ops = &lite_ops;
  return 0;
}
