// Test frames for GRO: TCP/IPv4 segments (or other frames) laid out behind a 10-byte virtio_net_hdr
// in an arena, as a TAP's queue holds them, plus a pure-TS model of what the kernel makes of a
// written super-frame (its segmentation) to compare against.
import { onesSum } from '../../src/dataplane/wire/checksum.js';

export const VNET = 10;
export const SLOT = 2048;

export interface Seg {
  flow: number;
  src: number;
  dst: number;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  id: number;
  ttl: number;
  tos: number;
  df: boolean;
  options: number[]; // TCP options (multiple of 4)
  payload: Uint8Array;
  ipOptions?: boolean;
  frag?: boolean;
  badCsum?: boolean;
  /** not TCP at all: a UDP datagram */
  udp?: boolean;
  srcMac?: number;
}

function wr16(u8: Uint8Array, o: number, v: number): void {
  u8[o] = (v >>> 8) & 255;
  u8[o + 1] = v & 255;
}
function wr32(u8: Uint8Array, o: number, v: number): void {
  wr16(u8, o, v >>> 16);
  wr16(u8, o + 2, v & 0xffff);
}
function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** Writes seg as an Ethernet frame at off; returns its length. */
/**
 * Segment k of a bulk TCP flow (10.0.0.1:1234+flow -> 10.0.0.2:80, ACK, 1000-byte sequence steps,
 * IP id k, DF): `size` payload bytes of k + 1, optionally with a wrong checksum.
 */
export function bulkSeg(k: number, o: { flow?: number; size?: number; badCsum?: boolean } = {}): Seg {
  const flow = o.flow ?? 0;
  return {
    flow,
    src: 0x0a000001,
    dst: 0x0a000002,
    sport: 1234 + flow,
    dport: 80,
    seq: 1 + k * 1000,
    ack: 5,
    flags: 0x10,
    window: 100,
    id: k,
    ttl: 64,
    tos: 0,
    df: true,
    options: [],
    payload: new Uint8Array(o.size ?? 1000).fill(k + 1),
    badCsum: o.badCsum ?? false,
  };
}

export function writeSeg(u8: Uint8Array, off: number, s: Seg): number {
  for (let j = 0; j < 6; j++) u8[off + j] = 0x02;
  for (let j = 6; j < 12; j++) u8[off + j] = s.srcMac ?? 0x04;
  wr16(u8, off + 12, 0x0800);
  const ip = off + 14;
  const ihl = s.ipOptions === true ? 24 : 20;
  const l4 = ip + ihl;
  const proto = s.udp === true ? 17 : 6;
  const l4hdr = proto === 17 ? 8 : 20 + s.options.length;
  const total = ihl + l4hdr + s.payload.length;
  u8[ip] = 0x40 | (ihl / 4);
  u8[ip + 1] = s.tos;
  wr16(u8, ip + 2, total);
  wr16(u8, ip + 4, s.id);
  wr16(u8, ip + 6, (s.df ? 0x4000 : 0) | (s.frag === true ? 0x2000 : 0));
  u8[ip + 8] = s.ttl;
  u8[ip + 9] = proto;
  wr16(u8, ip + 10, 0);
  wr32(u8, ip + 12, s.src);
  wr32(u8, ip + 16, s.dst);
  if (ihl === 24) wr32(u8, ip + 20, 0x01010100); // NOPs + EOL
  wr16(u8, ip + 10, ~onesSum(u8, ip, ihl) & 0xffff);
  wr16(u8, l4, s.sport);
  wr16(u8, l4 + 2, s.dport);
  if (proto === 17) {
    wr16(u8, l4 + 4, 8 + s.payload.length);
    wr16(u8, l4 + 6, 0);
  } else {
    wr32(u8, l4 + 4, s.seq);
    wr32(u8, l4 + 8, s.ack);
    u8[l4 + 12] = (l4hdr / 4) << 4;
    u8[l4 + 13] = s.flags;
    wr16(u8, l4 + 14, s.window);
    wr16(u8, l4 + 16, 0);
    wr16(u8, l4 + 18, 0);
    u8.set(s.options, l4 + 20);
  }
  u8.set(s.payload, l4 + l4hdr);
  if (proto === 6) {
    const len = l4hdr + s.payload.length;
    const ps = fold(onesSum(u8, ip + 12, 8) + 6 + len);
    let c = ~onesSum(u8, l4, len, ps) & 0xffff;
    if (s.badCsum === true) c ^= 0x0101;
    wr16(u8, l4 + 16, c);
  }
  return 14 + total;
}

/** A TAP queue of segs: slot k at k*SLOT, vnet header (zeros) at its start, frame after it. */
export function queue(segs: Seg[]): { u8: Uint8Array; hdr: Uint32Array; lens: Uint32Array } {
  const u8 = new Uint8Array(segs.length * SLOT + SLOT);
  const hdr = new Uint32Array(segs.length);
  const lens = new Uint32Array(segs.length);
  segs.forEach((s, k) => {
    hdr[k] = k * SLOT + 64;
    lens[k] = VNET + writeSeg(u8, hdr[k] + VNET, s);
  });
  return { u8, hdr, lens };
}

/** Verifies TCP checksums the way l4Csum4 does (0 = good). */
export function tsVerify(
  u8: Uint8Array,
  ipOffs: Uint32Array,
  lens: Uint32Array,
  count: number,
  res: Uint8Array,
): void {
  for (let i = 0; i < count; i++) {
    const ip = ipOffs[i];
    const ihl = (u8[ip] & 15) * 4;
    const len = lens[i] - ihl;
    const ps = fold(onesSum(u8, ip + 12, 8) + u8[ip + 9] + len);
    res[i] = onesSum(u8, ip + ihl, len, ps) === 0xffff ? 0 : 1;
  }
}

/**
 * What the receiving kernel makes of one written frame (virtio_net_hdr + frame): a plain frame as
 * is, a TCPv4 GSO super-frame cut into its segments (seq + k·gso_size, IP id + k, PSH/FIN only on
 * the last, full checksums), after checking the header fields a TAP requires.
 */
export function kernelSegments(w: Uint8Array): Uint8Array[] {
  const f = w.subarray(VNET);
  if (w[1] === 0) {
    if (w.subarray(0, VNET).some((b) => b !== 0)) throw new Error('plain frame with a non-zero vnet header');
    return [f.slice()];
  }
  if (w[0] !== 1 || w[1] !== 1) throw new Error(`vnet flags ${w[0]} gso ${w[1]}`);
  const hdrLen = w[2] | (w[3] << 8);
  const mss = w[4] | (w[5] << 8);
  if ((w[6] | (w[7] << 8)) !== 34 || (w[8] | (w[9] << 8)) !== 16) throw new Error('csum start/offset');
  const ip = 14;
  const total = (f[ip + 2] << 8) | f[ip + 3];
  if (14 + total !== f.length) throw new Error(`IP length ${total} vs frame ${f.length}`);
  if (onesSum(f, ip, 20) !== 0xffff) throw new Error('IP header checksum');
  const thl = (f[34 + 12] >>> 4) * 4;
  if (hdrLen !== 34 + thl) throw new Error('hdr_len');
  const seed = fold(onesSum(f, ip + 12, 8) + 6 + (total - 20));
  if (((f[34 + 16] << 8) | f[34 + 17]) !== seed) throw new Error('pseudo-header seed');
  const payload = f.subarray(hdrLen);
  const n = Math.ceil(payload.length / mss);
  if (n < 2) throw new Error('a super-frame of one segment');
  const out: Uint8Array[] = [];
  const seq0 = ((f[38] << 24) | (f[39] << 16) | (f[40] << 8) | f[41]) >>> 0;
  const id0 = (f[18] << 8) | f[19];
  for (let k = 0; k < n; k++) {
    const chunk = payload.subarray(k * mss, Math.min(payload.length, (k + 1) * mss));
    const s = new Uint8Array(hdrLen + chunk.length);
    s.set(f.subarray(0, hdrLen));
    s.set(chunk, hdrLen);
    wr16(s, ip + 2, 20 + thl + chunk.length);
    wr16(s, ip + 4, (id0 + k) & 0xffff);
    wr16(s, ip + 10, 0);
    wr16(s, ip + 10, ~onesSum(s, ip, 20) & 0xffff);
    wr32(s, 38, (seq0 + k * mss) >>> 0);
    if (k + 1 < n) s[34 + 13] &= ~0x09;
    wr16(s, 34 + 16, 0);
    const len = thl + chunk.length;
    const ps = fold(onesSum(s, ip + 12, 8) + 6 + len);
    wr16(s, 34 + 16, ~onesSum(s, 34, len, ps) & 0xffff);
    out.push(s);
  }
  return out;
}

/** The frames the planner's output makes: for each output frame, its bytes as written. */
export function gather(
  u8: Uint8Array,
  pieceOff: Uint32Array,
  pieceLen: Uint32Array,
  groupPieces: Uint8Array,
  groups: number,
): Uint8Array[] {
  const out: Uint8Array[] = [];
  let p = 0;
  for (let g = 0; g < groups; g++) {
    const parts: Uint8Array[] = [];
    for (let j = 0; j < groupPieces[g]; j++, p++)
      parts.push(u8.subarray(pieceOff[p], pieceOff[p] + pieceLen[p]));
    const w = new Uint8Array(parts.reduce((a, x) => a + x.length, 0));
    let o = 0;
    for (const x of parts) {
      w.set(x, o);
      o += x.length;
    }
    out.push(w);
  }
  return out;
}
