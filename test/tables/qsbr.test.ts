// The reader registry and the retire queue (src/dataplane/tables/qsbr.ts): when is a retired entry
// reclaimable, with online, offline, dead and restarted readers, across epoch wrap-around.
import { describe, expect, it } from 'vitest';
import { QSBR_MAX_READERS, ReaderRegistry, RetireQueue } from '../../src/dataplane/tables/qsbr.js';

describe('ReaderRegistry', () => {
  it('with no reader everything retired is reclaimable at once', () => {
    const r = ReaderRegistry.create();
    const tag = r.retire();
    expect(r.passed(tag)).toBe(true);
    expect(r.online()).toBe(0);
  });

  it('an online reader holds retirements back until its next quiescent point', () => {
    const r = ReaderRegistry.create();
    const a = r.register();
    const b = r.register();
    expect(a).not.toBe(b);
    const tag = r.retire();
    expect(r.passed(tag)).toBe(false);
    r.quiescent(a);
    expect(r.passed(tag)).toBe(false); // b still may hold it
    r.quiescent(b);
    expect(r.passed(tag)).toBe(true);
    // a later retirement needs later quiescent points again
    const tag2 = r.retire();
    expect(r.passed(tag2)).toBe(false);
    expect(r.passed(tag)).toBe(true);
  });

  it('offline readers do not hold anything; quiescent() brings them back online', () => {
    const r = ReaderRegistry.create();
    const a = r.register();
    r.offline(a);
    const tag = r.retire();
    expect(r.passed(tag)).toBe(true);
    r.quiescent(a); // online again, having seen the current epoch
    expect(r.passed(tag)).toBe(true);
    const tag2 = r.retire();
    expect(r.passed(tag2)).toBe(false);
  });

  it('a reader registering after a retirement does not hold it', () => {
    const r = ReaderRegistry.create();
    const tag = r.retire();
    r.register();
    expect(r.passed(tag)).toBe(true);
  });

  it('a dead reader is released by the control thread; a restart re-registers in its slot', () => {
    const r = ReaderRegistry.create();
    const w = r.register(3);
    expect(w).toBe(3);
    const inc = r.incarnation(3);
    const tag = r.retire();
    expect(r.passed(tag)).toBe(false); // the worker died here, never to announce again
    r.release(3);
    expect(r.passed(tag)).toBe(true);
    expect(r.incarnation(3)).not.toBe(inc);
    expect(r.registered(3)).toBe(false);
    // the restarted worker takes its slot back (whatever it held)
    r.register(3);
    expect(r.registered(3)).toBe(true);
    const tag2 = r.retire();
    expect(r.passed(tag2)).toBe(false);
    // registering a fixed slot over a live one simply replaces it (a restart is the only user)
    r.register(3);
    expect(r.passed(tag2)).toBe(true);
  });

  it('attach() over a structured clone sees the same readers; bad input is refused', () => {
    const r = ReaderRegistry.create();
    const v = ReaderRegistry.attach(structuredClone(r.shared));
    const s = v.register();
    const tag = r.retire();
    expect(r.passed(tag)).toBe(false);
    v.quiescent(s);
    expect(r.passed(tag)).toBe(true);
    expect(() => ReaderRegistry.attach({ version: 1, sab: new SharedArrayBuffer(8) })).toThrow(TypeError);
    expect(() => r.register(QSBR_MAX_READERS)).toThrow(RangeError);
  });

  it('all slots taken: register() refuses', () => {
    const r = ReaderRegistry.create();
    for (let k = 0; k < QSBR_MAX_READERS; k++) r.register();
    expect(() => r.register()).toThrow(/reader slots are taken/);
  });

  it('works across the wrap-around of the 32-bit epoch', () => {
    const r = ReaderRegistry.create();
    const words = new Int32Array(r.shared.sab);
    words[1] = 0x7ffffffa; // the epoch word, a few retirements before it wraps
    const a = r.register();
    const tags: number[] = [];
    for (let k = 0; k < 6; k++) tags.push(r.retire());
    expect(tags.some((t) => t < 0)).toBe(true); // wrapped
    for (const t of tags) expect(r.passed(t)).toBe(false);
    r.quiescent(a);
    for (const t of tags) expect(r.passed(t)).toBe(true);
    const late = r.retire();
    expect(r.passed(late)).toBe(false);
  });
});

describe('RetireQueue', () => {
  it('reclaims in retirement order, only what every reader has passed', () => {
    const r = ReaderRegistry.create();
    const q = new RetireQueue(r);
    const a = r.register();
    q.retire(10);
    q.retire(11);
    const got: number[] = [];
    expect(q.reclaim((i) => got.push(i))).toBe(0);
    r.quiescent(a);
    q.retire(12); // after the quiescent point: still held
    expect(q.reclaim((i) => got.push(i))).toBe(2);
    expect(got).toEqual([10, 11]);
    expect(q.size).toBe(1);
    r.quiescent(a);
    q.reclaim((i) => got.push(i));
    expect(got).toEqual([10, 11, 12]);
    expect(q.size).toBe(0);
  });

  it('an optional minimum delay (injected clock) holds entries back too', () => {
    const r = ReaderRegistry.create();
    let now = 1000;
    const q = new RetireQueue(r, 500, () => now);
    q.retire(1);
    const got: number[] = [];
    q.reclaim((i) => got.push(i));
    expect(got).toEqual([]);
    now += 499;
    q.reclaim((i) => got.push(i));
    expect(got).toEqual([]);
    now += 1;
    q.reclaim((i) => got.push(i));
    expect(got).toEqual([1]);
  });

  it('keeps its memory bounded over long runs', () => {
    const r = ReaderRegistry.create();
    const q = new RetireQueue(r);
    let n = 0;
    for (let k = 0; k < 10000; k++) {
      q.retire(k);
      if (k % 7 === 0) n += q.reclaim(() => {});
    }
    n += q.reclaim(() => {});
    expect(n).toBe(10000);
    expect(q.size).toBe(0);
  });
});
