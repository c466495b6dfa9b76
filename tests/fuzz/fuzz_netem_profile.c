/* Fuzz target for the `hudong netem` option and schedule parsers
 * (src/netem/profile). First byte picks the parser: even = schedule file text,
 * odd = a list of "name=value" lines applied as options (a line without '='
 * is a flag). Invariants: errors carry a message and leave the options
 * unchanged; whatever is accepted passes hd_netem_params_check; describe
 * always terminates its output. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "netem/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  char err[256];
  char desc[512];
  if ((data[0] & 1) == 0) {
    hd_netem_params_t p;
    hd_netem_params_init(&p);
    err[0] = 0;
    int rc = hd_netem_schedule_parse(&p, (const char *)data + 1, size - 1, err, sizeof err);
    if (rc < 0 && (rc != HD_EINVAL || !err[0])) abort();
    if (rc >= 0 && ((size_t)rc != p.n_schedule || hd_netem_params_check(&p) != 0)) abort();
    hd_netem_params_describe(&p, desc, sizeof desc);
    if (!memchr(desc, 0, sizeof desc)) abort();
    return 0;
  }
  hd_netem_opts_t o;
  hd_netem_opts_init(&o);
  char line[300];
  size_t pos = 1;
  while (pos < size) {
    size_t e = pos;
    while (e < size && data[e] != '\n')
      e++;
    size_t l = e - pos < sizeof line - 1 ? e - pos : sizeof line - 1;
    memcpy(line, data + pos, l);
    line[l] = 0;
    pos = e + 1;
    char *eq = strchr(line, '=');
    if (eq) *eq = 0;
    hd_netem_opts_t before = o;
    err[0] = 0;
    int rc = hd_netem_opt_apply(&o, line, eq ? eq + 1 : NULL, err, sizeof err);
    if (rc < 0) {
      if (rc != HD_EINVAL || !err[0]) abort();
      if (memcmp(&before, &o, sizeof o)) abort();
    } else {
      for (int d = 0; d < 2; d++)
        if (hd_netem_params_check(&o.dir[d]) != 0) abort();
    }
  }
  for (int d = 0; d < 2; d++) {
    hd_netem_opts_describe(&o, d, desc, sizeof desc);
    if (!memchr(desc, 0, sizeof desc)) abort();
  }
  return 0;
}
