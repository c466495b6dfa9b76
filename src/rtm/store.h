/* RTM storage interface: what must survive a node restart (docs/rtm.md
 * "Storage"): stored channel messages (history), the per-channel sequence
 * high-water mark, channel and user attributes with revisions, and TTL locks.
 *
 * A small vtable so that SQLite (store_sqlite.c, the default), an in-memory
 * store (store_mem.c, for unit tests and ":memory:"-like use) and later
 * PostgreSQL fit behind it. Every operation is one atomic step on the store
 * (attribute compare-and-set is done by the store itself, so a shared
 * database can arbitrate between nodes later). Synchronous: the broker calls
 * it on its own thread. Strings passed in are NUL-terminated and lent for the
 * call; strings given to callbacks are lent for the callback.
 *
 * "app" is the tenant (token "iss"); every key is scoped by it. */
#ifndef HD_RTM_STORE_H
#define HD_RTM_STORE_H
#include <stddef.h>
#include <stdint.h>

typedef struct hd_rtm_store hd_rtm_store_t;

/* A stored channel message. */
typedef struct {
  int64_t cseq;     /* channel sequence number, > 0 */
  int64_t ts_ms;    /* wall-clock Unix milliseconds when published */
  const char *from; /* publisher user id */
  const char *data; /* payload (UTF-8 text) */
} hd_rtm_stored_msg_t;

/* History query: exactly one mode.
 *   after  > 0 : messages with cseq > after, ascending, at most limit
 *   since  > 0 : messages with ts_ms >= since, ascending, at most limit
 *   else       : the last `limit` messages, ascending. */
typedef struct {
  int64_t after, since;
  int limit; /* 1..HD_RTM_HIST_MAX */
} hd_rtm_hist_query_t;

/* Attribute scope: a channel or a user, within an app. */
typedef enum { HD_RTM_SCOPE_CHANNEL = 0, HD_RTM_SCOPE_USER = 1 } hd_rtm_scope_t;

typedef struct {
  const char *key, *value;
  int64_t rev; /* > 0 */
} hd_rtm_attr_t;

typedef struct {
  const char *ch, *name, *owner;
  int64_t exp_ms; /* wall-clock Unix milliseconds */
} hd_rtm_lock_rec_t;

typedef int (*hd_rtm_msg_fn)(void *ud, const hd_rtm_stored_msg_t *m);
typedef int (*hd_rtm_attr_fn)(void *ud, const hd_rtm_attr_t *a);
typedef int (*hd_rtm_lock_fn)(void *ud, const char *app, const hd_rtm_lock_rec_t *l);

typedef struct {
  void (*close)(hd_rtm_store_t *s);
  /* Sequence high-water mark of a channel: every cseq ever assigned is <= it
   * (the broker reserves blocks ahead and gives back the unused part when the
   * channel goes idle). 0 for a new channel. seq_put sets it. */
  int (*seq_get)(hd_rtm_store_t *s, const char *app, const char *ch, int64_t *out);
  int (*seq_put)(hd_rtm_store_t *s, const char *app, const char *ch, int64_t hwm);
  /* Appends a message; then keeps at most `keep` newest messages of the channel. */
  int (*msg_append)(hd_rtm_store_t *s, const char *app, const char *ch, const hd_rtm_stored_msg_t *m,
                    int keep);
  /* Calls fn for each match (ascending cseq); fn returning < 0 stops. Returns the count. */
  int (*msg_query)(hd_rtm_store_t *s, const char *app, const char *ch, const hd_rtm_hist_query_t *q,
                   hd_rtm_msg_fn fn, void *ud);
  /* Calls fn for every attribute of the scope (ascending key). Returns the count. */
  int (*attr_list)(hd_rtm_store_t *s, const char *app, hd_rtm_scope_t sc, const char *name, hd_rtm_attr_fn fn,
                   void *ud);
  /* Compare-and-set. expect < 0: unconditional; expect == 0: only if absent;
   * expect > 0: only if the current revision equals it. value NULL deletes.
   * On success *rev = the new revision (for a delete: the deleted one's + 1).
   * Returns 0, HD_ESTATE (revision mismatch; *rev = current revision, 0 if
   * absent), HD_ENOTFOUND (delete of an absent key without expectation),
   * HD_ENOSPC (a new key over max_keys for the scope). */
  int (*attr_cas)(hd_rtm_store_t *s, const char *app, hd_rtm_scope_t sc, const char *name, const char *key,
                  const char *value, int64_t expect, int max_keys, int64_t *rev);
  /* Locks: upsert, delete, and load all (at broker start). */
  int (*lock_put)(hd_rtm_store_t *s, const char *app, const hd_rtm_lock_rec_t *l);
  int (*lock_del)(hd_rtm_store_t *s, const char *app, const char *ch, const char *name);
  int (*lock_load)(hd_rtm_store_t *s, hd_rtm_lock_fn fn, void *ud);
} hd_rtm_store_ops_t;

struct hd_rtm_store {
  const hd_rtm_store_ops_t *ops;
};

/* In-memory store (lost at exit). Returns 0 or HD_ENOMEM. */
int hd_rtm_store_mem_new(hd_rtm_store_t **out);
/* SQLite store at path (":memory:" allowed); creates the schema. err gets a
 * reason on failure. Returns 0, HD_EIO (cannot open / schema), HD_ENOMEM. */
int hd_rtm_store_sqlite_new(hd_rtm_store_t **out, const char *path, char *err, size_t errcap);
/* Closes and frees; NULL is fine. */
void hd_rtm_store_free(hd_rtm_store_t *s);

#endif
