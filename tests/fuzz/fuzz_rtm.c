/* libFuzzer target for the RTM message parser and request handlers
 * (src/rtm/broker.h): each input is split at '\n' into client messages fed,
 * alternately, to two logged-in connections — an app-wide admin and a
 * room-scoped admin (room "c") — with an in-memory store, a virtual clock and
 * small caps (window, history quotas, sessions per identity) so that paging,
 * quota refusals, scope checks, session replacement and the error-reply cap
 * are reached; replies go nowhere. Finds crashes, leaks and UB in parsing and
 * dispatch. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/token.h"
#include "rtm/broker.h"

static void on_send(void *ud, uint64_t c, const char *t, size_t n) {}
static void on_close(void *ud, uint64_t c, int code, const char *r) {}
static const char *lookup(void *ud, const char *key) { return "fuzzsecret"; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hd_rtm_store_t *st;
  if (hd_rtm_store_mem_new(&st) < 0) return 0;
  hd_rtm_config_t cfg = {.send = on_send,
                         .close = on_close,
                         .secret_lookup = lookup,
                         .store = st,
                         .wall_offset = 1700000000LL * 1000000,
                         .window_msgs = 64,
                         .window_bytes = 65536,
                         .max_sessions_per_user = 2,
                         .quota_channels = 4,
                         .quota_bytes = 4096,
                         .history_keep = 8,
                         .rate = 1e6,
                         .burst = 1e6};
  hd_rtm_broker_t *b;
  if (hd_rtm_broker_new(&b, &cfg, 0) < 0) {
    hd_rtm_store_free(st);
    return 0;
  }
  hd_token_claims_t c;
  memset(&c, 0, sizeof c);
  strcpy(c.key, "app");
  strcpy(c.identity, "fuzzer");
  c.rtm = c.room_admin = 1;
  c.exp = 1700000000LL + 3600;
  char tok[HD_TOKEN_MAX], login[HD_TOKEN_MAX + 64];
  hd_token_mint(&c, "fuzzsecret", tok, sizeof tok);
  int n = snprintf(login, sizeof login, "{\"type\":\"login\",\"token\":\"%s\"}", tok);
  hd_rtm_conn_open(b, 1, 0);
  hd_rtm_conn_open(b, 2, 0);
  hd_rtm_conn_open(b, 3, 0);
  hd_rtm_conn_message(b, 1, login, (size_t)n, 0);
  hd_rtm_conn_message(b, 2, login, (size_t)n, 0);
  strcpy(c.room, "c"); /* room-scoped */
  strcpy(c.identity, "scoped");
  hd_token_mint(&c, "fuzzsecret", tok, sizeof tok);
  n = snprintf(login, sizeof login, "{\"type\":\"login\",\"token\":\"%s\"}", tok);
  hd_rtm_conn_message(b, 3, login, (size_t)n, 0);
  hd_rtm_conn_message(b, 2, "{\"type\":\"sub\",\"ch\":\"c\"}", 24, 0);
  hd_time_t now = 0;
  size_t i = 0;
  int line = 0;
  while (i < size) {
    const uint8_t *e = memchr(data + i, '\n', size - i);
    size_t len = e ? (size_t)(e - (data + i)) : size - i;
    hd_rtm_conn_message(b, line++ % 2 ? 3 : 1, (const char *)data + i, len, now);
    now += 1000000;
    hd_rtm_tick(b, now);
    i += len + 1;
  }
  hd_rtm_conn_closed(b, 1, now);
  hd_rtm_conn_closed(b, 3, now);
  hd_rtm_tick(b, now + HD_SEC(60));
  hd_rtm_broker_free(b);
  hd_rtm_store_free(st);
  return 0;
}
