// Differential test of the compiled policy (compiler -> bank image -> the dataplane's evaluator)
// against the naive interpreter (naive.ts) over random models and packets (fast-check, fixed seeds):
// the same verdict (allow, deny, not policed, unknown sender) and, for denials, the same cause
// (policy, end of tier, profile, no profile). Also: a compiler brought incrementally from one model
// to another gives the same verdicts as one that compiled the second model from scratch.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PolicyCompiler } from '../../src/control/policy/compile.js';
import { buildImage, ImageBuffer } from '../../src/control/policy/image.js';
import {
  PolicyEval,
  PolicyPacket,
  V_ALLOW,
  V_DENY,
  V_NOT_OURS,
  V_NO_ENDPOINT,
} from '../../src/dataplane/tables/policy/eval.js';
import { NaivePolicy, type NaivePacket, type NaiveVerdict } from './naive.js';
import { modelArb, NODE, packetArb, type Model } from './gen.js';

const NAMES: Record<number, NaiveVerdict> = {
  [V_ALLOW]: 'allow',
  [V_DENY]: 'deny',
  [V_NOT_OURS]: 'not-ours',
  [V_NO_ENDPOINT]: 'no-endpoint',
};

function compiled(
  c: PolicyCompiler,
): (pk: NaivePacket, fromWorkload: boolean) => { verdict: string; cause?: string } {
  const w = buildImage(c, new ImageBuffer()).slice();
  const ev = new PolicyEval({ logHit: () => {} });
  const p = new PolicyPacket();
  return (pk, fromWorkload) => {
    Object.assign(p, pk);
    const v = ev.decide(w, p, fromWorkload, true);
    return v === V_DENY
      ? { verdict: 'deny', cause: c.counterLabels[ev.counter] }
      : { verdict: NAMES[v] ?? `v${v}` };
  };
}

function check(m: Model, c: PolicyCompiler, pkts: (NaivePacket & { fromWorkload: boolean })[]): void {
  const naive = new NaivePolicy(m.pc, m.eps, NODE);
  const run = compiled(c);
  for (const { fromWorkload, ...pk } of pkts) {
    const want = naive.verdict(pk, fromWorkload);
    const got = run(pk, fromWorkload);
    expect(got, JSON.stringify({ pk, fromWorkload })).toEqual(want);
  }
}

describe('compiled policy vs the naive interpreter', () => {
  it('gives the same verdicts and causes', () => {
    fc.assert(
      fc.property(modelArb, fc.array(packetArb, { minLength: 20, maxLength: 40 }), (m, pkts) => {
        const c = new PolicyCompiler(NODE);
        c.sync(m.pc, m.eps);
        check(m, c, pkts);
      }),
      { seed: 1111, numRuns: 400 },
    );
  });

  it('gives the same verdicts after incremental changes as after a fresh compile', () => {
    fc.assert(
      fc.property(
        modelArb,
        modelArb,
        modelArb,
        fc.array(packetArb, { minLength: 20, maxLength: 30 }),
        (a, b, z, pkts) => {
          const c = new PolicyCompiler(NODE);
          c.sync(a.pc, a.eps);
          c.sync(z.pc, z.eps);
          c.sync(b.pc, b.eps);
          check(b, c, pkts);
        },
      ),
      { seed: 1112, numRuns: 200 },
    );
  });

  it('follows single label changes (one endpoint moves between IP sets)', () => {
    fc.assert(
      fc.property(
        modelArb,
        fc.array(
          fc.tuple(fc.nat(), fc.dictionary(fc.constantFrom('app', 'role'), fc.constantFrom('a', 'b'))),
          { maxLength: 6 },
        ),
        fc.array(packetArb, { minLength: 10, maxLength: 20 }),
        (m, changes, pkts) => {
          const c = new PolicyCompiler(NODE);
          c.sync(m.pc, m.eps);
          const eps = [...m.eps];
          for (const [k, labels] of changes) {
            const i = k % eps.length;
            eps[i] = { ...eps[i], labels };
            c.setEndpoint(eps[i]);
          }
          check({ pc: m.pc, eps }, c, pkts);
        },
      ),
      { seed: 1113, numRuns: 200 },
    );
  });
});
