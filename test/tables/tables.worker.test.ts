// Concurrency of the whole table set: reader workers attach it as dataplane workers do (TableSet.attach,
// quiescent once per round) and check that every adjacency and neighbour they reach through the FIB
// still belongs to the route they looked up, while this thread (the control plane) keeps moving routes
// to new next hops in tables small enough that every entry is reused many times. A reader that dies
// must not block reclamation once the control thread releases its slot.
// The workers load the current source transpiled on the fly (transpile.ts); no build needed. Nothing
// waits on a sleep: the control thread waits (bounded) for the readers' round counters.
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TableSet } from '../../src/dataplane/tables/set.js';
import { TableFullError } from '../../src/dataplane/tables/errors.js';
import { transpile, type Transpiled } from './transpile.js';

let js: Transpiled | null = null;
let setUrl = '';
beforeAll(() => {
  js = transpile(['src/dataplane/tables/set.ts']);
  setUrl = js.url('src/dataplane/tables/set.ts');
});
afterAll(() => js?.cleanup());

const fixture = new URL('./fixtures/set-reader.mjs', import.meta.url);

interface Done {
  type: 'done';
  rounds: number;
  hits: number;
  violations: unknown[];
}

function start(data: Record<string, unknown>): { worker: Worker; ready: Promise<void>; done: Promise<Done> } {
  const worker = new Worker(fixture, { workerData: { setUrl, ...data } });
  let onReady: () => void = () => {};
  const ready = new Promise<void>((r) => (onReady = r));
  const done = new Promise<Done>((resolve, reject) => {
    worker.on('message', (m: { type: string }) => (m.type === 'ready' ? onReady() : resolve(m as Done)));
    worker.on('error', reject);
    worker.on('exit', (code) => reject(new Error(`worker exited with ${code}`)));
  });
  return { worker, ready, done };
}

/** The control side: probe k's /32 routed through a fresh next hop per version. */
class Control {
  readonly adj: number[];
  readonly nb: number[];
  readonly ver: number[];
  refusals = 0;
  constructor(
    readonly set: TableSet,
    readonly probes: Uint32Array,
  ) {
    this.adj = Array.from(probes, () => -1);
    this.nb = Array.from(probes, () => -1);
    this.ver = Array.from(probes, () => 0);
  }

  /** Moves probe k to a new next hop; false when a table was full (nothing changed). */
  update(k: number): boolean {
    const { adj, nbr, fib } = this.set;
    const v = this.ver[k] + 1;
    const hop = (0x0a000000 | (k << 16) | (v & 0xffff)) >>> 0;
    let nb = -1;
    let a: number;
    try {
      nb = nbr.acquire(hop);
      a = adj.acquire({ kind: 'direct', port: k, nextHop: hop, neighbor: nb, mtu: 1000 + k });
    } catch (e) {
      if (!(e instanceof TableFullError)) throw e;
      if (nb >= 0) nbr.release(nb);
      this.refusals++;
      return false;
    }
    fib.insert(this.probes[k], 32, a); // publish
    this.drop(k);
    this.adj[k] = a;
    this.nb[k] = nb;
    this.ver[k] = v;
    return true;
  }

  withdraw(k: number): void {
    if (this.adj[k] < 0) return;
    this.set.fib.remove(this.probes[k], 32); // unpublish
    this.drop(k);
  }

  private drop(k: number): void {
    if (this.adj[k] >= 0) this.set.adj.release(this.adj[k]);
    if (this.nb[k] >= 0) this.set.nbr.release(this.nb[k]);
    this.adj[k] = this.nb[k] = -1;
  }
}

/** Waits (bounded) until every reader's round counter moved past what it was. */
async function readersProgress(sync: Int32Array, slots: number[]): Promise<void> {
  const before = slots.map((s) => Atomics.load(sync, 8 + s));
  const deadline = Date.now() + 30_000;
  while (slots.some((s, j) => Atomics.load(sync, 8 + s) === before[j])) {
    if (Date.now() > deadline) throw new Error('readers made no progress');
    await new Promise((r) => setImmediate(r));
  }
}

describe('the table set shared with reader workers', () => {
  it('readers never see an adjacency or neighbour of another route while the control churns', async () => {
    const nProbes = 32;
    // 32 routes in 64 entries: every update retires an adjacency and a neighbour, so entries are
    // reused all the time, and often only after the readers' quiescent points (refusals in between)
    const set = TableSet.create({ adjacencyCapacity: 65, neighborCapacity: 64 });
    const probes = new Uint32Array(new SharedArrayBuffer(nProbes * 4));
    for (let k = 0; k < nProbes; k++) probes[k] = (0xac100000 + k) >>> 0; // 172.16.0.k
    const sync = new Int32Array(new SharedArrayBuffer(64 * 4));
    const readers = [0, 1].map((slot) =>
      start({ shared: set.shared, slot, probes: probes.buffer, sync: sync.buffer }),
    );
    await Promise.all(readers.map((r) => r.ready));
    const ctl = new Control(set, probes);
    let updates = 0;
    let x = 0x1234;
    try {
      while (updates < 8000) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        const k = (x >>> 8) % nProbes;
        if ((x & 31) === 0) ctl.withdraw(k);
        else if (ctl.update(k)) updates++;
        else await readersProgress(sync, [0, 1]); // full: wait for the readers' quiescent points
      }
    } finally {
      Atomics.store(sync, 0, 1);
    }
    const results = await Promise.all(readers.map((r) => r.done));
    for (const r of results) {
      expect(r.violations).toEqual([]);
      expect(r.rounds).toBeGreaterThan(10);
      expect(r.hits).toBeGreaterThan(100);
    }
    expect(ctl.refusals).toBeGreaterThan(0); // reuse really was gated by the readers
    expect(set.counters().some((c) => c.node === 'adjacency-table' || c.node === 'neighbor-table')).toBe(
      true,
    );
    // the readers detached: everything released is reclaimable
    for (let k = 0; k < nProbes; k++) ctl.withdraw(k);
    set.maintain();
    expect(set.adj.size).toBe(0);
    expect(set.nbr.size).toBe(0);
    for (let k = 0; k < nProbes; k++) expect(ctl.update(k)).toBe(true);
  });

  it('a reader that died holds nothing once the control thread released its slot', async () => {
    const set = TableSet.create({ adjacencyCapacity: 3, neighborCapacity: 2 });
    const probes = new Uint32Array(new SharedArrayBuffer(8));
    probes[0] = 0xac100000;
    probes[1] = 0xac100001;
    const sync = new Int32Array(new SharedArrayBuffer(64 * 4));
    const ctl = new Control(set, probes);
    expect(ctl.update(0)).toBe(true);
    const dead = start({ shared: set.shared, slot: 5, probes: probes.buffer, sync: sync.buffer, hang: true });
    await dead.ready; // registered in slot 5, then stuck forever
    expect(set.readers.registered(5)).toBe(true);
    expect(ctl.update(0)).toBe(true); // the old entries are retired: the dead reader "may hold" them
    expect(ctl.update(0)).toBe(false); // so they are not reused
    expect(ctl.update(0)).toBe(false);
    dead.done.catch(() => {}); // it exits without a 'done' message
    await dead.worker.terminate();
    set.release(5); // what the daemon does when a worker exits
    expect(ctl.update(0)).toBe(true);
    expect(ctl.update(1)).toBe(true);
    expect(set.adj.size).toBe(2);
  });
});
