// The host port on the full graph (encapsulation, NAT) of the sample config: tunnel traffic and NAT
// replies for the node IP from the uplink come out exactly as on the same node without a host port,
// and random and mutated frames on every port, the host port included, never make the graph throw
// and are each transmitted or dropped exactly once.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Harness, programmer } from './harness.js';
import { arp, ip, ipCsumRecomputed, ping, udp } from './frames.js';
import { S, SAMPLE, sampleTunnelFrames } from './sample.js';

const HOST = 'calitap-host0';
const TAP_MAC = '52:54:00:aa:bb:cc';

/** The sample config as node-a, with (a YAML of its own: its own tables) or without the host port. */
function node(host: boolean, tag: string, fused: boolean, fast: boolean): Harness {
  const yaml = `${SAMPLE}\n# ${tag} host ${host} fused ${fused} fast ${fast}\n`;
  const prog = programmer(yaml);
  if (host && prog.env.ports.index(HOST) === undefined)
    prog.attachHost({ name: HOST, mac: TAP_MAC, mtu: 1500, addrs: [ip('10.0.0.1'), ip('192.168.7.1')] });
  return new Harness({ yaml, fused, fast });
}

const hexOut = (h: Harness, from: number) =>
  h.sent.slice(from).map((o) => `${o.port} ${Buffer.from(o.bytes).toString('hex')}`);

describe.each([
  [true, true],
  [false, false],
])('the host port on the full graph (features fused: %s, fast path: %s)', (fused, fast) => {
  it('leaves tunnel traffic and NAT replies for the node IP from the uplink as they were', () => {
    const [a, b] = [node(true, 'same', fused, fast), node(false, 'same', fused, fast)];
    for (const f of sampleTunnelFrames()) {
      const [ao, bo] = [a.sent.length, b.sent.length];
      a.one('uplink', f);
      b.one('uplink', f);
      expect(hexOut(a, ao)).toEqual(hexOut(b, bo));
      expect(hexOut(a, ao)).toHaveLength(1);
      expect(a.sent[ao].port).not.toBe(HOST);
    }
    // a NAT flow out, then its reply to the node IP (the NAT address here): back to the pod
    const out = udp({ ethSrc: S.w1.mac, src: S.w1.ip, dst: '192.0.2.10', sport: 40000, dport: 80 });
    for (const h of [a, b]) {
      const sent = h.one('cali1a2b3c4d5e6', out);
      expect(sent.map((t) => t.port)).toEqual(['uplink']);
      const f = sent[0].bytes;
      expect(f.slice(26, 30)).toEqual(Uint8Array.from([10, 0, 0, 1]));
      const natPort = (f[34] << 8) | f[35];
      const reply = udp({
        ethSrc: S.gw,
        ethDst: S.up,
        src: '192.0.2.10',
        dst: '10.0.0.1',
        sport: 80,
        dport: natPort,
      });
      const back = h.one('uplink', reply);
      expect(back.map((t) => t.port)).toEqual(['cali1a2b3c4d5e6']);
      expect(back[0].bytes.slice(30, 34)).toEqual(Uint8Array.from([10, 65, 0, 2]));
    }
    expect(a.c('ip4-lookup: host-only-from-workloads')).toBe(0);
  });

  it('accounts for every packet exactly once with host-port traffic in the mix', () => {
    const host = [
      udp({ ethSrc: TAP_MAC, src: '10.0.0.1', dst: S.w1.ip }),
      udp({ ethSrc: TAP_MAC, src: '10.0.0.1', dst: S.w3.ip, df: true, payload: new Uint8Array(1480) }),
      udp({ ethSrc: TAP_MAC, src: '192.0.2.7', dst: S.w1.ip }),
      ping({ ethSrc: TAP_MAC, src: '192.168.7.1', dst: '10.65.0.70' }),
      arp({ sha: TAP_MAC, spa: '10.0.0.1', tpa: '169.254.1.1' }),
    ];
    const tpl: [string, Uint8Array][] = [
      ...sampleTunnelFrames().map((f) => ['uplink', f] as [string, Uint8Array]),
      ...host.map((f) => [HOST, f] as [string, Uint8Array]),
      ['cali1a2b3c4d5e6', ping({ ethSrc: S.w1.mac, src: S.w1.ip, dst: '10.0.0.1' })],
      ['cali1a2b3c4d5e6', udp({ ethSrc: S.w1.mac, src: S.w1.ip, dst: '192.168.7.1', ttl: 1 })],
      ['uplink', udp({ ethSrc: S.gw, ethDst: S.up, src: '192.0.2.10', dst: '192.168.7.1' })],
    ];
    const frame = fc
      .record({
        t: fc.integer({ min: 0, max: tpl.length - 1 }),
        edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
        fix: fc.boolean(),
      })
      .map(({ t, edits, fix }) => {
        const u8 = tpl[t][1].slice();
        for (const [pos, v] of edits) u8[pos % u8.length] = v;
        if (fix && u8.length >= 34 && (u8[14] & 15) >= 5) {
          const c = ipCsumRecomputed(u8);
          u8[24] = c >>> 8;
          u8[25] = c & 255;
        }
        return [tpl[t][0], u8] as [string, Uint8Array];
      });
    fc.assert(
      fc.property(fc.array(frame, { minLength: 1, maxLength: 30 }), (frames) => {
        const h = node(true, 'props', fused, fast);
        h.b.trace = [];
        h.run(frames);
        for (let i = 0; i < frames.length; i++) {
          const own = (h.lastTrace[i] ?? []).filter((l) => !l.startsWith('  [+'));
          const final = own.filter((l) => l.startsWith('interface-output: tx') || l.includes(': drop: '));
          const held = own.length > 0 && own[own.length - 1].startsWith('ip4-arp: held');
          const ok = (final.length === 1 && own[own.length - 1] === final[0]) || (held && final.length === 0);
          if (!ok) throw new Error(`packet ${i} not accounted for exactly once:\n${own.join('\n')}`);
        }
        for (const o of h.sent)
          if (o.bytes[12] === 0x08 && o.bytes[13] === 0x00)
            expect(ipCsumRecomputed(o.bytes)).toBe((o.bytes[24] << 8) | o.bytes[25]);
      }),
      { numRuns: 100 },
    );
  });
});
