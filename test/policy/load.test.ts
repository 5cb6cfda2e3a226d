// Loading the policy kinds: NetworkPolicy, GlobalNetworkPolicy, Profile, Tier, v1 Namespace and the
// policy fields of WorkloadEndpoints; Calico's defaults (types, tier, order); every refusal a single
// line naming file, resource, field and value; a fuzz pass that loading only returns or throws
// ConfigError, never half-applying anything.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ConfigError } from '../../src/common/errors.js';
import { BASE, expectConfigError, load } from '../config/helpers.js';

const doc = (kind: string, meta: string, spec: string, api = 'projectcalico.org/v3') =>
  `apiVersion: ${api}\nkind: ${kind}\nmetadata: ${meta}\nspec: ${spec}\n`;
const np = (spec: string, name = 'p', ns = 'shop') =>
  doc('NetworkPolicy', `{ name: ${name}, namespace: ${ns} }`, spec);
const gnp = (spec: string, name = 'g') => doc('GlobalNetworkPolicy', `{ name: ${name} }`, spec);
const withDocs = (...docs: string[]) => [BASE, ...docs].join('\n---\n');

describe('policy kinds: loading', () => {
  it('reads policies with Calico defaults and field forms', () => {
    const cfg = load(
      withDocs(
        np(`{ selector: "role == 'db'", order: 10.5,
              ingress: [{ action: Allow, protocol: tcp, source: { selector: "role == 'api'", nets: [10.65.0.0/16, 10.1.2.3] },
                          destination: { ports: [5432, "6000:6010", http] } }] }`),
        gnp(`{ tier: security, selector: all(), namespaceSelector: "team == 'x'",
               egress: [{ action: Deny, protocol: 1, icmp: { type: 8, code: 0 }, notProtocol: UDPLite },
                        { action: Pass, destination: { notNets: [192.0.2.0/24], namespaceSelector: global() } },
                        { action: Log, ipVersion: 6 }] }`),
        doc('Tier', '{ name: security }', '{ order: 100, defaultAction: Pass }'),
        doc(
          'Profile',
          '{ name: kns.shop }',
          "{ labelsToApply: { 'pcns.team': x }, ingress: [{ action: Allow }] }",
        ),
        `apiVersion: v1\nkind: Namespace\nmetadata: { name: shop, labels: { team: x } }\n`,
      ),
    );
    const pc = cfg.policy!;
    expect(pc.policies).toHaveLength(2);
    const [p, g] = pc.policies;
    expect(p).toMatchObject({
      kind: 'NetworkPolicy',
      namespace: 'shop',
      name: 'p',
      tier: 'default',
      order: 10.5,
      types: ['ingress'],
    });
    expect(p.ingress[0]).toMatchObject({
      action: 'Allow',
      protocol: 6,
      ipv6Only: false,
      source: {
        selector: "role == 'api'",
        nets: [
          { addr: 0x0a410000, len: 16 },
          { addr: 0x0a010203, len: 32 },
        ],
      },
      destination: { ports: [{ lo: 5432, hi: 5432 }, { lo: 6000, hi: 6010 }, { name: 'http' }] },
    });
    expect(g).toMatchObject({
      kind: 'GlobalNetworkPolicy',
      tier: 'security',
      types: ['egress'],
      namespaceSelector: "team == 'x'",
    });
    expect(g.egress[0]).toMatchObject({
      action: 'Deny',
      protocol: 1,
      icmp: { type: 8, code: 0 },
      notProtocol: 136,
    });
    expect(g.egress[2]).toMatchObject({ action: 'Log', ipVersion: 6, ipv6Only: true });
    expect(pc.tiers.get('security')).toEqual({ name: 'security', order: 100, defaultAction: 'Pass' });
    expect(pc.profiles.get('kns.shop')?.labelsToApply).toEqual({ 'pcns.team': 'x' });
    expect(pc.namespaces.get('shop')?.labels).toEqual({ team: 'x' });
  });

  it('defaults types as Calico does', () => {
    const types = (spec: string) => load(withDocs(gnp(spec))).policy!.policies[0].types;
    expect(types('{}')).toEqual(['ingress']);
    expect(types('{ ingress: [{ action: Allow }] }')).toEqual(['ingress']);
    expect(types('{ egress: [{ action: Allow }] }')).toEqual(['egress']);
    expect(types('{ ingress: [{ action: Allow }], egress: [{ action: Allow }] }')).toEqual([
      'ingress',
      'egress',
    ]);
    expect(types('{ types: [Egress, Ingress] }')).toEqual(['egress', 'ingress']);
  });

  it('reads the policy fields of WorkloadEndpoints', () => {
    const cfg = load(
      withDocs(
        doc(
          'WorkloadEndpoint',
          '{ name: w, namespace: shop, labels: { app: web, "k8s.io/role": front } }',
          `{ node: node-a, interfaceName: caliw, ipNetworks: [10.65.0.2/32], mac: '0a:58:0a:41:00:02', orchestrator: k8s,
             profiles: [kns.shop, extra], ports: [{ name: http, protocol: TCP, port: 80 }, { port: 9000, hostPort: 9000 }] }`,
        ),
      ),
    );
    expect(cfg.endpoints[0]).toMatchObject({
      labels: { app: 'web', 'k8s.io/role': 'front', 'projectcalico.org/orchestrator': 'k8s' },
      profiles: ['kns.shop', 'extra'],
      ports: [{ name: 'http', protocol: 6, port: 80 }],
    });
    expect(cfg.policy).toBeUndefined();
  });

  it('keys NetworkPolicy names by namespace', () => {
    expect(load(withDocs(np('{}', 'p', 'a'), np('{}', 'p', 'b'))).policy!.policies).toHaveLength(2);
    expectConfigError(
      withDocs(np('{}', 'p', 'a'), np('{}', 'p', 'a')),
      'cluster.yaml: NetworkPolicy a/p: metadata.name p: duplicate NetworkPolicy name',
    );
  });

  const E = (spec: string, where: string) => () =>
    expectConfigError(withDocs(np(spec)), `cluster.yaml: NetworkPolicy shop/p: ${where}`);
  it('refuses, naming field and value', () => {
    E(
      `{ selector: "app == " }`,
      `spec.selector "app == ": invalid selector: expected a quoted string after app ==`,
    )();
    E(
      `{ selector: "global()" }`,
      'spec.selector global(): global() can only be used in a rule namespaceSelector',
    )();
    E(
      `{ ingress: [{ action: Allow, source: { namespaceSelector: "global() || a == 'b'" } }] }`,
      `spec.ingress[0].source.namespaceSelector "global() || a == 'b'": global() must be the whole namespaceSelector`,
    )();
    E(
      `{ ingress: [{ action: Allow, protocol: TCPX }] }`,
      'spec.ingress[0].protocol TCPX: unknown protocol (TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number 1-255)',
    )();
    E(
      `{ ingress: [{ action: Allow, protocol: 0 }] }`,
      'spec.ingress[0].protocol 0: protocol number must be between 1 and 255',
    )();
    E(
      `{ ingress: [{ action: Allow, destination: { ports: [80] } }] }`,
      'spec.ingress[0].destination.ports [80]: numeric ports need protocol TCP, UDP or SCTP',
    )();
    E(
      `{ ingress: [{ action: Allow, protocol: ICMP, destination: { ports: [http] } }] }`,
      'spec.ingress[0].destination.ports ["http"]: protocol ICMP has no ports',
    )();
    E(
      `{ ingress: [{ action: Allow, protocol: ICMP, icmp: { code: 1 } }] }`,
      'spec.ingress[0].icmp.code 1: ICMP code specified without an ICMP type',
    )();
    E(
      `{ ingress: [{ action: Allow, protocol: ICMP, icmp: { type: 255 } }] }`,
      'spec.ingress[0].icmp.type 255: must be between 0 and 254',
    )();
    E(
      `{ ingress: [{ action: Allow, icmp: { type: 8 } }] }`,
      'spec.ingress[0].icmp {"type":8}: ICMP fields require protocol ICMP or ICMPv6',
    )();
    E(
      `{ ingress: [{ action: Accept }] }`,
      'spec.ingress[0].action Accept: must be one of Allow, Deny, Pass, Log',
    )();
    E(`{ ingress: [{ protocol: TCP }] }`, 'spec.ingress[0].action: required')();
    E(`{ types: [Ingress, Ingress] }`, 'spec.types[1] Ingress: listed twice')();
    E(`{ types: [ingress] }`, 'spec.types[0] ingress: must be Ingress or Egress')();
    E(
      `{ ingress: [{ action: Allow, source: { notNets: [0.0.0.0/0] } }] }`,
      'spec.ingress[0].source.notNets[0] 0.0.0.0/0: a catch-all CIDR in notNets matches no traffic',
    )();
    E(
      `{ ingress: [{ action: Allow, source: { nets: [10.0.0.0/8, "fd00::/8"] } }] }`,
      'spec.ingress[0].source.nets ["10.0.0.0/8","fd00::/8"]: rule contains both IPv4 and IPv6 CIDRs',
    )();
    E(
      `{ ingress: [{ action: Allow, ipVersion: 6, source: { nets: [10.0.0.0/8] } }] }`,
      "spec.ingress[0].ipVersion 6: rule IP version doesn't match its CIDRs' version",
    )();
    E(
      `{ ingress: [{ action: Allow, protocol: TCP, destination: { ports: ["90:80"] } }] }`,
      'spec.ingress[0].destination.ports[0] 90:80: range start 90 is greater than its end 80',
    )();
    E(
      `{ ingress: [{ action: Allow, protocol: TCP, destination: { ports: [Http_1] } }] }`,
      'spec.ingress[0].destination.ports[0] Http_1: not a port, a range "lo:hi" or a valid port name',
    )();
    E(`{ tier: nope }`, 'spec.tier nope: no Tier with this name')();
    E(
      `{ ingress: [{ action: Allow, destination: { services: { name: x } } }] }`,
      'spec.ingress[0].destination.services {"name":"x"}: not supported by calitap (no Kubernetes services or service accounts)',
    )();
  });

  it("refuses more than Calico's limits", () => {
    const many = (n: number, f: (k: number) => string) =>
      `[${Array.from({ length: n }, (_, k) => f(k)).join(', ')}]`;
    E(
      `{ ingress: [{ action: Allow, source: { nets: ${many(257, (k) => `10.${k >> 8}.${k & 255}.0/24`)} } }] }`,
      'spec.ingress[0].source.nets: 257 items, at most 256 allowed',
    )();
    E(
      `{ ingress: [{ action: Allow, protocol: TCP, source: { ports: ${many(51, (k) => String(k + 1))} } }] }`,
      'spec.ingress[0].source.ports: 51 items, at most 50 allowed',
    )();
    E(
      `{ ingress: ${many(1025, () => '{ action: Allow }')} }`,
      'spec.ingress: 1025 items, at most 1024 allowed',
    )();
    const long = `a == '${'x'.repeat(1020)}'`;
    expectConfigError(
      withDocs(np(`{ selector: "${long}" }`)),
      /^cluster\.yaml: NetworkPolicy shop\/p: spec\.selector "a == 'x{50,}\.\.\.: longer than 1024 characters$/,
    );
  });

  it('refuses bad names, tiers, labels and endpoint ports', () => {
    expectConfigError(
      withDocs(np('{}', 'a.b.c')),
      'cluster.yaml: NetworkPolicy shop/a.b.c: metadata.name a.b.c: must be lower-case letters, digits or "-" (at most one ".")',
    );
    expectConfigError(
      withDocs(doc('Tier', '{ name: default }', '{ order: 5 }')),
      "cluster.yaml: Tier default: spec.order 5: the default tier's order must be 1000000",
    );
    expectConfigError(
      withDocs(doc('Tier', '{ name: t }', '{ defaultAction: Allow }')),
      'cluster.yaml: Tier t: spec.defaultAction Allow: must be Deny or Pass',
    );
    expectConfigError(
      withDocs(
        doc(
          'WorkloadEndpoint',
          '{ name: w, labels: { app: 1 } }',
          "{ node: node-a, interfaceName: caliw, mac: '0a:58:0a:41:00:02' }",
        ),
      ),
      'cluster.yaml: WorkloadEndpoint w: metadata.labels.app 1: label value must be a string, got number',
    );
    expectConfigError(
      withDocs(
        doc(
          'WorkloadEndpoint',
          '{ name: w, labels: { "-x": a } }',
          "{ node: node-a, interfaceName: caliw, mac: '0a:58:0a:41:00:02' }",
        ),
      ),
      /^cluster\.yaml: WorkloadEndpoint w: metadata\.labels\.-x -x: label name must be at most 63/,
    );
    expectConfigError(
      withDocs(
        doc(
          'WorkloadEndpoint',
          '{ name: w }',
          "{ node: node-a, interfaceName: caliw, mac: '0a:58:0a:41:00:02', ports: [{ name: http, protocol: ICMP, port: 80 }] }",
        ),
      ),
      'cluster.yaml: WorkloadEndpoint w: spec.ports[0].protocol ICMP: must be TCP, UDP or SCTP',
    );
    expectConfigError(
      withDocs(`apiVersion: v1\nkind: Namespace\nmetadata: { name: n, labels: { a: "b c" } }\n`),
      /^cluster\.yaml: Namespace n: metadata\.labels\.a "b c": label value must be/,
    );
    expectConfigError(
      withDocs(gnp('{ preDNAT: true, applyOnForward: true, egress: [{ action: Allow }] }')),
      'cluster.yaml: GlobalNetworkPolicy g: spec.preDNAT true: a preDNAT policy cannot have egress rules or the Egress type',
    );
  });

  it('loading only returns or throws ConfigError (random policy documents)', () => {
    const scalar = fc.oneof(
      fc.constantFrom('Allow', 'TCP', 'all()', '10.0.0.0/8', 'http', "a == 'b'", '80:90', 'global()', ''),
      fc.integer({ min: -2, max: 70000 }),
      fc.boolean(),
      fc.constant(null),
    );
    const value: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        scalar,
        fc.array(tie('v'), { maxLength: 3 }),
        fc.dictionary(
          fc.constantFrom(
            'action',
            'protocol',
            'notProtocol',
            'icmp',
            'type',
            'code',
            'source',
            'destination',
            'nets',
            'notNets',
            'selector',
            'notSelector',
            'namespaceSelector',
            'ports',
            'notPorts',
            'ipVersion',
            'ingress',
            'egress',
            'types',
            'order',
            'tier',
          ),
          tie('v'),
          { maxKeys: 4 },
        ),
      ),
    })).v;
    fc.assert(
      fc.property(
        fc.constantFrom('NetworkPolicy', 'GlobalNetworkPolicy', 'Profile', 'Tier'),
        value,
        (kind, spec) => {
          const text = withDocs(
            `apiVersion: projectcalico.org/v3\nkind: ${kind}\nmetadata: { name: x, namespace: n }\nspec: ${JSON.stringify(spec)}\n`,
          );
          try {
            load(text);
          } catch (e) {
            if (!(e instanceof ConfigError)) throw e;
            expect(e.message).not.toContain('\n');
          }
        },
      ),
      { seed: 1121, numRuns: 3000 },
    );
  });
});
