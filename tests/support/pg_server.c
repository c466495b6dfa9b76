/* A throwaway PostgreSQL server (pg_server.h). */
#include "pg_server.h"

#include "free_port.h"

#include <glob.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int run(const hd_pg_server_t *pg, const char *cmd) {
  char full[2200];
  if (pg->as_user[0])
    snprintf(full, sizeof full, "runuser -u %s -- %s", pg->as_user, cmd);
  else
    snprintf(full, sizeof full, "%s", cmd);
  return system(full);
}

int hd_pg_server_start(hd_pg_server_t *pg, char *why, size_t whycap) {
  memset(pg, 0, sizeof *pg);
  glob_t g;
  if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) != 0 || g.gl_pathc == 0) {
    snprintf(why, whycap,
             "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb): apt-get install postgresql");
    return -1;
  }
  snprintf(pg->bin, sizeof pg->bin, "%.*s", (int)(strlen(g.gl_pathv[g.gl_pathc - 1]) - strlen("/initdb")),
           g.gl_pathv[g.gl_pathc - 1]);
  globfree(&g);
  snprintf(pg->dir, sizeof pg->dir, "/tmp/hdpg.XXXXXX");
  if (!mkdtemp(pg->dir)) {
    snprintf(why, whycap, "mkdtemp failed");
    return -1;
  }
  if (geteuid() == 0) {
    struct passwd *pw = getpwnam("postgres");
    if (!pw) pw = getpwnam("nobody");
    if (!pw) {
      snprintf(why, whycap, "running as root and no 'postgres' or 'nobody' user to run PostgreSQL as");
      return -1;
    }
    snprintf(pg->as_user, sizeof pg->as_user, "%s", pw->pw_name);
    if (chown(pg->dir, pw->pw_uid, pw->pw_gid) != 0) {
      snprintf(why, whycap, "chown %s failed", pg->dir);
      return -1;
    }
  }
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s/initdb -D %s/data -A trust -U hd --no-sync -E UTF8 > %s/initdb.log 2>&1",
           pg->bin, pg->dir, pg->dir);
  if (run(pg, cmd) != 0) {
    snprintf(why, whycap, "initdb failed (see %s/initdb.log)", pg->dir);
    return -1;
  }
  for (int attempt = 0; attempt < 4; attempt++) {
    pg->port = hd_test_free_port(0);
    snprintf(
        cmd, sizeof cmd,
        "%s/pg_ctl -D %s/data -l %s/server.log -w -t 30 -o \"-p %d -k %s -c listen_addresses=127.0.0.1 -c "
        "fsync=off -c synchronous_commit=off\" start > /dev/null 2>&1",
        pg->bin, pg->dir, pg->dir, pg->port, pg->dir);
    if (run(pg, cmd) == 0) {
      snprintf(pg->url, sizeof pg->url, "postgresql://hd@127.0.0.1:%d/postgres", pg->port);
      return 0;
    }
  }
  snprintf(why, whycap, "pg_ctl start failed (see %s/server.log)", pg->dir);
  return -1;
}

void hd_pg_server_stop(hd_pg_server_t *pg) {
  if (!pg->dir[0]) return;
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s/pg_ctl -D %s/data -m immediate -w stop > /dev/null 2>&1", pg->bin, pg->dir);
  if (pg->url[0]) run(pg, cmd);
  snprintf(cmd, sizeof cmd, "rm -rf %s", pg->dir);
  if (system(cmd) != 0) fprintf(stderr, "pg_server: could not remove %s\n", pg->dir);
  pg->dir[0] = 0;
}
