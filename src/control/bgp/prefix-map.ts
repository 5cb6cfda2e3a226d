// Compact IPv4 prefix → value map for the RIBs: one Map per prefix length keyed by the address as a
// signed 32-bit integer, which V8 stores as a small integer (no boxed number per key). About 30
// bytes per entry. Control thread only.
import type { Prefix4 } from '../../common/addr.js';

export class PrefixMap<V> {
  private readonly byLen: (Map<number, V> | undefined)[] = new Array(33);
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(addr: number, len: number): V | undefined {
    return this.byLen[len]?.get(addr | 0);
  }

  has(addr: number, len: number): boolean {
    return this.byLen[len]?.has(addr | 0) ?? false;
  }

  set(addr: number, len: number, v: V): void {
    let m = this.byLen[len];
    if (!m) m = this.byLen[len] = new Map();
    const before = m.size;
    m.set(addr | 0, v);
    this.count += m.size - before;
  }

  delete(addr: number, len: number): boolean {
    const m = this.byLen[len];
    if (!m || !m.delete(addr | 0)) return false;
    this.count--;
    return true;
  }

  clear(): void {
    this.byLen.fill(undefined);
    this.count = 0;
  }

  /** Calls `fn` for every entry; the map must not be changed meanwhile. */
  forEach(fn: (v: V, addr: number, len: number) => void): void {
    for (let len = 0; len <= 32; len++) {
      const m = this.byLen[len];
      if (m) for (const [k, v] of m) fn(v, k >>> 0, len);
    }
  }

  *entries(): IterableIterator<[Prefix4, V]> {
    for (let len = 0; len <= 32; len++) {
      const m = this.byLen[len];
      if (m) for (const [k, v] of m) yield [{ addr: k >>> 0, len }, v];
    }
  }

  /** Removes up to `max` entries, passing each to `fn`; returns how many were taken. */
  drain(max: number, fn: (v: V, addr: number, len: number) => void): number {
    let n = 0;
    for (let len = 0; len <= 32 && n < max; len++) {
      const m = this.byLen[len];
      if (!m) continue;
      for (const [k, v] of m) {
        if (n >= max) break;
        m.delete(k);
        this.count--;
        n++;
        fn(v, k >>> 0, len);
      }
    }
    return n;
  }

  /** Snapshot of the keys as [addr, len] pairs in a flat typed array (safe to mutate the map after). */
  keys(): Float64Array {
    const out = new Float64Array(this.count * 2);
    let i = 0;
    this.forEach((_v, addr, len) => {
      out[i++] = addr;
      out[i++] = len;
    });
    return out;
  }
}
