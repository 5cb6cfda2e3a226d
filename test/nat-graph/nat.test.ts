// natOutgoing through the real graph: masquerade of TCP, UDP and ping from a natOutgoing pool to the
// Internet, the replies translated back (round trips built from what calitap actually sent), no NAT
// towards any pool (disabled ones included) nor from a pool without natOutgoing, TCP close tracking and
// per-protocol timeouts, and ICMP errors quoting translated packets brought back to the pod (PMTU through
// NAT, RFC 5508 §7). All steps share one Programmer, so its NatTable (prog.env.nat) carries the flows
// from one replay() to the next. Checksums: incremental updates compared byte for byte with a full
// recomputation, and judged by scapy and tshark.
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  MAC,
  NODE_A,
  SCAPY_MISSING,
  TSHARK_MISSING,
  cap,
  ethAt,
  forwarded,
  hex,
  ip,
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
} from '../encap/helpers.js';
import { TCP_ACK, TCP_FIN, TCP_SYN, icmpMsg, packet, tcpSeg, udpDgram } from './frames.js';
import type { Programmer } from '../../src/control/daemon/program.js';
import type { NatTable } from '../../src/dataplane/tables/nat/table.js';
import {
  NAT_CLASS_ICMP,
  NAT_CLASS_TCP_SYN_SENT,
  NAT_CLASS_TCP_TIME_WAIT,
  NAT_CLASS_TCP_TRANSITORY,
  NAT_CLASS_UDP,
  NAT_CLASS_UDP_STREAM,
} from '../../src/dataplane/tables/nat/table.js';
import { ip4SetChecksum } from '../../src/dataplane/wire/ipv4.js';
import { tcpSetChecksum } from '../../src/dataplane/wire/tcp.js';
import { udpSetChecksum } from '../../src/dataplane/wire/udp.js';
import { icmpSetChecksum } from '../../src/dataplane/wire/icmp4.js';

const T0 = 1700000000;
const POD = '10.65.0.2';
const TCP_SRV = '192.0.2.10';
const UDP_SRV = '198.51.100.53';
const PING_DST = '203.0.113.7';

let prog: Programmer;
let nat: NatTable;
let dir: string;
let podIn: Frame[];
const runs: Record<string, Run> = {};
const saved: Record<string, Frame[]> = {};
const files: Record<string, string> = {};
let scapy: Record<string, ScapyFile> = {};
let tshark: Record<string, unknown[]> = {};
/** nat ports calitap chose: tcp, udp, icmp id */
const natPort = { tcp: 0, udp: 0, icmp: 0 };
const classes: Record<string, number> = {};
let sizeAfterOut = 0;

function save(key: string, frames: Frame[]): string {
  saved[key] = frames;
  files[key] = writePcap(path.join(dir, `${key}.pcap`), frames);
  return files[key];
}

/** The live flow whose inside endpoint is POD:port (scan: no lookup, so no last-seen refresh). */
function flowOf(proto: number, insidePort: number, insideIp = POD): number {
  for (let i = 0; i < nat.capacity; i++) {
    if (!nat.isLive(i)) continue;
    if (nat.proto(i) === proto && nat.insidePort(i) === insidePort && nat.insideIp(i) === ip(insideIp))
      return i;
  }
  return -1;
}

/** A packet from the Internet (through the router) to our node. */
function fromNet(src: string, proto: number, l4: Uint8Array, t: number, dst = NODE_A): Frame {
  return packet({ ethSrc: MAC.gwA, ethDst: MAC.nodeA, src, dst, proto, l4, t });
}

/** The pod's packet after translation as a full recomputation makes it: src, port/id, checksums. */
function expectedOut(input: Frame, natIp: string, port: number): Uint8Array {
  const p = forwarded(input.bytes);
  const h = ip4At(p, 0);
  new DataView(p.buffer).setUint32(12, ip(natIp));
  if (h.proto === 1) new DataView(p.buffer).setUint16(h.l4 + 4, port);
  else new DataView(p.buffer).setUint16(h.l4, port);
  ip4SetChecksum(p, 0);
  if (h.proto === 6) tcpSetChecksum(p, 0);
  else if (h.proto === 17) udpSetChecksum(p, 0);
  else icmpSetChecksum(p, h.l4, h.len - h.hlen);
  return p;
}

/** What a reply must look like once translated back: dst = pod, port restored, TTL - 1, full checksums. */
function expectedIn(reply: Frame, port: number): Uint8Array {
  const p = forwarded(reply.bytes);
  const h = ip4At(p, 0);
  new DataView(p.buffer).setUint32(16, ip(POD));
  if (h.proto === 1) new DataView(p.buffer).setUint16(h.l4 + 4, port);
  else new DataView(p.buffer).setUint16(h.l4 + 2, port);
  ip4SetChecksum(p, 0);
  if (h.proto === 6) tcpSetChecksum(p, 0);
  else if (h.proto === 17) udpSetChecksum(p, 0);
  else icmpSetChecksum(p, h.l4, h.len - h.hlen);
  return p;
}

beforeAll(() => {
  dir = tmpDir('nat-graph');
  prog = program('node-a');
  nat = prog.env.nat!;
  podIn = readCapture('nat-out-cali-a65.pcap');

  // 1. the pod opens flows (and a second pod uses the same source port to the same server)
  runs.out = run(prog, {
    'cali-a65': cap('nat-out-cali-a65.pcap'),
    'cali-a65b': cap('nat-collide-cali-a65b.pcap'),
  });
  const up = runs.out.tx('uplink');
  save('out', up);
  natPort.tcp = u16(up[0].bytes, 34);
  natPort.udp = u16(up[1].bytes, 34);
  natPort.icmp = u16(up[2].bytes, 38);
  sizeAfterOut = nat.size;
  classes.syn = nat.timeoutClass(flowOf(6, 40000));
  classes.udpNoReply = nat.timeoutClass(flowOf(17, 5353));

  // 2. the Internet answers (to node IP : nat port), plus a stray packet to a port with no flow
  const replies = [
    fromNet(TCP_SRV, 6, tcpSeg(80, natPort.tcp, 5000, 1001, TCP_SYN | TCP_ACK), T0 + 1),
    fromNet(UDP_SRV, 17, udpDgram(5300, natPort.udp, new TextEncoder().encode('nat-udp-reply')), T0 + 1.001),
    fromNet(
      PING_DST,
      1,
      icmpMsg(0, 0, (natPort.icmp << 16) | 1, podIn[2].bytes.subarray(14 + 28)),
      T0 + 1.002,
    ),
    fromNet(
      TCP_SRV,
      6,
      tcpSeg(80, natPort.tcp === 50000 ? 50001 : 50000, 1, 0, TCP_SYN | TCP_ACK),
      T0 + 1.003,
    ),
  ];
  save('replies', replies);
  runs.back = run(prog, { uplink: files.replies });
  save('backPod', runs.back.tx('cali-a65'));
  classes.synAck = nat.timeoutClass(flowOf(6, 40000));
  classes.udpReplied = nat.timeoutClass(flowOf(17, 5353));
  classes.icmp = nat.timeoutClass(flowOf(1, 0x1234));

  // 2b. the server sends a full-size DF segment: too big for the pod's port (MTU 1450)
  const big = new Uint8Array(20 + 1460);
  big.set(tcpSeg(80, natPort.tcp, 5001, 1001, TCP_ACK), 0);
  save('bigDown', [
    packet({
      ethSrc: MAC.gwA,
      ethDst: MAC.nodeA,
      src: TCP_SRV,
      dst: NODE_A,
      proto: 6,
      l4: big,
      df: true,
      t: T0 + 1.2,
    }),
  ]);
  runs.bigDown = run(prog, { uplink: files.bigDown });

  // 3. ICMP errors from the path about the translated packets (as routers quote them)
  const syn = up[0].bytes.subarray(14);
  const udp = up[1].bytes.subarray(14);
  const ping = up[2].bytes.subarray(14);
  const unknown = new Uint8Array(syn);
  unknown[20] = 0; // quoted source port 1: no flow
  unknown[21] = 1;
  const errors = [
    // the router cannot forward the SYN without fragmenting (DF): next-hop MTU 1400, whole packet quoted
    fromNet('10.0.0.254', 1, icmpMsg(3, 4, 1400, syn), T0 + 1.5),
    // TTL exceeded for the UDP datagram, quoting header + 8 bytes (RFC 792)
    fromNet('198.51.100.1', 1, icmpMsg(11, 0, 0, udp.subarray(0, 28)), T0 + 1.501),
    // host unreachable for the ping, whole request quoted
    fromNet('203.0.113.1', 1, icmpMsg(3, 1, 0, ping), T0 + 1.502),
    // an error about a flow we do not have: dropped
    fromNet('10.0.0.254', 1, icmpMsg(3, 4, 1400, unknown), T0 + 1.503),
  ];
  save('errors', errors);
  runs.errors = run(prog, { uplink: files.errors });
  save('errorsPod', runs.errors.tx('cali-a65'));

  // 4. the pod completes the handshake and closes; 5. the server closes too
  runs.close = run(prog, { 'cali-a65': cap('nat-tcp-close-cali-a65.pcap') });
  save('closeUp', runs.close.tx('uplink'));
  classes.finIn = nat.timeoutClass(flowOf(6, 40000));
  save('finAck', [fromNet(TCP_SRV, 6, tcpSeg(80, natPort.tcp, 5001, 1002, TCP_FIN | TCP_ACK), T0 + 3)]);
  runs.finAck = run(prog, { uplink: files.finAck });
  classes.timeWait = nat.timeoutClass(flowOf(6, 40000));

  // 6. 121 s later: time-wait (120 s) and ICMP (30 s) flows are gone, the UDP stream (180 s) is not
  const late = T0 + 3 + 121;
  save('late', [
    fromNet(TCP_SRV, 6, tcpSeg(80, natPort.tcp, 5001, 1002, TCP_FIN | TCP_ACK), late),
    fromNet(
      PING_DST,
      1,
      icmpMsg(0, 0, (natPort.icmp << 16) | 1, podIn[2].bytes.subarray(14 + 28)),
      late + 0.001,
    ),
    fromNet(UDP_SRV, 17, udpDgram(5300, natPort.udp, new TextEncoder().encode('still-here')), late + 0.002),
  ]);
  runs.late = run(prog, { uplink: files.late });

  // the pools without natOutgoing / the second natOutgoing pool
  runs.a66 = run(prog, { 'cali-a66': cap('nat-out-cali-a66.pcap') });
  runs.a68 = run(prog, { 'cali-a68': cap('nat-out-cali-a68.pcap') });
  save('a68', runs.a68.tx('uplink'));

  if (SCAPY_MISSING === null) scapy = scapyDecode(Object.values(files));
  else console.warn(`scapy checks skipped: ${SCAPY_MISSING}`);
  if (TSHARK_MISSING === null) tshark = tsharkBadByGroup(dir, saved);
  else console.warn(`tshark checks skipped: ${TSHARK_MISSING}`);
});

function scapyAllGood(key: string): void {
  if (SCAPY_MISSING !== null) return;
  const fr = scapy[files[key]].frames;
  expect(fr.length).toBeGreaterThan(0);
  for (const [k, f] of fr.entries()) {
    const v = verdicts(f);
    expect(v.length).toBeGreaterThan(0);
    for (const [layer, ok] of v) expect(ok, `${key} frame ${k + 1} ${layer}`).toBe(true);
  }
}

function tsharkAllGood(key: string): void {
  if (TSHARK_MISSING === null) expect(tshark[key], `${key}: tshark`).toEqual([]);
}

describe('masquerade: pod -> Internet', () => {
  it('TCP, UDP and ping leave from the node IP with a fresh port; checksums as a full recomputation', () => {
    const up = runs.out.tx('uplink');
    expect(up).toHaveLength(podIn.length + 1);
    for (const k of [0, 1, 2]) {
      expect(ethAt(up[k].bytes)).toEqual({ dst: MAC.gwA, src: MAC.nodeA, type: 0x0800 });
      const port = [natPort.tcp, natPort.udp, natPort.icmp][k];
      expect(hex(up[k].bytes.subarray(14))).toBe(hex(expectedOut(podIn[k], NODE_A, port)));
      expect(l4ChecksumOk(up[k].bytes, 14)).toBe(true);
    }
    // default range: Linux's ephemeral ports (natPortRange unset)
    for (const p of Object.values(natPort)) {
      expect(p).toBeGreaterThanOrEqual(32768);
      expect(p).toBeLessThanOrEqual(60999);
    }
    expect(runs.out.counters['snat4-in2out: translated']).toBe(4);
    scapyAllGood('out');
    tsharkAllGood('out');
  });

  it('two pods with the same source port to the same server get different nat ports', () => {
    const up = runs.out.tx('uplink');
    const other = up[podIn.length];
    expect(ip4At(other.bytes, 14)).toMatchObject({ src: NODE_A, dst: TCP_SRV });
    expect(u16(other.bytes, 34)).not.toBe(natPort.tcp);
    expect(sizeAfterOut).toBe(4);
  });

  it('no NAT towards pool addresses (enabled or disabled pools), nor through tunnels', () => {
    const up = runs.out.tx('uplink');
    // frame 4: node-b pod (direct), 6: disabled pool via the router, 7: disabled pool block on node-b
    for (const k of [3, 5, 6]) expect(hex(up[k].bytes.subarray(14))).toBe(hex(forwarded(podIn[k].bytes)));
    expect(ethAt(up[5].bytes).dst).toBe(MAC.gwA);
    // frame 5: VXLAN to node-b, the inner source is still the pod's
    expect(ip4At(up[4].bytes, 14 + 20 + 8 + 8 + 14)).toMatchObject({ src: POD, dst: '10.66.0.66' });
  });

  it('no NAT from a pool without natOutgoing; NAT from every natOutgoing pool', () => {
    const a66 = runs.a66.tx('uplink');
    expect(a66).toHaveLength(1);
    expect(hex(a66[0].bytes.subarray(14))).toBe(
      hex(forwarded(readCapture('nat-out-cali-a66.pcap')[0].bytes)),
    );
    const a68 = runs.a68.tx('uplink');
    expect(a68).toHaveLength(1);
    expect(ip4At(a68[0].bytes, 14)).toMatchObject({ src: NODE_A, dst: TCP_SRV, csumOk: true });
    expect(l4ChecksumOk(a68[0].bytes, 14)).toBe(true);
    scapyAllGood('a68');
  });
});

describe('replies: Internet -> pod', () => {
  it('TCP, UDP and ping replies reach the pod with its address and port restored', () => {
    const got = runs.back.tx('cali-a65');
    expect(got).toHaveLength(3);
    const replies = saved.replies;
    const ports = [40000, 5353, 0x1234];
    for (let k = 0; k < 3; k++) {
      expect(ethAt(got[k].bytes)).toEqual({ dst: MAC.a65, src: MAC.ee, type: 0x0800 });
      expect(hex(got[k].bytes.subarray(14))).toBe(hex(expectedIn(replies[k], ports[k])));
    }
    expect(runs.back.counters['snat4-out2in: translated']).toBe(3);
    expect(runs.back.counters['snat4-out2in: no-translation']).toBe(1); // the stray SYN-ACK
    expect(runs.back.tx('uplink')).toEqual([]);
    scapyAllGood('backPod');
    tsharkAllGood('backPod');
    if (SCAPY_MISSING === null) {
      const fr = scapy[files.backPod].frames;
      expect(layers(fr[0], 'TCP')[0]).toMatchObject({ sport: 80, dport: 40000, flags: TCP_SYN | TCP_ACK });
      expect(layers(fr[1], 'UDP')[0]).toMatchObject({ sport: 5300, dport: 5353 });
      expect(layers(fr[2], 'ICMP')[0]).toMatchObject({ type: 0, id: 0x1234, seq: 1 });
    }
  });
});

describe('conntrack: TCP close tracking and timeouts', () => {
  it('TCP: syn-sent until the handshake completes, transitory after one FIN, time-wait after both', () => {
    expect(classes.syn).toBe(NAT_CLASS_TCP_SYN_SENT);
    expect(classes.synAck).toBe(NAT_CLASS_TCP_SYN_SENT); // SYN-ACK seen, the pod's ACK not yet
    expect(classes.finIn).toBe(NAT_CLASS_TCP_TRANSITORY); // ACK (established) then the pod's FIN
    expect(classes.timeWait).toBe(NAT_CLASS_TCP_TIME_WAIT);
    const up = runs.close.tx('uplink');
    expect(up).toHaveLength(2);
    for (const f of up) {
      expect(ip4At(f.bytes, 14)).toMatchObject({ src: NODE_A, csumOk: true });
      expect(u16(f.bytes, 34)).toBe(natPort.tcp); // same flow, same port
      expect(l4ChecksumOk(f.bytes, 14)).toBe(true);
    }
    expect(runs.finAck.tx('cali-a65')).toHaveLength(1);
  });

  it('UDP: short timeout until a reply, stream afterwards; ICMP echo its own class', () => {
    expect(classes.udpNoReply).toBe(NAT_CLASS_UDP);
    expect(classes.udpReplied).toBe(NAT_CLASS_UDP_STREAM);
    expect(classes.icmp).toBe(NAT_CLASS_ICMP);
  });

  it('after 121 s idle: the time-wait TCP flow and the ping are gone, the UDP stream still translates', () => {
    const got = runs.late.tx('cali-a65');
    expect(got).toHaveLength(1);
    expect(ip4At(got[0].bytes, 14)).toMatchObject({ proto: 17, src: UDP_SRV, dst: POD });
    expect(u16(got[0].bytes, 36)).toBe(5353);
    expect(runs.late.counters['snat4-out2in: no-translation']).toBe(2);
  });
});

describe('PMTU through NAT, download direction', () => {
  it('a DF segment from the server too big for the pod port gets fragmentation needed (MTU 1450)', () => {
    expect(runs.bigDown.tx('cali-a65')).toEqual([]);
    const up = runs.bigDown.tx('uplink');
    expect(up).toHaveLength(1);
    const e = up[0].bytes;
    const h = ip4At(e, 14);
    expect(h).toMatchObject({ src: NODE_A, dst: TCP_SRV, proto: 1, csumOk: true });
    expect([e[h.l4], e[h.l4 + 1], u16(e, h.l4 + 6)]).toEqual([3, 4, 1450]);
  });

  it('its quote shows the segment as the server sent it (to nat ip:port, not the pod)', () => {
    const e = runs.bigDown.tx('uplink')[0].bytes;
    const q = ip4At(e, 14).l4 + 8;
    expect(ip4At(e, q)).toMatchObject({ src: TCP_SRV, dst: NODE_A });
    expect(u16(e, q + 20 + 2)).toBe(natPort.tcp);
  });
});

describe('ICMP errors about translated packets reach the pod (PMTU through NAT)', () => {
  it('fragmentation needed about the SYN: outer and quoted headers translated back, MTU kept', () => {
    const got = runs.errors.tx('cali-a65');
    expect(got).toHaveLength(3);
    const e = got[0].bytes;
    expect(ethAt(e)).toEqual({ dst: MAC.a65, src: MAC.ee, type: 0x0800 });
    const h = ip4At(e, 14);
    expect(h).toMatchObject({ src: '10.0.0.254', dst: POD, proto: 1, ttl: 59, csumOk: true });
    expect([e[h.l4], e[h.l4 + 1], u16(e, h.l4 + 6)]).toEqual([3, 4, 1400]);
    expect(l4ChecksumOk(e, 14)).toBe(true);
    // the quote is now exactly the pod's SYN as it left the pod's hop (TTL 63), checksums valid
    expect(hex(e.subarray(h.l4 + 8))).toBe(hex(forwarded(podIn[0].bytes)));
    expect(runs.errors.counters['snat4-out2in: translated-icmp-error']).toBe(3);
    expect(runs.errors.counters['snat4-out2in: no-translation']).toBe(1);
    expect(runs.errors.tx('uplink')).toEqual([]);
  });

  it('time exceeded quoting 28 bytes of the UDP datagram: quote restored (port and UDP checksum)', () => {
    const e = runs.errors.tx('cali-a65')[1].bytes;
    const h = ip4At(e, 14);
    expect([e[h.l4], e[h.l4 + 1]]).toEqual([11, 0]);
    expect(l4ChecksumOk(e, 14)).toBe(true);
    expect(hex(e.subarray(h.l4 + 8))).toBe(hex(forwarded(podIn[1].bytes).subarray(0, 28)));
  });

  it('host unreachable about the ping: quoted IP header and identifier restored', () => {
    const e = runs.errors.tx('cali-a65')[2].bytes;
    const h = ip4At(e, 14);
    expect([e[h.l4], e[h.l4 + 1]]).toEqual([3, 1]);
    expect(l4ChecksumOk(e, 14)).toBe(true);
    const q = e.subarray(h.l4 + 8);
    const want = forwarded(podIn[2].bytes);
    expect(ip4At(q, 0)).toMatchObject({ src: POD, dst: PING_DST, csumOk: true });
    expect(u16(q, 20 + 4)).toBe(0x1234);
    // everything, the quoted ICMP checksum included
    const strip = (x: Uint8Array) => hex(x.subarray(0, 22)) + hex(x.subarray(24));
    expect(strip(q)).toBe(strip(want));
  });

  it('host unreachable about the ping: the quoted echo request verifies (its checksum fixed)', () => {
    const e = runs.errors.tx('cali-a65')[2].bytes;
    const h = ip4At(e, 14);
    expect(hex(e.subarray(h.l4 + 8))).toBe(hex(forwarded(podIn[2].bytes)));
  });

  it('scapy and tshark: every checksum of the translated errors verifies, quotes decoded', () => {
    if (SCAPY_MISSING === null) {
      const fr = scapy[files.errorsPod].frames;
      for (const [k, f] of fr.entries()) {
        for (const [layer, ok] of verdicts(f)) {
          expect(ok, `error ${k + 1} ${layer}`).toBe(true);
        }
      }
      expect(layers(fr[0], 'IPerror')[0]).toMatchObject({ src: POD, dst: TCP_SRV, csum_ok: true });
      expect(layers(fr[0], 'TCPerror')[0]).toMatchObject({ sport: 40000, dport: 80, csum_ok: true });
      expect(layers(fr[1], 'UDPerror')[0]).toMatchObject({ sport: 5353, dport: 5300 });
      expect(layers(fr[2], 'ICMPerror')[0]).toMatchObject({ id: 0x1234 });
    }
    if (TSHARK_MISSING === null) {
      // tshark judges the outer ICMP checksum; quoted headers are not validated by it
      expect(tshark.errorsPod).toEqual([]);
    }
  });
});
