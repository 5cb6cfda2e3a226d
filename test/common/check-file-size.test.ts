// scripts/check-file-size.mjs (run by `npm test` through `npm run lint`): every source file over the
// limit is listed with its line count and the exit status is 1; files at the limit pass.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const SCRIPT = path.join(import.meta.dirname, '..', '..', 'scripts', 'check-file-size.mjs');

function lines(n: number): string {
  return Array.from({ length: n }, (_, i) => `// line ${i + 1}`).join('\n') + '\n';
}

function run(cwd: string, ...args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [SCRIPT, ...args], { cwd, encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

describe('check-file-size', () => {
  it('lists each offender with its line count and exits 1; files at the limit and non-source files pass', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calitap-size-'));
    try {
      fs.mkdirSync(path.join(dir, 'src', 'a'), { recursive: true });
      fs.mkdirSync(path.join(dir, 'native'));
      fs.writeFileSync(path.join(dir, 'src', 'a', 'ok.ts'), lines(600));
      fs.writeFileSync(path.join(dir, 'src', 'a', 'big.ts'), lines(601));
      fs.writeFileSync(path.join(dir, 'src', 'notes.md'), lines(900));
      fs.writeFileSync(path.join(dir, 'native', 'io.c'), lines(700).slice(0, -1)); // no final newline
      const r = run(dir, 'src', 'native');
      expect(r.status).toBe(1);
      expect(r.stderr.split('\n').filter((l) => l !== '')).toEqual([
        `${path.join('src', 'a', 'big.ts')}: 601 lines (limit 600)`,
        `${path.join('native', 'io.c')}: 700 lines (limit 600)`,
        'check-file-size: 2 file(s) over 600 lines: split them by concern',
      ]);
      expect(run(dir, '--max', '700', 'src', 'native')).toEqual({ status: 0, stderr: '' });
      expect(run(dir, 'missing-dir')).toEqual({ status: 0, stderr: '' });
      expect(run(dir, '--max', 'x').status).toBe(2);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
