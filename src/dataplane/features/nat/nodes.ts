// natOutgoing features: snat4-in2out (arc ip4-output, every adjacency kind that leaves the node)
// masquerades workload traffic leaving the IP pools, after ip4-rewrite's TTL and MTU checks so the
// node's own ICMP errors quote the pod's packet; snat4-out2in (arc ip4-local) translates the replies
// (and ICMP errors quoting a translated packet, so path-MTU discovery works through NAT) back to the
// workload. Calico's rule (felix masq_mgr): SNAT when the source is in a pool with natOutgoing and the
// destination is in no pool at all (disabled pools count as pools).
//
// Both nodes are in every graph. While the dataplane has no NAT table (env.nat null: no pool has
// natOutgoing) they are inert: snat4-in2out passes everything on, snat4-out2in claims nothing. A live
// `params` message that brings the table (the first natOutgoing pool) or a new pool list reaches them
// through setParams() between two batches, so the graph is never rebuilt for it.
//
// Runs in the graph owner's thread; the flow table is the shared NatTable (all workers see one
// mapping). Checksums are updated incrementally (RFC 1624) except the ICMP checksum of translated
// errors, which is recomputed over the (at most 576-byte) message.
import { GraphNode, drop, event, type NodeDecl } from '../../graph/graph.js';
import { PKT_DECAP, PKT_DNATED, PKT_GSO, PKT_LOCAL, type Batch } from '../../graph/packet.js';
import type { DataplaneEnv } from '../../graph/env.js';
import type { GraphFeature } from '../../graph/build.js';
import { ARC_IP4_LOCAL, ARC_IP4_OUTPUT } from '../../graph/arcs.js';
import { KIND_WORKLOAD } from '../../graph/ports.js';
import {
  ADJ_DIRECT,
  ADJ_F_IN_POOL,
  ADJ_GATEWAY,
  ADJ_IPIP,
  ADJ_VXLAN,
  type AdjacencyTable,
} from '../../tables/adjacency.js';
import { formatIp4 } from '../../../common/addr.js';
import { ETH_HLEN } from '../../wire/ethernet.js';
import {
  IP4_PROTO,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  ip4Dst,
  ip4Hlen,
  ip4IsFragment,
  ip4SetDst,
  ip4SetSrc,
  ip4Src,
  ip4TotalLen,
} from '../../wire/ipv4.js';
import { l4AdjustForAddr, l4AdjustPartialForAddr, l4SetPort, l4SetSource } from '../../wire/l4.js';
import { TCP_CSUM, TCP_FLAGS } from '../../wire/tcp.js';
import { UDP_CSUM } from '../../wire/udp.js';
import {
  ICMP_DEST_UNREACH,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  ICMP_ID,
  ICMP_CSUM,
  ICMP_HLEN,
  ICMP_PARAM_PROBLEM,
  ICMP_TIME_EXCEEDED,
  icmpSetChecksum,
} from '../../wire/icmp4.js';
import { NAT_BUSY, NAT_MISS, NAT_NO_PORT, type NatTable } from '../../tables/nat/table.js';
import { PoolSet } from './pools.js';
import { untranslateQuote } from './quote.js';

export { PoolSet, type NatPool } from './pools.js';

const I_FRAGMENT = 0;
const I_PROTO = 1;
const I_FULL = 2;
const I_NO_PORT = 3;
const I_BUSY = 4;
const I_TRANSLATED = 5;
const I_ICMP = 6;

/**
 * Batches smaller than this translate packet by packet inside the fused pass() (no queue hop); from
 * this size on, the translations are queued and looked up together (process()).
 */
export const BATCH_MIN = 16;

/** Seconds → the NAT table's clock (whole seconds, u32). */
function clock(now: number): number {
  return Math.floor(now) | 0;
}

/** Seconds of clock time between two slices of the NAT expiry sweep (see Snat4In2Out.tick). */
const SWEEP_EVERY = 0.001;

export class Snat4In2Out extends GraphNode {
  readonly decl: NodeDecl = {
    name: 'snat4-in2out',
    arc: {
      name: ARC_IP4_OUTPUT,
      keys: [ADJ_DIRECT, ADJ_GATEWAY, ADJ_IPIP, ADJ_VXLAN],
      before: ['ipip4-encap', 'vxlan4-encap'],
    },
    reasons: [
      drop('fragment-unsupported'),
      drop('unsupported-protocol'),
      drop('table-full'),
      drop('no-free-port'),
      drop('busy'),
      event('translated'),
      drop('icmp-error-not-translated'),
    ],
  };
  private now = 0;
  /** the clock of the last sweep slice */
  private swept = -Infinity;
  private readonly adj: AdjacencyTable;
  /** process() scratch, per batch slot: 5-tuples, lookup results, what each queued packet is */
  private readonly keys: Int32Array;
  private readonly found: Int32Array;
  private readonly st: Int32Array;
  /** per packet index: pass() queued it for translation (process() skips the masquerade rule) */
  private readonly queued: Uint8Array;
  /** process() scratch, per lookup: the packet's L4 header offset */
  private readonly l4s: Int32Array;

  constructor(
    private readonly env: DataplaneEnv,
    /** null: inert (no pool has natOutgoing) */
    private nat: NatTable | null,
    private pools: PoolSet,
    capacity: number,
  ) {
    super();
    this.adj = env.adj;
    this.keys = new Int32Array(capacity * 5);
    this.found = new Int32Array(capacity);
    this.st = new Int32Array(capacity);
    this.queued = new Uint8Array(capacity);
    this.l4s = new Int32Array(capacity);
  }

  /**
   * Timers: the NAT clock, and a slice of the expiry sweep (256 slots) at most once per SWEEP_EVERY of
   * clock time, so the sweep's cost per second does not grow with how often the graph ticks (the live
   * loop ticks every 50 ms; replay and benches every round).
   */
  override tick(_b: Batch, now: number): void {
    this.now = clock(now);
    if (this.nat === null || (now - this.swept < SWEEP_EVERY && now >= this.swept)) return;
    this.swept = now;
    this.nat.expire(this.now, 256);
  }

  override setParams(env: DataplaneEnv): void {
    this.nat = env.nat;
    this.pools = new PoolSet(env.params.pools);
  }

  /**
   * Calico's rule for packets leaving the node: masquerade workload traffic from a natOutgoing pool to
   * no pool (routes inside the pools are flagged on their adjacency and skip the pool scan). The
   * node's own ICMP errors about a packet snat4-out2in translated get their quote translated back.
   * False when the packet is the feature's to masquerade.
   */
  private passThrough(b: Batch, i: number): boolean {
    const nat = this.nat;
    if (nat === null) return true;
    const f = b.flags[i];
    if ((f & PKT_LOCAL) !== 0) {
      if ((f & PKT_DNATED) !== 0) untranslateQuote(b.u8, b.off[i] + ETH_HLEN, nat, b.aux[i]);
      return true;
    }
    if ((this.adj.flags[b.adj[i]] & ADJ_F_IN_POOL) !== 0) return true;
    if ((f & PKT_DECAP) !== 0 || this.env.ports.kind[b.rxPort[i]] !== KIND_WORKLOAD) return true;
    const ip = b.off[i] + ETH_HLEN;
    return !this.pools.masquerade(ip4Src(b.u8, ip), ip4Dst(b.u8, ip));
  }

  /**
   * Fused on the edge entering ip4-output: packets that stay untranslated go on at once; in a batch of
   * BATCH_MIN or more the ones to masquerade are queued on this node (the packet is claimed) and
   * process() translates them together, overlapping the flow table's cache misses.
   */
  override pass(b: Batch, i: number): boolean {
    if (this.passThrough(b, i)) return true;
    if (b.count < BATCH_MIN) return this.translate(b, i, NAT_MISS, false);
    this.queued[i] = 1;
    this.q[this.n++] = i;
    return false;
  }

  /**
   * The batched path (VPP's dual loop, with loads standing in for prefetches): (1) sort the packets
   * and extract the 5-tuples of the ones to masquerade, (2) look all of them up at once (the table's
   * lookupOutBatch loads every bucket head and first entry before walking: independent cache misses
   * the CPU overlaps; ~7 M lookups/s at 1 M flows against ~1 M one by one), (3) translate in arrival
   * order (misses create their flow: createOut finds one an earlier packet of the batch created).
   * Packets queued by pass() are known to need translation (queued[i]); others (unfused) are sorted.
   */
  override process(b: Batch, q: Uint16Array, n: number): void {
    const u8 = b.u8;
    const keys = this.keys;
    const st = this.st;
    const queued = this.queued;
    let m = 0;
    for (let k = 0; k < n; k++) {
      const i = q[k];
      if (queued[i] === 1) queued[i] = 0;
      else if (this.passThrough(b, i)) {
        st[k] = -1;
        continue;
      }
      const ip = b.off[i] + ETH_HLEN;
      const l4 = this.parse(b, i, ip);
      if (l4 < 0) {
        st[k] = -2;
        continue;
      }
      const proto = u8[ip + IP4_PROTO];
      const r = m * 5;
      keys[r] = proto;
      keys[r + 1] = ip4Src(u8, ip);
      keys[r + 3] = ip4Dst(u8, ip);
      if (proto === IPPROTO_ICMP) {
        keys[r + 2] = (u8[l4 + ICMP_ID] << 8) | u8[l4 + ICMP_ID + 1];
        keys[r + 4] = 0;
      } else {
        keys[r + 2] = (u8[l4] << 8) | u8[l4 + 1];
        keys[r + 4] = (u8[l4 + 2] << 8) | u8[l4 + 3];
      }
      this.l4s[m] = l4;
      st[k] = m++;
    }
    if (m > 0) this.nat!.lookupOutBatch(keys, m, this.now, this.found);
    const next = this.arcNext;
    for (let k = 0; k < n; k++) {
      const s = st[k];
      if (s === -2) continue;
      const i = q[k];
      if (s === -1 || this.translateFound(b, i, s)) next.enterAny(b, i);
    }
  }

  /**
   * Masquerades the packet of process()'s lookup s; false when it was dropped. An established TCP or
   * UDP flow (the common case) is translated from what process() extracted (no re-parse; one checksum
   * pass for address and port); the rest (new flows, echo, GSO, tracing) goes through translate().
   */
  private translateFound(b: Batch, i: number, s: number): boolean {
    const f = this.found[s];
    const r = s * 5;
    const proto = this.keys[r];
    if (f < 0 || proto === IPPROTO_ICMP || (b.flags[i] & PKT_GSO) !== 0 || b.trace !== null) {
      return this.translate(b, i, f, true);
    }
    const u8 = b.u8;
    const nat = this.nat!;
    const l4 = this.l4s[s];
    const nip = nat.natIp(f);
    const tcp = proto === IPPROTO_TCP;
    l4SetSource(u8, l4, tcp ? TCP_CSUM : UDP_CSUM, this.keys[r + 1], nip, nat.natPort(f), !tcp);
    if (tcp) nat.tcpUpdate(f, u8[l4 + TCP_FLAGS], true, this.now);
    ip4SetSrc(u8, b.off[i] + ETH_HLEN, nip);
    this.count(I_TRANSLATED);
    return true;
  }

  /** The L4 header offset of a packet to masquerade, or -1 when it was dropped (and counted). */
  private parse(b: Batch, i: number, ip: number): number {
    const u8 = b.u8;
    if (ip4IsFragment(u8, ip)) {
      this.drop(b, i, I_FRAGMENT);
      return -1;
    }
    const proto = u8[ip + IP4_PROTO];
    const l4 = ip + ip4Hlen(u8, ip);
    const end = ip + ip4TotalLen(u8, ip);
    if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) {
      if (l4 + (proto === IPPROTO_TCP ? 20 : 8) <= end) return l4;
      this.drop(b, i, I_PROTO);
      return -1;
    }
    if (proto === IPPROTO_ICMP && l4 + ICMP_HLEN <= end && u8[l4] === ICMP_ECHO_REQUEST) return l4;
    this.drop(b, i, proto === IPPROTO_ICMP ? I_ICMP : I_PROTO);
    return -1;
  }

  /**
   * Masquerades packet i in place; false when it was dropped (and counted). `parsed`: process() already
   * checked it and looked its flow up (`f`: the flow, or NAT_MISS to create it).
   */
  private translate(b: Batch, i: number, f: number, parsed: boolean): boolean {
    const u8 = b.u8;
    const nat = this.nat!; // only packets passThrough() kept come here: the table exists
    const now = this.now;
    const ip = b.off[i] + ETH_HLEN;
    const l4 = parsed ? ip + ip4Hlen(u8, ip) : this.parse(b, i, ip);
    if (l4 < 0) return false;
    const proto = u8[ip + IP4_PROTO];
    const src = ip4Src(u8, ip);
    const dst = ip4Dst(u8, ip);
    let sport: number;
    let dport: number;
    if (proto === IPPROTO_ICMP) {
      sport = (u8[l4 + ICMP_ID] << 8) | u8[l4 + ICMP_ID + 1];
      dport = 0;
    } else {
      sport = (u8[l4] << 8) | u8[l4 + 1];
      dport = (u8[l4 + 2] << 8) | u8[l4 + 3];
    }
    if (!parsed) f = nat.lookupOut(proto, src, sport, dst, dport, now);
    if (f === NAT_MISS) f = nat.createOut(proto, src, sport, dst, dport, now);
    if (f < 0) {
      this.drop(b, i, f === NAT_NO_PORT ? I_NO_PORT : f === NAT_BUSY ? I_BUSY : I_FULL);
      return false;
    }
    const nip = nat.natIp(f);
    const nport = nat.natPort(f);
    if (proto === IPPROTO_ICMP) {
      l4SetPort(u8, l4, ICMP_ID, nport, ICMP_CSUM, false);
    } else {
      const csum = proto === IPPROTO_TCP ? TCP_CSUM : UDP_CSUM;
      const udp = proto === IPPROTO_UDP;
      if ((b.flags[i] & PKT_GSO) !== 0) {
        // a super-frame's checksum is still partial: only its pseudo-header (addresses) changes
        l4AdjustPartialForAddr(u8, l4, csum, src, nip);
        u8[l4] = nport >>> 8;
        u8[l4 + 1] = nport & 255;
      } else {
        l4AdjustForAddr(u8, l4, csum, src, nip, udp);
        l4SetPort(u8, l4, 0, nport, csum, udp);
      }
      if (proto === IPPROTO_TCP) nat.tcpUpdate(f, u8[l4 + TCP_FLAGS], true, now);
    }
    ip4SetSrc(u8, ip, nip);
    this.count(I_TRANSLATED);
    if (b.trace !== null) b.note(i, this.name, `${formatIp4(src)}:${sport} -> ${formatIp4(nip)}:${nport}`);
    return true;
  }
}

const O_NO_FLOW = 0;
const O_FRAGMENT = 1;
const O_TRANSLATED = 2;
const O_ICMP_ERROR = 3;
const O_MALFORMED = 4;

export class Snat4Out2In extends GraphNode {
  readonly decl: NodeDecl = {
    name: 'snat4-out2in',
    arc: { name: ARC_IP4_LOCAL, after: ['ipip4-input', 'vxlan4-input'] },
    next: ['ip4-lookup'],
    reasons: [
      drop('no-translation'),
      drop('fragment-unsupported'),
      event('translated'),
      event('translated-icmp-error'),
      drop('malformed'),
    ],
  };
  private now = 0;
  /** process() scratch, per batch slot: 5-tuples, lookup results, what each queued packet is */
  private readonly keys: Int32Array;
  private readonly found: Int32Array;
  private readonly st: Int32Array;

  constructor(
    /** null: inert (claims nothing) */
    private nat: NatTable | null,
    capacity: number,
  ) {
    super();
    this.keys = new Int32Array(capacity * 5);
    this.found = new Int32Array(capacity);
    this.st = new Int32Array(capacity);
  }

  override tick(_b: Batch, now: number): void {
    this.now = clock(now);
  }

  override setParams(env: DataplaneEnv): void {
    this.nat = env.nat;
  }

  /**
   * Claims every packet for our addresses (the last feature on ip4-local): translates or drops it at
   * once in a small batch, else queues it here for process() (batched lookups, as snat4-in2out).
   * Without a NAT table it claims nothing (ip4-input counts what no feature took).
   */
  override pass(b: Batch, i: number): boolean {
    if (this.nat === null) return true;
    if (b.count < BATCH_MIN) this.translate(b, i, NAT_MISS, false);
    else this.q[this.n++] = i;
    return false;
  }

  /**
   * Replies (TCP, UDP, echo replies) have their flows looked up together (lookupInBatch: the bucket
   * and entry misses overlap); everything else (ICMP errors, malformed packets) goes one by one. All
   * are then translated in arrival order.
   */
  override process(b: Batch, q: Uint16Array, n: number): void {
    const st = this.st;
    let m = 0;
    for (let k = 0; k < n; k++) st[k] = this.keyOf(b, q[k], m * 5) ? m++ : -1;
    if (m > 0) this.nat!.lookupInBatch(this.keys, m, this.now, this.found);
    for (let k = 0; k < n; k++) {
      const s = st[k];
      this.translate(b, q[k], s < 0 ? NAT_MISS : this.found[s], s >= 0);
    }
  }

  /** Writes the lookupIn key of a plain reply at keys[r] (false: not one; translate() decides). */
  private keyOf(b: Batch, i: number, r: number): boolean {
    const u8 = b.u8;
    const ip = b.off[i] + ETH_HLEN;
    if (ip4IsFragment(u8, ip)) return false;
    const proto = u8[ip + IP4_PROTO];
    const l4 = ip + ip4Hlen(u8, ip);
    const end = ip + ip4TotalLen(u8, ip);
    const keys = this.keys;
    keys[r] = proto;
    keys[r + 1] = ip4Src(u8, ip);
    keys[r + 3] = ip4Dst(u8, ip);
    if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) {
      if (l4 + (proto === IPPROTO_TCP ? 20 : 8) > end) return false;
      keys[r + 2] = (u8[l4] << 8) | u8[l4 + 1];
      keys[r + 4] = (u8[l4 + 2] << 8) | u8[l4 + 3];
      return true;
    }
    if (proto !== IPPROTO_ICMP || l4 + ICMP_HLEN > end || u8[l4] !== ICMP_ECHO_REPLY) return false;
    keys[r + 2] = 0;
    keys[r + 4] = (u8[l4 + ICMP_ID] << 8) | u8[l4 + ICMP_ID + 1];
    return true;
  }

  /** Translates (or drops) packet i; `looked`: process() looked its flow up already (`f`). */
  private translate(b: Batch, i: number, f: number, looked: boolean): void {
    const u8 = b.u8;
    const nat = this.nat!; // pass() queues nothing without a table
    const now = this.now;
    const ip = b.off[i] + ETH_HLEN;
    if (ip4IsFragment(u8, ip)) {
      this.drop(b, i, O_FRAGMENT);
      return;
    }
    const proto = u8[ip + IP4_PROTO];
    const l4 = ip + ip4Hlen(u8, ip);
    const end = ip + ip4TotalLen(u8, ip);
    const src = ip4Src(u8, ip);
    const dst = ip4Dst(u8, ip);
    if (proto === IPPROTO_ICMP && l4 + ICMP_HLEN <= end) {
      const type = u8[l4];
      if (type === ICMP_DEST_UNREACH || type === ICMP_TIME_EXCEEDED || type === ICMP_PARAM_PROBLEM) {
        this.icmpError(b, i, ip, l4, end);
        return;
      }
      if (type !== ICMP_ECHO_REPLY) {
        this.drop(b, i, O_NO_FLOW);
        return;
      }
      const id = (u8[l4 + ICMP_ID] << 8) | u8[l4 + ICMP_ID + 1];
      if (!looked) f = nat.lookupIn(IPPROTO_ICMP, src, 0, dst, id, now);
      if (f < 0) {
        this.drop(b, i, O_NO_FLOW);
        return;
      }
      l4SetPort(u8, l4, ICMP_ID, nat.insidePort(f), ICMP_CSUM, false);
      ip4SetDst(u8, ip, nat.insideIp(f));
      this.done(b, i, f);
      return;
    }
    if ((proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) || l4 + (proto === IPPROTO_TCP ? 20 : 8) > end) {
      this.drop(b, i, O_NO_FLOW);
      return;
    }
    if (!looked) {
      const sport = (u8[l4] << 8) | u8[l4 + 1];
      const dport = (u8[l4 + 2] << 8) | u8[l4 + 3];
      f = nat.lookupIn(proto, src, sport, dst, dport, now);
    }
    if (f < 0) {
      this.drop(b, i, O_NO_FLOW);
      return;
    }
    const inIp = nat.insideIp(f);
    const csum = proto === IPPROTO_TCP ? TCP_CSUM : UDP_CSUM;
    const udp = proto === IPPROTO_UDP;
    if ((b.flags[i] & PKT_GSO) !== 0) {
      // a super-frame's checksum is still partial: only its pseudo-header (addresses) changes
      l4AdjustPartialForAddr(u8, l4, csum, dst, inIp);
      u8[l4 + 2] = nat.insidePort(f) >>> 8;
      u8[l4 + 3] = nat.insidePort(f) & 255;
    } else {
      l4AdjustForAddr(u8, l4, csum, dst, inIp, udp);
      l4SetPort(u8, l4, 2, nat.insidePort(f), csum, udp);
    }
    if (proto === IPPROTO_TCP) nat.tcpUpdate(f, u8[l4 + TCP_FLAGS], false, now);
    ip4SetDst(u8, ip, inIp);
    this.done(b, i, f);
  }

  private done(b: Batch, i: number, f: number): void {
    b.flags[i] |= PKT_DNATED;
    b.aux[i] = f;
    this.count(O_TRANSLATED);
    if (b.trace !== null) {
      b.note(i, this.name, `-> ${formatIp4(this.nat!.insideIp(f))}:${this.nat!.insidePort(f)}`);
    }
    this.next[0].enter(b, i);
  }

  /**
   * An ICMP error about a packet we translated: the quoted header has src = nat ip:port. Restore the
   * workload's address and port in the quote and in the outer destination (RFC 5508 §7 / RFC 3022).
   */
  private icmpError(b: Batch, i: number, ip: number, l4: number, end: number): void {
    const u8 = b.u8;
    const inner = l4 + ICMP_HLEN;
    if (inner + 20 > end || u8[inner] >> 4 !== 4) {
      this.drop(b, i, O_MALFORMED);
      return;
    }
    const ihl = (u8[inner] & 15) * 4;
    const iproto = u8[inner + IP4_PROTO];
    const il4 = inner + ihl;
    const isrc = ip4Src(u8, inner);
    const idst = ip4Dst(u8, inner);
    let sport = 0;
    let dport = 0;
    if (iproto === IPPROTO_TCP || iproto === IPPROTO_UDP) {
      if (il4 + 4 > end) {
        this.drop(b, i, O_MALFORMED);
        return;
      }
      sport = (u8[il4] << 8) | u8[il4 + 1];
      dport = (u8[il4 + 2] << 8) | u8[il4 + 3];
    } else if (iproto === IPPROTO_ICMP) {
      if (il4 + 8 > end) {
        this.drop(b, i, O_MALFORMED);
        return;
      }
      sport = (u8[il4 + ICMP_ID] << 8) | u8[il4 + ICMP_ID + 1];
    } else {
      this.drop(b, i, O_NO_FLOW);
      return;
    }
    const nat = this.nat!;
    const f = nat.lookupIn(iproto, idst, dport, isrc, sport, this.now);
    if (f < 0) {
      this.drop(b, i, O_NO_FLOW);
      return;
    }
    const inIp = nat.insideIp(f);
    const inPort = nat.insidePort(f);
    // the quoted header: source address and port back to the workload's (checksums where quoted)
    ip4SetSrc(u8, inner, inIp);
    if (iproto === IPPROTO_ICMP) {
      // the quoted echo's checksum lies in its first 8 bytes: keep it valid
      l4SetPort(u8, il4, ICMP_ID, inPort, ICMP_CSUM, false);
    } else {
      // restore the quoted port, fixing the quoted L4 checksum when the quote reaches it
      const csum = iproto === IPPROTO_TCP ? TCP_CSUM : UDP_CSUM;
      const udp = iproto === IPPROTO_UDP;
      if (il4 + csum + 2 <= end) {
        l4AdjustForAddr(u8, il4, csum, isrc, inIp, udp);
        l4SetPort(u8, il4, 0, inPort, csum, udp);
      } else {
        u8[il4] = inPort >>> 8;
        u8[il4 + 1] = inPort & 255;
      }
    }
    icmpSetChecksum(u8, l4, end - l4);
    ip4SetDst(u8, ip, inIp);
    this.count(O_ICMP_ERROR);
    if (b.trace !== null) b.note(i, this.name, `icmp error for ${formatIp4(inIp)}:${inPort}`);
    this.next[0].enter(b, i);
  }
}

/**
 * natOutgoing: always in the graph, active when the dataplane has a NAT table (some pool masquerades;
 * a live `params` message may bring one later), inert before.
 */
export const natFeature: GraphFeature = (env, capacity) => [
  new Snat4In2Out(env, env.nat, new PoolSet(env.params.pools), capacity),
  new Snat4Out2In(env.nat, capacity),
];
