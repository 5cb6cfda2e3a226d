// Native segmentation of tunnel super-frames at write time (issue 9): a TCP/IPv4 GSO super-frame
// (PKT_GSO) that ipip4-encap or vxlan4-encap wrapped once (ports.tunnelGso told ip4-rewrite to leave
// it whole) is cut by the addon's fused `segmentTcp4` (copy + full TCP checksum per segment in one
// pass; for IPIP the outer IPv4 header is written by the same pass) into MSS-sized segments, each
// behind its own outer header, and queued on the device so that the round's frames still leave in
// order in one batched write (sendmmsg). Segment 0 is cut in place in the packet's own slot; the
// others go to a scratch area of the same arena (after the batch's slots), reused every round.
// Every decision stays in the graph: ip4-rewrite checked the segment size against the tunnel MTU
// (DF → fragmentation-needed), the encap nodes chose the outer headers; this only moves bytes and
// rewrites the per-segment fields (lengths, identification + k, header checksums; VXLAN's outer UDP
// checksum stays 0 as RFC 7348 allows).
// Who owns the buffers: the worker's arena (batch slots + this device's scratch range). Which thread
// runs it: the worker that owns the batch. No allocation per packet (the outer descriptor and the
// offset arrays are made once).
import { type Batch } from '../graph/packet.js';
import { ip4SetChecksum } from '../wire/ipv4.js';
import { VNET_HDR_LEN, vnetClear } from '../wire/virtio.js';
import * as io from './native.js';

/** Bytes of scratch a packet uplink reserves after the batch's slots for tunnel segments. */
export const TUNNEL_SCRATCH_BYTES = 2 << 20;
/** Most segments queued from scratch before the device flushes (sizes the device's queue). */
export const TUNNEL_SCRATCH_SEGS = 2048;

const ETH = 14;
/** outer Ethernet + IPv4 (no options: our encap writes none) + UDP + VXLAN */
const VXLAN_OUTER = ETH + 20 + 8 + 8;
const IPIP_OUTER = 20;

/** What the device gives the segmenter: its queue, and a flush when the queue or scratch is full. */
export interface SegmentQueue {
  /** queues the frame at [off, off + len) (a vnet header, if any, is written by the segmenter) */
  push(off: number, len: number): boolean;
  /** room left in the queue */
  room(): number;
  /** sends what is queued (and accounts it); scratch may be reused afterwards */
  flushQueue(): void;
}

/** What the udp uplink gives the segmenter: its queue of UDP_SEGMENT sends. */
export interface GsoQueue {
  /** queues the datagrams at [off, off + len), cut every gsoSize bytes (0: one datagram), to dst */
  pushGso(off: number, len: number, gsoSize: number, dst: number): void;
  room(): number;
  flushQueue(): void;
}

export class TunnelSegmenter {
  private readonly outOffs = new Uint32Array(TUNNEL_SCRATCH_SEGS);
  private readonly outLens = new Uint32Array(TUNNEL_SCRATCH_SEGS);
  private readonly eth = new Uint8Array(ETH);
  private readonly outer = { src: 0, dst: 0, id: 0, eth: this.eth };
  private readonly u8: Uint8Array;
  /** next free byte of scratch */
  private cursor: number;

  constructor(
    b: Batch,
    /** scratch range [start, end) of the batch's arena, outside every slot */
    private readonly start: number,
    private readonly end: number,
    /** the device writes a virtio_net_hdr (zeros) in front of every frame */
    private readonly vnet: boolean,
  ) {
    this.u8 = b.u8;
    this.cursor = start;
  }

  /** Scratch is free again (the device sent what it had queued). */
  reset(): void {
    this.cursor = this.start;
  }

  /**
   * Segments packet i when it is an IPIP or VXLAN-over-IPv4 tunnel super-frame and queues its
   * segments; returns 1 when queued, 0 when it is not a tunnel super-frame (the caller sends it as
   * usual), -1 when it cannot be segmented (headers not TCP/IPv4, or more segments than scratch
   * holds: the caller counts it as refused).
   */
  segment(b: Batch, i: number, q: SegmentQueue): number {
    const u8 = this.u8;
    const off = b.off[i];
    const ip = off + ETH;
    if (u8[off + 12] !== 0x08 || u8[off + 13] !== 0x00 || u8[ip] !== 0x45) return 0;
    const proto = u8[ip + 9];
    let olen: number;
    if (proto === 4) {
      olen = IPIP_OUTER;
      const o = this.outer;
      o.src = ((u8[ip + 12] << 24) | (u8[ip + 13] << 16) | (u8[ip + 14] << 8) | u8[ip + 15]) >>> 0;
      o.dst = ((u8[ip + 16] << 24) | (u8[ip + 17] << 16) | (u8[ip + 18] << 8) | u8[ip + 19]) >>> 0;
      o.id = (u8[ip + 4] << 8) | u8[ip + 5];
      for (let k = 0; k < ETH; k++) this.eth[k] = u8[off + k];
      // segmentTcp4 reads an Ethernet header in front of the inner IPv4: its type field overlays
      // the outer destination address (saved above; the fused pass rewrites the outer header)
      u8[off + 32] = 0x08;
      u8[off + 33] = 0x00;
    } else if (proto === 17) olen = VXLAN_OUTER;
    else return 0;
    const mss = b.gso[i];
    // room per segment: vnet header, outer, inner Ethernet + IPv4 + TCP (with options), payload
    const stride = (VNET_HDR_LEN + olen + ETH + 60 + 60 + mss + 63) & ~63;
    for (let attempt = 0; attempt < 2; attempt++) {
      const maxOut = Math.min(
        q.room(),
        TUNNEL_SCRATCH_SEGS,
        1 + Math.floor((this.end - this.cursor) / stride),
      );
      const outOffs = this.outOffs;
      outOffs[0] = off; // segment 0 in place (its outer header is where the frame starts)
      for (let k = 1; k < maxOut; k++) outOffs[k] = this.cursor + (k - 1) * stride + VNET_HDR_LEN;
      let n: number;
      try {
        n =
          proto === 4
            ? io.segmentTcp4(
                u8,
                off + olen,
                b.len[i] - olen,
                mss,
                outOffs,
                this.outLens,
                maxOut,
                olen,
                this.outer,
              )
            : io.segmentTcp4(u8, off + olen, b.len[i] - olen, mss, outOffs, this.outLens, maxOut, olen);
      } catch {
        return -1; // offsets the addon refused: never expected, counted as refused
      }
      if (n === io.SEG_ERR_ROOM && attempt === 0) {
        q.flushQueue(); // sends what is queued and frees scratch (the device calls reset())
        continue;
      }
      if (n <= 0) return -1;
      if (proto === 17) this.vxlanOuters(n, olen);
      for (let k = 0; k < n; k++) {
        if (this.vnet) vnetClear(u8, outOffs[k] - VNET_HDR_LEN);
        q.push(outOffs[k], this.outLens[k]);
      }
      this.cursor += (n - 1) * stride;
      return 1;
    }
    return -1;
  }

  /**
   * The udp uplink (UDP GSO): packet i is a VXLAN super-frame (outer Ethernet/IPv4/UDP/VXLAN written
   * once by vxlan4-encap); its inner frame is cut natively into segments laid back to back in
   * scratch, each behind a copy of the 8-byte VXLAN header, so that every datagram but the last has
   * the same size; they are queued as UDP_SEGMENT sends of at most UDP_MAX_SEGMENTS datagrams and
   * UDP_MAX_PAYLOAD bytes each (the kernel builds the outer IPv4/UDP headers and checksums).
   * Returns 1 when queued, 0 when it is not a VXLAN super-frame, -1 when it cannot be segmented.
   */
  segmentUdpGso(b: Batch, i: number, q: GsoQueue): number {
    const u8 = this.u8;
    const off = b.off[i];
    const ip = off + ETH;
    if (u8[off + 12] !== 0x08 || u8[off + 13] !== 0x00 || u8[ip] !== 0x45 || u8[ip + 9] !== 17) return 0;
    const dst = ((u8[ip + 16] << 24) | (u8[ip + 17] << 16) | (u8[ip + 18] << 8) | u8[ip + 19]) >>> 0;
    const vx = off + ETH + 20 + 8;
    const src = vx + 8;
    const srcLen = b.len[i] - (VXLAN_OUTER - 8 + 8);
    const tcp = src + ETH + ((u8[src + ETH] & 15) << 2);
    // every datagram but the last: VXLAN header + inner Ethernet/IPv4/TCP headers + MSS bytes
    const size = 8 + (tcp - src) + ((u8[tcp + 12] >>> 4) << 2) + b.gso[i];
    const perSend = Math.min(io.UDP_MAX_SEGMENTS, Math.floor(io.UDP_MAX_PAYLOAD / size));
    if (perSend < 1) return -1;
    for (let attempt = 0; attempt < 2; attempt++) {
      const room = Math.floor((this.end - this.cursor) / size);
      const maxOut = Math.min(TUNNEL_SCRATCH_SEGS, room, q.room() * perSend);
      const outOffs = this.outOffs;
      for (let k = 0; k < maxOut; k++) outOffs[k] = this.cursor + k * size;
      let n: number;
      try {
        n = io.segmentTcp4(u8, src, srcLen, b.gso[i], outOffs, this.outLens, maxOut, 8);
      } catch {
        return -1;
      }
      if (n === io.SEG_ERR_ROOM && attempt === 0) {
        q.flushQueue();
        continue;
      }
      if (n <= 0) return -1;
      for (let k = 0; k < n; k++) u8.copyWithin(outOffs[k], vx, vx + 8);
      for (let k = 0; k < n; k += perSend) {
        const last = Math.min(n, k + perSend) - 1;
        const len = outOffs[last] + this.outLens[last] - outOffs[k];
        q.pushGso(outOffs[k], len, last > k ? size : 0, dst);
      }
      this.cursor += n * size;
      return 1;
    }
    return -1;
  }

  /**
   * VXLAN: copies segment 0's outer Ethernet/IPv4/UDP/VXLAN header (written once by vxlan4-encap)
   * in front of every other segment and sets each one's IPv4 total length, identification + k,
   * header checksum and UDP length (RFC 791 §3.1, RFC 768, RFC 7348 §5).
   */
  private vxlanOuters(n: number, olen: number): void {
    const u8 = this.u8;
    const o0 = this.outOffs[0];
    const id0 = (u8[o0 + ETH + 4] << 8) | u8[o0 + ETH + 5];
    for (let k = 0; k < n; k++) {
      const o = this.outOffs[k];
      if (k > 0) u8.copyWithin(o, o0, o0 + olen);
      const ip = o + ETH;
      const total = this.outLens[k] - ETH;
      u8[ip + 2] = total >>> 8;
      u8[ip + 3] = total & 255;
      const id = (id0 + k) & 0xffff;
      u8[ip + 4] = id >>> 8;
      u8[ip + 5] = id & 255;
      ip4SetChecksum(u8, ip);
      const ulen = total - 20;
      u8[ip + 24] = ulen >>> 8;
      u8[ip + 25] = ulen & 255;
    }
  }
}
