// interface-output: hands each packet to its transmit port's sink and counts tx per port. The sinks
// (pcap writer, TAP queue, uplink socket, memory ring) are flushed by the graph owner after a batch.
// The sinks array is the owner's: a port change replaces its entries in place (no rebuild).
import { GraphNode, drop, type NodeDecl } from '../graph.js';
import type { Batch } from '../packet.js';
import type { DataplaneEnv, PortSink } from '../env.js';
import type { PortCounters } from '../counters.js';

export class InterfaceOutput extends GraphNode {
  readonly decl: NodeDecl = { name: 'interface-output', reasons: [drop('no-sink')] };

  constructor(
    private readonly sinks: (PortSink | null)[],
    private readonly pc: PortCounters,
    private readonly env: DataplaneEnv,
  ) {
    super();
  }

  portName(p: number): string {
    return this.env.ports.names[p] ?? `port${p}`;
  }

  override process(b: Batch, q: Uint16Array, n: number): void {
    const pc = this.pc;
    for (let k = 0; k < n; k++) {
      const i = q[k];
      const p = b.txPort[i];
      const sink = this.sinks[p];
      if (sink === null || sink === undefined) {
        this.drop(b, i, 0);
        continue;
      }
      pc.txPackets[p]++;
      pc.txBytes[p] += b.len[i];
      if (b.trace !== null) b.note(i, this.name, `tx ${this.portName(p)} ${b.len[i]} bytes`);
      sink.tx(b, i);
    }
  }
}
