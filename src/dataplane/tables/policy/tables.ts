// The shared policy tables: the compiled programs and IP sets (two generation banks, layout.ts),
// per-cause deny counters and a ring of Log-action records. SharedArrayBuffers created by the
// control thread (`create`), attached by every worker (`attach`); the control thread writes the
// banks and reads counters and log records, workers read the banks and add to counters and the log.
//
// Lifecycle (ARCHITECTURE.md section 6: create -> attach -> publish -> reclaim): `publish` writes the
// whole next generation into the bank readers are not using, then flips `active`. Readers never
// block and never wait: each evaluation is a seqlock read (read the bank's sequence, evaluate, check
// the sequence again; odd or changed means a writer touched the bank: retry on the now-active bank,
// at most MAX_TRIES times, then the packet is counted and dropped as `policy-busy`). The old bank is
// "reclaimed" by simply being the next one written: a reader still in it sees the sequence move.
// When a quiescent-state registry (tables/qsbr.ts) lands, publish can instead wait for every reader
// to pass a quiescent point before rewriting the old bank, and the read-side re-check goes away.

export const C_ACTIVE = 0;
/** bank b's sequence (odd while being written) */
export const C_SEQ = 1;
export const C_GEN = 3;
/** 1 when some policy resource exists: the ip4-policy node does nothing while it is 0 */
export const C_ENABLED = 4;
export const C_LOG_HEAD = 5;
export const C_MAGIC = 6;
/**
 * FelixConfiguration defaultEndpointToHostAction is Drop: new flows from workloads to the host are
 * dropped after their egress policy (ip4-policy tracks host flows while this is 1, policy or not)
 */
export const C_HOST_DROP = 7;
/**
 * 1 for a while after a restart (the daemon re-attached workloads whose connections were open): a TCP
 * segment with ACK and without SYN / RST that fits no flow is evaluated by policy as if it opened
 * one (conntrack's loose pickup), instead of being dropped as invalid; the flow table was lost
 */
export const C_PICKUP = 8;
const CTL_WORDS = 16;
const CTL_MAGIC = 0x50544231; // 'PTB1'

/** Log record: seq, counter, proto, src, dst, sport << 16 | dport, seconds, ICMP type << 8 | code. */
export const LOG_WORDS = 8;
/** Tries a reader makes before giving up on a bank that keeps changing under it. */
export const MAX_TRIES = 4;

export interface PolicyTablesShared {
  readonly version: 1;
  readonly ctl: SharedArrayBuffer;
  readonly banks: readonly [SharedArrayBuffer, SharedArrayBuffer];
  readonly counters: SharedArrayBuffer;
  readonly log: SharedArrayBuffer;
}

export interface PolicyTablesOptions {
  /** Int32 words per bank (the largest image publish accepts) */
  bankWords?: number;
  /** deny counters (one per endpoint, direction and cause) */
  counters?: number;
  /** Log records kept (a power of two) */
  logSlots?: number;
}

export interface PolicyLogRecord {
  seq: number;
  counter: number;
  proto: number;
  src: number;
  dst: number;
  sport: number;
  dport: number;
  sec: number;
  icmpType: number;
  icmpCode: number;
}

export class PolicyTables {
  readonly ctl: Int32Array;
  readonly banks: readonly [Int32Array, Int32Array];
  readonly counters: Uint32Array;
  readonly log: Int32Array;
  private readonly logMask: number;

  private constructor(readonly shared: PolicyTablesShared) {
    this.ctl = new Int32Array(shared.ctl);
    this.banks = [new Int32Array(shared.banks[0]), new Int32Array(shared.banks[1])];
    this.counters = new Uint32Array(shared.counters);
    this.log = new Int32Array(shared.log);
    this.logMask = this.log.length / LOG_WORDS - 1;
  }

  static create(opts: PolicyTablesOptions = {}): PolicyTables {
    // SharedArrayBuffer pages are committed when first written: a large bank costs what it holds
    const bankWords = opts.bankWords ?? 8 << 20;
    const logSlots = opts.logSlots ?? 1024;
    if ((logSlots & (logSlots - 1)) !== 0)
      throw new RangeError('PolicyTables: logSlots must be a power of two');
    const shared: PolicyTablesShared = {
      version: 1,
      ctl: new SharedArrayBuffer(CTL_WORDS * 4),
      banks: [new SharedArrayBuffer(bankWords * 4), new SharedArrayBuffer(bankWords * 4)],
      counters: new SharedArrayBuffer((opts.counters ?? 65536) * 4),
      log: new SharedArrayBuffer(logSlots * LOG_WORDS * 4),
    };
    const t = new PolicyTables(shared);
    Atomics.store(t.ctl, C_MAGIC, CTL_MAGIC);
    return t;
  }

  static attach(shared: PolicyTablesShared): PolicyTables {
    if (
      shared === null ||
      typeof shared !== 'object' ||
      shared.version !== 1 ||
      !(shared.ctl instanceof SharedArrayBuffer) ||
      Atomics.load(new Int32Array(shared.ctl), C_MAGIC) !== CTL_MAGIC
    )
      throw new TypeError('PolicyTables.attach: not a PolicyTablesShared object (version 1)');
    return new PolicyTables(shared);
  }

  get bankWords(): number {
    return this.banks[0].length;
  }

  get generation(): number {
    return Atomics.load(this.ctl, C_GEN);
  }

  get enabled(): boolean {
    return Atomics.load(this.ctl, C_ENABLED) === 1;
  }

  /** defaultEndpointToHostAction: Drop (true) or Accept / Return (false); applies to new flows at once. */
  get endpointToHostDrop(): boolean {
    return Atomics.load(this.ctl, C_HOST_DROP) === 1;
  }

  set endpointToHostDrop(on: boolean) {
    Atomics.store(this.ctl, C_HOST_DROP, on ? 1 : 0);
  }

  /** Loose pickup of mid-stream TCP flows (after a restart, see C_PICKUP); applies at once. */
  get pickup(): boolean {
    return Atomics.load(this.ctl, C_PICKUP) === 1;
  }

  set pickup(on: boolean) {
    Atomics.store(this.ctl, C_PICKUP, on ? 1 : 0);
  }

  /**
   * Control thread: writes the next generation with `write` (into the bank no reader is meant to
   * use; the caller checked it fits) and makes it the active one. Returns the new generation.
   */
  publish(write: (bank: Int32Array) => void, enabled: boolean): number {
    const ctl = this.ctl;
    const next = 1 - Atomics.load(ctl, C_ACTIVE);
    Atomics.add(ctl, C_SEQ + next, 1); // odd: readers that still look at it retry
    write(this.banks[next]);
    Atomics.add(ctl, C_SEQ + next, 1);
    Atomics.store(ctl, C_ACTIVE, next);
    Atomics.store(ctl, C_ENABLED, enabled ? 1 : 0);
    return Atomics.add(ctl, C_GEN, 1) + 1;
  }

  /** Worker: adds one to deny counter c (an out-of-range index counts in slot 0, "other"). */
  countDeny(c: number): void {
    Atomics.add(this.counters, c >= 0 && c < this.counters.length ? c : 0, 1);
  }

  /** Worker: appends a Log-action record (the ring overwrites the oldest). */
  logRecord(
    counter: number,
    proto: number,
    src: number,
    dst: number,
    sport: number,
    dport: number,
    sec: number,
    icmp: number,
  ): void {
    const seq = Atomics.add(this.ctl, C_LOG_HEAD, 1);
    const o = (seq & this.logMask) * LOG_WORDS;
    const l = this.log;
    Atomics.store(l, o, 0); // being written
    l[o + 1] = counter;
    l[o + 2] = proto;
    l[o + 3] = src;
    l[o + 4] = dst;
    l[o + 5] = (sport << 16) | dport;
    l[o + 6] = sec;
    l[o + 7] = icmp;
    Atomics.store(l, o, seq + 1);
  }

  /**
   * Control thread: the Log records with sequence >= `from` still in the ring, oldest first, and the
   * sequence to read from next time; `lost` counts records overwritten before they were read.
   */
  readLog(from: number): { records: PolicyLogRecord[]; next: number; lost: number } {
    const head = Atomics.load(this.ctl, C_LOG_HEAD);
    const slots = this.logMask + 1;
    const start = Math.max(from, head - slots);
    const out: PolicyLogRecord[] = [];
    const l = this.log;
    let lost = start - from;
    for (let s = start; s < head; s++) {
      const o = (s & this.logMask) * LOG_WORDS;
      if (Atomics.load(l, o) !== s + 1) {
        lost++;
        continue;
      }
      const rec: PolicyLogRecord = {
        seq: s,
        counter: l[o + 1],
        proto: l[o + 2],
        src: l[o + 3] >>> 0,
        dst: l[o + 4] >>> 0,
        sport: l[o + 5] >>> 16,
        dport: l[o + 5] & 0xffff,
        sec: l[o + 6],
        icmpType: (l[o + 7] >>> 8) & 0xff,
        icmpCode: l[o + 7] & 0xff,
      };
      if (Atomics.load(l, o) !== s + 1) lost++;
      else out.push(rec);
    }
    return { records: out, next: head, lost };
  }
}
