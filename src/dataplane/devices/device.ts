// The device layer: every frame enters and leaves the dataplane through a Device (TAP queue, packet
// socket, UDP uplink socket, pcap file, or MemDevice in tests), one per port.
//
// What flows through it: on receive, a device reads a batch of frames straight into the batch's
// headroomed slots (after `b.count`), finishes them (virtio-net header, synthesized outer headers)
// and claims them for its port; on transmit, interface-output hands it packets one by one (`tx`),
// the device queues their offsets and, at the end of the round (`flush`), writes them in one call
// and learns a status per frame. Transmit counters are counted here, after the write: a frame counts
// as sent only when the device accepted it; refused frames are counted per port and reason
// (PortCounters.txDropped) and under the `port-output` node. A device that fails (a read or write
// error that is not about one frame) is marked `failed`, counted, and reported through
// DeviceContext.onError: the owner stops reading it until the control thread re-arms it.
// Who owns the buffers: the batch's arena belongs to the thread that owns the batch (a worker or
// the replay loop); devices keep only offsets into it until flush(). Which thread runs it: the owner
// of the batch. No allocation per packet.
import { constants as osConstants } from 'node:os';
import { GraphNode, drop, event, type NodeDecl } from '../graph/graph.js';
import { piecesPerFrame, type Batch } from '../graph/packet.js';
import { TX_ERROR, TX_QUEUE_FULL, TX_REFUSED, type PortCounters } from '../graph/counters.js';
import type { PortSink } from '../graph/env.js';
import { Tcp4GroNode } from './gro-node.js'; // GRO hook

/** GSO super-frame kinds a device can carry whole (TCP over IPv4: TSO4). */
export type GsoKind = 'tcp4';

export interface DeviceCaps {
  /** 'l2': Ethernet frames; 'l3': IP payloads (the device synthesizes and strips link headers) */
  readonly layer: 'l2' | 'l3';
  /** frames carry a virtio_net_hdr on the wire (written in the headroom on transmit) */
  readonly vnetHdr: boolean;
  /** GSO super-frames it may deliver on receive and takes whole on transmit */
  readonly gso: readonly GsoKind[];
  /**
   * takes TCP super-frames inside a tunnel (IPIP, VXLAN) whole and segments them at write time (the
   * packet and udp uplinks with offloads: tunnel-seg.ts); the live owner copies it into
   * PortTable.tunnelGso, which tells ip4-rewrite not to segment in the graph
   */
  readonly tunnelGso: boolean;
}

export const L2_PLAIN: DeviceCaps = { layer: 'l2', vnetHdr: false, gso: [], tunnelGso: false };

/** Largest Ethernet frame a live port receives without GSO (1500-byte MTU + header). */
export const MAX_ETH_FRAME = 1514;

export interface Device extends PortSink {
  /** the port's name (logs, error reports) */
  readonly name: string;
  readonly caps: DeviceCaps;
  /** fd to wait on for receive readiness, -1 when the device is not waitable (memory, pcap) */
  readonly fd: number;
  /** port index it is attached as (set by its owner before the first read or tx) */
  port: number;
  /** set when it failed: not read, its frames counted as `error`, until the owner re-arms it */
  failed: boolean;
  /**
   * Slots a frame read from it may need in the worst case: itself plus its IPv4 fragments at the
   * smallest path MTU, or its segments (a GSO super-frame before a tunnel). Sizes the round budget.
   */
  slotsPerFrame(minMtu: number): number;
  /**
   * Reads up to `max` frames into the batch's slots from b.count on and claims them for `port`
   * (timestamp sec/nsec unless the device has its own). Returns how many frames it took off the
   * device (frames it dropped are counted, under port-input), 0 when none is pending, or -errno
   * when the device failed (nothing read; the caller reports it). Fewer than `max` means nothing
   * more was pending: the driver does not ask again in the same round (no EAGAIN-only system call).
   */
  read(b: Batch, max: number, sec: number, nsec: number): number;
  /** Releases what it owns (not the fd: the control thread owns fds). */
  close?(): void;
}

const PI_TRUNCATED = 0;
const PI_GSO = 1;
const PI_BAD_CSUM_OFFSET = 2;
const PI_READ_ERROR = 3;
const PI_GSO_RECEIVED = 4;
const PI_GSO_TUNNEL = 5;
const PI_UDP_GRO = 6;
const PI_GRO_INPUT_MERGED = 7;
const PI_GRO_INPUT_FRAMES = 8;

/** Counters for what a port read but never reached the graph (no packets flow through it). */
export class PortInput extends GraphNode {
  readonly decl: NodeDecl = {
    name: 'port-input',
    reasons: [
      drop('truncated'),
      drop('gso-unsupported'),
      drop('bad-checksum-offset'),
      // a failed read: no frame is known to be lost, the device is reported and not read until re-armed
      event('read-error'),
      // TCPv4 super-frames the kernel handed over whole (a peer's TSO, or GRO on the interface) and
      // the graph takes whole; of them, the ones inside IPIP or VXLAN (the kernel's tunnel GRO)
      event('gso-received'),
      event('gso-tunnel-received'),
      // datagrams the udp uplink's socket handed over coalesced (UDP_GRO), split back into frames
      event('udp-gro-received'),
      // input GRO (gro-input.ts): tunnel segments merged into the frame before them on receive, and
      // the super-frames those merges made
      event('gro-input-merged'),
      event('gro-input-superframes'),
    ],
  };

  truncated(n: number): void {
    this.c[this.base + PI_TRUNCATED] += n;
  }

  /** A super-frame kept whole on receive (tunnel: an IPIP or VXLAN one, to be decapsulated). */
  gsoReceived(tunnel: boolean): void {
    this.c[this.base + PI_GSO_RECEIVED]++;
    if (tunnel) this.c[this.base + PI_GSO_TUNNEL]++;
  }

  /** n coalesced datagrams (UDP_GRO) read by the udp uplink. */
  udpGroReceived(n: number): void {
    this.c[this.base + PI_UDP_GRO] += n;
  }

  /** Input GRO merged `merged` frames into `runs` super-frames (gro-input.ts). */
  groInput(merged: number, runs: number): void {
    this.c[this.base + PI_GRO_INPUT_MERGED] += merged;
    this.c[this.base + PI_GRO_INPUT_FRAMES] += runs;
  }

  /** A frame the vnet header check refused (it was first marked truncated for claim() to drop). */
  vnetRefused(gso: boolean): void {
    this.c[this.base + (gso ? PI_GSO : PI_BAD_CSUM_OFFSET)]++;
    this.c[this.base + PI_TRUNCATED]--;
  }
}

/** Frames devices refused, summed over ports (per port: PortCounters.txDropped). */
export class PortOutput extends GraphNode {
  readonly decl: NodeDecl = {
    name: 'port-output',
    reasons: [
      // same order as TX_DROP_REASONS
      drop('queue-full'),
      drop('refused'),
      drop('error'),
      // a device failed on write (counted once per flush): reported to the control thread
      event('write-error'),
      // a tunnel super-frame the device segmented natively at write time (tunnel-seg.ts)
      event('tunnel-segmented'),
    ],
  };
}
const PO_WRITE_ERROR = 3;
const PO_TUNNEL_SEGMENTED = 4;

export type DeviceOp = 'read' | 'write';

/**
 * Linux errno numbers the devices use (asm-generic: the same on x86-64 and arm64). Node's
 * os.constants.errno lacks EBADFD and EHOSTDOWN. The table and the refusal set below repeat the
 * addon's (native/batch.ts) on purpose: this module is on replay's path, which never loads the addon.
 */
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
  EBADFD: 77,
  EMSGSIZE: 90,
  EOPNOTSUPP: 95,
  EADDRNOTAVAIL: 99,
  ENETDOWN: 100,
  ENETUNREACH: 101,
  ENOBUFS: 105,
  ECONNREFUSED: 111,
  EHOSTDOWN: 112,
  EHOSTUNREACH: 113,
} as const;

export const EAGAIN = ERRNO.EAGAIN;

const ERRNO_NAMES: string[] = [];
for (const [name, n] of [...Object.entries(ERRNO), ...Object.entries(osConstants.errno)])
  ERRNO_NAMES[n] ??= name;

/** 'EBADF' for 9 (positive or negative), `errno <n>` when unknown. */
export function errnoName(errno: number): string {
  const e = Math.abs(errno);
  return ERRNO_NAMES[e] ?? `errno ${e}`;
}

/** errnos that drop one frame and let the batch go on (the addon's is_drop_errno, batch_io.c). */
const REFUSAL = new Uint8Array(256);
for (const name of [
  'ENOBUFS',
  'ENOMEM',
  'EMSGSIZE',
  'EINVAL',
  'EIO',
  'ENETDOWN',
  'ENXIO',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ECONNREFUSED',
  'EPERM',
  'EACCES',
  'EADDRNOTAVAIL',
] as const)
  REFUSAL[ERRNO[name]] = 1;

/** The errno of a thrown I/O error (IoSysError), EIO when it has none. */
export function errnoOf(e: unknown): number {
  const n = (e as { errno?: unknown } | null)?.errno;
  return typeof n === 'number' && n !== 0 ? Math.abs(n) : ERRNO.EIO;
}

/**
 * What the devices of one dataplane (a worker, or a replay run) count into and report to: the
 * port counters, the counter-only nodes port-input and port-output (add them to the graph with
 * `nodes()`), and the owner's handler for failed devices.
 */
export class DeviceContext {
  readonly input = new PortInput();
  readonly output = new PortOutput();
  /** what TAP receive coalescing did (tcp4-gro counters; GRO hook) */
  readonly gro = new Tcp4GroNode();
  /** called once when a device fails (it is already marked failed); the owner stops reading it */
  onError: (dev: Device, op: DeviceOp, errno: number) => void = () => {};

  constructor(readonly ports: PortCounters) {}

  /** The counter-only nodes to build the graph with (as a feature: `() => ctx.nodes()`). */
  nodes(): GraphNode[] {
    return [this.input, this.output, this.gro]; // GRO hook: this.gro
  }

  /** Frames the device accepted. */
  sent(p: number, frames: number, bytes: number): void {
    this.ports.txPackets[p] += frames;
    this.ports.txBytes[p] += bytes;
  }

  /** Frames the device refused for reason r (TX_QUEUE_FULL, TX_REFUSED, TX_ERROR). */
  refused(p: number, r: number, frames: number): void {
    this.ports.txDropped[r][p] += frames;
    const o = this.output;
    o.c[o.base + r] += frames;
  }

  /** A tunnel super-frame a device segmented itself (counted once per super-frame). */
  tunnelSegmented(): void {
    const o = this.output;
    o.c[o.base + PO_TUNNEL_SEGMENTED]++;
  }

  /** A read failed with errno: counted, the device marked failed and reported. */
  readFailed(dev: Device, errno: number): void {
    const i = this.input;
    i.c[i.base + PI_READ_ERROR]++;
    this.fail(dev, 'read', errno);
  }

  /**
   * Accounts a flush of n frames: status[k] is 0 (accepted), -EAGAIN (not tried: the device was
   * full), -errno of a refusal of that one frame, or any other -errno (the device is broken).
   * bytes[k] is what the frame counts as (its length without any device header).
   */
  account(dev: Device, status: Int32Array, bytes: Uint32Array, n: number): void {
    let ok = 0;
    let okBytes = 0;
    let full = 0;
    let refused = 0;
    let broken = 0;
    let errno = 0;
    for (let k = 0; k < n; k++) {
      const s = status[k];
      if (s === 0) {
        ok++;
        okBytes += bytes[k];
      } else if (s === -EAGAIN) full++;
      else if (-s < 256 && REFUSAL[-s] === 1) refused++;
      else {
        broken++;
        errno = -s;
      }
    }
    const p = dev.port;
    if (ok > 0) this.sent(p, ok, okBytes);
    if (full > 0) this.refused(p, TX_QUEUE_FULL, full);
    if (refused > 0) this.refused(p, TX_REFUSED, refused);
    if (broken > 0) {
      this.refused(p, TX_ERROR, broken);
      const o = this.output;
      o.c[o.base + PO_WRITE_ERROR]++;
      this.fail(dev, 'write', errno);
    }
  }

  private fail(dev: Device, op: DeviceOp, errno: number): void {
    if (dev.failed) return;
    dev.failed = true;
    this.onError(dev, op, errno);
  }
}

/**
 * A device that queues a round's frames as offsets into the arena and writes them at flush with a
 * status per frame (TAP queues, packet and UDP sockets, MemDevice). Subclasses read, and send.
 */
export abstract class QueuedDevice implements Device {
  port = -1;
  failed = false;
  protected readonly offs: Uint32Array;
  protected readonly lens: Uint32Array;
  protected readonly status: Int32Array;
  /** what each queued frame counts as in txBytes */
  protected readonly bytes: Uint32Array;
  protected n = 0;

  constructor(
    readonly name: string,
    readonly caps: DeviceCaps,
    readonly fd: number,
    protected readonly ctx: DeviceContext,
    /** frames one round can queue (the batch capacity) */
    capacity: number,
  ) {
    this.offs = new Uint32Array(capacity);
    this.lens = new Uint32Array(capacity);
    this.status = new Int32Array(capacity);
    this.bytes = new Uint32Array(capacity);
  }

  abstract read(b: Batch, max: number, sec: number, nsec: number): number;

  /** Writes the n queued frames; sets status[k] for every k < n (see DeviceContext.account). */
  protected abstract send(n: number): void;

  slotsPerFrame(minMtu: number): number {
    return piecesPerFrame(minMtu, MAX_ETH_FRAME) + 1;
  }

  tx(b: Batch, i: number): void {
    const n = this.n;
    if (n >= this.offs.length) {
      this.ctx.refused(this.port, TX_QUEUE_FULL, 1);
      return;
    }
    this.offs[n] = b.off[i];
    this.lens[n] = b.len[i];
    this.bytes[n] = b.len[i];
    this.n = n + 1;
  }

  flush(): void {
    const n = this.n;
    if (n === 0) return;
    this.n = 0;
    if (this.failed) {
      // reported already; its frames are lost until the control thread re-arms it
      this.ctx.refused(this.port, TX_ERROR, n);
      return;
    }
    this.send(n);
    this.ctx.account(this, this.status, this.bytes, n);
  }
}

export { TX_ERROR, TX_QUEUE_FULL, TX_REFUSED };
