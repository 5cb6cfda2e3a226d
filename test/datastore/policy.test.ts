// Network policy from a datastore (the memory datastore; values written raw, bypassing calitap's
// validation, as etcdctl would): each NetworkPolicy / GlobalNetworkPolicy / Profile / Tier /
// WorkloadEndpoint value is validated on its own; an invalid one is reported once with its key and
// reason and skipped, every other policy keeps applying; a bad update of a key keeps what the key gave
// before (the policy in force stays); a later valid update applies; a delete removes it. Checked on
// the model's ClusterConfig and on the compiled tables (the evaluator's verdicts), through the
// DatastoreSync watch path too. `apply -f` of an invalid policy is refused before anything is written.
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { MemoryDatastore } from '../../src/control/datastore/memory.js';
import { ClusterModel, type BadValue } from '../../src/control/datastore/model.js';
import { resourceKey } from '../../src/control/datastore/layout.js';
import { workloadEndpoint } from '../../src/control/datastore/defaults.js';
import { encodeResource } from '../../src/control/datastore/resources.js';
import { readDocuments, toV3 } from '../../src/control/datastore/documents.js';
import { DatastoreSync } from '../../src/control/daemon/datastore-sync.js';
import type { ClusterConfig } from '../../src/control/config/types.js';
import { PolicyProgrammer } from '../../src/control/policy/programmer.js';
import { C_ACTIVE } from '../../src/dataplane/tables/policy/tables.js';
import { PolicyEval, PolicyPacket, V_ALLOW, V_DENY } from '../../src/dataplane/tables/policy/eval.js';
import { waitFor } from '../live/helpers.js';

const log = pino({ level: 'silent' });
const V3 = 'projectcalico.org/v3';
const ip = (s: string) => s.split('.').reduce((a, b) => (a << 8) | Number(b), 0) >>> 0;

const IPS = { db: '10.65.0.2', api: '10.65.0.3', web: '10.65.0.4' } as const;

/** A datastore with a pool, a node, three workloads (role=db/api/web) and no policy. */
function cluster(): MemoryDatastore {
  const ds = new MemoryDatastore();
  const put = (o: Record<string, unknown>) => {
    const meta = o.metadata as { name: string; namespace?: string };
    ds.putSync(resourceKey(String(o.kind), meta.name, meta.namespace), JSON.stringify(o));
  };
  put({
    kind: 'IPPool',
    apiVersion: V3,
    metadata: { name: 'pool' },
    spec: { cidr: '10.65.0.0/16', blockSize: 26, ipipMode: 'Never', vxlanMode: 'Never' },
  });
  put({
    kind: 'Node',
    apiVersion: V3,
    metadata: { name: 'n1' },
    spec: { bgp: { ipv4Address: '10.0.0.1/24' } },
  });
  for (const [role, addr] of Object.entries(IPS)) {
    const wep = workloadEndpoint({
      node: 'n1',
      namespace: 'shop',
      workload: role,
      ip: addr,
      mac: 'ee:ee:ee:ee:ee:ee',
      interfaceName: `cali${role}`,
      labels: { role },
    });
    ds.putSync(resourceKey('WorkloadEndpoint', wep.metadata.name, 'shop'), encodeResource(wep));
  }
  return ds;
}

const netpolKey = (name: string) => resourceKey('NetworkPolicy', name, 'shop');
const gnpKey = (name: string) => resourceKey('GlobalNetworkPolicy', name);

/** db takes TCP 5432 from `from` only. */
function dbPolicy(from: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    kind: 'NetworkPolicy',
    apiVersion: V3,
    metadata: { name: 'db-in', namespace: 'shop' },
    spec: {
      selector: "role == 'db'",
      ingress: [
        {
          action: 'Allow',
          protocol: 'TCP',
          source: { selector: `role == '${from}'` },
          destination: { ports: [5432] },
        },
      ],
      ...extra,
    },
  });
}

/** A policy that would deny everything everywhere if it were (half-)applied. */
const BAD_DENY_ALL = JSON.stringify({
  kind: 'GlobalNetworkPolicy',
  apiVersion: V3,
  metadata: { name: 'deny-all' },
  spec: { selector: 'all()', ingress: [{ action: 'Deny', source: { selector: 'role == ' } }] },
});

/** The verdict of the compiled policy for a TCP SYN src → dst:5432 between local workloads. */
function verdict(p: PolicyProgrammer, src: string, dst: string, dport = 5432): number {
  const pk = new PolicyPacket();
  pk.proto = 6;
  pk.src = ip(src);
  pk.dst = ip(dst);
  pk.sport = 40000;
  pk.dport = dport;
  const bank = p.tables.banks[Atomics.load(p.tables.ctl, C_ACTIVE)];
  return new PolicyEval({ logHit: () => {} }).decide(bank, pk, true, true);
}

function modelOf(ds: MemoryDatastore, bad: BadValue[]): ClusterModel {
  const m = new ClusterModel('memory', (b) => bad.push(b));
  m.reset(ds.listSync('/cali').kvs);
  return m;
}

describe('invalid policy values in a datastore are logged and skipped', () => {
  it('skips a bad policy, keeps the good ones, and reports the key and reason once', () => {
    const ds = cluster();
    ds.putSync(netpolKey('db-in'), dbPolicy('api'));
    ds.putSync(gnpKey('deny-all'), BAD_DENY_ALL);
    const badProto = JSON.parse(dbPolicy('web')) as {
      metadata: { name: string };
      spec: { ingress: { protocol: string }[] };
    };
    badProto.metadata.name = 'bad-proto';
    badProto.spec.ingress[0].protocol = 'TCPX';
    ds.putSync(netpolKey('bad-proto'), JSON.stringify(badProto));
    const bad: BadValue[] = [];
    const m = modelOf(ds, bad);
    const cfg = m.build();
    m.build(); // building again reports nothing new
    expect(cfg.policy?.policies.map((p) => p.name)).toEqual(['db-in']);
    expect(bad.map((b) => b.key).sort()).toEqual([gnpKey('deny-all'), netpolKey('bad-proto')].sort());
    expect(bad.find((b) => b.key === gnpKey('deny-all'))!.reason).toMatch(
      /GlobalNetworkPolicy deny-all: spec\.ingress\[0\]\.source\.selector .*invalid selector/,
    );
    expect(bad.find((b) => b.key === netpolKey('bad-proto'))!.reason).toMatch(
      /NetworkPolicy shop\/bad-proto: spec\.ingress\[0\]\.protocol TCPX: unknown protocol/,
    );
    for (const b of bad) expect(b.reason).not.toContain('\n');
    const p = new PolicyProgrammer('n1');
    p.program(cfg);
    expect(verdict(p, IPS.api, IPS.db)).toBe(V_ALLOW);
    expect(verdict(p, IPS.web, IPS.db)).toBe(V_DENY);
    expect(verdict(p, IPS.db, IPS.api)).toBe(V_ALLOW); // nothing selects api: its profile allows
  });

  it('skips every policy kind that fails validation: port without TCP/UDP/SCTP, limits, bad Tier, Profile, endpoint', () => {
    const ds = cluster();
    ds.putSync(netpolKey('db-in'), dbPolicy('api'));
    const portNoProto = JSON.parse(dbPolicy('api')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    portNoProto.metadata.name = 'port-no-proto';
    delete portNoProto.spec.ingress[0].protocol;
    ds.putSync(netpolKey('port-no-proto'), JSON.stringify(portNoProto));
    const tooMany = JSON.parse(dbPolicy('api')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    tooMany.metadata.name = 'too-many-nets';
    tooMany.spec.ingress[0].source = {
      nets: Array.from({ length: 257 }, (_, k) => `10.9.${k >> 8}.${k & 255}/32`),
    };
    ds.putSync(netpolKey('too-many-nets'), JSON.stringify(tooMany));
    ds.putSync(
      resourceKey('Tier', 'weird'),
      JSON.stringify({
        kind: 'Tier',
        apiVersion: V3,
        metadata: { name: 'weird' },
        spec: { defaultAction: 'Maybe' },
      }),
    );
    ds.putSync(
      gnpKey('weird.p'),
      JSON.stringify({
        kind: 'GlobalNetworkPolicy',
        apiVersion: V3,
        metadata: { name: 'weird.p' },
        spec: { tier: 'weird', selector: 'all()', ingress: [{ action: 'Deny' }] },
      }),
    );
    ds.putSync(
      resourceKey('Profile', 'kns.shop'),
      JSON.stringify({
        kind: 'Profile',
        apiVersion: V3,
        metadata: { name: 'kns.shop' },
        spec: {
          egress: [{ action: 'Deny', protocol: 'TCP', notProtocol: 'UDP', destination: { ports: ['1:0'] } }],
        },
      }),
    );
    const wep = JSON.parse(
      ds.getSync(resourceKey('WorkloadEndpoint', 'n1-calitap-web-eth0', 'shop'))!.value,
    ) as Record<
      string,
      any // eslint-disable-line @typescript-eslint/no-explicit-any
    >;
    wep.metadata.labels['bad label!'] = 'x';
    ds.putSync(resourceKey('WorkloadEndpoint', 'n1-calitap-web-eth0', 'shop'), JSON.stringify(wep));
    const bad: BadValue[] = [];
    const cfg = modelOf(ds, bad).build();
    expect(cfg.policy?.policies.map((p) => p.name)).toEqual(['db-in']);
    expect(cfg.policy?.tiers.size).toBe(0);
    expect(cfg.policy?.profiles.size).toBe(0);
    expect(cfg.endpoints.map((e) => e.name).sort()).toEqual(['n1-calitap-api-eth0', 'n1-calitap-db-eth0']);
    const reasons = new Map(bad.map((b) => [b.key, b.reason]));
    expect(reasons.get(netpolKey('port-no-proto'))).toMatch(/ports \[5432\]: numeric ports need protocol/);
    expect(reasons.get(netpolKey('too-many-nets'))).toMatch(/nets: 257 items, at most 256/);
    expect(reasons.get(resourceKey('Tier', 'weird'))).toMatch(/spec\.defaultAction Maybe/);
    expect(reasons.get(gnpKey('weird.p'))).toMatch(/spec\.tier weird: no Tier with this name/);
    expect(reasons.get(resourceKey('Profile', 'kns.shop'))).toMatch(/Profile kns\.shop: spec\.egress\[0\]/);
    expect(reasons.get(resourceKey('WorkloadEndpoint', 'n1-calitap-web-eth0', 'shop'))).toMatch(/bad label!/);
    expect(bad.length).toBe(6);
    const p = new PolicyProgrammer('n1');
    p.program(cfg);
    expect(verdict(p, IPS.api, IPS.db)).toBe(V_ALLOW);
  });

  it('takes a policy in a Tier once the Tier exists, and namespace labels from kns. profiles', () => {
    const ds = cluster();
    ds.putSync(netpolKey('db-in'), dbPolicy('api', { tier: 'security' }));
    const bad: BadValue[] = [];
    const m = modelOf(ds, bad);
    expect(m.build().policy?.policies ?? []).toEqual([]);
    expect(bad.map((b) => b.key)).toEqual([netpolKey('db-in')]);
    expect(m.badCount).toBe(1); // counted while skipped (the daemon's status: badValues)
    ds.putSync(
      resourceKey('Tier', 'security'),
      JSON.stringify({ kind: 'Tier', apiVersion: V3, metadata: { name: 'security' }, spec: { order: 100 } }),
    );
    ds.putSync(
      resourceKey('Profile', 'kns.shop'),
      JSON.stringify({
        kind: 'Profile',
        apiVersion: V3,
        metadata: { name: 'kns.shop' },
        spec: {
          ingress: [{ action: 'Allow' }],
          egress: [{ action: 'Allow' }],
          labelsToApply: { 'pcns.team': 'shop', 'pcns.projectcalico.org/name': 'shop' },
        },
      }),
    );
    m.reset(ds.listSync('/cali').kvs);
    const cfg = m.build();
    expect(cfg.policy?.policies.map((p) => `${p.tier}/${p.name}`)).toEqual(['security/db-in']);
    expect(m.badCount).toBe(0);
    expect(cfg.policy?.namespaces.get('shop')?.labels).toEqual({ team: 'shop' });
  });

  it('follows the watch: bad update keeps the policy in force, a valid update applies, a delete removes', async () => {
    const ds = cluster();
    ds.putSync(netpolKey('db-in'), dbPolicy('api'));
    const bad: BadValue[] = [];
    const m = modelOf(ds, bad);
    const p = new PolicyProgrammer('n1');
    p.program(m.build());
    const seen: ClusterConfig[] = [];
    const sync = new DatastoreSync(
      ds,
      m,
      (cfg) => {
        p.program(cfg);
        seen.push(cfg);
      },
      log,
      0,
    );
    sync.start(ds.revision);
    try {
      const next = async (what: string) => {
        const n = seen.length;
        await waitFor(what, () => seen.length > n);
      };
      // a bad policy beside it: skipped, reported once, db-in still applies
      await ds.put(gnpKey('deny-all'), BAD_DENY_ALL);
      await waitFor('the bad value reported', () => bad.length === 1);
      expect(bad[0].key).toBe(gnpKey('deny-all'));
      expect(verdict(p, IPS.api, IPS.db)).toBe(V_ALLOW);
      // an invalid update of db-in: the version in force stays (api allowed, web denied)
      await ds.put(netpolKey('db-in'), dbPolicy('web').replace('"TCP"', '"TCPX"'));
      await waitFor('the bad update reported', () => bad.length === 2);
      expect(bad[1].key).toBe(netpolKey('db-in'));
      expect(verdict(p, IPS.api, IPS.db)).toBe(V_ALLOW);
      expect(verdict(p, IPS.web, IPS.db)).toBe(V_DENY);
      expect(sync.status().badValues).toBe(2);
      // a valid update of the same key applies
      await ds.put(netpolKey('db-in'), dbPolicy('web'));
      await next('the valid update');
      expect(verdict(p, IPS.web, IPS.db)).toBe(V_ALLOW);
      expect(verdict(p, IPS.api, IPS.db)).toBe(V_DENY);
      // the bad one fixed: applies too
      await ds.put(gnpKey('deny-all'), BAD_DENY_ALL.replace('role == ', "role == 'nobody'"));
      await next('the fixed policy');
      expect(
        seen
          .at(-1)!
          .policy?.policies.map((x) => x.name)
          .sort(),
      ).toEqual(['db-in', 'deny-all']);
      expect(sync.status().badValues).toBe(0);
      // deletes remove them: nothing selects db any more
      await ds.delete(netpolKey('db-in'));
      await ds.delete(gnpKey('deny-all'));
      await waitFor('the deletes', () => (seen.at(-1)!.policy?.policies.length ?? 0) === 0);
      expect(verdict(p, IPS.api, IPS.db)).toBe(V_ALLOW);
      expect(verdict(p, IPS.web, IPS.db)).toBe(V_ALLOW);
      expect(bad.length).toBe(2);
    } finally {
      sync.stop();
    }
  });

  it('refuses an invalid policy at apply time with one line (nothing reaches the datastore)', () => {
    const doc = (spec: string) =>
      readDocuments(
        `apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: p, namespace: shop}\nspec: ${spec}\n`,
        'p.yaml',
      )[0];
    expect(() => toV3(doc("{selector: 'app == '}"), 'p.yaml')).toThrow(
      /^p\.yaml: NetworkPolicy shop\/p: spec\.selector "app == ": invalid selector/,
    );
    expect(() => toV3(doc('{ingress: [{action: Allow, protocol: TCPX}]}'), 'p.yaml')).toThrow(
      /^p\.yaml: NetworkPolicy shop\/p: spec\.ingress\[0\]\.protocol TCPX: unknown protocol/,
    );
    // a Tier named by the policy is not required in the same document (checked against the datastore)
    expect(toV3(doc('{tier: security, selector: all()}'), 'p.yaml').metadata.name).toBe('p');
    const tier = readDocuments(
      'apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t}\nspec: {defaultAction: Maybe}\n',
      't.yaml',
    )[0];
    expect(() => toV3(tier, 't.yaml')).toThrow(/^t\.yaml: Tier t: spec\.defaultAction Maybe/);
  });
});
