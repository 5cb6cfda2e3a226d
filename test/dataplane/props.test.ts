// Property tests over the whole core graph: random frames and mutations of valid frames, on random
// ports, never make the graph throw, and every packet that goes in is accounted for exactly once:
// transmitted, or dropped with one reason (per packet, from the trace; in total, from the counters).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Harness, clusterYaml, GW_IP, GW_MAC, NAT_IP, NODE_IP, UPLINK_MAC, W1, W2 } from './harness.js';
import { arp, ipCsumRecomputed, ping, udp } from './frames.js';
import { S, SAMPLE, sampleTunnelFrames } from './sample.js';

/** Valid frames for every decision, with the port they normally arrive on (0 uplink, 1 cali1, 2 cali2). */
function templates(): [number, Uint8Array][] {
  const up = (src: string, dst: string, extra = {}) =>
    udp({ ethSrc: GW_MAC, ethDst: UPLINK_MAC, src, dst, ...extra });
  return [
    [1, arp({ sha: W1.mac, spa: W1.ip, tpa: '169.254.1.1' })],
    [1, arp({ sha: W1.mac, spa: '0.0.0.0', tpa: W1.ip })],
    [0, arp({ sha: GW_MAC, spa: GW_IP, tpa: NAT_IP })],
    [0, arp({ op: 2, dst: UPLINK_MAC, sha: GW_MAC, spa: GW_IP, tha: UPLINK_MAC, tpa: NODE_IP })],
    [1, udp({ ethSrc: W1.mac, src: W1.ip, dst: W2.ip })],
    [1, udp({ ethSrc: W1.mac, src: W1.ip, dst: '10.65.0.70', df: true })],
    [1, udp({ ethSrc: W1.mac, src: W1.ip, dst: '192.0.2.10' })],
    [1, udp({ ethSrc: W1.mac, src: W1.ip, dst: '192.0.2.10', ttl: 1 })],
    [1, udp({ ethSrc: W1.mac, src: W1.ip, dst: '10.65.0.10' })],
    [2, udp({ ethSrc: W2.mac, src: W2.ip, dst: W1.ip, options: Uint8Array.from([7, 7, 4, 0, 0, 0, 0, 0]) })],
    [1, udp({ ethSrc: W1.mac, src: W1.ip, dst: '10.0.0.2', dport: 4789 })],
    [1, ping({ ethSrc: W1.mac, src: W1.ip, dst: '192.0.2.10', ttl: 1 })],
    [1, ping({ ethSrc: W1.mac, src: W1.ip, dst: W2.ip, ttl: 1, type: 3, code: 3 })],
    [2, ping({ ethSrc: W2.mac, src: W2.ip, dst: '10.65.0.80', payload: new Uint8Array(400) })],
    [0, up('10.65.0.70', W1.ip)],
    [0, up('192.0.2.50', W2.ip, { ttl: 1 })],
    [0, up('192.0.2.50', '10.65.0.70')],
    [0, up('10.0.0.2', NODE_IP)],
  ];
}

const TEMPLATES = templates();
const MAX_FRAME = 600;

interface Gen {
  port: number;
  bytes: Uint8Array;
}

const portArb = fc.integer({ min: 0, max: 2 });

/** Entirely random bytes, sometimes made to look addressed to us with an IPv4 or ARP ethertype. */
const randomFrame: fc.Arbitrary<Gen> = fc
  .record({
    port: portArb,
    bytes: fc.uint8Array({ minLength: 0, maxLength: 200, size: 'medium' }),
    dress: fc.constantFrom('none', 'ip4', 'arp', 'ip4-valid-header'),
  })
  .map(({ port, bytes, dress }) => {
    const u8 = bytes.slice();
    if (dress !== 'none' && u8.length >= 14) {
      u8.set(port === 0 ? [0x52, 0x54, 0, 0, 0, 0x0a] : [0xee, 0xee, 0xee, 0xee, 0xee, 0xee], 0);
      u8.set(dress === 'arp' ? [0x08, 0x06] : [0x08, 0x00], 12);
      if (dress === 'ip4-valid-header' && u8.length >= 34) {
        const hl = 20;
        u8[14] = 0x45;
        const tot = Math.min(u8.length - 14, 0xffff);
        u8[16] = tot >> 8;
        u8[17] = tot & 255;
        u8[20] &= 0x40; // DF or nothing: not a fragment
        sealIp(u8, hl);
      }
    }
    return { port, bytes: u8 };
  });

function sealIp(u8: Uint8Array, hl: number): void {
  if (u8.length < 14 + hl) return;
  const c = ipCsumRecomputed(u8);
  u8[24] = c >>> 8;
  u8[25] = c & 255;
}

/**
 * A valid template on its own port (or another), with a few bytes changed, maybe cut or extended,
 * maybe with its IP header checksum fixed so the change reaches past ip4-input.
 */
const mutatedFrame: fc.Arbitrary<Gen> = fc
  .record({
    t: fc.integer({ min: 0, max: TEMPLATES.length - 1 }),
    otherPort: fc.option(portArb, { nil: undefined, freq: 5 }),
    edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
    headerOnly: fc.boolean(),
    cut: fc.option(fc.nat(), { nil: undefined, freq: 5 }),
    extend: fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined, freq: 5 }),
    fix: fc.boolean(),
  })
  .map(({ t, otherPort, edits, headerOnly, cut, extend, fix }) => {
    const [port, tpl] = TEMPLATES[t];
    let u8 = tpl.slice();
    for (const [pos, v] of edits)
      u8[headerOnly ? 14 + (pos % Math.min(u8.length - 14, 30)) : pos % u8.length] = v;
    if (cut !== undefined) u8 = u8.slice(0, cut % (u8.length + 1));
    if (extend !== undefined) {
      const x = new Uint8Array(u8.length + extend.length);
      x.set(u8);
      x.set(extend, u8.length);
      u8 = x;
    }
    if (fix && u8.length >= 34 && u8[12] === 0x08 && u8[13] === 0 && (u8[14] & 15) >= 5) {
      sealIp(u8, (u8[14] & 15) * 4);
    }
    return { port: otherPort ?? port, bytes: u8.slice(0, MAX_FRAME) };
  });

const validFrame: fc.Arbitrary<Gen> = fc
  .integer({ min: 0, max: TEMPLATES.length - 1 })
  .map((t) => ({ port: TEMPLATES[t][0], bytes: TEMPLATES[t][1].slice() }));

const anyFrame = fc.oneof(
  { arbitrary: randomFrame, weight: 1 },
  { arbitrary: mutatedFrame, weight: 3 },
  { arbitrary: validFrame, weight: 1 },
);

/** Every counter's kind, from the nodes' own declarations (drop: ends a packet's life; event: a step). */
function reasonKinds(h: Harness): Map<string, string> {
  const m = new Map<string, string>();
  for (const node of h.g.graph.nodes())
    for (const r of node.decl.reasons ?? []) m.set(`${node.name}: ${r.name}`, r.kind);
  return m;
}

function sumTerminal(h: Harness): number {
  const kinds = reasonKinds(h);
  let n = 0;
  for (const [name, v] of Object.entries(h.counters())) {
    const kind = kinds.get(name);
    if (kind === undefined) throw new Error(`counter ${name} is not declared by any node`);
    if (kind === 'drop') n += v;
  }
  return n;
}

/** Per packet: of its own trace lines, exactly one is final (tx or drop) unless it is still held. */
function checkTrace(h: Harness, n: number): void {
  for (let i = 0; i < n; i++) {
    const own = (h.lastTrace[i] ?? []).filter((l) => !l.startsWith('  [+'));
    const final = own.filter((l) => l.startsWith('interface-output: tx') || l.includes(': drop: '));
    const held = own.length > 0 && own[own.length - 1].startsWith('ip4-arp: held');
    if (!(final.length === 1 && own[own.length - 1] === final[0]) && !(held && final.length === 0)) {
      throw new Error(`packet ${i} not accounted for exactly once:\n${own.join('\n')}`);
    }
  }
}

function names(h: Harness): string[] {
  return h.prog.env.ports.names;
}

// ------------------------------------------------ the full dataplane graph (encapsulation and NAT)

/** Frames for every path of the sample config as node-a, with their port (0 uplink, 1-3 workloads). */
function sampleTemplates(): [number, Uint8Array][] {
  return [
    ...sampleTunnelFrames().map((f): [number, Uint8Array] => [0, f]),
    [0, udp({ ethSrc: S.gw, ethDst: S.up, src: '192.0.2.10', dst: '10.0.0.1', sport: 80, dport: 40000 })],
    [1, udp({ ethSrc: S.w1.mac, src: S.w1.ip, dst: '192.0.2.10', sport: 40000, dport: 80 })],
    [1, ping({ ethSrc: S.w1.mac, src: S.w1.ip, dst: '8.8.8.8' })],
    [1, udp({ ethSrc: S.w1.mac, src: S.w1.ip, dst: '10.65.0.130' })],
    [1, udp({ ethSrc: S.w1.mac, src: S.w1.ip, dst: '10.65.0.70', df: true })],
    [3, udp({ ethSrc: S.w3.mac, src: S.w3.ip, dst: '10.66.0.130', payload: new Uint8Array(1430) })],
    [3, udp({ ethSrc: S.w3.mac, src: S.w3.ip, dst: '10.66.0.70', df: true, payload: new Uint8Array(1440) })],
    [2, udp({ ethSrc: S.w2.mac, src: S.w2.ip, dst: S.w1.ip, ttl: 1 })],
  ];
}

describe.each([
  [true, true],
  [true, false],
  [false, true],
  [false, false],
])('graph properties (features fused: %s, fast path: %s)', (fused, fast) => {
  it('static neighbours: every packet is transmitted or dropped exactly once, nothing throws', () => {
    fc.assert(
      fc.property(fc.array(anyFrame, { minLength: 1, maxLength: 40 }), (frames) => {
        const h = new Harness({ trace: true, fused, fast });
        const ports = names(h);
        h.run(frames.map((g) => [ports[g.port], g.bytes] as [string, Uint8Array]));
        checkTrace(h, frames.length);
        const tx = h.txPackets();
        expect(h.c('ip4-arp: request-sent')).toBe(0);
        expect(h.c('ip4-rewrite: fragmented')).toBe(0);
        expect(tx + sumTerminal(h)).toBe(frames.length);
        // everything transmitted is well-formed where we can tell: IPv4 headers verify
        for (const o of h.sent) {
          if (o.bytes[12] === 0x08 && o.bytes[13] === 0x00) {
            expect(ipCsumRecomputed(o.bytes)).toBe((o.bytes[24] << 8) | o.bytes[25]);
          }
          if (o.port !== 'uplink') expect(o.bytes.slice(6, 12)).toEqual(Uint8Array.from(Array(6).fill(0xee)));
        }
      }),
      { numRuns: 200 },
    );
  });

  it('ARP-resolved neighbours: with holds, timers and finish, the accounting still balances', () => {
    const yaml = clusterYaml({ staticNeighbors: false });
    const gwReply = arp({ op: 2, dst: UPLINK_MAC, sha: GW_MAC, spa: GW_IP, tha: UPLINK_MAC, tpa: NODE_IP });
    fc.assert(
      fc.property(
        fc.array(fc.array(anyFrame, { minLength: 0, maxLength: 20 }), { minLength: 1, maxLength: 4 }),
        fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
        (rounds, replies) => {
          const h = new Harness({ yaml, fresh: true, fused, fast });
          const ports = names(h);
          let n = 0;
          rounds.forEach((frames, r) => {
            const batch = frames.map((g) => [ports[g.port], g.bytes] as [string, Uint8Array]);
            if (replies[r]) batch.push(['uplink', gwReply]);
            n += batch.length;
            h.run(batch, r * 0.7);
          });
          h.tick(10);
          h.finish();
          expect(h.c('ip4-rewrite: fragmented')).toBe(0);
          expect(h.txPackets() - h.c('ip4-arp: request-sent') + sumTerminal(h)).toBe(n);
          expect(h.c('ip4-arp: held')).toBe(
            h.c('ip4-arp: released') + h.c('ip4-arp: arp-timeout') + h.c('ip4-arp: unresolved-at-exit'),
          );
        },
      ),
      { numRuns: 60 },
    );
  });

  it('the full graph (encapsulation, NAT) on the sample config: nothing throws, one fate per packet', () => {
    const tpl = sampleTemplates();
    const frameArb: fc.Arbitrary<Gen> = fc
      .record({
        t: fc.integer({ min: 0, max: tpl.length - 1 }),
        edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
        fix: fc.boolean(),
        cut: fc.option(fc.nat(), { nil: undefined, freq: 6 }),
      })
      .map(({ t, edits, fix, cut }) => {
        let u8 = tpl[t][1].slice();
        for (const [pos, v] of edits) u8[pos % u8.length] = v;
        if (cut !== undefined) u8 = u8.slice(0, cut % (u8.length + 1));
        if (fix && u8.length >= 34 && (u8[14] & 15) >= 5) sealIp(u8, (u8[14] & 15) * 4);
        return { port: tpl[t][0], bytes: u8 };
      });
    fc.assert(
      fc.property(
        fc.array(fc.oneof(frameArb, frameArb, randomFrame), { minLength: 1, maxLength: 30 }),
        (frames) => {
          const h = new Harness({ yaml: SAMPLE, trace: true, fused, fast });
          const ports = names(h);
          h.run(frames.map((g) => [ports[g.port], g.bytes] as [string, Uint8Array]));
          checkTrace(h, frames.length);
          for (const o of h.sent) {
            if (o.bytes[12] === 0x08 && o.bytes[13] === 0x00) {
              expect(ipCsumRecomputed(o.bytes)).toBe((o.bytes[24] << 8) | o.bytes[25]);
            }
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});

/** What went out, as sortable lines (the fast path may reorder packets of different paths). */
function outLines(h: Harness, from: number): string[] {
  return h.sent
    .slice(from)
    .map((o) => `${o.port} ${Buffer.from(o.bytes).toString('hex')}`)
    .sort();
}

describe.each([true, false])('ip4-fast against the general nodes (features fused: %s)', (fused) => {
  // twin nodes (their own NAT tables: a Programmer per YAML text), one with ip4-fast, one without;
  // no tracing (with a trace every packet takes the general path)
  const twins = (yaml: string) =>
    [true, false].map(
      (fast) => new Harness({ yaml: `${yaml}\n# ip4-fast ${fast} fused ${fused}\n`, fused, fast }),
    );

  it('core graph: the same frames out and the same counters, batch after batch', () => {
    const [f, g] = twins(clusterYaml());
    let t = 0;
    fc.assert(
      fc.property(fc.array(anyFrame, { minLength: 1, maxLength: 40, size: 'max' }), (frames) => {
        t += 0.25;
        const out = [f.sent.length, g.sent.length];
        for (const h of [f, g]) {
          const ports = names(h);
          h.run(
            frames.map((x) => [ports[x.port], x.bytes] as [string, Uint8Array]),
            t,
          );
        }
        expect(outLines(f, out[0])).toEqual(outLines(g, out[1]));
        expect(f.counters()).toEqual(g.counters());
      }),
      { numRuns: 150 },
    );
  });

  it('full graph (encapsulation, NAT): the same frames out and the same counters', () => {
    const [f, g] = twins(SAMPLE);
    const tpl = sampleTemplates();
    const frameArb: fc.Arbitrary<Gen> = fc
      .record({
        t: fc.integer({ min: 0, max: tpl.length - 1 }),
        edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 2 }),
        fix: fc.boolean(),
      })
      .map(({ t, edits, fix }) => {
        const u8 = tpl[t][1].slice();
        for (const [pos, v] of edits) u8[14 + (pos % 30)] = v;
        if (fix && (u8[14] & 15) >= 5) sealIp(u8, (u8[14] & 15) * 4);
        return { port: tpl[t][0], bytes: u8 };
      });
    let t = 0;
    fc.assert(
      fc.property(
        fc.array(fc.oneof(frameArb, frameArb, anyFrame), { minLength: 1, maxLength: 40, size: 'max' }),
        (frames) => {
          t += 0.25;
          const out = [f.sent.length, g.sent.length];
          for (const h of [f, g]) {
            const ports = names(h);
            h.run(
              frames.map((x) => [ports[x.port], x.bytes] as [string, Uint8Array]),
              t,
            );
          }
          expect(outLines(f, out[0])).toEqual(outLines(g, out[1]));
          expect(f.counters()).toEqual(g.counters());
        },
      ),
      { numRuns: 150 },
    );
    // the fast path was taken: packets left without ever being queued on ethernet-input
    expect(f.txPackets()).toBeGreaterThan(0);
  });
});
