// Live network-policy benchmark (root only; not a test): issue 11's "same-host TCP with a policy that
// allows it within 5 % of the same run without policy". One calitap daemon (src/lab/lab.ts, one host,
// `--workers 2`, file datastore) with two workloads in namespace `bench` (role=client, role=server);
// iperf3 TCP, one stream, client → server, receiver Gbit/s. The same daemon and workloads alternate
// between two configurations, rewritten in place (the daemon reloads the file; no restart):
//   off  no policy resource: the policy tables are published disabled (ip4-policy passes every packet
//        on one load), as a daemon without policy runs;
//   on   two NetworkPolicies that police the flow both ways: the client's egress allows TCP 5201 to
//        role == 'server', the server's ingress allows TCP 5201 from role == 'client' (everything else
//        to or from them is denied: checked with a ping that must fail while on).
// Rounds alternate the order (off, on / on, off) so drifting load hits both alike; the report gives
// every run, each mode's median and best, and on/off of the medians against the goal (≥ 0.95).
// Run: `npm run build && node dist/bench/policy-live.js [--quick] [--json]` (quick: 2 rounds of 2-s
// runs; default: 8 rounds of 4-s runs). Namespaces, the daemon and iperf3 are removed on every exit.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { pathToFileURL } from 'node:url';
import { Lab, labConfig, isRoot, type LabOptions } from '../src/lab/lab.js';
import { Namespaces } from '../src/lab/netns.js';
import { iperfServer, nsRun, stopChild, tcpGbps } from './live.bench.js';

const POLICY = `
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: { name: server-in, namespace: bench }
spec:
  selector: role == 'server'
  types: [Ingress]
  ingress:
    - action: Allow
      protocol: TCP
      source: { selector: role == 'client' }
      destination: { ports: [5201] }
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: { name: client-out, namespace: bench }
spec:
  selector: role == 'client'
  types: [Egress]
  egress:
    - action: Allow
      protocol: TCP
      destination: { selector: role == 'server', ports: [5201] }
`;

export interface PolicyLiveRun {
  round: number;
  mode: 'off' | 'on';
  gbps: number;
  /** the daemon's CPU seconds (all threads) per GB received by iperf3 in this run */
  cpuPerGB: number;
}

export interface PolicyLiveReport {
  date: string;
  load: number[];
  seconds: number;
  runs: PolicyLiveRun[];
  median: { off: number; on: number };
  best: { off: number; on: number };
  /** median on / median off */
  ratio: number;
  /** median CPU-s per GB of the daemon in each mode (less noisy than throughput on a shared machine) */
  cpuPerGB: { off: number; on: number };
  met: boolean;
}

/** utime + stime of a process (all its threads), seconds (USER_HZ 100). */
function cpuSeconds(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function pingOk(ns: string, dst: string): boolean {
  try {
    nsRun(ns, ['ping', '-n', '-c', '1', '-W', '1', dst], 5000);
    return true;
  } catch {
    return false;
  }
}

export async function runPolicyLive(o: { quick?: boolean } = {}): Promise<PolicyLiveReport> {
  if (!isRoot()) throw new Error('policy-live: needs root (network namespaces)');
  const rounds = o.quick ? 2 : 8;
  const seconds = o.quick ? 2 : 4;
  const opts: LabOptions = { prefix: `bp${process.pid % 1000}`, mode: 'vxlan', hosts: 1, workers: 2 };
  const lab = Lab.create(opts);
  const nss = new Namespaces(`bq${process.pid % 1000}`);
  let server: ReturnType<typeof iperfServer> | null = null;
  const cleanup = async (): Promise<void> => {
    if (server !== null) await stopChild(server);
    await lab.destroyAsync();
    nss.destroy();
  };
  const onSignal = (): void => {
    void cleanup().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await lab.start(1);
    const w: Record<'client' | 'server', { ns: string; ip: string }> = {} as never;
    for (const role of ['server', 'client'] as const) {
      const ns = nss.add(role);
      const r = (await lab.api(1, 'workload.add', {
        name: role,
        netns: ns,
        namespace: 'bench',
        labels: [`role=${role}`],
      })) as { ip: string };
      w[role] = { ns, ip: r.ip };
    }
    server = iperfServer(w.server.ns);
    await sleep(300);
    let current: 'off' | 'on' | null = null;
    const setMode = async (mode: 'off' | 'on'): Promise<void> => {
      if (mode === current) return; // the same file again: nothing to reload
      current = mode;
      const before = fs.readFileSync(lab.hosts[0].log, 'utf8').split('config reloaded').length;
      // written whole then renamed (never a half-written file), and SIGHUP so the reload does not
      // depend on the file watcher's polling
      const tmp = `${lab.config}.tmp`;
      fs.writeFileSync(tmp, labConfig({ ...opts, extraYaml: mode === 'on' ? POLICY : undefined }));
      fs.renameSync(tmp, lab.config);
      lab.hosts[0].daemon?.kill('SIGHUP');
      const deadline = Date.now() + 20_000;
      while (fs.readFileSync(lab.hosts[0].log, 'utf8').split('config reloaded').length <= before) {
        if (Date.now() > deadline) {
          const tail = fs.readFileSync(lab.hosts[0].log, 'utf8').trim().split('\n').slice(-3).join('\n');
          throw new Error(`policy-live: the daemon did not reload (${mode}); its log ends:\n${tail}`);
        }
        await sleep(50);
      }
      // the policy really is what the mode says: ping (ICMP) is denied while on
      const ok = pingOk(w.client.ns, w.server.ip);
      if (ok !== (mode === 'off'))
        throw new Error(`policy-live: ping ${ok ? 'passed' : 'failed'} with policy ${mode}`);
    };
    // warm-up (ARP, JIT) with policy on, then off
    await setMode('on');
    tcpGbps(w.client.ns, w.server.ip, 1, 1);
    await setMode('off');
    tcpGbps(w.client.ns, w.server.ip, 1, 1);
    const runs: PolicyLiveRun[] = [];
    for (let r = 0; r < rounds; r++) {
      const order: ('off' | 'on')[] = r % 2 === 0 ? ['on', 'off'] : ['off', 'on'];
      for (const mode of order) {
        await setMode(mode);
        const pid = lab.hosts[0].daemon!.pid!;
        const c0 = cpuSeconds(pid);
        const gbps = tcpGbps(w.client.ns, w.server.ip, 1, seconds);
        const cpu = cpuSeconds(pid) - c0;
        runs.push({ round: r + 1, mode, gbps, cpuPerGB: cpu / ((gbps * seconds) / 8) });
      }
    }
    const of = (m: 'off' | 'on') => runs.filter((x) => x.mode === m).map((x) => x.gbps);
    const med = { off: median(of('off')), on: median(of('on')) };
    const best = { off: Math.max(...of('off')), on: Math.max(...of('on')) };
    const ratio = med.on / med.off;
    const cpuOf = (m: 'off' | 'on') => median(runs.filter((x) => x.mode === m).map((x) => x.cpuPerGB));
    return {
      date: new Date().toISOString(),
      load: os.loadavg(),
      seconds,
      runs,
      median: med,
      best,
      ratio,
      cpuPerGB: { off: cpuOf('off'), on: cpuOf('on') },
      met: ratio >= 0.95,
    };
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await cleanup();
  }
}

export function formatPolicyLive(r: PolicyLiveReport): string {
  return [
    `policy-live: same-host TCP, 1 stream, ${r.seconds}-s iperf3 runs, ${r.date}, load average ${r.load.map((x) => x.toFixed(2)).join(' ')} at the end`,
    ...r.runs.map(
      (x) =>
        `  round ${x.round}  policy ${x.mode.padEnd(3)}  ${x.gbps.toFixed(2)} Gbit/s  calitap ${x.cpuPerGB.toFixed(3)} CPU-s/GB`,
    ),
    `median: off ${r.median.off.toFixed(2)}, on ${r.median.on.toFixed(2)} Gbit/s; best: off ${r.best.off.toFixed(2)}, on ${r.best.on.toFixed(2)}`,
    `calitap CPU-s per GB (medians): off ${r.cpuPerGB.off.toFixed(3)}, on ${r.cpuPerGB.on.toFixed(3)}`,
    `on / off (medians) = ${(r.ratio * 100).toFixed(1)} %  -> ${r.met ? 'MET' : 'MISSED'} (goal: within 5 %, >= 95 %)`,
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rep = await runPolicyLive({ quick: process.argv.includes('--quick') });
  console.log(process.argv.includes('--json') ? JSON.stringify(rep, null, 2) : formatPolicyLive(rep));
}
