// The resources a calitap node writes when it joins a cluster, built the way calico-node and
// Calico's CNI plugin build them (field values and names), so calicoctl shows them as it would show
// Calico's own: the default IPv4 pool from CALICO_IPV4POOL_* settings, the Node, ClusterInformation,
// FelixConfiguration and BGPConfiguration `default`, and WorkloadEndpoints with Calico's name scheme
// and labels. Pure builders; control thread.
import { ConfigError } from '../../common/errors.js';
import { parsePrefix4, formatPrefix4 } from '../../common/addr.js';
import { API_VERSION, type V3Object } from './resources.js';
import type { JsonObject } from './json.js';

export const DEFAULT_POOL_NAME = 'default-ipv4-ippool';
export const DEFAULT_POOL_CIDR = '192.168.0.0/16';
export const ORCHESTRATOR = 'calitap';

function obj(kind: string, name: string, spec: JsonObject, extraMeta: JsonObject = {}): V3Object {
  return { kind, apiVersion: API_VERSION, metadata: { name, ...extraMeta }, spec };
}

function modeEnv(name: string, v: string | undefined): 'Always' | 'CrossSubnet' | 'Never' {
  if (v === undefined || v === '') return 'Never';
  const m = { always: 'Always', crosssubnet: 'CrossSubnet', never: 'Never', off: 'Never' } as const;
  const r = m[v.toLowerCase() as keyof typeof m];
  if (r === undefined)
    throw new ConfigError(`environment: ${name} ${v}: must be Always, CrossSubnet or Never`);
  return r;
}

/**
 * calico-node's default pool (startup.go configureIPPools): CALICO_IPV4POOL_CIDR (default
 * 192.168.0.0/16), CALICO_IPV4POOL_IPIP / _VXLAN (default: IPIP Always when neither is set, as
 * calico-node does), CALICO_IPV4POOL_BLOCK_SIZE (26), CALICO_IPV4POOL_NAT_OUTGOING (true).
 */
export function defaultPool(env: NodeJS.ProcessEnv): V3Object {
  const cidrText = env.CALICO_IPV4POOL_CIDR || DEFAULT_POOL_CIDR;
  const p = parsePrefix4(cidrText, false);
  if (p === null) throw new ConfigError(`environment: CALICO_IPV4POOL_CIDR ${cidrText}: not an IPv4 CIDR`);
  let ipip = modeEnv('CALICO_IPV4POOL_IPIP', env.CALICO_IPV4POOL_IPIP);
  const vxlan = modeEnv('CALICO_IPV4POOL_VXLAN', env.CALICO_IPV4POOL_VXLAN);
  if (env.CALICO_IPV4POOL_IPIP === undefined && vxlan === 'Never') ipip = 'Always';
  if (ipip !== 'Never' && vxlan !== 'Never')
    throw new ConfigError(
      `environment: CALICO_IPV4POOL_VXLAN ${vxlan}: cannot be enabled together with CALICO_IPV4POOL_IPIP ${ipip}`,
    );
  const bs = env.CALICO_IPV4POOL_BLOCK_SIZE ? Number(env.CALICO_IPV4POOL_BLOCK_SIZE) : 26;
  if (!Number.isInteger(bs) || bs < 20 || bs > 32)
    throw new ConfigError(
      `environment: CALICO_IPV4POOL_BLOCK_SIZE ${env.CALICO_IPV4POOL_BLOCK_SIZE}: must be 20..32`,
    );
  const nat = (env.CALICO_IPV4POOL_NAT_OUTGOING ?? 'true').toLowerCase() !== 'false';
  const spec: JsonObject = {
    cidr: formatPrefix4({ addr: (p.addr & p.addr) >>> 0, len: p.len }),
    vxlanMode: vxlan,
    ipipMode: ipip,
  };
  if (nat) spec.natOutgoing = true;
  spec.blockSize = bs;
  spec.nodeSelector = 'all()';
  spec.allowedUses = ['Workload', 'Tunnel'];
  return obj('IPPool', DEFAULT_POOL_NAME, spec);
}

export function clusterInformation(guid: string): V3Object {
  return obj('ClusterInformation', 'default', {
    clusterGUID: guid,
    clusterType: ORCHESTRATOR,
    calicoVersion: ORCHESTRATOR,
    datastoreReady: true,
  });
}

export function felixDefault(): V3Object {
  return obj('FelixConfiguration', 'default', { logSeverityScreen: 'Info', reportingInterval: '0s' });
}

export function bgpDefault(): V3Object {
  return obj('BGPConfiguration', 'default', {
    logSeverityScreen: 'Info',
    nodeToNodeMeshEnabled: true,
    asNumber: 64512,
  });
}

/** Calico's WorkloadEndpoint name: node, orchestrator, workload, endpoint with "-" doubled, joined by "-". */
export function wepName(node: string, orchestrator: string, workload: string, endpoint: string): string {
  return [node, orchestrator, workload, endpoint].map((s) => s.replace(/-/g, '--')).join('-');
}

export interface WepInput {
  node: string;
  namespace: string;
  workload: string;
  ip: string;
  mac: string;
  interfaceName: string;
  labels?: Record<string, string>;
}

export function workloadEndpoint(w: WepInput): V3Object {
  const labels: JsonObject = {};
  for (const [k, v] of Object.entries(w.labels ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) labels[k] = v;
  labels['projectcalico.org/namespace'] = w.namespace;
  labels['projectcalico.org/orchestrator'] = ORCHESTRATOR;
  const sorted: JsonObject = {};
  for (const k of Object.keys(labels).sort()) sorted[k] = labels[k];
  return obj(
    'WorkloadEndpoint',
    wepName(w.node, ORCHESTRATOR, w.workload, 'eth0'),
    {
      orchestrator: ORCHESTRATOR,
      workload: w.workload,
      node: w.node,
      endpoint: 'eth0',
      ipNetworks: [`${w.ip}/32`],
      interfaceName: w.interfaceName,
      mac: w.mac,
    },
    { namespace: w.namespace, labels: sorted },
  );
}
