// The policy tables' deny counters (one per endpoint, direction and cause, added to by every worker
// with Atomics) as counter rows, the shape replay prints and `calitap stats` sums. Read on the
// control thread (or the replay loop) only.
import type { CounterRow } from '../../graph/counters.js';
import type { PolicyEnv } from '../../graph/env.js';

/** Node name the rows carry (the same as the ip4-policy graph node's). */
export const POLICY_NODE = 'ip4-policy';

export function policyCounterRows(p: PolicyEnv | undefined): CounterRow[] {
  if (p === undefined) return [];
  const out: CounterRow[] = [];
  const c = p.tables.counters;
  for (let i = 0; i < c.length; i++) {
    const v = Atomics.load(c, i);
    if (v !== 0) out.push({ node: POLICY_NODE, reason: p.describe?.(i) ?? `deny counter ${i}`, value: v });
  }
  return out;
}
