// The port table: what the graph knows about each port (uplink, workload TAP, or the host TAP).
//
// Built by the control side when the configuration (or the set of attached workloads) changes and
// handed to the graph whole; the graph reads only its typed arrays on the hot path. Port 0 is always
// the uplink. A workload port's "our MAC" is Calico's ee:ee:ee:ee:ee:ee; its peer MAC is the
// workload's own; its allowed sources are the endpoint's ipNetworks (anti-spoofing). The host port
// (at most one: the TAP facing the kernel of the namespace calitap runs in, `calitap-host0`) has
// ee:ee:ee:ee:ee:ee too, the TAP's kernel-side MAC as peer, and the host's own addresses as its
// allowed sources (anything else the kernel sends there was forwarded by it, not originated).
import { type Prefix4, maskOf, parseMac, CALICO_HOST_MAC } from '../../common/addr.js';

export const PORT_UPLINK = 0;
export const KIND_UPLINK = 0;
export const KIND_WORKLOAD = 1;
/** the host-facing TAP (host <-> workload traffic); arc ip4-unicast key 2 */
export const KIND_HOST = 2;
/** an unused port slot (the live daemon keeps port indices stable while workloads come and go) */
export const KIND_NONE = 255;
/** port slots a live dataplane provides for (uplink + workloads) */
export const MAX_PORTS = 1024;

export interface PortSpec {
  name: string;
  kind: 'uplink' | 'workload' | 'host';
  /** our MAC on this port (uplink: the uplink's MAC; workload, host: ee:ee:ee:ee:ee:ee by default) */
  mac?: string;
  /** the workload's MAC (workload ports); the TAP's kernel-side MAC (host port) */
  peerMac?: string;
  mtu?: number;
  /** workload addresses (anti-spoofing, ARP duplicate-address probes); host port: the host's addresses */
  ips?: Prefix4[];
}

export class PortTable {
  readonly count: number;
  readonly names: string[];
  readonly kind: Uint8Array;
  /** 6 bytes per port */
  readonly ourMac: Uint8Array;
  readonly peerMac: Uint8Array;
  /** per-port 6-byte views of ourMac (for emit helpers that take a MAC array) */
  readonly ourMacOf: Uint8Array[];
  readonly mtu: Uint16Array;
  /** allowed source prefixes of port p: entries srcStart[p] .. srcStart[p] + srcCount[p] */
  readonly srcAddr: Uint32Array;
  readonly srcMask: Uint32Array;
  readonly srcStart: Uint32Array;
  readonly srcCount: Uint32Array;
  /**
   * Capability bits set by the live owner from each port's device (DeviceCaps.tunnelGso), 0 in
   * replay: 1 = the port takes a tunnel TCP super-frame whole (outer header written once, PKT_GSO
   * kept) and segments it at write time, so ip4-rewrite does not segment in the graph.
   */
  readonly tunnelGso: Uint8Array;
  /** the host port's index, or -1 when there is none (replay, `--no-host-interface`) */
  readonly host: number;
  private readonly byName = new Map<string, number>();

  constructor(readonly specs: (PortSpec | null)[]) {
    if (specs.length === 0 || specs[0]?.kind !== 'uplink') throw new Error('port 0 must be the uplink');
    const n = specs.length;
    this.count = n;
    this.names = specs.map((s, p) => s?.name ?? `unused${p}`);
    this.kind = new Uint8Array(n);
    this.ourMac = new Uint8Array(n * 6);
    this.peerMac = new Uint8Array(n * 6);
    this.mtu = new Uint16Array(n);
    this.srcStart = new Uint32Array(n);
    this.srcCount = new Uint32Array(n);
    this.tunnelGso = new Uint8Array(n);
    const total = specs.reduce((a, s) => a + (s?.ips?.length ?? 0), 0);
    this.srcAddr = new Uint32Array(total);
    this.srcMask = new Uint32Array(total);
    let k = 0;
    let host = -1;
    specs.forEach((s, p) => {
      if (s === null) {
        this.kind[p] = KIND_NONE;
        this.srcStart[p] = k;
        return;
      }
      if (this.byName.has(s.name)) throw new Error(`duplicate port name ${s.name}`);
      this.byName.set(s.name, p);
      this.kind[p] = s.kind === 'uplink' ? KIND_UPLINK : s.kind === 'host' ? KIND_HOST : KIND_WORKLOAD;
      if (s.kind === 'host') {
        if (host >= 0) throw new Error(`port ${s.name}: a second host port (${this.names[host]} is one)`);
        host = p;
      }
      const our = parseMac(s.mac ?? (s.kind === 'uplink' ? '00:00:00:00:00:00' : CALICO_HOST_MAC));
      if (!our) throw new Error(`port ${s.name}: bad MAC ${s.mac}`);
      this.ourMac.set(our, p * 6);
      if (s.peerMac !== undefined) {
        const peer = parseMac(s.peerMac);
        if (!peer) throw new Error(`port ${s.name}: bad peer MAC ${s.peerMac}`);
        this.peerMac.set(peer, p * 6);
      }
      this.mtu[p] = s.mtu ?? 1500;
      this.srcStart[p] = k;
      for (const ip of s.ips ?? []) {
        this.srcMask[k] = maskOf(ip.len);
        this.srcAddr[k] = (ip.addr & this.srcMask[k]) >>> 0;
        k++;
      }
      this.srcCount[p] = k - this.srcStart[p];
    });
    this.host = host;
    this.ourMacOf = specs.map((_, p) => this.ourMac.subarray(p * 6, p * 6 + 6));
  }

  index(name: string): number | undefined {
    return this.byName.get(name);
  }

  /** Anti-spoofing: is `ip` one of port p's own addresses? */
  sourceAllowed(p: number, ip: number): boolean {
    const end = this.srcStart[p] + this.srcCount[p];
    for (let k = this.srcStart[p]; k < end; k++) {
      if ((ip & this.srcMask[k]) >>> 0 === this.srcAddr[k]) return true;
    }
    return false;
  }
}
