// The uplink neighbour table (IPv4 → MAC), shared by all workers.
//
// The control thread creates entries for every next hop it routes through (gateway, nodes on our
// subnet, static neighbours from the Uplink resource) so that workers never insert: they only read
// (ip4-rewrite, encapsulation) and update the MAC of an existing entry when an ARP reply arrives
// (arp-reply). Nothing is learned for addresses nobody routes through, and static entries never
// change. Each entry's MAC is guarded by a seqlock (`seq` odd while being written), so a reader never
// sees half of an old MAC and half of a new one; a writer that loses the race simply skips.

export const NBR_FREE = 0;
export const NBR_INCOMPLETE = 1;
export const NBR_REACHABLE = 2;
export const NBR_STATIC = 3;
export const NBR_STATE_NAMES = ['free', 'incomplete', 'reachable', 'static'] as const;

export interface NeighborShared {
  capacity: number;
  sab: SharedArrayBuffer;
}

export class NeighborTable {
  readonly capacity: number;
  readonly shared: NeighborShared;
  readonly ip: Uint32Array;
  readonly state: Int32Array;
  readonly seq: Int32Array;
  /** MAC bytes 0-1 */
  readonly macHi: Uint32Array;
  /** MAC bytes 2-5 */
  readonly macLo: Uint32Array;
  private readonly mask: number;

  private constructor(shared: NeighborShared) {
    const c = shared.capacity;
    this.capacity = c;
    this.mask = c - 1;
    this.shared = shared;
    this.ip = new Uint32Array(shared.sab, 0, c);
    this.state = new Int32Array(shared.sab, c * 4, c);
    this.seq = new Int32Array(shared.sab, c * 8, c);
    this.macHi = new Uint32Array(shared.sab, c * 12, c);
    this.macLo = new Uint32Array(shared.sab, c * 16, c);
  }

  /** capacity is rounded up to a power of two; the table is kept at most half full. */
  static create(capacity = 4096): NeighborTable {
    let c = 16;
    while (c < capacity * 2) c *= 2;
    return new NeighborTable({ capacity: c, sab: new SharedArrayBuffer(c * 20) });
  }

  static attach(shared: NeighborShared): NeighborTable {
    return new NeighborTable(shared);
  }

  private hash(ip: number): number {
    return Math.imul(ip ^ (ip >>> 16), 0x45d9f3b) >>> 0;
  }

  /** Index of the entry for `ip`, or -1. */
  find(ip: number): number {
    ip >>>= 0;
    let i = this.hash(ip) & this.mask;
    for (let n = 0; n < this.capacity; n++) {
      const st = Atomics.load(this.state, i);
      if (st === NBR_FREE) return -1;
      if (this.ip[i] === ip) return i;
      i = (i + 1) & this.mask;
    }
    return -1;
  }

  /** Control thread only: finds or creates the entry for `ip` (incomplete until resolved). */
  ensure(ip: number): number {
    ip >>>= 0;
    const found = this.find(ip);
    if (found >= 0) return found;
    let used = 0;
    for (let k = 0; k < this.capacity; k++) if (this.state[k] !== NBR_FREE) used++;
    if (used * 2 >= this.capacity)
      throw new RangeError(`neighbour table full (${this.capacity / 2} entries)`);
    let i = this.hash(ip) & this.mask;
    while (this.state[i] !== NBR_FREE) i = (i + 1) & this.mask;
    this.ip[i] = ip;
    Atomics.store(this.state, i, NBR_INCOMPLETE);
    return i;
  }

  /** Control thread only: a static entry (from config); never overwritten by ARP. */
  setStatic(ip: number, mac: Uint8Array): number {
    const i = this.ensure(ip);
    this.writeMac(i, mac, 0, NBR_STATIC, true);
    return i;
  }

  /**
   * Records a resolved MAC for an existing entry (ARP reply). Returns true when the entry changed.
   * Static entries are left alone.
   */
  learn(i: number, mac: Uint8Array, macOff: number): boolean {
    const st = Atomics.load(this.state, i);
    if (st === NBR_STATIC || st === NBR_FREE) return false;
    return this.writeMac(i, mac, macOff, NBR_REACHABLE, false);
  }

  private writeMac(i: number, mac: Uint8Array, o: number, state: number, force: boolean): boolean {
    const hi = (mac[o] << 8) | mac[o + 1];
    const lo = ((mac[o + 2] << 24) | (mac[o + 3] << 16) | (mac[o + 4] << 8) | mac[o + 5]) >>> 0;
    const s = Atomics.load(this.seq, i);
    if (!force && this.macHi[i] === hi && this.macLo[i] === lo && this.state[i] === state) return false;
    if ((s & 1) !== 0 || Atomics.compareExchange(this.seq, i, s, s + 1) !== s) {
      if (!force) return false;
    }
    this.macHi[i] = hi;
    this.macLo[i] = lo;
    Atomics.store(this.state, i, state);
    Atomics.store(this.seq, i, (s + 2) & ~1);
    return true;
  }

  /** True when entry i has a usable MAC. */
  resolved(i: number): boolean {
    const st = this.state[i];
    return st === NBR_REACHABLE || st === NBR_STATIC;
  }

  /**
   * Writes entry i's MAC at u8[off..off+6). Returns false if it is unresolved (nothing written).
   * Seqlock read: retries while a writer is active or the sequence moved.
   */
  copyMac(i: number, u8: Uint8Array, off: number): boolean {
    for (;;) {
      const s1 = Atomics.load(this.seq, i);
      const st = this.state[i];
      if (st !== NBR_REACHABLE && st !== NBR_STATIC) return false;
      const hi = this.macHi[i];
      const lo = this.macLo[i];
      if ((s1 & 1) === 0 && Atomics.load(this.seq, i) === s1) {
        u8[off] = hi >>> 8;
        u8[off + 1] = hi & 255;
        u8[off + 2] = lo >>> 24;
        u8[off + 3] = (lo >>> 16) & 255;
        u8[off + 4] = (lo >>> 8) & 255;
        u8[off + 5] = lo & 255;
        return true;
      }
    }
  }

  /** All live entries (control API, tests). */
  entries(): { ip: number; state: string; mac: string | null }[] {
    const out: { ip: number; state: string; mac: string | null }[] = [];
    const tmp = new Uint8Array(6);
    for (let i = 0; i < this.capacity; i++) {
      const st = this.state[i];
      if (st === NBR_FREE) continue;
      const has = this.copyMac(i, tmp, 0);
      out.push({
        ip: this.ip[i],
        state: NBR_STATE_NAMES[st],
        mac: has ? Array.from(tmp, (b) => b.toString(16).padStart(2, '0')).join(':') : null,
      });
    }
    return out;
  }
}
