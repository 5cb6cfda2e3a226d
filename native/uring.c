// calitap_io io_uring batched I/O: readBatchUring / writeBatchUring move a batch of TAP frames with
// ONE io_uring_enter() per batch (up to the ring's size) instead of one read()/write() per frame. Raw
// system calls (no liburing): io_uring_setup, mmap of the SQ/CQ rings and SQE array, io_uring_enter.
//
// What flows through it: Ethernet frames (with the virtio_net_hdr in front when the TAP has one: the
// caller's offsets already point at the header, exactly as for readBatch/writeBatchStatus) copied by
// the kernel between a non-blocking fd and arena[offsets[i] ..]. Who owns the buffers: the calling JS
// thread owns the arena and every array; the kernel touches them only inside io_uring_enter (every
// request is complete, or failed, before the call returns). The ring belongs to the JS thread that
// created it (uringCreate returns an external handle; uringClose or GC frees it): one ring per worker,
// no mutable globals. Which thread runs it: the ring's creator (IORING_SETUP_SINGLE_ISSUER when the
// kernel has it); never blocks on I/O: the fds are O_NONBLOCK, so a read with no frame pending
// completes at once with -EAGAIN; no allocation per call.
//
// Order: the kernel issues the SQEs of one io_uring_enter in submission order, each completing inline
// (TAP queues support non-blocking io_uring I/O), so frames read are in arrival order; user_data = the
// frame's index puts every completion back in its place whatever the CQ order. A read that found no
// frame (-EAGAIN) may be followed by one that got a frame arriving just then: such frames are moved
// down (memmove) so the frames returned are slots [0, n) in order and none is lost.
#include "common.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

// Most requests one io_uring_enter carries (the ring's SQ size; larger batches take more calls).
#define URING_MAX 256

typedef struct {
  int fd;
  unsigned sq_entries, sq_mask, cq_mask;
  unsigned *sq_tail, *sq_array, *cq_head, *cq_tail;
  struct io_uring_sqe *sqes;
  struct io_uring_cqe *cqes;
  void *sq_map, *cq_map;
  size_t sq_map_len, cq_map_len, sqes_len;
  int32_t res[URING_MAX]; // per-call results by index (the ring's own scratch: no allocation per call)
} ring_t;

static int sys_setup(unsigned entries, struct io_uring_params *p) {
  return (int)syscall(__NR_io_uring_setup, entries, p);
}
static int sys_enter(int fd, unsigned submit, unsigned min_complete, unsigned flags) {
  return (int)syscall(__NR_io_uring_enter, fd, submit, min_complete, flags, NULL, 0);
}

static void ring_free(ring_t *r) {
  if (r->sqes) munmap(r->sqes, r->sqes_len);
  if (r->cq_map && r->cq_map != r->sq_map) munmap(r->cq_map, r->cq_map_len);
  if (r->sq_map) munmap(r->sq_map, r->sq_map_len);
  if (r->fd >= 0) close(r->fd);
  r->fd = -1;
  r->sqes = NULL;
  r->sq_map = r->cq_map = NULL;
}

static void ring_finalize(napi_env env, void *data, void *hint) {
  ring_t *r = data;
  ring_free(r);
  free(r);
}

// Sets up a ring of `entries` SQEs; 0, or an errno with *sys naming the failing call.
static int ring_init(ring_t *r, unsigned entries, const char **sys) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  // one submitter thread, completions' task work run only when we wait: the cheapest mode
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  r->fd = sys_setup(entries, &p);
  if (r->fd < 0 && errno == EINVAL) { // an older kernel: plain ring
    memset(&p, 0, sizeof p);
    r->fd = sys_setup(entries, &p);
  }
  *sys = "io_uring_setup";
  if (r->fd < 0) return errno;
  r->sq_map_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  r->cq_map_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  if ((p.features & IORING_FEAT_SINGLE_MMAP) && r->cq_map_len > r->sq_map_len) r->sq_map_len = r->cq_map_len;
  *sys = "mmap";
  r->sq_map = mmap(NULL, r->sq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
  if (r->sq_map == MAP_FAILED) {
    r->sq_map = NULL;
    return errno;
  }
  if (p.features & IORING_FEAT_SINGLE_MMAP) {
    r->cq_map = r->sq_map;
  } else {
    r->cq_map = mmap(NULL, r->cq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
    if (r->cq_map == MAP_FAILED) {
      r->cq_map = NULL;
      return errno;
    }
  }
  r->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
  r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
  if (r->sqes == MAP_FAILED) {
    r->sqes = NULL;
    return errno;
  }
  uint8_t *sq = r->sq_map, *cq = r->cq_map;
  r->sq_entries = p.sq_entries < URING_MAX ? p.sq_entries : URING_MAX;
  r->sq_mask = *(unsigned *)(sq + p.sq_off.ring_mask);
  r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
  r->sq_array = (unsigned *)(sq + p.sq_off.array);
  r->cq_mask = *(unsigned *)(cq + p.cq_off.ring_mask);
  r->cq_head = (unsigned *)(cq + p.cq_off.head);
  r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
  r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
  return 0;
}

// Submits k prepared SQEs (already in the SQ at tail .. tail+k) and waits for their k completions;
// results go to r->res[user_data]. 0, or the errno of io_uring_enter itself (the ring is unusable).
static int ring_run(ring_t *r, unsigned k) {
  unsigned tail = *r->sq_tail;
  __atomic_store_n(r->sq_tail, tail + k, __ATOMIC_RELEASE);
  unsigned to_submit = k, got = 0;
  while (got < k) {
    int e = sys_enter(r->fd, to_submit, k - got, IORING_ENTER_GETEVENTS);
    if (e < 0) {
      if (errno != EINTR && errno != EAGAIN && errno != EBUSY) return errno;
    } else {
      to_submit -= (unsigned)e < to_submit ? (unsigned)e : to_submit;
    }
    unsigned head = *r->cq_head, ctail = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);
    for (; head != ctail; head++) {
      const struct io_uring_cqe *c = &r->cqes[head & r->cq_mask];
      if (c->user_data < k) {
        r->res[c->user_data] = c->res;
        got++;
      }
    }
    __atomic_store_n(r->cq_head, head, __ATOMIC_RELEASE);
  }
  return 0;
}

static inline void prep_rw(ring_t *r, unsigned j, uint8_t op, int fd, void *addr, uint32_t len) {
  unsigned idx = (*r->sq_tail + j) & r->sq_mask;
  struct io_uring_sqe *s = &r->sqes[idx];
  memset(s, 0, sizeof *s);
  s->opcode = op;
  s->fd = fd;
  s->addr = (uint64_t)(uintptr_t)addr;
  s->len = len;
  s->off = (uint64_t)-1; // the file's own position, as read()/write() (a TAP has none)
  // RWF_NOWAIT: nothing pending completes with -EAGAIN at once (an O_NONBLOCK fd alone would make the
  // kernel arm a poll and wait for the frame)
  s->rw_flags = RWF_NOWAIT;
  s->user_data = j;
  r->sq_array[idx] = idx;
}

static bool arg_ring(args_t *a, size_t i, ring_t **r) {
  void *p = NULL;
  napi_valuetype t;
  if (i < a->argc && napi_typeof(a->env, a->argv[i], &t) == napi_ok && t == napi_external &&
      napi_get_value_external(a->env, a->argv[i], &p) == napi_ok && p != NULL) {
    *r = p;
    if ((*r)->fd >= 0) return true;
    throw_errno(a->env, EBADF, "io_uring_enter", "%s: the ring is closed", a->fn);
    return false;
  }
  throw_type(a->env, "%s: ring must be a handle from uringCreate()", a->fn);
  return false;
}

// uringCreate(entries?) -> ring handle (an external): an io_uring of `entries` SQEs (default and most
// 256). Control path: once per worker.
static napi_value UringCreate(napi_env env, napi_callback_info info) {
  args_t a;
  int64_t entries;
  if (!get_args(env, info, "uringCreate", &a) || !arg_int_opt(&a, 0, "entries", 1, URING_MAX, URING_MAX, &entries))
    return NULL;
  ring_t *r = calloc(1, sizeof *r);
  if (r == NULL) {
    throw_errno(env, ENOMEM, "calloc", "uringCreate(%lld)", (long long)entries);
    return NULL;
  }
  r->fd = -1;
  const char *sys;
  int err = ring_init(r, (unsigned)entries, &sys);
  if (err != 0) {
    ring_free(r);
    free(r);
    throw_errno(env, err, sys, "uringCreate(%lld)", (long long)entries);
    return NULL;
  }
  napi_value v;
  if (napi_create_external(env, r, ring_finalize, NULL, &v) != napi_ok) {
    ring_free(r);
    free(r);
    return NULL;
  }
  return v;
}

// uringClose(ring): frees the ring now (later calls with it throw EBADF). Idempotent.
static napi_value UringClose(napi_env env, napi_callback_info info) {
  args_t a;
  void *p = NULL;
  if (!get_args(env, info, "uringClose", &a)) return NULL;
  if (a.argc < 1 || napi_get_value_external(env, a.argv[0], &p) != napi_ok || p == NULL) {
    throw_type(env, "uringClose: ring must be a handle from uringCreate()");
    return NULL;
  }
  ring_free(p);
  return make_undefined(env);
}

// Checks count against the arrays and every slot [offs[i], offs[i] + (lens ? lens[i] : cap)) against
// the arena; false with a RangeError pending.
static bool check_slots(args_t *a, int fd, size_t n, size_t noff, size_t nlen, size_t nother, const uint32_t *offs,
                        const uint32_t *lens, uint64_t cap, size_t arena_len) {
  if (n > noff || n > nlen || n > nother) {
    throw_range(a->env, "%s(fd %d): count %zu exceeds the length of offsets/lens/status", a->fn, fd, n);
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    uint64_t len = lens ? lens[i] : cap;
    if ((uint64_t)offs[i] + len > arena_len) {
      throw_range(a->env, "%s(fd %d): slot %zu [%u, %u+%llu) is outside the arena (%zu bytes)", a->fn, fd, i, offs[i],
                  offs[i], (unsigned long long)len, arena_len);
      return false;
    }
  }
  return true;
}

// readBatchUring(ring, fd, arena, offsets, lens, count, slotCapacity, rxError?: Int32Array, first?)
// -> frames read, in order, into slots [0, n): readBatch for a TAP queue (or any read()able non-blocking
// fd). Reads go in waves, one io_uring_enter each: `first` reads (default: count), then, while every
// read of a wave got a frame, twice as many as the wave before (at most 256 per wave); the first
// wave with an empty read is the last. A small `first` (the caller's guess of what is pending) keeps
// the kernel from trying dozens of reads that find nothing. lens[i] > slotCapacity = truncated, as readBatch. Throws a hard error
// (EBADF, EBADFD...) only when no frame was read; rxError[0] = -errno of the error that ended the batch
// after some frames, else 0. EAGAIN is just "no more frames".
static napi_value ReadBatchUring(napi_env env, napi_callback_info info) {
  args_t a;
  ring_t *r;
  int fd;
  uint8_t *arena;
  size_t arena_len, noff, nlen, nerr = 0;
  uint32_t *offs, *lens;
  int32_t *rx_err;
  int64_t count, cap, first;
  if (!get_args(env, info, "readBatchUring", &a) || !arg_ring(&a, 0, &r) || !arg_fd(&a, 1, &fd) ||
      !arg_arena(&a, 2, &arena, &arena_len) ||
      !arg_typed(&a, 3, "offsets", napi_uint32_array, "Uint32Array", (void **)&offs, &noff) ||
      !arg_typed(&a, 4, "lens", napi_uint32_array, "Uint32Array", (void **)&lens, &nlen) ||
      !arg_int(&a, 5, "count", 0, UINT32_MAX, &count) || !arg_int(&a, 6, "slotCapacity", 1, UINT32_MAX, &cap) ||
      !arg_typed_opt(&a, 7, "rxError", napi_int32_array, "Int32Array", (void **)&rx_err, &nerr) ||
      !arg_int_opt(&a, 8, "first", 1, UINT32_MAX, UINT32_MAX, &first))
    return NULL;
  size_t n = (size_t)count;
  if (!check_slots(&a, fd, n, noff, nlen, n, offs, NULL, (uint64_t)cap, arena_len)) return NULL;
  if (rx_err && nerr == 0) {
    throw_range(env, "readBatchUring(fd %d): rxError is empty", fd);
    return NULL;
  }
  if (rx_err) rx_err[0] = 0;
  size_t done = 0, base = 0;
  int err = 0;
  bool drained = false;
  size_t wave = (size_t)first; // a read that finds nothing still costs the kernel: grow waves as frames come
  while (base < n && !drained && err == 0) {
    size_t k0 = wave < r->sq_entries ? wave : r->sq_entries;
    unsigned k = n - base < k0 ? (unsigned)(n - base) : (unsigned)k0;
    wave = k0 * 2;
    for (unsigned j = 0; j < k; j++) prep_rw(r, j, IORING_OP_READ, fd, arena + offs[base + j], (uint32_t)cap);
    int e = ring_run(r, k);
    if (e != 0) {
      throw_errno(env, e, "io_uring_enter", "readBatchUring(fd %d)", fd);
      return NULL;
    }
    for (unsigned j = 0; j < k; j++) {
      int32_t res = r->res[j];
      if (res > 0) {
        // a frame after an empty read (it arrived meanwhile) moves down: frames stay in order, gapless
        if (done != base + j) {
          size_t m = (size_t)res < (size_t)cap ? (size_t)res : (size_t)cap;
          memmove(arena + offs[done], arena + offs[base + j], m);
        }
        lens[done++] = (uint32_t)res;
      } else if (res == 0 || res == -EAGAIN || res == -EWOULDBLOCK || res == -EINTR) {
        drained = true; // EOF (pipes; a TAP never returns 0) or nothing pending
      } else if (err == 0) {
        err = -res;
      }
    }
    base += k;
  }
  if (err != 0) {
    if (rx_err) rx_err[0] = -err;
    if (done == 0) { // a hard error after some frames recurs on the next call, which throws it
      throw_errno(env, err, "read", "readBatchUring(fd %d)", fd);
      return NULL;
    }
  }
  return make_int(env, (int64_t)done);
}

// writeBatchUring(ring, fd, arena, offsets, lens, count, status: Int32Array) -> frames the kernel
// accepted: writeBatchStatus for a TAP queue, one io_uring_enter per 256 frames. status[i] for every
// i < count as writeBatchStatus: 0 accepted, -errno refused (-EINVAL, -EIO...), -EAGAIN full, any other
// -errno the fd is broken (every frame from the first such one on gets it). Never throws for a
// syscall error on the fd; wrong arguments throw TypeError/RangeError; a failing io_uring_enter
// (the ring itself) throws.
static napi_value WriteBatchUring(napi_env env, napi_callback_info info) {
  args_t a;
  ring_t *r;
  int fd;
  uint8_t *arena;
  size_t arena_len, noff, nlen, nstat;
  uint32_t *offs, *lens;
  int32_t *st;
  int64_t count;
  if (!get_args(env, info, "writeBatchUring", &a) || !arg_ring(&a, 0, &r) || !arg_fd(&a, 1, &fd) ||
      !arg_arena(&a, 2, &arena, &arena_len) ||
      !arg_typed(&a, 3, "offsets", napi_uint32_array, "Uint32Array", (void **)&offs, &noff) ||
      !arg_typed(&a, 4, "lens", napi_uint32_array, "Uint32Array", (void **)&lens, &nlen) ||
      !arg_int(&a, 5, "count", 0, UINT32_MAX, &count) ||
      !arg_typed(&a, 6, "status", napi_int32_array, "Int32Array", (void **)&st, &nstat))
    return NULL;
  size_t n = (size_t)count;
  if (!check_slots(&a, fd, n, noff, nlen, nstat, offs, lens, 0, arena_len)) return NULL;
  size_t ok = 0, base = 0;
  int broken = 0;
  while (base < n && broken == 0) {
    unsigned k = n - base < r->sq_entries ? (unsigned)(n - base) : r->sq_entries;
    for (unsigned j = 0; j < k; j++) prep_rw(r, j, IORING_OP_WRITE, fd, arena + offs[base + j], lens[base + j]);
    int e = ring_run(r, k);
    if (e != 0) {
      throw_errno(env, e, "io_uring_enter", "writeBatchUring(fd %d)", fd);
      return NULL;
    }
    for (unsigned j = 0; j < k; j++) {
      int32_t res = r->res[j];
      int32_t s = res >= 0 ? 0 : res == -EWOULDBLOCK ? -EAGAIN : res;
      if (broken != 0) s = -broken; // as writeBatchStatus: nothing after a broken fd counts as tried
      else if (s < 0 && s != -EAGAIN && !tx_drop_errno(-s)) broken = -s;
      st[base + j] = s;
      if (s == 0) ok++;
    }
    base += k;
  }
  for (size_t i = base; i < n; i++) st[i] = -broken;
  return make_int(env, (int64_t)ok);
}

bool uring_init(napi_env env, napi_value exports, napi_value c) {
  static const fn_entry fns[] = {
      {"uringCreate", UringCreate},
      {"uringClose", UringClose},
      {"readBatchUring", ReadBatchUring},
      {"writeBatchUring", WriteBatchUring},
  };
  export_int(env, c, "URING_MAX", URING_MAX);
  return export_fns(env, exports, fns, sizeof fns / sizeof fns[0]);
}
