// Differential tests: Lpm4 against the naive linear model (model.ts) on random tables, with fixed seeds
// so a failure reproduces. Prefixes cluster around a few anchor addresses so they nest (default route,
// short aggregates, /24s, /25–/32s in the same /24s); operations mix inserts, replacements, removals
// (including the middle of nests) and removals of absent prefixes. After every few operations we
// compare lookups at the boundaries of the model's prefixes and at random addresses.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LPM_DEFAULT_SLOT, Lpm4, lpmLookupBatch } from '../../src/dataplane/tables/lpm.js';
import { NaiveLpm, boundaryProbes, mask, prng } from './model.js';

/** A prefix length; `dflt`: percent of picks that are the default route (/0). */
function pickLen(r: number, dflt: number): number {
  const p = r % 100;
  if (p < dflt) return 0;
  if (p < 2) return 0;
  if (p < 3) return 1 + ((r >>> 8) % 7); // /1–/7: large tbl24 ranges
  if (p < 33) return 8 + ((r >>> 8) % 16); // /8–/23
  if (p < 45) return 24;
  if (p < 75) return 25 + ((r >>> 8) % 7); // /25–/31
  return 32;
}

function checkAgainst(lpm: Lpm4, model: NaiveLpm, rand: () => number, anchors: number[], ctx: string): void {
  const probes: number[] = [];
  const rs = model.routes;
  const nb = Math.min(rs.length, 40);
  for (let i = 0; i < nb; i++) probes.push(...boundaryProbes(rs[rs.length <= 40 ? i : rand() % rs.length]));
  for (let i = 0; i < 24; i++) probes.push(rand());
  for (let i = 0; i < 40; i++) probes.push((anchors[rand() % anchors.length] ^ (rand() & 0xffff)) >>> 0);
  for (const a of probes) {
    const got = lpm.lookup(a);
    const want = model.lookup(a);
    if (got !== want) {
      throw new Error(`${ctx}: lookup(${a.toString(16)}) = ${got}, model says ${want}`);
    }
  }
  // the batch lookup agrees with the single one
  const ips = Uint32Array.from(probes);
  const out = new Uint32Array(ips.length);
  lpmLookupBatch(lpm.tbl24, lpm.tbl8, ips, out, ips.length);
  for (let i = 0; i < ips.length; i++) {
    if (out[i] !== model.lookup(ips[i])) throw new Error(`${ctx}: lookupBatch(${ips[i].toString(16)})`);
  }
  expect(lpm.size, ctx).toBe(rs.length);
}

function randomRun(
  seed: number,
  ops: number,
  dflt = 0,
): { inserts: number; removes: number; maxSize: number } {
  const rand = prng(seed);
  const lpm = Lpm4.create({ tbl8InitialGroups: 1, tbl8ReuseDelayMs: 0 });
  const model = new NaiveLpm();
  const anchors = Array.from({ length: 6 }, () => rand());
  anchors.push(0x0a000000, 0xffffff00, 0);
  const stats = { inserts: 0, removes: 0, maxSize: 0 };
  const randomPrefix = () => {
    const len = pickLen(rand(), dflt);
    const near = (anchors[rand() % anchors.length] ^ (rand() & ((1 << (rand() % 20)) - 1))) >>> 0;
    return { addr: (near & mask(len)) >>> 0, len };
  };
  for (let op = 0; op < ops; op++) {
    const p = rand() % 100;
    const ctx = `seed ${seed} op ${op}`;
    const existing = model.routes.length > 0 ? model.routes[rand() % model.routes.length] : undefined;
    // keep the table around 60–120 routes so the linear model stays cheap and removals are frequent
    const removeBias = model.routes.length > 120 ? 30 : model.routes.length < 60 ? -20 : 0;
    if (p < 50 - removeBias) {
      const { addr, len } = randomPrefix();
      const value = 1 + (rand() % 0xffffff);
      lpm.insert(addr | (rand() & ~mask(len)), len, value); // host bits must be ignored
      model.insert(addr, len, value);
      stats.inserts++;
    } else if (p < 58 - removeBias && existing) {
      const value = 1 + (rand() % 0xffffff); // replacement
      lpm.insert(existing.addr, existing.len, value);
      model.insert(existing.addr, existing.len, value);
    } else if (p < 95 && existing) {
      expect(lpm.remove(existing.addr, existing.len), ctx).toBe(true);
      model.remove(existing.addr, existing.len);
      stats.removes++;
    } else {
      const { addr, len } = randomPrefix();
      expect(lpm.remove(addr, len), ctx).toBe(model.remove(addr, len));
    }
    stats.maxSize = Math.max(stats.maxSize, model.routes.length);
    if (op % 4 === 3) checkAgainst(lpm, model, rand, anchors, ctx);
    if (op % 50 === 49 && existing)
      expect(lpm.get(existing.addr, existing.len), ctx).toBe(model.get(existing.addr, existing.len));
  }
  expect([...lpm.entries()]).toEqual(model.sorted());
  // tear everything down: nothing may leak
  for (const r of model.sorted()) expect(lpm.remove(r.addr, r.len)).toBe(true);
  expect(lpm.size).toBe(0);
  expect(lpm.stats().tbl8GroupsUsed).toBe(0);
  for (const a of anchors) expect(lpm.lookup(a)).toBe(0);
  return stats;
}

/** Depth (bits 24..29) of every tbl24 entry and used tbl8 entry is never 0: the default route has its own slot. */
function noDepthZero(lpm: Lpm4): boolean {
  const t24 = lpm.tbl24;
  for (let i = 0; i < LPM_DEFAULT_SLOT; i++) {
    const e = t24[i];
    if (e !== 0 && (e & 0x40000000) === 0 && ((e >>> 24) & 63) === 0) return false;
  }
  return true;
}

describe('Lpm4 vs naive model', () => {
  for (const seed of [1, 0xc0ffee, 20240607]) {
    it(`agrees on a random workload (seed ${seed})`, () => {
      const s = randomRun(seed, 1500);
      expect(s.inserts).toBeGreaterThan(300);
      expect(s.removes).toBeGreaterThan(300);
    });
  }

  it('agrees with the default route added and removed often (it lives outside the tables)', () => {
    const s = randomRun(0xdef, 1200, 12);
    expect(s.inserts).toBeGreaterThan(250);
  });

  it('writes nothing into tbl24 for the default route, and never a depth-0 entry', () => {
    const lpm = Lpm4.create({ tbl8InitialGroups: 1, tbl8ReuseDelayMs: 0 });
    lpm.insert(0, 0, 5);
    expect(lpm.tbl24.subarray(0, LPM_DEFAULT_SLOT).some((e) => e !== 0)).toBe(false);
    expect(lpm.lookup(0x0a000001)).toBe(5);
    lpm.insert(0x80000000, 1, 6); // /1 with only the default present: the bulk-fill path
    lpm.insert(0x0a0b0c80, 25, 7); // a tbl8 group inheriting a 0 (default) entry
    lpm.insert(0x0a0b0d00, 24, 8);
    expect(lpm.lookup(0x0a0b0c01)).toBe(5);
    expect(lpm.lookup(0x0a0b0c81)).toBe(7);
    expect(lpm.lookup(0xc0000001)).toBe(6);
    expect(noDepthZero(lpm)).toBe(true);
    expect(lpm.remove(0, 0)).toBe(true);
    expect(lpm.lookup(0x0a0b0c01)).toBe(0);
    expect(lpm.lookup(0x0a0b0c81)).toBe(7);
    lpm.insert(0xffffffff, 0, 9); // host bits ignored
    expect(lpm.get(0, 0)).toBe(9);
    expect(lpm.lookup(0x0a0b0c01)).toBe(9);
    expect(lpm.remove(0x0a0b0c80, 25)).toBe(true); // the group is freed, its /24 entry goes back to 0
    expect(lpm.lookup(0x0a0b0c81)).toBe(9);
    expect(lpm.remove(0x80000000, 1)).toBe(true);
    expect(lpm.lookup(0xc0000001)).toBe(9);
    expect(noDepthZero(lpm)).toBe(true);
  });

  it('agrees on fast-check generated operation sequences (fixed seed)', () => {
    // One table reused across runs (64 MiB of address space each): emptied after every run.
    const lpm = Lpm4.create({ tbl8InitialGroups: 1, tbl8ReuseDelayMs: 0 });
    const base = 0x0a141e00; // 10.20.30.0: every prefix lands near it, so they nest
    const prefixArb = fc
      .record({
        len: fc.oneof(fc.constantFrom(0, 8, 16, 23, 24, 25, 26, 31, 32), fc.integer({ min: 9, max: 32 })),
        bits: fc.integer({ min: 0, max: 0x3ff }),
      })
      .map(({ len, bits }) => ({ addr: ((base ^ bits) & mask(len)) >>> 0, len }));
    const opArb = fc.oneof(
      fc.record({
        kind: fc.constant('insert' as const),
        p: prefixArb,
        value: fc.integer({ min: 1, max: 0xffffff }),
      }),
      fc.record({ kind: fc.constant('remove' as const), p: prefixArb, value: fc.constant(0) }),
    );
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        const model = new NaiveLpm();
        try {
          for (const { kind, p, value } of ops) {
            if (kind === 'insert') {
              lpm.insert(p.addr, p.len, value);
              model.insert(p.addr, p.len, value);
            } else if (lpm.remove(p.addr, p.len) !== model.remove(p.addr, p.len)) {
              return false;
            }
            for (const r of model.routes) {
              for (const a of boundaryProbes(r)) if (lpm.lookup(a) !== model.lookup(a)) return false;
            }
          }
          return lpm.size === model.routes.length;
        } finally {
          for (const r of [...lpm.entries()]) lpm.remove(r.addr, r.len);
        }
      }),
      { seed: 0x5eed, numRuns: 150 },
    );
    expect(lpm.size).toBe(0);
    expect(lpm.stats().tbl8GroupsUsed).toBe(0);
  });
});
