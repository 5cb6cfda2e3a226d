// Input GRO on the uplink (src/dataplane/devices/gro-input.ts): IPIP- and VXLAN-carried TCP segments of one flow
// that follow each other in one read become one super-frame in the kernel's tunnel-GRO shape. Byte
// vectors for a run, the rules that close a run, and a property test against a naive model: nothing
// is lost or reordered (each flow's byte stream is the same), unmerged frames are untouched, and every
// super-frame carries valid IPv4 header checksums and the pseudo-header sum as a partial TCP checksum.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Batch } from '../../src/dataplane/graph/packet.js';
import { GroInput, type InputMove } from '../../src/dataplane/devices/gro-input.js';
import { onesSum } from '../../src/dataplane/wire/checksum.js';
import { bulkSeg, tsVerify, writeSeg, type Seg } from '../gro/frames.js';

const SLOT = 65536 + 256;
const NODE = (): number => 0xc0a80002; // 192.168.0.2, the outer destination put() writes
const move: InputMove = (u8, d, s, l, n) => {
  for (let i = 0; i < n; i++) u8.copyWithin(d[i], s[i], s[i] + l[i]);
};
const be16 = (u8: Uint8Array, p: number): number => (u8[p] << 8) | u8[p + 1];
const be32 = (u8: Uint8Array, p: number): number =>
  ((u8[p] << 24) | (u8[p + 1] << 16) | (u8[p + 2] << 8) | u8[p + 3]) >>> 0;

type Mode = 'ipip' | 'vxlan';
/** headers up to the inner IPv4 one */
const INNER: Record<Mode, number> = { ipip: 34, vxlan: 64 };

/**
 * seg inside IPIP or VXLAN (outer 192.168.0.1 -> 192.168.0.2, id `oid`; VXLAN: UDP 40000 -> 4789,
 * checksum 0, VNI 4096) at slot i of b; returns the frame length.
 */
function put(b: Batch, i: number, seg: Seg, mode: Mode = 'ipip', oid = i): number {
  const u8 = b.u8;
  const off = b.off[i];
  const inner = INNER[mode];
  // the inner Ethernet frame, its header at inner - 14 (for IPIP overwritten by the outer IPv4 header)
  const innerLen = writeSeg(u8, off + inner - 14, seg) - 14;
  for (let k = 0; k < 14; k++) u8[off + k] = u8[off + inner - 14 + k];
  const o = off + 14;
  const total = innerLen + inner - 14;
  const proto = mode === 'ipip' ? 4 : 17;
  const hdr = [0x45, seg.tos, total >>> 8, total & 255, oid >>> 8, oid & 255, 0x40, 0, 64, proto];
  hdr.forEach((v, k) => (u8[o + k] = v));
  u8[o + 10] = u8[o + 11] = 0;
  [192, 168, 0, 1, 192, 168, 0, 2].forEach((v, k) => (u8[o + 12 + k] = v));
  const c = ~onesSum(u8, o, 20) & 0xffff;
  u8[o + 10] = c >>> 8;
  u8[o + 11] = c & 255;
  if (mode === 'vxlan') {
    const udpLen = total - 20;
    [0x9c, 0x40, 0x12, 0xb5, udpLen >>> 8, udpLen & 255, 0, 0, 0x08, 0, 0, 0, 0, 0x10, 0, 0].forEach(
      (v, k) => (u8[o + 20 + k] = v),
    );
  }
  b.len[i] = innerLen + inner;
  b.gso[i] = 0;
  return b.len[i];
}

function batchOf(segs: Seg[], mode: Mode = 'ipip'): Batch {
  const b = new Batch(Math.max(segs.length, 2), undefined, 0, SLOT);
  segs.forEach((s, i) => put(b, i, s, mode));
  return b;
}

const seg = (k: number, o: Parameters<typeof bulkSeg>[1] = {}): Seg => bulkSeg(k, { size: 1000, ...o });

/** The super-frame checks: IPv4 checksums, lengths, the partial TCP checksum (pseudo-header sum). */
function checkSuper(b: Batch, i: number, mode: Mode = 'ipip'): void {
  const u8 = b.u8;
  const f = b.off[i];
  const inner = INNER[mode];
  expect(onesSum(u8, f + 14, 20)).toBe(0xffff);
  expect(onesSum(u8, f + inner, 20)).toBe(0xffff);
  expect(be16(u8, f + 16)).toBe(b.len[i] - 14);
  expect(be16(u8, f + inner + 2)).toBe(b.len[i] - inner);
  if (mode === 'vxlan') {
    expect(be16(u8, f + 38)).toBe(b.len[i] - 34);
    expect(be16(u8, f + 40)).toBe(0);
  }
  let s = onesSum(u8, f + inner + 12, 8) + 6 + (b.len[i] - inner - 20);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  expect(be16(u8, f + inner + 20 + 16)).toBe(s);
}

describe('input GRO (IPIP, VXLAN)', () => {
  it('three segments of one flow: one super-frame, payloads in order, kernel IPIP-GRO shape', () => {
    const segs = [seg(0), seg(1), seg(2)];
    const b = batchOf(segs);
    const g = new GroInput(b.capacity, tsVerify, move, NODE);
    expect(g.merge(b, 0, 3)).toBe(2);
    expect(g.runs).toBe(1);
    expect(b.gso[0]).toBe(1000);
    const hl = 54 + (b.u8[b.off[0] + 54 + 12] >>> 4) * 4; // headers up to the payload (TCP options too)
    expect(b.len[0]).toBe(hl + 3000);
    expect(b.len[1]).toBeGreaterThan(b.slotData);
    expect(b.len[2]).toBeGreaterThan(b.slotData);
    const pay = b.u8.subarray(b.off[0] + hl, b.off[0] + hl + 3000);
    expect([...pay.subarray(0, 3)]).toEqual([1, 1, 1]);
    expect([...pay.subarray(1000, 1003)]).toEqual([2, 2, 2]);
    expect([...pay.subarray(2000, 2003)]).toEqual([3, 3, 3]);
    checkSuper(b, 0);
    // claim() then drops the merged ones and keeps the super-frame as PKT_GSO
    expect(b.claim(3, 1, 0, 0, true)).toBe(2);
    expect(b.count).toBe(1);
    expect(b.gso[0]).toBe(1000);
  });

  it('a bad checksum, a gap, PSH, a shorter segment and another flow each close a run', () => {
    const segs = [
      seg(0),
      seg(1),
      seg(2, { badCsum: true }), // alone, as it came
      seg(3),
      seg(4),
      seg(6), // gap: closes, opens a new run
      seg(7),
      { ...seg(8), flow: 1, sport: 9999 }, // another flow: closes
      seg(9),
    ];
    segs[4] = { ...segs[4], flags: segs[4].flags | 0x08 }; // PSH on seg 4: joins, then closes
    const b = batchOf(segs);
    const before = new Uint8Array(b.u8.slice(b.off[2], b.off[2] + b.len[2]));
    const g = new GroInput(b.capacity, tsVerify, move, NODE);
    g.merge(b, 0, segs.length);
    const kept = [...Array(segs.length).keys()].filter((i) => b.len[i] <= b.slotData);
    expect(kept).toEqual([0, 2, 3, 5, 7, 8]);
    expect([...kept].map((i) => b.gso[i])).toEqual([1000, 0, 1000, 1000, 0, 0]);
    expect(new Uint8Array(b.u8.slice(b.off[2], b.off[2] + b.len[2]))).toEqual(before);
    expect(b.u8[b.off[3] + 54 + 13] & 0x08).toBe(0x08); // PSH carried to the super-frame
    for (const i of [0, 3, 5]) checkSuper(b, i);
  });

  it('VXLAN: three segments, one super-frame with the outer UDP length of the whole (checksum 0)', () => {
    const b = batchOf([seg(0), seg(1), seg(2)], 'vxlan');
    const g = new GroInput(b.capacity, tsVerify, move, NODE);
    expect(g.merge(b, 0, 3)).toBe(2);
    expect(b.gso[0]).toBe(1000);
    checkSuper(b, 0, 'vxlan');
    // another VXLAN port: not ours to merge
    const c = batchOf([seg(0), seg(1), seg(2)], 'vxlan');
    expect(new GroInput(c.capacity, tsVerify, move, NODE, () => 8472).merge(c, 0, 3)).toBe(0);
  });

  it('IPIP and VXLAN segments of the same inner flow never merge with each other', () => {
    const b = new Batch(4, undefined, 0, SLOT);
    put(b, 0, seg(0), 'ipip');
    put(b, 1, seg(1), 'vxlan');
    put(b, 2, seg(2), 'ipip');
    expect(new GroInput(b.capacity, tsVerify, move, NODE).merge(b, 0, 3)).toBe(0);
  });

  it('only tunnel packets for this node: a transit run stays as it came', () => {
    const b = batchOf([seg(0), seg(1), seg(2)]);
    expect(new GroInput(b.capacity, tsVerify, move, () => 0xc0a80003).merge(b, 0, 3)).toBe(0);
  });

  it('never merges SYN, fragments or non-IPIP frames; frames the kernel already merged stay', () => {
    const segs = [seg(0, {}), seg(1), seg(2), seg(3)];
    segs[0] = { ...segs[0], flags: 0x12 }; // SYN-ACK
    segs[2] = { ...segs[2], frag: true };
    const b = batchOf(segs);
    b.gso[3] = 1000; // as if finishVnet took it as a kernel super-frame
    const g = new GroInput(b.capacity, tsVerify, move, NODE);
    expect(g.merge(b, 0, 4)).toBe(0);
  });

  for (const mode of ['ipip', 'vxlan'] as const)
    it(`property (${mode}): per flow the byte stream is unchanged, merged frames dropped, super-frames valid`, () => {
      fc.assert(
        fc.property(
          fc.array(
            fc.record({
              flow: fc.integer({ min: 0, max: 1 }),
              skip: fc.boolean(),
              bad: fc.integer({ min: 0, max: 9 }),
              psh: fc.integer({ min: 0, max: 9 }),
              short: fc.integer({ min: 0, max: 9 }),
            }),
            { minLength: 1, maxLength: 80 },
          ),
          (plan) => {
            const next = [0, 0];
            const segs: Seg[] = plan.map((p) => {
              if (p.skip && p.bad === 0) next[p.flow]++; // a gap now and then
              const k = next[p.flow]++;
              const s = seg(k, { flow: p.flow, badCsum: p.bad === 1, size: p.short === 1 ? 300 : 1000 });
              return p.psh === 1 ? { ...s, flags: s.flags | 0x08 } : s;
            });
            const b = batchOf(segs, mode);
            // the model: each flow's good segments' payloads in input order
            const stream = (flow: number, pick: (i: number) => Uint8Array | null): number[] => {
              const out: number[] = [];
              segs.forEach((s, i) => {
                if (s.flow !== flow) return;
                const p = pick(i);
                if (p !== null) out.push(...p);
              });
              return out;
            };
            const payload = (i: number): Uint8Array => {
              const f = b.off[i] + INNER[mode] + 20;
              const thl = (b.u8[f + 12] >>> 4) * 4;
              return b.u8.slice(f + thl, b.off[i] + b.len[i]);
            };
            const want = [0, 1].map((fl) => stream(fl, (i) => payload(i)));
            // and each byte at its sequence number: a merge across a gap would move bytes
            const seqOf = (i: number): number => be32(b.u8, b.off[i] + INNER[mode] + 24);
            const inBytes = new Map<string, number>();
            segs.forEach((sg, i) => {
              const p = payload(i);
              for (let j = 0; j < p.length; j++) {
                const q = (seqOf(i) + j) >>> 0;
                if (q % 97 === 0) inBytes.set(`${sg.flow}:${q}`, p[j]);
              }
            });
            const raw = segs.map((_, i) => b.u8.slice(b.off[i], b.off[i] + b.len[i]));
            const g = new GroInput(b.capacity, tsVerify, move, NODE);
            const merged = g.merge(b, 0, segs.length);
            const got = [0, 1].map((fl) => stream(fl, (i) => (b.len[i] > b.slotData ? null : payload(i))));
            expect(got).toEqual(want);
            segs.forEach((sg, i) => {
              if (b.len[i] > b.slotData) return;
              const p = payload(i);
              for (let j = 0; j < p.length; j++) {
                const q = (seqOf(i) + j) >>> 0;
                if (q % 97 === 0) expect(inBytes.get(`${sg.flow}:${q}`)).toBe(p[j]);
              }
            });
            let dropped = 0;
            segs.forEach((s, i) => {
              if (b.len[i] > b.slotData) {
                dropped++;
                expect(s.badCsum).not.toBe(true);
              } else if (b.gso[i] === 0) {
                expect(b.u8.slice(b.off[i], b.off[i] + b.len[i])).toEqual(raw[i]);
              } else {
                checkSuper(b, i, mode);
                const t = INNER[mode] + 20;
                expect(be32(b.u8, b.off[i] + t + 4)).toBe(be32(raw[i], t + 4));
              }
            });
            expect(dropped).toBe(merged);
          },
        ),
        { numRuns: 200 },
      );
    });
});
