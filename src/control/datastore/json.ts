// JSON as Go's encoding/json reads and writes it, for values shared with Calico through etcd.
//  - parse: lossless. IPAM blocks carry uint64 sequence numbers that JSON.parse would round above
//    2^53; integers that are not safe come back as bigint, other unsafe numbers as LosslessNumber
//    (the `lossless-json` package), so a value read and written back keeps every digit.
//  - stringify: compact, object keys in insertion order (callers build objects in Go's struct field
//    order), `GoMap` keys sorted as Go sorts map keys, and Go's default escaping of <, >, & and
//    U+2028/U+2029 — so what we store is byte-for-byte what libcalico-go would have written.
// Control thread; pure functions.
import { isInteger, isSafeNumber, LosslessNumber, parse } from 'lossless-json';

export type Json = null | boolean | number | bigint | string | LosslessNumber | Json[] | JsonObject | GoMap;
export interface JsonObject {
  [k: string]: Json | undefined;
}

/** A Go map: serialized with its keys sorted (byte order), as encoding/json does. */
export class GoMap extends Map<string, Json> {}

function parseNumber(text: string): number | bigint | LosslessNumber {
  if (isSafeNumber(text)) return Number(text);
  if (isInteger(text)) return BigInt(text);
  return new LosslessNumber(text);
}

/** Parses JSON text losslessly; throws SyntaxError on malformed text. */
export function parseJson(text: string): Json {
  return parse(text, null, parseNumber) as Json;
}

export function isObject(v: unknown): v is JsonObject {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    !(v instanceof Map) &&
    !(v instanceof LosslessNumber)
  );
}

const ESCAPES: Record<string, string> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};

function str(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => ESCAPES[c]);
}

function cmpBytes(a: string, b: string): number {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return Buffer.compare(x, y);
}

/** Compact JSON the way Go's json.Marshal writes it (see the header). `undefined` members are skipped. */
export function stringifyGo(v: Json | undefined): string {
  if (v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(v)) throw new TypeError(`cannot encode ${v} as JSON`);
      return String(v);
    case 'bigint':
      return v.toString();
    case 'string':
      return str(v);
  }
  if (v instanceof LosslessNumber) return v.value;
  if (Array.isArray(v)) return '[' + v.map((x) => stringifyGo(x)).join(',') + ']';
  if (v instanceof Map) {
    const keys = [...v.keys()].sort(cmpBytes);
    return '{' + keys.map((k) => `${str(k)}:${stringifyGo(v.get(k))}`).join(',') + '}';
  }
  const parts: string[] = [];
  for (const [k, x] of Object.entries(v)) if (x !== undefined) parts.push(`${str(k)}:${stringifyGo(x)}`);
  return '{' + parts.join(',') + '}';
}

/**
 * A copy of `obj` with the keys listed in `order` first, in that order, then the others in their
 * original order (fields Calico added after we wrote this keep their place after ours).
 */
export function ordered(obj: JsonObject, order: readonly string[]): JsonObject {
  const out: JsonObject = {};
  for (const k of order) if (Object.prototype.hasOwnProperty.call(obj, k)) out[k] = obj[k];
  for (const [k, x] of Object.entries(obj)) if (!(k in out)) out[k] = x;
  return out;
}

/** A plain JS value (from YAML or JSON.parse) as Json; Maps and bigints pass through. */
export function toJson(v: unknown): Json {
  if (v === undefined) return null;
  if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') return v;
  if (typeof v === 'bigint' || v instanceof LosslessNumber || v instanceof GoMap) return v;
  if (Array.isArray(v)) return v.map(toJson);
  if (v instanceof Date) return v.toISOString().replace(/\.\d{3}Z$/, 'Z');
  if (typeof v === 'object') {
    const o: JsonObject = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (x !== undefined) o[k] = toJson(x);
    return o;
  }
  return String(v);
}

/** Json → plain JS for YAML output and validation (bigints become numbers only when safe). */
export function toPlain(v: Json | undefined): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (v instanceof LosslessNumber) return Number(v.value);
  if (Array.isArray(v)) return v.map(toPlain);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [k, toPlain(x)]));
  if (typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) o[k] = toPlain(x);
    return o;
  }
  return v;
}
