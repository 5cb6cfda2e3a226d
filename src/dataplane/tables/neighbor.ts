// The uplink neighbour table (IPv4 → MAC), shared by all workers.
//
// What flows through it: the control thread creates an entry for every next hop a route uses (gateway,
// nodes on our subnet, BGP next hops) and pins the static ones from the Uplink resource; workers only
// read (ip4-rewrite, ip4-arp, encapsulation) and update the MAC of an existing entry when an ARP reply
// arrives (arp-reply: `find` + `learn`). Nothing is learned for addresses nobody routes through.
// Who owns the memory: one SharedArrayBuffer created by the control thread (`create`), attached by the
// workers (`attach`); the reference counts, the ip → entry map and the free list are the control
// thread's own.
//
// Lifecycle (qsbr.ts): `acquire(ip)` finds or creates the entry (incomplete until ARP resolves it) and
// counts a reference: the Programmer takes one per installed route using that next hop. `release(i)`
// drops it; the last release unlinks the entry from the lookup index at once and frees it only after
// every reader passed a quiescent point, so an index read from an adjacency stays valid for the whole
// batch. Static entries are pinned and never freed. `gen[i]` changes whenever an entry is reused.
// Bounded: `capacity` entries (default 16 384, Calico clusters reach 5 000 nodes); a full table
// refuses with TableFullError (code `neighbor-table-full`), counted in `refusals`, and accepts again
// as soon as freed entries are reclaimed.
//
// Lookup index: chained hash, bucket heads and next links in shared memory. Inserts publish a filled
// entry with one Atomics.store of the bucket head; unlinking is one store; a walker that is inside a
// chain while an entry is unlinked still follows valid links, because unlinked entries keep them
// until they are reclaimed (after the walker's quiescent point).
//
// MACs are guarded by a per-entry seqlock (`seq` odd while being written). A writer that finds the
// lock taken skips (another writer is storing the same kind of news). Readers retry a bounded number
// of times and then report "no MAC" (counted in `stuck`), so a writer that died mid-write never makes
// a worker spin; the control thread's `maintain()` repairs such an entry (back to incomplete, so ARP
// resolves it again; static entries get their configured MAC back).
import { ReaderRegistry, RetireQueue } from './qsbr.js';
import { TableFullError } from './errors.js';

export const NBR_FREE = 0;
export const NBR_INCOMPLETE = 1;
export const NBR_REACHABLE = 2;
export const NBR_STATIC = 3;
export const NBR_STATE_NAMES = ['free', 'incomplete', 'reachable', 'static'] as const;

export const NBR_DEFAULT_CAPACITY = 16384;
/** seqlock read attempts before copyMac gives up */
const COPY_TRIES = 64;

const H_STUCK = 0;
const H_REPAIRED = 1;
const HEADER_WORDS = 16;

export interface NeighborShared {
  /** entries */
  capacity: number;
  /** log2 of the number of hash buckets */
  bucketBits: number;
  sab: SharedArrayBuffer;
}

export interface NeighborEntry {
  ip: number;
  state: string;
  mac: string | null;
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
  /** reuse generation per entry */
  readonly gen: Uint32Array;
  private readonly hdr: Int32Array;
  private readonly next: Int32Array;
  private readonly buckets: Int32Array;
  private readonly shift: number;
  /** `acquire`/`setStatic` refused: table full (control side) */
  refusals = 0;
  // ---- control side only ----
  private readonly byIp = new Map<number, number>();
  private readonly refs: Int32Array;
  private readonly pinned = new Map<number, Uint8Array>();
  private readonly free: number[] = [];
  private readonly retired: RetireQueue | null;
  private top = 0;
  /** entries whose seqlock was odd at the last maintain(): index → seq */
  private oddSeen = new Map<number, number>();

  private constructor(shared: NeighborShared, readers: ReaderRegistry | null) {
    const c = shared.capacity;
    const nb = 1 << shared.bucketBits;
    this.capacity = c;
    this.shared = shared;
    const sab = shared.sab;
    let o = 0;
    const take = (n: number): number => {
      const at = o;
      o += n * 4;
      return at;
    };
    this.hdr = new Int32Array(sab, take(HEADER_WORDS), HEADER_WORDS);
    this.ip = new Uint32Array(sab, take(c), c);
    this.state = new Int32Array(sab, take(c), c);
    this.seq = new Int32Array(sab, take(c), c);
    this.macHi = new Uint32Array(sab, take(c), c);
    this.macLo = new Uint32Array(sab, take(c), c);
    this.gen = new Uint32Array(sab, take(c), c);
    this.next = new Int32Array(sab, take(c), c);
    this.buckets = new Int32Array(sab, take(nb), nb);
    this.shift = 32 - shared.bucketBits;
    this.refs = new Int32Array(readers === null ? 0 : c);
    this.retired = readers === null ? null : new RetireQueue(readers);
  }

  static bytesFor(capacity: number, bucketBits: number): number {
    return (HEADER_WORDS + capacity * 7 + (1 << bucketBits)) * 4;
  }

  /** Control thread: room for `capacity` next hops. `readers`: the table set's registry. */
  static create(
    capacity = NBR_DEFAULT_CAPACITY,
    readers: ReaderRegistry = ReaderRegistry.create(),
  ): NeighborTable {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 22) {
      throw new RangeError(`neighbour table: capacity ${capacity} is not an integer in 1..4194304`);
    }
    let bits = 4;
    while (1 << bits < capacity) bits++;
    const sab = new SharedArrayBuffer(NeighborTable.bytesFor(capacity, bits));
    const t = new NeighborTable({ capacity, bucketBits: bits, sab }, readers);
    t.buckets.fill(-1);
    return t;
  }

  /** Worker: a view that reads and learns; acquire/release/setStatic belong to the control thread. */
  static attach(shared: NeighborShared): NeighborTable {
    return new NeighborTable(shared, null);
  }

  private bucket(ip: number): number {
    let h = Math.imul(ip ^ (ip >>> 16), 0x45d9f3b);
    h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
    return (h ^ (h >>> 16)) >>> this.shift;
  }

  /** Index of the entry for `ip`, or -1. Any thread; a bounded walk. */
  find(ip: number): number {
    ip >>>= 0;
    let i = this.buckets[this.bucket(ip)];
    for (let n = 0; i >= 0 && n < this.capacity; n++) {
      if (this.ip[i] === ip) return i;
      i = this.next[i];
    }
    return -1;
  }

  // ---- control thread ----

  /** Live entries (control side). */
  get size(): number {
    return this.byIp.size;
  }

  /** Entries released and waiting for the readers' quiescent points (control side). */
  get pending(): number {
    return this.retired?.size ?? 0;
  }

  /** Finds or creates the entry for `ip` (incomplete until resolved) and takes a reference on it. */
  acquire(ip: number): number {
    const i = this.entryFor(ip);
    this.refs[i]++;
    return i;
  }

  /** Drops a reference; the last one frees the entry (after the readers' quiescent points) unless pinned. */
  release(i: number): void {
    if (i < 0 || i >= this.capacity || this.refs.length === 0 || this.refs[i] <= 0) return;
    if (--this.refs[i] > 0 || this.pinned.has(i)) return;
    this.drop(i);
  }

  /** References on entry i (control side; pins not included). */
  refCount(i: number): number {
    return this.refs[i] ?? 0;
  }

  /** A static entry from config: pinned (never freed), its MAC never overwritten by ARP. */
  setStatic(ip: number, mac: Uint8Array): number {
    const i = this.entryFor(ip);
    this.pinned.set(i, mac.slice(0, 6));
    this.writeMac(i, mac, 0, NBR_STATIC, true);
    return i;
  }

  /** Gives existing entry i a fixed MAC (no ARP), without pinning it: freed with its last reference. */
  makeStatic(i: number, mac: Uint8Array): void {
    this.writeMac(i, mac, 0, NBR_STATIC, true);
  }

  /**
   * Periodic control-thread work: reclaims released entries (normally done on demand by acquire) and
   * repairs entries whose seqlock stayed odd since the previous call (a writer died mid-write).
   * Returns how many entries it repaired.
   */
  maintain(): number {
    this.reclaim();
    const odd = new Map<number, number>();
    let repaired = 0;
    for (const i of this.byIp.values()) {
      const s = Atomics.load(this.seq, i);
      if ((s & 1) === 0) continue;
      if (this.oddSeen.get(i) !== s) {
        odd.set(i, s);
        continue;
      }
      const mac = this.pinned.get(i);
      Atomics.store(this.seq, i, s + 1);
      if (mac !== undefined) this.writeMac(i, mac, 0, NBR_STATIC, true);
      else Atomics.store(this.state, i, NBR_INCOMPLETE);
      repaired++;
    }
    this.oddSeen = odd;
    if (repaired > 0) Atomics.add(this.hdr, H_REPAIRED, repaired);
    return repaired;
  }

  /** Moves released entries no reader can still hold to the free list; returns how many. */
  reclaim(): number {
    return this.retired?.reclaim((i) => this.recycle(i)) ?? 0;
  }

  /** Shared counters: `stuck` = copyMac gave up on a busy seqlock; `repaired` = maintain() fixed one. */
  get counters(): { stuck: number; repaired: number } {
    return { stuck: Atomics.load(this.hdr, H_STUCK), repaired: Atomics.load(this.hdr, H_REPAIRED) };
  }

  private entryFor(ip: number): number {
    ip >>>= 0;
    const found = this.byIp.get(ip);
    if (found !== undefined) return found;
    if (this.retired === null) throw new Error('NeighborTable: read-only view attached in a worker');
    if (this.free.length === 0) this.reclaim();
    let i = this.free.pop() ?? -1;
    if (i < 0 && this.top < this.capacity) i = this.top++;
    if (i < 0) {
      this.refusals++;
      throw new TableFullError(
        'neighbor-table-full',
        `neighbour table full: all ${this.capacity} entries are in use (${this.pending} released, ` +
          `awaiting reader quiescence); cannot add next hop ${fmtIp(ip)}`,
      );
    }
    this.ip[i] = ip;
    this.macHi[i] = 0;
    this.macLo[i] = 0;
    Atomics.store(this.state, i, NBR_INCOMPLETE);
    const b = this.bucket(ip);
    this.next[i] = this.buckets[b];
    Atomics.store(this.buckets, b, i); // publish
    this.byIp.set(ip, i);
    return i;
  }

  private drop(i: number): void {
    const ip = this.ip[i];
    this.byIp.delete(ip);
    const b = this.bucket(ip);
    if (this.buckets[b] === i) {
      Atomics.store(this.buckets, b, this.next[i]);
    } else {
      for (let j = this.buckets[b]; j >= 0; j = this.next[j]) {
        if (this.next[j] === i) {
          Atomics.store(this.next, j, this.next[i]);
          break;
        }
      }
    }
    this.retired!.retire(i);
  }

  private recycle(i: number): void {
    const s = Atomics.load(this.seq, i);
    if ((s & 1) !== 0) Atomics.store(this.seq, i, s + 1); // a writer died mid-write: nobody holds it now
    Atomics.store(this.state, i, NBR_FREE);
    this.ip[i] = 0;
    this.next[i] = -1;
    Atomics.add(this.gen, i, 1);
    this.oddSeen.delete(i);
    this.free.push(i);
  }

  // ---- any thread ----

  /**
   * Records a resolved MAC for an existing entry (ARP reply). Returns true when the entry changed.
   * Static and free entries are left alone.
   */
  learn(i: number, mac: Uint8Array, macOff: number): boolean {
    const st = Atomics.load(this.state, i);
    if (st === NBR_STATIC || st === NBR_FREE) return false;
    return this.writeMac(i, mac, macOff, NBR_REACHABLE, false);
  }

  private writeMac(i: number, mac: Uint8Array, o: number, state: number, force: boolean): boolean {
    const hi = (mac[o] << 8) | mac[o + 1];
    const lo = ((mac[o + 2] << 24) | (mac[o + 3] << 16) | (mac[o + 4] << 8) | mac[o + 5]) >>> 0;
    let s = Atomics.load(this.seq, i);
    if (!force && this.macHi[i] === hi && this.macLo[i] === lo && this.state[i] === state) return false;
    if ((s & 1) !== 0 || Atomics.compareExchange(this.seq, i, s, s + 1) !== s) {
      if (!force) return false; // another writer is at it
      // control thread: write anyway (a worker mid-write, or one that died there)
      s = Atomics.load(this.seq, i) | 1;
      Atomics.store(this.seq, i, s);
      s -= 1;
    }
    this.macHi[i] = hi;
    this.macLo[i] = lo;
    Atomics.store(this.state, i, state);
    Atomics.store(this.seq, i, s + 2);
    return true;
  }

  /** True when entry i has a usable MAC. */
  resolved(i: number): boolean {
    const st = this.state[i];
    return st === NBR_REACHABLE || st === NBR_STATIC;
  }

  /**
   * Writes entry i's MAC at u8[off..off+6). Returns false if it is unresolved (nothing written), or if
   * a writer kept the seqlock for COPY_TRIES attempts (nothing written, counted as `stuck`).
   */
  copyMac(i: number, u8: Uint8Array, off: number): boolean {
    for (let t = 0; t < COPY_TRIES; t++) {
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
    Atomics.add(this.hdr, H_STUCK, 1);
    return false;
  }

  /** All live entries (control API, tests). */
  entries(): NeighborEntry[] {
    const out: NeighborEntry[] = [];
    const tmp = new Uint8Array(6);
    const live =
      this.retired === null
        ? Array.from({ length: this.capacity }, (_, i) => i).filter((i) => this.state[i] !== NBR_FREE)
        : [...this.byIp.values()].sort((a, b) => a - b);
    for (const i of live) {
      const st = this.state[i];
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

function fmtIp(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}
