// Encapsulation micro-benchmark: packets per second through the whole graph (the one replay and the
// live workers build: encap and NAT layers included) for IPIP encap, VXLAN encap, VXLAN decap and IPIP
// decap; single thread, warm, in memory, no I/O. Not a test. Run after a build:
// `node dist/bench/encap.bench.js [--quick]`, or through the bench runner (`runEncapBench`).
//
// Set-up: pcaps/encap/cluster.yaml programmed as node-a; every port's sink only counts. Like a packet
// generator, each round refills all 256 slots of a batch from template frames kept in the same arena
// (Uint32Array word copies; a per-packet "mutator" varies the flow where the case needs it), ticks the
// graph's timers once (as replay and the workers do per batch) and runs the graph. The refill alone is
// timed over the same rounds: "graph Mpps" = packets / (total - refill), "end-to-end Mpps" includes it.
// Frames: 60 bytes (64 on the wire with the FCS) as the pod or the peer node sends them:
//   ipip-encap   cali-a65 10.65.0.2 -> 10.65.0.130 (node-c, IPIP CrossSubnet): UDP, 18 B payload
//   vxlan-encap  cali-a66 10.66.0.2 -> 10.66.0.66 (node-b, VXLAN Always): UDP, 256 source ports
//   vxlan-decap  uplink VXLAN 10.0.0.2 -> 10.0.0.1 carrying a 60-byte frame for 10.66.0.2 (110 B)
//   ipip-decap   uplink IPIP 10.1.0.3 -> 10.0.0.1 carrying a 46-byte packet for 10.65.0.2 (80 B)
// Each case runs >= 2 s (0.3 s with --quick) after a warm-up.
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadConfigFile } from '../src/control/config/load.js';
import type { ClusterConfig } from '../src/control/config/types.js';
import { Programmer } from '../src/control/daemon/program.js';
import { buildGraph, type BuiltGraph } from '../src/dataplane/graph/build.js';
import type { PortSink } from '../src/dataplane/graph/env.js';
import { DATAPLANE_FEATURES } from '../src/dataplane/features/index.js';
import { Batch, DEFAULT_BATCH, SLOT_SIZE } from '../src/dataplane/graph/packet.js';
import { emitEthernet, ETHERTYPE_IPV4 } from '../src/dataplane/wire/ethernet.js';
import { emitIp4Header, IPPROTO_IPIP, IPPROTO_UDP } from '../src/dataplane/wire/ipv4.js';
import { emitUdpHeader, udpSetChecksum } from '../src/dataplane/wire/udp.js';
import { tcpSetChecksum } from '../src/dataplane/wire/tcp.js';
import { emitVxlanHeader } from '../src/dataplane/wire/vxlan.js';
import { parseIp4, parseMac } from '../src/common/addr.js';
import { clock } from './graph.bench.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export function clusterConfig(): ClusterConfig {
  return loadConfigFile(path.join(ROOT, 'pcaps', 'encap', 'cluster.yaml'));
}

export class CountingSink implements PortSink {
  n = 0;
  tx(): void {
    this.n++;
  }
  flush(): void {}
}

/** One graph over one node, a batch whose arena also holds the template frames, counting sinks. */
export interface Harness {
  prog: Programmer;
  g: BuiltGraph;
  b: Batch;
  sinks: CountingSink[];
  w32: Uint32Array;
  /** byte offset of the template area (after the batch's slots) */
  tplOff: number;
  off0: Uint32Array;
}

export const TPL_BYTES = 4096;

export function harness(prog: Programmer): Harness {
  const env = prog.env;
  const sinks = env.ports.names.map(() => new CountingSink());
  const cap = DEFAULT_BATCH;
  const g = buildGraph(env, sinks, cap, DATAPLANE_FEATURES);
  const arena = new SharedArrayBuffer(cap * SLOT_SIZE + TPL_BYTES);
  const b = new Batch(cap, arena, 0);
  return { prog, g, b, sinks, w32: new Uint32Array(arena), tplOff: cap * SLOT_SIZE, off0: b.off.slice() };
}

/** Per-packet variation written after the template copy: (arena bytes, frame offset, packet number). */
export type Mutator = (u8: Uint8Array, off: number, seq: number) => void;

export interface Case {
  /** rx port name */
  port: string;
  /** frame length in bytes */
  len: number;
  mutate?: Mutator;
}

/** Refills all slots from the template; returns the next packet number. */
function refill(
  h: Harness,
  words: number,
  port: number,
  len: number,
  mutate: Mutator | undefined,
  seq: number,
) {
  const b = h.b;
  const cap = b.capacity;
  const off = b.off;
  const w32 = h.w32;
  const tplW = h.tplOff >>> 2;
  const u8 = b.u8;
  off.set(h.off0);
  for (let i = 0; i < cap; i++) {
    const o = off[i] >>> 2;
    for (let k = 0; k < words; k++) w32[o + k] = w32[tplW + k];
    if (mutate !== undefined) mutate(u8, off[i], seq++);
  }
  b.len.fill(len);
  b.rxPort.fill(port);
  b.txPort.fill(0);
  b.adj.fill(0);
  b.flags.fill(0);
  for (let i = 0; i < cap; i++) b.cause[i] = i;
  b.count = cap;
  return seq;
}

export interface Measured {
  packets: number;
  totalNs: number;
  refillNs: number;
  /** packets the sinks received / packets pushed */
  txRatio: number;
}

/**
 * Runs `rounds` batches when given, else batches for `seconds` (after `warmSeconds` of warm-up on
 * the same path); `seq0` is the first packet number handed to the mutator.
 */
export function measure(
  h: Harness,
  c: Case,
  o: { seconds?: number; rounds?: number; warmSeconds?: number; seq0?: number; now?: number },
): Measured {
  const port = h.prog.env.ports.index(c.port);
  if (port === undefined) throw new Error(`no port ${c.port}`);
  const graph = h.g.graph;
  const b = h.b;
  const words = (c.len + 3) >>> 2;
  const now = o.now ?? 1000;
  let seq = o.seq0 ?? 0;
  const round = () => {
    b.count = 0;
    graph.tick(b, now);
    seq = refill(h, words, port, c.len, c.mutate, seq);
    graph.run(b);
  };
  if (o.warmSeconds) {
    const warmEnd = clock() + BigInt(Math.round(o.warmSeconds * 1e9));
    while (clock() < warmEnd) for (let r = 0; r < 32; r++) round();
  }
  const txBefore = h.sinks.reduce((a, s) => a + s.n, 0);
  const seqStart = seq;
  let rounds = 0;
  const t0 = clock();
  let t1 = t0;
  if (o.rounds !== undefined) {
    for (; rounds < o.rounds; rounds++) round();
    t1 = clock();
  } else {
    const budget = BigInt(Math.round((o.seconds ?? 2) * 1e9));
    while (t1 - t0 < budget) {
      for (let r = 0; r < 64; r++) round();
      rounds += 64;
      t1 = clock();
    }
  }
  const totalNs = Number(t1 - t0);
  const packets = rounds * b.capacity;
  const tx = h.sinks.reduce((a, s) => a + s.n, 0) - txBefore;
  // the refill alone over the same rounds and packet numbers (the mutator's work included)
  let s2 = seqStart;
  const r0 = clock();
  for (let r = 0; r < rounds; r++) s2 = refill(h, words, port, c.len, c.mutate, s2);
  const refillNs = Number(clock() - r0);
  b.count = 0;
  return { packets, totalNs, refillNs, txRatio: tx / packets };
}

// ------------------------------------------------------------------------------------------ frames

const mac = (s: string) => parseMac(s)!;
const ipv4 = (s: string) => parseIp4(s)!;
export const MACS = {
  ee: mac('ee:ee:ee:ee:ee:ee'),
  nodeA: mac('52:54:00:00:00:0a'),
  nodeB: mac('52:54:00:00:00:0b'),
  gwA: mac('52:54:00:00:00:fe'),
  vtepA: mac('66:07:02:c1:cc:60'),
  vtepB: mac('66:89:3a:22:7a:ac'),
};

/** A 60-byte pod frame (Ethernet + IPv4 + UDP or TCP) at u8[off]; returns its length. */
export function podFrame(
  u8: Uint8Array,
  off: number,
  o: { srcMac: Uint8Array; src: string; dst: string; proto?: number; sport?: number; dport?: number },
): number {
  const len = 60;
  const proto = o.proto ?? IPPROTO_UDP;
  emitEthernet(u8, off, MACS.ee, o.srcMac, ETHERTYPE_IPV4);
  emitIp4Header(u8, off + 14, ipv4(o.src), ipv4(o.dst), proto, len - 14, 64, 1, 0x4000, 0);
  const l4 = off + 34;
  for (let k = l4; k < off + len; k++) u8[k] = k & 255;
  if (proto === IPPROTO_UDP) {
    emitUdpHeader(u8, l4, o.sport ?? 40000, o.dport ?? 5001, len - 34, 0);
    udpSetChecksum(u8, off + 14);
  } else {
    const dv = new DataView(u8.buffer, u8.byteOffset);
    dv.setUint16(l4, o.sport ?? 40000);
    dv.setUint16(l4 + 2, o.dport ?? 80);
    dv.setUint32(l4 + 4, 1000);
    dv.setUint32(l4 + 8, 2000);
    u8[l4 + 12] = 0x50;
    u8[l4 + 13] = 0x10; // ACK
    dv.setUint16(l4 + 14, 65535);
    dv.setUint16(l4 + 16, 0);
    dv.setUint16(l4 + 18, 0);
    tcpSetChecksum(u8, off + 14);
  }
  return len;
}

/** node-b's VXLAN frame carrying a 60-byte frame from 10.66.0.66 to our pod 10.66.0.2. */
function vxlanFromB(u8: Uint8Array, off: number): number {
  const inner = 60;
  emitEthernet(u8, off, MACS.nodeA, MACS.nodeB, ETHERTYPE_IPV4);
  emitIp4Header(
    u8,
    off + 14,
    ipv4('10.0.0.2'),
    ipv4('10.0.0.1'),
    IPPROTO_UDP,
    20 + 8 + 8 + inner,
    64,
    7,
    0,
    0,
  );
  emitUdpHeader(u8, off + 34, 49152, 4789, 8 + 8 + inner, 0);
  emitVxlanHeader(u8, off + 42, 4096);
  const ie = off + 50;
  emitEthernet(u8, ie, MACS.vtepA, MACS.vtepB, ETHERTYPE_IPV4);
  emitIp4Header(u8, ie + 14, ipv4('10.66.0.66'), ipv4('10.66.0.2'), IPPROTO_UDP, inner - 14, 63, 9, 0, 0);
  emitUdpHeader(u8, ie + 34, 7000, 5000, inner - 34, 0);
  for (let k = ie + 42; k < ie + inner; k++) u8[k] = k & 255;
  udpSetChecksum(u8, ie + 14);
  return 50 + inner;
}

/** node-c's IPIP packet carrying a 46-byte packet from 10.65.0.130 to our pod 10.65.0.2. */
function ipipFromC(u8: Uint8Array, off: number): number {
  const inner = 46;
  emitEthernet(u8, off, MACS.nodeA, MACS.gwA, ETHERTYPE_IPV4);
  emitIp4Header(u8, off + 14, ipv4('10.1.0.3'), ipv4('10.0.0.1'), IPPROTO_IPIP, 20 + inner, 62, 7, 0, 0);
  const ii = off + 34;
  emitIp4Header(u8, ii, ipv4('10.65.0.130'), ipv4('10.65.0.2'), IPPROTO_UDP, inner, 63, 9, 0, 0);
  emitUdpHeader(u8, ii + 20, 7000, 5000, inner - 20, 0);
  for (let k = ii + 28; k < ii + inner; k++) u8[k] = k & 255;
  udpSetChecksum(u8, ii);
  return 14 + 20 + inner;
}

// ------------------------------------------------------------------------------------------ runner

export interface EncapBenchRow {
  case: string;
  frameBytes: number;
  packets: number;
  seconds: number;
  refillNs: number;
  graphMpps: number;
  graphNsPerPacket: number;
  endToEndMpps: number;
  txRatio: number;
}

interface EncapCase {
  name: string;
  port: string;
  write: (u8: Uint8Array, off: number) => number;
  mutate?: Mutator;
}

const CASES: EncapCase[] = [
  {
    name: 'ipip-encap',
    port: 'cali-a65',
    write: (u8, off) =>
      podFrame(u8, off, { srcMac: mac('0a:58:0a:41:00:02'), src: '10.65.0.2', dst: '10.65.0.130' }),
  },
  {
    name: 'vxlan-encap',
    port: 'cali-a66',
    write: (u8, off) =>
      podFrame(u8, off, { srcMac: mac('0a:58:0a:42:00:02'), src: '10.66.0.2', dst: '10.66.0.66' }),
    // 256 flows: the UDP source port's low byte (the UDP checksum is not re-verified by anyone)
    mutate: (u8, off, seq) => {
      u8[off + 35] = seq & 255;
    },
  },
  { name: 'vxlan-decap', port: 'uplink', write: vxlanFromB },
  { name: 'ipip-decap', port: 'uplink', write: ipipFromC },
];

export async function runEncapBench(
  opts: { quick?: boolean; seconds?: number } = {},
): Promise<EncapBenchRow[]> {
  const seconds = opts.seconds ?? (opts.quick ? 0.3 : 2);
  const cfg = clusterConfig();
  const rows: EncapBenchRow[] = [];
  for (const c of CASES) {
    const h = harness(new Programmer(cfg, 'node-a', { natSeed: 0 }));
    const len = c.write(h.b.u8, h.tplOff);
    const m = measure(h, { port: c.port, len, mutate: c.mutate }, { seconds, warmSeconds: 0.3 });
    const graphNs = m.totalNs - m.refillNs;
    rows.push({
      case: c.name,
      frameBytes: len,
      packets: m.packets,
      seconds: m.totalNs / 1e9,
      refillNs: m.refillNs / m.packets,
      graphMpps: (m.packets * 1e3) / graphNs,
      graphNsPerPacket: graphNs / m.packets,
      endToEndMpps: (m.packets * 1e3) / m.totalNs,
      txRatio: m.txRatio,
    });
  }
  return rows;
}

export function formatEncapBench(rows: EncapBenchRow[]): string {
  const header = ['case', 'frame B', 'graph Mpps', 'ns/pkt', 'end-to-end Mpps', 'refill ns', 'tx ratio'];
  const body = rows.map((r) => [
    r.case,
    String(r.frameBytes),
    r.graphMpps.toFixed(2),
    r.graphNsPerPacket.toFixed(0),
    r.endToEndMpps.toFixed(2),
    r.refillNs.toFixed(1),
    r.txRatio.toFixed(3),
  ]);
  const w = header.map((h, c) => Math.max(h.length, ...body.map((row) => row[c].length)));
  const line = (cells: string[]) =>
    cells.map((s, c) => (c === 0 ? s.padEnd(w[c]) : s.padStart(w[c]))).join('  ');
  return [
    'encapsulation through the whole graph (single thread, 256-packet batches, node-a of pcaps/encap/cluster.yaml)',
    line(header),
    ...body.map(line),
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(formatEncapBench(await runEncapBench({ quick: process.argv.includes('--quick') })));
}
