// Calico's defaults, Felix's VTEP MAC derivation and the FelixConfiguration default/node merge.
import { describe, expect, it } from 'vitest';
import { felixFor, nodeAsNumber, peersForNode, tunnelMtu } from '../../src/control/config/compile.js';
import { vtepMacForNode } from '../../src/control/config/load.js';
import { load, res, withBase } from './helpers.js';

describe('defaults', () => {
  it('fills IPPool defaults', () => {
    expect(load(withBase()).pools).toEqual([
      {
        name: 'pool-a',
        cidr: { addr: 0x0a410000, len: 16 },
        blockSize: 26,
        ipipMode: 'Never',
        vxlanMode: 'Never',
        natOutgoing: false,
        disabled: false,
        disableBGPExport: false,
      },
    ]);
  });
  it('fills Felix and BGP defaults when the resources are absent', () => {
    const cfg = load(withBase());
    expect(cfg.felix).toEqual({ vxlanVNI: 4096, vxlanPort: 4789 });
    expect(cfg.bgp).toEqual({ asNumber: 64512, nodeToNodeMeshEnabled: true, listenPort: 179 });
    expect(cfg.source).toBe('cluster.yaml');
    expect(cfg.ignored).toEqual([]);
  });
  it('fills defaults for fields a present resource leaves out', () => {
    const cfg = load(
      withBase(
        res('FelixConfiguration', 'default', '{ natOutgoingAddress: 192.0.2.1 }'),
        res('BGPConfiguration', 'default', '{ nodeToNodeMeshEnabled: false }'),
      ),
    );
    expect(cfg.felix).toEqual({ vxlanVNI: 4096, vxlanPort: 4789, natOutgoingAddress: 0xc0000201 });
    expect(cfg.bgp).toEqual({ asNumber: 64512, nodeToNodeMeshEnabled: false, listenPort: 179 });
  });
  it('defaults BlockAffinity state to confirmed and reads deleted', () => {
    const cfg = load(
      withBase(
        res('BlockAffinity', 'b1', '{ node: node-a, cidr: 10.65.0.0/26 }'),
        res('BlockAffinity', 'b2', '{ node: node-b, cidr: 10.65.0.64/26, deleted: "true" }'),
      ),
    );
    expect(cfg.affinities).toEqual([
      { name: 'b1', node: 'node-a', cidr: { addr: 0x0a410000, len: 26 }, state: 'confirmed', deleted: false },
      { name: 'b2', node: 'node-b', cidr: { addr: 0x0a410040, len: 26 }, state: 'confirmed', deleted: true },
    ]);
  });
  it('defaults Uplink mtu to 1500 with no neighbors', () => {
    const cfg = load(withBase(res('Uplink', 'node-a', '{ interfaceName: eth0 }', 'calitap/v1')));
    expect(cfg.uplinks.get('node-a')).toEqual({
      node: 'node-a',
      interfaceName: 'eth0',
      mtu: 1500,
      neighbors: [],
    });
  });
  it('reads every Node field', () => {
    const cfg = load(
      res(
        'Node',
        'n1',
        '{ bgp: { ipv4Address: 192.168.1.10/24, ipv4IPIPTunnelAddr: 10.65.0.1, asNumber: 65001, ' +
          'routeReflectorClusterID: 224.0.0.1 }, ipv4VXLANTunnelAddr: 10.66.0.1, vxlanTunnelMACAddr: 66:AA:BB:CC:DD:EE }',
      ),
    );
    expect(cfg.nodes.get('n1')).toEqual({
      name: 'n1',
      bgpAddress: { ip: 0xc0a8010a, len: 24 },
      ipipTunnelAddr: 0x0a410001,
      asNumber: 65001,
      routeReflectorClusterID: 0xe0000001,
      vxlanTunnelAddr: 0x0a420001,
      vxlanTunnelMac: '66:aa:bb:cc:dd:ee',
    });
    // A bare address is a /32 (Calico's ParseCIDROrIP).
    expect(
      load(res('Node', 'n1', '{ bgp: { ipv4Address: 192.168.1.10 } }')).nodes.get('n1')?.bgpAddress,
    ).toEqual({
      ip: 0xc0a8010a,
      len: 32,
    });
  });
});

describe("Felix's VTEP MAC derivation", () => {
  it("matches Felix's own test vector (felix/calc/states_for_test.go)", () => {
    expect(vtepMacForNode('remotehostname2')).toBe('66:40:18:59:1f:16');
  });
  it('is 0x66 + the first 5 bytes of sha1(node name)', () => {
    // sha1("node-a") = 0702c1cc60...
    expect(vtepMacForNode('node-a')).toBe('66:07:02:c1:cc:60');
  });
  it('is used when spec.vxlanTunnelMACAddr is absent', () => {
    expect(load(withBase()).nodes.get('node-b')?.vxlanTunnelMac).toBe(vtepMacForNode('node-b'));
  });
});

describe('FelixConfiguration merge (default + node.<name>)', () => {
  const text = withBase(
    res('FelixConfiguration', 'default', '{ vxlanVNI: 5000, ipipMTU: 1400, natPortRange: "1000:2000" }'),
    res('FelixConfiguration', 'node.node-b', '{ vxlanVNI: 6000, vxlanMTU: 1300 }'),
  );
  it('overrides per field for the named node only', () => {
    const cfg = load(text);
    expect(felixFor(cfg, 'node-a')).toEqual({
      vxlanVNI: 5000,
      vxlanPort: 4789,
      ipipMTU: 1400,
      natPortRange: [1000, 2000],
    });
    expect(felixFor(cfg, 'node-b')).toEqual({
      vxlanVNI: 6000,
      vxlanPort: 4789,
      ipipMTU: 1400,
      vxlanMTU: 1300,
      natPortRange: [1000, 2000],
    });
    expect(cfg.felix.vxlanVNI).toBe(5000);
  });
  it('does not depend on document order', () => {
    const reordered = withBase(
      res('FelixConfiguration', 'node.node-b', '{ vxlanVNI: 6000 }'),
      res('FelixConfiguration', 'default', '{ vxlanVNI: 5000 }'),
    );
    expect(felixFor(load(reordered), 'node-b').vxlanVNI).toBe(6000);
  });
  it('drives tunnelMtu', () => {
    const cfg = load(text);
    expect(tunnelMtu(cfg, 1500, 'ipip')).toBe(1400);
    expect(tunnelMtu(cfg, 1500, 'vxlan')).toBe(1450);
    expect(tunnelMtu(cfg, 1500, 'vxlan', 'node-b')).toBe(1300);
    expect(tunnelMtu(load(withBase()), 9000, 'ipip')).toBe(8980);
    expect(tunnelMtu(load(withBase()), 1500, 'ipip')).toBe(1480);
  });
});

describe('BGP helpers', () => {
  it('selects peers per node and the node AS', () => {
    const cfg = load(
      withBase(
        res('Node', 'node-c', '{ bgp: { ipv4Address: 10.0.0.3/24, asNumber: 65003 } }'),
        res('BGPPeer', 'global', '{ peerIP: 10.0.0.254, asNumber: 65000 }'),
        res('BGPPeer', 'all', '{ peerIP: 10.0.0.253, asNumber: 65000, nodeSelector: all() }'),
        res('BGPPeer', 'only-b', '{ peerIP: 10.0.0.252, asNumber: 65000, node: node-b }'),
      ),
    );
    expect(peersForNode(cfg, 'node-a').map((p) => p.name)).toEqual(['global', 'all']);
    expect(peersForNode(cfg, 'node-b').map((p) => p.name)).toEqual(['global', 'all', 'only-b']);
    expect(nodeAsNumber(cfg, 'node-a')).toBe(64512);
    expect(nodeAsNumber(cfg, 'node-c')).toBe(65003);
  });
});
