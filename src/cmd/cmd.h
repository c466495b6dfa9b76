/* Subcommands of the `hudong` program. Each returns a process exit code. */
#ifndef HD_CMD_CMD_H
#define HD_CMD_CMD_H

#include <stddef.h>

/* The release `hudong --version` prints (bumped with each issue milestone). */
#define HD_VERSION "0.12.0"

int hd_cmd_serve(int argc, char **argv);
int hd_cmd_token(int argc, char **argv);
int hd_cmd_netem(int argc, char **argv);
int hd_cmd_pub(int argc, char **argv);
int hd_cmd_sub(int argc, char **argv);
int hd_cmd_bench(int argc, char **argv);

/* The /rtc WebSocket URL for what a user gives as --url: the node's own
 * address (http://host:port, https://...) or its WebSocket URL (ws://, wss://),
 * with or without the /rtc path (a proxy prefix such as /hudong is kept:
 * https://h/hudong -> wss://h/hudong/rtc). No scheme means ws://. 0, or -1
 * with a reason in err (unknown scheme, no host, too long). */
int hd_cli_rtc_url(const char *in, char *out, size_t cap, char *err, size_t errcap);

#endif
