// calitap_io TAP and interface ioctls: tapOpen (IFF_TAP, NO_PI, MULTI_QUEUE, VNET_HDR, persist, open in
// another netns), the TUNSET* integer ioctls (persist, offload, vnet header size) and the interface
// ioctls on a throwaway AF_INET socket (index, MAC, up/down, MTU, tx queue length, GRO and TSO on/off
// through the legacy SIOCETHTOOL ETHTOOL_[GS]GRO/[GS]TSO, so that no `ethtool` binary is needed).
//
// What flows through it: interface names, flags and fds; no packets (batch_io.c moves the frames).
// Who owns the buffers: nothing is kept past the call. Which thread runs it: any JS thread; these
// are control-path calls (set-up time), not the hot path.
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <linux/ethtool.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

// ---------------------------------------------------------------------------------------------------
// Interface ioctls (a throwaway AF_INET datagram socket; control path only)

typedef enum { IF_INDEX, IF_MAC, IF_UP, IF_MTU, IF_TXQLEN, IF_FEAT_GET, IF_FEAT_SET } if_op;

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
  // features through the legacy ethtool commands: 0 GRO (ETHTOOL_[GS]GRO), 1 every TSO (ETHTOOL_[GS]TSO)
  if ((op == IF_FEAT_GET || op == IF_FEAT_SET) && !arg_int(&a, 1, "feature", 0, 1, &val)) return NULL;
  if (op == IF_FEAT_SET && !arg_bool(&a, 2, "on", &up)) return NULL;

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
  case IF_FEAT_GET:
  case IF_FEAT_SET: {
    static const uint32_t get[] = {ETHTOOL_GGRO, ETHTOOL_GTSO}, set[] = {ETHTOOL_SGRO, ETHTOOL_STSO};
    static const char *gets[] = {"SIOCETHTOOL(ETHTOOL_GGRO)", "SIOCETHTOOL(ETHTOOL_GTSO)"};
    static const char *sets[] = {"SIOCETHTOOL(ETHTOOL_SGRO)", "SIOCETHTOOL(ETHTOOL_STSO)"};
    struct ethtool_value ev = {.cmd = op == IF_FEAT_GET ? get[val] : set[val], .data = up ? 1 : 0};
    sys = op == IF_FEAT_GET ? gets[val] : sets[val];
    ifr.ifr_data = (char *)&ev;
    if ((rc = ioctl(s, SIOCETHTOOL, &ifr)) == 0) {
      if (op == IF_FEAT_GET)
        napi_get_boolean(env, ev.data != 0, &result);
      else
        result = make_undefined(env);
    }
    break;
  }
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
static napi_value IfFeature(napi_env env, napi_callback_info info) {
  return if_ioctl(env, info, "ifFeature", IF_FEAT_GET);
}
static napi_value IfSetFeature(napi_env env, napi_callback_info info) {
  return if_ioctl(env, info, "ifSetFeature", IF_FEAT_SET);
}
static napi_value SetTxQueueLen(napi_env env, napi_callback_info info) {
  return if_ioctl(env, info, "setTxQueueLen", IF_TXQLEN);
}

// ifAddrs4() -> number[]: every IPv4 address of the calling thread's network namespace (getifaddrs:
// one netlink dump, no `ip` child process), host byte order, in the kernel's order, duplicates kept.
// The host TAP polls it every second: forking the daemon for `ip -j addr` cost page-table copies,
// copy-on-write faults and TLB shootdowns in every worker (docs/live.md).
static napi_value IfAddrs4(napi_env env, napi_callback_info info) {
  struct ifaddrs *list;
  if (getifaddrs(&list) != 0) {
    throw_errno(env, errno, "getifaddrs", "ifAddrs4()");
    return NULL;
  }
  napi_value arr;
  if (napi_create_array(env, &arr) != napi_ok) {
    freeifaddrs(list);
    return NULL;
  }
  uint32_t n = 0;
  for (struct ifaddrs *a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
    const struct sockaddr_in *sin = (const struct sockaddr_in *)a->ifa_addr;
    napi_set_element(env, arr, n++, make_int(env, ntohl(sin->sin_addr.s_addr)));
  }
  freeifaddrs(list);
  return arr;
}

// ---------------------------------------------------------------------------------------------------
// TAP

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
        if (!exception_pending(env))
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

bool tap_init(napi_env env, napi_value exports, napi_value c) {
  static const fn_entry fns[] = {
      {"tapOpen", TapOpen},
      {"tapSetPersist", TapSetPersist},
      {"tapSetOffload", TapSetOffload},
      {"tapSetVnetHdrSize", TapSetVnetHdrSize},
      {"setTxQueueLen", SetTxQueueLen},
      {"ifIndex", IfIndex},
      {"ifMac", IfMac},
      {"ifSetUp", IfSetUp},
      {"ifSetMtu", IfSetMtu},
      {"ifFeature", IfFeature},
      {"ifSetFeature", IfSetFeature},
      {"ifAddrs4", IfAddrs4},
  };
  export_int(env, c, "TUN_F_CSUM", TUN_F_CSUM);
  export_int(env, c, "TUN_F_TSO4", TUN_F_TSO4);
  export_int(env, c, "TUN_F_TSO6", TUN_F_TSO6);
  export_int(env, c, "TUN_F_TSO_ECN", TUN_F_TSO_ECN);
  export_int(env, c, "TUN_F_UFO", TUN_F_UFO);
  return export_fns(env, exports, fns, sizeof fns / sizeof fns[0]);
}
