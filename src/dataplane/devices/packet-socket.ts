// The packet uplink: an AF_PACKET socket on the uplink interface (one per worker, PACKET_FANOUT hash,
// BPF filter; opened by the control thread), Ethernet frames with recvmmsg/sendmmsg. With
// PACKET_VNET_HDR every frame carries a virtio_net_hdr: partial checksums (veth and virtio senders
// with checksum offload) are completed before the graph; GSO super-frames (veth peers, NICs doing GRO)
// are kept whole when the batch has GSO-sized slots (offloads on, the default: they go to local
// workloads, whose TAPs take them whole, or out again whole), else dropped and counted. On transmit,
// plain super-frames leave whole with a GSO header (the uplink's kernel segments them); tunnel
// super-frames (IPIP, VXLAN: given a scratch range, the device declares tunnelGso) are segmented
// natively here at write time (tunnel-seg.ts) and leave in the same batched sendmmsg.
// Who owns the buffers and which thread runs it: see fd.ts (the worker that owns the batch).
import type { GroInput } from './gro-input.js';
import { PKT_GSO, type Batch } from '../graph/packet.js';
import { VNET_HDR_LEN } from '../wire/virtio.js';
import { FdDevice } from './fd.js';
import { L2_PLAIN, TX_REFUSED, type DeviceCaps, type DeviceContext } from './device.js';
import { TUNNEL_SCRATCH_SEGS, TunnelSegmenter, type SegmentQueue } from './tunnel-seg.js';

function capsOf(vnet: boolean, gsoIn: boolean, tunnelGso: boolean): DeviceCaps {
  if (!vnet) return { ...L2_PLAIN, tunnelGso };
  return { layer: 'l2', vnetHdr: true, gso: gsoIn ? ['tcp4'] : [], tunnelGso };
}

export interface PacketSocketOptions {
  /** the socket has PACKET_VNET_HDR */
  vnet: boolean;
  /** accept GSO super-frames on receive (GSO-sized slots) */
  gsoIn: boolean;
  /**
   * scratch range [start, end) of the batch's arena, outside every slot, for the segments of tunnel
   * super-frames: given, the device takes tunnel super-frames whole (caps.tunnelGso)
   */
  scratch?: { start: number; end: number };
  /** input GRO of IPIP-carried TCP (gro-input.ts; only with gsoIn) */
  inputGro?: GroInput | null;
}

export class PacketSocketDevice extends FdDevice implements SegmentQueue {
  private readonly seg: TunnelSegmenter | null;

  constructor(name: string, fd: number, b: Batch, ctx: DeviceContext, o: PacketSocketOptions) {
    const sc = o.scratch;
    super(name, capsOf(o.vnet, o.gsoIn, sc !== undefined), fd, b, ctx, {
      ...o,
      queue: b.capacity + (sc !== undefined ? TUNNEL_SCRATCH_SEGS : 0),
    });
    this.seg = sc === undefined ? null : new TunnelSegmenter(b, sc.start, sc.end, o.vnet);
  }

  override tx(b: Batch, i: number): void {
    const seg = this.seg;
    if (seg !== null && (b.flags[i] & PKT_GSO) !== 0) {
      const r = seg.segment(b, i, this);
      if (r > 0) {
        this.ctx.tunnelSegmented();
        return;
      }
      if (r < 0) {
        this.ctx.refused(this.port, TX_REFUSED, 1);
        return;
      }
    }
    super.tx(b, i);
  }

  /** SegmentQueue: queues a segment the segmenter wrote (vnet header included, before off). */
  push(off: number, len: number): boolean {
    const n = this.n;
    if (n >= this.offs.length) return false;
    const h = this.vnet ? VNET_HDR_LEN : 0;
    this.offs[n] = off - h;
    this.lens[n] = len + h;
    this.bytes[n] = len;
    this.n = n + 1;
    return true;
  }

  room(): number {
    return this.offs.length - this.n;
  }

  flushQueue(): void {
    this.flush();
  }

  override flush(): void {
    super.flush();
    this.seg?.reset();
  }
}
