// TAP queues and interface ioctls over calitap_io (native/tap.c): open a TAP (multi-queue, vnet
// header, persist, inside another network namespace), set its offloads and vnet header size, and the
// SIOC* interface calls (index, MAC, up, MTU, tx queue length).
//
// What flows through it: names, flags and fds; no packets (batch.ts moves the frames). Who owns the
// buffers: nothing is kept. Which thread runs it: any; set-up time (control path), not the hot path.
import { modes, nb } from './load.js';
import type { OffloadFlags, TapFlags, TapHandle } from './types.js';

/**
 * Opens (creating if needed) TAP interface `name` on /dev/net/tun, O_NONBLOCK|O_CLOEXEC, IFF_TAP |
 * IFF_NO_PI by default, in the calling thread's network namespace or in `flags.netns`. Needs
 * CAP_NET_ADMIN (EPERM otherwise). The fd keeps working wherever the interface is moved later.
 */
export function tapOpen(name: string, flags: TapFlags = {}): TapHandle {
  const h = nb().tapOpen(name, flags);
  modes.set(h.fd, 1);
  return h;
}

export function tapSetPersist(fd: number, on: boolean): void {
  nb().tapSetPersist(fd, on);
}

/** TUN_F_* bits for tapSetOffload (Linux's values, include/uapi/linux/if_tun.h; the last two ≥ 6.17). */
export const TUN_F = {
  CSUM: 0x01,
  TSO4: 0x02,
  TSO6: 0x04,
  TSO_ECN: 0x08,
  UFO: 0x10,
  USO4: 0x20,
  USO6: 0x40,
  /** GSO over UDP tunnels (VXLAN, Geneve): needs CSUM and a 24-byte vnet header (tapSetTunnelGso) */
  UDP_TUNNEL_GSO: 0x80,
  /** ... with a partial outer UDP checksum as well */
  UDP_TUNNEL_GSO_CSUM: 0x100,
} as const;

/** TUNSETOFFLOAD with TUN_F_* bits or named flags. TSO needs CSUM; all need IFF_VNET_HDR to be useful. */
export function tapSetOffload(fd: number, flags: number | OffloadFlags): void {
  let bits: number;
  if (typeof flags === 'number') bits = flags;
  else {
    bits =
      (flags.csum ? TUN_F.CSUM : 0) |
      (flags.tso4 ? TUN_F.TSO4 : 0) |
      (flags.tso6 ? TUN_F.TSO6 : 0) |
      (flags.ecn ? TUN_F.TSO_ECN : 0) |
      (flags.ufo ? TUN_F.UFO : 0);
  }
  nb().tapSetOffload(fd, bits);
}

/** TUNSETVNETHDRSZ (10, 12 for virtio_net_hdr_mrg_rxbuf, 24 for virtio_net_hdr_v1_hash_tunnel). */
export function tapSetVnetHdrSize(fd: number, n: number): void {
  nb().tapSetVnetHdrSize(fd, n);
}

/**
 * Switches a TAP opened with `vnetHdr` to the 24-byte struct virtio_net_hdr_v1_hash_tunnel (Linux ≥
 * 6.17): TUNSETVNETHDRSZ 24, then TUNSETOFFLOAD CSUM | TSO4 | UDP_TUNNEL_GSO (| UDP_TUNNEL_GSO_CSUM
 * with `outerCsum`). Frames written with a VXLAN-over-IPv4 TCP GSO header (wire/virtio.ts
 * vnetWriteVxlanTcp4Gso) are then segmented by the kernel; the offload bit tells the kernel we also
 * accept such super-frames on read. Measured on 6.18: the write direction depends on the header size
 * alone (24 bytes work without the offload bit; with 10 or 12 bytes the kernel refuses a tunnel
 * gso_type with EINVAL), and UDP_TUNNEL_GSO without CSUM is refused with EINVAL. The header size
 * belongs to the interface: every queue reads and writes 24 bytes afterwards. When the offload is
 * refused (an older kernel: EINVAL, thrown naming TUNSETOFFLOAD) the header size is put back to 10.
 */
export function tapSetTunnelGso(fd: number, outerCsum = false): void {
  nb().tapSetVnetHdrSize(fd, 24);
  try {
    nb().tapSetOffload(
      fd,
      TUN_F.CSUM | TUN_F.TSO4 | TUN_F.UDP_TUNNEL_GSO | (outerCsum ? TUN_F.UDP_TUNNEL_GSO_CSUM : 0),
    );
  } catch (e) {
    nb().tapSetVnetHdrSize(fd, 10);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------
// Interfaces (ioctls in the calling process's network namespace)

/** SIOCSIFTXQLEN (raise it on TAPs instead of touching TUNSETSNDBUF). */
export function setTxQueueLen(ifname: string, n: number): void {
  nb().setTxQueueLen(ifname, n);
}

export function ifIndex(name: string): number {
  return nb().ifIndex(name);
}

/** The interface's hardware address, 'aa:bb:cc:dd:ee:ff' (lower case). */
export function ifMac(name: string): string {
  return nb().ifMac(name);
}

/** Sets IFF_UP (or clears it when `up` is false). */
export function ifSetUp(name: string, up = true): void {
  nb().ifSetUp(name, up);
}

export function ifSetMtu(name: string, mtu: number): void {
  nb().ifSetMtu(name, mtu);
}

/** Interface features the legacy ethtool ioctl reads and sets (the index is the addon's). */
export const IF_FEATURE = { gro: 0, tso: 1 } as const;
export type IfFeatureName = keyof typeof IF_FEATURE;

/** Is the feature on (SIOCETHTOOL ETHTOOL_GGRO / ETHTOOL_GTSO)? */
export function ifFeature(name: string, feature: IfFeatureName): boolean {
  return nb().ifFeature(name, IF_FEATURE[feature]);
}

/**
 * Turns a feature on or off (SIOCETHTOOL ETHTOOL_SGRO / ETHTOOL_STSO: `ethtool -K <name> gro|tso on`,
 * for machines without ethtool).
 */
export function ifSetFeature(name: string, feature: IfFeatureName, on: boolean): void {
  nb().ifSetFeature(name, IF_FEATURE[feature], on);
}

/**
 * Every IPv4 address of the calling process's network namespace (getifaddrs: a netlink dump, no
 * child process), as unsigned 32-bit numbers in the kernel's order; loopback and duplicates included.
 */
export function ifAddrs4(): number[] {
  return nb().ifAddrs4();
}
