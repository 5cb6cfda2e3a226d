// Random TCP/IPv4 GSO super-frames for the offload tests: a fast-check arbitrary of frame shapes
// (IPv4 and TCP options, any flags, sequence and identification near wrap-around, trailing padding)
// and a writer that lays one out in a buffer. Header checksums are random: segmentation ignores them.
import fc from 'fast-check';

export interface FrameSpec {
  mac: number[];
  ipOpts: number[];
  tcpOpts: number[];
  tos: number;
  id: number;
  df: boolean;
  ttl: number;
  src: number;
  dst: number;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  win: number;
  csum: number;
  urg: number;
  payload: number;
  seed: number;
  pad: number;
}

const words = (max: number): fc.Arbitrary<number[]> =>
  fc
    .integer({ min: 0, max })
    .chain((n) => fc.array(fc.integer({ min: 0, max: 255 }), { minLength: n * 4, maxLength: n * 4 }));

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const nearWrap16 = fc.oneof(u16, fc.integer({ min: 0xfff0, max: 0xffff }));
const nearWrap32 = fc.oneof(u32, fc.integer({ min: 0xffff0000, max: 0xffffffff }));

export function frameSpec(maxPayload: number): fc.Arbitrary<FrameSpec> {
  return fc.record({
    mac: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 12, maxLength: 12 }),
    ipOpts: words(10),
    tcpOpts: words(10),
    tos: fc.integer({ min: 0, max: 255 }),
    id: nearWrap16,
    df: fc.boolean(),
    ttl: fc.integer({ min: 1, max: 255 }),
    src: u32,
    dst: u32,
    sport: u16,
    dport: u16,
    seq: nearWrap32,
    ack: u32,
    flags: fc.integer({ min: 0, max: 255 }),
    win: u16,
    csum: u16,
    urg: u16,
    payload: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: maxPayload })),
    seed: fc.integer({ min: 0, max: 255 }),
    pad: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 40 })),
  });
}

/** Writes the frame at off; returns its length (Ethernet + IPv4 total length + padding). */
export function writeFrame(u8: Uint8Array, off: number, s: FrameSpec): number {
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  u8.set(s.mac, off);
  dv.setUint16(off + 12, 0x0800);
  const ip = off + 14;
  const ihl = 20 + s.ipOpts.length;
  const thl = 20 + s.tcpOpts.length;
  const total = ihl + thl + s.payload;
  u8[ip] = 0x40 | (ihl / 4);
  u8[ip + 1] = s.tos;
  dv.setUint16(ip + 2, total);
  dv.setUint16(ip + 4, s.id);
  dv.setUint16(ip + 6, s.df ? 0x4000 : 0);
  u8[ip + 8] = s.ttl;
  u8[ip + 9] = 6;
  dv.setUint16(ip + 10, 0xbeef);
  dv.setUint32(ip + 12, s.src);
  dv.setUint32(ip + 16, s.dst);
  u8.set(s.ipOpts, ip + 20);
  const t = ip + ihl;
  dv.setUint16(t, s.sport);
  dv.setUint16(t + 2, s.dport);
  dv.setUint32(t + 4, s.seq);
  dv.setUint32(t + 8, s.ack);
  u8[t + 12] = (thl / 4) << 4;
  u8[t + 13] = s.flags;
  dv.setUint16(t + 14, s.win);
  dv.setUint16(t + 16, s.csum);
  dv.setUint16(t + 18, s.urg);
  u8.set(s.tcpOpts, t + 20);
  let x = s.seed;
  for (let k = 0; k < s.payload; k++) {
    x = (x * 1103515245 + 12345) >>> 0;
    u8[t + thl + k] = x >>> 24;
  }
  u8.fill(0xee, t + thl + s.payload, t + thl + s.payload + s.pad);
  return 14 + total + s.pad;
}

/** Headers (Ethernet + IPv4 + TCP) and payload length of a spec. */
export function shape(s: FrameSpec): { hdrs: number; payload: number } {
  return { hdrs: 14 + 20 + s.ipOpts.length + 20 + s.tcpOpts.length, payload: s.payload };
}

/** '' when a and b hold the same bytes, else where they first differ (fast; toEqual is slow on MBs). */
export function diffBytes(a: Uint8Array, b: Uint8Array): string {
  if (a.length !== b.length) return `length ${a.length} vs ${b.length}`;
  if (Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length)))
    return '';
  let i = 0;
  while (a[i] === b[i]) i++;
  return `byte ${i}: ${a[i]} vs ${b[i]}`;
}
