// Connects the BGP speaker to Calico's configuration and to the FIB, as calico-node's BIRD does:
//  - peers: the node-to-node mesh (every other Node with an IPv4 address, when
//    nodeToNodeMeshEnabled) plus every BGPPeer that applies to this node; for a mesh peer with the
//    greater IP we are passive (Calico's rule, so only one side dials);
//  - export: every confirmed local affine block whose pool does not set disableBGPExport, next hop
//    our node IP (ORIGIN IGP, LOCAL_PREF 100 — the speaker's defaults for originated routes);
//  - import: a learned prefix inside a pool becomes a route to the node that owns the next hop,
//    encapsulated per that pool's mode (the same decision as config-derived routes); a prefix outside
//    every pool becomes a plain route via the next hop. Withdrawals remove the route. Our own blocks
//    and workloads are never replaced by learned routes.
// A route refused by a full table (neighbours, adjacencies, FIB) is counted by the Programmer and
// installed by its `maintain()` once room is reclaimed.
// Runs on the daemon's main thread.
import type { Logger } from 'pino';
import {
  formatIp4,
  formatPrefix4,
  maskOf,
  prefixContains,
  prefixCovers,
  type Prefix4,
} from '../../common/addr.js';
import type { ClusterConfig } from '../config/types.js';
import {
  localNode,
  nodeAsNumber,
  peersForNode,
  poolFor,
  routeToNode,
  type RouteSpec,
} from '../config/compile.js';
import type { Programmer } from './program.js';
import { BgpSpeaker, type BgpSpeakerOptions, type PeerOptions } from '../bgp/speaker.js';
import type { BestRoute } from '../bgp/rib.js';
import type { BgpHost, PeerStatusRow } from './bgp-host.js';

/** The speaker's options for `nodeName` from the Calico resources. */
export function speakerOptions(cfg: ClusterConfig, nodeName: string): BgpSpeakerOptions {
  const me = localNode(cfg, nodeName);
  if (!me.bgpAddress) throw new Error(`Node ${nodeName}: spec.bgp.ipv4Address is needed for BGP`);
  const myIp = me.bgpAddress.ip;
  const peers: PeerOptions[] = [];
  const seen = new Set<number>();
  if (cfg.bgp.nodeToNodeMeshEnabled) {
    for (const n of cfg.nodes.values()) {
      if (n.name === nodeName || !n.bgpAddress || n.bgpAddress.ip === myIp) continue;
      seen.add(n.bgpAddress.ip);
      peers.push({
        peerAddress: formatIp4(n.bgpAddress.ip),
        asNumber: nodeAsNumber(cfg, n.name),
        peerType: 'node-to-node mesh',
        passive: n.bgpAddress.ip > myIp,
        port: cfg.bgp.listenPort,
        description: n.name,
      });
    }
  }
  for (const p of peersForNode(cfg, nodeName)) {
    if (seen.has(p.peerIP) || p.peerIP === myIp) continue;
    seen.add(p.peerIP);
    peers.push({
      peerAddress: formatIp4(p.peerIP),
      asNumber: p.asNumber,
      peerType: p.node === undefined ? 'global' : 'node specific',
      port: p.peerPort,
      description: p.name,
    });
  }
  return {
    routerId: formatIp4(myIp),
    localAs: nodeAsNumber(cfg, nodeName),
    listenAddress: formatIp4(myIp),
    listenPort: cfg.bgp.listenPort,
    nextHop: formatIp4(myIp),
    clusterId: me.routeReflectorClusterID === undefined ? undefined : formatIp4(me.routeReflectorClusterID),
    peers,
  };
}

/** Blocks this node announces. */
export function exportedBlocks(cfg: ClusterConfig, nodeName: string): Prefix4[] {
  return cfg.affinities
    .filter((a) => a.node === nodeName && a.state === 'confirmed' && !a.deleted)
    .filter((a) => !(poolFor(cfg, a.cidr.addr)?.disableBGPExport ?? false))
    .map((a) => a.cidr);
}

/** The FIB route for a learned best path, or undefined when we must not install it. */
export function learnedRoute(
  cfg: ClusterConfig,
  nodeName: string,
  best: BestRoute,
  warnings: string[],
): RouteSpec | undefined {
  const prefix = best.prefix;
  const me = localNode(cfg, nodeName);
  const uplink = cfg.uplinks.get(nodeName);
  // never shadow our own blocks
  for (const a of cfg.affinities) {
    if (
      a.node === nodeName &&
      a.state === 'confirmed' &&
      prefixCovers(prefix, a.cidr) &&
      prefixCovers(a.cidr, prefix)
    )
      return undefined;
  }
  if (poolFor(cfg, prefix.addr) !== undefined) {
    const owner = [...cfg.nodes.values()].find((n) => n.bgpAddress?.ip === best.nextHop);
    if (owner && owner.name !== nodeName) {
      const r = routeToNode(cfg, nodeName, prefix, owner.name, 'bgp', warnings);
      if (r) r.nextHop = best.nextHop;
      return r;
    }
  }
  const onLink =
    me.bgpAddress !== undefined &&
    prefixContains(
      { addr: (me.bgpAddress.ip & maskOf(me.bgpAddress.len)) >>> 0, len: me.bgpAddress.len },
      best.nextHop,
    );
  const link = onLink || uplink?.gateway === undefined ? best.nextHop : uplink.gateway;
  return {
    prefix,
    via: 'direct',
    source: 'bgp',
    nextHop: best.nextHop,
    port: uplink?.interfaceName,
    linkNextHop: link,
  };
}

export class BgpGlue implements BgpHost {
  readonly speaker: BgpSpeaker;

  constructor(
    private readonly prog: Programmer,
    private readonly log: Logger,
  ) {
    const cfg = prog.cfg;
    const node = prog.nodeName;
    const opts = speakerOptions(cfg, node);
    const blog = log.child({ component: 'bgp' });
    this.speaker = new BgpSpeaker({
      ...opts,
      logger: blog,
      onRouteChange: (prefix, best) => this.onRoute(prefix, best),
    });
  }

  async start(): Promise<void> {
    await this.speaker.start();
    for (const b of exportedBlocks(this.prog.cfg, this.prog.nodeName)) this.speaker.originate(b);
  }

  /**
   * The speaker's best path for `prefix` changed (null: no path left). Installs, replaces or withdraws
   * the learned route; a route a full table refused is logged and waits in the Programmer (its
   * `maintain()` installs it when room is reclaimed) until it is withdrawn or replaced.
   */
  onRoute(prefix: Prefix4, best: BestRoute | null): void {
    const current = this.prog.route(prefix);
    if (best === null) {
      // nothing installed: a refused route may still be waiting; forget it
      if (current === undefined) this.prog.withdraw(prefix);
      else if (current.source === 'bgp') {
        this.prog.withdraw(prefix);
        this.log.info({ prefix: formatPrefix4(prefix) }, 'bgp route withdrawn');
      }
      return;
    }
    if (current !== undefined && current.source !== 'bgp') return; // config, workload or our own block wins
    const warnings: string[] = [];
    const r = learnedRoute(this.prog.cfg, this.prog.nodeName, best, warnings);
    for (const w of warnings) this.log.warn(w);
    if (!r) return;
    try {
      this.prog.install(r);
    } catch (e) {
      this.log.error(
        { prefix: formatPrefix4(prefix), err: (e as Error).message },
        'cannot install bgp route',
      );
    }
  }

  status(): PeerStatusRow[] {
    return this.speaker.status().map((p) => ({
      peerAddress: p.peerAddress,
      peerType: p.peerType,
      state: p.state,
      since: p.since,
      info: p.info,
    }));
  }

  async stop(): Promise<void> {
    await this.speaker.stop();
  }
}
