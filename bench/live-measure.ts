// The measurements of the live benchmark (live.bench.ts; live-profile.ts uses them too): iperf3 TCP
// and UDP, live-gen small frames, ping, and the CPU used meanwhile, between two workload namespaces
// whatever carries the traffic (calitap daemons or the kernel). Each load is bounded by a timeout.
//   - iperf3 TCP, 1 stream and 4 streams (`iperf3 -c -t T -J`, receiver Gbit/s);
//   - iperf3 UDP, 64-byte payloads (106-byte frames) at `-b 0`: packets/s the receiving iperf3 got
//     (sender's rate alongside, so loss is visible);
//   - live-gen: 60-byte frames from an AF_PACKET generator in the client, counted at the server's eth0;
//   - ping, three ways: cold (50 at -i 0.01 right after the daemons start, before any load: V8 has
//     not compiled the forwarding code yet), warm (200 at -i 0.01 after the loads: the ratio table's
//     figure, a daemon that has carried traffic) and idle (10 at -i 0.2: the worker sleeps in epoll
//     between pings);
//   - CPU over each iperf3 run, in cores (CPU-seconds / wall-second): for calitap, utime+stime of the
//     daemon process(es) from /proc/<pid>/stat (all threads: control + workers, including the kernel
//     work done inside their TAP/packet-socket syscalls); for the kernel, system+softirq from /proc/stat
//     (it includes the iperf3 processes' own system time: the kernel has no forwarding process to
//     charge). The whole machine's busy CPU is printed too.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface CpuUse {
  /** calitap: daemon(s) utime+stime; kernel: /proc/stat system+softirq — in cores */
  dataplane: number;
  /** whole machine: every non-idle CPU-second per second (of os.availableParallelism() cores) */
  machine: number;
}

export interface LiveResult {
  /** which column this is (live.bench's ratio table finds its figures by key) */
  key: string;
  scenario: string;
  /** floor: bench/floor/tapfwd.c, the least a TAP dataplane does (live-floor.ts) */
  dataplane: 'kernel' | 'calitap' | 'floor';
  path: string;
  /** Gbit/s at the receiver */
  tcp1: number | null;
  tcp4: number | null;
  /** UDP 64-byte: packets/s the receiving iperf3 counted, and what the sender sent */
  udpRxPps: number | null;
  udpTxPps: number | null;
  /** live-gen: 60-byte frames from an AF_PACKET generator in the client, counted at the server's eth0 */
  genRxPps: number | null;
  genTxPps: number | null;
  /** frames the client's eth0 dropped on transmit (TAP: calitap did not read them in time) */
  genTxDropPps: number | null;
  /** ms, warm: 200 pings at -i 0.01 after the loads */
  pingAvg: number | null;
  pingMin: number | null;
  pingMax: number | null;
  pingLoss: number | null;
  /** ms, cold: 50 pings at -i 0.01 before any load (right after the daemons started) */
  pingColdAvg: number | null;
  /** ms, idle: 10 pings at -i 0.2 after the loads (the worker sleeps in epoll between them) */
  pingIdleAvg: number | null;
  cpuTcp1: CpuUse | null;
  cpuTcp4: CpuUse | null;
  cpuUdp: CpuUse | null;
  cpuGen: CpuUse | null;
  /** every run, in order (the fields above keep the best) */
  runs: string[];
  errors: string[];
}

export interface LiveBenchReport {
  seconds: number;
  /** runs per load (the table shows the best) */
  reps: number;
  /** cores busy on the machine during 1 s before the bench started (other users of the machine) */
  background: number;
  results: LiveResult[];
  notes: string[];
}

const CLK_TCK = 100; // getconf CLK_TCK on Linux x86-64

/** utime+stime of a process (all its threads), in seconds. */
function procCpu(pid: number): number {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

export interface SysCpu {
  sysSoftirq: number;
  busy: number;
}

export function sysCpu(): SysCpu {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice (guest time is inside user)
  const total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
  return { sysSoftirq: (v[2] + v[6]) / CLK_TCK, busy: (total - v[3] - v[4]) / CLK_TCK };
}

/** Measures CPU over fn(): daemon pids when given (calitap), else the kernel's system+softirq. */
function withCpu<T>(pids: number[], fn: () => T): { value: T; cpu: CpuUse } {
  const t0 = performance.now();
  const s0 = sysCpu();
  const p0 = pids.map(procCpu);
  const value = fn();
  const p1 = pids.map(procCpu);
  const s1 = sysCpu();
  const wall = (performance.now() - t0) / 1000;
  const dp = pids.length > 0 ? p1.reduce((a, x, i) => a + x - p0[i], 0) : s1.sysSoftirq - s0.sysSoftirq;
  return { value, cpu: { dataplane: dp / wall, machine: (s1.busy - s0.busy) / wall } };
}

/** Runs argv inside a namespace, bounded by timeoutMs (SIGKILL). Returns stdout; throws on failure. */
export function nsRun(ns: string, argv: string[], timeoutMs: number): string {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...argv], {
    encoding: 'utf8',
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    maxBuffer: 64 << 20,
  });
  if (r.error) throw new Error(`${argv[0]} in ${ns}: ${r.error.message}`);
  if (r.status !== 0) {
    const msg = (r.stderr || r.stdout || '').trim().split('\n').slice(-3).join(' ');
    throw new Error(`${argv.join(' ')} in ${ns}: exit ${r.status ?? r.signal}: ${msg}`);
  }
  return r.stdout;
}

interface IperfSum {
  bits_per_second: number;
  seconds: number;
  /** UDP only */
  packets: number;
  lost_packets: number;
}

interface IperfJson {
  error?: string;
  end?: {
    sum_received?: IperfSum;
    sum_sent?: IperfSum;
  };
}

function iperf(ns: string, args: string[], seconds: number): IperfJson {
  let out = '';
  try {
    out = nsRun(
      ns,
      ['iperf3', ...args, '-t', String(seconds), '-J', '--connect-timeout', '3000'],
      (seconds + 15) * 1000,
    );
  } catch (e) {
    // iperf3 -J prints its JSON (with "error") and exits non-zero when it fails
    const m = /\{[\s\S]*\}/.exec((e as Error).message);
    throw new Error(m ? (JSON.parse(m[0]) as IperfJson).error : (e as Error).message);
  }
  const j = JSON.parse(out) as IperfJson;
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  return j;
}

export function tcpGbps(ns: string, dst: string, streams: number, seconds: number): number {
  const j = iperf(ns, ['-c', dst, '-P', String(streams)], seconds);
  return j.end!.sum_received!.bits_per_second / 1e9;
}

/** UDP flood with 64-byte payloads; delivered = what the receiving iperf3 counted (sum_received). */
function udpPps(ns: string, dst: string, seconds: number): { rx: number; tx: number } {
  const j = iperf(ns, ['-c', dst, '-u', '-l', '64', '-b', '0'], seconds);
  const sent = j.end?.sum_sent;
  const got = j.end?.sum_received;
  if (!sent || !got) throw new Error('iperf3: no sum_sent/sum_received in the UDP report');
  return { rx: (got.packets - got.lost_packets) / got.seconds, tx: sent.packets / sent.seconds };
}

interface LinkStats {
  rx: { packets: number };
  tx: { packets: number; dropped: number };
}

function eth0Stats(ns: string): LinkStats {
  const j = JSON.parse(nsRun(ns, ['ip', '-j', '-s', 'link', 'show', 'eth0'], 5000)) as {
    stats64: LinkStats;
  }[];
  return j[0].stats64;
}

const GEN = fileURLToPath(new URL('./live-gen.js', import.meta.url));

/**
 * 60-byte frames from live-gen (AF_PACKET, sendmmsg) in the client's namespace for `seconds`, 64 flows:
 * what the kernel accepted on the client's eth0, what it dropped there, what arrived at the server's eth0.
 */
export async function generate(
  client: string,
  server: { ns: string; ip: string },
  seconds: number,
  timed: <T>(f: () => T) => T = (f) => f(),
): Promise<{ rx: number; tx: number; txDrop: number }> {
  const neigh = JSON.parse(
    nsRun(client, ['ip', '-j', 'neigh', 'show', '169.254.1.1', 'dev', 'eth0'], 5000),
  ) as { lladdr?: string }[];
  const gw = neigh[0]?.lladdr;
  if (!gw) throw new Error('no neighbour entry for 169.254.1.1 (ping first)');
  const src = JSON.parse(nsRun(client, ['ip', '-j', '-4', 'addr', 'show', 'eth0'], 5000)) as {
    addr_info: { local: string }[];
  }[];
  // the receiver drops them at a never-read UDP socket on port 9
  const args = [
    'netns',
    'exec',
    server.ns,
    process.execPath,
    GEN,
    '--sink',
    '9',
    '--seconds',
    String(seconds + 10),
  ];
  const sink = spawn('ip', args, { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const ready = await Promise.race([
      new Promise<boolean>((r) => sink.stdout!.once('data', () => r(true))),
      new Promise<boolean>((r) => sink.once('exit', () => r(false))),
      sleep(5000).then(() => false),
    ]);
    if (!ready) throw new Error('live-gen --sink did not start');
    return timed(() => generateInner(client, server, seconds, gw, src[0].addr_info[0].local));
  } finally {
    await stopChild(sink);
  }
}

function generateInner(
  client: string,
  server: { ns: string; ip: string },
  seconds: number,
  gw: string,
  srcIp: string,
): { rx: number; tx: number; txDrop: number } {
  const c0 = eth0Stats(client);
  const s0 = eth0Stats(server.ns);
  const out = nsRun(
    client,
    [
      process.execPath,
      GEN,
      '--src',
      srcIp,
      '--dst',
      server.ip,
      '--dst-mac',
      gw,
      '--seconds',
      String(seconds),
      '--flows',
      '64',
    ],
    (seconds + 15) * 1000,
  );
  const g = JSON.parse(out) as { offered: number; refused: number; seconds: number };
  spawnSync('sleep', ['0.2']); // let queued frames drain
  const c1 = eth0Stats(client);
  const s1 = eth0Stats(server.ns);
  return {
    rx: (s1.rx.packets - s0.rx.packets) / g.seconds,
    tx: g.offered / g.seconds,
    txDrop: (c1.tx.dropped - c0.tx.dropped) / g.seconds,
  };
}

export interface PingStats {
  avg: number;
  min: number;
  max: number;
  loss: number;
}

/** `count` pings every `interval` seconds (after one that resolves ARP on every hop); RTT in ms. */
export function ping(ns: string, dst: string, count = 50, interval = 0.01): PingStats {
  spawnSync('ip', ['netns', 'exec', ns, 'ping', '-q', '-c', '1', '-W', '1', dst], { timeout: 5000 });
  const timeout = Math.ceil(count * interval * 1000) + 10_000;
  const args = ['ping', '-q', '-c', String(count), '-i', String(interval), '-W', '1', dst];
  const out = nsRun(ns, args, timeout);
  const loss = /([\d.]+)% packet loss/.exec(out);
  const rtt = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\//.exec(out);
  if (!rtt) throw new Error(`ping ${dst}: no replies`);
  return {
    min: Number(rtt[1]),
    avg: Number(rtt[2]),
    max: Number(rtt[3]),
    loss: loss ? Number(loss[1]) : NaN,
  };
}

/** `iperf3 -s` in a namespace, tracked by pid (ip netns exec execs iperf3 itself). */
export function iperfServer(ns: string): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, 'iperf3', '-s'], { stdio: 'ignore' });
}

export function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    c.once('exit', () => resolve());
    c.kill('SIGKILL');
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface Endpoints {
  client: string;
  server: { ns: string; ip: string };
  /** calitap daemon pids (empty: the kernel is the dataplane) */
  pids: number[];
}

/** A column with nothing measured yet (every figure null). */
export function emptyResult(base: Pick<LiveResult, 'key' | 'scenario' | 'dataplane' | 'path'>): LiveResult {
  return {
    ...base,
    tcp1: null,
    tcp4: null,
    udpRxPps: null,
    udpTxPps: null,
    genRxPps: null,
    genTxPps: null,
    genTxDropPps: null,
    pingAvg: null,
    pingMin: null,
    pingMax: null,
    pingLoss: null,
    pingColdAvg: null,
    pingIdleAvg: null,
    cpuTcp1: null,
    cpuTcp4: null,
    cpuUdp: null,
    cpuGen: null,
    runs: [],
    errors: [],
  };
}

export async function measure(
  base: Pick<LiveResult, 'key' | 'scenario' | 'dataplane' | 'path'>,
  ep: Endpoints,
  seconds: number,
  reps: number,
  log: (s: string) => void,
): Promise<LiveResult> {
  const r = emptyResult(base);
  const tag = `${base.dataplane} ${base.scenario} (${base.path})`;
  const attempt = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (e) {
      r.errors.push(`${what}: ${(e as Error).message}`);
      log(`  ${tag}: ${what} failed: ${(e as Error).message}`);
    }
  };
  const srv = iperfServer(ep.server.ns);
  try {
    // cold ping first, unloaded (it also resolves ARP on every hop before the floods)
    attempt('ping cold', () => {
      r.pingColdAvg = ping(ep.client, ep.server.ip, 50, 0.01).avg;
    });
    await sleep(200); // iperf3 -s listening
    // each load runs `reps` times; the table keeps the best run (with that run's CPU), all runs are logged
    for (let rep = 0; rep < reps; rep++) {
      attempt('tcp1', () => {
        const m = withCpu(ep.pids, () => tcpGbps(ep.client, ep.server.ip, 1, seconds));
        if (r.tcp1 === null || m.value > r.tcp1) [r.tcp1, r.cpuTcp1] = [m.value, m.cpu];
        r.runs.push(`tcp1 ${m.value.toFixed(2)} Gbit/s`);
      });
      attempt('tcp4', () => {
        const m = withCpu(ep.pids, () => tcpGbps(ep.client, ep.server.ip, 4, seconds));
        if (r.tcp4 === null || m.value > r.tcp4) [r.tcp4, r.cpuTcp4] = [m.value, m.cpu];
        r.runs.push(`tcp4 ${m.value.toFixed(2)} Gbit/s`);
      });
      attempt('udp64', () => {
        const m = withCpu(ep.pids, () => udpPps(ep.client, ep.server.ip, seconds));
        if (r.udpRxPps === null || m.value.rx > r.udpRxPps)
          [r.udpRxPps, r.udpTxPps, r.cpuUdp] = [m.value.rx, m.value.tx, m.cpu];
        r.runs.push(`udp64 ${(m.value.rx / 1e3).toFixed(0)} kpps`);
      });
      try {
        let cpu: CpuUse | null = null;
        const g = await generate(ep.client, ep.server, seconds, (f) => {
          const m = withCpu(ep.pids, f);
          cpu = m.cpu;
          return m.value;
        });
        if (r.genRxPps === null || g.rx > r.genRxPps)
          [r.genRxPps, r.genTxPps, r.genTxDropPps, r.cpuGen] = [g.rx, g.tx, g.txDrop, cpu];
        r.runs.push(`gen64 ${(g.rx / 1e3).toFixed(0)} kpps`);
      } catch (e) {
        r.errors.push(`gen64: ${(e as Error).message}`);
        log(`  ${tag}: gen64 failed: ${(e as Error).message}`);
      }
    }
    // warm and idle pings, after the loads (nothing else running)
    await sleep(500);
    attempt('ping', () => {
      const p = ping(ep.client, ep.server.ip, 200, 0.01);
      [r.pingAvg, r.pingMin, r.pingMax, r.pingLoss] = [p.avg, p.min, p.max, p.loss];
    });
    attempt('ping idle', () => {
      r.pingIdleAvg = ping(ep.client, ep.server.ip, 10, 0.2).avg;
    });
  } finally {
    await stopChild(srv);
  }
  log(
    `  ${tag}: tcp1 ${fmt(r.tcp1, 2)} Gbit/s, tcp4 ${fmt(r.tcp4, 2)} Gbit/s, ` +
      `udp64 ${fmt(r.udpRxPps === null ? null : r.udpRxPps / 1e3, 0)} kpps rx, ` +
      `gen64 ${fmt(r.genRxPps === null ? null : r.genRxPps / 1e3, 0)} kpps rx, ping ${fmt(r.pingAvg, 3)} ms` +
      ` (cold ${fmt(r.pingColdAvg, 3)}, idle ${fmt(r.pingIdleAvg, 3)})` +
      ` [runs: ${r.runs.join(', ')}]`,
  );
  return r;
}

export function fmt(v: number | null, digits: number): string {
  return v === null || !Number.isFinite(v) ? 'n/a' : v.toFixed(digits);
}
