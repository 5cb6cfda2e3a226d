// A workload's TAP queue (one fd per worker of a multi-queue TAP, opened by the control thread):
// Ethernet frames with one read()/write() per frame inside one native call per batch. With
// `--tap-offload` the TAP was opened with IFF_VNET_HDR and TSO4 offloads: frames carry a
// virtio_net_hdr, the workload may send TCPv4 super-frames of up to 64 KiB (kept whole, segmented
// later only before a tunnel) and takes super-frames whole (its kernel segments them).
// Who owns the buffers and which thread runs it: see fd.ts (the worker that owns the batch).
import { gsoSegments, type Batch } from '../graph/packet.js';
import { FdDevice } from './fd.js';
import { L2_PLAIN, type DeviceCaps, type DeviceContext } from './device.js';

const TAP_OFFLOAD: DeviceCaps = { layer: 'l2', vnetHdr: true, gso: ['tcp4'], tunnelGso: false };

export class TapDevice extends FdDevice {
  constructor(
    name: string,
    fd: number,
    b: Batch,
    ctx: DeviceContext,
    /** IFF_VNET_HDR + TSO4 (the batch must have GSO-sized slots) */
    readonly offload: boolean,
  ) {
    super(name, offload ? TAP_OFFLOAD : L2_PLAIN, fd, b, ctx, { vnet: offload, gsoIn: offload });
  }

  override slotsPerFrame(minMtu: number): number {
    // a super-frame may become one segment per MSS before a tunnel
    return this.offload ? 1 + gsoSegments(minMtu) : super.slotsPerFrame(minMtu);
  }
}
