// UDP GSO and GRO through the addon on loopback (no privileges needed): writeBatchUdpGso sends each
// datagram with its own UDP_SEGMENT size in one sendmmsg; a plain receiver gets the segments, a
// receiver opened with { gro: true } gets them coalesced with the segment size (readBatchUdpGro).
// Limits the kernel enforces come back as per-datagram statuses. Then the fused path VXLAN needs:
// segmentTcp4 lays MSS segments out back to back behind 8-byte VXLAN headers and one UDP GSO send
// carries them all, each arriving as a VXLAN packet with a valid inner TCP segment.
import { describe, expect, it } from 'vitest';
import * as io from '../../src/dataplane/devices/native.js';
import { tcpChecksumOk } from '../../src/dataplane/wire/tcp.js';
import { diffBytes, writeFrame, type FrameSpec } from './frames.js';

const LO = 0x7f000001;
const SLOT = 65536 + 64;

/** Reads until `want` datagrams arrived (bounded by tries); returns their bytes and GRO sizes. */
function drain(fd: number, want: number, gro = false): { data: Uint8Array[]; sizes: number[] } {
  const n = 64;
  const u8 = new Uint8Array(new SharedArrayBuffer(n * SLOT));
  const offs = Uint32Array.from({ length: n }, (_, i) => i * SLOT);
  const lens = new Uint32Array(n);
  const sizes = new Uint16Array(n);
  const data: Uint8Array[] = [];
  const out: number[] = [];
  for (let tries = 0; data.length < want && tries < 100; tries++) {
    io.poll(Int32Array.of(fd), 100);
    const got = gro
      ? io.readBatchUdpGro(fd, u8, offs, lens, n, SLOT, sizes)
      : io.readBatch(fd, u8, offs, lens, n, SLOT);
    for (let i = 0; i < got; i++) {
      expect(lens[i]).toBeLessThanOrEqual(SLOT);
      data.push(u8.slice(offs[i], offs[i] + lens[i]));
      out.push(gro ? sizes[i] : 0);
    }
  }
  return { data, sizes: out };
}

function pattern(u8: Uint8Array, off: number, len: number, seed: number): void {
  for (let k = 0; k < len; k++) u8[off + k] = (seed * 31 + k * 7) & 255;
}

describe('UDP GSO send and GRO receive (loopback)', () => {
  it('one send per datagram, each with its own segment size; plain and GRO receivers', () => {
    const plain = io.udpSocket('127.0.0.1', 0, { rcvbuf: 8 << 20 });
    const gro = io.udpSocket('127.0.0.1', 0, { rcvbuf: 8 << 20, gro: true });
    const tx = io.udpSocket('127.0.0.1', 0, { sndbuf: 4 << 20 });
    const sends = [
      { len: 10500, seg: 1000 }, // 10 x 1000 + 500
      { len: 300, seg: 0 }, // plain
      { len: 4000, seg: 1000 }, // exactly 4 segments
      { len: 700, seg: 1400 }, // shorter than one segment: a plain datagram
    ];
    const n = sends.length;
    const u8 = new Uint8Array(new SharedArrayBuffer(n * SLOT));
    const offs = Uint32Array.from({ length: n }, (_, i) => i * SLOT);
    const lens = Uint32Array.from(sends, (s) => s.len);
    const segs = Uint16Array.from(sends, (s) => s.seg);
    sends.forEach((s, i) => pattern(u8, offs[i], s.len, i));
    const expected: Uint8Array[] = [];
    sends.forEach((s, i) => {
      const step = s.seg || s.len;
      for (let at = 0; at < s.len; at += step)
        expected.push(u8.slice(offs[i] + at, offs[i] + Math.min(s.len, at + step)));
    });
    for (const [rx, isGro] of [
      [plain, false],
      [gro, true],
    ] as const) {
      const status = new Int32Array(n).fill(7);
      const dst = new Uint32Array(n).fill(LO);
      const ports = new Uint16Array(n).fill(io.sockName(rx).port);
      expect(io.writeBatchUdpGso(tx, u8, offs, lens, n, segs, status, dst, ports)).toBe(n);
      expect(Array.from(status)).toEqual([0, 0, 0, 0]);
      if (!isGro) {
        const got = drain(rx, expected.length);
        expect(got.data.length).toBe(expected.length);
        got.data.forEach((d, k) => expect(diffBytes(d, expected[k]), `datagram ${k}`).toBe(''));
      } else {
        // GRO keeps each GSO send whole (with its segment size); plain datagrams come as they were
        const got = drain(rx, n, true);
        expect(got.data.length).toBe(n);
        got.data.forEach((d, i) => expect(diffBytes(d, u8.subarray(offs[i], offs[i] + lens[i]))).toBe(''));
        expect(got.sizes).toEqual([1000, 0, 1000, 0]);
      }
    }
    for (const fd of [plain, gro, tx]) io.close(fd);
  });

  it('limits come back per datagram: too many segments, oversize, not a socket', () => {
    const rx = io.udpSocket('127.0.0.1', 0, { rcvbuf: 8 << 20 });
    const tx = io.udpSocket('127.0.0.1', 0);
    const u8 = new Uint8Array(new SharedArrayBuffer(3 * SLOT));
    const offs = Uint32Array.of(0, SLOT, 2 * SLOT);
    const seg = 100;
    const lens = Uint32Array.of(io.UDP_MAX_SEGMENTS * seg, (io.UDP_MAX_SEGMENTS + 1) * seg, 500);
    const segs = Uint16Array.of(seg, seg, 100);
    const status = new Int32Array(3);
    const dst = new Uint32Array(3).fill(LO);
    const ports = new Uint16Array(3).fill(io.sockName(rx).port);
    expect(io.writeBatchUdpGso(tx, u8, offs, lens, 3, segs, status, dst, ports)).toBe(2);
    expect([status[0], io.errnoName(status[1]), status[2]]).toEqual([0, 'EINVAL', 0]);
    expect(io.txErrorKind(status[1])).toBe('refused');
    expect(drain(rx, io.UDP_MAX_SEGMENTS + 5).data.length).toBe(io.UDP_MAX_SEGMENTS + 5);
    lens[0] = io.UDP_MAX_PAYLOAD + 1;
    segs[0] = 1000;
    expect(io.writeBatchUdpGso(tx, u8, offs, lens, 1, segs, status, dst, ports)).toBe(0);
    expect(io.errnoName(status[0])).toBe('EMSGSIZE');
    const efd = io.eventfdCreate();
    expect(io.writeBatchUdpGso(efd, u8, offs, lens, 2, segs, status)).toBe(0);
    expect(Array.from(status.subarray(0, 2), io.errnoName)).toEqual(['EOPNOTSUPP', 'EOPNOTSUPP']);
    for (const fd of [rx, tx, efd]) io.close(fd);
  });

  it('segmentTcp4 behind VXLAN headers, back to back, sent as one UDP GSO datagram', () => {
    const rx = io.udpSocket('127.0.0.1', 0, { rcvbuf: 8 << 20 });
    const tx = io.udpSocket('127.0.0.1', 0);
    const spec: FrameSpec = {
      mac: [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2],
      ipOpts: [],
      tcpOpts: [],
      tos: 0,
      id: 100,
      df: true,
      ttl: 64,
      src: 0x0a410002,
      dst: 0x0a410103,
      sport: 40000,
      dport: 80,
      seq: 1,
      ack: 1,
      flags: 0x18,
      win: 1000,
      csum: 0,
      urg: 0,
      payload: 20000,
      seed: 3,
      pad: 0,
    };
    const mss = 1398;
    const VX = 8;
    const hdrs = 14 + 20 + 20;
    const step = VX + hdrs + mss; // every segment but the last has this size
    const u8 = new Uint8Array(new SharedArrayBuffer(2 * SLOT));
    const srcLen = writeFrame(u8, 0, spec);
    const nseg = Math.ceil(spec.payload / mss);
    const outs = Uint32Array.from({ length: 64 }, (_, k) => SLOT + k * step);
    const outLens = new Uint32Array(64);
    expect(io.segmentTcp4(u8, 0, srcLen, mss, outs, outLens, 64, VX)).toBe(nseg);
    for (let k = 0; k < nseg; k++) {
      u8.set([0x08, 0, 0, 0, 0, 0, 1, 0], outs[k]); // VXLAN: I flag, VNI 1 (RFC 7348 §5)
      expect(outLens[k]).toBe(k < nseg - 1 ? step : VX + hdrs + (spec.payload - (nseg - 1) * mss));
    }
    const total = (nseg - 1) * step + outLens[nseg - 1];
    const status = new Int32Array(1);
    const sent = io.writeBatchUdpGso(
      tx,
      u8,
      Uint32Array.of(SLOT),
      Uint32Array.of(total),
      1,
      Uint16Array.of(step),
      status,
      Uint32Array.of(LO),
      Uint16Array.of(io.sockName(rx).port),
    );
    expect([sent, status[0]]).toEqual([1, 0]);
    const got = drain(rx, nseg);
    expect(got.data.length).toBe(nseg);
    got.data.forEach((d, k) => {
      expect(d[0]).toBe(0x08);
      expect(tcpChecksumOk(d, VX + 14)).toBe(true);
      expect(
        ((d[VX + 14 + 20 + 4] << 24) |
          (d[VX + 14 + 20 + 5] << 16) |
          (d[VX + 14 + 20 + 6] << 8) |
          d[VX + 14 + 20 + 7]) >>>
          0,
      ).toBe(1 + k * mss);
    });
    io.close(rx);
    io.close(tx);
  });
});
