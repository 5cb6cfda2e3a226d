// One test per validation rule: each asserts the exact one-line message
// `<file>: <Kind> <name>: <field path> <value>: <reason>`.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/common/errors.js';
import { loadConfigFile } from '../../src/control/config/load.js';
import { expectConfigError, load, res, withBase } from './helpers.js';

const F = 'cluster.yaml';

describe('document structure', () => {
  it('reports YAML syntax errors with line and column', () => {
    expectConfigError(
      'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: { name: a\n',
      /^cluster\.yaml: line \d+, column \d+: YAML syntax error: \S/,
    );
    expectConfigError(
      'a: 1\na: 2\n',
      'cluster.yaml: line 2, column 1: YAML syntax error: Map keys must be unique',
    );
  });
  it('requires apiVersion', () => {
    expectConfigError(
      'kind: IPPool\nmetadata: { name: a }\n---\n\nkind: Node\n',
      `${F}: document 1 at line 1: apiVersion: required`,
    );
  });
  it('requires kind', () => {
    expectConfigError(
      `${res('IPPool', 'a', '{ cidr: 10.65.0.0/16 }')}---\n\napiVersion: projectcalico.org/v3\nmetadata: { name: b }\n`,
      `${F}: document 2 at line 7: kind: required`,
    );
  });
  it('requires metadata.name', () => {
    expectConfigError(
      'apiVersion: projectcalico.org/v3\nkind: IPPool\nspec: { cidr: 10.65.0.0/16 }\n',
      `${F}: IPPool at line 1: metadata.name: required`,
    );
    expectConfigError(
      'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: { name: 7 }\n',
      `${F}: IPPool at line 1: metadata.name 7: must be a string, got number`,
    );
  });
  it('rejects names Calico would refuse', () => {
    expectConfigError(
      withBase(res('IPPool', 'Pool_B', '{ cidr: 10.66.0.0/16 }')),
      `${F}: IPPool Pool_B: metadata.name Pool_B: must be lower-case letters, digits, "-" or "." (at most 253)`,
    );
  });
  it('rejects a document that is not a mapping', () => {
    expectConfigError(
      '- a\n- b\n',
      `${F}: document 1 at line 1: document: must be a mapping (a resource), got a list`,
    );
  });
  it('rejects a spec that is not a mapping', () => {
    expectConfigError(
      withBase(res('IPPool', 'b', '[1, 2]')),
      `${F}: IPPool b: spec [1,2]: must be a mapping, got a list`,
    );
  });
  it('rejects duplicate names within a kind, not across kinds', () => {
    expectConfigError(
      withBase(res('IPPool', 'pool-a', '{ cidr: 10.66.0.0/16 }')),
      `${F}: IPPool pool-a: metadata.name pool-a: duplicate IPPool name`,
    );
    const cfg = load(withBase(res('BGPPeer', 'pool-a', '{ peerIP: 10.0.0.9, asNumber: 65000 }')));
    expect(cfg.peers[0].name).toBe('pool-a');
  });
  it('keys WorkloadEndpoint names by namespace', () => {
    const wep = (ns: string, iface: string, ip: string) =>
      `apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata: { name: w, namespace: ${ns} }\n` +
      `spec: { node: node-a, interfaceName: ${iface}, ipNetworks: [${ip}], mac: 02:00:00:00:00:01 }\n`;
    expect(
      load(withBase(wep('a', 'cali1', '10.65.0.2'), wep('b', 'cali2', '10.65.0.3'))).endpoints,
    ).toHaveLength(2);
    expectConfigError(
      withBase(wep('a', 'cali1', '10.65.0.2'), wep('a', 'cali2', '10.65.0.3')),
      `${F}: WorkloadEndpoint a/w: metadata.name w: duplicate WorkloadEndpoint name`,
    );
  });
  it('ignores unknown fields', () => {
    const cfg = load(
      withBase(res('IPPool', 'b', '{ cidr: 10.66.0.0/16, colour: blue, nodeSelector: all() }')),
    );
    expect(cfg.pools.map((p) => p.name)).toEqual(['pool-a', 'b']);
  });
  it('records unknown kinds (and known kinds of other API groups) as ignored', () => {
    const cfg = load(
      withBase(
        res('HostEndpoint', 'eth0', '{ node: node-a }'),
        'apiVersion: v1\nkind: Node\nmetadata: { name: k8s-node }\n',
      ),
    );
    expect(cfg.ignored).toEqual([
      {
        kind: 'HostEndpoint',
        name: 'eth0',
        reason: 'unknown kind (projectcalico.org/v3 HostEndpoint)',
      },
      { kind: 'Node', name: 'k8s-node', reason: 'unknown kind (v1 Node)' },
    ]);
    expect(cfg.nodes.has('k8s-node')).toBe(false);
  });
  it('expands List and <Kind>List documents', () => {
    const text = `
apiVersion: projectcalico.org/v3
kind: IPPoolList
items:
  - metadata: { name: p1 }
    spec: { cidr: 10.65.0.0/16 }
  - apiVersion: projectcalico.org/v3
    kind: IPPool
    metadata: { name: p2 }
    spec: { cidr: 10.66.0.0/16 }
---
apiVersion: v1
kind: List
items:
  - apiVersion: projectcalico.org/v3
    kind: Node
    metadata: { name: n1 }
`;
    const cfg = load(text);
    expect(cfg.pools.map((p) => p.name)).toEqual(['p1', 'p2']);
    expect([...cfg.nodes.keys()]).toEqual(['n1']);
    expectConfigError(
      'apiVersion: v1\nkind: List\nitems:\n  - kind: IPPool\n    metadata: { name: p }\n',
      `${F}: document 1 items[0] at line 4: apiVersion: required`,
    );
  });
  it('skips empty documents', () => {
    expect(load(`---\n${withBase()}\n---\n---\n`).pools).toHaveLength(1);
    expect(load('').pools).toEqual([]);
  });
  it('reports an unreadable file as a ConfigError', () => {
    expect(() => loadConfigFile('/nonexistent/cluster.yaml')).toThrow(ConfigError);
    expect(() => loadConfigFile('/nonexistent/cluster.yaml')).toThrow(
      '/nonexistent/cluster.yaml: cannot read config file: ENOENT',
    );
  });
});

describe('IPPool', () => {
  it('rejects a malformed CIDR', () => {
    expectConfigError(
      withBase(res('IPPool', 'b', '{ cidr: 10.66.0.0/33 }')),
      `${F}: IPPool b: spec.cidr 10.66.0.0/33: must be an IPv4 CIDR like 10.65.0.0/16`,
    );
    expectConfigError(withBase(res('IPPool', 'b', '{}')), `${F}: IPPool b: spec.cidr: required`);
  });
  it('rejects host bits in the CIDR', () => {
    expectConfigError(
      withBase(res('IPPool', 'b', '{ cidr: 10.66.0.1/16 }')),
      `${F}: IPPool b: spec.cidr 10.66.0.1/16: host bits set (the network is 10.66.0.0/16)`,
    );
  });
  it('rejects blockSize outside 20..32', () => {
    expectConfigError(
      res('IPPool', 'pool-a', '{ cidr: 10.65.0.0/16, blockSize: 33 }'),
      'cluster.yaml: IPPool pool-a: spec.blockSize 33: must be between 20 and 32',
    );
    expectConfigError(
      res('IPPool', 'pool-a', '{ cidr: 10.0.0.0/8, blockSize: 19 }'),
      'cluster.yaml: IPPool pool-a: spec.blockSize 19: must be between 20 and 32',
    );
    expectConfigError(
      res('IPPool', 'pool-a', '{ cidr: 10.0.0.0/8, blockSize: "26" }'),
      'cluster.yaml: IPPool pool-a: spec.blockSize 26: must be an integer',
    );
  });
  it('rejects a pool smaller than one block (enabled pools only, as Calico)', () => {
    expectConfigError(
      res('IPPool', 'small', '{ cidr: 10.65.0.0/28 }'),
      `${F}: IPPool small: spec.blockSize 26: a /26 block is larger than the pool 10.65.0.0/28 (must be at least 28)`,
    );
    expect(load(res('IPPool', 'small', '{ cidr: 10.65.0.0/28, disabled: true }')).pools[0].disabled).toBe(
      true,
    );
  });
  it('rejects IPIP and VXLAN on together', () => {
    expectConfigError(
      res('IPPool', 'p', '{ cidr: 10.65.0.0/16, ipipMode: Always, vxlanMode: CrossSubnet }'),
      `${F}: IPPool p: spec.vxlanMode CrossSubnet: cannot be enabled together with ipipMode Always`,
    );
  });
  it('rejects unknown mode strings (case matters, as in Calico)', () => {
    expectConfigError(
      res('IPPool', 'p', '{ cidr: 10.65.0.0/16, ipipMode: always }'),
      `${F}: IPPool p: spec.ipipMode always: must be one of Always, CrossSubnet, Never`,
    );
    expectConfigError(
      res('IPPool', 'p', '{ cidr: 10.65.0.0/16, vxlanMode: Sometimes }'),
      `${F}: IPPool p: spec.vxlanMode Sometimes: must be one of Always, CrossSubnet, Never`,
    );
  });
  it('rejects non-boolean flags', () => {
    expectConfigError(
      res('IPPool', 'p', '{ cidr: 10.65.0.0/16, natOutgoing: "yes" }'),
      `${F}: IPPool p: spec.natOutgoing yes: must be true or false`,
    );
  });
  it('rejects overlapping pools', () => {
    expectConfigError(
      withBase(res('IPPool', 'b', '{ cidr: 10.65.128.0/20 }')),
      `${F}: IPPool b: spec.cidr 10.65.128.0/20: overlaps IPPool pool-a (10.65.0.0/16)`,
    );
  });
  it('rejects pools overlapping link-local 169.254.0.0/16', () => {
    expectConfigError(
      res('IPPool', 'p', '{ cidr: 169.254.0.0/20 }'),
      `${F}: IPPool p: spec.cidr 169.254.0.0/20: overlaps the IPv4 link-local range 169.254.0.0/16`,
    );
  });
  it('ignores IPv6 pools', () => {
    const cfg = load(withBase(res('IPPool', 'v6', '{ cidr: "fd00:10:244::/64", blockSize: 122 }')));
    expect(cfg.pools).toHaveLength(1);
    expect(cfg.ignored).toEqual([
      { kind: 'IPPool', name: 'v6', reason: 'IPv6 pool (calitap routes IPv4 only)' },
    ]);
  });
});

describe('Node', () => {
  it('rejects a bad spec.bgp.ipv4Address', () => {
    expectConfigError(
      res('Node', 'n', '{ bgp: { ipv4Address: 10.0.0.300/24 } }'),
      `${F}: Node n: spec.bgp.ipv4Address 10.0.0.300/24: must be an IPv4 address with prefix length like 10.0.0.1/24`,
    );
  });
  it('rejects bad tunnel addresses and MACs', () => {
    expectConfigError(
      res('Node', 'n', '{ bgp: { ipv4IPIPTunnelAddr: 10.65.0 } }'),
      `${F}: Node n: spec.bgp.ipv4IPIPTunnelAddr 10.65.0: must be an IPv4 address like 10.0.0.1`,
    );
    expectConfigError(
      res('Node', 'n', '{ ipv4VXLANTunnelAddr: "10.65.0.1/32" }'),
      `${F}: Node n: spec.ipv4VXLANTunnelAddr 10.65.0.1/32: must be an IPv4 address like 10.0.0.1`,
    );
    expectConfigError(
      res('Node', 'n', '{ vxlanTunnelMACAddr: "66:00:00:00:00" }'),
      `${F}: Node n: spec.vxlanTunnelMACAddr 66:00:00:00:00: must be a MAC address like 52:54:00:12:34:56`,
    );
  });
  it('rejects AS numbers outside 1..4294967295 and accepts asdot', () => {
    expectConfigError(
      res('Node', 'n', '{ bgp: { asNumber: 0 } }'),
      `${F}: Node n: spec.bgp.asNumber 0: must be an AS number between 1 and 4294967295`,
    );
    expectConfigError(
      res('Node', 'n', '{ bgp: { asNumber: 4294967296 } }'),
      `${F}: Node n: spec.bgp.asNumber 4294967296: must be an AS number between 1 and 4294967295`,
    );
    expect(load(res('Node', 'n', '{ bgp: { asNumber: "1.10" } }')).nodes.get('n')?.asNumber).toBe(65546);
    expect(load(res('Node', 'n', '{ bgp: { asNumber: 4294967295 } }')).nodes.get('n')?.asNumber).toBe(
      4294967295,
    );
  });
  it('rejects a bad routeReflectorClusterID', () => {
    expectConfigError(
      res('Node', 'n', '{ bgp: { routeReflectorClusterID: rr1 } }'),
      `${F}: Node n: spec.bgp.routeReflectorClusterID rr1: must be an IPv4 address like 10.0.0.1`,
    );
  });
  it('rejects two nodes with the same address', () => {
    expectConfigError(
      withBase(res('Node', 'node-c', '{ bgp: { ipv4Address: 10.0.0.2/16 } }')),
      `${F}: Node node-c: spec.bgp.ipv4Address 10.0.0.2/16: same address as Node node-b`,
    );
  });
});

describe('BlockAffinity', () => {
  it('rejects a block outside every pool', () => {
    expectConfigError(
      withBase(res('BlockAffinity', 'b1', '{ node: node-a, cidr: 10.66.0.0/26 }')),
      `${F}: BlockAffinity b1: spec.cidr 10.66.0.0/26: outside every IPPool`,
    );
  });
  it("rejects a block that is not of its pool's block size", () => {
    expectConfigError(
      withBase(res('BlockAffinity', 'b1', '{ node: node-a, cidr: 10.65.0.0/24 }')),
      `${F}: BlockAffinity b1: spec.cidr 10.65.0.0/24: not a block of IPPool pool-a (blockSize 26)`,
    );
  });
  it('rejects host bits in the block', () => {
    expectConfigError(
      withBase(res('BlockAffinity', 'b1', '{ node: node-a, cidr: 10.65.0.10/26 }')),
      `${F}: BlockAffinity b1: spec.cidr 10.65.0.10/26: host bits set (the network is 10.65.0.0/26)`,
    );
  });
  it('rejects an unknown node', () => {
    expectConfigError(
      withBase(res('BlockAffinity', 'b1', '{ node: node-z, cidr: 10.65.0.0/26 }')),
      `${F}: BlockAffinity b1: spec.node node-z: no Node with this name`,
    );
  });
  it('rejects one block confirmed for two nodes', () => {
    expectConfigError(
      withBase(
        res('BlockAffinity', 'b1', '{ node: node-a, cidr: 10.65.0.0/26 }'),
        res('BlockAffinity', 'b2', '{ node: node-b, cidr: 10.65.0.0/26 }'),
      ),
      `${F}: BlockAffinity b2: spec.cidr 10.65.0.0/26: block already affine to node node-a (BlockAffinity b1)`,
    );
    // A pending claim by another node is not a conflict (Calico's affinity handshake).
    const cfg = load(
      withBase(
        res('BlockAffinity', 'b1', '{ node: node-a, cidr: 10.65.0.0/26 }'),
        res('BlockAffinity', 'b2', '{ node: node-b, cidr: 10.65.0.0/26, state: pending }'),
      ),
    );
    expect(cfg.affinities.map((a) => a.state)).toEqual(['confirmed', 'pending']);
  });
  it('rejects unknown states', () => {
    expectConfigError(
      withBase(res('BlockAffinity', 'b1', '{ node: node-a, cidr: 10.65.0.0/26, state: done }')),
      `${F}: BlockAffinity b1: spec.state done: must be one of confirmed, pending, pendingDeletion`,
    );
  });
});

describe('WorkloadEndpoint', () => {
  const wep = (name: string, spec: string) => res('WorkloadEndpoint', name, spec);
  it('rejects an unknown node', () => {
    expectConfigError(
      withBase(
        wep(
          'w',
          '{ node: node-z, interfaceName: cali1, ipNetworks: [10.65.0.2/32], mac: 02:00:00:00:00:01 }',
        ),
      ),
      `${F}: WorkloadEndpoint w: spec.node node-z: no Node with this name`,
    );
  });
  it('rejects an address outside every pool', () => {
    expectConfigError(
      withBase(
        wep('w', '{ node: node-a, interfaceName: cali1, ipNetworks: [10.9.0.2], mac: 02:00:00:00:00:01 }'),
      ),
      `${F}: WorkloadEndpoint w: spec.ipNetworks[0] 10.9.0.2/32: outside every IPPool`,
    );
  });
  it('rejects bad addresses', () => {
    expectConfigError(
      withBase(
        wep('w', '{ node: node-a, interfaceName: cali1, ipNetworks: [10.65.0.256], mac: 02:00:00:00:00:01 }'),
      ),
      `${F}: WorkloadEndpoint w: spec.ipNetworks[0] 10.65.0.256: must be an IPv4 address or CIDR like 10.65.0.24/32`,
    );
    expectConfigError(
      withBase(
        wep('w', '{ node: node-a, interfaceName: cali1, ipNetworks: 10.65.0.2, mac: 02:00:00:00:00:01 }'),
      ),
      `${F}: WorkloadEndpoint w: spec.ipNetworks 10.65.0.2: must be a list, got string`,
    );
  });
  it('rejects a malformed MAC and requires one', () => {
    expectConfigError(
      withBase(
        wep('w', '{ node: node-a, interfaceName: cali1, ipNetworks: [10.65.0.2], mac: 02:00:00:00:00:0g }'),
      ),
      `${F}: WorkloadEndpoint w: spec.mac 02:00:00:00:00:0g: must be a MAC address like 52:54:00:12:34:56`,
    );
    expectConfigError(
      withBase(wep('w', '{ node: node-a, interfaceName: cali1, ipNetworks: [10.65.0.2] }')),
      `${F}: WorkloadEndpoint w: spec.mac: required`,
    );
  });
  it('rejects bad interface names', () => {
    expectConfigError(
      withBase(wep('w', '{ node: node-a, interfaceName: cali0123456789abc, mac: 02:00:00:00:00:01 }')),
      `${F}: WorkloadEndpoint w: spec.interfaceName cali0123456789abc: must be 1-15 characters of letters, digits, "_", "." or "-"`,
    );
  });
  it('rejects duplicate interface names on one node, shared with the Uplink', () => {
    expectConfigError(
      withBase(
        wep('w1', '{ node: node-a, interfaceName: cali1, ipNetworks: [10.65.0.2], mac: 02:00:00:00:00:01 }'),
        wep('w2', '{ node: node-a, interfaceName: cali1, ipNetworks: [10.65.0.3], mac: 02:00:00:00:00:02 }'),
      ),
      `${F}: WorkloadEndpoint w2: spec.interfaceName cali1: already used on node node-a by WorkloadEndpoint w1`,
    );
    expectConfigError(
      withBase(
        res('Uplink', 'node-a', '{ interfaceName: eth0 }', 'calitap/v1'),
        wep('w1', '{ node: node-a, interfaceName: eth0, ipNetworks: [10.65.0.2], mac: 02:00:00:00:00:01 }'),
      ),
      `${F}: WorkloadEndpoint w1: spec.interfaceName eth0: already used on node node-a by Uplink node-a`,
    );
    // The same name on two nodes is fine.
    const cfg = load(
      withBase(
        wep('w1', '{ node: node-a, interfaceName: cali1, ipNetworks: [10.65.0.2], mac: 02:00:00:00:00:01 }'),
        wep('w2', '{ node: node-b, interfaceName: cali1, ipNetworks: [10.65.0.66], mac: 02:00:00:00:00:02 }'),
      ),
    );
    expect(cfg.endpoints).toHaveLength(2);
  });
  it('rejects two endpoints with one address', () => {
    expectConfigError(
      withBase(
        wep('w1', '{ node: node-a, interfaceName: cali1, ipNetworks: [10.65.0.2], mac: 02:00:00:00:00:01 }'),
        wep(
          'w2',
          '{ node: node-b, interfaceName: cali2, ipNetworks: [10.65.0.2/32], mac: 02:00:00:00:00:02 }',
        ),
      ),
      `${F}: WorkloadEndpoint w2: spec.ipNetworks[0] 10.65.0.2/32: address already used by WorkloadEndpoint w1`,
    );
  });
  it('accepts bare and /32 addresses, keeps other lengths, skips IPv6', () => {
    const cfg = load(
      withBase(
        wep(
          'w',
          '{ node: node-a, interfaceName: cali1, mac: 02:AA:00:00:00:01, ' +
            'ipNetworks: [10.65.0.2, 10.65.0.3/32, 10.65.1.0/30, "fd00::2/128"] }',
        ),
      ),
    );
    expect(cfg.endpoints[0]).toEqual({
      name: 'w',
      namespace: 'default',
      node: 'node-a',
      interfaceName: 'cali1',
      mac: '02:aa:00:00:00:01',
      ipNetworks: [
        { addr: 0x0a410002, len: 32 },
        { addr: 0x0a410003, len: 32 },
        { addr: 0x0a410100, len: 30 },
      ],
    });
  });
});

describe('FelixConfiguration', () => {
  const felix = (spec: string, name = 'default') => withBase(res('FelixConfiguration', name, spec));
  it('rejects a bad natOutgoingAddress', () => {
    expectConfigError(
      felix('{ natOutgoingAddress: 10.0.0 }'),
      `${F}: FelixConfiguration default: spec.natOutgoingAddress 10.0.0: must be an IPv4 address like 10.0.0.1`,
    );
  });
  it("parses natPortRange in Calico's lo:hi form", () => {
    expect(load(felix('{ natPortRange: "32768:65535" }')).felix.natPortRange).toEqual([32768, 65535]);
    expect(load(felix('{ natPortRange: 40000 }')).felix.natPortRange).toEqual([40000, 40000]);
    expectConfigError(
      felix('{ natPortRange: "32768-65535" }'),
      `${F}: FelixConfiguration default: spec.natPortRange 32768-65535: must be a port or a range "lo:hi" (Calico's form, e.g. 32768:65535)`,
    );
  });
  it('reads defaultEndpointToHostAction (Drop, Accept, Return; unset: none) and refuses other values', () => {
    for (const v of ['Drop', 'Accept', 'Return'])
      expect(load(felix(`{ defaultEndpointToHostAction: ${v} }`)).felix.defaultEndpointToHostAction).toBe(v);
    expect(load(felix('{ vxlanVNI: 4096 }')).felix.defaultEndpointToHostAction).toBeUndefined();
    expectConfigError(
      felix('{ defaultEndpointToHostAction: DROP }'),
      `${F}: FelixConfiguration default: spec.defaultEndpointToHostAction DROP: must be Drop, Accept or Return`,
    );
  });
  it('rejects natPortRange lo > hi and out-of-range ports', () => {
    expectConfigError(
      felix('{ natPortRange: "60000:50000" }'),
      `${F}: FelixConfiguration default: spec.natPortRange 60000:50000: range start 60000 is greater than its end 50000`,
    );
    expectConfigError(
      felix('{ natPortRange: "0:70000" }'),
      `${F}: FelixConfiguration default: spec.natPortRange 0:70000: ports must be between 1 and 65535`,
    );
  });
  it('rejects VNI outside 1..16777215', () => {
    expectConfigError(
      felix('{ vxlanVNI: 0 }'),
      `${F}: FelixConfiguration default: spec.vxlanVNI 0: must be between 1 and 16777215`,
    );
    expectConfigError(
      felix('{ vxlanVNI: 16777216 }'),
      `${F}: FelixConfiguration default: spec.vxlanVNI 16777216: must be between 1 and 16777215`,
    );
    expect(load(felix('{ vxlanVNI: 16777215 }')).felix.vxlanVNI).toBe(16777215);
  });
  it('rejects vxlanPort outside 1..65535', () => {
    expectConfigError(
      felix('{ vxlanPort: 65536 }'),
      `${F}: FelixConfiguration default: spec.vxlanPort 65536: must be between 1 and 65535`,
    );
  });
  it('rejects tunnel MTUs below 68 (0 means auto)', () => {
    expectConfigError(
      felix('{ ipipMTU: 40 }'),
      `${F}: FelixConfiguration default: spec.ipipMTU 40: must be 0 (auto) or between 68 and 65535`,
    );
    expectConfigError(
      felix('{ vxlanMTU: 70000 }'),
      `${F}: FelixConfiguration default: spec.vxlanMTU 70000: must be between 0 and 65535`,
    );
    const cfg = load(felix('{ ipipMTU: 0, vxlanMTU: 1400 }'));
    expect(cfg.felix.ipipMTU).toBeUndefined();
    expect(cfg.felix.vxlanMTU).toBe(1400);
  });
  it('ignores FelixConfigurations Felix would not read', () => {
    expect(load(felix('{ vxlanVNI: 7 }', 'custom')).ignored).toEqual([
      {
        kind: 'FelixConfiguration',
        name: 'custom',
        reason: 'Felix only reads FelixConfiguration "default" and "node.<nodename>"',
      },
    ]);
  });
});

describe('BGPConfiguration and BGPPeer', () => {
  it('rejects a bad listenPort and AS number', () => {
    expectConfigError(
      withBase(res('BGPConfiguration', 'default', '{ listenPort: 0 }')),
      `${F}: BGPConfiguration default: spec.listenPort 0: must be between 1 and 65535`,
    );
    expectConfigError(
      withBase(res('BGPConfiguration', 'default', '{ asNumber: -1 }')),
      `${F}: BGPConfiguration default: spec.asNumber -1: must be an AS number between 1 and 4294967295`,
    );
  });
  it('rejects a bad peerIP and accepts ip:port', () => {
    expectConfigError(
      withBase(res('BGPPeer', 'p', '{ peerIP: 10.0.0.999, asNumber: 65000 }')),
      `${F}: BGPPeer p: spec.peerIP 10.0.0.999: must be an IPv4 address, optionally with ":port"`,
    );
    expectConfigError(
      withBase(res('BGPPeer', 'p', '{ peerIP: "10.0.0.9:0", asNumber: 65000 }')),
      `${F}: BGPPeer p: spec.peerIP 10.0.0.9:0: port must be between 1 and 65535`,
    );
    const cfg = load(withBase(res('BGPPeer', 'p', '{ peerIP: "10.0.0.9:1179", asNumber: 65000 }')));
    expect(cfg.peers[0]).toEqual({ name: 'p', peerIP: 0x0a000009, peerPort: 1179, asNumber: 65000 });
  });
  it('requires the peer AS number in range', () => {
    expectConfigError(
      withBase(res('BGPPeer', 'p', '{ peerIP: 10.0.0.9 }')),
      `${F}: BGPPeer p: spec.asNumber: required`,
    );
    expectConfigError(
      withBase(res('BGPPeer', 'p', '{ peerIP: 10.0.0.9, asNumber: 4294967296 }')),
      `${F}: BGPPeer p: spec.asNumber 4294967296: must be an AS number between 1 and 4294967295`,
    );
  });
  it('rejects a peer for an unknown node', () => {
    expectConfigError(
      withBase(res('BGPPeer', 'p', '{ peerIP: 10.0.0.9, asNumber: 65000, node: node-z }')),
      `${F}: BGPPeer p: spec.node node-z: no Node with this name`,
    );
  });
  it('accepts nodeSelector all() only', () => {
    expect(
      load(withBase(res('BGPPeer', 'p', '{ peerIP: 10.0.0.9, asNumber: 1, nodeSelector: all() }'))).peers[0],
    ).toMatchObject({ nodeSelector: 'all()' });
    expectConfigError(
      withBase(res('BGPPeer', 'p', '{ peerIP: 10.0.0.9, asNumber: 1, nodeSelector: "rack == \'a\'" }')),
      `${F}: BGPPeer p: spec.nodeSelector "rack == 'a'": unsupported selector: calitap only understands all() (or no selector)`,
    );
    expectConfigError(
      withBase(res('BGPPeer', 'p', '{ peerIP: 10.0.0.9, asNumber: 1, node: node-a, nodeSelector: all() }')),
      `${F}: BGPPeer p: spec.nodeSelector all(): cannot be set together with spec.node`,
    );
  });
});

describe('Uplink', () => {
  const up = (name: string, spec: string) => withBase(res('Uplink', name, spec, 'calitap/v1'));
  it('rejects an unknown node', () => {
    expectConfigError(
      up('node-z', '{ interfaceName: eth0 }'),
      `${F}: Uplink node-z: metadata.name node-z: no Node with this name`,
    );
  });
  it('requires an interface name', () => {
    expectConfigError(up('node-a', '{ mtu: 1500 }'), `${F}: Uplink node-a: spec.interfaceName: required`);
  });
  it('rejects a bad gateway, MAC and MTU', () => {
    expectConfigError(
      up('node-a', '{ interfaceName: eth0, gateway: 10.0.0.254/24 }'),
      `${F}: Uplink node-a: spec.gateway 10.0.0.254/24: must be an IPv4 address like 10.0.0.1`,
    );
    expectConfigError(
      up('node-a', '{ interfaceName: eth0, mac: 52-54-00-00-00 }'),
      `${F}: Uplink node-a: spec.mac 52-54-00-00-00: must be a MAC address like 52:54:00:12:34:56`,
    );
    expectConfigError(
      up('node-a', '{ interfaceName: eth0, mtu: 100 }'),
      `${F}: Uplink node-a: spec.mtu 100: must be between 576 and 65535`,
    );
  });
  it('validates neighbors', () => {
    expectConfigError(
      up('node-a', '{ interfaceName: eth0, neighbors: [{ ip: 10.0.0.2 }] }'),
      `${F}: Uplink node-a: spec.neighbors[0].mac: required`,
    );
    expectConfigError(
      up('node-a', '{ interfaceName: eth0, neighbors: [{ ip: 10.0.0.x, mac: 52:54:00:00:00:01 }] }'),
      `${F}: Uplink node-a: spec.neighbors[0].ip 10.0.0.x: must be an IPv4 address like 10.0.0.1`,
    );
    expectConfigError(
      up(
        'node-a',
        '{ interfaceName: eth0, neighbors: [{ ip: 10.0.0.2, mac: 52:54:00:00:00:01 }, { ip: 10.0.0.2, mac: 52:54:00:00:00:02 }] }',
      ),
      `${F}: Uplink node-a: spec.neighbors[1].ip 10.0.0.2: listed twice`,
    );
  });
});
