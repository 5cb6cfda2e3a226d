// Ports come and go without disturbing anyone else (requires root: network namespaces): a flood ping
// between two workloads loses nothing while 20 other workloads are added and deleted (a port change
// swaps the workers' port tables; the graph is built once), and a workload whose namespace is
// deleted behind calitap's back shows up as a device error — logged with the port's name and errno —
// after which the daemon removes its port while the other workloads keep talking.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, sh } from '../../src/lab/lab.js';
import { counters, isRoot, killAll, parsePing, prefix, run, waitFor, waitPing } from './helpers.js';

type W = { ns: string; ip: string; name: string };

interface PortRow {
  port: string;
  txPackets: number;
  txDropped: number;
}

describe.skipIf(!isRoot())('workload churn (requires root: network namespaces)', () => {
  let lab: Lab;
  let w1: W;
  let w2: W;

  beforeAll(async () => {
    lab = Lab.create({ prefix: prefix('ch'), mode: 'ipip', hosts: 1, workers: 2 });
    await lab.start(1);
    w1 = await lab.addWorkload(1);
    w2 = await lab.addWorkload(1);
    await waitPing(w1.ns, w2.ip);
  }, 60_000);

  afterAll(async () => {
    await killAll();
    await lab?.destroyAsync();
  });

  it('a flood ping between two workloads loses nothing while 20 others are added and deleted', async () => {
    let churning = true;
    const churn = (async () => {
      try {
        const others: W[] = [];
        for (let k = 0; k < 20; k++) others.push(await lab.addWorkload(1));
        for (const o of others) await lab.api(1, 'workload.del', { name: o.name });
      } finally {
        churning = false;
      }
    })();
    const floods: { sent: number; received: number }[] = [];
    // back-to-back flood pings (each waits for its last replies) for as long as the churn lasts
    while (churning) {
      const p = await run(w1.ns, ['ping', '-n', '-q', '-f', '-c', '1000', '-W', '2', w2.ip], 60_000);
      floods.push(parsePing(p.stdout + p.stderr));
    }
    await churn;
    const sent = floods.reduce((a, f) => a + f.sent, 0);
    const received = floods.reduce((a, f) => a + f.received, 0);
    expect(floods.length).toBeGreaterThan(1);
    expect(sent).toBe(floods.length * 1000);
    expect(received).toBe(sent);
    const list = (await lab.api(1, 'workload.list')) as { name: string }[];
    expect(list.map((x) => x.name).sort()).toEqual([w1.name, w2.name].sort());
    // nothing was refused on the way either
    const st = (await lab.api(1, 'stats')) as { ports: PortRow[] };
    for (const p of st.ports) expect(p.txDropped, p.port).toBe(0);
  }, 180_000);

  it('a workload whose namespace is deleted: device error logged with port and errno, port removed', async () => {
    const w3 = await lab.addWorkload(1);
    await waitPing(w3.ns, w1.ip);
    const tap = ((await lab.api(1, 'workload.list')) as { name: string; tap: string }[]).find(
      (x) => x.name === w3.name,
    )!.tap;
    sh('ip', ['netns', 'del', w3.ns]);
    await waitFor(
      'the daemon removed the workload',
      async () =>
        !((await lab.api(1, 'workload.list')) as { name: string }[]).some((x) => x.name === w3.name),
      10_000,
    );
    // the daemon's log is written asynchronously (pino over sonic-boom): wait for the line
    const gone = `workload ${w3.name}: namespace ${w3.ns} is gone; removing its port`;
    const log = await waitFor('the removal in the log', () => {
      const text = fs.readFileSync(lab.hosts[0].log, 'utf8');
      return text.includes(gone) ? text : null;
    });
    expect(log).toMatch(new RegExp(`port ${tap}: (read|write) failed: EBADFD \\(errno 77\\)`));
    const c = await counters(lab, 1);
    expect((c.get('port-input: read-error') ?? 0) + (c.get('port-output: write-error') ?? 0)).toBeGreaterThan(
      0,
    );
    // everyone else is unaffected
    const p = await run(w1.ns, ['ping', '-n', '-q', '-f', '-c', '500', '-W', '2', w2.ip], 30_000);
    expect(parsePing(p.stdout).received).toBe(500);
  }, 60_000);
});
