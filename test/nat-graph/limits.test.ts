// natOutgoing limits and settings through the real graph: a full table drops and counts new flows,
// FelixConfiguration natPortRange bounds the ports (4789 never handed out, ports collision-free until the
// range is exhausted, then counted), natOutgoingAddress replaces the node IP (replies to it come back),
// and the ICMP errors calitap itself raises about a masqueraded packet go to the pod.
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  MAC,
  NODE_A,
  SCAPY_MISSING,
  cap,
  ethAt,
  ip4At,
  l4ChecksumOk,
  program,
  readCapture,
  run,
  scapyDecode,
  tmpDir,
  u16,
  verdicts,
  writePcap,
  type Run,
  type ScapyFile,
} from '../encap/helpers.js';
import { packet, udpDgram } from './frames.js';

const T0 = 1700000000;
const runs: Record<string, Run> = {};
let fullNat: { size: number; full: number } = { size: 0, full: 0 };
let scapy: Record<string, ScapyFile> = {};
const files: Record<string, string> = {};

function felix(spec: string): string {
  return `apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata: { name: node.node-a }
spec: ${spec}`;
}

beforeAll(() => {
  const dir = tmpDir('nat-limits');
  const small = program('node-a', '', { natCapacity: 4 });
  runs.full = run(small, { 'cali-a65': cap('nat-full-cali-a65.pcap') });
  fullNat = { size: small.env.nat!.size, full: small.env.nat!.counters.full };

  runs.ports = run(program('node-a', felix("{ natPortRange: '4780:4799' }")), {
    'cali-a65': cap('nat-ports-cali-a65.pcap'),
  });

  runs.vxlanPort = run(program('node-a', felix("{ vxlanPort: 8472, natPortRange: '8471:8473' }")), {
    'cali-a65': cap('nat-ports-cali-a65.pcap'),
  });

  const withAddr = program('node-a', felix('{ natOutgoingAddress: 10.0.0.100 }'));
  runs.addr = run(withAddr, { 'cali-a65': cap('nat-out-cali-a65.pcap') });
  const udp = runs.addr.tx('uplink')[1];
  files.addrReply = writePcap(path.join(dir, 'addr-reply.pcap'), [
    packet({
      ethSrc: MAC.gwA,
      ethDst: MAC.nodeA,
      src: '198.51.100.53',
      dst: '10.0.0.100',
      proto: 17,
      l4: udpDgram(5300, u16(udp.bytes, 34), new TextEncoder().encode('to-the-nat-address')),
      t: T0 + 1,
    }),
  ]);
  runs.addrBack = run(withAddr, { uplink: files.addrReply });
  files.addrUp = writePcap(path.join(dir, 'addr-up.pcap'), runs.addr.tx('uplink'));
  files.addrPod = writePcap(path.join(dir, 'addr-pod.pcap'), runs.addrBack.tx('cali-a65'));

  runs.errors = run(program('node-a'), { 'cali-a65': cap('nat-errors-cali-a65.pcap') });
  if (SCAPY_MISSING === null) scapy = scapyDecode([files.addrUp, files.addrPod]);
  else console.warn(`scapy checks skipped: ${SCAPY_MISSING}`);
});

describe('bounded table', () => {
  it('natCapacity 4: four flows translated, the next two dropped and counted (table-full)', () => {
    expect(runs.full.tx('uplink')).toHaveLength(4);
    for (const f of runs.full.tx('uplink')) expect(ip4At(f.bytes, 14).src).toBe(NODE_A);
    expect(runs.full.counters['snat4-in2out: table-full']).toBe(2);
    expect(runs.full.counters['snat4-in2out: translated']).toBe(4);
    expect(fullNat).toEqual({ size: 4, full: 2 });
  });
});

describe('FelixConfiguration natPortRange', () => {
  it('4780:4799 with 20 flows to one server: 19 distinct ports, never 4789, the 20th counted', () => {
    const up = runs.ports.tx('uplink');
    expect(up).toHaveLength(19);
    const ports = up.map((f) => u16(f.bytes, 34));
    const want = Array.from({ length: 20 }, (_, k) => 4780 + k).filter((p) => p !== 4789);
    expect([...ports].sort((a, b) => a - b)).toEqual(want);
    for (const f of up) expect(l4ChecksumOk(f.bytes, 14)).toBe(true);
    expect(runs.ports.counters['snat4-in2out: no-free-port']).toBe(1);
    // random allocation: not simply handed out in order
    expect(ports).not.toEqual(want);
  });
});

describe('NAT ports never collide with the VXLAN port', () => {
  it('vxlanPort 8472 inside natPortRange: 8472 is never handed out', () => {
    const ports = runs.vxlanPort.tx('uplink').map((f) => u16(f.bytes, 34));
    expect(ports).not.toContain(8472);
    expect([...ports].sort((a, b) => a - b)).toEqual([8471, 8473]);
    expect(runs.vxlanPort.counters['snat4-in2out: no-free-port']).toBe(18);
  });

  it('the default VXLAN port 4789 is never handed out (natPortRange 4780:4799 above)', () => {
    expect(runs.ports.tx('uplink').map((f) => u16(f.bytes, 34))).not.toContain(4789);
  });
});

describe('FelixConfiguration natOutgoingAddress', () => {
  it('masquerades to 10.0.0.100 instead of the node IP, and translates replies to it back', () => {
    const up = runs.addr.tx('uplink');
    for (const k of [0, 1, 2]) {
      expect(ip4At(up[k].bytes, 14)).toMatchObject({ src: '10.0.0.100', csumOk: true });
      expect(l4ChecksumOk(up[k].bytes, 14)).toBe(true);
    }
    const back = runs.addrBack.tx('cali-a65');
    expect(back).toHaveLength(1);
    expect(ethAt(back[0].bytes)).toEqual({ dst: MAC.a65, src: MAC.ee, type: 0x0800 });
    expect(ip4At(back[0].bytes, 14)).toMatchObject({ src: '198.51.100.53', dst: '10.65.0.2', csumOk: true });
    expect(u16(back[0].bytes, 36)).toBe(5353);
    expect(l4ChecksumOk(back[0].bytes, 14)).toBe(true);
    if (SCAPY_MISSING === null) {
      for (const file of [files.addrUp, files.addrPod])
        for (const f of scapy[file].frames) for (const [l, ok] of verdicts(f)) expect(ok, l).toBe(true);
    }
  });
});

describe('errors calitap raises about a masqueraded packet', () => {
  it('TTL 1 to the Internet: time exceeded to the pod, quoting the pod’s own packet', () => {
    const pod = runs.errors.tx('cali-a65');
    const inp = readCapture('nat-errors-cali-a65.pcap');
    expect(pod).toHaveLength(2);
    const e = pod[0].bytes;
    const h = ip4At(e, 14);
    expect(h).toMatchObject({ src: NODE_A, dst: '10.65.0.2', proto: 1 });
    expect([e[h.l4], e[h.l4 + 1]]).toEqual([11, 0]);
    expect(ip4At(e, h.l4 + 8).src).toBe('10.65.0.2');
    expect(u16(e, h.l4 + 8 + 20)).toBe(u16(inp[0].bytes, 34));
    const f = pod[1].bytes;
    const g = ip4At(f, 14);
    expect([f[g.l4], f[g.l4 + 1], u16(f, g.l4 + 6)]).toEqual([3, 4, 1500]);
    expect(ip4At(f, g.l4 + 8).src).toBe('10.65.0.2');
    expect(runs.errors.tx('uplink')).toEqual([]);
  });

  it('both errors are raised and counted (and delivered to the pod)', () => {
    expect(runs.errors.counters['ip4-rewrite: ttl-exceeded']).toBe(1);
    expect(runs.errors.counters['ip4-rewrite: fragmentation-needed']).toBe(1);
  });
});
