// `calitap run` with a live configuration:
//  - datastore mode (--datastore etcdv3 / DATASTORE_TYPE=etcdv3): join the cluster (datastore-sync.ts),
//    build the daemon from the listed state, then follow the watch: every change goes through the
//    Reprogrammer; workloads get their addresses from the CAS IPAM and are written as Calico
//    WorkloadEndpoints (name scheme, labels, projectcalico.org/namespace and orchestrator labels);
//  - file mode (--config FILE): the daemon as before, plus the file datastore's reload on change and
//    on SIGHUP; a file that fails validation is refused with its one-line error and nothing changes.
// Control thread; owns the datastore client it opens and closes it on SIGTERM/SIGINT.
import pino from 'pino';
import { formatIp4, parseIp4 } from '../../common/addr.js';
import { CalitapError } from '../../common/errors.js';
import { loadConfigFile } from '../config/load.js';
import type { ClusterConfig } from '../config/types.js';
import { workloadEndpoint } from '../datastore/defaults.js';
import { FileDatastore, type ReloadResult } from '../datastore/file.js';
import { openDatastore, type DatastoreChoice } from '../datastore/open.js';
import { ResourceClient } from '../datastore/resources.js';
import { isDsError, type Datastore } from '../datastore/types.js';
import { CasIpam } from '../ipam/cas.js';
import { Daemon, type DaemonOptions } from './daemon.js';
import { DatastoreSync, ensureTunnelAddresses, joinCluster } from './datastore-sync.js';
import { Reprogrammer } from './reprogram.js';
import type { WorkloadRecord } from './workloads.js';

const LABEL_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function labelsOf(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  const list = Array.isArray(v) ? v : v === undefined ? [] : [v];
  for (const item of list) {
    const m = /^([^=]+)=(.*)$/.exec(String(item));
    if (!m)
      throw new CalitapError('bad-request', `workload add: --label ${String(item)}: expected key=value`);
    out[m[1]] = m[2];
  }
  return out;
}

/** Workload addresses from the CAS IPAM and WorkloadEndpoints in the datastore. */
export class DatastoreWorkloads {
  /** one client: its operations are serialized like Calico's CNI host-wide IPAM lock */
  private readonly ipam: CasIpam;

  constructor(
    private readonly ds: Datastore,
    private readonly node: string,
    private readonly cfg: () => ClusterConfig,
  ) {
    this.ipam = new CasIpam(ds);
  }

  private handle(ns: string, name: string): string {
    return `calitap.${this.node}.${ns}.${name}`;
  }

  private ns(p: Record<string, unknown>): string {
    const ns = p.namespace === undefined ? 'default' : String(p.namespace);
    if (!LABEL_RE.test(ns))
      throw new CalitapError('bad-request', `workload add: --namespace ${ns}: expected a DNS-1123 label`);
    return ns;
  }

  async beforeAdd(p: Record<string, unknown>): Promise<string> {
    const ns = this.ns(p);
    labelsOf(p.labels);
    const name = String(p.name);
    const req = {
      handle: this.handle(ns, name),
      host: this.node,
      attrs: { namespace: ns, node: this.node, pod: name },
      pools: this.cfg().pools,
    };
    const ipam = this.ipam;
    if (p.ip !== undefined && p.ip !== null) {
      const ip = parseIp4(String(p.ip));
      if (ip === null)
        throw new CalitapError('bad-request', `workload add: --ip ${String(p.ip)}: not an IPv4 address`);
      await ipam.assignIp(ip, req);
      return formatIp4(ip);
    }
    const [ip] = await ipam.assign(req);
    return formatIp4(ip);
  }

  async afterAdd(r: WorkloadRecord, p: Record<string, unknown>): Promise<void> {
    const wep = workloadEndpoint({
      node: this.node,
      namespace: this.ns(p),
      workload: r.name,
      ip: r.ip,
      mac: r.mac,
      interfaceName: r.tap,
      labels: labelsOf(p.labels),
    });
    await new ResourceClient(this.ds).apply(wep);
  }

  async release(name: string): Promise<void> {
    const rc = new ResourceClient(this.ds);
    const namespaces = new Set<string>();
    for (const w of (await rc.list('WorkloadEndpoint')).items) {
      const spec = w.spec as { node?: unknown; workload?: unknown };
      if (spec.node !== this.node || spec.workload !== name) continue;
      namespaces.add(w.metadata.namespace ?? 'default');
      await rc.delete('WorkloadEndpoint', w.metadata.name, w.metadata.namespace).catch(() => undefined);
    }
    if (namespaces.size === 0) namespaces.add('default');
    const ipam = this.ipam;
    for (const ns of namespaces) await ipam.releaseHandle(this.handle(ns, name));
  }
}

export interface LiveOptions extends DaemonOptions {
  choice: DatastoreChoice;
  /** --ip / IP */
  ip?: string;
}

function onSignals(stop: (sig: string) => Promise<void>): void {
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => {
      void stop(sig).then(() => process.exit(0));
    });
  }
}

export async function runLiveDaemon(opts: LiveOptions): Promise<Daemon> {
  return opts.choice.type === 'etcdv3' ? runDatastoreDaemon(opts) : runFileDaemon(opts);
}

async function runFileDaemon(opts: LiveOptions): Promise<Daemon> {
  const file = opts.choice.file!;
  const fds = FileDatastore.open(file);
  const d = new Daemon({ ...opts, config: file });
  const reprog = new Reprogrammer(
    d.prog,
    { bgp: d.bgp, publishParams: (w) => d.publishParams(w), log: d.log },
    d.bgp === null,
  );
  const applyReload = (r: ReloadResult, why: string) => {
    if (r.error !== undefined) {
      d.log.error(`config reload refused (${why}); keeping the running state: ${r.error}`);
      return;
    }
    if (r.changed === 0) return;
    try {
      const cfg = loadConfigFile(file);
      d.policy.program(cfg, why); // policy: before apply() filters this node's endpoints out of cfg
      d.host?.sync(cfg); // host TAP: pool routes, defaultEndpointToHostAction
      const res = reprog.apply(cfg);
      d.log.info({ ...res, keys: r.changed, why }, 'config reloaded');
    } catch (e) {
      d.log.error(`config reload failed (${why}); keeping the running state: ${(e as Error).message}`);
    }
  };
  const unwatch = fds.watchFile((r) => applyReload(r, 'file changed'));
  const onHup = () => applyReload(fds.reload(), 'SIGHUP');
  process.on('SIGHUP', onHup);
  onSignals(async (sig) => {
    unwatch();
    process.off('SIGHUP', onHup);
    await d.stop(sig);
  });
  await d.start();
  return d;
}

async function runDatastoreDaemon(opts: LiveOptions): Promise<Daemon> {
  const log = pino({ name: 'calitap', level: process.env.CALITAP_LOG ?? 'info' }, pino.destination(2));
  const ds = await openDatastore(opts.choice);
  // like calico-node: wait for the datastore rather than give up (configuration errors still stop)
  let joined;
  for (let attempt = 0; ; attempt++) {
    try {
      joined = await joinCluster(ds, { node: opts.node, ip: opts.ip, env: process.env, log });
      break;
    } catch (e) {
      if (!isDsError(e, 'datastore-unavailable')) throw e;
      if (attempt % 10 === 0) log.warn({ err: e.message }, 'datastore unreachable; retrying every second');
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const cluster = joined.cfg;
  const fullEndpoints = cluster.endpoints; // policy: this node's endpoints carry its workloads' labels
  // this node's endpoints are re-attached from the state file by the WorkloadManager
  cluster.endpoints = cluster.endpoints.filter((e) => e.node !== opts.node);
  let sync: DatastoreSync | null = null;
  let d: Daemon | null = null;
  const wl = new DatastoreWorkloads(ds, opts.node, () => d!.prog.cfg);
  d = new Daemon({
    ...opts,
    datastore: {
      cluster,
      bgpMesh: true,
      status: () => sync?.status(),
      beforeAdd: (p) => wl.beforeAdd(p),
      afterAdd: (r, p) => wl.afterAdd(r, p),
      release: (name) => wl.release(name),
    },
  });
  const daemon = d;
  daemon.policy.program({ ...cluster, endpoints: fullEndpoints }, 'datastore listed'); // policy
  const reprog = new Reprogrammer(
    daemon.prog,
    { bgp: daemon.bgp, publishParams: (w) => daemon.publishParams(w), log: daemon.log },
    daemon.bgp === null,
  );
  let tunnels: Promise<unknown> = Promise.resolve();
  sync = new DatastoreSync(
    ds,
    joined.model,
    (cfg) => {
      daemon.policy.program(cfg, 'datastore change'); // policy: before apply() filters cfg
      daemon.host?.sync(cfg); // host TAP: pool routes, defaultEndpointToHostAction
      const res = reprog.apply(cfg);
      if (res.added + res.removed + res.replaced > 0 || res.params.length > 0)
        daemon.log.info(res, 'datastore change applied');
      // a pool switched to IPIP or VXLAN needs this node's tunnel address
      tunnels = tunnels.then(() =>
        ensureTunnelAddresses(ds, opts.node, cfg, daemon.log).catch((e: unknown) =>
          daemon.log.warn(
            { err: (e as Error).message },
            'tunnel address allocation failed; will retry on the next change',
          ),
        ),
      );
    },
    daemon.log,
  );
  onSignals(async (sig) => {
    sync?.stop();
    await daemon.stop(sig);
    await ds.close();
  });
  await daemon.start();
  sync.start(joined.revision);
  log.info({ datastore: ds.name, revision: joined.revision }, 'following the datastore');
  return daemon;
}
