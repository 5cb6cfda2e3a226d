// The host TAP (`calitap-host0` by default): how the host's kernel, in the namespace calitap runs in,
// reaches its workloads and they reach it, as Calico's host-side routes and cali* interfaces do.
//   - a persistent multi-queue TAP (one queue per worker, with the workload TAPs' offloads), up, MTU
//     the uplink's; a killed or restarted daemon re-opens it by name and finds it as it was;
//   - in the host's main table, per IP pool: `<cidr> via 169.254.1.1 dev calitap-host0 onlink src
//     <node IP> mtu <pod MTU>` (calitap answers the kernel's ARP for 169.254.1.1 on the TAP). Only
//     routes it added are ever changed or removed (a pool's route goes with the pool); a route to a
//     pool CIDR the host had already is left alone. What it added is kept beside the state file
//     (`<state>.host.json`), so a restarted daemon removes what a pool deletion made stale;
//   - in calitap's FIB: the host's addresses (node IP, the addresses calitap owns, every IPv4 address
//     of the namespace, polled) as /32s on the host port, its allowed sources too.
// Felix's defaultEndpointToHostAction is handed to the policy tables here as well. Control thread.
import * as fs from 'node:fs';
import { formatIp4, formatPrefix4, parseIp4, CALICO_GATEWAY_IP } from '../../common/addr.js';
import { asCalitapError } from '../../common/errors.js';
import type { ClusterConfig } from '../config/types.js';
import { felixFor } from '../config/compile.js';
import * as io from '../../dataplane/devices/native.js';
import { ip } from './ip-command.js';
import type { Programmer } from './program.js';
import type { PolicyTables } from '../../dataplane/tables/policy/tables.js';

export const DEFAULT_HOST_INTERFACE = 'calitap-host0';
const TAP_TX_QUEUE_LEN = 10000;

export interface HostPortLog {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
  error(o: object, msg: string): void;
}

export interface HostPortOptions {
  /** the TAP's name (default calitap-host0); false: no host TAP */
  name?: string | false;
  /** one queue per worker */
  queues: number;
  /** the workload TAPs' offloads (IFF_VNET_HDR, csum + TSO4) */
  offload: boolean;
  /** the daemon's state file: the routes it added are kept beside it (`.host.json`) */
  stateFile: string;
}

interface HostState {
  name: string;
  /** the kernel routes this daemon added (pool CIDRs), as "a.b.c.d/n" */
  routes: string[];
}

/** The IPv4 addresses in `ip -j -4 addr show` output, martians (0/8, 127/8, multicast) left out. */
export function parseAddrs(json: string): number[] {
  let links: unknown;
  try {
    links = JSON.parse(json);
  } catch {
    return [];
  }
  const out: number[] = [];
  if (!Array.isArray(links)) return out;
  for (const l of links as { addr_info?: { family?: string; local?: string }[] }[]) {
    for (const a of l.addr_info ?? []) {
      if (a.family !== 'inet' || typeof a.local !== 'string') continue;
      const v = parseIp4(a.local);
      if (v !== null) out.push(v);
    }
  }
  return hostAddrs(out);
}

/**
 * The host's own addresses among the namespace's IPv4 addresses (as ifAddrs4 lists them): without
 * 0/8, loopback, multicast and above, and Calico's gateway 169.254.1.1.
 */
export function hostAddrs(all: readonly number[]): number[] {
  const out: number[] = [];
  for (const a of all) {
    const v = a >>> 0;
    const o = v >>> 24;
    if (o === 0 || o === 127 || o >= 224 || v === CALICO_GATEWAY_IP) continue;
    out.push(v);
  }
  return out;
}

/** The kernel route wanted for a pool. */
export function hostRouteArgs(cidr: string, dev: string, src: number, mtu: number): string[] {
  return [
    'route',
    'replace',
    cidr,
    'via',
    '169.254.1.1',
    'dev',
    dev,
    'onlink',
    'src',
    formatIp4(src),
    'mtu',
    String(mtu),
  ];
}

/** No IPv6 on the TAP (calitap drops it; the kernel's router solicitations would only be counted). */
function quietIpv6(name: string): void {
  try {
    fs.writeFileSync(`/proc/sys/net/ipv6/conf/${name}/disable_ipv6`, '1');
  } catch {
    /* no IPv6 in this kernel, or read-only /proc/sys: harmless */
  }
}

export class HostPort {
  /** one queue fd per worker */
  readonly fds: number[] = [];
  /** the port index in the programmer's table (-1 until opened) */
  port = -1;
  mac = '';
  private addrs: number[] = [];
  private routes = new Set<string>();
  private readonly stateFile: string;
  /** the first sync (re)installs every pool's route; later ones only what changed */
  private synced = false;
  /** pools the host had a route to already (warned once) */
  private readonly foreign = new Set<string>();

  constructor(
    private readonly prog: Programmer,
    readonly name: string,
    private readonly queues: number,
    private readonly offload: boolean,
    stateFile: string,
    private readonly log: HostPortLog,
    /** sets defaultEndpointToHostAction Drop (true) / Accept (false) in the policy tables */
    private readonly setToHostDrop: (drop: boolean) => void,
  ) {
    this.stateFile = `${stateFile}.host.json`;
    try {
      const s = JSON.parse(fs.readFileSync(this.stateFile, 'utf8')) as HostState;
      if (s.name === name && Array.isArray(s.routes)) this.routes = new Set(s.routes.map(String));
    } catch {
      /* first run, or unreadable: nothing added yet as far as we know */
    }
  }

  /**
   * The host TAP opened, attached and routed (the daemon's start); null when `o.name` is false
   * (--no-host-interface), or when it fails (logged: the daemon runs without it).
   */
  static start(
    prog: Programmer,
    policy: PolicyTables,
    o: HostPortOptions,
    log: HostPortLog,
  ): HostPort | null {
    if (o.name === false) return null;
    const setDrop = (drop: boolean): void => {
      policy.endpointToHostDrop = drop;
    };
    const h = new HostPort(
      prog,
      o.name ?? DEFAULT_HOST_INTERFACE,
      o.queues,
      o.offload,
      o.stateFile,
      log,
      setDrop,
    );
    try {
      h.open();
    } catch (e) {
      log.error({ err: (e as Error).message }, 'no host interface: the host cannot reach its workloads');
      return null;
    }
    h.sync(prog.cfg);
    return h;
  }

  /** Opens (creating if needed) the TAP's queues, brings it up and attaches it to the dataplane. */
  open(): void {
    const name = this.name;
    try {
      for (let q = 0; q < this.queues; q++) {
        const fd = io.tapOpen(name, { multiQueue: true, persist: true, vnetHdr: this.offload }).fd;
        this.fds.push(fd);
        io.tapSetOffload(fd, this.offload ? { csum: true, tso4: true } : 0);
      }
      io.setTxQueueLen(name, TAP_TX_QUEUE_LEN);
      io.ifSetMtu(name, this.prog.uplink.mtu);
      io.ifSetUp(name);
      this.mac = io.ifMac(name);
      quietIpv6(name);
    } catch (e) {
      this.close();
      throw asCalitapError(e, `host interface ${name}`);
    }
    this.addrs = this.hostAddresses(this.kernelAddresses() ?? []);
    this.port = this.prog.attachHost({ name, mac: this.mac, mtu: this.prog.uplink.mtu, addrs: this.addrs });
  }

  /** Closes the queues; the TAP and its routes stay (persistent). */
  close(): void {
    for (const fd of this.fds.splice(0)) io.close(fd);
  }

  /** node IP + owned addresses + the namespace's own */
  private hostAddresses(kernel: number[]): number[] {
    const p = this.prog.env.params;
    return [...new Set([p.nodeIp >>> 0, ...p.ownedIps.map((a) => a >>> 0), ...kernel])].sort((a, b) => a - b);
  }

  /** The namespace's addresses, read with getifaddrs (no `ip` child: see poll). */
  private kernelAddresses(): number[] | null {
    try {
      return hostAddrs(io.ifAddrs4());
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'host interface: cannot list the host addresses');
      return null;
    }
  }

  /**
   * Re-reads the host's addresses (every second, from the daemon's maintenance timer); calls
   * `changed` after the port table changed, for the daemon to hand it to the workers. It reads them
   * in-process (getifaddrs, microseconds): running `ip -j addr` forked the daemon every second, and
   * each fork of a process this size copied its page tables and made every worker take copy-on-write
   * faults and TLB shootdowns afterwards (same-host TCP: ~15 % more CPU per byte, docs/live.md).
   */
  poll(changed: () => void): void {
    if (this.port < 0) return;
    const kernel = this.kernelAddresses();
    if (kernel === null) return;
    const next = this.hostAddresses(kernel);
    if (JSON.stringify(next) === JSON.stringify(this.addrs)) return;
    this.addrs = next;
    try {
      this.prog.attachHost({ name: this.name, mac: this.mac, mtu: this.prog.uplink.mtu, addrs: next });
      this.log.info({ addresses: next.map(formatIp4) }, 'host addresses changed');
      changed();
    } catch (e) {
      this.log.error({ err: (e as Error).message }, 'host addresses: cannot route them');
    }
  }

  /**
   * Brings the kernel's pool routes and defaultEndpointToHostAction in line with `cfg` (start, file
   * reload, datastore change). Failures are logged; the rest goes on.
   */
  sync(cfg: ClusterConfig): void {
    const felix = felixFor(cfg, this.prog.nodeName);
    this.setToHostDrop(felix.defaultEndpointToHostAction === 'Drop');
    if (this.port < 0) return;
    const want = new Set(cfg.pools.map((p) => formatPrefix4(p.cidr)));
    const src = this.prog.env.params.nodeIp;
    for (const cidr of [...this.routes]) {
      if (want.has(cidr)) continue;
      try {
        if (this.ours(cidr)) ip(['route', 'del', cidr, 'dev', this.name]);
        this.log.info({ cidr, dev: this.name }, 'host route removed (pool gone)');
      } catch (e) {
        this.log.warn({ cidr, err: (e as Error).message }, 'host route: cannot remove it');
      }
      this.routes.delete(cidr);
    }
    for (const cidr of want) {
      if (this.synced && this.routes.has(cidr)) continue;
      try {
        if (!this.routes.has(cidr) && this.present(cidr)) {
          if (!this.foreign.has(cidr))
            this.log.warn({ cidr }, 'host route: the host has a route to this pool already; leaving it');
          this.foreign.add(cidr);
          continue;
        }
        this.foreign.delete(cidr);
        const args = hostRouteArgs(cidr, this.name, src, this.prog.workloadMtu);
        try {
          ip(args);
        } catch (e) {
          // the node IP is not an address of this namespace (e.g. --uplink udp on another one): the
          // kernel picks the source itself
          ip(args.filter((_, k) => k < 8 || k > 9));
          this.log.warn({ cidr, err: (e as Error).message }, 'host route: installed without src');
        }
        this.routes.add(cidr);
      } catch (e) {
        this.log.error({ cidr, err: (e as Error).message }, 'host route: cannot install it');
      }
    }
    this.synced = true;
    this.save();
  }

  /** The main table's route for exactly `cidr`, if any, as `ip -j route show` gives it. */
  private lookup(cidr: string): { dev?: string } | undefined {
    const rows = JSON.parse(ip(['-j', 'route', 'show', 'exact', cidr]) || '[]') as { dev?: string }[];
    return rows[0];
  }

  private present(cidr: string): boolean {
    const r = this.lookup(cidr);
    return r !== undefined && r.dev !== this.name;
  }

  private ours(cidr: string): boolean {
    return this.lookup(cidr)?.dev === this.name;
  }

  private save(): void {
    try {
      const tmp = `${this.stateFile}.tmp`;
      const s: HostState = { name: this.name, routes: [...this.routes].sort() };
      fs.writeFileSync(tmp, JSON.stringify(s));
      fs.renameSync(tmp, this.stateFile);
    } catch (e) {
      this.log.warn({ file: this.stateFile, err: (e as Error).message }, 'host routes: cannot save state');
    }
  }
}
