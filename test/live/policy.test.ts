// Network policy in the live daemon: a three-tier app (web, api, db workloads in namespace shop,
// attached with `workload add --namespace --label`) behind a policy matrix checked with real TCP
// connections both ways; a policy changed live (config file rewritten, the daemon reloads it) keeps
// an established connection while new connections follow the new policy; denials show in
// `calitap stats --json`; a Log rule reaches the daemon's log; a restarted daemon polices its restored
// workloads by the namespace and labels they were added with, and a connection open across the
// restart (SIGKILL) keeps working (the restarted daemon picks it up: docs/policy.md).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, labConfig, type LabOptions } from '../../src/lab/lab.js';
import { Namespaces } from '../../src/lab/netns.js';
import { PY, bg, isRoot, killAll, prefix, python, waitFor, waitListening, type Bg } from './helpers.js';

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'calitap.js');
const PORT = 8080;

/**
 * One connection to ip:PORT from ns: a line exchanged at once, another on the same connection once
 * the file `trigger` exists (each answer printed).
 */
const twoExchanges = (ns: string, ip: string, trigger: string): Bg =>
  bg(ns, [
    PY,
    '-c',
    `
import socket, os, time
c = socket.create_connection(('${ip}', ${PORT}), timeout=5)
c.settimeout(20)
f = c.makefile()
c.sendall(b'one\\n'); print(f.readline().strip(), flush=True)
t = time.monotonic()
while not os.path.exists('${trigger}') and time.monotonic() - t < 60: time.sleep(0.05)
c.sendall(b'two\\n'); print(f.readline().strip(), flush=True)
`,
  ]);

const policyYaml = (dbFrom: string): string => `apiVersion: v1
kind: Namespace
metadata: { name: shop, labels: { team: shop } }
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: { name: api-from-web, namespace: shop }
spec:
  selector: role == 'api'
  ingress:
    - action: Log
      protocol: TCP
    - action: Allow
      protocol: TCP
      source: { selector: role == 'web' }
      destination: { ports: [${PORT}] }
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: { name: db-ingress, namespace: shop }
spec:
  selector: role == 'db'
  ingress:
    - action: Allow
      protocol: TCP
      source: { selector: role == '${dbFrom}' }
      destination: { ports: [${PORT}] }
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: { name: web-ingress, namespace: shop }
spec:
  selector: role == 'web'
  types: [Ingress]`;

// a server answering every connection: each line back with the server's role in front
const SERVER = (role: string) => `
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', ${PORT})); s.listen(64)
def serve(c):
    f = c.makefile('rb')
    for line in f:
        c.sendall(b'${role}:' + line)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

/** One new connection from `ns` to `ip`: 'ok:<reply>' or 'fail:<why>' (2 s connect timeout). */
async function connect(ns: string, ip: string): Promise<string> {
  const out = await python(
    ns,
    `
import socket
try:
    c = socket.create_connection(('${ip}', ${PORT}), timeout=2)
    c.sendall(b'hi\\n'); print('ok:' + c.makefile().readline().strip())
except Exception as e:
    print('fail:' + type(e).__name__)
`,
  );
  return out.trim();
}

type W = { name: string; ns: string; ip: string };

describe.skipIf(!isRoot())('network policy in the live daemon (requires root: network namespaces)', () => {
  let lab: Lab;
  let nss: Namespaces;
  const servers: Bg[] = [];
  const w: Record<'web' | 'api' | 'db', W> = {} as Record<'web' | 'api' | 'db', W>;
  const opts = (dbFrom: string): LabOptions => ({
    prefix: prefix('pl'),
    mode: 'vxlan',
    hosts: 1,
    workers: 2,
    extraYaml: policyYaml(dbFrom),
  });

  beforeAll(async () => {
    lab = Lab.create(opts('api'));
    nss = new Namespaces(prefix('pw'));
    await lab.start(1);
    for (const role of ['web', 'api', 'db'] as const) {
      const ns = nss.add(role);
      const r = (await lab.api(1, 'workload.add', {
        name: role,
        netns: ns,
        namespace: 'shop',
        labels: [`role=${role}`, 'app=shop'],
      })) as { ip: string };
      w[role] = { name: role, ns, ip: r.ip };
      const srv = bg(ns, [PY, '-c', SERVER(role)]);
      servers.push(srv);
      await waitListening(ns, 'tcp', PORT);
    }
  }, 60_000);

  afterAll(async () => {
    await killAll();
    await lab?.destroyAsync();
    nss?.destroy();
  });

  it('enforces the matrix with real TCP connections both ways', async () => {
    expect(await connect(w.web.ns, w.api.ip)).toBe('ok:api:hi'); // web → api allowed
    expect(await connect(w.api.ns, w.db.ip)).toBe('ok:db:hi'); // api → db allowed
    expect(await connect(w.web.ns, w.db.ip)).toMatch(/^fail:/); // web → db denied
    expect(await connect(w.db.ns, w.web.ip)).toMatch(/^fail:/); // db → web denied
    expect(await connect(w.api.ns, w.web.ip)).toMatch(/^fail:/); // web ingress: nothing allowed
    expect(await connect(w.db.ns, w.api.ip)).toMatch(/^fail:/); // api ingress: web only
  }, 60_000);

  it('shows the denials in `calitap stats --json` and Log hits in the daemon log', async () => {
    const out = execFileSync(process.execPath, [CLI, 'stats', '--json', '--socket', lab.hosts[0].socket], {
      encoding: 'utf8',
    });
    const rows = (JSON.parse(out) as { counters: { node: string; reason: string; count: number }[] })
      .counters;
    const get = (reason: string) =>
      rows.find((r) => r.node === 'ip4-policy' && r.reason === reason)?.count ?? 0;
    expect(get('shop/db ingress denied by end of tier default')).toBeGreaterThan(0);
    expect(get('shop/web ingress denied by end of tier default')).toBeGreaterThan(0);
    expect(get('denied')).toBeGreaterThan(0);
    expect(get('new-flow')).toBeGreaterThan(0);
    await waitFor('a policy log line', () =>
      fs.readFileSync(lab.hosts[0].log, 'utf8').includes('"policyLog"'),
    );
  }, 30_000);

  it('applies a live policy change to new connections without cutting an open one', async () => {
    const trigger = path.join(lab.dir, 'go');
    // api → db: open, exchange a line, wait for the trigger, exchange another on the same connection
    const open = twoExchanges(w.api.ns, w.db.ip, trigger);
    await waitFor('the first exchange', () => open.stdout.includes('db:one'));
    // db now takes web, not api
    const before = fs.readFileSync(lab.hosts[0].log, 'utf8').split('config reloaded').length;
    fs.writeFileSync(lab.config, labConfig(opts('web')));
    await waitFor(
      'the daemon to reload its config',
      () => fs.readFileSync(lab.hosts[0].log, 'utf8').split('config reloaded').length > before,
      20_000,
    );
    expect(await connect(w.api.ns, w.db.ip)).toMatch(/^fail:/); // new api → db: denied now
    expect(await connect(w.web.ns, w.db.ip)).toBe('ok:db:hi'); // new web → db: allowed now
    fs.writeFileSync(trigger, '');
    await open.wait(20_000);
    expect(open.stdout.trim().split('\n')).toEqual(['db:one', 'db:two']); // the open one lives on
  }, 90_000);

  it('keeps policing restored workloads after a daemon restart, and keeps their open connections', async () => {
    const trigger = path.join(lab.dir, 'restarted');
    // web → db (allowed): one exchange before the crash, one on the same connection after the restart
    const open = twoExchanges(w.web.ns, w.db.ip, trigger);
    await waitFor('the first exchange', () => open.stdout.includes('db:one'));
    await lab.stop(1, 'SIGKILL');
    await lab.start(1);
    // the flow table died with the old process: the restarted daemon picks the connection up
    fs.writeFileSync(trigger, '');
    await open.wait(30_000);
    expect(open.stdout.trim().split('\n')).toEqual(['db:one', 'db:two']);
    await waitFor('the pickup in the log', () =>
      fs
        .readFileSync(lab.hosts[0].log, 'utf8')
        .includes('picking up TCP connections open across the restart'),
    );
    // the policy in force is the reloaded one: db takes web, not api
    expect(await connect(w.web.ns, w.db.ip)).toBe('ok:db:hi');
    expect(await connect(w.api.ns, w.db.ip)).toMatch(/^fail:/);
    expect(await connect(w.web.ns, w.api.ip)).toBe('ok:api:hi');
    expect(await connect(w.db.ns, w.web.ip)).toMatch(/^fail:/);
  }, 60_000);
});
