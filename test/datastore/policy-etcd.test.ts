// Network policy from a real etcd in the live daemon: invalid policy values written with etcdctl
// (bypassing calitap's validation) beside valid ones are logged with their key and skipped, and the
// valid ones are enforced (real pings between three workloads on one node); a bad update of a policy
// keeps the version in force, a valid update applies, a delete removes it; `calitap apply -f` of an
// invalid policy is refused with its one-line error and writes nothing. Needs root (network
// namespaces) and Debian's etcd-server; skipped otherwise.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../../src/lab/lab.js';
import { Namespaces } from '../../src/lab/netns.js';
import { resourceKey } from '../../src/control/datastore/layout.js';
import { isRoot, killAll, ping, prefix, waitFor } from '../live/helpers.js';

type W = { ns: string; ip: string };
const V3 = 'projectcalico.org/v3';

/** db answers pings from `from` only. */
const dbIn = (from: string, protocol = 'ICMP'): string =>
  JSON.stringify({
    kind: 'NetworkPolicy',
    apiVersion: V3,
    metadata: { name: 'db-in', namespace: 'shop' },
    spec: {
      selector: "role == 'db'",
      types: ['Ingress'],
      ingress: [{ action: 'Allow', protocol, source: { selector: `role == '${from}'` } }],
    },
  });

/** Would deny everything if it were (half-)applied: its rule's selector does not parse. */
const BAD = JSON.stringify({
  kind: 'GlobalNetworkPolicy',
  apiVersion: V3,
  metadata: { name: 'deny-all' },
  spec: { selector: 'all()', ingress: [{ action: 'Deny', source: { selector: 'role == ' } }] },
});

const DB_IN_KEY = resourceKey('NetworkPolicy', 'db-in', 'shop');
const BAD_KEY = resourceKey('GlobalNetworkPolicy', 'deny-all');

describe.skipIf(!isRoot() || !fs.existsSync('/usr/bin/etcd'))(
  'policy from etcd in the live daemon (requires root and etcd-server)',
  () => {
    let lab: Lab;
    let nss: Namespaces;
    const w = {} as Record<'db' | 'api' | 'web', W>;
    const pings = async (from: W, to: W) =>
      (await ping(from.ns, to.ip, { count: 1, wait: 1 })).received === 1;
    /** Waits until the pings to db from api and web give `api` / `web`. */
    const expectDb = async (what: string, api: boolean, web: boolean) => {
      await waitFor(
        what,
        async () => (await pings(w.api, w.db)) === api && (await pings(w.web, w.db)) === web,
        10_000,
        100,
      );
    };
    const log = () => fs.readFileSync(lab.hosts[0].log, 'utf8');

    beforeAll(async () => {
      lab = Lab.create({
        prefix: prefix('pe'),
        mode: 'never',
        hosts: 1,
        workers: 1,
        etcd: true,
        daemonEnv: { CALICO_IPV4POOL_CIDR: '10.65.0.0/16', IP_AUTODETECTION_METHOD: 'first-found' },
      });
      nss = new Namespaces(prefix('pf'));
      await lab.startEtcd();
      await lab.start(1, 30_000);
      for (const role of ['db', 'api', 'web'] as const) {
        const ns = nss.add(role);
        const r = (await lab.api(1, 'workload.add', {
          name: role,
          netns: ns,
          namespace: 'shop',
          labels: [`role=${role}`],
        })) as { ip: string };
        w[role] = { ns, ip: r.ip };
      }
      await expectDb('pings without policy', true, true);
    }, 120_000);

    afterAll(async () => {
      await killAll();
      await lab?.destroyAsync();
      nss?.destroy();
    });

    it('skips a bad policy written with etcdctl, logs its key, and enforces the good one beside it', async () => {
      lab.etcdctl(['put', BAD_KEY, BAD]);
      lab.etcdctl(['put', DB_IN_KEY, dbIn('api')]);
      await expectDb('db-in enforced (api allowed, web denied)', true, false);
      await waitFor('the bad key in the daemon log', () =>
        log()
          .split('\n')
          .some((l) => l.includes(BAD_KEY) && l.includes('invalid selector')),
      );
      expect(
        log()
          .split('\n')
          .filter((l) => l.includes(`"key":"${BAD_KEY}"`)).length,
      ).toBe(1);
      // still enforced a while later (not torn down by anything the bad value did)
      expect(await pings(w.api, w.db)).toBe(true);
      expect(await pings(w.db, w.web)).toBe(true); // nothing selects web: its profile allows
    }, 60_000);

    it('keeps the version in force on a bad update, applies a valid one, removes on delete', async () => {
      lab.etcdctl(['put', DB_IN_KEY, dbIn('web', 'ICMPX')]);
      await waitFor('the bad update in the log', () =>
        log()
          .split('\n')
          .some((l) => l.includes(`"key":"${DB_IN_KEY}"`) && l.includes('ICMPX')),
      );
      expect(await pings(w.api, w.db)).toBe(true);
      expect(await pings(w.web, w.db)).toBe(false);
      lab.etcdctl(['put', DB_IN_KEY, dbIn('web')]);
      await expectDb('the valid update (web allowed, api denied)', false, true);
      lab.etcdctl(['del', DB_IN_KEY]);
      await expectDb('the delete (both allowed)', true, true);
    }, 60_000);

    it('refuses `calitap apply -f` of an invalid policy with one line and writes nothing', () => {
      const yaml = `apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: bad-apply, namespace: shop}
spec: {selector: all(), ingress: [{action: Allow, protocol: TCPX}]}
`;
      let err = '';
      try {
        lab.cli(['apply', '-f', '-'], yaml);
      } catch (e) {
        err = (e as Error).message;
      }
      expect(err).toMatch(
        /NetworkPolicy shop\/bad-apply: spec\.ingress\[0\]\.protocol TCPX: unknown protocol/,
      );
      expect(lab.etcdctl(['get', resourceKey('NetworkPolicy', 'bad-apply', 'shop')]).trim()).toBe('');
      const noTier = yaml
        .replace('bad-apply', 'in-tier')
        .replace('protocol: TCPX', 'protocol: TCP')
        .replace('selector: all()', 'tier: nope, selector: all()');
      err = '';
      try {
        lab.cli(['apply', '-f', '-'], noTier);
      } catch (e) {
        err = (e as Error).message;
      }
      expect(err).toMatch(/NetworkPolicy shop\/in-tier: spec\.tier nope: no Tier with this name/);
      expect(lab.etcdctl(['get', resourceKey('NetworkPolicy', 'in-tier', 'shop')]).trim()).toBe('');
    });
  },
);
