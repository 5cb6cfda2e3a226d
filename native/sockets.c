// calitap_io sockets: AF_PACKET (fanout, classic BPF attached before bind, PACKET_VNET_HDR, ignore
// outgoing), UDP and raw IPv4 sockets, getsockname, close, and the I/O mode of an fd.
//
// What flows through it: socket options and fds; no packets (batch_io.c moves the frames). Who owns
// the buffers: a BPF program is copied for the setsockopt call and freed. Which thread runs it: any
// JS thread; set-up time calls.
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef ETH_P_ALL
#define ETH_P_ALL 0x0003
#endif

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
        throw_range(env,
                    "packetSocket(\"%s\"): options.bpf must hold 1..%d sock_filter structs of 8 bytes, got %zu "
                    "bytes",
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

// udpSocket(bindAddr, port, { rcvbuf, sndbuf, reusePort, gro }) -> fd
// gro: UDP_GRO, the kernel may hand over several datagrams of one flow as one, with their segment
// size in a cmsg (readBatch's groSizes); sending with UDP_SEGMENT needs no socket option.
static napi_value UdpSocket(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, "udpSocket", &a)) return NULL;
  struct in_addr addr;
  if (!arg_ipv4(&a, 0, "bindAddr", &addr.s_addr)) return NULL;
  int64_t port, rcvbuf, sndbuf;
  bool has_rcvbuf, has_sndbuf, reuse, gro;
  napi_value opts;
  if (!arg_int(&a, 1, "port", 0, 65535, &port) || !arg_opts(&a, 2, &opts) ||
      !opt_int(&a, opts, "rcvbuf", 0, INT32_MAX, 0, &rcvbuf, &has_rcvbuf) ||
      !opt_int(&a, opts, "sndbuf", 0, INT32_MAX, 0, &sndbuf, &has_sndbuf) ||
      !opt_bool(&a, opts, "reusePort", false, &reuse) || !opt_bool(&a, opts, "gro", false, &gro))
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
  if (gro && setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) != 0) {
    int err = errno;
    close(fd);
    throw_errno(env, err, "UDP_GRO", "udpSocket(%s:%d)", shown, (int)port);
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

// setBpf(fd, bpf: Uint8Array): replaces the classic BPF filter of an open socket (SO_ATTACH_FILTER swaps
// it atomically: every frame is judged by the old or by the new program, none unfiltered).
static napi_value SetBpf(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, "setBpf", &a)) return NULL;
  int fd;
  if (!arg_fd(&a, 0, &fd)) return NULL;
  void *bpf = NULL;
  size_t bpf_len = 0;
  if (!value_typed(env, a.fn, a.argv[1], "bpf", napi_uint8_array, "Uint8Array", &bpf, &bpf_len)) return NULL;
  if (bpf_len == 0 || bpf_len % sizeof(struct sock_filter) != 0 ||
      bpf_len / sizeof(struct sock_filter) > BPF_MAXINSNS) {
    throw_range(env, "setBpf(fd %d): bpf must hold 1..%d sock_filter structs of 8 bytes, got %zu bytes", fd,
                BPF_MAXINSNS, bpf_len);
    return NULL;
  }
  struct sock_filter *prog = malloc(bpf_len);
  if (!prog) {
    throw_errno(env, ENOMEM, "malloc", "setBpf(fd %d)", fd);
    return NULL;
  }
  memcpy(prog, bpf, bpf_len);
  struct sock_fprog fprog = {.len = (unsigned short)(bpf_len / sizeof *prog), .filter = prog};
  int rc = setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog);
  int err = errno;
  free(prog);
  if (rc != 0) {
    throw_errno(env, err, "SO_ATTACH_FILTER", "setBpf(fd %d)", fd);
    return NULL;
  }
  return make_undefined(env);
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
int detect_mode(int fd) {
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

bool sockets_init(napi_env env, napi_value exports, napi_value c) {
  static const fn_entry fns[] = {
      {"packetSocket", PacketSocket},
      {"udpSocket", UdpSocket},
      {"rawSocket", RawSocket},
      {"sockName", SockName},
      {"setBpf", SetBpf},
      {"close", Close},
      {"fdMode", FdMode},
  };
  export_int(env, c, "PACKET_FANOUT_HASH", PACKET_FANOUT_HASH);
  export_int(env, c, "PACKET_FANOUT_LB", PACKET_FANOUT_LB);
  export_int(env, c, "PACKET_FANOUT_CPU", PACKET_FANOUT_CPU);
  return export_fns(env, exports, fns, sizeof fns / sizeof fns[0]);
}
