// Native checksum helpers (native/offload.c) against the TypeScript reference (wire/checksum.ts
// onesSum, wire/tcp.ts and wire/udp.ts checksum functions) on random data: csumPartial at any offset,
// length and seed; l4Csum4 verifying and writing TCP and UDP checksums of many packets per call, and
// only returning per-packet codes on mutated or random bytes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as io from '../../src/dataplane/devices/native.js';
import { onesSum } from '../../src/dataplane/wire/checksum.js';
import { tcpChecksumOk, tcpSetChecksum } from '../../src/dataplane/wire/tcp.js';
import { udpChecksumOk, udpSetChecksum } from '../../src/dataplane/wire/udp.js';
import { diffBytes } from './frames.js';

const bytes = (max: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: 0, maxLength: max });

describe('csumPartial = onesSum', () => {
  it('any bytes, offset, length and seed', () => {
    fc.assert(
      fc.property(
        bytes(3000),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 0, max: 0xffff }),
        (data, a, b, seed) => {
          const off = data.length ? a % data.length : 0;
          const len = data.length - off ? b % (data.length - off + 1) : 0;
          const u8 = new Uint8Array(new SharedArrayBuffer(data.length + 1));
          u8.set(data);
          expect(io.csumPartial(u8, off, len, seed)).toBe(onesSum(u8, off, len, seed));
          expect(io.csumPartial(u8.buffer, off, len)).toBe(onesSum(u8, off, len));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('64 KiB of 0xff and of zeros (carries), empty range, bad ranges throw', () => {
    const u8 = new Uint8Array(65536).fill(0xff);
    expect(io.csumPartial(u8, 0, 65536)).toBe(onesSum(u8, 0, 65536));
    expect(io.csumPartial(u8, 1, 65535, 0xffff)).toBe(onesSum(u8, 1, 65535, 0xffff));
    u8.fill(0);
    expect(io.csumPartial(u8, 0, 65536)).toBe(0);
    expect(io.csumPartial(u8, 10, 0, 0x1234)).toBe(0x1234);
    expect(() => io.csumPartial(u8, 65530, 7)).toThrow(RangeError);
    expect(() => io.csumPartial(u8, 0, 1, 0x10000)).toThrow(RangeError);
  });
});

interface L4Spec {
  proto: 6 | 17;
  ipOpts: number;
  thl: number;
  payload: Uint8Array;
  udpShort: number;
  trailer: number;
  src: number;
  dst: number;
  csum: 'right' | 'wrong' | 'zero';
}

const l4Spec: fc.Arbitrary<L4Spec> = fc.record({
  proto: fc.constantFrom(6 as const, 17 as const),
  ipOpts: fc.integer({ min: 0, max: 10 }),
  thl: fc.integer({ min: 5, max: 15 }),
  payload: bytes(4000),
  udpShort: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 20 })),
  trailer: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 30 })),
  src: fc.integer({ min: 0, max: 0xffffffff }),
  dst: fc.integer({ min: 0, max: 0xffffffff }),
  csum: fc.constantFrom('right' as const, 'wrong' as const, 'zero' as const),
});

/** Writes the IPv4 packet at off (random option bytes, headers filled with 0x5a); returns bytes used. */
function writeL4(u8: Uint8Array, off: number, s: L4Spec): number {
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  const ihl = 20 + s.ipOpts * 4;
  const l4h = s.proto === 6 ? s.thl * 4 : 8;
  const total = ihl + l4h + s.payload.length;
  u8.fill(0x5a, off, off + total);
  u8[off] = 0x40 | (ihl / 4);
  dv.setUint16(off + 2, total);
  dv.setUint16(off + 6, 0x4000);
  u8[off + 9] = s.proto;
  dv.setUint32(off + 12, s.src);
  dv.setUint32(off + 16, s.dst);
  const l4 = off + ihl;
  if (s.proto === 6) u8[l4 + 12] = s.thl << 4;
  else dv.setUint16(l4 + 4, Math.max(8, 8 + s.payload.length - s.udpShort));
  u8.set(s.payload, l4 + l4h);
  if (s.proto === 6) tcpSetChecksum(u8, off);
  else udpSetChecksum(u8, off);
  const field = l4 + (s.proto === 6 ? 16 : 6);
  if (s.csum === 'wrong') u8[field + 1] ^= 0x01;
  if (s.csum === 'zero') dv.setUint16(field, 0);
  u8.fill(0x77, off + total, off + total + s.trailer);
  return total + s.trailer;
}

describe('l4Csum4 = the TypeScript TCP/UDP checksum functions', () => {
  it('verify and write, many packets per call', () => {
    fc.assert(
      fc.property(fc.array(l4Spec, { minLength: 1, maxLength: 12 }), (specs) => {
        const u8 = new Uint8Array(new SharedArrayBuffer(specs.length * 4200));
        const offs = new Uint32Array(specs.length);
        const lens = new Uint32Array(specs.length);
        specs.forEach((s, i) => {
          offs[i] = i * 4200 + (i & 1); // odd offsets too
          lens[i] = writeL4(u8, offs[i], s);
        });
        const res = new Uint8Array(specs.length).fill(9);
        const ok = io.l4Csum4(u8, offs, lens, specs.length, res);
        let want = 0;
        specs.forEach((s, i) => {
          const tsOk = s.proto === 6 ? tcpChecksumOk(u8, offs[i]) : udpChecksumOk(u8, offs[i]);
          const none = s.proto === 17 && s.csum === 'zero';
          const code = none ? io.CSUM_NONE : tsOk ? io.CSUM_OK : io.CSUM_BAD;
          expect(res[i], `packet ${i}`).toBe(code);
          if (code === io.CSUM_OK) want++;
        });
        expect(ok).toBe(want);
        // write mode = tcpSetChecksum / udpSetChecksum on a copy
        const ref = u8.slice();
        specs.forEach((s, i) =>
          s.proto === 6 ? tcpSetChecksum(ref, offs[i]) : udpSetChecksum(ref, offs[i]),
        );
        expect(io.l4Csum4(u8, offs, lens, specs.length, res, true)).toBe(specs.length);
        expect(diffBytes(u8, ref)).toBe('');
        expect(io.l4Csum4(u8, offs, lens, specs.length, res)).toBe(specs.length);
      }),
      { numRuns: 150 },
    );
  });

  it('mutated and random bytes: only codes, never a throw, nothing written in verify mode', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          l4Spec.map((s) => {
            const u8 = new Uint8Array(4200);
            return u8.subarray(0, writeL4(u8, 0, s));
          }),
          bytes(200),
        ),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        fc.nat(),
        (pkt, flips, cut) => {
          const u8 = pkt.slice();
          for (const [at, v] of flips) if (u8.length) u8[at % u8.length] = v;
          const len = u8.length ? cut % (u8.length + 1) : 0;
          const before = u8.slice();
          const res = new Uint8Array(1);
          const ok = io.l4Csum4(u8, Uint32Array.of(0), Uint32Array.of(len), 1, res);
          expect([0, 1, 2, 3]).toContain(res[0]);
          expect(ok).toBe(res[0] === io.CSUM_OK ? 1 : 0);
          expect(diffBytes(u8, before)).toBe('');
          if (res[0] === io.CSUM_OK || res[0] === io.CSUM_BAD) {
            const proto = u8[9];
            const tsOk = proto === 6 ? tcpChecksumOk(u8, 0) : udpChecksumOk(u8, 0);
            expect(tsOk).toBe(res[0] === io.CSUM_OK);
          }
          io.l4Csum4(u8, Uint32Array.of(0), Uint32Array.of(len), 1, res, true);
          expect([io.CSUM_OK, io.CSUM_MALFORMED]).toContain(res[0]);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('malformed packets and bad arguments', () => {
    const u8 = new Uint8Array(200);
    const s: L4Spec = {
      proto: 6,
      ipOpts: 0,
      thl: 5,
      payload: new Uint8Array(10),
      udpShort: 0,
      trailer: 0,
      src: 1,
      dst: 2,
      csum: 'right',
    };
    const len = writeL4(u8, 0, s);
    const res = new Uint8Array(2);
    const one = (n = len): number => (io.l4Csum4(u8, Uint32Array.of(0), Uint32Array.of(n), 1, res), res[0]);
    expect(one()).toBe(io.CSUM_OK);
    expect(one(len - 1)).toBe(io.CSUM_MALFORMED); // IPv4 total length > available
    u8[6] = 0x20; // MF
    expect(one()).toBe(io.CSUM_MALFORMED);
    u8[6] = 0x40;
    u8[9] = 1; // ICMP
    expect(one()).toBe(io.CSUM_MALFORMED);
    u8[9] = 6;
    u8[0] = 0x44; // IHL 16 bytes
    expect(one()).toBe(io.CSUM_MALFORMED);
    u8[0] = 0x45;
    expect(() => io.l4Csum4(u8, Uint32Array.of(0), Uint32Array.of(len), 3, res)).toThrow(RangeError);
    expect(() => io.l4Csum4(u8, Uint32Array.of(190), Uint32Array.of(20), 1, res)).toThrow(RangeError);
    expect(() =>
      io.l4Csum4(u8, Uint32Array.of(0), Uint32Array.of(len), 1, new Int8Array(1) as never),
    ).toThrow(TypeError);
  });
});
