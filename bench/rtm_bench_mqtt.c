/* rtm_bench driver: MQTT 3.1.1 (OASIS mqtt-v3.1.1 §3) at QoS 1, the reference
 * (mosquitto). Publishers send PUBLISH QoS 1 and count PUBACKs; subscribers
 * subscribe at QoS 1 and answer every PUBLISH with a PUBACK (§4.3.2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtm_bench_proto.h"

typedef struct {
  uint16_t next_pid;
} mqtt_state_t;

static size_t put_len(uint8_t *p, size_t n) { /* §2.2.3 remaining length */
  size_t i = 0;
  do {
    uint8_t b = n % 128;
    n /= 128;
    if (n) b |= 0x80;
    p[i++] = b;
  } while (n);
  return i;
}

static size_t put_str(uint8_t *p, const char *s, size_t n) {
  p[0] = (uint8_t)(n >> 8);
  p[1] = (uint8_t)n;
  memcpy(p + 2, s, n);
  return n + 2;
}

static uint16_t next_pid(bench_conn_t *c) {
  mqtt_state_t *st = c->pstate;
  if (!st) st = c->pstate = calloc(1, sizeof *st);
  if (++st->next_pid == 0) st->next_pid = 1;
  return st->next_pid;
}

/* fixed header + body */
static void packet(bench_conn_t *c, uint8_t type, const uint8_t *body, size_t n) {
  uint8_t h[5];
  h[0] = type;
  size_t hl = 1 + put_len(h + 1, n);
  bench_write(c, h, hl);
  bench_write(c, body, n);
}

static void mqtt_hello(bench_conn_t *c) {
  uint8_t b[64];
  size_t n = 0;
  n += put_str(b + n, "MQTT", 4);
  b[n++] = 4;    /* protocol level 3.1.1 */
  b[n++] = 0x02; /* clean session */
  b[n++] = 0;    /* keep alive 0: off (the benchmark is short) */
  b[n++] = 0;
  char id[24];
  int l = snprintf(id, sizeof id, "b%d", c->idx);
  n += put_str(b + n, id, (size_t)l);
  packet(c, 0x10, b, n);
}

static int topic(char *buf, size_t cap, int ch, int fanout) {
  return snprintf(buf, cap, "f%d/c%d", fanout, ch);
}

static void mqtt_subscribe(bench_conn_t *c, int ch, int fanout) {
  uint8_t b[96];
  char t[48];
  int tl = topic(t, sizeof t, ch, fanout);
  uint16_t pid = next_pid(c);
  size_t n = 0;
  b[n++] = (uint8_t)(pid >> 8);
  b[n++] = (uint8_t)pid;
  n += put_str(b + n, t, (size_t)tl);
  b[n++] = 1; /* QoS 1 */
  packet(c, 0x82, b, n);
}

static void mqtt_publish(bench_conn_t *c, int ch, int fanout, const char *payload, size_t len) {
  uint8_t b[4200];
  char t[48];
  int tl = topic(t, sizeof t, ch, fanout);
  uint16_t pid = next_pid(c);
  size_t n = put_str(b, t, (size_t)tl);
  b[n++] = (uint8_t)(pid >> 8);
  b[n++] = (uint8_t)pid;
  memcpy(b + n, payload, len);
  packet(c, 0x32, b, n + len); /* PUBLISH, QoS 1 */
}

static int mqtt_parse(bench_conn_t *c, size_t *used) {
  size_t off = 0;
  for (;;) {
    if (c->rlen - off < 2) break;
    const uint8_t *p = c->rbuf + off;
    size_t len = 0, mul = 1, i = 1;
    for (;; i++) {
      if (i >= c->rlen - off) goto partial;
      if (i > 4) {
        bench_fail(c, "bad remaining length");
        return -1;
      }
      len += (p[i] & 0x7f) * mul;
      mul *= 128;
      if (!(p[i] & 0x80)) break;
    }
    size_t hl = i + 1;
    if (c->rlen - off < hl + len) break;
    const uint8_t *body = p + hl;
    switch (p[0] >> 4) {
    case 2: /* CONNACK */
      if (len < 2 || body[1] != 0) {
        bench_fail(c, "CONNACK refused (%d)", len >= 2 ? body[1] : -1);
        return -1;
      }
      bench_on_ready(c);
      break;
    case 9: /* SUBACK */
      if (len < 3 || body[2] == 0x80) {
        bench_fail(c, "SUBACK failure");
        return -1;
      }
      bench_on_subscribed(c);
      break;
    case 4: /* PUBACK (for our PUBLISH) */ bench_on_puback(c); break;
    case 3: { /* PUBLISH to a subscriber */
      int qos = (p[0] >> 1) & 3;
      if (len < 2) return -1;
      size_t tl = ((size_t)body[0] << 8) | body[1], at = 2 + tl;
      if (qos) at += 2;
      if (at > len) {
        bench_fail(c, "short PUBLISH");
        return -1;
      }
      bench_on_message(c, body + at, len - at);
      if (qos == 1) {
        uint8_t ack[4] = {0x40, 2, body[2 + tl], body[3 + tl]};
        bench_write(c, ack, 4);
      }
      break;
    }
    default: break;
    }
    off += hl + len;
  }
partial:
  *used = off;
  return 0;
}

const bench_proto_t bench_proto_mqtt = {
    .name = "mosquitto",
    .hello = mqtt_hello,
    .parse = mqtt_parse,
    .subscribe = mqtt_subscribe,
    .publish = mqtt_publish,
};
