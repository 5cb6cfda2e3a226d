// The shared tables as one set with one reader registry: FIB, adjacencies, neighbours and the optional
// NAT flow table (created with the set, or later by `createNat` when the first natOutgoing pool appears;
// workers started before then `attachNat` it when the control thread sends it). The control thread creates the set (`TableSet.create`) and programs it; each worker
// attaches the set it was sent (`TableSet.attach(shared, slot)`), which registers it as a reader, calls
// `quiescent()` once per loop round (no table reference held across it) and `detach()` when it ends.
// The control thread `release(slot)`s the slot of a worker that died, so reclamation never waits for a
// dead reader; a restarted worker attaches with the same slot. Replay (one thread) attaches nothing:
// with no reader registered, released entries are reusable at once.
// Who owns the memory: the SharedArrayBuffers behind `shared` (created here, postMessage'd once).
import { Lpm4, type Lpm4Shared } from './lpm.js';
import { ADJ_DEFAULT_CAPACITY, AdjacencyTable, type AdjacencyShared } from './adjacency.js';
import { NBR_DEFAULT_CAPACITY, NeighborTable, type NeighborShared } from './neighbor.js';
import { NatTable, type NatTableOptions, type NatTableShared } from './nat/table.js';
import { ReaderRegistry, type ReaderRegistryShared } from './qsbr.js';

/** Everything a worker needs to attach the tables (structured-cloneable). */
export interface SharedTables {
  readers: ReaderRegistryShared;
  fib: Lpm4Shared;
  adj: AdjacencyShared;
  nbr: NeighborShared;
  nat: NatTableShared | null;
}

export interface TableSetOptions {
  /** FIB tbl8 groups (see Lpm4Options) */
  tbl8Groups?: number;
  adjacencyCapacity?: number;
  /** neighbour (next hop) entries; default 16 384 */
  neighborCapacity?: number;
  /** the NAT table's options (without `readers`), or null for none */
  nat?: Omit<NatTableOptions, 'readers'> | null;
}

/** A control-side counter row (the same shape as the graph's `node: reason` counters). */
export interface TableCounterRow {
  node: string;
  reason: string;
  count: number;
}

export class TableSet {
  /** this worker's reader slot, or -1 (control thread, replay) */
  private slot = -1;

  private constructor(
    readonly readers: ReaderRegistry,
    readonly fib: Lpm4,
    readonly adj: AdjacencyTable,
    readonly nbr: NeighborTable,
    private natTable: NatTable | null,
  ) {}

  /** the NAT flow table; null until some pool has natOutgoing */
  get nat(): NatTable | null {
    return this.natTable;
  }

  /** Control thread: creates the NAT table (the first natOutgoing pool); the existing one if any. */
  createNat(opts: Omit<NatTableOptions, 'readers'>): NatTable {
    this.natTable ??= NatTable.create({ ...opts, readers: this.readers });
    return this.natTable;
  }

  /** Worker: attaches the NAT table created after it started (no-op when attached already). */
  attachNat(shared: NatTableShared): NatTable {
    this.natTable ??= NatTable.attach(shared, this.slot >= 0 ? this.slot : undefined);
    return this.natTable;
  }

  /** Control thread: creates every table with one shared reader registry. */
  static create(opts: TableSetOptions = {}): TableSet {
    const readers = ReaderRegistry.create();
    return new TableSet(
      readers,
      Lpm4.create({ tbl8Groups: opts.tbl8Groups, readers }),
      AdjacencyTable.create(opts.adjacencyCapacity ?? ADJ_DEFAULT_CAPACITY, readers),
      NeighborTable.create(opts.neighborCapacity ?? NBR_DEFAULT_CAPACITY, readers),
      opts.nat ? NatTable.create({ ...opts.nat, readers }) : null,
    );
  }

  /**
   * Worker: attaches every table and registers as a reader in `slot` (the worker's number, so a
   * restarted worker takes its predecessor's place), or in any free slot.
   */
  static attach(shared: SharedTables, slot?: number): TableSet {
    const readers = ReaderRegistry.attach(shared.readers);
    const s = readers.register(slot);
    const set = new TableSet(
      readers,
      Lpm4.attach(shared.fib),
      AdjacencyTable.attach(shared.adj),
      NeighborTable.attach(shared.nbr),
      shared.nat === null ? null : NatTable.attach(shared.nat, s),
    );
    set.slot = s;
    return set;
  }

  get shared(): SharedTables {
    return {
      readers: this.readers.shared,
      fib: this.fib.shared,
      adj: this.adj.shared,
      nbr: this.nbr.shared,
      nat: this.nat?.shared ?? null,
    };
  }

  /** This thread's reader slot (-1 when not attached as a reader). */
  get readerSlot(): number {
    return this.slot;
  }

  /** Worker, once per loop round with no table index held: lets writers reclaim what they released. */
  quiescent(): void {
    if (this.slot >= 0) this.readers.quiescent(this.slot);
  }

  /** Worker, before blocking for long (optional): holds nothing until the next `quiescent()`. */
  offline(): void {
    if (this.slot >= 0) this.readers.offline(this.slot);
  }

  /** Worker, when it ends. */
  detach(): void {
    if (this.slot >= 0) this.readers.unregister(this.slot);
    this.slot = -1;
  }

  /** Control thread: the worker in `slot` died; it holds nothing any more. */
  release(slot: number): void {
    this.readers.release(slot);
  }

  /**
   * Control thread, periodically (about once a second): reclaims released entries, repairs neighbour
   * seqlocks left odd by a dead writer, and sweeps the NAT table (`natNow`: its clock) when given.
   */
  maintain(natNow?: number): void {
    this.adj.reclaim();
    this.nbr.maintain();
    if (this.nat !== null && natNow !== undefined) this.nat.expire(natNow, 4096);
  }

  /** Refusals and repairs counted by the tables (for `calitap stats`); only non-zero rows. */
  counters(): TableCounterRow[] {
    const rows: TableCounterRow[] = [
      { node: 'adjacency-table', reason: 'full', count: this.adj.refusals },
      { node: 'neighbor-table', reason: 'full', count: this.nbr.refusals },
      { node: 'neighbor-table', reason: 'mac-read-gave-up', count: this.nbr.counters.stuck },
      { node: 'neighbor-table', reason: 'repaired', count: this.nbr.counters.repaired },
    ];
    if (this.nat !== null) {
      const c = this.nat.counters;
      rows.push({ node: 'nat-table', reason: 'clash', count: c.clash });
      rows.push({ node: 'nat-table', reason: 'sweep-lock-taken-over', count: c.stolen });
    }
    return rows.filter((r) => r.count > 0);
  }
}
