import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/control/config/load.js';
import pino from 'pino';
import { BgpGlue, exportedBlocks, learnedRoute, speakerOptions } from '../../src/control/daemon/bgp-glue.js';
import { Programmer } from '../../src/control/daemon/program.js';
import type { BestRoute } from '../../src/control/bgp/rib.js';
import { formatIp4, parseIp4, parsePrefix4 } from '../../src/common/addr.js';

const yaml = `
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: ipip}
spec: {cidr: 10.65.0.0/16, ipipMode: CrossSubnet}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: vx}
spec: {cidr: 10.66.0.0/16, vxlanMode: Always, disableBGPExport: true}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: a}
spec: {bgp: {ipv4Address: 10.0.0.5/24}, ipv4VXLANTunnelAddr: 10.66.0.1}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: b}
spec: {bgp: {ipv4Address: 10.0.0.9/24, asNumber: 65001}, ipv4VXLANTunnelAddr: 10.66.0.65}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: c}
spec: {bgp: {ipv4Address: 10.1.0.3/24}, ipv4VXLANTunnelAddr: 10.66.0.129}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: d}
spec: {bgp: {ipv4Address: 10.0.0.2/24}}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: tor}
spec: {peerIP: 10.0.0.254, asNumber: 65100, node: a}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: rr}
spec: {peerIP: 10.0.0.250, asNumber: 64512}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: other-node-only}
spec: {peerIP: 10.0.0.251, asNumber: 64512, node: b}
---
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: {name: a1}
spec: {node: a, cidr: 10.65.0.0/26}
---
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: {name: a2}
spec: {node: a, cidr: 10.66.0.0/26}
---
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: {name: a3}
spec: {node: a, cidr: 10.65.1.0/26, state: pending}
---
apiVersion: calitap/v1
kind: Uplink
metadata: {name: a}
spec: {interfaceName: up0, gateway: 10.0.0.254}
`;
const cfg = loadConfigText(yaml, 'glue.yaml');

function best(prefix: string, nextHop: string): BestRoute {
  return {
    prefix: parsePrefix4(prefix)!,
    nextHop: parseIp4(nextHop)!,
    peerAddress: parseIp4(nextHop)!,
    ibgp: true,
    attrs: {} as BestRoute['attrs'],
    reason: 'only route',
    stale: false,
  };
}

describe('speakerOptions: Calico resources → BGP sessions', () => {
  const o = speakerOptions(cfg, 'a');
  const byPeer = new Map(o.peers.map((p) => [p.peerAddress, p]));

  it('router ID, AS, listen address and next hop are the node’s', () => {
    expect(o.routerId).toBe('10.0.0.5');
    expect(o.localAs).toBe(64512);
    expect(o.listenAddress).toBe('10.0.0.5');
    expect(o.listenPort).toBe(179);
    expect(o.nextHop).toBe('10.0.0.5');
  });

  it('meshes with every other node; passive toward greater IPs (Calico’s rule)', () => {
    expect(byPeer.get('10.0.0.9')).toMatchObject({
      peerType: 'node-to-node mesh',
      asNumber: 65001,
      passive: true,
    });
    expect(byPeer.get('10.1.0.3')).toMatchObject({ peerType: 'node-to-node mesh', passive: true });
    expect(byPeer.get('10.0.0.2')).toMatchObject({ peerType: 'node-to-node mesh', passive: false });
  });

  it('adds global and node-specific BGPPeers, not other nodes’ peers', () => {
    expect(byPeer.get('10.0.0.254')).toMatchObject({ peerType: 'node specific', asNumber: 65100 });
    expect(byPeer.get('10.0.0.250')).toMatchObject({ peerType: 'global', asNumber: 64512 });
    expect(byPeer.has('10.0.0.251')).toBe(false);
    expect(o.peers).toHaveLength(5);
  });

  it('without the mesh only BGPPeers remain', () => {
    const noMesh = loadConfigText(
      yaml +
        '---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {nodeToNodeMeshEnabled: false, asNumber: 64600}\n',
      'nomesh.yaml',
    );
    const p = speakerOptions(noMesh, 'a');
    expect(p.peers.map((x) => x.peerAddress).sort()).toEqual(['10.0.0.250', '10.0.0.254']);
    expect(p.localAs).toBe(64600);
  });
});

describe('exportedBlocks', () => {
  it('announces confirmed local blocks except pools with disableBGPExport', () => {
    expect(exportedBlocks(cfg, 'a').map((p) => `${p.addr}/${p.len}`)).toEqual([
      `${parseIp4('10.65.0.0')}/26`,
    ]);
  });
});

describe('learnedRoute: a best path → a FIB route', () => {
  it('a pool block from a node on our subnet: direct (CrossSubnet)', () => {
    const r = learnedRoute(cfg, 'a', best('10.65.0.64/26', '10.0.0.9'), []);
    expect(r).toMatchObject({
      via: 'direct',
      source: 'bgp',
      nextHop: parseIp4('10.0.0.9'),
      linkNextHop: parseIp4('10.0.0.9'),
    });
  });

  it('a pool block from a node across the router: IPIP toward it, framed to the gateway', () => {
    const r = learnedRoute(cfg, 'a', best('10.65.0.128/26', '10.1.0.3'), []);
    expect(r).toMatchObject({
      via: 'ipip',
      nextHop: parseIp4('10.1.0.3'),
      linkNextHop: parseIp4('10.0.0.254'),
      port: 'up0',
    });
  });

  it('a VXLAN pool block: to the owner’s VTEP MAC', () => {
    const r = learnedRoute(cfg, 'a', best('10.66.0.64/26', '10.0.0.9'), []);
    expect(r?.via).toBe('vxlan');
    expect(r?.mac).toBe(cfg.nodes.get('b')!.vxlanTunnelMac);
  });

  it('a prefix outside every pool: plain route via the next hop (on-link or through the gateway)', () => {
    expect(learnedRoute(cfg, 'a', best('192.0.2.0/24', '10.0.0.254'), [])).toMatchObject({
      via: 'direct',
      nextHop: parseIp4('10.0.0.254'),
      linkNextHop: parseIp4('10.0.0.254'),
    });
    expect(learnedRoute(cfg, 'a', best('198.51.100.0/24', '172.16.0.1'), [])).toMatchObject({
      via: 'direct',
      nextHop: parseIp4('172.16.0.1'),
      linkNextHop: parseIp4('10.0.0.254'),
    });
  });

  it('never replaces one of our own blocks', () => {
    expect(learnedRoute(cfg, 'a', best('10.65.0.0/26', '10.0.0.9'), [])).toBeUndefined();
  });

  it('a VXLAN block of a node without a VTEP is not routed, with a warning', () => {
    const warnings: string[] = [];
    expect(learnedRoute(cfg, 'a', best('10.66.1.0/26', '10.0.0.2'), warnings)).toBeUndefined();
    expect(warnings[0]).toMatch(/no spec.ipv4VXLANTunnelAddr/);
  });
});

// BgpGlue.onRoute: the speaker's best-path changes → the Programmer's routes (no sockets: the speaker
// is never started).
describe('BgpGlue.onRoute', () => {
  const meshYaml = `
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: pods}
spec: {cidr: 10.65.0.0/16, ipipMode: CrossSubnet}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: a}
spec: {bgp: {ipv4Address: 10.0.0.1/16}}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: b}
spec: {bgp: {ipv4Address: 10.0.0.2/16}}
---
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: {name: a1}
spec: {node: a, cidr: 10.65.0.0/26}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: bird}
spec: {peerIP: 10.0.255.1, asNumber: 64512}
---
apiVersion: calitap/v1
kind: Uplink
metadata: {name: a}
spec: {interfaceName: up0, mac: 02:00:00:00:00:01, gateway: 10.0.255.254}
`;
  const meshCfg = loadConfigText(meshYaml, 'mesh.yaml');
  const N = 5000;
  const hopOf = (set: number, k: number): string =>
    formatIp4((parseIp4('10.0.1.0')! + set * 0x4000 + k) >>> 0);
  const dstOf = (set: number, k: number): string =>
    `${formatIp4((parseIp4('192.168.0.0')! + set * 0x10000 + k) >>> 0)}/32`;

  function make(opts: { neighborCapacity?: number } = {}): { prog: Programmer; glue: BgpGlue } {
    const prog = new Programmer(meshCfg, 'a', {
      configEndpoints: false,
      remoteBlocksFromConfig: false,
      ...opts,
    });
    return { prog, glue: new BgpGlue(prog, pino({ level: 'silent' })) };
  }

  function neighborOf(prog: Programmer, prefix: string): string | null {
    const a = prog.env.fib.lookup(parsePrefix4(prefix)!.addr);
    const nb = prog.env.adj.neighbor[a];
    return a === 0 || nb < 0 ? null : formatIp4(prog.env.nbr.ip[nb]);
  }

  it('installs, replaces and withdraws learned routes; never replaces our own block', () => {
    const { prog, glue } = make();
    glue.onRoute(parsePrefix4('10.65.0.64/26')!, best('10.65.0.64/26', '10.0.0.2'));
    expect(prog.route(parsePrefix4('10.65.0.64/26')!)).toMatchObject({ via: 'direct', source: 'bgp' });
    expect(neighborOf(prog, '10.65.0.64/26')).toBe('10.0.0.2');
    glue.onRoute(parsePrefix4('192.0.2.0/24')!, best('192.0.2.0/24', '172.16.0.1')); // off-link: via gateway
    expect(neighborOf(prog, '192.0.2.0/24')).toBe('10.0.255.254');
    glue.onRoute(parsePrefix4('10.65.0.0/26')!, best('10.65.0.0/26', '10.0.0.2'));
    expect(prog.route(parsePrefix4('10.65.0.0/26')!)?.source).not.toBe('bgp');
    glue.onRoute(parsePrefix4('10.65.0.0/26')!, null); // not ours to withdraw
    expect(prog.route(parsePrefix4('10.65.0.0/26')!)).toBeDefined();
    glue.onRoute(parsePrefix4('10.65.0.64/26')!, null);
    expect(prog.route(parsePrefix4('10.65.0.64/26')!)).toBeUndefined();
    expect(prog.env.nbr.find(parseIp4('10.0.0.2')!)).toBe(-1);
  });

  it('a peer announcing 5000 /32s over 5000 next hops, then 5000 over 5000 others: all installed, twice', () => {
    const { prog, glue } = make();
    const w = prog.tables.readers.register(); // a worker, passing quiescent points now and then
    const announce = (set: number): void => {
      for (let k = 0; k < N; k++) {
        glue.onRoute(parsePrefix4(dstOf(set, k))!, best(dstOf(set, k), hopOf(set, k)));
        if (k % 256 === 255) prog.tables.readers.quiescent(w);
      }
    };
    const installed = (set: number): number => {
      let n = 0;
      for (let k = 0; k < N; k++) if (neighborOf(prog, dstOf(set, k)) === hopOf(set, k)) n++;
      return n;
    };
    announce(0);
    expect(installed(0)).toBe(N);
    // the peer replaces them: withdraws the old /32s and announces new ones over other next hops
    for (let k = 0; k < N; k++) glue.onRoute(parsePrefix4(dstOf(0, k))!, null);
    announce(1);
    expect(installed(1)).toBe(N);
    expect(installed(0)).toBe(0);
    expect(prog.counters()).toEqual([]);
    // and back again, onto the same prefixes this time (implicit withdraw)
    for (let k = 0; k < N; k++) glue.onRoute(parsePrefix4(dstOf(1, k))!, best(dstOf(1, k), hopOf(2, k)));
    let moved = 0;
    for (let k = 0; k < N; k++) if (neighborOf(prog, dstOf(1, k)) === hopOf(2, k)) moved++;
    expect(moved).toBe(N);
  });

  it('a route refused by a full table waits; a withdrawal from the peer forgets it', () => {
    const { prog, glue } = make({ neighborCapacity: 3 }); // the gateway + 2
    for (let k = 0; k < 3; k++) glue.onRoute(parsePrefix4(dstOf(0, k))!, best(dstOf(0, k), hopOf(0, k)));
    expect(prog.waitingRoutes).toBe(1);
    expect(prog.counters()).toContainEqual({ node: 'neighbor-table', reason: 'full', count: 1 });
    glue.onRoute(parsePrefix4(dstOf(0, 2))!, null);
    expect(prog.waitingRoutes).toBe(0);
    glue.onRoute(parsePrefix4(dstOf(0, 3))!, best(dstOf(0, 3), hopOf(0, 3)));
    expect(prog.waitingRoutes).toBe(1);
    glue.onRoute(parsePrefix4(dstOf(0, 0))!, null); // room again
    expect(prog.maintain()).toBe(1);
    expect(neighborOf(prog, dstOf(0, 3))).toBe(hopOf(0, 3));
  });
});
