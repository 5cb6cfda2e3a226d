// FIB (Lpm4, DIR-24-8) micro-benchmark: build time, shared memory and lookups/s for 1 k, 100 k and
// 1 M random routes. Not a test. Run: `npx tsc -p tsconfig.build.json && node dist/bench/fib.bench.js`
// (add `--quick` for a shorter run), or call `runFibBench` from the bench runner.
//
// Route length mix (seeded, so every run builds the same tables), roughly a DFZ table plus Calico:
//   1 %  /8–/15 uniform          (short aggregates)
//  39 %  /16–/23 uniform
//  55 %  /24                     (the bulk of a DFZ table)
//   5 %  /25–/32: /26 2 % (IPAM blocks), /32 2 % (workloads), /25 and /27–/31 1 % together
// Addresses are uniform random, so duplicates simply replace (the table's size is reported).
//
// Why a plain hrtime loop and not the `benchmark` package: one lookup is ~10–30 ns; benchmark.js calls
// a closure per operation and sizes its cycles adaptively, so call overhead and its timer would be
// measured more than the table. Here one monomorphic loop runs ≥ 10 M lookups over a pre-generated
// Uint32Array of addresses (16 MiB, larger than the CPU caches, like real traffic across many flows),
// after a warm-up pass, timed with process.hrtime.bigint; the results are summed so the JIT cannot
// drop the lookups.
import { pathToFileURL } from 'node:url';
import { Lpm4, lpmLookup } from '../src/dataplane/tables/lpm.js';

export interface FibBenchResult {
  /** routes requested */
  routes: number;
  /** distinct prefixes in the table */
  size: number;
  buildMs: number;
  /** shared memory allocated (tbl24 64 MiB + tbl8 + header) */
  memoryBytes: number;
  tbl8GroupsUsed: number;
  lookups: number;
  /** uniform random addresses */
  lookupsPerSec: number;
  /** addresses drawn inside inserted prefixes (more tbl8 hits) */
  hitLookupsPerSec: number;
  /** fraction of the uniform random addresses that matched a route */
  randomHitRate: number;
}

/** xorshift32, seeded: the same tables and addresses on every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>>= 0);
  };
}

function pickLen(r: number): number {
  const p = r % 1000;
  if (p < 10) return 8 + ((r >>> 10) % 8);
  if (p < 400) return 16 + ((r >>> 10) % 8);
  if (p < 950) return 24;
  if (p < 970) return 26;
  if (p < 990) return 32;
  const l = [25, 27, 28, 29, 30, 31];
  return l[(r >>> 10) % l.length];
}

/** One pass over `addrs`; a function of its own so it is optimised once and called per pass. */
function lookupPass(tbl24: Uint32Array, tbl8: Uint32Array, addrs: Uint32Array): number {
  let sum = 0;
  for (let i = 0; i < addrs.length; i++) sum += lpmLookup(tbl24, tbl8, addrs[i]);
  return sum;
}

function timeLookups(tbl24: Uint32Array, tbl8: Uint32Array, addrs: Uint32Array, passes: number) {
  let sum = lookupPass(tbl24, tbl8, addrs); // warm-up: optimise before timing
  const t0 = process.hrtime.bigint();
  for (let p = 0; p < passes; p++) sum += lookupPass(tbl24, tbl8, addrs);
  const ns = Number(process.hrtime.bigint() - t0);
  return { perSec: (passes * addrs.length * 1e9) / ns, sum };
}

export async function runFibBench(opts: { quick?: boolean } = {}): Promise<FibBenchResult[]> {
  const sizes = [1_000, 100_000, 1_000_000];
  const nAddrs = opts.quick ? 1 << 20 : 1 << 22;
  const passes = opts.quick ? 2 : 3; // full: 12.6 M timed lookups per table
  const results: FibBenchResult[] = [];
  let sink = 0;
  for (const n of sizes) {
    const next = rng(0x9e3779b9 ^ n);
    const pAddr = new Uint32Array(n);
    const pLen = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      pAddr[i] = next();
      pLen[i] = pickLen(next());
    }
    const lpm = Lpm4.create({ tbl8Groups: 1 << 17 });
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) lpm.insert(pAddr[i], pLen[i], 1 + (i % 0xfffff));
    const buildMs = Number(process.hrtime.bigint() - t0) / 1e6;

    const random = new Uint32Array(nAddrs);
    const hits = new Uint32Array(nAddrs);
    let matched = 0;
    for (let i = 0; i < nAddrs; i++) {
      random[i] = next();
      if (lpm.lookup(random[i]) !== 0) matched++;
      const k = next() % n;
      const host = pLen[k] === 0 ? next() : next() >>> pLen[k];
      hits[i] = (pAddr[k] & (pLen[k] === 0 ? 0 : ~0 << (32 - pLen[k]))) | host;
    }
    const r1 = timeLookups(lpm.tbl24, lpm.tbl8, random, passes);
    const r2 = timeLookups(lpm.tbl24, lpm.tbl8, hits, passes);
    sink += r1.sum + r2.sum;
    const st = lpm.stats();
    results.push({
      routes: n,
      size: lpm.size,
      buildMs,
      memoryBytes: lpm.memoryBytes(),
      tbl8GroupsUsed: st.tbl8GroupsUsed,
      lookups: passes * nAddrs,
      lookupsPerSec: r1.perSec,
      hitLookupsPerSec: r2.perSec,
      randomHitRate: matched / nAddrs,
    });
  }
  if (sink === -1) console.log(sink); // keeps the sums alive
  return results;
}

export function formatFibBench(results: FibBenchResult[]): string {
  const rows = [
    [
      'routes',
      'size',
      'build ms',
      'memory MiB',
      'tbl8 grp',
      'lookups',
      'random M/s',
      'hit M/s',
      'rand match',
    ],
  ];
  for (const r of results) {
    rows.push([
      String(r.routes),
      String(r.size),
      r.buildMs.toFixed(1),
      (r.memoryBytes / 2 ** 20).toFixed(1),
      String(r.tbl8GroupsUsed),
      `${(r.lookups / 1e6).toFixed(1)} M`,
      (r.lookupsPerSec / 1e6).toFixed(1),
      (r.hitLookupsPerSec / 1e6).toFixed(1),
      `${(r.randomHitRate * 100).toFixed(1)} %`,
    ]);
  }
  const w = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  return rows.map((row) => row.map((cell, c) => cell.padStart(w[c])).join('  ')).join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const results = await runFibBench({ quick: process.argv.includes('--quick') });
  console.log(`fib (Lpm4 DIR-24-8), node ${process.version}`);
  console.log(formatFibBench(results));
}
