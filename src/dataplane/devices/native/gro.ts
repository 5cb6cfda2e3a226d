// The gather write of receive-side coalescing (native/gro.c): one writev() per output frame, the
// pieces (first frame with its virtio_net_hdr, then each later segment's payload) taken straight
// from the arena, all output frames of a TAP's round in one native call. The decision of what to
// merge, and the header rewrite, stay in TypeScript (devices/gro.ts).
//
// What flows through it: frames of the caller's arena, to a TAP fd (IFF_VNET_HDR). Who owns the
// buffers: the calling thread owns the arena and the piece/status arrays; the addon touches them only
// during the call. Which thread runs it: the dataplane worker that owns the batch; never blocks, no
// allocation. Syscall errors come back in status[] (as writeBatchStatus); wrong arguments throw.
import { arenaView } from './batch.js';
import type { NativeBinding } from './binding.js';
import { nb } from './load.js';
import type { Arena } from './types.js';

/** Most pieces (iovecs) one output frame may have (GRO_MAX_PIECES in native/gro.c). */
export const GRO_MAX_PIECES = 64;

interface GroBinding {
  writeGro(
    fd: number,
    arena: Uint8Array,
    pieceOffs: Uint32Array,
    pieceLens: Uint32Array,
    groupPieces: Uint8Array,
    ngroups: number,
    status: Int32Array,
  ): number;
}

/**
 * Writes `ngroups` output frames to `fd`: frame g is the next groupPieces[g] (1..GRO_MAX_PIECES)
 * pieces arena[pieceOffs[p], +pieceLens[p]) concatenated, one writev() each. status[g] for every
 * g < ngroups: 0 accepted, -errno refused (that frame only), -EAGAIN not tried (the fd was full), or
 * the -errno of a broken fd (every frame from the failing one on). Returns the frames accepted.
 */
export function writeGro(
  fd: number,
  arena: Arena,
  pieceOffs: Uint32Array,
  pieceLens: Uint32Array,
  groupPieces: Uint8Array,
  ngroups: number,
  status: Int32Array,
): number {
  const b = nb() as NativeBinding & GroBinding;
  return b.writeGro(fd, arenaView(arena), pieceOffs, pieceLens, groupPieces, ngroups, status);
}
