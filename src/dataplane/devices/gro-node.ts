// The `tcp4-gro` counter node: what receive-side coalescing into TAPs did (devices/gro.ts). No
// packets flow through it; TAP devices count into it when they plan a round's write. One per
// DeviceContext (a worker, or the replay loop, where it stays at zero: replay writes no TAP).
// Who owns the buffers: the counters belong to the thread that owns the DeviceContext, which runs it.
import { GraphNode, event, type NodeDecl } from '../graph/graph.js';

/** segments written inside a super-frame (every member of a coalesced frame, its first included) */
export const GRO_MERGED = 0;
/** super-frames written (coalesced frames of ≥ 2 segments) */
export const GRO_FLUSHED = 1;
/** a TCP segment's checksum did not verify: written as it came (the receiving kernel drops it) */
export const GRO_SKIP_CHECKSUM = 2;
/** the flow's next segment was not the next in sequence (retransmit, reordering) */
export const GRO_SKIP_SEQUENCE = 3;
/** IP/TCP header fields differ (Ethernet, TOS, TTL, DF, IP id, ack, window, options, lengths) */
export const GRO_SKIP_HEADER = 4;
/** flags forbid the merge (SYN, RST, URG, CWR; or not a plain segment: GSO, no payload, IP options) */
export const GRO_SKIP_FLAGS = 5;
/** longer than the super-frame's segment size */
export const GRO_SKIP_SIZE = 6;
/** the super-frame reached 64 KiB or GRO_MAX_SEGS segments */
export const GRO_SKIP_LIMIT = 7;

export class Tcp4GroNode extends GraphNode {
  readonly decl: NodeDecl = {
    name: 'tcp4-gro',
    reasons: [
      event('merged'),
      event('flushed'),
      event('skip-checksum'),
      event('skip-sequence'),
      event('skip-header'),
      event('skip-flags'),
      event('skip-size'),
      event('skip-limit'),
    ],
  };

  /** Adds n to reason r (one of the GRO_* indices above). */
  add(r: number, n: number): void {
    this.c[this.base + r] += n;
  }
}
