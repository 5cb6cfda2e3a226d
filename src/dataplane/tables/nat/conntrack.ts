// Connection tracking rules of the SNAT table: result codes, TCP flags, flow flags, timeout classes and
// their defaults, and the TCP close-tracking state machine. Pure functions and constants: no memory,
// no threads (used by every thread that updates a flow, and by the tests' model).

export const NAT_MISS = -1;
/** createOut: the table holds `capacity` flows. */
export const NAT_FULL = -2;
/** createOut: no allocatable port is free towards that remote endpoint (within the probe budget). */
export const NAT_NO_PORT = -3;
/**
 * createOut: other threads kept changing the same hash chains for a bounded number of attempts (a
 * contention storm); nothing was created. Never a wait: the caller drops the packet and counts it.
 */
export const NAT_BUSY = -4;

/** TCP header flag bits as they appear in byte 13 of the TCP header (RFC 9293 section 3.1). */
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_ACK = 0x10;

/** Flow flags (low byte of STATE). */
export const NAT_ST_SYN_IN = 1; // SYN seen from inside
export const NAT_ST_SYN_OUT = 2; // SYN(-ACK) seen from outside
export const NAT_ST_ESTABLISHED = 4;
export const NAT_ST_FIN_IN = 8;
export const NAT_ST_FIN_OUT = 16;
export const NAT_ST_RST = 32; // closed by RST
export const NAT_ST_REPLY = 64; // a packet came back from outside (UDP: makes it a stream)

/** Timeout classes (bits 8..11 of STATE); index into `NatTimeouts` order below. */
export const NAT_CLASS_TCP_SYN_SENT = 0;
export const NAT_CLASS_TCP_ESTABLISHED = 1;
export const NAT_CLASS_TCP_TRANSITORY = 2;
export const NAT_CLASS_TCP_TIME_WAIT = 3;
export const NAT_CLASS_TCP_CLOSE = 4;
export const NAT_CLASS_UDP = 5;
export const NAT_CLASS_UDP_STREAM = 6;
export const NAT_CLASS_ICMP = 7;
export const NAT_CLASS_OTHER = 8;

/** Idle timeouts in seconds per class. */
export interface NatTimeouts {
  /** TCP before the handshake completes (Linux syn_sent 120 s). */
  tcpSynSent: number;
  /** TCP established: RFC 5382 REQ-5 asks for at least 2 h 4 min (Linux keeps 5 days). */
  tcpEstablished: number;
  /** TCP half-closed (one FIN seen): RFC 5382 transitory timeout, 4 min. */
  tcpTransitory: number;
  /** TCP after FINs both ways (Linux time_wait 120 s). */
  tcpTimeWait: number;
  /** TCP after RST (Linux close 10 s). */
  tcpClose: number;
  /** UDP with no reply seen yet (Linux udp 30 s). */
  udp: number;
  /** UDP after a reply was seen (Linux udp_stream: 120 s before 6.x, 180 s now). */
  udpStream: number;
  /** ICMP echo (Linux icmp 30 s). */
  icmp: number;
  /** Any other protocol (Linux generic 600 s). */
  other: number;
}

export const NAT_DEFAULT_TIMEOUTS: Readonly<NatTimeouts> = Object.freeze({
  tcpSynSent: 120,
  tcpEstablished: 7440,
  tcpTransitory: 240,
  tcpTimeWait: 120,
  tcpClose: 10,
  udp: 30,
  udpStream: 180,
  icmp: 30,
  other: 600,
});

/** Timeout class index -> its field in NatTimeouts. */
export const NAT_CLASS_NAMES: readonly (keyof NatTimeouts)[] = [
  'tcpSynSent',
  'tcpEstablished',
  'tcpTransitory',
  'tcpTimeWait',
  'tcpClose',
  'udp',
  'udpStream',
  'icmp',
  'other',
];

/**
 * Timeout class of a flow that has been removed (expired and reclaimed, `remove()`d, or a creation that
 * lost a race): lookups skip it, the sweep unlinks it. Its timeout is -2^31, so any age exceeds it.
 */
export const NAT_CLASS_DEAD = 15;

/** Timeout class of a flow from its protocol and flags. */
export function natTimeoutClass(proto: number, st: number): number {
  if (proto === 6) {
    if (st & NAT_ST_RST) return NAT_CLASS_TCP_CLOSE;
    if (st & NAT_ST_FIN_IN && st & NAT_ST_FIN_OUT) return NAT_CLASS_TCP_TIME_WAIT;
    if (st & (NAT_ST_FIN_IN | NAT_ST_FIN_OUT)) return NAT_CLASS_TCP_TRANSITORY;
    if (st & NAT_ST_ESTABLISHED) return NAT_CLASS_TCP_ESTABLISHED;
    return NAT_CLASS_TCP_SYN_SENT;
  }
  if (proto === 17) return st & NAT_ST_REPLY ? NAT_CLASS_UDP_STREAM : NAT_CLASS_UDP;
  if (proto === 1) return NAT_CLASS_ICMP;
  return NAT_CLASS_OTHER;
}

/**
 * The TCP tracking rules (a simplified RFC 9293 / Linux nf_conntrack_proto_tcp):
 *  - RST either way closes (class tcpClose);
 *  - SYN from inside / SYN(-ACK) from outside are recorded; an ACK without SYN after both closes the
 *    handshake (established); a flow picked up mid-stream (no SYN seen) becomes established once an ACK
 *    is seen and a packet came back from outside (Linux's nf_conntrack_tcp_loose);
 *  - FIN one way: transitory; FIN both ways: time-wait;
 *  - a SYN from inside on a closed or closing flow reopens it (port reuse by the pod), like Linux.
 * Returns the new flags.
 */
export function natTcpNextFlags(st: number, tcpFlags: number, fromInside: boolean): number {
  if (tcpFlags & TCP_RST) return st | NAT_ST_RST;
  if (
    tcpFlags & TCP_SYN &&
    !(tcpFlags & TCP_ACK) &&
    fromInside &&
    st & (NAT_ST_RST | NAT_ST_FIN_IN | NAT_ST_FIN_OUT)
  ) {
    st = 0;
  }
  if (tcpFlags & TCP_SYN) st |= fromInside ? NAT_ST_SYN_IN : NAT_ST_SYN_OUT;
  if (tcpFlags & TCP_FIN) st |= fromInside ? NAT_ST_FIN_IN : NAT_ST_FIN_OUT;
  if (!fromInside) st |= NAT_ST_REPLY;
  if (!(st & NAT_ST_ESTABLISHED) && tcpFlags & TCP_ACK && !(tcpFlags & TCP_SYN)) {
    const syns = st & (NAT_ST_SYN_IN | NAT_ST_SYN_OUT);
    if (syns === (NAT_ST_SYN_IN | NAT_ST_SYN_OUT) || (syns === 0 && st & NAT_ST_REPLY)) {
      st |= NAT_ST_ESTABLISHED;
    }
  }
  return st;
}
