/* Small string helpers shared by the parsers and builders. */
#ifndef HD_BASE_STR_H
#define HD_BASE_STR_H
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Writes a formatted reason into err (if any) and returns rc, so error paths
 * read `return hd_errf(err, cap, HD_EPROTO, "line %d: ...", n);`. */
static inline int hd_errf(char *err, size_t cap, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline int hd_errf(char *err, size_t cap, int rc, const char *fmt, ...) {
  if (err && cap) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
  }
  return rc;
}

/* Copies a NUL-terminated string; -1 (dst untouched) if it does not fit. */
static inline int hd_scpy(char *dst, size_t cap, const char *src) {
  size_t n = strlen(src);
  if (n >= cap) return -1;
  memcpy(dst, src, n + 1);
  return 0;
}

#endif
