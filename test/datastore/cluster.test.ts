// A three-node calitap cluster on etcd, end to end: the daemons boot from an empty etcd with only
// environment variables (default pool from CALICO_IPV4POOL_*, Nodes registered with autodetected
// addresses, tunnel addresses and blocks claimed through the CAS IPAM), form the BGP mesh, attach
// workloads (WorkloadEndpoints written, addresses distinct, blocks never shared) and ping across;
// `calitap apply` switches the pool's mode and routes and traffic follow within 2 s; the cluster
// survives etcd being stopped for 10 s and compacted; `calitap node delete` releases everything.
// Needs root (network namespaces) and Debian's etcd-server; skipped otherwise.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { Lab } from '../../src/lab/lab.js';
import {
  isRoot,
  killAll,
  ping,
  prefix,
  routeFor,
  routes,
  sleep,
  waitFor,
  waitPing,
} from '../live/helpers.js';

type W = { ns: string; ip: string; name: string };
const POOL = (mode: string) => `apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: default-ipv4-ippool}
spec: {cidr: 10.65.0.0/16, ipipMode: ${mode}, natOutgoing: true, blockSize: 26, nodeSelector: all()}
`;

describe.skipIf(!isRoot() || !fs.existsSync('/usr/bin/etcd'))(
  'three-node cluster on etcd (requires root and etcd-server)',
  () => {
    let lab: Lab;
    const w: W[] = [];

    beforeAll(async () => {
      lab = Lab.create({
        prefix: prefix('dc'),
        mode: 'ipip',
        hosts: 3,
        workers: 1,
        bgp: true,
        etcd: true,
        daemonEnv: {
          CALICO_IPV4POOL_CIDR: '10.65.0.0/16',
          CALICO_IPV4POOL_IPIP: 'Always',
          IP_AUTODETECTION_METHOD: 'first-found',
        },
      });
      await lab.startEtcd();
      await Promise.all([1, 2, 3].map((k) => lab.start(k, 30_000)));
      for (const k of [1, 2, 3]) w.push(await lab.addWorkload(k));
    }, 180_000);

    afterAll(async () => {
      await killAll();
      await lab?.destroyAsync();
    });

    it('boots from an empty etcd: default pool, Nodes with their addresses and tunnel addresses, defaults', () => {
      const pools = lab.cli(['get', 'ippool', '-o', 'wide']);
      expect(pools).toMatch(
        /default-ipv4-ippool\s+10.65.0.0\/16\s+true\s+Always\s+Never\s+false\s+false\s+all\(\)/,
      );
      const nodes = JSON.parse(lab.cli(['get', 'nodes', '-o', 'json'])) as {
        items: {
          metadata: { name: string };
          spec: { bgp: { ipv4Address: string; ipv4IPIPTunnelAddr?: string } };
        }[];
      };
      expect(nodes.items.map((n) => [n.metadata.name, n.spec.bgp.ipv4Address])).toEqual([
        ['node-1', '10.0.0.1/24'],
        ['node-2', '10.0.0.2/24'],
        ['node-3', '10.1.0.3/24'],
      ]);
      for (const n of nodes.items) expect(n.spec.bgp.ipv4IPIPTunnelAddr).toMatch(/^10\.65\./);
      expect(lab.cli(['get', 'clusterinformation', 'default', '-o', 'yaml'])).toContain(
        'datastoreReady: true',
      );
      expect(lab.etcdctl(['get', '/calico/ipam/v2/config', '--print-value-only'])).toContain(
        'auto_allocate_blocks',
      );
      for (const kind of ['felixconfiguration', 'bgpconfiguration'])
        expect(lab.cli(['get', kind])).toContain('default');
    });

    it('writes WorkloadEndpoints, gives distinct addresses from per-node blocks, and pings across', async () => {
      const weps = lab.cli(['get', 'workloadendpoints', '-A']);
      for (const k of [1, 2, 3]) expect(weps).toContain(`node-${k}`);
      expect(new Set(w.map((x) => x.ip)).size).toBe(3);
      const show = lab.cli(['ipam', 'show', '--show-blocks']);
      expect(show).toMatch(/IP Pool\s+\|\s+10\.65\.0\.0\/16\s+\|\s+65536\s/);
      expect((show.match(/\| Block /g) ?? []).length).toBe(3);
      await waitFor(
        'remote blocks learned on node-1',
        async () => (await routes(lab, 1)).filter((r) => r.source === 'bgp').length === 2,
        30_000,
      );
      await waitPing(w[0].ns, w[1].ip, 10_000);
      await waitPing(w[0].ns, w[2].ip, 10_000);
      expect((await ping(w[2].ns, w[1].ip, { count: 3 })).received).toBe(3);
    });

    it('follows a pool mode switch live: routes within 2 s, traffic keeps flowing', async () => {
      const block2 = (await routes(lab, 1)).find((r) => r.nextHop === '10.0.0.2' && r.source === 'bgp')!;
      const block3 = (await routes(lab, 1)).find((r) => r.nextHop === '10.1.0.3' && r.source === 'bgp')!;
      expect(block2.via).toBe('ipip');
      lab.cli(['apply', '-f', '-'], POOL('CrossSubnet'));
      const t0 = Date.now(); // the write is done when the CLI returns
      await waitFor(
        'CrossSubnet on node-1',
        async () => routeFor(await routes(lab, 1), block2.prefix)?.via === 'direct',
        2000,
        20,
      );
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(routeFor(await routes(lab, 1), block3.prefix)?.via).toBe('ipip');
      expect((await ping(w[0].ns, w[1].ip, { count: 3 })).received).toBe(3);
      expect((await ping(w[0].ns, w[2].ip, { count: 3 })).received).toBe(3);
      lab.cli(['apply', '-f', '-'], POOL('Always'));
      await waitFor(
        'Always again',
        async () => routeFor(await routes(lab, 1), block2.prefix)?.via === 'ipip',
        2000,
        20,
      );
    });

    it('survives etcd stopped for 10 s and compacted, and catches up when it returns', async () => {
      await lab.stopEtcd();
      await waitFor(
        'node-1 reports the datastore down',
        async () =>
          ((await lab.api(1, 'status')) as { datastore: { connected: boolean } }).datastore.connected ===
          false,
        10_000,
      );
      // forwarding goes on unchanged while etcd is away
      expect((await ping(w[0].ns, w[1].ip, { count: 5 })).received).toBe(5);
      await sleep(10_000 - 5 * 200);
      await lab.startEtcd();
      await waitFor(
        'node-1 reconnected',
        async () =>
          ((await lab.api(1, 'status')) as { datastore: { connected: boolean } }).datastore.connected,
        15_000,
      );
      const rev = JSON.parse(lab.etcdctl(['endpoint', 'status', '-w', 'json'])) as {
        Status: { header: { revision: number } };
      }[];
      lab.etcdctl(['compact', String(rev[0].Status.header.revision)]);
      lab.cli(['apply', '-f', '-'], POOL('CrossSubnet'));
      for (const k of [1, 3])
        await waitFor(
          `node-${k} follows after the outage and compaction`,
          async () =>
            (await routes(lab, k)).some(
              (r) =>
                r.nextHop === (k === 1 ? '10.0.0.2' : '10.0.0.1') && r.via === (k === 1 ? 'direct' : 'ipip'),
            ),
          5000,
        );
      expect((await ping(w[0].ns, w[1].ip, { count: 3 })).received).toBe(3);
    });

    // (a workload add costs 0.3-1.3 s of `ip` commands and TAP set-up on this shared machine,
    // serialized in one daemon: 25 each keeps the test short; 50 each through the IPAM alone is in
    // etcd.test.ts)
    it('two daemons attaching 25 workloads each at the same moment get distinct addresses, blocks unshared', async () => {
      const added = await Promise.all(
        Array.from({ length: 50 }, (_, i) => lab.addWorkload(1 + (i % 2), undefined, 200_000)),
      );
      const ips = added.map((x) => x.ip);
      expect(new Set(ips).size).toBe(50);
      const blocks = JSON.parse(lab.cli(['get', 'workloadendpoints', '-A', '-o', 'json'])) as {
        items: { spec: { node: string; ipNetworks: string[] } }[];
      };
      // every /26 holds the addresses of one node only
      const owner = new Map<string, string>();
      for (const e of blocks.items) {
        const [a, b, c, d] = e.spec.ipNetworks[0].split('/')[0].split('.').map(Number);
        const block = `${a}.${b}.${c}.${d & 0xc0}`;
        expect(owner.get(block) ?? e.spec.node).toBe(e.spec.node);
        owner.set(block, e.spec.node);
      }
      expect(blocks.items.length).toBe(53);
      expect((await ping(w[1].ns, added[0].ip, { count: 2 })).received).toBe(2);
    }, 240_000);

    it('node delete releases the node: addresses, affinities, endpoints, and its routes elsewhere', async () => {
      await lab.stop(3);
      const out = lab.cli(['node', 'delete', 'node-3']);
      expect(out).toContain("Successfully deleted 1 'Node' resource(s)");
      expect(lab.cli(['get', 'workloadendpoints', '-A'])).not.toContain('node-3');
      expect(lab.etcdctl(['get', '/calico/ipam/v2/host/node-3/', '--prefix', '--keys-only']).trim()).toBe('');
      expect((lab.cli(['ipam', 'show', '--show-blocks']).match(/\| Block /g) ?? []).length).toBe(2);
      await waitFor(
        'node-3 routes gone from node-1',
        async () => !(await routes(lab, 1)).some((r) => r.nextHop === '10.1.0.3'),
        10_000,
      );
      const st = (await lab.api(1, 'status')) as { peers: { peerAddress: string }[] };
      expect(st.peers.map((p) => p.peerAddress)).toEqual(['10.0.0.2']);
    });
  },
);
