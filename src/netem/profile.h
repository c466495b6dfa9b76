/* Impairment options for `hudong netem` and its control endpoint, sans-IO:
 * CLI-style options (`--delay 50`, `--down-loss 20`, `--profile 3g`, ...) are
 * applied to a pair of hd_netem_params_t (up = client→target, down =
 * target→client); capacity schedule files (`SECONDS KBPS` lines) are parsed
 * from text the caller read. Shipped profiles are documented in docs/netem.md
 * with where their numbers come from (RFC 8867 §5.1, WebPageTest connectivity
 * profiles, ...). Nothing here opens files: paths are recorded for the caller. */
#ifndef HD_NETEM_PROFILE_H
#define HD_NETEM_PROFILE_H
#include <stddef.h>
#include <stdint.h>

#include "netem/link.h"

enum { HD_NETEM_UP = 0, HD_NETEM_DOWN = 1 };
#define HD_NETEM_PATH_MAX 512

typedef struct {
  hd_netem_params_t dir[2];                 /* [HD_NETEM_UP], [HD_NETEM_DOWN] */
  uint64_t seed;                            /* --seed (default 1) */
  uint64_t dir_seed[2];                     /* --up-seed / --down-seed ... */
  int dir_seed_set[2];                      /* ... when set, that direction's seed instead of `seed` */
  char schedule_path[2][HD_NETEM_PATH_MAX]; /* --schedule FILE, "" if none */
  char trace_path[2][HD_NETEM_PATH_MAX];    /* --trace FILE, "" if none */
  hd_time_t blackout_now[2];                /* --blackout-now MS: a window starting when applied; 0 = none */
  int blackout_clear[2];                    /* --no-blackout: also end windows started "now" earlier */
} hd_netem_opts_t;

/* No impairment both ways, seed 1. */
void hd_netem_opts_init(hd_netem_opts_t *o);

/* The seed direction `dir` draws from: --up-seed / --down-seed if given, else --seed. */
uint64_t hd_netem_opts_seed(const hd_netem_opts_t *o, int dir);

/* How many values option `name` takes ("--" optional, "--up-"/"--down-"
 * prefixes allowed): 1 or 0 (a flag), HD_ENOTFOUND if it is no netem option. */
int hd_netem_opt_arity(const char *name);

/* Applies one option: name with or without "--" and an optional "up-" /
 * "down-" / "both-" prefix (no prefix = both directions); value is NULL for
 * flags. On error returns HD_EINVAL with a message naming the option, e.g.
 * "--loss: 150 is not a percentage in 0..100", and leaves `o` unchanged.
 * `--profile NAME` replaces the direction(s) it targets with the profile. */
int hd_netem_opt_apply(hd_netem_opts_t *o, const char *name, const char *value, char *err, size_t errcap);

/* Applies n options in command-line order, except that profile options are
 * applied first (so `--loss 5 --profile 3g` is 3g with 5% loss). Stops at the
 * first error (message in err; `o` may be partly changed). */
int hd_netem_opts_apply(hd_netem_opts_t *o, const char *const *names, const char *const *values, size_t n,
                        char *err, size_t errcap);

/* Parses a capacity schedule into p->schedule (replacing any previous one):
 * lines "SECONDS KBPS", '#' starts a comment, blank lines and CRs ignored,
 * times strictly increasing, at most HD_NETEM_MAX_SCHEDULE steps. Before a
 * first step after 0 s, p->rate_bps applies (link.h). Returns the number of
 * steps or HD_EINVAL with "line N: ..." in err (p unchanged then). */
int hd_netem_schedule_parse(hd_netem_params_t *p, const char *text, size_t len, char *err, size_t errcap);

/* Loads shipped profile `name` into up/down. HD_ENOTFOUND for an unknown name. */
int hd_netem_profile_get(const char *name, hd_netem_params_t *up, hd_netem_params_t *down);
/* Name of shipped profile i (0..), NULL past the last. */
const char *hd_netem_profile_name(size_t i);
/* One-line description of profile i, NULL past the last. */
const char *hd_netem_profile_summary(size_t i);

/* One-line human summary of p ("delay 25ms jitter 5ms(normal) loss 1% rate
 * 2000kbps queue 100ms ..."), always NUL-terminated; returns its length. */
size_t hd_netem_params_describe(const hd_netem_params_t *p, char *buf, size_t cap);

/* hd_netem_params_describe of direction `dir` plus the trace file in use, if any. */
size_t hd_netem_opts_describe(const hd_netem_opts_t *o, int dir, char *buf, size_t cap);

#endif
