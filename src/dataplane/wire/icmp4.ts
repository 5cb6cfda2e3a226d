// ICMPv4 (RFC 792) header, checked view, and the in-place error builder used by `ip4-icmp-error`
// (time exceeded, destination/port unreachable, fragmentation needed per RFC 1191 §4).
// Frames are (u8, off) views of the worker's packet arena, owned by the port layer; the error builder
// reuses the offending packet's own slot (the quote is shifted with `copyWithin`, no allocation) and
// never writes past the slot's `capacityEnd`. Runs on dataplane worker threads; `parseIcmp` is for
// tests and `--trace` only. Which packets may be answered follows RFC 1812 §4.3.2.7.
import { csumAdjust16, internetChecksum, onesSum } from './checksum.js';
import { ETH_DST, ETH_HLEN, ETH_SRC, ETH_TYPE, ETHERTYPE_IPV4, isMulticast, writeMac } from './ethernet.js';
import {
  emitIp4Header,
  ip4Dst,
  ip4FragWord,
  ip4Hlen,
  ip4Src,
  ip4TotalLen,
  IP4_MIN_HLEN,
  IP4_OFFMASK,
  IP4_PROTO,
  IP4_TOS,
  IPPROTO_ICMP,
} from './ipv4.js';

export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_SOURCE_QUENCH = 4;
export const ICMP_REDIRECT = 5;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_PARAM_PROBLEM = 12;
/** Highest type Linux knows (address mask reply); higher types are treated as errors (not answered). */
export const ICMP_MAX_KNOWN_TYPE = 18;

/** Destination unreachable codes (RFC 792; RFC 1191 §4 for frag-needed). */
export const ICMP_NET_UNREACH = 0;
export const ICMP_HOST_UNREACH = 1;
export const ICMP_PROT_UNREACH = 2;
export const ICMP_PORT_UNREACH = 3;
export const ICMP_FRAG_NEEDED = 4;
export const ICMP_NET_PROHIBITED = 9;
export const ICMP_HOST_PROHIBITED = 10;
export const ICMP_ADMIN_PROHIBITED = 13;
/** Time exceeded codes. */
export const ICMP_TTL_EXCEEDED = 0;
export const ICMP_FRAG_REASSEMBLY_EXCEEDED = 1;

export const ICMP_TYPE = 0;
export const ICMP_CODE = 1;
export const ICMP_CSUM = 2;
export const ICMP_ID = 4;
export const ICMP_SEQ = 6;
/** Next-hop MTU (RFC 1191 §4), low 16 bits of the second word of a frag-needed message. */
export const ICMP_MTU = 6;
export const ICMP_HLEN = 8;

/** RFC 1812 §4.3.2.3: an ICMP error datagram (IP header included) should not exceed 576 bytes. */
export const ICMP_ERROR_MAX_DATAGRAM = 576;
/** New IP header (20) + ICMP header (8) put in front of the quote. */
export const ICMP_ERROR_OVERHEAD = IP4_MIN_HLEN + ICMP_HLEN;
export const ICMP_ERROR_TTL = 64;

export const ICMP_OK = 0;
export const ICMP_ERR_SHORT = 1;
export const ICMP_ERR_CHECKSUM = 2;
/** Counter names indexed by `icmpCheck` result. */
export const ICMP_ERR_NAMES: readonly string[] = ['ok', 'short', 'bad-checksum'];

/** Checked view over `len` bytes of ICMP message at `off` (the checksum covers the whole message). */
export function icmpCheck(u8: Uint8Array, off: number, len: number): number {
  if (!(off >= 0) || !(len >= ICMP_HLEN) || off + len > u8.length) return ICMP_ERR_SHORT;
  if (onesSum(u8, off, len) !== 0xffff) return ICMP_ERR_CHECKSUM;
  return ICMP_OK;
}

/**
 * True for ICMP error messages (RFC 1122 §3.2.2: dest unreach, source quench, redirect, time exceeded,
 * parameter problem) and, as Linux does, for unknown types above 18: never answered with an error.
 */
export function icmpIsError(type: number): boolean {
  return (
    type === ICMP_DEST_UNREACH ||
    type === ICMP_SOURCE_QUENCH ||
    type === ICMP_REDIRECT ||
    type === ICMP_TIME_EXCEEDED ||
    type === ICMP_PARAM_PROBLEM ||
    type > ICMP_MAX_KNOWN_TYPE
  );
}

/** Recomputes the ICMP checksum over `len` bytes at `off`. */
export function icmpSetChecksum(u8: Uint8Array, off: number, len: number): void {
  u8[off + ICMP_CSUM] = 0;
  u8[off + ICMP_CSUM + 1] = 0;
  const c = internetChecksum(u8, off, len);
  u8[off + ICMP_CSUM] = c >>> 8;
  u8[off + ICMP_CSUM + 1] = c & 0xff;
}

/**
 * Rewrites the 16-bit echo identifier (ICMP NAT, RFC 5508 §3.1) with an incremental checksum update.
 */
export function icmpSetId(u8: Uint8Array, off: number, id: number): void {
  const old = (u8[off + ICMP_ID] << 8) | u8[off + ICMP_ID + 1];
  u8[off + ICMP_ID] = id >>> 8;
  u8[off + ICMP_ID + 1] = id & 0xff;
  const c = csumAdjust16((u8[off + ICMP_CSUM] << 8) | u8[off + ICMP_CSUM + 1], old, id & 0xffff);
  u8[off + ICMP_CSUM] = c >>> 8;
  u8[off + ICMP_CSUM + 1] = c & 0xff;
}

/** True when the address "does not define a single host" as a source: 0/8, 127/8, 224/4, 240/4. */
function badSource(ip: number): boolean {
  const a = ip >>> 24;
  return a === 0 || a === 127 || a >= 224;
}

/**
 * RFC 1812 §4.3.2.7: may the already `ip4Check`ed packet (Ethernet at `ethOff`, IPv4 at `ipOff`) be
 * answered with an ICMP error? Not when it is an ICMP error itself (or its type can't be read), a
 * non-initial fragment, sent to a link-layer broadcast/multicast, to IP limited broadcast or multicast,
 * or from a source that is not a single host (0/8, 127/8, multicast, class E incl. broadcast).
 * Directed (subnet) broadcasts are the caller's business: it knows its prefixes.
 */
export function icmpErrorAllowed(u8: Uint8Array, ethOff: number, ipOff: number): boolean {
  if (isMulticast(u8, ethOff + ETH_DST)) return false;
  if ((ip4FragWord(u8, ipOff) & IP4_OFFMASK) !== 0) return false;
  const dst = ip4Dst(u8, ipOff);
  if (dst === 0xffffffff || dst >>> 28 === 0xe) return false;
  if (badSource(ip4Src(u8, ipOff))) return false;
  if (u8[ipOff + IP4_PROTO] === IPPROTO_ICMP) {
    const hlen = ip4Hlen(u8, ipOff);
    if (ip4TotalLen(u8, ipOff) < hlen + 1) return false;
    if (icmpIsError(u8[ipOff + hlen + ICMP_TYPE])) return false;
  }
  return true;
}

/**
 * Turns the received Ethernet + IPv4 frame at `frameOff` (`frameLen` bytes, IPv4 already checked) into
 * an ICMP error back to its sender, in place:
 * - Ethernet: dst := original source MAC, src := `srcMac`, type IPv4;
 * - IPv4: src := `srcIp`, dst := original source, TTL 64, proto 1, id 0, DF clear, TOS =
 *   0xc0 | (original TOS & 0x1e) (internetwork-control precedence, RFC 1812 §4.3.2.5, as Linux does);
 * - ICMP: `type`/`code`, the second word zero except the next-hop MTU `mtuOrZero` (RFC 1191 §4);
 * - quote: the original IP datagram (header with its options + data, Ethernet padding excluded), cut so
 *   the error datagram is ≤ 576 bytes (RFC 1812 §4.3.2.3) and the frame ends by `capacityEnd`.
 * Returns the new frame length, or 0 when nothing was written because the frame is too short to hold an
 * IPv4 header or the slot cannot hold the new headers plus the whole original IP header.
 */
export function emitIcmpErrorInPlace(
  u8: Uint8Array,
  frameOff: number,
  frameLen: number,
  capacityEnd: number,
  type: number,
  code: number,
  mtuOrZero: number,
  srcIp: number,
  srcMac: Uint8Array,
): number {
  const ipOff = frameOff + ETH_HLEN;
  if (frameLen < ETH_HLEN + IP4_MIN_HLEN) return 0;
  const origHlen = ip4Hlen(u8, ipOff);
  let quote = ip4TotalLen(u8, ipOff);
  if (quote > frameLen - ETH_HLEN) quote = frameLen - ETH_HLEN;
  if (quote > ICMP_ERROR_MAX_DATAGRAM - ICMP_ERROR_OVERHEAD)
    quote = ICMP_ERROR_MAX_DATAGRAM - ICMP_ERROR_OVERHEAD;
  const room = capacityEnd - ipOff - ICMP_ERROR_OVERHEAD;
  if (quote > room) quote = room;
  if (quote < origHlen || quote < IP4_MIN_HLEN) return 0;

  const origSrc = ip4Src(u8, ipOff);
  const tos = 0xc0 | (u8[ipOff + IP4_TOS] & 0x1e);
  // Quote first (memmove semantics), then the headers over the freed space.
  const icmpOff = ipOff + IP4_MIN_HLEN;
  u8.copyWithin(icmpOff + ICMP_HLEN, ipOff, ipOff + quote);

  u8.copyWithin(frameOff + ETH_DST, frameOff + ETH_SRC, frameOff + ETH_SRC + 6);
  writeMac(u8, frameOff + ETH_SRC, srcMac);
  u8[frameOff + ETH_TYPE] = ETHERTYPE_IPV4 >>> 8;
  u8[frameOff + ETH_TYPE + 1] = ETHERTYPE_IPV4 & 0xff;

  const ipLen = ICMP_ERROR_OVERHEAD + quote;
  emitIp4Header(u8, ipOff, srcIp, origSrc, IPPROTO_ICMP, ipLen, ICMP_ERROR_TTL, 0, 0, tos);

  u8[icmpOff + ICMP_TYPE] = type;
  u8[icmpOff + ICMP_CODE] = code;
  u8[icmpOff + 4] = 0;
  u8[icmpOff + 5] = 0;
  u8[icmpOff + ICMP_MTU] = mtuOrZero >>> 8;
  u8[icmpOff + ICMP_MTU + 1] = mtuOrZero & 0xff;
  icmpSetChecksum(u8, icmpOff, ICMP_HLEN + quote);
  return ETH_HLEN + ipLen;
}

export interface IcmpRecord {
  type: number;
  code: number;
  checksum: number;
  /** second word: id/seq for echo, next-hop MTU in the low half for frag-needed, else unused */
  rest: number;
  id: number;
  seq: number;
  mtu: number;
  isError: boolean;
  /** offset of the quoted datagram (errors) or echo data */
  dataOff: number;
  dataLen: number;
  /** `icmpCheck` result */
  err: number;
  errName: string;
}

/** Parsed record for tests/trace; null when shorter than 8 bytes. Never throws. */
export function parseIcmp(u8: Uint8Array, off: number, len: number): IcmpRecord | null {
  const err = icmpCheck(u8, off, len);
  if (err === ICMP_ERR_SHORT) return null;
  const id = (u8[off + ICMP_ID] << 8) | u8[off + ICMP_ID + 1];
  const seq = (u8[off + ICMP_SEQ] << 8) | u8[off + ICMP_SEQ + 1];
  const type = u8[off + ICMP_TYPE];
  return {
    type,
    code: u8[off + ICMP_CODE],
    checksum: (u8[off + ICMP_CSUM] << 8) | u8[off + ICMP_CSUM + 1],
    rest: ((id << 16) | seq) >>> 0,
    id,
    seq,
    mtu: seq,
    isError: icmpIsError(type),
    dataOff: off + ICMP_HLEN,
    dataLen: len - ICMP_HLEN,
    err,
    errName: ICMP_ERR_NAMES[err],
  };
}
