// calitap_io: the only native code in calitap. Module init: every concern registers its functions and
// constants on the exports object (tap.c, sockets.c, batch_io.c, poll.c, offload.c, uring.c; netns.c and
// common.c are helpers). The addon does system calls and bulk byte work (segmentation, checksums);
// every decision about a packet lives in TypeScript
// (src/dataplane/devices/native/ documents the JS API).
//
// What flows through it: Ethernet frames (TAP queues, AF_PACKET sockets) and datagrams (UDP, raw IP)
// moved between file descriptors and a worker's packet arena (a Uint8Array view over the worker's
// SharedArrayBuffer). Who owns the buffers: the calling JS thread; we only touch the arena bytes that
// the caller's offsets/lens name, during the call. Which thread runs it: any JS thread (main or
// worker); the module is context-aware (NAPI_MODULE_INIT) and has no mutable global state, so every
// worker gets its own instance. Blocking calls (poll, epollWait) block only the calling thread.
#include "common.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>

// adviseHugePages(u8) -> bytes advised: madvise(MADV_HUGEPAGE) over the 2 MiB-aligned part of a typed
// array's memory (a Uint8Array over a big SharedArrayBuffer: the NAT table), so that pages faulted in
// from now on may be transparent huge pages when the kernel's THP mode is "madvise" (random lookups
// over tens of MiB then cost far fewer TLB misses). 0 when nothing is aligned or the kernel refused:
// a hint only, never an error.
static napi_value AdviseHugePages(napi_env env, napi_callback_info info) {
  args_t a;
  uint8_t *d;
  size_t len;
  if (!get_args(env, info, "adviseHugePages", &a) || !arg_arena(&a, 0, &d, &len)) return NULL;
  const uintptr_t huge = (uintptr_t)2 << 20;
  uintptr_t start = ((uintptr_t)d + huge - 1) & ~(huge - 1);
  uintptr_t end = ((uintptr_t)d + len) & ~(huge - 1);
  double advised = 0;
#ifdef MADV_HUGEPAGE
  if (end > start && madvise((void *)start, end - start, MADV_HUGEPAGE) == 0) advised = (double)(end - start);
#endif
  napi_value v;
  napi_create_double(env, advised, &v);
  return v;
}

// errnoName(errno) -> "ENODEV" (the sign is ignored, so a status of -19 works too); "EUNKNOWN" for
// numbers this addon does not name.
static napi_value ErrnoName(napi_env env, napi_callback_info info) {
  args_t a;
  int64_t e;
  if (!get_args(env, info, "errnoName", &a) || !arg_int(&a, 0, "errno", -4095, 4095, &e)) return NULL;
  napi_value v;
  napi_create_string_utf8(env, errno_name((int)(e < 0 ? -e : e)), NAPI_AUTO_LENGTH, &v);
  return v;
}

NAPI_MODULE_INIT() {
  napi_value c;
  if (napi_create_object(env, &c) != napi_ok) return NULL;
  static const fn_entry fns[] = {{"errnoName", ErrnoName}, {"adviseHugePages", AdviseHugePages}};
  if (!export_fns(env, exports, fns, 2) || !tap_init(env, exports, c) || !sockets_init(env, exports, c) ||
      !batch_init(env, exports, c) || !poll_init(env, exports, c) || !offload_init(env, exports, c) ||
      !gro_init(env, exports, c) || // gro_init: GRO hook
      !uring_init(env, exports, c))
    return NULL;
  if (napi_set_named_property(env, exports, "constants", c) != napi_ok) return NULL;
  return exports;
}
