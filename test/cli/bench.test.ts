// `calitap bench` (src/cli/bench.ts) runs the compiled bench scripts as processes, never imports them:
// the plan for each set of names, unknown names, a missing build and a failing bench.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { benchPlan, runBench, type Spawner } from '../../src/cli/bench.js';
import { CalitapError, UsageError } from '../../src/common/errors.js';

const DIR = '/opt/calitap/dist/bench';

describe('calitap bench', () => {
  it('no names: the in-memory runner once; --quick passes through', () => {
    expect(benchPlan([], {}, DIR)).toEqual([{ script: `${DIR}/run.js`, args: [] }]);
    expect(benchPlan([], { quick: true }, DIR)).toEqual([{ script: `${DIR}/run.js`, args: ['--quick'] }]);
  });

  it('in-memory names go to run.js together; live and bgp run as their own scripts', () => {
    expect(benchPlan(['fib', 'live', 'nat', 'bgp'], { quick: true }, DIR)).toEqual([
      { script: `${DIR}/run.js`, args: ['--quick', 'fib', 'nat'] },
      { script: `${DIR}/live.bench.js`, args: ['--quick'] },
      { script: `${DIR}/bgp.bench.js`, args: ['--routes', '100000'] },
    ]);
    expect(benchPlan(['bgp'], {}, DIR)).toEqual([{ script: `${DIR}/bgp.bench.js`, args: [] }]);
  });

  it('unknown names are a usage error listing the known ones', () => {
    expect(() => benchPlan(['fib', 'warp'], {}, DIR)).toThrow(UsageError);
    expect(() => benchPlan(['warp'], {}, DIR)).toThrow(/bench warp: unknown \(known: graph, .*bgp\)/);
  });

  it('runs each script in order with the spawner; stops at a failure with bench-failed', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calitap-bench-'));
    try {
      for (const f of ['run.js', 'live.bench.js', 'bgp.bench.js']) fs.writeFileSync(path.join(dir, f), '');
      const calls: string[] = [];
      const ok: Spawner = (script, args) => {
        calls.push([path.basename(script), ...args].join(' '));
        return { status: 0, signal: null };
      };
      runBench(['graph', 'live'], {}, ok, dir);
      expect(calls).toEqual(['run.js graph', 'live.bench.js']);
      calls.length = 0;
      const failing: Spawner = (script, args) => {
        ok(script, args);
        return { status: 3, signal: null };
      };
      expect(() => runBench(['live', 'bgp'], {}, failing, dir)).toThrow(
        expect.objectContaining({ code: 'bench-failed', message: 'bench live.bench.js exited with 3' }),
      );
      expect(calls).toEqual(['live.bench.js']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a script that is not built: bench-missing naming the file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calitap-bench-'));
    try {
      let spawned = false;
      const spy: Spawner = () => {
        spawned = true;
        return { status: 0, signal: null };
      };
      let err: unknown;
      try {
        runBench([], {}, spy, dir);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CalitapError);
      expect(err).toMatchObject({ code: 'bench-missing' });
      expect((err as Error).message).toContain(path.join(dir, 'run.js'));
      expect(spawned).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
