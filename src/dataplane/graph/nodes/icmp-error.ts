// ip4-icmp-error: turns a packet we cannot forward into an ICMP error back to its sender, in place
// (RFC 792, RFC 1812 §4.3.2), rate limited with a token bucket like Linux's icmp_msgs_per_sec. The
// error is sourced from our node IP (what a Linux Calico host would use, and what traceroute from a
// pod shows) and routed like any packet we originate: back to the workload, through a tunnel, or to
// the gateway.
import { GraphNode } from '../graph.js';
import { PKT_DNATED, PKT_LOCAL, type Batch } from '../packet.js';
import type { NatTable } from '../../tables/nat/table.js';
import { untranslateQuote } from '../../features/nat/nodes.js';
import type { DataplaneEnv } from '../env.js';
import type { PortTable } from '../ports.js';
import { ETH_HLEN } from '../../wire/ethernet.js';
import { emitIcmpErrorInPlace, icmpErrorAllowed } from '../../wire/icmp4.js';

const R_TIME = 0;
const R_UNREACH = 1;
const R_RATE = 2;
const R_NOT_ALLOWED = 3;

export class Ip4IcmpError extends GraphNode {
  readonly name = 'ip4-icmp-error';
  readonly reasons = ['sent-time-exceeded', 'sent-unreachable', 'rate-limited', 'not-allowed'];
  lookup!: GraphNode;
  /** set when NAT is on: errors about DNATed packets get their quote translated back */
  nat: NatTable | null = null;
  private readonly type: Uint8Array;
  private readonly code: Uint8Array;
  private readonly mtu: Uint16Array;
  private readonly ports: PortTable;
  private readonly nodeIp: number;
  private readonly rate: number;
  private readonly burst: number;
  private tokens: number;
  private last = -1;

  constructor(env: DataplaneEnv, capacity: number) {
    super();
    this.type = new Uint8Array(capacity);
    this.code = new Uint8Array(capacity);
    this.mtu = new Uint16Array(capacity);
    this.ports = env.ports;
    this.nodeIp = env.params.nodeIp;
    this.rate = env.params.icmpRate;
    this.burst = env.params.icmpBurst;
    this.tokens = this.burst;
  }

  /** Queues an ICMP error about packet i (the packet itself becomes the error). */
  send(b: Batch, i: number, type: number, code: number, mtu: number): void {
    this.type[i] = type;
    this.code[i] = code;
    this.mtu[i] = mtu;
    this.push(i);
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

  process(b: Batch, q: Uint16Array, n: number): void {
    const u8 = b.u8;
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
      const len = emitIcmpErrorInPlace(
        u8,
        off,
        b.len[i],
        b.slotEnd(i),
        this.type[i],
        this.code[i],
        this.mtu[i],
        this.nodeIp,
        this.ports.ourMacOf[p],
      );
      if (len === 0) {
        this.drop(b, i, R_NOT_ALLOWED);
        continue;
      }
      b.len[i] = len;
      if ((b.flags[i] & PKT_DNATED) !== 0 && this.nat !== null)
        untranslateQuote(u8, off + ETH_HLEN, this.nat, b.aux[i]);
      b.flags[i] = PKT_LOCAL;
      this.count(this.type[i] === 11 ? R_TIME : R_UNREACH);
      if (b.trace !== null) b.note(i, this.name, `icmp type ${this.type[i]} code ${this.code[i]} to sender`);
      this.lookup.push(i);
    }
  }
}
