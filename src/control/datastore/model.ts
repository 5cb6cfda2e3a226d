// The cluster state a datastore holds, as the ClusterConfig that route compilation, BGP and the
// dataplane set-up consume. Fed with the key/values of a list and then watch events; each value is
// parsed and validated once per revision (the same field checks as the config file, via load.ts) and
// cached, so a change re-parses one key. A value that does not parse or validate is reported once
// (key and reason) and left out (a bad update of a key keeps what the key gave before); everything
// else keeps being applied. Blocks become the affinities routes are computed from (Felix routes by
// the block's `affinity`). Policy kinds (NetworkPolicy, GlobalNetworkPolicy, Profile, Tier) are
// validated one by one the same way and merged into `policy`; a policy naming a Tier that does not
// exist is reported and left out. Control thread only.
import { parsePrefix4, formatPrefix4, prefixesOverlap } from '../../common/addr.js';
import { CALICO_KINDS, loadConfigText } from '../config/load.js';
import { POLICY_KINDS as POLICY_KIND_NAMES } from '../config/policy-load.js';
import {
  emptyClusterConfig,
  type BlockAffinity,
  type ClusterConfig,
  type IgnoredResource,
} from '../config/types.js';
import {
  DEFAULT_TIER,
  LABEL_NAME,
  NAMESPACE_LABEL_PREFIX as PCNS,
  NAMESPACE_PROFILE_PREFIX as KNS,
  type NamespaceResource,
  type PolicyConfig,
  type PolicyResource,
  type ProfileResource,
  type TierResource,
} from '../policy/types.js';
import { decodeBlock, blockHost } from './ipam-records.js';
import { isObject, toPlain } from './json.js';
import { BLOCKS_PREFIX, parseBlockKey, parseResourceKey, UPLINKS_PREFIX } from './layout.js';
import { decodeResource, type V3Object } from './resources.js';
import type { KV, WatchEvent } from './types.js';

const ROUTED_KINDS = new Set([...CALICO_KINDS, 'Uplink']);
/** Policy kinds: parsed per key like the routed ones, merged into ClusterConfig.policy. */
const POLICY_KINDS: ReadonlySet<string> = new Set(POLICY_KIND_NAMES);

/** What one stored value contributes. */
export type Piece =
  | { t: 'config'; cfg: ClusterConfig; kind: string; name: string }
  | { t: 'block'; affinity?: BlockAffinity }
  | { t: 'none' };

function stubDocs(obj: Record<string, unknown>): string[] {
  const spec = isObject(obj.spec as never) ? (obj.spec as Record<string, unknown>) : {};
  const docs: string[] = [];
  const node = (n: unknown) => {
    if (typeof n === 'string' && n !== '' && obj.kind !== 'Node')
      docs.push(JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: n } }));
  };
  const pool = (text: unknown) => {
    if (typeof text !== 'string') return;
    const p = parsePrefix4(text.includes('/') ? text : `${text}/32`, true);
    if (p === null || prefixesOverlap(p, { addr: 0xa9fe0000, len: 16 })) return;
    const cidr = formatPrefix4(p);
    docs.push(
      JSON.stringify({
        apiVersion: 'projectcalico.org/v3',
        kind: 'IPPool',
        metadata: { name: `stub-${docs.length}` },
        spec: { cidr, blockSize: Math.max(p.len, 20) },
      }),
    );
  };
  if (obj.kind === 'WorkloadEndpoint') {
    node(spec.node);
    if (Array.isArray(spec.ipNetworks)) spec.ipNetworks.forEach(pool);
  } else if (obj.kind === 'BlockAffinity') {
    node(spec.node);
    pool(spec.cidr);
  } else if (obj.kind === 'BGPPeer') node(spec.node);
  else if (obj.kind === 'Uplink') node((obj.metadata as { name?: unknown } | undefined)?.name);
  else if (obj.kind === 'NetworkPolicy' || obj.kind === 'GlobalNetworkPolicy') {
    // the tier is checked against the other keys when the model is built, not here
    const tier = spec.tier;
    if (typeof tier === 'string' && tier !== DEFAULT_TIER && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(tier))
      docs.push(
        JSON.stringify({
          apiVersion: 'projectcalico.org/v3',
          kind: 'Tier',
          metadata: { name: tier },
          spec: { defaultAction: tier.startsWith('kube-') ? 'Pass' : 'Deny' },
        }),
      );
  }
  return docs;
}

/**
 * Validates one resource (plain object) with the config file's checks, in isolation (references to
 * other resources are not checked here). Returns the one-resource ClusterConfig; throws ConfigError.
 */
export function parseResource(obj: Record<string, unknown>, source: string): ClusterConfig {
  const docs = [...stubDocs(obj), JSON.stringify(obj)];
  const cfg = loadConfigText(docs.join('\n---\n'), source);
  if (obj.kind === 'WorkloadEndpoint' || obj.kind === 'BlockAffinity') {
    cfg.pools = [];
    cfg.nodes.clear();
  }
  if (obj.kind === 'BGPPeer' || obj.kind === 'Uplink') cfg.nodes.clear();
  if ((obj.kind === 'NetworkPolicy' || obj.kind === 'GlobalNetworkPolicy') && cfg.policy)
    cfg.policy = { ...cfg.policy, tiers: new Map() }; // not the stub
  return cfg;
}

export function pieceOf(kv: KV): Piece {
  if (kv.key.startsWith(BLOCKS_PREFIX)) {
    const cidr = parseBlockKey(kv.key);
    if (!cidr) return { t: 'none' };
    const b = decodeBlock(kv.key, kv.value, cidr);
    const host = blockHost(b);
    if (host === undefined || b.deleted) return { t: 'block' };
    return {
      t: 'block',
      affinity: {
        name: `block-${formatPrefix4(cidr)}`,
        node: host,
        cidr,
        state: 'confirmed',
        deleted: false,
      },
    };
  }
  if (parseResourceKey(kv.key) === undefined && !kv.key.startsWith(UPLINKS_PREFIX)) return { t: 'none' };
  const obj: V3Object = decodeResource(kv);
  const id = parseResourceKey(kv.key);
  if (id !== undefined && id.kind !== obj.kind)
    throw new Error(`${kv.key}: kind ${obj.kind}: the key holds ${id.kind} resources`);
  // kinds neither routing nor policy use (ClusterInformation): stored, not parsed
  if (!ROUTED_KINDS.has(obj.kind) && !POLICY_KINDS.has(obj.kind)) return { t: 'none' };
  const plain = toPlain(obj) as Record<string, unknown>;
  const cfg = parseResource(plain, kv.key);
  return { t: 'config', cfg, kind: obj.kind, name: obj.metadata.name };
}

export interface BadValue {
  key: string;
  reason: string;
}

const NONE: readonly never[] = [];

export class ClusterModel {
  private readonly pieces = new Map<string, { rev: number; piece: Piece }>();
  /** bad values by key (the reason), current ones only */
  readonly bad = new Map<string, string>();
  /** keys of policies the last build() skipped because their Tier does not exist */
  private readonly tierless = new Set<string>();

  /** Keys whose value is in error now: unreadable or invalid, or a policy naming a missing Tier. */
  get badCount(): number {
    let n = this.bad.size;
    for (const k of this.tierless) if (!this.bad.has(k)) n++;
    return n;
  }

  constructor(
    readonly source: string,
    /** called once per bad key and revision */
    private readonly onBad: (b: BadValue) => void = () => undefined,
  ) {}

  /** Replaces everything with a list's result; returns the keys whose pieces changed. */
  reset(kvs: KV[]): number {
    const seen = new Set<string>();
    let changed = 0;
    for (const kv of kvs) {
      seen.add(kv.key);
      if (this.put(kv)) changed++;
    }
    for (const key of [...this.pieces.keys()]) {
      if (!seen.has(key)) {
        this.pieces.delete(key);
        this.sorted = null;
        this.bad.delete(key);
        changed++;
      }
    }
    return changed;
  }

  /** Applies watch events; returns how many keys changed. */
  apply(events: WatchEvent[]): number {
    let changed = 0;
    for (const ev of events) {
      if (ev.type === 'put') {
        if (this.put(ev.kv)) changed++;
      } else if (this.pieces.delete(ev.key)) {
        this.sorted = null;
        this.bad.delete(ev.key);
        changed++;
      }
    }
    return changed;
  }

  /** the keys in order, kept until a key comes or goes (a changed value keeps its place) */
  private sorted: string[] | null = null;

  private sortedKeys(): string[] {
    return (this.sorted ??= [...this.pieces.keys()].sort());
  }

  private put(kv: KV): boolean {
    const old = this.pieces.get(kv.key);
    if (old === undefined) this.sorted = null;
    if (old !== undefined && old.rev === kv.modRevision) return false;
    let piece: Piece;
    try {
      piece = pieceOf(kv);
      this.bad.delete(kv.key);
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      this.bad.set(kv.key, reason);
      this.onBad({ key: kv.key, reason });
      // keep what the key contributed before (nothing already programmed is torn down)
      if (old !== undefined) {
        this.pieces.set(kv.key, { rev: kv.modRevision, piece: old.piece });
        return false;
      }
      piece = { t: 'none' };
    }
    this.pieces.set(kv.key, { rev: kv.modRevision, piece });
    return true;
  }

  /** The cluster state as a ClusterConfig (a fresh object every call). */
  build(): ClusterConfig {
    const cfg: ClusterConfig = emptyClusterConfig(this.source);
    const ignored: IgnoredResource[] = cfg.ignored;
    const owner = new Map<string, string>();
    const tiers = new Map<string, TierResource>();
    const profiles = new Map<string, ProfileResource>();
    const policies: { key: string; p: PolicyResource }[] = [];
    let anyPolicy = false;
    /** node name by BGP address (the duplicate check) */
    const byAddress = new Map<number, string>();
    for (const key of this.sortedKeys()) {
      const { piece } = this.pieces.get(key)!;
      if (piece.t === 'block') {
        if (piece.affinity) {
          cfg.affinities.push(piece.affinity);
          owner.set(formatPrefix4(piece.affinity.cidr), piece.affinity.node);
        }
        continue;
      }
      if (piece.t !== 'config') continue;
      const c = piece.cfg;
      for (const p of c.pools) {
        const clash = cfg.pools.find((q) => prefixesOverlap(q.cidr, p.cidr));
        if (clash) {
          this.noteBad(
            key,
            `IPPool ${p.name}: spec.cidr ${formatPrefix4(p.cidr)}: overlaps IPPool ${clash.name}`,
          );
          continue;
        }
        cfg.pools.push(p);
      }
      // (most pieces are one endpoint or one node: the empty parts are skipped without iterating them)
      for (const n of c.nodes.size > 0 ? c.nodes.values() : NONE) {
        const dup = n.bgpAddress === undefined ? undefined : byAddress.get(n.bgpAddress.ip);
        if (dup !== undefined) {
          this.noteBad(key, `Node ${n.name}: spec.bgp.ipv4Address: same address as Node ${dup}`);
          continue;
        }
        if (n.bgpAddress !== undefined) byAddress.set(n.bgpAddress.ip, n.name);
        cfg.nodes.set(n.name, n);
      }
      for (const e of c.endpoints) cfg.endpoints.push(e);
      for (const p of c.peers) cfg.peers.push(p);
      if (c.uplinks.size > 0) for (const [k, u] of c.uplinks) cfg.uplinks.set(k, u);
      if (c.felixNodeOverrides.size > 0)
        for (const [k, f] of c.felixNodeOverrides) cfg.felixNodeOverrides.set(k, f);
      if (piece.kind === 'FelixConfiguration' && piece.name === 'default') cfg.felix = c.felix;
      if (piece.kind === 'BGPConfiguration' && piece.name === 'default') cfg.bgp = c.bgp;
      for (const a of c.affinities) {
        // hand-written v3 BlockAffinity resources: only when no block says otherwise
        const k = formatPrefix4(a.cidr);
        if (owner.has(k) && owner.get(k) !== a.node) continue;
        cfg.affinities.push(a);
      }
      for (const x of c.ignored) ignored.push(x);
      if (c.policy !== undefined && POLICY_KINDS.has(piece.kind)) {
        anyPolicy = true;
        for (const [k, t] of c.policy.tiers) tiers.set(k, t);
        for (const [k, p] of c.policy.profiles) profiles.set(k, p);
        for (const p of c.policy.policies) policies.push({ key, p });
      }
    }
    if (anyPolicy) cfg.policy = this.policyOf(tiers, profiles, policies);
    else this.tierless.clear();
    return cfg;
  }

  /** The policy model: policies whose tier exists, namespaces from the `kns.` profiles. */
  private policyOf(
    tiers: Map<string, TierResource>,
    profiles: Map<string, ProfileResource>,
    policies: { key: string; p: PolicyResource }[],
  ): PolicyConfig {
    const kept: PolicyResource[] = [];
    this.tierless.clear();
    for (const { key, p } of policies) {
      if (p.tier !== DEFAULT_TIER && !tiers.has(p.tier)) {
        this.tierless.add(key);
        const name = p.namespace === undefined ? p.name : `${p.namespace}/${p.name}`;
        this.noteBad(key, `${key}: ${p.kind} ${name}: spec.tier ${p.tier}: no Tier with this name`);
        continue;
      }
      kept.push(p);
    }
    const namespaces = new Map<string, NamespaceResource>();
    for (const [name, prof] of profiles) {
      if (!name.startsWith(KNS) || name.length === KNS.length) continue;
      const labels: Record<string, string> = {};
      for (const [k, v] of Object.entries(prof.labelsToApply))
        if (k.startsWith(PCNS) && k !== PCNS + LABEL_NAME) labels[k.slice(PCNS.length)] = v;
      namespaces.set(name.slice(KNS.length), { name: name.slice(KNS.length), labels });
    }
    return { tiers, policies: kept, profiles, namespaces };
  }

  private readonly noted = new Set<string>();

  private noteBad(key: string, reason: string): void {
    const id = `${key}\0${reason}`;
    if (this.noted.has(id)) return;
    this.noted.add(id);
    this.onBad({ key, reason });
  }
}

/** Convenience: a model built from one list result. */
export function configFromKvs(kvs: KV[], source: string, onBad?: (b: BadValue) => void): ClusterConfig {
  const m = new ClusterModel(source, onBad);
  m.reset(kvs);
  return m.build();
}
