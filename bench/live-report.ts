// The live benchmark's report (live.bench.ts): the side-by-side tables of every column it measured,
// and the ratio table of issue 9 (path | kernel | calitap | ratio | goal | met?), which takes its
// figures from the columns by key (live-measure.ts LiveResult.key). Pure formatting.
import { fmt, type CpuUse, type LiveBenchReport, type LiveResult } from './live-measure.js';

/** One row of the ratio table: which figure of which columns, and the goal. */
interface Goal {
  path: string;
  kernel: string;
  calitap: string;
  /** the TAP floor's column for the same path (live-floor.ts; floor-ipip-cross for the tunnel rows) */
  floor: string;
  value: (r: LiveResult) => number | null;
  digits: number;
  /** throughput: calitap / kernel ≥ min; latency: calitap ≤ 2 × kernel + 0.05 ms */
  kind: { min: number } | 'latency';
}

const tcp1 = (r: LiveResult): number | null => r.tcp1;
const gen = (r: LiveResult): number | null => (r.genRxPps === null ? null : r.genRxPps / 1e3);
const pingAvg = (r: LiveResult): number | null => r.pingAvg;

export const GOALS: Goal[] = [
  {
    path: 'same host TCP 1 stream, Gbit/s',
    kernel: 'kernel-same',
    calitap: 'ipip-same',
    floor: 'floor-same',
    value: tcp1,
    digits: 2,
    kind: { min: 0.8 },
  },
  {
    path: 'cross host TCP 1 stream, Never, Gbit/s',
    kernel: 'kernel-cross',
    calitap: 'never-cross',
    floor: 'floor-cross',
    value: tcp1,
    digits: 2,
    kind: { min: 0.7 },
  },
  {
    path: 'cross host TCP 1 stream, IPIP Always (kernel: direct), Gbit/s',
    kernel: 'kernel-cross',
    calitap: 'ipip-cross',
    floor: 'floor-ipip-cross',
    value: tcp1,
    digits: 2,
    kind: { min: 0.5 },
  },
  {
    path: 'cross host TCP 1 stream, VXLAN Always (kernel: direct), Gbit/s',
    kernel: 'kernel-cross',
    calitap: 'vxlan-cross',
    floor: 'floor-ipip-cross',
    value: tcp1,
    digits: 2,
    kind: { min: 0.5 },
  },
  {
    path: 'same host 60 B frames delivered, kpps',
    kernel: 'kernel-same',
    calitap: 'ipip-same',
    floor: 'floor-same',
    value: gen,
    digits: 0,
    kind: { min: 0.6 },
  },
  {
    path: 'ping avg same host, ms',
    kernel: 'kernel-same',
    calitap: 'ipip-same',
    floor: 'floor-same',
    value: pingAvg,
    digits: 3,
    kind: 'latency',
  },
  {
    path: 'ping avg cross host, IPIP Always, ms',
    kernel: 'kernel-cross',
    calitap: 'ipip-cross',
    floor: 'floor-ipip-cross',
    value: pingAvg,
    digits: 3,
    kind: 'latency',
  },
  {
    path: 'ping avg cross host, VXLAN Always, ms',
    kernel: 'kernel-cross',
    calitap: 'vxlan-cross',
    floor: 'floor-ipip-cross',
    value: pingAvg,
    digits: 3,
    kind: 'latency',
  },
  {
    path: 'ping avg cross host, Never, ms',
    kernel: 'kernel-cross',
    calitap: 'never-cross',
    floor: 'floor-cross',
    value: pingAvg,
    digits: 3,
    kind: 'latency',
  },
];

/**
 * The ratio table (Markdown): a row per goal, n/a where a figure is missing. The last two columns
 * are the TAP floor's figure on the same path and floor / kernel, the most any TAP dataplane reached
 * here (bench/live-floor.ts). The IPIP and VXLAN rows take the floor through an IPIP tunnel
 * (floor-ipip-cross: segmentation and GRO in C; n/a when it was not measured).
 */
export function formatRatioTable(results: LiveResult[]): string {
  const byKey = new Map(results.map((r) => [r.key, r]));
  const lines = [
    '| path | kernel | calitap | ratio | goal | met? | TAP floor | floor / kernel |',
    '|---|---:|---:|---:|---|---|---:|---:|',
  ];
  for (const g of GOALS) {
    const kr = byKey.get(g.kernel);
    const cr = byKey.get(g.calitap);
    const k = kr === undefined ? null : g.value(kr);
    const c = cr === undefined ? null : g.value(cr);
    const fr = byKey.get(g.floor);
    const f = fr === undefined ? null : g.value(fr);
    const ok = k !== null && c !== null && Number.isFinite(k) && Number.isFinite(c) && k > 0;
    const fratio = k !== null && f !== null && k > 0 ? f / k : null;
    const ratio = ok ? c / k : null;
    let goal: string;
    let met: string;
    if (g.kind === 'latency') {
      goal = '≤ 2× kernel + 0.05 ms';
      met = ok ? (c <= 2 * k + 0.05 ? 'yes' : 'no') : 'n/a';
    } else {
      goal = `≥ ${g.kind.min}`;
      met = ratio === null ? 'n/a' : ratio >= g.kind.min ? 'yes' : 'no';
    }
    lines.push(
      `| ${g.path} | ${fmt(k, g.digits)} | ${fmt(c, g.digits)} | ${fmt(ratio, 2)} | ${goal} | ${met} | ` +
        `${fmt(f, g.digits)} | ${fmt(fratio, 2)} |`,
    );
  }
  return lines.join('\n');
}

/** The side-by-side tables (Markdown), then the ratio table. */
export function formatLiveReport(rep: LiveBenchReport): string {
  const lines: string[] = [];
  const cpu = (c: CpuUse | null): string =>
    c === null ? 'n/a' : `${c.dataplane.toFixed(2)} / ${c.machine.toFixed(2)}`;
  const rows: [string, (r: LiveResult) => string][] = [
    ['TCP 1 stream, Gbit/s', (r) => fmt(r.tcp1, 2)],
    ['TCP 4 streams, Gbit/s', (r) => fmt(r.tcp4, 2)],
    ['UDP 64 B delivered, kpps', (r) => fmt(r.udpRxPps === null ? null : r.udpRxPps / 1e3, 0)],
    ['UDP 64 B sent, kpps', (r) => fmt(r.udpTxPps === null ? null : r.udpTxPps / 1e3, 0)],
    ['gen 60 B × 64 flows delivered, kpps', (r) => fmt(gen(r), 0)],
    ['gen 60 B offered, kpps', (r) => fmt(r.genTxPps === null ? null : r.genTxPps / 1e3, 0)],
    [
      'gen 60 B dropped at sender eth0, kpps',
      (r) => fmt(r.genTxDropPps === null ? null : r.genTxDropPps / 1e3, 0),
    ],
    ['ping avg (200 × 10 ms, after the loads), ms', (r) => fmt(r.pingAvg, 3)],
    ['ping min / max, ms', (r) => `${fmt(r.pingMin, 3)} / ${fmt(r.pingMax, 3)}`],
    ['ping avg cold (50 × 10 ms, before any load), ms', (r) => fmt(r.pingColdAvg, 3)],
    ['ping avg idle (10 × 200 ms), ms', (r) => fmt(r.pingIdleAvg, 3)],
    ['CPU dp / machine, TCP 1 (cores)', (r) => cpu(r.cpuTcp1)],
    ['CPU dp / machine, TCP 4 (cores)', (r) => cpu(r.cpuTcp4)],
    ['CPU dp / machine, UDP (cores)', (r) => cpu(r.cpuUdp)],
    ['CPU dp / machine, gen (cores)', (r) => cpu(r.cpuGen)],
  ];
  for (const scenario of ['same-host', 'cross-host']) {
    const cols = rep.results.filter((r) => r.scenario === scenario);
    if (cols.length === 0) continue;
    lines.push(
      '',
      `**${scenario === 'same-host' ? 'Same host (host 1: w1 → w2)' : 'Cross host (host 1 w1 → host 2 w3)'}**`,
      '',
    );
    lines.push(`| | ${cols.map((c) => `${c.dataplane}: ${c.path}`).join(' | ')} |`);
    lines.push(`|---|${cols.map(() => '---:').join('|')}|`);
    for (const [name, f] of rows) lines.push(`| ${name} | ${cols.map(f).join(' | ')} |`);
  }
  lines.push('', '**Goals (issue 9; calitap default flags vs the kernel, this run)**', '');
  lines.push(formatRatioTable(rep.results));
  lines.push('');
  lines.push(
    `${rep.seconds}-s runs, best of ${rep.reps} per load; machine busy before start: ${rep.background.toFixed(2)} cores.`,
  );
  const errs = rep.results.flatMap((r) => r.errors.map((e) => `${r.dataplane} ${r.scenario}: ${e}`));
  lines.push('');
  for (const n of rep.notes) lines.push(`- ${n}`);
  for (const e of errs) lines.push(`- error: ${e}`);
  return lines.join('\n');
}
