/* Error codes shared by every Hudong module (DESIGN §3 rule 5).
 * Functions return 0 or a positive count on success, a negative HD_E* on failure. */
#ifndef HD_BASE_ERR_H
#define HD_BASE_ERR_H

enum {
  HD_OK = 0,
  HD_EINVAL = -1,        /* bad argument from the caller */
  HD_ENOMEM = -2,        /* allocation failed */
  HD_EPROTO = -3,        /* malformed input from the network */
  HD_ETRUNC = -4,        /* input shorter than its own length fields say */
  HD_ENOSPC = -5,        /* output buffer or a capped queue is full */
  HD_EAUTH = -6,         /* integrity / signature / fingerprint check failed */
  HD_EAGAIN = -7,        /* nothing to do now; try again later */
  HD_ETIMEDOUT = -8,     /* a deadline passed */
  HD_ENOTFOUND = -9,     /* no such object */
  HD_ESTATE = -10,       /* call not valid in the current state */
  HD_ECRYPTO = -11,      /* a crypto library call failed */
  HD_EUNSUPPORTED = -12, /* valid but not something we implement */
  HD_EEXPIRED = -13,     /* token or credential expired / not yet valid */
  HD_EFORBIDDEN = -14,   /* authenticated but lacks the grant */
  HD_ECLOSED = -15,      /* object already closed */
  HD_EIO = -16,          /* operating system I/O error */
  HD_EREPLAY = -17,      /* replayed packet */
  HD_E_LAST = -18
};

/* Name of an error code, never NULL. */
const char *hd_strerror(int err);

#endif
