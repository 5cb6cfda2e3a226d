// `calitap bench [names...] [--quick]`: runs the compiled benchmark scripts (dist/bench/*.js, built
// by `npm run build`) as child processes with the terminal's stdio. src/ never imports bench/ (a
// layout rule checked by `npm run check:deps`), so the scripts are found by path, not imported. Main
// thread, once per command; nothing is shared with the children but stdio.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchError, UsageError } from '../common/errors.js';

/** The in-memory benches `dist/bench/run.js` runs in one process. */
export const IN_MEMORY_BENCHES = [
  'graph',
  'replay',
  'fib',
  'pcap',
  'nat',
  'encap',
  'snat',
  'policy',
] as const;
/** Benches that build namespaces and daemons: each runs as `dist/bench/<name>.bench.js`. */
export const SEPARATE_BENCHES = ['live', 'bgp'] as const;
export const KNOWN_BENCHES: readonly string[] = [...IN_MEMORY_BENCHES, ...SEPARATE_BENCHES];

/** dist/bench, next to dist/src (this file is dist/src/cli/bench.js once built). */
export function benchDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench');
}

/** One child process to run: a script path and its arguments. */
export interface BenchRun {
  script: string;
  args: string[];
}

/** The processes `calitap bench` starts for these names, in order (throws UsageError on unknown names). */
export function benchPlan(names: string[], o: { quick?: boolean }, dir = benchDir()): BenchRun[] {
  const unknown = names.filter((n) => !KNOWN_BENCHES.includes(n));
  if (unknown.length > 0)
    throw new UsageError(`bench ${unknown.join(' ')}: unknown (known: ${KNOWN_BENCHES.join(', ')})`);
  const separate: readonly string[] = SEPARATE_BENCHES;
  const inMemory = names.filter((n) => !separate.includes(n));
  const plan: BenchRun[] = [];
  if (names.length === 0 || inMemory.length > 0)
    plan.push({ script: path.join(dir, 'run.js'), args: [...(o.quick ? ['--quick'] : []), ...inMemory] });
  for (const name of names.filter((n) => separate.includes(n))) {
    const quick = o.quick ? (name === 'bgp' ? ['--routes', '100000'] : ['--quick']) : [];
    plan.push({ script: path.join(dir, `${name}.bench.js`), args: quick });
  }
  return plan;
}

export type Spawner = (script: string, args: string[]) => Pick<SpawnSyncReturns<Buffer>, 'status' | 'signal'>;

const spawnNode: Spawner = (script, args) =>
  spawnSync(process.execPath, [script, ...args], { stdio: 'inherit' });

/** Runs the plan one process after the other; stops at the first that fails. */
export function runBench(
  names: string[],
  o: { quick?: boolean },
  spawn: Spawner = spawnNode,
  dir = benchDir(),
): void {
  for (const run of benchPlan(names, o, dir)) {
    if (!existsSync(run.script))
      throw new BenchError(
        'bench-missing',
        `${run.script}: benchmark script not built (run \`npm run build\` in the source tree)`,
      );
    const r = spawn(run.script, run.args);
    if (r.status !== 0)
      throw new BenchError(
        'bench-failed',
        `bench ${path.basename(run.script)} exited with ${r.status ?? r.signal}`,
      );
  }
}
