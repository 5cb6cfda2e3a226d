// GRO on the uplink (the operator's NIC setting; Lab uplinkGro turns it on for the hosts' veths),
// end to end (root: network namespaces). The kernel coalesces received TCP before calitap's AF_PACKET
// socket: for IPIP Always the kernel's IPIP GRO hands over IPIP-carried super-frames (counted as
// port-input gso-tunnel-received), which calitap decapsulates whole and writes to the workload's TAP
// as one GSO frame; for Never plain TCP super-frames (gso-received). VXLAN over the packet uplink is
// not coalesced by the kernel (its VXLAN GRO needs a kernel VXLAN socket on the port): it must still
// carry the data intact. Each path carries 1.2 MB each way (length + sha256; the receiving kernel
// completes and verifies the checksums).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { Lab, type LabMode } from '../../src/lab/lab.js';
import { counters, delta, isRoot, killAll, prefix, tcpTransfer, waitPing } from './helpers.js';

type W = { ns: string; ip: string; name: string };

function intact(data: string): { bytes: number; sha256: string } {
  return { bytes: Buffer.byteLength(data), sha256: createHash('sha256').update(data).digest('hex') };
}

function payload(tag: string): string {
  let s = '';
  for (let k = 0; s.length < 1_200_000; k++) s += `${tag} line ${k} ${'z'.repeat(40)}\n`;
  return s;
}

function sum(ds: Record<string, number>[], key: string): number {
  return ds.reduce((a, d) => a + (d[key] ?? 0), 0);
}

describe.skipIf(!isRoot())('GRO on the uplink (requires root: network namespaces)', () => {
  afterAll(async () => {
    await killAll();
  });

  for (const [mode, port, tag] of [
    ['ipip', 7201, 'ti'],
    ['never', 7202, 'tn'],
    ['vxlan', 7203, 'tv'],
  ] as const satisfies readonly (readonly [LabMode, number, string])[]) {
    describe(mode, () => {
      let lab: Lab;
      let w1: W;
      let w2: W;

      beforeAll(async () => {
        lab = Lab.create({ prefix: prefix(tag), mode, hosts: 2, workers: 1, uplinkGro: true });
        for (const k of [1, 2]) await lab.start(k);
        w1 = await lab.addWorkload(1);
        w2 = await lab.addWorkload(2);
        await waitPing(w1.ns, w2.ip, 8000);
      });

      afterAll(async () => {
        await lab?.destroyAsync();
      });

      it('1.2 MB each way intact; what the uplinks received coalesced', async () => {
        const before = [await counters(lab, 1), await counters(lab, 2)];
        const up = payload('up');
        const down = payload('down');
        const r = await tcpTransfer(w2.ns, w1.ns, w2.ip, port, up, down);
        expect(r.serverGot, 'upload').toEqual(intact(up));
        expect(r.clientGot, 'download').toEqual(intact(down));
        const d = [delta(before[0], await counters(lab, 1)), delta(before[1], await counters(lab, 2))];
        const why = JSON.stringify(d);
        expect(sum(d, 'port-output: refused'), why).toBe(0);
        expect(sum(d, 'port-input: gso-unsupported'), why).toBe(0);
        expect(sum(d, 'ip4-rewrite: gso-segmentation-failed'), why).toBe(0);
        if (mode === 'ipip') {
          // super-frames inside IPIP, from the kernel's IPIP GRO, decapsulated whole
          expect(sum(d, 'port-input: gso-tunnel-received'), why).toBeGreaterThan(0);
        } else if (mode === 'never') {
          expect(sum(d, 'port-input: gso-received'), why).toBeGreaterThan(0);
        } else {
          expect(sum(d, 'port-input: gso-tunnel-received'), why).toBe(0);
        }
      });
    });
  }
});
