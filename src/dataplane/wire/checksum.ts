// Internet checksum arithmetic (RFC 1071) and incremental update (RFC 1624) over packet bytes.
// Bytes flow in as (u8, off, len) views of a worker's packet arena (a SharedArrayBuffer owned by the
// worker's port layer); nothing here keeps a reference or allocates. Runs on the dataplane worker
// threads (hot path) and in tests. All sums are one's-complement sums of 16-bit big-endian words.

/** Folds a non-negative accumulator (below 2^53) to 16 bits with end-around carry (RFC 1071 §4.1). */
export function fold(sum: number): number {
  // Values above 2^32 can't use `>>>`; bring them down with division first (rare: >64 KiB of data).
  while (sum > 0xffffffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/**
 * One's-complement sum of `len` bytes at `off` as big-endian 16-bit words, an odd trailing byte padded
 * with zero (RFC 1071 §4.1), plus `initial`; folded to 16 bits, NOT complemented.
 */
export function onesSum(u8: Uint8Array, off: number, len: number, initial = 0): number {
  let sum = initial;
  const end = off + (len & ~1);
  let i = off;
  // The accumulator is a double: 2^53 / 0xffff words is far beyond any packet, so fold once at the end.
  for (; i < end; i += 2) sum += (u8[i] << 8) | u8[i + 1];
  if (len & 1) sum += u8[i] << 8;
  return fold(sum);
}

/** The Internet checksum field value of `len` bytes at `off`: `~fold(sum) & 0xffff` (RFC 1071). */
export function internetChecksum(u8: Uint8Array, off: number, len: number, initial = 0): number {
  return ~onesSum(u8, off, len, initial) & 0xffff;
}

/**
 * RFC 1624 eqn. 3: new checksum field value after one 16-bit word changes from `oldWord` to `newWord`:
 * HC' = ~(~HC + ~m + m'). Unlike eqn. 2 (RFC 1141) this never turns a valid sum into the 0x0000/0xffff
 * wrong representation. For UDP, pass the result through `udpChecksumFinal` (0 means "no checksum").
 */
export function csumAdjust16(csum: number, oldWord: number, newWord: number): number {
  let s = (~csum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** RFC 1624 eqn. 3 for a 32-bit field (an IPv4 address) made of two 16-bit words. */
export function csumAdjust32(csum: number, oldU32: number, newU32: number): number {
  let s =
    (~csum & 0xffff) +
    (~(oldU32 >>> 16) & 0xffff) +
    (~oldU32 & 0xffff) +
    ((newU32 >>> 16) & 0xffff) +
    (newU32 & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/**
 * Sum of the IPv4 pseudo header used by TCP and UDP (RFC 768; RFC 9293 §3.1): source, destination,
 * zero+protocol, L4 length. Folded, not complemented; pass it as `initial` to `onesSum`.
 */
export function pseudoHeaderSum(src: number, dst: number, proto: number, l4len: number): number {
  return fold(
    (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + (proto & 0xff) + (l4len & 0xffff),
  );
}

/**
 * RFC 768: a UDP checksum that computes to 0x0000 is transmitted as 0xffff, because 0 in the field
 * means "no checksum". Apply to every UDP checksum value before writing it (full or incremental).
 */
export function udpChecksumFinal(c: number): number {
  return c === 0 ? 0xffff : c;
}
