/* Node configuration: defaults, JSON config file (--config), command-line
 * overrides. See docs/operations.md for every key. */
#ifndef HD_CMD_CONFIG_H
#define HD_CMD_CONFIG_H
#include <stddef.h>

#define HD_MAX_APPS 32
#define HD_MAX_ORIGINS 16

typedef struct {
  char key[64];
  char secret[128];
} hd_app_t;

typedef struct {
  char listen_host[64];
  int listen_port;
  char rtc_bind[64]; /* UDP bind address */
  char rtc_ip[64];   /* address announced in ICE candidates */
  int rtc_port;
  int rtc_announce_port; /* port put in ICE candidates when it differs from rtc_port
                          * (port mapping, a relay such as `hudong netem`); 0 = rtc_port */
  char web_root[512];
  int dev;
  hd_app_t apps[HD_MAX_APPS];
  int n_apps;
  char origins[HD_MAX_ORIGINS][256];
  int n_origins;
  size_t max_sessions;
  size_t max_viewers;
  size_t body_cap;   /* HTTP request body cap (bytes) */
  long token_leeway; /* seconds */
} hd_config_t;

void hd_config_defaults(hd_config_t *c);
/* Loads a JSON config file over the current values; err gets a reason. */
int hd_config_load(hd_config_t *c, const char *path, char *err, size_t errcap);
/* Parses "HOST:PORT" (or ":PORT" / "PORT"). */
int hd_config_parse_hostport(const char *s, char *host, size_t hostcap, int *port);
const char *hd_config_secret(const hd_config_t *c, const char *key);

#endif
