// The daemon's BGP: three `calitap run` hosts form Calico's node-to-node mesh (the side whose peer has
// the greater IP is passive), learn each other's blocks with source `bgp` (encapsulated per the
// pool's CrossSubnet mode: direct within the subnet, IPIP across the router), carry traffic over
// them, and drop a node's routes when it shuts down (Cease: no graceful-restart hold).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../../src/lab/lab.js';
import { isRoot, killAll, ping, prefix, routeFor, routes, waitFor, waitPing } from './helpers.js';

type W = { ns: string; ip: string; name: string };

describe.skipIf(!isRoot())('BGP mesh between calitap daemons (requires root: network namespaces)', () => {
  let lab: Lab;
  let w1: W;
  let w3: W;

  beforeAll(async () => {
    lab = Lab.create({ prefix: prefix('bm'), mode: 'ipip-crosssubnet', hosts: 3, workers: 1, bgp: true });
    for (const k of [1, 2, 3]) await lab.start(k);
    w1 = await lab.addWorkload(1);
    w3 = await lab.addWorkload(3);
  });

  afterAll(async () => {
    await killAll();
    await lab?.destroyAsync();
  });

  it('every session is established, as calicoctl node status shows it', async () => {
    await waitFor(
      'mesh established on node-1',
      async () => {
        const st = (await lab.api(1, 'status')) as { peers: { state: string; info: string }[] };
        return st.peers.length === 2 && st.peers.every((p) => p.state === 'up' && p.info === 'Established');
      },
      20_000,
    );
    const st = (await lab.api(1, 'status')) as { peers: { peerAddress: string; peerType: string }[] };
    expect(st.peers.map((p) => p.peerAddress).sort()).toEqual(['10.0.0.2', '10.1.0.3']);
    expect(st.peers.every((p) => p.peerType === 'node-to-node mesh')).toBe(true);
  });

  it('learns the other blocks over BGP, encapsulated per CrossSubnet, and carries traffic', async () => {
    await waitFor(
      'both remote blocks learned',
      async () => (await routes(lab, 1)).filter((r) => r.source === 'bgp').length === 2,
      20_000,
    );
    const rows = await routes(lab, 1);
    expect(routeFor(rows, '10.65.0.64/26')).toMatchObject({
      via: 'direct',
      nextHop: '10.0.0.2',
      source: 'bgp',
    });
    expect(routeFor(rows, '10.65.0.128/26')).toMatchObject({
      via: 'ipip',
      nextHop: '10.1.0.3',
      source: 'bgp',
    });
    // no config-derived routes to other nodes' blocks when BGP brings them
    expect(rows.filter((r) => r.source === 'ipam' && r.via !== 'blackhole')).toEqual([]);
    await waitPing(w1.ns, w3.ip, 10_000);
    expect((await ping(w3.ns, w1.ip, { count: 3, interval: 0.1 })).received).toBe(3);
  });

  it('a node that shuts down takes its routes with it', async () => {
    await lab.stop(3, 'SIGTERM');
    await waitFor(
      "node-3's block withdrawn on node-1",
      async () => routeFor(await routes(lab, 1), '10.65.0.128/26') === undefined,
      15_000,
    );
    expect(routeFor(await routes(lab, 1), '10.65.0.64/26')?.source).toBe('bgp');
  });
});
