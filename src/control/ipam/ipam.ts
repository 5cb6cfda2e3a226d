// IPAM for `calitap workload add` without --ip: the lowest free address of this node's confirmed
// affine blocks, in pools that are not disabled (Calico's IPAM hands out ordinals from 0 upward in a
// block). Addresses of existing workloads and the node's tunnel addresses are in use. Control thread.
import { CalitapError } from '../../common/errors.js';
import { formatIp4 } from '../../common/addr.js';
import type { ClusterConfig } from '../config/types.js';
import { poolFor } from '../config/compile.js';

export function allocateAddress(cfg: ClusterConfig, node: string, used: Set<number>): number {
  const me = cfg.nodes.get(node);
  const taken = new Set(used);
  if (me?.ipipTunnelAddr !== undefined) taken.add(me.ipipTunnelAddr);
  if (me?.vxlanTunnelAddr !== undefined) taken.add(me.vxlanTunnelAddr);
  for (const ep of cfg.endpoints) for (const n of ep.ipNetworks) if (n.len === 32) taken.add(n.addr);
  for (const a of cfg.affinities) {
    if (a.node !== node || a.state !== 'confirmed' || a.deleted) continue;
    const pool = poolFor(cfg, a.cidr.addr);
    if (!pool || pool.disabled) continue;
    const size = 2 ** (32 - a.cidr.len);
    for (let k = 0; k < size; k++) {
      const ip = (a.cidr.addr + k) >>> 0;
      if (!taken.has(ip)) return ip;
    }
  }
  throw new CalitapError('ipam-exhausted', `IPAM: node ${node} has no free address in its affine blocks`);
}

/** Checks a requested address: inside one of this node's confirmed blocks and free. */
export function checkAddress(cfg: ClusterConfig, node: string, ip: number, used: Set<number>): void {
  if (used.has(ip))
    throw new CalitapError('ip-in-use', `IPAM: ${formatIp4(ip)} is already used by a workload`);
  if (!poolFor(cfg, ip))
    throw new CalitapError('ip-outside-pools', `IPAM: ${formatIp4(ip)} is outside every IP pool`);
}
