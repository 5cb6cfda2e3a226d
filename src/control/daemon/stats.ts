// Sums the workers' counters (each a SharedArrayBuffer only its worker writes) into the shape
// `calitap stats` and replay print: per-port rx/tx and per-node, per-reason counts.
import { PortCounters } from '../../dataplane/graph/counters.js';
import { MAX_PORTS, type PortSpec } from '../../dataplane/graph/ports.js';

export interface StatsView {
  ports: { port: string; rxPackets: number; rxBytes: number; txPackets: number; txBytes: number }[];
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
    s === null ? [] : [{ port: names[p], rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, p }],
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
