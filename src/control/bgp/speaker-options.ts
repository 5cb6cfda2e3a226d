// The BGP speaker's public shapes and defaults: the options it is built from (daemon/bgp-glue.ts maps
// Calico's resources onto them), per-peer options, and the status rows `calitap status` shows. Types
// and constants only; control thread.
import type { Prefix4 } from '../../common/addr.js';
import type { BgpLogger, Clock } from './transport.js';
import type { FsmState } from './fsm-types.js';
import type { BestRoute } from './rib.js';

/** RFC 4271 §8: the BGP port. */
export const BGP_PORT = 179;
/** Defaults of the speaker's options, in seconds (docs/bgp.md lists them). */
export const DEFAULT_HOLD_TIME = 90;
export const DEFAULT_CONNECT_RETRY = 5;
export const DEFAULT_IDLE_HOLD = 2;
export const DEFAULT_GR_TIME = 120;
export const DEFAULT_STALE_PATH_TIME = 360;
/** RFC 4724 §3: the Restart Time field is 12 bits. */
export const MAX_GR_TIME = 0xfff;
/** RFC 4271 §4.2: the Hold Time field is 16 bits. */
export const MAX_HOLD_TIME = 0xffff;

export type PeerType = 'node-to-node mesh' | 'global' | 'node specific';

export interface PeerOptions {
  peerAddress: string;
  asNumber: number;
  peerType?: PeerType;
  /** only accept the peer's connection, never dial (Calico: the side whose peer has the greater IP) */
  passive?: boolean;
  /** TCP port to dial (default BGP_PORT, 179) */
  port?: number;
  /** per-peer hold time offer, seconds (default: the speaker's) */
  holdTime?: number;
  /** free text for logs, e.g. the Node name */
  description?: string;
}

export interface BgpSpeakerOptions {
  /** dotted quad BGP identifier */
  routerId: string;
  localAs: number;
  /** address to listen on and to dial from (default 0.0.0.0: any) */
  listenAddress?: string;
  /** default 179 */
  listenPort?: number;
  /** false: do not listen at all (only dial) */
  listen?: boolean;
  /** next hop for our own blocks (default: listenAddress when specific, else routerId) */
  nextHop?: string;
  peers: PeerOptions[];
  /** seconds, default 90; never 1 or 2; 0 only when asked for */
  holdTime?: number;
  /** seconds between connection attempts, default 5 */
  connectRetry?: number;
  /** seconds to wait in Idle after a failed session, default 2 */
  idleHoldTime?: number;
  /** graceful restart time we advertise (RFC 4724), default 120; 0 disables the capability */
  gracefulRestartTime?: number;
  /** we are restarting with forwarding state kept: set the R and F bits (RFC 4724 §3) */
  restarting?: boolean;
  /** upper bound for keeping a restarted peer's stale routes while waiting for End-of-RIB, s (default 360) */
  stalePathTime?: number;
  /** route reflector cluster ID that must not appear in CLUSTER_LIST (default routerId) */
  clusterId?: string;
  /** send routes learned from peers on to eBGP peers (default true); never to iBGP peers */
  exportLearnedToEbgp?: boolean;
  logger?: BgpLogger;
  clock?: Clock;
  onRouteChange?: RouteChangeListener;
}

export type RouteChangeListener = (prefix: Prefix4, best: BestRoute | null) => void;

export interface PeerStatus {
  peerAddress: string;
  peerType: PeerType;
  /** BIRD/calicoctl protocol state: up | start | down */
  state: string;
  /** ISO time of the last state change */
  since: string;
  /** "Established", or the FSM state and last error, e.g. "Active Socket: Connection refused" */
  info: string;
  /** RFC 4271 FSM state */
  fsmState: FsmState;
  asNumber: number;
  /** prefixes currently held from this peer (stale included) */
  routesReceived: number;
  /** prefixes we announce to this peer */
  routesAdvertised: number;
  /** UPDATE / ROUTE-REFRESH messages received from this peer since the speaker started */
  updatesReceived: number;
  refreshesReceived: number;
}
