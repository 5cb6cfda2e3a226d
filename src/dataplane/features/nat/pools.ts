// natOutgoing's pool rule (felix masq_mgr): which IP pools exist and which of them masquerade. Used by
// snat4-in2out (nodes.ts) for packets whose route is not already flagged as inside a pool. No I/O.
// Per packet the rule needs "which pool holds the source" and "is the destination in any pool": a
// table over the 65 536 /16 blocks of the address space (128 KiB, built when the pool list changes)
// answers both with one load for every block that no pool or exactly one pool of prefix <= 16
// covers (the usual case); the few blocks that smaller or overlapping pools share are scanned.

export interface NatPool {
  addr: number;
  mask: number;
  natOutgoing: boolean;
}

/** BLOCK entries: no pool meets the /16; the pools must be scanned; else the one pool covering it. */
const BLOCK_NONE = -1;
const BLOCK_SCAN = -2;

/** Pools as the NAT nodes test them: a handful of (addr, mask) pairs, first match wins. */
export class PoolSet {
  readonly addr: Uint32Array;
  readonly mask: Uint32Array;
  readonly nat: Uint8Array;
  /** per /16 block: BLOCK_NONE, BLOCK_SCAN or the index of the only pool meeting it (covering it all) */
  private readonly block = new Int16Array(65536).fill(BLOCK_NONE);
  constructor(pools: NatPool[]) {
    this.addr = Uint32Array.from(pools.map((p) => p.addr >>> 0));
    this.mask = Uint32Array.from(pools.map((p) => p.mask >>> 0));
    this.nat = Uint8Array.from(pools.map((p) => (p.natOutgoing ? 1 : 0)));
    for (let k = 0; k < this.addr.length; k++) {
      const first = this.addr[k] >>> 16;
      const last = (this.addr[k] | ~this.mask[k]) >>> 16;
      const whole = (this.mask[k] & 0xffff) === 0; // prefix <= 16: covers its blocks entirely
      for (let x = first; x <= last; x++) {
        this.block[x] = whole && this.block[x] === BLOCK_NONE ? k : BLOCK_SCAN;
      }
    }
  }

  /** index of the first pool containing ip, or -1 */
  find(ip: number): number {
    const c = this.block[ip >>> 16];
    if (c !== BLOCK_SCAN) return c;
    for (let k = 0; k < this.addr.length; k++) if ((ip & this.mask[k]) >>> 0 === this.addr[k]) return k;
    return -1;
  }

  /** Calico's masquerade rule. */
  masquerade(src: number, dst: number): boolean {
    const p = this.find(src);
    return p >= 0 && this.nat[p] === 1 && this.find(dst) < 0;
  }
}
