/* Fuzz target for the DCEP codec (src/proto/dcep, RFC 8832 §5): parse
 * arbitrary bytes; whatever parses as DATA_CHANNEL_OPEN must rebuild to the
 * same bytes (the codec is canonical apart from the ignored reliability field
 * of reliable channels) and re-parse to the same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "proto/dcep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hd_dcep_open_t o;
  int t = hd_dcep_parse(data, size, &o);
  if (t == HD_DCEP_ACK && size != 1) abort();
  if (t != HD_DCEP_OPEN) return 0;
  if (!hd_dcep_type_valid(o.channel_type)) abort();
  if (strlen(o.label) > HD_DCEP_MAX_LABEL || strlen(o.protocol) > HD_DCEP_MAX_PROTOCOL) abort();
  uint8_t out[HD_DCEP_OPEN_HEADER + HD_DCEP_MAX_LABEL + HD_DCEP_MAX_PROTOCOL];
  int n = hd_dcep_build_open(&o, out, sizeof out);
  if (n < 0 || (size_t)n != size) abort();
  /* same bytes except the reliability field of reliable channels (zeroed) */
  if (memcmp(out, data, 4) || memcmp(out + 8, data + 8, size - 8)) abort();
  if (!hd_dcep_reliable(o.channel_type) && memcmp(out + 4, data + 4, 4)) abort();
  hd_dcep_open_t o2;
  if (hd_dcep_parse(out, (size_t)n, &o2) != HD_DCEP_OPEN || memcmp(&o, &o2, sizeof o)) abort();
  return 0;
}
