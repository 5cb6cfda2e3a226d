// Property test of the graph with policy on (fused and not): random frames, mutations of valid TCP,
// UDP, ICMP (errors included) and fragment frames, on random ports and in random orders, never make
// ip4-policy throw, and every packet is accounted for exactly once (transmitted, or dropped with one
// reason: per packet from the trace, in total from the counters whose kinds the nodes declare).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Harness } from '../dataplane/harness.js';
import { ip4, ipCsumRecomputed, ping, udp } from '../dataplane/frames.js';
import { loadConfigText } from '../../src/control/config/load.js';
import {
  API,
  baseYaml,
  POLICY_YAML,
  DB,
  GW_MAC,
  NODE_B_MAC,
  OUTSIDE,
  REMOTE,
  tcp,
  TCP_FLAGS,
  UPLINK_MAC,
  WEB,
} from './helpers.js';

const YAML = baseYaml() + POLICY_YAML;
const PORTS = ['uplink', WEB.port, API.port, DB.port];
const up = { ethSrc: GW_MAC, ethDst: UPLINK_MAC };

function templates(): [number, Uint8Array][] {
  const quote = udp({ ethSrc: API.mac, src: API.ip, dst: OUTSIDE, sport: 5000, dport: 53 }).slice(14, 42);
  const err = new Uint8Array(8 + quote.length);
  err[0] = 3;
  err[1] = 3;
  err.set(quote, 8);
  const frag = udp({ ethSrc: API.mac, src: API.ip, dst: WEB.ip, id: 9 });
  frag[20] = 0x20; // MF
  return [
    [2, tcp({ ethSrc: API.mac, src: API.ip, dst: DB.ip, sport: 41000, dport: 5432, flags: TCP_FLAGS.SYN })],
    [
      3,
      tcp({
        ethSrc: DB.mac,
        src: DB.ip,
        dst: API.ip,
        sport: 5432,
        dport: 41000,
        flags: TCP_FLAGS.SYN | TCP_FLAGS.ACK,
      }),
    ],
    [
      2,
      tcp({
        ethSrc: API.mac,
        src: API.ip,
        dst: DB.ip,
        sport: 41000,
        dport: 5432,
        flags: TCP_FLAGS.ACK | TCP_FLAGS.FIN,
      }),
    ],
    [1, tcp({ ethSrc: WEB.mac, src: WEB.ip, dst: API.ip, sport: 44000, dport: 8080, flags: TCP_FLAGS.SYN })],
    [
      0,
      tcp({
        ethSrc: NODE_B_MAC,
        ethDst: UPLINK_MAC,
        src: REMOTE.ip,
        dst: DB.ip,
        sport: 43000,
        dport: 5432,
        flags: TCP_FLAGS.SYN,
      }),
    ],
    [0, tcp({ ...up, src: OUTSIDE, dst: WEB.ip, sport: 46000, dport: 80, flags: TCP_FLAGS.SYN })],
    [0, udp({ ...up, src: OUTSIDE, dst: WEB.ip, sport: 46001, dport: 53 })],
    [2, udp({ ethSrc: API.mac, src: API.ip, dst: OUTSIDE, sport: 5000, dport: 53 })],
    [0, ip4({ ...up, ipSrc: OUTSIDE, ipDst: API.ip, proto: 1, l4: err })],
    [2, ping({ ethSrc: API.mac, src: API.ip, dst: OUTSIDE })],
    [0, ping({ ...up, src: OUTSIDE, dst: API.ip, type: 0 })],
    [2, frag],
  ];
}
const TPL = templates();

function sealIp(u8: Uint8Array): void {
  if (u8.length < 34 || (u8[14] & 15) < 5) return;
  const c = ipCsumRecomputed(u8);
  u8[24] = c >>> 8;
  u8[25] = c & 255;
}

const frameArb = fc
  .record({
    t: fc.integer({ min: 0, max: TPL.length - 1 }),
    port: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined, freq: 4 }),
    edits: fc.array(fc.tuple(fc.integer({ min: 14, max: 80 }), fc.integer({ min: 0, max: 255 })), {
      maxLength: 3,
    }),
    fix: fc.boolean(),
    cut: fc.option(fc.nat(), { nil: undefined, freq: 6 }),
  })
  .map(({ t, port, edits, fix, cut }) => {
    let u8 = TPL[t][1].slice();
    for (const [pos, v] of edits) if (pos < u8.length) u8[pos] = v;
    if (cut !== undefined) u8 = u8.slice(0, cut % (u8.length + 1));
    if (fix) sealIp(u8);
    return { port: port ?? TPL[t][0], bytes: u8 };
  });
const randomArb = fc
  .record({ port: fc.integer({ min: 0, max: 3 }), bytes: fc.uint8Array({ minLength: 34, maxLength: 120 }) })
  .map(({ port, bytes }) => {
    const u8 = bytes.slice();
    u8.set(port === 0 ? [0x52, 0x54, 0, 0, 0, 0x0a] : [0xee, 0xee, 0xee, 0xee, 0xee, 0xee], 0);
    u8.set([0x08, 0x00], 12);
    u8[14] = 0x45;
    u8[16] = (u8.length - 14) >> 8;
    u8[17] = (u8.length - 14) & 255;
    sealIp(u8);
    return { port, bytes: u8 };
  });

function dropTotal(h: Harness): number {
  const kinds = new Map<string, string>();
  for (const node of h.g.graph.nodes())
    for (const r of node.decl.reasons ?? []) kinds.set(`${node.name}: ${r.name}`, r.kind);
  let n = 0;
  for (const [name, v] of Object.entries(h.counters())) {
    const k = kinds.get(name);
    if (k === undefined) throw new Error(`counter ${name} not declared`);
    if (k === 'drop') n += v;
  }
  return n;
}

describe.each([true, false])('graph with policy (fused: %s)', (fused) => {
  it('accounts for every packet exactly once and never throws', () => {
    const cfg = loadConfigText(YAML, 'p.yaml');
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.oneof(frameArb, frameArb, randomArb), { maxLength: 25 }), {
          minLength: 1,
          maxLength: 3,
        }),
        (rounds) => {
          const h = new Harness({ yaml: YAML, trace: true, fused });
          h.prog.policy!.program(cfg);
          h.prog.policy!.flows.clear();
          let n = 0;
          rounds.forEach((frames, r) => {
            h.run(
              frames.map((f) => [PORTS[f.port], f.bytes] as [string, Uint8Array]),
              1000 + r,
            );
            n += frames.length;
            for (let i = 0; i < frames.length; i++) {
              const own = (h.lastTrace[i] ?? []).filter((l) => !l.startsWith('  [+'));
              const final = own.filter((l) => l.startsWith('interface-output: tx') || l.includes(': drop: '));
              expect(final.length, own.join('\n')).toBe(1);
            }
          });
          expect(h.txPackets() + dropTotal(h) - h.c('ip4-arp: request-sent')).toBe(n);
        },
      ),
      { seed: 1151, numRuns: 150 },
    );
  });
});

// ip4-fast tests ip4-policy's flow gate inline (graph/flow-gate.ts) instead of calling its pass():
// the same frames through a graph with ip4-fast and one without give the same frames out and the
// same policy counters. Frames come in runs (each one 1-3 times), so packets of one flow follow
// each other as bulk traffic does and the gate opens; edits hit the fields it compares.
describe('graph with policy: ip4-fast and its flow gate agree with the general nodes', () => {
  it('transmits the same frames and counts the same policy reasons', () => {
    const cfg = loadConfigText(YAML, 'p.yaml');
    const runArb = fc
      .array(fc.tuple(fc.oneof(frameArb, frameArb, randomArb), fc.integer({ min: 1, max: 3 })), {
        maxLength: 20,
      })
      .map((xs) => xs.flatMap(([f, k]) => Array.from({ length: k }, () => f)));
    const policyRows = (h: Harness) =>
      Object.entries(h.counters()).filter(([name]) => name.startsWith('ip4-policy: '));
    const pass = (fast: boolean, rounds: { port: number; bytes: Uint8Array }[][]) => {
      const h = new Harness({ yaml: YAML, fast, fresh: true });
      h.prog.policy!.program(cfg);
      h.prog.policy!.flows.clear();
      h.prog.policy!.tables.counters.fill(0);
      const out = rounds.map((frames, r) =>
        h
          .run(
            frames.map((f) => [PORTS[f.port], f.bytes] as [string, Uint8Array]),
            1000 + r * 7,
          )
          .map((t) => `${t.port} ${Buffer.from(t.bytes).toString('hex')}`),
      );
      return { out, counters: policyRows(h), tables: Array.from(h.prog.policy!.tables.counters) };
    };
    fc.assert(
      fc.property(fc.array(runArb, { minLength: 1, maxLength: 3 }), (rounds) => {
        expect(pass(true, rounds)).toEqual(pass(false, rounds));
      }),
      { seed: 1152, numRuns: 60 },
    );
  });
});
