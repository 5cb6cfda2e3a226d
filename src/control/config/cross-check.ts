// Checks that relate config resources to each other (after each was checked alone in kinds.ts):
// overlapping pools, duplicate node addresses, block affinities inside pools with one owner per block,
// known nodes, interface names unique per node, endpoint addresses inside pools and unique. Control
// thread, at the end of a load.
import { formatIp4, formatPrefix4, prefixCovers, prefixesOverlap, type Prefix4 } from '../../common/addr.js';
import type { BlockAffinity, CalicoNode, ClusterConfig, WorkloadEndpoint } from './types.js';
import { fail, type Where } from './fields.js';

/** Checks that relate resources to each other. */
export function crossCheck(cfg: ClusterConfig, whereOf: (o: object) => Where): void {
  // Pools must not overlap (Calico refuses to create an overlapping pool).
  cfg.pools.forEach((p, i) => {
    for (const q of cfg.pools.slice(0, i))
      if (prefixesOverlap(p.cidr, q.cidr))
        fail(
          whereOf(p),
          'spec.cidr',
          formatPrefix4(p.cidr),
          `overlaps IPPool ${q.name} (${formatPrefix4(q.cidr)})`,
        );
  });
  const poolOf = (pfx: Prefix4) => cfg.pools.find((p) => prefixCovers(p.cidr, pfx));

  // Two nodes with the same address would make routing ambiguous.
  const byIp = new Map<number, CalicoNode>();
  for (const n of cfg.nodes.values()) {
    if (!n.bgpAddress) continue;
    const other = byIp.get(n.bgpAddress.ip);
    if (other)
      fail(whereOf(n), 'spec.bgp.ipv4Address', fmtHost(n.bgpAddress), `same address as Node ${other.name}`);
    byIp.set(n.bgpAddress.ip, n);
  }

  const needNode = (o: object, path: string, node: string) => {
    if (!cfg.nodes.has(node)) fail(whereOf(o), path, node, 'no Node with this name');
  };

  // Block affinities: known node, inside a pool, exactly one block of it, one owner per block.
  const owner = new Map<string, BlockAffinity>();
  for (const a of cfg.affinities) {
    const w = whereOf(a);
    needNode(a, 'spec.node', a.node);
    const pool = poolOf(a.cidr);
    const text = formatPrefix4(a.cidr);
    if (!pool) fail(w, 'spec.cidr', text, 'outside every IPPool');
    if (a.cidr.len !== pool.blockSize)
      fail(w, 'spec.cidr', text, `not a block of IPPool ${pool.name} (blockSize ${pool.blockSize})`);
    if (a.state !== 'confirmed' || a.deleted) continue;
    const prev = owner.get(text);
    if (prev && prev.node !== a.node)
      fail(w, 'spec.cidr', text, `block already affine to node ${prev.node} (BlockAffinity ${prev.name})`);
    owner.set(text, a);
  }

  // Interface names share one namespace per node: the uplink's and every endpoint's.
  const ifaces = new Map<string, string>(); // `${node}\0${iface}` → "Kind name"
  for (const u of cfg.uplinks.values()) {
    needNode(u, 'metadata.name', u.node);
    ifaces.set(`${u.node}\0${u.interfaceName}`, `Uplink ${u.node}`);
  }
  const ipOwner = new Map<number, WorkloadEndpoint>();
  for (const e of cfg.endpoints) {
    const w = whereOf(e);
    needNode(e, 'spec.node', e.node);
    const key = `${e.node}\0${e.interfaceName}`;
    const prev = ifaces.get(key);
    if (prev) fail(w, 'spec.interfaceName', e.interfaceName, `already used on node ${e.node} by ${prev}`);
    ifaces.set(key, `WorkloadEndpoint ${e.name}`);
    e.ipNetworks.forEach((n, i) => {
      const path = `spec.ipNetworks[${i}]`;
      if (!poolOf(n)) fail(w, path, formatPrefix4(n), 'outside every IPPool');
      // Two endpoints must not claim the same address (checked for /32s, the only form IPAM hands out).
      if (n.len === 32) {
        const other = ipOwner.get(n.addr);
        if (other && other !== e)
          fail(w, path, formatPrefix4(n), `address already used by WorkloadEndpoint ${other.name}`);
        ipOwner.set(n.addr, e);
      }
    });
  }

  for (const p of cfg.peers) if (p.node !== undefined) needNode(p, 'spec.node', p.node);
}

function fmtHost(a: { ip: number; len: number }): string {
  return `${formatIp4(a.ip)}/${a.len}`;
}
