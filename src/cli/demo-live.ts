// The live demo (root): a three-host cluster in network namespaces, calitap daemons on each host,
// workloads attached like Calico's CNI plugin does, then status, routes, pings and a short iperf3
// across hosts. Everything is torn down at the end, on error and on Ctrl-C. The tools it runs are
// checked (and installed) before anything is printed (demo-tools.ts); every command's output is
// collected first and printed under its `$ command` header only when there is some, else one line
// saying why there is none. Main thread.
import { spawn, spawnSync } from 'node:child_process';
import { Lab, REPO, type LabMode, type LabOptions } from '../lab/lab.js';
import { cmdRoutes, cmdStatus } from './control.js';
import { ensureDemoTools } from './demo-tools.js';

export const LAB_MODES: LabMode[] = ['ipip', 'vxlan', 'ipip-crosssubnet', 'vxlan-crosssubnet', 'never'];

/** How long the demo waits for BGP to bring every other host's block into node-1's FIB. */
const ROUTES_WAIT_MS = 8000;
const ROUTES_POLL_MS = 200;
/** Routes node-1 has once the mesh converged: its own block and workloads plus the other hosts' blocks. */
const MIN_CONVERGED_ROUTES = 3;
/** How long iperf3's server may take to listen. */
const IPERF_LISTEN_MS = 5000;
const IPERF_SECONDS = 2;

/** What a command printed and how it ended. */
export interface CommandResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Prints `$ <header>` and `body` (the part of the output worth showing), or, when the body is
 * empty, the header followed by one line saying the command printed nothing and why (its exit
 * status and the first line of its stderr). A header is never printed alone.
 */
export function showCommand(
  print: (s: string) => void,
  header: string,
  r: CommandResult,
  body: string,
): void {
  const text = body.trim();
  if (text !== '') {
    print(`${header}\n${text}`);
    return;
  }
  const err = r.stderr.trim().split('\n')[0] ?? '';
  const how = r.status === null ? 'killed' : `exit status ${r.status}`;
  print(`${header}\n(no output: ${how}${err !== '' ? `: ${err}` : ''})`);
}

/** Runs a command inside a namespace and collects its output (never throws for a failing command). */
export function nsRun(ns: string, args: string[], timeoutMs?: number): CommandResult {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8', timeout: timeoutMs });
  return {
    status: r.status,
    stdout: r.stdout ?? '',
    stderr: r.stderr ?? (r.error ? r.error.message : ''),
  };
}

export interface LiveDemoDeps {
  /** checks (and installs) the tools the demo runs; throws one line when some are missing */
  ensureTools?: () => void;
  createLab?: (o: LabOptions) => Lab;
}

export async function runLiveDemo(
  mode: LabMode,
  print: (s: string) => void,
  deps: LiveDemoDeps = {},
): Promise<void> {
  (deps.ensureTools ?? (() => void ensureDemoTools({ root: REPO })))();
  print(`calitap live demo: 3 hosts, IP pool 10.65.0.0/16 in mode ${mode}, natOutgoing on\n`);
  const lab = (deps.createLab ?? Lab.create)({ prefix: 'demo', mode, hosts: 3, workers: 1, bgp: true });
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
    await waitForRoutes(lab, ROUTES_WAIT_MS);
    print('\n$ calitap routes    # on node-1');
    await cmdRoutes(lab.hosts[0].socket, false, print);
    const ping = (target: string): CommandResult =>
      nsRun(w1.ns, ['ping', '-c', '3', '-i', '0.2', '-W', '1', target]);
    for (const [what, target] of [
      ['same host', w2],
      ['same subnet', w3],
      ['across the router', w4],
    ] as const) {
      const r = ping(target.ip);
      showCommand(
        print,
        `\n$ ping ${target.ip}    # ${w1.name} -> ${target.name}, ${what}`,
        r,
        lastLines(r.stdout, 2),
      );
    }
    const neigh = nsRun(w1.ns, ['ip', 'neigh']);
    showCommand(
      print,
      `\n$ ip netns exec ${w1.ns} ip neigh    # the workload's gateway is calitap`,
      neigh,
      neigh.stdout,
    );
    const out = ping('203.0.113.10');
    showCommand(
      print,
      `\n$ ping 203.0.113.10    # to the outside world through natOutgoing`,
      out,
      lastLines(out.stdout, 2),
    );
    // the host and its pods (calitap-host0: pool routes in the host, host addresses in calitap's FIB)
    const h1 = lab.hosts[0];
    const fromHost = nsRun(h1.ns, ['ping', '-c', '3', '-i', '0.2', '-W', '1', w1.ip]);
    showCommand(
      print,
      `\n$ ip netns exec ${h1.ns} ping ${w1.ip}    # ${h1.node}'s host -> ${w1.name} through calitap-host0`,
      fromHost,
      lastLines(fromHost.stdout, 2),
    );
    const toHost = ping(h1.ip);
    showCommand(
      print,
      `\n$ ping ${h1.ip}    # ${w1.name} -> its own host (defaultEndpointToHostAction: Accept)`,
      toHost,
      lastLines(toHost.stdout, 2),
    );
    const perf = await iperf(w4.ns, w1.ns, w4.ip);
    showCommand(
      print,
      `\n$ iperf3 -c ${w4.ip} -t ${IPERF_SECONDS}    # TCP ${w1.name} -> ${w4.name} across hosts`,
      perf,
      perf.stdout
        .split('\n')
        .filter((l) => /sender|receiver/.test(l))
        .join('\n'),
    );
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
    if (routes.filter((r) => r.via !== 'blackhole').length >= MIN_CONVERGED_ROUTES) return;
    await new Promise((r) => setTimeout(r, ROUTES_POLL_MS));
  }
}

function lastLines(s: string, n: number): string {
  return s.trim().split('\n').slice(-n).join('\n');
}

/** An iperf3 server in one namespace (one test, then it exits), the client in the other. */
async function iperf(serverNs: string, clientNs: string, ip: string): Promise<CommandResult> {
  // --forceflush: iperf3 block-buffers a piped stdout, which would hold back "Server listening"
  const server = spawn('ip', ['netns', 'exec', serverNs, 'iperf3', '-s', '-1', '--forceflush'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  try {
    // start the client once the server says it listens (not after a guessed delay)
    const listening = await new Promise<boolean>((resolve) => {
      let seen = '';
      const timer = setTimeout(() => resolve(false), IPERF_LISTEN_MS);
      server.stdout.setEncoding('utf8');
      server.stdout.on('data', (d: string) => {
        seen += d;
        if (/listening/i.test(seen)) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      server.once('exit', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (!listening) return { status: server.exitCode, stdout: '', stderr: 'iperf3 server did not start' };
    return nsRun(
      clientNs,
      ['iperf3', '-c', ip, '-t', String(IPERF_SECONDS), '-f', 'm'],
      (IPERF_SECONDS + 20) * 1000,
    );
  } finally {
    server.kill('SIGKILL');
  }
}
