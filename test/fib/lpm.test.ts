// Lpm4 edge cases: default route, /32, the /24–/25 boundary, nesting, range checks, tbl8 exhaustion
// and deferred group reuse, read-only attached views. Each test builds its own table (64 MiB of tbl24
// address space, resident only where written).
import { describe, expect, it } from 'vitest';
import { parseIp4 } from '../../src/common/addr.js';
import {
  LPM_MAX_VALUE,
  LPM_MISS,
  Lpm4,
  Lpm4FullError,
  lpmLookup,
  lpmLookupBatch,
} from '../../src/dataplane/tables/lpm.js';

function ip(text: string): number {
  const v = parseIp4(text);
  if (v === null) throw new Error(`bad ip ${text}`);
  return v;
}

/** insert from 'a.b.c.d/len' text */
function add(lpm: Lpm4, prefix: string, value: number): void {
  const [a, l] = prefix.split('/');
  lpm.insert(ip(a), Number(l), value);
}

function del(lpm: Lpm4, prefix: string): boolean {
  const [a, l] = prefix.split('/');
  return lpm.remove(ip(a), Number(l));
}

/** tbl24 entry of the /24 holding `addr` has its EXT bit (a tbl8 group) */
function isExt(lpm: Lpm4, addr: number): boolean {
  return (lpm.tbl24[addr >>> 8] & 0x40000000) !== 0;
}

function groupOf(lpm: Lpm4, addr: number): number {
  return lpm.tbl24[addr >>> 8] & 0xffffff;
}

describe('Lpm4 basics', () => {
  it('misses everywhere when empty', () => {
    const lpm = Lpm4.create();
    for (const a of ['0.0.0.0', '10.0.0.1', '255.255.255.255']) expect(lpm.lookup(ip(a))).toBe(LPM_MISS);
    expect(lpm.size).toBe(0);
    expect([...lpm.entries()]).toEqual([]);
    expect(lpm.memoryBytes()).toBeGreaterThanOrEqual(64 * 2 ** 20);
  });

  it('handles the default route (len 0), host bits ignored', () => {
    const lpm = Lpm4.create();
    lpm.insert(0x12345678, 0, 7);
    expect(lpm.get(0, 0)).toBe(7);
    expect(lpm.get(0xffffffff, 0)).toBe(7);
    for (const a of ['0.0.0.0', '10.1.2.3', '255.255.255.255']) expect(lpm.lookup(ip(a))).toBe(7);
    add(lpm, '10.0.0.0/8', 8);
    add(lpm, '10.1.2.200/32', 32);
    expect(lpm.lookup(ip('10.1.2.200'))).toBe(32);
    expect(lpm.lookup(ip('10.1.2.201'))).toBe(8);
    expect(lpm.lookup(ip('11.0.0.0'))).toBe(7);
    lpm.insert(0, 0, 9); // replace
    expect(lpm.size).toBe(3);
    expect(lpm.lookup(ip('11.0.0.0'))).toBe(9);
    expect(lpm.lookup(ip('10.1.2.201'))).toBe(8);
    expect(lpm.lookup(ip('10.1.2.1'))).toBe(8);
    expect(lpm.remove(0, 0)).toBe(true);
    expect(lpm.lookup(ip('11.0.0.0'))).toBe(LPM_MISS);
    expect(lpm.lookup(ip('10.1.2.201'))).toBe(8);
    expect(lpm.lookup(ip('10.1.2.200'))).toBe(32);
    expect(lpm.remove(0, 0)).toBe(false);
  });

  it('handles /32s with and without covers', () => {
    const lpm = Lpm4.create();
    add(lpm, '10.65.0.24/32', 1);
    expect(lpm.lookup(ip('10.65.0.24'))).toBe(1);
    expect(lpm.lookup(ip('10.65.0.23'))).toBe(LPM_MISS);
    expect(lpm.lookup(ip('10.65.0.25'))).toBe(LPM_MISS);
    add(lpm, '10.65.0.0/26', 2);
    expect(lpm.lookup(ip('10.65.0.23'))).toBe(2);
    expect(lpm.lookup(ip('10.65.0.63'))).toBe(2);
    expect(lpm.lookup(ip('10.65.0.64'))).toBe(LPM_MISS);
    add(lpm, '255.255.255.255/32', 3);
    add(lpm, '0.0.0.0/32', 4);
    expect(lpm.lookup(0xffffffff)).toBe(3);
    expect(lpm.lookup(-1)).toBe(3); // int32 view of the same address
    expect(lpm.lookup(0)).toBe(4);
    expect(lpm.lookup(1)).toBe(LPM_MISS);
    expect(del(lpm, '10.65.0.24/32')).toBe(true);
    expect(lpm.lookup(ip('10.65.0.24'))).toBe(2);
  });

  it('gets the /24–/25 boundary right and recycles the tbl8 group', () => {
    const lpm = Lpm4.create();
    add(lpm, '10.1.2.0/24', 24);
    expect(isExt(lpm, ip('10.1.2.0'))).toBe(false);
    add(lpm, '10.1.2.128/25', 25);
    expect(isExt(lpm, ip('10.1.2.0'))).toBe(true);
    expect(lpm.stats().tbl8GroupsUsed).toBe(1);
    expect(lpm.lookup(ip('10.1.2.0'))).toBe(24);
    expect(lpm.lookup(ip('10.1.2.127'))).toBe(24);
    expect(lpm.lookup(ip('10.1.2.128'))).toBe(25);
    expect(lpm.lookup(ip('10.1.2.255'))).toBe(25);
    expect(lpm.lookup(ip('10.1.1.255'))).toBe(LPM_MISS);
    expect(lpm.lookup(ip('10.1.3.0'))).toBe(LPM_MISS);
    add(lpm, '10.1.2.0/24', 240); // replace the /24 under an existing group
    expect(lpm.lookup(ip('10.1.2.127'))).toBe(240);
    expect(lpm.lookup(ip('10.1.2.128'))).toBe(25);
    expect(del(lpm, '10.1.2.0/24')).toBe(true);
    expect(lpm.lookup(ip('10.1.2.127'))).toBe(LPM_MISS);
    expect(lpm.lookup(ip('10.1.2.128'))).toBe(25);
    add(lpm, '10.1.0.0/16', 16);
    expect(del(lpm, '10.1.2.128/25')).toBe(true);
    expect(isExt(lpm, ip('10.1.2.0'))).toBe(false); // group given back, tbl24 entry plain again
    expect(lpm.stats().tbl8GroupsUsed).toBe(0);
    expect(lpm.lookup(ip('10.1.2.128'))).toBe(16);
    expect(lpm.lookup(ip('10.1.2.0'))).toBe(16);
  });

  it('inserts a shorter prefix over existing longer ones without hiding them', () => {
    const lpm = Lpm4.create();
    add(lpm, '192.168.1.7/32', 1);
    add(lpm, '192.168.1.64/26', 2);
    add(lpm, '192.168.2.0/24', 3);
    add(lpm, '192.168.0.0/20', 4);
    add(lpm, '192.168.0.0/16', 5);
    expect(lpm.lookup(ip('192.168.1.7'))).toBe(1);
    expect(lpm.lookup(ip('192.168.1.8'))).toBe(4);
    expect(lpm.lookup(ip('192.168.1.100'))).toBe(2);
    expect(lpm.lookup(ip('192.168.2.9'))).toBe(3);
    expect(lpm.lookup(ip('192.168.15.255'))).toBe(4);
    expect(lpm.lookup(ip('192.168.16.0'))).toBe(5);
    add(lpm, '192.168.0.0/16', 50); // replacing the outer one keeps the inner ones
    expect(lpm.lookup(ip('192.168.1.7'))).toBe(1);
    expect(lpm.lookup(ip('192.168.200.1'))).toBe(50);
    add(lpm, '0.0.0.0/0', 99);
    expect(lpm.lookup(ip('192.168.1.100'))).toBe(2);
    expect(lpm.lookup(ip('192.169.0.0'))).toBe(99);
  });

  it('removes the middle of a nest and restores the next covering route', () => {
    const lpm = Lpm4.create();
    const nest: [string, number][] = [
      ['10.0.0.0/8', 8],
      ['10.20.0.0/16', 16],
      ['10.20.30.0/24', 24],
      ['10.20.30.16/28', 28],
      ['10.20.30.17/32', 32],
    ];
    for (const [p, v] of nest) add(lpm, p, v);
    const probe = () =>
      ['10.20.30.17', '10.20.30.18', '10.20.30.40', '10.20.31.0', '10.21.0.0', '11.0.0.0'].map((a) =>
        lpm.lookup(ip(a)),
      );
    expect(probe()).toEqual([32, 28, 24, 16, 8, 0]);
    expect(del(lpm, '10.20.30.0/24')).toBe(true);
    expect(probe()).toEqual([32, 28, 16, 16, 8, 0]);
    expect(del(lpm, '10.20.30.16/28')).toBe(true);
    expect(probe()).toEqual([32, 16, 16, 16, 8, 0]);
    expect(del(lpm, '10.20.0.0/16')).toBe(true);
    expect(probe()).toEqual([32, 8, 8, 8, 8, 0]);
    add(lpm, '10.20.30.0/24', 240);
    expect(probe()).toEqual([32, 240, 240, 8, 8, 0]);
    expect(del(lpm, '10.20.30.17/32')).toBe(true);
    expect(probe()).toEqual([240, 240, 240, 8, 8, 0]);
    expect(lpm.stats().tbl8GroupsUsed).toBe(0);
    expect(del(lpm, '10.0.0.0/8')).toBe(true);
    expect(del(lpm, '10.20.30.0/24')).toBe(true);
    expect(probe()).toEqual([0, 0, 0, 0, 0, 0]);
    expect(lpm.size).toBe(0);
  });

  it('removing a nonexistent prefix is a no-op returning false', () => {
    const lpm = Lpm4.create();
    add(lpm, '10.1.0.0/16', 1);
    add(lpm, '10.1.2.3/32', 2);
    expect(del(lpm, '10.1.0.0/17')).toBe(false);
    expect(del(lpm, '10.1.0.0/15')).toBe(false);
    expect(del(lpm, '10.2.0.0/16')).toBe(false);
    expect(del(lpm, '10.1.2.4/32')).toBe(false);
    expect(del(lpm, '10.1.2.0/25')).toBe(false);
    expect(del(lpm, '0.0.0.0/0')).toBe(false);
    expect(lpm.size).toBe(2);
    expect(lpm.lookup(ip('10.1.2.3'))).toBe(2);
    expect(lpm.lookup(ip('10.1.2.4'))).toBe(1);
  });

  it('clears host bits and replaces identical prefixes', () => {
    const lpm = Lpm4.create();
    lpm.insert(ip('10.1.2.3'), 24, 5);
    expect(lpm.get(ip('10.1.2.0'), 24)).toBe(5);
    expect(lpm.get(ip('10.1.2.99'), 24)).toBe(5);
    expect(lpm.get(ip('10.1.2.0'), 25)).toBe(LPM_MISS);
    lpm.insert(ip('10.1.2.0'), 24, 6);
    expect(lpm.size).toBe(1);
    expect(lpm.get(ip('10.1.2.0'), 24)).toBe(6);
    lpm.insert(ip('10.1.2.201'), 30, 7);
    lpm.insert(ip('10.1.2.202'), 30, 8);
    expect(lpm.size).toBe(2);
    expect(lpm.lookup(ip('10.1.2.203'))).toBe(8);
    expect([...lpm.entries()]).toEqual([
      { addr: ip('10.1.2.0'), len: 24, value: 6 },
      { addr: ip('10.1.2.200'), len: 30, value: 8 },
    ]);
    lpm.insert(0xc0a80000 | 0, 16, LPM_MAX_VALUE); // negative int32 address accepted
    expect(lpm.get(ip('192.168.0.0'), 16)).toBe(0xffffff);
    expect(lpm.lookup(ip('192.168.7.7'))).toBe(0xffffff);
  });

  it('rejects out-of-range values, lengths and addresses without changing the table', () => {
    const lpm = Lpm4.create();
    add(lpm, '10.0.0.0/8', 1);
    for (const v of [0, -1, 0x1000000, 1.5, NaN, Infinity]) {
      expect(() => lpm.insert(ip('10.1.0.0'), 16, v)).toThrow(RangeError);
    }
    expect(() => lpm.insert(ip('10.1.0.0'), 16, 0)).toThrow(/value 0 is not an integer in 1\.\.0xFFFFFF/);
    for (const l of [-1, 33, 1.5, NaN]) {
      expect(() => lpm.insert(ip('10.1.0.0'), l, 2)).toThrow(RangeError);
      expect(() => lpm.remove(ip('10.1.0.0'), l)).toThrow(RangeError);
      expect(() => lpm.get(ip('10.1.0.0'), l)).toThrow(RangeError);
    }
    for (const a of [2 ** 32, -(2 ** 31) - 1, 1.5, NaN]) {
      expect(() => lpm.insert(a, 16, 2)).toThrow(/address/);
    }
    expect(lpm.size).toBe(1);
    expect(lpm.lookup(ip('10.1.0.0'))).toBe(1);
    expect(() => Lpm4.create({ tbl8Groups: 0 })).toThrow(RangeError);
    expect(() => Lpm4.create({ tbl8Groups: 2 ** 21 })).toThrow(RangeError);
  });

  it('lpmLookup and lpmLookupBatch agree with lookup', () => {
    const lpm = Lpm4.create();
    add(lpm, '10.0.0.0/8', 1);
    add(lpm, '10.1.1.0/24', 2);
    add(lpm, '10.1.1.128/25', 3);
    const ips = Uint32Array.from(['9.255.255.255', '10.0.0.0', '10.1.1.1', '10.1.1.200', '10.1.2.0'].map(ip));
    const out = new Uint32Array(ips.length);
    lpmLookupBatch(lpm.tbl24, lpm.tbl8, ips, out, ips.length);
    expect([...out]).toEqual([0, 1, 2, 3, 1]);
    expect([...ips].map((a) => lpmLookup(lpm.tbl24, lpm.tbl8, a))).toEqual([0, 1, 2, 3, 1]);
  });
});

describe('Lpm4 tbl8 groups', () => {
  it('grows the tbl8 buffer on demand up to the limit', () => {
    const lpm = Lpm4.create({ tbl8Groups: 5, tbl8InitialGroups: 1 });
    const before = lpm.memoryBytes();
    expect(lpm.stats().tbl8GroupsCapacity).toBe(1);
    for (let i = 0; i < 5; i++) lpm.insert(ip('10.0.0.1') + (i << 8), 32, 1 + i);
    expect(lpm.stats()).toMatchObject({ tbl8GroupsUsed: 5, tbl8GroupsCapacity: 5, tbl8GroupsMax: 5 });
    expect(lpm.memoryBytes()).toBe(before + 4 * 1024);
    for (let i = 0; i < 5; i++) expect(lpm.lookup(ip('10.0.0.1') + (i << 8))).toBe(1 + i);
  });

  it('throws Lpm4FullError when groups run out, leaving the table unchanged', () => {
    let now = 0;
    const lpm = Lpm4.create({ tbl8Groups: 2, tbl8InitialGroups: 1, now: () => now });
    add(lpm, '10.0.0.0/16', 16);
    add(lpm, '10.0.1.0/25', 1);
    add(lpm, '10.0.2.0/25', 2);
    let err: unknown;
    try {
      add(lpm, '10.0.3.0/25', 3);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Lpm4FullError);
    expect(err).toBeInstanceOf(RangeError);
    expect((err as Lpm4FullError).code).toBe('fib-tbl8-full');
    expect((err as Error).message).toMatch(/10\.0\.3\.0\/25.*all 2 tbl8 groups/);
    expect(lpm.size).toBe(3);
    expect(lpm.get(ip('10.0.3.0'), 25)).toBe(LPM_MISS);
    expect(lpm.lookup(ip('10.0.3.1'))).toBe(16);
    expect(isExt(lpm, ip('10.0.3.0'))).toBe(false);
    // a longer prefix inside a /24 that already has a group needs no new group
    add(lpm, '10.0.1.200/32', 4);
    expect(lpm.lookup(ip('10.0.1.200'))).toBe(4);

    // freeing a group parks it for tbl8ReuseDelayMs (default 1000 ms) before reuse
    const freed = groupOf(lpm, ip('10.0.2.0'));
    expect(del(lpm, '10.0.2.0/25')).toBe(true);
    expect(lpm.stats()).toMatchObject({ tbl8GroupsUsed: 1, tbl8GroupsPending: 1 });
    now = 999;
    expect(() => add(lpm, '10.0.3.0/25', 3)).toThrow(/1 freed and awaiting reader quiescence/);
    expect(lpm.lookup(ip('10.0.3.1'))).toBe(16);
    now = 1000;
    add(lpm, '10.0.3.0/25', 3);
    expect(groupOf(lpm, ip('10.0.3.0'))).toBe(freed);
    expect(lpm.stats()).toMatchObject({ tbl8GroupsUsed: 2, tbl8GroupsPending: 0 });
    expect(lpm.lookup(ip('10.0.3.1'))).toBe(3);
    expect(lpm.lookup(ip('10.0.3.128'))).toBe(16);
    expect(lpm.lookup(ip('10.0.2.1'))).toBe(16);
  });

  it('reuses a freed group only after every online reader has been quiescent', () => {
    const lpm = Lpm4.create({ tbl8Groups: 1, tbl8ReuseDelayMs: 0 });
    const view = Lpm4.attach(lpm.shared);
    const r1 = view.registerReader();
    const r2 = view.registerReader();
    expect(r2).not.toBe(r1);
    add(lpm, '10.0.1.0/25', 1);
    expect(del(lpm, '10.0.1.0/25')).toBe(true);
    expect(() => add(lpm, '10.0.2.0/25', 2)).toThrow(Lpm4FullError);
    view.quiescent(r1);
    expect(() => add(lpm, '10.0.2.0/25', 2)).toThrow(Lpm4FullError); // r2 may still be inside it
    view.offline(r2); // an offline reader does not hold reclamation back
    add(lpm, '10.0.2.0/25', 2);
    expect(view.lookup(ip('10.0.2.1'))).toBe(2);

    view.quiescent(r2); // back online
    expect(del(lpm, '10.0.2.0/25')).toBe(true);
    view.quiescent(r1);
    expect(() => add(lpm, '10.0.3.0/25', 3)).toThrow(Lpm4FullError);
    view.unregisterReader(r2);
    add(lpm, '10.0.3.0/25', 3);
    expect(view.lookup(ip('10.0.3.1'))).toBe(3);
    view.unregisterReader(r1);
  });
});

describe('Lpm4.attach', () => {
  it('gives a read-only view that sees the writer’s changes', () => {
    const lpm = Lpm4.create({ tbl8InitialGroups: 1 });
    const view = Lpm4.attach(lpm.shared);
    add(lpm, '10.0.0.0/8', 1);
    expect(view.lookup(ip('10.9.9.9'))).toBe(1);
    for (let i = 0; i < 10; i++) lpm.insert(ip('10.0.0.7') + (i << 8), 32, 100 + i); // grows tbl8
    for (let i = 0; i < 10; i++) expect(view.lookup(ip('10.0.0.7') + (i << 8))).toBe(100 + i);
    expect(view.size).toBe(11);
    expect(view.stats()).toMatchObject({ routes: 11, tbl8GroupsUsed: 10 });
    expect(view.memoryBytes()).toBe(lpm.memoryBytes());
    expect(() => view.insert(0, 0, 1)).toThrow(/read-only view/);
    expect(() => view.remove(0, 0)).toThrow(/read-only view/);
    expect(() => view.get(0, 0)).toThrow(/read-only view/);
    expect(() => view.entries()).toThrow(/read-only view/);
  });

  it('rejects things that are not Lpm4Shared', () => {
    const lpm = Lpm4.create();
    expect(() => Lpm4.attach({} as never)).toThrow(TypeError);
    expect(() => Lpm4.attach({ ...lpm.shared, version: 2 } as never)).toThrow(TypeError);
    expect(() => Lpm4.attach({ ...lpm.shared, ctl: new SharedArrayBuffer(8) })).toThrow(TypeError);
    expect(() => Lpm4.attach(structuredClone(lpm.shared))).not.toThrow();
  });
});
