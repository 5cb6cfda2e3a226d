import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CaptureError } from '../../src/common/errors.js';
import { MAX_FRAME_LEN, openCapture, openCaptureBytes } from '../../src/dataplane/devices/pcap/reader.js';
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

const tmp = mkdtempSync(join(tmpdir(), 'calitap-pcap-reader-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// Every fixture holding the same ten frames, by who wrote it and with which timestamp precision.
const SAME_FRAMES: [file: string, format: 'pcap' | 'pcapng', expected: Frame[]][] = [
  ['scapy-us-le.pcap', 'pcap', FRAMES_US],
  ['scapy-us-be.pcap', 'pcap', FRAMES_US],
  ['scapy-ns-le.pcap', 'pcap', FRAMES],
  ['scapy-ns-be.pcap', 'pcap', FRAMES],
  ['tcpdump-us.pcap', 'pcap', FRAMES_US],
  ['tcpdump-ns.pcap', 'pcap', FRAMES],
  ['editcap-nsec-from-us.pcap', 'pcap', FRAMES_US],
  ['editcap-us-from-ng.pcap', 'pcap', FRAMES_US],
  ['scapy.pcapng', 'pcapng', FRAMES_US],
  ['editcap-ns.pcapng', 'pcapng', FRAMES],
  ['editcap-us.pcapng', 'pcapng', FRAMES_US],
  ['handmade-ns-be.pcapng', 'pcapng', FRAMES],
];
const ALL_FIXTURES = [...SAME_FRAMES.map((s) => s[0]), 'mergecap-2if.pcapng', 'multi.pcapng'];

function expectCaptureError(fn: () => unknown, ...parts: (string | RegExp)[]): CaptureError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(CaptureError);
  const ce = err as CaptureError;
  expect(ce.code).toBe('capture-invalid');
  expect(ce.message).not.toContain('\n');
  for (const p of parts) expect(ce.message).toMatch(p);
  return ce;
}

function readFile(path: string, opts = {}): Frame[] {
  const r = openCapture(path, opts);
  try {
    return readAll(r, true);
  } finally {
    r.close();
  }
}

describe('openCapture: every writer and variant reads the same frames, bytes and timestamps', () => {
  for (const [file, format, expected] of SAME_FRAMES) {
    it(file, () => {
      const r = openCapture(fixture(file));
      expect(r.format).toBe(format);
      expect(r.path).toBe(fixture(file));
      const got = readAll(r, true);
      expect(got).toEqual(expected.map((f) => ({ ...f, linkType: 1 })));
      expect(r.index).toBe(expected.length - 1);
      expect(r.truncatedTail).toBe(false);
      expect(r.next()).toBe(false); // stays at the end
      r.close();
      r.close(); // idempotent
    });
  }

  it('mergecap-2if.pcapng: two interfaces (Ethernet ns, raw IP us) in one section', () => {
    const got = readFile(fixture('mergecap-2if.pcapng'));
    expect(got.filter((f) => f.linkType === 1).map(({ linkType: _, ...f }) => f)).toEqual(FRAMES);
    const raw = got.filter((f) => f.linkType === 101);
    expect(raw.map((f) => [f.sec, f.nsec])).toEqual([
      [1700000000, 1000],
      [1700000000, 200001000],
      [1700000000, 400001000],
    ]);
  });

  it('multi.pcapng: 3 sections (LE, BE, LE), 6 interfaces, tsresol 10^-9/2^-20/2^-30/10^-12/10^-3/2^0, tsoffset, SPB, PB, skipped NRB/ISB/DSB/custom', () => {
    const got = readFile(fixture('multi.pcapng'));
    expect(got).toEqual(MULTI.map(({ spb: _s, tsharkSkip: _t, ...f }) => f));
  });
});

describe('openCapture: committed tshark dumps agree with us (no tools needed)', () => {
  for (const file of ALL_FIXTURES) {
    it(file, () => {
      const lines = readFileSync(fixture(`${file}.tshark.txt`), 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => l.split('\t'));
      compareWithTshark(file, lines);
    });
  }
});

/** tshark lists pcapng custom blocks as records without an interface id: those are not frames. */
function compareWithTshark(file: string, lines: string[][]): void {
  const isNg = file.endsWith('.pcapng');
  const records = isNg ? lines.filter((l) => l[3] !== '') : lines;
  const ours = readFile(fixture(file));
  expect(ours.length).toBe(records.length);
  ours.forEach((f, i) => {
    const [time, capLen, len] = records[i];
    expect([f.hex.length / 2, f.origLen]).toEqual([Number(capLen), Number(len)]);
    const skip = file === 'multi.pcapng' ? MULTI[i].tsharkSkip : undefined;
    if (skip === undefined) expect(epoch(f.sec, f.nsec)).toBe(time);
  });
}

describe('live cross-checks with independent readers', () => {
  it.skipIf(!hasTool('tshark'))(`tshark reads every fixture as we do${skipNote('tshark')}`, () => {
    for (const file of ALL_FIXTURES) compareWithTshark(file, tsharkFields(fixture(file)));
  });

  for (const file of ['scapy-us-le.pcap', 'scapy-us-be.pcap', 'tcpdump-us.pcap', 'editcap-us-from-ng.pcap']) {
    it(`pcap-parser reads ${file} as we do`, async () => {
      const pp = await pcapParserFrames(fixture(file));
      expect(pp.linkType).toBe(1);
      expect(readFile(fixture(file)).map(({ linkType: _, ...f }) => f)).toEqual(pp.frames);
    });
  }

  it.skipIf(!hasTool('/usr/bin/python3', ['-c', 'import scapy.all']))(
    `a capture scapy writes now (random frames, ns, big-endian) reads back exactly${skipNote('/usr/bin/python3')}`,
    async () => {
      const { spawnSync } = await import('node:child_process');
      const out = join(tmp, 'live-scapy.pcap');
      const py = [
        'import json, random, sys',
        'from scapy.utils import PcapWriter',
        'random.seed(7); fr = []',
        `w = PcapWriter(sys.argv[1], linktype=1, nano=True, endianness='>', snaplen=262144, sync=True)`,
        'w._write_header(None)',
        'for i in range(200):',
        '    b = bytes(random.getrandbits(8) for _ in range(random.randint(14, 1600)))',
        '    s, ns = random.randint(0, 2**32 - 1), random.randint(0, 999999999)',
        '    w.write_packet(b, sec=s, usec=ns); fr.append([b.hex(), s, ns])',
        'w.close(); print(json.dumps(fr))',
      ].join('\n');
      const r = spawnSync('/usr/bin/python3', ['-c', py, out], { encoding: 'utf8', maxBuffer: 16 << 20 });
      expect(r.status, r.stderr).toBe(0);
      const want = (JSON.parse(r.stdout) as [string, number, number][]).map(([hex, sec, nsec]) => ({
        hex,
        origLen: hex.length / 2,
        sec,
        nsec,
        linkType: 1,
      }));
      expect(readFile(out)).toEqual(want);
      expect(readFile(out, { chunkSize: 1000 })).toEqual(want);
    },
  );
});

describe('chunked reading', () => {
  for (const file of ALL_FIXTURES) {
    it(`${file}: any chunk size (records straddle chunks) and in-memory give the same frames`, () => {
      const whole = readFile(fixture(file));
      for (const chunkSize of [64, 65, 100, 333, 1024, 4099]) {
        expect(readFile(fixture(file), { chunkSize })).toEqual(whole);
      }
      const mem = openCaptureBytes(readFileSync(fixture(file)), file);
      expect(readAll(mem, true)).toEqual(whole);
    });
  }

  it.skipIf(!hasTool('mkfifo', ['--version']))('reads from a pipe (size unknown), small chunks', async () => {
    const { spawn, spawnSync } = await import('node:child_process');
    for (const file of ['scapy-ns-be.pcap', 'multi.pcapng']) {
      const fifo = join(tmp, `fifo-${file}`);
      expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
      const cat = spawn('sh', ['-c', `cat "$1" > "$2"`, 'sh', fixture(file), fifo], { stdio: 'ignore' });
      const done = new Promise((resolve) => cat.on('exit', resolve));
      expect(readFile(fifo, { chunkSize: 100 })).toEqual(readFile(fixture(file)));
      await done;
    }
  });

  it('reads a file much larger than the chunk, reusing one buffer', () => {
    // 20000 frames of 60..1514 bytes written by hand (not with our writer), read with 64 KiB chunks
    const parts: Buffer[] = [];
    const hdr = Buffer.alloc(24);
    hdr.writeUInt32LE(0xa1b2c3d4, 0);
    hdr.writeUInt16LE(2, 4);
    hdr.writeUInt16LE(4, 6);
    hdr.writeUInt32LE(65535, 16);
    hdr.writeUInt32LE(1, 20);
    parts.push(hdr);
    const N = 20000;
    for (let i = 0; i < N; i++) {
      const len = 60 + ((i * 7919) % 1455);
      const rec = Buffer.alloc(16 + len, i & 0xff);
      rec.writeUInt32LE(1700000000 + i, 0);
      rec.writeUInt32LE(i % 1000000, 4);
      rec.writeUInt32LE(len, 8);
      rec.writeUInt32LE(len + 1, 12);
      rec.writeUInt32LE(i, 16); // frame number in the first bytes
      parts.push(rec);
    }
    const path = join(tmp, 'big.pcap');
    writeFileSync(path, Buffer.concat(parts));
    const r = openCapture(path, { chunkSize: 64 << 10 });
    const bufs = new Set<Uint8Array>();
    let n = 0;
    let bad = -1;
    while (r.next()) {
      const len = 60 + ((n * 7919) % 1455);
      const b = r.buf;
      const o = r.dataOffset;
      const ok =
        r.index === n &&
        r.capLen === len &&
        r.origLen === len + 1 &&
        r.tsSec === 1700000000 + n &&
        r.tsNsec === (n % 1000000) * 1000 &&
        (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) === n &&
        b[o + len - 1] === (n & 0xff);
      if (!ok && bad < 0) bad = n;
      bufs.add(b);
      n++;
    }
    expect(bad).toBe(-1);
    expect(n).toBe(N);
    expect(bufs.size).toBe(1);
    r.close();
  });
});

/** Byte offsets where records (pcap) or blocks (pcapng) end, starting with the end of the file header. */
function recordBoundaries(b: Buffer, ng: boolean): number[] {
  const out: number[] = [];
  if (!ng) {
    const le = b.readUInt32LE(0) === 0xa1b2c3d4 || b.readUInt32LE(0) === 0xa1b23c4d;
    let p = 24;
    out.push(p);
    while (p < b.length) {
      p += 16 + (le ? b.readUInt32LE(p + 8) : b.readUInt32BE(p + 8));
      out.push(p);
    }
    return out;
  }
  let le = true;
  let p = 0;
  out.push(0);
  while (p < b.length) {
    if (b.readUInt32LE(p) === 0x0a0d0d0a) le = b.readUInt32LE(p + 8) === 0x1a2b3c4d;
    p += le ? b.readUInt32LE(p + 4) : b.readUInt32BE(p + 4);
    out.push(p);
  }
  return out;
}

/** Whether the record ending at bounds[i] is a frame (pcap: always; pcapng: EPB, SPB or PB). */
function isFrameEnd(b: Buffer, bounds: number[], i: number): boolean {
  if (bounds[0] === 24) return true;
  const start = bounds[i - 1];
  const t0 = b.readUInt32LE(start);
  const t1 = b.readUInt32BE(start);
  return [2, 3, 6].includes(t0) || [2, 3, 6].includes(t1);
}

describe('truncated last record (tcpdump killed mid-write)', () => {
  for (const file of ['scapy-us-le.pcap', 'scapy-ns-be.pcap', 'editcap-ns.pcapng', 'multi.pcapng']) {
    it(`${file}: cut at every byte gives the complete frames before the cut, and truncatedTail`, () => {
      const bytes = readFileSync(fixture(file));
      const whole = readAll(openCaptureBytes(bytes), true);
      const bounds = recordBoundaries(bytes, file.endsWith('.pcapng'));
      const firstRecord = Math.max(bounds[0], 16); // pcapng: open needs the SHB's first 16 bytes
      for (let cut = firstRecord; cut < bytes.length; cut++) {
        const r = openCaptureBytes(bytes.subarray(0, cut), file);
        const got = readAll(r, true);
        // exactly the frames whose records end at or before the cut...
        expect(got).toEqual(whole.slice(0, got.length));
        expect(got.length).toBe(
          bounds.filter((b, i) => i > 0 && b <= cut && isFrameEnd(bytes, bounds, i)).length,
        );
        // ...and a truncated tail unless the cut falls between records
        expect(r.truncatedTail).toBe(!bounds.includes(cut));
      }
    });
  }

  it('stops cleanly on a file cut inside the last record, with truncatedTail; strictTail throws', () => {
    const bytes = readFileSync(fixture('tcpdump-us.pcap'));
    const path = join(tmp, 'cut.pcap');
    writeFileSync(path, bytes.subarray(0, bytes.length - 5));
    const r = openCapture(path);
    expect(readAll(r)).toEqual(FRAMES_US.slice(0, -1));
    expect(r.truncatedTail).toBe(true);
    expect(r.next()).toBe(false);
    expectCaptureError(() => readFile(path, { strictTail: true }), path, /frame 9 at byte \d+: truncated/);
    // a cut inside a record header
    const lastHdr = bytes.length - (FRAMES[9].hex.length / 2 + 16);
    writeFileSync(path, bytes.subarray(0, lastHdr + 7));
    const r2 = openCapture(path);
    expect(readAll(r2).length).toBe(9);
    expect(r2.truncatedTail).toBe(true);
    // exactly at a record boundary: a clean end
    writeFileSync(path, bytes.subarray(0, lastHdr));
    const r3 = openCapture(path);
    expect(readAll(r3).length).toBe(9);
    expect(r3.truncatedTail).toBe(false);
  });
});

describe('corrupt and unreadable files give one-line CaptureErrors naming the file', () => {
  const put = (name: string, data: Uint8Array): string => {
    const p = join(tmp, name);
    writeFileSync(p, data);
    return p;
  };
  const pcap = () => Buffer.from(readFileSync(fixture('scapy-us-le.pcap')));
  const ng = () => Buffer.from(readFileSync(fixture('editcap-ns.pcapng')));

  it('missing file, directory', () => {
    expectCaptureError(
      () => openCapture(join(tmp, 'nope.pcap')),
      join(tmp, 'nope.pcap'),
      /cannot open.*ENOENT/,
    );
    mkdirSync(join(tmp, 'dir.pcap'));
    expectCaptureError(() => openCapture(join(tmp, 'dir.pcap')), join(tmp, 'dir.pcap'));
  });

  it('empty file, short file, bad magic, gzip', () => {
    expectCaptureError(
      () => openCapture(put('empty.pcap', new Uint8Array(0))),
      /empty\.pcap: not a pcap or pcapng file/,
    );
    expectCaptureError(
      () => openCapture(put('3.pcap', pcap().subarray(0, 3))),
      /3\.pcap: not a pcap or pcapng file/,
    );
    expectCaptureError(
      () => openCapture(put('text.pcap', Buffer.from('hello, this is not a capture\n'))),
      /text\.pcap: not a pcap or pcapng file \(magic 0x68656c6c at byte 0\)/,
    );
    expectCaptureError(() => openCapture(put('gz.pcap', Buffer.from([0x1f, 0x8b, 8, 0, 0, 0]))), /gzip/);
    expectCaptureError(
      () => openCapture(put('kuz.pcap', Buffer.from([0x34, 0xcd, 0xb2, 0xa1, 2, 0, 4, 0]))),
      /kuz\.pcap: unsupported pcap variant/,
    );
  });

  it('truncated pcap file header, unsupported version', () => {
    expectCaptureError(
      () => openCapture(put('hdr.pcap', pcap().subarray(0, 10))),
      /hdr\.pcap: truncated pcap file header/,
    );
    const b = pcap();
    b.writeUInt16LE(3, 4);
    expectCaptureError(() => openCapture(put('ver.pcap', b)), /ver\.pcap: unsupported pcap version 3\.4/);
    expectCaptureError(
      () => openCapture(put('nghdr.pcapng', ng().subarray(0, 8))),
      /nghdr\.pcapng: truncated pcapng/,
    );
  });

  it('a captured length beyond the sanity bound, naming frame and byte offset', () => {
    const b = pcap();
    const off3 = 24 + [0, 1, 2].reduce((s, i) => s + 16 + FRAMES[i].hex.length / 2, 0);
    b.writeUInt32LE(MAX_FRAME_LEN + 1, off3 + 8);
    const p = put('huge.pcap', b);
    const r = openCapture(p);
    expect(r.next() && r.next() && r.next()).toBe(true);
    expectCaptureError(
      () => r.next(),
      `${p}: frame 3 at byte ${off3}: captured length 262145 exceeds 262144`,
    );
    expect(r.next()).toBe(false); // closed after the error
    // a length within the bound but past the end of the file is a truncated tail, not corruption
    b.writeUInt32LE(100000, off3 + 8);
    const r2 = openCapture(put('long.pcap', b));
    expect(readAll(r2).length).toBe(3);
    expect(r2.truncatedTail).toBe(true);
  });

  it('pcapng: bad block length, trailer mismatch, unknown interface, bad byte-order magic, version', () => {
    // editcap-ns.pcapng: SHB, IDB, then EPBs; find the first EPB
    const base = ng();
    const shbLen = base.readUInt32LE(4);
    const idbLen = base.readUInt32LE(shbLen + 4);
    const epb = shbLen + idbLen;
    expect(base.readUInt32LE(epb)).toBe(6);
    let b = ng();
    b.writeUInt32LE(13, epb + 4);
    expectCaptureError(
      () => readFile(put('blen.pcapng', b)),
      /blen\.pcapng: frame 0 block at byte \d+: bad block total length 13/,
    );
    b = ng();
    b.writeUInt32LE(base.readUInt32LE(epb + 4) + 4, epb + 4);
    expectCaptureError(() => readFile(put('trail.pcapng', b)), /trail\.pcapng: .* trailing block length/);
    b = ng();
    b.writeUInt32LE(5, epb + 8);
    expectCaptureError(
      () => readFile(put('ifc.pcapng', b)),
      /ifc\.pcapng: frame 0 block at byte \d+: unknown interface 5/,
    );
    b = ng();
    b.writeUInt32LE(0x11223344, 8);
    expectCaptureError(
      () => readFile(put('bom.pcapng', b)),
      /bom\.pcapng: section header at byte 0: bad byte-order magic/,
    );
    b = ng();
    b.writeUInt16LE(2, 12);
    expectCaptureError(
      () => readFile(put('v2.pcapng', b)),
      /v2\.pcapng: section header at byte 0: unsupported pcapng version 2\.0/,
    );
    b = ng();
    b.writeUInt32LE(MAX_FRAME_LEN + 4, epb + 20);
    expectCaptureError(
      () => readFile(put('cap.pcapng', b)),
      /cap\.pcapng: frame 0 block .* captured length 262148 exceeds 262144/,
    );
    b = ng();
    b.writeUInt32LE(1000, epb + 20);
    expectCaptureError(() => readFile(put('capblk.pcapng', b)), /capblk\.pcapng: .* exceeds block length/);
  });

  it('skips large unknown blocks without buffering them', () => {
    const base = ng();
    const shbLen = base.readUInt32LE(4);
    const idbLen = base.readUInt32LE(shbLen + 4);
    const big = Buffer.alloc(20 << 20); // 20 MiB custom block > MAX_BLOCK_LEN
    big.writeUInt32LE(0x40000bad, 0);
    big.writeUInt32LE(big.length, 4);
    big.writeUInt32LE(big.length, big.length - 4);
    const file = Buffer.concat([base.subarray(0, shbLen + idbLen), big, base.subarray(shbLen + idbLen)]);
    const p = put('bigblock.pcapng', file);
    expect(readFile(p, { chunkSize: 1 << 20 }).map(({ linkType: _, ...f }) => f)).toEqual(FRAMES);
  });
});
