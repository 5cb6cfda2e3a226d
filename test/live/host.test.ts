// The host TAP (calitap-host0) in the live daemon: the host reaches its pods (ping, TCP) even with a
// deny-all ingress policy on them (host → pod is never policed); pods reach the host (ping the node
// IP, TCP to a listener on it) under each FelixConfiguration defaultEndpointToHostAction, changed
// live (Drop denies new flows and counts them, Accept / Return allow); 1 MB crosses intact each way
// with offloads; the host's routes follow the pools (a route the host had is left alone); the TAP and
// the host's pool route survive a clean restart and a kill -9, and traffic resumes once the daemon is
// back. With etcd: the pool route, and FelixConfiguration default's action changed live.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, labConfig, type LabOptions } from '../../src/lab/lab.js';
import {
  PY,
  bg,
  counters,
  delta,
  isRoot,
  killAll,
  prefix,
  python,
  run,
  waitFor,
  waitListening,
  type Bg,
} from './helpers.js';

const PORT = 8080;
const HOST_PORT = 8081;
const MB = 1 << 20;

const denyIngress = `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: { name: deny-all-ingress }
spec:
  selector: all()
  types: [Ingress]`;

const felix = (action?: string): string =>
  action === undefined
    ? ''
    : `\n---\napiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: { name: default }\nspec: { defaultEndpointToHostAction: ${action} }`;

// answers every line with `<role>:<line>`; a connection starting with "SINK" gets its bytes counted
// and hashed instead ("<len> <sha256>" back after EOF); "SOURCE" gets 1 MB of the pattern back
const SERVER = (role: string, bind: string, port: number) => `
import socket, threading, hashlib
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('${bind}', ${port})); s.listen(64)
def serve(c):
    f = c.makefile('rb')
    first = f.readline()
    if first == b'SINK\\n':
        h = hashlib.sha256(); n = 0
        while True:
            b = f.read(65536)
            if not b: break
            h.update(b); n += len(b)
        c.sendall(('%d %s\\n' % (n, h.hexdigest())).encode())
    elif first == b'SOURCE\\n':
        c.sendall(bytes(range(256)) * ${MB / 256})
    else:
        line = first
        while line:
            c.sendall(b'${role}:' + line)
            line = f.readline()
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

const pool = (cidr: string): string =>
  `\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: { name: p-${cidr.replace(/[./]/g, '-')} }\nspec: { cidr: ${cidr}, vxlanMode: Always }`;

/** One new connection: 'ok:<reply>' or 'fail:<why>' (2 s connect timeout). */
async function connect(ns: string, ip: string, port: number): Promise<string> {
  const out = await python(
    ns,
    `
import socket
try:
    c = socket.create_connection(('${ip}', ${port}), timeout=2)
    c.sendall(b'hi\\n'); print('ok:' + c.makefile().readline().strip())
except Exception as e:
    print('fail:' + type(e).__name__)
`,
  );
  return out.trim();
}

/** 1 MB to the server's sink: "<len> <sha256>" as it counted, and what it should be. */
async function sendMb(ns: string, ip: string, port: number): Promise<{ got: string; want: string }> {
  const out = await python(
    ns,
    `
import socket, hashlib
data = bytes(range(256)) * ${MB / 256}
c = socket.create_connection(('${ip}', ${port}), timeout=10)
c.sendall(b'SINK\\n' + data); c.shutdown(socket.SHUT_WR)
print(c.makefile().readline().strip())
print('%d %s' % (len(data), hashlib.sha256(data).hexdigest()))
`,
    60_000,
  );
  const [got, want] = out.trim().split('\n');
  return { got, want };
}

/** 1 MB from the server's source: its length and hash as received, and what they should be. */
async function receiveMb(ns: string, ip: string, port: number): Promise<{ got: string; want: string }> {
  const out = await python(
    ns,
    `
import socket, hashlib
data = bytes(range(256)) * ${MB / 256}
c = socket.create_connection(('${ip}', ${port}), timeout=10)
c.sendall(b'SOURCE\\n')
h = hashlib.sha256(); n = 0
while True:
    b = c.recv(65536)
    if not b: break
    h.update(b); n += len(b)
print('%d %s' % (n, h.hexdigest()))
print('%d %s' % (len(data), hashlib.sha256(data).hexdigest()))
`,
    60_000,
  );
  const [got, want] = out.trim().split('\n');
  return { got, want };
}

async function pingOk(ns: string, dst: string): Promise<boolean> {
  const r = await run(ns, ['ping', '-c', '2', '-i', '0.2', '-W', '1', dst], 10_000);
  return r.code === 0;
}

describe.skipIf(!isRoot())('the host TAP in the live daemon (requires root: network namespaces)', () => {
  let lab: Lab;
  let hostNs: string;
  let nodeIp: string;
  let pod: { ns: string; ip: string; name: string };
  let other: { ns: string; ip: string; name: string };
  const servers: Bg[] = [];
  const opts = (action?: string, pools: string[] = []): LabOptions => ({
    prefix: prefix('ht'),
    mode: 'vxlan',
    hosts: 1,
    workers: 2,
    extraYaml: denyIngress + felix(action) + pools.map(pool).join(''),
  });

  /** Rewrites the config with `action` (and extra pools) and waits for the daemon to reload it. */
  async function setAction(action: string | undefined, pools: string[] = []): Promise<void> {
    const log = () => fs.readFileSync(lab.hosts[0].log, 'utf8').split('config reloaded').length;
    const before = log();
    fs.writeFileSync(lab.config, labConfig(opts(action, pools)));
    await waitFor('the daemon to reload its config', () => log() > before, 20_000);
  }

  beforeAll(async () => {
    lab = Lab.create(opts());
    hostNs = lab.hosts[0].ns;
    nodeIp = lab.hosts[0].ip;
    await lab.start(1);
    pod = await lab.addWorkload(1);
    other = await lab.addWorkload(1);
    servers.push(bg(pod.ns, [PY, '-c', SERVER('pod', '0.0.0.0', PORT)]));
    servers.push(bg(hostNs, [PY, '-c', SERVER('host', nodeIp, HOST_PORT)]));
    await waitListening(pod.ns, 'tcp', PORT);
    await waitListening(hostNs, 'tcp', HOST_PORT);
  }, 60_000);

  afterAll(async () => {
    await killAll();
    await lab?.destroyAsync();
  });

  it('creates the TAP and routes the pool to it in the host namespace', async () => {
    const r = (await run(hostNs, ['ip', '-4', 'route', 'show', 'exact', '10.65.0.0/16'])).stdout;
    expect(r).toMatch(/via 169\.254\.1\.1 dev calitap-host0/);
    expect(r).toContain(`src ${nodeIp}`);
    expect(r).toMatch(/mtu 1450/);
    const rows = (await lab.api(1, 'routes', {})) as {
      prefix: string;
      port: string | null;
      source: string;
    }[];
    expect(rows.find((x) => x.prefix === `${nodeIp}/32`)).toMatchObject({
      via: 'local',
      port: 'calitap-host0',
      source: 'config', // the documented sources only (ARCHITECTURE.md section 2)
    });
  });

  it('lets the host ping and connect to a pod whose ingress denies everything', async () => {
    expect(await connect(other.ns, pod.ip, PORT)).toMatch(/^fail:/); // deny-all ingress is in force
    expect(await pingOk(hostNs, pod.ip)).toBe(true);
    expect(await connect(hostNs, pod.ip, PORT)).toBe('ok:pod:hi');
  }, 30_000);

  it('lets pods reach the host under each defaultEndpointToHostAction', async () => {
    // unset: Accept
    expect(await pingOk(pod.ns, nodeIp)).toBe(true);
    expect(await connect(pod.ns, nodeIp, HOST_PORT)).toBe('ok:host:hi');
    const before = await counters(lab, 1);
    await setAction('Drop');
    expect(await pingOk(pod.ns, nodeIp)).toBe(false);
    expect(await connect(pod.ns, nodeIp, HOST_PORT)).toMatch(/^fail:/);
    // the host's own connections still get their replies
    expect(await connect(hostNs, pod.ip, PORT)).toBe('ok:pod:hi');
    const after = await counters(lab, 1);
    const drops = (m: Map<string, number>) => m.get('ip4-policy: endpoint-to-host-drop') ?? 0;
    expect(drops(after)).toBeGreaterThan(drops(before));
    for (const action of ['Accept', 'Return']) {
      await setAction(action);
      expect(await pingOk(pod.ns, nodeIp)).toBe(true);
      expect(await connect(pod.ns, nodeIp, HOST_PORT)).toBe('ok:host:hi');
    }
  }, 90_000);

  it("follows the host's addresses: a new one is reachable from pods, a removed one is not routed", async () => {
    const extra = '192.168.77.1';
    const hostRoute = async () =>
      ((await lab.api(1, 'routes', {})) as { prefix: string; port: string | null }[]).find(
        (x) => x.prefix === `${extra}/32`,
      );
    await run(hostNs, ['ip', 'addr', 'add', `${extra}/32`, 'dev', 'lo']);
    await waitFor(
      'the new host address routed',
      async () => (await hostRoute())?.port === 'calitap-host0',
      10_000,
    );
    expect(await pingOk(pod.ns, extra)).toBe(true);
    await run(hostNs, ['ip', 'addr', 'del', `${extra}/32`, 'dev', 'lo']);
    await waitFor('the old host address gone', async () => (await hostRoute()) === undefined, 10_000);
  }, 30_000);

  it('carries 1 MB intact each way with offloads', async () => {
    for (const [ns, ip, port] of [
      [hostNs, pod.ip, PORT],
      [pod.ns, nodeIp, HOST_PORT],
    ] as const) {
      const s = await sendMb(ns, ip, port);
      expect(s.got).toBe(s.want);
      const r = await receiveMb(ns, ip, port);
      expect(r.got).toBe(r.want);
    }
  }, 120_000);

  it('follows the pools with its routes and leaves a route the host had alone', async () => {
    const show = async (cidr: string) =>
      (await run(hostNs, ['ip', '-4', 'route', 'show', 'exact', cidr])).stdout;
    await run(hostNs, ['ip', 'route', 'add', '10.71.0.0/16', 'via', '10.0.0.254']);
    await setAction(undefined, ['10.70.0.0/16', '10.71.0.0/16']);
    await waitFor('the new pool route', async () =>
      (await show('10.70.0.0/16')).includes('dev calitap-host0'),
    );
    expect(await show('10.71.0.0/16')).toMatch(/via 10\.0\.0\.254 dev up0/);
    await setAction(undefined);
    await waitFor('the pool route to go', async () => (await show('10.70.0.0/16')) === '');
    expect(await show('10.71.0.0/16')).toMatch(/via 10\.0\.0\.254 dev up0/);
    expect(await show('10.65.0.0/16')).toMatch(/dev calitap-host0/);
  }, 60_000);

  it('answers a host packet bigger than the pod MTU with fragmentation-needed', async () => {
    // without the route's MTU the kernel sends 1500-byte packets to the TAP (MTU 1500)
    const route = (await run(hostNs, ['ip', '-4', 'route', 'show', 'exact', '10.65.0.0/16'])).stdout.trim();
    await run(hostNs, ['ip', 'route', 'replace', ...route.replace(/ mtu \d+/, '').split(/\s+/)]);
    try {
      const before = await counters(lab, 1);
      const r = await run(hostNs, [
        'ping',
        '-c',
        '3',
        '-i',
        '0.5',
        '-W',
        '2',
        '-M',
        'do',
        '-s',
        '1472',
        pod.ip,
      ]);
      const d = delta(before, await counters(lab, 1));
      expect(r.stdout + r.stderr, r.stdout + r.stderr + JSON.stringify(d)).toMatch(/mtu ?= ?1450/);
    } finally {
      await run(hostNs, ['ip', 'route', 'replace', ...route.split(/\s+/)]);
    }
    expect(await pingOk(hostNs, pod.ip)).toBe(true);
  }, 30_000);

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`keeps the TAP and its route over a ${signal} restart; traffic resumes`, async () => {
      await lab.stop(1, signal);
      const link = await run(hostNs, ['ip', '-j', 'link', 'show', 'calitap-host0']);
      expect(link.code).toBe(0);
      const r = (await run(hostNs, ['ip', '-4', 'route', 'show', 'exact', '10.65.0.0/16'])).stdout;
      expect(r).toMatch(/dev calitap-host0/);
      await lab.start(1);
      await waitFor('host → pod ping', () => pingOk(hostNs, pod.ip), 10_000);
      expect(await connect(hostNs, pod.ip, PORT)).toBe('ok:pod:hi');
      expect(await connect(pod.ns, nodeIp, HOST_PORT)).toBe('ok:host:hi');
    }, 60_000);
  }
});

describe.skipIf(!isRoot() || !fs.existsSync('/usr/bin/etcd'))(
  'the host TAP with etcd: defaultEndpointToHostAction changed live (requires root and etcd-server)',
  () => {
    let lab: Lab;
    const felixDoc = (action: string) =>
      `apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: { name: default }\nspec: { defaultEndpointToHostAction: ${action} }\n`;

    beforeAll(async () => {
      lab = Lab.create({
        prefix: prefix('he'),
        mode: 'vxlan',
        hosts: 1,
        workers: 1,
        etcd: true,
        daemonEnv: { CALICO_IPV4POOL_CIDR: '10.65.0.0/16', IP_AUTODETECTION_METHOD: 'first-found' },
      });
      await lab.startEtcd();
      await lab.start(1, 30_000);
    }, 120_000);

    afterAll(async () => {
      await killAll();
      await lab?.destroyAsync();
    });

    it('routes the pool to the TAP and follows FelixConfiguration default', async () => {
      const h = lab.hosts[0];
      const r = (await run(h.ns, ['ip', '-4', 'route', 'show', 'exact', '10.65.0.0/16'])).stdout;
      expect(r).toMatch(/via 169\.254\.1\.1 dev calitap-host0/);
      const pod = await lab.addWorkload(1);
      expect(await pingOk(pod.ns, h.ip)).toBe(true);
      lab.cli(['apply', '-f', '-'], felixDoc('Drop'));
      await waitFor('pod → host dropped', async () => !(await pingOk(pod.ns, h.ip)), 10_000);
      expect(await pingOk(h.ns, pod.ip)).toBe(true); // host → pod is never policed
      lab.cli(['apply', '-f', '-'], felixDoc('Return'));
      await waitFor('pod → host allowed again', () => pingOk(pod.ns, h.ip), 10_000);
    }, 90_000);
  },
);

describe.skipIf(!isRoot())('calitap run --no-host-interface (requires root: network namespaces)', () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = Lab.create({
      prefix: prefix('hn'),
      mode: 'vxlan',
      hosts: 1,
      workers: 1,
      daemonArgs: ['--no-host-interface'],
    });
    await lab.start(1);
  }, 60_000);

  afterAll(async () => {
    await killAll();
    await lab?.destroyAsync();
  });

  it('makes no TAP and no route, and drops pod → host as before', async () => {
    const h = lab.hosts[0];
    expect((await run(h.ns, ['ip', 'link', 'show', 'calitap-host0'])).code).not.toBe(0);
    expect((await run(h.ns, ['ip', '-4', 'route', 'show', 'exact', '10.65.0.0/16'])).stdout).toBe('');
    const pod = await lab.addWorkload(1);
    expect(await pingOk(pod.ns, h.ip)).toBe(false);
    expect((await counters(lab, 1)).get('ip4-input: to-host-unsupported') ?? 0).toBeGreaterThan(0);
  }, 30_000);
});
