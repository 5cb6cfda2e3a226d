// Live reprogramming: a new ClusterConfig (from a datastore watch or a file reload) is compiled and
// only the difference reaches the dataplane — routes withdrawn, added or replaced one prefix at a time
// (a replaced prefix swaps its adjacency atomically, so flows the change does not touch never miss a
// packet), BGP exports and mesh peers added or removed, learned routes re-resolved (a pool's
// encapsulation mode applies to them too). Changed DataplaneParams (tunnel peers, pools, owned
// addresses, VXLAN port / VNI / VTEP MAC) and the NAT table the first natOutgoing pool needs are handed
// to the running workers in a `params` message (applied between two batches: nothing is restarted,
// nothing queued is lost). Workload /32s belong to the WorkloadManager and the host's /32s to the
// HostPort: never touched here. Control thread.
import type { Logger } from 'pino';
import { formatIp4, formatPrefix4, parseMac } from '../../common/addr.js';
import { compileRoutes, felixFor, localNode, type RouteSpec } from '../config/compile.js';
import type { ClusterConfig } from '../config/types.js';
import { exportedBlocks, learnedRoute, speakerOptions, type BgpGlue } from './bgp-glue.js';
import { poolParams, type Programmer } from './program.js';
import type { DataplaneParams } from '../../dataplane/graph/env.js';

export interface ReprogramHooks {
  /** BGP glue when the speaker runs */
  bgp: BgpGlue | null;
  /** hands prog.env.params (and a NAT table created since) to the running workers, live */
  publishParams: (why: string) => void;
  log: Logger;
}

export interface ReprogramResult {
  added: number;
  removed: number;
  replaced: number;
  /** what changed in DataplaneParams (handed to the workers live); empty when nothing did */
  params: string[];
}

function same(a: RouteSpec, b: RouteSpec): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class Reprogrammer {
  /** the config-derived routes this object answers for, by prefix */
  private installed = new Map<string, RouteSpec>();
  private readonly node: string;

  constructor(
    private readonly prog: Programmer,
    private readonly hooks: ReprogramHooks,
    /** false when BGP brings other nodes' blocks (only borrowed /32s come from the config then) */
    private readonly remoteBlocksFromConfig: boolean,
  ) {
    this.node = prog.nodeName;
    for (const r of this.compile(prog.cfg))
      if (prog.route(r.prefix) !== undefined) this.installed.set(formatPrefix4(r.prefix), r);
  }

  /** The config routes this node installs (workload /32s excluded: the WorkloadManager owns those). */
  private compile(cfg: ClusterConfig): RouteSpec[] {
    const blocks = new Set(cfg.affinities.map((a) => formatPrefix4(a.cidr)));
    return compileRoutes(cfg, this.node).routes.filter((r) => {
      if (r.via === 'local') return false;
      const remote = r.node !== undefined && r.node !== this.node;
      return !remote || this.remoteBlocksFromConfig || !blocks.has(formatPrefix4(r.prefix));
    });
  }

  /** Fills what the datastore does not hold: this node's uplink (from the kernel at start). */
  private complete(cfg: ClusterConfig): ClusterConfig {
    if (!cfg.uplinks.has(this.node)) cfg.uplinks.set(this.node, this.prog.uplink);
    cfg.endpoints = cfg.endpoints.filter((e) => e.node !== this.node);
    return cfg;
  }

  apply(input: ClusterConfig): ReprogramResult {
    const res: ReprogramResult = { added: 0, removed: 0, replaced: 0, params: [] };
    const cfg = this.complete(input);
    const me = cfg.nodes.get(this.node);
    if (me?.bgpAddress === undefined) {
      this.hooks.log.warn(
        { node: this.node },
        'this node is missing from the datastore (or has no spec.bgp.ipv4Address): keeping the dataplane as it is',
      );
      return res;
    }
    const old = this.prog.cfg;
    const routes = this.compile(cfg);
    this.prog.setConfig(cfg);
    const next = new Map(routes.map((r) => [formatPrefix4(r.prefix), r]));
    for (const [k, r] of this.installed) {
      if (next.has(k)) continue;
      const cur = this.prog.route(r.prefix);
      if (cur !== undefined && cur.source !== 'workload' && cur.source !== 'bgp' && cur.source !== 'host') {
        this.prog.withdraw(r.prefix);
        res.removed++;
      }
    }
    for (const [k, r] of next) {
      const prev = this.installed.get(k);
      const cur = this.prog.route(r.prefix);
      if (cur?.source === 'workload' || cur?.source === 'host') continue;
      if (prev !== undefined && same(prev, r) && cur !== undefined) continue;
      try {
        this.prog.install(r);
        if (prev === undefined) res.added++;
        else res.replaced++;
      } catch (e) {
        this.hooks.log.error({ prefix: k, err: (e as Error).message }, 'cannot install route');
        next.delete(k);
      }
    }
    this.installed = next;
    this.syncBgp(old, cfg);
    res.params = this.syncParams(cfg);
    return res;
  }

  private syncBgp(old: ClusterConfig, cfg: ClusterConfig): void {
    const bgp = this.hooks.bgp;
    if (bgp === null) return;
    const sp = bgp.speaker;
    const had = new Set(exportedBlocks(old, this.node).map(formatPrefix4));
    const has = new Set(exportedBlocks(cfg, this.node).map(formatPrefix4));
    for (const b of has) if (!had.has(b)) sp.originate(b);
    for (const b of had) if (!has.has(b)) sp.withdraw(b);
    const before = new Map(speakerOptions(old, this.node).peers.map((p) => [p.peerAddress, p]));
    const after = new Map(speakerOptions(cfg, this.node).peers.map((p) => [p.peerAddress, p]));
    for (const [a, p] of after) {
      const o = before.get(a);
      if (o !== undefined && JSON.stringify(o) === JSON.stringify(p)) continue;
      if (o !== undefined) sp.removePeer(a);
      sp.addPeer(p);
      this.hooks.log.info({ peer: a, description: p.description }, 'bgp peer added');
    }
    for (const a of before.keys())
      if (!after.has(a)) {
        sp.removePeer(a);
        this.hooks.log.info({ peer: a }, 'bgp peer removed');
      }
    // learned routes follow the pools' modes and the nodes' addresses
    const warnings: string[] = [];
    for (const best of sp.routes()) {
      const cur = this.prog.route(best.prefix);
      if (cur !== undefined && cur.source !== 'bgp') continue;
      const r = learnedRoute(cfg, this.node, best, warnings);
      if (r === undefined) continue;
      if (cur !== undefined && same(cur, r)) continue;
      try {
        this.prog.install(r);
      } catch (e) {
        this.hooks.log.error(
          { prefix: formatPrefix4(best.prefix), err: (e as Error).message },
          'cannot install bgp route',
        );
      }
    }
  }

  /**
   * Updates DataplaneParams from cfg and hands them to the workers when something changed (with the
   * NAT table when the first natOutgoing pool appeared). Returns the names of what changed. The
   * node's own address is not changed live (the uplink sockets and the NAT table are bound to it).
   */
  private syncParams(cfg: ClusterConfig): string[] {
    const p = this.prog.env.params;
    const me = localNode(cfg, this.node);
    const felix = felixFor(cfg, this.node);
    // the NAT table's SNAT address stays ours while the table exists (its flows use it)
    const want = felix.natOutgoingAddress ?? p.nodeIp;
    if (this.prog.natIps.length > 0 && !this.prog.natIps.includes(want))
      this.hooks.log.warn(
        { snat: this.prog.natIps.map(formatIp4), wanted: formatIp4(want) },
        'natOutgoingAddress changed: the NAT table keeps its address; restart calitap to use the new one',
      );
    const owned = [...new Set([want, ...this.prog.natIps])].filter((a) => a !== p.nodeIp);
    const next: DataplaneParams = {
      ...p,
      tunnelPeers: [...cfg.nodes.values()]
        .filter((n) => n.name !== this.node && n.bgpAddress !== undefined)
        .map((n) => n.bgpAddress!.ip)
        .sort((a, b) => a - b),
      pools: poolParams(cfg),
      ownedIps: owned,
      vxlanPort: felix.vxlanPort,
      vxlanVni: felix.vxlanVNI,
      vtepMac: parseMac(me.vxlanTunnelMac) ?? p.vtepMac,
    };
    const sorted = (a: number[]) => JSON.stringify([...a].sort((x, y) => x - y));
    const changed: string[] = [];
    if (sorted(p.tunnelPeers) !== sorted(next.tunnelPeers)) changed.push('tunnelPeers');
    if (JSON.stringify(p.pools) !== JSON.stringify(next.pools)) changed.push('pools');
    if (sorted(p.ownedIps) !== sorted(next.ownedIps)) changed.push('ownedIps');
    if (p.vxlanPort !== next.vxlanPort) changed.push('vxlanPort');
    if (p.vxlanVni !== next.vxlanVni) changed.push('vxlanVni');
    if (p.vtepMac.join() !== next.vtepMac.join()) changed.push('vtepMac');
    if (me.bgpAddress !== undefined && me.bgpAddress.ip !== p.nodeIp)
      this.hooks.log.warn(
        { was: formatIp4(p.nodeIp), now: formatIp4(me.bgpAddress.ip) },
        'this node\u2019s address changed in the datastore: restart calitap to use it',
      );
    if (this.prog.ensureNat(cfg)) changed.push('nat');
    if (changed.length === 0) return changed;
    this.prog.env.params = next;
    this.hooks.publishParams(changed.join(', '));
    return changed;
  }
}
