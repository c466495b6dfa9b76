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

/* History query: exactly one mode. A cursor < 0 is "not given"; 0 is a
 * valid cursor (after 0 = from the first message kept).
 *   after >= 0 : messages with cseq > after, ascending, at most limit
 *   since >= 0 : messages with ts_ms >= since, ascending, at most limit
 *   else       : the last `limit` messages, ascending. */
typedef struct {
  int64_t after, since; /* HD_RTM_HIST_NONE (-1) = not given */
  int limit;            /* 1..HD_RTM_HIST_MAX */
} hd_rtm_hist_query_t;
#define HD_RTM_HIST_NONE (-1)

/* What msg_append may use (docs/rtm.md "Storage quotas"). 0 = no cap. */
typedef struct {
  int keep;               /* newest messages kept per channel (exactly; > 0) */
  int64_t app_channels;   /* channels with stored messages per app */
  int64_t app_bytes;      /* stored bytes (data + sender) per app */
  int64_t min_free_bytes; /* refuse when the store's filesystem has less free (file stores only) */
} hd_rtm_store_limits_t;

/* Why msg_append refused (it returns HD_ENOSPC), and the app's usage. */
typedef enum {
  HD_RTM_STORE_OK = 0,
  HD_RTM_STORE_QUOTA_CHANNELS, /* a new channel over app_channels */
  HD_RTM_STORE_QUOTA_BYTES,    /* over app_bytes */
  HD_RTM_STORE_DISK_FLOOR      /* filesystem free space under min_free_bytes */
} hd_rtm_store_refusal_t;

typedef struct {
  int64_t channels, bytes; /* the app's channels with stored messages, their stored bytes */
  int64_t disk_free;       /* for HD_RTM_STORE_DISK_FLOOR: free bytes seen */
  hd_rtm_store_refusal_t refused;
} hd_rtm_usage_t;

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
  /* Appends a message and keeps exactly the lim->keep newest messages of the
   * channel, in one transaction, unless that would break a limit of lim:
   * then nothing is written and it returns HD_ENOSPC with use->refused
   * saying which. use (may be NULL) gets the app's usage (after the append). */
  int (*msg_append)(hd_rtm_store_t *s, const char *app, const char *ch, const hd_rtm_stored_msg_t *m,
                    const hd_rtm_store_limits_t *lim, hd_rtm_usage_t *use);
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
  /* The app's stored-history usage (channels with messages, bytes). */
  int (*usage)(hd_rtm_store_t *s, const char *app, hd_rtm_usage_t *out);
  /* Group commit (docs/rtm.md "Storage"; NULL: none, every append is its own
   * transaction). Between batch_begin and batch_end every write joins one
   * transaction; each msg_append is its own step inside it (a refused or
   * failed append writes nothing, the others stay), and the usage it
   * checks and reports includes the batch's earlier appends. batch_end
   * commits (commit = 1) or rolls back; it returns 0 only if every append
   * that returned 0 is now committed — otherwise none of the batch is
   * stored (HD_EIO) and the usage is what was committed before. */
  int (*batch_begin)(hd_rtm_store_t *s);
  int (*batch_end)(hd_rtm_store_t *s, int commit);
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
