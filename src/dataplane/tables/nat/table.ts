// SNAT connection-tracking table for natOutgoing (ARCHITECTURE.md section 3): one entry per flow that
// a pod opened towards a destination outside every IP pool, with the translated (nat ip, nat port).
//
// What flows through it: the graph nodes `snat4-in2out` / `snat4-out2in` look flows up by 5-tuple
// (flows.ts), create translations for new outbound flows (`createOut`, here) and feed TCP flags in
// (conntrack.ts); a periodic sweep (`expire`, any thread) reclaims expired flows. Who owns the memory:
// one SharedArrayBuffer created by the control thread (`NatTable.create`) and attached by every worker
// (`NatTable.attach`); layout in flows.ts. Nothing here allocates per packet.
//
// This file: the facade (options, create/attach, counters) and the writers. No thread ever waits:
//  - Creation is lock-free. A creator first walks the in2out chain (an existing flow wins), then for
//    each candidate port (ports.ts) walks the out2in chain of (proto, remote, nat ip, port); when the
//    key is free it publishes the new entry there with ONE compare-and-swap of that bucket's head: the
//    swap succeeds only if nobody inserted into the chain since the walk, so two threads can never
//    claim the same out2in key (a failed swap re-walks and retries). It then publishes the entry in
//    the in2out chain the same way; if another thread created the same flow meanwhile, the later one
//    abandons its entry (marked dead, counted `clash`) and returns the earlier one. Every retry loop is
//    bounded (CAS_TRIES): a contention storm returns NAT_BUSY (counted), never a wait.
//  - Entries come from a fresh-slot counter (Atomics.add) and then from a ring of reclaimed entries
//    (one compare-and-swap of its head); the size limit is one Atomics.add on the flow count.
//  - Removal is logical first: an expired flow found by anyone (a creator probing, the sweep) or one
//    `remove()`d is marked dead with one compare-and-swap of its STATE, which also counts it. Unlinking
//    from both chains is the sweeper's job, serialised by a try-lock that nobody waits for: whoever
//    holds it (a worker's periodic `expire`, a creator that just killed a flow, the control thread)
//    unlinks, retires the entry with a QSBR tag (qsbr.ts) into the retire ring, and moves entries every
//    registered reader has passed since into the free ring. A thread that cannot take the lock leaves
//    the work to the next sweep. A lock holder that died (its reader slot was released or re-registered)
//    is recognised by its token and the lock is taken over (counted `stolen`).
// With one thread and no registered reader (replay), every removal is unlinked and reusable at once, so
// results (and with a seed, the ports chosen) are deterministic. A worker that dies in the middle of a
// creation or a sweep can leak an entry (never corrupt a chain).
import { randomInt } from 'node:crypto';
import { QSBR_MAX_READERS, ReaderRegistry } from '../qsbr.js';
import {
  NAT_BUSY,
  NAT_CLASS_DEAD,
  NAT_CLASS_NAMES,
  NAT_DEFAULT_TIMEOUTS,
  NAT_FULL,
  NAT_NO_PORT,
  natTimeoutClass,
  type NatTimeouts,
} from './conntrack.js';
import { NAT_PRNG_GAMMA, allowedPorts, natIpIndex, natPrngOutput } from './ports.js';
import {
  ENTRY_SHIFT,
  E_DST,
  E_LAST,
  E_NAT,
  E_PNAT,
  E_PORTS,
  E_SRC,
  E_STATE,
  E_VER,
  FlowIndex,
  HEADER_WORDS,
  H_BUSY,
  H_CLASH,
  H_CREATED,
  H_CURSOR,
  H_EXPIRED,
  H_FREE_HEAD,
  H_FREE_TAIL,
  H_FULL,
  H_HWM,
  H_LOCK,
  H_NOPORT,
  H_PRNG,
  H_RETIRE_HEAD,
  H_RETIRE_TAIL,
  H_SIZE,
  H_STOLEN,
  H_TIMEOUTS,
  MAX_WALK,
  hash4,
  natLayout,
  type NatTableShared,
} from './flows.js';

export * from './conntrack.js';
export { natIpIndex, natPrngOutput, natPrngStep } from './ports.js';
export type { NatTableShared } from './flows.js';

export interface NatTableOptions {
  /** Maximum number of flows (default 65536; any value 1..2^26). */
  capacity?: number;
  /** SNAT addresses (u32, usually one: natOutgoingAddress or the node IP). */
  natIps: number[];
  /** Allocatable port range, inclusive (default 32768..60999, the Linux ephemeral range). */
  portLo?: number;
  portHi?: number;
  /** Ports never handed out (default [4789], VXLAN). */
  reservedPorts?: number[];
  /** Idle timeouts in seconds; missing fields take NAT_DEFAULT_TIMEOUTS. */
  timeouts?: Partial<NatTimeouts>;
  /** Units of the `now` values callers pass per second (default 1: seconds; 1000 for milliseconds). */
  ticksPerSecond?: number;
  /** Seed of the port allocator's PRNG (default 0): the same seed and operations give the same ports. */
  seed?: number;
  /** Probes per nat ip before giving up with NAT_NO_PORT (default 128, like Linux). */
  maxPortProbes?: number;
  /** Key of the bucket hash (default random; does not affect which ports are chosen). */
  hashKey?: number;
  /** The table set's reader registry (default: a private one, no readers: immediate reuse). */
  readers?: ReaderRegistry;
}

export interface NatCounters {
  /** createOut refused: table full. */
  full: number;
  /** createOut refused: no free port. */
  noPort: number;
  /** flows created. */
  created: number;
  /** flows found expired and removed (by the sweep or by a creator probing over them). */
  expired: number;
  /** createOut gave up after CAS_TRIES contended attempts. */
  busy: number;
  /** two threads created the same flow at once; the later one's entry was abandoned. */
  clash: number;
  /** the sweep lock was taken over from a thread that died holding it. */
  stolen: number;
}

const MAX_CAPACITY = 1 << 26;
/** Attempts of one compare-and-swap step before createOut reports NAT_BUSY. */
const CAS_TRIES = 64;
/** Lock tokens: (incarnation << 9) | (reader slot + 1); UNBOUND for threads without a reader slot. */
const TOKEN_UNBOUND = 0x1ff;
const INCARNATION_MASK = 0x3fffff;

function checkInt(name: string, v: number, lo: number, hi: number): number {
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw new RangeError(`nat table: ${name} must be an integer in ${lo}..${hi}, got ${v}`);
  }
  return v;
}

export class NatTable extends FlowIndex {
  /** this thread's sweep-lock token (bindReader) */
  private token = TOKEN_UNBOUND;
  /** an entry this thread claimed and did not publish (reused by its next creation) */
  private spare = -1;

  /** Builds a table in a new SharedArrayBuffer (control thread, set-up time; throws RangeError). */
  static create(opts: NatTableOptions): NatTable {
    const capacity = checkInt('capacity', opts.capacity ?? 65536, 1, MAX_CAPACITY);
    const natIps = opts.natIps ?? [];
    if (natIps.length === 0 || natIps.length > 256) {
      throw new RangeError(`nat table: natIps must hold 1..256 addresses, got ${natIps.length}`);
    }
    natIps.forEach((ip, k) => checkInt(`natIps[${k}]`, ip, 0, 0xffffffff));
    const portLo = checkInt('portLo', opts.portLo ?? 32768, 1, 65535);
    const portHi = checkInt('portHi', opts.portHi ?? 60999, portLo, 65535);
    const allowed = allowedPorts(portLo, portHi, opts.reservedPorts ?? [4789]);
    if (allowed.length === 0) {
      throw new RangeError(`nat table: port range ${portLo}..${portHi} has no port outside reservedPorts`);
    }
    const tps = opts.ticksPerSecond ?? 1;
    if (!(tps > 0)) throw new RangeError(`nat table: ticksPerSecond must be > 0, got ${tps}`);
    const t: NatTimeouts = { ...NAT_DEFAULT_TIMEOUTS, ...opts.timeouts };
    const maxPortProbes = checkInt('maxPortProbes', opts.maxPortProbes ?? 128, 1, 65536);
    let bucketBits = 4;
    while (1 << bucketBits < capacity) bucketBits++;
    const hashKey = opts.hashKey ?? randomInt(0, 0x7fffffff);
    const dims = {
      capacity,
      bucketBits,
      ringBits: bucketBits,
      natIpCount: natIps.length,
      portCount: allowed.length,
      maxPortProbes,
      hashKey,
    };
    const L = natLayout(dims);
    const sab = new SharedArrayBuffer(L.bytes);
    const hdr = new Int32Array(sab, 0, HEADER_WORDS);
    hdr[H_PRNG] = (opts.seed ?? 0) | 0;
    NAT_CLASS_NAMES.forEach((k, c) => {
      const ticks = Math.round(t[k] * tps);
      hdr[H_TIMEOUTS + c] = checkInt(`timeouts.${k} in ticks`, ticks, 0, 0x7fffffff);
    });
    hdr[H_TIMEOUTS + NAT_CLASS_DEAD] = -0x80000000;
    new Int32Array(sab, L.natIpsWord * 4, natIps.length).set(natIps.map((ip) => ip | 0));
    new Uint16Array(sab, L.portsByte, allowed.length).set(allowed);
    new Int32Array(sab, L.bucketsInWord * 4, 2 << bucketBits).fill(-1); // both indexes empty
    const readers = opts.readers ?? ReaderRegistry.create();
    return new NatTable({ sab, readers: readers.shared, ...dims });
  }

  /**
   * Attaches to a table created elsewhere (workers, from the `shared` object they were sent). `slot`:
   * this thread's reader slot in the table set's registry (TableSet.attach passes it).
   */
  static attach(shared: NatTableShared, slot?: number): NatTable {
    const t = new NatTable(shared);
    if (slot !== undefined) t.bindReader(slot);
    return t;
  }

  /** Tells the table which registered reader slot this thread uses (identifies it as a lock holder). */
  bindReader(slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= QSBR_MAX_READERS) {
      throw new RangeError(`nat table: reader slot ${slot} out of range`);
    }
    this.token = ((this.readers.incarnation(slot) & INCARNATION_MASK) << 9) | (slot + 1);
  }

  /** Counters shared by all threads (a snapshot). */
  get counters(): NatCounters {
    const h = this.hdr;
    return {
      full: Atomics.load(h, H_FULL) >>> 0,
      noPort: Atomics.load(h, H_NOPORT) >>> 0,
      created: Atomics.load(h, H_CREATED) >>> 0,
      expired: Atomics.load(h, H_EXPIRED) >>> 0,
      busy: Atomics.load(h, H_BUSY) >>> 0,
      clash: Atomics.load(h, H_CLASH) >>> 0,
      stolen: Atomics.load(h, H_STOLEN) >>> 0,
    };
  }

  // ---- creation (lock-free) ----

  /**
   * Finds or creates the translation for an outbound flow: returns its index, NAT_FULL, NAT_NO_PORT or
   * NAT_BUSY. Two threads creating the same flow get the same entry.
   */
  createOut(
    proto: number,
    srcIp: number,
    srcPort: number,
    dstIp: number,
    dstPort: number,
    now: number,
  ): number {
    const h = this.hdr;
    const ent = this.ent;
    const src = srcIp | 0;
    const dst = dstIp | 0;
    const ports = (srcPort << 16) | dstPort;
    const bi = hash4(this.key, proto, src, dst, ports) >>> this.shift;
    const headIn = Atomics.load(this.bkIn, bi);
    const old = this.findLiveIn(headIn, proto, src, ports, dst, now);
    if (old >= 0) return old;
    if (Atomics.add(h, H_SIZE, 1) >= this.capacity) return this.refuse(-1, NAT_FULL);
    let y = -1;
    const nIps = this.nIps;
    const first = natIpIndex(src, nIps);
    for (let t = 0; t < nIps; t++) {
      let ipIdx = first + t;
      if (ipIdx >= nIps) ipIdx -= nIps;
      const nat = this.ips[ipIdx];
      const seed = (Atomics.add(h, H_PRNG, NAT_PRNG_GAMMA) + NAT_PRNG_GAMMA) | 0;
      let idx = natPrngOutput(seed) % this.nPorts;
      for (let k = 0; k < this.probes; k++, idx++) {
        if (idx === this.nPorts) idx = 0;
        const port = this.ports[idx];
        const bo = hash4(this.key, proto, nat, dst, (port << 16) | dstPort) >>> this.shift;
        for (let attempt = 0; ; attempt++) {
          if (attempt === CAS_TRIES) return this.refuse(y, NAT_BUSY);
          const headOut = Atomics.load(this.bkOut, bo);
          if (this.outTaken(headOut, proto, dst, dstPort, nat, port, now)) break; // next port
          if (y < 0) {
            y = this.alloc();
            if (y < 0) return this.refuse(-1, y === -2 ? NAT_BUSY : NAT_FULL);
            const o = y << ENTRY_SHIFT;
            Atomics.store(ent, o + E_VER, ent[o + E_VER] | 1); // odd: being created
            ent[o + E_SRC] = src;
            ent[o + E_DST] = dst;
            ent[o + E_PORTS] = ports;
            ent[o + E_LAST] = now | 0;
            ent[o + E_STATE] = natTimeoutClass(proto, 0) << 8;
          }
          const o = y << ENTRY_SHIFT;
          ent[o + E_NAT] = nat;
          ent[o + E_PNAT] = (proto << 16) | port;
          this.nextOut[y] = headOut;
          if (Atomics.compareExchange(this.bkOut, bo, headOut, y) === headOut) {
            return this.publishIn(y, bi, headIn, proto, src, ports, dst, now);
          }
        }
      }
    }
    return this.refuse(y, NAT_NO_PORT);
  }

  /** y holds its out2in key: link it into in2out unless another thread created the flow first. */
  private publishIn(
    y: number,
    bi: number,
    head: number,
    proto: number,
    src: number,
    ports: number,
    dst: number,
    now: number,
  ): number {
    const h = this.hdr;
    const o = y << ENTRY_SHIFT;
    for (let attempt = 0; attempt < CAS_TRIES; attempt++) {
      this.nextIn[y] = head;
      if (Atomics.compareExchange(this.bkIn, bi, head, y) === head) {
        Atomics.store(this.ent, o + E_VER, this.ent[o + E_VER] + 1); // even: live
        Atomics.add(h, H_CREATED, 1);
        return y;
      }
      head = Atomics.load(this.bkIn, bi);
      const other = this.findLiveIn(head, proto, src, ports, dst, now);
      if (other >= 0) {
        this.abandon(y);
        Atomics.add(h, H_CLASH, 1);
        return other;
      }
    }
    this.abandon(y);
    Atomics.add(h, H_BUSY, 1);
    return NAT_BUSY;
  }

  /** Undoes the size reservation of a refused creation, keeps an unpublished entry, counts. */
  private refuse(y: number, code: number): number {
    const h = this.hdr;
    Atomics.sub(h, H_SIZE, 1);
    if (y >= 0) this.spare = y;
    Atomics.add(h, code === NAT_FULL ? H_FULL : code === NAT_NO_PORT ? H_NOPORT : H_BUSY, 1);
    return code;
  }

  /** Entry y is published in out2in only: mark it dead (uncounted) for the sweep to unlink. */
  private abandon(y: number): void {
    const o = y << ENTRY_SHIFT;
    const ent = this.ent;
    Atomics.store(ent, o + E_STATE, (NAT_CLASS_DEAD << 8) | (ent[o + E_STATE] & 0xff));
    Atomics.sub(this.hdr, H_SIZE, 1);
    Atomics.store(ent, o + E_VER, ent[o + E_VER] + 1); // even: the sweep unlinks only live-marked entries
    this.reap(y);
  }

  /** An unused entry: this thread's spare, a fresh slot, or a reclaimed one; -1 none, -2 contention. */
  private alloc(): number {
    if (this.spare >= 0) {
      const i = this.spare;
      this.spare = -1;
      return i;
    }
    const h = this.hdr;
    if (Atomics.load(h, H_HWM) < this.capacity) {
      const i = Atomics.add(h, H_HWM, 1);
      if (i < this.capacity) return i;
    }
    for (let pass = 0; pass < 2; pass++) {
      for (let t = 0; t < CAS_TRIES; t++) {
        const head = Atomics.load(h, H_FREE_HEAD);
        if (head === Atomics.load(h, H_FREE_TAIL)) break;
        const i = this.freeRing[head & this.ringMask];
        if (Atomics.compareExchange(h, H_FREE_HEAD, head, (head + 1) | 0) === head) return i;
        if (t === CAS_TRIES - 1) return -2;
      }
      // nothing reclaimed yet: try to move retired entries over (only if no sweep is running)
      if (pass === 0 && !this.reclaimNow()) return -1;
    }
    return -1;
  }

  /**
   * Walks the in2out chain from `head` for the flow: returns a live match (touched), else -1. Expired
   * matches are removed on the way (counted as expired); dead ones and ones being created are skipped.
   */
  private findLiveIn(
    head: number,
    proto: number,
    src: number,
    ports: number,
    dst: number,
    now: number,
  ): number {
    const ent = this.ent;
    let i = head;
    for (let steps = 0; i >= 0 && steps < MAX_WALK; steps++) {
      const o = i << ENTRY_SHIFT;
      if (
        ent[o + E_SRC] === src &&
        ent[o + E_PORTS] === ports &&
        ent[o + E_DST] === dst &&
        ent[o + E_PNAT] >>> 16 === proto
      ) {
        const r = this.hit(i, o, now);
        if (r >= 0) return r;
        if ((Atomics.load(ent, o + E_VER) & 1) === 0 && this.kill(o, true)) this.reap(i);
      }
      i = this.nextIn[i];
    }
    return -1;
  }

  /** Is the out2in key held by a live flow (or one being created)? Removes expired holders on the way. */
  private outTaken(
    head: number,
    proto: number,
    rem: number,
    remPort: number,
    nat: number,
    natPort: number,
    now: number,
  ): boolean {
    const ent = this.ent;
    const pnat = (proto << 16) | natPort;
    let i = head;
    for (let steps = 0; i >= 0 && steps < MAX_WALK; steps++) {
      const o = i << ENTRY_SHIFT;
      if (
        ent[o + E_PNAT] === pnat &&
        ent[o + E_DST] === rem &&
        ent[o + E_NAT] === nat &&
        (ent[o + E_PORTS] & 0xffff) === remPort
      ) {
        const cls = (Atomics.load(ent, o + E_STATE) >>> 8) & 15;
        if (cls !== NAT_CLASS_DEAD) {
          if ((Atomics.load(ent, o + E_VER) & 1) !== 0) return true; // another thread is creating it
          if (!this.isExpired(i, now)) return true;
          if (this.kill(o, true)) this.reap(i);
        }
      }
      i = this.nextOut[i];
    }
    return false;
  }

  /** Marks the entry at word offset o dead; true (and counted) for the thread that did it. */
  private kill(o: number, expired: boolean): boolean {
    const ent = this.ent;
    for (;;) {
      const s = Atomics.load(ent, o + E_STATE);
      if (((s >>> 8) & 15) === NAT_CLASS_DEAD) return false;
      if (Atomics.compareExchange(ent, o + E_STATE, s, (NAT_CLASS_DEAD << 8) | (s & 0xff)) === s) break;
    }
    Atomics.sub(this.hdr, H_SIZE, 1);
    if (expired) Atomics.add(this.hdr, H_EXPIRED, 1);
    return true;
  }

  // ---- removal and the sweep (try-lock; nobody waits) ----

  /**
   * Reclaims expired flows, scanning at most `budget` slots (default: the whole table) from where the
   * previous sweep stopped. Returns how many flows it found expired. Returns 0 at once when another
   * thread is sweeping. Call it periodically from any thread (workers' timer ticks, the control thread).
   */
  expire(now: number, budget: number = this.capacity): number {
    if (!this.tryLock()) return 0;
    const h = this.hdr;
    const ent = this.ent;
    let freed = 0;
    try {
      const hwm = Math.min(Atomics.load(h, H_HWM), this.capacity);
      let c = h[H_CURSOR];
      const n = Math.min(budget, hwm);
      for (let k = 0; k < n; k++, c++) {
        if (c >= hwm) c = 0;
        const o = c << ENTRY_SHIFT;
        const v = Atomics.load(ent, o + E_VER);
        if (v === 0 || (v & 1) !== 0) continue;
        if (((Atomics.load(ent, o + E_STATE) >>> 8) & 15) !== NAT_CLASS_DEAD) {
          if (!this.isExpired(c, now)) continue;
          if (this.kill(o, true)) freed++;
        }
        this.unlinkDead(c);
      }
      h[H_CURSOR] = c;
      this.reclaimLocked();
    } finally {
      this.unlock();
    }
    return freed;
  }

  /** Deletes flow i now (e.g. the graph saw an ICMP error for it). Returns false if it was not live. */
  remove(i: number): boolean {
    if (!(i >= 0 && i < this.capacity)) return false;
    const o = i << ENTRY_SHIFT;
    const v = Atomics.load(this.ent, o + E_VER);
    if (v === 0 || (v & 1) !== 0 || !this.kill(o, false)) return false;
    this.reap(i);
    return true;
  }

  /** Unlinks dead entry i now if no sweep is running (else the next sweep will). */
  private reap(i: number): void {
    if (!this.tryLock()) return;
    try {
      this.unlinkDead(i);
      this.reclaimLocked();
    } finally {
      this.unlock();
    }
  }

  /** Moves retired entries the readers have passed to the free ring, if no sweep is running. */
  private reclaimNow(): boolean {
    if (!this.tryLock()) return false;
    try {
      return this.reclaimLocked() > 0;
    } finally {
      this.unlock();
    }
  }

  /** Lock held: unlinks dead, live-marked entry i from both chains and retires it. */
  private unlinkDead(i: number): void {
    const ent = this.ent;
    const o = i << ENTRY_SHIFT;
    const v = Atomics.load(ent, o + E_VER);
    if ((v & 1) !== 0) return; // already unlinked
    const proto = ent[o + E_PNAT] >>> 16;
    const natPort = ent[o + E_PNAT] & 0xffff;
    const ports = ent[o + E_PORTS];
    const bi = hash4(this.key, proto, ent[o + E_SRC], ent[o + E_DST], ports) >>> this.shift;
    const bo =
      hash4(this.key, proto, ent[o + E_NAT], ent[o + E_DST], (natPort << 16) | (ports & 0xffff)) >>>
      this.shift;
    unlink(this.bkIn, this.nextIn, bi, i);
    unlink(this.bkOut, this.nextOut, bo, i);
    Atomics.store(ent, o + E_VER, v + 1); // odd: not in any chain
    const h = this.hdr;
    const tail = h[H_RETIRE_TAIL];
    const k = (tail & this.ringMask) << 1;
    this.retireRing[k] = i;
    this.retireRing[k + 1] = this.readers.retire();
    Atomics.store(h, H_RETIRE_TAIL, (tail + 1) | 0);
  }

  /** Lock held: retired entries every reader has passed since go to the free ring. */
  private reclaimLocked(): number {
    const h = this.hdr;
    let head = h[H_RETIRE_HEAD];
    const tail = h[H_RETIRE_TAIL];
    if (head === tail) return 0;
    const snap = this.readers.snapshot();
    let n = 0;
    while (head !== tail) {
      const k = (head & this.ringMask) << 1;
      if (!ReaderRegistry.passedAt(snap, this.retireRing[k + 1])) break; // FIFO: the rest are younger
      const i = this.retireRing[k];
      head = (head + 1) | 0;
      Atomics.store(h, H_RETIRE_HEAD, head); // first: a holder dying here leaks i, never frees it twice
      const ft = h[H_FREE_TAIL];
      this.freeRing[ft & this.ringMask] = i;
      Atomics.store(h, H_FREE_TAIL, (ft + 1) | 0);
      n++;
    }
    return n;
  }

  private tryLock(): boolean {
    const h = this.hdr;
    const cur = Atomics.compareExchange(h, H_LOCK, 0, this.token);
    if (cur === 0) return true;
    const s = (cur & 0x1ff) - 1;
    if (s >= QSBR_MAX_READERS || (this.readers.incarnation(s) & INCARNATION_MASK) === cur >>> 9) return false;
    // the holder's reader slot was released or re-registered since it took the lock: it died holding it
    if (Atomics.compareExchange(h, H_LOCK, cur, this.token) !== cur) return false;
    Atomics.add(h, H_STOLEN, 1);
    return true;
  }

  private unlock(): void {
    Atomics.store(this.hdr, H_LOCK, 0);
  }
}

/**
 * Lock held: removes entry i from the chain of bucket b. Creators only ever change a bucket head (by
 * compare-and-swap) and the links of entries not yet published, so the head is swapped and any other
 * link is stored.
 */
function unlink(bk: Int32Array, next: Int32Array, b: number, i: number): void {
  for (;;) {
    const head = Atomics.load(bk, b);
    if (head === i) {
      if (Atomics.compareExchange(bk, b, i, next[i]) === i) return;
      continue; // a creator prepended meanwhile: i is no longer the head
    }
    for (let j = head, steps = 0; j >= 0 && steps < MAX_WALK; steps++) {
      const n = next[j];
      if (n === i) {
        Atomics.store(next, j, next[i]);
        return;
      }
      j = n;
    }
    return; // not in this chain (an abandoned creation never reached in2out)
  }
}
