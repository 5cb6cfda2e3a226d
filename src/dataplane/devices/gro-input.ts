// Receive-side coalescing on the uplink (input GRO): the IPIP- or VXLAN-carried TCP segments of one
// flow that follow each other in what one read of the packet uplink returned are merged, in the first
// one's slot, into ONE super-frame before the graph sees them, in the shape the kernel's own tunnel
// GRO gives an AF_PACKET reader (docs/live.md, "GRO on the uplink"): outer and inner IPv4 total
// lengths (and the VXLAN outer UDP length) those of the whole super-frame, the inner TCP checksum field holding the pseudo-header sum (a partial
// checksum, as tcp_gro_complete leaves it), the segment size in b.gso[]. The graph then decapsulates,
// routes, checks and writes one super-frame per run instead of one frame per segment (the TAP write
// hands it on whole with a GSO header; the workload's kernel completes each segment's checksum).
// Without it, every segment crosses the graph and is merged again only at the TAP write (gro.ts).
//
// Merge rules: those of gro.ts (the kernel's tcp_gro_receive / inet_gro_receive, conservatively),
// on the inner packet, plus the outer headers: IPv4 without options or fragmentation to this node,
// protocol 4 (IPIP) or UDP to the VXLAN port with a zero checksum (VXLAN), the same addresses, TOS,
// TTL, UDP ports, VNI and inner Ethernet header. A run is a sequence of ADJACENT frames of one flow (any other
// frame closes it), so frame order is kept without reordering anything. Every segment of a run of
// two or more has its inner TCP checksum verified (native l4Csum4, one call per read) and both IPv4
// header checksums checked here: the super-frame's partial checksum tells the receiving kernel not to
// check, so nothing is trusted. A segment that fails closes the run and goes on alone, as it came.
//
// What flows through it: the frames one read put in the batch (finishVnet already ran). Who owns the
// buffers: the batch owner; merged segments' payloads are copied behind the run's first frame (one
// native memmove call per read: copyWithin over a SharedArrayBuffer is V8's slow builtin; its
// slot holds a whole super-frame: the packet uplink's slots are 64 KiB with offloads), and a merged
// segment's length is set past slotData so that claim() drops it (the caller takes those out of the
// truncated count). Which thread runs it: the batch owner (a worker). No allocation per packet.
import type { Batch } from '../graph/packet.js';
import { IP4_OK, ip4Check, ip4SetTotalLen } from '../wire/ipv4.js';
import { tcp4SetGsoHeader } from '../wire/tcp.js';

/** Most segments in one super-frame (as the TAP side: native/gro.c GRO_MAX_PIECES). */
export const GRO_INPUT_MAX_SEGS = 64;

const ETH = 14;
/** the inner IPv4 header: IPIP (outer IPv4 only), VXLAN (outer IPv4, UDP, VXLAN, inner Ethernet) */
const IPIP_INNER = ETH + 20;
const VXLAN_INNER = ETH + 20 + 8 + 8 + ETH;
const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const PSH = 0x08;
const URG = 0x20;
const CWR = 0x80;

/** memmove of lens[i] bytes from srcs[i] to dsts[i] of u8, for i < n (native moveRanges). */
export type InputMove = (
  u8: Uint8Array,
  dsts: Uint32Array,
  srcs: Uint32Array,
  lens: Uint32Array,
  n: number,
) => void;

/** Native batch check of TCP checksums over IPv4 (l4Csum4's shape; 0 = verifies). */
export type InputCsumVerify = (
  u8: Uint8Array,
  ipOffs: Uint32Array,
  lens: Uint32Array,
  count: number,
  results: Uint8Array,
) => void;

const be16 = (u8: Uint8Array, p: number): number => (u8[p] << 8) | u8[p + 1];
const be32 = (u8: Uint8Array, p: number): number =>
  ((u8[p] << 24) | (u8[p + 1] << 16) | (u8[p + 2] << 8) | u8[p + 3]) >>> 0;

export class GroInput {
  /**
   * per candidate: the frame index, its inner IPv4 offset and length (for the checksum call) and its
   * TCP payload length, found once by candidate()
   */
  private readonly idx: Int32Array;
  private readonly ipOff: Uint32Array;
  private readonly ipLen: Uint32Array;
  private readonly pay: Uint32Array;
  private readonly res: Uint8Array;
  /** the payload copies of one merge(), done in one call at its end */
  private readonly mvDst: Uint32Array;
  private readonly mvSrc: Uint32Array;
  private readonly mvLen: Uint32Array;
  /** frames merged into another by the last merge() */
  merged = 0;
  /** super-frames the last merge() made */
  runs = 0;

  constructor(
    capacity: number,
    private readonly verify: InputCsumVerify,
    private readonly move: InputMove,
    /** this node's address (the outer destination of the tunnel packets it decapsulates), read per merge */
    private readonly nodeIp: () => number,
    /** the VXLAN UDP port (params.vxlanPort), read per merge */
    private readonly vxlanPort: () => number = () => 4789,
  ) {
    this.mvDst = new Uint32Array(capacity);
    this.mvSrc = new Uint32Array(capacity);
    this.mvLen = new Uint32Array(capacity);
    this.idx = new Int32Array(capacity);
    this.ipOff = new Uint32Array(capacity);
    this.ipLen = new Uint32Array(capacity);
    this.pay = new Uint32Array(capacity);
    this.res = new Uint8Array(capacity);
  }

  /**
   * The payload length of the frame at f when it is an IPIP- or VXLAN-carried TCP/IPv4 segment for
   * this node that may take part in a merge (IPv4 headers without options or fragments, VXLAN with a
   * zero outer UDP checksum, plain data flags), else -1. Records it as candidate c (idx, inner IPv4
   * offset and length, payload) when it is one.
   */
  private candidate(
    u8: Uint8Array,
    f: number,
    len: number,
    node: number,
    vxlanPort: number,
    c: number,
  ): number {
    if (len < IPIP_INNER + 40 || u8[f + 12] !== 0x08 || u8[f + 13] !== 0) return -1;
    const o = f + ETH;
    if (u8[o] !== 0x45 || (be16(u8, o + 6) & 0x3fff) !== 0 || be16(u8, o + 2) !== len - ETH) return -1;
    // only tunnel packets this node decapsulates (a transit one is routed as it came)
    if (be32(u8, o + 16) !== node) return -1;
    let inner = IPIP_INNER;
    if (u8[o + 9] === 17) {
      // VXLAN: the UDP port, length and a zero checksum (RFC 7348: calitap and most senders leave it
      // 0 over IPv4; a set one would need checking too), the I flag, an inner IPv4 Ethernet frame
      const udp = o + 20;
      if (len < VXLAN_INNER + 40 || be16(u8, udp + 2) !== vxlanPort || be16(u8, udp + 4) !== len - ETH - 20)
        return -1;
      if (be16(u8, udp + 6) !== 0 || u8[udp + 8] !== 0x08) return -1;
      if (u8[f + VXLAN_INNER - 2] !== 0x08 || u8[f + VXLAN_INNER - 1] !== 0) return -1;
      inner = VXLAN_INNER;
    } else if (u8[o + 9] !== 4) return -1;
    const i = f + inner;
    if (u8[i] !== 0x45 || u8[i + 9] !== 6 || (be16(u8, i + 6) & 0x3fff) !== 0) return -1;
    if (be16(u8, i + 2) !== len - inner) return -1;
    const tcp = inner + 20;
    const thl = (u8[f + tcp + 12] >>> 4) * 4;
    if (thl < 20 || tcp + thl > len) return -1;
    if ((u8[f + tcp + 13] & (SYN | RST | URG)) !== 0) return -1;
    const payload = len - tcp - thl;
    if (payload <= 0) return -1;
    this.ipOff[c] = f + inner;
    this.ipLen[c] = len - inner;
    this.pay[c] = payload;
    return payload;
  }

  /**
   * Whether frame b continues the run whose last frame is a (expected sequence number `seq`); both
   * are candidates with their inner IPv4 header at `inner`.
   */
  private follows(u8: Uint8Array, a: number, b: number, seq: number, inner: number): boolean {
    // the same headers up to the inner IPv4 one except the outer total length, id and checksum
    // (Ethernet, outer TOS/TTL/protocol/addresses; for VXLAN the UDP ports and length, VNI, inner
    // Ethernet); then the inner addresses and TCP ports
    for (let k = 0; k < inner; k++) {
      if (k === ETH + 2) k = ETH + 8; // outer total length, id, flags
      if (k === ETH + 10) k = ETH + 12; // outer header checksum
      if (k === ETH + 24 && inner === VXLAN_INNER) k = ETH + 26; // UDP length (a shorter last segment)
      if (u8[a + k] !== u8[b + k]) return false;
    }
    const ia = a + inner;
    const ib = b + inner;
    for (let k = 12; k < 24; k++) if (u8[ia + k] !== u8[ib + k]) return false;
    if (u8[ia + 1] !== u8[ib + 1] || u8[ia + 8] !== u8[ib + 8]) return false;
    // DF equal, id + 1
    if ((u8[ia + 6] & 0x40) !== (u8[ib + 6] & 0x40)) return false;
    if (((be16(u8, ia + 4) + 1) & 0xffff) !== be16(u8, ib + 4)) return false;
    // next in sequence; ack, data offset and window equal; options byte for byte
    const ta = ia + 20;
    const tb = ib + 20;
    if (be32(u8, tb + 4) !== seq) return false;
    for (let k = 8; k < 12; k++) if (u8[ta + k] !== u8[tb + k]) return false;
    if (u8[ta + 12] !== u8[tb + 12] || be16(u8, ta + 14) !== be16(u8, tb + 14)) return false;
    const thl = (u8[ta + 12] >>> 4) * 4;
    for (let k = 20; k < thl; k++) if (u8[ta + k] !== u8[tb + k]) return false;
    // CWR only starts a super-frame
    return (u8[tb + 13] & CWR) === 0;
  }

  /**
   * Merges the runs among the n frames from `at` (their lengths already without the vnet header)
   * and returns how many frames it merged into others (their len is now past slotData).
   */
  merge(b: Batch, at: number, n: number): number {
    this.merged = 0;
    this.runs = 0;
    if (n < 2) return 0;
    const u8 = b.u8;
    const node = this.nodeIp() >>> 0;
    const port = this.vxlanPort();
    // candidates (each parsed once), and their checksums in one native call
    let c = 0;
    for (let i = at; i < at + n; i++) {
      if (b.gso[i] !== 0 || b.len[i] > b.slotData) continue;
      if (this.candidate(u8, b.off[i], b.len[i], node, port, c) < 0) continue;
      this.idx[c++] = i;
    }
    if (c < 2) return 0;
    this.verify(u8, this.ipOff, this.ipLen, c, this.res);
    let head = -1; // frame index of the open run's first frame
    let last = -1; // its last frame (the one the next must follow)
    let inner = 0; // the run's inner IPv4 offset
    let seq = 0;
    let mss = 0;
    let segs = 0;
    let k = 0; // next candidate
    let mv = 0; // payload copies queued
    for (let i = at; i < at + n; i++) {
      const f = b.off[i];
      let ok = false;
      let pay = 0;
      let fin = 0; // this frame's inner IPv4 offset
      if (k < c && this.idx[k] === i) {
        fin = this.ipOff[k] - f;
        pay = this.pay[k];
        // both IPv4 headers: the checksums (the rest candidate() checked)
        ok =
          this.res[k] === 0 &&
          ip4Check(u8, f + ETH, b.len[i] - ETH) === IP4_OK &&
          ip4Check(u8, this.ipOff[k], this.ipLen[k]) === IP4_OK;
        k++;
      }
      const tcp = fin + 20;
      if (ok && head >= 0 && fin === inner) {
        const hf = b.off[head];
        const thl = (u8[f + tcp + 12] >>> 4) * 4;
        if (
          pay <= mss &&
          segs < GRO_INPUT_MAX_SEGS &&
          b.len[head] + pay <= b.slotData &&
          b.len[head] - ETH + pay <= 0xffff &&
          this.follows(u8, b.off[last], f, seq, inner)
        ) {
          // copied at the end (one native call): nothing reads a merged payload before then
          this.mvDst[mv] = hf + b.len[head];
          this.mvSrc[mv] = f + tcp + thl;
          this.mvLen[mv++] = pay;
          b.len[head] += pay;
          u8[hf + tcp + 13] |= u8[f + tcp + 13] & (PSH | FIN);
          b.len[i] = b.slotData + 1; // merged: claim() drops it
          this.merged++;
          segs++;
          seq = (seq + pay) >>> 0;
          last = i;
          // a shorter segment, PSH or FIN ends the super-frame
          if (pay < mss || (u8[f + tcp + 13] & (PSH | FIN)) !== 0)
            head = this.close(b, head, segs, mss, inner);
          continue;
        }
      }
      if (head >= 0) head = this.close(b, head, segs, mss, inner);
      // this frame may open the next run
      if (ok && (u8[f + tcp + 13] & (PSH | FIN)) === 0) {
        head = i;
        last = i;
        inner = fin;
        mss = pay;
        seq = (be32(u8, f + tcp + 4) + mss) >>> 0;
        segs = 1;
      }
    }
    if (head >= 0) this.close(b, head, segs, mss, inner);
    if (mv > 0) this.move(u8, this.mvDst, this.mvSrc, this.mvLen, mv);
    return this.merged;
  }

  /** Finishes the run at `head` (of `segs` segments): headers of the super-frame. Returns -1. */
  private close(b: Batch, head: number, segs: number, mss: number, inner: number): number {
    if (segs < 2) return -1;
    const u8 = b.u8;
    const f = b.off[head];
    const len = b.len[head];
    if (inner === VXLAN_INNER) {
      const udpLen = len - ETH - 20;
      u8[f + ETH + 24] = udpLen >>> 8;
      u8[f + ETH + 25] = udpLen & 255; // the checksum stays 0
    }
    ip4SetTotalLen(u8, f + ETH, len - ETH);
    tcp4SetGsoHeader(u8, f + inner, len - inner);
    b.gso[head] = mss;
    this.runs++;
    return -1;
  }
}
