// Encapsulation features: ipip4-encap, vxlan4-encap on arc ip4-output for IPIP / VXLAN adjacencies
// (after ip4-rewrite has done TTL and MTU, after masquerade) and ipip4-input, vxlan4-input on arc
// ip4-local (decapsulation of tunnel packets addressed to our node IP).
//
// Encapsulation writes the outer headers into the slot's headroom in front of the frame, in place:
// the inner IPv4 packet never moves. Decapsulation moves only the frame start forward. The tunnel
// peers allowed to send to us are the cluster's node IPs; the inner packet then goes through
// ip4-input again (marked PKT_DECAP, so it can only be delivered to a local workload).
import { GraphNode, drop, event, type NodeDecl } from '../../graph/graph.js';
import { PKT_DECAP, PKT_GSO, type Batch } from '../../graph/packet.js';
import type { DataplaneEnv } from '../../graph/env.js';
import type { GraphFeature } from '../../graph/build.js';
import { ARC_IP4_LOCAL, ARC_IP4_OUTPUT } from '../../graph/arcs.js';
import { ADJ_IPIP, ADJ_VXLAN, type AdjacencyTable } from '../../tables/adjacency.js';
import type { NeighborTable } from '../../tables/neighbor.js';
import { PORT_UPLINK } from '../../graph/ports.js';
import { formatIp4 } from '../../../common/addr.js';
import { ETH_HLEN, ETHERTYPE_IPV4, macEq } from '../../wire/ethernet.js';
import {
  IP4_DF,
  IP4_FRAG,
  IP4_PROTO,
  IP4_TOS,
  IPPROTO_IPIP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  emitIp4Header,
  ip4Dst,
  ip4Hlen,
  ip4IsFragment,
  ip4Src,
  ip4TotalLen,
} from '../../wire/ipv4.js';
import { emitUdpHeader, UDP_HLEN } from '../../wire/udp.js';
import { IPIP_OVERHEAD, emitIpipOuter } from '../../wire/ipip.js';
import {
  VXLAN_HLEN,
  VXLAN_OK,
  emitVxlanHeader,
  vxlanCheck,
  vxlanSourcePort,
  vxlanVni,
} from '../../wire/vxlan.js';

/** Writes the outer Ethernet header at `off`: to the link next hop's MAC, from our uplink MAC. */
function outerEthernet(b: Batch, off: number, nbr: NeighborTable, nb: number, ourMac: Uint8Array): boolean {
  const u8 = b.u8;
  if (!nbr.copyMac(nb, u8, off)) return false;
  for (let k = 0; k < 6; k++) u8[off + 6 + k] = ourMac[k];
  u8[off + 12] = ETHERTYPE_IPV4 >>> 8;
  u8[off + 13] = ETHERTYPE_IPV4 & 255;
  return true;
}

/** A sorted set of node IPs (binary search: no hashing, no allocation). */
function peerSet(ips: number[]): Uint32Array {
  return Uint32Array.from(new Set(ips.map((x) => x >>> 0))).sort();
}

function hasPeer(set: Uint32Array, ip: number): boolean {
  let lo = 0;
  let hi = set.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = set[mid];
    if (v === ip) return true;
    if (v < ip) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}

/**
 * The length an outer header field carries for packet i (`len` bytes after an outer IPv4 header of
 * `outerIp` bytes). A TCP super-frame (PKT_GSO) reaches an encap node only when its tunnel port
 * segments tunnel super-frames at write time (ports.tunnelGso: the outer header is written once here,
 * PKT_GSO kept, and the device rewrites lengths, ids and checksums per segment): its fields only have
 * to stay within 16 bits.
 */
function gsoLen(b: Batch, i: number, len: number, outerIp: number): number {
  return (b.flags[i] & PKT_GSO) !== 0 ? Math.min(len, 0xffff - outerIp) : len;
}

const E_HEADROOM = 0;

const E_NBR_BUSY = 2;
/** neighbor-busy: the next hop's MAC was being rewritten for longer than a bounded read */
const ENCAP_REASONS = [drop('no-headroom'), event('encapsulated'), drop('neighbor-busy')];

abstract class EncapBase extends GraphNode {
  protected readonly adj: AdjacencyTable;
  protected readonly nbr: NeighborTable;
  protected nodeIp: number;
  /** outer IPv4 identification counter (per graph owner) */
  protected ipId = 1;

  constructor(protected readonly env: DataplaneEnv) {
    super();
    this.adj = env.adj;
    this.nbr = env.nbr;
    this.nodeIp = env.params.nodeIp >>> 0;
  }

  override setParams(env: DataplaneEnv): void {
    this.nodeIp = env.params.nodeIp >>> 0;
  }
}

/** IPIP (protocol 4) toward the adjacency's node; outer TTL 64, DF and TOS copied from the inner. */
export class Ipip4Encap extends EncapBase {
  readonly decl: NodeDecl = {
    name: 'ipip4-encap',
    arc: { name: ARC_IP4_OUTPUT, keys: [ADJ_IPIP], after: ['snat4-in2out'] },
    reasons: ENCAP_REASONS,
  };

  override pass(b: Batch, i: number): boolean {
    const u8 = b.u8;
    const off = b.off[i];
    const inner = off + ETH_HLEN;
    const start = off - IPIP_OVERHEAD;
    if (start < b.slotStart(i)) {
      this.drop(b, i, E_HEADROOM);
      return false;
    }
    const a = b.adj[i];
    const innerLen = ip4TotalLen(u8, inner);
    const df = (u8[inner + IP4_FRAG] & (IP4_DF >>> 8)) !== 0;
    this.ipId = (this.ipId + 1) & 0xffff;
    emitIpipOuter(
      u8,
      start + ETH_HLEN,
      this.nodeIp,
      this.adj.nextHop[a],
      gsoLen(b, i, innerLen, 20),
      df,
      u8[inner + IP4_TOS],
      this.ipId,
    );
    if (!outerEthernet(b, start, this.nbr, this.adj.neighbor[a], this.env.ports.ourMacOf[PORT_UPLINK])) {
      this.drop(b, i, E_NBR_BUSY);
      return false;
    }
    b.off[i] = start;
    b.len[i] = ETH_HLEN + IPIP_OVERHEAD + innerLen;
    b.txPort[i] = PORT_UPLINK;
    this.count(1);
    if (b.trace !== null)
      b.note(i, this.name, `ipip ${formatIp4(this.nodeIp)} -> ${formatIp4(this.adj.nextHop[a])}`);
    return true;
  }
}

/**
 * VXLAN toward the adjacency's node: inner Ethernet from our VTEP MAC to the remote VTEP MAC, UDP to
 * vxlanPort from a per-flow hashed source port, checksum 0, VNI from FelixConfiguration.
 */
export class Vxlan4Encap extends EncapBase {
  readonly decl: NodeDecl = {
    name: 'vxlan4-encap',
    arc: { name: ARC_IP4_OUTPUT, keys: [ADJ_VXLAN], after: ['snat4-in2out'] },
    reasons: ENCAP_REASONS,
  };
  private vtepMac: Uint8Array;
  private port: number;
  private vni: number;

  constructor(env: DataplaneEnv) {
    super(env);
    this.vtepMac = env.params.vtepMac;
    this.port = env.params.vxlanPort;
    this.vni = env.params.vxlanVni;
  }

  override setParams(env: DataplaneEnv): void {
    super.setParams(env);
    this.vtepMac = env.params.vtepMac;
    this.port = env.params.vxlanPort;
    this.vni = env.params.vxlanVni;
  }

  override pass(b: Batch, i: number): boolean {
    const u8 = b.u8;
    const am = this.adj.mac;
    const vtep = this.vtepMac;
    const off = b.off[i];
    const start = off - (ETH_HLEN + 20 + UDP_HLEN + VXLAN_HLEN);
    if (start < b.slotStart(i)) {
      this.drop(b, i, E_HEADROOM);
      return false;
    }
    const a = b.adj[i];
    const inner = off + ETH_HLEN;
    const innerIpLen = ip4TotalLen(u8, inner);
    // inner Ethernet: where the old frame's Ethernet header was
    const m = a * 6;
    for (let x = 0; x < 6; x++) {
      u8[off + x] = am[m + x];
      u8[off + 6 + x] = vtep[x];
    }
    // per-flow source port from the inner 5-tuple (ports only for unfragmented TCP/UDP)
    const proto = u8[inner + IP4_PROTO];
    let ports = 0;
    if ((proto === IPPROTO_TCP || proto === IPPROTO_UDP) && !ip4IsFragment(u8, inner)) {
      const l4 = inner + ip4Hlen(u8, inner);
      ports = ((u8[l4] << 24) | (u8[l4 + 1] << 16) | (u8[l4 + 2] << 8) | u8[l4 + 3]) >>> 0;
    }
    const sport = vxlanSourcePort(ip4Src(u8, inner), ip4Dst(u8, inner), proto, ports);
    const udpLen = UDP_HLEN + VXLAN_HLEN + ETH_HLEN + innerIpLen;
    const ipOff = start + ETH_HLEN;
    const udpOff = ipOff + 20;
    emitVxlanHeader(u8, udpOff + UDP_HLEN, this.vni);
    const wireUdpLen = gsoLen(b, i, udpLen, 20);
    emitUdpHeader(u8, udpOff, sport, this.port, wireUdpLen, 0);
    const df = (u8[inner + IP4_FRAG] & (IP4_DF >>> 8)) !== 0;
    this.ipId = (this.ipId + 1) & 0xffff;
    const flags = df ? IP4_DF : 0;
    emitIp4Header(
      u8,
      ipOff,
      this.nodeIp,
      this.adj.nextHop[a],
      IPPROTO_UDP,
      20 + wireUdpLen,
      64,
      this.ipId,
      flags,
      u8[inner + IP4_TOS],
    );
    if (!outerEthernet(b, start, this.nbr, this.adj.neighbor[a], this.env.ports.ourMacOf[PORT_UPLINK])) {
      this.drop(b, i, E_NBR_BUSY);
      return false;
    }
    b.off[i] = start;
    b.len[i] = ETH_HLEN + 20 + udpLen;
    b.txPort[i] = PORT_UPLINK;
    this.count(1);
    if (b.trace !== null) {
      b.note(
        i,
        this.name,
        `vxlan vni ${this.vni} ${formatIp4(this.nodeIp)}:${sport} -> ${formatIp4(this.adj.nextHop[a])}:${this.port}`,
      );
    }
    return true;
  }
}

const D_UNKNOWN_PEER = 0;
const D_FRAGMENT = 1;
const D_SHORT = 2;
const D_DECAP = 3;

/**
 * What both decapsulation nodes check first: the outer packet comes from a known node and is not a
 * fragment (calitap does not reassemble). Reasons 0 and 1 of both nodes are these two drops.
 */
abstract class DecapBase extends GraphNode {
  private peers: Uint32Array;
  protected nodeIp: number;

  constructor(env: DataplaneEnv) {
    super();
    this.peers = peerSet(env.params.tunnelPeers);
    this.nodeIp = env.params.nodeIp >>> 0;
  }

  /** New tunnel peers (a node joined or left): packets from others are dropped from the next batch on. */
  override setParams(env: DataplaneEnv): void {
    this.peers = peerSet(env.params.tunnelPeers);
    this.nodeIp = env.params.nodeIp >>> 0;
  }

  /** Is packet i (IPv4 header at ip) a tunnel packet of protocol proto to our node IP, not yet decapsulated? */
  protected mine(b: Batch, i: number, ip: number, proto: number): boolean {
    return (
      (b.flags[i] & PKT_DECAP) === 0 && b.u8[ip + IP4_PROTO] === proto && ip4Dst(b.u8, ip) === this.nodeIp
    );
  }

  /** True when the outer header at ip may be decapsulated; otherwise packet i is dropped and counted. */
  protected outerOk(b: Batch, i: number, ip: number): boolean {
    if (!hasPeer(this.peers, ip4Src(b.u8, ip))) {
      this.drop(b, i, D_UNKNOWN_PEER);
      return false;
    }
    if (ip4IsFragment(b.u8, ip)) {
      this.drop(b, i, D_FRAGMENT);
      return false;
    }
    return true;
  }
}

/** ipip4-input: strips the outer header of IPIP from a known node; the inner goes to ip4-input. */
export class Ipip4Input extends DecapBase {
  readonly decl: NodeDecl = {
    name: 'ipip4-input',
    arc: { name: ARC_IP4_LOCAL },
    next: ['ip4-input'],
    reasons: [drop('unknown-peer'), drop('fragmented-outer'), drop('short'), event('decapsulated')],
  };

  /** Claims IPIP to our node IP (false: taken, decapsulated or dropped); passes anything else. */
  override pass(b: Batch, i: number): boolean {
    const u8 = b.u8;
    const off = b.off[i];
    const ip = off + ETH_HLEN;
    if (!this.mine(b, i, ip, IPPROTO_IPIP)) return true;
    if (!this.outerOk(b, i, ip)) return false;
    const inner = ip + ip4Hlen(u8, ip);
    const end = off + b.len[i];
    if (inner + 20 > end) {
      this.drop(b, i, D_SHORT);
      return false;
    }
    if (b.trace !== null) b.note(i, this.name, `from ${formatIp4(ip4Src(u8, ip))}`);
    // move the Ethernet header up to sit in front of the inner packet (overwrites the outer header)
    u8.copyWithin(inner - ETH_HLEN, off, off + ETH_HLEN);
    b.off[i] = inner - ETH_HLEN;
    b.len[i] = end - (inner - ETH_HLEN);
    b.flags[i] |= PKT_DECAP;
    this.count(D_DECAP);
    this.next[0].enter(b, i);
    return false;
  }
}

const V_SHORT = 2;
const V_FLAGS = 3;
const V_VNI = 4;
const V_NOT_VTEP = 5;
const V_NOT_IP4 = 6;
const V_DECAP = 7;

/** vxlan4-input: checks VNI and inner destination (our VTEP MAC), strips to the inner frame. */
export class Vxlan4Input extends DecapBase {
  readonly decl: NodeDecl = {
    name: 'vxlan4-input',
    arc: { name: ARC_IP4_LOCAL },
    next: ['ip4-input'],
    reasons: [
      ...[
        'unknown-peer',
        'fragmented-outer',
        'short',
        'bad-flags',
        'wrong-vni',
        'not-our-vtep',
        'inner-not-ipv4',
      ].map(drop),
      event('decapsulated'),
    ],
  };
  private vni: number;
  private vtepMac: Uint8Array;
  private port: number;

  constructor(env: DataplaneEnv) {
    super(env);
    this.vni = env.params.vxlanVni;
    this.vtepMac = env.params.vtepMac;
    this.port = env.params.vxlanPort;
  }

  override setParams(env: DataplaneEnv): void {
    super.setParams(env);
    this.vni = env.params.vxlanVni;
    this.vtepMac = env.params.vtepMac;
    this.port = env.params.vxlanPort;
  }

  /** Claims UDP to our node IP's vxlanPort (false: taken, decapsulated or dropped); passes anything else. */
  override pass(b: Batch, i: number): boolean {
    const u8 = b.u8;
    const off = b.off[i];
    const ip = off + ETH_HLEN;
    if (!this.mine(b, i, ip, IPPROTO_UDP)) return true;
    const udp = ip + ip4Hlen(u8, ip);
    if (((u8[udp + 2] << 8) | u8[udp + 3]) !== this.port) return true;
    if (!this.outerOk(b, i, ip)) return false;
    const vx = udp + UDP_HLEN;
    const innerEth = vx + VXLAN_HLEN;
    const end = off + b.len[i];
    if (innerEth + ETH_HLEN + 20 > end) {
      this.drop(b, i, V_SHORT);
      return false;
    }
    if (vxlanCheck(u8, vx, end - vx) !== VXLAN_OK) {
      this.drop(b, i, V_FLAGS);
      return false;
    }
    if (vxlanVni(u8, vx) !== this.vni) {
      this.drop(b, i, V_VNI);
      return false;
    }
    if (!macEq(u8, innerEth, this.vtepMac)) {
      this.drop(b, i, V_NOT_VTEP);
      return false;
    }
    if (((u8[innerEth + 12] << 8) | u8[innerEth + 13]) !== ETHERTYPE_IPV4) {
      this.drop(b, i, V_NOT_IP4);
      return false;
    }
    b.off[i] = innerEth;
    b.len[i] = end - innerEth;
    b.flags[i] |= PKT_DECAP;
    this.count(V_DECAP);
    if (b.trace !== null) b.note(i, this.name, `vni ${this.vni} from ${formatIp4(ip4Src(u8, ip))}`);
    this.next[0].enter(b, i);
    return false;
  }
}

/** IPIP and VXLAN, both ways (always present: nothing visits them unless a route or packet needs them). */
export const encapFeature: GraphFeature = (env) => [
  new Ipip4Input(env),
  new Vxlan4Input(env),
  new Ipip4Encap(env),
  new Vxlan4Encap(env),
];
