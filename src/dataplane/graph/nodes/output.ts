// interface-output: hands each packet to its transmit port's sink and counts tx per port. The sinks
// (pcap writer, TAP queue, uplink socket, memory ring) are flushed by the graph owner after a batch.
import { GraphNode } from '../graph.js';
import type { Batch } from '../packet.js';
import type { PortSink } from '../env.js';
import type { PortCounters } from '../counters.js';

export class InterfaceOutput extends GraphNode {
  readonly name = 'interface-output';
  readonly reasons = ['no-sink'];

  constructor(
    private readonly sinks: (PortSink | null)[],
    private readonly pc: PortCounters,
    private readonly names: string[],
  ) {
    super();
  }

  portName(p: number): string {
    return this.names[p] ?? `port${p}`;
  }

  process(b: Batch, q: Uint16Array, n: number): void {
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
      if (b.trace !== null) b.note(i, this.name, `tx ${this.names[p]} ${b.len[i]} bytes`);
      sink.tx(b, i);
    }
  }
}
