// Internet checksum arithmetic (RFC 1071) for the addon's byte work: a one's-complement sum of 64-bit
// host-order words with end-around carry, optionally fused with the copy of the bytes it sums, folded
// to 16 bits at the end. RFC 1071 §2(B): the sum is byte-order independent, so we add little-endian
// words and swap the folded result once.
//
// What flows through it: byte ranges of the caller's arena (offload.c checks every range first). Who
// owns the buffers: the calling JS thread, during the call. Which thread runs it: any; no state.
#ifndef CALITAP_IO_CSUM_H
#define CALITAP_IO_CSUM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

// a + b with the carry out of bit 63 added back in (one's-complement addition on 64 bits).
static inline uint64_t csum_add64(uint64_t a, uint64_t b) {
  uint64_t s = a + b;
  return s + (s < b);
}

// Sums len bytes at src. The range must start at an even offset from where the checksum starts; an odd
// trailing byte is padded with zero.
static inline uint64_t csum_bytes(const uint8_t *src, size_t len, uint64_t acc) {
  while (len >= 32) {
    uint64_t a, b, c, d;
    memcpy(&a, src, 8);
    memcpy(&b, src + 8, 8);
    memcpy(&c, src + 16, 8);
    memcpy(&d, src + 24, 8);
    acc = csum_add64(csum_add64(acc, a), b);
    acc = csum_add64(csum_add64(acc, c), d);
    src += 32;
    len -= 32;
  }
  while (len >= 8) {
    uint64_t a;
    memcpy(&a, src, 8);
    acc = csum_add64(acc, a);
    src += 8;
    len -= 8;
  }
  if (len) {
    uint64_t t = 0;
    memcpy(&t, src, len); // host order: on little endian the trailing byte lands in the low lane
    acc = csum_add64(acc, t);
  }
  return acc;
}

// Copies len bytes from src to dst (which must not overlap) and returns the sum, in one pass.
static inline uint64_t csum_copy(uint8_t *dst, const uint8_t *src, size_t len, uint64_t acc) {
  while (len >= 32) {
    uint64_t a, b, c, d;
    memcpy(&a, src, 8);
    memcpy(&b, src + 8, 8);
    memcpy(&c, src + 16, 8);
    memcpy(&d, src + 24, 8);
    memcpy(dst, &a, 8);
    memcpy(dst + 8, &b, 8);
    memcpy(dst + 16, &c, 8);
    memcpy(dst + 24, &d, 8);
    acc = csum_add64(csum_add64(acc, a), b);
    acc = csum_add64(csum_add64(acc, c), d);
    src += 32;
    dst += 32;
    len -= 32;
  }
  while (len >= 8) {
    uint64_t a;
    memcpy(&a, src, 8);
    memcpy(dst, &a, 8);
    acc = csum_add64(acc, a);
    src += 8;
    dst += 8;
    len -= 8;
  }
  if (len) {
    uint64_t t = 0;
    memcpy(&t, src, len);
    memcpy(dst, src, len);
    acc = csum_add64(acc, t);
  }
  return acc;
}

// Folds a 64-bit host-order accumulator to the 16-bit sum of big-endian words (not complemented).
static inline uint16_t csum_fold(uint64_t acc) {
  acc = (acc & 0xffffffffu) + (acc >> 32);
  acc = (acc & 0xffffffffu) + (acc >> 32);
  acc = (acc & 0xffffu) + (acc >> 16);
  acc = (acc & 0xffffu) + (acc >> 16);
  acc = (acc & 0xffffu) + (acc >> 16);
  uint16_t s = (uint16_t)acc;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  s = (uint16_t)((s << 8) | (s >> 8));
#endif
  return s;
}

// A big-endian 16-bit value (or a folded sum) as an accumulator term.
static inline uint64_t csum_be16(uint16_t v) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  v = (uint16_t)((v << 8) | (v >> 8));
#endif
  return v;
}

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t rd32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void wr16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline void wr32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

// The IPv4 pseudo header (RFC 768, RFC 9293 §3.1): addresses straight from the header, protocol and
// L4 length.
static inline uint64_t csum_pseudo4(const uint8_t *ip, uint8_t proto, uint16_t l4len) {
  uint64_t acc = csum_bytes(ip + 12, 8, 0);
  return csum_add64(acc, csum_be16(proto) + csum_be16(l4len));
}

// The IPv4 header checksum of the ihl bytes at ip (its checksum field is taken as zero).
static inline uint16_t ip4_header_csum(uint8_t *ip, size_t ihl) {
  ip[10] = ip[11] = 0;
  return (uint16_t)~csum_fold(csum_bytes(ip, ihl, 0));
}

#endif
