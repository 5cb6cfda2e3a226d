// TunnelSegmenter (devices/tunnel-seg.ts), the packet uplink's native segmentation of tunnel
// super-frames, against a pure-TS model: the TypeScript segmentTcp4 (graph/nodes/segment.ts) on the
// inner frame, then each segment encapsulated as ipip4-encap / vxlan4-encap would (wire emitters),
// byte for byte, on random super-frames (IPv4/TCP options, ids and sequences near wrap-around, any
// MSS), with vnet headers zeroed in front of every queued frame, including when the queue or the
// scratch fills (flush in the middle, order kept). Mutated frames only return 1, 0 or -1.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { segmentTcp4 as segmentTs } from '../../src/dataplane/graph/nodes/segment.js';
import { Batch, GSO_SLOT_SIZE, PKT_GSO } from '../../src/dataplane/graph/packet.js';
import { emitIpipOuter } from '../../src/dataplane/wire/ipip.js';
import { emitIp4Header, IPPROTO_UDP } from '../../src/dataplane/wire/ipv4.js';
import { emitUdpHeader } from '../../src/dataplane/wire/udp.js';
import { emitVxlanHeader } from '../../src/dataplane/wire/vxlan.js';
import {
  TUNNEL_SCRATCH_BYTES,
  TunnelSegmenter,
  type SegmentQueue,
} from '../../src/dataplane/devices/tunnel-seg.js';
import { diffBytes, frameSpec, writeFrame, type FrameSpec } from '../offload/frames.js';

const SRC = 0x0a000001;
const DST = 0x0a000002;
const ETH = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];

type Kind = 'ipip' | 'vxlan';
const OUTER = { ipip: 20, vxlan: 50 } as const;

/** Room for a 64 KiB super-frame and every segment of a 20000-byte payload at MSS 64 (mssArb's least). */
const modelBatch = new Batch(320, undefined, 0, GSO_SLOT_SIZE);

/** The model: TS segmentation of the inner frame, then each segment encapsulated in TS. */
function model(kind: Kind, s: FrameSpec, mss: number, id0: number, sport: number): Uint8Array[] | null {
  const b = modelBatch;
  b.reset();
  b.count = 1;
  b.len[0] = writeFrame(b.u8, b.off[0], s);
  b.flags[0] = PKT_GSO;
  const extra = segmentTs(b, 0, mss);
  if (extra < 0) return null;
  const idx = [0, ...Array.from({ length: extra }, (_, k) => b.count - extra + k)];
  return idx.map((i, k) => {
    const seg = b.u8.slice(b.off[i], b.off[i] + b.len[i]);
    const ipLen = seg.length - 14;
    if (kind === 'ipip') {
      const out = new Uint8Array(34 + ipLen);
      out.set(ETH, 0);
      emitIpipOuter(out, 14, SRC, DST, ipLen, s.df, s.tos, (id0 + k) & 0xffff);
      out.set(seg.subarray(14), 34);
      return out;
    }
    const out = new Uint8Array(50 + seg.length);
    out.set(ETH, 0);
    const udpLen = 16 + seg.length;
    emitIp4Header(
      out,
      14,
      SRC,
      DST,
      IPPROTO_UDP,
      20 + udpLen,
      64,
      (id0 + k) & 0xffff,
      s.df ? 0x4000 : 0,
      s.tos,
    );
    emitUdpHeader(out, 34, sport, 4789, udpLen, 0);
    emitVxlanHeader(out, 42, 4096);
    out.set(seg, 50);
    return out;
  });
}

/** A batch with scratch after its slots; packet 0 holds the encapsulated super-frame. */
function setup(
  kind: Kind,
  s: FrameSpec,
  mss: number,
  id0: number,
  sport: number,
): { b: Batch; seg: TunnelSegmenter } {
  const slots = 2 * GSO_SLOT_SIZE;
  const b = new Batch(2, new SharedArrayBuffer(slots + TUNNEL_SCRATCH_BYTES), 0, GSO_SLOT_SIZE);
  b.u8.fill(0xa5);
  b.count = 1;
  const olen = OUTER[kind];
  const off = b.off[0] - olen;
  const inner = writeFrame(b.u8, off + olen, s);
  // what the encap nodes write once (lengths clamped: the segmenter rewrites them per segment)
  b.u8.set(ETH, off);
  const innerIp = inner - 14;
  if (kind === 'ipip')
    emitIpipOuter(b.u8, off + 14, SRC, DST, Math.min(innerIp, 0xffff - 20), s.df, s.tos, id0);
  else {
    const udpLen = Math.min(16 + inner, 0xffff - 20);
    emitIp4Header(b.u8, off + 14, SRC, DST, IPPROTO_UDP, 20 + udpLen, 64, id0, s.df ? 0x4000 : 0, s.tos);
    emitUdpHeader(b.u8, off + 34, sport, 4789, udpLen, 0);
    emitVxlanHeader(b.u8, off + 42, 4096);
  }
  b.off[0] = off;
  b.len[0] = olen + inner;
  b.flags[0] = PKT_GSO;
  b.gso[0] = mss;
  return { b, seg: new TunnelSegmenter(b, slots, slots + TUNNEL_SCRATCH_BYTES, true) };
}

/** A queue that copies frames out at flush (as the device's sendmmsg would send them). */
class Sink implements SegmentQueue {
  queued: [number, number][] = [];
  sent: Uint8Array[] = [];
  flushes = 0;
  constructor(
    private readonly b: Batch,
    private readonly seg: () => TunnelSegmenter,
    private readonly cap = 4096,
  ) {}
  push(off: number, len: number): boolean {
    // the vnet header in front is zeroed
    expect([...this.b.u8.subarray(off - 10, off)]).toEqual(new Array(10).fill(0));
    this.queued.push([off, len]);
    return true;
  }
  room(): number {
    return this.cap - this.queued.length;
  }
  flushQueue(): void {
    this.flushes++;
    this.drain();
    this.seg().reset();
  }
  drain(): void {
    for (const [o, l] of this.queued) this.sent.push(this.b.u8.slice(o, o + l));
    this.queued = [];
  }
}

const mssArb = fc.oneof(fc.integer({ min: 536, max: 1460 }), fc.integer({ min: 64, max: 9000 }));

describe('TunnelSegmenter: native tunnel segmentation = TS segmentation + TS encapsulation', () => {
  for (const kind of ['ipip', 'vxlan'] as const) {
    it(`${kind}: byte for byte on random super-frames`, () => {
      fc.assert(
        fc.property(
          frameSpec(20000),
          mssArb,
          fc.integer({ min: 0, max: 0xffff }),
          fc.integer({ min: 1, max: 0xffff }),
          (s, mss, id0, sport) => {
            const want = model(kind, s, mss, id0, sport);
            const { b, seg } = setup(kind, s, mss, id0, sport);
            const q = new Sink(b, () => seg);
            const r = seg.segment(b, 0, q);
            if (want === null) {
              expect(r).toBe(-1);
              return;
            }
            expect(r).toBe(1);
            q.drain();
            expect(q.sent.length).toBe(want.length);
            for (let k = 0; k < want.length; k++)
              expect(diffBytes(q.sent[k], want[k]), `segment ${k}`).toBe('');
          },
        ),
        { numRuns: 150 },
      );
    });
  }

  it('a full queue flushes first and keeps the frames in order', () => {
    const s = fc.sample(frameSpec(100), 1)[0];
    const spec: FrameSpec = { ...s, payload: 60000, ipOpts: [], tcpOpts: [], pad: 0 };
    const want = model('ipip', spec, 1000, 7, 1)!;
    expect(want.length).toBe(60);
    const { b, seg } = setup('ipip', spec, 1000, 7, 1);
    const q = new Sink(b, () => seg, 100);
    // 50 frames queued already (as from earlier packets of the round): 60 segments do not fit
    for (let k = 0; k < 50; k++) q.queued.push([b.off[1], 1]);
    expect(seg.segment(b, 0, q)).toBe(1);
    q.drain();
    expect(q.flushes).toBe(1);
    expect(q.sent.length).toBe(50 + want.length);
    for (let k = 0; k < want.length; k++) expect(diffBytes(q.sent[50 + k], want[k]), `segment ${k}`).toBe('');
  });

  it('more segments than the queue ever holds: -1 (refused)', () => {
    const s = fc.sample(frameSpec(100), 1)[0];
    const { b, seg } = setup('vxlan', { ...s, payload: 60000, pad: 0 }, 1000, 7, 1);
    expect(seg.segment(b, 0, new Sink(b, () => seg, 30))).toBe(-1);
  });

  it('not a tunnel frame: 0 (sent as usual); mutated frames only return 1, 0 or -1', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<Kind>('ipip', 'vxlan'),
        frameSpec(3000),
        fc.array(fc.tuple(fc.nat(200), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        fc.integer({ min: 1, max: 0xffff }),
        (kind, s, muts, mss) => {
          const { b, seg } = setup(kind, s, mss, 1, 1);
          for (const [at, v] of muts) b.u8[b.off[0] + at] = v;
          const r = seg.segment(b, 0, new Sink(b, () => seg));
          expect([1, 0, -1]).toContain(r);
        },
      ),
      { numRuns: 300 },
    );
    const { b, seg } = setup('ipip', fc.sample(frameSpec(100), 1)[0], 1000, 1, 1);
    b.u8[b.off[0] + 14 + 9] = 6; // plain TCP: not a tunnel
    expect(seg.segment(b, 0, new Sink(b, () => seg))).toBe(0);
  });
});
