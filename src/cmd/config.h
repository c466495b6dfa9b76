/* Node configuration: defaults, JSON config file (--config), command-line
 * overrides. See docs/operations.md for every key. */
#ifndef HD_CMD_CONFIG_H
#define HD_CMD_CONFIG_H
#include <stddef.h>

#include "overlay/overlay_params.h"
#include "quality/alerts.h"

#define HD_MAX_APPS 32
#define HD_MAX_ORIGINS 16
#define HD_MAX_WEBHOOK_URLS 8     /* global "webhooks.urls" */
#define HD_MAX_APP_WEBHOOK_URLS 4 /* per app "webhook_urls" */
#define HD_CONFIG_URL_MAX 256
#define HD_MAX_TURN_URLS 4 /* "turn.urls" */

typedef struct {
  char key[64];
  char secret[128];
  /* receivers of this app's events only (in addition to the global ones) */
  char webhook_urls[HD_MAX_APP_WEBHOOK_URLS][HD_CONFIG_URL_MAX];
  int n_webhook_urls;
} hd_app_t;

typedef struct {
  char listen_host[64];
  int listen_port;
  char rtc_bind[64]; /* UDP bind address */
  char rtc_ip[64];   /* address announced in ICE candidates */
  int rtc_port;
  int rtc_announce_port; /* port put in ICE candidates when it differs from rtc_port
                          * (port mapping, a relay such as `hudong netem`); 0 = rtc_port */
  /* Media worker threads (io/media_workers.h); 0 = one per CPU core. Worker i
   * binds rtc_port + i (and announces rtc_announce_port + i when that is set). */
  int media_workers;
  /* One room across media workers (io/worker_shards.h, docs/performance.md):
   * viewers joining a room of at least this many subscribers are sealed and
   * sent by the least-loaded worker; 0 = off (the default). media_shard_ring:
   * slots per worker-pair ring (0 = 16384). */
  long media_shard_min_room, media_shard_ring;
  char web_root[512];
  int dev;
  hd_app_t apps[HD_MAX_APPS];
  int n_apps;
  char origins[HD_MAX_ORIGINS][256];
  int n_origins;
  size_t max_sessions;
  size_t max_sessions_per_app;      /* 0 = max_sessions with one app, max_sessions / 2 with more */
  size_t max_sessions_per_identity; /* 0 = no cap; default 20 */
  size_t max_viewers;
  size_t body_cap;               /* HTTP request body cap (bytes) */
  long token_leeway;             /* seconds, for HTTP bearer tokens and /rtc join tokens */
  long room_empty_timeout;       /* seconds an empty room is kept (0 = closed at once) */
  long max_publish_bitrate_kbps; /* REMB cap per publisher PeerConnection (0 = none) */
  /* egress (recording, docs/egress.md): output folder, concurrent egresses, disk floor */
  char egress_dir[512];
  long egress_max, egress_min_free_mb;
  char ingest_rtmp_url[256]; /* RTMP front's application URL, e.g. rtmp://127.0.0.1:1935/live; "" = off */
  long ingest_max_keyframe_interval_ms; /* H.264 passthrough only while IDRs come this often; 0 = no limit */
  /* "webhooks": receivers of every app's events, and the delivery limits */
  char webhook_urls[HD_MAX_WEBHOOK_URLS][HD_CONFIG_URL_MAX];
  int n_webhook_urls;
  long webhook_max_queue;    /* events per receiver queue */
  long webhook_max_attempts; /* per event and receiver */
  long webhook_max_age;      /* seconds after the event before giving up */
  long webhook_timeout_ms;   /* per attempt */
  /* "rtm": real-time messaging (docs/rtm.md, docs/operations.md) */
  char rtm_db[512];                           /* SQLite file; ":memory:" = nothing survives a restart */
  long rtm_max_message;                       /* bytes per client message */
  long rtm_rate, rtm_burst;                   /* client messages per second per connection, bucket depth */
  long rtm_window_messages, rtm_window_bytes; /* unacked per session */
  long rtm_resume_grace;                      /* seconds a session waits for a resume */
  long rtm_presence_max;                      /* presence events only in channels up to this many members */
  long rtm_cluster_log;                       /* entries kept per channel log in Redis (cluster) */
  long rtm_cluster_dedupe;                    /* peer messages from other nodes remembered (cluster) */
  /* "ice_tcp": passive ICE-TCP candidates on the media ports (io/ice_tcp.h) */
  int ice_tcp;                /* 1 = on (default) */
  long ice_tcp_max_conns;     /* per media worker */
  long ice_tcp_check_timeout; /* ms to the first valid ICE check */
  long ice_tcp_idle_timeout;  /* seconds without bytes on a connection in use */
  long ice_tcp_max_buffer;    /* queued outgoing bytes per connection */
  /* "turn": an external TURN server handed to clients with credentials the
   * node mints (TURN REST API style: docs/turn.md) */
  char turn_urls[HD_MAX_TURN_URLS][HD_CONFIG_URL_MAX];
  int n_turn_urls;
  char turn_secret[256]; /* shared with the TURN server (coturn static-auth-secret) */
  long turn_ttl;         /* seconds a minted credential is valid */
  long rtm_max_sessions, rtm_max_sessions_per_app, rtm_max_sessions_per_user; /* session caps */
  long rtm_quota_channels, rtm_quota_mb, rtm_min_free_mb; /* stored history per app, disk floor; 0 = none */
  /* "board": whiteboard caps (docs/whiteboard.md "Limits"); 0 = defaults */
  long board_max_pages, board_max_elements, board_max_points, board_max_image_kb, board_snapshot_every,
      board_max_boards, board_max_entry_kb, board_max_board_mb;
  /* cluster: a board's state shared through Redis (docs/whiteboard.md "Multi-node") */
  long board_share_every_ms, board_share_max_kb, board_share_ttl_s;
  /* "http": connection limits and TLS (io/http.h; docs/operations.md "HTTP limits") */
  long http_max_conns, http_max_conns_per_ip; /* 0 = defaults */
  long http_header_timeout_ms, http_body_timeout_ms;
  char tls_cert[512], tls_key[512]; /* PEM files; both set = HTTPS/WSS on the listen port */
  int tls_dev;                      /* --dev --tls without files: generated self-signed certificate */
  long max_token_lifetime;          /* seconds a token may live (exp - iat/nbf/now); 0 = no limit */
  /* quality data (docs/quality.md): "quality_db" (SQLite path or postgres:// URL; "" = a file
   * next to the RTM database) and the "quality" object */
  char quality_db[512];
  long quality_retention_days, quality_sample_interval_s, quality_min_report_interval_ms;
  long quality_max_rows_per_s, quality_max_queue;
  hd_qrule_t quality_rules[HD_QALERT_MAX_RULES];
  int n_quality_rules;
  /* cluster (docs/overlay.md): "redis" = redis://[:password@]host:port[/db], "" = a
   * node alone; the node's registry identity and where clients reach it */
  char redis[512];
  char node_id[64];       /* "" = hostname:listen_port */
  char region[32];        /* "" = none */
  char labels[256];       /* "k=v,k=v" */
  char announce_url[256]; /* "" = http(s)://listen_host:listen_port */
  /* "ID=IP:PORT,...": node-link addresses used for those peers instead of their
   * announced ones (cluster/peer_addrs.h; a test-bed / ops knob) */
  char peer_addrs[1024];
  /* SIGTERM drains the node (docs/overlay.md "Draining") for up to this many
   * seconds before it stops; 0 (default) = stop at once, as before */
  long drain_grace_s;
  /* "overlay": link probes, fast reroute, relaying and route hysteresis
   * (overlay/overlay_params.h; docs/overlay.md "Tuning the overlay") */
  hd_overlay_params_t overlay;
  /* "cluster": room timing in a cluster (docs/operations.md "Cluster timing"):
   * how long a join into a room new on this node waits for Redis to name
   * its cluster-wide sid, the TTL of the room keys in Redis, and how long a
   * node's registry key stays gone before its rooms are reaped */
  long cluster_sid_wait_ms;   /* "sid_wait_ms", default 2000 */
  long cluster_room_ttl_ms;   /* "room_ttl_ms", default 30000 */
  long cluster_reap_grace_ms; /* "reap_grace_ms", default 5000 */
} hd_config_t;

void hd_config_defaults(hd_config_t *c);
/* Loads a JSON config file over the current values; err gets a reason. */
int hd_config_load(hd_config_t *c, const char *path, char *err, size_t errcap);
/* Parses "HOST:PORT" (or ":PORT" / "PORT"). */
int hd_config_parse_hostport(const char *s, char *host, size_t hostcap, int *port);
const char *hd_config_secret(const hd_config_t *c, const char *key);
/* Checks the cluster keys (redis, node_id, region, labels, announce_url), as
 * given by the file or flags; err says what is wrong and the expected form. */
int hd_config_check_cluster(const hd_config_t *c, char *err, size_t errcap);

struct hd_webhook_sender;
struct uv_loop_s;
/* Starts a webhook sender for the configured receivers (global and per-app
 * URLs, every app's secret registered) on loop. *out = NULL and 0 when no URL
 * is configured. Stop it with hd_webhook_sender_stop. */
int hd_config_webhooks_start(const hd_config_t *c, struct uv_loop_s *loop, struct hd_webhook_sender **out);

#endif
