// The forwarding graph (VPP's model): nodes each process a whole queue of packet indices in one
// loop, decide a next node per packet and count per-reason drops.
//
// A Graph is owned by exactly one thread (a worker, or the replay loop) together with its Batch and
// CounterSet; the tables it reads (FIB, adjacencies, neighbours, NAT) are shared. `run()` feeds every
// received packet to ethernet-input and keeps dispatching, in a fixed node order, until no node has
// packets queued (decapsulation loops back to ip4-input, so one pass is not always enough).
import type { Batch } from './packet.js';
import { CounterRegistry, CounterSet, PortCounters } from './counters.js';

export abstract class GraphNode {
  abstract readonly name: string;
  abstract readonly reasons: readonly string[];
  /** pending packet indices */
  q: Uint16Array = new Uint16Array(0);
  n = 0;
  spare: Uint16Array = new Uint16Array(0);
  /** counter values and this node's first index into them */
  c: Float64Array = new Float64Array(0);
  base = 0;

  /** Processes the packets q[0..n); enqueues each on a next node (or drops it). */
  abstract process(b: Batch, q: Uint16Array, n: number): void;

  /** Optional per-round hook (timers): called before each batch with the current time. */
  tick?(b: Batch, now: number): void;

  /** Optional end-of-run hook (replay): release or count whatever the node still holds. */
  finish?(b: Batch): void;

  /** Queues packet i on this node. */
  push(i: number): void {
    this.q[this.n++] = i;
  }

  /** Counts reason r for packet i and drops it (the packet simply goes nowhere). */
  drop(b: Batch, i: number, r: number): void {
    this.c[this.base + r]++;
    if (b.trace !== null) b.note(i, this.name, `drop: ${this.reasons[r]}`);
  }

  count(r: number): void {
    this.c[this.base + r]++;
  }
}

export class Graph {
  readonly registry = new CounterRegistry();
  counters!: CounterSet;
  readonly portCounters: PortCounters;
  private readonly order: GraphNode[] = [];
  private entry: GraphNode | null = null;

  constructor(
    readonly capacity: number,
    readonly portCount: number,
    portCounters?: PortCounters,
  ) {
    this.portCounters = portCounters ?? new PortCounters(portCount);
  }

  /** Adds nodes in dispatch order; the first one added is the entry (ethernet-input). */
  add<T extends GraphNode>(node: T): T {
    node.q = new Uint16Array(this.capacity);
    node.spare = new Uint16Array(this.capacity);
    node.base = this.registry.register(node.name, node.reasons);
    this.order.push(node);
    if (this.entry === null) this.entry = node;
    return node;
  }

  /** Allocates the counters once all nodes are added. */
  seal(shared?: SharedArrayBuffer): void {
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

  /** Lets every node release or count what it still holds (end of a replay). */
  finish(b: Batch): void {
    for (const node of this.order) if (node.finish) node.finish(b);
    this.dispatch(b);
  }

  private dispatch(b: Batch): void {
    const order = this.order;
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
  }
}
