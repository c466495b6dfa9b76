/* Audio jitter buffer in virtual time: a clean link conceals nothing; 5 %
 * random loss with Opus FEC is mostly recovered (and the tone survives);
 * +-30 ms jitter grows the target and, once converged, nothing is late; DTX
 * pauses are not losses; duplicates, overflow, stream resets, bad config. */
#include "hd_test.h"

#include <math.h>

#include "base/err.h"
#include "media/audio_jitter.h"
#include "media/opus_codec.h"
#include "media/rtp_payload.h"
#include "media/test_signal.h"
#include "netem/link.h"

#define FS HD_OPUS_FRAME_SAMPLES

static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Packet i is sent at i*20 ms; arrival = send + delay[i]. The schedule is
 * replayed in arrival order against pulls every 20 ms (phase 7 ms). */
typedef struct {
  hd_time_t at;
  int i;
} arrival_t;

static int cmp_arr(const void *a, const void *b) {
  const arrival_t *x = a, *y = b;
  if (x->at != y->at) return x->at < y->at ? -1 : 1;
  return x->i - y->i;
}

typedef struct {
  int kinds[6];
  int late_after; /* late packets after `converge` */
} run_result_t;

static void run(hd_audio_jitter_t *j, int n, const hd_time_t *delay, const uint8_t *lost, hd_time_t converge,
                uint8_t pkts[][HD_OPUS_MAX_PACKET], const int *lens, hd_opus_dec_t *dec, int16_t *pcm_out,
                run_result_t *res) {
  static arrival_t arr[4000];
  int na = 0;
  for (int i = 0; i < n; i++)
    if (!lost[i]) arr[na++] = (arrival_t){HD_MS(20) * i + delay[i], i};
  qsort(arr, (size_t)na, sizeof(arr[0]), cmp_arr);
  memset(res, 0, sizeof(*res));
  int ai = 0, pulls = 0;
  uint8_t dummy[3] = {0x78, 0x01, 0x02};
  /* pull until every packet went in and the buffer ran dry (trailing pulls
   * would only conceal the end of the stream) */
  for (hd_time_t t = HD_MS(7); ai < na || j->n > 0; t += HD_MS(20)) {
    while (ai < na && arr[ai].at <= t) {
      int i = arr[ai].i;
      uint64_t late0 = j->stats.late;
      const uint8_t *p = pkts ? pkts[i] : dummy;
      size_t len = pkts ? (size_t)lens[i] : sizeof(dummy);
      int r = hd_audio_jitter_push(j, (uint16_t)(60000 + i), (uint32_t)(4294000000u + (uint32_t)i * FS), p,
                                   len, arr[ai].at);
      assert_true(r == 0 || r == 1);
      if (j->stats.late > late0 && arr[ai].at >= converge) res->late_after++;
      ai++;
    }
    int kind;
    if (dec) {
      int16_t *o = pcm_out ? pcm_out + (size_t)pulls * FS : NULL;
      int16_t tmp[FS];
      assert_int_equal(hd_audio_jitter_pull_pcm(j, t, dec, o ? o : tmp, FS, &kind), FS);
    } else {
      hd_audio_jitter_out_t out;
      kind = hd_audio_jitter_pull(j, t, &out);
      if (kind == HD_AUDIO_JITTER_PLAY) assert_true(out.data != NULL && out.len > 0);
    }
    assert_true(kind >= 0 && kind <= 4);
    res->kinds[kind]++;
    pulls++;
  }
}

static void test_clean_link(void **state) {
  hd_audio_jitter_t j;
  assert_int_equal(hd_audio_jitter_init(&j, NULL), 0);
  static hd_time_t delay[1000];
  static uint8_t lost[1000];
  for (int i = 0; i < 1000; i++)
    delay[i] = HD_MS(35);
  run_result_t r;
  run(&j, 1000, delay, lost, 0, NULL, NULL, NULL, NULL, &r);
  assert_int_equal(r.kinds[HD_AUDIO_JITTER_PLAY], 1000);
  assert_int_equal(j.stats.concealed_ms, 0);
  assert_int_equal(j.stats.late, 0);
  assert_true(hd_audio_jitter_stall_rate(&j) == 0.0);
  assert_int_equal(hd_audio_jitter_target(&j), HD_MS(20));
  assert_true(j.stats.delay >= HD_MS(20) && j.stats.delay < HD_MS(40));
  hd_audio_jitter_free(&j);
}

/* Lip sync asks audio to wait 100 ms for the sender's video: the target is
 * the clean link's 20 ms plus 100, and the delay follows it. */
static void test_sync_delay(void **state) {
  hd_audio_jitter_t j;
  assert_int_equal(hd_audio_jitter_init(&j, NULL), 0);
  hd_audio_jitter_set_sync_delay(&j, HD_MS(100));
  static hd_time_t delay[1000];
  static uint8_t lost[1000];
  for (int i = 0; i < 1000; i++)
    delay[i] = HD_MS(35);
  run_result_t r;
  run(&j, 1000, delay, lost, 0, NULL, NULL, NULL, NULL, &r);
  assert_int_equal(hd_audio_jitter_target(&j), HD_MS(120));
  assert_true(j.stats.delay >= HD_MS(100) && j.stats.delay < HD_MS(140));
  assert_int_equal(j.stats.concealed_ms, 0);
  hd_audio_jitter_free(&j);
}

static void test_loss_with_fec(void **state) {
  enum { N = 1500 };
  hd_opus_enc_config_t c;
  hd_opus_enc_config_default(&c);
  c.expected_loss = 10;
  hd_opus_enc_t enc;
  hd_opus_dec_t dec;
  assert_int_equal(hd_opus_enc_init(&enc, &c), 0);
  assert_int_equal(hd_opus_dec_init(&dec, 1), 0);
  static uint8_t pkts[N][HD_OPUS_MAX_PACKET];
  static int lens[N];
  hd_tone_t tone;
  hd_tone_init(&tone, 440.0, 8000, HD_OPUS_RATE, 1);
  int16_t pcm[FS];
  for (int i = 0; i < N; i++) {
    hd_tone_fill(&tone, pcm, FS);
    lens[i] = hd_opus_encode(&enc, pcm, pkts[i], HD_OPUS_MAX_PACKET);
    assert_true(lens[i] > 2);
  }
  static hd_time_t delay[N];
  static uint8_t lost[N];
  uint64_t rng = 7;
  int nlost = 0;
  for (int i = 0; i < N; i++) {
    delay[i] = HD_MS(40);
    lost[i] = i > 5 && rng_next(&rng) % 100 < 5;
    nlost += lost[i];
  }
  hd_audio_jitter_t j;
  assert_int_equal(hd_audio_jitter_init(&j, NULL), 0);
  static int16_t out[(N + 40) * FS];
  run_result_t r;
  run(&j, N, delay, lost, 0, pkts, lens, &dec, out, &r);
  printf("fec: lost %d, fec %d, plc %d, concealed %llu ms of %llu, stall %.4f\n", nlost,
         r.kinds[HD_AUDIO_JITTER_FEC], r.kinds[HD_AUDIO_JITTER_PLC], (unsigned long long)j.stats.concealed_ms,
         (unsigned long long)j.stats.played_ms, hd_audio_jitter_stall_rate(&j));
  assert_true(nlost > 50);
  /* an isolated loss is recovered from the next packet's FEC; only runs of
   * losses need PLC */
  assert_true(r.kinds[HD_AUDIO_JITTER_FEC] > nlost * 8 / 10);
  assert_true(r.kinds[HD_AUDIO_JITTER_FEC] + r.kinds[HD_AUDIO_JITTER_PLC] == nlost);
  assert_true(hd_audio_jitter_stall_rate(&j) < 0.01);
  assert_true(j.stats.fec_ms == (uint64_t)r.kinds[HD_AUDIO_JITTER_FEC] * 20);
  /* and the tone came through */
  size_t first = (size_t)(r.kinds[HD_AUDIO_JITTER_EMPTY] + 10) * FS;
  double f = hd_tone_estimate_freq(out + first, (size_t)(N - 20) * FS, 1, HD_OPUS_RATE);
  double amp = hd_goertzel_amplitude(out + first, (size_t)(N - 20) * FS, 1, HD_OPUS_RATE, 440.0);
  printf("tone after loss: %.3f Hz, amplitude %.0f\n", f, amp);
  /* concealed and FEC frames are not phase-exact, so a few crossings go astray */
  assert_true(fabs(f - 440.0) < 6.0);
  assert_true(amp > 6000);
  hd_audio_jitter_free(&j);
  hd_opus_enc_free(&enc);
  hd_opus_dec_free(&dec);
}

static void test_jitter_converges(void **state) {
  enum { N = 3000 }; /* 60 s */
  static hd_time_t delay[N];
  static uint8_t lost[N];
  uint64_t rng = 99;
  for (int i = 0; i < N; i++)
    delay[i] = HD_MS(50) + (hd_time_t)(rng_next(&rng) % 60001) - HD_MS(30);
  hd_audio_jitter_t j;
  assert_int_equal(hd_audio_jitter_init(&j, NULL), 0);
  run_result_t r;
  run(&j, N, delay, lost, HD_SEC(10), NULL, NULL, NULL, NULL, &r);
  printf("jitter: target %lld ms, delay %lld ms, late %llu (after convergence %d), expands %llu, accel %llu, "
         "stall %.4f\n",
         (long long)(j.stats.target_delay / 1000), (long long)(j.stats.delay / 1000),
         (unsigned long long)j.stats.late, r.late_after, (unsigned long long)j.stats.expands,
         (unsigned long long)j.stats.accelerates, hd_audio_jitter_stall_rate(&j));
  assert_int_equal(r.late_after, 0); /* after convergence nothing is late */
  assert_true(j.stats.target_delay >= HD_MS(60) && j.stats.target_delay <= HD_MS(100));
  assert_true(hd_audio_jitter_stall_rate(&j) < 0.02);
  hd_audio_jitter_free(&j);
}

static void test_dtx_and_edges(void **state) {
  hd_audio_jitter_t j;
  assert_int_equal(hd_audio_jitter_init(&j, NULL), 0);
  uint8_t p[3] = {0x78, 1, 2};
  hd_audio_jitter_out_t o;
  assert_int_equal(hd_audio_jitter_pull(&j, 0, &o), HD_AUDIO_JITTER_EMPTY);
  /* seq 10..14 at ts 0..4 frames, then a DTX pause: seq 15 at ts 20 frames */
  for (int i = 0; i < 5; i++)
    assert_int_equal(hd_audio_jitter_push(&j, (uint16_t)(10 + i), (uint32_t)(i * FS), p, 3, HD_MS(20 * i)),
                     0);
  assert_int_equal(hd_audio_jitter_push(&j, 12, 2 * FS, p, 3, HD_MS(50)), 1); /* duplicate */
  assert_int_equal(j.stats.duplicates, 1);
  hd_time_t t = HD_MS(20);
  int kinds[5] = {0};
  for (int k = 0; k < 21; k++, t += HD_MS(20)) {
    if (k == 18) assert_int_equal(hd_audio_jitter_push(&j, 15, 20 * FS, p, 3, HD_MS(400)), 0);
    kinds[hd_audio_jitter_pull(&j, t, &o)]++;
  }
  assert_int_equal(kinds[HD_AUDIO_JITTER_PLAY], 6);
  assert_int_equal(j.stats.concealed_ms, 0);         /* the pause was DTX, not loss */
  assert_int_equal(j.stats.max_concealed_run_ms, 0); /* and no speech gap */
  assert_true(j.stats.cng_ms >= 14 * 20);
  /* a jump of the timestamp far ahead is a new stream */
  assert_int_equal(hd_audio_jitter_push(&j, 16, 20 * FS + 48000 * 30, p, 3, t), 0);
  assert_int_equal(j.stats.resets, 1);
  assert_int_equal(j.started, 0);
  hd_audio_jitter_free(&j);

  /* overflow: the oldest goes */
  hd_audio_jitter_config_t c;
  hd_audio_jitter_config_default(&c);
  c.max_packets = 4;
  assert_int_equal(hd_audio_jitter_init(&j, &c), 0);
  for (int i = 0; i < 6; i++)
    hd_audio_jitter_push(&j, (uint16_t)i, (uint32_t)(i * FS), p, 3, 0);
  assert_int_equal(j.stats.overflow, 2);
  assert_int_equal(j.n, 4);
  assert_int_equal(hd_audio_jitter_push(&j, 0, 0, p, 3, 0), 1); /* older than all: refused */
  assert_int_equal(hd_audio_jitter_push(&j, 9, 9 * FS, p, 0, 0), HD_EINVAL);
  static uint8_t big[HD_AUDIO_JITTER_MAX_PAYLOAD + 1];
  assert_int_equal(hd_audio_jitter_push(&j, 9, 9 * FS, big, sizeof(big), 0), HD_EINVAL);
  hd_audio_jitter_free(&j);
  hd_audio_jitter_free(&j);
  c.max_packets = 1;
  assert_int_equal(hd_audio_jitter_init(&j, &c), HD_EINVAL);
  hd_audio_jitter_config_default(&c);
  c.quantile = 0.2;
  assert_int_equal(hd_audio_jitter_init(&j, &c), HD_EINVAL);
  hd_audio_jitter_config_default(&c);
  c.max_delay = HD_MS(10);
  assert_int_equal(hd_audio_jitter_init(&j, &c), HD_EINVAL);
}

/* ---- NetEQ scenarios in virtual time over two `hudong netem` links in a
 * row (publisher leg, subscriber leg), 1 ms steps: a 440 Hz tone encoded
 * with Opus FEC every 20 ms, optionally wrapped in RED with `red` redundant
 * blocks; the receiver pushes what arrives and pulls PCM every 20 ms. ---- */

typedef struct {
  hd_netem_params_t leg[2];
  int red; /* redundant blocks per RED packet, 0 = plain Opus */
  int seconds;
  int expected_loss;   /* Opus FEC tuning */
  hd_time_t change_at; /* at this time leg[0] becomes change (if change_at > 0) */
  hd_netem_params_t change;
  hd_time_t probe_at[4]; /* record the target delay at these times */
  hd_time_t probe_target[4];
  int16_t *out;              /* all PCM pulled (seconds * 50 frames), optional */
  int max_step_after;        /* largest sample step in out after 2 s, outside concealed frames */
  hd_time_t stall_at, stall; /* the playout loop stalls for `stall`, then pulls what it owes at once */
  uint64_t concealed_at[2];  /* concealed_samples at stall_at + 1 s and at the end */
} scen_t;

#define OPUS_PT 111
#define RED_PT 63

static void scenario(scen_t *sc, hd_audio_jitter_t *j) {
  hd_opus_enc_config_t c;
  hd_opus_enc_config_default(&c);
  c.expected_loss = sc->expected_loss;
  hd_opus_enc_t enc;
  hd_opus_dec_t dec;
  assert_int_equal(hd_opus_enc_init(&enc, &c), 0);
  assert_int_equal(hd_opus_dec_init(&dec, 1), 0);
  hd_tone_t tone;
  hd_tone_init(&tone, 440.0, 8000, HD_OPUS_RATE, 1);
  hd_netem_link_t *l[2];
  for (int k = 0; k < 2; k++)
    assert_int_equal(hd_netem_link_new(&l[k], &sc->leg[k], 1000 + (uint64_t)k, 0), 0);
  static uint8_t hist[8][HD_OPUS_MAX_PACKET];
  static int hist_len[8];
  int frames = sc->seconds * 50, pulled = 0, probe = 0;
  uint16_t seq = 0;
  uint32_t ts = 0;
  int prev_conc = 1, step_ok_from = 100;
  sc->max_step_after = 0;
  int16_t last_sample = 0;
  for (hd_time_t t = 0; pulled < frames; t += HD_MS(1)) {
    if (sc->change_at && t == sc->change_at) assert_int_equal(hd_netem_link_set(l[0], &sc->change, t), 0);
    if (t % HD_MS(20) == 0 && (int)(t / HD_MS(20)) < frames) {
      int16_t pcm[FS];
      hd_tone_fill(&tone, pcm, FS);
      uint8_t pkt[HD_OPUS_MAX_PACKET], wire[6 + 1600];
      int n = hd_opus_encode(&enc, pcm, pkt, sizeof pkt);
      assert_true(n > 2);
      int len = n;
      const uint8_t *pl = pkt;
      uint8_t red[1600];
      if (sc->red) {
        hd_red_block_t b[HD_RED_MAX_BLOCKS];
        int nb = 0;
        for (int k = sc->red; k >= 1; k--)
          if (seq >= k)
            b[nb++] = (hd_red_block_t){OPUS_PT, (uint16_t)(k * FS), hist[(seq - k) % 8],
                                       (size_t)hist_len[(seq - k) % 8]};
        b[nb++] = (hd_red_block_t){OPUS_PT, 0, pkt, (size_t)n};
        len = hd_red_build(b, nb, red, sizeof red);
        assert_true(len > n);
        pl = red;
      }
      memcpy(hist[seq % 8], pkt, (size_t)n);
      hist_len[seq % 8] = n;
      wire[0] = (uint8_t)(seq >> 8), wire[1] = (uint8_t)seq;
      for (int k = 0; k < 4; k++)
        wire[2 + k] = (uint8_t)(ts >> (24 - 8 * k));
      memcpy(wire + 6, pl, (size_t)len);
      assert_true(hd_netem_link_send(l[0], wire, (size_t)len + 6, t) >= 0);
      seq++;
      ts += FS;
    }
    const uint8_t *p;
    int n;
    while ((n = hd_netem_link_poll(l[0], t, &p)) > 0)
      assert_true(hd_netem_link_send(l[1], p, (size_t)n, t) >= 0);
    while ((n = hd_netem_link_poll(l[1], t, &p)) > 0) {
      uint16_t sq = (uint16_t)(p[0] << 8 | p[1]);
      uint32_t tt = (uint32_t)p[2] << 24 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 8 | p[5];
      int r = sc->red ? hd_audio_jitter_push_red(j, sq, tt, p + 6, (size_t)n - 6, OPUS_PT, t)
                      : hd_audio_jitter_push(j, sq, tt, p + 6, (size_t)n - 6, t);
      assert_true(r == 0 || r == 1);
    }
    int owed = 1;
    if (sc->stall && t >= sc->stall_at && t < sc->stall_at + sc->stall) owed = 0;
    if (sc->stall && t == sc->stall_at + sc->stall + HD_MS(7)) owed = (int)(sc->stall / HD_MS(20)) + 1;
    if (sc->stall && t == sc->stall_at + HD_SEC(1)) sc->concealed_at[0] = j->stats.concealed_samples;
    for (; owed > 0 && t % HD_MS(20) == HD_MS(7) && pulled < frames; owed--) {
      int16_t o[FS];
      int kind;
      assert_int_equal(hd_audio_jitter_pull_pcm(j, t, &dec, o, FS, &kind), FS);
      if (sc->out) memcpy(sc->out + (size_t)pulled * FS, o, sizeof o);
      int conc = kind == HD_AUDIO_JITTER_PLC || kind == HD_AUDIO_JITTER_EMPTY;
      if (pulled >= step_ok_from && !conc && !prev_conc) {
        for (int i = 0; i < FS; i++) {
          int d = abs(o[i] - (i ? o[i - 1] : last_sample));
          if (d > sc->max_step_after) sc->max_step_after = d;
        }
      }
      prev_conc = conc;
      last_sample = o[FS - 1];
      pulled++;
      while (probe < 4 && sc->probe_at[probe] && t >= sc->probe_at[probe])
        sc->probe_target[probe++] = hd_audio_jitter_target(j);
    }
  }
  sc->concealed_at[1] = j->stats.concealed_samples;
  for (int k = 0; k < 2; k++)
    hd_netem_link_free(l[k]);
  hd_opus_enc_free(&enc);
  hd_opus_dec_free(&dec);
}

static void leg(hd_netem_params_t *p, int delay_ms, double loss, int jitter_ms) {
  hd_netem_params_init(p);
  p->delay = HD_MS(delay_ms);
  p->loss = loss;
  p->jitter = HD_MS(jitter_ms);
  p->jitter_dist = HD_JITTER_UNIFORM;
}

static void print_stats(const char *name, const hd_audio_jitter_t *j) {
  const hd_audio_jitter_stats_t *s = &j->stats;
  printf("%s: concealed %.2f%% (%llu events, longest gap %llu ms), fec %llu ms, red %llu ms, inserted %llu "
         "removed %llu samples, target %lld ms, mean delay %.1f ms, late %llu\n",
         name, 100.0 * (double)s->concealed_samples / (double)(s->total_samples_received + 1),
         (unsigned long long)s->concealment_events, (unsigned long long)s->max_concealed_run_ms,
         (unsigned long long)s->fec_ms, (unsigned long long)s->red_ms,
         (unsigned long long)s->inserted_samples_for_deceleration,
         (unsigned long long)s->removed_samples_for_acceleration, (long long)(s->target_delay / 1000),
         s->jitter_buffer_emitted_count
             ? 1000.0 * s->jitter_buffer_delay_s / (double)s->jitter_buffer_emitted_count
             : 0.0,
         (unsigned long long)s->late);
}

/* The target follows the path's jitter up and back down (95th percentile over
 * 5 s), the delay is steered there by stretching (samples inserted, then
 * removed), nothing is concealed for it, and the tone stays continuous. */
static void test_neteq_target_tracks_jitter(void **state) {
  (void)state;
  static scen_t sc;
  memset(&sc, 0, sizeof sc);
  leg(&sc.leg[0], 25, 0, 0);
  leg(&sc.leg[1], 25, 0, 0);
  sc.seconds = 40;
  sc.expected_loss = 10;
  /* 10..25 s: +-30 ms of jitter on the first leg (reordering allowed) */
  sc.change_at = HD_SEC(10);
  leg(&sc.change, 25, 0, 30);
  sc.probe_at[0] = HD_SEC(9);
  sc.probe_at[1] = HD_SEC(24);
  static int16_t out[40 * 50 * FS];
  sc.out = out;
  hd_audio_jitter_t j;
  assert_int_equal(hd_audio_jitter_init(&j, NULL), 0);
  scenario(&sc, &j);
  hd_time_t before = sc.probe_target[0], during = sc.probe_target[1];
  print_stats("jitter 0 -> 30 ms", &j);
  printf("target before %lld ms, with jitter %lld ms; max step in played audio %d\n",
         (long long)(before / 1000), (long long)(during / 1000), sc.max_step_after);
  assert_true(before <= HD_MS(25));
  assert_true(during >= HD_MS(60) && during <= HD_MS(100));
  assert_true(j.stats.inserted_samples_for_deceleration > 0); /* grew by stretching */
  /* only the packets late while the window first saw the jitter are concealed */
  assert_true(j.stats.concealed_samples * 100 < j.stats.total_samples_received);
  /* 440 Hz at amplitude 8000 moves at most ~460 per sample; a dropped or
   * inserted frame would jump by up to 16000 */
  assert_true(sc.max_step_after < 1000);
  hd_audio_jitter_free(&j);

  /* and back down: jitter first, then a clean path; the buffer sheds the
   * delay by accelerating, with no concealment at all */
  memset(&sc, 0, sizeof sc);
  leg(&sc.leg[0], 25, 0, 30);
  leg(&sc.leg[1], 25, 0, 0);
  sc.seconds = 30;
  sc.change_at = HD_SEC(10);
  leg(&sc.change, 25, 0, 0);
  sc.probe_at[0] = HD_SEC(9);
  sc.probe_at[1] = HD_SEC(29);
  sc.out = out;
  assert_int_equal(hd_audio_jitter_init(&j, NULL), 0);
  scenario(&sc, &j);
  print_stats("jitter 30 -> 0 ms", &j);
  printf("target with jitter %lld ms, after %lld ms, delay at the end %lld ms; max step %d\n",
         (long long)(sc.probe_target[0] / 1000), (long long)(sc.probe_target[1] / 1000),
         (long long)(j.stats.delay / 1000), sc.max_step_after);
  assert_true(sc.probe_target[0] >= HD_MS(60));
  assert_true(sc.probe_target[1] <= HD_MS(25));
  assert_true(j.stats.removed_samples_for_acceleration > 0);
  assert_true(j.stats.delay < HD_MS(50)); /* the delay followed the target down */
  assert_true(sc.max_step_after < 1000);
  hd_audio_jitter_free(&j);
}

/* 50 % random loss on each leg (75 % end to end), RED with the 9 redundant
 * frames the SDK sends at that loss: speech stays continuous (no run of
 * concealment of 200 ms or more) over a minute. */
static void test_neteq_half_loss(void **state) {
  (void)state;
  static scen_t sc;
  memset(&sc, 0, sizeof sc);
  leg(&sc.leg[0], 25, 0.5, 0);
  leg(&sc.leg[1], 25, 0.5, 0);
  sc.seconds = 60;
  sc.expected_loss = 50;
  sc.red = 9;
  hd_audio_jitter_t j;
  assert_int_equal(hd_audio_jitter_init(&j, NULL), 0);
  scenario(&sc, &j);
  print_stats("50%+50% loss, red 9", &j);
  assert_true(j.stats.max_concealed_run_ms < 200);
  assert_true(j.stats.concealed_samples * 100 < j.stats.total_samples_received * 6);
  hd_audio_jitter_free(&j);
}

/* The playout loop stalls for 200 ms (a loaded CPU) and then pulls the ten
 * frames it owes at once, as the SDK's tick does: the playout clock runs
 * ahead of the packets for a moment; the buffer conceals while it waits for
 * them instead of moving on and finding every later packet late, and from a
 * second after the stall nothing more is concealed. */
static void test_neteq_playout_stall(void **state) {
  (void)state;
  static scen_t sc;
  memset(&sc, 0, sizeof sc);
  leg(&sc.leg[0], 25, 0, 0);
  leg(&sc.leg[1], 25, 0, 0);
  sc.seconds = 10;
  sc.stall_at = HD_SEC(4);
  sc.stall = HD_MS(200);
  hd_audio_jitter_t j;
  assert_int_equal(hd_audio_jitter_init(&j, NULL), 0);
  scenario(&sc, &j);
  print_stats("200 ms playout stall", &j);
  assert_true(j.stats.concealed_samples <= 15 * FS); /* the burst pulled ahead of the packets */
  assert_int_equal(sc.concealed_at[1], sc.concealed_at[0]);
  assert_true(j.stats.late == 0);
  hd_audio_jitter_free(&j);
}

/* 30 % random loss on each of two legs (51 % end to end): Opus FEC alone
 * recovers a lost frame when the next packet came; RED with 2 redundant frames
 * recovers most of the rest; with 5 redundant frames concealment is under 2 %. */
static void test_neteq_fec_red_recover(void **state) {
  (void)state;
  static scen_t sc;
  double conc[3];
  int reds[3] = {0, 2, 5};
  for (int k = 0; k < 3; k++) {
    memset(&sc, 0, sizeof sc);
    leg(&sc.leg[0], 25, 0.30, 0);
    leg(&sc.leg[1], 25, 0.30, 0);
    sc.seconds = 30;
    sc.expected_loss = 50;
    sc.red = reds[k];
    hd_audio_jitter_t j;
    assert_int_equal(hd_audio_jitter_init(&j, NULL), 0);
    scenario(&sc, &j);
    char name[32];
    snprintf(name, sizeof name, "30%%+30%% loss, red %d", reds[k]);
    print_stats(name, &j);
    conc[k] = (double)j.stats.concealed_samples / (double)j.stats.total_samples_received;
    if (k == 0) {
      assert_true(j.stats.fec_ms > 0); /* LBRR from the next packet */
      assert_int_equal(j.stats.red_ms, 0);
    } else {
      assert_true(j.stats.red_ms > 0);
    }
    if (k == 2) {
      assert_true(conc[k] < 0.02);
      assert_true(j.stats.max_concealed_run_ms <= 100);
    }
    hd_audio_jitter_free(&j);
  }
  printf("concealment: fec only %.2f%%, red 2 %.2f%%, red 5 %.2f%%\n", 100 * conc[0], 100 * conc[1],
         100 * conc[2]);
  assert_true(conc[1] < conc[0] / 2);
  assert_true(conc[2] < conc[1]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_clean_link),
      cmocka_unit_test(test_sync_delay),
      cmocka_unit_test(test_loss_with_fec),
      cmocka_unit_test(test_jitter_converges),
      cmocka_unit_test(test_dtx_and_edges),
      cmocka_unit_test(test_neteq_target_tracks_jitter),
      cmocka_unit_test(test_neteq_fec_red_recover),
      cmocka_unit_test(test_neteq_playout_stall),
      cmocka_unit_test(test_neteq_half_loss),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
