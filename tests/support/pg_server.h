/* A throwaway PostgreSQL server for tests and benchmarks (Debian postgresql):
 * initdb into a temp dir, pg_ctl start on a free 127.0.0.1 port with its
 * socket in that dir, stop and remove. PostgreSQL refuses to run as root, so
 * as root the server runs as the "postgres" user (runuser). */
#ifndef HD_TEST_PG_SERVER_H
#define HD_TEST_PG_SERVER_H
#include <stddef.h>

typedef struct {
  char dir[256];
  char url[256]; /* postgresql://hd@127.0.0.1:PORT/postgres */
  char bin[128];
  char as_user[32]; /* "" = the current user */
  int port;
} hd_pg_server_t;

/* 0, or -1 with the reason in why (no PostgreSQL binaries, initdb or start failed). */
int hd_pg_server_start(hd_pg_server_t *pg, char *why, size_t whycap);
void hd_pg_server_stop(hd_pg_server_t *pg);

#endif
