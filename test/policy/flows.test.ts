// The policy flow table against a Map model (fast-check, fixed seeds): inserts, lookups from either
// side (the reply flag), touches with TCP flags, and expiry by per-protocol idle timeouts; plus the
// bound: a full neighbourhood refuses and counts.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  FL_FIN_A,
  FL_FIN_B,
  FL_REPLIED,
  FL_RST,
  PolicyFlowTable,
  PROBE,
} from '../../src/dataplane/tables/policy/flows.js';

interface Flow {
  proto: number;
  a: number;
  b: number;
  pa: number;
  pb: number;
}
const FLOWS: Flow[] = [];
for (let k = 0; k < 40; k++)
  FLOWS.push({
    proto: [6, 17, 1, 47][k & 3],
    a: 0x0a410000 + (k >> 2),
    b: 0x0a410100 + (k % 5),
    pa: 1000 + k,
    pb: k % 3 === 0 ? 1000 + k : 80,
  });

/** The model's idle timeout for an entry (the table's, restated). */
function timeout(proto: number, bits: number): number {
  if (proto === 6) {
    if (bits & FL_RST) return 40;
    if ((bits & (FL_FIN_A | FL_FIN_B)) === (FL_FIN_A | FL_FIN_B)) return 30;
    return bits & FL_REPLIED ? 3600 : 20;
  }
  return proto === 17 ? 60 : proto === 1 ? 5 : 600;
}

type Op =
  | { op: 'insert'; k: number; rev: boolean }
  | { op: 'lookup'; k: number; rev: boolean }
  | { op: 'touch'; k: number; rev: boolean; flags: number }
  | { op: 'time'; dt: number }
  | { op: 'expire' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('insert' as const), k: fc.nat(FLOWS.length - 1), rev: fc.boolean() }),
  fc.record({ op: fc.constant('lookup' as const), k: fc.nat(FLOWS.length - 1), rev: fc.boolean() }),
  fc.record({
    op: fc.constant('touch' as const),
    k: fc.nat(FLOWS.length - 1),
    rev: fc.boolean(),
    flags: fc.constantFrom(0, 0x10, 0x11, 0x04, 0x01),
  }),
  fc.record({ op: fc.constant('time' as const), dt: fc.constantFrom(1, 4, 10, 25, 35, 61, 700) }),
  fc.constant({ op: 'expire' as const }),
);

describe('policy flow table', () => {
  it('behaves like a map of flows with idle timeouts', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 120 }), (ops) => {
        const t = PolicyFlowTable.create(1024, 7);
        const model = new Map<number, { openerRev: boolean; seen: number; bits: number }>();
        let now = 100;
        const sides = (f: Flow, rev: boolean) => (rev ? [f.b, f.a, f.pb, f.pa] : [f.a, f.b, f.pa, f.pb]);
        for (const o of ops) {
          if (o.op === 'time') now += o.dt;
          else if (o.op === 'expire') {
            t.expire(now, 1024);
            for (const [k, m] of model) if (now - m.seen > timeout(FLOWS[k].proto, m.bits)) model.delete(k);
          } else {
            const f = FLOWS[o.k];
            const [s, d, sp, dp] = sides(f, o.rev);
            const slot = t.lookup(f.proto, s, d, sp, dp);
            const m = model.get(o.k);
            expect(slot >= 0, `${o.op} ${o.k}`).toBe(m !== undefined);
            if (m !== undefined) expect(t.reply).toBe(m.openerRev !== o.rev);
            if (o.op === 'insert' && m === undefined) {
              expect(t.insert(f.proto, s, d, sp, dp, now)).toBeGreaterThanOrEqual(0);
              model.set(o.k, { openerRev: o.rev, seen: now, bits: 0 });
            } else if (o.op === 'touch' && m !== undefined) {
              const reply = m.openerRev !== o.rev;
              t.touch(slot, now, reply, f.proto === 6 ? o.flags : 0);
              m.seen = now;
              if (reply) m.bits |= FL_REPLIED;
              if (f.proto === 6) {
                if (o.flags & 0x04) m.bits |= FL_RST;
                // FIN from the side that sent it: A is the lower (address, port)
                const fromA = s >>> 0 < d >>> 0 || (s === d && sp <= dp);
                if (o.flags & 0x01) m.bits |= fromA ? FL_FIN_A : FL_FIN_B;
              }
              expect(t.flags(slot) & (FL_REPLIED | FL_RST | FL_FIN_A | FL_FIN_B)).toBe(m.bits);
            }
          }
        }
        expect(t.size).toBe(model.size);
      }),
      { seed: 1131, numRuns: 500 },
    );
  });

  it('is bounded: a full neighbourhood refuses and counts', () => {
    const t = PolicyFlowTable.create(PROBE, 0);
    for (let k = 0; k < PROBE; k++) expect(t.insert(17, 1, 2 + k, 1, 1, 0)).toBeGreaterThanOrEqual(0);
    expect(t.insert(17, 1, 100, 1, 1, 0)).toBe(-1);
    expect(t.refused).toBe(1);
    expect(t.size).toBe(PROBE);
    // expiry frees them again
    expect(t.expire(1000, PROBE)).toBe(PROBE);
    expect(t.insert(17, 1, 100, 1, 1, 1000)).toBeGreaterThanOrEqual(0);
    expect(t.lookup(17, 100, 1, 1, 1)).toBeGreaterThanOrEqual(0);
    expect(t.reply).toBe(true);
  });

  it('refuses bad shapes', () => {
    expect(() => PolicyFlowTable.create(1000)).toThrow(RangeError);
    expect(() => PolicyFlowTable.attach({} as never)).toThrow(TypeError);
  });
});
