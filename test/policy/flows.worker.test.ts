// Concurrency: reader threads look up stable flows (and flows nobody inserted) while other threads
// insert and expire their own flows in the same shared table: readers never miss a stable flow, never
// see a wrong reply flag, never hit a phantom. The workers run flows.ts transpiled on the fly with the
// `typescript` package (the module has no imports), so no build is needed.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PolicyFlowTable } from '../../src/dataplane/tables/policy/flows.js';

const here = fileURLToPath(new URL('.', import.meta.url));
let dir = '';
let moduleUrl = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'calitap-flows-'));
  const src = readFileSync(join(here, '../../src/dataplane/tables/policy/flows.ts'), 'utf8');
  const js = ts.transpileModule(src, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  }).outputText;
  writeFileSync(join(dir, 'flows.mjs'), js);
  moduleUrl = pathToFileURL(join(dir, 'flows.mjs')).href;
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('policy flow table, shared by threads', () => {
  it('keeps lookups exact while other threads insert and expire', async () => {
    const t = PolicyFlowTable.create(1 << 14, 3);
    const STABLE = 500;
    for (let k = 0; k < STABLE; k++) {
      const s = t.insert(6, 0x0a410000 + k, 0x0a420000 + (k % 7), 1000 + k, 443, 1000);
      expect(s).toBeGreaterThanOrEqual(0);
      t.touch(s, 1000, true, 0x10); // replied: established, outlives the churn's expiry at 2000
    }
    const stop = new SharedArrayBuffer(8); // [stop, workers started]
    const start = (role: string, id: number) =>
      new Promise<{ errors: string[]; ops: number }>((resolve, reject) => {
        const w = new Worker(join(here, 'fixtures', 'flows-worker.mjs'), {
          workerData: { moduleUrl, shared: t.shared, role, id, stop, stable: STABLE },
        });
        w.once('message', resolve);
        w.once('error', reject);
      });
    const runs = [start('read', 0), start('churn', 1), start('churn', 2)];
    // let them overlap once all three run (bounded wait for the start)
    const flags = new Int32Array(stop);
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && Atomics.load(flags, 1) < 3) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 300));
    Atomics.store(flags, 0, 1);
    const res = await Promise.all(runs);
    for (const r of res) expect(r.errors).toEqual([]);
    expect(res.every((r) => r.ops > 0)).toBe(true);
    for (let k = 0; k < STABLE; k++)
      expect(t.lookup(6, 0x0a410000 + k, 0x0a420000 + (k % 7), 1000 + k, 443)).toBeGreaterThanOrEqual(0);
  }, 30_000);
});
