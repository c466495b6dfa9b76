/* Test support (not shipped): an RTM broker (src/rtm/broker.h) on a virtual
 * clock with the in-memory store, its outputs captured per connection and
 * parsed back with jansson, and tokens minted for the apps "app" and "app2".
 * Shared by the broker unit tests (test_rtm_broker, test_rtm_broker_state,
 * test_rtm_broker_history). Helpers abort on a broken harness invariant
 * (they are linked without cmocka). */
#ifndef HD_TEST_RTM_WORLD_H
#define HD_TEST_RTM_WORLD_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"
#include "rtm/broker.h"

#define SECRET "test-secret-0123456789"
#define MAXOUT 16384 /* outputs kept between reset_out calls */

typedef struct {
  uint64_t conn;
  char *text;
} out_t;

/* Everything the broker sent (outs[0..n_out)) and closed (closes[0..n_close)). */
extern out_t outs[MAXOUT];
extern int n_out;
extern struct rtm_world_close {
  uint64_t conn;
  int code;
} closes[64];
extern int n_close;
/* Called with every output as the broker sends it (NULL: none; reset by setup). */
extern void (*rtm_world_on_send)(uint64_t conn, const char *text, size_t len);
/* The store brokers get by default (fresh per test) and the virtual clock. */
extern hd_rtm_store_t *store;
extern hd_time_t now;

/* cmocka setup/teardown per test: clock at 1000 s, a new in-memory store, no outputs. */
int rtm_world_setup(void **st);
int rtm_world_teardown(void **st);
void reset_out(void);

/* A broker with window (messages, 0 = default) and rate (0 = default). */
hd_rtm_broker_t *mk(size_t window, double rate);
/* A broker with the defaults except what over sets (callbacks are filled in;
 * over.store NULL: store). */
hd_rtm_broker_t *mk_cfg(hd_rtm_config_t over);
/* A token of app "app" for user (static, reused every 8th call). */
char *token(const char *user, int rtm, int admin, int64_t exp_in);
/* A token of any app / room (room "" = not room-scoped), rtm granted. */
char *token_x(const char *app, const char *user, const char *room, int admin);

/* Feeds one text frame to conn (printf format). */
void feed(hd_rtm_broker_t *b, uint64_t conn, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A request on conn; returns its reply (ok/error, not an event), parsed; NULL if none. */
json_t *req(hd_rtm_broker_t *b, uint64_t conn, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The i-th output to conn whose type is `type` (NULL: any), parsed; NULL if none. */
json_t *nth(uint64_t conn, const char *type, int i);
/* How many outputs to conn have that type (NULL: any). */
int count(uint64_t conn, const char *type);
/* The last output to conn, parsed (NULL if none). */
json_t *last_out(uint64_t conn);
void dump(uint64_t conn);
int64_t ival(json_t *o, const char *k);
const char *sval(json_t *o, const char *k);
/* 1 if conn was closed with code. */
int closed_with(uint64_t conn, int code);

/* Opens conn, logs in as user; returns the welcome's resume token (static,
 * reused every 8th call). */
const char *login(hd_rtm_broker_t *b, uint64_t conn, const char *user, int admin);
/* Opens conn and logs in with token tk; returns the reply (welcome or error). */
json_t *login_tok(hd_rtm_broker_t *b, uint64_t conn, const char *tk);
/* Acks everything conn got so far (the "s" of its last output, if any). */
void ack_all(hd_rtm_broker_t *b, uint64_t conn);

#endif
