/* DCEP, the WebRTC Data Channel Establishment Protocol (RFC 8832): the two
 * messages, DATA_CHANNEL_OPEN (§5.1) and DATA_CHANNEL_ACK (§5.2), sent on the
 * channel's own SCTP stream with PPID 50 (RFC 8831 §8). Pure codec: no state.
 *
 * DATA_CHANNEL_OPEN layout (network byte order):
 *   u8 message type (0x03) | u8 channel type | u16 priority |
 *   u32 reliability parameter | u16 label length | u16 protocol length |
 *   label | protocol
 * DATA_CHANNEL_ACK is the single byte 0x02. */
#ifndef HD_PROTO_DCEP_H
#define HD_PROTO_DCEP_H
#include <stddef.h>
#include <stdint.h>

/* SCTP payload protocol identifier of DCEP messages (RFC 8831 §8). */
#define HD_DCEP_PPID 50

/* Message types (RFC 8832 §8.2.1). */
enum { HD_DCEP_ACK = 0x02, HD_DCEP_OPEN = 0x03 };

/* Channel types (RFC 8832 §5.1). The 0x80 bit means unordered delivery. */
enum {
  HD_DCEP_RELIABLE = 0x00,
  HD_DCEP_PARTIAL_RELIABLE_REXMIT = 0x01, /* reliability = max retransmissions */
  HD_DCEP_PARTIAL_RELIABLE_TIMED = 0x02,  /* reliability = lifetime in ms */
  HD_DCEP_UNORDERED = 0x80,
  HD_DCEP_RELIABLE_UNORDERED = 0x80,
  HD_DCEP_PARTIAL_RELIABLE_REXMIT_UNORDERED = 0x81,
  HD_DCEP_PARTIAL_RELIABLE_TIMED_UNORDERED = 0x82,
};

/* Our caps on label and protocol (the wire allows 65535 each). Longer ones are
 * refused with HD_ENOSPC: no browser API user needs more, and the channel
 * table keeps the label. */
#define HD_DCEP_MAX_LABEL 255
#define HD_DCEP_MAX_PROTOCOL 255
/* Fixed part of DATA_CHANNEL_OPEN. */
#define HD_DCEP_OPEN_HEADER 12

typedef struct {
  uint8_t channel_type; /* HD_DCEP_RELIABLE ... */
  uint16_t priority;
  uint32_t reliability;                    /* see channel type; 0 for reliable channels */
  char label[HD_DCEP_MAX_LABEL + 1];       /* NUL-terminated */
  char protocol[HD_DCEP_MAX_PROTOCOL + 1]; /* NUL-terminated, "" when none */
} hd_dcep_open_t;

/* 1 if channel_type is one RFC 8832 defines (the six values above). */
int hd_dcep_type_valid(uint8_t channel_type);
/* 1 if the channel delivers in order (0x80 bit clear). */
static inline int hd_dcep_ordered(uint8_t channel_type) { return !(channel_type & HD_DCEP_UNORDERED); }
/* 1 if the channel is fully reliable (no retransmission/lifetime limit). */
static inline int hd_dcep_reliable(uint8_t channel_type) { return (channel_type & 0x7f) == 0; }

/* Parses one DCEP message (an SCTP message with PPID 50). Returns HD_DCEP_ACK
 * (nothing written to *open), HD_DCEP_OPEN (*open filled; open may then not be
 * NULL), or: HD_ETRUNC when shorter than its fixed part or its length fields,
 * HD_EPROTO for an unknown message or channel type, trailing bytes after an
 * OPEN's protocol, bytes after an ACK, or a NUL byte inside label/protocol,
 * HD_ENOSPC when label or protocol exceeds our cap. */
int hd_dcep_parse(const uint8_t *buf, size_t len, hd_dcep_open_t *open);

/* Writes DATA_CHANNEL_OPEN for *open into out. Returns its length, HD_EINVAL
 * for an invalid channel type or over-cap label/protocol, HD_ENOSPC if cap is
 * too small. */
int hd_dcep_build_open(const hd_dcep_open_t *open, uint8_t *out, size_t cap);

/* Writes DATA_CHANNEL_ACK (one byte). Returns 1 or HD_ENOSPC. */
int hd_dcep_build_ack(uint8_t *out, size_t cap);

#endif
