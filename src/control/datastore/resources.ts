// Calico v3 resources as Calico's etcdv3 backend stores them: the object as JSON (`kind`,
// `apiVersion`, `metadata{name, namespace, uid, creationTimestamp, labels, ...}`, `spec`, and for Node
// a `status`), fields in Go's struct order (libcalico-go / projectcalico/api v3 types), with
// `metadata.resourceVersion` never stored: it is reported as the key's mod_revision. create is a CAS
// on version 0, replace/update and delete are CAS on the resourceVersion given (or the current one),
// apply is create-or-update keeping uid and creationTimestamp. Control thread only.
import { randomUUID } from 'node:crypto';
import { DatastoreError } from '../../common/errors.js';
import { GoMap, isObject, ordered, parseJson, stringifyGo, type Json, type JsonObject } from './json.js';
import {
  kindInfo,
  parseResourceKey,
  resourceKey,
  resourcePrefix,
  uplinkKey,
  UPLINKS_PREFIX,
} from './layout.js';
import { isDsError, type Datastore, type KV } from './types.js';

export const API_VERSION = 'projectcalico.org/v3';
export const CALITAP_API = 'calitap/v1';

/** Go field order of the types we write (projectcalico/api v3, libcalico-go internal v3 Node/WEP). */
const TOP = ['kind', 'apiVersion', 'metadata', 'spec', 'status'];
const META = [
  'name',
  'generateName',
  'namespace',
  'selfLink',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'labels',
  'annotations',
  'ownerReferences',
  'finalizers',
  'managedFields',
];
const SPEC: Record<string, readonly string[]> = {
  IPPool: [
    'cidr',
    'vxlanMode',
    'ipipMode',
    'natOutgoing',
    'disabled',
    'disableBGPExport',
    'blockSize',
    'nodeSelector',
    'namespaceSelector',
    'allowedUses',
    'assignmentMode',
  ],
  Node: [
    'bgp',
    'ipv4VXLANTunnelAddr',
    'vxlanTunnelMACAddr',
    'ipv6VXLANTunnelAddr',
    'vxlanTunnelMACAddrV6',
    'orchRefs',
    'wireguard',
    'addresses',
  ],
  WorkloadEndpoint: [
    'orchestrator',
    'workload',
    'node',
    'containerID',
    'pod',
    'endpoint',
    'serviceAccountName',
    'ipNetworks',
    'ipNATs',
    'ipv4Gateway',
    'ipv6Gateway',
    'profiles',
    'interfaceName',
    'mac',
    'ports',
    'allowSpoofedSourcePrefixes',
  ],
  ClusterInformation: ['clusterGUID', 'clusterType', 'calicoVersion', 'datastoreReady', 'variant'],
  BGPConfiguration: [
    'logSeverityScreen',
    'nodeToNodeMeshEnabled',
    'asNumber',
    'serviceLoadBalancerIPs',
    'serviceExternalIPs',
    'serviceClusterIPs',
    'communities',
    'prefixAdvertisements',
    'listenPort',
    'nodeMeshPassword',
    'nodeMeshMaxRestartTime',
    'bindMode',
    'ignoredInterfaces',
  ],
  BGPPeer: ['node', 'peerIP', 'asNumber', 'nodeSelector', 'peerSelector', 'keepOriginalNextHop', 'password'],
  BlockAffinity: ['state', 'node', 'cidr', 'deleted'],
};
const NODE_BGP = ['asNumber', 'ipv4Address', 'ipv6Address', 'ipv4IPIPTunnelAddr', 'routeReflectorClusterID'];

/** A v3 object with metadata.resourceVersion filled from the key's mod_revision. */
export interface V3Object extends JsonObject {
  kind: string;
  apiVersion: string;
  metadata: JsonObject & { name: string; namespace?: string; resourceVersion?: string };
}

export interface ResourceClock {
  now(): Date;
  uid(): string;
}

export const REAL_CLOCK: ResourceClock = { now: () => new Date(), uid: () => randomUUID() };

/** metav1.Time: RFC 3339 in UTC with second precision. */
export function goTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The key an object is stored at. */
export function keyOf(obj: V3Object): string {
  if (obj.apiVersion === CALITAP_API && obj.kind === 'Uplink') return uplinkKey(obj.metadata.name);
  return resourceKey(obj.kind, obj.metadata.name, obj.metadata.namespace);
}

/** The stored text of an object: Go field order, no resourceVersion. */
export function encodeResource(obj: V3Object): string {
  const meta: JsonObject = { ...obj.metadata };
  delete meta.resourceVersion;
  if (!kindInfo(obj.kind)?.namespaced) delete meta.namespace;
  // Go maps: keys sorted
  for (const m of ['labels', 'annotations'])
    if (isObject(meta[m])) meta[m] = new GoMap(Object.entries(meta[m] as JsonObject) as [string, Json][]);
  const out: JsonObject = { ...obj, metadata: ordered(meta, META) };
  const order = SPEC[obj.kind];
  if (isObject(out.spec) && order) {
    const spec = ordered(out.spec, order);
    if (obj.kind === 'Node' && isObject(spec.bgp)) spec.bgp = ordered(spec.bgp, NODE_BGP);
    out.spec = spec;
  }
  // Go always writes a Node's (struct, not pointer) status
  if (obj.kind === 'Node' && out.status === undefined) out.status = {};
  return stringifyGo(ordered(out, TOP));
}

/** Parses a stored value; throws CalitapError `ds-bad-data` naming the key. */
export function decodeResource(kv: KV): V3Object {
  let v: Json;
  try {
    v = parseJson(kv.value);
  } catch (e) {
    throw new DatastoreError('datastore-invalid', `${kv.key}: value is not JSON: ${(e as Error).message}`);
  }
  if (!isObject(v) || !isObject(v.metadata) || typeof v.kind !== 'string')
    throw new DatastoreError('datastore-invalid', `${kv.key}: value is not a v3 resource (kind, metadata)`);
  const id = parseResourceKey(kv.key);
  const meta = { ...v.metadata } as V3Object['metadata'];
  // the key names the resource, whatever the value says
  if (id) {
    meta.name = id.name;
    if (id.namespace !== undefined) meta.namespace = id.namespace;
  } else if (kv.key.startsWith(UPLINKS_PREFIX)) meta.name = kv.key.slice(UPLINKS_PREFIX.length);
  if (typeof meta.name !== 'string')
    throw new DatastoreError('datastore-invalid', `${kv.key}: value has no metadata.name`);
  meta.resourceVersion = String(kv.modRevision);
  return {
    ...v,
    kind: v.kind,
    apiVersion: String(v.apiVersion ?? API_VERSION),
    metadata: ordered(meta, META) as V3Object['metadata'],
  };
}

function describe(obj: V3Object): string {
  const ns = obj.metadata.namespace;
  return `${obj.kind} ${ns !== undefined && kindInfo(obj.kind)?.namespaced ? ns + '/' : ''}${obj.metadata.name}`;
}

/** Resource CRUD over a Datastore, as calicoctl does it (create / replace / apply / delete / get / list). */
export class ResourceClient {
  constructor(
    readonly ds: Datastore,
    private readonly clock: ResourceClock = REAL_CLOCK,
  ) {}

  private stamp(obj: V3Object, prev?: V3Object): V3Object {
    const meta = { ...obj.metadata };
    meta.uid = typeof prev?.metadata.uid === 'string' ? prev.metadata.uid : (meta.uid ?? this.clock.uid());
    meta.creationTimestamp =
      typeof prev?.metadata.creationTimestamp === 'string'
        ? prev.metadata.creationTimestamp
        : (meta.creationTimestamp ?? goTime(this.clock.now()));
    if (kindInfo(obj.kind)?.namespaced && meta.namespace === undefined) meta.namespace = 'default';
    return { ...obj, metadata: meta };
  }

  async get(kind: string, name: string, namespace?: string): Promise<V3Object | undefined> {
    const key = kind === 'Uplink' ? uplinkKey(name) : resourceKey(kind, name, namespace);
    const kv = await this.ds.get(key);
    return kv === undefined ? undefined : decodeResource(kv);
  }

  /** Every object of a kind (all namespaces unless one is given); bad values are skipped and returned. */
  async list(
    kind: string,
    namespace?: string,
  ): Promise<{ items: V3Object[]; bad: string[]; revision: number }> {
    const prefix = kind === 'Uplink' ? UPLINKS_PREFIX : resourcePrefix(kind, namespace);
    const { kvs, revision } = await this.ds.list(prefix);
    const items: V3Object[] = [];
    const bad: string[] = [];
    for (const kv of kvs) {
      if (kind !== 'Uplink' && parseResourceKey(kv.key)?.kind !== kind) continue;
      try {
        items.push(decodeResource(kv));
      } catch (e) {
        bad.push((e as Error).message);
      }
    }
    return { items, bad, revision };
  }

  /** Creates; `already-exists` when it does. */
  async create(obj: V3Object): Promise<V3Object> {
    const o = this.stamp(obj);
    try {
      const kv = await this.ds.create(keyOf(o), encodeResource(o));
      return decodeResource(kv);
    } catch (e) {
      if (isDsError(e, 'datastore-exists'))
        throw new DatastoreError('datastore-exists', `${describe(o)}: already exists`);
      throw e;
    }
  }

  /** Replaces an existing object (CAS on metadata.resourceVersion when given, else on the current). */
  async replace(obj: V3Object): Promise<V3Object> {
    const key = keyOf(obj);
    const cur = await this.ds.get(key);
    if (cur === undefined)
      throw new DatastoreError('datastore-not-found', `${describe(obj)}: does not exist`);
    const prev = decodeResource(cur);
    const rv = obj.metadata.resourceVersion;
    const rev = rv !== undefined && rv !== '' ? Number(rv) : cur.modRevision;
    if (!Number.isInteger(rev))
      throw new DatastoreError(
        'datastore-invalid',
        `${describe(obj)}: metadata.resourceVersion ${rv}: not a revision`,
      );
    const o = this.stamp(obj, prev);
    try {
      return decodeResource(await this.ds.update(key, encodeResource(o), rev));
    } catch (e) {
      if (isDsError(e, 'datastore-conflict'))
        throw new DatastoreError(
          'datastore-conflict',
          `${describe(o)}: metadata.resourceVersion ${rev}: the resource changed (now ${prev.metadata.resourceVersion}); get it again`,
        );
      if (isDsError(e, 'datastore-not-found'))
        throw new DatastoreError('datastore-not-found', `${describe(o)}: does not exist`);
      throw e;
    }
  }

  /**
   * Creates or updates (retrying a bounded number of times when someone else writes meanwhile). Like
   * calicoctl's apply, a create is tried first (one round trip for a new object, e.g. a workload's
   * endpoint); when the object exists it is read and updated with CAS.
   */
  async apply(obj: V3Object): Promise<V3Object> {
    const key = keyOf(obj);
    try {
      return decodeResource(await this.ds.create(key, encodeResource(this.stamp(obj))));
    } catch (e) {
      if (!isDsError(e, 'datastore-exists')) throw e;
    }
    for (let attempt = 0; attempt < 10; attempt++) {
      const cur = await this.ds.get(key);
      try {
        if (cur === undefined) {
          const o = this.stamp(obj);
          return decodeResource(await this.ds.create(key, encodeResource(o)));
        }
        const o = this.stamp(obj, decodeResource(cur));
        return decodeResource(await this.ds.update(key, encodeResource(o), cur.modRevision));
      } catch (e) {
        if (!isDsError(e, 'datastore-exists', 'datastore-conflict', 'datastore-not-found')) throw e;
      }
    }
    throw new DatastoreError(
      'datastore-conflict',
      `${describe(obj)}: kept changing while being applied; try again`,
    );
  }

  /** Deletes (CAS on resourceVersion when given); `not-found` when absent. Returns what was deleted. */
  async delete(kind: string, name: string, namespace?: string, resourceVersion?: string): Promise<V3Object> {
    const key = kind === 'Uplink' ? uplinkKey(name) : resourceKey(kind, name, namespace);
    const what = `${kind} ${namespace !== undefined && kindInfo(kind)?.namespaced ? namespace + '/' : ''}${name}`;
    const cur = await this.ds.get(key);
    if (cur === undefined) throw new DatastoreError('datastore-not-found', `${what}: does not exist`);
    const rev =
      resourceVersion !== undefined && resourceVersion !== '' ? Number(resourceVersion) : cur.modRevision;
    try {
      await this.ds.delete(key, rev);
    } catch (e) {
      if (isDsError(e, 'datastore-not-found'))
        throw new DatastoreError('datastore-not-found', `${what}: does not exist`);
      if (isDsError(e, 'datastore-conflict'))
        throw new DatastoreError(
          'datastore-conflict',
          `${what}: metadata.resourceVersion ${rev}: the resource changed`,
        );
      throw e;
    }
    return decodeResource(cur);
  }
}
