// SNAT (natOutgoing) through the whole graph, single thread, in memory: new flows per second (every
// packet a TCP SYN of a flow the table has never seen, until the table holds N flows), established
// flows in2out (pod -> Internet, TCP ACKs of random live flows) and out2in (the Internet's answers to
// nat ip:port), and the table's memory per 1 M flows. Not a test. Run after a build:
// `node dist/bench/snat.bench.js [--quick]`, or through the bench runner (`runSnatBench`).
//
// Same harness as bench/encap.bench.ts (pcaps/encap/cluster.yaml as node-a, counting sinks, batches of
// 256 refilled from a template, timers ticked once per batch, refill timed apart): the template is the
// 60-byte TCP frame 10.65.0.2:sport -> 198.18.x.y:80 (64 B on the wire), and the mutator writes flow k's
// source port and destination (IPv4 checksum patched incrementally, as a generator would precompute):
// flow k = sport 1024 + (k & 8191), destination 198.18.0.0 + (k >> 13), so each remote endpoint takes
// 8192 of the 28 232 nat ports. Out2in frames come from the router: 198.18.x.y:80 -> 10.0.0.1:natPort(k).
// The NAT table is sized for N flows (N = 1 M; 128 k with --quick). "4 k hot flows": the packets of that
// row pick among 4096 of the N live flows only, to separate the table's cache misses from its code.
// The NAT table's memory is advised for transparent huge pages as the daemon does (adviseHugePages; a
// no-op without the addon or with THP off). CALITAP_BENCH_CPU=1: CPU time instead of wall time.
import { pathToFileURL } from 'node:url';
import { Programmer } from '../src/control/daemon/program.js';
import { csumAdjust32 } from '../src/dataplane/wire/checksum.js';
import { emitEthernet, ETHERTYPE_IPV4 } from '../src/dataplane/wire/ethernet.js';
import { emitIp4Header, IPPROTO_TCP } from '../src/dataplane/wire/ipv4.js';
import { tcpSetChecksum } from '../src/dataplane/wire/tcp.js';
import { MACS, clusterConfig, harness, measure, podFrame, type Mutator } from './encap.bench.js';
import { parseMac } from '../src/common/addr.js';
import { adviseHugePages } from '../src/dataplane/devices/native.js';

const POD_MAC = parseMac('0a:58:0a:41:00:02')!;
const DST_BASE = 0xc6120000; // 198.18.0.0 (RFC 2544 benchmarking range: in no pool)
const NOW = 1000;

function dstOf(k: number): number {
  return (DST_BASE + (k >>> 13)) >>> 0;
}
function sportOf(k: number): number {
  return 1024 + (k & 8191);
}

function wr32(u8: Uint8Array, o: number, v: number): void {
  u8[o] = v >>> 24;
  u8[o + 1] = (v >>> 16) & 255;
  u8[o + 2] = (v >>> 8) & 255;
  u8[o + 3] = v & 255;
}

/** Writes flow k into a pod frame made from the template (dst 198.18.0.0, checksum `csum0`). */
function podMutator(csum0: number, flows: number, pick: (seq: number) => number): Mutator {
  return (u8, off, seq) => {
    const k = pick(seq) % flows;
    const dst = dstOf(k);
    wr32(u8, off + 30, dst);
    const c = csumAdjust32(csum0, DST_BASE, dst);
    u8[off + 24] = c >>> 8;
    u8[off + 25] = c & 255;
    u8[off + 34] = sportOf(k) >>> 8;
    u8[off + 35] = sportOf(k) & 255;
  };
}

/** xorshift32 over the packet number: a fixed pseudo-random flow order. */
function scramble(seq: number): number {
  let x = (seq * 0x9e3779b1) | 0 || 1;
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return x >>> 0;
}

export interface SnatBenchRow {
  case: string;
  /** flows in the table while measuring */
  flows: number;
  packets: number;
  seconds: number;
  graphMpps: number;
  graphNsPerPacket: number;
  endToEndMpps: number;
  txRatio: number;
}

export interface SnatBenchResult {
  rows: SnatBenchRow[];
  /** NatTable bytes for a table sized for 1 M flows, and per flow */
  memoryPer1MFlows: number;
  bytesPerFlow: number;
}

function row(name: string, flows: number, m: ReturnType<typeof measure>): SnatBenchRow {
  const graphNs = m.totalNs - m.refillNs;
  return {
    case: name,
    flows,
    packets: m.packets,
    seconds: m.totalNs / 1e9,
    graphMpps: (m.packets * 1e3) / graphNs,
    graphNsPerPacket: graphNs / m.packets,
    endToEndMpps: (m.packets * 1e3) / m.totalNs,
    txRatio: m.txRatio,
  };
}

export async function runSnatBench(
  opts: { quick?: boolean; seconds?: number } = {},
): Promise<SnatBenchResult> {
  const seconds = opts.seconds ?? (opts.quick ? 0.3 : 2);
  const flows = opts.quick ? 1 << 17 : 1 << 20;
  const cfg = clusterConfig();
  const rows: SnatBenchRow[] = [];

  const setup = (capacity: number) => {
    const h = harness(
      new Programmer(cfg, 'node-a', {
        natSeed: 1,
        natCapacity: capacity,
        natAdvise: (sab) => void adviseHugePages(sab), // as the daemon does
      }),
    );
    const len = podFrame(h.b.u8, h.tplOff, {
      srcMac: POD_MAC,
      src: '10.65.0.2',
      dst: '198.18.0.0',
      proto: IPPROTO_TCP,
      dport: 80,
    });
    h.b.u8[h.tplOff + 47] = 0x02; // SYN
    tcpSetChecksum(h.b.u8, h.tplOff + 14);
    const csum0 = (h.b.u8[h.tplOff + 24] << 8) | h.b.u8[h.tplOff + 25];
    return { h, len, csum0 };
  };

  // JIT warm-up of the new-flow path on a small table
  {
    const w = setup(1 << 16);
    measure(
      w.h,
      { port: 'cali-a65', len: w.len, mutate: podMutator(w.csum0, 1 << 16, (s) => s) },
      { rounds: 200 },
    );
  }

  // New flows: SYNs of never-seen flows, table from empty to `flows` (repeated on fresh tables until the
  // time budget is spent; each fill is timed on its own).
  const budgetNs = seconds * 1e9;
  let newPackets = 0;
  let newNs = 0;
  let newRefillNs = 0;
  let newTx = 0;
  let last: ReturnType<typeof setup> | null = null;
  do {
    last = setup(flows);
    const rounds = Math.floor(flows / last.h.b.capacity);
    const m = measure(
      last.h,
      { port: 'cali-a65', len: last.len, mutate: podMutator(last.csum0, flows, (s) => s) },
      { rounds },
    );
    newPackets += m.packets;
    newNs += m.totalNs;
    newRefillNs += m.refillNs;
    newTx += m.txRatio * m.packets;
    const nat = last.h.prog.env.nat!;
    if (nat.size !== m.packets) throw new Error(`new flows: table holds ${nat.size}, expected ${m.packets}`);
  } while (newNs < budgetNs);
  rows.push(
    row('snat new flows (TCP SYN)', flows, {
      packets: newPackets,
      totalNs: newNs,
      refillNs: newRefillNs,
      txRatio: newTx / newPackets,
    }),
  );

  // Established flows, in2out: ACKs of random live flows of the last full table.
  const { h, len, csum0 } = last;
  const nat = h.prog.env.nat!;
  const live = nat.size;
  h.b.u8[h.tplOff + 47] = 0x10; // ACK
  tcpSetChecksum(h.b.u8, h.tplOff + 14);
  const ack = podMutator(csum0, live, scramble);
  rows.push(
    row(
      'snat established in2out',
      live,
      measure(h, { port: 'cali-a65', len, mutate: ack }, { seconds, warmSeconds: 0.2 }),
    ),
  );
  // the same table, but the packets only touch 4096 of its flows (a cache-resident working set)
  const hot = podMutator(csum0, 4096, scramble);
  rows.push(
    row(
      'snat established in2out, 4 k hot flows',
      live,
      measure(h, { port: 'cali-a65', len, mutate: hot }, { seconds, warmSeconds: 0.2 }),
    ),
  );

  // Established flows, out2in: the servers answer to 10.0.0.1:natPort(k).
  const natPorts = new Uint16Array(live);
  for (let k = 0; k < live; k++) {
    const f = nat.lookupOut(IPPROTO_TCP, 0x0a410002, sportOf(k), dstOf(k), 80, NOW);
    if (f < 0) throw new Error(`flow ${k} missing`);
    natPorts[k] = nat.natPort(f);
  }
  const u8 = h.b.u8;
  const t = h.tplOff;
  emitEthernet(u8, t, MACS.nodeA, MACS.gwA, ETHERTYPE_IPV4);
  emitIp4Header(u8, t + 14, DST_BASE, 0x0a000001, IPPROTO_TCP, 46, 60, 3, 0x4000, 0);
  u8[t + 34] = 0;
  u8[t + 35] = 80;
  u8[t + 36] = natPorts[0] >>> 8;
  u8[t + 37] = natPorts[0] & 255;
  u8[t + 47] = 0x10;
  tcpSetChecksum(u8, t + 14);
  const csumIn = (u8[t + 24] << 8) | u8[t + 25];
  const reply: Mutator = (b8, off, seq) => {
    const k = scramble(seq) % live;
    const src = dstOf(k);
    wr32(b8, off + 26, src);
    const c = csumAdjust32(csumIn, DST_BASE, src);
    b8[off + 24] = c >>> 8;
    b8[off + 25] = c & 255;
    b8[off + 36] = natPorts[k] >>> 8;
    b8[off + 37] = natPorts[k] & 255;
  };
  rows.push(
    row(
      'snat established out2in',
      live,
      measure(h, { port: 'uplink', len, mutate: reply }, { seconds, warmSeconds: 0.2 }),
    ),
  );

  const mem = nat.memoryBytes();
  return { rows, memoryPer1MFlows: (mem / live) * (1 << 20), bytesPerFlow: mem / live };
}

export function formatSnatBench(r: SnatBenchResult): string {
  const header = ['case', 'flows', 'graph Mpps', 'ns/pkt', 'end-to-end Mpps', 'tx ratio'];
  const body = r.rows.map((x) => [
    x.case,
    x.flows.toLocaleString('en-US'),
    x.graphMpps.toFixed(2),
    x.graphNsPerPacket.toFixed(0),
    x.endToEndMpps.toFixed(2),
    x.txRatio.toFixed(3),
  ]);
  const w = header.map((h, c) => Math.max(h.length, ...body.map((row) => row[c].length)));
  const line = (cells: string[]) =>
    cells.map((s, c) => (c === 0 ? s.padEnd(w[c]) : s.padStart(w[c]))).join('  ');
  return [
    'SNAT through the whole graph (single thread, 60-byte TCP frames, 256-packet batches)',
    line(header),
    ...body.map(line),
    `NAT table memory: ${(r.memoryPer1MFlows / 2 ** 20).toFixed(1)} MiB per 1 M flows (${r.bytesPerFlow.toFixed(1)} B/flow)`,
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(formatSnatBench(await runSnatBench({ quick: process.argv.includes('--quick') })));
}
