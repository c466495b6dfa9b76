/* Leveled logging to stderr; the level is read once from HUDONG_LOG. */
#include "base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* atomic: the loop threads of several SDK clients in one process log at once
 * (each may be the first to read HUDONG_LOG; they all compute the same level) */
static _Atomic int g_level = -1;

void hd_log_set_level(int level) { atomic_store_explicit(&g_level, level, memory_order_relaxed); }

int hd_log_level(void) {
  int l = atomic_load_explicit(&g_level, memory_order_relaxed);
  if (l < 0) {
    const char *e = getenv("HUDONG_LOG");
    l = HD_LOG_INFO;
    if (e) {
      if (!strcmp(e, "error"))
        l = HD_LOG_ERROR;
      else if (!strcmp(e, "warn"))
        l = HD_LOG_WARN;
      else if (!strcmp(e, "debug"))
        l = HD_LOG_DEBUG;
    }
    atomic_store_explicit(&g_level, l, memory_order_relaxed);
  }
  return l;
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
