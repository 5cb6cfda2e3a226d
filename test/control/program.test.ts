// The Programmer (control/daemon/program.ts) as the control thread uses it: routes installed, replaced
// and withdrawn with their adjacency and next-hop references, workloads attached and detached, NAT
// port allocation by seed, and full tables that refuse (counted) and recover. No root, no threads: a
// "worker" is simulated by a registered reader that passes quiescent points when the test says so.
import { describe, expect, it } from 'vitest';
import { loadConfigFile, loadConfigText } from '../../src/control/config/load.js';
import { Programmer } from '../../src/control/daemon/program.js';
import { formatIp4, parseIp4, parsePrefix4 } from '../../src/common/addr.js';
import { ADJ_KIND_NAMES } from '../../src/dataplane/tables/adjacency.js';
import { TableFullError } from '../../src/dataplane/tables/errors.js';

const CONFIG = new URL('../../pcaps/sample-config.yaml', import.meta.url).pathname;

/** The NAT port the first flow of a fresh table gets. */
function firstPort(opts: { natSeed?: number }): number {
  const prog = new Programmer(loadConfigFile(CONFIG), 'node-a', opts);
  const nat = prog.env.nat!;
  const f = nat.createOut(6, parseIp4('10.65.0.2')!, 40000, parseIp4('192.0.2.10')!, 80, 1000);
  expect(f).toBeGreaterThanOrEqual(0);
  return nat.natPort(f);
}

describe('programmer: NAT port allocation', () => {
  it('is reproducible with a seed (replay --seed)', () => {
    expect(firstPort({ natSeed: 0 })).toBe(firstPort({ natSeed: 0 }));
    expect(firstPort({ natSeed: 7 })).toBe(firstPort({ natSeed: 7 }));
  });

  it('is unpredictable without one (the live daemon, RFC 6056)', () => {
    const ports = new Set([firstPort({}), firstPort({}), firstPort({}), firstPort({})]);
    expect(ports.size).toBeGreaterThan(1);
  });
});

// One node on a /16 shared with thousands of next hops (BGP peers announcing /32s), no pool NAT.
const yaml = `
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: pods}
spec: {cidr: 10.65.0.0/16}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: a}
spec: {bgp: {ipv4Address: 10.0.0.1/16}}
---
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: {name: a1}
spec: {node: a, cidr: 10.65.0.0/26}
---
apiVersion: calitap/v1
kind: Uplink
metadata: {name: a}
spec:
  interfaceName: up0
  mac: 02:00:00:00:00:01
  gateway: 10.0.255.254
  neighbors: [{ip: 10.0.255.254, mac: 02:00:00:00:00:fe}]
`;
const cfg = loadConfigText(yaml, 'program.yaml');
const ip = (s: string): number => parseIp4(s)!;

/** The k-th next hop on the shared /16 (10.0.1.1 ...), from a given set. */
const hop = (set: number, k: number): number => (ip('10.0.0.0') + set * 0x8000 + 0x100 + k) >>> 0;
/** The k-th announced /32 (192.168.0.0 ...). */
const dst = (set: number, k: number): number => (ip('192.168.0.0') + set * 0x10000 + k) >>> 0;

function bgpRoute(prefixAddr: number, nextHop: number) {
  return {
    prefix: { addr: prefixAddr, len: 32 },
    via: 'direct' as const,
    source: 'bgp' as const,
    nextHop,
    port: 'up0',
    linkNextHop: nextHop,
  };
}

/** Where the dataplane would send `addr`: the adjacency's kind, next hop and neighbour IP. */
function forward(prog: Programmer, addr: number): { via: string; nextHop: string; neighbor: string } | null {
  const { fib, adj, nbr } = prog.env;
  const a = fib.lookup(addr);
  if (a === 0) return null;
  const nb = adj.neighbor[a];
  return {
    via: ADJ_KIND_NAMES[adj.kind[a]],
    nextHop: formatIp4(adj.nextHop[a]),
    neighbor: nb >= 0 ? formatIp4(nbr.ip[nb]) : '-',
  };
}

describe('programmer: install / withdraw', () => {
  it('installs a route through the right adjacency and neighbour; replaces and withdraws it', () => {
    const prog = new Programmer(cfg, 'a', { configEndpoints: false });
    const baseNbr = prog.env.nbr.size; // the gateway (static)
    const p = dst(0, 1);
    prog.install(bgpRoute(p, hop(0, 1)));
    expect(forward(prog, p)).toEqual({ via: 'direct', nextHop: '10.0.1.1', neighbor: '10.0.1.1' });
    expect(prog.route({ addr: p, len: 32 })?.nextHop).toBe(hop(0, 1));
    expect(prog.env.nbr.size).toBe(baseNbr + 1);
    prog.install(bgpRoute(p, hop(0, 2)));
    expect(forward(prog, p)).toEqual({ via: 'direct', nextHop: '10.0.1.2', neighbor: '10.0.1.2' });
    expect(prog.env.nbr.find(hop(0, 1))).toBe(-1); // the old next hop's last route left
    expect(prog.env.nbr.size).toBe(baseNbr + 1);
    expect(prog.withdraw({ addr: p, len: 32 })).toBe(true);
    expect(prog.withdraw({ addr: p, len: 32 })).toBe(false);
    expect(forward(prog, p)).toEqual({ via: 'gateway', nextHop: '10.0.255.254', neighbor: '10.0.255.254' });
    expect(prog.env.nbr.size).toBe(baseNbr);
    expect(prog.table().some((r) => r.prefix === formatIp4(p) + '/32')).toBe(false);
  });

  it('routes sharing a next hop share its neighbour entry and adjacency', () => {
    const prog = new Programmer(cfg, 'a', { configEndpoints: false });
    const adjBefore = prog.env.adj.size;
    for (let k = 0; k < 10; k++) prog.install(bgpRoute(dst(0, k), hop(0, 7)));
    const nb = prog.env.nbr.find(hop(0, 7));
    expect(prog.env.nbr.refCount(nb)).toBe(10);
    expect(prog.env.adj.size).toBe(adjBefore + 1);
    for (let k = 0; k < 9; k++) prog.withdraw({ addr: dst(0, k), len: 32 });
    expect(prog.env.nbr.refCount(nb)).toBe(1);
    expect(forward(prog, dst(0, 9))?.neighbor).toBe('10.0.1.7');
    prog.withdraw({ addr: dst(0, 9), len: 32 });
    expect(prog.env.nbr.find(hop(0, 7))).toBe(-1);
    expect(prog.env.adj.size).toBe(adjBefore);
  });

  it('attaches and detaches workloads: port slot, /32 to the port, route and adjacency gone', () => {
    const prog = new Programmer(cfg, 'a', { configEndpoints: false, portSlots: 4 });
    const w = { name: 'cali1', ip: ip('10.65.0.5'), mac: '02:aa:00:00:00:05' };
    const p = prog.attachWorkload(w);
    expect(p).toBe(1);
    expect(prog.env.ports.index('cali1')).toBe(1);
    const a = prog.env.fib.lookup(w.ip);
    expect(prog.env.adj.kindName(a)).toBe('local');
    expect(prog.env.adj.port[a]).toBe(1);
    expect(Array.from(prog.env.adj.mac.subarray(a * 6, a * 6 + 6))).toEqual([2, 0xaa, 0, 0, 0, 5]);
    expect(() => prog.attachWorkload(w)).toThrow(/already attached/);
    const q = prog.attachWorkload({ name: 'cali2', ip: ip('10.65.0.6'), mac: '02:aa:00:00:00:06' });
    expect(q).toBe(2);
    expect(prog.detachWorkload('cali1')).toBe(1);
    expect(prog.detachWorkload('cali1')).toBe(-1);
    expect(prog.detachWorkload('up0')).toBe(-1); // never the uplink
    expect(prog.env.ports.index('cali1')).toBeUndefined();
    // the block's blackhole covers the address again
    expect(prog.env.adj.kindName(prog.env.fib.lookup(w.ip))).toBe('blackhole');
    expect(prog.env.adj.refs[a]).toBe(0);
    // the freed slot is reused
    expect(prog.attachWorkload({ name: 'cali3', ip: ip('10.65.0.7'), mac: '02:aa:00:00:00:07' })).toBe(1);
  });
});

describe('programmer: Calico-scale next-hop churn (issue 8)', () => {
  const N = 5000;

  function installAll(prog: Programmer, set: number, quiesce: () => void): number {
    let failed = 0;
    for (let k = 0; k < N; k++) {
      try {
        prog.install(bgpRoute(dst(set, k), hop(set, k)));
      } catch {
        failed++;
      }
      if (k % 256 === 255) quiesce(); // a worker finishes a batch now and then
    }
    return failed;
  }

  function checkAll(prog: Programmer, set: number): void {
    let wrong = 0;
    for (let k = 0; k < N; k++) {
      const f = forward(prog, dst(set, k));
      if (f?.via !== 'direct' || f.neighbor !== formatIp4(hop(set, k))) wrong++;
    }
    expect(wrong).toBe(0);
  }

  it('5000 /32s over 5000 next hops, replaced by 5000 over 5000 others (same prefixes): all installed', () => {
    const prog = new Programmer(cfg, 'a', { configEndpoints: false });
    const readers = prog.tables.readers;
    const w = readers.register(); // a worker
    const base = prog.env.nbr.size;
    expect(installAll(prog, 0, () => readers.quiescent(w))).toBe(0);
    checkAll(prog, 0);
    // the same prefixes move to other next hops (BGP implicit withdraw)
    for (let k = 0; k < N; k++) {
      prog.install(bgpRoute(dst(0, k), hop(1, k)));
      if (k % 256 === 255) readers.quiescent(w);
    }
    for (let k = 0; k < N; k++) expect(forward(prog, dst(0, k))?.neighbor).toBe(formatIp4(hop(1, k)));
    readers.quiescent(w);
    prog.maintain();
    expect(prog.env.nbr.size).toBe(base + N);
    expect(prog.env.nbr.pending).toBe(0);
    expect(prog.counters()).toEqual([]);
  });

  it('withdrawn and re-announced over other next hops, even with a worker that never quiesces', () => {
    const prog = new Programmer(cfg, 'a', { configEndpoints: false });
    const readers = prog.tables.readers;
    readers.register(); // stuck worker: nothing it may hold is reused, and still everything fits
    expect(installAll(prog, 0, () => {})).toBe(0);
    for (let k = 0; k < N; k++) prog.withdraw({ addr: dst(0, k), len: 32 });
    expect(installAll(prog, 1, () => {})).toBe(0);
    checkAll(prog, 1);
    for (let k = 0; k < N; k++) expect(forward(prog, dst(0, k))?.via).toBe('gateway');
    expect(prog.counters()).toEqual([]);
  });

  it('new routes announced before the old ones are withdrawn: 10 000 next hops at once', () => {
    const prog = new Programmer(cfg, 'a', { configEndpoints: false });
    expect(installAll(prog, 0, () => {})).toBe(0);
    expect(installAll(prog, 1, () => {})).toBe(0);
    checkAll(prog, 0);
    checkAll(prog, 1);
    for (let k = 0; k < N; k++) prog.withdraw({ addr: dst(0, k), len: 32 });
    checkAll(prog, 1);
  });

  it('a full neighbour table refuses (counted), keeps the routes waiting and installs them once freed', () => {
    const prog = new Programmer(cfg, 'a', { configEndpoints: false, neighborCapacity: 6000 });
    const readers = prog.tables.readers;
    const w = readers.register();
    expect(installAll(prog, 0, () => readers.quiescent(w))).toBe(0);
    // withdrawn while the worker is in the middle of a batch: the 5000 entries are not reusable yet
    for (let k = 0; k < N; k++) prog.withdraw({ addr: dst(0, k), len: 32 });
    let refused = 0;
    for (let k = 0; k < N; k++) {
      try {
        prog.install(bgpRoute(dst(1, k), hop(1, k)));
      } catch (e) {
        expect(e).toBeInstanceOf(TableFullError);
        expect((e as TableFullError).code).toBe('neighbor-table-full');
        refused++;
      }
    }
    expect(refused).toBe(N - (6000 - 1 - N)); // room for 999 (the gateway holds one)
    expect(prog.waitingRoutes).toBe(refused);
    expect(prog.counters()).toEqual(
      expect.arrayContaining([
        { node: 'neighbor-table', reason: 'full', count: refused },
        { node: 'route', reason: 'refused', count: refused },
        { node: 'route', reason: 'waiting', count: refused },
      ]),
    );
    expect(prog.maintain()).toBe(0); // the worker still may hold the old entries
    expect(prog.waitingRoutes).toBe(refused);
    readers.quiescent(w); // its batch ended
    expect(prog.maintain()).toBe(refused);
    expect(prog.waitingRoutes).toBe(0);
    checkAll(prog, 1);
    const rows = prog.counters();
    expect(rows.find((r) => r.reason === 'waiting')).toBeUndefined();
    expect(rows).toContainEqual({ node: 'route', reason: 'refused', count: refused });
  });

  it('a waiting route that is withdrawn is forgotten', () => {
    const prog = new Programmer(cfg, 'a', { configEndpoints: false, neighborCapacity: 2 });
    prog.install(bgpRoute(dst(0, 1), hop(0, 1)));
    const p = parsePrefix4('192.168.0.2/32')!;
    expect(() => prog.install(bgpRoute(p.addr, hop(0, 2)))).toThrow(TableFullError);
    expect(prog.waitingRoutes).toBe(1);
    expect(prog.withdraw(p)).toBe(true);
    expect(prog.waitingRoutes).toBe(0);
    prog.withdraw({ addr: dst(0, 1), len: 32 });
    expect(prog.maintain()).toBe(0);
    expect(prog.env.fib.lookup(p.addr)).toBe(prog.env.fib.lookup(ip('8.8.8.8'))); // the default route
  });
});
