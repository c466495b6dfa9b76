/* Tests for the sans-IO parts of the HTTP/1.1 client (src/io/http_client):
 * URL parsing (RFC 3986 authority forms we accept, caps, https refusal) and
 * the response header block parser (RFC 9112 §4 status line, §5 fields,
 * bare-LF line ends, obs-fold refusal, incomplete input). */
#include "hd_test.h"

#include "base/err.h"
#include "io/http_client.h"

static void test_url_parse(void **state) {
  hd_http_url_t u;
  assert_int_equal(hd_http_url_parse("http://example.com", &u), 0);
  assert_string_equal(u.host, "example.com");
  assert_int_equal(u.port, 80);
  assert_string_equal(u.path, "/");
  assert_int_equal(hd_http_url_parse("HTTP://10.1.2.3:8080/a/b?x=1&y=2#frag", &u), 0);
  assert_string_equal(u.host, "10.1.2.3");
  assert_int_equal(u.port, 8080);
  assert_string_equal(u.path, "/a/b?x=1&y=2");
  assert_int_equal(hd_http_url_parse("http://[::1]:9/h", &u), 0);
  assert_string_equal(u.host, "::1");
  assert_int_equal(u.ipv6_literal, 1);
  assert_int_equal(u.port, 9);
  assert_int_equal(hd_http_url_parse("http://h?q", &u), 0);
  assert_string_equal(u.path, "/?q");

  assert_int_equal(hd_http_url_parse("https://h/", &u), HD_EUNSUPPORTED);
  assert_int_equal(hd_http_url_parse("ftp://h/", &u), HD_EUNSUPPORTED);
  assert_int_equal(hd_http_url_parse("h/", &u), HD_EINVAL);
  assert_int_equal(hd_http_url_parse("http:///x", &u), HD_EINVAL);
  assert_int_equal(hd_http_url_parse("http://user:pw@h/", &u), HD_EINVAL);
  assert_int_equal(hd_http_url_parse("http://h:0/", &u), HD_EINVAL);
  assert_int_equal(hd_http_url_parse("http://h:65536/", &u), HD_EINVAL);
  assert_int_equal(hd_http_url_parse("http://h:/", &u), HD_EINVAL);
  assert_int_equal(hd_http_url_parse("http://h:8x/", &u), HD_EINVAL);
  assert_int_equal(hd_http_url_parse("http://h:0000080/", &u), HD_EINVAL);
  assert_int_equal(hd_http_url_parse("http://[::1/", &u), HD_EINVAL);
  assert_int_equal(hd_http_url_parse("http://[nothex]/", &u), HD_EINVAL);
  assert_int_equal(hd_http_url_parse("http://[::1]x/", &u), HD_EINVAL);
  assert_int_equal(hd_http_url_parse("http://h o/", &u), HD_EINVAL);
  assert_int_equal(hd_http_url_parse("http://h/a b", &u), HD_EINVAL);
  assert_int_equal(hd_http_url_parse("http://h/a\r\nX: y", &u), HD_EINVAL);
  assert_int_equal(hd_http_url_parse(NULL, &u), HD_EINVAL);
  char big[HD_HTTPC_PATH_MAX + 32] = "http://h/";
  memset(big + 9, 'a', HD_HTTPC_PATH_MAX);
  big[9 + HD_HTTPC_PATH_MAX] = 0;
  assert_int_equal(hd_http_url_parse(big, &u), HD_EINVAL);
}

static void test_response_head(void **state) {
  hd_http_client_result_t r;
  char a[] = "HTTP/1.1 503 Service Unavailable\r\nRetry-After:  5 \r\nX-Empty:\r\n\r\nbody";
  int want = (int)(strstr(a, "body") - a); /* before the parse writes NULs */
  int n = hd_http_response_head_parse(a, strlen(a), &r);
  assert_int_equal(n, want);
  assert_int_equal(r.status, 503);
  assert_string_equal(r.reason, "Service Unavailable");
  assert_int_equal(r.n_headers, 2);
  assert_string_equal(hd_http_client_header(&r, "retry-after"), "5");
  assert_string_equal(hd_http_client_header(&r, "X-EMPTY"), "");
  assert_null(hd_http_client_header(&r, "Content-Length"));

  char b[] = "HTTP/1.0 204\n\n";
  assert_int_equal(hd_http_response_head_parse(b, strlen(b), &r), (int)strlen(b));
  assert_int_equal(r.status, 204);
  assert_string_equal(r.reason, "");

  char inc[] = "HTTP/1.1 200 OK\r\nA: b\r\n";
  assert_int_equal(hd_http_response_head_parse(inc, strlen(inc), &r), 0);

  static const char *const bad[] = {
      "HTTP/2 200 OK\r\n\r\n",
      "HTTP/1.1 20 OK\r\n\r\n",
      "HTTP/1.1 200OK\r\n\r\n",
      "HTTP/1.1 099 x\r\n\r\n",
      "HTTP/1.1 600 x\r\n\r\n",
      "ICY 200 OK\r\n\r\n",
      "HTTP/1.1 200 OK\r\nA b\r\n\r\n",
      "HTTP/1.1 200 OK\r\n: v\r\n\r\n",
      "HTTP/1.1 200 OK\r\nA : v\r\n\r\n",
      "HTTP/1.1 200 OK\r\nA: v\r\n folded\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", bad[i]);
    assert_int_equal(hd_http_response_head_parse(buf, strlen(buf), &r), HD_EPROTO);
  }

  /* more headers than kept: parsed, the first HD_HTTPC_MAX_RESP_HEADERS kept */
  char many[4096];
  size_t o = (size_t)snprintf(many, sizeof many, "HTTP/1.1 200 OK\r\n");
  for (int i = 0; i < HD_HTTPC_MAX_RESP_HEADERS + 5; i++)
    o += (size_t)snprintf(many + o, sizeof many - o, "H%d: %d\r\n", i, i);
  o += (size_t)snprintf(many + o, sizeof many - o, "\r\n");
  assert_int_equal(hd_http_response_head_parse(many, o, &r), (int)o);
  assert_int_equal(r.n_headers, HD_HTTPC_MAX_RESP_HEADERS);
  assert_string_equal(hd_http_client_header(&r, "H31"), "31");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_url_parse),
      cmocka_unit_test(test_response_head),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
