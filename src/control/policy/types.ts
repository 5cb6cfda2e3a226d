// The network-policy model: Calico v3 NetworkPolicy, GlobalNetworkPolicy, Profile, Tier and the
// namespace labels, as config loading validates them (config/policy-load.ts) and the policy compiler
// (compile.ts) consumes them. Plain records built once per load on the control (main) thread; the
// dataplane never sees them, only the rule programs compiled from them. Selectors are kept as text
// (validated) so that a model compares and prints as the user wrote it.
import type { Prefix4 } from '../../common/addr.js';

export type PolicyAction = 'Allow' | 'Deny' | 'Pass' | 'Log';
export type Direction = 'ingress' | 'egress';
export const DIRECTIONS: readonly Direction[] = ['ingress', 'egress'];

/** IP protocol numbers calitap names (Calico's numorstring names, case-insensitive). */
export const PROTOCOL_NUMBERS: Readonly<Record<string, number>> = Object.freeze({
  TCP: 6,
  UDP: 17,
  ICMP: 1,
  ICMPv6: 58,
  SCTP: 132,
  UDPLite: 136,
});
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
export const PROTO_ICMP = 1;
export const PROTO_ICMPV6 = 58;
export const PROTO_SCTP = 132;

/** Protocols whose rules may carry ports (Calico's Protocol.SupportsPorts). */
export function protocolHasPorts(p: number): boolean {
  return p === PROTO_TCP || p === PROTO_UDP || p === PROTO_SCTP;
}

/** One entry of a rule's ports/notPorts: a range (a single port has lo === hi) or a named port. */
export type PortMatch = { readonly lo: number; readonly hi: number } | { readonly name: string };

export interface IcmpMatch {
  readonly type?: number;
  readonly code?: number;
}

/** A rule's source or destination (Calico's EntityRule). */
export interface EntityMatch {
  readonly nets: readonly Prefix4[];
  readonly notNets: readonly Prefix4[];
  readonly selector?: string;
  readonly notSelector?: string;
  readonly namespaceSelector?: string;
  readonly ports: readonly PortMatch[];
  readonly notPorts: readonly PortMatch[];
}

export interface PolicyRule {
  readonly action: PolicyAction;
  readonly protocol?: number;
  readonly notProtocol?: number;
  readonly icmp?: IcmpMatch;
  readonly notICMP?: IcmpMatch;
  readonly ipVersion?: 4 | 6;
  /**
   * True when the rule can only ever match IPv6 (ipVersion 6, IPv6 nets, ICMPv6): Felix renders it
   * into the IPv6 tables only, so on calitap's IPv4 path it never matches.
   */
  readonly ipv6Only: boolean;
  readonly source: EntityMatch;
  readonly destination: EntityMatch;
}

export type PolicyKind = 'NetworkPolicy' | 'GlobalNetworkPolicy';

export interface PolicyResource {
  readonly kind: PolicyKind;
  /** NetworkPolicy only: its namespace (its selectors are scoped to it) */
  readonly namespace?: string;
  readonly name: string;
  readonly tier: string;
  /** absent: applied last in its tier (Felix's +Inf) */
  readonly order?: number;
  readonly selector: string;
  /** GlobalNetworkPolicy only */
  readonly namespaceSelector?: string;
  readonly types: readonly Direction[];
  readonly ingress: readonly PolicyRule[];
  readonly egress: readonly PolicyRule[];
  /** preDNAT / doNotTrack policies apply to host endpoints only: never to workloads */
  readonly hostOnly: boolean;
}

export type TierDefaultAction = 'Deny' | 'Pass';

export interface TierResource {
  readonly name: string;
  /** absent: after every tier with an order */
  readonly order?: number;
  readonly defaultAction: TierDefaultAction;
}

export interface ProfileResource {
  readonly name: string;
  readonly ingress: readonly PolicyRule[];
  readonly egress: readonly PolicyRule[];
  /** labels every endpoint using the profile inherits (its own labels win) */
  readonly labelsToApply: Readonly<Record<string, string>>;
}

/** A Kubernetes namespace's labels (apiVersion v1, kind Namespace), for namespaceSelector. */
export interface NamespaceResource {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** A named port of a workload endpoint (spec.ports), for rules naming ports. */
export interface EndpointPort {
  readonly name: string;
  readonly protocol: number;
  readonly port: number;
}

/** The policy resources of a configuration. */
export interface PolicyConfig {
  readonly tiers: ReadonlyMap<string, TierResource>;
  readonly policies: readonly PolicyResource[];
  readonly profiles: ReadonlyMap<string, ProfileResource>;
  readonly namespaces: ReadonlyMap<string, NamespaceResource>;
}

/** What the compiler needs to know about a workload endpoint. */
export interface PolicyEndpoint {
  /** `<namespace>/<name>`: the endpoint's identity */
  readonly key: string;
  readonly namespace: string;
  readonly node: string;
  readonly ipNetworks: readonly Prefix4[];
  readonly labels: Readonly<Record<string, string>>;
  /** absent: the namespace's profile `kns.<namespace>` */
  readonly profiles?: readonly string[];
  readonly ports: readonly EndpointPort[];
}

/**
 * A workload endpoint as the configuration holds it (config/types.ts WorkloadEndpoint has these
 * fields; restated here so that control/policy does not depend on control/config).
 */
export interface PolicyWorkload {
  readonly name: string;
  readonly namespace: string;
  readonly node: string;
  readonly ipNetworks: readonly Prefix4[];
  readonly labels?: Readonly<Record<string, string>>;
  readonly profiles?: readonly string[];
  readonly ports?: readonly EndpointPort[];
}

/** What the policy programmer reads of a configuration (config/types.ts ClusterConfig has it). */
export interface PolicySource {
  readonly policy?: PolicyConfig;
  readonly endpoints: readonly PolicyWorkload[];
}

export const DEFAULT_TIER = 'default';
/** The default tier's order when no Tier resource names it (Calico's DefaultTierOrder). */
export const DEFAULT_TIER_ORDER = 1_000_000;
/** Labels Calico puts on every workload endpoint and namespace (api/pkg/apis/projectcalico/v3). */
export const LABEL_NAMESPACE = 'projectcalico.org/namespace';
export const LABEL_ORCHESTRATOR = 'projectcalico.org/orchestrator';
export const LABEL_NAME = 'projectcalico.org/name';
/** Prefix of the namespace labels endpoints inherit (libcalico-go conversion.NamespaceLabelPrefix). */
export const NAMESPACE_LABEL_PREFIX = 'pcns.';
/** Prefix of the namespace profiles Calico's Kubernetes integration creates. */
export const NAMESPACE_PROFILE_PREFIX = 'kns.';

/** Calico's limits (api/pkg/apis/projectcalico/v3 kubebuilder markers). */
export const LIMITS = Object.freeze({
  rulesPerPolicy: 1024,
  netsPerRule: 256,
  portsPerRule: 50,
  selectorLength: 1024,
});

export const EMPTY_POLICY_CONFIG: PolicyConfig = Object.freeze({
  tiers: new Map(),
  policies: [],
  profiles: new Map(),
  namespaces: new Map(),
});

/** Does the configuration carry any policy resource (the policy feature is off otherwise)? */
export function hasPolicy(p: PolicyConfig | undefined): boolean {
  return p !== undefined && (p.policies.length > 0 || p.profiles.size > 0 || p.tiers.size > 0);
}
