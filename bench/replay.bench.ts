// End-to-end replay benchmark: `replay()` over a 2 M-frame capture (issue 9) of 60-byte frames (64 on the wire)
// on the direct path (workload 10.65.0.2 -> node-b's 10.65.0.70), reading the pcap, running the full
// graph and writing <port>.pcap, against `tcpdump -r in.pcap -w out.pcap` on the same file for scale.
// Not a test. Run: `npx tsc -p tsconfig.build.json && node dist/bench/replay.bench.js [--quick]`
// (quick: 200 k frames), or call `runReplayBench` from the bench runner.
//
// The input is written with our PcapWriter into a fresh directory under os.tmpdir() (1 µs apart,
// ids counting up so frames differ); both tools run once to warm the page cache and the JIT, then the
// best of `runs` is kept. replay() is timed in process (config load and programming included: what
// `calitap replay` does after Node has started); tcpdump is timed with spawnSync, so its process start
// is included. Every temporary file is removed at the end.
// With CALITAP_BENCH_CPU=1 both sides are timed in CPU time (user + system) instead of wall time, which
// stays comparable when other jobs share the cores: this process's `process.cpuUsage()` (all its
// threads: GC included) for replay, the reaped children's times from /proc/self/stat (cutime + cstime,
// clock ticks of 10 ms) for tcpdump.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadConfigFile } from '../src/control/config/load.js';
import { Programmer } from '../src/control/daemon/program.js';
import { replay } from '../src/dataplane/replay.js';
import { PcapWriter } from '../src/dataplane/devices/pcap/writer.js';
import { ip4SetChecksum } from '../src/dataplane/wire/ipv4.js';
import { BENCH_PATHS, FRAME_LEN, writeFrame } from './graph.bench.js';

export interface ReplayBenchResult {
  frames: number;
  frameLen: number;
  inputBytes: number;
  /** best wall time of config load + Programmer + replay(), ms */
  replayMs: number;
  /** of which config load + Programmer (64 MiB FIB allocation and fill), ms, same run */
  programMs: number;
  replayFramesPerSec: number;
  /** frames replay transmitted (all of them on this path) */
  replayTx: number;
  /** best tcpdump wall time, ms (null: tcpdump missing or failed) */
  tcpdumpMs: number | null;
  tcpdumpFramesPerSec: number | null;
  /** replay time / tcpdump time */
  ratio: number | null;
  runs: number;
  /** 'cpu' (CALITAP_BENCH_CPU=1: user + system time) or 'wall' */
  clock: 'cpu' | 'wall';
  note?: string;
}

const CPU = process.env.CALITAP_BENCH_CPU === '1';

/** This process's clock in ms: CPU time (user + system, every thread) or wall time. */
function selfMs(): number {
  if (!CPU) return Number(process.hrtime.bigint()) / 1e6;
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** CPU time of the reaped children (cutime + cstime, /proc/self/stat), in ms. */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields after the command: state(3) ... utime(14) stime(15) cutime(16) cstime(17); f[0] is field 3
  return ((Number(f[16 - 3]) + Number(f[17 - 3])) * 1000) / 100; // USER_HZ = 100 on Linux
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CONFIG = path.join(ROOT, 'pcaps', 'sample-config.yaml');

function writeInput(file: string, frames: number): number {
  const direct = BENCH_PATHS.find((p) => p.name === 'direct')!;
  const w = new PcapWriter(file);
  const buf = new Uint8Array(FRAME_LEN);
  writeFrame(buf, 0, direct);
  const t0 = 1_700_000_000;
  for (let k = 0; k < frames; k++) {
    // a different IP id per frame, header checksum recomputed (the UDP checksum does not cover it)
    buf[14 + 4] = (k >>> 8) & 255;
    buf[14 + 5] = k & 255;
    ip4SetChecksum(buf, 14);
    const us = k;
    w.write(buf, 0, FRAME_LEN, t0 + Math.floor(us / 1e6), (us % 1e6) * 1000);
  }
  w.close();
  return statSync(file).size;
}

function timeReplay(input: string, outDir: string): { ms: number; programMs: number; tx: number } {
  const t0 = selfMs();
  const prog = new Programmer(loadConfigFile(CONFIG), 'node-a');
  const t1 = selfMs();
  const res = replay(prog.env, { inputs: [{ port: 'cali1a2b3c4d5e6', path: input }], outDir });
  const t2 = selfMs();
  return {
    ms: t2 - t0,
    programMs: t1 - t0,
    tx: res.ports.reduce((a, p) => a + p.txPackets, 0),
  };
}

function timeTcpdump(input: string, output: string): number | null {
  const t0 = CPU ? childrenCpuMs() : Number(process.hrtime.bigint()) / 1e6;
  const r = spawnSync('tcpdump', ['-r', input, '-w', output], { stdio: 'ignore' });
  const ms = (CPU ? childrenCpuMs() : Number(process.hrtime.bigint()) / 1e6) - t0;
  if (r.error !== undefined || r.status !== 0) return null;
  return ms;
}

export async function runReplayBench(opts: { quick?: boolean } = {}): Promise<ReplayBenchResult> {
  const frames = opts.quick ? 200_000 : 2_000_000;
  const runs = opts.quick ? 2 : 3;
  const dir = mkdtempSync(path.join(tmpdir(), 'calitap-replay-bench-'));
  try {
    const input = path.join(dir, 'in.pcap');
    const inputBytes = writeInput(input, frames);
    const outDir = path.join(dir, 'out');
    let best = Infinity;
    let programMs = 0;
    let tx = 0;
    timeReplay(input, outDir); // warm-up
    for (let r = 0; r < runs; r++) {
      const t = timeReplay(input, outDir);
      if (t.ms < best) {
        best = t.ms;
        programMs = t.programMs;
      }
      tx = t.tx;
    }
    let tcpBest: number | null = timeTcpdump(input, path.join(dir, 'tcpdump.pcap')); // warm-up / probe
    if (tcpBest !== null) {
      for (let r = 0; r < runs; r++) {
        const ms = timeTcpdump(input, path.join(dir, 'tcpdump.pcap'));
        if (ms !== null) tcpBest = Math.min(tcpBest, ms);
      }
    }
    return {
      frames,
      frameLen: FRAME_LEN,
      inputBytes,
      replayMs: best,
      programMs,
      replayFramesPerSec: (frames * 1000) / best,
      replayTx: tx,
      tcpdumpMs: tcpBest,
      tcpdumpFramesPerSec: tcpBest === null ? null : (frames * 1000) / tcpBest,
      ratio: tcpBest === null ? null : best / tcpBest,
      runs,
      clock: CPU ? 'cpu' : 'wall',
      note: tcpBest === null ? 'tcpdump not available: skipped' : undefined,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatReplayBench(r: ReplayBenchResult): string {
  const rows = [
    ['run', 'frames', 'ms', 'frames/s'],
    [
      'calitap: load + program + replay()',
      String(r.frames),
      r.replayMs.toFixed(1),
      `${(r.replayFramesPerSec / 1e6).toFixed(2)} M`,
    ],
    [
      '  of which replay() alone',
      String(r.frames),
      (r.replayMs - r.programMs).toFixed(1),
      `${((r.frames * 1000) / (r.replayMs - r.programMs) / 1e6).toFixed(2)} M`,
    ],
  ];
  if (r.tcpdumpMs !== null && r.tcpdumpFramesPerSec !== null) {
    rows.push([
      'tcpdump -r in -w out',
      String(r.frames),
      r.tcpdumpMs.toFixed(1),
      `${(r.tcpdumpFramesPerSec / 1e6).toFixed(2)} M`,
    ]);
  }
  const w = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const lines = rows.map((row) =>
    row.map((cell, c) => (c === 0 ? cell.padEnd(w[c]) : cell.padStart(w[c]))).join('  '),
  );
  const head =
    `replay: ${r.frames} frames of ${r.frameLen} bytes (direct path), ` +
    `${(r.inputBytes / 2 ** 20).toFixed(1)} MiB, best of ${r.runs}, ${r.clock === 'cpu' ? 'CPU' : 'wall'} time, ` +
    `node ${process.version}`;
  const tail =
    r.ratio === null
      ? (r.note ?? '')
      : `replay / tcpdump time: ${r.ratio.toFixed(2)}x (tx ${r.replayTx} frames)`;
  return [head, ...lines, tail].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await runReplayBench({ quick: process.argv.includes('--quick') });
  console.log(formatReplayBench(r));
}
