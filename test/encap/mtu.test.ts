// MTU through tunnels: tunnel MTU = uplink MTU - 20 (IPIP) / - 50 (VXLAN) unless Felix's ipipMTU /
// vxlanMTU; a DF packet too big gets ICMP fragmentation-needed (RFC 792, RFC 1191 next-hop MTU) from the
// node IP back to the pod, rate limited; without DF it is fragmented (RFC 791 §3.2: 8-byte units, MF on
// all but the last, offsets continuing from an already-fragmented input, only "copied" options in later
// fragments) and every fragment is encapsulated on its own. Checked with field readers here, scapy (its
// defragment() puts the datagrams back together) and tshark.
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  MAC,
  NODE_A,
  NODE_B,
  NODE_C,
  SCAPY_MISSING,
  TSHARK_MISSING,
  cap,
  ethAt,
  forwarded,
  hex,
  ip4At,
  layers,
  program,
  readCapture,
  run,
  scapyDecode,
  sum16,
  tmpDir,
  tsharkBadByGroup,
  u16,
  verdicts,
  writePcap,
  type Frame,
  type Run,
  type ScapyFile,
} from './helpers.js';

const IPIP_IN = 14 + 20; // inner IPv4 header offset in an IPIP frame
const VXLAN_IN = 14 + 20 + 8 + 8 + 14; // inner IPv4 header offset in a VXLAN frame

const runs: Record<string, Run> = {};
const saved: Record<string, Frame[]> = {};
const files: Record<string, string> = {};
let scapy: Record<string, ScapyFile> = {};
let tshark: Record<string, unknown[]> = {};
let ipipIn: Frame[];
let vxlanIn: Frame[];

beforeAll(() => {
  const progA = program('node-a');
  ipipIn = readCapture('mtu-ipip-cali-a65.pcap');
  vxlanIn = readCapture('mtu-vxlan-cali-a66.pcap');
  runs.ipip = run(progA, { 'cali-a65': cap('mtu-ipip-cali-a65.pcap') });
  runs.vxlan = run(progA, { 'cali-a66': cap('mtu-vxlan-cali-a66.pcap') });
  runs.burst = run(progA, { 'cali-a65': cap('mtu-burst-cali-a65.pcap') });
  const felix = `apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata: { name: node.node-a }
spec: { ipipMTU: 1400, vxlanMTU: 1300 }`;
  const progSmall = program('node-a', felix);
  runs.ipipSmall = run(progSmall, { 'cali-a65': cap('mtu-ipip-cali-a65.pcap') });
  runs.vxlanSmall = run(progSmall, { 'cali-a66': cap('mtu-vxlan-cali-a66.pcap') });
  const dir = tmpDir('encap-mtu');
  const save = (key: string, frames: Frame[]) => {
    saved[key] = frames;
    files[key] = writePcap(path.join(dir, `${key}.pcap`), frames);
  };
  save('ipipUp', runs.ipip.tx('uplink'));
  save('ipipPod', runs.ipip.tx('cali-a65'));
  save('vxlanUp', runs.vxlan.tx('uplink'));
  save('vxlanPod', runs.vxlan.tx('cali-a66'));
  save('burstPod', runs.burst.tx('cali-a65'));
  if (SCAPY_MISSING === null) scapy = scapyDecode(Object.values(files));
  else console.warn(`scapy checks skipped: ${SCAPY_MISSING}`);
  if (TSHARK_MISSING === null) tshark = tsharkBadByGroup(dir, saved);
  else console.warn(`tshark checks skipped: ${TSHARK_MISSING}`);
});

/** Checks an ICMP fragmentation-needed frame sent to a pod about `orig` (the pod's frame). */
function expectFragNeeded(f: Frame, orig: Frame, podMac: string, podIp: string, mtu: number): void {
  const u8 = f.bytes;
  expect(ethAt(u8)).toEqual({ dst: podMac, src: MAC.ee, type: 0x0800 });
  const h = ip4At(u8, 14);
  expect(h).toMatchObject({ src: NODE_A, dst: podIp, proto: 1, csumOk: true });
  const icmp = h.l4;
  expect([u8[icmp], u8[icmp + 1]]).toEqual([3, 4]); // destination unreachable, fragmentation needed
  expect(u16(u8, icmp + 4)).toBe(0); // unused
  expect(u16(u8, icmp + 6)).toBe(mtu); // next-hop MTU (RFC 1191 §4)
  expect(sum16(u8, icmp, h.len - h.hlen)).toBe(0xffff); // ICMP checksum
  // the quote: the pod's packet as it arrived, header and data, within 576 bytes (RFC 1812 §4.3.2.3)
  const quote = u8.subarray(icmp + 8, 14 + h.len);
  expect(h.len).toBeLessThanOrEqual(576);
  expect(quote.length).toBeGreaterThanOrEqual(28);
  expect(hex(quote)).toBe(hex(orig.bytes.subarray(14, 14 + quote.length)));
}

interface Frag {
  frame: Frame;
  ipOff: number;
}

/** Reassembles inner fragments by offset; checks they tile the payload exactly. */
function reassemble(frags: Frag[]): Uint8Array {
  const first = frags.find((f) => ip4At(f.frame.bytes, f.ipOff).fragOff === 0)!;
  const h0 = ip4At(first.frame.bytes, first.ipOff);
  const parts = frags
    .map((f) => {
      const h = ip4At(f.frame.bytes, f.ipOff);
      return { at: h.fragOff * 8, data: f.frame.bytes.subarray(f.ipOff + h.hlen, f.ipOff + h.len) };
    })
    .sort((a, b) => a.at - b.at);
  let pos = 0;
  for (const p of parts) {
    expect(p.at).toBe(pos);
    pos += p.data.length;
  }
  const out = new Uint8Array(h0.hlen + pos);
  out.set(first.frame.bytes.subarray(first.ipOff, first.ipOff + h0.hlen), 0);
  for (const p of parts) out.set(p.data, h0.hlen + p.at);
  return out;
}

/** The input packet forwarded once, as the reassembled datagram's header carries no MF/offset/length fix. */
function expectSameDatagram(re: Uint8Array, orig: Frame): void {
  const want = forwarded(orig.bytes);
  expect(re.length).toBe(want.length);
  // compare everything but total length, flags/offset and header checksum (those differ per fragment)
  const strip = (x: Uint8Array) => {
    const c = new Uint8Array(x);
    c.fill(0, 2, 4);
    c.fill(0, 6, 8);
    c.fill(0, 10, 12);
    return hex(c);
  };
  expect(strip(re)).toBe(strip(want));
}

describe('IPIP tunnel MTU 1480 (uplink 1500 - 20)', () => {
  it('a DF packet of exactly 1480 bytes fits: outer packet 1500 bytes', () => {
    const f = runs.ipip.tx('uplink')[0];
    expect(f.bytes.length).toBe(1514);
    expect(ip4At(f.bytes, 14)).toMatchObject({ len: 1500, df: true, proto: 4, dst: NODE_C });
    expect(hex(f.bytes.subarray(IPIP_IN))).toBe(hex(forwarded(ipipIn[0].bytes)));
  });

  it('a DF packet of 1481 bytes: ICMP fragmentation needed with MTU 1480 back to the pod', () => {
    const pod = runs.ipip.tx('cali-a65');
    expect(pod).toHaveLength(1);
    expectFragNeeded(pod[0], ipipIn[1], MAC.a65, '10.65.0.2', 1480);
    expect(runs.ipip.counters['ip4-rewrite: fragmentation-needed']).toBe(1);
    expect(runs.ipip.counters['ip4-icmp-error: sent-unreachable']).toBe(1);
  });

  it('without DF, 1900 bytes: two fragments (1476 + 444), each in its own IPIP packet', () => {
    const up = runs.ipip.tx('uplink');
    const mine = up.filter((f) => ip4At(f.bytes, IPIP_IN).id === 93);
    expect(mine).toHaveLength(2);
    const hs = mine.map((f) => ip4At(f.bytes, IPIP_IN));
    expect(hs.map((h) => [h.len, h.mf, h.fragOff, h.df, h.csumOk])).toEqual([
      [1476, true, 0, false, true],
      [444, false, 182, false, true],
    ]);
    for (const f of mine) {
      const o = ip4At(f.bytes, 14);
      expect(o).toMatchObject({ proto: 4, src: NODE_A, dst: NODE_C, ttl: 64, df: false, csumOk: true });
      expect(o.len).toBe(20 + ip4At(f.bytes, IPIP_IN).len);
      expect(o.len).toBeLessThanOrEqual(1500);
      expect(ethAt(f.bytes).dst).toBe(MAC.gwA);
    }
    expectSameDatagram(reassemble(mine.map((frame) => ({ frame, ipOff: IPIP_IN }))), ipipIn[2]);
  });

  it('options: the first fragment keeps them all, later ones only the copied ones (RFC 791 §3.1)', () => {
    const mine = runs.ipip.tx('uplink').filter((f) => ip4At(f.bytes, IPIP_IN).id === 94);
    expect(mine).toHaveLength(2);
    const [a, b] = mine.map((f) => ip4At(f.bytes, IPIP_IN));
    const inOpts = hex(ipipIn[3].bytes.subarray(14 + 20, 14 + ip4At(ipipIn[3].bytes, 14).hlen));
    expect(hex(mine[0].bytes.subarray(IPIP_IN + 20, IPIP_IN + a.hlen))).toBe(inOpts);
    // router alert (type 0x94, copied) kept; record route (type 7, not copied) gone
    expect(hex(mine[1].bytes.subarray(IPIP_IN + 20, IPIP_IN + b.hlen))).toBe('94040000');
    expect([a.hlen, a.len, a.mf, a.fragOff]).toEqual([36, 36 + 1440, true, 0]);
    expect([b.hlen, b.len, b.mf, b.fragOff]).toEqual([24, 24 + 1764 - 1440, false, 180]);
    expect(a.csumOk && b.csumOk).toBe(true);
    expectSameDatagram(reassemble(mine.map((frame) => ({ frame, ipOff: IPIP_IN }))), ipipIn[3]);
  });

  it('a packet that is already a fragment: pieces keep MF and continue its offset', () => {
    const up = runs.ipip.tx('uplink');
    const first = up.filter((f) => ip4At(f.bytes, IPIP_IN).id === 95).map((f) => ip4At(f.bytes, IPIP_IN));
    expect(first.map((h) => [h.mf, h.fragOff, h.len])).toEqual([
      [true, 0, 1476],
      [true, 182, 20 + 1780 - 1456],
    ]);
    const mid = up.filter((f) => ip4At(f.bytes, IPIP_IN).id === 96).map((f) => ip4At(f.bytes, IPIP_IN));
    expect(mid.map((h) => [h.mf, h.fragOff, h.len])).toEqual([
      [true, 185, 1476],
      [true, 185 + 182, 20 + 1580 - 1456],
    ]);
    expect(runs.ipip.counters['ip4-rewrite: fragmented']).toBe(4);
    expect(runs.ipip.counters['ipip4-encap: encapsulated']).toBe(1 + 2 * 4);
  });

  it('scapy reassembles the fragments into the pod’s datagrams; every checksum verifies', () => {
    if (SCAPY_MISSING === null) {
      const up = scapy[files.ipipUp];
      for (const fr of up.frames) for (const [l, ok] of verdicts(fr)) expect(ok, l).toBe(true);
      const re = up.reassembled.map((r) => r.bytes);
      expect(re).toHaveLength(2); // ids 93 and 94; 95 and 96 are pieces of bigger datagrams
      for (const k of [2, 3]) {
        const want = hex(forwarded(ipipIn[k].bytes));
        const got = re.find((b) => b.slice(8, 12) === want.slice(8, 12));
        expect(got).toBeDefined();
        // scapy rebuilds total length / flags / checksum itself; the payload must match
        expect(got!.slice(ip4At(ipipIn[k].bytes, 14).hlen * 2)).toBe(
          want.slice(ip4At(ipipIn[k].bytes, 14).hlen * 2),
        );
      }
      for (const r of up.reassembled) expect(layers(r.layers, 'UDP')[0].csum_ok).toBe(true);
      const pod = scapy[files.ipipPod].frames[0];
      expect(layers(pod, 'ICMP')[0]).toMatchObject({ type: 3, code: 4, nexthopmtu: 1480, csum_ok: true });
      expect(layers(pod, 'IPerror')[0]).toMatchObject({ src: '10.65.0.2', dst: '10.65.0.130', len: 1481 });
    }
    if (TSHARK_MISSING === null) {
      expect(tshark.ipipUp).toEqual([]);
      expect(tshark.ipipPod).toEqual([]);
    }
  });

  it('Felix ipipMTU 1400 replaces the computed tunnel MTU', () => {
    const pod = runs.ipipSmall.tx('cali-a65');
    // frames 1 (1480) and 2 (1481) are DF and now too big
    expect(pod).toHaveLength(2);
    expectFragNeeded(pod[0], ipipIn[0], MAC.a65, '10.65.0.2', 1400);
    expectFragNeeded(pod[1], ipipIn[1], MAC.a65, '10.65.0.2', 1400);
    for (const f of runs.ipipSmall.tx('uplink')) expect(ip4At(f.bytes, 14).len).toBeLessThanOrEqual(1420);
  });
});

describe('VXLAN tunnel MTU 1450 (uplink 1500 - 50)', () => {
  it('a DF packet of 1450 bytes fits: outer packet 1500 bytes', () => {
    const f = runs.vxlan.tx('uplink')[0];
    expect(f.bytes.length).toBe(1514);
    expect(ip4At(f.bytes, 14)).toMatchObject({ len: 1500, df: true, proto: 17, dst: NODE_B });
    expect(hex(f.bytes.subarray(VXLAN_IN))).toBe(hex(forwarded(vxlanIn[0].bytes)));
  });

  it('a DF packet of 1451: fragmentation needed with MTU 1450', () => {
    const pod = runs.vxlan.tx('cali-a66');
    expect(pod).toHaveLength(1);
    expectFragNeeded(pod[0], vxlanIn[1], MAC.a66, '10.66.0.2', 1450);
  });

  it('without DF, 1900 bytes: 1444 + 476, each VXLAN-encapsulated, outer at most 1500', () => {
    const mine = runs.vxlan.tx('uplink').filter((f) => ip4At(f.bytes, VXLAN_IN).id === 103);
    expect(mine).toHaveLength(2);
    expect(mine.map((f) => ip4At(f.bytes, VXLAN_IN)).map((h) => [h.len, h.mf, h.fragOff])).toEqual([
      [1444, true, 0],
      [476, false, 178],
    ]);
    for (const f of mine) {
      expect(ip4At(f.bytes, 14).len).toBeLessThanOrEqual(1500);
      expect(u16(f.bytes, 36)).toBe(4789);
    }
    // both fragments of one datagram hash to one UDP source port (no L4 ports in fragments)
    expect(u16(mine[0].bytes, 34)).toBe(u16(mine[1].bytes, 34));
    expectSameDatagram(reassemble(mine.map((frame) => ({ frame, ipOff: VXLAN_IN }))), vxlanIn[2]);
    if (SCAPY_MISSING === null) {
      const up = scapy[files.vxlanUp];
      for (const fr of up.frames) for (const [l, ok] of verdicts(fr)) expect(ok, l).toBe(true);
      expect(up.reassembled).toHaveLength(1);
      expect(layers(up.reassembled[0].layers, 'UDP')[0]).toMatchObject({ sport: 6102, csum_ok: true });
      expect(layers(scapy[files.vxlanPod].frames[0], 'ICMP')[0]).toMatchObject({
        nexthopmtu: 1450,
        csum_ok: true,
      });
    }
    if (TSHARK_MISSING === null) expect([...tshark.vxlanUp, ...tshark.vxlanPod]).toEqual([]);
  });

  it('Felix vxlanMTU 1300 replaces the computed tunnel MTU', () => {
    const pod = runs.vxlanSmall.tx('cali-a66');
    expect(pod).toHaveLength(2);
    expectFragNeeded(pod[0], vxlanIn[0], MAC.a66, '10.66.0.2', 1300);
    expectFragNeeded(pod[1], vxlanIn[1], MAC.a66, '10.66.0.2', 1300);
  });
});

describe('ICMP errors are rate limited (token bucket: burst 50, 1000/s)', () => {
  it('60 oversized DF packets at one instant: 50 errors, 10 counted as rate-limited', () => {
    const pod = runs.burst.tx('cali-a65');
    const ids = pod.map((f) => u16(f.bytes, 14 + 20 + 8 + 4)); // the quoted packet's IP id
    expect(ids.slice(0, 50)).toEqual(Array.from({ length: 50 }, (_, k) => 200 + k));
    expect(runs.burst.counters['ip4-rewrite: fragmentation-needed']).toBe(61);
    expect(runs.burst.counters['ip4-icmp-error: rate-limited']).toBeGreaterThanOrEqual(10);
    if (TSHARK_MISSING === null) expect(tshark.burstPod).toEqual([]);
  });

  it('a second later the bucket has refilled: the 61st packet gets its error', () => {
    const pod = runs.burst.tx('cali-a65');
    expect(pod).toHaveLength(51);
    expect(u16(pod[50].bytes, 14 + 20 + 8 + 4)).toBe(300);
    expect(runs.burst.counters['ip4-icmp-error: rate-limited']).toBe(10);
  });
});
