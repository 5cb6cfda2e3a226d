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

/**
 * Why a device refused a frame handed to it (per port, see PortCounters.txDropped): `queue-full`
 * the device had no room (EAGAIN), `refused` the kernel dropped that one frame (ENOBUFS, EMSGSIZE,
 * interface down...), `error` the device is broken (EBADF, EBADFD: the port is reported to the
 * control thread).
 */
export const TX_DROP_REASONS = ['queue-full', 'refused', 'error'] as const;
export const TX_QUEUE_FULL = 0;
export const TX_REFUSED = 1;
export const TX_ERROR = 2;

/** Float64 arrays of `ports` entries in a PortCounters buffer: rx/tx packets/bytes + tx drops. */
const PORT_ARRAYS = 4 + TX_DROP_REASONS.length;

/**
 * Per-port counters, indexed by port: rx packets/bytes (counted as frames enter the graph), tx
 * packets/bytes (frames a device accepted: counted by the device when it flushes) and, per reason of
 * TX_DROP_REASONS, frames a device refused.
 */
export class PortCounters {
  readonly rxPackets: Float64Array;
  readonly rxBytes: Float64Array;
  readonly txPackets: Float64Array;
  readonly txBytes: Float64Array;
  /** txDropped[r][p]: frames port p's device refused for reason TX_DROP_REASONS[r] */
  readonly txDropped: readonly Float64Array[];
  constructor(
    readonly ports: number,
    shared?: SharedArrayBuffer,
  ) {
    const sab = shared ?? new SharedArrayBuffer(PortCounters.bytes(ports));
    this.rxPackets = new Float64Array(sab, 0, ports);
    this.rxBytes = new Float64Array(sab, ports * 8, ports);
    this.txPackets = new Float64Array(sab, ports * 16, ports);
    this.txBytes = new Float64Array(sab, ports * 24, ports);
    this.txDropped = TX_DROP_REASONS.map((_, r) => new Float64Array(sab, ports * 8 * (4 + r), ports));
  }

  /** Size of the shared buffer for `ports` ports. */
  static bytes(ports: number): number {
    return Math.max(1, ports) * PORT_ARRAYS * 8;
  }
}
