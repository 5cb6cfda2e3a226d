// Calico's IPAM records as stored in etcd (libcalico-go lib/backend/model: block.go AllocationBlock,
// block_affinity.go BlockAffinity, ipam_handle.go IPAMHandle, ipam_config.go IPAMConfig): decode with
// checks (a block whose allocations contradict its size is bad data), operate (assign ordinals,
// release them), encode in Go's field order. Decoding keeps the parsed object, so fields this code does
// not know (newer or older Calico versions) survive a rewrite in their place; sequence numbers are
// uint64 and stay bigint end to end. Control thread; pure functions over plain records.
import { formatPrefix4, parsePrefix4, type Prefix4 } from '../../common/addr.js';
import { DatastoreError } from '../../common/errors.js';
import { GoMap, isObject, parseJson, stringifyGo, type Json, type JsonObject } from './json.js';

export interface AllocationAttribute {
  handle: string | null;
  secondary: Map<string, string> | null;
  /** the parsed attribute object (unknown fields kept) */
  raw: JsonObject;
}

export interface AllocationBlock {
  cidr: Prefix4;
  /** "host:<node>" or null */
  affinity: string | null;
  /** per ordinal: index into attributes, or null when free */
  allocations: (number | null)[];
  unallocated: number[];
  attributes: AllocationAttribute[];
  sequenceNumber: bigint;
  sequenceNumberForAllocation: Map<string, bigint>;
  deleted: boolean;
  /** the parsed object this block came from (unknown fields kept on encode) */
  raw: JsonObject;
}

export type AffinityState = 'pending' | 'confirmed' | 'pendingDeletion';

export interface AffinityValue {
  state: AffinityState;
  deleted: boolean;
  raw: JsonObject;
}

export interface IpamHandle {
  /** block CIDR text → addresses this handle holds there */
  block: Map<string, number>;
  deleted: boolean;
  raw: JsonObject;
}

export interface IpamConfig {
  strictAffinity: boolean;
  autoAllocateBlocks: boolean;
  maxBlocksPerHost: number;
}

export const DEFAULT_IPAM_CONFIG: Readonly<IpamConfig> = Object.freeze({
  strictAffinity: false,
  autoAllocateBlocks: true,
  maxBlocksPerHost: 0,
});

function bad(key: string, why: string): never {
  throw new DatastoreError('datastore-invalid', `${key}: ${why}`);
}

function parseObj(key: string, text: string): JsonObject {
  let v: Json;
  try {
    v = parseJson(text);
  } catch (e) {
    bad(key, `value is not JSON: ${(e as Error).message}`);
  }
  if (!isObject(v)) bad(key, 'value is not a JSON object');
  return v;
}

function toBig(v: Json | undefined): bigint | null {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  return null;
}

export function blockSize(b: { cidr: Prefix4 }): number {
  return 2 ** (32 - b.cidr.len);
}

/** "host:<node>" → node, else undefined. */
export function blockHost(b: { affinity: string | null }): string | undefined {
  return b.affinity !== null && b.affinity.startsWith('host:') ? b.affinity.slice(5) : undefined;
}

export function decodeBlock(key: string, text: string, expect?: Prefix4): AllocationBlock {
  const o = parseObj(key, text);
  const cidrText = o.cidr;
  const p = typeof cidrText === 'string' ? parsePrefix4(cidrText, true) : null;
  if (p === null) bad(key, `cidr ${JSON.stringify(cidrText)}: not an IPv4 CIDR`);
  const cidr = { addr: p.addr, len: p.len };
  if (expect && (expect.addr !== cidr.addr || expect.len !== cidr.len))
    bad(key, `cidr ${cidrText}: does not match the key`);
  const size = 2 ** (32 - cidr.len);
  if (o.affinity !== null && o.affinity !== undefined && typeof o.affinity !== 'string')
    bad(key, 'affinity: not a string');
  const allocs = o.allocations;
  if (!Array.isArray(allocs)) bad(key, 'allocations: not a list');
  if (allocs.length !== size)
    bad(key, `allocations: ${allocs.length} entries contradict the block size ${size} (${cidrText})`);
  const attrsIn = o.attributes ?? [];
  if (!Array.isArray(attrsIn)) bad(key, 'attributes: not a list');
  const attributes: AllocationAttribute[] = attrsIn.map((a, i) => {
    if (!isObject(a)) bad(key, `attributes[${i}]: not an object`);
    const h = a.handle_id;
    if (h !== null && h !== undefined && typeof h !== 'string')
      bad(key, `attributes[${i}].handle_id: not a string`);
    let secondary: Map<string, string> | null = null;
    if (isObject(a.secondary)) {
      secondary = new Map();
      for (const [k, v] of Object.entries(a.secondary)) secondary.set(k, String(v));
    }
    return { handle: typeof h === 'string' ? h : null, secondary, raw: a };
  });
  const allocations = allocs.map((x, i) => {
    if (x === null) return null;
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x >= attributes.length)
      bad(key, `allocations[${i}]: ${String(x)} is not an attribute index (have ${attributes.length})`);
    return x;
  });
  const unIn = o.unallocated ?? [];
  if (!Array.isArray(unIn)) bad(key, 'unallocated: not a list');
  const unallocated = unIn.map((x, i) => {
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x >= size)
      bad(key, `unallocated[${i}]: ${String(x)} is outside the block (size ${size})`);
    if (allocations[x] !== null) bad(key, `unallocated[${i}]: ordinal ${x} is also allocated`);
    return x;
  });
  const seq = o.sequenceNumber === undefined ? 0n : toBig(o.sequenceNumber);
  if (seq === null || seq < 0n) bad(key, `sequenceNumber: ${String(o.sequenceNumber)} is not a uint64`);
  const sfa = new Map<string, bigint>();
  if (isObject(o.sequenceNumberForAllocation))
    for (const [k, v] of Object.entries(o.sequenceNumberForAllocation)) {
      const n = toBig(v);
      if (n === null) bad(key, `sequenceNumberForAllocation.${k}: not a uint64`);
      sfa.set(k, n);
    }
  return {
    cidr,
    affinity: typeof o.affinity === 'string' ? o.affinity : null,
    allocations,
    unallocated,
    attributes,
    sequenceNumber: seq,
    sequenceNumberForAllocation: sfa,
    deleted: o.deleted === true,
    raw: o,
  };
}

const BLOCK_ORDER = [
  'cidr',
  'affinity',
  'allocations',
  'unallocated',
  'attributes',
  'sequenceNumber',
  'sequenceNumberForAllocation',
  'deleted',
];

/** Overwrites the known fields of `raw` in place (order kept), appending missing ones in Go order. */
function merge(raw: JsonObject, fields: JsonObject, order: readonly string[]): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(raw)) out[k] = k in fields ? fields[k] : v;
  for (const k of order) if (!(k in out)) out[k] = fields[k];
  return out;
}

export function encodeBlock(b: AllocationBlock): string {
  const sfa = new GoMap();
  for (const [k, v] of b.sequenceNumberForAllocation) sfa.set(k, v);
  const attributes: Json[] = b.attributes.map((a) => {
    let secondary: Json = null;
    if (a.secondary !== null) {
      const m = new GoMap();
      for (const [k, v] of a.secondary) m.set(k, v);
      secondary = m;
    }
    return merge(a.raw, { handle_id: a.handle, secondary }, ['handle_id', 'secondary']);
  });
  const fields: JsonObject = {
    cidr: formatPrefix4(b.cidr),
    affinity: b.affinity,
    allocations: b.allocations,
    unallocated: b.unallocated,
    attributes,
    sequenceNumber: b.sequenceNumber,
    sequenceNumberForAllocation: sfa,
    deleted: b.deleted,
  };
  return stringifyGo(merge(b.raw, fields, BLOCK_ORDER));
}

/** A new empty block as libcalico-go's newBlock makes it: every ordinal unallocated, in order. */
export function newBlock(cidr: Prefix4, host: string | null): AllocationBlock {
  const size = 2 ** (32 - cidr.len);
  return {
    cidr,
    affinity: host === null ? null : `host:${host}`,
    allocations: new Array<number | null>(size).fill(null),
    unallocated: Array.from({ length: size }, (_, i) => i),
    attributes: [],
    sequenceNumber: 0n,
    sequenceNumberForAllocation: new Map(),
    deleted: false,
    raw: {},
  };
}

export function cloneBlock(b: AllocationBlock): AllocationBlock {
  return {
    ...b,
    allocations: [...b.allocations],
    unallocated: [...b.unallocated],
    attributes: b.attributes.map((a) => ({ ...a, secondary: a.secondary && new Map(a.secondary) })),
    sequenceNumberForAllocation: new Map(b.sequenceNumberForAllocation),
  };
}

function sameAttrs(a: AllocationAttribute, handle: string | null, sec: Map<string, string> | null): boolean {
  if (a.handle !== handle) return false;
  if ((a.secondary === null) !== (sec === null)) return false;
  if (a.secondary === null || sec === null) return true;
  if (a.secondary.size !== sec.size) return false;
  for (const [k, v] of sec) if (a.secondary.get(k) !== v) return false;
  return true;
}

/**
 * Takes up to `num` free ordinals (or exactly `ordinal`) for `handle` (block.go autoAssign /
 * assign): lowest-listed unallocated first, one shared attribute entry, sequence numbers recorded.
 * Returns the ordinals taken; mutates `b`.
 */
export function assignOrdinals(
  b: AllocationBlock,
  num: number,
  handle: string | null,
  secondary: Map<string, string> | null,
  ordinal?: number,
): number[] {
  let take: number[];
  if (ordinal !== undefined) {
    if (b.allocations[ordinal] !== null) return [];
    take = [ordinal];
    b.unallocated = b.unallocated.filter((o) => o !== ordinal);
  } else {
    take = b.unallocated.slice(0, num);
    b.unallocated = b.unallocated.slice(take.length);
  }
  if (take.length === 0) return take;
  let idx = b.attributes.findIndex((a) => sameAttrs(a, handle, secondary));
  if (idx < 0) {
    idx = b.attributes.length;
    b.attributes.push({ handle, secondary, raw: {} });
  }
  for (const o of take) {
    b.allocations[o] = idx;
    b.sequenceNumberForAllocation.set(String(o), b.sequenceNumber);
  }
  return take;
}

/** Frees every ordinal held by `handle`; drops attribute entries nobody uses. Returns the ordinals. */
export function releaseHandle(b: AllocationBlock, handle: string): number[] {
  const freed: number[] = [];
  b.allocations.forEach((a, o) => {
    if (a !== null && b.attributes[a]?.handle === handle) freed.push(o);
  });
  releaseOrdinals(b, freed);
  return freed;
}

export function releaseOrdinals(b: AllocationBlock, ordinals: number[]): void {
  for (const o of ordinals) {
    if (b.allocations[o] === null) continue;
    b.allocations[o] = null;
    b.unallocated.push(o);
    b.sequenceNumberForAllocation.delete(String(o));
  }
  // compact the attribute list, as libcalico-go's deleteAttributes does
  const used = new Set(b.allocations.filter((a): a is number => a !== null));
  const remap = new Map<number, number>();
  const kept: AllocationAttribute[] = [];
  b.attributes.forEach((a, i) => {
    if (!used.has(i)) return;
    remap.set(i, kept.length);
    kept.push(a);
  });
  b.attributes = kept;
  b.allocations = b.allocations.map((a) => (a === null ? null : (remap.get(a) as number)));
}

export function inUse(b: AllocationBlock): number {
  return b.allocations.reduce<number>((n, a) => n + (a === null ? 0 : 1), 0);
}

export function decodeAffinity(key: string, text: string): AffinityValue {
  const o = parseObj(key, text);
  const s = o.state;
  if (s !== 'pending' && s !== 'confirmed' && s !== 'pendingDeletion')
    bad(key, `state ${JSON.stringify(s)}: not pending, confirmed or pendingDeletion`);
  return { state: s, deleted: o.deleted === true || o.deleted === 'true', raw: o };
}

export function encodeAffinity(a: { state: AffinityState; deleted?: boolean; raw?: JsonObject }): string {
  return stringifyGo(
    merge(a.raw ?? {}, { state: a.state, deleted: a.deleted ?? false }, ['state', 'deleted']),
  );
}

export function decodeHandle(key: string, text: string): IpamHandle {
  const o = parseObj(key, text);
  const block = new Map<string, number>();
  if (isObject(o.block))
    for (const [k, v] of Object.entries(o.block)) {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) bad(key, `block.${k}: not a count`);
      block.set(k, v);
    }
  return { block, deleted: o.deleted === true, raw: o };
}

export function encodeHandle(h: { block: Map<string, number>; deleted?: boolean; raw?: JsonObject }): string {
  const m = new GoMap();
  for (const [k, v] of h.block) m.set(k, v);
  return stringifyGo(merge(h.raw ?? {}, { block: m, deleted: h.deleted ?? false }, ['block', 'deleted']));
}

export function decodeIpamConfig(key: string, text: string): IpamConfig {
  const o = parseObj(key, text);
  const max = o.maxBlocksPerHost;
  return {
    strictAffinity: o.strict_affinity === true,
    autoAllocateBlocks: o.auto_allocate_blocks === undefined ? true : o.auto_allocate_blocks === true,
    maxBlocksPerHost: typeof max === 'number' && Number.isInteger(max) && max > 0 ? max : 0,
  };
}

/** IPAMConfig as Go writes it: every field omitempty. */
export function encodeIpamConfig(c: IpamConfig): string {
  const o: JsonObject = {};
  if (c.strictAffinity) o.strict_affinity = true;
  if (c.autoAllocateBlocks) o.auto_allocate_blocks = true;
  if (c.maxBlocksPerHost > 0) o.maxBlocksPerHost = c.maxBlocksPerHost;
  return stringifyGo(o);
}
