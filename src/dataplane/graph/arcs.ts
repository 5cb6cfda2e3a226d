// Feature arcs: the named points of the IPv4 path where optional nodes (features) attach, in the
// order their before/after constraints give. Core nodes enter an arc by name (`arc:<name>` in their
// next list) and never know which features are on it. Pure data and ordering: no packets here.
//
// An arc may be keyed: the entering node passes a small integer (the rx port kind on ip4-unicast,
// the adjacency kind on ip4-output) and every key gets its own chain of the features that declared
// it, so a packet only visits the features that apply to it (encapsulation never sees a packet for a
// local workload; spoof checking never sees one from the uplink).
import { ADJ_KIND_NAMES } from '../tables/adjacency.js';
import type { ArcKeyFn } from './graph.js';
import type { DataplaneEnv } from './env.js';

export interface ArcDecl {
  readonly name: string;
  /** the node the arc ends in; null: it ends back in the entering node (enter() returns false) */
  readonly end: string | null;
  /** how many keys the arc is entered with (1: unkeyed) */
  readonly keys: number;
  /** the key of a packet on this arc, for nodes that go on along it (non-fused features) */
  readonly keyOf: (env: DataplaneEnv) => ArcKeyFn;
  readonly doc: string;
}

export const ARC_IP4_UNICAST = 'ip4-unicast';
export const ARC_IP4_LOCAL = 'ip4-local';
export const ARC_IP4_OUTPUT = 'ip4-output';

/** Keys of ip4-unicast: the rx port's kind (ports.ts KIND_*), masked to 2 bits (KIND_NONE → 3). */
export const UNICAST_KEYS = 4;
export const unicastKey = (portKind: number): number => portKind & 3;

export const CORE_ARCS: readonly ArcDecl[] = [
  {
    name: ARC_IP4_UNICAST,
    end: 'ip4-lookup',
    keys: UNICAST_KEYS,
    keyOf: (env) => (b, i) => unicastKey(env.ports.kind[b.rxPort[i]]),
    doc: 'validated IPv4 packets to forward, before the FIB lookup (spoof check, ingress policy)',
  },
  {
    name: ARC_IP4_LOCAL,
    end: null,
    keys: 1,
    keyOf: () => null,
    doc: "packets for the node's own addresses: tunnels and NAT replies claim theirs, the rest is the host's",
  },
  {
    name: ARC_IP4_OUTPUT,
    end: 'interface-output',
    keys: ADJ_KIND_NAMES.length,
    keyOf: (env) => (b, i) => env.adj.kind[b.adj[i]],
    doc: 'rewritten packets before transmission, keyed by adjacency kind (masquerade, encapsulation)',
  },
];

export interface Placed {
  readonly name: string;
  readonly before?: readonly string[];
  readonly after?: readonly string[];
}

/**
 * Orders the features of one arc so that every before/after constraint between present features
 * holds; features without constraints between them keep their registration order. Constraints
 * naming absent features are ignored (a feature may be off, e.g. NAT without natOutgoing pools).
 */
export function orderFeatures<T extends Placed>(arc: string, feats: readonly T[]): T[] {
  const idx = new Map(feats.map((f, k) => [f.name, k]));
  const succ: number[][] = feats.map(() => []);
  const indeg = new Array<number>(feats.length).fill(0);
  const edge = (a: number | undefined, z: number | undefined): void => {
    if (a === undefined || z === undefined) return;
    succ[a].push(z);
    indeg[z]++;
  };
  feats.forEach((f, k) => {
    for (const b of f.before ?? []) edge(k, idx.get(b));
    for (const a of f.after ?? []) edge(idx.get(a), k);
  });
  const out: T[] = [];
  const ready = feats.map((_, k) => k).filter((k) => indeg[k] === 0);
  while (ready.length > 0) {
    ready.sort((x, y) => x - y);
    const k = ready.shift()!;
    out.push(feats[k]);
    for (const z of succ[k]) if (--indeg[z] === 0) ready.push(z);
  }
  if (out.length !== feats.length) {
    const stuck = feats.filter((f) => !out.includes(f)).map((f) => f.name);
    throw new Error(`arc ${arc}: before/after constraints form a cycle among ${stuck.join(', ')}`);
  }
  return out;
}
