// Naive reference model for the LPM tests: an array of prefixes and a linear longest match.
// Deliberately simple and obviously right; speed does not matter here.

export interface Route {
  addr: number;
  len: number;
  value: number;
}

export function mask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

export class NaiveLpm {
  readonly routes: Route[] = [];

  insert(addr: number, len: number, value: number): void {
    const a = (addr & mask(len)) >>> 0;
    const r = this.routes.find((x) => x.addr === a && x.len === len);
    if (r) r.value = value;
    else this.routes.push({ addr: a, len, value });
  }

  remove(addr: number, len: number): boolean {
    const a = (addr & mask(len)) >>> 0;
    const i = this.routes.findIndex((x) => x.addr === a && x.len === len);
    if (i < 0) return false;
    this.routes.splice(i, 1);
    return true;
  }

  get(addr: number, len: number): number {
    const a = (addr & mask(len)) >>> 0;
    return this.routes.find((x) => x.addr === a && x.len === len)?.value ?? 0;
  }

  lookup(ip: number): number {
    let best = -1;
    let value = 0;
    for (const r of this.routes) {
      if (r.len > best && (ip & mask(r.len)) >>> 0 === r.addr) {
        best = r.len;
        value = r.value;
      }
    }
    return value;
  }

  sorted(): Route[] {
    return [...this.routes].sort((x, y) => x.addr - y.addr || x.len - y.len).map((r) => ({ ...r }));
  }
}

/** mulberry32: a small seeded PRNG returning u32. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** First, last, and the neighbours just outside a prefix, plus its middle. */
export function boundaryProbes(r: { addr: number; len: number }): number[] {
  const first = r.addr >>> 0;
  const last = (r.addr | ~mask(r.len)) >>> 0;
  const mid = (first + Math.floor((last - first) / 2)) >>> 0;
  return [first, last, mid, (first - 1) >>> 0, (last + 1) >>> 0];
}
