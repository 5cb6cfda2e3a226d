// SNAT table micro-benchmark (single thread): established-flow lookups per second (random among 100 k and
// 1 M live flows, both directions), new flows per second (create until the table holds N flows) and memory
// per table. Flow keys are computed from a flow number so the benchmark touches no key arrays of its own.
// Run after a build: `node dist/bench/nat.bench.js [--quick]`.
import { pathToFileURL } from 'node:url';
import { NatTable } from '../src/dataplane/tables/nat/table.js';

export interface NatBenchRow {
  flows: number;
  createPerSec: number;
  lookupOutPerSec: number;
  lookupInPerSec: number;
  batchOutPerSec: number;
  batchInPerSec: number;
  memoryBytes: number;
  bytesPerFlow: number;
}

const NAT_IP = 0xc0a80164; // 192.168.1.100
const DST_PORT = 443;

function srcIpOf(k: number): number {
  return (0x0a400000 | (k >>> 8)) >>> 0; // 10.64.x.y: 256 flows per pod
}
function srcPortOf(k: number): number {
  return 20000 + (k & 255);
}
function dstIpOf(k: number): number {
  return (0x5db80000 | (Math.imul(k, 2654435761) >>> 20)) >>> 0; // 93.184.x.y: 4096 remote hosts
}

function nowNs(): number {
  return Number(process.hrtime.bigint());
}

function benchOne(flows: number, lookups: number): NatBenchRow {
  const t = NatTable.create({
    capacity: flows,
    natIps: [NAT_IP],
    portLo: 1024,
    portHi: 65535,
    seed: 1,
    hashKey: 0x1234567,
  });
  let now = 1000;
  let t0 = nowNs();
  for (let k = 0; k < flows; k++) {
    if (t.createOut(6, srcIpOf(k), srcPortOf(k), dstIpOf(k), DST_PORT, now) < 0) {
      throw new Error(`create failed at flow ${k}`);
    }
  }
  const createNs = nowNs() - t0;
  // The nat ports chosen, to drive out2in lookups.
  const natPorts = new Uint16Array(flows);
  for (let k = 0; k < flows; k++) {
    natPorts[k] = t.natPort(t.lookupOut(6, srcIpOf(k), srcPortOf(k), dstIpOf(k), DST_PORT, now));
  }
  now++;
  let x = 0x9e3779b9;
  let misses = 0;
  t0 = nowNs();
  for (let n = 0; n < lookups; n++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const k = (x >>> 0) % flows;
    if (t.lookupOut(6, srcIpOf(k), srcPortOf(k), dstIpOf(k), DST_PORT, now) < 0) misses++;
  }
  const outNs = nowNs() - t0;
  t0 = nowNs();
  for (let n = 0; n < lookups; n++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const k = (x >>> 0) % flows;
    if (t.lookupIn(6, dstIpOf(k), DST_PORT, NAT_IP, natPorts[k], now) < 0) misses++;
  }
  const inNs = nowNs() - t0;
  // Batched (256 packets per call, as a graph node would).
  const B = 256;
  const keys = new Int32Array(B * 5);
  const res = new Int32Array(B);
  const batches = Math.floor(lookups / B);
  t0 = nowNs();
  for (let m = 0; m < batches; m++) {
    for (let j = 0, q = 0; j < B; j++, q += 5) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      const k = (x >>> 0) % flows;
      keys[q] = 6;
      keys[q + 1] = srcIpOf(k);
      keys[q + 2] = srcPortOf(k);
      keys[q + 3] = dstIpOf(k);
      keys[q + 4] = DST_PORT;
    }
    t.lookupOutBatch(keys, B, now, res);
    for (let j = 0; j < B; j++) if (res[j] < 0) misses++;
  }
  const batchOutNs = nowNs() - t0;
  t0 = nowNs();
  for (let m = 0; m < batches; m++) {
    for (let j = 0, q = 0; j < B; j++, q += 5) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      const k = (x >>> 0) % flows;
      keys[q] = 6;
      keys[q + 1] = dstIpOf(k);
      keys[q + 2] = DST_PORT;
      keys[q + 3] = NAT_IP;
      keys[q + 4] = natPorts[k];
    }
    t.lookupInBatch(keys, B, now, res);
    for (let j = 0; j < B; j++) if (res[j] < 0) misses++;
  }
  const batchInNs = nowNs() - t0;
  if (misses > 0) throw new Error(`${misses} lookups of live flows missed`);
  return {
    flows,
    createPerSec: (flows / createNs) * 1e9,
    lookupOutPerSec: (lookups / outNs) * 1e9,
    lookupInPerSec: (lookups / inNs) * 1e9,
    batchOutPerSec: ((batches * B) / batchOutNs) * 1e9,
    batchInPerSec: ((batches * B) / batchInNs) * 1e9,
    memoryBytes: t.memoryBytes(),
    bytesPerFlow: t.memoryBytes() / flows,
  };
}

function fmtRate(r: number): string {
  return `${(r / 1e6).toFixed(2)} M/s`;
}

export async function runNatBench(opts: { quick?: boolean } = {}): Promise<NatBenchRow[]> {
  const sizes = opts.quick ? [100_000] : [100_000, 1_000_000];
  const lookups = opts.quick ? 1_000_000 : 5_000_000;
  benchOne(50_000, 500_000); // warm-up (JIT)
  const rows = sizes.map((n) => benchOne(n, lookups));
  const header = [
    'live flows',
    'new flows/s',
    'in2out/s',
    'out2in/s',
    'in2out batch/s',
    'out2in batch/s',
    'memory',
    'B/flow',
  ];
  const body = rows.map((r) => [
    r.flows.toLocaleString('en-US'),
    fmtRate(r.createPerSec),
    fmtRate(r.lookupOutPerSec),
    fmtRate(r.lookupInPerSec),
    fmtRate(r.batchOutPerSec),
    fmtRate(r.batchInPerSec),
    `${(r.memoryBytes / 2 ** 20).toFixed(1)} MiB`,
    r.bytesPerFlow.toFixed(1),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((row) => row[c].length)));
  const line = (cells: string[]): string => cells.map((s, c) => s.padStart(widths[c])).join(' | ');
  console.log('snat4 table (single thread, TCP flows, one nat ip, ports 1024..65535)');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const row of body) console.log(line(row));
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runNatBench({ quick: process.argv.includes('--quick') });
}
