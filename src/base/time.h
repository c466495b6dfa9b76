/* Time in Hudong cores: microseconds on a caller-supplied monotonic clock.
 * Cores never read a clock themselves (DESIGN §3 rule 1); the I/O shell passes
 * real time, unit tests pass virtual time. */
#ifndef HD_BASE_TIME_H
#define HD_BASE_TIME_H
#include <stdint.h>

typedef int64_t hd_time_t; /* microseconds */

#define HD_TIME_NEVER INT64_MAX
#define HD_MS(x) ((hd_time_t)(x)*1000)
#define HD_SEC(x) ((hd_time_t)(x)*1000000)

static inline hd_time_t hd_time_min(hd_time_t a, hd_time_t b) { return a < b ? a : b; }

#endif
