// PolicyGlue (the live daemon's policy wiring): which endpoints it compiles for the attached
// workloads, what `workload add` said about them (kept beside the state file), and when the policy
// tables are enabled. No root needed: a real Programmer over the policy tests' cluster.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/control/config/load.js';
import { Programmer } from '../../src/control/daemon/program.js';
import { PolicyGlue } from '../../src/control/daemon/policy-glue.js';
import type { WorkloadRecord } from '../../src/control/daemon/workloads.js';
import { baseYaml, WEB } from '../policy/helpers.js';

const POLICY = `
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: { name: db-in, namespace: shop }
spec: { selector: role == 'db', ingress: [{ action: Allow, source: { selector: role == 'api' } }] }
`;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calitap-policy-glue-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const rec = (name: string, ip: string): WorkloadRecord => ({
  name,
  netns: name,
  ip,
  mac: '',
  tap: `cali${name}`,
});

function glue(yaml: string, attached: WorkloadRecord[], state?: string): PolicyGlue {
  const prog = new Programmer(loadConfigText(baseYaml() + yaml, 'c.yaml'), 'node-a', { natSeed: 0 });
  return new PolicyGlue(prog, 'node-a', () => attached, pino({ level: 'silent' }), state);
}

describe('PolicyGlue', () => {
  it('always creates the tables: disabled without policy, enabled with it', () => {
    expect(glue('', []).policy.tables.enabled).toBe(false);
    const g = glue('---' + POLICY, []);
    expect(g.policy.tables.enabled).toBe(true);
    expect(g.shared().tables).toBeDefined();
  });

  it('uses the config endpoint of an attached address, else what workload add said, else default', () => {
    const attached = [rec('web', WEB.ip), rec('x', '10.65.0.9'), rec('y', '10.65.0.10')];
    const g = glue('---' + POLICY, attached);
    g.remember(attached[1], { namespace: 'shop', labels: ['role=db', 'app=shop'] });
    const eps = g.endpoints({ endpoints: [] });
    expect(eps.find((e) => e.name === 'x')).toMatchObject({
      namespace: 'shop',
      node: 'node-a',
      labels: { role: 'db', app: 'shop' },
      ipNetworks: [{ addr: 0x0a410009, len: 32 }],
    });
    expect(eps.find((e) => e.name === 'y')).toMatchObject({ namespace: 'default', labels: {} });
    // with the config's endpoints: web is the config's (labels from its WorkloadEndpoint), not a copy
    const prog = new Programmer(loadConfigText(baseYaml(), 'c.yaml'), 'node-a', { natSeed: 0 });
    const all = g.endpoints(prog.cfg);
    expect(all.filter((e) => e.ipNetworks.some((n) => n.addr === 0x0a410002))).toHaveLength(1);
    expect(all.find((e) => e.name === WEB.name)?.labels).toMatchObject({ role: 'web' });
  });

  it('keeps what workload add said beside the state file; forgets workloads that went', () => {
    const state = path.join(dir, 'state.json');
    const attached = [rec('x', '10.65.0.9')];
    glue('', attached, state).remember(attached[0], { namespace: 'jobs', labels: ['k=v'] });
    const again = glue('', attached, state);
    expect(again.endpoints({ endpoints: [] })[0]).toMatchObject({ namespace: 'jobs', labels: { k: 'v' } });
    attached.pop();
    again.refresh();
    expect(JSON.parse(fs.readFileSync(`${state}.policy.json`, 'utf8'))).toEqual({});
  });

  it('reports denials as stats rows with counts', () => {
    const rows = glue('---' + POLICY, []).counterRows();
    for (const r of rows) expect(r).toEqual({ node: 'ip4-policy', reason: expect.any(String), count: 0 });
  });
});
