/* Webhook sender (see webhook_sender.h): the libuv shell around the webhook
 * core. Each request the core hands out becomes one HTTP client request; its
 * callback reports the status (or transport error) back and pumps again. */
#include "io/webhook_sender.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/log.h"
#include "io/http_client.h"

typedef struct flight {
  hd_webhook_sender_t *s;
  hd_http_client_t *http;
  uint64_t id;
  struct flight *next;
} flight_t;

struct hd_webhook_sender {
  uv_loop_t *loop;
  uv_timer_t timer;
  hd_webhook_t *core;
  hd_webhook_sender_config_t cfg;
  flight_t *flights;
  int n_flights;
  int pumping;
};

void hd_webhook_sender_config_defaults(hd_webhook_sender_config_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  hd_webhook_config_defaults(&cfg->core);
  cfg->connect_timeout_ms = 5000;
  cfg->timeout_ms = 10000;
}

/* Same clock as hd_io_now (rtc_udp.c): uv_hrtime in µs. */
static hd_time_t now_us(void) { return (hd_time_t)(uv_hrtime() / 1000); }

static int64_t unix_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec;
}

static void pump(hd_webhook_sender_t *s);

static void on_timer(uv_timer_t *t) { pump(t->data); }

static void on_http(void *ud, const hd_http_client_result_t *res) {
  flight_t *f = ud;
  hd_webhook_sender_t *s = f->s;
  for (flight_t **pp = &s->flights; *pp; pp = &(*pp)->next) {
    if (*pp == f) {
      *pp = f->next;
      break;
    }
  }
  s->n_flights--;
  int status = res->err ? res->err : res->status;
  if (res->err)
    HD_LOGW("webhook", "request %llu failed: %s (%s)", (unsigned long long)f->id, hd_strerror(res->err),
            res->uv_err ? uv_strerror(res->uv_err) : "-");
  else if (res->status < 200 || res->status > 299)
    HD_LOGW("webhook", "request %llu answered %d", (unsigned long long)f->id, res->status);
  hd_webhook_on_result(s->core, f->id, status, now_us());
  free(f);
  pump(s);
}

/* Starts every request now due, then re-arms the timer at the next deadline. */
static void pump(hd_webhook_sender_t *s) {
  if (s->pumping) return;
  s->pumping = 1;
  for (;;) {
    hd_webhook_req_t r;
    hd_time_t now = now_us();
    int n = hd_webhook_poll(s->core, now, unix_now(), &r);
    if (n <= 0) break;
    flight_t *f = calloc(1, sizeof *f);
    hd_http_client_req_t hr = {.method = r.method,
                               .url = r.url,
                               .n_headers = r.n_headers,
                               .header_names = r.header_names,
                               .header_values = r.header_values,
                               .body = r.body,
                               .body_len = r.body_len,
                               .connect_timeout_ms = s->cfg.connect_timeout_ms,
                               .timeout_ms = s->cfg.timeout_ms};
    int rc = f ? hd_http_client_request(&f->http, s->loop, &hr, on_http, f) : HD_ENOMEM;
    if (rc < 0) {
      /* cannot even start (bad URL slipped through, no memory): a transport
       * error to the core, which retries or gives up by its rules */
      HD_LOGW("webhook", "cannot send to %s: %s", r.url, hd_strerror(rc));
      free(f);
      hd_webhook_on_result(s->core, r.id, rc, now);
      continue;
    }
    f->s = s;
    f->id = r.id;
    f->next = s->flights;
    s->flights = f;
    s->n_flights++;
  }
  s->pumping = 0;
  hd_time_t next = hd_webhook_next_timeout(s->core);
  if (next == HD_TIME_NEVER) {
    uv_timer_stop(&s->timer);
    return;
  }
  hd_time_t now = now_us();
  uint64_t ms = next <= now ? 0 : (uint64_t)((next - now + 999) / 1000);
  uv_timer_start(&s->timer, on_timer, ms, 0);
}

int hd_webhook_sender_start(hd_webhook_sender_t **out, uv_loop_t *loop,
                            const hd_webhook_sender_config_t *cfg) {
  hd_webhook_sender_t *s = calloc(1, sizeof *s);
  if (!s) return HD_ENOMEM;
  if (cfg)
    s->cfg = *cfg;
  else
    hd_webhook_sender_config_defaults(&s->cfg);
  int rc = hd_webhook_new(&s->core, &s->cfg.core);
  if (rc < 0) {
    free(s);
    return rc;
  }
  s->loop = loop;
  uv_timer_init(loop, &s->timer);
  s->timer.data = s;
  *out = s;
  return 0;
}

hd_webhook_t *hd_webhook_sender_core(hd_webhook_sender_t *s) { return s->core; }

int hd_webhook_sender_push(hd_webhook_sender_t *s, const hd_webhook_event_t *ev) {
  int rc = hd_webhook_push(s->core, ev, now_us(), unix_now());
  if (rc > 0) pump(s);
  return rc;
}

int hd_webhook_sender_inflight(const hd_webhook_sender_t *s) { return s->n_flights; }

static void on_closed(uv_handle_t *h) {
  hd_webhook_sender_t *s = h->data;
  hd_webhook_free(s->core);
  free(s);
}

void hd_webhook_sender_stop(hd_webhook_sender_t *s) {
  if (!s) return;
  while (s->flights) {
    flight_t *f = s->flights;
    s->flights = f->next;
    hd_http_client_cancel(f->http);
    free(f);
  }
  s->n_flights = 0;
  uv_timer_stop(&s->timer);
  uv_close((uv_handle_t *)&s->timer, on_closed);
}
