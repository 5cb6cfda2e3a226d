// Which IP datagrams' first fragments ip4-policy let through, so their later fragments (no L4
// header, nothing to match) follow them, as conntrack's defragmentation would let them. A small
// direct-mapped cache per graph (thread), keyed by source, destination, protocol and IP id (RFC 791
// §3.2: the fields that identify a datagram's fragments); entries older than FRAGMENT_TTL seconds
// are ignored. A first fragment evicts whatever held its slot: a later fragment that finds no entry
// is dropped (reordered or crowded-out fragments are lost, as with any bounded reassembly).

/** Seconds a remembered first fragment vouches for its later fragments (Linux ipfrag_time: 30). */
export const FRAGMENT_TTL = 30;
const SLOTS = 1024;
const WORDS = 5;

export class FragmentCache {
  private readonly e = new Int32Array(SLOTS * WORDS);
  private readonly t = new Float64Array(SLOTS).fill(-Infinity);

  private slot(src: number, dst: number, proto: number, id: number): number {
    let h = Math.imul(src ^ 0x9e3779b9, 0x85ebca6b) ^ dst;
    h = Math.imul(h ^ (h >>> 13) ^ ((proto << 16) | id), 0xc2b2ae35);
    return ((h ^ (h >>> 16)) >>> 0) % SLOTS;
  }

  remember(src: number, dst: number, proto: number, id: number, now: number): void {
    const s = this.slot(src, dst, proto, id);
    const o = s * WORDS;
    this.e[o] = src | 0;
    this.e[o + 1] = dst | 0;
    this.e[o + 2] = proto;
    this.e[o + 3] = id;
    this.e[o + 4] = 1;
    this.t[s] = now;
  }

  has(src: number, dst: number, proto: number, id: number, now: number): boolean {
    const s = this.slot(src, dst, proto, id);
    const o = s * WORDS;
    const e = this.e;
    return (
      e[o + 4] === 1 &&
      e[o] === (src | 0) &&
      e[o + 1] === (dst | 0) &&
      e[o + 2] === proto &&
      e[o + 3] === id &&
      now - this.t[s] <= FRAGMENT_TTL
    );
  }
}
