// Types of the calitap_io native binding's options and results (no code). Shared by the wrapper
// modules beside this one and re-exported from devices/native.js.
//
// What flows through it: nothing at run time. Who owns the buffers: see batch.ts (the caller owns the
// arena and every typed array). Which thread runs it: any.

/** The error every failing syscall throws (Node's SystemError shape). */
export interface IoSysError extends Error {
  /** errno name: 'EBADF', 'ENODEV', 'EPERM', ... */
  code: string;
  errno: number;
  /** the failing system call or ioctl: 'read', 'TUNSETIFF', 'SO_ATTACH_FILTER', ... */
  syscall: string;
}

/** How readBatch/writeBatch drive an fd: 0 auto (fstat), 1 read()/write(), 2 recvmmsg()/sendmmsg(). */
export type Mode = 0 | 1 | 2;

export interface TapFlags {
  /** IFF_MULTI_QUEUE: open the same name once per queue (one fd per worker). */
  multiQueue?: boolean;
  /** IFF_VNET_HDR: every frame is preceded by a struct virtio_net_hdr (10 bytes by default). */
  vnetHdr?: boolean;
  /** TUNSETPERSIST: the interface outlives the fd. */
  persist?: boolean;
  /** IFF_NO_PI (default true): no 4-byte packet-information header in front of frames. */
  noPi?: boolean;
  /**
   * Network namespace to open the TAP in: a namespace file such as `/var/run/netns/NAME` or
   * `/proc/PID/ns/net` (at most 255 bytes). The tun driver creates / looks up the interface in the
   * namespace /dev/net/tun was opened in, so the addon switches the calling thread into `netns`
   * (setns), opens /dev/net/tun and always switches back before returning (it aborts the process if
   * it cannot: the thread is never left in the wrong namespace). Use it to re-attach queues of a
   * persistent multi-queue TAP that was moved into a workload (e.g. renamed eth0) after a restart.
   * Needs CAP_SYS_ADMIN (setns: EPERM) besides CAP_NET_ADMIN. Errors name the path, e.g.
   * `tapOpen("eth0", netns=/var/run/netns/x): open: No such file or directory (ENOENT)`; a file
   * that is not a network namespace gives `setns: Invalid argument (EINVAL)`.
   */
  netns?: string;
}

export interface TapHandle {
  fd: number;
  /** the kernel's name for the interface (what was asked, or e.g. tap0 for '' / 'tap%d') */
  name: string;
}

/** TUNSETOFFLOAD flags: which GSO/checksum offloads the reader (us) accepts from the kernel. */
export interface OffloadFlags {
  csum?: boolean;
  tso4?: boolean;
  tso6?: boolean;
  ecn?: boolean;
  ufo?: boolean;
}

export type FanoutMode = 'hash' | 'lb' | 'cpu';

export interface PacketSocketOptions {
  /** PACKET_FANOUT group id (0..65535): sockets of one group on one interface share its frames. */
  fanoutGroup?: number;
  /** 'hash' (default: per flow, no defragmentation), 'lb' (round robin), 'cpu' (receiving CPU) */
  fanoutMode?: FanoutMode;
  /** classic BPF program: sock_filter structs of 8 bytes (see bpfFromTcpdump) */
  bpf?: Uint8Array;
  /** SO_RCVBUFFORCE (falls back to SO_RCVBUF, capped by net.core.rmem_max, without CAP_NET_ADMIN) */
  rcvbuf?: number;
  sndbuf?: number;
  /** PACKET_IGNORE_OUTGOING (default true): don't read frames this host transmits (ours included). */
  ignoreOutgoing?: boolean;
  /**
   * PACKET_VNET_HDR: every frame read and written is preceded by a 10-byte struct virtio_net_hdr.
   * Reading, it says when the checksum is still partial (VIRTIO_NET_HDR_F_NEEDS_CSUM: frames from
   * veths or virtio with offloads) or the frame is a GSO super-frame; writing, zeros mean "as is".
   */
  vnetHdr?: boolean;
}

export interface UdpSocketOptions {
  rcvbuf?: number;
  sndbuf?: number;
  /** SO_REUSEPORT: one socket per worker on the same port (the kernel spreads flows) */
  reusePort?: boolean;
  /**
   * UDP_GRO: the kernel may hand over several datagrams of one flow as one coalesced datagram (read it
   * with readBatchUdpGro, which reports the segment size to split it at; slots need 64 KiB).
   */
  gro?: boolean;
}

export interface RawSocketOptions {
  rcvbuf?: number;
  sndbuf?: number;
  /** IP_HDRINCL: frames written include the IPv4 header (reads always include it) */
  hdrIncl?: boolean;
  /** attach a drop-all filter: the socket only exists so the kernel sees a listener for the protocol */
  dropAll?: boolean;
}

export interface SockAddr {
  address: string;
  port: number;
}

/** A packet arena: the worker's SharedArrayBuffer (or a Uint8Array over it, which is fastest). */
export type Arena = SharedArrayBuffer | ArrayBuffer | Uint8Array;

/**
 * segmentTcp4's fused IPIP encapsulation (RFC 2003): the outer IPv4 header written in front of every
 * segment. Addresses are u32 in host order (10.0.0.1 = 0x0a000001).
 */
export interface IpipOuter {
  src: number;
  dst: number;
  /** default 64 (IPIP_TTL) */
  ttl?: number;
  /** default: the inner packet's TOS (RFC 6040 normal mode copies ECN) */
  tos?: number;
  /** identification of the first segment's outer header; segment k gets id + k (mod 2^16). Default 0. */
  id?: number;
  /** 14 bytes (destination MAC, source MAC, 0x0800) copied in front of every segment; else left as is */
  eth?: Uint8Array;
}
