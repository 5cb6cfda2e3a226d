// Before/after of one live TCP load (root only; not a test): ONE lab (src/lab/lab.ts, 2 hosts), its
// daemons restarted for each variant and the variants alternated run by run, so that every variant
// sees the same machine load (this machine: 2 vCPUs shared with other jobs; Gbit/s swings ±30 %
// between identical runs). Per run it prints iperf3's Gbit/s (1 stream, workload 1 on host 1 to a
// workload on host 1 or, with --cross, on host 2), the daemons' CPU seconds (utime + stime of every
// thread, /proc/<pid>/stat) and CPU seconds per GB delivered (the figure that load disturbs least),
// the machine's busy cores and load average; with --threads, per thread of host 1's daemon (≥ 0.1 s):
// CPU, minor faults, voluntary/involuntary context switches and read/write system calls
// (/proc/<pid>/task/<tid>/{stat,status,io}); at the end, the median of each variant.
// A variant is `name=` followed by comma-separated daemon environment (K=V) and `calitap run` flags
// (--flag); `--workers=N` sets the worker count. `--perf DIR` records `perf record -a -g -e cpu-clock`
// of every run to DIR/<variant>-<run>.data.
// Run: `node dist/bench/live-ab.js [--mode ipip|vxlan|never] [--cross] [--uplink udp] [--seconds 4]
// [--runs 3] [--workers 2] [--threads] [--variants 'a=;b=--no-host-interface']`.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Lab, type LabMode } from '../src/lab/lab.js';
import { iperfServer, nsRun, stopChild, sysCpu } from './live-measure.js';

const CLK_TCK = 100;

interface Variant {
  name: string;
  env: Record<string, string>;
  args: string[];
  workers?: number;
}

/** `a=K=V,--flag;b=` → variants */
export function parseVariants(s: string): Variant[] {
  return s.split(';').map((v) => {
    const eq = v.indexOf('=');
    const name = eq < 0 ? v : v.slice(0, eq);
    const out: Variant = { name, env: {}, args: [] };
    for (const item of (eq < 0 ? '' : v.slice(eq + 1)).split(',').filter((x) => x !== '')) {
      if (item.startsWith('--workers=')) out.workers = Number(item.slice(10));
      else if (item.startsWith('--')) out.args.push(item);
      else {
        const k = item.indexOf('=');
        out.env[k < 0 ? item : item.slice(0, k)] = k < 0 ? '' : item.slice(k + 1);
      }
    }
    return out;
  });
}

function procCpu(pid: number): number {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** tid → [cpu s, minflt, voluntary, involuntary, syscr, syscw] */
function threadStats(pid: number): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const d = `/proc/${pid}/task/${t}`;
      const s = fs.readFileSync(`${d}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      const st = fs.readFileSync(`${d}/status`, 'utf8');
      const io = fs.readFileSync(`${d}/io`, 'utf8');
      const num = (re: RegExp, x: string): number => Number(re.exec(x)?.[1] ?? 0);
      m.set(t, [
        (Number(f[11]) + Number(f[12])) / CLK_TCK,
        Number(f[7]),
        num(/^voluntary_ctxt_switches:\s+(\d+)/m, st),
        num(/^nonvoluntary_ctxt_switches:\s+(\d+)/m, st),
        num(/^syscr: (\d+)/m, io),
        num(/^syscw: (\d+)/m, io),
      ]);
    } catch {
      // the thread ended
    }
  }
  return m;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function runLiveAb(argv: string[], log: (s: string) => void): Promise<void> {
  const arg = (n: string, d: string): string => {
    const i = argv.indexOf(n);
    return i >= 0 && i + 1 < argv.length ? argv[i + 1] : d;
  };
  const mode = arg('--mode', 'ipip') as LabMode;
  const cross = argv.includes('--cross');
  const seconds = Number(arg('--seconds', '4'));
  const runs = Number(arg('--runs', '3'));
  const workers = Number(arg('--workers', '2'));
  const perfDir = arg('--perf', '');
  const uplink = arg('--uplink', 'packet') as 'packet' | 'udp';
  const variants = parseVariants(arg('--variants', 'base='));
  const lab = Lab.create({ prefix: `ab${process.pid % 1e4}`, mode, hosts: 2, workers, uplink });
  const onSignal = (): void => {
    lab.destroy();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const res = new Map<string, { gbps: number; perGB: number }[]>();
  try {
    await lab.start(1);
    await lab.start(2);
    const w1 = await lab.addWorkload(1);
    const dst = cross ? await lab.addWorkload(2) : await lab.addWorkload(1);
    const hosts = cross ? [1, 2] : [1];
    for (let r = 0; r < runs; r++) {
      for (const v of variants) {
        lab.o.daemonEnv = v.env;
        lab.o.daemonArgs = v.args;
        lab.o.workers = v.workers ?? workers;
        for (const k of [1, 2]) await lab.stop(k);
        for (const k of [1, 2]) await lab.start(k);
        nsRun(w1.ns, ['ping', '-q', '-c', '3', '-i', '0.2', dst.ip], 10_000);
        const srv = iperfServer(dst.ns);
        await new Promise((x) => setTimeout(x, 300));
        const pids = hosts.map((k) => lab.hosts[k - 1].daemon!.pid!);
        let perf: ChildProcess | null = null;
        if (perfDir !== '') {
          fs.mkdirSync(perfDir, { recursive: true });
          const out = path.join(perfDir, `${v.name}-${r}.data`);
          const pargs = ['record', '-a', '-g', '-e', 'cpu-clock', '-F', '999', '-o', out, '--'];
          perf = spawn('perf', [...pargs, 'sleep', String(Math.max(1, seconds - 1))], { stdio: 'ignore' });
        }
        const th0 = threadStats(pids[0]);
        const c0 = pids.map(procCpu);
        const m0 = sysCpu();
        const t0 = performance.now();
        const iperf = ['iperf3', '-c', dst.ip, '-t', String(seconds), '-J'];
        const j = JSON.parse(nsRun(w1.ns, iperf, (seconds + 20) * 1000)) as {
          end: { sum_received: { bits_per_second: number; bytes: number } };
        };
        const wall = (performance.now() - t0) / 1000;
        const c1 = pids.map(procCpu);
        const m1 = sysCpu();
        const th1 = threadStats(pids[0]);
        await stopChild(srv);
        if (perf !== null) {
          const p = perf;
          await new Promise((x) => (p.exitCode !== null ? x(0) : p.once('exit', x)));
        }
        const gbps = j.end.sum_received.bits_per_second / 1e9;
        const cpu = c1.map((c, i) => c - c0[i]);
        const total = cpu.reduce((a, b) => a + b, 0);
        const perGB = total / (j.end.sum_received.bytes / 1e9);
        const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 2).join(' ');
        log(
          `${v.name.padEnd(10)} ${gbps.toFixed(2)} Gbit/s  calitap CPU ${cpu.map((c) => c.toFixed(2)).join('+')} s  ` +
            `${perGB.toFixed(3)} CPU-s/GB  machine busy ${((m1.busy - m0.busy) / wall).toFixed(2)} cores  load ${load}`,
        );
        if (argv.includes('--threads')) {
          for (const [t, a] of th1) {
            const b = th0.get(t) ?? [0, 0, 0, 0, 0, 0];
            const d = a.map((x, i) => x - b[i]);
            if (d[0] < 0.1) continue;
            log(
              `   tid ${t}: cpu ${d[0].toFixed(2)} s, minflt ${d[1]}, ctxsw ${d[2]} voluntary ${d[3]} involuntary, ` +
                `syscr ${d[4]}, syscw ${d[5]}`,
            );
          }
        }
        let list = res.get(v.name);
        if (list === undefined) res.set(v.name, (list = []));
        list.push({ gbps, perGB });
      }
    }
    for (const [n, a] of res) {
      const g = median(a.map((x) => x.gbps));
      const c = median(a.map((x) => x.perGB));
      log(`${n}: median ${g.toFixed(2)} Gbit/s, ${c.toFixed(3)} CPU-s/GB over ${a.length} runs`);
    }
  } finally {
    await lab.destroyAsync();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.getuid?.() !== 0) {
    console.error('live-ab: needs root (network namespaces, TAP devices)');
    process.exit(1);
  }
  await runLiveAb(process.argv.slice(2), (s) => console.log(s));
}
