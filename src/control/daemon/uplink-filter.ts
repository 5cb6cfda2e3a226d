// The uplink socket's BPF filter: what calitap takes from the AF_PACKET uplink (ARP, traffic to the IP
// pools, tunnels to the node IP, NAT replies to the SNAT address's port range, owned addresses). Built
// at start and again when the pools, the owned addresses or the VXLAN port change live (the new
// program replaces the old on every worker's socket: SO_ATTACH_FILTER swaps it atomically).
// Control thread.
import { formatIp4, formatPrefix4 } from '../../common/addr.js';
import { felixFor } from '../config/compile.js';
import type { ClusterConfig } from '../config/types.js';
import type { DataplaneParams } from '../../dataplane/graph/env.js';

/** The tcpdump expression of the uplink filter for `node` under cfg and params. */
export function uplinkFilterExpr(cfg: ClusterConfig, p: DataplaneParams, node: string): string {
  const felix = felixFor(cfg, node);
  const nodeIp = formatIp4(p.nodeIp);
  const nets = cfg.pools.map((x) => `dst net ${formatPrefix4({ addr: x.cidr.addr, len: x.cidr.len })}`);
  const [lo, hi] = felix.natPortRange ?? [32768, 60999];
  const natIps = [felix.natOutgoingAddress ?? p.nodeIp].map(formatIp4);
  const nat = natIps.map((a) => `(dst host ${a} and (icmp or ((tcp or udp) and dst portrange ${lo}-${hi})))`);
  const tunnels = `(dst host ${nodeIp} and (ip proto 4 or (udp dst port ${p.vxlanPort})))`;
  const owned = p.ownedIps.map((a) => `dst host ${formatIp4(a)}`);
  return `arp or (ip and (${[...new Set([...nets, tunnels, ...nat, ...owned])].join(' or ')}))`;
}
