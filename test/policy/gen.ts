// fast-check generators of random policy models (tiers, policies, profiles, namespaces, endpoints)
// and packets over a small universe of labels, addresses and ports, so that random selectors, nets
// and ports actually hit each other. Shapes follow what config loading produces (types defaulted,
// numeric ports only with TCP/UDP, ICMP fields only with protocol ICMP).
import fc from 'fast-check';
import type {
  Direction,
  EndpointPort,
  EntityMatch,
  NamespaceResource,
  PolicyConfig,
  PolicyEndpoint,
  PolicyResource,
  PolicyRule,
  PortMatch,
  ProfileResource,
  TierResource,
} from '../../src/control/policy/types.js';
import type { NaivePacket } from './naive.js';

export const NODE = 'node-a';
const KEYS = ['app', 'role', 'tier'];
const VALS = ['a', 'b', 'c'];
const NAMESPACES = ['ns1', 'ns2', 'ns3'];
const ip = (a: number, b: number, c: number, d: number) => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
/** a network some endpoint owns (wider than /32): 10.65.1.0/30 */
const WIDE = ip(10, 65, 1, 0);
export const OUTSIDE = ip(192, 0, 2, 5);

const label = fc.constantFrom(...KEYS);
const value = fc.constantFrom(...VALS);
const labels = fc.dictionary(label, value, { maxKeys: 3 });

const leaf = fc.oneof(
  fc.constant('all()'),
  fc.tuple(label, value).map(([k, v]) => `${k} == '${v}'`),
  fc.tuple(label, value).map(([k, v]) => `${k} != '${v}'`),
  label.map((k) => `has(${k})`),
  label.map((k) => `!has(${k})`),
  fc
    .tuple(label, fc.subarray(VALS, { minLength: 1 }))
    .map(([k, vs]) => `${k} in {${vs.map((v) => `'${v}'`).join(', ')}}`),
  fc.tuple(label, fc.subarray(VALS)).map(([k, vs]) => `${k} not in {${vs.map((v) => `'${v}'`).join(', ')}}`),
  fc.tuple(label, fc.constantFrom('a', '')).map(([k, v]) => `${k} starts with '${v}'`),
);
export const selector: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: leaf },
  { weight: 1, arbitrary: fc.tuple(leaf, leaf).map(([a, b]) => `${a} && ${b}`) },
  { weight: 1, arbitrary: fc.tuple(leaf, leaf).map(([a, b]) => `(${a}) || !(${b})`) },
);
const nsSelector = fc.constantFrom(
  'all()',
  'global()',
  "team == 'x'",
  "env != 'prod'",
  "projectcalico.org/name == 'ns2'",
  'has(team)',
);

const netsArb = fc.subarray([
  { addr: ip(10, 65, 0, 0), len: 29 },
  { addr: ip(10, 65, 0, 4), len: 30 },
  { addr: ip(10, 65, 1, 0), len: 24 },
  { addr: ip(192, 0, 2, 0), len: 24 },
  { addr: ip(10, 65, 0, 3), len: 32 },
]);
const portArb: fc.Arbitrary<PortMatch> = fc.constantFrom<PortMatch>(
  { lo: 80, hi: 80 },
  { lo: 1000, hi: 2000 },
  { lo: 53, hi: 53 },
  { name: 'http' },
  { name: 'dns' },
);

/** undefined most of the time: rules with few conditions match often enough to be interesting */
const sometimes = <T>(arb: fc.Arbitrary<T>, weight = 1): fc.Arbitrary<T | undefined> =>
  fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight, arbitrary: arb });

function entity(proto: number | undefined): fc.Arbitrary<EntityMatch> {
  const numeric = proto === 6 || proto === 17;
  const ports = fc
    .array(portArb, { minLength: 1, maxLength: 2 })
    .map((ps) => (numeric ? ps : ps.filter((p) => 'name' in p)));
  return fc
    .record({
      nets: sometimes(netsArb.filter((n) => n.length > 0 && n.length <= 2)),
      notNets: sometimes(netsArb.filter((n) => n.length === 1)),
      selector: sometimes(selector, 2),
      notSelector: sometimes(selector),
      namespaceSelector: sometimes(nsSelector),
      ports: sometimes(ports, 2),
      notPorts: sometimes(ports),
    })
    .map((e) => {
      const out: Record<string, unknown> = {
        nets: e.nets ?? [],
        notNets: e.notNets ?? [],
        ports: e.ports ?? [],
        notPorts: e.notPorts ?? [],
      };
      if (e.selector !== undefined) out.selector = e.selector;
      if (e.notSelector !== undefined) out.notSelector = e.notSelector;
      if (e.namespaceSelector !== undefined) out.namespaceSelector = e.namespaceSelector;
      return out as unknown as EntityMatch;
    });
}

const ruleArb: fc.Arbitrary<PolicyRule> = fc
  .tuple(
    fc.constantFrom<PolicyRule['action']>('Allow', 'Allow', 'Deny', 'Pass', 'Log'),
    fc.constantFrom<number | undefined>(undefined, undefined, 6, 17, 1),
  )
  .chain(([action, protocol]) =>
    fc.record({
      action: fc.constant(action),
      protocol: fc.constant(protocol),
      notProtocol: sometimes(fc.constantFrom(6, 17, 47)),
      icmp:
        protocol === 1
          ? sometimes(fc.constantFrom({ type: 8 }, { type: 8, code: 0 }, { type: 3, code: 1 }), 3)
          : fc.constant(undefined),
      notICMP: sometimes(fc.constantFrom({ type: 8 }, { type: 0, code: 0 })),
      ipv6Only: fc.constantFrom(false, false, false, false, false, true),
      source: entity(protocol),
      destination: entity(protocol),
    }),
  )
  .map((r) => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r)) if (v !== undefined) out[k] = v;
    return out as unknown as PolicyRule;
  });

const rules = fc.array(ruleArb, { maxLength: 3 });

const policyArb: fc.Arbitrary<PolicyResource> = fc
  .record({
    global: fc.boolean(),
    ns: fc.constantFrom(...NAMESPACES),
    name: fc.constantFrom('p1', 'p2', 'p3', 'p4'),
    tier: fc.constantFrom('default', 'default', 't1', 't2'),
    order: fc.constantFrom<number | undefined>(undefined, 1, 2, 2),
    selector: selector,
    nsSel: fc.option(
      nsSelector.filter((s) => s !== 'global()'),
      { nil: undefined },
    ),
    types: fc.subarray<Direction>(['ingress', 'egress'], { minLength: 1 }),
    ingress: rules,
    egress: rules,
    hostOnly: fc.constantFrom(false, false, false, false, true),
  })
  .map((p) => ({
    kind: p.global ? 'GlobalNetworkPolicy' : 'NetworkPolicy',
    name: p.name,
    tier: p.tier,
    selector: p.selector,
    types: p.types,
    ingress: p.ingress,
    egress: p.egress,
    hostOnly: p.hostOnly,
    ...(p.global ? {} : { namespace: p.ns }),
    ...(p.order === undefined ? {} : { order: p.order }),
    ...(p.global && p.nsSel !== undefined ? { namespaceSelector: p.nsSel } : {}),
  }));

const PORTS: EndpointPort[] = [
  { name: 'http', protocol: 6, port: 80 },
  { name: 'http', protocol: 17, port: 1500 },
  { name: 'dns', protocol: 17, port: 53 },
];

const endpointArb = (k: number): fc.Arbitrary<PolicyEndpoint> =>
  fc
    .record({
      ns: fc.constantFrom(...NAMESPACES),
      local: fc.constantFrom(true, true, true, false),
      labels,
      profiles: fc.constantFrom<string[] | undefined>(
        undefined,
        undefined,
        undefined,
        ['prof1'],
        ['prof1', 'kns.ns1'],
        [],
        ['nope'],
      ),
      ports: fc.subarray(PORTS),
    })
    .map((e) => ({
      key: `${e.ns}/ep${k}`,
      namespace: e.ns,
      node: e.local ? NODE : 'node-b',
      // endpoint 0 owns a /30 instead of a /32
      ipNetworks: k === 0 ? [{ addr: WIDE, len: 30 }] : [{ addr: ip(10, 65, 0, k), len: 32 }],
      labels: e.labels,
      ports: e.ports,
      ...(e.profiles === undefined ? {} : { profiles: e.profiles }),
    }));

const profileArb = (name: string): fc.Arbitrary<ProfileResource> =>
  fc.record({ name: fc.constant(name), ingress: rules, egress: rules, labelsToApply: labels });

export interface Model {
  pc: PolicyConfig;
  eps: PolicyEndpoint[];
}

export const modelArb: fc.Arbitrary<Model> = fc
  .record({
    nEps: fc.integer({ min: 4, max: 8 }),
    policies: fc.uniqueArray(policyArb, {
      maxLength: 7,
      selector: (p) => `${p.kind === 'NetworkPolicy' ? p.namespace : ''}/${p.name}`,
    }),
    t1: fc.option(
      fc.record({ order: fc.constantFrom<number | undefined>(10, undefined, 2_000_000), pass: fc.boolean() }),
      { nil: undefined },
    ),
    t2order: fc.constantFrom<number | undefined>(5, undefined),
    defaultTier: fc.boolean(),
    prof1: fc.option(profileArb('prof1'), { nil: undefined }),
    kns1: fc.option(profileArb('kns.ns1'), { nil: undefined }),
    ns1: labels.map((l) => ({ ...l, team: 'x' })),
    ns2: fc.constantFrom<Record<string, string>>({ team: 'y', env: 'prod' }, { env: 'dev' }),
  })
  .chain((m) =>
    fc.tuple(...Array.from({ length: m.nEps }, (_, k) => endpointArb(k))).map((eps) => {
      const tiers = new Map<string, TierResource>();
      if (m.t1)
        tiers.set('t1', {
          name: 't1',
          defaultAction: m.t1.pass ? 'Pass' : 'Deny',
          ...(m.t1.order === undefined ? {} : { order: m.t1.order }),
        });
      tiers.set('t2', {
        name: 't2',
        defaultAction: 'Deny',
        ...(m.t2order === undefined ? {} : { order: m.t2order }),
      });
      if (m.defaultTier) tiers.set('default', { name: 'default', order: 1_000_000, defaultAction: 'Deny' });
      const policies = m.policies.filter((p) => p.tier !== 't1' || tiers.has('t1'));
      const profiles = new Map<string, ProfileResource>();
      if (m.prof1) profiles.set('prof1', m.prof1);
      if (m.kns1) profiles.set('kns.ns1', m.kns1);
      const namespaces = new Map<string, NamespaceResource>([
        ['ns1', { name: 'ns1', labels: m.ns1 }],
        ['ns2', { name: 'ns2', labels: m.ns2 }],
      ]);
      return { pc: { tiers, policies, profiles, namespaces }, eps };
    }),
  );

const addrArb = fc.constantFrom(
  ip(10, 65, 0, 1),
  ip(10, 65, 0, 1),
  ip(10, 65, 0, 2),
  ip(10, 65, 0, 2),
  ip(10, 65, 0, 3),
  ip(10, 65, 0, 3),
  ip(10, 65, 0, 4),
  ip(10, 65, 0, 5),
  ip(10, 65, 0, 6),
  ip(10, 65, 0, 7),
  ip(10, 65, 1, 2), // inside endpoint 0's /30
  ip(10, 65, 1, 9), // in no endpoint
  OUTSIDE,
);

export const packetArb: fc.Arbitrary<NaivePacket & { fromWorkload: boolean }> = fc
  .record({
    proto: fc.constantFrom(6, 6, 17, 17, 1, 132, 47),
    src: addrArb,
    dst: addrArb,
    sport: fc.constantFrom(80, 1500, 53, 40000),
    dport: fc.constantFrom(80, 1500, 53, 1234, 8080),
    icmp: fc.constantFrom([8, 0], [0, 0], [3, 1], [3, 0]),
    fromWorkload: fc.boolean(),
  })
  .map((p) => ({
    proto: p.proto,
    src: p.src,
    dst: p.dst,
    sport: p.proto === 1 || p.proto === 47 ? 0 : p.sport,
    dport: p.proto === 1 || p.proto === 47 ? 0 : p.dport,
    icmpType: p.proto === 1 ? p.icmp[0] : -1,
    icmpCode: p.proto === 1 ? p.icmp[1] : -1,
    fromWorkload: p.fromWorkload,
  }));
