/* The --redis URL (config key "redis"): redis://[[user]:password@]host[:port][/db]
 * as Redis clients commonly take it (the IANA "redis" scheme). Sans-IO. */
#ifndef HD_CLUSTER_REDIS_URL_H
#define HD_CLUSTER_REDIS_URL_H
#include <stddef.h>

typedef struct {
  char host[256];
  int port;           /* default 6379 */
  char user[64];      /* "" = none (AUTH password, Redis < 6 style) */
  char password[256]; /* "" = no AUTH */
  int db;             /* SELECT db; default 0 */
} hd_redis_url_t;

/* 0, or HD_EINVAL with a reason in why that shows the expected form. */
int hd_redis_url_parse(const char *s, hd_redis_url_t *out, char *why, size_t whycap);

#endif
