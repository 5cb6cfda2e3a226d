// The etcd v3 Datastore (npm `etcd3`): reads, CAS transactions and prefix watches against the
// endpoints calicoctl would use (ETCD_ENDPOINTS). The client's own fault handling is off (cockatiel's
// noop policies): its global retry would turn a CAS write that succeeded but whose answer was lost into
// an apparent conflict on the retry, and its circuit breaker would refuse every call for 5 s after
// three failures, which hides etcd coming back. Every call has a deadline instead; a failed write is
// reported as `ds-unavailable` ("outcome unknown") and callers re-read. Watches reconnect with a short
// capped backoff; compaction or cancellation surfaces as onError so the consumer re-lists.
// Control thread only.
import { Etcd3, type IKeyValue, type IRangeResponse, type Watcher } from 'etcd3';
import { ExponentialBackoff, noop, type IBackoff } from 'cockatiel';
import {
  DatastoreError,
  type Datastore,
  type KV,
  type ListResult,
  type WatchCallbacks,
  type WatchEvent,
  type WatchHandle,
} from './types.js';

export interface EtcdOptions {
  endpoints: string[];
  /** per-call deadline (default 5 s) */
  timeoutMs?: number;
}

function toKv(kv: IKeyValue): KV {
  return {
    key: kv.key.toString('utf8'),
    value: kv.value.toString('utf8'),
    modRevision: Number(kv.mod_revision),
    createRevision: Number(kv.create_revision),
    version: Number(kv.version),
  };
}

export class EtcdDatastore implements Datastore {
  readonly type = 'etcdv3' as const;
  readonly name: string;
  private readonly client: Etcd3;
  private readonly timeoutMs: number;

  constructor(opts: EtcdOptions) {
    this.name = opts.endpoints.join(',');
    this.timeoutMs = opts.timeoutMs ?? 5000;
    const hosts = opts.endpoints.map((e) => e.replace(/^https?:\/\//, '').replace(/\/$/, ''));
    this.client = new Etcd3({
      hosts,
      faultHandling: {
        host: () => noop,
        global: noop,
        // etcd3 calls .next() on it first, so a backoff factory is what it really takes
        watchBackoff: new ExponentialBackoff({
          initialDelay: 100,
          maxDelay: 1000,
        }) as unknown as IBackoff<unknown>,
      },
    });
  }

  private get deadline(): { deadline: number } {
    return { deadline: Date.now() + this.timeoutMs };
  }

  private fail(what: string, e: unknown): never {
    if (e instanceof DatastoreError) throw e;
    const msg = (e instanceof Error ? e.message.split('\n')[0] : String(e))
      .replace(/\s*Resolution note:.*$/, '')
      .trim();
    throw new DatastoreError('datastore-unavailable', `etcd ${this.name}: ${what}: ${msg}`);
  }

  async get(key: string): Promise<KV | undefined> {
    let res: IRangeResponse;
    try {
      res = await this.client.get(key).options(this.deadline).exec();
    } catch (e) {
      this.fail(`get ${key}`, e);
    }
    return res.kvs.length === 0 ? undefined : toKv(res.kvs[0]);
  }

  async list(prefix: string): Promise<ListResult> {
    let res: IRangeResponse;
    try {
      res = await this.client.getAll().prefix(prefix).options(this.deadline).exec();
    } catch (e) {
      this.fail(`list ${prefix}`, e);
    }
    const kvs = res.kvs.map(toKv).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { kvs, revision: Number(res.header.revision) };
  }

  async create(key: string, value: string): Promise<KV> {
    let res;
    try {
      res = await this.client
        .if(key, 'Version', '==', 0)
        .then(this.client.put(key).value(value))
        .else(this.client.get(key))
        .options(this.deadline)
        .commit();
    } catch (e) {
      this.fail(`create ${key}`, e);
    }
    if (!res.succeeded) throw new DatastoreError('datastore-exists', `${key}: already exists`);
    const rev = Number(res.header.revision);
    return { key, value, modRevision: rev, createRevision: rev, version: 1 };
  }

  async update(key: string, value: string, modRevision: number): Promise<KV> {
    let res;
    try {
      res = await this.client
        .if(key, 'Mod', '==', modRevision)
        .then(this.client.put(key).value(value))
        .else(this.client.get(key))
        .options(this.deadline)
        .commit();
    } catch (e) {
      this.fail(`update ${key}`, e);
    }
    if (!res.succeeded) {
      const cur = res.responses[0]?.response_range?.kvs ?? [];
      if (cur.length === 0) throw new DatastoreError('datastore-not-found', `${key}: does not exist`);
      throw new DatastoreError(
        'datastore-conflict',
        `${key}: changed since revision ${modRevision} (now ${cur[0].mod_revision})`,
      );
    }
    const rev = Number(res.header.revision);
    return { key, value, modRevision: rev, createRevision: 0, version: 0 };
  }

  async put(key: string, value: string): Promise<KV> {
    let rev: number;
    try {
      const res = await this.client.put(key).value(value).options(this.deadline).exec();
      rev = Number(res.header.revision);
    } catch (e) {
      this.fail(`put ${key}`, e);
    }
    return { key, value, modRevision: rev, createRevision: 0, version: 0 };
  }

  async delete(key: string, modRevision?: number): Promise<void> {
    let res;
    try {
      res = await this.client
        .if(
          key,
          modRevision === undefined ? 'Version' : 'Mod',
          modRevision === undefined ? '>' : '==',
          modRevision ?? 0,
        )
        .then(this.client.delete().key(key))
        .else(this.client.get(key))
        .options(this.deadline)
        .commit();
    } catch (e) {
      this.fail(`delete ${key}`, e);
    }
    if (!res.succeeded) {
      const cur = res.responses[0]?.response_range?.kvs ?? [];
      if (cur.length === 0) throw new DatastoreError('datastore-not-found', `${key}: does not exist`);
      throw new DatastoreError('datastore-conflict', `${key}: changed since revision ${modRevision}`);
    }
  }

  watch(prefix: string, fromRevision: number, cb: WatchCallbacks): WatchHandle {
    let closed = false;
    let watcher: Watcher | null = null;
    const end = (e: DatastoreError): void => {
      if (closed) return;
      closed = true;
      void watcher?.cancel().catch(() => undefined);
      cb.onError(e);
    };
    this.client
      .watch()
      .prefix(prefix)
      .startRevision(String(fromRevision))
      .withPreviousKV()
      .create()
      .then((w) => {
        watcher = w;
        if (closed) {
          void w.cancel().catch(() => undefined);
          return;
        }
        w.on('data', (res) => {
          if (closed) return;
          const events: WatchEvent[] = res.events.map((ev) =>
            ev.type === 'Put'
              ? { type: 'put', kv: toKv(ev.kv) }
              : { type: 'delete', key: ev.kv.key.toString('utf8'), modRevision: Number(ev.kv.mod_revision) },
          );
          if (events.length > 0) cb.onEvents(events, Number(res.header.revision));
        });
        // the client reconnects and resumes by itself, but a consumer must know the datastore is down
        // (status) and a resumed stream may have missed a compaction: end and let the consumer re-list
        w.on('disconnected', (err) =>
          end(new DatastoreError('datastore-unavailable', `etcd ${this.name}: watch: ${err.message}`)),
        );
        w.on('error', (err) => {
          // etcd cancels a watch whose start revision was compacted (3.4 sends compact_revision and an
          // empty cancel_reason); we never cancel one still open, so a cancel means compaction
          const compacted = /compact|Watcher canceled: *$/i.test(err.message);
          end(
            new DatastoreError(
              compacted ? 'datastore-compacted' : 'datastore-unavailable',
              `etcd ${this.name}: watch: ${err.message}`,
            ),
          );
        });
      })
      .catch((e: unknown) =>
        end(
          new DatastoreError(
            'datastore-unavailable',
            `etcd ${this.name}: watch: ${e instanceof Error ? e.message : String(e)}`,
          ),
        ),
      );
    return {
      close: () => {
        closed = true;
        void watcher?.cancel().catch(() => undefined);
      },
    };
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
