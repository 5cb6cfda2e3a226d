// The memory and file datastores: the Datastore contract, compaction, the file datastore's validated
// reload (applied as watch events, refused whole on a bad file) and its write-back; the cluster model's
// bad-data handling (logged once, skipped, nothing torn down).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryDatastore } from '../../src/control/datastore/memory.js';
import { FileDatastore } from '../../src/control/datastore/file.js';
import { ResourceClient } from '../../src/control/datastore/resources.js';
import { ClusterModel } from '../../src/control/datastore/model.js';
import { isDsError } from '../../src/control/datastore/types.js';
import { collect, conformance } from './conformance.js';

const POOL = `apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: pool-a}
spec: {cidr: 10.65.0.0/16, ipipMode: Always}
`;
const NODE = `apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: node-1}
spec: {bgp: {ipv4Address: 10.0.0.1/24}}
`;

describe('memory datastore', () => {
  it('meets the Datastore contract', async () => {
    await conformance(new MemoryDatastore(), '/t');
  });

  it('answers a watch from a compacted revision with ds-compacted', async () => {
    const ds = new MemoryDatastore();
    await ds.put('/k', '1');
    ds.compact();
    await ds.put('/k', '2');
    await expect(collect(ds, '/', 1, () => true)).rejects.toSatisfy((e) =>
      isDsError(e, 'datastore-compacted'),
    );
  });
});

describe('file datastore', () => {
  const tmp = () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calitap-fileds-'));
    return { dir, file: path.join(dir, 'cluster.yaml') };
  };

  it('reloads the difference as watch events and refuses an invalid file whole', async () => {
    const { dir, file } = tmp();
    try {
      fs.writeFileSync(file, `${POOL}---\n${NODE}`);
      const ds = FileDatastore.open(file);
      const rev = ds.revision;
      const evs = collect(ds, '/calico/', rev + 1, (e) => e.length >= 3);
      fs.writeFileSync(
        file,
        `${POOL.replace('Always', 'CrossSubnet')}---\n${NODE.replace('node-1', 'node-2')}`,
      );
      expect(ds.reload()).toEqual({ changed: 3 });
      const got = (await evs).map((e) => (e.type === 'put' ? `put ${e.kv.key}` : `del ${e.key}`));
      expect(got.sort()).toEqual(
        [
          'del /calico/resources/v3/projectcalico.org/nodes/node-1',
          'put /calico/resources/v3/projectcalico.org/ippools/pool-a',
          'put /calico/resources/v3/projectcalico.org/nodes/node-2',
        ].sort(),
      );
      fs.writeFileSync(file, POOL.replace('10.65.0.0/16', '10.65.0.1/16'));
      const r = ds.reload();
      expect(r.error).toMatch(/IPPool pool-a: spec.cidr 10.65.0.1\/16: host bits set/);
      expect(ds.getSync('/calico/resources/v3/projectcalico.org/nodes/node-2')).toBeDefined();
      expect(ds.getSync('/calico/resources/v3/projectcalico.org/ippools/pool-a')!.value).toContain(
        'CrossSubnet',
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes resources back into the file, other documents untouched', async () => {
    const { dir, file } = tmp();
    try {
      fs.writeFileSync(file, `# my cluster\n${POOL}---\n${NODE}`);
      const ds = FileDatastore.open(file);
      const rc = new ResourceClient(ds);
      const pool = (await rc.get('IPPool', 'pool-a'))!;
      (pool.spec as Record<string, unknown>).ipipMode = 'Never';
      await rc.replace(pool);
      await rc.delete('Node', 'node-1');
      const text = fs.readFileSync(file, 'utf8');
      expect(text).toContain('ipipMode: Never');
      expect(text).not.toContain('node-1');
      expect(
        FileDatastore.open(file).getSync('/calico/resources/v3/projectcalico.org/ippools/pool-a')!.value,
      ).toContain('"ipipMode":"Never"');
      // an invalid result is refused and the file stays as it was
      await expect(
        rc.create({
          kind: 'IPPool',
          apiVersion: 'projectcalico.org/v3',
          metadata: { name: 'b' },
          spec: { cidr: '10.65.1.0/24' },
        }),
      ).rejects.toThrow(/overlaps IPPool pool-a/);
      expect(fs.readFileSync(file, 'utf8')).toBe(text);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('cluster model', () => {
  it('logs bad values once, skips them, and keeps what a key gave before it went bad', () => {
    const bad: string[] = [];
    const m = new ClusterModel('etcd', (b) => bad.push(`${b.key}: ${b.reason}`));
    const kv = (key: string, value: string, rev: number) => ({
      key,
      value,
      modRevision: rev,
      createRevision: rev,
      version: 1,
    });
    const pool = '/calico/resources/v3/projectcalico.org/ippools/p';
    const good = JSON.stringify({
      kind: 'IPPool',
      apiVersion: 'projectcalico.org/v3',
      metadata: { name: 'p' },
      spec: { cidr: '10.65.0.0/16', ipipMode: 'Always' },
    });
    m.reset([
      kv(pool, good, 2),
      kv(
        '/calico/ipam/v2/assignment/ipv4/block/10.65.0.0-26',
        '{"cidr":"10.65.0.0/26","affinity":"host:n2","allocations":[null],"unallocated":[],"attributes":[]}',
        3,
      ),
      kv('/calico/resources/v3/projectcalico.org/nodes/n2', '{not json', 4),
    ]);
    expect(m.build().pools.map((p) => p.ipipMode)).toEqual(['Always']);
    expect(bad).toHaveLength(2);
    expect(bad[0]).toMatch(/block\/10.65.0.0-26: allocations: 1 entries contradict the block size 64/);
    expect(bad[1]).toMatch(/nodes\/n2: value is not JSON/);
    // the pool goes bad: logged once, the old pool stays
    m.apply([{ type: 'put', kv: kv(pool, good.replace('Always', 'Sometimes'), 5) }]);
    m.apply([{ type: 'put', kv: kv(pool, good.replace('Always', 'Sometimes'), 5) }]);
    expect(bad).toHaveLength(3);
    expect(bad[2]).toMatch(/spec.ipipMode Sometimes: must be one of Always, CrossSubnet, Never/);
    expect(m.build().pools.map((p) => p.ipipMode)).toEqual(['Always']);
    m.apply([{ type: 'put', kv: kv(pool, good.replace('Always', 'Never'), 6) }]);
    expect(m.build().pools.map((p) => p.ipipMode)).toEqual(['Never']);
    expect(m.bad.size).toBe(2);
  });
});
