// OPEN optional parameters and capabilities (RFC 5492): multiprotocol (RFC 4760), route refresh
// (RFC 2918), enhanced route refresh (RFC 7313), graceful restart (RFC 4724), 4-octet AS (RFC 6793).
// Parses the RFC 9072 extended optional-parameter encoding but never emits it. Untrusted input:
// returns an error value, never throws. Control thread only.
import { BgpSpeakerError } from '../../common/errors.js';
import { ByteWriter, rdU16, rdU32 } from './bytes.js';
import {
  type BgpError,
  bgpError,
  type Capabilities,
  Err,
  type GracefulRestartCap,
  OpenSub,
} from './types.js';

/** RFC 4271 §4.2: Opt Parm Len is one octet (we never emit RFC 9072's extended form). */
const MAX_OPT_PARAMS_LEN = 255;

export const Cap = {
  MULTIPROTOCOL: 1,
  ROUTE_REFRESH: 2,
  GRACEFUL_RESTART: 64,
  AS4: 65,
  ENHANCED_ROUTE_REFRESH: 70,
} as const;

const PARAM_CAPABILITIES = 2;
const PARAM_EXTENDED = 255;

export function emptyCaps(): Capabilities {
  return {
    multiprotocol: [],
    routeRefresh: false,
    enhancedRouteRefresh: false,
    as4: null,
    gracefulRestart: null,
    unknown: [],
  };
}

function parseCapabilities(b: Uint8Array, start: number, end: number, caps: Capabilities): BgpError | null {
  let o = start;
  while (o < end) {
    if (o + 2 > end) return bgpError(Err.OPEN, OpenSub.UNSPECIFIC, 'truncated capability header');
    const code = b[o];
    const len = b[o + 1];
    o += 2;
    if (o + len > end)
      return bgpError(Err.OPEN, OpenSub.UNSPECIFIC, `capability ${code} overruns its parameter`);
    const v = o;
    o += len;
    switch (code) {
      case Cap.MULTIPROTOCOL:
        if (len !== 4)
          return bgpError(Err.OPEN, OpenSub.UNSPECIFIC, `multiprotocol capability length ${len}`);
        caps.multiprotocol.push({ afi: rdU16(b, v), safi: b[v + 3] });
        break;
      case Cap.ROUTE_REFRESH:
        caps.routeRefresh = true;
        break;
      case Cap.ENHANCED_ROUTE_REFRESH:
        caps.enhancedRouteRefresh = true;
        break;
      case Cap.AS4:
        if (len !== 4) return bgpError(Err.OPEN, OpenSub.UNSPECIFIC, `4-octet AS capability length ${len}`);
        caps.as4 = rdU32(b, v);
        break;
      case Cap.GRACEFUL_RESTART: {
        if (len < 2 || (len - 2) % 4 !== 0)
          return bgpError(Err.OPEN, OpenSub.UNSPECIFIC, `graceful restart capability length ${len}`);
        const flags = b[v] >> 4;
        const gr: GracefulRestartCap = {
          restartTime: rdU16(b, v) & 0x0fff,
          restarting: (flags & 0x8) !== 0,
          notification: (flags & 0x4) !== 0,
          afis: [],
        };
        for (let i = v + 2; i < v + len; i += 4)
          gr.afis.push({ afi: rdU16(b, i), safi: b[i + 2], forwarding: (b[i + 3] & 0x80) !== 0 });
        caps.gracefulRestart = gr;
        break;
      }
      default:
        caps.unknown.push({ code, value: b.slice(v, v + len) });
    }
  }
  return null;
}

export interface ParsedParams {
  caps: Capabilities;
  otherParams: number[];
  extended: boolean;
}

/**
 * Parses the optional parameters of an OPEN starting at `b[off]` (the Opt Parm Len octet) up to
 * the end of the message. Handles RFC 9072: a length octet of 255 followed by parameter type 255
 * means a 2-octet extended length and 2-octet parameter lengths.
 */
export function parseOptionalParams(b: Uint8Array, off: number, end: number): ParsedParams | BgpError {
  const caps = emptyCaps();
  const otherParams: number[] = [];
  let optLen = b[off];
  let o = off + 1;
  let extended = false;
  if (optLen === 255 && o < end && b[o] === PARAM_EXTENDED) {
    if (o + 3 > end) return bgpError(Err.OPEN, OpenSub.UNSPECIFIC, 'truncated extended optional parameters');
    extended = true;
    optLen = rdU16(b, o + 1);
    o += 3;
  }
  if (o + optLen !== end)
    return bgpError(
      Err.OPEN,
      OpenSub.UNSPECIFIC,
      `optional parameters length ${optLen} does not match the message`,
    );
  while (o < end) {
    const hdr = extended ? 3 : 2;
    if (o + hdr > end) return bgpError(Err.OPEN, OpenSub.UNSPECIFIC, 'truncated optional parameter');
    const type = b[o];
    const len = extended ? rdU16(b, o + 1) : b[o + 1];
    o += hdr;
    if (o + len > end)
      return bgpError(Err.OPEN, OpenSub.UNSPECIFIC, `optional parameter ${type} overruns the OPEN`);
    if (type === PARAM_CAPABILITIES) {
      const e = parseCapabilities(b, o, o + len, caps);
      if (e) return e;
    } else {
      otherParams.push(type);
    }
    o += len;
  }
  return { caps, otherParams, extended };
}

/** Encodes capabilities as one Capabilities optional parameter per capability (classic encoding). */
export function encodeOptionalParams(w: ByteWriter, caps: Capabilities): void {
  const lenAt = w.pos;
  w.u8(0);
  const start = w.pos;
  const cap = (code: number, value: (v: ByteWriter) => void) => {
    const v = new ByteWriter(16);
    value(v);
    const body = v.finish();
    w.u8(PARAM_CAPABILITIES)
      .u8(body.length + 2)
      .u8(code)
      .u8(body.length)
      .bytes(body);
  };
  for (const mp of caps.multiprotocol) cap(Cap.MULTIPROTOCOL, (v) => v.u16(mp.afi).u8(0).u8(mp.safi));
  if (caps.routeRefresh) cap(Cap.ROUTE_REFRESH, () => {});
  if (caps.enhancedRouteRefresh) cap(Cap.ENHANCED_ROUTE_REFRESH, () => {});
  const gr = caps.gracefulRestart;
  if (gr) {
    cap(Cap.GRACEFUL_RESTART, (v) => {
      v.u16(((gr.restarting ? 0x8 : 0) | (gr.notification ? 0x4 : 0)) * 0x1000 + (gr.restartTime & 0x0fff));
      for (const a of gr.afis)
        v.u16(a.afi)
          .u8(a.safi)
          .u8(a.forwarding ? 0x80 : 0);
    });
  }
  if (caps.as4 !== null) {
    const as4 = caps.as4;
    cap(Cap.AS4, (v) => v.u32(as4));
  }
  for (const u of caps.unknown) cap(u.code, (v) => v.bytes(u.value));
  const len = w.pos - start;
  if (len > MAX_OPT_PARAMS_LEN)
    throw new BgpSpeakerError(
      'bgp-encode',
      `OPEN optional parameters take ${len} octets, more than the ${MAX_OPT_PARAMS_LEN} their length octet allows`,
    );
  w.patchU8(lenAt, len);
}
