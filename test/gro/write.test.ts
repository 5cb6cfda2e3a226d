// The native gather write of GRO (native/gro.c writeGro) and the TAP-side writer (devices/gro-write.ts)
// without root: output frames go to a regular file (writev appends them in order), so the bytes the
// kernel would get are read back and cut as the kernel would. Status semantics as writeBatchStatus.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GroWriter } from '../../src/dataplane/devices/gro-write.js';
import { Tcp4GroNode } from '../../src/dataplane/devices/gro-node.js';
import { nativeAvailable } from '../../src/dataplane/devices/native.js';
import { writeGro } from '../../src/dataplane/devices/native/gro.js';
import { bulkSeg, kernelSegments, queue, type Seg } from './frames.js';

const EBADF = 9;

const seg = (k: number, size = 1000, badCsum = false): Seg => bulkSeg(k, { size, badCsum });

describe.skipIf(!nativeAvailable())('writeGro / GroWriter', () => {
  let dir = '';
  let fd = -1;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'calitap-gro-'));
    fd = openSync(join(dir, 'out'), 'w');
  });
  afterEach(() => {
    closeSync(fd);
    rmSync(dir, { recursive: true });
  });

  it('writes each group as the concatenation of its pieces, one writev each', () => {
    const u8 = new Uint8Array(64);
    for (let i = 0; i < 64; i++) u8[i] = i;
    const offs = Uint32Array.from([0, 10, 20, 30]);
    const lens = Uint32Array.from([3, 2, 1, 4]);
    const status = new Int32Array(3).fill(7);
    expect(writeGro(fd, u8, offs, lens, Uint8Array.from([1, 2, 1]), 3, status)).toBe(3);
    expect([...status]).toEqual([0, 0, 0]);
    expect([...readFileSync(join(dir, 'out'))]).toEqual([0, 1, 2, 10, 11, 20, 30, 31, 32, 33]);
  });

  it('reports a broken fd in every status and throws only for wrong arguments', () => {
    const u8 = new Uint8Array(16);
    const status = new Int32Array(2);
    expect(
      writeGro(
        999_999,
        u8,
        Uint32Array.from([0, 0]),
        Uint32Array.from([1, 1]),
        Uint8Array.from([1, 1]),
        2,
        status,
      ),
    ).toBe(0);
    expect([...status]).toEqual([-EBADF, -EBADF]);
    expect(() =>
      writeGro(fd, u8, Uint32Array.from([10]), Uint32Array.from([10]), Uint8Array.from([1]), 1, status),
    ).toThrow(RangeError);
    expect(() =>
      writeGro(fd, u8, Uint32Array.from([0]), Uint32Array.from([1]), Uint8Array.from([2]), 1, status),
    ).toThrow(RangeError);
    expect(() =>
      writeGro(fd, u8, Uint32Array.from([0]), Uint32Array.from([1]), Uint8Array.from([0]), 1, status),
    ).toThrow(RangeError);
    expect(() =>
      writeGro(fd, u8, Uint32Array.from([0]), Uint32Array.from([1]), Uint8Array.from([1]), 5, status),
    ).toThrow(RangeError);
  });

  it('GroWriter: coalesces, verifies checksums natively, and gives every frame its status', () => {
    const segs = [seg(0), seg(1), seg(2, 1000, true), seg(3), seg(4)];
    segs[3].seq = segs[2].seq; // after the bad one: not in sequence with the first super-frame
    segs[3].id = 2;
    segs[4].seq = segs[3].seq + 1000;
    segs[4].id = 3;
    const { u8, hdr, lens } = queue(segs);
    const original = segs.map((_, k) => u8.slice(hdr[k] + 10, hdr[k] + lens[k]));
    const node = new Tcp4GroNode();
    node.c = new Float64Array(8);
    const w = new GroWriter(8, node);
    const status = new Int32Array(8).fill(1);
    w.send(fd, u8, hdr, lens, segs.length, status);
    expect([...status.subarray(0, 5)]).toEqual([0, 0, 0, 0, 0]);
    // [0,1] merged; 2 (bad checksum) alone; [3,4] merged
    expect([...node.c]).toEqual([4, 2, 1, 0, 0, 0, 0, 0]);
    const file = readFileSync(join(dir, 'out'));
    const frames: Uint8Array[] = [];
    for (let o = 0; o < file.length;) {
      const ipLen = file.readUInt16BE(o + 10 + 14 + 2);
      const w1 = new Uint8Array(file.subarray(o, o + 10 + 14 + ipLen));
      frames.push(...kernelSegments(w1));
      o += w1.length;
    }
    expect(frames.map((f) => Buffer.from(f).toString('hex'))).toEqual(
      original.map((f) => Buffer.from(f).toString('hex')),
    );
  });

  it('GroWriter: a round with nothing to merge is written as it is', () => {
    const segs = [seg(0), { ...seg(1), seq: 77 }];
    const { u8, hdr, lens } = queue(segs);
    const w = new GroWriter(4, new Tcp4GroNode());
    const status = new Int32Array(4).fill(1);
    w.send(fd, u8, hdr, lens, 2, status);
    expect([...status.subarray(0, 2)]).toEqual([0, 0]);
    expect(readFileSync(join(dir, 'out')).length).toBe(lens[0] + lens[1]);
  });
});
