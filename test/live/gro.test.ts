// Receive coalescing (GRO) into workload TAPs, end to end (root: network namespaces). With TAP
// offloads on, TCP segments bound for a workload leave calitap as 64 KiB super-frames (virtio GSO
// header, partial checksum), whatever path brought them: same host (the sender's TSO turned off so
// it sends MSS-sized segments), direct from the uplink (CrossSubnet, same subnet), decapsulated IPIP
// (across the router) and decapsulated VXLAN (both merged on input, before the graph: gro-input.ts). (Senders on the same subnet have their TSO turned off:
// a veth uplink carries super-frames whole, which need no coalescing.) Each path must show merges in the receiving host's
// `tcp4-gro` counters and carry 1.2 MB each way intact (length + sha256; the receiving kernel
// verifies the checksums: a super-frame's partial checksum is completed by it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { Lab, nsExec } from '../../src/lab/lab.js';
import { counters, delta, isRoot, killAll, prefix, tcpTransfer, waitPing } from './helpers.js';

type W = { ns: string; ip: string; name: string };

function intact(data: string): { bytes: number; sha256: string } {
  return { bytes: Buffer.byteLength(data), sha256: createHash('sha256').update(data).digest('hex') };
}

function payload(tag: string): string {
  let s = '';
  for (let k = 0; s.length < 1_200_000; k++) s += `${tag} line ${k} ${'y'.repeat(40)}\n`;
  return s;
}

/** The workload's interface (the TAP moved into its namespace). */
function ifaceOf(ns: string): string {
  const out = nsExec(ns, ['ip', '-o', 'link', 'show']);
  const m = /^\d+: ([^:@]+)[:@]/m.exec(
    out
      .split('\n')
      .filter((l) => !/: lo:/.test(l))
      .join('\n'),
  );
  if (m === null) throw new Error(`no interface in ${ns}: ${out}`);
  return m[1];
}

/** Transfers both ways between server t and client c; returns host k's counter deltas. */
async function transfer(lab: Lab, k: number, t: W, c: W, port: number): Promise<Record<string, number>> {
  const before = await counters(lab, k);
  const up = payload('up');
  const down = payload('down');
  const r = await tcpTransfer(t.ns, c.ns, t.ip, port, up, down);
  expect(r.serverGot, 'upload').toEqual(intact(up));
  expect(r.clientGot, 'download').toEqual(intact(down));
  return delta(before, await counters(lab, k));
}

describe.skipIf(!isRoot())('GRO into TAPs on every path (requires root: network namespaces)', () => {
  afterAll(async () => {
    await killAll();
  });

  describe('same host, direct from the uplink, decapsulated IPIP', () => {
    let lab: Lab;
    let w1: W;
    let w2: W;
    let w3: W;
    let w4: W;

    beforeAll(async () => {
      lab = Lab.create({
        prefix: prefix('gr'),
        mode: 'ipip-crosssubnet',
        hosts: 3,
        workers: 1,
        daemonArgs: ['--tap-offload'],
      });
      for (const k of [1, 2, 3]) await lab.start(k);
      w1 = await lab.addWorkload(1);
      w2 = await lab.addWorkload(1);
      w3 = await lab.addWorkload(2);
      w4 = await lab.addWorkload(3);
      // w2 and w3 send MSS-sized segments (one per skb; otherwise their TSO super-frames reach w1
      // whole: handed on by calitap on the same host, and kept GSO by the veth uplinks)
      for (const w of [w2, w3])
        nsExec(w.ns, ['ip', 'link', 'set', 'dev', ifaceOf(w.ns), 'gso_max_segs', '1']);
      for (const w of [w2, w3, w4]) await waitPing(w1.ns, w.ip, 8000);
    });

    afterAll(async () => {
      await lab?.destroyAsync();
    });

    for (const [what, target, port] of [
      ['same host', () => w2, 7101],
      ['direct from the uplink (same subnet)', () => w3, 7102],
      ['decapsulated IPIP (across the router)', () => w4, 7103],
    ] as const) {
      it(`${what}: coalesced into w1's TAP, 1.2 MB each way intact`, async () => {
        const d = await transfer(lab, 1, target(), w1, port);
        // IPIP-carried segments are already merged on input (gro-input.ts), before the graph; the
        // other paths at the TAP write
        const [merged, made] = what.includes('IPIP')
          ? ['port-input: gro-input-merged', 'port-input: gro-input-superframes']
          : ['tcp4-gro: merged', 'tcp4-gro: flushed'];
        expect(d[merged] ?? 0, JSON.stringify(d)).toBeGreaterThan(0);
        expect(d[made] ?? 0).toBeGreaterThan(0);
        expect(d['port-output: refused'] ?? 0).toBe(0);
      });
    }
  });

  describe('decapsulated VXLAN', () => {
    let lab: Lab;
    let w1: W;
    let w2: W;

    beforeAll(async () => {
      lab = Lab.create({
        prefix: prefix('gv'),
        mode: 'vxlan',
        hosts: 2,
        workers: 1,
        daemonArgs: ['--tap-offload'],
      });
      for (const k of [1, 2]) await lab.start(k);
      w1 = await lab.addWorkload(1);
      w2 = await lab.addWorkload(2);
      await waitPing(w1.ns, w2.ip, 8000);
    });

    afterAll(async () => {
      await lab?.destroyAsync();
    });

    it("coalesced into w1's TAP, 1.2 MB each way intact", async () => {
      const d = await transfer(lab, 1, w2, w1, 7104);
      // merged on input, before the graph (gro-input.ts)
      expect(d['port-input: gro-input-merged'] ?? 0, JSON.stringify(d)).toBeGreaterThan(0);
      expect(d['port-input: gro-input-superframes'] ?? 0).toBeGreaterThan(0);
      expect(d['port-output: refused'] ?? 0).toBe(0);
    });
  });
});
