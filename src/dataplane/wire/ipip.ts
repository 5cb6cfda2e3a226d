// IPIP (IPv4-in-IPv4, RFC 2003) outer header: the format only, no I/O. The outer header is a plain
// 20-byte IPv4 header with protocol 4 written into the headroom in front of the inner packet.
import { IP4_MIN_HLEN, IPPROTO_IPIP, emitIp4Header } from './ipv4.js';

/** Bytes IPIP adds in front of the inner IPv4 packet. */
export const IPIP_OVERHEAD = IP4_MIN_HLEN;
/** Outer TTL, as Calico's tunl0 (and RFC 2003 §3.1: the encapsulator chooses it). */
export const IPIP_TTL = 64;

/**
 * Writes the outer IPv4 header at `off` for an inner packet of `innerLen` bytes: DF and TOS copied
 * from the inner header (RFC 2003 §3.1, RFC 6040 normal mode for ECN), identification `id`.
 */
export function emitIpipOuter(
  u8: Uint8Array,
  off: number,
  src: number,
  dst: number,
  innerLen: number,
  innerDf: boolean,
  tos: number,
  id: number,
): void {
  emitIp4Header(
    u8,
    off,
    src,
    dst,
    IPPROTO_IPIP,
    IP4_MIN_HLEN + innerLen,
    IPIP_TTL,
    id,
    innerDf ? 0x4000 : 0,
    tos,
  );
}
