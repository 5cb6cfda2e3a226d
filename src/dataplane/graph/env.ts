// What a graph needs to run: the shared tables, the port table, per-node parameters and the places
// transmitted frames go. Built by the control side (control/program.ts) for replay, or handed to a
// worker (live dataplane) as SharedArrayBuffers plus plain parameters.
import type { Lpm4 } from '../tables/lpm.js';
import type { AdjacencyTable } from '../tables/adjacency.js';
import type { NeighborTable } from '../tables/neighbor.js';
import type { PortTable } from './ports.js';
import type { Batch } from './packet.js';
import type { NatTable } from '../tables/nat/table.js';
import type { PolicyTables } from '../tables/policy/tables.js';
import type { PolicyFlowTable } from '../tables/policy/flows.js';

export interface DataplaneParams {
  /** this node's IP on the uplink: tunnel endpoint, ICMP error source, default SNAT address */
  nodeIp: number;
  /** addresses calitap itself owns on the uplink and answers ARP for (e.g. a natOutgoingAddress) */
  ownedIps: number[];
  /** node IPs allowed to send us IPIP / VXLAN */
  tunnelPeers: number[];
  vxlanPort: number;
  vxlanVni: number;
  /** our VTEP MAC (inner source MAC of VXLAN frames) */
  vtepMac: Uint8Array;
  /** the IP pools (natOutgoing rule: source in a natOutgoing pool, destination in no pool) */
  pools: { addr: number; mask: number; natOutgoing: boolean }[];
  /** ICMP errors: tokens per second and bucket size (Linux: icmp_msgs_per_sec 1000, burst 50) */
  icmpRate: number;
  icmpBurst: number;
  /** ARP: retries before giving up, seconds between them, packets held per neighbour */
  arpRetries: number;
  arpInterval: number;
  arpHoldPerNeighbor: number;
}

/** Is ip one of the addresses calitap owns on the uplink (params.ownedIps as a Uint32Array)? */
export function ownsAddress(owned: Uint32Array, ip: number): boolean {
  for (let k = 0; k < owned.length; k++) if (owned[k] === ip) return true;
  return false;
}

export const DEFAULT_PARAMS: Omit<DataplaneParams, 'nodeIp' | 'vtepMac'> = {
  ownedIps: [],
  tunnelPeers: [],
  pools: [],
  vxlanPort: 4789,
  vxlanVni: 4096,
  icmpRate: 1000,
  icmpBurst: 50,
  arpRetries: 3,
  arpInterval: 1,
  arpHoldPerNeighbor: 4,
};

export interface DataplaneEnv {
  ports: PortTable;
  fib: Lpm4;
  adj: AdjacencyTable;
  nbr: NeighborTable;
  params: DataplaneParams;
  /** the shared SNAT flow table; null when no pool has natOutgoing */
  nat: NatTable | null;
  /** network policy (features/policy); absent: no policy feature in the graph */
  policy?: PolicyEnv;
}

/** The shared policy tables a graph's ip4-policy node reads (control/policy/programmer.ts makes them). */
export interface PolicyEnv {
  tables: PolicyTables;
  flows: PolicyFlowTable;
  /** the label of deny counter c (control side; absent in workers) */
  describe?: (c: number) => string;
}

/** Where interface-output puts frames: one sink per port (pcap writer, TAP queue, memory ring). */
export interface PortSink {
  /** Takes packet i of the batch for transmission (copy or queue it; flush() ends the round). */
  tx(b: Batch, i: number): void;
  /** Called after every batch. */
  flush(): void;
}
