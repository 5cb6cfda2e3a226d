// AF_PACKET, UDP and raw IPv4 sockets over calitap_io (native/sockets.c), plus getsockname and close.
//
// What flows through it: socket options and fds; no packets (batch.ts moves the frames). Who owns the
// buffers: a BPF program is copied by the addon. Which thread runs it: any; set-up time. Each socket
// opened here is remembered as a recvmmsg/sendmmsg fd for this thread's readBatch/writeBatch.
import { modes, nb } from './load.js';
import type {
  FanoutMode,
  PacketSocketOptions,
  RawSocketOptions,
  SockAddr,
  UdpSocketOptions,
} from './types.js';

const FANOUT: Record<FanoutMode, number> = { hash: 0, lb: 1, cpu: 2 };

/**
 * AF_PACKET SOCK_RAW socket bound to `ifname` for ETH_P_ALL, non-blocking. The filter is attached
 * before bind, so no unfiltered frame is ever queued. Needs CAP_NET_RAW (EPERM otherwise); ENODEV
 * when the interface does not exist.
 */
export function packetSocket(ifname: string, opts: PacketSocketOptions = {}): number {
  let fanoutMode: number | undefined;
  if (opts.fanoutMode !== undefined) {
    fanoutMode = FANOUT[opts.fanoutMode];
    if (fanoutMode === undefined)
      throw new TypeError(`packetSocket: bad fanoutMode ${String(opts.fanoutMode)}`);
  }
  const fd = nb().packetSocket(ifname, {
    fanoutGroup: opts.fanoutGroup,
    fanoutMode,
    bpf: opts.bpf,
    rcvbuf: opts.rcvbuf,
    sndbuf: opts.sndbuf,
    ignoreOutgoing: opts.ignoreOutgoing,
    vnetHdr: opts.vnetHdr,
  });
  modes.set(fd, 2);
  return fd;
}

/** AF_INET UDP socket bound to bindAddr:port (port 0 = any; see sockName), non-blocking. */
export function udpSocket(bindAddr: string, port: number, opts: UdpSocketOptions = {}): number {
  const fd = nb().udpSocket(bindAddr, port, opts);
  modes.set(fd, 2);
  return fd;
}

/**
 * AF_INET SOCK_RAW socket for IP protocol `proto`, non-blocking. E.g. rawSocket(4, { rcvbuf: 1 })
 * makes the kernel consider IPIP "handled" (no ICMP protocol-unreachable) while queueing ~nothing.
 */
export function rawSocket(proto: number, opts: RawSocketOptions = {}): number {
  const fd = nb().rawSocket(proto, opts);
  modes.set(fd, 2);
  return fd;
}

/**
 * Replaces the classic BPF filter of an open socket (e.g. the uplink's, when a pool is added live):
 * the kernel swaps it atomically.
 */
export function setBpf(fd: number, bpf: Uint8Array): void {
  nb().setBpf(fd, bpf);
}

/** getsockname() of an AF_INET socket. */
export function sockName(fd: number): SockAddr {
  return nb().sockName(fd);
}

export function close(fd: number): void {
  modes.delete(fd);
  nb().close(fd);
}
