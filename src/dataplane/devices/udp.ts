// The `udp` uplink (`calitap run --uplink udp`): VXLAN between nodes over a kernel UDP socket bound
// to the node IP and the VXLAN port, for hosts without CAP_NET_RAW (no AF_PACKET). An L3 device.
//
// What flows through it: receiving, the kernel hands us the UDP payload (VXLAN header + inner frame)
// and the sender's address; UdpDevice reads it 42 bytes into the slot and `synthVxlanOuter` writes
// an outer Ethernet + IPv4 + UDP header in front of it, so the packet enters the graph at
// ethernet-input exactly like a VXLAN frame from the packet uplink (same peer, VNI and VTEP checks).
// Transmitting, UdpDevice takes the frames the graph sends to the uplink port: a VXLAN frame
// (outer Ethernet/IPv4/UDP to the VXLAN port) leaves as its UDP payload to the outer destination;
// anything else (plain IP to the gateway, ARP) has no way out and is counted as
// `udp-uplink: not-vxlan`; datagrams the kernel refuses are counted per port and reason like any
// device's (`port-output: refused`...). The kernel builds the outer headers itself: source port = the
// bound VXLAN port (not the per-flow hash), its own UDP checksum, TTL, DF and fragmentation.
// Who owns the buffers: the worker's batch arena; the device only records offsets until flush().
// Which thread runs it: the worker that owns the batch. No allocation per packet.
import { GraphNode, drop, type NodeDecl } from '../graph/graph.js';
import { PKT_GSO, type Batch } from '../graph/packet.js';
import { QueuedDevice, TX_REFUSED, errnoOf, type DeviceCaps, type DeviceContext } from './device.js';
import { TUNNEL_SCRATCH_SEGS, TunnelSegmenter, type GsoQueue } from './tunnel-seg.js';
import { batchViews } from './fd.js';
import * as io from './native.js';

/** Outer Ethernet (14) + IPv4 without options (20) + UDP (8) in front of a received UDP payload. */
export const UDP_OUTER_LEN = 42;

/** Most datagrams the kernel coalesces into one with UDP_GRO (UDP_GRO_CNT_MAX, net/ipv4/udp_offload.c). */
export const UDP_GRO_MAX_SEGS = 64;

/** Source MAC of the synthesized outer header (the kernel does not tell us the sender's). */
export const UDP_PEER_MAC = new Uint8Array([0x02, 0, 0, 0, 0, 0]);

export { UDP_NEIGHBOR_MAC } from './udp-mode.js';

/**
 * Writes an outer Ethernet + IPv4 + UDP header at u8[off .. off + 42) in front of the `payloadLen`
 * bytes of UDP payload at off + 42: Ethernet from UDP_PEER_MAC to dstMac[dstMacOff .. +6), IPv4 from
 * srcIp to dstIp (TTL 64, no DF, id 0, valid header checksum), UDP srcPort → dstPort with checksum 0
 * (none, as RFC 7348 allows; the kernel already verified the real one). Returns the frame length.
 */
export function synthVxlanOuter(
  u8: Uint8Array,
  off: number,
  payloadLen: number,
  dstMac: Uint8Array,
  dstMacOff: number,
  srcIp: number,
  srcPort: number,
  dstIp: number,
  dstPort: number,
): number {
  // Ethernet
  for (let k = 0; k < 6; k++) {
    u8[off + k] = dstMac[dstMacOff + k];
    u8[off + 6 + k] = UDP_PEER_MAC[k];
  }
  u8[off + 12] = 0x08;
  u8[off + 13] = 0x00;
  // IPv4 (RFC 791 §3.1)
  const ip = off + 14;
  const total = 28 + payloadLen;
  u8[ip] = 0x45;
  u8[ip + 1] = 0;
  u8[ip + 2] = total >>> 8;
  u8[ip + 3] = total & 255;
  u8[ip + 4] = 0;
  u8[ip + 5] = 0;
  u8[ip + 6] = 0;
  u8[ip + 7] = 0;
  u8[ip + 8] = 64;
  u8[ip + 9] = 17;
  u8[ip + 12] = srcIp >>> 24;
  u8[ip + 13] = (srcIp >>> 16) & 255;
  u8[ip + 14] = (srcIp >>> 8) & 255;
  u8[ip + 15] = srcIp & 255;
  u8[ip + 16] = dstIp >>> 24;
  u8[ip + 17] = (dstIp >>> 16) & 255;
  u8[ip + 18] = (dstIp >>> 8) & 255;
  u8[ip + 19] = dstIp & 255;
  // header checksum (RFC 1071): one's-complement sum of the ten 16-bit words, checksum word as 0
  let s =
    0x4500 + total + (64 << 8) + 17 + (srcIp >>> 16) + (srcIp & 0xffff) + (dstIp >>> 16) + (dstIp & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  const c = ~s & 0xffff;
  u8[ip + 10] = c >>> 8;
  u8[ip + 11] = c & 255;
  // UDP (RFC 768)
  const udp = ip + 20;
  const ulen = 8 + payloadLen;
  u8[udp] = srcPort >>> 8;
  u8[udp + 1] = srcPort & 255;
  u8[udp + 2] = dstPort >>> 8;
  u8[udp + 3] = dstPort & 255;
  u8[udp + 4] = ulen >>> 8;
  u8[udp + 5] = ulen & 255;
  u8[udp + 6] = 0;
  u8[udp + 7] = 0;
  return UDP_OUTER_LEN + payloadLen;
}

const U_NOT_VXLAN = 0;

/** Counters of the udp uplink (no packets flow through it; UdpDevice counts here). */
export class UdpUplinkCounters extends GraphNode {
  readonly decl: NodeDecl = { name: 'udp-uplink', reasons: [drop('not-vxlan')] };

  notVxlan(b: Batch, i: number): void {
    this.drop(b, i, U_NOT_VXLAN);
  }
}

/** Out-parameters of vxlanPayload (one object for the thread: no allocation per packet). */
export const vxlanFrame = { len: 0, dst: 0 };

/**
 * Where the UDP payload of a VXLAN frame at u8[off .. off + len) starts, or -1 when the frame is not
 * VXLAN over IPv4 to `port` (not IPv4, not UDP, a fragment, to another port, lengths that lie).
 * Sets `vxlanFrame.len` (payload bytes) and `.dst` (outer destination) for the caller.
 */
export function vxlanPayload(u8: Uint8Array, off: number, len: number, port: number): number {
  if (len < UDP_OUTER_LEN || u8[off + 12] !== 0x08 || u8[off + 13] !== 0x00) return -1;
  const ip = off + 14;
  const vi = u8[ip];
  if (vi >>> 4 !== 4) return -1;
  const hl = (vi & 15) << 2;
  if (hl < 20 || u8[ip + 9] !== 17) return -1;
  if (((u8[ip + 6] & 0x3f) | u8[ip + 7]) !== 0) return -1; // MF or a fragment offset
  const total = (u8[ip + 2] << 8) | u8[ip + 3];
  if (total > len - 14 || total < hl + 8) return -1;
  const udp = ip + hl;
  if (((u8[udp + 2] << 8) | u8[udp + 3]) !== port) return -1;
  const ulen = (u8[udp + 4] << 8) | u8[udp + 5];
  if (ulen < 8 || ulen > total - hl) return -1;
  vxlanFrame.len = ulen - 8;
  vxlanFrame.dst = ((u8[ip + 16] << 24) | (u8[ip + 17] << 16) | (u8[ip + 18] << 8) | u8[ip + 19]) >>> 0;
  return udp + 8;
}

const UDP_CAPS: DeviceCaps = { layer: 'l3', vnetHdr: false, gso: [], tunnelGso: false };
const UDP_CAPS_GSO: DeviceCaps = { ...UDP_CAPS, tunnelGso: true };

/**
 * The uplink as one UDP socket: VXLAN payloads in and out (one recvmmsg / sendmmsg per batch). Given
 * a scratch range it takes VXLAN TCP super-frames whole (caps.tunnelGso): their inner frame is cut
 * natively into VXLAN datagrams of equal size sent with UDP GSO (tunnel-seg.ts segmentUdpGso; one
 * UDP_SEGMENT send counts as one frame in the port's tx counters).
 */
export class UdpDevice extends QueuedDevice implements GsoQueue {
  private readonly u8: Uint8Array;
  private readonly addrs: Uint32Array;
  private readonly dports: Uint16Array;
  private readonly gsoSizes: Uint16Array;
  private readonly seg: TunnelSegmenter | null;
  private readonly rx: { off: Uint32Array[]; addr: Uint32Array[]; port: Uint16Array[] };
  private readonly lenViews: Uint32Array[];
  /** UDP_GRO: segment size of each coalesced datagram read (views from every position) */
  private readonly groViews: Uint16Array[] | null;

  constructor(
    name: string,
    fd: number,
    b: Batch,
    ctx: DeviceContext,
    private readonly counters: UdpUplinkCounters,
    /** where received datagrams were sent to: the node IP and VXLAN port (the synthesized outer) */
    private readonly nodeIp: number,
    private readonly vxlanPort: number,
    /** the uplink port's MAC (destination of the synthesized outer Ethernet header) */
    private readonly mac: () => Uint8Array,
    /** scratch range of the batch's arena for VXLAN super-frames' datagrams (UDP GSO) */
    scratch?: { start: number; end: number },
    /**
     * the socket has UDP_GRO on: the kernel may hand over up to UDP_GRO_MAX_SEGS datagrams of one
     * flow as one (the batch needs slots for 64 KiB); read() splits them back into datagrams
     */
    readonly gro = false,
  ) {
    const queue = b.capacity + (scratch !== undefined ? TUNNEL_SCRATCH_SEGS : 0);
    super(name, scratch !== undefined ? UDP_CAPS_GSO : UDP_CAPS, fd, ctx, queue);
    this.u8 = b.u8;
    this.addrs = new Uint32Array(queue);
    this.dports = new Uint16Array(queue);
    this.gsoSizes = new Uint16Array(queue);
    this.seg = scratch === undefined ? null : new TunnelSegmenter(b, scratch.start, scratch.end, false);
    const v = batchViews(b);
    this.rx = v.udpViews(UDP_OUTER_LEN);
    this.lenViews = v.len;
    if (gro) {
      const sizes = new Uint16Array(b.capacity);
      this.groViews = [];
      for (let k = 0; k <= b.capacity; k++) this.groViews.push(sizes.subarray(k));
    } else this.groViews = null;
    io.adoptFd(fd);
  }

  /**
   * With UDP_GRO a datagram read may become up to UDP_GRO_MAX_SEGS frames, each of which may need
   * the slots of an ordinary frame (fragments), so the driver asks for correspondingly fewer.
   */
  override slotsPerFrame(minMtu: number): number {
    const per = super.slotsPerFrame(minMtu);
    return this.groViews === null ? per : per * UDP_GRO_MAX_SEGS;
  }

  /**
   * Reads datagrams UDP_OUTER_LEN bytes into their slots and writes the outer Ethernet/IPv4/UDP
   * header in front of each (sender → node IP:vxlanPort) so they enter the graph as VXLAN frames.
   * Oversized datagrams are left for claim() to drop (port-input: truncated).
   */
  read(b: Batch, max: number, sec: number, nsec: number): number {
    if (this.groViews !== null) return this.readGro(b, max, sec, nsec);
    const at = b.count;
    const rx = this.rx;
    let got: number;
    try {
      got = io.readBatch(
        this.fd,
        this.u8,
        rx.off[at],
        this.lenViews[at],
        max,
        b.slotData - UDP_OUTER_LEN,
        rx.addr[at],
        rx.port[at],
      );
    } catch (e) {
      return -errnoOf(e);
    }
    if (got === 0) return 0;
    const u8 = b.u8;
    const mac = this.mac();
    const node = this.nodeIp >>> 0;
    const port = this.vxlanPort;
    const addrs = rx.addr[at];
    const ports = rx.port[at];
    for (let k = 0; k < got; k++) {
      const i = at + k;
      const len = b.len[i];
      if (len > b.slotData - UDP_OUTER_LEN) {
        b.len[i] = b.slotData + 1; // claim() drops and counts it (port-input: truncated)
        continue;
      }
      b.len[i] = synthVxlanOuter(u8, b.off[i], len, mac, 0, addrs[k], ports[k], node, port);
    }
    this.ctx.input.truncated(b.claim(got, this.port, sec, nsec));
    return got;
  }

  /**
   * read() on a UDP_GRO socket: up to `max` datagrams are read into staging slots after the room
   * their segments may take (max × UDP_GRO_MAX_SEGS slots from b.count on: slotsPerFrame made the
   * driver keep that much free), then each is cut every groSize bytes (a plain one is one piece)
   * into consecutive slots from b.count on, in order, each behind a synthesized outer header. Costs
   * one copy of the payload in userspace; saves the kernel one socket enqueue and dequeue per
   * datagram (and, when the sender used UDP GSO over a path that kept the super-frame, the
   * segmentation). Returns the datagrams taken off the socket.
   */
  private readGro(b: Batch, max: number, sec: number, nsec: number): number {
    const at = b.count;
    let st = at + max * UDP_GRO_MAX_SEGS;
    if (st + max > b.capacity) {
      // a batch too small for the reservation (the driver's one-frame minimum): one datagram in the
      // last slot; segments that find no slot before it are dropped and counted as truncated
      max = 1;
      st = b.capacity - 1;
      if (st < at) return 0;
    }
    const rx = this.rx;
    const sizes = this.groViews![st];
    let got: number;
    try {
      got = io.readBatchUdpGro(
        this.fd,
        this.u8,
        rx.off[st],
        this.lenViews[st],
        max,
        b.slotData - UDP_OUTER_LEN,
        sizes,
        rx.addr[st],
        rx.port[st],
      );
    } catch (e) {
      return -errnoOf(e);
    }
    if (got === 0) return 0;
    const u8 = b.u8;
    const mac = this.mac();
    const node = this.nodeIp >>> 0;
    const port = this.vxlanPort;
    const addrs = rx.addr[st];
    const ports = rx.port[st];
    const room = b.slotData - UDP_OUTER_LEN;
    let w = at;
    let lost = 0;
    let coalesced = 0;
    for (let k = 0; k < got; k++) {
      const s = st + k;
      const len = b.len[s];
      if (len > room) {
        b.len[w++] = b.slotData + 1; // claim() drops and counts it (port-input: truncated); w ≤ s
        continue;
      }
      const g = sizes[k] > 0 ? sizes[k] : len;
      if (g < len) coalesced++;
      const src = b.off[s] + UDP_OUTER_LEN;
      let o = 0;
      do {
        const piece = g > 0 ? Math.min(g, len - o) : 0;
        // w never passes s (the staging slots after s are still to be split): only in a too small batch
        if (w > s) lost++;
        else {
          const dst = b.off[w];
          if (w !== s || o !== 0) u8.copyWithin(dst + UDP_OUTER_LEN, src + o, src + o + piece);
          b.len[w] = synthVxlanOuter(u8, dst, piece, mac, 0, addrs[k], ports[k], node, port);
          w++;
        }
        o += piece;
      } while (o < len);
    }
    this.ctx.input.truncated(b.claim(w - at, this.port, sec, nsec) + lost);
    if (coalesced > 0) this.ctx.input.udpGroReceived(coalesced);
    return got;
  }

  override tx(b: Batch, i: number): void {
    if (this.seg !== null && (b.flags[i] & PKT_GSO) !== 0) {
      const r = this.seg.segmentUdpGso(b, i, this);
      if (r > 0) {
        this.ctx.tunnelSegmented();
        return;
      }
      if (r < 0) {
        this.ctx.refused(this.port, TX_REFUSED, 1);
        return;
      }
    }
    const at = vxlanPayload(b.u8, b.off[i], b.len[i], this.vxlanPort);
    if (at < 0) {
      this.counters.notVxlan(b, i);
      return;
    }
    const n = this.n;
    if (n >= this.offs.length) {
      super.tx(b, i); // counts it as queue-full
      return;
    }
    this.offs[n] = at;
    this.lens[n] = vxlanFrame.len;
    this.bytes[n] = b.len[i];
    this.addrs[n] = vxlanFrame.dst;
    this.dports[n] = this.vxlanPort;
    this.gsoSizes[n] = 0;
    this.n = n + 1;
  }

  /** GsoQueue: datagrams at [off, off + len) of the arena, cut every gsoSize bytes, to dst. */
  pushGso(off: number, len: number, gsoSize: number, dst: number): void {
    const n = this.n;
    this.offs[n] = off;
    this.lens[n] = len;
    this.bytes[n] = len;
    this.addrs[n] = dst;
    this.dports[n] = this.vxlanPort;
    this.gsoSizes[n] = gsoSize;
    this.n = n + 1;
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

  protected send(n: number): void {
    if (this.seg !== null) {
      const g = this.gsoSizes;
      io.writeBatchUdpGso(this.fd, this.u8, this.offs, this.lens, n, g, this.status, this.addrs, this.dports);
    } else
      io.writeBatchStatus(this.fd, this.u8, this.offs, this.lens, n, this.status, this.addrs, this.dports);
  }
}
