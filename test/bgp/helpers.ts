// Shared helpers for the BGP tests: hex conversion and message builders for hand-made vectors.
import type { Prefix4 } from '../../src/common/addr.js';
import { parsePrefix4 } from '../../src/common/addr.js';

export function hex(s: string): Uint8Array {
  const clean = s.replace(/[^0-9a-fA-F]/g, '');
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.substr(i * 2, 2), 16);
  return out;
}

export function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export function pfx(s: string): Prefix4 {
  const p = parsePrefix4(s);
  if (!p) throw new Error(`bad prefix ${s}`);
  return { addr: p.addr, len: p.len };
}

const MARKER = 'ffffffffffffffffffffffffffffffff';

/** Wraps a body (hex) in a BGP header with the right length. */
export function msg(type: number, bodyHex: string): Uint8Array {
  const body = hex(bodyHex);
  const len = 19 + body.length;
  return hex(MARKER + len.toString(16).padStart(4, '0') + type.toString(16).padStart(2, '0') + toHex(body));
}

/** An UPDATE from raw withdrawn/attribute/NLRI hex parts. */
export function update(withdrawnHex: string, attrsHex: string, nlriHex: string): Uint8Array {
  const w = hex(withdrawnHex);
  const a = hex(attrsHex);
  return msg(
    2,
    w.length.toString(16).padStart(4, '0') +
      withdrawnHex +
      a.length.toString(16).padStart(4, '0') +
      attrsHex +
      nlriHex,
  );
}

/** ORIGIN IGP, AS_PATH [65001] (4-octet), NEXT_HOP 10.0.0.1 */
export const BASE_ATTRS4 = '40010100' + '40020602010000fde9' + '4003040a000001';
