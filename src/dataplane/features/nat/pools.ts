// natOutgoing's pool rule (felix masq_mgr): which IP pools exist and which of them masquerade. Used by
// snat4-in2out (nodes.ts) for packets whose route is not already flagged as inside a pool. No I/O.

export interface NatPool {
  addr: number;
  mask: number;
  natOutgoing: boolean;
}

/** Pools as the NAT nodes test them: a handful of (addr, mask) pairs, scanned linearly. */
export class PoolSet {
  readonly addr: Uint32Array;
  readonly mask: Uint32Array;
  readonly nat: Uint8Array;
  constructor(pools: NatPool[]) {
    this.addr = Uint32Array.from(pools.map((p) => p.addr >>> 0));
    this.mask = Uint32Array.from(pools.map((p) => p.mask >>> 0));
    this.nat = Uint8Array.from(pools.map((p) => (p.natOutgoing ? 1 : 0)));
  }

  /** index of the pool containing ip, or -1 */
  find(ip: number): number {
    for (let k = 0; k < this.addr.length; k++) if ((ip & this.mask[k]) >>> 0 === this.addr[k]) return k;
    return -1;
  }

  /** Calico's masquerade rule. */
  masquerade(src: number, dst: number): boolean {
    const p = this.find(src);
    return p >= 0 && this.nat[p] === 1 && this.find(dst) < 0;
  }
}
