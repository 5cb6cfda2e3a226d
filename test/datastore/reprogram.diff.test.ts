// Differential test of live reprogramming (src/control/daemon/reprogram.ts): after any sequence of
// configuration changes (pool modes, nodes added, moved and removed, blocks claimed and released,
// borrowed addresses), the FIB the Reprogrammer maintains incrementally equals the FIB a Programmer
// builds from scratch for the final configuration (the naive model). Runs without root.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import pino from 'pino';
import { loadConfigFile } from '../../src/control/config/load.js';
import type { ClusterConfig, EncapMode } from '../../src/control/config/types.js';
import { Programmer } from '../../src/control/daemon/program.js';
import { Reprogrammer } from '../../src/control/daemon/reprogram.js';

const CONFIG = new URL('../../pcaps/sample-config.yaml', import.meta.url).pathname;
const base = loadConfigFile(CONFIG);
const OPTS = { uplinkMac: '02:00:00:00:00:01', configEndpoints: false, natCapacity: 1024 } as const;

type Change =
  | { t: 'mode'; pool: number; ipip: EncapMode; vxlan: EncapMode }
  | { t: 'node-add'; k: number; subnet: boolean }
  | { t: 'node-move'; k: number }
  | { t: 'node-del'; k: number }
  | { t: 'block'; k: number; b: number; on: boolean }
  | { t: 'borrow'; k: number; host: number };

const mode = fc.constantFrom<EncapMode>('Always', 'CrossSubnet', 'Never');
const change: fc.Arbitrary<Change> = fc.oneof(
  fc.record({
    t: fc.constant('mode' as const),
    pool: fc.integer({ min: 0, max: 1 }),
    ipip: mode,
    vxlan: mode,
  }),
  fc.record({ t: fc.constant('node-add' as const), k: fc.integer({ min: 0, max: 3 }), subnet: fc.boolean() }),
  fc.record({ t: fc.constant('node-move' as const), k: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ t: fc.constant('node-del' as const), k: fc.integer({ min: 0, max: 3 }) }),
  fc.record({
    t: fc.constant('block' as const),
    k: fc.integer({ min: 0, max: 3 }),
    b: fc.integer({ min: 4, max: 12 }),
    on: fc.boolean(),
  }),
  fc.record({
    t: fc.constant('borrow' as const),
    k: fc.integer({ min: 0, max: 3 }),
    host: fc.integer({ min: 200, max: 250 }),
  }),
);

const extra = (k: number) => `node-x${k}`;

function mutate(cfg: ClusterConfig, c: Change): ClusterConfig {
  const n: ClusterConfig = {
    ...cfg,
    pools: cfg.pools.map((p) => ({ ...p })),
    nodes: new Map([...cfg.nodes].map(([k, v]) => [k, { ...v }])),
    affinities: cfg.affinities.map((a) => ({ ...a })),
    endpoints: cfg.endpoints.map((e) => ({ ...e })),
    uplinks: new Map(cfg.uplinks),
  };
  switch (c.t) {
    case 'mode': {
      const p = n.pools[c.pool];
      p.ipipMode = c.ipip;
      p.vxlanMode = c.ipip === 'Never' ? c.vxlan : 'Never';
      break;
    }
    case 'node-add':
      n.nodes.set(extra(c.k), {
        name: extra(c.k),
        bgpAddress: { ip: c.subnet ? 0x0a000010 + c.k : 0x0a020010 + c.k, len: 24 },
        vxlanTunnelAddr: 0x0a420000 + 64 * (4 + c.k) + 1,
        vxlanTunnelMac: `66:00:00:00:00:0${c.k}`,
      });
      break;
    case 'node-move': {
      const x = n.nodes.get(extra(c.k));
      if (x?.bgpAddress) x.bgpAddress = { ip: x.bgpAddress.ip ^ 0x00030000, len: 24 };
      break;
    }
    case 'node-del':
      n.nodes.delete(extra(c.k));
      n.affinities = n.affinities.filter((a) => a.node !== extra(c.k));
      n.endpoints = n.endpoints.filter((e) => e.node !== extra(c.k));
      break;
    case 'block': {
      const cidr = { addr: 0x0a410000 + 64 * c.b, len: 26 };
      n.affinities = n.affinities.filter((a) => a.cidr.addr !== cidr.addr);
      if (c.on && n.nodes.has(extra(c.k)))
        n.affinities.push({ name: `b${c.b}`, node: extra(c.k), cidr, state: 'confirmed', deleted: false });
      break;
    }
    case 'borrow':
      if (n.nodes.has(extra(c.k)))
        n.endpoints.push({
          name: `wb${c.host}`,
          namespace: 'default',
          node: extra(c.k),
          interfaceName: `calib${c.host}`,
          ipNetworks: [{ addr: 0x0a410000 + c.host, len: 32 }],
          mac: '52:54:00:00:00:02',
        });
      break;
  }
  return n;
}

describe('live reprogramming vs a Programmer built from scratch', () => {
  it('reaches the same FIB after any sequence of changes', () => {
    fc.assert(
      fc.property(fc.array(change, { minLength: 1, maxLength: 12 }), (changes) => {
        const start = mutate(base, { t: 'node-del', k: 9 });
        start.endpoints = start.endpoints.filter((e) => e.node !== 'node-a');
        const prog = new Programmer(start, 'node-a', OPTS);
        const rp = new Reprogrammer(
          prog,
          { bgp: null, publishParams: () => undefined, log: pino({ level: 'silent' }) },
          true,
        );
        let cfg = start;
        for (const c of changes) {
          cfg = mutate(cfg, c);
          rp.apply(mutate(cfg, { t: 'node-del', k: 9 }));
        }
        const fresh = new Programmer(mutate(cfg, { t: 'node-del', k: 9 }), 'node-a', OPTS);
        expect(prog.table()).toEqual(fresh.table());
        expect([...prog.env.params.tunnelPeers].sort()).toEqual([...fresh.env.params.tunnelPeers].sort());
      }),
      { numRuns: 15 },
    );
  });
});
