// Routing information bases for IPv4 unicast: one Adj-RIB-In per peer, the Loc-RIB with best-path
// selection (RFC 4271 §9.1.2, RFC 4456 §9), per-peer export with an Adj-RIB-Out, and the graceful
// restart helper's stale routes (RFC 4724 §4.2). Sized for millions of routes: prefixes live in
// PrefixMaps (small-integer keys, no boxed numbers) and identical attribute sets are interned and
// shared by reference.
// Pure data structure: no timers, no sockets (the speaker drives those). Control thread only.
import type { Prefix4 } from '../../common/addr.js';
import { asPathLength, encodeAttrs } from './attrs.js';
import { ByteWriter } from './bytes.js';
import { PrefixMap } from './prefix-map.js';
import type { PathAttrs, UpdateMsg } from './types.js';
import { Seg } from './types.js';

/** An interned, immutable attribute set shared by every route that carries it. */
export class AttrSet {
  refs = 0;
  readonly pathLen: number;
  /** first AS of the path, or 0 for routes from inside our AS (RFC 4271 §9.1.2.2 c) */
  readonly neighborAs: number;
  /** cached export variants (see Rib.exportAttrs) */
  derived: { ibgp?: AttrSet; ebgp?: AttrSet } = {};
  constructor(
    readonly attrs: PathAttrs,
    readonly key: string,
  ) {
    this.pathLen = asPathLength(attrs.asPath);
    const first = attrs.asPath.find((s) => s.type === Seg.AS_SEQUENCE || s.type === Seg.AS_SET);
    this.neighborAs = first && first.type === Seg.AS_SEQUENCE ? first.asns[0] : 0;
  }
}

class AttrInterner {
  private readonly map = new Map<string, AttrSet>();
  get size(): number {
    return this.map.size;
  }
  intern(a: PathAttrs): AttrSet {
    const w = new ByteWriter(64);
    encodeAttrs(w, a, { as4: true, ibgp: true });
    const b = w.finish();
    let key = a.nextHop === null ? 'n' : 'h';
    for (let i = 0; i < b.length; i += 4096) key += String.fromCharCode(...b.subarray(i, i + 4096));
    let s = this.map.get(key);
    if (!s) {
      s = new AttrSet(a, key);
      this.map.set(key, s);
    }
    return s;
  }
  isLive(s: AttrSet): boolean {
    return this.map.get(s.key) === s;
  }
  ref(s: AttrSet): void {
    if (s.refs++ === 0 && !this.isLive(s)) this.map.set(s.key, s);
  }
  unref(s: AttrSet): void {
    if (--s.refs === 0 && this.isLive(s)) this.map.delete(s.key);
  }
}

export interface RibOptions {
  localAs: number;
  routerId: number;
  /** route reflector cluster ID we must not see in CLUSTER_LIST (defaults to routerId) */
  clusterId?: number;
  /** next hop for our own blocks and for routes exported to eBGP peers (the node's IP) */
  nextHop: number;
  /** export routes learned from peers to eBGP peers (standard BGP); never to iBGP peers */
  exportLearnedToEbgp?: boolean;
}

/** A peer as the RIB knows it. Created by `Rib.addPeer`. */
export class RibPeer {
  adjIn = new PrefixMap<AttrSet>();
  /** routes kept across a graceful restart until End-of-RIB or timeout */
  stale: PrefixMap<AttrSet> | null = null;
  /** export state, present while the session is Established */
  adjOut: PrefixMap<AttrSet> | null = null;
  pending: PrefixMap<AttrSet | null> | null = null;
  routerId = 0;
  /** counters for status and logs */
  stats = { received: 0, withdrawn: 0, rejected: 0, treatAsWithdraw: 0 };
  lastReject = '';
  constructor(
    readonly address: number,
    readonly asn: number,
    readonly ibgp: boolean,
  ) {}
  get routeCount(): number {
    return this.adjIn.size + (this.stale ? this.stale.size : 0);
  }
}

export interface BestRoute {
  prefix: Prefix4;
  nextHop: number;
  peerAddress: number;
  ibgp: boolean;
  attrs: PathAttrs;
  /** why this route beat the runner-up ("only route", "local preference", ...) */
  reason: string;
  stale: boolean;
}

interface Best {
  peer: RibPeer;
  set: AttrSet;
  reason: string;
}

export type RouteChangeHandler = (prefix: Prefix4, best: BestRoute | null) => void;

const DEFAULT_LOCAL_PREF = 100;

export class Rib {
  private readonly interner = new AttrInterner();
  private readonly peers: RibPeer[] = [];
  private readonly loc = new PrefixMap<Best>();
  private readonly originated = new PrefixMap<true>();
  private originIbgp: AttrSet | null = null;
  private originEbgp: AttrSet | null = null;
  private readonly clusterId: number;

  constructor(
    private readonly opts: RibOptions,
    private readonly onChange: RouteChangeHandler = () => {},
  ) {
    this.clusterId = opts.clusterId ?? opts.routerId;
  }

  get size(): number {
    return this.loc.size;
  }

  get attrSetCount(): number {
    return this.interner.size;
  }

  addPeer(address: number, asn: number): RibPeer {
    const p = new RibPeer(address, asn, asn === this.opts.localAs);
    this.peers.push(p);
    return p;
  }

  removePeer(p: RibPeer): void {
    this.peerDown(p, false);
    const i = this.peers.indexOf(p);
    if (i >= 0) this.peers.splice(i, 1);
  }

  // ---- import ---------------------------------------------------------------------------

  /** Applies one UPDATE from `p`; RFC 7606 treat-as-withdraw turns every prefix into a withdrawal. */
  applyUpdate(p: RibPeer, u: UpdateMsg): void {
    for (const w of u.withdrawn) this.withdrawFrom(p, w.addr, w.len);
    for (const w of u.mpUnreach ?? []) this.withdrawFrom(p, w.addr, w.len);
    if (u.treatAsWithdraw) {
      p.stats.treatAsWithdraw++;
      for (const n of u.nlri) this.withdrawFrom(p, n.addr, n.len);
      for (const n of u.mpReach?.nlri ?? []) this.withdrawFrom(p, n.addr, n.len);
      return;
    }
    if (!u.attrs) return;
    if (u.nlri.length) this.announce(p, u.attrs, u.nlri);
    if (u.mpReach && u.mpReach.nlri.length)
      this.announce(p, { ...u.attrs, nextHop: u.mpReach.nextHop }, u.mpReach.nlri);
  }

  private importCheck(p: RibPeer, a: PathAttrs): string | null {
    if (a.originatorId === this.opts.routerId) return 'ORIGINATOR_ID is our router ID';
    if (a.clusterList && a.clusterList.includes(this.clusterId)) return 'our cluster ID is in CLUSTER_LIST';
    for (const s of a.asPath)
      if ((s.type === Seg.AS_SEQUENCE || s.type === Seg.AS_SET) && s.asns.includes(this.opts.localAs))
        return 'AS path loop';
    if (a.nextHop === this.opts.nextHop) return 'next hop is our own address';
    if (a.nextHop === null) return 'no next hop';
    if (!p.ibgp) {
      // RFC 4271 §6.3: an external peer's path must start with its own AS (treat-as-withdraw, RFC 7606 §7.2)
      const first = a.asPath[0];
      if (!first || first.type !== Seg.AS_SEQUENCE || first.asns[0] !== p.asn)
        return 'AS path does not start with the peer AS';
    }
    return null;
  }

  private announce(p: RibPeer, attrs: PathAttrs, nlri: Prefix4[]): void {
    const why = this.importCheck(p, attrs);
    if (why) {
      p.stats.rejected += nlri.length;
      p.lastReject = why;
      for (const n of nlri) this.withdrawFrom(p, n.addr, n.len);
      return;
    }
    const set = this.interner.intern(attrs);
    for (const n of nlri) {
      const { addr, len } = n;
      p.stats.received++;
      const old = p.adjIn.get(addr, len);
      if (old === set) continue;
      this.interner.ref(set);
      p.adjIn.set(addr, len, set);
      if (old) this.interner.unref(old);
      const st = p.stale?.get(addr, len);
      if (st) {
        p.stale!.delete(addr, len);
        this.interner.unref(st);
        if (st === set && this.loc.get(addr, len)?.peer === p) continue; // refreshed, unchanged
      }
      this.recompute(addr, len);
    }
  }

  private withdrawFrom(p: RibPeer, addr: number, len: number): void {
    let changed = false;
    const old = p.adjIn.get(addr, len);
    if (old) {
      p.adjIn.delete(addr, len);
      this.interner.unref(old);
      p.stats.withdrawn++;
      changed = true;
    }
    const st = p.stale?.get(addr, len);
    if (st) {
      p.stale!.delete(addr, len);
      this.interner.unref(st);
      changed = true;
    }
    if (changed) this.recompute(addr, len);
  }

  // ---- sessions and graceful restart ------------------------------------------------------

  /** The session with `p` is Established: queue the full export. */
  peerUp(p: RibPeer, routerId: number): void {
    p.routerId = routerId;
    p.adjOut = new PrefixMap();
    p.pending = new PrefixMap();
    this.queueFullExport(p);
  }

  /**
   * The session went down. `graceful`: keep its routes as stale (RFC 4724 §4.2) until `purgeStale`;
   * otherwise withdraw them now.
   */
  peerDown(p: RibPeer, graceful: boolean): void {
    this.clearExport(p);
    if (graceful) {
      if (!p.stale) p.stale = p.adjIn;
      else {
        const stale = p.stale;
        p.adjIn.forEach((s, addr, len) => {
          const old = stale.get(addr, len);
          if (old) this.interner.unref(old);
          stale.set(addr, len, s);
        });
      }
      p.adjIn = new PrefixMap();
      return;
    }
    const adj = p.adjIn;
    const stale = p.stale;
    p.adjIn = new PrefixMap();
    p.stale = null;
    adj.forEach((s) => this.interner.unref(s));
    stale?.forEach((s) => this.interner.unref(s));
    adj.forEach((_s, addr, len) => this.recompute(addr, len));
    stale?.forEach((_s, addr, len) => this.recompute(addr, len));
  }

  /** Drops routes still stale (End-of-RIB received, or the restart/stale timer expired). */
  purgeStale(p: RibPeer): number {
    const st = p.stale;
    if (!st) return 0;
    p.stale = null;
    st.forEach((s, addr, len) => {
      this.interner.unref(s);
      this.recompute(addr, len);
    });
    return st.size;
  }

  // ---- best path selection ----------------------------------------------------------------

  private recompute(addr: number, len: number): void {
    let best: Best | null = null;
    let second: { peer: RibPeer; set: AttrSet } | null = null;
    for (const p of this.peers) {
      const s = p.adjIn.get(addr, len) ?? p.stale?.get(addr, len);
      if (!s) continue;
      if (!best) {
        best = { peer: p, set: s, reason: 'only route' };
      } else if (this.compare(p, s, best.peer, best.set).cmp < 0) {
        second = { peer: best.peer, set: best.set };
        best = { peer: p, set: s, reason: '' };
      } else if (!second || this.compare(p, s, second.peer, second.set).cmp < 0) {
        second = { peer: p, set: s };
      }
    }
    if (best && second) best.reason = this.compare(best.peer, best.set, second.peer, second.set).reason;
    const old = this.loc.get(addr, len);
    if (!best) {
      if (!old) return;
      this.loc.delete(addr, len);
    } else {
      if (old && old.peer === best.peer && old.set === best.set) {
        old.reason = best.reason;
        return;
      }
      this.loc.set(addr, len, best);
    }
    this.onChange({ addr, len }, best ? this.toBest(addr, len, best) : null);
    if (!this.originated.has(addr, len)) this.queueExport(addr, len);
  }

  /** Negative when route a (from peer pa) is better than b (RFC 4271 §9.1.2.2, RFC 4456 §9). */
  compare(pa: RibPeer, a: AttrSet, pb: RibPeer, b: AttrSet): { cmp: number; reason: string } {
    const lpA = a.attrs.localPref ?? DEFAULT_LOCAL_PREF;
    const lpB = b.attrs.localPref ?? DEFAULT_LOCAL_PREF;
    if (lpA !== lpB) return { cmp: lpB - lpA, reason: 'local preference' };
    if (a.pathLen !== b.pathLen) return { cmp: a.pathLen - b.pathLen, reason: 'AS path length' };
    if (a.attrs.origin !== b.attrs.origin) return { cmp: a.attrs.origin - b.attrs.origin, reason: 'origin' };
    if (a.neighborAs === b.neighborAs) {
      const mA = a.attrs.med ?? 0;
      const mB = b.attrs.med ?? 0;
      if (mA !== mB) return { cmp: mA - mB, reason: 'MED' };
    }
    if (pa.ibgp !== pb.ibgp) return { cmp: pa.ibgp ? 1 : -1, reason: 'eBGP over iBGP' };
    const idA = a.attrs.originatorId ?? pa.routerId;
    const idB = b.attrs.originatorId ?? pb.routerId;
    if (idA !== idB) return { cmp: idA - idB, reason: 'router ID' };
    const clA = a.attrs.clusterList?.length ?? 0;
    const clB = b.attrs.clusterList?.length ?? 0;
    if (clA !== clB) return { cmp: clA - clB, reason: 'cluster list length' };
    return { cmp: pa.address - pb.address, reason: 'peer address' };
  }

  private toBest(addr: number, len: number, b: Best): BestRoute {
    return {
      prefix: { addr, len },
      nextHop: b.set.attrs.nextHop ?? 0,
      peerAddress: b.peer.address,
      ibgp: b.peer.ibgp,
      attrs: b.set.attrs,
      reason: b.reason,
      stale: b.peer.stale?.get(addr, len) === b.set && !b.peer.adjIn.has(addr, len),
    };
  }

  lookup(prefix: Prefix4): BestRoute | null {
    const b = this.loc.get(prefix.addr, prefix.len);
    return b ? this.toBest(prefix.addr, prefix.len, b) : null;
  }

  *routes(): IterableIterator<BestRoute> {
    for (const [p, b] of this.loc.entries()) yield this.toBest(p.addr, p.len, b);
  }

  // ---- origination and export ---------------------------------------------------------------

  originate(prefix: Prefix4): void {
    if (this.originated.has(prefix.addr, prefix.len)) return;
    this.originated.set(prefix.addr, prefix.len, true);
    this.queueExport(prefix.addr, prefix.len);
  }

  withdraw(prefix: Prefix4): void {
    if (!this.originated.delete(prefix.addr, prefix.len)) return;
    this.queueExport(prefix.addr, prefix.len);
  }

  originatedPrefixes(): Prefix4[] {
    return [...this.originated.entries()].map((e) => e[0]);
  }

  /** Attributes to send `p` for a prefix, or null to not advertise it. */
  exportAttrs(p: RibPeer, addr: number, len: number): AttrSet | null {
    if (this.originated.has(addr, len)) return this.originAttrs(p.ibgp);
    const b = this.loc.get(addr, len);
    if (!b || b.peer === p) return null;
    if (p.ibgp) {
      // Not a route reflector: iBGP-learned routes never go to iBGP peers.
      if (b.peer.ibgp) return null;
      return this.derive(b.set, 'ibgp', (a) => ({ ...a, localPref: a.localPref ?? DEFAULT_LOCAL_PREF }));
    }
    if (this.opts.exportLearnedToEbgp === false) return null;
    for (const s of b.set.attrs.asPath) if (s.asns.includes(p.asn)) return null; // the peer would drop it
    return this.derive(b.set, 'ebgp', (a) => {
      const out: PathAttrs = {
        origin: a.origin,
        asPath: prependAs(a.asPath, this.opts.localAs),
        nextHop: this.opts.nextHop,
      };
      if (a.atomicAggregate) out.atomicAggregate = true;
      if (a.aggregator) out.aggregator = a.aggregator;
      if (a.communities) out.communities = a.communities;
      if (a.extCommunities) out.extCommunities = a.extCommunities;
      if (a.largeCommunities) out.largeCommunities = a.largeCommunities;
      if (a.unknown) out.unknown = a.unknown;
      return out;
    });
  }

  private derive(src: AttrSet, variant: 'ibgp' | 'ebgp', f: (a: PathAttrs) => PathAttrs): AttrSet {
    const d = src.derived[variant];
    if (d && (d.refs > 0 || this.interner.isLive(d))) return d;
    const n = this.interner.intern(f(src.attrs));
    src.derived[variant] = n;
    return n;
  }

  private originAttrs(ibgp: boolean): AttrSet {
    if (ibgp) {
      this.originIbgp ??= this.interner.intern({
        origin: 0,
        asPath: [],
        nextHop: this.opts.nextHop,
        localPref: DEFAULT_LOCAL_PREF,
      });
      return this.originIbgp;
    }
    this.originEbgp ??= this.interner.intern({
      origin: 0,
      asPath: [{ type: Seg.AS_SEQUENCE, asns: [this.opts.localAs] }],
      nextHop: this.opts.nextHop,
    });
    return this.originEbgp;
  }

  private queueExport(addr: number, len: number): void {
    for (const p of this.peers) {
      if (!p.adjOut || !p.pending) continue;
      const e = this.exportAttrs(p, addr, len);
      const cur = p.adjOut.get(addr, len) ?? null;
      if (e === cur) p.pending.delete(addr, len);
      else p.pending.set(addr, len, e);
    }
  }

  private queueFullExport(p: RibPeer): void {
    const pending = p.pending;
    if (!pending) return;
    this.originated.forEach((_t, addr, len) => pending.set(addr, len, this.exportAttrs(p, addr, len)));
    const learned = p.ibgp ? this.peers.some((x) => !x.ibgp) : this.opts.exportLearnedToEbgp !== false;
    if (learned)
      this.loc.forEach((_b, addr, len) => {
        if (this.originated.has(addr, len)) return;
        const e = this.exportAttrs(p, addr, len);
        if (e) pending.set(addr, len, e);
      });
  }

  /** ROUTE-REFRESH from `p`: everything in its Adj-RIB-Out is sent again. */
  refreshPeer(p: RibPeer): void {
    if (!p.adjOut || !p.pending) return;
    p.adjOut.forEach((s) => this.interner.unref(s));
    p.adjOut.clear();
    p.pending.clear();
    this.queueFullExport(p);
  }

  private clearExport(p: RibPeer): void {
    p.adjOut?.forEach((s) => this.interner.unref(s));
    p.adjOut = null;
    p.pending = null;
  }

  pendingCount(p: RibPeer): number {
    return p.pending ? p.pending.size : 0;
  }

  /**
   * Takes up to `max` queued changes for `p` and records them in its Adj-RIB-Out. Returns the
   * withdrawals and announcements grouped by attribute set, ready for `buildUpdates`.
   */
  takeUpdates(
    p: RibPeer,
    max = 50_000,
  ): { withdrawn: Prefix4[]; groups: { attrs: PathAttrs; prefixes: Prefix4[] }[] } {
    const withdrawn: Prefix4[] = [];
    const groups = new Map<AttrSet, Prefix4[]>();
    const adjOut = p.adjOut;
    if (!p.pending || !adjOut) return { withdrawn, groups: [] };
    p.pending.drain(max, (e, addr, len) => {
      const cur = adjOut.get(addr, len);
      if (e === null) {
        if (!cur) return;
        adjOut.delete(addr, len);
        this.interner.unref(cur);
        withdrawn.push({ addr, len });
      } else {
        if (cur === e) return;
        this.interner.ref(e);
        adjOut.set(addr, len, e);
        if (cur) this.interner.unref(cur);
        let g = groups.get(e);
        if (!g) groups.set(e, (g = []));
        g.push({ addr, len });
      }
    });
    return { withdrawn, groups: [...groups].map(([s, prefixes]) => ({ attrs: s.attrs, prefixes })) };
  }
}

function prependAs(path: PathAttrs['asPath'], asn: number): PathAttrs['asPath'] {
  const first = path[0];
  if (first && first.type === Seg.AS_SEQUENCE && first.asns.length < 255)
    return [{ type: Seg.AS_SEQUENCE, asns: [asn, ...first.asns] }, ...path.slice(1)];
  return [{ type: Seg.AS_SEQUENCE, asns: [asn] }, ...path];
}
