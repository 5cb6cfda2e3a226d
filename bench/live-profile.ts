// Where a calitap daemon's time goes under live load (root only; not a test). Builds a lab (2 hosts,
// `--workers 2`, IPIP pool), starts the daemons with `--cpu-prof --perf-basic-prof` (through
// NODE_OPTIONS, so the lab's own command line is otherwise unchanged), drives one load for `--seconds`,
// and reports for host 1's daemon (and host 2's for cross-host loads):
//   - per thread: user vs system CPU from /proc/<pid>/task/<tid>/stat (system = the TAP / packet
//     socket syscalls and the kernel work done inside them), and ns of each per forwarded packet;
//   - `perf record -g` (cpu-clock) over the daemon: samples by object (kernel, JIT'd JS, node, addon)
//     and the top kernel and JS symbols;
//   - the V8 CPU profiles of the worker threads: self time by JS function.
// The daemons are started by hand with the lab's command line plus the profiling flags (--cpu-prof is
// not allowed in NODE_OPTIONS); the lab still tracks them (LabHost.daemon) and stops them by pid.
// Loads: gen-same / gen-cross (live-gen 60-byte frames, 64 flows), tcp-same / tcp-cross (iperf3, 1
// stream), udp-same (iperf3 -u -l 64 -b 0), ping-same / ping-cross (ping -i 0.01 for the duration).
// Run: `node dist/bench/live-profile.js --load gen-same [--seconds 5] [--keep DIR]`.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Lab, REPO } from '../src/lab/lab.js';
import { generate, iperfServer, nsRun, ping, stopChild, tcpGbps } from './live-measure.js';

const CLK_TCK = 100;

interface ThreadCpu {
  tid: number;
  comm: string;
  user: number;
  sys: number;
}

function threads(pid: number): Map<number, ThreadCpu> {
  const m = new Map<number, ThreadCpu>();
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const comm = s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'));
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      m.set(Number(t), { tid: Number(t), comm, user: Number(f[11]) / CLK_TCK, sys: Number(f[12]) / CLK_TCK });
    } catch {
      /* thread gone */
    }
  }
  return m;
}

function threadDelta(a: Map<number, ThreadCpu>, b: Map<number, ThreadCpu>): ThreadCpu[] {
  const out: ThreadCpu[] = [];
  for (const [tid, t] of b) {
    const t0 = a.get(tid);
    out.push({ tid, comm: t.comm, user: t.user - (t0?.user ?? 0), sys: t.sys - (t0?.sys ?? 0) });
  }
  return out.filter((t) => t.user + t.sys > 0).sort((x, y) => y.user + y.sys - (x.user + x.sys));
}

interface Stats {
  ports: { port: string; rxPackets: number; txPackets: number }[];
}

const portSum = (s: Stats, k: 'rxPackets' | 'txPackets'): number => s.ports.reduce((a, p) => a + p[k], 0);

// ---------------------------------------------------------------------------------------------------
// V8 .cpuprofile: self time per function

interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function selfTimes(file: string, top: number): string[] {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const n = byId.get(p.samples[i])!;
    const dt = p.timeDeltas[i] ?? 0;
    const f = n.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url ? `${path.basename(f.url)}:${f.lineNumber + 1}` : ''}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  }
  let idle = 0;
  for (const [k, v] of self) if (k.startsWith('(idle)') || k.startsWith('epollWait')) idle += v;
  const busy = total - idle;
  const rows = [...self.entries()]
    .filter(([k]) => !k.startsWith('(idle)') && !k.startsWith('epollWait'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top);
  return [
    `${path.basename(file)}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s not blocked in epollWait/idle:`,
    ...rows.map(
      ([k, v]) =>
        `    ${((100 * v) / Math.max(1, busy)).toFixed(1).padStart(5)} % of busy  ${(v / 1e3).toFixed(0).padStart(6)} ms  ${k}`,
    ),
  ];
}

// ---------------------------------------------------------------------------------------------------
// perf

function perfSummary(data: string, pid: number): string[] {
  const r = spawnSync('perf', ['report', '-i', data, '--stdio', '--no-children', '--sort', 'dso', '-q'], {
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 64 << 20,
  });
  const bySym = spawnSync(
    'perf',
    ['report', '-i', data, '--stdio', '--no-children', '--sort', 'dso,sym', '-q', '-g', 'none'],
    { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 },
  );
  const clean = (s: string): string[] =>
    s
      .split('\n')
      .filter((l) => /^\s*[\d.]+%/.test(l))
      .map((l) => '    ' + l.trim().replace(`perf-${pid}.map`, 'JIT (JS)'));
  return [
    '  by object:',
    ...clean(r.stdout).slice(0, 8),
    '  top symbols:',
    ...clean(bySym.stdout).slice(0, 30),
  ];
}

// ---------------------------------------------------------------------------------------------------

const CLI = path.join(REPO, 'bin', 'calitap.js');

/** `calitap run` in host k's namespace, as Lab.start runs it, plus the profilers; returns its pid. */
async function startProfiled(lab: Lab, k: number, profDir: string): Promise<number> {
  const h = lab.hosts[k - 1];
  const log = fs.openSync(h.log, 'a');
  const args = ['netns', 'exec', h.ns, process.execPath, '--cpu-prof', '--cpu-prof-dir', profDir];
  args.push('--perf-basic-prof', CLI, 'run', '--config', lab.config, '--node', h.node, '--socket', h.socket);
  args.push('--state', h.state, '--workers', String(lab.o.workers ?? 1), '--no-bgp');
  const d = spawn('ip', args, { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  h.daemon = d; // lab.stop()/destroy() now stop it by pid like the daemons it starts itself
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await lab.api(k, 'status');
      return d.pid!;
    } catch {
      if (d.exitCode !== null || Date.now() > deadline)
        throw new Error(
          `calitap on ${h.node} did not start:\n${fs.readFileSync(h.log, 'utf8').slice(-2000)}`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

type Load = 'gen-same' | 'gen-cross' | 'tcp-same' | 'tcp-cross' | 'udp-same' | 'ping-same' | 'ping-cross';

export async function runLiveProfile(load: Load, seconds: number, keep?: string): Promise<string[]> {
  const out: string[] = [];
  const dir = keep ?? fs.mkdtempSync(path.join(os.tmpdir(), 'calitap-prof-'));
  if (keep) fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const cross = load.endsWith('-cross');
  const lab = Lab.create({ prefix: `lp${process.pid % 1e4}`, mode: 'ipip', hosts: 2, workers: 2 });
  const onSignal = (): void => {
    lab.destroy();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  const started: number[] = [];
  try {
    for (const k of [1, 2]) {
      const prof = path.join(dir, `h${k}`);
      fs.mkdirSync(prof, { recursive: true });
      started.push(await startProfiled(lab, k, prof));
    }
    const w1 = await lab.addWorkload(1);
    const dst = cross ? await lab.addWorkload(2) : await lab.addWorkload(1);
    ping(w1.ns, dst.ip);
    const hostsOfInterest = cross ? [1, 2] : [1];
    const pids = hostsOfInterest.map((k) => lab.hosts[k - 1].daemon!.pid!);
    const srv = load.startsWith('tcp') || load.startsWith('udp') ? iperfServer(dst.ns) : null;
    await new Promise((r) => setTimeout(r, 300));
    const perfs = pids.map((pid) =>
      spawn(
        'perf',
        [
          'record',
          '-F',
          '1999',
          '-g',
          '-p',
          String(pid),
          '-o',
          path.join(dir, `perf-${pid}.data`),
          '--',
          'sleep',
          String(Math.max(1, seconds - 1)),
        ],
        { stdio: 'ignore' },
      ),
    );
    await new Promise((r) => setTimeout(r, 300));
    const s0 = await Promise.all(hostsOfInterest.map((k) => lab.api(k, 'stats') as Promise<Stats>));
    const t0 = pids.map(threads);
    const w0 = performance.now();
    let result = '';
    if (load.startsWith('gen')) {
      const g = await generate(w1.ns, dst, seconds);
      result = `gen: offered ${(g.tx / 1e3).toFixed(0)} kpps, delivered ${(g.rx / 1e3).toFixed(0)} kpps, dropped at the sender's TAP ${(g.txDrop / 1e3).toFixed(0)} kpps`;
    } else if (load.startsWith('tcp')) {
      result = `iperf3 TCP 1 stream: ${tcpGbps(w1.ns, dst.ip, 1, seconds).toFixed(2)} Gbit/s`;
    } else if (load === 'udp-same') {
      const o = nsRun(
        w1.ns,
        ['iperf3', '-c', dst.ip, '-u', '-l', '64', '-b', '0', '-t', String(seconds)],
        (seconds + 15) * 1000,
      );
      result = o.trim().split('\n').slice(-4).join('\n');
    } else {
      const o = nsRun(
        w1.ns,
        ['ping', '-q', '-c', String(seconds * 100), '-i', '0.01', dst.ip],
        (seconds + 15) * 1000,
      );
      result = o.trim().split('\n').slice(-2).join(' ');
    }
    const wall = (performance.now() - w0) / 1000;
    const t1 = pids.map(threads);
    const s1 = await Promise.all(hostsOfInterest.map((k) => lab.api(k, 'stats') as Promise<Stats>));
    await Promise.all(perfs.map((p) => new Promise((r) => (p.exitCode !== null ? r(0) : p.once('exit', r)))));
    if (srv) await stopChild(srv);
    out.push(`load ${load}, ${seconds} s (${wall.toFixed(1)} s wall): ${result}`);
    for (let i = 0; i < pids.length; i++) {
      const rx = portSum(s1[i], 'rxPackets') - portSum(s0[i], 'rxPackets');
      const tx = portSum(s1[i], 'txPackets') - portSum(s0[i], 'txPackets');
      const d = threadDelta(t0[i], t1[i]);
      const user = d.reduce((a, t) => a + t.user, 0);
      const sys = d.reduce((a, t) => a + t.sys, 0);
      out.push(
        `host ${hostsOfInterest[i]} daemon pid ${pids[i]}: rx ${(rx / wall / 1e3).toFixed(0)} kpps, tx ${(tx / wall / 1e3).toFixed(0)} kpps; ` +
          `CPU ${(user / wall).toFixed(2)} user + ${(sys / wall).toFixed(2)} sys cores; ` +
          `per packet read: ${((user / Math.max(1, rx)) * 1e9).toFixed(0)} ns user + ${((sys / Math.max(1, rx)) * 1e9).toFixed(0)} ns sys`,
      );
      for (const t of d.slice(0, 5)) {
        out.push(
          `  thread ${t.tid} (${t.comm}): ${(t.user / wall).toFixed(2)} user + ${(t.sys / wall).toFixed(2)} sys cores`,
        );
      }
      out.push(...perfSummary(path.join(dir, `perf-${pids[i]}.data`), pids[i]));
    }
    for (const k of hostsOfInterest) await lab.stop(k, 'SIGTERM'); // writes the .cpuprofile files
    for (const k of hostsOfInterest) {
      const files = fs
        .readdirSync(path.join(dir, `h${k}`))
        .filter((f) => f.endsWith('.cpuprofile'))
        .map((f) => path.join(dir, `h${k}`, f));
      for (const f of files) out.push(...selfTimes(f, 18).map((l) => `  h${k} ${l}`));
    }
  } finally {
    await lab.destroyAsync();
    process.removeListener('SIGINT', onSignal);
    if (!keep) fs.rmSync(dir, { recursive: true, force: true });
    // the JIT symbol maps --perf-basic-prof made for our daemons (only theirs: by pid)
    for (const pid of started) fs.rmSync(`/tmp/perf-${pid}.map`, { force: true });
  }
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (n: string, d: string): string => {
    const i = process.argv.indexOf(n);
    return i > 0 ? process.argv[i + 1] : d;
  };
  const lines = await runLiveProfile(
    arg('--load', 'gen-same') as Load,
    Number(arg('--seconds', '5')),
    process.argv.includes('--keep') ? arg('--keep', '') : undefined,
  );
  console.log(lines.join('\n'));
}
