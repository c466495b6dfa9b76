/* What the two halves of the signaling codec share (signal.c: names,
 * validator, parser; signal_write.c: builders). Internal to src/sfu. */
#ifndef HD_SFU_SIGNAL_INTERNAL_H
#define HD_SFU_SIGNAL_INTERNAL_H
#include <jansson.h>

#include "sfu/signal.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
  const char *name;
  hd_signal_dir_t dir;
} hd_sig_type_info_t;

typedef struct {
  int status;
  const char *reason;
} hd_sig_err_info_t;

extern const hd_sig_type_info_t hd_sig_types[HD_SIGNAL_TYPE_COUNT];
extern const hd_sig_err_info_t hd_sig_errs[HD_SIGNAL_ERR_COUNT];
extern const char *const hd_sig_kinds[2];
extern const char *const hd_sig_sources[4];
extern const char *const hd_sig_stream_states[2];
extern const char *const hd_sig_pause_reasons[HD_SIGNAL_PAUSE_COUNT];
extern const char *const hd_sig_qualities[3];
extern const char *const hd_sig_left_reasons[HD_SIGNAL_LEFT_COUNT];

/* The largest message text a direction may carry. */
size_t hd_sig_dir_cap(hd_signal_dir_t d);
/* 1 when s is valid UTF-8. */
int hd_sig_utf8_valid(const char *s);
/* s with invalid UTF-8 sequences replaced, cut to cap. */
void hd_sig_utf8_sanitize(const char *s, char *out, size_t cap);
void hd_sig_err_reset(hd_signal_error_t *e);
/* Runs the validator of a message sent by `from` on a built tree: 0,
 * HD_EINVAL (err says why) or HD_ENOMEM. */
int hd_sig_validate_tree(json_t *o, hd_signal_dir_t from, hd_signal_error_t *err);

#endif
