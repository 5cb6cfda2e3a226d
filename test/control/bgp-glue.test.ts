import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/control/config/load.js';
import { exportedBlocks, learnedRoute, speakerOptions } from '../../src/control/daemon/bgp-glue.js';
import type { BestRoute } from '../../src/control/bgp/rib.js';
import { parseIp4, parsePrefix4 } from '../../src/common/addr.js';

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
