/* Fuzz target for the webhook HTTP client's parsers (src/io/http_client):
 * first byte even = a response header block (hd_http_response_head_parse),
 * odd = a URL (hd_http_url_parse). Invariants: a parsed block is no longer
 * than the input, its status is 100..599, every kept header name and value is
 * a NUL-terminated string inside the buffer; a parsed URL has a host, a port in
 * 1..65535 and a path starting with '/'. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "io/http_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > HD_HTTPC_RESP_HEAD_MAX) return 0;
  char *buf = malloc(size);
  if (!buf) return 0;
  memcpy(buf, data + 1, size - 1);
  buf[size - 1] = 0;
  if ((data[0] & 1) == 0) {
    hd_http_client_result_t r;
    int rc = hd_http_response_head_parse(buf, size - 1, &r);
    if (rc != 0 && rc != HD_EPROTO && rc < 0) abort();
    if (rc > 0) {
      if ((size_t)rc > size - 1 || r.status < 100 || r.status > 599) abort();
      if (r.n_headers < 0 || r.n_headers > HD_HTTPC_MAX_RESP_HEADERS) abort();
      for (int i = 0; i < r.n_headers; i++) {
        if (r.header_names[i] < buf || r.header_names[i] >= buf + rc) abort();
        if (r.header_values[i] < buf || r.header_values[i] > buf + rc) abort();
        if (!memchr(r.header_values[i], 0, (size_t)(buf + size - r.header_values[i]))) abort();
        (void)hd_http_client_header(&r, r.header_names[i]);
      }
      if (!memchr(r.reason, 0, sizeof r.reason)) abort();
    }
  } else {
    hd_http_url_t u;
    int rc = hd_http_url_parse(buf, &u);
    if (rc == 0 && (!u.host[0] || u.port < 1 || u.port > 65535 || u.path[0] != '/')) abort();
    if (rc != 0 && rc != HD_EINVAL && rc != HD_EUNSUPPORTED) abort();
  }
  free(buf);
  return 0;
}
