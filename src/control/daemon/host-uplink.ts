// The uplink as the host's kernel sees it, for nodes whose configuration does not say (no calitap/v1
// Uplink resource, or one without a gateway): the interface holding the node's IP
// (Node spec.bgp.ipv4Address), its MTU, and the kernel's default route through it. Read once at
// daemon start with `ip -j` (iproute2's JSON), on the control thread.
import { execFileSync } from 'node:child_process';
import { formatIp4, parseIp4 } from '../../common/addr.js';
import { ConfigError, DeviceError } from '../../common/errors.js';
import type { ClusterConfig, Uplink } from '../config/types.js';

interface IpAddrJson {
  ifname: string;
  mtu: number;
  addr_info?: { family: string; local: string; prefixlen: number }[];
}
interface IpRouteJson {
  dst: string;
  gateway?: string;
  dev?: string;
}

function ipJson<T>(args: string[]): T {
  let out: string;
  try {
    out = execFileSync('ip', ['-j', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new DeviceError('ip-command', `ip -j ${args.join(' ')}: ${(err.stderr || err.message).trim()}`);
  }
  try {
    return JSON.parse(out) as T;
  } catch {
    throw new DeviceError('ip-command', `ip -j ${args.join(' ')}: output is not JSON`);
  }
}

/**
 * Completes `cfg` for `node` from the kernel: creates the Uplink when absent (interface holding the
 * node IP, its MTU, the default gateway through it) and fills a missing gateway. Returns what it
 * took from the kernel, one line each (for the log); throws ConfigError when nothing fits.
 */
export function uplinkFromKernel(cfg: ClusterConfig, node: string): string[] {
  const me = cfg.nodes.get(node);
  const existing = cfg.uplinks.get(node);
  if (existing?.gateway !== undefined) return [];
  const found: string[] = [];
  let uplink: Uplink;
  if (existing) uplink = existing;
  else {
    const ip = me?.bgpAddress?.ip;
    if (ip === undefined) {
      throw new ConfigError(
        `${cfg.source}: Uplink ${node}: missing, and Node ${node} has no spec.bgp.ipv4Address to find it by`,
      );
    }
    const links = ipJson<IpAddrJson[]>(['-4', 'addr', 'show']);
    const link = links.find((l) =>
      (l.addr_info ?? []).some((a) => a.family === 'inet' && parseIp4(a.local) === ip),
    );
    if (!link) {
      throw new ConfigError(
        `${cfg.source}: Uplink ${node}: missing, and no interface of this host has the node IP ${formatIp4(ip)}`,
      );
    }
    uplink = { node, interfaceName: link.ifname, mtu: link.mtu, neighbors: [] };
    cfg.uplinks.set(node, uplink);
    found.push(`uplink interface ${link.ifname} (holds ${formatIp4(ip)}), mtu ${link.mtu}`);
  }
  const routes = ipJson<IpRouteJson[]>(['-4', 'route', 'show', 'default']);
  const def = routes.find((r) => r.dev === uplink.interfaceName && r.gateway !== undefined);
  const gw = def?.gateway === undefined ? null : parseIp4(def.gateway);
  if (gw !== null) {
    uplink.gateway = gw;
    found.push(`gateway ${formatIp4(gw)} (the kernel's default route on ${uplink.interfaceName})`);
  } else {
    found.push(`no default route on ${uplink.interfaceName}: traffic leaving the pools has no route`);
  }
  return found;
}
