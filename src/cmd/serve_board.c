/* `hudong serve`'s whiteboards: store, board server, /api/board (serve_board.h). */
#include "cmd/serve_board.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "base/err.h"
#include "io/board_redis.h"

/* The share timer, apart from sb: it closes after sb is gone. */
typedef struct {
  uv_timer_t timer;
  hd_board_server_t *srv; /* NULL once stopped */
} share_timer_t;

struct hd_serve_board {
  hd_board_store_t *store;
  hd_board_server_t *srv;
  size_t max_image;
  hd_board_redis_t *redis; /* cluster: shared snapshots */
  share_timer_t *share;
};

int hd_serve_board_start(hd_serve_board_t **out, const hd_config_t *cfg, char *err, size_t errcap) {
  hd_serve_board_t *sb = calloc(1, sizeof *sb);
  if (!sb) return HD_ENOMEM;
  int rc = hd_board_store_open(&sb->store, cfg->rtm_db, err, errcap);
  if (rc < 0) {
    free(sb);
    return rc;
  }
  hd_board_server_config_t bc = {.store = sb->store,
                                 .lim = {.max_pages = (int)cfg->board_max_pages,
                                         .max_elements = (int)cfg->board_max_elements,
                                         .max_points = (int)cfg->board_max_points,
                                         .max_entry = (size_t)cfg->board_max_entry_kb * 1024,
                                         .max_bytes = (size_t)cfg->board_max_board_mb << 20},
                                 .snapshot_every = (int)cfg->board_snapshot_every,
                                 .max_boards = (int)cfg->board_max_boards};
  if ((rc = hd_board_server_new(&sb->srv, &bc)) < 0) {
    snprintf(err, errcap, "board server: %s", hd_strerror(rc));
    hd_board_store_free(sb->store);
    free(sb);
    return rc;
  }
  sb->max_image =
      cfg->board_max_image_kb ? (size_t)cfg->board_max_image_kb * 1024 : HD_BOARD_DEFAULT_MAX_IMAGE;
  *out = sb;
  return 0;
}

static void share_closed(uv_handle_t *h) { free(h->data); }

static void share_cb(uv_timer_t *t) {
  share_timer_t *st = t->data;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts); /* the clock of the publish hook's wall_ms */
  if (st->srv) hd_board_server_share_flush(st->srv, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

int hd_serve_board_share_start(hd_serve_board_t *sb, uv_loop_t *loop, const hd_config_t *cfg, char *err,
                               size_t errcap) {
  if (!cfg->redis[0]) return 0;
  hd_redis_url_t url;
  if (hd_redis_url_parse(cfg->redis, &url, err, errcap) < 0) return HD_EINVAL;
  if (hd_board_redis_new(&sb->redis, &url, (int64_t)cfg->board_share_ttl_s * 1000) < 0 ||
      !(sb->share = calloc(1, sizeof *sb->share))) {
    snprintf(err, errcap, "board sharing: out of memory");
    return HD_ENOMEM;
  }
  hd_board_server_set_share(sb->srv,
                            &(hd_board_share_t){.get = hd_board_redis_get,
                                                .put = hd_board_redis_put,
                                                .ud = sb->redis,
                                                .every_ms = (int)cfg->board_share_every_ms,
                                                .max_bytes = (size_t)cfg->board_share_max_kb * 1024});
  sb->share->srv = sb->srv;
  uv_timer_init(loop, &sb->share->timer);
  sb->share->timer.data = sb->share;
  uv_timer_start(&sb->share->timer, share_cb, (uint64_t)cfg->board_share_every_ms,
                 (uint64_t)cfg->board_share_every_ms);
  return 0;
}

void hd_serve_board_stop(hd_serve_board_t *sb) {
  if (!sb) return;
  if (sb->share) {
    sb->share->srv = NULL;
    uv_timer_stop(&sb->share->timer);
    uv_close((uv_handle_t *)&sb->share->timer, share_closed);
  }
  hd_board_server_free(sb->srv);
  hd_board_redis_free(sb->redis);
  hd_board_store_free(sb->store);
  free(sb);
}

hd_board_server_t *hd_serve_board_server(hd_serve_board_t *sb) { return sb->srv; }

/* The value of query parameter k (copied into out), 1 if present. */
static int qparam(const char *q, const char *k, char *out, size_t cap) {
  size_t kl = strlen(k);
  for (const char *p = q; p && *p;) {
    const char *e = strchr(p, '&');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    if (l > kl && !strncmp(p, k, kl) && p[kl] == '=') {
      size_t vl = l - kl - 1;
      if (vl >= cap) vl = cap - 1;
      memcpy(out, p + kl + 1, vl);
      out[vl] = 0;
      return 1;
    }
    p = e ? e + 1 : NULL;
  }
  return 0;
}

static int qint(const char *q, const char *k, long long lo, long long hi, long long *out) {
  char v[32];
  if (!qparam(q, k, v, sizeof v)) return 0;
  char *end;
  long long x = strtoll(v, &end, 10);
  if (!v[0] || *end || x < lo || x > hi) return -1;
  *out = x;
  return 1;
}

static const char *sniff_image(const unsigned char *d, size_t n) {
  if (n >= 8 && !memcmp(d, "\x89PNG\r\n\x1a\n", 8)) return "image/png";
  if (n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff) return "image/jpeg";
  if (n >= 6 && (!memcmp(d, "GIF87a", 6) || !memcmp(d, "GIF89a", 6))) return "image/gif";
  if (n >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4)) return "image/webp";
  return NULL;
}

int hd_serve_board_image_get(hd_serve_board_t *sb, const hd_http_req_t *req, hd_http_resp_t *resp) {
  static const char pfx[] = "/api/board/image/";
  if (strncmp(req->path, pfx, sizeof pfx - 1)) return 0;
  const char *h = req->path + sizeof pfx - 1;
  if (strcmp(req->method, "GET")) {
    hd_http_resp_header(resp, "Allow", "GET");
    hd_http_resp_text(resp, 405, "use GET %s<sha256>\n", pfx);
    return 1;
  }
  int ok = strlen(h) == 64;
  for (const char *c = h; ok && *c; c++)
    ok = (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f');
  if (!ok) {
    hd_http_resp_text(resp, 400, "an image path is %s<64 lower-case hex digits>\n", pfx);
    return 1;
  }
  char type[64];
  void *data;
  size_t len;
  int rc = hd_board_store_image_get(sb->store, h, type, &data, &len);
  if (rc == HD_ENOTFOUND) {
    hd_http_resp_text(resp, 404, "no such image\n");
    return 1;
  }
  if (rc < 0) {
    hd_http_resp_text(resp, 500, "store failure: %s\n", hd_strerror(rc));
    return 1;
  }
  hd_http_resp_header(resp, "Cache-Control", "public, max-age=31536000, immutable");
  resp->status = 200;
  snprintf(resp->content_type, sizeof resp->content_type, "%s", type);
  resp->body = data;
  resp->body_len = len;
  return 1;
}

static void image_post(hd_serve_board_t *sb, const hd_token_claims_t *c, const hd_http_req_t *req,
                       hd_http_resp_t *resp) {
  if (!c->can_publish_data && !c->room_admin) {
    hd_http_resp_text(resp, 403, "forbidden: uploading an image needs a writer's token (canPublishData)\n");
    return;
  }
  if (req->body_len > sb->max_image) {
    hd_http_resp_text(resp, 413,
                      "image of %zu bytes is over the cap of %zu (board.max_image_kb): scale it down first\n",
                      req->body_len, sb->max_image);
    return;
  }
  const char *type = sniff_image((const unsigned char *)req->body, req->body_len);
  if (!type) {
    hd_http_resp_text(resp, 415, "the body is not a PNG, JPEG, GIF or WebP image\n");
    return;
  }
  unsigned char md[32];
  unsigned int ml = 0;
  if (!EVP_Digest(req->body, req->body_len, md, &ml, EVP_sha256(), NULL)) {
    hd_http_resp_text(resp, 500, "hash failed\n");
    return;
  }
  char hex[65];
  for (int i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", md[i]);
  if (hd_board_store_image_put(sb->store, hex, type, req->body, req->body_len) < 0) {
    hd_http_resp_text(resp, 500, "store failure: image not kept\n");
    return;
  }
  char body[160];
  int n = snprintf(body, sizeof body, "{\"src\":\"/api/board/image/%s\",\"bytes\":%zu}", hex, req->body_len);
  hd_http_resp_body(resp, 200, "application/json", body, (size_t)n);
}

void hd_serve_board_http(hd_serve_board_t *sb, const hd_token_claims_t *claims, const char *room,
                         const hd_http_req_t *req, hd_http_resp_t *resp) {
  if (!strcmp(req->path, "/api/board/image")) {
    if (strcmp(req->method, "POST")) {
      hd_http_resp_header(resp, "Allow", "POST");
      hd_http_resp_text(resp, 405, "use POST /api/board/image?room=<room> with the image as the body\n");
      return;
    }
    image_post(sb, claims, req, resp);
    return;
  }
  int log = !strcmp(req->path, "/api/board/log");
  if (!log && strcmp(req->path, "/api/board")) {
    hd_http_resp_text(resp, 404,
                      "whiteboard API: GET /api/board, GET /api/board/log, POST /api/board/image\n");
    return;
  }
  if (strcmp(req->method, "GET")) {
    hd_http_resp_header(resp, "Allow", "GET");
    hd_http_resp_text(resp, 405, "use GET %s?room=<room>&board=<board>\n", req->path);
    return;
  }
  char board[32] = "main", ch[HD_RTM_MAX_CHANNEL + 8];
  qparam(req->query, "board", board, sizeof board);
  if (hd_board_channel(ch, sizeof ch, room, board) < 0) {
    hd_http_resp_text(
        resp, 400,
        "board=<name>: 1..16 of A-Z a-z 0-9 _ - (default main), and wb:<room>:<board> at most 64 "
        "characters\n");
    return;
  }
  long long after = -1, since = -1, limit = HD_BOARD_LOG_MAX;
  if (qint(req->query, "after", 0, INT64_MAX, &after) < 0 ||
      qint(req->query, "since", 0, INT64_MAX, &since) < 0 ||
      qint(req->query, "limit", 1, HD_BOARD_LOG_MAX, &limit) < 0) {
    hd_http_resp_text(resp, 400, "after=<seq> and since=<Unix ms> are integers >= 0, limit 1..%d\n",
                      HD_BOARD_LOG_MAX);
    return;
  }
  char *json = NULL;
  int rc =
      log ? hd_board_server_log(sb->srv, claims->key, ch, after < 0 ? 0 : after, since, (int)limit, &json)
          : hd_board_server_load(sb->srv, claims->key, ch, after, &json);
  if (rc < 0) {
    hd_http_resp_text(resp, rc == HD_ENOSPC ? 503 : 500, "%s\n",
                      rc == HD_ENOSPC
                          ? "too many boards open on this node (board.max_boards): try again later"
                          : "cannot read the board: store failure");
    return;
  }
  hd_http_resp_header(resp, "Cache-Control", "no-store");
  resp->status = 200;
  snprintf(resp->content_type, sizeof resp->content_type, "application/json");
  resp->body = json;
  resp->body_len = strlen(json);
}

int hd_serve_board_metrics(hd_serve_board_t *sb, char *buf, size_t cap) {
  return hd_board_server_metrics_text(sb->srv, buf, cap);
}
