/* Unit tests for the `hudong netem` option parser: every option, the
 * --up-/--down-/--both- prefixes, profile-first ordering, the shipped profiles,
 * schedule files, and the error messages for bad values. */
#include "hd_test.h"

#include "base/err.h"
#include "netem/profile.h"

static char err[512];

static int ap(hd_netem_opts_t *o, const char *name, const char *value) {
  err[0] = 0;
  return hd_netem_opt_apply(o, name, value, err, sizeof err);
}

static void test_every_option(void **st) {
  (void)st;
  hd_netem_opts_t o;
  hd_netem_opts_init(&o);
  assert_int_equal(o.seed, 1);
  assert_int_equal(ap(&o, "--delay", "25"), 0);
  assert_int_equal(ap(&o, "--jitter", "4.5"), 0);
  assert_int_equal(ap(&o, "--keep-order", NULL), 0);
  assert_int_equal(ap(&o, "--loss", "2.5"), 0);
  assert_int_equal(ap(&o, "--rate", "2000"), 0);
  assert_int_equal(ap(&o, "--queue", "100"), 0);
  assert_int_equal(ap(&o, "--dup", "1"), 0);
  assert_int_equal(ap(&o, "--reorder", "3"), 0);
  assert_int_equal(ap(&o, "--blackout", "10000:2000"), 0);
  assert_int_equal(ap(&o, "--blackout", "30000:500.5"), 0);
  assert_int_equal(ap(&o, "--seed", "42"), 0);
  for (int d = 0; d < 2; d++) {
    const hd_netem_params_t *p = &o.dir[d];
    assert_int_equal(p->delay, 25000);
    assert_int_equal(p->jitter, 4500);
    assert_int_equal(p->jitter_dist, HD_JITTER_UNIFORM); /* default when jitter is set */
    assert_int_equal(p->keep_order, 1);
    assert_true(p->loss > 0.0249 && p->loss < 0.0251);
    assert_int_equal(p->ge.enabled, 0);
    assert_int_equal(p->rate_bps, 2000000);
    assert_int_equal(p->queue_time, 100000);
    assert_int_equal(p->queue_bytes, 0);
    assert_true(p->duplicate > 0.0099 && p->duplicate < 0.0101);
    assert_true(p->reorder > 0.0299 && p->reorder < 0.0301);
    assert_int_equal(p->n_blackouts, 2);
    assert_int_equal(p->blackouts[0].start, 10000000);
    assert_int_equal(p->blackouts[0].duration, 2000000);
    assert_int_equal(p->blackouts[1].start, 30000000);
    assert_int_equal(p->blackouts[1].duration, 500500);
    assert_int_equal(hd_netem_params_check(p), 0);
  }
  assert_int_equal(o.seed, 42);
  assert_int_equal(ap(&o, "--seed", "0x10"), 0);
  assert_int_equal(o.seed, 16);
  /* per-direction seeds: --up-seed / --down-seed; a later --seed sets both again */
  assert_int_equal(hd_netem_opts_seed(&o, HD_NETEM_UP), 16);
  assert_int_equal(ap(&o, "--up-seed", "7"), 0);
  assert_int_equal(hd_netem_opts_seed(&o, HD_NETEM_UP), 7);
  assert_int_equal(hd_netem_opts_seed(&o, HD_NETEM_DOWN), 16);
  assert_int_equal(o.seed, 16);
  char desc[256];
  hd_netem_opts_describe(&o, HD_NETEM_UP, desc, sizeof desc);
  assert_non_null(strstr(desc, " seed 7"));
  hd_netem_opts_describe(&o, HD_NETEM_DOWN, desc, sizeof desc);
  assert_null(strstr(desc, "seed"));
  assert_int_equal(ap(&o, "down_seed", "8"), 0);
  assert_int_equal(hd_netem_opts_seed(&o, HD_NETEM_DOWN), 8);
  assert_int_equal(ap(&o, "--seed", "16"), 0);
  assert_int_equal(hd_netem_opts_seed(&o, HD_NETEM_UP), 16);
  assert_int_equal(hd_netem_opts_seed(&o, HD_NETEM_DOWN), 16);

  assert_int_equal(ap(&o, "--jitter-dist", "normal"), 0);
  assert_int_equal(o.dir[0].jitter_dist, HD_JITTER_NORMAL);
  assert_int_equal(ap(&o, "--jitter-dist", "pareto"), 0);
  assert_int_equal(o.dir[1].jitter_dist, HD_JITTER_PARETO);
  assert_int_equal(ap(&o, "--jitter-dist", "uniform"), 0);
  assert_int_equal(o.dir[1].jitter_dist, HD_JITTER_UNIFORM);
  assert_int_equal(ap(&o, "--no-keep-order", NULL), 0);
  assert_int_equal(o.dir[0].keep_order, 0);

  /* --queue-bytes replaces --queue and the other way round */
  assert_int_equal(ap(&o, "--queue-bytes", "30000"), 0);
  assert_int_equal(o.dir[0].queue_bytes, 30000);
  assert_int_equal(o.dir[0].queue_time, 0);
  assert_int_equal(ap(&o, "--queue", "50"), 0);
  assert_int_equal(o.dir[0].queue_bytes, 0);
  assert_int_equal(o.dir[0].queue_time, 50000);

  /* burst loss in percentages; --loss afterwards switches back to Bernoulli */
  assert_int_equal(ap(&o, "--burst-loss", "5,30,100,0"), 0);
  assert_int_equal(o.dir[0].ge.enabled, 1);
  assert_true(o.dir[0].ge.p > 0.0499 && o.dir[0].ge.p < 0.0501);
  assert_true(o.dir[0].ge.r > 0.2999 && o.dir[0].ge.r < 0.3001);
  assert_true(o.dir[0].ge.k > 0.9999);
  assert_true(o.dir[0].ge.h < 0.0001);
  assert_int_equal(ap(&o, "--burst-loss", "off"), 0);
  assert_int_equal(o.dir[0].ge.enabled, 0);
  assert_int_equal(ap(&o, "--burst-loss", "1,50,99,20"), 0);
  assert_int_equal(ap(&o, "--loss", "1"), 0);
  assert_int_equal(o.dir[1].ge.enabled, 0);

  /* files are recorded, not read; --rate drops them, --trace and --schedule exclude each other */
  assert_int_equal(ap(&o, "--schedule", "/tmp/s.txt"), 0);
  assert_string_equal(o.schedule_path[0], "/tmp/s.txt");
  assert_string_equal(o.schedule_path[1], "/tmp/s.txt");
  assert_int_equal(ap(&o, "--trace", "/tmp/t.trace"), 0);
  assert_string_equal(o.trace_path[1], "/tmp/t.trace");
  assert_string_equal(o.schedule_path[1], "");
  assert_int_equal(ap(&o, "--rate", "500"), 0);
  assert_string_equal(o.trace_path[0], "");

  /* blackouts: cleared, and "now" windows recorded for the relay */
  assert_int_equal(ap(&o, "--blackout-now", "2000"), 0);
  assert_int_equal(o.blackout_now[0], 2000000);
  assert_int_equal(ap(&o, "blackout_now_ms", "1500"), 0); /* JSON spelling */
  assert_int_equal(o.blackout_now[1], 1500000);
  assert_int_equal(ap(&o, "--no-blackout", NULL), 0);
  assert_int_equal(o.dir[0].n_blackouts, 0);
  assert_int_equal(o.blackout_now[0], 0);
  assert_int_equal(o.blackout_clear[1], 1);
}

static void test_prefixes(void **st) {
  (void)st;
  hd_netem_opts_t o;
  hd_netem_opts_init(&o);
  assert_int_equal(ap(&o, "--delay", "10"), 0);
  assert_int_equal(ap(&o, "--up-delay", "30"), 0);
  assert_int_equal(ap(&o, "--down-loss", "20"), 0);
  assert_int_equal(ap(&o, "down-rate", "1000"), 0);  /* no dashes (query strings) */
  assert_int_equal(ap(&o, "up_jitter", "5"), 0);     /* underscores (JSON keys) */
  assert_int_equal(ap(&o, "both-dup", "10"), 0);     /* explicit both */
  assert_int_equal(ap(&o, "--DOWN-Queue", "80"), 0); /* case-insensitive */
  assert_int_equal(o.dir[HD_NETEM_UP].delay, 30000);
  assert_int_equal(o.dir[HD_NETEM_DOWN].delay, 10000);
  assert_true(o.dir[HD_NETEM_UP].loss == 0);
  assert_true(o.dir[HD_NETEM_DOWN].loss > 0.199);
  assert_int_equal(o.dir[HD_NETEM_UP].rate_bps, 0);
  assert_int_equal(o.dir[HD_NETEM_DOWN].rate_bps, 1000000);
  assert_int_equal(o.dir[HD_NETEM_UP].jitter, 5000);
  assert_int_equal(o.dir[HD_NETEM_DOWN].jitter, 0);
  assert_true(o.dir[HD_NETEM_UP].duplicate > 0.099 && o.dir[HD_NETEM_DOWN].duplicate > 0.099);
  assert_int_equal(o.dir[HD_NETEM_DOWN].queue_time, 80000);
  assert_int_equal(o.dir[HD_NETEM_UP].queue_time, 0);
  assert_int_equal(ap(&o, "--up-schedule", "a.txt"), 0);
  assert_string_equal(o.schedule_path[HD_NETEM_UP], "a.txt");
  assert_string_equal(o.schedule_path[HD_NETEM_DOWN], "");

  /* arity */
  assert_int_equal(hd_netem_opt_arity("--loss"), 1);
  assert_int_equal(hd_netem_opt_arity("--down-keep-order"), 0);
  assert_int_equal(hd_netem_opt_arity("--up-profile"), 1);
  assert_int_equal(hd_netem_opt_arity("--listen"), HD_ENOTFOUND);
  assert_int_equal(hd_netem_opt_arity("--up-seed"), 1);
  assert_int_equal(hd_netem_opt_arity("--sideways-loss"), HD_ENOTFOUND);
  assert_int_equal(hd_netem_opt_arity(""), HD_ENOTFOUND);
}

static void test_profiles(void **st) {
  (void)st;
  size_t n = 0;
  while (hd_netem_profile_name(n)) {
    hd_netem_params_t up, down;
    assert_non_null(hd_netem_profile_summary(n));
    assert_int_equal(hd_netem_profile_get(hd_netem_profile_name(n), &up, &down), 0);
    assert_int_equal(hd_netem_params_check(&up), 0);
    assert_int_equal(hd_netem_params_check(&down), 0);
    n++;
  }
  assert_int_equal(n, 5);
  assert_null(hd_netem_profile_summary(n));
  assert_int_equal(hd_netem_profile_get("5g", NULL, NULL), HD_ENOTFOUND);

  hd_netem_params_t up, down;
  assert_int_equal(hd_netem_profile_get("rfc8867-5.1", &up, &down), 0);
  assert_int_equal(down.n_schedule, 4);
  assert_int_equal(down.schedule[0].at, 0);
  assert_int_equal(down.schedule[0].rate_bps, 1000000);
  assert_int_equal(down.schedule[1].at, HD_SEC(40));
  assert_int_equal(down.schedule[1].rate_bps, 2500000);
  assert_int_equal(down.schedule[2].at, HD_SEC(60));
  assert_int_equal(down.schedule[2].rate_bps, 600000);
  assert_int_equal(down.schedule[3].at, HD_SEC(80));
  assert_int_equal(down.schedule[3].rate_bps, 1000000);
  assert_int_equal(down.delay, HD_MS(50));
  assert_int_equal(down.queue_time, HD_MS(300));

  assert_int_equal(hd_netem_profile_get("3g", &up, &down), 0);
  assert_int_equal(up.rate_bps, 768000);
  assert_int_equal(down.rate_bps, 1600000);
  assert_int_equal(up.delay + down.delay, HD_MS(300));

  assert_int_equal(hd_netem_profile_get("lossy-wifi", &up, &down), 0);
  assert_int_equal(up.ge.enabled, 1);
  assert_int_equal(down.jitter_dist, HD_JITTER_PARETO);

  assert_int_equal(hd_netem_profile_get("congested-4g", &up, &down), 0);
  assert_true(down.rate_bps > up.rate_bps);

  assert_int_equal(hd_netem_profile_get("blackout-2s", &up, &down), 0);
  assert_int_equal(up.n_blackouts, 1);
  assert_int_equal(down.blackouts[0].start, HD_SEC(10));
  assert_int_equal(down.blackouts[0].duration, HD_SEC(2));

  /* a profile via options; per direction too */
  hd_netem_opts_t o;
  hd_netem_opts_init(&o);
  assert_int_equal(ap(&o, "--profile", "3g"), 0);
  assert_int_equal(o.dir[HD_NETEM_DOWN].rate_bps, 1600000);
  assert_int_equal(ap(&o, "--up-profile", "blackout-2s"), 0);
  assert_int_equal(o.dir[HD_NETEM_UP].n_blackouts, 1);
  assert_int_equal(o.dir[HD_NETEM_UP].rate_bps, 0);
  assert_int_equal(o.dir[HD_NETEM_DOWN].rate_bps, 1600000);
}

static void test_profile_applied_first(void **st) {
  (void)st;
  hd_netem_opts_t o;
  hd_netem_opts_init(&o);
  /* on the command line the profile comes last, but it is the base */
  const char *names[] = {"--loss", "--down-delay", "--profile", "--keep-order"};
  const char *values[] = {"5", "10", "congested-4g", NULL};
  assert_int_equal(hd_netem_opts_apply(&o, names, values, 4, err, sizeof err), 0);
  assert_true(o.dir[0].loss > 0.049 && o.dir[1].loss > 0.049);
  assert_int_equal(o.dir[HD_NETEM_DOWN].delay, HD_MS(10));
  assert_int_equal(o.dir[HD_NETEM_UP].delay, HD_MS(35));
  assert_int_equal(o.dir[HD_NETEM_DOWN].rate_bps, 3000000);

  /* the first error stops the list and is reported */
  const char *bad[] = {"--delay", "--loss"};
  const char *badv[] = {"20", "x"};
  assert_int_equal(hd_netem_opts_apply(&o, bad, badv, 2, err, sizeof err), HD_EINVAL);
  assert_string_equal(err, "--loss: x is not a percentage in 0..100");
}

static void test_errors(void **st) {
  (void)st;
  hd_netem_opts_t o, before;
  hd_netem_opts_init(&o);
  assert_int_equal(ap(&o, "--delay", "40"), 0);
  before = o;
  static const struct {
    const char *name, *value, *msg;
  } cases[] = {
      {"--loss", "150", "--loss: 150 is not a percentage in 0..100"},
      {"--down-loss", "-1", "--down-loss: -1 is not a percentage in 0..100"},
      {"--loss", "5%", "--loss: 5% is not a percentage in 0..100"},
      {"--loss", "nan", "--loss: nan is not a percentage in 0..100"},
      {"--dup", "101", "--dup: 101 is not a percentage in 0..100"},
      {"--reorder", "", "--reorder:  is not a percentage in 0..100"},
      {"--delay", "abc", "--delay: abc is not a time in 0..600000 ms"},
      {"--up-jitter", "-3", "--up-jitter: -3 is not a time in 0..600000 ms"},
      {"--queue", "1e9", "--queue: 1e9 is not a time in 0..600000 ms"},
      {"--rate", "-5", "--rate: -5 is not a rate in 0..100000000 kbit/s (0 = unlimited)"},
      {"--queue-bytes", "1.5", "--queue-bytes: 1.5 is not a byte count in 0..1073741824"},
      {"--jitter-dist", "gauss", "--jitter-dist: 'gauss' is not one of uniform, normal, pareto, none"},
      {"--seed", "-1", "--seed: -1 is not a non-negative integer"},
      {"--seed", "12abc", "--seed: 12abc is not a non-negative integer"},
      {"--blackout", "5000", NULL},
      {"--blackout", "5000:0", NULL},
      {"--blackout", "-1:100", NULL},
      {"--blackout-now", "0", "--blackout-now: the duration must be > 0 ms"},
      {"--burst-loss", "1,2,3", NULL},
      {"--burst-loss", "1,2,3,4,5", NULL},
      {"--burst-loss", "1,2,300,4", NULL},
      {"--burst-loss", "5,0,100,0",
       "--burst-loss: R (bad->good) is 0, so the link would stay in the bad state forever"},
      {"--profile", "5g",
       "--profile: unknown profile '5g' (known: 3g, lossy-wifi, congested-4g, rfc8867-5.1, blackout-2s)"},
      {"--schedule", "", "--schedule: needs a file name"},
      {"--frobnicate", "1", "--frobnicate: unknown option"},
      {"--up-seed", "-1", "--up-seed: -1 is not a non-negative integer"},
      {"--loss", NULL, "--loss: needs a value"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc = ap(&o, cases[i].name, cases[i].value);
    if (rc != HD_EINVAL) fail_msg("%s %s: accepted", cases[i].name, cases[i].value);
    if (cases[i].msg && strcmp(err, cases[i].msg)) fail_msg("%s: got '%s'", cases[i].name, err);
    if (!cases[i].msg && strncmp(err, cases[i].name, strlen(cases[i].name)))
      fail_msg("%s: message does not name the option: '%s'", cases[i].name, err);
    assert_memory_equal(&o, &before, sizeof o); /* unchanged */
  }
  /* blackout cap */
  char w[32];
  for (int i = 0; i < HD_NETEM_MAX_BLACKOUTS; i++) {
    snprintf(w, sizeof w, "%d:10", i * 100);
    assert_int_equal(ap(&o, "--blackout", w), 0);
  }
  assert_int_equal(ap(&o, "--blackout", "99999:10"), HD_EINVAL);
  assert_string_equal(err, "--blackout: at most 16 blackout windows");
  /* path too long */
  char longp[HD_NETEM_PATH_MAX + 10];
  memset(longp, 'a', sizeof longp - 1);
  longp[sizeof longp - 1] = 0;
  assert_int_equal(ap(&o, "--trace", longp), HD_EINVAL);
}

static void test_schedule(void **st) {
  (void)st;
  hd_netem_params_t p;
  hd_netem_params_init(&p);
  p.rate_bps = 700000;
  const char *txt = "# RFC 8867 5.1\n"
                    "0 1000\n"
                    "\n"
                    "  40   2500  # up\r\n"
                    "60 600\n"
                    "80.5 1000";
  assert_int_equal(hd_netem_schedule_parse(&p, txt, strlen(txt), err, sizeof err), 4);
  assert_int_equal(p.n_schedule, 4);
  assert_int_equal(p.schedule[1].at, HD_SEC(40));
  assert_int_equal(p.schedule[1].rate_bps, 2500000);
  assert_int_equal(p.schedule[3].at, 80500000);
  assert_int_equal(p.rate_bps, 700000); /* kept: applies before a first step > 0 */
  assert_int_equal(hd_netem_params_check(&p), 0);

  static const struct {
    const char *text, *msg;
  } bad[] = {
      {"", "no steps (want lines 'SECONDS KBPS')"},
      {"# only a comment\n", "no steps (want lines 'SECONDS KBPS')"},
      {"0 1000\n10\n", "line 2: expected 'SECONDS KBPS', got '10'"},
      {"0 1000\n10 fast\n", "line 2: expected 'SECONDS KBPS' with KBPS in 0..100000000, got '10 fast'"},
      {"0 1000\n10 500 7\n", "line 2: expected 'SECONDS KBPS' with KBPS in 0..100000000, got '10 500 7'"},
      {"5 1000\n5 500\n", "line 2: time 5 s is not after the previous step"},
      {"-1 1000\n", "line 1: expected 'SECONDS KBPS', got '-1 1000'"},
      {"0 -5\n", "line 1: expected 'SECONDS KBPS' with KBPS in 0..100000000, got '0 -5'"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    hd_netem_params_t q;
    hd_netem_params_init(&q);
    err[0] = 0;
    assert_int_equal(hd_netem_schedule_parse(&q, bad[i].text, strlen(bad[i].text), err, sizeof err),
                     HD_EINVAL);
    if (strcmp(err, bad[i].msg)) fail_msg("case %zu: got '%s'", i, err);
    assert_int_equal(q.n_schedule, 0);
  }
  /* NUL byte, too many steps */
  const char nul[] = "0 100\n1 2\0003\n";
  assert_int_equal(hd_netem_schedule_parse(&p, nul, sizeof nul - 1, err, sizeof err), HD_EINVAL);
  assert_string_equal(err, "line 2: contains a NUL byte");
  char big[HD_NETEM_MAX_SCHEDULE * 16 + 64];
  size_t o = 0;
  for (int i = 0; i <= HD_NETEM_MAX_SCHEDULE; i++)
    o += (size_t)snprintf(big + o, sizeof big - o, "%d 100\n", i);
  assert_int_equal(hd_netem_schedule_parse(&p, big, o, err, sizeof err), HD_EINVAL);
  assert_string_equal(err, "line 65: more than 64 steps");
}

static void test_describe(void **st) {
  (void)st;
  hd_netem_opts_t o;
  hd_netem_opts_init(&o);
  const char *names[] = {"--delay", "--jitter", "--jitter-dist", "--keep-order",
                         "--loss",  "--rate",   "--queue",       "--blackout"};
  const char *values[] = {"25", "5", "normal", NULL, "1", "2000", "100", "10000:2000"};
  assert_int_equal(hd_netem_opts_apply(&o, names, values, 8, err, sizeof err), 0);
  char buf[256];
  size_t n = hd_netem_params_describe(&o.dir[0], buf, sizeof buf);
  assert_string_equal(
      buf, "delay 25ms jitter 5ms(normal,in-order) loss 1% rate 2000kbps queue 100ms blackout 10s+2s");
  assert_int_equal(n, strlen(buf));
  /* truncation stays terminated */
  char tiny[8];
  hd_netem_params_describe(&o.dir[0], tiny, sizeof tiny);
  assert_int_equal(strlen(tiny), 7);
  hd_netem_params_t p;
  assert_int_equal(hd_netem_profile_get("rfc8867-5.1", &p, NULL), 0);
  hd_netem_params_describe(&p, buf, sizeof buf);
  assert_string_equal(buf,
                      "delay 50ms schedule 0s:1000kbps,40s:2500kbps,60s:600kbps,80s:1000kbps queue 300ms");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_option), cmocka_unit_test(test_prefixes),
      cmocka_unit_test(test_profiles),     cmocka_unit_test(test_profile_applied_first),
      cmocka_unit_test(test_errors),       cmocka_unit_test(test_schedule),
      cmocka_unit_test(test_describe),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
