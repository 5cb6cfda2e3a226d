// The policy flow table: the flows policy allowed, so that later packets and replies pass with one
// lookup and without re-evaluation (Calico's conntrack "established/related" accept). Shared by all
// workers (a flow opened through one TAP queue is answered through the uplink, read by another
// worker): one SharedArrayBuffer created by the control thread, attached by every worker.
//
// Entries (ENTRY_WORDS Int32 words) are keyed by (protocol, endpoint A, endpoint B), A being the
// lower (address, port) of the two, so both directions of a flow hash to one entry; a bit records
// which side opened it. Open addressing, PROBE slots from the hash, no chains. Each entry's first
// word is `version << 2 | state` (EMPTY, BUSY, VALID, DEAD); writers claim an entry with a CAS
// (EMPTY/DEAD -> BUSY), fill it, then publish VALID with a new version; a reader compares the key
// between two loads of that word and trusts the match only when it did not change (a per-entry
// seqlock: lock-free reads, no blocking). Bounded: when the PROBE slots are all taken an insert is
// refused and counted. Expiry (workers' tick, `expire`) reclaims entries idle longer than their
// protocol's timeout (Felix's BPF conntrack defaults) by CAS VALID -> DEAD.

const E_CTL = 0;
const E_KEY = 1; // protocol | ORIG_B << 8 | state bits
const E_IPA = 2;
const E_IPB = 3;
const E_PORTS = 4; // portA << 16 | portB
const E_SEEN = 5; // seconds
/** the word of an entry holding its last-seen second (ip4-policy's fast path refreshes it) */
export const FLOW_SEEN = E_SEEN;
export const ENTRY_WORDS = 8;

const S_EMPTY = 0;
const S_BUSY = 1;
const S_VALID = 2;
const S_DEAD = 3;

/** E_KEY bits above the protocol byte */
const ORIG_B = 1 << 8; // side B opened the flow
export const FL_REPLIED = 1 << 9; // a packet went the reply way
export const FL_FIN_A = 1 << 10;
export const FL_FIN_B = 1 << 11;
export const FL_RST = 1 << 12;

export const PROBE = 16;

const C_CURSOR = 0;
const C_REFUSED = 1;
const C_ENTRIES = 2;
const C_MAGIC = 3;
const CTL_WORDS = 8;
const MAGIC = 0x50464c31; // 'PFL1'

/** Idle timeouts in seconds (Felix BPFConntrackTimeouts defaults; FINs seen: Linux's 30 s). */
export const FLOW_TIMEOUTS = Object.freeze({
  tcpSynSent: 20,
  tcpEstablished: 3600,
  tcpFinsSeen: 30,
  tcpResetSeen: 40,
  udp: 60,
  icmp: 5,
  generic: 600,
});

export interface PolicyFlowShared {
  readonly version: 1;
  readonly capacity: number;
  readonly sab: SharedArrayBuffer;
  readonly ctl: SharedArrayBuffer;
  readonly seed: number;
}

export class PolicyFlowTable {
  readonly capacity: number;
  /** the entries (ENTRY_WORDS each); readers other than this class only refresh FLOW_SEEN */
  readonly words: Int32Array;
  private readonly w: Int32Array;
  private readonly ctl: Int32Array;
  private readonly mask: number;
  private readonly seed: number;
  /** after a hit: true when the packet went the reply way (its source is the side that did not open it) */
  reply = false;
  /** after a hit: the entry's control word (see `unchanged`) */
  hitCtl = 0;

  private constructor(readonly shared: PolicyFlowShared) {
    this.capacity = shared.capacity;
    this.mask = shared.capacity - 1;
    this.w = new Int32Array(shared.sab);
    this.words = this.w;
    this.ctl = new Int32Array(shared.ctl);
    this.seed = shared.seed | 0;
  }

  /** capacity: a power of two; seed: hash key (random live, fixed in replay for reproducible slots) */
  static create(capacity = 1 << 18, seed = 0): PolicyFlowTable {
    if (capacity < PROBE || (capacity & (capacity - 1)) !== 0)
      throw new RangeError(`PolicyFlowTable: capacity ${capacity} must be a power of two >= ${PROBE}`);
    const shared: PolicyFlowShared = {
      version: 1,
      capacity,
      seed,
      sab: new SharedArrayBuffer(capacity * ENTRY_WORDS * 4),
      ctl: new SharedArrayBuffer(CTL_WORDS * 4),
    };
    const t = new PolicyFlowTable(shared);
    Atomics.store(t.ctl, C_MAGIC, MAGIC);
    return t;
  }

  static attach(shared: PolicyFlowShared): PolicyFlowTable {
    if (
      shared === null ||
      typeof shared !== 'object' ||
      shared.version !== 1 ||
      !(shared.sab instanceof SharedArrayBuffer) ||
      !(shared.ctl instanceof SharedArrayBuffer) ||
      shared.sab.byteLength !== shared.capacity * ENTRY_WORDS * 4 ||
      Atomics.load(new Int32Array(shared.ctl), C_MAGIC) !== MAGIC
    )
      throw new TypeError('PolicyFlowTable.attach: not a PolicyFlowShared object (version 1)');
    return new PolicyFlowTable(shared);
  }

  /** Flows currently recorded. */
  get size(): number {
    return Atomics.load(this.ctl, C_ENTRIES);
  }

  /** Inserts refused because the table was full around the flow's hash. */
  get refused(): number {
    return Atomics.load(this.ctl, C_REFUSED);
  }

  private hash(proto: number, a: number, b: number, ports: number): number {
    let h = Math.imul(a ^ this.seed, 0x9e3779b1);
    h = Math.imul(h ^ (h >>> 15) ^ b, 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13) ^ ports, 0xc2b2ae35);
    h = Math.imul(h ^ (h >>> 16) ^ proto, 0x27d4eb2d);
    return (h ^ (h >>> 15)) & this.mask;
  }

  /**
   * The entry of the flow the packet (proto, src:sport -> dst:dport) belongs to, in either direction,
   * or -1. On a hit, `reply` tells whether the packet went the reply way.
   */
  lookup(proto: number, src: number, dst: number, sport: number, dport: number): number {
    // canonical order: A is the lower (address, port); compare addresses unsigned
    const s = src >>> 0;
    const d = dst >>> 0;
    const srcIsA = s < d || (s === d && sport <= dport);
    const a = srcIsA ? s | 0 : d | 0;
    const b = srcIsA ? d | 0 : s | 0;
    const ports = srcIsA ? (sport << 16) | dport : (dport << 16) | sport;
    const w = this.w;
    let slot = this.hash(proto, a, b, ports);
    for (let k = 0; k < PROBE; k++) {
      const e = slot * ENTRY_WORDS;
      const c = Atomics.load(w, e + E_CTL);
      const st = c & 3;
      if (st === S_EMPTY) return -1;
      if (st === S_VALID && w[e + E_IPA] === a && w[e + E_IPB] === b && w[e + E_PORTS] === ports) {
        const key = w[e + E_KEY];
        if ((key & 0xff) === proto && Atomics.load(w, e + E_CTL) === c) {
          // the opener is A unless ORIG_B: the packet is a reply when its source is not the opener
          this.reply = srcIsA === ((key & ORIG_B) !== 0);
          this.hitCtl = c;
          return slot;
        }
      }
      slot = (slot + 1) & this.mask;
    }
    return -1;
  }

  /**
   * True while entry `slot` still holds the flow a lookup found with control word `ctl` (not
   * expired, not reused since: every change of an entry changes its control word).
   */
  unchanged(slot: number, ctl: number): boolean {
    return Atomics.load(this.w, slot * ENTRY_WORDS + E_CTL) === ctl;
  }

  /**
   * Records a flow opened by (proto, src:sport -> dst:dport) at time `now` (seconds). Returns its
   * entry, or -1 when the table is full around its hash (counted in `refused`).
   */
  insert(proto: number, src: number, dst: number, sport: number, dport: number, now: number): number {
    const s = src >>> 0;
    const d = dst >>> 0;
    const srcIsA = s < d || (s === d && sport <= dport);
    const a = srcIsA ? s | 0 : d | 0;
    const b = srcIsA ? d | 0 : s | 0;
    const ports = srcIsA ? (sport << 16) | dport : (dport << 16) | sport;
    const w = this.w;
    let slot = this.hash(proto, a, b, ports);
    for (let k = 0; k < PROBE; k++) {
      const e = slot * ENTRY_WORDS;
      const c = Atomics.load(w, e + E_CTL);
      const st = c & 3;
      if (
        (st === S_EMPTY || st === S_DEAD) &&
        Atomics.compareExchange(w, e + E_CTL, c, (c & ~3) | S_BUSY) === c
      ) {
        w[e + E_KEY] = proto | (srcIsA ? 0 : ORIG_B);
        w[e + E_IPA] = a;
        w[e + E_IPB] = b;
        w[e + E_PORTS] = ports;
        w[e + E_SEEN] = now | 0;
        // a new version: a reader that compared the old key around our writes sees the word move
        Atomics.store(w, e + E_CTL, (((c >>> 2) + 1) << 2) | S_VALID);
        Atomics.add(this.ctl, C_ENTRIES, 1);
        return slot;
      }
      slot = (slot + 1) & this.mask;
    }
    Atomics.add(this.ctl, C_REFUSED, 1);
    return -1;
  }

  /**
   * A packet of flow `slot` went by at `now`: refreshes its idle timer (at most once a second) and,
   * for TCP, records FIN / RST and the first reply. `tcpFlags` is the TCP flags byte (0 otherwise).
   */
  touch(slot: number, now: number, reply: boolean, tcpFlags: number): void {
    const w = this.w;
    const e = slot * ENTRY_WORDS;
    const t = now | 0;
    if (w[e + E_SEEN] !== t) w[e + E_SEEN] = t;
    const key = w[e + E_KEY];
    let bits = 0;
    if (reply && (key & FL_REPLIED) === 0) bits |= FL_REPLIED;
    if ((tcpFlags & 0x05) !== 0) {
      // FIN (0x01) from the side that sent it; RST (0x04)
      if ((tcpFlags & 0x04) !== 0) bits |= FL_RST;
      if ((tcpFlags & 0x01) !== 0) {
        const fromB = reply === ((key & ORIG_B) === 0);
        bits |= fromB ? FL_FIN_B : FL_FIN_A;
      }
    }
    if (bits !== 0 && (key & bits) !== bits) Atomics.or(w, e + E_KEY, bits);
  }

  /** The flow's state bits (FL_*) and protocol, for tests and `calitap` inspection. */
  flags(slot: number): number {
    return this.w[slot * ENTRY_WORDS + E_KEY];
  }

  /** Idle timeout of an entry with key word `key`. */
  static timeout(key: number): number {
    const proto = key & 0xff;
    if (proto === 6) {
      if ((key & FL_RST) !== 0) return FLOW_TIMEOUTS.tcpResetSeen;
      if ((key & (FL_FIN_A | FL_FIN_B)) === (FL_FIN_A | FL_FIN_B)) return FLOW_TIMEOUTS.tcpFinsSeen;
      return (key & FL_REPLIED) !== 0 ? FLOW_TIMEOUTS.tcpEstablished : FLOW_TIMEOUTS.tcpSynSent;
    }
    if (proto === 17) return FLOW_TIMEOUTS.udp;
    if (proto === 1) return FLOW_TIMEOUTS.icmp;
    return FLOW_TIMEOUTS.generic;
  }

  /**
   * Reclaims up to `budget` slots' worth of idle entries (from a shared cursor, so workers sweep
   * different parts). Returns how many it reclaimed.
   */
  expire(now: number, budget: number): number {
    // nothing to reclaim: do not walk `budget` slots (128 KiB at 4096) every tick, which on an idle
    // or lightly used table evicted the forwarding path's caches between two pings
    if (Atomics.load(this.ctl, C_ENTRIES) === 0) return 0;
    const w = this.w;
    const n = Math.min(budget, this.capacity);
    const start = Atomics.add(this.ctl, C_CURSOR, n) & this.mask;
    const t = now | 0;
    let freed = 0;
    for (let k = 0; k < n; k++) {
      const slot = (start + k) & this.mask;
      const e = slot * ENTRY_WORDS;
      const c = Atomics.load(w, e + E_CTL);
      if ((c & 3) !== S_VALID) continue;
      if (t - w[e + E_SEEN] <= PolicyFlowTable.timeout(w[e + E_KEY])) continue;
      if (Atomics.compareExchange(w, e + E_CTL, c, (((c >>> 2) + 1) << 2) | S_DEAD) === c) {
        Atomics.sub(this.ctl, C_ENTRIES, 1);
        freed++;
      }
    }
    return freed;
  }

  /** Forgets every flow (tests; a policy reset). Not for use while workers run. */
  clear(): void {
    this.w.fill(0);
    Atomics.store(this.ctl, C_ENTRIES, 0);
  }
}
