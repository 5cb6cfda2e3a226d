// The adjacency table: what to do with a packet once the FIB has chosen a route.
//
// Each FIB value is an adjacency index. Adjacency 0 is reserved for "no route". An adjacency says how
// to reach the next hop: deliver to a local workload port, send directly to a neighbour on the uplink,
// encapsulate in IPIP or VXLAN toward a node, send to the gateway, or drop silently (blackhole).
// Link-layer addresses of uplink next hops are not stored here but in the neighbour table (resolved
// by ARP); the adjacency keeps the neighbour's index so rewrite costs one indirection, no hash.
//
// Memory is SharedArrayBuffers: the control thread (main) writes, workers read. An adjacency is fully
// written before any FIB entry points at it, and is only reused after no route refers to it.

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
  readonly refs: Uint32Array;
  /** 6 bytes per adjacency */
  readonly mac: Uint8Array;
  private readonly byKey = new Map<string, number>();
  private readonly free: number[] = [];
  private top = 1;

  private constructor(shared: AdjacencyShared) {
    const c = shared.capacity;
    this.capacity = c;
    this.shared = shared;
    let o = 0;
    const take = (bytes: number): number => {
      const at = o;
      o += Math.ceil(bytes / 8) * 8;
      return at;
    };
    this.nextHop = new Uint32Array(shared.sab, take(c * 4), c);
    this.neighbor = new Int32Array(shared.sab, take(c * 4), c);
    this.refs = new Uint32Array(shared.sab, take(c * 4), c);
    this.port = new Uint16Array(shared.sab, take(c * 2), c);
    this.mtu = new Uint16Array(shared.sab, take(c * 2), c);
    this.kind = new Uint8Array(shared.sab, take(c), c);
    this.flags = new Uint8Array(shared.sab, take(c), c);
    this.mac = new Uint8Array(shared.sab, take(c * 6), c * 6);
  }

  static bytesFor(capacity: number): number {
    return capacity * (4 + 4 + 4 + 2 + 2 + 1 + 1 + 6) + 64;
  }

  static create(capacity = 65536): AdjacencyTable {
    return new AdjacencyTable({ capacity, sab: new SharedArrayBuffer(AdjacencyTable.bytesFor(capacity)) });
  }

  static attach(shared: AdjacencyShared): AdjacencyTable {
    return new AdjacencyTable(shared);
  }

  /** Finds or creates the adjacency for `spec` and takes a reference on it. */
  acquire(spec: AdjSpec): number {
    const key = AdjacencyTable.key(spec);
    let i = this.byKey.get(key);
    if (i === undefined) {
      i = this.free.pop() ?? this.top++;
      if (i >= this.capacity) throw new RangeError(`adjacency table full (${this.capacity} entries)`);
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
    }
    this.refs[i]++;
    return i;
  }

  /** Drops a reference; the entry is recycled when none remain. */
  release(i: number): void {
    if (i <= 0 || this.refs[i] === 0) return;
    if (--this.refs[i] > 0) return;
    for (const [k, v] of this.byKey) {
      if (v === i) {
        this.byKey.delete(k);
        break;
      }
    }
    this.free.push(i);
  }

  /** The smallest path MTU of any live adjacency (0 when there is none). */
  minMtu(): number {
    let m = 0;
    for (let i = 1; i < this.top; i++) {
      if (this.kind[i] === ADJ_MISS || this.kind[i] === ADJ_BLACKHOLE || this.refs[i] === 0) continue;
      if (m === 0 || this.mtu[i] < m) m = this.mtu[i];
    }
    return m;
  }

  kindName(i: number): AdjKindName {
    return ADJ_KIND_NAMES[this.kind[i]] ?? 'miss';
  }

  private static key(s: AdjSpec): string {
    const m = s.mac ? Array.from(s.mac).join('.') : '';
    return `${s.kind}|${s.port}|${s.nextHop >>> 0}|${s.neighbor}|${m}|${s.mtu}|${s.inPool === true ? 1 : 0}`;
  }
}
