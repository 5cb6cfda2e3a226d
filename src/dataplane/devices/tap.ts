// A workload's TAP queue (one fd per worker of a multi-queue TAP, opened by the control thread):
// Ethernet frames with one read()/write() per frame inside one native call per batch (or, with the
// worker's io_uring, on by default (CALITAP_URING=0: off), one io_uring_enter per batch). With offloads
// (the default; `--no-offload` turns them off) the TAP was opened with IFF_VNET_HDR and TSO4/CSUM:
// frames carry a virtio_net_hdr, the workload may send TCPv4 super-frames of up to 64 KiB (kept
// whole; segmented natively by the uplink device before a tunnel, or in the graph when the tunnel
// port cannot) and takes super-frames whole (its kernel segments them).
// Who owns the buffers and which thread runs it: see fd.ts (the worker that owns the batch).
import { gsoSegments, type Batch } from '../graph/packet.js';
import { FdDevice } from './fd.js';
import { L2_PLAIN, type DeviceCaps, type DeviceContext } from './device.js';
import { GroWriter } from './gro-write.js'; // GRO hook
import type * as io from './native.js';

const TAP_OFFLOAD: DeviceCaps = { layer: 'l2', vnetHdr: true, gso: ['tcp4'], tunnelGso: false };

export class TapDevice extends FdDevice {
  constructor(
    name: string,
    fd: number,
    b: Batch,
    ctx: DeviceContext,
    /** IFF_VNET_HDR + TSO4 (the batch must have GSO-sized slots) */
    readonly offload: boolean,
    /**
     * A super-frame may be segmented in the graph (ip4-rewrite, into fresh slots of the batch): some
     * tunnel port lacks tunnel GSO (e.g. the udp uplink). False when the uplink device segments
     * tunnel super-frames itself (the packet uplink): then a frame needs no more slots than a plain
     * one. This reservation was the small-packet cost of offloads: reserving 1 + 45 slots per frame
     * let a 256-slot round read only 5 frames per device (instead of ~85), so per-round costs
     * (epoll_wait, the graph's per-node work, one write call per device) were paid every 5 frames.
     */
    readonly graphSegments = true,
    /** the worker's io_uring (default; CALITAP_URING=0: none): one io_uring_enter per batch read or written */
    ring: io.Ring | null = null,
  ) {
    super(name, offload ? TAP_OFFLOAD : L2_PLAIN, fd, b, ctx, { vnet: offload, gsoIn: offload, ring });
    // GRO hook: coalesce a round's TCP segments into super-frames when the TAP takes them (gro-write.ts)
    this.gro =
      this.caps.vnetHdr && this.caps.gso.includes('tcp4') ? new GroWriter(b.capacity, ctx.gro, ring) : null;
  }

  private readonly gro: GroWriter | null; // GRO hook

  // GRO hook: the round's write goes through the coalescing planner when offloads are on
  protected override send(n: number): void {
    if (this.gro === null) super.send(n);
    else this.gro.send(this.fd, this.u8, this.offs, this.lens, n, this.status);
  }

  override slotsPerFrame(minMtu: number): number {
    // a super-frame may become one segment per MSS before a tunnel that cannot take it whole
    return this.offload && this.graphSegments ? 1 + gsoSegments(minMtu) : super.slotsPerFrame(minMtu);
  }
}
