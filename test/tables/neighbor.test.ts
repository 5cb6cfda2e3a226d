// NeighborTable: reference-counted next hops freed after the readers' quiescent points, pinned static
// entries, bounded with counted refusals that recover, ARP learning under the seqlock, and copyMac's
// bounded retry when a writer died mid-write. A differential test drives it with random operations
// against a naive model while a simulated reader holds the indices it found.
import { describe, expect, it } from 'vitest';
import {
  NBR_INCOMPLETE,
  NBR_REACHABLE,
  NBR_STATIC,
  NeighborTable,
} from '../../src/dataplane/tables/neighbor.js';
import { ReaderRegistry } from '../../src/dataplane/tables/qsbr.js';
import { TableFullError } from '../../src/dataplane/tables/errors.js';
import { prng } from '../fib/model.js';

const IP = (k: number): number => (0x0a000000 + k) >>> 0; // 10.0.x.y
const MAC = Uint8Array.of(0x02, 0x11, 0x22, 0x33, 0x44, 0x55);

function mac(t: NeighborTable, i: number): string | null {
  const b = new Uint8Array(6);
  return t.copyMac(i, b, 0) ? Array.from(b).join('.') : null;
}

describe('NeighborTable', () => {
  it('defaults to 16384 entries and finds every one of 10 000 next hops', () => {
    const t = NeighborTable.create();
    expect(t.capacity).toBe(16384);
    const idx = Array.from({ length: 10000 }, (_, k) => t.acquire(IP(k)));
    expect(new Set(idx).size).toBe(10000);
    for (let k = 0; k < 10000; k++) expect(t.find(IP(k))).toBe(idx[k]);
    expect(t.find(IP(20000))).toBe(-1);
    expect(t.size).toBe(10000);
  });

  it('counts references; the last release unlinks at once and frees after quiescence', () => {
    const readers = ReaderRegistry.create();
    const t = NeighborTable.create(2, readers);
    const r = readers.register();
    const a = t.acquire(IP(1));
    expect(t.acquire(IP(1))).toBe(a);
    expect(t.refCount(a)).toBe(2);
    expect(t.state[a]).toBe(NBR_INCOMPLETE);
    t.release(a);
    expect(t.find(IP(1))).toBe(a);
    t.release(a);
    expect(t.find(IP(1))).toBe(-1); // gone for new lookups
    expect(t.ip[a]).toBe(IP(1)); // but intact for a reader that found it before
    expect(t.pending).toBe(1);
    t.acquire(IP(2));
    expect(() => t.acquire(IP(3))).toThrow(TableFullError);
    readers.quiescent(r);
    const c = t.acquire(IP(3));
    expect(c).toBe(a);
    expect(t.gen[a]).toBe(1);
    expect(t.state[c]).toBe(NBR_INCOMPLETE);
    expect(mac(t, c)).toBe(null);
  });

  it('static entries are pinned and never overwritten by ARP', () => {
    const t = NeighborTable.create(4);
    const s = t.setStatic(IP(9), MAC);
    expect(t.state[s]).toBe(NBR_STATIC);
    expect(t.acquire(IP(9))).toBe(s);
    t.release(s);
    t.release(s);
    expect(t.find(IP(9))).toBe(s); // pinned
    expect(t.learn(s, Uint8Array.of(9, 9, 9, 9, 9, 9), 0)).toBe(false);
    expect(mac(t, s)).toBe('2.17.34.51.68.85');
    expect(t.entries()).toEqual([{ ip: IP(9), state: 'static', mac: '02:11:22:33:44:55' }]);
  });

  it('makeStatic: a fixed MAC without pinning (the udp uplink placeholder)', () => {
    const t = NeighborTable.create(4);
    const i = t.acquire(IP(4));
    t.makeStatic(i, MAC);
    expect(t.resolved(i)).toBe(true);
    t.release(i);
    expect(t.find(IP(4))).toBe(-1);
  });

  it('learn() from ARP resolves an entry, and changes it only when the MAC changes', () => {
    const t = NeighborTable.create(4);
    const i = t.acquire(IP(5));
    expect(t.resolved(i)).toBe(false);
    const frame = Uint8Array.of(0, 0, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff);
    expect(t.learn(i, frame, 2)).toBe(true);
    expect(t.state[i]).toBe(NBR_REACHABLE);
    expect(t.learn(i, frame, 2)).toBe(false);
    const out = new Uint8Array(10).fill(0xa5);
    expect(t.copyMac(i, out, 3)).toBe(true);
    expect(Array.from(out)).toEqual([0xa5, 0xa5, 0xa5, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0xa5]);
    // a worker view learns into the same memory
    const v = NeighborTable.attach(structuredClone(t.shared));
    expect(v.find(IP(5))).toBe(i);
    expect(v.learn(i, MAC, 0)).toBe(true);
    expect(mac(t, i)).toBe('2.17.34.51.68.85');
    expect(() => v.acquire(IP(6))).toThrow(/read-only/);
  });

  it('a full table refuses with a counted reason and recovers as soon as entries free', () => {
    const t = NeighborTable.create(3);
    const idx = [1, 2, 3].map((k) => t.acquire(IP(k)));
    let err: unknown;
    try {
      t.acquire(IP(4));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TableFullError);
    expect((err as TableFullError).code).toBe('neighbor-table-full');
    expect((err as Error).message).toMatch(/neighbour table full: all 3 entries .* next hop 10\.0\.0\.4/);
    expect(t.refusals).toBe(1);
    expect(() => t.setStatic(IP(5), MAC)).toThrow(TableFullError);
    expect(t.refusals).toBe(2);
    t.release(idx[1]); // no readers registered: reusable at once
    expect(t.acquire(IP(4))).toBe(idx[1]);
  });

  it('copyMac gives up (counted) on a writer that died mid-write; maintain() repairs the entry', () => {
    const t = NeighborTable.create(4);
    const i = t.acquire(IP(7));
    t.learn(i, MAC, 0);
    // a worker died between taking the seqlock and releasing it
    Atomics.add(t.seq, i, 1);
    const out = new Uint8Array(6);
    expect(t.copyMac(i, out, 0)).toBe(false); // bounded retries, then "no MAC"
    expect(t.counters.stuck).toBe(1);
    expect(t.learn(i, Uint8Array.of(1, 2, 3, 4, 5, 6), 0)).toBe(false); // writers skip a busy lock
    expect(t.maintain()).toBe(0); // first sighting: maybe a live writer
    expect(t.maintain()).toBe(1); // still odd: the writer is dead
    expect(t.counters.repaired).toBe(1);
    expect(t.state[i]).toBe(NBR_INCOMPLETE); // resolve again by ARP
    expect(t.learn(i, MAC, 0)).toBe(true);
    expect(mac(t, i)).toBe('2.17.34.51.68.85');
    // a static entry gets its configured MAC back
    const s = t.setStatic(IP(8), MAC);
    Atomics.add(t.seq, s, 1);
    t.maintain();
    t.maintain();
    expect(t.state[s]).toBe(NBR_STATIC);
    expect(mac(t, s)).toBe('2.17.34.51.68.85');
  });

  it('agrees with a naive model under random churn while a reader holds what it found', () => {
    const rand = prng(0x4e1);
    const readers = ReaderRegistry.create();
    const cap = 48;
    const t = NeighborTable.create(cap, readers);
    const reader = readers.register();
    const refs = new Map<number, number>(); // ip -> references
    const index = new Map<number, number>(); // ip -> entry
    const held = new Map<number, number>(); // entry -> ip, found by the reader since its quiescent point
    let refusals = 0;
    for (let step = 0; step < 30000; step++) {
      const x = rand() % 100;
      const ip = IP(rand() % 80);
      if (x < 40) {
        let i: number;
        try {
          i = t.acquire(ip);
        } catch (e) {
          expect(e).toBeInstanceOf(TableFullError);
          expect(refs.has(ip)).toBe(false);
          refusals++;
          continue;
        }
        if (refs.has(ip)) {
          if (i !== index.get(ip)) expect(i).toBe(index.get(ip));
        } else {
          if (held.has(i) || [...index.values()].includes(i)) expect.fail(`entry ${i} reused too early`);
          index.set(ip, i);
        }
        refs.set(ip, (refs.get(ip) ?? 0) + 1);
      } else if (x < 75) {
        const n = refs.get(ip);
        if (n === undefined) continue;
        t.release(index.get(ip)!);
        if (n === 1) {
          refs.delete(ip);
          index.delete(ip);
        } else refs.set(ip, n - 1);
      } else if (x < 85) {
        // the reader (ip4-rewrite, arp-reply) finds an entry and keeps its index for the batch
        const i = t.find(ip);
        if (i !== (index.get(ip) ?? -1)) expect(i).toBe(index.get(ip) ?? -1);
        if (i >= 0) {
          held.set(i, ip);
          if (rand() % 2 === 0) t.learn(i, Uint8Array.of(2, 0, 0, 0, 0, ip & 0xff), 0);
        }
      } else if (x < 95) {
        readers.quiescent(reader);
        held.clear();
      } else {
        t.maintain();
      }
      for (const [i, hip] of held) if (t.ip[i] !== hip) expect.fail(`entry ${i} changed under the reader`);
    }
    expect(t.refusals).toBe(refusals);
    expect(refusals).toBeGreaterThan(0);
    expect(t.size).toBe(index.size);
    expect(t.entries().map((e) => e.ip)).toEqual([...index].sort((a, b) => a[1] - b[1]).map(([ip]) => ip));
  });
});
