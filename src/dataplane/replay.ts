// Replay: capture files in, the forwarding graph, one pcap per port out.
//
// Input frames from all files are merged in timestamp order (ties: argument order), copied into a
// batch and pushed through the same graph the live dataplane runs; every frame a port transmits is
// written to `<outDir>/<port>.pcap` with the timestamp of the frame that caused it. The clock the
// graph's timers see (ARP retries, ICMP rate limit) is the capture's. Single-threaded, deterministic.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Batch, DEFAULT_BATCH } from './graph/packet.js';
import { buildGraph, type BuiltGraph, type GraphFeature } from './graph/build.js';
import type { DataplaneEnv } from './graph/env.js';
import { PortCounters, type CounterRow } from './graph/counters.js';
import { openCapture } from './devices/pcap/reader.js';
import { PcapWriter } from './devices/pcap/writer.js';
import { PcapDevice, ReplayCounters } from './devices/pcap.js';
import { DeviceContext } from './devices/device.js';
import { Driver } from './devices/driver.js';
import { UsageError } from '../common/errors.js';
import { DATAPLANE_FEATURES } from './features/index.js';
import { policyCounterRows } from './features/policy/counters.js';

export interface ReplayInput {
  port: string;
  path: string;
}

export interface ReplayOptions {
  inputs: ReplayInput[];
  /** directory for <port>.pcap outputs; null: outputs are kept in memory (tests, bench) */
  outDir: string | null;
  trace?: (lines: string[]) => void;
  batchSize?: number;
  /** graph features (default: all, as the live workers) */
  features?: readonly GraphFeature[];
  /**
   * Progress for a printer: frames and input bytes consumed so far and the inputs' total size (0
   * when unknown, e.g. a pipe). Called at most every 250 ms of `clock` time while the replay runs,
   * and once when it is done.
   */
  onProgress?(framesDone: number, bytesDone: number, totalBytes: number): void;
  /** wall clock in milliseconds for onProgress (default: performance.now) */
  clock?: () => number;
}

export interface PortStats {
  port: string;
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
}

export interface ReplayResult {
  frames: number;
  ports: PortStats[];
  counters: CounterRow[];
  /** in-memory outputs when outDir is null: port name → pcap bytes */
  outputs: Map<string, Uint8Array>;
}

/** Milliseconds between two onProgress calls. */
const PROGRESS_MS = 250;

export function replay(env: DataplaneEnv, opts: ReplayOptions): ReplayResult {
  const ports = env.ports;
  const capacity = opts.batchSize ?? DEFAULT_BATCH;
  const pc = new PortCounters(ports.count);
  const ctx = new DeviceContext(pc);
  const rc = new ReplayCounters();
  const inputs: PcapDevice[] = [];
  const sizes: number[] = [];
  try {
    for (const inp of opts.inputs) {
      const p = ports.index(inp.port);
      if (p === undefined) {
        throw new UsageError(
          `--in ${inp.port}=${inp.path}: unknown port ${inp.port} (ports: ${ports.names.join(', ')})`,
        );
      }
      const r = openCapture(inp.path);
      const d = new PcapDevice(inp.port, ctx, capacity, null, r, rc);
      d.port = p;
      inputs.push(d);
      sizes.push(fileSize(inp.path));
      d.start();
    }
    if (opts.outDir !== null) fs.mkdirSync(opts.outDir, { recursive: true });
    const writers = ports.names.map(
      (name) => new PcapWriter(opts.outDir === null ? null : path.join(opts.outDir, `${name}.pcap`)),
    );
    const sinks = writers.map((w, p) => {
      const d = new PcapDevice(ports.names[p], ctx, capacity, w, null, rc);
      d.port = p;
      return d;
    });
    const features = [...(opts.features ?? DATAPLANE_FEATURES), () => [...ctx.nodes(), rc]];
    const g = buildGraph(env, sinks, capacity, features, { shared: { portCounters: pc } });
    const driver = new Driver(g.graph, new Batch(capacity), sinks, ctx, g.minMtu);
    const frames = run(inputs, sizes, driver, g, opts);
    const outputs = new Map<string, Uint8Array>();
    writers.forEach((w, p) => {
      if (opts.outDir === null) outputs.set(ports.names[p], w.toBuffer());
      else w.close();
    });
    const rows = g.graph.counters.rows();
    return {
      frames,
      ports: ports.names.map((port, p) => ({
        port,
        rxPackets: pc.rxPackets[p],
        rxBytes: pc.rxBytes[p],
        txPackets: pc.txPackets[p],
        txBytes: pc.txBytes[p],
      })),
      // replay's own counters first, then the graph's in registration order, then policy denies
      // per endpoint, direction and cause
      counters: [
        ...rows.filter((r) => r.node === rc.name),
        ...rows.filter((r) => r.node !== rc.name),
        ...policyCounterRows(env.policy),
      ],
      outputs,
    };
  } finally {
    for (const d of inputs) d.close();
  }
}

/** Size of a capture file (0 when it is not a regular file: unknown). */
function fileSize(p: string): number {
  try {
    const st = fs.statSync(p);
    return st.isFile() ? st.size : 0;
  } catch {
    return 0;
  }
}

function run(
  inputs: PcapDevice[],
  sizes: number[],
  driver: Driver,
  g: BuiltGraph,
  opts: ReplayOptions,
): number {
  const b = driver.b;
  let frames = 0;
  const trace = opts.trace;
  if (trace) {
    for (const d of inputs)
      d.onTooBig = (len) =>
        trace([`frame ${frames + 1} rx ${g.output.portName(d.port)}: drop: frame-too-big (${len} bytes)`]);
  }
  const onProgress = opts.onProgress;
  const clock = opts.clock ?? (() => performance.now());
  const total = sizes.reduce((a, s) => a + s, 0);
  const done = (): number =>
    inputs.reduce((a, d, k) => a + (d.pending ? Math.min(d.reader!.recordOffset, sizes[k]) : sizes[k]), 0);
  let lastProgress = onProgress ? clock() : 0;
  for (;;) {
    // pick the earliest frame; ties go to the input named first
    let best = pick(inputs);
    if (best === null) break;
    // timers first, at the time of the round's first frame
    const sec0 = best.tsSec;
    const nsec0 = best.tsNsec;
    driver.begin(sec0, nsec0);
    if (trace) b.trace = [];
    driver.timers(sec0 + nsec0 / 1e9);
    if (trace) emitTrace(b, g, trace, 0, 'timer');
    driver.begin(sec0, nsec0);
    if (trace) b.trace = [];
    const first = frames;
    // a round spans at most ROUND_NS of capture time, so timers (ICMP rate limit, ARP retries, NAT
    // timeouts) see time pass as they would live; and takes only as many frames as the driver's
    // budget allows (room for every fragment or packet the graph may generate from them)
    const endSec = sec0 + Math.floor((nsec0 + ROUND_NS) / 1e9);
    const endNsec = (nsec0 + ROUND_NS) % 1e9;
    while (best !== null) {
      if (b.count > 0 && (best.tsSec > endSec || (best.tsSec === endSec && best.tsNsec >= endNsec))) break;
      // the earliest input gives every frame up to the round's end that comes before the other
      // inputs' next ones (ties: the input named first), in one read
      limitRun(inputs, best, endSec, endNsec);
      const got = driver.receive(best);
      if (got === 0) break;
      frames += got;
      best = pick(inputs);
    }
    driver.process();
    if (trace) emitTrace(b, g, trace, first, 'frame');
    if (onProgress) {
      const t = clock();
      if (t - lastProgress >= PROGRESS_MS) {
        lastProgress = t;
        onProgress(frames, done(), total);
      }
    }
  }
  driver.finish();
  onProgress?.(frames, total, total);
  return frames;
}

/** Capture time one round may span (1 ms). */
const ROUND_NS = 1_000_000;

/**
 * Limits `best`'s next read to the frames that pick() would choose in a row: before the round's end
 * (sec, nsec) and before every other input's pending frame (at the same time as it, too, when `best` was
 * named before it). The first frame is always allowed: `best` is the earliest and inside the round.
 */
function limitRun(inputs: PcapDevice[], best: PcapDevice, sec: number, nsec: number): void {
  let incl = false;
  let after = false; // inputs after best in argument order lose ties to it
  for (let k = 0; k < inputs.length; k++) {
    const d = inputs[k];
    if (d === best) {
      after = true;
      continue;
    }
    if (!d.pending) continue;
    const s = d.tsSec;
    const ns = d.tsNsec;
    if (s < sec || (s === sec && ns < nsec)) {
      sec = s;
      nsec = ns;
      incl = after;
    } else if (s === sec && ns === nsec) {
      incl = incl && after;
    }
  }
  // never below best's own frame (it is the earliest: this only guards against a stuck round)
  const bs = best.tsSec;
  const bn = best.tsNsec;
  if (bs > sec || (bs === sec && bn >= nsec)) {
    sec = bs;
    nsec = bn;
    incl = true;
  }
  best.limit(sec, nsec, incl);
}

/** The input whose pending frame is the earliest (ties: the first), or null when all are done. */
function pick(inputs: PcapDevice[]): PcapDevice | null {
  let best: PcapDevice | null = null;
  for (let k = 0; k < inputs.length; k++) {
    const d = inputs[k];
    if (d.pending && (best === null || d.earlier(best))) best = d;
  }
  return best;
}

/** Prints what happened to each frame of the round (generated packets under their cause). */
function emitTrace(
  b: Batch,
  g: BuiltGraph,
  out: (lines: string[]) => void,
  first: number,
  what: string,
): void {
  let n = first;
  for (let i = 0; i < b.count; i++) {
    if (b.cause[i] !== i) continue;
    n++;
    const lines = b.trace?.[i] ?? [];
    if (lines.length === 0 && what === 'timer') continue;
    const head = what === 'timer' ? 'timer' : `frame ${n}`;
    const ts = `${b.tsSec[i]}.${String(b.tsNsec[i]).padStart(9, '0')}`;
    out([
      `${head} rx ${g.output.portName(b.rxPort[i])} t=${ts} ${b.len[i]} bytes`,
      ...lines.map((l) => `  ${l}`),
    ]);
  }
}
