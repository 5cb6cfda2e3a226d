// Typed field readers for the policy kinds (policy-load.ts): each takes the parent object, the key and
// the dotted path, and throws one ConfigError line `<file>: <Kind> <name>: <path> <value>: <reason>`
// (the same format as load.ts). Kubernetes label and name rules live here too. Control thread only.
import {
  NO_VALUE,
  fail,
  mapping,
  optBool as optBoolOr,
  own,
  typeName,
  type Obj,
  type Where,
} from './fields.js';

// the readers both loaders share live in fields.ts; re-exported for policy-load.ts
export {
  NO_VALUE,
  fail,
  fmtValue,
  isObj,
  mapping,
  optInt,
  optString,
  own,
  typeName,
  type Obj,
  type Where,
} from './fields.js';

/** A list; absent or null gives an empty list. */
export function list(w: Where, o: Obj, key: string, path: string, max?: number): unknown[] {
  const v = own(o, key);
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) fail(w, path, v, `must be a list, got ${typeName(v)}`);
  if (max !== undefined && v.length > max)
    fail(w, path, NO_VALUE, `${v.length} items, at most ${max} allowed`);
  return v;
}

/** A boolean; absent or null is false. */
export function optBool(w: Where, o: Obj, key: string, path: string): boolean {
  return optBoolOr(w, o, key, path, false);
}

export function optNumber(w: Where, o: Obj, key: string, path: string): number | undefined {
  const v = own(o, key);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(w, path, v, 'must be a number');
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
