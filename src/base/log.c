/* Leveled logging to stderr; the level is read once from HUDONG_LOG. */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_level = -1;

void hd_log_set_level(int level) { g_level = level; }

int hd_log_level(void) {
  if (g_level < 0) {
    const char *e = getenv("HUDONG_LOG");
    g_level = HD_LOG_INFO;
    if (e) {
      if (!strcmp(e, "error"))
        g_level = HD_LOG_ERROR;
      else if (!strcmp(e, "warn"))
        g_level = HD_LOG_WARN;
      else if (!strcmp(e, "debug"))
        g_level = HD_LOG_DEBUG;
    }
  }
  return g_level;
}

void hd_log(int level, const char *module, const char *fmt, ...) {
  static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
  if (level > hd_log_level()) return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "[%s] %s: %s\n", names[level & 3], module, line);
}
