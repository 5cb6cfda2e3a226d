// calitap_io waiting: poll(2) over a few fds (bitmap result), epoll (create/add/mod/del/wait) and
// eventfds (the main thread's way to wake a worker blocked in epoll_wait).
//
// What flows through it: fds and ready-fd lists (Int32Array owned by the caller, written during the
// call); no packets. Which thread runs it: any JS thread; poll/epollWait block the calling thread for
// up to their timeout (use them in workers, or with timeout 0 on the main thread).
#include "common.h"

#include <sched.h>

#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

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

// epollWait(epfd, readyFds: Int32Array, timeoutMs, yieldFirst = false) -> number of ready fds written
// to readyFds (0 = timeout or interrupted by a signal). At most min(readyFds.length, 256) per call.
// yieldFirst: sched_yield() before a zero-timeout wait, so a thread polling a quiet device gives its
// CPU to whatever else is runnable there (a busy-polling worker between two frames).
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
  bool yield_first = false;
  if (!is_nullish(&a, 3) && !arg_bool(&a, 3, "yieldFirst", &yield_first)) return NULL;
  if (yield_first && timeout == 0) sched_yield();
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

bool poll_init(napi_env env, napi_value exports, napi_value c) {
  static const fn_entry fns[] = {
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
  export_int(env, c, "POLLIN", POLLIN);
  export_int(env, c, "POLLOUT", POLLOUT);
  export_int(env, c, "EPOLLIN", EPOLLIN);
  export_int(env, c, "EPOLLOUT", EPOLLOUT);
  export_int(env, c, "POLL_MAX", POLL_MAX);
  return export_fns(env, exports, fns, sizeof fns / sizeof fns[0]);
}
