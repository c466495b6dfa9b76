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
int hd_cmd_drain(int argc, char **argv);
int hd_cmd_cluster(int argc, char **argv);
int hd_cmd_egress(int argc, char **argv);

/* The /rtc WebSocket URL for what a user gives as --url: the node's own
 * address (http://host:port, https://...) or its WebSocket URL (ws://, wss://),
 * with or without the /rtc path (a proxy prefix such as /hudong is kept:
 * https://h/hudong -> wss://h/hudong/rtc). No scheme means ws://. 0, or -1
 * with a reason in err (unknown scheme, no host, too long). */
int hd_cli_rtc_url(const char *in, char *out, size_t cap, char *err, size_t errcap);

/* --cluster URL of `hudong pub` / `sub` (cli_route.c; docs/overlay.md
 * "Routing: the client side"): asks that node's /api/route for the token's
 * room, measures the RTT to the candidates (GET /api/ping), asks again with
 * the RTTs, and writes the chosen node's http:// URL into node_url. verbose
 * prints the choice and the RTTs on stderr. 0, or -1 with a reason in err. */
/* One blocking HTTP/1.1 request (http:// only) to base + path with an
 * optional Bearer token; the body (Content-Length framed) into body. The
 * status, or -1 with a reason in err. */
int hd_cli_http(const char *method, const char *base, const char *path, const char *token, char *body,
                size_t cap, char *err, size_t errcap);
/* others (may be NULL): the other eligible nodes' URLs, comma-separated, for
 * the client's fallbacks (hd_client_config_t.fallback_urls). */
int hd_cli_route(const char *cluster, const char *token, char *node_url, size_t cap, char *err, size_t errcap,
                 int verbose, char *others, size_t others_cap);
/* A comma-separated list of node URLs (http://host:port, ws://.../rtc, ...)
 * into at most max /rtc URLs; the count, or -1 with a reason in err. */
int hd_cli_url_list(const char *list, char (*out)[1024], int max, char *err, size_t errcap);

#endif
