// calitap_io offload: the bulk byte work of TCP segmentation and checksums, fused in one pass (issue 9:
// "bulk byte work belongs in the addon, packet decisions stay in TypeScript").
// - segmentTcp4: cuts a TCP/IPv4 GSO super-frame into MSS-sized segments written to slots the caller
//   chose, copying each payload slice while summing it for the TCP checksum, and optionally writes an
//   IPIP outer header in front of each segment (fused segment + encapsulate).
// - csumPartial: the one's-complement sum of a byte range (to seed or finish a checksum in JS).
// - l4Csum4: verifies (GRO: before merging segments) or writes the TCP/UDP checksum of many IPv4
//   packets per call.
// Same results, byte for byte, as the TypeScript reference (src/dataplane/graph/nodes/segment.ts,
// src/dataplane/wire/{tcp,udp}.ts): test/offload/ compares them on random packets.
//
// What flows through it: packet bytes of the caller's arena. Who owns the buffers: the calling JS
// thread; every range is checked against the arena before anything is touched, and nothing is kept.
// Which thread runs it: any (normally a dataplane worker); no system calls, no allocation.
// A packet that is not what the function expects is reported with a negative result (the caller counts
// and drops it); only wrong arguments (types, ranges outside the arena) throw.
#include "common.h"
#include "csum.h"

#define ETH_HLEN 14
#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

// segmentTcp4 results
#define SEG_ERR_HEADERS -1 // not Ethernet + IPv4 (unfragmented) + TCP, or its lengths lie
#define SEG_ERR_ROOM -2    // more segments than maxOut

// l4Csum4 per-packet results
#define CSUM_OK 0        // verified (or written)
#define CSUM_BAD 1       // does not verify
#define CSUM_NONE 2      // UDP without a checksum (0): nothing to verify
#define CSUM_MALFORMED 3 // not IPv4 TCP/UDP (unfragmented), or lengths lie

typedef struct {
  bool on;
  uint32_t src, dst; // host order
  int64_t ttl, tos, id;
  bool has_tos;
  const uint8_t *eth; // 14 bytes copied in front, or NULL
} ipip_outer;

// options.outer of segmentTcp4: { src, dst, ttl = 64, tos = inner's, id = 0, eth?: Uint8Array(14) }
static bool parse_outer(args_t *a, size_t i, ipip_outer *o) {
  napi_value obj;
  memset(o, 0, sizeof *o);
  if (!arg_opts(a, i, &obj)) return false;
  if (!obj) return true;
  o->on = true;
  int64_t src, dst;
  bool has_src, has_dst, has_id, has_ttl, has_eth;
  if (!opt_int(a, obj, "src", 0, UINT32_MAX, 0, &src, &has_src) ||
      !opt_int(a, obj, "dst", 0, UINT32_MAX, 0, &dst, &has_dst) ||
      !opt_int(a, obj, "ttl", 1, 255, 64, &o->ttl, &has_ttl) ||
      !opt_int(a, obj, "tos", 0, 255, 0, &o->tos, &o->has_tos) ||
      !opt_int(a, obj, "id", 0, 0xffff, 0, &o->id, &has_id))
    return false;
  if (!has_src || !has_dst) {
    throw_type(a->env, "%s: outer.src and outer.dst (IPv4 addresses as u32) are required", a->fn);
    return false;
  }
  o->src = (uint32_t)src;
  o->dst = (uint32_t)dst;
  napi_value v;
  if (!opt_prop(a->env, a->fn, obj, "eth", &v, &has_eth)) return false;
  if (has_eth) {
    void *d;
    size_t n;
    if (!value_typed(a->env, a->fn, v, "outer.eth", napi_uint8_array, "Uint8Array", &d, &n)) return false;
    if (n != ETH_HLEN) {
      throw_range(a->env, "%s: outer.eth must hold 14 bytes, got %zu", a->fn, n);
      return false;
    }
    o->eth = d;
  }
  return true;
}

// The 20-byte IPIP outer header (RFC 2003 §3.1) at p for an inner packet of inner_len bytes, as
// src/dataplane/wire/ipip.ts emitIpipOuter writes it: DF and (by default) TOS copied from the inner.
static void write_ipip(uint8_t *p, const ipip_outer *o, const uint8_t *inner_ip, size_t inner_len, uint16_t id) {
  p[0] = 0x45;
  p[1] = o->has_tos ? (uint8_t)o->tos : inner_ip[1];
  wr16(p + 2, (uint16_t)(20 + inner_len));
  wr16(p + 4, id);
  p[6] = inner_ip[6] & 0x40; // DF
  p[7] = 0;
  p[8] = (uint8_t)o->ttl;
  p[9] = 4;
  wr32(p + 12, o->src);
  wr32(p + 16, o->dst);
  wr16(p + 10, ip4_header_csum(p, 20));
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) { return a < b + blen && b < a + alen; }

// segmentTcp4(arena, srcOff, srcLen, mss, outOffs: Uint32Array, outLens: Uint32Array, maxOut, outerLen,
//             outer?) -> segments written, or SEG_ERR_HEADERS / SEG_ERR_ROOM.
// Segment k (Ethernet + IPv4 + TCP + its payload slice) is written at outOffs[k] + outerLen and
// outLens[k] = outerLen + its length: the frame including the room left in front for an outer header.
// Segment 0 may be written in place (outOffs[0] + outerLen == srcOff); every other output must lie
// outside the source frame. With `outer` (outerLen must be 20) each segment becomes an IPIP frame: the
// outer IPv4 header at outOffs[k] + 14 (id + k), overwriting the inner Ethernet header, and
// outer.eth copied to outOffs[k].
static napi_value SegmentTcp4(napi_env env, napi_callback_info info) {
  args_t a;
  uint8_t *arena;
  size_t arena_len, noffs, nlens;
  uint32_t *outs, *lens;
  int64_t src_off, src_len, mss, max_out, outer_len;
  ipip_outer outer;
  if (!get_args(env, info, "segmentTcp4", &a) || !arg_arena(&a, 0, &arena, &arena_len) ||
      !arg_int(&a, 1, "srcOff", 0, UINT32_MAX, &src_off) || !arg_int(&a, 2, "srcLen", 0, UINT32_MAX, &src_len) ||
      !arg_int(&a, 3, "mss", 1, 0xffff, &mss) ||
      !arg_typed(&a, 4, "outOffs", napi_uint32_array, "Uint32Array", (void **)&outs, &noffs) ||
      !arg_typed(&a, 5, "outLens", napi_uint32_array, "Uint32Array", (void **)&lens, &nlens) ||
      !arg_int(&a, 6, "maxOut", 0, UINT32_MAX, &max_out) || !arg_int(&a, 7, "outerLen", 0, 256, &outer_len) ||
      !parse_outer(&a, 8, &outer))
    return NULL;
  if ((uint64_t)src_off + (uint64_t)src_len > arena_len) {
    throw_range(env, "segmentTcp4: source [%lld, +%lld) is outside the arena (%zu bytes)", (long long)src_off,
                (long long)src_len, arena_len);
    return NULL;
  }
  if ((size_t)max_out > noffs || (size_t)max_out > nlens) {
    throw_range(env, "segmentTcp4: maxOut %lld exceeds the length of outOffs/outLens", (long long)max_out);
    return NULL;
  }
  if (outer.on && outer_len != 20) {
    throw_range(env, "segmentTcp4: an IPIP outer header needs outerLen 20, got %lld", (long long)outer_len);
    return NULL;
  }
  uint8_t *f = arena + src_off;
  size_t flen = (size_t)src_len;
  if (flen < ETH_HLEN + 20 || rd16(f + 12) != 0x0800) return make_int(env, SEG_ERR_HEADERS);
  uint8_t *ip = f + ETH_HLEN;
  size_t ihl = (size_t)(ip[0] & 15) * 4;
  size_t total = rd16(ip + 2);
  if ((ip[0] >> 4) != 4 || ihl < 20 || ip[9] != 6 || (rd16(ip + 6) & 0x3fff) != 0 || total < ihl + 20 ||
      ETH_HLEN + total > flen)
    return make_int(env, SEG_ERR_HEADERS);
  uint8_t *tcp = ip + ihl;
  size_t thl = (size_t)(tcp[12] >> 4) * 4;
  if (thl < 20 || ihl + thl > total) return make_int(env, SEG_ERR_HEADERS);
  size_t hdrs = ETH_HLEN + ihl + thl, payload = total - ihl - thl, m = (size_t)mss;
  size_t n = payload == 0 ? 1 : (payload + m - 1) / m;
  if (n > (size_t)max_out) return make_int(env, SEG_ERR_ROOM);
  size_t olen = (size_t)outer_len;
  uint64_t src_end = (uint64_t)src_off + ETH_HLEN + total;
  for (size_t k = 0; k < n; k++) {
    size_t chunk = k + 1 < n ? m : payload - (n - 1) * m;
    uint64_t o = outs[k], need = olen + hdrs + chunk;
    if (o + need > arena_len) {
      throw_range(env, "segmentTcp4: output %zu [%llu, +%llu) is outside the arena (%zu bytes)", k,
                  (unsigned long long)o, (unsigned long long)need, arena_len);
      return NULL;
    }
    bool in_place = k == 0 && o + olen == (uint64_t)src_off;
    if (!in_place && overlaps(o, need, (uint64_t)src_off, src_end - (uint64_t)src_off)) {
      throw_range(env, "segmentTcp4: output %zu [%llu, +%llu) overlaps the source frame", k,
                  (unsigned long long)o, (unsigned long long)need);
      return NULL;
    }
  }
  uint16_t id0 = rd16(ip + 4);
  uint32_t seq0 = rd32(tcp + 4);
  uint8_t flags0 = tcp[13];
  // Later segments first: they copy from the source before segment 0 (maybe in place) rewrites it.
  for (size_t kk = n; kk-- > 0;) {
    size_t chunk = kk + 1 < n ? m : payload - (n - 1) * m;
    uint8_t *d = arena + outs[kk] + olen;
    uint64_t sum;
    if (d == f) {
      sum = csum_bytes(f + hdrs, chunk, 0);
    } else {
      // with an IPIP outer header the inner Ethernet header is overwritten anyway: skip it
      size_t from = outer.on ? ETH_HLEN : 0;
      memcpy(d + from, f + from, hdrs - from);
      sum = csum_copy(d + hdrs, f + hdrs + kk * m, chunk, 0);
    }
    uint8_t *dip = d + ETH_HLEN, *dtcp = dip + ihl;
    wr16(dip + 2, (uint16_t)(ihl + thl + chunk));
    wr16(dip + 4, (uint16_t)(id0 + kk));
    wr16(dip + 10, ip4_header_csum(dip, ihl));
    wr32(dtcp + 4, seq0 + (uint32_t)(kk * m));
    uint8_t fl = flags0;
    if (kk + 1 < n) fl &= (uint8_t)~(TCP_FIN | TCP_PSH);
    if (kk > 0) fl &= (uint8_t)~TCP_CWR;
    dtcp[13] = fl;
    dtcp[16] = dtcp[17] = 0;
    sum = csum_bytes(dtcp, thl, sum);
    sum = csum_add64(sum, csum_pseudo4(dip, 6, (uint16_t)(thl + chunk)));
    wr16(dtcp + 16, (uint16_t)~csum_fold(sum));
    lens[kk] = (uint32_t)(olen + hdrs + chunk);
    if (outer.on) {
      uint8_t *p = arena + outs[kk];
      write_ipip(p + ETH_HLEN, &outer, dip, ihl + thl + chunk, (uint16_t)(outer.id + kk));
      if (outer.eth) memcpy(p, outer.eth, ETH_HLEN);
    }
  }
  return make_int(env, (int64_t)n);
}

// csumPartial(arena, off, len, seed = 0) -> the folded one's-complement sum (not complemented) of
// arena[off, off + len) as big-endian 16-bit words plus seed, like Linux csum_partial; an odd last byte
// is padded with zero.
static napi_value CsumPartial(napi_env env, napi_callback_info info) {
  args_t a;
  uint8_t *arena;
  size_t arena_len;
  int64_t off, len, seed;
  if (!get_args(env, info, "csumPartial", &a) || !arg_arena(&a, 0, &arena, &arena_len) ||
      !arg_int(&a, 1, "off", 0, UINT32_MAX, &off) || !arg_int(&a, 2, "len", 0, UINT32_MAX, &len) ||
      !arg_int_opt(&a, 3, "seed", 0, 0xffff, 0, &seed))
    return NULL;
  if ((uint64_t)off + (uint64_t)len > arena_len) {
    throw_range(env, "csumPartial: [%lld, +%lld) is outside the arena (%zu bytes)", (long long)off,
                (long long)len, arena_len);
    return NULL;
  }
  uint64_t acc = csum_bytes(arena + off, (size_t)len, csum_be16((uint16_t)seed));
  return make_int(env, csum_fold(acc));
}

// One packet of l4Csum4: the IPv4 header at ip with avail bytes from there on.
static int l4_csum_one(uint8_t *ip, size_t avail, bool write) {
  if (avail < 20) return CSUM_MALFORMED;
  size_t ihl = (size_t)(ip[0] & 15) * 4, total = rd16(ip + 2);
  uint8_t proto = ip[9];
  if ((ip[0] >> 4) != 4 || ihl < 20 || total < ihl || total > avail || (rd16(ip + 6) & 0x3fff) != 0)
    return CSUM_MALFORMED;
  uint8_t *l4 = ip + ihl;
  size_t l4len = total - ihl, field;
  if (proto == 6) {
    if (l4len < 20) return CSUM_MALFORMED;
    field = 16;
  } else if (proto == 17) {
    if (l4len < 8) return CSUM_MALFORMED;
    size_t ulen = rd16(l4 + 4);
    if (ulen < 8 || ulen > l4len) return CSUM_MALFORMED;
    l4len = ulen; // UDP sums (and its pseudo header counts) the UDP length, not the IP payload
    field = 6;
    if (!write && l4[6] == 0 && l4[7] == 0) return CSUM_NONE;
  } else {
    return CSUM_MALFORMED;
  }
  uint64_t pseudo = csum_pseudo4(ip, proto, (uint16_t)l4len);
  if (!write) return csum_fold(csum_bytes(l4, l4len, pseudo)) == 0xffff ? CSUM_OK : CSUM_BAD;
  l4[field] = l4[field + 1] = 0;
  uint16_t c = (uint16_t)~csum_fold(csum_bytes(l4, l4len, pseudo));
  if (proto == 17 && c == 0) c = 0xffff; // RFC 768: a computed 0 is sent as all ones
  wr16(l4 + field, c);
  return CSUM_OK;
}

// l4Csum4(arena, ipOffs: Uint32Array, lens: Uint32Array, count, results: Uint8Array, write = false)
//   -> packets whose result is CSUM_OK. Packet i is the IPv4 header at ipOffs[i] with lens[i] bytes
//   available from there; results[i] = CSUM_OK / CSUM_BAD / CSUM_NONE / CSUM_MALFORMED. With write the
//   TCP/UDP checksum is computed and stored instead (a partial checksum completed, or a fresh one).
static napi_value L4Csum4(napi_env env, napi_callback_info info) {
  args_t a;
  uint8_t *arena, *res;
  size_t arena_len, noffs, nlens, nres;
  uint32_t *offs, *lens;
  int64_t count;
  bool write = false;
  if (!get_args(env, info, "l4Csum4", &a) || !arg_arena(&a, 0, &arena, &arena_len) ||
      !arg_typed(&a, 1, "ipOffs", napi_uint32_array, "Uint32Array", (void **)&offs, &noffs) ||
      !arg_typed(&a, 2, "lens", napi_uint32_array, "Uint32Array", (void **)&lens, &nlens) ||
      !arg_int(&a, 3, "count", 0, UINT32_MAX, &count) ||
      !arg_typed(&a, 4, "results", napi_uint8_array, "Uint8Array", (void **)&res, &nres) ||
      (!is_nullish(&a, 5) && !arg_bool(&a, 5, "write", &write)))
    return NULL;
  size_t n = (size_t)count;
  if (n > noffs || n > nlens || n > nres) {
    throw_range(env, "l4Csum4: count %zu exceeds the length of ipOffs/lens/results", n);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    if ((uint64_t)offs[i] + lens[i] > arena_len) {
      throw_range(env, "l4Csum4: packet %zu [%u, +%u) is outside the arena (%zu bytes)", i, offs[i], lens[i],
                  arena_len);
      return NULL;
    }
  }
  int64_t ok = 0;
  for (size_t i = 0; i < n; i++) {
    res[i] = (uint8_t)l4_csum_one(arena + offs[i], lens[i], write);
    ok += res[i] == CSUM_OK;
  }
  return make_int(env, ok);
}

// moveRanges(arena, dsts: Uint32Array, srcs: Uint32Array, lens: Uint32Array, count) -> undefined.
//   memmove of lens[i] bytes from srcs[i] to dsts[i] within the arena, i = 0..count-1 in order: the
//   payload copies of one read's input GRO (gro-input.ts) in one call. A typed array's copyWithin over
//   a SharedArrayBuffer takes V8's slow builtin (relaxed atomic copies): ~14 % of a receiving worker.
static napi_value MoveRanges(napi_env env, napi_callback_info info) {
  args_t a;
  uint8_t *arena;
  size_t arena_len, nd, ns, nl;
  uint32_t *dsts, *srcs, *lens;
  int64_t count;
  if (!get_args(env, info, "moveRanges", &a) || !arg_arena(&a, 0, &arena, &arena_len) ||
      !arg_typed(&a, 1, "dsts", napi_uint32_array, "Uint32Array", (void **)&dsts, &nd) ||
      !arg_typed(&a, 2, "srcs", napi_uint32_array, "Uint32Array", (void **)&srcs, &ns) ||
      !arg_typed(&a, 3, "lens", napi_uint32_array, "Uint32Array", (void **)&lens, &nl) ||
      !arg_int(&a, 4, "count", 0, UINT32_MAX, &count))
    return NULL;
  size_t n = (size_t)count;
  if (n > nd || n > ns || n > nl) {
    throw_range(env, "moveRanges: count %zu exceeds the length of dsts/srcs/lens", n);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    if ((uint64_t)dsts[i] + lens[i] > arena_len || (uint64_t)srcs[i] + lens[i] > arena_len) {
      throw_range(env, "moveRanges: range %zu (%u -> %u, %u bytes) is outside the arena (%zu bytes)", i, srcs[i],
                  dsts[i], lens[i], arena_len);
      return NULL;
    }
  }
  for (size_t i = 0; i < n; i++) memmove(arena + dsts[i], arena + srcs[i], lens[i]);
  return NULL;
}

bool offload_init(napi_env env, napi_value exports, napi_value c) {
  static const fn_entry fns[] = {
      {"segmentTcp4", SegmentTcp4},
      {"csumPartial", CsumPartial},
      {"l4Csum4", L4Csum4},
      {"moveRanges", MoveRanges},
  };
  export_int(env, c, "SEG_ERR_HEADERS", SEG_ERR_HEADERS);
  export_int(env, c, "SEG_ERR_ROOM", SEG_ERR_ROOM);
  export_int(env, c, "CSUM_OK", CSUM_OK);
  export_int(env, c, "CSUM_BAD", CSUM_BAD);
  export_int(env, c, "CSUM_NONE", CSUM_NONE);
  export_int(env, c, "CSUM_MALFORMED", CSUM_MALFORMED);
  return export_fns(env, exports, fns, sizeof fns / sizeof fns[0]);
}
