// Live dataplane benchmark (root only; not a test): real traffic between workload namespaces, once
// through calitap daemons (src/lab/lab.ts: TAP workloads, packet-socket uplink, `--workers 2`, default
// flags: offloads on) and once through the Linux kernel doing Calico's data path
// (bench/live-kernel.ts: veth + proxy ARP + /32 routes, direct routing between hosts). The loads and
// how they are measured: live-measure.ts (TCP 1 and 4 streams, UDP 64 B, 60 B frames, ping cold /
// warm / idle, CPU). The report: live-report.ts (side-by-side tables, then the ratio table of issue 9).
// Scenarios (`--only a,b` runs a subset; names in brackets):
//   - kernel: same host and cross host (direct routing: this machine has no ipip/vxlan modules) [kernel]
//   - kernel, MTU-sized underlay: cross host direct with TSO off on the hosts' uplinks and GRO on
//     (bench/live-kernel.ts mtuUnderlay): the kernel when the underlay carries no super-frames, as
//     with IPIP/VXLAN from userspace [kernel-mtu]
//   - the floor of a TAP dataplane: a C forwarder doing one read and one write per frame and nothing
//     else (bench/live-floor.ts, bench/floor/tapfwd.c), same host, cross host direct and cross host
//     through IPIP (segmentation and GRO in C) [floor]
//   - calitap, default flags: IPIP Always same host and cross host [ipip], Never cross host [never],
//     VXLAN Always cross host [vxlan] (VXLAN leaves through the packet uplink, segmented natively)
//   - calitap `--uplink udp`, VXLAN Always cross host [vxlan-udp]: the other VXLAN send path that
//     exists, UDP GSO sends on kernel UDP sockets. Tunnel-GSO writes of VXLAN super-frames to a host
//     TAP are not a mode of the daemon (only the primitive exists, docs/live.md), so not measured;
//   - calitap with busy polling (CALITAP_BUSY_POLL_US=200, experimental), IPIP same and cross host
//     [busy-poll]: the worker polls for 200 µs after traffic before sleeping in epoll;
//   - calitap `--no-offload` (plain TAPs): IPIP same and cross host [no-offload-ipip], Never cross
//     host [no-offload-never], for comparison.
// Each load runs twice (once with --quick, 2-s runs instead of 5) and the table shows the better run:
// the machine has 2 vCPUs shared by generator, receiver and dataplane (and by whoever else uses it).
// Every external command runs with a timeout; namespaces and processes are removed on every exit path.
// Run: `npm run bench:live` or `node dist/bench/live.bench.js [--quick] [--json] [--only ipip,kernel]
// [--uplink-gro]` (--uplink-gro: GRO on the calitap hosts' uplinks, docs/live.md "GRO on the uplink").
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { Lab, type LabMode } from '../src/lab/lab.js';
import { floorRuns } from './live-floor.js';
import { KernelLab } from './live-kernel.js';
import { measure, sleep, sysCpu, type LiveBenchReport, type LiveResult } from './live-measure.js';
import { formatLiveReport } from './live-report.js';

// re-exported for scripts that imported the helpers from here (they live in live-measure.ts now)
export { generate, iperfServer, nsRun, ping, stopChild, tcpGbps } from './live-measure.js';
export type { LiveBenchReport, LiveResult } from './live-measure.js';
export { formatLiveReport } from './live-report.js';

// ---------------------------------------------------------------------------------------------------
// Topologies

/** Every namespace-owning object alive right now, for the signal handlers. */
const live = new Set<{ destroy(): void }>();

async function kernelRuns(
  prefix: string,
  seconds: number,
  reps: number,
  log: (s: string) => void,
  mtuUnderlay = false,
): Promise<LiveResult[]> {
  const lab = KernelLab.create(prefix, 2, mtuUnderlay);
  live.add(lab);
  try {
    const w1 = lab.addWorkload(1);
    const w2 = lab.addWorkload(1);
    const w3 = lab.addWorkload(2);
    const out: LiveResult[] = [];
    if (!mtuUnderlay) {
      out.push(
        await measure(
          { key: 'kernel-same', scenario: 'same-host', dataplane: 'kernel', path: 'veth + proxy ARP' },
          { client: w1.ns, server: w2, pids: [] },
          seconds,
          reps,
          log,
        ),
      );
    }
    out.push(
      await measure(
        {
          key: mtuUnderlay ? 'kernel-mtu-cross' : 'kernel-cross',
          scenario: 'cross-host',
          dataplane: 'kernel',
          path: mtuUnderlay ? 'Never, MTU-sized underlay (up0 TSO off, GRO on)' : 'Never (direct routing)',
        },
        { client: w1.ns, server: w3, pids: [] },
        seconds,
        reps,
        log,
      ),
    );
    return out;
  } finally {
    lab.destroy();
    live.delete(lab);
  }
}

/** A calitap scenario: the pool's mode, extra daemon flags, and the columns' key and label. */
export interface CalitapScenario {
  /** --only name */
  name: string;
  /** key prefix of its columns (`<key>-same`, `<key>-cross`) */
  key: string;
  mode: LabMode;
  sameHost: boolean;
  /** extra `calitap run` flags (none: the defaults) */
  args?: string[];
  uplink?: 'packet' | 'udp';
  /** extra environment for the daemons */
  env?: Record<string, string>;
  /** column label (after "calitap: ") */
  label: string;
}

const MODE_LABEL: Record<LabMode, string> = {
  ipip: 'IPIP Always',
  vxlan: 'VXLAN Always',
  never: 'Never (direct routing)',
  'ipip-crosssubnet': 'IPIP CrossSubnet',
  'vxlan-crosssubnet': 'VXLAN CrossSubnet',
};

export const SCENARIOS: CalitapScenario[] = [
  { name: 'ipip', key: 'ipip', mode: 'ipip', sameHost: true, label: 'default' },
  { name: 'never', key: 'never', mode: 'never', sameHost: false, label: 'default' },
  { name: 'vxlan', key: 'vxlan', mode: 'vxlan', sameHost: false, label: 'default' },
  {
    name: 'vxlan-udp',
    key: 'vxlan-udp',
    mode: 'vxlan',
    sameHost: false,
    uplink: 'udp',
    label: '--uplink udp (UDP GSO)',
  },
  {
    name: 'busy-poll',
    key: 'busy-poll-ipip',
    mode: 'ipip',
    sameHost: true,
    env: { CALITAP_BUSY_POLL_US: '200' },
    label: 'CALITAP_BUSY_POLL_US=200',
  },
  {
    name: 'no-offload-ipip',
    key: 'no-offload-ipip',
    mode: 'ipip',
    sameHost: true,
    args: ['--no-offload'],
    label: '--no-offload',
  },
  {
    name: 'no-offload-never',
    key: 'no-offload-never',
    mode: 'never',
    sameHost: false,
    args: ['--no-offload'],
    label: '--no-offload',
  },
];

/** --uplink-gro: GRO on the calitap hosts' uplinks (Lab uplinkGro) */
const UPLINK_GRO = process.argv.includes('--uplink-gro');

async function calitapRuns(
  prefix: string,
  sc: CalitapScenario,
  seconds: number,
  reps: number,
  log: (s: string) => void,
): Promise<LiveResult[]> {
  const lab = Lab.create({
    prefix,
    mode: sc.mode,
    hosts: 2,
    workers: 2,
    daemonArgs: sc.args ?? [],
    daemonEnv: sc.env,
    uplink: sc.uplink,
    uplinkGro: UPLINK_GRO,
  });
  live.add(lab);
  try {
    await lab.start(1);
    await lab.start(2);
    const pid = (k: number): number => lab.hosts[k - 1].daemon!.pid!;
    const w1 = await lab.addWorkload(1);
    const w2 = sc.sameHost ? await lab.addWorkload(1) : null;
    const w3 = await lab.addWorkload(2);
    const out: LiveResult[] = [];
    if (w2) {
      out.push(
        await measure(
          {
            key: `${sc.key}-same`,
            scenario: 'same-host',
            dataplane: 'calitap',
            path: `TAP, workers 2, ${sc.label}`,
          },
          { client: w1.ns, server: w2, pids: [pid(1)] },
          seconds,
          reps,
          log,
        ),
      );
    }
    out.push(
      await measure(
        {
          key: `${sc.key}-cross`,
          scenario: 'cross-host',
          dataplane: 'calitap',
          path: `${MODE_LABEL[sc.mode]}, ${sc.label}`,
        },
        { client: w1.ns, server: w3, pids: [pid(1), pid(2)] },
        seconds,
        reps,
        log,
      ),
    );
    return out;
  } finally {
    await lab.destroyAsync();
    live.delete(lab);
  }
}

// ---------------------------------------------------------------------------------------------------

export async function runLiveBench(
  opts: { quick?: boolean; only?: string[]; log?: (s: string) => void } = {},
): Promise<LiveBenchReport> {
  const log = opts.log ?? ((s: string) => console.error(s));
  if (process.getuid?.() !== 0) throw new Error('live.bench needs root (network namespaces, TAP devices)');
  for (const tool of ['iperf3', 'ping', 'ip']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0)
      throw new Error(`live.bench needs ${tool}`);
  }
  const names = ['kernel', 'kernel-mtu', 'floor', ...SCENARIOS.map((s) => s.name)];
  const only = opts.only ?? names;
  for (const n of only) {
    if (!names.includes(n)) throw new Error(`live.bench: --only ${n}: not one of ${names.join(', ')}`);
  }
  const seconds = opts.quick ? 2 : 5;
  const reps = opts.quick ? 1 : 2;
  const tag = String(process.pid % 1e4);
  const onSignal = (sig: NodeJS.Signals): void => {
    for (const x of live) x.destroy();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const results: LiveResult[] = [];
  const b0 = sysCpu();
  await sleep(1000);
  const background = sysCpu().busy - b0.busy;
  log(`live.bench: machine busy before start: ${background.toFixed(2)} cores`);
  try {
    if (only.includes('kernel')) {
      log(`live.bench: kernel reference (${seconds}-s runs)`);
      results.push(...(await kernelRuns(`lk${tag}`, seconds, reps, log)));
    }
    if (only.includes('kernel-mtu')) {
      log(`live.bench: kernel, MTU-sized underlay (${seconds}-s runs)`);
      results.push(...(await kernelRuns(`lm${tag}`, seconds, reps, log, true)));
    }
    if (only.includes('floor')) {
      log(`live.bench: TAP floor (bench/floor/tapfwd.c)`);
      results.push(...(await floorRuns(`lf${tag}`, seconds, reps, log, live)));
    }
    let k = 0;
    for (const sc of SCENARIOS) {
      k++;
      if (!only.includes(sc.name)) continue;
      log(`live.bench: calitap ${MODE_LABEL[sc.mode]}, ${sc.label}`);
      results.push(...(await calitapRuns(`l${k}${tag}`, sc, seconds, reps, log)));
    }
  } finally {
    for (const x of live) x.destroy();
    live.clear();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  return {
    seconds,
    reps,
    background,
    results,
    notes: [
      'kernel cross-host uses direct routing (Calico ipipMode/vxlanMode Never): this machine has no ipip/vxlan kernel modules',
      'calitap "default": `calitap run` without options (offloads on, packet uplink); VXLAN over the packet uplink is segmented natively (segmentTcp4) and sent with sendmmsg; `--uplink udp` sends it as UDP GSO on kernel UDP sockets; tunnel-GSO writes to a host TAP are not a daemon mode (not measured)',
      'UDP: iperf3 -u -l 64 -b 0, one flow (64-byte payload = 106-byte Ethernet frames); delivered = what the receiving iperf3 counted',
      'gen: bench/live-gen.js in the client namespace, AF_PACKET sendmmsg of 60-byte frames (64 B on the wire) over 64 UDP flows, as fast as eth0 takes them; delivered = rx_packets of the server eth0',
      'ping: cold = 50 × 10 ms right after the daemons start (V8 has not compiled the forwarding code yet); warm (the ratio table) = 200 × 10 ms after the loads; idle = 10 × 200 ms after the loads',
      'CPU in cores: calitap = daemon(s) utime+stime (all threads, incl. their syscalls); kernel = /proc/stat system+softirq (incl. iperf3 system time); machine = all non-idle',
    ],
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const t0 = Date.now();
  try {
    const i = process.argv.indexOf('--only');
    const only = i > 0 ? (process.argv[i + 1] ?? '').split(',').filter((x) => x !== '') : undefined;
    const rep = await runLiveBench({ quick: process.argv.includes('--quick'), only });
    if (process.argv.includes('--json')) console.log(JSON.stringify(rep, null, 2));
    else console.log(formatLiveReport(rep));
    console.error(`live.bench: done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  } catch (e) {
    console.error(`live.bench: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}
