// ARP for Ethernet/IPv4 only (RFC 826; probes and announcements per RFC 5227 §2.1.1, §2.3).
// Frames come from workload TAP ports as views of the worker's packet arena (owned by the port layer);
// the `arp-reply` node answers requests by rewriting the received frame in place, and the neighbour
// resolver emits requests into fresh arena slots. Runs on dataplane worker threads. Offsets below are
// relative to the ARP header (the Ethernet payload), except where a function takes `ethOff`.
import { formatMac } from '../../common/addr.js';
import { ETH_DST, ETH_HLEN, ETH_SRC, ETH_TYPE, ETHERTYPE_ARP, ETHERTYPE_IPV4, writeMac } from './ethernet.js';

export const ARP_HTYPE = 0;
export const ARP_PTYPE = 2;
export const ARP_HLEN = 4;
export const ARP_PLEN = 5;
export const ARP_OPER = 6;
export const ARP_SHA = 8;
export const ARP_SPA = 14;
export const ARP_THA = 18;
export const ARP_TPA = 24;
/** Length of an Ethernet/IPv4 ARP packet. */
export const ARP_LEN = 28;
/** Ethernet + ARP, unpadded. Linux sends 42-byte ARP frames on TAP (the NIC pads to 60 on the wire). */
export const ARP_FRAME_LEN = ETH_HLEN + ARP_LEN;

export const ARP_HTYPE_ETHERNET = 1;
export const ARP_OP_REQUEST = 1;
export const ARP_OP_REPLY = 2;

export const ARP_OK = 0;
export const ARP_ERR_SHORT = 1;
/** hardware type not Ethernet (1) or protocol type not IPv4 (0x0800) */
export const ARP_ERR_NOT_ETH_IP4 = 2;
/** hardware length not 6 or protocol length not 4 */
export const ARP_ERR_ADDR_LEN = 3;
/** operation neither request (1) nor reply (2) */
export const ARP_ERR_OP = 4;
/** Counter names indexed by `arpCheck` result. */
export const ARP_ERR_NAMES: readonly string[] = [
  'ok',
  'short',
  'not-ethernet-ipv4',
  'bad-address-length',
  'bad-op',
];

function rd16(u8: Uint8Array, o: number): number {
  return (u8[o] << 8) | u8[o + 1];
}
function rd32(u8: Uint8Array, o: number): number {
  return ((u8[o] << 24) | (u8[o + 1] << 16) | (u8[o + 2] << 8) | u8[o + 3]) >>> 0;
}
function wr16(u8: Uint8Array, o: number, v: number): void {
  u8[o] = v >>> 8;
  u8[o + 1] = v;
}
function wr32(u8: Uint8Array, o: number, v: number): void {
  u8[o] = v >>> 24;
  u8[o + 1] = v >>> 16;
  u8[o + 2] = v >>> 8;
  u8[o + 3] = v;
}

/** Checked view over `len` bytes of ARP header at `off` (trailing Ethernet padding is fine). */
export function arpCheck(u8: Uint8Array, off: number, len: number): number {
  if (!(off >= 0) || !(len >= ARP_LEN) || off + len > u8.length) return ARP_ERR_SHORT;
  if (rd16(u8, off + ARP_HTYPE) !== ARP_HTYPE_ETHERNET || rd16(u8, off + ARP_PTYPE) !== ETHERTYPE_IPV4) {
    return ARP_ERR_NOT_ETH_IP4;
  }
  if (u8[off + ARP_HLEN] !== 6 || u8[off + ARP_PLEN] !== 4) return ARP_ERR_ADDR_LEN;
  const op = rd16(u8, off + ARP_OPER);
  if (op !== ARP_OP_REQUEST && op !== ARP_OP_REPLY) return ARP_ERR_OP;
  return ARP_OK;
}

export function arpOp(u8: Uint8Array, off: number): number {
  return rd16(u8, off + ARP_OPER);
}
export function arpSpa(u8: Uint8Array, off: number): number {
  return rd32(u8, off + ARP_SPA);
}
export function arpTpa(u8: Uint8Array, off: number): number {
  return rd32(u8, off + ARP_TPA);
}

/**
 * RFC 5227 §2.1.1 ARP Probe: a request with sender IP 0.0.0.0 (duplicate address detection, also
 * DHCP clients per RFC 2131 §4.4.1). Must not be used to learn a neighbour. Linux still answers a probe
 * for one of its addresses (reply tpa = 0.0.0.0, tha = prober's MAC): `arpRewriteToReply` does the same.
 */
export function arpIsProbe(u8: Uint8Array, off: number): boolean {
  return rd16(u8, off + ARP_OPER) === ARP_OP_REQUEST && rd32(u8, off + ARP_SPA) === 0;
}

/**
 * Gratuitous ARP / RFC 5227 §2.3 ARP Announcement: sender IP == target IP (≠ 0), request or reply.
 * It updates caches but asks nothing: the graph must not answer it.
 */
export function arpIsGratuitous(u8: Uint8Array, off: number): boolean {
  const spa = rd32(u8, off + ARP_SPA);
  return spa !== 0 && spa === rd32(u8, off + ARP_TPA);
}

function emitArpBody(
  u8: Uint8Array,
  a: number,
  op: number,
  sha: Uint8Array,
  spa: number,
  tha: Uint8Array | null,
  tpa: number,
): void {
  wr16(u8, a + ARP_HTYPE, ARP_HTYPE_ETHERNET);
  wr16(u8, a + ARP_PTYPE, ETHERTYPE_IPV4);
  u8[a + ARP_HLEN] = 6;
  u8[a + ARP_PLEN] = 4;
  wr16(u8, a + ARP_OPER, op);
  writeMac(u8, a + ARP_SHA, sha);
  wr32(u8, a + ARP_SPA, spa);
  if (tha === null) u8.fill(0, a + ARP_THA, a + ARP_THA + 6);
  else writeMac(u8, a + ARP_THA, tha);
  wr32(u8, a + ARP_TPA, tpa);
}

function emitEthHeader(u8: Uint8Array, off: number, dst: Uint8Array | null, src: Uint8Array): void {
  if (dst === null) u8.fill(0xff, off + ETH_DST, off + ETH_DST + 6);
  else writeMac(u8, off + ETH_DST, dst);
  writeMac(u8, off + ETH_SRC, src);
  wr16(u8, off + ETH_TYPE, ETHERTYPE_ARP);
}

/**
 * Writes a broadcast Ethernet + ARP request "who has targetIp, tell srcIp" at `off` (tha zeroed, as
 * Linux does). Returns the frame length, 42: no padding to 60, TAP does not need it.
 */
export function emitArpRequest(
  u8: Uint8Array,
  off: number,
  srcMac: Uint8Array,
  srcIp: number,
  targetIp: number,
): number {
  emitEthHeader(u8, off, null, srcMac);
  emitArpBody(u8, off + ETH_HLEN, ARP_OP_REQUEST, srcMac, srcIp, null, targetIp);
  return ARP_FRAME_LEN;
}

/** Writes a unicast Ethernet + ARP reply "srcIp is at srcMac" to dstMac/dstIp. Returns 42. */
export function emitArpReply(
  u8: Uint8Array,
  off: number,
  srcMac: Uint8Array,
  srcIp: number,
  dstMac: Uint8Array,
  dstIp: number,
): number {
  emitEthHeader(u8, off, dstMac, srcMac);
  emitArpBody(u8, off + ETH_HLEN, ARP_OP_REPLY, srcMac, srcIp, dstMac, dstIp);
  return ARP_FRAME_LEN;
}

/**
 * Turns the request frame at `ethOff` (already `arpCheck`ed) into its reply in place, RFC 826 "swap
 * hardware and protocol fields": tha/tpa := old sha/spa, sha := replyMac, spa := old tpa, op := reply,
 * Ethernet dst := requester's sha, Ethernet src := replyMac. The frame length is unchanged (any padding
 * stays). Allocates nothing: the old sha is copied before being overwritten.
 */
export function arpRewriteToReply(u8: Uint8Array, ethOff: number, replyMac: Uint8Array): void {
  const a = ethOff + ETH_HLEN;
  const spa = rd32(u8, a + ARP_SPA);
  const tpa = rd32(u8, a + ARP_TPA);
  // Requester's MAC goes to tha (from sha) and to the Ethernet destination.
  u8.copyWithin(a + ARP_THA, a + ARP_SHA, a + ARP_SHA + 6);
  u8.copyWithin(ethOff + ETH_DST, a + ARP_SHA, a + ARP_SHA + 6);
  writeMac(u8, a + ARP_SHA, replyMac);
  writeMac(u8, ethOff + ETH_SRC, replyMac);
  wr32(u8, a + ARP_SPA, tpa);
  wr32(u8, a + ARP_TPA, spa);
  wr16(u8, a + ARP_OPER, ARP_OP_REPLY);
}

export interface ArpRecord {
  htype: number;
  ptype: number;
  hlen: number;
  plen: number;
  op: number;
  sha: string;
  spa: number;
  tha: string;
  tpa: number;
  probe: boolean;
  gratuitous: boolean;
  /** `arpCheck` result */
  err: number;
  errName: string;
}

/** Parsed record for tests/trace; null when shorter than 28 bytes. Never throws. */
export function parseArp(u8: Uint8Array, off: number, len: number): ArpRecord | null {
  const err = arpCheck(u8, off, len);
  if (err === ARP_ERR_SHORT) return null;
  return {
    htype: rd16(u8, off + ARP_HTYPE),
    ptype: rd16(u8, off + ARP_PTYPE),
    hlen: u8[off + ARP_HLEN],
    plen: u8[off + ARP_PLEN],
    op: rd16(u8, off + ARP_OPER),
    sha: formatMac(u8, off + ARP_SHA),
    spa: rd32(u8, off + ARP_SPA),
    tha: formatMac(u8, off + ARP_THA),
    tpa: rd32(u8, off + ARP_TPA),
    probe: arpIsProbe(u8, off),
    gratuitous: arpIsGratuitous(u8, off),
    err,
    errName: ARP_ERR_NAMES[err],
  };
}
