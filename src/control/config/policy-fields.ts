// Typed field readers for the policy kinds (policy-load.ts): each takes the parent object, the key and
// the dotted path, and throws one ConfigError line `<file>: <Kind> <name>: <path> <value>: <reason>`
// (the same format as load.ts). Kubernetes label and name rules live here too. Control thread only.
import { ConfigError } from '../../common/errors.js';

export type Obj = Record<string, unknown>;

export interface Where {
  file: string;
  what: string;
}

/** One-line rendering of a value for an error message. */
export function fmtValue(v: unknown): string {
  let s: string;
  if (typeof v === 'string') s = v !== '' && /^[\x21-\x7e]+$/.test(v) ? v : JSON.stringify(v);
  else if (typeof v === 'number' || typeof v === 'boolean' || v === null) s = String(v);
  else {
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

/** A list; absent or null gives an empty list. */
export function list(w: Where, o: Obj, key: string, path: string, max?: number): unknown[] {
  const v = own(o, key);
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) fail(w, path, v, `must be a list, got ${typeName(v)}`);
  if (max !== undefined && v.length > max)
    fail(w, path, NO_VALUE, `${v.length} items, at most ${max} allowed`);
  return v;
}

export function optString(w: Where, o: Obj, key: string, path: string): string | undefined {
  const v = own(o, key);
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') fail(w, path, v, `must be a string, got ${typeName(v)}`);
  return v;
}

export function optBool(w: Where, o: Obj, key: string, path: string): boolean {
  const v = own(o, key);
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') fail(w, path, v, 'must be true or false');
  return v;
}

export function optNumber(w: Where, o: Obj, key: string, path: string): number | undefined {
  const v = own(o, key);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(w, path, v, 'must be a number');
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

/** Kubernetes DNS-1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters. */
export const DNS_LABEL_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** A label name part or value: [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, at most 63 characters. */
const LABEL_PART_RE = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** Why `k` is not a Kubernetes qualified name (label key), or null when it is one. */
export function labelKeyProblem(k: string): string | null {
  const slash = k.indexOf('/');
  const name = slash < 0 ? k : k.slice(slash + 1);
  if (slash >= 0) {
    const prefix = k.slice(0, slash);
    if (prefix.length === 0 || prefix.length > 253 || !DNS_SUBDOMAIN_RE.test(prefix))
      return 'the prefix before "/" must be a DNS subdomain (lower-case, at most 253 characters)';
  }
  if (name.length === 0 || name.length > 63 || !LABEL_PART_RE.test(name))
    return 'must be at most 63 alphanumerics, "-", "_" or "." (optionally after "<dns-prefix>/"), starting and ending alphanumeric';
  return null;
}

/** Why `v` is not a Kubernetes label value, or null when it is one. */
export function labelValueProblem(v: string): string | null {
  if (v === '') return null;
  if (v.length > 63 || !LABEL_PART_RE.test(v))
    return 'must be at most 63 alphanumerics, "-", "_" or ".", starting and ending alphanumeric';
  return null;
}

/** A label map (metadata.labels, spec.labelsToApply): string keys and values, Kubernetes rules. */
export function labelMap(w: Where, o: Obj, key: string, path: string): Record<string, string> {
  const m = mapping(w, o, key, path);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) {
    const p = `${path}.${k}`;
    const kp = labelKeyProblem(k);
    if (kp !== null) fail(w, p, k, `label name ${kp}`);
    // YAML turns `tier: 1` or `enabled: true` into non-strings; Kubernetes refuses them too
    if (typeof v !== 'string') fail(w, p, v, `label value must be a string, got ${typeName(v)}`);
    const vp = labelValueProblem(v);
    if (vp !== null) fail(w, p, v, `label value ${vp}`);
    out[k] = v;
  }
  return out;
}

/** Kubernetes IsValidPortName: 1-15 of [a-z0-9-], at least one letter, no leading/trailing/double '-'. */
export function validPortName(s: string): boolean {
  return (
    s.length >= 1 &&
    s.length <= 15 &&
    /^[a-z0-9-]+$/.test(s) &&
    /[a-z]/.test(s) &&
    !s.startsWith('-') &&
    !s.endsWith('-') &&
    !s.includes('--')
  );
}
