// AdjacencyTable: acquire/release by spec with reference counts, entries immutable while a reader may
// hold them (deferred reclamation), O(1) release, bounded with counted refusals. A differential test
// drives it with random operations against a naive model while a simulated reader looks entries up
// between quiescent points.
import { describe, expect, it } from 'vitest';
import {
  ADJ_BLACKHOLE,
  ADJ_F_IN_POOL,
  ADJ_KIND_NAMES,
  ADJ_MISS,
  AdjacencyTable,
  type AdjSpec,
} from '../../src/dataplane/tables/adjacency.js';
import { ReaderRegistry } from '../../src/dataplane/tables/qsbr.js';
import { TableFullError } from '../../src/dataplane/tables/errors.js';
import { prng } from '../fib/model.js';

const direct = (hop: number, mtu = 1500): AdjSpec => ({
  kind: 'direct',
  port: 0,
  nextHop: hop,
  neighbor: hop & 0xff,
  mtu,
  inPool: (hop & 1) === 1,
});

/** What a reader sees of entry i. */
function view(t: AdjacencyTable, i: number): string {
  const mac = Array.from(t.mac.subarray(i * 6, i * 6 + 6)).join('.');
  return `${t.kind[i]}|${t.port[i]}|${t.nextHop[i]}|${t.neighbor[i]}|${t.mtu[i]}|${t.flags[i]}|${mac}`;
}

describe('AdjacencyTable', () => {
  it('the same spec shares one entry; the last release retires it', () => {
    const t = AdjacencyTable.create(16);
    const a = t.acquire(direct(5));
    expect(a).toBeGreaterThan(0); // 0 is "no route"
    expect(t.acquire(direct(5))).toBe(a);
    expect(t.refs[a]).toBe(2);
    const b = t.acquire({
      kind: 'local',
      port: 3,
      nextHop: 0,
      neighbor: -1,
      mtu: 1480,
      mac: Uint8Array.of(1, 2, 3, 4, 5, 6),
    });
    expect(b).not.toBe(a);
    expect(t.kindName(b)).toBe('local');
    expect(Array.from(t.mac.subarray(b * 6, b * 6 + 6))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(t.flags[a] & ADJ_F_IN_POOL).toBe(ADJ_F_IN_POOL);
    expect(t.minMtu()).toBe(1480);
    t.release(a);
    expect(t.size).toBe(2);
    t.release(a);
    expect(t.size).toBe(1);
    expect(t.minMtu()).toBe(1480);
    t.release(a); // extra releases are ignored
    t.release(0);
    expect(t.refs[a]).toBe(0);
  });

  it('a released entry is reused only after every reader passed a quiescent point', () => {
    const readers = ReaderRegistry.create();
    const t = AdjacencyTable.create(3, readers); // entries 1 and 2
    const reader = readers.register();
    const a = t.acquire(direct(1));
    const b = t.acquire(direct(2));
    const seen = view(t, a); // the reader looked a up, and will rewrite with it
    t.release(a);
    expect(t.pending).toBe(1);
    // the table is full: the released entry may still be in the reader's hands
    expect(() => t.acquire(direct(3))).toThrow(TableFullError);
    expect(view(t, a)).toBe(seen);
    readers.quiescent(reader);
    const c = t.acquire(direct(3)); // now a is reclaimed and reused
    expect(c).toBe(a);
    expect(t.gen[a]).toBe(1);
    expect(t.nextHop[c]).toBe(3);
    expect(t.refs[b]).toBe(1);
    expect(t.refusals).toBe(1);
  });

  it('refuses with TableFullError (code adjacency-table-full) and recovers', () => {
    const t = AdjacencyTable.create(4);
    for (let k = 1; k <= 3; k++) t.acquire(direct(k));
    let err: unknown;
    try {
      t.acquire(direct(9));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TableFullError);
    expect((err as TableFullError).code).toBe('adjacency-table-full');
    expect((err as Error).message).toMatch(/adjacency table full: all 3 entries/);
    expect(t.refusals).toBe(1);
    t.release(t.acquire(direct(2))); // a shared one: still referenced
    expect(() => t.acquire(direct(9))).toThrow(TableFullError);
    t.release(1);
    expect(t.nextHop[t.acquire(direct(9))]).toBe(9);
  });

  it('a worker view reads the same memory and cannot release', () => {
    const t = AdjacencyTable.create(8);
    const a = t.acquire(direct(7, 1450));
    const v = AdjacencyTable.attach(structuredClone(t.shared));
    expect(v.kindName(a)).toBe('direct');
    expect(v.mtu[a]).toBe(1450);
    expect(v.minMtu()).toBe(1450);
    expect(() => {
      v.refs[a] = 1;
      v.release(a);
    }).toThrow(/read-only/);
  });

  it('agrees with a naive model under random acquire/release while a reader holds what it looked up', () => {
    const rand = prng(0xad1);
    const readers = ReaderRegistry.create();
    const cap = 40;
    const t = AdjacencyTable.create(cap, readers);
    const reader = readers.register();
    // model: key -> { index, refs }; the reader's view of the entries it looked up since its last
    // quiescent point
    const live = new Map<string, { i: number; refs: number; spec: AdjSpec }>();
    const held = new Map<number, string>();
    let refusals = 0;
    const kinds: AdjSpec['kind'][] = ['direct', 'gateway', 'ipip', 'vxlan', 'blackhole', 'local'];
    for (let step = 0; step < 20000; step++) {
      const x = rand() % 100;
      if (x < 45) {
        const k = rand() % 60;
        const spec: AdjSpec = {
          kind: kinds[k % kinds.length],
          port: k % 3,
          nextHop: k,
          neighbor: k % 5,
          mtu: 1400 + (k % 4) * 10,
          mac: k % 2 === 0 ? Uint8Array.of(k, 1, 2, 3, 4, 5) : undefined,
        };
        const key = `${spec.kind}|${k}`;
        const m = live.get(key);
        let got: number;
        try {
          got = t.acquire(spec);
        } catch (e) {
          expect(e).toBeInstanceOf(TableFullError);
          refusals++;
          expect(m).toBeUndefined(); // an existing entry is always found
          continue;
        }
        if (m) {
          expect(got).toBe(m.i);
          m.refs++;
        } else {
          expect([...live.values()].some((v) => v.i === got)).toBe(false);
          expect(held.has(got)).toBe(false); // never reuse what the reader may still hold
          expect(ADJ_KIND_NAMES[t.kind[got]]).toBe(spec.kind);
          live.set(key, { i: got, refs: 1, spec });
        }
      } else if (x < 80) {
        const keys = [...live.keys()];
        if (keys.length === 0) continue;
        const key = keys[rand() % keys.length];
        const m = live.get(key)!;
        t.release(m.i);
        if (--m.refs === 0) live.delete(key);
      } else if (x < 95) {
        // the reader looks an entry up (a FIB lookup returned it) and keeps it for its batch
        const vals = [...live.values()];
        if (vals.length === 0) continue;
        const m = vals[rand() % vals.length];
        if (!held.has(m.i)) held.set(m.i, view(t, m.i));
      } else {
        readers.quiescent(reader);
        held.clear();
      }
      // (plain checks: an expect() per entry per step would dominate the run time)
      for (const [i, v] of held) if (view(t, i) !== v) expect(view(t, i), `entry ${i} changed`).toBe(v);
      if (t.size !== live.size) expect(t.size).toBe(live.size);
      for (const m of live.values()) if (t.refs[m.i] !== m.refs) expect(t.refs[m.i]).toBe(m.refs);
    }
    expect(t.refusals).toBe(refusals);
    expect(refusals).toBeGreaterThan(0);
    let minMtu = 0;
    for (const m of live.values()) {
      if (m.spec.kind === 'blackhole') continue;
      if (minMtu === 0 || m.spec.mtu < minMtu) minMtu = m.spec.mtu;
    }
    expect(t.minMtu()).toBe(minMtu);
    // everything released and passed: the whole table is reusable
    for (const m of live.values()) for (let r = 0; r < m.refs; r++) t.release(m.i);
    readers.quiescent(reader);
    const all = new Set<number>();
    for (let k = 0; k < cap - 1; k++) all.add(t.acquire(direct(1000 + k)));
    expect(all.size).toBe(cap - 1);
    expect(t.kind[0]).toBe(ADJ_MISS);
    expect(ADJ_BLACKHOLE).toBe(6);
  });
});
