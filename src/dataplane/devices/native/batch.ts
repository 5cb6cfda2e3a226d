// Batched frame I/O over calitap_io (native/batch_io.c), the hot path: one native call moves a whole
// batch of frames between an fd and the worker's packet arena.
//
// What flows through it: Ethernet frames (TAP, AF_PACKET) and datagrams (UDP, raw IPv4) copied by the
// kernel straight into / out of the caller's arena. Who owns the buffers: the calling thread owns the
// arena and the offsets/lens/status/address arrays; the addon touches them only during the call.
// Which thread runs it: normally a dataplane worker; never blocks. No JS allocation per frame when
// the arena is passed as a Uint8Array (a SharedArrayBuffer is turned into a cached Uint8Array view
// once: N-API in Node 20 cannot open a SharedArrayBuffer itself). Lengths are Uint32Array so 64 KiB
// vnet-hdr super-frames fit.
import { modes, nb } from './load.js';
import type { Arena } from './types.js';

const views = new WeakMap<SharedArrayBuffer | ArrayBuffer, Uint8Array>();

/** The Uint8Array the addon takes for an arena (cached per buffer, so no allocation per call). */
export function arenaView(arena: Arena): Uint8Array {
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
 * Errors: throws IoSysError (code 'EBADF', 'EBADFD' when the TAP went away, 'ENODEV'..., with `errno`
 * and `syscall`) only when no frame was read; never for EAGAIN (that is just 0). Frames read before a
 * hard error are returned and the error is thrown by the next call. A socket's one-shot asynchronous
 * error is not thrown, it just ends the batch: ENETDOWN (a packet socket's interface went down), ICMP
 * errors on connected UDP/raw sockets (ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, EHOSTDOWN),
 * ENOBUFS/ENOMEM. Pass `rxError` (an Int32Array of length ≥ 1) to learn about those:
 * `rxError[0]` = -errno of the error that ended the batch (soft, or hard after frames), 0 otherwise;
 * `errnoName(rxError[0])` names it for a log line.
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
  rxError?: Int32Array,
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
    rxError,
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
 * Prefer writeBatchStatus: it reports every frame and returns the number the kernel accepted.
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

/**
 * Writes frames like writeBatch, and tells the truth about each one: returns how many frames the
 * kernel accepted and sets `status[i]` for EVERY i < count:
 * - `0`: accepted (the device took it: count it as sent);
 * - `-errno` of a refusal: the kernel dropped this frame and the rest went on (-ENOBUFS queue full,
 *   -EMSGSIZE over the MTU, -EINVAL malformed, -EIO / -ENETDOWN / -ENXIO interface down,
 *   -ENETUNREACH / -EHOSTUNREACH / -ECONNREFUSED / -EPERM / -EACCES / -EADDRNOTAVAIL for UDP and raw);
 * - `-EAGAIN` (-11): not tried, the fd was full (keep and retry after POLLOUT, or drop and count);
 * - any other -errno (-EBADF, -EBADFD: the TAP's interface is gone, -EDESTADDRREQ...): not tried,
 *   the fd is broken (every frame from the failing one on has it): log it with
 *   `ioErrorLine(port, 'write', status[i])` and report the port.
 * Never throws for a syscall error (wrong argument types / ranges still throw TypeError/RangeError).
 * `txErrorKind(status[i])` sorts a status into those cases.
 */
export function writeBatchStatus(
  fd: number,
  arena: Arena,
  offsets: Uint32Array,
  lens: Uint32Array,
  count: number,
  status: Int32Array,
  dstAddrs?: Uint32Array,
  dstPorts?: Uint16Array,
): number {
  return nb().writeBatchStatus(
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

/** Most segments one UDP_SEGMENT send may carry (Linux UDP_MAX_SEGMENTS). */
export const UDP_MAX_SEGMENTS = 128;
/** Most payload bytes one UDP datagram (so one UDP_SEGMENT send) carries over IPv4. */
export const UDP_MAX_PAYLOAD = 65507;

/**
 * writeBatchStatus for a UDP socket with per-datagram segmentation (UDP GSO): when `gsoSizes[i]` > 0,
 * datagram i (up to 65507 bytes, at most UDP_MAX_SEGMENTS segments) goes out as a UDP_SEGMENT send and
 * the kernel (or the NIC) cuts it into datagrams of gsoSizes[i] bytes, the last one shorter — e.g.
 * VXLAN packets laid out back to back, each gsoSizes[i] long. 0 sends datagram i as is. Status and
 * return value as writeBatchStatus (one status per send: -EINVAL when the kernel refuses the segment
 * size or count, -EMSGSIZE when a segment exceeds the path MTU); -EOPNOTSUPP on every frame for an fd
 * that is not a socket. Checksums stay on (SO_NO_CHECK cannot be combined with UDP_SEGMENT).
 */
export function writeBatchUdpGso(
  fd: number,
  arena: Arena,
  offsets: Uint32Array,
  lens: Uint32Array,
  count: number,
  gsoSizes: Uint16Array,
  status: Int32Array,
  dstAddrs?: Uint32Array,
  dstPorts?: Uint16Array,
): number {
  return nb().writeBatchStatus(
    fd,
    arenaView(arena),
    offsets,
    lens,
    count,
    modes.get(fd) ?? 0,
    status,
    dstAddrs,
    dstPorts,
    gsoSizes,
  );
}

/**
 * readBatch for a UDP socket opened with `{ gro: true }`: `groSizes[i]` is the segment size of a
 * datagram the kernel coalesced from several of one flow (split it every groSizes[i] bytes; the last
 * piece may be shorter), 0 for a datagram that arrived as it is. Slots need room for 64 KiB datagrams
 * (`lens[i] > slotCapacity` means it was cut). Errors as readBatch.
 */
export function readBatchUdpGro(
  fd: number,
  arena: Arena,
  offsets: Uint32Array,
  lens: Uint32Array,
  count: number,
  slotCapacity: number,
  groSizes: Uint16Array,
  srcAddrs?: Uint32Array,
  srcPorts?: Uint16Array,
  rxError?: Int32Array,
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
    rxError,
    groSizes,
  );
}

/** errno numbers (Linux, asm-generic: the same on x86-64 and arm64) the transmit status uses. */
export const ERRNO = {
  EPERM: 1,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  ENODEV: 19,
  EINVAL: 22,
  EMSGSIZE: 90,
  EADDRNOTAVAIL: 99,
  ENETDOWN: 100,
  ENETUNREACH: 101,
  ENOBUFS: 105,
  ECONNREFUSED: 111,
  EHOSTDOWN: 112,
  EHOSTUNREACH: 113,
  EBADFD: 77,
} as const;

/** What a writeBatchStatus status means for the frame and the port. */
export type TxErrorKind = 'sent' | 'full' | 'refused' | 'device';

const REFUSED = new Set<number>([
  ERRNO.ENOBUFS,
  ERRNO.ENOMEM,
  ERRNO.EMSGSIZE,
  ERRNO.EINVAL,
  ERRNO.EIO,
  ERRNO.ENETDOWN,
  ERRNO.ENXIO,
  ERRNO.ENETUNREACH,
  ERRNO.EHOSTUNREACH,
  ERRNO.EHOSTDOWN,
  ERRNO.ECONNREFUSED,
  ERRNO.EPERM,
  ERRNO.EACCES,
  ERRNO.EADDRNOTAVAIL,
]);

/**
 * 'sent' (0), 'full' (-EAGAIN: not tried), 'refused' (the kernel dropped this one frame), 'device'
 * (the fd is broken: log and report the port). The same split the addon makes (batch_io.c).
 */
export function txErrorKind(status: number): TxErrorKind {
  if (status === 0) return 'sent';
  const e = -status;
  if (e === ERRNO.EAGAIN) return 'full';
  return REFUSED.has(e) ? 'refused' : 'device';
}

/**
 * madvise(MADV_DONTFORK) on the whole pages of `arena`: a fork of the process (the control thread's
 * child processes) then neither copies nor write-protects them, so the worker writing the arena takes
 * no copy-on-write faults or TLB shootdowns after it. Returns the bytes advised. Once per arena.
 */
export function arenaDontFork(arena: Arena): number {
  return nb().arenaDontFork(arenaView(arena));
}
