/* Impairment options, schedule files and shipped profiles for `hudong netem`
 * (see profile.h and docs/netem.md). Every option is parsed into a copy of the
 * options first, so a bad value leaves the current settings untouched. */
#include "netem/profile.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

#define MAX_NAME 64
#define MAX_DELAY_MS 600000.0     /* 10 minutes: anything longer is a typo */
#define MAX_RATE_KBPS 100000000.0 /* 100 Gbit/s */
#define MAX_QUEUE_BYTES (1024.0 * 1024 * 1024)

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t cap, const char *fmt, ...) {
  if (err && cap) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
  }
  return HD_EINVAL;
}

void hd_netem_opts_init(hd_netem_opts_t *o) {
  memset(o, 0, sizeof *o);
  hd_netem_params_init(&o->dir[HD_NETEM_UP]);
  hd_netem_params_init(&o->dir[HD_NETEM_DOWN]);
  o->seed = 1;
}

uint64_t hd_netem_opts_seed(const hd_netem_opts_t *o, int dir) {
  return o->dir_seed_set[dir] ? o->dir_seed[dir] : o->seed;
}

/* ---- shipped profiles (numbers and sources in docs/netem.md) ---- */

typedef struct {
  const char *name, *summary;
  void (*build)(hd_netem_params_t *up, hd_netem_params_t *down);
} profile_t;

static void set_common(hd_netem_params_t *p, double delay_ms, double jitter_ms, int dist, int keep_order,
                       double rate_kbps, double queue_ms) {
  hd_netem_params_init(p);
  p->delay = (hd_time_t)(delay_ms * 1000);
  p->jitter = (hd_time_t)(jitter_ms * 1000);
  p->jitter_dist = jitter_ms > 0 ? dist : HD_JITTER_NONE;
  p->keep_order = keep_order;
  p->rate_bps = (uint64_t)(rate_kbps * 1000);
  p->queue_time = (hd_time_t)(queue_ms * 1000);
}

/* WebPageTest "3G": 1.6 Mbit/s down, 768 kbit/s up, 300 ms RTT; cellular RLC
 * delivers in order, so jitter keeps order. */
static void build_3g(hd_netem_params_t *up, hd_netem_params_t *down) {
  set_common(up, 150, 10, HD_JITTER_NORMAL, 1, 768, 500);
  set_common(down, 150, 10, HD_JITTER_NORMAL, 1, 1600, 500);
}

/* Wi-Fi under interference: short path, heavy-tailed jitter from MAC
 * retransmissions, bursty loss (Gilbert: mean burst 3 packets, ~2.9% loss). */
static void build_lossy_wifi(hd_netem_params_t *up, hd_netem_params_t *down) {
  hd_netem_params_t *d[2] = {up, down};
  for (int i = 0; i < 2; i++) {
    set_common(d[i], 5, 8, HD_JITTER_PARETO, 0, 20000, 100);
    d[i]->ge.enabled = 1;
    d[i]->ge.p = 0.01;
    d[i]->ge.r = 0.33;
    d[i]->ge.k = 1.0;
    d[i]->ge.h = 0.0;
  }
}

/* WebPageTest "LTE" (70 ms RTT) in a busy cell: a quarter of its 12 Mbit/s
 * down, 1 Mbit/s up, deep buffer (bufferbloat), some jitter and loss. */
static void build_congested_4g(hd_netem_params_t *up, hd_netem_params_t *down) {
  set_common(up, 35, 15, HD_JITTER_NORMAL, 1, 1000, 400);
  set_common(down, 35, 15, HD_JITTER_NORMAL, 1, 3000, 400);
  up->loss = down->loss = 0.005;
}

/* RFC 8867 §5.1 "Variable Available Capacity with a Single Flow": capacity
 * 1 → 2.5 → 0.6 → 1 Mbit/s at 0/40/60/80 s, 50 ms one-way delay, drop-tail
 * queue of 300 ms, no loss. */
static void build_rfc8867_5_1(hd_netem_params_t *up, hd_netem_params_t *down) {
  hd_netem_params_t *d[2] = {up, down};
  static const struct {
    int s;
    uint64_t kbps;
  } steps[] = {{0, 1000}, {40, 2500}, {60, 600}, {80, 1000}};
  for (int i = 0; i < 2; i++) {
    set_common(d[i], 50, 0, HD_JITTER_NONE, 0, 0, 300);
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
      d[i]->schedule[k].at = HD_SEC(steps[k].s);
      d[i]->schedule[k].rate_bps = steps[k].kbps * 1000;
    }
    d[i]->n_schedule = sizeof steps / sizeof steps[0];
  }
}

/* A 2 s outage (handover, tunnel) 10 s into the session, both ways, on an
 * otherwise clean 50 ms RTT path. */
static void build_blackout_2s(hd_netem_params_t *up, hd_netem_params_t *down) {
  hd_netem_params_t *d[2] = {up, down};
  for (int i = 0; i < 2; i++) {
    set_common(d[i], 25, 0, HD_JITTER_NONE, 0, 0, 0);
    d[i]->blackouts[0].start = HD_SEC(10);
    d[i]->blackouts[0].duration = HD_SEC(2);
    d[i]->n_blackouts = 1;
  }
}

static const profile_t profiles[] = {
    {"3g", "WebPageTest 3G: 1.6 Mbit/s down / 768 kbit/s up, 300 ms RTT, 10 ms jitter", build_3g},
    {"lossy-wifi", "Wi-Fi: 20 Mbit/s, 10 ms RTT, Pareto jitter 8 ms, bursty loss ~2.9% (bursts of 3)",
     build_lossy_wifi},
    {"congested-4g", "busy LTE cell: 3 Mbit/s down / 1 Mbit/s up, 70 ms RTT, 15 ms jitter, 0.5% loss",
     build_congested_4g},
    {"rfc8867-5.1", "RFC 8867 5.1: 1 -> 2.5 -> 0.6 -> 1 Mbit/s at 0/40/60/80 s, 50 ms one-way, 300 ms queue",
     build_rfc8867_5_1},
    {"blackout-2s", "50 ms RTT with a 2 s outage both ways 10 s into the session", build_blackout_2s},
};
#define N_PROFILES (sizeof profiles / sizeof profiles[0])

int hd_netem_profile_get(const char *name, hd_netem_params_t *up, hd_netem_params_t *down) {
  for (size_t i = 0; i < N_PROFILES; i++) {
    if (!strcmp(profiles[i].name, name)) {
      hd_netem_params_t u, d;
      profiles[i].build(&u, &d);
      if (up) *up = u;
      if (down) *down = d;
      return 0;
    }
  }
  return HD_ENOTFOUND;
}

const char *hd_netem_profile_name(size_t i) { return i < N_PROFILES ? profiles[i].name : NULL; }
const char *hd_netem_profile_summary(size_t i) { return i < N_PROFILES ? profiles[i].summary : NULL; }

/* ---- option table ---- */

enum {
  OPT_DELAY,
  OPT_JITTER,
  OPT_JITTER_DIST,
  OPT_KEEP_ORDER,
  OPT_NO_KEEP_ORDER,
  OPT_LOSS,
  OPT_BURST_LOSS,
  OPT_RATE,
  OPT_QUEUE,
  OPT_QUEUE_BYTES,
  OPT_SCHEDULE,
  OPT_TRACE,
  OPT_DUP,
  OPT_REORDER,
  OPT_BLACKOUT,
  OPT_NO_BLACKOUT,
  OPT_BLACKOUT_NOW,
  OPT_SEED,
  OPT_PROFILE,
};

static const struct {
  const char *name;
  int id, arity, per_dir;
} opts[] = {
    {"delay", OPT_DELAY, 1, 1},
    {"jitter", OPT_JITTER, 1, 1},
    {"jitter-dist", OPT_JITTER_DIST, 1, 1},
    {"keep-order", OPT_KEEP_ORDER, 0, 1},
    {"no-keep-order", OPT_NO_KEEP_ORDER, 0, 1},
    {"loss", OPT_LOSS, 1, 1},
    {"burst-loss", OPT_BURST_LOSS, 1, 1},
    {"rate", OPT_RATE, 1, 1},
    {"queue", OPT_QUEUE, 1, 1},
    {"queue-bytes", OPT_QUEUE_BYTES, 1, 1},
    {"schedule", OPT_SCHEDULE, 1, 1},
    {"trace", OPT_TRACE, 1, 1},
    {"dup", OPT_DUP, 1, 1},
    {"duplicate", OPT_DUP, 1, 1},
    {"reorder", OPT_REORDER, 1, 1},
    {"blackout", OPT_BLACKOUT, 1, 1},
    {"no-blackout", OPT_NO_BLACKOUT, 0, 1},
    {"blackout-now", OPT_BLACKOUT_NOW, 1, 1},
    {"blackout-now-ms", OPT_BLACKOUT_NOW, 1, 1},
    {"seed", OPT_SEED, 1, 1},
    {"profile", OPT_PROFILE, 1, 1},
};
#define N_OPTS (sizeof opts / sizeof opts[0])

/* Splits "--down-loss" / "down_loss" into direction mask (bit 0 up, bit 1
 * down) and table index. Returns the index or HD_ENOTFOUND. */
static int lookup(const char *name, int *dirs) {
  char n[MAX_NAME];
  while (*name == '-')
    name++;
  size_t len = strlen(name);
  if (len == 0 || len >= sizeof n) return HD_ENOTFOUND;
  for (size_t i = 0; i <= len; i++)
    n[i] = name[i] == '_' ? '-' : (char)tolower((unsigned char)name[i]);
  const char *base = n;
  *dirs = 3;
  if (!strncmp(n, "up-", 3)) {
    *dirs = 1;
    base = n + 3;
  } else if (!strncmp(n, "down-", 5)) {
    *dirs = 2;
    base = n + 5;
  } else if (!strncmp(n, "both-", 5)) {
    base = n + 5;
  }
  for (size_t i = 0; i < N_OPTS; i++) {
    if (strcmp(opts[i].name, base)) continue;
    if (!opts[i].per_dir && base != n) return HD_ENOTFOUND;
    return (int)i;
  }
  return HD_ENOTFOUND;
}

int hd_netem_opt_arity(const char *name) {
  int dirs;
  int i = lookup(name, &dirs);
  return i < 0 ? i : opts[i].arity;
}

/* A finite decimal number with nothing after it. */
static int parse_num(const char *s, double *out) {
  if (!s) return -1;
  while (isspace((unsigned char)*s))
    s++;
  if (!*s) return -1;
  char *end;
  double v = strtod(s, &end);
  while (isspace((unsigned char)*end))
    end++;
  if (*end || !isfinite(v)) return -1;
  *out = v;
  return 0;
}

static int parse_pct(const char *opt, const char *v, double *out, char *err, size_t cap) {
  double x;
  if (parse_num(v, &x) || x < 0 || x > 100)
    return fail(err, cap, "%s: %s is not a percentage in 0..100", opt, v ? v : "(missing)");
  *out = x / 100.0;
  return 0;
}

static int parse_ms(const char *opt, const char *v, hd_time_t *out, char *err, size_t cap) {
  double x;
  if (parse_num(v, &x) || x < 0 || x > MAX_DELAY_MS)
    return fail(err, cap, "%s: %s is not a time in 0..%.0f ms", opt, v ? v : "(missing)", MAX_DELAY_MS);
  *out = (hd_time_t)llround(x * 1000.0);
  return 0;
}

static int parse_burst(const char *opt, const char *v, hd_netem_ge_t *ge, char *err, size_t cap) {
  if (v && (!strcmp(v, "off") || !strcmp(v, "none"))) {
    memset(ge, 0, sizeof *ge);
    return 0;
  }
  double x[4];
  const char *s = v ? v : "";
  for (int i = 0; i < 4; i++) {
    char *end;
    x[i] = strtod(s, &end);
    if (end == s || !isfinite(x[i]) || x[i] < 0 || x[i] > 100 || (i < 3 && *end != ',') || (i == 3 && *end))
      return fail(err, cap,
                  "%s: '%s' is not P,R,K,H (four percentages 0..100: good->bad, bad->good, "
                  "delivery in good, delivery in bad), e.g. 5,30,100,0",
                  opt, v ? v : "(missing)");
    s = end + 1;
  }
  if (x[1] == 0 && x[0] > 0)
    return fail(err, cap, "%s: R (bad->good) is 0, so the link would stay in the bad state forever", opt);
  ge->enabled = 1;
  ge->p = x[0] / 100;
  ge->r = x[1] / 100;
  ge->k = x[2] / 100;
  ge->h = x[3] / 100;
  return 0;
}

static int set_path(char *dst, const char *opt, const char *v, char *err, size_t cap) {
  if (!v || !*v) return fail(err, cap, "%s: needs a file name", opt);
  if (strlen(v) >= HD_NETEM_PATH_MAX) return fail(err, cap, "%s: file name too long", opt);
  snprintf(dst, HD_NETEM_PATH_MAX, "%s", v);
  return 0;
}

int hd_netem_opt_apply(hd_netem_opts_t *o, const char *name, const char *value, char *err, size_t errcap) {
  int dirs;
  int idx = lookup(name, &dirs);
  char opt[MAX_NAME + 8];
  const char *bare = name;
  while (*bare == '-')
    bare++;
  snprintf(opt, sizeof opt, "--%s", bare);
  if (idx < 0) return fail(err, errcap, "%s: unknown option", opt);
  if (opts[idx].arity && !value) return fail(err, errcap, "%s: needs a value", opt);
  hd_netem_opts_t t = *o; /* copy: a bad value leaves `o` untouched */
  hd_time_t ms = 0;
  double x = 0;
  int rc;
  /* values shared by both directions are parsed once */
  switch (opts[idx].id) {
  case OPT_DELAY:
  case OPT_JITTER:
  case OPT_QUEUE:
  case OPT_BLACKOUT_NOW:
    if ((rc = parse_ms(opt, value, &ms, err, errcap)) < 0) return rc;
    break;
  case OPT_LOSS:
  case OPT_DUP:
  case OPT_REORDER:
    if ((rc = parse_pct(opt, value, &x, err, errcap)) < 0) return rc;
    break;
  case OPT_RATE:
    if (parse_num(value, &x) || x < 0 || x > MAX_RATE_KBPS)
      return fail(err, errcap, "%s: %s is not a rate in 0..%.0f kbit/s (0 = unlimited)", opt, value,
                  MAX_RATE_KBPS);
    break;
  case OPT_QUEUE_BYTES:
    if (parse_num(value, &x) || x < 0 || x > MAX_QUEUE_BYTES || x != floor(x))
      return fail(err, errcap, "%s: %s is not a byte count in 0..%.0f", opt, value, MAX_QUEUE_BYTES);
    break;
  case OPT_SEED: {
    char *end;
    if (!*value || *value == '-')
      return fail(err, errcap, "%s: %s is not a non-negative integer", opt, value);
    unsigned long long s = strtoull(value, &end, 0);
    if (*end) return fail(err, errcap, "%s: %s is not a non-negative integer", opt, value);
    /* --seed sets both directions (and undoes earlier --up-seed/--down-seed) */
    if (dirs == 3) t.seed = s;
    for (int d = 0; d < 2; d++) {
      if (!(dirs & (1 << d))) continue;
      t.dir_seed[d] = s;
      t.dir_seed_set[d] = dirs != 3;
    }
    *o = t;
    return 0;
  }
  default: break;
  }
  for (int d = 0; d < 2; d++) {
    if (!(dirs & (1 << d))) continue;
    hd_netem_params_t *p = &t.dir[d];
    switch (opts[idx].id) {
    case OPT_DELAY: p->delay = ms; break;
    case OPT_JITTER:
      p->jitter = ms;
      if (ms > 0 && p->jitter_dist == HD_JITTER_NONE) p->jitter_dist = HD_JITTER_UNIFORM;
      break;
    case OPT_JITTER_DIST:
      if (!strcmp(value, "uniform"))
        p->jitter_dist = HD_JITTER_UNIFORM;
      else if (!strcmp(value, "normal"))
        p->jitter_dist = HD_JITTER_NORMAL;
      else if (!strcmp(value, "pareto"))
        p->jitter_dist = HD_JITTER_PARETO;
      else if (!strcmp(value, "none"))
        p->jitter_dist = HD_JITTER_NONE;
      else
        return fail(err, errcap, "%s: '%s' is not one of uniform, normal, pareto, none", opt, value);
      break;
    case OPT_KEEP_ORDER: p->keep_order = 1; break;
    case OPT_NO_KEEP_ORDER: p->keep_order = 0; break;
    case OPT_LOSS:
      p->loss = x;
      p->ge.enabled = 0; /* an explicit --loss replaces a burst model */
      break;
    case OPT_BURST_LOSS:
      if ((rc = parse_burst(opt, value, &p->ge, err, errcap)) < 0) return rc;
      break;
    case OPT_RATE:
      p->rate_bps = (uint64_t)llround(x * 1000.0);
      p->n_schedule = 0; /* an explicit rate replaces a schedule (and a trace) */
      t.schedule_path[d][0] = 0;
      t.trace_path[d][0] = 0;
      break;
    case OPT_QUEUE:
      p->queue_time = ms;
      p->queue_bytes = 0;
      break;
    case OPT_QUEUE_BYTES:
      p->queue_bytes = (size_t)x;
      p->queue_time = 0;
      break;
    case OPT_SCHEDULE:
      if ((rc = set_path(t.schedule_path[d], opt, value, err, errcap)) < 0) return rc;
      t.trace_path[d][0] = 0;
      break;
    case OPT_TRACE:
      if ((rc = set_path(t.trace_path[d], opt, value, err, errcap)) < 0) return rc;
      t.schedule_path[d][0] = 0;
      p->n_schedule = 0;
      break;
    case OPT_DUP: p->duplicate = x; break;
    case OPT_REORDER: p->reorder = x; break;
    case OPT_BLACKOUT: {
      double s, len;
      const char *colon = value ? strchr(value, ':') : NULL;
      char a[64];
      if (colon && (size_t)(colon - value) < sizeof a) {
        memcpy(a, value, (size_t)(colon - value));
        a[colon - value] = 0;
      }
      if (!colon || (size_t)(colon - value) >= sizeof a || parse_num(a, &s) || parse_num(colon + 1, &len) ||
          s < 0 || len <= 0 || s > 86400e3 || len > 86400e3)
        return fail(err, errcap,
                    "%s: '%s' is not START_MS:DUR_MS (start >= 0 and duration > 0 in ms, "
                    "from the session start), e.g. 10000:2000",
                    opt, value);
      if (p->n_blackouts >= HD_NETEM_MAX_BLACKOUTS)
        return fail(err, errcap, "%s: at most %d blackout windows", opt, HD_NETEM_MAX_BLACKOUTS);
      p->blackouts[p->n_blackouts].start = (hd_time_t)llround(s * 1000);
      p->blackouts[p->n_blackouts].duration = (hd_time_t)llround(len * 1000);
      p->n_blackouts++;
      break;
    }
    case OPT_NO_BLACKOUT:
      p->n_blackouts = 0;
      t.blackout_now[d] = 0;
      t.blackout_clear[d] = 1;
      break;
    case OPT_BLACKOUT_NOW:
      if (ms <= 0) return fail(err, errcap, "%s: the duration must be > 0 ms", opt);
      t.blackout_now[d] = ms;
      break;
    case OPT_PROFILE: {
      hd_netem_params_t pr[2];
      if (hd_netem_profile_get(value, &pr[0], &pr[1]) < 0) {
        char names[256] = "";
        for (size_t i = 0; i < N_PROFILES; i++) {
          size_t n = strlen(names);
          snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "", profiles[i].name);
        }
        return fail(err, errcap, "%s: unknown profile '%s' (known: %s)", opt, value, names);
      }
      *p = pr[d];
      t.schedule_path[d][0] = 0;
      t.trace_path[d][0] = 0;
      break;
    }
    default: return fail(err, errcap, "%s: unhandled option", opt);
    }
  }
  *o = t;
  return 0;
}

int hd_netem_opts_apply(hd_netem_opts_t *o, const char *const *names, const char *const *values, size_t n,
                        char *err, size_t errcap) {
  for (int pass = 0; pass < 2; pass++) {
    for (size_t i = 0; i < n; i++) {
      int dirs;
      int idx = lookup(names[i], &dirs);
      int is_profile = idx >= 0 && opts[idx].id == OPT_PROFILE;
      if (is_profile != (pass == 0)) continue;
      int rc = hd_netem_opt_apply(o, names[i], values ? values[i] : NULL, err, errcap);
      if (rc < 0) return rc;
    }
  }
  return 0;
}

int hd_netem_schedule_parse(hd_netem_params_t *p, const char *text, size_t len, char *err, size_t errcap) {
  hd_netem_step_t steps[HD_NETEM_MAX_SCHEDULE];
  size_t n = 0;
  size_t pos = 0;
  int line = 0;
  while (pos < len) {
    size_t e = pos;
    while (e < len && text[e] != '\n')
      e++;
    line++;
    char buf[256];
    size_t l = e - pos;
    if (l >= sizeof buf)
      return fail(err, errcap, "line %d: longer than %zu characters", line, sizeof buf - 1);
    if (memchr(text + pos, 0, l)) return fail(err, errcap, "line %d: contains a NUL byte", line);
    memcpy(buf, text + pos, l);
    buf[l] = 0;
    if (l && buf[l - 1] == '\r') buf[l - 1] = 0;
    pos = e + 1;
    char *hash = strchr(buf, '#');
    if (hash) *hash = 0;
    char *s = buf;
    while (isspace((unsigned char)*s))
      s++;
    if (!*s) continue;
    char *end;
    double sec = strtod(s, &end);
    if (end == s || !isspace((unsigned char)*end) || !isfinite(sec) || sec < 0 || sec > 86400 * 365.0)
      return fail(err, errcap, "line %d: expected 'SECONDS KBPS', got '%s'", line, s);
    char *k = end;
    double kbps = strtod(k, &end);
    while (isspace((unsigned char)*end))
      end++;
    if (end == k || *end || !isfinite(kbps) || kbps < 0 || kbps > MAX_RATE_KBPS)
      return fail(err, errcap, "line %d: expected 'SECONDS KBPS' with KBPS in 0..%.0f, got '%s'", line,
                  MAX_RATE_KBPS, s);
    hd_time_t at = (hd_time_t)llround(sec * 1e6);
    if (n > 0 && at <= steps[n - 1].at)
      return fail(err, errcap, "line %d: time %g s is not after the previous step", line, sec);
    if (n == HD_NETEM_MAX_SCHEDULE)
      return fail(err, errcap, "line %d: more than %d steps", line, HD_NETEM_MAX_SCHEDULE);
    steps[n++] = (hd_netem_step_t){.at = at, .rate_bps = (uint64_t)llround(kbps * 1000)};
  }
  if (n == 0) return fail(err, errcap, "no steps (want lines 'SECONDS KBPS')");
  memcpy(p->schedule, steps, n * sizeof steps[0]);
  p->n_schedule = n;
  return (int)n;
}

static size_t add(char *buf, size_t cap, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t add(char *buf, size_t cap, size_t n, const char *fmt, ...) {
  if (n >= cap) return n;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(buf + n, cap - n, fmt, ap);
  va_end(ap);
  if (k < 0) return n;
  return n + (size_t)k >= cap ? cap - 1 : n + (size_t)k;
}

size_t hd_netem_params_describe(const hd_netem_params_t *p, char *buf, size_t cap) {
  static const char *dist[] = {"none", "uniform", "normal", "pareto"};
  size_t n = 0;
  if (!cap) return 0;
  buf[0] = 0;
  n = add(buf, cap, n, "delay %gms", (double)p->delay / 1000);
  if (p->jitter)
    n = add(buf, cap, n, " jitter %gms(%s%s)", (double)p->jitter / 1000,
            p->jitter_dist >= 0 && p->jitter_dist <= 3 ? dist[p->jitter_dist] : "?",
            p->keep_order ? ",in-order" : "");
  if (p->ge.enabled)
    n = add(buf, cap, n, " burst-loss p=%g%% r=%g%% k=%g%% h=%g%%", p->ge.p * 100, p->ge.r * 100,
            p->ge.k * 100, p->ge.h * 100);
  else if (p->loss > 0)
    n = add(buf, cap, n, " loss %g%%", p->loss * 100);
  if (p->duplicate > 0) n = add(buf, cap, n, " dup %g%%", p->duplicate * 100);
  if (p->reorder > 0) n = add(buf, cap, n, " reorder %g%%", p->reorder * 100);
  if (p->n_schedule) {
    n = add(buf, cap, n, " schedule");
    for (size_t i = 0; i < p->n_schedule; i++)
      n = add(buf, cap, n, "%s%gs:%gkbps", i ? "," : " ", (double)p->schedule[i].at / 1e6,
              (double)p->schedule[i].rate_bps / 1000);
  } else if (p->rate_bps) {
    n = add(buf, cap, n, " rate %gkbps", (double)p->rate_bps / 1000);
  }
  if (p->queue_bytes)
    n = add(buf, cap, n, " queue %zuB", p->queue_bytes);
  else if (p->queue_time)
    n = add(buf, cap, n, " queue %gms", (double)p->queue_time / 1000);
  for (size_t i = 0; i < p->n_blackouts; i++)
    n = add(buf, cap, n, " blackout %gs+%gs", (double)p->blackouts[i].start / 1e6,
            (double)p->blackouts[i].duration / 1e6);
  return n;
}

size_t hd_netem_opts_describe(const hd_netem_opts_t *o, int dir, char *buf, size_t cap) {
  size_t n = hd_netem_params_describe(&o->dir[dir], buf, cap);
  if (o->trace_path[dir][0]) n = add(buf, cap, n, " trace %s", o->trace_path[dir]);
  if (o->dir_seed_set[dir]) n = add(buf, cap, n, " seed %llu", (unsigned long long)o->dir_seed[dir]);
  return n;
}
