// Forwarding-graph micro-benchmark: packets per second through the whole graph (the same graph
// replay and the live workers build, encapsulation and NAT layers included), single thread, warm, no
// I/O. Not a test. Run: `npx tsc -p tsconfig.build.json && node dist/bench/graph.bench.js [--quick]`,
// or call `runGraphBench` from the bench runner (`npm run bench`).
//
// Set-up: pcaps/sample-config.yaml programmed as node-a; every port's sink only counts. Frames are
// 60 bytes (64 on the wire with the FCS): Ethernet + IPv4 + UDP + 18 bytes of payload, from a local
// workload. Paths:
//   local         cali1a2b3c4d5e6 10.65.0.2 -> 10.65.0.3 (another workload on node-a)
//   direct        10.65.0.2 -> 10.65.0.70 (node-b's block, same subnet: routed to node-b's MAC)
//   gateway       cali9f8e7d6c5b4 10.66.0.2 -> 192.0.2.10 (pool without natOutgoing: plain routing)
//   gateway+snat  10.65.0.2 -> 192.0.2.10 (pool-ipip has natOutgoing: one SNAT flow, table hit)
//   vxlan         10.65.0.2 -> 10.66.0.130 (node-c's VXLAN block: encapsulated)
// Each round refills all 256 slots of a batch from a template frame kept in the same arena (a
// Uint32Array copy of 15 words per frame plus the per-packet metadata), then runs the graph. The
// refill alone is timed over the same number of rounds and reported separately: "graph Mpps" is
// packets / (total time - refill time), "end-to-end Mpps" includes the refill. Each path runs ≥ 2 s
// (0.5 s with quick) after a 0.3 s warm-up. `--per-node` also times each node's process() per batch
// (ns per packet by node); `--path NAME` (repeatable) runs only those paths, e.g. under --cpu-prof.
import { pathToFileURL } from 'node:url';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfigFile } from '../src/control/config/load.js';
import { Programmer } from '../src/control/daemon/program.js';
import { buildGraph, type BuiltGraph } from '../src/dataplane/graph/build.js';
import type { PortSink } from '../src/dataplane/graph/env.js';
import { DATAPLANE_FEATURES } from '../src/dataplane/features/index.js';
import { Batch, SLOT_SIZE, DEFAULT_BATCH } from '../src/dataplane/graph/packet.js';
import { emitEthernet, ETHERTYPE_IPV4 } from '../src/dataplane/wire/ethernet.js';
import { emitIp4Header, IPPROTO_UDP } from '../src/dataplane/wire/ipv4.js';
import { emitUdpHeader, udpSetChecksum } from '../src/dataplane/wire/udp.js';
import { parseIp4, parseMac } from '../src/common/addr.js';

export interface GraphBenchRow {
  path: string;
  packets: number;
  seconds: number;
  /** refill cost per packet (ns) */
  refillNs: number;
  /** graph only: refill time subtracted */
  graphMpps: number;
  graphNsPerPacket: number;
  /** refill + graph */
  endToEndMpps: number;
  /** packets the sinks received / packets pushed (1 when nothing was dropped) */
  txRatio: number;
  /** with perNode: ns per packet spent in each node's process() (timed per batch) */
  nodes?: Record<string, number>;
}

export const FRAME_LEN = 60;

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

class CountingSink implements PortSink {
  n = 0;
  tx(): void {
    this.n++;
  }
  flush(): void {}
}

interface PathSpec {
  name: string;
  port: string;
  srcMac: string;
  src: string;
  dst: string;
}

const PATHS: PathSpec[] = [
  { name: 'local', port: 'cali1a2b3c4d5e6', srcMac: '0a:58:0a:41:00:02', src: '10.65.0.2', dst: '10.65.0.3' },
  {
    name: 'direct',
    port: 'cali1a2b3c4d5e6',
    srcMac: '0a:58:0a:41:00:02',
    src: '10.65.0.2',
    dst: '10.65.0.70',
  },
  {
    name: 'gateway',
    port: 'cali9f8e7d6c5b4',
    srcMac: '0a:58:0a:42:00:02',
    src: '10.66.0.2',
    dst: '192.0.2.10',
  },
  {
    name: 'gateway+snat',
    port: 'cali1a2b3c4d5e6',
    srcMac: '0a:58:0a:41:00:02',
    src: '10.65.0.2',
    dst: '192.0.2.10',
  },
  {
    name: 'vxlan',
    port: 'cali1a2b3c4d5e6',
    srcMac: '0a:58:0a:41:00:02',
    src: '10.65.0.2',
    dst: '10.66.0.130',
  },
];

/** Writes the 60-byte Ethernet + IPv4 + UDP frame of `p` at u8[off]. */
export function writeFrame(u8: Uint8Array, off: number, p: PathSpec, id = 1): void {
  emitEthernet(u8, off, parseMac('ee:ee:ee:ee:ee:ee')!, parseMac(p.srcMac)!, ETHERTYPE_IPV4);
  const ipLen = FRAME_LEN - 14;
  emitIp4Header(u8, off + 14, parseIp4(p.src)!, parseIp4(p.dst)!, IPPROTO_UDP, ipLen, 64, id, 0, 0);
  emitUdpHeader(u8, off + 34, 40000, 5001, ipLen - 20, 0);
  for (let k = 42; k < FRAME_LEN; k++) u8[off + k] = k;
  udpSetChecksum(u8, off + 14);
}

export const BENCH_PATHS: readonly PathSpec[] = PATHS;

/**
 * Refills every slot of `b` with the template at word offset `tplW` (15 words = 60 bytes). Frame
 * offsets go back to their slot's start first: encapsulation moves them into the headroom.
 */
function refill(b: Batch, off0: Uint32Array, w32: Uint32Array, tplW: number, port: number): void {
  const cap = b.capacity;
  const off = b.off;
  off.set(off0);
  for (let i = 0; i < cap; i++) {
    const o = off[i] >>> 2;
    for (let k = 0; k < 15; k++) w32[o + k] = w32[tplW + k];
  }
  b.len.fill(FRAME_LEN);
  b.rxPort.fill(port);
  b.txPort.fill(0);
  b.adj.fill(0);
  b.flags.fill(0);
  for (let i = 0; i < cap; i++) b.cause[i] = i;
  b.count = cap;
}

/**
 * Wraps every node's process() to add its time (ns) to the returned array, indexed like
 * graph.nodes(). Costs two hrtime calls per node per batch (~0.2 ns per packet at 256 a batch).
 */
function timeNodes(g: BuiltGraph): Float64Array {
  const nodes = g.graph.nodes();
  const acc = new Float64Array(nodes.length);
  nodes.forEach((node, k) => {
    const orig = node.process.bind(node);
    node.process = (b, q, n) => {
      const t = process.hrtime.bigint();
      orig(b, q, n);
      acc[k] += Number(process.hrtime.bigint() - t);
    };
  });
  return acc;
}

/**
 * The benches' clock (this one's and encap.bench.ts's): wall time, or with CALITAP_BENCH_CPU=1 this
 * process's CPU time (user + system), which stays comparable when other jobs share the cores (µs
 * resolution; each interval measured is ≥ 0.5 s).
 */
export const clock: () => bigint =
  process.env.CALITAP_BENCH_CPU === '1'
    ? () => {
        const u = process.cpuUsage();
        return BigInt(u.user + u.system) * 1000n;
      }
    : () => process.hrtime.bigint();

/** One path: returns packets, seconds with and without the graph. */
function measure(
  g: BuiltGraph,
  b: Batch,
  w32: Uint32Array,
  tplW: number,
  port: number,
  seconds: number,
  afterWarmup: () => void,
) {
  const graph = g.graph;
  const off0 = b.off.slice();
  const budget = BigInt(Math.round(seconds * 1e9));
  // warm-up (JIT) with the same code path
  const warmEnd = clock() + 300_000_000n;
  while (clock() < warmEnd) {
    for (let r = 0; r < 64; r++) {
      refill(b, off0, w32, tplW, port);
      graph.run(b);
    }
  }
  afterWarmup();
  let rounds = 0;
  const t0 = clock();
  let t1 = t0;
  while (t1 - t0 < budget) {
    for (let r = 0; r < 256; r++) {
      refill(b, off0, w32, tplW, port);
      graph.run(b);
    }
    rounds += 256;
    t1 = clock();
  }
  const totalNs = Number(t1 - t0);
  // the refill alone, same number of rounds
  const r0 = clock();
  for (let r = 0; r < rounds; r++) refill(b, off0, w32, tplW, port);
  const refillNs = Number(clock() - r0);
  return { packets: rounds * b.capacity, totalNs, refillNs };
}

export async function runGraphBench(
  opts: { quick?: boolean; seconds?: number; paths?: string[]; perNode?: boolean } = {},
): Promise<GraphBenchRow[]> {
  const seconds = opts.seconds ?? (opts.quick ? 0.5 : 2);
  const cfg = loadConfigFile(path.join(ROOT, 'pcaps', 'sample-config.yaml'));
  const rows: GraphBenchRow[] = [];
  for (const p of PATHS) {
    if (opts.paths && !opts.paths.includes(p.name)) continue;
    // a fresh node per path: NAT state and counters start empty
    const prog = new Programmer(cfg, 'node-a');
    const env = prog.env;
    const sinks = env.ports.names.map(() => new CountingSink());
    const cap = DEFAULT_BATCH;
    const g = buildGraph(env, sinks, cap, DATAPLANE_FEATURES);
    // one arena: the batch's 256 slots, then one more slot holding the template frame
    const arena = new SharedArrayBuffer((cap + 1) * SLOT_SIZE);
    const b = new Batch(cap, arena, 0);
    const tplOff = cap * SLOT_SIZE;
    writeFrame(b.u8, tplOff, p);
    const w32 = new Uint32Array(arena);
    const port = env.ports.index(p.port);
    if (port === undefined) throw new Error(`no port ${p.port}`);
    const nodeNs = opts.perNode ? timeNodes(g) : null;
    const m = measure(g, b, w32, tplOff >>> 2, port, seconds, () => nodeNs?.fill(0));
    const tx = sinks.reduce((a, s) => a + s.n, 0);
    const pushed = g.graph.portCounters.rxPackets[port];
    const graphNs = m.totalNs - m.refillNs;
    rows.push({
      path: p.name,
      packets: m.packets,
      seconds: m.totalNs / 1e9,
      refillNs: m.refillNs / m.packets,
      graphMpps: (m.packets * 1e3) / graphNs,
      graphNsPerPacket: graphNs / m.packets,
      endToEndMpps: (m.packets * 1e3) / m.totalNs,
      txRatio: tx / pushed,
      nodes: nodeNs
        ? Object.fromEntries(
            g.graph
              .nodes()
              .map((nd, k) => [nd.name, nodeNs[k] / m.packets] as [string, number])
              .filter(([, v]) => v > 0),
          )
        : undefined,
    });
  }
  return rows;
}

export function formatGraphBench(rows: GraphBenchRow[]): string {
  const table = [
    ['path', 'packets', 'seconds', 'refill ns/pkt', 'graph ns/pkt', 'graph Mpps', 'e2e Mpps', 'tx/rx'],
  ];
  for (const r of rows) {
    table.push([
      r.path,
      `${(r.packets / 1e6).toFixed(1)} M`,
      r.seconds.toFixed(2),
      r.refillNs.toFixed(1),
      r.graphNsPerPacket.toFixed(1),
      r.graphMpps.toFixed(2),
      r.endToEndMpps.toFixed(2),
      r.txRatio.toFixed(2),
    ]);
  }
  for (const r of rows) {
    if (!r.nodes) continue;
    const parts = Object.entries(r.nodes).map(([n, v]) => `${n} ${v.toFixed(1)}`);
    table.push([`  ${r.path} per node (ns/pkt):`, parts.join(', '), '', '', '', '', '', '']);
  }
  const w = table[0].map((_, c) =>
    Math.max(...table.filter((row) => !row[0].startsWith('  ')).map((row) => row[c].length)),
  );
  const lines = table.map((row) =>
    row[0].startsWith('  ')
      ? `${row[0]} ${row[1]}`
      : row.map((cell, c) => (c === 0 ? cell.padEnd(w[c]) : cell.padStart(w[c]))).join('  '),
  );
  return [
    `graph: ${FRAME_LEN}-byte frames, batch ${DEFAULT_BATCH}, 1 thread, node ${process.version}`,
    ...lines,
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // --quick: 0.5 s per path; --path NAME (repeatable): only those paths (e.g. for node --cpu-prof)
  const paths = process.argv.flatMap((a, k) => (process.argv[k - 1] === '--path' ? [a] : []));
  const rows = await runGraphBench({
    quick: process.argv.includes('--quick'),
    paths: paths.length > 0 ? paths : undefined,
    perNode: process.argv.includes('--per-node'),
  });
  console.log(formatGraphBench(rows));
}
