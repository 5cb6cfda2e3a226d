// interface-output: hands each packet to its transmit port's device (pcap writer, TAP queue, uplink
// socket, memory device). Devices queue what they are handed and write it when the graph owner
// flushes them after a batch; they count tx (a frame counts as sent only once the device accepted
// it) and what they refused (per port and reason, `port-output`). The sinks array is the owner's: a
// port change replaces its entries in place (no rebuild). Runs on the thread that owns the graph.
import { GraphNode, drop, type NodeDecl } from '../graph.js';
import type { Batch } from '../packet.js';
import type { DataplaneEnv, PortSink } from '../env.js';

export class InterfaceOutput extends GraphNode {
  readonly decl: NodeDecl = { name: 'interface-output', reasons: [drop('no-sink')] };

  constructor(
    private readonly sinks: (PortSink | null)[],
    private readonly env: DataplaneEnv,
  ) {
    super();
  }

  portName(p: number): string {
    return this.env.ports.names[p] ?? `port${p}`;
  }

  override process(b: Batch, q: Uint16Array, n: number): void {
    for (let k = 0; k < n; k++) {
      const i = q[k];
      const p = b.txPort[i];
      const sink = this.sinks[p];
      if (sink === null || sink === undefined) {
        this.drop(b, i, 0);
        continue;
      }
      if (b.trace !== null) b.note(i, this.name, `tx ${this.portName(p)} ${b.len[i]} bytes`);
      sink.tx(b, i);
    }
  }
}
