// Quiescent-state-based reclamation (QSBR; McKenney and Slingwine's RCU, the userspace-RCU "qsbr"
// flavour) shared by every table: FIB, adjacencies, neighbours and the NAT flow table.
//
// What flows through it: nothing per packet. Readers (dataplane workers) announce, once per loop
// round, that they hold no reference into any table (`quiescent`). Writers (the control thread; for
// the NAT table also the workers' sweeps) unpublish an entry, `retire()` it to get a tag, and reuse
// its memory only once every online reader announced a quiescent state after the tag (`passed`).
// Who owns the memory: one small SharedArrayBuffer created by the control thread
// (`ReaderRegistry.create`, part of `TableSet`) and attached by every worker; every table created
// with the same registry shares one epoch. Which thread: any.
//
// Table lifecycle (ARCHITECTURE.md section 6): create -> attach -> publish -> unpublish + retire ->
// reclaim after every reader's quiescent point. No blocking, no unbounded spin.
//
// Words (Int32, wrap-safe arithmetic throughout):
//   0 magic   1 global epoch (even; +2 per retire)   2 slots ever used (scan bound)
//   READERS + s  reader slot s: 1 = free, 3 = offline, even = online, holding the epoch it last saw
//   INCARN + s   incarnation of slot s: +1 at every register/release (lets a lock holder be recognised
//                as dead, see nat/table.ts)
// Rules:
//   - `retire()` = Atomics.add(epoch, 2): the returned tag is the epoch before the increment, so every
//     reader whose next quiescent load of the epoch happens after the unpublish sees a larger value.
//   - An online reader whose slot is still <= tag may hold a reference; offline and free slots don't.
//   - A reader that registers stores its slot before its first lookup, so a writer scanning after
//     that sees it; a writer that scanned before saw an unpublished entry already gone.
//   - A reader that dies never announces again: the control thread `release()`s its slot (the daemon
//     does when a worker exits), and a restarted worker `register(slot)`s in its old slot.
//   - With no registered reader (replay, single thread) everything retired is reclaimable at once.
// Counters (epochs, lags) are compared by 32-bit differences, so the epoch may wrap; a reader would
// have to stay online without a quiescent point for 2^30 retirements to be misjudged.
// This module imports nothing, so a worker or a test can load it on its own.

/** Reader slots a registry offers (worker threads, plus test readers). */
export const QSBR_MAX_READERS = 256;

const W_MAGIC = 0;
const W_EPOCH = 1;
const W_USED = 2;
const READERS = 16;
const INCARN = READERS + QSBR_MAX_READERS;
const WORDS = INCARN + QSBR_MAX_READERS;
const MAGIC = 0x51534252; // 'QSBR'
const FREE = 1;
const OFFLINE = 3;

/** What a worker needs to attach (structured-cloneable). */
export interface ReaderRegistryShared {
  readonly version: 1;
  readonly sab: SharedArrayBuffer;
}

/** A snapshot of the readers' progress, for testing many tags at once (see `ReaderRegistry#snapshot`). */
export interface QsbrHorizon {
  epoch: number;
  /** largest (epoch - slot) over online readers; -1 when none is online */
  lag: number;
}

export class ReaderRegistry {
  readonly shared: ReaderRegistryShared;
  private readonly w: Int32Array;

  private constructor(shared: ReaderRegistryShared) {
    this.shared = shared;
    this.w = new Int32Array(shared.sab);
  }

  static create(): ReaderRegistry {
    const sab = new SharedArrayBuffer(WORDS * 4);
    const w = new Int32Array(sab);
    for (let s = 0; s < QSBR_MAX_READERS; s++) w[READERS + s] = FREE;
    w[W_EPOCH] = 2;
    Atomics.store(w, W_MAGIC, MAGIC);
    return new ReaderRegistry({ version: 1, sab });
  }

  static attach(shared: ReaderRegistryShared): ReaderRegistry {
    if (
      shared === null ||
      typeof shared !== 'object' ||
      shared.version !== 1 ||
      !(shared.sab instanceof SharedArrayBuffer) ||
      shared.sab.byteLength !== WORDS * 4 ||
      Atomics.load(new Int32Array(shared.sab), W_MAGIC) !== MAGIC
    ) {
      throw new TypeError('ReaderRegistry.attach: not a ReaderRegistryShared object (version 1)');
    }
    return new ReaderRegistry(shared);
  }

  // ---- readers ----

  /**
   * Claims a reader slot and goes online. With `slot` (a worker's fixed number) the slot is taken
   * whatever it held: a restarted worker replaces its dead predecessor. Without, the first free slot.
   */
  register(slot?: number): number {
    const w = this.w;
    let s: number;
    if (slot !== undefined) {
      if (!Number.isInteger(slot) || slot < 0 || slot >= QSBR_MAX_READERS) {
        throw new RangeError(
          `ReaderRegistry.register: slot ${slot} is not an integer in 0..${QSBR_MAX_READERS - 1}`,
        );
      }
      s = slot;
      Atomics.store(w, READERS + s, Atomics.load(w, W_EPOCH));
    } else {
      s = -1;
      for (let k = 0; k < QSBR_MAX_READERS; k++) {
        if (Atomics.compareExchange(w, READERS + k, FREE, Atomics.load(w, W_EPOCH)) === FREE) {
          s = k;
          break;
        }
      }
      if (s < 0)
        throw new RangeError(`ReaderRegistry.register: all ${QSBR_MAX_READERS} reader slots are taken`);
    }
    Atomics.add(w, INCARN + s, 1);
    for (let u = Atomics.load(w, W_USED); u < s + 1; u = Atomics.load(w, W_USED)) {
      if (Atomics.compareExchange(w, W_USED, u, s + 1) === u) break;
    }
    return s;
  }

  /** Call when no lookup is in progress (between batches): lets writers reclaim what was retired before. */
  quiescent(slot: number): void {
    Atomics.store(this.w, READERS + slot, Atomics.load(this.w, W_EPOCH));
  }

  /** Call before blocking for long: holds nothing until the next `quiescent` (which brings it back online). */
  offline(slot: number): void {
    Atomics.store(this.w, READERS + slot, OFFLINE);
  }

  /** Gives the slot up (a reader that ends cleanly). */
  unregister(slot: number): void {
    Atomics.store(this.w, READERS + slot, FREE);
  }

  /** Control thread: frees the slot of a reader thread that died (it holds nothing any more). */
  release(slot: number): void {
    Atomics.store(this.w, READERS + slot, FREE);
    Atomics.add(this.w, INCARN + slot, 1);
  }

  /** Bumped at every register/release of `slot`: a holder token from an older incarnation is dead. */
  incarnation(slot: number): number {
    return Atomics.load(this.w, INCARN + slot);
  }

  /** True when `slot` is registered (online or offline). */
  registered(slot: number): boolean {
    return Atomics.load(this.w, READERS + slot) !== FREE;
  }

  /** Readers currently online. */
  online(): number {
    let n = 0;
    const used = Atomics.load(this.w, W_USED);
    for (let s = 0; s < used; s++) if ((Atomics.load(this.w, READERS + s) & 1) === 0) n++;
    return n;
  }

  // ---- writers ----

  /** Tags something just unpublished: it may be reused once `passed(tag)`. */
  retire(): number {
    return Atomics.add(this.w, W_EPOCH, 2);
  }

  /** One scan of the reader slots; `passedAt(h, tag)` then answers for any number of tags. */
  snapshot(): QsbrHorizon {
    const w = this.w;
    const epoch = Atomics.load(w, W_EPOCH);
    let lag = -1;
    const used = Atomics.load(w, W_USED);
    for (let s = 0; s < used; s++) {
      const v = Atomics.load(w, READERS + s);
      if ((v & 1) !== 0) continue;
      const d = (epoch - v) | 0;
      if (d > lag) lag = d;
    }
    return { epoch, lag };
  }

  /** Has every reader online at `h` announced a quiescent state after `tag` was retired? */
  static passedAt(h: QsbrHorizon, tag: number): boolean {
    return ((h.epoch - tag) | 0) > h.lag;
  }

  passed(tag: number): boolean {
    return ReaderRegistry.passedAt(this.snapshot(), tag);
  }
}

/**
 * A single writer's FIFO of retired entries (indices into its table), reclaimed in retirement order.
 * Control-thread tables use it (FIB tbl8 groups, adjacencies, neighbours); the NAT table keeps the
 * same queue in shared memory because its sweeper may run in any thread.
 */
export class RetireQueue {
  private idx: number[] = [];
  private tag: number[] = [];
  private time: number[] = [];
  private head = 0;

  /**
   * `minDelayMs` > 0 additionally holds entries back for that long after their retirement (the FIB's
   * guard for readers that never registered); `now` is the clock for it (injected by tests).
   */
  constructor(
    private readonly readers: ReaderRegistry,
    private readonly minDelayMs = 0,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get size(): number {
    return this.idx.length - this.head;
  }

  retire(index: number): void {
    this.idx.push(index);
    this.tag.push(this.readers.retire());
    this.time.push(this.minDelayMs > 0 ? this.now() : 0);
  }

  /** Hands every entry no reader can still hold to `free` (oldest first); returns how many. */
  reclaim(free: (index: number) => void): number {
    if (this.head === this.idx.length) return 0;
    const h = this.readers.snapshot();
    const t = this.minDelayMs > 0 ? this.now() : 0;
    const start = this.head;
    while (this.head < this.idx.length) {
      const k = this.head;
      if (!ReaderRegistry.passedAt(h, this.tag[k])) break; // FIFO: later ones are younger
      if (this.minDelayMs > 0 && t - this.time[k] < this.minDelayMs) break;
      this.head++;
      free(this.idx[k]);
    }
    const n = this.head - start;
    if (this.head > 1024 && this.head * 2 > this.idx.length) {
      this.idx = this.idx.slice(this.head);
      this.tag = this.tag.slice(this.head);
      this.time = this.time.slice(this.head);
      this.head = 0;
    }
    return n;
  }
}
