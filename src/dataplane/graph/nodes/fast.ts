// ip4-fast: the graph's entry when the fast path is on (BuildOptions.fast, default on). One loop over
// the received batch doing ethernet-input + ip4-input + ip4-lookup + ip4-rewrite for the dominant
// case: plain unicast IPv4 (20-byte header, valid checksum, TTL > 1, no fragmentation needed) routed
// to a local workload or a directly reachable / gateway next hop whose MAC is known. Runs in the
// graph owner's thread over the batch arena; reads the same shared tables as the general nodes.
//
// What it saves, per packet of that case (bench/graph.bench.ts, direct path): four queue hops (write
// and re-read of a queue slot, one dispatch round per node), the per-node reloads of the frame offset,
// length, receive port and header fields, and the general checks for options, VLANs, ARP and local
// delivery; the header checksum is verified in straight-line code on the first touch of the header.
//
// Semantics are the general graph's: it decides nothing the general nodes would not. Every check
// comes before any change: a packet that is not plain IPv4 to our MAC with a 20-byte header and a
// valid checksum, that is martian or from a workload to the node itself, whose rx key's ip4-unicast chain or whose
// adjacency kind's ip4-output chain is not fused features only, that needs no route / blackhole /
// reflection handling, a tunnel, TTL or MTU handling or an unresolved neighbour, that is flagged
// (GSO, ...), goes to ethernet-input untouched, and so does the rest of the batch after it: the
// general nodes then see the batch's packets in the order they would have (per-flow order, the
// order NAT flows are created in and tunnels number their packets stay exactly the general graph's;
// the cost is that a batch with an unusual packet early takes the general path for its tail). The
// Packets for the node's own addresses from the uplink (tunnels, NAT replies) enter arc ip4-local in
// batch order, as ip4-input does (its features are always inline). The
// features on the arcs run exactly as on the fused edges (the same feature nodes, in the same order:
// passAll of the fused Next objects; on ip4-unicast a last feature with a flow gate is split off and
// its gate tested inline first, see `heads`), so their counters and drops are the same; the fast node
// itself counts nothing (it has no reasons). With tracing on every packet takes the general path (the
// traces are the general graph's).
import { GraphNode, makeNext, type KeyedNext, type Next, type NodeDecl } from '../graph.js';
import { GATE_WORD_MASK, flowGatePass, type FlowGate } from '../flow-gate.js';
import type { Batch } from '../packet.js';
import { ownsAddress, type DataplaneEnv } from '../env.js';
import { KIND_HOST, KIND_WORKLOAD } from '../ports.js';
import { UNICAST_KEYS, unicastKey } from '../arcs.js';
import { LPM_DEFAULT_SLOT, LPM_EXT, LPM_MAX_VALUE } from '../../tables/lpm.js';
import { Ip4Input } from './ip4.js';
import { ADJ_DIRECT, ADJ_GATEWAY, ADJ_KIND_NAMES, ADJ_LOCAL } from '../../tables/adjacency.js';
import { NBR_REACHABLE, NBR_STATIC } from '../../tables/neighbor.js';

const N_ETH = 0;
const N_LOOKUP = 1;
const N_REWRITE = 2;
const N_OUTPUT = 3;
const N_UNICAST = 4;
const N_OUT_ARC = 5;
const N_LOCAL = 6;
const N_IP4_INPUT = 7;

export class Ip4Fast extends GraphNode {
  readonly decl: NodeDecl = {
    name: 'ip4-fast',
    next: [
      'ethernet-input',
      'ip4-lookup',
      'ip4-rewrite',
      'interface-output',
      'arc:ip4-unicast',
      'arc:ip4-output',
      'arc:ip4-local',
      'ip4-input',
    ],
  };
  private nodeIp: number;
  private owned: Uint32Array;
  /** per ip4-unicast key: its chain is fused features only, ending in ip4-lookup */
  private readonly unicastFast = new Uint8Array(UNICAST_KEYS);
  /** per adjacency kind: its ip4-output chain is fused features only, ending in interface-output */
  private readonly outputFast = new Uint8Array(ADJ_KIND_NAMES.length);
  /**
   * Per ip4-unicast key: the chain's features up to its last one when that one has a flow gate
   * (graph/flow-gate.ts), else the whole chain; that gate (or null) and its feature. The loop runs
   * head, then tests the gate inline and calls the gated feature only when it does not open: the
   * same features in the same order as the chain's passAll. Why (V8): this loop is past the
   * inlining budget, so every pass() left here is a real call, and one call site for the whole chain
   * sees a different Next class per key (and per graph in one thread), which V8 will not inline; the
   * heads of the keys are mostly the same class (the spoof check alone, or nothing).
   */
  private heads: Next[] = [];
  private gates: (FlowGate | null)[] = [];
  private gated: GraphNode[] = [];
  private ready = false;

  constructor(private readonly env: DataplaneEnv) {
    super();
    this.nodeIp = env.params.nodeIp | 0;
    this.owned = Uint32Array.from(env.params.ownedIps);
  }

  override setParams(env: DataplaneEnv): void {
    this.nodeIp = env.params.nodeIp | 0;
    this.owned = Uint32Array.from(env.params.ownedIps);
  }

  /** Which arc chains the fast path may run (the builder resolved them before the first batch). */
  private init(): void {
    const lookup = this.next[N_LOOKUP].node;
    const output = this.next[N_OUTPUT].node;
    const un = this.keyed[N_UNICAST]!.byKey;
    for (let k = 0; k < UNICAST_KEYS; k++) this.unicastFast[k] = un[k].node === lookup ? 1 : 0;
    this.heads = [];
    this.gates = [];
    this.gated = [];
    for (let k = 0; k < UNICAST_KEYS; k++) {
      const f = un[k].inline;
      const last = f.length > 0 ? f[f.length - 1] : null;
      if (last !== null && last.gate !== null) {
        this.heads.push(makeNext(un[k].node, f.slice(0, -1)));
        this.gates.push(last.gate);
        this.gated.push(last);
      } else {
        this.heads.push(un[k]);
        this.gates.push(null);
        this.gated.push(this);
      }
    }
    const out = this.keyed[N_OUT_ARC]!.byKey;
    for (let k = 0; k < out.length; k++) {
      const plain = k === ADJ_LOCAL || k === ADJ_DIRECT || k === ADJ_GATEWAY;
      this.outputFast[k] = plain && out[k].node === output ? 1 : 0;
    }
    this.ready = true;
  }

  override process(b: Batch, q: Uint16Array, n: number): void {
    if (!this.ready) this.init();
    const eth = this.next[N_ETH].node!;
    const local = this.next[N_LOCAL];
    const ip4in = this.next[N_IP4_INPUT].node!;
    if (b.trace !== null) {
      for (let k = 0; k < n; k++) eth.q[eth.n++] = q[k];
      return;
    }
    const env = this.env;
    const u8 = b.u8;
    const ports = env.ports;
    const ourMac = ports.ourMac;
    const pkind = ports.kind;
    const adj = env.adj;
    const akind = adj.kind;
    const nbr = env.nbr;
    const nseq = nbr.seq;
    const nstate = nbr.state;
    const macHi = nbr.macHi;
    const macLo = nbr.macLo;
    const tbl24 = env.fib.tbl24;
    const tbl8 = env.fib.tbl8;
    const rewrite = this.next[N_REWRITE].node!;
    const output = this.next[N_OUTPUT].node!;
    const heads = this.heads;
    const gates = this.gates;
    const gated = this.gated;
    const outArc = (this.keyed[N_OUT_ARC] as KeyedNext).byKey;
    const unicastFast = this.unicastFast;
    const outputFast = this.outputFast;
    const nodeIp = this.nodeIp;
    const owned = this.owned;
    let k = 0;
    for (; k < n; k++) {
      const i = q[k];
      const off = b.off[i];
      const len = b.len[i];
      const p = b.rxPort[i];
      const pm = p * 6;
      const ip = off + 14;
      // ---- ethernet-input: IPv4 to our MAC on this port; ip4-input: 20-byte header, checksum
      if (
        b.flags[i] !== 0 ||
        len < 34 ||
        u8[off + 12] !== 0x08 ||
        u8[off + 13] !== 0x00 ||
        u8[ip] !== 0x45 ||
        u8[off] !== ourMac[pm] ||
        u8[off + 1] !== ourMac[pm + 1] ||
        u8[off + 2] !== ourMac[pm + 2] ||
        u8[off + 3] !== ourMac[pm + 3] ||
        u8[off + 4] !== ourMac[pm + 4] ||
        u8[off + 5] !== ourMac[pm + 5]
      )
        break;
      const tot = (u8[ip + 2] << 8) | u8[ip + 3];
      const ttl = u8[ip + 8];
      const frag = (u8[ip + 6] << 8) | u8[ip + 7];
      const proto = u8[ip + 9];
      const src = (u8[ip + 12] << 24) | (u8[ip + 13] << 16) | (u8[ip + 14] << 8) | u8[ip + 15];
      const dst = (u8[ip + 16] << 24) | (u8[ip + 17] << 16) | (u8[ip + 18] << 8) | u8[ip + 19];
      let s =
        0x4500 +
        u8[ip + 1] +
        tot +
        ((u8[ip + 4] << 8) | u8[ip + 5]) +
        frag +
        ((ttl << 8) | proto) +
        ((u8[ip + 10] << 8) | u8[ip + 11]) +
        (src >>> 16) +
        (src & 0xffff) +
        (dst >>> 16) +
        (dst & 0xffff);
      s = (s & 0xffff) + (s >>> 16);
      s = (s & 0xffff) + (s >>> 16);
      const s8 = src >>> 24;
      const d8 = dst >>> 24;
      const rk = pkind[p];
      const key = unicastKey(rk);
      if (
        s !== 0xffff ||
        tot < 20 ||
        tot > len - 14 ||
        s8 === 0 ||
        s8 === 127 ||
        s8 >= 224 ||
        d8 === 0 ||
        d8 === 127 ||
        d8 >= 224
      )
        break;
      if (dst === nodeIp || ownsAddress(owned, dst >>> 0)) {
        // for the node, from the uplink: ip4-input's work, then arc ip4-local, whose features (all
        // inline: tunnels, NAT replies) claim theirs; the rest is the host's, counted by ip4-input.
        // From a workload: to the host TAP like any routed packet (ip4-input decides without one)
        if (rk === KIND_HOST || (rk === KIND_WORKLOAD && ports.host < 0)) break;
        if (rk !== KIND_WORKLOAD) {
          b.len[i] = 14 + tot;
          if (!local.enter(b, i)) ip4in.drop(b, i, Ip4Input.R_NOT_OURS);
          continue;
        }
      }
      // the host TAP's packets must come from the host's own addresses (ip4-input drops the rest)
      if (unicastFast[key] === 0 || (rk === KIND_HOST && !ports.sourceAllowed(p, src >>> 0))) break;
      // ---- ip4-lookup and ip4-rewrite's checks: a plain adjacency (no reflection: traffic from the
      // uplink only goes to local workloads), TTL, MTU, output features all fused, neighbour known
      // lpmLookup inline (a call per packet otherwise: this loop is past V8's inlining budget)
      const e24 = tbl24[dst >>> 8];
      const e = (e24 & LPM_EXT) === 0 ? e24 : tbl8[((e24 & LPM_MAX_VALUE) << 8) | (dst & 0xff)];
      const a = (e !== 0 ? e : tbl24[LPM_DEFAULT_SLOT]) & LPM_MAX_VALUE;
      const ak = akind[a];
      if (
        outputFast[ak] === 0 ||
        (ak !== ADJ_LOCAL && (rk !== KIND_WORKLOAD || !nbr.resolved(adj.neighbor[a]))) ||
        (rk !== KIND_WORKLOAD && pkind[adj.port[a]] === KIND_HOST) ||
        ttl <= 1 ||
        tot > adj.mtu[a]
      )
        break;
      // ---- commit: ip4-input's work (Ethernet padding is not part of the packet), the ip4-unicast
      // features (they may drop or claim the packet: the chain's passAll, its gated last feature
      // split off, see heads), then ip4-lookup's and ip4-rewrite's
      b.len[i] = 14 + tot;
      if (!heads[key].passAll(b, i)) continue;
      const g = gates[key];
      if (
        g !== null &&
        !flowGatePass(g, b, ip, tot, ((frag << 16) | proto) & GATE_WORD_MASK, src, dst) &&
        !gated[key].pass(b, i)
      )
        continue;
      b.adj[i] = a;
      if (ak === ADJ_LOCAL) {
        const m = a * 6;
        const am = adj.mac;
        u8[off] = am[m];
        u8[off + 1] = am[m + 1];
        u8[off + 2] = am[m + 2];
        u8[off + 3] = am[m + 3];
        u8[off + 4] = am[m + 4];
        u8[off + 5] = am[m + 5];
      } else {
        // NeighborTable.copyMac's seqlock read, inline (its first try); a writer at work or a
        // changed entry: the method itself, which retries
        const ni = adj.neighbor[a];
        const s1 = Atomics.load(nseq, ni);
        const st = nstate[ni];
        const hi = macHi[ni];
        const lo = macLo[ni];
        if ((s1 & 1) === 0 && (st === NBR_REACHABLE || st === NBR_STATIC) && Atomics.load(nseq, ni) === s1) {
          u8[off] = hi >>> 8;
          u8[off + 1] = hi & 255;
          u8[off + 2] = lo >>> 24;
          u8[off + 3] = (lo >>> 16) & 255;
          u8[off + 4] = (lo >>> 8) & 255;
          u8[off + 5] = lo & 255;
        } else if (!nbr.copyMac(ni, u8, off)) {
          // changed since the check above, or a writer holds the entry (nothing written): the node
          // decides (ip4-arp, or neighbor-busy), and the rest of the batch follows it
          rewrite.q[rewrite.n++] = i;
          k++;
          break;
        }
      }
      // ip4DecTtl inline (ttl > 1 here): RFC 1624 eqn. 3 with m' = m - 0x100, so ~m + m' = 0xfeff
      u8[ip + 8] = ttl - 1;
      let c = (~((u8[ip + 10] << 8) | u8[ip + 11]) & 0xffff) + 0xfeff;
      c = (c & 0xffff) + (c >>> 16);
      c = (c & 0xffff) + (c >>> 16);
      c = ~c & 0xffff;
      u8[ip + 10] = c >>> 8;
      u8[ip + 11] = c & 255;
      const tp = adj.port[a];
      b.txPort[i] = tp;
      const tm = tp * 6;
      u8[off + 6] = ourMac[tm];
      u8[off + 7] = ourMac[tm + 1];
      u8[off + 8] = ourMac[tm + 2];
      u8[off + 9] = ourMac[tm + 3];
      u8[off + 10] = ourMac[tm + 4];
      u8[off + 11] = ourMac[tm + 5];
      if (outArc[ak].passAll(b, i)) output.q[output.n++] = i;
    }
    // the first packet that needs the general nodes takes the rest of the batch with it (see above)
    for (; k < n; k++) eth.q[eth.n++] = q[k];
  }
}
