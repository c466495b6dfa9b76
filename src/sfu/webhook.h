/* Webhooks (issue 3 item 5): a sans-IO queue of signed HTTP POST notifications
 * about rooms, participants and tracks (WHIP/WHEP sessions use the same
 * events today: a publisher is a participant with tracks).
 *
 * Model. The application pushes events; each event is rendered once as JSON
 * and queued on every destination (URL) that wants it: global URLs get every
 * app's events, per-app URLs only that app's. Each destination delivers its
 * events strictly in order, one request in flight at a time, so a receiver
 * sees room_started before participant_joined. A failed attempt is retried
 * with exponential backoff plus jitter (base 0.5 s doubling, cap 30 s) until
 * max_attempts or max_age, then the event is given up (counted) and the next
 * one starts. Each destination queue holds at most max_queue events; pushing
 * onto a full queue drops that queue's oldest event (counted).
 *
 * I/O contract (DESIGN §3 rule 1): the core never touches sockets or clocks.
 * The shell calls hd_webhook_poll() to get "send this request now" (method,
 * URL, headers, body), performs it, and reports hd_webhook_on_result() with
 * the HTTP status or a transport error; hd_webhook_next_timeout() says when
 * to poll again. Outcomes: 2xx = delivered; 408, 429, 5xx and transport
 * errors = retry; any other status (3xx are not followed, 4xx) = permanent
 * failure.
 *
 * Signature (Stripe-like): header
 *   Hudong-Signature: t=<unix seconds>,v1=<lower-case hex HMAC-SHA256(secret, "<t>.<body>")>
 * with secret = the app's API secret. t is the time of the attempt (each
 * retry is signed afresh). To verify: split the header on ',', take t and v1,
 * recompute the HMAC over the exact raw body bytes, compare in constant time,
 * and reject |now - t| beyond a tolerance (e.g. 300 s) against replays;
 * hd_webhook_verify() does exactly this. The app key is in Hudong-App-Key. */
#ifndef HD_SFU_WEBHOOK_H
#define HD_SFU_WEBHOOK_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

#define HD_WEBHOOK_MAX_DESTS 64   /* destinations (URLs) per core */
#define HD_WEBHOOK_MAX_APPS 64    /* apps whose secrets the core knows */
#define HD_WEBHOOK_URL_MAX 256    /* URL length cap, NUL included */
#define HD_WEBHOOK_KEY_MAX 64     /* app key cap, NUL included */
#define HD_WEBHOOK_SECRET_MAX 128 /* app secret cap, NUL included */
#define HD_WEBHOOK_FIELD_MAX 256  /* any one event string field, NUL included */
#define HD_WEBHOOK_BODY_MAX 16384 /* rendered JSON body cap (an egress event lists its files) */
#define HD_WEBHOOK_MAX_REQ_HEADERS 8

typedef enum {
  HD_WEBHOOK_ROOM_STARTED = 0,
  HD_WEBHOOK_ROOM_FINISHED,
  HD_WEBHOOK_PARTICIPANT_JOINED,
  HD_WEBHOOK_PARTICIPANT_LEFT,
  HD_WEBHOOK_TRACK_PUBLISHED,
  HD_WEBHOOK_TRACK_UNPUBLISHED,
  HD_WEBHOOK_QUALITY_ALERT,  /* a quality alert rule fired (docs/quality.md "Alerts"); room may be "*" */
  HD_WEBHOOK_EGRESS_STARTED, /* a recording started / got a new file / ended (docs/egress.md) */
  HD_WEBHOOK_EGRESS_UPDATED,
  HD_WEBHOOK_EGRESS_ENDED,
  HD_WEBHOOK_EVENT_COUNT
} hd_webhook_event_type_t;

/* An event as the application describes it. Strings are copied at push; each
 * must be valid UTF-8 shorter than HD_WEBHOOK_FIELD_MAX. */
typedef struct {
  hd_webhook_event_type_t type;
  const char *app;       /* app key, required; must have been added */
  const char *room_name; /* required */
  const char *room_sid;  /* optional (NULL = "sid" omitted) */
  /* "participant" object, rendered when participant_sid or _identity is set
   * (required for participant_* and track_* events) */
  const char *participant_sid;
  const char *participant_identity;
  /* "track" object, rendered when track_sid is set (required for track_*) */
  const char *track_sid;
  const char *track_kind;   /* "audio" | "video" | "data" (optional) */
  const char *track_source; /* e.g. "camera", "microphone", "screen_share" (optional) */
  /* quality_alert: the "alert" object as JSON text (rule, metric, value, threshold, window_s) */
  const char *alert_json;
  /* egress_*: the "egress" object as JSON text (id, state, files with paths, durations, sizes) */
  const char *egress_json;
} hd_webhook_event_t;

typedef struct {
  size_t max_queue;       /* events per destination queue (default 1000) */
  int max_attempts;       /* attempts per event and destination (default 8) */
  hd_time_t max_age;      /* give up this long after the push (default 10 min) */
  hd_time_t backoff_base; /* delay after the first failed attempt (default 500 ms) */
  hd_time_t backoff_cap;  /* longest delay (default 30 s) */
  int jitter_pct;         /* each delay gets + uniform [0, jitter_pct%) of itself (default 25) */
  uint32_t seed;          /* jitter PRNG seed; 0 = random */
} hd_webhook_config_t;

/* Fills the defaults above. */
void hd_webhook_config_defaults(hd_webhook_config_t *cfg);

/* One request to perform. Every pointer is lent: valid until the next call on
 * the core (copy what you need). */
typedef struct {
  uint64_t id;        /* pass back to hd_webhook_on_result */
  const char *method; /* "POST" */
  const char *url;    /* "http://host[:port]/path" */
  int n_headers;
  const char *header_names[HD_WEBHOOK_MAX_REQ_HEADERS];
  const char *header_values[HD_WEBHOOK_MAX_REQ_HEADERS];
  const char *body;
  size_t body_len;
  int attempt;          /* 1 for the first attempt of this event at this URL */
  const char *event_id; /* the JSON "id" */
} hd_webhook_req_t;

typedef struct {
  uint64_t pushed;           /* events accepted by hd_webhook_push */
  uint64_t queued;           /* gauge: events waiting or in flight, summed over destinations */
  uint64_t attempts;         /* requests handed out by hd_webhook_poll */
  uint64_t delivered;        /* deliveries answered 2xx */
  uint64_t attempt_failures; /* attempts that failed (status or transport), retried or not */
  uint64_t retries;          /* of those, followed by a retry */
  uint64_t failed;           /* deliveries given up: permanent status, attempts exhausted or too old */
  uint64_t dropped;          /* deliveries dropped because a destination queue was full */
} hd_webhook_stats_t;

typedef struct hd_webhook hd_webhook_t;

/* Creates a core; cfg NULL = defaults. Invalid values (max_queue 0, attempts < 1,
 * jitter_pct outside 0..100, base <= 0, cap < base) give HD_EINVAL. */
int hd_webhook_new(hd_webhook_t **out, const hd_webhook_config_t *cfg);
/* Frees the core and every queued event. NULL is fine. */
void hd_webhook_free(hd_webhook_t *wh);

/* Registers an app's key and secret (the secret signs its events). Adding a
 * known key replaces its secret. HD_EINVAL on empty/oversized strings, HD_ENOSPC
 * past HD_WEBHOOK_MAX_APPS. */
int hd_webhook_add_app(hd_webhook_t *wh, const char *key, const char *secret);

/* Adds a destination. app NULL or "" = every app's events, else only that
 * app's. The URL must start with "http://" (no TLS: put a TLS-terminating proxy
 * in front of an https receiver) and be shorter than HD_WEBHOOK_URL_MAX.
 * HD_EINVAL for a bad URL, HD_ENOSPC past HD_WEBHOOK_MAX_DESTS. */
int hd_webhook_add_url(hd_webhook_t *wh, const char *url, const char *app);

/* Renders the event and queues it on every matching destination. unix_now
 * (seconds) becomes "created_at"; now starts max_age. Returns the number of
 * destinations it was queued on (0 if none wants it), HD_ENOTFOUND for an app
 * never added, HD_EINVAL for a missing required field, a bad type, or a field
 * too long or not UTF-8, HD_ENOMEM. A full queue drops its oldest event. */
int hd_webhook_push(hd_webhook_t *wh, const hd_webhook_event_t *ev, hd_time_t now, int64_t unix_now);

/* The next request due at `now`: returns 1 and fills *req, or 0 when nothing
 * is due. unix_now (seconds) is the signature's t. Call repeatedly until 0:
 * each destination has at most one request in flight. */
int hd_webhook_poll(hd_webhook_t *wh, hd_time_t now, int64_t unix_now, hd_webhook_req_t *req);

/* Reports the outcome of request `id`: status > 0 is the HTTP status of the
 * response; status < 0 is a transport error (HD_ETIMEDOUT, HD_EIO, HD_EPROTO,
 * HD_ENOTFOUND for a name that does not resolve...), always retried. Returns 0,
 * or HD_ENOTFOUND for an id that is not in flight (already reported). */
int hd_webhook_on_result(hd_webhook_t *wh, uint64_t id, int status, hd_time_t now);

/* Earliest time a poll can return a request; HD_TIME_NEVER when every queue
 * is empty or waiting on a request in flight. */
hd_time_t hd_webhook_next_timeout(const hd_webhook_t *wh);

/* Counters since creation. */
void hd_webhook_stats(const hd_webhook_t *wh, hd_webhook_stats_t *out);

/* "room_started", ... for a type; NULL for an invalid one. */
const char *hd_webhook_event_name(hd_webhook_event_type_t type);

/* Writes the Hudong-Signature value for body into out (96 bytes is always
 * enough): "t=<unix>,v1=<64 hex>". Returns the length or HD_ENOSPC/HD_ECRYPTO. */
int hd_webhook_sign(const char *secret, int64_t unix_t, const char *body, size_t body_len, char *out,
                    size_t cap);

/* Receiver side: checks a Hudong-Signature header value against the raw body
 * and secret, and that |unix_now - t| <= tolerance seconds. Several v1= entries
 * are allowed (any may match). Returns 0, HD_EPROTO for a malformed header,
 * HD_EAUTH for a wrong signature, HD_EEXPIRED for a stale t. */
int hd_webhook_verify(const char *header, const char *secret, const char *body, size_t body_len,
                      int64_t unix_now, int64_t tolerance);

#endif
