// Calico's etcdv3 key layout (libcalico-go lib/backend/model: resource.go, block.go,
// block_affinity.go, ipam_handle.go, ipam_config.go), so the same etcd can be read by calicoctl:
//   /calico/resources/v3/projectcalico.org/<plural>/<name>               cluster-scoped kinds
//   /calico/resources/v3/projectcalico.org/<plural>/<namespace>/<name>   namespaced kinds
//   /calico/ipam/v2/assignment/ipv4/block/<a.b.c.d-len>                  AllocationBlock
//   /calico/ipam/v2/host/<node>/ipv4/block/<a.b.c.d-len>                 BlockAffinity {state, deleted}
//   /calico/ipam/v2/handle/<handle id>                                   IPAMHandle {block, deleted}
//   /calico/ipam/v2/config                                               IPAMConfig
// plus calitap's own kind, Uplink, at /calitap/v1/uplinks/<node> (calicoctl never looks there).
// Pure string functions; any thread.
import { formatPrefix4, parsePrefix4, type Prefix4 } from '../../common/addr.js';

export const RESOURCES_PREFIX = '/calico/resources/v3/projectcalico.org/';
export const IPAM_PREFIX = '/calico/ipam/v2/';
export const BLOCKS_PREFIX = '/calico/ipam/v2/assignment/ipv4/block/';
export const AFFINITY_PREFIX = '/calico/ipam/v2/host/';
export const HANDLES_PREFIX = '/calico/ipam/v2/handle/';
export const IPAM_CONFIG_KEY = '/calico/ipam/v2/config';
export const CALITAP_PREFIX = '/calitap/v1/';
export const UPLINKS_PREFIX = '/calitap/v1/uplinks/';

export interface KindInfo {
  kind: string;
  plural: string;
  namespaced: boolean;
  /** calicoctl's short names for `get` */
  aliases: string[];
}

/** The v3 kinds calitap stores, with calicoctl's plural (the key segment) and names. */
export const KINDS: readonly KindInfo[] = [
  { kind: 'IPPool', plural: 'ippools', namespaced: false, aliases: ['ippool', 'ipp', 'pool', 'pools'] },
  { kind: 'Node', plural: 'nodes', namespaced: false, aliases: ['node', 'no'] },
  {
    kind: 'FelixConfiguration',
    plural: 'felixconfigurations',
    namespaced: false,
    aliases: ['felixconfiguration', 'felixconfig', 'felixconfigs'],
  },
  {
    kind: 'BGPConfiguration',
    plural: 'bgpconfigurations',
    namespaced: false,
    aliases: ['bgpconfiguration', 'bgpconfig', 'bgpconfigs'],
  },
  { kind: 'BGPPeer', plural: 'bgppeers', namespaced: false, aliases: ['bgppeer', 'bgpp'] },
  {
    kind: 'ClusterInformation',
    plural: 'clusterinformations',
    namespaced: false,
    aliases: ['clusterinformation', 'clusterinfo', 'clusterinfos'],
  },
  {
    kind: 'WorkloadEndpoint',
    plural: 'workloadendpoints',
    namespaced: true,
    aliases: ['workloadendpoint', 'wep', 'weps'],
  },
  {
    kind: 'NetworkPolicy',
    plural: 'networkpolicies',
    namespaced: true,
    aliases: ['networkpolicy', 'netpol'],
  },
  {
    kind: 'GlobalNetworkPolicy',
    plural: 'globalnetworkpolicies',
    namespaced: false,
    aliases: ['globalnetworkpolicy', 'gnp'],
  },
  { kind: 'Profile', plural: 'profiles', namespaced: false, aliases: ['profile', 'pro'] },
  { kind: 'Tier', plural: 'tiers', namespaced: false, aliases: ['tier'] },
  // stored by the v3 API the same way (used when a file or apply carries affinities by hand)
  {
    kind: 'BlockAffinity',
    plural: 'blockaffinities',
    namespaced: false,
    aliases: ['blockaffinity', 'affinity', 'affinities'],
  },
];

const byKind = new Map(KINDS.map((k) => [k.kind, k]));
const byPlural = new Map(KINDS.map((k) => [k.plural, k]));

export function kindInfo(kind: string): KindInfo | undefined {
  return byKind.get(kind);
}

/** `get` argument → kind: plural, singular, short name or Kind, case-insensitive. */
export function kindFromArg(arg: string): KindInfo | undefined {
  const a = arg.toLowerCase();
  return KINDS.find((k) => k.kind.toLowerCase() === a || k.plural === a || k.aliases.includes(a));
}

export function resourceKey(kind: string, name: string, namespace?: string): string {
  const k = byKind.get(kind);
  if (k === undefined) throw new Error(`no datastore layout for kind ${kind}`);
  return k.namespaced
    ? `${RESOURCES_PREFIX}${k.plural}/${namespace ?? 'default'}/${name}`
    : `${RESOURCES_PREFIX}${k.plural}/${name}`;
}

export function resourcePrefix(kind: string, namespace?: string): string {
  const k = byKind.get(kind);
  if (k === undefined) throw new Error(`no datastore layout for kind ${kind}`);
  return `${RESOURCES_PREFIX}${k.plural}/${k.namespaced && namespace !== undefined ? namespace + '/' : ''}`;
}

export interface ResourceId {
  kind: string;
  name: string;
  namespace?: string;
}

export function parseResourceKey(key: string): ResourceId | undefined {
  if (!key.startsWith(RESOURCES_PREFIX)) return undefined;
  const parts = key.slice(RESOURCES_PREFIX.length).split('/');
  const k = byPlural.get(parts[0]);
  if (k === undefined) return undefined;
  if (k.namespaced && parts.length === 3 && parts[1] !== '' && parts[2] !== '')
    return { kind: k.kind, namespace: parts[1], name: parts[2] };
  if (!k.namespaced && parts.length === 2 && parts[1] !== '') return { kind: k.kind, name: parts[1] };
  return undefined;
}

/** "10.65.0.0/26" → "10.65.0.0-26" (Calico replaces the first "/"). */
export function cidrSegment(cidr: Prefix4): string {
  return formatPrefix4(cidr).replace('/', '-');
}

function segmentCidr(seg: string): Prefix4 | undefined {
  const p = parsePrefix4(seg.replace('-', '/'), true);
  return p === null ? undefined : { addr: p.addr, len: p.len };
}

export function blockKey(cidr: Prefix4): string {
  return BLOCKS_PREFIX + cidrSegment(cidr);
}

export function parseBlockKey(key: string): Prefix4 | undefined {
  if (!key.startsWith(BLOCKS_PREFIX)) return undefined;
  const seg = key.slice(BLOCKS_PREFIX.length);
  return seg.includes('/') ? undefined : segmentCidr(seg);
}

export function affinityKey(host: string, cidr: Prefix4): string {
  return `${AFFINITY_PREFIX}${host}/ipv4/block/${cidrSegment(cidr)}`;
}

export function hostAffinityPrefix(host: string): string {
  return `${AFFINITY_PREFIX}${host}/ipv4/block/`;
}

export function parseAffinityKey(key: string): { host: string; cidr: Prefix4 } | undefined {
  const m = /^\/calico\/ipam\/v2\/host\/([^/]+)\/ipv4\/block\/([^/]+)$/.exec(key);
  if (!m) return undefined;
  const cidr = segmentCidr(m[2]);
  return cidr === undefined ? undefined : { host: m[1], cidr };
}

export function handleKey(id: string): string {
  return HANDLES_PREFIX + id;
}

export function parseHandleKey(key: string): string | undefined {
  if (!key.startsWith(HANDLES_PREFIX)) return undefined;
  const id = key.slice(HANDLES_PREFIX.length);
  return id === '' || id.includes('/') ? undefined : id;
}

export function uplinkKey(node: string): string {
  return UPLINKS_PREFIX + node;
}
