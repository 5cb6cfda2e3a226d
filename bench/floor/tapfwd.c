// The floor of a TAP dataplane on this machine, for bench/live-floor.ts: the least work any userspace
// forwarder between TAP devices (and an AF_PACKET uplink) can do per frame, with the offloads calitap
// uses (IFF_VNET_HDR + TUNSETOFFLOAD csum/tso4, PACKET_VNET_HDR) and no decision at all: one fixed
// peer per device, the Ethernet addresses rewritten, nothing parsed beyond the IPv4 destination,
// no ARP (the workloads get a static neighbour for 169.254.1.1), one read() and one write()/send()
// per frame from a single thread sleeping in poll(). Whatever calitap measures above this is the cost
// of being a router; the distance from this to the kernel is the cost of being a TAP dataplane.
// Not part of calitap; built by the bench with `cc -O2`.
//   tapfwd same  <tapA> <macA> <tapB> <macB>
//       two TAPs; a frame read from one leaves by the other with dst = the other workload's MAC
//   tapfwd cross <tap> <macW> <uplink> <peerMac> <localNet/len>
//       a frame from the TAP leaves by the uplink to peerMac; an IPv4 frame received on the uplink
//       whose destination is in localNet goes to the TAP with dst = macW
// Prints "ready" once its devices are open; runs until killed.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define VNET 10 /* struct virtio_net_hdr: the TAP's default header size, and AF_PACKET's */
#define BUF (VNET + 14 + 65536)

static unsigned char buf[BUF];
static const unsigned char EE[6] = {0xee, 0xee, 0xee, 0xee, 0xee, 0xee};

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void mac(const char *s, unsigned char *out) {
  unsigned v[6];
  if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) {
    fprintf(stderr, "tapfwd: bad MAC %s\n", s);
    exit(2);
  }
  for (int i = 0; i < 6; i++) out[i] = (unsigned char)v[i];
}

static int tap(const char *name) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK);
  if (fd < 0) die("/dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) die("TUNSETIFF");
  int sz = VNET;
  if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) die("TUNSETVNETHDRSZ");
  if (ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4) < 0) die("TUNSETOFFLOAD");
  return fd;
}

static int uplink(const char *ifname, unsigned char *own) {
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
  if (fd < 0) die("AF_PACKET");
  int one = 1;
  if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) die("PACKET_VNET_HDR");
  if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0)
    die("PACKET_IGNORE_OUTGOING");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) die("SIOCGIFHWADDR");
  memcpy(own, ifr.ifr_hwaddr.sa_data, 6);
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = (int)if_nametoindex(ifname);
  if (sll.sll_ifindex == 0) die(ifname);
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) die("bind");
  return fd;
}

int main(int argc, char **argv) {
  struct pollfd p[2];
  unsigned char dst[2][6], src[2][6];
  int same = argc == 6 && strcmp(argv[1], "same") == 0;
  int cross = argc == 7 && strcmp(argv[1], "cross") == 0;
  uint32_t net = 0, mask = 0;
  if (!same && !cross) {
    fprintf(stderr, "usage: tapfwd same tapA macA tapB macB | cross tap macW uplink peerMac net/len\n");
    return 2;
  }
  if (same) {
    /* p[0] = A, p[1] = B; frames from p[i] leave by p[1-i] with dst[1-i] */
    p[0].fd = tap(argv[2]);
    mac(argv[3], dst[0]);
    p[1].fd = tap(argv[4]);
    mac(argv[5], dst[1]);
    memcpy(src[0], EE, 6);
    memcpy(src[1], EE, 6);
  } else {
    /* p[0] = TAP (frames to it: dst macW, src ee), p[1] = uplink (frames to it: dst peer, src own) */
    p[0].fd = tap(argv[2]);
    mac(argv[3], dst[0]);
    memcpy(src[0], EE, 6);
    p[1].fd = uplink(argv[4], src[1]);
    mac(argv[5], dst[1]);
    char addr[32];
    int len = 0;
    if (sscanf(argv[6], "%31[0-9.]/%d", addr, &len) != 2 || len < 0 || len > 32 ||
        inet_pton(AF_INET, addr, &net) != 1) {
      fprintf(stderr, "tapfwd: bad net %s\n", argv[6]);
      return 2;
    }
    mask = len == 0 ? 0 : htonl(~0u << (32 - len));
  }
  p[0].events = p[1].events = POLLIN;
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    if (poll(p, 2, -1) < 0) die("poll");
    for (int i = 0; i < 2; i++) {
      if (!(p[i].revents & POLLIN)) continue;
      int o = 1 - i;
      for (;;) {
        ssize_t n = read(p[i].fd, buf, BUF);
        if (n < 0) break; /* EAGAIN: drained */
        unsigned char *eth = buf + VNET;
        if (n < VNET + 34 || eth[12] != 0x08 || eth[13] != 0x00) continue; /* IPv4 only */
        if (cross && i == 1) {
          uint32_t d;
          memcpy(&d, eth + 14 + 16, 4);
          if ((d & mask) != (net & mask)) continue; /* not for our workload */
        }
        memcpy(eth, dst[o], 6);
        memcpy(eth + 6, src[o], 6);
        if (write(p[o].fd, buf, (size_t)n) < 0) continue; /* a full queue drops, as a NIC would */
      }
    }
  }
}
