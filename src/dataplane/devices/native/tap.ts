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

/** TUN_F_* bits for tapSetOffload (Linux's values). */
export const TUN_F = { CSUM: 0x01, TSO4: 0x02, TSO6: 0x04, TSO_ECN: 0x08, UFO: 0x10 } as const;

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

/** TUNSETVNETHDRSZ (10, or 12 for virtio_net_hdr_mrg_rxbuf). */
export function tapSetVnetHdrSize(fd: number, n: number): void {
  nb().tapSetVnetHdrSize(fd, n);
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
