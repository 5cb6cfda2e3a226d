// The policy compiler: keeps the policy model compiled, incrementally, as endpoints, labels and
// policy resources change. What it maintains:
//   - IP sets: one per distinct rule selector (canonical form), a bit in every endpoint's membership
//     row; a label change recomputes that endpoint's row only, a new selector one column only;
//   - per policy and profile, and per direction, a compiled rule block (rules.ts);
//   - per local endpoint, which policies select it, and per direction its ordered program (tiers by
//     order then name, policies by order then name, profiles), rebuilt only when those change;
//   - deny counters, one per (endpoint, direction, cause), stable across recompiles.
// image.ts turns this state into the dataplane's bank image. Control (main) thread only.
import { canonical, matches, type Selector } from './selector.js';
import { compileRules, type SetAllocator } from './rules.js';
import {
  cmpPolicy,
  cmpTier,
  effectiveLabels,
  endpointProfiles,
  policyKey,
  policySelector,
  tierKey,
} from './scope.js';
import {
  DIRECTIONS,
  type Direction,
  type NamespaceResource,
  type PolicyConfig,
  type PolicyEndpoint,
  type PolicyResource,
  type ProfileResource,
  type TierResource,
} from './types.js';
import { TIER_DENY, TIER_PASS } from '../../dataplane/tables/policy/layout.js';

export interface EpState {
  readonly key: string;
  readonly slot: number;
  ep: PolicyEndpoint;
  local: boolean;
  labels: Map<string, string>;
  /** local endpoints: keys of the policies whose selector selects it */
  matched: Set<string>;
  /** local endpoints: programs per direction (index = DIR_INGRESS / DIR_EGRESS); null = rebuild */
  progs: [Program | null, Program | null];
  /** the last sync() that listed it */
  seen: number;
}

/** An endpoint's ordered program in one direction (image.ts serialises it). */
export interface Program {
  tiers: { action: number; endCounter: number; policies: { key: string; counter: number }[] }[];
  profiles: { name: string; counter: number }[];
  noMatchCounter: number;
}

interface SetState {
  readonly bit: number;
  readonly sel: Selector;
  refs: number;
}

interface PolState {
  readonly res: PolicyResource;
  readonly json: string;
  readonly sel: Selector;
  /** per direction (ingress, egress); null when the policy does not apply in that direction */
  readonly blocks: [Int32Array | null, Int32Array | null];
  readonly held: string[];
}

interface ProfState {
  readonly res: ProfileResource;
  readonly json: string;
  readonly blocks: [Int32Array, Int32Array];
  readonly held: string[];
}

export const dirIndex = (d: Direction): number => (d === 'ingress' ? 0 : 1);

export class PolicyCompiler implements SetAllocator {
  private readonly eps = new Map<string, EpState>();
  private readonly slots: (EpState | null)[] = [];
  private readonly freeSlots: number[] = [];
  /** membership rows: slot * rowWords words each */
  private rowWords = 1;
  private rowsBuf = new Int32Array(64);
  private readonly sets = new Map<string, SetState>();
  private readonly freeBits: number[] = [];
  private nextBit = 0;
  private readonly pols = new Map<string, PolState>();
  private readonly profs = new Map<string, ProfState>();
  /** the profiles' resources, as effectiveLabels reads them */
  private readonly profRes = new Map<string, ProfileResource>();
  private readonly tiers = new Map<string, TierResource>();
  private readonly namespaces = new Map<string, NamespaceResource>();
  private readonly portNames = new Map<string, number>();
  private readonly counterIdx = new Map<string, number>();
  /** deny counter labels (index 0: causes that found no counter slot) */
  readonly counterLabels: string[] = ['other'];
  /** sync() calls so far (EpState.seen) */
  private syncs = 0;

  constructor(
    readonly node: string,
    private readonly counterCapacity = 65536,
  ) {}

  // ---- SetAllocator -------------------------------------------------------------------------------

  acquire(sel: Selector, held: string[]): number {
    const key = canonical(sel);
    held.push(key);
    const s = this.sets.get(key);
    if (s !== undefined) {
      s.refs++;
      return s.bit;
    }
    const bit = this.freeBits.pop() ?? this.nextBit++;
    if (bit >= this.rowWords * 32) this.widenRows();
    this.sets.set(key, { bit, sel, refs: 1 });
    // the new column: every endpoint's membership (clears whatever a freed set left there)
    const w = this.rowWords;
    const word = bit >>> 5;
    const m = 1 << (bit & 31);
    for (const e of this.eps.values()) {
      const o = e.slot * w + word;
      if (matches(sel, e.labels)) this.rowsBuf[o] |= m;
      else this.rowsBuf[o] &= ~m;
    }
    return bit;
  }

  private release(held: readonly string[]): void {
    for (const key of held) {
      const s = this.sets.get(key);
      if (s === undefined || --s.refs > 0) continue;
      this.sets.delete(key);
      this.freeBits.push(s.bit);
    }
  }

  portName(name: string): number {
    let id = this.portNames.get(name);
    if (id === undefined) {
      id = this.portNames.size;
      this.portNames.set(name, id);
    }
    return id;
  }

  /** Named-port id of `name`, or -1 when no rule names it. */
  portNameId(name: string): number {
    return this.portNames.get(name) ?? -1;
  }

  private widenRows(): void {
    const old = this.rowWords;
    const w = old * 2;
    const rows = new Int32Array(Math.max(64, this.slots.length * w));
    for (let s = 0; s < this.slots.length; s++)
      rows.set(this.rowsBuf.subarray(s * old, s * old + old), s * w);
    this.rowWords = w;
    this.rowsBuf = rows;
  }

  private ensureRows(slot: number): void {
    const need = (slot + 1) * this.rowWords;
    if (need <= this.rowsBuf.length) return;
    const rows = new Int32Array(Math.max(need, this.rowsBuf.length * 2));
    rows.set(this.rowsBuf);
    this.rowsBuf = rows;
  }

  // ---- endpoints ----------------------------------------------------------------------------------

  /** Adds or updates an endpoint (labels, addresses, profiles, ports). */
  setEndpoint(ep: PolicyEndpoint): void {
    const old = this.eps.get(ep.key);
    if (old !== undefined) {
      old.ep = ep;
      const local = ep.node === this.node;
      if (local !== old.local) {
        old.local = local;
        old.matched.clear();
        old.labels = new Map(); // forces the relabel below to rematch
      }
      old.progs = [null, null];
      this.relabel(old);
      return;
    }
    const slot = this.freeSlots.pop() ?? this.slots.length;
    const st: EpState = {
      key: ep.key,
      slot,
      ep,
      local: ep.node === this.node,
      labels: new Map(),
      matched: new Set(),
      progs: [null, null],
      seen: 0,
    };
    this.slots[slot] = st;
    this.eps.set(ep.key, st);
    this.ensureRows(slot);
    this.rowsBuf.fill(0, slot * this.rowWords, (slot + 1) * this.rowWords);
    this.relabel(st, true);
  }

  removeEndpoint(key: string): void {
    const st = this.eps.get(key);
    if (st === undefined) return;
    this.eps.delete(key);
    this.slots[st.slot] = null;
    this.freeSlots.push(st.slot);
  }

  /** Recomputes an endpoint's labels; on a change, its set memberships and (local) policies. */
  private relabel(st: EpState, force = false): void {
    const labels = effectiveLabels(st.ep, this.profRes, this.namespaces);
    if (!force && sameLabels(labels, st.labels)) return;
    st.labels = labels;
    const w = this.rowWords;
    const base = st.slot * w;
    const rows = this.rowsBuf;
    rows.fill(0, base, base + w);
    for (const s of this.sets.values())
      if (matches(s.sel, labels)) rows[base + (s.bit >>> 5)] |= 1 << (s.bit & 31);
    if (!st.local) return;
    const matched = new Set<string>();
    for (const [k, p] of this.pols) if (!p.res.hostOnly && matches(p.sel, labels)) matched.add(k);
    if (!sameSet(matched, st.matched)) {
      st.matched = matched;
      st.progs = [null, null];
    }
  }

  // ---- resources ----------------------------------------------------------------------------------

  setNamespace(ns: NamespaceResource): void {
    this.namespaces.set(ns.name, ns);
    for (const st of this.eps.values()) if (st.ep.namespace === ns.name) this.relabel(st);
  }

  removeNamespace(name: string): void {
    if (!this.namespaces.delete(name)) return;
    for (const st of this.eps.values()) if (st.ep.namespace === name) this.relabel(st);
  }

  setProfile(p: ProfileResource): void {
    const old = this.profs.get(p.name);
    const json = JSON.stringify(p);
    if (old?.json === json) return;
    const held: string[] = [];
    const blocks: [Int32Array, Int32Array] = [
      compileRules(p.ingress, undefined, this, held),
      compileRules(p.egress, undefined, this, held),
    ];
    this.profs.set(p.name, { res: p, json, blocks, held });
    this.profRes.set(p.name, p);
    if (old !== undefined) this.release(old.held);
    if (old === undefined || JSON.stringify(old.res.labelsToApply) !== JSON.stringify(p.labelsToApply))
      this.relabelProfileUsers(p.name);
  }

  removeProfile(name: string): void {
    const old = this.profs.get(name);
    if (old === undefined) return;
    this.profs.delete(name);
    this.profRes.delete(name);
    this.release(old.held);
    this.relabelProfileUsers(name);
  }

  private relabelProfileUsers(name: string): void {
    for (const st of this.eps.values()) if (endpointProfiles(st.ep).includes(name)) this.relabel(st);
  }

  setTier(t: TierResource): void {
    const old = this.tiers.get(t.name);
    if (old !== undefined && JSON.stringify(old) === JSON.stringify(t)) return;
    this.tiers.set(t.name, t);
    this.dirtyAllPrograms();
  }

  removeTier(name: string): void {
    if (this.tiers.delete(name)) this.dirtyAllPrograms();
  }

  private dirtyAllPrograms(): void {
    for (const st of this.eps.values()) if (st.local) st.progs = [null, null];
  }

  setPolicy(p: PolicyResource): void {
    const key = policyKey(p);
    const old = this.pols.get(key);
    const json = JSON.stringify(p);
    if (old?.json === json) return;
    const held: string[] = [];
    const ns = p.kind === 'NetworkPolicy' ? (p.namespace ?? 'default') : undefined;
    const blocks: [Int32Array | null, Int32Array | null] = [null, null];
    if (!p.hostOnly)
      for (const d of DIRECTIONS)
        if (p.types.includes(d)) blocks[dirIndex(d)] = compileRules(p[d], ns, this, held);
    const st: PolState = { res: p, json, sel: policySelector(p), blocks, held };
    this.pols.set(key, st);
    if (old !== undefined) this.release(old.held);
    for (const e of this.eps.values()) {
      if (!e.local) continue;
      const m = !p.hostOnly && matches(st.sel, e.labels);
      if (m) e.matched.add(key);
      else e.matched.delete(key);
      // matched before or now: its place in the program (tier, order, types) may have moved
      if (m || old !== undefined) e.progs = [null, null];
    }
  }

  removePolicy(key: string): void {
    const old = this.pols.get(key);
    if (old === undefined) return;
    this.pols.delete(key);
    this.release(old.held);
    for (const e of this.eps.values()) if (e.matched.delete(key)) e.progs = [null, null];
  }

  /**
   * Brings the compiled state to `pc` and `endpoints` (all of the cluster's; the local ones are
   * those on this compiler's node), touching only what differs. Returns how many changes it made.
   */
  sync(pc: PolicyConfig, endpoints: readonly PolicyEndpoint[]): number {
    let n = 0;
    const json = (v: unknown): string => JSON.stringify(v);
    /** sets every wanted item that differs, removes every item no longer wanted */
    const diff = <T>(
      want: Iterable<[string, T]>,
      have: ReadonlyMap<string, unknown>,
      same: (key: string, v: T) => boolean,
      set: (v: T) => void,
      remove: (key: string) => void,
    ): void => {
      const keys = new Set<string>();
      for (const [k, v] of want) {
        keys.add(k);
        if (same(k, v)) continue;
        set(v);
        n++;
      }
      // every wanted key is in `have` now: equal sizes leave nothing to remove
      if (keys.size === have.size) return;
      for (const k of [...have.keys()]) {
        if (keys.has(k)) continue;
        remove(k);
        n++;
      }
    };
    diff(
      pc.namespaces,
      this.namespaces,
      (k, v) => {
        const o = this.namespaces.get(k);
        return o === v || json(o) === json(v);
      },
      (v) => this.setNamespace(v),
      (k) => this.removeNamespace(k),
    );
    diff(
      pc.profiles,
      this.profs,
      (k, v) => {
        const o = this.profs.get(k);
        return o !== undefined && (o.res === v || o.json === json(v));
      },
      (v) => this.setProfile(v),
      (k) => this.removeProfile(k),
    );
    diff(
      pc.tiers,
      this.tiers,
      (k, v) => {
        const o = this.tiers.get(k);
        return o === v || json(o) === json(v);
      },
      (v) => this.setTier(v),
      (k) => this.removeTier(k),
    );
    // endpoints (10 000s): one pass, unchanged ones skipped on identity (policyEndpoint's cache)
    const epoch = ++this.syncs;
    let listed = 0;
    for (const e of endpoints) {
      let st = this.eps.get(e.key);
      if (st === undefined || (st.ep !== e && !sameEndpoint(st.ep, e))) {
        this.setEndpoint(e);
        st = this.eps.get(e.key)!;
        n++;
      }
      if (st.seen !== epoch) listed++;
      st.seen = epoch;
    }
    if (listed !== this.eps.size)
      for (const st of [...this.eps.values()]) {
        if (st.seen === epoch) continue;
        this.removeEndpoint(st.key);
        n++;
      }
    diff(
      pc.policies.map((p) => [policyKey(p), p] as [string, PolicyResource]),
      this.pols,
      (k, v) => {
        const o = this.pols.get(k);
        return o !== undefined && (o.res === v || o.json === json(v));
      },
      (v) => this.setPolicy(v),
      (k) => this.removePolicy(k),
    );
    return n;
  }

  // ---- what image.ts reads ------------------------------------------------------------------------

  get slotCount(): number {
    return this.slots.length;
  }

  get words(): number {
    return this.rowWords;
  }

  get rows(): Int32Array {
    return this.rowsBuf;
  }

  slot(i: number): EpState | null {
    return this.slots[i] ?? null;
  }

  endpoint(key: string): EpState | undefined {
    return this.eps.get(key);
  }

  get setCount(): number {
    return this.sets.size;
  }

  get policyCount(): number {
    return this.pols.size;
  }

  /** A policy's block in direction d (0 ingress, 1 egress), or null. */
  policyBlock(key: string, d: number): Int32Array | null {
    return this.pols.get(key)?.blocks[d] ?? null;
  }

  /** A profile's block in direction d, or null when the profile is not defined. */
  profileBlock(name: string, d: number): Int32Array | null {
    return this.profs.get(name)?.blocks[d] ?? null;
  }

  /** The ordered program of local endpoint `st` in direction d (built when stale). */
  program(st: EpState, d: number): Program {
    const cached = st.progs[d];
    if (cached !== null) return cached;
    const dir = DIRECTIONS[d];
    const byTier = new Map<string, PolicyResource[]>();
    for (const key of st.matched) {
      const p = this.pols.get(key);
      if (p === undefined || p.blocks[d] === null) continue;
      const list = byTier.get(p.res.tier) ?? [];
      list.push(p.res);
      byTier.set(p.res.tier, list);
    }
    const tierNames = [...byTier.keys()].map((t) => tierKey(t, this.tiers)).sort(cmpTier);
    const label = (what: string): number => this.counter(`${st.key} ${dir} denied by ${what}`);
    const prog: Program = {
      tiers: tierNames.map(({ name }) => ({
        action: this.tiers.get(name)?.defaultAction === 'Pass' ? TIER_PASS : TIER_DENY,
        endCounter: label(`end of tier ${name}`),
        policies: byTier
          .get(name)!
          .sort(cmpPolicy)
          .map((p) => ({ key: policyKey(p), counter: label(`${policyLabel(p)}`) })),
      })),
      profiles: endpointProfiles(st.ep).map((name) => ({ name, counter: label(`profile ${name}`) })),
      noMatchCounter: label('no profile allowing it'),
    };
    st.progs[d] = prog;
    return prog;
  }

  /** The deny counter for `label` (allocated once; 0 when the counters are exhausted). */
  private counter(label: string): number {
    let c = this.counterIdx.get(label);
    if (c !== undefined) return c;
    if (this.counterLabels.length >= this.counterCapacity) return 0;
    c = this.counterLabels.length;
    this.counterLabels.push(label);
    this.counterIdx.set(label, c);
    return c;
  }

  /** Endpoints on this node. */
  *localEndpoints(): Iterable<EpState> {
    for (const st of this.eps.values()) if (st.local) yield st;
  }
}

function policyLabel(p: PolicyResource): string {
  const kind = p.kind === 'NetworkPolicy' ? 'NetworkPolicy' : 'GlobalNetworkPolicy';
  return `${kind} ${p.tier}/${policyKey(p)}`;
}

/** Field by field (a reload compares 10 000s of endpoints: JSON would cost tens of ms). */
function sameEndpoint(a: PolicyEndpoint, b: PolicyEndpoint): boolean {
  if (a === b) return true;
  if (a.key !== b.key || a.namespace !== b.namespace || a.node !== b.node) return false;
  if (a.ipNetworks.length !== b.ipNetworks.length || a.ports.length !== b.ports.length) return false;
  for (let k = 0; k < a.ipNetworks.length; k++)
    if (a.ipNetworks[k].addr !== b.ipNetworks[k].addr || a.ipNetworks[k].len !== b.ipNetworks[k].len)
      return false;
  for (let k = 0; k < a.ports.length; k++) {
    const p = a.ports[k];
    const q = b.ports[k];
    if (p.name !== q.name || p.protocol !== q.protocol || p.port !== q.port) return false;
  }
  if ((a.profiles === undefined) !== (b.profiles === undefined)) return false;
  if (a.profiles !== undefined && a.profiles.join('\0') !== b.profiles!.join('\0')) return false;
  const ka = Object.keys(a.labels);
  if (ka.length !== Object.keys(b.labels).length) return false;
  for (const k of ka) if (a.labels[k] !== b.labels[k]) return false;
  return true;
}

function sameLabels(a: Map<string, string>, b: Map<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

function sameSet(a: Set<string>, b: Set<string>): boolean {
  if (a.size !== b.size) return false;
  for (const k of a) if (!b.has(k)) return false;
  return true;
}
