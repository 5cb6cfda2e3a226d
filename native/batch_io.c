// calitap_io batched I/O, the hot path: readBatch / writeBatch / writeBatchStatus move many frames
// per call between an fd and the worker's packet arena (read()/write() per frame for TAP queues and
// eventfds, recvmmsg()/sendmmsg() for sockets).
//
// What flows through it: Ethernet frames (TAP, AF_PACKET) and datagrams (UDP, raw IPv4), copied by
// the kernel straight into / out of arena[offsets[i] ..]. Who owns the buffers: the calling JS thread
// owns the arena (a Uint8Array over its SharedArrayBuffer) and every offsets/lens/status/address
// array; they are touched only during the call, and only inside the ranges the offsets name (checked
// against the arena first). Which thread runs it: any JS thread (normally a dataplane worker); never
// blocks (MSG_DONTWAIT / O_NONBLOCK fds), allocates nothing.
//
// Transmit status: writeBatchStatus fills status[i] for every frame: 0 = the kernel accepted it,
// -errno = it did not (refused: ENOBUFS, EMSGSIZE...; not tried because the fd was full: EAGAIN;
// not tried because the fd broke: EBADF, EBADFD...), and returns the number accepted. Receive status:
// readBatch's optional rxError[0] says why a batch ended early (a socket's one-shot asynchronous
// error, or a hard error after some frames), 0 otherwise.
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif

// A control buffer for one UDP_SEGMENT (u16) or UDP_GRO (int) cmsg, aligned for struct cmsghdr.
typedef union {
  char buf[CMSG_SPACE(sizeof(int))];
  struct cmsghdr align;
} gso_cmsg;

// Per-frame send errors that drop that frame and let the batch continue (the frame's status gets the
// errno). Anything else (EBADF, EBADFD, EFAULT, ENOTSOCK, EDESTADDRREQ...) is a broken fd: the batch
// stops there (writeBatch throws it when nothing was sent; writeBatchStatus reports it per frame).
static const int drop_errnos[] = {
    ENOBUFS,       // qdisc or device queue full
    ENOMEM,        // no skb
    EMSGSIZE,      // frame longer than the device MTU (+ header)
    EINVAL,        // malformed frame (e.g. TAP: shorter than an Ethernet header, bad vnet header)
    EIO,           // TAP: the interface is down
    ENETDOWN,      // interface down
    ENXIO,         // packet socket: device gone / down
    ENETUNREACH,   // UDP/raw: no route
    EHOSTUNREACH,  // UDP/raw: no route / neighbour failed
    EHOSTDOWN,     //
    ECONNREFUSED,  // UDP: an earlier ICMP port unreachable (reported once)
    EPERM,         // dropped by a local policy
    EACCES,        // broadcast without SO_BROADCAST
    EADDRNOTAVAIL, //
};
#define N_DROP_ERRNOS (sizeof drop_errnos / sizeof drop_errnos[0])

static bool is_drop_errno(int e) {
  for (size_t i = 0; i < N_DROP_ERRNOS; i++)
    if (drop_errnos[i] == e) return true;
  return false;
}
bool tx_drop_errno(int e) { return is_drop_errno(e); } // shared with gro.c (GRO hook)

// Receive errors that are events, not a broken fd: a socket's pending asynchronous error (ENETDOWN
// when a packet socket's interface went down; ICMP errors on a connected UDP/raw socket; memory
// pressure). The kernel reports each once; readBatch ends the batch there instead of throwing.
static bool is_soft_rx_errno(int e) {
  switch (e) {
  case ENETDOWN:
  case ENETUNREACH:
  case EHOSTUNREACH:
  case EHOSTDOWN:
  case ECONNREFUSED:
  case ENOBUFS:
  case ENOMEM:
    return true;
  default:
    return false;
  }
}

static inline void put_addr(struct sockaddr_storage *ss, uint32_t *addrs, uint16_t *ports, size_t i) {
  const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
  bool in = ss->ss_family == AF_INET;
  if (addrs) addrs[i] = in ? ntohl(sin->sin_addr.s_addr) : 0;
  if (ports) ports[i] = in ? ntohs(sin->sin_port) : 0;
}

// MODE_AUTO: ask the kernel (one fstat) whether fd is a character device (TAP: read/write) or a
// socket (recvmmsg/sendmmsg). False, with a JS exception pending, when fstat fails.
static bool resolve_mode(napi_env env, int fd, const char *fn, int64_t *mode) {
  if (*mode != MODE_AUTO) return true;
  int m = detect_mode(fd);
  if (m < 0) {
    throw_errno(env, errno, "fstat", "%s(fd %d)", fn, fd);
    return false;
  }
  *mode = m;
  return true;
}

// Receives up to n frames into the slots. Returns the number read; *stop_err = the errno that ended
// the batch (0 when the fd was drained, EOF, or n frames were read).
// gro (UDP sockets with UDP_GRO on): gro[i] = the segment size of a coalesced datagram, 0 otherwise.
static size_t recv_frames(int fd, uint8_t *arena, const uint32_t *offs, uint32_t *lens, size_t n, size_t cap,
                          int64_t mode, uint32_t *addrs, uint16_t *ports, uint16_t *gro, int *stop_err) {
  size_t done = 0;
  *stop_err = 0;
  if (mode == MODE_RW) {
    while (done < n) {
      ssize_t r = read(fd, arena + offs[done], cap);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) *stop_err = errno;
        break;
      }
      if (r == 0) break; // EOF (pipes); TAP never returns 0
      // TAP returns the frame's full length even when it was cut to the slot: lens > cap = truncated.
      if (gro) gro[done] = 0;
      lens[done++] = (uint32_t)r;
    }
    return done;
  }
  struct mmsghdr msgs[MMSG_CHUNK];
  struct iovec iov[MMSG_CHUNK];
  struct sockaddr_storage from[MMSG_CHUNK];
  gso_cmsg ctl[MMSG_CHUNK];
  bool want_addr = addrs || ports;
  while (done < n) {
    size_t k = n - done < MMSG_CHUNK ? n - done : MMSG_CHUNK;
    for (size_t j = 0; j < k; j++) {
      iov[j].iov_base = arena + offs[done + j];
      iov[j].iov_len = cap;
      memset(&msgs[j], 0, sizeof msgs[j]);
      msgs[j].msg_hdr.msg_iov = &iov[j];
      msgs[j].msg_hdr.msg_iovlen = 1;
      if (want_addr) {
        from[j].ss_family = AF_UNSPEC;
        msgs[j].msg_hdr.msg_name = &from[j];
        msgs[j].msg_hdr.msg_namelen = sizeof from[j];
      }
      if (gro) {
        msgs[j].msg_hdr.msg_control = ctl[j].buf;
        msgs[j].msg_hdr.msg_controllen = sizeof ctl[j].buf;
      }
    }
    // MSG_TRUNC: msg_len is the real length even when the frame was cut to the slot.
    int r = recvmmsg(fd, msgs, (unsigned)k, MSG_DONTWAIT | MSG_TRUNC, NULL);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) *stop_err = errno;
      break;
    }
    for (int j = 0; j < r; j++) {
      lens[done + j] = msgs[j].msg_len;
      if (want_addr) put_addr(&from[j], addrs, ports, done + j);
      if (gro) {
        uint16_t size = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[j].msg_hdr); c; c = CMSG_NXTHDR(&msgs[j].msg_hdr, c)) {
          if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
            int v;
            memcpy(&v, CMSG_DATA(c), sizeof v);
            size = v > 0 && v <= 0xffff ? (uint16_t)v : 0;
          }
        }
        gro[done + j] = size;
      }
    }
    done += (size_t)r;
    if ((size_t)r < k) break; // drained
  }
  return done;
}

// readBatch(fd, arena, offsets: Uint32Array, lens: Uint32Array, count, slotCapacity, mode,
//           srcAddrs?: Uint32Array, srcPorts?: Uint16Array, rxError?: Int32Array, groSizes?: Uint16Array)
//   -> frames read (0 on EAGAIN). groSizes[i] (UDP sockets with UDP_GRO): the segment size of a
//   datagram the kernel coalesced from several (split it every groSizes[i] bytes), 0 for a plain one.
//   Throws a hard error (EBADF, EBADFD...) only when no frame was read;
//   rxError[0] = -errno of the error that ended the batch (soft, or hard after frames), else 0.
static napi_value ReadBatch(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, "readBatch", &a)) return NULL;
  int fd;
  uint8_t *arena;
  size_t arena_len, noff, nlen, naddr = 0, nport = 0, nerr = 0, ngro = 0;
  uint32_t *offs, *lens, *addrs;
  uint16_t *ports, *gro;
  int32_t *rx_err;
  int64_t count, cap, mode;
  if (!arg_fd(&a, 0, &fd) || !arg_arena(&a, 1, &arena, &arena_len) ||
      !arg_typed(&a, 2, "offsets", napi_uint32_array, "Uint32Array", (void **)&offs, &noff) ||
      !arg_typed(&a, 3, "lens", napi_uint32_array, "Uint32Array", (void **)&lens, &nlen) ||
      !arg_int(&a, 4, "count", 0, UINT32_MAX, &count) || !arg_int(&a, 5, "slotCapacity", 1, UINT32_MAX, &cap) ||
      !arg_int_opt(&a, 6, "mode", MODE_AUTO, MODE_MMSG, MODE_AUTO, &mode) ||
      !arg_typed_opt(&a, 7, "srcAddrs", napi_uint32_array, "Uint32Array", (void **)&addrs, &naddr) ||
      !arg_typed_opt(&a, 8, "srcPorts", napi_uint16_array, "Uint16Array", (void **)&ports, &nport) ||
      !arg_typed_opt(&a, 9, "rxError", napi_int32_array, "Int32Array", (void **)&rx_err, &nerr) ||
      !arg_typed_opt(&a, 10, "groSizes", napi_uint16_array, "Uint16Array", (void **)&gro, &ngro))
    return NULL;
  size_t n = (size_t)count;
  if (n > noff || n > nlen || (addrs && n > naddr) || (ports && n > nport) || (gro && n > ngro)) {
    throw_range(env, "readBatch(fd %d): count %zu exceeds the length of offsets/lens/srcAddrs/srcPorts/groSizes",
                fd, n);
    return NULL;
  }
  if (rx_err && nerr == 0) {
    throw_range(env, "readBatch(fd %d): rxError is empty", fd);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    if ((uint64_t)offs[i] + (uint64_t)cap > arena_len) {
      throw_range(env, "readBatch(fd %d): slot %zu [%u, %u+%lld) is outside the arena (%zu bytes)", fd, i,
                  offs[i], offs[i], (long long)cap, arena_len);
      return NULL;
    }
  }
  if (rx_err) rx_err[0] = 0;
  if (n == 0) return make_int(env, 0);
  if (!resolve_mode(env, fd, "readBatch", &mode)) return NULL;
  int err;
  size_t done = recv_frames(fd, arena, offs, lens, n, (size_t)cap, mode, addrs, ports, gro, &err);
  if (err != 0) {
    if (rx_err) rx_err[0] = -err;
    // a hard error after some frames recurs on the next call, which throws it
    if (done == 0 && !is_soft_rx_errno(err)) {
      throw_errno(env, err, mode == MODE_RW ? "read" : "recvmmsg", "readBatch(fd %d)", fd);
      return NULL;
    }
  }
  return make_int(env, (int64_t)done);
}

// Sends frames [0, n) until the fd is full (EAGAIN) or broken (a non-drop errno): st[i] (when st is
// given) = 0 for each frame accepted and sign * errno for each one refused (sign -1 for
// writeBatchStatus, +1 for the older writeBatch). Returns the frames consumed (accepted or refused);
// *accepted = how many of them the kernel took; *stop_err = the errno that stopped it (0 = all done).
// gso (UDP sockets, MODE_MMSG only): gso[i] > 0 sends datagram i with a UDP_SEGMENT cmsg, so the
// kernel cuts it into datagrams of gso[i] bytes (the last may be shorter).
static size_t send_frames(int fd, uint8_t *arena, const uint32_t *offs, const uint32_t *lens, size_t n,
                          int64_t mode, const uint32_t *addrs, const uint16_t *ports, const uint16_t *gso,
                          int32_t *st, int sign, size_t *accepted, int *stop_err) {
  size_t done = 0, ok = 0;
  *stop_err = 0;
  if (mode == MODE_RW) {
    while (done < n) {
      ssize_t r = write(fd, arena + offs[done], lens[done]);
      if (r < 0) {
        int err = errno;
        if (err == EINTR) continue;
        if (!is_drop_errno(err)) {
          *stop_err = err == EWOULDBLOCK ? EAGAIN : err;
          break;
        }
        if (st) st[done] = sign * err;
        done++;
        continue;
      }
      if (st) st[done] = 0;
      done++;
      ok++;
    }
    *accepted = ok;
    return done;
  }
  struct mmsghdr msgs[MMSG_CHUNK];
  struct iovec iov[MMSG_CHUNK];
  struct sockaddr_in to[MMSG_CHUNK];
  gso_cmsg ctl[MMSG_CHUNK];
  while (done < n) {
    size_t k = n - done < MMSG_CHUNK ? n - done : MMSG_CHUNK;
    for (size_t j = 0; j < k; j++) {
      iov[j].iov_base = arena + offs[done + j];
      iov[j].iov_len = lens[done + j];
      memset(&msgs[j], 0, sizeof msgs[j]);
      msgs[j].msg_hdr.msg_iov = &iov[j];
      msgs[j].msg_hdr.msg_iovlen = 1;
      if (addrs) {
        memset(&to[j], 0, sizeof to[j]);
        to[j].sin_family = AF_INET;
        to[j].sin_addr.s_addr = htonl(addrs[done + j]);
        to[j].sin_port = ports ? htons(ports[done + j]) : 0;
        msgs[j].msg_hdr.msg_name = &to[j];
        msgs[j].msg_hdr.msg_namelen = sizeof to[j];
      }
      if (gso && gso[done + j] > 0) {
        memset(&ctl[j], 0, sizeof ctl[j]);
        msgs[j].msg_hdr.msg_control = ctl[j].buf;
        msgs[j].msg_hdr.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
        struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[j].msg_hdr);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        memcpy(CMSG_DATA(c), &gso[done + j], sizeof(uint16_t));
      }
    }
    int r = sendmmsg(fd, msgs, (unsigned)k, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r < 0) {
      // The first frame of this chunk failed (sendmmsg reports an error only when nothing was sent).
      int err = errno;
      if (err == EINTR) continue;
      if (!is_drop_errno(err)) {
        *stop_err = err == EWOULDBLOCK ? EAGAIN : err;
        break;
      }
      if (st) st[done] = sign * err;
      done++;
      continue;
    }
    if (st)
      for (int j = 0; j < r; j++) st[done + j] = 0;
    done += (size_t)r;
    ok += (size_t)r;
    // r < k: frame done+r failed; the next sendmmsg starts with it and reports its error.
  }
  *accepted = ok;
  return done;
}

typedef struct {
  int fd;
  uint8_t *arena;
  uint32_t *offs, *lens, *addrs;
  uint16_t *ports, *gso;
  int32_t *status;
  size_t n;
  int64_t mode;
} write_args;

// Parses (fd, arena, offsets, lens, count, mode, status, dstAddrs?, dstPorts?[, gsoSizes?]) and checks
// every frame lies inside the arena. status (and gsoSizes) only for writeBatchStatus.
static bool parse_write(args_t *a, bool status_required, write_args *w) {
  napi_env env = a->env;
  size_t arena_len, noff, nlen, nstat = 0, naddr = 0, nport = 0, ngso = 0;
  int64_t count;
  if (!arg_fd(a, 0, &w->fd) || !arg_arena(a, 1, &w->arena, &arena_len) ||
      !arg_typed(a, 2, "offsets", napi_uint32_array, "Uint32Array", (void **)&w->offs, &noff) ||
      !arg_typed(a, 3, "lens", napi_uint32_array, "Uint32Array", (void **)&w->lens, &nlen) ||
      !arg_int(a, 4, "count", 0, UINT32_MAX, &count) ||
      !arg_int_opt(a, 5, "mode", MODE_AUTO, MODE_MMSG, MODE_AUTO, &w->mode) ||
      !(status_required
            ? arg_typed(a, 6, "status", napi_int32_array, "Int32Array", (void **)&w->status, &nstat)
            : arg_typed_opt(a, 6, "status", napi_int32_array, "Int32Array", (void **)&w->status, &nstat)) ||
      !arg_typed_opt(a, 7, "dstAddrs", napi_uint32_array, "Uint32Array", (void **)&w->addrs, &naddr) ||
      !arg_typed_opt(a, 8, "dstPorts", napi_uint16_array, "Uint16Array", (void **)&w->ports, &nport))
    return false;
  w->gso = NULL;
  if (status_required &&
      !arg_typed_opt(a, 9, "gsoSizes", napi_uint16_array, "Uint16Array", (void **)&w->gso, &ngso))
    return false;
  size_t n = w->n = (size_t)count;
  if (n > noff || n > nlen || (w->status && n > nstat) || (w->addrs && n > naddr) || (w->ports && n > nport) ||
      (w->gso && n > ngso)) {
    throw_range(env, "%s(fd %d): count %zu exceeds the length of offsets/lens/status/dstAddrs/dstPorts/gsoSizes",
                a->fn, w->fd, n);
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    if ((uint64_t)w->offs[i] + (uint64_t)w->lens[i] > arena_len) {
      throw_range(env, "%s(fd %d): frame %zu [%u, %u+%u) is outside the arena (%zu bytes)", a->fn, w->fd, i,
                  w->offs[i], w->offs[i], w->lens[i], arena_len);
      return false;
    }
  }
  return true;
}

// writeBatch(fd, arena, offsets, lens, count, mode, status?: Int32Array, dstAddrs?: Uint32Array,
//            dstPorts?: Uint16Array) -> frames consumed (sent or dropped); stops early at EAGAIN.
// status[i] = 0 (sent) or the errno (positive) of a refused frame, for frames consumed only.
static napi_value WriteBatch(napi_env env, napi_callback_info info) {
  args_t a;
  write_args w;
  if (!get_args(env, info, "writeBatch", &a) || !parse_write(&a, false, &w)) return NULL;
  if (w.n == 0) return make_int(env, 0);
  if (!resolve_mode(env, w.fd, "writeBatch", &w.mode)) return NULL;
  size_t accepted;
  int err;
  size_t done =
      send_frames(w.fd, w.arena, w.offs, w.lens, w.n, w.mode, w.addrs, w.ports, NULL, w.status, 1, &accepted, &err);
  if (err != 0 && err != EAGAIN && done == 0) {
    throw_errno(env, err, w.mode == MODE_RW ? "write" : "sendmmsg", "writeBatch(fd %d)", w.fd);
    return NULL;
  }
  return make_int(env, (int64_t)done);
}

// writeBatchStatus(fd, arena, offsets, lens, count, mode, status: Int32Array, dstAddrs?, dstPorts?,
//                  gsoSizes?: Uint16Array) -> frames the kernel accepted.
//   gsoSizes (UDP sockets): gsoSizes[i] > 0 sends datagram i with UDP_SEGMENT, cut by the kernel into
//   datagrams of that many bytes (at most 128 segments of one 64 KiB send; -EINVAL when it refuses).
//   status[i] for EVERY i < count: 0 = accepted, -errno = not: refused by the kernel (-ENOBUFS,
//   -EMSGSIZE, -EINVAL, -EIO, -ENETDOWN...), not tried because the fd was full (-EAGAIN) or broken
//   (-EBADF, -EBADFD, -EDESTADDRREQ...: every frame from the failing one on).
//   Never throws for a syscall error; wrong arguments throw TypeError/RangeError as everywhere.
static napi_value WriteBatchStatus(napi_env env, napi_callback_info info) {
  args_t a;
  write_args w;
  if (!get_args(env, info, "writeBatchStatus", &a) || !parse_write(&a, true, &w)) return NULL;
  if (w.n == 0) return make_int(env, 0);
  if (w.mode == MODE_AUTO) {
    int m = detect_mode(w.fd);
    if (m < 0) {
      int e = errno;
      for (size_t i = 0; i < w.n; i++) w.status[i] = -e;
      return make_int(env, 0);
    }
    w.mode = m;
  }
  if (w.gso && w.mode != MODE_MMSG) { // segment sizes only mean something to a UDP socket
    for (size_t i = 0; i < w.n; i++) w.status[i] = -EOPNOTSUPP;
    return make_int(env, 0);
  }
  size_t accepted;
  int err;
  size_t done = send_frames(w.fd, w.arena, w.offs, w.lens, w.n, w.mode, w.addrs, w.ports, w.gso, w.status, -1,
                            &accepted, &err);
  for (size_t i = done; i < w.n; i++) w.status[i] = -err;
  return make_int(env, (int64_t)accepted);
}

// arenaDontFork(arena) -> bytes advised: madvise(MADV_DONTFORK) on the whole pages inside the arena,
// so that a fork() of the process (child_process: every `ip` the control thread runs) neither copies
// their page tables nor write-protects them, and the worker writing the arena takes no copy-on-write
// faults and TLB shootdowns afterwards. A child never sees the arena (it execs at once). Control
// path: once per arena.
static napi_value ArenaDontFork(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, "arenaDontFork", &a)) return NULL;
  uint8_t *arena;
  size_t len;
  if (!arg_arena(&a, 0, &arena, &len)) return NULL;
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t start = ((uintptr_t)arena + page - 1) & ~(page - 1);
  uintptr_t end = ((uintptr_t)arena + len) & ~(page - 1);
  if (end <= start) return make_int(env, 0);
  if (madvise((void *)start, end - start, MADV_DONTFORK) != 0) {
    throw_errno(env, errno, "madvise", "arenaDontFork(%zu bytes)", len);
    return NULL;
  }
  return make_int(env, (int64_t)(end - start));
}

bool batch_init(napi_env env, napi_value exports, napi_value c) {
  static const fn_entry fns[] = {
      {"readBatch", ReadBatch},
      {"writeBatch", WriteBatch},
      {"writeBatchStatus", WriteBatchStatus},
      {"arenaDontFork", ArenaDontFork},
  };
  export_int(env, c, "MODE_AUTO", MODE_AUTO);
  export_int(env, c, "MODE_RW", MODE_RW);
  export_int(env, c, "MODE_MMSG", MODE_MMSG);
  export_int(env, c, "MMSG_CHUNK", MMSG_CHUNK);
  napi_value list; // the errnos writeBatch/writeBatchStatus count as one refused frame (txErrorKind)
  if (napi_create_array_with_length(env, N_DROP_ERRNOS, &list) != napi_ok) return false;
  for (uint32_t i = 0; i < N_DROP_ERRNOS; i++) napi_set_element(env, list, i, make_int(env, drop_errnos[i]));
  napi_set_named_property(env, c, "TX_DROP_ERRNOS", list);
  return export_fns(env, exports, fns, sizeof fns / sizeof fns[0]);
}
