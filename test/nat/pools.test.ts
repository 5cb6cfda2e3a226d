// PoolSet's /16 block table must answer exactly as a first-match scan of the pools.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PoolSet, type NatPool } from '../../src/dataplane/features/nat/pools.js';

function naiveFind(pools: NatPool[], ip: number): number {
  return pools.findIndex((p) => (ip & p.mask) >>> 0 === p.addr >>> 0);
}

const poolArb = fc
  .record({
    base: fc.integer({ min: 0, max: 0xffffffff }),
    len: fc.integer({ min: 0, max: 32 }),
    nat: fc.boolean(),
  })
  .map(({ base, len, nat }): NatPool => {
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    return { addr: (base & mask) >>> 0, mask, natOutgoing: nat };
  });

describe('PoolSet', () => {
  it('find and masquerade agree with a first-match scan (overlapping, small and huge pools)', () => {
    fc.assert(
      fc.property(
        fc.array(poolArb, { maxLength: 6 }),
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 20 }),
        (pools, ips) => {
          const set = new PoolSet(pools);
          // probe the given addresses and ones inside / at the edges of every pool
          const probes = [...ips, ...pools.flatMap((p) => [p.addr, (p.addr | ~p.mask) >>> 0])];
          for (const ip of probes) {
            expect(set.find(ip)).toBe(naiveFind(pools, ip));
            for (const dst of probes) {
              const s = naiveFind(pools, ip);
              expect(set.masquerade(ip, dst)).toBe(
                s >= 0 && pools[s].natOutgoing && naiveFind(pools, dst) < 0,
              );
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
