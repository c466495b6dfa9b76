/* `hudong serve`'s whiteboards (issue 19, docs/whiteboard.md), kept out of
 * serve.c: the board store (tables in the RTM database), the board server
 * the RTM broker's publish hook feeds, and the /api/board HTTP API (late-join
 * load, replay log, image upload and download). Control thread only. */
#ifndef HD_CMD_SERVE_BOARD_H
#define HD_CMD_SERVE_BOARD_H
#include <stddef.h>

#include "board/board_server.h"
#include "cmd/config.h"
#include "io/http.h"
#include "proto/token.h"

struct uv_loop_s;
typedef struct hd_serve_board hd_serve_board_t;

/* Opens the store next to the RTM store (cfg->rtm_db). err says why not. */
int hd_serve_board_start(hd_serve_board_t **out, const hd_config_t *cfg, char *err, size_t errcap);
void hd_serve_board_stop(hd_serve_board_t *sb); /* NULL ok */
hd_board_server_t *hd_serve_board_server(hd_serve_board_t *sb);
/* In a cluster (cfg->redis): boards are shared through Redis so that a node
 * taking a board over starts from its state (docs/whiteboard.md
 * "Multi-node"); a timer on loop shares the changed ones. Nothing without
 * redis. HD_ENOMEM, HD_EINVAL (err says why). */
int hd_serve_board_share_start(hd_serve_board_t *sb, struct uv_loop_s *loop, const hd_config_t *cfg,
                               char *err, size_t errcap);

/* GET /api/board/image/<sha256>: no token (the hash is the capability). 1 if handled. */
int hd_serve_board_image_get(hd_serve_board_t *sb, const hd_http_req_t *req, hd_http_resp_t *resp);
/* /api/board, /api/board/log, POST /api/board/image for a token valid for room. */
void hd_serve_board_http(hd_serve_board_t *sb, const hd_token_claims_t *claims, const char *room,
                         const hd_http_req_t *req, hd_http_resp_t *resp);
/* The /metrics series; length written, HD_ENOSPC when it does not fit. */
int hd_serve_board_metrics(hd_serve_board_t *sb, char *buf, size_t cap);

#endif
