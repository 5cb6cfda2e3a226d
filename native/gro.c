// calitap_io gro: the bulk byte work of receive-side coalescing (GRO) into a TAP. TypeScript decides
// which TCP segments of one flow make one super-frame and rewrites the first segment's headers
// (src/dataplane/devices/gro.ts); this only gathers the pieces: one writev() per output frame,
// iovecs = the first frame (virtio_net_hdr + headers + its payload) + every later segment's payload,
// straight from the arena (no copy in JS, none here: the kernel copies once into its skb).
//
// What flows through it: frames of the caller's arena, to a TAP fd opened with IFF_VNET_HDR. Who owns
// the buffers: the calling JS thread; every piece is checked against the arena before the first write
// and nothing is kept. Which thread runs it: the dataplane worker that owns the batch; the fd is
// non-blocking, so it never blocks. System call errors never throw: they land in status[].
#include "common.h"

#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>

// Most pieces (iovecs) one output frame may have: TypeScript caps a super-frame at GRO_MAX_SEGS
// segments (gro.ts), each one piece.
#define GRO_MAX_PIECES 64

// writeGro(fd, arena, pieceOffs: Uint32Array, pieceLens: Uint32Array, groupPieces: Uint8Array,
//          ngroups, status: Int32Array) -> output frames the kernel accepted.
//   Output frame g is the concatenation of the next groupPieces[g] pieces (pieceOffs/pieceLens, in
//   order), written with one writev(). status[g] for EVERY g < ngroups, as writeBatchStatus: 0 =
//   accepted, -errno refused (that frame only: ENOBUFS, EINVAL...), -EAGAIN not tried (the fd was full)
//   or -errno of a broken fd (every frame from the failing one on). Wrong arguments throw.
static napi_value WriteGro(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  uint8_t *arena, *gp;
  size_t arena_len, noffs, nlens, ngp, nst;
  uint32_t *offs, *lens;
  int32_t *st;
  int64_t ngroups;
  if (!get_args(env, info, "writeGro", &a) || !arg_fd(&a, 0, &fd) || !arg_arena(&a, 1, &arena, &arena_len) ||
      !arg_typed(&a, 2, "pieceOffs", napi_uint32_array, "Uint32Array", (void **)&offs, &noffs) ||
      !arg_typed(&a, 3, "pieceLens", napi_uint32_array, "Uint32Array", (void **)&lens, &nlens) ||
      !arg_typed(&a, 4, "groupPieces", napi_uint8_array, "Uint8Array", (void **)&gp, &ngp) ||
      !arg_int(&a, 5, "ngroups", 0, UINT32_MAX, &ngroups) ||
      !arg_typed(&a, 6, "status", napi_int32_array, "Int32Array", (void **)&st, &nst))
    return NULL;
  size_t ng = (size_t)ngroups;
  if (ng > ngp || ng > nst) {
    throw_range(env, "writeGro: ngroups %zu exceeds the length of groupPieces/status", ng);
    return NULL;
  }
  size_t np = 0;
  for (size_t g = 0; g < ng; g++) {
    if (gp[g] == 0 || gp[g] > GRO_MAX_PIECES) {
      throw_range(env, "writeGro: group %zu has %u pieces (1..%d)", g, gp[g], GRO_MAX_PIECES);
      return NULL;
    }
    np += gp[g];
  }
  if (np > noffs || np > nlens) {
    throw_range(env, "writeGro: the groups name %zu pieces, pieceOffs/pieceLens hold %zu/%zu", np, noffs, nlens);
    return NULL;
  }
  for (size_t p = 0; p < np; p++) {
    if ((uint64_t)offs[p] + lens[p] > arena_len) {
      throw_range(env, "writeGro: piece %zu [%u, +%u) is outside the arena (%zu bytes)", p, offs[p], lens[p],
                  arena_len);
      return NULL;
    }
  }
  struct iovec iov[GRO_MAX_PIECES];
  size_t p = 0, g = 0, ok = 0;
  int stop = 0;
  for (; g < ng; g++) {
    size_t cnt = gp[g];
    for (size_t k = 0; k < cnt; k++) {
      iov[k].iov_base = arena + offs[p + k];
      iov[k].iov_len = lens[p + k];
    }
    p += cnt;
    ssize_t r;
    do r = writev(fd, iov, (int)cnt);
    while (r < 0 && errno == EINTR);
    if (r >= 0) {
      st[g] = 0;
      ok++;
      continue;
    }
    int err = errno == EWOULDBLOCK ? EAGAIN : errno;
    if (!tx_drop_errno(err)) {
      stop = err;
      break;
    }
    st[g] = -err;
  }
  for (; g < ng; g++) st[g] = -stop;
  return make_int(env, (int64_t)ok);
}

bool gro_init(napi_env env, napi_value exports, napi_value c) {
  static const fn_entry fns[] = {{"writeGro", WriteGro}};
  export_int(env, c, "GRO_MAX_PIECES", GRO_MAX_PIECES);
  return export_fns(env, exports, fns, sizeof fns / sizeof fns[0]);
}
