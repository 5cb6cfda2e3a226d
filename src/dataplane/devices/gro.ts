// Receive-side coalescing (GRO) into a TAP: the decision. Once per TAP write round, the frames queued
// for one workload TAP (whatever path brought them: uplink, IPIP or VXLAN decap, same host) are
// planned into output frames: TCP/IPv4 segments of one flow that follow each other become ONE
// super-frame with a virtio_net_hdr (GSO_TCPV4, gso_size = the first segment's payload, NEEDS_CSUM
// with the pseudo-header sum in the TCP checksum field), everything else goes out as it came. The
// bytes are not copied: the plan is a list of pieces (the first frame whole, then each later
// segment's payload) that native/gro.c gathers with one writev() per output frame.
//
// The merge rules are the kernel's (net/ipv4/tcp_offload.c tcp_gro_receive, af_inet.c
// inet_gro_receive/inet_gro_flush), taken conservatively: same Ethernet header; IPv4 without options
// or fragmentation, same TOS, TTL and DF, IP id incrementing by one per segment (the fixed-id form
// the kernel also accepts with DF is not merged); TCP: next in sequence, same ack, window, data offset
// and options byte for byte (timestamps included), flags equal except that PSH/FIN may end the
// super-frame (on the last segment only) and CWR only starts one; no SYN/RST/URG; every segment the
// first one's length except a shorter last one; ≤ 64 KiB IP length and ≤ GRO_MAX_SEGS segments.
// Flow order is kept: a flow's frames join only its latest open super-frame, and any frame of the
// flow that does not join closes it, so per flow the output order is the input order (an IPv4 TCP
// fragment closes every open super-frame).
//
// Checksums: every segment that may be merged is verified first (one batched call of `verify`,
// native l4Csum4 on the live path) because the super-frame's NEEDS_CSUM tells the receiving kernel
// not to check it. Nothing is trusted: the batch does not carry the uplink's virtio DATA_VALID
// through the graph, and frames a local TAP sent with NEEDS_CSUM were completed by finishVnet (so
// they verify anyway). A segment that fails is written as it came (the workload's kernel drops it).
//
// Who owns the buffers: the thread that owns the batch; plan() rewrites the headers of the first
// frame of each super-frame in place (IP total length and checksum, TCP flags and checksum field,
// its virtio_net_hdr) and keeps only indices. Which thread runs it: the batch owner (a worker). No
// allocation per round or packet: every array is sized once by the queue capacity.
import { tcp4SetGsoHeader } from '../wire/tcp.js';
import { VNET_HDR_LEN, vnetWriteTcp4Gso } from '../wire/virtio.js';
import {
  GRO_FLUSHED,
  GRO_MERGED,
  GRO_SKIP_CHECKSUM,
  GRO_SKIP_FLAGS,
  GRO_SKIP_HEADER,
  GRO_SKIP_LIMIT,
  GRO_SKIP_SEQUENCE,
  GRO_SKIP_SIZE,
} from './gro-node.js';

/** Most segments in one super-frame (one iovec each: GRO_MAX_PIECES in native/gro.c). */
export const GRO_MAX_SEGS = 64;
/** Largest IPv4 total length of a super-frame. */
export const GRO_MAX_IP_LEN = 65535;

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const PSH = 0x08;
const URG = 0x20;
const CWR = 0x80;
/** flags that may differ between the segments of one super-frame (kernel: CWR|FIN|PSH) */
const MAY_DIFFER = CWR | FIN | PSH;

const ETH = 14;
const IP_HDR = 20;
/** headers of a candidate up to the TCP header: Ethernet + IPv4 without options */
const L3 = ETH + IP_HDR;

/**
 * Verifies the TCP checksums of `count` IPv4 packets (header at ipOffs[i], lens[i] bytes): sets
 * results[i] to 0 when it verifies, anything else when not (l4Csum4's CSUM_OK = 0).
 */
export type CsumVerify = (
  u8: Uint8Array,
  ipOffs: Uint32Array,
  lens: Uint32Array,
  count: number,
  results: Uint8Array,
) => void;

/** Where plan() counts (Tcp4GroNode in the live dataplane; anything with count() in tests). */
export interface GroCounter {
  add(reason: number, n: number): void;
}

const NO_COUNTER: GroCounter = { add: () => {} };

const NOT_TCP = 0;
/** IPv4 TCP with a flow key, not mergeable */
const TCP = 1;
/** a plain segment that may be merged (checksum still to verify) */
const CANDIDATE = 2;

/**
 * The planner of one TAP queue: `plan()` turns the round's n queued frames into output frames
 * (pieceOff/pieceLen, groupPieces, members); reuse it every round.
 */
export class Tcp4Gro {
  /** output frame g is the next groupPieces[g] pieces; every input frame is exactly one piece */
  readonly pieceOff: Uint32Array;
  readonly pieceLen: Uint32Array;
  readonly groupPieces: Uint8Array;
  /** the input frame (queue position) of each piece, in output order */
  readonly members: Uint16Array;
  /** output frames of the last plan() */
  groups = 0;
  /** super-frames (groups of ≥ 2) in the last plan() */
  merged = 0;

  private readonly kind: Uint8Array;
  private readonly thl: Uint8Array;
  private readonly payload: Uint16Array;
  private readonly csumBad: Uint8Array;
  private readonly vIp: Uint32Array;
  private readonly vLen: Uint32Array;
  private readonly vRes: Uint8Array;
  private readonly vFrame: Uint16Array;
  // per super-frame, indexed by its first frame
  private readonly isHead: Uint8Array;
  private readonly next: Int16Array;
  private readonly tail: Uint16Array;
  private readonly cnt: Uint8Array;
  private readonly mss: Uint16Array;
  private readonly ipLen: Uint32Array;
  private readonly nextSeq: Uint32Array;
  private readonly nextId: Uint16Array;
  private readonly open: Uint8Array;
  // flow → latest super-frame of the round (open addressing, cleared by bumping the stamp)
  private readonly mask: number;
  private readonly tSrc: Uint32Array;
  private readonly tDst: Uint32Array;
  private readonly tPorts: Uint32Array;
  private readonly tHead: Uint16Array;
  private readonly tStamp: Uint32Array;
  private stamp = 0;

  constructor(
    readonly capacity: number,
    private readonly verify: CsumVerify,
    private readonly counter: GroCounter = NO_COUNTER,
  ) {
    const n = capacity;
    // frame indices live in Int16Array/Uint16Array lists
    if (n < 1 || n > 0x7fff) throw new RangeError(`gro: capacity ${n} outside 1..32767`);
    this.pieceOff = new Uint32Array(n);
    this.pieceLen = new Uint32Array(n);
    this.groupPieces = new Uint8Array(n);
    this.members = new Uint16Array(n);
    this.kind = new Uint8Array(n);
    this.thl = new Uint8Array(n);
    this.payload = new Uint16Array(n);
    this.csumBad = new Uint8Array(n);
    this.vIp = new Uint32Array(n);
    this.vLen = new Uint32Array(n);
    this.vRes = new Uint8Array(n);
    this.vFrame = new Uint16Array(n);
    this.isHead = new Uint8Array(n);
    this.next = new Int16Array(n);
    this.tail = new Uint16Array(n);
    this.cnt = new Uint8Array(n);
    this.mss = new Uint16Array(n);
    this.ipLen = new Uint32Array(n);
    this.nextSeq = new Uint32Array(n);
    this.nextId = new Uint16Array(n);
    this.open = new Uint8Array(n);
    let size = 16;
    while (size < 2 * n) size *= 2;
    this.mask = size - 1;
    this.tSrc = new Uint32Array(size);
    this.tDst = new Uint32Array(size);
    this.tPorts = new Uint32Array(size);
    this.tHead = new Uint16Array(size);
    this.tStamp = new Uint32Array(size);
  }

  /**
   * Plans the write of n queued frames: frame k's virtio_net_hdr is at hdr[k] (the frame follows it)
   * and lens[k] counts both. Returns the number of output frames; merged > 0 when any super-frame
   * was made (otherwise the queue can be written as it is).
   */
  plan(u8: Uint8Array, hdr: Uint32Array, lens: Uint32Array, n: number): number {
    if (n > this.capacity) throw new RangeError(`gro: ${n} frames exceed the planner's ${this.capacity}`);
    const m = this.classify(u8, hdr, lens, n);
    // a lone candidate cannot be merged: nothing to verify (it goes out as it came)
    if (m > 1) {
      this.verify(u8, this.vIp, this.vLen, m, this.vRes);
      for (let j = 0; j < m; j++) {
        if (this.vRes[j] !== 0) {
          this.csumBad[this.vFrame[j]] = 1;
          this.counter.add(GRO_SKIP_CHECKSUM, 1);
        }
      }
    }
    this.newRound();
    for (let k = 0; k < n; k++) this.place(u8, hdr, k);
    return this.emit(u8, hdr, lens, n);
  }

  /** Parses every frame; lists the candidates to verify. Returns how many. */
  private classify(u8: Uint8Array, hdr: Uint32Array, lens: Uint32Array, n: number): number {
    let m = 0;
    for (let k = 0; k < n; k++) {
      this.kind[k] = NOT_TCP;
      this.csumBad[k] = 0;
      this.isHead[k] = 1;
      this.next[k] = -1;
      this.tail[k] = k;
      this.cnt[k] = 1;
      this.open[k] = 0;
      const f = hdr[k] + VNET_HDR_LEN;
      const len = lens[k] - VNET_HDR_LEN;
      if (len < L3 + 20 || u8[f + 12] !== 0x08 || u8[f + 13] !== 0) continue;
      const ip = f + ETH;
      const ihl = (u8[ip] & 15) * 4;
      if (u8[ip] >>> 4 !== 4 || ihl < IP_HDR || u8[ip + 9] !== 6 || ETH + ihl + 20 > len) continue;
      this.kind[k] = TCP;
      const total = (u8[ip + 2] << 8) | u8[ip + 3];
      const thl = (u8[ip + ihl + 12] >>> 4) * 4;
      const flags = u8[ip + ihl + 13];
      if (
        ihl !== IP_HDR ||
        ((u8[ip + 6] & 0x3f) | u8[ip + 7]) !== 0 ||
        ETH + total !== len ||
        thl < 20 ||
        IP_HDR + thl >= total ||
        u8[hdr[k]] !== 0 || // flags: a partial checksum
        u8[hdr[k] + 1] !== 0 || // gso_type: a super-frame already
        (flags & (SYN | RST | URG)) !== 0
      ) {
        continue;
      }
      this.kind[k] = CANDIDATE;
      this.thl[k] = thl;
      this.payload[k] = total - IP_HDR - thl;
      this.vIp[m] = ip;
      this.vLen[m] = total;
      this.vFrame[m] = k;
      m++;
    }
    return m;
  }

  private newRound(): void {
    this.stamp = (this.stamp + 1) >>> 0;
    if (this.stamp === 0) {
      this.tStamp.fill(0);
      this.stamp = 1;
    }
  }

  /** Frame k joins its flow's open super-frame, starts one, or goes alone. */
  private place(u8: Uint8Array, hdr: Uint32Array, k: number): void {
    const kind = this.kind[k];
    if (kind === NOT_TCP) return;
    const ip = hdr[k] + VNET_HDR_LEN + ETH;
    if (((u8[ip + 6] & 0x3f) | u8[ip + 7]) !== 0) {
      this.newRound(); // a TCP fragment: it may belong to any flow, close every super-frame
      return;
    }
    const src = rd32(u8, ip + 12);
    const dst = rd32(u8, ip + 16);
    const ports = rd32(u8, ip + (u8[ip] & 15) * 4);
    let t =
      (Math.imul(src ^ Math.imul(dst, 0x9e3779b1) ^ Math.imul(ports, 0x85ebca6b), 0x27d4eb2d) >>> 16) &
      this.mask;
    let h = -1;
    while (this.tStamp[t] === this.stamp) {
      if (this.tSrc[t] === src && this.tDst[t] === dst && this.tPorts[t] === ports) {
        h = this.tHead[t];
        break;
      }
      t = (t + 1) & this.mask;
    }
    const ok = kind === CANDIDATE && this.csumBad[k] === 0;
    const th = ip + IP_HDR;
    if (h >= 0 && this.open[h] === 1) {
      const why = ok ? this.refusal(u8, hdr, h, k) : GRO_SKIP_FLAGS;
      if (why < 0) {
        this.append(h, k, u8, th);
        return;
      }
      this.open[h] = 0;
      if (kind !== CANDIDATE || ok) this.counter.add(why, 1); // a bad checksum was counted already
    }
    if (!ok || (u8[th + 13] & (PSH | FIN | CWR)) !== 0) return; // goes alone
    // k starts a super-frame: the flow's entry now names it
    this.tStamp[t] = this.stamp;
    this.tSrc[t] = src;
    this.tDst[t] = dst;
    this.tPorts[t] = ports;
    this.tHead[t] = k;
    this.open[k] = 1;
    this.mss[k] = this.payload[k];
    this.ipLen[k] = IP_HDR + this.thl[k] + this.payload[k];
    this.nextSeq[k] = (rd32(u8, th + 4) + this.payload[k]) >>> 0;
    this.nextId[k] = (((u8[ip + 4] << 8) | u8[ip + 5]) + 1) & 0xffff;
  }

  /** Why candidate k may not join super-frame h (a GRO_SKIP_* reason), or -1 when it may. */
  private refusal(u8: Uint8Array, hdr: Uint32Array, h: number, k: number): number {
    const fh = hdr[h] + VNET_HDR_LEN;
    const fk = hdr[k] + VNET_HDR_LEN;
    const ih = fh + ETH;
    const ik = fk + ETH;
    const th = ih + IP_HDR;
    const tk = ik + IP_HDR;
    const fl = u8[tk + 13];
    if ((fl & CWR) !== 0 || ((fl ^ u8[th + 13]) & ~MAY_DIFFER) !== 0) return GRO_SKIP_FLAGS;
    if (rd32(u8, tk + 4) !== this.nextSeq[h]) return GRO_SKIP_SEQUENCE;
    const thl = this.thl[h];
    if (this.thl[k] !== thl) return GRO_SKIP_HEADER;
    for (let j = 0; j < 12; j++) if (u8[fh + j] !== u8[fk + j]) return GRO_SKIP_HEADER;
    if (
      u8[ih + 1] !== u8[ik + 1] || // TOS
      u8[ih + 6] !== u8[ik + 6] || // DF (fragment fields are zero)
      u8[ih + 8] !== u8[ik + 8] || // TTL
      ((u8[ik + 4] << 8) | u8[ik + 5]) !== this.nextId[h] ||
      rd32(u8, th + 8) !== rd32(u8, tk + 8) || // ack
      u8[th + 14] !== u8[tk + 14] || // window
      u8[th + 15] !== u8[tk + 15]
    ) {
      return GRO_SKIP_HEADER;
    }
    for (let j = 20; j < thl; j++) if (u8[th + j] !== u8[tk + j]) return GRO_SKIP_HEADER;
    const p = this.payload[k];
    if (p > this.mss[h]) return GRO_SKIP_SIZE;
    if (this.cnt[h] >= GRO_MAX_SEGS || this.ipLen[h] + p > GRO_MAX_IP_LEN) return GRO_SKIP_LIMIT;
    return -1;
  }

  private append(h: number, k: number, u8: Uint8Array, tk: number): void {
    this.next[this.tail[h]] = k;
    this.tail[h] = k;
    this.cnt[h]++;
    this.isHead[k] = 0;
    const p = this.payload[k];
    this.ipLen[h] += p;
    this.nextSeq[h] = (this.nextSeq[h] + p) >>> 0;
    this.nextId[h] = (this.nextId[h] + 1) & 0xffff;
    // a shorter segment, PSH or FIN ends the super-frame (kernel: flush after it)
    if (p < this.mss[h] || (u8[tk + 13] & (PSH | FIN)) !== 0) this.open[h] = 0;
  }

  /** Rewrites the first frame of every super-frame and lists the pieces in output order. */
  private emit(u8: Uint8Array, hdr: Uint32Array, lens: Uint32Array, n: number): number {
    let g = 0;
    let p = 0;
    let merged = 0;
    for (let k = 0; k < n; k++) {
      if (this.isHead[k] === 0) continue;
      const c = this.cnt[k];
      this.groupPieces[g++] = c;
      this.members[p] = k;
      this.pieceOff[p] = hdr[k];
      this.pieceLen[p] = lens[k];
      p++;
      if (c === 1) continue;
      merged++;
      this.counter.add(GRO_MERGED, c);
      const hl = L3 + this.thl[k];
      for (let j = this.next[k]; j >= 0; j = this.next[j]) {
        this.members[p] = j;
        this.pieceOff[p] = hdr[j] + VNET_HDR_LEN + hl;
        this.pieceLen[p] = this.payload[j];
        p++;
      }
      this.rewrite(u8, hdr, k);
    }
    if (merged > 0) this.counter.add(GRO_FLUSHED, merged);
    this.merged = merged;
    return (this.groups = g);
  }

  /** The first frame of super-frame h becomes its header: lengths, flags, checksums, vnet header. */
  private rewrite(u8: Uint8Array, hdr: Uint32Array, h: number): void {
    const vh = hdr[h];
    const frame = vh + VNET_HDR_LEN;
    // the last segment's PSH/FIN carry over (kernel: tcp_flag_word(th2) |= flags & (FIN|PSH))
    u8[frame + L3 + 13] |= u8[hdr[this.tail[h]] + VNET_HDR_LEN + L3 + 13] & (PSH | FIN);
    // NEEDS_CSUM: the TCP checksum field holds the pseudo-header sum, folded, not complemented
    tcp4SetGsoHeader(u8, frame + ETH, this.ipLen[h]);
    vnetWriteTcp4Gso(u8, vh, frame, this.mss[h]);
  }
}

function rd32(u8: Uint8Array, o: number): number {
  return ((u8[o] << 24) | (u8[o + 1] << 16) | (u8[o + 2] << 8) | u8[o + 3]) >>> 0;
}
