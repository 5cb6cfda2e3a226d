// Pure BGP-4 message codec (RFC 4271 §4, RFC 4760, RFC 6793, RFC 7606, RFC 2918/7313, RFC 9072).
// `decodeMessage` takes one whole message (as cut by the framer) plus the session's negotiated
// options and returns either a parsed record or the NOTIFICATION to send; it never throws on peer
// input. Encoders build fresh Uint8Arrays the caller owns. Control thread only.
import type { Prefix4 } from '../../common/addr.js';
import { decodeAttrs, decodePrefixes, encodeAttrs, encodePrefix, prefixWireLen } from './attrs.js';
import { ByteWriter, rdU16, rdU32 } from './bytes.js';
import { encodeOptionalParams, parseOptionalParams } from './caps.js';
import {
  AFI_IPV4,
  BGP_HEADER_LEN,
  BGP_MAX_MSG_LEN,
  type BgpError,
  type BgpMessage,
  bgpError,
  type Capabilities,
  type CodecOptions,
  type Decoded,
  Err,
  HeaderSub,
  MsgType,
  type NotificationMsg,
  type OpenMsg,
  type PathAttrs,
  type RouteRefreshMsg,
  SAFI_UNICAST,
  type UpdateMsg,
  UpdateSub,
} from './types.js';

const MARKER = new Uint8Array(16).fill(0xff);

function u16Bytes(v: number): Uint8Array {
  return Uint8Array.of((v >>> 8) & 0xff, v & 0xff);
}

function fail<T>(e: BgpError): Decoded<T> {
  return { ok: false, error: e };
}

/**
 * Checks a message header (RFC 4271 §6.1). `b` must hold at least the 19 header octets.
 * Returns the message length or the NOTIFICATION to send.
 */
export function checkHeader(b: Uint8Array, off = 0): number | BgpError {
  for (let i = 0; i < 16; i++)
    if (b[off + i] !== 0xff) return bgpError(Err.HEADER, HeaderSub.NOT_SYNC, 'marker is not all ones');
  const len = rdU16(b, off + 16);
  const type = b[off + 18];
  if (len < BGP_HEADER_LEN || len > BGP_MAX_MSG_LEN)
    return bgpError(Err.HEADER, HeaderSub.BAD_LENGTH, `message length ${len}`, u16Bytes(len));
  const min: Record<number, number> = { 1: 29, 2: 23, 3: 21, 4: 19, 5: 23 };
  if (min[type] === undefined)
    return bgpError(Err.HEADER, HeaderSub.BAD_TYPE, `message type ${type}`, Uint8Array.of(type));
  if (len < min[type] || (type === MsgType.KEEPALIVE && len !== 19))
    return bgpError(
      Err.HEADER,
      HeaderSub.BAD_LENGTH,
      `length ${len} for message type ${type}`,
      u16Bytes(len),
    );
  return len;
}

/** Decodes one complete message `b` (header included). */
export function decodeMessage(b: Uint8Array, opts: CodecOptions): Decoded<BgpMessage> {
  if (b.length < BGP_HEADER_LEN) return fail(bgpError(Err.HEADER, HeaderSub.BAD_LENGTH, 'short message'));
  const len = checkHeader(b);
  if (typeof len !== 'number') return fail(len);
  if (len !== b.length)
    return fail(
      bgpError(Err.HEADER, HeaderSub.BAD_LENGTH, `length field ${len} != ${b.length}`, u16Bytes(len)),
    );
  switch (b[18]) {
    case MsgType.OPEN:
      return decodeOpen(b);
    case MsgType.UPDATE:
      return decodeUpdate(b, opts);
    case MsgType.NOTIFICATION:
      return {
        ok: true,
        msg: {
          type: 'notification',
          code: b[19],
          subcode: b[20],
          data: b.slice(21),
        } satisfies NotificationMsg,
      };
    case MsgType.KEEPALIVE:
      return { ok: true, msg: { type: 'keepalive' } };
    default:
      return decodeRouteRefresh(b);
  }
}

function decodeOpen(b: Uint8Array): Decoded<OpenMsg> {
  const params = parseOptionalParams(b, 28, b.length);
  if ('code' in params) return fail(params);
  return {
    ok: true,
    msg: {
      type: 'open',
      version: b[19],
      myAs: rdU16(b, 20),
      holdTime: rdU16(b, 22),
      bgpId: rdU32(b, 24),
      caps: params.caps,
      otherParams: params.otherParams,
      extendedParams: params.extended,
    },
  };
}

function decodeRouteRefresh(b: Uint8Array): Decoded<RouteRefreshMsg> {
  if (b.length !== 23)
    return fail(bgpError(Err.ROUTE_REFRESH, 1, `ROUTE-REFRESH length ${b.length}`, b.slice()));
  return { ok: true, msg: { type: 'route-refresh', afi: rdU16(b, 19), subtype: b[21], safi: b[22] } };
}

function decodeUpdate(b: Uint8Array, opts: CodecOptions): Decoded<UpdateMsg> {
  const end = b.length;
  const wLen = rdU16(b, 19);
  const wEnd = 21 + wLen;
  if (wEnd + 2 > end)
    return fail(
      bgpError(Err.UPDATE, UpdateSub.MALFORMED_ATTR_LIST, `withdrawn routes length ${wLen} overruns`),
    );
  const aLen = rdU16(b, wEnd);
  const aStart = wEnd + 2;
  const aEnd = aStart + aLen;
  if (aEnd > end)
    return fail(
      bgpError(Err.UPDATE, UpdateSub.MALFORMED_ATTR_LIST, `path attribute length ${aLen} overruns`),
    );
  const withdrawn = decodePrefixes(b, 21, wEnd);
  if (!withdrawn)
    return fail(bgpError(Err.UPDATE, UpdateSub.MALFORMED_ATTR_LIST, 'malformed withdrawn routes'));
  const nlri = decodePrefixes(b, aEnd, end);
  if (!nlri) return fail(bgpError(Err.UPDATE, UpdateSub.INVALID_NETWORK, 'malformed NLRI'));
  const msg: UpdateMsg = { type: 'update', withdrawn, attrs: null, nlri };
  if (aLen === 0) {
    if (nlri.length) {
      msg.treatAsWithdraw = true;
      msg.errors = ['treat-as-withdraw: NLRI without path attributes'];
    }
    return { ok: true, msg };
  }
  const r = decodeAttrs(b, aStart, aEnd, opts);
  if (r.reset) return fail(r.reset);
  msg.attrs = r.attrs;
  if (r.mpReach) msg.mpReach = r.mpReach;
  if (r.mpUnreach) msg.mpUnreach = r.mpUnreach;
  if (r.otherFamily) msg.otherFamily = true;
  // RFC 7606 §3d: missing well-known mandatory attributes → treat-as-withdraw.
  if (nlri.length || r.mpReach) {
    const missing: string[] = [];
    if (!r.seen.has(1)) missing.push('ORIGIN');
    if (!r.seen.has(2)) missing.push('AS_PATH');
    if (nlri.length && !r.seen.has(3)) missing.push('NEXT_HOP');
    if (missing.length) {
      r.treatAsWithdraw = true;
      r.errors.push(`treat-as-withdraw: missing ${missing.join(', ')}`);
    }
  }
  if (r.treatAsWithdraw) msg.treatAsWithdraw = true;
  if (r.errors.length) msg.errors = r.errors;
  return { ok: true, msg };
}

// ---------------------------------------------------------------------------------------------
// Encoders

function header(w: ByteWriter, type: number): void {
  w.bytes(MARKER).u16(0).u8(type);
}

function finishMsg(w: ByteWriter): Uint8Array {
  w.patchU16(16, w.pos);
  return w.finish();
}

export interface OpenParams {
  /** local AS (4-octet); the 2-octet field gets AS_TRANS when it does not fit */
  asn: number;
  holdTime: number;
  bgpId: number;
  caps: Capabilities;
}

export function encodeOpen(p: OpenParams): Uint8Array {
  const w = new ByteWriter(64);
  header(w, MsgType.OPEN);
  w.u8(4)
    .u16(p.asn > 0xffff ? 23456 : p.asn)
    .u16(p.holdTime)
    .u32(p.bgpId);
  encodeOptionalParams(w, p.caps);
  return finishMsg(w);
}

export function encodeKeepalive(): Uint8Array {
  const w = new ByteWriter(19);
  header(w, MsgType.KEEPALIVE);
  return finishMsg(w);
}

export function encodeNotification(code: number, subcode: number, data?: Uint8Array): Uint8Array {
  const w = new ByteWriter(32);
  header(w, MsgType.NOTIFICATION);
  w.u8(code).u8(subcode);
  if (data) w.bytes(data.subarray(0, BGP_MAX_MSG_LEN - 21));
  return finishMsg(w);
}

/** RFC 8203/9003 shutdown communication for Cease/Administrative Shutdown or Reset. */
export function shutdownData(text: string): Uint8Array {
  let bytes = new TextEncoder().encode(text);
  if (bytes.length > 255) bytes = bytes.subarray(0, 255);
  const out = new Uint8Array(bytes.length + 1);
  out[0] = bytes.length;
  out.set(bytes, 1);
  return out;
}

/** Parses an RFC 9003 shutdown communication from Cease/2 or Cease/4 data, or null. */
export function parseShutdownData(data: Uint8Array): string | null {
  if (data.length < 1 || data[0] + 1 > data.length) return null;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(data.subarray(1, 1 + data[0]));
  } catch {
    return null;
  }
}

export function encodeRouteRefresh(afi = AFI_IPV4, safi = SAFI_UNICAST, subtype = 0): Uint8Array {
  const w = new ByteWriter(23);
  header(w, MsgType.ROUTE_REFRESH);
  w.u16(afi).u8(subtype).u8(safi);
  return finishMsg(w);
}

/** The IPv4 unicast End-of-RIB marker: an UPDATE with nothing in it (RFC 4724 §2). */
export function encodeEndOfRib(): Uint8Array {
  const w = new ByteWriter(23);
  header(w, MsgType.UPDATE);
  w.u16(0).u16(0);
  return finishMsg(w);
}

export function isEndOfRib(u: UpdateMsg): boolean {
  return (
    (u.attrs === null && u.withdrawn.length === 0 && u.nlri.length === 0) ||
    (u.nlri.length === 0 && u.withdrawn.length === 0 && !u.mpReach && u.mpUnreach?.length === 0)
  );
}

/** Encodes a single UPDATE; the caller keeps it within 4096 octets (see `buildUpdates`). */
export function encodeUpdate(
  u: {
    withdrawn?: Prefix4[];
    attrs?: PathAttrs | null;
    nlri?: Prefix4[];
    mpReach?: { nextHop: number; nlri: Prefix4[] };
    mpUnreach?: Prefix4[];
  },
  opts: CodecOptions,
): Uint8Array {
  const w = new ByteWriter(64);
  header(w, MsgType.UPDATE);
  const wAt = w.pos;
  w.u16(0);
  for (const p of u.withdrawn ?? []) encodePrefix(w, p);
  w.patchU16(wAt, w.pos - wAt - 2);
  const aAt = w.pos;
  w.u16(0);
  if (u.attrs) encodeAttrs(w, u.attrs, opts, u.mpReach, u.mpUnreach);
  w.patchU16(aAt, w.pos - aAt - 2);
  for (const p of u.nlri ?? []) encodePrefix(w, p);
  return finishMsg(w);
}

/**
 * Packs withdrawals and announcements into as few UPDATEs as fit in 4096 octets: withdrawals
 * first, then one run of messages per attribute set (all prefixes in a message share attributes).
 */
export function buildUpdates(
  withdrawn: Prefix4[],
  groups: { attrs: PathAttrs; prefixes: Prefix4[] }[],
  opts: CodecOptions,
): Uint8Array[] {
  const out: Uint8Array[] = [];
  let batch: Prefix4[] = [];
  let size = 23;
  for (const p of withdrawn) {
    const n = prefixWireLen(p);
    if (size + n > BGP_MAX_MSG_LEN) {
      out.push(encodeUpdate({ withdrawn: batch }, opts));
      batch = [];
      size = 23;
    }
    batch.push(p);
    size += n;
  }
  if (batch.length) out.push(encodeUpdate({ withdrawn: batch }, opts));
  for (const g of groups) {
    const attrLen = encodeUpdate({ attrs: g.attrs }, opts).length - 23;
    batch = [];
    size = 23 + attrLen;
    for (const p of g.prefixes) {
      const n = prefixWireLen(p);
      if (size + n > BGP_MAX_MSG_LEN) {
        out.push(encodeUpdate({ attrs: g.attrs, nlri: batch }, opts));
        batch = [];
        size = 23 + attrLen;
      }
      batch.push(p);
      size += n;
    }
    if (batch.length) out.push(encodeUpdate({ attrs: g.attrs, nlri: batch }, opts));
  }
  return out;
}
