// Replay: capture files in, the forwarding graph, one pcap per port out.
//
// Input frames from all files are merged in timestamp order (ties: argument order), copied into a
// batch and pushed through the same graph the live dataplane runs; every frame a port transmits is
// written to `<outDir>/<port>.pcap` with the timestamp of the frame that caused it. The clock the
// graph's timers see (ARP retries, ICMP rate limit) is the capture's. Single-threaded, deterministic.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Batch, DEFAULT_BATCH, rxBudget } from './graph/packet.js';
import { buildGraph, type BuiltGraph, type GraphFeature } from './graph/build.js';
import type { DataplaneEnv, PortSink } from './graph/env.js';
import { openCapture, LINKTYPE_ETHERNET, type CaptureReader } from './devices/pcap/reader.js';
import { PcapWriter } from './devices/pcap/writer.js';
import { CaptureError, UsageError } from '../common/errors.js';
import type { CounterRow } from './graph/counters.js';
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

/** Collects a round's packets for one port and writes them in (timestamp, cause) order. */
class PcapSink implements PortSink {
  private readonly idx: Uint16Array;
  private n = 0;
  private batch: Batch | null = null;

  constructor(
    readonly writer: PcapWriter,
    capacity: number,
  ) {
    this.idx = new Uint16Array(capacity);
  }

  tx(b: Batch, i: number): void {
    this.batch = b;
    this.idx[this.n++] = i;
  }

  flush(): void {
    const b = this.batch;
    if (b === null || this.n === 0) return;
    const idx = this.idx;
    // insertion sort: the queue is nearly sorted already; order = when the causing frame was captured
    for (let k = 1; k < this.n; k++) {
      const v = idx[k];
      let j = k - 1;
      while (j >= 0 && later(b, idx[j], v)) {
        idx[j + 1] = idx[j];
        j--;
      }
      idx[j + 1] = v;
    }
    for (let k = 0; k < this.n; k++) {
      const i = idx[k];
      this.writer.write(b.u8, b.off[i], b.len[i], b.tsSec[i], b.tsNsec[i]);
    }
    this.n = 0;
  }
}

function later(b: Batch, x: number, y: number): boolean {
  if (b.tsSec[x] !== b.tsSec[y]) return b.tsSec[x] > b.tsSec[y];
  if (b.tsNsec[x] !== b.tsNsec[y]) return b.tsNsec[x] > b.tsNsec[y];
  if (b.cause[x] !== b.cause[y]) return b.cause[x] > b.cause[y];
  return x > y;
}

export function replay(env: DataplaneEnv, opts: ReplayOptions): ReplayResult {
  const ports = env.ports;
  const readers: { r: CaptureReader; port: number; live: boolean }[] = [];
  try {
    for (const inp of opts.inputs) {
      const p = ports.index(inp.port);
      if (p === undefined) {
        throw new UsageError(
          `--in ${inp.port}=${inp.path}: unknown port ${inp.port} (ports: ${ports.names.join(', ')})`,
        );
      }
      readers.push({ r: openCapture(inp.path), port: p, live: true });
    }
    if (opts.outDir !== null) fs.mkdirSync(opts.outDir, { recursive: true });
    const capacity = opts.batchSize ?? DEFAULT_BATCH;
    const writers = ports.names.map(
      (name) => new PcapWriter(opts.outDir === null ? null : path.join(opts.outDir, `${name}.pcap`)),
    );
    const sinks = writers.map((w) => new PcapSink(w, capacity));
    const g = buildGraph(env, sinks, capacity, opts.features ?? DATAPLANE_FEATURES);
    const b = new Batch(capacity);
    const extra: CounterRow = { node: 'replay', reason: 'frame-too-big', value: 0 };
    const frames = run(readers, b, g, sinks, opts, capacity, extra);
    const outputs = new Map<string, Uint8Array>();
    writers.forEach((w, p) => {
      if (opts.outDir === null) outputs.set(ports.names[p], w.toBuffer());
      else w.close();
    });
    const pc = g.graph.portCounters;
    return {
      frames,
      ports: ports.names.map((port, p) => ({
        port,
        rxPackets: pc.rxPackets[p],
        rxBytes: pc.rxBytes[p],
        txPackets: pc.txPackets[p],
        txBytes: pc.txBytes[p],
      })),
      counters: [
        ...(extra.value > 0 ? [extra] : []),
        ...g.graph.counters.rows(),
        ...policyCounterRows(env.policy), // per endpoint, direction and cause
      ],
      outputs,
    };
  } finally {
    for (const x of readers) x.r.close();
  }
}

function run(
  readers: { r: CaptureReader; port: number; live: boolean }[],
  b: Batch,
  g: BuiltGraph,
  sinks: PcapSink[],
  opts: ReplayOptions,
  capacity: number,
  extra: CounterRow,
): number {
  // Leave room in every batch for packets the graph generates (fragments, ARP requests, releases),
  // so what happens to a frame never depends on where it falls in a round.
  const maxRx = rxBudget(capacity, g.minMtu);
  for (const x of readers) x.live = advance(x.r);
  let frames = 0;
  const trace = opts.trace;
  for (;;) {
    // pick the earliest frame; ties go to the reader named first
    let best = pick(readers);
    if (best < 0) break;
    // timers first, at the time of the round's first frame
    const r0 = readers[best].r;
    b.reset();
    if (trace) b.trace = [];
    b.nowSec = r0.tsSec;
    b.nowNsec = r0.tsNsec;
    g.graph.tick(b, r0.tsSec + r0.tsNsec / 1e9);
    flushAll(sinks);
    if (trace) emitTrace(b, g, trace, 0, 'timer');
    b.reset();
    if (trace) b.trace = [];
    const first = frames;
    // a round spans at most ROUND_NS of capture time, so timers (ICMP rate limit, ARP retries, NAT
    // timeouts) see time pass as they would live
    const endSec = r0.tsSec + Math.floor((r0.tsNsec + ROUND_NS) / 1e9);
    const endNsec = (r0.tsNsec + ROUND_NS) % 1e9;
    while (b.count < maxRx && best >= 0) {
      const rb = readers[best].r;
      if (b.count > 0 && (rb.tsSec > endSec || (rb.tsSec === endSec && rb.tsNsec >= endNsec))) break;
      const x = readers[best];
      const r = x.r;
      frames++;
      if (b.push(r.buf, r.dataOffset, r.capLen, x.port, r.tsSec, r.tsNsec) < 0) {
        // larger than a packet slot: cannot be carried (counted like any other drop)
        extra.value++;
        if (trace)
          trace([`frame ${frames} rx ${g.output.portName(x.port)}: drop: frame-too-big (${r.capLen} bytes)`]);
      }
      x.live = advance(r);
      best = pick(readers);
    }
    g.graph.run(b);
    flushAll(sinks);
    if (trace) emitTrace(b, g, trace, first, 'frame');
  }
  b.reset();
  g.graph.finish(b);
  flushAll(sinks);
  return frames;
}

/** Capture time one round may span (1 ms). */
const ROUND_NS = 1_000_000;

function pick(readers: { r: CaptureReader; live: boolean }[]): number {
  let best = -1;
  for (let k = 0; k < readers.length; k++) {
    if (readers[k].live && (best < 0 || earlier(readers[k].r, readers[best].r))) best = k;
  }
  return best;
}

function flushAll(sinks: PcapSink[]): void {
  for (const s of sinks) s.flush();
}

function earlier(a: CaptureReader, b: CaptureReader): boolean {
  return a.tsSec < b.tsSec || (a.tsSec === b.tsSec && a.tsNsec < b.tsNsec);
}

function advance(r: CaptureReader): boolean {
  if (!r.next()) return false;
  if (r.linkType !== LINKTYPE_ETHERNET) {
    throw new CaptureError(`${r.path}: frame ${r.index + 1}: link type ${r.linkType} is not Ethernet (1)`);
  }
  return true;
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
