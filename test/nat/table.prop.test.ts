// fast-check: random operation sequences on random small configurations keep the table in agreement with
// the naive model and keep the invariants (unique keys both ways, allowed ports only, size = live slots).
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { checkInvariants, makeHarness, step, type DiffConfig, type Op } from './diff.js';

const NAT_A = 0xc0a80164;
const NAT_B = 0xc0a80165;

const cfgArb: fc.Arbitrary<DiffConfig> = fc
  .record({
    capacity: fc.integer({ min: 1, max: 40 }),
    twoIps: fc.boolean(),
    portLo: fc.constantFrom(4780, 4786, 50000, 65530),
    span: fc.integer({ min: 0, max: 12 }),
    reserved: fc.subarray([4786, 4787, 50001, 65531, 65535]),
    seed: fc.integer(),
    maxPortProbes: fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }),
  })
  .filter((r) => {
    const hi = Math.min(65535, r.portLo + r.span);
    for (let p = r.portLo; p <= hi; p++) if (![4789, ...r.reserved].includes(p)) return true;
    return false;
  })
  .map((r) => ({
    capacity: r.capacity,
    natIps: r.twoIps ? [NAT_A, NAT_B] : [NAT_A],
    portLo: r.portLo,
    portHi: Math.min(65535, r.portLo + r.span),
    reservedPorts: [4789, ...r.reserved],
    seed: r.seed,
    maxPortProbes: r.maxPortProbes,
  }));

const ip = fc.constantFrom(0x0a410001, 0x0a410002, 0x0a410003, 0xffffffff);
const remote = fc.constantFrom(0x08080808, 0x01010101, 0x80000000);
const port = fc.constantFrom(0, 53, 443, 4789, 65535);
const proto = fc.constantFrom(1, 6, 17);

function opArb(cfg: DiffConfig): fc.Arbitrary<Op> {
  const flow = fc.record({ p: proto, s: ip, sp: port, d: remote, dp: port });
  return fc.oneof(
    { weight: 4, arbitrary: flow.map((f) => ({ op: 'create' as const, ...f })) },
    { weight: 2, arbitrary: flow.map((f) => ({ op: 'lookupOut' as const, ...f })) },
    {
      weight: 2,
      arbitrary: fc
        .record({
          p: proto,
          r: remote,
          rp: port,
          nat: fc.constantFrom(...cfg.natIps),
          np: fc.integer({ min: cfg.portLo, max: cfg.portHi }),
        })
        .map((x) => ({ op: 'lookupIn' as const, ...x })),
    },
    {
      weight: 2,
      arbitrary: fc
        .record({
          s: ip,
          sp: port,
          d: remote,
          dp: port,
          flags: fc.constantFrom(0x02, 0x12, 0x10, 0x11, 0x01, 0x04),
          fromInside: fc.boolean(),
        })
        .map((x) => ({ op: 'tcp' as const, ...x })),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(0, 1, 10, 31, 121, 181, 7441).map((dt) => ({ op: 'advance' as const, dt })),
    },
    { weight: 1, arbitrary: fc.constant({ op: 'expire' as const }) },
  );
}

describe('nat table properties (fast-check)', () => {
  it('random op sequences agree with the model and keep the invariants', () => {
    fc.assert(
      fc.property(
        cfgArb.chain((cfg) => fc.tuple(fc.constant(cfg), fc.array(opArb(cfg), { maxLength: 200 }))),
        ([cfg, ops]) => {
          const h = makeHarness(cfg);
          for (const o of ops) step(h, o);
          checkInvariants(h, cfg);
        },
      ),
      { numRuns: 300 },
    );
  });
});
