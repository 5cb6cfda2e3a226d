// Golden tests of Calico's etcdv3 layout: values calitap writes compared byte for byte with fixtures
// written from libcalico-go's Go struct tags (test/datastore/fixtures), and values written the way
// calicoctl / calico-node write them read back correctly (unknown fields and uint64 sequence numbers
// survive a rewrite).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parsePrefix4 } from '../../src/common/addr.js';
import {
  affinityKey,
  blockKey,
  handleKey,
  parseAffinityKey,
  parseBlockKey,
  parseResourceKey,
  resourceKey,
} from '../../src/control/datastore/layout.js';
import { parseJson, stringifyGo } from '../../src/control/datastore/json.js';
import {
  decodeResource,
  encodeResource,
  keyOf,
  ResourceClient,
  type V3Object,
} from '../../src/control/datastore/resources.js';
import { MemoryDatastore } from '../../src/control/datastore/memory.js';
import {
  clusterInformation,
  defaultPool,
  workloadEndpoint,
  wepName,
} from '../../src/control/datastore/defaults.js';
import { configFromKvs } from '../../src/control/datastore/model.js';
import {
  assignOrdinals,
  decodeAffinity,
  decodeBlock,
  decodeHandle,
  decodeIpamConfig,
  encodeAffinity,
  encodeBlock,
  encodeHandle,
  encodeIpamConfig,
  newBlock,
  releaseHandle,
} from '../../src/control/datastore/ipam-records.js';

const fx = (name: string): string =>
  readFileSync(new URL(`fixtures/${name.replace(/\.json$/, '.golden')}`, import.meta.url), 'utf8').trim();
const UID = '11111111-2222-4333-8444-555555555555';
const CLOCK = { now: () => new Date('2026-01-02T03:04:05.678Z'), uid: () => UID };
const p4 = (s: string) => {
  const p = parsePrefix4(s, true)!;
  return { addr: p.addr, len: p.len };
};

describe('key layout', () => {
  it('names resources, blocks, affinities and handles as libcalico-go does', () => {
    expect(resourceKey('IPPool', 'default-ipv4-ippool')).toBe(
      '/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool',
    );
    expect(resourceKey('WorkloadEndpoint', 'n-calitap-w-eth0', 'prod')).toBe(
      '/calico/resources/v3/projectcalico.org/workloadendpoints/prod/n-calitap-w-eth0',
    );
    expect(resourceKey('ClusterInformation', 'default')).toBe(
      '/calico/resources/v3/projectcalico.org/clusterinformations/default',
    );
    expect(blockKey(p4('10.65.0.64/26'))).toBe('/calico/ipam/v2/assignment/ipv4/block/10.65.0.64-26');
    expect(affinityKey('node-1', p4('10.65.0.64/26'))).toBe(
      '/calico/ipam/v2/host/node-1/ipv4/block/10.65.0.64-26',
    );
    expect(handleKey('ipip-tunnel-addr-node-1')).toBe('/calico/ipam/v2/handle/ipip-tunnel-addr-node-1');
    expect(parseBlockKey('/calico/ipam/v2/assignment/ipv4/block/10.65.0.64-26')).toEqual(p4('10.65.0.64/26'));
    expect(parseAffinityKey('/calico/ipam/v2/host/node-1/ipv4/block/10.65.0.64-26')).toEqual({
      host: 'node-1',
      cidr: p4('10.65.0.64/26'),
    });
    expect(parseResourceKey('/calico/resources/v3/projectcalico.org/workloadendpoints/prod/x')).toEqual({
      kind: 'WorkloadEndpoint',
      namespace: 'prod',
      name: 'x',
    });
    expect(parseResourceKey('/calico/resources/v3/projectcalico.org/ippools/a/b')).toBeUndefined();
    expect(parseBlockKey('/calico/ipam/v2/assignment/ipv4/block/10.65.0.65-26')).toBeUndefined();
  });
});

describe('IPAM values', () => {
  it('a new block with one tunnel address is byte-identical to the fixture', () => {
    const b = newBlock(p4('10.65.0.0/30'), 'node-1');
    assignOrdinals(
      b,
      1,
      'ipip-tunnel-addr-node-1',
      new Map([
        ['node', 'node-1'],
        ['type', 'ipipTunnelAddress'],
      ]),
    );
    b.sequenceNumber = 1n;
    expect(encodeBlock(b)).toBe(fx('block-one-tunnel.json'));
  });

  it('a calicoctl-written block keeps uint64 sequence numbers and unknown fields through a rewrite', () => {
    const text = fx('block-calicoctl.json');
    const key = blockKey(p4('10.65.1.0/29'));
    const b = decodeBlock(key, text, p4('10.65.1.0/29'));
    expect(b.sequenceNumber).toBe(18446744073709551610n);
    expect(b.sequenceNumberForAllocation.get('7')).toBe(9007199254740993n);
    expect(b.affinity).toBe('host:node-2');
    expect(b.attributes[1].secondary?.get('pod')).toBe('web-1');
    // unchanged: byte-identical
    expect(encodeBlock(b)).toBe(text);
    // assign and release: unknown fields stay where they were, numbers stay exact
    assignOrdinals(b, 1, 'h1', new Map([['node', 'node-2']]));
    b.sequenceNumber += 1n;
    const out = encodeBlock(b);
    expect(out).toContain('"strictAffinity":false,"allocations"');
    expect(out).toContain('"sequenceNumber":18446744073709551611');
    expect(out).toContain('"7":9007199254740993');
    expect(out.endsWith('"affinityClaimTime":"2024-05-01T09:59:00Z"}')).toBe(true);
    const again = decodeBlock(key, out);
    expect(again.allocations[3]).toBe(2);
    releaseHandle(again, 'k8s-pod-network.abc');
    expect(again.attributes.map((a) => a.handle)).toEqual(['vxlan-tunnel-addr-node-2', 'h1']);
    expect(again.allocations[7]).toBe(0);
    expect(again.allocations[3]).toBe(1);
  });

  it('refuses blocks whose allocations contradict the size', () => {
    const key = blockKey(p4('10.65.0.0/30'));
    const bad = fx('block-one-tunnel.json').replace('[0,null,null,null]', '[0,null,null]');
    expect(() => decodeBlock(key, bad)).toThrow(/3 entries contradict the block size 4/);
    expect(() => decodeBlock(key, '{"cidr":')).toThrow(/not JSON/);
    expect(() => decodeBlock(key, fx('block-one-tunnel.json').replace('[0,null', '[5,null'))).toThrow(
      /allocations\[0\]/,
    );
  });

  it('affinities, handles and the IPAM config match the fixtures', () => {
    expect(encodeAffinity({ state: 'confirmed' })).toBe(fx('affinity-confirmed.json'));
    expect(decodeAffinity('k', fx('affinity-confirmed.json')).state).toBe('confirmed');
    const h = decodeHandle('k', fx('handle.json'));
    expect(h.block.get('10.65.0.0/26')).toBe(2);
    expect(
      encodeHandle({
        block: new Map([
          ['10.65.0.64/26', 1],
          ['10.65.0.0/26', 2],
        ]),
      }),
    ).toBe(fx('handle.json'));
    expect(encodeIpamConfig({ strictAffinity: false, autoAllocateBlocks: true, maxBlocksPerHost: 0 })).toBe(
      fx('ipam-config.json'),
    );
    expect(decodeIpamConfig('k', '{"strict_affinity":true,"auto_allocate_blocks":true}').strictAffinity).toBe(
      true,
    );
  });
});

describe('v3 resources', () => {
  it('writes the default pool, a Node, a WorkloadEndpoint and ClusterInformation as Go would', async () => {
    const ds = new MemoryDatastore();
    const rc = new ResourceClient(ds, CLOCK);
    await rc.create(defaultPool({ CALICO_IPV4POOL_IPIP: 'Always' }));
    await rc.create({
      kind: 'Node',
      apiVersion: 'projectcalico.org/v3',
      metadata: {
        name: 'node-1',
        labels: { 'projectcalico.org/orchestrator': 'calitap', 'kubernetes.io/hostname': 'node-1' },
      },
      spec: {
        ipv4VXLANTunnelAddr: '192.168.64.1',
        vxlanTunnelMACAddr: '66:1b:7a:20:13:58',
        bgp: { ipv4IPIPTunnelAddr: '192.168.64.0', ipv4Address: '10.0.0.1/24' },
      },
    });
    await rc.create(
      workloadEndpoint({
        node: 'node-1',
        namespace: 'prod',
        workload: 'web-1',
        ip: '192.168.64.2',
        mac: '52:54:00:12:34:56',
        interfaceName: 'cali0123456789a',
        labels: { app: 'web' },
      }),
    );
    await rc.create(clusterInformation('0123456789abcdef0123456789abcdef'));
    const get = (k: string) => ds.getSync(k)!.value;
    expect(get('/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool')).toBe(
      fx('ippool-default.json'),
    );
    expect(get('/calico/resources/v3/projectcalico.org/nodes/node-1')).toBe(fx('node.json'));
    expect(
      get('/calico/resources/v3/projectcalico.org/workloadendpoints/prod/node--1-calitap-web--1-eth0'),
    ).toBe(fx('wep.json'));
    expect(get('/calico/resources/v3/projectcalico.org/clusterinformations/default')).toBe(
      fx('clusterinfo.json'),
    );
  });

  it('never stores resourceVersion; reports the mod_revision instead', async () => {
    const ds = new MemoryDatastore();
    const rc = new ResourceClient(ds, CLOCK);
    const pool = defaultPool({});
    pool.metadata.resourceVersion = '999';
    const created = await rc.create(pool);
    const kv = ds.getSync(keyOf(pool))!;
    expect(kv.value).not.toContain('resourceVersion');
    expect(created.metadata.resourceVersion).toBe(String(kv.modRevision));
    expect((await rc.get('IPPool', 'default-ipv4-ippool'))!.metadata.resourceVersion).toBe(
      String(kv.modRevision),
    );
  });

  it('reads values written by calicoctl into the cluster model', () => {
    const kvs = [
      { key: '/calico/resources/v3/projectcalico.org/ippools/pool-b', value: fx('ippool-calicoctl.json') },
      { key: '/calico/resources/v3/projectcalico.org/nodes/node-1', value: fx('node.json') },
      {
        key: '/calico/resources/v3/projectcalico.org/workloadendpoints/prod/node--1-calitap-web--1-eth0',
        value: fx('wep.json').replace('192.168.64.2', '10.70.0.2'),
      },
      { key: '/calico/ipam/v2/assignment/ipv4/block/10.65.1.0-29', value: fx('block-calicoctl.json') },
    ].map((x, i) => ({ ...x, modRevision: i + 2, createRevision: i + 2, version: 1 }));
    const cfg = configFromKvs(kvs, 'etcd');
    expect(cfg.pools).toHaveLength(1);
    expect(cfg.pools[0]).toMatchObject({
      name: 'pool-b',
      blockSize: 28,
      vxlanMode: 'CrossSubnet',
      natOutgoing: true,
    });
    expect(cfg.nodes.get('node-1')?.bgpAddress).toEqual({ ip: 0x0a000001, len: 24 });
    expect(cfg.nodes.get('node-1')?.ipipTunnelAddr).toBe(0xc0a84000);
    expect(cfg.endpoints[0]).toMatchObject({
      name: 'node--1-calitap-web--1-eth0',
      namespace: 'prod',
      node: 'node-1',
    });
    expect(cfg.affinities).toEqual([
      {
        name: 'block-10.65.1.0/29',
        node: 'node-2',
        cidr: p4('10.65.1.0/29'),
        state: 'confirmed',
        deleted: false,
      },
    ]);
  });

  it('decodes and re-encodes any stored resource losslessly', () => {
    for (const f of [
      'ippool-default.json',
      'node.json',
      'wep.json',
      'clusterinfo.json',
      'ippool-calicoctl.json',
    ]) {
      const text = fx(f);
      const v = parseJson(text) as V3Object;
      const key = keyOf(v);
      const o = decodeResource({ key, value: text, modRevision: 7, createRevision: 7, version: 1 });
      expect(o.metadata.resourceVersion).toBe('7');
      expect(encodeResource(o)).toBe(text);
    }
  });

  it('escapes like Go and sorts map keys', () => {
    expect(stringifyGo({ a: '<&>' })).toBe('{"a":"\\u003c\\u0026\\u003e"}');
    expect(wepName('node-1', 'k8s', 'a-b', 'eth0')).toBe('node--1-k8s-a--b-eth0');
  });
});
