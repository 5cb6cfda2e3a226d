// Property: whatever the bytes, the reader only yields well-formed frames or throws CaptureError, and
// always terminates (each record consumes at least 12 bytes, so frames <= bytes / 12).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { CaptureError } from '../../src/common/errors.js';
import {
  MAX_FRAME_LEN,
  openCapture,
  openCaptureBytes,
  type CaptureReader,
} from '../../src/dataplane/devices/pcap/reader.js';
import { fixture } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'calitap-pcap-fuzz-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Drains a reader, checking every frame; returns 'ok' or 'error' (CaptureError); rethrows anything else. */
function drain(open: () => CaptureReader, size: number, name: string): 'ok' | 'error' {
  let r: CaptureReader | undefined;
  try {
    r = open();
    let frames = 0;
    while (r.next()) {
      frames++;
      if (frames > size / 12 + 1) throw new Error(`too many frames (${frames}) from ${size} bytes`);
      const ok =
        Number.isInteger(r.dataOffset) &&
        r.dataOffset >= 0 &&
        Number.isInteger(r.capLen) &&
        r.capLen >= 0 &&
        r.capLen <= MAX_FRAME_LEN &&
        r.dataOffset + r.capLen <= r.buf.length &&
        Number.isInteger(r.origLen) &&
        Number.isInteger(r.tsSec) &&
        Number.isInteger(r.tsNsec) &&
        r.tsNsec >= 0 &&
        r.tsNsec < 1e9 &&
        Number.isInteger(r.linkType) &&
        r.index === frames - 1;
      if (!ok) throw new Error(`malformed frame ${frames - 1}`);
    }
    r.close();
    return 'ok';
  } catch (e) {
    r?.close();
    if (!(e instanceof CaptureError)) throw e;
    if (!e.message.startsWith(`${name}: `) || e.message.includes('\n'))
      throw new Error(`bad message: ${e.message}`);
    return 'error';
  }
}

const HEADS = [
  new Uint8Array(0),
  Uint8Array.from([0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0]),
  Uint8Array.from([0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 1]),
  readFileSync(fixture('editcap-ns.pcapng')).subarray(0, 200), // SHB + IDB (+ part of an EPB)
  readFileSync(fixture('multi.pcapng')).subarray(0, 300),
];
const concat = (a: Uint8Array, b: Uint8Array): Uint8Array => {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};

// Small pcapng blocks with plausible types and lengths, so the fuzzer gets deep into the block parser.
const ngBlock = fc
  .record({
    type: fc.constantFrom(1, 2, 3, 4, 5, 6, 0xa, 0xbad, 0x0a0d0d0a, 0x12345678),
    body: fc.uint8Array({ maxLength: 64 }),
    lenDelta: fc.constantFrom(0, 0, 0, 0, 1, -4, 4, 1000),
  })
  .map(({ type, body, lenDelta }) => {
    const padded = body.length + ((4 - (body.length % 4)) % 4);
    const b = new Uint8Array(12 + padded);
    const dv = new DataView(b.buffer);
    const len = 12 + padded;
    dv.setUint32(0, type, true);
    dv.setUint32(4, len + lenDelta, true);
    b.set(body, 8);
    dv.setUint32(len - 4, len, true);
    return b;
  });

describe('reader fuzz: only frames or CaptureError, never anything else, never hangs', () => {
  it('arbitrary bytes, with or without a valid header in front', () => {
    fc.assert(
      fc.property(fc.constantFrom(...HEADS), fc.uint8Array({ maxLength: 700 }), (head, tail) => {
        const bytes = concat(head, tail);
        drain(() => openCaptureBytes(bytes, 'fuzz'), bytes.length, 'fuzz');
      }),
      { numRuns: 3000 },
    );
  });

  it('sequences of plausible pcapng blocks behind a valid section and interface', () => {
    const head = readFileSync(fixture('multi.pcapng')).subarray(0, 140); // SHB + first IDBs
    fc.assert(
      fc.property(fc.array(ngBlock, { maxLength: 12 }), (blocks) => {
        const bytes = blocks.reduce(concat, new Uint8Array(head));
        drain(() => openCaptureBytes(bytes, 'ng'), bytes.length, 'ng');
      }),
      { numRuns: 2000 },
    );
  });

  for (const file of ['scapy-us-le.pcap', 'scapy-ns-be.pcap', 'editcap-ns.pcapng', 'multi.pcapng']) {
    it(`mutations of ${file} (byte flips, 32-bit overwrites, cuts, insertions), in memory and chunked from disk`, () => {
      const base = readFileSync(fixture(file));
      const mutation = fc.oneof(
        fc.record({
          kind: fc.constant('flip' as const),
          at: fc.nat(base.length - 1),
          v: fc.integer({ min: 0, max: 255 }),
        }),
        fc.record({
          kind: fc.constant('u32' as const),
          at: fc.nat(base.length - 4),
          v: fc.constantFrom(0, 1, 3, 12, 0xffff, 0x7fffffff, 0xffffffff, MAX_FRAME_LEN + 1, 0x0a0d0d0a),
        }),
        fc.record({ kind: fc.constant('cut' as const), at: fc.nat(base.length), v: fc.constant(0) }),
        fc.record({
          kind: fc.constant('insert' as const),
          at: fc.nat(base.length),
          v: fc.integer({ min: 1, max: 40 }),
        }),
      );
      let n = 0;
      fc.assert(
        fc.property(
          fc.array(mutation, { minLength: 1, maxLength: 4 }),
          fc.integer({ min: 64, max: 3000 }),
          (muts, chunkSize) => {
            let b = Buffer.from(base);
            for (const m of muts) {
              if (m.kind === 'flip' && m.at < b.length) b[m.at] = m.v;
              else if (m.kind === 'u32' && m.at + 4 <= b.length) b.writeUInt32LE(m.v >>> 0, m.at);
              else if (m.kind === 'cut') b = b.subarray(0, Math.min(m.at, b.length));
              else if (m.kind === 'insert')
                b = Buffer.concat([b.subarray(0, m.at), Buffer.alloc(m.v, 0xa5), b.subarray(m.at)]);
            }
            const mem = drain(() => openCaptureBytes(b, 'mut'), b.length, 'mut');
            if (n++ % 8 === 0) {
              // the file path (chunked reads, compaction, buffer growth) must agree with the in-memory one
              const p = join(tmp, `m.${file}`);
              writeFileSync(p, b);
              expect(drain(() => openCapture(p, { chunkSize }), b.length, p)).toBe(mem);
            }
          },
        ),
        { numRuns: 1500 },
      );
    });
  }
});
