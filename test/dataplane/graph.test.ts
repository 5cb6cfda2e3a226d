// IPv4 forwarding through the whole core graph, in memory: classification, ip4-input validation,
// martians, anti-spoofing, every route kind, no reflection, TTL and its checksum.
import { describe, expect, it } from 'vitest';
import { Harness, GW_MAC, NAT_IP, NODE_B_MAC, NODE_IP, UPLINK_MAC, W1, W2 } from './harness.js';
import { EE, f, hex, ip4, ipCsumOk, ipCsumRecomputed, ping, sum16, udp, udpCsumOk, udpL4 } from './frames.js';
import { IPPROTO_IPIP, IPPROTO_TCP, IPPROTO_UDP } from '../../src/dataplane/wire/ipv4.js';

/** What a router must make of `input`: new MACs, TTL - 1, header checksum recomputed from scratch. */
function forwarded(input: Uint8Array, dstMac: string, srcMac: string, ipLen = input.length - 14): string {
  const want = input.slice(0, 14 + ipLen);
  want.set(
    dstMac.split(':').map((b) => parseInt(b, 16)),
    0,
  );
  want.set(
    srcMac.split(':').map((b) => parseInt(b, 16)),
    6,
  );
  want[22]--;
  const c = ipCsumRecomputed(want);
  want[24] = c >>> 8;
  want[25] = c & 255;
  return hex(want);
}

const fromW1 = (dst: string, extra: Partial<Parameters<typeof udp>[0]> = {}) =>
  udp({ ethSrc: W1.mac, src: W1.ip, dst, ...extra });
const fromUplink = (src: string, dst: string, extra: Partial<Parameters<typeof udp>[0]> = {}) =>
  udp({ ethSrc: GW_MAC, ethDst: UPLINK_MAC, src, dst, ...extra });

describe('ethernet-input', () => {
  it('drops short, VLAN-tagged, IPv6, unknown ethertypes and IPv4 not sent to our MAC', () => {
    const h = new Harness();
    const good = fromW1(W2.ip);
    const vlan = new Uint8Array(good.length + 4);
    vlan.set(good.subarray(0, 12), 0);
    vlan.set([0x81, 0x00, 0x00, 0x05], 12);
    vlan.set(good.subarray(12), 16);
    const v6 = good.slice();
    v6[12] = 0x86;
    v6[13] = 0xdd;
    const lldp = good.slice();
    lldp[12] = 0x88;
    lldp[13] = 0xcc;
    const qinq = vlan.slice();
    qinq[12] = 0x88;
    qinq[13] = 0xa8;
    const other = good.slice();
    other.set([2, 0, 0, 0, 0, 1], 0);
    const bcast = good.slice();
    bcast.fill(0xff, 0, 6);
    const out = h.run([
      [W1.port, good.slice(0, 13)],
      [W1.port, new Uint8Array(0)],
      [W1.port, vlan],
      [W1.port, qinq],
      [W1.port, v6],
      [W1.port, lldp],
      [W1.port, other],
      [W1.port, bcast],
      // uplink MAC is not ee: a frame to ee on the uplink is not for us
      ['uplink', udp({ ethSrc: GW_MAC, ethDst: EE, src: '10.65.0.70', dst: W1.ip })],
    ]);
    expect(out).toEqual([]);
    expect(h.counters()).toEqual({
      'ethernet-input: short': 2,
      'ethernet-input: vlan-tagged': 2,
      'ethernet-input: ipv6-unsupported': 1,
      'ethernet-input: unsupported-ethertype': 1,
      'ethernet-input: not-for-us': 3,
    });
    const pc = h.g.graph.portCounters;
    expect(pc.rxPackets[h.port(W1.port)]).toBe(8);
    expect(pc.rxPackets[h.port('uplink')]).toBe(1);
  });
});

describe('ip4-input validation', () => {
  const base = () => fromW1(W2.ip, { payload: new Uint8Array(12).fill(7) });

  it('counts each ip4Check reason', () => {
    const h = new Harness();
    const mk = (edit: (u8: Uint8Array) => void, len?: number): Uint8Array => {
      const u8 = base();
      edit(u8);
      return len === undefined ? u8 : u8.slice(0, len);
    };
    const cases: [string, Uint8Array][] = [
      ['short', mk(() => {}, 14 + 19)],
      ['bad-version', mk((u) => (u[14] = 0x65))],
      ['bad-ihl', mk((u) => (u[14] = 0x44))],
      // IHL 15 = 60 bytes, but only 20 + 8 + 12 = 40 bytes of IP in the frame
      ['header-beyond-frame', mk((u) => (u[14] = 0x4f))],
      ['total-length-short', mk((u) => ((u[16] = 0), (u[17] = 19)))],
      ['truncated', mk(() => {}, 14 + 39)],
      ['bad-checksum', mk((u) => (u[25] ^= 1))],
    ];
    for (const [, frame] of cases) h.one(W1.port, frame);
    expect(h.sent).toEqual([]);
    const want: Record<string, number> = {};
    for (const [r] of cases) want[`ip4-input: ${r}`] = 1;
    expect(h.counters()).toEqual(want);
  });

  it('a lying total length (beyond the frame) is truncated even with a correct checksum', () => {
    const h = new Harness();
    const u8 = base();
    u8[17] += 4;
    const c = ipCsumRecomputed(u8);
    u8[24] = c >>> 8;
    u8[25] = c & 255;
    expect(h.one(W1.port, u8)).toEqual([]);
    expect(h.counters()).toEqual({ 'ip4-input: truncated': 1 });
  });

  it('forwards packets with IP options, options intact, TTL and checksum right', () => {
    const h = new Harness();
    // record route (RFC 791 §3.1), 11 bytes + end of options
    const opts = Uint8Array.from([7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const input = fromW1(W2.ip, { options: opts, ttl: 17 });
    expect(f.ihl(input)).toBe(32);
    const out = h.one(W1.port, input);
    expect(out).toHaveLength(1);
    const o = out[0].bytes;
    expect(out[0].port).toBe(W2.port);
    expect(f.ttl(o)).toBe(16);
    expect(ipCsumOk(o)).toBe(true);
    expect(hex(o.slice(34, 46))).toBe(hex(opts));
    expect(hex(o)).toBe(forwarded(input, W2.mac, EE));
    expect(udpCsumOk(o)).toBe(true);
  });

  it('trims Ethernet padding: a 60-byte frame carrying 28 bytes of IP leaves as 42 bytes', () => {
    const h = new Harness();
    const input = fromW1(W2.ip, { payload: new Uint8Array(0), padTo: 60 });
    input.fill(0xa5, 42);
    expect(input.length).toBe(60);
    const out = h.one(W1.port, input);
    expect(out).toHaveLength(1);
    expect(out[0].bytes.length).toBe(42);
    expect(hex(out[0].bytes)).toBe(forwarded(input, W2.mac, EE, 28));
    expect(h.g.graph.portCounters.txBytes[h.port(W2.port)]).toBe(42);
  });

  it('drops martian sources and destinations', () => {
    const h = new Harness();
    const srcs = ['0.1.2.3', '127.0.0.1', '224.0.0.5', '240.0.0.1', '255.255.255.255'];
    const dsts = ['0.0.0.0', '127.0.0.1', '224.0.0.251', '239.1.1.1', '255.255.255.255'];
    for (const s of srcs) h.one('uplink', fromUplink(s, W1.ip));
    for (const d of dsts) h.one('uplink', fromUplink('192.0.2.1', d));
    for (const d of dsts) h.one(W1.port, fromW1(d));
    expect(h.sent).toEqual([]);
    expect(h.counters()).toEqual({
      'ip4-input: martian-source': srcs.length,
      'ip4-input: martian-destination': dsts.length * 2,
    });
  });
});

describe('ip4-spoof-check', () => {
  it('a workload may only source its own addresses', () => {
    const h = new Harness();
    const out = h.run([
      [W1.port, udp({ ethSrc: W1.mac, src: W2.ip, dst: W2.ip })],
      [W1.port, udp({ ethSrc: W1.mac, src: '10.65.0.99', dst: '192.0.2.1' })],
      [W2.port, udp({ ethSrc: W2.mac, src: W1.ip, dst: W1.ip })],
      [W2.port, udp({ ethSrc: W2.mac, src: W2.ip, dst: W1.ip })],
    ]);
    expect(out.map((o) => o.port)).toEqual([W1.port]);
    expect(h.counters()).toEqual({ 'ip4-spoof-check: spoofed-source': 3 });
  });

  it('drops IPIP and VXLAN (UDP to 4789) sent by workloads; other UDP passes', () => {
    const h = new Harness();
    const inner = udp({ ethSrc: W1.mac, src: W1.ip, dst: '10.65.0.70' }).slice(14);
    const out = h.run([
      [W1.port, ip4({ ethSrc: W1.mac, ipSrc: W1.ip, ipDst: '10.0.0.2', proto: IPPROTO_IPIP, l4: inner })],
      [W1.port, fromW1('10.0.0.2', { sport: 12345, dport: 4789 })],
      [W1.port, fromW1('10.65.0.70', { sport: 4789, dport: 4790 })],
    ]);
    expect(out).toHaveLength(1);
    expect(h.counters()).toEqual({
      'ip4-spoof-check: ipip-from-workload': 1,
      'ip4-spoof-check: vxlan-from-workload': 1,
    });
  });
});

describe('ip4-lookup and ip4-rewrite: routes', () => {
  it('local: workload to workload on this node (dst = workload MAC, src = ee)', () => {
    const h = new Harness();
    const input = ping({ ethSrc: W1.mac, src: W1.ip, dst: W2.ip, ttl: 64 });
    const out = h.one(W1.port, input);
    expect(out).toHaveLength(1);
    expect(out[0].port).toBe(W2.port);
    expect(f.dstMac(out[0].bytes)).toBe(W2.mac);
    expect(f.srcMac(out[0].bytes)).toBe(EE);
    expect(hex(out[0].bytes)).toBe(forwarded(input, W2.mac, EE));
    expect(h.counters()).toEqual({});
    expect(h.txPackets(W2.port)).toBe(1);
  });

  it('direct: to node-b block via its static neighbour MAC', () => {
    const h = new Harness();
    const input = fromW1('10.65.0.70');
    const out = h.one(W1.port, input);
    expect(out.map((o) => o.port)).toEqual(['uplink']);
    expect(hex(out[0].bytes)).toBe(forwarded(input, NODE_B_MAC, UPLINK_MAC));
  });

  it('gateway: outside every pool via the gateway', () => {
    const h = new Harness();
    const input = fromW1('192.0.2.10');
    const out = h.one(W1.port, input);
    expect(out.map((o) => o.port)).toEqual(['uplink']);
    expect(hex(out[0].bytes)).toBe(forwarded(input, GW_MAC, UPLINK_MAC));
  });

  it('blackhole: an unused address of our own block is dropped silently', () => {
    const h = new Harness();
    expect(h.one(W1.port, fromW1('10.65.0.10'))).toEqual([]);
    expect(h.one('uplink', fromUplink('10.65.0.70', '10.65.0.63'))).toEqual([]);
    expect(h.counters()).toEqual({ 'ip4-lookup: blackhole': 2 });
  });

  it('from the uplink: delivered to local workloads only (no reflection)', () => {
    const h = new Harness();
    const toW1 = fromUplink('10.65.0.70', W1.ip, { ttl: 63 });
    const out = h.run([
      ['uplink', toW1],
      ['uplink', fromUplink('192.0.2.50', '10.65.0.70')],
      ['uplink', fromUplink('192.0.2.50', '198.51.100.1')],
      ['uplink', fromUplink('10.65.0.70', '10.65.0.130')],
    ]);
    expect(out.map((o) => o.port)).toEqual([W1.port]);
    expect(hex(out[0].bytes)).toBe(forwarded(toW1, W1.mac, EE));
    expect(h.counters()).toEqual({ 'ip4-lookup: not-for-local-workload': 3 });
  });

  it("the node's own addresses are the host's business (not-ours)", () => {
    const h = new Harness();
    expect(h.one('uplink', fromUplink('10.0.0.2', NODE_IP, { dport: 179 }))).toEqual([]);
    expect(h.one('uplink', fromUplink('192.0.2.1', NAT_IP))).toEqual([]);
    expect(h.counters()).toEqual({ 'ip4-input: not-ours': 2 });
  });

  it("a workload's packets to the node's own addresses", () => {
    const h = new Harness();
    const out = h.run([
      [W1.port, fromW1(NODE_IP)],
      [W1.port, fromW1(NAT_IP)],
    ]);
    // the host's kernel owns these addresses and calitap cannot hand it packets: dropped and counted,
    // never hair-pinned to the router
    expect(out).toEqual([]);
    expect(h.counters()).toEqual({ 'ip4-input: to-host-unsupported': 2 });
  });

  it('TTL is decremented with a correct checksum for every TTL value and TOS', () => {
    const h = new Harness();
    for (let ttl = 2; ttl <= 255; ttl += 1) {
      const input = fromW1('192.0.2.10', { ttl, id: ttl * 257 });
      input[15] = ttl & 0xfc;
      // re-seal the header after the TOS change
      const c = ipCsumRecomputed(input);
      input[24] = c >>> 8;
      input[25] = c & 255;
      const out = h.one(W1.port, input);
      expect(out).toHaveLength(1);
      const o = out[0].bytes;
      expect(f.ttl(o)).toBe(ttl - 1);
      expect(f.ipCsum(o)).toBe(ipCsumRecomputed(o));
      expect(sum16(o, 14, 20)).toBe(0xffff);
    }
  });

  it('leaves L4 alone (TCP and UDP payload bytes unchanged)', () => {
    const h = new Harness();
    const tcp = ip4({
      ethSrc: W1.mac,
      ipSrc: W1.ip,
      ipDst: '192.0.2.10',
      proto: IPPROTO_TCP,
      l4: Uint8Array.from({ length: 40 }, (_, k) => k),
    });
    const u = ip4({
      ethSrc: W1.mac,
      ipSrc: W1.ip,
      ipDst: '192.0.2.10',
      proto: IPPROTO_UDP,
      l4: udpL4(W1.ip, '192.0.2.10', 1, 2, new Uint8Array(100).fill(3)),
    });
    const out = h.run([
      [W1.port, tcp],
      [W1.port, u],
    ]);
    expect(hex(out[0].bytes.slice(34))).toBe(hex(tcp.slice(34)));
    expect(hex(out[1].bytes.slice(34))).toBe(hex(u.slice(34)));
    expect(udpCsumOk(out[1].bytes)).toBe(true);
  });

  it('keeps batch order per port and counts rx/tx per port', () => {
    const h = new Harness();
    const frames: [string, Uint8Array][] = [];
    for (let k = 0; k < 200; k++) {
      const dst = [W2.ip, '10.65.0.70', '192.0.2.10', '10.65.0.10'][k % 4];
      frames.push([W1.port, fromW1(dst, { id: k })]);
    }
    const out = h.run(frames);
    expect(out).toHaveLength(150);
    for (const port of [W2.port, 'uplink']) {
      const ids = out.filter((o) => o.port === port).map((o) => f.id(o.bytes));
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
    }
    const pc = h.g.graph.portCounters;
    expect(pc.rxPackets[h.port(W1.port)]).toBe(200);
    expect(pc.txPackets[h.port(W2.port)]).toBe(50);
    expect(pc.txPackets[h.port('uplink')]).toBe(100);
    expect(h.counters()).toEqual({ 'ip4-lookup: blackhole': 50 });
  });
});
