/* PostgreSQL backend of the quality store (store.h) through libpq: one
 * connection, parameters sent as text (PostgreSQL infers their types from the
 * columns they meet, so the SQL is the same as SQLite's), results read as text. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "quality/store.h"

#define PG_MAX_PARAMS 32

static int pg_exec(void *db, const char *sql, const hd_qparam_t *p, int np, hd_qrow_fn fn, void *ud,
                   char *err, size_t errcap) {
  PGconn *c = db;
  if (np > PG_MAX_PARAMS) return HD_EINVAL;
  char buf[PG_MAX_PARAMS][32];
  const char *vals[PG_MAX_PARAMS];
  for (int i = 0; i < np; i++) {
    switch (p[i].t) {
    case 'i': snprintf(buf[i], sizeof buf[i], "%lld", (long long)p[i].i), vals[i] = buf[i]; break;
    case 'd': snprintf(buf[i], sizeof buf[i], "%.17g", p[i].d), vals[i] = buf[i]; break;
    case 's': vals[i] = p[i].s ? p[i].s : ""; break;
    default: vals[i] = NULL; break;
    }
  }
  PGresult *r = PQexecParams(c, sql, np, NULL, vals, NULL, NULL, 0);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    snprintf(err, errcap, "postgres: %s", PQresultErrorMessage(r));
    PQclear(r);
    /* a dropped connection is re-established for the next statement */
    if (PQstatus(c) == CONNECTION_BAD) PQreset(c);
    return HD_EIO;
  }
  int rows = 0;
  if (st == PGRES_TUPLES_OK) {
    int nr = PQntuples(r), nc = PQnfields(r);
    if (nc > 32) nc = 32;
    for (int i = 0; i < nr; i++) {
      const char *v[32];
      for (int k = 0; k < nc; k++)
        v[k] = PQgetisnull(r, i, k) ? NULL : PQgetvalue(r, i, k);
      if (fn) fn(ud, nc, v);
    }
    rows = nr;
  } else {
    rows = atoi(PQcmdTuples(r));
  }
  PQclear(r);
  return rows;
}

static void pg_close(void *db) {
  if (db) PQfinish(db);
}

static const hd_qbackend_t pg_ops = {"postgres", pg_exec, pg_close};

static void quiet(void *arg, const char *msg) {
  (void)arg;
  (void)msg; /* NOTICEs ("relation already exists, skipping") are not errors */
}

int hd_qstore_pg_open(const char *url, void **db, const hd_qbackend_t **ops, char *err, size_t errcap) {
  PGconn *c = PQconnectdb(url);
  if (!c) return HD_ENOMEM;
  if (PQstatus(c) != CONNECTION_OK) {
    snprintf(err, errcap,
             "cannot connect to the quality database: %s(check quality_db and that the server runs)",
             PQerrorMessage(c));
    PQfinish(c);
    return HD_EIO;
  }
  PQsetNoticeProcessor(c, quiet, NULL);
  /* a query of the API runs on the node's control thread: it may not take long */
  PGresult *r = PQexec(c, "SET statement_timeout = 5000");
  PQclear(r);
  *db = c;
  *ops = &pg_ops;
  return 0;
}
