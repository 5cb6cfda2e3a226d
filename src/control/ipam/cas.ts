// IPAM over a Datastore with compare-and-swap, the way libcalico-go's ipam.go does it:
//  - claim a block for a node: affinity written `pending`, the block created with CAS on version 0
//    (two nodes can never both create it), the affinity then `confirmed`;
//  - assign: from the node's confirmed affine blocks first (one list of the affinities, the IPAM config
//    only read when they are full); the handle is incremented first (a new handle is created without
//    reading it first), then the block is written with CAS on its mod_revision (the handle is
//    decremented again when that fails). A block this client wrote last is kept with its mod_revision
//    and not read again before the next CAS on it: if anyone changed it since, the CAS fails and the
//    block is re-read (so a stale copy costs a retry, never a wrong answer);
//  - borrow from other nodes' blocks when the IPAMConfig's strictAffinity is off;
//  - release by handle; release a node's affinities (node delete);
//  - every conflict re-reads and retries, a bounded number of times; an ambiguous write (etcd did not
//    answer) re-reads and checks whether it applied before trying again.
// Control thread only. Pools are passed in by the caller (from the cluster config).
import { formatIp4, formatPrefix4, prefixContains, type Prefix4 } from '../../common/addr.js';
import { IpamError } from '../../common/errors.js';
import type { IPPool } from '../config/types.js';
import {
  affinityKey,
  BLOCKS_PREFIX,
  blockKey,
  handleKey,
  hostAffinityPrefix,
  IPAM_CONFIG_KEY,
  parseAffinityKey,
  parseBlockKey,
} from '../datastore/layout.js';
import { isDsError, type Datastore, type KV } from '../datastore/types.js';
import {
  assignOrdinals,
  blockHost,
  blockSize,
  cloneBlock,
  decodeAffinity,
  decodeBlock,
  decodeHandle,
  decodeIpamConfig,
  DEFAULT_IPAM_CONFIG,
  encodeAffinity,
  encodeBlock,
  encodeHandle,
  inUse,
  newBlock,
  releaseHandle,
  type AllocationBlock,
  type IpamConfig,
} from '../datastore/ipam-records.js';

export interface AssignRequest {
  handle: string;
  host: string;
  /** Calico's secondary attributes (node, namespace, pod / type) */
  attrs: Record<string, string>;
  /** candidate pools: enabled, and allowed for this use */
  pools: IPPool[];
  num?: number;
}

export interface CasIpamOptions {
  /** attempts per operation before giving up with `ipam-conflict` (default 20) */
  maxRetries?: number;
}

interface BlockKv {
  kv: KV;
  block: AllocationBlock;
}

function cidrText(p: Prefix4): string {
  return formatPrefix4(p);
}

/** Every block of a pool, starting at an offset derived from the host name (spreads nodes apart). */
function* poolBlocks(pool: IPPool, host: string): Generator<Prefix4> {
  const n = 2 ** (pool.blockSize - pool.cidr.len);
  let h = 0;
  for (const c of host) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  const start = h % n;
  const step = 2 ** (32 - pool.blockSize);
  for (let k = 0; k < n; k++) {
    const i = (start + k) % n;
    yield { addr: (pool.cidr.addr + i * step) >>> 0, len: pool.blockSize };
  }
}

export class CasIpam {
  private readonly maxRetries: number;
  /** counters for tests and the bench */
  readonly stats = { conflicts: 0, claims: 0, borrows: 0 };

  constructor(
    readonly ds: Datastore,
    opts: CasIpamOptions = {},
  ) {
    this.maxRetries = opts.maxRetries ?? 20;
  }

  async config(): Promise<IpamConfig> {
    const kv = await this.ds.get(IPAM_CONFIG_KEY);
    return kv === undefined ? { ...DEFAULT_IPAM_CONFIG } : decodeIpamConfig(kv.key, kv.value);
  }

  private async readBlock(cidr: Prefix4): Promise<BlockKv | undefined> {
    const kv = await this.ds.get(blockKey(cidr));
    return kv === undefined ? undefined : { kv, block: decodeBlock(kv.key, kv.value, cidr) };
  }

  /** Blocks as this client last wrote them (key → value and mod_revision); a CAS validates them. */
  private readonly written = new Map<string, BlockKv>();

  /** The node's confirmed affine blocks inside `pools`. */
  async affineBlocks(host: string, pools?: IPPool[]): Promise<Prefix4[]> {
    const { kvs } = await this.ds.list(hostAffinityPrefix(host));
    const out: Prefix4[] = [];
    for (const kv of kvs) {
      const id = parseAffinityKey(kv.key);
      if (!id) continue;
      let a;
      try {
        a = decodeAffinity(kv.key, kv.value);
      } catch {
        continue;
      }
      if (a.state !== 'confirmed' || a.deleted) continue;
      if (pools && !pools.some((p) => prefixContains(p.cidr, id.cidr.addr))) continue;
      out.push(id.cidr);
    }
    return out;
  }

  /** Adds `n` addresses in `cidr` to the handle (creates it); CAS with retries. */
  private async changeHandle(handle: string, cidr: Prefix4, n: number): Promise<void> {
    const key = handleKey(handle);
    const c = cidrText(cidr);
    if (n > 0) {
      // a new handle (a new workload) is the common case: create it without reading it first
      try {
        await this.ds.create(key, encodeHandle({ block: new Map([[c, n]]) }));
        return;
      } catch (e) {
        if (!isDsError(e, 'datastore-exists', 'datastore-unavailable')) throw e;
        // exists (or the outcome is unknown): read it and add to it below
        if (isDsError(e, 'datastore-unavailable')) {
          const now = await this.ds.get(key).catch(() => undefined);
          if (now !== undefined && now.version === 1 && decodeHandle(now.key, now.value).block.get(c) === n)
            return; // our create did apply
        }
      }
    }
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      const kv = await this.ds.get(key);
      try {
        if (kv === undefined) {
          if (n < 0) return;
          await this.ds.create(key, encodeHandle({ block: new Map([[c, n]]) }));
          return;
        }
        const h = decodeHandle(kv.key, kv.value);
        const v = (h.block.get(c) ?? 0) + n;
        if (v > 0) h.block.set(c, v);
        else h.block.delete(c);
        if (h.block.size === 0) await this.ds.delete(key, kv.modRevision);
        else await this.ds.update(key, encodeHandle(h), kv.modRevision);
        return;
      } catch (e) {
        if (
          !isDsError(
            e,
            'datastore-exists',
            'datastore-conflict',
            'datastore-not-found',
            'datastore-unavailable',
          )
        )
          throw e;
        this.stats.conflicts++;
      }
    }
    throw new IpamError(
      'ipam-conflict',
      `IPAM: handle ${handle}: kept changing; gave up after ${this.maxRetries} tries`,
    );
  }

  /**
   * Writes an updated block (CAS). Returns true when written, false on a conflict. An ambiguous
   * failure re-reads: if the stored block already holds what we wrote, the write did apply.
   */
  private async writeBlock(cur: BlockKv, next: AllocationBlock): Promise<boolean> {
    next.sequenceNumber = cur.block.sequenceNumber + 1n;
    const text = encodeBlock(next);
    const key = cur.kv.key;
    this.written.delete(key);
    try {
      const kv = await this.ds.update(key, text, cur.kv.modRevision);
      this.written.set(key, { kv: { ...kv, key, value: text }, block: next });
      return true;
    } catch (e) {
      if (isDsError(e, 'datastore-conflict', 'datastore-not-found')) {
        this.stats.conflicts++;
        return false;
      }
      if (!isDsError(e, 'datastore-unavailable')) throw e;
      const now = await this.ds.get(key).catch(() => undefined);
      if (now !== undefined && now.value === text) return true;
      this.stats.conflicts++;
      return false;
    }
  }

  /** Tries to take addresses from one block. Returns the addresses (empty when full or lost race). */
  private async tryBlock(
    cidr: Prefix4,
    req: AssignRequest,
    num: number,
    affinityCheck: boolean,
    ordinal?: number,
  ): Promise<number[] | 'conflict'> {
    const key = blockKey(cidr);
    const cached = this.written.get(key);
    const cur = cached ?? (await this.readBlock(cidr));
    // a copy of our own last write that says no (full, not ours): the store may say otherwise now
    const recheck = () => {
      this.written.delete(key);
      return this.tryBlock(cidr, req, num, affinityCheck, ordinal);
    };
    if (cur === undefined) return [];
    if (affinityCheck && blockHost(cur.block) !== req.host) return cached ? recheck() : [];
    const next = cloneBlock(cur.block);
    const secondary = new Map(Object.entries(req.attrs));
    const ords = assignOrdinals(next, num, req.handle, secondary, ordinal);
    if (ords.length === 0) return cached ? recheck() : [];
    await this.changeHandle(req.handle, cidr, ords.length);
    if (await this.writeBlock(cur, next)) return ords.map((o) => (cidr.addr + o) >>> 0);
    await this.changeHandle(req.handle, cidr, -ords.length);
    return 'conflict';
  }

  /**
   * Claims a free block of one of `pools` for `host` (pending affinity → block created → confirmed).
   * Returns its CIDR, or undefined when every block of every pool exists already.
   */
  async claimBlock(host: string, pools: IPPool[]): Promise<Prefix4 | undefined> {
    const { kvs } = await this.ds.list(BLOCKS_PREFIX);
    const taken = new Set(kvs.map((kv) => kv.key));
    for (const pool of pools) {
      for (const cidr of poolBlocks(pool, host)) {
        const bkey = blockKey(cidr);
        if (taken.has(bkey)) continue;
        const akey = affinityKey(host, cidr);
        let aff: KV;
        try {
          aff = await this.ds.create(akey, encodeAffinity({ state: 'pending' }));
        } catch (e) {
          if (!isDsError(e, 'datastore-exists')) throw e;
          const kv = await this.ds.get(akey);
          if (kv === undefined) continue;
          aff = kv;
        }
        try {
          await this.ds.create(bkey, encodeBlock(newBlock(cidr, host)));
        } catch (e) {
          if (!isDsError(e, 'datastore-exists', 'datastore-unavailable')) throw e;
          const b = await this.readBlock(cidr).catch(() => undefined);
          if (b === undefined || blockHost(b.block) !== host) {
            // someone else's block now: withdraw our pending claim
            taken.add(bkey);
            this.stats.conflicts++;
            await this.ds.delete(akey, aff.modRevision).catch(() => undefined);
            continue;
          }
        }
        await this.confirm(akey);
        this.stats.claims++;
        return cidr;
      }
    }
    return undefined;
  }

  private async confirm(akey: string): Promise<void> {
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      const kv = await this.ds.get(akey);
      const a = kv === undefined ? undefined : decodeAffinity(kv.key, kv.value);
      try {
        if (kv === undefined) await this.ds.create(akey, encodeAffinity({ state: 'confirmed' }));
        else if (a!.state === 'confirmed') return;
        else await this.ds.update(akey, encodeAffinity({ ...a!, state: 'confirmed' }), kv.modRevision);
        return;
      } catch (e) {
        if (
          !isDsError(
            e,
            'datastore-exists',
            'datastore-conflict',
            'datastore-not-found',
            'datastore-unavailable',
          )
        )
          throw e;
      }
    }
    throw new IpamError('ipam-conflict', `IPAM: ${akey}: could not confirm the affinity`);
  }

  /** Assigns `num` (default 1) addresses for a handle; throws `ipam-pool-full` when none is left. */
  async assign(req: AssignRequest): Promise<number[]> {
    return this.serial(() => this.assignNow(req));
  }

  /**
   * One IPAM operation at a time per client (Calico's CNI plugin holds a host-wide IPAM lock for the
   * same reason): concurrent requests of one node would only make each other's CAS fail.
   */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private queue: Promise<unknown> = Promise.resolve();

  /** A short random pause after a lost race, so racing nodes do not collide again in lockstep. */
  private backoff(attempt: number): Promise<void> {
    const ms = Math.random() * Math.min(50, 2 * 2 ** Math.min(attempt, 5));
    return new Promise((r) => setTimeout(r, ms));
  }

  private async assignNow(req: AssignRequest): Promise<number[]> {
    const want = req.num ?? 1;
    const got: number[] = [];
    let config: IpamConfig | undefined; // read only when the node's own blocks are not enough
    const pools = req.pools.filter((p) => !p.disabled);
    if (pools.length === 0)
      throw new IpamError('ipam-exhausted', `IPAM: node ${req.host}: no enabled IPv4 IPPool to assign from`);
    for (let attempt = 0; attempt < this.maxRetries && got.length < want; attempt++) {
      if (attempt > 0) await this.backoff(attempt);
      let conflict = false;
      // 1. this node's blocks
      for (const cidr of await this.affineBlocks(req.host, pools)) {
        const r = await this.tryBlock(cidr, req, want - got.length, true);
        if (r === 'conflict') {
          conflict = true;
          break;
        }
        got.push(...r);
        if (got.length >= want) return got;
      }
      if (conflict) continue;
      const cfg = (config ??= await this.config());
      // 2. a new block
      const mine = (await this.affineBlocks(req.host)).length;
      if (cfg.autoAllocateBlocks && (cfg.maxBlocksPerHost === 0 || mine < cfg.maxBlocksPerHost)) {
        if ((await this.claimBlock(req.host, pools)) !== undefined) continue;
      }
      // 3. borrow from any block with room
      if (!cfg.strictAffinity) {
        const { kvs } = await this.ds.list(BLOCKS_PREFIX);
        for (const kv of kvs) {
          const cidr = parseBlockKey(kv.key);
          if (!cidr || !pools.some((p) => prefixContains(p.cidr, cidr.addr))) continue;
          let b;
          try {
            b = decodeBlock(kv.key, kv.value, cidr);
          } catch {
            continue;
          }
          if (b.unallocated.length === 0) continue;
          const r = await this.tryBlock(cidr, req, want - got.length, false);
          if (r === 'conflict') {
            conflict = true;
            break;
          }
          this.stats.borrows += r.length;
          got.push(...r);
          if (got.length >= want) return got;
        }
        if (conflict) continue;
      }
      const names = pools.map((p) => `${p.name} (${formatPrefix4(p.cidr)})`).join(', ');
      throw new IpamError(
        'ipam-exhausted',
        `IPAM: node ${req.host}: no free address in IPPool ${names}` +
          (cfg.strictAffinity ? ' (strictAffinity: no borrowing from other nodes\u2019 blocks)' : ''),
      );
    }
    if (got.length >= want) return got;
    throw new IpamError(
      'ipam-conflict',
      `IPAM: node ${req.host}: handle ${req.handle}: too many conflicts; gave up after ${this.maxRetries} tries`,
    );
  }

  /** Assigns exactly `ip` (calitap workload add --ip): `ip-in-use` when taken. */
  async assignIp(ip: number, req: AssignRequest): Promise<void> {
    return this.serial(() => this.assignIpNow(ip, req));
  }

  private async assignIpNow(ip: number, req: AssignRequest): Promise<void> {
    const pool = req.pools.find((p) => prefixContains(p.cidr, ip));
    if (!pool) throw new IpamError('ip-outside-pools', `IPAM: ${formatIp4(ip)} is outside every IP pool`);
    const cidr = { addr: (ip - (ip % 2 ** (32 - pool.blockSize))) >>> 0, len: pool.blockSize };
    for (let attempt = 0; attempt < this.maxRetries; attempt++) {
      if ((await this.readBlock(cidr)) === undefined) {
        // the block does not exist: claim it for this host, or create it without affinity
        try {
          await this.ds.create(blockKey(cidr), encodeBlock(newBlock(cidr, null)));
        } catch (e) {
          if (!isDsError(e, 'datastore-exists', 'datastore-unavailable')) throw e;
        }
        continue;
      }
      const r = await this.tryBlock(cidr, req, 1, false, ip - cidr.addr);
      if (r === 'conflict') continue;
      if (r.length === 0) throw new IpamError('ip-in-use', `IPAM: ${formatIp4(ip)} is already assigned`);
      return;
    }
    throw new IpamError('ipam-conflict', `IPAM: ${formatIp4(ip)}: too many conflicts`);
  }

  /** Releases every address of a handle and deletes the handle. Returns the addresses freed. */
  async releaseHandle(handle: string): Promise<number[]> {
    return this.serial(() => this.releaseHandleNow(handle));
  }

  private async releaseHandleNow(handle: string): Promise<number[]> {
    const kv = await this.ds.get(handleKey(handle));
    if (kv === undefined) return [];
    const h = decodeHandle(kv.key, kv.value);
    const freed: number[] = [];
    for (const c of h.block.keys()) {
      const cidr = parseBlockKey(BLOCKS_PREFIX + c.replace('/', '-'));
      if (!cidr) continue;
      for (let attempt = 0; ; attempt++) {
        if (attempt >= this.maxRetries)
          throw new IpamError('ipam-conflict', `IPAM: handle ${handle}: block ${c} kept changing`);
        const cur = await this.readBlock(cidr);
        if (cur === undefined) break;
        const next = cloneBlock(cur.block);
        const ords = releaseHandle(next, handle);
        if (ords.length === 0) break;
        if (await this.writeBlock(cur, next)) {
          freed.push(...ords.map((o) => (cidr.addr + o) >>> 0));
          break;
        }
      }
    }
    await this.ds.delete(kv.key).catch((e: unknown) => {
      if (!isDsError(e, 'datastore-not-found')) throw e;
    });
    return freed;
  }

  /**
   * Removes a node from IPAM (calicoctl delete node): releases every address whose attributes name
   * the node (its workloads, its tunnel addresses, what it borrowed), then its affinities, deleting
   * its blocks once empty (a block still holding others' addresses loses its affinity instead).
   */
  async releaseHost(host: string): Promise<{ addresses: number; blocks: number }> {
    return this.serial(() => this.releaseHostNow(host));
  }

  private async releaseHostNow(host: string): Promise<{ addresses: number; blocks: number }> {
    let addresses = 0;
    const { kvs } = await this.ds.list(BLOCKS_PREFIX);
    const handles = new Set<string>();
    for (const kv of kvs) {
      let b;
      try {
        b = decodeBlock(kv.key, kv.value);
      } catch {
        continue;
      }
      for (const a of b.allocations) {
        if (a === null) continue;
        const at = b.attributes[a];
        if (at.secondary?.get('node') === host && at.handle !== null) handles.add(at.handle);
      }
    }
    for (const h of handles) addresses += (await this.releaseHandleNow(h)).length;
    let blocks = 0;
    const affs = await this.ds.list(hostAffinityPrefix(host));
    for (const kv of affs.kvs) {
      const id = parseAffinityKey(kv.key);
      if (!id) continue;
      await this.ds
        .update(kv.key, encodeAffinity({ state: 'pendingDeletion' }), kv.modRevision)
        .catch(() => undefined);
      for (let attempt = 0; attempt < this.maxRetries; attempt++) {
        const cur = await this.readBlock(id.cidr);
        if (cur === undefined || blockHost(cur.block) !== host) break;
        try {
          this.written.delete(cur.kv.key);
          if (inUse(cur.block) === 0) await this.ds.delete(cur.kv.key, cur.kv.modRevision);
          else {
            const next = cloneBlock(cur.block);
            next.affinity = null;
            if (!(await this.writeBlock(cur, next))) continue;
          }
          blocks++;
          break;
        } catch (e) {
          if (!isDsError(e, 'datastore-conflict', 'datastore-not-found', 'datastore-unavailable')) throw e;
        }
      }
      await this.ds.delete(kv.key).catch(() => undefined);
    }
    return { addresses, blocks };
  }

  /** Every block with its usage (ipam show). */
  async blocks(): Promise<{ block: AllocationBlock; bad?: string }[]> {
    const { kvs } = await this.ds.list(BLOCKS_PREFIX);
    const out: { block: AllocationBlock; bad?: string }[] = [];
    for (const kv of kvs) {
      try {
        out.push({ block: decodeBlock(kv.key, kv.value, parseBlockKey(kv.key)) });
      } catch {
        /* bad data: ipam show skips it */
      }
    }
    return out;
  }
}

export { blockSize };
