/* Fuzz target for the receive-side buffers fed straight from the network: the
 * VP8 frame assembler and the audio jitter buffer (src/media). The input is a
 * script of packets (seq step, flags, time step, payload) replayed against
 * both; whatever arrives, frames come out whole, in order, within the caps. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "media/audio_jitter.h"
#include "media/frame_assembler.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hd_frame_asm_config_t c;
  hd_frame_asm_config_default(&c);
  c.max_packets = 64; /* small caps so the fuzzer reaches them */
  c.max_bytes = 8192;
  c.max_frame_bytes = 4096;
  hd_frame_asm_t fa;
  if (hd_frame_asm_init(&fa, &c) != 0) return 0;
  hd_audio_jitter_config_t ac;
  hd_audio_jitter_config_default(&ac);
  ac.max_packets = 8;
  hd_audio_jitter_t aj;
  if (hd_audio_jitter_init(&aj, &ac) != 0) {
    hd_frame_asm_free(&fa);
    return 0;
  }
  uint16_t seq = 1000;
  uint32_t ts = 0;
  hd_time_t now = 0, next_pull = 0;
  size_t off = 0;
  int64_t last_emitted_end = -1;
  while (size - off >= 4) {
    int8_t step = (int8_t)data[off];
    uint8_t flags = data[off + 1];
    uint8_t dt = data[off + 2];
    size_t len = data[off + 3] % 48;
    off += 4;
    if (len > size - off) len = size - off;
    seq = (uint16_t)(seq + step);
    if (flags & 0x40) ts += 3000;
    now += (hd_time_t)dt * 1000;
    hd_frame_asm_pkt_t p = {seq, ts, flags & 1, data + off, len};
    (void)hd_frame_asm_push(&fa, &p, now);
    (void)hd_audio_jitter_push(&aj, seq, ts, data + off, len, now);
    off += len;
    hd_frame_asm_event_t ev;
    int r, guard = 0;
    while ((r = hd_frame_asm_poll(&fa, now, &ev)) == 1) {
      if (++guard > 10000) abort();
      if (ev.type == HD_FRAME_ASM_FRAME) {
        if (ev.frame.len > c.max_frame_bytes || (ev.frame.len && !ev.frame.data)) abort();
        if (ev.frame.len) (void)((volatile const uint8_t *)ev.frame.data)[ev.frame.len - 1];
        int64_t end = fa.last_emitted;
        if (end <= last_emitted_end) abort(); /* decode order only moves forward */
        last_emitted_end = end;
      } else if (ev.type != HD_FRAME_ASM_KEYFRAME_NEEDED) {
        abort();
      }
    }
    if (r != 0 || fa.n_packets > c.max_packets || fa.n_bytes > c.max_bytes) abort();
    while (next_pull <= now) {
      hd_audio_jitter_out_t o;
      int k = hd_audio_jitter_pull(&aj, next_pull, &o);
      if (k < 0 || k > HD_AUDIO_JITTER_CNG) abort();
      if ((k == HD_AUDIO_JITTER_PLAY || k == HD_AUDIO_JITTER_FEC) &&
          (!o.data || o.len == 0 || o.len > HD_AUDIO_JITTER_MAX_PAYLOAD))
        abort();
      if (o.len) (void)((volatile const uint8_t *)o.data)[o.len - 1];
      next_pull += HD_MS(20);
    }
    if (aj.n > ac.max_packets) abort();
  }
  hd_frame_asm_free(&fa);
  hd_audio_jitter_free(&aj);
  return 0;
}
