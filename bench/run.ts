// The bench runner (`npm run bench` = build + `node dist/bench/run.js [--quick] [name ...]`): runs every
// benchmark module that exists, one after the other in this process, and prints each one's table.
// It writes nothing: copy the figures you want to keep into bench/RESULTS.md by hand.
//
// A module `bench/<name>.bench.ts` takes part when it exports `run<Name>Bench(opts: {quick?})`; its
// table comes from `format<Name>Bench(result)` when exported, else from a generic rendering of the
// result. Names given on the command line restrict the run (e.g. `node dist/bench/run.js graph`).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';

interface BenchSpec {
  /** file stem: bench/<name>.bench.ts */
  name: string;
  /** Name in run<Name>Bench / format<Name>Bench */
  fn: string;
}

const BENCHES: BenchSpec[] = [
  { name: 'graph', fn: 'Graph' },
  { name: 'replay', fn: 'Replay' },
  { name: 'fib', fn: 'Fib' },
  { name: 'pcap', fn: 'Pcap' },
  { name: 'nat', fn: 'Nat' },
  { name: 'encap', fn: 'Encap' },
  { name: 'snat', fn: 'Snat' },
  { name: 'policy', fn: 'Policy' },
];

type BenchModule = Record<string, unknown>;

/** Aligned text table of an array of flat objects (numbers rounded); anything else as JSON. */
export function formatGeneric(result: unknown): string {
  const rows: unknown[] | null = Array.isArray(result)
    ? result
    : result !== null && typeof result === 'object' && Array.isArray((result as { rows?: unknown }).rows)
      ? (result as { rows: unknown[] }).rows
      : null;
  if (rows === null || rows.length === 0 || rows.some((r) => r === null || typeof r !== 'object')) {
    return JSON.stringify(result, null, 2);
  }
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r as object)))];
  const cell = (v: unknown): string => {
    if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toPrecision(4);
    if (v === undefined || v === null) return '';
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  };
  const table = [cols, ...rows.map((r) => cols.map((c) => cell((r as Record<string, unknown>)[c])))];
  const w = cols.map((_, c) => Math.max(...table.map((row) => row[c].length)));
  return table.map((row) => row.map((v, c) => v.padStart(w[c])).join('  ')).join('\n');
}

export async function runAll(opts: { quick?: boolean; only?: string[] } = {}): Promise<void> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  console.log(
    `calitap benchmarks${opts.quick ? ' (quick)' : ''}: node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} ` +
      `x${os.cpus().length}, ${os.platform()} ${os.release()}, ${new Date().toISOString()}`,
  );
  for (const b of BENCHES) {
    if (opts.only && opts.only.length > 0 && !opts.only.includes(b.name)) continue;
    const file = path.join(here, `${b.name}.bench.js`);
    if (!fs.existsSync(file)) {
      console.log(`\n## ${b.name}: not present (bench/${b.name}.bench.ts), skipped`);
      continue;
    }
    const mod = (await import(pathToFileURL(file).href)) as BenchModule;
    const run = mod[`run${b.fn}Bench`];
    if (typeof run !== 'function') {
      console.log(`\n## ${b.name}: no run${b.fn}Bench export, skipped`);
      continue;
    }
    console.log(`\n## ${b.name}`);
    const t0 = process.hrtime.bigint();
    try {
      const result: unknown = await (run as (o: { quick?: boolean }) => unknown)({ quick: opts.quick });
      const fmt = mod[`format${b.fn}Bench`];
      console.log(
        typeof fmt === 'function' ? (fmt as (r: unknown) => string)(result) : formatGeneric(result),
      );
    } catch (e) {
      console.log(`failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      process.exitCode = 1;
    }
    console.log(`(${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s)`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  await runAll({ quick: args.includes('--quick'), only: args.filter((a) => !a.startsWith('--')) });
}
