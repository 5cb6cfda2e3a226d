// Path MTU across a tunnel: workloads get the tunnel MTU, but a workload whose eth0 is raised to 1500
// sends packets that do not fit once encapsulated. calitap answers a DF packet that is too big with
// ICMP fragmentation-needed carrying the tunnel MTU (1480 IPIP, 1450 VXLAN), the sender's kernel
// caches it, and TCP between two such workloads still works by PMTU discovery.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, type LabMode } from '../../src/lab/lab.js';
import {
  bg,
  counters,
  delta,
  isRoot,
  killAll,
  ping,
  prefix,
  run,
  waitListening,
  waitPing,
} from './helpers.js';

type W = { ns: string; ip: string; name: string };

const CASES: { mode: LabMode; tag: string; mtu: number }[] = [
  { mode: 'ipip', tag: 'pi', mtu: 1480 },
  { mode: 'vxlan', tag: 'pv', mtu: 1450 },
];

/** Sends `data` from `from` to an nc server in `to` over TCP; returns what arrived. */
async function transfer(to: W, from: W, port: number, data: Buffer): Promise<Buffer> {
  const srv = bg(to.ns, ['nc', '-n', '-l', String(port)]);
  try {
    await waitListening(to.ns, 'tcp', port);
    const cli = await run(from.ns, ['nc', '-n', '-N', '-w', '5', to.ip, String(port)], 20_000, data);
    expect(cli.code, cli.stderr).toBe(0);
    await srv.wait(10_000);
    return Buffer.from(srv.stdout, 'latin1');
  } finally {
    await srv.stop('SIGKILL');
  }
}

function cachedMtu(out: string): number | undefined {
  const m = /\bmtu (\d+)/.exec(out);
  return m ? Number(m[1]) : undefined;
}

for (const c of CASES) {
  describe.skipIf(!isRoot())(`path MTU over ${c.mode} (requires root: network namespaces)`, () => {
    let lab: Lab;
    let w1: W;
    let w2: W;

    beforeAll(async () => {
      lab = Lab.create({ prefix: prefix(c.tag), mode: c.mode, hosts: 2, workers: 1 });
      await lab.start(1);
      await lab.start(2);
      w1 = await lab.addWorkload(1);
      w2 = await lab.addWorkload(2);
      await waitPing(w1.ns, w2.ip, 8000);
    });

    afterAll(async () => {
      await killAll();
      await lab?.destroyAsync();
    });

    it(`workloads start with the tunnel MTU; a full-size DF ping fits`, async () => {
      const j = JSON.parse((await run(w1.ns, ['ip', '-j', 'link', 'show', 'eth0'])).stdout) as {
        mtu: number;
      }[];
      expect(j[0].mtu).toBe(c.mtu);
      const r = await ping(w1.ns, w2.ip, { count: 2, interval: 0.1, size: c.mtu - 28, df: true });
      expect(r.received, r.out).toBe(2);
    });

    it(`answers a too-big DF packet with fragmentation-needed (mtu = ${c.mtu}); the sender caches it`, async () => {
      await run(w1.ns, ['ip', 'link', 'set', 'eth0', 'mtu', '1500']);
      await run(w1.ns, ['ip', 'route', 'flush', 'cache']);
      const before = await counters(lab, 1);
      const r = await ping(w1.ns, w2.ip, { count: 1, size: 1472, df: true });
      expect(r.received, r.out).toBe(0);
      expect(r.out).toContain(`Frag needed and DF set (mtu = ${c.mtu})`);
      const d = delta(before, await counters(lab, 1));
      expect(d['ip4-rewrite: fragmentation-needed'], JSON.stringify(d)).toBeGreaterThanOrEqual(1);
      expect(d['ip4-icmp-error: sent-unreachable'], JSON.stringify(d)).toBeGreaterThanOrEqual(1);
      // the kernel's PMTU cache now holds the tunnel MTU for w2
      expect(cachedMtu((await run(w1.ns, ['ip', 'route', 'get', w2.ip])).stdout)).toBe(c.mtu);
      // the same size now fails locally, without reaching calitap...
      const again = await ping(w1.ns, w2.ip, { count: 1, size: 1472, df: true });
      expect(again.received).toBe(0);
      expect(again.out).toMatch(new RegExp(`message too long, mtu=${c.mtu}`));
      // ...and the largest size that fits goes through
      const fits = await ping(w1.ns, w2.ip, { count: 2, interval: 0.1, size: c.mtu - 28, df: true });
      expect(fits.received, fits.out).toBe(2);
    });

    it('fragments a too-big packet without DF before encapsulating it', async () => {
      await run(w1.ns, ['ip', 'link', 'set', 'eth0', 'mtu', '1500']);
      await run(w1.ns, ['ip', 'route', 'flush', 'cache']);
      const before = await counters(lab, 1);
      const r = await ping(w1.ns, w2.ip, { count: 2, interval: 0.1, size: 1472, pmtudisc: 'dont' });
      expect(r.received, r.out).toBe(2);
      const d = delta(before, await counters(lab, 1));
      expect(d['ip4-rewrite: fragmented'], JSON.stringify(d)).toBeGreaterThanOrEqual(2);
      expect(d['ip4-rewrite: fragmentation-needed'] ?? 0, JSON.stringify(d)).toBe(0);
    });

    it('carries 1 MB of TCP each way between workloads with MTU 1500 (PMTU discovery)', async () => {
      for (const w of [w1, w2]) {
        await run(w.ns, ['ip', 'link', 'set', 'eth0', 'mtu', '1500']);
        await run(w.ns, ['ip', 'route', 'flush', 'cache']);
      }
      const before = await counters(lab, 1);
      const data = randomBytes(1 << 20);
      const got = await transfer(w2, w1, 7200, data);
      expect(got.length).toBe(data.length);
      expect(got.equals(data)).toBe(true);
      // full-size segments (MSS 1460 both ways) had to be refused once, then PMTUD took over
      const d = delta(before, await counters(lab, 1));
      expect(d['ip4-rewrite: fragmentation-needed'], JSON.stringify(d)).toBeGreaterThanOrEqual(1);
      expect(cachedMtu((await run(w1.ns, ['ip', 'route', 'get', w2.ip])).stdout)).toBe(c.mtu);
      // the other way, through host 2: forget the cached PMTU first (w1 would advertise MSS 1440)
      for (const w of [w1, w2]) await run(w.ns, ['ip', 'route', 'flush', 'cache']);
      const before2 = await counters(lab, 2);
      const back = randomBytes(1 << 20);
      const got2 = await transfer(w1, w2, 7201, back);
      expect(got2.equals(back)).toBe(true);
      const d2 = delta(before2, await counters(lab, 2));
      expect(d2['ip4-rewrite: fragmentation-needed'], JSON.stringify(d2)).toBeGreaterThanOrEqual(1);
      expect(cachedMtu((await run(w2.ns, ['ip', 'route', 'get', w1.ip])).stdout)).toBe(c.mtu);
    });
  });
}
