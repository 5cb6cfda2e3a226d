// A naive policy interpreter, written straight from Calico's documented semantics and independent of
// the compiler: no IP sets, no bitmaps, no namespace-label prefixing. It walks the model (policies,
// profiles, tiers, namespaces, endpoints) for every packet: which endpoint owns an address, which
// policies select it, then tiers, policies and rules in Felix's order. Only the selector parser and
// evaluator are shared (they have their own vector tests). The differential tests compare the
// compiled evaluator with this.
import { matches, parseSelector } from '../../src/control/policy/selector.js';
import type {
  EntityMatch,
  PolicyConfig,
  PolicyEndpoint,
  PolicyResource,
  PolicyRule,
  ProfileResource,
} from '../../src/control/policy/types.js';

export interface NaivePacket {
  proto: number;
  src: number;
  dst: number;
  sport: number;
  dport: number;
  icmpType: number;
  icmpCode: number;
}

export type NaiveVerdict = 'allow' | 'deny' | 'not-ours' | 'no-endpoint';

type Labels = Map<string, string>;

function inPrefix(ip: number, addr: number, len: number): boolean {
  if (len === 0) return true;
  const shift = 32 - len;
  return ip >>> shift === addr >>> shift;
}

export class NaivePolicy {
  constructor(
    readonly pc: PolicyConfig,
    readonly endpoints: readonly PolicyEndpoint[],
    readonly node: string,
  ) {}

  /** The endpoint owning ip: an exact /32 first, else the most specific network. */
  owner(ip: number): PolicyEndpoint | undefined {
    const exact = this.endpoints.find((e) =>
      e.ipNetworks.some((n) => n.len === 32 && n.addr >>> 0 === ip >>> 0),
    );
    if (exact) return exact;
    let best: PolicyEndpoint | undefined;
    let bestLen = -1;
    for (const e of this.endpoints)
      for (const n of e.ipNetworks)
        if (n.len < 32 && n.len > bestLen && inPrefix(ip, n.addr, n.len)) {
          best = e;
          bestLen = n.len;
        }
    return best;
  }

  /** Own labels win over profile labels (first profile first), which win over namespace ones. */
  labels(e: PolicyEndpoint): Labels {
    const m = new Map<string, string>();
    const profs = e.profiles ?? [`kns.${e.namespace}`];
    for (const p of [...profs].reverse())
      for (const [k, v] of Object.entries(this.pc.profiles.get(p)?.labelsToApply ?? {})) m.set(k, v);
    for (const [k, v] of Object.entries(e.labels))
      if (!k.startsWith('pcns.') && !k.startsWith('pcsa.')) m.set(k, v);
    m.set('projectcalico.org/namespace', e.namespace);
    return m;
  }

  /** A namespace's labels as a namespaceSelector sees them. */
  nsLabels(ns: string): Labels {
    const m = new Map(Object.entries(this.pc.namespaces.get(ns)?.labels ?? {}));
    m.set('projectcalico.org/name', ns);
    return m;
  }

  /** Does namespaceSelector text select workload namespace ns? (global() selects no workload) */
  nsSelects(text: string, ns: string): boolean {
    const s = parseSelector(text);
    if (s.op === 'global') return false;
    return matches(s, this.nsLabels(ns));
  }

  applies(p: PolicyResource, e: PolicyEndpoint, dir: 'ingress' | 'egress'): boolean {
    if (p.hostOnly || !p.types.includes(dir)) return false;
    if (!matches(parseSelector(p.selector), this.labels(e))) return false;
    if (p.kind === 'NetworkPolicy') return e.namespace === (p.namespace ?? 'default');
    return p.namespaceSelector === undefined || this.nsSelects(p.namespaceSelector, e.namespace);
  }

  /** Does a rule side select address ip (owned by endpoint e, if any), for a policy in namespace ns? */
  entity(
    m: EntityMatch,
    ip: number,
    port: number,
    proto: number,
    e: PolicyEndpoint | undefined,
    ns: string | undefined,
  ): boolean {
    if (m.nets.length > 0 && !m.nets.some((n) => inPrefix(ip, n.addr, n.len))) return false;
    if (m.notNets.some((n) => inPrefix(ip, n.addr, n.len))) return false;
    // Calico (getEndpointSelector): a positive endpoint match exists when the side has a selector
    // or a namespaceSelector, or, in a NetworkPolicy, only a notSelector (then: "in my namespace")
    const positive =
      m.selector !== undefined ||
      m.namespaceSelector !== undefined ||
      (ns !== undefined && m.notSelector !== undefined);
    if (positive) {
      if (e === undefined) return false;
      if (m.namespaceSelector !== undefined) {
        if (!this.nsSelects(m.namespaceSelector, e.namespace)) return false;
      } else if (ns !== undefined && e.namespace !== ns) return false;
      if (m.selector !== undefined && !matches(parseSelector(m.selector), this.labels(e))) return false;
    }
    if (
      m.notSelector !== undefined &&
      e !== undefined &&
      matches(parseSelector(m.notSelector), this.labels(e))
    )
      return false;
    const hasPorts = proto === 6 || proto === 17 || proto === 132;
    const portOk = (ps: EntityMatch['ports']): boolean =>
      ps.some((p) =>
        'name' in p
          ? e !== undefined &&
            port !== 0 &&
            e.ports.some((q) => q.name === p.name && q.protocol === proto && q.port === port)
          : hasPorts && port >= p.lo && port <= p.hi,
      );
    if (m.ports.length > 0 && !portOk(m.ports)) return false;
    if (m.notPorts.length > 0 && portOk(m.notPorts)) return false;
    return true;
  }

  ruleMatches(r: PolicyRule, pk: NaivePacket, ns: string | undefined): boolean {
    if (r.ipv6Only) return false;
    if (r.protocol !== undefined && pk.proto !== r.protocol) return false;
    if (r.notProtocol !== undefined && pk.proto === r.notProtocol) return false;
    const icmpIs = (m: { type?: number; code?: number }) =>
      pk.proto === 1 && pk.icmpType === m.type && (m.code === undefined || pk.icmpCode === m.code);
    if (r.icmp?.type !== undefined && !icmpIs(r.icmp)) return false;
    if (r.notICMP?.type !== undefined && icmpIs(r.notICMP)) return false;
    const sp = pk.proto === 6 || pk.proto === 17 || pk.proto === 132 ? pk.sport : 0;
    const dp = pk.proto === 6 || pk.proto === 17 || pk.proto === 132 ? pk.dport : 0;
    return (
      this.entity(r.source, pk.src, sp, pk.proto, this.owner(pk.src), ns) &&
      this.entity(r.destination, pk.dst, dp, pk.proto, this.owner(pk.dst), ns)
    );
  }

  /** First terminal action of a rule list: Allow / Deny / Pass, or null. */
  firstAction(
    rules: readonly PolicyRule[],
    pk: NaivePacket,
    ns: string | undefined,
  ): 'Allow' | 'Deny' | 'Pass' | null {
    for (const r of rules) {
      if (!this.ruleMatches(r, pk, ns)) continue;
      if (r.action === 'Log') continue;
      return r.action;
    }
    return null;
  }

  /** Felix's evaluation for endpoint e in one direction; a deny names its cause. */
  direction(
    e: PolicyEndpoint,
    dir: 'ingress' | 'egress',
    pk: NaivePacket,
  ): { v: 'allow' | 'deny'; cause?: string } {
    const deny = (what: string) => ({
      v: 'deny' as const,
      cause: `${e.namespace}/${e.key.split('/')[1]} ${dir} denied by ${what}`,
    });
    const allow = { v: 'allow' as const };
    const tierNames = [
      ...new Set(this.pc.policies.filter((p) => this.applies(p, e, dir)).map((p) => p.tier)),
    ];
    const tierOrder = (t: string) =>
      this.pc.tiers.get(t)?.order ?? (t === 'default' && !this.pc.tiers.has(t) ? 1_000_000 : Infinity);
    tierNames.sort((a, b) =>
      tierOrder(a) !== tierOrder(b) ? (tierOrder(a) < tierOrder(b) ? -1 : 1) : a < b ? -1 : a > b ? 1 : 0,
    );
    for (const t of tierNames) {
      const pols = this.pc.policies
        .filter((p) => p.tier === t && this.applies(p, e, dir))
        .sort((a, b) => {
          const oa = a.order ?? Infinity;
          const ob = b.order ?? Infinity;
          if (oa !== ob) return oa < ob ? -1 : 1;
          const ka = `${a.name}/${a.namespace ?? ''}/${a.kind}`;
          const kb = `${b.name}/${b.namespace ?? ''}/${b.kind}`;
          return ka < kb ? -1 : ka > kb ? 1 : 0;
        });
      let passed = false;
      for (const p of pols) {
        const a = this.firstAction(
          p[dir],
          pk,
          p.kind === 'NetworkPolicy' ? (p.namespace ?? 'default') : undefined,
        );
        if (a === 'Allow') return allow;
        if (a === 'Deny') {
          const key = p.kind === 'NetworkPolicy' ? `${p.namespace ?? 'default'}/${p.name}` : p.name;
          return deny(`${p.kind} ${p.tier}/${key}`);
        }
        if (a === 'Pass') {
          passed = true;
          break;
        }
      }
      if (!passed && (this.pc.tiers.get(t)?.defaultAction ?? 'Deny') === 'Deny')
        return deny(`end of tier ${t}`);
    }
    for (const name of e.profiles ?? [`kns.${e.namespace}`]) {
      const prof: ProfileResource | undefined = this.pc.profiles.get(name);
      if (prof === undefined) {
        if (name.startsWith('kns.')) return allow;
        continue;
      }
      const a = this.firstAction(prof[dir], pk, undefined);
      if (a === 'Allow') return allow;
      if (a === 'Deny') return deny(`profile ${name}`);
    }
    return deny('no profile allowing it');
  }

  /** The whole verdict for a packet received from a local workload's port (fromWorkload) or not. */
  verdict(pk: NaivePacket, fromWorkload: boolean): { verdict: NaiveVerdict; cause?: string } {
    const s = this.owner(pk.src);
    const d = this.owner(pk.dst);
    const srcLocal = fromWorkload && s !== undefined && s.node === this.node;
    const dstLocal = d !== undefined && d.node === this.node;
    if (fromWorkload && !srcLocal) return { verdict: 'no-endpoint' };
    if (!srcLocal && !dstLocal) return { verdict: 'not-ours' };
    if (srcLocal) {
      const r = this.direction(s, 'egress', pk);
      if (r.v === 'deny') return { verdict: 'deny', cause: r.cause };
    }
    if (dstLocal) {
      const r = this.direction(d, 'ingress', pk);
      if (r.v === 'deny') return { verdict: 'deny', cause: r.cause };
    }
    return { verdict: 'allow' };
  }
}
