// The BGP FSM's public shapes: its states, its configuration, what a session negotiated and how it
// ended, and the callbacks through which it hands routes up to the speaker/RIB. Types only; shared by
// fsm.ts (the state machine), open.ts (OPEN checks and negotiation) and speaker.ts.
import type { CodecOptions, GracefulRestartCap, OpenMsg, RouteRefreshMsg, UpdateMsg } from './types.js';

/** RFC 4271 §8.2.2 states. */
export type FsmState = 'Idle' | 'Connect' | 'Active' | 'OpenSent' | 'OpenConfirm' | 'Established';

export interface FsmConfig {
  localAs: number;
  routerId: number;
  peerAs: number;
  peerAddress: number;
  /** only wait for the peer to connect */
  passive: boolean;
  /** seconds we offer; 0 only when explicitly configured (RFC 4271 §4.2) */
  holdTime: number;
  /** ms between outgoing connection attempts */
  connectRetryMs: number;
  /** ms to wait in Idle after a session failed before starting again */
  idleHoldMs: number;
  /** our graceful-restart capability, or null to not offer it */
  gracefulRestart: GracefulRestartCap | null;
  /** queued output above which the peer is considered stalled (Cease/Out of Resources) */
  maxQueuedBytes: number;
}

export interface Negotiated {
  holdTime: number;
  keepaliveMs: number;
  codec: CodecOptions;
  peerOpen: OpenMsg;
  peerRouterId: number;
  routeRefresh: boolean;
  /** the peer's graceful restart capability includes IPv4 unicast */
  peerGr: GracefulRestartCap | null;
}

export interface DownInfo {
  reason: string;
  /** true when routes should be kept as stale (RFC 4724 §4.2): the peer offered GR and the
   * session ended without a NOTIFICATION */
  graceful: boolean;
  restartTimeSec: number;
}

export interface FsmHandlers {
  onEstablished(n: Negotiated): void;
  onUpdate(u: UpdateMsg): void;
  onRouteRefresh(r: RouteRefreshMsg): void;
  onDown(d: DownInfo): void;
  onStateChange?(state: FsmState, info: string): void;
}
