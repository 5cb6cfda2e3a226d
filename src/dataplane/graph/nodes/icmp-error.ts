// ip4-icmp-error: turns a packet we cannot forward into an ICMP error back to its sender, in place
// (RFC 792, RFC 1812 §4.3.2), rate limited with a token bucket like Linux's icmp_msgs_per_sec. The
// error is sourced from our node IP (what a Linux Calico host would use, and what traceroute from a
// pod shows) and routed like any packet we originate: back to the workload, through a tunnel, or to
// the gateway. An error for a packet from the host TAP is sourced from the packet's destination
// instead: the host's kernel drops packets that claim one of its own addresses as source.
//
// Nodes hand a packet here with the error to build in b.icmp[i] (icmpErrorArg). A packet that NAT
// translated keeps its PKT_DNATED flag on the error: the NAT feature on ip4-output translates the
// quote back (the core knows nothing about NAT).
import { GraphNode, drop, event, type NodeDecl } from '../graph.js';
import { PKT_DNATED, PKT_LOCAL, type Batch } from '../packet.js';
import type { DataplaneEnv } from '../env.js';
import { KIND_HOST } from '../ports.js';
import { ETH_HLEN } from '../../wire/ethernet.js';
import { ip4Dst } from '../../wire/ipv4.js';
import { emitIcmpErrorInPlace, icmpErrorAllowed } from '../../wire/icmp4.js';

const R_TIME = 0;
const R_UNREACH = 1;
const R_RATE = 2;
const R_NOT_ALLOWED = 3;

/** The error ip4-icmp-error builds for a packet: type, code and (fragmentation needed) the MTU. */
export function icmpErrorArg(type: number, code: number, mtu: number): number {
  return ((type << 24) | (code << 16) | (mtu & 0xffff)) >>> 0;
}

export class Ip4IcmpError extends GraphNode {
  readonly decl: NodeDecl = {
    name: 'ip4-icmp-error',
    next: ['ip4-lookup'],
    reasons: [
      event('sent-time-exceeded'),
      event('sent-unreachable'),
      drop('rate-limited'),
      drop('not-allowed'),
    ],
  };
  private nodeIp: number;
  private rate: number;
  private burst: number;
  private tokens: number;
  private last = -1;

  constructor(private readonly env: DataplaneEnv) {
    super();
    this.nodeIp = env.params.nodeIp;
    this.rate = env.params.icmpRate;
    this.burst = env.params.icmpBurst;
    this.tokens = this.burst;
  }

  override setParams(env: DataplaneEnv): void {
    this.nodeIp = env.params.nodeIp;
    this.rate = env.params.icmpRate;
    this.burst = env.params.icmpBurst;
    this.tokens = Math.min(this.tokens, this.burst);
  }

  /** Refills the token bucket up to time `now` (seconds). */
  private refill(now: number): void {
    if (this.last < 0) this.last = now;
    const dt = now - this.last;
    if (dt > 0) {
      this.tokens = Math.min(this.burst, this.tokens + dt * this.rate);
      this.last = now;
    }
  }

  override tick(_b: Batch, now: number): void {
    this.refill(now);
  }

  override process(b: Batch, q: Uint16Array, n: number): void {
    const u8 = b.u8;
    const ports = this.env.ports;
    const lookup = this.next[0];
    for (let k = 0; k < n; k++) {
      const i = q[k];
      const off = b.off[i];
      if ((b.flags[i] & PKT_LOCAL) !== 0 || !icmpErrorAllowed(u8, off, off + ETH_HLEN)) {
        this.drop(b, i, R_NOT_ALLOWED);
        continue;
      }
      // the packet's own time (capture time in replay, receive time live) drives the bucket
      this.refill(b.tsSec[i] + b.tsNsec[i] / 1e9);
      if (this.tokens < 1) {
        this.drop(b, i, R_RATE);
        continue;
      }
      this.tokens -= 1;
      const p = b.rxPort[i];
      const arg = b.icmp[i];
      const type = arg >>> 24;
      const code = (arg >>> 16) & 255;
      const len = emitIcmpErrorInPlace(
        u8,
        off,
        b.len[i],
        b.slotEnd(i),
        type,
        code,
        arg & 0xffff,
        ports.kind[p] === KIND_HOST ? ip4Dst(u8, off + ETH_HLEN) : this.nodeIp,
        ports.ourMacOf[p],
      );
      if (len === 0) {
        this.drop(b, i, R_NOT_ALLOWED);
        continue;
      }
      b.len[i] = len;
      b.flags[i] = PKT_LOCAL | (b.flags[i] & PKT_DNATED);
      this.count(type === 11 ? R_TIME : R_UNREACH);
      if (b.trace !== null) b.note(i, this.name, `icmp type ${type} code ${code} to sender`);
      lookup.enter(b, i);
    }
  }
}
