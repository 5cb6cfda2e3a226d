// A lab of calitap hosts built from network namespaces, for the end-to-end tests, the live demo and
// the live benchmarks. Everything it creates carries the lab's prefix and is removed by destroy();
// it only ever starts processes it tracks by pid, and only sends traffic inside its namespaces.
//
//   <p>sw: bridge br0 (10.0.0.0/24) ── h1 10.0.0.1, h2 10.0.0.2, router 10.0.0.254
//   <p>r:  router, ip_forward=1; 10.1.0.254/24 ── h3 10.1.0.3 (another subnet)
//                                203.0.113.1/24 ── <p>srv 203.0.113.10 (an "internet" server)
// Hosts run `calitap run` with the uplink `up0`; workloads are namespaces <p>h<k>w<n> attached with
// `calitap workload add`. Pool 10.65.0.0/16 with /26 blocks: host k owns 10.65.0.(k-1)*64/26.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { callApi } from '../control/daemon/api.js';
import { Namespaces } from './netns.js';
import { DaemonError, DeviceError } from '../common/errors.js';

export type LabMode = 'ipip' | 'vxlan' | 'ipip-crosssubnet' | 'vxlan-crosssubnet' | 'never';

export interface LabOptions {
  /** short unique prefix for namespace and link names (≤ 6 chars), e.g. `ct${process.pid % 1e4}` */
  prefix: string;
  mode: LabMode;
  /** 1..3 hosts (host 3 is on the other subnet) */
  hosts: number;
  workers?: number;
  /** run the BGP speaker (routes learned over the mesh instead of from block affinities) */
  bgp?: boolean;
  /** extra YAML appended to the generated config */
  extraYaml?: string;
  /** leave the calitap/v1 Uplink resources out: the daemons find interface and gateway in the kernel */
  noUplinkResources?: boolean;
  /** extra `calitap run` arguments (e.g. --metrics 9091) */
  daemonArgs?: string[];
  /** extra environment for the daemons (e.g. CALITAP_TEST_HOOKS=1) */
  daemonEnv?: Record<string, string>;
  /**
   * GRO on every host's uplink veth (off by default on veth; real NICs usually have it on): the
   * kernel coalesces received TCP, IPIP-carried TCP included, before calitap's AF_PACKET socket
   */
  uplinkGro?: boolean;
  /** the daemons' `--uplink` (default: calitap's default, packet) */
  uplink?: 'packet' | 'udp';
  /**
   * etcd datastore instead of the config file: the daemons run with `--datastore etcdv3` against an
   * etcd the lab starts in the router namespace (startEtcd), listening on 10.0.0.254:2379
   */
  etcd?: boolean;
}

/** The lab's etcd (router namespace, reachable from every host). */
export const LAB_ETCD_URL = 'http://10.0.0.254:2379';

export interface LabHost {
  index: number;
  node: string;
  ns: string;
  ip: string;
  socket: string;
  state: string;
  daemon: ChildProcess | null;
  log: string;
}

const here = path.dirname(fileURLToPath(import.meta.url));
/** repo root (this file is src/lab/lab.ts or dist/src/lab/lab.js) */
export const REPO = path.resolve(here, here.includes(`${path.sep}dist${path.sep}`) ? '../../..' : '../..');
const CLI = path.join(REPO, 'bin', 'calitap.js');
/** How much of a daemon's log a start failure carries in its `details`. */
const LOG_TAIL_CHARS = 2000;

export function sh(cmd: string, args: string[], opts: { allowFail?: boolean; input?: string } = {}): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], input: opts.input });
  } catch (e) {
    if (opts.allowFail) return '';
    const err = e as { stderr?: string; message: string };
    const why = (err.stderr || err.message).trim().split('\n')[0];
    throw new DeviceError(
      cmd === 'ip' ? 'ip-command' : 'command-failed',
      `${cmd} ${args.join(' ')}: ${why}`,
      {
        cause: e,
      },
    );
  }
}

/**
 * Turns an offload feature (GRO, TSO) on or off for ifname in namespace ns (SIOCETHTOOL through the
 * addon, dist/src/lab/set-feature.js: no ethtool binary needed). Throws when the kernel refuses.
 */
export function setFeature(ns: string, ifname: string, feature: 'gro' | 'tso', on: boolean): void {
  const script = path.join(REPO, 'dist', 'src', 'lab', 'set-feature.js');
  const want = on ? 'on' : 'off';
  const out = nsExec(ns, [process.execPath, script, ifname, feature, want]).trim();
  if (out !== `${ifname} ${feature} ${want}`) {
    throw new DeviceError(
      'command-failed',
      `${ns} ${ifname}: ${feature} is "${out}" after setting it ${want}`,
    );
  }
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Runs a command inside a namespace. */
export function nsExec(ns: string, args: string[], opts: { allowFail?: boolean } = {}): string {
  return sh('ip', ['netns', 'exec', ns, ...args], opts);
}

function blockOf(k: number): string {
  return `10.65.0.${(k - 1) * 64}/26`;
}

export function hostIp(k: number): string {
  return k === 3 ? '10.1.0.3' : `10.0.0.${k}`;
}

function encap(mode: LabMode): { ipipMode: string; vxlanMode: string } {
  switch (mode) {
    case 'ipip':
      return { ipipMode: 'Always', vxlanMode: 'Never' };
    case 'vxlan':
      return { ipipMode: 'Never', vxlanMode: 'Always' };
    case 'ipip-crosssubnet':
      return { ipipMode: 'CrossSubnet', vxlanMode: 'Never' };
    case 'vxlan-crosssubnet':
      return { ipipMode: 'Never', vxlanMode: 'CrossSubnet' };
    case 'never':
      return { ipipMode: 'Never', vxlanMode: 'Never' };
  }
}

export function labConfig(o: LabOptions): string {
  const e = encap(o.mode);
  const docs: string[] = [
    `apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: lab-pool}\nspec: {cidr: 10.65.0.0/16, blockSize: 26, ipipMode: ${e.ipipMode}, vxlanMode: ${e.vxlanMode}, natOutgoing: true}`,
    `apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {asNumber: 64512, nodeToNodeMeshEnabled: true}`,
  ];
  for (let k = 1; k <= o.hosts; k++) {
    const node = `node-${k}`;
    if (!o.noUplinkResources) {
      docs.push(
        `apiVersion: calitap/v1\nkind: Uplink\nmetadata: {name: ${node}}\nspec: {interfaceName: up0, gateway: ${k === 3 ? '10.1.0.254' : '10.0.0.254'}}`,
      );
    }
    docs.push(
      `apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: ${node}}\nspec: {bgp: {ipv4Address: ${hostIp(k)}/24}, ipv4VXLANTunnelAddr: 10.65.0.${(k - 1) * 64 + 1}}`,
      `apiVersion: projectcalico.org/v3\nkind: BlockAffinity\nmetadata: {name: ${node}-block}\nspec: {node: ${node}, cidr: ${blockOf(k)}}`,
      // SNAT to an address of calitap's own (answered by calitap's ARP), not the host's: the host
      // kernel would reset TCP replies to ports it has no socket for.
      `apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: node.${node}}\nspec: {natOutgoingAddress: ${k === 3 ? '10.1.0.103' : `10.0.0.${100 + k}`}}`,
    );
  }
  return docs.join('\n---\n') + (o.extraYaml ? `\n---\n${o.extraYaml}` : '') + '\n';
}

export class Lab {
  readonly hosts: LabHost[] = [];
  readonly dir: string;
  readonly config: string;
  private readonly namespaces: Namespaces;
  private workloadCount = 0;

  private constructor(readonly o: LabOptions) {
    this.namespaces = new Namespaces(o.prefix);
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `calitap-lab-${o.prefix}-`));
    this.config = path.join(this.dir, 'cluster.yaml');
    fs.writeFileSync(this.config, labConfig(o));
  }

  /** Builds the namespaces and links (no daemons yet). Cleans up what it made if it fails. */
  static create(o: LabOptions): Lab {
    const lab = new Lab(o);
    try {
      lab.build();
    } catch (e) {
      lab.destroy();
      throw e;
    }
    return lab;
  }

  private ns(name: string): string {
    return this.namespaces.add(name);
  }

  private build(): void {
    const p = this.o.prefix;
    const sw = this.ns('sw');
    const r = this.ns('r');
    const srv = this.ns('srv');
    sh('ip', ['-n', sw, 'link', 'add', 'br0', 'type', 'bridge']);
    sh('ip', ['-n', sw, 'link', 'set', 'br0', 'up']);
    const toSwitch = (ns: string, ifname: string, port: string): void => {
      sh('ip', [
        'link',
        'add',
        `${p}${port}`,
        'netns',
        ns,
        'type',
        'veth',
        'peer',
        'name',
        port,
        'netns',
        sw,
      ]);
      sh('ip', ['-n', ns, 'link', 'set', `${p}${port}`, 'name', ifname]);
      sh('ip', ['-n', sw, 'link', 'set', port, 'master', 'br0', 'up']);
      sh('ip', ['-n', ns, 'link', 'set', ifname, 'up']);
    };
    toSwitch(r, 'r0', 'sr');
    sh('ip', ['-n', r, 'addr', 'add', '10.0.0.254/24', 'dev', 'r0']);
    nsExec(r, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    sh('ip', ['link', 'add', 'r2', 'netns', r, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', srv]);
    sh('ip', ['-n', r, 'addr', 'add', '203.0.113.1/24', 'dev', 'r2']);
    sh('ip', ['-n', r, 'link', 'set', 'r2', 'up']);
    sh('ip', ['-n', srv, 'addr', 'add', '203.0.113.10/24', 'dev', 'eth0']);
    sh('ip', ['-n', srv, 'link', 'set', 'eth0', 'up']);
    sh('ip', ['-n', srv, 'route', 'add', 'default', 'via', '203.0.113.1']);
    for (let k = 1; k <= this.o.hosts; k++) {
      const h = this.ns(`h${k}`);
      if (k === 3) {
        sh('ip', ['link', 'add', 'r1', 'netns', r, 'type', 'veth', 'peer', 'name', 'up0', 'netns', h]);
        sh('ip', ['-n', r, 'addr', 'add', '10.1.0.254/24', 'dev', 'r1']);
        sh('ip', ['-n', r, 'link', 'set', 'r1', 'up']);
        sh('ip', ['-n', h, 'link', 'set', 'up0', 'up']);
      } else {
        toSwitch(h, 'up0', `s${k}`);
      }
      sh('ip', ['-n', h, 'addr', 'add', `${hostIp(k)}/24`, 'dev', 'up0']);
      // a NIC with GRO on: veth coalesces only what its peer could not have sent as TSO super-frames
      // (drivers/net/veth.c veth_skb_is_eligible_for_gro), so the switch side stops TSO (the bridge
      // segments super-frames in software, as a wire would carry them)
      if (this.o.uplinkGro === true) {
        setFeature(h, 'up0', 'gro', true);
        nsExec(h, ['sh', '-c', 'echo 200000 > /sys/class/net/up0/gro_flush_timeout']);
        if (k === 3) setFeature(r, 'r1', 'tso', false);
        else setFeature(sw, `s${k}`, 'tso', false);
      }
      sh('ip', ['-n', h, 'route', 'add', 'default', 'via', k === 3 ? '10.1.0.254' : '10.0.0.254']);
      this.hosts.push({
        index: k,
        node: `node-${k}`,
        ns: h,
        ip: hostIp(k),
        socket: path.join(this.dir, `h${k}.sock`),
        state: path.join(this.dir, `h${k}.state.json`),
        daemon: null,
        log: path.join(this.dir, `h${k}.log`),
      });
    }
  }

  /**
   * Starts `calitap run` in host k's namespace and waits until its control socket answers. `uplink`
   * overrides the lab's `--uplink` for this host (mixed clusters).
   */
  async start(k: number, timeoutMs = 20_000, uplink = this.o.uplink): Promise<void> {
    const h = this.hosts[k - 1];
    const args = ['netns', 'exec', h.ns, process.execPath, CLI, 'run', '--node', h.node];
    if (this.o.etcd) args.push('--datastore', 'etcdv3', '--etcd-endpoints', LAB_ETCD_URL);
    else args.push('--config', this.config);
    args.push('--socket', h.socket, '--state', h.state, '--workers', String(this.o.workers ?? 1));
    args.push(...(this.o.daemonArgs ?? []));
    if (!this.o.bgp) args.push('--no-bgp');
    if (uplink !== undefined) args.push('--uplink', uplink);
    const log = fs.openSync(h.log, 'a');
    h.daemon = spawn('ip', args, {
      stdio: ['ignore', log, log],
      env: { ...process.env, ...this.o.daemonEnv },
    });
    fs.closeSync(log);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await callApi(h.socket, 'status', {}, 1000);
        return;
      } catch {
        if (h.daemon.exitCode !== null || Date.now() > deadline) {
          const log = fs.readFileSync(h.log, 'utf8');
          const last = log.trim().split('\n').pop() ?? '';
          const how =
            h.daemon.exitCode !== null ? `exited with ${h.daemon.exitCode}` : `no answer in ${timeoutMs} ms`;
          throw new DaemonError('daemon-start', `calitap on ${h.node} did not start (${how}): ${last}`, {
            details: log.slice(-LOG_TAIL_CHARS),
          });
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Stops host k's daemon (SIGTERM, or SIGKILL to simulate a crash) and waits for it to exit. */
  async stop(k: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const h = this.hosts[k - 1];
    const d = h.daemon;
    if (d === null || d.exitCode !== null || d.signalCode !== null) return;
    // `ip netns exec` execs the command, so the pid is node's own
    await new Promise<void>((resolve) => {
      d.once('exit', () => resolve());
      d.kill(signal);
    });
    h.daemon = null;
  }

  /** Creates a workload namespace on host k and attaches it; returns its namespace and address. */
  async addWorkload(
    k: number,
    ip?: string,
    timeoutMs?: number,
  ): Promise<{ ns: string; ip: string; name: string }> {
    const h = this.hosts[k - 1];
    const name = `w${++this.workloadCount}`;
    const ns = this.ns(`h${k}${name}`);
    const res = (await callApi(h.socket, 'workload.add', { name, netns: ns, ip }, timeoutMs)) as {
      ip: string;
    };
    return { ns, ip: res.ip, name };
  }

  private etcdProc: ChildProcess | null = null;

  /** Starts (or restarts, same data) etcd in the router namespace and waits until it is healthy. */
  async startEtcd(timeoutMs = 20_000): Promise<void> {
    const r = `${this.o.prefix}r`;
    const data = path.join(this.dir, 'etcd');
    const log = fs.openSync(path.join(this.dir, 'etcd.log'), 'a');
    this.etcdProc = spawn(
      'ip',
      [
        ...['netns', 'exec', r, 'etcd', '--name', 'lab', '--data-dir', data],
        ...['--listen-client-urls', LAB_ETCD_URL, '--advertise-client-urls', LAB_ETCD_URL],
        ...[
          '--listen-peer-urls',
          'http://127.0.0.1:2380',
          '--initial-advertise-peer-urls',
          'http://127.0.0.1:2380',
        ],
        ...['--initial-cluster', 'lab=http://127.0.0.1:2380', '--logger', 'zap', '--log-outputs', 'stderr'],
      ],
      { stdio: ['ignore', log, log] },
    );
    fs.closeSync(log);
    const deadline = Date.now() + timeoutMs;
    while (!this.etcdctl(['endpoint', 'status'], true).includes(LAB_ETCD_URL)) {
      if (this.etcdProc.exitCode !== null || Date.now() > deadline)
        throw new Error(
          `etcd did not start:\n${fs.readFileSync(path.join(this.dir, 'etcd.log'), 'utf8').slice(-2000)}`,
        );
      await new Promise((res) => setTimeout(res, 200));
    }
  }

  /** Stops the lab's etcd (SIGTERM, waits for it). */
  async stopEtcd(): Promise<void> {
    const p = this.etcdProc;
    if (p === null || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGTERM');
    });
    this.etcdProc = null;
  }

  /** etcdctl against the lab's etcd, run in the router namespace. */
  etcdctl(args: string[], allowFail = false): string {
    return nsExec(`${this.o.prefix}r`, ['etcdctl', '--endpoints', LAB_ETCD_URL, ...args], { allowFail });
  }

  /** The calitap CLI against the lab's etcd (router namespace). */
  cli(args: string[], input?: string): string {
    return sh(
      'ip',
      [
        'netns',
        'exec',
        `${this.o.prefix}r`,
        process.execPath,
        CLI,
        ...args,
        '--datastore',
        'etcdv3',
        '--etcd-endpoints',
        LAB_ETCD_URL,
      ],
      { input },
    );
  }

  async api(k: number, method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    return callApi(this.hosts[k - 1].socket, method, params);
  }

  /** Stops every daemon it started and removes every namespace it created. */
  async destroyAsync(): Promise<void> {
    for (const h of this.hosts) await this.stop(h.index, 'SIGKILL');
    await this.stopEtcd();
    this.destroy();
  }

  destroy(): void {
    for (const h of this.hosts) {
      if (h.daemon && h.daemon.exitCode === null) h.daemon.kill('SIGKILL');
    }
    if (this.etcdProc !== null && this.etcdProc.exitCode === null) this.etcdProc.kill('SIGKILL');
    this.namespaces.destroy();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
