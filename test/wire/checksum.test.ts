import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  csumAdjust16,
  csumAdjust32,
  fold,
  internetChecksum,
  onesSum,
  pseudoHeaderSum,
  udpChecksumFinal,
} from '../../src/dataplane/wire/checksum.js';

/** Straightforward reference: sum every word with BigInt, fold by mod 0xffff (keeping 0xffff for -0). */
function refSum(bytes: number[], initial = 0): number {
  let s = BigInt(initial);
  for (let i = 0; i < bytes.length; i += 2) s += BigInt((bytes[i] << 8) | (bytes[i + 1] ?? 0));
  if (s === 0n) return 0;
  const r = Number(s % 0xffffn);
  return r === 0 ? 0xffff : r;
}

describe('onesSum / internetChecksum (RFC 1071)', () => {
  it('matches the RFC 1071 §3 numerical example', () => {
    const b = Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
    expect(onesSum(b, 0, 8)).toBe(0xddf2);
    expect(internetChecksum(b, 0, 8)).toBe(0x220d);
  });

  it('pads an odd trailing byte with zero and respects off/len', () => {
    const b = Uint8Array.from([0xff, 0x12, 0x34, 0x56, 0xff]);
    expect(onesSum(b, 1, 3)).toBe(0x1234 + 0x5600);
    expect(onesSum(b, 1, 0)).toBe(0);
    expect(onesSum(b, 1, 0, 0x1234)).toBe(0x1234);
  });

  it('equals a BigInt reference for arbitrary data, offsets and initial values', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(20), fc.nat(0xffff), (data, pre, initial) => {
        const u8 = new Uint8Array(pre + data.length).fill(0x5a);
        u8.set(data, pre);
        expect(onesSum(u8, pre, data.length, initial)).toBe(refSum([...data], initial));
      }),
    );
  });

  it('handles sums beyond 32 bits (a 64 KiB run of 0xff)', () => {
    const u8 = new Uint8Array(70000).fill(0xff);
    expect(onesSum(u8, 0, u8.length, 0xffff)).toBe(0xffff);
    // 2^32 ≡ 1 (mod 0xffff), so 3 * 2^32 + 5 folds to 8
    expect(fold(0x1_0000_0000 * 3 + 5)).toBe(8);
  });

  it('a buffer with its checksum inserted sums to 0xffff', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 2, maxLength: 200 }), (data) => {
        const u8 = Uint8Array.from(data);
        fc.pre(u8.some((b, i) => i >= 2 && b !== 0));
        u8[0] = 0;
        u8[1] = 0;
        const c = internetChecksum(u8, 0, u8.length);
        u8[0] = c >>> 8;
        u8[1] = c & 0xff;
        expect(onesSum(u8, 0, u8.length)).toBe(0xffff);
      }),
    );
  });
});

describe('csumAdjust16 / csumAdjust32 (RFC 1624 eqn. 3)', () => {
  it('gets the RFC 1624 §4 example right (0x0000, where eqn. 2 gives 0xffff)', () => {
    // sum of other words 0xcd7a; m 0x5555 -> 0x3285; HC = ~(0xcd7a + 0x5555) = 0xdd2f
    expect(csumAdjust16(0xdd2f, 0x5555, 0x3285)).toBe(0x0000);
    const u8 = Uint8Array.from([0xcd, 0x7a, 0x32, 0x85]);
    expect(internetChecksum(u8, 0, 4)).toBe(0x0000);
  });

  it('a no-op change keeps a checksum that is not -0', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xfffe }), fc.nat(0xffff), (c, w) => {
        expect(csumAdjust16(c, w, w)).toBe(c);
      }),
    );
  });

  /** Words w (checksum computed over them), change word i to nw: incremental == full recompute. */
  const words = fc.array(fc.nat(0xffff), { minLength: 1, maxLength: 40 });
  const bytesOf = (w: number[]): Uint8Array => {
    const u8 = new Uint8Array(w.length * 2);
    w.forEach((x, i) => {
      u8[2 * i] = x >>> 8;
      u8[2 * i + 1] = x & 0xff;
    });
    return u8;
  };

  it('16-bit: incremental == full recompute (biased to 0x0000/0xffff words)', () => {
    const word = fc.oneof(fc.constantFrom(0, 0xffff, 1, 0xfffe), fc.nat(0xffff));
    fc.assert(
      fc.property(fc.array(word, { minLength: 1, maxLength: 40 }), fc.nat(), word, (w, iRaw, nw) => {
        const i = iRaw % w.length;
        const after = w.slice();
        after[i] = nw;
        // All-zero data is the one case with no valid representation choice (sum 0 → checksum 0xffff);
        // no real header is all zero.
        fc.pre(after.some((x) => x !== 0));
        const before = internetChecksum(bytesOf(w), 0, w.length * 2);
        const full = internetChecksum(bytesOf(after), 0, after.length * 2);
        expect(csumAdjust16(before, w[i], nw)).toBe(full);
      }),
      { numRuns: 2000 },
    );
  });

  it('32-bit: incremental == full recompute', () => {
    fc.assert(
      fc.property(words, fc.nat(), fc.nat(0xffffffff), (w0, iRaw, nv) => {
        const w = w0.length < 2 ? [...w0, 0x1234] : w0;
        const i = iRaw % (w.length - 1);
        const after = w.slice();
        after[i] = nv >>> 16;
        after[i + 1] = nv & 0xffff;
        fc.pre(after.some((x) => x !== 0));
        const before = internetChecksum(bytesOf(w), 0, w.length * 2);
        const full = internetChecksum(bytesOf(after), 0, after.length * 2);
        const old = ((w[i] << 16) | w[i + 1]) >>> 0;
        expect(csumAdjust32(before, old, nv >>> 0)).toBe(full);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('pseudoHeaderSum / udpChecksumFinal', () => {
  it('sums src, dst, proto and length words', () => {
    // 10.65.0.24 -> 10.65.1.7, UDP, 21: 0x0a41+0x0018+0x0a41+0x0107+0x0011+0x0015
    expect(pseudoHeaderSum(0x0a410018, 0x0a410107, 17, 21)).toBe(0x0a41 + 0x18 + 0x0a41 + 0x0107 + 17 + 21);
    expect(pseudoHeaderSum(0xffffffff, 0xffffffff, 0xff, 0xffff)).toBe(
      refSum([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff]),
    );
  });
  it('sends a computed 0 as 0xffff (RFC 768)', () => {
    expect(udpChecksumFinal(0)).toBe(0xffff);
    expect(udpChecksumFinal(0x1234)).toBe(0x1234);
    expect(udpChecksumFinal(0xffff)).toBe(0xffff);
  });
});
