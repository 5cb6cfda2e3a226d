// SNAT connection-tracking table for natOutgoing (ARCHITECTURE.md section 3): one entry per flow that
// a pod opened towards a destination outside every IP pool, with the translated (nat ip, nat port).
//
// What flows through it: the graph nodes `snat4-in2out` / `snat4-out2in` look flows up by 5-tuple
// (flows.ts), create translations for new outbound flows (`createOut`, here) and feed TCP flags in
// (conntrack.ts); a periodic sweep (`expire`, any thread) reclaims expired flows. Who owns the memory:
// one SharedArrayBuffer created by the control thread (`NatTable.create`) and attached by every worker
// (`NatTable.attach`); layout in flows.ts. Nothing here allocates per packet.
//
// The parts: conntrack.ts (result codes, flags, timeouts, TCP tracking), ports.ts (port allocation
// rules), flows.ts (layout, hash indexes, lock-free lookups), sweep.ts (removal and reclamation), and
// this file: the facade (options, create/attach, counters) and creation. No thread ever waits:
//  - Creation is lock-free. A creator first walks the in2out chain (an existing flow wins), then for
//    each candidate port (ports.ts) walks the out2in chain of (proto, remote, nat ip, port); when the
//    key is free it publishes the new entry there with ONE compare-and-swap of that bucket's head: the
//    swap succeeds only if nobody inserted into the chain since the walk, so two threads can never
//    claim the same out2in key (a failed swap re-walks and retries). It then publishes the entry in
//    the in2out chain the same way; if another thread created the same flow meanwhile, the later one
//    abandons its entry (marked dead, counted `clash`) and returns the earlier one. Every retry loop is
//    bounded (CAS_TRIES): a contention storm returns NAT_BUSY (counted), never a wait.
//  - Entries come from the ring of reclaimed entries (one compare-and-swap of its head), else from a
//    fresh-slot counter (Atomics.add); the size limit is one Atomics.add on the flow count. There are
//    more entries than `capacity` (flows.ts), so flows awaiting reclamation do not cut capacity; when
//    every entry awaits it (a reader stalled under heavy churn), creation fails with NAT_FULL, counted.
//  - Expired flows a creator meets while probing are removed on the way (sweep.ts).
// With one thread and no registered reader (replay), every removal is unlinked and reusable at once, so
// results (and with a seed, the ports chosen) are deterministic. A worker that dies in the middle of a
// creation or a sweep can leak an entry (never corrupt a chain or hand an entry out twice).
import { randomInt } from 'node:crypto';
import { ReaderRegistry } from '../qsbr.js';
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
import { FlowSweeper } from './sweep.js';
import {
  ENTRY_SHIFT,
  E_DST,
  E_LAST,
  E_NAT,
  E_NEXT_IN,
  E_NEXT_OUT,
  E_PNAT,
  E_PORTS,
  E_SRC,
  E_STATE,
  E_VER,
  HEADER_WORDS,
  H_BUSY,
  H_CLASH,
  H_CREATED,
  H_EXPIRED,
  H_FULL,
  H_HWM,
  H_NOPORT,
  H_PRNG,
  H_RING_BOUNDARY,
  H_RING_HEAD,
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
  /**
   * Called once with the table's new memory before anything is written to it: a hint about how to
   * back it (the daemon passes `adviseHugePages`: random lookups over tens of MiB then miss the TLB
   * far less). Must not throw.
   */
  advise?: (sab: SharedArrayBuffer) => void;
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

function checkInt(name: string, v: number, lo: number, hi: number): number {
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw new RangeError(`nat table: ${name} must be an integer in ${lo}..${hi}, got ${v}`);
  }
  return v;
}

export class NatTable extends FlowSweeper {
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
      slots: capacity + Math.ceil(capacity / 8) + 64,
      bucketBits,
      natIpCount: natIps.length,
      portCount: allowed.length,
      maxPortProbes,
      hashKey,
    };
    const L = natLayout(dims);
    const sab = new SharedArrayBuffer(L.bytes);
    opts.advise?.(sab);
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
          ent[o + E_NEXT_OUT] = headOut;
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
      this.ent[o + E_NEXT_IN] = head;
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

  /** An unused entry: this thread's spare, a reclaimed one, or a fresh slot; -1 none, -2 contention. */
  private alloc(): number {
    if (this.spare >= 0) {
      const i = this.spare;
      this.spare = -1;
      return i;
    }
    const h = this.hdr;
    for (let pass = 0; pass < 2; pass++) {
      for (let t = 0; ; t++) {
        const head = Atomics.load(h, H_RING_HEAD);
        if (head === Atomics.load(h, H_RING_BOUNDARY)) break;
        const i = this.ring[head % this.slots];
        if (Atomics.compareExchange(h, H_RING_HEAD, head, this.ringNext(head)) === head) return i;
        if (t === CAS_TRIES) return -2;
      }
      if (pass === 0 && Atomics.load(h, H_HWM) < this.slots) {
        const i = Atomics.add(h, H_HWM, 1);
        if (i < this.slots) return i;
      }
      // nothing reclaimed yet: try to advance the ring's boundary (only if no sweep is running)
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
      i = ent[o + E_NEXT_IN];
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
      i = ent[o + E_NEXT_OUT];
    }
    return false;
  }
}
