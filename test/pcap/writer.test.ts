import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CaptureError } from '../../src/common/errors.js';
import { openCapture, openCaptureBytes } from '../../src/dataplane/devices/pcap/reader.js';
import { PCAP_SNAPLEN, PcapWriter } from '../../src/dataplane/devices/pcap/writer.js';
import {
  FRAMES,
  FRAMES_US,
  MULTI,
  epoch,
  fixture,
  hasTool,
  pcapParserFrames,
  readAll,
  skipNote,
  tsharkFields,
  type Frame,
} from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'calitap-pcap-writer-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Copies every frame of `src` into `w` straight from the reader's buffer (the replay path). */
function copy(src: string, w: PcapWriter): void {
  const r = openCapture(src);
  while (r.next()) w.write(r.buf, r.dataOffset, r.capLen, r.tsSec, r.tsNsec, r.origLen);
  r.close();
}

function writeFrames(w: PcapWriter, frames: Frame[]): void {
  for (const f of frames) {
    const b = Buffer.from(f.hex, 'hex');
    w.write(b, 0, b.length, f.sec, f.nsec, f.origLen);
  }
}

describe('PcapWriter', () => {
  it('writes a tcpdump-identical file (microseconds, LE, snaplen 262144, Ethernet)', () => {
    const out = join(tmp, 'us.pcap');
    const w = new PcapWriter(out);
    copy(fixture('scapy-ns-be.pcap'), w);
    expect(w.frames).toBe(10);
    w.close();
    w.close();
    const bytes = readFileSync(out);
    expect(bytes.length).toBe(w.bytes);
    expect(bytes.subarray(0, 24).toString('hex')).toBe(
      'd4c3b2a1' + '02000400' + '00000000' + '00000000' + '00000400' + '01000000',
    );
    // the committed tcpdump output of the same frames, byte for byte
    expect(bytes.equals(readFileSync(fixture('tcpdump-us.pcap')))).toBe(true);
    expect(readAll(openCapture(out), true)).toEqual(FRAMES_US.map((f) => ({ ...f, linkType: 1 })));
  });

  it('nanosecond option writes magic 0xa1b23c4d and keeps nanoseconds (= tcpdump --time-stamp-precision=nano)', () => {
    const out = join(tmp, 'ns.pcap');
    const w = new PcapWriter(out, { nanosecond: true });
    copy(fixture('editcap-ns.pcapng'), w);
    w.close();
    const bytes = readFileSync(out);
    expect(bytes.readUInt32LE(0)).toBe(0xa1b23c4d);
    expect(bytes.equals(readFileSync(fixture('tcpdump-ns.pcap')))).toBe(true);
    expect(readAll(openCapture(out))).toEqual(FRAMES);
  });

  it('in-memory variant gives the same bytes; flushes many times with a small buffer; cuts at snaplen', () => {
    const file = join(tmp, 'snap.pcap');
    const opts = { snapLen: 2000, bufferSize: 1 };
    const wf = new PcapWriter(file, opts);
    const wm = PcapWriter.inMemory(opts);
    for (let i = 0; i < 50; i++) {
      writeFrames(wf, FRAMES);
      writeFrames(wm, FRAMES);
    }
    wf.close();
    expect(wm.toBuffer().equals(readFileSync(file))).toBe(true);
    wm.close();
    expect(wm.toBuffer().equals(readFileSync(file))).toBe(true);
    expect(wm.frames).toBe(500);
    const back = readAll(openCaptureBytes(wm.toBuffer()));
    const cut = FRAMES_US.map((f) => ({ ...f, hex: f.hex.slice(0, 4000) })); // 2000 bytes
    expect(back.slice(0, 10)).toEqual(cut);
    expect(back[5].origLen).toBe(4000);
    expect(openCaptureBytes(wm.toBuffer()).next()).toBe(true);
  });

  it('writes frames from any offset of a larger buffer, small (word copy) and large', () => {
    const big = new Uint8Array(5000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    const w = PcapWriter.inMemory();
    const cases = [
      [0, 0],
      [1, 1],
      [3, 7],
      [5, 64],
      [7, 95],
      [9, 96],
      [11, 97],
      [13, 1514],
      [0, 5000],
    ];
    for (const [off, len] of cases) w.write(big, off, len, 1, 2);
    const r = openCaptureBytes(w.toBuffer());
    for (const [off, len] of cases) {
      expect(r.next()).toBe(true);
      expect(Buffer.from(r.buf.subarray(r.dataOffset, r.dataOffset + r.capLen))).toEqual(
        Buffer.from(big.subarray(off, off + len)),
      );
    }
    expect(r.next()).toBe(false);
  });

  it('rejects bad ranges, writes after close, and unwritable paths', () => {
    const w = PcapWriter.inMemory();
    const b = new Uint8Array(10);
    expect(() => w.write(b, 5, 6, 0, 0)).toThrow(RangeError);
    expect(() => w.write(b, -1, 2, 0, 0)).toThrow(RangeError);
    w.close();
    expect(() => w.write(b, 0, 1, 0, 0)).toThrow(/after close/);
    expect(() => new PcapWriter(join(tmp, 'no', 'such', 'dir.pcap'))).toThrow(CaptureError);
    expect(() => new PcapWriter(tmp)).toThrow(/cannot create/); // a directory
    expect(PCAP_SNAPLEN).toBe(262144);
  });
});

describe('our output read by independent readers', () => {
  const out = join(tmp, 'indep.pcap');
  const outNs = join(tmp, 'indep-ns.pcap');
  // all fixture frames plus the multi-section ones (SPB included): Ethernet only
  const frames = [...FRAMES, ...MULTI.filter((f) => f.linkType === 1)];
  const w = new PcapWriter(out);
  writeFrames(w, frames);
  w.close();
  const wn = new PcapWriter(outNs, { nanosecond: true });
  writeFrames(wn, frames);
  wn.close();

  it('pcap-parser', async () => {
    const pp = await pcapParserFrames(out);
    expect(pp.linkType).toBe(1);
    expect(pp.frames).toEqual(
      frames.map((f) => ({ hex: f.hex, origLen: f.origLen, sec: f.sec, nsec: f.nsec - (f.nsec % 1000) })),
    );
  });

  it.skipIf(!hasTool('tcpdump'))(
    `tcpdump -r out -w - reproduces our file byte for byte${skipNote('tcpdump')}`,
    () => {
      for (const [file, args] of [
        [out, []],
        [outNs, ['--time-stamp-precision=nano']],
      ] as const) {
        const r = spawnSync('tcpdump', [...args, '-r', file, '-w', '-'], { maxBuffer: 64 << 20 });
        expect(r.status, String(r.stderr)).toBe(0);
        expect(Buffer.compare(r.stdout, readFileSync(file))).toBe(0);
        const n = spawnSync('tcpdump', ['-r', file, '-n', '-q'], { encoding: 'utf8', maxBuffer: 64 << 20 });
        expect(n.stdout.split('\n').filter((l) => l !== '').length).toBe(frames.length);
      }
    },
  );

  it.skipIf(!hasTool('tshark'))(
    `tshark reads our frame count, times and lengths${skipNote('tshark')}`,
    () => {
      for (const [file, ns] of [
        [out, false],
        [outNs, true],
      ] as const) {
        expect(tsharkFields(file).map((l) => l.slice(0, 3))).toEqual(
          frames.map((f) => [
            epoch(f.sec, ns ? f.nsec : f.nsec - (f.nsec % 1000)),
            String(f.hex.length / 2),
            String(f.origLen),
          ]),
        );
      }
    },
  );
});
