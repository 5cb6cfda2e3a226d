// DatastoreSync (src/control/daemon/datastore-sync.ts) over the memory datastore: joining an empty
// datastore writes what calico-node writes; watch events rebuild the cluster config; a lost watch
// re-lists and applies what changed meanwhile (status says down until then), and so does compaction.
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { MemoryDatastore } from '../../src/control/datastore/memory.js';
import { ResourceClient } from '../../src/control/datastore/resources.js';
import { defaultPool } from '../../src/control/datastore/defaults.js';
import { DatastoreSync, joinCluster } from '../../src/control/daemon/datastore-sync.js';
import type { ClusterConfig } from '../../src/control/config/types.js';
import { waitFor } from '../live/helpers.js';

const log = pino({ level: 'silent' });

describe('joining and following a datastore', () => {
  it('joins an empty datastore like calico-node', async () => {
    const ds = new MemoryDatastore();
    const j = await joinCluster(ds, {
      node: 'n1',
      ip: '10.0.0.1/24',
      env: { CALICO_IPV4POOL_VXLAN: 'Always' },
      log,
    });
    const keys = ds.listSync('/calico/').kvs.map((kv) => kv.key);
    expect(keys).toEqual(
      expect.arrayContaining([
        '/calico/resources/v3/projectcalico.org/clusterinformations/default',
        '/calico/resources/v3/projectcalico.org/felixconfigurations/default',
        '/calico/resources/v3/projectcalico.org/bgpconfigurations/default',
        '/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool',
        '/calico/resources/v3/projectcalico.org/nodes/n1',
        '/calico/ipam/v2/config',
        '/calico/ipam/v2/handle/vxlan-tunnel-addr-n1',
      ]),
    );
    expect(j.cfg.pools[0]).toMatchObject({
      name: 'default-ipv4-ippool',
      vxlanMode: 'Always',
      ipipMode: 'Never',
      natOutgoing: true,
    });
    const me = j.cfg.nodes.get('n1')!;
    expect(me.bgpAddress).toEqual({ ip: 0x0a000001, len: 24 });
    expect(me.vxlanTunnelAddr! >>> 16).toBe(0xc0a8); // from 192.168.0.0/16
    expect(j.cfg.affinities.map((a) => a.node)).toEqual(['n1']);
    // joining again changes nothing
    const rev = ds.revision;
    await joinCluster(ds, { node: 'n1', ip: '10.0.0.1/24', env: {}, log });
    expect(ds.revision).toBe(rev);
  });

  it('follows changes, re-lists after a lost watch and after compaction', async () => {
    const ds = new MemoryDatastore();
    const j = await joinCluster(ds, { node: 'n1', ip: '10.0.0.1/24', env: {}, log });
    const seen: ClusterConfig[] = [];
    const sync = new DatastoreSync(ds, j.model, (c) => seen.push(c), log, 0);
    sync.start(j.revision);
    const rc = new ResourceClient(ds);
    const setMode = async (m: string) => {
      const p = defaultPool({});
      (p.spec as Record<string, unknown>).ipipMode = m;
      await rc.apply(p);
    };
    await setMode('CrossSubnet');
    await waitFor('CrossSubnet', () => seen.at(-1)?.pools[0].ipipMode === 'CrossSubnet', 2000, 5);
    ds.breakWatches();
    await waitFor('down', () => !sync.status().connected, 2000, 5);
    await setMode('Never'); // while nobody watches
    await waitFor(
      're-listed',
      () => sync.status().connected && seen.at(-1)?.pools[0].ipipMode === 'Never',
      5000,
      20,
    );
    // compaction: the next watch starts after the compacted revision, so only a re-list can catch up
    ds.breakWatches();
    await setMode('Always');
    ds.compact();
    await waitFor('after compaction', () => seen.at(-1)?.pools[0].ipipMode === 'Always', 5000, 20);
    sync.stop();
  });
});
