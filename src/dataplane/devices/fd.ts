// Devices over a file descriptor of the native addon (TAP queues, AF_PACKET sockets; the UDP uplink
// builds on the same helpers): batched reads straight into the batch's slots and one batched write
// per round, optionally with a virtio_net_hdr in front of every frame.
//
// What flows through it: Ethernet frames between the kernel and the batch arena. With a vnet header,
// receive reads each frame VNET_HDR_LEN bytes before its slot's frame start (the header lands in the
// headroom), completes partial checksums and keeps TCPv4 GSO super-frames whole (their segment size
// in b.gso) when the device takes them, else drops and counts them; transmit writes the header into
// the headroom (GSO fields for super-frames, zeros otherwise). Who owns the buffers: the thread that
// owns the batch; the fd belongs to the control thread (it opens and closes it; a device never
// closes its fd). Which thread runs it: the batch owner (a worker). No allocation per packet: the
// per-position views of the batch's offset arrays are made once per batch.
import type { Batch } from '../graph/packet.js';
import type { GroInput } from './gro-input.js';
import { PKT_GSO } from '../graph/packet.js';
import {
  VNET_ERR_GSO,
  VNET_GSO_TCPV4,
  VNET_HDR_LEN,
  VNET_OK,
  vnetClear,
  vnetFinish,
  vnetGsoType,
  vnetTcp4Gso,
  vnetTunnelTcp4Gso,
  vnetWriteTcp4Gso,
} from '../wire/virtio.js';
import * as io from './native.js';
import {
  ERRNO,
  QueuedDevice,
  errnoOf,
  type DeviceCaps,
  type DeviceContext,
  type PortInput,
} from './device.js';

/**
 * Views of a batch's per-slot arrays starting at every position k (readBatch fills "from slot k on"
 * without subarray() per call): frame offsets, lengths, offsets minus a vnet header, offsets plus
 * the UDP uplink's synthesized outer headers, and sender addresses/ports for UDP reads.
 */
export class BatchViews {
  readonly off: Uint32Array[] = [];
  readonly len: Uint32Array[] = [];
  readonly vnetOff: Uint32Array[] = [];
  private udp: { off: Uint32Array[]; addr: Uint32Array[]; port: Uint16Array[] } | null = null;

  constructor(private readonly b: Batch) {
    const voff = b.off.map((o) => o - VNET_HDR_LEN);
    for (let k = 0; k <= b.capacity; k++) {
      this.off.push(b.off.subarray(k));
      this.len.push(b.len.subarray(k));
      this.vnetOff.push(voff.subarray(k));
    }
  }

  /** Read offsets `outer` bytes into each slot's frame, and sender address/port arrays (UDP). */
  udpViews(outer: number): { off: Uint32Array[]; addr: Uint32Array[]; port: Uint16Array[] } {
    if (this.udp !== null) return this.udp;
    const b = this.b;
    const uoff = b.off.map((o) => o + outer);
    const addrs = new Uint32Array(b.capacity);
    const ports = new Uint16Array(b.capacity);
    const u = { off: [] as Uint32Array[], addr: [] as Uint32Array[], port: [] as Uint16Array[] };
    for (let k = 0; k <= b.capacity; k++) {
      u.off.push(uoff.subarray(k));
      u.addr.push(addrs.subarray(k));
      u.port.push(ports.subarray(k));
    }
    return (this.udp = u);
  }
}

const viewsOf = new WeakMap<Batch, BatchViews>();

/** The views of batch b (made on first use). */
export function batchViews(b: Batch): BatchViews {
  let v = viewsOf.get(b);
  if (v === undefined) viewsOf.set(b, (v = new BatchViews(b)));
  return v;
}

/**
 * Strips the virtio_net_hdr of frames [at, at + n) and completes partial checksums; TCPv4 GSO
 * super-frames, plain or inside IPIP/VXLAN (GRO on the interface), are kept whole (segment size in
 * b.gso) when `gso`, else dropped. A kept super-frame's TCP checksum stays partial (the pseudo-header
 * sum): the kernel validated every merged segment's checksum before GRO merged it, and the TAP or
 * uplink it leaves by completes it per segment. A frame that cannot
 * be used gets a length over the slot so that claim() drops it; it is counted under its own reason.
 * Reads only the header and frame bytes the kernel wrote: any header content only returns or drops.
 */
export function finishVnet(b: Batch, at: number, n: number, gso: boolean, pi: PortInput): void {
  const u8 = b.u8;
  for (let i = at; i < at + n; i++) {
    const len = b.len[i] - VNET_HDR_LEN;
    b.gso[i] = 0;
    if (len > b.slotData || len < 0) {
      b.len[i] = b.slotData + 1; // claim() drops and counts it as truncated
      continue;
    }
    const hdr = b.off[i] - VNET_HDR_LEN;
    if (gso && vnetGsoType(u8, hdr) === VNET_GSO_TCPV4) {
      const mss = vnetTcp4Gso(u8, hdr, b.off[i], len);
      // else one inside IPIP or VXLAN (the kernel's tunnel GRO): decapsulated whole, PKT_GSO kept
      const tmss = mss > 0 ? 0 : vnetTunnelTcp4Gso(u8, hdr, b.off[i], len);
      if (mss > 0 || tmss > 0) {
        b.gso[i] = mss + tmss;
        b.len[i] = len;
        pi.gsoReceived(tmss > 0);
        continue;
      }
    }
    const r = vnetFinish(u8, hdr, b.off[i], len);
    if (r !== VNET_OK) {
      // dropped by claim(), counted here under its own reason rather than as truncated
      pi.vnetRefused(r === VNET_ERR_GSO);
      b.len[i] = b.slotData + 1;
      continue;
    }
    b.len[i] = len;
  }
}

export interface FdDeviceOptions {
  /** frames carry a virtio_net_hdr (IFF_VNET_HDR TAP, PACKET_VNET_HDR socket) */
  vnet: boolean;
  /** keep TCPv4 GSO super-frames whole on receive (the batch has 64 KiB slots) */
  gsoIn: boolean;
  /** frames one round may queue (default: the batch capacity) */
  queue?: number;
  /**
   * the worker's io_uring (TAP queues; CALITAP_URING=0 turns it off): reads and writes go through
   * readBatchUring / writeBatchUring, one io_uring_enter per batch instead of a syscall per frame
   */
  ring?: io.Ring | null;
  /**
   * merges the IPIP-carried TCP segments of one flow that one read returned into a super-frame
   * before the graph (gro-input.ts; the packet uplink with offloads, unless CALITAP_INPUT_GRO=0)
   */
  inputGro?: GroInput | null;
}

/** A TAP queue or packet socket: Ethernet frames, optionally behind a vnet header. */
export abstract class FdDevice extends QueuedDevice {
  protected readonly u8: Uint8Array;
  private readonly views: BatchViews;
  protected readonly vnet: boolean;
  private readonly gsoIn: boolean;
  /** null: plain syscalls (no ring, or the kernel refused RWF_NOWAIT reads/writes on this fd) */
  protected ring: io.Ring | null;
  private readonly inputGro: GroInput | null;
  /**
   * frames the last read got (the ring's first wave is twice that, at least 2: a frame and the read
   * that finds the device drained; each read that finds nothing still costs the kernel a TAP read,
   * ~20 % of a lone frame's round when the worker wakes cold, docs/live.md "Latency")
   */
  private lastRead = 0;

  constructor(name: string, caps: DeviceCaps, fd: number, b: Batch, ctx: DeviceContext, o: FdDeviceOptions) {
    super(name, caps, fd, ctx, o.queue ?? b.capacity);
    this.u8 = b.u8;
    this.views = batchViews(b);
    this.vnet = o.vnet;
    this.gsoIn = o.gsoIn && o.vnet;
    this.ring = o.ring ?? null;
    this.inputGro = this.gsoIn ? (o.inputGro ?? null) : null;
    io.adoptFd(fd);
  }

  read(b: Batch, max: number, sec: number, nsec: number): number {
    const at = b.count;
    const v = this.views;
    const offs = this.vnet ? v.vnetOff[at] : v.off[at];
    const cap = this.vnet ? b.slotData + VNET_HDR_LEN : b.slotData;
    let got: number;
    try {
      got =
        this.ring !== null
          ? io.readBatchUring(
              this.ring,
              this.fd,
              this.u8,
              offs,
              v.len[at],
              max,
              cap,
              undefined,
              Math.max(2, this.lastRead * 2),
            )
          : io.readBatch(this.fd, this.u8, offs, v.len[at], max, cap);
    } catch (e) {
      const errno = errnoOf(e);
      // a kernel that refuses io_uring's non-blocking reads on this fd: plain read() from now on
      if (this.ring !== null && errno === ERRNO.EOPNOTSUPP) {
        this.ring = null;
        return this.read(b, max, sec, nsec);
      }
      return -errno;
    }
    this.lastRead = got;
    if (got === 0) return 0;
    if (this.vnet) finishVnet(b, at, got, this.gsoIn, this.ctx.input);
    const gi = this.inputGro;
    const merged = gi !== null ? gi.merge(b, at, got) : 0;
    // the frames merged into another were marked for claim() to drop: not truncated ones
    this.ctx.input.truncated(b.claim(got, this.port, sec, nsec, this.gsoIn) - merged);
    if (merged > 0) this.ctx.input.groInput(merged, gi!.runs);
    return got;
  }

  override tx(b: Batch, i: number): void {
    if (!this.vnet) {
      super.tx(b, i);
      return;
    }
    const n = this.n;
    if (n >= this.offs.length) {
      super.tx(b, i); // counts it as queue-full
      return;
    }
    const hdr = b.off[i] - VNET_HDR_LEN;
    if ((b.flags[i] & PKT_GSO) !== 0) vnetWriteTcp4Gso(b.u8, hdr, b.off[i], b.gso[i]);
    else vnetClear(b.u8, hdr);
    this.offs[n] = hdr;
    this.lens[n] = b.len[i] + VNET_HDR_LEN;
    this.bytes[n] = b.len[i];
    this.n = n + 1;
  }

  protected send(n: number): void {
    if (this.ring !== null) {
      io.writeBatchUring(this.ring, this.fd, this.u8, this.offs, this.lens, n, this.status);
      if (n === 0 || this.status[0] !== -ERRNO.EOPNOTSUPP) return;
      this.ring = null; // the kernel refused io_uring's non-blocking writes on this fd: plain write()
    }
    io.writeBatchStatus(this.fd, this.u8, this.offs, this.lens, n, this.status);
  }
}
