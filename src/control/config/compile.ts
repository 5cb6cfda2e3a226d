// Route compilation: ClusterConfig (types.ts) + this node's name → the route list the control plane
// installs in the shared FIB, plus the lookup helpers the dataplane set-up and NAT need (pool lookup,
// Calico's natOutgoing rule, tunnel MTU, per-node Felix settings and BGP peers). Pure functions over
// the config, run on the main (control) thread; results are fresh arrays owned by the caller.
//
// The route rules are Felix's (projectcalico/calico felix/calc/l3_route_resolver.go):
//  - each local workload address → its interface;
//  - each confirmed block affine to this node → blackhole (unallocated addresses drop silently);
//  - each confirmed block affine to another node → that node's IP, encapsulated per the block's pool:
//    Always → IPIP/VXLAN; CrossSubnet → encapsulated only when the remote node's IP lies outside our
//    node's `spec.bgp.ipv4Address` subnet (nodeInOurSubnet); Never → routed directly;
//  - each remote workload address not inside a block affine to its node ("borrowed" IPs, Felix's
//    NonAffineAllocations) → a /32 to that node, encapsulated the same way;
//  - 0.0.0.0/0 → the Uplink's gateway.
// Disabled pools keep routing their existing blocks: `disabled` only stops new IPAM allocations, and
// Felix's route resolver and masquerade sets never look at it.
import { formatIp4, formatPrefix4, maskOf, prefixContains, type Prefix4 } from '../../common/addr.js';
import { ConfigError } from '../../common/errors.js';
import {
  IPIP_OVERHEAD,
  VXLAN_OVERHEAD,
  type BgpPeer,
  type BlockAffinity,
  type CalicoNode,
  type ClusterConfig,
  type FelixConfig,
  type IPPool,
} from './types.js';

export type RouteVia = 'local' | 'direct' | 'ipip' | 'vxlan' | 'gateway' | 'blackhole';
/** host: the host's own addresses, routed to the host TAP (daemon/host-port.ts) */
export type RouteSource = 'workload' | 'config' | 'bgp' | 'ipam' | 'host';

export interface RouteSpec {
  prefix: Prefix4;
  via: RouteVia;
  source: RouteSource;
  /** remote node IP (direct/ipip/vxlan) or gateway IP */
  nextHop?: number;
  /** local: workload interfaceName; direct/ipip/vxlan/gateway: the uplink's interfaceName */
  port?: string;
  /** local: workload MAC; vxlan: remote node's VTEP MAC */
  mac?: string;
  /** remote node name for block routes */
  node?: string;
  /**
   * direct/ipip/vxlan/gateway: the on-link address whose MAC the frame on the uplink goes to (the ARP /
   * static-neighbour target): `nextHop` itself when it lies in this node's `spec.bgp.ipv4Address`
   * subnet, else the uplink's gateway (e.g. the outer packet of a tunnel to a node in another subnet).
   */
  linkNextHop?: number;
}

export interface CompiledRoutes {
  /** Sorted by prefix address, then prefix length; one route per prefix. */
  routes: RouteSpec[];
  /** Blocks or addresses that could not be routed, and other doubtful situations, one line each. */
  warnings: string[];
}

/** The named node, or a ConfigError naming the config source and the known nodes. */
export function localNode(cfg: ClusterConfig, name: string): CalicoNode {
  const n = cfg.nodes.get(name);
  if (!n) {
    const known = [...cfg.nodes.keys()].join(', ') || 'none';
    throw new ConfigError(`${cfg.source}: Node ${name}: no Node with this name (known: ${known})`);
  }
  return n;
}

/** The pool containing `ip`, disabled pools included. */
export function poolFor(cfg: ClusterConfig, ip: number): IPPool | undefined {
  return cfg.pools.find((p) => prefixContains(p.cidr, ip));
}

/**
 * Calico's masquerade rule (felix/dataplane/linux/masq_mgr.go): SNAT when the source is in a pool with
 * natOutgoing and the destination is in no pool at all. Disabled pools count on both sides.
 */
export function natOutgoingApplies(cfg: ClusterConfig, src: number, dst: number): boolean {
  const p = poolFor(cfg, src);
  return p !== undefined && p.natOutgoing && poolFor(cfg, dst) === undefined;
}

/** The Felix settings for a node: the `default` resource overlaid with `node.<nodeName>`. */
export function felixFor(cfg: ClusterConfig, nodeName?: string): FelixConfig {
  const o = nodeName === undefined ? undefined : cfg.felixNodeOverrides.get(nodeName);
  return o ? { ...cfg.felix, ...o } : { ...cfg.felix };
}

/**
 * MTU inside a tunnel: Felix's ipipMTU / vxlanMTU when set, else the uplink MTU minus the
 * encapsulation overhead (IPIP 20, VXLAN 50), which is what Felix's auto-detection computes.
 */
export function tunnelMtu(
  cfg: ClusterConfig,
  uplinkMtu: number,
  mode: 'ipip' | 'vxlan',
  nodeName?: string,
): number {
  const f = felixFor(cfg, nodeName);
  const explicit = mode === 'ipip' ? f.ipipMTU : f.vxlanMTU;
  return explicit ?? uplinkMtu - (mode === 'ipip' ? IPIP_OVERHEAD : VXLAN_OVERHEAD);
}

/** The node's BGP AS: its own spec.bgp.asNumber, else BGPConfiguration default's. */
export function nodeAsNumber(cfg: ClusterConfig, nodeName: string): number {
  return localNode(cfg, nodeName).asNumber ?? cfg.bgp.asNumber;
}

/** Explicit BGP peers for a node: global peers (no node, no selector or all()) and the node's own. */
export function peersForNode(cfg: ClusterConfig, nodeName: string): BgpPeer[] {
  return cfg.peers.filter((p) => (p.node === undefined ? true : p.node === nodeName));
}

/** True when `remote`'s IP lies in `local`'s `spec.bgp.ipv4Address` subnet (Felix: nodeInOurSubnet). */
export function sameSubnet(local: CalicoNode, remote: CalicoNode): boolean {
  if (!local.bgpAddress || !remote.bgpAddress) return false;
  const net = (local.bgpAddress.ip & maskOf(local.bgpAddress.len)) >>> 0;
  return prefixContains({ addr: net, len: local.bgpAddress.len }, remote.bgpAddress.ip);
}

/**
 * The route to a prefix hosted by another node (its affine block, or a prefix BGP learned with that
 * node as next hop): encapsulated per the prefix's pool mode (Always; CrossSubnet when the remote node
 * is outside our `spec.bgp.ipv4Address` subnet; Never), or undefined with a warning when impossible.
 */
export function routeToNode(
  cfg: ClusterConfig,
  nodeName: string,
  prefix: Prefix4,
  node: string,
  source: RouteSpec['source'],
  warnings: string[],
): RouteSpec | undefined {
  const me = localNode(cfg, nodeName);
  const uplink = cfg.uplinks.get(nodeName);
  const myNet = me.bgpAddress
    ? { addr: (me.bgpAddress.ip & maskOf(me.bgpAddress.len)) >>> 0, len: me.bgpAddress.len }
    : undefined;
  const linkHop = (ip: number) =>
    (myNet && prefixContains(myNet, ip)) || uplink?.gateway === undefined ? ip : uplink.gateway;
  const what = `${prefix.len === 32 ? 'address' : 'block'} ${formatPrefix4(prefix)} of node ${node}`;
  const remote = cfg.nodes.get(node);
  if (!remote?.bgpAddress) {
    warnings.push(`${what} not routed: node ${node} has no spec.bgp.ipv4Address`);
    return undefined;
  }
  const pool = poolFor(cfg, prefix.addr);
  const ipip = pool?.ipipMode ?? 'Never';
  const vxlan = pool?.vxlanMode ?? 'Never';
  const mode = ipip !== 'Never' ? ipip : vxlan;
  const encap = mode === 'Always' || (mode === 'CrossSubnet' && !sameSubnet(me, remote));
  const nextHop = remote.bgpAddress.ip;
  const r: RouteSpec = { prefix, via: 'direct', source, nextHop, node, linkNextHop: linkHop(nextHop) };
  if (uplink !== undefined) r.port = uplink.interfaceName;
  if (encap && ipip !== 'Never') r.via = 'ipip';
  else if (encap) {
    // Felix programs a VTEP only when the node has both an IP and a VXLAN tunnel address
    // (VXLANResolver.hasVTEPInfo); without it there is no VXLAN route.
    if (remote.vxlanTunnelAddr === undefined) {
      warnings.push(`${what} not routed: node ${node} has no spec.ipv4VXLANTunnelAddr (no VTEP)`);
      return undefined;
    }
    r.via = 'vxlan';
    r.mac = remote.vxlanTunnelMac;
  } else if (!sameSubnet(me, remote) && me.bgpAddress) {
    warnings.push(
      `${what} routed directly to ${formatIp4(remote.bgpAddress.ip)}, outside this node's subnet ` +
        `${formatIp4(me.bgpAddress.ip)}/${me.bgpAddress.len} (pool ${pool?.name ?? '?'} mode Never)`,
    );
  }
  return r;
}

export function compileRoutes(cfg: ClusterConfig, nodeName: string): CompiledRoutes {
  const me = localNode(cfg, nodeName);
  const uplink = cfg.uplinks.get(nodeName);
  const warnings: string[] = [];
  const byPrefix = new Map<string, RouteSpec>();
  const add = (r: RouteSpec) => {
    const k = formatPrefix4(r.prefix);
    if (!byPrefix.has(k)) byPrefix.set(k, r);
  };
  let encapWithoutOwnAddress = false;
  let remoteWithoutUplink = false;
  const remoteRoute = (prefix: Prefix4, node: string, source: RouteSpec['source']) => {
    const r = routeToNode(cfg, nodeName, prefix, node, source, warnings);
    if (!r) return;
    if (r.port === undefined) remoteWithoutUplink = true;
    if (r.via !== 'direct' && !me.bgpAddress) encapWithoutOwnAddress = true;
    add(r);
  };

  // 1. Local workloads.
  for (const e of cfg.endpoints) {
    if (e.node !== nodeName) continue;
    for (const n of e.ipNetworks)
      add({ prefix: n, via: 'local', source: 'workload', port: e.interfaceName, mac: e.mac });
  }

  // 2. Affine blocks (confirmed, not being deleted).
  const blocks = cfg.affinities.filter((a) => a.state === 'confirmed' && !a.deleted);
  /** each node's blocks (the borrowed-address check looks at one node's, not every block) */
  const blocksOf = new Map<string, BlockAffinity[]>();
  for (const a of blocks) {
    if (a.node === nodeName) add({ prefix: a.cidr, via: 'blackhole', source: 'ipam' });
    else remoteRoute(a.cidr, a.node, 'ipam');
    const list = blocksOf.get(a.node);
    if (list === undefined) blocksOf.set(a.node, [a]);
    else list.push(a);
  }

  // 3. Remote workload addresses outside their node's own blocks (borrowed IPs).
  for (const e of cfg.endpoints) {
    if (e.node === nodeName) continue;
    const own = blocksOf.get(e.node) ?? [];
    for (const n of e.ipNetworks) {
      const inOwnBlock = own.some((a) => a.cidr.len <= n.len && prefixContains(a.cidr, n.addr));
      if (!inOwnBlock) remoteRoute(n, e.node, 'ipam');
    }
  }

  // 4. Everything else → the uplink's gateway.
  if (uplink?.gateway !== undefined)
    add({
      prefix: { addr: 0, len: 0 },
      via: 'gateway',
      source: 'config',
      nextHop: uplink.gateway,
      port: uplink.interfaceName,
      linkNextHop: uplink.gateway,
    });

  if (encapWithoutOwnAddress)
    warnings.push(`node ${nodeName} has no spec.bgp.ipv4Address: tunnels have no outer source address`);
  if (remoteWithoutUplink) warnings.push(`node ${nodeName} has no Uplink: remote routes have no port`);

  const routes = [...byPrefix.values()].sort(
    (a, b) => a.prefix.addr - b.prefix.addr || a.prefix.len - b.prefix.len,
  );
  return { routes, warnings };
}
