// Runs the same operations on the real table and the naive model and reports the first disagreement.
// Shared by the fixed-seed differential test and the fast-check property test.
import { expect } from 'vitest';
import {
  NAT_CLASS_NAMES,
  NAT_MISS,
  NatTable,
  type NatTableOptions,
} from '../../src/dataplane/tables/nat/table.js';
import { NatModel, type ModelFlow } from './model.js';

export type Op =
  | { op: 'create' | 'lookupOut'; p: number; s: number; sp: number; d: number; dp: number }
  | { op: 'lookupIn'; p: number; r: number; rp: number; nat: number; np: number }
  | { op: 'tcp'; s: number; sp: number; d: number; dp: number; flags: number; fromInside: boolean }
  | { op: 'advance'; dt: number }
  | { op: 'expire' };

export interface DiffConfig extends Required<
  Pick<NatTableOptions, 'capacity' | 'natIps' | 'portLo' | 'portHi'>
> {
  reservedPorts?: number[];
  seed?: number;
  maxPortProbes?: number;
  timeouts?: NatTableOptions['timeouts'];
}

export interface Harness {
  table: NatTable;
  model: NatModel;
  now: number;
}

export function makeHarness(cfg: DiffConfig): Harness {
  return {
    table: NatTable.create({ ...cfg, hashKey: 0x5eed }),
    model: new NatModel(cfg),
    now: 1000,
  };
}

function tupleOf(t: NatTable, i: number): string {
  return `${t.proto(i)} ${t.insideIp(i)}:${t.insidePort(i)} -> ${t.remoteIp(i)}:${t.remotePort(i)} as ${t.natIp(i)}:${t.natPort(i)}`;
}
function modelTuple(f: ModelFlow): string {
  return `${f.proto} ${f.insideIp}:${f.insidePort} -> ${f.remoteIp}:${f.remotePort} as ${f.natIp}:${f.natPort}`;
}

function agree(h: Harness, got: number, want: ModelFlow | number | null, what: string): void {
  if (want === null) {
    expect(got, what).toBe(NAT_MISS);
  } else if (typeof want === 'number') {
    expect(got, what).toBe(want);
  } else {
    expect(got, what).toBeGreaterThanOrEqual(0);
    expect(tupleOf(h.table, got), what).toBe(modelTuple(want));
    expect(h.table.lastSeen(got), what).toBe(want.last);
    const cls = NAT_CLASS_NAMES[h.table.timeoutClass(got)];
    expect(h.model.timeouts[cls], `${what}: timeout class ${cls}`).toBe(h.model.timeoutOf(want));
  }
}

export function step(h: Harness, o: Op): void {
  const { table, model } = h;
  const what = JSON.stringify(o);
  switch (o.op) {
    case 'create':
      agree(
        h,
        table.createOut(o.p, o.s, o.sp, o.d, o.dp, h.now),
        model.createOut(o.p, o.s, o.sp, o.d, o.dp, h.now),
        what,
      );
      break;
    case 'lookupOut':
      agree(
        h,
        table.lookupOut(o.p, o.s, o.sp, o.d, o.dp, h.now),
        model.lookupOut(o.p, o.s, o.sp, o.d, o.dp, h.now),
        what,
      );
      break;
    case 'lookupIn':
      agree(
        h,
        table.lookupIn(o.p, o.r, o.rp, o.nat, o.np, h.now),
        model.lookupIn(o.p, o.r, o.rp, o.nat, o.np, h.now),
        what,
      );
      break;
    case 'tcp': {
      const i = table.lookupOut(6, o.s, o.sp, o.d, o.dp, h.now);
      const f = model.lookupOut(6, o.s, o.sp, o.d, o.dp, h.now);
      agree(h, i, f, what);
      if (f) {
        table.tcpUpdate(i, o.flags, o.fromInside, h.now);
        model.tcpUpdate(f, o.flags, o.fromInside, h.now);
        agree(h, i, f, `${what} after update`);
      }
      break;
    }
    case 'advance':
      h.now += o.dt;
      break;
    case 'expire':
      expect(table.expire(h.now), what).toBe(model.expireAll(h.now));
      break;
  }
  expect(table.size, `size after ${what}`).toBe(model.size);
}

/** Whole-table invariants: every live slot accounted for, keys unique, ports allowed, same flows as model. */
export function checkInvariants(h: Harness, cfg: DiffConfig): void {
  const { table, model } = h;
  const reserved = new Set(cfg.reservedPorts ?? [4789]);
  const ins = new Set<string>();
  const outs = new Set<string>();
  const tuples = new Set<string>();
  let live = 0;
  for (let i = 0; i < table.slots; i++) {
    if (!table.isLive(i)) continue;
    live++;
    const p = table.proto(i);
    const inK = `${p}|${table.insideIp(i)}|${table.insidePort(i)}|${table.remoteIp(i)}|${table.remotePort(i)}`;
    const outK = `${p}|${table.remoteIp(i)}|${table.remotePort(i)}|${table.natIp(i)}|${table.natPort(i)}`;
    expect(ins.has(inK), `duplicate in2out key ${inK}`).toBe(false);
    expect(outs.has(outK), `duplicate out2in key ${outK}`).toBe(false);
    ins.add(inK);
    outs.add(outK);
    tuples.add(tupleOf(table, i));
    const np = table.natPort(i);
    expect(np >= cfg.portLo && np <= cfg.portHi && !reserved.has(np), `nat port ${np}`).toBe(true);
    expect(cfg.natIps.map((x) => x >>> 0)).toContain(table.natIp(i));
  }
  expect(live).toBe(table.size);
  expect(live).toBe(model.size);
  expect([...tuples].sort()).toEqual([...model.byIn.values()].map(modelTuple).sort());
  const c = table.counters;
  expect({ full: c.full, noPort: c.noPort, created: c.created, expired: c.expired }).toEqual(model.counters);
}
