// The file datastore in a running daemon: editing the config file reprograms the dataplane live (the
// pool's mode switches a block route from IPIP to direct while pings keep flowing), and a file that
// fails validation is refused with its one-line error while the running state stays as it was.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../../src/lab/lab.js';
import { isRoot, killAll, ping, prefix, routeFor, routes, waitFor, waitPing } from '../live/helpers.js';

describe.skipIf(!isRoot())('file datastore reload in the daemon (requires root: network namespaces)', () => {
  let lab: Lab;
  let w1: { ns: string; ip: string };
  let w2: { ns: string; ip: string };

  beforeAll(async () => {
    lab = Lab.create({ prefix: prefix('fr'), mode: 'ipip', hosts: 2, workers: 1 });
    await lab.start(1);
    await lab.start(2);
    w1 = await lab.addWorkload(1);
    w2 = await lab.addWorkload(2);
    await waitPing(w1.ns, w2.ip, 10_000);
  });

  afterAll(async () => {
    await killAll();
    await lab?.destroyAsync();
  });

  it('applies an edited pool mode live, and traffic keeps flowing', async () => {
    expect(routeFor(await routes(lab, 1), '10.65.0.64/26')?.via).toBe('ipip');
    const text = fs.readFileSync(lab.config, 'utf8');
    fs.writeFileSync(lab.config, text.replace('ipipMode: Always', 'ipipMode: CrossSubnet'));
    await waitFor(
      'direct route on node-1',
      async () => routeFor(await routes(lab, 1), '10.65.0.64/26')?.via === 'direct',
      3000,
      20,
    );
    await waitFor(
      'direct route on node-2',
      async () => routeFor(await routes(lab, 2), '10.65.0.0/26')?.via === 'direct',
      3000,
      20,
    );
    expect((await ping(w1.ns, w2.ip, { count: 3 })).received).toBe(3);
  });

  it('refuses an invalid file with its one-line error and keeps the running state', async () => {
    const good = fs.readFileSync(lab.config, 'utf8');
    fs.writeFileSync(lab.config, good.replace('cidr: 10.65.0.0/16', 'cidr: 10.65.0.1/16'));
    await waitFor(
      'the refusal in the log',
      () => fs.readFileSync(lab.hosts[0].log, 'utf8').includes('config reload refused'),
      3000,
    );
    const line = fs
      .readFileSync(lab.hosts[0].log, 'utf8')
      .split('\n')
      .find((l) => l.includes('config reload refused'))!;
    expect(line).toContain('IPPool lab-pool: spec.cidr 10.65.0.1/16: host bits set');
    expect(routeFor(await routes(lab, 1), '10.65.0.64/26')?.via).toBe('direct');
    expect((await ping(w1.ns, w2.ip, { count: 3 })).received).toBe(3);
    fs.writeFileSync(lab.config, good.replace('ipipMode: CrossSubnet', 'ipipMode: Always'));
    // SIGHUP reloads too (the file watch may get there first; either way the change applies)
    lab.hosts[0].daemon!.kill('SIGHUP');
    await waitFor(
      'ipip again',
      async () => routeFor(await routes(lab, 1), '10.65.0.64/26')?.via === 'ipip',
      3000,
      20,
    );
  });
});
