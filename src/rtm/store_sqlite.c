/* SQLite RTM store (store.h), the default: history, sequence high-water marks,
 * attributes and locks in one database file that survives a node restart.
 * WAL journal with synchronous=NORMAL: a committed write survives a process
 * crash; an OS crash may lose the last transactions (docs/rtm.md "Storage").
 * Prepared statements are made once. Attribute compare-and-set runs in one
 * transaction (BEGIN IMMEDIATE), so the check and the write are atomic even
 * with another process on the same file.
 *
 * Quotas (docs/rtm.md "Storage quotas"): chan_stat keeps each channel's
 * stored message count and bytes, updated in the append's transaction, so
 * that trimming to exactly `keep` messages and the per-app usage cost one
 * indexed row each instead of a scan; the per-app sums are cached in memory
 * (loaded from chan_stat on first use). The disk floor is a statvfs() of the
 * database's directory before each stored append (once per batch).
 *
 * Group commit (batch_begin / batch_end): the broker's stored publishes of
 * one loop turn share one transaction (one WAL append instead of one per
 * message); each append is a SAVEPOINT in it, so a refused or failed one
 * leaves the others, and the cached usage includes the batch's appends
 * (quota checks stay exact). A batch that does not commit drops the cache,
 * which is then loaded again from chan_stat (what is committed). */
#include <sqlite3.h>
#include <stdio.h>
#include <sys/statvfs.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "rtm/store.h"

enum {
  S_SEQ_GET,
  S_SEQ_PUT,
  S_MSG_INS,
  S_MSG_TRIM,
  S_TRIM_BYTES,
  S_STAT_GET,
  S_STAT_PUT,
  S_USAGE,
  S_Q_AFTER,
  S_Q_SINCE,
  S_Q_LAST,
  S_ATTR_LIST,
  S_ATTR_GET,
  S_ATTR_COUNT,
  S_ATTR_PUT,
  S_LOCK_PUT,
  S_LOCK_DEL,
  S_LOCK_ALL,
  S_BEGIN,
  S_COMMIT,
  S_ROLLBACK,
  S_SP,
  S_SP_RELEASE,
  S_SP_ROLLBACK,
  S_COUNT
};

static const char *const SQL[S_COUNT] = {
    [S_SEQ_GET] = "SELECT hwm FROM chan_seq WHERE app=?1 AND ch=?2",
    [S_SEQ_PUT] = "INSERT INTO chan_seq(app,ch,hwm) VALUES(?1,?2,?3) "
                  "ON CONFLICT(app,ch) DO UPDATE SET hwm=excluded.hwm",
    [S_MSG_INS] = "INSERT OR REPLACE INTO msg(app,ch,cseq,ts,sender,data) VALUES(?1,?2,?3,?4,?5,?6)",
    [S_MSG_TRIM] = "DELETE FROM msg WHERE app=?1 AND ch=?2 AND cseq IN "
                   "(SELECT cseq FROM msg WHERE app=?1 AND ch=?2 ORDER BY cseq LIMIT ?3)",
    [S_TRIM_BYTES] = "SELECT total(length(CAST(sender AS BLOB)) + length(CAST(data AS BLOB))) FROM "
                     "(SELECT sender,data FROM msg WHERE app=?1 AND ch=?2 ORDER BY cseq LIMIT ?3)",
    [S_STAT_GET] = "SELECT n,bytes FROM chan_stat WHERE app=?1 AND ch=?2",
    [S_STAT_PUT] = "INSERT INTO chan_stat(app,ch,n,bytes) VALUES(?1,?2,?3,?4) "
                   "ON CONFLICT(app,ch) DO UPDATE SET n=excluded.n, bytes=excluded.bytes",
    [S_USAGE] = "SELECT count(*), total(bytes) FROM chan_stat WHERE app=?1 AND n>0",
    [S_Q_AFTER] =
        "SELECT cseq,ts,sender,data FROM msg WHERE app=?1 AND ch=?2 AND cseq>?3 ORDER BY cseq LIMIT ?4",
    [S_Q_SINCE] =
        "SELECT cseq,ts,sender,data FROM msg WHERE app=?1 AND ch=?2 AND ts>=?3 ORDER BY cseq LIMIT ?4",
    [S_Q_LAST] = "SELECT * FROM (SELECT cseq,ts,sender,data FROM msg WHERE app=?1 AND ch=?2 "
                 "ORDER BY cseq DESC LIMIT ?4) ORDER BY cseq",
    [S_ATTR_LIST] =
        "SELECT k,v,rev FROM attr WHERE app=?1 AND sc=?2 AND name=?3 AND v IS NOT NULL ORDER BY k",
    [S_ATTR_GET] = "SELECT v,rev FROM attr WHERE app=?1 AND sc=?2 AND name=?3 AND k=?4",
    [S_ATTR_COUNT] = "SELECT count(*) FROM attr WHERE app=?1 AND sc=?2 AND name=?3 AND v IS NOT NULL",
    [S_ATTR_PUT] = "INSERT INTO attr(app,sc,name,k,v,rev) VALUES(?1,?2,?3,?4,?5,?6) "
                   "ON CONFLICT(app,sc,name,k) DO UPDATE SET v=excluded.v, rev=excluded.rev",
    [S_LOCK_PUT] = "INSERT INTO lck(app,ch,name,owner,exp) VALUES(?1,?2,?3,?4,?5) "
                   "ON CONFLICT(app,ch,name) DO UPDATE SET owner=excluded.owner, exp=excluded.exp",
    [S_LOCK_DEL] = "DELETE FROM lck WHERE app=?1 AND ch=?2 AND name=?3",
    [S_LOCK_ALL] = "SELECT app,ch,name,owner,exp FROM lck",
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SP] = "SAVEPOINT msg",
    [S_SP_RELEASE] = "RELEASE msg",
    [S_SP_ROLLBACK] = "ROLLBACK TO msg",
};

static const char SCHEMA[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS chan_seq(app TEXT, ch TEXT, hwm INTEGER, PRIMARY KEY(app,ch));"
    "CREATE TABLE IF NOT EXISTS msg(app TEXT, ch TEXT, cseq INTEGER, ts INTEGER, sender TEXT, data TEXT,"
    " PRIMARY KEY(app,ch,cseq));"
    "CREATE INDEX IF NOT EXISTS msg_ts ON msg(app,ch,ts);"
    "CREATE TABLE IF NOT EXISTS attr(app TEXT, sc INTEGER, name TEXT, k TEXT, v TEXT, rev INTEGER,"
    " PRIMARY KEY(app,sc,name,k));"
    "CREATE TABLE IF NOT EXISTS lck(app TEXT, ch TEXT, name TEXT, owner TEXT, exp INTEGER,"
    " PRIMARY KEY(app,ch,name));";

/* Added with the quotas: a database from before gets its chan_stat from msg. */
static const char STAT_SCHEMA[] =
    "CREATE TABLE chan_stat(app TEXT, ch TEXT, n INTEGER, bytes INTEGER, PRIMARY KEY(app,ch));"
    "INSERT INTO chan_stat SELECT app, ch, count(*),"
    " total(length(CAST(sender AS BLOB)) + length(CAST(data AS BLOB))) FROM msg GROUP BY app, ch;";

/* Cached per-app usage (apps are the configured tenants: a short list). */
typedef struct app_use {
  struct app_use *next;
  int64_t channels, bytes;
  char app[];
} app_use_t;

typedef struct {
  hd_rtm_store_t base;
  sqlite3 *db;
  sqlite3_stmt *st[S_COUNT];
  app_use_t *apps;
  char *dir;          /* the database's directory (disk floor); NULL for ":memory:" */
  int batch;          /* between batch_begin and batch_end: appends are savepoints of one transaction */
  int broken;         /* that transaction ended early (SQLite rolls back on a full disk / I/O error) */
  int64_t batch_free; /* the disk floor's statvfs, once per batch (-1: not yet) */
} sq_t;

static sqlite3_stmt *stmt(sq_t *q, int i) {
  sqlite3_stmt *s = q->st[i];
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return s;
}

static void btext(sqlite3_stmt *s, int i, const char *v) {
  if (v)
    sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(s, i);
}

static int done(sqlite3_stmt *s) {
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : HD_EIO;
}

static void drop_usage(sq_t *q);

static void sq_close(hd_rtm_store_t *s) {
  sq_t *q = (sq_t *)s;
  for (int i = 0; i < S_COUNT; i++)
    sqlite3_finalize(q->st[i]);
  sqlite3_close(q->db);
  drop_usage(q);
  free(q->dir);
  free(q);
}

static int sq_seq_get(hd_rtm_store_t *s, const char *app, const char *ch, int64_t *out) {
  sqlite3_stmt *st = stmt((sq_t *)s, S_SEQ_GET);
  btext(st, 1, app);
  btext(st, 2, ch);
  int rc = sqlite3_step(st);
  *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_reset(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : HD_EIO;
}

static int sq_seq_put(hd_rtm_store_t *s, const char *app, const char *ch, int64_t hwm) {
  sqlite3_stmt *st = stmt((sq_t *)s, S_SEQ_PUT);
  btext(st, 1, app);
  btext(st, 2, ch);
  sqlite3_bind_int64(st, 3, hwm);
  return done(st);
}

static app_use_t *app_use(sq_t *q, const char *app) {
  for (app_use_t *a = q->apps; a; a = a->next)
    if (!strcmp(a->app, app)) return a;
  size_t n = strlen(app) + 1;
  app_use_t *a = calloc(1, sizeof *a + n);
  if (!a) return NULL;
  memcpy(a->app, app, n);
  sqlite3_stmt *st = stmt(q, S_USAGE);
  btext(st, 1, app);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    a->channels = sqlite3_column_int64(st, 0);
    a->bytes = (int64_t)sqlite3_column_double(st, 1);
  }
  sqlite3_reset(st);
  if (rc != SQLITE_ROW) {
    free(a);
    return NULL;
  }
  a->next = q->apps;
  q->apps = a;
  return a;
}

static int sq_usage(hd_rtm_store_t *s, const char *app, hd_rtm_usage_t *out) {
  memset(out, 0, sizeof *out);
  app_use_t *a = app_use((sq_t *)s, app);
  if (!a) return HD_EIO;
  out->channels = a->channels;
  out->bytes = a->bytes;
  return 0;
}

static int sq_msg_append(hd_rtm_store_t *s, const char *app, const char *ch, const hd_rtm_stored_msg_t *m,
                         const hd_rtm_store_limits_t *lim, hd_rtm_usage_t *use) {
  sq_t *q = (sq_t *)s;
  hd_rtm_usage_t u = {0};
  app_use_t *a = app_use(q, app);
  if (!a) return HD_EIO;
  u.channels = a->channels;
  u.bytes = a->bytes;
  if (lim->min_free_bytes > 0 && q->dir) {
    struct statvfs fs;
    if (q->batch && q->batch_free >= 0)
      u.disk_free = q->batch_free; /* the batch's writes reach the disk at its commit */
    else if (statvfs(q->dir, &fs) == 0) {
      u.disk_free = (int64_t)fs.f_bavail * (int64_t)fs.f_frsize;
      if (q->batch) q->batch_free = u.disk_free;
    } else
      u.disk_free = -1;
    if (u.disk_free >= 0 && u.disk_free < lim->min_free_bytes) u.refused = HD_RTM_STORE_DISK_FLOOR;
  }
  sqlite3_stmt *st = stmt(q, S_STAT_GET);
  btext(st, 1, app);
  btext(st, 2, ch);
  int r = sqlite3_step(st);
  int64_t n = r == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  int64_t bytes = r == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
  sqlite3_reset(st);
  if (r != SQLITE_ROW && r != SQLITE_DONE) return HD_EIO;
  int64_t len = (int64_t)(strlen(m->from) + strlen(m->data)), trimmed = 0;
  int64_t k = lim->keep > 0 && n + 1 > lim->keep ? n + 1 - lim->keep : 0; /* oldest that make room */
  if (k > 0) {
    st = stmt(q, S_TRIM_BYTES);
    btext(st, 1, app);
    btext(st, 2, ch);
    sqlite3_bind_int64(st, 3, k);
    r = sqlite3_step(st);
    trimmed = r == SQLITE_ROW ? (int64_t)sqlite3_column_double(st, 0) : 0;
    sqlite3_reset(st);
    if (r != SQLITE_ROW) return HD_EIO;
  }
  if (!u.refused && lim->app_channels > 0 && n == 0 && u.channels >= lim->app_channels)
    u.refused = HD_RTM_STORE_QUOTA_CHANNELS;
  else if (!u.refused && lim->app_bytes > 0 && len > trimmed && u.bytes + len - trimmed > lim->app_bytes)
    u.refused = HD_RTM_STORE_QUOTA_BYTES;
  if (u.refused) {
    if (use) *use = u;
    return HD_ENOSPC;
  }
  if (q->batch && (q->broken || sqlite3_get_autocommit(q->db))) {
    q->broken = 1; /* the batch's transaction is gone: nothing more joins it */
    return HD_EIO;
  }
  if (done(stmt(q, q->batch ? S_SP : S_BEGIN)) < 0) return HD_EIO;
  st = stmt(q, S_MSG_INS);
  btext(st, 1, app);
  btext(st, 2, ch);
  sqlite3_bind_int64(st, 3, m->cseq);
  sqlite3_bind_int64(st, 4, m->ts_ms);
  btext(st, 5, m->from);
  btext(st, 6, m->data);
  int rc = done(st);
  if (rc == 0 && k > 0) {
    st = stmt(q, S_MSG_TRIM);
    btext(st, 1, app);
    btext(st, 2, ch);
    sqlite3_bind_int64(st, 3, k);
    rc = done(st);
  }
  if (rc == 0) {
    st = stmt(q, S_STAT_PUT);
    btext(st, 1, app);
    btext(st, 2, ch);
    sqlite3_bind_int64(st, 3, n + 1 - k);
    sqlite3_bind_int64(st, 4, bytes + len - trimmed);
    rc = done(st);
  }
  if (rc == 0 && done(stmt(q, q->batch ? S_SP_RELEASE : S_COMMIT)) < 0) rc = HD_EIO;
  if (rc < 0) {
    if (q->batch && !sqlite3_get_autocommit(q->db)) {
      done(stmt(q, S_SP_ROLLBACK));
      done(stmt(q, S_SP_RELEASE));
    } else if (q->batch)
      q->broken = 1;
    else
      done(stmt(q, S_ROLLBACK));
    return rc;
  }
  if (n == 0) a->channels++;
  a->bytes += len - trimmed;
  if (use) {
    u.channels = a->channels;
    u.bytes = a->bytes;
    *use = u;
  }
  return 0;
}

static int sq_msg_query(hd_rtm_store_t *s, const char *app, const char *ch, const hd_rtm_hist_query_t *qq,
                        hd_rtm_msg_fn fn, void *ud) {
  sq_t *q = (sq_t *)s;
  int which = qq->after >= 0 ? S_Q_AFTER : qq->since >= 0 ? S_Q_SINCE : S_Q_LAST;
  sqlite3_stmt *st = stmt(q, which);
  btext(st, 1, app);
  btext(st, 2, ch);
  sqlite3_bind_int64(st, 3, which == S_Q_AFTER ? qq->after : qq->since);
  sqlite3_bind_int(st, 4, qq->limit);
  int n = 0, rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    hd_rtm_stored_msg_t m = {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                             (const char *)sqlite3_column_text(st, 2),
                             (const char *)sqlite3_column_text(st, 3)};
    if (!m.from) m.from = "";
    if (!m.data) m.data = "";
    n++;
    if (fn(ud, &m) < 0) break;
  }
  int bad = rc != SQLITE_ROW && rc != SQLITE_DONE;
  sqlite3_reset(st);
  return bad ? HD_EIO : n;
}

static int sq_attr_list(hd_rtm_store_t *s, const char *app, hd_rtm_scope_t sc, const char *name,
                        hd_rtm_attr_fn fn, void *ud) {
  sqlite3_stmt *st = stmt((sq_t *)s, S_ATTR_LIST);
  btext(st, 1, app);
  sqlite3_bind_int(st, 2, (int)sc);
  btext(st, 3, name);
  int n = 0, rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    hd_rtm_attr_t a = {(const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
                       sqlite3_column_int64(st, 2)};
    if (!a.key || !a.value) continue;
    n++;
    if (fn(ud, &a) < 0) break;
  }
  int bad = rc != SQLITE_ROW && rc != SQLITE_DONE;
  sqlite3_reset(st);
  return bad ? HD_EIO : n;
}

static int sq_attr_cas(hd_rtm_store_t *s, const char *app, hd_rtm_scope_t sc, const char *name,
                       const char *key, const char *value, int64_t expect, int max_keys, int64_t *rev) {
  sq_t *q = (sq_t *)s;
  if (done(stmt(q, S_BEGIN)) < 0) return HD_EIO;
  int rc = 0;
  sqlite3_stmt *st = stmt(q, S_ATTR_GET);
  btext(st, 1, app);
  sqlite3_bind_int(st, 2, (int)sc);
  btext(st, 3, name);
  btext(st, 4, key);
  int r = sqlite3_step(st);
  int exists = r == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
  int64_t stored = r == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0; /* tombstones keep counting */
  sqlite3_reset(st);
  if (r != SQLITE_ROW && r != SQLITE_DONE) {
    rc = HD_EIO;
    goto out;
  }
  int64_t cur = exists ? stored : 0;
  if (expect >= 0 && expect != cur) {
    *rev = cur;
    rc = HD_ESTATE;
    goto out;
  }
  if (!value && !exists) {
    rc = HD_ENOTFOUND;
    goto out;
  }
  if (value && !exists && max_keys > 0) {
    st = stmt(q, S_ATTR_COUNT);
    btext(st, 1, app);
    sqlite3_bind_int(st, 2, (int)sc);
    btext(st, 3, name);
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (n >= max_keys) {
      rc = HD_ENOSPC;
      goto out;
    }
  }
  st = stmt(q, S_ATTR_PUT);
  btext(st, 1, app);
  sqlite3_bind_int(st, 2, (int)sc);
  btext(st, 3, name);
  btext(st, 4, key);
  btext(st, 5, value);
  sqlite3_bind_int64(st, 6, stored + 1);
  if ((rc = done(st)) == 0) *rev = stored + 1;
out:
  if (rc == 0 || rc == HD_ESTATE || rc == HD_ENOTFOUND || rc == HD_ENOSPC) {
    if (done(stmt(q, S_COMMIT)) < 0) {
      done(stmt(q, S_ROLLBACK));
      return HD_EIO;
    }
  } else
    done(stmt(q, S_ROLLBACK));
  return rc;
}

static int sq_lock_put(hd_rtm_store_t *s, const char *app, const hd_rtm_lock_rec_t *l) {
  sqlite3_stmt *st = stmt((sq_t *)s, S_LOCK_PUT);
  btext(st, 1, app);
  btext(st, 2, l->ch);
  btext(st, 3, l->name);
  btext(st, 4, l->owner);
  sqlite3_bind_int64(st, 5, l->exp_ms);
  return done(st);
}

static int sq_lock_del(hd_rtm_store_t *s, const char *app, const char *ch, const char *name) {
  sqlite3_stmt *st = stmt((sq_t *)s, S_LOCK_DEL);
  btext(st, 1, app);
  btext(st, 2, ch);
  btext(st, 3, name);
  return done(st);
}

static int sq_lock_load(hd_rtm_store_t *s, hd_rtm_lock_fn fn, void *ud) {
  sqlite3_stmt *st = stmt((sq_t *)s, S_LOCK_ALL);
  int n = 0, rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *app = (const char *)sqlite3_column_text(st, 0);
    hd_rtm_lock_rec_t l = {(const char *)sqlite3_column_text(st, 1), (const char *)sqlite3_column_text(st, 2),
                           (const char *)sqlite3_column_text(st, 3), sqlite3_column_int64(st, 4)};
    if (!app || !l.ch || !l.name || !l.owner) continue;
    n++;
    if (fn(ud, app, &l) < 0) break;
  }
  int bad = rc != SQLITE_ROW && rc != SQLITE_DONE;
  sqlite3_reset(st);
  return bad ? HD_EIO : n;
}

static void drop_usage(sq_t *q) {
  while (q->apps) {
    app_use_t *a = q->apps;
    q->apps = a->next;
    free(a);
  }
}

static int sq_batch_begin(hd_rtm_store_t *s) {
  sq_t *q = (sq_t *)s;
  if (q->batch) return HD_ESTATE;
  if (done(stmt(q, S_BEGIN)) < 0) return HD_EIO;
  q->batch = 1;
  q->broken = 0;
  q->batch_free = -1;
  return 0;
}

static int sq_batch_end(hd_rtm_store_t *s, int commit) {
  sq_t *q = (sq_t *)s;
  if (!q->batch) return HD_ESTATE;
  q->batch = 0;
  int rc = 0;
  if (q->broken || sqlite3_get_autocommit(q->db)) /* already rolled back by SQLite */
    rc = HD_EIO;
  else if (!commit || done(stmt(q, S_COMMIT)) < 0) {
    done(stmt(q, S_ROLLBACK));
    rc = HD_EIO;
  }
  if (rc < 0) drop_usage(q); /* it counted appends that are not stored */
  return commit ? rc : 0;
}

static const hd_rtm_store_ops_t SQ_OPS = {
    sq_close,    sq_seq_get,  sq_seq_put,   sq_msg_append, sq_msg_query,   sq_attr_list, sq_attr_cas,
    sq_lock_put, sq_lock_del, sq_lock_load, sq_usage,      sq_batch_begin, sq_batch_end};

int hd_rtm_store_sqlite_new(hd_rtm_store_t **out, const char *path, char *err, size_t errcap) {
  sq_t *q = calloc(1, sizeof *q);
  if (!q) return HD_ENOMEM;
  q->base.ops = &SQ_OPS;
  char *emsg = NULL;
  if (sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
      SQLITE_OK) {
    snprintf(err, errcap, "cannot open %s: %s", path, q->db ? sqlite3_errmsg(q->db) : "out of memory");
    goto fail;
  }
  sqlite3_busy_timeout(q->db, 2000);
  if (sqlite3_exec(q->db, SCHEMA, NULL, NULL, &emsg) != SQLITE_OK) {
    snprintf(err, errcap, "%s: schema: %s", path, emsg ? emsg : "?");
    sqlite3_free(emsg);
    goto fail;
  }
  sqlite3_stmt *chk = NULL;
  int have_stat =
      sqlite3_prepare_v2(q->db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name='chan_stat'", -1,
                         &chk, NULL) == SQLITE_OK &&
      sqlite3_step(chk) == SQLITE_ROW;
  sqlite3_finalize(chk);
  if (!have_stat && sqlite3_exec(q->db, STAT_SCHEMA, NULL, NULL, &emsg) != SQLITE_OK) {
    snprintf(err, errcap, "%s: schema: %s", path, emsg ? emsg : "?");
    sqlite3_free(emsg);
    goto fail;
  }
  if (strcmp(path, ":memory:") && path[0]) { /* the directory whose filesystem holds the file */
    const char *sl = strrchr(path, '/');
    q->dir = sl ? strndup(path, sl == path ? 1 : (size_t)(sl - path)) : strdup(".");
    if (!q->dir) goto fail;
  }
  for (int i = 0; i < S_COUNT; i++)
    if (sqlite3_prepare_v2(q->db, SQL[i], -1, &q->st[i], NULL) != SQLITE_OK) {
      snprintf(err, errcap, "%s: prepare: %s", path, sqlite3_errmsg(q->db));
      goto fail;
    }
  *out = &q->base;
  return 0;
fail:
  sq_close(&q->base);
  return HD_EIO;
}
