// BGP path attributes and IPv4 NLRI: decode with RFC 7606 revised error handling, encode per the
// negotiated options (2- vs 4-octet AS, RFC 6793). Input is a peer's bytes (untrusted): the decoder
// never throws; it reports treat-as-withdraw, attribute-discard or a session reset as values.
// Buffers: decode reads the caller's Uint8Array and copies what it keeps; encode writes into a
// ByteWriter. Control thread only.
import type { Prefix4 } from '../../common/addr.js';
import { maskOf } from '../../common/addr.js';
import { ByteWriter, rdU16, rdU32 } from './bytes.js';
import {
  AFI_IPV4,
  AS_TRANS,
  Attr,
  type AsPathSegment,
  type BgpError,
  bgpError,
  type CodecOptions,
  Err,
  Flag,
  type PathAttrs,
  SAFI_UNICAST,
  Seg,
  UpdateSub,
} from './types.js';

// ---------------------------------------------------------------------------------------------
// NLRI (RFC 4271 §4.3): <length in bits, prefix truncated to whole octets>

/** Decodes a run of IPv4 prefixes; null when a length is > 32 or a prefix overruns `end`. */
export function decodePrefixes(b: Uint8Array, start: number, end: number): Prefix4[] | null {
  const out: Prefix4[] = [];
  let o = start;
  while (o < end) {
    const len = b[o++];
    if (len > 32) return null;
    const n = (len + 7) >> 3;
    if (o + n > end) return null;
    let addr = 0;
    for (let i = 0; i < 4; i++) addr = (addr << 8) | (i < n ? b[o + i] : 0);
    o += n;
    // Trailing bits past the length are irrelevant (RFC 4271 §4.3): clear them.
    out.push({ addr: (addr & maskOf(len)) >>> 0, len });
  }
  return out;
}

export function prefixWireLen(p: Prefix4): number {
  return 1 + ((p.len + 7) >> 3);
}

export function encodePrefix(w: ByteWriter, p: Prefix4): void {
  w.u8(p.len);
  const n = (p.len + 7) >> 3;
  for (let i = 0; i < n; i++) w.u8(p.addr >>> (24 - 8 * i));
}

// ---------------------------------------------------------------------------------------------
// Decoding

export interface AttrDecodeResult {
  attrs: PathAttrs;
  /** attribute type codes seen (first occurrence) */
  seen: Set<number>;
  mpReach?: { nextHop: number; nlri: Prefix4[] };
  mpUnreach?: Prefix4[];
  otherFamily: boolean;
  treatAsWithdraw: boolean;
  errors: string[];
  /** set when the session must be reset; takes precedence over everything else */
  reset?: BgpError;
}

const WELL_KNOWN = Flag.TRANSITIVE;
const OPT_TRANS = Flag.OPTIONAL | Flag.TRANSITIVE;
const OPT_NON_TRANS = Flag.OPTIONAL;
/** Required (Optional, Transitive) bits for each attribute we understand. */
const EXPECTED_FLAGS: Record<number, number> = {
  [Attr.ORIGIN]: WELL_KNOWN,
  [Attr.AS_PATH]: WELL_KNOWN,
  [Attr.NEXT_HOP]: WELL_KNOWN,
  [Attr.MED]: OPT_NON_TRANS,
  [Attr.LOCAL_PREF]: WELL_KNOWN,
  [Attr.ATOMIC_AGGREGATE]: WELL_KNOWN,
  [Attr.AGGREGATOR]: OPT_TRANS,
  [Attr.COMMUNITIES]: OPT_TRANS,
  [Attr.ORIGINATOR_ID]: OPT_NON_TRANS,
  [Attr.CLUSTER_LIST]: OPT_NON_TRANS,
  [Attr.MP_REACH_NLRI]: OPT_NON_TRANS,
  [Attr.MP_UNREACH_NLRI]: OPT_NON_TRANS,
  [Attr.EXTENDED_COMMUNITIES]: OPT_TRANS,
  [Attr.AS4_PATH]: OPT_TRANS,
  [Attr.AS4_AGGREGATOR]: OPT_TRANS,
  [Attr.LARGE_COMMUNITY]: OPT_TRANS,
};

/** Attributes whose errors are handled by attribute-discard rather than treat-as-withdraw. */
const DISCARD_ON_ERROR = new Set<number>([
  Attr.ATOMIC_AGGREGATE,
  Attr.AGGREGATOR,
  Attr.AS4_PATH,
  Attr.AS4_AGGREGATOR,
]);

function rawAttr(b: Uint8Array, start: number, end: number): Uint8Array {
  return b.slice(start, end);
}

/** Parses AS_PATH/AS4_PATH segments; null when malformed (RFC 7606 §7.2). */
export function decodeAsPath(
  b: Uint8Array,
  start: number,
  end: number,
  asLen: 2 | 4,
): AsPathSegment[] | null {
  const segs: AsPathSegment[] = [];
  let o = start;
  while (o < end) {
    if (o + 2 > end) return null;
    const type = b[o];
    const count = b[o + 1];
    o += 2;
    if (type < Seg.AS_SET || type > Seg.CONFED_SET || count === 0) return null;
    if (o + count * asLen > end) return null;
    const asns = new Array<number>(count);
    for (let i = 0; i < count; i++, o += asLen) asns[i] = asLen === 4 ? rdU32(b, o) : rdU16(b, o);
    segs.push({ type, asns });
  }
  return segs;
}

/** Number of ASes in a path for length comparison: a set counts 1, confed segments 0 (RFC 4271 §9.1.2.2, RFC 5065). */
export function asPathLength(segs: AsPathSegment[]): number {
  let n = 0;
  for (const s of segs) {
    if (s.type === Seg.AS_SEQUENCE) n += s.asns.length;
    else if (s.type === Seg.AS_SET) n += 1;
  }
  return n;
}

/**
 * RFC 6793 §4.2.3: rebuild the 4-octet path from AS_PATH (2-octet, with AS_TRANS) and AS4_PATH.
 * Keeps the leading (len(AS_PATH) - len(AS4_PATH)) ASes of AS_PATH, confed segments included.
 */
export function mergeAs4Path(asPath: AsPathSegment[], as4Path: AsPathSegment[]): AsPathSegment[] {
  const n = asPathLength(asPath) - asPathLength(as4Path);
  if (n < 0) return asPath;
  const out: AsPathSegment[] = [];
  let need = n;
  // true when the last AS_SEQUENCE taken was cut short: the AS4_PATH continues that segment
  let cut = false;
  for (const s of asPath) {
    if (s.type === Seg.CONFED_SEQUENCE || s.type === Seg.CONFED_SET) {
      out.push({ type: s.type, asns: s.asns.slice() });
      continue;
    }
    if (need === 0) break;
    if (s.type === Seg.AS_SET) {
      out.push({ type: s.type, asns: s.asns.slice() });
      need--;
    } else {
      const take = Math.min(need, s.asns.length);
      out.push({ type: s.type, asns: s.asns.slice(0, take) });
      need -= take;
      cut = take < s.asns.length;
    }
  }
  as4Path.forEach((s, i) => {
    const last = out[out.length - 1];
    if (
      i === 0 &&
      cut &&
      last.type === Seg.AS_SEQUENCE &&
      s.type === Seg.AS_SEQUENCE &&
      last.asns.length + s.asns.length <= 255
    )
      last.asns.push(...s.asns);
    else out.push({ type: s.type, asns: s.asns.slice() });
  });
  return out;
}

function validNextHop(ip: number): boolean {
  // 0.0.0.0/8, class D/E and the broadcast address are never valid next hops (RFC 4271 §6.3).
  return ip >>> 24 !== 0 && ip >>> 28 < 0xe;
}

/**
 * Decodes the path attributes field `b[start, end)`. Unknown optional transitive attributes are
 * kept with the Partial bit set, unknown optional non-transitive ones dropped quietly.
 */
export function decodeAttrs(b: Uint8Array, start: number, end: number, opts: CodecOptions): AttrDecodeResult {
  const attrs: PathAttrs = { origin: 0, asPath: [], nextHop: null };
  const r: AttrDecodeResult = {
    attrs,
    seen: new Set(),
    otherFamily: false,
    treatAsWithdraw: false,
    errors: [],
  };
  let as4Path: AsPathSegment[] | null = null;
  let as4Agg: { as: number; addr: number } | null = null;
  const withdraw = (why: string) => {
    r.treatAsWithdraw = true;
    r.errors.push(`treat-as-withdraw: ${why}`);
  };
  const discard = (why: string) => r.errors.push(`attribute-discard: ${why}`);

  let o = start;
  while (o < end) {
    const hdrStart = o;
    if (o + 2 > end) {
      withdraw('truncated attribute header');
      break;
    }
    const flags = b[o];
    const code = b[o + 1];
    const ext = (flags & Flag.EXTENDED) !== 0;
    const hdrLen = ext ? 4 : 3;
    if (o + hdrLen > end) {
      withdraw(`truncated header of attribute ${code}`);
      break;
    }
    const len = ext ? rdU16(b, o + 2) : b[o + 2];
    o += hdrLen;
    if (o + len > end) {
      // RFC 7606 §4: an attribute overrunning the attribute field.
      withdraw(`attribute ${code} length ${len} overruns the attribute list`);
      break;
    }
    const vs = o;
    const ve = o + len;
    o = ve;

    if (r.seen.has(code)) {
      if (code === Attr.MP_REACH_NLRI || code === Attr.MP_UNREACH_NLRI) {
        r.reset = bgpError(Err.UPDATE, UpdateSub.MALFORMED_ATTR_LIST, `duplicate attribute ${code}`);
        return r;
      }
      discard(`duplicate attribute ${code}`); // RFC 7606 §3g: keep the first
      continue;
    }
    r.seen.add(code);

    const expected = EXPECTED_FLAGS[code];
    if (expected === undefined) {
      if ((flags & Flag.OPTIONAL) === 0) {
        r.reset = bgpError(
          Err.UPDATE,
          UpdateSub.UNRECOGNIZED_WELL_KNOWN,
          `unrecognized well-known attribute ${code}`,
          rawAttr(b, hdrStart, ve),
        );
        return r;
      }
      if (flags & Flag.TRANSITIVE) {
        (attrs.unknown ??= []).push({ flags: flags | Flag.PARTIAL, code, value: b.slice(vs, ve) });
      }
      continue;
    }
    if ((flags & (Flag.OPTIONAL | Flag.TRANSITIVE)) !== expected) {
      const why = `attribute ${code} has flags 0x${flags.toString(16)}`;
      if (code === Attr.MP_REACH_NLRI || code === Attr.MP_UNREACH_NLRI) {
        r.reset = bgpError(Err.UPDATE, UpdateSub.ATTR_FLAGS, why, rawAttr(b, hdrStart, ve));
        return r;
      }
      if (DISCARD_ON_ERROR.has(code)) discard(why);
      else withdraw(why);
      continue;
    }

    switch (code) {
      case Attr.ORIGIN:
        if (len !== 1 || b[vs] > 2) withdraw(`bad ORIGIN (length ${len})`);
        else attrs.origin = b[vs];
        break;
      case Attr.AS_PATH: {
        const p = decodeAsPath(b, vs, ve, opts.as4 ? 4 : 2);
        if (!p) withdraw('malformed AS_PATH');
        else attrs.asPath = p;
        break;
      }
      case Attr.NEXT_HOP:
        if (len !== 4) withdraw(`NEXT_HOP length ${len}`);
        else {
          attrs.nextHop = rdU32(b, vs);
          if (!validNextHop(attrs.nextHop)) withdraw('NEXT_HOP is not a unicast address');
        }
        break;
      case Attr.MED:
        if (len !== 4) withdraw(`MED length ${len}`);
        else attrs.med = rdU32(b, vs);
        break;
      case Attr.LOCAL_PREF:
        if (!opts.ibgp)
          discard('LOCAL_PREF from an external peer'); // RFC 7606 §7.5
        else if (len !== 4) withdraw(`LOCAL_PREF length ${len}`);
        else attrs.localPref = rdU32(b, vs);
        break;
      case Attr.ATOMIC_AGGREGATE:
        if (len !== 0) discard(`ATOMIC_AGGREGATE length ${len}`);
        else attrs.atomicAggregate = true;
        break;
      case Attr.AGGREGATOR:
        if (opts.as4 ? len !== 8 : len !== 6) discard(`AGGREGATOR length ${len}`);
        else if (opts.as4) attrs.aggregator = { as: rdU32(b, vs), addr: rdU32(b, vs + 4) };
        else attrs.aggregator = { as: rdU16(b, vs), addr: rdU32(b, vs + 2) };
        break;
      case Attr.COMMUNITIES:
        if (len === 0 || len % 4 !== 0) withdraw(`COMMUNITIES length ${len}`);
        else {
          const c: number[] = [];
          for (let i = vs; i < ve; i += 4) c.push(rdU32(b, i));
          attrs.communities = c;
        }
        break;
      case Attr.ORIGINATOR_ID:
        if (len !== 4) withdraw(`ORIGINATOR_ID length ${len}`);
        else attrs.originatorId = rdU32(b, vs);
        break;
      case Attr.CLUSTER_LIST:
        if (len === 0 || len % 4 !== 0) withdraw(`CLUSTER_LIST length ${len}`);
        else {
          const c: number[] = [];
          for (let i = vs; i < ve; i += 4) c.push(rdU32(b, i));
          attrs.clusterList = c;
        }
        break;
      case Attr.EXTENDED_COMMUNITIES:
        if (len === 0 || len % 8 !== 0) withdraw(`EXTENDED_COMMUNITIES length ${len}`);
        else attrs.extCommunities = b.slice(vs, ve);
        break;
      case Attr.LARGE_COMMUNITY:
        if (len === 0 || len % 12 !== 0)
          withdraw(`LARGE_COMMUNITY length ${len}`); // RFC 8092 §6
        else {
          const c: number[] = [];
          for (let i = vs; i < ve; i += 4) c.push(rdU32(b, i));
          attrs.largeCommunities = c;
        }
        break;
      case Attr.AS4_PATH:
        if (opts.as4) break; // RFC 6793 §6: ignored between two NEW speakers
        as4Path = decodeAsPath(b, vs, ve, 4);
        if (!as4Path || as4Path.some((s) => s.type === Seg.CONFED_SEQUENCE || s.type === Seg.CONFED_SET)) {
          as4Path = null;
          discard('malformed AS4_PATH');
        }
        break;
      case Attr.AS4_AGGREGATOR:
        if (opts.as4) break;
        if (len !== 8) discard(`AS4_AGGREGATOR length ${len}`);
        else as4Agg = { as: rdU32(b, vs), addr: rdU32(b, vs + 4) };
        break;
      case Attr.MP_REACH_NLRI: {
        // AFI(2) SAFI(1) NH-len(1) NH reserved(1) NLRI (RFC 4760 §3)
        if (len < 5 || vs + 5 + b[vs + 3] > ve) {
          r.reset = bgpError(Err.UPDATE, UpdateSub.OPTIONAL_ATTR, 'malformed MP_REACH_NLRI');
          return r;
        }
        const afi = rdU16(b, vs);
        const safi = b[vs + 2];
        const nhLen = b[vs + 3];
        if (afi !== AFI_IPV4 || safi !== SAFI_UNICAST) {
          r.otherFamily = true;
          break;
        }
        const nlri = decodePrefixes(b, vs + 5 + nhLen, ve);
        if (!nlri) {
          r.reset = bgpError(Err.UPDATE, UpdateSub.OPTIONAL_ATTR, 'malformed NLRI in MP_REACH_NLRI');
          return r;
        }
        let nh = 0;
        if (nhLen !== 4) withdraw(`MP_REACH_NLRI next hop length ${nhLen}`);
        else {
          nh = rdU32(b, vs + 4);
          if (!validNextHop(nh)) withdraw('MP_REACH_NLRI next hop is not a unicast address');
        }
        r.mpReach = { nextHop: nh, nlri };
        break;
      }
      case Attr.MP_UNREACH_NLRI: {
        if (len < 3) {
          r.reset = bgpError(Err.UPDATE, UpdateSub.OPTIONAL_ATTR, 'malformed MP_UNREACH_NLRI');
          return r;
        }
        if (rdU16(b, vs) !== AFI_IPV4 || b[vs + 2] !== SAFI_UNICAST) {
          r.otherFamily = true;
          break;
        }
        const w = decodePrefixes(b, vs + 3, ve);
        if (!w) {
          r.reset = bgpError(
            Err.UPDATE,
            UpdateSub.OPTIONAL_ATTR,
            'malformed withdrawn routes in MP_UNREACH_NLRI',
          );
          return r;
        }
        r.mpUnreach = w;
        break;
      }
    }
  }

  // RFC 6793 §4.2.3: AGGREGATOR decides whether AS4_* are to be believed.
  if (!opts.as4) {
    if (attrs.aggregator && attrs.aggregator.as !== AS_TRANS) {
      as4Path = null;
    } else if (attrs.aggregator && as4Agg) {
      attrs.aggregator = as4Agg;
    }
    if (as4Path) attrs.asPath = mergeAs4Path(attrs.asPath, as4Path);
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Encoding

function attrHeader(w: ByteWriter, flags: number, code: number, len: number): void {
  if (len > 255)
    w.u8(flags | Flag.EXTENDED)
      .u8(code)
      .u16(len);
  else
    w.u8(flags & ~Flag.EXTENDED)
      .u8(code)
      .u8(len);
}

function encodeSegments(segs: AsPathSegment[], asLen: 2 | 4, trans: boolean): ByteWriter {
  const w = new ByteWriter(64);
  for (const s of segs) {
    // A segment holds at most 255 ASes: split longer ones.
    for (let i = 0; i < s.asns.length || (i === 0 && s.asns.length === 0); i += 255) {
      const chunk = s.asns.slice(i, i + 255);
      if (chunk.length === 0) break;
      w.u8(s.type).u8(chunk.length);
      for (const a of chunk) {
        if (asLen === 4) w.u32(a);
        else w.u16(trans && a > 0xffff ? AS_TRANS : a);
      }
    }
  }
  return w;
}

function put(w: ByteWriter, flags: number, code: number, value: Uint8Array): void {
  attrHeader(w, flags, code, value.length);
  w.bytes(value);
}

/**
 * Encodes path attributes in type-code order. With `!opts.as4` the 2-octet forms are sent with
 * AS_TRANS and, when needed, AS4_PATH/AS4_AGGREGATOR (RFC 6793 §4.2.2). `mpReach` (IPv4 unicast)
 * is emitted as attribute 14 when given.
 */
export function encodeAttrs(
  w: ByteWriter,
  a: PathAttrs,
  opts: CodecOptions,
  mpReach?: { nextHop: number; nlri: Prefix4[] },
  mpUnreach?: Prefix4[],
): void {
  w.u8(WELL_KNOWN).u8(Attr.ORIGIN).u8(1).u8(a.origin);
  put(w, WELL_KNOWN, Attr.AS_PATH, encodeSegments(a.asPath, opts.as4 ? 4 : 2, true).finish());
  if (a.nextHop !== null && !mpReach) w.u8(WELL_KNOWN).u8(Attr.NEXT_HOP).u8(4).u32(a.nextHop);
  if (a.med !== undefined) w.u8(OPT_NON_TRANS).u8(Attr.MED).u8(4).u32(a.med);
  if (a.localPref !== undefined && opts.ibgp) w.u8(WELL_KNOWN).u8(Attr.LOCAL_PREF).u8(4).u32(a.localPref);
  if (a.atomicAggregate) w.u8(WELL_KNOWN).u8(Attr.ATOMIC_AGGREGATE).u8(0);
  const agg = a.aggregator;
  if (agg) {
    if (opts.as4) w.u8(OPT_TRANS).u8(Attr.AGGREGATOR).u8(8).u32(agg.as).u32(agg.addr);
    else
      w.u8(OPT_TRANS)
        .u8(Attr.AGGREGATOR)
        .u8(6)
        .u16(agg.as > 0xffff ? AS_TRANS : agg.as)
        .u32(agg.addr);
  }
  if (a.communities && a.communities.length) {
    attrHeader(w, OPT_TRANS, Attr.COMMUNITIES, a.communities.length * 4);
    for (const c of a.communities) w.u32(c);
  }
  if (a.originatorId !== undefined && opts.ibgp)
    w.u8(OPT_NON_TRANS).u8(Attr.ORIGINATOR_ID).u8(4).u32(a.originatorId);
  if (a.clusterList && a.clusterList.length && opts.ibgp) {
    attrHeader(w, OPT_NON_TRANS, Attr.CLUSTER_LIST, a.clusterList.length * 4);
    for (const c of a.clusterList) w.u32(c);
  }
  if (mpReach) {
    const v = new ByteWriter(32);
    v.u16(AFI_IPV4).u8(SAFI_UNICAST).u8(4).u32(mpReach.nextHop).u8(0);
    for (const p of mpReach.nlri) encodePrefix(v, p);
    put(w, OPT_NON_TRANS, Attr.MP_REACH_NLRI, v.finish());
  }
  if (mpUnreach) {
    const v = new ByteWriter(32);
    v.u16(AFI_IPV4).u8(SAFI_UNICAST);
    for (const p of mpUnreach) encodePrefix(v, p);
    put(w, OPT_NON_TRANS, Attr.MP_UNREACH_NLRI, v.finish());
  }
  if (a.extCommunities && a.extCommunities.length)
    put(w, OPT_TRANS, Attr.EXTENDED_COMMUNITIES, a.extCommunities);
  if (!opts.as4) {
    const needs4 = a.asPath.some(
      (s) => (s.type === Seg.AS_SEQUENCE || s.type === Seg.AS_SET) && s.asns.some((x) => x > 0xffff),
    );
    if (needs4) {
      const plain = a.asPath.filter((s) => s.type === Seg.AS_SEQUENCE || s.type === Seg.AS_SET);
      put(w, OPT_TRANS, Attr.AS4_PATH, encodeSegments(plain, 4, false).finish());
    }
    if (agg && agg.as > 0xffff) w.u8(OPT_TRANS).u8(Attr.AS4_AGGREGATOR).u8(8).u32(agg.as).u32(agg.addr);
  }
  if (a.largeCommunities && a.largeCommunities.length) {
    attrHeader(w, OPT_TRANS, Attr.LARGE_COMMUNITY, a.largeCommunities.length * 4);
    for (const c of a.largeCommunities) w.u32(c);
  }
  if (a.unknown) {
    for (const u of a.unknown) put(w, u.flags | Flag.PARTIAL, u.code, u.value);
  }
}
