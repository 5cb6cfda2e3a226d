// calitap_io shared declarations: the constants every module agrees on, the argument-parsing and
// error helpers (common.c) and each module's registration function (called by addon.c).
//
// What flows through it: nothing at run time; it only declares. Who owns the buffers: the calling JS
// thread owns every arena and typed array a function receives; native code touches them only during
// the call. Which thread runs it: any JS thread (the addon is context-aware, no mutable globals).
//
// Errors (common.c): a failing syscall throws an Error whose message names the call, its argument
// (interface name or fd) and strerror(errno), with `code` = the errno name ("EBADF"), `errno` = the
// number and `syscall` = the failing system call. Bad argument types throw TypeError (code
// ERR_INVALID_ARG_TYPE), bad ranges RangeError (code ERR_OUT_OF_RANGE).
#ifndef CALITAP_IO_COMMON_H
#define CALITAP_IO_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <node_api.h>

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
#define MAX_ARGS 12

// ---------------------------------------------------------------------------------------------------
// Errors

const char *errno_name(int e);
// Throws Error("<what>: <syscall>: <strerror> (<ENAME>)") with code/errno/syscall properties.
void throw_errno(napi_env env, int err, const char *syscall, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void throw_type(napi_env env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void throw_range(napi_env env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool exception_pending(napi_env env);

// ---------------------------------------------------------------------------------------------------
// Arguments: each helper returns false with a JS exception pending when the argument is unusable.

typedef struct {
  napi_env env;
  const char *fn;
  size_t argc;
  napi_value argv[MAX_ARGS];
} args_t;

bool get_args(napi_env env, napi_callback_info info, const char *fn, args_t *a);
bool is_nullish(args_t *a, size_t i);
bool value_int(napi_env env, const char *fn, napi_value v, const char *name, int64_t min, int64_t max,
               int64_t *out);
bool arg_int(args_t *a, size_t i, const char *name, int64_t min, int64_t max, int64_t *out);
// Optional integer argument (undefined/null -> dflt).
bool arg_int_opt(args_t *a, size_t i, const char *name, int64_t min, int64_t max, int64_t dflt,
                 int64_t *out);
bool arg_fd(args_t *a, size_t i, int *fd);
bool arg_bool(args_t *a, size_t i, const char *name, bool *out);
// A string into buf (NUL-terminated); false without an exception pending when longer than bufsz-1
// bytes (*len = its length: the caller reports, it knows the limit's meaning).
bool value_string(napi_env env, const char *fn, napi_value v, const char *name, char *buf, size_t bufsz,
                  size_t *len);
// An interface name: a string of 0..IFNAMSIZ-1 bytes (0 only when allow_empty).
bool arg_ifname(args_t *a, size_t i, char name[IFNAMSIZ], bool allow_empty);
// A dotted-quad IPv4 address argument, into network byte order.
bool arg_ipv4(args_t *a, size_t i, const char *name, uint32_t *be_addr);
// Options argument i: undefined/null -> no options (*obj=NULL); otherwise must be an object.
bool arg_opts(args_t *a, size_t i, napi_value *obj);
// Optional property of an options object (*present=false when absent/undefined/null).
bool opt_prop(napi_env env, const char *fn, napi_value obj, const char *key, napi_value *out, bool *present);
bool opt_bool(args_t *a, napi_value obj, const char *key, bool dflt, bool *out);
bool opt_int(args_t *a, napi_value obj, const char *key, int64_t min, int64_t max, int64_t dflt, int64_t *out,
             bool *present);
// A typed array of exactly type `want`; returns its data and element count.
bool value_typed(napi_env env, const char *fn, napi_value v, const char *name, napi_typedarray_type want,
                 const char *want_name, void **data, size_t *len);
bool arg_typed(args_t *a, size_t i, const char *name, napi_typedarray_type want, const char *want_name,
               void **data, size_t *len);
bool arg_typed_opt(args_t *a, size_t i, const char *name, napi_typedarray_type want, const char *want_name,
                   void **data, size_t *len);
// The packet arena: a Uint8Array (normally over a SharedArrayBuffer) or an ArrayBuffer.
bool arg_arena(args_t *a, size_t i, uint8_t **data, size_t *len);

napi_value make_int(napi_env env, int64_t v);
napi_value make_undefined(napi_env env);

// ---------------------------------------------------------------------------------------------------
// Module registration: each concern adds its functions (and constants) to the exports object.

typedef struct {
  const char *name;
  napi_callback cb;
} fn_entry;

bool export_fns(napi_env env, napi_value exports, const fn_entry *fns, size_t n);
void export_int(napi_env env, napi_value obj, const char *name, int64_t v);

bool tap_init(napi_env env, napi_value exports, napi_value constants);     // tap.c
bool sockets_init(napi_env env, napi_value exports, napi_value constants); // sockets.c
bool batch_init(napi_env env, napi_value exports, napi_value constants);   // batch_io.c
bool poll_init(napi_env env, napi_value exports, napi_value constants);    // poll.c
bool offload_init(napi_env env, napi_value exports, napi_value constants); // offload.c
bool gro_init(napi_env env, napi_value exports, napi_value constants);     // gro.c (GRO hook)
bool uring_init(napi_env env, napi_value exports, napi_value constants);   // uring.c (io_uring batches)
// errnos that refuse one frame and let a batch go on (batch_io.c; gro.c shares it: GRO hook)
bool tx_drop_errno(int e);

// netns.c: open("/dev/net/tun") with the calling thread in the network namespace at `netns`;
// returns the fd, or -1 with *err / *sys set. Aborts the process if the thread cannot go back.
int tun_open_in_netns(const char *netns, const char *what, int *err, const char **sys);

// sockets.c: what readBatch/writeBatch would pick for fd (MODE_RW or MODE_MMSG), -1 with errno.
int detect_mode(int fd);

#endif
