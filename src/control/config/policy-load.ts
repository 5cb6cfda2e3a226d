// Policy kinds of the config file: Calico v3 NetworkPolicy, GlobalNetworkPolicy, Profile and Tier,
// Kubernetes v1 Namespace (its labels, for namespaceSelector), and the policy fields of a
// WorkloadEndpoint (metadata.labels, spec.profiles, spec.ports). Raw resources in (from load.ts),
// validated records of control/policy/types.ts out; one ConfigError line naming file, resource,
// field and value on the first problem, so a policy is never half-applied. Control thread only.
// Validation follows Calico's API (api/pkg/apis/projectcalico/v3 CEL rules, libcalico-go's v3
// validator: validateRule, validateEntityRule, name regexes, kubebuilder limits).
import { parsePrefix4, type Prefix4 } from '../../common/addr.js';
import { parseSelector, usesGlobal, type Selector } from '../policy/selector.js';
import {
  DEFAULT_TIER,
  DEFAULT_TIER_ORDER,
  LIMITS,
  PROTOCOL_NUMBERS,
  PROTO_ICMP,
  PROTO_ICMPV6,
  protocolHasPorts,
  type Direction,
  type EndpointPort,
  type EntityMatch,
  type IcmpMatch,
  type NamespaceResource,
  type PolicyAction,
  type PolicyConfig,
  type PolicyResource,
  type PolicyRule,
  type PortMatch,
  type ProfileResource,
  type TierDefaultAction,
  type TierResource,
} from '../policy/types.js';
import {
  DNS_LABEL_RE,
  fail,
  isObj,
  labelMap,
  list,
  mapping,
  NO_VALUE,
  optBool,
  optInt,
  optNumber,
  optString,
  own,
  typeName,
  validPortName,
  type Obj,
  type Where,
} from './policy-fields.js';

/** The part of load.ts's raw resource the policy kinds read. */
export interface RawPolicyResource {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
  /** metadata (labels live there) */
  meta?: Obj;
  spec: Obj;
  where: Where;
}

export const POLICY_KINDS = ['NetworkPolicy', 'GlobalNetworkPolicy', 'Profile', 'Tier'] as const;
const KUBE_API_VERSION = 'v1';

/** Is this a kind the policy loader reads (Calico's policy kinds, or a Kubernetes Namespace)? */
export function isPolicyKind(apiVersion: string, kind: string): boolean {
  if (apiVersion === KUBE_API_VERSION && kind === 'Namespace') return true;
  return apiVersion === 'projectcalico.org/v3' && (POLICY_KINDS as readonly string[]).includes(kind);
}

/** Namespaced kinds among them: names are unique per namespace. */
export function policyKindNamespaced(kind: string): boolean {
  return kind === 'NetworkPolicy';
}

const ACTIONS: readonly PolicyAction[] = ['Allow', 'Deny', 'Pass', 'Log'];
const NAME_LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const SUBDOMAIN = `${NAME_LABEL}(\\.${NAME_LABEL})*`;
const NETWORK_POLICY_NAME_RE = new RegExp(
  `^((${NAME_LABEL})(\\.${NAME_LABEL})?|((knp|ossg)\\.default\\.(${SUBDOMAIN})))$`,
);
const GLOBAL_POLICY_NAME_RE = new RegExp(`^(${NAME_LABEL}\\.)?${NAME_LABEL}$`);
/** Calico's well-known tiers and the order/default action its CEL rules require of them. */
const WELL_KNOWN_TIERS: Record<string, { order: number; action: TierDefaultAction }> = {
  default: { order: DEFAULT_TIER_ORDER, action: 'Deny' },
  'kube-admin': { order: 1_000, action: 'Pass' },
  'kube-baseline': { order: 10_000_000, action: 'Pass' },
};

/** Collects the policy resources of one load; `finish` cross-checks them. */
export class PolicyLoader {
  private readonly tiers = new Map<string, TierResource>();
  private readonly policies: { p: PolicyResource; w: Where }[] = [];
  private readonly profiles = new Map<string, ProfileResource>();
  private readonly namespaces = new Map<string, NamespaceResource>();

  /** Reads one resource of a policy kind (see isPolicyKind). */
  add(r: RawPolicyResource): void {
    switch (r.kind) {
      case 'NetworkPolicy':
      case 'GlobalNetworkPolicy':
        this.policies.push({ p: toPolicy(r), w: r.where });
        return;
      case 'Profile':
        this.profiles.set(r.name, toProfile(r));
        return;
      case 'Tier':
        this.tiers.set(r.name, toTier(r));
        return;
      case 'Namespace':
        this.namespaces.set(r.name, {
          name: r.name,
          labels: labelMap(r.where, r.meta ?? {}, 'labels', 'metadata.labels'),
        });
        return;
    }
  }

  /**
   * Checks across resources (policies name existing tiers) and returns the policy model, or
   * undefined when the configuration has no policy resource at all.
   */
  finish(): PolicyConfig | undefined {
    const none = this.tiers.size + this.policies.length + this.profiles.size + this.namespaces.size === 0;
    if (none) return undefined;
    for (const { p, w } of this.policies) {
      if (p.tier !== DEFAULT_TIER && !this.tiers.has(p.tier))
        fail(w, 'spec.tier', p.tier, 'no Tier with this name');
    }
    return {
      tiers: this.tiers,
      policies: this.policies.map((x) => x.p),
      profiles: this.profiles,
      namespaces: this.namespaces,
    };
  }
}

/**
 * The policy fields of a WorkloadEndpoint: metadata.labels, spec.profiles, spec.ports (only those
 * present, so endpoints without them compare as before).
 */
export function endpointPolicyFields(r: RawPolicyResource): {
  labels?: Record<string, string>;
  profiles?: string[];
  ports?: EndpointPort[];
} {
  const w = r.where;
  const labels = labelMap(w, r.meta ?? {}, 'labels', 'metadata.labels');
  const orch = optString(w, r.spec, 'orchestrator', 'spec.orchestrator');
  // Calico's client stamps the orchestrator on the endpoint as a label (projectcalico.org/orchestrator)
  if (orch !== undefined) labels['projectcalico.org/orchestrator'] = orch;
  const out: { labels?: Record<string, string>; profiles?: string[]; ports?: EndpointPort[] } = {};
  if (Object.keys(labels).length > 0) out.labels = labels;
  const ports: EndpointPort[] = [];
  const profs = own(r.spec, 'profiles');
  if (profs !== undefined && profs !== null) {
    out.profiles = list(w, r.spec, 'profiles', 'spec.profiles').map((p, i) => {
      if (typeof p !== 'string' || p === '') fail(w, `spec.profiles[${i}]`, p, 'must be a profile name');
      return p;
    });
  }
  const seen = new Set<string>();
  list(w, r.spec, 'ports', 'spec.ports').forEach((p, i) => {
    const path = `spec.ports[${i}]`;
    if (!isObj(p)) fail(w, path, p, `must be a mapping with name, protocol and port, got ${typeName(p)}`);
    const name = optString(w, p, 'name', `${path}.name`);
    if (name === undefined) return; // Calico's v1 model skips unnamed ports (hostPort-only entries)
    if (!validPortName(name))
      fail(w, `${path}.name`, name, 'must be 1-15 lower-case letters, digits or "-", with a letter');
    const proto = protocolValue(w, p, 'protocol', `${path}.protocol`);
    if (proto === undefined || !protocolHasPorts(proto))
      fail(w, `${path}.protocol`, own(p, 'protocol') ?? NO_VALUE, 'must be TCP, UDP or SCTP');
    const port = optInt(w, p, 'port', `${path}.port`, 1, 65535);
    if (port === undefined) fail(w, `${path}.port`, NO_VALUE, 'required');
    const key = `${name}/${proto}`;
    if (seen.has(key)) fail(w, `${path}.name`, name, 'listed twice for this protocol');
    seen.add(key);
    ports.push({ name, protocol: proto, port });
  });
  if (ports.length > 0) out.ports = ports;
  return out;
}

// ---------------------------------------------------------------------------------------------------

function toTier(r: RawPolicyResource): TierResource {
  const w = r.where;
  if (r.name.length > 63 || !DNS_LABEL_RE.test(r.name))
    fail(w, 'metadata.name', r.name, 'must be at most 63 lower-case letters, digits or "-" (no dots)');
  const order = optNumber(w, r.spec, 'order', 'spec.order');
  const action = optString(w, r.spec, 'defaultAction', 'spec.defaultAction') ?? 'Deny';
  if (action !== 'Deny' && action !== 'Pass') fail(w, 'spec.defaultAction', action, 'must be Deny or Pass');
  const known = WELL_KNOWN_TIERS[r.name];
  if (known !== undefined) {
    if (action !== known.action)
      fail(w, 'spec.defaultAction', action, `the ${r.name} tier must have default action ${known.action}`);
    if (order !== undefined && order !== known.order)
      fail(w, 'spec.order', order, `the ${r.name} tier's order must be ${known.order}`);
    return { name: r.name, order: known.order, defaultAction: action };
  }
  return order === undefined
    ? { name: r.name, defaultAction: action }
    : { name: r.name, order, defaultAction: action };
}

function toProfile(r: RawPolicyResource): ProfileResource {
  const w = r.where;
  return {
    name: r.name,
    ingress: rules(w, r.spec, 'ingress'),
    egress: rules(w, r.spec, 'egress'),
    labelsToApply: labelMap(w, r.spec, 'labelsToApply', 'spec.labelsToApply'),
  };
}

function toPolicy(r: RawPolicyResource): PolicyResource {
  const w = r.where;
  const global = r.kind === 'GlobalNetworkPolicy';
  const re = global ? GLOBAL_POLICY_NAME_RE : NETWORK_POLICY_NAME_RE;
  if (!re.test(r.name))
    fail(w, 'metadata.name', r.name, 'must be lower-case letters, digits or "-" (at most one ".")');
  const spec = r.spec;
  const tier = optString(w, spec, 'tier', 'spec.tier') ?? DEFAULT_TIER;
  if (tier.length > 63 || !DNS_LABEL_RE.test(tier))
    fail(w, 'spec.tier', tier, 'must be a tier name (lower-case letters, digits or "-")');
  const order = optNumber(w, spec, 'order', 'spec.order');
  const selector = selectorField(w, spec, 'selector', 'spec.selector', false) ?? '';
  const namespaceSelector = global
    ? selectorField(w, spec, 'namespaceSelector', 'spec.namespaceSelector', false)
    : undefined;
  for (const f of ['serviceAccountSelector'] as const)
    if (optString(w, spec, f, `spec.${f}`) !== undefined)
      fail(w, `spec.${f}`, own(spec, f), 'not supported by calitap (no service accounts)');
  const ingress = rules(w, spec, 'ingress');
  const egress = rules(w, spec, 'egress');
  const types = policyTypes(w, spec, ingress.length > 0, egress.length > 0);
  let hostOnly = false;
  if (global) {
    const doNotTrack = optBool(w, spec, 'doNotTrack', 'spec.doNotTrack');
    const preDNAT = optBool(w, spec, 'preDNAT', 'spec.preDNAT');
    const applyOnForward = optBool(w, spec, 'applyOnForward', 'spec.applyOnForward');
    if (doNotTrack && preDNAT) fail(w, 'spec.preDNAT', true, 'preDNAT and doNotTrack cannot both be true');
    if (preDNAT && (egress.length > 0 || types.includes('egress')))
      fail(w, 'spec.preDNAT', true, 'a preDNAT policy cannot have egress rules or the Egress type');
    if ((doNotTrack || preDNAT) && !applyOnForward)
      fail(w, 'spec.applyOnForward', false, 'must be true when preDNAT or doNotTrack is true');
    hostOnly = doNotTrack || preDNAT;
  }
  const p: PolicyResource = {
    kind: global ? 'GlobalNetworkPolicy' : 'NetworkPolicy',
    name: r.name,
    tier,
    selector,
    types,
    ingress,
    egress,
    hostOnly,
    ...(global ? {} : { namespace: r.namespace ?? 'default' }),
    ...(order === undefined ? {} : { order }),
    ...(namespaceSelector === undefined ? {} : { namespaceSelector }),
  };
  return p;
}

/** spec.types, defaulted as Calico does (api/pkg/defaults: defaultPolicyTypesField). */
function policyTypes(w: Where, spec: Obj, hasIngress: boolean, hasEgress: boolean): Direction[] {
  const raw = list(w, spec, 'types', 'spec.types', 2);
  if (raw.length === 0) return !hasEgress ? ['ingress'] : !hasIngress ? ['egress'] : ['ingress', 'egress'];
  const out: Direction[] = [];
  raw.forEach((t, i) => {
    if (t !== 'Ingress' && t !== 'Egress') fail(w, `spec.types[${i}]`, t, 'must be Ingress or Egress');
    const d: Direction = t === 'Ingress' ? 'ingress' : 'egress';
    if (out.includes(d)) fail(w, `spec.types[${i}]`, t, 'listed twice');
    out.push(d);
  });
  return out;
}

function rules(w: Where, spec: Obj, key: 'ingress' | 'egress'): PolicyRule[] {
  return list(w, spec, key, `spec.${key}`, LIMITS.rulesPerPolicy).map((x, i) =>
    rule(w, x, `spec.${key}[${i}]`),
  );
}

/** A protocol: a number 1..255, or a name (case-insensitive) or digits. */
function protocolValue(w: Where, o: Obj, key: string, path: string): number | undefined {
  const v = own(o, key);
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 1 || v > 255)
      fail(w, path, v, 'protocol number must be between 1 and 255');
    return v;
  }
  if (typeof v !== 'string') fail(w, path, v, `must be a protocol name or number, got ${typeName(v)}`);
  if (/^\d{1,3}$/.test(v) && Number(v) >= 1 && Number(v) <= 255) return Number(v);
  for (const [name, num] of Object.entries(PROTOCOL_NUMBERS))
    if (name.toLowerCase() === v.toLowerCase()) return num;
  fail(w, path, v, 'unknown protocol (TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number 1-255)');
}

function icmpValue(w: Where, o: Obj, key: string, path: string): IcmpMatch | undefined {
  const v = own(o, key);
  if (v === undefined || v === null) return undefined;
  const m = mapping(w, o, key, path);
  const type = optInt(w, m, 'type', `${path}.type`, 0, 254);
  const code = optInt(w, m, 'code', `${path}.code`, 0, 255);
  if (code !== undefined && type === undefined)
    fail(w, `${path}.code`, code, 'ICMP code specified without an ICMP type');
  return { ...(type === undefined ? {} : { type }), ...(code === undefined ? {} : { code }) };
}

function rule(w: Where, x: unknown, path: string): PolicyRule {
  if (!isObj(x)) fail(w, path, x, `must be a mapping (a rule), got ${typeName(x)}`);
  const action = optString(w, x, 'action', `${path}.action`);
  if (action === undefined) fail(w, `${path}.action`, NO_VALUE, 'required');
  if (!(ACTIONS as readonly string[]).includes(action))
    fail(w, `${path}.action`, action, `must be one of ${ACTIONS.join(', ')}`);
  for (const f of ['http'] as const)
    if (own(x, f) !== undefined && own(x, f) !== null)
      fail(w, `${path}.${f}`, own(x, f), 'not supported by calitap (application-layer policy)');
  const protocol = protocolValue(w, x, 'protocol', `${path}.protocol`);
  const notProtocol = protocolValue(w, x, 'notProtocol', `${path}.notProtocol`);
  const icmp = icmpValue(w, x, 'icmp', `${path}.icmp`);
  const notICMP = icmpValue(w, x, 'notICMP', `${path}.notICMP`);
  const ipv = own(x, 'ipVersion');
  if (ipv !== undefined && ipv !== null && ipv !== 4 && ipv !== 6)
    fail(w, `${path}.ipVersion`, ipv, 'must be 4 or 6');
  const ipVersion = ipv === 4 || ipv === 6 ? ipv : undefined;
  if (icmp !== undefined && protocol !== PROTO_ICMP && protocol !== PROTO_ICMPV6)
    fail(w, `${path}.icmp`, own(x, 'icmp'), 'ICMP fields require protocol ICMP or ICMPv6');
  for (const [f, p] of [
    ['protocol', protocol],
    ['notProtocol', notProtocol],
  ] as const) {
    if (p === PROTO_ICMP && ipVersion === 6)
      fail(w, `${path}.${f}`, own(x, f), 'protocol ICMP requires ipVersion 4');
    if (p === PROTO_ICMPV6 && ipVersion === 4)
      fail(w, `${path}.${f}`, own(x, f), 'protocol ICMPv6 requires ipVersion 6');
  }
  const fam = { v4: false, v6: false };
  const source = entity(w, x, 'source', `${path}.source`, fam);
  const destination = entity(w, x, 'destination', `${path}.destination`, fam);
  if (ipVersion !== undefined && ((fam.v4 && ipVersion !== 4) || (fam.v6 && ipVersion !== 6)))
    fail(w, `${path}.ipVersion`, ipVersion, "rule IP version doesn't match its CIDRs' version");
  for (const [side, e] of [
    ['source', source],
    ['destination', destination],
  ] as const) {
    for (const f of ['ports', 'notPorts'] as const) {
      const ports = e[f];
      if (ports.length === 0) continue;
      const at = `${path}.${side}.${f}`;
      if (protocol === undefined) {
        if (ports.some((p) => !('name' in p)))
          fail(
            w,
            at,
            own(mapping(w, x, side, `${path}.${side}`), f),
            'numeric ports need protocol TCP, UDP or SCTP',
          );
      } else if (!protocolHasPorts(protocol)) {
        fail(
          w,
          at,
          own(mapping(w, x, side, `${path}.${side}`), f),
          `protocol ${own(x, 'protocol') as string} has no ports`,
        );
      }
    }
  }
  const ipv6Only = ipVersion === 6 || fam.v6 || protocol === PROTO_ICMPV6;
  return {
    action: action as PolicyAction,
    ipv6Only,
    source,
    destination,
    ...(protocol === undefined ? {} : { protocol }),
    ...(notProtocol === undefined ? {} : { notProtocol }),
    ...(icmp === undefined ? {} : { icmp }),
    ...(notICMP === undefined ? {} : { notICMP }),
    ...(ipVersion === undefined ? {} : { ipVersion }),
  };
}

function entity(
  w: Where,
  rule: Obj,
  key: 'source' | 'destination',
  path: string,
  fam: { v4: boolean; v6: boolean },
): EntityMatch {
  const e = mapping(w, rule, key, path);
  for (const f of ['services', 'serviceAccounts'] as const)
    if (own(e, f) !== undefined && own(e, f) !== null)
      fail(
        w,
        `${path}.${f}`,
        own(e, f),
        'not supported by calitap (no Kubernetes services or service accounts)',
      );
  const selector = selectorField(w, e, 'selector', `${path}.selector`, false);
  const notSelector = selectorField(w, e, 'notSelector', `${path}.notSelector`, false);
  const namespaceSelector = selectorField(w, e, 'namespaceSelector', `${path}.namespaceSelector`, true);
  return {
    nets: nets(w, e, 'nets', `${path}.nets`, fam, false),
    notNets: nets(w, e, 'notNets', `${path}.notNets`, fam, true),
    ports: ports(w, e, 'ports', `${path}.ports`),
    notPorts: ports(w, e, 'notPorts', `${path}.notPorts`),
    ...(selector === undefined ? {} : { selector }),
    ...(notSelector === undefined ? {} : { notSelector }),
    ...(namespaceSelector === undefined ? {} : { namespaceSelector }),
  };
}

/** A selector field: parsed (to validate), at most 1024 characters; global() only where allowed. */
function selectorField(
  w: Where,
  o: Obj,
  key: string,
  path: string,
  allowGlobal: boolean,
): string | undefined {
  const s = optString(w, o, key, path);
  if (s === undefined) return undefined;
  if (s.length > LIMITS.selectorLength) fail(w, path, s, `longer than ${LIMITS.selectorLength} characters`);
  let sel: Selector;
  try {
    sel = parseSelector(s);
  } catch (e) {
    fail(w, path, s, `invalid selector: ${(e as Error).message}`);
  }
  if (usesGlobal(sel) && (!allowGlobal || sel.op !== 'global'))
    fail(
      w,
      path,
      s,
      allowGlobal
        ? 'global() must be the whole namespaceSelector'
        : 'global() can only be used in a rule namespaceSelector',
    );
  return s;
}

function nets(
  w: Where,
  e: Obj,
  key: string,
  path: string,
  fam: { v4: boolean; v6: boolean },
  negated: boolean,
): Prefix4[] {
  const out: Prefix4[] = [];
  let v4 = false;
  let v6 = false;
  list(w, e, key, path, LIMITS.netsPerRule).forEach((n, i) => {
    const at = `${path}[${i}]`;
    if (typeof n !== 'string') fail(w, at, n, `must be a CIDR string, got ${typeName(n)}`);
    if (n.includes(':')) {
      // IPv6: validated loosely (hex groups, optional /len); such a rule never matches IPv4 traffic
      const m = /^([0-9a-fA-F:.]+)(?:\/(\d{1,3}))?$/.exec(n);
      if (!m || (m[2] !== undefined && Number(m[2]) > 128)) fail(w, at, n, 'invalid CIDR');
      if (negated && /^::\/0$/.test(n)) fail(w, at, n, 'a catch-all CIDR in notNets matches no traffic');
      v6 = true;
      return;
    }
    const p = n.includes('/') ? parsePrefix4(n, false) : parsePrefix4(`${n}/32`, false);
    if (p === null) fail(w, at, n, 'invalid CIDR (expected an IPv4 address or CIDR like 10.65.0.0/16)');
    if (negated && p.len === 0) fail(w, at, n, 'a catch-all CIDR in notNets matches no traffic');
    v4 = true;
    out.push({ addr: p.addr, len: p.len });
  });
  if ((v4 && fam.v6) || (v6 && fam.v4) || (v4 && v6))
    fail(w, path, own(e, key), 'rule contains both IPv4 and IPv6 CIDRs');
  fam.v4 ||= v4;
  fam.v6 ||= v6;
  return out;
}

/** ports / notPorts: numbers, "lo:hi" ranges (Calico's numorstring.Port) or named ports. */
function ports(w: Where, e: Obj, key: string, path: string): PortMatch[] {
  return list(w, e, key, path, LIMITS.portsPerRule).map((v, i) => {
    const at = `${path}[${i}]`;
    if (typeof v === 'number') {
      if (!Number.isInteger(v) || v < 1 || v > 65535) fail(w, at, v, 'port must be between 1 and 65535');
      return { lo: v, hi: v };
    }
    if (typeof v !== 'string') fail(w, at, v, `must be a port, range or port name, got ${typeName(v)}`);
    const m = /^(\d+)(?::(\d+))?$/.exec(v);
    if (m) {
      const lo = Number(m[1]);
      const hi = m[2] === undefined ? lo : Number(m[2]);
      if (lo < 1 || hi > 65535 || lo > 65535 || hi < 1) fail(w, at, v, 'port must be between 1 and 65535');
      if (lo > hi) fail(w, at, v, `range start ${lo} is greater than its end ${hi}`);
      return { lo, hi };
    }
    if (!validPortName(v)) fail(w, at, v, 'not a port, a range "lo:hi" or a valid port name');
    return { name: v };
  });
}
