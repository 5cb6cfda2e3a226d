// Worker threads dying and coming back, and the Prometheus endpoint: a worker that dies (here: made
// to throw through a test-only control hook, CALITAP_TEST_HOOKS=1, which workers obey only then) is
// restarted with the same fds and counters, the daemon logs why, and traffic through its queues
// resumes. `--metrics` serves the summed counters on 127.0.0.1 inside the host's namespace.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../../src/lab/lab.js';
import { counters, isRoot, killAll, ping, prefix, run, waitFor, waitPing } from './helpers.js';

type W = { ns: string; ip: string; name: string };
const METRICS_PORT = 9471;

describe.skipIf(!isRoot())('worker restarts and metrics (requires root: network namespaces)', () => {
  let lab: Lab;
  let w1: W;
  let w2: W;

  beforeAll(async () => {
    lab = Lab.create({
      prefix: prefix('wk'),
      mode: 'ipip',
      hosts: 1,
      workers: 2,
      daemonArgs: ['--metrics', String(METRICS_PORT)],
      daemonEnv: { CALITAP_TEST_HOOKS: '1' },
    });
    await lab.start(1);
    w1 = await lab.addWorkload(1);
    w2 = await lab.addWorkload(1);
    await waitPing(w1.ns, w2.ip);
  });

  afterAll(async () => {
    await killAll();
    await lab?.destroyAsync();
  });

  it('restarts every worker that dies; counters carry on; traffic resumes', async () => {
    const before = await counters(lab, 1);
    const replied = before.get('arp-reply: replied') ?? 0;
    for (const id of [0, 1]) await lab.api(1, 'test.crash-worker', { id });
    await waitFor(
      'both workers restarted',
      async () => {
        const ws = (await lab.api(1, 'workers')) as { running: boolean; restarts: number }[];
        return ws.every((w) => w.running && w.restarts >= 1);
      },
      10_000,
    );
    const log = fs.readFileSync(lab.hosts[0].log, 'utf8');
    expect(log).toContain('crash requested through the control API');
    expect(log).toContain('worker exited; restarting it');
    // traffic through both queues of both TAPs again
    await waitPing(w1.ns, w2.ip, 5000);
    const r = await ping(w2.ns, w1.ip, { count: 5, interval: 0.05 });
    expect(r.received).toBe(5);
    // the restarted workers kept their predecessors' counters
    const after = await counters(lab, 1);
    expect(after.get('arp-reply: replied') ?? 0).toBeGreaterThanOrEqual(replied);
  });

  it('serves Prometheus metrics with the summed counters on 127.0.0.1', async () => {
    await ping(w1.ns, w2.ip, { count: 2, interval: 0.05 });
    const script = `fetch('http://127.0.0.1:${METRICS_PORT}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`;
    const res = await run(lab.hosts[0].ns, [process.execPath, '-e', script], 10_000);
    expect(res.stdout).toContain('# TYPE calitap_port_packets gauge');
    expect(res.stdout).toMatch(/calitap_port_packets\{port="cali[0-9a-f]{11}",direction="rx"\} [1-9]/);
    expect(res.stdout).toMatch(/calitap_node_counter\{node="arp-reply",reason="replied"\} [1-9]/);
    // per-port transmit refusals by reason (none here)
    expect(res.stdout).toContain('# TYPE calitap_port_tx_dropped gauge');
    expect(res.stdout).toMatch(/calitap_port_tx_dropped\{port="cali[0-9a-f]{11}",reason="queue-full"\} 0/);
  });
});
