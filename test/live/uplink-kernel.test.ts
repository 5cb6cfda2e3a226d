// No calitap/v1 Uplink resources: each daemon takes its uplink from the host's kernel — the interface
// holding the node IP, its MTU, and the default route's gateway — and routes as usual: across the
// subnet, across the router (IPIP) and out through natOutgoing via that gateway.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../../src/lab/lab.js';
import { isRoot, killAll, ping, prefix, routeFor, routes, waitPing } from './helpers.js';

type W = { ns: string; ip: string; name: string };

describe.skipIf(!isRoot())('uplink from the kernel (requires root: network namespaces)', () => {
  let lab: Lab;
  let w1: W;
  let w3: W;

  beforeAll(async () => {
    lab = Lab.create({ prefix: prefix('uk'), mode: 'ipip', hosts: 3, workers: 1, noUplinkResources: true });
    expect(fs.readFileSync(lab.config, 'utf8')).not.toContain('kind: Uplink');
    for (const k of [1, 3]) await lab.start(k);
    w1 = await lab.addWorkload(1);
    w3 = await lab.addWorkload(3);
  });

  afterAll(async () => {
    await killAll();
    await lab?.destroyAsync();
  });

  it('finds the interface holding the node IP and the default gateway, and says so', async () => {
    const log1 = fs.readFileSync(lab.hosts[0].log, 'utf8');
    expect(log1).toContain('from the kernel: uplink interface up0 (holds 10.0.0.1), mtu 1500');
    expect(log1).toContain("from the kernel: gateway 10.0.0.254 (the kernel's default route on up0)");
    expect(fs.readFileSync(lab.hosts[2].log, 'utf8')).toContain('gateway 10.1.0.254');
    expect(routeFor(await routes(lab, 1), '0.0.0.0/0')).toMatchObject({
      via: 'gateway',
      nextHop: '10.0.0.254',
      port: 'up0',
    });
  });

  it('routes across the router (IPIP) and out through natOutgoing', async () => {
    await waitPing(w1.ns, w3.ip, 8000);
    expect((await ping(w3.ns, w1.ip, { count: 3, interval: 0.1 })).received).toBe(3);
    await waitPing(w1.ns, '203.0.113.10', 8000);
  });
});
