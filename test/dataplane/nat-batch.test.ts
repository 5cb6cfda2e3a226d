// The SNAT nodes' batched path (snat4-in2out / snat4-out2in process(): all flow lookups of a batch
// first, then the translations in arrival order) against the per-packet path (a batch of one frame
// takes the fused pass()): the same frames, in one big batch on one node and one frame per batch on a
// twin node with its own NAT table, give the same frames out on every port, the same counters and the
// same flows. Outbound rounds mix new and repeated flows (several packets of one new flow in one
// batch), pings, TTL-1 packets (ICMP errors: the node's own, untranslated) and fragments; reply
// rounds answer what the node sent, with unknown ports and ICMP errors quoting translated packets.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Harness, clusterYaml, GW_MAC, NAT_IP, UPLINK_MAC, W1, W2, type Tx } from './harness.js';
import { icmpL4, ip4, ipStr, ping, udp } from './frames.js';
import { BATCH_MIN } from '../../src/dataplane/features/nat/nodes.js';

const YAML = clusterYaml().replace('vxlanMode: Never }', 'vxlanMode: Never, natOutgoing: true }');
const REMOTES = ['192.0.2.10', '198.51.100.7', '203.0.113.9'];

interface Out {
  w: number;
  kind: 'udp' | 'ping' | 'ttl1' | 'frag';
  sport: number;
  remote: number;
  dport: number;
}

const outArb: fc.Arbitrary<Out> = fc.record({
  w: fc.integer({ min: 0, max: 1 }),
  kind: fc.constantFrom('udp', 'udp', 'udp', 'ping', 'ttl1', 'frag'),
  sport: fc.integer({ min: 40000, max: 40007 }),
  remote: fc.integer({ min: 0, max: REMOTES.length - 1 }),
  dport: fc.constantFrom(53, 80),
});

function outFrame(o: Out): Uint8Array {
  const w = o.w === 0 ? W1 : W2;
  const dst = REMOTES[o.remote];
  if (o.kind === 'ping') return ping({ ethSrc: w.mac, src: w.ip, dst });
  const f = udp({
    ethSrc: w.mac,
    src: w.ip,
    dst,
    sport: o.sport,
    dport: o.dport,
    ttl: o.kind === 'ttl1' ? 1 : 64,
  });
  if (o.kind === 'frag') {
    f[14 + 6] = 0x20; // more fragments
    let s = 0;
    f[14 + 10] = 0;
    f[14 + 11] = 0;
    for (let k = 14; k < 34; k += 2) s += (f[k] << 8) | f[k + 1];
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    f[24] = ~s >>> 8;
    f[25] = ~s & 255;
  }
  return f;
}

/** A reply to a frame the node sent on the uplink (UDP or echo request); `bad`: to an unknown port. */
function replyTo(t: Tx, bad: boolean, icmpErr: boolean): Uint8Array | null {
  const u8 = t.bytes;
  if (u8.length < 42 || u8[12] !== 8 || u8[13] !== 0) return null;
  const src = ipStr(((u8[26] << 24) | (u8[27] << 16) | (u8[28] << 8) | u8[29]) >>> 0);
  const remote = ipStr(((u8[30] << 24) | (u8[31] << 16) | (u8[32] << 8) | u8[33]) >>> 0);
  const proto = u8[23];
  const eth = { ethSrc: GW_MAC, ethDst: UPLINK_MAC };
  if (icmpErr) {
    // host unreachable quoting the translated packet's IP header and first 8 bytes
    const quote = u8.slice(14, 14 + 28);
    return ip4({ ...eth, ipSrc: remote, ipDst: src, proto: 1, l4: icmpL4(3, 1, 0, quote) });
  }
  if (proto === 17) {
    const natPort = ((u8[34] << 8) | u8[35]) ^ (bad ? 1 : 0);
    const dport = (u8[36] << 8) | u8[37];
    return udp({ ...eth, src: remote, dst: src, sport: dport, dport: natPort });
  }
  if (proto === 1 && u8[34] === 8) {
    const id = ((u8[38] << 8) | u8[39]) ^ (bad ? 1 : 0);
    return ip4({
      ...eth,
      ipSrc: remote,
      ipDst: src,
      proto: 1,
      l4: icmpL4(0, 0, (id << 16) | 1, u8.slice(42)),
    });
  }
  return null;
}

const sorted = (txs: Tx[]) => txs.map((t) => `${t.port} ${Buffer.from(t.bytes).toString('hex')}`).sort();

describe('SNAT batched lookups agree with the per-packet path', () => {
  // two nodes with their own NAT tables (a Programmer per YAML text), the same seed
  const big = new Harness({ yaml: `${YAML}\n# batched twin\n`, trace: true });
  const one = new Harness({ yaml: `${YAML}\n# per-packet twin\n`, trace: true });
  let t = 0;

  const both = (frames: [string, Uint8Array][]): Tx[] => {
    expect(frames.length).toBeGreaterThanOrEqual(BATCH_MIN);
    t += 0.01;
    const a = big.run(frames, t);
    const b: Tx[] = [];
    for (const f of frames) b.push(...one.run([f], t));
    expect(sorted(a)).toEqual(sorted(b));
    expect(big.counters()).toEqual(one.counters());
    expect(big.prog.env.nat!.size).toBe(one.prog.env.nat!.size);
    return a;
  };

  it('outbound rounds then their replies: same frames, counters and flows', () => {
    fc.assert(
      fc.property(
        fc.array(outArb, { minLength: BATCH_MIN, maxLength: 60 }),
        fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 120, maxLength: 120 }),
        (outs, dice) => {
          const w = (o: Out) => (o.w === 0 ? W1.port : W2.port);
          const sent = both(outs.map((o) => [w(o), outFrame(o)]));
          const replies: [string, Uint8Array][] = [];
          sent.forEach((tx, k) => {
            if (tx.port !== 'uplink') return;
            const r = replyTo(tx, dice[k % 120] === 0, dice[(k + 60) % 120] === 1);
            if (r !== null) replies.push(['uplink', r]);
          });
          while (replies.length < BATCH_MIN)
            replies.push([
              'uplink',
              udp({ ethSrc: GW_MAC, ethDst: UPLINK_MAC, src: REMOTES[0], dst: NAT_IP, sport: 53, dport: 1 }),
            ]);
          const back = both(replies);
          expect(back.every((x) => x.port !== 'uplink')).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
    // the rounds did translate both ways (not only drops)
    expect(big.c('snat4-in2out: translated')).toBeGreaterThan(100);
    expect(big.c('snat4-out2in: translated')).toBeGreaterThan(100);
    expect(big.c('snat4-out2in: translated-icmp-error')).toBeGreaterThan(0);
    expect(big.c('snat4-out2in: no-translation')).toBeGreaterThan(0);
    expect(big.c('snat4-in2out: fragment-unsupported')).toBeGreaterThan(0);
  });
});
