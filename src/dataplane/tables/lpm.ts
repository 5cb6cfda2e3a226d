// IPv4 longest-prefix-match table: the FIB core. DIR-24-8, as DPDK's rte_lpm (Gupta, Lin, McKeown,
// "Routing lookups in hardware at memory access speeds", INFOCOM 1998).
//
// What flows through it: control (main thread, the only writer) inserts and removes prefixes that map to
// 24-bit adjacency indices; dataplane workers call `lpmLookup` on destination addresses, one or two
// plain typed-array reads per packet. Who owns the memory: the table lives in three SharedArrayBuffers
// created here (`Lpm4.create`) and handed to workers as `Lpm4Shared` (postMessage once; `Lpm4.attach`).
// Nothing is ever copied or swapped: every change is a sequence of aligned 32-bit entry writes.
//
// Memory layout (all little-endian u32 entries, every entry < 2^31):
//   tbl24  2^24 entries (64 MiB SAB, always): indexed by ip >>> 8; then TBL24_TAIL more words, of
//          which the first (index 2^24, LPM_DEFAULT_SLOT) holds the default route's entry (or 0).
//   tbl8   groups of 256 entries (1 KiB each), indexed by (group << 8) | (ip & 255). A growable SAB
//          (ES2024 `maxByteLength`): it starts at `tbl8InitialGroups` groups and doubles on demand up to
//          `tbl8Groups` (default 65536 = 64 MiB). Views are length-tracking, so workers see growth.
//   ctl    Int32Array header: magic, route count, tbl8 groups used.
// Readers register with the shared `ReaderRegistry` (qsbr.ts) the table was created with; the whole
// `TableSet` (set.ts) shares one.
// Pages of a SAB that were never written are not resident: a few routes cost little RSS, and the
// default route costs nothing (it lives in its own slot, see below); only short prefixes (/1../8
// touch 2^16..2^23 entries) fill large ranges.
//
// Entry encoding (one u32, so a reader always sees a whole, consistent entry):
//   bits  0..23  value (adjacency index 1..0xFFFFFF), or, in a tbl24 entry with EXT set, a tbl8 group
//   bits 24..29  depth of the prefix that wrote the entry (0..32)
//   bit  30      EXT (tbl24 only): the /24 has more-specific routes, look in tbl8
//   bit  31      always 0
// An empty entry is 0 and means "only the default route covers this": the default route (/0) is never
// written into tbl24 or tbl8 (that would be 16 M stores and 64 MiB of resident memory for one route);
// its entry sits in tbl24[LPM_DEFAULT_SLOT] and a lookup that lands on a 0 entry reads it instead
// (0 there too: LPM_MISS). Entries of depth 0 therefore never appear in the tables. A valid entry
// always has a non-zero value, so the hot path needs no valid bit: `entry & 0xFFFFFF` is the answer
// unless EXT is set or the entry is 0.
//
// Concurrency rules (single writer, many readers):
//   - Aligned integer typed-array accesses never tear (ECMA-262 memory model), so each entry a reader
//     loads is either the old or the new one; a lookup therefore returns the value valid before or
//     after the change in progress, never anything else.
//   - A new tbl8 group is filled completely with plain stores BEFORE `Atomics.store` publishes the tbl24
//     entry that points at it. Readers use plain loads; the tbl8 load's address depends on the tbl24
//     load, which orders them on every CPU Node runs on (x86 TSO, ARM address dependency).
//   - A group is freed (its /24 lost its last route longer than /24) by first publishing a plain tbl24
//     entry, then retiring the group (qsbr.ts: tagged with the registry's epoch and the time).
//     A retired group is reused only when BOTH hold:
//       (a) every registered, online reader has announced a quiescent state (`quiescent(slot)`, between
//           batches: no lookup in progress) after the free (ReaderRegistry#passed); and
//       (b) `tbl8ReuseDelayMs` (default 1000 ms) have passed since the free: this protects readers that
//           never registered (a lookup spends nanoseconds between its two loads).
//     Fresh groups (never used) are handed out before the table grows; exhaustion with groups still
//     parked is reported like any exhaustion (the control plane may retry later).
//   - Growth (`SharedArrayBuffer.prototype.grow`) happens before the group is filled and published.
// Errors: running out of tbl8 groups throws `Lpm4FullError` (a RangeError, code `fib-tbl8-full`) before
// any entry is written; bad arguments throw RangeError. Both leave the table unchanged.
// Imports only qsbr.ts (which imports nothing).
import { QSBR_MAX_READERS, ReaderRegistry, RetireQueue, type ReaderRegistryShared } from './qsbr.js';

/** `lookup` result when no prefix matches. Stored values are 1..LPM_MAX_VALUE. */
export const LPM_MISS = 0;
/** Largest storable value (24-bit adjacency index). */
export const LPM_MAX_VALUE = 0xffffff;
/** Upper bound of the `tbl8Groups` option (1 GiB of tbl8). */
export const LPM_MAX_TBL8_GROUPS = 1 << 20;
/** Reader slots available for the quiescent-state protocol (the shared registry's). */
export const LPM_MAX_READERS = QSBR_MAX_READERS;
/** Index in tbl24 of the default route's entry (just past the 2^24 /24 entries). */
export const LPM_DEFAULT_SLOT = 1 << 24;

const VALUE_MASK = 0x00ffffff;
const DEPTH_SHIFT = 24;
const EXT = 0x40000000;
/** tbl24 entry bit: look in tbl8 (for code that inlines `lpmLookup`; see the entry encoding above). */
export const LPM_EXT = EXT;
const TBL24_ENTRIES = 1 << 24;
const TBL24_TAIL = 16; // one cache line after the /24 entries: the default route's slot and spares
const DEF = LPM_DEFAULT_SLOT;
const GROUP_ENTRIES = 256;
const GROUP_BYTES = GROUP_ENTRIES * 4;

// ctl header (Int32Array indices)
const CTL_MAGIC = 0;
const CTL_ROUTES = 1;
const CTL_GROUPS_USED = 2;
const CTL_LENGTH = 8;
const MAGIC = 0x4c504d34; // 'LPM4'

const DEFAULT_TBL8_GROUPS = 65536;
const DEFAULT_TBL8_INITIAL_GROUPS = 256;
const DEFAULT_REUSE_DELAY_MS = 1000;

/** Everything a worker needs to attach: only SharedArrayBuffers and numbers (structured-cloneable). */
export interface Lpm4Shared {
  readonly version: 1;
  /** the reader registry shared by the table set */
  readonly readers: ReaderRegistryShared;
  readonly tbl24: SharedArrayBuffer;
  /** growable (when the engine supports it) up to `tbl8GroupsMax` groups of 1 KiB */
  readonly tbl8: SharedArrayBuffer;
  readonly ctl: SharedArrayBuffer;
  readonly tbl8GroupsMax: number;
}

export interface Lpm4Options {
  /** Maximum number of tbl8 groups (1 KiB each; one per /24 holding routes longer than /24). Default 65536. */
  tbl8Groups?: number;
  /** Groups allocated up front; the buffer doubles from there. Default min(256, tbl8Groups). */
  tbl8InitialGroups?: number;
  /** Minimum time before a freed tbl8 group is reused (rule (b) above). Default 1000 ms. */
  tbl8ReuseDelayMs?: number;
  /** Clock for the reuse delay, in ms (tests inject one). Default `performance.now`. */
  now?: () => number;
  /** Reader registry shared with the other tables (default: a private one). */
  readers?: ReaderRegistry;
}

export interface Lpm4Stats {
  routes: number;
  tbl8GroupsUsed: number;
  /** freed groups waiting for readers to quiesce / the reuse delay */
  tbl8GroupsPending: number;
  /** groups the tbl8 buffer currently holds */
  tbl8GroupsCapacity: number;
  tbl8GroupsMax: number;
  memoryBytes: number;
}

/** tbl8 groups exhausted. The table is unchanged; the route was not added. */
export class Lpm4FullError extends RangeError {
  readonly code = 'fib-tbl8-full';
  constructor(message: string) {
    super(message);
    this.name = 'Lpm4FullError';
  }
}

/**
 * The hot path: value of the longest prefix matching `ip` (u32 or int32, host order), or LPM_MISS.
 * Monomorphic, no `this`: pass the arrays from `Lpm4#tbl24` / `Lpm4#tbl8`.
 */
export function lpmLookup(tbl24: Uint32Array, tbl8: Uint32Array, ip: number): number {
  const e = tbl24[ip >>> 8];
  const t = (e & EXT) === 0 ? e : tbl8[((e & VALUE_MASK) << 8) | (ip & 0xff)];
  return (t !== 0 ? t : tbl24[DEF]) & VALUE_MASK;
}

/** Looks up `ips[0..n)` into `out[0..n)`. */
export function lpmLookupBatch(
  tbl24: Uint32Array,
  tbl8: Uint32Array,
  ips: Uint32Array,
  out: Uint32Array,
  n: number,
): void {
  const dflt = tbl24[DEF];
  for (let i = 0; i < n; i++) {
    const ip = ips[i];
    const e = tbl24[ip >>> 8];
    const t = (e & EXT) === 0 ? e : tbl8[((e & VALUE_MASK) << 8) | (ip & 0xff)];
    out[i] = (t !== 0 ? t : dflt) & VALUE_MASK;
  }
}

function maskOf(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

function depthOf(e: number): number {
  return (e >>> DEPTH_SHIFT) & 63;
}

function checkPrefix(op: string, addr: number, len: number): number {
  if (!Number.isInteger(len) || len < 0 || len > 32) {
    throw new RangeError(`Lpm4.${op}: prefix length ${String(len)} is not an integer in 0..32`);
  }
  if (!Number.isInteger(addr) || addr < -0x80000000 || addr > 0xffffffff) {
    throw new RangeError(`Lpm4.${op}: address ${String(addr)} is not a 32-bit integer`);
  }
  return (addr & maskOf(len)) >>> 0;
}

function fmt(addr: number, len: number): string {
  return `${addr >>> 24}.${(addr >>> 16) & 255}.${(addr >>> 8) & 255}.${addr & 255}/${len}`;
}

interface GrowableSab extends SharedArrayBuffer {
  readonly growable?: boolean;
  grow(newByteLength: number): void;
}
type SabCtor = new (byteLength: number, options?: { maxByteLength?: number }) => GrowableSab;

export class Lpm4 {
  readonly shared: Lpm4Shared;
  /** Raw tables for `lpmLookup` (the graph keeps these; tbl8 is length-tracking). */
  readonly tbl24: Uint32Array;
  readonly tbl8: Uint32Array;
  private readonly ctl: Int32Array;
  private readonly writable: boolean;
  /** the shared reader registry (qsbr.ts) */
  readonly readers: ReaderRegistry;

  // ---- control side only (empty in attached views) ----
  /** routes[len]: network address -> value */
  private readonly routes: Map<number, number>[] = [];
  /** /24 index -> number of routes longer than /24 inside it (a group exists iff > 0) */
  private readonly longer = new Map<number, number>();
  private readonly freeGroups: number[] = [];
  private readonly pending: RetireQueue;
  private highWater = 0; // groups [0, highWater) have been handed out at least once
  private capacity = 0; // groups the tbl8 buffer holds now
  private count = 0;
  private groupsUsed = 0;

  private constructor(shared: Lpm4Shared, writable: boolean, opts: Lpm4Options) {
    this.shared = shared;
    this.writable = writable;
    this.readers = opts.readers ?? ReaderRegistry.attach(shared.readers);
    this.tbl24 = new Uint32Array(shared.tbl24);
    this.tbl8 = new Uint32Array(shared.tbl8); // no length: tracks a growable buffer
    this.ctl = new Int32Array(shared.ctl);
    this.capacity = shared.tbl8.byteLength / GROUP_BYTES;
    this.pending = new RetireQueue(
      this.readers,
      opts.tbl8ReuseDelayMs ?? DEFAULT_REUSE_DELAY_MS,
      opts.now ?? (() => performance.now()),
    );
    if (writable) for (let l = 0; l <= 32; l++) this.routes.push(new Map());
  }

  /** Main thread: allocates the shared tables (see the memory layout at the top of this file). */
  static create(opts: Lpm4Options = {}): Lpm4 {
    const max = opts.tbl8Groups ?? DEFAULT_TBL8_GROUPS;
    if (!Number.isInteger(max) || max < 1 || max > LPM_MAX_TBL8_GROUPS) {
      throw new RangeError(
        `Lpm4.create: tbl8Groups ${String(max)} is not an integer in 1..${LPM_MAX_TBL8_GROUPS}`,
      );
    }
    const initial = Math.min(opts.tbl8InitialGroups ?? DEFAULT_TBL8_INITIAL_GROUPS, max);
    if (!Number.isInteger(initial) || initial < 1) {
      throw new RangeError(`Lpm4.create: tbl8InitialGroups ${String(initial)} is not a positive integer`);
    }
    const delay = opts.tbl8ReuseDelayMs ?? DEFAULT_REUSE_DELAY_MS;
    if (!(delay >= 0)) throw new RangeError(`Lpm4.create: tbl8ReuseDelayMs ${String(delay)} is negative`);
    const Sab = SharedArrayBuffer as unknown as SabCtor;
    let tbl8 = new Sab(initial * GROUP_BYTES, { maxByteLength: max * GROUP_BYTES });
    if (tbl8.growable !== true) tbl8 = new Sab(max * GROUP_BYTES); // engine without growable SABs
    const readers = opts.readers ?? ReaderRegistry.create();
    const shared: Lpm4Shared = {
      version: 1,
      readers: readers.shared,
      tbl24: new SharedArrayBuffer((TBL24_ENTRIES + TBL24_TAIL) * 4),
      tbl8,
      ctl: new SharedArrayBuffer(CTL_LENGTH * 4),
      tbl8GroupsMax: max,
    };
    const lpm = new Lpm4(shared, true, { ...opts, readers });
    Atomics.store(lpm.ctl, CTL_MAGIC, MAGIC);
    return lpm;
  }

  /** In a worker: a read-only view over the same memory. Writes and route queries throw. */
  static attach(shared: Lpm4Shared): Lpm4 {
    if (
      shared === null ||
      typeof shared !== 'object' ||
      shared.version !== 1 ||
      shared.readers === null ||
      typeof shared.readers !== 'object' ||
      !(shared.tbl24 instanceof SharedArrayBuffer) ||
      !(shared.tbl8 instanceof SharedArrayBuffer) ||
      !(shared.ctl instanceof SharedArrayBuffer) ||
      shared.tbl24.byteLength !== (TBL24_ENTRIES + TBL24_TAIL) * 4 ||
      shared.ctl.byteLength !== CTL_LENGTH * 4 ||
      Atomics.load(new Int32Array(shared.ctl), CTL_MAGIC) !== MAGIC
    ) {
      throw new TypeError('Lpm4.attach: not an Lpm4Shared object (version 1)');
    }
    return new Lpm4(shared, false, {});
  }

  /** Number of prefixes (readable from attached views too). */
  get size(): number {
    return this.writable ? this.count : Atomics.load(this.ctl, CTL_ROUTES);
  }

  /** Value of the longest matching prefix, or LPM_MISS. */
  lookup(ip: number): number {
    return lpmLookup(this.tbl24, this.tbl8, ip);
  }

  /** Adds `addr/len` -> value, or replaces the value of that exact prefix. Host bits are ignored. */
  insert(addr: number, len: number, value: number): void {
    this.assertWritable('insert');
    const a = checkPrefix('insert', addr, len);
    if (!Number.isInteger(value) || value < 1 || value > LPM_MAX_VALUE) {
      throw new RangeError(
        `Lpm4.insert ${fmt(a, len)}: value ${String(value)} is not an integer in 1..0xFFFFFF`,
      );
    }
    const m = this.routes[len];
    const isNew = !m.has(a);
    const entry = (len << DEPTH_SHIFT) | value;
    if (len === 0) {
      m.set(a, value);
      Atomics.store(this.tbl24, DEF, entry); // its own slot: the tables' 0 entries read it
    } else if (len <= 24) {
      m.set(a, value);
      this.write24(a >>> 8, 1 << (24 - len), len, entry);
    } else {
      const i24 = a >>> 8;
      const e = this.tbl24[i24];
      let base: number;
      if ((e & EXT) === 0) {
        const g = this.allocGroup(a, len); // throws before anything is written
        base = g << 8;
        this.tbl8.fill(e, base, base + GROUP_ENTRIES); // inherit the /24's current entry
        this.write8(base + (a & 0xff), 1 << (32 - len), len, entry);
        Atomics.store(this.tbl24, i24, EXT | g); // publish the filled group
      } else {
        base = (e & VALUE_MASK) << 8;
        this.write8(base + (a & 0xff), 1 << (32 - len), len, entry);
      }
      m.set(a, value);
      if (isNew) this.longer.set(i24, (this.longer.get(i24) ?? 0) + 1);
    }
    if (isNew) Atomics.store(this.ctl, CTL_ROUTES, ++this.count);
  }

  /** Removes `addr/len`; addresses it covered fall back to the next less-specific route. */
  remove(addr: number, len: number): boolean {
    this.assertWritable('remove');
    const a = checkPrefix('remove', addr, len);
    const m = this.routes[len];
    if (!m.delete(a)) return false;
    const cover = this.coverOf(a, len);
    if (len === 0) {
      Atomics.store(this.tbl24, DEF, 0);
    } else if (len <= 24) {
      this.replace24(a >>> 8, 1 << (24 - len), len, cover);
    } else {
      const i24 = a >>> 8;
      const g = this.tbl24[i24] & VALUE_MASK;
      const base = g << 8;
      this.replace8(base + (a & 0xff), 1 << (32 - len), len, cover);
      const left = (this.longer.get(i24) ?? 1) - 1;
      if (left > 0) {
        this.longer.set(i24, left);
      } else {
        // No route longer than /24 remains: every entry of the group now equals the /24's entry.
        this.longer.delete(i24);
        Atomics.store(this.tbl24, i24, this.tbl8[base]);
        this.freeGroup(g);
      }
    }
    Atomics.store(this.ctl, CTL_ROUTES, --this.count);
    return true;
  }

  /** Exact-prefix value, or LPM_MISS. Control side only. */
  get(addr: number, len: number): number {
    this.assertWritable('get');
    const a = checkPrefix('get', addr, len);
    return this.routes[len].get(a) ?? LPM_MISS;
  }

  /** All prefixes, ordered by address then length. Control side only. */
  entries(): IterableIterator<{ addr: number; len: number; value: number }> {
    this.assertWritable('entries');
    const all: { addr: number; len: number; value: number }[] = [];
    for (let len = 0; len <= 32; len++) {
      for (const [addr, value] of this.routes[len]) all.push({ addr, len, value });
    }
    all.sort((x, y) => x.addr - y.addr || x.len - y.len);
    return all.values();
  }

  /** Bytes of shared memory allocated (tbl24 + current tbl8 + header); resident may be less. */
  memoryBytes(): number {
    return this.shared.tbl24.byteLength + this.shared.tbl8.byteLength + this.shared.ctl.byteLength;
  }

  stats(): Lpm4Stats {
    return {
      routes: this.size,
      tbl8GroupsUsed: this.writable ? this.groupsUsed : Atomics.load(this.ctl, CTL_GROUPS_USED),
      tbl8GroupsPending: this.pending.size,
      tbl8GroupsCapacity: this.shared.tbl8.byteLength / GROUP_BYTES,
      tbl8GroupsMax: this.shared.tbl8GroupsMax,
      memoryBytes: this.memoryBytes(),
    };
  }

  // ---- reader quiescent-state protocol (workers; see the rules at the top and qsbr.ts) ----
  // Shorthands for the shared registry: a worker with a TableSet calls the set's methods instead.

  /** Claims a reader slot (online from now on). Returns its number for `quiescent`/`offline`. */
  registerReader(slot?: number): number {
    return this.readers.register(slot);
  }

  /** Call between batches, when no lookup is in progress: lets the writer reuse groups freed before. */
  quiescent(slot: number): void {
    this.readers.quiescent(slot);
  }

  /** Call before blocking for a long time (no lookups until the next `quiescent`). */
  offline(slot: number): void {
    this.readers.offline(slot);
  }

  unregisterReader(slot: number): void {
    this.readers.unregister(slot);
  }

  // ---- internals (writer only) ----

  private assertWritable(op: string): void {
    if (!this.writable) {
      throw new Error(
        `Lpm4.${op}: this is a read-only view attached in a worker; use the control-side table`,
      );
    }
  }

  /**
   * Encoded entry of the longest route strictly shorter than len covering addr, or 0 (none but maybe
   * the default route, which is never written into the tables: 0 reads it).
   */
  private coverOf(addr: number, len: number): number {
    for (let l = len - 1; l >= 1; l--) {
      const v = this.routes[l].get((addr & maskOf(l)) >>> 0);
      if (v !== undefined) return (l << DEPTH_SHIFT) | v;
    }
    return 0;
  }

  /** Writes `entry` (depth 1 <= len <= 24) over tbl24[start, start+n), skipping more-specific entries. */
  private write24(start: number, n: number, len: number, entry: number): void {
    const t24 = this.tbl24;
    if (this.groupsUsed === 0 && this.count === this.routes[0].size) {
      // no route yet but maybe the default (not in the tables; `count` does not include the route
      // being inserted yet): nothing to preserve
      t24.fill(entry, start, start + n);
      return;
    }
    for (let i = start, end = start + n; i < end; i++) {
      const e = t24[i];
      if ((e & EXT) !== 0) this.write8((e & VALUE_MASK) << 8, GROUP_ENTRIES, len, entry);
      else if (depthOf(e) <= len) t24[i] = entry;
    }
  }

  private write8(start: number, n: number, len: number, entry: number): void {
    const t8 = this.tbl8;
    for (let i = start, end = start + n; i < end; i++) if (depthOf(t8[i]) <= len) t8[i] = entry;
  }

  /** Replaces entries written by the removed prefix (depth === len) with the covering entry. */
  private replace24(start: number, n: number, len: number, cover: number): void {
    const t24 = this.tbl24;
    for (let i = start, end = start + n; i < end; i++) {
      const e = t24[i];
      if ((e & EXT) !== 0) this.replace8((e & VALUE_MASK) << 8, GROUP_ENTRIES, len, cover);
      else if (e !== 0 && depthOf(e) === len) t24[i] = cover;
    }
  }

  private replace8(start: number, n: number, len: number, cover: number): void {
    const t8 = this.tbl8;
    for (let i = start, end = start + n; i < end; i++) {
      const e = t8[i];
      if (e !== 0 && depthOf(e) === len) t8[i] = cover;
    }
  }

  private allocGroup(addr: number, len: number): number {
    this.reclaim();
    let g: number;
    if (this.freeGroups.length > 0) {
      g = this.freeGroups.pop()!;
    } else if (this.highWater < this.capacity) {
      g = this.highWater++;
    } else if (this.capacity < this.shared.tbl8GroupsMax) {
      const next = Math.min(this.shared.tbl8GroupsMax, Math.max(1, this.capacity * 2));
      (this.shared.tbl8 as GrowableSab).grow(next * GROUP_BYTES);
      this.capacity = next;
      g = this.highWater++;
    } else {
      throw new Lpm4FullError(
        `FIB full: cannot add ${fmt(addr, len)}: all ${this.shared.tbl8GroupsMax} tbl8 groups are in use ` +
          `(${this.groupsUsed} holding routes longer than /24, ${this.pending.size} freed and awaiting ` +
          `reader quiescence); raise Lpm4.create({ tbl8Groups })`,
      );
    }
    Atomics.store(this.ctl, CTL_GROUPS_USED, ++this.groupsUsed);
    return g;
  }

  private freeGroup(g: number): void {
    this.pending.retire(g);
    Atomics.store(this.ctl, CTL_GROUPS_USED, --this.groupsUsed);
  }

  /** Moves retired groups that no reader can still be inside onto the free list. */
  private reclaim(): void {
    this.pending.reclaim((g) => this.freeGroups.push(g));
  }
}
