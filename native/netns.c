// calitap_io netns: opening /dev/net/tun inside another network namespace (setns there and back).
//
// What flows through it: a namespace path (a bind-mounted /var/run/netns/NAME or /proc/PID/ns/net)
// and the resulting tun fd; no packets. Who owns the buffers: nothing is kept. Which thread runs it:
// the calling JS thread, which is switched into the target namespace only for the open() and always
// switched back (or the process aborts) before tun_open_in_netns returns.
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

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
int tun_open_in_netns(const char *netns, const char *what, int *err, const char **sys) {
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
