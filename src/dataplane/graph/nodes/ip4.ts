// IPv4 nodes: ip4-input (validate), ip4-spoof-check (workload sources), ip4-lookup (FIB) and
// ip4-rewrite (TTL, MTU, link-layer rewrite). Run by the graph owner over the batch arena; the FIB,
// adjacency and neighbour tables are shared read-only here (arp-reply updates neighbour MACs).
import { GraphNode } from '../graph.js';
import { PKT_DECAP, PKT_GSO, PKT_LOCAL, PKT_SNAT, type Batch } from '../packet.js';
import { ownsAddress, type DataplaneEnv } from '../env.js';
import { KIND_WORKLOAD, type PortTable } from '../ports.js';
import type { NeighborTable } from '../../tables/neighbor.js';
import { lpmLookup } from '../../tables/lpm.js';
import {
  ADJ_BLACKHOLE,
  ADJ_F_IN_POOL,
  ADJ_IPIP,
  ADJ_KIND_NAMES,
  ADJ_LOCAL,
  ADJ_MISS,
  ADJ_VXLAN,
  type AdjacencyTable,
} from '../../tables/adjacency.js';
import { formatIp4, formatMac } from '../../../common/addr.js';
import { ETH_HLEN, ETH_SRC } from '../../wire/ethernet.js';
import {
  IP4_DF,
  IP4_ERR_NAMES,
  IP4_FRAG,
  IP4_OK,
  IP4_PROTO,
  IP4_TTL,
  IPPROTO_IPIP,
  IPPROTO_UDP,
  ip4Check,
  ip4DecTtl,
  ip4Dst,
  ip4Hlen,
  ip4Src,
  ip4TotalLen,
} from '../../wire/ipv4.js';
import {
  ICMP_DEST_UNREACH,
  ICMP_FRAG_NEEDED,
  ICMP_TIME_EXCEEDED,
  ICMP_TTL_EXCEEDED,
} from '../../wire/icmp4.js';
import type { Ip4IcmpError } from './icmp-error.js';
import { fragmentIp4 } from './fragment.js';
import { segmentTcp4 } from './segment.js';

/** Validates IPv4 headers and sorts packets: for this node (tunnels, NAT replies) or to forward. */
export class Ip4Input extends GraphNode {
  readonly name = 'ip4-input';
  // reasons 0..7 mirror the wire module's ip4Check codes
  readonly reasons = [
    ...IP4_ERR_NAMES.slice(0, 8),
    'martian-source',
    'martian-destination',
    'not-ours',
    'to-host-unsupported',
  ];
  static readonly R_MARTIAN_SRC = 8;
  static readonly R_MARTIAN_DST = 9;
  static readonly R_NOT_OURS = 10;
  static readonly R_TO_HOST = 11;
  spoof!: Ip4SpoofCheck;
  lookup!: GraphNode;
  /** packets for our node IP by IP protocol / UDP port; set by the encap/NAT layers when present */
  ipipIn: GraphNode | null = null;
  vxlanIn: GraphNode | null = null;
  natIn: GraphNode | null = null;
  private readonly ports: PortTable;
  private readonly nodeIp: number;
  private readonly vxlanPort: number;
  private readonly owned: Uint32Array;

  constructor(env: DataplaneEnv) {
    super();
    this.ports = env.ports;
    this.nodeIp = env.params.nodeIp >>> 0;
    this.vxlanPort = env.params.vxlanPort;
    this.owned = Uint32Array.from(env.params.ownedIps);
  }

  process(b: Batch, q: Uint16Array, n: number): void {
    const u8 = b.u8;
    const kind = this.ports.kind;
    for (let k = 0; k < n; k++) {
      const i = q[k];
      const ip = b.off[i] + ETH_HLEN;
      const err = ip4Check(u8, ip, b.len[i] - ETH_HLEN);
      if (err !== IP4_OK) {
        this.drop(b, i, err);
        continue;
      }
      // Ethernet padding beyond the IP total length is not part of the packet.
      b.len[i] = ETH_HLEN + ip4TotalLen(u8, ip);
      const src = ip4Src(u8, ip);
      const dst = ip4Dst(u8, ip);
      const s8 = src >>> 24;
      if (s8 === 0 || s8 === 127 || s8 >= 224) {
        this.drop(b, i, Ip4Input.R_MARTIAN_SRC);
        continue;
      }
      const d8 = dst >>> 24;
      if (d8 === 0 || d8 === 127 || d8 >= 224) {
        this.drop(b, i, Ip4Input.R_MARTIAN_DST);
        continue;
      }
      if (b.trace !== null) {
        b.note(
          i,
          this.name,
          `${formatIp4(src)} -> ${formatIp4(dst)} proto ${u8[ip + IP4_PROTO]} ttl ${u8[ip + IP4_TTL]} len ${b.len[i] - ETH_HLEN}`,
        );
      }
      if (kind[b.rxPort[i]] === KIND_WORKLOAD) {
        // the node's own addresses belong to the host's kernel, which calitap cannot hand packets to
        if (dst === this.nodeIp || ownsAddress(this.owned, dst)) {
          this.drop(b, i, Ip4Input.R_TO_HOST);
          continue;
        }
        // ip4-spoof-check runs inline (its own counters): saves a queue hop per workload packet
        if (this.spoof.pass(b, i)) this.lookup.push(i);
        continue;
      }
      if (dst === this.nodeIp && (b.flags[i] & PKT_DECAP) === 0) {
        const proto = u8[ip + IP4_PROTO];
        if (proto === IPPROTO_IPIP && this.ipipIn !== null) {
          this.ipipIn.push(i);
          continue;
        }
        if (proto === IPPROTO_UDP && this.vxlanIn !== null) {
          const l4 = ip + ip4Hlen(u8, ip);
          if (((u8[l4 + 2] << 8) | u8[l4 + 3]) === this.vxlanPort) {
            this.vxlanIn.push(i);
            continue;
          }
        }
      }
      if (this.natIn !== null && (dst === this.nodeIp || ownsAddress(this.owned, dst))) {
        this.natIn.push(i);
        continue;
      }
      if (dst === this.nodeIp || ownsAddress(this.owned, dst)) {
        // the host's own traffic (BGP, SSH...): the kernel handles it, not us
        this.drop(b, i, Ip4Input.R_NOT_OURS);
        continue;
      }
      this.lookup.push(i);
    }
  }
}

/**
 * Anti-spoofing on workload ports: a workload may only source its own ipNetworks, and may not send
 * IPIP or VXLAN (Calico drops both; a workload could otherwise inject into the tunnel mesh).
 */
export class Ip4SpoofCheck extends GraphNode {
  readonly name = 'ip4-spoof-check';
  readonly reasons = ['spoofed-source', 'ipip-from-workload', 'vxlan-from-workload'];
  lookup!: GraphNode;
  private readonly ports: PortTable;
  private readonly vxlanPort: number;

  constructor(env: DataplaneEnv) {
    super();
    this.ports = env.ports;
    this.vxlanPort = env.params.vxlanPort;
  }

  process(b: Batch, q: Uint16Array, n: number): void {
    for (let k = 0; k < n; k++) if (this.pass(b, q[k])) this.lookup.push(q[k]);
  }

  /** True when workload packet i may go on; otherwise it is dropped and counted here. */
  pass(b: Batch, i: number): boolean {
    const u8 = b.u8;
    const ip = b.off[i] + ETH_HLEN;
    if (!this.ports.sourceAllowed(b.rxPort[i], ip4Src(u8, ip))) {
      this.drop(b, i, 0);
      return false;
    }
    const proto = u8[ip + IP4_PROTO];
    if (proto === IPPROTO_IPIP) {
      this.drop(b, i, 1);
      return false;
    }
    if (proto === IPPROTO_UDP) {
      const l4 = ip + ip4Hlen(u8, ip);
      if (l4 + 4 <= b.off[i] + b.len[i] && ((u8[l4 + 2] << 8) | u8[l4 + 3]) === this.vxlanPort) {
        this.drop(b, i, 2);
        return false;
      }
    }
    return true;
  }
}

/** Longest-prefix match on the destination; picks the adjacency. */
export class Ip4Lookup extends GraphNode {
  readonly name = 'ip4-lookup';
  readonly reasons = ['no-route', 'blackhole', 'not-for-local-workload'];
  rewrite!: GraphNode;
  /** natOutgoing rule: true when packet i must be masqueraded (set by the NAT layer) */
  snatOut: { applies(b: Batch, i: number): boolean } | null = null;
  private readonly tbl24: Uint32Array;
  private readonly tbl8: Uint32Array;
  private readonly adj: AdjacencyTable;
  private readonly ports: PortTable;
  private readonly env: DataplaneEnv;

  constructor(env: DataplaneEnv) {
    super();
    this.env = env;
    this.tbl24 = env.fib.tbl24;
    this.tbl8 = env.fib.tbl8;
    this.adj = env.adj;
    this.ports = env.ports;
  }

  process(b: Batch, q: Uint16Array, n: number): void {
    const u8 = b.u8;
    const kinds = this.adj.kind;
    const adjFlags = this.adj.flags;
    const pkind = this.ports.kind;
    // the FIB may have grown its tbl8 since construction: re-read the arrays once per batch
    const tbl24 = this.tbl24;
    const tbl8 = this.env.fib.tbl8;
    for (let k = 0; k < n; k++) {
      const i = q[k];
      const ip = b.off[i] + ETH_HLEN;
      const a = lpmLookup(tbl24, tbl8, ip4Dst(u8, ip));
      const kind = kinds[a];
      if (kind === ADJ_MISS) {
        this.drop(b, i, 0);
        continue;
      }
      if (kind === ADJ_BLACKHOLE) {
        this.drop(b, i, 1);
        continue;
      }
      // Traffic arriving from the uplink or out of a tunnel is only ever delivered to local workloads:
      // we never route transit traffic back out (no reflection).
      if (
        kind !== ADJ_LOCAL &&
        (b.flags[i] & PKT_LOCAL) === 0 &&
        (pkind[b.rxPort[i]] !== KIND_WORKLOAD || (b.flags[i] & PKT_DECAP) !== 0)
      ) {
        this.drop(b, i, 2);
        continue;
      }
      b.adj[i] = a;
      if (b.trace !== null) {
        b.note(
          i,
          this.name,
          `adjacency ${a} ${ADJ_KIND_NAMES[kind]} port ${this.ports.names[this.adj.port[a]]}` +
            (kind === ADJ_LOCAL ? '' : ` next-hop ${formatIp4(this.adj.nextHop[a])}`),
        );
      }
      // masquerading happens in ip4-rewrite, after TTL and MTU: errors must quote the pod's packet
      if (
        this.snatOut !== null &&
        kind !== ADJ_LOCAL &&
        (adjFlags[a] & ADJ_F_IN_POOL) === 0 &&
        this.snatOut.applies(b, i)
      ) {
        b.flags[i] |= PKT_SNAT;
      }
      this.rewrite.push(i);
    }
  }
}

const W_TTL = 0;
const W_FRAG_NEEDED = 1;
const W_FRAG_FAILED = 2;
const W_UNRESOLVED = 3;
const W_FRAGMENTED = 4;
const W_NO_ENCAP = 5;
const W_SEGMENTED = 6;
const W_GSO_FAILED = 7;

/** Bytes of one segment of a GSO super-frame: IPv4 and TCP headers plus the segment size. */
function gsoSegmentLen(u8: Uint8Array, ip: number, mss: number): number {
  const l4 = ip + ip4Hlen(u8, ip);
  return l4 - ip + (u8[l4 + 12] >>> 4) * 4 + mss;
}

/**
 * TTL and MTU handling and the link-layer rewrite. Packets whose uplink next hop is not resolved yet
 * go to ip4-arp untouched (it holds them and comes back here when the neighbour answers). A packet
 * larger than the path MTU gets ICMP fragmentation-needed when it has DF, else is fragmented (RFC
 * 791). Tunnel adjacencies continue to the encapsulation nodes after the TTL/MTU step.
 */
export class Ip4Rewrite extends GraphNode {
  readonly name = 'ip4-rewrite';
  readonly reasons = [
    'ttl-exceeded',
    'fragmentation-needed',
    'fragmentation-failed',
    'neighbor-unresolved',
    'fragmented',
    'encap-unavailable',
    'gso-segmented',
    'gso-segmentation-failed',
  ];
  output!: GraphNode;
  arp!: GraphNode;
  icmp!: Ip4IcmpError;
  ipipEncap: GraphNode | null = null;
  vxlanEncap: GraphNode | null = null;
  /** snat4-in2out: masquerades in place; false when it dropped the packet */
  snat: { translate(b: Batch, i: number): boolean } | null = null;
  private readonly adj: AdjacencyTable;
  private readonly nbr: NeighborTable;
  private readonly ports: PortTable;
  private readonly scratch = new Uint8Array(64);

  constructor(env: DataplaneEnv) {
    super();
    this.adj = env.adj;
    this.nbr = env.nbr;
    this.ports = env.ports;
  }

  process(b: Batch, q: Uint16Array, n: number): void {
    const u8 = b.u8;
    const adj = this.adj;
    const ourMac = this.ports.ourMac;
    for (let k = 0; k < n; k++) {
      const i = q[k];
      const off = b.off[i];
      const ip = off + ETH_HLEN;
      const a = b.adj[i];
      const kind = adj.kind[a];
      const nb = adj.neighbor[a];
      // TTL and MTU first: a sender learns about them at once, whether or not the next hop answers ARP
      const local = (b.flags[i] & PKT_LOCAL) !== 0;
      if (!local && u8[ip + IP4_TTL] <= 1) {
        this.count(W_TTL);
        this.icmp.send(b, i, ICMP_TIME_EXCEEDED, ICMP_TTL_EXCEEDED, 0);
        continue;
      }
      const mtu = adj.mtu[a];
      const gso = (b.flags[i] & PKT_GSO) !== 0;
      // a GSO super-frame is as big as one of its segments (headers + MSS)
      const tooBig = gso ? gsoSegmentLen(u8, ip, b.gso[i]) > mtu : ip4TotalLen(u8, ip) > mtu;
      if (tooBig && (u8[ip + IP4_FRAG] & (IP4_DF >>> 8)) !== 0) {
        this.count(W_FRAG_NEEDED);
        this.icmp.send(b, i, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu);
        continue;
      }
      if (gso && tooBig) {
        this.drop(b, i, W_GSO_FAILED);
        continue;
      }
      if (kind !== ADJ_LOCAL && !this.nbr.resolved(nb)) {
        this.count(W_UNRESOLVED);
        if (b.trace !== null) b.note(i, this.name, `neighbor ${formatIp4(this.nbr.ip[nb])} unresolved`);
        this.arp.push(i);
        continue;
      }
      if ((b.flags[i] & PKT_SNAT) !== 0) {
        b.flags[i] &= ~PKT_SNAT;
        if (this.snat === null || !this.snat.translate(b, i)) continue; // counted by snat4-in2out
      }
      if (!local) ip4DecTtl(u8, ip);
      const p = adj.port[a];
      b.txPort[i] = p;
      let next: GraphNode | null = this.output;
      if (kind === ADJ_IPIP) next = this.ipipEncap;
      else if (kind === ADJ_VXLAN) next = this.vxlanEncap;
      else {
        if (kind === ADJ_LOCAL) {
          const m = a * 6;
          const am = adj.mac;
          u8[off] = am[m];
          u8[off + 1] = am[m + 1];
          u8[off + 2] = am[m + 2];
          u8[off + 3] = am[m + 3];
          u8[off + 4] = am[m + 4];
          u8[off + 5] = am[m + 5];
        } else {
          // ADJ_DIRECT / ADJ_GATEWAY: the neighbour's MAC
          this.nbr.copyMac(nb, u8, off);
        }
        const pm = p * 6;
        u8[off + 6] = ourMac[pm];
        u8[off + 7] = ourMac[pm + 1];
        u8[off + 8] = ourMac[pm + 2];
        u8[off + 9] = ourMac[pm + 3];
        u8[off + 10] = ourMac[pm + 4];
        u8[off + 11] = ourMac[pm + 5];
        if (b.trace !== null) {
          b.note(
            i,
            this.name,
            `ttl ${u8[ip + IP4_TTL]} ${formatMac(u8, off + ETH_SRC)} -> ${formatMac(u8, off)}`,
          );
        }
      }
      if (next === null) {
        this.drop(b, i, W_NO_ENCAP);
        continue;
      }
      if (gso) {
        // TAPs and the uplink take the super-frame whole (their kernels segment it); a tunnel cannot
        if (kind !== ADJ_IPIP && kind !== ADJ_VXLAN) {
          next.push(i);
          continue;
        }
        const extra = segmentTcp4(b, i, b.gso[i]);
        if (extra < 0) {
          this.drop(b, i, W_GSO_FAILED);
          continue;
        }
        this.count(W_SEGMENTED);
        next.push(i);
        for (let j = b.count - extra; j < b.count; j++) next.push(j);
        continue;
      }
      if (!tooBig) {
        next.push(i);
        continue;
      }
      const extra = fragmentIp4(b, i, mtu, this.scratch);
      if (extra < 0) {
        this.drop(b, i, W_FRAG_FAILED);
        continue;
      }
      this.count(W_FRAGMENTED);
      if (b.trace !== null) b.note(i, this.name, `fragmented into ${extra + 1} for mtu ${mtu}`);
      next.push(i);
      for (let j = b.count - extra; j < b.count; j++) next.push(j);
    }
  }
}
