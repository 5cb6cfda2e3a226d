// Calico's scoping rules, in one place: the labels an endpoint is matched on (its own, its profiles'
// and its namespace's), the selector a policy applies to (namespaced for NetworkPolicy, narrowed by a
// GlobalNetworkPolicy's namespaceSelector), the endpoints a rule's source/destination selects
// (libcalico-go updateprocessors getEndpointSelector), and the order tiers and policies are applied
// in (felix/calc/policy_sorter.go). Pure functions on the control thread.
import { andSelectors, parseSelector, prefixSelector, type Selector } from './selector.js';
import {
  DEFAULT_TIER_ORDER,
  LABEL_NAME,
  LABEL_NAMESPACE,
  NAMESPACE_LABEL_PREFIX,
  NAMESPACE_PROFILE_PREFIX,
  type EntityMatch,
  type NamespaceResource,
  type PolicyEndpoint,
  type PolicyResource,
  type ProfileResource,
  type TierResource,
} from './types.js';

const SERVICE_ACCOUNT_LABEL_PREFIX = 'pcsa.';

/** The profiles an endpoint uses: its own list, or its namespace's `kns.<namespace>`. */
export function endpointProfiles(ep: PolicyEndpoint): readonly string[] {
  return ep.profiles ?? [NAMESPACE_PROFILE_PREFIX + ep.namespace];
}

/**
 * The labels selectors see on an endpoint, most important first: its own labels (less any
 * `pcns.` / `pcsa.` ones, which Calico reserves) and projectcalico.org/namespace; then each
 * profile's labelsToApply in order; then its namespace's labels as `pcns.<key>` plus
 * `pcns.projectcalico.org/name` (what Calico's namespace profiles carry).
 */
export function effectiveLabels(
  ep: PolicyEndpoint,
  profiles: ReadonlyMap<string, ProfileResource>,
  namespaces: ReadonlyMap<string, NamespaceResource>,
): Map<string, string> {
  const m = new Map<string, string>();
  const ns = namespaces.get(ep.namespace);
  m.set(NAMESPACE_LABEL_PREFIX + LABEL_NAME, ep.namespace);
  if (ns !== undefined) for (const [k, v] of Object.entries(ns.labels)) m.set(NAMESPACE_LABEL_PREFIX + k, v);
  const profs = endpointProfiles(ep);
  for (let k = profs.length - 1; k >= 0; k--) {
    const p = profiles.get(profs[k]);
    if (p !== undefined) for (const [key, v] of Object.entries(p.labelsToApply)) m.set(key, v);
  }
  for (const [k, v] of Object.entries(ep.labels)) {
    if (k.startsWith(NAMESPACE_LABEL_PREFIX) || k.startsWith(SERVICE_ACCOUNT_LABEL_PREFIX)) continue;
    m.set(k, v);
  }
  m.set(LABEL_NAMESPACE, ep.namespace);
  return m;
}

const nsEquals = (ns: string): Selector => ({ op: 'eq', label: LABEL_NAMESPACE, value: ns });
const nsSelectorOf = (text: string): Selector =>
  prefixSelector(parseSelector(text), NAMESPACE_LABEL_PREFIX, LABEL_NAMESPACE);

/** The endpoints a policy applies to (before its types decide the directions). */
export function policySelector(p: PolicyResource): Selector {
  const own = parseSelector(p.selector);
  if (p.kind === 'NetworkPolicy') return andSelectors(own, nsEquals(p.namespace ?? 'default'));
  if (p.namespaceSelector !== undefined) return andSelectors(own, nsSelectorOf(p.namespaceSelector));
  return own;
}

/**
 * A rule side's selectors: `positive` (the address must belong to an endpoint it selects; absent:
 * no such condition) and `negative` (notSelector: it must not). `ns` is the namespace of a
 * NetworkPolicy (undefined for global policies and profiles): any selector field then limits the
 * positive match to that namespace, as Calico does; notSelector itself is never namespaced.
 */
export function entitySelectors(
  e: EntityMatch,
  ns: string | undefined,
): { positive?: Selector; negative?: Selector } {
  let nsSel: Selector | undefined;
  if (e.namespaceSelector !== undefined) nsSel = nsSelectorOf(e.namespaceSelector);
  else if (ns !== undefined) nsSel = nsEquals(ns);
  let positive = e.selector === undefined ? undefined : parseSelector(e.selector);
  if (
    nsSel !== undefined &&
    (positive !== undefined || e.notSelector !== undefined || e.namespaceSelector !== undefined)
  )
    positive = positive === undefined ? nsSel : andSelectors(nsSel, positive);
  const out: { positive?: Selector; negative?: Selector } = {};
  if (positive !== undefined) out.positive = positive;
  if (e.notSelector !== undefined) out.negative = parseSelector(e.notSelector);
  return out;
}

/** A tier's place: order (absent: last), then name (felix TierLess). */
export interface TierKey {
  name: string;
  order: number;
}

export function tierKey(name: string, tiers: ReadonlyMap<string, TierResource>): TierKey {
  const t = tiers.get(name);
  if (t === undefined) return { name, order: name === 'default' ? DEFAULT_TIER_ORDER : Infinity };
  return { name, order: t.order ?? Infinity };
}

export function cmpTier(a: TierKey, b: TierKey): number {
  if (a.order !== b.order) return a.order < b.order ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** A policy's identity: `<namespace>/<name>` for NetworkPolicy, `<name>` for global ones. */
export function policyKey(p: PolicyResource): string {
  return p.kind === 'NetworkPolicy' ? `${p.namespace ?? 'default'}/${p.name}` : p.name;
}

/** Felix's order within a tier: order (absent: +Inf), then "name/namespace/kind" (PolKVLess). */
export function cmpPolicy(a: PolicyResource, b: PolicyResource): number {
  const oa = a.order ?? Infinity;
  const ob = b.order ?? Infinity;
  if (oa !== ob) return oa < ob ? -1 : 1;
  const sa = `${a.name}/${a.namespace ?? ''}/${a.kind}`;
  const sb = `${b.name}/${b.namespace ?? ''}/${b.kind}`;
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}
