// SNAT connection-tracking table for natOutgoing (ARCHITECTURE.md section 3): one entry per flow that
// a pod opened towards a destination outside every IP pool, with the translated (nat ip, nat port).
//
// What flows through it: the graph nodes `snat4-in2out` / `snat4-out2in` look flows up by 5-tuple, create
// translations for new outbound flows and feed TCP flags in; the control thread (or a worker,
// opportunistically) calls `expire()`. Who owns the memory: the table lives in ONE SharedArrayBuffer
// created by the control thread (`NatTable.create`) and attached by every worker (`NatTable.attach`), so all
// threads see the same mappings. Nothing here allocates per packet: no objects, strings or Maps per flow.
//
// Layout (all Int32 words unless noted; see `layoutOf`):
//   header   64 words: lock, waiters | size, free-list head, high-water mark, PRNG state, expiry cursor,
//            counters | timeouts per class (ticks)
//   natIps   natIpCount words
//   ports    Uint16 list of allocatable ports: [portLo, portHi] minus `reservedPorts` (VXLAN 4789 by default)
//   entries  capacity x 8 words (32 bytes):
//            0 VER    seqlock version: odd (or 0) = free / being written, even (>= 2) = live
//            1 STATE  bits 0..7 flow flags (NAT_ST_*), bits 8..11 timeout class (NAT_CLASS_*)
//            2 SRC    inside ip           3 DST   remote ip          4 NAT   translated ip
//            5 PORTS  inside port << 16 | remote port
//            6 PNAT   proto << 16 | nat port
//            7 LAST   last-seen time (caller's clock, u32 ticks)
//   nextIn, nextOut   capacity words each: chain links of the two hash indexes (-1 = end); a free entry's
//                     nextIn links the free list
//   bucketsIn, bucketsOut  2 words per bucket: [head entry (-1 = empty), generation]
//
// Two chained hash indexes over the same entries: in2out keyed by (proto, src ip, src port, dst ip, dst
// port) and out2in keyed by (proto, remote ip, remote port, nat ip, nat port). Buckets: the power of two
// >= capacity (load factor <= 1). The hash is keyed (`hashKey`, random by default) so pods cannot aim
// flows at one chain.
//
// Concurrency protocol (any number of threads; all of them may look up, create and expire):
//  - Writers (createOut, expire, remove) serialise on one spin lock in the header (compareExchange 0 -> 1;
//    bounded spinning, then Atomics.wait with a 1 ms timeout; after LOCK_WAIT_ROUNDS waits the call gives
//    up: createOut returns NAT_BUSY and counts `busy`, expire returns what it freed so far). One lock keeps
//    the port allocator (which probes many out2in buckets) and the free list simple; the critical section
//    is a few hundred nanoseconds. If a thread dies while holding the lock the table stops creating flows
//    (NAT_BUSY) but never hangs a worker.
//  - Readers (lookupOut, lookupIn) take no lock. An entry is filled while its VER is odd and published by
//    bumping VER to even (Atomics) and then storing it as a bucket head (Atomics.store, after its next link
//    is set). A reader loads VER, compares the key words, loads VER again with Atomics.load: equal and
//    even means the key was read from one live version of the entry, so a reader never matches a
//    half-written or recycled entry (seqlock). The first VER load, the key words, heads and links are
//    plain typed-array reads (Atomics.load costs ~20 ns each in Node 20's V8, which would halve lookup
//    speed); the re-checks are Atomics.load, which V8 never merges with earlier loads. That is sound on
//    x86-64 (TSO: loads are not reordered with loads); an arm64 port would need the key reads atomic.
//  - Freeing an entry unlinks it from both chains, then bumps the generation of both of its buckets, then
//    bumps VER to odd, and only then reuses its links (free list). A reader that reaches the end of a chain
//    without a match re-reads the bucket generation: unchanged means the miss is real (no entry of that
//    chain was freed while it walked, so every link it followed was valid); changed means retry. After
//    OPTIMISTIC_TRIES the reader searches under the lock. Inserts only prepend, which never breaks a walk.
//  - STATE and LAST are single words updated without the lock (LAST by plain store, STATE by
//    compareExchange loops), so two workers handling the two directions of one flow do not lose updates.
//  - An index returned by a lookup stays valid while the flow is not expired: callers read the
//    translation (natIp(i), natPort(i)...) right away, in the same batch.
//
// Expiry: a flow is expired when (now - last) > timeout[class] (signed 32-bit difference, so clocks that
// wrap or differ slightly between threads are harmless). Lookups treat an expired flow as absent whether or
// not `expire()` has reclaimed it yet, and createOut reclaims expired entries it collides with; so what the
// graph sees does not depend on when `expire()` runs, only `size` and NAT_FULL do.
//
// Batches: lookupOutBatch / lookupInBatch take a graph batch's keys and first walk all chains a few steps
// with independent loads (JavaScript has no prefetch; the CPU overlaps independent misses), then do the
// exact lookups. Worth it when the table is bigger than the caches (~2x at 1 M flows); for small tables
// the single calls are as fast.
//
// Port allocation (like Linux's NF_NAT_RANGE_PROTO_RANDOM_FULLY): the nat ip is natIps[hash(src ip) % n]
// (a pod keeps one address); a seeded PRNG (splitmix32-style, state in the header, advanced under the lock
// so `--seed` replays are deterministic) picks a random start in the allowed-port list, then linear probing
// takes the first port whose out2in key (proto, remote ip, remote port, nat ip, port) is free. So one nat
// port is reused towards different remote endpoints, and a port is only exhausted per remote endpoint.
// Work is bounded: at most min(portCount, maxPortProbes) probes per nat ip (Linux probes 128); with a
// range smaller than that the search is exhaustive. ICMP echo uses the identifier as its port and
// allocates identifiers from the same list.

import { randomInt } from 'node:crypto';

export const NAT_MISS = -1;
/** createOut: the table holds `capacity` flows. */
export const NAT_FULL = -2;
/** createOut: no allocatable port is free towards that remote endpoint (within the probe budget). */
export const NAT_NO_PORT = -3;
/** createOut: the writer lock could not be taken within the bounded wait (a stuck or dead lock holder). */
export const NAT_BUSY = -4;

/** TCP header flag bits as they appear in byte 13 of the TCP header (RFC 9293 section 3.1). */
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_ACK = 0x10;

/** Flow flags (low byte of STATE). */
export const NAT_ST_SYN_IN = 1; // SYN seen from inside
export const NAT_ST_SYN_OUT = 2; // SYN(-ACK) seen from outside
export const NAT_ST_ESTABLISHED = 4;
export const NAT_ST_FIN_IN = 8;
export const NAT_ST_FIN_OUT = 16;
export const NAT_ST_RST = 32; // closed by RST
export const NAT_ST_REPLY = 64; // a packet came back from outside (UDP: makes it a stream)

/** Timeout classes (bits 8..11 of STATE); index into `NatTimeouts` order below. */
export const NAT_CLASS_TCP_SYN_SENT = 0;
export const NAT_CLASS_TCP_ESTABLISHED = 1;
export const NAT_CLASS_TCP_TRANSITORY = 2;
export const NAT_CLASS_TCP_TIME_WAIT = 3;
export const NAT_CLASS_TCP_CLOSE = 4;
export const NAT_CLASS_UDP = 5;
export const NAT_CLASS_UDP_STREAM = 6;
export const NAT_CLASS_ICMP = 7;
export const NAT_CLASS_OTHER = 8;

/** Idle timeouts in seconds per class. */
export interface NatTimeouts {
  /** TCP before the handshake completes (Linux syn_sent 120 s). */
  tcpSynSent: number;
  /** TCP established: RFC 5382 REQ-5 asks for at least 2 h 4 min (Linux keeps 5 days). */
  tcpEstablished: number;
  /** TCP half-closed (one FIN seen): RFC 5382 transitory timeout, 4 min. */
  tcpTransitory: number;
  /** TCP after FINs both ways (Linux time_wait 120 s). */
  tcpTimeWait: number;
  /** TCP after RST (Linux close 10 s). */
  tcpClose: number;
  /** UDP with no reply seen yet (Linux udp 30 s). */
  udp: number;
  /** UDP after a reply was seen (Linux udp_stream: 120 s before 6.x, 180 s now). */
  udpStream: number;
  /** ICMP echo (Linux icmp 30 s). */
  icmp: number;
  /** Any other protocol (Linux generic 600 s). */
  other: number;
}

export const NAT_DEFAULT_TIMEOUTS: Readonly<NatTimeouts> = Object.freeze({
  tcpSynSent: 120,
  tcpEstablished: 7440,
  tcpTransitory: 240,
  tcpTimeWait: 120,
  tcpClose: 10,
  udp: 30,
  udpStream: 180,
  icmp: 30,
  other: 600,
});

/** Timeout class index -> its field in NatTimeouts. */
export const NAT_CLASS_NAMES: readonly (keyof NatTimeouts)[] = [
  'tcpSynSent',
  'tcpEstablished',
  'tcpTransitory',
  'tcpTimeWait',
  'tcpClose',
  'udp',
  'udpStream',
  'icmp',
  'other',
];

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
}

/** Everything a worker needs to attach: one SharedArrayBuffer and numbers (postMessage-able). */
export interface NatTableShared {
  readonly sab: SharedArrayBuffer;
  readonly capacity: number;
  readonly bucketBits: number;
  readonly natIpCount: number;
  readonly portCount: number;
  readonly maxPortProbes: number;
  readonly hashKey: number;
}

export interface NatCounters {
  /** createOut refused: table full. */
  full: number;
  /** createOut refused: no free port. */
  noPort: number;
  /** flows created. */
  created: number;
  /** flows reclaimed after their timeout (by expire() or by createOut colliding with them). */
  expired: number;
  /** createOut refused: lock not obtained. */
  busy: number;
}

// Header words. Line 0: lock; line 1: writer-owned state and counters; line 3: read-only timeouts.
const H_LOCK = 0;
const H_WAITERS = 1;
const H_SIZE = 16;
const H_FREE = 17;
const H_HWM = 18;
const H_PRNG = 19;
const H_CURSOR = 20;
const H_FULL = 21;
const H_NOPORT = 22;
const H_CREATED = 23;
const H_EXPIRED = 24;
const H_BUSY = 25;
const H_TIMEOUTS = 48;
const HEADER_WORDS = 64;

// Entry words.
const E_VER = 0;
const E_STATE = 1;
const E_SRC = 2;
const E_DST = 3;
const E_NAT = 4;
const E_PORTS = 5;
const E_PNAT = 6;
const E_LAST = 7;
const ENTRY_SHIFT = 3; // 8 words

const MAX_CAPACITY = 1 << 26;
const SPIN_TRIES = 256;
const LOCK_WAIT_ROUNDS = 200; // x 1 ms
const OPTIMISTIC_TRIES = 4;
const MAX_WALK = 1024; // chain steps before a lock-free walk gives up and retries
const EXPIRE_CHUNK = 256;
const PREWALK = 4; // chain steps the batch lookups warm before the exact walk // slots scanned per lock hold

interface Layout {
  natIpsWord: number;
  portsByte: number;
  entriesWord: number;
  nextInWord: number;
  nextOutWord: number;
  bucketsInWord: number;
  bucketsOutWord: number;
  bytes: number;
}

function align16(words: number): number {
  return (words + 15) & ~15; // 64-byte boundaries
}

function layoutOf(s: Omit<NatTableShared, 'sab'>): Layout {
  const natIpsWord = HEADER_WORDS;
  const portsWord = align16(natIpsWord + s.natIpCount);
  const entriesWord = align16(portsWord + ((s.portCount + 1) >>> 1));
  const nextInWord = entriesWord + (s.capacity << ENTRY_SHIFT);
  const nextOutWord = align16(nextInWord + s.capacity);
  const bucketsInWord = align16(nextOutWord + s.capacity);
  const bucketsOutWord = bucketsInWord + (2 << s.bucketBits);
  const end = bucketsOutWord + (2 << s.bucketBits);
  return {
    natIpsWord,
    portsByte: portsWord * 4,
    entriesWord,
    nextInWord,
    nextOutWord,
    bucketsInWord,
    bucketsOutWord,
    bytes: end * 4,
  };
}

/** murmur3 fmix32. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** The port allocator's PRNG (splitmix32-style): state += golden ratio; output = fmix32(state). */
export function natPrngStep(state: number): number {
  return (state + 0x9e3779b9) | 0;
}
export function natPrngOutput(state: number): number {
  return fmix32(state) >>> 0;
}

/** Which of `n` nat ips a given inside address uses. */
export function natIpIndex(srcIp: number, n: number): number {
  return n === 1 ? 0 : (Math.imul(srcIp | 0, 0x9e3779b1) >>> 0) % n;
}

function hash4(key: number, proto: number, ipA: number, ipB: number, ports: number): number {
  let h = Math.imul(ipA ^ key, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15) ^ ipB, 0x85ebca77);
  h = Math.imul(h ^ (h >>> 13) ^ ports, 0xc2b2ae3d);
  h = Math.imul(h ^ (h >>> 16) ^ proto, 0x27d4eb2f);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return h ^ (h >>> 12);
}

/** Timeout class of a flow from its protocol and flags. */
export function natTimeoutClass(proto: number, st: number): number {
  if (proto === 6) {
    if (st & NAT_ST_RST) return NAT_CLASS_TCP_CLOSE;
    if (st & NAT_ST_FIN_IN && st & NAT_ST_FIN_OUT) return NAT_CLASS_TCP_TIME_WAIT;
    if (st & (NAT_ST_FIN_IN | NAT_ST_FIN_OUT)) return NAT_CLASS_TCP_TRANSITORY;
    if (st & NAT_ST_ESTABLISHED) return NAT_CLASS_TCP_ESTABLISHED;
    return NAT_CLASS_TCP_SYN_SENT;
  }
  if (proto === 17) return st & NAT_ST_REPLY ? NAT_CLASS_UDP_STREAM : NAT_CLASS_UDP;
  if (proto === 1) return NAT_CLASS_ICMP;
  return NAT_CLASS_OTHER;
}

/**
 * The TCP tracking rules (a simplified RFC 9293 / Linux nf_conntrack_proto_tcp):
 *  - RST either way closes (class tcpClose);
 *  - SYN from inside / SYN(-ACK) from outside are recorded; an ACK without SYN after both closes the
 *    handshake (established); a flow picked up mid-stream (no SYN seen) becomes established once an ACK
 *    is seen and a packet came back from outside (Linux's nf_conntrack_tcp_loose);
 *  - FIN one way: transitory; FIN both ways: time-wait;
 *  - a SYN from inside on a closed or closing flow reopens it (port reuse by the pod), like Linux.
 * Returns the new flags.
 */
export function natTcpNextFlags(st: number, tcpFlags: number, fromInside: boolean): number {
  if (tcpFlags & TCP_RST) return st | NAT_ST_RST;
  if (
    tcpFlags & TCP_SYN &&
    !(tcpFlags & TCP_ACK) &&
    fromInside &&
    st & (NAT_ST_RST | NAT_ST_FIN_IN | NAT_ST_FIN_OUT)
  ) {
    st = 0;
  }
  if (tcpFlags & TCP_SYN) st |= fromInside ? NAT_ST_SYN_IN : NAT_ST_SYN_OUT;
  if (tcpFlags & TCP_FIN) st |= fromInside ? NAT_ST_FIN_IN : NAT_ST_FIN_OUT;
  if (!fromInside) st |= NAT_ST_REPLY;
  if (!(st & NAT_ST_ESTABLISHED) && tcpFlags & TCP_ACK && !(tcpFlags & TCP_SYN)) {
    const syns = st & (NAT_ST_SYN_IN | NAT_ST_SYN_OUT);
    if (syns === (NAT_ST_SYN_IN | NAT_ST_SYN_OUT) || (syns === 0 && st & NAT_ST_REPLY)) {
      st |= NAT_ST_ESTABLISHED;
    }
  }
  return st;
}

function checkInt(name: string, v: number, lo: number, hi: number): number {
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw new RangeError(`nat table: ${name} must be an integer in ${lo}..${hi}, got ${v}`);
  }
  return v;
}

export class NatTable {
  readonly shared: NatTableShared;
  readonly capacity: number;
  private readonly hdr: Int32Array;
  private readonly tmo: Int32Array;
  private readonly ips: Int32Array;
  private readonly ports: Uint16Array;
  private readonly ent: Int32Array;
  private readonly nextIn: Int32Array;
  private readonly nextOut: Int32Array;
  private readonly bkIn: Int32Array;
  private readonly bkOut: Int32Array;
  private readonly shift: number;
  private readonly key: number;
  private readonly nIps: number;
  private readonly nPorts: number;
  private readonly probes: number;
  /** Keeps the batch lookups' touch loads alive. */
  private sink = 0;

  private constructor(shared: NatTableShared) {
    this.shared = shared;
    const L = layoutOf(shared);
    const sab = shared.sab;
    if (sab.byteLength < L.bytes) throw new RangeError('nat table: shared buffer too small for its layout');
    this.capacity = shared.capacity;
    this.hdr = new Int32Array(sab, 0, HEADER_WORDS);
    this.tmo = new Int32Array(sab, H_TIMEOUTS * 4, 16);
    this.ips = new Int32Array(sab, L.natIpsWord * 4, shared.natIpCount);
    this.ports = new Uint16Array(sab, L.portsByte, shared.portCount);
    this.ent = new Int32Array(sab, L.entriesWord * 4, shared.capacity << ENTRY_SHIFT);
    this.nextIn = new Int32Array(sab, L.nextInWord * 4, shared.capacity);
    this.nextOut = new Int32Array(sab, L.nextOutWord * 4, shared.capacity);
    this.bkIn = new Int32Array(sab, L.bucketsInWord * 4, 2 << shared.bucketBits);
    this.bkOut = new Int32Array(sab, L.bucketsOutWord * 4, 2 << shared.bucketBits);
    this.shift = 32 - shared.bucketBits;
    this.key = shared.hashKey | 0;
    this.nIps = shared.natIpCount;
    this.nPorts = shared.portCount;
    this.probes = Math.min(shared.portCount, shared.maxPortProbes);
  }

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
    const reserved = new Set(opts.reservedPorts ?? [4789]);
    const allowed: number[] = [];
    for (let p = portLo; p <= portHi; p++) if (!reserved.has(p)) allowed.push(p);
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
      natIpCount: natIps.length,
      portCount: allowed.length,
      maxPortProbes,
      hashKey,
    };
    const L = layoutOf(dims);
    const sab = new SharedArrayBuffer(L.bytes);
    const hdr = new Int32Array(sab, 0, HEADER_WORDS);
    hdr[H_FREE] = -1;
    hdr[H_PRNG] = (opts.seed ?? 0) | 0;
    NAT_CLASS_NAMES.forEach((k, c) => {
      const ticks = Math.round(t[k] * tps);
      hdr[H_TIMEOUTS + c] = checkInt(`timeouts.${k} in ticks`, ticks, 0, 0x7fffffff);
    });
    new Int32Array(sab, L.natIpsWord * 4, natIps.length).set(natIps.map((ip) => ip | 0));
    new Uint16Array(sab, L.portsByte, allowed.length).set(allowed);
    // Bucket heads -1 (empty), generations 0.
    const bk = new Int32Array(sab, L.bucketsInWord * 4, 4 << bucketBits);
    for (let b = 0; b < bk.length; b += 2) bk[b] = -1;
    return new NatTable({ sab, ...dims });
  }

  /** Attaches to a table created elsewhere (workers, from the `shared` object they were sent). */
  static attach(shared: NatTableShared): NatTable {
    return new NatTable(shared);
  }

  get size(): number {
    return Atomics.load(this.hdr, H_SIZE);
  }

  memoryBytes(): number {
    return this.shared.sab.byteLength;
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
    };
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
  /** Timeout class (NAT_CLASS_*). */
  timeoutClass(i: number): number {
    return (Atomics.load(this.ent, (i << ENTRY_SHIFT) + E_STATE) >>> 8) & 15;
  }
  lastSeen(i: number): number {
    return this.ent[(i << ENTRY_SHIFT) + E_LAST] >>> 0;
  }
  /** True when slot i holds a flow (expired or not); for scans, tests and debugging. */
  isLive(i: number): boolean {
    const v = Atomics.load(this.ent, (i << ENTRY_SHIFT) + E_VER);
    return v !== 0 && (v & 1) === 0;
  }
  /** True when live flow i has passed its timeout at `now`. */
  isExpired(i: number, now: number): boolean {
    const o = i << ENTRY_SHIFT;
    const e = this.ent;
    return ((now - e[o + E_LAST]) | 0) > this.tmo[(e[o + E_STATE] >>> 8) & 15];
  }

  // ---- lookups (lock-free) ----

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
    const bk = this.bkIn;
    const b = (hash4(this.key, proto, src, dst, ports) >>> this.shift) << 1;
    const ent = this.ent;
    const next = this.nextIn;
    for (let attempt = 0; attempt < OPTIMISTIC_TRIES; attempt++) {
      const gen = bk[b + 1];
      let i = bk[b];
      let steps = 0;
      while (i >= 0) {
        const o = i << ENTRY_SHIFT;
        const v = ent[o];
        if (
          ent[o + E_SRC] === src &&
          ent[o + E_PORTS] === ports &&
          ent[o + E_DST] === dst &&
          ent[o + E_PNAT] >>> 16 === proto &&
          (v & 1) === 0
        ) {
          if (Atomics.load(ent, o) === v) return this.hit(i, o, now);
          i = -2; // changed under us: retry
          break;
        }
        i = next[i];
        if (++steps > MAX_WALK) {
          i = -2;
          break;
        }
      }
      if (i === -1 && Atomics.load(bk, b + 1) === gen) return NAT_MISS;
    }
    return this.lockedLookup(true, proto, src, ports, dst, now);
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
    const bk = this.bkOut;
    const b = (hash4(this.key, proto, nat, rem, (natPort << 16) | remotePort) >>> this.shift) << 1;
    const ent = this.ent;
    const next = this.nextOut;
    for (let attempt = 0; attempt < OPTIMISTIC_TRIES; attempt++) {
      const gen = bk[b + 1];
      let i = bk[b];
      let steps = 0;
      while (i >= 0) {
        const o = i << ENTRY_SHIFT;
        const v = ent[o];
        if (
          ent[o + E_PNAT] === pnat &&
          ent[o + E_DST] === rem &&
          ent[o + E_NAT] === nat &&
          (ent[o + E_PORTS] & 0xffff) === remotePort &&
          (v & 1) === 0
        ) {
          if (Atomics.load(ent, o) === v) return this.hitIn(i, o, now);
          i = -2;
          break;
        }
        i = next[i];
        if (++steps > MAX_WALK) {
          i = -2;
          break;
        }
      }
      if (i === -1 && Atomics.load(bk, b + 1) === gen) return NAT_MISS;
    }
    return this.lockedLookup(false, proto, nat, (natPort << 16) | remotePort, rem, now);
  }

  /**
   * Batched lookupOut for a vector of packets (the graph's batch): `keys` holds n records of 5 words
   * (proto, src ip, src port, dst ip, dst port); out[j] gets what lookupOut would return. Faster than n
   * single calls on tables bigger than the CPU caches: it first loads every bucket head and touches every
   * first entry (independent loads the CPU overlaps, JavaScript's stand-in for VPP's prefetch), then walks.
   */
  lookupOutBatch(keys: Int32Array, n: number, now: number, out: Int32Array): void {
    const bk = this.bkIn;
    const ent = this.ent;
    const shift = this.shift;
    const key = this.key;
    for (let j = 0, q = 0; j < n; j++, q += 5) {
      const ports = (keys[q + 2] << 16) | keys[q + 4];
      out[j] = bk[(hash4(key, keys[q], keys[q + 1] | 0, keys[q + 3] | 0, ports) >>> shift) << 1];
    }
    // Warm the chains stage by stage: each stage's loads are independent across packets.
    const next = this.nextIn;
    let sink = 0;
    for (let stage = 0, left = n; stage < PREWALK && left > 0; stage++) {
      left = 0;
      for (let j = 0, q = 0; j < n; j++, q += 5) {
        const i = out[j];
        if (i < 0) continue;
        const o = i << ENTRY_SHIFT;
        if (ent[o + E_SRC] === keys[q + 1] && ent[o + E_DST] === keys[q + 3]) {
          out[j] = -1;
        } else {
          const m = next[i];
          out[j] = m;
          if (m >= 0) left++;
        }
        sink ^= o;
      }
    }
    this.sink = sink;
    for (let j = 0, q = 0; j < n; j++, q += 5) {
      out[j] = this.lookupOut(keys[q], keys[q + 1], keys[q + 2], keys[q + 3], keys[q + 4], now);
    }
  }

  /** Batched lookupIn: keys hold n records (proto, remote ip, remote port, nat ip, nat port). */
  lookupInBatch(keys: Int32Array, n: number, now: number, out: Int32Array): void {
    const bk = this.bkOut;
    const ent = this.ent;
    const shift = this.shift;
    const key = this.key;
    for (let j = 0, q = 0; j < n; j++, q += 5) {
      const ports = (keys[q + 4] << 16) | keys[q + 2];
      out[j] = bk[(hash4(key, keys[q], keys[q + 3] | 0, keys[q + 1] | 0, ports) >>> shift) << 1];
    }
    const next = this.nextOut;
    let sink = 0;
    for (let stage = 0, left = n; stage < PREWALK && left > 0; stage++) {
      left = 0;
      for (let j = 0, q = 0; j < n; j++, q += 5) {
        const i = out[j];
        if (i < 0) continue;
        const o = i << ENTRY_SHIFT;
        if (ent[o + E_DST] === keys[q + 1] && (ent[o + E_PNAT] & 0xffff) === keys[q + 4]) {
          out[j] = -1;
        } else {
          const m = next[i];
          out[j] = m;
          if (m >= 0) left++;
        }
        sink ^= o;
      }
    }
    this.sink = sink;
    for (let j = 0, q = 0; j < n; j++, q += 5) {
      out[j] = this.lookupIn(keys[q], keys[q + 1], keys[q + 2], keys[q + 3], keys[q + 4], now);
    }
  }

  private hit(i: number, o: number, now: number): number {
    const ent = this.ent;
    const age = (now - ent[o + E_LAST]) | 0;
    if (age > this.tmo[(ent[o + E_STATE] >>> 8) & 15]) return NAT_MISS;
    if (age > 0) ent[o + E_LAST] = now;
    return i;
  }

  private hitIn(i: number, o: number, now: number): number {
    const r = this.hit(i, o, now);
    if (r >= 0 && (this.ent[o + E_STATE] & NAT_ST_REPLY) === 0) this.setFlags(o, NAT_ST_REPLY);
    return r;
  }

  /** Search under the writer lock (after optimistic walks kept racing with frees). */
  private lockedLookup(
    inside: boolean,
    proto: number,
    ipA: number,
    ports: number,
    ipB: number,
    now: number,
  ): number {
    if (!this.lock()) return NAT_MISS;
    const i = inside
      ? this.findIn(proto, ipA, ports, ipB)
      : this.findOut(proto, ipB, ports & 0xffff, ipA, ports >>> 16);
    this.unlock();
    if (i < 0) return NAT_MISS;
    return inside ? this.hit(i, i << ENTRY_SHIFT, now) : this.hitIn(i, i << ENTRY_SHIFT, now);
  }

  /** ORs `add` into the flags of entry at word offset o and recomputes its timeout class. */
  private setFlags(o: number, add: number): void {
    const ent = this.ent;
    const proto = ent[o + E_PNAT] >>> 16;
    for (;;) {
      const s = Atomics.load(ent, o + E_STATE);
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
      const st = natTcpNextFlags(s & 0xff, tcpFlags, fromInside);
      const n = (natTimeoutClass(6, st) << 8) | st;
      if (n === s || Atomics.compareExchange(ent, o + E_STATE, s, n) === s) break;
    }
    if (((now - ent[o + E_LAST]) | 0) > 0) ent[o + E_LAST] = now;
  }

  // ---- writers (under the lock) ----

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
    if (!this.lock()) {
      Atomics.add(h, H_BUSY, 1);
      return NAT_BUSY;
    }
    const src = srcIp | 0;
    const dst = dstIp | 0;
    const ports = (srcPort << 16) | dstPort;
    const ent = this.ent;
    const old = this.findIn(proto, src, ports, dst);
    if (old >= 0) {
      const r = this.hit(old, old << ENTRY_SHIFT, now);
      if (r >= 0) {
        this.unlock();
        return r;
      }
      this.free(old);
      Atomics.add(h, H_EXPIRED, 1);
    }
    if (h[H_SIZE] >= this.capacity) {
      Atomics.add(h, H_FULL, 1);
      this.unlock();
      return NAT_FULL;
    }
    const nIps = this.nIps;
    const first = natIpIndex(src, nIps);
    for (let t = 0; t < nIps; t++) {
      let ipIdx = first + t;
      if (ipIdx >= nIps) ipIdx -= nIps;
      const nat = this.ips[ipIdx];
      const seed = natPrngStep(h[H_PRNG]);
      h[H_PRNG] = seed;
      let idx = natPrngOutput(seed) % this.nPorts;
      for (let k = 0; k < this.probes; k++, idx++) {
        if (idx === this.nPorts) idx = 0;
        const port = this.ports[idx];
        const j = this.findOut(proto, dst, dstPort, nat, port);
        if (j >= 0) {
          if (!this.isExpired(j, now)) continue;
          this.free(j);
          Atomics.add(h, H_EXPIRED, 1);
        }
        // Allocate: free list first, else the next never-used slot.
        let i = h[H_FREE];
        if (i >= 0) h[H_FREE] = this.nextIn[i];
        else i = h[H_HWM]++;
        const o = i << ENTRY_SHIFT;
        ent[o + E_SRC] = src;
        ent[o + E_DST] = dst;
        ent[o + E_NAT] = nat;
        ent[o + E_PORTS] = ports;
        ent[o + E_PNAT] = (proto << 16) | port;
        ent[o + E_LAST] = now | 0;
        ent[o + E_STATE] = natTimeoutClass(proto, 0) << 8;
        Atomics.store(ent, o + E_VER, (ent[o + E_VER] | 1) + 1); // publish: even = live
        const bi = (hash4(this.key, proto, src, dst, ports) >>> this.shift) << 1;
        this.nextIn[i] = this.bkIn[bi];
        Atomics.store(this.bkIn, bi, i);
        const bo = (hash4(this.key, proto, nat, dst, (port << 16) | dstPort) >>> this.shift) << 1;
        this.nextOut[i] = this.bkOut[bo];
        Atomics.store(this.bkOut, bo, i);
        h[H_SIZE]++;
        h[H_CREATED]++;
        this.unlock();
        return i;
      }
    }
    Atomics.add(h, H_NOPORT, 1);
    this.unlock();
    return NAT_NO_PORT;
  }

  /**
   * Reclaims expired flows, scanning at most `budget` slots (default: the whole table) from where the
   * previous call stopped. Takes the lock per chunk of 256 slots. Returns how many flows it freed.
   */
  expire(now: number, budget: number = this.capacity): number {
    const h = this.hdr;
    let freed = 0;
    let left = Math.min(budget, Atomics.load(h, H_HWM));
    while (left > 0) {
      if (!this.lock()) break;
      const hwm = h[H_HWM];
      let c = h[H_CURSOR];
      const n = Math.min(left, EXPIRE_CHUNK);
      for (let k = 0; k < n; k++, c++) {
        if (c >= hwm) c = 0;
        if (this.isLive(c) && this.isExpired(c, now)) {
          this.free(c);
          freed++;
        }
      }
      h[H_CURSOR] = c;
      this.unlock();
      left -= n;
    }
    if (freed > 0) Atomics.add(h, H_EXPIRED, freed);
    return freed;
  }

  /** Deletes flow i now (e.g. the graph saw an ICMP error for it). Returns false if it was not live. */
  remove(i: number): boolean {
    if (!(i >= 0 && i < this.capacity) || !this.lock()) return false;
    const live = this.isLive(i);
    if (live) this.free(i);
    this.unlock();
    return live;
  }

  /** in2out chain walk, caller holds the lock. */
  private findIn(proto: number, src: number, ports: number, dst: number): number {
    const ent = this.ent;
    let i = this.bkIn[(hash4(this.key, proto, src, dst, ports) >>> this.shift) << 1];
    while (i >= 0) {
      const o = i << ENTRY_SHIFT;
      if (
        ent[o + E_SRC] === src &&
        ent[o + E_PORTS] === ports &&
        ent[o + E_DST] === dst &&
        ent[o + E_PNAT] >>> 16 === proto
      ) {
        return i;
      }
      i = this.nextIn[i];
    }
    return -1;
  }

  /** out2in chain walk, caller holds the lock. */
  private findOut(proto: number, rem: number, remPort: number, nat: number, natPort: number): number {
    const ent = this.ent;
    const pnat = (proto << 16) | natPort;
    let i = this.bkOut[(hash4(this.key, proto, nat, rem, (natPort << 16) | remPort) >>> this.shift) << 1];
    while (i >= 0) {
      const o = i << ENTRY_SHIFT;
      if (
        ent[o + E_PNAT] === pnat &&
        ent[o + E_DST] === rem &&
        ent[o + E_NAT] === nat &&
        (ent[o + E_PORTS] & 0xffff) === remPort
      ) {
        return i;
      }
      i = this.nextOut[i];
    }
    return -1;
  }

  /** Unlinks live entry i from both chains and puts it on the free list; caller holds the lock. */
  private free(i: number): void {
    const ent = this.ent;
    const o = i << ENTRY_SHIFT;
    const proto = ent[o + E_PNAT] >>> 16;
    const natPort = ent[o + E_PNAT] & 0xffff;
    const ports = ent[o + E_PORTS];
    const bi = (hash4(this.key, proto, ent[o + E_SRC], ent[o + E_DST], ports) >>> this.shift) << 1;
    const bo =
      (hash4(this.key, proto, ent[o + E_NAT], ent[o + E_DST], (natPort << 16) | (ports & 0xffff)) >>>
        this.shift) <<
      1;
    unlink(this.bkIn, this.nextIn, bi, i);
    unlink(this.bkOut, this.nextOut, bo, i);
    // Walkers of these chains must notice before i's links change (see the protocol above).
    Atomics.add(this.bkIn, bi + 1, 1);
    Atomics.add(this.bkOut, bo + 1, 1);
    Atomics.add(ent, o + E_VER, 1); // odd: free
    const h = this.hdr;
    Atomics.store(this.nextIn, i, h[H_FREE]);
    h[H_FREE] = i;
    Atomics.store(h, H_SIZE, h[H_SIZE] - 1);
  }

  private lock(): boolean {
    if (Atomics.compareExchange(this.hdr, H_LOCK, 0, 1) === 0) return true;
    return this.lockSlow();
  }

  private lockSlow(): boolean {
    const h = this.hdr;
    for (let k = 0; k < SPIN_TRIES; k++) {
      if (Atomics.load(h, H_LOCK) === 0 && Atomics.compareExchange(h, H_LOCK, 0, 1) === 0) return true;
    }
    for (let r = 0; r < LOCK_WAIT_ROUNDS; r++) {
      Atomics.add(h, H_WAITERS, 1);
      Atomics.wait(h, H_LOCK, 1, 1);
      Atomics.sub(h, H_WAITERS, 1);
      if (Atomics.compareExchange(h, H_LOCK, 0, 1) === 0) return true;
    }
    return false;
  }

  private unlock(): void {
    const h = this.hdr;
    Atomics.store(h, H_LOCK, 0);
    if (Atomics.load(h, H_WAITERS) !== 0) Atomics.notify(h, H_LOCK, 1);
  }
}

/** Removes entry i from the chain of bucket b (caller holds the lock). */
function unlink(bk: Int32Array, next: Int32Array, b: number, i: number): void {
  let j = bk[b];
  if (j === i) {
    Atomics.store(bk, b, next[i]);
    return;
  }
  while (j >= 0) {
    const n = next[j];
    if (n === i) {
      Atomics.store(next, j, next[i]);
      return;
    }
    j = n;
  }
}
