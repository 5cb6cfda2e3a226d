// Concurrency: worker threads attach to one table as registered readers (quiescent between rounds, the
// table set's protocol) and create / look up / remove flows at the same time, while this thread sweeps.
// The workers (fixtures/nat-worker.mjs) import the table modules transpiled on the fly
// (test/tables/transpile.ts), so this test needs no prior build and always runs the current source.
// No sleeps decide anything: the workers count their rounds in shared memory and the test waits for
// those counts (bounded) before it stops them.
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatTable, type NatTableShared } from '../../src/dataplane/tables/nat/table.js';
import { ReaderRegistry } from '../../src/dataplane/tables/qsbr.js';
import { transpile, type Transpiled } from '../tables/transpile.js';

const fixture = new URL('./fixtures/nat-worker.mjs', import.meta.url);
let js: Transpiled | null = null;
let tableUrl = '';
let qsbrUrl = '';

beforeAll(() => {
  js = transpile(['src/dataplane/tables/nat/table.ts']);
  tableUrl = js.url('src/dataplane/tables/nat/table.ts');
  qsbrUrl = js.url('src/dataplane/tables/qsbr.ts');
});
afterAll(() => js?.cleanup());

interface WorkerResult {
  errors: string[];
  ops: number;
  hits: number;
  full: number;
}

function run(
  shared: NatTableShared,
  progress: SharedArrayBuffer,
  data: Record<string, unknown>,
): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(fixture, { workerData: { tableUrl, qsbrUrl, shared, progress, ...data } });
    w.once('message', (m: WorkerResult) => resolve(m));
    w.once('error', reject);
    w.once('exit', (code) => code !== 0 && reject(new Error(`worker exited with ${code}`)));
  });
}

/** Waits (bounded) until every progress[id] for id in ids reached `rounds`, calling `meanwhile` often. */
async function until(
  progress: Int32Array,
  ids: number[],
  rounds: number,
  meanwhile: () => void,
): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (ids.some((id) => Atomics.load(progress, id) < rounds)) {
    if (Date.now() > deadline) throw new Error(`workers did not reach ${rounds} rounds: ${[...progress]}`);
    meanwhile();
    await new Promise((r) => setImmediate(r));
  }
}

const NAT = 0xc0a80164;
const srcOf = (k: number): number => (0x0a400000 + (k >>> 4)) >>> 0;
const sportOf = (k: number): number => 10000 + (k & 15);
const dstOf = (k: number): number => (0x08080800 + (k & 3)) >>> 0;

function scanUnique(t: NatTable): number {
  const outs = new Set<string>();
  const ins = new Set<string>();
  let live = 0;
  for (let i = 0; i < t.slots; i++) {
    if (!t.isLive(i)) continue;
    live++;
    const o = `${t.proto(i)}|${t.remoteIp(i)}|${t.remotePort(i)}|${t.natIp(i)}|${t.natPort(i)}`;
    const n = `${t.proto(i)}|${t.insideIp(i)}|${t.insidePort(i)}|${t.remoteIp(i)}|${t.remotePort(i)}`;
    expect(outs.has(o), `duplicate out2in key ${o}`).toBe(false);
    expect(ins.has(n), `duplicate in2out key ${n}`).toBe(false);
    outs.add(o);
    ins.add(n);
  }
  return live;
}

describe('nat table shared between worker threads', () => {
  it('three workers creating the same and different flows concurrently: no duplicates, none lost', async () => {
    const n = 40000;
    const readers = ReaderRegistry.create();
    // Ports 20000..39999 towards 4 remotes: 10000 flows each, so random probes collide often.
    const t = NatTable.create({
      capacity: 65536,
      natIps: [NAT],
      portLo: 20000,
      portHi: 39999,
      seed: 5,
      readers,
    });
    const progress = new SharedArrayBuffer(16);
    const outA = new SharedArrayBuffer(n * 4);
    const outB = new SharedArrayBuffer(n * 4);
    const outC = new SharedArrayBuffer(n * 4);
    // A and B race on the same flows in the same order; C walks them backwards.
    const results = await Promise.all([
      run(t.shared, progress, { role: 'create', id: 0, n, reverse: false, out: outA }),
      run(t.shared, progress, { role: 'create', id: 1, n, reverse: false, out: outB }),
      run(t.shared, progress, { role: 'create', id: 2, n, reverse: true, out: outC }),
    ]);
    for (const r of results) expect(r.errors).toEqual([]);
    // Every worker got the same translation for every flow (the same entry).
    expect(Buffer.from(outA).equals(Buffer.from(outB))).toBe(true);
    expect(Buffer.from(outA).equals(Buffer.from(outC))).toBe(true);
    expect(t.size).toBe(n);
    expect(t.counters.created).toBe(n);
    expect(t.counters.busy).toBe(0);
    expect(scanUnique(t)).toBe(n);
    const ports = new Int32Array(outA);
    for (let k = 0; k < n; k++) {
      const i = t.lookupOut(6, srcOf(k), sportOf(k), dstOf(k), 443, 1000);
      expect(i).toBeGreaterThanOrEqual(0);
      expect(t.natPort(i)).toBe(ports[k]);
      expect(t.lookupIn(6, dstOf(k), 443, NAT, ports[k], 1000)).toBe(i);
    }
    // entries abandoned by the losers of creation races are swept; the flows stay
    t.expire(1000);
    expect(t.size).toBe(n);
    expect(scanUnique(t)).toBe(n);
  });

  it('readers never miss or see torn entries while other workers free and reuse slots', async () => {
    const stable = 3000;
    const churn = 2000;
    const readers = ReaderRegistry.create();
    // Stable and churned flows share chains. Removed flows stay allocated until every worker passed a
    // quiescent point: the capacity leaves room for rounds of them (a worker descheduled for a while
    // holds them all back; creations then fail with NAT_FULL, counted, and recover).
    const t = NatTable.create({
      capacity: 32768,
      natIps: [NAT],
      portLo: 1024,
      portHi: 65535,
      readers,
    });
    const natPorts = new SharedArrayBuffer(stable * 4);
    const np = new Int32Array(natPorts);
    for (let k = 0; k < stable; k++)
      np[k] = t.natPort(t.createOut(6, srcOf(k), sportOf(k), dstOf(k), 443, 1000));
    const stop = new SharedArrayBuffer(4);
    const progress = new Int32Array(new SharedArrayBuffer(16));
    const pb = progress.buffer as SharedArrayBuffer;
    const all = [
      run(t.shared, pb, {
        role: 'read',
        id: 0,
        n: stable,
        natPortsBuf: natPorts,
        stop,
        natIp: NAT,
        churnBases: [100000, 200000],
        churnN: churn,
      }),
      run(t.shared, pb, { role: 'churn', id: 1, base: 100000, n: churn, stop }),
      run(t.shared, pb, { role: 'churn', id: 2, base: 200000, n: churn, stop }),
    ];
    // Race until both churners freed and re-created their flows 30 times and the reader made 30 passes,
    // sweeping from this thread meanwhile (it unlinks what the churners could not); then stop.
    let swept = 0;
    try {
      await until(progress, [0, 1, 2], 30, () => {
        t.expire(1000, 512);
        swept++;
      });
    } finally {
      Atomics.store(new Int32Array(stop), 0, 1);
    }
    const results = await Promise.all(all);
    for (const r of results) expect(r.errors).toEqual([]);
    expect(results[0].hits).toBeGreaterThanOrEqual(30 * stable);
    const full = results[1].full + results[2].full;
    expect(results[1].ops + results[2].ops - full).toBeGreaterThan(30 * churn);
    expect(t.counters.full).toBe(full);
    expect(swept).toBeGreaterThan(0);
    expect(t.size).toBe(stable);
    expect(scanUnique(t)).toBe(stable);
    expect(t.counters.busy).toBe(0);
    // the workers are gone (unregistered): everything they removed is reclaimable; all fits again
    t.expire(1000);
    for (let k = 0; k < 2 * churn; k++)
      expect(t.createOut(17, srcOf(300000 + k), sportOf(k), dstOf(k), 443, 1000)).toBeGreaterThanOrEqual(0);
    expect(t.size).toBe(stable + 2 * churn);
  });

  it('creation never waits for the sweep lock; a dead holder is taken over', async () => {
    const readers = ReaderRegistry.create();
    const t = NatTable.create({ capacity: 8192, natIps: [NAT], portLo: 1024, portHi: 65535, readers });
    // A reader (standing for a worker) holds the sweep lock and then never lets go.
    const holder = readers.register();
    const token = (readers.incarnation(holder) << 9) | (holder + 1);
    const hdr = new Int32Array(t.shared.sab, 0, 1);
    Atomics.store(hdr, 0, token); // word 0: the sweep lock (flows.ts H_LOCK)
    expect(t.expire(1 << 20)).toBe(0); // busy: returns at once
    const n = 4000;
    const out = new SharedArrayBuffer(n * 4);
    const [r] = await Promise.all([
      run(t.shared, new SharedArrayBuffer(16), { role: 'create', id: 0, n, reverse: false, out }),
    ]);
    expect(r.errors).toEqual([]);
    expect(t.size).toBe(n);
    // Removing needs no lock either: it marks the flow dead; unlinking waits for a sweep.
    const f = t.lookupOut(6, srcOf(7), sportOf(7), dstOf(7), 443, 1000);
    expect(t.remove(f)).toBe(true);
    expect(t.lookupOut(6, srcOf(7), sportOf(7), dstOf(7), 443, 1000)).toBe(-1);
    expect(t.size).toBe(n - 1);
    // The holder "dies": the control thread releases its slot, and the next sweep takes over.
    readers.release(holder);
    readers.unregister(holder);
    expect(t.expire(1000)).toBe(0); // nothing expired at 1000, but the removed flow is unlinked
    expect(t.counters.stolen).toBe(1);
    expect(Atomics.load(hdr, 0)).toBe(0);
    // ... and its slot is reusable: a new flow for the removed key gets created
    expect(t.createOut(6, srcOf(7), sportOf(7), dstOf(7), 443, 1000)).toBeGreaterThanOrEqual(0);
    expect(scanUnique(t)).toBe(n);
  });
});
