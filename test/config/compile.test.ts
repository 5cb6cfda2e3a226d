// Route compilation: the sample cluster for each node, CrossSubnet decisions, Calico's edge cases and
// the NAT / pool helpers.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatIp4, formatPrefix4 } from '../../src/common/addr.js';
import { ConfigError } from '../../src/common/errors.js';
import {
  compileRoutes,
  localNode,
  natOutgoingApplies,
  poolFor,
  type RouteSpec,
} from '../../src/control/config/compile.js';
import { loadConfigFile } from '../../src/control/config/load.js';
import { load, res, withBase } from './helpers.js';

const SAMPLE = fileURLToPath(new URL('../../pcaps/sample-config.yaml', import.meta.url));

/** One readable line per route. */
function show(r: RouteSpec): string {
  const parts = [formatPrefix4(r.prefix), r.via, r.source];
  if (r.nextHop !== undefined) parts.push(`via ${formatIp4(r.nextHop)}`);
  if (r.port !== undefined) parts.push(`port ${r.port}`);
  if (r.mac !== undefined) parts.push(`mac ${r.mac}`);
  if (r.node !== undefined) parts.push(`node ${r.node}`);
  if (r.linkNextHop !== undefined) parts.push(`link ${formatIp4(r.linkNextHop)}`);
  return parts.join(' ');
}

function routesOf(text: string, node: string): string[] {
  return compileRoutes(load(text), node).routes.map(show);
}

const ip = (s: string) => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);

describe('sample config', () => {
  const cfg = loadConfigFile(SAMPLE);

  it('loads completely', () => {
    expect(cfg.source).toBe(SAMPLE);
    expect(cfg.pools.map((p) => p.name)).toEqual(['pool-ipip', 'pool-vxlan']);
    expect([...cfg.nodes.keys()]).toEqual(['node-a', 'node-b', 'node-c']);
    expect(cfg.affinities).toHaveLength(6);
    expect(cfg.endpoints.map((e) => e.interfaceName)).toEqual([
      'cali1a2b3c4d5e6',
      'cali0123456789a',
      'cali9f8e7d6c5b4',
    ]);
    expect(cfg.felix).toEqual({ vxlanVNI: 4096, vxlanPort: 4789, natPortRange: [32768, 65535] });
    expect(cfg.felix.natOutgoingAddress).toBeUndefined();
    expect(cfg.bgp).toEqual({ asNumber: 64512, nodeToNodeMeshEnabled: true, listenPort: 179 });
    expect(cfg.uplinks.get('node-a')).toEqual({
      node: 'node-a',
      interfaceName: 'uplink',
      mac: '52:54:00:00:00:0a',
      gateway: ip('10.0.0.254'),
      mtu: 1500,
      neighbors: [
        { ip: ip('10.0.0.254'), mac: '52:54:00:00:00:fe' },
        { ip: ip('10.0.0.2'), mac: '52:54:00:00:00:0b' },
      ],
    });
    expect(cfg.ignored).toEqual([]);
  });

  it('compiles node-a', () => {
    const { routes, warnings } = compileRoutes(cfg, 'node-a');
    expect(warnings).toEqual([]);
    expect(routes.map(show)).toEqual([
      '0.0.0.0/0 gateway config via 10.0.0.254 port uplink link 10.0.0.254',
      '10.65.0.0/26 blackhole ipam',
      '10.65.0.2/32 local workload port cali1a2b3c4d5e6 mac 0a:58:0a:41:00:02',
      '10.65.0.3/32 local workload port cali0123456789a mac 0a:58:0a:41:00:03',
      '10.65.0.64/26 direct ipam via 10.0.0.2 port uplink node node-b link 10.0.0.2',
      '10.65.0.128/26 ipip ipam via 10.1.0.3 port uplink node node-c link 10.0.0.254',
      '10.66.0.0/26 blackhole ipam',
      '10.66.0.2/32 local workload port cali9f8e7d6c5b4 mac 0a:58:0a:42:00:02',
      '10.66.0.64/26 vxlan ipam via 10.0.0.2 port uplink mac 66:89:3a:22:7a:ac node node-b link 10.0.0.2',
      '10.66.0.128/26 vxlan ipam via 10.1.0.3 port uplink mac 66:1a:b9:f1:6e:af node node-c link 10.0.0.254',
    ]);
    // The exact object shape for one route of each kind.
    expect(routes[0]).toEqual({
      prefix: { addr: 0, len: 0 },
      via: 'gateway',
      source: 'config',
      nextHop: ip('10.0.0.254'),
      port: 'uplink',
      linkNextHop: ip('10.0.0.254'),
    });
    expect(routes[1]).toEqual({
      prefix: { addr: ip('10.65.0.0'), len: 26 },
      via: 'blackhole',
      source: 'ipam',
    });
    expect(routes[2]).toEqual({
      prefix: { addr: ip('10.65.0.2'), len: 32 },
      via: 'local',
      source: 'workload',
      port: 'cali1a2b3c4d5e6',
      mac: '0a:58:0a:41:00:02',
    });
  });

  it('compiles node-b', () => {
    const { routes, warnings } = compileRoutes(cfg, 'node-b');
    expect(warnings).toEqual([]);
    expect(routes.map(show)).toEqual([
      '0.0.0.0/0 gateway config via 10.0.0.254 port uplink link 10.0.0.254',
      '10.65.0.0/26 direct ipam via 10.0.0.1 port uplink node node-a link 10.0.0.1',
      '10.65.0.64/26 blackhole ipam',
      '10.65.0.128/26 ipip ipam via 10.1.0.3 port uplink node node-c link 10.0.0.254',
      '10.66.0.0/26 vxlan ipam via 10.0.0.1 port uplink mac 66:07:02:c1:cc:60 node node-a link 10.0.0.1',
      '10.66.0.64/26 blackhole ipam',
      '10.66.0.128/26 vxlan ipam via 10.1.0.3 port uplink mac 66:1a:b9:f1:6e:af node node-c link 10.0.0.254',
    ]);
  });

  it('compiles node-c', () => {
    const { routes, warnings } = compileRoutes(cfg, 'node-c');
    expect(warnings).toEqual([]);
    expect(routes.map(show)).toEqual([
      '0.0.0.0/0 gateway config via 10.1.0.254 port uplink link 10.1.0.254',
      '10.65.0.0/26 ipip ipam via 10.0.0.1 port uplink node node-a link 10.1.0.254',
      '10.65.0.64/26 ipip ipam via 10.0.0.2 port uplink node node-b link 10.1.0.254',
      '10.65.0.128/26 blackhole ipam',
      '10.66.0.0/26 vxlan ipam via 10.0.0.1 port uplink mac 66:07:02:c1:cc:60 node node-a link 10.1.0.254',
      '10.66.0.64/26 vxlan ipam via 10.0.0.2 port uplink mac 66:89:3a:22:7a:ac node node-b link 10.1.0.254',
      '10.66.0.128/26 blackhole ipam',
    ]);
  });

  it('applies natOutgoing as Calico does', () => {
    expect(natOutgoingApplies(cfg, ip('10.65.0.2'), ip('8.8.8.8'))).toBe(true);
    expect(natOutgoingApplies(cfg, ip('10.65.0.2'), ip('10.66.0.70'))).toBe(false); // dst in a pool
    expect(natOutgoingApplies(cfg, ip('10.65.0.2'), ip('10.65.0.70'))).toBe(false);
    expect(natOutgoingApplies(cfg, ip('10.66.0.2'), ip('8.8.8.8'))).toBe(false); // pool without natOutgoing
    expect(natOutgoingApplies(cfg, ip('10.0.0.1'), ip('8.8.8.8'))).toBe(false); // src in no pool
  });

  it('rejects an unknown node', () => {
    expect(() => compileRoutes(cfg, 'node-z')).toThrow(ConfigError);
    expect(() => localNode(cfg, 'node-z')).toThrow(
      `${SAMPLE}: Node node-z: no Node with this name (known: node-a, node-b, node-c)`,
    );
  });
});

/** Two nodes (a at 10.0.0.1/<len>, b at <bIp>) sharing one pool of the given modes, one block on b. */
function twoNodes(opts: {
  aAddr: string;
  bAddr?: string;
  ipip?: string;
  vxlan?: string;
  bVxlanAddr?: boolean;
}) {
  const b = [`bgp: { ${opts.bAddr ? `ipv4Address: ${opts.bAddr}` : ''} }`];
  if (opts.bVxlanAddr !== false) b.push('ipv4VXLANTunnelAddr: 10.65.0.65');
  return [
    res(
      'IPPool',
      'p',
      `{ cidr: 10.65.0.0/16, ipipMode: ${opts.ipip ?? 'Never'}, vxlanMode: ${opts.vxlan ?? 'Never'} }`,
    ),
    res('Node', 'a', `{ bgp: { ipv4Address: ${opts.aAddr} } }`),
    res('Node', 'b', `{ ${b.join(', ')} }`),
    res('Uplink', 'a', '{ interfaceName: eth0, gateway: 10.0.0.254 }', 'calitap/v1'),
    res('BlockAffinity', 'blk', '{ node: b, cidr: 10.65.0.64/26 }'),
  ].join('---\n');
}

function blockRoute(text: string): { via?: string; warnings: string[] } {
  const { routes, warnings } = compileRoutes(load(text), 'a');
  return { via: routes.find((r) => r.prefix.len === 26)?.via, warnings };
}

describe('CrossSubnet decisions', () => {
  const cases: [string, string, string, string, string][] = [
    // local address, remote address, ipipMode, vxlanMode, expected via
    ['10.0.0.1/24', '10.0.0.2/24', 'CrossSubnet', 'Never', 'direct'],
    ['10.0.0.1/24', '10.0.1.2/24', 'CrossSubnet', 'Never', 'ipip'],
    ['10.0.0.1/16', '10.0.1.2/24', 'CrossSubnet', 'Never', 'direct'], // our /16 contains it
    ['10.0.0.1/32', '10.0.0.2/24', 'CrossSubnet', 'Never', 'ipip'], // bare address: subnet of one
    ['10.0.0.1/24', '10.0.0.2/24', 'Never', 'CrossSubnet', 'direct'],
    ['10.0.0.1/24', '10.0.1.2/24', 'Never', 'CrossSubnet', 'vxlan'],
    ['10.0.0.1/24', '10.0.0.2/24', 'Always', 'Never', 'ipip'],
    ['10.0.0.1/24', '10.0.0.2/24', 'Never', 'Always', 'vxlan'],
    ['10.0.0.1/24', '10.0.0.2/24', 'Never', 'Never', 'direct'],
  ];
  it.each(cases)('local %s, remote %s, ipip %s, vxlan %s → %s', (a, b, ipip, vxlan, via) => {
    expect(blockRoute(twoNodes({ aAddr: a, bAddr: b, ipip, vxlan })).via).toBe(via);
  });
  it('uses the remote node IP, not its subnet, to decide', () => {
    // b's own /8 would contain a, but only our subnet counts (Felix: nodeInOurSubnet).
    expect(blockRoute(twoNodes({ aAddr: '10.0.0.1/24', bAddr: '10.0.1.2/8', ipip: 'CrossSubnet' })).via).toBe(
      'ipip',
    );
  });
  it('sends the outer frame of an off-subnet tunnel to the gateway', () => {
    const { routes } = compileRoutes(
      load(twoNodes({ aAddr: '10.0.0.1/24', bAddr: '10.0.1.2/24', ipip: 'Always' })),
      'a',
    );
    const r = routes.find((x) => x.via === 'ipip');
    expect(r && formatIp4(r.linkNextHop!)).toBe('10.0.0.254');
    expect(r && formatIp4(r.nextHop!)).toBe('10.0.1.2');
  });
});

describe('edge cases', () => {
  it('skips and warns for a remote node without a BGP address', () => {
    const { via, warnings } = blockRoute(twoNodes({ aAddr: '10.0.0.1/24', ipip: 'Always' }));
    expect(via).toBeUndefined();
    expect(warnings).toEqual([
      'block 10.65.0.64/26 of node b not routed: node b has no spec.bgp.ipv4Address',
    ]);
  });
  it('skips and warns for a VXLAN block whose node has no VTEP address', () => {
    const { via, warnings } = blockRoute(
      twoNodes({ aAddr: '10.0.0.1/24', bAddr: '10.0.0.2/24', vxlan: 'Always', bVxlanAddr: false }),
    );
    expect(via).toBeUndefined();
    expect(warnings).toEqual([
      'block 10.65.0.64/26 of node b not routed: node b has no spec.ipv4VXLANTunnelAddr (no VTEP)',
    ]);
  });
  it('warns about a Never-mode block to a node outside our subnet', () => {
    const { via, warnings } = blockRoute(twoNodes({ aAddr: '10.0.0.1/24', bAddr: '10.0.1.2/24' }));
    expect(via).toBe('direct');
    expect(warnings).toEqual([
      "block 10.65.0.64/26 of node b routed directly to 10.0.1.2, outside this node's subnet 10.0.0.1/24 (pool p mode Never)",
    ]);
  });
  it('routes only confirmed, undeleted affinities', () => {
    const text = withBase(
      res('Node', 'node-c', '{ bgp: { ipv4Address: 10.0.0.3/24 } }'),
      res('BlockAffinity', 'b1', '{ node: node-b, cidr: 10.65.0.64/26, state: pending }'),
      res('BlockAffinity', 'b2', '{ node: node-b, cidr: 10.65.0.128/26, state: pendingDeletion }'),
      res('BlockAffinity', 'b3', '{ node: node-c, cidr: 10.65.0.192/26, deleted: true }'),
      res('BlockAffinity', 'b4', '{ node: node-a, cidr: 10.65.1.0/26, state: pending }'),
      res('BlockAffinity', 'b5', '{ node: node-b, cidr: 10.65.1.64/26 }'),
    );
    expect(routesOf(text, 'node-a')).toEqual([
      '10.65.1.64/26 direct ipam via 10.0.0.2 node node-b link 10.0.0.2',
    ]);
  });
  it('keeps routing blocks of disabled pools (disabled only stops new allocations)', () => {
    const text = [
      res('IPPool', 'old', '{ cidr: 10.70.0.0/16, ipipMode: Always, disabled: true, natOutgoing: true }'),
      res('Node', 'a', '{ bgp: { ipv4Address: 10.0.0.1/24 } }'),
      res('Node', 'b', '{ bgp: { ipv4Address: 10.0.0.2/24 } }'),
      res('BlockAffinity', 'blk', '{ node: b, cidr: 10.70.0.0/26 }'),
    ].join('---\n');
    expect(routesOf(text, 'a')).toEqual(['10.70.0.0/26 ipip ipam via 10.0.0.2 node b link 10.0.0.2']);
    const cfg = load(text);
    expect(poolFor(cfg, ip('10.70.3.3'))?.name).toBe('old');
    // A disabled pool still counts on both sides of the natOutgoing rule.
    expect(natOutgoingApplies(cfg, ip('10.70.0.5'), ip('1.1.1.1'))).toBe(true);
  });
  it('does not SNAT towards a disabled pool', () => {
    const cfg = load(
      withBase(
        res('IPPool', 'nat', '{ cidr: 10.66.0.0/16, natOutgoing: true }'),
        res('IPPool', 'ext', '{ cidr: 192.168.0.0/16, disabled: true }'),
      ),
    );
    expect(natOutgoingApplies(cfg, ip('10.66.0.5'), ip('192.168.1.1'))).toBe(false);
    expect(natOutgoingApplies(cfg, ip('10.66.0.5'), ip('192.169.1.1'))).toBe(true);
    expect(poolFor(cfg, ip('11.0.0.1'))).toBeUndefined();
  });
  it('routes remote workload addresses outside their node’s blocks (borrowed IPs) as /32s', () => {
    const wep = (name: string, node: string, addr: string, iface: string) =>
      res(
        'WorkloadEndpoint',
        name,
        `{ node: ${node}, interfaceName: ${iface}, ipNetworks: [${addr}], mac: 02:00:00:00:00:01 }`,
      );
    const text = withBase(
      res('BlockAffinity', 'ba', '{ node: node-a, cidr: 10.65.0.0/26 }'),
      res('BlockAffinity', 'bb', '{ node: node-b, cidr: 10.65.0.64/26 }'),
      wep('in-own-block', 'node-b', '10.65.0.66', 'cali1'),
      wep('borrowed', 'node-b', '10.65.0.7', 'cali2'),
      wep('blockless', 'node-b', '10.65.9.9', 'cali3'),
    );
    expect(routesOf(text, 'node-a')).toEqual([
      '10.65.0.0/26 blackhole ipam',
      '10.65.0.7/32 direct ipam via 10.0.0.2 node node-b link 10.0.0.2',
      '10.65.0.64/26 direct ipam via 10.0.0.2 node node-b link 10.0.0.2',
      '10.65.9.9/32 direct ipam via 10.0.0.2 node node-b link 10.0.0.2',
    ]);
  });
  it('prefers the workload route over a /32 block blackhole', () => {
    const text = [
      res('IPPool', 'p', '{ cidr: 10.65.0.0/24, blockSize: 32 }'),
      res('Node', 'a', '{ bgp: { ipv4Address: 10.0.0.1/24 } }'),
      res('BlockAffinity', 'blk', '{ node: a, cidr: 10.65.0.9/32 }'),
      res(
        'WorkloadEndpoint',
        'w',
        '{ node: a, interfaceName: cali1, ipNetworks: [10.65.0.9], mac: 02:00:00:00:00:01 }',
      ),
    ].join('---\n');
    expect(routesOf(text, 'a')).toEqual(['10.65.0.9/32 local workload port cali1 mac 02:00:00:00:00:01']);
  });
  it('has no default route and warns when the node has no Uplink', () => {
    const text = withBase(res('BlockAffinity', 'bb', '{ node: node-b, cidr: 10.65.0.64/26 }'));
    const { routes, warnings } = compileRoutes(load(text), 'node-a');
    expect(routes.map(show)).toEqual(['10.65.0.64/26 direct ipam via 10.0.0.2 node node-b link 10.0.0.2']);
    expect(warnings).toEqual(['node node-a has no Uplink: remote routes have no port']);
  });
  it('encapsulates CrossSubnet when our node has no BGP address, and warns', () => {
    const text = [
      res('IPPool', 'p', '{ cidr: 10.65.0.0/16, ipipMode: CrossSubnet }'),
      res('Node', 'a', '{}'),
      res('Node', 'b', '{ bgp: { ipv4Address: 10.0.0.2/24 } }'),
      res('BlockAffinity', 'blk', '{ node: b, cidr: 10.65.0.64/26 }'),
    ].join('---\n');
    const { routes, warnings } = compileRoutes(load(text), 'a');
    expect(routes.map(show)).toEqual(['10.65.0.64/26 ipip ipam via 10.0.0.2 node b link 10.0.0.2']);
    expect(warnings).toEqual([
      'node a has no spec.bgp.ipv4Address: tunnels have no outer source address',
      'node a has no Uplink: remote routes have no port',
    ]);
  });
  it('routes every ipNetworks entry of a local workload, whatever its length', () => {
    const text = withBase(
      res(
        'WorkloadEndpoint',
        'w',
        '{ node: node-a, interfaceName: cali1, ipNetworks: [10.65.0.2/32, 10.65.4.0/30], mac: 02:00:00:00:00:01 }',
      ),
    );
    expect(routesOf(text, 'node-a')).toEqual([
      '10.65.0.2/32 local workload port cali1 mac 02:00:00:00:00:01',
      '10.65.4.0/30 local workload port cali1 mac 02:00:00:00:00:01',
    ]);
  });
});
