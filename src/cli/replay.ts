// `calitap replay`: loads the config, programs a dataplane for --node, replays the captures through
// it and prints per-port and per-reason counters (text or one JSON object). Long runs show progress
// on stderr when it is a terminal (progress.ts; off with --quiet or --trace). Main thread.
import { loadConfigFile } from '../control/config/load.js';
import { Programmer } from '../control/daemon/program.js';
import { replay, type ReplayInput, type ReplayOptions, type ReplayResult } from '../dataplane/replay.js';
import { UsageError } from '../common/errors.js';
import { progressPrinter, type ProgressOptions } from './progress.js';

export interface ReplayCliOptions {
  config: string;
  node: string;
  in: string[];
  out: string;
  trace?: boolean;
  json?: boolean;
  seed?: string;
  /** no progress line */
  quiet?: boolean;
}

/** Where progress goes (stderr) and its clock; tests inject a fake terminal. */
export type ReplayProgressIo = Pick<ProgressOptions, 'stream' | 'now' | 'delayMs' | 'intervalMs'>;

export function parseInputs(specs: string[]): ReplayInput[] {
  return specs.map((s) => {
    const eq = s.indexOf('=');
    if (eq <= 0 || eq === s.length - 1) throw new UsageError(`--in ${s}: expected PORT=FILE`);
    return { port: s.slice(0, eq), path: s.slice(eq + 1) };
  });
}

export function runReplay(
  o: ReplayCliOptions,
  print: (s: string) => void,
  progressIo: ReplayProgressIo = { stream: process.stderr },
): ReplayResult {
  const inputs = parseInputs(o.in);
  if (inputs.length === 0) throw new UsageError('replay: at least one --in PORT=FILE is needed');
  const seed = o.seed === undefined ? 0 : Number(o.seed);
  if (!Number.isInteger(seed) || seed < 0)
    throw new UsageError(`--seed ${o.seed}: expected a non-negative integer`);
  const cfg = loadConfigFile(o.config);
  const prog = new Programmer(cfg, o.node, { natSeed: seed });
  const tracing = o.trace === true && o.json !== true;
  // the per-frame trace is its own progress: no progress line in between
  const progress = progressPrinter({ ...progressIo, quiet: o.quiet === true || tracing });
  // replay calls onProgress(framesDone, bytesDone, totalBytes) at most every 250 ms and at the end
  const opts: ReplayOptions = {
    inputs,
    outDir: o.out,
    trace: tracing ? (lines) => print(lines.join('\n')) : undefined,
    onProgress: progress.onProgress,
  };
  let res: ReplayResult;
  try {
    res = replay(prog.env, opts);
  } finally {
    progress.done();
  }
  if (o.json) {
    print(
      JSON.stringify({
        node: o.node,
        frames: res.frames,
        ports: res.ports,
        counters: res.counters.map((c) => ({ node: c.node, reason: c.reason, count: c.value })),
        ignored: cfg.ignored,
        warnings: prog.warnings,
      }),
    );
  } else {
    for (const i of cfg.ignored) print(`ignored: ${i.kind} ${i.name}: ${i.reason}`);
    for (const w of prog.warnings) print(`warning: ${w}`);
    print(formatReplaySummary(o.node, res));
  }
  return res;
}

export function formatReplaySummary(node: string, res: ReplayResult): string {
  const lines = [`replayed ${res.frames} frames on ${node}`, ''];
  const w = Math.max(8, ...res.ports.map((p) => p.port.length));
  lines.push(
    `${'PORT'.padEnd(w)}  ${'RX'.padStart(9)} ${'RX-BYTES'.padStart(11)} ${'TX'.padStart(9)} ${'TX-BYTES'.padStart(11)}`,
  );
  for (const p of res.ports) {
    lines.push(
      `${p.port.padEnd(w)}  ${String(p.rxPackets).padStart(9)} ${String(p.rxBytes).padStart(11)} ${String(p.txPackets).padStart(9)} ${String(p.txBytes).padStart(11)}`,
    );
  }
  lines.push('');
  if (res.counters.length === 0) lines.push('no counters');
  else {
    const cw = Math.max(...res.counters.map((c) => c.node.length + c.reason.length + 2));
    lines.push(`${'COUNTER'.padEnd(cw)}  ${'COUNT'.padStart(9)}`);
    for (const c of res.counters)
      lines.push(`${`${c.node}: ${c.reason}`.padEnd(cw)}  ${String(c.value).padStart(9)}`);
  }
  return lines.join('\n');
}
