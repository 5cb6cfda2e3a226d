// calitap_io: the only native code in calitap. It does syscalls and nothing else.
//
// What flows through it: Ethernet frames (TAP queues, AF_PACKET sockets) and datagrams (UDP, raw IP)
// moved between file descriptors and a worker's packet arena (a Uint8Array view over the worker's
// SharedArrayBuffer). Who owns the buffers: the calling JS thread; we only touch the arena bytes that
// the caller's offsets/lens name, during the call. Which thread runs it: any JS thread (main or
// worker); the module is context-aware (NAPI_MODULE_INIT) and has no mutable global state, so every
// worker gets its own instance. Blocking calls (poll, epollWait) block only the calling thread.
//
// All packet logic lives in TypeScript (src/dataplane/io/native.ts documents the JS API).
// Errors: a failing syscall throws an Error whose message names the call, its argument (interface
// name or fd) and strerror(errno), with `code` = the errno name ("EBADF"), `errno` = the number and
// `syscall` = the failing system call. Bad argument types throw TypeError (code ERR_INVALID_ARG_TYPE),
// bad ranges RangeError (code ERR_OUT_OF_RANGE).

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <node_api.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif
#ifndef ETH_P_ALL
#define ETH_P_ALL 0x0003
#endif

// readBatch/writeBatch I/O mode (the TS wrapper remembers it per fd it created).
#define MODE_AUTO 0 // fstat() once per call: sockets use recvmmsg/sendmmsg, the rest read()/write()
#define MODE_RW 1   // one read()/write() per frame (TAP queues, eventfds, pipes)
#define MODE_MMSG 2 // recvmmsg()/sendmmsg() (AF_PACKET, UDP, raw IP sockets)

// Frames per recvmmsg/sendmmsg system call (stack arrays; a batch larger than this takes more calls).
#define MMSG_CHUNK 64
// Most fds poll() accepts: the result is a bitmap in a non-negative int32.
#define POLL_MAX 31
// Most events one epollWait returns.
#define EPOLL_MAX 256
#define MAX_ARGS 10

// ---------------------------------------------------------------------------------------------------
// Errors

static const char *errno_name(int e) {
  switch (e) {
#define E(x)                                                                                           \
  case x:                                                                                              \
    return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF) E(ECHILD)
    E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(EXDEV) E(ENODEV) E(ENOTDIR)
    E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOTTY) E(EFBIG) E(ENOSPC) E(ESPIPE) E(EROFS)
    E(EMLINK) E(EPIPE) E(ERANGE) E(ENAMETOOLONG) E(ENOSYS) E(ENOTEMPTY) E(ELOOP) E(ENOPROTOOPT)
    E(EPROTONOSUPPORT) E(ESOCKTNOSUPPORT) E(EOPNOTSUPP) E(EPFNOSUPPORT) E(EAFNOSUPPORT)
    E(EADDRINUSE) E(EADDRNOTAVAIL) E(ENETDOWN) E(ENETUNREACH) E(ENETRESET) E(ECONNABORTED)
    E(ECONNRESET) E(ENOBUFS) E(EISCONN) E(ENOTCONN) E(ETIMEDOUT) E(ECONNREFUSED) E(EHOSTDOWN)
    E(EHOSTUNREACH) E(EALREADY) E(EINPROGRESS) E(ENOTSOCK) E(EDESTADDRREQ) E(EMSGSIZE)
    E(EPROTOTYPE) E(EBADFD) E(ENOMEDIUM) E(ECANCELED) E(EOVERFLOW) E(ENONET) E(ENOLINK)
    E(EPROTO) E(ENOTUNIQ) E(ERFKILL)
#undef E
  default:
    return "EUNKNOWN";
  }
}

// Sets `name` (a string) on obj; ignores failures (we are already on an error path).
static void set_named(napi_env env, napi_value obj, const char *name, napi_value v) {
  napi_set_named_property(env, obj, name, v);
}

// Throws Error("<what>: <syscall>: <strerror> (<ENAME>)") with code/errno/syscall properties.
static void throw_errno(napi_env env, int err, const char *syscall, const char *fmt, ...) {
  char what[400], desc[128], msg[640];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  const char *d = strerror_r(err, desc, sizeof desc); // GNU variant: returns the string
  const char *code = errno_name(err);
  snprintf(msg, sizeof msg, "%s: %s: %s (%s)", what, syscall, d, code);
  napi_value vcode, vmsg, verr, vnum, vsys;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &vcode) != napi_ok) return;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &vmsg) != napi_ok) return;
  if (napi_create_error(env, vcode, vmsg, &verr) != napi_ok) return;
  if (napi_create_int32(env, err, &vnum) == napi_ok) set_named(env, verr, "errno", vnum);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &vsys) == napi_ok)
    set_named(env, verr, "syscall", vsys);
  napi_throw(env, verr);
}

static void throw_type(napi_env env, const char *fmt, ...) {
  char msg[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
}

static void throw_range(napi_env env, const char *fmt, ...) {
  char msg[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
}

// ---------------------------------------------------------------------------------------------------
// Argument helpers: each returns false with a JS exception pending when the argument is unusable.

typedef struct {
  napi_env env;
  const char *fn;
  size_t argc;
  napi_value argv[MAX_ARGS];
} args_t;

static bool get_args(napi_env env, napi_callback_info info, const char *fn, args_t *a) {
  a->env = env;
  a->fn = fn;
  a->argc = MAX_ARGS;
  if (napi_get_cb_info(env, info, &a->argc, a->argv, NULL, NULL) != napi_ok) {
    throw_type(env, "%s: cannot read arguments", fn);
    return false;
  }
  return true;
}

static bool is_nullish(args_t *a, size_t i) {
  if (i >= a->argc) return true;
  napi_valuetype t;
  if (napi_typeof(a->env, a->argv[i], &t) != napi_ok) return true;
  return t == napi_undefined || t == napi_null;
}

static bool value_int(napi_env env, const char *fn, napi_value v, const char *name, int64_t min, int64_t max,
                      int64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    throw_type(env, "%s: %s must be a number", fn, name);
    return false;
  }
  double d;
  napi_get_value_double(env, v, &d);
  if (d != d || d < (double)min || d > (double)max || d != (double)(int64_t)d) {
    throw_range(env, "%s: %s must be an integer in [%lld, %lld], got %g", fn, name, (long long)min,
                (long long)max, d);
    return false;
  }
  *out = (int64_t)d;
  return true;
}

static bool arg_int(args_t *a, size_t i, const char *name, int64_t min, int64_t max, int64_t *out) {
  if (i >= a->argc) {
    throw_type(a->env, "%s: missing argument %s", a->fn, name);
    return false;
  }
  return value_int(a->env, a->fn, a->argv[i], name, min, max, out);
}

// Optional integer argument (undefined/null -> dflt).
static bool arg_int_opt(args_t *a, size_t i, const char *name, int64_t min, int64_t max, int64_t dflt,
                        int64_t *out) {
  if (is_nullish(a, i)) {
    *out = dflt;
    return true;
  }
  return value_int(a->env, a->fn, a->argv[i], name, min, max, out);
}

static bool arg_fd(args_t *a, size_t i, int *fd) {
  int64_t v;
  if (!arg_int(a, i, "fd", INT32_MIN, INT32_MAX, &v)) return false;
  *fd = (int)v;
  return true;
}

static bool arg_bool(args_t *a, size_t i, const char *name, bool *out) {
  napi_valuetype t;
  if (i >= a->argc || napi_typeof(a->env, a->argv[i], &t) != napi_ok || t != napi_boolean) {
    throw_type(a->env, "%s: %s must be a boolean", a->fn, name);
    return false;
  }
  napi_get_value_bool(a->env, a->argv[i], out);
  return true;
}

// A string into buf (NUL-terminated); error when missing, not a string or longer than max bytes.
static bool value_string(napi_env env, const char *fn, napi_value v, const char *name, char *buf, size_t bufsz,
                         size_t *len) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string) {
    throw_type(env, "%s: %s must be a string", fn, name);
    return false;
  }
  size_t n = 0;
  napi_get_value_string_utf8(env, v, NULL, 0, &n);
  if (n >= bufsz) return *len = n, false; // caller reports (it knows the limit's meaning)
  napi_get_value_string_utf8(env, v, buf, bufsz, &n);
  if (strlen(buf) != n) { // embedded NUL
    throw_type(env, "%s: %s contains a NUL character", fn, name);
    *len = 0;
    return false;
  }
  *len = n;
  return true;
}

// An interface name: a string of 0..IFNAMSIZ-1 bytes (0 only when allow_empty).
static bool arg_ifname(args_t *a, size_t i, char name[IFNAMSIZ], bool allow_empty) {
  if (i >= a->argc) {
    throw_type(a->env, "%s: missing interface name", a->fn);
    return false;
  }
  size_t len = 0;
  char big[IFNAMSIZ];
  if (!value_string(a->env, a->fn, a->argv[i], "interface name", big, sizeof big, &len)) {
    bool pending = false;
    napi_is_exception_pending(a->env, &pending);
    if (!pending) {
      // Too long: say so, with the (truncated) name, the way the kernel would (EINVAL).
      char shown[64];
      size_t n = 0;
      napi_get_value_string_utf8(a->env, a->argv[i], shown, sizeof shown, &n);
      throw_errno(a->env, EINVAL, "IFNAMSIZ", "%s(\"%s\"): interface name is %zu bytes, longer than %d", a->fn,
                  shown, len, IFNAMSIZ - 1);
    }
    return false;
  }
  if (len == 0 && !allow_empty) {
    throw_errno(a->env, EINVAL, "IFNAMSIZ", "%s(\"\"): empty interface name", a->fn);
    return false;
  }
  memcpy(name, big, len + 1);
  return true;
}

// Optional property of an options object. Returns false with exception pending when the object is not
// an object; *present=false when the property is absent/undefined/null.
static bool opt_prop(napi_env env, const char *fn, napi_value obj, const char *key, napi_value *out,
                     bool *present) {
  *present = false;
  bool has = false;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok) {
    throw_type(env, "%s: options must be an object", fn);
    return false;
  }
  if (!has) return true;
  if (napi_get_named_property(env, obj, key, out) != napi_ok) return false;
  napi_valuetype t;
  napi_typeof(env, *out, &t);
  *present = !(t == napi_undefined || t == napi_null);
  return true;
}

// Options argument i: undefined/null -> no options (*obj=NULL); otherwise must be an object.
static bool arg_opts(args_t *a, size_t i, napi_value *obj) {
  *obj = NULL;
  if (is_nullish(a, i)) return true;
  napi_valuetype t;
  napi_typeof(a->env, a->argv[i], &t);
  if (t != napi_object) {
    throw_type(a->env, "%s: options must be an object", a->fn);
    return false;
  }
  *obj = a->argv[i];
  return true;
}

static bool opt_bool(args_t *a, napi_value obj, const char *key, bool dflt, bool *out) {
  *out = dflt;
  if (!obj) return true;
  napi_value v;
  bool present;
  if (!opt_prop(a->env, a->fn, obj, key, &v, &present)) return false;
  if (!present) return true;
  napi_valuetype t;
  napi_typeof(a->env, v, &t);
  if (t != napi_boolean) {
    throw_type(a->env, "%s: options.%s must be a boolean", a->fn, key);
    return false;
  }
  napi_get_value_bool(a->env, v, out);
  return true;
}

static bool opt_int(args_t *a, napi_value obj, const char *key, int64_t min, int64_t max, int64_t dflt,
                    int64_t *out, bool *present) {
  *out = dflt;
  *present = false;
  if (!obj) return true;
  napi_value v;
  if (!opt_prop(a->env, a->fn, obj, key, &v, present)) return false;
  if (!*present) return true;
  char name[64];
  snprintf(name, sizeof name, "options.%s", key);
  return value_int(a->env, a->fn, v, name, min, max, out);
}

// A typed array of exactly type `want`; returns its data and element count. Missing -> TypeError.
static bool value_typed(napi_env env, const char *fn, napi_value v, const char *name, napi_typedarray_type want,
                        const char *want_name, void **data, size_t *len) {
  bool is = false;
  napi_typedarray_type type;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, v, &type, len, data, NULL, NULL) != napi_ok || type != want) {
    throw_type(env, "%s: %s must be a %s", fn, name, want_name);
    return false;
  }
  return true;
}

static bool arg_typed(args_t *a, size_t i, const char *name, napi_typedarray_type want, const char *want_name,
                      void **data, size_t *len) {
  if (i >= a->argc) {
    throw_type(a->env, "%s: %s must be a %s", a->fn, name, want_name);
    return false;
  }
  return value_typed(a->env, a->fn, a->argv[i], name, want, want_name, data, len);
}

static bool arg_typed_opt(args_t *a, size_t i, const char *name, napi_typedarray_type want,
                          const char *want_name, void **data, size_t *len) {
  *data = NULL;
  *len = 0;
  if (is_nullish(a, i)) return true;
  return value_typed(a->env, a->fn, a->argv[i], name, want, want_name, data, len);
}

// The packet arena: a Uint8Array (normally over a SharedArrayBuffer; N-API in Node 20 cannot open a
// SharedArrayBuffer itself, the TS wrapper passes a cached view) or an ArrayBuffer.
static bool arg_arena(args_t *a, size_t i, uint8_t **data, size_t *len) {
  napi_env env = a->env;
  if (i < a->argc) {
    bool is = false;
    napi_typedarray_type type;
    void *d;
    if (napi_is_typedarray(env, a->argv[i], &is) == napi_ok && is &&
        napi_get_typedarray_info(env, a->argv[i], &type, len, &d, NULL, NULL) == napi_ok &&
        (type == napi_uint8_array || type == napi_uint8_clamped_array || type == napi_int8_array)) {
      *data = d;
      return true;
    }
    if (napi_is_arraybuffer(env, a->argv[i], &is) == napi_ok && is &&
        napi_get_arraybuffer_info(env, a->argv[i], &d, len) == napi_ok) {
      *data = d;
      return true;
    }
  }
  throw_type(env, "%s: arena must be a Uint8Array (over the SharedArrayBuffer) or an ArrayBuffer", a->fn);
  return false;
}

static napi_value make_int(napi_env env, int64_t v) {
  napi_value r;
  napi_create_int64(env, v, &r);
  return r;
}

static napi_value make_undefined(napi_env env) {
  napi_value r;
  napi_get_undefined(env, &r);
  return r;
}

// ---------------------------------------------------------------------------------------------------
// Interface ioctls (a throwaway AF_INET datagram socket; control path only)

typedef enum { IF_INDEX, IF_MAC, IF_UP, IF_MTU, IF_TXQLEN } if_op;

static napi_value if_ioctl(napi_env env, napi_callback_info info, const char *fn, if_op op) {
  args_t a;
  if (!get_args(env, info, fn, &a)) return NULL;
  char name[IFNAMSIZ];
  if (!arg_ifname(&a, 0, name, false)) return NULL;
  int64_t val = 0;
  bool up = true;
  if (op == IF_MTU && !arg_int(&a, 1, "mtu", 68, 65535, &val)) return NULL;
  if (op == IF_TXQLEN && !arg_int(&a, 1, "txqueuelen", 0, INT32_MAX, &val)) return NULL;
  if (op == IF_UP && !is_nullish(&a, 1) && !arg_bool(&a, 1, "up", &up)) return NULL;

  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    throw_errno(env, errno, "socket", "%s(\"%s\")", fn, name);
    return NULL;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, strlen(name) + 1);
  napi_value result = NULL;
  int rc;
  const char *sys;
  switch (op) {
  case IF_INDEX:
    sys = "SIOCGIFINDEX";
    if ((rc = ioctl(s, SIOCGIFINDEX, &ifr)) == 0) result = make_int(env, ifr.ifr_ifindex);
    break;
  case IF_MAC:
    sys = "SIOCGIFHWADDR";
    if ((rc = ioctl(s, SIOCGIFHWADDR, &ifr)) == 0) {
      const unsigned char *m = (const unsigned char *)ifr.ifr_hwaddr.sa_data;
      char mac[18];
      snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
      napi_create_string_utf8(env, mac, NAPI_AUTO_LENGTH, &result);
    }
    break;
  case IF_UP:
    sys = "SIOCGIFFLAGS";
    if ((rc = ioctl(s, SIOCGIFFLAGS, &ifr)) == 0) {
      sys = "SIOCSIFFLAGS";
      if (up)
        ifr.ifr_flags |= IFF_UP;
      else
        ifr.ifr_flags &= ~IFF_UP;
      if ((rc = ioctl(s, SIOCSIFFLAGS, &ifr)) == 0) result = make_undefined(env);
    }
    break;
  case IF_MTU:
    sys = "SIOCSIFMTU";
    ifr.ifr_mtu = (int)val;
    if ((rc = ioctl(s, SIOCSIFMTU, &ifr)) == 0) result = make_undefined(env);
    break;
  case IF_TXQLEN:
  default:
    sys = "SIOCSIFTXQLEN";
    ifr.ifr_qlen = (int)val;
    if ((rc = ioctl(s, SIOCSIFTXQLEN, &ifr)) == 0) result = make_undefined(env);
    break;
  }
  int err = errno;
  close(s);
  if (rc != 0) {
    throw_errno(env, err, sys, "%s(\"%s\")", fn, name);
    return NULL;
  }
  return result;
}

static napi_value IfIndex(napi_env env, napi_callback_info info) {
  return if_ioctl(env, info, "ifIndex", IF_INDEX);
}
static napi_value IfMac(napi_env env, napi_callback_info info) { return if_ioctl(env, info, "ifMac", IF_MAC); }
static napi_value IfSetUp(napi_env env, napi_callback_info info) {
  return if_ioctl(env, info, "ifSetUp", IF_UP);
}
static napi_value IfSetMtu(napi_env env, napi_callback_info info) {
  return if_ioctl(env, info, "ifSetMtu", IF_MTU);
}
static napi_value SetTxQueueLen(napi_env env, napi_callback_info info) {
  return if_ioctl(env, info, "setTxQueueLen", IF_TXQLEN);
}

// ---------------------------------------------------------------------------------------------------
// TAP

// Opens the calling thread's own network namespace (to return to it after a setns()).
static int open_thread_netns(const char **path) {
  *path = "/proc/thread-self/ns/net";
  int fd = open(*path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) { // kernels before 3.17 have no /proc/thread-self
    static __thread char p[64];
    snprintf(p, sizeof p, "/proc/self/task/%ld/ns/net", (long)syscall(SYS_gettid));
    *path = p;
    fd = open(p, O_RDONLY | O_CLOEXEC);
  }
  return fd;
}

// open("/dev/net/tun") with the calling thread in the network namespace at `netns` (a bind-mounted
// /var/run/netns/NAME or /proc/PID/ns/net): tun_chr_open() binds the file to current's netns, and
// TUNSETIFF later creates or finds the interface there. The thread always goes back to its own
// namespace before this returns; if that fails the process aborts (a JS thread silently living in
// another namespace would open sockets and ioctl interfaces there). Returns the fd, or -1 with
// *err / *sys set (the thread's namespace unchanged).
static int tun_open_in_netns(const char *netns, const char *what, int *err, const char **sys) {
  const char *self_path;
  int self = open_thread_netns(&self_path);
  if (self < 0) {
    *err = errno;
    *sys = "open /proc/thread-self/ns/net";
    return -1;
  }
  int target = open(netns, O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    *err = errno;
    *sys = "open";
    close(self);
    return -1;
  }
  if (setns(target, CLONE_NEWNET) != 0) { // EINVAL: not a network namespace; EPERM: no CAP_SYS_ADMIN
    *err = errno;
    *sys = "setns";
    close(target);
    close(self);
    return -1;
  }
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  int open_err = errno;
  if (setns(self, CLONE_NEWNET) != 0) {
    int e = errno;
    char desc[128];
    const char *d = strerror_r(e, desc, sizeof desc);
    fprintf(stderr,
            "calitap_io: FATAL: %s: cannot return thread %ld to its network namespace (%s): setns: %s (%s); "
            "aborting rather than keep running in %s\n",
            what, (long)syscall(SYS_gettid), self_path, d, errno_name(e), netns);
    fflush(stderr);
    abort();
  }
  close(target);
  close(self);
  if (fd < 0) {
    *err = open_err;
    *sys = "open /dev/net/tun";
  }
  return fd;
}

// tapOpen(name, { multiQueue, vnetHdr, persist, noPi = true, netns }) -> { fd, name }
// netns: path of a network namespace file; /dev/net/tun is opened in it, so the TAP is created or
// (re)attached there, e.g. another queue of a workload's eth0 after a restart.
static napi_value TapOpen(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, "tapOpen", &a)) return NULL;
  char name[IFNAMSIZ];
  if (!arg_ifname(&a, 0, name, true)) return NULL;
  napi_value opts;
  if (!arg_opts(&a, 1, &opts)) return NULL;
  bool mq, vnet, persist, nopi;
  if (!opt_bool(&a, opts, "multiQueue", false, &mq) || !opt_bool(&a, opts, "vnetHdr", false, &vnet) ||
      !opt_bool(&a, opts, "persist", false, &persist) || !opt_bool(&a, opts, "noPi", true, &nopi))
    return NULL;
  char netns[256] = "";
  if (opts) {
    napi_value v;
    bool present;
    if (!opt_prop(env, a.fn, opts, "netns", &v, &present)) return NULL;
    if (present) {
      size_t len = 0;
      if (!value_string(env, a.fn, v, "options.netns", netns, sizeof netns, &len)) {
        bool pending = false;
        napi_is_exception_pending(env, &pending);
        if (!pending)
          throw_range(env, "tapOpen(\"%s\"): options.netns is %zu bytes, longer than %zu", name, len,
                      sizeof netns - 1);
        return NULL;
      }
      if (len == 0) { // never fall back to the current namespace on a blank path
        throw_type(env, "tapOpen(\"%s\"): options.netns must be a non-empty path", name);
        return NULL;
      }
    }
  }
  char what[IFNAMSIZ + sizeof netns + 32];
  if (netns[0])
    snprintf(what, sizeof what, "tapOpen(\"%s\", netns=%s)", name, netns);
  else
    snprintf(what, sizeof what, "tapOpen(\"%s\")", name);

  int fd;
  if (netns[0]) {
    int err;
    const char *sys;
    fd = tun_open_in_netns(netns, what, &err, &sys);
    if (fd < 0) {
      throw_errno(env, err, sys, "%s", what);
      return NULL;
    }
  } else {
    fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      throw_errno(env, errno, "open /dev/net/tun", "%s", what);
      return NULL;
    }
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, strlen(name) + 1);
  ifr.ifr_flags = IFF_TAP | (nopi ? IFF_NO_PI : 0) | (mq ? IFF_MULTI_QUEUE : 0) | (vnet ? IFF_VNET_HDR : 0);
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
    int err = errno;
    close(fd);
    throw_errno(env, err, "TUNSETIFF", "%s", what);
    return NULL;
  }
  if (persist && ioctl(fd, TUNSETPERSIST, 1) != 0) {
    int err = errno;
    close(fd);
    throw_errno(env, err, "TUNSETPERSIST", "%s", what);
    return NULL;
  }
  napi_value obj, vname;
  napi_create_object(env, &obj);
  napi_set_named_property(env, obj, "fd", make_int(env, fd));
  ifr.ifr_name[IFNAMSIZ - 1] = 0;
  napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &vname);
  napi_set_named_property(env, obj, "name", vname);
  return obj;
}

// ioctl(fd, req, (unsigned long)value) for the TUNSET* calls that take an integer argument.
static napi_value tap_ioctl_int(napi_env env, napi_callback_info info, const char *fn, unsigned long req,
                                const char *reqname, bool by_pointer, int64_t min, int64_t max) {
  args_t a;
  if (!get_args(env, info, fn, &a)) return NULL;
  int fd;
  if (!arg_fd(&a, 0, &fd)) return NULL;
  int64_t v;
  if (req == TUNSETPERSIST) {
    bool on;
    if (!arg_bool(&a, 1, "on", &on)) return NULL;
    v = on;
  } else if (!arg_int(&a, 1, "value", min, max, &v)) {
    return NULL;
  }
  int iv = (int)v;
  int rc = by_pointer ? ioctl(fd, req, &iv) : ioctl(fd, req, (unsigned long)v);
  if (rc != 0) {
    throw_errno(env, errno, reqname, "%s(fd %d)", fn, fd);
    return NULL;
  }
  return make_undefined(env);
}

static napi_value TapSetPersist(napi_env env, napi_callback_info info) {
  return tap_ioctl_int(env, info, "tapSetPersist", TUNSETPERSIST, "TUNSETPERSIST", false, 0, 1);
}
static napi_value TapSetOffload(napi_env env, napi_callback_info info) {
  return tap_ioctl_int(env, info, "tapSetOffload", TUNSETOFFLOAD, "TUNSETOFFLOAD", false, 0, 0xffff);
}
static napi_value TapSetVnetHdrSize(napi_env env, napi_callback_info info) {
  return tap_ioctl_int(env, info, "tapSetVnetHdrSize", TUNSETVNETHDRSZ, "TUNSETVNETHDRSZ", true, 0, 4096);
}

// ---------------------------------------------------------------------------------------------------
// Sockets

static void set_rcvbuf(int fd, int64_t bytes) {
  int v = (int)bytes;
  // SO_RCVBUFFORCE ignores rmem_max (needs CAP_NET_ADMIN); fall back to the capped SO_RCVBUF.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
}

static void set_sndbuf(int fd, int64_t bytes) {
  int v = (int)bytes;
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof v) != 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
}

// packetSocket(ifname, { fanoutGroup, fanoutMode: 0 hash | 1 lb | 2 cpu, bpf: Uint8Array, rcvbuf,
//   sndbuf, ignoreOutgoing = true, vnetHdr = false }) -> fd
static napi_value PacketSocket(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, "packetSocket", &a)) return NULL;
  char name[IFNAMSIZ];
  if (!arg_ifname(&a, 0, name, false)) return NULL;
  napi_value opts;
  if (!arg_opts(&a, 1, &opts)) return NULL;
  int64_t group, mode, rcvbuf, sndbuf;
  bool has_group, has_mode, has_rcvbuf, has_sndbuf, ignore_out, vnet_hdr, has_bpf = false;
  if (!opt_bool(&a, opts, "vnetHdr", false, &vnet_hdr) ||
      !opt_int(&a, opts, "fanoutGroup", 0, 0xffff, 0, &group, &has_group) ||
      !opt_int(&a, opts, "fanoutMode", 0, 0xff, PACKET_FANOUT_HASH, &mode, &has_mode) ||
      !opt_int(&a, opts, "rcvbuf", 0, INT32_MAX, 0, &rcvbuf, &has_rcvbuf) ||
      !opt_int(&a, opts, "sndbuf", 0, INT32_MAX, 0, &sndbuf, &has_sndbuf) ||
      !opt_bool(&a, opts, "ignoreOutgoing", true, &ignore_out))
    return NULL;
  void *bpf = NULL;
  size_t bpf_len = 0;
  if (opts) {
    napi_value v;
    if (!opt_prop(env, a.fn, opts, "bpf", &v, &has_bpf)) return NULL;
    if (has_bpf) {
      if (!value_typed(env, a.fn, v, "options.bpf", napi_uint8_array, "Uint8Array", &bpf, &bpf_len)) return NULL;
      if (bpf_len == 0 || bpf_len % sizeof(struct sock_filter) != 0 ||
          bpf_len / sizeof(struct sock_filter) > BPF_MAXINSNS) {
        throw_range(env, "packetSocket(\"%s\"): options.bpf must hold 1..%d sock_filter structs of 8 bytes, got %zu bytes",
                    name, BPF_MAXINSNS, bpf_len);
        return NULL;
      }
    }
  }

  unsigned idx = if_nametoindex(name);
  if (idx == 0) {
    throw_errno(env, errno, "if_nametoindex", "packetSocket(\"%s\")", name);
    return NULL;
  }
  // Protocol 0 until bind: nothing is queued before the filter is attached.
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, errno, "socket(AF_PACKET)", "packetSocket(\"%s\")", name);
    return NULL;
  }
  const char *sys = NULL;
  if (has_bpf) {
    // Copy: the Uint8Array need not be aligned for struct sock_filter.
    struct sock_filter *prog = malloc(bpf_len);
    if (!prog) {
      errno = ENOMEM;
      sys = "malloc";
      goto fail;
    }
    memcpy(prog, bpf, bpf_len);
    struct sock_fprog fprog = {.len = (unsigned short)(bpf_len / sizeof *prog), .filter = prog};
    int rc = setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog);
    int err = errno;
    free(prog);
    errno = err;
    if (rc != 0) {
      sys = "SO_ATTACH_FILTER";
      goto fail;
    }
  }
  if (has_rcvbuf) set_rcvbuf(fd, rcvbuf);
  if (has_sndbuf) set_sndbuf(fd, sndbuf);
  if (ignore_out) {
    int one = 1;
    if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) != 0) {
      sys = "PACKET_IGNORE_OUTGOING";
      goto fail;
    }
  }
  if (vnet_hdr) {
    // every frame read or written carries a struct virtio_net_hdr (10 bytes) in front: the reader
    // learns about partial checksums (veth, virtio) and GSO; the writer sends zeros (no offload)
    int one = 1;
    if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) != 0) {
      sys = "PACKET_VNET_HDR";
      goto fail;
    }
  }
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = (int)idx;
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) != 0) {
    sys = "bind";
    goto fail;
  }
  if (has_group) {
    int arg = (int)(group | (mode << 16));
    if (setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) != 0) {
      sys = "PACKET_FANOUT";
      goto fail;
    }
  }
  (void)has_mode;
  return make_int(env, fd);
fail : {
  int err = errno;
  close(fd);
  throw_errno(env, err, sys, "packetSocket(\"%s\")", name);
  return NULL;
}
}

static bool parse_ipv4(args_t *a, size_t i, const char *name, struct in_addr *out) {
  char buf[INET_ADDRSTRLEN + 1];
  size_t len = 0;
  if (i >= a->argc) {
    throw_type(a->env, "%s: missing %s", a->fn, name);
    return false;
  }
  if (!value_string(a->env, a->fn, a->argv[i], name, buf, sizeof buf, &len) ||
      inet_pton(AF_INET, buf, out) != 1) {
    bool pending = false;
    napi_is_exception_pending(a->env, &pending);
    if (!pending) throw_type(a->env, "%s: %s must be a dotted-quad IPv4 address", a->fn, name);
    return false;
  }
  return true;
}

// udpSocket(bindAddr, port, { rcvbuf, sndbuf, reusePort }) -> fd
static napi_value UdpSocket(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, "udpSocket", &a)) return NULL;
  struct in_addr addr;
  if (!parse_ipv4(&a, 0, "bindAddr", &addr)) return NULL;
  int64_t port, rcvbuf, sndbuf;
  bool has_rcvbuf, has_sndbuf, reuse;
  napi_value opts;
  if (!arg_int(&a, 1, "port", 0, 65535, &port) || !arg_opts(&a, 2, &opts) ||
      !opt_int(&a, opts, "rcvbuf", 0, INT32_MAX, 0, &rcvbuf, &has_rcvbuf) ||
      !opt_int(&a, opts, "sndbuf", 0, INT32_MAX, 0, &sndbuf, &has_sndbuf) ||
      !opt_bool(&a, opts, "reusePort", false, &reuse))
    return NULL;
  char shown[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &addr, shown, sizeof shown);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, errno, "socket(AF_INET, SOCK_DGRAM)", "udpSocket(%s:%d)", shown, (int)port);
    return NULL;
  }
  if (has_rcvbuf) set_rcvbuf(fd, rcvbuf);
  if (has_sndbuf) set_sndbuf(fd, sndbuf);
  int one = 1;
  if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    int err = errno;
    close(fd);
    throw_errno(env, err, "SO_REUSEPORT", "udpSocket(%s:%d)", shown, (int)port);
    return NULL;
  }
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = addr};
  if (bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
    int err = errno;
    close(fd);
    throw_errno(env, err, "bind", "udpSocket(%s:%d)", shown, (int)port);
    return NULL;
  }
  return make_int(env, fd);
}

// rawSocket(protocol, { rcvbuf, sndbuf, hdrIncl }) -> fd (AF_INET SOCK_RAW)
// A one-instruction classic BPF program, "ret #0": the socket accepts nothing. Used for the sockets
// that only exist to keep the kernel quiet (it does not send ICMP unreachable for a protocol or port
// that has a socket): with the filter their receive queue never fills, so the kernel keeps counting
// packets as delivered to them (a full raw socket is skipped since Linux 6.9).
static int attach_drop_all(int fd) {
  struct sock_filter ret0 = {0x06, 0, 0, 0};
  struct sock_fprog fprog = {.len = 1, .filter = &ret0};
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog);
}

static napi_value RawSocket(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, "rawSocket", &a)) return NULL;
  int64_t proto, rcvbuf, sndbuf;
  bool has_rcvbuf, has_sndbuf, hdrincl, drop_all;
  napi_value opts;
  if (!arg_int(&a, 0, "protocol", 0, 255, &proto) || !arg_opts(&a, 1, &opts) ||
      !opt_int(&a, opts, "rcvbuf", 0, INT32_MAX, 0, &rcvbuf, &has_rcvbuf) ||
      !opt_int(&a, opts, "sndbuf", 0, INT32_MAX, 0, &sndbuf, &has_sndbuf) ||
      !opt_bool(&a, opts, "hdrIncl", false, &hdrincl) || !opt_bool(&a, opts, "dropAll", false, &drop_all))
    return NULL;
  int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, (int)proto);
  if (fd < 0) {
    throw_errno(env, errno, "socket(AF_INET, SOCK_RAW)", "rawSocket(%d)", (int)proto);
    return NULL;
  }
  if (drop_all && attach_drop_all(fd) != 0) {
    int err = errno;
    close(fd);
    throw_errno(env, err, "SO_ATTACH_FILTER", "rawSocket(%d)", (int)proto);
    return NULL;
  }
  if (has_rcvbuf) set_rcvbuf(fd, rcvbuf);
  if (has_sndbuf) set_sndbuf(fd, sndbuf);
  int one = 1;
  if (hdrincl && setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof one) != 0) {
    int err = errno;
    close(fd);
    throw_errno(env, err, "IP_HDRINCL", "rawSocket(%d)", (int)proto);
    return NULL;
  }
  return make_int(env, fd);
}

// sockName(fd) -> { address, port } of an AF_INET socket.
static napi_value SockName(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, "sockName", &a)) return NULL;
  int fd;
  if (!arg_fd(&a, 0, &fd)) return NULL;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
    throw_errno(env, errno, "getsockname", "sockName(fd %d)", fd);
    return NULL;
  }
  if (ss.ss_family != AF_INET) {
    throw_errno(env, EAFNOSUPPORT, "getsockname", "sockName(fd %d)", fd);
    return NULL;
  }
  struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
  napi_value obj, vaddr;
  napi_create_object(env, &obj);
  napi_create_string_utf8(env, buf, NAPI_AUTO_LENGTH, &vaddr);
  napi_set_named_property(env, obj, "address", vaddr);
  napi_set_named_property(env, obj, "port", make_int(env, ntohs(sin->sin_port)));
  return obj;
}

static napi_value Close(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, "close", &a)) return NULL;
  int fd;
  if (!arg_fd(&a, 0, &fd)) return NULL;
  // Linux releases the fd even when close() reports EINTR: never retry.
  if (close(fd) != 0 && errno != EINTR) {
    throw_errno(env, errno, "close", "close(fd %d)", fd);
    return NULL;
  }
  return make_undefined(env);
}

// fdMode(fd) -> MODE_RW (1) or MODE_MMSG (2): what readBatch/writeBatch would pick for this fd.
static int detect_mode(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -1;
  return S_ISSOCK(st.st_mode) ? MODE_MMSG : MODE_RW;
}

static napi_value FdMode(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, "fdMode", &a)) return NULL;
  int fd;
  if (!arg_fd(&a, 0, &fd)) return NULL;
  int m = detect_mode(fd);
  if (m < 0) {
    throw_errno(env, errno, "fstat", "fdMode(fd %d)", fd);
    return NULL;
  }
  return make_int(env, m);
}

// ---------------------------------------------------------------------------------------------------
// Batched I/O (the hot path)

// Per-frame send errors that drop that frame and let the batch continue (the frame's status gets the
// errno). Anything else (EBADF, EBADFD, EFAULT, ENOTSOCK, EDESTADDRREQ...) is a broken fd: throw.
static bool is_drop_errno(int e) {
  switch (e) {
  case ENOBUFS:      // qdisc or device queue full
  case ENOMEM:       // no skb
  case EMSGSIZE:     // frame longer than the device MTU (+ header)
  case EINVAL:       // malformed frame (e.g. TAP: shorter than an Ethernet header)
  case EIO:          // TAP: the interface is down
  case ENETDOWN:     // interface down
  case ENXIO:        // packet socket: device gone / down
  case ENETUNREACH:  // UDP/raw: no route
  case EHOSTUNREACH: // UDP/raw: no route / neighbour failed
  case EHOSTDOWN:
  case ECONNREFUSED: // UDP: an earlier ICMP port unreachable (reported once)
  case EPERM:        // dropped by a local policy
  case EACCES:       // broadcast without SO_BROADCAST
  case EADDRNOTAVAIL:
    return true;
  default:
    return false;
  }
}

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

// readBatch(fd, arena, offsets: Uint32Array, lens: Uint32Array, count, slotCapacity, mode,
//           srcAddrs?: Uint32Array, srcPorts?: Uint16Array) -> frames read (0 on EAGAIN)
static napi_value ReadBatch(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, "readBatch", &a)) return NULL;
  int fd;
  uint8_t *arena;
  size_t arena_len, noff, nlen, naddr = 0, nport = 0;
  uint32_t *offs, *lens, *addrs;
  uint16_t *ports;
  int64_t count, cap, mode;
  if (!arg_fd(&a, 0, &fd) || !arg_arena(&a, 1, &arena, &arena_len) ||
      !arg_typed(&a, 2, "offsets", napi_uint32_array, "Uint32Array", (void **)&offs, &noff) ||
      !arg_typed(&a, 3, "lens", napi_uint32_array, "Uint32Array", (void **)&lens, &nlen) ||
      !arg_int(&a, 4, "count", 0, UINT32_MAX, &count) || !arg_int(&a, 5, "slotCapacity", 1, UINT32_MAX, &cap) ||
      !arg_int_opt(&a, 6, "mode", MODE_AUTO, MODE_MMSG, MODE_AUTO, &mode) ||
      !arg_typed_opt(&a, 7, "srcAddrs", napi_uint32_array, "Uint32Array", (void **)&addrs, &naddr) ||
      !arg_typed_opt(&a, 8, "srcPorts", napi_uint16_array, "Uint16Array", (void **)&ports, &nport))
    return NULL;
  size_t n = (size_t)count;
  if (n > noff || n > nlen || (addrs && n > naddr) || (ports && n > nport)) {
    throw_range(env, "readBatch(fd %d): count %zu exceeds the length of offsets/lens/srcAddrs/srcPorts", fd, n);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    if ((uint64_t)offs[i] + (uint64_t)cap > arena_len) {
      throw_range(env, "readBatch(fd %d): slot %zu [%u, %u+%lld) is outside the arena (%zu bytes)", fd, i,
                  offs[i], offs[i], (long long)cap, arena_len);
      return NULL;
    }
  }
  if (n == 0) return make_int(env, 0);
  if (!resolve_mode(env, fd, "readBatch", &mode)) return NULL;

  size_t done = 0;
  if (mode == MODE_RW) {
    while (done < n) {
      ssize_t r = read(fd, arena + offs[done], (size_t)cap);
      if (r < 0) {
        int err = errno;
        if (err == EINTR) continue;
        // a hard error after some frames recurs on the next call
        if (err == EAGAIN || err == EWOULDBLOCK || is_soft_rx_errno(err) || done > 0) break;
        throw_errno(env, err, "read", "readBatch(fd %d)", fd);
        return NULL;
      }
      if (r == 0) break; // EOF (pipes); TAP never returns 0
      // TAP returns the frame's full length even when it was cut to the slot: lens > cap = truncated.
      lens[done++] = (uint32_t)r;
    }
    return make_int(env, (int64_t)done);
  }

  struct mmsghdr msgs[MMSG_CHUNK];
  struct iovec iov[MMSG_CHUNK];
  struct sockaddr_storage from[MMSG_CHUNK];
  bool want_addr = addrs || ports;
  while (done < n) {
    size_t k = n - done < MMSG_CHUNK ? n - done : MMSG_CHUNK;
    for (size_t j = 0; j < k; j++) {
      iov[j].iov_base = arena + offs[done + j];
      iov[j].iov_len = (size_t)cap;
      memset(&msgs[j], 0, sizeof msgs[j]);
      msgs[j].msg_hdr.msg_iov = &iov[j];
      msgs[j].msg_hdr.msg_iovlen = 1;
      if (want_addr) {
        from[j].ss_family = AF_UNSPEC;
        msgs[j].msg_hdr.msg_name = &from[j];
        msgs[j].msg_hdr.msg_namelen = sizeof from[j];
      }
    }
    // MSG_TRUNC: msg_len is the real length even when the frame was cut to the slot.
    int r = recvmmsg(fd, msgs, (unsigned)k, MSG_DONTWAIT | MSG_TRUNC, NULL);
    if (r < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK || is_soft_rx_errno(err) || done > 0) break;
      throw_errno(env, err, "recvmmsg", "readBatch(fd %d)", fd);
      return NULL;
    }
    for (int j = 0; j < r; j++) {
      lens[done + j] = msgs[j].msg_len;
      if (want_addr) put_addr(&from[j], addrs, ports, done + j);
    }
    done += (size_t)r;
    if ((size_t)r < k) break; // drained
  }
  return make_int(env, (int64_t)done);
}

// writeBatch(fd, arena, offsets, lens, count, mode, status?: Int32Array, dstAddrs?: Uint32Array,
//            dstPorts?: Uint16Array) -> frames consumed (sent or dropped); stops early at EAGAIN.
static napi_value WriteBatch(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, "writeBatch", &a)) return NULL;
  int fd;
  uint8_t *arena;
  size_t arena_len, noff, nlen, nstat = 0, naddr = 0, nport = 0;
  uint32_t *offs, *lens, *addrs;
  uint16_t *ports;
  int32_t *status;
  int64_t count, mode;
  if (!arg_fd(&a, 0, &fd) || !arg_arena(&a, 1, &arena, &arena_len) ||
      !arg_typed(&a, 2, "offsets", napi_uint32_array, "Uint32Array", (void **)&offs, &noff) ||
      !arg_typed(&a, 3, "lens", napi_uint32_array, "Uint32Array", (void **)&lens, &nlen) ||
      !arg_int(&a, 4, "count", 0, UINT32_MAX, &count) ||
      !arg_int_opt(&a, 5, "mode", MODE_AUTO, MODE_MMSG, MODE_AUTO, &mode) ||
      !arg_typed_opt(&a, 6, "status", napi_int32_array, "Int32Array", (void **)&status, &nstat) ||
      !arg_typed_opt(&a, 7, "dstAddrs", napi_uint32_array, "Uint32Array", (void **)&addrs, &naddr) ||
      !arg_typed_opt(&a, 8, "dstPorts", napi_uint16_array, "Uint16Array", (void **)&ports, &nport))
    return NULL;
  size_t n = (size_t)count;
  if (n > noff || n > nlen || (status && n > nstat) || (addrs && n > naddr) || (ports && n > nport)) {
    throw_range(env, "writeBatch(fd %d): count %zu exceeds the length of offsets/lens/status/dstAddrs/dstPorts",
                fd, n);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    if ((uint64_t)offs[i] + (uint64_t)lens[i] > arena_len) {
      throw_range(env, "writeBatch(fd %d): frame %zu [%u, %u+%u) is outside the arena (%zu bytes)", fd, i,
                  offs[i], offs[i], lens[i], arena_len);
      return NULL;
    }
  }
  if (n == 0) return make_int(env, 0);
  if (!resolve_mode(env, fd, "writeBatch", &mode)) return NULL;

  size_t done = 0;
  if (mode == MODE_RW) {
    while (done < n) {
      ssize_t r = write(fd, arena + offs[done], lens[done]);
      if (r < 0) {
        int err = errno;
        if (err == EINTR) continue;
        if (err == EAGAIN || err == EWOULDBLOCK) break;
        if (is_drop_errno(err)) {
          if (status) status[done] = err;
          done++;
          continue;
        }
        if (done > 0) break;
        throw_errno(env, err, "write", "writeBatch(fd %d)", fd);
        return NULL;
      }
      if (status) status[done] = 0;
      done++;
    }
    return make_int(env, (int64_t)done);
  }

  struct mmsghdr msgs[MMSG_CHUNK];
  struct iovec iov[MMSG_CHUNK];
  struct sockaddr_in to[MMSG_CHUNK];
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
    }
    int r = sendmmsg(fd, msgs, (unsigned)k, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r < 0) {
      // The first frame of this chunk failed (sendmmsg reports an error only when nothing was sent).
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      if (is_drop_errno(err)) {
        if (status) status[done] = err;
        done++;
        continue;
      }
      if (done > 0) break;
      throw_errno(env, err, "sendmmsg", "writeBatch(fd %d)", fd);
      return NULL;
    }
    if (status)
      for (int j = 0; j < r; j++) status[done + j] = 0;
    done += (size_t)r;
    // r < k: frame done+r failed; the next sendmmsg starts with it and reports its error.
  }
  return make_int(env, (int64_t)done);
}

// ---------------------------------------------------------------------------------------------------
// Waiting

// poll(fds: Int32Array, timeoutMs, events = POLLIN) -> bitmap: bit i set when fds[i] has `events`,
// an error or a hangup. 0 = timeout (or a signal interrupted the wait). At most 31 fds.
static napi_value Poll(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, "poll", &a)) return NULL;
  int32_t *fds;
  size_t nfds;
  int64_t timeout, events;
  if (!arg_typed(&a, 0, "fds", napi_int32_array, "Int32Array", (void **)&fds, &nfds) ||
      !arg_int(&a, 1, "timeoutMs", -1, INT32_MAX, &timeout) ||
      !arg_int_opt(&a, 2, "events", 0, 0xffff, POLLIN, &events))
    return NULL;
  if (nfds > POLL_MAX) {
    throw_range(env, "poll: at most %d fds, got %zu (use epoll)", POLL_MAX, nfds);
    return NULL;
  }
  struct pollfd p[POLL_MAX];
  for (size_t i = 0; i < nfds; i++) {
    p[i].fd = fds[i];
    p[i].events = (short)events;
    p[i].revents = 0;
  }
  int r = poll(p, nfds, (int)timeout);
  if (r < 0) {
    if (errno == EINTR) return make_int(env, 0);
    throw_errno(env, errno, "poll", "poll(%zu fds)", nfds);
    return NULL;
  }
  int32_t bits = 0;
  for (size_t i = 0; i < nfds; i++) {
    if (p[i].revents & POLLNVAL) {
      throw_errno(env, EBADF, "poll", "poll(fd %d)", p[i].fd);
      return NULL;
    }
    if (p[i].revents & ((short)events | POLLERR | POLLHUP)) bits |= (int32_t)1 << i;
  }
  return make_int(env, bits);
}

static napi_value EpollCreate(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) {
    throw_errno(env, errno, "epoll_create1", "epollCreate()");
    return NULL;
  }
  return make_int(env, fd);
}

static napi_value epoll_ctl_js(napi_env env, napi_callback_info info, const char *fn, int op) {
  args_t a;
  if (!get_args(env, info, fn, &a)) return NULL;
  int epfd, fd;
  int64_t events = EPOLLIN;
  if (!arg_fd(&a, 0, &epfd) || !arg_fd(&a, 1, &fd)) return NULL;
  if (op != EPOLL_CTL_DEL && !arg_int_opt(&a, 2, "events", 0, UINT32_MAX, EPOLLIN, &events)) return NULL;
  struct epoll_event ev = {.events = (uint32_t)events, .data = {.fd = fd}};
  if (epoll_ctl(epfd, op, fd, &ev) != 0) {
    throw_errno(env, errno, "epoll_ctl", "%s(epfd %d, fd %d)", fn, epfd, fd);
    return NULL;
  }
  return make_undefined(env);
}

static napi_value EpollAdd(napi_env env, napi_callback_info info) {
  return epoll_ctl_js(env, info, "epollAdd", EPOLL_CTL_ADD);
}
static napi_value EpollMod(napi_env env, napi_callback_info info) {
  return epoll_ctl_js(env, info, "epollMod", EPOLL_CTL_MOD);
}
static napi_value EpollDel(napi_env env, napi_callback_info info) {
  return epoll_ctl_js(env, info, "epollDel", EPOLL_CTL_DEL);
}

// epollWait(epfd, readyFds: Int32Array, timeoutMs) -> number of ready fds written to readyFds
// (0 = timeout or interrupted by a signal). At most min(readyFds.length, 256) per call.
static napi_value EpollWait(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, "epollWait", &a)) return NULL;
  int epfd;
  int32_t *ready;
  size_t nready;
  int64_t timeout;
  if (!arg_fd(&a, 0, &epfd) ||
      !arg_typed(&a, 1, "readyFds", napi_int32_array, "Int32Array", (void **)&ready, &nready) ||
      !arg_int(&a, 2, "timeoutMs", -1, INT32_MAX, &timeout))
    return NULL;
  if (nready == 0) {
    throw_range(env, "epollWait(epfd %d): readyFds is empty", epfd);
    return NULL;
  }
  struct epoll_event ev[EPOLL_MAX];
  int max = nready < EPOLL_MAX ? (int)nready : EPOLL_MAX;
  int r = epoll_wait(epfd, ev, max, (int)timeout);
  if (r < 0) {
    if (errno == EINTR) return make_int(env, 0);
    throw_errno(env, errno, "epoll_wait", "epollWait(epfd %d)", epfd);
    return NULL;
  }
  for (int i = 0; i < r; i++) ready[i] = ev[i].data.fd;
  return make_int(env, r);
}

// eventfdCreate(initval = 0, semaphore = false) -> fd (non-blocking)
static napi_value EventfdCreate(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, "eventfdCreate", &a)) return NULL;
  int64_t init;
  bool sem = false;
  if (!arg_int_opt(&a, 0, "initval", 0, UINT32_MAX, 0, &init)) return NULL;
  if (!is_nullish(&a, 1) && !arg_bool(&a, 1, "semaphore", &sem)) return NULL;
  int fd = eventfd((unsigned)init, EFD_NONBLOCK | EFD_CLOEXEC | (sem ? EFD_SEMAPHORE : 0));
  if (fd < 0) {
    throw_errno(env, errno, "eventfd", "eventfdCreate()");
    return NULL;
  }
  return make_int(env, fd);
}

// eventfdWrite(fd, value = 1): adds value to the counter (wakes pollers).
static napi_value EventfdWrite(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, "eventfdWrite", &a)) return NULL;
  int fd;
  int64_t v;
  if (!arg_fd(&a, 0, &fd) || !arg_int_opt(&a, 1, "value", 1, 9007199254740991LL, 1, &v)) return NULL;
  uint64_t u = (uint64_t)v;
  ssize_t r;
  do
    r = write(fd, &u, sizeof u);
  while (r < 0 && errno == EINTR);
  if (r != (ssize_t)sizeof u) {
    throw_errno(env, r < 0 ? errno : EIO, "write", "eventfdWrite(fd %d)", fd);
    return NULL;
  }
  return make_undefined(env);
}

// eventfdRead(fd) -> the counter (and resets it; 1 in semaphore mode), 0 when it was 0.
static napi_value EventfdRead(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, "eventfdRead", &a)) return NULL;
  int fd;
  if (!arg_fd(&a, 0, &fd)) return NULL;
  uint64_t u = 0;
  ssize_t r;
  do
    r = read(fd, &u, sizeof u);
  while (r < 0 && errno == EINTR);
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return make_int(env, 0);
  if (r != (ssize_t)sizeof u) {
    throw_errno(env, r < 0 ? errno : EIO, "read", "eventfdRead(fd %d)", fd);
    return NULL;
  }
  napi_value v;
  napi_create_double(env, (double)u, &v);
  return v;
}

// ---------------------------------------------------------------------------------------------------
// Module

static void export_int(napi_env env, napi_value obj, const char *name, int64_t v) {
  napi_set_named_property(env, obj, name, make_int(env, v));
}

NAPI_MODULE_INIT() {
  static const struct {
    const char *name;
    napi_callback cb;
  } fns[] = {
      {"tapOpen", TapOpen},
      {"tapSetPersist", TapSetPersist},
      {"tapSetOffload", TapSetOffload},
      {"tapSetVnetHdrSize", TapSetVnetHdrSize},
      {"setTxQueueLen", SetTxQueueLen},
      {"ifIndex", IfIndex},
      {"ifMac", IfMac},
      {"ifSetUp", IfSetUp},
      {"ifSetMtu", IfSetMtu},
      {"packetSocket", PacketSocket},
      {"udpSocket", UdpSocket},
      {"rawSocket", RawSocket},
      {"sockName", SockName},
      {"close", Close},
      {"fdMode", FdMode},
      {"readBatch", ReadBatch},
      {"writeBatch", WriteBatch},
      {"poll", Poll},
      {"epollCreate", EpollCreate},
      {"epollAdd", EpollAdd},
      {"epollMod", EpollMod},
      {"epollDel", EpollDel},
      {"epollWait", EpollWait},
      {"eventfdCreate", EventfdCreate},
      {"eventfdWrite", EventfdWrite},
      {"eventfdRead", EventfdRead},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].cb, NULL, &f) != napi_ok) return NULL;
    if (napi_set_named_property(env, exports, fns[i].name, f) != napi_ok) return NULL;
  }
  napi_value c;
  napi_create_object(env, &c);
  export_int(env, c, "MODE_AUTO", MODE_AUTO);
  export_int(env, c, "MODE_RW", MODE_RW);
  export_int(env, c, "MODE_MMSG", MODE_MMSG);
  export_int(env, c, "TUN_F_CSUM", TUN_F_CSUM);
  export_int(env, c, "TUN_F_TSO4", TUN_F_TSO4);
  export_int(env, c, "TUN_F_TSO6", TUN_F_TSO6);
  export_int(env, c, "TUN_F_TSO_ECN", TUN_F_TSO_ECN);
  export_int(env, c, "TUN_F_UFO", TUN_F_UFO);
  export_int(env, c, "PACKET_FANOUT_HASH", PACKET_FANOUT_HASH);
  export_int(env, c, "PACKET_FANOUT_LB", PACKET_FANOUT_LB);
  export_int(env, c, "PACKET_FANOUT_CPU", PACKET_FANOUT_CPU);
  export_int(env, c, "POLLIN", POLLIN);
  export_int(env, c, "POLLOUT", POLLOUT);
  export_int(env, c, "EPOLLIN", EPOLLIN);
  export_int(env, c, "EPOLLOUT", EPOLLOUT);
  export_int(env, c, "MMSG_CHUNK", MMSG_CHUNK);
  export_int(env, c, "POLL_MAX", POLL_MAX);
  napi_set_named_property(env, exports, "constants", c);
  return exports;
}
