// TCP header (RFC 9293 §3.1): offsets, flags, checked view, checksum over the IPv4 pseudo header.
// Segments are (u8, off) views of the worker's packet arena (owned by the port layer); calitap never
// terminates TCP, it only reads ports/flags (NAT, policy) and rewrites ports with `l4SetPort`. Runs on
// dataplane worker threads; `parseTcp` is for tests/trace only. Options are skipped, never parsed.
import { onesSum, pseudoHeaderSum } from './checksum.js';
import { ip4Dst, ip4Hlen, ip4SetTotalLen, ip4Src, ip4TotalLen, IPPROTO_TCP } from './ipv4.js';

export { l4AdjustForAddr, l4SetPort } from './l4.js';

export const TCP_SPORT = 0;
export const TCP_DPORT = 2;
export const TCP_SEQ = 4;
export const TCP_ACK = 8;
/** data offset (high nibble, 32-bit words) */
export const TCP_OFF = 12;
export const TCP_FLAGS = 13;
export const TCP_WIN = 14;
export const TCP_CSUM = 16;
export const TCP_URG = 18;
export const TCP_MIN_HLEN = 20;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK_FLAG = 0x10;
export const TCP_URG_FLAG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

export const TCP_OK = 0;
/** fewer than 20 bytes */
export const TCP_ERR_SHORT = 1;
/** data offset below 5 */
export const TCP_ERR_DOFF = 2;
/** data offset * 4 beyond the available bytes */
export const TCP_ERR_LEN = 3;
/** Counter names indexed by `tcpCheck` result. */
export const TCP_ERR_NAMES: readonly string[] = ['ok', 'short', 'bad-data-offset', 'bad-length'];

export function tcpSport(u8: Uint8Array, off: number): number {
  return (u8[off + TCP_SPORT] << 8) | u8[off + TCP_SPORT + 1];
}
export function tcpDport(u8: Uint8Array, off: number): number {
  return (u8[off + TCP_DPORT] << 8) | u8[off + TCP_DPORT + 1];
}
export function tcpFlags(u8: Uint8Array, off: number): number {
  return u8[off + TCP_FLAGS];
}
/** Header length in bytes (data offset * 4). */
export function tcpHlen(u8: Uint8Array, off: number): number {
  return (u8[off + TCP_OFF] >>> 4) << 2;
}

/** Checked view over `len` bytes at `off` (the IP payload, trimmed to the IP total length). */
export function tcpCheck(u8: Uint8Array, off: number, len: number): number {
  if (!(off >= 0) || !(len >= TCP_MIN_HLEN) || off + len > u8.length) return TCP_ERR_SHORT;
  const hlen = tcpHlen(u8, off);
  if (hlen < TCP_MIN_HLEN) return TCP_ERR_DOFF;
  if (hlen > len) return TCP_ERR_LEN;
  return TCP_OK;
}

/**
 * The checksum the segment after the (checked) IPv4 header at `ipOff` should carry: pseudo header +
 * segment (IP total length − IHL*4 bytes) with the checksum field taken as zero.
 */
export function tcpChecksum(u8: Uint8Array, ipOff: number): number {
  const hl = ip4Hlen(u8, ipOff);
  const l4 = ipOff + hl;
  const len = ip4TotalLen(u8, ipOff) - hl;
  let s = pseudoHeaderSum(ip4Src(u8, ipOff), ip4Dst(u8, ipOff), IPPROTO_TCP, len);
  s = onesSum(u8, l4, TCP_CSUM, s);
  s = onesSum(u8, l4 + TCP_CSUM + 2, len - TCP_CSUM - 2, s);
  return ~s & 0xffff;
}

/** True when the checksum verifies (TCP checksums are mandatory). */
export function tcpChecksumOk(u8: Uint8Array, ipOff: number): boolean {
  const hl = ip4Hlen(u8, ipOff);
  const len = ip4TotalLen(u8, ipOff) - hl;
  const s = pseudoHeaderSum(ip4Src(u8, ipOff), ip4Dst(u8, ipOff), IPPROTO_TCP, len);
  return onesSum(u8, ipOff + hl, len, s) === 0xffff;
}

export function tcpSetChecksum(u8: Uint8Array, ipOff: number): void {
  const c = tcpChecksum(u8, ipOff);
  const o = ipOff + ip4Hlen(u8, ipOff) + TCP_CSUM;
  u8[o] = c >>> 8;
  u8[o + 1] = c & 0xff;
}

/**
 * Makes the TCP/IPv4 packet at ipOff the header of a GSO super-frame of `total` IPv4 bytes: its total
 * length and header checksum, and in the TCP checksum field the pseudo-header sum, folded and not
 * complemented (the partial checksum a NEEDS_CSUM / CHECKSUM_PARTIAL packet carries, as the kernel's
 * tcp_gro_complete leaves it). For the GRO paths (devices/gro.ts, devices/gro-input.ts).
 */
export function tcp4SetGsoHeader(u8: Uint8Array, ipOff: number, total: number): void {
  ip4SetTotalLen(u8, ipOff, total);
  const hl = ip4Hlen(u8, ipOff);
  const s = pseudoHeaderSum(ip4Src(u8, ipOff), ip4Dst(u8, ipOff), IPPROTO_TCP, total - hl);
  const o = ipOff + hl + TCP_CSUM;
  u8[o] = s >>> 8;
  u8[o + 1] = s & 0xff;
}

export interface TcpRecord {
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  hlen: number;
  flags: number;
  window: number;
  checksum: number;
  urgent: number;
  /** copy of the option bytes, empty when none or not all there */
  options: Uint8Array;
  payloadOff: number;
  /** `tcpCheck` result */
  err: number;
  errName: string;
}

function rd32(u8: Uint8Array, o: number): number {
  return ((u8[o] << 24) | (u8[o + 1] << 16) | (u8[o + 2] << 8) | u8[o + 3]) >>> 0;
}

/** Parsed record for tests/trace; null when shorter than 20 bytes. Never throws. */
export function parseTcp(u8: Uint8Array, off: number, len: number): TcpRecord | null {
  const err = tcpCheck(u8, off, len);
  if (err === TCP_ERR_SHORT) return null;
  const hlen = tcpHlen(u8, off);
  return {
    sport: tcpSport(u8, off),
    dport: tcpDport(u8, off),
    seq: rd32(u8, off + TCP_SEQ),
    ack: rd32(u8, off + TCP_ACK),
    hlen,
    flags: u8[off + TCP_FLAGS],
    window: (u8[off + TCP_WIN] << 8) | u8[off + TCP_WIN + 1],
    checksum: (u8[off + TCP_CSUM] << 8) | u8[off + TCP_CSUM + 1],
    urgent: (u8[off + TCP_URG] << 8) | u8[off + TCP_URG + 1],
    options: err === TCP_OK ? u8.slice(off + TCP_MIN_HLEN, off + hlen) : new Uint8Array(0),
    payloadOff: off + hlen,
    err,
    errName: TCP_ERR_NAMES[err],
  };
}
