// The adjacency table: what to do with a packet once the FIB has chosen a route.
//
// Each FIB value is an adjacency index. Adjacency 0 is reserved for "no route". An adjacency says how
// to reach the next hop: deliver to a local workload port, send directly to a neighbour on the uplink,
// encapsulate in IPIP or VXLAN toward a node, send to the gateway, or drop silently (blackhole).
// Link-layer addresses of uplink next hops are not stored here but in the neighbour table (resolved
// by ARP); the adjacency keeps the neighbour's index so rewrite costs one indirection, no hash.
//
// Memory: one SharedArrayBuffer of parallel arrays; the control thread (main) is the only writer, the
// workers read (ip4-lookup, ip4-rewrite, ip4-arp) with plain loads. Lifecycle (qsbr.ts):
//   - `acquire(spec)` returns the live entry with the same contents (refcount + 1) or writes a FRESH
//     entry from the free list and returns it; the caller publishes it by pointing the FIB at it.
//     A published entry is never modified: a route that changes gets another entry.
//   - `release(i)` drops a reference, O(1); at zero the entry is retired (the caller has already
//     repointed or removed the FIB entries using it) and goes back to the free list only after every
//     reader passed a quiescent point, so a worker between its FIB lookup and its rewrite always reads
//     the entry it looked up.
//   - `gen[i]` is bumped whenever an entry is reused, for readers that keep an index across quiescent
//     points (held packets): a changed generation means the adjacency they held is gone.
// Full: `acquire` throws TableFullError (code `adjacency-table-full`) and counts it in `refusals`.
import { ReaderRegistry, RetireQueue } from './qsbr.js';
import { TableFullError } from './errors.js';

export const ADJ_MISS = 0;
export const ADJ_LOCAL = 1;
export const ADJ_DIRECT = 2;
export const ADJ_IPIP = 3;
export const ADJ_VXLAN = 4;
export const ADJ_GATEWAY = 5;
export const ADJ_BLACKHOLE = 6;

export const ADJ_KIND_NAMES = ['miss', 'local', 'direct', 'ipip', 'vxlan', 'gateway', 'blackhole'] as const;
export type AdjKindName = (typeof ADJ_KIND_NAMES)[number];

export interface AdjacencyShared {
  capacity: number;
  sab: SharedArrayBuffer;
}

export interface AdjSpec {
  kind: AdjKindName;
  /** transmit port index */
  port: number;
  /** next hop: gateway or neighbour IP (direct/gateway), tunnel endpoint (ipip/vxlan) */
  nextHop: number;
  /** neighbour table index that resolves the link-layer next hop (-1 when none) */
  neighbor: number;
  /** local: the workload's MAC; vxlan: the remote VTEP MAC (inner destination) */
  mac?: Uint8Array;
  /** largest IP packet this path carries (uplink MTU, or the tunnel MTU) */
  mtu: number;
  /** every destination routed here lies inside an IP pool (natOutgoing never applies) */
  inPool?: boolean;
}

/** adjacency flag: the route's prefix lies inside an IP pool */
export const ADJ_F_IN_POOL = 1;

export const ADJ_DEFAULT_CAPACITY = 65536;

export class AdjacencyTable {
  readonly capacity: number;
  readonly shared: AdjacencyShared;
  readonly kind: Uint8Array;
  /** ADJ_F_* bits */
  readonly flags: Uint8Array;
  readonly port: Uint16Array;
  readonly mtu: Uint16Array;
  readonly nextHop: Uint32Array;
  readonly neighbor: Int32Array;
  /** references (routes) per entry; 0 = free or retired. Written by the control thread only. */
  readonly refs: Uint32Array;
  /** reuse generation per entry (see the header) */
  readonly gen: Uint32Array;
  /** 6 bytes per adjacency */
  readonly mac: Uint8Array;
  /** `acquire` refused: table full (control side) */
  refusals = 0;
  // ---- control side only ----
  private readonly byKey = new Map<string, number>();
  private readonly keyOf: (string | undefined)[] = [];
  private readonly free: number[] = [];
  private readonly retired: RetireQueue | null;
  /** [0]: entries [1, top) have been handed out at least once (shared, for minMtu in workers) */
  private readonly hdr: Int32Array;

  private constructor(shared: AdjacencyShared, readers: ReaderRegistry | null) {
    const c = shared.capacity;
    this.capacity = c;
    this.shared = shared;
    let o = 0;
    const take = (bytes: number): number => {
      const at = o;
      o += Math.ceil(bytes / 8) * 8;
      return at;
    };
    this.hdr = new Int32Array(shared.sab, take(8), 2);
    this.nextHop = new Uint32Array(shared.sab, take(c * 4), c);
    this.neighbor = new Int32Array(shared.sab, take(c * 4), c);
    this.refs = new Uint32Array(shared.sab, take(c * 4), c);
    this.gen = new Uint32Array(shared.sab, take(c * 4), c);
    this.port = new Uint16Array(shared.sab, take(c * 2), c);
    this.mtu = new Uint16Array(shared.sab, take(c * 2), c);
    this.kind = new Uint8Array(shared.sab, take(c), c);
    this.flags = new Uint8Array(shared.sab, take(c), c);
    this.mac = new Uint8Array(shared.sab, take(c * 6), c * 6);
    this.retired = readers === null ? null : new RetireQueue(readers);
  }

  static bytesFor(capacity: number): number {
    return capacity * (4 + 4 + 4 + 4 + 2 + 2 + 1 + 1 + 6) + 80;
  }

  /** Control thread. `readers`: the table set's registry (default: a private one, no readers). */
  static create(
    capacity = ADJ_DEFAULT_CAPACITY,
    readers: ReaderRegistry = ReaderRegistry.create(),
  ): AdjacencyTable {
    if (!Number.isInteger(capacity) || capacity < 2 || capacity > 1 << 24) {
      throw new RangeError(`adjacency table: capacity ${capacity} is not an integer in 2..16777216`);
    }
    const t = new AdjacencyTable(
      { capacity, sab: new SharedArrayBuffer(AdjacencyTable.bytesFor(capacity)) },
      readers,
    );
    t.hdr[0] = 1;
    return t;
  }

  /** Worker: a read-only view (acquire/release must not be called on it). */
  static attach(shared: AdjacencyShared): AdjacencyTable {
    return new AdjacencyTable(shared, null);
  }

  /** Live entries (control side). */
  get size(): number {
    return this.byKey.size;
  }

  /** Entries released and waiting for the readers' quiescent points (control side). */
  get pending(): number {
    return this.retired?.size ?? 0;
  }

  /** Finds or creates the adjacency for `spec` and takes a reference on it. */
  acquire(spec: AdjSpec): number {
    const key = AdjacencyTable.key(spec);
    let i = this.byKey.get(key);
    if (i === undefined) {
      i = this.alloc();
      if (i < 0) {
        this.refusals++;
        throw new TableFullError(
          'adjacency-table-full',
          `adjacency table full: all ${this.capacity - 1} entries are in use (${this.pending} released, ` +
            `awaiting reader quiescence); cannot add a ${spec.kind} adjacency`,
        );
      }
      this.port[i] = spec.port;
      this.mtu[i] = spec.mtu;
      this.nextHop[i] = spec.nextHop >>> 0;
      this.neighbor[i] = spec.neighbor;
      this.flags[i] = spec.inPool === true ? ADJ_F_IN_POOL : 0;
      this.mac.fill(0, i * 6, i * 6 + 6);
      if (spec.mac) this.mac.set(spec.mac, i * 6);
      // kind last: a reader that sees the kind sees the rest (the FIB is published after this anyway)
      Atomics.store(this.kind, i, ADJ_KIND_NAMES.indexOf(spec.kind));
      this.byKey.set(key, i);
      this.keyOf[i] = key;
    }
    this.refs[i]++;
    return i;
  }

  /**
   * Drops a reference, O(1). At zero the entry is retired: callers release only after the FIB no longer
   * points at it, and it is reused only after every reader passed a quiescent point.
   */
  release(i: number): void {
    if (i <= 0 || i >= this.capacity || this.refs[i] === 0) return;
    if (--this.refs[i] > 0) return;
    const key = this.keyOf[i];
    if (key !== undefined) this.byKey.delete(key);
    this.keyOf[i] = undefined;
    if (this.retired === null) throw new Error('AdjacencyTable.release: read-only view attached in a worker');
    this.retired.retire(i);
  }

  /** Moves retired entries no reader can still hold to the free list; returns how many. */
  reclaim(): number {
    return this.retired?.reclaim((i) => this.recycle(i)) ?? 0;
  }

  /** The smallest path MTU of any live adjacency (0 when there is none). */
  minMtu(): number {
    let m = 0;
    const top = Atomics.load(this.hdr, 0);
    for (let i = 1; i < top; i++) {
      if (this.kind[i] === ADJ_MISS || this.kind[i] === ADJ_BLACKHOLE || this.refs[i] === 0) continue;
      if (m === 0 || this.mtu[i] < m) m = this.mtu[i];
    }
    return m;
  }

  kindName(i: number): AdjKindName {
    return ADJ_KIND_NAMES[this.kind[i]] ?? 'miss';
  }

  private alloc(): number {
    if (this.free.length === 0) this.reclaim();
    const f = this.free.pop();
    if (f !== undefined) return f;
    const top = this.hdr[0];
    if (top >= this.capacity) return -1;
    Atomics.store(this.hdr, 0, top + 1);
    return top;
  }

  private recycle(i: number): void {
    // nobody can hold i any more: clear it so a stale index reads as a miss, and bump its generation
    Atomics.store(this.kind, i, ADJ_MISS);
    Atomics.add(this.gen, i, 1);
    this.free.push(i);
  }

  private static key(s: AdjSpec): string {
    const m = s.mac ? Array.from(s.mac).join('.') : '';
    return `${s.kind}|${s.port}|${s.nextHop >>> 0}|${s.neighbor}|${m}|${s.mtu}|${s.inPool === true ? 1 : 0}`;
  }
}
