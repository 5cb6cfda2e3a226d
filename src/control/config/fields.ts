// Typed field readers for config resources and the one way they fail: each takes the parent mapping,
// the key and the dotted path for messages, and throws one ConfigError line
// `<file>: <Kind> <name>: <field path> <value>: <reason>`. Control thread, during a load; no state.
import ipaddr from 'ipaddr.js';
import { formatPrefix4, normalizeMac, parseIp4, parsePrefix4, type Prefix4 } from '../../common/addr.js';
import { ConfigError } from '../../common/errors.js';
import type { BlockAffinityState, EncapMode } from './types.js';

/** Linux interface names as Felix accepts them (felix/config InterfaceRegex): 1..15 characters. */
export const IFACE_RE = /^[a-zA-Z0-9_.-]{1,15}$/;
export const ENCAP_MODES: readonly EncapMode[] = ['Always', 'CrossSubnet', 'Never'];
export const AFFINITY_STATES: readonly BlockAffinityState[] = ['confirmed', 'pending', 'pendingDeletion'];
export const LINK_LOCAL: Prefix4 = { addr: 0xa9fe0000, len: 16 }; // 169.254.0.0/16

/** Largest TCP/UDP port. */
export const MAX_PORT = 65535;
/** 4-octet AS numbers (RFC 6793) run 1..2^32-1; asdot halves are 16 bits each. */
export const MAX_AS = 0xffffffff;
const MAX_AS_HALF = 0xffff;

export type Obj = Record<string, unknown>;

export interface Where {
  file: string;
  /** "IPPool pool-a", or "IPPool at line 3" / "document 2 at line 7" before the name is known */
  what: string;
}

/** One-line rendering of a value for an error message. */
export function fmtValue(v: unknown): string {
  let s: string;
  if (typeof v === 'string') {
    s = v !== '' && /^[\x21-\x7e]+$/.test(v) ? v : JSON.stringify(v);
  } else if (typeof v === 'number' || typeof v === 'boolean' || v === null) {
    s = String(v);
  } else {
    try {
      s = JSON.stringify(v) ?? String(v);
    } catch {
      s = Array.isArray(v) ? '[...]' : '{...}';
    }
  }
  s = s.replace(/[\r\n]+/g, ' ');
  return s.length > 80 ? s.slice(0, 77) + '...' : s;
}

export const NO_VALUE = Symbol('no value');

export function fail(w: Where, path: string, value: unknown, reason: string): never {
  const v = value === NO_VALUE || value === undefined ? '' : ' ' + fmtValue(value);
  throw new ConfigError(`${w.file}: ${w.what}: ${path}${v}: ${reason.replace(/[\r\n]+/g, ' ')}`);
}

// ---------------------------------------------------------------------------------------------------
// Typed field readers (all take the parent object, the key and the dotted path for messages)

export function own(o: Obj, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined;
}

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : typeof v;
}

/** A sub-mapping; absent or null gives an empty object. */
export function mapping(w: Where, o: Obj, key: string, path: string): Obj {
  const v = own(o, key);
  if (v === undefined || v === null) return {};
  if (!isObj(v)) fail(w, path, v, `must be a mapping, got ${typeName(v)}`);
  return v;
}

export function optString(w: Where, o: Obj, key: string, path: string): string | undefined {
  const v = own(o, key);
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') fail(w, path, v, `must be a string, got ${typeName(v)}`);
  return v;
}

export function reqString(w: Where, o: Obj, key: string, path: string): string {
  const s = optString(w, o, key, path);
  if (s === undefined) fail(w, path, NO_VALUE, 'required');
  return s;
}

export function optBool(w: Where, o: Obj, key: string, path: string, dflt: boolean): boolean {
  const v = own(o, key);
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') fail(w, path, v, 'must be true or false');
  return v;
}

export function optInt(
  w: Where,
  o: Obj,
  key: string,
  path: string,
  lo: number,
  hi: number,
): number | undefined {
  const v = own(o, key);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(w, path, v, 'must be an integer');
  if (v < lo || v > hi) fail(w, path, v, `must be between ${lo} and ${hi}`);
  return v;
}

export function isIp6(text: string): boolean {
  return ipaddr.IPv6.isValid(text.split('/')[0]) && text.includes(':');
}

export function ip4(w: Where, o: Obj, key: string, path: string, required: boolean): number | undefined {
  const s = required ? reqString(w, o, key, path) : optString(w, o, key, path);
  if (s === undefined) return undefined;
  const ip = parseIp4(s);
  if (ip === null) fail(w, path, s, 'must be an IPv4 address like 10.0.0.1');
  return ip;
}

export function mac(w: Where, o: Obj, key: string, path: string, required: boolean): string | undefined {
  const s = required ? reqString(w, o, key, path) : optString(w, o, key, path);
  if (s === undefined) return undefined;
  const m = normalizeMac(s);
  if (m === null) fail(w, path, s, 'must be a MAC address like 52:54:00:12:34:56');
  return m;
}

/** A strict IPv4 CIDR (host bits clear). */
export function cidrValue(w: Where, path: string, s: string): Prefix4 {
  const p = parsePrefix4(s, true);
  if (p) return { addr: p.addr, len: p.len };
  const loose = parsePrefix4(s, false);
  if (loose) fail(w, path, s, `host bits set (the network is ${formatPrefix4(loose)})`);
  fail(w, path, s, 'must be an IPv4 CIDR like 10.65.0.0/16');
}

export function ifaceName(w: Where, o: Obj, key: string, path: string): string {
  const s = reqString(w, o, key, path);
  if (!IFACE_RE.test(s)) fail(w, path, s, 'must be 1-15 characters of letters, digits, "_", "." or "-"');
  return s;
}

/**
 * BGP AS number as Calico's numorstring.ASNumber accepts it: an integer, a decimal string, or the
 * "asdot" form "<high>.<low>". Valid 1..4294967295.
 */
export function asNumber(w: Where, o: Obj, key: string, path: string, required: boolean): number | undefined {
  const v = own(o, key);
  if (v === undefined || v === null || v === '') {
    if (required) fail(w, path, NO_VALUE, 'required');
    return undefined;
  }
  let n: number | undefined;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string') {
    const dot = /^(\d{1,5})\.(\d{1,5})$/.exec(v);
    if (/^\d{1,10}$/.test(v)) n = Number(v);
    else if (dot && Number(dot[1]) <= MAX_AS_HALF && Number(dot[2]) <= MAX_AS_HALF)
      n = Number(dot[1]) * (MAX_AS_HALF + 1) + Number(dot[2]);
  }
  if (n === undefined || !Number.isInteger(n) || n < 1 || n > MAX_AS)
    fail(w, path, v, `must be an AS number between 1 and ${MAX_AS}`);
  return n;
}

export function encapMode(w: Where, o: Obj, key: string, path: string): EncapMode {
  const s = optString(w, o, key, path);
  if (s === undefined) return 'Never';
  if (!(ENCAP_MODES as readonly string[]).includes(s))
    fail(w, path, s, `must be one of ${ENCAP_MODES.join(', ')}`);
  return s as EncapMode;
}
