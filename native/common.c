// calitap_io common helpers: errno errors, argument parsing and export registration shared by every
// module (declared in common.h).
//
// What flows through it: JS values handed to the addon's functions, checked and converted to C types;
// errors thrown back as JS exceptions. Who owns the buffers: the caller; typed-array pointers returned
// here are valid only during the current call. Which thread runs it: any JS thread.
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

// ---------------------------------------------------------------------------------------------------
// Errors

const char *errno_name(int e) {
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
void throw_errno(napi_env env, int err, const char *syscall, const char *fmt, ...) {
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

void throw_type(napi_env env, const char *fmt, ...) {
  char msg[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
}

bool exception_pending(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  return pending;
}

void throw_range(napi_env env, const char *fmt, ...) {
  char msg[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
}

// ---------------------------------------------------------------------------------------------------
// Arguments

bool get_args(napi_env env, napi_callback_info info, const char *fn, args_t *a) {
  a->env = env;
  a->fn = fn;
  a->argc = MAX_ARGS;
  if (napi_get_cb_info(env, info, &a->argc, a->argv, NULL, NULL) != napi_ok) {
    throw_type(env, "%s: cannot read arguments", fn);
    return false;
  }
  return true;
}

bool is_nullish(args_t *a, size_t i) {
  if (i >= a->argc) return true;
  napi_valuetype t;
  if (napi_typeof(a->env, a->argv[i], &t) != napi_ok) return true;
  return t == napi_undefined || t == napi_null;
}

bool value_int(napi_env env, const char *fn, napi_value v, const char *name, int64_t min, int64_t max,
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

bool arg_int(args_t *a, size_t i, const char *name, int64_t min, int64_t max, int64_t *out) {
  if (i >= a->argc) {
    throw_type(a->env, "%s: missing argument %s", a->fn, name);
    return false;
  }
  return value_int(a->env, a->fn, a->argv[i], name, min, max, out);
}

// Optional integer argument (undefined/null -> dflt).
bool arg_int_opt(args_t *a, size_t i, const char *name, int64_t min, int64_t max, int64_t dflt,
                        int64_t *out) {
  if (is_nullish(a, i)) {
    *out = dflt;
    return true;
  }
  return value_int(a->env, a->fn, a->argv[i], name, min, max, out);
}

bool arg_fd(args_t *a, size_t i, int *fd) {
  int64_t v;
  if (!arg_int(a, i, "fd", INT32_MIN, INT32_MAX, &v)) return false;
  *fd = (int)v;
  return true;
}

bool arg_bool(args_t *a, size_t i, const char *name, bool *out) {
  napi_valuetype t;
  if (i >= a->argc || napi_typeof(a->env, a->argv[i], &t) != napi_ok || t != napi_boolean) {
    throw_type(a->env, "%s: %s must be a boolean", a->fn, name);
    return false;
  }
  napi_get_value_bool(a->env, a->argv[i], out);
  return true;
}

// A string into buf (NUL-terminated); error when missing, not a string or longer than max bytes.
bool value_string(napi_env env, const char *fn, napi_value v, const char *name, char *buf, size_t bufsz,
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
bool arg_ifname(args_t *a, size_t i, char name[IFNAMSIZ], bool allow_empty) {
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
bool opt_prop(napi_env env, const char *fn, napi_value obj, const char *key, napi_value *out,
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
bool arg_opts(args_t *a, size_t i, napi_value *obj) {
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

bool opt_bool(args_t *a, napi_value obj, const char *key, bool dflt, bool *out) {
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

bool opt_int(args_t *a, napi_value obj, const char *key, int64_t min, int64_t max, int64_t dflt,
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
bool value_typed(napi_env env, const char *fn, napi_value v, const char *name, napi_typedarray_type want,
                        const char *want_name, void **data, size_t *len) {
  bool is = false;
  napi_typedarray_type type;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, v, &type, len, data, NULL, NULL) != napi_ok || type != want) {
    throw_type(env, "%s: %s must be a %s", fn, name, want_name);
    return false;
  }
  // An empty typed array may have no backing store (data NULL): callers take NULL to mean "not
  // passed", so give them a harmless non-NULL pointer; its length 0 stops every access.
  static const uint64_t empty = 0;
  if (*data == NULL) *data = (void *)&empty;
  return true;
}

bool arg_typed(args_t *a, size_t i, const char *name, napi_typedarray_type want, const char *want_name,
                      void **data, size_t *len) {
  if (i >= a->argc) {
    throw_type(a->env, "%s: %s must be a %s", a->fn, name, want_name);
    return false;
  }
  return value_typed(a->env, a->fn, a->argv[i], name, want, want_name, data, len);
}

bool arg_typed_opt(args_t *a, size_t i, const char *name, napi_typedarray_type want,
                          const char *want_name, void **data, size_t *len) {
  *data = NULL;
  *len = 0;
  if (is_nullish(a, i)) return true;
  return value_typed(a->env, a->fn, a->argv[i], name, want, want_name, data, len);
}

// The packet arena: a Uint8Array (normally over a SharedArrayBuffer; N-API in Node 20 cannot open a
// SharedArrayBuffer itself, the TS wrapper passes a cached view) or an ArrayBuffer.
bool arg_arena(args_t *a, size_t i, uint8_t **data, size_t *len) {
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

napi_value make_int(napi_env env, int64_t v) {
  napi_value r;
  napi_create_int64(env, v, &r);
  return r;
}

napi_value make_undefined(napi_env env) {
  napi_value r;
  napi_get_undefined(env, &r);
  return r;
}


bool arg_ipv4(args_t *a, size_t i, const char *name, uint32_t *be_addr) {
  char buf[INET_ADDRSTRLEN + 1];
  size_t len = 0;
  if (i >= a->argc) {
    throw_type(a->env, "%s: missing %s", a->fn, name);
    return false;
  }
  struct in_addr in;
  if (!value_string(a->env, a->fn, a->argv[i], name, buf, sizeof buf, &len) || inet_pton(AF_INET, buf, &in) != 1) {
    if (!exception_pending(a->env)) throw_type(a->env, "%s: %s must be a dotted-quad IPv4 address", a->fn, name);
    return false;
  }
  *be_addr = in.s_addr;
  return true;
}

// ---------------------------------------------------------------------------------------------------
// Exports

bool export_fns(napi_env env, napi_value exports, const fn_entry *fns, size_t n) {
  for (size_t i = 0; i < n; i++) {
    napi_value f;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].cb, NULL, &f) != napi_ok) return false;
    if (napi_set_named_property(env, exports, fns[i].name, f) != napi_ok) return false;
  }
  return true;
}

void export_int(napi_env env, napi_value obj, const char *name, int64_t v) {
  napi_set_named_property(env, obj, name, make_int(env, v));
}
