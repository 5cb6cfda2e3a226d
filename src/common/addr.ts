// IPv4 address, prefix and MAC helpers shared by control and dataplane *set-up* code.
// IPv4 addresses are unsigned 32-bit numbers (host order, `>>> 0`); MACs are 6-byte Uint8Arrays or
// their canonical lower-case colon form. Parsing uses ipaddr.js (off the hot path only); the hot path
// reads addresses straight out of packet bytes and never calls into this module.
import ipaddr from 'ipaddr.js';

export interface Prefix4 {
  /** network address, host bits cleared */
  readonly addr: number;
  readonly len: number;
}

/** Parses dotted-quad IPv4 text; returns null when it is not exactly an IPv4 address. */
export function parseIp4(text: string): number | null {
  if (typeof text !== 'string' || !ipaddr.IPv4.isValidFourPartDecimal(text)) return null;
  const b = ipaddr.IPv4.parse(text).octets;
  return ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
}

export function formatIp4(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

export function maskOf(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/**
 * Parses `a.b.c.d/len`. With `strict`, host bits must be zero (a CIDR); without, they are cleared
 * and `host` keeps the address as written (an interface address such as 192.168.1.10/24).
 */
export function parsePrefix4(text: string, strict = true): (Prefix4 & { host: number }) | null {
  if (typeof text !== 'string') return null;
  const slash = text.indexOf('/');
  if (slash < 0) return null;
  const ip = parseIp4(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (ip === null || !/^\d{1,2}$/.test(lenText)) return null;
  const len = Number(lenText);
  if (len > 32) return null;
  const addr = (ip & maskOf(len)) >>> 0;
  if (strict && addr !== ip) return null;
  return { addr, len, host: ip };
}

export function formatPrefix4(p: Prefix4): string {
  return `${formatIp4(p.addr)}/${p.len}`;
}

export function prefixContains(p: Prefix4, ip: number): boolean {
  return (ip & maskOf(p.len)) >>> 0 === p.addr;
}

/** True when `inner` lies entirely inside `outer`. */
export function prefixCovers(outer: Prefix4, inner: Prefix4): boolean {
  return inner.len >= outer.len && prefixContains(outer, inner.addr);
}

export function prefixesOverlap(a: Prefix4, b: Prefix4): boolean {
  return a.len <= b.len ? prefixContains(a, b.addr) : prefixContains(b, a.addr);
}

const MAC_RE = /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$/;

/** Parses `aa:bb:cc:dd:ee:ff` (or with dashes); returns null when malformed. */
export function parseMac(text: string): Uint8Array | null {
  if (typeof text !== 'string' || !MAC_RE.test(text)) return null;
  const out = new Uint8Array(6);
  for (let i = 0; i < 6; i++) out[i] = parseInt(text.substr(i * 3, 2), 16);
  return out;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function formatMac(bytes: Uint8Array, off = 0): string {
  let s = HEX[bytes[off]];
  for (let i = 1; i < 6; i++) s += ':' + HEX[bytes[off + i]];
  return s;
}

/** Canonical form of a MAC string, or null. */
export function normalizeMac(text: string): string | null {
  const b = parseMac(text);
  return b ? formatMac(b) : null;
}

/** Calico's host-side MAC for every workload link (the 169.254.1.1 trick). */
export const CALICO_HOST_MAC = 'ee:ee:ee:ee:ee:ee';
/** The gateway address every Calico workload routes through. */
export const CALICO_GATEWAY_IP = 0xa9fe0101; // 169.254.1.1
