// Port allocation rules of the SNAT table (like Linux's NF_NAT_RANGE_PROTO_RANDOM_FULLY): which nat
// ports exist, which nat ip an inside address uses, and the seeded PRNG that picks where the search for
// a free port starts. The search itself (`NatTable#createOut`) probes the out2in index linearly from
// that start, at most min(portCount, maxPortProbes) ports per nat ip (Linux probes 128), and claims the
// first free (proto, remote ip, remote port, nat ip, port) key with one compare-and-swap of its bucket
// (see table.ts). So one nat port is reused towards different remote endpoints, and a port is only
// exhausted per remote endpoint. ICMP echo uses the identifier as its port and allocates identifiers
// from the same list.
//
// The PRNG state is one shared word advanced with Atomics.add (any thread, no lock): with one thread
// (replay, `--seed`) the sequence, and so every port chosen, is reproducible.
// Pure functions; no memory of their own.

/** murmur3 fmix32. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** The PRNG's increment (the golden ratio): step(state) = state + NAT_PRNG_GAMMA. */
export const NAT_PRNG_GAMMA = 0x9e3779b9 | 0;

/** The port allocator's PRNG (splitmix32-style): state += golden ratio; output = fmix32(state). */
export function natPrngStep(state: number): number {
  return (state + 0x9e3779b9) | 0;
}
export function natPrngOutput(state: number): number {
  return fmix32(state) >>> 0;
}

/** Which of `n` nat ips a given inside address uses. */
export function natIpIndex(srcIp: number, n: number): number {
  return n === 1 ? 0 : (Math.imul(srcIp | 0, 0x9e3779b1) >>> 0) % n;
}

/** The allocatable ports: [portLo, portHi] minus `reserved`, ascending. */
export function allowedPorts(portLo: number, portHi: number, reserved: Iterable<number>): number[] {
  const skip = new Set(reserved);
  const out: number[] = [];
  for (let p = portLo; p <= portHi; p++) if (!skip.has(p)) out.push(p);
  return out;
}
