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
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Namespaces } from '../src/lab/netns.js';
import { measure, stopChild, type LiveResult } from './live-measure.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SOURCE = path.join(REPO, 'bench', 'floor', 'tapfwd.c');

const ip = (...args: string[]): string =>
  execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

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
  readonly hosts: string[] = [];
  private readonly procs: ChildProcess[] = [];
  private n = 0;

  constructor(
    readonly prefix: string,
    readonly bin: string,
  ) {
    this.namespaces = new Namespaces(prefix);
    const sw = this.namespaces.add('sw');
    ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', sw, 'link', 'set', 'br0', 'up');
    for (let k = 1; k <= 2; k++) {
      const h = this.namespaces.add(`h${k}`);
      this.hosts.push(h);
      ip('link', 'add', `${prefix}u${k}`, 'netns', h, 'type', 'veth', 'peer', 'name', `s${k}`, 'netns', sw);
      ip('-n', h, 'link', 'set', `${prefix}u${k}`, 'name', 'up0');
      ip('-n', sw, 'link', 'set', `s${k}`, 'master', 'br0', 'up');
      ip('-n', h, 'link', 'set', 'up0', 'up');
      ip('-n', h, 'addr', 'add', `10.0.0.${k}/24`, 'dev', 'up0');
    }
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
    // cross host: a forwarder per host between its workload's TAP and up0
    const f1 = await lab.forwarder(1, ['cross', 'fc', wmac(3), 'up0', lab.upMac(2), '10.65.0.0/26']);
    const f2 = await lab.forwarder(2, ['cross', 'fd', wmac(4), 'up0', lab.upMac(1), '10.65.0.64/26']);
    const w3 = lab.workload(1, 'fc', '10.65.0.3', 3);
    const w4 = lab.workload(2, 'fd', '10.65.0.65', 4);
    out.push(
      await measure(
        {
          key: 'floor-cross',
          scenario: 'cross-host',
          dataplane: 'floor',
          path: 'C TAP + AF_PACKET forwarder, direct',
        },
        { client: w3.ns, server: w4, pids: [f1.pid!, f2.pid!] },
        seconds,
        reps,
        log,
      ),
    );
    // cross host through IPIP: the direct forwarders stop first (they would read every uplink frame
    // too); a forwarder per host between a new workload's TAP (MTU 1480) and up0, tunnel 10.0.0.1-2
    await lab.stop();
    const e1 = await lab.forwarder(1, [
      'ipip',
      'fe',
      wmac(5),
      'up0',
      lab.upMac(2),
      '10.65.0.0/26',
      '10.0.0.1',
      '10.0.0.2',
    ]);
    const e2 = await lab.forwarder(2, [
      'ipip',
      'ff',
      wmac(6),
      'up0',
      lab.upMac(1),
      '10.65.0.64/26',
      '10.0.0.2',
      '10.0.0.1',
    ]);
    const w5 = lab.workload(1, 'fe', '10.65.0.4', 5, 1480);
    const w6 = lab.workload(2, 'ff', '10.65.0.66', 6, 1480);
    out.push(
      await measure(
        {
          key: 'floor-ipip-cross',
          scenario: 'cross-host',
          dataplane: 'floor',
          path: 'C TAP + AF_PACKET forwarder, IPIP (segments + GRO in C)',
        },
        { client: w5.ns, server: w6, pids: [e1.pid!, e2.pid!] },
        seconds,
        reps,
        log,
      ),
    );
    await lab.stop();
    return out;
  } finally {
    lab.destroy();
    live.delete(lab);
    fs.rmSync(path.dirname(bin), { recursive: true, force: true });
  }
}
