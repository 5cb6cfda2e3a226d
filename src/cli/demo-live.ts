// The live demo (root): a three-host cluster in network namespaces, calitap daemons on each host,
// workloads attached like Calico's CNI plugin does, then status, routes, pings and a short iperf3
// across hosts. Everything is torn down at the end, on error and on Ctrl-C.
import { spawn, spawnSync } from 'node:child_process';
import { Lab, nsExec, type LabMode } from '../lab/lab.js';
import { cmdRoutes, cmdStatus } from './control.js';

export const LAB_MODES: LabMode[] = ['ipip', 'vxlan', 'ipip-crosssubnet', 'vxlan-crosssubnet', 'never'];

export async function runLiveDemo(mode: LabMode, print: (s: string) => void): Promise<void> {
  print(`calitap live demo: 3 hosts, IP pool 10.65.0.0/16 in mode ${mode}, natOutgoing on\n`);
  const lab = Lab.create({ prefix: 'demo', mode, hosts: 3, workers: 1, bgp: true });
  let done = false;
  const cleanup = (): void => {
    if (done) return;
    done = true;
    lab.destroy();
  };
  const onSignal = (): void => {
    print('\ninterrupted: tearing the cluster down');
    cleanup();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // stdout closed under us (`| head`) or any other way out: never leave the cluster behind
  const onPipe = (): void => cleanup();
  process.stdout.on('error', onPipe);
  process.once('exit', cleanup);
  try {
    for (const h of lab.hosts) {
      await lab.start(h.index);
      print(`started calitap on ${h.node} (${h.ip}) in namespace ${h.ns}`);
    }
    const w1 = await lab.addWorkload(1);
    const w2 = await lab.addWorkload(1);
    const w3 = await lab.addWorkload(2);
    const w4 = await lab.addWorkload(3);
    print(
      `workloads: ${w1.name} ${w1.ip} and ${w2.name} ${w2.ip} on node-1, ${w3.name} ${w3.ip} on node-2, ${w4.name} ${w4.ip} on node-3\n`,
    );
    print('$ calitap status    # on node-1');
    await cmdStatus(lab.hosts[0].socket, false, print);
    await waitForRoutes(lab, 8000);
    print('\n$ calitap routes    # on node-1');
    await cmdRoutes(lab.hosts[0].socket, false, print);
    for (const [what, target] of [
      ['same host', w2],
      ['same subnet', w3],
      ['across the router', w4],
    ] as const) {
      print(`\n$ ping ${target.ip}    # ${w1.name} -> ${target.name}, ${what}`);
      print(
        lastLines(
          nsExec(w1.ns, ['ping', '-c', '3', '-i', '0.2', '-W', '1', target.ip], { allowFail: true }),
          2,
        ),
      );
    }
    print(`\n$ ip netns exec ${w1.ns} ip neigh    # the workload's gateway is calitap`);
    print(nsExec(w1.ns, ['ip', 'neigh']).trim());
    print(`\n$ ping 203.0.113.10    # to the outside world through natOutgoing`);
    print(
      lastLines(
        nsExec(w1.ns, ['ping', '-c', '3', '-i', '0.2', '-W', '1', '203.0.113.10'], { allowFail: true }),
        2,
      ),
    );
    if (spawnSync('iperf3', ['--version']).status === 0) {
      print(`\n$ iperf3 -c ${w4.ip} -t 2    # TCP ${w1.name} -> ${w4.name} across hosts`);
      print(await iperf(w4.ns, w1.ns, w4.ip));
    } else {
      print('\n(iperf3 not installed: skipping the throughput run)');
    }
    print('\ntearing the cluster down');
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.stdout.off('error', onPipe);
    process.off('exit', cleanup);
    await lab.destroyAsync().catch(() => cleanup());
    done = true;
  }
}

async function waitForRoutes(lab: Lab, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const routes = (await lab.api(1, 'routes')) as { via: string }[];
    if (routes.filter((r) => r.via !== 'blackhole').length >= 3) return;
    await new Promise((r) => setTimeout(r, 200));
  }
}

function lastLines(s: string, n: number): string {
  return s.trim().split('\n').slice(-n).join('\n');
}

async function iperf(serverNs: string, clientNs: string, ip: string): Promise<string> {
  const server = spawn('ip', ['netns', 'exec', serverNs, 'iperf3', '-s', '-1'], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 300));
    const out = nsExec(clientNs, ['iperf3', '-c', ip, '-t', '2', '-f', 'm'], { allowFail: true });
    return out
      .split('\n')
      .filter((l) => /sender|receiver/.test(l))
      .join('\n');
  } finally {
    server.kill('SIGKILL');
  }
}
