// Serialises the compiler's state (compile.ts) into the dataplane's bank image
// (dataplane/tables/policy/layout.ts): header, endpoint table, membership rows, the IP -> endpoint
// hash, wide endpoint networks, named ports, the rule blocks programs use, and the programs. Built
// into a reusable control-side buffer first, so its size is known (and checked against the bank)
// before any shared word is written. Control thread only.
import { maskOf } from '../../common/addr.js';
import { hashIp } from '../../dataplane/tables/policy/eval.js';
import {
  EPF_LOCAL,
  EPF_USED,
  EP_FLAGS,
  EP_NPORTS,
  EP_PORTS,
  EP_PROG,
  EP_WORDS,
  HEADER_WORDS,
  H_EP_COUNT,
  H_EP_TABLE,
  H_HASH,
  H_HASH_MASK,
  H_MAGIC,
  H_MAX_STEPS,
  H_NETS,
  H_NETS_COUNT,
  H_ROWS,
  H_ROW_WORDS,
  H_SIZE,
  POLICY_MAGIC,
} from '../../dataplane/tables/policy/layout.js';
import { ALLOW_ALL_BLOCK } from './rules.js';
import { NAMESPACE_PROFILE_PREFIX } from './types.js';
import type { PolicyCompiler, Program } from './compile.js';

const EMPTY_BLOCK = new Int32Array(1);

/** A growable Int32 buffer, reused between images. */
export class ImageBuffer {
  buf = new Int32Array(1 << 16);
  len = 0;

  reset(): void {
    this.len = 0;
  }

  /** Reserves n words (zeroed) and returns their offset. */
  reserve(n: number): number {
    const at = this.len;
    const need = at + n;
    if (need > this.buf.length) {
      let size = this.buf.length;
      while (size < need) size *= 2;
      const b = new Int32Array(size);
      b.set(this.buf.subarray(0, at));
      this.buf = b;
    }
    this.buf.fill(0, at, need);
    this.len = need;
    return at;
  }

  append(words: Int32Array): number {
    const at = this.reserve(words.length);
    this.buf.set(words, at);
    return at;
  }

  push(v: number): void {
    this.buf[this.reserve(1)] = v;
  }

  get words(): Int32Array {
    return this.buf.subarray(0, this.len);
  }
}

/** Builds the image of `c` into `out` (reset first); returns the image words (a view of `out`). */
export function buildImage(c: PolicyCompiler, out: ImageBuffer): Int32Array {
  out.reset();
  const h = out.reserve(HEADER_WORDS);
  const slots = c.slotCount;
  const W = c.words;
  // endpoint table and rows
  const epTable = out.reserve(slots * EP_WORDS);
  const rows = out.reserve(slots * W);
  out.buf.set(c.rows.subarray(0, slots * W), rows);
  // the IP -> endpoint hash (exact /32s) and the wider networks (most specific first)
  let n32 = 0;
  const wide: { addr: number; len: number; slot: number }[] = [];
  for (let s = 0; s < slots; s++) {
    const st = c.slot(s);
    if (st === null) continue;
    for (const n of st.ep.ipNetworks) {
      if (n.len === 32) n32++;
      else wide.push({ addr: n.addr, len: n.len, slot: s });
    }
  }
  let pairs = 16;
  while (pairs < 2 * n32) pairs *= 2;
  const hash = out.reserve(2 * pairs);
  for (let k = 0; k < pairs; k++) out.buf[hash + 2 * k + 1] = -1;
  const mask = pairs - 1;
  for (let s = 0; s < slots; s++) {
    const st = c.slot(s);
    if (st === null) continue;
    for (const n of st.ep.ipNetworks) {
      if (n.len !== 32) continue;
      const key = n.addr | 0;
      let i = hashIp(key) & mask;
      // a duplicate address keeps its first owner (config loading refuses duplicates)
      while (out.buf[hash + 2 * i + 1] !== -1 && out.buf[hash + 2 * i] !== key) i = (i + 1) & mask;
      if (out.buf[hash + 2 * i + 1] !== -1) continue;
      out.buf[hash + 2 * i] = key;
      out.buf[hash + 2 * i + 1] = s;
    }
  }
  wide.sort((a, b) => b.len - a.len || a.addr - b.addr);
  const nets = out.reserve(3 * wide.length);
  wide.forEach((n, k) => {
    out.buf[nets + 3 * k] = (n.addr & maskOf(n.len)) | 0;
    out.buf[nets + 3 * k + 1] = maskOf(n.len) | 0;
    out.buf[nets + 3 * k + 2] = n.slot;
  });
  // per endpoint: flags, named ports; programs for local ones
  const blocks = new Map<Int32Array, number>();
  const blockAt = (b: Int32Array): number => {
    let at = blocks.get(b);
    if (at === undefined) {
      at = out.append(b);
      blocks.set(b, at);
    }
    return at;
  };
  for (let s = 0; s < slots; s++) {
    const e = epTable + s * EP_WORDS;
    const st = c.slot(s);
    out.buf[e + EP_PROG] = -1;
    out.buf[e + EP_PROG + 1] = -1;
    if (st === null) continue;
    out.buf[e + EP_FLAGS] = EPF_USED | (st.local ? EPF_LOCAL : 0);
    // named ports some rule names (no array per endpoint: this runs for every endpoint)
    const eps = st.ep.ports;
    let named = 0;
    for (let k = 0; k < eps.length; k++) if (c.portNameId(eps[k].name) >= 0) named++;
    if (named > 0) {
      const at = out.reserve(3 * named);
      let j = at;
      for (let k = 0; k < eps.length; k++) {
        const id = c.portNameId(eps[k].name);
        if (id < 0) continue;
        out.buf[j] = id;
        out.buf[j + 1] = eps[k].protocol;
        out.buf[j + 2] = eps[k].port;
        j += 3;
      }
      out.buf[e + EP_PORTS] = at;
      out.buf[e + EP_NPORTS] = named;
    }
    if (!st.local) continue;
    for (let d = 0; d < 2; d++) {
      const prog = c.program(st, d);
      out.buf[e + EP_PROG + d] = writeProgram(c, prog, d, out, blockAt);
    }
  }
  const b = out.buf;
  b[h + H_MAGIC] = POLICY_MAGIC;
  b[h + H_EP_COUNT] = slots;
  b[h + H_EP_TABLE] = epTable;
  b[h + H_ROW_WORDS] = W;
  b[h + H_ROWS] = rows;
  b[h + H_HASH] = hash;
  b[h + H_HASH_MASK] = mask;
  b[h + H_NETS] = nets;
  b[h + H_NETS_COUNT] = wide.length;
  b[h + H_SIZE] = out.len;
  // every honest evaluation takes fewer steps than this (see eval.ts): only a torn read exceeds it
  b[h + H_MAX_STEPS] = Math.min(2 ** 30, 4 * out.len + 65536);
  return out.words;
}

function writeProgram(
  c: PolicyCompiler,
  prog: Program,
  d: number,
  out: ImageBuffer,
  blockAt: (b: Int32Array) => number,
): number {
  // blocks first (appending them inside the program would split it)
  const tierBlocks = prog.tiers.map((t) =>
    t.policies.map((p) => blockAt(c.policyBlock(p.key, d) ?? EMPTY_BLOCK)),
  );
  const profBlocks = prog.profiles.map((p) => {
    const b = c.profileBlock(p.name, d);
    // an undefined namespace profile allows everything (as Kubernetes' namespace profiles do);
    // any other undefined profile has no rules
    return blockAt(b ?? (p.name.startsWith(NAMESPACE_PROFILE_PREFIX) ? ALLOW_ALL_BLOCK : EMPTY_BLOCK));
  });
  const at = out.len;
  out.push(prog.tiers.length);
  prog.tiers.forEach((t, k) => {
    out.push(t.action);
    out.push(t.endCounter);
    out.push(t.policies.length);
    t.policies.forEach((p, j) => {
      out.push(tierBlocks[k][j]);
      out.push(p.counter);
    });
  });
  out.push(prog.profiles.length);
  prog.profiles.forEach((p, k) => {
    out.push(profBlocks[k]);
    out.push(p.counter);
  });
  out.push(prog.noMatchCounter);
  return at;
}
