/* Session quotas per tenant (app) and per identity, shared by every node of
 * one process (media workers, io/media_workers.h): one tenant must not be able
 * to take all of the node's WebRTC sessions, nor one token most of its
 * tenant's (docs/operations.md "Limits").
 *
 * A small table of counts keyed by (app) and (app, identity), plus which
 * session holds which entry, so that a session is given back by its id alone.
 * Touched only when a session is set up or torn down (never per packet), under
 * one mutex: the counts are exact across threads. */
#ifndef HD_SFU_QUOTA_H
#define HD_SFU_QUOTA_H
#include <stddef.h>

typedef struct hd_quota hd_quota_t;

/* What refused a session (hd_quota_take's *which). */
typedef enum { HD_QUOTA_OK = 0, HD_QUOTA_APP, HD_QUOTA_IDENTITY } hd_quota_limit_t;

/* per_app / per_identity: 0 = no cap of that kind. max_sessions bounds the
 * table (the sessions that can exist at once). */
int hd_quota_new(hd_quota_t **out, size_t per_app, size_t per_identity, size_t max_sessions);
void hd_quota_free(hd_quota_t *q);

/* Counts session `sid` against `app` and, if identity is non-NULL, against
 * (app, identity). 0, or HD_ENOSPC with *which set (nothing counted), or
 * HD_EINVAL for a session id already counted. */
int hd_quota_take(hd_quota_t *q, const char *app, const char *identity, const char *sid,
                  hd_quota_limit_t *which);
/* Gives back what session `sid` took; a no-op for a session never counted. */
void hd_quota_release(hd_quota_t *q, const char *sid);
/* 0 if one more session of (app, identity) would fit now (a hint: another
 * thread may take the place before hd_quota_take), else HD_ENOSPC and *which. */
int hd_quota_check(hd_quota_t *q, const char *app, const char *identity, hd_quota_limit_t *which);

/* Current counts (for tests and diagnostics). */
size_t hd_quota_app_count(hd_quota_t *q, const char *app);
size_t hd_quota_identity_count(hd_quota_t *q, const char *app, const char *identity);
size_t hd_quota_per_app(const hd_quota_t *q);
size_t hd_quota_per_identity(const hd_quota_t *q);

#endif
