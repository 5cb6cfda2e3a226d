// Lab for BGP interop tests and the BGP benchmark: network namespaces joined to the root namespace
// by a veth pair created for the purpose (root end 10.200.N.1/24, namespace end 10.200.N.2/24),
// plus config builders and CLI helpers for the real daemons: BIRD 2 (bird/birdc), GoBGP 3
// (gobgpd/gobgp) and FRR 8 (bgpd/vtysh); the configs are the ones documented in docs/bgp.md.
// calitap's speakers run in the calling process in the root namespace on the root end (and extra
// addresses on it); daemons run inside the namespace. Only processes started here are killed (by
// pid), and the namespace and veth are always deleted in `destroy()` (and at process exit).
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Polls `fn` (with backoff up to 100 ms) until it returns something truthy. */
export async function waitUntil<T>(
  fn: () => T | null | undefined | false,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let delay = 5;
  while (true) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(100, delay * 2);
  }
}

export const isRoot = process.getuid?.() === 0;

export function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function sh(cmd: string, args: string[], timeout = 15_000): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] });
}

const labs = new Set<Lab>();
process.once('exit', () => {
  for (const l of labs) l.destroySync();
});

export class Lab {
  readonly ns: string;
  readonly vethRoot: string;
  readonly vethNs: string;
  readonly dir: string;
  private readonly procs: { name: string; child: ChildProcess; log: string }[] = [];
  private destroyed = false;
  private readonly extraNs: string[] = [];

  private constructor(
    readonly tag: string,
    readonly n: number,
  ) {
    this.ns = `ctbgp-${process.pid}-${tag}`;
    this.vethRoot = `ctb${process.pid % 100000}${tag}`.slice(0, 15);
    this.vethNs = `ctn${process.pid % 100000}${tag}`.slice(0, 15);
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `ctbgp-${tag}-`));
  }

  /** 10.200.N.i: .1 and extra addresses are in the root namespace, .2 in the lab namespace */
  ip(i: number): string {
    return `10.200.${this.n}.${i}`;
  }

  static create(tag: string): Lab {
    const used = sh('ip', ['-4', '-o', 'addr', 'show']);
    let n = 10 + ((process.pid * 7 + tag.charCodeAt(0)) % 240);
    for (let i = 0; i < 240 && used.includes(`10.200.${n}.`); i++) n = 10 + ((n - 10 + 1) % 240);
    const lab = new Lab(tag, n);
    labs.add(lab);
    try {
      sh('ip', ['netns', 'add', lab.ns]);
      sh('ip', ['link', 'add', lab.vethRoot, 'type', 'veth', 'peer', 'name', lab.vethNs]);
      sh('ip', ['link', 'set', lab.vethNs, 'netns', lab.ns]);
      sh('ip', ['addr', 'add', `${lab.ip(1)}/24`, 'dev', lab.vethRoot]);
      sh('ip', ['link', 'set', lab.vethRoot, 'up']);
      lab.exec('ip', ['addr', 'add', `${lab.ip(2)}/24`, 'dev', lab.vethNs]);
      lab.exec('ip', ['link', 'set', lab.vethNs, 'up']);
      lab.exec('ip', ['link', 'set', 'lo', 'up']);
    } catch (e) {
      lab.destroySync();
      throw e;
    }
    return lab;
  }

  /** Adds 10.200.N.i/24 to the root end of the veth (more calitap speakers). */
  addRootAddress(i: number): string {
    sh('ip', ['addr', 'add', `${this.ip(i)}/24`, 'dev', this.vethRoot]);
    return this.ip(i);
  }

  /**
   * Creates a second namespace linked only to the lab namespace by its own veth pair
   * (10.201.N.2/24 in the lab namespace, 10.201.N.3/24 in the new one); returns its name.
   */
  linkNamespace(tag: string): string {
    const ns = `${this.ns}-${tag}`;
    const a = `ctx${process.pid % 100000}${tag}`.slice(0, 15);
    const b = `cty${process.pid % 100000}${tag}`.slice(0, 15);
    sh('ip', ['netns', 'add', ns]);
    this.extraNs.push(ns);
    this.exec('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
    this.exec('ip', ['link', 'set', b, 'netns', ns]);
    this.exec('ip', ['addr', 'add', `10.201.${this.n}.2/24`, 'dev', a]);
    this.exec('ip', ['link', 'set', a, 'up']);
    this.exec('ip', ['addr', 'add', `10.201.${this.n}.3/24`, 'dev', b], 15_000, ns);
    this.exec('ip', ['link', 'set', b, 'up'], 15_000, ns);
    this.exec('ip', ['link', 'set', 'lo', 'up'], 15_000, ns);
    return ns;
  }

  /** Runs a command inside the namespace (default: the lab's) and returns its stdout. */
  exec(cmd: string, args: string[], timeout = 15_000, ns = this.ns): string {
    return sh('ip', ['netns', 'exec', ns, cmd, ...args], timeout);
  }

  /** Starts a long-running command inside a namespace; stdout/stderr go to `<dir>/<name>.log`. */
  spawn(name: string, cmd: string, args: string[], ns = this.ns): ChildProcess {
    const log = path.join(this.dir, `${name}.log`);
    const fd = fs.openSync(log, 'a');
    // `ip netns exec` execs the command, so the child's pid is the daemon's pid.
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    this.procs.push({ name, child, log });
    return child;
  }

  log(name: string): string {
    try {
      return fs.readFileSync(path.join(this.dir, `${name}.log`), 'utf8');
    } catch {
      return '';
    }
  }

  writeFile(name: string, text: string): string {
    const p = path.join(this.dir, name);
    fs.writeFileSync(p, text);
    return p;
  }

  /** Sends a signal to one process this lab started. */
  signal(child: ChildProcess, sig: NodeJS.Signals): void {
    if (child.pid && child.exitCode === null && child.signalCode === null) process.kill(child.pid, sig);
  }

  /** Kills one process this lab started and waits for it to exit. */
  async kill(child: ChildProcess, sig: NodeJS.Signals = 'SIGTERM', timeoutMs = 5000): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    try {
      process.kill(child.pid, 'SIGCONT');
      process.kill(child.pid, sig);
    } catch {
      return;
    }
    const t = setTimeout(() => {
      try {
        if (child.pid) process.kill(child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, timeoutMs);
    await exited;
    clearTimeout(t);
  }

  async destroy(): Promise<void> {
    await Promise.all(this.procs.map((p) => this.kill(p.child, 'SIGTERM', 3000)));
    this.destroySync();
  }

  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    labs.delete(this);
    for (const p of this.procs) {
      try {
        if (p.child.pid && p.child.exitCode === null && p.child.signalCode === null)
          process.kill(p.child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const args of [
      ['link', 'del', this.vethRoot],
      ...this.extraNs.map((ns) => ['netns', 'del', ns]),
      ['netns', 'del', this.ns],
    ]) {
      try {
        execFileSync('ip', args, { stdio: 'ignore', timeout: 10_000 });
      } catch {
        /* already gone */
      }
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface BirdPeer {
  name: string;
  ip: string;
  asn: number;
  /** our address for this session (default: the router ID) */
  source?: string;
  /** extra lines inside the protocol block */
  extra?: string;
}

export function birdConf(o: {
  routerId: string;
  localAs: number;
  peers: BirdPeer[];
  statics?: string[];
  /** raw extra top-level config (e.g. a generated static protocol) */
  extra?: string;
  holdTime?: number;
}): string {
  const statics = o.statics?.length
    ? `protocol static blocks {\n  ipv4;\n${o.statics.map((s) => `  route ${s} blackhole;`).join('\n')}\n}\n`
    : '';
  return `log stderr all;
router id ${o.routerId};
graceful restart wait 5;
protocol device { }
protocol direct { ipv4; }
${statics}${o.extra ?? ''}
template bgp calitap {
  local as ${o.localAs};
  direct;
  hold time ${o.holdTime ?? 9};
  keepalive time ${Math.max(1, Math.floor((o.holdTime ?? 9) / 3))};
  connect retry time 1;
  connect delay time 1;
  error wait time 1, 2;
  graceful restart on;
  graceful restart time 120;
  ipv4 {
    import all;
    export where source = RTS_STATIC;
    next hop self;
    gateway direct;
  };
}
${o.peers
  .map(
    (p) => `protocol bgp ${p.name} from calitap {
  neighbor ${p.ip} as ${p.asn};
  source address ${p.source ?? o.routerId};
${p.extra ?? ''}
}`,
  )
  .join('\n')}
`;
}

export class Bird {
  child: ChildProcess | null = null;
  readonly sock: string;
  readonly conf: string;
  constructor(
    private readonly lab: Lab,
    readonly name: string,
    config: string,
    /** namespace to run in (default: the lab's) */
    readonly ns = lab.ns,
  ) {
    this.sock = path.join(lab.dir, `${name}.ctl`);
    this.conf = lab.writeFile(`${name}.conf`, config);
  }
  start(recovery = false): void {
    const args = ['-f', '-c', this.conf, '-s', this.sock, '-P', path.join(this.lab.dir, `${this.name}.pid`)];
    if (recovery) args.push('-R');
    this.child = this.lab.spawn(this.name, 'bird', args, this.ns);
  }
  cli(cmd: string): string {
    return this.lab.exec('birdc', ['-s', this.sock, ...cmd.split(' ')], 60_000, this.ns);
  }
  /** Like `cli` but without blocking the event loop (for polling while a speaker is busy). */
  cliAsync(cmd: string): Promise<string> {
    return new Promise((resolve, reject) =>
      execFile(
        'ip',
        ['netns', 'exec', this.ns, 'birdc', '-s', this.sock, ...cmd.split(' ')],
        { encoding: 'utf8', timeout: 60_000 },
        (err, out) => (err ? reject(err) : resolve(out)),
      ),
    );
  }
  async ready(): Promise<void> {
    await waitUntil(
      () => {
        try {
          return this.cli('show status').includes('Daemon is up');
        } catch {
          return false;
        }
      },
      10_000,
      `${this.name} control socket`,
    );
  }
  /** "up"/"start" and the info column of `show protocols` for one protocol */
  protocol(name: string): { state: string; info: string } {
    const line = this.cli(`show protocols ${name}`)
      .split('\n')
      .find((l) => l.startsWith(name + ' '));
    if (!line) return { state: '', info: '' };
    const cols = line.trim().split(/\s+/);
    return { state: cols[3] ?? '', info: cols.slice(5).join(' ') };
  }
  /** prefix → BGP.next_hop for routes learned from protocol `proto` */
  routesFrom(proto: string): Record<string, string> {
    const out: Record<string, string> = {};
    let cur = '';
    for (const line of this.cli(`show route protocol ${proto} all`).split('\n')) {
      const m = /^(\d+\.\d+\.\d+\.\d+\/\d+)\s/.exec(line);
      if (m) cur = m[1];
      const nh = /BGP\.next_hop: (\S+)/.exec(line);
      if (nh && cur) out[cur] = nh[1];
    }
    return out;
  }
  /** number of routes from a protocol, via `show route count` */
  count(proto: string): number {
    const m = /(\d+) of \d+ routes/.exec(this.cli(`show route protocol ${proto} count`));
    return m ? Number(m[1]) : 0;
  }
}

export function gobgpConf(o: {
  routerId: string;
  localAs: number;
  clients: string[];
  clusterId?: string;
}): string {
  return `[global.config]
  as = ${o.localAs}
  router-id = "${o.routerId}"
  local-address-list = ["${o.routerId}"]
${o.clients
  .map(
    (ip) => `
[[neighbors]]
  [neighbors.config]
    neighbor-address = "${ip}"
    peer-as = ${o.localAs}
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
  [neighbors.transport.config]
    local-address = "${o.routerId}"
  [neighbors.route-reflector.config]
    route-reflector-client = true
    route-reflector-cluster-id = "${o.clusterId ?? o.routerId}"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
`,
  )
  .join('')}`;
}

export function frrConf(o: {
  routerId: string;
  localAs: number;
  peer: string;
  peerAs: number;
  networks: string[];
}): string {
  return `frr defaults traditional
hostname ctfrr
log stdout informational
!
router bgp ${o.localAs}
 bgp router-id ${o.routerId}
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor ${o.peer} remote-as ${o.peerAs}
 neighbor ${o.peer} timers 3 9
 neighbor ${o.peer} timers connect 1
 !
 address-family ipv4 unicast
${o.networks.map((n) => `  network ${n}`).join('\n')}
  neighbor ${o.peer} activate
 exit-address-family
!
line vty
!
`;
}
