/* Unit tests for io/http_head: the first-request check in front of
 * libwebsockets (issue 12 item 9: RFC 9112 §6.3 Content-Length, header names
 * that trap lws's lexer, CONNECT). */
#include "hd_test.h"

#include "io/http_head.h"

/* Runs the check on a copy of head (+ body bytes); returns the status and
 * leaves the possibly rewritten request in out. */
static int check(const char *req, char *out, size_t *out_len, size_t *head_len) {
  size_t total = strlen(req);
  assert_true(total < 2048);
  memcpy(out, req, total + 1);
  size_t head = hd_http_head_length(out, total);
  assert_true(head > 0);
  char why[256];
  int st = hd_http_head_check(out, &head, &total, why, sizeof why, NULL);
  if (st)
    assert_true(strlen(why) > 10 && why[strlen(why) - 1] == '\n');
  else
    assert_string_equal(why, "");
  out[total] = 0;
  if (out_len) *out_len = total;
  if (head_len) *head_len = head;
  return st;
}

static void test_head_length(void **st) {
  (void)st;
  assert_int_equal(hd_http_head_length("GET / HTTP/1.1\r\nHost: x\r\n", 25), 0);
  assert_int_equal(hd_http_head_length("GET / HTTP/1.1\r\nHost: x\r\n\r\nbody", 31), 27);
  assert_int_equal(hd_http_head_length("GET / HTTP/1.1\nHost: x\n\nbody", 28), 24);
  assert_int_equal(hd_http_head_length("GET / HTTP/1.1\r\n\r", 17), 0);
}

static void test_content_length_rfc9112(void **st) {
  (void)st;
  char out[2048];
  assert_int_equal(check("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", out, NULL, NULL),
                   0);
  assert_int_equal(check("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length:  0 \r\n\r\n", out, NULL, NULL), 0);
  /* the reproducers: each one was accepted and the rest served as a second request */
  static const char *const bad[] = {
      "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhello",
      "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello",
      "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5x\r\n\r\nhello",
      "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello",
      "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\nhello",
      "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 40\r\n\r\nhello",
      "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\nhello",
      "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\nhello",
      "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\nhello",
      "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello",
      "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello",
      "POST /x HTTP/1.1\r\nHost: a\r\n Content-Length: 5\r\n\r\nhello",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int status = check(bad[i], out, NULL, NULL);
    if (status != 400) fail_msg("case %zu: got %d for %s", i, status, bad[i]);
  }
}

static void test_lws_prefix_names_removed(void **st) {
  (void)st;
  char out[2048];
  size_t total, head;
  /* "X-Forwarded:", "Content:", "If:" (prefixes of x-forwarded-for, content-*,
   * if-match...) made lws wait forever for the end of the head */
  assert_int_equal(check("GET /healthz HTTP/1.1\r\nHost: a\r\nX-Forwarded: 1\r\nContent: 2\r\nIf: 3\r\n"
                         "Accept: */*\r\n\r\n",
                         out, &total, &head),
                   0);
  assert_string_equal(out, "GET /healthz HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n");
  assert_int_equal(head, total);
  /* body bytes after the head move along */
  assert_int_equal(check("POST /a HTTP/1.1\r\nIf: x\r\nContent-Length: 2\r\n\r\nhi", out, &total, &head), 0);
  assert_string_equal(out, "POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi");
  assert_int_equal(total - head, 2);
  /* what the gate needs to decide how to hand the request over */
  char buf[] = "POST /a HTTP/1.1\r\nIf: x\r\nContent: y\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\nhi";
  size_t t = strlen(buf), h = hd_http_head_length(buf, t);
  char why[128];
  hd_http_head_info_t info;
  assert_int_equal(hd_http_head_check(buf, &h, &t, why, sizeof why, &info), 0);
  assert_int_equal(info.dropped, 2);
  assert_string_equal(info.first_dropped, "If");
  assert_true(info.has_body && info.upgrade);
  /* names lws knows are kept, also when they are prefixes of others
   * (sec-websocket-key / -key1), and unknown names that are not prefixes */
  static const char ws[] = "GET /rtc HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                           "Content-Type: x\r\nX-Custom: 1\r\nIf-Match: \"e\"\r\n\r\n";
  assert_int_equal(check(ws, out, &total, &head), 0);
  assert_string_equal(out, ws);
}

static void test_request_line(void **st) {
  (void)st;
  char out[2048];
  assert_int_equal(check("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n", out, NULL, NULL),
                   405);
  assert_int_equal(check("TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", out, NULL, NULL), 405);
  assert_int_equal(check("BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n", out, NULL, NULL), 501);
  assert_int_equal(check("GET / HTTP/2.0\r\nHost: a\r\n\r\n", out, NULL, NULL), 505);
  assert_int_equal(check("GET / FTP/1.1\r\nHost: a\r\n\r\n", out, NULL, NULL), 400);
  assert_int_equal(check("GET /\r\nHost: a\r\n\r\n", out, NULL, NULL), 400);
  assert_int_equal(check("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", out, NULL, NULL), 400);
  assert_int_equal(check("GET / HTTP/1.1\r\nno colon here\r\n\r\n", out, NULL, NULL), 400);
  assert_int_equal(check("GET / HTTP/1.0\r\n\r\n", out, NULL, NULL), 0);
  assert_int_equal(check("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", out, NULL, NULL), 0);
  assert_int_equal(check("DELETE /whip/x HTTP/1.1\nHost: a\n\n", out, NULL, NULL), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_head_length),
      cmocka_unit_test(test_content_length_rfc9112),
      cmocka_unit_test(test_lws_prefix_names_removed),
      cmocka_unit_test(test_request_line),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
