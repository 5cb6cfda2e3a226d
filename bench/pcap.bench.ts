// Capture file I/O benchmark: how fast replay can read and write classic pcap, against tcpdump (the
// goal: replay end to end within 2x of `tcpdump -r in.pcap -w out.pcap`) and against `pcap-parser`
// (to back the choice of our own reader). Not a test. Run:
//   npx tsc -p tsconfig.build.json && node dist/bench/pcap.bench.js [--quick]
// or call `runPcapBench` from the bench runner.
//
// It writes a 1 M-frame file of 64-byte frames (100 k with quick) into os.tmpdir() with PcapWriter
// (timed: "write"), then on that same file times
//   read        openCapture + next() over every frame, summing a byte of each frame so no work is dropped
//   copy        read + PcapWriter.write of every frame to a second file (what replay's I/O costs)
//   pcap-parser its 'packet' events over the file (stream based; allocates per packet)
//   tcpdump     `tcpdump -r in -w out` via spawnSync, when tcpdump is installed (process start included)
// each after one warm-up run, best of `runs`, and counts garbage collections during each run (0 means
// no per-frame allocation reached the GC). Temporary files are removed at the end.
//
// Measured (2 shared cores, Node 20.20, tcpdump 4.99.3, file in the page cache):
//   run                    frames     ms  frames/s  GCs
//   write (PcapWriter)    1000000   82.2   12.16 M    0
//   read (openCapture)    1000000   23.3   43.01 M    0
//   read+write copy       1000000   93.2   10.73 M    1   (the 1: the 8 + 4 MiB buffers allocated per run)
//   pcap-parser read      1000000  569.4    1.76 M  123
//   tcpdump -r in -w out  1000000  216.1    4.63 M    -   (process start included)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { openCapture } from '../src/dataplane/devices/pcap/reader.js';
import { PcapWriter } from '../src/dataplane/devices/pcap/writer.js';

export interface PcapBenchRow {
  name: string;
  frames: number;
  ms: number;
  framesPerSec: number;
  /** GCs observed during the timed run (-1 when not measured: tcpdump) */
  gcs: number;
  note?: string;
}

export interface PcapBenchResult {
  frames: number;
  frameLen: number;
  fileBytes: number;
  rows: PcapBenchRow[];
}

interface PcapParserEmitter {
  on(ev: string, cb: (arg: unknown) => void): PcapParserEmitter;
}
const pcapParser = createRequire(import.meta.url)('pcap-parser') as {
  parse(path: string): PcapParserEmitter;
};

let gcCount = 0;
let sink = 0;

/** GC entries reach the observer from a later event-loop turn: let them arrive before counting. */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
}

type Timing = { ms: number; gcs: number; n: number };

async function time(fn: () => number | Promise<number>): Promise<Timing> {
  await settle();
  const g0 = gcCount;
  const t0 = process.hrtime.bigint();
  const n = await fn();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  await settle();
  return { ms, gcs: gcCount - g0, n };
}

/** Best of `runs` timed runs after one warm-up run. */
async function best(runs: number, fn: () => number | Promise<number>): Promise<Timing> {
  await fn();
  let b = await time(fn);
  for (let i = 1; i < runs; i++) {
    const t = await time(fn);
    if (t.ms < b.ms) b = t;
  }
  return b;
}

function writeInput(path: string, frames: number, frameLen: number): number {
  const frame = new Uint8Array(frameLen);
  for (let i = 0; i < frameLen; i++) frame[i] = i;
  const w = new PcapWriter(path);
  for (let i = 0; i < frames; i++) {
    frame[frameLen - 1] = i & 0xff;
    w.write(frame, 0, frameLen, 1700000000 + Math.floor(i / 1000000), (i % 1000000) * 1000);
  }
  w.close();
  return w.frames;
}

function readAll(path: string): number {
  const r = openCapture(path);
  let n = 0;
  let s = 0;
  while (r.next()) {
    s += r.buf[r.dataOffset + r.capLen - 1];
    n++;
  }
  r.close();
  sink += s;
  return n;
}

function copyAll(src: string, dst: string): number {
  const r = openCapture(src);
  const w = new PcapWriter(dst);
  while (r.next()) w.write(r.buf, r.dataOffset, r.capLen, r.tsSec, r.tsNsec, r.origLen);
  r.close();
  w.close();
  return w.frames;
}

function pcapParserRead(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    pcapParser
      .parse(path)
      .on('packet', () => n++)
      .on('error', (e) => reject(e as Error))
      .on('end', () => resolve(n));
  });
}

function row(name: string, t: Timing, note?: string): PcapBenchRow {
  return { name, frames: t.n, ms: t.ms, framesPerSec: (t.n / t.ms) * 1000, gcs: t.gcs, note };
}

export async function runPcapBench(opts: { quick?: boolean } = {}): Promise<PcapBenchResult> {
  const frames = opts.quick ? 100_000 : 1_000_000;
  const frameLen = 64;
  const runs = opts.quick ? 2 : 3;
  const dir = mkdtempSync(join(tmpdir(), 'calitap-pcap-bench-'));
  const obs = new PerformanceObserver((list) => (gcCount += list.getEntries().length));
  obs.observe({ entryTypes: ['gc'] });
  const input = join(dir, 'in.pcap');
  const output = join(dir, 'out.pcap');
  const rows: PcapBenchRow[] = [];
  try {
    rows.push(row('write (PcapWriter)', await best(runs, () => writeInput(input, frames, frameLen))));
    const fileBytes = statSync(input).size;
    rows.push(row('read (openCapture)', await best(runs, () => readAll(input))));
    rows.push(row('read+write copy', await best(runs, () => copyAll(input, output))));
    rows.push(row('pcap-parser read', await best(runs, () => pcapParserRead(input)), 'allocates per packet'));
    const probe = spawnSync('tcpdump', ['--version'], { stdio: 'ignore' });
    if (probe.error === undefined && probe.status === 0) {
      // as root, tcpdump drops to user "tcpdump" before opening -w's file: -Z root keeps it able to write
      const asRoot = process.getuid?.() === 0 ? ['-Z', 'root'] : [];
      const t = await best(runs, () => {
        const r = spawnSync('tcpdump', [...asRoot, '-r', input, '-w', output], { stdio: 'ignore' });
        if (r.status !== 0) throw new Error(`tcpdump failed: ${r.status}`);
        return frames;
      });
      rows.push(row('tcpdump -r in -w out', { ...t, gcs: -1 }, 'process start included'));
    } else {
      rows.push({
        name: 'tcpdump -r in -w out',
        frames: 0,
        ms: 0,
        framesPerSec: 0,
        gcs: -1,
        note: 'not installed',
      });
    }
    return { frames, frameLen, fileBytes, rows };
  } finally {
    obs.disconnect();
    rmSync(dir, { recursive: true, force: true });
    if (sink === -1) console.log(sink); // keeps the sums alive
  }
}

export function formatPcapBench(res: PcapBenchResult): string {
  const rows = [['run', 'frames', 'ms', 'frames/s', 'GCs', '']];
  for (const r of res.rows) {
    rows.push([
      r.name,
      String(r.frames),
      r.ms.toFixed(1),
      r.framesPerSec > 0 ? `${(r.framesPerSec / 1e6).toFixed(2)} M` : '-',
      r.gcs < 0 ? '-' : String(r.gcs),
      r.note ?? '',
    ]);
  }
  const w = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const head = `pcap I/O, ${res.frames} frames of ${res.frameLen} bytes (${(res.fileBytes / 2 ** 20).toFixed(1)} MiB), node ${process.version}`;
  const lines = rows.map((row) =>
    row
      .map((cell, c) => (c === 0 || c === 5 ? cell.padEnd(w[c]) : cell.padStart(w[c])))
      .join('  ')
      .trimEnd(),
  );
  return [head, ...lines].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const res = await runPcapBench({ quick: process.argv.includes('--quick') });
  console.log(formatPcapBench(res));
}
