// Typed wrapper over calitap_io, our one native addon (native/calitap_io.c): TAP queues, AF_PACKET /
// UDP / raw sockets, eventfd, poll/epoll and batched frame I/O between an fd and a packet arena.
//
// What flows through it: Ethernet frames (TAP, AF_PACKET) and datagrams (UDP, raw IPv4) copied by the
// kernel straight into / out of the caller's arena (a SharedArrayBuffer, or a Uint8Array over one).
// Who owns the buffers: the calling thread owns the arena and the offsets/lens arrays; the addon only
// touches them during the call. Which thread runs it: any. The addon is context-aware N-API with no
// global state, so it loads in the main thread and in every worker_thread; each thread loads its own
// instance on first use. poll()/epollWait() block the calling thread: use them in workers (or with
// timeout 0 on the main thread). Worker.terminate() cannot interrupt a thread blocked in a syscall:
// give every worker a wake eventfd in its epoll set (eventfdWrite it to stop or reload) or a finite
// timeout.
//
// Hot path (readBatch/writeBatch): one native call per batch, no JS allocation per frame, when the
// arena is passed as a Uint8Array (a SharedArrayBuffer is turned into a cached Uint8Array view: N-API
// in Node 20 cannot open a SharedArrayBuffer itself). Lengths are Uint32Array so 64 KiB vnet-hdr
// super-frames fit.
//
// Errors: a failing syscall throws an Error (see IoSysError) whose message names the call, the
// interface or fd and strerror(errno), e.g.
//   packetSocket("eth9"): if_nametoindex: No such device (ENODEV)
// with `code` = errno name, `errno`, `syscall`. Wrong argument types throw TypeError, out-of-range values
// RangeError. The addon not being built throws CalitapError code `io-native-missing`.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { endianness } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CalitapError } from '../../common/errors.js';

/** The error every failing syscall throws (Node's SystemError shape). */
export interface IoSysError extends Error {
  /** errno name: 'EBADF', 'ENODEV', 'EPERM', ... */
  code: string;
  errno: number;
  /** the failing system call or ioctl: 'read', 'TUNSETIFF', 'SO_ATTACH_FILTER', ... */
  syscall: string;
}

export function isIoSysError(e: unknown): e is IoSysError {
  return e instanceof Error && typeof (e as Partial<IoSysError>).errno === 'number';
}

// ---------------------------------------------------------------------------------------------------
// Loading

type Mode = 0 | 1 | 2;

interface NativeConstants {
  MODE_AUTO: 0;
  MODE_RW: 1;
  MODE_MMSG: 2;
  TUN_F_CSUM: number;
  TUN_F_TSO4: number;
  TUN_F_TSO6: number;
  TUN_F_TSO_ECN: number;
  TUN_F_UFO: number;
  PACKET_FANOUT_HASH: number;
  PACKET_FANOUT_LB: number;
  PACKET_FANOUT_CPU: number;
  POLLIN: number;
  POLLOUT: number;
  EPOLLIN: number;
  EPOLLOUT: number;
  MMSG_CHUNK: number;
  POLL_MAX: number;
}

/** The raw addon (positional arguments exactly as native/calitap_io.c takes them). */
export interface NativeBinding {
  unsupportedPlatform?: boolean;
  constants: NativeConstants;
  tapOpen(name: string, flags?: TapFlags): TapHandle;
  tapSetPersist(fd: number, on: boolean): void;
  tapSetOffload(fd: number, flags: number): void;
  tapSetVnetHdrSize(fd: number, n: number): void;
  setTxQueueLen(ifname: string, n: number): void;
  ifIndex(name: string): number;
  ifMac(name: string): string;
  ifSetUp(name: string, up?: boolean): void;
  ifSetMtu(name: string, mtu: number): void;
  packetSocket(
    ifname: string,
    opts?: {
      fanoutGroup?: number;
      fanoutMode?: number;
      bpf?: Uint8Array;
      rcvbuf?: number;
      sndbuf?: number;
      ignoreOutgoing?: boolean;
      vnetHdr?: boolean;
    },
  ): number;
  udpSocket(bindAddr: string, port: number, opts?: UdpSocketOptions): number;
  rawSocket(proto: number, opts?: RawSocketOptions): number;
  sockName(fd: number): SockAddr;
  close(fd: number): void;
  fdMode(fd: number): Mode;
  readBatch(
    fd: number,
    arena: Uint8Array,
    offsets: Uint32Array,
    lens: Uint32Array,
    count: number,
    slotCapacity: number,
    mode: Mode,
    srcAddrs?: Uint32Array,
    srcPorts?: Uint16Array,
  ): number;
  writeBatch(
    fd: number,
    arena: Uint8Array,
    offsets: Uint32Array,
    lens: Uint32Array,
    count: number,
    mode: Mode,
    status?: Int32Array,
    dstAddrs?: Uint32Array,
    dstPorts?: Uint16Array,
  ): number;
  poll(fds: Int32Array, timeoutMs: number, events?: number): number;
  epollCreate(): number;
  epollAdd(epfd: number, fd: number, events?: number): void;
  epollMod(epfd: number, fd: number, events?: number): void;
  epollDel(epfd: number, fd: number): void;
  epollWait(epfd: number, readyFds: Int32Array, timeoutMs: number): number;
  eventfdCreate(initval?: number, semaphore?: boolean): number;
  eventfdWrite(fd: number, value?: number): void;
  eventfdRead(fd: number): number;
}

const ADDON = join('build', 'Release', 'calitap_io.node');

/**
 * Where the built addon is: $CALITAP_IO_ADDON, else `build/Release/calitap_io.node` in the nearest
 * ancestor of this module (works from src/ under vitest and from dist/ after `npm run build`).
 */
export function nativeAddonPath(): string | undefined {
  const env = process.env.CALITAP_IO_ADDON;
  if (env) return env;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const p = join(dir, ADDON);
    if (existsSync(p)) return p;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

let binding: NativeBinding | undefined;

/** Loads the addon for this thread (once); throws CalitapError `io-native-missing` when not built. */
export function loadNative(): NativeBinding {
  if (binding) return binding;
  const path = nativeAddonPath();
  if (!path || !existsSync(path)) {
    const where = path ?? `${ADDON} above ${dirname(fileURLToPath(import.meta.url))}`;
    throw new CalitapError(
      'io-native-missing',
      `calitap_io native addon not built: ${where} not found; ` +
        'run `npm install` (it runs `node-gyp rebuild`) or `npx node-gyp rebuild` in the package root',
    );
  }
  let b: NativeBinding;
  try {
    b = createRequire(import.meta.url)(path) as NativeBinding;
  } catch (e) {
    throw new CalitapError(
      'io-native-missing',
      `calitap_io native addon at ${path} failed to load (${(e as Error).message.split('\n')[0]}); ` +
        'rebuild it with `npx node-gyp rebuild`',
    );
  }
  if (b.unsupportedPlatform) {
    throw new CalitapError(
      'io-native-missing',
      `calitap_io: live ports need Linux (this is ${process.platform})`,
    );
  }
  binding = b;
  return b;
}

/** True when the addon is built and loads on this platform. */
export function nativeAvailable(): boolean {
  try {
    loadNative();
    return true;
  } catch {
    return false;
  }
}

const nb = (): NativeBinding => binding ?? loadNative();

// How readBatch/writeBatch drive each fd this thread created: 1 = read()/write() per frame (TAP,
// eventfd), 2 = recvmmsg/sendmmsg (sockets). Unknown fds (e.g. received from another thread) cost one
// fstat() per call until adoptFd() is called for them.
const modes = new Map<number, Mode>();

/** Remember how to drive an fd this thread did not open itself (one fstat()). */
export function adoptFd(fd: number): void {
  modes.set(fd, nb().fdMode(fd));
}

// ---------------------------------------------------------------------------------------------------
// TAP

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

/** TUNSETOFFLOAD flags: which GSO/checksum offloads the reader (us) accepts from the kernel. */
export interface OffloadFlags {
  csum?: boolean;
  tso4?: boolean;
  tso6?: boolean;
  ecn?: boolean;
  ufo?: boolean;
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

// ---------------------------------------------------------------------------------------------------
// Sockets

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

export interface UdpSocketOptions {
  rcvbuf?: number;
  sndbuf?: number;
  /** SO_REUSEPORT: one socket per worker on the same port (the kernel spreads flows) */
  reusePort?: boolean;
}

/** AF_INET UDP socket bound to bindAddr:port (port 0 = any; see sockName), non-blocking. */
export function udpSocket(bindAddr: string, port: number, opts: UdpSocketOptions = {}): number {
  const fd = nb().udpSocket(bindAddr, port, opts);
  modes.set(fd, 2);
  return fd;
}

export interface RawSocketOptions {
  rcvbuf?: number;
  sndbuf?: number;
  /** IP_HDRINCL: frames written include the IPv4 header (reads always include it) */
  hdrIncl?: boolean;
  /** attach a drop-all filter: the socket only exists so the kernel sees a listener for the protocol */
  dropAll?: boolean;
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

export interface SockAddr {
  address: string;
  port: number;
}

/** getsockname() of an AF_INET socket. */
export function sockName(fd: number): SockAddr {
  return nb().sockName(fd);
}

export function close(fd: number): void {
  modes.delete(fd);
  nb().close(fd);
}

// ---------------------------------------------------------------------------------------------------
// Batched I/O

/** A packet arena: the worker's SharedArrayBuffer (or a Uint8Array over it, which is fastest). */
export type Arena = SharedArrayBuffer | ArrayBuffer | Uint8Array;

const views = new WeakMap<SharedArrayBuffer | ArrayBuffer, Uint8Array>();

function arenaView(arena: Arena): Uint8Array {
  if (arena instanceof Uint8Array) return arena;
  let v = views.get(arena);
  if (v === undefined) {
    if (!(arena instanceof SharedArrayBuffer) && !(arena instanceof ArrayBuffer)) {
      throw new TypeError('arena must be a SharedArrayBuffer, an ArrayBuffer or a Uint8Array');
    }
    v = new Uint8Array(arena);
    views.set(arena, v);
  }
  return v;
}

/**
 * Reads up to `count` frames from `fd` without blocking: frame i goes to
 * `arena[offsets[i] .. offsets[i] + slotCapacity)` and its length to `lens[i]`. Returns how many were
 * read (0 when nothing is pending). TAP fds take one read() per frame, sockets recvmmsg() (64 frames per
 * system call).
 *
 * Truncation: `lens[i] > slotCapacity` means the frame was longer than the slot and only
 * `slotCapacity` bytes were stored: count it and drop it.
 * Errors: throws IoSysError (EBADF, EBADFD when the TAP went away, ...) only when no frame was read;
 * frames read before a hard error are returned and the error is thrown by the next call. A socket's
 * one-shot asynchronous error is not thrown, it just ends the batch: ENETDOWN (a packet socket's
 * interface went down), ICMP errors on connected UDP/raw sockets (ECONNREFUSED, EHOSTUNREACH,
 * ENETUNREACH, EHOSTDOWN), ENOBUFS/ENOMEM.
 * UDP/raw sockets: pass srcAddrs (IPv4 as a u32, 10.0.0.1 = 0x0a000001) / srcPorts to learn senders.
 */
export function readBatch(
  fd: number,
  arena: Arena,
  offsets: Uint32Array,
  lens: Uint32Array,
  count: number,
  slotCapacity: number,
  srcAddrs?: Uint32Array,
  srcPorts?: Uint16Array,
): number {
  return nb().readBatch(
    fd,
    arenaView(arena),
    offsets,
    lens,
    count,
    slotCapacity,
    modes.get(fd) ?? 0,
    srcAddrs,
    srcPorts,
  );
}

/**
 * Writes frames `arena[offsets[i] .. offsets[i] + lens[i])`, i < count, without blocking (TAP: one
 * write() each; sockets: sendmmsg()). Returns how many frames were consumed, i.e. sent or dropped;
 * fewer than `count` only when the fd is full (EAGAIN: keep or drop the rest, poll for POLLOUT) or a
 * hard error stopped it (thrown by the next call).
 *
 * Drops: a frame the kernel refuses by itself (ENOBUFS queue full, EMSGSIZE over the MTU, EINVAL
 * malformed, EIO/ENETDOWN/ENXIO interface down, ENETUNREACH/EHOSTUNREACH/ECONNREFUSED/EPERM/EACCES/
 * EADDRNOTAVAIL for UDP and raw) is consumed and counts as a drop: `status[i]` gets its errno (0 when
 * sent) when a status array is passed.
 * Unconnected UDP/raw sockets need dstAddrs (and dstPorts for UDP).
 */
export function writeBatch(
  fd: number,
  arena: Arena,
  offsets: Uint32Array,
  lens: Uint32Array,
  count: number,
  status?: Int32Array,
  dstAddrs?: Uint32Array,
  dstPorts?: Uint16Array,
): number {
  return nb().writeBatch(
    fd,
    arenaView(arena),
    offsets,
    lens,
    count,
    modes.get(fd) ?? 0,
    status,
    dstAddrs,
    dstPorts,
  );
}

// ---------------------------------------------------------------------------------------------------
// Waiting (blocking: worker threads)

export const POLLIN = 0x001;
export const POLLOUT = 0x004;
export const EPOLLIN = 0x001;
export const EPOLLOUT = 0x004;
/** Most fds one poll() takes (the result is a bitmap). */
export const POLL_MAX = 31;

/**
 * poll(2) on up to 31 fds for `events` (default POLLIN). Returns a bitmap: bit i is set when fds[i]
 * is ready, has an error or hung up; 0 on timeout or when a signal interrupted the wait.
 * timeoutMs -1 waits forever. A closed fd throws EBADF.
 */
export function poll(fds: Int32Array, timeoutMs: number, events: number = POLLIN): number {
  return nb().poll(fds, timeoutMs, events);
}

/** epoll_create1(EPOLL_CLOEXEC). */
export function epollCreate(): number {
  return nb().epollCreate();
}

/** Level-triggered interest in `events` (default EPOLLIN) on fd. */
export function epollAdd(epfd: number, fd: number, events: number = EPOLLIN): void {
  nb().epollAdd(epfd, fd, events);
}

export function epollMod(epfd: number, fd: number, events: number = EPOLLIN): void {
  nb().epollMod(epfd, fd, events);
}

export function epollDel(epfd: number, fd: number): void {
  nb().epollDel(epfd, fd);
}

/**
 * Waits up to timeoutMs (-1 forever) and writes the ready fds to readyFds (at most
 * min(readyFds.length, 256)). Returns their number; 0 on timeout or signal.
 */
export function epollWait(epfd: number, readyFds: Int32Array, timeoutMs: number): number {
  return nb().epollWait(epfd, readyFds, timeoutMs);
}

/** A non-blocking eventfd: how the main thread wakes a worker blocked in epollWait/poll. */
export function eventfdCreate(initval = 0, semaphore = false): number {
  const fd = nb().eventfdCreate(initval, semaphore);
  modes.set(fd, 1);
  return fd;
}

/** Adds value (default 1) to the counter: pollers of fd become readable. */
export function eventfdWrite(fd: number, value = 1): void {
  nb().eventfdWrite(fd, value);
}

/** Reads and resets the counter (semaphore mode: takes 1); 0 when it was 0. */
export function eventfdRead(fd: number): number {
  return nb().eventfdRead(fd);
}

// ---------------------------------------------------------------------------------------------------
// BPF (setup time only)

/** Parses `tcpdump -dd` output ("{ 0x28, 0, 0, 0x0000000c }," per line) into sock_filter structs. */
export function parseTcpdumpDd(text: string): Uint8Array {
  const re = /\{\s*(0x[0-9a-fA-F]+|\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(0x[0-9a-fA-F]+|\d+)\s*\}/g;
  const insns: number[][] = [];
  for (const m of text.matchAll(re)) insns.push([Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])]);
  if (insns.length === 0) throw new Error(`no BPF instructions in tcpdump -dd output: ${text.slice(0, 200)}`);
  const out = new Uint8Array(insns.length * 8);
  const dv = new DataView(out.buffer);
  const le = endianness() === 'LE'; // struct sock_filter is in host byte order
  insns.forEach(([code, jt, jf, k], i) => {
    dv.setUint16(i * 8, code, le);
    dv.setUint8(i * 8 + 2, jt);
    dv.setUint8(i * 8 + 3, jf);
    dv.setUint32(i * 8 + 4, k >>> 0, le);
  });
  return out;
}

/**
 * Compiles a pcap filter expression for interface `ifname` (its link type decides the offsets) with
 * `tcpdump -dd`. Setup time only (spawns a process); needs tcpdump and the right to open ifname.
 */
export function bpfFromTcpdump(expr: string, ifname: string): Uint8Array {
  let text: string;
  try {
    text = execFileSync('tcpdump', ['-dd', '-i', ifname, expr], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(
      `bpfFromTcpdump(${JSON.stringify(expr)}, ${ifname}): ${(err.stderr || err.message).trim()}`,
    );
  }
  return parseTcpdumpDd(text);
}
