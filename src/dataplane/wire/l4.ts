// Transport-header rewrites shared by TCP, UDP and ICMP echo NAT (RFC 3022 §4.2: NAT must fix the
// transport checksum, which covers the IPv4 pseudo header). Works in place on (u8, off) views of the
// worker's packet arena (owned by the port layer); runs in the `snat4-*` nodes on worker threads.
// Allocates nothing. UDP checksum 0 means "none" (RFC 768) and stays 0; a result of 0 becomes 0xffff.
import { csumAdjust16, csumAdjust32 } from './checksum.js';

function rd16(u8: Uint8Array, o: number): number {
  return (u8[o] << 8) | u8[o + 1];
}
function wr16(u8: Uint8Array, o: number, v: number): void {
  u8[o] = v >>> 8;
  u8[o + 1] = v & 0xff;
}

/**
 * Writes `newPort` at `l4off + portOffset` and updates the checksum at `l4off + csumOffset`
 * incrementally (RFC 1624 eqn. 3). With `isUdp`, a zero checksum (none) is left alone and a computed
 * zero is written as 0xffff. Also fits ICMP echo ids (`ICMP_ID`, `ICMP_CSUM`, isUdp false).
 */
export function l4SetPort(
  u8: Uint8Array,
  l4off: number,
  portOffset: number,
  newPort: number,
  csumOffset: number,
  isUdp: boolean,
): void {
  const old = rd16(u8, l4off + portOffset);
  wr16(u8, l4off + portOffset, newPort);
  const c = rd16(u8, l4off + csumOffset);
  if (isUdp && c === 0) return;
  const n = csumAdjust16(c, old, newPort & 0xffff);
  wr16(u8, l4off + csumOffset, isUdp && n === 0 ? 0xffff : n);
}

/**
 * Updates the TCP/UDP checksum at `l4off + csumOffset` for an IPv4 address change in the pseudo header
 * (call alongside `ip4SetSrc`/`ip4SetDst`; the IP header checksum is theirs). Same UDP rules as above.
 * Not for ICMP, whose checksum has no pseudo header.
 */
export function l4AdjustForAddr(
  u8: Uint8Array,
  l4off: number,
  csumOffset: number,
  oldIp: number,
  newIp: number,
  isUdp: boolean,
): void {
  const c = rd16(u8, l4off + csumOffset);
  if (isUdp && c === 0) return;
  const n = csumAdjust32(c, oldIp >>> 0, newIp >>> 0);
  wr16(u8, l4off + csumOffset, isUdp && n === 0 ? 0xffff : n);
}

/**
 * The same address change for a CHECKSUM_PARTIAL field (a GSO super-frame from a TAP with offloads:
 * the field holds the folded pseudo-header sum, not yet complemented; the device finishes it). Only the
 * pseudo-header changes with the address — ports are summed later by whoever completes it — so
 * p' = p + ~old + new, which is RFC 1624 eqn 3 applied to the complement.
 */
export function l4AdjustPartialForAddr(
  u8: Uint8Array,
  l4off: number,
  csumOffset: number,
  oldIp: number,
  newIp: number,
): void {
  const p = rd16(u8, l4off + csumOffset);
  wr16(u8, l4off + csumOffset, ~csumAdjust32(~p & 0xffff, oldIp >>> 0, newIp >>> 0) & 0xffff);
}

/**
 * Source NAT of a TCP or UDP header in one pass: writes `newPort` as the source port and updates the
 * checksum at `l4off + csumOffset` for both that change and the source address change in the pseudo
 * header (RFC 1624 eqn. 3 over the three changed 16-bit words): the value l4AdjustForAddr followed by
 * l4SetPort gives. Same UDP rules. The IP header's own checksum is ip4SetSrc's.
 */
export function l4SetSource(
  u8: Uint8Array,
  l4off: number,
  csumOffset: number,
  oldIp: number,
  newIp: number,
  newPort: number,
  isUdp: boolean,
): void {
  const oldPort = rd16(u8, l4off);
  wr16(u8, l4off, newPort);
  const co = l4off + csumOffset;
  const c = rd16(u8, co);
  if (isUdp && c === 0) return;
  let s =
    (~c & 0xffff) +
    (~(oldIp >>> 16) & 0xffff) +
    (~oldIp & 0xffff) +
    ((newIp >>> 16) & 0xffff) +
    (newIp & 0xffff) +
    (~oldPort & 0xffff) +
    (newPort & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  const n = ~s & 0xffff;
  wr16(u8, co, isUdp && n === 0 ? 0xffff : n);
}
