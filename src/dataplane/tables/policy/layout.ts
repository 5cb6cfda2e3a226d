// The compiled-policy image format: one Int32Array per generation ("bank"), written by the control
// thread (control/policy/image.ts) and read by the ip4-policy node in every worker (eval.ts). Only
// numbers; no objects. This module is the single definition both sides import (the dataplane
// never imports control). Offsets are Int32 word indices into the bank.
//
// Header (HEADER_WORDS words):
//   H_MAGIC, H_EP_COUNT (endpoint slots), H_EP_TABLE (offset), H_ROW_WORDS (W), H_ROWS (offset of
//   EP_COUNT * W membership words: bit b of an endpoint's row = member of IP set b), H_HASH (offset of
//   the IP -> endpoint hash: pairs ip, slot; slot -1 = empty), H_HASH_MASK (pairs - 1), H_NETS and
//   H_NETS_COUNT (endpoint networks wider than /32: triples addr, mask, slot; most specific first),
//   H_SIZE (words used), H_MAX_STEPS (an upper bound on loop iterations of one evaluation: a torn read
//   can never make the evaluator spin).
// Endpoint table: EP_WORDS per slot: EP_FLAGS (EPF_USED, EPF_LOCAL), EP_PROG + d (program offset for
//   direction d, DIR_INGRESS / DIR_EGRESS, or -1), EP_PORTS / EP_NPORTS (named ports: triples
//   nameId, protocol, port).
// Program: nTiers, then per tier: action (TIER_DENY | TIER_PASS), end-of-tier counter, nPolicies,
//   then nPolicies pairs (block offset, counter); then nProfiles and pairs (block offset, counter);
//   then the counter of "no profile allowed it".
// Block (one policy's or profile's rules in one direction, position independent): nRules, then
//   RULE_WORDS per rule; a rule's lists (nets: pairs addr, mask; ports: pairs lo, hi, or -1 - nameId,
//   0 for a named port) follow the rules; their offsets are relative to the block start.

export const POLICY_MAGIC = 0x504f4c31; // 'POL1'

export const H_MAGIC = 0;
export const H_EP_COUNT = 1;
export const H_EP_TABLE = 2;
export const H_ROW_WORDS = 3;
export const H_ROWS = 4;
export const H_HASH = 5;
export const H_HASH_MASK = 6;
export const H_NETS = 7;
export const H_NETS_COUNT = 8;
export const H_SIZE = 9;
export const H_MAX_STEPS = 10;
export const HEADER_WORDS = 16;

export const EP_FLAGS = 0;
export const EP_PROG = 1; // + DIR_INGRESS / DIR_EGRESS
export const EP_PORTS = 3;
export const EP_NPORTS = 4;
export const EP_WORDS = 5;
export const EPF_USED = 1;
export const EPF_LOCAL = 2;

export const DIR_INGRESS = 0;
export const DIR_EGRESS = 1;

export const TIER_DENY = 1;
export const TIER_PASS = 2;

export const ACT_ALLOW = 1;
export const ACT_DENY = 2;
export const ACT_PASS = 3;
export const ACT_LOG = 4;

// rule record
export const R_ACTION = 0;
export const R_FLAGS = 1;
export const R_PROTO = 2;
export const R_NOT_PROTO = 3;
/** ICMP match: type | code << 8 | (code present) << 16 */
export const R_ICMP = 4;
export const R_NOT_ICMP = 5;
/** nets lists: offset, count (SRC, SRC_NOT, DST, DST_NOT) */
export const R_NETS = 6;
/** IP set bits: SRC, SRC_NOT, DST, DST_NOT */
export const R_SETS = 14;
/** port lists: offset, count (SRC, SRC_NOT, DST, DST_NOT) */
export const R_PORTS = 18;
export const RULE_WORDS = 26;

export const SIDE_SRC = 0;
export const SIDE_SRC_NOT = 1;
export const SIDE_DST = 2;
export const SIDE_DST_NOT = 3;

// R_FLAGS bits: which conditions the rule has
export const F_PROTO = 1;
export const F_NOT_PROTO = 2;
export const F_ICMP = 4;
export const F_NOT_ICMP = 8;
/** nets condition on side s: F_NETS << s */
export const F_NETS = 16;
/** set condition on side s: F_SET << s */
export const F_SET = 256;
/** ports condition on side s: F_PORTS << s */
export const F_PORTS = 4096;

export const ICMP_HAS_CODE = 1 << 16;

/** A named-port entry in a ports list: (namedPortLo(nameId), 0). */
export const namedPortLo = (nameId: number): number => -1 - nameId;
