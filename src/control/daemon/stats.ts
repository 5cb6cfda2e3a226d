// Sums the workers' counters (each a SharedArrayBuffer only its worker writes) into the shape
// `calitap stats` and replay print: per-port rx/tx and per-node, per-reason counts; for `stats`, per
// port also the frames its devices refused, by reason. Runs on the control thread.
import { PortCounters, TX_DROP_REASONS } from '../../dataplane/graph/counters.js';
import { MAX_PORTS, type PortSpec } from '../../dataplane/graph/ports.js';

export type TxDropReason = (typeof TX_DROP_REASONS)[number];

export interface PortStatsRow {
  port: string;
  rxPackets: number;
  rxBytes: number;
  /** frames the port's devices accepted */
  txPackets: number;
  txBytes: number;
  /** frames handed to the port's devices that they refused (sum of txDroppedBy) */
  txDropped: number;
  /** the same per reason: queue-full (EAGAIN), refused (the kernel dropped it), error (broken fd) */
  txDroppedBy: Record<TxDropReason, number>;
}

export interface StatsView {
  ports: PortStatsRow[];
  counters: { node: string; reason: string; count: number }[];
}

export interface CounterSource {
  counters?: SharedArrayBuffer;
  portCounters?: SharedArrayBuffer;
  names: { node: string; reason: string }[];
}

export function collectStats(
  sources: CounterSource[],
  names: string[],
  specs: (PortSpec | null)[],
): StatsView {
  const ports = specs.flatMap((s, p) =>
    s === null
      ? []
      : [
          {
            port: names[p],
            rxPackets: 0,
            rxBytes: 0,
            txPackets: 0,
            txBytes: 0,
            txDropped: 0,
            txDroppedBy: { 'queue-full': 0, refused: 0, error: 0 } as Record<TxDropReason, number>,
            p,
          },
        ],
  );
  const sums = new Map<string, { node: string; reason: string; count: number }>();
  for (const src of sources) {
    if (src.portCounters) {
      const pc = new PortCounters(MAX_PORTS, src.portCounters);
      for (const row of ports) {
        row.rxPackets += pc.rxPackets[row.p];
        row.rxBytes += pc.rxBytes[row.p];
        row.txPackets += pc.txPackets[row.p];
        row.txBytes += pc.txBytes[row.p];
        TX_DROP_REASONS.forEach((reason, r) => {
          const v = pc.txDropped[r][row.p];
          row.txDroppedBy[reason] += v;
          row.txDropped += v;
        });
      }
    }
    if (src.counters) {
      const v = new Float64Array(src.counters);
      src.names.forEach((n, i) => {
        if (v[i] === 0) return;
        const key = `${n.node}\0${n.reason}`;
        const row = sums.get(key) ?? { node: n.node, reason: n.reason, count: 0 };
        row.count += v[i];
        sums.set(key, row);
      });
    }
  }
  return { ports: ports.map(({ p: _p, ...r }) => r), counters: [...sums.values()] };
}
