// ip4-policy: Calico network policy as a feature on arc ip4-unicast (packets from workloads, after
// the spoof check, and from the uplink, including decapsulated ones), before the FIB lookup, so it
// sees the addresses the workloads used (pre-NAT, as Calico's policy does). For every packet:
//   - a flow the policy flow table knows (either direction) passes: one lookup, nothing else;
//   - otherwise, when the source is a local workload (received on its port) its egress program
//     runs, and when the destination is a local workload its ingress program runs; both must allow.
//     An allowed flow is recorded, so its later packets and its replies pass; a denied packet is
//     dropped and counted per endpoint, direction and cause (the policy tables' counters);
//   - TCP that is not an opening SYN, and ICMP replies, without a flow are dropped as `invalid`
//     (conntrack's INVALID); ICMP errors about a known flow pass as `related`;
//   - later fragments pass when their first fragment passed (a small per-thread cache keyed by
//     addresses, protocol and IP id), as conntrack's defragmentation would let them;
//   - traffic between two addresses that are not local workloads is not policed here;
//   - from the host TAP (host -> workload) nothing is policed, as in Calico, but the flow is recorded
//     so the workload's replies pass its stateful checks;
//   - a new flow from a workload to the host (its FIB entry is on the host TAP) that its egress
//     policy allows is then subject to defaultEndpointToHostAction (Felix's order): Drop drops it
//     (`endpoint-to-host-drop`). While that is Drop, host flows are tracked even with no policy.
// Policy changes publish a new program generation; flows already recorded keep passing (a change
// applies to new flows only). Runs in the graph owner's thread; the tables are shared (see
// tables/policy/*). Nothing is allocated per packet.
import { GraphNode, drop, event, type NodeDecl } from '../../graph/graph.js';
import { FlowGate, GATE_WORD_MASK, flowGatePass } from '../../graph/flow-gate.js';
import { PKT_DECAP, PKT_LOCAL, type Batch } from '../../graph/packet.js';
import type { DataplaneEnv, PolicyEnv } from '../../graph/env.js';
import type { GraphFeature } from '../../graph/build.js';
import { ARC_IP4_UNICAST, unicastKey } from '../../graph/arcs.js';
import { KIND_HOST, KIND_UPLINK, KIND_WORKLOAD } from '../../graph/ports.js';
import { lpmLookup } from '../../tables/lpm.js';
import { ADJ_LOCAL } from '../../tables/adjacency.js';
import { ETH_HLEN } from '../../wire/ethernet.js';
import { formatIp4 } from '../../../common/addr.js';
import { IP4_MF, IP4_OFFMASK, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../../wire/ipv4.js';
import { TCP_ACK_FLAG, TCP_RST, TCP_SYN } from '../../wire/tcp.js';
import {
  C_ACTIVE,
  C_ENABLED,
  C_HOST_DROP,
  C_PICKUP,
  C_SEQ,
  MAX_TRIES,
  PolicyTables,
  type PolicyTablesShared,
} from '../../tables/policy/tables.js';
import {
  ENTRY_WORDS,
  FL_REPLIED,
  FLOW_SEEN,
  PolicyFlowTable,
  type PolicyFlowShared,
} from '../../tables/policy/flows.js';
import {
  PolicyEval,
  PolicyPacket,
  V_ALLOW,
  V_DENY,
  V_NOT_OURS,
  V_NO_ENDPOINT,
  V_TORN,
  type PolicyLogSink,
} from '../../tables/policy/eval.js';
import { FragmentCache } from './fragments.js';

const IPPROTO_SCTP = 132;
const IPPROTO_UDPLITE = 136;

const R_DENIED = 0;
const R_INVALID = 1;
const R_TABLE_FULL = 2;
const R_FRAGMENT = 3;
const R_NO_ENDPOINT = 4;
const R_BUSY = 5;
const R_MALFORMED = 6;
const E_NEW_FLOW = 7;
const E_RELATED = 8;
const E_LOG = 9;
const E_LOG_SUPPRESSED = 10;
const R_TO_HOST = 11;

/** newFlow's verdict for a packet policy applies to that cannot open a flow */
const V_INVALID = 12;

/** what a packet's ICMP type makes it for the flow table */
const ICMP_OTHER = 0;
const ICMP_QUERY = 1; // echo, timestamp, information, address mask requests
const ICMP_REPLY = 2; // their replies
const ICMP_ERROR = 3; // destination unreachable, source quench, redirect, time exceeded, parameter problem
const ICMP_KIND = new Uint8Array(256);
for (const t of [8, 13, 15, 17]) ICMP_KIND[t] = ICMP_QUERY;
for (const t of [0, 14, 16, 18]) ICMP_KIND[t] = ICMP_REPLY;
for (const t of [3, 4, 5, 11, 12]) ICMP_KIND[t] = ICMP_ERROR;

/** Log records per second and burst a thread may write (the rest are counted as suppressed). */
export const LOG_RATE = 10;
export const LOG_BURST = 50;

export class Ip4Policy extends GraphNode implements PolicyLogSink {
  readonly decl: NodeDecl = {
    name: 'ip4-policy',
    arc: {
      name: ARC_IP4_UNICAST,
      keys: [unicastKey(KIND_UPLINK), unicastKey(KIND_WORKLOAD), unicastKey(KIND_HOST)],
      after: ['ip4-spoof-check'],
    },
    reasons: [
      drop('denied'),
      drop('invalid'),
      drop('flow-table-full'),
      drop('fragment-without-first'),
      drop('unknown-endpoint'),
      drop('policy-busy'),
      drop('malformed'),
      event('new-flow'),
      event('related'),
      event('log'),
      event('log-suppressed'),
      drop('endpoint-to-host-drop'),
    ],
  };
  private readonly tables: PolicyTables;
  private readonly flows: PolicyFlowTable;
  private readonly ctl: Int32Array;
  private readonly banks: readonly [Int32Array, Int32Array];
  private readonly ev: PolicyEval;
  private readonly pk = new PolicyPacket();
  private readonly frags = new FragmentCache();
  private now = 0;
  private tokens = LOG_BURST;
  private lastRefill = 0;
  private curBatch: Batch | null = null;
  private curPacket = 0;
  /** the last flow hit (see pass; its addresses, entry and control word are the gate's) */
  private lastPorts = -1;
  private lastPortsRev = -1;
  private lastProto = -1;
  private lastSlot = 0;
  private lastReply = false;
  /**
   * The fast path (graph/flow-gate.ts): the last flow, its entry and control word, and what a packet
   * must match to pass without `check`, armed when that flow has nothing pending (first reply
   * recorded): its ports word one way and the other (-1: that way is not clean), the protocol, the
   * smallest total length that holds its L4 header, and the TCP flags (FIN, RST) that need check.
   * ip4-fast tests it inline (GraphNode.gate) before calling pass().
   */
  override readonly gate: FlowGate;

  constructor(
    private readonly env: DataplaneEnv,
    private readonly pol: PolicyEnv,
  ) {
    super();
    this.tables = pol.tables;
    this.flows = pol.flows;
    this.ctl = pol.tables.ctl;
    this.gate = new FlowGate(this.ctl, C_ENABLED, C_HOST_DROP, pol.flows.words, FLOW_SEEN);
    this.banks = pol.tables.banks;
    this.ev = new PolicyEval(this);
  }

  override tick(_b: Batch, now: number): void {
    this.now = now;
    this.gate.now = Math.floor(now) | 0;
    this.flows.expire(now, 4096);
  }

  /**
   * The fast path (flowGatePass, small enough to be inlined here and into ip4-fast's loop): a
   * TCP/UDP/SCTP packet with a 20-byte header, not a fragment, of the flow the previous packet
   * belonged to (bulk traffic comes in runs of one flow), in either direction, passes when that
   * flow's entry has not changed since (its control word: no expiry or reuse) and the packet has
   * nothing to record (no FIN or RST; the reply way only once the first reply is recorded).
   * Everything else takes `check` (policy off: everything passes).
   */
  override pass(b: Batch, i: number): boolean {
    const ip = b.off[i] + ETH_HLEN;
    const dv = b.dv;
    const w0 = dv.getUint32(ip); // version and header length, TOS, total length
    if (
      w0 >>> 24 === 0x45 &&
      flowGatePass(
        this.gate,
        b,
        ip,
        w0 & 0xffff,
        dv.getUint32(ip + 6) & GATE_WORD_MASK,
        dv.getInt32(ip + 12),
        dv.getInt32(ip + 16),
      )
    )
      return true;
    if (this.ctl[C_ENABLED] === 0 && this.ctl[C_HOST_DROP] === 0) return true;
    return this.check(b, i);
  }

  /** Every packet the fast path did not take. */
  private check(b: Batch, i: number): boolean {
    if ((b.flags[i] & PKT_LOCAL) !== 0) return true;
    const u8 = b.u8;
    const ip = b.off[i] + ETH_HLEN;
    const proto = u8[ip + 9];
    const src = ((u8[ip + 12] << 24) | (u8[ip + 13] << 16) | (u8[ip + 14] << 8) | u8[ip + 15]) >>> 0;
    const dst = ((u8[ip + 16] << 24) | (u8[ip + 17] << 16) | (u8[ip + 18] << 8) | u8[ip + 19]) >>> 0;
    const frag = (u8[ip + 6] << 8) | u8[ip + 7];
    const ipId = (u8[ip + 4] << 8) | u8[ip + 5];
    const rk = this.env.ports.kind[b.rxPort[i]];
    const fromHost = rk === KIND_HOST;
    // no policy (only defaultEndpointToHostAction Drop brought us here): just the host's flows
    if (
      this.ctl[C_ENABLED] === 0 &&
      !fromHost &&
      (rk !== KIND_WORKLOAD || (b.flags[i] & PKT_DECAP) !== 0 || !this.toHost(dst))
    )
      return true;
    if ((frag & IP4_OFFMASK) !== 0) {
      if (fromHost) return true;
      return this.laterFragment(b, i, proto, src, dst, ipId);
    }
    const l4 = ip + ((u8[ip] & 15) << 2);
    const end = ip + ((u8[ip + 2] << 8) | u8[ip + 3]);
    const pk = this.pk;
    pk.proto = proto;
    pk.src = src;
    pk.dst = dst;
    pk.sport = 0;
    pk.dport = 0;
    pk.icmpType = -1;
    pk.icmpCode = -1;
    let ks = 0;
    let kd = 0;
    let tcpFlags = 0;
    let icmpKind = ICMP_OTHER;
    if (
      proto === IPPROTO_TCP ||
      proto === IPPROTO_UDP ||
      proto === IPPROTO_SCTP ||
      proto === IPPROTO_UDPLITE
    ) {
      if (l4 + (proto === IPPROTO_TCP ? 20 : 4) > end) {
        this.drop(b, i, R_MALFORMED);
        return false;
      }
      ks = (u8[l4] << 8) | u8[l4 + 1];
      kd = (u8[l4 + 2] << 8) | u8[l4 + 3];
      if (proto !== IPPROTO_UDPLITE) {
        pk.sport = ks;
        pk.dport = kd;
      }
      if (proto === IPPROTO_TCP) tcpFlags = u8[l4 + 13];
    } else if (proto === IPPROTO_ICMP) {
      if (l4 + 8 > end) {
        this.drop(b, i, R_MALFORMED);
        return false;
      }
      const type = u8[l4];
      pk.icmpType = type;
      pk.icmpCode = u8[l4 + 1];
      icmpKind = ICMP_KIND[type];
      if (icmpKind === ICMP_ERROR) {
        if (this.related(u8, l4 + 8, end)) {
          this.count(E_RELATED);
          return true;
        }
      } else if (icmpKind !== ICMP_OTHER) {
        // queries and their replies share a flow keyed by the identifier
        ks = kd = (u8[l4 + 4] << 8) | u8[l4 + 5];
      }
    }
    if (icmpKind !== ICMP_ERROR) {
      const flows = this.flows;
      const ports = ((ks << 16) | kd) >>> 0;
      let slot: number;
      let reply: boolean;
      // the flow of the previous packet (bulk traffic comes in runs of one flow): still the same
      // entry when its control word has not moved (no expiry or reuse since)
      const g = this.gate;
      if (
        ports === this.lastPorts &&
        (src | 0) === g.src &&
        (dst | 0) === g.dst &&
        proto === this.lastProto &&
        flows.unchanged(this.lastSlot, g.ctl)
      ) {
        slot = this.lastSlot;
        reply = this.lastReply;
      } else {
        slot = flows.lookup(proto, src, dst, ks, kd);
        reply = flows.reply;
        if (slot >= 0) {
          g.fwd = -1;
          g.rev = -1;
          g.src = src | 0;
          g.dst = dst | 0;
          g.entry = slot * ENTRY_WORDS;
          g.ctl = flows.hitCtl;
          this.lastPorts = ports;
          this.lastPortsRev = ((kd << 16) | ks) >>> 0;
          this.lastProto = proto;
          this.lastSlot = slot;
          this.lastReply = reply;
        }
      }
      // a query going the reply way is a new exchange from the other side, not a reply
      if (slot >= 0 && !(reply && icmpKind === ICMP_QUERY)) {
        flows.touch(slot, this.now, reply, tcpFlags);
        // the fast path may take this flow's next packets when they have nothing to record but FIN /
        // RST (port protocols only): the opener's way always, the reply way once the first reply
        // went by
        if (slot === this.lastSlot && icmpKind === ICMP_OTHER && ks !== 0) {
          const replied = (flows.flags(slot) & FL_REPLIED) !== 0;
          g.fwd = !reply || replied ? this.lastPorts : -1;
          g.rev = reply || replied ? this.lastPortsRev : -1;
          g.word = proto;
          g.minLen = 20 + (proto === IPPROTO_TCP ? 20 : 4);
          g.flags = proto === IPPROTO_TCP ? 0x05 : 0;
        }
        if ((frag & IP4_MF) !== 0) this.frags.remember(src, dst, proto, ipId, this.now);
        return true;
      }
    }
    // no flow: TCP must open with a SYN, ICMP replies need their query
    // (after a restart, C_PICKUP: a mid-stream segment, ACK without SYN / RST, may open it too)
    const opening =
      proto === IPPROTO_TCP
        ? (tcpFlags & (TCP_SYN | TCP_ACK_FLAG)) === TCP_SYN ||
          ((tcpFlags & (TCP_SYN | TCP_RST | TCP_ACK_FLAG)) === TCP_ACK_FLAG && this.ctl[C_PICKUP] !== 0)
        : icmpKind !== ICMP_REPLY;
    if (fromHost) return this.fromHost(b, i, opening && icmpKind !== ICMP_ERROR, ks, kd, frag, ipId);
    let v = this.ctl[C_ENABLED] === 0 ? V_ALLOW : this.newFlow(b, i, opening);
    if (v === V_NOT_OURS) return true;
    // Felix's order: the workload's egress policy first, then the endpoint-to-host action
    if (v === V_ALLOW && this.ctl[C_HOST_DROP] !== 0 && this.toHost(dst)) {
      this.drop(b, i, R_TO_HOST);
      if (b.trace !== null) b.note(i, this.name, 'deny: defaultEndpointToHostAction Drop');
      return false;
    }
    if (v === V_ALLOW && !opening) v = V_INVALID; // (policy off: a non-opening packet to the host)
    if (v === V_ALLOW) {
      if (icmpKind !== ICMP_ERROR && this.flows.insert(proto, src, dst, ks, kd, this.now) < 0) {
        this.drop(b, i, R_TABLE_FULL);
        return false;
      }
      this.count(E_NEW_FLOW);
      if ((frag & IP4_MF) !== 0) this.frags.remember(src, dst, proto, ipId, this.now);
      if (b.trace !== null) b.note(i, this.name, `allow: new flow proto ${proto}`);
      return true;
    }
    if (v === V_DENY) {
      this.tables.countDeny(this.ev.counter);
      this.drop(b, i, R_DENIED);
      if (b.trace !== null)
        b.note(i, this.name, `deny: ${this.pol.describe?.(this.ev.counter) ?? this.ev.counter}`);
      return false;
    }
    this.drop(b, i, v === V_INVALID ? R_INVALID : v === V_NO_ENDPOINT ? R_NO_ENDPOINT : R_BUSY);
    return false;
  }

  /**
   * Evaluates the programs that apply to the packet in this.pk (egress of a local source received
   * on its port, ingress of a local destination) on the active bank, re-reading when a publish
   * moved under it. `opening`: the packet may open a flow (else: V_INVALID when policy applies).
   */
  private newFlow(b: Batch, i: number, opening: boolean): number {
    const ctl = this.ctl;
    const ev = this.ev;
    const fromWorkload = this.env.ports.kind[b.rxPort[i]] === KIND_WORKLOAD && (b.flags[i] & PKT_DECAP) === 0;
    this.curBatch = b;
    this.curPacket = i;
    for (let t = 0; t < MAX_TRIES; t++) {
      const a = Atomics.load(ctl, C_ACTIVE);
      const seq = Atomics.load(ctl, C_SEQ + a);
      if ((seq & 1) !== 0) continue;
      let v = ev.decide(this.banks[a], this.pk, fromWorkload, opening);
      // policy applies but the packet cannot open a flow
      if (!opening && v === V_ALLOW) v = V_INVALID;
      if (v !== V_TORN && Atomics.load(ctl, C_SEQ + a) === seq) return v;
    }
    return V_TORN;
  }

  /** Is dst one of the host's addresses (its FIB entry points at the host TAP)? New flows only. */
  private toHost(dst: number): boolean {
    const env = this.env;
    const a = lpmLookup(env.fib.tbl24, env.fib.tbl8, dst);
    return env.adj.kind[a] === ADJ_LOCAL && env.ports.kind[env.adj.port[a]] === KIND_HOST;
  }

  /**
   * A packet from the host that fits no flow: never policed (Calico lets the host reach its
   * workloads); recorded when it may open a flow, so the workload's replies pass.
   */
  private fromHost(
    b: Batch,
    i: number,
    opening: boolean,
    ks: number,
    kd: number,
    frag: number,
    id: number,
  ): boolean {
    if (!opening) return true;
    const pk = this.pk;
    if (this.flows.insert(pk.proto, pk.src, pk.dst, ks, kd, this.now) < 0) {
      this.drop(b, i, R_TABLE_FULL);
      return false;
    }
    this.count(E_NEW_FLOW);
    if ((frag & IP4_MF) !== 0) this.frags.remember(pk.src, pk.dst, pk.proto, id, this.now);
    if (b.trace !== null) b.note(i, this.name, `host: new flow proto ${pk.proto}`);
    return true;
  }

  /** An ICMP error quoting a packet of a known flow (the quote starts at `q`) is related to it. */
  private related(u8: Uint8Array, q: number, end: number): boolean {
    if (q + 20 > end || u8[q] >> 4 !== 4) return false;
    const proto = u8[q + 9];
    const src = ((u8[q + 12] << 24) | (u8[q + 13] << 16) | (u8[q + 14] << 8) | u8[q + 15]) >>> 0;
    const dst = ((u8[q + 16] << 24) | (u8[q + 17] << 16) | (u8[q + 18] << 8) | u8[q + 19]) >>> 0;
    const l4 = q + ((u8[q] & 15) << 2);
    let ks = 0;
    let kd = 0;
    if (
      proto === IPPROTO_TCP ||
      proto === IPPROTO_UDP ||
      proto === IPPROTO_SCTP ||
      proto === IPPROTO_UDPLITE
    ) {
      if (l4 + 4 > end) return false;
      ks = (u8[l4] << 8) | u8[l4 + 1];
      kd = (u8[l4 + 2] << 8) | u8[l4 + 3];
    } else if (proto === IPPROTO_ICMP) {
      if (l4 + 8 > end || ICMP_KIND[u8[l4]] === ICMP_ERROR || ICMP_KIND[u8[l4]] === ICMP_OTHER) return false;
      ks = kd = (u8[l4 + 4] << 8) | u8[l4 + 5];
    }
    return this.flows.lookup(proto, src, dst, ks, kd) >= 0;
  }

  /** A fragment after the first: passes when its datagram's first fragment passed. */
  private laterFragment(b: Batch, i: number, proto: number, src: number, dst: number, id: number): boolean {
    if (this.frags.has(src, dst, proto, id, this.now)) return true;
    // not remembered: is it policed at all?
    const pk = this.pk;
    pk.src = src;
    pk.dst = dst;
    const v = this.newFlow(b, i, false);
    if (v === V_NOT_OURS) return true;
    this.drop(b, i, v === V_NO_ENDPOINT ? R_NO_ENDPOINT : R_FRAGMENT);
    return false;
  }

  /** A Log rule matched (PolicyLogSink): one rate-limited record in the shared ring. */
  logHit(counter: number, pk: PolicyPacket): void {
    const now = this.now;
    if (now > this.lastRefill) {
      this.tokens = Math.min(LOG_BURST, this.tokens + (now - this.lastRefill) * LOG_RATE);
      this.lastRefill = now;
    }
    if (this.tokens < 1) {
      this.count(E_LOG_SUPPRESSED);
      return;
    }
    this.tokens--;
    this.count(E_LOG);
    const icmp = pk.icmpType < 0 ? 0 : (pk.icmpType << 8) | pk.icmpCode;
    this.tables.logRecord(counter, pk.proto, pk.src, pk.dst, pk.sport, pk.dport, Math.floor(now), icmp);
    const b = this.curBatch;
    if (b !== null && b.trace !== null)
      b.note(
        this.curPacket,
        this.name,
        `log: ${this.pol.describe?.(counter) ?? counter} ${formatIp4(pk.src)} -> ${formatIp4(pk.dst)}`,
      );
  }
}

/** What a worker needs to attach the policy tables (structured-cloneable: SharedArrayBuffers). */
export interface PolicyShared {
  tables: PolicyTablesShared;
  flows: PolicyFlowShared;
}

/** Worker side: the PolicyEnv over tables the control thread created (PolicyProgrammer.shared()). */
export function attachPolicy(shared: PolicyShared): PolicyEnv {
  return { tables: PolicyTables.attach(shared.tables), flows: PolicyFlowTable.attach(shared.flows) };
}

/** Network policy: on when the dataplane has policy tables (the config has policy resources). */
export const policyFeature: GraphFeature = (env) =>
  env.policy === undefined ? [] : [new Ip4Policy(env, env.policy)];
