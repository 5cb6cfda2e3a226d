// A calitap node's life in a datastore (etcd v3 in Calico's layout), as calico-node's start-up and
// Felix's syncer do it:
//  - joinCluster: ensure ClusterInformation / FelixConfiguration / BGPConfiguration `default` and the
//    IPAM config; create `default-ipv4-ippool` from CALICO_IPV4POOL_* when no IPv4 pool exists;
//    register (create or update) this Node with spec.bgp.ipv4Address from --ip / IP or autodetection;
//    allocate the IPIP / VXLAN tunnel addresses a pool needs (handles ipip-tunnel-addr-<node>,
//    vxlan-tunnel-addr-<node>); return the listed state.
//  - DatastoreSync: list + watch from revision+1 over /calico/ (v3 kinds, blocks, affinities) and
//    /calitap/; every change rebuilds the ClusterConfig (ClusterModel, one parse per changed key) and
//    hands it on, coalesced. Watch errors and compaction: re-list and apply the difference. While the
//    datastore is unreachable nothing is torn down; status says it is down and a re-list catches up.
// Control thread only.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { CalitapError, DatastoreError as DsError } from '../../common/errors.js';
import { vtepMacForNode } from '../config/load.js';
import type { ClusterConfig } from '../config/types.js';
import { bgpDefault, clusterInformation, defaultPool, felixDefault } from '../datastore/defaults.js';
import { ClusterModel } from '../datastore/model.js';
import { IPAM_CONFIG_KEY } from '../datastore/layout.js';
import { ResourceClient, type V3Object } from '../datastore/resources.js';
import {
  isDsError,
  type Datastore,
  type DatastoreError,
  type KV,
  type WatchHandle,
} from '../datastore/types.js';
import { DEFAULT_IPAM_CONFIG, encodeIpamConfig } from '../datastore/ipam-records.js';
import { CasIpam } from '../ipam/cas.js';
import { formatIp4 } from '../../common/addr.js';
import { detectNodeIp } from './node-ip.js';

/** Everything calitap reads lives under these (one prefix covers /calico/ and /calitap/). */
export const WATCH_PREFIX = '/cali';

export interface JoinOptions {
  node: string;
  /** --ip / IP: "a.b.c.d[/len]" or "autodetect" */
  ip?: string;
  env: NodeJS.ProcessEnv;
  log: Logger;
}

export interface Joined {
  kvs: KV[];
  revision: number;
  model: ClusterModel;
  cfg: ClusterConfig;
}

async function ensure(rc: ResourceClient, obj: V3Object): Promise<boolean> {
  try {
    await rc.create(obj);
    return true;
  } catch (e) {
    if (e instanceof CalitapError && e.code === 'datastore-exists') return false;
    throw e;
  }
}

/** Read-modify-write of this Node with CAS, retried when someone else wrote it meanwhile. */
export async function updateNode(
  rc: ResourceClient,
  name: string,
  mutate: (spec: Record<string, unknown>) => boolean,
): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const cur = await rc.get('Node', name);
    const obj: V3Object = cur ?? {
      kind: 'Node',
      apiVersion: 'projectcalico.org/v3',
      metadata: { name },
      spec: {},
    };
    const spec = structuredClone((obj.spec ?? {}) as Record<string, unknown>);
    if (!mutate(spec) && cur !== undefined) return;
    const next = { ...obj, spec: spec as V3Object['spec'] };
    try {
      if (cur === undefined) await rc.create(next);
      else await rc.replace(next);
      return;
    } catch (e) {
      if (
        !(e instanceof CalitapError) ||
        !['datastore-conflict', 'datastore-exists', 'datastore-not-found'].includes(e.code)
      )
        throw e;
    }
  }
  throw new DsError('datastore-conflict', `Node ${name}: kept changing while being registered`);
}

/** Allocates the tunnel addresses this node's pools need and records them on the Node. */
export async function ensureTunnelAddresses(
  ds: Datastore,
  node: string,
  cfg: ClusterConfig,
  log: Logger,
): Promise<boolean> {
  const me = cfg.nodes.get(node);
  const enabled = cfg.pools.filter((p) => !p.disabled);
  const ipipPools = enabled.filter((p) => p.ipipMode !== 'Never');
  const vxlanPools = enabled.filter((p) => p.vxlanMode !== 'Never');
  const rc = new ResourceClient(ds);
  const ipam = new CasIpam(ds);
  let changed = false;
  const want = async (kind: 'ipip' | 'vxlan', pools: typeof enabled): Promise<string | undefined> => {
    const handle = `${kind}-tunnel-addr-${node}`;
    await ipam.releaseHandle(handle); // a half-finished earlier attempt
    const [ip] = await ipam.assign({
      handle,
      host: node,
      attrs: { node, type: kind === 'ipip' ? 'ipipTunnelAddress' : 'vxlanTunnelAddress' },
      pools,
    });
    log.info({ handle, ip: formatIp4(ip) }, `${kind} tunnel address allocated`);
    return formatIp4(ip);
  };
  if (ipipPools.length > 0 && me?.ipipTunnelAddr === undefined) {
    const ip = await want('ipip', ipipPools);
    await updateNode(rc, node, (spec) => {
      const bgp = (spec.bgp ?? {}) as Record<string, unknown>;
      bgp.ipv4IPIPTunnelAddr = ip;
      spec.bgp = bgp;
      return true;
    });
    changed = true;
  }
  if (vxlanPools.length > 0 && me?.vxlanTunnelAddr === undefined) {
    const ip = await want('vxlan', vxlanPools);
    await updateNode(rc, node, (spec) => {
      spec.ipv4VXLANTunnelAddr = ip;
      if (spec.vxlanTunnelMACAddr === undefined) spec.vxlanTunnelMACAddr = vtepMacForNode(node);
      return true;
    });
    changed = true;
  }
  return changed;
}

export async function listAll(ds: Datastore, model: ClusterModel): Promise<{ kvs: KV[]; revision: number }> {
  const { kvs, revision } = await ds.list(WATCH_PREFIX);
  model.reset(kvs);
  return { kvs, revision };
}

export async function joinCluster(ds: Datastore, o: JoinOptions): Promise<Joined> {
  const rc = new ResourceClient(ds);
  const log = o.log;
  if (await ensure(rc, clusterInformation(randomBytes(16).toString('hex'))))
    log.info('created ClusterInformation default');
  if (await ensure(rc, felixDefault())) log.info('created FelixConfiguration default');
  if (await ensure(rc, bgpDefault())) log.info('created BGPConfiguration default');
  await ds.create(IPAM_CONFIG_KEY, encodeIpamConfig(DEFAULT_IPAM_CONFIG)).catch((e: unknown) => {
    if (!isDsError(e, 'datastore-exists')) throw e;
  });
  const pools = (await rc.list('IPPool')).items.filter(
    (p) => !String((p.spec as { cidr?: unknown })?.cidr ?? '').includes(':'),
  );
  if (pools.length === 0 && (await ensure(rc, defaultPool(o.env))))
    log.info({ cidr: o.env.CALICO_IPV4POOL_CIDR ?? '192.168.0.0/16' }, 'created IPPool default-ipv4-ippool');
  const cidr = detectNodeIp(o.ip ?? o.env.IP, o.env.IP_AUTODETECTION_METHOD);
  await updateNode(rc, o.node, (spec) => {
    const bgp = (spec.bgp ?? {}) as Record<string, unknown>;
    if (bgp.ipv4Address === cidr) return false;
    bgp.ipv4Address = cidr;
    spec.bgp = bgp;
    return true;
  });
  log.info({ node: o.node, ipv4Address: cidr }, 'node registered');
  const model = new ClusterModel(ds.name, (b) =>
    log.warn({ key: b.key }, `bad datastore value skipped: ${b.reason}`),
  );
  await listAll(ds, model);
  await ensureTunnelAddresses(ds, o.node, model.build(), log);
  // the state after this node's own writes (one list, not one more per change)
  const { kvs, revision } = await listAll(ds, model);
  return { kvs, revision, model, cfg: model.build() };
}

export interface SyncStatus {
  type: string;
  name: string;
  connected: boolean;
  revision: number;
  lastError?: string;
  badValues: number;
}

/** Keeps a ClusterModel in step with the datastore and reports each new ClusterConfig. */
export class DatastoreSync {
  private watch: WatchHandle | null = null;
  private connected = true;
  private revision = 0;
  private lastError: string | undefined;
  private pending: NodeJS.Timeout | null = null;
  private relisting: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly ds: Datastore,
    private readonly model: ClusterModel,
    private readonly onChange: (cfg: ClusterConfig) => void,
    private readonly log: Logger,
    /** coalescing delay between a change and the rebuild */
    private readonly delayMs = 20,
  ) {}

  start(revision: number): void {
    this.revision = revision;
    this.watchFrom(revision + 1);
  }

  status(): SyncStatus {
    return {
      type: this.ds.type,
      name: this.ds.name,
      connected: this.connected,
      revision: this.revision,
      lastError: this.lastError,
      badValues: this.model.badCount,
    };
  }

  private watchFrom(rev: number): void {
    this.watch = this.ds.watch(WATCH_PREFIX, rev, {
      onEvents: (events, revision) => {
        this.revision = Math.max(this.revision, revision);
        if (this.model.apply(events) > 0) this.schedule();
      },
      onError: (e: DatastoreError) => this.lost(e),
    });
  }

  private lost(e: DatastoreError): void {
    this.watch?.close();
    this.watch = null;
    if (this.stopped) return;
    if (this.connected || this.lastError !== e.message)
      this.log.warn({ err: e.message, code: e.code }, 'datastore watch lost: forwarding goes on; re-listing');
    this.connected = e.code === 'datastore-compacted';
    this.lastError = e.message;
    this.relistSoon(e.code === 'datastore-compacted' ? 0 : 500);
  }

  private relistSoon(ms: number): void {
    if (this.relisting !== null || this.stopped) return;
    this.relisting = setTimeout(() => {
      this.relisting = null;
      void this.relist();
    }, ms);
  }

  private async relist(): Promise<void> {
    try {
      const { revision } = await listAll(this.ds, this.model);
      if (this.stopped) return;
      if (!this.connected) this.log.info({ revision }, 'datastore reachable again: state re-listed');
      this.connected = true;
      this.lastError = undefined;
      this.revision = revision;
      this.emit();
      this.watchFrom(revision + 1);
    } catch (e) {
      this.connected = false;
      this.lastError = e instanceof Error ? e.message : String(e);
      this.relistSoon(1000);
    }
  }

  private schedule(): void {
    if (this.pending !== null) return;
    this.pending = setTimeout(() => {
      this.pending = null;
      this.emit();
    }, this.delayMs);
  }

  private emit(): void {
    try {
      this.onChange(this.model.build());
    } catch (e) {
      this.log.error(
        { err: (e as Error).message },
        'applying the datastore state failed; keeping the dataplane',
      );
    }
  }

  stop(): void {
    this.stopped = true;
    this.watch?.close();
    if (this.pending !== null) clearTimeout(this.pending);
    if (this.relisting !== null) clearTimeout(this.relisting);
  }
}
