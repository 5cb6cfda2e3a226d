// In-memory graph harness for the dataplane tests: programs a node from a YAML config, builds the core
// graph over in-memory sinks that record every transmitted frame (port, bytes, timestamp), and runs
// batches of crafted frames through it. One harness = one graph + one batch, owned by the test.
import { loadConfigText } from '../../src/control/config/load.js';
import { Programmer } from '../../src/control/daemon/program.js';
import { buildGraph, type BuiltGraph, type GraphFeature } from '../../src/dataplane/graph/build.js';
import { DATAPLANE_FEATURES } from '../../src/dataplane/features/index.js';
import type { DataplaneParams, PortSink } from '../../src/dataplane/graph/env.js';
import { Batch } from '../../src/dataplane/graph/packet.js';
import { PortCounters } from '../../src/dataplane/graph/counters.js';
import { NBR_INCOMPLETE, NBR_REACHABLE, type NeighborTable } from '../../src/dataplane/tables/neighbor.js';

export const UPLINK_MAC = '52:54:00:00:00:0a';
export const GW_MAC = '52:54:00:00:00:fe';
export const NODE_B_MAC = '52:54:00:00:00:0b';
export const W1 = { port: 'cali1', ip: '10.65.0.2', mac: '0a:58:0a:41:00:02' };
export const W2 = { port: 'cali2', ip: '10.65.0.3', mac: '0a:58:0a:41:00:03' };
export const NODE_IP = '10.0.0.1';
export const NAT_IP = '10.0.0.100';
export const GW_IP = '10.0.0.254';
export const NODE_B_IP = '10.0.0.2';

const STATIC_NEIGHBORS = `
  neighbors:
    - { ip: ${GW_IP}, mac: '${GW_MAC}' }
    - { ip: ${NODE_B_IP}, mac: '${NODE_B_MAC}' }`;

/**
 * node-a (10.0.0.1/24) and node-b (10.0.0.2/24) on one segment, gateway 10.0.0.254; one pool without
 * encapsulation (so every route is local / direct / gateway / blackhole); two workloads on node-a;
 * natOutgoingAddress 10.0.0.100 (an address calitap owns on the uplink, not the node IP).
 */
export function clusterYaml(opts: { staticNeighbors?: boolean; uplinkMtu?: number } = {}): string {
  return `
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: { name: pool-a }
spec: { cidr: 10.65.0.0/16, ipipMode: Never, vxlanMode: Never }
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: { name: node-a }
spec: { bgp: { ipv4Address: 10.0.0.1/24 } }
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: { name: node-b }
spec: { bgp: { ipv4Address: 10.0.0.2/24 } }
---
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: { name: a-0 }
spec: { node: node-a, cidr: 10.65.0.0/26 }
---
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: { name: b-64 }
spec: { node: node-b, cidr: 10.65.0.64/26 }
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: { name: w1 }
spec: { node: node-a, interfaceName: ${W1.port}, ipNetworks: [${W1.ip}/32], mac: '${W1.mac}' }
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: { name: w2 }
spec: { node: node-a, interfaceName: ${W2.port}, ipNetworks: [${W2.ip}], mac: '${W2.mac}' }
---
apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata: { name: default }
spec: { natOutgoingAddress: ${NAT_IP} }
---
apiVersion: calitap/v1
kind: Uplink
metadata: { name: node-a }
spec:
  interfaceName: uplink
  mac: '${UPLINK_MAC}'
  gateway: ${GW_IP}
  mtu: ${opts.uplinkMtu ?? 1500}${opts.staticNeighbors === false ? '' : STATIC_NEIGHBORS}
`;
}

export interface Tx {
  port: string;
  bytes: Uint8Array;
  tsSec: number;
  tsNsec: number;
}

/** Accepts every frame at once: counts it as sent (devices count tx, see devices/device.ts). */
class MemSink implements PortSink {
  constructor(
    private readonly name: string,
    private readonly out: Tx[],
    private readonly pc: PortCounters,
    private readonly p: number,
  ) {}
  tx(b: Batch, i: number): void {
    this.pc.txPackets[this.p]++;
    this.pc.txBytes[this.p] += b.len[i];
    this.out.push({
      port: this.name,
      bytes: b.u8.slice(b.off[i], b.off[i] + b.len[i]),
      tsSec: b.tsSec[i],
      tsNsec: b.tsNsec[i],
    });
  }
  flush(): void {}
}

export interface HarnessOpts {
  yaml?: string;
  node?: string;
  params?: Partial<DataplaneParams>;
  capacity?: number;
  trace?: boolean;
  /** graph features (spoof check, NAT, encapsulation): all of them by default, as replay and workers */
  features?: readonly GraphFeature[];
  /** fuse fusable features into the edges entering their arcs (default: CALITAP_TEST_UNFUSED unset) */
  fused?: boolean;
  /** put ip4-fast in front of the general nodes (default: CALITAP_TEST_NO_FAST unset) */
  fast?: boolean;
  /**
   * Start with every ARP-learned neighbour back to incomplete (the Programmer, and so its neighbour
   * table, is shared between harnesses of the same config: a fresh one costs a 64 MiB FIB).
   */
  fresh?: boolean;
}

const programCache = new Map<string, Programmer>();

/** Programs (once per YAML text) a node: each Programmer allocates a 64 MiB FIB, so tests share them. */
export function programmer(yaml: string, node = 'node-a'): Programmer {
  const key = `${node}\n${yaml}`;
  let p = programCache.get(key);
  if (!p) {
    p = new Programmer(loadConfigText(yaml, 't.yaml'), node, { natSeed: 0 });
    programCache.set(key, p);
  }
  return p;
}

/** Puts every reachable (ARP-learned) neighbour back to incomplete; static entries stay. */
function forgetLearned(nbr: NeighborTable): void {
  for (let i = 0; i < nbr.capacity; i++) {
    if (nbr.state[i] === NBR_REACHABLE) {
      nbr.macHi[i] = 0;
      nbr.macLo[i] = 0;
      nbr.state[i] = NBR_INCOMPLETE;
    }
  }
}

export class Harness {
  readonly prog: Programmer;
  readonly g: BuiltGraph;
  readonly b: Batch;
  /** every frame transmitted so far, in order */
  readonly sent: Tx[] = [];
  /** trace of the last run (when tracing) */
  lastTrace: string[][] = [];

  constructor(opts: HarnessOpts = {}) {
    const yaml = opts.yaml ?? clusterYaml();
    this.prog = programmer(yaml, opts.node);
    if (opts.fresh) forgetLearned(this.prog.env.nbr);
    const env = { ...this.prog.env, params: { ...this.prog.env.params, ...opts.params } };
    const capacity = opts.capacity ?? 256;
    const pc = new PortCounters(env.ports.count);
    this.g = buildGraph(
      env,
      env.ports.names.map((n, p) => new MemSink(n, this.sent, pc, p)),
      capacity,
      opts.features ?? DATAPLANE_FEATURES,
      {
        fused: opts.fused ?? process.env.CALITAP_TEST_UNFUSED === undefined,
        fast: opts.fast ?? process.env.CALITAP_TEST_NO_FAST === undefined,
        shared: { portCounters: pc },
      },
    );
    this.b = new Batch(capacity);
    if (opts.trace) this.b.trace = [];
  }

  port(name: string): number {
    const p = this.prog.env.ports.index(name);
    if (p === undefined) throw new Error(`no port ${name}`);
    return p;
  }

  /**
   * Like one replay round: runs the timers at time `t` (seconds), then pushes the frames (port name,
   * bytes) into a fresh batch stamped `t` and runs the graph. Returns everything transmitted.
   */
  run(frames: [string, Uint8Array][], t = 0): Tx[] {
    const before = this.sent.length;
    this.tick(t);
    const b = this.b;
    b.reset();
    if (b.trace !== null) b.trace = [];
    b.nowSec = Math.floor(t);
    b.nowNsec = Math.round((t - Math.floor(t)) * 1e9);
    for (const [port, bytes] of frames) {
      if (b.push(bytes, 0, bytes.length, this.port(port), b.nowSec, b.nowNsec) < 0)
        throw new Error('push failed');
    }
    this.g.graph.run(b);
    if (b.trace !== null) this.lastTrace = b.trace.map((l) => [...(l ?? [])]);
    return this.sent.slice(before);
  }

  /** One frame in, what came out. */
  one(port: string, bytes: Uint8Array, t = 0): Tx[] {
    return this.run([[port, bytes]], t);
  }

  /** Runs the timers at time `t` (fresh batch); returns what they transmitted. */
  tick(t: number): Tx[] {
    const before = this.sent.length;
    const b = this.b;
    b.reset();
    b.nowSec = Math.floor(t);
    b.nowNsec = Math.round((t - Math.floor(t)) * 1e9);
    this.g.graph.tick(b, t);
    return this.sent.slice(before);
  }

  finish(): Tx[] {
    const before = this.sent.length;
    this.b.reset();
    this.g.graph.finish(this.b);
    return this.sent.slice(before);
  }

  /** Counter value for `node: reason` (0 when never bumped). */
  c(name: string): number {
    const [node, reason] = name.split(': ');
    const names = this.g.graph.registry.names;
    const k = names.findIndex((n) => n.node === node && n.reason === reason);
    if (k < 0) throw new Error(`no counter ${name}`);
    return this.g.graph.counters.values[k];
  }

  /** All non-zero counters as { 'node: reason': value }. */
  counters(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.g.graph.counters.rows()) out[`${r.node}: ${r.reason}`] = r.value;
    return out;
  }

  txPackets(port?: string): number {
    const pc = this.g.graph.portCounters;
    if (port !== undefined) return pc.txPackets[this.port(port)];
    return pc.txPackets.reduce((a, v) => a + v, 0);
  }
}
