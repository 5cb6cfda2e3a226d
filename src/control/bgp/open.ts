// OPEN handling for the FSM (RFC 4271 §4.2, §6.2, §6.8): the capabilities we offer, the checks on the
// peer's OPEN (each failure is the NOTIFICATION to send), what the two OPENs negotiate, and the
// NOTIFICATIONs for collisions and FSM errors. Pure functions of their arguments; control thread.
import { formatIp4 } from '../../common/addr.js';
import {
  AFI_IPV4,
  AS_TRANS,
  BGP_VERSION,
  CeaseSub,
  Err,
  OpenSub,
  SAFI_UNICAST,
  type BgpError,
  type Capabilities,
  type OpenMsg,
} from './types.js';
import type { FsmConfig, Negotiated } from './fsm-types.js';

/** RFC 4271 §8.2.2: the "large value" the hold timer gets before the peer's OPEN arrives (4 minutes). */
export const LARGE_HOLD_MS = 240_000;
/** Floor of the keepalive interval: never more than one KEEPALIVE a second (RFC 4271 §10). */
export const MIN_KEEPALIVE_MS = 1000;
/** RFC 4271 §4.4: KEEPALIVEs at a third of the hold time. */
const KEEPALIVES_PER_HOLD = 3;

/** RFC 6608 subcodes of the Finite State Machine Error: the state that received the unexpected message. */
export const FsmSub = { OPEN_SENT: 1, OPEN_CONFIRM: 2, ESTABLISHED: 3 } as const;

const NO_DATA = new Uint8Array(0);

/** The capabilities of our OPEN: IPv4 unicast, route refresh, 4-octet AS, graceful restart if configured. */
export function localCapabilities(cfg: FsmConfig): Capabilities {
  return {
    multiprotocol: [{ afi: AFI_IPV4, safi: SAFI_UNICAST }],
    routeRefresh: true,
    enhancedRouteRefresh: false,
    as4: cfg.localAs,
    gracefulRestart: cfg.gracefulRestart,
    unknown: [],
  };
}

/** The OPEN Message Error to send for the peer's OPEN, or null when it is acceptable (§6.2). */
export function validateOpen(cfg: FsmConfig, m: OpenMsg): BgpError | null {
  const e = (sub: number, reason: string, data?: Uint8Array): BgpError => ({
    code: Err.OPEN,
    subcode: sub,
    reason,
    data: data ?? NO_DATA,
  });
  if (m.version !== BGP_VERSION)
    // the data is the largest version we support, as a 2-octet unsigned integer
    return e(OpenSub.UNSUPPORTED_VERSION, `version ${m.version}`, Uint8Array.of(0, BGP_VERSION));
  const peerAs = m.caps.as4 ?? m.myAs;
  if (m.caps.as4 === null && m.myAs === AS_TRANS)
    return e(OpenSub.BAD_PEER_AS, 'AS_TRANS without 4-octet AS');
  if (peerAs !== cfg.peerAs) return e(OpenSub.BAD_PEER_AS, `peer AS ${peerAs}, expected ${cfg.peerAs}`);
  if (m.bgpId === 0 || (cfg.peerAs === cfg.localAs && m.bgpId === cfg.routerId))
    return e(OpenSub.BAD_BGP_ID, `BGP identifier ${formatIp4(m.bgpId)}`);
  if (m.holdTime === 1 || m.holdTime === 2)
    return e(OpenSub.UNACCEPTABLE_HOLD_TIME, `hold time ${m.holdTime}`);
  if (m.otherParams.length) return e(OpenSub.UNSUPPORTED_OPT_PARAM, `optional parameter ${m.otherParams[0]}`);
  return null;
}

/** What our configuration and the peer's (valid) OPEN negotiate: hold time, keepalive, codec, caps. */
export function negotiate(cfg: FsmConfig, m: OpenMsg): Negotiated {
  const hold = Math.min(cfg.holdTime, m.holdTime);
  const gr = m.caps.gracefulRestart;
  return {
    holdTime: hold,
    keepaliveMs: hold === 0 ? 0 : Math.max(MIN_KEEPALIVE_MS, Math.floor(hold / KEEPALIVES_PER_HOLD) * 1000),
    codec: { as4: m.caps.as4 !== null, ibgp: cfg.peerAs === cfg.localAs },
    peerOpen: m,
    peerRouterId: m.bgpId,
    routeRefresh: m.caps.routeRefresh || m.caps.enhancedRouteRefresh,
    peerGr: gr && gr.afis.some((a) => a.afi === AFI_IPV4 && a.safi === SAFI_UNICAST) ? gr : null,
  };
}

/** Cease/Connection Collision Resolution (§6.8). */
export function collisionErr(): BgpError {
  return { code: Err.CEASE, subcode: CeaseSub.COLLISION, data: NO_DATA, reason: 'collision' };
}

/** Finite State Machine Error (RFC 6608) for an unexpected message in a state. */
export function fsmErr(subcode: number, reason: string): BgpError {
  return { code: Err.FSM, subcode, data: NO_DATA, reason };
}
