/* Media file formats for the SDK's `hudong pub`/`hudong sub` and the e2e tests,
 * as pure in-memory transforms (the caller does the file I/O):
 *
 * - WAV (RIFF WAVE, PCM 16-bit): a 44-byte canonical header writer; a reader
 *   that walks RIFF chunks (skipping LIST etc., honouring pad bytes) to "fmt "
 *   and "data". Samples are little-endian int16, interleaved. A writer
 *   streaming to a file writes the header with data_bytes 0 first and rewrites
 *   it at the end.
 * - Y4M (YUV4MPEG2, C420 only; "C420jpeg"/"C420paldv"/"C420mpeg2" accepted as
 *   the same sample layout): stream header "YUV4MPEG2 W.. H.. F..:.. ..." and
 *   frames "FRAME[ params]\n" + packed I420.
 * - IVF (the libvpx container): 32-byte file header ("DKIF", FourCC "VP80",
 *   size, timebase, frame count) and 12-byte frame headers (size, pts), plus a
 *   reader used by tests. */
#ifndef HD_MEDIA_MEDIA_FILE_H
#define HD_MEDIA_MEDIA_FILE_H
#include <stddef.h>
#include <stdint.h>

#include "media/i420.h"

/* ---- WAV ---- */

#define HD_WAV_HEADER_LEN 44

typedef struct {
  int rate;             /* 1..384000 */
  int channels;         /* 1..8 */
  size_t data_off;      /* offset of the PCM samples in the buffer */
  size_t data_len;      /* bytes of PCM present in the buffer (whole frames) */
  size_t data_declared; /* bytes the data chunk header declares */
} hd_wav_info_t;

/* Writes a canonical 44-byte PCM16 header for data_bytes of samples.
 * Returns 44, HD_ENOSPC, HD_EINVAL (rate/channels out of range, data too big). */
int hd_wav_header_write(uint8_t *out, size_t cap, int rate, int channels, uint32_t data_bytes);

/* Parses a WAV file held in buf. Only PCM (format 1, or WAVE_FORMAT_EXTENSIBLE
 * with the PCM subformat) at 16 bits is accepted. A data chunk declaring more
 * bytes than present (a file still being written, or 0/0xFFFFFFFF as streaming
 * writers leave it) is clipped to what is present. Returns 0, HD_ETRUNC,
 * HD_EPROTO (not RIFF/WAVE, no fmt/data), HD_EUNSUPPORTED (not PCM16). */
int hd_wav_parse(const uint8_t *buf, size_t len, hd_wav_info_t *info);

/* ---- Y4M ---- */

typedef struct {
  int width, height;    /* 1..HD_I420_MAX_DIM */
  int fps_num, fps_den; /* F tag, default 30:1 */
  size_t header_len;    /* bytes of the stream header incl. its '\n' */
  size_t frame_size;    /* packed I420 bytes per frame */
} hd_y4m_info_t;

#define HD_Y4M_HEADER_MAX 256 /* longest stream/frame header line we accept */

/* Writes "YUV4MPEG2 W<w> H<h> F<num>:<den> Ip A1:1 C420jpeg\n". Returns its
 * length, HD_ENOSPC, HD_EINVAL. */
int hd_y4m_header_write(char *out, size_t cap, int width, int height, int fps_num, int fps_den);

/* Parses the stream header at the start of buf. Returns 0; HD_ETRUNC when no
 * '\n' within the first HD_Y4M_HEADER_MAX bytes of a short buffer; HD_EPROTO on
 * a bad magic, missing/invalid W or H, bad F; HD_EUNSUPPORTED for a colour
 * space other than 4:2:0 or interlaced-mixed. */
int hd_y4m_parse_header(const uint8_t *buf, size_t len, hd_y4m_info_t *info);

/* Parses one frame at buf (right after the stream header or the previous
 * frame): "FRAME...\n" then frame_size bytes. On success f is a view into buf
 * and the return value is the bytes consumed. HD_ETRUNC when incomplete,
 * HD_EPROTO on a bad frame header. */
int hd_y4m_parse_frame(const uint8_t *buf, size_t len, const hd_y4m_info_t *info, hd_i420_t *f);

/* Writes "FRAME\n" + the packed picture. Returns bytes written, HD_ENOSPC. */
int hd_y4m_frame_write(const hd_i420_t *f, uint8_t *out, size_t cap);

/* ---- IVF ---- */

#define HD_IVF_HEADER_LEN 32
#define HD_IVF_FRAME_HEADER_LEN 12
#define HD_IVF_MAX_FRAME (16u << 20) /* reader cap on one frame */

typedef struct {
  char fourcc[5]; /* "VP80" */
  int width, height;
  uint32_t rate, scale; /* timebase = scale / rate seconds (e.g. rate 30, scale 1) */
  uint32_t frames;      /* frame count as declared (often 0 while streaming) */
  size_t header_len;    /* where the first frame starts (>= 32) */
} hd_ivf_info_t;

/* Writes the 32-byte file header (fourcc "VP80"). Returns 32, HD_ENOSPC, HD_EINVAL. */
int hd_ivf_header_write(uint8_t *out, size_t cap, int width, int height, uint32_t rate, uint32_t scale,
                        uint32_t frames);
/* Writes a 12-byte frame header; the frame's bytes follow it. Returns 12,
 * HD_ENOSPC, HD_EINVAL (size > HD_IVF_MAX_FRAME). */
int hd_ivf_frame_header_write(uint8_t *out, size_t cap, uint32_t frame_size, uint64_t pts);

/* Parses the file header. 0, HD_ETRUNC, HD_EPROTO (no "DKIF", version != 0,
 * header length < 32). */
int hd_ivf_parse_header(const uint8_t *buf, size_t len, hd_ivf_info_t *info);
/* Parses one frame at buf (after the header or the previous frame): sets
 * data, size and pts, returns bytes consumed; HD_ETRUNC / HD_EPROTO (too big). */
int hd_ivf_parse_frame(const uint8_t *buf, size_t len, const uint8_t **data, size_t *size, uint64_t *pts);

#endif
