// Native segmentTcp4 (native/offload.c) against the TypeScript reference segmentTcp4
// (src/dataplane/graph/nodes/segment.ts), byte for byte, on random super-frames (IPv4 and TCP options,
// any flags, identification and sequence near wrap-around, trailing padding, any MSS), written to
// fresh slots and in place, with room for an outer header and with the fused IPIP outer header
// (compared with wire/ipip.ts emitIpipOuter). Mutated frames: the addon only returns (segments or a
// negative code), writes nothing outside the outputs it reports, and agrees with the reference
// whenever it accepts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as io from '../../src/dataplane/devices/native.js';
import { segmentTcp4 as segmentTs } from '../../src/dataplane/graph/nodes/segment.js';
import { Batch, PKT_GSO } from '../../src/dataplane/graph/packet.js';
import { emitIpipOuter } from '../../src/dataplane/wire/ipip.js';
import { tcpChecksumOk } from '../../src/dataplane/wire/tcp.js';
import { diffBytes, frameSpec, shape, writeFrame, type FrameSpec } from './frames.js';

const MAX_PAYLOAD = 16000;
const MAX_SEGS = 100;
const SLOT = 17000;

/** The reference: segments (as byte arrays) of the frame cut by the TS segmentTcp4, or null on -1. */
function reference(s: FrameSpec, mss: number): Uint8Array[] | null {
  const b = new Batch(MAX_SEGS + 1, undefined, 0, SLOT + 256);
  b.count = 1;
  b.len[0] = writeFrame(b.u8, b.off[0], s);
  b.flags[0] = PKT_GSO;
  const extra = segmentTs(b, 0, mss);
  if (extra < 0) return null;
  const idx = [0, ...Array.from({ length: extra }, (_, k) => b.count - extra + k)];
  return idx.map((i) => b.u8.slice(b.off[i], b.off[i] + b.len[i]));
}

/** A native arena: the source frame at SRC, output slots after it, everything else 0xa5. */
class Native {
  static readonly SRC = 256;
  readonly u8 = new Uint8Array(new SharedArrayBuffer(SLOT * (MAX_SEGS + 2)));
  readonly outs = new Uint32Array(MAX_SEGS);
  readonly lens = new Uint32Array(MAX_SEGS);
  srcLen = 0;
  /** bytes writeFrame wrote at SRC (the source may be cut shorter later) */
  readonly written: number;
  constructor(s: FrameSpec, inPlace: boolean, outerLen: number) {
    this.u8.fill(0xa5);
    this.srcLen = this.written = writeFrame(this.u8, Native.SRC, s);
    for (let k = 0; k < MAX_SEGS; k++) this.outs[k] = SLOT * (k + 1) + 64;
    if (inPlace) this.outs[0] = Native.SRC - outerLen;
  }
  run(mss: number, outerLen: number, outer?: io.IpipOuter): number {
    return io.segmentTcp4(
      this.u8,
      Native.SRC,
      this.srcLen,
      mss,
      this.outs,
      this.lens,
      MAX_SEGS,
      outerLen,
      outer,
    );
  }
  segment(k: number, outerLen: number): Uint8Array {
    return this.u8.slice(this.outs[k] + outerLen, this.outs[k] + this.lens[k]);
  }
  /** Every byte outside the source and the reported outputs still holds 0xa5. */
  untouchedOutside(n: number): boolean {
    const mark = new Uint8Array(SLOT * (n + 3));
    mark.fill(1, Native.SRC, Native.SRC + this.written);
    for (let k = 0; k < n; k++) mark.fill(1, this.outs[k], this.outs[k] + this.lens[k]);
    // outputs k >= n were not used: slots past the last used one are checked up to the next slot
    const end = Math.min(this.u8.length, SLOT * (n + 3));
    for (let i = 0; i < end; i++) if (!mark[i] && this.u8[i] !== 0xa5) return false;
    return true;
  }
}

const mssFor = (payload: number): fc.Arbitrary<number> =>
  fc.integer({ min: Math.max(1, Math.ceil(payload / MAX_SEGS)), max: 9000 });

const specAndMss = frameSpec(MAX_PAYLOAD).chain((s) => mssFor(s.payload).map((mss) => ({ s, mss })));

describe('native segmentTcp4 = TypeScript segmentTcp4', () => {
  it('random super-frames into fresh slots, with and without room for an outer header', () => {
    fc.assert(
      fc.property(specAndMss, fc.constantFrom(0, 20, 50), ({ s, mss }, outerLen) => {
        const want = reference(s, mss);
        expect(want).not.toBeNull();
        const nat = new Native(s, false, outerLen);
        const n = nat.run(mss, outerLen);
        expect(n).toBe(want!.length);
        for (let k = 0; k < n; k++) {
          expect(nat.lens[k]).toBe(outerLen + want![k].length);
          expect(diffBytes(nat.segment(k, outerLen), want![k])).toBe('');
          // the room in front is left alone
          expect(nat.u8.subarray(nat.outs[k], nat.outs[k] + outerLen).every((x) => x === 0xa5)).toBe(true);
        }
        expect(nat.untouchedOutside(n)).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it('segment 0 in place (outOffs[0] + outerLen === srcOff)', () => {
    fc.assert(
      fc.property(specAndMss, fc.constantFrom(0, 20), ({ s, mss }, outerLen) => {
        const want = reference(s, mss)!;
        const nat = new Native(s, true, outerLen);
        const n = nat.run(mss, outerLen);
        expect(n).toBe(want.length);
        for (let k = 0; k < n; k++) expect(diffBytes(nat.segment(k, outerLen), want[k])).toBe('');
      }),
      { numRuns: 80 },
    );
  });

  it('fused IPIP: each segment leaves as the ipip4-encap frame of the reference segment', () => {
    const eth = Uint8Array.of(2, 0, 0, 0, 0, 9, 2, 0, 0, 0, 0, 8, 8, 0);
    fc.assert(
      fc.property(
        specAndMss,
        fc.record({
          src: fc.integer({ min: 0, max: 0xffffffff }),
          dst: fc.integer({ min: 0, max: 0xffffffff }),
          id: fc.integer({ min: 0, max: 0xffff }),
          ttl: fc.option(fc.integer({ min: 1, max: 255 }), { nil: undefined }),
          tos: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
        }),
        fc.boolean(),
        ({ s, mss }, o, inPlace) => {
          const want = reference(s, mss)!;
          const nat = new Native(s, inPlace, 20);
          const n = nat.run(mss, 20, { ...o, eth });
          expect(n).toBe(want.length);
          for (let k = 0; k < n; k++) {
            const seg = want[k];
            const exp = new Uint8Array(20 + seg.length);
            exp.set(seg, 20);
            exp.set(eth, 0);
            const inner = seg.subarray(14);
            emitIpipOuter(
              exp,
              14,
              o.src,
              o.dst,
              inner.length,
              (inner[6] & 0x40) !== 0,
              o.tos ?? inner[1],
              (o.id + k) & 0xffff,
            );
            if (o.ttl !== undefined) {
              // emitIpipOuter always uses IPIP_TTL (64): redo the header checksum for another TTL
              exp[14 + 8] = o.ttl;
              exp[14 + 10] = exp[14 + 11] = 0;
              let sum = 0;
              for (let j = 0; j < 20; j += 2) sum += (exp[14 + j] << 8) | exp[14 + j + 1];
              while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
              exp[14 + 10] = (~sum >>> 8) & 0xff;
              exp[14 + 11] = ~sum & 0xff;
            }
            expect(nat.lens[k]).toBe(exp.length);
            expect(diffBytes(nat.u8.slice(nat.outs[k], nat.outs[k] + nat.lens[k]), exp)).toBe('');
          }
        },
      ),
      { numRuns: 80 },
    );
  });

  it('a 64 KiB super-frame at MSS 1448: 46 segments, every checksum valid, payload reassembles', () => {
    const s: FrameSpec = {
      mac: Array(12).fill(2),
      ipOpts: [],
      tcpOpts: [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2],
      tos: 0,
      id: 0xfffe,
      df: true,
      ttl: 64,
      src: 0x0a410002,
      dst: 0x0a410103,
      sport: 40000,
      dport: 5201,
      seq: 0xffffff00,
      ack: 1,
      flags: 0x18 | 0x80 | 0x01,
      win: 512,
      csum: 0x1234,
      urg: 0,
      payload: 65535 - 20 - 32,
      seed: 7,
      pad: 0,
    };
    const u8 = new Uint8Array(new SharedArrayBuffer(70000 + 64 * 1600));
    const len = writeFrame(u8, 0, s);
    const outs = Uint32Array.from({ length: 64 }, (_, k) => 70000 + k * 1600);
    const lens = new Uint32Array(64);
    expect(io.segmentTcp4(u8, 0, len, 1448, outs, lens, 64)).toBe(46);
    const { hdrs } = shape(s);
    let payload = 0;
    for (let k = 0; k < 46; k++) {
      expect(tcpChecksumOk(u8, outs[k] + 14)).toBe(true);
      const chunk = lens[k] - hdrs;
      expect(
        diffBytes(
          u8.subarray(outs[k] + hdrs, outs[k] + lens[k]),
          u8.subarray(hdrs + payload, hdrs + payload + chunk),
        ),
      ).toBe('');
      payload += chunk;
    }
    expect(payload).toBe(s.payload);
    expect(io.segmentTcp4(u8, 0, len, 1448, outs, lens, 45)).toBe(io.SEG_ERR_ROOM);
  });
});

describe('native segmentTcp4 on bad input', () => {
  it('mutated frames: returns segments or SEG_ERR_HEADERS, writes only its outputs, agrees when it accepts', () => {
    fc.assert(
      fc.property(
        specAndMss,
        fc.array(fc.tuple(fc.integer({ min: 0, max: 120 }), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 6,
        }),
        fc.integer({ min: -60, max: 0 }),
        ({ s, mss }, flips, cut) => {
          const nat = new Native(s, false, 0);
          for (const [at, v] of flips) if (at < nat.srcLen) nat.u8[Native.SRC + at] = v;
          nat.srcLen = Math.max(0, nat.srcLen + cut);
          const src = nat.u8.slice(Native.SRC, Native.SRC + nat.srcLen);
          const n = nat.run(mss, 0);
          expect(n === io.SEG_ERR_HEADERS || n === io.SEG_ERR_ROOM || n >= 1).toBe(true);
          expect(diffBytes(nat.u8.subarray(Native.SRC, Native.SRC + nat.srcLen), src)).toBe(''); // source untouched
          expect(nat.untouchedOutside(Math.max(n, 0))).toBe(true);
          if (n < 1) return;
          const b = new Batch(MAX_SEGS + 1, undefined, 0, SLOT + 256);
          b.count = 1;
          b.u8.set(src, b.off[0]);
          b.len[0] = src.length;
          const extra = segmentTs(b, 0, mss);
          expect(extra).toBe(n - 1);
          const idx = [0, ...Array.from({ length: extra }, (_, k) => b.count - extra + k)];
          idx.forEach((i, k) => {
            expect(diffBytes(nat.segment(k, 0), b.u8.slice(b.off[i], b.off[i] + b.len[i]))).toBe('');
          });
        },
      ),
      { numRuns: 200 },
    );
  });

  it('wrong arguments throw TypeError / RangeError; frames that are not TCP/IPv4 return SEG_ERR_HEADERS', () => {
    const u8 = new Uint8Array(4096);
    const outs = Uint32Array.of(2048, 3000);
    const lens = new Uint32Array(2);
    const s = {
      ...fc.sample(frameSpec(100), { seed: 1, numRuns: 1 })[0],
      ipOpts: [],
      tcpOpts: [],
      payload: 100,
    };
    const len = writeFrame(u8, 0, s);
    expect(io.segmentTcp4(u8, 0, len, 60, outs, lens, 2)).toBe(2);
    expect(() => io.segmentTcp4(u8, 0, len, 60, outs, lens, 3)).toThrow(RangeError); // maxOut > outOffs
    expect(() => io.segmentTcp4(u8, 4000, 200, 60, outs, lens, 2)).toThrow(RangeError); // source outside
    expect(() => io.segmentTcp4(u8, 0, len, 60, Uint32Array.of(4090, 0), lens, 2)).toThrow(RangeError);
    expect(() => io.segmentTcp4(u8, 0, len, 60, Uint32Array.of(100, 2048), lens, 2)).toThrow(/overlaps/);
    expect(() => io.segmentTcp4(u8, 0, len, 0, outs, lens, 2)).toThrow(RangeError);
    expect(() => io.segmentTcp4(u8, 0, len, 60, outs, lens, 2, 14, { src: 1, dst: 2 })).toThrow(RangeError);
    expect(() => io.segmentTcp4(u8, 0, len, 60, outs, lens, 2, 20, { src: 1 } as io.IpipOuter)).toThrow(
      TypeError,
    );
    const n = io.loadNative();
    expect(() => n.segmentTcp4(u8, 0, len, 60, outs, [] as unknown as Uint32Array, 2, 0)).toThrow(TypeError);
    u8[23] = 17; // UDP
    expect(io.segmentTcp4(u8, 0, len, 60, outs, lens, 2)).toBe(io.SEG_ERR_HEADERS);
    u8[23] = 6;
    u8[20] = 0x20; // MF: a fragment is never a super-frame
    expect(io.segmentTcp4(u8, 0, len, 60, outs, lens, 2)).toBe(io.SEG_ERR_HEADERS);
    u8[20] = 0;
    expect(io.segmentTcp4(u8, 0, 40, 60, outs, lens, 2)).toBe(io.SEG_ERR_HEADERS); // IPv4 total > frame
  });
});
