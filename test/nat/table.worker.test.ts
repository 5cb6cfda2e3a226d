// Concurrency: worker threads attach to one table and create / look up / remove flows at the same time.
// The workers (fixtures/nat-worker.mjs) import the table module transpiled on the fly with the
// `typescript` package into a temporary .mjs (the module has no relative imports), so this test needs no
// prior build and always runs the current source.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatTable, type NatTableShared } from '../../src/dataplane/tables/nat/table.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const fixture = join(here, 'fixtures', 'nat-worker.mjs');
let dir = '';
let moduleUrl = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'calitap-nat-'));
  const src = readFileSync(join(here, '../../src/dataplane/tables/nat/table.ts'), 'utf8');
  const js = ts.transpileModule(src, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  }).outputText;
  writeFileSync(join(dir, 'table.mjs'), js);
  moduleUrl = pathToFileURL(join(dir, 'table.mjs')).href;
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface WorkerResult {
  errors: string[];
  ops: number;
  hits: number;
}

function run(shared: NatTableShared, data: Record<string, unknown>): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(fixture, { workerData: { moduleUrl, shared, ...data } });
    w.once('message', (m: WorkerResult) => resolve(m));
    w.once('error', reject);
    w.once('exit', (code) => code !== 0 && reject(new Error(`worker exited with ${code}`)));
  });
}

const NAT = 0xc0a80164;
const srcOf = (k: number): number => (0x0a400000 + (k >>> 4)) >>> 0;
const sportOf = (k: number): number => 10000 + (k & 15);
const dstOf = (k: number): number => (0x08080800 + (k & 3)) >>> 0;

function scanUnique(t: NatTable): number {
  const outs = new Set<string>();
  const ins = new Set<string>();
  let live = 0;
  for (let i = 0; i < t.capacity; i++) {
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
    // Ports 20000..39999 towards 4 remotes: 10000 flows each, so random probes collide often.
    const t = NatTable.create({ capacity: 65536, natIps: [NAT], portLo: 20000, portHi: 39999, seed: 5 });
    const outA = new SharedArrayBuffer(n * 4);
    const outB = new SharedArrayBuffer(n * 4);
    const outC = new SharedArrayBuffer(n * 4);
    // A and B race on the same flows in the same order; C walks them backwards.
    const results = await Promise.all([
      run(t.shared, { role: 'create', n, reverse: false, out: outA }),
      run(t.shared, { role: 'create', n, reverse: false, out: outB }),
      run(t.shared, { role: 'create', n, reverse: true, out: outC }),
    ]);
    for (const r of results) expect(r.errors).toEqual([]);
    // Both workers got the same translation for every flow (the same entry).
    expect(Buffer.from(outA).equals(Buffer.from(outB))).toBe(true);
    expect(Buffer.from(outA).equals(Buffer.from(outC))).toBe(true);
    expect(t.size).toBe(n);
    expect(t.counters.created).toBe(n);
    expect(scanUnique(t)).toBe(n);
    const ports = new Int32Array(outA);
    for (let k = 0; k < n; k++) {
      const i = t.lookupOut(6, srcOf(k), sportOf(k), dstOf(k), 443, 1000);
      expect(i).toBeGreaterThanOrEqual(0);
      expect(t.natPort(i)).toBe(ports[k]);
      expect(t.lookupIn(6, dstOf(k), 443, NAT, ports[k], 1000)).toBe(i);
    }
  });

  it('readers never miss or see torn entries while other workers free and reuse slots', async () => {
    const stable = 3000;
    const churn = 2000;
    // Load factor ~1: stable and churned flows share chains.
    const t = NatTable.create({ capacity: stable + 2 * churn, natIps: [NAT], portLo: 1024, portHi: 65535 });
    const natPorts = new SharedArrayBuffer(stable * 4);
    const np = new Int32Array(natPorts);
    for (let k = 0; k < stable; k++)
      np[k] = t.natPort(t.createOut(6, srcOf(k), sportOf(k), dstOf(k), 443, 1000));
    const stop = new SharedArrayBuffer(4);
    const readers = [run(t.shared, { role: 'read', n: stable, natPortsBuf: natPorts, stop, natIp: NAT })];
    const churners = [
      run(t.shared, { role: 'churn', base: 100000, n: churn, stop }),
      run(t.shared, { role: 'churn', base: 200000, n: churn, stop }),
    ];
    // Let them race for a while (also exercising expire() from this thread), then stop.
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      t.expire(1000, 512);
      await new Promise((r) => setTimeout(r, 5));
    }
    Atomics.store(new Int32Array(stop), 0, 1);
    const results = await Promise.all([...readers, ...churners]);
    for (const r of results) expect(r.errors).toEqual([]);
    expect(results[0].hits).toBeGreaterThan(stable);
    expect(results[1].ops + results[2].ops).toBeGreaterThan(churn);
    expect(t.size).toBe(stable);
    expect(scanUnique(t)).toBe(stable);
    expect(t.counters.busy).toBe(0);
  });
});
