// Routing modes through the real graph (replay, outputs in memory): IPIP CrossSubnet (direct on our
// subnet, encapsulated across), IPIP Always (encapsulated within the subnet), VXLAN Always and
// CrossSubnet, decapsulation (known peers only, inner packet re-checked, only for local workloads, never
// reflected), workloads may not tunnel, and both directions of VXLAN/IPIP between two calitap nodes
// (node-a's output replayed on node-b's / node-c's dataplane). Inputs: pcaps/encap/*.pcap (scapy,
// pcaps/encap/make.py); outputs checked with field readers (helpers.ts), scapy and tshark.
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
  l4ChecksumOk,
  layers,
  program,
  readCapture,
  run,
  scapyDecode,
  tmpDir,
  tsharkBadByGroup,
  u16,
  verdicts,
  writePcap,
  type Frame,
  type Run,
  type ScapyFile,
} from './helpers.js';
import type { Programmer } from '../../src/control/daemon/program.js';
import { replay } from '../../src/dataplane/replay.js';

const VXLAN_HDRS = 14 + 20 + 8 + 8; // outer Ethernet, IPv4, UDP, VXLAN: the inner Ethernet starts here

let progA: Programmer;
let progB: Programmer;
let progC: Programmer;
const runs: Record<string, Run> = {};
const inputs: Record<string, Frame[]> = {};
let scapy: Record<string, ScapyFile> = {};
let tshark: Record<string, unknown[]> = {};
const files: Record<string, string> = {};
const saved: Record<string, Frame[]> = {};

/** A router between 10.0.0.0/24 and 10.1.0.0/24: new MACs, outer TTL - 1, header checksum fixed. */
function viaRouter(f: Frame, src: string, dst: string): Frame {
  const b = new Uint8Array(f.bytes);
  b.set(
    dst.split(':').map((x) => parseInt(x, 16)),
    0,
  );
  b.set(
    src.split(':').map((x) => parseInt(x, 16)),
    6,
  );
  b.set(forwarded(b, 1), 14);
  return { ...f, bytes: b };
}

beforeAll(() => {
  progA = program('node-a');
  progB = program('node-b');
  progC = program('node-c');
  for (const n of [
    'crosssubnet-cali-a65.pcap',
    'always-cali-a67.pcap',
    'vxlan-cali-a66.pcap',
    'vxlan-cs-cali-a68.pcap',
    'decap-uplink.pcap',
    'vxlan-reply-cali-b66.pcap',
  ]) {
    inputs[n] = readCapture(n);
  }
  runs.cs = run(progA, { 'cali-a65': cap('crosssubnet-cali-a65.pcap') });
  runs.always = run(progA, { 'cali-a67': cap('always-cali-a67.pcap') });
  runs.vxlan = run(progA, { 'cali-a66': cap('vxlan-cali-a66.pcap') });
  runs.vxlanCs = run(progA, { 'cali-a68': cap('vxlan-cs-cali-a68.pcap') });
  runs.decap = run(progA, { uplink: cap('decap-uplink.pcap') });
  runs.wl = run(progA, { 'cali-a65': cap('workload-tunnel-cali-a65.pcap') });

  const dir = tmpDir('encap-routing');
  const save = (key: string, frames: Frame[]) => {
    saved[key] = frames;
    files[key] = writePcap(path.join(dir, `${key}.pcap`), frames);
  };
  save('cs', runs.cs.tx('uplink'));
  save('always', runs.always.tx('uplink'));
  save('vxlan', runs.vxlan.tx('uplink'));
  save('vxlanCs', runs.vxlanCs.tx('uplink'));
  // node-a -> node-b (same segment): node-a's VXLAN output is node-b's uplink input as it is
  save('a2b', runs.vxlan.tx('uplink').slice(0, 4));
  runs.b = run(progB, { uplink: files.a2b });
  save('bPod', runs.b.tx('cali-b66'));
  // node-b's pod answers; node-b's VXLAN output is node-a's input
  runs.bReply = run(progB, { 'cali-b66': cap('vxlan-reply-cali-b66.pcap') });
  save('b2a', runs.bReply.tx('uplink'));
  runs.aBack = run(progA, { uplink: files.b2a });
  save('aPod', runs.aBack.tx('cali-a66'));
  // node-a -> node-c through the router: IPIP (frames 2-4 of crosssubnet)
  save(
    'a2c',
    runs.cs
      .tx('uplink')
      .slice(1)
      .map((f) => viaRouter(f, MAC.gwC, MAC.nodeC)),
  );
  runs.c = run(progC, { uplink: files.a2c });
  save('cPod', runs.c.tx('cali-c65'));
  // IPIP Always node-a -> node-b
  save('a2bIpip', runs.always.tx('uplink').slice(0, 1));
  runs.bIpip = run(progB, { uplink: files.a2bIpip });
  save('decapA65', runs.decap.tx('cali-a65'));
  save('decapA66', runs.decap.tx('cali-a66'));
  if (SCAPY_MISSING === null) scapy = scapyDecode(Object.values(files));
  if (TSHARK_MISSING === null) tshark = tsharkBadByGroup(dir, saved);
});

function sc(key: string): ScapyFile {
  return scapy[files[key]];
}

/** Skips the scapy part of a test with the reason shown. */
function withScapy(fn: () => void): void {
  if (SCAPY_MISSING !== null) {
    console.warn(`scapy checks skipped: ${SCAPY_MISSING}`);
    return;
  }
  fn();
}

function expectAllChecksumsGood(key: string): void {
  withScapy(() => {
    for (const [k, fr] of sc(key).frames.entries()) {
      const v = verdicts(fr);
      expect(v.length, `${key} frame ${k + 1}: scapy judged no checksum`).toBeGreaterThan(0);
      for (const [layer, ok] of v) expect(ok, `${key} frame ${k + 1} ${layer} checksum`).toBe(true);
    }
  });
  if (TSHARK_MISSING !== null) console.warn(`tshark checks skipped: ${TSHARK_MISSING}`);
  else expect(tshark[key], `${key}: tshark bad checksums`).toEqual([]);
}

/** Checks an IPIP frame against the input packet it carries. */
function expectIpip(f: Frame, input: Frame, outerDst: string, ethDst: string): void {
  const u8 = f.bytes;
  expect(ethAt(u8)).toEqual({ dst: ethDst, src: MAC.nodeA, type: 0x0800 });
  const outer = ip4At(u8, 14);
  const inner = ip4At(input.bytes, 14);
  expect(outer).toMatchObject({
    hlen: 20,
    src: NODE_A,
    dst: outerDst,
    proto: 4,
    ttl: 64,
    df: inner.df,
    mf: false,
    fragOff: 0,
    tos: inner.tos,
    len: 20 + inner.len,
    csumOk: true,
  });
  expect(u8.length).toBe(14 + 20 + inner.len);
  // the inner packet is the pod's, forwarded once (TTL - 1, checksum updated), otherwise untouched
  expect(hex(u8.subarray(34))).toBe(hex(forwarded(input.bytes)));
}

describe('IPIP CrossSubnet (pool 10.65.0.0/16)', () => {
  it('same subnet: routed directly to node-b, no encapsulation', () => {
    const out = runs.cs.tx('uplink');
    expect(out).toHaveLength(4);
    const [f] = out;
    expect(ethAt(f.bytes)).toEqual({ dst: MAC.nodeB, src: MAC.nodeA, type: 0x0800 });
    expect(ip4At(f.bytes, 14)).toMatchObject({ proto: 1, src: '10.65.0.2', dst: '10.65.0.70', ttl: 63 });
    expect(hex(f.bytes.subarray(14))).toBe(hex(forwarded(inputs['crosssubnet-cali-a65.pcap'][0].bytes)));
  });

  it('other subnet: IPIP to node-c, outer Ethernet to the router; DF and TOS follow the inner header', () => {
    const out = runs.cs.tx('uplink');
    const inp = inputs['crosssubnet-cali-a65.pcap'];
    for (let k = 1; k < 4; k++) expectIpip(out[k], inp[k], NODE_C, MAC.gwA);
    expect(ip4At(out[1].bytes, 14)).toMatchObject({ df: true, tos: 0xb8 });
    expect(ip4At(out[2].bytes, 14)).toMatchObject({ df: false, tos: 0 });
    expect(runs.cs.counters['ipip4-encap: encapsulated']).toBe(3);
  });

  it('scapy decodes IP-in-IP with the expected outer fields; every checksum verifies (scapy, tshark)', () => {
    withScapy(() => {
      const fr = sc('cs').frames;
      expect(layers(fr[0], 'IP')).toHaveLength(1);
      for (const k of [1, 2, 3]) {
        const [outer, inner] = layers(fr[k], 'IP');
        expect(outer).toMatchObject({ src: NODE_A, dst: NODE_C, proto: 4, ttl: 64, ihl: 5 });
        expect(inner).toMatchObject({ src: '10.65.0.2', dst: '10.65.0.130', ttl: 63 });
      }
      expect(layers(fr[1], 'UDP')[0]).toMatchObject({ sport: 5000, dport: 7000, csum_ok: true });
      expect(layers(fr[2], 'TCP')[0]).toMatchObject({ sport: 40001, dport: 80, csum_ok: true });
      expect(layers(fr[3], 'ICMP')[0]).toMatchObject({ type: 8, csum_ok: true });
    });
    expectAllChecksumsGood('cs');
  });

  it('node-c decapsulates what node-a sent (after the router) and delivers it to its pod', () => {
    const got = runs.c.tx('cali-c65');
    const inp = inputs['crosssubnet-cali-a65.pcap'];
    expect(got).toHaveLength(3);
    for (let k = 0; k < 3; k++) {
      expect(ethAt(got[k].bytes)).toEqual({ dst: '0a:58:0a:41:00:82', src: MAC.ee, type: 0x0800 });
      // forwarded by node-a and by node-c: inner TTL - 2; the router only touched the outer header
      expect(hex(got[k].bytes.subarray(14))).toBe(hex(forwarded(inp[k + 1].bytes, 2)));
    }
    expect(runs.c.counters['ipip4-input: decapsulated']).toBe(3);
    expectAllChecksumsGood('cPod');
  });
});

describe('IPIP Always (pool 10.67.0.0/16)', () => {
  it('encapsulates even to node-b on our subnet: outer Ethernet straight to node-b', () => {
    const out = runs.always.tx('uplink');
    const inp = readCapture('always-cali-a67.pcap');
    expect(out).toHaveLength(2);
    expectIpip(out[0], inp[0], NODE_B, MAC.nodeB);
    expectIpip(out[1], inp[1], NODE_C, MAC.gwA);
    expectAllChecksumsGood('always');
  });

  it('node-b decapsulates it and delivers it to its pod', () => {
    const got = runs.bIpip.tx('cali-b67');
    expect(got).toHaveLength(1);
    expect(hex(got[0].bytes.subarray(14))).toBe(
      hex(forwarded(readCapture('always-cali-a67.pcap')[0].bytes, 2)),
    );
  });
});

/** Checks a VXLAN frame: outer headers, VXLAN header, inner Ethernet, inner packet. */
function expectVxlan(
  f: Frame,
  input: Frame,
  o: { outerDst: string; ethDst: string; vtepDst: string; port?: number; vni?: number },
): number {
  const u8 = f.bytes;
  const inner = ip4At(input.bytes, 14);
  expect(ethAt(u8)).toEqual({ dst: o.ethDst, src: MAC.nodeA, type: 0x0800 });
  expect(ip4At(u8, 14)).toMatchObject({
    hlen: 20,
    src: NODE_A,
    dst: o.outerDst,
    proto: 17,
    ttl: 64,
    df: inner.df,
    mf: false,
    tos: inner.tos,
    len: 20 + 8 + 8 + 14 + inner.len,
    csumOk: true,
  });
  const sport = u16(u8, 34);
  expect(sport).toBeGreaterThanOrEqual(32768);
  expect(sport).toBeLessThanOrEqual(60999);
  expect(u16(u8, 36)).toBe(o.port ?? 4789); // UDP destination port
  expect(u16(u8, 38)).toBe(8 + 8 + 14 + inner.len); // UDP length
  expect(u16(u8, 40)).toBe(0); // UDP checksum: none (RFC 7348 §5)
  const vni = o.vni ?? 4096;
  expect(hex(u8.subarray(42, 50))).toBe(
    '08000000' + ((vni << 8) >>> 0).toString(16).padStart(8, '0'), // flags I, VNI, reserved
  );
  expect(ethAt(u8, VXLAN_HDRS)).toEqual({ dst: o.vtepDst, src: MAC.vtepA, type: 0x0800 });
  expect(hex(u8.subarray(VXLAN_HDRS + 14))).toBe(hex(forwarded(input.bytes)));
  expect(u8.length).toBe(VXLAN_HDRS + 14 + inner.len);
  return sport;
}

describe('VXLAN Always (pool 10.66.0.0/16)', () => {
  it('encapsulates to node-b: UDP 4789, VNI 4096, checksum 0, inner Ethernet VTEP to VTEP', () => {
    const out = runs.vxlan.tx('uplink');
    const inp = inputs['vxlan-cali-a66.pcap'];
    expect(out).toHaveLength(5);
    const o = { outerDst: NODE_B, ethDst: MAC.nodeB, vtepDst: MAC.vtepB };
    const ports = [0, 1, 2, 3].map((k) => expectVxlan(out[k], inp[k], o));
    // one flow, one source port; another flow, another port (RFC 7348 §5 entropy)
    expect(ports[1]).toBe(ports[0]);
    expect(ports[2]).not.toBe(ports[0]);
    expect(runs.vxlan.counters['vxlan4-encap: encapsulated']).toBe(5);
  });

  it('to node-c in another subnet: via the router, inner destination node-c VTEP, TOS copied', () => {
    const out = runs.vxlan.tx('uplink');
    const inp = inputs['vxlan-cali-a66.pcap'];
    expectVxlan(out[4], inp[4], { outerDst: NODE_C, ethDst: MAC.gwA, vtepDst: MAC.vtepC });
    expect(ip4At(out[4].bytes, 14).tos).toBe(0x10);
  });

  it('scapy decodes VXLAN (flags I, VNI 4096), the inner frame, and every checksum verifies', () => {
    withScapy(() => {
      for (const fr of sc('vxlan').frames) {
        expect(layers(fr, 'UDP')[0]).toMatchObject({ dport: 4789, chksum: 0, csum_zero: true });
        expect(layers(fr, 'VXLAN')[0]).toMatchObject({ flags: 0x08, vni: 4096 });
        const [, innerEth] = layers(fr, 'Ether');
        expect(innerEth.src).toBe(MAC.vtepA);
        expect(layers(fr, 'IP')[1]).toMatchObject({ src: '10.66.0.2', ttl: 63, csum_ok: true });
      }
    });
    expectAllChecksumsGood('vxlan');
  });

  it('uses FelixConfiguration vxlanPort and vxlanVNI', () => {
    const felix = `apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata: { name: node.node-a }
spec: { vxlanPort: 8472, vxlanVNI: 77 }`;
    const r = run(program('node-a', felix), { 'cali-a66': cap('vxlan-cali-a66.pcap') });
    const out = r.tx('uplink');
    expect(out).toHaveLength(5);
    expectVxlan(out[0], inputs['vxlan-cali-a66.pcap'][0], {
      outerDst: NODE_B,
      ethDst: MAC.nodeB,
      vtepDst: MAC.vtepB,
      port: 8472,
      vni: 77,
    });
  });

  it('node-b decapsulates node-a’s frames and delivers them to its pod (inner TTL - 2)', () => {
    const got = runs.b.tx('cali-b66');
    const inp = inputs['vxlan-cali-a66.pcap'];
    expect(got).toHaveLength(4);
    for (let k = 0; k < 4; k++) {
      expect(ethAt(got[k].bytes)).toEqual({ dst: MAC.b66, src: MAC.ee, type: 0x0800 });
      expect(hex(got[k].bytes.subarray(14))).toBe(hex(forwarded(inp[k].bytes, 2)));
    }
    expect(runs.b.counters['vxlan4-input: decapsulated']).toBe(4);
    expectAllChecksumsGood('bPod');
  });

  it('the other direction: node-b’s pod answers, node-b encapsulates, node-a delivers to its pod', () => {
    const enc = runs.bReply.tx('uplink');
    expect(enc).toHaveLength(1);
    const u8 = enc[0].bytes;
    expect(ethAt(u8)).toEqual({ dst: MAC.nodeA, src: MAC.nodeB, type: 0x0800 });
    expect(ip4At(u8, 14)).toMatchObject({ src: NODE_B, dst: NODE_A, proto: 17, ttl: 64, csumOk: true });
    expect(u16(u8, 36)).toBe(4789);
    expect(ethAt(u8, VXLAN_HDRS)).toEqual({ dst: MAC.vtepA, src: MAC.vtepB, type: 0x0800 });
    const got = runs.aBack.tx('cali-a66');
    expect(got).toHaveLength(1);
    expect(ethAt(got[0].bytes)).toEqual({ dst: MAC.a66, src: MAC.ee, type: 0x0800 });
    expect(hex(got[0].bytes.subarray(14))).toBe(
      hex(forwarded(inputs['vxlan-reply-cali-b66.pcap'][0].bytes, 2)),
    );
    expect(l4ChecksumOk(got[0].bytes, 14)).toBe(true);
    expectAllChecksumsGood('aPod');
  });
});

describe('VXLAN CrossSubnet (pool 10.68.0.0/16)', () => {
  it('same subnet direct, other subnet encapsulated', () => {
    const out = runs.vxlanCs.tx('uplink');
    const inp = readCapture('vxlan-cs-cali-a68.pcap');
    expect(out).toHaveLength(2);
    expect(ethAt(out[0].bytes)).toEqual({ dst: MAC.nodeB, src: MAC.nodeA, type: 0x0800 });
    expect(hex(out[0].bytes.subarray(14))).toBe(hex(forwarded(inp[0].bytes)));
    expectVxlan(out[1], inp[1], { outerDst: NODE_C, ethDst: MAC.gwA, vtepDst: MAC.vtepC });
    expectAllChecksumsGood('vxlanCs');
  });
});

describe('decapsulation on node-a (pcaps/encap/decap-uplink.pcap)', () => {
  it('delivers the IPIP and VXLAN packets of known nodes to the local pods, inner TTL - 1', () => {
    const inp = inputs['decap-uplink.pcap'];
    const a65 = runs.decap.tx('cali-a65');
    const a66 = runs.decap.tx('cali-a66');
    expect(a65).toHaveLength(1);
    expect(a66).toHaveLength(1);
    expect(ethAt(a65[0].bytes)).toEqual({ dst: MAC.a65, src: MAC.ee, type: 0x0800 });
    expect(hex(a65[0].bytes.subarray(14))).toBe(hex(forwarded(inp[0].bytes.subarray(20))));
    expect(ethAt(a66[0].bytes)).toEqual({ dst: MAC.a66, src: MAC.ee, type: 0x0800 });
    expect(hex(a66[0].bytes.subarray(14))).toBe(hex(forwarded(inp[2].bytes.subarray(VXLAN_HDRS))));
    expectAllChecksumsGood('decapA65');
    expectAllChecksumsGood('decapA66');
  });

  it('drops and counts everything else; nothing is reflected to the uplink or other pods', () => {
    const r = runs.decap;
    expect(r.tx('uplink')).toEqual([]);
    for (const p of ['cali-a65b', 'cali-a67', 'cali-a68']) expect(r.tx(p)).toEqual([]);
    expect(r.counters).toMatchObject({
      'ipip4-input: unknown-peer': 1, // frame 2
      'vxlan4-input: unknown-peer': 1, // frame 4
      'vxlan4-input: wrong-vni': 1, // frame 5
      'vxlan4-input: not-our-vtep': 1, // frame 6
      'ip4-lookup: not-for-local-workload': 4, // frames 7, 8, 11 (inner) and 13 (outer, not decapsulated)
      'ip4-input: bad-checksum': 1, // frame 9 (inner header)
      'vxlan4-input: bad-flags': 1, // frame 12
      'ipip4-input: fragmented-outer': 1, // frame 14
    });
    // frame 10: IPIP inside IPIP is decapsulated once only; its inner IPIP packet is not ours
    const nested =
      (r.counters['snat4-out2in: no-translation'] ?? 0) + (r.counters['ip4-input: not-ours'] ?? 0);
    expect(nested).toBe(1);
    expect(r.counters['ipip4-input: decapsulated']).toBe(5); // frames 1, 7, 8, 9, 10
    expect(r.counters['vxlan4-input: decapsulated']).toBe(2); // frames 3, 11
    const dropped = Object.entries(r.counters)
      .filter(([k]) => !/decapsulated|: translated/.test(k))
      .reduce((s, [, v]) => s + v, 0);
    expect(dropped).toBe(inputs['decap-uplink.pcap'].length - 2);
  });
});

describe('trace', () => {
  it('ipip4-input names the tunnel peer it accepted', () => {
    const lines: string[] = [];
    replay(progA.env, {
      inputs: [{ port: 'uplink', path: cap('decap-uplink.pcap') }],
      outDir: null,
      trace: (l) => lines.push(...l),
    });
    expect(lines.join('\n')).toContain('ipip4-input: from 10.1.0.3');
  });
});

describe('workloads may not send IPIP or VXLAN', () => {
  it('drops them at the spoof check and counts them', () => {
    const r = runs.wl;
    expect([...r.out.values()].flat()).toEqual([]);
    expect(r.counters['ip4-spoof-check: ipip-from-workload']).toBe(1);
    expect(r.counters['ip4-spoof-check: vxlan-from-workload']).toBeGreaterThanOrEqual(1); // frame 2
    // frame 3 (VXLAN at our own node IP) is dropped either as VXLAN or as traffic to the host
    const total = Object.values(r.counters).reduce((a, v) => a + v, 0);
    expect(total).toBe(3);
  });
});
