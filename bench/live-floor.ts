// The floor of a TAP dataplane, measured beside the kernel and calitap in the live benchmark
// (live.bench.ts, scenario `floor`): bench/floor/tapfwd.c, a forwarder in C that does the least any
// userspace dataplane built on TAP devices and an AF_PACKET uplink can do per frame (one read and one
// write per frame, the offloads calitap uses, no decision, no ARP, one thread in poll()). Its figures
// bound what calitap can reach here: calitap / floor is the cost of being a router, floor / kernel the
// cost of the TAP interface itself on this machine (copies in and out of userspace, a system call per
// frame, a thread to wake per hop).
// Topology as the kernel reference (bench/live-kernel.ts): hosts h1, h2 with `up0` on a bridge
// (10.0.0.k/24), pool 10.65.0.0/16, host k's workloads in 10.65.0.(k-1)*64/26, each workload's `eth0`
// is a TAP the forwarder holds, with 169.254.1.1 as a static neighbour (ee:ee:ee:ee:ee:ee). Hosts do
// not forward (ip_forward 0): only the forwarder carries pod traffic. Cross host is measured twice:
// direct (Never: frames leave by the uplink to the other host's up0 MAC, unencapsulated) and IPIP
// (tapfwd ipip: the forwarder cuts TCP super-frames into MTU-sized IPIP packets and coalesces received
// segments again, GRO-like, in C; the workloads' TAP MTU is 1480, as Calico sets it for IPIP pools).
// Setup-time only (spawns cc, ip); everything carries the prefix and goes with destroy().
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Namespaces } from '../src/lab/netns.js';
import { buildUnderlay, ip } from './live-kernel.js';
import { measure, stopChild, type LiveResult } from './live-measure.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SOURCE = path.join(REPO, 'bench', 'floor', 'tapfwd.c');

/** Compiles tapfwd.c into a temporary directory; null (with the reason logged) when there is no cc. */
export function buildFloor(log: (s: string) => void): string | null {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'calitap-floor-')), 'tapfwd');
  const r = spawnSync('cc', ['-O2', '-Wall', '-o', out, SOURCE], { encoding: 'utf8' });
  if (r.status !== 0) {
    log(`live.bench: floor skipped: cc ${SOURCE}: ${(r.stderr || r.error?.message || '').trim()}`);
    return null;
  }
  return out;
}

const wmac = (n: number): string => `02:fc:00:00:00:${n.toString(16).padStart(2, '0')}`;

class FloorLab {
  readonly namespaces: Namespaces;
  readonly hosts: string[];
  private readonly procs: ChildProcess[] = [];
  private n = 0;

  constructor(
    readonly prefix: string,
    readonly bin: string,
  ) {
    this.namespaces = new Namespaces(prefix);
    this.hosts = buildUnderlay(this.namespaces, prefix, 2);
  }

  upMac(k: number): string {
    const j = JSON.parse(ip('-j', '-n', this.hosts[k - 1], 'link', 'show', 'up0')) as { address: string }[];
    return j[0].address;
  }

  /** Starts the forwarder in host k's namespace and waits for its "ready". */
  async forwarder(k: number, args: string[]): Promise<ChildProcess> {
    const c = spawn('ip', ['netns', 'exec', this.hosts[k - 1], this.bin, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.procs.push(c);
    let err = '';
    c.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve, reject) => {
      let out = '';
      c.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready')) resolve();
      });
      c.once('exit', (code) => reject(new Error(`tapfwd ${args.join(' ')} exited ${code}: ${err.trim()}`)));
    });
    return c;
  }

  /**
   * A workload namespace whose eth0 is the TAP `tap` (already opened by a forwarder in host k), with
   * MTU `mtu` when given (1480 behind an IPIP tunnel).
   */
  workload(k: number, tap: string, addr: string, n: number, mtu?: number): { ns: string; ip: string } {
    const ns = this.namespaces.add(`h${k}w${++this.n}`);
    ip('-n', this.hosts[k - 1], 'link', 'set', tap, 'netns', ns);
    ip('-n', ns, 'link', 'set', tap, 'name', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'address', wmac(n));
    if (mtu !== undefined) ip('-n', ns, 'link', 'set', 'eth0', 'mtu', String(mtu));
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
    ip('-n', ns, 'addr', 'add', `${addr}/32`, 'dev', 'eth0');
    ip('-n', ns, 'route', 'add', '169.254.1.1', 'dev', 'eth0', 'scope', 'link');
    ip('-n', ns, 'route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0');
    ip(
      '-n',
      ns,
      'neigh',
      'replace',
      '169.254.1.1',
      'lladdr',
      'ee:ee:ee:ee:ee:ee',
      'dev',
      'eth0',
      'nud',
      'permanent',
    );
    return { ns, ip: addr };
  }

  async stop(): Promise<void> {
    for (const c of this.procs) await stopChild(c);
    this.procs.length = 0;
  }

  destroy(): void {
    for (const c of this.procs) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    this.namespaces.destroy();
  }
}

/**
 * The floor's columns: same host, cross host direct, cross host IPIP; `live` gets the lab for the
 * signal handlers.
 */
export async function floorRuns(
  prefix: string,
  seconds: number,
  reps: number,
  log: (s: string) => void,
  live: Set<{ destroy(): void }>,
): Promise<LiveResult[]> {
  const bin = buildFloor(log);
  if (bin === null) return [];
  const lab = new FloorLab(prefix, bin);
  live.add(lab);
  try {
    const out: LiveResult[] = [];
    // same host: two TAPs in h1, one forwarder
    const same = await lab.forwarder(1, ['same', 'fa', wmac(1), 'fb', wmac(2)]);
    const w1 = lab.workload(1, 'fa', '10.65.0.1', 1);
    const w2 = lab.workload(1, 'fb', '10.65.0.2', 2);
    out.push(
      await measure(
        { key: 'floor-same', scenario: 'same-host', dataplane: 'floor', path: 'C TAP forwarder' },
        { client: w1.ns, server: w2, pids: [same.pid!] },
        seconds,
        reps,
        log,
      ),
    );
    // cross host: a forwarder per host between a workload's TAP and up0, direct, then through IPIP
    // (tunnel 10.0.0.1-2, workload MTU 1480); the direct forwarders stop first (they would read
    // every uplink frame too)
    const cross = async (
      mode: 'cross' | 'ipip',
      taps: [string, string],
      n: [number, number],
      addrs: [string, string],
      key: string,
      what: string,
      mtu?: number,
    ): Promise<void> => {
      const fwd = [];
      for (const k of [1, 2]) {
        const o = 3 - k;
        const tunnel = mode === 'ipip' ? [`10.0.0.${k}`, `10.0.0.${o}`] : [];
        const net = `10.65.0.${(k - 1) * 64}/26`;
        fwd.push(
          await lab.forwarder(k, [mode, taps[k - 1], wmac(n[k - 1]), 'up0', lab.upMac(o), net, ...tunnel]),
        );
      }
      const wa = lab.workload(1, taps[0], addrs[0], n[0], mtu);
      const wb = lab.workload(2, taps[1], addrs[1], n[1], mtu);
      out.push(
        await measure(
          { key, scenario: 'cross-host', dataplane: 'floor', path: `C TAP + AF_PACKET forwarder, ${what}` },
          { client: wa.ns, server: wb, pids: fwd.map((f) => f.pid!) },
          seconds,
          reps,
          log,
        ),
      );
    };
    await cross('cross', ['fc', 'fd'], [3, 4], ['10.65.0.3', '10.65.0.65'], 'floor-cross', 'direct');
    await lab.stop();
    await cross(
      'ipip',
      ['fe', 'ff'],
      [5, 6],
      ['10.65.0.4', '10.65.0.66'],
      'floor-ipip-cross',
      'IPIP (segments + GRO in C)',
      1480,
    );
    await lab.stop();
    return out;
  } finally {
    lab.destroy();
    live.delete(lab);
    fs.rmSync(path.dirname(bin), { recursive: true, force: true });
  }
}
