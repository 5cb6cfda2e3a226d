// Bulk byte work in the addon (native/offload.c), fused in one pass: TCP segmentation of GSO
// super-frames (optionally with the IPIP outer header), checksum sums, and batched TCP/UDP checksum
// verification or completion. Every decision about a packet stays with the caller; these only move
// and sum bytes, byte for byte as the TypeScript reference (graph/nodes/segment.ts, wire/tcp.ts,
// wire/udp.ts) does.
//
// What flows through it: packet bytes of the caller's arena (a Uint8Array over the worker's
// SharedArrayBuffer, or the SharedArrayBuffer itself). Who owns the buffers: the calling thread; the
// addon touches only the ranges named, during the call. Which thread runs it: a dataplane worker
// (hot path: no allocation, no system call). Packets that are not what a function expects come back
// as a negative result or a per-packet code, never as a throw; wrong arguments throw
// TypeError/RangeError.
import { arenaView } from './batch.js';
import { nb } from './load.js';
import type { Arena, IpipOuter } from './types.js';

/** segmentTcp4: the frame is not Ethernet + unfragmented IPv4 + TCP, or its lengths lie. */
export const SEG_ERR_HEADERS = -1;
/** segmentTcp4: the super-frame needs more than maxOut segments. */
export const SEG_ERR_ROOM = -2;

/** l4Csum4 per-packet results. */
export const CSUM_OK = 0;
export const CSUM_BAD = 1;
/** a UDP datagram without a checksum (0): nothing to verify (verify mode only) */
export const CSUM_NONE = 2;
/** not unfragmented IPv4 carrying TCP or UDP, or its lengths lie */
export const CSUM_MALFORMED = 3;

/**
 * Cuts the TCP/IPv4 GSO super-frame at arena[srcOff, srcOff + srcLen) (Ethernet + IPv4 + TCP, as
 * `segmentTcp4` in graph/nodes/segment.ts receives it: its TCP checksum field is ignored) into
 * segments of at most `mss` payload bytes, in one pass per segment: headers copied, IPv4 total length,
 * identification + k and header checksum, TCP sequence + k·mss, FIN/PSH only on the last and CWR only
 * on the first segment, and the full TCP checksum summed while the payload is copied.
 *
 * Segment k goes to `outOffs[k] + outerLen` (room left in front for an outer header: 20 for IPIP,
 * 50 for VXLAN + its Ethernet); `outLens[k]` = outerLen + the segment's length, i.e. the frame from
 * outOffs[k]. Segment 0 may be written in place (`outOffs[0] + outerLen === srcOff`); every other
 * output must lie outside the source frame (RangeError otherwise) and outputs must not overlap each
 * other. With `outer` (outerLen must be 20) each segment leaves as an IPIP packet: outer IPv4 at
 * outOffs[k] + 14 (id + k, DF and by default TOS copied from the inner), overwriting the inner
 * Ethernet header, and `outer.eth` copied to outOffs[k] (what ipip4-encap does, fused).
 *
 * Returns the number of segments, SEG_ERR_HEADERS or SEG_ERR_ROOM (count and drop).
 */
export function segmentTcp4(
  arena: Arena,
  srcOff: number,
  srcLen: number,
  mss: number,
  outOffs: Uint32Array,
  outLens: Uint32Array,
  maxOut: number,
  outerLen = 0,
  outer?: IpipOuter,
): number {
  return nb().segmentTcp4(arenaView(arena), srcOff, srcLen, mss, outOffs, outLens, maxOut, outerLen, outer);
}

/**
 * The one's-complement sum of arena[off, off + len) as big-endian 16-bit words (an odd last byte padded
 * with zero) plus `seed`, folded to 16 bits, not complemented: `onesSum` of wire/checksum.ts, fast.
 */
export function csumPartial(arena: Arena, off: number, len: number, seed = 0): number {
  return nb().csumPartial(arenaView(arena), off, len, seed);
}

/**
 * Verifies (or, with `write`, computes and stores) the TCP or UDP checksum of `count` IPv4 packets:
 * packet i is the IPv4 header at ipOffs[i] with lens[i] bytes available from there. `results[i]` gets
 * CSUM_OK, CSUM_BAD, CSUM_NONE (UDP checksum 0, verify mode) or CSUM_MALFORMED. Returns how many are
 * CSUM_OK. For GRO: verify every segment to be merged unless the kernel already did (virtio
 * DATA_VALID); with `write`, complete partial checksums (NEEDS_CSUM) of long payloads.
 */
export function l4Csum4(
  arena: Arena,
  ipOffs: Uint32Array,
  lens: Uint32Array,
  count: number,
  results: Uint8Array,
  write = false,
): number {
  return nb().l4Csum4(arenaView(arena), ipOffs, lens, count, results, write);
}

/**
 * memmove of lens[i] bytes from srcs[i] to dsts[i] within the arena, for i < count, in order, in one
 * call (input GRO's payload copies: copyWithin over a SharedArrayBuffer is V8's slow builtin).
 */
export function moveRanges(
  arena: Arena,
  dsts: Uint32Array,
  srcs: Uint32Array,
  lens: Uint32Array,
  count: number,
): void {
  nb().moveRanges(arenaView(arena), dsts, srcs, lens, count);
}
