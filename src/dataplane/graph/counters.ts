// Per-node, per-reason packet counters and per-port rx/tx counters.
//
// Each worker (or the replay loop) owns one CounterSet backed by a SharedArrayBuffer so the control
// thread can read and sum them without messages. Only the owning thread writes. Values are float64
// (exact to 2^53 packets). Nodes register their reasons once at graph build time and then bump
// `values[base + reason]` directly: no lookups, no strings on the hot path.

export interface CounterRow {
  node: string;
  reason: string;
  value: number;
}

export class CounterRegistry {
  readonly names: { node: string; reason: string }[] = [];

  /** Registers a node's reasons; returns the base index (reason k is at base + k). */
  register(node: string, reasons: readonly string[]): number {
    const base = this.names.length;
    for (const reason of reasons) this.names.push({ node, reason });
    return base;
  }
}

export class CounterSet {
  readonly values: Float64Array;
  constructor(
    readonly registry: CounterRegistry,
    shared?: SharedArrayBuffer,
  ) {
    const n = Math.max(1, registry.names.length);
    this.values = new Float64Array(shared ?? new SharedArrayBuffer(n * 8));
  }

  /** Non-zero counters, in registration order. */
  rows(): CounterRow[] {
    const out: CounterRow[] = [];
    this.registry.names.forEach((n, i) => {
      if (this.values[i] !== 0) out.push({ node: n.node, reason: n.reason, value: this.values[i] });
    });
    return out;
  }
}

/** Per-port counters: rx/tx packets and bytes, indexed by port. */
export class PortCounters {
  readonly rxPackets: Float64Array;
  readonly rxBytes: Float64Array;
  readonly txPackets: Float64Array;
  readonly txBytes: Float64Array;
  constructor(
    readonly ports: number,
    shared?: SharedArrayBuffer,
  ) {
    const sab = shared ?? new SharedArrayBuffer(Math.max(1, ports) * 4 * 8);
    this.rxPackets = new Float64Array(sab, 0, ports);
    this.rxBytes = new Float64Array(sab, ports * 8, ports);
    this.txPackets = new Float64Array(sab, ports * 16, ports);
    this.txBytes = new Float64Array(sab, ports * 24, ports);
  }
}
