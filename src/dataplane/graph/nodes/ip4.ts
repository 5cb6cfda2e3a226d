// IPv4 nodes: ip4-input (validate, sort: for us or to forward), ip4-lookup (FIB) and ip4-rewrite
// (TTL, MTU, link-layer rewrite). Run by the graph owner over the batch arena; the FIB, adjacency and
// neighbour tables are shared read-only here (arp-reply updates neighbour MACs). Features attach on
// the arcs these nodes enter: ip4-unicast (before the lookup), ip4-local (packets for our own
// addresses) and ip4-output (after the rewrite); the core knows none of them.
import { GraphNode, drop, event, type NodeDecl } from '../graph.js';
import { PKT_DECAP, PKT_GSO, PKT_LOCAL, type Batch } from '../packet.js';
import { ownsAddress, type DataplaneEnv } from '../env.js';
import { KIND_HOST, KIND_WORKLOAD } from '../ports.js';
import { unicastKey } from '../arcs.js';
import type { NeighborTable } from '../../tables/neighbor.js';
import { lpmLookup } from '../../tables/lpm.js';
import {
  ADJ_BLACKHOLE,
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
import { icmpErrorArg } from './icmp-error.js';
import { fragmentIp4 } from './fragment.js';
import { segmentTcp4 } from './segment.js';

const N_UNICAST = 0;
const N_LOCAL = 1;
const UNICAST_WORKLOAD = unicastKey(KIND_WORKLOAD);
const UNICAST_HOST = unicastKey(KIND_HOST);

/** Validates IPv4 headers and sorts packets: for this node (arc ip4-local) or to forward (ip4-unicast). */
export class Ip4Input extends GraphNode {
  // reasons 0..7 mirror the wire module's ip4Check codes
  readonly decl: NodeDecl = {
    name: 'ip4-input',
    next: ['arc:ip4-unicast', 'arc:ip4-local'],
    reasons: [
      ...IP4_ERR_NAMES.slice(0, 8),
      'martian-source',
      'martian-destination',
      'not-ours',
      'to-host-unsupported',
      // from the host TAP with a source the host does not own: its kernel forwarded it (calitap has
      // the original from the uplink), or sent it to an address of its own
      'host-forwarded',
    ].map(drop),
  };
  static readonly R_MARTIAN_SRC = 8;
  static readonly R_MARTIAN_DST = 9;
  static readonly R_NOT_OURS = 10;
  static readonly R_TO_HOST = 11;
  static readonly R_HOST_FORWARDED = 12;
  private nodeIp: number;
  private owned: Uint32Array;

  constructor(private readonly env: DataplaneEnv) {
    super();
    this.nodeIp = env.params.nodeIp >>> 0;
    this.owned = Uint32Array.from(env.params.ownedIps);
  }

  override setParams(env: DataplaneEnv): void {
    this.nodeIp = env.params.nodeIp >>> 0;
    this.owned = Uint32Array.from(env.params.ownedIps);
  }

  override process(b: Batch, q: Uint16Array, n: number): void {
    const u8 = b.u8;
    const kind = this.env.ports.kind;
    const unicast = this.keyed[N_UNICAST]!;
    const local = this.next[N_LOCAL];
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
      const forUs = dst === this.nodeIp || ownsAddress(this.owned, dst);
      const rp = b.rxPort[i];
      const rk = kind[rp];
      if (rk === KIND_WORKLOAD) {
        // the node's own addresses belong to the host's kernel: through the host TAP (the FIB has
        // their /32s on it), or nowhere when there is none
        if (forUs && this.env.ports.host < 0) this.drop(b, i, Ip4Input.R_TO_HOST);
        else unicast.enter(b, i, UNICAST_WORKLOAD);
        continue;
      }
      if (rk === KIND_HOST) {
        // the host talks to workloads from its own addresses; nothing from it is for calitap itself
        if (forUs || !this.env.ports.sourceAllowed(rp, src)) this.drop(b, i, Ip4Input.R_HOST_FORWARDED);
        else unicast.enter(b, i, UNICAST_HOST);
        continue;
      }
      if (forUs) {
        // tunnels and NAT replies claim theirs; the rest (BGP, SSH...) is the host kernel's business
        if (!local.enter(b, i)) this.drop(b, i, Ip4Input.R_NOT_OURS);
        continue;
      }
      unicast.enter(b, i, unicastKey(rk));
    }
  }
}

/** Longest-prefix match on the destination; picks the adjacency. */
export class Ip4Lookup extends GraphNode {
  readonly decl: NodeDecl = {
    name: 'ip4-lookup',
    next: ['ip4-rewrite'],
    reasons: [
      drop('no-route'),
      drop('blackhole'),
      drop('not-for-local-workload'),
      // the host TAP only ever gets packets from local workloads (never from the uplink, a tunnel
      // or the host itself)
      drop('host-only-from-workloads'),
    ],
  };
  private readonly tbl24: Uint32Array;
  private readonly adj: AdjacencyTable;

  constructor(private readonly env: DataplaneEnv) {
    super();
    this.tbl24 = env.fib.tbl24;
    this.adj = env.adj;
  }

  override process(b: Batch, q: Uint16Array, n: number): void {
    const u8 = b.u8;
    const kinds = this.adj.kind;
    const ports = this.env.ports;
    const pkind = ports.kind;
    const rewrite = this.next[0];
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
        (b.flags[i] & PKT_LOCAL) === 0 &&
        (pkind[b.rxPort[i]] !== KIND_WORKLOAD || (b.flags[i] & PKT_DECAP) !== 0)
      ) {
        if (kind !== ADJ_LOCAL) {
          this.drop(b, i, 2);
          continue;
        }
        if (pkind[this.adj.port[a]] === KIND_HOST) {
          this.drop(b, i, 3);
          continue;
        }
      }
      b.adj[i] = a;
      if (b.trace !== null) {
        b.note(
          i,
          this.name,
          `adjacency ${a} ${ADJ_KIND_NAMES[kind]} port ${ports.names[this.adj.port[a]]}` +
            (kind === ADJ_LOCAL ? '' : ` next-hop ${formatIp4(this.adj.nextHop[a])}`),
        );
      }
      rewrite.enter(b, i);
    }
  }
}

const W_TTL = 0;
const W_FRAG_NEEDED = 1;
const W_FRAG_FAILED = 2;
const W_UNRESOLVED = 3;
const W_FRAGMENTED = 4;
const W_SEGMENTED = 5;
const W_GSO_FAILED = 6;
const W_NBR_BUSY = 7;
const N_OUTPUT = 0;
const N_ARP = 1;
const N_ICMP = 2;

/** Bytes of one segment of a GSO super-frame: IPv4 and TCP headers plus the segment size. */
function gsoSegmentLen(u8: Uint8Array, ip: number, mss: number): number {
  const l4 = ip + ip4Hlen(u8, ip);
  return l4 - ip + (u8[l4 + 12] >>> 4) * 4 + mss;
}

/**
 * TTL and MTU handling and the link-layer rewrite. Packets whose uplink next hop is not resolved yet
 * go to ip4-arp untouched (it holds them and comes back here when the neighbour answers). A packet
 * larger than the path MTU gets ICMP fragmentation-needed when it has DF, else is fragmented (RFC
 * 791). Everything goes on along arc ip4-output, keyed by adjacency kind (masquerade, encapsulation).
 */
export class Ip4Rewrite extends GraphNode {
  readonly decl: NodeDecl = {
    name: 'ip4-rewrite',
    next: ['arc:ip4-output', 'ip4-arp', 'ip4-icmp-error'],
    reasons: [
      event('ttl-exceeded'),
      event('fragmentation-needed'),
      drop('fragmentation-failed'),
      event('neighbor-unresolved'),
      event('fragmented'),
      event('gso-segmented'),
      drop('gso-segmentation-failed'),
      // the neighbour's MAC was being rewritten for longer than a bounded read (tables/neighbor.ts)
      drop('neighbor-busy'),
    ],
  };
  private readonly adj: AdjacencyTable;
  private readonly nbr: NeighborTable;
  private readonly scratch = new Uint8Array(64);

  constructor(private readonly env: DataplaneEnv) {
    super();
    this.adj = env.adj;
    this.nbr = env.nbr;
  }

  override process(b: Batch, q: Uint16Array, n: number): void {
    const u8 = b.u8;
    const adj = this.adj;
    const ourMac = this.env.ports.ourMac;
    const out = this.keyed[N_OUTPUT]!;
    const arp = this.next[N_ARP];
    const icmp = this.next[N_ICMP];
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
        b.icmp[i] = icmpErrorArg(ICMP_TIME_EXCEEDED, ICMP_TTL_EXCEEDED, 0);
        icmp.enter(b, i);
        continue;
      }
      const mtu = adj.mtu[a];
      const gso = (b.flags[i] & PKT_GSO) !== 0;
      // only TCP super-frames are handed on whole: a tunnel one (IPIP/VXLAN, GRO on the uplink) that
      // was not decapsulated here has no segmenter on any port
      if (gso && u8[ip + 9] !== 6) {
        this.drop(b, i, W_GSO_FAILED);
        continue;
      }
      // a GSO super-frame is as big as one of its segments (headers + MSS)
      const tooBig = gso ? gsoSegmentLen(u8, ip, b.gso[i]) > mtu : ip4TotalLen(u8, ip) > mtu;
      if (tooBig && (u8[ip + IP4_FRAG] & (IP4_DF >>> 8)) !== 0) {
        this.count(W_FRAG_NEEDED);
        b.icmp[i] = icmpErrorArg(ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu);
        icmp.enter(b, i);
        continue;
      }
      if (gso && tooBig) {
        this.drop(b, i, W_GSO_FAILED);
        continue;
      }
      if (kind !== ADJ_LOCAL && !this.nbr.resolved(nb)) {
        this.count(W_UNRESOLVED);
        if (b.trace !== null) b.note(i, this.name, `neighbor ${formatIp4(this.nbr.ip[nb])} unresolved`);
        arp.enter(b, i);
        continue;
      }
      if (!local) ip4DecTtl(u8, ip);
      const p = adj.port[a];
      b.txPort[i] = p;
      // tunnel adjacencies get their outer headers from a feature on ip4-output (keyed by kind)
      const tunnel = kind === ADJ_IPIP || kind === ADJ_VXLAN;
      if (!tunnel) {
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
          if (!this.nbr.copyMac(nb, u8, off)) {
            this.drop(b, i, W_NBR_BUSY);
            continue;
          }
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
      if (gso) {
        // TAPs and the uplink take the super-frame whole (their kernels segment it); a tunnel port
        // takes it whole only when its device segments tunnel super-frames at write time (capability
        // bit set by the live owner; never in replay, which keeps segmenting here, addon-free)
        if (!tunnel || this.env.ports.tunnelGso[p] === 1) {
          out.enter(b, i, kind);
          continue;
        }
        const extra = segmentTcp4(b, i, b.gso[i]);
        if (extra < 0) {
          this.drop(b, i, W_GSO_FAILED);
          continue;
        }
        this.count(W_SEGMENTED);
        out.enter(b, i, kind);
        for (let j = b.count - extra; j < b.count; j++) out.enter(b, j, kind);
        continue;
      }
      if (!tooBig) {
        out.enter(b, i, kind);
        continue;
      }
      const extra = fragmentIp4(b, i, mtu, this.scratch);
      if (extra < 0) {
        this.drop(b, i, W_FRAG_FAILED);
        continue;
      }
      this.count(W_FRAGMENTED);
      if (b.trace !== null) b.note(i, this.name, `fragmented into ${extra + 1} for mtu ${mtu}`);
      out.enter(b, i, kind);
      for (let j = b.count - extra; j < b.count; j++) out.enter(b, j, kind);
    }
  }
}
