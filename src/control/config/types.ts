// The typed cluster model that config loading produces and route compilation consumes.
// Flow: YAML text → load.ts (parse + validate) → ClusterConfig (this file) → compile.ts → RouteSpec[].
// Plain immutable-by-convention records built once on the main (control) thread; the dataplane never
// sees these objects, only the FIB compiled from them. IPv4 addresses are unsigned 32-bit numbers,
// prefixes are `Prefix4` (host bits clear), MACs are canonical lower-case `aa:bb:cc:dd:ee:ff` strings.
import type { Prefix4 } from '../../common/addr.js';
import type { EndpointPort, PolicyConfig } from '../policy/types.js';

/** Calico's `ipipMode` / `vxlanMode` values (exact case, as Calico's validator requires). */
export type EncapMode = 'Always' | 'CrossSubnet' | 'Never';

export interface IPPool {
  name: string;
  cidr: Prefix4;
  /** IPAM block prefix length; Calico default 26, valid 20..32 for IPv4. */
  blockSize: number;
  ipipMode: EncapMode;
  vxlanMode: EncapMode;
  natOutgoing: boolean;
  /** Stops new IPAM allocations only; existing blocks keep routing and NAT exclusion (as in Felix). */
  disabled: boolean;
  disableBGPExport: boolean;
}

export interface CalicoNode {
  name: string;
  /** spec.bgp.ipv4Address, e.g. "10.0.0.1/24": `ip` is the node address, `len` its subnet length. */
  bgpAddress?: { ip: number; len: number };
  /** spec.bgp.ipv4IPIPTunnelAddr */
  ipipTunnelAddr?: number;
  /** spec.bgp.asNumber (overrides BGPConfiguration's asNumber for this node) */
  asNumber?: number;
  /** spec.bgp.routeReflectorClusterID (dotted-quad form, stored as a number) */
  routeReflectorClusterID?: number;
  /** spec.ipv4VXLANTunnelAddr */
  vxlanTunnelAddr?: number;
  /** spec.vxlanTunnelMACAddr, else Felix's derivation (see vtepMacForNode in load.ts). */
  vxlanTunnelMac: string;
}

export type BlockAffinityState = 'confirmed' | 'pending' | 'pendingDeletion';

export interface BlockAffinity {
  name: string;
  node: string;
  cidr: Prefix4;
  /** Only `confirmed` affinities (and not marked `deleted`) produce routes. */
  state: BlockAffinityState;
  /** spec.deleted ("true"/true): the affinity is being torn down; it produces no routes. */
  deleted: boolean;
}

export interface WorkloadEndpoint {
  name: string;
  /** metadata.namespace (WorkloadEndpoints are namespaced in Calico); default "default". */
  namespace: string;
  node: string;
  interfaceName: string;
  /** IPv4 entries of spec.ipNetworks ("10.65.0.24/32" or bare "10.65.0.24"); IPv6 entries are skipped. */
  ipNetworks: Prefix4[];
  mac: string;
  /** metadata.labels (policy selectors match them); absent: none */
  labels?: Record<string, string>;
  /** spec.profiles; absent: the namespace's profile `kns.<namespace>` */
  profiles?: string[];
  /** spec.ports: named ports rules may refer to */
  ports?: EndpointPort[];
}

export interface FelixConfig {
  natOutgoingAddress?: number;
  /** Calico's numorstring.Port form: "32768:65535" or a single port; inclusive [lo, hi]. */
  natPortRange?: [number, number];
  vxlanVNI: number;
  vxlanPort: number;
  /** 0 / unset means auto: uplink MTU minus the encapsulation overhead (Felix's auto-detect). */
  ipipMTU?: number;
  vxlanMTU?: number;
  /**
   * What happens to a new flow from a workload to its host once its egress policy allowed it
   * (Felix's order); Return behaves as Accept here (no host-endpoint policy). Unset: Accept.
   */
  defaultEndpointToHostAction?: EndpointToHostAction;
}

export type EndpointToHostAction = 'Drop' | 'Accept' | 'Return';

export interface BgpConfig {
  asNumber: number;
  nodeToNodeMeshEnabled: boolean;
  listenPort: number;
}

export interface BgpPeer {
  name: string;
  peerIP: number;
  /** Port from an "ip:port" peerIP (Calico allows it); undefined means 179. */
  peerPort?: number;
  asNumber: number;
  /** When set, the peering applies only to this node. */
  node?: string;
  /** Raw selector; only absent or `all()` are accepted. */
  nodeSelector?: string;
}

export interface UplinkNeighbor {
  ip: number;
  mac: string;
}

export interface Uplink {
  /** metadata.name: the node this uplink belongs to */
  node: string;
  interfaceName: string;
  mac?: string;
  gateway?: number;
  mtu: number;
  neighbors: UplinkNeighbor[];
}

export interface IgnoredResource {
  kind: string;
  name: string;
  reason: string;
}

export interface ClusterConfig {
  pools: IPPool[];
  nodes: Map<string, CalicoNode>;
  affinities: BlockAffinity[];
  endpoints: WorkloadEndpoint[];
  /** The `default` FelixConfiguration with Felix's defaults filled in. Use `felixFor()` per node. */
  felix: FelixConfig;
  /** Node-specific FelixConfigurations (`node.<nodename>`), keyed by node name: only the fields set. */
  felixNodeOverrides: Map<string, Partial<FelixConfig>>;
  bgp: BgpConfig;
  peers: BgpPeer[];
  uplinks: Map<string, Uplink>;
  /** Resources read but not used: unknown kinds, IPv6 pools/blocks, FelixConfiguration/BGPConfiguration
   * with names Calico does not apply. The CLI lists them. */
  ignored: IgnoredResource[];
  /** Where the configuration came from (file path or a caller-chosen name). */
  source: string;
  /** Network policy resources (control/policy/types.ts); absent: none in the configuration. */
  policy?: PolicyConfig;
}

export const FELIX_DEFAULTS: Readonly<FelixConfig> = Object.freeze({ vxlanVNI: 4096, vxlanPort: 4789 });
export const BGP_DEFAULTS: Readonly<BgpConfig> = Object.freeze({
  asNumber: 64512,
  nodeToNodeMeshEnabled: true,
  listenPort: 179,
});
/** A configuration with nothing in it but the defaults (what the loaders fill in). */
export function emptyClusterConfig(source: string): ClusterConfig {
  return {
    pools: [],
    nodes: new Map(),
    affinities: [],
    endpoints: [],
    felix: { ...FELIX_DEFAULTS },
    felixNodeOverrides: new Map(),
    bgp: { ...BGP_DEFAULTS },
    peers: [],
    uplinks: new Map(),
    ignored: [],
    source,
  };
}
export const DEFAULT_BLOCK_SIZE = 26;
export const DEFAULT_UPLINK_MTU = 1500;
/** Encapsulation overheads (outer IPv4 20; VXLAN adds UDP 8 + VXLAN 8 + inner Ethernet 14). */
export const IPIP_OVERHEAD = 20;
export const VXLAN_OVERHEAD = 50;
