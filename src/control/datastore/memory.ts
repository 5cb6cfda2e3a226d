// An in-process Datastore with etcd v3 semantics: one store-wide revision bumped by every write,
// create/update/delete as compare-and-swap, a bounded event history so watchers can start from a past
// revision (older than the history → `ds-compacted`, as etcd answers after compaction), and watch
// events delivered asynchronously in revision order. Used by the file datastore, the unit tests and
// the in-process benchmark. `hooks.beforeWrite` lets tests inject a conflicting write between a
// caller's read and its CAS. Control thread only.
import {
  DatastoreError,
  type Datastore,
  type KV,
  type ListResult,
  type WatchCallbacks,
  type WatchEvent,
  type WatchHandle,
} from './types.js';

interface Watcher {
  prefix: string;
  cb: WatchCallbacks;
  closed: boolean;
}

export interface MemoryHooks {
  /** called before every CAS/put/delete with the key; may write to the store itself */
  beforeWrite?: (op: 'create' | 'update' | 'put' | 'delete', key: string) => void;
  /** when it returns true the call fails with `ds-unavailable` (after applying the write if `applied`) */
  failWrite?: (op: 'create' | 'update' | 'put' | 'delete', key: string) => 'before' | 'after' | false;
}

export class MemoryDatastore implements Datastore {
  readonly type: 'memory' | 'file' = 'memory';
  private readonly data = new Map<string, KV>();
  private rev = 1;
  private readonly history: { rev: number; ev: WatchEvent }[] = [];
  private compactedRev = 0;
  private readonly watchers = new Set<Watcher>();
  hooks: MemoryHooks = {};

  constructor(
    readonly name = 'memory',
    private readonly historyLimit = 100_000,
  ) {}

  get revision(): number {
    return this.rev;
  }

  async get(key: string): Promise<KV | undefined> {
    return this.getSync(key);
  }

  getSync(key: string): KV | undefined {
    const kv = this.data.get(key);
    return kv === undefined ? undefined : { ...kv };
  }

  async list(prefix: string): Promise<ListResult> {
    return this.listSync(prefix);
  }

  listSync(prefix: string): ListResult {
    const kvs: KV[] = [];
    for (const kv of this.data.values()) if (kv.key.startsWith(prefix)) kvs.push({ ...kv });
    kvs.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { kvs, revision: this.rev };
  }

  private fault(op: 'create' | 'update' | 'put' | 'delete', key: string): 'before' | 'after' | false {
    this.hooks.beforeWrite?.(op, key);
    const f = this.hooks.failWrite?.(op, key) ?? false;
    if (f === 'before')
      throw new DatastoreError('datastore-unavailable', `${this.name}: ${key}: injected failure`);
    return f;
  }

  private after(f: 'before' | 'after' | false, key: string): void {
    if (f === 'after')
      throw new DatastoreError(
        'datastore-unavailable',
        `${this.name}: ${key}: injected failure after the write`,
      );
  }

  async create(key: string, value: string): Promise<KV> {
    const f = this.fault('create', key);
    const kv = this.createSync(key, value);
    this.after(f, key);
    return kv;
  }

  createSync(key: string, value: string): KV {
    if (this.data.has(key)) throw new DatastoreError('datastore-exists', `${key}: already exists`);
    return this.write(key, value);
  }

  async update(key: string, value: string, modRevision: number): Promise<KV> {
    const f = this.fault('update', key);
    const kv = this.updateSync(key, value, modRevision);
    this.after(f, key);
    return kv;
  }

  updateSync(key: string, value: string, modRevision: number): KV {
    const cur = this.data.get(key);
    if (cur === undefined) throw new DatastoreError('datastore-not-found', `${key}: does not exist`);
    if (cur.modRevision !== modRevision)
      throw new DatastoreError(
        'datastore-conflict',
        `${key}: changed since revision ${modRevision} (now ${cur.modRevision})`,
      );
    return this.write(key, value);
  }

  async put(key: string, value: string): Promise<KV> {
    const f = this.fault('put', key);
    const kv = this.write(key, value);
    this.after(f, key);
    return kv;
  }

  putSync(key: string, value: string): KV {
    return this.write(key, value);
  }

  async delete(key: string, modRevision?: number): Promise<void> {
    const f = this.fault('delete', key);
    this.deleteSync(key, modRevision);
    this.after(f, key);
  }

  deleteSync(key: string, modRevision?: number): void {
    const cur = this.data.get(key);
    if (cur === undefined) throw new DatastoreError('datastore-not-found', `${key}: does not exist`);
    if (modRevision !== undefined && cur.modRevision !== modRevision)
      throw new DatastoreError(
        'datastore-conflict',
        `${key}: changed since revision ${modRevision} (now ${cur.modRevision})`,
      );
    this.data.delete(key);
    this.rev++;
    this.emit({ type: 'delete', key, modRevision: this.rev });
  }

  private write(key: string, value: string): KV {
    this.rev++;
    const cur = this.data.get(key);
    const kv: KV = {
      key,
      value,
      modRevision: this.rev,
      createRevision: cur?.createRevision ?? this.rev,
      version: (cur?.version ?? 0) + 1,
    };
    this.data.set(key, kv);
    this.emit({ type: 'put', kv: { ...kv } });
    return { ...kv };
  }

  private emit(ev: WatchEvent): void {
    this.history.push({ rev: this.rev, ev });
    if (this.history.length > this.historyLimit) {
      const drop = this.history.length - this.historyLimit;
      this.compactedRev = this.history[drop - 1].rev;
      this.history.splice(0, drop);
    }
    const rev = this.rev;
    for (const w of this.watchers) {
      if (!watchMatches(w, ev)) continue;
      queueMicrotask(() => {
        if (!w.closed) w.cb.onEvents([ev], rev);
      });
    }
  }

  /** Forgets history up to the current revision (what `etcdctl compact` does to watchers). */
  compact(): void {
    this.compactedRev = this.rev;
    this.history.length = 0;
  }

  watch(prefix: string, fromRevision: number, cb: WatchCallbacks): WatchHandle {
    const w: Watcher = { prefix, cb, closed: false };
    if (fromRevision <= this.compactedRev) {
      queueMicrotask(() => {
        if (!w.closed)
          cb.onError(
            new DatastoreError(
              'datastore-compacted',
              `${this.name}: revision ${fromRevision} has been compacted`,
            ),
          );
      });
      return { close: () => (w.closed = true) };
    }
    const past = this.history.filter((h) => h.rev >= fromRevision && watchMatches(w, h.ev)).map((h) => h.ev);
    const rev = this.rev;
    if (past.length > 0)
      queueMicrotask(() => {
        if (!w.closed) cb.onEvents(past, rev);
      });
    this.watchers.add(w);
    return {
      close: () => {
        w.closed = true;
        this.watchers.delete(w);
      },
    };
  }

  /** Ends every watch with an error (tests: a lost connection). */
  breakWatches(): void {
    for (const w of [...this.watchers]) {
      this.watchers.delete(w);
      queueMicrotask(() => {
        if (!w.closed) w.cb.onError(new DatastoreError('datastore-unavailable', `${this.name}: watch lost`));
      });
    }
  }

  async close(): Promise<void> {
    for (const w of this.watchers) w.closed = true;
    this.watchers.clear();
  }
}

function watchMatches(w: Watcher, ev: WatchEvent): boolean {
  return (ev.type === 'put' ? ev.kv.key : ev.key).startsWith(w.prefix);
}
