// ICMP errors the graph generates: time exceeded (TTL ≤ 1), fragmentation needed (DF and larger than
// the path MTU), the rate limit, and the RFC 1812 §4.3.2.7 "never about an ICMP error" rules.
import { describe, expect, it } from 'vitest';
import { Harness, clusterYaml, GW_MAC, NODE_IP, UPLINK_MAC, W1, W2 } from './harness.js';
import { EE, f, hex, icmpCsumOk, ipCsumOk, ipCsumRecomputed, ping, udp } from './frames.js';

/** Rewrites the IPv4 header checksum after a test edited the header. */
function reseal(u8: Uint8Array): void {
  const c = ipCsumRecomputed(u8);
  u8[24] = c >>> 8;
  u8[25] = c & 255;
}

const fromW1 = (dst: string, extra: Partial<Parameters<typeof udp>[0]> = {}) =>
  udp({ ethSrc: W1.mac, src: W1.ip, dst, ...extra });

/** Checks an ICMP error frame: headers, checksums, and that it quotes `orig`'s IP datagram. */
function expectIcmpError(
  o: Uint8Array,
  orig: Uint8Array,
  want: { type: number; code: number; mtu?: number; dstMac: string; srcMac: string; to: string },
): void {
  expect(f.dstMac(o)).toBe(want.dstMac);
  expect(f.srcMac(o)).toBe(want.srcMac);
  expect(f.ethType(o)).toBe(0x0800);
  expect(f.ihl(o)).toBe(20);
  expect(f.src(o)).toBe(NODE_IP);
  expect(f.dst(o)).toBe(want.to);
  expect(f.proto(o)).toBe(1);
  expect(f.ttl(o)).toBe(64);
  expect(f.fragWord(o) & 0x4000).toBe(0);
  expect(f.tos(o)).toBe(0xc0 | (orig[15] & 0x1e));
  expect(ipCsumOk(o)).toBe(true);
  expect(icmpCsumOk(o)).toBe(true);
  expect(o[34]).toBe(want.type);
  expect(o[35]).toBe(want.code);
  // bytes 36-37 checksum (checked above), 38-39 unused, 40-41 next-hop MTU (RFC 1191 §4)
  expect((o[38] << 8) | o[39]).toBe(0);
  expect((o[40] << 8) | o[41]).toBe(want.mtu ?? 0);
  const origIpLen = (orig[16] << 8) | orig[17];
  const quoteLen = Math.min(origIpLen, 576 - 28);
  expect(f.totLen(o)).toBe(28 + quoteLen);
  expect(o.length).toBe(14 + 28 + quoteLen);
  // the quote is the original datagram as received (original TTL and checksum)
  expect(hex(o.slice(42))).toBe(hex(orig.slice(14, 14 + quoteLen)));
}

/** Checks that `frags` are valid RFC 791 fragments of `orig` (forwarded: TTL - 1) within `mtu`. */
function expectFragmentsOf(
  frags: Uint8Array[],
  orig: Uint8Array,
  mtu: number,
  dstMac: string,
  srcMac: string,
) {
  const ohl = f.ihl(orig);
  const payload = orig.slice(14 + ohl, 14 + f.totLen(orig));
  const got = new Uint8Array(payload.length);
  let covered = 0;
  frags.forEach((fr, k) => {
    expect(f.dstMac(fr)).toBe(dstMac);
    expect(f.srcMac(fr)).toBe(srcMac);
    expect(f.totLen(fr)).toBeLessThanOrEqual(mtu);
    expect(fr.length).toBe(14 + f.totLen(fr));
    expect(ipCsumOk(fr)).toBe(true);
    expect(f.ttl(fr)).toBe(f.ttl(orig) - 1);
    expect(f.id(fr)).toBe(f.id(orig));
    expect(f.src(fr)).toBe(f.src(orig));
    expect(f.dst(fr)).toBe(f.dst(orig));
    expect(f.proto(fr)).toBe(f.proto(orig));
    const word = f.fragWord(fr);
    const offset = (word & 0x1fff) * 8;
    const mf = (word & 0x2000) !== 0;
    expect(mf).toBe(k < frags.length - 1);
    const hl = f.ihl(fr);
    const data = fr.slice(14 + hl, 14 + f.totLen(fr));
    if (mf) expect(data.length % 8).toBe(0);
    expect(offset).toBe(covered);
    got.set(data, offset);
    covered += data.length;
  });
  expect(covered).toBe(payload.length);
  expect(hex(got)).toBe(hex(payload));
}

describe('TTL exceeded', () => {
  it('TTL 1 from a workload: time exceeded from the node IP back to the workload', () => {
    const h = new Harness();
    const input = fromW1('10.65.0.70', { ttl: 1, sport: 33434, dport: 33435 });
    const out = h.one(W1.port, input);
    expect(out).toHaveLength(1);
    expect(out[0].port).toBe(W1.port);
    expectIcmpError(out[0].bytes, input, { type: 11, code: 0, dstMac: W1.mac, srcMac: EE, to: W1.ip });
    expect(h.counters()).toEqual({
      'ip4-rewrite: ttl-exceeded': 1,
      'ip4-icmp-error: sent-time-exceeded': 1,
    });
    expect(h.txPackets('uplink')).toBe(0);
  });

  it('TTL 0 and TTL 1 toward every kind of route; TTL 2 still goes through with TTL 1', () => {
    const h = new Harness();
    for (const dst of [W2.ip, '10.65.0.70', '192.0.2.10']) {
      for (const ttl of [0, 1]) {
        const input = fromW1(dst, { ttl });
        const out = h.one(W1.port, input);
        expect(out.map((o) => o.port)).toEqual([W1.port]);
        expectIcmpError(out[0].bytes, input, { type: 11, code: 0, dstMac: W1.mac, srcMac: EE, to: W1.ip });
      }
      const out = h.one(W1.port, fromW1(dst, { ttl: 2 }));
      expect(f.ttl(out[0].bytes)).toBe(1);
      expect(ipCsumOk(out[0].bytes)).toBe(true);
    }
  });

  it('TTL 1 from the uplink to a workload: the error goes back out through the gateway', () => {
    const h = new Harness();
    const input = udp({ ethSrc: GW_MAC, ethDst: UPLINK_MAC, src: '192.0.2.50', dst: W1.ip, ttl: 1 });
    input[15] = 0x1f; // TOS: the error keeps bits 0x1e under precedence 6
    reseal(input);
    const out = h.one('uplink', input);
    expect(out.map((o) => o.port)).toEqual(['uplink']);
    expect(f.tos(out[0].bytes)).toBe(0xde);
    expectIcmpError(out[0].bytes, input, {
      type: 11,
      code: 0,
      dstMac: GW_MAC,
      srcMac: UPLINK_MAC,
      to: '192.0.2.50',
    });
  });

  it('quotes the original header with its options', () => {
    const h = new Harness();
    const input = fromW1(W2.ip, { ttl: 1, options: Uint8Array.from([7, 7, 4, 0, 0, 0, 0, 0]) });
    const out = h.one(W1.port, input);
    expect(out).toHaveLength(1);
    expectIcmpError(out[0].bytes, input, { type: 11, code: 0, dstMac: W1.mac, srcMac: EE, to: W1.ip });
  });

  it('quotes at most 548 bytes of a large original (error datagram ≤ 576 bytes)', () => {
    const h = new Harness();
    const input = fromW1('192.0.2.10', { ttl: 1, payload: new Uint8Array(1000).map((_, k) => k) });
    const out = h.one(W1.port, input);
    expect(out).toHaveLength(1);
    expect(f.totLen(out[0].bytes)).toBe(576);
    expectIcmpError(out[0].bytes, input, { type: 11, code: 0, dstMac: W1.mac, srcMac: EE, to: W1.ip });
  });
});

describe('never an ICMP error about...', () => {
  it('an ICMP error (dest unreachable, time exceeded); echo requests do get one', () => {
    const h = new Harness();
    const out = h.run([
      [W1.port, ping({ ethSrc: W1.mac, src: W1.ip, dst: W2.ip, ttl: 1, type: 3, code: 1 })],
      [W1.port, ping({ ethSrc: W1.mac, src: W1.ip, dst: W2.ip, ttl: 1, type: 11, code: 0 })],
      [W1.port, ping({ ethSrc: W1.mac, src: W1.ip, dst: W2.ip, ttl: 1, type: 8, code: 0 })],
    ]);
    expect(out).toHaveLength(1);
    expect(out[0].bytes[34]).toBe(11);
    expect(h.c('ip4-icmp-error: not-allowed')).toBe(2);
    expect(h.c('ip4-icmp-error: sent-time-exceeded')).toBe(1);
  });

  it('a non-initial fragment', () => {
    const h = new Harness();
    const input = fromW1(W2.ip, { ttl: 1 });
    input[20] = 0x00;
    input[21] = 0x10; // offset 16 * 8
    reseal(input);
    expect(h.one(W1.port, input)).toEqual([]);
    expect(h.counters()).toEqual({ 'ip4-rewrite: ttl-exceeded': 1, 'ip4-icmp-error: not-allowed': 1 });
  });
});

describe('ICMP rate limit (token bucket)', () => {
  it('sends a burst, then counts rate-limited; tokens refill with time up to the burst', () => {
    const h = new Harness({ params: { icmpBurst: 3, icmpRate: 10 } });
    const ttl1 = (k: number) => fromW1(W2.ip, { ttl: 1, id: k });
    const burst = (n: number, t: number) =>
      h.run(
        Array.from({ length: n }, (_, k) => [W1.port, ttl1(k)] as [string, Uint8Array]),
        t,
      ).length;
    expect(burst(5, 100)).toBe(3);
    expect(h.c('ip4-icmp-error: rate-limited')).toBe(2);
    // 0.05 s at 10/s: half a token, nothing
    expect(burst(1, 100.05)).toBe(0);
    // 0.1 s more: 1.5 tokens, one error
    expect(burst(3, 100.15)).toBe(1);
    // a long pause refills to the burst, not beyond
    expect(burst(10, 200)).toBe(3);
    expect(h.c('ip4-icmp-error: sent-time-exceeded')).toBe(7);
    expect(h.c('ip4-icmp-error: rate-limited')).toBe(2 + 1 + 2 + 7);
    expect(h.c('ip4-rewrite: ttl-exceeded')).toBe(19);
  });

  it('defaults to a burst of 50', () => {
    const h = new Harness();
    const frames = Array.from({ length: 60 }, (_, k) => [W1.port, fromW1(W2.ip, { ttl: 1, id: k })]) as [
      string,
      Uint8Array,
    ][];
    expect(h.run(frames, 0)).toHaveLength(50);
    expect(h.c('ip4-icmp-error: rate-limited')).toBe(10);
  });
});

describe('fragmentation needed (DF and larger than the path MTU)', () => {
  const big = (dst: string, ipLen: number, df: boolean) =>
    fromW1(dst, { df, payload: new Uint8Array(ipLen - 28).fill(0x5a) });

  it('1600-byte DF packet to the gateway path (uplink MTU 1500): frag-needed with MTU 1500', () => {
    const h = new Harness();
    const input = big('192.0.2.10', 1600, true);
    expect(input.length).toBe(1614);
    const out = h.one(W1.port, input);
    expect(out.map((o) => o.port)).toEqual([W1.port]);
    expectIcmpError(out[0].bytes, input, {
      type: 3,
      code: 4,
      mtu: 1500,
      dstMac: W1.mac,
      srcMac: EE,
      to: W1.ip,
    });
    expect(h.counters()).toEqual({
      'ip4-rewrite: fragmentation-needed': 1,
      'ip4-icmp-error: sent-unreachable': 1,
    });
  });

  it('exactly the MTU passes untouched (DF or not)', () => {
    const h = new Harness();
    const out = h.run([
      [W1.port, big('192.0.2.10', 1500, true)],
      [W1.port, big('192.0.2.10', 1500, false)],
    ]);
    expect(out.map((o) => f.totLen(o.bytes))).toEqual([1500, 1500]);
    expect(h.counters()).toEqual({});
  });

  it('without DF a too-big packet is fragmented (RFC 791): valid pieces that reassemble', () => {
    const h = new Harness();
    for (const ipLen of [1501, 1906]) {
      const input = big('192.0.2.10', ipLen, false);
      input.set(
        Array.from({ length: ipLen - 20 }, (_, k) => (k * 7) & 255),
        34,
      );
      input[34 + 6] = 0; // a zero UDP checksum: the payload bytes above are arbitrary
      input[34 + 7] = 0;
      input.set([0, 0, ((ipLen - 20) >> 8) & 255, (ipLen - 20) & 255], 34 + 2);
      const out = h.one(W1.port, input);
      expect(out.length).toBe(2);
      expectFragmentsOf(
        out.map((o) => o.bytes),
        input,
        1500,
        GW_MAC,
        UPLINK_MAC,
      );
    }
    expect(h.c('ip4-rewrite: fragmented')).toBe(2);
  });

  it('fragmenting a fragment keeps its offset base and its MF on the last piece', () => {
    const h = new Harness();
    const input = fromW1('192.0.2.10', { payload: new Uint8Array(1700).fill(1) });
    input[20] = 0x20; // MF
    input[21] = 100; // offset 800 bytes
    reseal(input);
    const out = h.one(W1.port, input);
    expect(out).toHaveLength(2);
    const words = out.map((o) => f.fragWord(o.bytes));
    expect(words.map((w) => (w & 0x1fff) * 8)).toEqual([800, 800 + 1480]);
    expect(words.map((w) => (w & 0x2000) !== 0)).toEqual([true, true]);
    for (const o of out) expect(ipCsumOk(o.bytes)).toBe(true);
  });

  it('fragments copy only "copied" options into later fragments (RFC 791 §3.1)', () => {
    const h = new Harness();
    // security-like option 0x82 (copied), length 4 + record route 0x07 (not copied), length 7 + EOL
    const opts = Uint8Array.from([0x82, 4, 0xab, 0xcd, 7, 7, 4, 0, 0, 0, 0, 0]);
    const input = fromW1('192.0.2.10', { options: opts, payload: new Uint8Array(1600).fill(9) });
    const out = h.one(W1.port, input);
    expect(out.length).toBe(2);
    expect(f.ihl(out[0].bytes)).toBe(32);
    expect(f.ihl(out[1].bytes)).toBe(24);
    expect(hex(out[1].bytes.slice(34, 38))).toBe('8204abcd');
    expectFragmentsOf(
      out.map((o) => o.bytes),
      input,
      1500,
      GW_MAC,
      UPLINK_MAC,
    );
  });

  it('reports the path MTU of the route: uplink MTU 1400 → 1400, local delivery → the workload MTU', () => {
    const h = new Harness({ yaml: clusterYaml({ uplinkMtu: 1400 }) });
    const a = big('10.65.0.70', 1401, true);
    const b = big(W2.ip, 1450, true);
    const out = h.run([
      [W1.port, a],
      [W1.port, b],
      [W1.port, big('10.65.0.70', 1400, true)],
    ]);
    // the forwarded packet leaves in the first pass; the errors after a second trip through ip4-lookup
    expect(out.map((o) => o.port)).toEqual(['uplink', W1.port, W1.port]);
    expect(f.totLen(out[0].bytes)).toBe(1400);
    out.shift();
    expectIcmpError(out[0].bytes, a, { type: 3, code: 4, mtu: 1400, dstMac: W1.mac, srcMac: EE, to: W1.ip });
    // workloads get the uplink MTU when no encapsulation is in use
    expectIcmpError(out[1].bytes, b, { type: 3, code: 4, mtu: 1400, dstMac: W1.mac, srcMac: EE, to: W1.ip });
  });

  it('from the uplink: the error goes back via the gateway', () => {
    const h = new Harness();
    const input = udp({
      ethSrc: GW_MAC,
      ethDst: UPLINK_MAC,
      src: '192.0.2.50',
      dst: W1.ip,
      df: true,
      payload: new Uint8Array(1572),
    });
    const out = h.one('uplink', input);
    expect(out.map((o) => o.port)).toEqual(['uplink']);
    expectIcmpError(out[0].bytes, input, {
      type: 3,
      code: 4,
      mtu: 1500,
      dstMac: GW_MAC,
      srcMac: UPLINK_MAC,
      to: '192.0.2.50',
    });
  });
});
