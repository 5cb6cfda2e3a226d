// The Datastore contract, run against every implementation (memory in datastore.test.ts, a real etcd
// in etcd.test.ts): CAS create/update/delete, prefix lists, watches from a past revision, compaction.
import { expect } from 'vitest';
import { isDsError, type Datastore, type WatchEvent } from '../../src/control/datastore/types.js';

export async function collect(
  ds: Datastore,
  prefix: string,
  from: number,
  until: (evs: WatchEvent[]) => boolean,
  ms = 5000,
): Promise<WatchEvent[]> {
  const evs: WatchEvent[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      h.close();
      reject(new Error(`watch: only ${evs.length} events within ${ms} ms`));
    }, ms);
    const h = ds.watch(prefix, from, {
      onEvents: (e) => {
        evs.push(...e);
        if (until(evs)) {
          clearTimeout(timer);
          h.close();
          resolve(evs);
        }
      },
      onError: (e) => {
        clearTimeout(timer);
        h.close();
        reject(e);
      },
    });
  });
}

export async function conformance(ds: Datastore, p: string): Promise<void> {
  const a = await ds.create(`${p}/a`, '1');
  expect(a.version).toBe(1);
  await expect(ds.create(`${p}/a`, '2')).rejects.toSatisfy((e) => isDsError(e, 'datastore-exists'));
  const a2 = await ds.update(`${p}/a`, '2', a.modRevision);
  expect(a2.modRevision).toBeGreaterThan(a.modRevision);
  await expect(ds.update(`${p}/a`, '3', a.modRevision)).rejects.toSatisfy((e) =>
    isDsError(e, 'datastore-conflict'),
  );
  await expect(ds.update(`${p}/missing`, '3', 1)).rejects.toSatisfy((e) =>
    isDsError(e, 'datastore-not-found'),
  );
  expect((await ds.get(`${p}/a`))?.value).toBe('2');
  await ds.put(`${p}/c`, 'c');
  await ds.put(`${p}/b`, 'b');
  await ds.put(`${p}x/other`, 'no');
  const l = await ds.list(`${p}/`);
  expect(l.kvs.map((kv) => kv.key)).toEqual([`${p}/a`, `${p}/b`, `${p}/c`]);
  expect(l.revision).toBeGreaterThanOrEqual(Math.max(...l.kvs.map((kv) => kv.modRevision)));
  await expect(ds.delete(`${p}/b`, a.modRevision)).rejects.toSatisfy((e) =>
    isDsError(e, 'datastore-conflict'),
  );
  await ds.delete(`${p}/b`);
  await expect(ds.delete(`${p}/b`)).rejects.toSatisfy((e) => isDsError(e, 'datastore-not-found'));
  // a watch from a past revision replays what happened since, in order, then follows
  const seen = collect(ds, `${p}/`, a2.modRevision, (evs) =>
    evs.some((e) => e.type === 'put' && e.kv.key === `${p}/d`),
  );
  await ds.put(`${p}/d`, 'd');
  const evs = await seen;
  const keys = evs.map((e) => (e.type === 'put' ? `put ${e.kv.key}=${e.kv.value}` : `del ${e.key}`));
  expect(keys).toEqual([`put ${p}/a=2`, `put ${p}/c=c`, `put ${p}/b=b`, `del ${p}/b`, `put ${p}/d=d`]);
}
