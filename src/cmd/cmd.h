/* Subcommands of the `hudong` program. Each returns a process exit code. */
#ifndef HD_CMD_CMD_H
#define HD_CMD_CMD_H

#include <stddef.h>

#include "hudong/client.h"

/* The release `hudong --version` prints (bumped with each issue milestone). */
#define HD_VERSION "0.12.0"

int hd_cmd_serve(int argc, char **argv);
int hd_cmd_token(int argc, char **argv);
int hd_cmd_netem(int argc, char **argv);
int hd_cmd_pub(int argc, char **argv);
int hd_cmd_sub(int argc, char **argv);
int hd_cmd_bench(int argc, char **argv);
int hd_cmd_drain(int argc, char **argv);
int hd_cmd_cluster(int argc, char **argv);
int hd_cmd_egress(int argc, char **argv);

/* The /rtc WebSocket URL for what a user gives as --url: the node's own
 * address (http://host:port, https://...) or its WebSocket URL (ws://, wss://),
 * with or without the /rtc path (a proxy prefix such as /hudong is kept:
 * https://h/hudong -> wss://h/hudong/rtc). No scheme means ws://. 0, or -1
 * with a reason in err (unknown scheme, no host, too long). */
int hd_cli_rtc_url(const char *in, char *out, size_t cap, char *err, size_t errcap);

/* --cluster URL of `hudong pub` / `sub` (docs/overlay.md "Routing: the
 * client side"): hd_client_route (include/hudong/client.h), and with verbose
 * its choice and the RTTs on stderr ("route: room R -> node n2 (URL), reason
 * rtt; RTT n1 160.6 ms, n2 0.1 ms"). 0, or -1 with "--cluster: <why>" in err. */
int hd_cli_route(const char *cluster, const char *token, hd_client_route_result_t *out, char *err,
                 size_t errcap, int verbose);
/* A comma-separated list of node URLs (http://host:port, ws://.../rtc, ...)
 * into at most max /rtc URLs; the count, or -1 with a reason in err. */
int hd_cli_url_list(const char *list, char (*out)[1024], int max, char *err, size_t errcap);

#endif
