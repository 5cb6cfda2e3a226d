// Datastore benchmark: a simulated cluster of N nodes (N datastore clients in this process) against a
// real etcd (Debian's etcd-server, started in a namespace of its own; an in-memory datastore when not
// root or etcd is missing, and the output says so).
//  0. connect: every client opens its gRPC channel with one read (timed apart: N channels set up at
//     once on a loaded 2-core machine can take seconds, which is not the datastore's work);
//  1. register: every node joins at once (defaults, Node, IPIP tunnel address: one block claimed and
//     one CAS allocation each); like calico-node, a join that finds etcd unreachable (a 5 s deadline
//     passed) is retried after a second, and the retries are reported;
//  2. attach: every node attaches W workloads at once (a CAS allocation + a WorkloadEndpoint each);
//  3. pool-mode change: every node follows the datastore (DatastoreSync + ClusterModel + route
//     compilation, as the daemon does); `calitap apply` of the pool with ipipMode CrossSubnet; time
//     until every node's FIB has the new route. Node 0 programs a real FIB (Programmer +
//     Reprogrammer); the others keep their routes in a Map (a DIR-24-8 FIB is 64 MiB each).
//     All N nodes share this one thread: "in every FIB" includes N nodes' work done one after the
//     other, so the first node's time and each node's own apply time (model + compile + FIB) are
//     reported too (what one node on its own machine would take), and per node the time from the
//     write until its watch delivered the event and until its FIB had the route. The write is made
//     once every node's watch has delivered a marker key (/calitap/bench/ready), so watch set-up is
//     not measured. The nodes other than 0 apply the difference to their Map, as the Reprogrammer
//     does to node 0's FIB. CALITAP_BENCH_MARKS=1 prints phase times for a --cpu-prof profile.
// Goals (issue 10): 1 000 allocations in under 10 s; the change in every FIB within 1 s.
//   npm run bench:datastore [-- --nodes 100 --workloads 10]   (--quick: 10 nodes)
import pino from 'pino';
import { formatPrefix4 } from '../src/common/addr.js';
import { compileRoutes, type RouteSpec } from '../src/control/config/compile.js';
import { defaultPool, workloadEndpoint } from '../src/control/datastore/defaults.js';
import { EtcdDatastore } from '../src/control/datastore/etcd.js';
import { configFromKvs } from '../src/control/datastore/model.js';
import { MemoryDatastore } from '../src/control/datastore/memory.js';
import { ResourceClient } from '../src/control/datastore/resources.js';
import { isDsError, type Datastore, type WatchCallbacks } from '../src/control/datastore/types.js';
import { DatastoreSync, joinCluster } from '../src/control/daemon/datastore-sync.js';
import { Programmer } from '../src/control/daemon/program.js';
import { Reprogrammer } from '../src/control/daemon/reprogram.js';
import { CasIpam } from '../src/control/ipam/cas.js';
import { haveEtcd, NamespacedEtcd } from '../src/lab/etcd.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

const quick = process.argv.includes('--quick');
const N = arg('nodes', quick ? 10 : 100);
const W = arg('workloads', 10);
const log = pino({ level: 'silent' });
/** CALITAP_BENCH_MARKS=1: phase start times on the monotonic clock a --cpu-prof profile uses (us) */
const mark = (what: string) => {
  if (process.env.CALITAP_BENCH_MARKS) console.log(`mark ${what} ${process.hrtime.bigint() / 1000n}`);
};
const nodeName = (i: number) => `node-${String(i).padStart(3, '0')}`;
const nodeIp = (i: number) => `10.0.${i >> 8}.${(i & 255) + 1}/16`;

/** The same Datastore, with a hook that sees every watch batch as it arrives (before the consumer). */
function tapWatch(ds: Datastore, seen: (keys: string[]) => void): Datastore {
  const tapped = Object.create(ds) as Datastore;
  tapped.watch = (prefix: string, from: number, cb: WatchCallbacks) =>
    ds.watch(prefix, from, {
      onEvents: (events, revision) => {
        seen(events.map((e) => (e.type === 'put' ? e.kv.key : e.key)));
        cb.onEvents(events, revision);
      },
      onError: (e) => cb.onError(e),
    });
  return tapped;
}

async function main(): Promise<void> {
  let etcd: NamespacedEtcd | null = null;
  let open: () => Datastore;
  if (haveEtcd()) {
    etcd = new NamespacedEtcd('db');
    await etcd.start();
    const url = etcd.url;
    open = () => new EtcdDatastore({ endpoints: [url] });
  } else {
    const mem = new MemoryDatastore();
    open = () => mem;
    console.log('(not root or no etcd-server: in-memory datastore)');
  }
  const clients: Datastore[] = Array.from({ length: N }, () => open());
  const env = { CALICO_IPV4POOL_CIDR: '10.96.0.0/12', CALICO_IPV4POOL_IPIP: 'Always' };
  try {
    // 0. connect
    let t = performance.now();
    await Promise.all(clients.map((ds) => ds.get('/calico/ipam/v2/config')));
    const connectMs = performance.now() - t;
    // 1. register
    let retries = 0;
    const join = async (i: number) => {
      for (;;) {
        try {
          return await joinCluster(clients[i], { node: nodeName(i), ip: nodeIp(i), env, log });
        } catch (e) {
          if (!isDsError(e, 'datastore-unavailable') || retries++ > 10 * N) throw e;
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    };
    mark('register');
    t = performance.now();
    const joined = await Promise.all(clients.map((_, i) => join(i)));
    const registerMs = performance.now() - t;

    // 2. attach W workloads per node
    const ipams = clients.map((ds) => new CasIpam(ds));
    const pools = joined[0].cfg.pools;
    mark('attach');
    t = performance.now();
    let allocated = 0;
    await Promise.all(
      clients.map(async (ds, i) => {
        const rc = new ResourceClient(ds);
        await Promise.all(
          Array.from({ length: W }, async (_, k) => {
            const name = `w${k}`;
            const [ip] = await ipams[i].assign({
              handle: `calitap.${nodeName(i)}.default.${name}`,
              host: nodeName(i),
              attrs: { node: nodeName(i) },
              pools,
            });
            allocated++;
            const a = `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
            await rc.apply(
              workloadEndpoint({
                node: nodeName(i),
                namespace: 'default',
                workload: name,
                ip: a,
                mac: '52:54:00:00:00:01',
                interfaceName: `cali${String(i * 100 + k).padStart(11, '0')}`,
              }),
            );
          }),
        );
      }),
    );
    const attachMs = performance.now() - t;
    const conflicts = ipams.reduce((n, x) => n + x.stats.conflicts, 0);

    // 3. every node follows the datastore; one pool change
    const want = (i: number) => (i === 0 ? 1 : 0); // a block of node 1, seen from node 0 / any block of node 0 elsewhere
    let done = 0;
    let firstMs = -1;
    let t0 = 0;
    const READY_KEY = '/calitap/bench/ready';
    const poolKey = '/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool';
    /** per node: ms from the pool write until its watch delivered it, and until its FIB had it */
    const arriveMs = new Array<number>(N).fill(NaN);
    const fibMs = new Array<number>(N).fill(NaN);
    let ready = 0;
    let resolveReady: () => void = () => undefined;
    const allReady = new Promise<void>((r) => (resolveReady = r));
    /** per node: milliseconds spent applying changes after the pool write */
    const applyMs = new Array<number>(N).fill(0);
    let resolveAll: () => void = () => undefined;
    const all = new Promise<void>((r) => (resolveAll = r));
    const syncs: DatastoreSync[] = [];
    const blockOf = new Map(
      configFromKvs((await clients[0].list('/cali')).kvs, 'bench').affinities.map((a) => [a.node, a.cidr]),
    );
    let prog: Programmer | null = null;
    for (let i = 0; i < N; i++) {
      const j = joined[i];
      const me = nodeName(i);
      const target = nodeName(want(i));
      let seen = false;
      // the route to watch for: `target`'s block, now direct (same subnet, CrossSubnet)
      const block = formatPrefix4(blockOf.get(target)!);
      const check = (route: RouteSpec | undefined) => {
        if (seen || route?.via !== 'direct') return;
        seen = true;
        fibMs[i] = performance.now() - t0;
        if (firstMs < 0) firstMs = fibMs[i];
        if (++done === N) resolveAll();
      };
      const listed = await clients[i].list('/cali');
      j.model.reset(listed.kvs);
      const cfg0 = j.model.build();
      const uplink = { node: me, interfaceName: 'up0', mtu: 1500, neighbors: [], gateway: 0x0a00fffe };
      cfg0.uplinks.set(me, uplink);
      let onChange: (cfg: typeof cfg0) => void;
      if (i === 0) {
        // this node's workloads have no ports here (no TAPs): the Reprogrammer leaves them out too
        cfg0.endpoints = cfg0.endpoints.filter((e) => e.node !== me);
        prog = new Programmer(cfg0, me, {
          uplinkMac: '02:00:00:00:00:01',
          configEndpoints: false,
          portSlots: 4,
          natCapacity: 1024,
        });
        const p = prog;
        const rp = new Reprogrammer(p, { bgp: null, publishParams: () => undefined, log }, true);
        const prefix = blockOf.get(target)!;
        onChange = (cfg) => {
          rp.apply(cfg);
          check(p.route(prefix));
        };
      } else {
        // the same route compilation; the FIB a Map changed by the difference, as the Reprogrammer does
        let fib = new Map<string, RouteSpec>();
        onChange = (cfg) => {
          cfg.uplinks.set(me, uplink);
          const next = new Map<string, RouteSpec>();
          for (const r of compileRoutes(cfg, me).routes) {
            const k = formatPrefix4(r.prefix);
            const old = fib.get(k);
            next.set(k, old !== undefined && sameRoute(old, r) ? old : r);
          }
          fib = next;
          check(fib.get(block));
        };
      }
      onChange(j.model.build()); // the steady state before the change
      const timed = onChange;
      onChange = (cfg) => {
        const a = performance.now();
        timed(cfg);
        if (t0 > 0) applyMs[i] += performance.now() - a;
      };
      let wasReady = false;
      const tapped = tapWatch(clients[i], (keys) => {
        if (!wasReady && keys.includes(READY_KEY)) {
          wasReady = true;
          if (++ready === N) resolveReady();
        }
        if (t0 > 0 && Number.isNaN(arriveMs[i]) && keys.includes(poolKey))
          arriveMs[i] = performance.now() - t0;
      });
      const s = new DatastoreSync(tapped, j.model, onChange, log, 0);
      s.start(listed.revision);
      syncs.push(s);
    }
    // every watch established: one write every node must see before the measured one
    await clients[0].put(READY_KEY, 'ready');
    await allReady;
    await new Promise((r) => setTimeout(r, 200));
    const pool = defaultPool(env);
    (pool.spec as Record<string, unknown>).ipipMode = 'CrossSubnet';
    mark('change');
    t = performance.now();
    t0 = t;
    await new ResourceClient(clients[0]).apply(pool);
    const applied = performance.now() - t;
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 30_000));
    const r = await Promise.race([all.then(() => 'ok' as const), timeout]);
    const changeMs = performance.now() - t;
    mark('end');
    for (const s of syncs) s.stop();

    const rows = [
      ['datastore', etcd ? `etcd ${etcd.url} (etcd-server, own namespace)` : 'memory'],
      ['nodes x workloads', `${N} x ${W}`],
      [`connect (${N} clients, one read each)`, `${connectMs.toFixed(0)} ms`],
      [
        'register (join, block claim, tunnel address)',
        `${registerMs.toFixed(0)} ms (${retries} joins retried after a deadline)`,
      ],
      [
        `attach: ${allocated} CAS allocations + WorkloadEndpoints`,
        `${attachMs.toFixed(0)} ms (${((attachMs / allocated) * 1000).toFixed(0)} us each, ${conflicts} conflicts retried)`,
      ],
      ['pool mode change: write', `${applied.toFixed(0)} ms`],
      [
        `pool mode change: in every FIB (${done}/${N})`,
        r === 'ok' ? `${changeMs.toFixed(0)} ms` : 'TIMEOUT (30 s)',
      ],
      ['pool mode change: in the first FIB', `${firstMs.toFixed(0)} ms`],
      [
        'pool mode change: watch event arrived (med/max)',
        `${median(arriveMs).toFixed(0)} / ${Math.max(...arriveMs).toFixed(0)} ms`,
      ],
      [
        'pool mode change: in the FIB (med/max)',
        `${median(fibMs).toFixed(0)} / ${Math.max(...fibMs).toFixed(0)} ms`,
      ],
      [
        'pool mode change: FIB minus arrival, per node (med/max)',
        `${median(fibMs.map((f, k) => f - arriveMs[k])).toFixed(1)} / ${Math.max(...fibMs.map((f, k) => f - arriveMs[k])).toFixed(1)} ms`,
      ],
      [
        'pool mode change: one node applying it (med/max)',
        `${median(applyMs).toFixed(1)} / ${Math.max(...applyMs).toFixed(1)} ms (node 0, real FIB: ${applyMs[0].toFixed(1)} ms)`,
      ],
    ];
    for (const [k, v] of rows) console.log(`${k.padEnd(52)} ${v}`);
  } finally {
    for (const c of new Set(clients)) await c.close();
    await etcd?.destroy();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function sameRoute(a: RouteSpec, b: RouteSpec): boolean {
  return (
    a.via === b.via &&
    a.nextHop === b.nextHop &&
    a.port === b.port &&
    a.mac === b.mac &&
    a.linkNextHop === b.linkNextHop
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
