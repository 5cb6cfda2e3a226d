// Programs a dataplane from the cluster configuration for one node: the port table (uplink + the
// node's workloads), the FIB with its adjacencies, the neighbour table (static entries and every
// uplink next hop), and the graph parameters. Runs on the control (main) thread; the tables it
// creates (one `TableSet`) are SharedArrayBuffers that workers attach to. Routes can be added and
// withdrawn later (BGP) through `Programmer.install` / `withdraw`.
//
// Table lifecycle (tables/qsbr.ts): a route holds one reference on its adjacency and one on its
// neighbour (next hop). `install` takes the new references, publishes (FIB insert), then drops the old
// route's; `withdraw` unpublishes, then drops. Entries whose last reference goes are reused only after
// every worker passed a quiescent point. A table that is full refuses the route (counted, see
// `counters()`); the refused route is kept and `maintain()` installs it as soon as room is reclaimed.
import { Lpm4FullError } from '../../dataplane/tables/lpm.js';
import type { AdjSpec } from '../../dataplane/tables/adjacency.js';
import { TableSet, type TableCounterRow } from '../../dataplane/tables/set.js';
import type { NatTableOptions } from '../../dataplane/tables/nat/table.js';
import { PortTable, type PortSpec, PORT_UPLINK } from '../../dataplane/graph/ports.js';
import { DEFAULT_PARAMS, type DataplaneEnv, type DataplaneParams } from '../../dataplane/graph/env.js';
import { formatIp4, formatPrefix4, maskOf, parseMac, prefixCovers, type Prefix4 } from '../../common/addr.js';
import { CalitapError, ConfigError } from '../../common/errors.js';
import type { ClusterConfig, Uplink } from '../config/types.js';
import { compileRoutes, felixFor, localNode, tunnelMtu, type RouteSpec } from '../config/compile.js';
import { UDP_NEIGHBOR_MAC } from '../../dataplane/devices/udp-mode.js';
import { randomInt } from 'node:crypto';
import { PolicyProgrammer } from '../policy/programmer.js';

export interface RouteRow {
  prefix: string;
  nextHop: string | null;
  via: RouteSpec['via'];
  port: string | null;
  /** the CLI contract's sources (ARCHITECTURE.md section 2); the host's /32s show as `config` */
  source: Exclude<RouteSpec['source'], 'host'>;
}

export interface ProgrammerOptions {
  tbl8Groups?: number;
  /** seed of NAT port allocation (replay: --seed, reproducible); absent: random (the live daemon) */
  natSeed?: number;
  natCapacity?: number;
  /**
   * Called with the NAT table's new memory before it is filled (NatTableOptions.advise): the daemon
   * passes the native `adviseHugePages` (this module stays free of native code, as replay needs).
   */
  natAdvise?: (sab: SharedArrayBuffer) => void;
  /** neighbour (next hop) entries; default 16 384 (Calico clusters reach 5 000 nodes) */
  neighborCapacity?: number;
  /** adjacency entries; default 65 536 */
  adjacencyCapacity?: number;
  /** the uplink's real MAC (live dataplane: read from the interface) */
  uplinkMac?: string;
  /** include the config's WorkloadEndpoints as ports (replay: yes; the live daemon attaches its own) */
  configEndpoints?: boolean;
  /** port slots to provide for (live: MAX_PORTS, so indices stay stable) */
  portSlots?: number;
  /** route other nodes' blocks from the config's affinities (default); false when BGP brings them */
  remoteBlocksFromConfig?: boolean;
  /**
   * The uplink has L2 (default): next hops are resolved by ARP. false (`--uplink udp`): there is no
   * L2 and no ARP, so every uplink next hop gets a static neighbour entry with the placeholder MAC
   * UDP_NEIGHBOR_MAC (02:00:00:00:00:00) and ip4-rewrite goes straight on to vxlan4-encap; the
   * outer Ethernet header it lands in is stripped before the datagram leaves.
   */
  uplinkL2?: boolean;
}

/** The host TAP as the live daemon attaches it (daemon/host-port.ts). */
export interface HostPortSpec {
  name: string;
  /** the TAP's kernel-side MAC (frames to the host go to it) */
  mac: string;
  mtu: number;
  /** the host's addresses: routed to the port (/32) and its allowed sources */
  addrs: number[];
}

/** A workload port as the live daemon attaches it. */
export interface WorkloadPort {
  name: string;
  ip: number;
  mac: string;
}

interface Installed {
  spec: RouteSpec;
  adj: number;
  /** neighbour entry referenced (-1: none) */
  nbr: number;
}

/** DataplaneParams.pools of a configuration (the NAT nodes' pool rule). */
export function poolParams(cfg: ClusterConfig): DataplaneParams['pools'] {
  return cfg.pools.map((p) => ({ addr: p.cidr.addr, mask: maskOf(p.cidr.len), natOutgoing: p.natOutgoing }));
}

/** Does the configuration need a NAT table (some pool has natOutgoing)? */
function natNeeded(cfg: ClusterConfig): boolean {
  return cfg.pools.some((p) => p.natOutgoing);
}

function natTableOptions(cfg: ClusterConfig, nodeName: string, opts: ProgrammerOptions): NatTableOptions {
  const felix = felixFor(cfg, nodeName);
  const nodeIp = localNode(cfg, nodeName).bgpAddress?.ip ?? 0;
  return {
    capacity: opts.natCapacity ?? 65536,
    natIps: [felix.natOutgoingAddress ?? nodeIp],
    portLo: felix.natPortRange?.[0],
    portHi: felix.natPortRange?.[1],
    reservedPorts: [...new Set([4789, felix.vxlanPort])],
    // replay passes a seed: ports and bucket hashing are then reproducible. Live (no seed): both
    // random, so NAT ports are unpredictable (RFC 6056) and flows cannot be aimed at one chain.
    seed: opts.natSeed ?? randomInt(0x7fffffff),
    hashKey: opts.natSeed === undefined ? undefined : 0x5eed,
    advise: opts.natAdvise,
  };
}

export class Programmer {
  readonly env: DataplaneEnv;
  readonly warnings: string[];
  readonly uplink: Uplink;
  private readonly routes = new Map<string, Installed>();
  /** routes a full table refused, by prefix: retried by maintain() */
  private readonly refused = new Map<string, RouteSpec>();
  private refusedCount = 0;
  private fibFullCount = 0;
  /** the shared tables (env.fib/adj/nbr/nat are its members) */
  readonly tables: TableSet;
  readonly workloadMtu: number;
  /** port slots (index = port number); null = free */
  readonly specs: (PortSpec | null)[];
  /** see ProgrammerOptions.uplinkL2 */
  private readonly uplinkL2: boolean;
  /** the options a NAT table created later (ensureNat) is made with */
  private readonly natOpts: ProgrammerOptions;
  /** the SNAT addresses of the NAT table, fixed when it is created (empty: no table yet) */
  natIps: number[] = [];
  /** network policy (control/policy/programmer.ts); null when the config has none */
  readonly policy: PolicyProgrammer | null;

  /** the configuration routes are resolved against; replaced by setConfig() on live changes */
  get cfg(): ClusterConfig {
    return this.config;
  }

  private config: ClusterConfig;

  constructor(
    cfg: ClusterConfig,
    readonly nodeName: string,
    opts: ProgrammerOptions = {},
  ) {
    this.config = cfg;
    const me = localNode(cfg, nodeName);
    const uplink = cfg.uplinks.get(nodeName);
    if (!uplink) {
      throw new ConfigError(
        `${cfg.source}: Uplink ${nodeName}: missing: a calitap/v1 Uplink named after the node is required`,
      );
    }
    if (!me.bgpAddress) {
      throw new ConfigError(
        `${cfg.source}: Node ${nodeName}: spec.bgp.ipv4Address: missing: the node needs an IPv4 address`,
      );
    }
    this.uplink = uplink;
    this.uplinkL2 = opts.uplinkL2 !== false;
    const felix = felixFor(cfg, nodeName);
    // Felix's MTU auto-detection: workloads get the smallest MTU any enabled encapsulation needs.
    const usesIpip = cfg.pools.some((p) => p.ipipMode !== 'Never');
    const usesVxlan = cfg.pools.some((p) => p.vxlanMode !== 'Never');
    let wmtu = uplink.mtu;
    if (usesIpip) wmtu = Math.min(wmtu, tunnelMtu(cfg, uplink.mtu, 'ipip', nodeName));
    if (usesVxlan) wmtu = Math.min(wmtu, tunnelMtu(cfg, uplink.mtu, 'vxlan', nodeName));
    this.workloadMtu = wmtu;

    const specs: (PortSpec | null)[] = [
      { name: uplink.interfaceName, kind: 'uplink', mac: opts.uplinkMac ?? uplink.mac, mtu: uplink.mtu },
    ];
    if (opts.configEndpoints !== false) {
      for (const ep of cfg.endpoints) {
        if (ep.node !== nodeName) continue;
        specs.push({
          name: ep.interfaceName,
          kind: 'workload',
          peerMac: ep.mac,
          ips: ep.ipNetworks,
          mtu: wmtu,
        });
      }
    }
    while (specs.length < (opts.portSlots ?? 0)) specs.push(null);
    this.specs = specs;
    const ports = new PortTable(specs);
    const ownedIps: number[] = [];
    if (felix.natOutgoingAddress !== undefined && felix.natOutgoingAddress !== me.bgpAddress.ip) {
      ownedIps.push(felix.natOutgoingAddress);
    }
    const tunnelPeers: number[] = [];
    for (const n of cfg.nodes.values())
      if (n.name !== nodeName && n.bgpAddress) tunnelPeers.push(n.bgpAddress.ip);
    const params: DataplaneParams = {
      ...DEFAULT_PARAMS,
      nodeIp: me.bgpAddress.ip,
      ownedIps,
      tunnelPeers,
      vxlanPort: felix.vxlanPort,
      vxlanVni: felix.vxlanVNI,
      vtepMac: parseMac(me.vxlanTunnelMac)!,
    };
    params.pools = poolParams(cfg);
    this.natOpts = opts;
    const tables = TableSet.create({
      tbl8Groups: opts.tbl8Groups,
      neighborCapacity: opts.neighborCapacity,
      adjacencyCapacity: opts.adjacencyCapacity,
      nat: natNeeded(cfg) ? this.natTableOptions(cfg, nodeName, opts) : null,
    });
    this.tables = tables;
    for (const n of uplink.neighbors) tables.nbr.setStatic(n.ip, parseMac(n.mac)!);
    this.env = {
      ports,
      fib: tables.fib,
      adj: tables.adj,
      nbr: tables.nbr,
      params,
      nat: tables.nat,
      // present from the start (set by PolicyProgrammer.attach when the config has policy): every
      // env then has one shape, so the per-packet `env.ports` loads stay monomorphic in V8
      policy: undefined,
    };
    const compiled = compileRoutes(cfg, nodeName);
    this.warnings = compiled.warnings;
    for (const r of compiled.routes) {
      if (opts.remoteBlocksFromConfig === false && r.node !== undefined && r.node !== nodeName) continue;
      this.install(r);
    }
    this.policy = PolicyProgrammer.attach(cfg, nodeName, this.env, {
      seed: opts.natSeed ?? randomInt(0x7fffffff),
    });
  }

  /**
   * Swaps the configuration later installs resolve against (pools for NAT exclusion, tunnel MTUs,
   * the BGP glue's lookups). Installed routes are untouched: the caller installs and withdraws the
   * difference (datastore watch, file reload).
   */
  setConfig(cfg: ClusterConfig): void {
    this.config = cfg;
  }

  /**
   * Live: creates the shared NAT table when `cfg` has the first natOutgoing pool (sized and seeded as
   * at start, SNAT address from the FelixConfiguration of the moment) and sets env.nat. True when it
   * created one: the caller hands it to the workers (`params` message).
   */
  ensureNat(cfg: ClusterConfig): boolean {
    if (this.tables.nat !== null || !natNeeded(cfg)) return false;
    this.env.nat = this.tables.createNat(this.natTableOptions(cfg, this.nodeName, this.natOpts));
    return true;
  }

  private natTableOptions(cfg: ClusterConfig, nodeName: string, opts: ProgrammerOptions): NatTableOptions {
    const o = natTableOptions(cfg, nodeName, opts);
    this.natIps = o.natIps;
    return o;
  }

  /**
   * Attaches a workload port in the first free slot and routes its /32 to it. Returns the port index.
   * The caller hands the new port table (`env.ports`) to the workers.
   */
  attachWorkload(w: WorkloadPort): number {
    let p = this.specs.indexOf(null, 1);
    if (p < 0) {
      p = this.specs.length;
      this.specs.push(null);
    }
    if (this.env.ports.index(w.name) !== undefined)
      throw new CalitapError('workload-exists', `workload port ${w.name} already attached`);
    this.specs[p] = {
      name: w.name,
      kind: 'workload',
      peerMac: w.mac,
      ips: [{ addr: w.ip, len: 32 }],
      mtu: this.workloadMtu,
    };
    this.env.ports = new PortTable(this.specs);
    this.install({
      prefix: { addr: w.ip, len: 32 },
      via: 'local',
      source: 'workload',
      port: w.name,
      mac: w.mac,
    });
    return p;
  }

  /**
   * Attaches the host TAP in the first free slot (or updates it: same name) and routes the host's
   * addresses to it as /32s (an address another route holds exactly, e.g. a workload's, is left
   * alone). Returns the port index; the caller hands the new port table to the workers.
   */
  attachHost(h: HostPortSpec): number {
    let p = this.env.ports.index(h.name) ?? -1;
    if (p < 0) {
      if (this.env.ports.host >= 0) throw new Error(`host port ${h.name}: another host port is attached`);
      p = this.specs.indexOf(null, 1);
      if (p < 0) {
        p = this.specs.length;
        this.specs.push(null);
      }
    }
    const addrs = [...new Set(h.addrs)].sort((a, b) => a - b);
    const old = this.specs[p]?.ips ?? [];
    this.specs[p] = {
      name: h.name,
      kind: 'host',
      peerMac: h.mac,
      ips: addrs.map((addr) => ({ addr, len: 32 })),
      mtu: h.mtu,
    };
    this.env.ports = new PortTable(this.specs);
    const want = new Set(addrs);
    for (const ip of old) if (!want.has(ip.addr) && this.route(ip)?.source === 'host') this.withdraw(ip);
    for (const addr of addrs) {
      const prefix = { addr, len: 32 };
      const cur = this.route(prefix);
      if (cur !== undefined && (cur.source !== 'host' || cur.mac === h.mac)) continue;
      this.install({ prefix, via: 'local', source: 'host', port: h.name, mac: h.mac });
    }
    return p;
  }

  /** Detaches a workload port and withdraws its routes. Returns its former index, or -1. */
  detachWorkload(name: string): number {
    const p = this.env.ports.index(name);
    if (p === undefined || p === PORT_UPLINK) return -1;
    for (const ip of this.specs[p]?.ips ?? []) this.withdraw(ip);
    this.specs[p] = null;
    this.env.ports = new PortTable(this.specs);
    return p;
  }

  /**
   * Adds or replaces the route for r.prefix. A full table (neighbours, adjacencies, FIB tbl8 groups)
   * refuses it: the error is thrown, counted, nothing changes (a replaced route stays), and a learned
   * (bgp) route is kept for `maintain()` to install once room is reclaimed (until withdrawn or replaced).
   */
  install(r: RouteSpec): void {
    const key = formatPrefix4(r.prefix);
    const { adj, nbr } = this.tables;
    let nb = -1;
    let a = -1;
    try {
      const s = this.adjSpec(r);
      nb = s.neighbor;
      a = adj.acquire(s);
      this.env.fib.insert(r.prefix.addr, r.prefix.len, a); // publish
    } catch (e) {
      if (a >= 0) adj.release(a);
      if (nb >= 0) nbr.release(nb);
      if (e instanceof Lpm4FullError) this.fibFullCount++;
      if (isTableFull(e)) {
        this.refusedCount++;
        if (r.source === 'bgp') this.refused.set(key, r); // nobody re-sends a learned route: retry it
      }
      throw e;
    }
    this.refused.delete(key);
    const old = this.routes.get(key);
    this.routes.set(key, { spec: r, adj: a, nbr: nb });
    if (old) this.dropRefs(old);
  }

  /** Removes the route for `prefix` (if any; also forgets it if it was waiting after a refusal). */
  withdraw(prefix: Prefix4): boolean {
    const key = formatPrefix4(prefix);
    const waiting = this.refused.delete(key);
    const old = this.routes.get(key);
    if (!old) return waiting;
    this.env.fib.remove(prefix.addr, prefix.len); // unpublish
    this.routes.delete(key);
    this.dropRefs(old);
    return true;
  }

  private dropRefs(r: Installed): void {
    this.tables.adj.release(r.adj);
    if (r.nbr >= 0) this.tables.nbr.release(r.nbr);
  }

  /**
   * Periodic control-thread work (the daemon calls it about once a second): reclaims what readers
   * released, repairs neighbour entries a dead writer left locked, sweeps the NAT table (`natNow`: its
   * clock, whole seconds) and installs refused routes that fit now. Returns how many it installed.
   */
  maintain(natNow?: number): number {
    this.tables.maintain(natNow);
    let n = 0;
    for (const [key, r] of [...this.refused]) {
      try {
        this.install(r);
        n++;
      } catch (e) {
        if (!isTableFull(e)) {
          this.refused.delete(key); // cannot be installed for another reason: give up on it
          continue;
        }
        this.refusedCount--; // the retry is not a new refusal
        break; // still full: the rest waits too
      }
    }
    return n;
  }

  /** Routes refused by a full table and not installed yet. */
  get waitingRoutes(): number {
    return this.refused.size;
  }

  /** Control-side counters for `calitap stats`: table refusals and repairs (non-zero rows). */
  counters(): TableCounterRow[] {
    const rows = this.tables.counters();
    if (this.fibFullCount > 0) rows.push({ node: 'fib', reason: 'tbl8-full', count: this.fibFullCount });
    if (this.refusedCount > 0) rows.push({ node: 'route', reason: 'refused', count: this.refusedCount });
    if (this.refused.size > 0) rows.push({ node: 'route', reason: 'waiting', count: this.refused.size });
    return rows;
  }

  /** The installed route for exactly this prefix, if any. */
  route(prefix: Prefix4): RouteSpec | undefined {
    return this.routes.get(formatPrefix4(prefix))?.spec;
  }

  /** The FIB as `calitap routes` shows it. */
  table(): RouteRow[] {
    return [...this.routes.values()]
      .map(({ spec }) => ({
        prefix: formatPrefix4(spec.prefix),
        nextHop: spec.nextHop === undefined ? null : formatIp4(spec.nextHop),
        via: spec.via,
        port: spec.port ?? null,
        // the host's addresses are the node's own (config, or the host's interfaces): `calitap
        // routes` keeps to the documented sources; they are the rows on the host port
        source: spec.source === 'host' ? 'config' : spec.source,
      }))
      .sort((a, b) => cmpPrefix(a.prefix, b.prefix));
  }

  /** The adjacency for r; for an uplink route this takes a reference on the next hop's neighbour. */
  private adjSpec(r: RouteSpec): AdjSpec {
    const ports = this.env.ports;
    const where = `${this.cfg.source}: route ${formatPrefix4(r.prefix)}`;
    if (r.via === 'blackhole')
      return { kind: 'blackhole', port: PORT_UPLINK, nextHop: 0, neighbor: -1, mtu: 0 };
    if (r.via === 'local') {
      const p = r.port === undefined ? undefined : ports.index(r.port);
      if (p === undefined) throw new ConfigError(`${where}: port ${r.port}: unknown port`);
      return {
        kind: 'local',
        port: p,
        nextHop: 0,
        neighbor: -1,
        mac: parseMac(r.mac ?? '') ?? undefined,
        mtu: ports.mtu[p],
      };
    }
    const inPool = this.cfg.pools.some((p) => prefixCovers(p.cidr, r.prefix));
    const hop = r.linkNextHop ?? r.nextHop;
    if (hop === undefined) throw new ConfigError(`${where}: no next hop`);
    const mtu =
      r.via === 'ipip' || r.via === 'vxlan'
        ? tunnelMtu(this.cfg, this.uplink.mtu, r.via, this.nodeName)
        : this.uplink.mtu;
    const mac = r.via === 'vxlan' ? (parseMac(r.mac ?? '') ?? undefined) : undefined;
    const nbr = this.tables.nbr;
    const neighbor = nbr.acquire(hop); // last: nothing below throws
    if (!this.uplinkL2 && !nbr.resolved(neighbor)) nbr.makeStatic(neighbor, parseMac(UDP_NEIGHBOR_MAC)!);
    return {
      kind: r.via,
      port: PORT_UPLINK,
      nextHop: r.nextHop ?? hop,
      neighbor,
      mac,
      mtu,
      inPool,
    };
  }
}

function isTableFull(e: unknown): boolean {
  return e instanceof Lpm4FullError || (e instanceof CalitapError && e.code.endsWith('-table-full'));
}

function cmpPrefix(a: string, b: string): number {
  const [aa, al] = a.split('/');
  const [ba, bl] = b.split('/');
  const an = aa.split('.').reduce((x, o) => x * 256 + Number(o), 0);
  const bn = ba.split('.').reduce((x, o) => x * 256 + Number(o), 0);
  return an - bn || Number(al) - Number(bl);
}
