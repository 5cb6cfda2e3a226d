// ARP through the whole graph: Calico's proxy-ARP on workload ports, owned addresses and neighbour
// learning on the uplink, and ip4-arp (hold, request, retry, release, timeout) with a config that has
// no static neighbours.
import { describe, expect, it } from 'vitest';
import {
  Harness,
  clusterYaml,
  GW_IP,
  GW_MAC,
  NAT_IP,
  NODE_B_IP,
  NODE_B_MAC,
  NODE_IP,
  UPLINK_MAC,
  W1,
  W2,
} from './harness.js';
import { arp, BCAST, EE, f, hex, ip, ipCsumOk, mac, ping, udp } from './frames.js';
import { emitArpRequest } from '../../src/dataplane/wire/arp.js';

const CALICO_GW = '169.254.1.1';

function arpRequestBytes(srcMac: string, srcIp: string, target: string): Uint8Array {
  const u8 = new Uint8Array(42);
  emitArpRequest(u8, 0, mac(srcMac), ip(srcIp), ip(target));
  return u8;
}

describe('arp-reply on workload ports', () => {
  it('answers who-has 169.254.1.1 with ee:ee:ee:ee:ee:ee, byte for byte', () => {
    const h = new Harness();
    const out = h.one(W1.port, arp({ sha: W1.mac, spa: W1.ip, tpa: CALICO_GW }));
    expect(out).toHaveLength(1);
    expect(out[0].port).toBe(W1.port);
    // Ether(dst=W1, src=EE)/ARP(op=2, hwsrc=EE, psrc=169.254.1.1, hwdst=W1, pdst=W1.ip)
    const want = arp({ op: 2, sha: EE, spa: CALICO_GW, tha: W1.mac, tpa: W1.ip });
    expect(hex(out[0].bytes)).toBe(hex(want));
    expect(hex(out[0].bytes)).toBe(
      '0a580a410002eeeeeeeeeeee08060001080006040002eeeeeeeeeeeea9fe01010a580a4100020a410002',
    );
    expect(h.counters()).toEqual({ 'arp-reply: replied': 1 });
    expect(h.txPackets(W1.port)).toBe(1);
    expect(h.txPackets()).toBe(1);
  });

  it('answers for any other address too (another workload, the outside), and unicast to ee', () => {
    const h = new Harness();
    const out = h.run([
      [W1.port, arp({ sha: W1.mac, spa: W1.ip, tpa: W2.ip })],
      [W1.port, arp({ sha: W1.mac, spa: W1.ip, tpa: '8.8.8.8' })],
      [W1.port, arp({ sha: W1.mac, spa: W1.ip, tpa: CALICO_GW, dst: EE })],
      [W2.port, arp({ sha: W2.mac, spa: W2.ip, tpa: CALICO_GW })],
    ]);
    expect(out.map((o) => o.port)).toEqual([W1.port, W1.port, W1.port, W2.port]);
    expect(hex(out[0].bytes)).toBe(hex(arp({ op: 2, sha: EE, spa: W2.ip, tha: W1.mac, tpa: W1.ip })));
    expect(hex(out[1].bytes)).toBe(hex(arp({ op: 2, sha: EE, spa: '8.8.8.8', tha: W1.mac, tpa: W1.ip })));
    expect(hex(out[3].bytes)).toBe(hex(arp({ op: 2, sha: EE, spa: CALICO_GW, tha: W2.mac, tpa: W2.ip })));
    expect(h.c('arp-reply: replied')).toBe(4);
  });

  it('trims Ethernet padding from the reply (60-byte request -> 42-byte reply)', () => {
    const h = new Harness();
    const out = h.one(W1.port, arp({ sha: W1.mac, spa: W1.ip, tpa: CALICO_GW, padTo: 60 }));
    expect(out).toHaveLength(1);
    expect(out[0].bytes.length).toBe(42);
    expect(hex(out[0].bytes)).toBe(hex(arp({ op: 2, sha: EE, spa: CALICO_GW, tha: W1.mac, tpa: W1.ip })));
  });

  it("stays quiet for the workload's own address: probes (RFC 5227) and announcements", () => {
    const h = new Harness();
    const out = h.run([
      [W1.port, arp({ sha: W1.mac, spa: '0.0.0.0', tpa: W1.ip })],
      [W1.port, arp({ sha: W1.mac, spa: W1.ip, tpa: W1.ip })],
    ]);
    expect(out).toEqual([]);
    expect(h.counters()).toEqual({ 'arp-reply: probe-ignored': 1, 'arp-reply: own-address-ignored': 1 });
  });

  it('ignores ARP replies from workloads and learns nothing from them', () => {
    const h = new Harness();
    const out = h.one(W1.port, arp({ op: 2, dst: EE, sha: W1.mac, spa: W1.ip, tha: EE, tpa: CALICO_GW }));
    expect(out).toEqual([]);
    expect(h.counters()).toEqual({ 'arp-reply: ignored': 1 });
  });

  it('drops malformed ARP and ARP unicast to someone else', () => {
    const h = new Harness();
    const good = arp({ sha: W1.mac, spa: W1.ip, tpa: CALICO_GW });
    const badHlen = good.slice();
    badHlen[14 + 4] = 8;
    const badOp = good.slice();
    badOp[14 + 7] = 3;
    const out = h.run([
      [W1.port, good.slice(0, 30)],
      [W1.port, badHlen],
      [W1.port, badOp],
      [W1.port, arp({ sha: W1.mac, spa: W1.ip, tpa: CALICO_GW, dst: '02:00:00:00:00:01' })],
    ]);
    expect(out).toEqual([]);
    expect(h.counters()).toEqual({ 'arp-reply: malformed': 3, 'ethernet-input: not-for-us': 1 });
  });
});

describe('arp-reply on the uplink', () => {
  it('answers only for the addresses calitap owns there (natOutgoingAddress), with the uplink MAC', () => {
    const h = new Harness();
    const out = h.run([
      ['uplink', arp({ sha: GW_MAC, spa: GW_IP, tpa: NAT_IP, padTo: 60 })],
      ['uplink', arp({ sha: GW_MAC, spa: GW_IP, tpa: NAT_IP, dst: UPLINK_MAC })],
      // the node IP belongs to the host kernel: it answers, not us
      ['uplink', arp({ sha: GW_MAC, spa: GW_IP, tpa: NODE_IP })],
      ['uplink', arp({ sha: GW_MAC, spa: GW_IP, tpa: '10.0.0.77' })],
      ['uplink', arp({ sha: GW_MAC, spa: GW_IP, tpa: CALICO_GW })],
    ]);
    expect(out).toHaveLength(2);
    const want = hex(arp({ op: 2, sha: UPLINK_MAC, spa: NAT_IP, tha: GW_MAC, tpa: GW_IP }));
    for (const o of out) {
      expect(o.port).toBe('uplink');
      expect(hex(o.bytes)).toBe(want);
    }
    expect(h.counters()).toEqual({ 'arp-reply: replied': 2, 'arp-reply: not-ours': 3 });
  });

  it('defends an owned address against a probe (reply to the prober, tpa 0.0.0.0)', () => {
    const h = new Harness();
    const out = h.one('uplink', arp({ sha: '02:00:00:00:00:99', spa: '0.0.0.0', tpa: NAT_IP }));
    expect(out).toHaveLength(1);
    expect(f.dstMac(out[0].bytes)).toBe('02:00:00:00:00:99');
    expect(hex(out[0].bytes)).toBe(
      hex(arp({ op: 2, sha: UPLINK_MAC, spa: NAT_IP, tha: '02:00:00:00:00:99', tpa: '0.0.0.0' })),
    );
  });

  it('never overwrites a static neighbour from ARP', () => {
    const h = new Harness();
    h.one(
      'uplink',
      arp({ op: 2, dst: UPLINK_MAC, sha: '02:66:66:66:66:66', spa: GW_IP, tha: UPLINK_MAC, tpa: NODE_IP }),
    );
    expect(h.c('arp-reply: learned')).toBe(0);
    const out = h.one(W1.port, udp({ ethSrc: W1.mac, src: W1.ip, dst: '192.0.2.10' }));
    expect(f.dstMac(out[0].bytes)).toBe(GW_MAC);
  });
});

describe('neighbour resolution without static neighbours (ip4-arp)', () => {
  const yaml = clusterYaml({ staticNeighbors: false });
  const toOutside = (id = 1, ttl = 64) =>
    udp({ ethSrc: W1.mac, src: W1.ip, dst: '192.0.2.10', id, ttl, sport: 40000 + id });
  const gwReply = (sha = GW_MAC) =>
    arp({ op: 2, dst: UPLINK_MAC, sha, spa: GW_IP, tha: UPLINK_MAC, tpa: NODE_IP });

  it('holds the packet, asks on the uplink with our MAC and node IP, releases on the reply', () => {
    const h = new Harness({ yaml, fresh: true });
    const pkt = toOutside();
    const out1 = h.one(W1.port, pkt, 100);
    expect(out1).toHaveLength(1);
    expect(out1[0].port).toBe('uplink');
    // Ether(dst=ff.., src=uplink)/ARP(op=1, hwsrc=uplink, psrc=node IP, hwdst=00.., pdst=gateway)
    expect(hex(out1[0].bytes)).toBe(hex(arpRequestBytes(UPLINK_MAC, NODE_IP, GW_IP)));
    expect(hex(out1[0].bytes)).toBe(
      'ffffffffffff52540000000a0806000108000604000152540000000a0a0000010000000000000a0000fe',
    );
    expect(f.dstMac(out1[0].bytes)).toBe(BCAST);
    expect(h.counters()).toEqual({
      'ip4-rewrite: neighbor-unresolved': 1,
      'ip4-arp: held': 1,
      'ip4-arp: request-sent': 1,
    });

    const out2 = h.one('uplink', gwReply(), 100.2);
    expect(out2).toHaveLength(1);
    const fwd = out2[0].bytes;
    expect(out2[0].port).toBe('uplink');
    expect(f.dstMac(fwd)).toBe(GW_MAC);
    expect(f.srcMac(fwd)).toBe(UPLINK_MAC);
    expect(f.ttl(fwd)).toBe(63);
    expect(ipCsumOk(fwd)).toBe(true);
    // everything after the Ethernet header but TTL and checksum is the original packet
    const want = pkt.slice(12);
    want[22 - 12] = 63;
    want[24 - 12] = fwd[24];
    want[25 - 12] = fwd[25];
    expect(hex(fwd.slice(12))).toBe(hex(want));
    expect(h.c('arp-reply: learned')).toBe(1);
    expect(h.c('ip4-arp: released')).toBe(1);
    expect(h.c('arp-reply: ignored')).toBe(1);
    const e = h.prog.env.nbr.entries().find((x) => x.ip === ip(GW_IP));
    expect(e).toEqual({ ip: ip(GW_IP), state: 'reachable', mac: GW_MAC });

    // later packets go straight out, no new request
    const out3 = h.one(W1.port, toOutside(2), 101);
    expect(out3).toHaveLength(1);
    expect(f.dstMac(out3[0].bytes)).toBe(GW_MAC);
    expect(h.c('ip4-arp: request-sent')).toBe(1);
  });

  it('resolves a learned MAC change (a later reply from the same tracked IP)', () => {
    const h = new Harness({ yaml, fresh: true });
    h.one(W1.port, toOutside(), 0);
    h.one('uplink', gwReply(), 0.1);
    h.one('uplink', gwReply('52:54:00:00:00:fd'), 0.2);
    const out = h.one(W1.port, toOutside(2), 0.3);
    expect(f.dstMac(out[0].bytes)).toBe('52:54:00:00:00:fd');
  });

  it('holds at most 4 packets per neighbour: the rest are hold-full; one request only', () => {
    const h = new Harness({ yaml, fresh: true });
    const frames: [string, Uint8Array][] = [];
    for (let k = 1; k <= 6; k++) frames.push([W1.port, toOutside(k)]);
    const out = h.run(frames, 0);
    expect(out).toHaveLength(1);
    expect(h.counters()).toEqual({
      'ip4-rewrite: neighbor-unresolved': 6,
      'ip4-arp: held': 4,
      'ip4-arp: hold-full': 2,
      'ip4-arp: request-sent': 1,
    });
    const rel = h.one('uplink', gwReply(), 0.5);
    expect(rel).toHaveLength(4);
    // released in arrival order, ids 1..4
    expect(rel.map((o) => f.id(o.bytes))).toEqual([1, 2, 3, 4]);
    for (const o of rel) {
      expect(f.dstMac(o.bytes)).toBe(GW_MAC);
      expect(ipCsumOk(o.bytes)).toBe(true);
    }
  });

  it('each neighbour has its own queue and its own request', () => {
    const h = new Harness({ yaml, fresh: true });
    const out = h.run(
      [
        [W1.port, toOutside(1)],
        [W1.port, ping({ ethSrc: W1.mac, src: W1.ip, dst: '10.65.0.70' })],
      ],
      0,
    );
    expect(out.map((o) => hex(o.bytes))).toEqual([
      hex(arpRequestBytes(UPLINK_MAC, NODE_IP, GW_IP)),
      hex(arpRequestBytes(UPLINK_MAC, NODE_IP, NODE_B_IP)),
    ]);
    const rel = h.one(
      'uplink',
      arp({ op: 2, dst: UPLINK_MAC, sha: NODE_B_MAC, spa: NODE_B_IP, tha: UPLINK_MAC, tpa: NODE_IP }),
      0.1,
    );
    expect(rel).toHaveLength(1);
    expect(f.dst(rel[0].bytes)).toBe('10.65.0.70');
    expect(f.dstMac(rel[0].bytes)).toBe(NODE_B_MAC);
    expect(h.c('ip4-arp: held')).toBe(2);
    expect(h.c('ip4-arp: released')).toBe(1);
  });

  it('retries every arpInterval and gives up after arpRetries requests (arp-timeout)', () => {
    const h = new Harness({ yaml, fresh: true });
    const frames: [string, Uint8Array][] = [];
    for (let k = 1; k <= 3; k++) frames.push([W1.port, toOutside(k)]);
    const sent: number[] = [];
    const reqs = (o: { bytes: Uint8Array }[]) => o.filter((x) => f.ethType(x.bytes) === 0x0806).length;
    sent.push(reqs(h.run(frames, 10)));
    for (const t of [10.5, 10.99, 11, 11.5, 12, 12.5]) sent.push(reqs(h.tick(t)));
    // first request at 10, retries at 11 and 12: 3 requests = arpRetries (default 3)
    expect(sent).toEqual([1, 0, 0, 1, 0, 1, 0]);
    expect(h.c('ip4-arp: arp-timeout')).toBe(0);
    expect(h.tick(13)).toEqual([]);
    expect(h.c('ip4-arp: arp-timeout')).toBe(3);
    expect(h.c('ip4-arp: request-sent')).toBe(3);
    // retransmissions are the same request
    const arps = h.sent.filter((x) => f.ethType(x.bytes) === 0x0806);
    for (const a of arps) expect(hex(a.bytes)).toBe(hex(arpRequestBytes(UPLINK_MAC, NODE_IP, GW_IP)));
    // a late reply releases nothing (the packets are gone), later ticks send nothing
    expect(h.one('uplink', gwReply(), 13.5)).toEqual([]);
    expect(h.tick(20)).toEqual([]);
    expect(h.c('ip4-arp: released')).toBe(0);
    // ...but the MAC was learned: traffic now flows
    const out = h.one(W1.port, toOutside(9), 21);
    expect(f.dstMac(out[0].bytes)).toBe(GW_MAC);
  });

  it('honours arpRetries / arpInterval parameters', () => {
    const h = new Harness({ yaml, fresh: true, params: { arpRetries: 2, arpInterval: 0.25 } });
    h.run([[W1.port, toOutside()]], 0);
    for (const t of [0.1, 0.25, 0.3, 0.5]) h.tick(t);
    expect(h.c('ip4-arp: request-sent')).toBe(2);
    expect(h.c('ip4-arp: arp-timeout')).toBe(1);
  });

  it('a new packet after a timeout starts a new resolution', () => {
    const h = new Harness({ yaml, fresh: true });
    h.run([[W1.port, toOutside()]], 0);
    for (const t of [1, 2, 3]) h.tick(t);
    expect(h.c('ip4-arp: arp-timeout')).toBe(1);
    const out = h.one(W1.port, toOutside(2), 4);
    expect(out).toHaveLength(1);
    expect(hex(out[0].bytes)).toBe(hex(arpRequestBytes(UPLINK_MAC, NODE_IP, GW_IP)));
    expect(h.c('ip4-arp: request-sent')).toBe(4);
  });

  it('finish() counts what is still held as unresolved-at-exit', () => {
    const h = new Harness({ yaml, fresh: true });
    h.run(
      [
        [W1.port, toOutside(1)],
        [W1.port, toOutside(2)],
      ],
      0,
    );
    expect(h.finish()).toEqual([]);
    expect(h.c('ip4-arp: unresolved-at-exit')).toBe(2);
  });

  it('TTL 1 toward an unresolved next hop', () => {
    const h = new Harness({ yaml, fresh: true });
    const out = h.run([[W1.port, toOutside(1, 1)]], 0);
    expect(out).toHaveLength(1);
    // TTL (and MTU/DF) are checked before the neighbour is resolved, as Linux's ip_forward() does
    expect(out[0].port).toBe(W1.port);
    expect(out[0].bytes[34]).toBe(11); // ICMP time exceeded back to the workload
    expect(h.c('ip4-arp: request-sent')).toBe(0);
  });

  it('an unsolicited ARP reply from an unknown IP creates nothing', () => {
    const h = new Harness({ yaml, fresh: true });
    const before = h.prog.env.nbr.entries();
    const out = h.one(
      'uplink',
      arp({
        op: 2,
        dst: UPLINK_MAC,
        sha: '02:00:00:00:00:77',
        spa: '10.0.0.77',
        tha: UPLINK_MAC,
        tpa: NODE_IP,
      }),
    );
    expect(out).toEqual([]);
    expect(h.prog.env.nbr.entries()).toEqual(before);
    expect(h.prog.env.nbr.find(ip('10.0.0.77'))).toBe(-1);
    expect(h.counters()).toEqual({ 'arp-reply: ignored': 1 });
  });

  it('a request from a tracked next hop also teaches us its MAC (and is not answered unless owned)', () => {
    const h = new Harness({ yaml, fresh: true });
    h.one(W1.port, toOutside(), 0);
    const out = h.one('uplink', arp({ sha: GW_MAC, spa: GW_IP, tpa: NODE_IP }), 0.1);
    expect(out).toHaveLength(1);
    expect(f.ethType(out[0].bytes)).toBe(0x0800);
    expect(f.dstMac(out[0].bytes)).toBe(GW_MAC);
    expect(h.c('arp-reply: learned')).toBe(1);
    expect(h.c('arp-reply: not-ours')).toBe(1);
  });
});
