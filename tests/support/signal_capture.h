/* signal_capture: the node's signaling messages a test captured for one
 * connection, and the join a test client sends (tests that drive a node in
 * process: tests/support/pc_world.c, tests/support/client_world.c). */
#ifndef HD_TEST_SIGNAL_CAPTURE_H
#define HD_TEST_SIGNAL_CAPTURE_H
#include <stddef.h>

#include "sfu/signal.h"

/* Parses the first of msgs[0..*n) of `type` into m and drops it from the
 * list (freed). 0, or HD_ENOTFOUND. */
int hd_test_take_signal(char **msgs, int *n, hd_signal_type_t type, hd_signal_msg_t *m);
/* A join message for `identity` in room "room1" of app "app" (secret
 * "secret"), allowed to publish, subscribe and send data, valid an hour
 * from unix_now. Its length, or a negative error. */
int hd_test_join_msg(const char *identity, long long unix_now, char *out, size_t cap);

#endif
