// Link-layer nodes: ethernet-input (classify frames) and arp-reply (Calico's proxy-ARP trick on
// workload ports, owned addresses and neighbour learning on the uplink). Run by the graph's owner
// thread over the batch's arena; they write replies in place (no new slot).
import { GraphNode, drop, event, type NodeDecl } from '../graph.js';
import type { Batch } from '../packet.js';
import { ownsAddress, type DataplaneEnv } from '../env.js';
import { KIND_HOST, KIND_WORKLOAD } from '../ports.js';
import type { NeighborTable } from '../../tables/neighbor.js';
import { CALICO_GATEWAY_IP, formatIp4, formatMac } from '../../../common/addr.js';
import {
  ETH_HLEN,
  ETH_SRC,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  ETH_ERR_NAMES,
  ETH_OK,
  ethCheck,
  ethType,
  isBroadcast,
  macEq,
} from '../../wire/ethernet.js';
import {
  ARP_OP_REPLY,
  ARP_OP_REQUEST,
  ARP_OK,
  ARP_SHA,
  arpCheck,
  arpIsProbe,
  arpOp,
  arpRewriteToReply,
  arpSpa,
  arpTpa,
} from '../../wire/arp.js';

const E_NOT_FOR_US = 2;
const E_IPV6 = 3;
const E_ETHERTYPE = 4;
const N_IP4 = 0;
const N_ARP = 1;

/** Classifies received frames: IPv4 to ip4-input, ARP to arp-reply, everything else dropped. */
export class EthernetInput extends GraphNode {
  readonly decl: NodeDecl = {
    name: 'ethernet-input',
    next: ['ip4-input', 'arp-reply'],
    // reasons 0..1 mirror the wire module's ethCheck codes 1..2
    reasons: [...ETH_ERR_NAMES.slice(1), 'not-for-us', 'ipv6-unsupported', 'unsupported-ethertype'].map(drop),
  };

  constructor(private readonly env: DataplaneEnv) {
    super();
  }

  override process(b: Batch, q: Uint16Array, n: number): void {
    const u8 = b.u8;
    const ourMac = this.env.ports.ourMac;
    const ip4 = this.next[N_IP4];
    const arp = this.next[N_ARP];
    for (let k = 0; k < n; k++) {
      const i = q[k];
      const off = b.off[i];
      const e = ethCheck(u8, off, b.len[i]);
      if (e !== ETH_OK) {
        this.drop(b, i, e - 1); // reasons 0.. mirror the wire module's ethCheck codes 1..
        continue;
      }
      const type = ethType(u8, off);
      const toUs = macEq(u8, off, ourMac, b.rxPort[i] * 6);
      if (type === ETHERTYPE_IPV4) {
        if (!toUs) {
          this.drop(b, i, E_NOT_FOR_US);
          continue;
        }
        if (b.trace !== null) b.note(i, this.name, `ip4 from ${formatMac(u8, off + ETH_SRC)}`);
        ip4.enter(b, i);
      } else if (type === ETHERTYPE_ARP) {
        if (!toUs && !isBroadcast(u8, off)) {
          this.drop(b, i, E_NOT_FOR_US);
          continue;
        }
        if (b.trace !== null) b.note(i, this.name, `arp from ${formatMac(u8, off + ETH_SRC)}`);
        arp.enter(b, i);
      } else {
        this.drop(b, i, type === ETHERTYPE_IPV6 ? E_IPV6 : E_ETHERTYPE);
      }
    }
  }
}

const A_MALFORMED = 0;
const A_REPLIED = 1;
const A_PROBE = 2;
const A_OWN = 3;
const A_NOT_OURS = 4;
const A_LEARNED = 5;
const A_IGNORED = 6;

/**
 * ARP on workload ports answers every request with ee:ee:ee:ee:ee:ee except for the workload's own
 * addresses (duplicate-address probes and announcements: RFC 5227), and learns nothing. On the host
 * TAP it answers the kernel's requests for 169.254.1.1 (its routes to the pools go through it) and
 * nothing else. On the
 * uplink it answers only for addresses calitap owns there, and updates neighbour entries that the
 * control plane created for next hops (never creates new ones from unsolicited ARP).
 */
export class ArpReply extends GraphNode {
  readonly decl: NodeDecl = {
    name: 'arp-reply',
    next: ['interface-output'],
    reasons: [
      drop('malformed'),
      event('replied'),
      drop('probe-ignored'),
      drop('own-address-ignored'),
      drop('not-ours'),
      event('learned'),
      drop('ignored'),
    ],
  };
  private readonly nbr: NeighborTable;
  private owned: Uint32Array;

  constructor(private readonly env: DataplaneEnv) {
    super();
    this.nbr = env.nbr;
    this.owned = Uint32Array.from(env.params.ownedIps);
  }

  override setParams(env: DataplaneEnv): void {
    this.owned = Uint32Array.from(env.params.ownedIps);
  }

  override process(b: Batch, q: Uint16Array, n: number): void {
    const u8 = b.u8;
    const ports = this.env.ports;
    for (let k = 0; k < n; k++) {
      const i = q[k];
      const off = b.off[i];
      const a = off + ETH_HLEN;
      if (arpCheck(u8, a, b.len[i] - ETH_HLEN) !== ARP_OK) {
        this.drop(b, i, A_MALFORMED);
        continue;
      }
      const p = b.rxPort[i];
      const op = arpOp(u8, a);
      const tpa = arpTpa(u8, a);
      if (ports.kind[p] === KIND_WORKLOAD) {
        if (op !== ARP_OP_REQUEST) {
          this.drop(b, i, A_IGNORED);
          continue;
        }
        if (ports.sourceAllowed(p, tpa)) {
          this.drop(b, i, arpIsProbe(u8, a) ? A_PROBE : A_OWN);
          continue;
        }
        this.reply(b, i, p);
        continue;
      }
      if (ports.kind[p] === KIND_HOST) {
        if (op === ARP_OP_REQUEST && tpa === CALICO_GATEWAY_IP) this.reply(b, i, p);
        else this.drop(b, i, op === ARP_OP_REQUEST ? A_NOT_OURS : A_IGNORED);
        continue;
      }
      // uplink: learn for next hops we already track (ip4-arp's poll then releases what it held for
      // them in this same batch), answer only for what we own
      const spa = arpSpa(u8, a);
      const idx = spa === 0 ? -1 : this.nbr.find(spa);
      if (idx >= 0 && this.nbr.learn(idx, u8, a + ARP_SHA)) {
        this.count(A_LEARNED);
        if (b.trace !== null)
          b.note(i, this.name, `learned ${formatIp4(spa)} is-at ${formatMac(u8, a + ARP_SHA)}`);
      }
      if (op === ARP_OP_REQUEST && ownsAddress(this.owned, tpa)) {
        this.reply(b, i, p);
        continue;
      }
      this.drop(b, i, op === ARP_OP_REPLY ? A_IGNORED : A_NOT_OURS);
    }
  }

  private reply(b: Batch, i: number, p: number): void {
    const off = b.off[i];
    if (b.trace !== null) {
      const a = off + ETH_HLEN;
      const who = formatIp4(arpTpa(b.u8, a));
      const mac = formatMac(this.env.ports.ourMac, p * 6);
      b.note(i, this.name, `who-has ${who} tell ${formatIp4(arpSpa(b.u8, a))}: reply ${who} is-at ${mac}`);
    }
    arpRewriteToReply(b.u8, off, this.env.ports.ourMacOf[p]);
    b.len[i] = ETH_HLEN + 28;
    b.txPort[i] = p;
    this.count(A_REPLIED);
    this.next[0].enter(b, i);
  }
}
