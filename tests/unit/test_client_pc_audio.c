/* Audio NACK (RFC 4585, RFC 4588) of the client PeerConnection
 * (src/client/pc.h) through an in-process node on a virtual clock
 * (tests/support/pc_world.h): the answer's nack on Opus, and what the SDK's
 * audio jitter buffer conceals with and without it. */
#include "hd_test.h"

#include "base/err.h"
#include "support/pc_world.h"

/* Audio NACK (issue 13): alice publishes Opus only, bob plays it through the
 * audio jitter buffer; both legs through the netem link model at `loss` each
 * way, 25 ms one way. Returns bob's buffer stats and his audio track's pc
 * stats; alice's in *ps. */
static void audio_room(double loss, int nack, int red, hd_audio_jitter_stats_t *js, hd_pc_track_stats_t *ss,
                       hd_pc_track_stats_t *ps) {
  pw_t *w = pw_new();
  w->no_video = 1;
  w->no_red = !red;
  w->no_nack = !nack;
  hd_netem_params_t np;
  hd_netem_params_init(&np);
  np.delay = HD_MS(25);
  np.loss = loss;
  const int pairs[4][2] = {{0, PW_NODE}, {PW_NODE, 0}, {1, PW_NODE}, {PW_NODE, 1}};
  for (int k = 0; k < 4; k++)
    assert_int_equal(hd_netem_link_new(&w->nl[pairs[k][0]][pairs[k][1]], &np, 4200 + (uint64_t)k, w->now), 0);
  w->ep[1].jb = calloc(1, sizeof *w->ep[1].jb);
  assert_non_null(w->ep[1].jb);
  assert_int_equal(hd_audio_jitter_init(w->ep[1].jb, NULL), 0);
  pw_room_start(w, 0, 30);
  assert_int_equal(hd_pc_state(w->ep[1].pc), HD_PC_CONNECTED);
  *js = w->ep[1].jb->stats;
  hd_pc_stats_t s;
  hd_pc_stats(w->ep[1].pc, &s);
  *ss = s.tracks[0];
  hd_pc_stats(w->ep[0].pc, &s);
  *ps = s.tracks[0];
  pw_free(w);
}

/* The SDK offers audio NACK on Opus unless told not to NACK (cfg.no_nack),
 * and an answerer echoes it only when the offer has it. */
static void test_audio_nack_sdp(void **st) {
  for (int no_nack = 0; no_nack <= 1; no_nack++) {
    hd_pc_config_t cfg = {.cert = cw_cert_a, .no_nack = no_nack};
    hd_pc_t *a, *b;
    assert_int_equal(hd_pc_new(&a, &cfg), 0);
    cfg.cert = cw_cert_b;
    cfg.no_nack = 0;
    assert_int_equal(hd_pc_new(&b, &cfg), 0);
    assert_int_equal(hd_pc_add_transceiver(a, HD_PC_AUDIO, HD_PC_SENDRECV), 0);
    static char offer[16384], answer[16384];
    assert_true(hd_pc_create_offer(a, offer, sizeof offer, 0) > 0);
    char line[64];
    snprintf(line, sizeof line, "a=rtcp-fb:%u nack\r\n", HD_PC_PT_OPUS);
    assert_int_equal(strstr(offer, line) != NULL, !no_nack);
    assert_true(hd_pc_answer_offer(b, offer, strlen(offer), answer, sizeof answer, 0) > 0);
    assert_int_equal(strstr(answer, line) != NULL, !no_nack);
    assert_int_equal(hd_pc_set_remote_answer(a, answer, strlen(answer), 0), 0);
    /* a window only for a receiving audio track with NACK negotiated */
    assert_int_equal(hd_pc_set_nack_window(b, 0, HD_MS(100)), no_nack ? HD_ESTATE : 0);
    assert_int_equal(hd_pc_set_nack_window(b, 0, -1), HD_EINVAL);
    assert_int_equal(hd_pc_set_nack_window(b, 5, HD_MS(100)), HD_EINVAL);
    assert_int_equal(hd_pc_track_repair_rtt(a, 0), no_nack ? HD_ESTATE : 0); /* none known yet */
    hd_pc_free(a);
    hd_pc_free(b);
  }
}

/* Lost audio is asked for again when the repair can still be played, and
 * fewer frames are concealed: at 20% and 30% loss on every link (about 36%
 * and 51% end to end before repair), Opus without RED, NACK on vs off. */
static void test_audio_nack_conceals_less(void **st) {
  const double losses[] = {0.20, 0.30};
  for (size_t i = 0; i < sizeof losses / sizeof losses[0]; i++) {
    hd_audio_jitter_stats_t off, on;
    hd_pc_track_stats_t ss_off, ss_on, ps_off, ps_on;
    audio_room(losses[i], 0, 0, &off, &ss_off, &ps_off);
    audio_room(losses[i], 1, 0, &on, &ss_on, &ps_on);
    printf(
        "%.0f%% loss per link: NACK off: played %llu ms, concealed %llu ms (%.1f%%), FEC %llu ms, target "
        "%lld "
        "ms; NACK on: played %llu ms, concealed %llu ms (%.1f%%), FEC %llu ms, target %lld ms, %llu NACKs of "
        "%llu seqs, %llu repairs (%llu too late), bob's repair RTT %lld ms, alice resent %llu\n",
        losses[i] * 100, (unsigned long long)off.played_ms, (unsigned long long)off.concealed_ms,
        100.0 * (double)off.concealed_ms / (double)off.played_ms, (unsigned long long)off.fec_ms,
        (long long)(off.target_delay / 1000), (unsigned long long)on.played_ms,
        (unsigned long long)on.concealed_ms, 100.0 * (double)on.concealed_ms / (double)on.played_ms,
        (unsigned long long)on.fec_ms, (long long)(on.target_delay / 1000),
        (unsigned long long)ss_on.nack_sent, (unsigned long long)ss_on.nack_seqs_sent,
        (unsigned long long)ss_on.rtx_recovered, (unsigned long long)on.late,
        (long long)(ss_on.repair_rtt / 1000), (unsigned long long)ps_on.rtx_sent);
    assert_true(off.played_ms > 20000 && on.played_ms > 20000);
    /* without NACK nothing is asked for or resent */
    assert_int_equal(ss_off.nack_sent, 0);
    assert_int_equal(ps_off.rtx_sent, 0);
    /* with it bob asks, the node answers with the first send's exact bytes
     * (sfu/resend_cache.h), and the node asks alice, who resends */
    assert_true(ss_on.nack_sent > 0);
    assert_true(ps_on.nack_received > 0 && ps_on.rtx_sent > 0);
    /* bob's leg loses > 10% before repair: his NACKs go twice */
    assert_true(ss_on.nack_doubled > 0);
    /* the node's reports on alice's audio keep her leg's loss before repair
     * (she sizes RED and Opus FEC from them): resends are not "received" */
    printf("node's report on alice's audio: NACK off %.3f, on %.3f\n", ps_off.fraction_lost,
           ps_on.fraction_lost);
    assert_true(ps_on.fraction_lost > losses[i] / 2);
    /* request -> repair: <= one 50 ms round trip to the node, shorter when
     * the node was already repairing the packet from alice */
    assert_true(ss_on.repair_rtt > 0 && ss_on.repair_rtt <= HD_MS(120));
    assert_true(ss_on.rtx_recovered > 0 && on.repairs > 0);
    /* late repairs of alice's leg reach bob as late packets: the buffer may
     * grow for them, up to the NACK cap (HD_AUDIO_JITTER_NACK_MAX, 200 ms) */
    assert_true(on.target_delay <= HD_MS(200));
    /* concealment (PLC) drops by more than a third, and the frames not
     * played from their own packet (PLC, and Opus FEC from the next one) by
     * more than a quarter (measured with repairs on both legs: PLC 14.1% ->
     * 3.7% at 20%, 26.8% -> 13.6% at 30%; on alice's leg only: 13.0% ->
     * 5.3% at 20%) */
    assert_true(on.concealed_ms * 3 < off.concealed_ms * 2);
    assert_true((on.concealed_ms + on.fec_ms) * 4 < (off.concealed_ms + off.fec_ms) * 3);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_audio_nack_sdp),
      cmocka_unit_test(test_audio_nack_conceals_less),
  };
  return cmocka_run_group_tests(tests, cw_setup_all, cw_teardown_all);
}
