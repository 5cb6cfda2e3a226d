// Live reconfiguration without worker restarts (file datastore in running daemons): while a ping flood
// runs between two workloads on two hosts, the config file gains a node (a new tunnel peer) and a new
// pool with natOutgoing (the first one: no NAT table existed, and its CIDR is new to the uplink
// filter). Not one ping is lost, no worker restarts, the daemons keep running; then the new node's
// workload is reached over IPIP and the new pool's workload reaches the "internet" server through SNAT
// (the router has no route back to the pool: only a masqueraded ping gets its reply).
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, sh } from '../../src/lab/lab.js';
import {
  isRoot,
  killAll,
  ping,
  prefix,
  routeFor,
  routes,
  udpSend,
  waitFor,
  waitPing,
} from '../live/helpers.js';

const SERVER = '203.0.113.10';
const NEW_POOL = [
  'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: new-pool}\nspec: {cidr: 10.70.0.0/16, blockSize: 26, ipipMode: Always, vxlanMode: Never, natOutgoing: true}',
  'apiVersion: projectcalico.org/v3\nkind: BlockAffinity\nmetadata: {name: node-1-new}\nspec: {node: node-1, cidr: 10.70.0.0/26}',
].join('\n---\n');

describe.skipIf(!isRoot())(
  'live DataplaneParams in running daemons (requires root: network namespaces)',
  () => {
    let lab: Lab;
    let full: string;
    let w1: { ns: string; ip: string };
    let w2: { ns: string; ip: string };

    beforeAll(async () => {
      lab = Lab.create({ prefix: prefix('lp'), mode: 'ipip', hosts: 3, workers: 2 });
      // start without node-3 and without any natOutgoing pool (so no NAT table exists)
      full = fs.readFileSync(lab.config, 'utf8').replace('natOutgoing: true', 'natOutgoing: false');
      const docs = full.trim().split('\n---\n');
      fs.writeFileSync(lab.config, docs.filter((d) => !d.includes('node-3')).join('\n---\n') + '\n');
      await lab.start(1);
      await lab.start(2);
      w1 = await lab.addWorkload(1);
      w2 = await lab.addWorkload(2);
      await waitPing(w1.ns, w2.ip, 10_000);
    }, 60_000);

    afterAll(async () => {
      await killAll();
      await lab?.destroyAsync();
    });

    it('adds a node and a natOutgoing pool under a ping flood: 0 lost, no restart', async () => {
      const daemons = lab.hosts.slice(0, 2).map((h) => h.daemon);
      const flood = ping(w1.ns, w2.ip, { count: 800, interval: 0.005, wait: 2 });
      await new Promise((r) => setTimeout(r, 1000));
      fs.writeFileSync(lab.config, `${full.trim()}\n---\n${NEW_POOL}\n`);
      for (const k of [1, 2]) {
        await waitFor(
          `node-3's block on node-${k}`,
          async () => routeFor(await routes(lab, k), '10.65.0.128/26')?.via === 'ipip',
          5000,
          20,
        );
        await waitFor(
          `params applied on node-${k}`,
          () => fs.readFileSync(lab.hosts[k - 1].log, 'utf8').includes('dataplane parameters updated live'),
          5000,
        );
      }
      const r = await flood;
      expect(r.sent).toBe(800);
      expect(r.received).toBe(800);
      for (const k of [1, 2]) {
        const log = fs.readFileSync(lab.hosts[k - 1].log, 'utf8');
        expect(log).not.toContain('restarting dataplane workers');
        expect(log).not.toContain('worker exited');
        expect(log).toMatch(/"why":"tunnelPeers, pools, nat"/);
        expect(lab.hosts[k - 1].daemon).toBe(daemons[k - 1]);
        expect(daemons[k - 1]!.exitCode).toBeNull();
        const workers = (await lab.api(k, 'workers')) as { restarts: number }[];
        expect(workers.map((w) => w.restarts)).toEqual([0, 0]);
      }
    }, 60_000);

    it('the new node is a tunnel peer and the new pool reaches the outside through SNAT', async () => {
      await lab.start(3);
      const w3 = await lab.addWorkload(3);
      await waitPing(w1.ns, w3.ip, 10_000); // node-1 decapsulates node-3's IPIP: it is a peer now
      const wn = await lab.addWorkload(1, '10.70.0.2');
      expect(wn.ip).toBe('10.70.0.2');
      await waitPing(wn.ns, SERVER, 10_000);
      expect((await ping(wn.ns, SERVER, { count: 3 })).received).toBe(3);
      expect((await ping(wn.ns, w2.ip, { count: 3 })).received).toBe(3); // and the old pool, unmasqueraded
      // plain (not tunnelled) traffic to the new pool from the uplink passes node-1's uplink filter,
      // which was replaced live (the router is given a route to the new block through node-1)
      const router = `${lab.o.prefix}r`;
      sh('ip', ['-n', router, 'route', 'add', '10.70.0.0/26', 'via', lab.hosts[0].ip]);
      expect(await udpSend(wn.ns, router, wn.ip, 9099, 'through-the-new-filter')).toContain(
        'through-the-new-filter',
      );
      expect(fs.readFileSync(lab.hosts[0].log, 'utf8')).not.toContain('uplink filter not updated');
    }, 60_000);
  },
);
