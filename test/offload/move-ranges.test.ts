// The addon's moveRanges (native/offload.c): count memmoves within the arena in one call, in order
// (input GRO's payload copies), overlapping ranges as memmove treats them, and a RangeError naming
// the range when one leaves the arena (nothing is moved then).
import { describe, expect, it } from 'vitest';
import { moveRanges } from '../../src/dataplane/devices/native.js';

const arena = (): Uint8Array => {
  const u8 = new Uint8Array(new SharedArrayBuffer(256));
  for (let i = 0; i < 256; i++) u8[i] = i;
  return u8;
};

describe('moveRanges', () => {
  it('moves each range in order, overlapping ones as memmove', () => {
    const u8 = arena();
    moveRanges(u8, Uint32Array.of(100, 10, 200), Uint32Array.of(0, 8, 100), Uint32Array.of(4, 4, 4), 3);
    expect([...u8.subarray(100, 104)]).toEqual([0, 1, 2, 3]);
    expect([...u8.subarray(10, 14)]).toEqual([8, 9, 10, 11]); // overlapping: 8..11 -> 10..13
    expect([...u8.subarray(200, 204)]).toEqual([0, 1, 2, 3]); // after the first move, in order
  });

  it('count 0 moves nothing; a count beyond the arrays or a range outside the arena throws', () => {
    const u8 = arena();
    moveRanges(u8, new Uint32Array(0), new Uint32Array(0), new Uint32Array(0), 0);
    expect(u8[0]).toBe(0);
    expect(() => moveRanges(u8, Uint32Array.of(0), Uint32Array.of(0), Uint32Array.of(1), 2)).toThrow(
      RangeError,
    );
    expect(() =>
      moveRanges(u8, Uint32Array.of(0, 250), Uint32Array.of(1, 0), Uint32Array.of(1, 10), 2),
    ).toThrow(/range 1 .* outside the arena/);
    expect(u8[0]).toBe(0); // checked before any move
  });
});
