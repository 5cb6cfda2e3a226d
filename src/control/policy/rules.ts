// Rule compilation: one policy's (or profile's) rules in one direction become a position-independent
// block of Int32 words in the dataplane's layout (dataplane/tables/policy/layout.ts); each rule
// selector becomes an IP set (a bit in every endpoint's membership row) through the caller's set
// allocator. IPv6-only rules are left out: they never match an IPv4 packet. Control thread only.
import { maskOf } from '../../common/addr.js';
import {
  ACT_ALLOW,
  ACT_DENY,
  ACT_LOG,
  ACT_PASS,
  F_ICMP,
  F_NETS,
  F_NOT_ICMP,
  F_NOT_PROTO,
  F_PORTS,
  F_PROTO,
  F_SET,
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
  namedPortLo,
} from '../../dataplane/tables/policy/layout.js';
import type { Selector } from './selector.js';
import { entitySelectors } from './scope.js';
import type { IcmpMatch, PolicyAction, PolicyRule, PortMatch } from './types.js';
import type { Prefix4 } from '../../common/addr.js';

/** Hands out IP-set bits for selectors (reference counted by the caller's release). */
export interface SetAllocator {
  /** The bit of the set of endpoints `sel` selects; records it in `held`. */
  acquire(sel: Selector, held: string[]): number;
  /** The id of a named port (shared by every rule naming it). */
  portName(name: string): number;
}

const ACTIONS: Record<PolicyAction, number> = {
  Allow: ACT_ALLOW,
  Deny: ACT_DENY,
  Pass: ACT_PASS,
  Log: ACT_LOG,
};

function icmpWord(m: IcmpMatch): number {
  return (m.type ?? 0) | ((m.code ?? 0) << 8) | (m.code === undefined ? 0 : ICMP_HAS_CODE);
}

/**
 * Compiles `rules` (of a NetworkPolicy in namespace `ns`, or global when undefined) into a block.
 * Every set the block uses is appended to `held` (the caller releases them with the block).
 */
export function compileRules(
  rules: readonly PolicyRule[],
  ns: string | undefined,
  sets: SetAllocator,
  held: string[],
): Int32Array {
  const kept = rules.filter((r) => !r.ipv6Only);
  const head = 1 + kept.length * RULE_WORDS;
  const lists: number[] = [];
  const recs = new Int32Array(head);
  recs[0] = kept.length;
  kept.forEach((rule, k) => {
    const r = 1 + k * RULE_WORDS;
    let flags = 0;
    recs[r + R_ACTION] = ACTIONS[rule.action];
    if (rule.protocol !== undefined) {
      flags |= F_PROTO;
      recs[r + R_PROTO] = rule.protocol;
    }
    if (rule.notProtocol !== undefined) {
      flags |= F_NOT_PROTO;
      recs[r + R_NOT_PROTO] = rule.notProtocol;
    }
    if (rule.icmp?.type !== undefined) {
      flags |= F_ICMP;
      recs[r + R_ICMP] = icmpWord(rule.icmp);
    }
    if (rule.notICMP?.type !== undefined) {
      flags |= F_NOT_ICMP;
      recs[r + R_NOT_ICMP] = icmpWord(rule.notICMP);
    }
    const list = (side: number, base: number, entries: number[], width: number): void => {
      recs[r + base + 2 * side] = head + lists.length;
      recs[r + base + 2 * side + 1] = entries.length / width;
      lists.push(...entries);
    };
    const nets = (side: number, ps: readonly Prefix4[]): void => {
      if (ps.length === 0) return;
      flags |= F_NETS << side;
      list(
        side,
        R_NETS,
        ps.flatMap((p) => [(p.addr & maskOf(p.len)) | 0, maskOf(p.len) | 0]),
        2,
      );
    };
    const ports = (side: number, ps: readonly PortMatch[]): void => {
      if (ps.length === 0) return;
      flags |= F_PORTS << side;
      list(
        side,
        R_PORTS,
        ps.flatMap((p) => ('name' in p ? [namedPortLo(sets.portName(p.name)), 0] : [p.lo, p.hi])),
        2,
      );
    };
    const set = (side: number, sel: Selector | undefined): void => {
      if (sel === undefined) return;
      flags |= F_SET << side;
      recs[r + R_SETS + side] = sets.acquire(sel, held);
    };
    const src = entitySelectors(rule.source, ns);
    const dst = entitySelectors(rule.destination, ns);
    nets(SIDE_SRC, rule.source.nets);
    nets(SIDE_SRC_NOT, rule.source.notNets);
    nets(SIDE_DST, rule.destination.nets);
    nets(SIDE_DST_NOT, rule.destination.notNets);
    set(SIDE_SRC, src.positive);
    set(SIDE_SRC_NOT, src.negative);
    set(SIDE_DST, dst.positive);
    set(SIDE_DST_NOT, dst.negative);
    ports(SIDE_SRC, rule.source.ports);
    ports(SIDE_SRC_NOT, rule.source.notPorts);
    ports(SIDE_DST, rule.destination.ports);
    ports(SIDE_DST_NOT, rule.destination.notPorts);
    recs[r + R_FLAGS] = flags;
  });
  const block = new Int32Array(head + lists.length);
  block.set(recs);
  block.set(lists, head);
  return block;
}

/** The block of a namespace profile Calico creates for Kubernetes (allow everything both ways). */
export const ALLOW_ALL_BLOCK: Int32Array = (() => {
  const b = new Int32Array(1 + RULE_WORDS);
  b[0] = 1;
  b[1 + R_ACTION] = ACT_ALLOW;
  return b;
})();
