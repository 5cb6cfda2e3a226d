// Daemon restarts under traffic: a clean restart (SIGTERM) and a crash (SIGKILL) of host 1's calitap
// while a ping (and an iperf3 run) crosses it. The workloads keep their interfaces (persistent TAPs:
// eth0, its address and routes stay in the namespace), the restarted daemon re-attaches them from its
// state file, traffic resumes within 2 s of the daemon being back, and the FIB is exactly what it was
// (a workload deleted before the restart does not come back).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../../src/lab/lab.js';
import {
  bg,
  isRoot,
  killAll,
  ping,
  prefix,
  routes,
  run,
  waitFor,
  waitListening,
  waitPing,
  type Bg,
} from './helpers.js';

type W = { ns: string; ip: string; name: string };

/** Epoch seconds of every echo reply a `ping -D` printed. */
function replyTimes(out: string): number[] {
  const t: number[] = [];
  for (const m of out.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from/gm)) t.push(Number(m[1]));
  return t;
}

interface LinkState {
  addrs: string[];
  routes: string[];
  ifindex: number;
}

async function linkState(ns: string): Promise<LinkState> {
  const a = JSON.parse((await run(ns, ['ip', '-4', '-j', 'addr', 'show', 'dev', 'eth0'])).stdout) as {
    ifindex: number;
    addr_info: { local: string; prefixlen: number }[];
  }[];
  const r = (await run(ns, ['ip', '-4', 'route', 'show'])).stdout;
  return {
    ifindex: a[0]?.ifindex ?? -1,
    addrs: (a[0]?.addr_info ?? []).map((x) => `${x.local}/${x.prefixlen}`),
    // "linkdown" comes and goes with the TAP's carrier while no daemon holds a queue
    routes: r
      .split('\n')
      .map((l) => l.replace(/\s*linkdown\s*/, ' ').trim())
      .filter((l) => l !== '')
      .sort(),
  };
}

describe.skipIf(!isRoot())(
  'daemon restart and crash under traffic (requires root: network namespaces)',
  () => {
    let lab: Lab;
    let w1: W;
    let w1b: W;
    let w2: W;
    let pinger: Bg | null = null;

    beforeAll(async () => {
      lab = Lab.create({ prefix: prefix('rs'), mode: 'ipip', hosts: 2, workers: 1 });
      await lab.start(1);
      await lab.start(2);
      w1 = await lab.addWorkload(1);
      w1b = await lab.addWorkload(1);
      w2 = await lab.addWorkload(2);
      await waitPing(w1.ns, w2.ip, 8000);
      await waitPing(w1.ns, w1b.ip);
    });

    afterAll(async () => {
      await killAll();
      await lab?.destroyAsync();
    });

    /** Restarts host 1's daemon with `signal` while a ping runs; returns seconds until the first reply after it is back. */
    async function restartUnderPing(signal: NodeJS.Signals, during?: () => Promise<void>): Promise<number> {
      const linkBefore = await linkState(w1.ns);
      const routesBefore = await routes(lab, 1);
      const listBefore = await lab.api(1, 'workload.list');
      pinger = bg(w1.ns, ['ping', '-D', '-n', '-i', '0.1', '-W', '1', w2.ip]);
      await waitFor('ping replies before the restart', () => replyTimes(pinger!.stdout).length >= 3, 5000);
      await lab.stop(1, signal);
      // the daemon is gone: the workload still has its interface, address and routes
      expect(await linkState(w1.ns)).toEqual(linkBefore);
      await during?.();
      await lab.start(1);
      const back = Date.now() / 1000;
      const first = await waitFor(
        'a ping reply after the restart',
        () => replyTimes(pinger!.stdout).find((t) => t >= back),
        5000,
      );
      await pinger.stop('SIGINT');
      pinger = null;
      expect(await linkState(w1.ns)).toEqual(linkBefore);
      expect(await routes(lab, 1)).toEqual(routesBefore);
      expect(await lab.api(1, 'workload.list')).toEqual(listBefore);
      // local traffic between two workloads of the restarted host, and the remote host, both work
      expect((await ping(w1.ns, w1b.ip, { count: 2, interval: 0.1 })).received).toBe(2);
      expect((await ping(w2.ns, w1b.ip, { count: 2, interval: 0.1 })).received).toBe(2);
      return first - back;
    }

    it('SIGTERM and start: traffic resumes within 2 s, same interfaces and routes', async () => {
      // a workload deleted before the restart must not come back (state file, no stale /32)
      const gone = await lab.addWorkload(1);
      await lab.api(1, 'workload.del', { name: gone.name });
      // its TAP is gone from its namespace
      expect((await run(gone.ns, ['ip', '-o', 'link', 'show'])).stdout).not.toContain('eth0');
      const rows = await routes(lab, 1);
      expect(rows.some((r) => r.prefix === `${gone.ip}/32`)).toBe(false);
      const resumed = await restartUnderPing('SIGTERM');
      expect(resumed).toBeLessThanOrEqual(2);
      expect((await routes(lab, 1)).some((r) => r.prefix === `${gone.ip}/32`)).toBe(false);
    });

    it('SIGKILL during ping and iperf3: traffic resumes within 2 s, TCP survives, nothing stale', async () => {
      const srv = bg(w2.ns, ['iperf3', '-s', '-1', '-p', '5201']);
      await waitListening(w2.ns, 'tcp', 5201);
      // 12 s: TCP's retransmission backoff (RTO doubling from an RTO that a loaded machine inflates)
      // may leave the flow idle for several seconds after the daemon is back; the last second must
      // still carry data
      const cli = bg(w1.ns, ['iperf3', '-c', w2.ip, '-p', '5201', '-t', '12', '-i', '1', '-J']);
      // let iperf3 get going, then crash the daemon in the middle of it
      const resumed = await restartUnderPing('SIGKILL', async () => {
        await new Promise((r) => setTimeout(r, 200));
      });
      expect(resumed).toBeLessThanOrEqual(2);
      await cli.wait(30_000);
      await srv.wait(5000);
      expect(cli.code, cli.stderr + cli.stdout.slice(-1000)).toBe(0);
      const j = JSON.parse(cli.stdout) as {
        intervals: { sum: { start: number; bytes: number } }[];
        end: { sum_received: { bytes: number } };
      };
      expect(j.end.sum_received.bytes).toBeGreaterThan(0);
      // bytes flowed again after the crash: the last second carried data
      const last = j.intervals[j.intervals.length - 1];
      expect(last.sum.bytes, JSON.stringify(j.intervals.map((i) => i.sum.bytes))).toBeGreaterThan(0);
    });
  },
);
