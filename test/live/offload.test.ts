// TAP offloads (on by default; the old `--tap-offload` is accepted as a no-op): workload TAPs with
// IFF_VNET_HDR and TSO, so workloads send 64 KiB TCP super-frames. Each path a super-frame can take must deliver the bytes intact:
//  - same host: handed whole to the other TAP (its kernel takes GSO),
//  - to a node on the subnet (CrossSubnet → direct): handed whole to the uplink socket, whose kernel
//    segments it,
//  - across the router (IPIP): encapsulated once, segmented natively by the packet uplink at write
//    time (devices/tunnel-seg.ts: segmentTcp4 with the fused IPIP outer header, one sendmmsg),
//  - natOutgoing to the server: SNAT rewrites the partial (pseudo-header) checksum, then the uplink.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Lab, nsExec } from '../../src/lab/lab.js';
import { counters, delta, isRoot, killAll, prefix, tcpTransfer, waitPing } from './helpers.js';

type W = { ns: string; ip: string; name: string };

/** What an intact transfer of `data` reports. */
function intact(data: string): { bytes: number; sha256: string } {
  return { bytes: Buffer.byteLength(data), sha256: createHash('sha256').update(data).digest('hex') };
}

/** ~1.2 MB of numbered lines: large writes the workload's TCP turns into TSO super-frames. */
function payload(tag: string): string {
  let s = '';
  for (let k = 0; s.length < 1_200_000; k++) s += `${tag} line ${k} ${'x'.repeat(40)}\n`;
  return s;
}

describe.skipIf(!isRoot())(
  'TAP offloads: TSO super-frames on every path (requires root: network namespaces)',
  () => {
    let lab: Lab;
    let w1: W;
    let w2: W;
    let w3: W;
    let w4: W;

    beforeAll(async () => {
      lab = Lab.create({
        prefix: prefix('of'),
        mode: 'ipip-crosssubnet',
        hosts: 3,
        workers: 2,
        daemonArgs: ['--tap-offload'],
      });
      for (const k of [1, 2, 3]) await lab.start(k);
      w1 = await lab.addWorkload(1);
      w2 = await lab.addWorkload(1);
      w3 = await lab.addWorkload(2);
      w4 = await lab.addWorkload(3);
      for (const w of [w2, w3, w4]) await waitPing(w1.ns, w.ip, 8000);
    });

    afterAll(async () => {
      await killAll();
      await lab?.destroyAsync();
    });

    for (const [what, target, port] of [
      ['same host (super-frames handed whole to the TAP)', () => w2, 7001],
      ['same subnet, direct (the uplink kernel segments)', () => w3, 7002],
      ['across the router, IPIP (segmented natively by the uplink)', () => w4, 7003],
    ] as const) {
      it(`1.2 MB each way intact: ${what}`, async () => {
        const up = payload('up');
        const down = payload('down');
        const t = target();
        const r = await tcpTransfer(t.ns, w1.ns, t.ip, port, up, down);
        expect(r.serverGot, 'upload').toEqual(intact(up));
        expect(r.clientGot, 'download').toEqual(intact(down));
      });
    }

    it('the IPIP path kept super-frames whole in the graph (the uplink segments) and none failed', async () => {
      const c = await counters(lab, 1);
      expect(c.get('ip4-rewrite: gso-segmented') ?? 0).toBe(0);
      expect(c.get('port-output: tunnel-segmented') ?? 0).toBeGreaterThan(0);
      expect(c.get('port-output: refused') ?? 0).toBe(0);
      expect(c.get('ip4-rewrite: gso-segmentation-failed') ?? 0).toBe(0);
      expect(c.get('port-input: gso-unsupported') ?? 0).toBe(0);
    });

    it('natOutgoing: 1.2 MB each way through SNAT (partial checksums rewritten both ways)', async () => {
      const srv = `${lab.o.prefix}srv`;
      const before = await counters(lab, 1);
      const up = payload('nat');
      const down = payload('natdown');
      const r = await tcpTransfer(srv, w1.ns, '203.0.113.10', 7004, up, down);
      expect(r.serverGot, 'upload').toEqual(intact(up));
      expect(r.clientGot, 'download').toEqual(intact(down));
      expect(r.serverSawPeer).toBe('10.0.0.101');
      expect(delta(before, await counters(lab, 1))['snat4-in2out: translated'] ?? 0).toBeGreaterThan(0);
    });

    it('iperf3 same host completes (throughput is measured by npm run bench:live, not here)', async () => {
      const s = spawn('ip', ['netns', 'exec', w2.ns, 'iperf3', '-s', '-1'], { stdio: 'ignore' });
      try {
        await new Promise((r) => setTimeout(r, 300));
        const out = nsExec(w1.ns, ['iperf3', '-c', w2.ip, '-t', '1', '-J'], { allowFail: true });
        const j = JSON.parse(out) as { end: { sum_received: { bytes: number } } };
        expect(j.end.sum_received.bytes).toBeGreaterThan(0);
      } finally {
        s.kill('SIGKILL');
      }
    });
  },
);
