// The forwarding graph (VPP's model): nodes each process a whole queue of packet indices in one
// loop, decide a next node per packet and count per-reason drops and events.
//
// Nodes are declared, not wired by hand: each says its name, its next nodes by name (or an arc by
// `arc:<name>`) and its reasons with a kind (`drop` ends a packet's life, `event` records a step).
// The builder (build.ts) resolves every name to a `Next` once; a node then hands packet i on with
// `this.next[N_X].enter(b, i)`. Features (spoof check, NAT, encapsulation, policy) are nodes that
// register on named arcs (arcs.ts) with before/after constraints; core nodes only name the arc.
//
// A Graph is owned by exactly one thread (a worker, or the replay loop) together with its Batch and
// CounterSet; the tables it reads (FIB, adjacencies, neighbours, NAT) are shared. `run()` feeds every
// received packet to ethernet-input and keeps dispatching, in the builder's order, until no node has
// packets queued (decapsulation loops back to ip4-input, so one pass is not always enough).
import type { Batch } from './packet.js';
import type { DataplaneEnv } from './env.js';
import { CounterRegistry, CounterSet, PortCounters } from './counters.js';
import type { FlowGate } from './flow-gate.js';

export type ReasonKind = 'drop' | 'event';

export interface ReasonDecl {
  readonly name: string;
  readonly kind: ReasonKind;
}

/** A reason that ends the packet's life (it is counted and goes nowhere). */
export const drop = (name: string): ReasonDecl => ({ name, kind: 'drop' });
/** A reason that records a step; the packet goes on (or became another packet, e.g. an ICMP error). */
export const event = (name: string): ReasonDecl => ({ name, kind: 'event' });

/** Where a feature node sits: on arc `name`, ordered by before/after, for the given arc keys only. */
export interface ArcPlacement {
  readonly name: string;
  readonly before?: readonly string[];
  readonly after?: readonly string[];
  /**
   * The arc keys this feature applies to (see arcs.ts: rx port kind on ip4-unicast, adjacency kind on
   * ip4-output); absent = all. Packets of other keys never visit the feature.
   */
  readonly keys?: readonly number[];
}

export interface NodeDecl {
  readonly name: string;
  /** next nodes by name, or `arc:<arc name>`; resolved to this.next[k] in this order */
  readonly next?: readonly string[];
  readonly reasons?: readonly ReasonDecl[];
  /** a feature: its place on an arc (its successor on the arc is this.arcNext) */
  readonly arc?: ArcPlacement;
}

/**
 * A resolved edge: the node a packet is queued on, preceded by the features fused into the edge
 * (see GraphNode.pass). `node` is null only on arcs that end back in the node that entered them
 * (ip4-local): enter() then returns false when no feature claimed the packet.
 *
 * makeNext() picks a class by the number of fused features, so each call site to a feature's pass()
 * sees one or two feature classes (the spoof check and masquerade share the one-feature site, and so
 * on) and stays inlinable; one loop over an array of features would make that single site
 * megamorphic (every feature class in the graph) and cost a stub lookup per packet and feature.
 */
export class Next {
  constructor(
    readonly node: GraphNode | null,
    readonly inline: readonly GraphNode[] = [],
  ) {}

  /** Hands packet i on: through the fused features, then onto the node's queue. */
  enter(_b: Batch, i: number): boolean {
    const node = this.node;
    if (node === null) return false;
    node.q[node.n++] = i;
    return true;
  }

  /**
   * Runs the fused features only (not the queue): true when packet i goes on to `node`, false when a
   * feature dropped or claimed it. For ip4-fast, which does the end node's work itself.
   */
  passAll(_b: Batch, _i: number): boolean {
    return true;
  }
}

class Next1 extends Next {
  private readonly f0: GraphNode;
  constructor(node: GraphNode | null, inline: readonly GraphNode[]) {
    super(node, inline);
    this.f0 = inline[0];
  }
  override enter(b: Batch, i: number): boolean {
    if (!this.f0.pass(b, i)) return true;
    const node = this.node;
    if (node === null) return false;
    node.q[node.n++] = i;
    return true;
  }
  override passAll(b: Batch, i: number): boolean {
    return this.f0.pass(b, i);
  }
}

class Next2 extends Next {
  private readonly f0: GraphNode;
  private readonly f1: GraphNode;
  constructor(node: GraphNode | null, inline: readonly GraphNode[]) {
    super(node, inline);
    this.f0 = inline[0];
    this.f1 = inline[1];
  }
  override enter(b: Batch, i: number): boolean {
    if (!this.f0.pass(b, i) || !this.f1.pass(b, i)) return true;
    const node = this.node;
    if (node === null) return false;
    node.q[node.n++] = i;
    return true;
  }
  override passAll(b: Batch, i: number): boolean {
    return this.f0.pass(b, i) && this.f1.pass(b, i);
  }
}

class NextN extends Next {
  override enter(b: Batch, i: number): boolean {
    const f = this.inline;
    for (let k = 0; k < f.length; k++) if (!f[k].pass(b, i)) return true;
    const node = this.node;
    if (node === null) return false;
    node.q[node.n++] = i;
    return true;
  }
  override passAll(b: Batch, i: number): boolean {
    const f = this.inline;
    for (let k = 0; k < f.length; k++) if (!f[k].pass(b, i)) return false;
    return true;
  }
}

/** The edge to `node` through the fused features `inline` (in order). */
export function makeNext(node: GraphNode | null, inline: readonly GraphNode[] = []): Next {
  if (inline.length === 0) return new Next(node);
  if (inline.length === 1) return new Next1(node, inline);
  if (inline.length === 2) return new Next2(node, inline);
  return new NextN(node, inline);
}

/** Computes a packet's key on a keyed arc (null: the arc is not keyed). */
export type ArcKeyFn = ((b: Batch, i: number) => number) | null;

/** An arc entered with a key (rx port kind, adjacency kind): one resolved chain per key. */
export class KeyedNext {
  constructor(
    readonly byKey: readonly Next[],
    private readonly keyOf: ArcKeyFn,
  ) {}

  /** Enters the chain of `key` (the entering node knows it already). */
  enter(b: Batch, i: number, key: number): boolean {
    return this.byKey[key].enter(b, i);
  }

  /** Enters the chain of the packet's own key (computed by the arc). */
  enterAny(b: Batch, i: number): boolean {
    const f = this.keyOf;
    return this.byKey[f === null ? 0 : f(b, i)].enter(b, i);
  }
}

const NOT_RESOLVED = new KeyedNext([], null);

export abstract class GraphNode {
  abstract readonly decl: NodeDecl;
  /** pending packet indices */
  q: Uint16Array = new Uint16Array(0);
  n = 0;
  spare: Uint16Array = new Uint16Array(0);
  /** counter values and this node's first index into them */
  c: Float64Array = new Float64Array(0);
  base = 0;
  /** decl.next resolved (arcs entered with a key resolve to their key-0 chain here; see keyed) */
  next: Next[] = [];
  /** decl.next entries that name arcs, resolved per key (undefined for plain nodes) */
  keyed: (KeyedNext | undefined)[] = [];
  /** a feature's successor on its arc, per key */
  arcNext: KeyedNext = NOT_RESOLVED;

  get name(): string {
    return this.decl.name;
  }

  /** Processes the packets q[0..n); hands each on (or drops it). Features get a default: see pass. */
  process(b: Batch, q: Uint16Array, n: number): void {
    const next = this.arcNext;
    for (let k = 0; k < n; k++) if (this.pass(b, q[k])) next.enterAny(b, q[k]);
  }

  /**
   * A feature's per-packet work: true when packet i goes on along the arc, false when the feature
   * dropped it (counted) or handed it elsewhere itself. Features implementing it can be fused into
   * the edge that enters the arc (no queue hop); the default process() runs it when they are not.
   */
  pass(_b: Batch, _i: number): boolean {
    throw new Error(`${this.decl.name} is not a fusable feature`);
  }

  /**
   * A fusable feature's flow gate (flow-gate.ts), or null: when the gate opens for a packet, pass()
   * would return true having done nothing but what the gate does, so ip4-fast may skip the call.
   */
  readonly gate: FlowGate | null = null;

  /** True when this node implements pass() (the builder may fuse it). */
  get fusable(): boolean {
    return this.pass !== GraphNode.prototype.pass;
  }

  /** Optional per-round hook (timers): called before each batch with the current time. */
  tick?(b: Batch, now: number): void;

  /** Optional hook run after each dispatch (e.g. ip4-arp releasing packets whose neighbour answered). */
  poll?(b: Batch): void;

  /** Optional end-of-run hook (replay): release or count whatever the node still holds. */
  finish?(b: Batch): void;

  /**
   * Optional: env.params or env.nat changed (a live `params` message, between batches). Nodes that
   * copied parameters into fields at construction copy them again here; packets they hold stay.
   */
  setParams?(env: DataplaneEnv): void;

  /** Queues packet i on this node. */
  push(i: number): void {
    this.q[this.n++] = i;
  }

  /** Counts reason r for packet i and drops it (the packet simply goes nowhere). */
  drop(b: Batch, i: number, r: number): void {
    this.c[this.base + r]++;
    if (b.trace !== null) b.note(i, this.decl.name, `drop: ${this.decl.reasons![r].name}`);
  }

  count(r: number): void {
    this.c[this.base + r]++;
  }
}

export class Graph {
  readonly registry = new CounterRegistry();
  counters!: CounterSet;
  readonly portCounters: PortCounters;
  private order: GraphNode[] = [];
  private polled: GraphNode[] = [];
  private entry: GraphNode | null = null;
  private readonly byName = new Map<string, GraphNode>();

  constructor(
    readonly capacity: number,
    readonly portCount: number,
    portCounters?: PortCounters,
  ) {
    this.portCounters = portCounters ?? new PortCounters(portCount);
  }

  /** Adds a node (the builder sets the dispatch order later); the first one added is the entry. */
  add<T extends GraphNode>(node: T): T {
    const name = node.decl.name;
    if (this.byName.has(name)) throw new Error(`graph: duplicate node ${name}`);
    this.byName.set(name, node);
    node.q = new Uint16Array(this.capacity);
    node.spare = new Uint16Array(this.capacity);
    node.base = this.registry.register(
      name,
      (node.decl.reasons ?? []).map((r) => r.name),
    );
    this.order.push(node);
    if (this.entry === null) this.entry = node;
    return node;
  }

  get(name: string): GraphNode | undefined {
    return this.byName.get(name);
  }

  /** Fixes the dispatch order (every added node exactly once) and allocates the counters. */
  seal(order: GraphNode[], shared?: SharedArrayBuffer): void {
    if (order.length !== this.order.length || order.some((n) => !this.order.includes(n)))
      throw new Error('graph: dispatch order must list every node once');
    this.order = order;
    this.polled = order.filter((n) => n.poll !== undefined);
    this.counters = new CounterSet(this.registry, shared);
    for (const n of this.order) n.c = this.counters.values;
  }

  nodes(): readonly GraphNode[] {
    return this.order;
  }

  /** Runs timers (ARP retries, hold expiry) at time `now` (seconds). */
  tick(b: Batch, now: number): void {
    for (const node of this.order) if (node.tick) node.tick(b, now);
    this.dispatch(b);
  }

  /** Pushes packets [from, b.count) through the graph. */
  run(b: Batch, from = 0): void {
    const entry = this.entry!;
    const pc = this.portCounters;
    for (let i = from; i < b.count; i++) {
      const p = b.rxPort[i];
      pc.rxPackets[p]++;
      pc.rxBytes[p] += b.len[i];
      entry.q[entry.n++] = i;
    }
    this.dispatch(b);
  }

  /**
   * New parameters (env.params, env.nat) between two batches: every node that copied them takes the
   * new values; queues, held packets and counters are untouched.
   */
  setParams(env: DataplaneEnv): void {
    for (const node of this.order) node.setParams?.(env);
  }

  /** Lets every node release or count what it still holds (end of a replay). */
  finish(b: Batch): void {
    for (const node of this.order) if (node.finish) node.finish(b);
    this.dispatch(b);
  }

  private dispatch(b: Batch): void {
    const order = this.order;
    const polled = this.polled;
    for (;;) {
      for (let busy = true; busy;) {
        busy = false;
        for (let k = 0; k < order.length; k++) {
          const node = order[k];
          const n = node.n;
          if (n === 0) continue;
          busy = true;
          const q = node.q;
          node.q = node.spare;
          node.spare = q;
          node.n = 0;
          node.process(b, q, n);
        }
      }
      if (polled.length === 0) return;
      for (let k = 0; k < polled.length; k++) polled[k].poll!(b);
      let more = false;
      for (let k = 0; k < order.length; k++) if (order[k].n !== 0) more = true;
      if (!more) return;
    }
  }
}
