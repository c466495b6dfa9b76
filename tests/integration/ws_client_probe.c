/* The native SDK's WebSocket client (io/ws_client.h) as a command, for
 * tests/integration/test_tls.py: connects to URL, sends MESSAGE once open,
 * prints the first message it receives ("message: ...") and closes with 1000;
 * on a failed connect prints "closed: CODE REASON".
 * usage: ws_client_probe URL MESSAGE [--insecure] [--ca FILE]
 * exit 0 when a message came back, 1 otherwise, 2 on bad usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/err.h"
#include "io/ws_client.h"

typedef struct {
  const char *msg;
  int got;
} probe_t;

static void on_open(void *ud, hd_ws_client_t *c) {
  probe_t *p = ud;
  hd_ws_client_send(c, p->msg, strlen(p->msg));
}

static void on_message(void *ud, hd_ws_client_t *c, const char *text, size_t len) {
  probe_t *p = ud;
  if (p->got++) return;
  printf("message: %.*s\n", (int)len, text);
  hd_ws_client_close(c, 1000, "done");
}

static void on_close(void *ud, hd_ws_client_t *c, int code, const char *reason) {
  (void)ud;
  printf("closed: %d %s\n", code, reason ? reason : "");
  hd_ws_client_free(c);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: ws_client_probe URL MESSAGE [--insecure] [--ca FILE]\n");
    return 2;
  }
  probe_t p = {.msg = argv[2]};
  hd_ws_client_config_t cfg = {.on_open = on_open,
                               .on_message = on_message,
                               .on_close = on_close,
                               .ud = &p,
                               .connect_timeout_ms = 5000};
  for (int i = 3; i < argc; i++) {
    if (!strcmp(argv[i], "--insecure"))
      cfg.tls_insecure = 1;
    else if (!strcmp(argv[i], "--ca") && i + 1 < argc)
      cfg.tls_ca_file = argv[++i];
    else
      return 2;
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  hd_ws_client_t *c;
  int rc = hd_ws_client_connect(&c, &loop, argv[1], &cfg);
  if (rc < 0) {
    printf("connect: %s\n", hd_strerror(rc));
    return 1;
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  fflush(stdout);
  return p.got ? 0 : 1;
}
