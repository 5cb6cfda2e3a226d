// The packet uplink: an AF_PACKET socket on the uplink interface (one per worker, PACKET_FANOUT hash,
// BPF filter; opened by the control thread), Ethernet frames with recvmmsg/sendmmsg. With
// PACKET_VNET_HDR every frame carries a virtio_net_hdr: partial checksums (veth and virtio senders
// with checksum offload) are completed before the graph; GSO super-frames (veth peers, NICs doing GRO)
// are kept whole only when the batch has GSO-sized slots (`--tap-offload`: they can only go to local
// workloads, whose TAPs take them whole), else dropped and counted. On transmit, super-frames leave
// whole with a GSO header (the uplink's kernel segments them).
// Who owns the buffers and which thread runs it: see fd.ts (the worker that owns the batch).
import type { Batch } from '../graph/packet.js';
import { FdDevice } from './fd.js';
import { L2_PLAIN, type DeviceCaps, type DeviceContext } from './device.js';

const VNET: DeviceCaps = { layer: 'l2', vnetHdr: true, gso: [], tunnelGso: false };
const VNET_GSO: DeviceCaps = { layer: 'l2', vnetHdr: true, gso: ['tcp4'], tunnelGso: false };

export class PacketSocketDevice extends FdDevice {
  constructor(
    name: string,
    fd: number,
    b: Batch,
    ctx: DeviceContext,
    o: {
      /** the socket has PACKET_VNET_HDR */
      vnet: boolean;
      /** accept GSO super-frames on receive (GSO-sized slots) */
      gsoIn: boolean;
    },
  ) {
    super(name, o.vnet ? (o.gsoIn ? VNET_GSO : VNET) : L2_PLAIN, fd, b, ctx, o);
  }
}
