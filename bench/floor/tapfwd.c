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
//   tapfwd ipip  <tap> <macW> <uplink> <peerMac> <localNet/len> <localIp> <peerIp>
//       as cross, but through an IPIP tunnel localIp <-> peerIp ("ipip mode" below): TCP super-frames
//       from the TAP are cut into MTU-sized IPIP packets, received TCP segments coalesced again;
//       the workload's TAP needs MTU 1480 so that its packets + 20 bytes fit the uplink
// Prints "ready" once its devices are open; runs until killed.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
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

static int uplink(const char *ifname, unsigned char *own, int vnet) {
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
  if (fd < 0) die("AF_PACKET");
  int one = 1;
  if (vnet && setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) die("PACKET_VNET_HDR");
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

/* "a.b.c.d/len" into a network and mask (network byte order) */
static void prefix(const char *s, uint32_t *net, uint32_t *mask) {
  char addr[32];
  int len = 0;
  if (sscanf(s, "%31[0-9.]/%d", addr, &len) != 2 || len < 0 || len > 32 ||
      inet_pton(AF_INET, addr, net) != 1) {
    fprintf(stderr, "tapfwd: bad net %s\n", s);
    exit(2);
  }
  *mask = len == 0 ? 0 : htonl(~0u << (32 - len));
}

// ==== ipip mode ====================================================================================
// The floor of an IPIP tunnel from userspace. The kernel cannot send an IPIP super-frame from
// userspace (AF_PACKET's virtio header has no SKB_GSO_IPXIP4), so each TCP super-frame read from the
// TAP is cut here into MTU-sized IPIP packets with their checksums, and received segments are
// coalesced again as the kernel's GRO would, so the workload's TCP stack runs per super-frame.
//   TAP -> uplink: read a frame (virtio_net_hdr + Ethernet + IPv4); segment it (TCPV4 GSO) or
//     complete its checksum (NEEDS_CSUM); prepend Ethernet + outer IPv4 to each packet; one
//     sendmmsg per round on the AF_PACKET socket (opened without PACKET_VNET_HDR).
//   uplink -> TAP: recvmmsg a batch; keep IPIP to localIp whose inner destination is in localNet;
//     merge runs of consecutive segments of one TCP flow (checksums verified) into one GSO frame,
//     write everything else to the TAP as it came, one frame per write.
#define SLOTS 128   /* packets per sendmmsg round */
#define SLOT 2048   /* one outgoing packet: 14 + 20 + up to 1500 inner (+ slack) */
#define RX 64       /* frames per recvmmsg */
#define RXB 2048    /* one received frame; longer ones are truncated and dropped */
#define MAXRUN 64   /* segments per coalesced frame */
#define FIN 0x01
#define SYN 0x02
#define RST 0x04
#define PSH 0x08
#define URG 0x20
#define CWR 0x80

static struct {
  int tap, up;
  unsigned char macW[6], own[6], peer[6];
  uint32_t net, mask, local, remote; /* network byte order */
  uint16_t id;                       /* outer IPv4 id counter */
} t;

static unsigned char slot[SLOTS][SLOT];
static struct iovec sv[SLOTS];
static struct mmsghdr sm[SLOTS];
static int nslots;
static unsigned char rx[RX][RXB];
static struct iovec rv[RX];
static struct mmsghdr rm[RX];

static uint16_t get16(const unsigned char *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void put16(unsigned char *p, unsigned v) {
  p[0] = (unsigned char)(v >> 8);
  p[1] = (unsigned char)v;
}
static void put32(unsigned char *p, uint32_t v) {
  put16(p, v >> 16);
  put16(p + 2, v & 0xffff);
}

// Internet checksum. The bytes are summed as 64-bit words with end-around carry, which folds to
// the ones' complement sum of their 16-bit words in memory order: stored back as-is (memcpy) it is
// right on any byte order. A piece must start at an even offset of the checksummed data (all of
// ours do: headers are multiples of 4 bytes); an odd last byte is padded with zero, as RFC 1071 says.
// With dst non-null the bytes are copied there on the way (the copy and the sum in one pass).
static uint64_t sum(unsigned char *dst, const unsigned char *p, size_t n, uint64_t acc) {
  uint64_t w;
  for (; n >= 8; p += 8, n -= 8) {
    memcpy(&w, p, 8);
    if (dst) {
      memcpy(dst, &w, 8);
      dst += 8;
    }
    acc += w;
    acc += acc < w;
  }
  if (n) {
    w = 0;
    memcpy(&w, p, n);
    if (dst) memcpy(dst, p, n);
    acc += w;
    acc += acc < w;
  }
  return acc;
}

static uint16_t fold(uint64_t acc) {
  acc = (acc & 0xffffffff) + (acc >> 32);
  acc = (acc & 0xffffffff) + (acc >> 32);
  acc = (acc & 0xffff) + (acc >> 16);
  acc = (acc & 0xffff) + (acc >> 16);
  return (uint16_t)acc;
}

/* stores ~fold(acc) at p: a finished checksum */
static void csum(unsigned char *p, uint64_t acc) {
  uint16_t c = (uint16_t)~fold(acc);
  memcpy(p, &c, 2);
}

/* the TCP pseudo-header of an IPv4 packet (header at ip) for a TCP length of len */
static uint64_t pseudo(const unsigned char *ip, size_t len) {
  return sum(NULL, ip + 12, 8, 0) + htons(IPPROTO_TCP) + htons((uint16_t)len);
}

/* a 20-byte IPv4 header at ip gets its checksum */
static void ipcsum(unsigned char *ip) {
  ip[10] = ip[11] = 0;
  csum(ip + 10, sum(NULL, ip, 20, 0));
}

// ---- TAP -> uplink ------------------------------------------------------------------------------

/* sends the round's packets; a packet the kernel refuses is dropped, as a full NIC queue would */
static void flush(void) {
  for (int off = 0; off < nslots;) {
    int r = sendmmsg(t.up, sm + off, (unsigned)(nslots - off), 0);
    off += r > 0 ? r : 1;
  }
  nslots = 0;
}

/* the next free packet slot; the inner packet goes at +34, behind Ethernet and the outer header */
static unsigned char *next(void) {
  if (nslots == SLOTS) flush();
  return slot[nslots];
}

/* Ethernet + outer IPv4 (TOS and DF from the inner header) in front of the inner packet at s + 34 */
static void encap(unsigned char *s, size_t inner) {
  unsigned char *o = s + 14, *i = s + 34;
  memcpy(s, t.peer, 6);
  memcpy(s + 6, t.own, 6);
  s[12] = 0x08, s[13] = 0x00;
  o[0] = 0x45, o[1] = i[1];
  put16(o + 2, (unsigned)(20 + inner));
  put16(o + 4, t.id++);
  o[6] = i[6] & 0x40, o[7] = 0; /* DF */
  o[8] = 64, o[9] = IPPROTO_IPIP;
  memcpy(o + 12, &t.local, 4);
  memcpy(o + 16, &t.remote, 4);
  ipcsum(o);
  sv[nslots++].iov_len = 34 + inner;
}

/* a TCP super-frame (IPv4 packet ip, len bytes, header ihl) cut into segments of mss payload bytes */
static void segment(const unsigned char *ip, size_t len, size_t ihl, size_t mss) {
  const unsigned char *th = ip + ihl;
  if (ip[9] != IPPROTO_TCP || len < ihl + 20) return;
  size_t thl = (size_t)(th[12] >> 4) * 4, hl = ihl + thl;
  if (thl < 20 || hl >= len || mss == 0 || 34 + hl + mss > SLOT) return;
  size_t pay = len - hl;
  uint32_t seq = get32(th + 4);
  unsigned id = get16(ip + 4);
  for (size_t off = 0, k = 0; off < pay; off += mss, k++) {
    size_t c = pay - off < mss ? pay - off : mss;
    unsigned char *i = next() + 34, *h = i + ihl;
    memcpy(i, ip, hl);
    /* inner IPv4: this segment's length, id + k; its options (if any) copied as they were */
    put16(i + 2, (unsigned)(hl + c));
    put16(i + 4, (id + k) & 0xffff);
    i[10] = i[11] = 0;
    csum(i + 10, sum(NULL, i, ihl, 0));
    /* TCP: seq + k*mss; FIN and PSH on the last segment only, CWR on the first only */
    put32(h + 4, seq + (uint32_t)off);
    if (off + c < pay) h[13] &= (unsigned char)~(FIN | PSH);
    if (k > 0) h[13] &= (unsigned char)~CWR;
    h[16] = h[17] = 0;
    uint64_t a = sum(NULL, h, thl, pseudo(i, thl + c));
    csum(h + 16, sum(h + thl, th + thl + off, c, a)); /* the payload copied and summed at once */
    encap(i - 34, hl + c);
  }
}

/* one frame read from the TAP: 10-byte virtio_net_hdr, Ethernet, IPv4 */
static void from_tap(unsigned char *f, size_t n) {
  struct virtio_net_hdr v;
  unsigned char *ip = f + VNET + 14;
  memcpy(&v, f, VNET);
  if (n < VNET + 14 + 20 || f[VNET + 12] != 0x08 || f[VNET + 13] != 0x00 || ip[0] >> 4 != 4) return;
  size_t len = n - VNET - 14, ihl = (size_t)(ip[0] & 15) * 4;
  if (ihl < 20 || ihl > len) return;
  if ((v.gso_type & ~VIRTIO_NET_HDR_GSO_ECN) == VIRTIO_NET_HDR_GSO_TCPV4) {
    segment(ip, len, ihl, v.gso_size);
    return;
  }
  if (v.gso_type != VIRTIO_NET_HDR_GSO_NONE || 34 + len > SLOT) return; /* no other GSO offered */
  if (v.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
    /* the field holds the pseudo-header sum; the sum from csum_start to the end completes it */
    size_t start = (size_t)v.csum_start - 14, at = start + v.csum_offset;
    if (v.csum_start < 14 + 20 || at + 2 > len) return;
    csum(ip + at, sum(NULL, ip + start, len - start, 0));
  }
  unsigned char *s = next();
  memcpy(s + 34, ip, len);
  encap(s, len);
}

// ---- uplink -> TAP ------------------------------------------------------------------------------

/* the inner packet of an IPIP frame for us (outer to localIp, inner to localNet), or NULL */
static unsigned char *decap(unsigned char *f, size_t n, size_t *len) {
  unsigned char *o = f + 14;
  if (n < 14 + 20 + 20 || f[12] != 0x08 || f[13] != 0x00 || o[0] >> 4 != 4) return NULL;
  size_t ohl = (size_t)(o[0] & 15) * 4, otot = get16(o + 2);
  if (ohl < 20 || otot > n - 14 || otot < ohl + 20 || o[9] != IPPROTO_IPIP) return NULL;
  if (memcmp(o + 16, &t.local, 4) != 0 || (get16(o + 6) & 0x3fff) != 0) return NULL; /* no frags */
  if (fold(sum(NULL, o, ohl, 0)) != 0xffff) return NULL;
  unsigned char *ip = o + ohl;
  uint32_t d;
  memcpy(&d, ip + 16, 4);
  *len = get16(ip + 2);
  if (ip[0] >> 4 != 4 || *len < 20 || *len > otot - ohl || (d & t.mask) != (t.net & t.mask))
    return NULL;
  return ip;
}

/* TCP payload length of a segment that may be merged (TCP, no IP options or fragment, DF,
   no SYN/RST/URG/CWR, some payload), else 0 */
static size_t mergeable(const unsigned char *ip, size_t len) {
  const unsigned char *th = ip + 20;
  if (ip[0] != 0x45 || ip[9] != IPPROTO_TCP || len < 40 || (get16(ip + 6) & 0x7fff) != 0x4000)
    return 0;
  size_t thl = (size_t)(th[12] >> 4) * 4;
  if (thl < 20 || 20 + thl >= len || th[13] & (SYN | RST | URG | CWR)) return 0;
  return len - 20 - thl;
}

/* may b follow a (whose run holds `have` payload bytes) in one flow? GRO's conditions: same IPv4
   TOS, TTL and addresses, same ports, ack, header length, window and options, flags equal but for
   PSH/FIN, and b's sequence number right after the run */
static int follows(const unsigned char *a, const unsigned char *b, size_t have) {
  const unsigned char *ta = a + 20, *tb = b + 20;
  size_t thl = (size_t)(ta[12] >> 4) * 4;
  return a[1] == b[1] && a[8] == b[8] && memcmp(a + 12, b + 12, 8) == 0 &&
         memcmp(ta, tb, 4) == 0 && get32(tb + 4) == get32(ta + 4) + (uint32_t)have &&
         memcmp(ta + 8, tb + 8, 5) == 0 && ((ta[13] ^ tb[13]) & ~(PSH | FIN)) == 0 &&
         memcmp(ta + 14, tb + 14, 2) == 0 && memcmp(ta + 20, tb + 20, thl - 20) == 0;
}

/* the IPv4 header and TCP checksums of a segment (len bytes at ip) are right */
static int valid(const unsigned char *ip, size_t len) {
  return fold(sum(NULL, ip, 20, 0)) == 0xffff &&
         fold(sum(NULL, ip + 20, len - 20, pseudo(ip, len - 20))) == 0xffff;
}

/* Writes the inner packet at ip (its first len bytes) to the TAP, with Ethernet and a
   virtio_net_hdr in front (written over the outer headers, already read), and the payloads of
   more segments (iov[1..n-1]) after it: one frame. */
static void to_tap(unsigned char *ip, size_t len, const struct virtio_net_hdr *v, struct iovec *iov,
                   int n) {
  unsigned char *e = ip - 14;
  memcpy(ip - 24, v, VNET);
  memcpy(e, t.macW, 6);
  memcpy(e + 6, EE, 6);
  e[12] = 0x08, e[13] = 0x00;
  iov[0].iov_base = ip - 24;
  iov[0].iov_len = 24 + len;
  if (writev(t.tap, iov, n) < 0) return; /* a full queue drops, as a NIC would */
}

/* one recvmmsg batch: decapsulate, coalesce, write to the TAP */
static void from_uplink(int got) {
  unsigned char *ip[RX];
  size_t len[RX], pay[RX];
  struct iovec iov[MAXRUN];
  for (int i = 0; i < got; i++) {
    ip[i] = rm[i].msg_hdr.msg_flags & MSG_TRUNC ? NULL : decap(rx[i], rm[i].msg_len, &len[i]);
    pay[i] = ip[i] ? mergeable(ip[i], len[i]) : 0;
  }
  for (int i = 0, j; i < got; i = j) {
    j = i + 1;
    if (!ip[i]) continue;
    unsigned char *a = ip[i], *ta = a + 20;
    size_t mss = pay[i], have = mss, hl = len[i] - mss;
    int n = 1, checked = 0;
    /* a run: every segment mss bytes but a shorter last, PSH/FIN ending it, each checksum right */
    if (mss && !(ta[13] & (PSH | FIN))) {
      for (; j < got && n < MAXRUN && ip[j] && pay[j] && pay[j] <= mss; j++) {
        if (!follows(a, ip[j], have) || hl + have + pay[j] > 65535) break;
        if (!checked && !(checked = valid(a, len[i]))) break;
        if (!valid(ip[j], len[j])) break; /* written alone, next time round */
        iov[n].iov_base = ip[j] + hl;
        iov[n++].iov_len = pay[j];
        have += pay[j];
        ta[13] |= ip[j][20 + 13] & (PSH | FIN);
        if (pay[j] < mss || ip[j][20 + 13] & (PSH | FIN)) {
          j++;
          break;
        }
      }
    }
    struct virtio_net_hdr v = {0};
    if (n > 1) {
      /* one GSO frame: CHECKSUM_PARTIAL, the TCP field holding the pseudo-header sum */
      v.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
      v.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
      v.hdr_len = (uint16_t)(14 + hl);
      v.gso_size = (uint16_t)mss;
      v.csum_start = 14 + 20;
      v.csum_offset = 16;
      put16(a + 2, (unsigned)(hl + have));
      ipcsum(a);
      uint16_t c = fold(pseudo(a, hl - 20 + have));
      memcpy(ta + 16, &c, 2);
    }
    to_tap(a, len[i], &v, iov, n);
  }
}

// ---- setup and loop -----------------------------------------------------------------------------

/* argv: tap macW uplink peerMac localNet/len localIp peerIp; never returns */
static void ipip(char **argv) {
  t.tap = tap(argv[0]);
  mac(argv[1], t.macW);
  t.up = uplink(argv[2], t.own, 0);
  mac(argv[3], t.peer);
  prefix(argv[4], &t.net, &t.mask);
  if (inet_pton(AF_INET, argv[5], &t.local) != 1 || inet_pton(AF_INET, argv[6], &t.remote) != 1) {
    fprintf(stderr, "tapfwd: bad address %s or %s\n", argv[5], argv[6]);
    exit(2);
  }
  /* room for a few super-frames' worth of segments between two wake-ups (as calitap: 4 MiB) */
  int big = 4 << 20;
  if (setsockopt(t.up, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0) die("SO_RCVBUFFORCE");
  /* A raw IPIP socket that drops everything: without a listener for protocol 4 the host kernel
     would answer every IPIP packet with ICMP protocol unreachable (calitap does the same). */
  int quiet = socket(AF_INET, SOCK_RAW, IPPROTO_IPIP);
  struct sock_filter drop = BPF_STMT(BPF_RET | BPF_K, 0);
  struct sock_fprog prog = {1, &drop};
  if (quiet < 0 || setsockopt(quiet, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0)
    die("raw IPIP socket");
  for (int i = 0; i < SLOTS; i++) {
    sv[i].iov_base = slot[i];
    sm[i].msg_hdr.msg_iov = &sv[i];
    sm[i].msg_hdr.msg_iovlen = 1;
  }
  for (int i = 0; i < RX; i++) {
    rv[i].iov_base = rx[i];
    rv[i].iov_len = RXB;
    rm[i].msg_hdr.msg_iov = &rv[i];
    rm[i].msg_hdr.msg_iovlen = 1;
  }
  struct pollfd p[2] = {{.fd = t.tap, .events = POLLIN}, {.fd = t.up, .events = POLLIN}};
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    if (poll(p, 2, -1) < 0) die("poll");
    /* at most 64 frames per direction per round, so neither starves the other */
    if (p[0].revents & POLLIN) {
      for (int k = 0; k < 64; k++) {
        ssize_t n = read(t.tap, buf, BUF);
        if (n < 0) break; /* EAGAIN: drained */
        from_tap(buf, (size_t)n);
      }
      flush();
    }
    if (p[1].revents & POLLIN) {
      int got = recvmmsg(t.up, rm, RX, MSG_DONTWAIT, NULL);
      if (got > 0) from_uplink(got);
    }
  }
}


int main(int argc, char **argv) {
  struct pollfd p[2];
  unsigned char dst[2][6], src[2][6];
  int same = argc == 6 && strcmp(argv[1], "same") == 0;
  int cross = argc == 7 && strcmp(argv[1], "cross") == 0;
  uint32_t net = 0, mask = 0;
  if (argc == 9 && strcmp(argv[1], "ipip") == 0) ipip(argv + 2);
  if (!same && !cross) {
    fprintf(stderr, "usage: tapfwd same tapA macA tapB macB | cross tap macW uplink peerMac net/len\n"
                    "     | ipip tap macW uplink peerMac net/len localIp peerIp\n");
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
    p[1].fd = uplink(argv[4], src[1], 1);
    mac(argv[5], dst[1]);
    prefix(argv[6], &net, &mask);
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
