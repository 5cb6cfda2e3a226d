// The default `calitap run` (no flags: TAP offloads on, tunnel super-frames segmented natively by the
// packet uplink) carries 1 MB each way intact on every path: same host, cross host with pools Never,
// IPIP Always, VXLAN Always and VXLAN CrossSubnet (direct on the subnet, VXLAN across the router),
// and natOutgoing. The receiving kernels verify every TCP checksum (a segment with a bad one is
// dropped and never acknowledged, so the transfer would stall or the sha256 differ): an intact
// transfer proves segmentation, encapsulation and checksums on the way.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { Lab, type LabMode } from '../../src/lab/lab.js';
import { counters, delta, isRoot, killAll, prefix, tcpTransfer, waitPing } from './helpers.js';

type W = { ns: string; ip: string; name: string };

function intact(data: Buffer): { bytes: number; sha256: string } {
  return { bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') };
}

/** 1 MiB of pseudo-random bytes (seeded): large writes the workload's TCP turns into super-frames. */
function payload(seed: number): Buffer {
  const b = Buffer.alloc(1 << 20);
  let x = seed >>> 0;
  for (let k = 0; k < b.length; k++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[k] = x >>> 24;
  }
  return b;
}

async function both(server: W, client: W, port: number, seed: number): Promise<void> {
  const up = payload(seed);
  const down = payload(seed + 1);
  const r = await tcpTransfer(server.ns, client.ns, server.ip, port, up, down);
  expect(r.serverGot, 'client → server').toEqual(intact(up));
  expect(r.clientGot, 'server → client').toEqual(intact(down));
}

/** What must stay zero on a host whatever the path (nothing refused, nothing segmented in the graph). */
const CLEAN = [
  'port-input: gso-unsupported',
  'port-input: bad-checksum-offset',
  'ip4-rewrite: gso-segmentation-failed',
  'port-output: refused',
];

function labSuite(
  tag: string,
  mode: LabMode,
  hosts: number,
  body: (l: () => Lab, w: () => W[]) => void,
  uplink?: 'udp',
  daemonArgs?: string[],
  daemonEnv?: Record<string, string>,
): void {
  const env = Object.entries(daemonEnv ?? {}).map(([k, v]) => `${k}=${v}`);
  const flags = [...env, ...(uplink ? ['--uplink udp'] : []), ...(daemonArgs ?? [])].join(' ');
  const what = `${flags === '' ? 'default flags' : flags}, pool ${mode}`;
  describe.skipIf(!isRoot())(`${what} (requires root: network namespaces)`, () => {
    let lab: Lab;
    const ws: W[] = [];
    beforeAll(async () => {
      lab = Lab.create({ prefix: prefix(tag), mode, hosts, workers: 2, uplink, daemonArgs, daemonEnv });
      for (let k = 1; k <= hosts; k++) await lab.start(k);
      ws.push(await lab.addWorkload(1));
      for (let k = 1; k <= hosts; k++) ws.push(await lab.addWorkload(k));
      for (const w of ws.slice(1)) await waitPing(ws[0].ns, w.ip, 8000);
    });
    afterAll(async () => {
      await killAll();
      await lab?.destroyAsync();
    });
    body(
      () => lab,
      () => ws,
    );
    it('nothing was refused or dropped for offload reasons', async () => {
      for (let k = 1; k <= hosts; k++) {
        const c = await counters(lab, k);
        for (const name of CLEAN) expect(c.get(name) ?? 0, `host ${k} ${name}`).toBe(0);
      }
    });
  });
}

// ws[0], ws[1]: host 1; ws[2]: host 2; ws[3]: host 3 (other subnet)
labSuite('oi', 'ipip', 2, (lab, ws) => {
  it('same host: 1 MB each way intact', async () => {
    await both(ws()[1], ws()[0], 7101, 1);
  });
  it('IPIP Always across hosts: 1 MB each way intact, super-frames segmented by the uplink', async () => {
    const before = await counters(lab(), 1);
    await both(ws()[2], ws()[0], 7102, 3);
    const d = delta(before, await counters(lab(), 1));
    expect(d['port-output: tunnel-segmented'] ?? 0).toBeGreaterThan(0);
    expect(d['ip4-rewrite: gso-segmented'] ?? 0).toBe(0);
  });
  it('natOutgoing to the server: 1 MB each way intact', async () => {
    const srv = { ns: `${lab().o.prefix}srv`, ip: '203.0.113.10', name: 'srv' };
    const before = await counters(lab(), 1);
    await both(srv, ws()[0], 7103, 5);
    expect(delta(before, await counters(lab(), 1))['snat4-in2out: translated'] ?? 0).toBeGreaterThan(0);
  });
});

labSuite('ov', 'vxlan', 2, (lab, ws) => {
  it('VXLAN Always across hosts: 1 MB each way intact, super-frames segmented by the uplink', async () => {
    const before = await counters(lab(), 1);
    await both(ws()[2], ws()[0], 7201, 7);
    const d = delta(before, await counters(lab(), 1));
    expect(d['port-output: tunnel-segmented'] ?? 0).toBeGreaterThan(0);
    expect(d['ip4-rewrite: gso-segmented'] ?? 0).toBe(0);
  });
});

labSuite('on', 'never', 2, (_lab, ws) => {
  it('Never across hosts: 1 MB each way intact (super-frames leave whole)', async () => {
    await both(ws()[2], ws()[0], 7301, 9);
  });
});

labSuite('oc', 'vxlan-crosssubnet', 3, (_lab, ws) => {
  it('CrossSubnet, same subnet (direct): 1 MB each way intact', async () => {
    await both(ws()[2], ws()[0], 7401, 11);
  });
  it('CrossSubnet, across the router (VXLAN): 1 MB each way intact', async () => {
    await both(ws()[3], ws()[0], 7402, 13);
  });
});

labSuite(
  'ou',
  'vxlan',
  2,
  (lab, ws) => {
    it('VXLAN over the udp uplink: 1 MB each way intact, super-frames sent with UDP GSO', async () => {
      const before = await counters(lab(), 1);
      await both(ws()[2], ws()[0], 7501, 15);
      const d = delta(before, await counters(lab(), 1));
      expect(d['port-output: tunnel-segmented'] ?? 0).toBeGreaterThan(0);
      expect(d['ip4-rewrite: gso-segmented'] ?? 0).toBe(0);
      expect(d['port-input: udp-gro-received'] ?? 0).toBe(0); // UDP_GRO is opt-in
    });
  },
  'udp',
);

// the opt-in UDP_GRO on the udp uplink's sockets: the peer's GSO sends arrive coalesced and are split
labSuite(
  'og',
  'vxlan',
  2,
  (lab, ws) => {
    it('VXLAN over the udp uplink with UDP_GRO: 1 MB each way intact, received coalesced', async () => {
      const before = await counters(lab(), 1);
      await both(ws()[2], ws()[0], 7502, 17);
      const d = delta(before, await counters(lab(), 1));
      expect(d['port-output: tunnel-segmented'] ?? 0).toBeGreaterThan(0);
      // the peer's UDP GSO sends crossed the veths whole and reached our UDP_GRO socket coalesced
      expect(d['port-input: udp-gro-received'] ?? 0).toBeGreaterThan(0);
    });
  },
  'udp',
  undefined,
  { CALITAP_UDP_GRO: '1' },
);

// --no-offload keeps the plain mode: no super-frames anywhere, the same bytes arrive
labSuite(
  'op',
  'ipip',
  2,
  (lab, ws) => {
    it('--no-offload, IPIP Always and same host: 1 MB each way intact, nothing segmented', async () => {
      await both(ws()[2], ws()[0], 7601, 17);
      await both(ws()[1], ws()[0], 7602, 19);
      const c = await counters(lab(), 1);
      expect(c.get('port-output: tunnel-segmented') ?? 0).toBe(0);
      expect(c.get('ip4-rewrite: gso-segmented') ?? 0).toBe(0);
    });
  },
  undefined,
  ['--no-offload'],
);
