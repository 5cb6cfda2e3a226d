// BGP-4 wire constants and the parsed-message records the codec produces and consumes (RFC 4271 §4).
// Plain data only: no I/O, no state. Runs on the control (main) thread, off the packet path.
// Prefixes use the shared `Prefix4` (host-order number + length) from common/addr.
import type { Prefix4 } from '../../common/addr.js';

export const BGP_HEADER_LEN = 19;
export const BGP_MAX_MSG_LEN = 4096;
export const BGP_VERSION = 4;
/** RFC 6793 §9: the 2-octet stand-in for a 4-octet AS number. */
export const AS_TRANS = 23456;

export const MsgType = {
  OPEN: 1,
  UPDATE: 2,
  NOTIFICATION: 3,
  KEEPALIVE: 4,
  ROUTE_REFRESH: 5,
} as const;

/** Path attribute type codes (IANA "BGP Path Attributes"). */
export const Attr = {
  ORIGIN: 1,
  AS_PATH: 2,
  NEXT_HOP: 3,
  MED: 4,
  LOCAL_PREF: 5,
  ATOMIC_AGGREGATE: 6,
  AGGREGATOR: 7,
  COMMUNITIES: 8,
  ORIGINATOR_ID: 9,
  CLUSTER_LIST: 10,
  MP_REACH_NLRI: 14,
  MP_UNREACH_NLRI: 15,
  EXTENDED_COMMUNITIES: 16,
  AS4_PATH: 17,
  AS4_AGGREGATOR: 18,
  LARGE_COMMUNITY: 32,
} as const;

/** Attribute flag bits (RFC 4271 §4.3). */
export const Flag = { OPTIONAL: 0x80, TRANSITIVE: 0x40, PARTIAL: 0x20, EXTENDED: 0x10 } as const;

export const Origin = { IGP: 0, EGP: 1, INCOMPLETE: 2 } as const;

/** AS_PATH segment types (RFC 4271 §4.3, RFC 5065 §3). */
export const Seg = { AS_SET: 1, AS_SEQUENCE: 2, CONFED_SEQUENCE: 3, CONFED_SET: 4 } as const;

export const AFI_IPV4 = 1;
export const SAFI_UNICAST = 1;

/** NOTIFICATION error codes (RFC 4271 §4.5, RFC 7313 §5). */
export const Err = {
  HEADER: 1,
  OPEN: 2,
  UPDATE: 3,
  HOLD_TIMER: 4,
  FSM: 5,
  CEASE: 6,
  ROUTE_REFRESH: 7,
} as const;

export const HeaderSub = { NOT_SYNC: 1, BAD_LENGTH: 2, BAD_TYPE: 3 } as const;
export const OpenSub = {
  UNSPECIFIC: 0,
  UNSUPPORTED_VERSION: 1,
  BAD_PEER_AS: 2,
  BAD_BGP_ID: 3,
  UNSUPPORTED_OPT_PARAM: 4,
  UNACCEPTABLE_HOLD_TIME: 6,
  UNSUPPORTED_CAPABILITY: 7,
} as const;
export const UpdateSub = {
  MALFORMED_ATTR_LIST: 1,
  UNRECOGNIZED_WELL_KNOWN: 2,
  MISSING_WELL_KNOWN: 3,
  ATTR_FLAGS: 4,
  ATTR_LENGTH: 5,
  INVALID_ORIGIN: 6,
  INVALID_NEXT_HOP: 8,
  OPTIONAL_ATTR: 9,
  INVALID_NETWORK: 10,
  MALFORMED_AS_PATH: 11,
} as const;
/** Cease subcodes (RFC 4486). */
export const CeaseSub = {
  MAX_PREFIXES: 1,
  ADMIN_SHUTDOWN: 2,
  PEER_DECONFIGURED: 3,
  ADMIN_RESET: 4,
  CONNECTION_REJECTED: 5,
  OTHER_CONFIG_CHANGE: 6,
  COLLISION: 7,
  OUT_OF_RESOURCES: 8,
} as const;

export interface AsPathSegment {
  type: number;
  asns: number[];
}

export interface Aggregator {
  as: number;
  addr: number;
}

export interface UnknownAttr {
  flags: number;
  code: number;
  value: Uint8Array;
}

/**
 * Decoded path attributes of one UPDATE (minus MP_REACH/MP_UNREACH, which are lifted into the
 * message). AS numbers are always 4-octet here: the codec merges AS4_PATH/AS4_AGGREGATOR (RFC 6793).
 */
export interface PathAttrs {
  origin: number;
  asPath: AsPathSegment[];
  nextHop: number | null;
  med?: number;
  localPref?: number;
  atomicAggregate?: boolean;
  aggregator?: Aggregator;
  communities?: number[];
  /** raw 8-octet values, concatenated */
  extCommunities?: Uint8Array;
  /** [global, local1, local2] triples, flattened */
  largeCommunities?: number[];
  originatorId?: number;
  clusterList?: number[];
  /** unrecognised optional transitive attributes, passed on with the Partial bit set */
  unknown?: UnknownAttr[];
}

export interface GracefulRestartCap {
  restartTime: number;
  /** R bit: the sender has restarted */
  restarting: boolean;
  /** N bit (RFC 8538) */
  notification: boolean;
  afis: { afi: number; safi: number; forwarding: boolean }[];
}

export interface Capabilities {
  multiprotocol: { afi: number; safi: number }[];
  routeRefresh: boolean;
  enhancedRouteRefresh: boolean;
  /** 4-octet AS number (RFC 6793), null when the capability is absent */
  as4: number | null;
  gracefulRestart: GracefulRestartCap | null;
  /** anything we do not interpret, kept for logs */
  unknown: { code: number; value: Uint8Array }[];
}

export interface OpenMsg {
  type: 'open';
  version: number;
  /** the 2-octet "My Autonomous System" field */
  myAs: number;
  holdTime: number;
  bgpId: number;
  caps: Capabilities;
  /** optional parameters other than capabilities (type != 2) */
  otherParams: number[];
  /** true when the optional parameters used the RFC 9072 extended encoding */
  extendedParams: boolean;
}

export interface UpdateMsg {
  type: 'update';
  withdrawn: Prefix4[];
  attrs: PathAttrs | null;
  nlri: Prefix4[];
  /** IPv4 unicast routes carried in MP_REACH_NLRI, with that attribute's next hop */
  mpReach?: { nextHop: number; nlri: Prefix4[] };
  /** IPv4 unicast withdrawals carried in MP_UNREACH_NLRI */
  mpUnreach?: Prefix4[];
  /** RFC 7606: the whole UPDATE is to be handled as a withdrawal of every prefix it carries */
  treatAsWithdraw?: boolean;
  /** RFC 7606 findings (attribute-discard and treat-as-withdraw), for logs */
  errors?: string[];
  /** an MP_REACH/MP_UNREACH for an address family we do not handle was ignored */
  otherFamily?: boolean;
}

export interface NotificationMsg {
  type: 'notification';
  code: number;
  subcode: number;
  data: Uint8Array;
}

export interface KeepaliveMsg {
  type: 'keepalive';
}

export interface RouteRefreshMsg {
  type: 'route-refresh';
  afi: number;
  safi: number;
  /** RFC 7313 message subtype: 0 normal, 1 BoRR, 2 EoRR */
  subtype: number;
}

export type BgpMessage = OpenMsg | UpdateMsg | NotificationMsg | KeepaliveMsg | RouteRefreshMsg;

/** Options negotiated for a session that change the wire format. */
export interface CodecOptions {
  /** both sides advertised the 4-octet AS capability */
  as4: boolean;
  /** the peer is in our AS (LOCAL_PREF is only meaningful on iBGP, RFC 7606 §7.5) */
  ibgp: boolean;
}

/** A NOTIFICATION we must send; used as the error value of every decoder. */
export interface BgpError {
  code: number;
  subcode: number;
  data: Uint8Array;
  reason: string;
}

export type Decoded<T> = { ok: true; msg: T } | { ok: false; error: BgpError };

export function bgpError(code: number, subcode: number, reason: string, data?: Uint8Array): BgpError {
  return { code, subcode, data: data ?? new Uint8Array(0), reason };
}

const ERR_NAMES: Record<number, [string, Record<number, string>]> = {
  1: [
    'Message Header Error',
    { 1: 'Connection Not Synchronized', 2: 'Bad Message Length', 3: 'Bad Message Type' },
  ],
  2: [
    'OPEN Message Error',
    {
      1: 'Unsupported Version Number',
      2: 'Bad Peer AS',
      3: 'Bad BGP Identifier',
      4: 'Unsupported Optional Parameter',
      6: 'Unacceptable Hold Time',
      7: 'Unsupported Capability',
    },
  ],
  3: [
    'UPDATE Message Error',
    {
      1: 'Malformed Attribute List',
      2: 'Unrecognized Well-known Attribute',
      3: 'Missing Well-known Attribute',
      4: 'Attribute Flags Error',
      5: 'Attribute Length Error',
      6: 'Invalid ORIGIN Attribute',
      8: 'Invalid NEXT_HOP Attribute',
      9: 'Optional Attribute Error',
      10: 'Invalid Network Field',
      11: 'Malformed AS_PATH',
    },
  ],
  4: ['Hold Timer Expired', {}],
  5: ['Finite State Machine Error', {}],
  6: [
    'Cease',
    {
      1: 'Maximum Number of Prefixes Reached',
      2: 'Administrative Shutdown',
      3: 'Peer De-configured',
      4: 'Administrative Reset',
      5: 'Connection Rejected',
      6: 'Other Configuration Change',
      7: 'Connection Collision Resolution',
      8: 'Out of Resources',
    },
  ],
  7: ['ROUTE-REFRESH Message Error', { 1: 'Invalid Message Length' }],
};

/** Human-readable "Cease/Administrative Shutdown (6/2)" text for logs and status. */
export function describeError(code: number, subcode: number): string {
  const e = ERR_NAMES[code];
  if (!e) return `error ${code}/${subcode}`;
  const sub = e[1][subcode];
  return sub ? `${e[0]}/${sub} (${code}/${subcode})` : `${e[0]} (${code}/${subcode})`;
}
