// The `--uplink udp` side of the daemon: whether a configuration can run with it (checkUdpUplink)
// and opening one worker's socket (openUdpUplinkSocket). The device itself: dataplane/devices/udp.ts.
import type { ClusterConfig } from '../config/types.js';
import { localNode, sameSubnet } from '../config/compile.js';
import { CalitapError, ConfigError } from '../../common/errors.js';
import * as io from '../../dataplane/devices/native.js';

const UDP_ONLY =
  'udp mode carries only VXLAN between nodes; natOutgoing and non-VXLAN routes need the packet uplink';

/**
 * Whether the configuration can run with `--uplink udp`: every pool (disabled ones too, their blocks
 * are still routed) must reach other nodes through VXLAN, since without L2 access to the uplink
 * nothing else can leave. Throws a one-line ConfigError for IPIP, for vxlanMode Never, and for
 * vxlanMode CrossSubnet when another node shares our subnet (it would be routed directly). Returns
 * warnings for what is allowed but cannot work: traffic leaving the pools (natOutgoing, the gateway
 * route) is dropped and counted as `udp-uplink: not-vxlan`.
 */
export function checkUdpUplink(cfg: ClusterConfig, nodeName: string): string[] {
  const me = localNode(cfg, nodeName);
  for (const p of cfg.pools) {
    const where = `${cfg.source}: IPPool ${p.name}`;
    if (p.ipipMode !== 'Never')
      throw new ConfigError(`${where}: spec.ipipMode ${p.ipipMode}: --uplink udp: ${UDP_ONLY}`);
    if (p.vxlanMode === 'Never')
      throw new ConfigError(`${where}: spec.vxlanMode Never: --uplink udp: ${UDP_ONLY}`);
    if (p.vxlanMode === 'CrossSubnet') {
      const near = [...cfg.nodes.values()].find((n) => n.name !== nodeName && sameSubnet(me, n));
      if (near !== undefined)
        throw new ConfigError(
          `${where}: spec.vxlanMode CrossSubnet: node ${near.name} shares this node's subnet and would be ` +
            `routed without VXLAN: --uplink udp: ${UDP_ONLY}`,
        );
    }
  }
  const nat = cfg.pools.filter((p) => p.natOutgoing).map((p) => p.name);
  if (nat.length === 0) return [];
  return [
    `--uplink udp: natOutgoing pools (${nat.join(', ')}): traffic leaving the pools cannot be sent ` +
      `without the packet uplink; it is dropped and counted as udp-uplink: not-vxlan`,
  ];
}

/**
 * One worker's udp uplink socket on node:port (SO_REUSEPORT, 4 MiB buffers), with UDP_GRO when `gro`
 * (offloads on: the worker's 64 KiB slots take coalesced datagrams). A kernel that refuses UDP_GRO
 * (< 5.0) gets a plain socket: `gro` false and the reason in `refused`. Throws a one-line
 * CalitapError (uplink-open) when the socket cannot be had at all.
 */
export function openUdpUplinkSocket(
  node: string,
  port: number,
  gro: boolean,
): { fd: number; gro: boolean; refused?: string } {
  const open = (g: boolean): number =>
    io.udpSocket(node, port, { reusePort: true, rcvbuf: 4 << 20, sndbuf: 4 << 20, gro: g });
  try {
    try {
      return { fd: open(gro), gro };
    } catch (e) {
      if (!gro || (e as { syscall?: string }).syscall !== 'UDP_GRO') throw e;
      return { fd: open(false), gro: false, refused: (e as Error).message };
    }
  } catch (e) {
    const busy = (e as { code?: string }).code === 'EADDRINUSE';
    throw new CalitapError(
      'uplink-open',
      `--uplink udp: ${(e as Error).message}` +
        (busy ? ` (another VXLAN listener on ${node}:${port}, e.g. a kernel vxlan device?)` : ''),
    );
  }
}
