// The etcd v3 datastore against a real etcd (Debian's etcd-server, started inside a namespace this
// test creates): the Datastore contract, compaction, etcd stopped and back (no circuit breaker left
// refusing calls), the CAS IPAM with two nodes allocating concurrently, and calicoctl-layout values
// read back. Needs root and /usr/bin/etcd; skipped (and says so) otherwise.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdDatastore } from '../../src/control/datastore/etcd.js';
import { isDsError } from '../../src/control/datastore/types.js';
import { CasIpam } from '../../src/control/ipam/cas.js';
import { BLOCKS_PREFIX } from '../../src/control/datastore/layout.js';
import { decodeBlock } from '../../src/control/datastore/ipam-records.js';
import type { IPPool } from '../../src/control/config/types.js';
import { collect, conformance } from './conformance.js';
import { haveEtcd, TestEtcd } from './etcd-helper.js';

const POOL: IPPool = {
  name: 'default-ipv4-ippool',
  cidr: { addr: 0xc0a80000, len: 16 },
  blockSize: 26,
  ipipMode: 'Always',
  vxlanMode: 'Never',
  natOutgoing: true,
  disabled: false,
  disableBGPExport: false,
};

describe.skipIf(!haveEtcd())('etcd v3 datastore (real etcd; requires root and etcd-server)', () => {
  let etcd: TestEtcd;
  let ds: EtcdDatastore;

  beforeAll(async () => {
    etcd = new TestEtcd('ed');
    await etcd.start();
    ds = new EtcdDatastore({ endpoints: [etcd.url], timeoutMs: 2000 });
  });

  afterAll(async () => {
    await ds?.close();
    await etcd?.destroy();
  });

  it('meets the Datastore contract', async () => {
    await conformance(ds, '/test/contract');
  });

  it('ends a watch from a compacted revision with ds-compacted', async () => {
    const a = await ds.put('/test/compact/k', '1');
    await ds.put('/test/compact/k', '2');
    etcd.compact();
    await expect(collect(ds, '/test/compact/', a.modRevision, () => true)).rejects.toSatisfy((e) =>
      isDsError(e, 'datastore-compacted'),
    );
  });

  it('two nodes allocating 50 addresses each at the same moment get 100 distinct ones and never share a block', async () => {
    const clients = [
      new EtcdDatastore({ endpoints: [etcd.url] }),
      new EtcdDatastore({ endpoints: [etcd.url] }),
    ];
    try {
      const ipams = clients.map((c) => new CasIpam(c));
      const got = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          ipams[i % 2].assign({
            handle: `w${i}`,
            host: `node-${i % 2}`,
            attrs: { node: `node-${i % 2}` },
            pools: [POOL],
          }),
        ),
      );
      expect(new Set(got.flat()).size).toBe(100);
      const { kvs } = await ds.list(BLOCKS_PREFIX);
      for (const kv of kvs) {
        const b = decodeBlock(kv.key, kv.value);
        const nodes = new Set(
          b.allocations.filter((a) => a !== null).map((a) => b.attributes[a!].secondary?.get('node')),
        );
        expect(nodes.size).toBeLessThanOrEqual(1);
        expect([...nodes][0] ?? b.affinity?.slice(5)).toBe(b.affinity?.slice(5));
      }
      expect(kvs.length).toBe(2);
      for (let i = 0; i < 100; i++) await ipams[i % 2].releaseHandle(`w${i}`);
    } finally {
      for (const c of clients) await c.close();
    }
  });

  it('fails fast while etcd is stopped and works again as soon as it is back', async () => {
    await ds.put('/test/outage/k', 'before');
    await etcd.stop();
    const t0 = Date.now();
    await expect(ds.get('/test/outage/k')).rejects.toSatisfy((e) => isDsError(e, 'datastore-unavailable'));
    for (let i = 0; i < 4; i++) await ds.get('/test/outage/k').catch(() => undefined);
    expect(Date.now() - t0).toBeLessThan(20_000);
    await etcd.start();
    // no circuit breaker holding calls back: the first call after the restart goes through
    let v: string | undefined;
    for (let i = 0; i < 50 && v === undefined; i++) {
      v = (await ds.get('/test/outage/k').catch(() => undefined))?.value;
      if (v === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(v).toBe('before');
  });
});
