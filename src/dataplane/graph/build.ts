// Builds one graph from declarations: the core nodes, the features a dataplane is built with (each
// a factory returning its nodes, or none when it is off), and any counter-only nodes of the caller.
// Resolves every declared next name and arc once, fuses fusable features into the edges that enter
// their arcs (unless `fused: false`), and fixes the dispatch order (reverse post-order from
// the entry: packets flow mostly forward in one pass). Called once per worker (live) or once per
// replay run; the result is owned by that thread. Port changes do not rebuild it: nodes read
// env.ports at every batch, and interface-output reads its sinks array at every packet.
import { Graph, GraphNode, KeyedNext, makeNext, type Next } from './graph.js';
import { CORE_ARCS, orderFeatures, type ArcDecl } from './arcs.js';
import type { PortCounters } from './counters.js';
import type { DataplaneEnv, PortSink } from './env.js';
import { EthernetInput, ArpReply } from './nodes/l2.js';
import { Ip4Input, Ip4Lookup, Ip4Rewrite } from './nodes/ip4.js';
import { Ip4Arp } from './nodes/arp-resolve.js';
import { Ip4IcmpError } from './nodes/icmp-error.js';
import { InterfaceOutput } from './nodes/output.js';
import { Ip4Fast } from './nodes/fast.js';

/** A feature: builds its nodes for this dataplane (none when it does not apply, e.g. NAT off). */
export type GraphFeature = (env: DataplaneEnv, capacity: number) => GraphNode[];

export interface BuildOptions {
  /** counters shared with the control thread (live workers) */
  shared?: { counters?: SharedArrayBuffer; portCounters?: PortCounters };
  /**
   * Fuse fusable features into the edges entering their arcs (default true): a feature's pass()
   * then runs inside the entering node's loop instead of costing a queue hop per packet. Measured on
   * the direct path (bench/graph.bench.ts): the spoof check inline saves a queue hop per workload
   * packet, and masquerade/encapsulation inline save one each on the way out. Tests build both ways.
   */
  fused?: boolean;
  /**
   * Put ip4-fast in front of ethernet-input (default true): one loop doing ethernet-input, ip4-input,
   * ip4-lookup and ip4-rewrite for plain unicast IPv4, handing everything else to the general nodes
   * (nodes/fast.ts). Tests build with and without it (CALITAP_TEST_NO_FAST in the test harness).
   */
  fast?: boolean;
}

export interface BuiltGraph {
  graph: Graph;
  output: InterfaceOutput;
  /** smallest path MTU when the graph was built (sizes the receive budget of a round) */
  minMtu: number;
}

/** The core nodes every dataplane has, in declaration order (the first is the entry). */
function coreNodes(env: DataplaneEnv, sinks: (PortSink | null)[], fast: boolean): GraphNode[] {
  return [
    ...(fast ? [new Ip4Fast(env)] : []),
    new EthernetInput(env),
    new ArpReply(env),
    new Ip4Input(env),
    new Ip4Lookup(env),
    new Ip4Rewrite(env),
    new Ip4Arp(env),
    new Ip4IcmpError(env),
    new InterfaceOutput(sinks, env),
  ];
}

export function buildGraph(
  env: DataplaneEnv,
  sinks: (PortSink | null)[],
  capacity: number,
  features: readonly GraphFeature[] = [],
  opts: BuildOptions = {},
): BuiltGraph {
  const graph = new Graph(capacity, env.ports.count, opts.shared?.portCounters);
  for (const n of coreNodes(env, sinks, opts.fast ?? true)) graph.add(n);
  for (const f of features) for (const n of f(env, capacity)) graph.add(n);
  resolve(graph, env, CORE_ARCS, opts.fused ?? true);
  graph.seal(dispatchOrder(graph), opts.shared?.counters);
  return {
    graph,
    output: graph.get('interface-output') as InterfaceOutput,
    minMtu: Math.min(env.adj.minMtu() || 65535, ...Array.from(env.ports.mtu).filter((m) => m > 0)),
  };
}

function nodeNamed(graph: Graph, name: string, by: string): GraphNode {
  const n = graph.get(name);
  if (n === undefined) throw new Error(`graph: ${by} names unknown node ${name}`);
  return n;
}

/** Resolves every node's next names and every arc's chains (per key) into Next objects. */
function resolve(graph: Graph, env: DataplaneEnv, arcs: readonly ArcDecl[], fused: boolean): void {
  const entries = new Map<string, KeyedNext>();
  for (const arc of arcs) {
    const feats = graph.nodes().filter((n) => n.decl.arc?.name === arc.name);
    for (const f of feats)
      if (arc.end === null && !f.fusable)
        throw new Error(
          `graph: ${f.name} on arc ${arc.name} must implement pass() (the arc has no end node)`,
        );
    const ordered = orderFeatures(
      arc.name,
      feats.map((n) => ({ name: n.name, before: n.decl.arc!.before, after: n.decl.arc!.after, n })),
    ).map((x) => x.n);
    const end = arc.end === null ? null : nodeNamed(graph, arc.end, `arc ${arc.name}`);
    const keyOf = arc.keyOf(env);
    // chain per key, and each feature's successor per key
    const succ = new Map<GraphNode, Next[]>(ordered.map((n) => [n, []]));
    const heads: Next[] = [];
    for (let key = 0; key < arc.keys; key++) {
      const chain = ordered.filter((n) => n.decl.arc!.keys === undefined || n.decl.arc!.keys.includes(key));
      const at = (j: number): Next => {
        if (j === chain.length) return makeNext(end);
        // an arc without an end node returns to its entering node: its features always run inline
        if ((!fused && end !== null) || !chain[j].fusable) return makeNext(chain[j]);
        let m = j;
        while (m < chain.length && chain[m].fusable) m++;
        return makeNext(m < chain.length ? chain[m] : end, chain.slice(j, m));
      };
      heads.push(at(0));
      chain.forEach((n, j) => (succ.get(n)![key] = at(j + 1)));
    }
    for (const n of ordered) {
      const byKey = succ.get(n)!;
      for (let key = 0; key < arc.keys; key++) byKey[key] ??= makeNext(null);
      n.arcNext = new KeyedNext(byKey, keyOf);
    }
    entries.set(arc.name, new KeyedNext(heads, keyOf));
  }
  for (const n of graph.nodes()) {
    n.next = [];
    n.keyed = [];
    for (const name of n.decl.next ?? []) {
      if (name.startsWith('arc:')) {
        const k = entries.get(name.slice(4));
        if (k === undefined) throw new Error(`graph: ${n.name} names unknown arc ${name.slice(4)}`);
        n.next.push(k.byKey[0]);
        n.keyed.push(k);
      } else {
        n.next.push(makeNext(nodeNamed(graph, name, n.name)));
        n.keyed.push(undefined);
      }
    }
  }
}

/** Nodes a node may hand packets to (through its next list and, for features, its arc). */
function successors(n: GraphNode): GraphNode[] {
  const out: GraphNode[] = [];
  const add = (x: Next): void => {
    out.push(...x.inline);
    if (x.node !== null) out.push(x.node);
  };
  n.next.forEach(add);
  for (const k of n.keyed) k?.byKey.forEach(add);
  n.arcNext.byKey.forEach(add);
  return out;
}

/** Reverse post-order from the entry; nodes nothing reaches (counter-only nodes) go last. */
function dispatchOrder(graph: Graph): GraphNode[] {
  const all = graph.nodes();
  const seen = new Set<GraphNode>();
  const post: GraphNode[] = [];
  const visit = (n: GraphNode): void => {
    seen.add(n);
    for (const s of successors(n)) if (!seen.has(s)) visit(s);
    post.push(n);
  };
  visit(all[0]);
  const order = post.reverse();
  for (const n of all) if (!seen.has(n)) order.push(n);
  return order;
}
