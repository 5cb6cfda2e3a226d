// UDP header (RFC 768): offsets, checked view, checksum over the IPv4 pseudo header, emit.
// Datagrams are (u8, off) views of the worker's packet arena (owned by the port layer); VXLAN encap
// emits the outer UDP header into the slot's headroom. Runs on dataplane worker threads; `parseUdp` is
// for tests/trace only. Checksum rules (RFC 768): 0 in the field means "not computed" (allowed over
// IPv4); a computed 0 is sent as 0xffff — `udpChecksum` already returns it that way.
import { onesSum, pseudoHeaderSum, udpChecksumFinal } from './checksum.js';
import { ip4Dst, ip4Hlen, ip4Src, IPPROTO_UDP } from './ipv4.js';

export { l4AdjustForAddr, l4SetPort } from './l4.js';
export { udpChecksumFinal } from './checksum.js';

export const UDP_SPORT = 0;
export const UDP_DPORT = 2;
export const UDP_LEN = 4;
export const UDP_CSUM = 6;
export const UDP_HLEN = 8;

export const UDP_OK = 0;
/** fewer than 8 bytes */
export const UDP_ERR_SHORT = 1;
/** length field below 8 or beyond the available bytes */
export const UDP_ERR_LEN = 2;
/** Counter names indexed by `udpCheck` result. */
export const UDP_ERR_NAMES: readonly string[] = ['ok', 'short', 'bad-length'];

export function udpSport(u8: Uint8Array, off: number): number {
  return (u8[off + UDP_SPORT] << 8) | u8[off + UDP_SPORT + 1];
}
export function udpDport(u8: Uint8Array, off: number): number {
  return (u8[off + UDP_DPORT] << 8) | u8[off + UDP_DPORT + 1];
}
export function udpLen(u8: Uint8Array, off: number): number {
  return (u8[off + UDP_LEN] << 8) | u8[off + UDP_LEN + 1];
}

/**
 * Checked view over `len` bytes at `off` (the IP payload, already trimmed to the IP total length).
 * The UDP length may be shorter than `len` (the rest is ignored) but not longer.
 */
export function udpCheck(u8: Uint8Array, off: number, len: number): number {
  if (!(off >= 0) || !(len >= UDP_HLEN) || off + len > u8.length) return UDP_ERR_SHORT;
  const ulen = udpLen(u8, off);
  if (ulen < UDP_HLEN || ulen > len) return UDP_ERR_LEN;
  return UDP_OK;
}

/**
 * The checksum the UDP header after the (checked) IPv4 header at `ipOff` should carry, computed over
 * the pseudo header and the UDP length field's bytes with the checksum field taken as zero; a computed
 * 0 is returned as 0xffff.
 */
export function udpChecksum(u8: Uint8Array, ipOff: number): number {
  const l4 = ipOff + ip4Hlen(u8, ipOff);
  const len = udpLen(u8, l4);
  let s = pseudoHeaderSum(ip4Src(u8, ipOff), ip4Dst(u8, ipOff), IPPROTO_UDP, len);
  s = onesSum(u8, l4, UDP_CSUM, s);
  s = onesSum(u8, l4 + UDP_HLEN, len - UDP_HLEN, s);
  return udpChecksumFinal(~s & 0xffff);
}

/** True when the checksum field is 0 (none) or verifies. */
export function udpChecksumOk(u8: Uint8Array, ipOff: number): boolean {
  const l4 = ipOff + ip4Hlen(u8, ipOff);
  if (u8[l4 + UDP_CSUM] === 0 && u8[l4 + UDP_CSUM + 1] === 0) return true;
  const len = udpLen(u8, l4);
  const s = pseudoHeaderSum(ip4Src(u8, ipOff), ip4Dst(u8, ipOff), IPPROTO_UDP, len);
  return onesSum(u8, l4, len, s) === 0xffff;
}

/** Computes and writes the UDP checksum for the datagram after the IPv4 header at `ipOff`. */
export function udpSetChecksum(u8: Uint8Array, ipOff: number): void {
  const c = udpChecksum(u8, ipOff);
  const o = ipOff + ip4Hlen(u8, ipOff) + UDP_CSUM;
  u8[o] = c >>> 8;
  u8[o + 1] = c & 0xff;
}

/** Writes an 8-byte UDP header at `off`. Pass `csum` 0 for none (e.g. VXLAN outer, RFC 7348 §5). */
export function emitUdpHeader(
  u8: Uint8Array,
  off: number,
  sport: number,
  dport: number,
  len: number,
  csum: number,
): void {
  u8[off + UDP_SPORT] = sport >>> 8;
  u8[off + UDP_SPORT + 1] = sport;
  u8[off + UDP_DPORT] = dport >>> 8;
  u8[off + UDP_DPORT + 1] = dport;
  u8[off + UDP_LEN] = len >>> 8;
  u8[off + UDP_LEN + 1] = len;
  u8[off + UDP_CSUM] = csum >>> 8;
  u8[off + UDP_CSUM + 1] = csum;
}

export interface UdpRecord {
  sport: number;
  dport: number;
  len: number;
  checksum: number;
  payloadOff: number;
  /** `udpCheck` result */
  err: number;
  errName: string;
}

/** Parsed record for tests/trace; null when shorter than 8 bytes. Never throws. */
export function parseUdp(u8: Uint8Array, off: number, len: number): UdpRecord | null {
  const err = udpCheck(u8, off, len);
  if (err === UDP_ERR_SHORT) return null;
  return {
    sport: udpSport(u8, off),
    dport: udpDport(u8, off),
    len: udpLen(u8, off),
    checksum: (u8[off + UDP_CSUM] << 8) | u8[off + UDP_CSUM + 1],
    payloadOff: off + UDP_HLEN,
    err,
    errName: UDP_ERR_NAMES[err],
  };
}
