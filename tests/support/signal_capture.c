#include "signal_capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "proto/token.h"

int hd_test_take_signal(char **msgs, int *n, hd_signal_type_t type, hd_signal_msg_t *m) {
  for (int i = 0; i < *n; i++) {
    hd_signal_error_t e;
    if (hd_signal_parse(msgs[i], strlen(msgs[i]), HD_SIGNAL_FROM_NODE, m, &e) < 0) continue;
    if (m->type == type) {
      free(msgs[i]);
      memmove(&msgs[i], &msgs[i + 1], (size_t)(*n - i - 1) * sizeof *msgs);
      (*n)--;
      return 0;
    }
    hd_signal_msg_free(m);
  }
  return HD_ENOTFOUND;
}

int hd_test_join_msg(const char *identity, long long unix_now, char *out, size_t cap) {
  hd_token_claims_t cl = {0};
  snprintf(cl.key, sizeof cl.key, "app");
  snprintf(cl.room, sizeof cl.room, "room1");
  snprintf(cl.identity, sizeof cl.identity, "%s", identity);
  cl.room_join = cl.can_publish = cl.can_subscribe = cl.can_publish_data = 1;
  cl.exp = unix_now + 3600;
  char tok[HD_TOKEN_MAX];
  if (hd_token_mint(&cl, "secret", tok, sizeof tok) <= 0) return HD_EINVAL;
  return hd_signal_write_join("j", tok, 1, NULL, NULL, out, cap);
}
