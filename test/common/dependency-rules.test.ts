// The layout rules of .dependency-cruiser.cjs (`npm run check:deps`, part of `npm test`) on a small
// tree that breaks each of them once, and on one that keeps them: each rule reports exactly its
// violation, `import type` included.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(import.meta.dirname, '..', '..');
const DEPCRUISE = path.join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');

function tree(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calitap-deps-'));
  fs.copyFileSync(path.join(ROOT, '.dependency-cruiser.cjs'), path.join(dir, '.dependency-cruiser.cjs'));
  fs.writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }),
  );
  for (const [f, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), text);
  }
  return dir;
}

/** `rule: from → to` for every violation. */
function violations(dir: string): string[] {
  const r = spawnSync(
    process.execPath,
    [DEPCRUISE, 'src', '--config', '.dependency-cruiser.cjs', '--output-type', 'json'],
    { cwd: dir, encoding: 'utf8' },
  );
  const out = JSON.parse(r.stdout) as {
    summary: { violations: { rule: { name: string }; from: string; to: string }[] };
  };
  return out.summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`).sort();
}

describe('layout rules (dependency-cruiser)', () => {
  it('a tree that keeps the rules has no violations', () => {
    const dir = tree({
      'src/common/a.ts': 'export const A = 1;\n',
      'src/dataplane/graph/g.ts': "import { A } from '../../common/a.js';\nexport const G = A;\n",
      'src/dataplane/features/f.ts': "import { G } from '../graph/g.js';\nexport const F = G;\n",
      'src/control/c.ts': "import { F } from '../dataplane/features/f.js';\nexport const C = F;\n",
      'src/cli/main.ts': "import { C } from '../control/c.js';\nexport const M = C;\n",
      'bench/b.ts': "import { M } from '../src/cli/main.js';\nexport const B = M;\n",
    });
    try {
      expect(violations(dir)).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('each rule reports its violation', () => {
    const dir = tree({
      // a file cycle (type-only on one side)
      'src/common/x.ts': "import type { Y } from './y.js';\nexport type X = { y?: Y };\n",
      'src/common/y.ts': "import type { X } from './x.js';\nexport type Y = { x?: X };\n",
      // dataplane → control, type only
      'src/control/cfg.ts': 'export interface Cfg { a: number }\n',
      'src/dataplane/tables/t.ts':
        "import type { Cfg } from '../../control/cfg.js';\nexport const T = (c: Cfg) => c.a;\n",
      // core graph node → feature (and so a folder cycle graph ↔ features/nat)
      'src/dataplane/graph/node.ts': "import { N } from '../features/nat/n.js';\nexport const G = N;\n",
      'src/dataplane/graph/base.ts': 'export const BASE = 1;\n',
      'src/dataplane/features/nat/n.ts':
        "import { BASE } from '../../graph/base.js';\nexport const N = BASE;\n",
      // replay path reaching the native addon through another module
      'src/dataplane/devices/native.ts': 'export const io = 1;\n',
      'src/dataplane/devices/udp.ts': "import { io } from './native.js';\nexport const U = io;\n",
      'src/control/bgp/s.ts': "import { U } from '../../dataplane/devices/udp.js';\nexport const S = U;\n",
      // src → bench, dynamic import
      'bench/run.ts': 'export const R = 1;\n',
      'src/cli/bench.ts': "export async function b() {\n  return import('../../bench/run.js');\n}\n",
    });
    try {
      expect(violations(dir)).toEqual([
        'dataplane-not-control: src/dataplane/tables/t.ts → src/control/cfg.ts',
        'graph-not-features: src/dataplane/graph/node.ts → src/dataplane/features/nat/n.ts',
        'no-cycle: src/common/x.ts → src/common/y.ts', // a cycle is reported once
        'no-folder-cycle: src/dataplane/features/nat → src/dataplane/graph',
        'no-folder-cycle: src/dataplane/graph → src/dataplane/features/nat',
        'pure-paths-no-native: src/control/bgp/s.ts → src/dataplane/devices/native.ts',
        'src-not-bench: src/cli/bench.ts → bench/run.ts',
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
