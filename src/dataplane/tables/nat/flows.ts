// The SNAT table's flow index: the shared memory layout, the two hash indexes over the flow entries and
// the lock-free lookups the graph runs per packet (snat4-in2out, snat4-out2in, icmp errors).
//
// Who owns the memory: ONE SharedArrayBuffer created by the control thread (table.ts `NatTable.create`)
// and attached by every worker, so all threads see the same flows. Nothing here allocates per packet.
// Layout (Int32 words unless noted; see `natLayout`):
//   header    64 words: sweep lock | size, high-water mark, PRNG, ring head | ring boundary and
//             tail, sweep cursor | counters | timeouts per class (ticks)
//   natIps    natIpCount words
//   ports     Uint16 list of allocatable ports (ports.ts)
//   entries   slots x 16 words (64 bytes, one cache line each: a lookup that reaches an entry reads
//             its key, its chain links and what translation writes in one line); slots = capacity +
//             capacity/8 + 64, the spare ones hold flows removed but not yet reclaimable (QSBR grace
//             periods) so they do not cut capacity:
//             0 VER    0 = never used, odd = free or being created, even = live (or dead, not yet unlinked)
//             1 STATE  bits 0..7 flow flags (NAT_ST_*), bits 8..11 timeout class (NAT_CLASS_*; 15 = dead)
//             2 SRC inside ip   3 DST remote ip   4 NAT translated ip
//             5 PORTS  inside port << 16 | remote port     6 PNAT proto << 16 | nat port
//             7 LAST   last-seen time (caller's clock, u32 ticks)
//             8 NEXT_IN, 9 NEXT_OUT   chain links of the two indexes (-1 = end); 10..15 unused
//   bucketsIn, bucketsOut   one head word per bucket (-1 = empty); buckets = the power of two >= capacity
//   ring, tags   slots words each: unlinked entries (and their QSBR tags) in retirement order; the
//                front part, up to the boundary, is reclaimed and ready for reuse (table.ts)
// Two chained hash indexes over the same entries: in2out keyed by (proto, src ip, src port, dst ip, dst
// port) and out2in keyed by (proto, remote ip, remote port, nat ip, nat port). The hash is keyed
// (`hashKey`, random by default) so pods cannot aim flows at one chain.
//
// Concurrency (the lifecycle of qsbr.ts): an entry's key words are written before it is published and
// never change while any reader may reach it: the sweep (table.ts) unlinks a dead entry from both chains
// and reuses its memory only after every registered reader passed a quiescent point. So a reader walks
// with plain loads and no validation: every link it follows is either current or was current at some
// point of its walk, and an entry it matches holds the key it compared. Inserts prepend with a
// compare-and-swap of the bucket head after the entry and its link are written (release order: the
// reader's loads depend on the head it loaded; x86-64 TSO, and an address dependency on arm64).
// STATE and LAST are single words updated in place by any thread (STATE by compareExchange loops, LAST
// by plain store), so two workers handling the two directions of one flow do not lose updates; a dead
// STATE stays dead. Expired and dead entries may sit in a chain next to the live flow with the same key
// (a flow recreated before the sweep unlinked the old one): lookups skip them and walk on.
//
// Expiry: a flow is expired when (now - last) > timeout[class] (signed 32-bit difference, so clocks that
// wrap or differ slightly between threads are harmless). Lookups treat an expired flow as absent whether
// or not the sweep has reclaimed it yet, so what the graph sees does not depend on when the sweep runs.
//
// Batches: lookupOutBatch / lookupInBatch walk all chains at once, one step per packet per stage, so
// the loads of a stage are independent (JavaScript has no prefetch; the CPU overlaps independent
// misses, as many as its out-of-order window reaches: the loops that take them are a few instructions
// per packet) and each walk is done once. Worth it when the table is bigger than the caches.
// Cache lines: an entry is one 64-byte line (16 words) when the buffer starts on a line; if it starts
// 16 bytes past one (a malloc chunk header), words 0..11 (all a lookup and a translation touch) still
// share a line.
import { ReaderRegistry, type ReaderRegistryShared } from '../qsbr.js';
import { NAT_CLASS_DEAD, NAT_MISS, NAT_ST_REPLY, natTcpNextFlags, natTimeoutClass } from './conntrack.js';

/** Everything a worker needs to attach: SharedArrayBuffers and numbers (postMessage-able). */
export interface NatTableShared {
  readonly sab: SharedArrayBuffer;
  /** the table set's reader registry (qsbr.ts) */
  readonly readers: ReaderRegistryShared;
  /** flows (the limit createOut enforces) */
  readonly capacity: number;
  /** entries (capacity + room for flows awaiting reclamation) */
  readonly slots: number;
  readonly bucketBits: number;
  readonly natIpCount: number;
  readonly portCount: number;
  readonly maxPortProbes: number;
  readonly hashKey: number;
}

// Header words. Line 0: the sweep lock; line 1: words every creator writes; line 2: the sweeper's;
// line 2.5: counters; line 3: read-only timeouts.
export const H_LOCK = 0;
export const H_SIZE = 16;
export const H_HWM = 17;
export const H_PRNG = 18;
export const H_RING_HEAD = 19;
export const H_RING_BOUNDARY = 32;
export const H_RING_TAIL = 33;
export const H_CURSOR = 34;
export const H_FULL = 40;
export const H_NOPORT = 41;
export const H_CREATED = 42;
export const H_EXPIRED = 43;
export const H_BUSY = 44;
export const H_CLASH = 45;
export const H_STOLEN = 46;
export const H_TIMEOUTS = 48;
export const HEADER_WORDS = 64;

// Entry words.
export const E_VER = 0;
export const E_STATE = 1;
export const E_SRC = 2;
export const E_DST = 3;
export const E_NAT = 4;
export const E_PORTS = 5;
export const E_PNAT = 6;
export const E_LAST = 7;
export const E_NEXT_IN = 8;
export const E_NEXT_OUT = 9;
export const ENTRY_SHIFT = 4; // 16 words: one 64-byte line

/** Chain steps before a walk stops (chains are ~1 long; this only bounds a corrupted table). */
export const MAX_WALK = 4096;

export interface NatLayout {
  natIpsWord: number;
  portsByte: number;
  entriesWord: number;
  bucketsInWord: number;
  bucketsOutWord: number;
  ringWord: number;
  tagsWord: number;
  bytes: number;
}

function align16(words: number): number {
  return (words + 15) & ~15; // 64-byte boundaries
}

export function natLayout(s: Omit<NatTableShared, 'sab' | 'readers'>): NatLayout {
  const natIpsWord = HEADER_WORDS;
  const portsWord = align16(natIpsWord + s.natIpCount);
  const entriesWord = align16(portsWord + ((s.portCount + 1) >>> 1));
  const bucketsInWord = align16(entriesWord + (s.slots << ENTRY_SHIFT));
  const bucketsOutWord = bucketsInWord + (1 << s.bucketBits);
  const ringWord = align16(bucketsOutWord + (1 << s.bucketBits));
  const tagsWord = align16(ringWord + s.slots);
  const end = tagsWord + s.slots;
  return {
    natIpsWord,
    portsByte: portsWord * 4,
    entriesWord,
    bucketsInWord,
    bucketsOutWord,
    ringWord,
    tagsWord,
    bytes: end * 4,
  };
}

export function hash4(key: number, proto: number, ipA: number, ipB: number, ports: number): number {
  let h = Math.imul(ipA ^ key, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15) ^ ipB, 0x85ebca77);
  h = Math.imul(h ^ (h >>> 13) ^ ports, 0xc2b2ae3d);
  h = Math.imul(h ^ (h >>> 16) ^ proto, 0x27d4eb2f);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return h ^ (h >>> 12);
}

/** The views over a NatTableShared and the lookups; `NatTable` (table.ts) adds creation and expiry. */
export class FlowIndex {
  readonly shared: NatTableShared;
  readonly capacity: number;
  /** entries (see the layout) */
  readonly slots: number;
  protected readonly readers: ReaderRegistry;
  protected readonly hdr: Int32Array;
  protected readonly tmo: Int32Array;
  protected readonly ips: Int32Array;
  protected readonly ports: Uint16Array;
  protected readonly ent: Int32Array;
  protected readonly bkIn: Int32Array;
  protected readonly bkOut: Int32Array;
  protected readonly ring: Int32Array;
  protected readonly tags: Int32Array;
  protected readonly shift: number;
  protected readonly key: number;
  protected readonly nIps: number;
  protected readonly nPorts: number;
  protected readonly probes: number;
  /** lookup*Batch scratch: the chain position of each packet's walk (-1: done) */
  private cur = new Int32Array(256);
  /** what the batch walks' touch loops read (kept, so the loads are not optimised away) */
  private touched = 0;

  protected constructor(shared: NatTableShared) {
    this.shared = shared;
    const L = natLayout(shared);
    const sab = shared.sab;
    if (sab.byteLength < L.bytes) throw new RangeError('nat table: shared buffer too small for its layout');
    this.readers = ReaderRegistry.attach(shared.readers);
    this.capacity = shared.capacity;
    this.slots = shared.slots;
    this.hdr = new Int32Array(sab, 0, HEADER_WORDS);
    this.tmo = new Int32Array(sab, H_TIMEOUTS * 4, 16);
    this.ips = new Int32Array(sab, L.natIpsWord * 4, shared.natIpCount);
    this.ports = new Uint16Array(sab, L.portsByte, shared.portCount);
    this.ent = new Int32Array(sab, L.entriesWord * 4, shared.slots << ENTRY_SHIFT);
    this.bkIn = new Int32Array(sab, L.bucketsInWord * 4, 1 << shared.bucketBits);
    this.bkOut = new Int32Array(sab, L.bucketsOutWord * 4, 1 << shared.bucketBits);
    this.ring = new Int32Array(sab, L.ringWord * 4, shared.slots);
    this.tags = new Int32Array(sab, L.tagsWord * 4, shared.slots);
    this.shift = 32 - shared.bucketBits;
    this.key = shared.hashKey | 0;
    this.nIps = shared.natIpCount;
    this.nPorts = shared.portCount;
    this.probes = Math.min(shared.portCount, shared.maxPortProbes);
  }

  /** Flows (live, not yet expired or removed). */
  get size(): number {
    return Atomics.load(this.hdr, H_SIZE);
  }

  memoryBytes(): number {
    return this.shared.sab.byteLength;
  }

  // ---- per-entry accessors (valid for an index a lookup/create just returned) ----
  natIp(i: number): number {
    return this.ent[(i << ENTRY_SHIFT) + E_NAT] >>> 0;
  }
  natPort(i: number): number {
    return this.ent[(i << ENTRY_SHIFT) + E_PNAT] & 0xffff;
  }
  insideIp(i: number): number {
    return this.ent[(i << ENTRY_SHIFT) + E_SRC] >>> 0;
  }
  insidePort(i: number): number {
    return this.ent[(i << ENTRY_SHIFT) + E_PORTS] >>> 16;
  }
  remoteIp(i: number): number {
    return this.ent[(i << ENTRY_SHIFT) + E_DST] >>> 0;
  }
  remotePort(i: number): number {
    return this.ent[(i << ENTRY_SHIFT) + E_PORTS] & 0xffff;
  }
  proto(i: number): number {
    return this.ent[(i << ENTRY_SHIFT) + E_PNAT] >>> 16;
  }
  /** Flow flags (NAT_ST_*). */
  flags(i: number): number {
    return Atomics.load(this.ent, (i << ENTRY_SHIFT) + E_STATE) & 0xff;
  }
  /** Timeout class (NAT_CLASS_*; NAT_CLASS_DEAD once removed). */
  timeoutClass(i: number): number {
    return (Atomics.load(this.ent, (i << ENTRY_SHIFT) + E_STATE) >>> 8) & 15;
  }
  lastSeen(i: number): number {
    return this.ent[(i << ENTRY_SHIFT) + E_LAST] >>> 0;
  }
  /** True when slot i holds a flow that was not removed (expired or not); for scans, tests, debugging. */
  isLive(i: number): boolean {
    const o = i << ENTRY_SHIFT;
    const v = Atomics.load(this.ent, o + E_VER);
    return v !== 0 && (v & 1) === 0 && ((Atomics.load(this.ent, o + E_STATE) >>> 8) & 15) !== NAT_CLASS_DEAD;
  }
  /** True when flow i has passed its timeout at `now` (or was removed). */
  isExpired(i: number, now: number): boolean {
    const o = i << ENTRY_SHIFT;
    const e = this.ent;
    return ((now - e[o + E_LAST]) | 0) > this.tmo[(e[o + E_STATE] >>> 8) & 15];
  }

  // ---- lookups (lock-free, allocation-free) ----

  /** in2out: the flow (proto, srcIp:srcPort -> dstIp:dstPort), or NAT_MISS. Refreshes last-seen. */
  lookupOut(
    proto: number,
    srcIp: number,
    srcPort: number,
    dstIp: number,
    dstPort: number,
    now: number,
  ): number {
    const src = srcIp | 0;
    const dst = dstIp | 0;
    const ports = (srcPort << 16) | dstPort;
    const ent = this.ent;
    let i = this.bkIn[hash4(this.key, proto, src, dst, ports) >>> this.shift];
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
      }
      i = ent[o + E_NEXT_IN];
    }
    return NAT_MISS;
  }

  /**
   * out2in: the flow whose translation is natIp:natPort talking to remoteIp:remotePort, or NAT_MISS.
   * Refreshes last-seen and records that the flow got a reply (UDP: stream timeout).
   */
  lookupIn(
    proto: number,
    remoteIp: number,
    remotePort: number,
    natIp: number,
    natPort: number,
    now: number,
  ): number {
    const rem = remoteIp | 0;
    const nat = natIp | 0;
    const pnat = (proto << 16) | natPort;
    const ent = this.ent;
    let i = this.bkOut[hash4(this.key, proto, nat, rem, (natPort << 16) | remotePort) >>> this.shift];
    for (let steps = 0; i >= 0 && steps < MAX_WALK; steps++) {
      const o = i << ENTRY_SHIFT;
      if (
        ent[o + E_PNAT] === pnat &&
        ent[o + E_DST] === rem &&
        ent[o + E_NAT] === nat &&
        (ent[o + E_PORTS] & 0xffff) === remotePort
      ) {
        const r = this.hit(i, o, now);
        if (r >= 0) {
          if ((ent[o + E_STATE] & NAT_ST_REPLY) === 0) this.setFlags(o, NAT_ST_REPLY);
          return r;
        }
      }
      i = ent[o + E_NEXT_OUT];
    }
    return NAT_MISS;
  }

  /**
   * Batched lookupOut for a vector of packets (the graph's batch): `keys` holds n records of 5 words
   * (proto, src ip, src port, dst ip, dst port); out[j] gets what lookupOut would return. Much faster
   * than n single calls on tables bigger than the CPU caches, because the misses of different packets
   * overlap (JavaScript has no prefetch instruction; the CPU overlaps independent loads as far as its
   * out-of-order window reaches, so the loops that take the misses are kept to a few instructions per
   * packet): (1) every packet's bucket number (no memory touched but the keys), (2) every bucket head,
   * (3) per chain step, every current entry touched (one line each: key, links and what translation
   * writes), then compared; each walk stops at its match, as lookupOut's does.
   */
  lookupOutBatch(keys: Int32Array, n: number, now: number, out: Int32Array): void {
    const bk = this.bkIn;
    const ent = this.ent;
    const shift = this.shift;
    const key = this.key;
    const cur = this.walk(n);
    for (let j = 0, q = 0; j < n; j++, q += 5) {
      cur[j] = hash4(key, keys[q], keys[q + 1], keys[q + 3], (keys[q + 2] << 16) | keys[q + 4]) >>> shift;
      out[j] = NAT_MISS;
    }
    for (let j = 0; j < n; j++) cur[j] = bk[cur[j]];
    let touched = 0;
    for (let steps = 0, left = n; left > 0 && steps < MAX_WALK; steps++) {
      for (let j = 0; j < n; j++) {
        const i = cur[j];
        if (i >= 0) touched ^= ent[(i << ENTRY_SHIFT) + E_SRC];
      }
      left = 0;
      for (let j = 0, q = 0; j < n; j++, q += 5) {
        const i = cur[j];
        if (i < 0) continue;
        const o = i << ENTRY_SHIFT;
        if (
          ent[o + E_SRC] === keys[q + 1] &&
          ent[o + E_PORTS] === ((keys[q + 2] << 16) | keys[q + 4]) &&
          ent[o + E_DST] === keys[q + 3] &&
          ent[o + E_PNAT] >>> 16 === keys[q]
        ) {
          const r = this.hit(i, o, now);
          if (r >= 0) {
            out[j] = r;
            cur[j] = -1;
            continue;
          }
        }
        const m = ent[o + E_NEXT_IN];
        cur[j] = m;
        if (m >= 0) left++;
      }
    }
    this.touched = touched;
  }

  /** Batched lookupIn: keys hold n records (proto, remote ip, remote port, nat ip, nat port). */
  lookupInBatch(keys: Int32Array, n: number, now: number, out: Int32Array): void {
    const bk = this.bkOut;
    const ent = this.ent;
    const shift = this.shift;
    const key = this.key;
    const cur = this.walk(n);
    for (let j = 0, q = 0; j < n; j++, q += 5) {
      cur[j] = hash4(key, keys[q], keys[q + 3], keys[q + 1], (keys[q + 4] << 16) | keys[q + 2]) >>> shift;
      out[j] = NAT_MISS;
    }
    for (let j = 0; j < n; j++) cur[j] = bk[cur[j]];
    let touched = 0;
    for (let steps = 0, left = n; left > 0 && steps < MAX_WALK; steps++) {
      for (let j = 0; j < n; j++) {
        const i = cur[j];
        if (i >= 0) touched ^= ent[(i << ENTRY_SHIFT) + E_PNAT];
      }
      left = 0;
      for (let j = 0, q = 0; j < n; j++, q += 5) {
        const i = cur[j];
        if (i < 0) continue;
        const o = i << ENTRY_SHIFT;
        if (
          ent[o + E_PNAT] === ((keys[q] << 16) | keys[q + 4]) &&
          ent[o + E_DST] === keys[q + 1] &&
          ent[o + E_NAT] === keys[q + 3] &&
          (ent[o + E_PORTS] & 0xffff) === keys[q + 2]
        ) {
          const r = this.hit(i, o, now);
          if (r >= 0) {
            if ((ent[o + E_STATE] & NAT_ST_REPLY) === 0) this.setFlags(o, NAT_ST_REPLY);
            out[j] = r;
            cur[j] = -1;
            continue;
          }
        }
        const m = ent[o + E_NEXT_OUT];
        cur[j] = m;
        if (m >= 0) left++;
      }
    }
    this.touched = touched;
  }

  /** The batch walks' scratch (one chain position per packet), grown to n (never per packet). */
  private walk(n: number): Int32Array {
    if (this.cur.length < n) this.cur = new Int32Array(Math.max(n, 256));
    return this.cur;
  }

  /** i if flow i (at word offset o) is alive at `now` (refreshing last-seen), else NAT_MISS. */
  protected hit(i: number, o: number, now: number): number {
    const ent = this.ent;
    const age = (now - ent[o + E_LAST]) | 0;
    const cls = (ent[o + E_STATE] >>> 8) & 15;
    if (age > this.tmo[cls] || cls === NAT_CLASS_DEAD) return NAT_MISS;
    if (age > 0) ent[o + E_LAST] = now;
    return i;
  }

  /** ORs `add` into the flags of the entry at word offset o and recomputes its timeout class. */
  protected setFlags(o: number, add: number): void {
    const ent = this.ent;
    const proto = ent[o + E_PNAT] >>> 16;
    for (;;) {
      const s = Atomics.load(ent, o + E_STATE);
      if (((s >>> 8) & 15) === NAT_CLASS_DEAD) return;
      const st = (s | add) & 0xff;
      const n = (natTimeoutClass(proto, st) << 8) | st;
      if (n === s || Atomics.compareExchange(ent, o + E_STATE, s, n) === s) return;
    }
  }

  /** Feeds one TCP packet's flags (byte 13 of the header) into flow i's state; refreshes last-seen. */
  tcpUpdate(i: number, tcpFlags: number, fromInside: boolean, now: number): void {
    const ent = this.ent;
    const o = i << ENTRY_SHIFT;
    for (;;) {
      const s = Atomics.load(ent, o + E_STATE);
      if (((s >>> 8) & 15) === NAT_CLASS_DEAD) return;
      const st = natTcpNextFlags(s & 0xff, tcpFlags, fromInside);
      const n = (natTimeoutClass(6, st) << 8) | st;
      if (n === s || Atomics.compareExchange(ent, o + E_STATE, s, n) === s) break;
    }
    if (((now - ent[o + E_LAST]) | 0) > 0) ent[o + E_LAST] = now;
  }
}
