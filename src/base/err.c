/* Names for HD_E* codes. */
#include "base/err.h"

const char *hd_strerror(int err) {
  switch (err) {
  case HD_OK: return "ok";
  case HD_EINVAL: return "invalid argument";
  case HD_ENOMEM: return "out of memory";
  case HD_EPROTO: return "malformed input";
  case HD_ETRUNC: return "truncated input";
  case HD_ENOSPC: return "no space (buffer or queue cap reached)";
  case HD_EAUTH: return "authentication failed";
  case HD_EAGAIN: return "try again";
  case HD_ETIMEDOUT: return "timed out";
  case HD_ENOTFOUND: return "not found";
  case HD_ESTATE: return "invalid state";
  case HD_ECRYPTO: return "crypto failure";
  case HD_EUNSUPPORTED: return "unsupported";
  case HD_EEXPIRED: return "expired";
  case HD_EFORBIDDEN: return "forbidden";
  case HD_ECLOSED: return "closed";
  case HD_EIO: return "I/O error";
  case HD_EREPLAY: return "replayed";
  default: return err > 0 ? "ok" : "unknown error";
  }
}
