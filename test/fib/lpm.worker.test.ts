// Concurrency: a worker thread attaches to the table (Lpm4.attach over the postMessage'd SABs) and looks
// up probe addresses non-stop while this thread inserts and removes routes, growing tbl8 and freeing and
// reusing groups (reader registered, tbl8ReuseDelayMs 0, so reuse is gated by its quiescent states
// alone). Every result the worker sees must be the expected value of a state the table was in during
// that batch, or of the state being written: no torn, stale-group or garbage values.
//
// The worker (lpm-worker.fixture.mjs) needs JavaScript: test/tables/transpile.ts transpiles lpm.ts and
// what it imports (qsbr.ts) with the `typescript` package into a temporary directory, so no build step
// is needed.
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lpm4 } from '../../src/dataplane/tables/lpm.js';
import { mask, prng } from './model.js';
import { transpile, type Transpiled } from '../tables/transpile.js';

let js: Transpiled | null = null;
let moduleUrl = '';

beforeAll(() => {
  js = transpile(['src/dataplane/tables/lpm.ts']);
  moduleUrl = js.url('src/dataplane/tables/lpm.ts');
});

afterAll(() => js?.cleanup());

interface Op {
  insert: boolean;
  addr: number;
  len: number;
  value: number;
}

/** Per-length maps: longest match by 33 probes (fast enough to precompute every state). */
class MapModel {
  readonly byLen = Array.from({ length: 33 }, () => new Map<number, number>());
  lookup(ip: number): number {
    for (let l = 32; l >= 0; l--) {
      const v = this.byLen[l].get((ip & mask(l)) >>> 0);
      if (v !== undefined) return v;
    }
    return 0;
  }
}

function plan(seed: number, nOps: number) {
  const rand = prng(seed);
  const bases: number[] = [];
  while (bases.length < 24) {
    const b = ((((rand() & 1) === 0 ? 0x0a140000 : 0x0a1e0000) | ((rand() & 0xff) << 8)) >>> 0) as number;
    if (!bases.includes(b)) bases.push(b);
  }
  const probeList: number[] = [];
  for (const b of bases) {
    for (const o of [0, 1, 63, 64, 127, 128, 129, 191, 192, 254, 255]) probeList.push(b + o);
    for (let i = 0; i < 4; i++) probeList.push(b + (rand() & 0xff));
    probeList.push((b - 1) >>> 0, (b + 256) >>> 0);
  }
  for (let i = 0; i < 32; i++) probeList.push((0x0a140000 | (rand() & 0x1ffff)) >>> 0, rand());
  const probes = new Uint32Array(new SharedArrayBuffer(probeList.length * 4));
  probes.set(probeList);
  const nProbes = probes.length;

  const lens = [0, 8, 16, 16, 20, 23, 24, 24, 25, 25, 26, 26, 27, 28, 29, 30, 31, 32, 32, 32];
  const model = new MapModel();
  const live: { addr: number; len: number }[] = [];
  const longerPer24 = new Map<number, number>();
  let groupAllocations = 0;
  const ops: Op[] = [];
  const expected = new Uint32Array(new SharedArrayBuffer((nOps + 1) * nProbes * 4));
  for (let op = 0; op < nOps; op++) {
    let o: Op;
    if (live.length > 0 && rand() % 100 < (live.length > 150 ? 60 : 40)) {
      const [r] = live.splice(rand() % live.length, 1);
      o = { insert: false, addr: r.addr, len: r.len, value: 0 };
      model.byLen[r.len].delete(r.addr);
      if (r.len > 24) {
        const k = r.addr >>> 8;
        longerPer24.set(k, longerPer24.get(k)! - 1);
      }
    } else {
      // the default route is rare (one slot of its own, but a remove used to rewrite tbl24) but must be there
      const len = rand() % 1000 < 4 ? 0 : lens[1 + (rand() % (lens.length - 1))];
      const addr = ((bases[rand() % bases.length] | (rand() & 0xff)) & mask(len)) >>> 0;
      o = { insert: true, addr, len, value: op + 1 };
      if (!model.byLen[len].has(addr)) {
        live.push({ addr, len });
        if (len > 24) {
          const k = addr >>> 8;
          const n = longerPer24.get(k) ?? 0;
          if (n === 0) groupAllocations++;
          longerPer24.set(k, n + 1);
        }
      }
      model.byLen[len].set(addr, o.value);
    }
    ops.push(o);
    const row = (op + 1) * nProbes;
    expected.copyWithin(row, op * nProbes, (op + 1) * nProbes);
    const m = mask(o.len);
    for (let i = 0; i < nProbes; i++) {
      if ((probes[i] & m) >>> 0 === o.addr) expected[row + i] = model.lookup(probes[i]);
    }
  }
  return { ops, probes, expected, groupAllocations };
}

describe('Lpm4 shared with a worker thread', () => {
  it('never shows a reader anything but a before/after value while routes change', async () => {
    const nOps = 3000;
    const { ops, probes, expected, groupAllocations } = plan(0xfeed, nOps);
    const lpm = Lpm4.create({ tbl8Groups: 8192, tbl8InitialGroups: 1, tbl8ReuseDelayMs: 0 });
    const sync = new Int32Array(new SharedArrayBuffer(16));
    const worker = new Worker(new URL('./lpm-worker.fixture.mjs', import.meta.url), {
      workerData: {
        moduleUrl,
        shared: lpm.shared,
        probes: probes.buffer,
        expected: expected.buffer,
        nOps,
        sync: sync.buffer,
      },
    });
    type Done = {
      type: 'done';
      batches: number;
      batchesDuringWrites: number;
      lookups: number;
      violations: unknown[];
    };
    let onReady: () => void = () => {};
    const ready = new Promise<void>((resolve) => (onReady = resolve));
    const done = new Promise<Done>((resolve, reject) => {
      worker.on('message', (m: { type: string }) => {
        if (m.type === 'ready') onReady();
        else resolve(m as Done);
      });
      worker.on('error', reject);
      worker.on('exit', (code) => reject(new Error(`worker exited early with code ${code}`)));
    });
    await Promise.race([ready, done]);

    try {
      const deadline = Date.now() + 20_000;
      for (let k = 0; k < nOps; k++) {
        const o = ops[k];
        if (o.insert) lpm.insert(o.addr, o.len, o.value);
        else expect(lpm.remove(o.addr, o.len)).toBe(true);
        Atomics.store(sync, 0, k + 1);
        // now and then, let the reader finish a batch so the two really interleave
        if (k % 16 === 15) {
          const b = Atomics.load(sync, 2);
          while (Atomics.load(sync, 2) === b && Date.now() < deadline) Atomics.wait(sync, 3, 0, 0.05);
          if (Date.now() >= deadline) throw new Error('worker too slow');
        }
      }
    } finally {
      Atomics.store(sync, 1, 1);
    }
    const result = await done;
    expect(result.violations).toEqual([]);
    expect(result.batchesDuringWrites).toBeGreaterThan(50);
    // groups were freed and handed out again while the reader was running
    const st = lpm.stats();
    expect(groupAllocations).toBeGreaterThan(st.tbl8GroupsCapacity);
    expect(st.routes).toBe(lpm.size);
    // the final table agrees with the plan's last state
    const last = nOps * probes.length;
    for (let i = 0; i < probes.length; i++) expect(lpm.lookup(probes[i])).toBe(expected[last + i]);
  });
});
