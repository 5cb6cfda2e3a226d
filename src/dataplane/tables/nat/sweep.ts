// The SNAT table's removal and reclamation (qsbr.ts lifecycle): marking flows dead, unlinking them
// from both hash chains, retiring them with a QSBR tag and handing them back for reuse once every
// registered reader passed a quiescent point. `NatTable` (table.ts) builds on this with creation.
//
// Any thread runs it (workers' timer ticks and `remove`, creators that probe over an expired flow, the
// control thread); no thread ever waits:
//  - Marking dead is one compare-and-swap of STATE; it is what lookups see, and it is counted there.
//  - Unlinking is serialised by a try-lock (one word) that nobody waits for: a thread collects the
//    flows it marked in a private backlog and unlinks them all in one short hold of the lock; if
//    another thread holds it, they wait for its next chance (or, past BACKLOG, for a later sweep,
//    which finds dead flows by scanning). Creators only ever swap bucket heads and write the links of
//    entries not yet published, so the single unlinker swaps a head or stores a middle link.
//  - Unlinked entries go to the ring (flows.ts layout) with their QSBR tag; the lock holder advances
//    the ring's boundary over those every reader has passed; creators take entries from the front
//    with one compare-and-swap (table.ts).
//  - The lock holder's token names its reader slot and that slot's incarnation: a holder that died
//    (the control thread released its slot, or a restarted worker registered in it) is recognised and
//    the lock is taken over (counted `stolen`).
// Ring positions count modulo a multiple of `slots` >= 2^29, so a compare-and-swap of the ring head
// cannot succeed on a stale position unless 2^29 entries were taken while that thread was preempted.
// Memory: the table's SharedArrayBuffer (flows.ts); the backlog is this thread's own.
import { QSBR_MAX_READERS, ReaderRegistry } from '../qsbr.js';
import { NAT_CLASS_DEAD } from './conntrack.js';
import {
  ENTRY_SHIFT,
  E_DST,
  E_NAT,
  E_NEXT_IN,
  E_NEXT_OUT,
  E_PNAT,
  E_PORTS,
  E_SRC,
  E_STATE,
  E_VER,
  FlowIndex,
  H_CURSOR,
  H_EXPIRED,
  H_HWM,
  H_LOCK,
  H_RING_BOUNDARY,
  H_RING_TAIL,
  H_SIZE,
  H_STOLEN,
  MAX_WALK,
  hash4,
} from './flows.js';

/** Lock tokens: (incarnation << 9) | (reader slot + 1); UNBOUND for threads without a reader slot. */
const TOKEN_UNBOUND = 0x1ff;
const INCARNATION_MASK = 0x3fffff;
/** Removed flows a thread unlinks in one hold of the sweep lock (more are left to a later sweep). */
const BACKLOG = 4096;

export class FlowSweeper extends FlowIndex {
  /** this thread's sweep-lock token (bindReader) */
  private token = TOKEN_UNBOUND;
  /** dead flows this thread is to unlink (at its next hold of the sweep lock) */
  private readonly backlog = new Int32Array(BACKLOG);
  private backlogN = 0;
  /** ring positions run modulo this multiple of `slots` */
  private readonly ringMod = this.slots * Math.floor(0x40000000 / this.slots);

  /** Tells the table which registered reader slot this thread uses (identifies it as a lock holder). */
  bindReader(slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= QSBR_MAX_READERS) {
      throw new RangeError(`nat table: reader slot ${slot} out of range`);
    }
    this.token = ((this.readers.incarnation(slot) & INCARNATION_MASK) << 9) | (slot + 1);
  }

  protected ringNext(pos: number): number {
    return pos + 1 === this.ringMod ? 0 : pos + 1;
  }

  /** Marks the entry at word offset o dead; true (and counted) for the thread that did it. */
  protected kill(o: number, expired: boolean): boolean {
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
   * previous sweep stopped. Returns how many flows it found expired (they are gone for lookups at once).
   * Any thread, periodically (workers' timer ticks, the control thread); several may sweep at once: each
   * claims its own range of slots, marks what expired dead (one compare-and-swap each) and unlinks in
   * one short hold of the sweep lock. If another thread holds it, the unlinking waits for a later call.
   */
  expire(now: number, budget: number = this.slots): number {
    const h = this.hdr;
    const ent = this.ent;
    const hwm = Math.min(Atomics.load(h, H_HWM), this.slots);
    const n = Math.min(budget, hwm);
    let freed = 0;
    let c = n > 0 ? (Atomics.add(h, H_CURSOR, n) >>> 0) % hwm : 0;
    for (let k = 0; k < n; k++, c++) {
      if (c >= hwm) c = 0;
      const o = c << ENTRY_SHIFT;
      const v = Atomics.load(ent, o + E_VER);
      if (v === 0 || (v & 1) !== 0) continue;
      if (((Atomics.load(ent, o + E_STATE) >>> 8) & 15) !== NAT_CLASS_DEAD) {
        if (!this.isExpired(c, now)) continue;
        if (this.kill(o, true)) freed++;
      }
      if (this.backlogN === BACKLOG && !this.flush()) continue; // dead now, unlinked by a later sweep
      this.backlog[this.backlogN++] = c;
    }
    this.flush();
    return freed;
  }

  /** Deletes flow i now (e.g. the graph saw an ICMP error for it). Returns false if it was not live. */
  remove(i: number): boolean {
    if (!(i >= 0 && i < this.slots)) return false;
    const o = i << ENTRY_SHIFT;
    const v = Atomics.load(this.ent, o + E_VER);
    if (v === 0 || (v & 1) !== 0 || !this.kill(o, false)) return false;
    this.reap(i);
    return true;
  }

  /**
   * Unlinks dead entry i now if no other thread holds the sweep lock; else remembers it (bounded) and
   * unlinks it with the next one, so flows removed under contention do not wait for a full sweep.
   */
  protected reap(i: number): void {
    if (this.backlogN < BACKLOG) this.backlog[this.backlogN++] = i;
    this.flush();
  }

  /** Unlinks the flows this thread removed and reclaims, unless another thread holds the sweep lock. */
  private flush(): boolean {
    if (!this.tryLock()) return false;
    try {
      this.unlinkBacklog();
      this.reclaimLocked();
    } finally {
      this.unlock();
    }
    return true;
  }

  /** Lock held: unlinks the flows this thread could not unlink before. */
  private unlinkBacklog(): void {
    for (let k = 0; k < this.backlogN; k++) this.unlinkDead(this.backlog[k]);
    this.backlogN = 0;
  }

  /** Makes retired entries the readers have passed reusable, if no other thread holds the sweep lock. */
  protected reclaimNow(): boolean {
    if (!this.tryLock()) return false;
    try {
      this.unlinkBacklog();
      return this.reclaimLocked() > 0;
    } finally {
      this.unlock();
    }
  }

  /** Lock held: unlinks entry i from both chains and retires it, if it is dead and still linked. */
  private unlinkDead(i: number): void {
    const ent = this.ent;
    const o = i << ENTRY_SHIFT;
    const v = Atomics.load(ent, o + E_VER);
    // odd: already unlinked (or reused and being created); not dead: reused since it was remembered
    if ((v & 1) !== 0 || ((Atomics.load(ent, o + E_STATE) >>> 8) & 15) !== NAT_CLASS_DEAD) return;
    const proto = ent[o + E_PNAT] >>> 16;
    const natPort = ent[o + E_PNAT] & 0xffff;
    const ports = ent[o + E_PORTS];
    const bi = hash4(this.key, proto, ent[o + E_SRC], ent[o + E_DST], ports) >>> this.shift;
    const bo =
      hash4(this.key, proto, ent[o + E_NAT], ent[o + E_DST], (natPort << 16) | (ports & 0xffff)) >>>
      this.shift;
    unlink(this.bkIn, ent, E_NEXT_IN, bi, i);
    unlink(this.bkOut, ent, E_NEXT_OUT, bo, i);
    Atomics.store(ent, o + E_VER, v + 1); // odd: not in any chain
    const h = this.hdr;
    const tail = h[H_RING_TAIL];
    const k = tail % this.slots;
    this.ring[k] = i;
    this.tags[k] = this.readers.retire();
    Atomics.store(h, H_RING_TAIL, this.ringNext(tail));
  }

  /** Lock held: advances the ring's boundary over retired entries every reader has passed since. */
  private reclaimLocked(): number {
    const h = this.hdr;
    let b = h[H_RING_BOUNDARY];
    const tail = h[H_RING_TAIL];
    if (b === tail) return 0;
    const snap = this.readers.snapshot();
    let n = 0;
    while (b !== tail && ReaderRegistry.passedAt(snap, this.tags[b % this.slots])) {
      b = this.ringNext(b);
      n++;
    }
    if (n > 0) Atomics.store(h, H_RING_BOUNDARY, b);
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
 * Lock held: removes entry i from the chain of bucket b (links in word `link` of each entry). Creators only ever change a bucket head (by
 * compare-and-swap) and the links of entries not yet published, so the head is swapped and any other
 * link is stored.
 */
function unlink(bk: Int32Array, ent: Int32Array, link: number, b: number, i: number): void {
  const after = ent[(i << ENTRY_SHIFT) + link];
  for (;;) {
    const head = Atomics.load(bk, b);
    if (head === i) {
      if (Atomics.compareExchange(bk, b, i, after) === i) return;
      continue; // a creator prepended meanwhile: i is no longer the head
    }
    for (let j = head, steps = 0; j >= 0 && steps < MAX_WALK; steps++) {
      const n = ent[(j << ENTRY_SHIFT) + link];
      if (n === i) {
        Atomics.store(ent, (j << ENTRY_SHIFT) + link, after);
        return;
      }
      j = n;
    }
    return; // not in this chain (an abandoned creation never reached in2out)
  }
}
