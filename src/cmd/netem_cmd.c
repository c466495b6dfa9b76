/* `hudong netem`: the network emulator as a real-time UDP relay (docs/netem.md).
 * Parses the options, reads schedule and trace files, runs the relay and an
 * optional HTTP control endpoint (GET /stats, POST /impair) on one libuv loop,
 * and prints the stats on exit. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/err.h"
#include "base/log.h"
#include "cmd/cmd.h"
#include "cmd/config.h"
#include "io/http.h"
#include "io/netem_relay.h"
#include "io/netem_tcp.h"
#include "netem/profile.h"

#define MAX_NETEM_ARGS 128
#define MAX_FILE (16 << 20)

typedef struct {
  uv_loop_t *loop;
  hd_netem_relay_t *relay;
  hd_http_server_t *http;
  uv_signal_t sigint, sigterm;
  uv_timer_t stats_timer;
} netem_app_t;

static void usage(FILE *f) {
  fprintf(f, "usage: hudong netem --listen HOST:PORT --to HOST:PORT [impairments] [--control HOST:PORT]\n"
             "       hudong netem --tcp --listen HOST:PORT --to HOST:PORT [--delay MS | --up-delay MS "
             "--down-delay MS]\n"
             "  --tcp: relay TCP connections (HTTP, WebSocket) holding every chunk --delay ms each way\n"
             "         (order kept; no loss, jitter or rate: TCP would hide them)\n"
             "                    [--stats-interval S] [--max-sessions N] [--idle-timeout S]\n"
             "impairments (unprefixed: both directions; --up-X: client->target, --down-X: target->client):\n"
             "  --delay MS  --jitter MS  --jitter-dist uniform|normal|pareto  --keep-order\n"
             "  --loss PCT  --burst-loss P,R,K,H (Gilbert-Elliott, percentages)  --dup PCT  --reorder PCT\n"
             "  --rate KBPS  --queue MS | --queue-bytes N  --schedule FILE  --trace FILE (Mahimahi)\n"
             "  --blackout START_MS:DUR_MS (from session start, repeatable)  --seed N  --profile NAME\n"
             "control endpoint: GET /stats (JSON), POST /impair ({\"down\":{\"loss\":20}}, "
             "{\"both\":{\"blackout_now_ms\":2000}}, {\"reset\":true})\n"
             "profiles:\n");
  for (size_t i = 0; hd_netem_profile_name(i); i++)
    fprintf(stderr, "  %-13s %s\n", hd_netem_profile_name(i), hd_netem_profile_summary(i));
  fprintf(stderr, "see docs/netem.md\n");
}

static int read_file(const char *path, char **out, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return HD_EIO;
  char *buf = malloc(MAX_FILE + 1);
  if (!buf) {
    fclose(f);
    return HD_ENOMEM;
  }
  size_t n = fread(buf, 1, MAX_FILE + 1, f);
  int bad = ferror(f);
  fclose(f);
  if (bad || n > MAX_FILE) {
    free(buf);
    return bad ? HD_EIO : HD_ENOSPC;
  }
  buf[n] = 0;
  *out = buf;
  *len = n;
  return 0;
}

static void print_dir(FILE *f, const char *name, const hd_netem_stats_t *s) {
  fprintf(
      f,
      "  %-4s in %llu pkts / %llu B, out %llu pkts / %llu B; dropped: loss %llu, queue %llu, blackout %llu, "
      "cap %llu; dup %llu, reordered %llu; queueing delay p50 %.1f p95 %.1f p99 %.1f max %.1f ms\n",
      name, (unsigned long long)s->pkts_in, (unsigned long long)s->bytes_in, (unsigned long long)s->pkts_out,
      (unsigned long long)s->bytes_out, (unsigned long long)s->drop_loss, (unsigned long long)s->drop_queue,
      (unsigned long long)s->drop_blackout, (unsigned long long)s->drop_cap,
      (unsigned long long)s->duplicated, (unsigned long long)s->reordered, (double)s->qdelay_p50 / 1000,
      (double)s->qdelay_p95 / 1000, (double)s->qdelay_p99 / 1000, (double)s->qdelay_max / 1000);
}

static void print_stats(netem_app_t *a) {
  hd_netem_stats_t up, down;
  size_t n;
  hd_netem_relay_stats(a->relay, &up, &down, &n);
  fprintf(stderr, "hudong netem: %zu active session(s)\n", n);
  print_dir(stderr, "up", &up);
  print_dir(stderr, "down", &down);
}

static void on_stats_timer(uv_timer_t *t) { print_stats(t->data); }

static void on_signal(uv_signal_t *h, int sig) {
  netem_app_t *a = h->data;
  HD_LOGI("netem", "signal %d: shutting down", sig);
  uv_stop(a->loop);
}

static int body_is_json(const hd_http_req_t *req) {
  for (size_t i = 0; i < req->body_len; i++) {
    char c = req->body[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    return c == '{';
  }
  return 0;
}

static void control(void *ud, const hd_http_req_t *req, hd_http_resp_t *resp) {
  netem_app_t *a = ud;
  if (!strcmp(req->path, "/stats") && !strcmp(req->method, "GET")) {
    char *j = hd_netem_relay_stats_json(a->relay);
    if (!j) {
      hd_http_resp_text(resp, 500, "out of memory\n");
      return;
    }
    hd_http_resp_body(resp, 200, "application/json", j, strlen(j));
    free(j);
  } else if (!strcmp(req->path, "/impair") && !strcmp(req->method, "POST")) {
    char err[512] = "";
    int json = body_is_json(req);
    const char *src = req->body_len ? req->body : req->query;
    size_t len = req->body_len ? req->body_len : strlen(req->query);
    int rc = hd_netem_relay_impair(a->relay, src, len, json, err, sizeof err);
    if (rc < 0) {
      hd_http_resp_text(resp, 400, "%s\n", err[0] ? err : hd_strerror(rc));
      return;
    }
    hd_netem_opts_t o;
    hd_netem_relay_get(a->relay, &o);
    char up[1024], down[1024];
    hd_netem_opts_describe(&o, HD_NETEM_UP, up, sizeof up);
    hd_netem_opts_describe(&o, HD_NETEM_DOWN, down, sizeof down);
    HD_LOGI("netem", "impairments changed: up: %s; down: %s", up, down);
    json_t *j = json_pack("{s:s,s:s}", "up", up, "down", down);
    char *txt = j ? json_dumps(j, 0) : NULL;
    json_decref(j);
    if (!txt) {
      hd_http_resp_text(resp, 500, "out of memory\n");
      return;
    }
    hd_http_resp_body(resp, 200, "application/json", txt, strlen(txt));
    free(txt);
  } else if (!strcmp(req->path, "/") && !strcmp(req->method, "GET")) {
    hd_http_resp_text(resp, 200,
                      "hudong netem control: GET /stats, POST /impair with JSON "
                      "{\"up\"|\"down\"|\"both\":{\"loss\":20,...}} or a query string (down-loss=20)\n");
  } else if (!strcmp(req->path, "/stats") || !strcmp(req->path, "/impair")) {
    hd_http_resp_text(resp, 405, "method not allowed\n");
  } else {
    hd_http_resp_text(resp, 404, "not found: %s\n", req->path);
  }
}

static void on_tcp_signal(uv_signal_t *h, int sig) {
  HD_LOGI("netem", "signal %d: shutting down", sig);
  uv_stop(h->loop);
}

/* --tcp: a fixed delay per direction, nothing else (netem_tcp.h) */
static int run_tcp(const char *listen_host, int listen_port, const char *to_host, int to_port, int ctl_port,
                   const char **names, const char **values, size_t n) {
  hd_netem_tcp_config_t tc = {
      .listen_host = listen_host, .listen_port = listen_port, .to_host = to_host, .to_port = to_port};
  if (ctl_port >= 0) {
    fprintf(stderr,
            "hudong netem: --control is for the UDP relay; a --tcp relay's delay is fixed at start\n");
    return 2;
  }
  for (size_t i = 0; i < n; i++) {
    int d = !strcmp(names[i], "--delay")        ? 2
            : !strcmp(names[i], "--up-delay")   ? 0
            : !strcmp(names[i], "--down-delay") ? 1
                                                : -1;
    char *end;
    double ms = values[i] ? strtod(values[i], &end) : -1;
    if (d < 0) {
      fprintf(stderr, "hudong netem: %s does not apply with --tcp (only --delay, --up-delay, --down-delay)\n",
              names[i]);
      return 2;
    }
    if (!values[i] || *end || ms < 0 || ms > 60000) {
      fprintf(stderr, "hudong netem: %s: want milliseconds in 0..60000, got '%s'\n", names[i],
              values[i] ? values[i] : "");
      return 2;
    }
    for (int k = 0; k < 2; k++)
      if (d == 2 || d == k) tc.delay[k] = (hd_time_t)(ms * 1000);
  }
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t *loop = uv_default_loop();
  hd_netem_tcp_t *r;
  int rc = hd_netem_tcp_start(&r, loop, &tc);
  if (rc < 0) {
    fprintf(stderr, "hudong netem: cannot relay tcp %s:%d -> %s:%d: %s\n", listen_host, listen_port, to_host,
            to_port, rc == HD_EINVAL ? "bad address (want an IP literal)" : "cannot listen on that port");
    uv_run(loop, UV_RUN_NOWAIT);
    return 1;
  }
  uv_signal_t sigint, sigterm;
  uv_signal_init(loop, &sigint);
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigint, on_tcp_signal, SIGINT);
  uv_signal_start(&sigterm, on_tcp_signal, SIGTERM);
  fprintf(stderr, "hudong netem: relaying tcp %s:%d -> %s:%d, delay up %.1f ms, down %.1f ms\n", listen_host,
          hd_netem_tcp_port(r), to_host, to_port, (double)tc.delay[0] / 1000, (double)tc.delay[1] / 1000);
  fflush(stderr);
  uv_run(loop, UV_RUN_DEFAULT);
  size_t conns;
  uint64_t bytes[2];
  hd_netem_tcp_stats(r, &conns, bytes);
  fprintf(stderr, "hudong netem: %zu connection(s), %llu bytes up, %llu bytes down\n", conns,
          (unsigned long long)bytes[0], (unsigned long long)bytes[1]);
  hd_netem_tcp_stop(r);
  uv_close((uv_handle_t *)&sigint, NULL);
  uv_close((uv_handle_t *)&sigterm, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  return 0;
}

int hd_cmd_netem(int argc, char **argv) {
  netem_app_t a;
  memset(&a, 0, sizeof a);
  hd_netem_relay_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  hd_netem_opts_init(&cfg.opts);
  char listen_host[64] = "127.0.0.1", to_host[64] = "127.0.0.1", ctl_host[64] = "127.0.0.1";
  int listen_port = -1, to_port = -1, ctl_port = -1;
  double stats_interval = 0, idle = 60;
  long max_sessions = 64;
  int tcp = 0;
  const char *names[MAX_NETEM_ARGS], *values[MAX_NETEM_ARGS];
  size_t n = 0;
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
      usage(stdout);
      return 0;
    }
    if (!strcmp(o, "--tcp")) {
      tcp = 1;
      continue;
    }
    if (!strcmp(o, "--listen") || !strcmp(o, "--to") || !strcmp(o, "--control")) {
      char *h = !strcmp(o, "--listen") ? listen_host : !strcmp(o, "--to") ? to_host : ctl_host;
      int *p = !strcmp(o, "--listen") ? &listen_port : !strcmp(o, "--to") ? &to_port : &ctl_port;
      if (!v || hd_config_parse_hostport(v, h, 64, p)) {
        fprintf(stderr, "hudong netem: %s: want HOST:PORT, got '%s'\n", o, v ? v : "");
        return 2;
      }
      i++;
      continue;
    }
    if (!strcmp(o, "--stats-interval") || !strcmp(o, "--idle-timeout")) {
      char *end;
      double x = v ? strtod(v, &end) : -1;
      if (!v || *end || x < 0 || x > 86400) {
        fprintf(stderr, "hudong netem: %s: want seconds in 0..86400, got '%s'\n", o, v ? v : "");
        return 2;
      }
      *(!strcmp(o, "--stats-interval") ? &stats_interval : &idle) = x;
      i++;
      continue;
    }
    if (!strcmp(o, "--max-sessions")) {
      char *end;
      max_sessions = v ? strtol(v, &end, 10) : -1;
      if (!v || *end || max_sessions < 1 || max_sessions > 4096) {
        fprintf(stderr, "hudong netem: --max-sessions: want 1..4096, got '%s'\n", v ? v : "");
        return 2;
      }
      i++;
      continue;
    }
    int ar = hd_netem_opt_arity(o);
    if (ar < 0 || strncmp(o, "--", 2)) {
      fprintf(stderr, "hudong netem: unknown option '%s'\n", o);
      usage(stderr);
      return 2;
    }
    if (n == MAX_NETEM_ARGS) {
      fprintf(stderr, "hudong netem: too many options\n");
      return 2;
    }
    if (ar == 1 && !v) {
      fprintf(stderr, "hudong netem: %s: needs a value\n", o);
      return 2;
    }
    names[n] = o;
    values[n] = ar ? v : NULL;
    n++;
    i += ar;
  }
  if (listen_port < 0 || to_port <= 0) {
    fprintf(stderr, "hudong netem: --listen HOST:PORT and --to HOST:PORT are required\n");
    usage(stderr);
    return 2;
  }
  if (tcp) return run_tcp(listen_host, listen_port, to_host, to_port, ctl_port, names, values, n);
  char err[512];
  if (hd_netem_opts_apply(&cfg.opts, names, values, n, err, sizeof err) < 0) {
    fprintf(stderr, "hudong netem: %s\n", err);
    return 2;
  }
  char *traces[2] = {NULL, NULL};
  int rc = 2;
  for (int d = 0; d < 2; d++) {
    const char *dn = d ? "down" : "up";
    if (hd_netem_params_check(&cfg.opts.dir[d]) < 0) {
      fprintf(stderr, "hudong netem: the %s settings are not valid for the link model\n", dn);
      goto out;
    }
    if (cfg.opts.schedule_path[d][0]) {
      char *text;
      size_t len;
      int frc = read_file(cfg.opts.schedule_path[d], &text, &len);
      if (frc < 0) {
        fprintf(stderr, "hudong netem: --schedule %s (%s): cannot read (%s)\n", cfg.opts.schedule_path[d], dn,
                hd_strerror(frc));
        goto out;
      }
      frc = hd_netem_schedule_parse(&cfg.opts.dir[d], text, len, err, sizeof err);
      free(text);
      if (frc < 0) {
        fprintf(stderr, "hudong netem: --schedule %s (%s): %s\n", cfg.opts.schedule_path[d], dn, err);
        goto out;
      }
    }
    if (cfg.opts.trace_path[d][0]) {
      /* the same file for both directions is read twice: simpler than sharing */
      int frc = read_file(cfg.opts.trace_path[d], &traces[d], &cfg.trace_len[d]);
      if (frc < 0) {
        fprintf(stderr, "hudong netem: --trace %s (%s): cannot read (%s)\n", cfg.opts.trace_path[d], dn,
                hd_strerror(frc));
        goto out;
      }
      cfg.trace[d] = traces[d];
    }
  }
  cfg.listen_host = listen_host;
  cfg.listen_port = listen_port;
  cfg.to_host = to_host;
  cfg.to_port = to_port;
  cfg.max_sessions = (size_t)max_sessions;
  cfg.idle_timeout = (hd_time_t)(idle * 1e6);
  signal(SIGPIPE, SIG_IGN);
  a.loop = uv_default_loop();
  int src = hd_netem_relay_start(&a.relay, a.loop, &cfg);
  if (src < 0) {
    fprintf(stderr, "hudong netem: cannot relay %s:%d -> %s:%d: %s\n", listen_host, listen_port, to_host,
            to_port, src == HD_EINVAL ? "bad address (want an IP literal)" : "cannot bind the listen port");
    rc = 1;
    uv_run(a.loop, UV_RUN_NOWAIT);
    goto out;
  }
  if (ctl_port >= 0) {
    hd_http_config_t hc = {
        .host = ctl_host, .port = ctl_port, .body_cap = 16 * 1024, .handler = control, .ud = &a};
    if (hd_http_server_start(&a.http, a.loop, &hc) < 0) {
      fprintf(stderr, "hudong netem: cannot listen on control %s:%d\n", ctl_host, ctl_port);
      hd_netem_relay_stop(a.relay);
      uv_run(a.loop, UV_RUN_NOWAIT);
      rc = 1;
      goto out;
    }
  }
  uv_signal_init(a.loop, &a.sigint);
  uv_signal_init(a.loop, &a.sigterm);
  a.sigint.data = a.sigterm.data = &a;
  uv_signal_start(&a.sigint, on_signal, SIGINT);
  uv_signal_start(&a.sigterm, on_signal, SIGTERM);
  uv_timer_init(a.loop, &a.stats_timer);
  a.stats_timer.data = &a;
  if (stats_interval > 0) {
    uint64_t ms = (uint64_t)(stats_interval * 1000);
    if (ms == 0) ms = 1;
    uv_timer_start(&a.stats_timer, on_stats_timer, ms, ms);
  }
  char up[1024], down[1024];
  hd_netem_opts_describe(&cfg.opts, HD_NETEM_UP, up, sizeof up);
  hd_netem_opts_describe(&cfg.opts, HD_NETEM_DOWN, down, sizeof down);
  fprintf(stderr, "hudong netem: relaying udp %s:%d -> %s:%d (seed %llu)\n  up:   %s\n  down: %s\n",
          listen_host, hd_netem_relay_port(a.relay), to_host, to_port, (unsigned long long)cfg.opts.seed, up,
          down);
  if (ctl_port >= 0) fprintf(stderr, "  control: http://%s:%d/stats\n", ctl_host, ctl_port);
  fflush(stderr);
  uv_run(a.loop, UV_RUN_DEFAULT);

  print_stats(&a);
  hd_http_server_stop(a.http);
  hd_netem_relay_stop(a.relay);
  uv_close((uv_handle_t *)&a.sigint, NULL);
  uv_close((uv_handle_t *)&a.sigterm, NULL);
  uv_close((uv_handle_t *)&a.stats_timer, NULL);
  uv_run(a.loop, UV_RUN_DEFAULT);
  uv_loop_close(a.loop);
  fprintf(stderr, "hudong netem: stopped\n");
  rc = 0;
out:
  free(traces[0]);
  free(traces[1]);
  return rc;
}
