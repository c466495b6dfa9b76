/* RTM broker on a virtual clock (see rtm_world.h); moved out of
 * tests/unit/test_rtm_broker.c when it was split by concept. */
#include "rtm_world.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/token.h"
#include "check.h"

out_t outs[MAXOUT];
int n_out;
struct rtm_world_close closes[64];
int n_close;
hd_rtm_store_t *store;
hd_time_t now;

void (*rtm_world_on_send)(uint64_t conn, const char *text, size_t len);

static void cb_send(void *ud, uint64_t conn, const char *t, size_t len) {
  if (rtm_world_on_send) rtm_world_on_send(conn, t, len);
  CHECK(n_out < MAXOUT);
  outs[n_out].conn = conn;
  outs[n_out].text = strndup(t, len);
  n_out++;
}
static void cb_close(void *ud, uint64_t conn, int code, const char *reason) {
  if (n_close < 64) {
    closes[n_close].conn = conn;
    closes[n_close].code = code;
    n_close++;
  }
}
static const char *lookup(void *ud, const char *key) {
  return strcmp(key, "app") && strcmp(key, "app2") ? NULL : SECRET;
}

void reset_out(void) {
  for (int i = 0; i < n_out; i++)
    free(outs[i].text);
  n_out = 0;
  n_close = 0;
}

int rtm_world_setup(void **st) {
  now = HD_SEC(1000);
  rtm_world_on_send = NULL;
  CHECK(hd_rtm_store_mem_new(&store) == 0);
  reset_out();
  return 0;
}
int rtm_world_teardown(void **st) {
  reset_out();
  hd_rtm_store_free(store);
  return 0;
}

hd_rtm_broker_t *mk(size_t window, double rate) {
  hd_rtm_config_t c = {.send = cb_send,
                       .close = cb_close,
                       .secret_lookup = lookup,
                       .store = store,
                       .wall_offset = HD_SEC(1700000000),
                       .window_msgs = window,
                       .rate = rate,
                       .burst = rate};
  hd_rtm_broker_t *b;
  CHECK(hd_rtm_broker_new(&b, &c, now) == 0);
  return b;
}

hd_rtm_broker_t *mk_cfg(hd_rtm_config_t over) {
  over.send = cb_send;
  over.close = cb_close;
  over.secret_lookup = lookup;
  if (!over.store) over.store = store;
  over.wall_offset = HD_SEC(1700000000);
  hd_rtm_broker_t *b;
  CHECK(hd_rtm_broker_new(&b, &over, now) == 0);
  return b;
}

char *token(const char *user, int rtm, int admin, int64_t exp_in) {
  hd_token_claims_t c;
  memset(&c, 0, sizeof c);
  strcpy(c.key, "app");
  strcpy(c.identity, user);
  c.rtm = rtm;
  c.room_admin = admin;
  c.exp = 1700000000 + now / 1000000 + exp_in;
  static char buf[8][HD_TOKEN_MAX];
  static int k;
  char *o = buf[k++ % 8];
  CHECK(hd_token_mint(&c, SECRET, o, HD_TOKEN_MAX) > 0);
  return o;
}

char *token_x(const char *app, const char *user, const char *room, int admin) {
  hd_token_claims_t c;
  memset(&c, 0, sizeof c);
  strcpy(c.key, app);
  strcpy(c.identity, user);
  strcpy(c.room, room);
  c.rtm = 1;
  c.room_admin = admin;
  c.exp = 1700000000 + now / 1000000 + 600;
  static char buf[8][HD_TOKEN_MAX];
  static int k;
  char *o = buf[k++ % 8];
  CHECK(hd_token_mint(&c, SECRET, o, HD_TOKEN_MAX) > 0);
  return o;
}

void feed(hd_rtm_broker_t *b, uint64_t conn, const char *fmt, ...) {
  char t[40000];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t, sizeof t, fmt, ap);
  va_end(ap);
  CHECK(hd_rtm_conn_message(b, conn, t, strlen(t), now) == 0);
}

json_t *nth(uint64_t conn, const char *type, int i) {
  for (int k = 0; k < n_out; k++) {
    if (outs[k].conn != conn) continue;
    json_t *o = json_loads(outs[k].text, 0, NULL);
    CHECK(o != NULL);
    if (!type || !strcmp(json_string_value(json_object_get(o, "type")), type)) {
      if (i-- == 0) return o;
    }
    json_decref(o);
  }
  return NULL;
}
void dump(uint64_t conn) {
  for (int k = 0; k < n_out; k++)
    if (outs[k].conn == conn) fprintf(stderr, "  %llu: %s\n", (unsigned long long)conn, outs[k].text);
}
int count(uint64_t conn, const char *type) {
  int n = 0;
  json_t *o;
  while ((o = nth(conn, type, n))) {
    json_decref(o);
    n++;
  }
  return n;
}
int64_t ival(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }
const char *sval(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

const char *login(hd_rtm_broker_t *b, uint64_t conn, const char *user, int admin) {
  static char resume[8][64];
  static int k;
  CHECK(hd_rtm_conn_open(b, conn, now) == 0);
  feed(b, conn, "{\"type\":\"login\",\"id\":\"L\",\"token\":\"%s\"}", token(user, 1, admin, 600));
  json_t *w = nth(conn, "welcome", count(conn, "welcome") - 1);
  CHECK(w != NULL);
  char *r = resume[k++ % 8];
  strcpy(r, sval(w, "resume"));
  json_decref(w);
  return r;
}

json_t *last_out(uint64_t conn) {
  for (int k = n_out - 1; k >= 0; k--)
    if (outs[k].conn == conn) return json_loads(outs[k].text, 0, NULL);
  return NULL;
}

int closed_with(uint64_t conn, int code) {
  for (int i = 0; i < n_close; i++)
    if (closes[i].conn == conn && closes[i].code == code) return 1;
  return 0;
}

json_t *login_tok(hd_rtm_broker_t *b, uint64_t conn, const char *tk) {
  CHECK(hd_rtm_conn_open(b, conn, now) == 0);
  feed(b, conn, "{\"type\":\"login\",\"id\":\"L\",\"token\":\"%s\"}", tk);
  json_t *o = last_out(conn);
  CHECK(o != NULL);
  return o;
}

json_t *req(hd_rtm_broker_t *b, uint64_t conn, const char *fmt, ...) {
  static char t[40000];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t, sizeof t, fmt, ap);
  va_end(ap);
  int before = n_out;
  CHECK(hd_rtm_conn_message(b, conn, t, strlen(t), now) == 0);
  for (int k = before; k < n_out; k++) /* the reply: ok/error, not an event */
    if (outs[k].conn == conn &&
        (strstr(outs[k].text, "\"type\":\"ok\"") || strstr(outs[k].text, "\"type\":\"error\"")))
      return json_loads(outs[k].text, 0, NULL);
  return NULL;
}

void ack_all(hd_rtm_broker_t *b, uint64_t conn) {
  json_t *o = last_out(conn);
  if (o && json_object_get(o, "s")) feed(b, conn, "{\"type\":\"ack\",\"s\":%lld}", (long long)ival(o, "s"));
  json_decref(o);
}
