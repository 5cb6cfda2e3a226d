// Differential test of the CAS IPAM (src/control/ipam/cas.ts) against a naive model: a set of
// address → handle, block owners, and libcalico-go's order of preference (own blocks, then a new
// block, then borrowing when strictAffinity is off). Between the IPAM's read and its write the test
// injects what other nodes do: a block rewritten under it (CAS conflict), a block claimed first by
// another node, a handle touched, an etcd write whose answer is lost after it applied. Whatever the
// interleaving, addresses stay distinct, the store agrees with the model, and a pool is only reported
// full when the model says it is.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CasIpam } from '../../src/control/ipam/cas.js';
import { MemoryDatastore } from '../../src/control/datastore/memory.js';
import {
  BLOCKS_PREFIX,
  HANDLES_PREFIX,
  IPAM_CONFIG_KEY,
  parseBlockKey,
  blockKey,
  AFFINITY_PREFIX,
  parseAffinityKey,
} from '../../src/control/datastore/layout.js';
import {
  decodeBlock,
  decodeHandle,
  encodeBlock,
  newBlock,
  decodeAffinity,
  blockHost,
} from '../../src/control/datastore/ipam-records.js';
import { CalitapError } from '../../src/common/errors.js';
import type { IPPool } from '../../src/control/config/types.js';

const POOL: IPPool = {
  name: 'p',
  cidr: { addr: 0x0a000000, len: 26 }, // 10.0.0.0/26: 8 blocks of 8
  blockSize: 29,
  ipipMode: 'Never',
  vxlanMode: 'Never',
  natOutgoing: false,
  disabled: false,
  disableBGPExport: false,
};
const HOSTS = ['h1', 'h2', 'h3'];
const blockOf = (ip: number) => (ip & ~7) >>> 0;

type Inject = 'none' | 'rewrite' | 'claim' | 'lost' | 'handle';
type Op =
  | { t: 'assign'; host: number; inject: Inject }
  | { t: 'release'; pick: number; inject: Inject }
  | { t: 'strict'; on: boolean };

const inject = fc.constantFrom<Inject>('none', 'none', 'rewrite', 'claim', 'lost', 'handle');
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ t: fc.constant('assign' as const), host: fc.integer({ min: 0, max: 2 }), inject }),
  },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('release' as const), pick: fc.nat(), inject }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('strict' as const), on: fc.boolean() }) },
);

async function runOps(ops: Op[]): Promise<void> {
  const ds = new MemoryDatastore();
  const ipam = new CasIpam(ds, { maxRetries: 50 });
  // the model
  const owner = new Map<number, string>(); // block addr → host ('intruder' for other nodes)
  const held = new Map<string, number>(); // handle → ip
  const ipOf = new Set<number>();
  let strict = false;
  let n = 0;
  let armed: Inject = 'none';

  ds.hooks.beforeWrite = (kind, key) => {
    if (armed === 'none') return;
    if (armed === 'rewrite' && kind === 'update' && key.startsWith(BLOCKS_PREFIX)) {
      armed = 'none';
      const kv = ds.getSync(key)!;
      const b = decodeBlock(key, kv.value);
      b.sequenceNumber += 7n; // another writer changed something else in the block
      ds.putSync(key, encodeBlock(b));
    } else if (armed === 'claim' && kind === 'create' && key.startsWith(BLOCKS_PREFIX)) {
      armed = 'none';
      const cidr = parseBlockKey(key)!;
      ds.createSync(key, encodeBlock(newBlock(cidr, 'intruder')));
      owner.set(cidr.addr, 'intruder');
    } else if (armed === 'handle' && key.startsWith(HANDLES_PREFIX) && kind === 'update') {
      armed = 'none';
      const kv = ds.getSync(key)!;
      ds.putSync(key, kv.value);
    }
  };
  ds.hooks.failWrite = (kind, key) => {
    if (armed === 'lost' && kind === 'update' && key.startsWith(BLOCKS_PREFIX)) {
      armed = 'none';
      return 'after';
    }
    return false;
  };

  for (const o of ops) {
    if (o.t === 'strict') {
      strict = o.on;
      ds.putSync(IPAM_CONFIG_KEY, JSON.stringify({ strict_affinity: strict, auto_allocate_blocks: true }));
      continue;
    }
    if (o.t === 'release') {
      const hs = [...held.keys()];
      if (hs.length === 0) continue;
      const h = hs[o.pick % hs.length];
      armed = o.inject;
      const freed = await ipam.releaseHandle(h);
      armed = 'none';
      expect(freed).toEqual([held.get(h)]);
      ipOf.delete(held.get(h)!);
      held.delete(h);
      continue;
    }
    const host = HOSTS[o.host];
    const handle = `w${n++}`;
    // what the model allows, in libcalico-go's order
    const blocks = Array.from({ length: 8 }, (_, i) => (POOL.cidr.addr + i * 8) >>> 0);
    const free = (b: number) =>
      Array.from({ length: 8 }, (_, k) => b + k).filter((ip) => !ipOf.has(ip)).length;
    const ownRoom = blocks.some((b) => owner.get(b) === host && free(b) > 0);
    const unowned = blocks.some((b) => !owner.has(b));
    const anyRoom = blocks.some((b) => free(b) > 0);
    armed = o.inject;
    let ip: number | undefined;
    try {
      [ip] = await ipam.assign({ handle, host, attrs: { node: host }, pools: [POOL] });
    } catch (e) {
      if (!(e instanceof CalitapError) || e.code !== 'ipam-exhausted') throw e;
    }
    const injectedClaim = armed === 'none' && o.inject === 'claim';
    armed = 'none';
    if (ip === undefined) {
      // full is only right when the model has no room for this host (an injected claim may have
      // taken the last unowned block)
      expect(ownRoom).toBe(false);
      expect(blocks.some((b) => !owner.has(b))).toBe(false);
      if (!strict) expect(anyRoom).toBe(false);
      continue;
    }
    expect(ipOf.has(ip)).toBe(false);
    expect(ip >= POOL.cidr.addr && ip < POOL.cidr.addr + 64).toBe(true);
    const b = blockOf(ip);
    const was = owner.get(b);
    if (was === undefined) {
      expect(ownRoom).toBe(false); // a new block only when our own are full
      owner.set(b, host);
    } else if (was !== host) {
      expect(strict).toBe(false); // borrowing only without strict affinity
      expect(ownRoom).toBe(false);
      if (!injectedClaim) expect(unowned).toBe(false);
    }
    ipOf.add(ip);
    held.set(handle, ip);
  }

  // the store agrees with the model
  const stored = new Map<number, string>();
  for (const kv of ds.listSync(BLOCKS_PREFIX).kvs) {
    const b = decodeBlock(kv.key, kv.value, parseBlockKey(kv.key));
    expect(blockHost(b)).toBe(owner.get(b.cidr.addr));
    b.allocations.forEach((a, o) => {
      if (a !== null) stored.set(b.cidr.addr + o, b.attributes[a].handle!);
    });
    expect(b.unallocated.length + b.allocations.filter((a) => a !== null).length).toBe(8);
  }
  expect(new Map([...stored].map(([ip, h]) => [h, ip]))).toEqual(held);
  const handles = new Map(
    ds
      .listSync(HANDLES_PREFIX)
      .kvs.map((kv) => [kv.key.slice(HANDLES_PREFIX.length), decodeHandle(kv.key, kv.value)]),
  );
  expect([...handles.keys()].sort()).toEqual([...held.keys()].sort());
  for (const [h, ip] of held) expect(handles.get(h)!.block.get(`10.0.0.${blockOf(ip) & 255}/29`)).toBe(1);
  // every host's confirmed affinity names a block it owns; no block has two owners
  for (const kv of ds.listSync(AFFINITY_PREFIX).kvs) {
    const id = parseAffinityKey(kv.key)!;
    const a = decodeAffinity(kv.key, kv.value);
    if (a.state === 'confirmed') expect(owner.get(id.cidr.addr)).toBe(id.host);
  }
}

describe('CAS IPAM vs a naive model', () => {
  it('stays consistent under injected conflicts', async () => {
    await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 60 }), runOps), {
      numRuns: 150,
    });
  });

  it('fills a pool exactly, then reports it full; two hosts never share a block', async () => {
    const ds = new MemoryDatastore();
    const a = new CasIpam(ds);
    const b = new CasIpam(ds);
    const got = await Promise.all(
      Array.from({ length: 64 }, (_, i) =>
        (i % 2 ? a : b).assign({
          handle: `x${i}`,
          host: `h${i % 2}`,
          attrs: { node: `h${i % 2}` },
          pools: [POOL],
        }),
      ),
    );
    expect(new Set(got.flat()).size).toBe(64);
    await expect(a.assign({ handle: 'y', host: 'h0', attrs: {}, pools: [POOL] })).rejects.toThrow(
      /no free address in IPPool p \(10.0.0.0\/26\)/,
    );
    for (const kv of ds.listSync(BLOCKS_PREFIX).kvs) {
      const blk = decodeBlock(kv.key, kv.value);
      const hosts = new Set(
        blk.allocations.map((x) => (x === null ? '' : blk.attributes[x].secondary?.get('node'))),
      );
      expect(hosts.size).toBe(1);
    }
    expect(ds.listSync(BLOCKS_PREFIX).kvs.map((kv) => kv.key)).toContain(
      blockKey({ addr: 0x0a000000, len: 29 }),
    );
  });

  it('releases a node: its addresses, borrowed ones included, its affinities and empty blocks', async () => {
    const ds = new MemoryDatastore();
    const ipam = new CasIpam(ds);
    for (let i = 0; i < 10; i++)
      await ipam.assign({ handle: `a${i}`, host: 'h1', attrs: { node: 'h1' }, pools: [POOL] });
    await ipam.assign({ handle: 'b0', host: 'h2', attrs: { node: 'h2' }, pools: [POOL] });
    const r = await ipam.releaseHost('h1');
    expect(r.addresses).toBe(10);
    expect(ds.listSync('/calico/ipam/v2/host/h1/').kvs).toEqual([]);
    expect(ds.listSync(HANDLES_PREFIX).kvs.map((kv) => kv.key)).toEqual([HANDLES_PREFIX + 'b0']);
    expect(ds.listSync(BLOCKS_PREFIX).kvs).toHaveLength(1);
  });
});
