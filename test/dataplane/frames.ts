// Tiny frame builders and independent checkers for the graph tests. Frames are built with the wire
// modules' emit functions (src/dataplane/wire/) into fresh Uint8Arrays owned by the test; the checkers
// (checksums, field readers) are written here from the RFCs without the wire modules, so a bug in a
// wire module cannot hide itself.
import { emitEthernet, ETHERTYPE_ARP, ETHERTYPE_IPV4 } from '../../src/dataplane/wire/ethernet.js';
import { emitArpReply, emitArpRequest } from '../../src/dataplane/wire/arp.js';
import {
  emitIp4Header,
  ip4SetChecksum,
  IPPROTO_ICMP,
  IPPROTO_UDP,
  IP4_DF,
} from '../../src/dataplane/wire/ipv4.js';
import { emitUdpHeader, udpSetChecksum } from '../../src/dataplane/wire/udp.js';
import { icmpSetChecksum } from '../../src/dataplane/wire/icmp4.js';

export const EE = 'ee:ee:ee:ee:ee:ee';
export const BCAST = 'ff:ff:ff:ff:ff:ff';

export function ip(text: string): number {
  const p = text.split('.').map(Number);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

export function ipStr(v: number): string {
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
}

export function mac(text: string): Uint8Array {
  return Uint8Array.from(text.split(':').map((b) => parseInt(b, 16)));
}

export function macStr(u8: Uint8Array, off = 0): string {
  return Array.from(u8.subarray(off, off + 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}

export function hex(u8: Uint8Array): string {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString('hex');
}

// ------------------------------------------------------------------------------------------ builders

export interface ArpOpts {
  op?: 1 | 2;
  /** Ethernet destination (default broadcast for requests, tha for replies) */
  dst?: string;
  sha: string;
  spa: string;
  tha?: string;
  tpa: string;
  /** total frame length (padding with zeros), e.g. 60 */
  padTo?: number;
}

/** Ethernet + ARP (request by default). */
export function arp(o: ArpOpts): Uint8Array {
  const len = Math.max(42, o.padTo ?? 42);
  const u8 = new Uint8Array(len);
  if ((o.op ?? 1) === 1) {
    emitArpRequest(u8, 0, mac(o.sha), ip(o.spa), ip(o.tpa));
    if (o.tha !== undefined) u8.set(mac(o.tha), 14 + 18);
  } else {
    emitArpReply(u8, 0, mac(o.sha), ip(o.spa), mac(o.tha ?? '00:00:00:00:00:00'), ip(o.tpa));
  }
  if (o.dst !== undefined) u8.set(mac(o.dst), 0);
  return u8;
}

export interface Ip4Opts {
  ethDst?: string;
  ethSrc: string;
  ipSrc: string;
  ipDst: string;
  proto: number;
  ttl?: number;
  id?: number;
  df?: boolean;
  tos?: number;
  /** IP options (length a multiple of 4) */
  options?: Uint8Array;
  /** L4 header + payload, checksums already set by the caller (see udp()/icmpEcho()) */
  l4: Uint8Array;
  /** pad the frame with zeros to this length (Ethernet padding) */
  padTo?: number;
}

/** Ethernet + IPv4 (+ options) + the given L4 bytes; header checksum set. */
export function ip4(o: Ip4Opts): Uint8Array {
  const optLen = o.options?.length ?? 0;
  const hlen = 20 + optLen;
  const total = hlen + o.l4.length;
  const len = Math.max(14 + total, o.padTo ?? 0);
  const u8 = new Uint8Array(len);
  emitEthernet(u8, 0, mac(o.ethDst ?? EE), mac(o.ethSrc), ETHERTYPE_IPV4);
  emitIp4Header(
    u8,
    14,
    ip(o.ipSrc),
    ip(o.ipDst),
    o.proto,
    total,
    o.ttl ?? 64,
    o.id ?? 1,
    o.df ? IP4_DF : 0,
    o.tos ?? 0,
  );
  if (optLen > 0) {
    u8[14] = 0x40 | (hlen >> 2);
    u8.set(o.options!, 14 + 20);
    ip4SetChecksum(u8, 14);
  }
  u8.set(o.l4, 14 + hlen);
  return u8;
}

/** A UDP header + payload with a correct checksum for the given addresses. */
export function udpL4(
  ipSrc: string,
  ipDst: string,
  sport: number,
  dport: number,
  payload: Uint8Array,
): Uint8Array {
  // build inside a scratch IPv4 packet so the wire module's udpSetChecksum can be used
  const scratch = new Uint8Array(20 + 8 + payload.length);
  emitIp4Header(scratch, 0, ip(ipSrc), ip(ipDst), IPPROTO_UDP, scratch.length, 64, 0, 0, 0);
  emitUdpHeader(scratch, 20, sport, dport, 8 + payload.length, 0);
  scratch.set(payload, 28);
  udpSetChecksum(scratch, 0);
  return scratch.slice(20);
}

/** An ICMP echo request (type 8) or reply (type 0) with a correct checksum. */
export function icmpL4(type: number, code: number, rest: number, payload: Uint8Array): Uint8Array {
  const u8 = new Uint8Array(8 + payload.length);
  u8[0] = type;
  u8[1] = code;
  u8[4] = rest >>> 24;
  u8[5] = (rest >>> 16) & 255;
  u8[6] = (rest >>> 8) & 255;
  u8[7] = rest & 255;
  u8.set(payload, 8);
  icmpSetChecksum(u8, 0, u8.length);
  return u8;
}

export const PAYLOAD = new TextEncoder().encode('calitap-graph-test-payload');

export interface FlowOpts {
  ethSrc: string;
  ethDst?: string;
  src: string;
  dst: string;
  ttl?: number;
  id?: number;
  df?: boolean;
  options?: Uint8Array;
  payload?: Uint8Array;
  padTo?: number;
  sport?: number;
  dport?: number;
}

/** Ethernet + IPv4 + UDP with valid checksums. */
export function udp(o: FlowOpts): Uint8Array {
  return ip4({
    ethSrc: o.ethSrc,
    ethDst: o.ethDst,
    ipSrc: o.src,
    ipDst: o.dst,
    proto: IPPROTO_UDP,
    ttl: o.ttl,
    id: o.id,
    df: o.df,
    options: o.options,
    padTo: o.padTo,
    l4: udpL4(o.src, o.dst, o.sport ?? 40000, o.dport ?? 53, o.payload ?? PAYLOAD),
  });
}

/** Ethernet + IPv4 + ICMP echo request with valid checksums. */
export function ping(o: FlowOpts & { type?: number; code?: number }): Uint8Array {
  return ip4({
    ethSrc: o.ethSrc,
    ethDst: o.ethDst,
    ipSrc: o.src,
    ipDst: o.dst,
    proto: IPPROTO_ICMP,
    ttl: o.ttl,
    id: o.id,
    df: o.df,
    options: o.options,
    padTo: o.padTo,
    l4: icmpL4(o.type ?? 8, o.code ?? 0, 0x00070001, o.payload ?? PAYLOAD),
  });
}

export { ETHERTYPE_ARP, ETHERTYPE_IPV4 };

// ------------------------------------------------------------------------------ independent checks

/** One's-complement sum of 16-bit big-endian words (RFC 1071), folded, not complemented. */
export function sum16(u8: Uint8Array, off: number, len: number, init = 0): number {
  let s = init;
  for (let i = 0; i + 1 < len; i += 2) s += (u8[off + i] << 8) | u8[off + i + 1];
  if (len & 1) s += u8[off + len - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/** Frame field readers (Ethernet at 0, IPv4 at 14). */
export const f = {
  dstMac: (u8: Uint8Array) => macStr(u8, 0),
  srcMac: (u8: Uint8Array) => macStr(u8, 6),
  ethType: (u8: Uint8Array) => (u8[12] << 8) | u8[13],
  ihl: (u8: Uint8Array) => (u8[14] & 15) * 4,
  tos: (u8: Uint8Array) => u8[15],
  totLen: (u8: Uint8Array) => (u8[16] << 8) | u8[17],
  id: (u8: Uint8Array) => (u8[18] << 8) | u8[19],
  fragWord: (u8: Uint8Array) => (u8[20] << 8) | u8[21],
  ttl: (u8: Uint8Array) => u8[22],
  proto: (u8: Uint8Array) => u8[23],
  ipCsum: (u8: Uint8Array) => (u8[24] << 8) | u8[25],
  src: (u8: Uint8Array) => ipStr(((u8[26] << 24) | (u8[27] << 16) | (u8[28] << 8) | u8[29]) >>> 0),
  dst: (u8: Uint8Array) => ipStr(((u8[30] << 24) | (u8[31] << 16) | (u8[32] << 8) | u8[33]) >>> 0),
  l4: (u8: Uint8Array) => 14 + (u8[14] & 15) * 4,
};

/** The header checksum recomputed from scratch (checksum field taken as zero). */
export function ipCsumRecomputed(u8: Uint8Array): number {
  const hl = f.ihl(u8);
  const copy = u8.slice(14, 14 + hl);
  copy[10] = 0;
  copy[11] = 0;
  return ~sum16(copy, 0, hl) & 0xffff;
}

export function ipCsumOk(u8: Uint8Array): boolean {
  return f.ipCsum(u8) === ipCsumRecomputed(u8);
}

/** ICMP checksum over the whole ICMP message verifies. */
export function icmpCsumOk(u8: Uint8Array): boolean {
  const l4 = f.l4(u8);
  return sum16(u8, l4, 14 + f.totLen(u8) - l4) === 0xffff;
}

function pseudo(u8: Uint8Array, proto: number, l4len: number): number {
  return sum16(u8, 26, 8) + proto + l4len;
}

/** UDP checksum verifies (or is 0: none). */
export function udpCsumOk(u8: Uint8Array): boolean {
  const l4 = f.l4(u8);
  if (u8[l4 + 6] === 0 && u8[l4 + 7] === 0) return true;
  const ulen = (u8[l4 + 4] << 8) | u8[l4 + 5];
  return sum16(u8, l4, ulen, pseudo(u8, 17, ulen)) === 0xffff;
}
