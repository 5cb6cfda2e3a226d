// The Datastore interface every control-plane consumer uses (ARCHITECTURE §6): keys and values as
// etcd v3 holds them (strings), a store-wide revision, list + watch from a revision, and
// compare-and-swap writes (create on version 0, update and delete on mod_revision). Implementations:
// MemoryDatastore (tests, bench, and the file datastore's store), FileDatastore (a YAML file,
// reloaded on change) and EtcdDatastore (etcd v3 in Calico's etcdv3 layout, see layout.ts).
// Control thread only; values are immutable strings owned by whoever holds them.
import { DatastoreError } from '../../common/errors.js';

export interface KV {
  key: string;
  value: string;
  /** revision of the last write to this key (Calico reports it as resourceVersion) */
  modRevision: number;
  createRevision: number;
  /** writes since the key was created (1 after create) */
  version: number;
}

export type WatchEvent = { type: 'put'; kv: KV } | { type: 'delete'; key: string; modRevision: number };

export interface WatchCallbacks {
  /** events in revision order; `revision` is the store revision they bring the watcher to */
  onEvents(events: WatchEvent[], revision: number): void;
  /** the watch ended (compaction, lost connection): re-list, then watch again */
  onError(err: DatastoreError): void;
}

export interface WatchHandle {
  close(): void;
}

export interface ListResult {
  kvs: KV[];
  /** the store revision the list is a snapshot of; watch from revision + 1 */
  revision: number;
}

export type DatastoreType = 'etcdv3' | 'file' | 'memory';

export interface Datastore {
  readonly type: DatastoreType;
  /** for messages: the file path, the etcd endpoints, or "memory" */
  readonly name: string;
  get(key: string): Promise<KV | undefined>;
  /** every key starting with `prefix`, sorted by key */
  list(prefix: string): Promise<ListResult>;
  /** CAS on version 0; DatastoreError `ds-exists` when the key exists */
  create(key: string, value: string): Promise<KV>;
  /** CAS on mod_revision; `ds-conflict` when it changed, `ds-not-found` when the key is gone */
  update(key: string, value: string, modRevision: number): Promise<KV>;
  /** unconditional write (calicoctl apply keeps no revision) */
  put(key: string, value: string): Promise<KV>;
  /** CAS on mod_revision when given; `ds-not-found` / `ds-conflict` like update */
  delete(key: string, modRevision?: number): Promise<void>;
  /** events for keys under `prefix` with revision ≥ fromRevision */
  watch(prefix: string, fromRevision: number, cb: WatchCallbacks): WatchHandle;
  close(): Promise<void>;
}

export { DatastoreError };

/** The DatastoreError codes (src/common/errors.ts). `datastore-unavailable` after a write means the
 * outcome is unknown (the write may have applied): callers re-read before deciding. */
export type DatastoreErrorCode =
  | 'datastore-exists'
  | 'datastore-conflict'
  | 'datastore-not-found'
  | 'datastore-unavailable'
  | 'datastore-compacted'
  | 'datastore-invalid';

export function isDsError(e: unknown, ...codes: DatastoreErrorCode[]): e is DatastoreError {
  return e instanceof DatastoreError && (codes.length === 0 || (codes as string[]).includes(e.code));
}
