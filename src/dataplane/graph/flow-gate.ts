// Flow gates: a feature's "same flow as the previous packet" cache, in a form the graph can test
// without calling the feature. A stateful feature (ip4-policy) that lets a known flow's packets pass
// with no work but a comparison keeps the last such flow in a FlowGate and exposes it as
// GraphNode.gate; ip4-fast (nodes/fast.ts) tests the gate inline for the packet in hand and calls
// the feature's pass() only when the gate does not open. The feature's own pass() starts with the
// same test (flowGatePass), so the condition is written once and both give the same verdict.
//
// Why: ip4-fast's loop is past V8's inlining budget, so a fused feature's pass() there is a real
// call, and the call site that enters the ip4-unicast chain sees a different Next class per rx key
// (and per graph in one thread), which keeps V8 from inlining it; a gate test is a few loads and
// compares that need no call at all. Pure data and one function: no I/O, nothing allocated.
import type { Batch } from './packet.js';

/** the IP word at offset 6 a gate compares: fragment offset and MF (not DF), protocol */
export const GATE_WORD_MASK = 0x3fff00ff;

export class FlowGate {
  /** the flow's addresses (int32 form: `getInt32`), as the packet carries them one way */
  src = 0;
  dst = 0;
  /** its L4 ports word (uint32) from src to dst, and the other way; -1: that way does not pass */
  fwd = -1;
  rev = -1;
  /** the IP word at offset 6 masked with GATE_WORD_MASK (-1: the gate is closed) */
  word = -1;
  /** the smallest IP total length that holds the L4 header the gate reads */
  minLen = 0;
  /** TCP flags (byte 13 of the L4 header) that close the gate for a packet (FIN, RST) */
  flags = 0;
  /** index of the flow entry's control word in `words`, and its value when the gate was set */
  entry = 0;
  ctl = 0;
  /** the clock the gate writes into the entry's last-seen word on a pass (seconds) */
  now = 0;

  constructor(
    /** the gate is open only while live[liveA] or live[liveB] is non-zero (shared control words) */
    readonly live: Int32Array,
    readonly liveA: number,
    readonly liveB: number,
    /** the flow table's words (shared); words[entry + seen] is the entry's last-seen second */
    readonly words: Int32Array,
    readonly seen: number,
  ) {}
}

/**
 * True when the packet (its IPv4 header at `ip`, 20 bytes long: the caller checked; its total
 * length `tot`, addresses src/dst in int32 form, `word` its IP word at offset 6 masked with
 * GATE_WORD_MASK) is of the gate's flow and has nothing for the feature to record: it then
 * refreshes the entry's last-seen word and the feature would pass it. The caller passes what it
 * has already read (ip4-fast has all of it); small on purpose, so that V8 inlines it into ip4-fast's
 * loop and into the feature's pass: no call, whole-word compares. The checks:
 *   - the feature is on (a control word) and the packet holds the L4 header the gate reads;
 *   - not a fragment, the gate's protocol, addresses and ports one way or the other;
 *   - no TCP flag the feature must see (the byte is read whatever the protocol: flags is 0 for UDP);
 *   - the flow entry's control word has not moved since (no expiry or reuse). A plain load: an
 *     aligned Int32 element of a SharedArrayBuffer never tears, and nothing read after it depends on
 *     its ordering (Atomics.load is a builtin call in Node 20's V8, about 6 ns).
 */
export function flowGatePass(
  g: FlowGate,
  b: Batch,
  ip: number,
  tot: number,
  word: number,
  src: number,
  dst: number,
): boolean {
  const words = g.words;
  const e = g.entry;
  if (word === g.word && tot >= g.minLen) {
    const ports = b.dv.getUint32(ip + 20);
    if (
      ((src === g.src && dst === g.dst && ports === g.fwd) ||
        (src === g.dst && dst === g.src && ports === g.rev)) &&
      (b.u8[ip + 33] & g.flags) === 0 &&
      words[e] === g.ctl &&
      (g.live[g.liveA] | g.live[g.liveB]) !== 0
    ) {
      const s = e + g.seen;
      if (words[s] !== g.now) words[s] = g.now;
      return true;
    }
  }
  return false;
}
