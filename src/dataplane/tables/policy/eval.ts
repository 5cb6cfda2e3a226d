// The compiled-policy evaluator: runs an endpoint's rule program (layout.ts) against one packet's
// header fields and returns allow or deny (with the counter of the cause). Called by the ip4-policy
// node for the first packet of a flow only; established flows never get here. Reads one bank of the
// shared PolicyTables; allocates nothing; every loop is bounded by the bank's H_MAX_STEPS, so a bank
// a writer is rewriting under us (see tables.ts) yields V_TORN instead of a spin. One instance per
// graph (thread).
import {
  ACT_ALLOW,
  ACT_DENY,
  ACT_LOG,
  ACT_PASS,
  DIR_EGRESS,
  DIR_INGRESS,
  EPF_LOCAL,
  EP_FLAGS,
  EP_NPORTS,
  EP_PORTS,
  EP_PROG,
  EP_WORDS,
  F_ICMP,
  F_NETS,
  F_NOT_ICMP,
  F_NOT_PROTO,
  F_PORTS,
  F_PROTO,
  F_SET,
  H_EP_COUNT,
  H_EP_TABLE,
  H_HASH,
  H_HASH_MASK,
  H_MAX_STEPS,
  H_NETS,
  H_NETS_COUNT,
  H_ROWS,
  H_ROW_WORDS,
  ICMP_HAS_CODE,
  RULE_WORDS,
  R_ACTION,
  R_FLAGS,
  R_ICMP,
  R_NETS,
  R_NOT_ICMP,
  R_NOT_PROTO,
  R_PORTS,
  R_PROTO,
  R_SETS,
  SIDE_DST,
  SIDE_DST_NOT,
  SIDE_SRC,
  SIDE_SRC_NOT,
  TIER_PASS,
} from './layout.js';

export const V_ALLOW = 1;
export const V_DENY = 2;
/** the bank changed under the evaluation (a writer is publishing): try again */
export const V_TORN = 3;
/** neither address is a local workload: policy has no say */
export const V_NOT_OURS = 4;
/** received on a workload port, but the sender is no local endpoint the tables know */
export const V_NO_ENDPOINT = 5;

/** What the evaluator looks at: filled by the node per packet (one reusable object, no garbage). */
export class PolicyPacket {
  proto = 0;
  src = 0;
  dst = 0;
  /** L4 ports for TCP/UDP/SCTP, else 0 */
  sport = 0;
  dport = 0;
  /** ICMP type and code, or -1 */
  icmpType = -1;
  icmpCode = -1;
}

/** Receives Log-action hits (the node rate-limits and records them). */
export interface PolicyLogSink {
  logHit(counter: number, pk: PolicyPacket): void;
}

/** Probes of the IP hash before giving up (only a torn bank gets near it). */
const MAX_PROBES = 4096;

/** The Murmur3 finalizer: spreads an IPv4 address over the hash's bits. */
export function hashIp(ip: number): number {
  let h = ip | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class PolicyEval {
  /** after V_DENY: the deny counter of the cause (policy, end of tier, profile, no profile) */
  counter = 0;
  private steps = 0;
  private maxSteps = 0;

  constructor(private readonly sink: PolicyLogSink) {}

  /** The endpoint slot owning ip (exact /32 first, then the widest-last network list), or -1. */
  endpoint(w: Int32Array, ip: number): number {
    const mask = w[H_HASH_MASK];
    const base = w[H_HASH];
    const key = ip | 0;
    let h = hashIp(key) & mask;
    // the hash is at most half full (image.ts): probes are short; the bound only guards torn reads
    for (let k = 0; k <= mask && k < MAX_PROBES; k++) {
      const o = base + 2 * h;
      const s = w[o + 1];
      if (s === -1) break;
      if (w[o] === key) return s | 0;
      h = (h + 1) & mask;
    }
    const nets = w[H_NETS];
    const n = w[H_NETS_COUNT];
    for (let k = 0; k < n && k < 65536; k++) {
      const o = nets + 3 * k;
      if ((key & w[o + 1]) === w[o]) return w[o + 2] | 0;
    }
    return -1;
  }

  /**
   * The verdict for a packet that opens a flow, on bank w: the egress program of its source when
   * that is a local workload and the packet came in on its port (`fromWorkload`), then the ingress
   * program of its destination when that is a local workload. V_ALLOW / V_DENY (this.counter) /
   * V_NOT_OURS / V_NO_ENDPOINT / V_TORN. `opening` false: V_ALLOW is reported as V_NOT_OURS's
   * opposite without running programs (the caller only wants to know whether policy applies).
   */
  decide(w: Int32Array, pk: PolicyPacket, fromWorkload: boolean, run: boolean): number {
    const srcEp = this.endpoint(w, pk.src);
    const dstEp = this.endpoint(w, pk.dst);
    const srcLocal = fromWorkload && this.isLocal(w, srcEp);
    const dstLocal = this.isLocal(w, dstEp);
    if (fromWorkload && !srcLocal) return V_NO_ENDPOINT;
    if (!srcLocal && !dstLocal) return V_NOT_OURS;
    if (!run) return V_ALLOW;
    let v = srcLocal ? this.run(w, this.programOf(w, srcEp, DIR_EGRESS), pk, srcEp, dstEp) : V_ALLOW;
    if (v === V_ALLOW && dstLocal) v = this.run(w, this.programOf(w, dstEp, DIR_INGRESS), pk, srcEp, dstEp);
    return v;
  }

  /** Is endpoint slot ep local (has programs on this node)? */
  isLocal(w: Int32Array, ep: number): boolean {
    return ep >= 0 && ep < w[H_EP_COUNT] && (w[w[H_EP_TABLE] + ep * EP_WORDS + EP_FLAGS] & EPF_LOCAL) !== 0;
  }

  /** Offset of the program of local endpoint ep in direction dir (DIR_*), or -1. */
  programOf(w: Int32Array, ep: number, dir: number): number {
    return w[w[H_EP_TABLE] + ep * EP_WORDS + EP_PROG + dir];
  }

  /**
   * Runs program `prog` for the packet; srcEp / dstEp are the endpoint slots of its addresses (-1:
   * not an endpoint). Returns V_ALLOW, V_DENY (this.counter = cause) or V_TORN.
   */
  run(w: Int32Array, prog: number, pk: PolicyPacket, srcEp: number, dstEp: number): number {
    this.steps = 0;
    this.maxSteps = w[H_MAX_STEPS];
    if (prog < 0) return V_TORN;
    let o = prog;
    const nTiers = w[o++];
    for (let t = 0; t < nTiers; t++) {
      if (++this.steps > this.maxSteps) return V_TORN;
      const action = w[o];
      const endCounter = w[o + 1];
      const nPol = w[o + 2];
      o += 3;
      const next = o + 2 * nPol;
      let passed = false;
      for (let p = 0; p < nPol; p++) {
        if (++this.steps > this.maxSteps) return V_TORN;
        const r = this.block(w, w[o + 2 * p], w[o + 2 * p + 1], pk, srcEp, dstEp);
        if (r === 0) continue;
        if (r === ACT_ALLOW) return V_ALLOW;
        if (r === ACT_DENY) {
          this.counter = w[o + 2 * p + 1];
          return V_DENY;
        }
        if (r === ACT_PASS) {
          passed = true;
          break;
        }
        return V_TORN;
      }
      o = next;
      if (!passed && action !== TIER_PASS) {
        this.counter = endCounter;
        return V_DENY;
      }
    }
    // profiles: reached when no tier applied, or every applying tier passed the packet on
    const nProf = w[o++];
    for (let p = 0; p < nProf; p++) {
      if (++this.steps > this.maxSteps) return V_TORN;
      const r = this.block(w, w[o + 2 * p], w[o + 2 * p + 1], pk, srcEp, dstEp);
      if (r === ACT_ALLOW) return V_ALLOW;
      if (r === ACT_DENY) {
        this.counter = w[o + 2 * p + 1];
        return V_DENY;
      }
      if (r < 0) return V_TORN;
      // Pass or no match: the next profile
    }
    this.counter = w[o + 2 * nProf];
    return this.steps > this.maxSteps ? V_TORN : V_DENY;
  }

  /** First rule of the block that matches: ACT_ALLOW / ACT_DENY / ACT_PASS, 0 (none), -1 (torn). */
  private block(
    w: Int32Array,
    blk: number,
    counter: number,
    pk: PolicyPacket,
    srcEp: number,
    dstEp: number,
  ): number {
    const n = w[blk];
    let r = blk + 1;
    for (let k = 0; k < n; k++, r += RULE_WORDS) {
      if (++this.steps > this.maxSteps) return -1;
      if (!this.rule(w, blk, r, pk, srcEp, dstEp)) continue;
      const a = w[r + R_ACTION];
      if (a === ACT_LOG) {
        this.sink.logHit(counter, pk);
        continue;
      }
      return a;
    }
    return 0;
  }

  private rule(
    w: Int32Array,
    blk: number,
    r: number,
    pk: PolicyPacket,
    srcEp: number,
    dstEp: number,
  ): boolean {
    const f = w[r + R_FLAGS];
    if (f === 0) return true;
    if ((f & F_PROTO) !== 0 && pk.proto !== w[r + R_PROTO]) return false;
    if ((f & F_NOT_PROTO) !== 0 && pk.proto === w[r + R_NOT_PROTO]) return false;
    if ((f & F_ICMP) !== 0 && !icmpMatch(w[r + R_ICMP], pk)) return false;
    if ((f & F_NOT_ICMP) !== 0 && icmpMatch(w[r + R_NOT_ICMP], pk)) return false;
    if ((f & (F_NETS * 15)) !== 0) {
      if ((f & (F_NETS << SIDE_SRC)) !== 0 && !this.inNets(w, blk, r, SIDE_SRC, pk.src)) return false;
      if ((f & (F_NETS << SIDE_SRC_NOT)) !== 0 && this.inNets(w, blk, r, SIDE_SRC_NOT, pk.src)) return false;
      if ((f & (F_NETS << SIDE_DST)) !== 0 && !this.inNets(w, blk, r, SIDE_DST, pk.dst)) return false;
      if ((f & (F_NETS << SIDE_DST_NOT)) !== 0 && this.inNets(w, blk, r, SIDE_DST_NOT, pk.dst)) return false;
    }
    if ((f & (F_SET * 15)) !== 0) {
      if ((f & (F_SET << SIDE_SRC)) !== 0 && !inSet(w, srcEp, w[r + R_SETS + SIDE_SRC])) return false;
      if ((f & (F_SET << SIDE_SRC_NOT)) !== 0 && inSet(w, srcEp, w[r + R_SETS + SIDE_SRC_NOT])) return false;
      if ((f & (F_SET << SIDE_DST)) !== 0 && !inSet(w, dstEp, w[r + R_SETS + SIDE_DST])) return false;
      if ((f & (F_SET << SIDE_DST_NOT)) !== 0 && inSet(w, dstEp, w[r + R_SETS + SIDE_DST_NOT])) return false;
    }
    if ((f & (F_PORTS * 15)) !== 0) {
      if ((f & (F_PORTS << SIDE_SRC)) !== 0 && !this.inPorts(w, blk, r, SIDE_SRC, pk.sport, srcEp, pk.proto))
        return false;
      if (
        (f & (F_PORTS << SIDE_SRC_NOT)) !== 0 &&
        this.inPorts(w, blk, r, SIDE_SRC_NOT, pk.sport, srcEp, pk.proto)
      )
        return false;
      if ((f & (F_PORTS << SIDE_DST)) !== 0 && !this.inPorts(w, blk, r, SIDE_DST, pk.dport, dstEp, pk.proto))
        return false;
      if (
        (f & (F_PORTS << SIDE_DST_NOT)) !== 0 &&
        this.inPorts(w, blk, r, SIDE_DST_NOT, pk.dport, dstEp, pk.proto)
      )
        return false;
    }
    return true;
  }

  private inNets(w: Int32Array, blk: number, r: number, side: number, ip: number): boolean {
    const o = blk + w[r + R_NETS + 2 * side];
    const n = w[r + R_NETS + 2 * side + 1];
    const key = ip | 0;
    for (let k = 0; k < n; k++) {
      if (++this.steps > this.maxSteps) return false;
      if ((key & w[o + 2 * k + 1]) === w[o + 2 * k]) return true;
    }
    return false;
  }

  private inPorts(
    w: Int32Array,
    blk: number,
    r: number,
    side: number,
    port: number,
    ep: number,
    proto: number,
  ): boolean {
    const o = blk + w[r + R_PORTS + 2 * side];
    const n = w[r + R_PORTS + 2 * side + 1];
    for (let k = 0; k < n; k++) {
      if (++this.steps > this.maxSteps) return false;
      const lo = w[o + 2 * k];
      if (lo >= 0) {
        if (port >= lo && port <= w[o + 2 * k + 1]) return true;
      } else if (this.hasNamedPort(w, ep, -1 - lo, proto, port)) return true;
    }
    return false;
  }

  /** Does endpoint ep declare named port nameId as (proto, port)? */
  private hasNamedPort(w: Int32Array, ep: number, nameId: number, proto: number, port: number): boolean {
    if (ep < 0 || port === 0) return false;
    const e = w[H_EP_TABLE] + ep * EP_WORDS;
    const o = w[e + EP_PORTS];
    const n = w[e + EP_NPORTS];
    for (let k = 0; k < n; k++) {
      if (++this.steps > this.maxSteps) return false;
      const q = o + 3 * k;
      if (w[q] === nameId && w[q + 1] === proto && w[q + 2] === port) return true;
    }
    return false;
  }
}

function icmpMatch(m: number, pk: PolicyPacket): boolean {
  if (pk.icmpType < 0 || (m & 0xff) !== pk.icmpType) return false;
  return (m & ICMP_HAS_CODE) === 0 || ((m >>> 8) & 0xff) === pk.icmpCode;
}

/** Is endpoint slot ep a member of IP set `bit`? (-1: not an endpoint, in no set) */
function inSet(w: Int32Array, ep: number, bit: number): boolean {
  if (ep < 0) return false;
  const words = w[H_ROW_WORDS];
  return ((w[w[H_ROWS] + ep * words + (bit >>> 5)] >>> (bit & 31)) & 1) !== 0;
}
