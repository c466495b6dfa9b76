/* Shared by the files of the forwarding session (session.c, session_forward.c,
 * session_resend.c, session_pace.c): not part of the session's API. */
#ifndef HD_SFU_SESSION_INTERNAL_H
#define HD_SFU_SESSION_INTERNAL_H
#include "sfu/session.h"

/* Codec names the packet path tests, as numbers (RFC 6838 names compare
 * case-insensitively); any other name is CODEC_OTHER and compared as text. */
enum { CODEC_OTHER = 0, CODEC_VP8, CODEC_VP9, CODEC_H264, CODEC_AV1, CODEC_OPUS };

#endif
